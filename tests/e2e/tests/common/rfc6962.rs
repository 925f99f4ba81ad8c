//! An RFC 6962 Merkle tree and signed-note checker written from the RFCs'
//! definitions for the tests, independent of the product's `store::tlog`
//! and `store::checkpoint`: the tree hash, audit paths and consistency
//! proofs are computed by the recursive definitions of RFC 6962 §2.1 over
//! every leaf, and a served proof must equal them exactly.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use sha2::{Digest, Sha256};

pub type H = [u8; 32];

fn sha(parts: &[&[u8]]) -> H {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// MTH({d(0)}) = SHA-256(0x00 || d(0)).
pub fn leaf(data: &[u8]) -> H {
    sha(&[&[0], data])
}

/// k: the largest power of two smaller than n (n > 1).
fn k_of(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// MTH(D[n]) over leaf data.
pub fn mth(d: &[Vec<u8>]) -> H {
    match d.len() {
        0 => sha(&[]),
        1 => leaf(&d[0]),
        n => {
            let k = k_of(n);
            sha(&[&[1], &mth(&d[..k]), &mth(&d[k..])])
        }
    }
}

/// PATH(m, D[n]) (RFC 6962 §2.1.1).
pub fn path(m: usize, d: &[Vec<u8>]) -> Vec<H> {
    let n = d.len();
    if n <= 1 {
        return Vec::new();
    }
    let k = k_of(n);
    if m < k {
        let mut p = path(m, &d[..k]);
        p.push(mth(&d[k..]));
        p
    } else {
        let mut p = path(m - k, &d[k..]);
        p.push(mth(&d[..k]));
        p
    }
}

/// PROOF(m, D[n]) = SUBPROOF(m, D[n], true) (RFC 6962 §2.1.2).
pub fn proof(m: usize, d: &[Vec<u8>]) -> Vec<H> {
    fn sub(m: usize, d: &[Vec<u8>], b: bool) -> Vec<H> {
        let n = d.len();
        if m == n {
            return if b { Vec::new() } else { vec![mth(d)] };
        }
        let k = k_of(n);
        if m <= k {
            let mut p = sub(m, &d[..k], b);
            p.push(mth(&d[k..]));
            p
        } else {
            let mut p = sub(m - k, &d[k..], false);
            p.push(mth(&d[..k]));
            p
        }
    }
    if m == 0 || m >= d.len() {
        return Vec::new();
    }
    sub(m, d, true)
}

/// A C2SP checkpoint opened with a verifier key `<name>+<id hex>+<base64(0x01 || key)>`:
/// (origin, size, root). Panics when anything does not check.
pub fn open_checkpoint(note: &str, verifier_key: &str) -> (String, u64, H) {
    let mut vk = verifier_key.splitn(3, '+');
    let (name, id_hex, key_b64) = (vk.next().unwrap(), vk.next().unwrap(), vk.next().unwrap());
    let typed = B64.decode(key_b64).unwrap();
    assert_eq!((typed.len(), typed[0]), (33, 1), "an Ed25519 verifier key");
    let id = &sha(&[name.as_bytes(), b"\n", &typed])[..4];
    let id_text: String = id.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        id_text, id_hex,
        "the key id is SHA-256(name, \\n, 0x01, key)[:4]"
    );
    let public = ed25519_dalek::VerifyingKey::from_bytes(&typed[1..].try_into().unwrap()).unwrap();
    let (text, sigs) = note
        .split_once("\n\n")
        .expect("a blank line before the signatures");
    let text = format!("{text}\n");
    let line = sigs
        .lines()
        .find(|l| l.starts_with(&format!("\u{2014} {name} ")))
        .expect("a signature line of the key");
    let blob = B64.decode(line.rsplit(' ').next().unwrap()).unwrap();
    assert_eq!(&blob[..4], id, "the signature names the key id");
    let sig = ed25519_dalek::Signature::from_slice(&blob[4..]).unwrap();
    public
        .verify_strict(text.as_bytes(), &sig)
        .expect("the checkpoint's signature verifies");
    let mut lines = text.lines();
    let origin = lines.next().unwrap().to_string();
    let size = lines.next().unwrap().parse().unwrap();
    let root = B64
        .decode(lines.next().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    (origin, size, root)
}

/// Base64 hashes as served.
pub fn hashes(v: &serde_json::Value) -> Vec<H> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|h| B64.decode(h.as_str().unwrap()).unwrap().try_into().unwrap())
        .collect()
}

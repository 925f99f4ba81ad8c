//! Signed checkpoints of the transparency log, in the C2SP `tlog-checkpoint`
//! form inside a C2SP `signed-note`: three lines (origin, tree size, the
//! root in standard base64), a blank line, and one signature line
//! `— <key name> <base64(key id ‖ Ed25519 signature)>`. The key id is the
//! first four bytes of SHA-256(name ‖ "\n" ‖ 0x01 ‖ public key), so Go's
//! `golang.org/x/mod/sumdb/note` verifies a checkpoint with the verifier key
//! [`verifier_key`] prints, and so can anyone with the public key.

use crate::tlog::Hash;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};

/// Why a checkpoint was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// Not a signed note with a checkpoint body.
    #[error("not a checkpoint: {0}")]
    Malformed(&'static str),
    /// No signature by the expected key.
    #[error("no signature by key {0}")]
    NoSignature(String),
    /// A signature by the key that does not verify.
    #[error("the signature does not verify")]
    BadSignature,
}

/// A checkpoint: what the log's signer says the tree is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Names the log (`<host>/<path>` by convention).
    pub origin: String,
    /// Leaves in the tree.
    pub size: u64,
    /// The tree's root hash.
    pub root: Hash,
}

impl Checkpoint {
    /// The note body: origin, size and root, each on its line.
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            B64.encode(self.root)
        )
    }
}

/// The key id of an Ed25519 key named `name`.
fn key_id(name: &str, public: &VerifyingKey) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([1u8]);
    h.update(public.as_bytes());
    let d = h.finalize();
    [d[0], d[1], d[2], d[3]]
}

/// The verifier key in the note form `<name>+<key id hex>+<base64(0x01 ‖ key)>`.
pub fn verifier_key(name: &str, public: &VerifyingKey) -> String {
    let id = key_id(name, public);
    let mut typed = vec![1u8];
    typed.extend_from_slice(public.as_bytes());
    format!(
        "{name}+{}+{}",
        id.iter().map(|b| format!("{b:02x}")).collect::<String>(),
        B64.encode(typed)
    )
}

/// Signs `checkpoint` with the key named `name`: the signed note text.
pub fn sign(checkpoint: &Checkpoint, name: &str, key: &SigningKey) -> String {
    let body = checkpoint.body();
    let sig = key.sign(body.as_bytes());
    let mut blob = key_id(name, &key.verifying_key()).to_vec();
    blob.extend_from_slice(&sig.to_bytes());
    format!("{body}\n\u{2014} {name} {}\n", B64.encode(blob))
}

/// Reads a signed note and checks its signature by the key named `name`.
pub fn open(note: &str, name: &str, public: &VerifyingKey) -> Result<Checkpoint, CheckpointError> {
    let (body, signatures) = note.split_once("\n\n").ok_or(CheckpointError::Malformed(
        "no blank line before the signatures",
    ))?;
    let body = format!("{body}\n");
    let id = key_id(name, public);
    let mut found = false;
    for line in signatures.lines() {
        let Some(rest) = line.strip_prefix("\u{2014} ") else {
            return Err(CheckpointError::Malformed(
                "a signature line must start with an em dash",
            ));
        };
        let Some((who, blob)) = rest.split_once(' ') else {
            return Err(CheckpointError::Malformed("a signature line names its key"));
        };
        let blob = B64
            .decode(blob)
            .map_err(|_| CheckpointError::Malformed("a signature is not base64"))?;
        if who != name || blob.len() != 68 || blob[..4] != id {
            continue;
        }
        found = true;
        let sig = Signature::from_slice(&blob[4..]).map_err(|_| CheckpointError::BadSignature)?;
        public
            .verify(body.as_bytes(), &sig)
            .map_err(|_| CheckpointError::BadSignature)?;
    }
    if !found {
        return Err(CheckpointError::NoSignature(name.to_string()));
    }
    let mut lines = body.lines();
    let origin = lines.next().filter(|o| !o.is_empty());
    let size = lines.next().and_then(|s| {
        (s == "0" || !s.starts_with('0'))
            .then(|| s.parse::<u64>().ok())
            .flatten()
    });
    let root = lines
        .next()
        .and_then(|r| B64.decode(r).ok())
        .and_then(|r| <Hash>::try_from(r.as_slice()).ok());
    match (origin, size, root) {
        (Some(origin), Some(size), Some(root)) => Ok(Checkpoint {
            origin: origin.to_string(),
            size,
            root,
        }),
        _ => Err(CheckpointError::Malformed("origin, size and root lines")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[7u8; 32])
    }

    fn checkpoint() -> Checkpoint {
        Checkpoint {
            origin: "audit.kunming-training.example/log".into(),
            size: 12,
            root: crate::tlog::leaf_hash(b"root"),
        }
    }

    #[test]
    fn a_signed_checkpoint_opens_with_the_public_key_and_says_what_was_signed() {
        let note = sign(&checkpoint(), "kunming-audit", &key());
        let lines: Vec<&str> = note.lines().collect();
        assert_eq!(lines[0], "audit.kunming-training.example/log");
        assert_eq!(lines[1], "12");
        assert_eq!(lines[3], "");
        assert!(lines[4].starts_with("\u{2014} kunming-audit "), "{note}");
        let opened = open(&note, "kunming-audit", &key().verifying_key()).unwrap();
        assert_eq!(opened, checkpoint());
        let vkey = verifier_key("kunming-audit", &key().verifying_key());
        assert!(vkey.starts_with("kunming-audit+"), "{vkey}");
        assert_eq!(vkey.split('+').nth(1).unwrap().len(), 8);
    }

    #[test]
    fn a_changed_size_root_or_origin_or_another_key_is_refused() {
        let note = sign(&checkpoint(), "kunming-audit", &key());
        let public = key().verifying_key();
        // A truncated log claiming a smaller size under the old signature.
        let shrunk = note.replacen("\n12\n", "\n11\n", 1);
        assert_eq!(
            open(&shrunk, "kunming-audit", &public),
            Err(CheckpointError::BadSignature)
        );
        let moved = note.replacen("audit.kunming", "audit.elsewhere", 1);
        assert_eq!(
            open(&moved, "kunming-audit", &public),
            Err(CheckpointError::BadSignature)
        );
        // Signed by another key under the same name: not the log's key.
        let forged = sign(
            &checkpoint(),
            "kunming-audit",
            &SigningKey::from_bytes(&[9u8; 32]),
        );
        assert!(matches!(
            open(&forged, "kunming-audit", &public),
            Err(CheckpointError::NoSignature(_))
        ));
        assert!(open("no note", "kunming-audit", &public).is_err());
    }
}

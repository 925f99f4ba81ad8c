//! Keyed hashes of personal identifiers, for keys and lookups.
//!
//! A person is known to the store by `HMAC-SHA-256(key, normalised ID number)`,
//! a phone by the HMAC of its eleven digits (with a domain label, so an ID
//! hash never equals a phone hash). Without the secret key, a leaked store
//! does not tell whose records these are.
//!
//! Every keyed hash here is `HMAC-SHA-256(key, label ‖ 0x00 ‖ data)` with its
//! own label (`person`, `phone`, `fingerprint`, `class-application`), so two
//! uses never produce comparable values. A plain SHA-256 ([`sha256_hex`]) is
//! only for content that holds no personal data.

use hmac::{Hmac, Mac};
use policy::ids::{IdNumber, Mobile};
use sha2::{Digest, Sha256};

/// The secret behind personal-data hashes (Spin variable `pii_hmac_key`).
#[derive(Clone)]
pub struct PiiHasher {
    /// The keyed HMAC state, cloned for each hash (re-keying costs two compressions).
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for PiiHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PiiHasher(..)")
    }
}

impl PiiHasher {
    /// A hasher with `key` (at least 16 bytes is sensible; not enforced here).
    pub fn new(key: impl AsRef<[u8]>) -> Self {
        Self {
            mac: Hmac::<Sha256>::new_from_slice(key.as_ref()).expect("HMAC takes any key length"),
        }
    }

    /// `HMAC(key, label ‖ 0x00 ‖ data)` in hex: the domain-separated keyed digest.
    fn hmac(&self, label: &str, data: &[u8]) -> String {
        let mut mac = self.mac.clone();
        mac.update(label.as_bytes());
        mac.update(b"\0");
        mac.update(data);
        hex(&mac.finalize().into_bytes())
    }

    /// The person ref of an ID number (64 hex characters).
    pub fn person_ref(&self, id: &IdNumber) -> String {
        self.hmac("person", id.expose().as_bytes())
    }

    /// A keyed fingerprint of arbitrary bytes (a request body, which may hold
    /// ID numbers): equal inputs give equal fingerprints, and without the key
    /// no one can test a guess against it.
    pub fn fingerprint(&self, data: &[u8]) -> String {
        self.hmac("fingerprint", data)
    }

    /// The keyed digest of a class application's canonical bytes, which hold
    /// its roster's names, ID numbers and mobiles: the class claim is keyed by
    /// it (duplicate filing guard), so that holding a guessed application does
    /// not confirm it against the store's keys. Its own label: it never equals
    /// a [`Self::fingerprint`] of the same bytes.
    pub fn application_digest(&self, canonical: &[u8]) -> String {
        self.hmac("class-application", canonical)
    }

    /// The phone ref of a mobile number.
    pub fn phone_ref(&self, mobile: &Mobile) -> String {
        self.hmac("phone", mobile.expose().as_bytes())
    }
}

/// Lower-case hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = Vec::with_capacity(bytes.len() * 2);
    for b in bytes {
        text.extend_from_slice(&[DIGITS[usize::from(b >> 4)], DIGITS[usize::from(b & 0x0f)]]);
    }
    String::from_utf8(text).expect("hex digits are ASCII")
}

/// SHA-256 of `data` in hex (not keyed: for non-personal content such as site addresses and request bodies).
pub fn sha256_hex(data: impl AsRef<[u8]>) -> String {
    hex(&Sha256::digest(data.as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_writes_two_lower_case_digits_per_byte() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff, 0x10]), "000fa5ff10");
        assert_eq!(hex(&[]), "");
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn refs_depend_on_the_key_and_never_contain_the_number() {
        let id = IdNumber::parse("11010519491231002X").unwrap();
        let a = PiiHasher::new("k1");
        let b = PiiHasher::new("k2");
        assert_ne!(a.person_ref(&id), b.person_ref(&id));
        assert_eq!(
            a.person_ref(&id),
            a.person_ref(&IdNumber::parse("11010519491231002x").unwrap())
        );
        assert_eq!(a.person_ref(&id).len(), 64);
        assert!(!a.person_ref(&id).contains("11010519491231002"));
    }

    #[test]
    fn keyed_digests_of_bytes_are_separated_by_label_and_key() {
        let a = PiiHasher::new("k1");
        let data = b"{\"roster\":[]}";
        assert_ne!(a.application_digest(data), a.fingerprint(data));
        assert_ne!(a.application_digest(data), sha256_hex(data));
        assert_ne!(
            a.application_digest(data),
            PiiHasher::new("k2").application_digest(data)
        );
        assert_eq!(a.application_digest(data), a.application_digest(data));
        assert_eq!(a.application_digest(data).len(), 64);
        // The fingerprint kept its value through the refactoring (HMAC over
        // `fingerprint\0` and the bytes): idempotency records stay valid.
        let mut mac = Hmac::<Sha256>::new_from_slice(b"k1").unwrap();
        mac.update(b"fingerprint\0");
        mac.update(data);
        assert_eq!(a.fingerprint(data), hex(&mac.finalize().into_bytes()));
    }
}

//! Encryption at rest: every value the product writes is sealed with
//! AES-256-GCM before it reaches the key-value backend.
//!
//! [`SealedKv`] wraps any [`KeyValue`]: `set`, `set_many` and compare-and-swap
//! encrypt, `get`, `get_many` and `current` decrypt. Counters (`increment`)
//! pass through: they hold numbers, never personal data. Each sealed value
//! carries the id of the key that sealed it, so keys can be rotated: a
//! [`Keyring`] holds the current key and any previous ones, opens values
//! sealed with any of them, and seals with the current one. The key-value
//! backend, its dumps and its backups hold no ID number, phone number or name
//! in clear; keys hold none either (they use keyed hashes, [`crate::pii`]).
//!
//! Format of a sealed value: `0xA5`, key-id length, key id (ASCII), 12-byte
//! nonce, ciphertext with its 16-byte tag. The key and key id are bound into
//! the tag as associated data, with the record key, so a value moved to
//! another key does not open.

use crate::kv::{Cas, KeyValue, KvError};
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use sha2::{Digest, Sha256};

const MAGIC: u8 = 0xA5;
/// Length of a key id: 8 hex characters.
const KEY_ID_LEN: usize = 8;

/// One data key.
#[derive(Clone)]
pub struct DataKey {
    id: String,
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DataKey({})", self.id)
    }
}

impl DataKey {
    /// A key from a secret: 64 hex characters are the key itself; any other
    /// text is hashed (SHA-256) into one. The id is derived from the key.
    pub fn from_secret(secret: impl AsRef<str>) -> Self {
        let s = secret.as_ref().trim();
        let bytes: [u8; 32] = match decode_hex32(s) {
            Some(b) => b,
            None => Sha256::digest(s.as_bytes()).into(),
        };
        let id = crate::pii::hex(&Sha256::digest([b"key-id:".as_slice(), &bytes].concat()))[..8]
            .to_string();
        Self {
            id,
            cipher: Aes256Gcm::new_from_slice(&bytes).expect("32-byte key"),
        }
    }

    /// The key id stored with each value it seals.
    pub fn id(&self) -> &str {
        &self.id
    }
}

fn decode_hex32(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, chunk) in s.as_bytes().chunks(2).enumerate() {
        out[i] = u8::from_str_radix(std::str::from_utf8(chunk).ok()?, 16).ok()?;
    }
    Some(out)
}

/// The current key and the previous ones still accepted for reading.
#[derive(Debug, Clone)]
pub struct Keyring {
    current: DataKey,
    previous: Vec<DataKey>,
}

impl Keyring {
    /// A keyring sealing with `current` and also opening values of `previous`.
    pub fn new(current: DataKey, previous: Vec<DataKey>) -> Self {
        Self { current, previous }
    }

    /// The id of the sealing key.
    pub fn current_id(&self) -> &str {
        self.current.id()
    }

    fn key(&self, id: &str) -> Option<&DataKey> {
        std::iter::once(&self.current)
            .chain(self.previous.iter())
            .find(|k| k.id == id)
    }

    /// Seals `plain` for `record_key` with the current key and a fresh nonce from `random`.
    pub fn seal(&self, record_key: &str, plain: &[u8], random: &dyn Fn(&mut [u8])) -> Vec<u8> {
        let mut nonce = [0u8; 12];
        random(&mut nonce);
        let k = &self.current;
        let aad = [k.id.as_bytes(), b"\0", record_key.as_bytes()].concat();
        let ct = k
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plain,
                    aad: &aad,
                },
            )
            .expect("AES-GCM seals any length");
        let mut out = Vec::with_capacity(2 + k.id.len() + 12 + ct.len());
        out.push(MAGIC);
        out.push(k.id.len() as u8);
        out.extend_from_slice(k.id.as_bytes());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    /// The id of the key that sealed `sealed`, if it is a sealed value
    /// (counters, which are never sealed, are not: they are too short).
    pub fn key_id_of(sealed: &[u8]) -> Option<&str> {
        if sealed.len() < 2 + KEY_ID_LEN + 12 + 16
            || sealed[0] != MAGIC
            || sealed[1] as usize != KEY_ID_LEN
        {
            return None;
        }
        std::str::from_utf8(&sealed[2..2 + KEY_ID_LEN]).ok()
    }

    /// Opens a sealed value of `record_key`.
    pub fn open(&self, record_key: &str, sealed: &[u8]) -> Result<Vec<u8>, KvError> {
        let id = Self::key_id_of(sealed)
            .ok_or_else(|| KvError::Sealed("the value is not sealed".into()))?;
        let k = self
            .key(id)
            .ok_or_else(|| KvError::Sealed(format!("the value is sealed with unknown key {id}")))?;
        let rest = &sealed[2 + id.len()..];
        if rest.len() < 12 + 16 {
            return Err(KvError::Sealed("the value is truncated".into()));
        }
        let (nonce, ct) = rest.split_at(12);
        let aad = [id.as_bytes(), b"\0", record_key.as_bytes()].concat();
        k.cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad: &aad })
            .map_err(|_| KvError::Sealed("the value does not open (changed or moved)".into()))
    }
}

/// A [`KeyValue`] that seals every value it writes and opens every value it reads.
pub struct SealedKv<'a, K: KeyValue> {
    inner: K,
    keys: std::sync::Arc<Keyring>,
    random: &'a dyn Fn(&mut [u8]),
}

impl<'a, K: KeyValue> SealedKv<'a, K> {
    /// Wraps `inner`.
    pub fn new(inner: K, keys: Keyring, random: &'a dyn Fn(&mut [u8])) -> Self {
        Self {
            inner,
            keys: std::sync::Arc::new(keys),
            random,
        }
    }

    /// The backend underneath (sealed bytes).
    pub fn inner(&self) -> &K {
        &self.inner
    }

    /// The keyring.
    pub fn keyring(&self) -> &Keyring {
        &self.keys
    }

    /// Re-seals `key` with the current key if another key sealed it; returns whether it did.
    pub fn reseal(&self, key: &str) -> Result<bool, KvError> {
        for _ in 0..crate::records::MAX_CAS_ATTEMPTS {
            let cas = self.inner.cas(key)?;
            let Some(sealed) = cas.current()? else {
                return Ok(false);
            };
            if Keyring::key_id_of(&sealed).is_none_or(|id| id == self.keys.current_id()) {
                // Already current, or a counter (never sealed).
                return Ok(false);
            }
            let plain = self.keys.open(key, &sealed)?;
            if cas.swap(&self.keys.seal(key, &plain, self.random))? {
                return Ok(true);
            }
        }
        Err(KvError::Backend(
            "too much contention while resealing".into(),
        ))
    }
}

/// Compare-and-swap through [`SealedKv`].
pub struct SealedCas<'a, C: Cas> {
    inner: C,
    key: String,
    keys: std::sync::Arc<Keyring>,
    random: &'a dyn Fn(&mut [u8]),
}

impl<C: Cas> Cas for SealedCas<'_, C> {
    fn current(&self) -> Result<Option<Vec<u8>>, KvError> {
        self.inner
            .current()?
            .map(|v| self.keys.open(&self.key, &v))
            .transpose()
    }

    fn swap(self, value: &[u8]) -> Result<bool, KvError> {
        let sealed = self.keys.seal(&self.key, value, self.random);
        self.inner.swap(&sealed)
    }
}

impl<'a, K: KeyValue> KeyValue for SealedKv<'a, K> {
    type Cas = SealedCas<'a, K::Cas>;

    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        self.inner
            .get(key)?
            .map(|v| self.keys.open(key, &v))
            .transpose()
    }

    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, KvError> {
        let values = self.inner.get_many(keys)?;
        keys.iter()
            .zip(values)
            .map(|(k, v)| v.map(|v| self.keys.open(k, &v)).transpose())
            .collect()
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), KvError> {
        self.inner
            .set(key, &self.keys.seal(key, value, self.random))
    }

    fn set_many(&self, entries: &[(String, Vec<u8>)]) -> Result<(), KvError> {
        let sealed: Vec<(String, Vec<u8>)> = entries
            .iter()
            .map(|(k, v)| (k.clone(), self.keys.seal(k, v, self.random)))
            .collect();
        self.inner.set_many(&sealed)
    }

    fn delete(&self, key: &str) -> Result<(), KvError> {
        self.inner.delete(key)
    }

    fn exists(&self, key: &str) -> Result<bool, KvError> {
        self.inner.exists(key)
    }

    fn cas(&self, key: &str) -> Result<Self::Cas, KvError> {
        Ok(SealedCas {
            inner: self.inner.cas(key)?,
            key: key.to_string(),
            keys: self.keys.clone(),
            random: self.random,
        })
    }

    fn list_keys(&self) -> Result<Vec<String>, KvError> {
        self.inner.list_keys()
    }

    fn reseal_page(&self, after: Option<&str>, limit: usize) -> Result<ResealPage, KvError> {
        self.reseal_keys(after, limit)
    }

    fn increment(&self, key: &str, delta: i64) -> Result<i64, KvError> {
        self.inner.increment(key, delta)
    }
}

/// What one page of re-sealing did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ResealPage {
    /// Values re-sealed with the current key.
    pub resealed: u64,
    /// Keys looked at that needed nothing (already current, or counters).
    pub unchanged: u64,
    /// The last key of this page: pass it as `after` for the next page.
    pub last_key: Option<String>,
    /// Whether every key after the starting point has been looked at.
    pub done: bool,
}

impl<K: KeyValue> SealedKv<'_, K> {
    /// Re-seals up to `limit` keys that sort after `after` (all keys when
    /// `None`), in key order, so that a rotation runs page by page and resumes
    /// from the last key a page reports.
    pub fn reseal_keys(&self, after: Option<&str>, limit: usize) -> Result<ResealPage, KvError> {
        let mut keys = self.inner.list_keys()?;
        keys.sort();
        let start = after
            .map(|a| keys.partition_point(|k| k.as_str() <= a))
            .unwrap_or(0);
        let page: Vec<&String> = keys[start..].iter().take(limit).collect();
        let mut out = ResealPage {
            resealed: 0,
            unchanged: 0,
            last_key: None,
            done: start + page.len() >= keys.len(),
        };
        for key in page {
            if self.reseal(key)? {
                out.resealed += 1;
            } else {
                out.unchanged += 1;
            }
            out.last_key = Some(key.clone());
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryStore;
    use std::sync::atomic::{AtomicU64, Ordering};

    fn counter_random() -> impl Fn(&mut [u8]) {
        let n = AtomicU64::new(1);
        move |buf: &mut [u8]| {
            let v = n.fetch_add(1, Ordering::SeqCst).to_le_bytes();
            for (i, b) in buf.iter_mut().enumerate() {
                *b = v[i % 8];
            }
        }
    }

    #[test]
    fn values_are_sealed_at_rest_and_open_through_the_wrapper() {
        let random = counter_random();
        let mem = MemoryStore::new();
        let sealed = SealedKv::new(
            mem.clone(),
            Keyring::new(DataKey::from_secret("k1"), vec![]),
            &random,
        );
        let kv = &sealed;
        kv.set("vt:class:1", b"11010519491231002X 13800138000")
            .unwrap();
        let raw = mem.dump()["vt:class:1"].clone();
        assert!(
            !raw.windows(18).any(|w| w == b"11010519491231002X"),
            "clear text at rest"
        );
        assert_eq!(
            kv.get("vt:class:1").unwrap().unwrap(),
            b"11010519491231002X 13800138000"
        );
        assert_eq!(kv.increment("vt:n", 2).unwrap(), 2);
        let cas = kv.cas("vt:class:1").unwrap();
        assert_eq!(
            cas.current().unwrap().unwrap(),
            b"11010519491231002X 13800138000"
        );
        assert!(cas.swap(b"next").unwrap());
        assert_eq!(
            kv.get_many(&["vt:class:1".into(), "none".into()]).unwrap(),
            vec![Some(b"next".to_vec()), None]
        );
    }

    #[test]
    fn a_value_moved_to_another_key_or_changed_does_not_open() {
        let random = counter_random();
        let mem = MemoryStore::new();
        let sealed = SealedKv::new(
            mem.clone(),
            Keyring::new(DataKey::from_secret("k1"), vec![]),
            &random,
        );
        sealed.set("a", b"secret").unwrap();
        let raw = mem.dump()["a"].clone();
        mem.set("b", &raw).unwrap();
        assert!(sealed.get("b").is_err());
        let mut changed = raw.clone();
        *changed.last_mut().unwrap() ^= 1;
        mem.set("a", &changed).unwrap();
        assert!(sealed.get("a").is_err());
    }

    #[test]
    fn after_rotation_every_value_opens_with_the_new_key_and_none_with_the_old_alone() {
        let random = counter_random();
        let mem = MemoryStore::new();
        let old = DataKey::from_secret("old-key");
        let new = DataKey::from_secret("new-key");
        let before = SealedKv::new(mem.clone(), Keyring::new(old.clone(), vec![]), &random);
        for i in 0..5 {
            before
                .set(&format!("k{i}"), format!("v{i}").as_bytes())
                .unwrap();
        }
        let rotating = SealedKv::new(
            mem.clone(),
            Keyring::new(new.clone(), vec![old.clone()]),
            &random,
        );
        for i in 0..5 {
            assert!(rotating.reseal(&format!("k{i}")).unwrap());
            assert!(
                !rotating.reseal(&format!("k{i}")).unwrap(),
                "already on the new key"
            );
        }
        let new_only = SealedKv::new(mem.clone(), Keyring::new(new, vec![]), &random);
        let old_only = SealedKv::new(mem.clone(), Keyring::new(old, vec![]), &random);
        for i in 0..5 {
            assert_eq!(
                new_only.get(&format!("k{i}")).unwrap().unwrap(),
                format!("v{i}").as_bytes()
            );
            assert!(old_only.get(&format!("k{i}")).is_err());
        }
    }
}

//! An in-memory [`KeyValue`] with the semantics of Spin's stores, for tests.
//!
//! Compare-and-swap behaves exactly like Spin 4.0.2's default SQLite backend,
//! which is weaker than its name: `current` remembers the value it read, and
//! `swap` writes only if the key still holds those bytes (value-based, so a
//! write of the same bytes in between goes unnoticed); but when `current`
//! found no value, or was never called, `swap` writes unconditionally. Two
//! requests that both find a key absent can therefore both "win": code that
//! creates records must elect one creator first ([`crate::records`] does).
//! Counters are 8 bytes little-endian, as on Spin's SQLite store; incrementing
//! a key that holds anything else fails (Spin's host panics). The store counts host calls, can be dumped for
//! assertions, and can be told to fail after a number of writes to simulate a
//! crash between two writes.

use crate::kv::{Cas, KeyValue, KvError};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct Inner {
    values: HashMap<String, (u64, Vec<u8>)>,
    next_version: u64,
    /// Writes that landed, per key (a failed swap is no write).
    writes: HashMap<String, u64>,
}

/// An in-memory store; clones share the same data.
#[derive(Clone, Default)]
pub struct MemoryStore {
    inner: Arc<Mutex<Inner>>,
    calls: Arc<AtomicU64>,
    /// Writes left before every call fails; negative = never.
    writes_left: Arc<AtomicI64>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("calls", &self.calls())
            .finish_non_exhaustive()
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        let s = Self::default();
        s.writes_left.store(-1, Ordering::SeqCst);
        s
    }

    /// Host calls made so far.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }

    /// Every key and value, sorted, for before/after comparisons and searches.
    pub fn dump(&self) -> BTreeMap<String, Vec<u8>> {
        let inner = self.inner.lock().expect("store lock");
        inner
            .values
            .iter()
            .map(|(k, (_, v))| (k.clone(), v.clone()))
            .collect()
    }

    /// Writes that landed on `key` so far (set, set-many, a swap that applied).
    pub fn writes_to(&self, key: &str) -> u64 {
        let inner = self.inner.lock().expect("store lock");
        inner.writes.get(key).copied().unwrap_or(0)
    }

    /// After `n` more writes, every call fails (a crash); `None` heals the store.
    pub fn fail_after_writes(&self, n: Option<u32>) {
        self.writes_left
            .store(n.map(i64::from).unwrap_or(-1), Ordering::SeqCst);
    }

    fn call(&self) -> Result<(), KvError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.writes_left.load(Ordering::SeqCst) == 0 {
            return Err(KvError::Backend("simulated crash".into()));
        }
        Ok(())
    }

    fn write(&self) -> Result<(), KvError> {
        self.call()?;
        let left = self.writes_left.load(Ordering::SeqCst);
        if left > 0 {
            self.writes_left.fetch_sub(1, Ordering::SeqCst);
        }
        Ok(())
    }

    fn put(inner: &mut Inner, key: &str, value: Vec<u8>) {
        inner.next_version += 1;
        let v = inner.next_version;
        inner.values.insert(key.to_string(), (v, value));
        *inner.writes.entry(key.to_string()).or_default() += 1;
    }
}

/// Compare-and-swap handle of [`MemoryStore`].
pub struct MemoryCas {
    store: MemoryStore,
    key: String,
    seen: std::sync::Mutex<Option<Vec<u8>>>,
}

impl Cas for MemoryCas {
    fn current(&self) -> Result<Option<Vec<u8>>, KvError> {
        self.store.call()?;
        let now = self
            .store
            .inner
            .lock()
            .expect("store lock")
            .values
            .get(&self.key)
            .map(|(_, v)| v.clone());
        self.seen.lock().expect("cas lock").clone_from(&now);
        Ok(now)
    }

    fn swap(self, value: &[u8]) -> Result<bool, KvError> {
        self.store.write()?;
        let mut inner = self.store.inner.lock().expect("store lock");
        if let Some(old) = self.seen.lock().expect("cas lock").as_ref() {
            let now = inner.values.get(&self.key).map(|(_, v)| v);
            if now != Some(old) {
                return Ok(false);
            }
        }
        MemoryStore::put(&mut inner, &self.key, value.to_vec());
        Ok(true)
    }
}

impl KeyValue for MemoryStore {
    type Cas = MemoryCas;

    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        self.call()?;
        Ok(self
            .inner
            .lock()
            .expect("store lock")
            .values
            .get(key)
            .map(|(_, v)| v.clone()))
    }

    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, KvError> {
        self.call()?;
        let inner = self.inner.lock().expect("store lock");
        Ok(keys
            .iter()
            .map(|k| inner.values.get(k).map(|(_, v)| v.clone()))
            .collect())
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), KvError> {
        self.write()?;
        MemoryStore::put(
            &mut self.inner.lock().expect("store lock"),
            key,
            value.to_vec(),
        );
        Ok(())
    }

    fn set_many(&self, entries: &[(String, Vec<u8>)]) -> Result<(), KvError> {
        self.write()?;
        let mut inner = self.inner.lock().expect("store lock");
        for (k, v) in entries {
            MemoryStore::put(&mut inner, k, v.clone());
        }
        Ok(())
    }

    fn delete(&self, key: &str) -> Result<(), KvError> {
        self.write()?;
        self.inner.lock().expect("store lock").values.remove(key);
        Ok(())
    }

    fn exists(&self, key: &str) -> Result<bool, KvError> {
        self.call()?;
        Ok(self
            .inner
            .lock()
            .expect("store lock")
            .values
            .contains_key(key))
    }

    fn cas(&self, key: &str) -> Result<MemoryCas, KvError> {
        self.call()?;
        Ok(MemoryCas {
            store: self.clone(),
            key: key.to_string(),
            seen: std::sync::Mutex::new(None),
        })
    }

    fn list_keys(&self) -> Result<Vec<String>, KvError> {
        self.call()?;
        Ok(self
            .inner
            .lock()
            .expect("store lock")
            .values
            .keys()
            .cloned()
            .collect())
    }

    fn increment(&self, key: &str, delta: i64) -> Result<i64, KvError> {
        self.write()?;
        let mut inner = self.inner.lock().expect("store lock");
        let now = match inner.values.get(key) {
            None => 0,
            Some((_, bytes)) => {
                let arr: [u8; 8] = bytes
                    .as_slice()
                    .try_into()
                    .map_err(|_| KvError::NotACounter)?;
                i64::from_le_bytes(arr)
            }
        };
        let next = now + delta;
        if delta != 0 || !inner.values.contains_key(key) {
            MemoryStore::put(&mut inner, key, next.to_le_bytes().to_vec());
        }
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cas_compares_values_like_spin_sqlite() {
        let s = MemoryStore::new();
        s.set("k", b"a").unwrap();
        let cas = s.cas("k").unwrap();
        assert_eq!(cas.current().unwrap().as_deref(), Some(&b"a"[..]));
        s.set("k", b"z").unwrap();
        assert!(!cas.swap(b"b").unwrap(), "changed since current");
        s.set("k", b"a").unwrap();
        let cas = s.cas("k").unwrap();
        cas.current().unwrap();
        s.set("k", b"a").unwrap();
        assert!(
            cas.swap(b"b").unwrap(),
            "value-based: the same bytes written again go unnoticed"
        );
        assert_eq!(s.get("k").unwrap().as_deref(), Some(&b"b"[..]));
    }

    #[test]
    fn cas_on_an_absent_key_writes_unconditionally_like_spin_sqlite() {
        let s = MemoryStore::new();
        let a = s.cas("new").unwrap();
        let b = s.cas("new").unwrap();
        assert_eq!(a.current().unwrap(), None);
        assert_eq!(b.current().unwrap(), None);
        assert!(a.swap(b"1").unwrap());
        assert!(
            b.swap(b"2").unwrap(),
            "both creators win: records must elect one"
        );
        assert_eq!(s.get("new").unwrap().as_deref(), Some(&b"2"[..]));
    }

    #[test]
    fn increment_reads_with_zero_and_refuses_non_counters() {
        let s = MemoryStore::new();
        assert_eq!(s.increment("c", 0).unwrap(), 0);
        assert_eq!(s.increment("c", 5).unwrap(), 5);
        assert_eq!(s.increment("c", 0).unwrap(), 5);
        s.set("text", b"hello").unwrap();
        assert_eq!(s.increment("text", 1), Err(KvError::NotACounter));
    }

    #[test]
    fn concurrent_cas_increments_from_threads_lose_nothing() {
        let s = MemoryStore::new();
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let s = s.clone();
                std::thread::spawn(move || {
                    for _ in 0..100 {
                        loop {
                            let cas = s.cas("n").unwrap();
                            let n: u64 = cas
                                .current()
                                .unwrap()
                                .map(|v| String::from_utf8(v).unwrap().parse().unwrap())
                                .unwrap_or(0);
                            if cas.swap((n + 1).to_string().as_bytes()).unwrap() {
                                break;
                            }
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(s.get("n").unwrap().as_deref(), Some(&b"800"[..]));
    }

    #[test]
    fn a_simulated_crash_fails_every_call_after_n_writes() {
        let s = MemoryStore::new();
        s.fail_after_writes(Some(1));
        s.set("a", b"1").unwrap();
        assert!(s.set("b", b"2").is_err());
        assert!(s.get("a").is_err());
        s.fail_after_writes(None);
        assert_eq!(s.get("b").unwrap(), None);
        assert!(s.calls() >= 4);
    }
}

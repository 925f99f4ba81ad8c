//! Key-value data in a SQLite file, with the table layout and semantics of
//! Spin 4.0.2's default (SQLite) key-value backend:
//! - one table keyed by (store label, key);
//! - `increment` keeps the number as 8 little-endian bytes (`i64`), in a
//!   transaction; an absent key counts as 0;
//! - compare-and-swap remembers the value `current` read; `swap` updates the
//!   row only if it still holds that value. If `current` found no value (or was
//!   never called), `swap` writes unconditionally — as Spin's SQLite backend
//!   does, so two racing first writers of a key both succeed.
//!
//! One connection behind a mutex serves every request of a host.
//!
//! [`KvStore`] chooses between this and the Redis backend of
//! [`crate::kv_redis`].

use crate::kv_redis::{RedisCas, RedisConfig, RedisKv};
use anyhow::{Context, Result};
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The key-value backend of one host: Spin's default SQLite file, or Redis
/// (see [`crate::kv_redis`]). Each keeps the semantics of Spin's backend.
///
/// It counts the key-value operations it serves (every method below but
/// `open`; a failed swap's fresh handle counts as the new and current it
/// makes), and what its reads returned, for benchmarks: see
/// [`KvStore::counters`].
pub struct KvStore {
    backend: Backend,
    counters: Arc<KvCounters>,
}

/// What a store has served since it opened, counted for benchmarks.
#[derive(Debug, Default)]
pub struct KvCounters {
    /// Key-value operations of every kind.
    pub calls: AtomicU64,
    /// Keys asked for by `get` and `get-many`.
    pub keys_read: AtomicU64,
    /// Of those, the keys that had a value.
    pub values_found: AtomicU64,
    /// The bytes of the values found.
    pub bytes_read: AtomicU64,
    /// Writes that landed, per key: `set`, each entry of `set-many`,
    /// `increment`, and a swap the backend reports as applied (under
    /// [`crate::kv_redis::RedisSemantics::Spin402`] none is, so none counts).
    pub writes: Mutex<HashMap<String, u64>>,
}

impl KvCounters {
    /// Counts one read of `keys` keys that returned `values`.
    fn read<'a>(&self, keys: usize, values: impl IntoIterator<Item = &'a Vec<u8>>) {
        let (mut found, mut bytes) = (0u64, 0u64);
        for v in values {
            found += 1;
            bytes += v.len() as u64;
        }
        self.keys_read.fetch_add(keys as u64, Ordering::Relaxed);
        self.values_found.fetch_add(found, Ordering::Relaxed);
        self.bytes_read.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Counts one write of each of `keys`.
    fn wrote<'a>(&self, keys: impl IntoIterator<Item = &'a str>) {
        let mut w = self.writes.lock().expect("write counters");
        for k in keys {
            *w.entry(k.to_string()).or_default() += 1;
        }
    }

    /// Writes so far to each key that starts with `prefix`.
    pub fn writes_under(&self, prefix: &str) -> BTreeMap<String, u64> {
        let w = self.writes.lock().expect("write counters");
        w.iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(k, n)| (k.clone(), *n))
            .collect()
    }
}

enum Backend {
    Sqlite(KvDb),
    Redis(RedisKv),
}

/// What a compare-and-swap handle remembers between `current` and `swap`.
pub enum CasState {
    /// The value `current` read (`None`: absent or not read).
    Sqlite { seen: Option<Vec<u8>> },
    /// The handle's own connection, holding its `WATCH`.
    Redis(RedisCas),
}

impl KvStore {
    /// Redis if `redis` is given, else the SQLite file at `sqlite_path`.
    pub fn open(sqlite_path: &Path, redis: Option<&RedisConfig>) -> Result<KvStore> {
        let backend = match redis {
            Some(config) => Backend::Redis(RedisKv::open(config)?),
            None => Backend::Sqlite(KvDb::open(sqlite_path)?),
        };
        Ok(KvStore {
            backend,
            counters: Arc::default(),
        })
    }

    /// What this store has served since it opened (shared, so it can be read
    /// without keeping the store open).
    pub fn counters(&self) -> Arc<KvCounters> {
        self.counters.clone()
    }

    /// Counts one operation and gives the backend that serves it.
    fn op(&self) -> &Backend {
        self.counters.calls.fetch_add(1, Ordering::Relaxed);
        &self.backend
    }

    pub fn get(&self, store: &str, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        let value = match self.op() {
            Backend::Sqlite(db) => db.get(store, key),
            Backend::Redis(r) => r.get(key),
        }?;
        self.counters.read(1, value.as_ref());
        Ok(value)
    }

    pub fn set(&self, store: &str, key: &str, value: &[u8]) -> Result<(), KvError> {
        match self.op() {
            Backend::Sqlite(db) => db.set(store, key, value),
            Backend::Redis(r) => r.set(key, value),
        }?;
        self.counters.wrote([key]);
        Ok(())
    }

    pub fn delete(&self, store: &str, key: &str) -> Result<(), KvError> {
        match self.op() {
            Backend::Sqlite(db) => db.delete(store, key),
            Backend::Redis(r) => r.delete(key),
        }
    }

    pub fn exists(&self, store: &str, key: &str) -> Result<bool, KvError> {
        match self.op() {
            Backend::Sqlite(db) => db.exists(store, key),
            Backend::Redis(r) => r.exists(key),
        }
    }

    /// Every key of the store (of every store on Redis, which ignores labels).
    pub fn list_keys(&self, store: &str) -> Result<Vec<String>, KvError> {
        match self.op() {
            Backend::Sqlite(db) => db.list_keys(store),
            Backend::Redis(r) => r.list_keys(),
        }
    }

    pub fn get_many(&self, store: &str, keys: &[String]) -> Result<Pairs, KvError> {
        let pairs = match self.op() {
            Backend::Sqlite(db) => db.get_many(store, keys),
            Backend::Redis(r) => r.get_many(keys),
        }?;
        self.counters
            .read(keys.len(), pairs.iter().filter_map(|(_, v)| v.as_ref()));
        Ok(pairs)
    }

    pub fn set_many(&self, store: &str, kvs: &[(String, Vec<u8>)]) -> Result<(), KvError> {
        match self.op() {
            Backend::Sqlite(db) => db.set_many(store, kvs),
            Backend::Redis(r) => r.set_many(kvs),
        }?;
        self.counters.wrote(kvs.iter().map(|(k, _)| k.as_str()));
        Ok(())
    }

    pub fn delete_many(&self, store: &str, keys: &[String]) -> Result<(), KvError> {
        match self.op() {
            Backend::Sqlite(db) => db.delete_many(store, keys),
            Backend::Redis(r) => r.delete_many(keys),
        }
    }

    pub fn increment(&self, store: &str, key: &str, delta: i64) -> Result<i64, KvError> {
        let n = match self.op() {
            Backend::Sqlite(db) => db.increment(store, key, delta),
            Backend::Redis(r) => r.increment(key, delta),
        }?;
        if delta != 0 {
            self.counters.wrote([key]);
        }
        Ok(n)
    }

    /// A new compare-and-swap handle (Redis: on a connection of its own).
    pub fn cas_new(&self) -> Result<CasState, KvError> {
        match self.op() {
            Backend::Sqlite(_) => Ok(CasState::Sqlite { seen: None }),
            Backend::Redis(r) => r.cas_new().map(CasState::Redis),
        }
    }

    /// Reads the current value and remembers what a later swap compares with.
    pub fn cas_current(
        &self,
        store: &str,
        key: &str,
        state: &mut CasState,
    ) -> Result<Option<Vec<u8>>, KvError> {
        match (self.op(), state) {
            (Backend::Sqlite(db), CasState::Sqlite { seen }) => {
                let value = db.get(store, key)?;
                seen.clone_from(&value);
                Ok(value)
            }
            (Backend::Redis(r), CasState::Redis(cas)) => r.cas_current(cas, key),
            _ => Err(KvError::Other("compare-and-swap of another backend".into())),
        }
    }

    pub fn cas_swap(
        &self,
        store: &str,
        key: &str,
        state: CasState,
        value: &[u8],
    ) -> Result<Swap, KvError> {
        let swap = match (self.op(), state) {
            (Backend::Sqlite(db), CasState::Sqlite { seen }) => {
                db.swap(store, key, seen.as_deref(), value)
            }
            (Backend::Redis(r), CasState::Redis(cas)) => r.cas_swap(cas, key, value),
            _ => Err(KvError::Other("compare-and-swap of another backend".into())),
        }?;
        if swap == Swap::Swapped {
            self.counters.wrote([key]);
        }
        Ok(swap)
    }
}

/// A key-value error as the backends report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvError {
    Other(String),
}

impl std::fmt::Display for KvError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KvError::Other(s) => f.write_str(s),
        }
    }
}

fn other(e: impl std::fmt::Display) -> KvError {
    KvError::Other(e.to_string())
}

/// Key-value pairs as `get-many` returns them.
pub type Pairs = Vec<(String, Option<Vec<u8>>)>;

/// Result of a compare-and-swap attempt.
#[derive(Debug, PartialEq, Eq)]
pub enum Swap {
    Swapped,
    /// The row no longer held the value `current` read.
    Failed,
}

/// The SQLite-backed store of one host.
pub struct KvDb {
    conn: Mutex<Connection>,
}

const UPSERT: &str = "INSERT INTO spin_key_value (store, key, value) VALUES ($1, $2, $3)
     ON CONFLICT(store, key) DO UPDATE SET value=$3";
const SELECT: &str = "SELECT value FROM spin_key_value WHERE store=$1 AND key=$2";

impl KvDb {
    /// Opens (creating if needed) the database file.
    pub fn open(path: &Path) -> Result<KvDb> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let conn = Connection::open(path)
            .with_context(|| format!("opening key-value database {}", path.display()))?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        // `rarray`, for batch reads over a list of keys (as Spin loads it).
        rusqlite::vtab::array::load_module(&conn)?;
        conn.execute(
            "CREATE TABLE IF NOT EXISTS spin_key_value (
                store TEXT NOT NULL,
                key   TEXT NOT NULL,
                value BLOB NOT NULL,
                PRIMARY KEY (store, key)
            )",
            [],
        )?;
        Ok(KvDb {
            conn: Mutex::new(conn),
        })
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<T, KvError> {
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut conn).map_err(other)
    }

    pub fn get(&self, store: &str, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        self.with(|c| {
            c.prepare_cached(SELECT)?
                .query_row(params![store, key], |r| r.get(0))
                .optional()
        })
    }

    pub fn set(&self, store: &str, key: &str, value: &[u8]) -> Result<(), KvError> {
        self.with(|c| {
            c.prepare_cached(UPSERT)?
                .execute(params![store, key, value])
        })
        .map(drop)
    }

    pub fn delete(&self, store: &str, key: &str) -> Result<(), KvError> {
        self.with(|c| {
            c.prepare_cached("DELETE FROM spin_key_value WHERE store=$1 AND key=$2")?
                .execute(params![store, key])
        })
        .map(drop)
    }

    pub fn exists(&self, store: &str, key: &str) -> Result<bool, KvError> {
        Ok(self.get(store, key)?.is_some())
    }

    /// Every key of `store`.
    pub fn list_keys(&self, store: &str) -> Result<Vec<String>, KvError> {
        self.with(|c| {
            let mut stmt = c.prepare_cached("SELECT key FROM spin_key_value WHERE store=$1")?;
            stmt.query_map(params![store], |r| r.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()
        })
    }

    /// Values of the keys that exist, in no particular order (like Spin, absent
    /// keys are left out).
    pub fn get_many(&self, store: &str, keys: &[String]) -> Result<Pairs, KvError> {
        // One statement over all keys, as Spin's SQLite store does (`IN
        // rarray(..)`): one read lock, not one per key. Key by key, a batch
        // of 130 keys took 130 lock and unlock system calls, a cost that
        // Spin does not have and the benchmark would wrongly blame on the
        // product.
        let keys: Vec<rusqlite::types::Value> = keys
            .iter()
            .map(|k| rusqlite::types::Value::from(k.clone()))
            .collect();
        self.with(|c| {
            c.prepare_cached(
                "SELECT key, value FROM spin_key_value WHERE store=$1 AND key IN rarray($2)",
            )?
            .query_map(params![store, std::rc::Rc::new(keys)], |r| {
                Ok((r.get::<_, String>(0)?, Some(r.get::<_, Vec<u8>>(1)?)))
            })?
            .collect()
        })
    }

    pub fn set_many(&self, store: &str, kvs: &[(String, Vec<u8>)]) -> Result<(), KvError> {
        self.with(|c| {
            let tx = c.transaction()?;
            for (k, v) in kvs {
                tx.prepare_cached(UPSERT)?.execute(params![store, k, v])?;
            }
            tx.commit()
        })
    }

    pub fn delete_many(&self, store: &str, keys: &[String]) -> Result<(), KvError> {
        self.with(|c| {
            let tx = c.transaction()?;
            for k in keys {
                tx.prepare_cached("DELETE FROM spin_key_value WHERE store=$1 AND key=$2")?
                    .execute(params![store, k])?;
            }
            tx.commit()
        })
    }

    /// Adds `delta` to the counter at `key` and returns the new value.
    pub fn increment(&self, store: &str, key: &str, delta: i64) -> Result<i64, KvError> {
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let tx = conn.transaction().map_err(other)?;
        let value: Option<Vec<u8>> = tx
            .prepare_cached(SELECT)
            .map_err(other)?
            .query_row(params![store, key], |r| r.get(0))
            .optional()
            .map_err(other)?;
        let current = match value {
            None => 0,
            Some(bytes) => {
                let arr: [u8; 8] = bytes.as_slice().try_into().map_err(|_| {
                    // Spin 4.0.2 panics here; a test host reports it instead.
                    KvError::Other(format!(
                        "value of {key:?} is not an 8-byte little-endian counter ({} bytes)",
                        bytes.len()
                    ))
                })?;
                i64::from_le_bytes(arr)
            }
        };
        let new = current
            .checked_add(delta)
            .ok_or_else(|| KvError::Other("counter overflow".into()))?;
        tx.prepare_cached(UPSERT)
            .map_err(other)?
            .execute(params![store, key, new.to_le_bytes().to_vec()])
            .map_err(other)?;
        tx.commit().map_err(other)?;
        Ok(new)
    }

    /// Writes `new` if the row still holds `expected` (`None`: write unconditionally).
    pub fn swap(
        &self,
        store: &str,
        key: &str,
        expected: Option<&[u8]>,
        new: &[u8],
    ) -> Result<Swap, KvError> {
        let rows = self.with(|c| match expected {
            Some(old) => c
                .prepare_cached(
                    "UPDATE spin_key_value SET value=$1 WHERE store=$2 AND key=$3 AND value=$4",
                )?
                .execute(params![new, store, key, old]),
            None => c.prepare_cached(UPSERT)?.execute(params![store, key, new]),
        })?;
        Ok(if rows == 1 {
            Swap::Swapped
        } else {
            Swap::Failed
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> (tempfile::TempDir, KvDb) {
        let dir = tempfile::tempdir().unwrap();
        let db = KvDb::open(&dir.path().join("kv.db")).unwrap();
        (dir, db)
    }

    #[test]
    fn stores_are_separate_namespaces() {
        let (_d, db) = db();
        db.set("a", "k", b"1").unwrap();
        assert_eq!(db.get("a", "k").unwrap(), Some(b"1".to_vec()));
        assert_eq!(db.get("b", "k").unwrap(), None);
        db.delete("a", "k").unwrap();
        assert!(!db.exists("a", "k").unwrap());
    }

    #[test]
    fn increment_stores_little_endian_i64() {
        let (_d, db) = db();
        assert_eq!(db.increment("s", "n", 0).unwrap(), 0);
        assert_eq!(db.increment("s", "n", 5).unwrap(), 5);
        assert_eq!(db.increment("s", "n", -2).unwrap(), 3);
        assert_eq!(db.get("s", "n").unwrap(), Some(3i64.to_le_bytes().to_vec()));
        db.set("s", "text", b"3").unwrap();
        assert!(db.increment("s", "text", 1).is_err());
    }

    #[test]
    fn swap_compares_with_the_value_read() {
        let (_d, db) = db();
        db.set("s", "k", b"old").unwrap();
        assert_eq!(
            db.swap("s", "k", Some(b"other"), b"new").unwrap(),
            Swap::Failed
        );
        assert_eq!(
            db.swap("s", "k", Some(b"old"), b"new").unwrap(),
            Swap::Swapped
        );
        assert_eq!(db.get("s", "k").unwrap(), Some(b"new".to_vec()));
        // No value read: unconditional write, as in Spin's SQLite backend.
        assert_eq!(db.swap("s", "k", None, b"x").unwrap(), Swap::Swapped);
        assert_eq!(db.get("s", "k").unwrap(), Some(b"x".to_vec()));
    }

    #[test]
    fn get_many_leaves_out_absent_keys() {
        let (_d, db) = db();
        db.set_many(
            "s",
            &[("a".into(), b"1".to_vec()), ("b".into(), b"2".to_vec())],
        )
        .unwrap();
        let got = db
            .get_many("s", &["a".into(), "zz".into(), "b".into()])
            .unwrap();
        assert_eq!(
            got,
            vec![
                ("a".to_string(), Some(b"1".to_vec())),
                ("b".to_string(), Some(b"2".to_vec()))
            ]
        );
        db.delete_many("s", &["a".into()]).unwrap();
        assert!(!db.exists("s", "a").unwrap());
    }
}

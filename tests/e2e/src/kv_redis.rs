//! Key-value data on a Redis server, with the semantics of Spin 4.0.2's Redis
//! backend (`[key_value_store.<label>] type = "redis"` in a runtime config):
//! - the store label is ignored: every store of the application shares one
//!   key space, keys are written as the component gives them;
//! - `get`/`set`/`delete`/`exists` are `GET`/`SET`/`DEL`/`EXISTS`,
//!   `set-many` is `MSET`, `delete-many` is `DEL k1 k2 …`;
//! - `increment` is `INCRBY`, so a counter is a decimal string (`"42"`), not
//!   SQLite's 8 little-endian bytes, and incrementing a key that holds other
//!   bytes fails;
//! - compare-and-swap runs on a connection of its own: `current` is
//!   `WATCH key` then `GET key`, `swap` is `MULTI`, `SET`, `EXEC`. A swap fails
//!   if the key changed since the `WATCH` — including being created, so unlike
//!   SQLite, two racing first writers of a key cannot both win. A swap without
//!   `current` writes unconditionally.
//!
//! [`RedisSemantics::Spin402`] reproduces two defects of Spin 4.0.2's backend
//! as released (see the variant's docs); [`RedisSemantics::Intended`], the
//! default, is what that backend is written to do.

use crate::kv::{KvError, Pairs, Swap};
use anyhow::{Context, Result};
use redis::{Client, Commands, Connection, RedisResult, Value};
use std::sync::Mutex;
use std::time::Duration;

/// Which behaviour of Spin's Redis backend to reproduce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RedisSemantics {
    /// What Spin's Redis backend is written to do: `get-many` is `MGET`, and a
    /// swap reports whether its `EXEC` ran.
    #[default]
    Intended,
    /// The commands Spin 4.0.2 actually sends:
    /// - `get-many` sends `KEYS k1 k2 …` (not `MGET`): two or more keys fail
    ///   with "wrong number of arguments for 'keys'"; one key comes back as
    ///   the redis crate parses a `KEYS` answer into key/value pairs;
    /// - after `MULTI`/`SET`/`EXEC`, `swap` sends `UNWATCH key`, which Redis
    ///   refuses (UNWATCH takes no argument), and reports that refusal as a
    ///   failed compare-and-swap: every swap answers `cas-failed`, also when
    ///   its `SET` was applied; an aborted `EXEC` is not noticed.
    Spin402,
}

/// Where the Redis store is and how it behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisConfig {
    /// `redis://host:port/` as in a runtime config's `url`.
    pub url: String,
    pub semantics: RedisSemantics,
}

/// The Redis-backed store of one host: a pool of connections for plain
/// commands; each compare-and-swap opens its own (a `WATCH` belongs to the
/// connection that sent it).
pub struct RedisKv {
    client: Client,
    semantics: RedisSemantics,
    pool: Mutex<Vec<Connection>>,
}

/// The connection of one compare-and-swap handle.
pub struct RedisCas {
    conn: Connection,
}

fn other(e: impl std::fmt::Debug) -> KvError {
    // Spin reports Redis errors with their Debug text.
    KvError::Other(format!("{e:?}"))
}

const TIMEOUT: Duration = Duration::from_secs(30);

impl RedisKv {
    /// Connects to the server and checks that it answers.
    pub fn open(config: &RedisConfig) -> Result<RedisKv> {
        let client = Client::open(config.url.as_str())
            .with_context(|| format!("invalid Redis URL {:?}", config.url))?;
        let kv = RedisKv {
            client,
            semantics: config.semantics,
            pool: Mutex::new(Vec::new()),
        };
        let mut conn = kv
            .connect()
            .with_context(|| format!("connecting to Redis at {}", config.url))?;
        redis::cmd("PING")
            .exec(&mut conn)
            .with_context(|| format!("PING to Redis at {}", config.url))?;
        kv.pool.lock().unwrap_or_else(|p| p.into_inner()).push(conn);
        Ok(kv)
    }

    pub fn semantics(&self) -> RedisSemantics {
        self.semantics
    }

    fn connect(&self) -> RedisResult<Connection> {
        let conn = self.client.get_connection_with_timeout(TIMEOUT)?;
        conn.set_read_timeout(Some(TIMEOUT))?;
        conn.set_write_timeout(Some(TIMEOUT))?;
        Ok(conn)
    }

    /// Runs `f` on a pooled connection; a connection that failed at the
    /// transport level is not returned to the pool.
    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> RedisResult<T>) -> Result<T, KvError> {
        let pooled = self.pool.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let mut conn = match pooled {
            Some(c) => c,
            None => self.connect().map_err(other)?,
        };
        let result = f(&mut conn);
        let healthy = match &result {
            Ok(_) => true,
            Err(e) => !(e.is_io_error() || e.is_connection_dropped() || e.is_timeout()),
        };
        if healthy {
            self.pool
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(conn);
        }
        result.map_err(other)
    }

    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        self.with(|c| c.get(key))
    }

    pub fn set(&self, key: &str, value: &[u8]) -> Result<(), KvError> {
        self.with(|c| c.set(key, value))
    }

    pub fn delete(&self, key: &str) -> Result<(), KvError> {
        self.with(|c| c.del(key))
    }

    pub fn exists(&self, key: &str) -> Result<bool, KvError> {
        self.with(|c| c.exists(key))
    }

    /// `KEYS *`, as Spin's Redis backend lists keys.
    pub fn list_keys(&self) -> Result<Vec<String>, KvError> {
        self.with(|c| c.keys("*"))
    }

    /// `MGET`: every key asked for, with `None` where absent. Under
    /// [`RedisSemantics::Spin402`], what Spin 4.0.2 sends instead (`KEYS`).
    pub fn get_many(&self, keys: &[String]) -> Result<Pairs, KvError> {
        match self.semantics {
            // Spin answers an empty batch itself, whatever the backend.
            _ if keys.is_empty() => Ok(Vec::new()),
            RedisSemantics::Spin402 => self.with(|c| c.keys(keys)),
            RedisSemantics::Intended => {
                let values: Vec<Option<Vec<u8>>> = self.with(|c| c.mget(keys))?;
                Ok(keys.iter().cloned().zip(values).collect())
            }
        }
    }

    pub fn set_many(&self, kvs: &[(String, Vec<u8>)]) -> Result<(), KvError> {
        if kvs.is_empty() {
            return Ok(());
        }
        self.with(|c| c.mset(kvs))
    }

    pub fn delete_many(&self, keys: &[String]) -> Result<(), KvError> {
        if keys.is_empty() {
            return Ok(());
        }
        self.with(|c| c.del(keys))
    }

    /// `INCRBY key delta`: the new value; the counter is a decimal string.
    pub fn increment(&self, key: &str, delta: i64) -> Result<i64, KvError> {
        self.with(|c| c.incr(key, delta))
    }

    /// A compare-and-swap handle on a connection of its own.
    pub fn cas_new(&self) -> Result<RedisCas, KvError> {
        Ok(RedisCas {
            conn: self.connect().map_err(other)?,
        })
    }

    /// `WATCH key`, then `GET key`.
    pub fn cas_current(&self, cas: &mut RedisCas, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        redis::cmd("WATCH")
            .arg(key)
            .exec(&mut cas.conn)
            .map_err(other)?;
        cas.conn.get(key).map_err(other)
    }

    /// `MULTI`, `SET key value`, `EXEC`: swapped unless the watched key
    /// changed (under [`RedisSemantics::Spin402`], always `Failed`, as there).
    pub fn cas_swap(&self, mut cas: RedisCas, key: &str, value: &[u8]) -> Result<Swap, KvError> {
        let exec: RedisResult<Value> = redis::pipe().atomic().set(key, value).query(&mut cas.conn);
        match self.semantics {
            RedisSemantics::Intended => match exec {
                // EXEC answers nil when a watched key changed: nothing was set.
                Ok(Value::Nil) => Ok(Swap::Failed),
                Ok(_) => Ok(Swap::Swapped),
                Err(e) => Err(other(e)),
            },
            RedisSemantics::Spin402 => {
                // Spin 4.0.2 sends `UNWATCH <key>` and maps its error to a
                // failed swap before looking at the EXEC result.
                let unwatch = redis::cmd("UNWATCH").arg(key).exec(&mut cas.conn);
                match (unwatch, exec) {
                    (Err(_), _) => Ok(Swap::Failed),
                    (Ok(()), Ok(_)) => Ok(Swap::Swapped),
                    (Ok(()), Err(_)) => Ok(Swap::Failed),
                }
            }
        }
    }

    /// Every key and value in the server's database, for tests that compare
    /// the store before and after a request.
    pub fn dump(&self) -> Result<std::collections::BTreeMap<String, Vec<u8>>, KvError> {
        let keys: Vec<String> = self.with(|c| Ok(c.scan::<String>()?.collect()))?;
        let mut out = std::collections::BTreeMap::new();
        for key in keys {
            if let Some(v) = self.get(&key)? {
                out.insert(key, v);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redis_server::RedisServer;

    fn kv(server: &RedisServer, semantics: RedisSemantics) -> RedisKv {
        RedisKv::open(&RedisConfig {
            url: server.url(),
            semantics,
        })
        .unwrap()
    }

    #[test]
    fn counters_are_decimal_strings_and_other_values_cannot_be_incremented() {
        let Some(server) = RedisServer::start_or_skip("kv_redis counters") else {
            return;
        };
        let kv = kv(&server, RedisSemantics::Intended);
        assert_eq!(kv.increment("n", 0).unwrap(), 0);
        assert_eq!(kv.increment("n", 5).unwrap(), 5);
        assert_eq!(kv.increment("n", -2).unwrap(), 3);
        assert_eq!(kv.get("n").unwrap(), Some(b"3".to_vec()));
        kv.set("le", &3i64.to_le_bytes()).unwrap();
        assert!(kv.increment("le", 1).is_err());
    }

    #[test]
    fn a_swap_fails_when_the_key_was_created_after_current_read_nothing() {
        let Some(server) = RedisServer::start_or_skip("kv_redis cas") else {
            return;
        };
        let kv = kv(&server, RedisSemantics::Intended);
        let (mut a, mut b) = (kv.cas_new().unwrap(), kv.cas_new().unwrap());
        assert_eq!(kv.cas_current(&mut a, "k").unwrap(), None);
        assert_eq!(kv.cas_current(&mut b, "k").unwrap(), None);
        assert_eq!(kv.cas_swap(a, "k", b"first").unwrap(), Swap::Swapped);
        assert_eq!(kv.cas_swap(b, "k", b"second").unwrap(), Swap::Failed);
        assert_eq!(kv.get("k").unwrap(), Some(b"first".to_vec()));
        // Without `current` there is nothing watched: the write goes through.
        let c = kv.cas_new().unwrap();
        assert_eq!(kv.cas_swap(c, "k", b"blind").unwrap(), Swap::Swapped);
        assert_eq!(kv.get("k").unwrap(), Some(b"blind".to_vec()));
    }

    #[test]
    fn get_many_is_mget_and_batches_write_and_delete_together() {
        let Some(server) = RedisServer::start_or_skip("kv_redis batch") else {
            return;
        };
        let kv = kv(&server, RedisSemantics::Intended);
        kv.set_many(&[("a".into(), b"1".to_vec()), ("b".into(), b"2".to_vec())])
            .unwrap();
        let got = kv.get_many(&["a".into(), "zz".into(), "b".into()]).unwrap();
        assert_eq!(
            got,
            vec![
                ("a".to_string(), Some(b"1".to_vec())),
                ("zz".to_string(), None),
                ("b".to_string(), Some(b"2".to_vec())),
            ]
        );
        let mut keys = kv.list_keys().unwrap();
        keys.sort();
        assert_eq!(keys, ["a", "b"]);
        kv.delete_many(&["a".into(), "b".into()]).unwrap();
        assert!(!kv.exists("a").unwrap() && !kv.exists("b").unwrap());
        assert!(kv.dump().unwrap().is_empty());
    }

    #[test]
    fn spin_4_0_2_semantics_fail_every_swap_and_every_get_many_of_two_keys() {
        let Some(server) = RedisServer::start_or_skip("kv_redis spin 4.0.2") else {
            return;
        };
        let kv = kv(&server, RedisSemantics::Spin402);
        kv.set("a", b"1").unwrap();
        kv.set("b", b"2").unwrap();
        // Spin answers empty batches without asking Redis.
        assert_eq!(kv.get_many(&[]).unwrap(), vec![]);
        kv.set_many(&[]).unwrap();
        kv.delete_many(&[]).unwrap();
        let err = kv.get_many(&["a".into(), "b".into()]).unwrap_err();
        assert!(
            err.to_string().contains("wrong number of arguments"),
            "{err}"
        );
        // The swap's SET is applied, yet reported as a failed swap.
        let mut cas = kv.cas_new().unwrap();
        assert_eq!(kv.cas_current(&mut cas, "a").unwrap(), Some(b"1".to_vec()));
        assert_eq!(kv.cas_swap(cas, "a", b"2").unwrap(), Swap::Failed);
        assert_eq!(kv.get("a").unwrap(), Some(b"2".to_vec()));
    }
}

//! The seam between the domain and a key-value backend.
//!
//! [`KeyValue`] is what Spin's `spin:key-value` and `wasi:keyvalue` offer a
//! component: get, get-many, set, delete, exists, compare-and-swap and
//! increment, on one store. Each call is a host call (and, on Redis, a network
//! round trip), so the typed layers above count on few of them. The Spin
//! implementation lives in the function crates; [`crate::memory::MemoryStore`]
//! has the same semantics for tests.

/// A backend failure. Carries no key or value, so it is safe to log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KvError {
    /// The store is not allowed for this component or does not exist.
    #[error("key-value store is not available: {0}")]
    Unavailable(String),
    /// Any other backend failure.
    #[error("key-value backend failed: {0}")]
    Backend(String),
    /// A counter key holds something that is not a counter.
    #[error("value is not a counter")]
    NotACounter,
    /// A sealed value does not open: changed, moved to another key, or sealed with an unknown key.
    #[error("a stored value failed its integrity check: {0}")]
    Sealed(String),
}

/// A compare-and-swap in progress: [`Cas::current`] is the value when it began,
/// [`Cas::swap`] writes only if nobody wrote the key since.
pub trait Cas {
    /// The value of the key when the operation began (`None` when absent).
    fn current(&self) -> Result<Option<Vec<u8>>, KvError>;
    /// Writes `value` if the key is unchanged since the operation began; `Ok(false)` when it changed.
    fn swap(self, value: &[u8]) -> Result<bool, KvError>;
}

/// One key-value store with Spin's semantics.
pub trait KeyValue {
    /// Compare-and-swap handle of this backend.
    type Cas: Cas;

    /// The value under `key`.
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError>;
    /// The values under `keys`, in the same order, in one host call.
    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, KvError>;
    /// Stores `value` under `key`.
    fn set(&self, key: &str, value: &[u8]) -> Result<(), KvError>;
    /// Stores several values in one host call (not atomic as a whole).
    fn set_many(&self, entries: &[(String, Vec<u8>)]) -> Result<(), KvError>;
    /// Removes `key` (no error when absent).
    fn delete(&self, key: &str) -> Result<(), KvError>;
    /// Whether `key` holds a value.
    fn exists(&self, key: &str) -> Result<bool, KvError>;
    /// Begins a compare-and-swap on `key`.
    ///
    /// Beware Spin's SQLite semantics: the swap compares *values*, and when the
    /// key was absent it writes unconditionally, so two creators can both win.
    /// Do not call this directly for records: use
    /// [`crate::records::update_json`] and [`crate::records::create_json`],
    /// which elect a single creator.
    fn cas(&self, key: &str) -> Result<Self::Cas, KvError>;
    /// Every key of the store, in no particular order. One host call that
    /// buffers every key (Spin offers no cursor): for administration only,
    /// such as re-sealing every value after a key rotation.
    fn list_keys(&self) -> Result<Vec<String>, KvError> {
        Err(KvError::Backend("this backend cannot list its keys".into()))
    }
    /// Re-seals one page of values with the current data key (key rotation):
    /// only a sealing store ([`crate::sealed::SealedKv`]) can.
    fn reseal_page(
        &self,
        _after: Option<&str>,
        _limit: usize,
    ) -> Result<crate::sealed::ResealPage, KvError> {
        Err(KvError::Backend(
            "this store does not seal its values".into(),
        ))
    }
    /// Adds `delta` to the counter under `key` (created at 0) and returns the new value.
    /// Read a counter with `increment(key, 0)`, never with `get`: backends encode counters differently.
    fn increment(&self, key: &str, delta: i64) -> Result<i64, KvError>;
}

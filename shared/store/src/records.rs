//! JSON records over [`KeyValue`]: read, write, and read-modify-write with
//! compare-and-swap, so concurrent requests never lose an update.

use crate::kv::{Cas, KeyValue, KvError};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Why a store operation failed. Never carries a key or a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The backend failed.
    #[error(transparent)]
    Kv(#[from] KvError),
    /// A stored record did not decode.
    #[error("stored {0} record is corrupt")]
    Corrupt(&'static str),
    /// Too many concurrent writers on one key; the caller may retry.
    #[error("too much contention on one record")]
    Contention,
}

/// What a read-modify-write returned: the domain refused, or the store failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpdateError<E> {
    /// The update function refused the change.
    #[error("update refused")]
    Refused(E),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Most compare-and-swap attempts on one key before [`StoreError::Contention`].
pub const MAX_CAS_ATTEMPTS: usize = 256;

/// Gives other writers a chance after a lost compare-and-swap.
pub fn backoff(attempt: usize) {
    for _ in 0..attempt.min(16) {
        std::thread::yield_now();
    }
}

/// Decodes a stored record.
pub fn decode<T: DeserializeOwned>(bytes: &[u8], what: &'static str) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|_| StoreError::Corrupt(what))
}

/// Encodes a record.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("records serialise")
}

/// Reads a JSON record.
pub fn get_json<T: DeserializeOwned>(
    kv: &impl KeyValue,
    key: &str,
    what: &'static str,
) -> Result<Option<T>, StoreError> {
    kv.get(key)?.map(|b| decode(&b, what)).transpose()
}

/// Writes a JSON record unconditionally (only for keys no other request writes).
pub fn put_json<T: Serialize>(kv: &impl KeyValue, key: &str, value: &T) -> Result<(), StoreError> {
    Ok(kv.set(key, &encode(value))?)
}

/// Creates a record only if the key is absent. `Ok(false)` when it already existed.
pub fn create_json<T: Serialize>(
    kv: &impl KeyValue,
    key: &str,
    value: &T,
) -> Result<bool, StoreError> {
    let cas = kv.cas(key)?;
    if cas.current()?.is_some() {
        return Ok(false);
    }
    Ok(cas.swap(&encode(value))?)
}

/// Read-modify-write of a JSON record with compare-and-swap, retried on conflict.
///
/// `f` gets the current value and returns the new one, `Ok(None)` to leave the
/// record as it is, or `Err` to refuse. `f` may run several times; it must not
/// have side effects. Returns the value the record holds afterwards.
pub fn update_json<T, E>(
    kv: &impl KeyValue,
    key: &str,
    what: &'static str,
    mut f: impl FnMut(Option<T>) -> Result<Option<T>, E>,
) -> Result<Option<T>, UpdateError<E>>
where
    T: Serialize + DeserializeOwned + Clone,
{
    for attempt in 0..MAX_CAS_ATTEMPTS {
        backoff(attempt);
        let cas = kv.cas(key).map_err(StoreError::from)?;
        let current: Option<T> = cas
            .current()
            .map_err(StoreError::from)?
            .map(|b| decode(&b, what))
            .transpose()?;
        match f(current.clone()).map_err(UpdateError::Refused)? {
            None => return Ok(current),
            Some(next) => {
                if cas.swap(&encode(&next)).map_err(StoreError::from)? {
                    return Ok(Some(next));
                }
            }
        }
    }
    Err(StoreError::Contention.into())
}

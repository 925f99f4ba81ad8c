//! JSON records over [`KeyValue`]: read, write, and read-modify-write with
//! compare-and-swap, so concurrent requests never lose an update.
//!
//! Spin's SQLite backend compares values, and a swap on a key that was absent
//! writes unconditionally (see [`crate::memory`]). So a record is created by
//! one elected writer: the caller whose `increment` of the companion counter
//! `<key>#create` returns 1 writes it; everyone else waits for that write and
//! then updates it with an ordinary compare-and-swap, which is safe once the
//! key exists. Keys created this way are never deleted, except through
//! [`delete_created`], which removes the record and then its counter.

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
    /// A record the audit log says exists is missing (deleted behind the
    /// product's back): never read as "none".
    #[error("stored {0} record is missing")]
    Missing(&'static str),
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
///
/// The first attempts only yield; later ones sleep a little longer each time
/// (up to 10 ms), so that a writer that lost many times stops spinning on the
/// host while the winner finishes.
pub fn backoff(attempt: usize) {
    match attempt {
        0 => {}
        1..=3 => std::thread::yield_now(),
        n => std::thread::sleep(std::time::Duration::from_millis(n.min(10) as u64)),
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

/// The companion counter that elects the creator of `key`.
pub fn creation_counter(key: &str) -> String {
    format!("{key}#create")
}

/// Whether this caller is the one allowed to create `key` (the first to ask).
pub fn elect_creator(kv: &impl KeyValue, key: &str) -> Result<bool, StoreError> {
    Ok(kv.increment(&creation_counter(key), 1)? == 1)
}

/// How long the loser of an election waits for the winner's write before it
/// assumes the winner died between winning and writing, and holds a new
/// election. Far longer than the two consecutive host calls it covers.
pub const ELECTION_PATIENCE: std::time::Duration = std::time::Duration::from_secs(5);

/// Creates a record only if no one created it before, on every backend.
/// `Ok(false)` when someone else created it; the record exists on return.
pub fn create_json<T: Serialize>(
    kv: &impl KeyValue,
    key: &str,
    value: &T,
) -> Result<bool, StoreError> {
    for _round in 0..3 {
        if kv.exists(key)? {
            return Ok(false);
        }
        if elect_creator(kv, key)? {
            kv.set(key, &encode(value))?;
            return Ok(true);
        }
        let lost_at = std::time::Instant::now();
        let mut attempt = 0;
        while lost_at.elapsed() < ELECTION_PATIENCE {
            attempt += 1;
            backoff(attempt);
            if kv.exists(key)? {
                return Ok(false);
            }
        }
        // The elected writer never wrote: it died between winning and writing.
        kv.delete(&creation_counter(key))?;
    }
    Err(StoreError::Contention)
}

/// Removes a record made by [`create_json`] or [`update_json`], and then its
/// creation counter, so that the key can be created again.
pub fn delete_created(kv: &impl KeyValue, key: &str) -> Result<(), StoreError> {
    kv.delete(key)?;
    kv.delete(&creation_counter(key))?;
    Ok(())
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
    let mut lost_since: Option<std::time::Instant> = None;
    let mut attempt = 0;
    while attempt < MAX_CAS_ATTEMPTS
        || lost_since.is_some_and(|t| t.elapsed() < ELECTION_PATIENCE * 2)
    {
        backoff(attempt);
        attempt += 1;
        let cas = kv.cas(key).map_err(StoreError::from)?;
        let current: Option<T> = cas
            .current()
            .map_err(StoreError::from)?
            .map(|b| decode(&b, what))
            .transpose()?;
        let absent = current.is_none();
        match f(current.clone()).map_err(UpdateError::Refused)? {
            None => return Ok(current),
            Some(next) if absent => {
                // A swap would write unconditionally: only the elected creator writes.
                if elect_creator(kv, key)? {
                    kv.set(key, &encode(&next)).map_err(StoreError::from)?;
                    return Ok(Some(next));
                }
                let since = *lost_since.get_or_insert_with(std::time::Instant::now);
                if since.elapsed() >= ELECTION_PATIENCE {
                    // The elected writer never wrote: it died between winning and writing.
                    kv.delete(&creation_counter(key))
                        .map_err(StoreError::from)?;
                    lost_since = None;
                }
            }
            Some(next) => {
                if cas.swap(&encode(&next)).map_err(StoreError::from)? {
                    return Ok(Some(next));
                }
            }
        }
    }
    Err(StoreError::Contention.into())
}

//! Idempotency keys: a retry with the same key gets the first answer and changes nothing.
//!
//! Before a state-changing request runs, [`begin`] claims the caller's key with
//! compare-and-swap. The outcomes ([`NextAction`]): start processing (the key
//! was free), return the saved response (the same request finished before),
//! refuse because the key was used for a different request, or tell the caller
//! that the first request is still running. [`complete`] saves a successful
//! response; [`abandon`] frees the key after a failure, so a rejected request
//! leaves the store as it was.

use crate::keys;
use crate::kv::{Cas, KeyValue};
use crate::pii::sha256_hex;
use crate::records::{StoreError, decode, delete_created, elect_creator, encode};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Seconds after which an unfinished claim is taken over (its request died).
///
/// The slowest request the functions serve (vouchers for a class of 60, about
/// 1,500 key-value calls) takes well under this on the stores measured
/// (docs/PERFORMANCE.md); a client told 409 `request_in_progress` is told in
/// `Retry-After` how long until the claim may be retaken. docs/OPERATIONS.md
/// documents it (was 60 s).
pub const STALE_AFTER_SECS: i64 = 20;

/// A response saved for replay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedResponse {
    /// HTTP status.
    pub status: u16,
    /// Content type.
    pub content_type: String,
    /// Extra headers to replay (for example `location`).
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// Body text.
    pub body: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    request: String,
    started_at: DateTime<Utc>,
    /// When the key was first claimed; [`purge`] removes the record once it is
    /// older than the retention (ID-RETAIN). Records written before this field
    /// existed count from `started_at`.
    #[serde(default)]
    created_at: Option<DateTime<Utc>>,
    response: Option<SavedResponse>,
}

/// The index of every completed idempotency record, in the order of their
/// completion, that [`purge`] pages through.
pub const INDEX: &str = "idem:all";

/// The key of the purge position (how far [`purge`] has come in [`INDEX`]).
fn purge_head() -> String {
    keys::idempotency("_purge", "head")
}

/// What the handler should do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NextAction {
    /// The key is ours: run the request, then [`complete`] or [`abandon`].
    StartProcessing(Claim),
    /// The same request finished before: send this.
    ReturnSavedResponse(SavedResponse),
    /// The key was used for a different request.
    KeyReused,
    /// The first request with this key is still running; retry in this many
    /// seconds (when its claim may be retaken, if it died).
    InProgress {
        /// Seconds to wait, at least 1.
        retry_after_secs: i64,
    },
}

/// A claimed key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    key: String,
    request: String,
    started_at: DateTime<Utc>,
}

/// Validates an `Idempotency-Key` header value: 1 to 128 printable ASCII characters.
pub fn key_ok(key: &str) -> bool {
    !key.is_empty() && key.len() <= 128 && key.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

/// Claims `idempotency_key` of `caller` for the request whose canonical form is `request`.
///
/// `request` identifies the request (a retry must give the same bytes); pass a
/// keyed fingerprint ([`crate::pii::PiiHasher::fingerprint`]) rather than the
/// body, since a plain hash of a body holding an ID number can be reversed by
/// trying numbers.
pub fn begin(
    kv: &impl KeyValue,
    scope: &str,
    caller: &str,
    idempotency_key: &str,
    request: &[u8],
    now: DateTime<Utc>,
) -> Result<NextAction, StoreError> {
    let key = keys::idempotency(scope, &sha256_hex(format!("{caller}\n{idempotency_key}")));
    let request = sha256_hex(request);
    for attempt in 0..crate::records::MAX_CAS_ATTEMPTS {
        crate::records::backoff(attempt);
        let cas = kv.cas(&key)?;
        let current: Option<Record> = cas
            .current()?
            .map(|b| decode(&b, "idempotency"))
            .transpose()?;
        let record = Record {
            request: request.clone(),
            started_at: now,
            created_at: Some(now),
            response: None,
        };
        match current {
            Some(r) if r.request != request => return Ok(NextAction::KeyReused),
            Some(Record {
                response: Some(saved),
                ..
            }) => return Ok(NextAction::ReturnSavedResponse(saved)),
            Some(r) if (now - r.started_at).num_seconds() < STALE_AFTER_SECS => {
                return Ok(NextAction::InProgress {
                    retry_after_secs: (STALE_AFTER_SECS - (now - r.started_at).num_seconds())
                        .max(1),
                });
            }
            // A stale claim: take it over (the key exists, so the swap is a real compare-and-swap).
            Some(_) => {
                if cas.swap(&encode(&record))? {
                    return Ok(NextAction::StartProcessing(Claim {
                        key,
                        request,
                        started_at: now,
                    }));
                }
            }
            None => {
                if elect_creator(kv, &key)? {
                    kv.set(&key, &encode(&record))?;
                    return Ok(NextAction::StartProcessing(Claim {
                        key,
                        request,
                        started_at: now,
                    }));
                }
                // Another request with this key is writing its claim right now.
            }
        }
    }
    Ok(NextAction::InProgress {
        retry_after_secs: 1,
    })
}

/// Saves the response of a claimed request.
pub fn complete(
    kv: &impl KeyValue,
    claim: Claim,
    response: SavedResponse,
) -> Result<(), StoreError> {
    let record = Record {
        request: claim.request,
        started_at: claim.started_at,
        created_at: Some(claim.started_at),
        response: Some(response),
    };
    kv.set(&claim.key, &encode(&record))?;
    // Listed once it holds an answer: a failed request (abandoned) leaves no trace.
    crate::index::append(kv, INDEX, &claim.key)
}

/// Frees a claimed key after a failed request: nothing of it stays in the store.
pub fn abandon(kv: &impl KeyValue, claim: Claim) -> Result<(), StoreError> {
    delete_created(kv, &claim.key)
}

/// What one [`purge`] call did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Purged {
    /// Index entries looked at.
    pub scanned: usize,
    /// Records removed (created before the cutoff).
    pub purged: usize,
}

/// Removes idempotency records created before `cutoff`, looking at up to
/// `limit` entries of [`INDEX`] from where the previous call stopped.
///
/// The index lists records in the order of their completion (a few seconds at
/// most after their creation), so the first
/// record not older than `cutoff` ends the call; its position is kept (with
/// compare-and-swap, so two sweeps never move it backwards) and the next call
/// starts there. An entry whose record is gone (abandoned after a failure) is
/// passed over. A claim whose request died before it completed or abandoned is
/// not listed, so is not purged (it is retaken by the next retry with its key).
pub fn purge(
    kv: &impl KeyValue,
    cutoff: DateTime<Utc>,
    limit: usize,
) -> Result<Purged, StoreError> {
    let head_key = purge_head();
    let from: crate::index::Position =
        crate::records::get_json(kv, &head_key, "idempotency purge head")?.unwrap_or_default();
    let (entries, _) = crate::index::read(kv, INDEX, from, limit)?;
    let mut done = Purged::default();
    let mut position = from;
    for key in entries {
        let record: Option<Record> = kv
            .get(&key)?
            .map(|b| decode(&b, "idempotency"))
            .transpose()?;
        if let Some(r) = record {
            if r.created_at.unwrap_or(r.started_at) >= cutoff {
                break;
            }
            delete_created(kv, &key)?;
            done.purged += 1;
        }
        done.scanned += 1;
        // Pages fill up before the next one starts, so one past the end of a
        // page reads as the start of the next (see `index::read`).
        position.offset += 1;
    }
    if position != from {
        // Move the head forward only.
        for attempt in 0..crate::records::MAX_CAS_ATTEMPTS {
            crate::records::backoff(attempt);
            let cas = kv.cas(&head_key)?;
            let current: crate::index::Position = cas
                .current()?
                .map(|b| decode(&b, "idempotency purge head"))
                .transpose()?
                .unwrap_or_default();
            if (current.page, current.offset) >= (position.page, position.offset)
                || cas.swap(&encode(&position))?
            {
                break;
            }
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryStore;

    fn saved() -> SavedResponse {
        SavedResponse {
            status: 201,
            content_type: "application/json".into(),
            headers: vec![],
            body: "{}".into(),
        }
    }

    #[test]
    fn a_completed_key_replays_and_a_different_body_is_refused() {
        let kv = MemoryStore::new();
        let now = Utc::now();
        let NextAction::StartProcessing(claim) = begin(&kv, "s", "u", "k", b"a", now).unwrap()
        else {
            panic!()
        };
        assert_eq!(
            begin(&kv, "s", "u", "k", b"a", now).unwrap(),
            NextAction::InProgress {
                retry_after_secs: STALE_AFTER_SECS
            }
        );
        complete(&kv, claim, saved()).unwrap();
        assert_eq!(
            begin(&kv, "s", "u", "k", b"a", now).unwrap(),
            NextAction::ReturnSavedResponse(saved())
        );
        assert_eq!(
            begin(&kv, "s", "u", "k", b"b", now).unwrap(),
            NextAction::KeyReused
        );
        assert!(matches!(
            begin(&kv, "s", "other-user", "k", b"b", now).unwrap(),
            NextAction::StartProcessing(_)
        ));
    }

    #[test]
    fn an_abandoned_key_leaves_nothing_and_a_stale_claim_is_taken_over() {
        let kv = MemoryStore::new();
        let now = Utc::now();
        let NextAction::StartProcessing(claim) = begin(&kv, "s", "u", "k", b"a", now).unwrap()
        else {
            panic!()
        };
        abandon(&kv, claim).unwrap();
        assert!(kv.dump().is_empty());
        let _ = begin(&kv, "s", "u", "k", b"a", now).unwrap();
        // One second before the claim may be retaken, the caller is told to wait one second.
        let almost = now + chrono::Duration::seconds(STALE_AFTER_SECS - 1);
        assert_eq!(
            begin(&kv, "s", "u", "k", b"a", almost).unwrap(),
            NextAction::InProgress {
                retry_after_secs: 1
            }
        );
        let later = now + chrono::Duration::seconds(STALE_AFTER_SECS);
        assert!(matches!(
            begin(&kv, "s", "u", "k", b"a", later).unwrap(),
            NextAction::StartProcessing(_)
        ));
    }

    #[test]
    fn purge_removes_records_older_than_the_cutoff_and_keeps_newer_ones() {
        let kv = MemoryStore::new();
        let t0 = Utc::now();
        let day = chrono::Duration::days(1);
        for (i, k) in ["a", "b", "c"].iter().enumerate() {
            let NextAction::StartProcessing(claim) =
                begin(&kv, "s", "u", k, b"r", t0 + day * i as i32).unwrap()
            else {
                panic!()
            };
            complete(&kv, claim, saved()).unwrap();
        }
        // Cutoff after a and b: both go, c stays and replays.
        let done = purge(&kv, t0 + day * 2, 100).unwrap();
        assert_eq!(done.purged, 2);
        assert!(matches!(
            begin(&kv, "s", "u", "a", b"other", t0 + day * 3).unwrap(),
            NextAction::StartProcessing(_)
        ));
        assert_eq!(
            begin(&kv, "s", "u", "c", b"r", t0 + day * 3).unwrap(),
            NextAction::ReturnSavedResponse(saved())
        );
        // Nothing more is old enough; a second purge removes nothing.
        assert_eq!(purge(&kv, t0 + day * 2, 100).unwrap().purged, 0);
        // Later, c goes too.
        assert_eq!(purge(&kv, t0 + day * 3 + day, 100).unwrap().purged, 1);
    }

    #[test]
    fn keys_are_printable_and_bounded() {
        assert!(key_ok("2b7e-1f"));
        assert!(!key_ok(""));
        assert!(!key_ok("has space"));
        assert!(!key_ok(&"x".repeat(129)));
    }
}

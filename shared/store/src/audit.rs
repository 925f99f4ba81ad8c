//! The append-only audit trail: one event per state change, in a hash chain.
//!
//! Event `n` carries the digest of event `n − 1`, and its own digest over all
//! its fields, so changing or removing any stored event breaks the chain at
//! that point. A writer takes its number from an atomic counter (so no two
//! writers share one), waits for event `n − 1` to be written, and writes event
//! `n` under its own key. A writer that dies between taking a number and
//! writing leaves a gap; the next writer waits a bounded time, then links to
//! [`MISSING`], and verification reports the gap. Nothing is ever deleted or
//! overwritten.

use crate::keys;
use crate::kv::KeyValue;
use crate::pii::sha256_hex;
use crate::records::{StoreError, decode, encode, get_json};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// `prev` of an event whose predecessor was never written (its writer died).
pub const MISSING: &str = "missing";

/// Reads of the predecessor before linking to [`MISSING`].
pub const WAIT_POLLS: usize = 2_000;

/// Digest of the (absent) event before the first.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Who did it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// Token subject.
    pub sub: String,
    /// Role.
    pub role: String,
}

/// What an event records, before it is numbered and chained.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// Who.
    pub actor: Actor,
    /// What happened, for example `class.filed`.
    pub action: String,
    /// What it happened to, for example `class:KM-2022-000001`.
    pub entity: String,
    /// Digest of the entity before (None when created).
    pub before: Option<String>,
    /// Digest of the entity after.
    pub after: Option<String>,
    /// Short non-personal note (an outcome, a reason code).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A stored event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Position in the chain, from 1.
    pub seq: u64,
    /// When.
    pub at: DateTime<Utc>,
    /// The change.
    #[serde(flatten)]
    pub change: Change,
    /// Digest of event `seq − 1`.
    pub prev: String,
    /// Digest of this event (all fields but this one).
    pub digest: String,
}

impl Event {
    /// The digest this event should carry.
    pub fn compute_digest(&self) -> String {
        let body = serde_json::json!({
            "seq": self.seq, "at": self.at, "change": self.change, "prev": self.prev,
        });
        sha256_hex(serde_json::to_vec(&body).expect("event serialises"))
    }
}

/// Digest of any serialisable state, for `before`/`after`.
pub fn digest_of<T: Serialize>(value: &T) -> String {
    sha256_hex(encode(value))
}

/// Appends an event for `change`; returns its sequence number.
pub fn record(kv: &impl KeyValue, change: Change, at: DateTime<Utc>) -> Result<u64, StoreError> {
    let seq = kv.increment(&keys::audit_next(), 1)?.max(1) as u64;
    let mut prev = if seq == 1 {
        GENESIS.to_string()
    } else {
        MISSING.to_string()
    };
    if seq > 1 {
        for attempt in 0..WAIT_POLLS {
            crate::records::backoff(attempt);
            if let Some(e) = get_json::<Event>(kv, &keys::audit_event(seq - 1), "audit event")? {
                prev = e.digest;
                break;
            }
        }
    }
    let mut event = Event {
        seq,
        at,
        change,
        prev,
        digest: String::new(),
    };
    event.digest = event.compute_digest();
    kv.set(&keys::audit_event(seq), &encode(&event))?;
    crate::index::append(kv, &entity_index(&event.change.entity), &seq.to_string())?;
    Ok(seq)
}

/// The index of one entity's events.
fn entity_index(entity: &str) -> String {
    format!("audit-entity:{}", crate::pii::sha256_hex(entity))
}

/// One page of an entity's history, oldest first.
pub fn history(
    kv: &impl KeyValue,
    entity: &str,
    from: crate::index::Position,
    limit: usize,
) -> Result<(Vec<Event>, Option<crate::index::Position>), StoreError> {
    let (seqs, next) = crate::index::read(kv, &entity_index(entity), from, limit)?;
    let keys: Vec<String> = seqs
        .iter()
        .filter_map(|s| s.parse::<u64>().ok())
        .map(keys::audit_event)
        .collect();
    let mut events = Vec::new();
    for bytes in kv.get_many(&keys)?.into_iter().flatten() {
        events.push(decode::<Event>(&bytes, "audit event")?);
    }
    Ok((events, next))
}

/// The number of events written so far (the last sequence number taken).
pub fn length(kv: &impl KeyValue) -> Result<u64, StoreError> {
    Ok(kv.increment(&keys::audit_next(), 0)?.max(0) as u64)
}

/// Reads event `seq`.
pub fn event(kv: &impl KeyValue, seq: u64) -> Result<Option<Event>, StoreError> {
    match kv.get(&keys::audit_event(seq))? {
        None => Ok(None),
        Some(b) => decode(&b, "audit event").map(Some),
    }
}

/// What verification finds at one position of the chain.
enum Found {
    Event(Box<Event>),
    Missing,
    Broken,
}

fn load(kv: &impl KeyValue, seq: u64) -> Result<Found, StoreError> {
    match kv.get(&keys::audit_event(seq)) {
        Ok(None) => Ok(Found::Missing),
        Ok(Some(bytes)) => Ok(decode::<Event>(&bytes, "audit event")
            .map_or(Found::Broken, |e| Found::Event(Box::new(e)))),
        // A sealed event that does not open was changed at rest.
        Err(crate::kv::KvError::Sealed(_)) => Ok(Found::Broken),
        Err(e) => Err(e.into()),
    }
}

/// The first broken link from `from` on, checking at most `limit` events up
/// to the last number taken: `Ok(Err(seq))` names the broken (changed,
/// removed or never written) event, `Ok(Ok(next))` the first seq not checked.
pub fn verify(kv: &impl KeyValue, from: u64, limit: u64) -> Result<Result<u64, u64>, StoreError> {
    let allocated = length(kv)?;
    let mut seq = from.max(1);
    let mut prev = if seq == 1 {
        GENESIS.to_string()
    } else {
        match load(kv, seq - 1)? {
            Found::Event(e) => e.digest,
            Found::Missing | Found::Broken => return Ok(Err(seq - 1)),
        }
    };
    let end = seq.saturating_add(limit).min(allocated + 1);
    while seq < end {
        let e = match load(kv, seq)? {
            Found::Event(e) => e,
            Found::Missing | Found::Broken => return Ok(Err(seq)),
        };
        if e.seq != seq || e.prev != prev || e.compute_digest() != e.digest {
            return Ok(Err(seq));
        }
        prev = e.digest;
        seq += 1;
    }
    Ok(Ok(seq))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryStore;

    fn change(n: usize) -> Change {
        Change {
            actor: Actor {
                sub: "officer-1".into(),
                role: "district_officer".into(),
            },
            action: "test".into(),
            entity: format!("thing:{n}"),
            before: None,
            after: Some(format!("{n}")),
            note: None,
        }
    }

    #[test]
    fn an_untouched_chain_verifies_and_a_changed_byte_is_found() {
        let kv = MemoryStore::new();
        for n in 0..10 {
            record(&kv, change(n), Utc::now()).unwrap();
        }
        assert_eq!(verify(&kv, 1, 100).unwrap(), Ok(11));
        for seq in 1..=10 {
            let key = keys::audit_event(seq);
            let original = kv.get(&key).unwrap().unwrap();
            for at in [0, original.len() / 2, original.len() - 2] {
                let mut bytes = original.clone();
                bytes[at] = if bytes[at] == b'0' { b'1' } else { b'0' };
                kv.set(&key, &bytes).unwrap();
                assert_eq!(
                    verify(&kv, 1, 100).unwrap(),
                    Err(seq),
                    "byte {at} of event {seq}"
                );
            }
            kv.set(&key, &original).unwrap();
        }
        assert_eq!(verify(&kv, 1, 100).unwrap(), Ok(11));
        kv.delete(&keys::audit_event(7)).unwrap();
        assert_eq!(
            verify(&kv, 1, 100).unwrap(),
            Err(7),
            "a removed event is reported"
        );
        let key = keys::audit_event(4);
        let mut bytes = kv.get(&key).unwrap().unwrap();
        let pos = bytes.iter().position(|b| *b == b'4').unwrap();
        bytes[pos] = b'5';
        kv.set(&key, &bytes).unwrap();
        assert_eq!(verify(&kv, 1, 100).unwrap(), Err(4));
    }

    #[test]
    fn an_entity_history_lists_its_events_in_order() {
        let kv = MemoryStore::new();
        for n in 0..6 {
            record(&kv, change(n % 2), Utc::now()).unwrap();
        }
        let (events, next) =
            history(&kv, "thing:1", crate::index::Position::default(), 10).unwrap();
        assert_eq!(
            events.iter().map(|e| e.seq).collect::<Vec<_>>(),
            vec![2, 4, 6]
        );
        assert_eq!(next, None);
        assert_eq!(length(&kv).unwrap(), 6);
    }

    #[test]
    fn concurrent_writers_build_one_unbroken_chain() {
        let kv = MemoryStore::new();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let kv = kv.clone();
                std::thread::spawn(move || {
                    for i in 0..25 {
                        record(&kv, change(t * 100 + i), Utc::now()).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(verify(&kv, 1, 1000).unwrap(), Ok(101));
        assert_eq!(kv.increment(&keys::audit_next(), 0).unwrap(), 100);
    }
}

//! The append-only audit trail: one event per state change, in a
//! transparency log.
//!
//! A writer takes its sequence number from an atomic counter and writes its
//! event under its own key, without waiting for anyone ([`record`]). The
//! integration step ([`tree::integrate`]) folds the events in sequence order
//! into an RFC 6962 Merkle tree and signs a checkpoint; a number whose event
//! never appears becomes an explicit, signed gap after a timeout. Proofs of
//! inclusion and consistency come from [`tree`]; [`verify`] checks the stored
//! log against a checkpoint kept elsewhere, and the live records against
//! the events that last described them. Nothing is ever deleted or overwritten.

pub mod tree;
pub mod verify;

use crate::keys;
use crate::kv::KeyValue;
use crate::pii::sha256_hex;
use crate::records::{StoreError, decode, encode};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

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
    /// Digest of this event (all fields but this one).
    pub digest: String,
}

impl Event {
    /// The digest this event should carry.
    pub fn compute_digest(&self) -> String {
        let body = serde_json::json!({
            "seq": self.seq, "at": self.at, "change": self.change,
        });
        sha256_hex(serde_json::to_vec(&body).expect("event serialises"))
    }
}

/// Digest of any serialisable state, for `before`/`after`.
pub fn digest_of<T: Serialize>(value: &T) -> String {
    sha256_hex(encode(value))
}

/// Appends an event for `change`; returns its sequence number. Two calls:
/// the counter and the event (and the entity's index). It never waits for
/// another writer: a writer that dies after taking its number leaves a gap
/// that the integration step records as such.
pub fn record(kv: &impl KeyValue, change: Change, at: DateTime<Utc>) -> Result<u64, StoreError> {
    let seq = kv.increment(&keys::audit_next(), 1)?.max(1) as u64;
    let mut event = Event {
        seq,
        at,
        change,
        digest: String::new(),
    };
    event.digest = event.compute_digest();
    kv.set(&keys::audit_event(seq), &encode(&event))?;
    crate::index::append(kv, &entity_index(&event.change.entity), &seq.to_string())?;
    Ok(seq)
}

/// The index of one entity's events.
pub(crate) fn entity_index(entity: &str) -> String {
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
    fn concurrent_writers_take_every_number_once_and_write_every_event() {
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
        assert_eq!(kv.increment(&keys::audit_next(), 0).unwrap(), 100);
        for seq in 1..=100 {
            let e = event(&kv, seq).unwrap().unwrap();
            assert_eq!((e.seq, e.compute_digest()), (seq, e.digest.clone()));
        }
    }
}

//! The bureau's policy data in the store: storage only, no decisions.
//!
//! One current record (`vt:policy:current`) holds the whole data of the
//! version in force with its metadata, so that a request reads the policy in
//! the same `get_many` as everything else it needs; a change rewrites it
//! whole by compare-and-swap. Every version is also kept under its own key
//! (`vt:policy:version:{n}`), never overwritten, so an old decision can be
//! explained by the data it named. Version 1 is the shipped defaults
//! (`shared/policy/data`), imported on first use: the first filing or the
//! first change, or the import route. Until then readers get the shipped
//! defaults as version 1, the same data and digest the import stores.
//!
//! A change: compare-and-swap of the current record (the commit point), then
//! its audit event (before and after digest of the data), then its version
//! record. A writer that dies after the swap leaves the version record
//! missing; the next change (or import) finds it missing and writes the
//! audit event, marked `repaired`, and the version record.

use crate::audit::{self, Actor, Change};
use crate::keys;
use crate::kv::KeyValue;
use crate::records::{StoreError, UpdateError, create_json, decode, encode, get_json, put_json};
use chrono::{DateTime, Utc};
use policy::data::{Edited, Policy, PolicyData};
use policy::decision::PolicyRef;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// Largest encoded policy record accepted (hosted stores limit values to 1 MB).
pub const MAX_POLICY_BYTES: usize = 900_000;

/// The audit entity of the policy data.
pub const ENTITY: &str = "policy";

/// Who made a version, when, and what it changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionMeta {
    /// Version number, from 1.
    pub version: u64,
    /// SHA-256 of the version's data ([`PolicyData::digest`]).
    pub digest: String,
    /// Digest of the version before (None for version 1).
    pub previous: Option<String>,
    /// What was done (`policy.imported`, `policy.parameter.value_added`, …).
    pub action: String,
    /// What it was done to (`co_min_class_hours@2023-01-01`).
    pub subject: String,
    /// Whether the change reaches back to decisions already made (the request said so).
    pub retroactive: bool,
    /// The reason the request gave.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When.
    pub at: DateTime<Utc>,
    /// Who.
    pub by: Actor,
}

/// A version of the policy as stored: metadata and the whole data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredPolicy {
    /// Metadata.
    pub meta: VersionMeta,
    /// The data.
    pub data: PolicyData,
}

impl StoredPolicy {
    /// The reference decisions record.
    pub fn reference(&self) -> PolicyRef {
        PolicyRef {
            version: self.meta.version,
            digest: self.meta.digest.clone(),
        }
    }

    /// The policy the rules read.
    pub fn into_policy(self) -> Policy {
        Policy {
            reference: self.reference(),
            data: self.data,
        }
    }

    /// The shipped defaults as version 1.
    fn defaults(by: Actor, at: DateTime<Utc>) -> Self {
        StoredPolicy {
            meta: v1_meta(by, at),
            data: PolicyData::shipped().clone(),
        }
    }
}

/// The metadata of version 1, the shipped defaults.
fn v1_meta(by: Actor, at: DateTime<Utc>) -> VersionMeta {
    VersionMeta {
        version: 1,
        digest: PolicyData::digest_of_json(PolicyData::shipped_json()),
        previous: None,
        action: "policy.imported".into(),
        subject: "shared/policy/data".into(),
        retroactive: false,
        reason: None,
        at,
        by,
    }
}

/// A stored record with `meta` and data given as its JSON, as stored: version
/// 1 stores the shipped JSON as it is, so that its digest is that of the
/// bytes it holds and importing it needs no serializer of the data.
fn record(meta: &VersionMeta, data_json: &[u8]) -> Box<RawValue> {
    let mut b = b"{\"meta\":".to_vec();
    b.extend(encode(meta));
    b.extend_from_slice(b",\"data\":");
    b.extend_from_slice(data_json);
    b.push(b'}');
    RawValue::from_string(String::from_utf8(b).expect("JSON is UTF-8")).expect("a JSON object")
}

/// A record read for its version alone: the data is left as JSON.
#[derive(Deserialize)]
struct RecordRef<'a> {
    meta: MetaRef,
    #[serde(borrow)]
    data: &'a RawValue,
}

/// The version and digest of a record's metadata (its other members ignored).
#[derive(Deserialize)]
struct MetaRef {
    version: u64,
    digest: String,
}

/// A record read for its metadata alone (the data skipped).
#[derive(Deserialize)]
struct MetaOnly {
    meta: VersionMeta,
}

/// The key of the current record, for callers that read it in their own batch.
pub fn current_key() -> String {
    keys::policy_current()
}

/// The policy in the value read under [`current_key`], `None` before the
/// first import.
pub fn stored_in(value: Option<&[u8]>) -> Result<Option<Policy>, StoreError> {
    let Some(bytes) = value else {
        return Ok(None);
    };
    let r: RecordRef<'_> =
        serde_json::from_slice(bytes).map_err(|_| StoreError::Corrupt("policy"))?;
    let data = PolicyData::from_json(r.data.get().as_bytes())
        .map_err(|_| StoreError::Corrupt("policy"))?;
    Ok(Some(Policy {
        reference: PolicyRef {
            version: r.meta.version,
            digest: r.meta.digest,
        },
        data,
    }))
}

/// The policy in force: the stored version, or the shipped defaults
/// (borrowed, never copied) before the first import.
pub type InForce = std::borrow::Cow<'static, Policy>;

/// The policy in the value read under [`current_key`]: the shipped defaults
/// as version 1 when there is none yet.
pub fn from_value(value: Option<&[u8]>) -> Result<InForce, StoreError> {
    Ok(match stored_in(value)? {
        Some(p) => InForce::Owned(p),
        None => InForce::Borrowed(Policy::shipped()),
    })
}

/// The policy in force (one read).
pub fn current_policy(kv: &impl KeyValue) -> Result<InForce, StoreError> {
    from_value(kv.get(&keys::policy_current())?.as_deref())
}

/// The current record, if the data was imported.
pub fn current(kv: &impl KeyValue) -> Result<Option<StoredPolicy>, StoreError> {
    get_json(kv, &keys::policy_current(), "policy")
}

/// One version.
pub fn version(kv: &impl KeyValue, n: u64) -> Result<Option<StoredPolicy>, StoreError> {
    get_json(kv, &keys::policy_version(n), "policy version")
}

/// Metadata of up to `limit` versions from `newest` down, newest first (one read).
pub fn versions(
    kv: &impl KeyValue,
    newest: u64,
    limit: usize,
) -> Result<Vec<VersionMeta>, StoreError> {
    let numbers: Vec<u64> = (1..=newest).rev().take(limit).collect();
    let keys: Vec<String> = numbers.iter().map(|n| keys::policy_version(*n)).collect();
    let mut out = Vec::new();
    for v in kv.get_many(&keys)?.into_iter().flatten() {
        out.push(decode::<StoredPolicy>(&v, "policy version")?.meta);
    }
    Ok(out)
}

fn audit_change(
    kv: &impl KeyValue,
    meta: &VersionMeta,
    repaired: bool,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let mut note = format!("version {}", meta.version);
    if meta.retroactive {
        note.push_str("; retroactive");
    }
    if repaired {
        note.push_str("; repaired");
    }
    audit::record(
        kv,
        Change {
            actor: meta.by.clone(),
            action: meta.action.clone(),
            entity: ENTITY.to_string(),
            before: meta.previous.clone(),
            after: Some(meta.digest.clone()),
            note: Some(note),
        },
        now,
    )
}

/// The metadata of the version in force, importing the shipped defaults as
/// version 1 if there is none yet, and finishing the work of a change whose
/// writer stopped after its swap (its audit event, marked repaired, and its
/// version record). Reads and writes the data as stored, never decoding it.
pub fn ensure_imported(
    kv: &impl KeyValue,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<VersionMeta, StoreError> {
    let bytes = match kv.get(&keys::policy_current())? {
        Some(b) => b,
        None => {
            let meta = v1_meta(actor.clone(), now);
            let v1 = record(&meta, PolicyData::shipped_json());
            if create_json(kv, &keys::policy_current(), &v1)? {
                audit_change(kv, &meta, false, now)?;
                put_json(kv, &keys::policy_version(1), &v1)?;
                return Ok(meta);
            }
            kv.get(&keys::policy_current())?
                .ok_or(StoreError::Contention)?
        }
    };
    let meta = decode::<MetaOnly>(&bytes, "policy")?.meta;
    if !kv.exists(&keys::policy_version(meta.version))? {
        audit_change(kv, &meta, true, now)?;
        kv.set(&keys::policy_version(meta.version), &bytes)?;
    }
    Ok(meta)
}

/// Why a change was not stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal<E> {
    /// The rules refused the edit.
    Rule(E),
    /// The data would exceed [`MAX_POLICY_BYTES`] encoded.
    TooLarge {
        /// Its encoded size.
        bytes: usize,
    },
}

/// What a change is, for its metadata.
#[derive(Debug, Clone)]
pub struct ChangeInfo {
    /// Audit action.
    pub action: String,
    /// Subject.
    pub subject: String,
    /// Reason given.
    pub reason: Option<String>,
    /// Who.
    pub by: Actor,
}

/// Stores the next version: `apply` (the policy's
/// [`PolicyData::apply`]) turns the current data into the next, or refuses;
/// it may run several times under contention. Returns the new version.
pub fn change<E>(
    kv: &impl KeyValue,
    info: &ChangeInfo,
    now: DateTime<Utc>,
    apply: impl Fn(&PolicyData) -> Result<Edited, E>,
) -> Result<StoredPolicy, UpdateError<Refusal<E>>> {
    // A refused edit writes nothing, not even the import of the defaults.
    let seen = current(kv)?;
    let data = seen.as_ref().map_or(&Policy::shipped().data, |c| &c.data);
    apply(data).map_err(|e| UpdateError::Refused(Refusal::Rule(e)))?;
    ensure_imported(kv, &info.by, now)?;
    let mut made: Option<StoredPolicy> = None;
    crate::records::update_json::<StoredPolicy, Refusal<E>>(
        kv,
        &keys::policy_current(),
        "policy",
        |cur| {
            // Imported above and never deleted; the defaults otherwise.
            let cur = cur.unwrap_or_else(|| StoredPolicy::defaults(info.by.clone(), now));
            let edited = apply(&cur.data).map_err(Refusal::Rule)?;
            let next = StoredPolicy {
                meta: VersionMeta {
                    version: cur.meta.version + 1,
                    digest: edited.data.digest(),
                    previous: Some(cur.meta.digest.clone()),
                    action: info.action.clone(),
                    subject: info.subject.clone(),
                    retroactive: edited.retroactive,
                    reason: info.reason.clone(),
                    at: now,
                    by: info.by.clone(),
                },
                data: edited.data,
            };
            let bytes = encode(&next).len();
            if bytes > MAX_POLICY_BYTES {
                return Err(Refusal::TooLarge { bytes });
            }
            made = Some(next.clone());
            Ok(Some(next))
        },
    )?;
    let next = made.ok_or(StoreError::Contention)?;
    audit_change(kv, &next.meta, false, now)?;
    put_json(kv, &keys::policy_version(next.meta.version), &next)?;
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryStore;
    use policy::data::{Edit, EditError};
    use policy::params::{DatedValue, names};

    fn actor() -> Actor {
        Actor {
            sub: "bureau-user".into(),
            role: "bureau_admin".into(),
        }
    }

    fn info() -> ChangeInfo {
        ChangeInfo {
            action: "policy.parameter.value_added".into(),
            subject: "co_min_class_hours@2023-01-01".into(),
            reason: Some("test".into()),
            by: actor(),
        }
    }

    fn raise(value: i64) -> Edit {
        Edit::ParameterValue {
            name: names::CO_MIN_CLASS_HOURS.into(),
            value: DatedValue {
                since: "2023-01-01".parse().unwrap(),
                value,
                reference: "test".into(),
            },
        }
    }

    fn today() -> chrono::NaiveDate {
        "2022-12-01".parse().unwrap()
    }

    #[test]
    fn before_any_change_readers_get_the_shipped_defaults_as_version_1() {
        let kv = MemoryStore::new();
        let p = current_policy(&kv).unwrap();
        assert_eq!(p.reference, Policy::shipped().reference);
        assert!(current(&kv).unwrap().is_none(), "reading imports nothing");
        let v1 = ensure_imported(&kv, &actor(), Utc::now()).unwrap();
        assert_eq!(
            (v1.version, &v1.digest),
            (1, &Policy::shipped().reference.digest)
        );
        let stored = version(&kv, 1).unwrap().unwrap();
        assert_eq!((&stored.meta, &stored.data), (&v1, PolicyData::shipped()));
        // Version 1 holds the shipped JSON as it is: its digest is that of the bytes it holds.
        assert_eq!(*current_policy(&kv).unwrap(), *Policy::shipped());
        assert_eq!(audit::length(&kv).unwrap(), 1, "the import is audited");
        // A second import does nothing.
        ensure_imported(&kv, &actor(), Utc::now()).unwrap();
        assert_eq!(audit::length(&kv).unwrap(), 1);
    }

    #[test]
    fn each_change_is_a_new_version_kept_beside_the_old_and_audited_with_both_digests() {
        let kv = MemoryStore::new();
        let v2 = change(&kv, &info(), Utc::now(), |d| {
            d.apply(&raise(130), today(), false)
        })
        .unwrap();
        assert_eq!(v2.meta.version, 2);
        let v3 = change(&kv, &info(), Utc::now(), |d| {
            d.apply(&raise(140), today(), false)
        })
        .unwrap();
        assert_eq!(v3.meta.previous.as_deref(), Some(v2.meta.digest.as_str()));
        let v1 = version(&kv, 1).unwrap().unwrap();
        assert_eq!(
            version(&kv, 2).unwrap().unwrap(),
            v2,
            "version 2 is not overwritten"
        );
        assert_eq!(current(&kv).unwrap().unwrap(), v3);
        let on = "2023-01-01".parse().unwrap();
        let hours = |p: &StoredPolicy| {
            p.data
                .parameters
                .at(names::CO_MIN_CLASS_HOURS, on)
                .unwrap()
                .value
        };
        assert_eq!((hours(&v1), hours(&v2), hours(&v3)), (120, 130, 140));
        let metas = versions(&kv, 3, 10).unwrap();
        assert_eq!(
            metas.iter().map(|m| m.version).collect::<Vec<_>>(),
            vec![3, 2, 1]
        );
        let (events, _) =
            audit::history(&kv, ENTITY, crate::index::Position::default(), 10).unwrap();
        let pairs: Vec<_> = events
            .iter()
            .map(|e| (e.change.before.clone(), e.change.after.clone()))
            .collect();
        assert_eq!(
            pairs,
            vec![
                (None, Some(v1.meta.digest.clone())),
                (Some(v1.meta.digest.clone()), Some(v2.meta.digest.clone())),
                (Some(v2.meta.digest.clone()), Some(v3.meta.digest.clone())),
            ]
        );
        assert_eq!(audit::length(&kv).unwrap(), 3, "the import and two changes");
    }

    #[test]
    fn a_refused_change_leaves_the_store_unchanged() {
        let kv = MemoryStore::new();
        ensure_imported(&kv, &actor(), Utc::now()).unwrap();
        let before = kv.dump();
        let e = change(&kv, &info(), Utc::now(), |d| {
            d.apply(&raise(-5), today(), false)
        })
        .unwrap_err();
        assert!(matches!(
            e,
            UpdateError::Refused(Refusal::Rule(EditError::Invalid(_)))
        ));
        assert_eq!(kv.dump(), before);
    }

    #[test]
    fn a_change_whose_writer_stopped_after_the_swap_is_finished_by_the_next() {
        let kv = MemoryStore::new();
        let v2 = change(&kv, &info(), Utc::now(), |d| {
            d.apply(&raise(130), today(), false)
        })
        .unwrap();
        // As if the writer had stopped after its swap: no version record.
        kv.delete(&keys::policy_version(2)).unwrap();
        let events = audit::length(&kv).unwrap();
        ensure_imported(&kv, &actor(), Utc::now()).unwrap();
        assert_eq!(version(&kv, 2).unwrap().unwrap(), v2);
        assert_eq!(audit::length(&kv).unwrap(), events + 1);
        let last = audit::event(&kv, events + 1).unwrap().unwrap();
        assert!(last.change.note.unwrap().contains("repaired"));
    }

    #[test]
    fn concurrent_changes_make_consecutive_versions_and_lose_none() {
        let kv = MemoryStore::new();
        ensure_imported(&kv, &actor(), Utc::now()).unwrap();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let kv = kv.clone();
                std::thread::spawn(move || {
                    let edit = Edit::ParameterValue {
                        name: names::CO_MIN_CLASS_HOURS.into(),
                        value: DatedValue {
                            since: chrono::NaiveDate::from_ymd_opt(2023, 1 + t, 1).unwrap(),
                            value: 121 + i64::from(t),
                            reference: "test".into(),
                        },
                    };
                    change(&kv, &info(), Utc::now(), |d| d.apply(&edit, today(), false)).unwrap()
                })
            })
            .collect();
        let mut made: Vec<u64> = threads
            .into_iter()
            .map(|t| t.join().unwrap().meta.version)
            .collect();
        made.sort();
        assert_eq!(made, vec![2, 3, 4, 5]);
        let cur = current(&kv).unwrap().unwrap();
        assert_eq!(
            cur.data
                .parameters
                .change_dates(names::CO_MIN_CLASS_HOURS)
                .len(),
            5
        );
    }
}

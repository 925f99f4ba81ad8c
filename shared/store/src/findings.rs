//! Spot-check findings (SC-DENY) and the holds they put on settlement.
//!
//! The spot-check function opens a finding when a trainee denies attending
//! or says they were asked to pay; the voucher function refuses to settle any
//! voucher of a class with an open finding (the trainee's own voucher and the
//! class's others alike) until the district office closes it with a
//! rectification (立查立改). A class's open findings are one record,
//! `hold:class:<id>`, so settlement needs one read to know.

use crate::audit::{self, Actor, Change};
use crate::kv::KeyValue;
use crate::records::{StoreError, UpdateError, create_json, get_json, update_json};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Key of a finding.
pub fn finding_key(id: &str) -> String {
    format!("{}finding:{id}", crate::keys::PREFIX)
}

/// Key of a class's hold record.
pub fn hold_key(class_id: &str) -> String {
    format!("{}hold:class:{class_id}", crate::keys::PREFIX)
}

/// What the trainee said.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// Says they did not attend.
    DeniedAttendance,
    /// Says they were asked to pay a fee.
    AskedToPay,
}

/// Whether a finding still stops settlement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingStatus {
    /// Open: the class's settlements wait.
    Open,
    /// Closed by a rectification.
    Rectified,
}

/// The rectification that closed a finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rectification {
    /// What was done.
    pub notes: String,
    /// Who recorded it.
    pub by: Actor,
    /// When.
    pub at: DateTime<Utc>,
}

/// A finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// Finding id.
    pub id: String,
    /// The class.
    pub class_id: String,
    /// Roster line of the trainee (0-based).
    pub roster_line: usize,
    /// Person ref of the trainee.
    pub person: String,
    /// What was found.
    pub kind: FindingKind,
    /// Status.
    pub status: FindingStatus,
    /// The run and task that found it.
    pub source: String,
    /// When it was opened.
    pub opened_at: DateTime<Utc>,
    /// Who opened it.
    pub opened_by: Actor,
    /// The rectification, once closed.
    #[serde(default)]
    pub rectification: Option<Rectification>,
}

/// Open findings of one class: finding id → person ref.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassHold {
    /// Open findings.
    pub open: BTreeMap<String, String>,
    /// Findings ever opened on the class (the class is flagged once this is non-zero).
    pub total: u32,
    /// Vouchers whose settlement was admitted against this record
    /// ([`admit_settlement`]): a finding opened after them does not stop
    /// them; it is opened after a settlement that counts, and an auditor
    /// finds the vouchers here.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub settling: BTreeSet<String>,
}

impl ClassHold {
    /// Whether settlement of the class must wait.
    pub fn blocks(&self) -> bool {
        !self.open.is_empty()
    }

    /// Whether the person has an open finding of their own.
    pub fn holds_person(&self, person: &str) -> bool {
        self.open.values().any(|p| p == person)
    }
}

/// The class's hold record (empty when it never had a finding).
///
/// A class whose record is missing although the audit log records a
/// finding opened on it is [`StoreError::Missing`], never "no hold": a
/// deleted hold does not release settlement.
pub fn hold(kv: &impl KeyValue, class_id: &str) -> Result<ClassHold, StoreError> {
    match get_json(kv, &hold_key(class_id), "class hold")? {
        Some(h) => Ok(h),
        None if logged_findings(kv, class_id)? => Err(StoreError::Missing("class hold")),
        None => Ok(ClassHold::default()),
    }
}

/// Whether the audit log records a finding opened on the class. Read only
/// when its hold record is absent: before the first finding or settlement
/// of a class, or after the record was deleted.
fn logged_findings(kv: &impl KeyValue, class_id: &str) -> Result<bool, StoreError> {
    let entity = format!("class:{class_id}");
    let mut from = crate::index::Position::default();
    loop {
        let (events, next) = audit::history(kv, &entity, from, 500)?;
        if events.iter().any(|e| e.change.action == "finding.opened") {
            return Ok(true);
        }
        match next {
            Some(n) => from = n,
            None => return Ok(false),
        }
    }
}

/// Admits the settlement of voucher `code` against the class's hold, by
/// compare-and-swap on the hold record, the record every finding is opened
/// in. `decide` sees the hold as it is at the swap (it may run several
/// times); when it refuses nothing is written. When it admits, `code` is
/// added to [`ClassHold::settling`] in the same swap, so a finding opened
/// concurrently either lands first (and `decide` sees it) or after the
/// settlement, never in between unseen. Returns the hold as admitted.
pub fn admit_settlement<E>(
    kv: &impl KeyValue,
    class_id: &str,
    code: &str,
    decide: impl Fn(&ClassHold) -> Result<(), E>,
) -> Result<ClassHold, UpdateError<E>> {
    let mut admitted = None;
    let mut logged: Option<bool> = None;
    let mut missing = false;
    update_json::<ClassHold, E>(kv, &hold_key(class_id), "class hold", |cur| {
        if cur.is_none() {
            let found = match logged {
                Some(f) => f,
                None => *logged.insert(logged_findings(kv, class_id).unwrap_or(true)),
            };
            if found {
                // Deleted: settle nothing against a hold that is not there.
                missing = true;
                return Ok(None);
            }
        }
        let mut h = cur.unwrap_or_default();
        decide(&h)?;
        admitted = Some(h.clone());
        if h.settling.contains(code) {
            return Ok(None);
        }
        h.settling.insert(code.to_string());
        Ok(Some(h))
    })?;
    if missing {
        return Err(UpdateError::Store(StoreError::Missing("class hold")));
    }
    Ok(admitted.expect("an admitted settlement saw the hold"))
}

/// Reads a finding.
pub fn get(kv: &impl KeyValue, id: &str) -> Result<Option<Finding>, StoreError> {
    get_json(kv, &finding_key(id), "finding")
}

/// Opens a finding: writes it (once per id), adds it to the class's hold, audits. Idempotent per id.
pub fn open(kv: &impl KeyValue, finding: &Finding, now: DateTime<Utc>) -> Result<(), StoreError> {
    let created = create_json(kv, &finding_key(&finding.id), finding)?;
    update_json::<ClassHold, std::convert::Infallible>(
        kv,
        &hold_key(&finding.class_id),
        "class hold",
        |cur| {
            let mut h = cur.unwrap_or_default();
            if h.open.contains_key(&finding.id)
                || (!created
                    && get_json::<Finding>(kv, &finding_key(&finding.id), "finding")
                        .ok()
                        .flatten()
                        .is_some_and(|f| f.status == FindingStatus::Rectified))
            {
                return Ok(None);
            }
            h.open.insert(finding.id.clone(), finding.person.clone());
            h.total += 1;
            Ok(Some(h))
        },
    )
    .map_err(|e| match e {
        UpdateError::Store(s) => s,
        UpdateError::Refused(never) => match never {},
    })?;
    if created {
        audit::record(
            kv,
            Change {
                actor: finding.opened_by.clone(),
                action: "finding.opened".into(),
                entity: format!("class:{}", finding.class_id),
                before: None,
                after: Some(audit::digest_of(finding)),
                note: Some(format!("{}:{:?}", finding.id, finding.kind).to_lowercase()),
            },
            now,
        )?;
    }
    Ok(())
}

/// Why a finding could not be closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CloseError {
    /// No such finding.
    #[error("finding not found")]
    NotFound,
    /// Already closed.
    #[error("finding already rectified")]
    AlreadyClosed,
}

/// Closes a finding with a rectification and releases the class's hold on it.
pub fn close(
    kv: &impl KeyValue,
    id: &str,
    rectification: Rectification,
) -> Result<Finding, UpdateError<CloseError>> {
    let at = rectification.at;
    let actor = rectification.by.clone();
    let closed = update_json::<Finding, CloseError>(kv, &finding_key(id), "finding", |cur| {
        let mut f = cur.ok_or(CloseError::NotFound)?;
        if f.status == FindingStatus::Rectified {
            return Err(CloseError::AlreadyClosed);
        }
        f.status = FindingStatus::Rectified;
        f.rectification = Some(rectification.clone());
        Ok(Some(f))
    })?
    .ok_or(UpdateError::Refused(CloseError::NotFound))?;
    update_json::<ClassHold, std::convert::Infallible>(
        kv,
        &hold_key(&closed.class_id),
        "class hold",
        |cur| {
            let mut h = cur.unwrap_or_default();
            Ok(h.open.remove(id).map(|_| h))
        },
    )
    .map_err(|e| match e {
        UpdateError::Store(s) => UpdateError::Store(s),
        UpdateError::Refused(never) => match never {},
    })?;
    audit::record(
        kv,
        Change {
            actor,
            action: "finding.rectified".into(),
            entity: format!("class:{}", closed.class_id),
            before: None,
            after: Some(audit::digest_of(&closed)),
            note: Some(id.to_string()),
        },
        at,
    )?;
    Ok(closed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryStore;

    fn finding(id: &str, person: &str) -> Finding {
        Finding {
            id: id.into(),
            class_id: "KM-2022-000001".into(),
            roster_line: 3,
            person: person.into(),
            kind: FindingKind::DeniedAttendance,
            status: FindingStatus::Open,
            source: "run:2022-06-20/task:1".into(),
            opened_at: Utc::now(),
            opened_by: Actor {
                sub: "inspector-1".into(),
                role: "inspector".into(),
            },
            rectification: None,
        }
    }

    #[test]
    fn sc_deny_an_open_finding_holds_the_class_until_rectified() {
        let kv = MemoryStore::new();
        assert!(!hold(&kv, "KM-2022-000001").unwrap().blocks());
        open(&kv, &finding("F1", "p1"), Utc::now()).unwrap();
        open(&kv, &finding("F1", "p1"), Utc::now()).unwrap();
        let h = hold(&kv, "KM-2022-000001").unwrap();
        assert!(h.blocks() && h.holds_person("p1") && !h.holds_person("p2"));
        assert_eq!(h.total, 1, "opening twice counts once");
        let rect = Rectification {
            notes: "核实后整改".into(),
            by: Actor {
                sub: "o".into(),
                role: "district_officer".into(),
            },
            at: Utc::now(),
        };
        close(&kv, "F1", rect.clone()).unwrap();
        assert!(!hold(&kv, "KM-2022-000001").unwrap().blocks());
        assert_eq!(
            close(&kv, "F1", rect),
            Err(UpdateError::Refused(CloseError::AlreadyClosed))
        );
        open(&kv, &finding("F1", "p1"), Utc::now()).unwrap();
        assert!(
            !hold(&kv, "KM-2022-000001").unwrap().blocks(),
            "re-opening a rectified finding id does nothing"
        );
    }

    #[test]
    fn sc_deny_a_deleted_hold_of_a_class_with_a_finding_is_an_error_never_no_hold() {
        let kv = MemoryStore::new();
        let admit = |kv: &MemoryStore, code: &str| {
            admit_settlement::<()>(kv, "KM-2022-000001", code, |h| {
                if h.blocks() { Err(()) } else { Ok(()) }
            })
        };
        // A class that never had a finding: no record is no hold.
        assert!(admit(&kv, "V1").is_ok());
        open(&kv, &finding("F1", "p1"), Utc::now()).unwrap();
        assert_eq!(admit(&kv, "V2"), Err(UpdateError::Refused(())));
        kv.delete(&hold_key("KM-2022-000001")).unwrap();
        assert_eq!(
            hold(&kv, "KM-2022-000001"),
            Err(StoreError::Missing("class hold"))
        );
        let before = kv.dump();
        assert_eq!(
            admit(&kv, "V2"),
            Err(UpdateError::Store(StoreError::Missing("class hold")))
        );
        assert_eq!(kv.dump(), before, "nothing settled, nothing written");
    }
}

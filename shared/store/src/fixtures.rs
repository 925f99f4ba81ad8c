//! Sample data written straight into a store, for scale tests and
//! benchmarks that need thousands of classes faster than filing them one
//! request at a time. Behind the `fixtures` feature: never in a component.

use crate::classes::{ClassRecord, ClassStatus, RosterRef};
use crate::pii::PiiHasher;
use crate::{KeyValue, StoreError};
use chrono::{DateTime, Utc};

/// Writes the classes `ids`, each the 40-trainee fixture class in training
/// from 2022-06-13 on (its last class day far ahead)
/// (approved, checked and opened, its side effects done) filed at
/// `filed_at`, into `records`,
/// and appends their ids to the in-training index in `index`. The two may
/// be the same store; a caller writing in chunks keeps one `index` for all.
pub fn classes_in_training(
    records: &impl KeyValue,
    index: &impl KeyValue,
    hasher: &PiiHasher,
    ids: &[String],
    filed_at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let (mut app, ctx) = policy::fixtures::valid_class(40);
    // Runs are named by days and sample the classes whose class days overlap
    // theirs (SC-EVERY): the seeded classes run on, so that benchmarks and
    // scale tests may use any day from the first class day (2022-06-13) on.
    app.end_date = "2099-12-31".parse().expect("a date");
    let decision = policy::class_opening::evaluate(&app, &ctx, policy::Policy::shipped());
    let roster_refs: Vec<RosterRef> = app
        .roster
        .iter()
        .map(|t| RosterRef::of(hasher, t))
        .collect();
    let filed_by = crate::audit::Actor {
        sub: "seed".into(),
        role: "bureau_admin".into(),
    };
    let values: Vec<(String, Vec<u8>)> = ids
        .iter()
        .map(|id| {
            let record = ClassRecord {
                id: id.clone(),
                status: ClassStatus::InTraining,
                application: app.clone(),
                roster_refs: roster_refs.clone(),
                decision: decision.clone(),
                claim_digest: format!("seed-{id}"),
                filed_at,
                filed_by: filed_by.clone(),
                checks: vec![],
                side_effects_done: true,
            };
            (crate::keys::class(id), crate::records::encode(&record))
        })
        .collect();
    records.set_many(&values)?;
    for id in ids {
        crate::index::append(index, crate::spot_checks::IN_TRAINING_INDEX, id)?;
    }
    Ok(())
}

/// Binds `person` to a WeChat user of its own, as a successful WeChat
/// binding leaves the two binding records (without its audit event, so that
/// records written elsewhere and copied into a live store do not collide with
/// its audit trail). Returns the openid ref; a trainee token of the person
/// carries `wx:` and its first 16 characters as `sub`.
pub fn bind_trainee(
    kv: &impl KeyValue,
    hmac_key: &str,
    person: &str,
    now: DateTime<Utc>,
) -> Result<String, StoreError> {
    use crate::wechat::{Binding, PersonBinding, openid_ref, person_key, wechat_key};
    let oref = openid_ref(hmac_key, &format!("fixture-openid-{person}"));
    crate::records::put_json(
        kv,
        &person_key(person),
        &PersonBinding {
            openid_ref: oref.clone(),
            bound_at: now,
            rev: 1,
        },
    )?;
    crate::records::put_json(
        kv,
        &wechat_key(&oref),
        &Binding {
            person: person.to_string(),
            bound_at: now,
        },
    )?;
    Ok(oref)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryStore;

    #[test]
    fn seeded_classes_are_in_training_and_listed_in_the_in_training_index() {
        let (records, index) = (MemoryStore::new(), MemoryStore::new());
        let ids: Vec<String> = (1..=3).map(|i| format!("KM-2022-{i:06}")).collect();
        let hasher = PiiHasher::new("k".repeat(32));
        classes_in_training(&records, &index, &hasher, &ids, Utc::now()).unwrap();
        for id in &ids {
            let r = crate::classes::get(&records, id).unwrap().expect("written");
            assert_eq!(
                (r.status, r.roster_refs.len()),
                (ClassStatus::InTraining, 40)
            );
        }
        let (listed, _) = crate::index::read(
            &index,
            crate::spot_checks::IN_TRAINING_INDEX,
            Default::default(),
            10,
        )
        .unwrap();
        assert_eq!(listed, ids);
    }
}

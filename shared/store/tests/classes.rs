//! Classes in the store: one get_many for validation, filing once under races,
//! repair after a crash, checks in order.

use chrono::Utc;
use policy::fixtures;
use policy::{Catalogue, Parameters, class_opening};
use store::audit::Actor;
use store::classes::{
    self, CheckError, CheckKind, CheckRecord, CheckResult, ClassStatus, ListFilter,
};
use store::index::Position;
use store::pii::PiiHasher;
use store::{MemoryStore, UpdateError};

fn actor() -> Actor {
    Actor {
        sub: "inst-1".into(),
        role: "institution".into(),
    }
}

fn seed_registry(kv: &MemoryStore) {
    let (app, _) = fixtures::valid_class(1);
    store::registry::put(kv, &fixtures::institution(), actor(), Utc::now()).unwrap();
    store::registry::put(kv, &fixtures::textbook(), actor(), Utc::now()).unwrap();
    for t in &app.trainers {
        let entry = policy::registry::Trainer {
            registration_no: t.registration_no.clone(),
            name: t.name.clone(),
            status: policy::registry::TrainerStatus::Registered,
        };
        store::registry::put(kv, &entry, actor(), Utc::now()).unwrap();
    }
}

#[test]
fn validation_reads_its_context_in_one_call_whatever_the_roster_size() {
    let kv = MemoryStore::new();
    seed_registry(&kv);
    let hasher = PiiHasher::new("test");
    for n in [1, 60] {
        let (app, expected) = fixtures::valid_class(n);
        let before = kv.calls();
        let ctx = classes::load_context(&kv, &hasher, &app, expected.today).unwrap();
        assert_eq!(kv.calls() - before, 1, "{n} trainees");
        let d = class_opening::evaluate(&app, &ctx, Parameters::shipped(), Catalogue::shipped());
        assert_eq!(
            d.outcome,
            policy::Outcome::Approved,
            "{:?}",
            d.blocking_rules
        );
    }
}

#[test]
fn the_same_application_filed_from_eight_threads_makes_one_class() {
    let kv = MemoryStore::new();
    seed_registry(&kv);
    let hasher = PiiHasher::new("test");
    let (app, ctx) = fixtures::valid_class(40);
    let decision = class_opening::evaluate(&app, &ctx, Parameters::shipped(), Catalogue::shipped());
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (kv, hasher, app, decision) =
                (kv.clone(), hasher.clone(), app.clone(), decision.clone());
            std::thread::spawn(move || {
                classes::file(&kv, &hasher, app, decision, actor(), Utc::now()).unwrap()
            })
        })
        .collect();
    let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let created: Vec<_> = results.iter().filter(|f| f.created).collect();
    assert_eq!(created.len(), 1);
    assert!(results.iter().all(|f| f.record.id == created[0].record.id));
    let page = classes::list(&kv, &ListFilter::default(), Position::default(), 100).unwrap();
    assert_eq!(page.items.len(), 1);
}

/// Files a 10-trainee class on `kv` with the store failing after `writes`
/// writes (the filing must fail), then files it again and returns the retry.
fn file_crashing_after(kv: &MemoryStore, writes: u32) -> classes::Filed {
    seed_registry(kv);
    let hasher = PiiHasher::new("test");
    let (app, ctx) = fixtures::valid_class(10);
    let decision = class_opening::evaluate(&app, &ctx, Parameters::shipped(), Catalogue::shipped());
    kv.fail_after_writes(Some(writes));
    let crashed = classes::file(
        kv,
        &hasher,
        app.clone(),
        decision.clone(),
        actor(),
        Utc::now(),
    );
    assert!(crashed.is_err(), "the filing fails after {writes} writes");
    kv.fail_after_writes(None);
    classes::file(kv, &hasher, app, decision, actor(), Utc::now()).unwrap()
}

#[test]
fn a_filing_that_crashed_after_its_claim_is_finished_by_the_retry() {
    let kv = MemoryStore::new();
    // Crash right after the claim: the sequence increment, the claim's election and the claim are the three writes.
    let retry = file_crashing_after(&kv, 3);
    assert!(!retry.created, "the retry finds the claim");
    assert!(retry.record.side_effects_done);
    let page = classes::list(&kv, &ListFilter::default(), Position::default(), 100).unwrap();
    assert_eq!(page.items.len(), 1);
    let stored = classes::get(&kv, &retry.record.id).unwrap().unwrap();
    assert_eq!(stored.status, ClassStatus::Approved);
}

#[test]
fn a_filing_that_crashed_between_winning_the_claim_and_writing_it_is_refiled_by_the_retry() {
    let kv = MemoryStore::new();
    let retry = file_crashing_after(&kv, 2);
    assert!(
        retry.created,
        "the dead election is held again and the retry files the class"
    );
    let page = classes::list(&kv, &ListFilter::default(), Position::default(), 100).unwrap();
    assert_eq!(page.items.len(), 1);
}

#[test]
fn no_key_holds_an_id_or_phone_number() {
    let kv = MemoryStore::new();
    seed_registry(&kv);
    let hasher = PiiHasher::new("test");
    let (app, ctx) = fixtures::valid_class(20);
    let decision = class_opening::evaluate(&app, &ctx, Parameters::shipped(), Catalogue::shipped());
    classes::file(&kv, &hasher, app.clone(), decision, actor(), Utc::now()).unwrap();
    for key in kv.dump().keys() {
        for t in &app.roster {
            assert!(
                !key.contains(t.id_number.expose()),
                "key {key} holds an ID number"
            );
            assert!(!key.contains(t.mobile.expose()), "key {key} holds a mobile");
        }
    }
}

fn check(kind: CheckKind, result: CheckResult) -> CheckRecord {
    CheckRecord {
        kind,
        officer: "王科长".into(),
        at: Utc::now(),
        result,
        notes: String::new(),
        recorded_by: Actor {
            sub: "officer-1".into(),
            role: "district_officer".into(),
        },
        recorded_at: Utc::now(),
    }
}

/// The policy's decision (CK-ORDER, CK-WINDOW) for a check of `kind` dated
/// inside its window, as the class-opening handler passes it to the store.
fn decide(
    kind: CheckKind,
) -> impl Fn(&classes::ClassRecord) -> Result<ClassStatus, policy::checks::CheckRefusal> {
    move |c: &classes::ClassRecord| {
        let (first, last) = (c.application.start_date, c.application.end_date);
        let at = match kind {
            CheckKind::PreOpening => policy::checks::cst_start(first) - chrono::Duration::hours(1),
            CheckKind::InTraining => policy::checks::cst_start(first) + chrono::Duration::hours(1),
            CheckKind::PostAssessment => {
                policy::checks::cst_start(last) + chrono::Duration::hours(1)
            }
        };
        policy::checks::decide_check(
            &policy::checks::CheckFacts {
                kind,
                at,
                recorded_at: at,
                status: c.status,
                in_training_passed: c.has_passed(CheckKind::InTraining),
                first_day: first,
                last_day: last,
            },
            Parameters::shipped(),
        )
        .map(|a| a.on_pass)
    }
}

#[test]
fn checks_move_a_class_along_in_order_only() {
    let kv = MemoryStore::new();
    seed_registry(&kv);
    let hasher = PiiHasher::new("test");
    let (app, ctx) = fixtures::valid_class(5);
    let decision = class_opening::evaluate(&app, &ctx, Parameters::shipped(), Catalogue::shipped());
    let id = classes::file(&kv, &hasher, app, decision, actor(), Utc::now())
        .unwrap()
        .record
        .id;
    let before = kv.dump();
    let out_of_order = classes::record_check(
        &kv,
        &id,
        check(CheckKind::PostAssessment, CheckResult::Passed),
        decide(CheckKind::PostAssessment),
        Utc::now(),
    );
    assert!(matches!(
        out_of_order,
        Err(UpdateError::Refused(CheckError::Refused(
            policy::checks::CheckRefusal::OutOfOrder {
                status: ClassStatus::Approved,
                ..
            }
        )))
    ));
    assert_eq!(kv.dump(), before, "a refused check writes nothing");
    let r = classes::record_check(
        &kv,
        &id,
        check(CheckKind::PreOpening, CheckResult::Failed),
        decide(CheckKind::PreOpening),
        Utc::now(),
    )
    .unwrap();
    assert_eq!(
        r.status,
        ClassStatus::Approved,
        "a failed check is recorded and the class stays"
    );
    let steps = [
        (CheckKind::PreOpening, ClassStatus::InTraining),
        // CK-ORDER: the in-training check does not end training.
        (CheckKind::InTraining, ClassStatus::InTraining),
        (CheckKind::PostAssessment, ClassStatus::Assessed),
    ];
    for (kind, want) in steps {
        let r = classes::record_check(
            &kv,
            &id,
            check(kind, CheckResult::Passed),
            decide(kind),
            Utc::now(),
        )
        .unwrap();
        assert_eq!(r.status, want, "{kind:?}");
    }
    let r = classes::get(&kv, &id).unwrap().unwrap();
    assert_eq!(r.checks.len(), 4);
    assert!(matches!(
        classes::record_check(
            &kv,
            &id,
            check(CheckKind::PreOpening, CheckResult::Passed),
            decide(CheckKind::PreOpening),
            Utc::now()
        ),
        Err(UpdateError::Refused(CheckError::Refused(
            policy::checks::CheckRefusal::OutOfOrder { .. }
        )))
    ));
    assert!(store::audit::verify(&kv, 1, 1000).unwrap().is_ok());
}

//! No key of the store holds personal data or an unkeyed hash of it: a class
//! is claimed by the keyed digest of its application (issue 14, item 5), the
//! claim still makes a refiling return the first class, and a claim written
//! under the old plain digest no longer matches (the refiling is then decided
//! by the rules, CO-ROSTER, against the first class).

use chrono::{NaiveDate, TimeZone, Utc};
use policy::class_opening::{ClassApplication, Context};
use policy::fixtures;
use policy::{Decision, Outcome, class_opening};
use store::audit::Actor;
use store::classes;
use store::pii::{PiiHasher, sha256_hex};
use store::{KeyValue, MemoryStore};

fn actor() -> Actor {
    Actor {
        sub: "inst-1".into(),
        role: "institution".into(),
    }
}

fn evaluate(app: &ClassApplication, ctx: &Context, policy: &policy::Policy) -> Decision {
    class_opening::evaluate(app, ctx, policy)
}

fn file(
    kv: &MemoryStore,
    hasher: &PiiHasher,
    app: ClassApplication,
    today: NaiveDate,
) -> classes::Filed {
    let rules = classes::Rules::new(evaluate, class_opening::clashes);
    let now = Utc.with_ymd_and_hms(2022, 6, 1, 2, 0, 0).unwrap();
    classes::file(kv, hasher, app, &rules, today, actor(), now).unwrap()
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

/// Every text a key must not hold for `app`: the plain SHA-256 of the
/// application (its canonical bytes and its JSON), and each trainee's ID
/// number, mobile and name, as given, in either case, and their plain SHA-256.
fn forbidden(app: &ClassApplication) -> Vec<(String, String)> {
    let mut out = vec![
        (
            "sha256(application, canonical)".to_string(),
            sha256_hex(store::records::encode(app)),
        ),
        (
            "sha256(application, JSON)".to_string(),
            sha256_hex(serde_json::to_vec(app).unwrap()),
        ),
    ];
    for (i, t) in app.roster.iter().enumerate() {
        let id = t.id_number.expose();
        let mobile = t.mobile.expose();
        for (what, value) in [
            ("id number", id.to_string()),
            ("id number, lower case", id.to_lowercase()),
            ("mobile", mobile.to_string()),
            ("name", t.name.clone()),
        ] {
            out.push((format!("roster[{i}] {what}"), value.clone()));
            out.push((format!("sha256(roster[{i}] {what})"), sha256_hex(&value)));
        }
        // Person and phone refs may be in keys; their unkeyed forms never.
        out.push((
            format!("sha256(roster[{i}] +86 mobile)"),
            sha256_hex(format!("+86{mobile}")),
        ));
    }
    out
}

fn assert_no_personal_data_in_keys(kv: &MemoryStore, app: &ClassApplication) {
    let keys = kv.list_keys().unwrap();
    assert!(keys.len() > 10, "the filing wrote its records: {keys:?}");
    for key in &keys {
        let lower = key.to_lowercase();
        for (what, value) in forbidden(app) {
            assert!(
                !lower.contains(&value.to_lowercase()),
                "key {key} holds the {what}"
            );
        }
    }
}

#[test]
fn no_key_written_by_filing_holds_personal_data_or_a_plain_hash_of_it() {
    let kv = MemoryStore::new();
    seed_registry(&kv);
    let hasher = PiiHasher::new("test-hmac-key");
    for n in [1, 5, 60] {
        let (mut app, expected) = fixtures::valid_class(n);
        app.title = format!("{} ({n})", app.title);
        let filed = file(&kv, &hasher, app.clone(), expected.today);
        assert!(filed.created);
        assert_eq!(
            filed.record.claim_digest,
            classes::application_digest(&hasher, &app)
        );
        assert_ne!(
            filed.record.claim_digest,
            sha256_hex(store::records::encode(&app))
        );
        assert_no_personal_data_in_keys(&kv, &app);
    }
    // The claim is there, under the keyed digest.
    let (app, _) = fixtures::valid_class(1);
    let mut app = app;
    app.title = format!("{} (1)", app.title);
    let claim = store::keys::class_claim(
        app.institution.as_str(),
        &classes::application_digest(&hasher, &app),
    );
    assert!(kv.exists(&claim).unwrap(), "{claim}");
}

#[test]
fn the_claim_digest_depends_on_the_key() {
    let (app, _) = fixtures::valid_class(3);
    let a = classes::application_digest(&PiiHasher::new("k1"), &app);
    let b = classes::application_digest(&PiiHasher::new("k2"), &app);
    assert_ne!(a, b);
    assert_eq!(a, classes::application_digest(&PiiHasher::new("k1"), &app));
}

#[test]
fn a_refiling_of_the_same_application_returns_the_first_class() {
    let kv = MemoryStore::new();
    seed_registry(&kv);
    let hasher = PiiHasher::new("test-hmac-key");
    let (app, expected) = fixtures::valid_class(5);
    let first = file(&kv, &hasher, app.clone(), expected.today);
    assert!(first.created);
    assert_eq!(first.record.decision.outcome, Outcome::Approved);
    let keys_before = kv.list_keys().unwrap();
    let again = file(&kv, &hasher, app.clone(), expected.today);
    assert!(!again.created, "the claim still finds the first class");
    assert_eq!(again.record, first.record);
    assert_eq!(kv.list_keys().unwrap(), keys_before, "no new record");
}

/// A claim written before the change (keyed by the plain SHA-256) is not
/// found by the new key: an identical application filed again after the
/// upgrade makes a new filing, which the rules reject because its trainees
/// are enrolled in the first class on the same days (CO-ROSTER). The first
/// class is unchanged. docs/OPERATIONS.md says so for the upgrade.
#[test]
fn a_claim_written_under_the_plain_digest_no_longer_matches_and_co_roster_decides() {
    let kv = MemoryStore::new();
    seed_registry(&kv);
    let hasher = PiiHasher::new("test-hmac-key");
    let (app, expected) = fixtures::valid_class(5);
    let first = file(&kv, &hasher, app.clone(), expected.today);
    assert_eq!(first.record.decision.outcome, Outcome::Approved);
    // Move the claim to where the old code wrote it.
    let institution = app.institution.as_str();
    let new_key = store::keys::class_claim(institution, &first.record.claim_digest);
    let old_key = store::keys::class_claim(institution, &sha256_hex(store::records::encode(&app)));
    let claim = kv.get(&new_key).unwrap().unwrap();
    kv.set(&old_key, &claim).unwrap();
    kv.delete(&new_key).unwrap();

    let again = file(&kv, &hasher, app.clone(), expected.today);
    assert!(again.created, "the old claim is not found");
    assert_ne!(again.record.id, first.record.id);
    assert_eq!(again.record.decision.outcome, Outcome::Rejected);
    assert!(
        again
            .record
            .decision
            .blocking_rules
            .iter()
            .any(|r| r == "CO-ROSTER"),
        "{:?}",
        again.record.decision.blocking_rules
    );
    let stored = classes::get(&kv, &first.record.id).unwrap().unwrap();
    assert_eq!(stored, first.record, "the first class is unchanged");
}

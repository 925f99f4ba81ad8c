//! Key rotation through `POST /api/v1/admin/key-rotation`: after the pages
//! are done, every stored value opens with the new key and none with the old
//! key alone.

#![allow(clippy::result_large_err)]

mod support;

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Value, json};
use store::sealed::{DataKey, Keyring, SealedKv};
use store::{KeyValue, MemoryStore};
use support::random;
use web::Env;
use web::auth::Role;

/// 2022-06-01 10:00 CST.
fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2022, 6, 1, 2, 0, 0).unwrap()
}

fn token(role: Role) -> String {
    support::token(role, None, now())
}

fn call(
    kv: &SealedKv<'_, MemoryStore>,
    method: &str,
    path: &str,
    tok: &str,
    body: Value,
) -> (u16, Value) {
    let secrets = support::secrets();
    let req = support::request(method, path, Some(tok), support::json_body(&body), &[]);
    let env = Env {
        kv,
        secrets: &secrets,
        now: now(),
        random: &random,
    };
    let a = support::answer(app::class_opening::handle(&env, &req));
    assert!(!a.body.is_null(), "not JSON: {}", a.text);
    (a.status.as_u16(), a.body)
}

#[test]
fn after_rotation_every_record_opens_with_the_new_key_and_none_with_the_old_alone() {
    let mem = MemoryStore::new();
    let old = DataKey::from_secret("old-data-key-0123456789abcdefghijklmn");
    let new = DataKey::from_secret("new-data-key-0123456789abcdefghijklmn");
    let before = SealedKv::new(mem.clone(), Keyring::new(old.clone(), vec![]), &random);
    let admin = token(Role::BureauAdmin);
    let (s, _) = call(
        &before,
        "PUT",
        &format!(
            "/api/v1/registry/institutions/{}",
            policy::fixtures::INSTITUTION
        ),
        &admin,
        serde_json::to_value(policy::fixtures::institution()).unwrap(),
    );
    assert_eq!(s, 201);
    let (app, _) = policy::fixtures::valid_class(20);
    let (s, v) = call(
        &before,
        "POST",
        "/api/v1/classes",
        &token(Role::Institution),
        serde_json::to_value(app).unwrap(),
    );
    assert_eq!(s, 201, "{v}");
    let id = v["id"].as_str().unwrap().to_string();

    let rotating = SealedKv::new(
        mem.clone(),
        Keyring::new(new.clone(), vec![old.clone()]),
        &random,
    );
    let mut after: Option<String> = None;
    let mut pages = 0;
    let mut resealed = 0;
    loop {
        let body = match &after {
            None => json!({"limit": 7}),
            Some(a) => json!({"after": a, "limit": 7}),
        };
        let (s, page) = call(
            &rotating,
            "POST",
            "/api/v1/admin/key-rotation",
            &admin,
            body,
        );
        assert_eq!(s, 200, "{page}");
        pages += 1;
        resealed += page["resealed"].as_u64().unwrap();
        after = page["last_key"].as_str().map(str::to_string).or(after);
        if page["done"] == true {
            break;
        }
        assert!(pages < 1_000, "rotation ends");
    }
    assert!(pages > 2, "the rotation ran in pages");
    // Repeating the last page changes nothing.
    let (_, again) = call(
        &rotating,
        "POST",
        "/api/v1/admin/key-rotation",
        &admin,
        json!({"limit": 5000}),
    );
    assert_eq!(again["resealed"], 0);

    let new_only = Keyring::new(new, vec![]);
    let old_only = Keyring::new(old, vec![]);
    let mut sealed = 0;
    for (key, value) in mem.dump() {
        if Keyring::key_id_of(&value).is_none() {
            continue; // a counter: never sealed
        }
        sealed += 1;
        assert!(
            new_only.open(&key, &value).is_ok(),
            "{key} opens with the new key"
        );
        assert!(
            old_only.open(&key, &value).is_err(),
            "{key} does not open with the old key alone"
        );
    }
    assert_eq!(
        sealed as u64, resealed,
        "every sealed value was re-sealed once"
    );
    // The application still reads its data with the new key alone.
    let after_rotation = SealedKv::new(mem.clone(), new_only, &random);
    let (s, v) = call(
        &after_rotation,
        "GET",
        &format!("/api/v1/classes/{id}"),
        &admin,
        Value::Null,
    );
    assert_eq!((s, v["trainees"].as_u64()), (200, Some(20)));
    assert!(store::KeyValue::list_keys(&after_rotation).unwrap().len() > sealed);
}

#[test]
fn rotation_is_for_the_bureau_only_and_checks_its_limit() {
    let mem = MemoryStore::new();
    let kv = SealedKv::new(
        mem.clone(),
        Keyring::new(DataKey::from_secret("k"), vec![]),
        &random,
    );
    let (s, _) = call(
        &kv,
        "POST",
        "/api/v1/admin/key-rotation",
        &token(Role::Institution),
        json!({}),
    );
    assert_eq!(s, 403);
    let (s, _) = call(
        &kv,
        "POST",
        "/api/v1/admin/key-rotation",
        &token(Role::BureauAdmin),
        json!({"limit": 0}),
    );
    assert_eq!(s, 422);
    let (s, v) = call(
        &kv,
        "POST",
        "/api/v1/admin/key-rotation",
        &token(Role::BureauAdmin),
        json!({}),
    );
    assert_eq!((s, v["done"].as_bool()), (200, Some(true)));
    assert!(mem.list_keys().unwrap().is_empty());
}

//! Key rotation through `POST /api/v1/admin/key-rotation`: after the pages
//! are done, every stored value opens with the new key and none with the old
//! key alone.

#![allow(clippy::result_large_err)]

use bytes::Bytes;
use chrono::{TimeZone, Utc};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use store::sealed::{DataKey, Keyring, SealedKv};
use store::{KeyValue, MemoryStore};
use web::auth::{Claims, Role, mint};
use web::{Env, Secrets};

const JWT: &str = "rotation-jwt-secret-0123456789abcdefghijk";

fn random(buf: &mut [u8]) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(1);
    let v = N.fetch_add(1, Ordering::SeqCst).to_le_bytes();
    for (i, b) in buf.iter_mut().enumerate() {
        *b = v[i % 8];
    }
}

fn token(role: Role) -> String {
    let now = Utc
        .with_ymd_and_hms(2022, 6, 1, 2, 0, 0)
        .unwrap()
        .timestamp();
    let claims = Claims {
        sub: format!("{}-1", role.id()),
        role,
        institution: (role == Role::Institution)
            .then(|| policy::ids::CreditCode::parse(policy::fixtures::INSTITUTION).unwrap()),
        district: None,
        person: None,
        iat: now,
        nbf: None,
        exp: now + 3600,
    };
    mint(&claims, JWT)
}

fn call(
    kv: &SealedKv<'_, MemoryStore>,
    method: &str,
    path: &str,
    tok: &str,
    body: Value,
) -> (u16, Value) {
    let secrets = Secrets {
        jwt_secret: JWT.into(),
        pii_hmac_key: "h".repeat(32),
        pii_key: "unused-here".repeat(3),
        extra: BTreeMap::new(),
    };
    let req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {tok}"))
        .body(Bytes::from(serde_json::to_vec(&body).unwrap()))
        .unwrap();
    let env = Env {
        kv,
        secrets: &secrets,
        now: Utc.with_ymd_and_hms(2022, 6, 1, 2, 0, 0).unwrap(),
        random: &random,
    };
    let res = app::class_opening::handle(&env, &req);
    (
        res.status().as_u16(),
        serde_json::from_slice(res.body()).unwrap(),
    )
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

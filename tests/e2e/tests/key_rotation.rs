//! Key rotation through the Spin host: data sealed with the old key, the
//! rotation route run page by page after a redeploy with the new key, and
//! then the new key alone reads everything back.

use crate::common::{call, dump, seed, token};
use e2e::{Host, HostConfig};
use serde_json::json;
use store::sealed::{DataKey, Keyring};
use web::auth::Role;

const OLD: &str = "old-pii-key-0123456789abcdefghijklmnopqrs";
const NEW: &str = "new-pii-key-0123456789abcdefghijklmnopqrs";

fn config(db: &std::path::Path, key: &str, previous: &str) -> HostConfig {
    crate::common::product(db)
        .variable("pii_key", key)
        .variable("pii_key_previous", previous)
}

#[tokio::test(flavor = "multi_thread")]
async fn after_rotation_every_value_opens_with_the_new_key_and_none_with_the_old_alone() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sqlite_key_value.db");
    let host = Host::start(config(&db, OLD, "")).unwrap();
    seed(&host).await;
    let (id, _) = crate::common::file_class(&host, 10).await;
    host.stop();

    // Redeploy with the new key, the old one still accepted, and rotate page by page.
    let host = Host::start(config(&db, NEW, OLD)).unwrap();
    let admin = token(Role::BureauAdmin, None);
    let mut after = serde_json::Value::Null;
    let mut pages = 0;
    loop {
        let page = call(
            &host,
            "POST",
            "/api/v1/admin/key-rotation",
            Some(&admin),
            &json!({"after": after, "limit": 25}).to_string(),
            &[],
        )
        .await;
        assert_eq!(page.status, 200, "{}", page.text());
        let p = page.json().unwrap();
        pages += 1;
        if p["done"] == true {
            break;
        }
        after = p["last_key"].clone();
        assert!(pages < 500);
    }
    assert!(pages > 1, "the rotation ran in pages");
    host.stop();

    let (new_only, old_only) = (
        Keyring::new(DataKey::from_secret(NEW), vec![]),
        Keyring::new(DataKey::from_secret(OLD), vec![]),
    );
    let mut sealed = 0;
    for (key, value) in dump(&db) {
        if Keyring::key_id_of(&value).is_none() {
            continue;
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
    assert!(sealed > 10);

    // The application reads its data with the new key alone.
    let host = Host::start(config(&db, NEW, "")).unwrap();
    let got = call(
        &host,
        "GET",
        &format!("/api/v1/classes/{id}"),
        Some(&admin),
        "",
        &[],
    )
    .await;
    assert_eq!(got.status, 200, "{}", got.text());
    assert_eq!(got.json().unwrap()["trainees"], 10);
}

//! The audit log end to end, on SQLite and on Redis: events written by real
//! requests are integrated into a signed RFC 6962 log; its proofs check with
//! an RFC implementation of the test's own; and changes made to the store
//! behind the components' back (a truncated log with its counter reset, an
//! old sealed voucher value put back, a class's hold deleted, one byte
//! changed) are each found by verify against a checkpoint kept before,
//! naming the key or the event. A writer killed after taking its number
//! stalls nobody and ends up in the log as a signed gap.

use crate::common::rfc6962;
use crate::common::{call, ok, token};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use e2e::kv::KvStore;
use e2e::kv_redis::{RedisConfig, RedisSemantics};
use e2e::redis_server::RedisServer;
use e2e::{Host, HostConfig};
use serde_json::{Value, json};
use std::path::PathBuf;
use tempfile::TempDir;
use web::auth::Role;

/// The product on one backend, and the same store opened directly, as an
/// attacker with write access to it (but no key) would.
struct Side {
    host: Host,
    raw: KvStore,
    _dir: Option<TempDir>,
    _redis: Option<RedisServer>,
}

impl Side {
    fn sqlite(config: impl Fn(PathBuf) -> HostConfig) -> Side {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("sqlite_key_value.db");
        let host = Host::start(config(db.clone())).unwrap();
        let raw = KvStore::open(&db, None).unwrap();
        Side {
            host,
            raw,
            _dir: Some(dir),
            _redis: None,
        }
    }

    fn redis(test: &str, config: impl Fn(PathBuf) -> HostConfig) -> Option<Side> {
        let redis = RedisServer::start_or_skip(test)?;
        let host = Host::start(config(redis.dir().join("unused.db")).redis(redis.url())).unwrap();
        let raw = KvStore::open(
            &redis.dir().join("unused-raw.db"),
            Some(&RedisConfig {
                url: redis.url(),
                semantics: RedisSemantics::Intended,
            }),
        )
        .unwrap();
        Some(Side {
            host,
            raw,
            _dir: None,
            _redis: Some(redis),
        })
    }

    fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.raw.get("default", key).unwrap()
    }

    fn set(&self, key: &str, value: &[u8]) {
        self.raw.set("default", key, value).unwrap()
    }

    fn delete(&self, key: &str) {
        self.raw.delete("default", key).unwrap()
    }
}

fn product(db: PathBuf) -> HostConfig {
    crate::common::product(db)
}

/// Percent-encodes `text` for a query string.
fn enc(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Runs the integration step until nothing is pending; returns its last answer.
async fn integrate(host: &Host) -> Value {
    let scheduler = token(Role::Scheduler, None);
    loop {
        let v = ok(host, "POST", "/api/v1/audit/integrate", &scheduler, json!({})).await;
        if v["pending"] == 0 || v["waiting_for"].is_u64() {
            return v;
        }
    }
}

/// The current signed checkpoint.
async fn checkpoint(host: &Host) -> String {
    let r = call(
        host,
        "GET",
        "/api/v1/audit/checkpoint",
        Some(&token(Role::Institution, None)),
        "",
        &[],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.headers.get("content-type").unwrap(),
        "text/plain; charset=utf-8"
    );
    r.text()
}

/// Every page of verify against `cp`: what was found.
async fn verify_all(host: &Host, cp: &str) -> Vec<Value> {
    let admin = token(Role::BureauAdmin, None);
    let mut found = Vec::new();
    let mut cursor = String::new();
    for _ in 0..1_000 {
        let path = format!(
            "/api/v1/audit/verify?pages=2&checkpoint={}{cursor}",
            enc(cp)
        );
        let v = ok(host, "GET", &path, &admin, json!(null)).await;
        found.extend(v["discrepancies"].as_array().unwrap().iter().cloned());
        match v["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => return found,
        }
    }
    panic!("verify never finished");
}

/// Activates the cards of roster `lines` and issues their vouchers; returns the codes.
async fn issue(
    host: &Host,
    class_id: &str,
    app: &policy::class_opening::ClassApplication,
    lines: &[usize],
) -> Vec<String> {
    let social = token(Role::SocialSecurity, None);
    for l in lines {
        ok(
            host,
            "POST",
            "/api/v1/cards/activations",
            &social,
            json!({"id_number": app.roster[*l].id_number.expose(), "active": true}),
        )
        .await;
    }
    let issued = ok(
        host,
        "POST",
        &format!("/api/v1/classes/{class_id}/vouchers"),
        &token(Role::Institution, None),
        json!({ "lines": lines }),
    )
    .await;
    assert_eq!(issued["issued"], lines.len(), "{issued}");
    issued["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["voucher"]["code_compact"].as_str().unwrap().to_string())
        .collect()
}

fn kinds(found: &[Value]) -> Vec<(String, String, Option<u64>)> {
    found
        .iter()
        .map(|d| {
            (
                d["kind"].as_str().unwrap().to_string(),
                d["key"].as_str().unwrap_or_default().to_string(),
                d["seq"].as_u64(),
            )
        })
        .collect()
}

/// The last event of `entity`.
async fn last_event(host: &Host, entity: &str) -> Value {
    last_event_of(host, entity, "").await
}

/// The last event of `entity` whose action starts with `prefix`.
async fn last_event_of(host: &Host, entity: &str, prefix: &str) -> Value {
    let v = ok(
        host,
        "GET",
        &format!("/api/v1/audit?entity={}&limit=500", enc(entity)),
        &token(Role::BureauAdmin, None),
        json!(null),
    )
    .await;
    v["events"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|e| e["action"].as_str().unwrap().starts_with(prefix))
        .unwrap()
        .clone()
}

/// Files an approved class of `n` trainees with the fixture's `salt`,
/// registering its trainers first (the seed registers those of salt 0).
async fn file_salted(
    host: &Host,
    n: usize,
    salt: u32,
) -> (String, policy::class_opening::ClassApplication) {
    let today = policy::ids::today_cst();
    let (app, _) =
        policy::fixtures::valid_class_from(today + chrono::Duration::days(21), today, n, salt);
    let admin = token(Role::BureauAdmin, None);
    for t in &app.trainers {
        let no = &t.registration_no;
        ok(
            host,
            "PUT",
            &format!("/api/v1/registry/trainers/{no}"),
            &admin,
            json!({"registration_no": no, "name": "讲师", "status": "registered"}),
        )
        .await;
    }
    (crate::common::file_approved(host, &app).await, app)
}

/// The scenario of the tamper tests, on either backend.
async fn tampering_behind_the_components_back_is_found_by_key_and_event(side: Side) {
    let host = &side.host;
    // A class with a finding opened and rectified (its hold record), vouchers settled.
    crate::spot_checks::run_secrecy_denial_and_settlement(host).await;
    host.set_clock_offset_secs(0);
    let held_class = ok(
        host,
        "GET",
        "/api/v1/classes?limit=1",
        &token(Role::BureauAdmin, None),
        json!(null),
    )
    .await["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    // Another class with vouchers; checkpoint A.
    let (class_id, app) = file_salted(host, 3, 7).await;
    let codes = issue(host, &class_id, &app, &[0, 1, 2]).await;
    integrate(host).await;
    let cp_a = checkpoint(host).await;
    let voucher_key = store::vouchers::voucher_key(&codes[0]);
    let issued_value = side.get(&voucher_key).unwrap();
    let tree_a = side.get(&store::keys::audit_tree()).unwrap();
    let next_a = side.get(&store::keys::audit_next()).unwrap();
    // More history: the voucher revoked; checkpoint B.
    ok(
        host,
        "POST",
        &format!("/api/v1/vouchers/{}/revoke", codes[0]),
        &token(Role::DistrictOfficer, None),
        json!({"reason": "学员放弃培训"}),
    )
    .await;
    file_salted(host, 3, 8).await;
    let step = integrate(host).await;
    let cp_b = checkpoint(host).await;
    let size_a: u64 = cp_a.lines().nth(1).unwrap().parse().unwrap();
    let size_b = step["size"].as_u64().unwrap();
    assert!(size_b > size_a + 2, "{size_a} → {size_b}");
    assert_eq!(verify_all(host, &cp_a).await, Vec::<Value>::new());
    assert_eq!(verify_all(host, &cp_b).await, Vec::<Value>::new());

    // Proofs, checked with the test's own RFC 6962 code over every leaf.
    let key = ok(
        host,
        "GET",
        "/api/v1/audit/key",
        &token(Role::Inspector, None),
        json!(null),
    )
    .await;
    let (origin, size, root) =
        rfc6962::open_checkpoint(&cp_b, key["verifier_key"].as_str().unwrap());
    assert_eq!((origin.as_str(), size), (key["origin"].as_str().unwrap(), size_b));
    let admin = token(Role::BureauAdmin, None);
    let mut leaves = Vec::new();
    let mut served = Vec::new();
    for seq in 1..=size_b {
        let p = ok(
            host,
            "GET",
            &format!("/api/v1/audit/proofs/inclusion?seq={seq}&size={size_b}"),
            &admin,
            json!(null),
        )
        .await;
        leaves.push(B64.decode(p["leaf_data"].as_str().unwrap()).unwrap());
        let event: Value = serde_json::from_slice(leaves.last().unwrap()).unwrap();
        assert_eq!(event["seq"], seq, "leaf {seq} is event {seq}");
        let i = (seq - 1) as usize;
        if [0, 1, size_a as usize - 1, size_b as usize - 1].contains(&i) || seq % 7 == 0 {
            served.push((p, i));
        }
    }
    for (p, i) in &served {
        assert_eq!(
            rfc6962::hashes(&p["proof"]),
            rfc6962::path(*i, &leaves),
            "the audit path of leaf {i}"
        );
        assert_eq!(
            B64.decode(p["leaf_hash"].as_str().unwrap()).unwrap(),
            rfc6962::leaf(&leaves[*i])
        );
    }
    assert_eq!(rfc6962::mth(&leaves), root, "the checkpoint signs every leaf");
    for (from, to) in [(size_a, size_b), (1, size_b), (size_b - 1, size_b), (size_a, size_a)] {
        let c = ok(
            host,
            "GET",
            &format!("/api/v1/audit/proofs/consistency?from={from}&to={to}"),
            &token(Role::Institution, None),
            json!(null),
        )
        .await;
        assert_eq!(
            rfc6962::hashes(&c["proof"]),
            rfc6962::proof(from as usize, &leaves[..to as usize]),
            "consistency {from} → {to}"
        );
        assert_eq!(
            B64.decode(c["from_root"].as_str().unwrap()).unwrap(),
            rfc6962::mth(&leaves[..from as usize])
        );
    }
    let (_, a_size, a_root) = rfc6962::open_checkpoint(&cp_a, key["verifier_key"].as_str().unwrap());
    assert_eq!(rfc6962::mth(&leaves[..a_size as usize]), a_root);

    // 1. One byte of an event changed.
    let event3 = store::keys::audit_event(3);
    let original = side.get(&event3).unwrap();
    let mut changed = original.clone();
    let at = changed.len() / 2;
    changed[at] ^= 0x01;
    side.set(&event3, &changed);
    assert_eq!(
        kinds(&verify_all(host, &cp_b).await),
        vec![("event_changed".to_string(), event3.clone(), Some(3))]
    );
    side.set(&event3, &original);

    // 2. The voucher's old sealed value put back (revoked → issued).
    side.set(&voucher_key, &issued_value);
    let revoked = last_event(host, &format!("voucher:{}", codes[0])).await;
    assert_eq!(revoked["action"], "voucher.revoked");
    assert_eq!(
        kinds(&verify_all(host, &cp_b).await),
        vec![(
            "record_not_as_logged".to_string(),
            voucher_key.clone(),
            revoked["seq"].as_u64()
        )]
    );
    // The answer of the product itself still reads it: only verify tells.
    let current = side.get(&voucher_key).unwrap();
    assert_eq!(current, issued_value);

    // 3. The hold of the class with a finding deleted.
    let hold_key = store::findings::hold_key(&held_class);
    let hold = side.get(&hold_key).expect("the class has a hold record");
    side.delete(&hold_key);
    let found = kinds(&verify_all(host, &cp_b).await);
    let rectified = last_event_of(host, &format!("class:{held_class}"), "finding.").await;
    assert_eq!(rectified["action"], "finding.rectified");
    assert!(
        found.contains(&(
            "hold_missing".to_string(),
            hold_key.clone(),
            rectified["seq"].as_u64()
        )),
        "{found:?}"
    );
    side.set(&hold_key, &hold);

    // 4. The tail cut off, the tree and the counter put back to checkpoint A.
    for seq in size_a + 1..=size_b {
        side.delete(&store::keys::audit_event(seq));
    }
    side.set(&store::keys::audit_tree(), &tree_a);
    side.set(&store::keys::audit_next(), &next_a);
    let found = verify_all(host, &cp_b).await;
    assert_eq!(
        kinds(&found)[0],
        (
            "truncated".to_string(),
            store::keys::audit_tree(),
            Some(size_a + 1)
        ),
        "{found:?}"
    );
    assert!(
        found[0]["message_en"]
            .as_str()
            .unwrap()
            .contains(&format!("checkpoint signed {size_b}")),
        "{found:?}"
    );
    // Against checkpoint A, kept before the cut, the log looks whole: a
    // truncation is found only with a checkpoint kept elsewhere after it.
    // (The voucher's live record is still the revoked one: the log no
    // longer has the revocation.)
    let against_a = kinds(&verify_all(host, &cp_a).await);
    assert!(
        against_a.iter().all(|(k, _, _)| k != "truncated"),
        "{against_a:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn on_sqlite_tampering_behind_the_components_back_is_found_by_key_and_event() {
    tampering_behind_the_components_back_is_found_by_key_and_event(Side::sqlite(product)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn on_redis_tampering_behind_the_components_back_is_found_by_key_and_event() {
    let Some(side) = Side::redis("redis audit tampering", product) else {
        return;
    };
    tampering_behind_the_components_back_is_found_by_key_and_event(side).await;
}

/// A writer that took its number and died: later writers do not wait, and
/// the gap is integrated as a signed, explicit gap after the timeout.
async fn a_writer_killed_after_taking_its_number_stalls_nobody_and_becomes_a_signed_gap(side: Side) {
    let host = &side.host;
    crate::common::seed(host).await;
    integrate(host).await;
    // The killed writer: number taken through the store, event never written.
    let dead = side
        .raw
        .increment("default", &store::keys::audit_next(), 1)
        .unwrap() as u64;
    // Later audited writes: a registry PUT and a filing. With the hash
    // chain each polled the event before its own up to 2,000 times; now
    // neither reads it.
    let admin = token(Role::BureauAdmin, None);
    let calls = host.kv_calls();
    ok(
        host,
        "PUT",
        "/api/v1/registry/trainers/YN-T-0099",
        &admin,
        json!({"registration_no": "YN-T-0099", "name": "讲师", "status": "registered"}),
    )
    .await;
    let put_calls = host.kv_calls() - calls;
    assert!(put_calls < 40, "a registry PUT made {put_calls} key-value calls");
    let (class_id, _) = file_salted(host, 3, 9).await;
    let after: u64 = last_event(host, &format!("class:{class_id}")).await["seq"]
        .as_u64()
        .unwrap();
    assert!(after > dead);
    // Integration waits for the dead number, then records it as a gap.
    let first = integrate(host).await;
    assert_eq!(
        (first["size"].as_u64(), first["waiting_for"].as_u64()),
        (Some(dead - 1), Some(dead)),
        "{first}"
    );
    let again = integrate(host).await;
    assert_eq!(again["gaps"], json!([]), "not before the timeout: {again}");
    tokio::time::sleep(std::time::Duration::from_millis(2_100)).await;
    let late = integrate(host).await;
    assert_eq!(late["gaps"], json!([dead]), "{late}");
    assert_eq!((late["size"].as_u64(), late["pending"].as_u64()), (Some(after), Some(0)));
    // The gap's leaf: a record saying so, signed with the log key.
    let p = ok(
        host,
        "GET",
        &format!("/api/v1/audit/proofs/inclusion?seq={dead}"),
        &token(Role::BureauAdmin, None),
        json!(null),
    )
    .await;
    let gap: Value = serde_json::from_slice(&B64.decode(p["leaf_data"].as_str().unwrap()).unwrap()).unwrap();
    assert_eq!((gap["seq"].as_u64(), gap["gap"].as_bool()), (Some(dead), Some(true)), "{gap}");
    let key = ok(host, "GET", "/api/v1/audit/key", &token(Role::Scheduler, None), json!(null)).await;
    let public: [u8; 32] = B64
        .decode(key["public_key"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let public = ed25519_dalek::VerifyingKey::from_bytes(&public).unwrap();
    let parse = |f: &str| chrono::DateTime::parse_from_rfc3339(gap[f].as_str().unwrap()).unwrap();
    let text = format!(
        "audit-gap\n{}\n{dead}\n{}\n{}\n",
        key["origin"].as_str().unwrap(),
        parse("noticed_at").with_timezone(&chrono::Utc).to_rfc3339(),
        parse("integrated_at").with_timezone(&chrono::Utc).to_rfc3339(),
    );
    let sig = ed25519_dalek::Signature::from_slice(&B64.decode(gap["signature"].as_str().unwrap()).unwrap()).unwrap();
    public.verify_strict(text.as_bytes(), &sig).expect("the gap is signed by the log key");
    let cp = checkpoint(host).await;
    assert_eq!(verify_all(host, &cp).await, Vec::<Value>::new(), "a signed gap is not a fault");
    // A forged gap (its signature changed) is found.
    let gap_key = store::keys::audit_gap(dead);
    let sealed_gap = side.get(&gap_key).unwrap();
    side.delete(&gap_key);
    let found = kinds(&verify_all(host, &cp).await);
    assert_eq!(found[0], ("event_missing".to_string(), store::keys::audit_event(dead), Some(dead)), "{found:?}");
    side.set(&gap_key, &sealed_gap);
}

fn with_gap_timeout(db: PathBuf) -> HostConfig {
    product(db).variable("audit_gap_timeout_seconds", "2")
}

#[tokio::test(flavor = "multi_thread")]
async fn on_sqlite_a_writer_killed_after_taking_its_number_stalls_nobody_and_becomes_a_signed_gap() {
    a_writer_killed_after_taking_its_number_stalls_nobody_and_becomes_a_signed_gap(Side::sqlite(
        with_gap_timeout,
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn on_redis_a_writer_killed_after_taking_its_number_stalls_nobody_and_becomes_a_signed_gap() {
    let Some(side) = Side::redis("redis audit gap", with_gap_timeout) else {
        return;
    };
    a_writer_killed_after_taking_its_number_stalls_nobody_and_becomes_a_signed_gap(side).await;
}

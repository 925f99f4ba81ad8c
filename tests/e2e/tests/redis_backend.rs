//! The class-opening scenario of `class_opening.rs` and the harness's
//! concurrent compare-and-swap test, with key-value data on a real Redis
//! server (a private `redis-server` per test, see `e2e::redis_server`), as a
//! runtime config `[key_value_store.default] type = "redis"` gives on Spin.
//! Same requests, same results as on SQLite.
//!
//! Without `redis-server` installed these tests fail when `CI=true` and are
//! skipped with a notice otherwise.

mod common;

use common::{application, call, seed, token};
use e2e::kv_redis::{RedisConfig, RedisKv, RedisSemantics};
use e2e::redis_server::RedisServer;
use e2e::{Client, Host, HostConfig};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Instant;
use web::auth::{Claims, Role, mint};

/// The product on Redis; the SQLite path is unused.
fn config(redis: &RedisServer) -> HostConfig {
    common::with_secrets(HostConfig::product_only(redis.dir().join("unused.db")).redis(redis.url()))
}

/// A private Redis server and a host of the product on it, or `None` (after
/// a notice) where redis-server is missing outside CI.
fn start(test: &str) -> Option<(RedisServer, Host)> {
    let redis = RedisServer::start_or_skip(test)?;
    let host = Host::start(config(&redis)).expect("host starts");
    Some((redis, host))
}

/// Every key and value on the Redis server.
fn dump(redis: &RedisServer) -> BTreeMap<String, Vec<u8>> {
    RedisKv::open(&RedisConfig {
        url: redis.url(),
        semantics: RedisSemantics::Intended,
    })
    .unwrap()
    .dump()
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn on_redis_files_a_valid_and_an_invalid_application_and_reads_them_back() {
    let Some((redis, host)) = start("redis files and reads back") else {
        return;
    };
    let began = Instant::now();
    seed(&host).await;
    let inst = token(Role::Institution, None);
    let ok = call(
        &host,
        "POST",
        "/api/v1/classes",
        Some(&inst),
        &application(40, 0).to_string(),
        &[],
    )
    .await;
    assert_eq!(ok.status, 201, "{}\n{}", ok.text(), host.logs());
    let v = ok.json().unwrap();
    assert_eq!(v["status"], "approved", "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    assert_eq!(
        ok.header("location"),
        Some(format!("/api/v1/classes/{id}").as_str())
    );

    let mut bad = application(61, 1);
    bad["trainers"][0]["registration_no"] = json!("YN-T-9999");
    for s in bad["sessions"].as_array_mut().unwrap() {
        if s["trainer"] == "YN-T-0003" {
            s["trainer"] = json!("YN-T-9999");
        }
    }
    let rejected = call(
        &host,
        "POST",
        "/api/v1/classes",
        Some(&inst),
        &bad.to_string(),
        &[],
    )
    .await;
    assert_eq!(rejected.status, 201, "{}", rejected.text());
    let r = rejected.json().unwrap();
    assert_eq!(r["status"], "rejected");
    let blocking = r["decision"]["blocking_rules"].as_array().unwrap();
    assert!(
        blocking.contains(&json!("CO-SIZE")) && blocking.contains(&json!("CO-TRAINER")),
        "{blocking:?}"
    );

    let got = call(
        &host,
        "GET",
        &format!("/api/v1/classes/{id}"),
        Some(&inst),
        "",
        &[],
    )
    .await;
    assert_eq!(got.status, 200);
    let g = got.json().unwrap();
    assert_eq!(g["id"], id.as_str());
    let first = &application(40, 0)["roster"][0];
    let id_number = first["id_number"].as_str().unwrap();
    assert!(!got.text().contains(id_number), "the ID number is masked");
    assert!(
        g["application"]["roster"][0]["id_number"]
            .as_str()
            .unwrap()
            .contains("********")
    );

    let admin = token(Role::BureauAdmin, None);
    let list = call(
        &host,
        "GET",
        "/api/v1/classes?limit=1",
        Some(&admin),
        "",
        &[],
    )
    .await;
    let l = list.json().unwrap();
    assert_eq!(l["items"].as_array().unwrap().len(), 1);
    let cursor = l["next_cursor"].as_str().unwrap();
    let next = call(
        &host,
        "GET",
        &format!("/api/v1/classes?limit=1&cursor={cursor}"),
        Some(&admin),
        "",
        &[],
    )
    .await;
    assert_eq!(next.json().unwrap()["items"].as_array().unwrap().len(), 1);
    eprintln!(
        "redis: seed, file two classes, read back, list two pages: {:?}",
        began.elapsed()
    );

    // Redis ignores the store label: every key carries the product's own
    // prefix, and counters are INCRBY's decimal strings.
    let data = dump(&redis);
    assert!(!data.is_empty());
    for key in data.keys() {
        assert!(
            key.starts_with(store::keys::PREFIX),
            "{key:?} lacks the {:?} prefix",
            store::keys::PREFIX
        );
    }
    let audit_next = data
        .get(&store::keys::audit_next())
        .expect("the audit counter exists");
    let n: i64 = std::str::from_utf8(audit_next).unwrap().parse().unwrap();
    assert!(n >= 2, "audit counter {n}");
}

#[tokio::test(flavor = "multi_thread")]
async fn on_redis_records_the_three_checks_in_order_and_refuses_moves_out_of_order() {
    let Some((_redis, host)) = start("redis three checks") else {
        return;
    };
    seed(&host).await;
    let filed = call(
        &host,
        "POST",
        "/api/v1/classes",
        Some(&token(Role::Institution, None)),
        &application(10, 0).to_string(),
        &[],
    )
    .await;
    assert_eq!(filed.status, 201, "{}", filed.text());
    let id = filed.json().unwrap()["id"].as_str().unwrap().to_string();
    let officer = token(Role::DistrictOfficer, None);
    let path = format!("/api/v1/classes/{id}/checks");
    let at = chrono::Utc::now().to_rfc3339();
    let body = |kind: &str| {
        json!({"kind": kind, "officer": "李科员", "at": at, "result": "passed", "notes": "现场核验"}).to_string()
    };
    let early = call(
        &host,
        "POST",
        &path,
        Some(&officer),
        &body("post_assessment"),
        &[],
    )
    .await;
    assert_eq!(early.status, 409);
    assert_eq!(
        early.header("content-type"),
        Some("application/problem+json")
    );
    assert_eq!(early.json().unwrap()["state"], "approved");
    for (kind, want) in [
        ("pre_opening", "in_training"),
        ("in_training", "completed"),
        ("post_assessment", "assessed"),
    ] {
        let r = call(&host, "POST", &path, Some(&officer), &body(kind), &[]).await;
        assert_eq!(
            (
                r.status,
                r.json().unwrap()["status"].as_str().map(str::to_string)
            ),
            (200, Some(want.to_string())),
            "{kind}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn on_redis_bad_requests_get_problem_details_and_leave_the_store_unchanged() {
    let Some((redis, host)) = start("redis problem details") else {
        return;
    };
    seed(&host).await;
    let inst = token(Role::Institution, None);
    let other = token(Role::Institution, Some(policy::fixtures::OTHER_INSTITUTION));
    let mut bad_id = application(20, 0);
    bad_id["roster"][16]["id_number"] = json!("130402198207290622");
    let mut unknown = application(20, 0);
    unknown["surprise"] = json!(true);
    let huge = format!(
        "{{\"title\": \"{}\"}}",
        "x".repeat(web::MAX_BODY_BYTES + 10)
    );
    let forged = mint(
        &Claims {
            sub: "x".into(),
            role: Role::BureauAdmin,
            institution: None,
            district: None,
            person: None,
            iat: 0,
            nbf: None,
            exp: i64::MAX / 2,
        },
        "not-the-secret-0123456789abcdefghijklmnopq",
    );
    let cases: Vec<(&str, Option<&str>, String, u16, &str)> = vec![
        (
            "no token",
            None,
            application(5, 0).to_string(),
            401,
            "unauthenticated",
        ),
        (
            "forged token",
            Some(&forged),
            application(5, 0).to_string(),
            401,
            "unauthenticated",
        ),
        (
            "another institution's application",
            Some(&other),
            application(5, 0).to_string(),
            403,
            "forbidden",
        ),
        (
            "broken JSON",
            Some(&inst),
            "{\"institution\":".into(),
            400,
            "malformed_json",
        ),
        (
            "unknown field",
            Some(&inst),
            unknown.to_string(),
            422,
            "validation_failed",
        ),
        (
            "invalid ID on roster line 17",
            Some(&inst),
            bad_id.to_string(),
            422,
            "validation_failed",
        ),
        ("body over 1 MiB", Some(&inst), huge, 413, "body_too_large"),
    ];
    for (case, tok, body, status, code) in cases {
        let before = dump(&redis);
        let r = call(
            &host,
            "POST",
            "/api/v1/classes",
            tok,
            &body,
            &[("idempotency-key", "e2e-bad-1")],
        )
        .await;
        assert_eq!(r.status, status, "{case}: {}", r.text());
        assert_eq!(
            r.header("content-type"),
            Some("application/problem+json"),
            "{case}"
        );
        let p = r.json().unwrap();
        assert_eq!(p["code"], code, "{case}");
        assert!(
            !p["title"].as_str().unwrap().is_empty() && !p["detail"].as_str().unwrap().is_empty(),
            "{case}"
        );
        if case.contains("line 17") {
            assert_eq!(p["errors"][0]["field"], "roster[16].id_number");
            assert!(!r.text().contains("130402198207290622"));
        }
        assert_eq!(dump(&redis), before, "{case} changed the store");
    }
    assert!(
        !host.logs().contains("130402198207290622"),
        "the logs repeat an ID number"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn on_redis_a_filed_class_survives_a_host_restart() {
    let Some((_redis, host)) = start("redis restart") else {
        return;
    };
    seed(&host).await;
    let filed = call(
        &host,
        "POST",
        "/api/v1/classes",
        Some(&token(Role::Institution, None)),
        &application(12, 0).to_string(),
        &[],
    )
    .await;
    assert_eq!(filed.status, 201, "{}", filed.text());
    let id = filed.json().unwrap()["id"].as_str().unwrap().to_string();
    // A new host (a new replica) on the same, still running, Redis server.
    let host = host.restart().unwrap();
    let got = call(
        &host,
        "GET",
        &format!("/api/v1/classes/{id}"),
        Some(&token(Role::DistrictOfficer, None)),
        "",
        &[],
    )
    .await;
    assert_eq!(got.status, 200, "{}", got.text());
    assert_eq!(got.json().unwrap()["trainees"], 12);
}

#[tokio::test(flavor = "multi_thread")]
async fn on_redis_the_same_application_filed_by_twelve_concurrent_requests_makes_one_class() {
    let Some((_redis, host)) = start("redis twelve concurrent filings") else {
        return;
    };
    seed(&host).await;
    let host = std::sync::Arc::new(host);
    let body = application(30, 0).to_string();
    let began = Instant::now();
    let tasks: Vec<_> = (0..12)
        .map(|i| {
            let (host, body) = (host.clone(), body.clone());
            tokio::spawn(async move {
                let key = format!("race-{i}");
                let extra: Vec<(&str, &str)> = if i % 3 == 0 {
                    vec![]
                } else {
                    vec![("idempotency-key", key.as_str())]
                };
                let r = call(
                    &host,
                    "POST",
                    "/api/v1/classes",
                    Some(&token(Role::Institution, None)),
                    &body,
                    &extra,
                )
                .await;
                (
                    r.status,
                    r.json()
                        .map(|v| v["id"].as_str().unwrap_or_default().to_string())
                        .unwrap_or_default(),
                )
            })
        })
        .collect();
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    eprintln!("redis: twelve concurrent filings: {:?}", began.elapsed());
    assert_eq!(
        results.iter().filter(|(s, _)| *s == 201).count(),
        1,
        "{results:?}\n{}",
        host.logs()
    );
    assert!(
        results
            .iter()
            .all(|(s, id)| (*s == 200 || *s == 201) && id == &results[0].1),
        "{results:?}"
    );
    let list = call(
        &host,
        "GET",
        "/api/v1/classes",
        Some(&token(Role::BureauAdmin, None)),
        "",
        &[],
    )
    .await;
    assert_eq!(list.json().unwrap()["items"].as_array().unwrap().len(), 1);
}

/// A host of the harness fixtures (`kv-probe`) on a Redis server.
fn probe_host(redis: &RedisServer, semantics: RedisSemantics) -> Host {
    Host::start(
        HostConfig::fixtures_only(redis.dir().join("unused.db")).redis_with(redis.url(), semantics),
    )
    .expect("host starts")
}

#[tokio::test(flavor = "multi_thread")]
async fn on_redis_fifty_concurrent_cas_increments_count_exactly_fifty() {
    let Some(redis) = RedisServer::start_or_skip("redis fifty cas increments") else {
        return;
    };
    let host = probe_host(&redis, RedisSemantics::Intended);
    let client = Client::new();
    // Unlike SQLite, Redis watches an absent key too: the race may start
    // before the key exists (and the probe's 8-byte counter is not INCRBY's
    // decimal, so it is not created with `increment(key, 0)` here).
    let url = host.url("/probe/cas-incr?key=hits");
    let began = Instant::now();
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let client = client.clone();
            let url = url.clone();
            tokio::spawn(async move { client.get(&url).await })
        })
        .collect();
    let mut seen = Vec::new();
    let mut retries = 0;
    for t in tasks {
        let reply = t.await.unwrap().unwrap();
        assert_eq!(reply.status, 200, "{}", reply.text());
        seen.push(reply.text().parse::<i64>().unwrap());
        retries += reply
            .header("x-cas-retries")
            .and_then(|r| r.parse::<u32>().ok())
            .unwrap();
    }
    eprintln!(
        "redis: 50 concurrent increments needed {retries} compare-and-swap retries, {:?}",
        began.elapsed()
    );
    seen.sort();
    assert_eq!(
        seen,
        (1..=50).collect::<Vec<_>>(),
        "each increment saw its own value"
    );
    let stored = dump(&redis).remove("hits").expect("the counter exists");
    assert_eq!(stored, 50i64.to_le_bytes().to_vec());
}

#[tokio::test(flavor = "multi_thread")]
async fn on_redis_compare_and_swap_is_exclusive_even_before_the_key_exists() {
    let Some(redis) = RedisServer::start_or_skip("redis cas race") else {
        return;
    };
    let host = probe_host(&redis, RedisSemantics::Intended);
    let client = Client::new();
    // SQLite lets both racing creators win; Redis's WATCH sees the creation.
    for _ in 0..2 {
        let reply = client
            .get(&host.url("/probe/cas-race?key=fresh"))
            .await
            .unwrap();
        assert_eq!(reply.text(), "first=swapped second=cas-failed value=first");
    }
    // INCRBY keeps counters as decimal strings; the store label is ignored.
    let counter = client.get(&host.url("/probe/counter?key=n")).await.unwrap();
    assert_eq!(counter.text(), "0");
    assert_eq!(dump(&redis).get("n"), Some(&b"0".to_vec()));
    let many = client
        .get(&host.url("/probe/get-many?keys=fresh,missing,n"))
        .await
        .unwrap();
    assert_eq!(many.text(), "fresh=first\nmissing=<none>\nn=0");
}

#[tokio::test(flavor = "multi_thread")]
async fn spin_4_0_2_redis_as_released_fails_get_many_of_two_keys_and_reports_every_swap_as_failed()
{
    let Some(redis) = RedisServer::start_or_skip("redis spin 4.0.2 defects") else {
        return;
    };
    let host = probe_host(&redis, RedisSemantics::Spin402);
    let client = Client::new();
    // `get-many` sends `KEYS a b`, which Redis refuses.
    let many = client
        .get(&host.url("/probe/get-many?keys=a,b"))
        .await
        .unwrap();
    assert_eq!(many.status, 500, "{}", many.text());
    assert!(
        many.text().contains("wrong number of arguments"),
        "{}",
        many.text()
    );
    // `swap` sends `UNWATCH fresh`, which Redis refuses, and Spin reports a
    // failed swap even though the first one's SET was applied.
    let race = client
        .get(&host.url("/probe/cas-race?key=fresh"))
        .await
        .unwrap();
    assert_eq!(
        race.text(),
        "first=cas-failed second=cas-failed value=first"
    );
}

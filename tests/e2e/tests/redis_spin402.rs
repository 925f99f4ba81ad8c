//! The product on Redis as Spin 4.0.2 really talks to it: `get-many` sends
//! `KEYS` (fails for two keys or more) and every compare-and-swap reports
//! failure, also when applied (see `e2e::kv_redis::RedisSemantics::Spin402`).
//! The platform adapter falls back to key-by-key reads and checks a reported
//! swap failure by reading the key back, so filing, racing and checks still
//! give the same results as on SQLite.
//!
//! Without `redis-server` installed these tests fail when `CI=true` and are
//! skipped with a notice otherwise.

use e2e::kv_redis::RedisSemantics;
use e2e::redis_server::RedisServer;
use e2e::{Client, Host, HostConfig, Reply};
use serde_json::{Value, json};
use web::auth::{Claims, Role, mint};

const JWT: &str = "e2e-jwt-secret-0123456789abcdefghijklmnop";

fn start(test: &str) -> Option<(RedisServer, Host)> {
    let redis = RedisServer::start_or_skip(test)?;
    let config = HostConfig::product_only(redis.dir().join("unused.db"))
        .redis_with(redis.url(), RedisSemantics::Spin402)
        .variable("jwt_secret", JWT)
        .variable("pii_key", "e2e-pii-key-0123456789abcdefghijklmnopqrs")
        .variable("pii_hmac_key", "e2e-hmac-key-0123456789abcdefghijklmnopqr");
    let host = Host::start(config).expect("host starts");
    Some((redis, host))
}

fn token(role: Role) -> String {
    let now = chrono::Utc::now().timestamp();
    let claims = Claims {
        sub: format!("{}-e2e", role.id()),
        role,
        institution: (role == Role::Institution)
            .then(|| policy::ids::CreditCode::parse(policy::fixtures::INSTITUTION).unwrap()),
        district: (role == Role::DistrictOfficer)
            .then(|| policy::ids::AreaCode::parse("530102").unwrap()),
        person: None,
        iat: now,
        nbf: None,
        exp: now + 3600,
    };
    mint(&claims, JWT)
}

async fn call(
    host: &Host,
    method: &str,
    path: &str,
    tok: &str,
    body: &str,
    extra: &[(&str, &str)],
) -> Reply {
    let auth = format!("Bearer {tok}");
    let mut headers: Vec<(&str, &str)> = vec![
        ("content-type", "application/json"),
        ("authorization", &auth),
    ];
    headers.extend_from_slice(extra);
    Client::new()
        .send(method, &host.url(path), &headers, body.to_string())
        .await
        .expect("request completes")
}

fn application(n: usize) -> Value {
    let today = policy::ids::today_cst();
    let (app, _) =
        policy::fixtures::valid_class_from(today + chrono::Duration::days(21), today, n, 0);
    serde_json::to_value(app).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_product_files_races_and_checks_correctly_on_spin_4_0_2_redis() {
    let Some((_redis, host)) =
        start("the_product_files_races_and_checks_correctly_on_spin_4_0_2_redis")
    else {
        return;
    };
    let admin = token(Role::BureauAdmin);
    let mut puts: Vec<(String, Value)> = vec![
        (
            format!(
                "/api/v1/registry/institutions/{}",
                policy::fixtures::INSTITUTION
            ),
            serde_json::to_value(policy::fixtures::institution()).unwrap(),
        ),
        (
            "/api/v1/registry/textbooks/9787111213826".into(),
            serde_json::to_value(policy::fixtures::textbook()).unwrap(),
        ),
    ];
    for n in 1..=2 {
        let no = format!("YN-T-{n:04}");
        puts.push((
            format!("/api/v1/registry/trainers/{no}"),
            json!({"registration_no": no, "name": "讲师", "status": "registered"}),
        ));
    }
    for (path, body) in puts {
        let r = call(&host, "PUT", &path, &admin, &body.to_string(), &[]).await;
        assert_eq!(r.status, 201, "{path}: {}", r.text());
    }
    // Validation reads its context with get-many of many keys.
    let v = call(
        &host,
        "POST",
        "/api/v1/classes/validate",
        &token(Role::Institution),
        &application(30).to_string(),
        &[],
    )
    .await;
    assert_eq!(v.status, 200, "{}", v.text());
    assert_eq!(v.json().unwrap()["decision"]["outcome"], "approved");
    // Eight concurrent filings of one application: one class.
    let host = std::sync::Arc::new(host);
    let body = application(30).to_string();
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let (host, body) = (host.clone(), body.clone());
            tokio::spawn(async move {
                let key = format!("k-{i}");
                let r = call(
                    &host,
                    "POST",
                    "/api/v1/classes",
                    &token(Role::Institution),
                    &body,
                    &[("idempotency-key", &key)],
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
    assert_eq!(
        results.iter().filter(|(s, _)| *s == 201).count(),
        1,
        "{results:?}"
    );
    assert!(
        results.iter().all(|(_, id)| id == &results[0].1),
        "{results:?}"
    );
    let id = results[0].1.clone();
    // Checks move the class along (compare-and-swap on an existing record).
    let path = format!("/api/v1/classes/{id}/checks");
    for (kind, want) in [("pre_opening", "in_training"), ("in_training", "completed")] {
        let body = json!({"kind": kind, "officer": "李科员", "at": chrono::Utc::now().to_rfc3339(), "result": "passed"});
        let r = call(
            &host,
            "POST",
            &path,
            &token(Role::DistrictOfficer),
            &body.to_string(),
            &[],
        )
        .await;
        assert_eq!(
            (
                r.status,
                r.json().unwrap()["status"].as_str().map(str::to_string)
            ),
            (200, Some(want.to_string())),
            "{kind}"
        );
    }
    let list = call(&host, "GET", "/api/v1/classes", &admin, "", &[]).await;
    assert_eq!(list.json().unwrap()["items"].as_array().unwrap().len(), 1);
    let verify = call(&host, "GET", "/api/v1/audit/verify", &admin, "", &[]).await;
    assert_eq!(verify.json().unwrap()["intact"], true, "{}", verify.text());
}

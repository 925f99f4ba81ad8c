//! The product on Redis as Spin 4.0.2 really talks to it: `get-many` sends
//! `KEYS` (fails for two keys or more) and every compare-and-swap reports
//! failure, also when applied (see `e2e::kv_redis::RedisSemantics::Spin402`).
//! The platform adapter falls back to key-by-key reads and checks a reported
//! swap failure by reading the key back, so filing, racing and checks still
//! give the same results as on SQLite.
//!
//! Without `redis-server` installed these tests fail when `CI=true` and are
//! skipped with a notice otherwise.

use crate::common::{call, token};
use e2e::kv_redis::RedisSemantics;
use e2e::redis_server::RedisServer;
use e2e::{Host, HostConfig};
use web::auth::Role;

fn start(test: &str) -> Option<(RedisServer, Host)> {
    let redis = RedisServer::start_or_skip(test)?;
    let config = crate::common::with_secrets(
        HostConfig::product_only(redis.dir().join("unused.db"))
            .redis_with(redis.url(), RedisSemantics::Spin402),
    );
    let host = Host::start(config).expect("host starts");
    Some((redis, host))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_product_files_races_and_checks_correctly_on_spin_4_0_2_redis() {
    let Some((_redis, host)) =
        start("the_product_files_races_and_checks_correctly_on_spin_4_0_2_redis")
    else {
        return;
    };
    let admin = token(Role::BureauAdmin, None);
    crate::common::seed(&host).await;
    // Validation reads its context with get-many of many keys.
    let v = call(
        &host,
        "POST",
        "/api/v1/classes/validate",
        Some(&token(Role::Institution, None)),
        &crate::common::application(30, 0).to_string(),
        &[],
    )
    .await;
    assert_eq!(v.status, 200, "{}", v.text());
    assert_eq!(v.json().unwrap()["decision"]["outcome"], "approved");
    // Eight concurrent filings of one application: one class.
    let host = std::sync::Arc::new(host);
    let id = crate::common::scenarios::file_at_once(&host, 8, |i| Some(format!("k-{i}"))).await;
    // Checks move the class along (compare-and-swap on an existing record),
    // each on its day of the class's calendar.
    let app: policy::class_opening::ClassApplication =
        serde_json::from_value(crate::common::application(30, 0)).unwrap();
    for (kind, moment) in [
        ("pre_opening", crate::common::Moment::Eve),
        ("in_training", crate::common::Moment::FirstDay),
    ] {
        let offset = crate::common::move_clock(&host, &app, moment);
        let r = crate::common::record_check(&host, &id, kind, "officer-1", offset).await;
        assert_eq!(
            (
                r.status,
                r.json().unwrap()["status"].as_str().map(str::to_string)
            ),
            (200, Some("in_training".to_string())),
            "{kind}: {}",
            r.text()
        );
    }
    host.set_clock_offset_secs(0);
    let list = call(&host, "GET", "/api/v1/classes", Some(&admin), "", &[]).await;
    assert_eq!(list.json().unwrap()["items"].as_array().unwrap().len(), 1);
    let step = call(&host, "POST", "/api/v1/audit/integrate", Some(&admin), "", &[]).await;
    assert_eq!(step.status, 200, "{}", step.text());
    assert!(step.json().unwrap()["size"].as_u64().unwrap() > 0);
    let verify = call(&host, "GET", "/api/v1/audit/verify", Some(&admin), "", &[]).await;
    assert_eq!(verify.json().unwrap()["intact"], true, "{}", verify.text());
}

//! The class-opening scenario of `class_opening.rs` and the harness's
//! concurrent compare-and-swap test, with key-value data on a real Redis
//! server (a private `redis-server` per test, see `e2e::redis_server`), as a
//! runtime config `[key_value_store.default] type = "redis"` gives on Spin.
//! Same requests, same results as on SQLite.
//!
//! Without `redis-server` installed these tests fail when `CI=true` and are
//! skipped with a notice otherwise.

use crate::common::scenarios;
use e2e::kv_redis::{RedisConfig, RedisKv, RedisSemantics};
use e2e::redis_server::RedisServer;
use e2e::{Client, Host, HostConfig};
use std::collections::BTreeMap;
use std::time::Instant;

/// The product on Redis; the SQLite path is unused.
fn config(redis: &RedisServer) -> HostConfig {
    crate::common::with_secrets(
        HostConfig::product_only(redis.dir().join("unused.db")).redis(redis.url()),
    )
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
    scenarios::files_a_valid_and_an_invalid_application_and_reads_them_back(&host).await;
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
    scenarios::records_the_three_checks_in_order_and_refuses_moves_out_of_order(&host).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn on_redis_bad_requests_get_problem_details_and_leave_the_store_unchanged() {
    let Some((redis, host)) = start("redis problem details") else {
        return;
    };
    scenarios::bad_requests_get_problem_details_and_leave_the_store_unchanged(&host, || {
        dump(&redis)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn on_redis_the_bureau_raises_co_hours_through_the_api_and_each_decision_names_its_version()
{
    let Some((redis, host)) = start("redis policy change") else {
        return;
    };
    scenarios::the_bureau_raises_co_hours_through_the_api_and_each_decision_names_its_version(
        &host,
        || dump(&redis),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn on_redis_a_filed_class_survives_a_host_restart() {
    let Some((_redis, host)) = start("redis restart") else {
        return;
    };
    // The new host is a new replica on the same, still running, Redis server.
    scenarios::a_filed_class_survives_a_host_restart(host).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn on_redis_the_same_application_filed_by_twelve_concurrent_requests_makes_one_class() {
    let Some((_redis, host)) = start("redis twelve concurrent filings") else {
        return;
    };
    let began = Instant::now();
    scenarios::the_same_application_filed_by_twelve_concurrent_requests_makes_one_class(
        std::sync::Arc::new(host),
    )
    .await;
    eprintln!("redis: twelve concurrent filings: {:?}", began.elapsed());
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
    // Unlike SQLite, Redis watches an absent key too: the race may start
    // before the key exists (and the probe's 8-byte counter is not INCRBY's
    // decimal, so it is not created with `increment(key, 0)` here).
    let began = Instant::now();
    let retries = crate::common::fifty_cas_increments(&host, "hits").await;
    eprintln!(
        "redis: 50 concurrent increments needed {retries} compare-and-swap retries, {:?}",
        began.elapsed()
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

#[tokio::test(flavor = "multi_thread")]
async fn on_redis_a_run_is_secret_until_its_calls_close_and_a_denial_holds_settlement_until_rectified()
 {
    let Some((_redis, host)) = start("redis spot-check run") else {
        return;
    };
    crate::spot_checks::run_secrecy_denial_and_settlement(&host).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn on_redis_a_run_takes_no_public_value_before_its_freeze_is_one_per_window_and_samples_a_class_every_day_it_trains()
 {
    let Some((_redis, host)) = start("redis run protocol") else {
        return;
    };
    crate::spot_checks::run_protocol(&host).await;
}

mod races {
    //! Concurrent filings of two different applications (CO-CLASH, CO-ROSTER,
    //! CO-SHARED-PHONE, CO-ENTRY), on Redis.

    use super::start;
    use crate::common::races::{self, ROUNDS, Rule};
    use std::sync::Arc;
    use std::time::Instant;

    async fn run(rule: Rule, overlapping: bool) {
        let Some((_redis, host)) = start("redis races") else {
            return;
        };
        let began = Instant::now();
        races::concurrent_filings(Arc::new(host), rule, overlapping, ROUNDS).await;
        eprintln!(
            "redis: {ROUNDS} races {rule:?} overlapping {overlapping}: {:?}",
            began.elapsed()
        );
    }

    async fn entry(earlier: u32) {
        let Some((_redis, host)) = start("redis entry-level races") else {
            return;
        };
        let began = Instant::now();
        races::concurrent_entry_level_filings(Arc::new(host), earlier, ROUNDS).await;
        eprintln!(
            "redis: {ROUNDS} entry-level races after {earlier}: {:?}",
            began.elapsed()
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn on_redis_co_clash_of_twenty_concurrent_filings_sharing_a_trainer_at_overlapping_times_one_is_approved()
     {
        run(Rule::Clash, true).await;
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn on_redis_co_clash_twenty_concurrent_filings_sharing_a_trainer_on_following_days_are_all_approved()
     {
        run(Rule::Clash, false).await;
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn on_redis_co_roster_of_twenty_concurrent_filings_sharing_a_trainee_on_overlapping_days_one_is_approved()
     {
        run(Rule::Roster, true).await;
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn on_redis_co_roster_twenty_concurrent_filings_sharing_a_trainee_on_following_days_are_all_approved()
     {
        run(Rule::Roster, false).await;
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn on_redis_co_shared_phone_of_twenty_concurrent_filings_sharing_a_mobile_exactly_one_carries_the_warning()
     {
        run(Rule::SharedPhone, true).await;
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn on_redis_co_shared_phone_twenty_concurrent_filings_of_one_trainee_with_one_mobile_carry_no_warning()
     {
        run(Rule::SharedPhone, false).await;
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn on_redis_co_entry_two_concurrent_entry_level_classes_after_three_exactly_one_is_over_the_share()
     {
        entry(3).await;
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn on_redis_co_entry_two_concurrent_entry_level_classes_after_five_stay_within_the_share()
    {
        entry(5).await;
    }
}

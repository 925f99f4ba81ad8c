//! Issue 12 on the real components: 200 concurrent issue requests for one
//! trainee, each with its own Idempotency-Key, and a redeem fired on the first
//! answer, 50 rounds, on SQLite and on Redis (scenario in
//! `common/voucher_races.rs`). The wall time of the rounds is printed.

use crate::common::voucher_races::{
    RaceSummary, concurrent_issues_with_an_early_redeem_write_each_voucher_once,
};
use e2e::redis_server::RedisServer;
use e2e::{Host, HostConfig};
use std::sync::Arc;

const ROUNDS: usize = 50;
const REQUESTS: usize = 200;

/// Rounds to run: [`ROUNDS`], or `E2E_RACE_ROUNDS` (at most 60, one trainee
/// a round in one class) for a quicker look while developing.
fn rounds() -> usize {
    std::env::var("E2E_RACE_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(ROUNDS, |n: usize| n.clamp(1, 60))
}

fn report(backend: &str, s: &RaceSummary) {
    eprintln!(
        "{backend}: {} rounds of {REQUESTS} concurrent issues + an early redeem in {:?} ({:?} a round); {} answers 503 voucher_issue_pending",
        s.rounds,
        s.elapsed,
        s.elapsed / s.rounds.max(1) as u32,
        s.pending
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn on_sqlite_two_hundred_concurrent_issues_with_an_early_redeem_write_each_voucher_once_in_fifty_rounds()
 {
    let dir = tempfile::tempdir().unwrap();
    let host = Host::start(crate::common::product(dir.path().join("kv.db"))).expect("host starts");
    let s = concurrent_issues_with_an_early_redeem_write_each_voucher_once(
        Arc::new(host),
        rounds(),
        REQUESTS,
    )
    .await;
    report("sqlite", &s);
}

#[tokio::test(flavor = "multi_thread")]
async fn on_redis_two_hundred_concurrent_issues_with_an_early_redeem_write_each_voucher_once_in_fifty_rounds()
 {
    let Some(redis) = RedisServer::start_or_skip("redis voucher races") else {
        return;
    };
    let host = Host::start(crate::common::with_secrets(
        HostConfig::product_only(redis.dir().join("unused.db")).redis(redis.url()),
    ))
    .expect("host starts");
    let s = concurrent_issues_with_an_early_redeem_write_each_voucher_once(
        Arc::new(host),
        rounds(),
        REQUESTS,
    )
    .await;
    report("redis", &s);
}

//! The p2 build (spin-sdk 5, `wasi:http/incoming-handler@0.2`, for Spin 3.x
//! such as containerd-shim-spin v0.24) through the same host: a
//! representative part of the suite, not all of it (the whole suite on p2:
//! `E2E_BUILD=p2 cargo test -p e2e`). What runs here on p2:
//!
//! - the components: both sets under 2 MiB each; the p2 set exports the
//!   WASIp2 handler and imports only what Spin 3.x offers;
//! - class filing, read-back and listing; the three checks in order; bad
//!   requests (413, malformed JSON, …) leaving the store unchanged; twelve
//!   concurrent filings of one application; a CO-CLASH filing race;
//! - vouchers: issue, activate, redeem, settle; WeChat login over outbound HTTP;
//! - a spot-check run (secrecy, denial, settlement);
//! - on Redis: filing and read-back, and the voucher race (issue/redeem), in
//!   fewer rounds than `voucher_races.rs`.

use crate::common::{races, scenarios, voucher_races};
use e2e::redis_server::RedisServer;
use e2e::wasm_build::{self, Build};
use e2e::{Host, HostConfig};
use std::path::Path;
use std::sync::Arc;
use tempfile::TempDir;

/// The product's p2 build on a SQLite file.
fn start() -> (TempDir, Host) {
    let dir = tempfile::tempdir().unwrap();
    let config = crate::common::product(dir.path().join("sqlite_key_value.db")).p2();
    let host = Host::start(config).expect("host starts");
    (dir, host)
}

/// The product's p2 build on a private Redis server, or `None` where
/// redis-server is missing outside CI.
fn start_redis(test: &str) -> Option<(RedisServer, Host)> {
    let redis = RedisServer::start_or_skip(test)?;
    let config = crate::common::with_secrets(
        HostConfig::product_only(redis.dir().join("unused.db")).redis(redis.url()),
    )
    .p2();
    let host = Host::start(config).expect("host starts");
    Some((redis, host))
}

const COMPONENTS: [&str; 6] = [
    "class_opening",
    "policy_admin",
    "audit",
    "vouchers",
    "spot_checks",
    "hello",
];

#[test]
fn both_sets_stay_under_2_mib_and_the_p2_set_exports_the_wasip2_handler() {
    let dir = tempfile::tempdir().unwrap();
    // Host::start builds the components: both sets, with the fixtures.
    for build in [Build::P3, Build::P2] {
        let mut config = crate::common::with_secrets(HostConfig::new(dir.path().join("kv.db")));
        config.wasi = build;
        drop(Host::start(config).unwrap());
    }
    let mut cfg = wasmtime::Config::new();
    cfg.wasm_component_model_async(true);
    let engine = wasmtime::Engine::new(&cfg).unwrap();
    for build in [Build::P3, Build::P2] {
        let release = build.target_dir().join("wasm32-wasip2/release");
        let mut total = 0;
        for name in COMPONENTS {
            let wasm = release.join(format!("{name}.wasm"));
            let size = std::fs::metadata(&wasm).unwrap().len();
            eprintln!("{build:?} {name}.wasm: {size} bytes");
            assert!(size < 2 * 1024 * 1024, "{} is {size} bytes", wasm.display());
            total += size;
            if build == Build::P2 {
                p2_component_is_for_spin_3(&engine, &wasm);
            }
        }
        eprintln!("{build:?} set: {total} bytes");
    }
}

/// Exports `wasi:http/incoming-handler@0.2.*`, imports only interfaces Spin 3.x hosts.
fn p2_component_is_for_spin_3(engine: &wasmtime::Engine, wasm: &Path) {
    let component = wasmtime::component::Component::from_file(engine, wasm).unwrap();
    let ty = component.component_type();
    let exports: Vec<String> = ty.exports(engine).map(|(n, _)| n.to_string()).collect();
    assert!(
        exports
            .iter()
            .any(|e| e.starts_with("wasi:http/incoming-handler@0.2.")),
        "{}: {exports:?}",
        wasm.display()
    );
    let offered = [
        "wasi:cli/",
        "wasi:clocks/",
        "wasi:io/",
        "wasi:random/",
        "wasi:filesystem/",
        "wasi:sockets/",
        "wasi:http/types@0.2.",
        "wasi:http/outgoing-handler@0.2.",
        "fermyon:spin/variables@2.0.0",
        "wasi:keyvalue/store@0.2.0-draft2",
        "wasi:keyvalue/atomics@0.2.0-draft2",
        "wasi:keyvalue/batch@0.2.0-draft2",
    ];
    for (name, _) in ty.imports(engine) {
        assert!(
            !name.contains("@0.3."),
            "{}: imports {name}, a WASIp3 interface",
            wasm.display()
        );
        assert!(
            offered.iter().any(|o| name.starts_with(o)),
            "{}: import {name} is not offered by Spin 3.x",
            wasm.display()
        );
    }
}

#[test]
fn spin_p2_toml_is_spin_toml_with_the_p2_build() {
    let root = wasm_build::repo_root();
    let p3 = std::fs::read_to_string(root.join("spin.toml")).unwrap();
    let p2 = std::fs::read_to_string(root.join("spin.p2.toml")).unwrap();
    let expected = p3
        .replace(
            "target/wasm32-wasip2/release/",
            "target/p2/wasm32-wasip2/release/",
        )
        .replace(
            "cargo build --target wasm32-wasip2 --release -p",
            "cargo build --target wasm32-wasip2 --release --target-dir target/p2 --no-default-features --features p2 -p",
        );
    let body: String = p2
        .lines()
        .skip_while(|l| l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(
        body, expected,
        "spin.p2.toml differs from spin.toml beyond the build"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn p2_files_a_valid_and_an_invalid_application_and_reads_them_back() {
    let (_dir, host) = start();
    scenarios::files_a_valid_and_an_invalid_application_and_reads_them_back(&host).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn p2_records_the_three_checks_in_order_and_refuses_moves_out_of_order() {
    let (_dir, host) = start();
    scenarios::records_the_three_checks_in_order_and_refuses_moves_out_of_order(&host).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn p2_bad_requests_get_problem_details_and_leave_the_store_unchanged() {
    let (dir, host) = start();
    let db = dir.path().join("sqlite_key_value.db");
    scenarios::bad_requests_get_problem_details_and_leave_the_store_unchanged(&host, || {
        crate::common::dump(&db)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn p2_the_same_application_filed_by_twelve_concurrent_requests_makes_one_class() {
    let (_dir, host) = start();
    scenarios::the_same_application_filed_by_twelve_concurrent_requests_makes_one_class(Arc::new(
        host,
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn p2_co_clash_of_concurrent_filings_sharing_a_trainer_at_overlapping_times_one_is_approved()
{
    let (_dir, host) = start();
    races::concurrent_filings(Arc::new(host), races::Rule::Clash, true, 5).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn p2_issue_redeem_and_settle_vouchers() {
    crate::vouchers::issue_redeem_and_settle(Build::P2).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn p2_wechat_login_over_outbound_http() {
    crate::vouchers::wechat_login(Build::P2).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn p2_a_spot_check_run_is_secret_until_its_calls_close_and_a_denial_holds_settlement() {
    let (_dir, host) = start();
    crate::spot_checks::run_secrecy_denial_and_settlement(&host).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn p2_on_redis_files_a_valid_and_an_invalid_application_and_reads_them_back() {
    let Some((_redis, host)) = start_redis("p2 redis files and reads back") else {
        return;
    };
    scenarios::files_a_valid_and_an_invalid_application_and_reads_them_back(&host).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn p2_on_sqlite_and_redis_concurrent_issues_with_an_early_redeem_write_each_voucher_once() {
    let (_dir, host) = start();
    let s = voucher_races::concurrent_issues_with_an_early_redeem_write_each_voucher_once(
        Arc::new(host),
        5,
        200,
    )
    .await;
    eprintln!("p2 sqlite: {} rounds in {:?}", s.rounds, s.elapsed);
    let Some((_redis, host)) = start_redis("p2 redis voucher races") else {
        return;
    };
    let s = voucher_races::concurrent_issues_with_an_early_redeem_write_each_voucher_once(
        Arc::new(host),
        5,
        200,
    )
    .await;
    eprintln!("p2 redis: {} rounds in {:?}", s.rounds, s.elapsed);
}

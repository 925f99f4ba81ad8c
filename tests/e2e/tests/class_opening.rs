//! 开班审批 end to end: the real `class_opening.wasm` in the project's Spin
//! test host, over HTTP, with its key-value data in a SQLite file.

use crate::common::{application, call, dump, scenarios, seed, token};
use e2e::{Client, Host, HostConfig};
use std::path::{Path, PathBuf};
use tempfile::TempDir;
use web::auth::Role;

fn config(db: PathBuf) -> HostConfig {
    crate::common::product(db)
}

fn start() -> (TempDir, Host) {
    let dir = tempfile::tempdir().unwrap();
    let host = Host::start(config(dir.path().join("sqlite_key_value.db"))).expect("host starts");
    (dir, host)
}

#[tokio::test(flavor = "multi_thread")]
async fn files_a_valid_and_an_invalid_application_and_reads_them_back() {
    let (_dir, host) = start();
    scenarios::files_a_valid_and_an_invalid_application_and_reads_them_back(&host).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn records_the_three_checks_in_order_and_refuses_moves_out_of_order() {
    let (_dir, host) = start();
    scenarios::records_the_three_checks_in_order_and_refuses_moves_out_of_order(&host).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_requests_get_problem_details_and_leave_the_store_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sqlite_key_value.db");
    let host = Host::start(config(db.clone())).unwrap();
    scenarios::bad_requests_get_problem_details_and_leave_the_store_unchanged(&host, || dump(&db))
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_bureau_raises_co_hours_through_the_api_and_each_decision_names_its_version() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sqlite_key_value.db");
    let host = Host::start(config(db.clone())).unwrap();
    scenarios::the_bureau_raises_co_hours_through_the_api_and_each_decision_names_its_version(
        &host,
        || dump(&db),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_filed_class_survives_a_host_restart() {
    let (_dir, host) = start();
    scenarios::a_filed_class_survives_a_host_restart(host).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_application_filed_by_twelve_concurrent_requests_makes_one_class() {
    let (_dir, host) = start();
    scenarios::the_same_application_filed_by_twelve_concurrent_requests_makes_one_class(
        std::sync::Arc::new(host),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn health_needs_no_token_and_the_logs_carry_no_personal_data() {
    let (_dir, host) = start();
    let r = Client::new()
        .get(&host.url("/api/v1/health"))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    seed(&host).await;
    let app = application(8, 0);
    call(
        &host,
        "POST",
        "/api/v1/classes",
        Some(&token(Role::Institution, None)),
        &app.to_string(),
        &[],
    )
    .await;
    let logs = host.logs();
    for line in app["roster"].as_array().unwrap() {
        assert!(!logs.contains(line["id_number"].as_str().unwrap()));
        assert!(!logs.contains(line["mobile"].as_str().unwrap()));
    }
}

#[test]
fn the_class_opening_component_exports_the_wasip3_handler_and_imports_only_what_spin_offers() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    // Host::start builds the components; make sure they are built.
    let dir = tempfile::tempdir().unwrap();
    drop(Host::start(config(dir.path().join("kv.db"))).unwrap());
    let target = std::env::var("E2E_WASM_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join("target"));
    let wasm = target.join("wasm32-wasip2/release/class_opening.wasm");
    let mut cfg = wasmtime::Config::new();
    cfg.wasm_component_model_async(true);
    let engine = wasmtime::Engine::new(&cfg).unwrap();
    let component = wasmtime::component::Component::from_file(&engine, &wasm).unwrap();
    let ty = component.component_type();
    let exports: Vec<String> = ty.exports(&engine).map(|(n, _)| n.to_string()).collect();
    assert!(
        exports
            .iter()
            .any(|e| e == "wasi:http/handler@0.3.0-rc-2026-03-15"),
        "{exports:?}"
    );
    let offered = [
        "wasi:cli/",
        "wasi:clocks/",
        "wasi:io/",
        "wasi:random/",
        "wasi:filesystem/",
        "wasi:sockets/",
        "wasi:http/types@0.3.0-rc-2026-03-15",
        "wasi:http/client@0.3.0-rc-2026-03-15",
        "wasi:http/handler@0.3.0-rc-2026-03-15",
        "spin:key-value/key-value@3.0.0",
        "spin:variables/variables@3.0.0",
        "wasi:keyvalue/store@0.2.0-draft2",
        "wasi:keyvalue/atomics@0.2.0-draft2",
        "wasi:keyvalue/batch@0.2.0-draft2",
    ];
    let size = std::fs::metadata(&wasm).unwrap().len();
    assert!(size < 2 * 1024 * 1024, "class_opening.wasm is {size} bytes");
    for (name, _) in ty.imports(&engine) {
        assert!(
            offered.iter().any(|o| name.starts_with(o)),
            "import {name} is not offered by Spin 4.0"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dump_of_the_store_holds_no_id_number_phone_number_or_name_in_clear() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sqlite_key_value.db");
    let host = Host::start(config(db.clone())).unwrap();
    seed(&host).await;
    let app = application(20, 0);
    let r = call(
        &host,
        "POST",
        "/api/v1/classes",
        Some(&token(Role::Institution, None)),
        &app.to_string(),
        &[("idempotency-key", "dump-1")],
    )
    .await;
    assert_eq!(r.status, 201);
    let id = r.json().unwrap()["id"].as_str().unwrap().to_string();
    let filed: policy::class_opening::ClassApplication =
        serde_json::from_value(app.clone()).unwrap();
    let offset = crate::common::move_clock(&host, &filed, crate::common::Moment::Eve);
    let r = crate::common::record_check(&host, &id, "pre_opening", "officer-1", offset).await;
    assert_eq!(r.status, 200, "{}", r.text());
    host.set_clock_offset_secs(0);
    let officer = token(Role::DistrictOfficer, None);
    let dump = dump(&db);
    assert!(dump.len() > 20, "the scenario wrote records");
    let needles: Vec<String> = app["roster"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|l| {
            [
                l["id_number"].as_str().unwrap().to_string(),
                l["mobile"].as_str().unwrap().to_string(),
                l["name"].as_str().unwrap().to_string(),
            ]
        })
        .collect();
    for (key, value) in &dump {
        for n in &needles {
            assert!(!key.contains(n.as_str()), "key {key} holds personal data");
            assert!(
                !value.windows(n.len()).any(|w| w == n.as_bytes()),
                "value of {key} holds personal data in clear"
            );
        }
    }
    // The data is still there for those allowed to read it.
    let got = call(
        &host,
        "GET",
        &format!("/api/v1/classes/{id}"),
        Some(&officer),
        "",
        &[],
    )
    .await;
    assert_eq!(
        got.json().unwrap()["application"]["roster"][0]["name"],
        app["roster"][0]["name"]
    );
}

mod races {
    //! Concurrent filings of two different applications (CO-CLASH, CO-ROSTER,
    //! CO-SHARED-PHONE, CO-ENTRY), on SQLite.

    use super::start;
    use crate::common::races::{self, ROUNDS, Rule};
    use std::sync::Arc;
    use std::time::Instant;

    async fn run(rule: Rule, overlapping: bool) {
        let (_dir, host) = start();
        let began = Instant::now();
        races::concurrent_filings(Arc::new(host), rule, overlapping, ROUNDS).await;
        eprintln!(
            "sqlite: {ROUNDS} races {rule:?} overlapping {overlapping}: {:?}",
            began.elapsed()
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn co_clash_of_twenty_concurrent_filings_sharing_a_trainer_at_overlapping_times_one_is_approved()
     {
        run(Rule::Clash, true).await;
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn co_clash_twenty_concurrent_filings_sharing_a_trainer_on_following_days_are_all_approved()
     {
        run(Rule::Clash, false).await;
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn co_roster_of_twenty_concurrent_filings_sharing_a_trainee_on_overlapping_days_one_is_approved()
     {
        run(Rule::Roster, true).await;
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn co_roster_twenty_concurrent_filings_sharing_a_trainee_on_following_days_are_all_approved()
     {
        run(Rule::Roster, false).await;
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn co_shared_phone_of_twenty_concurrent_filings_sharing_a_mobile_exactly_one_carries_the_warning()
     {
        run(Rule::SharedPhone, true).await;
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn co_shared_phone_twenty_concurrent_filings_of_one_trainee_with_one_mobile_carry_no_warning()
     {
        run(Rule::SharedPhone, false).await;
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn co_entry_two_concurrent_entry_level_classes_after_three_exactly_one_is_over_the_share()
    {
        let (_dir, host) = start();
        let began = Instant::now();
        races::concurrent_entry_level_filings(Arc::new(host), 3, ROUNDS).await;
        eprintln!(
            "sqlite: {ROUNDS} entry-level races after 3: {:?}",
            began.elapsed()
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn co_entry_two_concurrent_entry_level_classes_after_five_stay_within_the_share() {
        let (_dir, host) = start();
        let began = Instant::now();
        races::concurrent_entry_level_filings(Arc::new(host), 5, ROUNDS).await;
        eprintln!(
            "sqlite: {ROUNDS} entry-level races after 5: {:?}",
            began.elapsed()
        );
    }
}

/// Every answer of a product component carries `content-length` (the
/// keep-alive mitigation of issue 13, `platform::reply`): the host's HTTP
/// server then sends no chunked encoding and no separate last write.
#[tokio::test(flavor = "multi_thread")]
async fn every_answer_carries_its_content_length() {
    let (_dir, host) = start();
    let inst = token(Role::Institution, None);
    for (method, path, tok, body) in [
        ("GET", "/api/v1/health", None, ""),
        ("POST", "/api/v1/classes/validate", None, "{}"),
        (
            "POST",
            "/api/v1/classes/validate",
            Some(inst.as_str()),
            "[]",
        ),
        (
            "POST",
            "/api/v1/classes/validate",
            Some(inst.as_str()),
            "not json",
        ),
        (
            "GET",
            "/api/v1/classes/no-such-class",
            Some(inst.as_str()),
            "",
        ),
    ] {
        let r = call(&host, method, path, tok, body, &[]).await;
        let length = r.header("content-length");
        assert_eq!(
            length,
            Some(r.body.len().to_string().as_str()),
            "{method} {path} ({}): content-length",
            r.status
        );
        assert_eq!(
            r.header("transfer-encoding"),
            None,
            "{method} {path} ({})",
            r.status
        );
    }
}

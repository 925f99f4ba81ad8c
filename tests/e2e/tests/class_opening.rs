//! 开班审批 end to end: the real `class_opening.wasm` in the project's Spin
//! test host, over HTTP, with its key-value data in a SQLite file.

mod common;

use common::{application, call, dump, seed, token};
use e2e::{Client, Host, HostConfig};
use serde_json::json;
use std::path::{Path, PathBuf};
use tempfile::TempDir;
use web::auth::{Claims, Role, mint};

fn config(db: PathBuf) -> HostConfig {
    common::product(db)
}

fn start() -> (TempDir, Host) {
    let dir = tempfile::tempdir().unwrap();
    let host = Host::start(config(dir.path().join("sqlite_key_value.db"))).expect("host starts");
    (dir, host)
}

#[tokio::test(flavor = "multi_thread")]
async fn files_a_valid_and_an_invalid_application_and_reads_them_back() {
    let (_dir, host) = start();
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
    assert_eq!(ok.status, 201, "{}", ok.text());
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

    let list = call(
        &host,
        "GET",
        "/api/v1/classes?limit=1",
        Some(&token(Role::BureauAdmin, None)),
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
        Some(&token(Role::BureauAdmin, None)),
        "",
        &[],
    )
    .await;
    assert_eq!(next.json().unwrap()["items"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn records_the_three_checks_in_order_and_refuses_moves_out_of_order() {
    let (_dir, host) = start();
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
async fn bad_requests_get_problem_details_and_leave_the_store_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sqlite_key_value.db");
    let host = Host::start(config(db.clone())).unwrap();
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
        let before = dump(&db);
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
        assert_eq!(dump(&db), before, "{case} changed the store");
    }
    assert!(
        !host.logs().contains("130402198207290622"),
        "the logs repeat an ID number"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_filed_class_survives_a_host_restart() {
    let (_dir, host) = start();
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
    assert_eq!(filed.status, 201);
    let id = filed.json().unwrap()["id"].as_str().unwrap().to_string();
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
async fn the_same_application_filed_by_twelve_concurrent_requests_makes_one_class() {
    let (_dir, host) = start();
    seed(&host).await;
    let host = std::sync::Arc::new(host);
    let body = application(30, 0).to_string();
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
    assert_eq!(
        results.iter().filter(|(s, _)| *s == 201).count(),
        1,
        "{results:?}"
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
    let officer = token(Role::DistrictOfficer, None);
    let check = json!({"kind": "pre_opening", "officer": "李科员", "at": chrono::Utc::now().to_rfc3339(), "result": "passed"});
    call(
        &host,
        "POST",
        &format!("/api/v1/classes/{id}/checks"),
        Some(&officer),
        &check.to_string(),
        &[],
    )
    .await;
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

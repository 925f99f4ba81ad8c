//! 职业培训券 end to end: the real `vouchers.wasm` (with `class_opening.wasm`
//! filing the class) in the project's Spin test host, over HTTP, with the
//! key-value data in a SQLite file and WeChat as a mock server on loopback.

use crate::common::{
    Moment, call, dump, file_class, move_clock, record_check, seed, token_shifted,
};
use e2e::wasm_build::Build;
use e2e::{Host, HostConfig};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tempfile::TempDir;
use web::auth::Role;

fn config(db: PathBuf, wechat_base: &str) -> HostConfig {
    crate::common::product(db)
        .variable("wechat_app_id", "wx-e2e-app")
        .variable("wechat_app_secret", "wx-e2e-secret")
        .variable("wechat_api_base", wechat_base)
}

fn start(wechat_base: &str) -> (TempDir, PathBuf, Host) {
    start_as(wechat_base, Build::from_env())
}

/// [`start`] on the given build of the components.
fn start_as(wechat_base: &str, build: Build) -> (TempDir, PathBuf, Host) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sqlite_key_value.db");
    let mut config = config(db.clone(), wechat_base);
    config.wasi = build;
    let host = Host::start(config).expect("host starts");
    (dir, db, host)
}

/// A token for `role`.
fn token(role: Role) -> String {
    crate::common::token(role, None)
}

/// Activates the cards of `lines`; returns their person refs.
async fn activate(
    host: &Host,
    app: &policy::class_opening::ClassApplication,
    lines: impl IntoIterator<Item = usize>,
) -> Vec<String> {
    let ss = token(Role::SocialSecurity);
    let mut refs = Vec::new();
    for l in lines {
        let body = json!({"id_number": app.roster[l].id_number.expose(), "active": true});
        let r = call(
            host,
            "POST",
            "/api/v1/cards/activations",
            Some(&ss),
            &body.to_string(),
            &[],
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text());
        let v = r.json().unwrap();
        assert_eq!(v["id_number"], app.roster[l].id_number.masked());
        refs.push(v["person_ref"].as_str().unwrap().to_string());
    }
    refs
}

/// ID and phone numbers of the roster, as written and in the forms they might leak.
fn numbers(app: &policy::class_opening::ClassApplication) -> Vec<String> {
    app.roster
        .iter()
        .flat_map(|t| {
            [
                t.id_number.expose().to_string(),
                t.mobile.expose().to_string(),
            ]
        })
        .collect()
}

/// No key and no value of the SQLite file (values are sealed at rest), and no
/// log line, holds an ID or phone number of the roster, the openid or the app secret.
fn assert_no_numbers(db: &Path, logs: &str, nums: &[String]) {
    let dump = dump(db);
    assert!(!dump.is_empty());
    for (k, v) in dump {
        let text = String::from_utf8_lossy(&v);
        for n in nums {
            assert!(
                !k.contains(n.as_str()),
                "key {k} holds an ID or phone number"
            );
            assert!(
                !text.contains(n.as_str()),
                "{k} holds an ID or phone number"
            );
        }
        for secret in ["oE2E-openid", "wx-e2e-secret"] {
            assert!(
                !k.contains(secret) && !text.contains(secret),
                "{k} holds {secret}"
            );
        }
    }
    for n in nums {
        assert!(
            !logs.contains(n.as_str()),
            "the logs hold an ID or phone number"
        );
    }
    assert!(!logs.contains("oE2E-openid"), "the logs hold an openid");
    assert!(
        !logs.contains("wx-e2e-secret"),
        "the logs hold the app secret"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn issue_redeem_and_settle_through_the_spin_host_and_count_progress() {
    issue_redeem_and_settle(Build::from_env()).await;
}

/// Issue, activate, redeem and settle vouchers on `build` (also run on p2 by `p2.rs`).
pub async fn issue_redeem_and_settle(build: Build) {
    let (_dir, db, host) = start_as("https://api.weixin.qq.com", build);
    seed(&host).await;
    let (class_id, app) = file_class(&host, 4).await;
    let refs = activate(&host, &app, 0..3).await;
    let inst = token(Role::Institution);
    let issued = call(
        &host,
        "POST",
        &format!("/api/v1/classes/{class_id}/vouchers"),
        Some(&inst),
        "{}",
        &[("idempotency-key", "issue-all")],
    )
    .await;
    assert_eq!(issued.status, 200, "{}", issued.text());
    let v = issued.json().unwrap();
    assert_eq!(
        (v["issued"].as_u64(), v["refused"].as_u64()),
        (Some(3), Some(1)),
        "{v}"
    );
    assert_eq!(v["results"][3]["blocking_rules"], json!(["VO-CARD"]));
    let codes: Vec<String> = v["results"].as_array().unwrap()[..3]
        .iter()
        .map(|r| r["voucher"]["code"].as_str().unwrap().to_string())
        .collect();
    // A retry with the same key replays the answer.
    let replay = call(
        &host,
        "POST",
        &format!("/api/v1/classes/{class_id}/vouchers"),
        Some(&inst),
        "{}",
        &[("idempotency-key", "issue-all")],
    )
    .await;
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert_eq!(replay.body, issued.body);

    // Settle before redeem is refused naming the state.
    let officer = token(Role::DistrictOfficer);
    let settle_body = json!({"certificate_no": "Y530000220600001"}).to_string();
    let early = call(
        &host,
        "POST",
        &format!("/api/v1/vouchers/{}/settle", codes[0]),
        Some(&officer),
        &settle_body,
        &[],
    )
    .await;
    assert_eq!(early.status, 409, "{}", early.text());
    assert_eq!(early.json().unwrap()["state"], "issued");

    // VO-OPEN: not used before the pre-opening check, on the eve of the class.
    let not_open = call(
        &host,
        "POST",
        &format!("/api/v1/vouchers/{}/redeem", codes[0]),
        Some(&inst),
        "",
        &[],
    )
    .await;
    assert_eq!(
        (not_open.status, not_open.json().unwrap()["code"].clone()),
        (409, json!("class_not_opened")),
        "VO-OPEN: {}",
        not_open.text()
    );
    let offset = move_clock(&host, &app, Moment::Eve);
    let r = record_check(&host, &class_id, "pre_opening", "officer-1", offset).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let inst = token_shifted(Role::Institution, "institution-e2e", None, offset);
    for c in &codes {
        let r = call(
            &host,
            "POST",
            &format!("/api/v1/vouchers/{c}/redeem"),
            Some(&inst),
            "",
            &[],
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let offset = move_clock(&host, &app, Moment::FirstDay);
    let r = record_check(&host, &class_id, "in_training", "officer-1", offset).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let offset = move_clock(&host, &app, Moment::AfterLastDay);
    let r = record_check(&host, &class_id, "post_assessment", "officer-1", offset).await;
    assert_eq!(r.status, 200, "{}", r.text());
    // VO-4EYES: the officer who recorded the assessment does not settle.
    let own = call(
        &host,
        "POST",
        &format!("/api/v1/vouchers/{}/settle", codes[0]),
        Some(&token_shifted(
            Role::DistrictOfficer,
            "officer-1",
            None,
            offset,
        )),
        &settle_body,
        &[],
    )
    .await;
    assert_eq!(
        (own.status, own.json().unwrap()["code"].clone()),
        (403, json!("four_eyes")),
        "{}",
        own.text()
    );
    let officer = token_shifted(Role::DistrictOfficer, "officer-2", None, offset);
    let mut paid = 0;
    for c in &codes[..2] {
        let r = call(
            &host,
            "POST",
            &format!("/api/v1/vouchers/{c}/settle"),
            Some(&officer),
            &settle_body,
            &[("idempotency-key", &format!("settle-{c}"))],
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text());
        paid += r.json().unwrap()["amount_fen"].as_i64().unwrap();
    }
    let twice = call(
        &host,
        "POST",
        &format!("/api/v1/vouchers/{}/settle", codes[0]),
        Some(&officer),
        &settle_body,
        &[],
    )
    .await;
    assert_eq!(twice.status, 409);
    assert_eq!(twice.json().unwrap()["state"], "settled");

    let progress = call(
        &host,
        "GET",
        &format!(
            "/api/v1/stats/progress?year={}",
            chrono::Datelike::year(&app.start_date)
        ),
        Some(&token_shifted(
            Role::BureauAdmin,
            "bureau-e2e",
            None,
            offset,
        )),
        "",
        &[],
    )
    .await;
    assert_eq!(progress.status, 200, "{}", progress.text());
    let p = progress.json().unwrap();
    assert_eq!(p["city"]["trainings"], 2);
    assert_eq!(p["city"]["amount_fen"], paid);

    let archive = call(
        &host,
        "GET",
        &format!("/api/v1/people/{}/archive", refs[0]),
        Some(&officer),
        "",
        &[],
    )
    .await;
    assert_eq!(archive.status, 200);
    assert_eq!(archive.json().unwrap()["entries"][0]["result"], "settled");

    // The data survive a restart of the host (whose clock is the real one again).
    let host = host.restart().unwrap();
    let got = call(
        &host,
        "GET",
        &format!("/api/v1/vouchers/{}", codes[0]),
        Some(&token(Role::Institution)),
        "",
        &[],
    )
    .await;
    assert_eq!(got.json().unwrap()["state"], "settled");

    assert_no_numbers(&db, &host.logs(), &numbers(&app));
}

#[tokio::test(flavor = "multi_thread")]
async fn one_hundred_concurrent_issue_requests_for_one_trainee_give_one_voucher() {
    let (_dir, db, host) = start("https://api.weixin.qq.com");
    seed(&host).await;
    let (class_id, app) = file_class(&host, 3).await;
    let refs = activate(&host, &app, [0]).await;
    let host = Arc::new(host);
    let path = format!("/api/v1/classes/{class_id}/vouchers");
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let (host, path) = (host.clone(), path.clone());
            tokio::spawn(async move {
                let key = format!("race-{i}");
                let r = call(
                    &host,
                    "POST",
                    &path,
                    Some(&token(Role::Institution)),
                    r#"{"lines":[0]}"#,
                    &[("idempotency-key", key.as_str())],
                )
                .await;
                (r.status, r.json().unwrap_or(Value::Null))
            })
        })
        .collect();
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    let issued = results.iter().filter(|(_, v)| v["issued"] == 1).count();
    let existing = results.iter().filter(|(_, v)| v["existing"] == 1).count();
    let statuses: BTreeMap<u16, usize> = results.iter().fold(BTreeMap::new(), |mut m, (s, _)| {
        *m.entry(*s).or_default() += 1;
        m
    });
    assert_eq!(
        issued, 1,
        "invariant 1: exactly one voucher; statuses {statuses:?}"
    );
    assert_eq!(
        issued + existing,
        100,
        "every request answered; statuses {statuses:?}"
    );
    let mine = call(
        &host,
        "GET",
        "/api/v1/me/vouchers",
        Some(&crate::common::trainee(&db, &refs[0])),
        "",
        &[],
    )
    .await;
    assert_eq!(mine.json().unwrap()["items"].as_array().unwrap().len(), 1);
    let vouchers_in_store = dump(&db)
        .keys()
        .filter(|k| k.starts_with("vt:voucher:") && !k.contains('#'))
        .count();
    assert_eq!(vouchers_in_store, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn wechat_login_binds_a_trainee_who_then_sees_only_their_own_data() {
    wechat_login(Build::from_env()).await;
}

/// WeChat login and binding through outbound HTTP to the fake WeChat on
/// `build` (also run on p2 by `p2.rs`): the phone number WeChat verified
/// decides, never one typed in.
pub async fn wechat_login(build: Build) {
    let wechat = e2e::FakeWeChat::start();
    let (_dir, db, host) = start_as(wechat.base_url(), build);
    seed(&host).await;
    let (class_id, app) = file_class(&host, 3).await;
    let refs = activate(&host, &app, 0..3).await;
    let issued = call(
        &host,
        "POST",
        &format!("/api/v1/classes/{class_id}/vouchers"),
        Some(&token(Role::Institution)),
        "{}",
        &[],
    )
    .await;
    assert_eq!(issued.json().unwrap()["issued"], 3, "{}", issued.text());
    wechat
        .login("good", "oE2E-openid-0001")
        .login_answer("busy", json!({"errcode": -1, "errmsg": "system error"}))
        .phone("phone-of-line-1", app.roster[1].mobile.expose())
        .phone("phone-of-line-0", app.roster[0].mobile.expose());

    let login = |code: &'static str| {
        let host = &host;
        async move {
            call(
                host,
                "POST",
                "/api/v1/wechat/login",
                None,
                &json!({"code": code}).to_string(),
                &[],
            )
            .await
        }
    };
    let bad = login("used").await;
    assert_eq!(bad.status, 422, "{}", bad.text());
    assert_eq!(bad.json().unwrap()["code"], "wechat_code_invalid");
    let busy = login("busy").await;
    assert_eq!(busy.json().unwrap()["code"], "wechat_busy");

    let first = login("good").await;
    assert_eq!(first.status, 200, "{}", first.text());
    let f = first.json().unwrap();
    assert_eq!(f["status"], "unbound");
    let ticket = f["bind_ticket"].as_str().unwrap().to_string();

    let t0 = &app.roster[0];
    let wrong = call(
        &host,
        "POST",
        "/api/v1/wechat/bind",
        None,
        &json!({"bind_ticket": ticket, "id_number": t0.id_number.expose(), "phone_code": "phone-of-line-1"}).to_string(),
        &[],
    )
    .await;
    assert_eq!(wrong.status, 403, "{}", wrong.text());
    assert_eq!(wrong.json().unwrap()["code"], "binding_proof_failed");
    let bound = call(
        &host,
        "POST",
        "/api/v1/wechat/bind",
        None,
        &json!({"bind_ticket": ticket, "id_number": t0.id_number.expose(), "phone_code": "phone-of-line-0"}).to_string(),
        &[],
    )
    .await;
    assert_eq!(bound.status, 200, "{}", bound.text());
    assert_eq!(bound.json().unwrap()["person_ref"], refs[0].as_str());

    let again = login("good").await.json().unwrap();
    assert_eq!(again["status"], "bound");
    let tok = again["token"].as_str().unwrap().to_string();
    let mine = call(&host, "GET", "/api/v1/me/vouchers", Some(&tok), "", &[]).await;
    assert_eq!(mine.status, 200);
    let items = mine.json().unwrap()["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["person_ref"], refs[0].as_str());
    let own_archive = call(&host, "GET", "/api/v1/me/archive", Some(&tok), "", &[]).await;
    assert_eq!(own_archive.status, 200);
    let other = call(
        &host,
        "GET",
        &format!("/api/v1/people/{}/archive", refs[1]),
        Some(&tok),
        "",
        &[],
    )
    .await;
    assert_eq!(other.status, 403, "{}", other.text());

    assert_eq!(
        wechat.requests(),
        [
            "GET /sns/jscode2session",
            "GET /sns/jscode2session",
            "GET /sns/jscode2session",
            "POST /cgi-bin/stable_token",
            "POST /wxa/business/getuserphonenumber",
            "POST /wxa/business/getuserphonenumber",
            "GET /sns/jscode2session",
        ],
        "one access token for both phone calls"
    );
    assert_no_numbers(&db, &host.logs(), &numbers(&app));
}

//! The class-opening scenarios run on every key-value backend (SQLite in
//! `class_opening.rs`, Redis in `redis_backend.rs`): same requests, same results.

use super::{Moment, application, call, move_clock, record_check, seed, token};
use e2e::Host;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use web::auth::Role;

/// Files a valid and an invalid application, reads them back masked, and lists them in two pages.
pub async fn files_a_valid_and_an_invalid_application_and_reads_them_back(host: &Host) {
    seed(host).await;
    let inst = token(Role::Institution, None);
    let ok = call(
        host,
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
        host,
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
        host,
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
        host,
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
        host,
        "GET",
        &format!("/api/v1/classes?limit=1&cursor={cursor}"),
        Some(&token(Role::BureauAdmin, None)),
        "",
        &[],
    )
    .await;
    assert_eq!(next.json().unwrap()["items"].as_array().unwrap().len(), 1);
}

/// Records the three checks of 每班必查 in order, each on its day of the
/// class's calendar (CK-WINDOW), and refuses one out of order (CK-ORDER).
pub async fn records_the_three_checks_in_order_and_refuses_moves_out_of_order(host: &Host) {
    seed(host).await;
    let app = application(10, 0);
    let filed = call(
        host,
        "POST",
        "/api/v1/classes",
        Some(&token(Role::Institution, None)),
        &app.to_string(),
        &[],
    )
    .await;
    let id = filed.json().unwrap()["id"].as_str().unwrap().to_string();
    let app: policy::class_opening::ClassApplication = serde_json::from_value(app).unwrap();
    // CK-WINDOW: on the day of filing, three weeks ahead, the pre-opening check is too early.
    let early = record_check(host, &id, "pre_opening", "officer-1", 0).await;
    assert_eq!(
        (
            early.status,
            early.json().unwrap()["code"].as_str().map(str::to_string),
            early.json().unwrap()["bound"].as_str().map(str::to_string)
        ),
        (
            422,
            Some("check_out_of_window".to_string()),
            Some("window_start".to_string())
        ),
        "{}",
        early.text()
    );
    let offset = move_clock(host, &app, Moment::Eve);
    let early = record_check(host, &id, "post_assessment", "officer-1", offset).await;
    assert_eq!(early.status, 409);
    assert_eq!(
        early.header("content-type"),
        Some("application/problem+json")
    );
    assert_eq!(early.json().unwrap()["state"], "approved");
    for (kind, moment, want) in [
        ("pre_opening", Moment::Eve, "in_training"),
        ("in_training", Moment::FirstDay, "in_training"),
        ("post_assessment", Moment::AfterLastDay, "assessed"),
    ] {
        let offset = move_clock(host, &app, moment);
        let r = record_check(host, &id, kind, "officer-1", offset).await;
        assert_eq!(
            (
                r.status,
                r.json().unwrap()["status"].as_str().map(str::to_string)
            ),
            (200, Some(want.to_string())),
            "{kind}: {}",
            r.text()
        );
    }
    host.set_clock_offset_secs(0);
}

/// Every kind of bad request gets its problem details, and `dump` (the
/// backend's whole content) is the same before and after each.
pub async fn bad_requests_get_problem_details_and_leave_the_store_unchanged(
    host: &Host,
    dump: impl Fn() -> BTreeMap<String, Vec<u8>>,
) {
    seed(host).await;
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
    // Valid claims, signed with a key that is not the identity provider's
    // but naming its key; and the same claims HS256 with the public key.
    let claims = super::claims(Role::BureauAdmin, "x", None);
    let forged = web::auth::Issuer::new(
        [9; 32],
        web::auth::testing::ED25519_KID,
        web::auth::testing::ISSUER,
        web::auth::testing::AUDIENCE,
    )
    .mint(&claims);
    let public = web::auth::testing::idp().public_jwk()["x"].to_string();
    let confused = web::auth::testing::mint_hs256(&claims, public.trim_matches('"').as_bytes());
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
            "token_signature",
        ),
        (
            "HS256 token keyed with the public key",
            Some(&confused),
            application(5, 0).to_string(),
            401,
            "token_algorithm",
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
        let before = dump();
        let r = call(
            host,
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
        assert_eq!(dump(), before, "{case} changed the store");
    }
    assert!(
        !host.logs().contains("130402198207290622"),
        "the logs repeat an ID number"
    );
}

/// Twelve concurrent filings of one application make one class.
pub async fn the_same_application_filed_by_twelve_concurrent_requests_makes_one_class(
    host: Arc<Host>,
) {
    seed(&host).await;
    // A third of the requests without an Idempotency-Key.
    file_at_once(&host, 12, |i| (i % 3 != 0).then(|| format!("race-{i}"))).await;
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

/// Files a class, restarts the host (a new process, or a new replica on the
/// same Redis) and reads the class back.
pub async fn a_filed_class_survives_a_host_restart(host: Host) {
    seed(&host).await;
    let (id, _) = super::file_class(&host, 12).await;
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

/// Files the same 30-trainee application `n` times at once, the `i`-th
/// request with the Idempotency-Key `key(i)` if any; asserts that exactly
/// one created the class and every other answered with that class, and
/// returns its id.
pub async fn file_at_once(host: &Arc<Host>, n: usize, key: fn(usize) -> Option<String>) -> String {
    let body = application(30, 0).to_string();
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let (host, body) = (host.clone(), body.clone());
            tokio::spawn(async move {
                let key = key(i);
                let extra: Vec<(&str, &str)> = key
                    .as_deref()
                    .map(|k| ("idempotency-key", k))
                    .into_iter()
                    .collect();
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
    results[0].1.clone()
}

/// The 养老护理员 level-5 fixture class of 20 trainees starting on `start`,
/// with a 16th day of 5 hours: 125 class hours.
fn class_of_125_hours(start: &str, salt: u32) -> serde_json::Value {
    use policy::class_opening::{Mode, Session};
    let start: chrono::NaiveDate = start.parse().unwrap();
    let (mut app, _) = policy::fixtures::valid_class_from(start, start, 20, salt);
    let last = app.sessions.last().unwrap().clone();
    app.sessions.push(Session {
        date: last.date + chrono::Duration::days(1),
        start: chrono::NaiveTime::from_hms_opt(8, 30, 0).unwrap(),
        end: chrono::NaiveTime::from_hms_opt(12, 30, 0).unwrap(),
        class_hours: 5,
        mode: Mode::Offline,
        topics: vec![policy::reference::Topic::Occupation],
        ..last
    });
    app.end_date += chrono::Duration::days(1);
    assert_eq!(app.scheduled_hours(), 125);
    serde_json::to_value(app).unwrap()
}

/// Issue 16, acceptance 1 and 2: the bureau raises CO-HOURS
/// (`co_min_class_hours`) to 130 from 2023-01-01 through the API, without a
/// rebuild; a class starting 2022-12-31 with 125 hours passes, one starting
/// 2023-01-02 fails, each decision names the policy version and the value it
/// used, and the first reads back unchanged. A district officer's change is
/// 403 and changes nothing; every change is audited and the chain verifies.
pub async fn the_bureau_raises_co_hours_through_the_api_and_each_decision_names_its_version(
    host: &Host,
    dump: impl Fn() -> BTreeMap<String, Vec<u8>>,
) {
    seed(host).await;
    // The host's clock on 2022-12-01 10:00 CST: 2023-01-01 lies ahead.
    let at = policy::checks::cst_start("2022-12-01".parse().unwrap()) + chrono::Duration::hours(10);
    let offset = (at - chrono::Utc::now()).num_seconds();
    host.set_clock_offset_secs(offset);
    let bureau = super::token_shifted(Role::BureauAdmin, "bureau-e2e", None, offset);
    let officer = super::token_shifted(Role::DistrictOfficer, "officer-e2e", None, offset);
    let inst = super::token_shifted(Role::Institution, "inst-e2e", None, offset);
    let raise = json!({
        "since": "2023-01-01",
        "value": 130,
        "reference": "市人社局关于调整补贴性培训最低课时的通知（测试）",
        "reason": "提高培训质量",
    })
    .to_string();
    let path = "/api/v1/admin/policy/parameters/co_min_class_hours/values";

    let before = dump();
    let r = call(host, "POST", path, Some(&officer), &raise, &[]).await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.json().unwrap()["code"], "forbidden");
    assert!(
        dump() == before,
        "the officer's refused change wrote something"
    );
    let r = call(host, "GET", "/api/v1/admin/policy", Some(&officer), "", &[]).await;
    assert_eq!(
        r.status,
        200,
        "district officers read the policy: {}",
        r.text()
    );

    let r = call(host, "POST", path, Some(&bureau), &raise, &[]).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let v = r.json().unwrap();
    assert_eq!(v["version"], 2, "{v}");
    assert_eq!(
        r.header("location"),
        Some("/api/v1/admin/policy/versions/2")
    );
    let digest = v["digest"].clone();

    let co_hours = |d: &serde_json::Value| {
        d["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["rule"] == "CO-HOURS")
            .unwrap()
            .clone()
    };
    let r = call(
        host,
        "POST",
        "/api/v1/classes",
        Some(&inst),
        &class_of_125_hours("2022-12-31", 0).to_string(),
        &[],
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let first = r.json().unwrap();
    let id = first["id"].as_str().unwrap().to_string();
    assert_eq!(first["status"], "approved", "{first}");
    assert_eq!(
        first["decision"]["policy"],
        json!({"version": 2, "digest": digest})
    );
    let f = co_hours(&first["decision"]);
    assert_eq!(f["comparison"], "class_hours: 125 ≥ 120");
    assert_eq!(f["parameters"], json!(["co_min_class_hours@2022-04-22"]));

    let r = call(
        host,
        "POST",
        "/api/v1/classes",
        Some(&inst),
        &class_of_125_hours("2023-01-02", 1).to_string(),
        &[],
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let second = r.json().unwrap();
    assert_eq!(second["status"], "rejected", "{second}");
    assert_eq!(second["decision"]["blocking_rules"], json!(["CO-HOURS"]));
    assert_eq!(second["decision"]["policy"]["version"], 2);
    let f = co_hours(&second["decision"]);
    assert_eq!(f["comparison"], "class_hours: 125 < 130");
    assert_eq!(f["parameters"], json!(["co_min_class_hours@2023-01-01"]));

    // A month later a further change from the same day reaches back: 409
    // unless the request says so; then version 3. The first decision stands.
    let at = policy::checks::cst_start("2023-02-01".parse().unwrap()) + chrono::Duration::hours(10);
    let offset = (at - chrono::Utc::now()).num_seconds();
    host.set_clock_offset_secs(offset);
    let bureau = super::token_shifted(Role::BureauAdmin, "bureau-e2e", None, offset);
    let mut again = json!({"since": "2023-01-01", "value": 140, "reference": "通知（测试）"});
    let before = dump();
    let r = call(host, "POST", path, Some(&bureau), &again.to_string(), &[]).await;
    assert_eq!(r.status, 409, "{}", r.text());
    assert_eq!(r.json().unwrap()["code"], "policy_change_retroactive");
    assert!(dump() == before, "the refused change wrote something");
    again["retroactive"] = json!(true);
    let r = call(host, "POST", path, Some(&bureau), &again.to_string(), &[]).await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json().unwrap()["version"], 3);
    assert_eq!(r.json().unwrap()["retroactive"], true);
    let r = call(
        host,
        "GET",
        &format!("/api/v1/classes/{id}"),
        Some(&bureau),
        "",
        &[],
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json().unwrap()["decision"], first["decision"]);

    // Every change in the audit trail with its before and after digests; the chain verifies.
    let r = call(
        host,
        "GET",
        "/api/v1/audit?entity=policy",
        Some(&bureau),
        "",
        &[],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let events = r.json().unwrap()["events"].as_array().unwrap().clone();
    assert_eq!(events.len(), 3, "the import and two changes");
    assert_eq!(events[0]["action"], "policy.imported");
    assert_eq!(events[1]["before"], events[0]["after"]);
    assert_eq!(events[1]["after"], digest);
    assert_eq!(events[2]["before"], digest);
    assert!(events[2]["note"].as_str().unwrap().contains("retroactive"));
    let r = call(host, "GET", "/api/v1/audit/verify", Some(&bureau), "", &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json().unwrap()["intact"], true);
    host.set_clock_offset_secs(0);
}

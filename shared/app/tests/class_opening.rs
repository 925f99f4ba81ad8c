//! The class-opening routes end to end on the in-memory store: auth on every
//! route, bad input that changes nothing, idempotency, races, checks, paging.

#![allow(clippy::result_large_err)]

mod support;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use chrono::{DateTime, TimeZone, Utc};
use http::{Method, StatusCode};
use policy::fixtures;
use serde_json::{Value, json};
use store::MemoryStore;
use support::{JWT, secrets};
use web::auth::{Role, mint};
use web::{Env, Secrets};

/// 2022-06-01 10:00 CST: the fixture classes start on 2022-06-13, 6 working days later.
fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2022, 6, 1, 2, 0, 0).unwrap()
}

fn no_random(_: &mut [u8]) {}

/// An instant given in China Standard Time.
fn cst(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(&format!("{s}+08:00"))
        .unwrap()
        .with_timezone(&Utc)
}

struct World {
    kv: MemoryStore,
    secrets: Secrets,
    now: std::sync::Mutex<DateTime<Utc>>,
}

impl World {
    fn new() -> Self {
        let w = Self {
            kv: MemoryStore::new(),
            secrets: secrets(),
            now: std::sync::Mutex::new(now()),
        };
        w.seed();
        w
    }

    fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> (StatusCode, Value, http::HeaderMap) {
        let bytes = body
            .map(|b| serde_json::to_vec(&b).unwrap())
            .unwrap_or_default();
        self.call_raw(method, path, token, Bytes::from(bytes), headers)
    }

    fn call_raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Bytes,
        headers: &[(&str, &str)],
    ) -> (StatusCode, Value, http::HeaderMap) {
        let req = support::request(method, path, token, Some(body), headers);
        let env = Env {
            kv: &self.kv,
            secrets: &self.secrets,
            now: *self.now.lock().unwrap(),
            random: &no_random,
        };
        let a = support::answer(if path.starts_with("/api/v1/audit") {
            app::audit::handle(&env, &req)
        } else {
            app::class_opening::handle(&env, &req)
        });
        assert!(
            a.text.is_empty() || !a.body.is_null(),
            "a body that is not JSON: {}",
            a.text
        );
        (a.status, a.body, a.headers)
    }

    /// A GET whose answer is text (the audit checkpoint, a signed note).
    fn text(&self, path: &str, token: &str) -> (StatusCode, String) {
        let req = support::request(Method::GET, path, Some(token), None, &[]);
        let env = Env {
            kv: &self.kv,
            secrets: &self.secrets,
            now: *self.now.lock().unwrap(),
            random: &no_random,
        };
        let a = support::answer(if path.starts_with("/api/v1/audit") {
            app::audit::handle(&env, &req)
        } else {
            app::class_opening::handle(&env, &req)
        });
        (a.status, a.text)
    }

    /// Moves the world's clock to `at` (China Standard Time, `YYYY-MM-DDTHH:MM:SS`).
    fn set_clock(&self, at: &str) -> DateTime<Utc> {
        let t = cst(at);
        *self.now.lock().unwrap() = t;
        t
    }

    /// A token of `role` valid at the world's clock.
    fn token_now(&self, role: Role) -> String {
        let t = self.now.lock().unwrap().timestamp();
        token_at(role, None, t, t + 3600, JWT)
    }

    fn seed(&self) {
        let admin = token(Role::BureauAdmin, None);
        let put = |path: String, body: Value| {
            let (s, v, _) = self.call(Method::PUT, &path, Some(&admin), Some(body), &[]);
            assert!(s.is_success(), "seeding {path}: {s} {v}");
        };
        put(
            format!("/api/v1/registry/institutions/{}", fixtures::INSTITUTION),
            serde_json::to_value(fixtures::institution()).unwrap(),
        );
        let mut other = fixtures::institution();
        other.credit_code = policy::ids::CreditCode::parse(fixtures::OTHER_INSTITUTION).unwrap();
        other.filed_districts = vec![policy::ids::AreaCode::parse("530103").unwrap()];
        put(
            format!(
                "/api/v1/registry/institutions/{}",
                fixtures::OTHER_INSTITUTION
            ),
            serde_json::to_value(other).unwrap(),
        );
        put(
            "/api/v1/registry/textbooks/9787111213826".into(),
            serde_json::to_value(fixtures::textbook()).unwrap(),
        );
        for n in 1..=8 {
            let no = format!("YN-T-{n:04}");
            put(
                format!("/api/v1/registry/trainers/{no}"),
                json!({"registration_no": no, "name": "讲师", "status": "registered"}),
            );
        }
    }
}

fn token(role: Role, binding: Option<&str>) -> String {
    token_at(
        role,
        binding,
        now().timestamp(),
        now().timestamp() + 3600,
        JWT,
    )
}

fn token_at(
    role: Role,
    binding: Option<&str>,
    iat: i64,
    exp: i64,
    key: impl web::auth::Mint,
) -> String {
    mint(&support::claims(role, binding, iat, exp), key)
}

fn institution() -> String {
    token(Role::Institution, None)
}

fn application(n: usize, salt: u32) -> Value {
    let (app, _) = fixtures::valid_class_from(
        "2022-06-13".parse().unwrap(),
        "2022-06-01".parse().unwrap(),
        n,
        salt,
    );
    serde_json::to_value(app).unwrap()
}

#[test]
fn health_answers_without_a_token() {
    let w = World::new();
    let (s, v, _) = w.call(Method::GET, "/api/v1/health", None, None, &[]);
    assert_eq!((s, v["status"].as_str()), (StatusCode::OK, Some("ok")));
}

#[test]
fn files_a_valid_class_and_reads_it_back_masked() {
    let w = World::new();
    let (s, v, h) = w.call(
        Method::POST,
        "/api/v1/classes",
        Some(&institution()),
        Some(application(40, 0)),
        &[],
    );
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["status"], "approved");
    assert_eq!(v["decision"]["outcome"], "approved");
    let id = v["id"].as_str().unwrap().to_string();
    assert_eq!(id, "KM-2022-000001");
    assert_eq!(h["location"], format!("/api/v1/classes/{id}").as_str());
    let (s, got, _) = w.call(
        Method::GET,
        &format!("/api/v1/classes/{id}"),
        Some(&institution()),
        None,
        &[],
    );
    assert_eq!(s, StatusCode::OK);
    let line = &got["application"]["roster"][0];
    let (app, _) = fixtures::valid_class(40);
    assert_eq!(line["id_number"], app.roster[0].id_number.masked());
    assert_eq!(line["mobile"], app.roster[0].mobile.masked());
    let text = got.to_string();
    for t in &app.roster {
        assert!(
            !text.contains(t.id_number.expose()) && !text.contains(t.mobile.expose()),
            "response leaks personal data"
        );
    }
}

#[test]
fn a_rejected_application_is_stored_with_every_failing_rule_and_figures() {
    let w = World::new();
    let mut app = application(61, 0);
    let sessions = app["sessions"].as_array_mut().unwrap();
    sessions.truncate(12); // 96 hours
    let last = sessions.last().unwrap()["date"].clone();
    app["end_date"] = last;
    let (s, v, _) = w.call(
        Method::POST,
        "/api/v1/classes",
        Some(&institution()),
        Some(app),
        &[],
    );
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["status"], "rejected");
    let blocking: Vec<&str> = v["decision"]["blocking_rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    for rule in ["CO-HOURS", "CO-SIZE", "CO-EQUIP"] {
        assert!(blocking.contains(&rule), "{rule} in {blocking:?}");
    }
    let comparisons: Vec<&str> = v["decision"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["comparison"].as_str())
        .collect();
    assert!(
        comparisons.contains(&"class_hours: 96 < 120"),
        "{comparisons:?}"
    );
    assert!(
        comparisons.contains(&"trainees: 61 > 60"),
        "{comparisons:?}"
    );
}

#[test]
fn validate_returns_the_decision_and_stores_nothing() {
    let w = World::new();
    let before = w.kv.dump();
    let (s, v, _) = w.call(
        Method::POST,
        "/api/v1/classes/validate",
        Some(&institution()),
        Some(application(60, 0)),
        &[],
    );
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["decision"]["outcome"], "approved");
    assert_eq!(w.kv.dump(), before);
    let (_, v, _) = w.call(
        Method::POST,
        "/api/v1/classes/validate",
        Some(&institution()),
        Some(application(61, 0)),
        &[],
    );
    assert_eq!(v["decision"]["outcome"], "rejected");
    assert_eq!(w.kv.dump(), before);
}

#[test]
fn validate_makes_one_key_value_call_whatever_the_roster_size() {
    let w = World::new();
    for n in [1, 30, 60] {
        let before = w.kv.calls();
        let (s, _, _) = w.call(
            Method::POST,
            "/api/v1/classes/validate",
            Some(&institution()),
            Some(application(n, 0)),
            &[],
        );
        assert_eq!(s, StatusCode::OK);
        assert_eq!(w.kv.calls() - before, 1, "{n} trainees");
    }
}

/// Every route of the component with a path that exists and a body that parses.
fn routes() -> Vec<(Method, String, Option<Value>)> {
    let app = application(10, 0);
    vec![
        (
            Method::POST,
            "/api/v1/classes/validate".into(),
            Some(app.clone()),
        ),
        (Method::POST, "/api/v1/classes".into(), Some(app)),
        (Method::GET, "/api/v1/classes".into(), None),
        (Method::GET, "/api/v1/classes/KM-2022-000001".into(), None),
        (
            Method::POST,
            "/api/v1/classes/KM-2022-000001/checks".into(),
            Some(
                json!({"kind": "pre_opening", "officer": "王", "at": "2022-06-01T01:00:00Z", "result": "passed"}),
            ),
        ),
        (
            Method::PUT,
            "/api/v1/registry/trainers/YN-T-0001".to_string(),
            Some(json!({"registration_no": "YN-T-0001", "name": "讲师", "status": "registered"})),
        ),
        (
            Method::GET,
            "/api/v1/registry/trainers/YN-T-0001".into(),
            None,
        ),
    ]
}

#[test]
fn every_route_but_health_answers_401_to_missing_expired_forged_and_future_tokens() {
    let w = World::new();
    // A class to address.
    w.call(
        Method::POST,
        "/api/v1/classes",
        Some(&institution()),
        Some(application(5, 1)),
        &[],
    );
    let t = now().timestamp();
    use web::auth::testing::{AUDIENCE, ED25519_KID, ISSUER};
    let forger = web::auth::Issuer::new([9; 32], ED25519_KID, ISSUER, AUDIENCE);
    let bad: Vec<(&str, Option<String>, &str)> = vec![
        ("missing", None, "unauthenticated"),
        (
            "expired",
            Some(token_at(Role::BureauAdmin, None, t - 7200, t - 3600, JWT)),
            "token_expired",
        ),
        (
            "forged",
            Some(token_at(Role::BureauAdmin, None, t, t + 3600, &forger)),
            "token_signature",
        ),
        (
            "not yet valid",
            Some(token_at(Role::BureauAdmin, None, t + 3600, t + 7200, JWT)),
            "token_not_yet_valid",
        ),
        ("garbage", Some("not.a.token".into()), "token_malformed"),
    ];
    let declared = app::class_opening::router().declared();
    assert_eq!(
        declared.len(),
        routes().len() + 1,
        "the table covers every route but health"
    );
    for (method, path, body) in routes() {
        for (case, tok, code) in &bad {
            let before = w.kv.dump();
            let (s, v, h) = w.call(method.clone(), &path, tok.as_deref(), body.clone(), &[]);
            assert_eq!(
                s,
                StatusCode::UNAUTHORIZED,
                "{method} {path} with a {case} token: {v}"
            );
            assert_eq!(v["code"], *code, "{method} {path} with a {case} token");
            assert_eq!(h["www-authenticate"], "Bearer");
            assert_eq!(
                w.kv.dump(),
                before,
                "{method} {path} {case} changed the store"
            );
        }
    }
}

#[test]
fn every_route_answers_403_to_roles_it_does_not_serve() {
    let w = World::new();
    w.call(
        Method::POST,
        "/api/v1/classes",
        Some(&institution()),
        Some(application(5, 1)),
        &[],
    );
    // Roles allowed per route, in the order of routes().
    let allowed: [&[Role]; 7] = [
        &[Role::Institution, Role::DistrictOfficer, Role::BureauAdmin],
        &[Role::Institution],
        &[Role::Institution, Role::DistrictOfficer, Role::BureauAdmin],
        &[Role::Institution, Role::DistrictOfficer, Role::BureauAdmin],
        &[Role::DistrictOfficer, Role::BureauAdmin],
        &[Role::DistrictOfficer, Role::BureauAdmin],
        &[Role::DistrictOfficer, Role::BureauAdmin],
    ];
    let all = [
        Role::Institution,
        Role::DistrictOfficer,
        Role::BureauAdmin,
        Role::Inspector,
        Role::Scheduler,
        Role::Trainee,
        Role::SocialSecurity,
    ];
    for ((method, path, body), allowed) in routes().into_iter().zip(allowed) {
        for role in all {
            let before = w.kv.dump();
            let (s, v, _) = w.call(
                method.clone(),
                &path,
                Some(&token(role, None)),
                body.clone(),
                &[],
            );
            if allowed.contains(&role) {
                assert_ne!(s, StatusCode::FORBIDDEN, "{method} {path} as {role:?}: {v}");
                assert_ne!(
                    s,
                    StatusCode::UNAUTHORIZED,
                    "{method} {path} as {role:?}: {v}"
                );
            } else {
                assert_eq!(s, StatusCode::FORBIDDEN, "{method} {path} as {role:?}: {v}");
                assert_eq!(
                    w.kv.dump(),
                    before,
                    "{method} {path} as {role:?} changed the store"
                );
            }
        }
    }
}

#[test]
fn another_institution_or_district_gets_403() {
    let w = World::new();
    let (_, v, _) = w.call(
        Method::POST,
        "/api/v1/classes",
        Some(&institution()),
        Some(application(5, 0)),
        &[],
    );
    let id = v["id"].as_str().unwrap();
    let other_inst = token(Role::Institution, Some(fixtures::OTHER_INSTITUTION));
    let other_officer = token(Role::DistrictOfficer, Some("530103"));
    let check = json!({"kind": "pre_opening", "officer": "王", "at": "2022-06-01T01:00:00Z", "result": "passed"});
    let cases: Vec<(&str, Method, String, &str, Option<Value>)> = vec![
        (
            "other institution reads",
            Method::GET,
            format!("/api/v1/classes/{id}"),
            &other_inst,
            None,
        ),
        (
            "other institution validates ours",
            Method::POST,
            "/api/v1/classes/validate".into(),
            &other_inst,
            Some(application(5, 0)),
        ),
        (
            "other institution files ours",
            Method::POST,
            "/api/v1/classes".into(),
            &other_inst,
            Some(application(5, 2)),
        ),
        (
            "other institution lists ours",
            Method::GET,
            format!("/api/v1/classes?institution={}", fixtures::INSTITUTION),
            &other_inst,
            None,
        ),
        (
            "other district reads",
            Method::GET,
            format!("/api/v1/classes/{id}"),
            &other_officer,
            None,
        ),
        (
            "other district checks",
            Method::POST,
            format!("/api/v1/classes/{id}/checks"),
            &other_officer,
            Some(check),
        ),
        (
            "other district lists ours",
            Method::GET,
            "/api/v1/classes?district=530102".into(),
            &other_officer,
            None,
        ),
    ];
    for (case, method, path, tok, body) in cases {
        let before = w.kv.dump();
        let (s, v, _) = w.call(method, &path, Some(tok), body, &[]);
        assert_eq!(s, StatusCode::FORBIDDEN, "{case}: {v}");
        assert_eq!(v["code"], "forbidden", "{case}");
        assert_eq!(w.kv.dump(), before, "{case} changed the store");
    }
}

#[test]
fn bad_input_gets_a_clear_answer_and_changes_nothing() {
    let w = World::new();
    let mut unknown = application(20, 0);
    unknown["colour"] = json!("blue");
    let mut wrong_type = application(20, 0);
    wrong_type["roster"][3]["group"] = json!(7);
    let mut bad_id = application(20, 0);
    bad_id["roster"][16]["id_number"] = json!("130402198207290622");
    let mut bad_mobile = application(20, 0);
    bad_mobile["roster"][5]["mobile"] = json!("12345");
    let mut bad_shape = application(20, 0);
    bad_shape["sessions"][2]["trainer"] = json!("nobody");
    let big = {
        let mut a = application(20, 0);
        a["title"] = json!("x".repeat(web::MAX_BODY_BYTES));
        Bytes::from(serde_json::to_vec(&a).unwrap())
    };
    let cases: Vec<(&str, Bytes, StatusCode, &str, Option<&str>)> = vec![
        (
            "broken JSON",
            Bytes::from_static(b"{\"institution\": "),
            StatusCode::BAD_REQUEST,
            "malformed_json",
            None,
        ),
        (
            "unknown field",
            Bytes::from(serde_json::to_vec(&unknown).unwrap()),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            Some("colour"),
        ),
        (
            "wrong type",
            Bytes::from(serde_json::to_vec(&wrong_type).unwrap()),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            Some("roster[3].group"),
        ),
        (
            "invalid ID on line 17",
            Bytes::from(serde_json::to_vec(&bad_id).unwrap()),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            Some("roster[16].id_number"),
        ),
        (
            "invalid mobile",
            Bytes::from(serde_json::to_vec(&bad_mobile).unwrap()),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            Some("roster[5].mobile"),
        ),
        (
            "inconsistent session",
            Bytes::from(serde_json::to_vec(&bad_shape).unwrap()),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            Some("sessions[2].trainer"),
        ),
        (
            "over 1 MiB",
            big,
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            None,
        ),
    ];
    for path in ["/api/v1/classes", "/api/v1/classes/validate"] {
        for (case, body, status, code, field) in &cases {
            let before = w.kv.dump();
            let (s, v, h) = w.call_raw(
                Method::POST,
                path,
                Some(&institution()),
                body.clone(),
                &[("idempotency-key", "k-1")],
            );
            assert_eq!(s, *status, "{path} {case}: {v}");
            assert_eq!(v["code"], *code, "{path} {case}");
            assert_eq!(h["content-type"], "application/problem+json");
            assert!(
                v["title"].as_str().is_some_and(|t| !t.is_empty())
                    && v["detail"].as_str().is_some_and(|t| !t.is_empty())
            );
            if let Some(field) = field {
                assert_eq!(v["errors"][0]["field"], *field, "{path} {case}: {v}");
            }
            assert!(
                !v.to_string().contains("130402198207290622"),
                "the problem repeats the ID number"
            );
            assert_eq!(w.kv.dump(), before, "{path} {case} changed the store");
        }
    }
}

#[test]
fn the_same_idempotency_key_gives_the_same_answer_and_one_class() {
    let w = World::new();
    let key = [("idempotency-key", "file-2022-06-01-a")];
    let (s1, v1, _) = w.call(
        Method::POST,
        "/api/v1/classes",
        Some(&institution()),
        Some(application(10, 0)),
        &key,
    );
    let (s2, v2, h2) = w.call(
        Method::POST,
        "/api/v1/classes",
        Some(&institution()),
        Some(application(10, 0)),
        &key,
    );
    assert_eq!((s1, s2), (StatusCode::CREATED, StatusCode::CREATED));
    assert_eq!(v1, v2);
    assert_eq!(h2["idempotent-replayed"], "true");
    let (s3, v3, _) = w.call(
        Method::POST,
        "/api/v1/classes",
        Some(&institution()),
        Some(application(11, 0)),
        &key,
    );
    assert_eq!(
        (s3, v3["code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("idempotency_key_reused")
        )
    );
    let (_, list, _) = w.call(
        Method::GET,
        "/api/v1/classes",
        Some(&institution()),
        None,
        &[],
    );
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
}

#[test]
fn the_same_application_filed_concurrently_from_eight_threads_makes_one_class() {
    let w = std::sync::Arc::new(World::new());
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let w = w.clone();
            std::thread::spawn(move || {
                let key = format!("race-{i}");
                let headers: Vec<(&str, &str)> = if i % 2 == 0 {
                    vec![("idempotency-key", key.as_str())]
                } else {
                    vec![]
                };
                let (s, v, _) = w.call(
                    Method::POST,
                    "/api/v1/classes",
                    Some(&institution()),
                    Some(application(40, 0)),
                    &headers,
                );
                (s, v["id"].as_str().unwrap().to_string())
            })
        })
        .collect();
    let results: Vec<(StatusCode, String)> =
        threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(
        results
            .iter()
            .filter(|(s, _)| *s == StatusCode::CREATED)
            .count(),
        1,
        "{results:?}"
    );
    assert!(results.iter().all(|(_, id)| id == &results[0].1));
    let (_, list, _) = w.call(
        Method::GET,
        "/api/v1/classes",
        Some(&token(Role::BureauAdmin, None)),
        None,
        &[],
    );
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
}

/// Records a check of `kind` dated `at` (CST) on class `id` at the world's clock.
fn record(w: &World, id: &str, kind: &str, result: &str, at: &str) -> (StatusCode, Value) {
    let body = json!({"kind": kind, "officer": "李科员", "at": format!("{at}+08:00"), "result": result, "notes": "现场核验"});
    let (s, v, _) = w.call(
        Method::POST,
        &format!("/api/v1/classes/{id}/checks"),
        Some(&w.token_now(Role::DistrictOfficer)),
        Some(body),
        &[],
    );
    (s, v)
}

fn file_one(w: &World) -> String {
    let (s, v, _) = w.call(
        Method::POST,
        "/api/v1/classes",
        Some(&institution()),
        Some(application(8, 0)),
        &[],
    );
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v["id"].as_str().unwrap().to_string()
}

#[test]
fn the_three_checks_move_a_class_through_its_life_in_order_and_refuse_moves_out_of_order() {
    // The fixture class runs 2022-06-13 to 2022-06-27 (CST).
    let w = World::new();
    let id = file_one(&w);
    w.set_clock("2022-06-10T09:00:00");
    let before = w.kv.dump();
    let (s, v) = record(&w, &id, "post_assessment", "passed", "2022-06-10T08:30:00");
    assert_eq!(
        (s, v["code"].as_str(), v["state"].as_str()),
        (
            StatusCode::CONFLICT,
            Some("class_state_conflict"),
            Some("approved")
        ),
        "CK-ORDER"
    );
    assert!(v["title"].as_str().unwrap().contains("已批准"));
    assert_eq!(w.kv.dump(), before);
    let (s, v) = record(&w, &id, "pre_opening", "failed", "2022-06-10T08:30:00");
    assert_eq!(
        (s, v["status"].as_str()),
        (StatusCode::OK, Some("approved"))
    );
    let (s, v) = record(&w, &id, "pre_opening", "passed", "2022-06-10T08:45:00");
    assert_eq!(
        (s, v["status"].as_str()),
        (StatusCode::OK, Some("in_training"))
    );
    // CK-ORDER: no assessment before a passed in-training check.
    w.set_clock("2022-06-28T09:00:00");
    let (s, v) = record(&w, &id, "post_assessment", "passed", "2022-06-28T08:00:00");
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::CONFLICT, Some("in_training_check_missing")),
        "CK-ORDER: {v}"
    );
    // The in-training check does not end training.
    w.set_clock("2022-06-20T15:00:00");
    let (s, v) = record(&w, &id, "in_training", "passed", "2022-06-20T14:00:00");
    assert_eq!(
        (s, v["status"].as_str()),
        (StatusCode::OK, Some("in_training")),
        "CK-ORDER: training goes on after the in-training check"
    );
    // After the last class day, the class has ended training (a phase of the calendar).
    w.set_clock("2022-06-28T09:00:00");
    let (_, v, _) = w.call(
        Method::GET,
        &format!("/api/v1/classes/{id}"),
        Some(&w.token_now(Role::DistrictOfficer)),
        None,
        &[],
    );
    assert_eq!(v["status"], "training_ended");
    assert_eq!(v["status_zh"], "培训已结束");
    let (s, v) = record(&w, &id, "post_assessment", "passed", "2022-06-28T08:00:00");
    assert_eq!(
        (s, v["status"].as_str()),
        (StatusCode::OK, Some("assessed")),
        "{v}"
    );
    let (_, v, _) = w.call(
        Method::GET,
        &format!("/api/v1/classes/{id}"),
        Some(&w.token_now(Role::DistrictOfficer)),
        None,
        &[],
    );
    assert_eq!(v["checks"].as_array().unwrap().len(), 4);
    assert_eq!(v["checks"][1]["kind_zh"], "开班前验证");
    let (_, found) = store::audit::verify::integrate_and_verify_all(
        &w.kv,
        &store::audit::tree::LogSigner::for_tests(),
    )
    .unwrap();
    assert!(found.is_empty(), "the audit log is intact: {found:?}");
}

/// Each case: the clock, the check, its `at`, and the bound it breaks (None: recorded).
#[test]
fn ck_window_checks_dated_outside_their_window_are_422_naming_at_and_the_bound() {
    let cases: &[(&str, &str, &str, &str, Option<&str>)] = &[
        // Pre-opening: at most 10 days before the first class day (2022-06-13).
        (
            "pre 10 days before",
            "2022-06-03T09:00:00",
            "2022-06-03T00:00:00",
            "pre_opening",
            None,
        ),
        (
            "pre 10 days and a minute before",
            "2022-06-03T09:00:00",
            "2022-06-02T23:59:00",
            "pre_opening",
            Some("window_start"),
        ),
        (
            "pre on the first day",
            "2022-06-13T09:00:00",
            "2022-06-13T00:00:00",
            "pre_opening",
            Some("window_end"),
        ),
        (
            "pre the minute before the first day",
            "2022-06-13T09:00:00",
            "2022-06-12T23:59:00",
            "pre_opening",
            None,
        ),
        // Never in the future; never more than 72 h back.
        (
            "pre a minute ahead",
            "2022-06-10T09:00:00",
            "2022-06-10T09:01:00",
            "pre_opening",
            Some("not_in_future"),
        ),
        (
            "pre 72 h back",
            "2022-06-10T09:00:00",
            "2022-06-07T09:00:00",
            "pre_opening",
            None,
        ),
        (
            "pre 72 h and a minute back",
            "2022-06-10T09:00:00",
            "2022-06-07T08:59:00",
            "pre_opening",
            Some("backdate_limit"),
        ),
    ];
    for (name, clock, at, kind, bound) in cases {
        let w = World::new();
        let id = file_one(&w);
        w.set_clock(clock);
        let before = w.kv.dump();
        let (s, v) = record(&w, &id, kind, "passed", at);
        match bound {
            None => assert_eq!(s, StatusCode::OK, "{name}: {v}"),
            Some(b) => {
                assert_eq!(
                    (
                        s,
                        v["code"].as_str(),
                        v["bound"].as_str(),
                        v["rule"].as_str()
                    ),
                    (
                        StatusCode::UNPROCESSABLE_ENTITY,
                        Some("check_out_of_window"),
                        Some(*b),
                        Some("CK-WINDOW")
                    ),
                    "{name}: {v}"
                );
                assert_eq!(v["errors"][0]["field"], "at", "{name}");
                assert_eq!(w.kv.dump(), before, "{name}: the store is unchanged");
            }
        }
    }
}

#[test]
fn ck_window_in_training_and_post_training_checks_keep_to_the_class_days() {
    let w = World::new();
    let id = file_one(&w);
    w.set_clock("2022-06-12T20:00:00");
    assert_eq!(
        record(&w, &id, "pre_opening", "passed", "2022-06-12T19:00:00").0,
        StatusCode::OK
    );
    // In-training: the eve is outside, the first class day inside.
    w.set_clock("2022-06-13T00:30:00");
    let (s, v) = record(&w, &id, "in_training", "passed", "2022-06-12T23:59:00");
    assert_eq!(
        (s, v["bound"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("window_start"))
    );
    assert_eq!(
        record(&w, &id, "in_training", "passed", "2022-06-13T00:00:00").0,
        StatusCode::OK
    );
    // The day after the last class day (2022-06-27) is outside.
    w.set_clock("2022-06-28T00:30:00");
    let (s, v) = record(&w, &id, "in_training", "passed", "2022-06-28T00:00:00");
    assert_eq!(
        (s, v["bound"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("window_end"))
    );
    assert_eq!(
        record(&w, &id, "in_training", "passed", "2022-06-27T23:59:00").0,
        StatusCode::OK
    );
    // Post-training: a minute before the last class day is outside; the day itself inside.
    w.set_clock("2022-06-27T00:30:00");
    let (s, v) = record(&w, &id, "post_assessment", "passed", "2022-06-26T23:59:00");
    assert_eq!(
        (s, v["bound"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("window_start"))
    );
    let (s, v) = record(&w, &id, "post_assessment", "passed", "2022-06-27T00:00:00");
    assert_eq!(
        (s, v["status"].as_str()),
        (StatusCode::OK, Some("assessed")),
        "{v}"
    );
}

#[test]
fn ck_window_an_officer_cannot_record_all_three_checks_on_the_eve_of_the_class() {
    // The attack of issue 12: the three checks back-dated in minutes before the class starts.
    let w = World::new();
    let id = file_one(&w);
    w.set_clock("2022-06-12T20:00:00");
    assert_eq!(
        record(&w, &id, "pre_opening", "passed", "2022-06-12T19:00:00").0,
        StatusCode::OK
    );
    let after_pre = w.kv.dump();
    for (kind, at, bound) in [
        ("in_training", "2022-06-15T10:00:00", "not_in_future"),
        ("in_training", "2022-06-12T19:30:00", "window_start"),
    ] {
        let (s, v) = record(&w, &id, kind, "passed", at);
        assert_eq!(
            (s, v["bound"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some(bound)),
            "{kind} {at}"
        );
    }
    let (s, v) = record(&w, &id, "post_assessment", "passed", "2022-06-12T19:30:00");
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::CONFLICT, Some("in_training_check_missing"))
    );
    assert_eq!(
        w.kv.dump(),
        after_pre,
        "nothing but the pre-opening check is recorded"
    );
}

#[test]
fn lists_page_with_a_cursor_and_filter_by_status_district_and_institution() {
    let w = World::new();
    for salt in 0..3 {
        let (s, v, _) = w.call(
            Method::POST,
            "/api/v1/classes",
            Some(&institution()),
            Some(application(5, salt)),
            &[],
        );
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    let admin = token(Role::BureauAdmin, None);
    let (s, first, _) = w.call(
        Method::GET,
        "/api/v1/classes?limit=2",
        Some(&admin),
        None,
        &[],
    );
    assert_eq!(s, StatusCode::OK);
    assert_eq!(first["items"].as_array().unwrap().len(), 2);
    let cursor = first["next_cursor"].as_str().unwrap();
    let (_, second, _) = w.call(
        Method::GET,
        &format!("/api/v1/classes?limit=2&cursor={cursor}"),
        Some(&admin),
        None,
        &[],
    );
    assert_eq!(second["items"].as_array().unwrap().len(), 1);
    assert!(second["next_cursor"].is_null());
    let other = token(Role::Institution, Some(fixtures::OTHER_INSTITUTION));
    for (case, query, tok, want) in [
        (
            "district and status",
            "?district=530102&status=approved",
            &admin,
            3,
        ),
        ("no class in training yet", "?status=in_training", &admin, 0),
        ("another district", "?district=530103", &admin, 0),
        ("another institution sees none of ours", "", &other, 0),
    ] {
        let (s, v, _) = w.call(
            Method::GET,
            &format!("/api/v1/classes{query}"),
            Some(tok),
            None,
            &[],
        );
        assert_eq!(s, StatusCode::OK, "{case}: {v}");
        assert_eq!(v["items"].as_array().unwrap().len(), want, "{case}");
    }
    for bad in [
        "/api/v1/classes?status=lost",
        "/api/v1/classes?district=110101",
        "/api/v1/classes?limit=0",
        "/api/v1/classes?cursor=zzz",
        "/api/v1/classes?colour=red",
    ] {
        let (s, _, _) = w.call(Method::GET, bad, Some(&admin), None, &[]);
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }
}

#[test]
fn registries_create_replace_read_and_keep_districts_apart() {
    let w = World::new();
    let admin = token(Role::BureauAdmin, None);
    let cw = json!({"id": "CW-2022-01", "title": "养老护理基础理论", "status": "pending"});
    let (s, _, _) = w.call(
        Method::PUT,
        "/api/v1/registry/courseware/CW-2022-01",
        Some(&admin),
        Some(cw.clone()),
        &[],
    );
    assert_eq!(s, StatusCode::CREATED);
    let mut approved = cw.clone();
    approved["status"] = json!("approved");
    let (s, _, _) = w.call(
        Method::PUT,
        "/api/v1/registry/courseware/CW-2022-01",
        Some(&admin),
        Some(approved),
        &[],
    );
    assert_eq!(s, StatusCode::OK);
    let (s, v, _) = w.call(
        Method::GET,
        "/api/v1/registry/courseware/CW-2022-01",
        Some(&admin),
        None,
        &[],
    );
    assert_eq!(
        (s, v["status"].as_str()),
        (StatusCode::OK, Some("approved"))
    );
    let (s, _, _) = w.call(
        Method::PUT,
        "/api/v1/registry/courseware/CW-OTHER",
        Some(&admin),
        Some(cw),
        &[],
    );
    assert_eq!(
        s,
        StatusCode::UNPROCESSABLE_ENTITY,
        "path and body ids differ"
    );
    let (s, _, _) = w.call(
        Method::GET,
        "/api/v1/registry/courseware/CW-NONE",
        Some(&admin),
        None,
        &[],
    );
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _, _) = w.call(
        Method::GET,
        "/api/v1/registry/planets/x",
        Some(&admin),
        None,
        &[],
    );
    assert_eq!(s, StatusCode::NOT_FOUND);
    let mut foreign = serde_json::to_value(fixtures::institution()).unwrap();
    foreign["filed_districts"] = json!(["530103"]);
    let (s, _, _) = w.call(
        Method::PUT,
        &format!("/api/v1/registry/institutions/{}", fixtures::INSTITUTION),
        Some(&token(Role::DistrictOfficer, Some("530102"))),
        Some(foreign),
        &[],
    );
    assert_eq!(
        s,
        StatusCode::FORBIDDEN,
        "an officer files institutions with their own district only"
    );
    let bad_isbn = json!({"isbn": "978-7-111-21382-7", "title": "错书"});
    let (s, _, _) = w.call(
        Method::PUT,
        "/api/v1/registry/textbooks/9787111213827",
        Some(&admin),
        Some(bad_isbn),
        &[],
    );
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
}

#[test]
fn a_suspended_institution_is_refused_through_the_registry() {
    let w = World::new();
    let admin = token(Role::BureauAdmin, None);
    let mut inst = serde_json::to_value(fixtures::institution()).unwrap();
    inst["status"] = json!("suspended");
    w.call(
        Method::PUT,
        &format!("/api/v1/registry/institutions/{}", fixtures::INSTITUTION),
        Some(&admin),
        Some(inst),
        &[],
    );
    let (_, v, _) = w.call(
        Method::POST,
        "/api/v1/classes/validate",
        Some(&institution()),
        Some(application(5, 0)),
        &[],
    );
    assert_eq!(v["decision"]["outcome"], "rejected");
    assert!(
        v["decision"]["blocking_rules"]
            .as_array()
            .unwrap()
            .contains(&json!("CO-INST"))
    );
}

#[test]
fn a_trainee_already_in_an_overlapping_class_blocks_the_second_filing() {
    let w = World::new();
    let (s, _, _) = w.call(
        Method::POST,
        "/api/v1/classes",
        Some(&institution()),
        Some(application(10, 0)),
        &[],
    );
    assert_eq!(s, StatusCode::CREATED);
    // Same people, other trainers and site (salt 1), same dates.
    let mut second = application(10, 1);
    second["roster"] = application(10, 0)["roster"].clone();
    let (_, v, _) = w.call(
        Method::POST,
        "/api/v1/classes/validate",
        Some(&institution()),
        Some(second),
        &[],
    );
    let blocking = v["decision"]["blocking_rules"].as_array().unwrap();
    assert!(blocking.contains(&json!("CO-ROSTER")), "{v}");
    // Same trainers and site, other people (salt 0 schedule, salt 2 roster): CO-CLASH.
    let mut third = application(10, 0);
    third["roster"] = application(10, 2)["roster"].clone();
    third["title"] = json!("另一个班");
    let (_, v, _) = w.call(
        Method::POST,
        "/api/v1/classes/validate",
        Some(&institution()),
        Some(third),
        &[],
    );
    assert!(
        v["decision"]["blocking_rules"]
            .as_array()
            .unwrap()
            .contains(&json!("CO-CLASH")),
        "{v}"
    );
}

#[test]
fn unknown_routes_and_methods_are_problems() {
    let w = World::new();
    let (s, v, _) = w.call(
        Method::GET,
        "/api/v1/nothing",
        Some(&institution()),
        None,
        &[],
    );
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let (s, v, _) = w.call(
        Method::DELETE,
        "/api/v1/classes",
        Some(&institution()),
        None,
        &[],
    );
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::METHOD_NOT_ALLOWED, Some("method_not_allowed"))
    );
}

/// Percent-encodes `text` for a query string.
fn query_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Every page of `GET /api/v1/audit/verify` against `checkpoint`: the discrepancies found.
fn verify_all(w: &World, checkpoint: &str) -> Vec<serde_json::Value> {
    let admin = token(Role::BureauAdmin, None);
    let mut found = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!(
            "/api/v1/audit/verify?pages=1&checkpoint={}",
            query_encode(checkpoint)
        );
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let (s, v, _) = w.call(Method::GET, &path, Some(&admin), None, &[]);
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(
            v["intact"].as_bool(),
            Some(v["discrepancies"].as_array().unwrap().is_empty())
        );
        found.extend(v["discrepancies"].as_array().unwrap().iter().cloned());
        match v["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return found,
        }
    }
}

#[test]
fn the_audit_log_is_integrated_signed_and_verified_and_a_changed_byte_is_named_by_event() {
    let w = World::new();
    let (_, v, _) = w.call(
        Method::POST,
        "/api/v1/classes",
        Some(&institution()),
        Some(application(5, 0)),
        &[],
    );
    let id = v["id"].as_str().unwrap().to_string();
    let admin = token(Role::BureauAdmin, None);
    // No checkpoint before the first integration.
    let (s, v, _) = w.call(
        Method::GET,
        "/api/v1/audit/checkpoint",
        Some(&admin),
        None,
        &[],
    );
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("audit_log_empty"))
    );
    let (s, step, _) = w.call(
        Method::POST,
        "/api/v1/audit/integrate",
        Some(&token(Role::Scheduler, None)),
        None,
        &[],
    );
    assert_eq!(s, StatusCode::OK, "{step}");
    let size = step["size"].as_u64().unwrap();
    assert!(
        size >= 10,
        "registry puts and the filing are audited: {step}"
    );
    assert_eq!(
        (step["added"].as_u64(), step["pending"].as_u64()),
        (Some(size), Some(0))
    );
    // The checkpoint is a signed note the served public key opens.
    let (s, note) = w.text("/api/v1/audit/checkpoint", &institution());
    assert_eq!(s, StatusCode::OK);
    let (_, key, _) = w.call(
        Method::GET,
        "/api/v1/audit/key",
        Some(&institution()),
        None,
        &[],
    );
    let public: [u8; 32] = B64
        .decode(key["public_key"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let public = ed25519_dalek::VerifyingKey::from_bytes(&public).unwrap();
    let cp = store::checkpoint::open(&note, key["key_name"].as_str().unwrap(), &public).unwrap();
    assert_eq!(
        (cp.size, cp.origin.as_str()),
        (size, app::audit::DEFAULT_ORIGIN)
    );
    assert!(
        key["verifier_key"]
            .as_str()
            .unwrap()
            .starts_with("vocational-training-audit+")
    );
    assert!(verify_all(&w, &note).is_empty(), "intact");
    // An inclusion proof of event 3 leads to the checkpoint's root.
    let (s, p, _) = w.call(
        Method::GET,
        &format!("/api/v1/audit/proofs/inclusion?seq=3&size={size}"),
        Some(&admin),
        None,
        &[],
    );
    assert_eq!(s, StatusCode::OK, "{p}");
    let leaf = store::tlog::leaf_hash(&B64.decode(p["leaf_data"].as_str().unwrap()).unwrap());
    let proof: Vec<store::tlog::Hash> = p["proof"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| B64.decode(h.as_str().unwrap()).unwrap().try_into().unwrap())
        .collect();
    assert!(store::tlog::verify_inclusion(
        &leaf, 2, size, &proof, &cp.root
    ));
    // Change one byte of event 5, behind the component's back.
    let key5 = store::keys::audit_event(5);
    let original = store::KeyValue::get(&w.kv, &key5).unwrap().unwrap();
    let mut bytes = original.clone();
    let at = bytes.iter().position(|b| *b == b'"').unwrap() + 1;
    bytes[at] = if bytes[at] == b'a' { b'b' } else { b'a' };
    store::KeyValue::set(&w.kv, &key5, &bytes).unwrap();
    let found = verify_all(&w, &note);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        (
            found[0]["kind"].as_str(),
            found[0]["seq"].as_u64(),
            found[0]["key"].as_str()
        ),
        (Some("event_changed"), Some(5), Some(key5.as_str()))
    );
    store::KeyValue::set(&w.kv, &key5, &original).unwrap();
    assert!(verify_all(&w, &note).is_empty(), "restored");
    // An entity's history.
    let (s, h, _) = w.call(
        Method::GET,
        &format!("/api/v1/audit?entity=class:{id}"),
        Some(&admin),
        None,
        &[],
    );
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h["events"][0]["action"], "class.filed");
    let (s, _, _) = w.call(
        Method::GET,
        &format!("/api/v1/audit?entity=class:{id}"),
        Some(&token(Role::DistrictOfficer, Some("530103"))),
        None,
        &[],
    );
    assert_eq!(s, StatusCode::FORBIDDEN);
    for (path, tok) in [
        ("/api/v1/audit/verify", institution()),
        (
            "/api/v1/audit/proofs/inclusion?seq=1",
            token(Role::DistrictOfficer, None),
        ),
    ] {
        let (s, _, _) = w.call(Method::GET, path, Some(&tok), None, &[]);
        assert_eq!(s, StatusCode::FORBIDDEN, "{path}");
    }
}

#[test]
fn a_checkpoint_not_signed_by_the_log_key_or_a_bad_proof_request_is_refused_and_named() {
    let w = World::new();
    w.call(
        Method::POST,
        "/api/v1/classes",
        Some(&institution()),
        Some(application(5, 0)),
        &[],
    );
    let admin = token(Role::BureauAdmin, None);
    w.call(
        Method::POST,
        "/api/v1/audit/integrate",
        Some(&admin),
        None,
        &[],
    );
    let (_, note) = w.text("/api/v1/audit/checkpoint", &admin);
    // Signed by another key under the log's name.
    let forged = store::checkpoint::sign(
        &store::checkpoint::open(
            &note,
            app::audit::DEFAULT_KEY_NAME,
            &store::audit::tree::LogSigner::from_secret(
                support::AUDIT_KEY,
                app::audit::DEFAULT_ORIGIN,
                app::audit::DEFAULT_KEY_NAME,
            )
            .unwrap()
            .public()
            .public,
        )
        .unwrap(),
        app::audit::DEFAULT_KEY_NAME,
        &ed25519_dalek::SigningKey::from_bytes(&[3u8; 32]),
    );
    let shrunk = {
        let mut lines: Vec<String> = note.lines().map(str::to_string).collect();
        lines[1] = "3".into();
        lines.join("\n") + "\n"
    };
    for bad in [shrunk.as_str(), "not a note", forged.as_str()] {
        let (s, v, _) = w.call(
            Method::GET,
            &format!("/api/v1/audit/verify?checkpoint={}", query_encode(bad)),
            Some(&admin),
            None,
            &[],
        );
        assert_eq!(
            (s, v["errors"][0]["field"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("checkpoint")),
            "{v}"
        );
    }
    for (path, field) in [
        ("/api/v1/audit/proofs/inclusion?seq=0", "seq"),
        ("/api/v1/audit/proofs/inclusion?seq=999999", "seq"),
        ("/api/v1/audit/proofs/inclusion", "seq"),
        ("/api/v1/audit/proofs/consistency?from=5&to=2", "from"),
        ("/api/v1/audit/proofs/consistency?from=1&to=999999", "to"),
        ("/api/v1/audit/verify?cursor=log.x", "cursor"),
        ("/api/v1/audit/verify?pages=0", "pages"),
        ("/api/v1/audit/verify?pages=17", "pages"),
        ("/api/v1/audit/verify?from=1", "from"),
    ] {
        let (s, v, _) = w.call(Method::GET, path, Some(&admin), None, &[]);
        assert_eq!(
            (s, v["errors"][0]["field"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some(field)),
            "{path}: {v}"
        );
    }
}

#[test]
fn without_its_signing_key_the_log_neither_integrates_nor_verifies_and_says_why() {
    let mut w = World::new();
    w.secrets.extra.clear();
    let before = w.kv.dump();
    let admin = token(Role::BureauAdmin, None);
    for (method, path) in [
        (Method::POST, "/api/v1/audit/integrate"),
        (Method::GET, "/api/v1/audit/verify"),
        (Method::GET, "/api/v1/audit/key"),
    ] {
        let (s, v, _) = w.call(method, path, Some(&admin), None, &[]);
        assert_eq!(
            (s, v["code"].as_str()),
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Some("audit_key_not_configured")
            ),
            "{path}"
        );
    }
    assert_eq!(w.kv.dump(), before, "nothing written");
}

#[test]
fn filing_a_60_trainee_class_stays_within_its_key_value_call_budget() {
    let w = World::new();
    let before = w.kv.calls();
    let (s, v, _) = w.call(
        Method::POST,
        "/api/v1/classes",
        Some(&institution()),
        Some(application(60, 0)),
        &[],
    );
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let calls = w.kv.calls() - before;
    println!("filing 60 trainees: {calls} key-value calls");
    assert!(calls <= 540, "{calls} key-value calls");
}

#[test]
fn an_idempotency_key_reused_by_a_second_institution_is_a_fresh_request_for_it() {
    let w = World::new();
    let key = [("idempotency-key", "shared-key-1")];
    let (s1, v1, _) = w.call(
        Method::POST,
        "/api/v1/classes",
        Some(&institution()),
        Some(application(10, 0)),
        &key,
    );
    assert_eq!(s1, StatusCode::CREATED, "{v1}");
    // The second institution's token has the same `sub`: before, it replayed
    // the first institution's class. Now its request runs as its own and the
    // first institution's application is refused, with nothing kept.
    let other = token(Role::Institution, Some(fixtures::OTHER_INSTITUTION));
    let before = w.kv.dump();
    let (s2, v2, h2) = w.call(
        Method::POST,
        "/api/v1/classes",
        Some(&other),
        Some(application(10, 0)),
        &key,
    );
    assert_eq!(s2, StatusCode::FORBIDDEN, "{v2}");
    assert!(h2.get("idempotent-replayed").is_none());
    assert!(!v2.to_string().contains(v1["id"].as_str().unwrap()));
    assert_eq!(w.kv.dump(), before, "a refused request changed the store");
    // The first institution still gets its own answer replayed.
    let (s3, v3, h3) = w.call(
        Method::POST,
        "/api/v1/classes",
        Some(&institution()),
        Some(application(10, 0)),
        &key,
    );
    assert_eq!((s3, &v3), (StatusCode::CREATED, &v1));
    assert_eq!(h3["idempotent-replayed"], "true");
}

#[test]
fn a_replay_attempted_by_a_caller_without_the_right_is_refused_before_the_replay() {
    let w = World::new();
    let id = file_one(&w);
    w.set_clock("2022-06-10T09:00:00");
    let key = [("idempotency-key", "check-key-1")];
    let path = format!("/api/v1/classes/{id}/checks");
    let body = json!({"kind": "pre_opening", "officer": "李科员", "at": "2022-06-10T08:30:00+08:00", "result": "passed"});
    let t = w.now.lock().unwrap().timestamp();
    let officer =
        |district: &str| token_at(Role::DistrictOfficer, Some(district), t, t + 3600, JWT);
    let (s1, v1, _) = w.call(
        Method::POST,
        &path,
        Some(&officer("530102")),
        Some(body.clone()),
        &key,
    );
    assert!(s1.is_success(), "{s1} {v1}");
    let before = w.kv.dump();
    // An officer of another district (same `sub`) and an inspector send the
    // same request with the same key: neither gets the answer replayed.
    for who in [officer("530103"), w.token_now(Role::Inspector)] {
        let (s, v, h) = w.call(Method::POST, &path, Some(&who), Some(body.clone()), &key);
        assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
        assert!(h.get("idempotent-replayed").is_none());
        assert_eq!(w.kv.dump(), before, "a refused request changed the store");
    }
}

#[test]
fn reg_district_an_officer_adds_or_removes_only_their_own_district_and_never_a_status() {
    let w = World::new();
    let admin = token(Role::BureauAdmin, None);
    let put = |who: &str, path: &str, body: &Value| {
        w.call(Method::PUT, path, Some(who), Some(body.clone()), &[])
            .0
    };
    let inst = format!("/api/v1/registry/institutions/{}", fixtures::INSTITUTION);
    let other = format!(
        "/api/v1/registry/institutions/{}",
        fixtures::OTHER_INSTITUTION
    );
    let o102 = token(Role::DistrictOfficer, Some("530102"));
    let o103 = token(Role::DistrictOfficer, Some("530103"));
    let base = serde_json::to_value(fixtures::institution()).unwrap();
    // Refused, store unchanged: another district added or removed, the name
    // changed, the status changed (even to un-blacklist), by an officer.
    let mut refused = Vec::new();
    let mut v = base.clone();
    v["filed_districts"] = json!(["530102", "530111"]);
    refused.push((o102.clone(), inst.clone(), v));
    let mut v = base.clone();
    v["filed_districts"] = json!([]);
    refused.push((o103.clone(), inst.clone(), v));
    let mut v = base.clone();
    v["name"] = json!("改名");
    refused.push((o102.clone(), inst.clone(), v));
    let mut v = base.clone();
    v["status"] = json!("suspended");
    refused.push((o102.clone(), inst.clone(), v));
    for (who, path, body) in &refused {
        let before = w.kv.dump();
        assert_eq!(put(who, path, body), StatusCode::FORBIDDEN, "{body}");
        assert_eq!(w.kv.dump(), before, "a refused write changed the store");
    }
    // The bureau blacklists; the officer whose district is on it cannot lift it.
    let mut black = base.clone();
    black["status"] = json!("blacklisted");
    assert_eq!(put(&admin, &inst, &black), StatusCode::OK);
    let before = w.kv.dump();
    assert_eq!(put(&o102, &inst, &base), StatusCode::FORBIDDEN);
    assert_eq!(w.kv.dump(), before);
    assert_eq!(put(&admin, &inst, &base), StatusCode::OK);
    // Allowed: an officer adds and removes their own district, nothing else.
    let mut added = base.clone();
    added["filed_districts"] = json!(["530102", "530103"]);
    assert_eq!(put(&o103, &inst, &added), StatusCode::OK);
    assert_eq!(put(&o103, &inst, &base), StatusCode::OK);
    let mut o = serde_json::to_value(fixtures::institution()).unwrap();
    o["credit_code"] = json!(fixtures::OTHER_INSTITUTION);
    o["filed_districts"] = json!(["530103", "530102"]);
    assert_eq!(put(&o102, &other, &o), StatusCode::OK);
    // Every accepted write is audited with a before and an after.
    let (events, _) = store::audit::history(
        &w.kv,
        &format!("institution:{}", fixtures::INSTITUTION),
        Default::default(),
        100,
    )
    .unwrap();
    // Seeding, blacklist, lift, add, remove: five writes, the refused ones absent.
    assert_eq!(events.len(), 5);
    for e in &events[1..] {
        assert!(e.change.before.is_some() && e.change.after.is_some());
        assert_ne!(e.change.before, e.change.after);
    }
}

#[test]
fn reg_status_trainer_and_courseware_status_changes_are_the_bureaus() {
    let w = World::new();
    let admin = token(Role::BureauAdmin, None);
    let officer = token(Role::DistrictOfficer, Some("530102"));
    let put = |who: &str, path: &str, body: Value| {
        w.call(Method::PUT, path, Some(who), Some(body), &[]).0
    };
    let trainer = "/api/v1/registry/trainers/YN-T-0001";
    let cw = "/api/v1/registry/courseware/CW-2022-09";
    for (path, body) in [
        (
            trainer,
            json!({"registration_no": "YN-T-0001", "name": "讲师", "status": "revoked"}),
        ),
        (
            cw,
            json!({"id": "CW-2022-09", "title": "课件", "status": "approved"}),
        ),
    ] {
        let before = w.kv.dump();
        assert_eq!(
            put(&officer, path, body.clone()),
            StatusCode::FORBIDDEN,
            "{path}"
        );
        assert_eq!(w.kv.dump(), before, "a refused write changed the store");
        assert!(put(&admin, path, body).is_success(), "the bureau may");
    }
    // An officer may still correct a trainer's name without touching the status.
    assert_eq!(
        put(
            &officer,
            trainer,
            json!({"registration_no": "YN-T-0001", "name": "讲师甲", "status": "revoked"})
        ),
        StatusCode::OK
    );
    assert_eq!(
        put(
            &officer,
            "/api/v1/registry/courseware/CW-2022-10",
            json!({"id": "CW-2022-10", "title": "课件", "status": "pending"})
        ),
        StatusCode::CREATED
    );
}

#[test]
fn validate_tells_an_institution_of_an_overlapping_class_elsewhere_without_naming_it() {
    let w = World::new();
    let (s, first, _) = w.call(
        Method::POST,
        "/api/v1/classes",
        Some(&institution()),
        Some(application(10, 0)),
        &[],
    );
    assert_eq!(s, StatusCode::CREATED);
    let class_id = first["id"].as_str().unwrap().to_string();
    // The other institution, in its own district, validates the same people.
    let mut second = application(10, 1);
    second["roster"] = application(10, 0)["roster"].clone();
    second["institution"] = json!(fixtures::OTHER_INSTITUTION);
    second["district"] = json!("530103");
    let roster_findings = |v: &Value| {
        v["decision"]["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["rule"] == "CO-ROSTER" && f["passed"] == false)
            .cloned()
            .collect::<Vec<_>>()
    };
    let other = token(Role::Institution, Some(fixtures::OTHER_INSTITUTION));
    let (s, v, _) = w.call(
        Method::POST,
        "/api/v1/classes/validate",
        Some(&other),
        Some(second.clone()),
        &[],
    );
    assert_eq!(s, StatusCode::OK, "{v}");
    let found = roster_findings(&v);
    assert_eq!(found.len(), 10, "{v}");
    for f in &found {
        let text = f.to_string();
        assert!(text.contains("overlapping"), "{text}");
        for secret in [
            class_id.as_str(),
            fixtures::INSTITUTION,
            "2022-06-13",
            "2022-06-27",
        ] {
            assert!(
                !text.contains(secret),
                "the institution sees {secret}: {text}"
            );
        }
    }
    // The officer of that district sees which class it is.
    let (s, v, _) = w.call(
        Method::POST,
        "/api/v1/classes/validate",
        Some(&token(Role::DistrictOfficer, Some("530103"))),
        Some(second),
        &[],
    );
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(
        roster_findings(&v)
            .iter()
            .all(|f| f.to_string().contains(&class_id))
    );
}

/// Issue 16 item 5: an SYB class names its project; CO-SIZE's 30 holds for it
/// whatever kind is declared, and a declared kind that contradicts the
/// project is a block showing both values.
#[test]
fn an_syb_class_files_with_its_project_and_is_held_to_30_trainees_and_its_own_kind() {
    let w = World::new();
    let syb = |n: usize, salt: u32| {
        let (mut app, _) = fixtures::valid_project_class("syb", n);
        app.roster = fixtures::roster(n, salt);
        for (i, s) in app.sessions.iter_mut().enumerate() {
            s.trainer = format!("YN-T-{:04}", salt * 2 + 1 + (i as u32 % 2));
            s.site = Some(format!("昆明市五华区教场中路 8 号 {} 室", 301 + salt));
        }
        for (i, t) in app.trainers.iter_mut().enumerate() {
            t.registration_no = format!("YN-T-{:04}", salt * 2 + 1 + i as u32);
        }
        serde_json::to_value(app).unwrap()
    };
    let (s, v, _) = w.call(
        Method::POST,
        "/api/v1/classes",
        Some(&institution()),
        Some(syb(30, 0)),
        &[],
    );
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(
        v["status"], "approved",
        "{}",
        v["decision"]["blocking_rules"]
    );
    assert_eq!(v["application"]["project"], "syb");
    assert!(v["application"]["occupation"].is_null());
    let (s, v, _) = w.call(
        Method::POST,
        "/api/v1/classes",
        Some(&institution()),
        Some(syb(31, 1)),
        &[],
    );
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["decision"]["blocking_rules"], json!(["CO-SIZE"]));
    let mut skills = syb(20, 2);
    skills["kind"] = json!("skills");
    let (_, v, _) = w.call(
        Method::POST,
        "/api/v1/classes/validate",
        Some(&institution()),
        Some(skills),
        &[],
    );
    let kind: Vec<&Value> = v["decision"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "CO-KIND" && f["passed"] == false)
        .collect();
    assert_eq!(kind.len(), 1, "{v}");
    assert_eq!(kind[0]["comparison"], "kind: skills ≠ entrepreneurship");
    assert_eq!(
        (kind[0]["observed"].as_str(), kind[0]["limit"].as_str()),
        (Some("skills"), Some("entrepreneurship"))
    );
    assert_eq!(kind[0]["field"], "kind");
    // Neither an occupation nor a project: 422 naming the field.
    let mut neither = syb(5, 3);
    neither.as_object_mut().unwrap().remove("project");
    let (s, v, _) = w.call(
        Method::POST,
        "/api/v1/classes/validate",
        Some(&institution()),
        Some(neither),
        &[],
    );
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["errors"][0]["field"], "occupation");
}

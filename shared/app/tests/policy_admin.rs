//! The bureau runs its own policy (issue 16, items 1 and 2): the policy data
//! as versioned records, changed through the admin routes by the bureau only,
//! every change audited, decisions naming the version they read. On the
//! in-memory store, through the class-opening component's handler.

#![allow(clippy::result_large_err)]

mod support;

use bytes::Bytes;
use chrono::{DateTime, Duration, NaiveTime, Utc};
use http::{Method, StatusCode};
use policy::class_opening::{Mode, Session};
use policy::fixtures;
use policy::reference::Topic;
use serde_json::{Value, json};
use store::MemoryStore;
use support::{JWT, secrets};
use web::auth::{Role, mint};
use web::{Env, Secrets};

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
    /// A store with the fixtures' registry entries, the clock on 2022-12-01 10:00 CST.
    fn new() -> Self {
        let w = Self {
            kv: MemoryStore::new(),
            secrets: secrets(),
            now: std::sync::Mutex::new(cst("2022-12-01T10:00:00")),
        };
        w.seed();
        w
    }

    fn set_clock(&self, at: &str) {
        *self.now.lock().unwrap() = cst(at);
    }

    fn token(&self, role: Role) -> String {
        let t = self.now.lock().unwrap().timestamp();
        mint(&support::claims(role, None, t - 60, t + 3600), JWT)
    }

    fn call(
        &self,
        method: Method,
        path: &str,
        role: Role,
        body: Option<Value>,
    ) -> (StatusCode, Value, http::HeaderMap) {
        let token = self.token(role);
        let bytes = body
            .map(|b| serde_json::to_vec(&b).unwrap())
            .unwrap_or_default();
        let req = support::request(method, path, Some(&token), Some(Bytes::from(bytes)), &[]);
        let env = Env {
            kv: &self.kv,
            secrets: &self.secrets,
            now: *self.now.lock().unwrap(),
            random: &no_random,
        };
        // Spin sends /api/v1/admin/policy… to the policy-admin component.
        let res = if path.starts_with("/api/v1/admin/policy") {
            app::policy_admin::handle(&env, &req)
        } else if path.starts_with("/api/v1/audit") {
            app::audit::handle(&env, &req)
        } else {
            app::class_opening::handle(&env, &req)
        };
        let a = support::answer(res);
        (a.status, a.body, a.headers)
    }

    fn seed(&self) {
        let put = |path: String, body: Value| {
            let (s, v, _) = self.call(Method::PUT, &path, Role::BureauAdmin, Some(body));
            assert!(s.is_success(), "seeding {path}: {s} {v}");
        };
        put(
            format!("/api/v1/registry/institutions/{}", fixtures::INSTITUTION),
            serde_json::to_value(fixtures::institution()).unwrap(),
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

/// The 养老护理员 level-5 fixture class of 20 trainees starting on `start`,
/// with one more session of 5 hours on its 16th day: 125 class hours.
fn class_of_125_hours(start: &str, salt: u32) -> Value {
    let start = start.parse().unwrap();
    let (mut app, _) = fixtures::valid_class_from(start, start, 20, salt);
    let last = app.sessions.last().unwrap().clone();
    app.sessions.push(Session {
        date: last.date + Duration::days(1),
        start: NaiveTime::from_hms_opt(8, 30, 0).unwrap(),
        end: NaiveTime::from_hms_opt(12, 30, 0).unwrap(),
        class_hours: 5,
        mode: Mode::Offline,
        topics: vec![Topic::Occupation],
        ..last
    });
    app.end_date += Duration::days(1);
    assert_eq!(app.scheduled_hours(), 125);
    serde_json::to_value(app).unwrap()
}

fn co_hours(decision: &Value) -> &Value {
    decision["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "CO-HOURS")
        .expect("CO-HOURS is checked")
}

fn raise_hours(
    w: &World,
    value: i64,
    retroactive: Option<bool>,
) -> (StatusCode, Value, http::HeaderMap) {
    let mut body = json!({
        "since": "2023-01-01",
        "value": value,
        "reference": "市人社局关于调整补贴性培训最低课时的通知（测试）",
        "reason": "提高培训质量",
    });
    if let Some(r) = retroactive {
        body["retroactive"] = json!(r);
    }
    w.call(
        Method::POST,
        "/api/v1/admin/policy/parameters/co_min_class_hours/values",
        Role::BureauAdmin,
        Some(body),
    )
}

/// Acceptance 1 (CO-HOURS, item 1 and 2).
#[test]
fn co_hours_raised_to_130_from_2023_through_the_api_decides_each_class_by_its_first_day_naming_the_policy_version()
 {
    let w = World::new();
    let (s, v, h) = raise_hours(&w, 130, None);
    assert_eq!(s, StatusCode::CREATED, "{v}");
    // Version 1 is the shipped defaults, imported on this first use.
    assert_eq!(
        (v["version"].as_u64(), v["changed"].as_bool()),
        (Some(2), Some(true))
    );
    assert_eq!(v["subject"], "co_min_class_hours@2023-01-01");
    assert_eq!(v["retroactive"], false);
    assert_eq!(h["location"], "/api/v1/admin/policy/versions/2");
    let digest = v["digest"].as_str().unwrap().to_string();

    let (s, dec, _) = w.call(
        Method::POST,
        "/api/v1/classes",
        Role::Institution,
        Some(class_of_125_hours("2022-12-31", 0)),
    );
    assert_eq!(s, StatusCode::CREATED, "{dec}");
    let first_id = dec["id"].as_str().unwrap().to_string();
    let first = dec["decision"].clone();
    assert_eq!(first["outcome"], "approved", "{first}");
    assert_eq!(first["policy"], json!({"version": 2, "digest": digest}));
    let f = co_hours(&first);
    assert_eq!(
        (f["passed"].as_bool(), f["comparison"].as_str()),
        (Some(true), Some("class_hours: 125 ≥ 120"))
    );
    assert_eq!(f["parameters"], json!(["co_min_class_hours@2022-04-22"]));

    let (s, dec, _) = w.call(
        Method::POST,
        "/api/v1/classes",
        Role::Institution,
        Some(class_of_125_hours("2023-01-02", 1)),
    );
    assert_eq!(s, StatusCode::CREATED, "{dec}");
    let second = &dec["decision"];
    assert_eq!(second["outcome"], "rejected");
    assert_eq!(second["blocking_rules"], json!(["CO-HOURS"]));
    assert_eq!(second["policy"]["version"], 2);
    let f = co_hours(second);
    assert_eq!(f["comparison"], "class_hours: 125 < 130");
    assert_eq!(f["parameters"], json!(["co_min_class_hours@2023-01-01"]));

    // Later the bureau raises it again, from the same day, saying it reaches back.
    w.set_clock("2023-02-01T09:00:00");
    let (s, v, _) = raise_hours(&w, 140, Some(true));
    assert_eq!(
        (s, v["version"].as_u64(), v["retroactive"].as_bool()),
        (StatusCode::CREATED, Some(3), Some(true)),
        "{v}"
    );
    // The first class's decision reads back as it was made, naming version 2.
    let (s, got, _) = w.call(
        Method::GET,
        &format!("/api/v1/classes/{first_id}"),
        Role::BureauAdmin,
        None,
    );
    assert_eq!(s, StatusCode::OK);
    assert_eq!(got["decision"], first);
    // Version 2, which it names, is kept as it was.
    let (s, v2, _) = w.call(
        Method::GET,
        "/api/v1/admin/policy/versions/2",
        Role::BureauAdmin,
        None,
    );
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v2["meta"]["digest"], digest.as_str());
    let values = &v2["data"]["parameters"]["co_min_class_hours"]["values"];
    assert_eq!(
        values
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["value"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        vec![120, 130]
    );
    // The same class validated now is decided by version 3 (140 from 2023-01-01: 125 still passes the 120 of 2022).
    let (s, now, _) = w.call(
        Method::POST,
        "/api/v1/classes/validate",
        Role::BureauAdmin,
        Some(class_of_125_hours("2023-01-02", 2)),
    );
    assert_eq!(s, StatusCode::OK);
    assert_eq!(now["decision"]["policy"]["version"], 3);
    assert_eq!(
        co_hours(&now["decision"])["comparison"],
        "class_hours: 125 < 140"
    );
}

#[test]
fn validation_reads_the_policy_in_the_same_single_key_value_call_as_its_context() {
    let w = World::new();
    assert_eq!(raise_hours(&w, 130, None).0, StatusCode::CREATED);
    for n in [1, 60] {
        let start = "2023-01-02".parse().unwrap();
        let (app, _) = fixtures::valid_class_from(start, start, n, 0);
        let before = w.kv.calls();
        let (s, v, _) = w.call(
            Method::POST,
            "/api/v1/classes/validate",
            Role::Institution,
            Some(serde_json::to_value(app).unwrap()),
        );
        assert_eq!(s, StatusCode::OK);
        assert_eq!(
            v["decision"]["policy"]["version"], 2,
            "the stored version was read"
        );
        assert!(
            w.kv.calls() - before <= 2,
            "{n} trainees: {} calls",
            w.kv.calls() - before
        );
    }
}

/// Every write route of the policy with a valid body.
fn writes() -> Vec<(Method, &'static str, Value)> {
    let occupation = serde_json::to_value(
        policy::Policy::shipped()
            .catalogue()
            .occupation(&policy::ids::OccupationCode::parse("4-10-01-05").unwrap())
            .unwrap(),
    )
    .unwrap();
    let mut occupation_150 = occupation.clone();
    occupation_150["min_hours"]["5"] = json!(150);
    vec![
        (Method::POST, "/api/v1/admin/policy/import", json!({})),
        (
            Method::POST,
            "/api/v1/admin/policy/parameters/co_min_class_hours/values",
            json!({"since": "2023-01-01", "value": 130, "reference": "通知"}),
        ),
        (
            Method::PUT,
            "/api/v1/admin/policy/occupations/4-10-01-05",
            json!({"occupation": occupation_150}),
        ),
        (
            Method::POST,
            "/api/v1/admin/policy/subsidies",
            json!({"subsidy": {"occupation": "4-10-01-05", "level": 5, "since": "2023-01-01", "amount_fen": 150000, "fund": "employment_subsidy", "reference": "云南省补贴标准"}}),
        ),
        (
            Method::PUT,
            "/api/v1/admin/policy/calendar/2027",
            json!({"notice": "国办发明电〔2026〕号（测试）", "days_off": ["2027-01-01", "2027-02-05..2027-02-11"], "working_weekends": ["2027-02-14"]}),
        ),
        (
            Method::PUT,
            "/api/v1/admin/policy/targets",
            json!({"district": [{"year": 2023, "district": "530102", "trainings": 12000, "certificates": 8000, "reference": "附件"}], "programme": [{"programme": "kangyang_yun_shifu", "from": "2021-01-01", "to": "2022-12-31", "trainings": 23400, "reference": "二(三)5"}]}),
        ),
        (
            Method::PUT,
            "/api/v1/admin/policy/topics",
            json!({"required": ["law_and_regulations", "drug_control", "hiv_prevention", "smartphone_use", "putonghua", "occupation"], "reference": "二(五)"}),
        ),
    ]
}

/// Acceptance 2.
#[test]
fn a_district_officer_reads_the_policy_but_every_change_is_403_and_leaves_the_store_unchanged() {
    let w = World::new();
    let before = w.kv.dump();
    for (method, path, body) in writes() {
        for role in [
            Role::DistrictOfficer,
            Role::Institution,
            Role::Inspector,
            Role::Scheduler,
        ] {
            let (s, v, _) = w.call(method.clone(), path, role, Some(body.clone()));
            assert_eq!(s, StatusCode::FORBIDDEN, "{role:?} {method} {path}: {v}");
        }
    }
    assert!(w.kv.dump() == before, "a refused change wrote something");
    for path in ["/api/v1/admin/policy", "/api/v1/admin/policy/versions"] {
        let (s, v, _) = w.call(Method::GET, path, Role::DistrictOfficer, None);
        assert_eq!(s, StatusCode::OK, "{path}: {v}");
        let (s, _, _) = w.call(Method::GET, path, Role::Institution, None);
        assert_eq!(s, StatusCode::FORBIDDEN, "{path}");
    }
    let (_, v, _) = w.call(
        Method::GET,
        "/api/v1/admin/policy",
        Role::DistrictOfficer,
        None,
    );
    assert_eq!(
        (v["imported"].as_bool(), v["meta"]["version"].as_u64()),
        (Some(false), Some(1))
    );
    assert_eq!(
        v["data"]["parameters"]["co_min_class_hours"]["values"][0]["value"],
        120
    );
}

/// Acceptance 2.
#[test]
fn every_policy_change_is_audited_with_before_and_after_digests_and_the_chain_verifies() {
    let w = World::new();
    let mut digests = Vec::new();
    for (method, path, body) in writes() {
        let (s, v, _) = w.call(method.clone(), path, Role::BureauAdmin, Some(body));
        assert!(s == StatusCode::CREATED, "{method} {path}: {s} {v}");
        assert_eq!(v["changed"], true);
        digests.push(v["digest"].as_str().unwrap().to_string());
    }
    assert_eq!(digests.len(), 7, "import and six changes");
    let (s, h, _) = w.call(
        Method::GET,
        "/api/v1/audit?entity=policy",
        Role::BureauAdmin,
        None,
    );
    assert_eq!(s, StatusCode::OK, "{h}");
    let events = h["events"].as_array().unwrap();
    let pairs: Vec<(Value, Value)> = events
        .iter()
        .map(|e| (e["before"].clone(), e["after"].clone()))
        .collect();
    let mut want = vec![(Value::Null, json!(digests[0]))];
    for pair in digests.windows(2) {
        want.push((json!(pair[0]), json!(pair[1])));
    }
    assert_eq!(pairs, want);
    let actions: Vec<&str> = events
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        vec![
            "policy.imported",
            "policy.parameter.value_added",
            "policy.occupation.put",
            "policy.subsidy.added",
            "policy.calendar.loaded",
            "policy.targets.loaded",
            "policy.topics.put",
        ]
    );
    assert!(events.iter().all(|e| e["actor"]["role"] == "bureau_admin"));
    let (s, v, _) = w.call(Method::GET, "/api/v1/audit/verify", Role::BureauAdmin, None);
    assert_eq!(
        (s, v["intact"].as_bool()),
        (StatusCode::OK, Some(true)),
        "{v}"
    );
    // The versions, newest first, each with who and when.
    let (_, list, _) = w.call(
        Method::GET,
        "/api/v1/admin/policy/versions?limit=3",
        Role::DistrictOfficer,
        None,
    );
    let got: Vec<u64> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["version"].as_u64().unwrap())
        .collect();
    assert_eq!(
        (got, list["next_before"].as_u64()),
        (vec![7, 6, 5], Some(5))
    );
    let (_, list, _) = w.call(
        Method::GET,
        "/api/v1/admin/policy/versions?before=5&limit=10",
        Role::BureauAdmin,
        None,
    );
    let got: Vec<u64> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["version"].as_u64().unwrap())
        .collect();
    assert_eq!(
        (got, list["next_before"].as_u64()),
        (vec![4, 3, 2, 1], None)
    );
    // The same change again makes no version.
    let (method, path, body) = writes().remove(1);
    let (s, v, _) = w.call(method, path, Role::BureauAdmin, Some(body));
    assert_eq!(
        (s, v["changed"].as_bool(), v["version"].as_u64()),
        (StatusCode::OK, Some(false), Some(7))
    );
}

/// A bad change: 422 naming the field (or 404), and the store unchanged.
fn refused(w: &World, method: Method, path: &str, body: Value) -> Value {
    let before = w.kv.dump();
    let (s, v, _) = w.call(method, path, Role::BureauAdmin, Some(body));
    assert!(
        w.kv.dump() == before,
        "{path}: a refused change wrote something"
    );
    assert!(
        s == StatusCode::UNPROCESSABLE_ENTITY || s == StatusCode::NOT_FOUND,
        "{path}: {s} {v}"
    );
    assert!(
        v["title"].as_str().is_some_and(|t| !t.is_ascii()),
        "a Chinese title: {v}"
    );
    v
}

fn error_fields(v: &Value) -> Vec<String> {
    v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn loading_wrong_policy_data_is_422_naming_the_field_and_changes_nothing() {
    let w = World::new();
    let occupation = writes()[2].2["occupation"].clone();
    let mut no_hours = occupation.clone();
    no_hours["min_hours"].as_object_mut().unwrap().remove("3");
    let v = refused(
        &w,
        Method::PUT,
        "/api/v1/admin/policy/occupations/4-10-01-05",
        json!({"occupation": no_hours}),
    );
    assert_eq!(
        (v["code"].as_str(), error_fields(&v)),
        (
            Some("validation_failed"),
            vec!["occupation.min_hours".to_string()]
        )
    );
    assert!(
        v["errors"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("level 3"),
        "{v}"
    );
    let v = refused(
        &w,
        Method::PUT,
        "/api/v1/admin/policy/occupations/6-31-01-03",
        json!({"occupation": occupation}),
    );
    assert_eq!(error_fields(&v), vec!["occupation.code"]);
    let v = refused(
        &w,
        Method::POST,
        "/api/v1/admin/policy/subsidies",
        json!({"subsidy": {"occupation": "4-10-01-05", "level": 5, "since": "2023-01-01", "amount_fen": -100, "fund": "employment_subsidy", "reference": "r"}}),
    );
    assert_eq!(error_fields(&v), vec!["subsidy.amount_fen"]);
    let v = refused(
        &w,
        Method::PUT,
        "/api/v1/admin/policy/calendar/2027",
        json!({"notice": "n", "days_off": ["2027-01-01", "2028-01-01"], "working_weekends": []}),
    );
    assert_eq!(error_fields(&v), vec!["days_off[1]"]);
    let v = refused(
        &w,
        Method::PUT,
        "/api/v1/admin/policy/targets",
        json!({"district": [{"year": 2023, "district": "530199", "trainings": 1, "certificates": 1, "reference": "r"}]}),
    );
    assert_eq!(error_fields(&v), vec!["district[0].district"]);
    let v = refused(
        &w,
        Method::POST,
        "/api/v1/admin/policy/parameters/sc_rate_percent/values",
        json!({"since": "2023-01-01", "value": 101, "reference": "r"}),
    );
    assert_eq!(error_fields(&v), vec!["value"]);
    let v = refused(
        &w,
        Method::POST,
        "/api/v1/admin/policy/parameters/co_min_class_hours/values",
        json!({"since": "2023-01-01", "value": 130, "reference": "r", "colour": "red"}),
    );
    assert_eq!(v["status"], 422);
    let v = refused(
        &w,
        Method::POST,
        "/api/v1/admin/policy/parameters/no_such_parameter/values",
        json!({"since": "2023-01-01", "value": 1, "reference": "r"}),
    );
    assert_eq!(v["status"], 404);
    // Each on the valid side: 201.
    for (method, path, body) in writes().into_iter().skip(1) {
        let (s, v, _) = w.call(method, path, Role::BureauAdmin, Some(body));
        assert_eq!(s, StatusCode::CREATED, "{path}: {v}");
    }
}

#[test]
fn a_value_dated_in_the_past_that_changes_decisions_is_409_unless_the_request_says_retroactive_and_then_audited_as_such()
 {
    let w = World::new();
    w.set_clock("2023-02-01T09:00:00");
    let before = w.kv.dump();
    let (s, v, _) = raise_hours(&w, 130, None);
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::CONFLICT, Some("policy_change_retroactive")),
        "{v}"
    );
    assert_eq!(error_fields(&v), vec!["since"]);
    assert!(
        v["detail"]
            .as_str()
            .unwrap()
            .contains("120 (co_min_class_hours@2022-04-22) becomes 130"),
        "{v}"
    );
    assert!(w.kv.dump() == before, "the refused change wrote nothing");
    let (s, _, _) = raise_hours(&w, 130, Some(false));
    assert_eq!(s, StatusCode::CONFLICT);
    // The same value as in force on that date changes no decision: no flag needed.
    let (s, v, _) = raise_hours(&w, 120, None);
    assert_eq!(
        (s, v["retroactive"].as_bool()),
        (StatusCode::CREATED, Some(false)),
        "{v}"
    );
    let (s, v, _) = raise_hours(&w, 130, Some(true));
    assert_eq!(
        (s, v["retroactive"].as_bool()),
        (StatusCode::CREATED, Some(true)),
        "{v}"
    );
    let (_, h, _) = w.call(
        Method::GET,
        "/api/v1/audit?entity=policy",
        Role::BureauAdmin,
        None,
    );
    let last = h["events"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["after"], v["digest"]);
    assert!(
        last["note"].as_str().unwrap().contains("retroactive"),
        "{last}"
    );
    // A calendar for a year that has begun likewise; a future year does not.
    let body = json!({"notice": "n", "days_off": ["2023-01-02"], "working_weekends": []});
    let (s, v, _) = w.call(
        Method::PUT,
        "/api/v1/admin/policy/calendar/2023",
        Role::BureauAdmin,
        Some(body),
    );
    assert_eq!(
        (s, error_fields(&v)),
        (StatusCode::CONFLICT, vec!["year".to_string()])
    );
}

#[test]
fn a_loaded_calendar_year_decides_co_lead_and_an_unloaded_one_is_an_explained_finding() {
    let w = World::new();
    w.set_clock("2026-12-30T09:00:00");
    let validate = |w: &World| {
        let start = "2027-01-11".parse().unwrap();
        let today = "2026-12-30".parse().unwrap();
        let (app, _) = fixtures::valid_class_from(start, today, 10, 0);
        let (s, v, _) = w.call(
            Method::POST,
            "/api/v1/classes/validate",
            Role::BureauAdmin,
            Some(serde_json::to_value(app).unwrap()),
        );
        assert_eq!(s, StatusCode::OK);
        v["decision"].clone()
    };
    let d = validate(&w);
    let cal = d["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "CO-CALENDAR")
        .unwrap()
        .clone();
    assert_eq!(cal["passed"], false);
    assert!(
        cal["message_en"]
            .as_str()
            .unwrap()
            .starts_with("calendar not loaded for 2027"),
        "{cal}"
    );
    // The bureau loads 2027 (a future year: no flag needed); CO-LEAD counts by it.
    let body = json!({"notice": "国办发明电（测试）", "days_off": ["2027-01-01", "2027-01-04..2027-01-08"], "working_weekends": []});
    let (s, v, _) = w.call(
        Method::PUT,
        "/api/v1/admin/policy/calendar/2027",
        Role::BureauAdmin,
        Some(body),
    );
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let d = validate(&w);
    let lead = d["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "CO-LEAD")
        .unwrap()
        .clone();
    // Thu 12-31 only: 01-01 and 01-04..08 are (test) days off.
    assert_eq!(
        (lead["passed"].as_bool(), lead["comparison"].as_str()),
        (Some(false), Some("working_days: 1 < 5"))
    );
    assert!(
        d["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["rule"] == "CO-CALENDAR" && f["passed"] == true)
    );
}

#[test]
fn co_topics_follow_the_topics_the_bureau_loads() {
    let w = World::new();
    let (app, _) = fixtures::valid_class(10);
    let body = serde_json::to_value(app).unwrap();
    w.set_clock("2022-06-01T10:00:00");
    let topics = |w: &World| {
        let (_, v, _) = w.call(
            Method::POST,
            "/api/v1/classes/validate",
            Role::BureauAdmin,
            Some(body.clone()),
        );
        v["decision"]["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["rule"] == "CO-TOPICS")
            .map(|f| {
                (
                    f["passed"].as_bool().unwrap(),
                    f["message_en"].as_str().unwrap().to_string(),
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(topics(&w).len(), 5);
    assert!(topics(&w).iter().all(|(p, _)| *p));
    // The fixture covers its trade on every day; a required topic it misses is a finding.
    let (s, _, _) = w.call(
        Method::PUT,
        "/api/v1/admin/policy/topics",
        Role::BureauAdmin,
        Some(json!({"required": ["drug_control"], "reference": "r"})),
    );
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(
        topics(&w),
        vec![(true, "the schedule covers drug_control".to_string())]
    );
}

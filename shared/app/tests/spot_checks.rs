//! The spot-check routes on the in-memory store: runs that cover every class
//! in training with its SC-SIZE size, second calls that change nothing,
//! interrupted runs that resume to the same samples, call lists with phone
//! numbers for the assigned inspector only, SC-CALL/SC-UNREACH/SC-DENY/SC-REPEAT,
//! and findings that hold the class until rectified.

mod support;

use chrono::{DateTime, Duration, TimeZone, Utc};
use http::{Method, StatusCode};
use policy::fixtures;
use policy::sampling::protocol;
use policy::sampling::{self, PublishedRun};
use policy::{Parameters, class_opening};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use store::MemoryStore;
use store::audit::Actor;
use store::classes::{self, CheckKind, CheckRecord, CheckResult};
use store::pii::PiiHasher;
use store::spot_checks as sc;
use support::{HMAC, JWT, secrets};
use web::auth::{Role, mint};
use web::{Env, Secrets};

const WINDOW: &str = "2022-06-20";

/// 2022-06-20 10:00 CST, while the fixture classes are in training.
fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2022, 6, 20, 2, 0, 0).unwrap()
}

fn sevens(buf: &mut [u8]) {
    buf.fill(7);
}

fn token(role: Role, sub: &str, district: Option<&str>) -> String {
    token_at(role, sub, district, now())
}

/// [`token`] issued a minute before `at` (a token lives at most
/// [`support::max_lifetime`], so a test that moves its clock days on mints anew).
fn token_at(role: Role, sub: &str, district: Option<&str>, at: DateTime<Utc>) -> String {
    let t = at.timestamp();
    let mut claims = support::claims(role, district, t - 60, t - 60 + support::max_lifetime(role));
    claims.sub = sub.into();
    mint(&claims, JWT)
}

fn scheduler() -> String {
    token(Role::Scheduler, "cron", None)
}
fn admin() -> String {
    token(Role::BureauAdmin, "bureau-1", None)
}
fn inspector(sub: &str) -> String {
    token(Role::Inspector, sub, None)
}
fn officer(district: &str) -> String {
    token(Role::DistrictOfficer, "officer-1", Some(district))
}

struct World {
    kv: MemoryStore,
    secrets: Secrets,
    now: std::sync::Mutex<DateTime<Utc>>,
}

/// A class to seed: roster size, whether CO-SHARED-PHONE fails, whether its pre-opening check passes.
struct Seeded {
    roster: usize,
    shared_phone: bool,
    in_training: bool,
}

impl World {
    fn new() -> Self {
        Self {
            kv: MemoryStore::new(),
            secrets: secrets(),
            now: std::sync::Mutex::new(now()),
        }
    }

    /// Moves the clock `minutes` on.
    fn later(&self, minutes: i64) {
        *self.now.lock().unwrap() += chrono::Duration::minutes(minutes);
    }

    fn call(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> (StatusCode, Value) {
        let body = Some(
            body.map(|b| serde_json::to_vec(&b).unwrap())
                .unwrap_or_default()
                .into(),
        );
        let req = support::request(method, path, Some(token), body, headers);
        let env = Env {
            kv: &self.kv,
            secrets: &self.secrets,
            now: *self.now.lock().unwrap(),
            random: &sevens,
        };
        let a = support::answer(app::spot_checks::handle(&env, &req));
        assert!(
            a.text.is_empty() || !a.body.is_null(),
            "not JSON: {}",
            a.text
        );
        (a.status, a.body)
    }

    /// Sends a request to the vouchers function, at the world's clock.
    fn vouchers(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let body = Some(
            body.map(|b| serde_json::to_vec(&b).unwrap())
                .unwrap_or_default()
                .into(),
        );
        let req = support::request(method, path, Some(token), body, &[]);
        let env = Env {
            kv: &self.kv,
            secrets: &self.secrets,
            now: *self.now.lock().unwrap(),
            random: &support::random,
        };
        let a = support::answer(app::vouchers::handle(&env, &req));
        (a.status, a.body)
    }

    /// Files and (optionally) opens classes straight through the store; returns their ids.
    fn seed_classes(&self, list: &[Seeded]) -> Vec<String> {
        let hasher = PiiHasher::new(HMAC);
        let actor = Actor {
            sub: "inst-1".into(),
            role: "institution".into(),
        };
        let officer = Actor {
            sub: "officer-1".into(),
            role: "district_officer".into(),
        };
        let mut ids = Vec::new();
        for (i, s) in list.iter().enumerate() {
            let (app, mut ctx) = fixtures::valid_class_from(
                "2022-06-13".parse().unwrap(),
                "2022-06-01".parse().unwrap(),
                s.roster,
                (i % 10) as u32 + 1,
            );
            let mut app = app;
            app.title = format!("{}（第{}期）", app.title, i + 1);
            if s.shared_phone {
                ctx.phone_users_elsewhere.insert(0, 3);
            }
            let decision = class_opening::evaluate(&app, &ctx, policy::Policy::shipped());
            assert_eq!(decision.failed("CO-SHARED-PHONE"), s.shared_phone);
            let at = Utc.with_ymd_and_hms(2022, 6, 1, 2, 0, 0).unwrap();
            // The sample classes share trainers and dates: filed as decided, occupancy aside.
            let rules = classes::Rules::new(|_, _, _| decision.clone(), |_, _| false);
            let filed = classes::file(&self.kv, &hasher, app, &rules, ctx.today, actor.clone(), at)
                .unwrap();
            if s.in_training {
                classes::record_check(
                    &self.kv,
                    &filed.record.id,
                    CheckRecord {
                        kind: CheckKind::PreOpening,
                        officer: "王科长".into(),
                        at,
                        result: CheckResult::Passed,
                        notes: String::new(),
                        recorded_by: officer.clone(),
                        recorded_at: at,
                        unaudited: false,
                    },
                    |c| policy::checks::decide_order(CheckKind::PreOpening, c.status, false),
                    at,
                )
                .unwrap();
            }
            ids.push(filed.record.id);
        }
        ids
    }

    fn register_inspectors(&self, subs: &[&str]) {
        for s in subs {
            let (st, v) = self.call(
                Method::PUT,
                &format!("/api/v1/spot-checks/inspectors/{s}"),
                &admin(),
                Some(json!({"name": format!("抽查员{s}")})),
                &[],
            );
            assert_eq!(st, StatusCode::OK, "{v}");
        }
    }

    fn advance(&self, body: &Value) -> (StatusCode, Value) {
        self.call(
            Method::POST,
            "/api/v1/spot-checks/runs",
            &scheduler(),
            Some(body.clone()),
            &[],
        )
    }

    /// Calls the run route until it is done; returns the number of calls. A
    /// `seed` (or `public_value`) in `body` is given once, when the freeze is
    /// complete (SC-DRAW); without one, the clock moves past the wait.
    fn run_to_end(&self, body: &Value) -> usize {
        let mut plain = body.clone();
        let public = plain
            .as_object_mut()
            .and_then(|o| o.remove("seed").or_else(|| o.remove("public_value")));
        let mut awaiting = false;
        for n in 1..=10_000 {
            let req = match (&public, awaiting) {
                (Some(p), true) => {
                    let mut b = plain.clone();
                    b["public_value"] = p.clone();
                    b
                }
                _ => plain.clone(),
            };
            let (s, v) = self.advance(&req);
            assert_eq!(s, StatusCode::OK, "{v}");
            if v["done"] == json!(true) {
                return n;
            }
            awaiting = v["frozen"] == json!(true) && v["seed_fixed"] == json!(false);
            if awaiting && public.is_none() {
                self.later(30);
            }
        }
        panic!("the run never finished")
    }

    /// The run as the bureau sees it (every class, the seed once fixed).
    fn published(&self, run: &str) -> Value {
        self.published_to(run, &admin())
    }

    fn published_to(&self, run: &str, token: &str) -> Value {
        let (s, v) = self.call(
            Method::GET,
            &format!("/api/v1/spot-checks/runs/{run}?limit=1000"),
            token,
            None,
            &[],
        );
        assert_eq!(s, StatusCode::OK, "{v}");
        v
    }

    fn my_tasks(&self, who: &str) -> Vec<Value> {
        let (s, v) = self.call(
            Method::GET,
            "/api/v1/spot-checks/tasks/mine?limit=100",
            &inspector(who),
            None,
            &[],
        );
        assert_eq!(s, StatusCode::OK, "{v}");
        v["items"].as_array().unwrap().clone()
    }

    fn record_call(&self, who: &str, task: &str, body: Value) -> (StatusCode, Value) {
        self.call(
            Method::POST,
            &format!("/api/v1/spot-checks/tasks/{task}/calls"),
            &inspector(who),
            Some(body),
            &[],
        )
    }

    fn audit_actions(&self) -> Vec<String> {
        self.kv
            .dump()
            .iter()
            .filter(|(k, _)| k.starts_with("vt:audit:event:"))
            .map(|(_, v)| {
                serde_json::from_slice::<Value>(v).unwrap()["action"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    }
}

fn mixed() -> Vec<Seeded> {
    let s = |roster, shared_phone, in_training| Seeded {
        roster,
        shared_phone,
        in_training,
    };
    vec![
        s(40, false, true),
        s(12, false, true),
        s(2, false, true),
        s(60, false, true),
        s(31, false, true),
        s(40, true, true),
        s(40, false, false),
    ]
}

fn answered(attended: bool, fee: bool) -> Value {
    json!({
        "at": now() - Duration::minutes(10),
        "answered": true,
        "identity_confirmed": true,
        "attended": attended,
        "dates_match": attended,
        "place_match": attended,
        "teacher_match": attended,
        "fee_asked": fee,
        "notes": "",
    })
}

fn unanswered(minutes_ago: i64) -> Value {
    json!({"at": now() - Duration::minutes(minutes_ago), "answered": false})
}

#[test]
fn a_run_includes_every_class_in_training_with_its_sc_size_and_an_identical_second_call_changes_nothing()
 {
    let w = World::new();
    let ids = w.seed_classes(&mixed());
    w.register_inspectors(&["insp-a", "insp-b", "insp-c"]);
    let body = json!({"window": WINDOW, "seed": "314159", "page_size": 2});
    let calls = w.run_to_end(&body);
    // 6 classes in training: 3 freeze pages, the public value (which fixes the seed), 3 draw pages.
    assert_eq!(calls, 7);

    let published = w.published(WINDOW);
    let sizes: BTreeMap<String, (u64, String)> = published["classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["class_id"].as_str().unwrap().to_string(),
                (
                    c["sample_size"].as_u64().unwrap(),
                    c["size_rule"].as_str().unwrap().to_string(),
                ),
            )
        })
        .collect();
    let expected: BTreeMap<String, (u64, String)> = ids[..6]
        .iter()
        .zip([4, 3, 2, 6, 4, 12])
        .map(|(id, n)| (id.clone(), (n, "SC-SIZE".to_string())))
        .collect();
    assert_eq!(
        sizes, expected,
        "SC-EVERY: every class in training and only those; SC-SIZE per class (raised for CO-SHARED-PHONE)"
    );
    assert_eq!(published["undrawn"], json!([]));
    assert_eq!(published["tasks"], json!(4 + 3 + 2 + 6 + 4 + 12));

    // The published run recomputes.
    let run: PublishedRun = serde_json::from_value(published.clone()).unwrap();
    assert_eq!(sampling::verify(&run), vec![]);
    assert_eq!(run.public_value.as_deref(), Some("314159"));
    assert_eq!(
        run.seed,
        Some(protocol::run_seed(&[7; 32], Some("314159"))),
        "SC-DRAW: SHA-256 of the committed bytes and the public value"
    );
    assert_eq!(run.commitment, protocol::commitment(&[7; 32]));

    // Tasks are balanced across the three inspectors.
    let counts: Vec<usize> = ["insp-a", "insp-b", "insp-c"]
        .iter()
        .map(|i| w.my_tasks(i).len())
        .collect();
    assert_eq!(counts.iter().sum::<usize>(), 31);
    assert!(
        counts.iter().max().unwrap() - counts.iter().min().unwrap() <= 1,
        "{counts:?}"
    );

    // An identical call, with or without an idempotency key, changes nothing.
    let before = w.kv.dump();
    let (s, v) = w.advance(&body);
    assert_eq!(
        (s, v["done"].clone(), v["steps"].clone()),
        (StatusCode::OK, json!(true), json!(["nothing"]))
    );
    assert_eq!(
        w.kv.dump(),
        before,
        "a second identical call changed the store"
    );
    let (s, _) = w.advance(&json!({"window": WINDOW}));
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        w.kv.dump(),
        before,
        "a call without the public value changed the store"
    );
    let (s, v) = w.advance(&json!({"window": WINDOW, "seed": "271828"}));
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::CONFLICT, Some("seed_conflict"))
    );
    assert_eq!(w.kv.dump(), before);
}

fn task_records(w: &World, ids: &[String]) -> BTreeMap<String, sc::ClassTasks> {
    ids.iter()
        .filter_map(|id| {
            sc::class_tasks(&w.kv, WINDOW, id)
                .unwrap()
                .map(|t| (id.clone(), t))
        })
        .collect()
}

#[test]
fn a_run_interrupted_after_page_k_and_resumed_gives_the_same_samples_and_tasks_with_no_duplicate_task()
 {
    let classes: Vec<Seeded> = (0..9)
        .map(|i| Seeded {
            roster: 20 + i * 5,
            shared_phone: i == 4,
            in_training: true,
        })
        .collect();
    let body = json!({"window": WINDOW, "page_size": 2});

    let whole = World::new();
    let ids = whole.seed_classes(&classes);
    whole.register_inspectors(&["insp-a", "insp-b"]);
    whole.run_to_end(&body);

    let broken = World::new();
    assert_eq!(broken.seed_classes(&classes), ids);
    broken.register_inspectors(&["insp-a", "insp-b"]);
    // Five freeze pages; after the wait for a public value, the seed; the first draw page.
    for _ in 0..5 {
        assert_eq!(broken.advance(&body).0, StatusCode::OK);
    }
    broken.later(30);
    for _ in 0..2 {
        assert_eq!(broken.advance(&body).0, StatusCode::OK);
    }
    // Page 7 crashes after its first write (the task records), before the run moves on.
    broken.kv.fail_after_writes(Some(1));
    let (s, _) = broken.advance(&body);
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    broken.kv.fail_after_writes(None);
    // A second crash later in the same page (after the inspectors' lists).
    broken.kv.fail_after_writes(Some(2));
    let (s, _) = broken.advance(&body);
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    broken.kv.fail_after_writes(None);
    broken.run_to_end(&body);

    let a = task_records(&whole, &ids);
    let b = task_records(&broken, &ids);
    assert_eq!(a.len(), 9);
    assert_eq!(a, b, "same samples, same tasks, same assignments");
    let all: Vec<&str> = b
        .values()
        .flat_map(|r| r.tasks.iter().map(|t| t.id.as_str()))
        .collect();
    let unique: BTreeSet<&str> = all.iter().copied().collect();
    assert_eq!(all.len(), unique.len(), "no duplicate task");
    let run = sc::get_run(&broken.kv, WINDOW).unwrap().unwrap();
    assert_eq!(run.tasks as usize, all.len());
    assert_eq!(
        whole.published(WINDOW)["classes"],
        broken.published(WINDOW)["classes"]
    );
    assert_eq!(
        whole.my_tasks("insp-a").len(),
        broken.my_tasks("insp-a").len()
    );
}

#[test]
fn sc_draw_without_a_public_value_the_seed_is_fixed_from_the_committed_bytes_once_the_wait_is_over()
{
    let w = World::new();
    w.seed_classes(&mixed()[..2]);
    w.register_inspectors(&["insp-a"]);
    let (_, v) = w.advance(&json!({"window": WINDOW, "page_size": 1}));
    assert_eq!(
        (v["seed_fixed"].clone(), v["frozen"].clone()),
        (json!(false), json!(false)),
        "the freeze is not complete: {v}"
    );
    // Only the commitment is published at creation.
    assert_eq!(v["commitment"], json!(protocol::commitment(&[7; 32])));
    let before_seed = w.published(WINDOW);
    assert_eq!(before_seed["seed"], Value::Null);
    assert_eq!(before_seed["revealed"], Value::Null);
    assert_eq!(before_seed["undrawn"].as_array().unwrap().len(), 1);
    assert!(before_seed["undrawn"][0]["population_digest"].is_string());
    let (_, v) = w.advance(&json!({"window": WINDOW}));
    assert_eq!(
        (
            v["frozen"].clone(),
            v["seed_fixed"].clone(),
            v["steps"].clone()
        ),
        (
            json!(true),
            json!(false),
            json!(["froze", "awaiting_public_value"])
        )
    );
    // 29 minutes after the freeze: still waiting; 30: fixed from the bytes alone.
    w.later(29);
    let (_, v) = w.advance(&json!({"window": WINDOW}));
    assert_eq!(v["steps"], json!(["awaiting_public_value"]), "{v}");
    w.later(1);
    let (_, v) = w.advance(&json!({"window": WINDOW}));
    assert_eq!(v["steps"], json!(["fixed_seed"]), "{v}");
    w.run_to_end(&json!({"window": WINDOW}));
    let p = w.published(WINDOW);
    assert_eq!(p["seed"], json!(protocol::run_seed(&[7; 32], None)));
    assert_eq!(p["revealed"], json!("07".repeat(32)));
    assert_eq!(p["seed_source"], json!("committed_bytes"));
    assert_ne!(
        p["seed"], p["commitment"],
        "the seed was not public from the start"
    );
    let run: PublishedRun = serde_json::from_value(p).unwrap();
    assert_eq!(sampling::verify(&run), vec![]);
}

#[test]
fn sc_draw_a_public_value_offered_before_the_freeze_is_complete_is_refused_and_changes_nothing() {
    let w = World::new();
    w.seed_classes(&mixed()[..2]);
    w.register_inspectors(&["insp-a"]);
    // Before the run exists, and while it freezes (page 1 of 2).
    for _ in 0..2 {
        let before = w.kv.dump();
        let (s, v) =
            w.advance(&json!({"window": WINDOW, "public_value": "314159", "page_size": 1}));
        assert_eq!(
            (s, v["code"].as_str()),
            (StatusCode::CONFLICT, Some("public_value_before_freeze")),
            "SC-DRAW: {v}"
        );
        assert_eq!(w.kv.dump(), before, "a refused public value wrote nothing");
        w.advance(&json!({"window": WINDOW, "page_size": 1}));
    }
    // The old name of the member is the same thing.
    let (s, v) = w.advance(&json!({"window": WINDOW, "seed": "314159"}));
    assert_eq!(
        (s, v["steps"].clone()),
        (StatusCode::OK, json!(["public_value", "fixed_seed"])),
        "{v}"
    );
    // A second public value is a conflict; the same one again changes nothing.
    let (s, v) = w.advance(&json!({"window": WINDOW, "public_value": "271828"}));
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::CONFLICT, Some("seed_conflict"))
    );
}

#[test]
fn sc_draw_runs_are_named_by_real_days_and_the_same_window_is_the_same_run() {
    let w = World::new();
    w.seed_classes(&mixed()[..2]);
    w.register_inspectors(&["insp-a"]);
    for (window, ok) in [
        ("2022-02-28", true),
        ("2022-02-29", false),
        ("2022-W25", false), // runs are days by default (sc_window_days = 1)
        ("e2e-2022-06-20", false),
        ("scale", false),
    ] {
        let before = w.kv.dump();
        let (s, v) = w.advance(&json!({"window": window}));
        if ok {
            assert_eq!(s, StatusCode::OK, "{window}: {v}");
        } else {
            assert_eq!(
                (s, v["errors"][0]["field"].as_str()),
                (StatusCode::UNPROCESSABLE_ENTITY, Some("window")),
                "{window}: {v}"
            );
            assert_eq!(w.kv.dump(), before);
        }
    }
    // The same window twice: the same run, and no new tasks.
    let calls = w.run_to_end(&json!({"window": WINDOW}));
    assert!(calls > 1);
    let tasks = sc::get_run(&w.kv, WINDOW).unwrap().unwrap().tasks;
    let before = w.kv.dump();
    let (s, v) = w.advance(&json!({"window": WINDOW, "page_size": 1}));
    assert_eq!(
        (s, v["created"].clone(), v["tasks"].clone()),
        (StatusCode::OK, json!(false), json!(tasks))
    );
    assert_eq!(
        w.kv.dump(),
        before,
        "a second creation of the window changed nothing"
    );
}

#[test]
fn a_run_waits_for_an_inspector_before_it_fixes_its_seed() {
    let w = World::new();
    w.seed_classes(&mixed()[..1]);
    let (s, v) = w.advance(&json!({"window": WINDOW}));
    assert_eq!((s, v["frozen"].clone()), (StatusCode::OK, json!(true)));
    let before = w.kv.dump();
    let (s, v) = w.advance(&json!({"window": WINDOW, "seed": "1"}));
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::CONFLICT, Some("no_inspectors"))
    );
    assert_eq!(w.kv.dump(), before, "the public value is not kept");
    w.register_inspectors(&["insp-a"]);
    // The public value (the run is frozen already), then the one draw page.
    assert_eq!(w.run_to_end(&json!({"window": WINDOW, "seed": "1"})), 3);
}

#[test]
fn an_inspector_sees_full_phone_numbers_only_on_own_pending_tasks_and_each_view_is_audited() {
    let w = World::new();
    w.seed_classes(&mixed()[..1]);
    w.register_inspectors(&["insp-a", "insp-b"]);
    w.run_to_end(&json!({"window": WINDOW, "seed": "314159"}));
    let mine = w.my_tasks("insp-a");
    assert_eq!(mine.len(), 2);
    for t in &mine {
        let phone = t["phone"].as_str().unwrap();
        assert!(
            policy::ids::Mobile::parse(phone).is_ok(),
            "full number: {t}"
        );
        assert_eq!(t["phone_masked"], json!(false));
    }
    let views = w
        .audit_actions()
        .iter()
        .filter(|a| *a == "spot_check.phone_numbers_viewed")
        .count();
    assert_eq!(views, 1);
    // Once the call is done, the number is masked.
    let task = mine[0]["task_id"].as_str().unwrap();
    assert_eq!(
        w.record_call("insp-a", task, answered(true, false)).0,
        StatusCode::OK
    );
    let again = w.my_tasks("insp-a");
    let done = again.iter().find(|t| t["task_id"] == json!(task)).unwrap();
    assert_eq!(done["phone_masked"], json!(true));
    assert!(done["phone"].as_str().unwrap().contains("****"));
    // Another inspector cannot call it; the published run has no phone numbers.
    let (s, v) = w.record_call("insp-b", task, answered(true, false));
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("task_not_assigned"))
    );
    let text = w.published(WINDOW).to_string();
    assert!(!text.contains(mine[1]["phone"].as_str().unwrap()));
    // Keys never carry phone numbers.
    for k in w.kv.dump().keys() {
        assert!(!k.contains(mine[1]["phone"].as_str().unwrap()), "{k}");
    }
}

#[test]
fn an_inspector_deactivated_in_the_registry_loses_the_phone_numbers_at_once() {
    let w = World::new();
    w.seed_classes(&mixed()[..1]);
    w.register_inspectors(&["insp-a"]);
    w.run_to_end(&json!({"window": WINDOW, "seed": "314159"}));
    let mine = w.my_tasks("insp-a");
    let task = mine[0]["task_id"].as_str().unwrap().to_string();
    let put = |active: bool| {
        let (s, v) = w.call(
            Method::PUT,
            "/api/v1/spot-checks/inspectors/insp-a",
            &admin(),
            Some(json!({"name": "抽查员insp-a", "active": active})),
            &[],
        );
        assert_eq!(s, StatusCode::OK, "{v}");
    };
    put(false);
    // The same, still valid token: no call list, no call, no phone number.
    let (s, v) = w.call(
        Method::GET,
        "/api/v1/spot-checks/tasks/mine",
        &inspector("insp-a"),
        None,
        &[],
    );
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("inspector_inactive"))
    );
    assert!(!v.to_string().contains(mine[0]["phone"].as_str().unwrap()));
    let before = w.kv.dump();
    let (s, v) = w.record_call("insp-a", &task, answered(true, false));
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("inspector_inactive"))
    );
    assert_eq!(w.kv.dump(), before, "a refused call changes nothing");
    // An inspector never registered is refused the same way.
    let (s, v) = w.call(
        Method::GET,
        "/api/v1/spot-checks/tasks/mine",
        &inspector("insp-unknown"),
        None,
        &[],
    );
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("inspector_inactive"))
    );
    // Reactivated, the inspector works again.
    put(true);
    assert_eq!(w.my_tasks("insp-a").len(), mine.len());
    assert_eq!(
        w.record_call("insp-a", &task, answered(true, false)).0,
        StatusCode::OK
    );
}

#[test]
fn sc_call_three_unanswered_attempts_make_a_trainee_unreachable_and_sc_unreach_then_draws_a_second_sample()
 {
    let w = World::new();
    let ids = w.seed_classes(&mixed()[..1]); // 40 trainees, 4 called
    w.register_inspectors(&["insp-a"]);
    w.run_to_end(&json!({"window": WINDOW, "seed": "314159"}));
    let tasks: Vec<String> = w
        .my_tasks("insp-a")
        .iter()
        .map(|t| t["task_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(tasks.len(), 4);
    for (i, t) in tasks.iter().take(3).enumerate() {
        for attempt in 0..3 {
            let (s, v) = w.record_call("insp-a", t, unanswered(60 - attempt * 10));
            assert_eq!(s, StatusCode::OK, "{v}");
            let expect = if attempt < 2 {
                "pending"
            } else {
                "unreachable"
            };
            assert_eq!(v["state"], json!(expect), "task {i} attempt {attempt}");
            // Two of four unreachable is not more than half; the third is.
            assert_eq!(
                v["second_sample_drawn"],
                json!(i == 2 && attempt == 2),
                "{v}"
            );
        }
    }
    let (s, v) = w.record_call("insp-a", &tasks[0], unanswered(1));
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::CONFLICT, Some("task_closed"))
    );
    let record = sc::class_tasks(&w.kv, WINDOW, &ids[0]).unwrap().unwrap();
    assert_eq!(record.tasks.len(), 8, "a second sample of 4");
    assert_eq!(w.my_tasks("insp-a").len(), 8);
    let run: PublishedRun = serde_json::from_value(w.published(WINDOW)).unwrap();
    assert_eq!(run.classes[0].second_sample.len(), 4);
    assert_eq!(
        sampling::verify(&run),
        vec![],
        "the second sample recomputes too"
    );
}

#[test]
fn sc_deny_a_denial_opens_a_finding_that_holds_the_class_until_its_district_office_rectifies_it() {
    let (w, class_id, task) = one_class_drawn();
    let ids = [class_id];
    let key = [("idempotency-key", "call-1")];
    let (s, v) = w.call(
        Method::POST,
        &format!("/api/v1/spot-checks/tasks/{task}/calls"),
        &inspector("insp-a"),
        Some(answered(false, false)),
        &key,
    );
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["finding"]["kind"], json!("denied_attendance"));
    assert!(
        v["finding"].get("person").is_none(),
        "no person ref in responses"
    );
    let finding = v["finding"]["id"].as_str().unwrap().to_string();
    // A retry with the same key replays and opens nothing twice.
    let before = w.kv.dump();
    let (s2, v2) = w.call(
        Method::POST,
        &format!("/api/v1/spot-checks/tasks/{task}/calls"),
        &inspector("insp-a"),
        Some(answered(false, false)),
        &key,
    );
    assert_eq!((s2, &v2), (StatusCode::OK, &v));
    assert_eq!(w.kv.dump(), before);

    let hold = store::findings::hold(&w.kv, &ids[0]).unwrap();
    assert!(hold.blocks());
    let class = classes::get(&w.kv, &ids[0]).unwrap().unwrap();
    let line = sc::parse_task_id(&task).unwrap().2;
    assert!(hold.holds_person(&class.roster_refs[line].person));
    let (s, v) = w.call(
        Method::GET,
        &format!("/api/v1/spot-checks/classes/{}/hold", ids[0]),
        &officer("530102"),
        None,
        &[],
    );
    assert_eq!(
        (s, v["blocks_settlement"].clone()),
        (StatusCode::OK, json!(true))
    );
    let (s, v) = w.call(
        Method::GET,
        "/api/v1/spot-checks/findings",
        &officer("530102"),
        None,
        &[],
    );
    assert_eq!(
        (s, v["items"].as_array().unwrap().len()),
        (StatusCode::OK, 1)
    );
    let (_, v) = w.call(
        Method::GET,
        "/api/v1/spot-checks/findings",
        &officer("530103"),
        None,
        &[],
    );
    assert_eq!(v["items"], json!([]), "another district sees none");

    let path = format!("/api/v1/spot-checks/findings/{finding}/rectification");
    let rect = json!({"notes": "核实为冒名顶替，已追回补贴并约谈机构"});
    let (s, _) = w.call(
        Method::POST,
        &path,
        &officer("530103"),
        Some(rect.clone()),
        &[],
    );
    assert_eq!(s, StatusCode::FORBIDDEN, "another district's officer");
    let (s, _) = w.call(Method::POST, &path, &admin(), Some(rect.clone()), &[]);
    assert_eq!(
        s,
        StatusCode::FORBIDDEN,
        "the bureau does not rectify for the district"
    );
    let (s, v) = w.call(
        Method::POST,
        &path,
        &officer("530102"),
        Some(rect.clone()),
        &[],
    );
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["status"], json!("rectified"));
    assert_eq!(v["class_hold"]["blocks_settlement"], json!(false));
    assert_eq!(v["class_hold"]["flagged"], json!(true));
    assert!(!store::findings::hold(&w.kv, &ids[0]).unwrap().blocks());
    let (s, v) = w.call(Method::POST, &path, &officer("530102"), Some(rect), &[]);
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::CONFLICT, Some("finding_already_rectified"))
    );
    let actions = w.audit_actions();
    for a in [
        "finding.opened",
        "finding.rectified",
        "spot_check.call_recorded",
    ] {
        assert!(actions.iter().any(|x| x == a), "{a} audited: {actions:?}");
    }
}

#[test]
fn sc_repeat_findings_in_two_classes_of_one_institution_propose_it_for_the_blacklist() {
    let w = World::new();
    w.seed_classes(&mixed()[..2]);
    w.register_inspectors(&["insp-a"]);
    w.run_to_end(&json!({"window": WINDOW, "seed": "314159"}));
    let tasks = w.my_tasks("insp-a");
    let first_class = tasks[0]["class_id"].clone();
    let other = tasks.iter().find(|t| t["class_id"] != first_class).unwrap();
    let (_, v) = w.record_call(
        "insp-a",
        tasks[0]["task_id"].as_str().unwrap(),
        answered(true, true),
    );
    assert_eq!(v["finding"]["kind"], json!("asked_to_pay"));
    assert_eq!(v["blacklist_proposed"], json!(false), "one class");
    let (_, v) = w.record_call(
        "insp-a",
        other["task_id"].as_str().unwrap(),
        answered(false, false),
    );
    assert_eq!(v["blacklist_proposed"], json!(true), "two classes");
    let (s, v) = w.call(
        Method::GET,
        "/api/v1/spot-checks/proposals",
        &admin(),
        None,
        &[],
    );
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["items"][0]["institution"], json!(fixtures::INSTITUTION));
    assert_eq!(v["items"][0]["rule"], json!("SC-REPEAT"));
}

#[test]
fn routes_refuse_roles_that_may_not_use_them() {
    let w = World::new();
    w.seed_classes(&mixed()[..1]);
    w.register_inspectors(&["insp-a"]);
    let body = json!({"window": WINDOW});
    for t in [
        inspector("insp-a"),
        officer("530102"),
        token(Role::Institution, "i", None),
    ] {
        let (s, _) = w.call(
            Method::POST,
            "/api/v1/spot-checks/runs",
            &t,
            Some(body.clone()),
            &[],
        );
        assert_eq!(s, StatusCode::FORBIDDEN);
    }
    let (s, _) = w.call(
        Method::GET,
        "/api/v1/spot-checks/tasks/mine",
        &scheduler(),
        None,
        &[],
    );
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = w.call(
        Method::PUT,
        "/api/v1/spot-checks/inspectors/x",
        &scheduler(),
        Some(json!({"name": "x"})),
        &[],
    );
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = w.advance(&json!({"window": "2022/06/20"}));
    assert_eq!(
        (s, v["errors"][0]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("window"))
    );
    let (s, _) = w.advance(&json!({"window": WINDOW, "page_size": 0}));
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, _) = w.advance(&json!({"window": WINDOW, "extra": 1}));
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, _) = w.call(
        Method::GET,
        "/api/v1/spot-checks/runs/none",
        &admin(),
        None,
        &[],
    );
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[test]
fn key_value_calls_per_page_are_bounded_whatever_the_number_of_classes() {
    let w = World::new();
    let many: Vec<Seeded> = (0..60)
        .map(|_| Seeded {
            roster: 40,
            shared_phone: false,
            in_training: true,
        })
        .collect();
    w.seed_classes(&many);
    w.register_inspectors(&["insp-a", "insp-b", "insp-c"]);
    let body = json!({"window": WINDOW, "page_size": 20});
    let mut per_page = Vec::new();
    loop {
        let before = w.kv.calls();
        let (s, v) = w.advance(&body);
        assert_eq!(s, StatusCode::OK);
        per_page.push((v["steps"].to_string(), w.kv.calls() - before));
        if v["done"] == json!(true) {
            break;
        }
        if v["frozen"] == json!(true) && v["seed_fixed"] == json!(false) {
            w.later(30);
        }
    }
    println!("page size 20, key-value calls per request: {per_page:?}");
    for (step, calls) in &per_page {
        assert!(*calls <= 40, "{step}: {calls} calls");
    }
    let before = w.kv.calls();
    w.my_tasks("insp-a");
    let mine = w.kv.calls() - before;
    println!("tasks/mine (20 classes): {mine} key-value calls");
    assert!(mine <= 15, "{mine}");
}

#[test]
fn four_schedulers_racing_on_one_window_draw_the_same_samples_as_one_with_no_duplicate_task() {
    let classes: Vec<Seeded> = (0..12)
        .map(|i| Seeded {
            roster: 15 + i * 4,
            shared_phone: false,
            in_training: true,
        })
        .collect();
    let body = json!({"window": WINDOW, "seed": "271828", "page_size": 3});
    let alone = World::new();
    let ids = alone.seed_classes(&classes);
    alone.register_inspectors(&["insp-a", "insp-b", "insp-c"]);
    alone.run_to_end(&body);

    let raced = World::new();
    raced.seed_classes(&classes);
    raced.register_inspectors(&["insp-a", "insp-b", "insp-c"]);
    let actor = Actor {
        sub: "cron".into(),
        role: "scheduler".into(),
    };
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let kv = raced.kv.clone();
            let actor = actor.clone();
            std::thread::spawn(move || {
                let day: chrono::NaiveDate = "2022-06-20".parse().unwrap();
                let mut req = sc::Advance {
                    window: WINDOW.into(),
                    window_days: (day, day),
                    public_value: None,
                    page_size: Some(3),
                };
                for _ in 0..100 {
                    let p = match sc::advance(
                        &kv,
                        Parameters::shipped(),
                        &req,
                        &actor,
                        now(),
                        day,
                        &sevens,
                    ) {
                        Ok(p) => p,
                        // Another thread gave the public value first.
                        Err(sc::RunError::PublicValueTooEarly) => panic!("given before the freeze"),
                        Err(e) => panic!("{e}"),
                    };
                    if p.run.frozen {
                        req.public_value = Some("271828".into());
                    }
                    if p.run.phase == sc::Phase::Done {
                        return;
                    }
                }
                panic!("never done");
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(task_records(&alone, &ids), task_records(&raced, &ids));
    let run = sc::get_run(&raced.kv, WINDOW).unwrap().unwrap();
    assert_eq!(run.classes, 12, "each class frozen once");
    let total: usize = task_records(&raced, &ids)
        .values()
        .map(|r| r.tasks.len())
        .sum();
    assert_eq!(run.tasks as usize, total);
}

#[test]
#[ignore = "figures for acceptance 6 on the in-memory store: cargo test -p app --test spot_checks -- --ignored --nocapture"]
fn a_run_over_2000_classes_of_40_trainees_on_the_in_memory_store_prints_its_page_figures() {
    let w = World::new();
    let ids: Vec<String> = (1..=2000).map(|i| format!("KM-2022-{i:06}")).collect();
    store::fixtures::classes_in_training(&w.kv, &w.kv, &PiiHasher::new(HMAC), &ids, now()).unwrap();
    w.register_inspectors(&["insp-1", "insp-2", "insp-3", "insp-4", "insp-5"]);
    let page_size = 100;
    let body = json!({"window": WINDOW, "page_size": page_size});
    let mut pages = Vec::new();
    loop {
        let calls = w.kv.calls();
        let t = std::time::Instant::now();
        let (s, v) = w.advance(&body);
        assert_eq!(s, StatusCode::OK, "{v}");
        pages.push((
            v["steps"].to_string(),
            t.elapsed().as_secs_f64(),
            w.kv.calls() - calls,
        ));
        if v["done"] == json!(true) {
            break;
        }
        if v["frozen"] == json!(true) && v["seed_fixed"] == json!(false) {
            w.later(30);
        }
    }
    let worst = pages.iter().map(|p| p.1).fold(0.0, f64::max);
    let most = pages.iter().map(|p| p.2).max().unwrap();
    println!(
        "2,000 classes, page size {page_size}: {} requests, slowest {worst:.3}s, at most {most} key-value calls",
        pages.len()
    );
    for (i, (steps, secs, calls)) in pages.iter().enumerate() {
        println!(
            "  request {:>3} {steps:<26} {secs:.3}s {calls} calls",
            i + 1
        );
    }
    // 20 freeze pages, the seed after the wait, 20 draw pages.
    assert!(pages.len() <= 42, "{}", pages.len());
    assert!(most <= 40, "{most}");
    let run = sc::get_run(&w.kv, WINDOW).unwrap().unwrap();
    assert_eq!((run.classes, run.tasks), (2000, 8000));
}

#[test]
fn sc_draw_a_public_value_given_after_the_freeze_fixes_the_seed_with_the_committed_bytes() {
    let w = World::new();
    w.seed_classes(&mixed()[..3]);
    w.register_inspectors(&["insp-a"]);
    for _ in 0..3 {
        w.advance(&json!({"window": WINDOW, "page_size": 1}));
    }
    let (_, v) = w.advance(&json!({"window": WINDOW, "public_value": "20220620-lottery-0815"}));
    assert_eq!(v["seed_fixed"], json!(true), "{v}");
    let (s, v) = w.advance(&json!({"window": WINDOW, "public_value": "another"}));
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::CONFLICT, Some("seed_conflict"))
    );
    w.run_to_end(&json!({"window": WINDOW}));
    let p = w.published(WINDOW);
    assert_eq!(
        (
            p["seed"].as_str(),
            p["seed_source"].as_str(),
            p["public_value"].as_str()
        ),
        (
            Some(protocol::run_seed(&[7; 32], Some("20220620-lottery-0815")).as_str()),
            Some("public"),
            Some("20220620-lottery-0815")
        )
    );
    assert!(
        w.audit_actions()
            .iter()
            .any(|a| a == "spot_check.run.public_value")
    );
}

/// A world with one class of 40 in training, its run drawn with one
/// inspector; answers the class id and the id of the inspector's first task.
fn one_class_drawn() -> (World, String, String) {
    let w = World::new();
    let ids = w.seed_classes(&mixed()[..1]);
    w.register_inspectors(&["insp-a"]);
    w.run_to_end(&json!({"window": WINDOW, "seed": "314159"}));
    let task = w.my_tasks("insp-a")[0]["task_id"]
        .as_str()
        .unwrap()
        .to_string();
    (w, ids[0].clone(), task)
}

fn institution_token() -> String {
    token(Role::Institution, "inst-1", None)
}

#[test]
fn an_institution_sees_nothing_of_its_classs_sample_until_every_call_of_it_is_closed_then_everything()
 {
    let w = World::new();
    let ids = w.seed_classes(&mixed()[..1]); // 40 trainees, 4 called
    w.register_inspectors(&["insp-a"]);
    w.run_to_end(&json!({"window": WINDOW, "seed": "314159"}));
    let inst = institution_token();
    // While calls are open: the commitment, the state, the population digest and size; no sample.
    let before = w.published_to(WINDOW, &inst);
    assert_eq!(before["classes"], json!([]), "no class part: {before}");
    assert_eq!(before["sealed"][0]["class_id"], json!(ids[0]));
    assert_eq!(before["sealed"][0]["population_size"], json!(40));
    assert!(before["sealed"][0]["population_digest"].is_string());
    assert!(before["sealed"][0].get("sample").is_none());
    assert_eq!(before["seed"], Value::Null);
    assert_eq!(before["revealed"], Value::Null);
    assert!(before["commitment"].is_string());
    let text = before.to_string();
    for t in w.my_tasks("insp-a") {
        let task = t["task_id"].as_str().unwrap();
        assert!(
            !text.contains(task),
            "the run names no task to the institution"
        );
    }
    // An inspector and an officer of another district see no sample either; the class's district does.
    assert_eq!(
        w.published_to(WINDOW, &inspector("insp-a"))["classes"],
        json!([])
    );
    assert_eq!(
        w.published_to(WINDOW, &officer("530103"))["classes"],
        json!([])
    );
    assert_eq!(
        w.published_to(WINDOW, &officer("530102"))["classes"][0]["class_id"],
        json!(ids[0])
    );
    // Three of four calls answered: still nothing.
    let tasks = w.my_tasks("insp-a");
    for t in &tasks[..3] {
        let (s, v) = w.record_call(
            "insp-a",
            t["task_id"].as_str().unwrap(),
            answered(true, false),
        );
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    assert_eq!(
        w.published_to(WINDOW, &inst)["classes"],
        json!([]),
        "one call open"
    );
    let (s, _) = w.record_call(
        "insp-a",
        tasks[3]["task_id"].as_str().unwrap(),
        answered(true, false),
    );
    assert_eq!(s, StatusCode::OK);
    // Every call closed: the class's part in full, recomputable from its class seed; and, the
    // run's only class being closed, the run seed and the revealed bytes to everyone.
    let after = w.published_to(WINDOW, &inst);
    assert_eq!(after["classes"][0]["class_id"], json!(ids[0]));
    assert_eq!(after["classes"][0]["sample"].as_array().unwrap().len(), 4);
    assert_eq!(after["calls_closed"], json!(true));
    let run: PublishedRun = serde_json::from_value(after.clone()).unwrap();
    assert!(run.revealed.is_some());
    assert_eq!(
        sampling::verify(&run),
        vec![],
        "recomputed from the institution's answer"
    );
    // Another institution sees no class part of it.
    let other = token(
        Role::Institution,
        "inst-2",
        Some(policy::fixtures::OTHER_INSTITUTION),
    );
    assert_eq!(w.published_to(WINDOW, &other)["classes"], json!([]));
}

#[test]
fn a_finding_shown_to_the_institution_names_neither_the_roster_line_nor_the_task() {
    let (w, class_id, task) = one_class_drawn();
    let ids = [class_id];
    let (s, v) = w.record_call("insp-a", &task, answered(false, false));
    assert_eq!(s, StatusCode::OK, "{v}");
    let finding = v["finding"]["id"].as_str().unwrap().to_string();
    assert!(
        finding.starts_with("F-") && !finding.contains(&ids[0]),
        "{finding}"
    );
    let (_, f) = w.call(
        Method::GET,
        &format!("/api/v1/spot-checks/findings/{finding}"),
        &institution_token(),
        None,
        &[],
    );
    assert_eq!(f["id"], json!(finding));
    assert!(
        f.get("roster_line").is_none() && f.get("source").is_none(),
        "{f}"
    );
    assert!(!f.to_string().contains(&task), "{f}");
    let (_, h) = w.call(
        Method::GET,
        &format!("/api/v1/spot-checks/classes/{}/hold", ids[0]),
        &institution_token(),
        None,
        &[],
    );
    assert!(!h.to_string().contains(&task), "{h}");
    // The district office sees where it came from.
    let (_, f) = w.call(
        Method::GET,
        &format!("/api/v1/spot-checks/findings/{finding}"),
        &officer("530102"),
        None,
        &[],
    );
    assert!(f["source"].as_str().unwrap().contains(&task));
}

#[test]
fn sc_draw_a_run_in_pages_of_1_has_the_same_seed_and_samples_as_one_page_of_100() {
    let classes: Vec<Seeded> = (0..5)
        .map(|i| Seeded {
            roster: 12 + i * 7,
            shared_phone: i == 2,
            in_training: true,
        })
        .collect();
    let run_with = |page_size: usize| {
        let w = World::new();
        let ids = w.seed_classes(&classes);
        w.register_inspectors(&["insp-a", "insp-b"]);
        w.run_to_end(&json!({"window": WINDOW, "seed": "314159", "page_size": page_size}));
        let p = w.published(WINDOW);
        (
            p["seed"].clone(),
            p["classes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| (c["class_id"].clone(), c["sample"].clone()))
                .collect::<Vec<_>>(),
            ids,
        )
    };
    let (seed_1, samples_1, ids) = run_with(1);
    let (seed_100, samples_100, _) = run_with(100);
    assert_eq!(seed_1, seed_100);
    assert_eq!(samples_1.len(), ids.len());
    assert_eq!(samples_1, samples_100);
}

#[test]
fn sc_every_a_class_whose_in_training_check_passed_is_sampled_again_in_the_next_run() {
    let w = World::new();
    let ids = w.seed_classes(&mixed()[..1]); // 2022-06-13 .. 2022-06-27
    w.register_inspectors(&["insp-a"]);
    w.run_to_end(&json!({"window": WINDOW}));
    classes::record_check(
        &w.kv,
        &ids[0],
        CheckRecord {
            kind: CheckKind::InTraining,
            officer: "王科长".into(),
            at: now(),
            result: CheckResult::Passed,
            notes: String::new(),
            recorded_by: Actor {
                sub: "officer-1".into(),
                role: "district_officer".into(),
            },
            recorded_at: now(),
            unaudited: false,
        },
        |c| policy::checks::decide_order(CheckKind::InTraining, c.status, false),
        now(),
    )
    .unwrap();
    // The next day's run, and the run of the last class day, still sample it; the day after does not.
    for (window, sampled) in [
        ("2022-06-21", true),
        ("2022-06-27", true),
        ("2022-06-28", false),
    ] {
        w.run_to_end(&json!({"window": window}));
        let p = w.published(window);
        let n = p["classes"].as_array().unwrap().len();
        assert_eq!(n == 1, sampled, "SC-EVERY in {window}: {p}");
    }
}

/// Records a passed check straight in the store (CK-ORDER only; the route's
/// CK-WINDOW is tested in the class-opening tests), as officer `officer-1`.
fn check_in_store(w: &World, class_id: &str, kind: CheckKind, at: DateTime<Utc>) {
    classes::record_check(
        &w.kv,
        class_id,
        CheckRecord {
            kind,
            officer: "王科长".into(),
            at,
            result: CheckResult::Passed,
            notes: String::new(),
            recorded_by: Actor {
                sub: "officer-1".into(),
                role: "district_officer".into(),
            },
            recorded_at: at,
            unaudited: false,
        },
        |c| policy::checks::decide_order(kind, c.status, c.has_passed(CheckKind::InTraining)),
        at,
    )
    .unwrap();
}

/// 50 rounds: the last open call of a class is a denial, sent at the same
/// moment as the settlement of the denying trainee's voucher (all other gates
/// open). Whatever the interleaving, the voucher is never settled: before the
/// call the open task stops it (VO-CALLS); after the call's swap the task
/// names its denial, whether or not the finding is in the hold yet (SC-DENY).
#[test]
fn sc_deny_fifty_rounds_of_a_settlement_racing_a_denial_never_settle_the_deniers_voucher() {
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    for round in 0..50 {
        let w = std::sync::Arc::new(World::new());
        let ids = w.seed_classes(&mixed()[..1]);
        let class_id = ids[0].clone();
        w.register_inspectors(&["insp-a"]);
        w.run_to_end(&json!({"window": WINDOW, "seed": "314159"}));
        let tasks = w.my_tasks("insp-a");
        let target = tasks[round % tasks.len()].clone();
        let line = target["roster_line"].as_u64().unwrap() as usize - 1;
        // The denier's voucher, issued and redeemed while the class trains.
        let (app, _) = fixtures::valid_class_from(
            "2022-06-13".parse().unwrap(),
            "2022-06-01".parse().unwrap(),
            40,
            1,
        );
        let id_number = app.roster[line].id_number.expose().to_string();
        let (s, v) = w.vouchers(
            Method::POST,
            "/api/v1/cards/activations",
            &token(Role::SocialSecurity, "cards", None),
            Some(json!({"id_number": id_number, "active": true})),
        );
        assert_eq!(s, StatusCode::OK, "{v}");
        let inst = token(Role::Institution, "inst-1", None);
        let (s, v) = w.vouchers(
            Method::POST,
            &format!("/api/v1/classes/{class_id}/vouchers"),
            &inst,
            Some(json!({"lines": [line]})),
        );
        assert_eq!((s, v["issued"].clone()), (StatusCode::OK, json!(1)), "{v}");
        let code = v["results"][0]["voucher"]["code_compact"]
            .as_str()
            .unwrap()
            .to_string();
        let (s, v) = w.vouchers(
            Method::POST,
            &format!("/api/v1/vouchers/{code}/redeem"),
            &inst,
            None,
        );
        assert_eq!(s, StatusCode::OK, "{v}");
        // Every other call answered; the class checked and assessed; the last day past.
        for t in tasks.iter().filter(|t| t["task_id"] != target["task_id"]) {
            let (s, _) = w.record_call(
                "insp-a",
                t["task_id"].as_str().unwrap(),
                answered(true, false),
            );
            assert_eq!(s, StatusCode::OK);
        }
        check_in_store(&w, &class_id, CheckKind::InTraining, now());
        w.later(8 * 24 * 60); // 2022-06-28 10:00 CST
        let assessed = *w.now.lock().unwrap();
        check_in_store(&w, &class_id, CheckKind::PostAssessment, assessed);
        // The race.
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
        let settle = {
            let (w, barrier, code) = (w.clone(), barrier.clone(), code.clone());
            std::thread::spawn(move || {
                barrier.wait();
                w.vouchers(
                    Method::POST,
                    &format!("/api/v1/vouchers/{code}/settle"),
                    &token_at(Role::DistrictOfficer, "officer-2", Some("530102"), assessed),
                    Some(json!({"certificate_no": "Y530000220600001"})),
                )
            })
        };
        let deny = {
            let (w, barrier) = (w.clone(), barrier.clone());
            let task = target["task_id"].as_str().unwrap().to_string();
            std::thread::spawn(move || {
                barrier.wait();
                w.call(
                    Method::POST,
                    &format!("/api/v1/spot-checks/tasks/{task}/calls"),
                    &token_at(Role::Inspector, "insp-a", None, assessed),
                    Some(answered(false, false)),
                    &[],
                )
            })
        };
        let (settled, denied) = (settle.join().unwrap(), deny.join().unwrap());
        assert_eq!(
            denied.0,
            StatusCode::OK,
            "round {round}: the denial is recorded: {}",
            denied.1
        );
        assert!(denied.1["finding"]["id"].is_string());
        assert_ne!(
            settled.0,
            StatusCode::OK,
            "round {round}: the denier's voucher was settled: {}",
            settled.1
        );
        assert_ne!(
            settled.0,
            StatusCode::UNAUTHORIZED,
            "round {round}: the settlement's token was refused: {}",
            settled.1
        );
        let v = store::vouchers::get(&w.kv, &code).unwrap().unwrap();
        assert_eq!(
            v.state,
            policy::vouchers::VoucherState::Redeemed,
            "round {round}"
        );
        *outcomes
            .entry(settled.1["code"].as_str().unwrap_or("?").to_string())
            .or_default() += 1;
    }
    // Which gate stopped each settlement: the open call (VO-CALLS) or the denial (SC-DENY).
    println!("settlements refused by: {outcomes:?}");
}

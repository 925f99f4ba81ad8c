//! The vouchers routes on the in-memory store: issue (and 100 concurrent issues
//! on real threads), the lifecycle and its illegal moves, spot-check holds,
//! masking, the archive, progress figures, and the trainee's own
//! views (WeChat login and binding: tests/wechat.rs). Every rejected request is checked to leave the store as it was.

mod support;

use app::vouchers;
use chrono::{DateTime, TimeZone, Utc};
use policy::class_opening::{self, ClassApplication};
use policy::fixtures;
use policy::ids::CreditCode;
use serde_json::{Value, json};
use store::audit::Actor;
use store::classes::{self, CheckKind, CheckRecord, CheckResult};
use store::findings::{self, Finding, FindingKind, FindingStatus};
use store::{KeyValue, MemoryStore};
use web::auth::{Claims, mint};
use web::{Env, Role, Secrets};

use support::{HMAC as PII, JWT, random, secrets_with_wechat as secrets};

fn at(s: &str) -> DateTime<Utc> {
    // `s` is a CST date: noon CST.
    let d: chrono::NaiveDate = s.parse().unwrap();
    Utc.from_utc_datetime(&d.and_hms_opt(4, 0, 0).unwrap())
}

struct World {
    kv: MemoryStore,
    secrets: Secrets,
    class_id: String,
    app: ClassApplication,
}

fn claims(role: Role, now: DateTime<Utc>) -> Claims {
    support::claims(role, None, now.timestamp() - 10, now.timestamp() + 3600)
}

fn token(role: Role, now: DateTime<Utc>) -> String {
    mint(&claims(role, now), JWT)
}

/// A token of `person`, bound in `kv` as a successful WeChat binding binds.
fn trainee_token(kv: &MemoryStore, person: &str, now: DateTime<Utc>) -> String {
    support::wechat::bind(kv, person);
    let mut c = claims(Role::Trainee, now);
    c.sub = support::wechat::trainee_sub(person);
    c.person = Some(person.to_string());
    mint(&c, JWT)
}

struct Reply {
    status: u16,
    body: Value,
    text: String,
    headers: http::HeaderMap,
}

fn request(
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
    idem: Option<&str>,
) -> web::Request {
    let headers: Vec<(&str, &str)> = idem.map(|k| ("idempotency-key", k)).into_iter().collect();
    support::request(
        method,
        path,
        token,
        body.as_ref().and_then(support::json_body),
        &headers,
    )
}

fn reply(res: web::Response) -> Reply {
    let a = support::answer(res);
    Reply {
        status: a.status.as_u16(),
        body: a.body,
        text: a.text,
        headers: a.headers,
    }
}

impl World {
    /// Integrates the audit log and verifies it with every live voucher,
    /// class and hold: nothing may be found.
    fn assert_audit_intact(&self) {
        let (size, found) = store::audit::verify::integrate_and_verify_all(
            &self.kv,
            &store::audit::tree::LogSigner::for_tests(),
        )
        .unwrap();
        assert!(size > 0 && found.is_empty(), "{size} events: {found:?}");
    }

    /// An approved 养老护理员 class of `n` trainees (filed 2022-06-01, first day 2022-06-13).
    fn new(n: usize) -> World {
        World::starting(n, "2022-06-13", "2022-06-01")
    }

    /// An approved class of `n` trainees with first day `start`, filed on `filed`.
    fn starting(n: usize, start: &str, filed: &str) -> World {
        let (app, ctx) =
            fixtures::valid_class_from(start.parse().unwrap(), filed.parse().unwrap(), n, 0);
        World::of(app, ctx, filed)
    }

    /// The approved class `app`, filed on `filed`.
    fn of(
        app: policy::class_opening::ClassApplication,
        ctx: policy::class_opening::Context,
        filed: &str,
    ) -> World {
        let kv = MemoryStore::new();
        let d = class_opening::evaluate(&app, &ctx, policy::Policy::shipped());
        assert_eq!(
            d.outcome,
            policy::Outcome::Approved,
            "{:?}",
            d.blocking_rules
        );
        let hasher = store::pii::PiiHasher::new(PII);
        let filed = classes::file(
            &kv,
            &hasher,
            app.clone(),
            &classes::Rules::new(|_, _, _| d.clone(), class_opening::clashes),
            ctx.today,
            Actor {
                sub: "inst".into(),
                role: "institution".into(),
            },
            at(filed),
        )
        .unwrap();
        World {
            kv,
            secrets: secrets(),
            class_id: filed.record.id,
            app,
        }
    }

    fn env(&self, now: DateTime<Utc>) -> Env<'_, MemoryStore> {
        Env {
            kv: &self.kv,
            secrets: &self.secrets,
            now,
            random: &random,
        }
    }

    fn send(&self, now: DateTime<Utc>, req: web::Request) -> Reply {
        reply(vouchers::handle(&self.env(now), &req))
    }

    fn person(&self, line: usize) -> String {
        store::pii::PiiHasher::new(PII).person_ref(&self.app.roster[line].id_number)
    }

    fn activate(&self, lines: impl IntoIterator<Item = usize>) {
        let now = at("2022-06-02");
        let t = token(Role::SocialSecurity, now);
        for l in lines {
            let id = self.app.roster[l].id_number.expose().to_string();
            let r = self.send(
                now,
                request(
                    "POST",
                    "/api/v1/cards/activations",
                    Some(&t),
                    Some(json!({"id_number": id, "active": true})),
                    None,
                ),
            );
            assert_eq!(r.status, 200, "{}", r.text);
        }
    }

    fn issue(&self, body: Value, key: Option<&str>) -> Reply {
        let now = at("2022-06-05");
        self.send(
            now,
            request(
                "POST",
                &format!("/api/v1/classes/{}/vouchers", self.class_id),
                Some(&token(Role::Institution, now)),
                Some(body),
                key,
            ),
        )
    }

    fn check(&self, kind: CheckKind, day: &str) {
        let now = at(day);
        classes::record_check(
            &self.kv,
            &self.class_id,
            CheckRecord {
                kind,
                officer: "王科长".into(),
                at: now,
                result: CheckResult::Passed,
                notes: String::new(),
                recorded_by: Actor {
                    sub: "o".into(),
                    role: "district_officer".into(),
                },
                recorded_at: now,
                unaudited: false,
            },
            // CK-ORDER only: these checks are written straight to the store,
            // dated as each test needs (CK-WINDOW is the route's, tested there).
            |c| policy::checks::decide_order(kind, c.status, c.has_passed(CheckKind::InTraining)),
            now,
        )
        .unwrap();
    }

    fn act(&self, day: &str, role: Role, code: &str, action: &str, body: Option<Value>) -> Reply {
        let now = at(day);
        self.send(
            now,
            request(
                "POST",
                &format!("/api/v1/vouchers/{code}/{action}"),
                Some(&token(role, now)),
                body,
                None,
            ),
        )
    }

    fn settle(&self, day: &str, code: &str) -> Reply {
        self.act(
            day,
            Role::DistrictOfficer,
            code,
            "settle",
            Some(json!({"certificate_no": "Y530000220600001"})),
        )
    }

    fn redeem(&self, day: &str, code: &str) -> Reply {
        self.act(day, Role::Institution, code, "redeem", None)
    }

    fn open_finding(&self, id: &str, line: usize) {
        findings::open(
            &self.kv,
            &Finding {
                id: id.into(),
                class_id: self.class_id.clone(),
                roster_line: line,
                person: self.person(line),
                kind: FindingKind::DeniedAttendance,
                status: FindingStatus::Open,
                source: "run:test".into(),
                opened_at: at("2022-06-20"),
                opened_by: Actor {
                    sub: "insp".into(),
                    role: "inspector".into(),
                },
                rectification: None,
            },
            at("2022-06-20"),
        )
        .unwrap();
    }

    /// Issues vouchers to lines 0..n and returns their codes.
    fn issued(&self, n: usize) -> Vec<String> {
        self.activate(0..n);
        let r = self.issue(json!({"lines": (0..n).collect::<Vec<_>>()}), None);
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["issued"], n, "{}", r.text);
        r.body["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["voucher"]["code_compact"].as_str().unwrap().to_string())
            .collect()
    }

    /// The pre-opening check, on the eve of the first class day (VO-OPEN).
    fn opened(&self) {
        self.check(CheckKind::PreOpening, "2022-06-12");
    }

    /// The in-training check and the post-training assessment of an opened class.
    fn assessed(&self) {
        self.check(CheckKind::InTraining, "2022-06-20");
        self.check(CheckKind::PostAssessment, "2022-06-28");
    }
}

/// Asserts a rejected request left every key and value as it was.
fn unchanged(w: &World, f: impl FnOnce() -> Reply) -> Reply {
    let before = w.kv.dump();
    let r = f();
    assert!(
        r.status >= 400,
        "expected a refusal, got {}: {}",
        r.status,
        r.text
    );
    assert_eq!(before, w.kv.dump(), "the store changed after {}", r.text);
    r
}

#[test]
fn issuing_for_the_roster_gives_a_voucher_to_each_eligible_trainee_and_refuses_the_rest_with_rule_ids()
 {
    let w = World::new(5);
    w.activate([0, 1, 2]);
    let r = w.issue(json!({}), None);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        (r.body["issued"].as_u64(), r.body["refused"].as_u64()),
        (Some(3), Some(2))
    );
    let results = r.body["results"].as_array().unwrap();
    assert_eq!(results[3]["outcome"], "refused");
    assert_eq!(results[3]["blocking_rules"], json!(["VO-CARD"]));
    let v = &results[0]["voucher"];
    assert_eq!(v["state"], "issued");
    assert_eq!(
        v["amount_fen"], 160_000,
        "line 0 is 脱贫劳动力: base + uplift"
    );
    assert_eq!(results[1]["voucher"]["amount_fen"], 140_000);
    assert_eq!(v["fund"], "employment_subsidy");
    assert_eq!(v["last_valid_day"], "2022-09-04");
    assert!(v["qr_payload"].as_str().unwrap().starts_with("KMVT1:"));
    assert_eq!(v["code"].as_str().unwrap().len(), 24);
    // Masked ID numbers in the answer, never the full one.
    let full = w.app.roster[0].id_number.expose();
    assert!(!r.text.contains(full));
    assert_eq!(results[0]["id_number"], w.app.roster[0].id_number.masked());
    // A second issue finds the vouchers already there.
    let again = w.issue(json!({"lines": [0]}), None);
    assert_eq!(again.body["existing"], 1, "{}", again.text);
}

/// Issue 16 item 5: a 网络创业培训 class's vouchers are priced by the
/// `online_business` standard, an SYB class's by `syb` (VO-AMOUNT).
#[test]
fn vouchers_of_a_network_entrepreneurship_class_are_priced_by_the_online_business_standard() {
    for (project, fen) in [("online_business", 80_000), ("syb", 100_000)] {
        let (app, ctx) = fixtures::valid_project_class(project, 3);
        let w = World::of(app, ctx, "2022-06-01");
        w.activate([0]);
        let r = w.issue(json!({"lines": [0]}), None);
        assert_eq!(r.status, 200, "{}", r.text);
        let item = &r.body["results"][0];
        assert_eq!(item["outcome"], "issued", "{project}: {item}");
        let v = &item["voucher"];
        assert_eq!(v["amount_fen"], fen, "{project}");
        assert_eq!(v["amount_basis"], format!("project:{project}@2022-04-22"));
        assert_eq!(
            (v["project"].as_str(), v["occupation"].is_null()),
            (Some(project), true)
        );
    }
}

#[test]
fn one_hundred_concurrent_issues_for_one_trainee_give_exactly_one_voucher() {
    let w = World::new(3);
    w.activate([0]);
    let now = at("2022-06-05");
    let t = token(Role::Institution, now);
    let path = format!("/api/v1/classes/{}/vouchers", w.class_id);
    let replies: Vec<Reply> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..100)
            .map(|i| {
                let (w, t, path) = (&w, &t, &path);
                s.spawn(move || {
                    let req = request(
                        "POST",
                        path,
                        Some(t),
                        Some(json!({"lines": [0]})),
                        Some(&format!("key-{i}")),
                    );
                    reply(vouchers::handle(&w.env(now), &req))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let issued = replies.iter().filter(|r| r.body["issued"] == 1).count();
    let existing = replies.iter().filter(|r| r.body["existing"] == 1).count();
    assert!(replies.iter().all(|r| r.status == 200), "all answered");
    assert_eq!((issued, existing), (1, 99), "invariant 1");
    let ledger = store::vouchers::ledger(&w.kv, &w.person(0)).unwrap();
    assert_eq!(ledger.entries.len(), 1);
    let vouchers_in_store =
        w.kv.dump()
            .keys()
            .filter(|k| k.starts_with("vt:voucher:") && !k.contains('#'))
            .count();
    assert_eq!(vouchers_in_store, 1);
    assert_eq!(
        w.kv.writes_to(&store::vouchers::voucher_key(&ledger.entries[0].code)),
        1,
        "one writer: the record is written once"
    );
    let codes: std::collections::BTreeSet<&str> = replies
        .iter()
        .map(|r| r.body["results"][0]["voucher"]["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes.len(), 1, "every answer names the one voucher");
}

#[test]
fn the_same_idempotency_key_replays_the_first_answer_and_issues_nothing_more() {
    let w = World::new(2);
    w.activate([0, 1]);
    let a = w.issue(json!({"lines": [0]}), Some("k1"));
    let b = w.issue(json!({"lines": [0]}), Some("k1"));
    assert_eq!(a.text, b.text);
    let c = w.issue(json!({"lines": [1]}), Some("k1"));
    assert_eq!(
        (c.status, c.body["code"].as_str()),
        (422, Some("idempotency_key_reused"))
    );
}

#[test]
fn vo_flow_illegal_moves_are_refused_naming_the_state_and_change_nothing() {
    let w = World::new(4);
    let codes = w.issued(4);
    // Settle before redeem.
    let r = unchanged(&w, || w.settle("2022-06-30", &codes[0]));
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (409, Some("voucher_state_conflict"))
    );
    assert_eq!(r.body["state"], "issued");
    assert_eq!(r.body["rule"], "VO-FLOW");
    assert!(r.body["title"].as_str().unwrap().contains("已发放"));
    // Redeem twice.
    w.opened();
    assert_eq!(w.redeem("2022-06-13", &codes[0]).status, 200);
    let r = unchanged(&w, || w.redeem("2022-06-14", &codes[0]));
    assert_eq!(
        (r.status, r.body["state"].as_str()),
        (409, Some("redeemed"))
    );
    // Settle before the class's assessment is recorded.
    let r = unchanged(&w, || w.settle("2022-06-28", &codes[0]));
    assert_eq!(r.body["code"], "settlement_refused", "{}", r.text);
    // Settle a revoked voucher.
    let rv = w.act(
        "2022-06-13",
        Role::Institution,
        &codes[1],
        "revoke",
        Some(json!({"reason": "学员退学"})),
    );
    assert_eq!(rv.status, 200, "{}", rv.text);
    w.assessed();
    let r = unchanged(&w, || w.settle("2022-06-30", &codes[1]));
    assert_eq!((r.status, r.body["state"].as_str()), (409, Some("revoked")));
    // Settle, then never again.
    let ok = w.settle("2022-06-30", &codes[0]);
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_eq!(ok.body["state"], "settled");
    let r = unchanged(&w, || w.settle("2022-07-01", &codes[0]));
    assert_eq!((r.status, r.body["state"].as_str()), (409, Some("settled")));
    // Unknown and mistyped codes are told apart.
    let mut typo = codes[2].clone().into_bytes();
    typo[0] = if typo[0] == b'A' { b'B' } else { b'A' };
    let typo = String::from_utf8(typo).unwrap();
    let r = unchanged(&w, || w.redeem("2022-06-13", &typo));
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (422, Some("voucher_code_mistyped"))
    );
    let unknown = policy::vouchers::VoucherCode::from_random(&[1; 12]);
    let r = unchanged(&w, || w.redeem("2022-06-13", unknown.as_str()));
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (404, Some("voucher_not_found"))
    );
}

#[test]
fn sc_deny_an_open_finding_holds_the_trainees_voucher_and_the_whole_class() {
    let w = World::new(3);
    let codes = w.issued(3);
    w.opened();
    for c in &codes {
        assert_eq!(w.redeem("2022-06-13", c).status, 200);
    }
    w.assessed();
    w.open_finding("F-1", 0);
    let own = unchanged(&w, || w.settle("2022-06-30", &codes[0]));
    assert_eq!(
        (own.status, own.body["code"].as_str()),
        (409, Some("settlement_held"))
    );
    assert_eq!(own.body["held_by"], "own_finding");
    let other = unchanged(&w, || w.settle("2022-06-30", &codes[1]));
    assert_eq!(other.body["held_by"], "other_finding", "{}", other.text);
    findings::close(
        &w.kv,
        "F-1",
        findings::Rectification {
            notes: "已整改".into(),
            by: Actor {
                sub: "o".into(),
                role: "district_officer".into(),
            },
            at: at("2022-06-29"),
        },
    )
    .unwrap();
    assert_eq!(w.settle("2022-06-30", &codes[1]).status, 200);
    w.assert_audit_intact();
}

#[test]
fn vo_valid_redeeming_on_the_last_valid_day_works_and_the_day_after_expires_the_voucher() {
    let w = World::new(3);
    let codes = w.issued(3);
    w.opened();
    // Issued 2022-06-05: last valid day 2022-09-04.
    assert_eq!(
        w.redeem("2022-09-04", &codes[0]).status,
        200,
        "VO-VALID last day"
    );
    let r = w.redeem("2022-09-05", &codes[1]);
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (409, Some("voucher_expired"))
    );
    assert_eq!(r.body["rule"], "VO-VALID");
    let v = store::vouchers::get(&w.kv, &codes[1]).unwrap().unwrap();
    assert_eq!(
        v.state,
        policy::vouchers::VoucherState::Expired,
        "expiry recorded on use"
    );
    // The sweep expires the third and leaves the others.
    let now = at("2022-09-05");
    let sw = w.send(
        now,
        request(
            "POST",
            "/api/v1/vouchers/sweep",
            Some(&token(Role::Scheduler, now)),
            None,
            Some("sweep-2022-09-05"),
        ),
    );
    assert_eq!(sw.status, 200, "{}", sw.text);
    assert_eq!(sw.body["expired"], json!([codes[2]]));
    assert_eq!(sw.body["scanned"], 3);
    let v = store::vouchers::get(&w.kv, &codes[2]).unwrap().unwrap();
    assert_eq!(v.state, policy::vouchers::VoucherState::Expired);
    // An institution cannot sweep.
    let r = unchanged(&w, || {
        w.send(
            now,
            request(
                "POST",
                "/api/v1/vouchers/sweep",
                Some(&token(Role::Institution, now)),
                None,
                None,
            ),
        )
    });
    assert_eq!(r.status, 403);
    w.assert_audit_intact();
}

#[test]
fn vo_archive_and_progress_figures_match_the_settled_vouchers_exactly() {
    let w = World::new(6);
    let codes = w.issued(6);
    w.opened();
    for c in &codes {
        assert_eq!(w.redeem("2022-06-13", c).status, 200);
    }
    w.assessed();
    let rv = w.act(
        "2022-06-29",
        Role::DistrictOfficer,
        &codes[5],
        "revoke",
        Some(json!({"reason": "未参加考核"})),
    );
    assert_eq!(rv.status, 200, "{}", rv.text);
    let mut expected_fen = 0;
    for c in &codes[..5] {
        let r = w.settle("2022-06-30", c);
        assert_eq!(r.status, 200, "{}", r.text);
        expected_fen += r.body["amount_fen"].as_i64().unwrap();
    }
    assert_eq!(expected_fen, 3 * 160_000 + 2 * 140_000);
    let now = at("2022-07-01");
    let p = w.send(
        now,
        request(
            "GET",
            "/api/v1/stats/progress?year=2022",
            Some(&token(Role::BureauAdmin, now)),
            None,
            None,
        ),
    );
    assert_eq!(p.status, 200, "{}", p.text);
    assert_eq!(p.body["city"]["trainings"], 5);
    assert_eq!(p.body["city"]["certificates"], 5);
    assert_eq!(p.body["city"]["amount_fen"], expected_fen);
    assert_eq!(p.body["city"]["target_trainings"], 155_200);
    let wuhua = p.body["districts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["district"] == "530102")
        .unwrap();
    assert_eq!(
        (wuhua["trainings"].as_i64(), wuhua["amount_fen"].as_i64()),
        (Some(5), Some(expected_fen))
    );
    let fund = p.body["funds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["fund"] == "employment_subsidy")
        .unwrap();
    assert_eq!(fund["amount_fen"], expected_fen);
    // 康养云师傅's own target over 2021–2022 (plan 二(三)5), against its period.
    let kangyang = p.body["programmes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["programme"] == "kangyang_yun_shifu")
        .unwrap();
    assert_eq!(
        kangyang["target"],
        json!({"from": "2021-01-01", "to": "2022-12-31", "trainings": 23400, "certificates": null,
               "trainings_in_period": 5, "certificates_in_period": 5,
               "trainings_percent_of_target": "0.0", "certificates_percent_of_target": null,
               "reference": "昆人社通〔2022〕34号 二(三)5: 昆明市 2021-2022 年预计培训人数 23400人次 (云人社发〔2021〕9号)"})
    );
    assert!(
        p.body["programmes"][0]["target"].is_null(),
        "no target for 职业技能提升行动"
    );
    // No district target loaded: null, not zero.
    assert!(wuhua["target_trainings"].is_null() && wuhua["trainings_percent_of_target"].is_null());
    // Archive: settled and revoked trainings, for the officer and the trainee themselves.
    let officer = w.send(
        now,
        request(
            "GET",
            &format!("/api/v1/people/{}/archive", w.person(5)),
            Some(&token(Role::DistrictOfficer, now)),
            None,
            None,
        ),
    );
    assert_eq!(officer.status, 200);
    assert_eq!(officer.body["entries"][0]["result"], "revoked");
    let me = w.send(
        now,
        request(
            "GET",
            "/api/v1/me/archive",
            Some(&trainee_token(&w.kv, &w.person(0), now)),
            None,
            None,
        ),
    );
    assert_eq!(me.body["entries"][0]["result"], "settled");
    assert_eq!(me.body["entries"][0]["certificate_no"], "Y530000220600001");
    assert_eq!(me.body["entries"][0]["hours"], 120);
    // Another person's archive is closed to a trainee.
    let other = unchanged(&w, || {
        w.send(
            now,
            request(
                "GET",
                &format!("/api/v1/people/{}/archive", w.person(1)),
                Some(&trainee_token(&w.kv, &w.person(0), now)),
                None,
                None,
            ),
        )
    });
    assert_eq!(other.status, 403);
    // AC-ARCHIVE: an officer of another district, for this person and for a
    // person on no roster at all, gets the same 403 and nothing changes.
    let elsewhere = mint(
        &support::claims(
            Role::DistrictOfficer,
            Some("530103"),
            now.timestamp() - 10,
            now.timestamp() + 3600,
        ),
        JWT,
    );
    for person in [w.person(5), "cd".repeat(32)] {
        let r = unchanged(&w, || {
            w.send(
                now,
                request(
                    "GET",
                    &format!("/api/v1/people/{person}/archive"),
                    Some(&elsewhere),
                    None,
                    None,
                ),
            )
        });
        assert_eq!(r.status, 403, "{}", r.text);
        assert!(!r.text.contains("revoked"));
    }
    // The bureau reads any archive.
    let bureau = w.send(
        now,
        request(
            "GET",
            &format!("/api/v1/people/{}/archive", w.person(5)),
            Some(&token(Role::BureauAdmin, now)),
            None,
            None,
        ),
    );
    assert_eq!(bureau.status, 200);
    w.assert_audit_intact();
}

#[test]
fn vo_year_a_fourth_subsidised_training_in_a_year_is_refused_at_issue() {
    let w = World::new(1);
    w.activate([0]);
    let person = w.person(0);
    // Three vouchers of other occupations in the ledger this year.
    let ledger = store::vouchers::Ledger {
        rev: 1,
        entries: (0..3)
            .map(|i| store::vouchers::LedgerEntry {
                code: format!("OTHER{i}"),
                class_id: format!("KM-2022-90000{i}"),
                roster_line: 0,
                key: policy::vouchers::SubsidyKey::Level(
                    policy::ids::OccupationCode::parse(
                        ["4-10-01-06", "4-10-01-02", "4-03-02-01"][i],
                    )
                    .unwrap(),
                    policy::ids::SkillLevel::Five,
                ),
                issued_on: "2022-05-01".parse().unwrap(),
                last_valid_day: "2022-07-31".parse().unwrap(),
                state: policy::vouchers::VoucherState::Redeemed,
                first_day: None,
                lease_until: None,
            })
            .collect(),
    };
    w.kv.set(
        &store::vouchers::ledger_key(&person),
        &serde_json::to_vec(&ledger).unwrap(),
    )
    .unwrap();
    let r = w.issue(json!({"lines": [0]}), None);
    assert_eq!(r.body["refused"], 1, "{}", r.text);
    assert_eq!(r.body["results"][0]["blocking_rules"], json!(["VO-YEAR"]));
}

#[test]
fn no_key_or_value_in_the_store_and_no_answer_holds_an_id_or_phone_number() {
    let w = World::new(4);
    let codes = w.issued(4);
    w.opened();
    assert_eq!(w.redeem("2022-06-13", &codes[0]).status, 200);
    let dump = w.kv.dump();
    let mut numbers: Vec<String> = Vec::new();
    for t in &w.app.roster {
        numbers.push(t.id_number.expose().to_string());
        numbers.push(t.mobile.expose().to_string());
    }
    // The class record keeps the roster as filed (the class-opening function's
    // record); every key, and every value this function wrote, is clean.
    let class_key = store::keys::class(&w.class_id);
    for (k, v) in &dump {
        for n in &numbers {
            assert!(!k.contains(n.as_str()), "key {k} holds a number");
            if k.starts_with("vt:voucher:")
                || k.starts_with("vt:person:")
                || k.starts_with("vt:card:")
                || k.starts_with("vt:idem:")
                || k.starts_with("vt:audit:")
            {
                assert!(
                    !String::from_utf8_lossy(v).contains(n.as_str()),
                    "{k} holds a number"
                );
            }
        }
        let _ = &class_key;
    }
    let now = at("2022-06-14");
    for (path, role) in [
        (format!("/api/v1/vouchers/{}", codes[0]), Role::Institution),
        (
            format!("/api/v1/classes/{}/vouchers", w.class_id),
            Role::DistrictOfficer,
        ),
    ] {
        let r = w.send(
            now,
            request("GET", &path, Some(&token(role, now)), None, None),
        );
        assert_eq!(r.status, 200, "{}", r.text);
        for n in &numbers {
            assert!(!r.text.contains(n.as_str()), "{path} shows a number");
        }
    }
}

#[test]
fn a_trainee_sees_only_their_own_vouchers() {
    let w = World::new(2);
    let codes = w.issued(2);
    let now = at("2022-06-14");
    let mine = w.send(
        now,
        request(
            "GET",
            "/api/v1/me/vouchers",
            Some(&trainee_token(&w.kv, &w.person(0), now)),
            None,
            None,
        ),
    );
    assert_eq!(mine.status, 200);
    assert_eq!(mine.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(mine.body["items"][0]["code_compact"], codes[0].as_str());
    let theirs = w.send(
        now,
        request(
            "GET",
            &format!("/api/v1/vouchers/{}", codes[1]),
            Some(&trainee_token(&w.kv, &w.person(0), now)),
            None,
            None,
        ),
    );
    assert_eq!(theirs.status, 403);
    let other_inst = {
        let mut c = claims(Role::Institution, now);
        c.institution = Some(CreditCode::parse(fixtures::OTHER_INSTITUTION).unwrap());
        mint(&c, JWT)
    };
    let r = w.send(
        now,
        request(
            "GET",
            &format!("/api/v1/vouchers/{}", codes[0]),
            Some(&other_inst),
            None,
            None,
        ),
    );
    assert_eq!(r.status, 403);
}

#[test]
fn key_value_calls_of_issue_redeem_and_settle_are_counted() {
    let w = World::new(2);
    w.activate([0, 1]);
    let c0 = w.kv.calls();
    let r = w.issue(json!({"lines": [0]}), Some("one"));
    assert_eq!(r.body["issued"], 1);
    let issue_calls = w.kv.calls() - c0;
    let code = r.body["results"][0]["voucher"]["code_compact"]
        .as_str()
        .unwrap()
        .to_string();
    let c1 = w.kv.calls();
    w.opened();
    assert_eq!(w.redeem("2022-06-13", &code).status, 200);
    let redeem_calls = w.kv.calls() - c1;
    w.assessed();
    let c2 = w.kv.calls();
    assert_eq!(w.settle("2022-06-30", &code).status, 200);
    let settle_calls = w.kv.calls() - c2;
    println!(
        "key-value calls: issue one voucher {issue_calls} (with Idempotency-Key), redeem {redeem_calls}, settle {settle_calls}"
    );
    // A roster of ten more trainees in one request.
    let w10 = World::new(10);
    w10.activate(0..10);
    let c3 = w10.kv.calls();
    assert_eq!(w10.issue(json!({}), Some("roster")).body["issued"], 10);
    let roster_calls = w10.kv.calls() - c3;
    println!("key-value calls: issue a roster of 10 in one request {roster_calls}");
    assert!(issue_calls <= 40, "issue {issue_calls}");
    assert!(settle_calls <= 45, "settle {settle_calls}");
}

#[test]
fn refused_issue_requests_leave_the_store_unchanged() {
    let w = World::new(3);
    w.activate([0, 1, 2]);
    let now = at("2022-06-05");
    let path = format!("/api/v1/classes/{}/vouchers", w.class_id);
    let other_inst = {
        let mut c = claims(Role::Institution, now);
        c.institution = Some(CreditCode::parse(fixtures::OTHER_INSTITUTION).unwrap());
        mint(&c, JWT)
    };
    let cases: Vec<(&str, Option<String>, Value, u16, &str)> = vec![
        ("no token", None, json!({}), 401, "unauthenticated"),
        (
            "a district officer",
            Some(token(Role::DistrictOfficer, now)),
            json!({}),
            403,
            "forbidden",
        ),
        (
            "another institution",
            Some(other_inst),
            json!({}),
            403,
            "forbidden",
        ),
        (
            "a line off the roster",
            Some(token(Role::Institution, now)),
            json!({"lines": [7]}),
            422,
            "validation_failed",
        ),
        (
            "an unknown field",
            Some(token(Role::Institution, now)),
            json!({"line": [0]}),
            422,
            "validation_failed",
        ),
        (
            "an invalid ID number",
            Some(token(Role::Institution, now)),
            json!({"id_numbers": ["130402198207290622"]}),
            422,
            "validation_failed",
        ),
    ];
    for (case, tok, body, status, code) in cases {
        let r = unchanged(&w, || {
            w.send(
                now,
                request("POST", &path, tok.as_deref(), Some(body), Some("same-key")),
            )
        });
        assert_eq!(
            (r.status, r.body["code"].as_str()),
            (status, Some(code)),
            "{case}: {}",
            r.text
        );
        assert!(!r.text.contains("130402198207290622"), "{case}");
    }
    // Issue by ID number: the line is found by its keyed hash.
    let by_id = w.issue(
        json!({"id_numbers": [w.app.roster[2].id_number.expose()]}),
        None,
    );
    assert_eq!(by_id.body["results"][0]["line"], 2, "{}", by_id.text);
    assert_eq!(by_id.body["issued"], 1);
}

#[test]
fn vo_valid_a_voucher_reads_as_expired_after_its_last_valid_day_before_any_sweep() {
    let w = World::new(1);
    let codes = w.issued(1);
    let read = |day: &str| {
        let now = at(day);
        w.send(
            now,
            request(
                "GET",
                &format!("/api/v1/vouchers/{}", codes[0]),
                Some(&token(Role::Institution, now)),
                None,
                None,
            ),
        )
        .body["state"]
            .clone()
    };
    assert_eq!(read("2022-09-04"), "issued", "VO-VALID last valid day");
    assert_eq!(read("2022-09-05"), "expired", "VO-VALID the day after");
    // Revoking an expired voucher is an illegal move.
    let r = unchanged(&w, || {
        w.act(
            "2022-09-05",
            Role::DistrictOfficer,
            &codes[0],
            "revoke",
            Some(json!({"reason": "测试"})),
        )
    });
    assert_eq!((r.status, r.body["state"].as_str()), (409, Some("expired")));
}

#[test]
fn vo_open_a_voucher_cannot_be_redeemed_before_the_pre_opening_check_has_passed() {
    let w = World::new(2);
    let codes = w.issued(2);
    // The institution tries to use the voucher of a class the district office has not opened.
    let r = unchanged(&w, || w.redeem("2022-06-13", &codes[0]));
    assert_eq!(
        (r.status, r.body["code"].as_str(), r.body["rule"].as_str()),
        (409, Some("class_not_opened"), Some("VO-OPEN")),
        "{}",
        r.text
    );
    assert_eq!(r.body["class_state"], "approved");
    // A failed pre-opening check does not open it either.
    classes::record_check(
        &w.kv,
        &w.class_id,
        CheckRecord {
            kind: CheckKind::PreOpening,
            officer: "王科长".into(),
            at: at("2022-06-12"),
            result: CheckResult::Failed,
            notes: "场地不符".into(),
            recorded_by: Actor {
                sub: "o".into(),
                role: "district_officer".into(),
            },
            recorded_at: at("2022-06-12"),
            unaudited: false,
        },
        |c| policy::checks::decide_order(CheckKind::PreOpening, c.status, false),
        at("2022-06-12"),
    )
    .unwrap();
    let r = unchanged(&w, || w.redeem("2022-06-13", &codes[0]));
    assert_eq!(
        r.body["code"], "class_not_opened",
        "VO-OPEN after a failed check"
    );
    // Once the pre-opening check passes, the same voucher is used.
    w.opened();
    let r = w.redeem("2022-06-13", &codes[0]);
    assert_eq!(
        (r.status, r.body["state"].as_str()),
        (200, Some("redeemed")),
        "{}",
        r.text
    );
}

#[test]
fn vo_class_no_voucher_is_issued_for_a_class_whose_training_has_ended() {
    let w = World::new(2);
    w.activate([0, 1]);
    w.opened();
    let issue_on = |day: &str, line: usize| {
        let now = at(day);
        w.send(
            now,
            request(
                "POST",
                &format!("/api/v1/classes/{}/vouchers", w.class_id),
                Some(&token(Role::Institution, now)),
                Some(json!({"lines": [line]})),
                None,
            ),
        )
    };
    // The last class day (2022-06-27): still in training.
    let r = issue_on("2022-06-27", 0);
    assert_eq!(
        r.body["issued"], 1,
        "VO-CLASS on the last class day: {}",
        r.text
    );
    // The day after: training has ended; a trainee added now is a ghost.
    let r = issue_on("2022-06-28", 1);
    assert_eq!(r.body["refused"], 1, "{}", r.text);
    assert_eq!(r.body["results"][0]["blocking_rules"], json!(["VO-CLASS"]));
}

/// Three settled trainings of other occupations whose classes started in 2022.
fn three_trainings_of_2022(w: &World, line: usize) {
    let ledger = store::vouchers::Ledger {
        rev: 1,
        entries: (0..3)
            .map(|i| store::vouchers::LedgerEntry {
                code: format!("OTHER{i}"),
                class_id: format!("KM-2022-90000{i}"),
                roster_line: 0,
                key: policy::vouchers::SubsidyKey::Level(
                    policy::ids::OccupationCode::parse(
                        ["4-10-01-06", "4-10-01-02", "4-03-02-01"][i],
                    )
                    .unwrap(),
                    policy::ids::SkillLevel::Five,
                ),
                issued_on: "2022-05-01".parse().unwrap(),
                last_valid_day: "2022-07-31".parse().unwrap(),
                state: policy::vouchers::VoucherState::Settled,
                first_day: Some("2022-05-09".parse().unwrap()),
                lease_until: None,
            })
            .collect(),
    };
    w.kv.set(
        &store::vouchers::ledger_key(&w.person(line)),
        &serde_json::to_vec(&ledger).unwrap(),
    )
    .unwrap();
}

#[test]
fn vo_year_a_class_starting_2023_01_05_issued_on_2022_12_20_does_not_count_against_2022_and_one_starting_2022_12_31_does()
 {
    for (first_day, refused) in [("2023-01-05", false), ("2022-12-31", true)] {
        let w = World::starting(1, first_day, "2022-12-12");
        w.activate([0]);
        three_trainings_of_2022(&w, 0);
        let now = at("2022-12-20");
        let r = w.send(
            now,
            request(
                "POST",
                &format!("/api/v1/classes/{}/vouchers", w.class_id),
                Some(&token(Role::Institution, now)),
                Some(json!({"lines": [0]})),
                None,
            ),
        );
        assert_eq!(r.status, 200, "{}", r.text);
        let item = &r.body["results"][0];
        if refused {
            assert_eq!(
                item["blocking_rules"],
                json!(["VO-YEAR"]),
                "VO-YEAR: a class starting {first_day} is the fourth training of 2022: {item}"
            );
        } else {
            assert_eq!(
                item["outcome"], "issued",
                "VO-YEAR: a class starting {first_day} counts in 2023, not in 2022 when it was issued: {item}"
            );
            let e = store::vouchers::ledger(&w.kv, &w.person(0))
                .unwrap()
                .entries[3]
                .clone();
            assert_eq!(e.first_day, Some("2023-01-05".parse().unwrap()));
        }
    }
}

#[test]
fn vo_issue_lease_a_line_whose_winner_still_holds_its_lease_answers_503_with_retry_after_and_writes_nothing()
 {
    let w = World::new(1);
    w.activate([0]);
    let now = at("2022-06-05");
    let code = policy::vouchers::VoucherCode::from_random(&[7; 12]);
    // Another request won line 0's ledger entry a moment ago and has not written the record yet.
    let ledger = store::vouchers::Ledger {
        rev: 1,
        entries: vec![store::vouchers::LedgerEntry {
            code: code.as_str().to_string(),
            class_id: w.class_id.clone(),
            roster_line: 0,
            key: policy::vouchers::SubsidyKey::Level(
                policy::ids::OccupationCode::parse("4-10-01-05").unwrap(),
                policy::ids::SkillLevel::Five,
            ),
            issued_on: "2022-06-05".parse().unwrap(),
            last_valid_day: "2022-09-04".parse().unwrap(),
            state: policy::vouchers::VoucherState::Issued,
            first_day: Some("2022-06-13".parse().unwrap()),
            lease_until: Some(now + chrono::Duration::seconds(30)),
        }],
    };
    w.kv.set(
        &store::vouchers::ledger_key(&w.person(0)),
        &serde_json::to_vec(&ledger).unwrap(),
    )
    .unwrap();
    let began = std::time::Instant::now();
    let r = unchanged(&w, || w.issue(json!({"lines": [0]}), Some("lease-1")));
    let waited = began.elapsed();
    assert_eq!(r.status, 503, "{}", r.text);
    assert_eq!(r.body["code"], "voucher_issue_pending");
    assert_eq!(r.body["line"], 0);
    let after: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert_eq!(r.body["retry_after"], after);
    assert!(
        (1..=30).contains(&after) && after <= 30 - waited.as_secs(),
        "VO-ISSUE-LEASE: Retry-After is what is left of the lease: {after}"
    );
    assert!(
        waited >= store::vouchers::ISSUE_PATIENCE,
        "it waited for the record first: {waited:?}"
    );
    // After the lease, the same key finishes the issue with the ledger's code.
    let later = now + chrono::Duration::seconds(31);
    let r = w.send(
        later,
        request(
            "POST",
            &format!("/api/v1/classes/{}/vouchers", w.class_id),
            Some(&token(Role::Institution, later)),
            Some(json!({"lines": [0]})),
            Some("lease-1"),
        ),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["existing"], 1, "{}", r.text);
    assert_eq!(r.body["results"][0]["voucher"]["code"], code.to_string());
    assert_eq!(
        w.kv.writes_to(&store::vouchers::voucher_key(code.as_str())),
        1
    );
}

/// Settles `code` on `day` as the district officer `sub`.
fn settle_as(w: &World, day: &str, sub: &str, code: &str) -> Reply {
    let now = at(day);
    let mut c = claims(Role::DistrictOfficer, now);
    c.sub = sub.into();
    w.send(
        now,
        request(
            "POST",
            &format!("/api/v1/vouchers/{code}/settle"),
            Some(&mint(&c, JWT)),
            Some(json!({"certificate_no": "Y530000220600001"})),
            None,
        ),
    )
}

#[test]
fn vo_ended_settlement_waits_for_the_day_after_the_last_class_day() {
    // The class's last day is 2022-06-27; its assessment is dated on that day.
    let w = World::new(2);
    let codes = w.issued(2);
    w.opened();
    assert_eq!(w.redeem("2022-06-13", &codes[0]).status, 200);
    w.check(CheckKind::InTraining, "2022-06-20");
    w.check(CheckKind::PostAssessment, "2022-06-27");
    for day in ["2022-06-26", "2022-06-27"] {
        let r = unchanged(&w, || settle_as(&w, day, "officer-2", &codes[0]));
        assert_eq!(
            (r.status, r.body["code"].as_str(), r.body["rule"].as_str()),
            (409, Some("training_not_ended"), Some("VO-ENDED")),
            "{day}: {}",
            r.text
        );
        assert_eq!(r.body["last_day"], "2022-06-27");
    }
    let r = settle_as(&w, "2022-06-28", "officer-2", &codes[0]);
    assert_eq!(
        (r.status, r.body["state"].as_str()),
        (200, Some("settled")),
        "{}",
        r.text
    );
}

#[test]
fn vo_4eyes_the_officer_who_recorded_the_assessment_cannot_settle_its_vouchers() {
    let w = World::new(2);
    let codes = w.issued(2);
    w.opened();
    assert_eq!(w.redeem("2022-06-13", &codes[0]).status, 200);
    // The checks are recorded by officer `o` (World::check).
    w.assessed();
    let r = unchanged(&w, || settle_as(&w, "2022-06-30", "o", &codes[0]));
    assert_eq!(
        (r.status, r.body["code"].as_str(), r.body["rule"].as_str()),
        (403, Some("four_eyes"), Some("VO-4EYES")),
        "{}",
        r.text
    );
    let r = settle_as(&w, "2022-06-30", "officer-2", &codes[0]);
    assert_eq!(
        r.status, 200,
        "VO-4EYES: another officer settles: {}",
        r.text
    );
}

#[test]
fn id_retain_the_sweep_purges_idempotency_records_older_than_the_retention() {
    let w = World::new(3);
    let sweep = |day: &str, key: &str| {
        let now = at(day);
        w.send(
            now,
            request(
                "POST",
                "/api/v1/vouchers/sweep",
                Some(&token(Role::Scheduler, now)),
                None,
                Some(key),
            ),
        )
    };
    let records = || {
        w.kv.dump()
            .keys()
            .filter(|k| k.contains("idem:") && !k.contains("index:") && !k.ends_with("#create"))
            .filter(|k| !k.contains("_purge"))
            .count()
    };
    let first = sweep("2022-07-01", "sweep-a");
    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(first.body["idempotency_purged"], 0);
    // 29 days later the first answer is still kept and replayed.
    let r = sweep("2022-07-30", "sweep-b");
    assert_eq!(r.body["idempotency_purged"], 0);
    assert_eq!(records(), 2);
    let again = sweep("2022-07-30", "sweep-a");
    assert_eq!(again.headers["idempotent-replayed"], "true");
    // 31 days after the first, the next sweep removes it and keeps the second.
    let r = sweep("2022-08-01", "sweep-c");
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["idempotency_purged"], 1);
    assert_eq!(records(), 2, "sweep-b and sweep-c remain");
    // The purged key is free: it runs afresh, not replayed.
    let fresh = sweep("2022-08-01", "sweep-a");
    assert_eq!(fresh.status, 200);
    assert!(fresh.headers.get("idempotent-replayed").is_none());
}

#[test]
fn ac_archive_an_officer_reads_a_person_enrolled_in_their_district_before_any_voucher() {
    let w = World::new(3);
    let now = at("2022-06-05");
    assert!(
        store::vouchers::ledger(&w.kv, &w.person(0))
            .unwrap()
            .entries
            .is_empty()
    );
    let r = w.send(
        now,
        request(
            "GET",
            &format!("/api/v1/people/{}/archive", w.person(0)),
            Some(&token(Role::DistrictOfficer, now)),
            None,
            None,
        ),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["entries"], json!([]));
}

#[path = "vouchers/wechat.rs"]
mod wechat;

/// Issue 16 item 6: district targets loaded as data, progress against them
/// per district, functional zones rolled up to their county on request.
#[test]
fn progress_is_reported_against_loaded_district_targets_and_zones_roll_up_to_their_county() {
    let w = World::new(2);
    let codes = w.issued(2);
    w.opened();
    for c in &codes {
        assert_eq!(w.redeem("2022-06-13", c).status, 200);
    }
    w.assessed();
    for c in &codes {
        assert_eq!(w.settle("2022-06-30", c).status, 200);
    }
    let now = at("2022-07-01");
    let target = |district: &str, trainings: u64| json!({"year": 2022, "district": district, "trainings": trainings, "certificates": trainings / 2, "reference": "附件（测试）"});
    let load = request(
        "PUT",
        "/api/v1/admin/policy/targets",
        Some(&token(Role::BureauAdmin, now)),
        Some(json!({"district": [
            target("530102", 100), target("530112", 1000), target("KM-GXQ", 200), target("KM-DCDJQ", 300),
        ]})),
        None,
    );
    let r = reply(app::policy_admin::handle(&w.env(now), &load));
    assert_eq!(r.status, 201, "{}", r.text);
    let progress = |query: &str| {
        let r = w.send(
            now,
            request(
                "GET",
                &format!("/api/v1/stats/progress?year=2022{query}"),
                Some(&token(Role::DistrictOfficer, now)),
                None,
                None,
            ),
        );
        assert_eq!(r.status, 200, "{}", r.text);
        r.body
    };
    let row = |body: &Value, d: &str| {
        body["districts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["district"] == d)
            .cloned()
    };
    let p = progress("");
    let wuhua = row(&p, "530102").unwrap();
    assert_eq!(
        (
            wuhua["trainings"].as_u64(),
            wuhua["target_trainings"].as_u64(),
            wuhua["trainings_percent_of_target"].as_str()
        ),
        (Some(2), Some(100), Some("2.0"))
    );
    assert_eq!(
        (
            wuhua["certificates"].as_u64(),
            wuhua["target_certificates"].as_u64()
        ),
        (Some(2), Some(50))
    );
    assert_eq!(wuhua["certificates_percent_of_target"], "4.0");
    assert_eq!(row(&p, "KM-GXQ").unwrap()["target_trainings"], 200);
    assert_eq!(row(&p, "530112").unwrap()["target_trainings"], 1000);
    assert!(row(&p, "530103").unwrap()["target_trainings"].is_null());
    assert_eq!(p["city"]["district_targets_trainings"], 1600);
    assert_eq!(p["rollup"], "none");
    // Rolled up: 高新区 and 滇池度假区 into 西山区; 磨憨 has no county and keeps its row.
    let p = progress("&rollup=county");
    assert_eq!(p["rollup"], "county");
    let xishan = row(&p, "530112").unwrap();
    assert_eq!(xishan["target_trainings"], 1500);
    assert_eq!(xishan["zones"], json!(["KM-GXQ", "KM-DCDJQ"]));
    assert!(row(&p, "KM-GXQ").is_none() && row(&p, "KM-DCDJQ").is_none());
    assert!(row(&p, "KM-MH").is_some());
    assert_eq!(row(&p, "530102").unwrap()["trainings"], 2);
    assert_eq!(
        p["districts"].as_array().unwrap().len(),
        14 + 1,
        "14 counties and 磨憨"
    );
    let r = unchanged(&w, || {
        w.send(
            now,
            request(
                "GET",
                "/api/v1/stats/progress?year=2022&rollup=city",
                Some(&token(Role::BureauAdmin, now)),
                None,
                None,
            ),
        )
    });
    assert_eq!(
        (r.status, r.body["errors"][0]["field"].as_str()),
        (422, Some("rollup"))
    );
}

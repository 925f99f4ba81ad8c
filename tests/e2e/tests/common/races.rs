//! Concurrent filings of two different applications that the CO-* rules
//! reading other classes must see together (CO-CLASH, CO-ROSTER,
//! CO-SHARED-PHONE, CO-ENTRY), over HTTP on every key-value backend (SQLite
//! in `class_opening.rs`, Redis in `redis_backend.rs`).
//!
//! Each round files the two applications ten times each, all at once, and
//! checks the outcome against what filing them one after the other gives.
//! Rounds on one host use their own days (or, for CO-ENTRY, their own year),
//! so that they do not see each other.

use super::{call, seed, token};
use chrono::{Datelike, Duration, NaiveDate};
use e2e::Host;
use policy::class_opening::ClassApplication;
use policy::reference::Certificate;
use serde_json::Value;
use std::sync::Arc;
use web::auth::Role;

/// Rounds of each race: enough for a lost update to show, few enough for a
/// few seconds a race on two cores.
pub const ROUNDS: usize = 20;

/// Which rule a race is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// The two share a trainer (CO-CLASH).
    Clash,
    /// The two share a trainee (CO-ROSTER).
    Roster,
    /// The two share a mobile of two different trainees (CO-SHARED-PHONE).
    SharedPhone,
}

impl Rule {
    fn id(self) -> &'static str {
        match self {
            Rule::Clash => "CO-CLASH",
            Rule::Roster => "CO-ROSTER",
            Rule::SharedPhone => "CO-SHARED-PHONE",
        }
    }
}

/// A 5-trainee class of the fixtures' `salt` starting on `start`, filed today.
fn class(start: NaiveDate, salt: u32) -> ClassApplication {
    let today = policy::ids::today_cst();
    policy::fixtures::valid_class_from(start, today, 5, salt).0
}

/// `app` moved by `days`.
fn shifted(app: &ClassApplication, days: i64) -> ClassApplication {
    let mut app = app.clone();
    for s in &mut app.sessions {
        s.date += Duration::days(days);
    }
    app.start_date += Duration::days(days);
    app.end_date += Duration::days(days);
    app
}

/// The two applications of a race on `rule` from `start` (15 days each):
/// the second starts on the first's last day when `overlapping`, the day after otherwise.
fn pair(rule: Rule, start: NaiveDate, overlapping: bool) -> (ClassApplication, ClassApplication) {
    let a = class(start, 0);
    let b_start = a.end_date + Duration::days(if overlapping { 0 } else { 1 });
    let mut b = class(b_start, 1);
    match rule {
        Rule::Clash => {
            b.trainers = a.trainers.clone();
            for (s, t) in b.sessions.iter_mut().zip(a.sessions.iter().cycle()) {
                s.trainer = t.trainer.clone();
            }
        }
        Rule::Roster => b.roster[2] = a.roster[4].clone(),
        Rule::SharedPhone if overlapping => {
            // Two trainees with one mobile, in classes at the same time.
            b = shifted(&b, -14);
            b.roster[0].mobile = a.roster[0].mobile.clone();
        }
        // The same trainee (one user of the mobile), on following days.
        Rule::SharedPhone => b.roster[0] = a.roster[0].clone(),
    }
    (a, b)
}

/// A filed class as the API answered: id, status and decision.
#[derive(Debug, Clone)]
struct Filed {
    id: String,
    approved: bool,
    decision: Value,
}

impl Filed {
    fn lists(&self, list: &str, rule: &str) -> bool {
        self.decision[list]
            .as_array()
            .is_some_and(|l| l.iter().any(|r| r == rule))
    }
}

/// Files `a` and `b` ten times each, all at once; checks that each made one
/// class (one 201, nine 200 with the same class) and returns the two.
async fn race(host: &Arc<Host>, a: &ClassApplication, b: &ClassApplication) -> [Filed; 2] {
    let bodies = [
        serde_json::to_string(a).unwrap(),
        serde_json::to_string(b).unwrap(),
    ];
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let (host, body) = (host.clone(), bodies[i % 2].clone());
            tokio::spawn(async move {
                let r = call(
                    &host,
                    "POST",
                    "/api/v1/classes",
                    Some(&token(Role::Institution, None)),
                    &body,
                    &[],
                )
                .await;
                (i % 2, r.status, r.json().unwrap_or_default())
            })
        })
        .collect();
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.unwrap());
    }
    [0, 1].map(|which| {
        let mine: Vec<&(usize, u16, Value)> =
            answers.iter().filter(|(w, _, _)| *w == which).collect();
        let statuses: Vec<u16> = mine.iter().map(|(_, s, _)| *s).collect();
        assert_eq!(
            statuses.iter().filter(|s| **s == 201).count(),
            1,
            "application {which}: one filing creates the class: {statuses:?} {:?}",
            mine.iter().find(|(_, s, _)| *s >= 400)
        );
        assert!(
            statuses.iter().all(|s| *s == 200 || *s == 201),
            "{statuses:?}"
        );
        let first = &mine[0].2;
        assert!(
            mine.iter()
                .all(|(_, _, v)| v["id"] == first["id"] && v["status"] == first["status"]),
            "application {which}: every answer is the same class"
        );
        Filed {
            id: first["id"].as_str().unwrap().to_string(),
            approved: first["status"] == "approved",
            decision: first["decision"].clone(),
        }
    })
}

/// The decision of a dry run of `app`.
async fn validate(host: &Host, app: &ClassApplication) -> Value {
    let r = call(
        host,
        "POST",
        "/api/v1/classes/validate",
        Some(&token(Role::Institution, None)),
        &serde_json::to_string(app).unwrap(),
        &[],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json().unwrap()["decision"].clone()
}

/// `rounds` races of two applications on `rule`, on days of their own each:
/// when `overlapping`, exactly one class is approved and the other names
/// `rule` (CO-SHARED-PHONE, a warning: both are approved and exactly one
/// carries it), and a rejected class left no reservation (a dry run of it
/// moved away from the approved one by 14 days, so that it overlaps only
/// the rejected class's days, names neither CO-CLASH nor CO-ROSTER);
/// otherwise both are approved without the finding.
pub async fn concurrent_filings(host: Arc<Host>, rule: Rule, overlapping: bool, rounds: usize) {
    seed(&host).await;
    let first = policy::ids::today_cst() + Duration::days(21);
    for round in 0..rounds {
        let start = first + Duration::days(50 * round as i64);
        let (a, b) = pair(rule, start, overlapping);
        let filed = race(&host, &a, &b).await;
        let context = format!("{} round {round}, overlapping {overlapping}", rule.id());
        let with_finding = filed
            .iter()
            .filter(|f| f.lists("blocking_rules", rule.id()) || f.lists("warning_rules", rule.id()))
            .count();
        if !overlapping || rule == Rule::SharedPhone {
            assert!(filed.iter().all(|f| f.approved), "{context}: {filed:?}");
            assert_eq!(
                with_finding,
                usize::from(overlapping),
                "{context}: {filed:?}"
            );
            continue;
        }
        let approved = filed.iter().filter(|f| f.approved).count();
        assert_eq!(approved, 1, "{context}: exactly one approved: {filed:?}");
        let (rejected, probe) = if filed[0].approved {
            (&filed[1], shifted(&b, 14))
        } else {
            (&filed[0], shifted(&a, -14))
        };
        assert_eq!(
            rejected.decision["blocking_rules"],
            serde_json::json!([rule.id()]),
            "{context}: the rejected class names {} only",
            rule.id()
        );
        let dry = validate(&host, &probe).await;
        for id in ["CO-CLASH", "CO-ROSTER"] {
            assert!(
                !dry["blocking_rules"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|r| r == id),
                "{context}: rejected class {} left a reservation behind: {dry}",
                rejected.id
            );
        }
    }
}

/// `rounds` races of two entry-level (培训合格证书) classes of one
/// institution, each round in a year of its own after `earlier` skill-level
/// classes filed one by one: after 3, exactly one of the two is over the
/// CO-ENTRY share (1 of 4 is 25 %, 2 of 5 is 40 %); after 5, neither (2 of 7 is 28.6 %).
pub async fn concurrent_entry_level_filings(host: Arc<Host>, earlier: u32, rounds: usize) {
    seed(&host).await;
    let next_year = policy::ids::today_cst().year() + 1;
    for round in 0..rounds {
        let year = next_year + round as i32;
        let on = |month| NaiveDate::from_ymd_opt(year, month, 2).unwrap();
        for month in 0..earlier {
            super::file_approved(&host, &class(on(month + 1), 2)).await;
        }
        let mut a = class(on(9), 0);
        let mut b = class(on(9), 1);
        a.certificate = Certificate::TrainingCompletion;
        b.certificate = Certificate::TrainingCompletion;
        let filed = race(&host, &a, &b).await;
        assert!(filed.iter().all(|f| f.approved), "{filed:?}");
        let over = filed
            .iter()
            .filter(|f| f.lists("warning_rules", "CO-ENTRY"))
            .count();
        assert_eq!(
            over,
            usize::from(earlier == 3),
            "CO-ENTRY round {round} after {earlier}: {filed:?}"
        );
    }
}

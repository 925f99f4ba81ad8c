//! The voucher-issue race (issue 12) on every key-value backend (SQLite in
//! `voucher_races.rs`, Redis there too): many concurrent issue requests for
//! one trainee, each with its own Idempotency-Key, and a redeem fired as soon
//! as the first answer names the voucher. Each round must end with the record
//! written once by its issue (one writer, VO-ISSUE-LEASE), one
//! `voucher.issued` event, and the acknowledged redeem still in force
//! (invariant 2).

use super::{call, seed, token};
use e2e::Host;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use web::auth::Role;

/// Record writes of one issue (the creation) and one redeem (its swap and
/// the flag saying its audit event is in): nothing else writes the record.
pub const WRITES_OF_AN_ISSUE_AND_A_REDEEM: u64 = 3;

/// What the rounds saw.
#[derive(Debug, Default)]
pub struct RaceSummary {
    /// Rounds run.
    pub rounds: usize,
    /// Answers 503 `voucher_issue_pending` over all rounds.
    pub pending: usize,
    /// Wall time of the rounds (without filing the class and activating cards).
    pub elapsed: Duration,
}

/// One answer to an issue request: status, body, `Retry-After`.
type Answer = (u16, Value, Option<String>);

/// Files an approved class of `lines` trainees starting in nine days, records
/// its passed pre-opening check (redeeming waits for it), activates every
/// card; returns the class id.
async fn class_ready_to_redeem(host: &Host, lines: usize) -> String {
    seed(host).await;
    let today = policy::ids::today_cst();
    // CO-LEAD needs 5 working days; a pre-opening check lies at most 10 days before the first day.
    let (app, _) =
        policy::fixtures::valid_class_from(today + chrono::Duration::days(9), today, lines, 0);
    let class_id = super::file_approved(host, &app).await;
    let check = json!({
        "kind": "pre_opening",
        "officer": "王科长",
        "at": (chrono::Utc::now() - chrono::Duration::minutes(1)).to_rfc3339(),
        "result": "passed",
    });
    let r = call(
        host,
        "POST",
        &format!("/api/v1/classes/{class_id}/checks"),
        Some(&token(Role::DistrictOfficer, None)),
        &check.to_string(),
        &[],
    )
    .await;
    assert_eq!(r.status, 200, "pre-opening check: {}", r.text());
    let ss = token(Role::SocialSecurity, None);
    for t in &app.roster {
        let body = json!({"id_number": t.id_number.expose(), "active": true});
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
    }
    class_id
}

/// The voucher code an answer names, if any.
fn code_of(a: &Answer) -> Option<String> {
    a.1["results"][0]["voucher"]["code"]
        .as_str()
        .map(|c| c.replace('-', ""))
}

/// `rounds` rounds of `requests` concurrent issue requests for one trainee
/// (roster line = round), each with its own Idempotency-Key, a redeem fired
/// on the first answer naming the voucher; asserts after each round.
pub async fn concurrent_issues_with_an_early_redeem_write_each_voucher_once(
    host: Arc<Host>,
    rounds: usize,
    requests: usize,
) -> RaceSummary {
    let class_id = class_ready_to_redeem(&host, rounds).await;
    let inst = token(Role::Institution, None);
    let admin = token(Role::BureauAdmin, None);
    let path = format!("/api/v1/classes/{class_id}/vouchers");
    let began = Instant::now();
    let mut summary = RaceSummary {
        rounds,
        ..RaceSummary::default()
    };
    let mut codes: Vec<String> = Vec::new();
    for round in 0..rounds {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Answer>();
        for i in 0..requests {
            let (host, path, inst, tx) = (host.clone(), path.clone(), inst.clone(), tx.clone());
            tokio::spawn(async move {
                let key = format!("race-{round}-{i}");
                let body = json!({"lines": [round]}).to_string();
                let r = call(
                    &host,
                    "POST",
                    &path,
                    Some(&inst),
                    &body,
                    &[("idempotency-key", key.as_str())],
                )
                .await;
                let retry = r.header("retry-after").map(str::to_string);
                let _ = tx.send((r.status, r.json().unwrap_or(Value::Null), retry));
            });
        }
        drop(tx);
        let mut answers: Vec<Answer> = Vec::with_capacity(requests);
        let mut redeemed: Option<String> = None;
        while let Some(a) = rx.recv().await {
            if redeemed.is_none()
                && let Some(code) = code_of(&a)
            {
                // Fired while the other requests of the round still run.
                let r = call(
                    &host,
                    "POST",
                    &format!("/api/v1/vouchers/{code}/redeem"),
                    Some(&inst),
                    "",
                    &[("idempotency-key", &format!("redeem-{round}"))],
                )
                .await;
                assert_eq!(r.status, 200, "round {round}: redeem: {}", r.text());
                assert_eq!(r.json().unwrap()["state"], "redeemed");
                redeemed = Some(code);
            }
            answers.push(a);
        }
        let code = redeemed.unwrap_or_else(|| panic!("round {round}: no answer named a voucher"));
        let statuses: BTreeMap<u16, usize> = answers.iter().fold(BTreeMap::new(), |mut m, a| {
            *m.entry(a.0).or_default() += 1;
            m
        });
        assert_eq!(
            answers.len(),
            requests,
            "round {round}: every request answered"
        );
        let mut issued = 0;
        for a in &answers {
            match a.0 {
                200 => {
                    issued += a.1["issued"].as_u64().unwrap_or(0);
                    assert_eq!(
                        code_of(a).as_deref(),
                        Some(code.as_str()),
                        "round {round}: invariant 1, every answer names the one voucher: {}",
                        a.1
                    );
                }
                503 => {
                    assert_eq!(
                        a.1["code"], "voucher_issue_pending",
                        "round {round}: {}",
                        a.1
                    );
                    assert!(a.2.is_some(), "round {round}: 503 carries Retry-After");
                    summary.pending += 1;
                }
                s => panic!(
                    "round {round}: unexpected {s}: {} (statuses {statuses:?})",
                    a.1
                ),
            }
        }
        assert_eq!(
            issued, 1,
            "round {round}: one `issued` answer; statuses {statuses:?}"
        );
        codes.push(code.clone());

        // The record: written once by its issue, then by the redeem only.
        let written = host.kv_writes(&store::vouchers::voucher_key(""));
        let records: BTreeMap<&String, &u64> =
            written.iter().filter(|(k, _)| !k.contains('#')).collect();
        assert_eq!(
            records.len(),
            codes.len(),
            "round {round}: no record of another code was written: {records:?}"
        );
        assert_eq!(
            written.get(&store::vouchers::voucher_key(&code)).copied(),
            Some(WRITES_OF_AN_ISSUE_AND_A_REDEEM),
            "round {round}: one writer: the issue writes the record once, the redeem twice"
        );
        let events = call(
            &host,
            "GET",
            &format!("/api/v1/audit?entity=voucher:{code}"),
            Some(&admin),
            "",
            &[],
        )
        .await;
        assert_eq!(events.status, 200, "{}", events.text());
        let actions: Vec<String> = events.json().unwrap()["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap_or_default().to_string())
            .collect();
        assert_eq!(
            actions,
            ["voucher.issued", "voucher.redeemed"],
            "round {round}: one voucher.issued event, then the redeem's"
        );
        let got = call(
            &host,
            "GET",
            &format!("/api/v1/vouchers/{code}"),
            Some(&inst),
            "",
            &[],
        )
        .await;
        let v = got.json().unwrap();
        assert_eq!(
            (v["state"].as_str(), v["history"].as_array().map(Vec::len)),
            (Some("redeemed"), Some(1)),
            "round {round}: invariant 2, the acknowledged redeem is still in force: {v}"
        );
    }
    summary.elapsed = began.elapsed();
    summary
}

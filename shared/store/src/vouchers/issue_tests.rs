//! Issue with one writer (VO-ISSUE-LEASE): only the request that won a
//! voucher's ledger entry writes its record and its `voucher.issued` event;
//! others wait for it, and finish it only once its lease has lapsed, one of
//! them, never overwriting a record. Real threads on [`MemoryStore`], record
//! writes counted per key.

use super::tests::{actor, code, decide, draft, lease};
use super::*;
use crate::memory::MemoryStore;
use std::sync::mpsc;

/// `voucher.<action>` events of voucher `code` in the audit trail.
fn events(kv: &MemoryStore, code: &str, action: &str) -> usize {
    let (list, _) =
        audit::history(kv, &format!("voucher:{code}"), Position::default(), 1000).unwrap();
    list.iter()
        .filter(|e| e.change.action == format!("voucher.{action}"))
        .count()
}

/// A ledger holding `code`'s entry, won by a request that then died, its
/// lease ending at `until`; no record, no index, no event.
fn dead_winner(kv: &MemoryStore, code: &VoucherCode, until: Option<DateTime<Utc>>) {
    let d = draft();
    let ledger = Ledger {
        rev: 1,
        entries: vec![LedgerEntry {
            code: code.as_str().to_string(),
            class_id: d.class.class_id.clone(),
            roster_line: d.roster_line,
            key: d.key.clone(),
            issued_on: d.today,
            last_valid_day: policy::vouchers::last_valid_day(
                d.today,
                policy::Parameters::shipped(),
            ),
            state: VoucherState::Issued,
            first_day: Some(d.class.start_date),
            lease_until: until,
        }],
    };
    infallible(update_existing::<Ledger, std::convert::Infallible>(
        kv,
        &ledger_key(&d.person),
        "ledger",
        |_| Ok(Some(ledger.clone())),
    ))
    .unwrap();
}

fn redeem(kv: &MemoryStore, c: &str) -> VoucherRecord {
    let (_, after) = apply(kv, c, Action::Redeem, &actor(), Utc::now(), |r| {
        r.state = policy::vouchers::transition(r.state, Action::Redeem).map_err(|_| ())?;
        Ok::<(), ()>(())
    })
    .unwrap();
    after
}

#[test]
fn vo_issue_lease_a_winner_dead_after_its_ledger_entry_is_repaired_at_its_lease_end_and_not_a_second_before()
 {
    let kv = MemoryStore::new();
    let t0 = Utc::now();
    let until = t0 + lease().duration;
    dead_winner(&kv, &code(1), Some(until));
    let before = kv.dump();

    // One second before the lease ends: the winner may still be writing.
    let early = issue(
        &kv,
        &draft(),
        &code(2),
        decide,
        lease(),
        &actor(),
        until - chrono::Duration::seconds(1),
    )
    .unwrap();
    let Issued::Pending {
        code: c,
        retry_after,
    } = early
    else {
        panic!("VO-ISSUE-LEASE: no repair inside the lease: {early:?}")
    };
    assert_eq!(c, code(1).as_str());
    assert!(
        retry_after > chrono::Duration::zero() && retry_after <= chrono::Duration::seconds(1),
        "Retry-After is the lease's remainder: {retry_after}"
    );
    assert_eq!(
        kv.dump(),
        before,
        "VO-ISSUE-LEASE: a request inside the lease writes nothing"
    );

    // At the lease's end: the winner is gone; this request takes over and finishes.
    let late = issue(&kv, &draft(), &code(3), decide, lease(), &actor(), until).unwrap();
    let Issued::Existing(r) = late else {
        panic!("VO-ISSUE-LEASE: repaired at the lease's end: {late:?}")
    };
    assert_eq!(r.code, code(1).as_str(), "the ledger's code is kept");
    assert_eq!(kv.writes_to(&voucher_key(code(1).as_str())), 1);
    assert_eq!(events(&kv, code(1).as_str(), "issued"), 1);
    let l = ledger(&kv, &draft().person).unwrap();
    assert_eq!(l.entries.len(), 1);
    assert!(
        l.entries[0].lease_until.unwrap() >= until + lease().duration,
        "the repairer took the lease over in the ledger"
    );
    for other in [code(2), code(3)] {
        assert_eq!(kv.writes_to(&voucher_key(other.as_str())), 0);
    }

    // Later requests answer the record; nothing more is written.
    let again = issue(&kv, &draft(), &code(4), decide, lease(), &actor(), until).unwrap();
    assert!(matches!(again, Issued::Existing(ref r) if r.code == code(1).as_str()));
    assert_eq!(kv.writes_to(&voucher_key(code(1).as_str())), 1);
    assert_eq!(events(&kv, code(1).as_str(), "issued"), 1);
    assert_eq!(
        crate::audit::verify::integrate_and_verify_all(
            &kv,
            &crate::audit::tree::LogSigner::for_tests()
        )
        .unwrap(),
        (1, vec![])
    );
}

#[test]
fn a_ledger_entry_from_before_leases_and_first_days_reads_as_lapsed_and_dated_by_its_issue_day() {
    let kv = MemoryStore::new();
    dead_winner(&kv, &code(1), Some(Utc::now()));
    let mut json = serde_json::to_value(ledger(&kv, &draft().person).unwrap()).unwrap();
    let entry = json["entries"][0].as_object_mut().unwrap();
    assert!(entry.remove("first_day").is_some() && entry.remove("lease_until").is_some());
    let old: Ledger = serde_json::from_value(json).unwrap();
    let e = &old.entries[0];
    assert_eq!((e.first_day, e.lease_until), (None, None));
    assert_eq!(
        e.held().training_day(),
        e.issued_on,
        "VO-YEAR: an entry without its class's first day counts by its issue date"
    );
    assert!(
        !e.leased_at(DateTime::<Utc>::MIN_UTC),
        "no lease: repairable at once"
    );
    // Stored so, it is repaired by the next request at once.
    infallible(update_existing::<Ledger, std::convert::Infallible>(
        &kv,
        &ledger_key(&draft().person),
        "ledger",
        |_| Ok(Some(old.clone())),
    ))
    .unwrap();
    let r = issue(
        &kv,
        &draft(),
        &code(2),
        decide,
        lease(),
        &actor(),
        Utc::now(),
    )
    .unwrap();
    assert!(
        matches!(r, Issued::Existing(ref r) if r.code == code(1).as_str()),
        "{r:?}"
    );
}

#[test]
fn an_issue_records_the_class_first_day_and_its_lease_in_the_ledger_entry() {
    let kv = MemoryStore::new();
    let t0 = Utc::now();
    let r = issue(&kv, &draft(), &code(1), decide, lease(), &actor(), t0).unwrap();
    assert!(matches!(r, Issued::New(_)), "{r:?}");
    let e = ledger(&kv, &draft().person).unwrap().entries[0].clone();
    assert_eq!(
        e.first_day,
        Some(draft().class.start_date),
        "VO-YEAR's date"
    );
    let until = e.lease_until.unwrap();
    assert!(until >= t0 + lease().duration && until < t0 + lease().duration * 2);
}

#[test]
fn a_request_that_finds_the_entry_waits_for_the_winners_record_and_answers_it() {
    let kv = MemoryStore::new();
    let t0 = Utc::now();
    dead_winner(&kv, &code(1), Some(t0 + lease().duration));
    let waiter = {
        let kv = kv.clone();
        std::thread::spawn(move || {
            let patient = IssueLease {
                patience: std::time::Duration::from_secs(10),
                ..lease()
            };
            issue(&kv, &draft(), &code(2), decide, patient, &actor(), t0).unwrap()
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(100));
    // The winner, slow but alive, writes its record.
    let mut d = decide(&[]);
    d.last_valid_day = ledger(&kv, &draft().person).unwrap().entries[0].last_valid_day;
    let record = new_record(&draft(), code(1).as_str(), d, &actor(), t0);
    assert_eq!(write_new(&kv, &record, &actor(), t0).unwrap(), None);
    let got = waiter.join().unwrap();
    assert_eq!(
        got,
        Issued::Existing(Box::new(record)),
        "the winner's record"
    );
    assert_eq!(kv.writes_to(&voucher_key(code(1).as_str())), 1);
    assert_eq!(events(&kv, code(1).as_str(), "issued"), 1);
}

#[test]
fn latecomers_after_a_lapsed_lease_elect_one_repairer_by_compare_and_swap_on_the_ledger() {
    let kv = MemoryStore::new();
    let t0 = Utc::now();
    dead_winner(&kv, &code(1), Some(t0 - chrono::Duration::seconds(1)));
    let threads: Vec<_> = (0..32u8)
        .map(|n| {
            let kv = kv.clone();
            std::thread::spawn(move || {
                let patient = IssueLease {
                    patience: std::time::Duration::from_secs(10),
                    ..lease()
                };
                issue(&kv, &draft(), &code(10 + n), decide, patient, &actor(), t0).unwrap()
            })
        })
        .collect();
    for t in threads {
        let r = t.join().unwrap();
        assert!(
            matches!(r, Issued::Existing(ref r) if r.code == code(1).as_str()),
            "{r:?}"
        );
    }
    assert_eq!(
        kv.writes_to(&voucher_key(code(1).as_str())),
        1,
        "one repairer writes the record"
    );
    assert_eq!(
        events(&kv, code(1).as_str(), "issued"),
        1,
        "and its one event"
    );
}

#[test]
fn a_winner_whose_lease_lapsed_before_it_wrote_takes_it_over_and_writes_once() {
    let kv = MemoryStore::new();
    let zero = IssueLease {
        duration: chrono::Duration::zero(),
        ..lease()
    };
    let r = issue(&kv, &draft(), &code(1), decide, zero, &actor(), Utc::now()).unwrap();
    assert!(
        matches!(r, Issued::Existing(ref r) if r.code == code(1).as_str()),
        "{r:?}"
    );
    assert_eq!(kv.writes_to(&voucher_key(code(1).as_str())), 1);
    assert_eq!(events(&kv, code(1).as_str(), "issued"), 1);
}

/// Record writes of one issue followed by one redeem, done one after the other.
fn writes_of_an_issue_and_a_redeem() -> u64 {
    let kv = MemoryStore::new();
    issue(
        &kv,
        &draft(),
        &code(1),
        decide,
        lease(),
        &actor(),
        Utc::now(),
    )
    .unwrap();
    let w = kv.writes_to(&voucher_key(code(1).as_str()));
    assert_eq!(w, 1, "an issue writes its record once");
    redeem(&kv, code(1).as_str());
    kv.writes_to(&voucher_key(code(1).as_str()))
}

#[test]
fn two_hundred_concurrent_issues_write_one_record_and_one_event_and_an_early_redeem_stays_redeemed()
{
    let expected_writes = writes_of_an_issue_and_a_redeem();
    let patient = IssueLease {
        patience: std::time::Duration::from_secs(30),
        ..lease()
    };
    for round in 0..10 {
        let kv = MemoryStore::new();
        let (tx, rx) = mpsc::channel();
        let threads: Vec<_> = (0..200u8)
            .map(|n| {
                let (kv, tx) = (kv.clone(), tx.clone());
                std::thread::spawn(move || {
                    let r = issue(
                        &kv,
                        &draft(),
                        &code(n),
                        decide,
                        patient,
                        &actor(),
                        Utc::now(),
                    )
                    .unwrap();
                    let _ = tx.send(r.clone());
                    r
                })
            })
            .collect();
        drop(tx);
        // Redeem as soon as the first answer with a voucher arrives.
        let first = rx
            .iter()
            .find_map(|r| match r {
                Issued::New(r) | Issued::Existing(r) => Some(r.code),
                _ => None,
            })
            .expect("some request answers a voucher");
        let redeemed = redeem(&kv, &first);
        assert_eq!(redeemed.state, VoucherState::Redeemed);
        let (mut new, mut existing, mut pending) = (0, 0, 0);
        for t in threads {
            match t.join().unwrap() {
                Issued::New(_) => new += 1,
                Issued::Existing(r) => {
                    assert_eq!(r.code, first);
                    existing += 1
                }
                Issued::Pending { .. } => pending += 1,
                Issued::Refused(d) => panic!("round {round}: refused {d:?}"),
            }
        }
        assert_eq!(
            (new, existing + pending),
            (1, 199),
            "round {round}: invariant 1, one voucher ({pending} pending)"
        );
        assert_eq!(
            kv.writes_to(&voucher_key(&first)),
            expected_writes,
            "round {round}: the record is written once by its issue, then only by the redeem"
        );
        assert_eq!(
            events(&kv, &first, "issued"),
            1,
            "round {round}: one voucher.issued"
        );
        assert_eq!(events(&kv, &first, "redeemed"), 1);
        let r = get(&kv, &first).unwrap().unwrap();
        assert_eq!(
            (r.state, r.history.len()),
            (VoucherState::Redeemed, 1),
            "round {round}: invariant 2, the acknowledged redeem is still in force"
        );
        let written: Vec<String> = kv
            .dump()
            .into_keys()
            .filter(|k| k.starts_with(&voucher_key("")) && !k.contains('#'))
            .collect();
        assert_eq!(written, vec![voucher_key(&first)], "round {round}");
    }
}

#[test]
fn a_lapsed_lease_is_taken_over_by_exactly_one_of_two_requests_that_saw_it() {
    let kv = MemoryStore::new();
    let t0 = Utc::now();
    dead_winner(&kv, &code(1), Some(t0));
    let seen = ledger(&kv, &draft().person).unwrap().entries[0].clone();
    let later = t0 + lease().duration;
    let first = take_over(&kv, &draft().person, &seen, later).unwrap();
    assert!(matches!(first, TakeOver::Won(ref others) if others.is_empty()));
    let second = take_over(&kv, &draft().person, &seen, later).unwrap();
    let TakeOver::Lost(now_held) = second else {
        panic!("VO-ISSUE-LEASE: a second take-over of the same lapsed lease must lose")
    };
    assert_eq!(
        now_held.lease_until,
        Some(later),
        "it sees the winner's lease"
    );
    assert_eq!(
        ledger(&kv, &draft().person).unwrap().rev,
        2,
        "one take-over written"
    );
}

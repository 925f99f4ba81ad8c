//! The settlement gates and VO-OPEN on both sides of each bound.

use super::*;
use crate::decision::Outcome;
use crate::params::DatedValue;

fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn settle_facts() -> SettleFacts {
    SettleFacts {
        state: VoucherState::Redeemed,
        assessed: true,
        certificate_no: "Y000053010000522000123".into(),
        own_finding: false,
        other_findings: 0,
        last_day: day("2022-07-31"),
        open_calls: 0,
        assessed_by: Some("officer-a".into()),
        settled_by: "officer-b".into(),
        on: day("2022-08-01"),
    }
}

fn decide(f: &SettleFacts) -> Decision {
    decide_settlement(f, Parameters::shipped())
}

#[test]
fn vo_flow_settlement_needs_redeemed_assessed_certificate_and_no_finding() {
    assert_eq!(decide(&settle_facts()).outcome, Outcome::Approved);
    let mut f = settle_facts();
    f.state = VoucherState::Issued;
    assert!(decide(&f).failed("VO-FLOW"), "VO-FLOW before redeem");
    let mut f = settle_facts();
    f.state = VoucherState::Settled;
    assert!(decide(&f).failed("VO-FLOW"), "VO-FLOW settled once");
    let mut f = settle_facts();
    f.assessed = false;
    assert!(decide(&f).failed("VO-FLOW"), "VO-FLOW assessment");
    let mut f = settle_facts();
    f.certificate_no = "  ".into();
    assert!(decide(&f).failed("VO-FLOW"), "VO-FLOW certificate");
    let mut f = settle_facts();
    f.own_finding = true;
    let d = decide(&f);
    assert!(d.failed("SC-DENY"));
    assert!(
        d.of("SC-DENY")
            .any(|x| !x.passed && x.message_en.contains("the trainee"))
    );
    let mut f = settle_facts();
    f.other_findings = 2;
    let d = decide(&f);
    assert!(
        d.of("SC-DENY")
            .any(|x| !x.passed && x.message_en.contains("other trainees"))
    );
}

#[test]
fn vo_ended_settlement_waits_until_the_day_after_the_last_class_day() {
    let mut f = settle_facts();
    for (on, settles) in [
        ("2022-07-30", false), // one day before the last day
        ("2022-07-31", false), // the last day itself
        ("2022-08-01", true),  // the day after
    ] {
        f.on = day(on);
        let d = decide(&f);
        assert_eq!(d.failed("VO-ENDED"), !settles, "VO-ENDED on {on}");
        assert_eq!(d.outcome == Outcome::Approved, settles, "VO-ENDED on {on}");
    }
}

#[test]
fn vo_calls_one_open_spot_check_call_stops_settlement() {
    let mut f = settle_facts();
    f.open_calls = 1;
    let d = decide(&f);
    assert!(d.failed("VO-CALLS"));
    assert_eq!(d.outcome, Outcome::Rejected);
    f.open_calls = 0;
    assert!(decide(&f).passed("VO-CALLS"));
}

#[test]
fn vo_4eyes_the_assessing_officer_cannot_settle_unless_the_bureau_turns_it_off() {
    let mut f = settle_facts();
    f.settled_by = "officer-a".into();
    let d = decide(&f);
    assert!(d.failed("VO-4EYES"), "VO-4EYES on by default");
    assert!(
        d.of("VO-4EYES")
            .all(|x| x.parameters == ["vo_four_eyes@2022-04-22"])
    );
    // Another officer: passes.
    f.settled_by = "officer-b".into();
    assert!(decide(&f).passed("VO-4EYES"));
    // Off from a date: the same officer may settle from then on, not before.
    let off = Parameters::shipped().clone().with_value(
        names::VO_FOUR_EYES,
        DatedValue {
            since: day("2022-08-01"),
            value: 0,
            reference: "test".into(),
        },
    );
    f.settled_by = "officer-a".into();
    let d = decide_settlement(&f, &off);
    assert!(d.passed("VO-4EYES"), "VO-4EYES off on 2022-08-01");
    assert_eq!(d.outcome, Outcome::Approved);
    f.on = day("2022-07-31");
    f.last_day = day("2022-07-30");
    assert!(
        decide_settlement(&f, &off).failed("VO-4EYES"),
        "VO-4EYES still on the day before it is turned off"
    );
}

#[test]
fn vo_open_vouchers_are_redeemed_only_once_the_pre_opening_check_opened_the_class() {
    assert!(!may_redeem(ClassStatus::Approved), "VO-OPEN: not opened");
    assert!(!may_redeem(ClassStatus::Rejected), "VO-OPEN: rejected");
    assert!(may_redeem(ClassStatus::InTraining), "VO-OPEN: opened");
    assert!(may_redeem(ClassStatus::Assessed), "VO-OPEN: assessed");
}

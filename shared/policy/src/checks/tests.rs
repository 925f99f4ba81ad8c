//! CK-ORDER and CK-WINDOW on both sides of every bound.

use super::*;
use crate::params::DatedValue;

fn d(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

/// An instant given in China Standard Time.
fn cst(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(&format!("{s}+08:00"))
        .unwrap()
        .with_timezone(&Utc)
}

const FIRST: &str = "2022-07-11";
const LAST: &str = "2022-07-25";

fn facts(kind: CheckKind, at: DateTime<Utc>, recorded_at: DateTime<Utc>) -> CheckFacts {
    let status = match kind {
        CheckKind::PreOpening => ClassStatus::Approved,
        _ => ClassStatus::InTraining,
    };
    CheckFacts {
        kind,
        at,
        recorded_at,
        status,
        in_training_passed: true,
        first_day: d(FIRST),
        last_day: d(LAST),
    }
}

fn bound_of(r: Result<CheckAllowed, CheckRefusal>) -> Option<Bound> {
    match r {
        Ok(_) => None,
        Err(CheckRefusal::OutOfWindow { bound, .. }) => Some(bound),
        Err(e) => panic!("expected a window decision, got {e}"),
    }
}

fn params() -> Parameters {
    Parameters::shipped().clone()
}

#[test]
fn ck_window_a_pre_opening_check_lies_within_ten_days_before_the_first_class_day() {
    let p = params();
    // Recorded right away, so only the window decides.
    let case = |at: &str| {
        let at = cst(at);
        bound_of(decide_check(&facts(CheckKind::PreOpening, at, at), &p))
    };
    // Ten days before the first day, to the minute: inside; one minute earlier: outside.
    assert_eq!(
        case("2022-07-01T00:00:00"),
        None,
        "CK-WINDOW: 10 days before"
    );
    assert_eq!(
        case("2022-06-30T23:59:00"),
        Some(Bound::WindowStart),
        "CK-WINDOW: 10 days and a minute before"
    );
    // The last minute before the first class day: inside; the first class day: outside.
    assert_eq!(case("2022-07-10T23:59:00"), None, "CK-WINDOW: the eve");
    assert_eq!(
        case("2022-07-11T00:00:00"),
        Some(Bound::WindowEnd),
        "CK-WINDOW: on the first class day"
    );
}

#[test]
fn ck_window_the_pre_opening_period_is_a_dated_parameter() {
    let p = params().with_value(
        names::CK_PRE_OPENING_DAYS,
        DatedValue {
            since: d("2022-07-01"),
            value: 3,
            reference: "test".into(),
        },
    );
    let at = cst("2022-07-07T12:00:00");
    let r = decide_check(&facts(CheckKind::PreOpening, at, at), &p);
    match r {
        Err(CheckRefusal::OutOfWindow {
            bound: Bound::WindowStart,
            limit,
            parameters,
        }) => {
            assert_eq!(limit, cst("2022-07-08T00:00:00"));
            assert_eq!(
                parameters,
                vec!["ck_pre_opening_days@2022-07-01".to_string()]
            );
        }
        other => panic!("CK-WINDOW: expected window_start, got {other:?}"),
    }
    let at = cst("2022-07-08T00:00:00");
    assert!(decide_check(&facts(CheckKind::PreOpening, at, at), &p).is_ok());
}

#[test]
fn ck_window_an_in_training_check_lies_on_a_class_day() {
    let p = params();
    let case = |at: &str| {
        let at = cst(at);
        bound_of(decide_check(&facts(CheckKind::InTraining, at, at), &p))
    };
    assert_eq!(
        case("2022-07-10T23:59:00"),
        Some(Bound::WindowStart),
        "CK-WINDOW: a minute before the first class day"
    );
    assert_eq!(
        case("2022-07-11T00:00:00"),
        None,
        "CK-WINDOW: first class day"
    );
    assert_eq!(
        case("2022-07-25T23:59:00"),
        None,
        "CK-WINDOW: last class day"
    );
    assert_eq!(
        case("2022-07-26T00:00:00"),
        Some(Bound::WindowEnd),
        "CK-WINDOW: the day after the last class day"
    );
}

#[test]
fn ck_window_a_post_training_check_lies_on_or_after_the_last_class_day() {
    let p = params();
    let case = |at: &str| {
        let at = cst(at);
        bound_of(decide_check(&facts(CheckKind::PostAssessment, at, at), &p))
    };
    assert_eq!(
        case("2022-07-24T23:59:00"),
        Some(Bound::WindowStart),
        "CK-WINDOW: a minute before the last class day"
    );
    assert_eq!(
        case("2022-07-25T00:00:00"),
        None,
        "CK-WINDOW: last class day"
    );
    assert_eq!(case("2023-01-01T09:00:00"), None, "CK-WINDOW: months later");
}

#[test]
fn ck_window_no_check_is_dated_in_the_future() {
    let p = params();
    let now = cst("2022-07-15T10:00:00");
    let at = now + Duration::minutes(1);
    assert_eq!(
        bound_of(decide_check(&facts(CheckKind::InTraining, at, now), &p)),
        Some(Bound::NotInFuture),
        "CK-WINDOW: a minute ahead of the clock"
    );
    assert_eq!(
        bound_of(decide_check(&facts(CheckKind::InTraining, now, now), &p)),
        None,
        "CK-WINDOW: now"
    );
}

#[test]
fn ck_window_a_check_is_recorded_within_72_hours_of_being_carried_out() {
    let p = params();
    let now = cst("2022-07-20T10:00:00");
    let inside = now - Duration::hours(72);
    let outside = inside - Duration::minutes(1);
    assert_eq!(
        bound_of(decide_check(&facts(CheckKind::InTraining, inside, now), &p)),
        None,
        "CK-WINDOW: 72 h back"
    );
    match decide_check(&facts(CheckKind::InTraining, outside, now), &p) {
        Err(CheckRefusal::OutOfWindow {
            bound: Bound::BackdateLimit,
            limit,
            parameters,
        }) => {
            assert_eq!(limit, inside);
            assert_eq!(parameters, vec!["ck_backdate_hours@2022-04-22".to_string()]);
        }
        other => panic!("CK-WINDOW: 72 h and a minute back must be refused, got {other:?}"),
    }
}

#[test]
fn ck_window_all_three_checks_cannot_be_back_dated_in_minutes_before_the_class_starts() {
    // The attack: an officer records, on the eve of the class, an in-training
    // and a post-training check dated in the future class days.
    let p = params();
    let eve = cst("2022-07-10T18:00:00");
    for (kind, at) in [
        (CheckKind::InTraining, cst("2022-07-15T10:00:00")),
        (CheckKind::PostAssessment, cst("2022-07-26T10:00:00")),
    ] {
        assert_eq!(
            bound_of(decide_check(&facts(kind, at, eve), &p)),
            Some(Bound::NotInFuture),
            "CK-WINDOW: {kind:?} dated ahead"
        );
        // Dated "now", on the eve: before its window.
        assert_eq!(
            bound_of(decide_check(&facts(kind, eve, eve), &p)),
            Some(Bound::WindowStart),
            "CK-WINDOW: {kind:?} on the eve"
        );
    }
    // And weeks after the class, the in-training check cannot be dated back into it.
    let later = cst("2022-08-20T10:00:00");
    assert_eq!(
        bound_of(decide_check(
            &facts(CheckKind::InTraining, cst("2022-07-20T10:00:00"), later),
            &p
        )),
        Some(Bound::BackdateLimit),
        "CK-WINDOW: back-dated into the class days"
    );
}

#[test]
fn ck_order_the_in_training_check_does_not_end_training() {
    assert_eq!(
        CheckKind::InTraining.transition(),
        (ClassStatus::InTraining, ClassStatus::InTraining),
        "CK-ORDER"
    );
    assert_eq!(
        CheckKind::PreOpening.transition(),
        (ClassStatus::Approved, ClassStatus::InTraining)
    );
    assert_eq!(
        CheckKind::PostAssessment.transition(),
        (ClassStatus::InTraining, ClassStatus::Assessed)
    );
}

#[test]
fn ck_order_checks_out_of_order_are_refused_before_their_dates_are_looked_at() {
    let p = params();
    let at = cst("2022-07-26T10:00:00");
    let mut f = facts(CheckKind::PostAssessment, at, at);
    f.status = ClassStatus::Approved;
    assert_eq!(
        decide_check(&f, &p),
        Err(CheckRefusal::OutOfOrder {
            kind: CheckKind::PostAssessment,
            needed: ClassStatus::InTraining,
            status: ClassStatus::Approved
        }),
        "CK-ORDER: assessment of a class never opened"
    );
    f.status = ClassStatus::InTraining;
    f.in_training_passed = false;
    assert_eq!(
        decide_check(&f, &p),
        Err(CheckRefusal::NoInTrainingCheck),
        "CK-ORDER: assessment without an in-training check"
    );
    f.in_training_passed = true;
    assert_eq!(
        decide_check(&f, &p).map(|a| a.on_pass),
        Ok(ClassStatus::Assessed)
    );
    let mut again = facts(CheckKind::PreOpening, cst("2022-07-05T10:00:00"), at);
    again.status = ClassStatus::InTraining;
    assert!(matches!(
        decide_check(&again, &p),
        Err(CheckRefusal::OutOfOrder { .. })
    ));
}

#[test]
fn a_class_in_training_has_ended_training_the_day_after_its_last_class_day() {
    let last = d(LAST);
    assert_eq!(
        phase(ClassStatus::InTraining, last, last),
        ClassPhase::InTraining
    );
    assert_eq!(
        phase(ClassStatus::InTraining, last, d("2022-07-26")),
        ClassPhase::TrainingEnded
    );
    assert_eq!(
        phase(ClassStatus::Approved, last, d("2022-07-26")),
        ClassPhase::Approved
    );
    assert_eq!(
        phase(ClassStatus::Assessed, last, d("2022-07-26")),
        ClassPhase::Assessed
    );
    for p in ClassPhase::ALL {
        assert_eq!(ClassPhase::parse(p.id()), Some(p));
    }
}

#[test]
fn a_record_stored_as_completed_reads_as_in_training() {
    let s: ClassStatus = serde_json::from_str("\"completed\"").unwrap();
    assert_eq!(s, ClassStatus::InTraining);
    assert_eq!(
        serde_json::to_string(&ClassStatus::InTraining).unwrap(),
        "\"in_training\""
    );
}

#[test]
fn class_days_begin_at_midnight_china_standard_time() {
    assert_eq!(
        cst_start(d("2022-07-11")),
        "2022-07-10T16:00:00Z".parse::<DateTime<Utc>>().unwrap()
    );
}

//! SC-DRAW's commit–reveal, windows, SC-EVERY membership and sample visibility, both sides.

use super::*;
use crate::params::DatedValue;

fn d(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

#[test]
fn sc_draw_windows_are_real_days_or_iso_weeks() {
    assert_eq!(Window::parse("2022-02-28").unwrap().id(), "2022-02-28");
    assert_eq!(
        Window::parse("2022-02-29"),
        Err(WindowError::Malformed),
        "not a day"
    );
    assert_eq!(
        Window::parse("2024-02-29").unwrap().days(),
        (d("2024-02-29"), d("2024-02-29"))
    );
    // 2022 has 52 ISO weeks, 2020 has 53.
    let w = Window::parse("2022-W52").unwrap();
    assert_eq!(w.days(), (d("2022-12-26"), d("2023-01-01")));
    assert_eq!(Window::parse("2022-W53"), Err(WindowError::Malformed));
    assert_eq!(Window::parse("2020-W53").unwrap().id(), "2020-W53");
    assert_eq!(Window::parse("2022-W25").unwrap().days().0, d("2022-06-20"));
    for bad in [
        "",
        "e2e-2022-06-20",
        "2022-6-20",
        "2022-06-20x",
        "2022-W5",
        "2022-W00",
        "20220620",
        "２０２２-06-20",
    ] {
        assert_eq!(Window::parse(bad), Err(WindowError::Malformed), "{bad:?}");
    }
}

#[test]
fn sc_draw_the_window_kind_follows_sc_window_days() {
    let p = Parameters::shipped();
    let today = d("2022-06-20");
    assert!(
        Window::parse_for("2022-06-20", p, today).is_ok(),
        "days by default"
    );
    assert_eq!(
        Window::parse_for("2022-W25", p, today),
        Err(WindowError::WrongKind { expected: "day" })
    );
    let weekly = p.clone().with_value(
        names::SC_WINDOW_DAYS,
        DatedValue {
            since: d("2022-07-01"),
            value: 7,
            reference: "test".into(),
        },
    );
    assert!(
        Window::parse_for("2022-06-20", &weekly, today).is_ok(),
        "before the change"
    );
    assert!(Window::parse_for("2022-W27", &weekly, d("2022-07-04")).is_ok());
    assert_eq!(
        Window::parse_for("2022-07-04", &weekly, d("2022-07-04")),
        Err(WindowError::WrongKind { expected: "week" })
    );
}

#[test]
fn sc_draw_the_seed_is_fixed_from_the_committed_bytes_and_never_equals_the_commitment() {
    let bytes = [7u8; COMMITTED_BYTES];
    let c = commitment(&bytes);
    assert_eq!(c.len(), 64);
    let alone = run_seed(&bytes, None);
    assert_ne!(alone, c, "the seed is not public from the creation");
    let with = run_seed(&bytes, Some("01382438112797316654"));
    assert_ne!(with, alone);
    // One byte changed changes the commitment and the seed.
    let mut other = bytes;
    other[31] ^= 1;
    assert_ne!(commitment(&other), c);
    assert_ne!(run_seed(&other, None), alone);
    // Class seeds differ per class and follow the run seed.
    assert_ne!(
        class_seed(&alone, "KM-2022-000001"),
        class_seed(&alone, "KM-2022-000002")
    );
    assert_eq!(unhex(&hex(&bytes)).unwrap(), bytes.to_vec());
    assert_eq!(unhex("0g"), None);
}

#[test]
fn sc_draw_the_public_value_is_waited_for_until_the_wait_parameter_runs_out() {
    let p = Parameters::shipped();
    let frozen = "2022-06-20T02:00:00Z".parse::<DateTime<Utc>>().unwrap();
    let on = d("2022-06-20");
    let minute = Duration::minutes(1);
    assert_eq!(
        seed_step(None, frozen, frozen + Duration::minutes(30) - minute, p, on),
        SeedStep::AwaitPublicValue {
            until: frozen + Duration::minutes(30)
        },
        "29 minutes after the freeze"
    );
    assert_eq!(
        seed_step(None, frozen, frozen + Duration::minutes(30), p, on),
        SeedStep::WithoutPublicValue,
        "30 minutes after the freeze"
    );
    assert_eq!(
        seed_step(Some("123"), frozen, frozen, p, on),
        SeedStep::WithPublicValue("123".into())
    );
}

#[test]
fn sc_every_a_class_is_in_every_run_from_its_first_class_day_to_its_last() {
    let (first, last) = (d("2022-06-13"), d("2022-06-27"));
    let day = |s: &str| (d(s), d(s));
    assert!(!in_run(true, first, last, day("2022-06-12")), "the eve");
    assert!(in_run(true, first, last, day("2022-06-13")), "first day");
    assert!(in_run(true, first, last, day("2022-06-27")), "last day");
    assert!(
        !in_run(true, first, last, day("2022-06-28")),
        "the day after"
    );
    assert!(
        !in_run(false, first, last, day("2022-06-20")),
        "not in training"
    );
    // A week that overlaps the last day only.
    assert!(in_run(
        true,
        first,
        last,
        Window::parse("2022-W26").unwrap().days()
    ));
    assert!(!in_run(
        true,
        first,
        last,
        Window::parse("2022-W27").unwrap().days()
    ));
}

#[test]
fn an_institution_sees_its_classs_sample_only_once_every_call_of_it_is_closed() {
    let (dist, inst) = ("530102", "52530102MJ1D4567X6");
    assert!(
        !sees_sample(Viewer::Institution(inst), dist, inst, false),
        "calls open"
    );
    assert!(
        sees_sample(Viewer::Institution(inst), dist, inst, true),
        "calls closed"
    );
    assert!(
        !sees_sample(Viewer::Institution("other"), dist, inst, true),
        "another's class"
    );
    assert!(sees_sample(Viewer::District(dist), dist, inst, false));
    assert!(!sees_sample(Viewer::District("530103"), dist, inst, false));
    assert!(sees_sample(Viewer::Bureau, dist, inst, false));
    assert!(!sees_sample(Viewer::Other, dist, inst, true));
    assert!(sees_seed(Viewer::Bureau, false));
    assert!(!sees_seed(Viewer::District(dist), false));
    assert!(!sees_seed(Viewer::Institution(inst), false));
    assert!(
        sees_seed(Viewer::Other, true),
        "once the run is closed, to everyone"
    );
}

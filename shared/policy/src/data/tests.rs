//! Tests of the policy data and its edits (item 1 and 2 of issue 16).

use super::*;
use crate::ids::{OccupationCode, SkillLevel};
use crate::reference::FundSource;

fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn data() -> PolicyData {
    PolicyData::shipped().clone()
}

fn hours(since: &str, value: i64) -> Edit {
    Edit::ParameterValue {
        name: names::CO_MIN_CLASS_HOURS.into(),
        value: DatedValue {
            since: day(since),
            value,
            reference: "市人社局通知（测试）".into(),
        },
    }
}

fn fields(e: EditError) -> Vec<String> {
    match e {
        EditError::Invalid(errs) => errs.into_iter().map(|e| e.field).collect(),
        other => panic!("not a field error: {other:?}"),
    }
}

#[test]
fn the_shipped_defaults_check_and_are_version_1() {
    let p = Policy::shipped();
    assert_eq!(p.reference.version, 1);
    assert_eq!(p.reference.digest.len(), 64);
    // Version 1 is known by the digest of the shipped JSON it stores.
    assert_eq!(
        p.reference.digest,
        PolicyData::digest_of_json(PolicyData::shipped_json())
    );
    assert_eq!(
        PolicyData::from_json(PolicyData::shipped_json()).unwrap(),
        *PolicyData::shipped()
    );
    PolicyData::shipped()
        .check()
        .expect("the shipped data checks");
}

#[test]
fn policy_data_reads_back_from_its_json_with_the_same_digest() {
    let d = data();
    let json = serde_json::to_vec(&d).unwrap();
    let back: PolicyData = serde_json::from_slice(&json).unwrap();
    assert_eq!(back, d);
    assert_eq!(back.digest(), d.digest());
    // A stored record stays far below a hosted store's 1 MB value limit.
    assert!(json.len() < 100_000, "{} bytes", json.len());
}

#[test]
fn co_hours_value_dated_after_today_is_added_and_holds_only_from_its_date() {
    let d = data();
    let e = d
        .apply(&hours("2023-01-01", 130), day("2022-12-01"), false)
        .unwrap();
    assert!(!e.retroactive);
    let p = &e.data.parameters;
    let before = p.at(names::CO_MIN_CLASS_HOURS, day("2022-12-31")).unwrap();
    let after = p.at(names::CO_MIN_CLASS_HOURS, day("2023-01-01")).unwrap();
    assert_eq!(
        (before.value, before.label()),
        (120, "co_min_class_hours@2022-04-22".into())
    );
    assert_eq!(
        (after.value, after.label()),
        (130, "co_min_class_hours@2023-01-01".into())
    );
    assert_ne!(
        e.data.digest(),
        d.digest(),
        "a new version has a new digest"
    );
}

#[test]
fn a_value_dated_on_or_before_today_that_changes_decisions_is_refused_unless_retroactive() {
    let d = data();
    for today in ["2023-01-01", "2023-06-30"] {
        match d.apply(&hours("2023-01-01", 130), day(today), false) {
            Err(EditError::Retroactive { field, detail }) => {
                assert_eq!(field, "since");
                assert!(detail.contains("120") && detail.contains("130"), "{detail}");
            }
            other => panic!("{today}: {other:?}"),
        }
        let e = d
            .apply(&hours("2023-01-01", 130), day(today), true)
            .unwrap();
        assert!(e.retroactive, "recorded as retroactive");
    }
    // The day before the value's date it is not retroactive.
    let e = d
        .apply(&hours("2023-01-01", 130), day("2022-12-31"), false)
        .unwrap();
    assert!(!e.retroactive);
}

#[test]
fn a_past_dated_value_equal_to_the_one_in_force_changes_no_decision_and_needs_no_flag() {
    let e = data()
        .apply(&hours("2023-01-01", 120), day("2024-01-01"), false)
        .unwrap();
    assert!(!e.retroactive);
    assert_eq!(
        e.data
            .parameters
            .at(names::CO_MIN_CLASS_HOURS, day("2023-06-01"))
            .unwrap()
            .label(),
        "co_min_class_hours@2023-01-01"
    );
}

#[test]
fn the_same_edit_twice_changes_nothing() {
    let once = data()
        .apply(&hours("2023-01-01", 130), day("2022-12-01"), false)
        .unwrap();
    assert_eq!(
        once.data
            .apply(&hours("2023-01-01", 130), day("2022-12-01"), false),
        Err(EditError::Unchanged)
    );
}

#[test]
fn parameter_values_out_of_bounds_are_refused_naming_the_field() {
    let d = data();
    let edit = |name: &str, value: i64, reference: &str, since: &str| Edit::ParameterValue {
        name: name.into(),
        value: DatedValue {
            since: day(since),
            value,
            reference: reference.into(),
        },
    };
    let today = day("2022-12-01");
    let cases = [
        (
            edit(names::CO_MIN_CLASS_HOURS, -1, "r", "2023-01-01"),
            "value",
        ),
        (
            edit(names::SC_RATE_PERCENT, 101, "r", "2023-01-01"),
            "value",
        ),
        (
            edit(names::SC_RATE_PERCENT, 100, " ", "2023-01-01"),
            "reference",
        ),
        (edit(names::SC_WINDOW_DAYS, 3, "r", "2023-01-01"), "value"),
        (edit(names::VO_FOUR_EYES, 2, "r", "2023-01-01"), "value"),
        (
            edit(names::CO_MAX_CLASS_SIZE, 0, "r", "2023-01-01"),
            "value",
        ),
        (
            edit(names::CO_MIN_CLASS_HOURS, 120, "r", "1999-12-31"),
            "since",
        ),
        // CO-APPRENTICE: the shortest may not exceed the longest (24).
        (
            edit(names::CO_APPRENTICE_MIN_MONTHS, 25, "r", "2023-01-01"),
            "value",
        ),
    ];
    for (e, field) in cases {
        assert_eq!(
            fields(d.apply(&e, today, false).unwrap_err()),
            vec![field],
            "{e:?}"
        );
    }
    // Each on the other side of its bound.
    for e in [
        edit(names::SC_RATE_PERCENT, 100, "r", "2023-01-01"),
        edit(names::SC_WINDOW_DAYS, 7, "r", "2023-01-01"),
        edit(names::VO_FOUR_EYES, 0, "r", "2023-01-01"),
        edit(names::CO_MAX_CLASS_SIZE, 1, "r", "2023-01-01"),
        edit(names::CO_MIN_CLASS_HOURS, 0, "r", "2023-01-01"),
        edit(names::CO_APPRENTICE_MIN_MONTHS, 24, "r", "2023-01-01"),
    ] {
        assert!(d.apply(&e, today, false).is_ok(), "{e:?}");
    }
    assert!(matches!(
        d.apply(
            &edit("co_min_class_hourz", 1, "r", "2023-01-01"),
            today,
            false
        ),
        Err(EditError::Unknown(_))
    ));
}

fn elder_care() -> Occupation {
    data()
        .catalogue
        .occupation(&OccupationCode::parse("4-10-01-05").unwrap())
        .unwrap()
        .clone()
}

#[test]
fn an_occupation_without_hours_for_a_level_it_trains_is_refused_naming_the_field() {
    let d = data();
    let today = day("2022-12-01");
    let put = |o: Occupation| Edit::Occupation {
        occupation: o,
        assessment_bodies: vec![],
    };
    let mut o = elder_care();
    o.min_hours.remove("3");
    assert_eq!(
        fields(d.apply(&put(o), today, false).unwrap_err()),
        vec!["occupation.min_hours"]
    );
    let mut o = elder_care();
    o.levels.retain(|l| *l != SkillLevel::One);
    // Hours for level 1, which it no longer trains; and a subsidy standard of
    // another level stays valid.
    assert_eq!(
        fields(d.apply(&put(o), today, false).unwrap_err()),
        vec!["occupation.min_hours.1"]
    );
    let mut o = elder_care();
    o.min_hours.insert("5".into(), 0);
    assert_eq!(
        fields(d.apply(&put(o), today, false).unwrap_err()),
        vec!["occupation.min_hours.5"]
    );
    let mut o = elder_care();
    o.assessment_bodies = vec![];
    assert_eq!(
        fields(d.apply(&put(o), today, false).unwrap_err()),
        vec!["occupation.assessment_bodies"]
    );
    let mut o = elder_care();
    o.equipment[0].per_trainees = Some(0);
    assert_eq!(
        fields(d.apply(&put(o), today, false).unwrap_err()),
        vec!["occupation.equipment[0]"]
    );
    // An undescribed body is refused, and accepted once the request describes it.
    let body = crate::ids::CreditCode::parse("12530100MB1C2468XN").unwrap();
    let mut o = elder_care();
    o.assessment_bodies.push(body.clone());
    assert_eq!(
        fields(d.apply(&put(o.clone()), today, false).unwrap_err()),
        vec!["occupation.assessment_bodies[2]"]
    );
    let e = d
        .apply(
            &Edit::Occupation {
                occupation: o,
                assessment_bodies: vec![AssessmentBody {
                    credit_code: body.clone(),
                    name_zh: "新评价机构".into(),
                }],
            },
            today,
            false,
        )
        .unwrap();
    assert!(e.data.catalogue.assessment_body(&body).is_some());
    // Hours raised: a valid change, not retroactive (undated entries hold from the change on).
    let mut o = elder_care();
    o.min_hours.insert("5".into(), 150);
    let e = d.apply(&put(o), today, false).unwrap();
    assert!(!e.retroactive);
    let occ = e
        .data
        .catalogue
        .occupation(&OccupationCode::parse("4-10-01-05").unwrap())
        .unwrap();
    assert_eq!(occ.min_hours_for(SkillLevel::Five), Some(150));
}

#[test]
fn an_occupation_dropping_a_level_a_subsidy_standard_uses_is_refused() {
    let mut o = elder_care();
    o.levels.retain(|l| *l != SkillLevel::Three);
    o.min_hours.remove("3");
    let e = data()
        .apply(
            &Edit::Occupation {
                occupation: o,
                assessment_bodies: vec![],
            },
            day("2022-12-01"),
            false,
        )
        .unwrap_err();
    assert_eq!(fields(e), vec!["occupation.levels"]);
}

fn subsidy(amount_fen: i64, since: &str) -> SubsidyEntry {
    SubsidyEntry {
        occupation: Some(OccupationCode::parse("4-10-01-05").unwrap()),
        level: Some(SkillLevel::Five),
        project: None,
        since: day(since),
        amount_fen,
        fund: FundSource::EmploymentSubsidy,
        reference: "云南省职业培训补贴标准（测试）".into(),
        uplifts: vec![],
    }
}

#[test]
fn a_negative_subsidy_amount_or_an_unknown_occupation_is_refused_naming_the_field() {
    let d = data();
    let today = day("2022-12-01");
    assert_eq!(
        fields(
            d.apply(&Edit::Subsidy(subsidy(-1, "2023-01-01")), today, false)
                .unwrap_err()
        ),
        vec!["subsidy.amount_fen"]
    );
    let mut e = subsidy(100, "2023-01-01");
    e.occupation = Some(OccupationCode::parse("9-99-99-99").unwrap());
    assert_eq!(
        fields(d.apply(&Edit::Subsidy(e), today, false).unwrap_err()),
        vec!["subsidy.occupation"]
    );
    let mut e = subsidy(100, "2023-01-01");
    e.occupation = None;
    e.level = None;
    e.project = Some("no_such_project".into());
    assert_eq!(
        fields(d.apply(&Edit::Subsidy(e), today, false).unwrap_err()),
        vec!["subsidy.project"]
    );
    // Zero is an amount; a new standard from a later date applies from then.
    let e = d
        .apply(&Edit::Subsidy(subsidy(0, "2023-01-01")), today, false)
        .unwrap();
    let key = crate::vouchers::SubsidyKey::Level(
        OccupationCode::parse("4-10-01-05").unwrap(),
        SkillLevel::Five,
    );
    assert_eq!(
        e.data
            .subsidies
            .at(&key, day("2022-12-31"))
            .unwrap()
            .amount_fen,
        140_000
    );
    assert_eq!(
        e.data
            .subsidies
            .at(&key, day("2023-01-01"))
            .unwrap()
            .amount_fen,
        0
    );
    // Dated on or before today: vouchers already issued from then would change.
    assert!(matches!(
        d.apply(&Edit::Subsidy(subsidy(0, "2022-12-01")), today, false),
        Err(EditError::Retroactive { .. })
    ));
}

fn year(y: i32, off: &[&str], work: &[&str]) -> CalendarYear {
    CalendarYear {
        year: y,
        notice: "国务院办公厅关于放假安排的通知（测试）".into(),
        days_off: off.iter().map(|s| s.to_string()).collect(),
        working_weekends: work.iter().map(|s| s.to_string()).collect(),
    }
}

#[test]
fn a_holiday_outside_its_year_is_refused_naming_the_field() {
    let d = data();
    let today = day("2026-06-01");
    let e = Edit::CalendarYear(year(2027, &["2027-01-01", "2028-01-01"], &[]));
    assert_eq!(
        fields(d.apply(&e, today, false).unwrap_err()),
        vec!["days_off[1]"]
    );
    let e = Edit::CalendarYear(year(2027, &["2027-02-10..2027-02-05"], &["2027-02-08"]));
    assert_eq!(
        fields(d.apply(&e, today, false).unwrap_err()),
        vec!["days_off[0]", "working_weekends[0]"]
    );
}

#[test]
fn a_future_year_loads_and_counts_working_days_while_a_begun_year_needs_the_flag() {
    let d = data();
    let today = day("2026-06-01");
    let y2027 = year(2027, &["2027-01-01"], &[]);
    let e = d
        .apply(&Edit::CalendarYear(y2027.clone()), today, false)
        .unwrap();
    assert!(!e.retroactive);
    // Filed Wed 2026-12-30, start Mon 2027-01-04: Thu 12-31 only (Fri 01-01 is off).
    let w = e
        .data
        .calendar
        .working_days_between(day("2026-12-30"), day("2027-01-04"));
    assert_eq!((w.days, w.unloaded.is_empty()), (1, true));
    // 2026 has begun: a different 2026 changes CO-LEAD decisions already made.
    let y2026 = year(2026, &["2026-01-01"], &[]);
    assert!(matches!(
        d.apply(&Edit::CalendarYear(y2026.clone()), today, false),
        Err(EditError::Retroactive { ref field, .. }) if field == "year"
    ));
    assert!(
        d.apply(&Edit::CalendarYear(y2026), today, true)
            .unwrap()
            .retroactive
    );
    // The same 2026 spelt differently changes nothing.
    let same = d.calendar.year(2026).unwrap().clone();
    assert_eq!(
        d.apply(&Edit::CalendarYear(same), today, false),
        Err(EditError::Unchanged)
    );
}

#[test]
fn targets_for_a_repeated_district_or_a_backwards_period_are_refused_naming_the_field() {
    let d = data();
    let today = day("2022-06-01");
    let target = |year: i32, district: &str| DistrictTarget {
        year,
        district: AreaCode::parse(district).unwrap(),
        trainings: 10_000,
        certificates: 7_000,
        reference: "附件（测试）".into(),
    };
    let mut t = d.targets.clone();
    t.district = vec![target(2022, "530102"), target(2022, "530102")];
    assert_eq!(
        fields(
            d.apply(&Edit::Targets(t.clone()), today, false)
                .unwrap_err()
        ),
        vec!["district[1].district"]
    );
    t.district = vec![
        target(2022, "530102"),
        target(2023, "530102"),
        target(2022, "KM-JKQ"),
    ];
    let e = d.apply(&Edit::Targets(t.clone()), today, false).unwrap();
    assert_eq!(e.data.targets.district.len(), 3);
    t.programme[0].to = day("2020-12-31");
    assert_eq!(
        fields(d.apply(&Edit::Targets(t), today, false).unwrap_err()),
        vec!["programme[0].to"]
    );
}

#[test]
fn the_kangyang_programme_target_ships_23400_trainings_for_2021_and_2022() {
    let t = &PolicyData::shipped().targets.programme;
    let k = t
        .iter()
        .find(|t| t.programme == Programme::KangyangYunShifu)
        .unwrap();
    assert_eq!(
        (k.from, k.to, k.trainings),
        (day("2021-01-01"), day("2022-12-31"), 23_400)
    );
}

#[test]
fn co_topics_list_is_data_and_refuses_repeats() {
    let d = data();
    assert_eq!(d.topics.required, Topic::REQUIRED.to_vec());
    let mut t = d.topics.clone();
    t.required.push(Topic::DrugControl);
    assert_eq!(
        fields(
            d.apply(&Edit::Topics(t), day("2022-06-01"), false)
                .unwrap_err()
        ),
        vec!["required[5]"]
    );
    let mut t = d.topics.clone();
    t.required.clear();
    assert_eq!(
        fields(
            d.apply(&Edit::Topics(t), day("2022-06-01"), false)
                .unwrap_err()
        ),
        vec!["required"]
    );
}

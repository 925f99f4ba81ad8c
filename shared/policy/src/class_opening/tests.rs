//! Table-driven tests of the CO-* rules, each case on one side of a boundary.

use super::*;
use crate::decision::Outcome;
use crate::fixtures;
use crate::registry::CoursewareStatus;

fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn decide(app: &ClassApplication, ctx: &Context) -> Decision {
    app.check_shape().expect("fixture keeps its shape");
    evaluate(app, ctx, Policy::shipped())
}

type Mutation = fn(&mut ClassApplication, &mut Context);

struct Case {
    name: &'static str,
    rule: &'static str,
    mutate: Mutation,
    /// Whether the rule should pass.
    passes: bool,
    /// Expected outcome of the whole decision.
    outcome: Outcome,
}

fn run(cases: &[Case]) {
    for c in cases {
        let (mut app, mut ctx) = fixtures::valid_class(40);
        (c.mutate)(&mut app, &mut ctx);
        let d = decide(&app, &ctx);
        assert_eq!(
            d.passed(c.rule),
            c.passes,
            "{} [{}]: findings {:#?}",
            c.name,
            c.rule,
            d.of(c.rule).collect::<Vec<_>>()
        );
        assert_eq!(
            d.outcome, c.outcome,
            "{} [{}]: outcome; blocking {:?}",
            c.name, c.rule, d.blocking_rules
        );
    }
}

fn set_hours(app: &mut ClassApplication, total: u32) {
    // 15 sessions of 8 hours = 120; take hours off the last sessions.
    let mut excess = app.scheduled_hours() as i64 - total as i64;
    for s in app.sessions.iter_mut().rev() {
        if excess <= 0 {
            break;
        }
        let cut = excess.min(s.class_hours as i64 - 1);
        s.class_hours -= cut as u32;
        excess -= cut;
    }
    assert_eq!(app.scheduled_hours(), total);
}

#[test]
fn the_fixture_is_approved_with_every_rule_checked() {
    let (app, ctx) = fixtures::valid_class(40);
    let d = decide(&app, &ctx);
    assert_eq!(
        d.outcome,
        Outcome::Approved,
        "blocking {:?} warnings {:?}",
        d.blocking_rules,
        d.warning_rules
    );
    assert!(d.warning_rules.is_empty(), "{:?}", d.warning_rules);
    for rule in rules::ALL {
        assert!(d.of(rule.id).next().is_some(), "{} was checked", rule.id);
    }
}

#[test]
fn co_hours_boundary() {
    run(&[
        Case {
            name: "119 hours",
            rule: "CO-HOURS",
            mutate: |a, _| set_hours(a, 119),
            passes: false,
            outcome: Outcome::Rejected,
        },
        Case {
            name: "120 hours",
            rule: "CO-HOURS",
            mutate: |a, _| set_hours(a, 120),
            passes: true,
            outcome: Outcome::Approved,
        },
        Case {
            name: "120 hours at level 3, where the catalogue asks 140",
            rule: "CO-HOURS",
            mutate: |a, _| a.level = Some(SkillLevel::Three),
            passes: false,
            outcome: Outcome::Rejected,
        },
        Case {
            name: "completion certificate has no minimum",
            rule: "CO-HOURS",
            mutate: |a, _| {
                a.certificate = Certificate::TrainingCompletion;
                set_hours(a, 40);
            },
            passes: true,
            outcome: Outcome::Approved,
        },
    ]);
}

#[test]
fn co_hours_names_the_figures_and_the_dated_parameter() {
    let (mut app, ctx) = fixtures::valid_class(40);
    set_hours(&mut app, 96);
    let d = decide(&app, &ctx);
    let f = d.of("CO-HOURS").next().unwrap();
    assert_eq!(f.comparison.as_deref(), Some("class_hours: 96 < 120"));
    assert_eq!(
        f.parameters,
        vec!["co_min_class_hours@2022-04-22".to_string()]
    );
    assert_eq!(f.source, "plan 二(五)");
    assert!(f.message_zh.contains("96") && f.message_en.contains("96"));
}

#[test]
fn co_hours_a_dated_change_applies_only_to_classes_starting_on_or_after_it() {
    let params = Policy::shipped().with_value(
        names::CO_MIN_CLASS_HOURS,
        crate::params::DatedValue {
            since: day("2022-06-14"),
            value: 130,
            reference: "test".into(),
        },
    );
    let (app, ctx) = fixtures::valid_class(40); // starts 2022-06-13
    let before = evaluate(&app, &ctx, &params);
    assert!(
        before.passed("CO-HOURS"),
        "class starting before the change keeps 120"
    );
    let mut later = app.clone();
    for s in &mut later.sessions {
        s.date = s.date.succ_opt().unwrap();
    }
    later.start_date = later.start_date.succ_opt().unwrap();
    later.end_date = later.end_date.succ_opt().unwrap();
    let after = evaluate(&later, &ctx, &params);
    let f = after.of("CO-HOURS").next().unwrap();
    assert!(!f.passed, "class starting on the change's date needs 130");
    assert_eq!(
        f.parameters,
        vec!["co_min_class_hours@2022-06-14".to_string()]
    );
}

#[test]
fn co_online_counts_only_approved_courseware() {
    fn online(a: &mut ClassApplication, c: &mut Context, status: CoursewareStatus) {
        a.sessions[0].mode = Mode::Online;
        a.sessions[0].courseware = Some("CW-1".into());
        a.sessions[0].site = None;
        c.courseware.insert(
            "CW-1".into(),
            crate::registry::Courseware {
                id: "CW-1".into(),
                title: "理论".into(),
                status,
            },
        );
    }
    run(&[
        Case {
            name: "approved courseware",
            rule: "CO-ONLINE",
            mutate: |a, c| online(a, c, CoursewareStatus::Approved),
            passes: true,
            outcome: Outcome::Approved,
        },
        Case {
            name: "pending courseware",
            rule: "CO-ONLINE",
            mutate: |a, c| online(a, c, CoursewareStatus::Pending),
            passes: false,
            outcome: Outcome::Rejected,
        },
        Case {
            name: "rejected courseware",
            rule: "CO-ONLINE",
            mutate: |a, c| online(a, c, CoursewareStatus::Rejected),
            passes: false,
            outcome: Outcome::Rejected,
        },
        Case {
            name: "unknown courseware",
            rule: "CO-ONLINE",
            mutate: |a, c| {
                online(a, c, CoursewareStatus::Approved);
                c.courseware.clear();
            },
            passes: false,
            outcome: Outcome::Rejected,
        },
        Case {
            name: "unapproved online hours do not count toward 120",
            rule: "CO-HOURS",
            mutate: |a, c| online(a, c, CoursewareStatus::Pending),
            passes: false,
            outcome: Outcome::Rejected,
        },
    ]);
}

#[test]
fn co_size_boundaries() {
    for (n, kind, passes) in [
        (60, TrainingKind::Skills, true),
        (61, TrainingKind::Skills, false),
        (30, TrainingKind::Entrepreneurship, true),
        (31, TrainingKind::Entrepreneurship, false),
    ] {
        let (mut app, ctx) = fixtures::valid_class(n);
        app.kind = kind;
        if kind == TrainingKind::Entrepreneurship {
            app.certificate = Certificate::Entrepreneurship;
            app.programme = Programme::Malanhua;
        }
        let d = decide(&app, &ctx);
        assert_eq!(
            d.passed("CO-SIZE"),
            passes,
            "CO-SIZE {n} in {kind:?}: {:?}",
            d.of("CO-SIZE").collect::<Vec<_>>()
        );
        let f = d.of("CO-SIZE").next().unwrap();
        assert_eq!(f.observed.as_deref(), Some(n.to_string().as_str()));
    }
}

#[test]
fn co_day_boundary_is_a_warning() {
    run(&[
        Case {
            name: "8 hours a day",
            rule: "CO-DAY",
            mutate: |_, _| {},
            passes: true,
            outcome: Outcome::Approved,
        },
        Case {
            name: "9 hours on one day",
            rule: "CO-DAY",
            mutate: |a, _| {
                let mut extra = a.sessions[0].clone();
                extra.start = NaiveTime::from_hms_opt(19, 0, 0).unwrap();
                extra.end = NaiveTime::from_hms_opt(20, 0, 0).unwrap();
                extra.class_hours = 1;
                extra.site = Some("昆明市五华区教场中路 8 号 202 室".into());
                a.sessions.push(extra);
            },
            passes: false,
            outcome: Outcome::Approved,
        },
    ]);
}

#[test]
fn co_equip_boundary() {
    run(&[
        Case {
            name: "8 beds for 40",
            rule: "CO-EQUIP",
            mutate: |a, _| a.equipment[0].quantity = 8,
            passes: true,
            outcome: Outcome::Approved,
        },
        Case {
            name: "7 beds for 40",
            rule: "CO-EQUIP",
            mutate: |a, _| a.equipment[0].quantity = 7,
            passes: false,
            outcome: Outcome::Rejected,
        },
        Case {
            name: "no wheelchairs",
            rule: "CO-EQUIP",
            mutate: |a, _| {
                a.equipment.retain(|e| e.item != "轮椅");
            },
            passes: false,
            outcome: Outcome::Rejected,
        },
    ]);
}

#[test]
fn co_trainer_registration() {
    run(&[
        Case {
            name: "registered",
            rule: "CO-TRAINER",
            mutate: |_, _| {},
            passes: true,
            outcome: Outcome::Approved,
        },
        Case {
            name: "not on the platform",
            rule: "CO-TRAINER",
            mutate: |_, c| {
                c.trainers.remove("YN-T-0002");
            },
            passes: false,
            outcome: Outcome::Rejected,
        },
        Case {
            name: "revoked",
            rule: "CO-TRAINER",
            mutate: |_, c| c.trainers.get_mut("YN-T-0001").unwrap().status = TrainerStatus::Revoked,
            passes: false,
            outcome: Outcome::Rejected,
        },
    ]);
}

#[test]
fn co_textbook_catalogue_isbn_and_none() {
    run(&[
        Case {
            name: "in the catalogue",
            rule: "CO-TEXTBOOK",
            mutate: |_, _| {},
            passes: true,
            outcome: Outcome::Approved,
        },
        Case {
            name: "outside with a valid ISBN warns",
            rule: "CO-TEXTBOOK",
            mutate: |_, c| c.textbooks.clear(),
            passes: false,
            outcome: Outcome::Approved,
        },
        Case {
            name: "outside without ISBN blocks",
            rule: "CO-TEXTBOOK",
            mutate: |a, c| {
                c.textbooks.clear();
                a.textbooks[0].isbn = None;
            },
            passes: false,
            outcome: Outcome::Rejected,
        },
        Case {
            name: "outside with a bad ISBN blocks",
            rule: "CO-TEXTBOOK",
            mutate: |a, c| {
                c.textbooks.clear();
                a.textbooks[0].isbn = Some("978-7-111-21382-7".into());
            },
            passes: false,
            outcome: Outcome::Rejected,
        },
    ]);
}

#[test]
fn co_assess_separates_training_and_assessment() {
    run(&[
        Case {
            name: "separate recognised body",
            rule: "CO-ASSESS",
            mutate: |_, _| {},
            passes: true,
            outcome: Outcome::Approved,
        },
        Case {
            name: "institution assesses itself",
            rule: "CO-ASSESS",
            mutate: |a, _| a.assessment_body = a.institution.clone(),
            passes: false,
            outcome: Outcome::Rejected,
        },
        Case {
            name: "unrecognised body",
            rule: "CO-ASSESS",
            mutate: |a, _| a.assessment_body = CreditCode::parse("12530000MB2F6789XG").unwrap(),
            passes: false,
            outcome: Outcome::Rejected,
        },
    ]);
}

#[test]
fn co_assess_allows_the_only_recognised_body_to_assess_its_own_trainees() {
    let (mut app, mut ctx) = fixtures::valid_class(20);
    // 电工 has a single recognised assessment body, which is here the institution itself.
    app.occupation = Some(OccupationCode::parse("6-31-01-03").unwrap());
    app.institution = CreditCode::parse("12530000MB2F6789XG").unwrap();
    app.assessment_body = app.institution.clone();
    ctx.institution.as_mut().unwrap().credit_code = app.institution.clone();
    let d = evaluate(&app, &ctx, Policy::shipped());
    assert!(
        d.passed("CO-ASSESS"),
        "{:?}",
        d.of("CO-ASSESS").collect::<Vec<_>>()
    );
}

#[test]
fn co_inst_status_and_district() {
    run(&[
        Case {
            name: "filed",
            rule: "CO-INST",
            mutate: |_, _| {},
            passes: true,
            outcome: Outcome::Approved,
        },
        Case {
            name: "not on file",
            rule: "CO-INST",
            mutate: |_, c| c.institution = None,
            passes: false,
            outcome: Outcome::Rejected,
        },
        Case {
            name: "suspended",
            rule: "CO-INST",
            mutate: |_, c| c.institution.as_mut().unwrap().status = InstitutionStatus::Suspended,
            passes: false,
            outcome: Outcome::Rejected,
        },
        Case {
            name: "blacklisted",
            rule: "CO-INST",
            mutate: |_, c| c.institution.as_mut().unwrap().status = InstitutionStatus::Blacklisted,
            passes: false,
            outcome: Outcome::Rejected,
        },
        Case {
            name: "filed with another district",
            rule: "CO-INST",
            mutate: |a, _| a.district = AreaCode::parse("530103").unwrap(),
            passes: false,
            outcome: Outcome::Rejected,
        },
    ]);
}

#[test]
fn co_topics_one_finding_per_missing_topic() {
    let (mut app, ctx) = fixtures::valid_class(40);
    for s in &mut app.sessions {
        s.topics
            .retain(|t| *t != Topic::DrugControl && *t != Topic::Putonghua);
    }
    let d = decide(&app, &ctx);
    let failed: Vec<&str> = d
        .of("CO-TOPICS")
        .filter(|f| !f.passed)
        .map(|f| f.message_en.as_str())
        .collect();
    assert_eq!(failed.len(), 2, "CO-TOPICS {failed:?}");
    assert!(failed.iter().any(|m| m.contains("drug_control")));
    assert!(failed.iter().any(|m| m.contains("putonghua")));
    assert_eq!(d.outcome, Outcome::Approved, "CO-TOPICS warns only");
}

#[test]
fn co_relevant_enterprise_training_matches_main_business() {
    fn enterprise(a: &mut ClassApplication, industry: &str) {
        a.programme = Programme::SkillsUpgradeAction;
        a.enterprise = Some(Enterprise {
            credit_code: CreditCode::parse("91530100MA6E5678XY").unwrap(),
            name: "昆明某养老服务有限公司".into(),
            industry: industry.into(),
        });
    }
    run(&[
        Case {
            name: "care home trains care workers",
            rule: "CO-RELEVANT",
            mutate: |a, _| enterprise(a, "Q"),
            passes: true,
            outcome: Outcome::Approved,
        },
        Case {
            name: "factory trains care workers",
            rule: "CO-RELEVANT",
            mutate: |a, _| enterprise(a, "C"),
            passes: false,
            outcome: Outcome::Approved,
        },
        Case {
            name: "enterprise training without enterprise",
            rule: "CO-RELEVANT",
            mutate: |a, _| a.roster[0].group = TargetGroup::EnterpriseEmployee,
            passes: false,
            outcome: Outcome::Approved,
        },
    ]);
}

#[test]
fn co_entry_share_boundary() {
    fn entry(a: &mut ClassApplication, c: &mut Context, classes: u32, completion: u32) {
        a.certificate = Certificate::TrainingCompletion;
        c.year = YearCounts {
            classes,
            completion_classes: completion,
        };
    }
    run(&[
        Case {
            name: "6 of 20 is 30 %",
            rule: "CO-ENTRY",
            mutate: |a, c| entry(a, c, 19, 5),
            passes: true,
            outcome: Outcome::Approved,
        },
        Case {
            name: "7 of 21 is over 30 %",
            rule: "CO-ENTRY",
            mutate: |a, c| entry(a, c, 20, 6),
            passes: false,
            outcome: Outcome::Approved,
        },
        Case {
            name: "a skill-level class never raises the share",
            rule: "CO-ENTRY",
            mutate: |_, c| {
                c.year = YearCounts {
                    classes: 1,
                    completion_classes: 1,
                }
            },
            passes: true,
            outcome: Outcome::Approved,
        },
    ]);
}

#[test]
fn co_lead_boundary() {
    // Start Mon 2022-06-13. Filed Mon 06-06: Tue..Fri = 4 working days; filed Thu 06-02: Jun 3 is a holiday, so 5.
    run(&[
        Case {
            name: "5 working days",
            rule: "CO-LEAD",
            mutate: |_, c| c.today = day("2022-06-02"),
            passes: true,
            outcome: Outcome::Approved,
        },
        Case {
            name: "4 working days",
            rule: "CO-LEAD",
            mutate: |_, c| c.today = day("2022-06-06"),
            passes: false,
            outcome: Outcome::Rejected,
        },
    ]);
}

/// The CO-LEAD count of a class starting on `start` filed on `filed`, and
/// whether CO-LEAD and CO-CALENDAR passed.
fn lead(start: &str, filed: &str) -> (String, bool, bool) {
    let (app, ctx) = fixtures::valid_class_from(day(start), day(filed), 40, 0);
    let d = decide(&app, &ctx);
    let f = d.of("CO-LEAD").next().unwrap();
    (
        f.observed.clone().unwrap(),
        d.passed("CO-LEAD"),
        d.passed("CO-CALENDAR"),
    )
}

#[test]
fn co_lead_counts_across_spring_festival_and_national_day_in_2024_and_2026() {
    // Five working days are needed (co_lead_working_days@2022-04-22).
    // 2024 春节 (2-10..2-17 off, Sun 2-18 worked): a class starting Tue
    // 2024-02-20 filed Fri 2-09 has Sun 18 and Mon 19 only (Monday to Friday
    // would give 6); filed Fri 2-02, Sun 4, Mon 5..Fri 9, Sun 18, Mon 19 = 8.
    assert_eq!(lead("2024-02-20", "2024-02-09"), ("2".into(), false, true));
    // Filed Tue 2-06: Wed 7, Thu 8, Fri 9, Sun 18, Mon 19 = 5, just enough;
    // filed Wed 2-07: 4, one short.
    assert_eq!(lead("2024-02-20", "2024-02-06"), ("5".into(), true, true));
    assert_eq!(lead("2024-02-20", "2024-02-07"), ("4".into(), false, true));
    // 2024 国庆 (10-01..10-07 off, Sun 9-29 and Sat 10-12 worked): start Mon
    // 10-14; filed Wed 10-02 has Tue 8..Fri 11 and Sat 12 = 5; filed Tue 10-08, 4.
    assert_eq!(lead("2024-10-14", "2024-10-02"), ("5".into(), true, true));
    assert_eq!(lead("2024-10-14", "2024-10-08"), ("4".into(), false, true));
    // 2026 春节 (2-15..2-23 off, Sat 2-14 and Sat 2-28 worked): start Mon
    // 3-02; filed Fri 2-13 has Sat 14, Tue 24..Fri 27, Sat 28 = 6; filed
    // Tue 2-24, Wed 25..Fri 27 and Sat 28 = 4.
    assert_eq!(lead("2026-03-02", "2026-02-13"), ("6".into(), true, true));
    assert_eq!(lead("2026-03-02", "2026-02-24"), ("4".into(), false, true));
    // 2026 国庆 (10-01..10-07 off, Sat 10-10 worked): start Mon 10-12; filed
    // Tue 9-29 has Wed 30, Thu 10-08, Fri 10-09, Sat 10-10 = 4 (Monday to
    // Friday would give 9); filed Mon 9-28, 5.
    assert_eq!(lead("2026-10-12", "2026-09-29"), ("4".into(), false, true));
    assert_eq!(lead("2026-10-12", "2026-09-28"), ("5".into(), true, true));
}

#[test]
fn a_class_whose_lead_period_reaches_an_unloaded_year_is_told_so_by_co_calendar() {
    let (app, ctx) = fixtures::valid_class_from(day("2027-01-18"), day("2026-12-28"), 40, 0);
    let d = decide(&app, &ctx);
    assert!(!d.passed("CO-CALENDAR"));
    let f = d.of("CO-CALENDAR").next().unwrap();
    assert!(
        f.message_en.contains("calendar not loaded for 2027"),
        "{}",
        f.message_en
    );
    assert_eq!(f.observed.as_deref(), Some("2027"));
    // A warning: the decision still stands on CO-LEAD counted Monday to Friday.
    assert!(
        d.warning_rules.contains(&"CO-CALENDAR".to_string()),
        "{d:?}"
    );
    assert!(!d.blocking_rules.contains(&"CO-CALENDAR".to_string()));
    assert!(d.passed("CO-LEAD"));
}

#[test]
fn before_the_plans_first_values_there_is_no_value_and_the_class_is_blocked_by_co_inforce() {
    // The plan's parameters hold from 2022-04-22 (昆人社通〔2022〕34号).
    let (app, ctx) = fixtures::valid_class_from(day("2022-04-21"), day("2022-03-01"), 40, 0);
    let d = decide(&app, &ctx);
    assert_eq!(d.outcome, Outcome::Rejected);
    assert_eq!(d.blocking_rules, vec!["CO-INFORCE".to_string()]);
    let f = d.of("CO-INFORCE").next().unwrap();
    assert!(
        f.message_en
            .contains("co_min_class_hours (from 2022-04-22)"),
        "{}",
        f.message_en
    );
    assert_eq!(
        f.comparison.as_deref(),
        Some("start_date: 2022-04-21 < 2022-04-22")
    );
    // No rule was decided by a value borrowed from a later date.
    assert!(d.of("CO-HOURS").next().is_none(), "{:?}", d.findings);
    assert_eq!(d.findings.len(), 1);
    // The first day of the plan: in force, every rule decides.
    let (app, ctx) = fixtures::valid_class_from(day("2022-04-22"), day("2022-03-01"), 40, 0);
    let d = decide(&app, &ctx);
    assert!(d.passed("CO-INFORCE"), "{:?}", d.blocking_rules);
    assert!(d.of("CO-HOURS").next().is_some());
}

#[test]
fn co_roster_duplicates_and_overlapping_enrolments() {
    fn enrolled(c: &mut Context, start: &str, end: &str) {
        c.enrolments.insert(
            3,
            vec![Enrolment {
                class_id: "KM-2022-000007".into(),
                start_date: day(start),
                end_date: day(end),
            }],
        );
    }
    run(&[
        Case {
            name: "clean roster",
            rule: "CO-ROSTER",
            mutate: |_, _| {},
            passes: true,
            outcome: Outcome::Approved,
        },
        Case {
            name: "line 5 repeats line 1",
            rule: "CO-ROSTER",
            mutate: |a, _| a.roster[4].id_number = a.roster[0].id_number.clone(),
            passes: false,
            outcome: Outcome::Rejected,
        },
        Case {
            name: "other class ends the day before",
            rule: "CO-ROSTER",
            mutate: |_, c| enrolled(c, "2022-05-01", "2022-06-12"),
            passes: true,
            outcome: Outcome::Approved,
        },
        Case {
            name: "other class ends on the first day",
            rule: "CO-ROSTER",
            mutate: |_, c| enrolled(c, "2022-05-01", "2022-06-13"),
            passes: false,
            outcome: Outcome::Rejected,
        },
        Case {
            name: "other class starts the day after",
            rule: "CO-ROSTER",
            mutate: |_, c| enrolled(c, "2022-06-28", "2022-07-30"),
            passes: true,
            outcome: Outcome::Approved,
        },
    ]);
}

#[test]
fn co_roster_finding_masks_the_id_number() {
    let (mut app, ctx) = fixtures::valid_class(40);
    app.roster[4].id_number = app.roster[0].id_number.clone();
    let d = decide(&app, &ctx);
    let json = serde_json::to_string(&d).unwrap();
    assert!(
        !json.contains(app.roster[0].id_number.expose()),
        "CO-ROSTER decision leaks the ID number"
    );
    let f = d.of("CO-ROSTER").find(|f| !f.passed).unwrap();
    assert_eq!(f.field.as_deref(), Some("roster[4].id_number"));
}

#[test]
fn co_apprentice_duration_and_level() {
    fn apprentice(a: &mut ClassApplication, end: &str, level: SkillLevel) {
        a.kind = TrainingKind::Apprenticeship;
        a.programme = Programme::Apprenticeship;
        a.end_date = end.parse().unwrap();
        a.level = Some(level);
    }
    // Starts 2022-06-13: 12 months end 2023-06-12; 24 months end 2024-06-12.
    run(&[
        Case {
            name: "12 months, level 4",
            rule: "CO-APPRENTICE",
            mutate: |a, _| apprentice(a, "2023-06-12", SkillLevel::Four),
            passes: true,
            outcome: Outcome::Approved,
        },
        Case {
            name: "one day short of 12 months",
            rule: "CO-APPRENTICE",
            mutate: |a, _| apprentice(a, "2023-06-11", SkillLevel::Four),
            passes: false,
            outcome: Outcome::Approved,
        },
        Case {
            name: "24 months",
            rule: "CO-APPRENTICE",
            mutate: |a, _| apprentice(a, "2024-06-12", SkillLevel::Four),
            passes: true,
            outcome: Outcome::Approved,
        },
        Case {
            name: "25 months",
            rule: "CO-APPRENTICE",
            mutate: |a, _| apprentice(a, "2024-07-12", SkillLevel::Four),
            passes: false,
            outcome: Outcome::Approved,
        },
        Case {
            name: "level 5",
            rule: "CO-APPRENTICE",
            mutate: |a, _| apprentice(a, "2023-06-12", SkillLevel::Five),
            passes: false,
            outcome: Outcome::Approved,
        },
    ]);
}

#[test]
fn co_clash_trainer_and_site_double_booking() {
    fn trainer_booked(c: &mut Context, start: (u32, u32), end: (u32, u32)) {
        c.trainer_bookings.insert(
            "YN-T-0001".into(),
            vec![Booking {
                class_id: "KM-2022-000009".into(),
                date: "2022-06-13".parse().unwrap(),
                start: NaiveTime::from_hms_opt(start.0, start.1, 0).unwrap(),
                end: NaiveTime::from_hms_opt(end.0, end.1, 0).unwrap(),
            }],
        );
    }
    run(&[
        Case {
            name: "no other booking",
            rule: "CO-CLASH",
            mutate: |_, _| {},
            passes: true,
            outcome: Outcome::Approved,
        },
        // The fixture's first session runs 08:30–17:30.
        Case {
            name: "other class ends as ours starts",
            rule: "CO-CLASH",
            mutate: |_, c| trainer_booked(c, (7, 0), (8, 30)),
            passes: true,
            outcome: Outcome::Approved,
        },
        Case {
            name: "other class overlaps by a minute",
            rule: "CO-CLASH",
            mutate: |_, c| trainer_booked(c, (7, 0), (8, 31)),
            passes: false,
            outcome: Outcome::Rejected,
        },
        Case {
            name: "site booked",
            rule: "CO-CLASH",
            mutate: |a, c| {
                let site = normalize_site(a.sessions[0].site.as_ref().unwrap());
                c.site_bookings.insert(
                    site,
                    vec![Booking {
                        class_id: "KM-2022-000010".into(),
                        date: a.sessions[0].date,
                        start: NaiveTime::from_hms_opt(14, 0, 0).unwrap(),
                        end: NaiveTime::from_hms_opt(15, 0, 0).unwrap(),
                    }],
                );
            },
            passes: false,
            outcome: Outcome::Rejected,
        },
        // Within the application: session 1 (the other trainer) moved onto
        // session 0's day and hours.
        Case {
            name: "two sessions at once, other trainer, another site",
            rule: "CO-CLASH",
            mutate: |a, _| {
                alongside_session_0(a);
                a.sessions[1].site = Some("昆明市盘龙区北京路 100 号".into());
            },
            passes: true,
            outcome: Outcome::Approved,
        },
        Case {
            name: "two sessions at once, other trainer, same site spaced differently",
            rule: "CO-CLASH",
            mutate: |a, _| {
                alongside_session_0(a);
                let site = a.sessions[0].site.clone().unwrap();
                a.sessions[1].site = Some(format!(" {} ", site.replace(' ', "  ")));
            },
            passes: false,
            outcome: Outcome::Rejected,
        },
    ]);
}

/// Moves session 1 onto session 0's date and hours (the trainers differ).
fn alongside_session_0(a: &mut ClassApplication) {
    let (date, start, end) = (a.sessions[0].date, a.sessions[0].start, a.sessions[0].end);
    let s = &mut a.sessions[1];
    (s.date, s.start, s.end) = (date, start, end);
    assert_ne!(a.sessions[0].trainer, a.sessions[1].trainer);
}

#[test]
fn co_shared_phone_limit() {
    run(&[
        Case {
            name: "one trainee per number",
            rule: "CO-SHARED-PHONE",
            mutate: |_, _| {},
            passes: true,
            outcome: Outcome::Approved,
        },
        Case {
            name: "two on the roster share",
            rule: "CO-SHARED-PHONE",
            mutate: |a, _| a.roster[9].mobile = a.roster[2].mobile.clone(),
            passes: false,
            outcome: Outcome::Approved,
        },
        Case {
            name: "used in a class in training",
            rule: "CO-SHARED-PHONE",
            mutate: |_, c| {
                c.phone_users_elsewhere.insert(7, 1);
            },
            passes: false,
            outcome: Outcome::Approved,
        },
    ]);
}

#[test]
fn co_order_online_before_offline() {
    fn online_at(a: &mut ClassApplication, c: &mut Context, index: usize) {
        a.sessions[index].mode = Mode::Online;
        a.sessions[index].courseware = Some("CW-1".into());
        c.courseware.insert(
            "CW-1".into(),
            crate::registry::Courseware {
                id: "CW-1".into(),
                title: "理论".into(),
                status: CoursewareStatus::Approved,
            },
        );
    }
    run(&[
        Case {
            name: "online first",
            rule: "CO-ORDER",
            mutate: |a, c| online_at(a, c, 0),
            passes: true,
            outcome: Outcome::Approved,
        },
        Case {
            name: "online last",
            rule: "CO-ORDER",
            mutate: |a, c| online_at(a, c, 14),
            passes: false,
            outcome: Outcome::Approved,
        },
    ]);
}

#[test]
fn ref_uscc_failed_check_warns_but_does_not_block() {
    run(&[Case {
        name: "institution code with a wrong check character",
        rule: "REF-USCC",
        mutate: |a, c| {
            a.institution = CreditCode::parse("52530102MJ1D4567X7").unwrap();
            c.institution.as_mut().unwrap().credit_code = a.institution.clone();
        },
        passes: false,
        outcome: Outcome::Approved,
    }]);
}

#[test]
fn ref_occ_unknown_occupation_or_level_blocks() {
    run(&[
        Case {
            name: "unknown occupation",
            rule: "REF-OCC",
            mutate: |a, _| a.occupation = Some(OccupationCode::parse("9-99-99-99").unwrap()),
            passes: false,
            outcome: Outcome::Rejected,
        },
        Case {
            name: "家政服务员 is not trained at level 1",
            rule: "REF-OCC",
            mutate: |a, _| {
                a.occupation = Some(OccupationCode::parse("4-10-01-06").unwrap());
                a.level = Some(SkillLevel::One);
            },
            passes: false,
            outcome: Outcome::Rejected,
        },
    ]);
}

#[test]
fn a_rejected_decision_names_every_failing_rule_with_figures() {
    let (mut app, mut ctx) = fixtures::valid_class(61);
    set_hours(&mut app, 96);
    ctx.trainers.clear();
    ctx.today = day("2022-06-10");
    let d = decide(&app, &ctx);
    assert_eq!(d.outcome, Outcome::Rejected);
    for rule in ["CO-HOURS", "CO-SIZE", "CO-TRAINER", "CO-LEAD", "CO-EQUIP"] {
        assert!(
            d.blocking_rules.iter().any(|r| r == rule),
            "{rule} in {:?}",
            d.blocking_rules
        );
    }
    let size = d.of("CO-SIZE").next().unwrap();
    assert_eq!(size.comparison.as_deref(), Some("trainees: 61 > 60"));
    let lead = d.of("CO-LEAD").next().unwrap();
    assert_eq!(lead.comparison.as_deref(), Some("working_days: 0 < 5"));
}

#[test]
fn an_approved_decision_with_warnings_lists_them() {
    let (mut app, ctx) = fixtures::valid_class(40);
    for s in &mut app.sessions {
        s.topics.retain(|t| *t != Topic::HivPrevention);
    }
    app.roster[1].mobile = app.roster[0].mobile.clone();
    let d = decide(&app, &ctx);
    assert_eq!(d.outcome, Outcome::Approved);
    assert_eq!(
        d.warning_rules,
        vec!["CO-TOPICS".to_string(), "CO-SHARED-PHONE".to_string()]
    );
}

#[test]
fn shape_errors_name_the_field() {
    let (mut app, _) = fixtures::valid_class(5);
    app.sessions[2].trainer = "nobody".into();
    app.sessions[3].date = day("2022-07-30");
    app.end_date = day("2022-06-01");
    let errs = app.check_shape().unwrap_err();
    let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
    assert!(fields.contains(&"sessions[2].trainer"), "{fields:?}");
    assert!(fields.contains(&"sessions[3].date"), "{fields:?}");
    assert!(fields.contains(&"end_date"), "{fields:?}");
}

/// What `normalize_site` stands for: whitespace out, every letter in Unicode lower case.
fn normalize_site_by_definition(site: &str) -> String {
    site.chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect()
}

#[test]
fn co_clash_site_normalisation_removes_whitespace_and_lowers_every_letter() {
    let cases = [
        ("ascii", "Room 3B, No.5 Road", "room3b,no.5road"),
        (
            "chinese with ideographic space",
            "昆明市\u{3000}五华区 教学楼A",
            "昆明市五华区教学楼a",
        ),
        ("full-width letters", "Ａ座 ３楼", "ａ座３楼"),
        ("greek and a dotted capital I", "ΣΑ İ", "σαi\u{307}"),
        ("tabs and newlines", "\tA\nB\r", "ab"),
        ("empty", "", ""),
    ];
    for (name, site, want) in cases {
        assert_eq!(normalize_site(site), want, "{name}");
        assert_eq!(
            normalize_site(site),
            normalize_site_by_definition(site),
            "{name}"
        );
    }
}

proptest::proptest! {
    #[test]
    fn co_clash_site_normalisation_agrees_with_its_definition_on_any_text(site in "\\PC{0,40}") {
        proptest::prop_assert_eq!(normalize_site(&site), normalize_site_by_definition(&site));
    }
}

/// The store stops reserving at the first record [`clashes`] is true of and
/// relies on [`evaluate`] then failing: the two must agree, on both sides of
/// each overlap (the other class's last session ends as this one's starts, or
/// an hour later; its last day is the day before this one's first, or the same).
#[test]
fn clashes_is_true_exactly_when_evaluate_fails_co_clash_or_co_roster_on_that_record() {
    let (app, base) = fixtures::valid_class(10);
    let first = &app.sessions[0];
    let site = normalize_site(first.site.as_deref().unwrap());
    let booking = |end: NaiveTime| Booking {
        class_id: "KM-2022-000009".into(),
        date: first.date,
        start: NaiveTime::from_hms_opt(6, 0, 0).unwrap(),
        end,
    };
    let enrolment = |end_date: NaiveDate| Enrolment {
        class_id: "KM-2022-000009".into(),
        start_date: day("2022-05-01"),
        end_date,
    };
    let touching = first.start;
    let overlapping = first.start + chrono::Duration::hours(1);
    for (end, clash) in [(touching, false), (overlapping, true)] {
        let held = vec![booking(end)];
        let mut ctx = base.clone();
        ctx.trainer_bookings
            .insert(first.trainer.clone(), held.clone());
        assert_eq!(clashes(&app, Held::Trainer(&first.trainer, &held)), clash);
        assert_eq!(
            decide(&app, &ctx).failed("CO-CLASH"),
            clash,
            "trainer, until {end}"
        );
        let mut ctx = base.clone();
        ctx.site_bookings.insert(site.clone(), held.clone());
        assert_eq!(clashes(&app, Held::Site(&site, &held)), clash);
        assert_eq!(
            decide(&app, &ctx).failed("CO-CLASH"),
            clash,
            "site, until {end}"
        );
        assert!(
            !clashes(&app, Held::Trainer("YN-T-0099", &held)),
            "a trainer this class does not name never clashes"
        );
    }
    for (end_date, clash) in [(day("2022-06-12"), false), (day("2022-06-13"), true)] {
        let held = vec![enrolment(end_date)];
        let mut ctx = base.clone();
        ctx.enrolments.insert(3, held.clone());
        assert_eq!(clashes(&app, Held::Enrolments(&held)), clash);
        assert_eq!(
            decide(&app, &ctx).failed("CO-ROSTER"),
            clash,
            "until {end_date}"
        );
    }
}

// --- issue 16 item 5: entrepreneurship projects, the kind that follows (CO-KIND) ---

fn kind_findings(d: &Decision) -> Vec<(String, String)> {
    d.of("CO-KIND")
        .filter(|f| !f.passed)
        .map(|f| (f.field.clone().unwrap(), f.comparison.clone().unwrap()))
        .collect()
}

#[test]
fn an_syb_and_a_network_entrepreneurship_class_naming_their_project_are_approved() {
    for project in ["syb", "online_business"] {
        let (app, ctx) = fixtures::valid_project_class(project, 30);
        let d = decide(&app, &ctx);
        assert_eq!(
            d.outcome,
            Outcome::Approved,
            "{project}: {:?}",
            d.blocking_rules
        );
        assert!(
            d.warning_rules.is_empty(),
            "{project}: {:?}",
            d.warning_rules
        );
        for rule in [
            "REF-OCC",
            "CO-KIND",
            "CO-HOURS",
            "CO-EQUIP",
            "CO-ASSESS",
            "CO-SIZE",
        ] {
            assert!(
                d.passed(rule),
                "{project} {rule}: {:?}",
                d.of(rule).collect::<Vec<_>>()
            );
        }
        let hours = d.of("CO-HOURS").next().unwrap();
        assert_eq!(
            hours.parameters,
            vec![format!("catalogue:project:{project}")]
        );
    }
}

#[test]
fn co_size_30_applies_to_every_entrepreneurship_class_30_passes_31_blocks() {
    for project in ["syb", "online_business"] {
        for (n, passes) in [(30, true), (31, false)] {
            let (app, ctx) = fixtures::valid_project_class(project, n);
            let d = decide(&app, &ctx);
            assert_eq!(d.passed("CO-SIZE"), passes, "{project} {n}");
            let f = d.of("CO-SIZE").next().unwrap();
            assert_eq!(
                f.comparison.as_deref(),
                Some(if passes {
                    "trainees: 30 ≤ 30"
                } else {
                    "trainees: 31 > 30"
                })
            );
            assert_eq!(
                f.parameters,
                vec!["co_max_class_size_entrepreneurship@2022-04-22".to_string()]
            );
        }
    }
    // Declared as skills training, an SYB class is still held to 30 (and CO-KIND blocks).
    let (mut app, ctx) = fixtures::valid_project_class("syb", 31);
    app.kind = TrainingKind::Skills;
    let d = decide(&app, &ctx);
    assert!(
        d.failed("CO-SIZE"),
        "the 60 of skills classes does not apply"
    );
    assert!(d.failed("CO-KIND"));
    // A skills class of 31 passes CO-SIZE.
    let (app, ctx) = fixtures::valid_class(31);
    assert!(decide(&app, &ctx).passed("CO-SIZE"));
}

#[test]
fn co_kind_a_declared_kind_or_certificate_that_contradicts_the_project_or_programme_blocks_showing_both()
 {
    type M = fn(&mut ClassApplication);
    type Base = fn() -> (ClassApplication, Context);
    /// A case: its name, the class it starts from, what it changes, and the
    /// CO-KIND failures expected as (field, comparison).
    type KindCase = (&'static str, Base, M, Vec<(&'static str, &'static str)>);
    let syb: Base = || fixtures::valid_project_class("syb", 20);
    let skills: Base = || fixtures::valid_class(20);
    let cases: Vec<KindCase> = vec![
        (
            "SYB declared as skills training",
            syb,
            |a| a.kind = TrainingKind::Skills,
            vec![("kind", "kind: skills ≠ entrepreneurship")],
        ),
        (
            "an occupation declared as entrepreneurship",
            skills,
            |a| a.kind = TrainingKind::Entrepreneurship,
            vec![("kind", "kind: entrepreneurship ≠ skills")],
        ),
        (
            "an occupation in 马兰花计划",
            skills,
            |a| {
                a.programme = Programme::Malanhua;
                a.kind = TrainingKind::Entrepreneurship;
            },
            vec![("project", "subject: 4-10-01-05 ≠ project")],
        ),
        (
            "SYB in 企业新型学徒制",
            syb,
            |a| a.programme = Programme::Apprenticeship,
            vec![(
                "programme",
                "programme: apprenticeship ∉ malanhua,graduate_skills",
            )],
        ),
        (
            "SYB leading to a 培训合格证书",
            syb,
            |a| a.certificate = Certificate::TrainingCompletion,
            vec![(
                "certificate",
                "certificate: training_completion ≠ entrepreneurship",
            )],
        ),
        (
            "an occupation leading to 创业培训合格证书",
            skills,
            |a| a.certificate = Certificate::Entrepreneurship,
            vec![(
                "certificate",
                "certificate: entrepreneurship ≠ a qualification, skill-level or completion certificate",
            )],
        ),
        (
            "an apprenticeship class declared as skills",
            skills,
            |a| a.programme = Programme::Apprenticeship,
            vec![("kind", "kind: skills ≠ apprenticeship")],
        ),
    ];
    for (name, base, mutate, want) in cases {
        let (mut app, ctx) = base();
        mutate(&mut app);
        let d = decide(&app, &ctx);
        assert_eq!(d.outcome, Outcome::Rejected, "{name}");
        assert!(d.blocking_rules.contains(&"CO-KIND".to_string()), "{name}");
        let want: Vec<(String, String)> = want
            .into_iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        assert_eq!(kind_findings(&d), want, "{name}");
    }
    // Each on its valid side: GRADUATE_SKILLS is an SYB programme too; an
    // apprenticeship declared as such.
    let (mut app, ctx) = syb();
    app.programme = Programme::GraduateSkills;
    assert!(decide(&app, &ctx).passed("CO-KIND"));
    let (mut app, ctx) = skills();
    app.programme = Programme::Apprenticeship;
    app.kind = TrainingKind::Apprenticeship;
    assert!(decide(&app, &ctx).passed("CO-KIND"));
}

#[test]
fn co_apprentice_applies_to_every_class_of_the_apprenticeship_programme_whatever_kind_is_declared()
{
    let (mut app, ctx) = fixtures::valid_class(20); // 15 days, level 5
    app.programme = Programme::Apprenticeship;
    app.kind = TrainingKind::Skills;
    let d = decide(&app, &ctx);
    let failed: Vec<_> = d
        .of("CO-APPRENTICE")
        .filter(|f| !f.passed)
        .map(|f| f.field.clone().unwrap())
        .collect();
    assert_eq!(
        failed,
        vec!["end_date", "level"],
        "duration and level both checked"
    );
    // Another programme: not an apprenticeship, whatever is declared.
    let (mut app, ctx) = fixtures::valid_class(20);
    app.kind = TrainingKind::Apprenticeship;
    let d = decide(&app, &ctx);
    assert!(d.passed("CO-APPRENTICE"));
    assert!(d.failed("CO-KIND"));
}

#[test]
fn co_hours_of_a_project_class_is_the_projects_minimum_80_passes_79_blocks() {
    let (app, ctx) = fixtures::valid_project_class("syb", 20);
    assert_eq!(app.scheduled_hours(), 80);
    assert!(decide(&app, &ctx).passed("CO-HOURS"));
    let (mut app, ctx) = fixtures::valid_project_class("syb", 20);
    app.sessions[9].class_hours = 7;
    let d = decide(&app, &ctx);
    let f = d.of("CO-HOURS").next().unwrap();
    assert_eq!(f.comparison.as_deref(), Some("class_hours: 79 < 80"));
    assert_eq!(d.blocking_rules, vec!["CO-HOURS".to_string()]);
}

#[test]
fn ref_occ_an_unknown_project_or_a_level_on_a_project_blocks() {
    let (mut app, ctx) = fixtures::valid_project_class("syb", 20);
    app.project = Some("gyb".into());
    let d = decide(&app, &ctx);
    let f = d.of("REF-OCC").next().unwrap();
    assert_eq!((f.passed, f.field.as_deref()), (false, Some("project")));
    let (mut app, ctx) = fixtures::valid_project_class("syb", 20);
    app.level = Some(SkillLevel::Five);
    let f = decide(&app, &ctx).of("REF-OCC").next().unwrap().clone();
    assert_eq!((f.passed, f.field.as_deref()), (false, Some("level")));
}

#[test]
fn an_application_names_an_occupation_or_a_project_never_both_nor_neither() {
    let (mut app, _) = fixtures::valid_project_class("syb", 5);
    app.project = None;
    let e = app.check_shape().unwrap_err();
    assert_eq!(e[0].field, "occupation");
    let (mut app, _) = fixtures::valid_project_class("syb", 5);
    app.occupation = Some(OccupationCode::parse("4-10-01-05").unwrap());
    assert_eq!(app.check_shape().unwrap_err()[0].field, "project");
    let (mut app, _) = fixtures::valid_project_class("syb", 5);
    app.project = Some("SYB!".into());
    assert_eq!(app.check_shape().unwrap_err()[0].field, "project");
    // An application written before projects existed (an occupation, no project) still reads.
    let (app, _) = fixtures::valid_class(5);
    let mut json = serde_json::to_value(&app).unwrap();
    json.as_object_mut().unwrap().remove("project");
    let back: ClassApplication = serde_json::from_value(json).unwrap();
    assert_eq!(back, app);
}

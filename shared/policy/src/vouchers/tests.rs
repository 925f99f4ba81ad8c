//! Tests of the VO-* rules, each on both sides of its boundary, and of voucher codes.

use super::*;
use crate::decision::Outcome;

fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn occ(code: &str) -> OccupationCode {
    OccupationCode::parse(code).unwrap()
}

fn key(level: u8) -> SubsidyKey {
    SubsidyKey::Level(occ("4-10-01-05"), SkillLevel::parse(level).unwrap())
}

fn held(n: usize, key: SubsidyKey, issued_on: &str, state: VoucherState) -> Held {
    let issued_on = day(issued_on);
    Held {
        code: format!("CODE{n}"),
        class_id: format!("KM-2022-{n:06}"),
        key,
        issued_on,
        first_day: None,
        last_valid_day: last_valid_day(issued_on, Parameters::shipped()),
        state,
    }
}

/// A training held for a class whose first day is `first_day`.
fn held_in_class(n: usize, issued_on: &str, first_day: &str) -> Held {
    Held {
        first_day: Some(day(first_day)),
        ..held(n, other_occupation(n), issued_on, VoucherState::Settled)
    }
}

fn facts<'a>(held: &'a [Held], key: SubsidyKey) -> IssueFacts<'a> {
    IssueFacts {
        class_id: "KM-2022-000100",
        class_approved: true,
        subsidised_kind: true,
        on_roster: true,
        roster_line: 3,
        key,
        group: TargetGroup::FlexibleEmployment,
        card_active: Some(true),
        held,
        today: day("2022-09-01"),
        first_day: day("2022-09-10"),
    }
}

fn decide(f: &IssueFacts<'_>) -> IssueDecision {
    decide_issue(f, Parameters::shipped(), Subsidies::shipped())
}

fn other_occupation(n: usize) -> SubsidyKey {
    let codes = ["4-10-01-06", "4-10-01-02", "4-03-02-01", "6-31-01-03"];
    SubsidyKey::Level(occ(codes[n % codes.len()]), SkillLevel::Five)
}

#[test]
fn a_clean_trainee_is_approved_with_every_rule_checked() {
    let d = decide(&facts(&[], key(5)));
    assert_eq!(d.decision.outcome, Outcome::Approved, "{:?}", d.decision);
    for r in rules::ISSUE {
        assert!(d.decision.passed(r.id), "{} passed", r.id);
    }
    assert_eq!(d.amount.unwrap().fen, 140_000);
    assert_eq!(d.last_valid_day, day("2022-11-30"), "VO-VALID three months");
}

#[test]
fn vo_year_third_training_in_a_year_passes_and_fourth_is_refused() {
    let two: Vec<Held> = (0..2)
        .map(|n| held(n, other_occupation(n), "2022-05-01", VoucherState::Settled))
        .collect();
    let d = decide(&facts(&two, key(5)));
    assert!(d.decision.passed("VO-YEAR"), "VO-YEAR: third is allowed");
    let c = d.decision.of("VO-YEAR").next().unwrap();
    assert_eq!(c.comparison.as_deref(), Some("trainings_in_year: 3 ≤ 3"));
    assert_eq!(c.parameters, vec!["vo_max_per_year@2022-04-22".to_string()]);

    let three: Vec<Held> = (0..3)
        .map(|n| held(n, other_occupation(n), "2022-05-01", VoucherState::Settled))
        .collect();
    let d = decide(&facts(&three, key(5)));
    assert!(d.decision.failed("VO-YEAR"), "VO-YEAR: fourth is refused");
    assert_eq!(d.decision.outcome, Outcome::Rejected);
    assert_eq!(d.decision.blocking_rules, vec!["VO-YEAR".to_string()]);
    assert_eq!(
        d.decision
            .of("VO-YEAR")
            .next()
            .unwrap()
            .comparison
            .as_deref(),
        Some("trainings_in_year: 4 > 3")
    );
}

#[test]
fn vo_year_counts_only_the_calendar_year_and_live_or_settled_vouchers() {
    let mut list: Vec<Held> = (0..3)
        .map(|n| held(n, other_occupation(n), "2021-12-31", VoucherState::Settled))
        .collect();
    assert!(
        decide(&facts(&list, key(5))).decision.passed("VO-YEAR"),
        "VO-YEAR: last year's trainings do not count"
    );
    list = (0..3)
        .map(|n| held(n, other_occupation(n), "2022-05-01", VoucherState::Revoked))
        .collect();
    assert!(
        decide(&facts(&list, key(5))).decision.passed("VO-YEAR"),
        "VO-YEAR: revoked vouchers do not count"
    );
    // Issued on 2022-05-01, last valid day 2022-07-31: expired by 2022-09-01 without a sweep.
    list = (0..3)
        .map(|n| held(n, other_occupation(n), "2022-05-01", VoucherState::Issued))
        .collect();
    assert!(
        decide(&facts(&list, key(5))).decision.passed("VO-YEAR"),
        "VO-YEAR: vouchers expired on read do not count"
    );
}

#[test]
fn vo_year_a_class_starting_in_january_issued_in_december_counts_in_the_year_it_starts() {
    // Three trainings whose classes started in 2022.
    let three: Vec<Held> = (0..3)
        .map(|n| held_in_class(n, "2022-03-01", "2022-03-10"))
        .collect();
    let december = |first_day: &str| IssueFacts {
        today: day("2022-12-20"),
        first_day: day(first_day),
        ..facts(&three, key(5))
    };
    let d = decide(&december("2023-01-05"));
    assert!(
        d.decision.passed("VO-YEAR"),
        "VO-YEAR: a class starting 2023-01-05 issued on 2022-12-20 is the first training of 2023: {:?}",
        d.decision
    );
    let c = d.decision.of("VO-YEAR").next().unwrap();
    assert_eq!(c.comparison.as_deref(), Some("trainings_in_year: 1 ≤ 3"));
    assert!(c.message_en.contains("2023"), "{}", c.message_en);
    assert!(c.message_en.contains("first day"), "{}", c.message_en);

    let d = decide(&december("2022-12-31"));
    assert!(
        d.decision.failed("VO-YEAR"),
        "VO-YEAR: a class starting 2022-12-31 is the fourth training of 2022"
    );
    let c = d.decision.of("VO-YEAR").next().unwrap();
    assert_eq!(c.comparison.as_deref(), Some("trainings_in_year: 4 > 3"));
    assert!(
        c.message_en.contains("2022") && c.message_en.contains("first day"),
        "VO-YEAR's message says trainings count by the class's first day: {}",
        c.message_en
    );
}

#[test]
fn vo_year_an_earlier_voucher_counts_in_the_year_its_class_started_not_the_year_it_was_issued() {
    // Three vouchers issued in December 2022 for classes starting in January 2023.
    let three: Vec<Held> = (0..3)
        .map(|n| held_in_class(n, "2022-12-20", "2023-01-05"))
        .collect();
    let d = decide(&IssueFacts {
        today: day("2022-12-21"),
        first_day: day("2022-12-31"),
        ..facts(&three, key(5))
    });
    assert!(
        d.decision.passed("VO-YEAR"),
        "VO-YEAR: 2023's trainings do not count against a class starting 2022-12-31"
    );
    let d = decide(&IssueFacts {
        today: day("2022-12-21"),
        first_day: day("2023-01-01"),
        ..facts(&three, key(5))
    });
    assert!(
        d.decision.failed("VO-YEAR"),
        "VO-YEAR: a class starting 2023-01-01 is the fourth training of 2023"
    );
}

#[test]
fn vo_year_a_ledger_entry_without_a_first_day_counts_by_its_issue_date() {
    // As stored before first days were kept: no `first_day` member.
    let mut old = serde_json::to_value(held_in_class(1, "2022-12-20", "2023-01-05")).unwrap();
    assert!(old.as_object_mut().unwrap().remove("first_day").is_some());
    let mut h: Held = serde_json::from_value(old).unwrap();
    assert_eq!(h.first_day, None);
    assert_eq!(
        h.training_day(),
        day("2022-12-20"),
        "falls back to the issue date"
    );
    let mut three = vec![h.clone()];
    three.extend((2..4).map(|n| held_in_class(n, "2022-03-01", "2022-03-10")));
    let d = decide(&IssueFacts {
        today: day("2022-12-21"),
        first_day: day("2022-12-31"),
        ..facts(&three, key(5))
    });
    assert!(
        d.decision.failed("VO-YEAR"),
        "VO-YEAR: the old entry counts in 2022, its issue year"
    );
    h.first_day = Some(day("2023-01-05"));
    three[0] = h;
    let d = decide(&IssueFacts {
        today: day("2022-12-21"),
        first_day: day("2022-12-31"),
        ..facts(&three, key(5))
    });
    assert!(
        d.decision.passed("VO-YEAR"),
        "VO-YEAR: with its first day recorded, it counts in 2023"
    );
}

#[test]
fn vo_issue_lease_is_the_dated_parameter_in_seconds() {
    let lease = issue_lease(day("2022-09-01"), Parameters::shipped());
    assert_eq!(lease, chrono::Duration::seconds(30), "VO-ISSUE-LEASE");
    assert!(
        Parameters::shipped()
            .at_or_first(names::VO_ISSUE_LEASE_SECONDS, day("2022-09-01"))
            .reference
            .contains("[open]")
    );
}

#[test]
fn vo_same_same_occupation_same_level_is_refused_and_another_level_up_passes() {
    let h = [held(1, key(5), "2022-05-01", VoucherState::Settled)];
    let d = decide(&facts(&h, key(5)));
    assert!(d.decision.failed("VO-SAME"), "VO-SAME same level");
    assert_eq!(d.decision.outcome, Outcome::Rejected);
    let d = decide(&facts(&h, key(4)));
    assert!(d.decision.passed("VO-SAME"), "VO-SAME next level up passes");
    assert_eq!(d.decision.outcome, Outcome::Approved);
}

#[test]
fn vo_same_higher_level_held_lower_level_asked_is_refused() {
    let h = [held(1, key(4), "2021-05-01", VoucherState::Settled)];
    let d = decide(&facts(&h, key(5)));
    assert!(
        d.decision.failed("VO-SAME"),
        "VO-SAME: 四级 held, 五级 asked"
    );
    let f = d.decision.of("VO-SAME").next().unwrap();
    assert_eq!(
        f.comparison.as_deref(),
        Some("held: 4-10-01-05/4 above 4-10-01-05/5")
    );
    let h = [held(1, key(5), "2021-05-01", VoucherState::Settled)];
    assert!(
        decide(&facts(&h, key(4))).decision.passed("VO-SAME"),
        "VO-SAME: 五级 held, 四级 asked passes"
    );
    let h = [held(1, key(4), "2021-05-01", VoucherState::Revoked)];
    assert!(
        decide(&facts(&h, key(5))).decision.passed("VO-SAME"),
        "VO-SAME: a revoked higher level does not count"
    );
}

#[test]
fn vo_class_refuses_off_roster_unapproved_and_unsubsidised() {
    let mut f = facts(&[], key(5));
    f.on_roster = false;
    assert!(decide(&f).decision.failed("VO-CLASS"), "VO-CLASS roster");
    let mut f = facts(&[], key(5));
    f.class_approved = false;
    assert!(decide(&f).decision.failed("VO-CLASS"), "VO-CLASS approval");
    let mut f = facts(&[], key(5));
    f.subsidised_kind = false;
    assert!(decide(&f).decision.failed("VO-CLASS"), "VO-CLASS kind");
    assert!(decide(&facts(&[], key(5))).decision.passed("VO-CLASS"));
}

#[test]
fn vo_card_needs_an_activated_card() {
    for (card, passes) in [(Some(true), true), (Some(false), false), (None, false)] {
        let mut f = facts(&[], key(5));
        f.card_active = card;
        assert_eq!(
            decide(&f).decision.passed("VO-CARD"),
            passes,
            "VO-CARD {card:?}"
        );
    }
}

#[test]
fn vo_amount_adds_the_group_uplift_and_records_one_fund() {
    let mut f = facts(&[], key(5));
    f.group = TargetGroup::PovertyAlleviated;
    let a = decide(&f).amount.unwrap();
    assert_eq!(
        (a.fen, a.base_fen, a.uplift_fen),
        (160_000, 140_000, 20_000),
        "VO-AMOUNT uplift"
    );
    assert_eq!(a.fund, FundSource::EmploymentSubsidy);
    assert_eq!(a.basis, "4-10-01-05/5@2022-04-22");
    f.group = TargetGroup::EnterpriseEmployee;
    let a = decide(&f).amount.unwrap();
    assert_eq!(
        (a.fen, a.fund),
        (140_000, FundSource::SkillsActionBalance),
        "VO-AMOUNT group fund"
    );
}

#[test]
fn vo_amount_without_a_catalogue_entry_blocks() {
    let f = facts(&[], SubsidyKey::Level(occ("4-10-01-05"), SkillLevel::One));
    let d = decide(&f);
    assert!(d.decision.failed("VO-AMOUNT") && d.amount.is_none());
    let before = Subsidies::shipped().at(&key(5), day("2022-04-21"));
    assert!(before.is_none(), "VO-AMOUNT: nothing before the plan date");
}

#[test]
fn vo_amount_a_later_dated_entry_applies_from_its_date() {
    let text = format!(
        "{}\n[[subsidy]]\noccupation = \"4-10-01-05\"\nlevel = 5\nsince = \"2023-01-01\"\namount_fen = 150000\nfund = \"fiscal\"\nreference = \"test\"\n",
        SHIPPED_SUBSIDIES
    );
    let s = Subsidies::from_toml(&text).unwrap();
    let g = TargetGroup::FlexibleEmployment;
    assert_eq!(
        amount(&s, &key(5), g, day("2022-12-31")).1.unwrap().fen,
        140_000
    );
    let a = amount(&s, &key(5), g, day("2023-01-01")).1.unwrap();
    assert_eq!((a.fen, a.fund), (150_000, FundSource::Fiscal));
}

#[test]
fn vo_valid_redeem_on_the_last_valid_day_passes_and_the_day_after_is_refused() {
    let issued = day("2022-06-15");
    let last = last_valid_day(issued, Parameters::shipped());
    assert_eq!(last, day("2022-09-14"), "VO-VALID");
    assert_eq!(
        redeem(VoucherState::Issued, last, last),
        Ok(VoucherState::Redeemed),
        "VO-VALID last day"
    );
    let after = last.succ_opt().unwrap();
    assert_eq!(
        redeem(VoucherState::Issued, last, after),
        Err(FlowError::Expired {
            last_valid_day: last
        }),
        "VO-VALID day after"
    );
    assert_eq!(
        effective_state(VoucherState::Issued, last, last),
        VoucherState::Issued
    );
    assert_eq!(
        effective_state(VoucherState::Issued, last, after),
        VoucherState::Expired
    );
    assert_eq!(
        effective_state(VoucherState::Redeemed, last, after),
        VoucherState::Redeemed,
        "VO-VALID: a redeemed voucher does not expire"
    );
    // Month ends: 2022-11-30 + 3 months = 2023-02-28.
    assert_eq!(
        last_valid_day(day("2022-11-30"), Parameters::shipped()),
        day("2023-02-27")
    );
}

#[test]
fn vo_flow_allows_only_the_documented_moves() {
    use Action::*;
    use VoucherState::*;
    let states = [Issued, Redeemed, Settled, Revoked, Expired];
    let actions = [Redeem, Settle, Revoke, Expire];
    let allowed = [
        (Issued, Redeem, Redeemed),
        (Redeemed, Settle, Settled),
        (Issued, Revoke, Revoked),
        (Redeemed, Revoke, Revoked),
        (Issued, Expire, Expired),
    ];
    for s in states {
        for a in actions {
            let want = allowed
                .iter()
                .find(|(fs, fa, _)| *fs == s && *fa == a)
                .map(|t| t.2);
            match want {
                Some(next) => assert_eq!(transition(s, a), Ok(next), "VO-FLOW {s:?} {a:?}"),
                None => {
                    let e = transition(s, a).unwrap_err();
                    assert_eq!(e.rule(), "VO-FLOW", "{s:?} {a:?}");
                    assert_eq!(
                        e,
                        FlowError::IllegalMove {
                            state: s,
                            action: a
                        }
                    );
                }
            }
        }
    }
}

#[test]
fn codes_round_trip_through_grouping_lower_case_and_qr() {
    let code = VoucherCode::from_random(&[0xA5; 12]);
    assert_eq!(code.as_str().len(), 20);
    let g = code.grouped();
    assert_eq!(g.len(), 24);
    assert_eq!(g.matches('-').count(), 4);
    assert!(code.as_str().bytes().all(|b| ALPHABET.contains(&b)));
    assert!(!code.as_str().contains(['0', 'O', '1', 'I']));
    assert_eq!(VoucherCode::parse(&g).unwrap(), code);
    assert_eq!(VoucherCode::parse(g.to_lowercase()).unwrap(), code);
    assert_eq!(VoucherCode::parse(code.qr_payload()).unwrap(), code);
    assert!(code.qr_payload().starts_with("KMVT1:"));
}

#[test]
fn codes_use_95_random_bits() {
    // Flipping any of the 95 used bits changes the code.
    let base = [0u8; 12];
    let c0 = VoucherCode::from_random(&base);
    let mut distinct = 0;
    for bit in 0..96 {
        let mut b = base;
        b[bit / 8] ^= 0x80 >> (bit % 8);
        if VoucherCode::from_random(&b) != c0 {
            distinct += 1;
        }
    }
    assert_eq!(distinct, 95);
    const { assert!(RANDOM_SYMBOLS * 5 >= 80) };
}

#[test]
fn a_single_mistyped_character_or_adjacent_swap_is_caught_by_the_check() {
    let code = VoucherCode::from_random(&[0x3C, 0x91, 7, 200, 13, 99, 1, 2, 3, 4, 5, 6]);
    let s = code.as_str().as_bytes().to_vec();
    for i in 0..s.len() {
        for &c in ALPHABET.iter() {
            if c == s[i] {
                continue;
            }
            let mut t = s.clone();
            t[i] = c;
            assert_eq!(
                VoucherCode::parse(String::from_utf8(t).unwrap()),
                Err(CodeError::CheckCharacter),
                "substitution at {i}"
            );
        }
    }
    let mut caught = 0;
    let mut swaps = 0;
    for i in 0..s.len() - 1 {
        if s[i] == s[i + 1] {
            continue;
        }
        swaps += 1;
        let mut t = s.clone();
        t.swap(i, i + 1);
        if VoucherCode::parse(String::from_utf8(t).unwrap()).is_err() {
            caught += 1;
        }
    }
    assert!(caught * 10 >= swaps * 9, "{caught} of {swaps} swaps caught");
}

#[test]
fn malformed_codes_say_why_without_repeating_the_input() {
    assert_eq!(
        VoucherCode::parse("ABCD"),
        Err(CodeError::Length {
            expected: 20,
            actual: 4
        })
    );
    let code = VoucherCode::from_random(&[9; 12]);
    let with_zero = format!("0{}", &code.as_str()[1..]);
    assert_eq!(
        VoucherCode::parse(&with_zero),
        Err(CodeError::Character { position: 1 })
    );
    let msg = CodeError::Character { position: 1 }.to_string();
    assert!(!msg.contains(code.as_str()));
}

#[test]
fn the_shipped_subsidy_catalogue_prices_every_catalogue_level_it_names() {
    let s = Subsidies::shipped();
    assert!(s.subsidy.len() >= 10);
    for e in &s.subsidy {
        assert!(!e.reference.is_empty());
        if let (Some(o), Some(l)) = (&e.occupation, e.level) {
            let occ = crate::Catalogue::shipped()
                .occupation(o)
                .unwrap_or_else(|| panic!("{o} in REF-OCC"));
            assert!(occ.trains(l), "{o} level {}", l.number());
        }
    }
}

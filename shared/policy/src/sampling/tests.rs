//! Tests of the sampler (public vectors, consistency, order independence) and
//! of the SC-* figures, each table case on one side of a boundary.

use super::*;
use crate::params::DatedValue;
use proptest::prelude::*;

fn day() -> NaiveDate {
    "2022-06-20".parse().unwrap()
}

fn ids(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn sc_draw_the_ticket_of_ab_130_matches_the_public_test_vector() {
    let t = ticket(&seed_hash("01382438112797316654"), "AB-130");
    assert!(
        t.starts_with(
            "0.26299714122838008416507544297546663599715395525154425586041245287750224561854"
        ),
        "{t}"
    );
}

#[test]
fn sc_draw_four_ids_with_seed_314159_come_out_in_the_public_order() {
    let drawn = sample("314159", &ids(&["ab-1", "ab-2", "cd-1", "ef-3"]), 4);
    let order: Vec<&str> = drawn.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(order, ["cd-1", "ef-3", "ab-1", "ab-2"]);
    assert!(drawn[0].ticket.starts_with("0.317685817"), "{:?}", drawn[0]);
    assert!(drawn[1].ticket.starts_with("0.832984519"), "{:?}", drawn[1]);
}

#[test]
fn decimal_conversion_pads_small_numbers_to_64_digits_and_writes_big_ones_whole() {
    assert_eq!(Big::from_u64(0).to_decimal(), "0");
    assert_eq!(Big::from_u64(1_000_000_000).to_decimal(), "1000000000");
    assert_eq!(
        Big::from_u64(u64::MAX).to_decimal(),
        u64::MAX.to_string(),
        "crosses a limb"
    );
    let max = Big::from_be_bytes(&[0xff; 32]);
    assert_eq!(
        max.to_decimal(),
        "115792089237316195423570985008687907853269984665640564039457584007913129639935"
    );
    // A hash that is a small number still gives 64 digits after "0.".
    let small = format!("{:0>64}", Big::from_be_bytes(&[0, 0, 7]).to_decimal());
    assert_eq!(small.len(), 64);
    assert!(small.ends_with('7'));
}

#[test]
fn tickets_compare_as_decimal_fractions() {
    assert_eq!(compare_tickets("0.5", "0.50"), Ordering::Equal);
    assert_eq!(compare_tickets("0.12", "0.2"), Ordering::Less);
    assert_eq!(compare_tickets("0.9", "0.10"), Ordering::Greater);
}

#[test]
fn sample_ids_name_the_class_and_the_one_based_roster_line() {
    assert_eq!(sample_id("KM-2022-000123", 16), "KM-2022-000123:017");
    assert_eq!(
        roster_line("KM-2022-000123", "KM-2022-000123:017"),
        Some(16)
    );
    assert_eq!(roster_line("KM-2022-000123", "KM-2022-000124:017"), None);
    assert_eq!(roster_line("KM-2022-000123", "KM-2022-000123:000"), None);
    assert_eq!(population("KM-2022-000001", 3).len(), 3);
}

#[test]
fn the_population_digest_ignores_order_and_sees_a_changed_id() {
    let a = ids(&["x:001", "x:002", "x:003"]);
    let b = ids(&["x:003", "x:001", "x:002"]);
    assert_eq!(population_digest(&a), population_digest(&b));
    let c = ids(&["x:001", "x:002", "x:004"]);
    assert_ne!(population_digest(&a), population_digest(&c));
    assert_eq!(population_digest(&a).len(), 64);
}

struct SizeCase {
    rule: &'static str,
    roster: usize,
    raised: bool,
    n: usize,
    decided_by: &'static str,
}

fn check_sizes(params: &Parameters, cases: &[SizeCase]) {
    for c in cases {
        let s = sample_size(params, day(), c.roster, c.raised);
        assert_eq!(
            (s.n, s.rule.as_str()),
            (c.n, c.decided_by),
            "[{}] roster {} raised {}: {}",
            c.rule,
            c.roster,
            c.raised,
            s.comparison
        );
        assert!(s.n > 0 || c.roster == 0, "[SC-SIZE] never zero");
    }
}

#[test]
fn sc_size_minimum_rate_raised_rate_and_whole_roster_on_both_sides_of_each_boundary() {
    let p = Parameters::shipped();
    check_sizes(
        p,
        &[
            // Whole roster when smaller than the minimum of 3.
            SizeCase {
                rule: "SC-SIZE",
                roster: 1,
                raised: false,
                n: 1,
                decided_by: "SC-SIZE",
            },
            SizeCase {
                rule: "SC-SIZE",
                roster: 2,
                raised: false,
                n: 2,
                decided_by: "SC-SIZE",
            },
            SizeCase {
                rule: "SC-SIZE",
                roster: 3,
                raised: false,
                n: 3,
                decided_by: "SC-SIZE",
            },
            SizeCase {
                rule: "SC-SIZE",
                roster: 4,
                raised: false,
                n: 3,
                decided_by: "SC-SIZE",
            },
            // The minimum holds up to 30 trainees; from 31 the 10 % rate (rounded up) is larger.
            SizeCase {
                rule: "SC-SIZE",
                roster: 30,
                raised: false,
                n: 3,
                decided_by: "SC-SIZE",
            },
            SizeCase {
                rule: "SC-SIZE",
                roster: 31,
                raised: false,
                n: 4,
                decided_by: "SC-SIZE",
            },
            SizeCase {
                rule: "SC-SIZE",
                roster: 40,
                raised: false,
                n: 4,
                decided_by: "SC-SIZE",
            },
            SizeCase {
                rule: "SC-SIZE",
                roster: 41,
                raised: false,
                n: 5,
                decided_by: "SC-SIZE",
            },
            SizeCase {
                rule: "SC-SIZE",
                roster: 60,
                raised: false,
                n: 6,
                decided_by: "SC-SIZE",
            },
            // Raised rate of 30 %: the minimum holds up to 10, the rate from 11.
            SizeCase {
                rule: "SC-SIZE",
                roster: 10,
                raised: true,
                n: 3,
                decided_by: "SC-SIZE",
            },
            SizeCase {
                rule: "SC-SIZE",
                roster: 11,
                raised: true,
                n: 4,
                decided_by: "SC-SIZE",
            },
            SizeCase {
                rule: "SC-SIZE",
                roster: 40,
                raised: true,
                n: 12,
                decided_by: "SC-SIZE",
            },
            SizeCase {
                rule: "SC-SIZE",
                roster: 2,
                raised: true,
                n: 2,
                decided_by: "SC-SIZE",
            },
        ],
    );
}

#[test]
fn sc_size_is_never_zero_even_with_a_minimum_and_rate_of_zero() {
    let since = "2023-01-01".parse().unwrap();
    let zero = |name: &str, p: Parameters| {
        p.with_value(
            name,
            DatedValue {
                since,
                value: 0,
                reference: "test".into(),
            },
        )
    };
    let p = zero(
        names::SC_RATE_PERCENT,
        zero(names::SC_MIN_SAMPLE, Parameters::shipped().clone()),
    );
    let s = sample_size(&p, since, 40, false);
    assert_eq!(s.n, 1, "[SC-SIZE] {}", s.comparison);
    assert_eq!(
        sample_size(&p, since, 0, false).n,
        0,
        "no trainees, nothing to call"
    );
}

#[test]
fn sc_detect_forty_trainees_with_four_ghosts_and_four_calls_catch_one_with_probability_0_36() {
    let p = detection_probability(40, 4, 4);
    assert!((p - 0.3555).abs() < 0.001, "{p}");
}

#[test]
fn sc_detect_seventeen_calls_are_the_fewest_that_reach_90_percent_for_forty_with_four_ghosts() {
    assert_eq!(detect_size(40, 4, 90), Some(17));
    assert!(detection_probability(40, 4, 16) < 0.90);
    assert!(detection_probability(40, 4, 17) >= 0.90);
}

#[test]
fn sc_detect_edges_no_ghost_means_no_figure_and_a_certain_target_needs_all_but_the_ghosts_minus_one()
 {
    assert_eq!(detect_size(40, 0, 90), None);
    assert_eq!(
        detect_size(40, 4, 100),
        Some(37),
        "36 good trainees, then a ghost for sure"
    );
    assert_eq!(detect_size(40, 40, 90), Some(1));
    assert_eq!(detect_size(40, 4, 0), Some(0));
}

#[test]
fn sc_detect_when_switched_on_raises_the_size_above_sc_size_and_cites_its_parameters() {
    let since = "2023-01-01".parse().unwrap();
    let p = Parameters::shipped().clone().with_value(
        names::SC_DETECT_TARGET_PERCENT,
        DatedValue {
            since,
            value: 90,
            reference: "test".into(),
        },
    );
    // Before the change the rule is off.
    assert_eq!(sample_size(&p, day(), 40, false).rule, "SC-SIZE");
    let s = sample_size(&p, since, 40, false);
    assert_eq!(
        (s.n, s.rule.as_str()),
        (17, "SC-DETECT"),
        "{}",
        s.comparison
    );
    assert!(
        s.parameters
            .contains(&"sc_detect_target_percent@2023-01-01".to_string())
    );
    // Raised to 30 % of 60 = 18, SC-DETECT still wants 19 (d = 6).
    let big = sample_size(&p, since, 60, true);
    assert_eq!(
        (big.n, big.rule.as_str()),
        (19, "SC-DETECT"),
        "{}",
        big.comparison
    );
    // Three trainees, d = 1: 90 % needs all three, which SC-SIZE already calls.
    let small = sample_size(&p, since, 3, false);
    assert_eq!(
        (small.n, small.rule.as_str()),
        (3, "SC-SIZE"),
        "{}",
        small.comparison
    );
}

#[test]
fn sc_call_a_trainee_is_unreachable_only_after_the_third_unanswered_attempt() {
    let limit = Parameters::shipped()
        .at(names::SC_CALL_ATTEMPTS, day())
        .unwrap()
        .value;
    assert_eq!(limit, 3);
    assert_eq!(state_after(1, false, limit), TaskState::Pending);
    assert_eq!(state_after(2, false, limit), TaskState::Pending);
    assert_eq!(state_after(3, false, limit), TaskState::Unreachable);
    assert_eq!(state_after(3, true, limit), TaskState::Completed);
    assert_eq!(state_after(1, true, limit), TaskState::Completed);
}

#[test]
fn sc_deny_a_denial_or_a_fee_makes_a_finding_and_an_unanswered_call_does_not() {
    assert_eq!(
        denial(true, Some(false), false),
        Some(Denial::DeniedAttendance)
    );
    assert_eq!(
        denial(true, Some(false), true),
        Some(Denial::DeniedAttendance)
    );
    assert_eq!(denial(true, Some(true), true), Some(Denial::AskedToPay));
    assert_eq!(denial(true, Some(true), false), None);
    assert_eq!(denial(true, None, false), None);
    assert_eq!(denial(false, Some(false), true), None);
}

#[test]
fn sc_unreach_a_second_sample_needs_strictly_more_than_half_unreachable() {
    assert!(!needs_second_sample(4, 2, 50), "half is not more than half");
    assert!(needs_second_sample(4, 3, 50));
    assert!(!needs_second_sample(3, 1, 50));
    assert!(needs_second_sample(3, 2, 50));
    assert!(!needs_second_sample(0, 0, 50));
}

#[test]
fn sc_repeat_findings_in_two_classes_propose_the_institution_and_one_does_not() {
    let limit = Parameters::shipped()
        .at(names::SC_REPEAT_CLASSES, day())
        .unwrap()
        .value;
    assert!(!propose_blacklist(1, limit));
    assert!(propose_blacklist(2, limit));
    assert!(
        !propose_blacklist(5, 0),
        "a limit of 0 switches the rule off"
    );
}

#[test]
fn assignment_is_round_robin_and_counts_differ_by_at_most_one() {
    let inspectors = ids(&["a", "b", "c"]);
    let mut counts = [0usize; 3];
    for i in 0..100u64 {
        let who = assign(i, &inspectors).unwrap();
        counts[inspectors.iter().position(|x| x == who).unwrap()] += 1;
    }
    assert!(counts.iter().max().unwrap() - counts.iter().min().unwrap() <= 1);
    assert_eq!(assign(0, &[]), None);
}

/// A run published whole: committed bytes revealed, the seed fixed with a public value.
fn published(public_value: &str, classes: &[(&str, usize, usize, usize)]) -> PublishedRun {
    let bytes = [42u8; protocol::COMMITTED_BYTES];
    let seed = protocol::run_seed(&bytes, Some(public_value));
    PublishedRun {
        run: "2022-06-20".into(),
        commitment: protocol::commitment(&bytes),
        revealed: Some(protocol::hex(&bytes)),
        public_value: Some(public_value.into()),
        seed: Some(seed.clone()),
        algorithm: ALGORITHM.into(),
        algorithm_version: ALGORITHM_VERSION.into(),
        classes: classes
            .iter()
            .map(|(id, roster, n, second)| {
                let pop = population(id, *roster);
                let class_seed = protocol::class_seed(&seed, id);
                let all = order(&class_seed, &pop);
                PublishedClass {
                    class_id: id.to_string(),
                    class_seed,
                    population_digest: population_digest(&pop),
                    population: pop,
                    sample_size: *n,
                    sample: all[..*n].to_vec(),
                    second_sample: all[*n..*n + *second].to_vec(),
                }
            })
            .collect(),
    }
}

#[test]
fn verify_agrees_with_a_correct_run_and_names_the_class_whose_population_changed() {
    let run = published(
        "314159",
        &[("KM-2022-000001", 40, 4, 0), ("KM-2022-000002", 12, 3, 3)],
    );
    assert_eq!(verify(&run), vec![]);
    let mut bad = run.clone();
    bad.classes[1].population[5] = "KM-2022-000002:099".into();
    let found = verify(&bad);
    assert!(
        found.contains(&Mismatch::Digest {
            class_id: "KM-2022-000002".into()
        }),
        "{found:?}"
    );
    let mut swapped = run.clone();
    swapped.classes[0].sample[0].id = "KM-2022-000001:040".into();
    assert!(verify(&swapped).contains(&Mismatch::Sample {
        class_id: "KM-2022-000001".into()
    }));
    let mut other_seed = run.clone();
    other_seed.seed = Some("271828".into());
    assert!(verify(&other_seed).contains(&Mismatch::RunSeed));
    assert!(verify(&other_seed).contains(&Mismatch::ClassSeed {
        class_id: "KM-2022-000001".into()
    }));
    let mut other_value = run.clone();
    other_value.public_value = Some("314160".into());
    assert_eq!(verify(&other_value), vec![Mismatch::RunSeed]);
}

#[test]
fn sc_draw_the_recompute_checks_the_revealed_bytes_against_the_commitment() {
    let run = published("314159", &[("KM-2022-000001", 40, 4, 0)]);
    // One revealed byte changed: the commitment published at creation no longer matches.
    let mut forged = run.clone();
    let mut hex = forged.revealed.take().unwrap();
    hex.replace_range(0..2, if &hex[0..2] == "00" { "01" } else { "00" });
    forged.revealed = Some(hex);
    assert_eq!(verify(&forged), vec![Mismatch::Commitment]);
    // A class part published to its institution alone (no run seed yet) recomputes from its class seed.
    let mut part = run;
    part.revealed = None;
    part.seed = None;
    part.public_value = None;
    assert_eq!(verify(&part), vec![]);
    part.classes[0].class_seed = "00".repeat(32);
    assert!(verify(&part).contains(&Mismatch::Sample {
        class_id: "KM-2022-000001".into()
    }));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn a_sample_of_n_plus_one_contains_the_sample_of_n(
        seed in "[0-9]{1,20}",
        roster in 1usize..60,
        n in 0usize..60,
    ) {
        let pop = population("KM-2022-000042", roster);
        let small = sample(&seed, &pop, n);
        let big = sample(&seed, &pop, n + 1);
        prop_assert_eq!(&big[..small.len()], &small[..]);
        prop_assert_eq!(big.len(), (n + 1).min(roster));
    }

    #[test]
    fn the_sample_does_not_depend_on_the_order_of_the_roster(
        seed in "[a-z0-9]{1,16}",
        roster in 1usize..60,
        n in 1usize..20,
        rotation in 0usize..60,
    ) {
        let pop = population("KM-2022-000042", roster);
        let mut shuffled = pop.clone();
        shuffled.reverse();
        let r = rotation % shuffled.len();
        shuffled.rotate_left(r);
        prop_assert_eq!(sample(&seed, &pop, n), sample(&seed, &shuffled, n));
        prop_assert_eq!(population_digest(&pop), population_digest(&shuffled));
    }
}

/// The module doc's ticket, term by term: `"0." + reverse(decimal64(n))`.
fn ticket_by_definition(digest: &[u8; 32]) -> String {
    let n = Big::from_be_bytes(digest);
    let digits = format!("{:0>64}", n.to_decimal());
    let reversed: String = digits.chars().rev().collect();
    format!("0.{reversed}")
}

#[test]
fn sc_draw_tickets_written_directly_agree_with_the_definition_at_the_edges() {
    let mut one = [0u8; 32];
    one[31] = 1;
    let mut two_64 = [0u8; 32];
    two_64[23] = 1;
    // 10^19 and 10^19 - 1, big-endian in the last 8 bytes.
    let mut chunk = [0u8; 32];
    chunk[24..].copy_from_slice(&10_000_000_000_000_000_000u64.to_be_bytes());
    let mut below = [0u8; 32];
    below[24..].copy_from_slice(&9_999_999_999_999_999_999u64.to_be_bytes());
    let cases = [
        ("zero", [0u8; 32]),
        ("one", one),
        ("2^64", two_64),
        ("10^19", chunk),
        ("10^19 - 1", below),
        ("2^256 - 1", [0xff; 32]),
        ("2^255", {
            let mut d = [0u8; 32];
            d[0] = 0x80;
            d
        }),
    ];
    for (name, digest) in cases {
        assert_eq!(
            ticket_of_digest(&digest),
            ticket_by_definition(&digest),
            "{name}"
        );
    }
    assert_eq!(
        ticket_of_digest(&[0u8; 32]),
        format!("0.{}", "0".repeat(64))
    );
    assert_eq!(
        ticket_of_digest(&[0xff; 32]).len(),
        2 + 78,
        "2^256 - 1 has 78 digits"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn sc_draw_tickets_written_directly_agree_with_the_definition(digest in any::<[u8; 32]>(), small in any::<u64>(), zeros in 0usize..32) {
        prop_assert_eq!(ticket_of_digest(&digest), ticket_by_definition(&digest));
        // Numbers with many leading zero bytes (short decimals, padded to 64).
        let mut d = [0u8; 32];
        d[24..].copy_from_slice(&small.to_be_bytes());
        for b in d.iter_mut().take(zeros) { *b = 0; }
        prop_assert_eq!(ticket_of_digest(&d), ticket_by_definition(&d));
        let mut e = digest;
        for b in e.iter_mut().take(zeros) { *b = 0; }
        prop_assert_eq!(ticket_of_digest(&e), ticket_by_definition(&e));
    }
}

#[test]
fn sc_unreach_the_second_sample_goes_round_the_first_samples_inspectors_in_order() {
    let first = ["insp-b", "insp-a", "insp-b", "insp-c"];
    let got: Vec<String> = (0..5)
        .map(|j| second_sample_inspector(&first, j).unwrap())
        .collect();
    assert_eq!(got, ["insp-b", "insp-a", "insp-c", "insp-b", "insp-a"]);
    assert_eq!(second_sample_inspector(&[], 0), None);
}

#[test]
fn sc_repeat_a_finding_counts_in_the_china_standard_time_year() {
    let at = |s: &str| s.parse::<chrono::DateTime<chrono::Utc>>().unwrap();
    // 2022-12-31 16:00 UTC is 2023-01-01 00:00 in Kunming.
    assert_eq!(finding_year(at("2022-12-31T15:59:59Z")), 2022);
    assert_eq!(finding_year(at("2022-12-31T16:00:00Z")), 2023);
}

//! Property tests of every parser of outside input in `policy::ids` and of
//! voucher codes: whatever
//! the input, parsing returns `Ok` or `Err` and never panics; what parses
//! re-parses to itself; and error messages never repeat the input.

use policy::ids::{AreaCode, CreditCode, IdNumber, Mobile, OccupationCode, SkillLevel};
use proptest::prelude::*;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 10_000,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Strings that look like identifiers more often than uniform noise would.
fn id_like() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[0-9]{17}[0-9Xx]",
        "[0-9A-Z]{18}",
        "[0-9 +-]{0,20}",
        "[1-9]-[0-9]{2}-[0-9]{2}-[0-9]{2}",
        "5301[0-9]{2}(19|20)[0-9]{2}[01][0-9][0-3][0-9][0-9]{3}[0-9X]",
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn ref_id_parse_never_panics_and_round_trips(s in id_like()) {
        if let Ok(id) = IdNumber::parse(&s) {
            prop_assert_eq!(IdNumber::parse(id.expose()).unwrap(), id.clone());
            let shown = format!("{:?}", id);
            prop_assert!(!shown.contains(id.expose()));
        } else if let Err(e) = IdNumber::parse(&s) {
            prop_assert!(s.len() < 4 || !e.to_string().contains(s.as_str()));
        }
    }

    #[test]
    fn ref_uscc_parse_never_panics_and_round_trips(s in id_like()) {
        if let Ok(c) = CreditCode::parse(&s) {
            prop_assert_eq!(CreditCode::parse(c.as_str()).unwrap(), c.clone());
            let _ = c.check_ok();
        }
    }

    #[test]
    fn ref_phone_parse_never_panics_and_round_trips(s in id_like()) {
        if let Ok(m) = Mobile::parse(&s) {
            prop_assert_eq!(Mobile::parse(m.expose()).unwrap(), m.clone());
            prop_assert_eq!(m.masked().len(), 11);
        }
    }

    #[test]
    fn voucher_code_parse_never_panics_and_round_trips(s in prop_oneof![any::<String>(), "[0-9A-Za-z -]{18,26}"], bytes in any::<[u8; policy::vouchers::RANDOM_BYTES]>()) {
        if let Ok(c) = policy::vouchers::VoucherCode::parse(&s) {
            prop_assert_eq!(policy::vouchers::VoucherCode::parse(c.as_str()).unwrap(), c.clone());
        }
        let made = policy::vouchers::VoucherCode::from_random(&bytes);
        prop_assert_eq!(policy::vouchers::VoucherCode::parse(made.grouped()).unwrap(), made.clone());
        let payload = made.qr_payload();
        let scanned = payload.strip_prefix("KMVT1:").expect("QR payloads carry their scheme");
        prop_assert_eq!(policy::vouchers::VoucherCode::parse(scanned).unwrap(), made.clone());
    }

    #[test]
    fn ref_area_ref_occ_and_ref_level_parse_never_panic(s in id_like(), n in any::<u8>()) {
        let _ = AreaCode::parse(&s);
        if let Ok(o) = OccupationCode::parse(&s) {
            prop_assert_eq!(OccupationCode::parse(o.as_str()).unwrap(), o.clone());
        }
        prop_assert_eq!(SkillLevel::parse(n).is_ok(), (1..=5).contains(&n));
        let _ = policy::ids::isbn_ok(&s);
    }
}

//! Property tests of bearer-token verification: no input makes it panic, and
//! no token it did not sign (or that was changed in any character) verifies,
//! for either algorithm of the identity provider.

#![allow(clippy::result_large_err)]

use proptest::prelude::*;
use web::auth::testing::{TestKeys, identity, mint_rs256};
use web::auth::{AuthError, Claims, Principal, Role, mint};

fn verify(token: &str, now: i64) -> Result<Principal, AuthError> {
    static IDENTITY: std::sync::LazyLock<web::auth::Identity> = std::sync::LazyLock::new(identity);
    IDENTITY.verify(token, now)
}

static RS256: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| mint_rs256(&claims()));

fn claims() -> Claims {
    Claims {
        sub: "u".into(),
        role: Role::BureauAdmin,
        institution: None,
        district: None,
        person: None,
        iat: 0,
        nbf: None,
        exp: 10_000,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_strings_never_verify_and_never_panic(s in prop_oneof![any::<String>(), "[A-Za-z0-9_-]{1,40}\\.[A-Za-z0-9_-]{1,80}\\.[A-Za-z0-9_-]{0,60}"]) {
        prop_assert!(verify(&s, 100).is_err());
    }

    #[test]
    fn a_token_changed_in_one_character_never_verifies(pos in any::<prop::sample::Index>(), c in "[A-Za-z0-9_.-]", rs256 in any::<bool>()) {
        let token = if rs256 { RS256.clone() } else { mint(&claims(), TestKeys) };
        let i = pos.index(token.len());
        let mut bytes = token.clone().into_bytes();
        let replacement = c.as_bytes()[0];
        prop_assume!(bytes[i] != replacement);
        bytes[i] = replacement;
        let changed = String::from_utf8(bytes).unwrap();
        // Only the signature's last character can change without changing its
        // bytes (it carries unused bits); a change anywhere else must fail.
        if let Ok(p) = verify(&changed, 100) {
            prop_assert_eq!(p.claims, claims());
            prop_assert_eq!(i, token.len() - 1);
        }
    }
}

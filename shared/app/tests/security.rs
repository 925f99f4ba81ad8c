//! The access table: every route of every component × every role × own or
//! other binding, with the status it must answer, and every way a token can be
//! wrong. A route added to `spin.toml` or to a component's router without a
//! line in `support::access::TABLE` fails `every_route_has_a_line_in_the_access_table`.

#![allow(clippy::result_large_err)]

mod support;

use http::Method;
use policy::fixtures;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use web::Env;
use web::auth::{Role, mint};

use support::JWT;
use support::access::*;

use Role::*;

#[test]
fn every_route_has_a_line_in_the_access_table() {
    let table: BTreeSet<(String, String)> = TABLE
        .iter()
        .map(|l| (l.method.to_string(), l.path.to_string()))
        .collect();
    let routes = declared();
    let missing: Vec<_> = routes.difference(&table).collect();
    assert!(
        missing.is_empty(),
        "routes without a line in the access table: {missing:?}"
    );
    let stale: Vec<_> = table.difference(&routes).collect();
    assert!(
        stale.is_empty(),
        "lines for routes that no component declares: {stale:?}"
    );
    for (route, component) in spin_routes() {
        let covered = TABLE.iter().any(|l| {
            route_matches(&route, &l.path.replace('{', ":").replace('}', "")).is_some()
                || route_matches(&route, l.path).is_some()
        });
        assert!(
            covered,
            "spin.toml route {route} ({component}) has no line in the access table"
        );
    }
}

#[test]
fn every_route_routes_to_the_component_that_declares_it() {
    for l in TABLE {
        let path = l
            .path
            .replace("{id}", "X")
            .replace("{kind}", "k")
            .replace("{code}", "c")
            .replace("{ref}", "r")
            .replace("{sub}", "s");
        let component = component_for(&path);
        let router = match component.as_str() {
            "vouchers" => app::vouchers::router().declared(),
            "policy-admin" => app::policy_admin::router().declared(),
            "audit" => app::audit::router().declared(),
            "spot-checks" => app::spot_checks::router().declared(),
            "class-opening" => [
                app::class_opening::router().declared(),
                app::admin::router().declared(),
            ]
            .concat(),
            other => panic!("{} {} goes to no component ({other:?})", l.method, l.path),
        };
        assert!(
            router.iter().any(|(m, p)| *m == l.method && p == l.path),
            "{} {} is routed to {component}, which does not declare it",
            l.method,
            l.path
        );
    }
}

#[test]
fn every_protected_route_answers_401_to_every_kind_of_bad_token() {
    use web::auth::testing::{
        self as keys, AUDIENCE, ED25519_KID, IDP_SEED, ISSUER, RSA_KID, Sign, TRAINEE_SEED,
    };
    use web::auth::{DEFAULT_MAX_LIFETIME_SECS, Issuer, TRAINEE_ISSUER, TRAINEE_KID};
    let w = World::new();
    let t = now().timestamp();
    let mut expired = claims(BureauAdmin, false);
    expired.exp = t - 3600;
    let mut early = claims(BureauAdmin, false);
    early.nbf = Some(t + 3600);
    let mut long = claims(BureauAdmin, false);
    long.exp = long.iat + DEFAULT_MAX_LIFETIME_SECS + 1;
    let admin = claims(BureauAdmin, false);
    let payload = keys::payload(&admin, ISSUER, AUDIENCE);
    let jwk = keys::idp().public_jwk();
    let public_bytes = {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(jwk["x"].as_str().unwrap())
            .unwrap()
    };
    let trainee_key = Issuer::new(TRAINEE_SEED, TRAINEE_KID, TRAINEE_ISSUER, AUDIENCE);
    let idp_as = |iss: &str, aud: &str, kid: &str| Issuer::new(IDP_SEED, kid, iss, aud);
    let bad: Vec<(&str, Option<String>, &str)> = vec![
        ("missing", None, "unauthenticated"),
        ("expired", Some(mint(&expired, JWT)), "token_expired"),
        (
            "not yet valid",
            Some(mint(&early, JWT)),
            "token_not_yet_valid",
        ),
        (
            "signed with another key",
            Some(Issuer::new([9; 32], ED25519_KID, ISSUER, AUDIENCE).mint(&admin)),
            "token_signature",
        ),
        (
            "alg none",
            Some(keys::sign(
                &json!({"alg": "none", "typ": "JWT"}),
                &payload,
                Sign::Unsigned,
            )),
            "token_algorithm",
        ),
        (
            "HS256 keyed with the public key (algorithm confusion)",
            Some(keys::mint_hs256(&admin, &public_bytes)),
            "token_algorithm",
        ),
        (
            "HS256 keyed with the JWKS text",
            Some(keys::mint_hs256(&admin, keys::jwks().as_bytes())),
            "token_algorithm",
        ),
        (
            "RS256 header on the Ed25519 key",
            Some(keys::sign(
                &json!({"alg": "RS256", "kid": ED25519_KID}),
                &payload,
                Sign::Rs256,
            )),
            "token_algorithm",
        ),
        (
            "wrong issuer",
            Some(idp_as("https://idp.other", AUDIENCE, ED25519_KID).mint(&admin)),
            "token_issuer",
        ),
        (
            "wrong audience",
            Some(idp_as(ISSUER, "another-service", ED25519_KID).mint(&admin)),
            "token_audience",
        ),
        (
            "unknown kid",
            Some(idp_as(ISSUER, AUDIENCE, "retired-key").mint(&admin)),
            "token_unknown_key",
        ),
        (
            "lifetime above the maximum",
            Some(mint(&long, JWT)),
            "token_lifetime",
        ),
        (
            "trainee key signing bureau_admin",
            Some(trainee_key.mint(&admin)),
            "token_role",
        ),
        (
            "identity provider signing trainee",
            Some(keys::idp().mint(&claims(Trainee, false))),
            "token_role",
        ),
        (
            "RS256 with another role's payload",
            Some({
                let good = keys::mint_rs256(&admin);
                let (head, rest) = good.split_once('.').unwrap();
                let sig = rest.rsplit_once('.').unwrap().1;
                let _ = RSA_KID;
                let other = keys::payload(&claims(Scheduler, false), ISSUER, AUDIENCE);
                use base64::Engine;
                let p = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(other.to_string());
                format!("{head}.{p}.{sig}")
            }),
            "token_signature",
        ),
        ("garbage", Some("a.b.c".into()), "token_malformed"),
    ];
    for l in TABLE.iter().filter(|l| l.roles.is_some()) {
        let path = w.concrete(l.path);
        for (case, tok, code) in &bad {
            let before = w.kv.dump();
            let (status, v) = w.call(l.method.clone(), &path, tok.as_deref(), json!({}));
            assert_eq!(
                status, 401,
                "{} {} with a {case} token: {v}",
                l.method, l.path
            );
            assert_eq!(
                v["code"], *code,
                "{} {} with a {case} token: {v}",
                l.method, l.path
            );
            assert_eq!(
                w.kv.dump(),
                before,
                "{} {} with a {case} token changed the store",
                l.method,
                l.path
            );
        }
    }
}

#[test]
fn every_route_answers_403_exactly_to_the_roles_and_bindings_it_does_not_serve() {
    let w = World::new();
    let mut table = Vec::new();
    for l in TABLE {
        let path = w.concrete(l.path);
        for role in ALL {
            for other in [false, true] {
                if other && !matches!(role, Institution | DistrictOfficer | Trainee) {
                    continue;
                }
                let before = w.kv.dump();
                let (status, v) = w.call(
                    l.method.clone(),
                    &path,
                    Some(&token(role, other)),
                    w.body(l),
                );
                let allowed = match l.roles {
                    None => true,
                    Some(roles) => roles.contains(&role) && !(other && l.own.contains(&role)),
                };
                table.push(format!(
                    "{:<6} {:<48} {:<16} {:<5} {status}",
                    l.method,
                    l.path,
                    role.id(),
                    if other { "other" } else { "own" }
                ));
                if allowed {
                    assert!(
                        status != 401 && status != 403,
                        "{} {} as {role:?} (other binding: {other}) should be served: {status} {v}",
                        l.method,
                        l.path
                    );
                } else {
                    assert_eq!(
                        status, 403,
                        "{} {} as {role:?} (other binding: {other}): {v}",
                        l.method, l.path
                    );
                    assert_eq!(
                        w.kv.dump(),
                        before,
                        "{} {} as {role:?} changed the store",
                        l.method,
                        l.path
                    );
                }
            }
        }
    }
    assert!(table.len() > TABLE.len() * 7, "the table was exercised");
}

/// Every route that takes a body, called by a role it serves with a body
/// that is JSON but not an object (an array, a string, a number, `null`):
/// 422 naming `body` where the contract requires an object body, never a
/// success or a 5xx anywhere, and the store unchanged.
#[test]
fn a_body_that_is_json_but_not_an_object_is_refused_on_every_route_and_changes_nothing() {
    let w = World::new();
    let required = routes_with_a_required_body();
    let mut checked = 0;
    for l in TABLE
        .iter()
        .filter(|l| matches!(l.method.as_str(), "POST" | "PUT"))
    {
        let Some(&[role, ..]) = l.roles else { continue };
        let path = w.concrete(l.path);
        let tok = token(role, false);
        for body in [r#"["11010519491231002X", true]"#, r#""text""#, "12", "null"] {
            let before = w.kv.dump();
            let req = support::request(
                l.method.clone(),
                &path,
                Some(&tok),
                Some(bytes::Bytes::from(body)),
                &[],
            );
            let env = Env {
                kv: &w.kv,
                secrets: &w.secrets,
                now: now(),
                random: &|b: &mut [u8]| b.fill(7),
            };
            let res = match component_for(&path).as_str() {
                "vouchers" => support::block_on(app::vouchers::handle_with(
                    &env,
                    &req,
                    &support::wechat::FakeWeChat::default(),
                )),
                "spot-checks" => app::spot_checks::handle(&env, &req),
                "policy-admin" => app::policy_admin::handle(&env, &req),
                "audit" => app::audit::handle(&env, &req),
                _ => app::class_opening::handle(&env, &req),
            };
            let a = support::answer(res);
            let status = a.status.as_u16();
            assert!(
                (400..500).contains(&status),
                "{} {} with {body}: {status} {}",
                l.method,
                l.path,
                a.text
            );
            if required.contains(&(l.method.to_string(), l.path.to_string())) && status == 422 {
                assert_eq!(
                    a.body["errors"][0]["field"], "body",
                    "{} {}",
                    l.method, l.path
                );
                checked += 1;
            }
            assert_eq!(
                w.kv.dump(),
                before,
                "{} {} with {body} changed the store",
                l.method,
                l.path
            );
        }
    }
    println!("{checked} route × body pairs answered 422 naming the body");
    assert!(
        checked >= 40,
        "only {checked} route × body pairs reached the body check"
    );
}

/// Object level where the access table's generic body cannot reach the rule:
/// the registry entry of an institution is its districts' to change, each
/// officer for their own district only (REG-DISTRICT). The wrong district
/// gets 403 with the store unchanged; the right one succeeds.
#[test]
fn an_institutions_registry_entry_is_changed_by_its_own_districts_officer_only() {
    let w = World::new();
    let path = format!("/api/v1/registry/institutions/{}", fixtures::INSTITUTION);
    let mut dropped = serde_json::to_value(fixtures::institution()).unwrap();
    dropped["filed_districts"] = json!([]);
    let before = w.kv.dump();
    let (status, v) = w.call(
        Method::PUT,
        &path,
        Some(&token(DistrictOfficer, true)),
        dropped.clone(),
    );
    assert_eq!(status, 403, "{v}");
    assert_eq!(w.kv.dump(), before, "a refused write changed the store");
    let (status, v) = w.call(
        Method::PUT,
        &path,
        Some(&token(DistrictOfficer, false)),
        dropped,
    );
    assert_eq!(status, 200, "{v}");
}

/// Which key lives where (docs/OPERATIONS.md, "Keys"): every component gets
/// the identity provider's public keys and the trainee public key; only the
/// vouchers component gets the trainee signing key; none gets an HMAC token
/// secret.
#[test]
fn only_the_vouchers_component_holds_the_trainee_signing_key() {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../spin.toml")).unwrap();
    let manifest: toml::Value = toml::from_str(&text).unwrap();
    let declared = manifest["variables"].as_table().unwrap();
    assert!(!declared.contains_key("jwt_secret"));
    for (name, component) in manifest["component"].as_table().unwrap() {
        let vars = component
            .get("variables")
            .and_then(toml::Value::as_table)
            .cloned()
            .unwrap_or_default();
        for v in [
            "auth_jwks",
            "auth_issuer",
            "auth_audience",
            "auth_max_lifetime_secs",
            "trainee_public_key",
        ] {
            assert_eq!(
                vars.get(v).and_then(toml::Value::as_str),
                Some(format!("{{{{ {v} }}}}").as_str()),
                "component {name} must read {v}"
            );
        }
        assert_eq!(
            vars.contains_key("trainee_signing_key"),
            name == "vouchers",
            "component {name} and trainee_signing_key"
        );
        assert!(!vars.contains_key("jwt_secret"), "component {name}");
    }
    assert_eq!(
        declared["trainee_signing_key"]
            .get("secret")
            .and_then(toml::Value::as_bool),
        Some(true)
    );
}

/// A component without the trainee signing key verifies trainee tokens but
/// cannot mint one, nor key a bind ticket: the WeChat routes answer 503.
#[test]
fn without_the_trainee_signing_key_no_trainee_token_or_bind_ticket_is_made() {
    use web::auth::testing::{AUDIENCE, ISSUER, jwks, trainee_public_key};
    let mut w = World::new();
    w.secrets.identity =
        web::auth::Identity::new(&jwks(), ISSUER, AUDIENCE, "", &trainee_public_key()).unwrap();
    // Trainee tokens still verify (403 is the role check, not 401).
    let (status, v) = w.call(
        Method::GET,
        "/api/v1/me/vouchers",
        Some(&token(Trainee, false)),
        Value::Null,
    );
    assert_eq!(status, 200, "{v}");
    let (status, v) = w.call(
        Method::POST,
        "/api/v1/wechat/bind",
        None,
        json!({"bind_ticket": "x.y", "id_number": "11010519491231002X", "phone_code": "c0de"}),
    );
    assert_eq!(
        (status, v["code"].as_str()),
        (503, Some("wechat_not_configured")),
        "{v}"
    );
}

//! The access table: every route of every component × every role × own or
//! other binding, with the status it must answer, and every way a token can be
//! wrong. A route added to `spin.toml` or to a component's router without a
//! line in [`TABLE`] fails `every_route_has_a_line_in_the_access_table`.

#![allow(clippy::result_large_err)]

mod support;

use chrono::{DateTime, TimeZone, Utc};
use http::Method;
use policy::fixtures;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use store::MemoryStore;
use web::auth::{Claims, Role, mint};
use web::{Env, Secrets};

use support::JWT;

use Role::*;

const ALL: [Role; 7] = [
    Institution,
    DistrictOfficer,
    BureauAdmin,
    Inspector,
    Scheduler,
    Trainee,
    SocialSecurity,
];

/// Who may call a route, and which bound roles may only act on their own
/// institution's, district's or person's data (`own`): the same role bound to
/// another institution, district or person gets 403.
struct Line {
    method: Method,
    path: &'static str,
    /// `None`: public, no token needed.
    roles: Option<&'static [Role]>,
    /// The bound roles that may act on their own binding only.
    own: &'static [Role],
}

const fn line(
    method: Method,
    path: &'static str,
    roles: &'static [Role],
    own: &'static [Role],
) -> Line {
    Line {
        method,
        path,
        roles: Some(roles),
        own,
    }
}

const fn public(method: Method, path: &'static str) -> Line {
    Line {
        method,
        path,
        roles: None,
        own: &[],
    }
}

const BOUND: &[Role] = &[Institution, DistrictOfficer, Trainee];

const OFFICES: &[Role] = &[DistrictOfficer, BureauAdmin];
const CLASS_READERS: &[Role] = &[Institution, DistrictOfficer, BureauAdmin];

/// The access table. Paths use the routers' `{param}` syntax.
const TABLE: &[Line] = &[
    // 开班审批
    public(Method::GET, "/api/v1/health"),
    line(
        Method::POST,
        "/api/v1/classes/validate",
        CLASS_READERS,
        BOUND,
    ),
    line(Method::POST, "/api/v1/classes", &[Institution], BOUND),
    line(Method::GET, "/api/v1/classes", CLASS_READERS, &[]),
    line(Method::GET, "/api/v1/classes/{id}", CLASS_READERS, BOUND),
    line(Method::POST, "/api/v1/classes/{id}/checks", OFFICES, BOUND),
    line(Method::PUT, "/api/v1/registry/{kind}/{id}", OFFICES, &[]),
    line(Method::GET, "/api/v1/registry/{kind}/{id}", OFFICES, &[]),
    line(Method::GET, "/api/v1/audit/verify", &[BureauAdmin], &[]),
    line(Method::GET, "/api/v1/audit", OFFICES, BOUND),
    line(
        Method::POST,
        "/api/v1/admin/key-rotation",
        &[BureauAdmin],
        &[],
    ),
    // 职业培训券
    line(
        Method::POST,
        "/api/v1/classes/{id}/vouchers",
        &[Institution],
        BOUND,
    ),
    line(
        Method::GET,
        "/api/v1/classes/{id}/vouchers",
        CLASS_READERS,
        BOUND,
    ),
    line(
        Method::POST,
        "/api/v1/vouchers/sweep",
        &[Scheduler, BureauAdmin],
        &[],
    ),
    line(
        Method::GET,
        "/api/v1/vouchers/{code}",
        &[Institution, DistrictOfficer, BureauAdmin, Trainee],
        &[],
    ),
    line(
        Method::POST,
        "/api/v1/vouchers/{code}/redeem",
        &[Institution],
        &[],
    ),
    line(Method::POST, "/api/v1/vouchers/{code}/settle", OFFICES, &[]),
    line(
        Method::POST,
        "/api/v1/vouchers/{code}/revoke",
        CLASS_READERS,
        &[],
    ),
    line(
        Method::POST,
        "/api/v1/cards/activations",
        &[SocialSecurity],
        &[],
    ),
    line(
        Method::GET,
        "/api/v1/people/{ref}/archive",
        &[DistrictOfficer, BureauAdmin, Trainee],
        // AC-ARCHIVE: an officer only for people on a roster of their district.
        &[DistrictOfficer, Trainee],
    ),
    line(Method::GET, "/api/v1/me/vouchers", &[Trainee], &[]),
    line(Method::GET, "/api/v1/me/archive", &[Trainee], &[]),
    public(Method::POST, "/api/v1/wechat/login"),
    public(Method::POST, "/api/v1/wechat/bind"),
    line(Method::GET, "/api/v1/stats/progress", OFFICES, &[]),
    // 电话抽查
    line(
        Method::POST,
        "/api/v1/spot-checks/runs",
        &[Scheduler, BureauAdmin],
        &[],
    ),
    // A published run holds no personal data: any caller with a token may recompute it.
    line(Method::GET, "/api/v1/spot-checks/runs/{id}", &ALL, &[]),
    line(
        Method::PUT,
        "/api/v1/spot-checks/inspectors/{sub}",
        &[BureauAdmin],
        &[],
    ),
    line(
        Method::GET,
        "/api/v1/spot-checks/inspectors",
        &[BureauAdmin, Scheduler],
        &[],
    ),
    line(
        Method::GET,
        "/api/v1/spot-checks/tasks/mine",
        &[Inspector],
        &[],
    ),
    line(
        Method::POST,
        "/api/v1/spot-checks/tasks/{id}/calls",
        &[Inspector],
        &[],
    ),
    line(Method::GET, "/api/v1/spot-checks/findings", OFFICES, &[]),
    line(
        Method::GET,
        "/api/v1/spot-checks/findings/{id}",
        CLASS_READERS,
        &[],
    ),
    line(
        Method::POST,
        "/api/v1/spot-checks/findings/{id}/rectification",
        &[DistrictOfficer],
        &[],
    ),
    line(
        Method::GET,
        "/api/v1/spot-checks/classes/{id}/hold",
        CLASS_READERS,
        BOUND,
    ),
    line(
        Method::GET,
        "/api/v1/spot-checks/proposals",
        &[BureauAdmin],
        &[],
    ),
];

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2022, 6, 1, 2, 0, 0).unwrap()
}

/// The caller's own binding (the fixtures' institution, district 530102,
/// the class's first trainee) or another one.
fn claims(role: Role, other: bool) -> Claims {
    let t = now().timestamp();
    let binding = match role {
        Institution if other => Some(fixtures::OTHER_INSTITUTION),
        DistrictOfficer if other => Some("530103"),
        _ => None,
    };
    let mut c = support::claims(role, binding, t, t + 3600);
    c.sub = format!("{}-{}", role.id(), if other { "other" } else { "own" });
    c.person = (role == Trainee).then(|| if other { "ef".repeat(32) } else { own_person() });
    if let Some(person) = &c.person {
        // A trainee token is only valid while its WeChat binding is current:
        // the worlds bind both trainees (see `bind_trainees`).
        c.sub = support::wechat::trainee_sub(person);
    }
    c
}

/// The person ref of the first trainee of the world's class (district 530102):
/// the own trainee, and a person whose archive the own district officer reads
/// and the other district's officer does not (AC-ARCHIVE).
fn own_person() -> String {
    store::pii::PiiHasher::new(support::HMAC)
        .person_ref(&fixtures::valid_class(5).0.roster[0].id_number)
}

fn token(role: Role, other: bool) -> String {
    mint(&claims(role, other), JWT)
}

struct World {
    kv: MemoryStore,
    secrets: Secrets,
    class_id: String,
}

impl World {
    fn new() -> Self {
        let secrets = support::secrets();
        let mut w = Self {
            kv: MemoryStore::new(),
            secrets,
            class_id: String::new(),
        };
        // Both trainees of [`claims`] are bound to their WeChat users.
        support::wechat::bind(&w.kv, &own_person());
        support::wechat::bind(&w.kv, &"ef".repeat(32));
        let admin = token(BureauAdmin, false);
        // The inspector of [`claims`], registered and active (call lists need it).
        w.call(
            Method::PUT,
            "/api/v1/spot-checks/inspectors/inspector-own",
            Some(&admin),
            json!({"name": "抽查员"}),
        );
        w.call(
            Method::PUT,
            &format!("/api/v1/registry/institutions/{}", fixtures::INSTITUTION),
            Some(&admin),
            serde_json::to_value(fixtures::institution()).unwrap(),
        );
        // The class's trainers and textbook, so that it is approved and its
        // roster enrols its trainees (AC-ARCHIVE reads the enrolments).
        w.call(
            Method::PUT,
            "/api/v1/registry/textbooks/9787111213826",
            Some(&admin),
            serde_json::to_value(fixtures::textbook()).unwrap(),
        );
        for n in 1..=8 {
            let no = format!("YN-T-{n:04}");
            w.call(
                Method::PUT,
                &format!("/api/v1/registry/trainers/{no}"),
                Some(&admin),
                json!({"registration_no": no, "name": "讲师", "status": "registered"}),
            );
        }
        let (app, _) = fixtures::valid_class(5);
        let (_, v) = w.call(
            Method::POST,
            "/api/v1/classes",
            Some(&token(Institution, false)),
            serde_json::to_value(app).unwrap(),
        );
        w.class_id = v["id"].as_str().expect("a class is filed").to_string();
        assert_eq!(v["decision"]["outcome"], "approved", "{v}");
        w
    }

    fn call(&self, method: Method, path: &str, tok: Option<&str>, body: Value) -> (u16, Value) {
        let body = if body.is_null() {
            Some(Default::default())
        } else {
            support::json_body(&body)
        };
        let req = support::request(method, path, tok, body, &[]);
        let env = Env {
            kv: &self.kv,
            secrets: &self.secrets,
            now: now(),
            random: &|b: &mut [u8]| b.fill(7),
        };
        let res = match component_for(path).as_str() {
            "vouchers" => support::block_on(app::vouchers::handle_with(
                &env,
                &req,
                &support::wechat::FakeWeChat::default(),
            )),
            "spot-checks" => app::spot_checks::handle(&env, &req),
            _ => app::class_opening::handle(&env, &req),
        };
        let a = support::answer(res);
        (a.status.as_u16(), a.body)
    }

    /// A body that passes parsing where the binding is read from the body.
    fn body(&self, l: &Line) -> Value {
        match (l.method.as_str(), l.path) {
            ("POST", "/api/v1/classes" | "/api/v1/classes/validate") => {
                serde_json::to_value(fixtures::valid_class(5).0).unwrap()
            }
            ("POST", "/api/v1/classes/{id}/checks") => {
                json!({"kind": "pre_opening", "officer": "王", "at": "2022-06-01T01:00:00Z", "result": "failed"})
            }
            _ => json!({}),
        }
    }

    fn concrete(&self, path: &str) -> String {
        if path == "/api/v1/audit" {
            return format!("/api/v1/audit?entity=class:{}", self.class_id);
        }
        path.replace("{id}", &self.class_id)
            .replace("{kind}", "trainers")
            .replace(
                "{code}",
                policy::vouchers::VoucherCode::from_random(&[7; policy::vouchers::RANDOM_BYTES])
                    .as_str(),
            )
            .replace("{ref}", &own_person())
            .replace("{sub}", "inspector-own")
    }
}

/// spin.toml's trigger routes, component by component.
fn spin_routes() -> Vec<(String, String)> {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../spin.toml")).unwrap();
    let manifest: toml::Value = toml::from_str(&text).unwrap();
    manifest["trigger"]["http"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["route"].as_str().unwrap().to_string(),
                t["component"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn route_matches(route: &str, path: &str) -> Option<usize> {
    let (pattern, wildcard) = match route.strip_suffix("/...") {
        Some(p) => (p, true),
        None => (route, false),
    };
    let want: Vec<&str> = pattern.split('/').filter(|s| !s.is_empty()).collect();
    let got: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    if got.len() < want.len() || (!wildcard && got.len() != want.len()) {
        return None;
    }
    let mut literal = 0;
    for (w, g) in want.iter().zip(&got) {
        if w.starts_with(':') {
            continue;
        }
        if w != g {
            return None;
        }
        literal += 1;
    }
    Some(literal * 10 + want.len() + usize::from(!wildcard))
}

/// The component spin.toml sends `path` to (most specific route wins).
fn component_for(path: &str) -> String {
    spin_routes()
        .into_iter()
        .filter_map(|(route, component)| {
            route_matches(&route, path).map(|score| (score, component))
        })
        .max_by_key(|(score, _)| *score)
        .map(|(_, c)| c)
        .unwrap_or_default()
}

fn declared() -> BTreeSet<(String, String)> {
    let mut all = BTreeSet::new();
    let lists = [
        app::class_opening::router().declared(),
        app::audit::router().declared(),
        app::admin::router().declared(),
        app::vouchers::router().declared(),
        app::spot_checks::router().declared(),
    ];
    for list in lists {
        for (m, p) in list {
            all.insert((m.to_string(), p));
        }
    }
    all
}

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
            "spot-checks" => app::spot_checks::router().declared(),
            "class-opening" => [
                app::class_opening::router().declared(),
                app::audit::router().declared(),
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

/// The routes whose body the contract requires (docs/openapi.yaml), as
/// `(METHOD, path)`.
fn routes_with_a_required_body() -> BTreeSet<(String, String)> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/openapi.yaml"
    ))
    .unwrap();
    let doc: Value = serde_norway::from_str(&text).unwrap();
    let mut out = BTreeSet::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            if op["requestBody"]["required"] == json!(true) {
                out.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    out
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

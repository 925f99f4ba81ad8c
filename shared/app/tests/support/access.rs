//! The access table of every route (shared by the security tests and the
//! tests that attack every route): each route of each component, who may
//! call it, and a world (a store with an approved class, registered
//! trainers, an inspector and bound trainees) to call it in.

use super::JWT;
use chrono::{DateTime, TimeZone, Utc};
use http::Method;
use policy::fixtures;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use store::MemoryStore;
use web::auth::{Claims, Role, mint};
use web::{Env, Secrets};

use Role::*;

pub const ALL: [Role; 7] = [
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
pub struct Line {
    pub method: Method,
    pub path: &'static str,
    /// `None`: public, no token needed.
    pub roles: Option<&'static [Role]>,
    /// The bound roles that may act on their own binding only.
    pub own: &'static [Role],
}

pub const fn line(
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

pub const fn public(method: Method, path: &'static str) -> Line {
    Line {
        method,
        path,
        roles: None,
        own: &[],
    }
}

pub const BOUND: &[Role] = &[Institution, DistrictOfficer, Trainee];

pub const OFFICES: &[Role] = &[DistrictOfficer, BureauAdmin];
pub const CLASS_READERS: &[Role] = &[Institution, DistrictOfficer, BureauAdmin];

/// The access table. Paths use the routers' `{param}` syntax.
pub const TABLE: &[Line] = &[
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
    line(Method::GET, "/api/v1/audit/checkpoint", &ALL, &[]),
    line(Method::GET, "/api/v1/audit/key", &ALL, &[]),
    line(
        Method::GET,
        "/api/v1/audit/proofs/inclusion",
        &[BureauAdmin],
        &[],
    ),
    line(Method::GET, "/api/v1/audit/proofs/consistency", &ALL, &[]),
    line(
        Method::POST,
        "/api/v1/audit/integrate",
        &[BureauAdmin, Scheduler],
        &[],
    ),
    line(Method::GET, "/api/v1/audit", OFFICES, BOUND),
    line(
        Method::POST,
        "/api/v1/admin/key-rotation",
        &[BureauAdmin],
        &[],
    ),
    line(Method::GET, "/api/v1/admin/policy", OFFICES, &[]),
    line(Method::GET, "/api/v1/admin/policy/versions", OFFICES, &[]),
    line(
        Method::GET,
        "/api/v1/admin/policy/versions/{version}",
        OFFICES,
        &[],
    ),
    line(
        Method::POST,
        "/api/v1/admin/policy/import",
        &[BureauAdmin],
        &[],
    ),
    line(
        Method::POST,
        "/api/v1/admin/policy/parameters/{name}/values",
        &[BureauAdmin],
        &[],
    ),
    line(
        Method::PUT,
        "/api/v1/admin/policy/occupations/{code}",
        &[BureauAdmin],
        &[],
    ),
    line(
        Method::PUT,
        "/api/v1/admin/policy/projects/{id}",
        &[BureauAdmin],
        &[],
    ),
    line(
        Method::POST,
        "/api/v1/admin/policy/subsidies",
        &[BureauAdmin],
        &[],
    ),
    line(
        Method::PUT,
        "/api/v1/admin/policy/calendar/{year}",
        &[BureauAdmin],
        &[],
    ),
    line(
        Method::PUT,
        "/api/v1/admin/policy/targets",
        &[BureauAdmin],
        &[],
    ),
    line(
        Method::PUT,
        "/api/v1/admin/policy/topics",
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
        BOUND,
    ),
    line(
        Method::POST,
        "/api/v1/vouchers/{code}/redeem",
        &[Institution],
        &[Institution],
    ),
    line(
        Method::POST,
        "/api/v1/vouchers/{code}/settle",
        OFFICES,
        &[DistrictOfficer],
    ),
    line(
        Method::POST,
        "/api/v1/vouchers/{code}/revoke",
        CLASS_READERS,
        &[Institution, DistrictOfficer],
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
        &[Institution, DistrictOfficer],
    ),
    line(
        Method::POST,
        "/api/v1/spot-checks/findings/{id}/rectification",
        &[DistrictOfficer],
        &[DistrictOfficer],
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

pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2022, 6, 1, 2, 0, 0).unwrap()
}

/// The caller's own binding (the fixtures' institution, district 530102,
/// the class's first trainee) or another one.
pub fn claims(role: Role, other: bool) -> Claims {
    let t = now().timestamp();
    let binding = match role {
        Institution if other => Some(fixtures::OTHER_INSTITUTION),
        DistrictOfficer if other => Some("530103"),
        _ => None,
    };
    let mut c = super::claims(role, binding, t, t + 3600);
    c.sub = format!("{}-{}", role.id(), if other { "other" } else { "own" });
    c.person = (role == Trainee).then(|| if other { "ef".repeat(32) } else { own_person() });
    if let Some(person) = &c.person {
        // A trainee token is only valid while its WeChat binding is current:
        // the worlds bind both trainees (see `bind_trainees`).
        c.sub = super::wechat::trainee_sub(person);
    }
    c
}

/// The person ref of the first trainee of the world's class (district 530102):
/// the own trainee, and a person whose archive the own district officer reads
/// and the other district's officer does not (AC-ARCHIVE).
pub fn own_person() -> String {
    store::pii::PiiHasher::new(super::HMAC)
        .person_ref(&fixtures::valid_class(5).0.roster[0].id_number)
}

pub fn token(role: Role, other: bool) -> String {
    mint(&claims(role, other), JWT)
}

pub struct World {
    pub kv: MemoryStore,
    pub secrets: Secrets,
    pub class_id: String,
    /// The voucher of the class's first trainee (the own trainee).
    pub voucher: String,
    /// An open finding on the class's first trainee.
    pub finding: String,
}

impl World {
    pub fn new() -> Self {
        let secrets = super::secrets();
        let mut w = Self {
            kv: MemoryStore::new(),
            secrets,
            class_id: String::new(),
            voucher: String::new(),
            finding: String::new(),
        };
        // Both trainees of [`claims`] are bound to their WeChat users.
        super::wechat::bind(&w.kv, &own_person());
        super::wechat::bind(&w.kv, &"ef".repeat(32));
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
        // The first trainee's voucher: its card active, then issued.
        let (app, _) = fixtures::valid_class(5);
        let (status, v) = w.call(
            Method::POST,
            "/api/v1/cards/activations",
            Some(&token(SocialSecurity, false)),
            json!({"id_number": app.roster[0].id_number.expose(), "active": true}),
        );
        assert_eq!(status, 200, "{v}");
        let (status, v) = w.call(
            Method::POST,
            &format!("/api/v1/classes/{}/vouchers", w.class_id),
            Some(&token(Institution, false)),
            json!({"lines": [0]}),
        );
        assert_eq!(status, 200, "{v}");
        w.voucher = v["results"][0]["voucher"]["code_compact"]
            .as_str()
            .expect("a voucher is issued")
            .to_string();
        // An open finding on the same trainee, as a denial in a call opens it.
        w.finding = "F-access-table-0001".to_string();
        store::findings::open(
            &w.kv,
            &store::findings::Finding {
                id: w.finding.clone(),
                class_id: w.class_id.clone(),
                roster_line: 0,
                person: own_person(),
                kind: store::findings::FindingKind::DeniedAttendance,
                status: store::findings::FindingStatus::Open,
                source: "run:2022-06-20/task:2022-06-20.access.001".into(),
                opened_at: now(),
                opened_by: store::audit::Actor {
                    sub: "inspector-own".into(),
                    role: "inspector".into(),
                },
                rectification: None,
            },
            now(),
        )
        .expect("the finding is opened");
        w
    }

    pub fn call(&self, method: Method, path: &str, tok: Option<&str>, body: Value) -> (u16, Value) {
        let body = if body.is_null() {
            Some(Default::default())
        } else {
            super::json_body(&body)
        };
        let a = self.send(method, path, tok, body);
        (a.status.as_u16(), a.body)
    }

    /// Sends `body` as it is (a JSON content type) to the component that
    /// spin.toml routes `path` to (which may carry a query string).
    pub fn send(
        &self,
        method: Method,
        path: &str,
        tok: Option<&str>,
        body: Option<bytes::Bytes>,
    ) -> super::Answer {
        let req = super::request(method, path, tok, body, &[]);
        let env = Env {
            kv: &self.kv,
            secrets: &self.secrets,
            now: now(),
            random: &|b: &mut [u8]| b.fill(7),
        };
        let res = match component_for(path).as_str() {
            "vouchers" => super::block_on(app::vouchers::handle_with(
                &env,
                &req,
                &super::wechat::FakeWeChat::default(),
            )),
            "spot-checks" => app::spot_checks::handle(&env, &req),
            "policy-admin" => app::policy_admin::handle(&env, &req),
            "audit" => app::audit::handle(&env, &req),
            _ => app::class_opening::handle(&env, &req),
        };
        super::answer(res)
    }

    /// A body that passes parsing where the binding is read from the body.
    pub fn body(&self, l: &Line) -> Value {
        match (l.method.as_str(), l.path) {
            ("POST", "/api/v1/classes" | "/api/v1/classes/validate") => {
                serde_json::to_value(fixtures::valid_class(5).0).unwrap()
            }
            ("POST", "/api/v1/classes/{id}/checks") => {
                json!({"kind": "pre_opening", "officer": "王", "at": "2022-06-01T01:00:00Z", "result": "failed"})
            }
            ("POST", "/api/v1/vouchers/{code}/settle") => json!({"certificate_no": "CERT-0001"}),
            ("POST", "/api/v1/vouchers/{code}/revoke") => json!({"reason": "退学"}),
            ("POST", "/api/v1/spot-checks/findings/{id}/rectification") => {
                json!({"notes": "已约谈机构并整改"})
            }
            _ => json!({}),
        }
    }

    pub fn concrete(&self, path: &str) -> String {
        if path == "/api/v1/audit" {
            return format!("/api/v1/audit?entity=class:{}", self.class_id);
        }
        path.replace("/findings/{id}", &format!("/findings/{}", self.finding))
            .replace("{id}", &self.class_id)
            .replace("{kind}", "trainers")
            .replace("{code}", &self.voucher)
            .replace("{ref}", &own_person())
            .replace("{sub}", "inspector-own")
            .replace("{name}", "co_min_class_hours")
            .replace("{version}", "1")
            .replace("{year}", "2027")
    }
}

/// spin.toml's trigger routes, component by component.
pub fn spin_routes() -> Vec<(String, String)> {
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

pub fn route_matches(route: &str, path: &str) -> Option<usize> {
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
pub fn component_for(path: &str) -> String {
    let path = path.split('?').next().unwrap_or(path);
    spin_routes()
        .into_iter()
        .filter_map(|(route, component)| {
            route_matches(&route, path).map(|score| (score, component))
        })
        .max_by_key(|(score, _)| *score)
        .map(|(_, c)| c)
        .unwrap_or_default()
}

pub fn declared() -> BTreeSet<(String, String)> {
    let mut all = BTreeSet::new();
    let lists = [
        app::class_opening::router().declared(),
        app::audit::router().declared(),
        app::admin::router().declared(),
        app::policy_admin::router().declared(),
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

/// The routes whose body the contract requires (docs/openapi.yaml), as
/// `(METHOD, path)`.
pub fn routes_with_a_required_body() -> BTreeSet<(String, String)> {
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

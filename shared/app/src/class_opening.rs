//! 开班审批: routes of the class-opening component.
//!
//! | route | roles |
//! | --- | --- |
//! | `GET /api/v1/health` | none |
//! | `POST /api/v1/classes/validate` | institution (own), district officer (own district), bureau |
//! | `POST /api/v1/classes` | institution (own) |
//! | `GET /api/v1/classes` | institution (own), district officer (own district), bureau |
//! | `GET /api/v1/classes/{id}` | institution (own), district officer (own district), bureau |
//! | `POST /api/v1/classes/{id}/checks` | district officer (own district), bureau |
//! | `PUT`/`GET /api/v1/registry/{kind}/{id}` | district officer, bureau |

use crate::view::mask_personal;
use chrono::{DateTime, Utc};
use http::{Method, StatusCode};
use policy::checks::{self, CheckRefusal};
use policy::class_opening::{self, ClassApplication};
use policy::ids::AreaCode;
use policy::registry::{
    CatalogueTextbook, Courseware, CoursewareStatus, Institution, InstitutionStatus, Trainer,
    TrainerStatus, registry_id_ok,
};
use serde::{Deserialize, Serialize};
use store::KeyValue;
use store::classes::{
    self, CheckError, CheckKind, CheckRecord, CheckResult, ClassPhase, ClassRecord, ClassStatus,
    ListFilter,
};
use store::registry::{self as reg, Entry};
use web::json::{self, respond};
use web::router::{Matched, Router, query};
use web::{Env, Principal, Problem, Request, Response, Role, idempotent, paging};

/// The routes of this component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Liveness and store reachability.
    Health,
    /// Dry run of the rules.
    Validate,
    /// File an application.
    File,
    /// List classes.
    List,
    /// Read a class.
    Get,
    /// Record a check of 每班必查.
    Check,
    /// Create or replace a registry entry.
    RegistryPut,
    /// Read a registry entry.
    RegistryGet,
}

/// The router of this component.
pub fn router() -> Router<Route> {
    Router::new()
        .add(Method::GET, "/api/v1/health", Route::Health)
        .add(Method::POST, "/api/v1/classes/validate", Route::Validate)
        .add(Method::POST, "/api/v1/classes", Route::File)
        .add(Method::GET, "/api/v1/classes", Route::List)
        .add(Method::GET, "/api/v1/classes/{id}", Route::Get)
        .add(Method::POST, "/api/v1/classes/{id}/checks", Route::Check)
        .add(
            Method::PUT,
            "/api/v1/registry/{kind}/{id}",
            Route::RegistryPut,
        )
        .add(
            Method::GET,
            "/api/v1/registry/{kind}/{id}",
            Route::RegistryGet,
        )
}

/// Handles one request. The admin (`/api/v1/admin/…`) routes are served by
/// this component too; the audit log's are the `audit` component's.
pub fn handle<K: KeyValue>(env: &Env<'_, K>, req: &Request) -> Response {
    let path = req.uri().path();
    if path.starts_with("/api/v1/admin/") {
        return crate::admin::handle(env, req);
    }
    web::finish(dispatch(env, req))
}

fn dispatch<K: KeyValue>(env: &Env<'_, K>, req: &Request) -> Result<Response, Problem> {
    let m = router().at(req.method(), req.uri().path())?;
    if m.route == Route::Health {
        env.kv
            .exists(store::keys::PREFIX)
            .map_err(|_| Problem::store_unavailable())?;
        return Ok(respond(
            StatusCode::OK,
            &serde_json::json!({"status": "ok", "component": "class-opening"}),
        ));
    }
    let who = env.authenticate(req)?;
    match m.route {
        Route::Health => unreachable!("answered above"),
        Route::Validate => validate(env, req, &who),
        Route::File => file(env, req, &who),
        Route::List => list(env, req, &who),
        Route::Get => get(env, &m, &who),
        Route::Check => check(env, req, &m, &who),
        Route::RegistryPut => registry_put(env, req, &m, &who),
        Route::RegistryGet => registry_get(env, &m, &who),
    }
}

/// Parses an application and checks it is consistent and the caller's to file.
fn parse_application(req: &Request, who: &Principal) -> Result<ClassApplication, Problem> {
    let app: ClassApplication = json::body(req)?;
    if let Err(errs) = app.check_shape() {
        let mut p = Problem::invalid(format!(
            "{} field(s) are inconsistent: {}",
            errs.len(),
            errs[0].field
        ));
        for e in errs {
            p = p.field(e.field, e.detail);
        }
        return Err(p);
    }
    if !who.may_see(&app.institution, &app.district) {
        return Err(Problem::forbidden(
            "the application is for another institution or district than the token's",
        ));
    }
    Ok(app)
}

fn decide<K: KeyValue>(
    env: &Env<'_, K>,
    app: &ClassApplication,
) -> Result<policy::Decision, Problem> {
    // The context and the policy in force, in one read.
    let (ctx, policy) = classes::load_context(env.kv, &env.hasher(), app, env.today())?;
    Ok(class_opening::evaluate(app, &ctx, &policy))
}

fn validate<K: KeyValue>(
    env: &Env<'_, K>,
    req: &Request,
    who: &Principal,
) -> Result<Response, Problem> {
    who.require(&[Role::Institution, Role::DistrictOfficer, Role::BureauAdmin])?;
    let app = parse_application(req, who)?;
    let decision = decide(env, &app)?;
    /// The answer, serialised straight from the decision (no JSON tree).
    #[derive(serde::Serialize)]
    struct Validated<'a> {
        decision: &'a policy::decision::Decision,
    }
    Ok(respond(
        StatusCode::OK,
        &Validated {
            decision: &decision_for(&decision, who),
        },
    ))
}

/// A decision as `who` may see it. An institution is told that a roster line
/// is enrolled in an overlapping class elsewhere (CO-ROSTER) without that
/// class's id, institution or dates, so that validating arbitrary ID numbers
/// does not reveal another institution's classes; officers and the bureau
/// see the full message.
pub fn decision_for<'a>(
    decision: &'a policy::decision::Decision,
    who: &Principal,
) -> std::borrow::Cow<'a, policy::decision::Decision> {
    let names_a_class = |f: &policy::decision::Finding| {
        f.rule == "CO-ROSTER" && !f.passed && f.message_en.contains("is enrolled in class")
    };
    if who.role() != Role::Institution || !decision.findings.iter().any(names_a_class) {
        return std::borrow::Cow::Borrowed(decision);
    }
    let mut d = decision.clone();
    for f in d.findings.iter_mut().filter(|f| names_a_class(f)) {
        let line = f
            .field
            .as_deref()
            .and_then(|x| x.strip_prefix("roster["))
            .and_then(|x| x.split(']').next())
            .and_then(|x| x.parse::<usize>().ok())
            .map_or_else(|| "?".to_string(), |i| (i + 1).to_string());
        f.message_zh = format!("第 {line} 行学员已在另一个日期重叠的班级参训");
        f.message_en =
            format!("roster line {line} is enrolled in another class on overlapping days");
        f.observed = None;
    }
    std::borrow::Cow::Owned(d)
}

/// A class as the API shows it: personal identifiers masked.
pub fn class_view(r: &ClassRecord, today: chrono::NaiveDate, who: &Principal) -> serde_json::Value {
    let mut application = serde_json::to_value(&r.application).expect("serialises");
    mask_personal(&mut application);
    let phase = r.phase_on(today);
    serde_json::json!({
        "id": r.id,
        "status": phase,
        "status_zh": phase.name_zh(),
        "institution": r.application.institution,
        "district": r.application.district,
        "title": r.application.title,
        "start_date": r.application.start_date,
        "end_date": r.application.end_date,
        "trainees": r.application.roster.len(),
        "filed_at": r.filed_at,
        "decision": decision_for(&r.decision, who),
        "checks": r.checks.iter().map(|c| serde_json::json!({
            "kind": c.kind, "kind_zh": c.kind.name_zh(), "officer": c.officer, "at": c.at,
            "result": c.result, "notes": c.notes, "recorded_at": c.recorded_at,
        })).collect::<Vec<_>>(),
        "application": application,
    })
}

fn file<K: KeyValue>(
    env: &Env<'_, K>,
    req: &Request,
    who: &Principal,
) -> Result<Response, Problem> {
    who.require(&[Role::Institution])?;
    idempotent::run(env, req, "classes.file", who, || {
        let app = parse_application(req, who)?;
        let rules = classes::Rules {
            decide: class_opening::evaluate,
            clashes: class_opening::clashes,
        };
        let filed = classes::file(
            env.kv,
            &env.hasher(),
            app,
            &rules,
            env.today(),
            who.actor(),
            env.now,
        )?;
        let status = if filed.created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        };
        let mut body = class_view(&filed.record, env.today(), who);
        body["duplicate"] = serde_json::Value::Bool(!filed.created);
        let mut res = respond(status, &body);
        if let Ok(v) = http::HeaderValue::from_str(&format!("/api/v1/classes/{}", filed.record.id))
        {
            res.headers_mut().insert(http::header::LOCATION, v);
        }
        Ok(res)
    })
}

fn get<K: KeyValue>(
    env: &Env<'_, K>,
    m: &Matched<Route>,
    who: &Principal,
) -> Result<Response, Problem> {
    who.require(&[Role::Institution, Role::DistrictOfficer, Role::BureauAdmin])?;
    let r = crate::view::visible_class(env, &m.params["id"], who)?;
    Ok(respond(StatusCode::OK, &class_view(&r, env.today(), who)))
}

fn list<K: KeyValue>(
    env: &Env<'_, K>,
    req: &Request,
    who: &Principal,
) -> Result<Response, Problem> {
    who.require(&[Role::Institution, Role::DistrictOfficer, Role::BureauAdmin])?;
    let q = query(req);
    for k in q.keys() {
        if !["district", "institution", "status", "cursor", "limit"].contains(&k.as_str()) {
            return Err(Problem::unknown_parameter(k, "not a filter of this list"));
        }
    }
    let district = q
        .get("district")
        .map(|d| {
            policy::ids::AreaCode::parse(d).map_err(|e| {
                Problem::invalid(format!("district: {e}")).field("district", e.to_string())
            })
        })
        .transpose()?;
    let institution = q
        .get("institution")
        .map(|c| {
            policy::ids::CreditCode::parse(c).map_err(|e| {
                Problem::invalid(format!("institution: {e}")).field("institution", e.to_string())
            })
        })
        .transpose()?;
    let status = q
        .get("status")
        .map(|s| {
            ClassPhase::parse(s).ok_or_else(|| {
                Problem::invalid("status is not a class status").field(
                    "status",
                    "approved, rejected, in_training, training_ended or assessed",
                )
            })
        })
        .transpose()?;
    let mut filter = ListFilter {
        district: district.map(|d| d.code().to_string()),
        institution: institution.map(|i| i.as_str().to_string()),
        status,
        on: env.today(),
    };
    match who.role() {
        Role::Institution => {
            let own = who
                .claims
                .institution
                .as_ref()
                .map(|c| c.as_str().to_string());
            if filter.institution.is_some() && filter.institution != own {
                return Err(Problem::forbidden(
                    "an institution lists only its own classes",
                ));
            }
            filter.institution = own;
        }
        Role::DistrictOfficer => {
            let own = who.claims.district.map(|d| d.code().to_string());
            if filter.district.is_some() && filter.district != own {
                return Err(Problem::forbidden(
                    "a district officer lists only their district's classes",
                ));
            }
            filter.district = own;
        }
        _ => {}
    }
    let limit = paging::limit(q.get("limit").map(String::as_str), 50, 200)?;
    let from = q
        .get("cursor")
        .map(|c| paging::decode(c))
        .transpose()?
        .unwrap_or_default();
    let page = classes::list(env.kv, &filter, from, limit)?;
    let today = env.today();
    let items: Vec<serde_json::Value> = page
        .items
        .iter()
        .map(|r| {
            serde_json::json!({
                "id": r.id, "status": r.phase_on(today), "status_zh": r.phase_on(today).name_zh(),
                "institution": r.application.institution, "district": r.application.district,
                "title": r.application.title, "start_date": r.application.start_date,
                "end_date": r.application.end_date, "trainees": r.application.roster.len(),
                "outcome": r.decision.outcome,
            })
        })
        .collect();
    Ok(respond(
        StatusCode::OK,
        &serde_json::json!({ "items": items, "next_cursor": page.next.map(paging::encode) }),
    ))
}

/// Body of `POST /api/v1/classes/{id}/checks`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckRequest {
    /// Which check.
    pub kind: CheckKind,
    /// Officer who carried it out.
    pub officer: String,
    /// When.
    pub at: DateTime<Utc>,
    /// Result.
    pub result: CheckResult,
    /// Notes.
    #[serde(default)]
    pub notes: String,
}

fn check<K: KeyValue>(
    env: &Env<'_, K>,
    req: &Request,
    m: &Matched<Route>,
    who: &Principal,
) -> Result<Response, Problem> {
    who.require(&[Role::DistrictOfficer, Role::BureauAdmin])?;
    let id = m.params["id"].clone();
    idempotent::run(env, req, "classes.check", who, || {
        let body: CheckRequest = json::body(req)?;
        if !policy::text::filled(&body.officer, 50) {
            return Err(Problem::invalid("officer must be 1 to 50 characters")
                .field("officer", "1 to 50 characters"));
        }
        if body.notes.chars().count() > 2000 {
            return Err(Problem::invalid("notes are at most 2000 characters")
                .field("notes", "at most 2000 characters"));
        }
        crate::view::visible_class(env, &id, who)?;
        let policy = store::policy::current_policy(env.kv)?;
        let record = CheckRecord {
            kind: body.kind,
            officer: body.officer.trim().to_string(),
            at: body.at,
            result: body.result,
            notes: body.notes.clone(),
            recorded_by: who.actor(),
            recorded_at: env.now,
            unaudited: false,
        };
        let decide = |c: &ClassRecord| {
            checks::decide_check(
                &checks::CheckFacts {
                    kind: body.kind,
                    at: body.at,
                    recorded_at: env.now,
                    status: c.status,
                    in_training_passed: c.has_passed(CheckKind::InTraining),
                    first_day: c.application.start_date,
                    last_day: c.application.end_date,
                },
                policy.parameters(),
            )
            .map(|allowed| allowed.on_pass)
        };
        match classes::record_check(env.kv, &id, record, decide, env.now) {
            Ok(r) => Ok(respond(StatusCode::OK, &class_view(&r, env.today(), who))),
            Err(store::UpdateError::Store(e)) => Err(e.into()),
            Err(store::UpdateError::Refused(CheckError::NotFound)) => {
                Err(Problem::not_found("no class with this id"))
            }
            Err(store::UpdateError::Refused(CheckError::Refused(r))) => Err(check_problem(&r)),
        }
    })
}

/// The problem details of a check the rules refused.
fn check_problem(r: &CheckRefusal) -> Problem {
    match r {
        CheckRefusal::OutOfOrder {
            kind,
            needed,
            status,
        } => Problem::conflict(
            "class_state_conflict",
            format!(
                "班级当前状态为“{}”，不能记录{}（需为“{}”）",
                status.name_zh(),
                kind.name_zh(),
                needed.name_zh()
            ),
            format!(
                "CK-ORDER: the class is {}; a {} check needs it {}",
                status.id(),
                kind.id(),
                needed.id()
            ),
        )
        .with("state", status)
        .with("needed_state", needed),
        CheckRefusal::NoInTrainingCheck => Problem::conflict(
            "in_training_check_missing",
            "尚未记录合格的培训中检查，不能进行培训后考核",
            "CK-ORDER: the post-training assessment needs a passed in-training check first",
        )
        .with("state", ClassStatus::InTraining),
        CheckRefusal::OutOfWindow {
            bound,
            limit,
            parameters,
        } => {
            let (zh, en, field_msg) = match bound {
                checks::Bound::NotInFuture => (
                    "检查时间不能晚于记录时间",
                    format!("CK-WINDOW: `at` is in the future (the server's clock says {limit})"),
                    format!("must not be after {limit}"),
                ),
                checks::Bound::BackdateLimit => (
                    "检查须在实施后规定时限内记录，不能倒签",
                    format!(
                        "CK-WINDOW: `at` is more than the back-dating limit before now; the earliest allowed is {limit}"
                    ),
                    format!("must not be before {limit}"),
                ),
                checks::Bound::WindowStart => (
                    "检查时间早于该项检查的时间窗口",
                    format!(
                        "CK-WINDOW: `at` is before this check's window, which opens at {limit}"
                    ),
                    format!("must not be before {limit}"),
                ),
                checks::Bound::WindowEnd => (
                    "检查时间晚于该项检查的时间窗口",
                    format!(
                        "CK-WINDOW: `at` is not before the end of this check's window, {limit}"
                    ),
                    format!("must be before {limit}"),
                ),
            };
            let mut p = Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "check_out_of_window",
                zh,
                en,
            )
            .field("at", field_msg);
            p.errors[0].rule = Some(checks::rules::CK_WINDOW.id.to_string());
            p.with("rule", "CK-WINDOW")
                .with("bound", bound)
                .with("limit", limit)
                .with("parameters", parameters)
        }
    }
}

fn registry_kind(kind: &str) -> Result<reg::Kind, Problem> {
    Ok(match kind {
        "institutions" => reg::Kind::Institution,
        "trainers" => reg::Kind::Trainer,
        "courseware" => reg::Kind::Courseware,
        "textbooks" => reg::Kind::Textbook,
        _ => {
            return Err(Problem::not_found(
                "registries are institutions, trainers, courseware and textbooks",
            ));
        }
    })
}

fn put_entry<K: KeyValue, E: Entry>(
    env: &Env<'_, K>,
    req: &Request,
    id: &str,
    who: &Principal,
    check: impl Fn(&E) -> Result<(), Problem>,
    change: impl Fn(Option<&E>, &E) -> Result<(), Problem>,
) -> Result<Response, Problem> {
    let entry: E = json::body(req)?;
    if entry.id() != *id
        && !(E::KIND == reg::Kind::Textbook && entry.id() == policy::registry::normalize_isbn(id))
    {
        return Err(
            Problem::invalid("the id in the path and in the body differ")
                .field("id", "must equal the entry's own id"),
        );
    }
    check(&entry)?;
    let existed =
        reg::put_checked(env.kv, &entry, who.actor(), env.now, change).map_err(|e| match e {
            store::UpdateError::Store(s) => Problem::from(s),
            store::UpdateError::Refused(p) => p,
        })?;
    Ok(respond(
        if existed {
            StatusCode::OK
        } else {
            StatusCode::CREATED
        },
        &entry,
    ))
}

/// 403: a registry status is the bureau's to change.
fn status_is_the_bureaus() -> Problem {
    Problem::forbidden(
        "registry statuses (suspended, blacklisted, revoked, approved, rejected) are changed by the bureau only",
    )
}

/// What a district officer may change on an institution: only whether their
/// own district is among its filed districts. Everything else, status above
/// all (`suspended`, `blacklisted`), is the bureau's. A new entry an officer
/// creates is `filed` in their district alone.
fn officer_institution_change(
    own: AreaCode,
    before: Option<&Institution>,
    after: &Institution,
) -> Result<(), Problem> {
    let without_own = |i: &Institution| {
        let mut i = i.clone();
        i.filed_districts.retain(|d| *d != own);
        i.filed_districts.sort();
        i.filed_districts.dedup();
        i
    };
    match before {
        None => {
            if after.status != InstitutionStatus::Filed {
                return Err(status_is_the_bureaus());
            }
            if after.filed_districts.iter().any(|d| *d != own) || after.filed_districts.is_empty() {
                return Err(Problem::forbidden(
                    "a district officer files institutions in their own district only",
                ));
            }
            Ok(())
        }
        Some(b) => {
            if b.status != after.status {
                return Err(status_is_the_bureaus());
            }
            if without_own(b) != without_own(after) {
                return Err(Problem::forbidden(
                    "a district officer may add or remove only their own district on an institution",
                ));
            }
            Ok(())
        }
    }
}

fn registry_put<K: KeyValue>(
    env: &Env<'_, K>,
    req: &Request,
    m: &Matched<Route>,
    who: &Principal,
) -> Result<Response, Problem> {
    who.require(&[Role::DistrictOfficer, Role::BureauAdmin])?;
    let kind = registry_kind(&m.params["kind"])?;
    let id = m.params["id"].clone();
    if !registry_id_ok(&id) {
        return Err(
            Problem::invalid("registry ids are 1 to 64 letters, digits, - or _")
                .field("id", "1 to 64 letters, digits, - or _"),
        );
    }
    // The bureau changes anything; a district officer is held to their district
    // and may not change a status (rules REG-DISTRICT, REG-STATUS).
    let officer = match who.role() {
        Role::DistrictOfficer => who.claims.district,
        _ => None,
    };
    idempotent::run(env, req, "registry.put", who, || match kind {
        reg::Kind::Institution => put_entry::<K, Institution>(
            env,
            req,
            &id,
            who,
            |i| {
                if !policy::text::filled(&i.name, 200) {
                    return Err(Problem::invalid("name must be 1 to 200 characters")
                        .field("name", "1 to 200 characters, not all blank"));
                }
                Ok(())
            },
            |before, after| match officer {
                Some(own) => officer_institution_change(own, before, after),
                None => Ok(()),
            },
        ),
        reg::Kind::Trainer => put_entry::<K, Trainer>(
            env,
            req,
            &id,
            who,
            |t| {
                if !policy::text::filled(&t.name, 50) {
                    Err(Problem::invalid("name must be 1 to 50 characters")
                        .field("name", "1 to 50 characters, not all blank"))
                } else {
                    Ok(())
                }
            },
            |before, after| {
                let was = before.map_or(TrainerStatus::Registered, |b| b.status);
                if officer.is_some() && after.status != was {
                    Err(status_is_the_bureaus())
                } else {
                    Ok(())
                }
            },
        ),
        reg::Kind::Courseware => put_entry::<K, Courseware>(
            env,
            req,
            &id,
            who,
            |_| Ok(()),
            |before, after| {
                let was = before.map_or(CoursewareStatus::Pending, |b| b.status);
                if officer.is_some() && after.status != was {
                    Err(status_is_the_bureaus())
                } else {
                    Ok(())
                }
            },
        ),
        reg::Kind::Textbook => put_entry::<K, CatalogueTextbook>(
            env,
            req,
            &id,
            who,
            |b| {
                if policy::ids::isbn_ok(&b.isbn) {
                    Ok(())
                } else {
                    Err(Problem::invalid("isbn has a wrong check digit")
                        .field("isbn", "not a valid ISBN"))
                }
            },
            |_, _| Ok(()),
        ),
    })
}

fn registry_get<K: KeyValue>(
    env: &Env<'_, K>,
    m: &Matched<Route>,
    who: &Principal,
) -> Result<Response, Problem> {
    who.require(&[Role::DistrictOfficer, Role::BureauAdmin])?;
    let id = m.params["id"].as_str();
    let not_found = || Problem::not_found("no registry entry with this id");
    let value = match registry_kind(&m.params["kind"])? {
        reg::Kind::Institution => {
            serde_json::to_value(reg::get::<Institution>(env.kv, id)?.ok_or_else(not_found)?)
        }
        reg::Kind::Trainer => {
            serde_json::to_value(reg::get::<Trainer>(env.kv, id)?.ok_or_else(not_found)?)
        }
        reg::Kind::Courseware => {
            serde_json::to_value(reg::get::<Courseware>(env.kv, id)?.ok_or_else(not_found)?)
        }
        reg::Kind::Textbook => {
            serde_json::to_value(reg::get::<CatalogueTextbook>(env.kv, id)?.ok_or_else(not_found)?)
        }
    }
    .expect("serialises");
    Ok(respond(StatusCode::OK, &value))
}

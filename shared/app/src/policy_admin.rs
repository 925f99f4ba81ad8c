//! The bureau runs its own policy: read and change the policy data (issue 16).
//! Its own component (`policy-admin`), so that class validation's stays small.
//!
//! | route | roles |
//! | --- | --- |
//! | `GET /api/v1/admin/policy` | bureau, district officer |
//! | `GET /api/v1/admin/policy/versions` | bureau, district officer |
//! | `GET /api/v1/admin/policy/versions/{version}` | bureau, district officer |
//! | `POST /api/v1/admin/policy/import` | bureau |
//! | `POST /api/v1/admin/policy/parameters/{name}/values` | bureau |
//! | `PUT /api/v1/admin/policy/occupations/{code}` | bureau |
//! | `PUT /api/v1/admin/policy/projects/{id}` | bureau |
//! | `POST /api/v1/admin/policy/subsidies` | bureau |
//! | `PUT /api/v1/admin/policy/calendar/{year}` | bureau |
//! | `PUT /api/v1/admin/policy/targets` | bureau |
//! | `PUT /api/v1/admin/policy/topics` | bureau |
//!
//! Every change makes a new version (201, `Location` of the version); a
//! change that leaves the data as it is answers 200 with `changed: false`.
//! What the change may be is decided by `policy::data` (422 naming the
//! field, 404 for an unknown parameter, 409 `policy_change_retroactive` for a
//! change that would alter decisions already made without `retroactive:
//! true`); the store keeps the versions and audits each one.

use chrono::NaiveDate;
use http::Method;
use http::StatusCode;
use policy::calendar::CalendarYear;
use policy::catalogue::{AssessmentBody, Occupation, Project};
use policy::data::{DistrictTarget, Edit, EditError, ProgrammeTarget, Topics};
use policy::params::DatedValue;
use policy::reference::Topic;
use policy::vouchers::SubsidyEntry;
use serde::Deserialize;
use serde_json::json;
use store::KeyValue;
use store::UpdateError;
use store::policy::{self as sp, ChangeInfo, Refusal};
use web::json::{self, respond};
use web::router::{Matched, Router, query};
use web::{Env, Principal, Problem, Request, Response, Role};

/// The policy routes (a part of the admin module's router).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// The version in force.
    Current,
    /// Metadata of the versions, newest first.
    Versions,
    /// One version.
    Version,
    /// Import the shipped defaults as version 1.
    Import,
    /// Add a dated value to a parameter.
    ParameterValue,
    /// Add or change an occupation.
    Occupation,
    /// Add or change a project (SYB, 网络创业).
    Project,
    /// Add a dated subsidy standard.
    Subsidy,
    /// Load a year's calendar.
    Calendar,
    /// Load the targets.
    Targets,
    /// The topics of CO-TOPICS.
    Topics,
}

/// The router of the policy-admin component.
pub fn router() -> Router<Route> {
    Router::new()
        .add(Method::GET, "/api/v1/admin/policy", Route::Current)
        .add(
            Method::GET,
            "/api/v1/admin/policy/versions",
            Route::Versions,
        )
        .add(
            Method::GET,
            "/api/v1/admin/policy/versions/{version}",
            Route::Version,
        )
        .add(Method::POST, "/api/v1/admin/policy/import", Route::Import)
        .add(
            Method::POST,
            "/api/v1/admin/policy/parameters/{name}/values",
            Route::ParameterValue,
        )
        .add(
            Method::PUT,
            "/api/v1/admin/policy/occupations/{code}",
            Route::Occupation,
        )
        .add(
            Method::PUT,
            "/api/v1/admin/policy/projects/{id}",
            Route::Project,
        )
        .add(
            Method::POST,
            "/api/v1/admin/policy/subsidies",
            Route::Subsidy,
        )
        .add(
            Method::PUT,
            "/api/v1/admin/policy/calendar/{year}",
            Route::Calendar,
        )
        .add(Method::PUT, "/api/v1/admin/policy/targets", Route::Targets)
        .add(Method::PUT, "/api/v1/admin/policy/topics", Route::Topics)
}

/// Handles one request of the policy-admin component.
pub fn handle<K: KeyValue>(env: &Env<'_, K>, req: &Request) -> Response {
    web::finish(route(env, req))
}

fn route<K: KeyValue>(env: &Env<'_, K>, req: &Request) -> Result<Response, Problem> {
    let m = router().at(req.method(), req.uri().path())?;
    let who = env.authenticate(req)?;
    dispatch(env, req, &m, &who)
}

/// Longest reason a change may give.
pub const MAX_REASON: usize = 500;

/// Body of `POST /api/v1/admin/policy/import`: nothing (`{}`), or no body.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportRequest {}

/// Body of `POST /api/v1/admin/policy/parameters/{name}/values`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParameterValueRequest {
    /// First day the value holds.
    pub since: NaiveDate,
    /// The value.
    pub value: i64,
    /// Where it comes from (a notice, a decision of the bureau).
    pub reference: String,
    /// Required when the value holds on or before today and changes decisions already made.
    #[serde(default)]
    pub retroactive: bool,
    /// Why.
    #[serde(default)]
    pub reason: Option<String>,
}

/// Body of `PUT /api/v1/admin/policy/occupations/{code}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OccupationRequest {
    /// The entry.
    pub occupation: Occupation,
    /// Assessment bodies it names that the catalogue does not describe yet (or renames).
    #[serde(default)]
    pub assessment_bodies: Vec<AssessmentBody>,
    /// Why.
    #[serde(default)]
    pub reason: Option<String>,
}

/// Body of `PUT /api/v1/admin/policy/projects/{id}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectRequest {
    /// The entry.
    pub project: Project,
    /// Assessment bodies it names that the catalogue does not describe yet.
    #[serde(default)]
    pub assessment_bodies: Vec<AssessmentBody>,
    /// Why.
    #[serde(default)]
    pub reason: Option<String>,
}

/// Body of `POST /api/v1/admin/policy/subsidies`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubsidyRequest {
    /// The standard.
    pub subsidy: SubsidyEntry,
    /// Required when it holds on or before today and changes amounts already decided.
    #[serde(default)]
    pub retroactive: bool,
    /// Why.
    #[serde(default)]
    pub reason: Option<String>,
}

/// Body of `PUT /api/v1/admin/policy/calendar/{year}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarRequest {
    /// The notice (国办发明电〔…〕…号).
    pub notice: String,
    /// Days off: `YYYY-MM-DD` or `YYYY-MM-DD..YYYY-MM-DD`.
    pub days_off: Vec<String>,
    /// Weekend days that are working days (调休).
    pub working_weekends: Vec<String>,
    /// Required when the year has begun and its days change.
    #[serde(default)]
    pub retroactive: bool,
    /// Why.
    #[serde(default)]
    pub reason: Option<String>,
}

/// Body of `PUT /api/v1/admin/policy/targets`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetsRequest {
    /// District targets per year.
    #[serde(default)]
    pub district: Vec<DistrictTarget>,
    /// Programme targets per period.
    #[serde(default)]
    pub programme: Vec<ProgrammeTarget>,
    /// Why.
    #[serde(default)]
    pub reason: Option<String>,
}

/// Body of `PUT /api/v1/admin/policy/topics`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicsRequest {
    /// The topics every schedule must include.
    pub required: Vec<Topic>,
    /// Where the list comes from.
    pub reference: String,
    /// Why.
    #[serde(default)]
    pub reason: Option<String>,
}

/// Handles a policy route for `who`.
fn dispatch<K: KeyValue>(
    env: &Env<'_, K>,
    req: &Request,
    m: &Matched<Route>,
    who: &Principal,
) -> Result<Response, Problem> {
    match m.route {
        Route::Current | Route::Versions | Route::Version => {
            who.require(&[Role::BureauAdmin, Role::DistrictOfficer])?;
        }
        _ => who.require(&[Role::BureauAdmin])?,
    }
    match m.route {
        Route::Current => current(env, req),
        Route::Versions => versions(env, req),
        Route::Version => version(env, req, &m.params["version"]),
        Route::Import => {
            no_query(req)?;
            if !req.body().is_empty() {
                let _: ImportRequest = json::body(req)?;
            }
            web::idempotent::run(env, req, "policy.import", who, || {
                let had = sp::current(env.kv)?.is_some();
                let v = sp::ensure_imported(env.kv, &who.actor(), env.now)?;
                let status = if had {
                    StatusCode::OK
                } else {
                    StatusCode::CREATED
                };
                Ok(version_answer(status, &v, !had))
            })
        }
        _ => web::idempotent::run(env, req, "policy.change", who, || {
            no_query(req)?;
            let (edit, retroactive, reason) = edit_of(req, m)?;
            change(env, who, &edit, retroactive, reason)
        }),
    }
}

fn no_query(req: &Request) -> Result<(), Problem> {
    match query(req).keys().next() {
        Some(k) => Err(Problem::unknown_parameter(k, "this route takes no query")),
        None => Ok(()),
    }
}

fn reason_ok(reason: &Option<String>) -> Result<(), Problem> {
    match reason {
        Some(r) if !policy::text::filled(r, MAX_REASON) => Err(Problem::invalid(format!(
            "reason must be 1 to {MAX_REASON} characters"
        ))
        .field(
            "reason",
            format!("1 to {MAX_REASON} characters, not all blank"),
        )),
        _ => Ok(()),
    }
}

/// The edit a request asks for, whether it says it may reach back, and its reason.
fn edit_of(req: &Request, m: &Matched<Route>) -> Result<(Edit, bool, Option<String>), Problem> {
    let out = match m.route {
        Route::ParameterValue => {
            let b: ParameterValueRequest = json::body(req)?;
            let value = DatedValue {
                since: b.since,
                value: b.value,
                reference: b.reference,
            };
            let edit = Edit::ParameterValue {
                name: m.params["name"].clone(),
                value,
            };
            (edit, b.retroactive, b.reason)
        }
        Route::Occupation => {
            let b: OccupationRequest = json::body(req)?;
            if b.occupation.code.as_str() != m.params["code"] {
                return Err(
                    Problem::invalid("the code in the path and in the body differ")
                        .field("occupation.code", "must equal the code in the path"),
                );
            }
            let edit = Edit::Occupation {
                occupation: b.occupation,
                assessment_bodies: b.assessment_bodies,
            };
            (edit, false, b.reason)
        }
        Route::Project => {
            let b: ProjectRequest = json::body(req)?;
            if b.project.id != m.params["id"] {
                return Err(
                    Problem::invalid("the id in the path and in the body differ")
                        .field("project.id", "must equal the id in the path"),
                );
            }
            let edit = Edit::Project {
                project: b.project,
                assessment_bodies: b.assessment_bodies,
            };
            (edit, false, b.reason)
        }
        Route::Subsidy => {
            let b: SubsidyRequest = json::body(req)?;
            (Edit::Subsidy(b.subsidy), b.retroactive, b.reason)
        }
        Route::Calendar => {
            let year = m.params["year"]
                .parse::<i32>()
                .ok()
                .filter(|y| policy::calendar::YEARS.contains(y))
                .ok_or_else(|| {
                    Problem::invalid("year must be a year from 2000 to 2100")
                        .field("year", "2000 to 2100")
                })?;
            let b: CalendarRequest = json::body(req)?;
            let entry = CalendarYear {
                year,
                notice: b.notice,
                days_off: b.days_off,
                working_weekends: b.working_weekends,
            };
            (Edit::CalendarYear(entry), b.retroactive, b.reason)
        }
        Route::Targets => {
            let b: TargetsRequest = json::body(req)?;
            let t = policy::data::Targets {
                district: b.district,
                programme: b.programme,
            };
            (Edit::Targets(t), false, b.reason)
        }
        Route::Topics => {
            let b: TopicsRequest = json::body(req)?;
            let t = Topics {
                required: b.required,
                reference: b.reference,
            };
            (Edit::Topics(t), false, b.reason)
        }
        Route::Current | Route::Versions | Route::Version | Route::Import => {
            unreachable!("not a change")
        }
    };
    reason_ok(&out.2)?;
    Ok(out)
}

fn change<K: KeyValue>(
    env: &Env<'_, K>,
    who: &Principal,
    edit: &Edit,
    retroactive: bool,
    reason: Option<String>,
) -> Result<Response, Problem> {
    let info = ChangeInfo {
        action: edit.action().to_string(),
        subject: edit.subject(),
        reason,
        by: who.actor(),
    };
    let today = env.today();
    match sp::change(env.kv, &info, env.now, |d| {
        d.apply(edit, today, retroactive)
    }) {
        Ok(v) => Ok(version_answer(StatusCode::CREATED, &v.meta, true)),
        Err(UpdateError::Store(e)) => Err(e.into()),
        Err(UpdateError::Refused(Refusal::Rule(EditError::Unchanged))) => {
            let v = sp::ensure_imported(env.kv, &who.actor(), env.now)?;
            Ok(version_answer(StatusCode::OK, &v, false))
        }
        Err(UpdateError::Refused(Refusal::Rule(e))) => Err(edit_problem(e)),
        Err(UpdateError::Refused(Refusal::TooLarge { bytes })) => Err(Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "policy_too_large",
            "政策数据超过存储上限",
            format!(
                "the policy data would take {bytes} bytes, more than the {} a record may hold",
                sp::MAX_POLICY_BYTES
            ),
        )
        .with("limit_bytes", sp::MAX_POLICY_BYTES)),
    }
}

/// The problem details of an edit the rules refused.
pub fn edit_problem(e: EditError) -> Problem {
    match e {
        EditError::Invalid(errs) => {
            let mut p = Problem::invalid(format!(
                "{} field(s) are wrong: {}",
                errs.len(),
                errs.first().map(|e| e.field.as_str()).unwrap_or("")
            ));
            for e in errs {
                p = p.field(e.field, e.detail);
            }
            p
        }
        EditError::Unknown(what) => Problem::not_found(what),
        EditError::Retroactive { field, detail } => Problem::conflict(
            "policy_change_retroactive",
            "该变更将改变已作出的决定：确需追溯的，请在请求中写明 retroactive: true",
            format!("{detail}; send retroactive: true to make the change anyway (it is audited as retroactive)"),
        )
        .field(field, "on or before today: needs retroactive: true"),
        EditError::Unchanged => Problem::internal("an unchanged edit is not a problem"),
    }
}

/// A version's metadata as the API shows it.
fn meta_view(v: &sp::VersionMeta) -> serde_json::Value {
    json!({
        "version": v.version,
        "digest": v.digest,
        "previous": v.previous,
        "action": v.action,
        "subject": v.subject,
        "retroactive": v.retroactive,
        "reason": v.reason,
        "at": v.at,
        "by": v.by,
        "href": format!("/api/v1/admin/policy/versions/{}", v.version),
    })
}

fn version_answer(status: StatusCode, v: &sp::VersionMeta, changed: bool) -> Response {
    let mut body = meta_view(v);
    body["changed"] = json!(changed);
    let mut res = respond(status, &body);
    if changed
        && let Ok(h) =
            http::HeaderValue::from_str(&format!("/api/v1/admin/policy/versions/{}", v.version))
    {
        res.headers_mut().insert(http::header::LOCATION, h);
    }
    res
}

/// A version as the API shows it, serialised straight from the data (no JSON tree).
#[derive(serde::Serialize)]
struct VersionView<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    imported: Option<bool>,
    meta: serde_json::Value,
    data: &'a policy::PolicyData,
}

fn current<K: KeyValue>(env: &Env<'_, K>, req: &Request) -> Result<Response, Problem> {
    no_query(req)?;
    match sp::current(env.kv)? {
        Some(v) => Ok(respond(
            StatusCode::OK,
            &VersionView {
                imported: Some(true),
                meta: meta_view(&v.meta),
                data: &v.data,
            },
        )),
        None => {
            let p = policy::Policy::shipped();
            Ok(respond(
                StatusCode::OK,
                &VersionView {
                    imported: Some(false),
                    meta: json!({ "version": p.reference.version, "digest": p.reference.digest, "action": "policy.imported", "subject": "shared/policy/data" }),
                    data: &p.data,
                },
            ))
        }
    }
}

fn versions<K: KeyValue>(env: &Env<'_, K>, req: &Request) -> Result<Response, Problem> {
    let q = query(req);
    for k in q.keys() {
        if !["before", "limit"].contains(&k.as_str()) {
            return Err(Problem::unknown_parameter(k, "before or limit"));
        }
    }
    let limit = web::paging::limit(q.get("limit").map(String::as_str), 20, 50)?;
    let Some(cur) = sp::current(env.kv)? else {
        return Ok(respond(
            StatusCode::OK,
            &json!({ "items": [], "next_before": null }),
        ));
    };
    let newest = match q.get("before") {
        None => cur.meta.version,
        Some(b) => b
            .parse::<u64>()
            .ok()
            .filter(|b| *b >= 1)
            .map(|b| (b - 1).min(cur.meta.version))
            .ok_or_else(|| {
                Problem::invalid("before must be a version number").field("before", "1 or more")
            })?,
    };
    let items = sp::versions(env.kv, newest, limit)?;
    let next = items.last().map(|m| m.version).filter(|v| *v > 1);
    Ok(respond(
        StatusCode::OK,
        &json!({
            "items": items.iter().map(meta_view).collect::<Vec<_>>(),
            "next_before": next,
        }),
    ))
}

fn version<K: KeyValue>(env: &Env<'_, K>, req: &Request, n: &str) -> Result<Response, Problem> {
    no_query(req)?;
    let not_found = || Problem::not_found("no policy version with this number");
    let n = n
        .parse::<u64>()
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(not_found)?;
    let v = sp::version(env.kv, n)?.ok_or_else(not_found)?;
    Ok(respond(
        StatusCode::OK,
        &VersionView {
            imported: None,
            meta: meta_view(&v.meta),
            data: &v.data,
        },
    ))
}

//! 电话抽查: routes of the spot-checks component.
//!
//! | route | roles |
//! | --- | --- |
//! | `POST /api/v1/spot-checks/runs` | scheduler, bureau |
//! | `GET /api/v1/spot-checks/runs/{id}` | any authenticated caller (no personal data) |
//! | `PUT /api/v1/spot-checks/inspectors/{sub}` | bureau |
//! | `GET /api/v1/spot-checks/inspectors` | bureau, scheduler |
//! | `GET /api/v1/spot-checks/tasks/mine` | inspector (registered and active) |
//! | `POST /api/v1/spot-checks/tasks/{id}/calls` | inspector (the task's own, registered and active) |
//! | `GET /api/v1/spot-checks/findings` | bureau, district officer (own district) |
//! | `GET /api/v1/spot-checks/findings/{id}` | bureau, district officer (own district), institution (own class) |
//! | `POST /api/v1/spot-checks/findings/{id}/rectification` | district officer of the class's district |
//! | `GET /api/v1/spot-checks/classes/{id}/hold` | bureau, district officer (own district), institution (own class) |
//! | `GET /api/v1/spot-checks/proposals` | bureau |
//!
//! A run is advanced one page per `POST …/runs` (the scheduler calls until
//! `done`); the same window is the same run. Inspectors are known by the `sub`
//! of their `inspector` token, registered by the bureau with
//! `PUT …/inspectors/{sub}`; a run assigns its tasks to the inspectors active
//! when its seed is fixed. Full phone numbers appear only in
//! `GET …/tasks/mine`, only for the caller's own pending tasks, and each such
//! response writes an audit event naming the tasks. Every state-changing
//! route honours `Idempotency-Key`.

use chrono::{DateTime, Utc};
use http::{Method, StatusCode};
use policy::Parameters;
use policy::sampling::protocol::{self, Viewer};
use policy::sampling::{self, TaskState};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use store::KeyValue;
use store::classes;
use store::findings::{self, CloseError, Finding, Rectification};
use store::index::Position;
use store::spot_checks::{
    self as sc, Advance, CallError, CallReport, ClassTasks, FrozenClass, MyTask, Progress, Run,
    RunError,
};
use web::json::{self, respond};
use web::router::{Matched, Router, query};
use web::{Env, Principal, Problem, Request, Response, Role, idempotent, paging};

/// The routes of this component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Start or continue a run.
    Advance,
    /// A published run.
    GetRun,
    /// Register or change an inspector.
    PutInspector,
    /// List inspectors.
    ListInspectors,
    /// The caller's call list.
    MyTasks,
    /// Record a call attempt.
    Call,
    /// List findings.
    ListFindings,
    /// Read a finding.
    GetFinding,
    /// Close a finding with a rectification.
    Rectify,
    /// A class's hold.
    Hold,
    /// Blacklist proposals.
    Proposals,
}

/// The router of this component.
pub fn router() -> Router<Route> {
    Router::new()
        .add(Method::POST, "/api/v1/spot-checks/runs", Route::Advance)
        .add(Method::GET, "/api/v1/spot-checks/runs/{id}", Route::GetRun)
        .add(
            Method::PUT,
            "/api/v1/spot-checks/inspectors/{sub}",
            Route::PutInspector,
        )
        .add(
            Method::GET,
            "/api/v1/spot-checks/inspectors",
            Route::ListInspectors,
        )
        .add(
            Method::GET,
            "/api/v1/spot-checks/tasks/mine",
            Route::MyTasks,
        )
        .add(
            Method::POST,
            "/api/v1/spot-checks/tasks/{id}/calls",
            Route::Call,
        )
        .add(
            Method::GET,
            "/api/v1/spot-checks/findings",
            Route::ListFindings,
        )
        .add(
            Method::GET,
            "/api/v1/spot-checks/findings/{id}",
            Route::GetFinding,
        )
        .add(
            Method::POST,
            "/api/v1/spot-checks/findings/{id}/rectification",
            Route::Rectify,
        )
        .add(
            Method::GET,
            "/api/v1/spot-checks/classes/{id}/hold",
            Route::Hold,
        )
        .add(
            Method::GET,
            "/api/v1/spot-checks/proposals",
            Route::Proposals,
        )
}

/// Handles one request.
pub fn handle<K: KeyValue>(env: &Env<'_, K>, req: &Request) -> Response {
    web::finish(dispatch(env, req))
}

fn dispatch<K: KeyValue>(env: &Env<'_, K>, req: &Request) -> Result<Response, Problem> {
    let m = router().at(req.method(), req.uri().path())?;
    let who = env.authenticate(req)?;
    match m.route {
        Route::Advance => advance(env, req, &who),
        Route::GetRun => get_run(env, req, &m, &who),
        Route::PutInspector => put_inspector(env, req, &m, &who),
        Route::ListInspectors => list_inspectors(env, &who),
        Route::MyTasks => my_tasks(env, req, &who),
        Route::Call => call(env, req, &m, &who),
        Route::ListFindings => list_findings(env, req, &who),
        Route::GetFinding => get_finding(env, &m, &who),
        Route::Rectify => rectify(env, req, &m, &who),
        Route::Hold => hold(env, &m, &who),
        Route::Proposals => proposals(env, req, &who),
    }
}

/// The parameters of the policy in force (one read of the current policy record).
fn params<K: KeyValue>(env: &Env<'_, K>) -> Result<Parameters, Problem> {
    Ok(store::policy::current_policy(env.kv)?
        .into_owned()
        .data
        .parameters)
}

fn only_known_query(req: &Request, known: &[&str]) -> Result<(), Problem> {
    for k in query(req).keys() {
        if !known.contains(&k.as_str()) {
            return Err(Problem::unknown_parameter(
                k,
                "not a parameter of this route",
            ));
        }
    }
    Ok(())
}

fn cursor_and_limit(
    req: &Request,
    default: usize,
    max: usize,
) -> Result<(Position, usize), Problem> {
    let q = query(req);
    let limit = paging::limit(q.get("limit").map(String::as_str), default, max)?;
    let from = q
        .get("cursor")
        .map(|c| paging::decode(c))
        .transpose()?
        .unwrap_or_default();
    Ok((from, limit))
}

// ---------------------------------------------------------------------------
// Runs.

/// Body of `POST /api/v1/spot-checks/runs`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdvanceRequest {
    /// The run window in China Standard Time: a day `2022-06-20` or an ISO
    /// week `2022-W25`, as `sc_window_days` says.
    pub window: String,
    /// A public value (digits drawn in public, a lottery result), accepted
    /// only once the population is frozen (SC-DRAW). `seed` is its old name.
    #[serde(default, alias = "seed")]
    pub public_value: Option<String>,
    /// Classes per page (1 to 500, default 100); only the first call of a run sets it.
    #[serde(default)]
    pub page_size: Option<usize>,
}

fn run_problem(e: RunError) -> Problem {
    match e {
        RunError::Store(s) => s.into(),
        RunError::SeedConflict => Problem::conflict(
            "seed_conflict",
            "该抽查批次已有不同的公开随机数，随机种子不可更改",
            "SC-DRAW: this run already has a different public value (or its seed is fixed); the seed of a run never changes",
        ),
        RunError::PublicValueTooEarly => Problem::conflict(
            "public_value_before_freeze",
            "学员名单冻结完成前不接受公开随机数",
            "SC-DRAW: a public value is accepted only after every class's population is frozen; advance the run until `frozen` is true, then give it",
        )
        .with("rule", "SC-DRAW"),
        RunError::NoInspectors => Problem::conflict(
            "no_inspectors",
            "尚未登记在岗的抽查员，无法确定随机种子",
            "the population is frozen but no active inspector is registered; register one and call again",
        ),
    }
}

fn progress_view(p: &Progress, params: &Parameters) -> Value {
    let r = &p.run;
    json!({
        "run": r.id,
        "created": p.created,
        "steps": p.steps,
        "phase": r.phase,
        "page_size": r.page_size,
        "freeze_pages": r.freeze_pages,
        "frozen": r.frozen,
        "classes": r.classes,
        "commitment": r.commitment,
        "public_value_until": r
            .frozen_at
            .filter(|_| r.seed.is_none())
            .map(|at| at + chrono::Duration::minutes(params.at_or_first(policy::params::names::SC_PUBLIC_VALUE_WAIT_MINUTES, r.evaluated_on).value)),
        "seed_fixed": r.seed.is_some(),
        "seed_source": r.seed.as_ref().map(|s| s.source),
        "drawn_pages": r.drawn_pages,
        "draw_pages": if r.frozen { Some(r.draw_pages()) } else { None },
        "tasks": r.tasks,
        "done": r.phase == sc::Phase::Done,
        "href": format!("/api/v1/spot-checks/runs/{}", r.id),
    })
}

fn advance<K: KeyValue>(
    env: &Env<'_, K>,
    req: &Request,
    who: &Principal,
) -> Result<Response, Problem> {
    who.require(&[Role::Scheduler, Role::BureauAdmin])?;
    idempotent::run(env, req, "spot_checks.advance", who, || {
        let body: AdvanceRequest = json::body(req)?;
        let params = params(env)?;
        let window = protocol::Window::parse_for(&body.window, &params, env.today())
            .map_err(|e| Problem::invalid(format!("window: {e}")).field("window", e.to_string()))?;
        if body
            .public_value
            .as_deref()
            .is_some_and(|s| !protocol::public_value_ok(s))
        {
            return Err(Problem::invalid(
                "public_value must be 1 to 256 printable ASCII characters",
            )
            .field("public_value", "1 to 256 printable ASCII characters"));
        }
        if body
            .page_size
            .is_some_and(|n| !(1..=sc::MAX_PAGE_SIZE).contains(&n))
        {
            return Err(
                Problem::invalid(format!("page_size must be 1 to {}", sc::MAX_PAGE_SIZE))
                    .field("page_size", format!("1 to {}", sc::MAX_PAGE_SIZE)),
            );
        }
        let progress = sc::advance(
            env.kv,
            &params,
            &Advance {
                window: window.id(),
                window_days: window.days(),
                public_value: body.public_value,
                page_size: body.page_size,
            },
            &who.actor(),
            env.now,
            env.today(),
            env.random,
        )
        .map_err(run_problem)?;
        Ok(respond(StatusCode::OK, &progress_view(&progress, &params)))
    })
}

/// What every token sees of a frozen class: its id, population digest and size.
fn public_view(c: &FrozenClass) -> Value {
    json!({
        "class_id": c.class_id,
        "population_digest": sampling::population_digest(&c.population()),
        "population_size": c.roster,
    })
}

/// A drawn class in full (its sample recomputable from its class seed).
fn drawn_view(run: &Run, c: &FrozenClass, t: &ClassTasks, closed: bool) -> Value {
    let population = c.population();
    json!({
        "class_id": c.class_id,
        "class_seed": run.class_seed(&c.class_id),
        "population_digest": sampling::population_digest(&population),
        "population_size": c.roster,
        "population": population,
        "sample_size": c.n,
        "size_rule": c.rule,
        "raised": c.raised,
        "sample": t.drawn(1),
        "second_sample": t.drawn(2),
        "calls_closed": closed,
        "tasks": t.tasks.iter().map(|k| json!({
            "task_id": k.id, "sample_id": k.sample_id, "round": k.round,
            "inspector": k.inspector, "state": k.state, "attempts": k.attempts.len(),
        })).collect::<Vec<_>>(),
    })
}

/// Who asks, as the visibility rule knows them.
fn viewer(who: &Principal) -> Viewer<'_> {
    match who.role() {
        Role::BureauAdmin => Viewer::Bureau,
        Role::DistrictOfficer => who
            .claims
            .district
            .as_ref()
            .map_or(Viewer::Other, |d| Viewer::District(d.code())),
        Role::Institution => who
            .claims
            .institution
            .as_ref()
            .map_or(Viewer::Other, |i| Viewer::Institution(i.as_str())),
        _ => Viewer::Other,
    }
}

/// The published form of a run (one page of its classes), as `who` may see
/// it (`GET …/runs/{id}`): the commitment, the run's state and each class's
/// population digest and size to every token; a class's sample to the
/// bureau, its district office, and its institution once every call of the
/// class in this run is closed (`classes`, recomputable); the run seed and
/// the revealed bytes to the bureau, and to everyone once every call of the
/// run is closed. The other classes are listed under `sealed`.
pub fn run_view(run: &Run, page: &sc::PublishedPage, who: &Principal, run_closed: bool) -> Value {
    let viewer = viewer(who);
    let shows_seed = run.seed.is_some() && protocol::sees_seed(viewer, run_closed);
    let mut classes = Vec::new();
    let mut sealed = Vec::new();
    for (c, t) in &page.drawn {
        let closed = t.tasks.iter().all(|k| k.state != TaskState::Pending);
        if protocol::sees_sample(viewer, &c.district, &c.institution, closed) {
            classes.push(drawn_view(run, c, t, closed));
        } else {
            sealed.push(public_view(c));
        }
    }
    json!({
        "run": run.id,
        "window_days": [run.window_days.0, run.window_days.1],
        "phase": run.phase,
        "algorithm": sampling::ALGORITHM,
        "algorithm_version": sampling::ALGORITHM_VERSION,
        "commitment": run.commitment,
        "frozen_at": run.frozen_at,
        "seed_fixed": run.seed.is_some(),
        "seed_source": run.seed.as_ref().map(|s| s.source),
        "seed_fixed_at": run.seed.as_ref().map(|s| s.fixed_at),
        "seed": run.seed.as_ref().filter(|_| shows_seed).map(|s| &s.value),
        "revealed": shows_seed.then_some(&run.committed),
        "public_value": run.public_value.as_ref().filter(|_| shows_seed),
        "calls_closed": run_closed,
        "started_at": run.started_at,
        "evaluated_on": run.evaluated_on,
        "parameters": run.parameters,
        "page_size": run.page_size,
        "frozen": run.frozen,
        "classes_frozen": run.classes,
        "drawn_pages": run.drawn_pages,
        "draw_pages": run.draw_pages(),
        "tasks": run.tasks,
        "inspectors": run.inspectors.len(),
        "classes": classes,
        "sealed": sealed,
        "undrawn": page.undrawn.iter().map(public_view).collect::<Vec<_>>(),
        "next_cursor": page.next.map(paging::encode),
    })
}

fn load_run<K: KeyValue>(env: &Env<'_, K>, id: &str) -> Result<Run, Problem> {
    if !sc::window_ok(id) {
        return Err(Problem::not_found("no such run"));
    }
    sc::get_run(env.kv, id)?.ok_or_else(|| Problem::not_found("no run with this id"))
}

fn get_run<K: KeyValue>(
    env: &Env<'_, K>,
    req: &Request,
    m: &Matched<Route>,
    who: &Principal,
) -> Result<Response, Problem> {
    only_known_query(req, &["cursor", "limit"])?;
    let run = load_run(env, &m.params["id"])?;
    let (from, limit) = cursor_and_limit(req, 200, 1000)?;
    let page = sc::published_page(env.kv, &run, from, limit)?;
    let closed = sc::run_closed(env.kv, &run)?;
    Ok(respond(StatusCode::OK, &run_view(&run, &page, who, closed)))
}

// ---------------------------------------------------------------------------
// Inspectors.

/// Body of `PUT /api/v1/spot-checks/inspectors/{sub}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InspectorRequest {
    /// Display name.
    pub name: String,
    /// Whether new runs assign tasks to them and they may see their call
    /// lists and record calls (default true; false takes effect at once).
    #[serde(default = "yes")]
    pub active: bool,
}

fn yes() -> bool {
    true
}

fn put_inspector<K: KeyValue>(
    env: &Env<'_, K>,
    req: &Request,
    m: &Matched<Route>,
    who: &Principal,
) -> Result<Response, Problem> {
    who.require(&[Role::BureauAdmin])?;
    let sub = m.params["sub"].clone();
    if !policy::registry::registry_id_ok(&sub) {
        return Err(
            Problem::invalid("an inspector is named by 1 to 64 letters, digits, - or _")
                .field("sub", "1 to 64 letters, digits, - or _"),
        );
    }
    idempotent::run(env, req, "spot_checks.inspector", who, || {
        let body: InspectorRequest = json::body(req)?;
        let name = body.name.trim();
        if !policy::text::filled(&body.name, 50) {
            return Err(Problem::invalid("name must be 1 to 50 characters")
                .field("name", "1 to 50 characters"));
        }
        let entry = sc::put_inspector(env.kv, &sub, name, body.active, &who.actor(), env.now)?;
        Ok(respond(
            StatusCode::OK,
            &json!({"sub": sub, "name": entry.name, "active": entry.active, "updated_at": entry.updated_at}),
        ))
    })
}

fn list_inspectors<K: KeyValue>(env: &Env<'_, K>, who: &Principal) -> Result<Response, Problem> {
    who.require(&[Role::BureauAdmin, Role::Scheduler])?;
    let all = sc::inspectors(env.kv)?;
    let items: Vec<Value> = all
        .iter()
        .map(|(sub, i)| json!({"sub": sub, "name": i.name, "active": i.active, "updated_at": i.updated_at}))
        .collect();
    Ok(respond(StatusCode::OK, &json!({ "items": items })))
}

// ---------------------------------------------------------------------------
// Call lists and calls.

fn task_view(t: &MyTask, full_phone: bool) -> Value {
    let app = &t.class.application;
    let trainee = app.roster.get(t.task.roster_line);
    let phone = trainee.map(|tr| {
        if full_phone {
            tr.mobile.expose().to_string()
        } else {
            tr.mobile.masked()
        }
    });
    json!({
        "task_id": t.task.id,
        "class_id": t.class.id,
        "class_title": app.title,
        "institution": app.institution,
        "district": app.district,
        "start_date": app.start_date,
        "end_date": app.end_date,
        "trainers": app.trainers.iter().map(|x| &x.name).collect::<Vec<_>>(),
        "site": app.sessions.iter().find_map(|s| s.site.clone()),
        "roster_line": t.task.roster_line + 1,
        "sample_id": t.task.sample_id,
        "trainee_name": trainee.map(|tr| &tr.name),
        "phone": phone,
        "phone_masked": !full_phone,
        "round": t.task.round,
        "state": t.task.state,
        "attempts": t.task.attempts.len(),
        "finding": t.task.finding,
    })
}

/// 403 unless `who` is an inspector whose registry entry is active now. Read
/// on every request that shows or uses phone numbers, so a deactivated
/// inspector loses them at once, whatever their token says.
fn require_active_inspector<K: KeyValue>(env: &Env<'_, K>, who: &Principal) -> Result<(), Problem> {
    who.require(&[Role::Inspector])?;
    if sc::inspectors(env.kv)?
        .get(&who.claims.sub)
        .is_some_and(|i| i.active)
    {
        Ok(())
    } else {
        Err(Problem::new(
            StatusCode::FORBIDDEN,
            "inspector_inactive",
            "抽查员未登记或已停用",
            "the inspector is not registered or has been deactivated",
        ))
    }
}

fn my_tasks<K: KeyValue>(
    env: &Env<'_, K>,
    req: &Request,
    who: &Principal,
) -> Result<Response, Problem> {
    require_active_inspector(env, who)?;
    only_known_query(req, &["run", "cursor", "limit"])?;
    let q = query(req);
    let run_id = match q.get("run") {
        Some(r) => r.clone(),
        None => sc::latest_run(env.kv)?.ok_or_else(|| Problem::not_found("no run yet"))?,
    };
    let run = load_run(env, &run_id)?;
    let (from, limit) = cursor_and_limit(req, 20, 100)?;
    let page = sc::tasks_of(env.kv, &run, &who.claims.sub, from, limit)?;
    let mut shown = Vec::new();
    let items: Vec<Value> = page
        .tasks
        .iter()
        .map(|t| {
            let full = t.task.state == TaskState::Pending;
            if full {
                shown.push(t.task.id.clone());
            }
            task_view(t, full)
        })
        .collect();
    if !shown.is_empty() {
        sc::audit_phone_view(env.kv, &who.actor(), &run.id, &shown, env.now)?;
    }
    Ok(respond(
        StatusCode::OK,
        &json!({"run": run.id, "items": items, "next_cursor": page.next.map(paging::encode)}),
    ))
}

fn call_problem(e: CallError) -> Problem {
    match e {
        CallError::Store(s) => s.into(),
        CallError::NotFound => Problem::not_found("no such task"),
        CallError::NotYours => Problem::new(
            StatusCode::FORBIDDEN,
            "task_not_assigned",
            "该抽查任务未分配给您",
            "the task is assigned to another inspector",
        ),
        CallError::Closed(state) => Problem::conflict(
            "task_closed",
            "该抽查任务已结束",
            format!(
                "the task is {}; no further attempt is recorded",
                match state {
                    TaskState::Pending => "pending",
                    TaskState::Completed => "completed",
                    TaskState::Unreachable => "unreachable",
                }
            ),
        )
        .with("state", state),
    }
}

/// The id of the finding a denial on `task` opens: `F-` and 20 hex digits of
/// a keyed digest of the task id. Task ids name roster lines (and there are
/// only so many lines to try), so a finding id shown to the institution must
/// not be a plain function of one.
fn finding_id<K: KeyValue>(env: &Env<'_, K>, task: &str) -> String {
    let digest = env
        .hasher()
        .fingerprint(format!("finding\n{task}").as_bytes());
    format!("F-{}", &digest[..20])
}

/// A finding as `who` may see it: never the person ref; for an institution,
/// neither the roster line nor the run and task that found it, which would
/// name the trainee who reported it.
fn finding_view(f: &Finding, who: &Principal) -> Value {
    let mut v = serde_json::to_value(f).expect("serialises");
    if let Some(o) = v.as_object_mut() {
        o.remove("person");
        if who.role() == Role::Institution {
            o.remove("roster_line");
            o.remove("source");
        }
    }
    v["rule"] = json!(sampling::SC_DENY.id);
    v
}

fn call<K: KeyValue>(
    env: &Env<'_, K>,
    req: &Request,
    m: &Matched<Route>,
    who: &Principal,
) -> Result<Response, Problem> {
    require_active_inspector(env, who)?;
    let id = m.params["id"].clone();
    idempotent::run(env, req, "spot_checks.call", who, || {
        let report: CallReport = json::body(req)?;
        if report.notes.chars().count() > 2000 {
            return Err(Problem::invalid("notes are at most 2000 characters")
                .field("notes", "at most 2000 characters"));
        }
        if report
            .notes
            .split(|c: char| !c.is_ascii_digit())
            .any(|run| run.len() >= 11)
        {
            return Err(
                Problem::invalid("notes must not contain phone or ID numbers")
                    .field("notes", "no run of 11 or more digits"),
            );
        }
        if report.at > env.now + chrono::Duration::minutes(5) {
            return Err(
                Problem::invalid("a call cannot be recorded before it happens")
                    .field("at", "must not be in the future"),
            );
        }
        let finding_id = |task: &str| finding_id(env, task);
        let params = params(env)?;
        let out = sc::record_call(
            env.kv,
            &params,
            &id,
            &report,
            &finding_id,
            &who.actor(),
            env.now,
        )
        .map_err(call_problem)?;
        Ok(respond(
            StatusCode::OK,
            &json!({
                "task_id": out.task.id,
                "state": out.task.state,
                "attempts": out.task.attempts.len(),
                "replay": out.replay,
                "second_sample_drawn": out.second_sample,
                "finding": out.finding.as_ref().map(|f| finding_view(f, who)),
                "blacklist_proposed": out.blacklist_proposed,
            }),
        ))
    })
}

// ---------------------------------------------------------------------------
// Findings, holds, proposals.

fn list_findings<K: KeyValue>(
    env: &Env<'_, K>,
    req: &Request,
    who: &Principal,
) -> Result<Response, Problem> {
    who.require(&[Role::BureauAdmin, Role::DistrictOfficer])?;
    only_known_query(req, &["cursor", "limit"])?;
    let name = match who.claims.district {
        Some(d) if who.role() == Role::DistrictOfficer => sc::district_findings_index(d.code()),
        _ => sc::FINDINGS_INDEX.to_string(),
    };
    let (from, limit) = cursor_and_limit(req, 50, 200)?;
    let (items, next) = sc::list_findings(env.kv, &name, from, limit)?;
    Ok(respond(
        StatusCode::OK,
        &json!({
            "items": items.iter().map(|f| finding_view(f, who)).collect::<Vec<_>>(),
            "next_cursor": next.map(paging::encode),
        }),
    ))
}

fn load_finding<K: KeyValue>(
    env: &Env<'_, K>,
    id: &str,
    who: &Principal,
) -> Result<(Finding, classes::ClassRecord), Problem> {
    let f = findings::get(env.kv, id)?.ok_or_else(|| Problem::not_found("no such finding"))?;
    let class = crate::view::visible_class(env, &f.class_id, who)?;
    Ok((f, class))
}

fn get_finding<K: KeyValue>(
    env: &Env<'_, K>,
    m: &Matched<Route>,
    who: &Principal,
) -> Result<Response, Problem> {
    who.require(&[Role::BureauAdmin, Role::DistrictOfficer, Role::Institution])?;
    let (f, _) = load_finding(env, &m.params["id"], who)?;
    Ok(respond(StatusCode::OK, &finding_view(&f, who)))
}

/// Body of `POST …/findings/{id}/rectification`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RectificationRequest {
    /// What was found and done (立查立改).
    pub notes: String,
    /// When it was done (default: now).
    #[serde(default)]
    pub at: Option<DateTime<Utc>>,
}

fn rectify<K: KeyValue>(
    env: &Env<'_, K>,
    req: &Request,
    m: &Matched<Route>,
    who: &Principal,
) -> Result<Response, Problem> {
    who.require(&[Role::DistrictOfficer])?;
    let id = m.params["id"].clone();
    idempotent::run(env, req, "spot_checks.rectify", who, || {
        let body: RectificationRequest = json::body(req)?;
        let notes = body.notes.trim();
        if !policy::text::filled(&body.notes, 2000) {
            return Err(Problem::invalid("notes must be 1 to 2000 characters")
                .field("notes", "1 to 2000 characters"));
        }
        let at = body.at.unwrap_or(env.now);
        if at > env.now + chrono::Duration::minutes(5) {
            return Err(
                Problem::invalid("a rectification cannot be recorded before it happens")
                    .field("at", "must not be in the future"),
            );
        }
        load_finding(env, &id, who)?;
        let rect = Rectification {
            notes: notes.to_string(),
            by: who.actor(),
            at,
        };
        match findings::close(env.kv, &id, rect) {
            Ok(f) => {
                let hold = findings::hold(env.kv, &f.class_id)?;
                let mut v = finding_view(&f, who);
                v["class_hold"] = hold_view(&f.class_id, &hold);
                Ok(respond(StatusCode::OK, &v))
            }
            Err(store::UpdateError::Store(e)) => Err(e.into()),
            Err(store::UpdateError::Refused(CloseError::NotFound)) => {
                Err(Problem::not_found("no such finding"))
            }
            Err(store::UpdateError::Refused(CloseError::AlreadyClosed)) => Err(Problem::conflict(
                "finding_already_rectified",
                "该问题已整改关闭",
                "the finding was already closed with a rectification",
            )),
        }
    })
}

fn hold_view(class_id: &str, h: &findings::ClassHold) -> Value {
    json!({
        "class_id": class_id,
        "blocks_settlement": h.blocks(),
        "open_findings": h.open.keys().collect::<Vec<_>>(),
        "findings_ever": h.total,
        "flagged": h.total > 0,
    })
}

fn hold<K: KeyValue>(
    env: &Env<'_, K>,
    m: &Matched<Route>,
    who: &Principal,
) -> Result<Response, Problem> {
    who.require(&[Role::BureauAdmin, Role::DistrictOfficer, Role::Institution])?;
    let class = crate::view::visible_class(env, &m.params["id"], who)?;
    let h = findings::hold(env.kv, &class.id)?;
    Ok(respond(StatusCode::OK, &hold_view(&class.id, &h)))
}

fn proposals<K: KeyValue>(
    env: &Env<'_, K>,
    req: &Request,
    who: &Principal,
) -> Result<Response, Problem> {
    who.require(&[Role::BureauAdmin])?;
    only_known_query(req, &["cursor", "limit"])?;
    let (from, limit) = cursor_and_limit(req, 50, 200)?;
    let (items, next) = sc::list_proposals(env.kv, from, limit)?;
    Ok(respond(
        StatusCode::OK,
        &json!({"items": items, "next_cursor": next.map(paging::encode)}),
    ))
}

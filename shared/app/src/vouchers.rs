//! 职业培训券: routes of the vouchers component.
//!
//! | route | roles |
//! | --- | --- |
//! | `POST /api/v1/classes/{id}/vouchers` | institution (own class) |
//! | `GET /api/v1/classes/{id}/vouchers` | institution (own), district officer (own district), bureau |
//! | `GET /api/v1/vouchers/{code}` | institution (own), district officer (own district), bureau, trainee (own) |
//! | `POST /api/v1/vouchers/{code}/redeem` | institution (own) |
//! | `POST /api/v1/vouchers/{code}/settle` | district officer (own district), bureau |
//! | `POST /api/v1/vouchers/{code}/revoke` | institution (own), district officer (own district), bureau |
//! | `POST /api/v1/vouchers/sweep` | scheduler, bureau |
//! | `POST /api/v1/cards/activations` | social security |
//! | `GET /api/v1/people/{ref}/archive` | district officer, bureau, trainee (own ref) |
//! | `GET /api/v1/me/vouchers`, `GET /api/v1/me/archive` | trainee |
//! | `POST /api/v1/wechat/login`, `POST /api/v1/wechat/bind` | none (a `wx.login` code / a bind ticket) |
//! | `GET /api/v1/stats/progress?year=` | district officer, bureau |
//!
//! Rules are in `policy::vouchers`; records in `store::vouchers`. Responses
//! never carry an ID or phone number in full, and neither do problems or logs.
//! [`handle`] is synchronous; [`handle_with`] adds the WeChat login and
//! binding ([`crate::wechat`]), which call WeChat's API through a [`WeChat`]
//! client. Every trainee request is checked against the person's current
//! binding: a token of a replaced binding is refused.

// `Problem` is the error response itself (about 150 bytes); boxing it would
// only move the allocation, handlers return it once per request.
#![allow(clippy::result_large_err)]

use chrono::Datelike as _;
use http::{Method, StatusCode};
use policy::ids::{AreaCode, IdNumber};
use policy::params::names;
use policy::vouchers::{
    self as rules, Action, FlowError, IssueFacts, SettleFacts, SubsidyKey, VoucherCode,
    VoucherState,
};
use serde::Deserialize;
use serde_json::{Value, json};
use store::KeyValue;
use store::classes::{self, CheckKind, CheckResult, ClassPhase, ClassRecord};
use store::findings::{self, ClassHold};
use store::records::decode;
use store::spot_checks;
use store::vouchers::{self as vs, ClassFacts, Draft, Issued, MoveError, VoucherRecord};
use web::json::{self, respond};
use web::router::{Matched, Router, query};
use web::{Env, Principal, Problem, Request, Response, Role, idempotent, paging};

use crate::wechat;

/// Variable names the component reads besides the secrets.
pub const VARIABLES: &[&str] = &["wechat_app_id", "wechat_app_secret", "wechat_api_base"];

/// The routes of this component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Issue vouchers for a class.
    Issue,
    /// A class's vouchers.
    ListClass,
    /// One voucher.
    Get,
    /// The trainee starts the class.
    Redeem,
    /// Pay the institution.
    Settle,
    /// Withdraw a voucher.
    Revoke,
    /// Expire vouchers past their last valid day.
    Sweep,
    /// Card activation status from the social-security system.
    Card,
    /// A person's archive, for officers.
    PersonArchive,
    /// The trainee's vouchers.
    MyVouchers,
    /// The trainee's archive.
    MyArchive,
    /// Mini-program login.
    WechatLogin,
    /// Bind a WeChat user to a person.
    WechatBind,
    /// Progress against REF-TARGET.
    Progress,
}

/// The router of this component.
pub fn router() -> Router<Route> {
    Router::new()
        .add(Method::POST, "/api/v1/classes/{id}/vouchers", Route::Issue)
        .add(
            Method::GET,
            "/api/v1/classes/{id}/vouchers",
            Route::ListClass,
        )
        .add(Method::POST, "/api/v1/vouchers/sweep", Route::Sweep)
        .add(Method::GET, "/api/v1/vouchers/{code}", Route::Get)
        .add(
            Method::POST,
            "/api/v1/vouchers/{code}/redeem",
            Route::Redeem,
        )
        .add(
            Method::POST,
            "/api/v1/vouchers/{code}/settle",
            Route::Settle,
        )
        .add(
            Method::POST,
            "/api/v1/vouchers/{code}/revoke",
            Route::Revoke,
        )
        .add(Method::POST, "/api/v1/cards/activations", Route::Card)
        .add(
            Method::GET,
            "/api/v1/people/{ref}/archive",
            Route::PersonArchive,
        )
        .add(Method::GET, "/api/v1/me/vouchers", Route::MyVouchers)
        .add(Method::GET, "/api/v1/me/archive", Route::MyArchive)
        .add(Method::POST, "/api/v1/wechat/login", Route::WechatLogin)
        .add(Method::POST, "/api/v1/wechat/bind", Route::WechatBind)
        .add(Method::GET, "/api/v1/stats/progress", Route::Progress)
}

pub use crate::wechat::WeChat;

/// Handles one request; the WeChat routes need [`handle_with`] and answer 503 here.
pub fn handle<K: KeyValue>(env: &Env<'_, K>, req: &Request) -> Response {
    web::finish(dispatch(env, req))
}

/// Handles one request, the WeChat login through `wechat`.
pub async fn handle_with<K: KeyValue, W: WeChat>(
    env: &Env<'_, K>,
    req: &Request,
    client: &W,
) -> Response {
    match router().at(req.method(), req.uri().path()).map(|m| m.route) {
        Ok(Route::WechatLogin) => web::finish(wechat::login(env, req, client).await),
        Ok(Route::WechatBind) => web::finish(wechat::bind(env, req, client).await),
        _ => handle(env, req),
    }
}

fn dispatch<K: KeyValue>(env: &Env<'_, K>, req: &Request) -> Result<Response, Problem> {
    let m = router().at(req.method(), req.uri().path())?;
    match m.route {
        Route::WechatLogin | Route::WechatBind => {
            return Err(Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "wechat_unavailable",
                "微信登录暂不可用",
                "WeChat login and binding are not available in this handler",
            ));
        }
        _ => {}
    }
    let who = env.authenticate(req)?;
    if who.role() == Role::Trainee {
        wechat::require_current(env, &who)?;
    }
    match m.route {
        Route::Issue => issue(env, req, &m, &who),
        Route::ListClass => list_class(env, req, &m, &who),
        Route::Get => get(env, &m, &who),
        Route::Redeem => redeem(env, req, &m, &who),
        Route::Settle => settle(env, req, &m, &who),
        Route::Revoke => revoke(env, req, &m, &who),
        Route::Sweep => sweep(env, req, &who),
        Route::Card => card(env, req, &who),
        Route::PersonArchive => person_archive(env, &m, &who),
        Route::MyVouchers => my_vouchers(env, &who),
        Route::MyArchive => my_archive(env, &who),
        Route::Progress => progress(env, req, &who),
        Route::WechatLogin | Route::WechatBind => unreachable!("answered above"),
    }
}

// ---------------------------------------------------------------------------
// Views

/// A voucher as the API shows it (no personal identifiers besides the person ref).
pub fn voucher_view(r: &VoucherRecord, today: chrono::NaiveDate) -> Value {
    let state = r.state_on(today);
    let code = r.voucher_code();
    json!({
        "code": code.as_ref().map(|c| c.grouped()).unwrap_or_else(|| r.code.clone()),
        "code_compact": r.code,
        "qr_payload": code.as_ref().map(|c| c.qr_payload()),
        "state": state,
        "state_zh": state.name_zh(),
        "person_ref": r.person,
        "roster_line": r.roster_line,
        "group": r.group,
        "class_id": r.class.class_id,
        "class_title": r.class.title,
        "institution": r.class.institution,
        "district": r.class.district,
        "occupation": r.class.occupation,
        "project": r.class.project,
        "level": r.class.level,
        "programme": r.class.programme,
        "amount_fen": r.amount.fen,
        "base_fen": r.amount.base_fen,
        "uplift_fen": r.amount.uplift_fen,
        "fund": r.amount.fund,
        "fund_zh": r.amount.fund.name_zh(),
        "amount_basis": r.amount.basis,
        "issued_on": r.issued_on,
        "last_valid_day": r.last_valid_day,
        "certificate_no": r.certificate_no,
        "revoke_reason": r.revoke_reason,
        "history": r.history,
    })
}

fn flow_problem(state: VoucherState, action: Action, rule: &str) -> Problem {
    Problem::conflict(
        "voucher_state_conflict",
        format!(
            "培训券状态为“{}”，不能{}",
            state.name_zh(),
            action.name_zh()
        ),
        format!(
            "{rule}: a voucher in state {} cannot be {}; no change was made",
            state.id(),
            match action {
                Action::Redeem => "redeemed",
                Action::Settle => "settled",
                Action::Revoke => "revoked",
                Action::Expire => "expired",
            }
        ),
    )
    .with("state", state)
    .with("rule", rule)
}

fn parse_code(raw: &str) -> Result<VoucherCode, Problem> {
    VoucherCode::parse(raw).map_err(|e| match e {
        rules::CodeError::CheckCharacter => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "voucher_code_mistyped",
            "培训券编号校验位不符，可能输入有误",
            "the voucher code's check character does not match: it was mistyped",
        )
        .field("code", e.to_string()),
        _ => Problem::invalid(format!("code: {e}")).field("code", e.to_string()),
    })
}

fn load_voucher<K: KeyValue>(env: &Env<'_, K>, raw: &str) -> Result<VoucherRecord, Problem> {
    let code = parse_code(raw)?;
    vs::get(env.kv, code.as_str())?.ok_or_else(|| {
        Problem::new(
            StatusCode::NOT_FOUND,
            "voucher_not_found",
            "培训券不存在",
            "no voucher has this code",
        )
    })
}

fn may_see_voucher(who: &Principal, r: &VoucherRecord) -> bool {
    match who.role() {
        Role::BureauAdmin => true,
        Role::Institution => {
            who.claims.institution.as_ref().map(|c| c.as_str())
                == Some(r.class.institution.as_str())
        }
        Role::DistrictOfficer => {
            who.claims.district.map(|d| d.code()) == Some(r.class.district.as_str())
        }
        Role::Trainee => who.claims.person.as_deref() == Some(r.person.as_str()),
        _ => false,
    }
}

fn visible_voucher<K: KeyValue>(
    env: &Env<'_, K>,
    raw: &str,
    who: &Principal,
) -> Result<VoucherRecord, Problem> {
    let r = load_voucher(env, raw)?;
    if !may_see_voucher(who, &r) {
        return Err(Problem::forbidden(
            "the voucher belongs to another institution, district or person",
        ));
    }
    Ok(r)
}

fn class_facts(r: &ClassRecord) -> ClassFacts {
    let a = &r.application;
    ClassFacts {
        class_id: r.id.clone(),
        title: a.title.clone(),
        institution: a.institution.as_str().to_string(),
        district: a.district.code().to_string(),
        occupation: a.occupation.clone(),
        project: a.project.clone(),
        level: a.level,
        certificate: a.certificate,
        programme: a.programme,
        hours: a.scheduled_hours(),
        start_date: a.start_date,
        end_date: a.end_date,
    }
}

/// The request with its body replaced by `canonical` (personal identifiers
/// swapped for their keyed refs), so that the idempotency record's digest of the
/// request cannot be reversed by trying ID numbers.
pub(crate) fn keyed(req: &Request, canonical: &Value) -> Request {
    let mut r = http::Request::new(bytes::Bytes::from(
        serde_json::to_vec(canonical).expect("serialises"),
    ));
    *r.method_mut() = req.method().clone();
    *r.uri_mut() = req.uri().clone();
    *r.headers_mut() = req.headers().clone();
    r
}

fn optional_body<T: for<'de> Deserialize<'de> + Default>(req: &Request) -> Result<T, Problem> {
    if req.body().iter().all(u8::is_ascii_whitespace) {
        Ok(T::default())
    } else {
        json::body(req)
    }
}

// ---------------------------------------------------------------------------
// Issue

/// Body of `POST /api/v1/classes/{id}/vouchers`: the whole roster when both lists are absent.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssueRequest {
    /// Roster lines (0-based).
    #[serde(default)]
    pub lines: Option<Vec<usize>>,
    /// Trainees by ID number (their lines are looked up on the roster).
    #[serde(default)]
    pub id_numbers: Option<Vec<IdNumber>>,
}

fn issue<K: KeyValue>(
    env: &Env<'_, K>,
    req: &Request,
    m: &Matched<Route>,
    who: &Principal,
) -> Result<Response, Problem> {
    who.require(&[Role::Institution])?;
    let id = m.params["id"].clone();
    let body: IssueRequest = optional_body(req)?;
    let hasher = env.hasher();
    let canonical = json!({
        "lines": body.lines,
        "people": body.id_numbers.as_ref().map(|ids| ids.iter().map(|i| hasher.person_ref(i)).collect::<Vec<_>>()),
    });
    idempotent::run(env, &keyed(req, &canonical), "vouchers.issue", who, || {
        let class = crate::view::visible_class(env, &id, who)?;
        let roster = &class.application.roster;
        let mut lines: Vec<usize> = match (&body.lines, &body.id_numbers) {
            (None, None) => (0..roster.len()).collect(),
            (lines, ids) => {
                let mut out = lines.clone().unwrap_or_default();
                for (i, l) in out.iter().enumerate() {
                    if *l >= roster.len() {
                        return Err(Problem::invalid(format!(
                            "lines[{i}]: the roster has {} lines",
                            roster.len()
                        ))
                        .field(format!("lines[{i}]"), "not a line of the roster"));
                    }
                }
                for (i, idn) in ids.iter().flatten().enumerate() {
                    let person = hasher.person_ref(idn);
                    let line = class
                        .roster_refs
                        .iter()
                        .position(|r| r.person == person)
                        .ok_or_else(|| {
                            Problem::invalid(format!(
                                "id_numbers[{i}]: not on the roster of class {id}"
                            ))
                            .field(format!("id_numbers[{i}]"), "not on the roster")
                        })?;
                    out.push(line);
                }
                out
            }
        };
        lines.sort_unstable();
        lines.dedup();
        if lines.is_empty() {
            return Err(Problem::invalid("name at least one roster line")
                .field("lines", "at least one line"));
        }
        // The cards of the lines and the policy in force, in one read.
        let mut card_keys: Vec<String> = lines
            .iter()
            .map(|l| vs::card_key(&class.roster_refs[*l].person))
            .collect();
        card_keys.push(store::policy::current_key());
        let mut cards = env
            .kv
            .get_many(&card_keys)
            .map_err(store::StoreError::from)?;
        let policy = store::policy::from_value(cards.pop().flatten().as_deref())?;
        let facts = class_facts(&class);
        // VO-CLASS: no voucher for a class whose training has ended.
        let approved = matches!(
            class.phase_on(env.today()),
            ClassPhase::Approved | ClassPhase::InTraining
        );
        let subsidised = rules::subsidised(class.application.certificate);
        let key = SubsidyKey::for_class(
            class.application.occupation.as_ref(),
            class.application.project.as_deref(),
            class.application.level,
            class.application.certificate,
        );
        let today = env.today();
        let actor = who.actor();
        let mut results = Vec::new();
        let (mut n_new, mut n_existing, mut n_refused) = (0, 0, 0);
        for (line, card) in lines.iter().zip(cards) {
            let trainee = &roster[*line];
            let person = class.roster_refs[*line].person.clone();
            let card_active = card
                .map(|b| decode::<vs::CardStatus>(&b, "card").map(|c| c.active))
                .transpose()?;
            let draft = Draft {
                person,
                roster_line: *line,
                group: trainee.group,
                class: facts.clone(),
                key: key.clone(),
                today,
            };
            let mut bytes = [0u8; rules::RANDOM_BYTES];
            (env.random)(&mut bytes);
            let code = VoucherCode::from_random(&bytes);
            let decide = |held: &[rules::Held]| {
                let mut d = rules::decide_issue(
                    &IssueFacts {
                        class_id: &class.id,
                        class_approved: approved,
                        subsidised_kind: subsidised,
                        on_roster: true,
                        roster_line: *line,
                        key: key.clone(),
                        group: trainee.group,
                        card_active,
                        held,
                        today,
                        first_day: facts.start_date,
                    },
                    policy.parameters(),
                    policy.subsidies(),
                );
                // The voucher's decision names the policy version it read.
                d.decision = d.decision.under(&policy.reference);
                d
            };
            let lease = vs::IssueLease::new(rules::issue_lease(today, policy.parameters()));
            let outcome = vs::issue(env.kv, &draft, &code, decide, lease, &actor, env.now)?;
            let base = json!({
                "line": line,
                "name": trainee.name,
                "id_number": trainee.id_number.masked(),
            });
            let mut item = base;
            match outcome {
                Issued::New(r) => {
                    n_new += 1;
                    item["outcome"] = json!("issued");
                    item["voucher"] = voucher_view(&r, today);
                    item["decision"] = json!(r.decision);
                }
                Issued::Existing(r) => {
                    n_existing += 1;
                    item["outcome"] = json!("existing");
                    item["voucher"] = voucher_view(&r, today);
                }
                Issued::Pending { retry_after, .. } => {
                    return Ok(issue_pending(*line, retry_after));
                }
                Issued::Refused(d) => {
                    n_refused += 1;
                    item["outcome"] = json!("refused");
                    item["blocking_rules"] = json!(d.blocking_rules);
                    item["decision"] = json!(d);
                }
            }
            results.push(item);
        }
        Ok(respond(
            StatusCode::OK,
            &json!({
                "class_id": class.id,
                "issued": n_new,
                "existing": n_existing,
                "refused": n_refused,
                "results": results,
            }),
        ))
    })
}

/// 503 `voucher_issue_pending` with `Retry-After`: another request won this
/// line's voucher and, after the wait, still holds its issue lease
/// (VO-ISSUE-LEASE) without having written the record. Nothing of this request
/// is kept (its idempotency key is freed), so a retry, with the same key or
/// another, answers the voucher once the record exists.
fn issue_pending(line: usize, retry_after: chrono::Duration) -> Response {
    let seconds = (retry_after.num_milliseconds().max(0) as u64)
        .div_ceil(1000)
        .max(1);
    let mut res = Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "voucher_issue_pending",
        "该学员的培训券正由另一请求发放，请稍后重试",
        format!(
            "another request is issuing the voucher of roster line {line}; retry after {seconds} s"
        ),
    )
    .with("line", line)
    .with("retry_after", seconds)
    .into_response();
    res.headers_mut()
        .insert(http::header::RETRY_AFTER, http::HeaderValue::from(seconds));
    res
}

fn list_class<K: KeyValue>(
    env: &Env<'_, K>,
    req: &Request,
    m: &Matched<Route>,
    who: &Principal,
) -> Result<Response, Problem> {
    who.require(&[Role::Institution, Role::DistrictOfficer, Role::BureauAdmin])?;
    let class = crate::view::visible_class(env, &m.params["id"], who)?;
    let q = query(req);
    let limit = paging::limit(q.get("limit").map(String::as_str), 50, 200)?;
    let from = q
        .get("cursor")
        .map(|c| paging::decode(c))
        .transpose()?
        .unwrap_or_default();
    let (items, next) = vs::of_class(env.kv, &class.id, from, limit)?;
    let today = env.today();
    Ok(respond(
        StatusCode::OK,
        &json!({
            "class_id": class.id,
            "items": items.iter().map(|r| voucher_view(r, today)).collect::<Vec<_>>(),
            "next_cursor": next.map(paging::encode),
        }),
    ))
}

fn get<K: KeyValue>(
    env: &Env<'_, K>,
    m: &Matched<Route>,
    who: &Principal,
) -> Result<Response, Problem> {
    who.require(&[
        Role::Institution,
        Role::DistrictOfficer,
        Role::BureauAdmin,
        Role::Trainee,
    ])?;
    let r = visible_voucher(env, &m.params["code"], who)?;
    Ok(respond(StatusCode::OK, &voucher_view(&r, env.today())))
}

// ---------------------------------------------------------------------------
// Moves

fn move_error<K: KeyValue>(env: &Env<'_, K>, e: store::UpdateError<MoveError<Problem>>) -> Problem {
    let _ = env;
    match e {
        store::UpdateError::Store(s) => s.into(),
        store::UpdateError::Refused(MoveError::NotFound) => Problem::new(
            StatusCode::NOT_FOUND,
            "voucher_not_found",
            "培训券不存在",
            "no voucher has this code",
        ),
        store::UpdateError::Refused(MoveError::Refused(p)) => p,
    }
}

fn redeem<K: KeyValue>(
    env: &Env<'_, K>,
    req: &Request,
    m: &Matched<Route>,
    who: &Principal,
) -> Result<Response, Problem> {
    who.require(&[Role::Institution])?;
    let raw = m.params["code"].clone();
    idempotent::run(env, req, "vouchers.redeem", who, || {
        let r = visible_voucher(env, &raw, who)?;
        // VO-OPEN: the class's pre-opening check only moves forward, so a
        // class read open here stays open.
        let status = classes::get(env.kv, &r.class.class_id)?.map(|c| c.status);
        if !status.is_some_and(rules::may_redeem) {
            return Err(Problem::conflict(
                "class_not_opened",
                "班级尚未通过开班前验证，培训券不能使用",
                "VO-OPEN: a voucher is used when its class starts; the class's pre-opening check has not passed",
            )
            .with("rule", "VO-OPEN")
            .with("class_state", status));
        }
        let today = env.today();
        let actor = who.actor();
        let result =
            vs::apply(
                env.kv,
                &r.code,
                Action::Redeem,
                &actor,
                env.now,
                |c| match rules::redeem(c.state, c.last_valid_day, today) {
                    Ok(next) => {
                        c.state = next;
                        Ok(())
                    }
                    Err(e @ FlowError::Expired { last_valid_day }) => Err(Problem::conflict(
                        "voucher_expired",
                        format!("培训券已于 {last_valid_day} 后过期，不能使用"),
                        format!("{}: the voucher was valid until {last_valid_day}", e.rule()),
                    )
                    .with("state", VoucherState::Expired)
                    .with("rule", e.rule())
                    .with("last_valid_day", last_valid_day)),
                    Err(e @ FlowError::IllegalMove { state, action }) => {
                        Err(flow_problem(state, action, e.rule()))
                    }
                },
            );
        match result {
            Ok((_, after)) => Ok(respond(StatusCode::OK, &voucher_view(&after, today))),
            Err(e) => {
                let p = move_error(env, e);
                if p.code == "voucher_expired" {
                    // VO-VALID applied on use: record the expiry.
                    let _ = vs::apply(env.kv, &r.code, Action::Expire, &actor, env.now, |c| {
                        if c.state_on(today) != VoucherState::Expired {
                            return Err(());
                        }
                        c.state = VoucherState::Expired;
                        Ok(())
                    });
                }
                Err(p)
            }
        }
    })
}

/// Body of `POST /api/v1/vouchers/{code}/settle`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettleRequest {
    /// The certificate number of the passed assessment.
    pub certificate_no: String,
}

fn settle<K: KeyValue>(
    env: &Env<'_, K>,
    req: &Request,
    m: &Matched<Route>,
    who: &Principal,
) -> Result<Response, Problem> {
    who.require(&[Role::DistrictOfficer, Role::BureauAdmin])?;
    let raw = m.params["code"].clone();
    idempotent::run(env, req, "vouchers.settle", who, || {
        let body: SettleRequest = json::body(req)?;
        let r = visible_voucher(env, &raw, who)?;
        let class_id = r.class.class_id.clone();
        let class = classes::get(env.kv, &class_id)?
            .ok_or_else(|| Problem::not_found("no class with this id"))?;
        let policy = store::policy::current_policy(env.kv)?;
        // The class's calls, read before the hold is admitted: a denial names
        // its finding in the same swap that closes its call, so a call read
        // here is either still open (VO-CALLS) or closed with its denial in
        // view, whether or not its finding is open in the hold yet (SC-DENY).
        let calls = spot_checks::class_calls(env.kv, &class_id)?;
        let open_calls = calls.open;
        let finding_keys: Vec<String> = calls
            .denials
            .iter()
            .map(|(f, _)| findings::finding_key(f))
            .collect();
        let mut unresolved: Vec<(String, usize)> = Vec::new();
        if !finding_keys.is_empty() {
            let stored = env
                .kv
                .get_many(&finding_keys)
                .map_err(store::StoreError::from)?;
            for ((id, line), f) in calls.denials.iter().zip(stored) {
                let rectified = f
                    .map(|b| decode::<findings::Finding>(&b, "finding"))
                    .transpose()?
                    .is_some_and(|f| f.status == findings::FindingStatus::Rectified);
                if !rectified {
                    unresolved.push((id.clone(), *line));
                }
            }
        }
        let assessment = class
            .checks
            .iter()
            .rev()
            .find(|c| c.kind == CheckKind::PostAssessment && c.result == CheckResult::Passed);
        let today = env.today();
        let cert = body.certificate_no.trim().to_string();
        let settler = who.claims.sub.clone();
        let line = r.roster_line;
        let facts = |state: VoucherState, person: &str, hold: &ClassHold| SettleFacts {
            state,
            assessed: assessment.is_some(),
            certificate_no: cert.clone(),
            own_finding: hold.holds_person(person) || unresolved.iter().any(|(_, l)| *l == line),
            other_findings: hold.open.values().filter(|p| *p != person).count()
                + unresolved
                    .iter()
                    .filter(|(id, l)| *l != line && !hold.open.contains_key(id))
                    .count(),
            last_day: class.application.end_date,
            open_calls,
            assessed_by: assessment.map(|c| c.recorded_by.sub.clone()),
            settled_by: settler.clone(),
            on: today,
        };
        let refused = |f: &SettleFacts| -> Result<(), Problem> {
            let d = rules::decide_settlement(f, policy.parameters());
            if d.outcome == policy::Outcome::Approved {
                Ok(())
            } else {
                Err(settlement_problem(f, &d))
            }
        };
        // The hold is the one record every finding is opened in: the
        // settlement is admitted against it by compare-and-swap.
        let hold = findings::admit_settlement(env.kv, &class_id, &r.code, |h| {
            refused(&facts(r.state_on(today), &r.person, h))
        })
        .map_err(|e| match e {
            store::UpdateError::Store(s) => Problem::from(s),
            store::UpdateError::Refused(p) => p,
        })?;
        let result = vs::apply(
            env.kv,
            &r.code,
            Action::Settle,
            &who.actor(),
            env.now,
            |c| {
                refused(&facts(c.state_on(today), &c.person, &hold))?;
                c.state = VoucherState::Settled;
                c.certificate_no = Some(cert.clone());
                Ok(())
            },
        );
        match result {
            Ok((_, after)) => Ok(respond(StatusCode::OK, &voucher_view(&after, today))),
            Err(e) => Err(move_error(env, e)),
        }
    })
}

/// The problem details of a settlement the rules refused, by the first gate that failed.
fn settlement_problem(f: &SettleFacts, d: &policy::Decision) -> Problem {
    let state = f.state;
    let p = if rules::transition(state, Action::Settle).is_err() {
        flow_problem(state, Action::Settle, "VO-FLOW")
    } else if d.failed("SC-DENY") {
        Problem::conflict(
            "settlement_held",
            if f.own_finding {
                "该学员有未整改的电话抽查问题，暂停结算"
            } else {
                "班级有未整改的电话抽查问题，整班暂停结算"
            },
            if f.own_finding {
                "SC-DENY: the trainee's own spot-check finding is open; settlement waits for its rectification"
            } else {
                "SC-DENY: another trainee of the class has an open spot-check finding; the class settles nothing until it is rectified"
            },
        )
        .with("state", state)
        .with("rule", "SC-DENY")
        .with(
            "held_by",
            if f.own_finding {
                "own_finding"
            } else {
                "other_finding"
            },
        )
    } else if d.failed("VO-ENDED") {
        Problem::conflict(
            "training_not_ended",
            "培训尚未结束，不能结算",
            format!(
                "VO-ENDED: the class's last day is {}; vouchers are settled from the day after",
                f.last_day
            ),
        )
        .with("state", state)
        .with("rule", "VO-ENDED")
        .with("last_day", f.last_day)
    } else if d.failed("VO-CALLS") {
        Problem::conflict(
            "spot_checks_open",
            "班级电话抽查尚未完成，暂不能结算",
            format!(
                "VO-CALLS: {} spot-check call(s) of the class are still open",
                f.open_calls
            ),
        )
        .with("state", state)
        .with("rule", "VO-CALLS")
        .with("open_calls", f.open_calls)
    } else if d.failed("VO-4EYES") {
        Problem::new(
            StatusCode::FORBIDDEN,
            "four_eyes",
            "考核记录人不能结算本班培训券",
            "VO-4EYES: the officer who recorded the post-training assessment may not settle; another officer must",
        )
        .with("rule", "VO-4EYES")
    } else {
        Problem::conflict(
            "settlement_refused",
            "不满足结算条件",
            format!("VO-FLOW: {}", d.blocking_rules.join(", ")),
        )
        .with("state", state)
        .with("rule", "VO-FLOW")
    };
    p.with("decision", d)
}

/// Body of `POST /api/v1/vouchers/{code}/revoke`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeRequest {
    /// Why (1 to 200 characters; no personal identifiers).
    pub reason: String,
}

fn revoke<K: KeyValue>(
    env: &Env<'_, K>,
    req: &Request,
    m: &Matched<Route>,
    who: &Principal,
) -> Result<Response, Problem> {
    who.require(&[Role::Institution, Role::DistrictOfficer, Role::BureauAdmin])?;
    let raw = m.params["code"].clone();
    idempotent::run(env, req, "vouchers.revoke", who, || {
        let body: RevokeRequest = json::body(req)?;
        let reason = body.reason.trim().to_string();
        if !policy::text::filled(&body.reason, 200) {
            return Err(Problem::invalid("reason must be 1 to 200 characters")
                .field("reason", "1 to 200 characters"));
        }
        let r = visible_voucher(env, &raw, who)?;
        let today = env.today();
        let result = vs::apply(
            env.kv,
            &r.code,
            Action::Revoke,
            &who.actor(),
            env.now,
            |c| {
                let state = c.state_on(today);
                match rules::transition(state, Action::Revoke) {
                    Ok(next) => {
                        c.state = next;
                        c.revoke_reason = Some(reason.clone());
                        Ok(())
                    }
                    Err(e) => Err(flow_problem(state, Action::Revoke, e.rule())),
                }
            },
        );
        match result {
            Ok((_, after)) => Ok(respond(StatusCode::OK, &voucher_view(&after, today))),
            Err(e) => Err(move_error(env, e)),
        }
    })
}

/// Body of `POST /api/v1/vouchers/sweep`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepRequest {
    /// Where to resume (from the last answer's `next_cursor`).
    #[serde(default)]
    pub cursor: Option<String>,
    /// Vouchers to scan (1 to 500, default 200).
    #[serde(default)]
    pub limit: Option<usize>,
}

fn sweep<K: KeyValue>(
    env: &Env<'_, K>,
    req: &Request,
    who: &Principal,
) -> Result<Response, Problem> {
    who.require(&[Role::Scheduler, Role::BureauAdmin])?;
    idempotent::run(env, req, "vouchers.sweep", who, || {
        let body: SweepRequest = optional_body(req)?;
        let limit = body.limit.unwrap_or(200);
        if !(1..=500).contains(&limit) {
            return Err(Problem::invalid("limit must be 1 to 500").field("limit", "1 to 500"));
        }
        let from = body
            .cursor
            .as_deref()
            .map(paging::decode)
            .transpose()?
            .unwrap_or_default();
        let (expired, scanned, next) =
            vs::sweep(env.kv, from, limit, env.today(), &who.actor(), env.now)?;
        // ID-RETAIN: idempotency records older than the retention go, up to
        // `limit` of them per call, from where the previous sweep stopped.
        let retain_days = store::policy::current_policy(env.kv)?
            .data
            .parameters
            .at_or_first(names::ID_RETAIN_DAYS, env.today())
            .value
            .clamp(1, 3650);
        let purged = store::idempotency::purge(
            env.kv,
            env.now - chrono::Duration::days(retain_days),
            limit,
        )?;
        Ok(respond(
            StatusCode::OK,
            &json!({
                "scanned": scanned,
                "expired": expired,
                "next_cursor": next.map(paging::encode),
                "idempotency_purged": purged.purged,
            }),
        ))
    })
}

// ---------------------------------------------------------------------------
// Cards, archive, progress

/// Body of `POST /api/v1/cards/activations`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CardRequest {
    /// The card holder's ID number (hashed at once, never stored).
    pub id_number: IdNumber,
    /// Whether the electronic card is activated.
    pub active: bool,
}

fn card<K: KeyValue>(
    env: &Env<'_, K>,
    req: &Request,
    who: &Principal,
) -> Result<Response, Problem> {
    who.require(&[Role::SocialSecurity])?;
    let body: CardRequest = json::body(req)?;
    let person = env.hasher().person_ref(&body.id_number);
    let canonical = json!({ "person": person, "active": body.active });
    idempotent::run(
        env,
        &keyed(req, &canonical),
        "cards.activation",
        who,
        || {
            let status = vs::set_card(env.kv, &person, body.active, &who.actor(), env.now)?;
            Ok(respond(
                StatusCode::OK,
                &json!({
                    "person_ref": person,
                    "id_number": body.id_number.masked(),
                    "active": status.active,
                    "changed_at": status.changed_at,
                }),
            ))
        },
    )
}

fn archive_view<K: KeyValue>(env: &Env<'_, K>, person: &str) -> Result<Value, Problem> {
    let a = vs::archive(env.kv, person)?;
    Ok(json!({
        "person_ref": person,
        "entries": a.entries.iter().map(|e| json!({
            "code": e.code,
            "class_id": e.class.class_id,
            "class_title": e.class.title,
            "institution": e.class.institution,
            "district": e.class.district,
            "occupation": e.class.occupation,
            "project": e.class.project,
            "level": e.class.level,
            "hours": e.class.hours,
            "start_date": e.class.start_date,
            "end_date": e.class.end_date,
            "result": e.result,
            "result_zh": e.result.name_zh(),
            "certificate_no": e.certificate_no,
            "reason": e.reason,
            "amount_fen": e.amount_fen,
            "recorded_at": e.at,
        })).collect::<Vec<_>>(),
    }))
}

fn person_archive<K: KeyValue>(
    env: &Env<'_, K>,
    m: &Matched<Route>,
    who: &Principal,
) -> Result<Response, Problem> {
    let person = m.params["ref"].as_str();
    match who.role() {
        Role::DistrictOfficer | Role::BureauAdmin => {}
        Role::Trainee if who.claims.person.as_deref() == Some(person) => {}
        _ => {
            return Err(Problem::forbidden(
                "a person's archive is open to officers and to that person only",
            ));
        }
    }
    if person.len() != 64 || !person.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Problem::invalid(
            "ref is a person ref (64 hex characters), never an ID number",
        )
        .field("ref", "64 hex characters"));
    }
    if who.role() == Role::DistrictOfficer && !on_a_roster_of_district(env, person, who)? {
        // 403 alike for a person unknown and a person of other districts only,
        // so the answer does not tell whether the person exists.
        return Err(Problem::forbidden(
            "a district officer reads the archive of people who are or were on a roster of a class of their district only",
        ));
    }
    Ok(respond(StatusCode::OK, &archive_view(env, person)?))
}

/// Whether `person` is or was on a roster of a class of the officer's district
/// (AC-ARCHIVE): any class of their ledger or live enrolments in that district.
fn on_a_roster_of_district<K: KeyValue>(
    env: &Env<'_, K>,
    person: &str,
    who: &Principal,
) -> Result<bool, Problem> {
    let Some(own) = who.claims.district else {
        return Ok(false);
    };
    for id in vs::classes_of(env.kv, person)? {
        if classes::get(env.kv, &id)?.is_some_and(|c| c.application.district == own) {
            return Ok(true);
        }
    }
    Ok(false)
}

fn trainee_person(who: &Principal) -> Result<String, Problem> {
    who.require(&[Role::Trainee])?;
    who.claims
        .person
        .clone()
        .ok_or_else(|| Problem::forbidden("the token is not bound to a person"))
}

fn my_vouchers<K: KeyValue>(env: &Env<'_, K>, who: &Principal) -> Result<Response, Problem> {
    let person = trainee_person(who)?;
    let today = env.today();
    let items: Vec<Value> = vs::of_person(env.kv, &person)?
        .iter()
        .map(|r| voucher_view(r, today))
        .collect();
    Ok(respond(
        StatusCode::OK,
        &json!({ "person_ref": person, "items": items }),
    ))
}

fn my_archive<K: KeyValue>(env: &Env<'_, K>, who: &Principal) -> Result<Response, Problem> {
    let person = trainee_person(who)?;
    Ok(respond(StatusCode::OK, &archive_view(env, &person)?))
}

/// Longest programme period whose years progress adds up.
const MAX_PERIOD_YEARS: i32 = 10;

fn progress<K: KeyValue>(
    env: &Env<'_, K>,
    req: &Request,
    who: &Principal,
) -> Result<Response, Problem> {
    who.require(&[Role::DistrictOfficer, Role::BureauAdmin])?;
    let q = query(req);
    for k in q.keys() {
        if k != "year" && k != "rollup" {
            return Err(Problem::unknown_parameter(k, "year or rollup"));
        }
    }
    let year = match q.get("year") {
        None => chrono::Datelike::year(&env.today()),
        Some(y) => y
            .parse::<i32>()
            .ok()
            .filter(|y| (2000..=2100).contains(y))
            .ok_or_else(|| {
                Problem::invalid("year must be a year from 2000 to 2100")
                    .field("year", "2000 to 2100")
            })?,
    };
    let rollup = match q.get("rollup").map(String::as_str) {
        None | Some("none") => false,
        Some("county") => true,
        Some(_) => {
            return Err(
                Problem::invalid("rollup is none or county").field("rollup", "none or county")
            );
        }
    };
    let policy = store::policy::current_policy(env.kv)?;
    let targets = &policy.data.targets;
    // The programme targets whose period covers the year, and the years they span.
    let periods: Vec<&policy::data::ProgrammeTarget> = targets
        .programme
        .iter()
        .filter(|t| {
            let (from, to) = (t.from.year(), t.to.year());
            from <= year && year <= to && to - from < MAX_PERIOD_YEARS
        })
        .collect();
    let mut years = vec![year];
    for t in &periods {
        years.extend(t.from.year()..=t.to.year());
    }
    years.sort_unstable();
    years.dedup();
    let read = vs::progress_of_years(env.kv, &years)?;
    let of_year = |y: i32| &read[years.iter().position(|x| *x == y).expect("read")];
    let p = of_year(year);
    let end = chrono::NaiveDate::from_ymd_opt(year, 12, 31).expect("valid date");
    let params = policy.parameters();
    let t_train = params.at_or_first(names::REF_TARGET_TRAININGS, end);
    let t_cert = params.at_or_first(names::REF_TARGET_CERTIFICATES, end);
    let pct = |n: u64, target: Option<u64>| match target {
        Some(target) if target > 0 => {
            // One decimal, computed in integers.
            let tenths = (n as u128 * 1000 + target as u128 / 2) / target as u128;
            json!(format!("{}.{}", tenths / 10, tenths % 10))
        }
        _ => Value::Null,
    };
    let target_of = |a: AreaCode| targets.district(a, year);
    // Per district (or zone), or rolled up to counties.
    /// A district's row: its figures, its targets (trainings, certificates)
    /// and the zones rolled into it.
    type Row = (AreaCode, vs::Tally, Option<(u64, u64)>, Vec<&'static str>);
    let mut rows: Vec<Row> = Vec::new();
    for a in AreaCode::all() {
        let t = p.districts.get(a.code()).cloned().unwrap_or_default();
        let target = target_of(a).map(|t| (t.trainings, t.certificates));
        let into = if rollup { a.rolled_up() } else { a };
        match rows.iter_mut().find(|r| r.0 == into) {
            Some(row) => {
                row.1 = row.1.plus(&t);
                row.2 = match (row.2, target) {
                    (Some((a, b)), Some((c, d))) => Some((a + c, b + d)),
                    (x, None) => x,
                    (None, y) => y,
                };
                if a != into {
                    row.3.push(a.code());
                }
            }
            None if into != a => {
                // A zone before its county in the list: the county's row comes later.
                rows.push((into, t, target, vec![a.code()]));
            }
            None => rows.push((a, t, target, vec![])),
        }
    }
    let districts: Vec<Value> = rows
        .iter()
        .map(|(a, t, target, zones)| {
            let mut row = json!({
                "district": a.code(), "name_zh": a.name_zh(),
                "trainings": t.trainings, "certificates": t.certified_people,
                "certificate_trainings": t.certificates, "amount_fen": t.amount_fen,
                "target_trainings": target.map(|x| x.0),
                "target_certificates": target.map(|x| x.1),
                "trainings_percent_of_target": pct(t.trainings, target.map(|x| x.0)),
                "certificates_percent_of_target": pct(t.certified_people, target.map(|x| x.1)),
            });
            if rollup {
                row["zones"] = json!(zones);
            }
            row
        })
        .collect();
    let funds: Vec<Value> = policy::reference::FundSource::ALL
        .iter()
        .map(|f| {
            json!({
                "fund": f, "name_zh": f.name_zh(),
                "amount_fen": p.funds.get(&f.id()).copied().unwrap_or(0),
            })
        })
        .collect();
    let programmes: Vec<Value> = policy::reference::Programme::ALL
        .iter()
        .map(|g| {
            let t = p.programmes.get(&g.id()).cloned().unwrap_or_default();
            let target = periods.iter().find(|t| t.programme == *g).map(|pt| {
                let mut sum = vs::Tally::default();
                for y in pt.from.year()..=pt.to.year() {
                    if let Some(x) = of_year(y).programmes.get(&g.id()) {
                        sum = sum.plus(x);
                    }
                }
                json!({
                    "from": pt.from, "to": pt.to,
                    "trainings": pt.trainings, "certificates": pt.certificates,
                    "trainings_in_period": sum.trainings,
                    "certificates_in_period": sum.certified_people,
                    "trainings_percent_of_target": pct(sum.trainings, Some(pt.trainings)),
                    "certificates_percent_of_target": pct(sum.certified_people, pt.certificates),
                    "reference": pt.reference,
                })
            });
            json!({
                "programme": g, "name_zh": g.name_zh(),
                "trainings": t.trainings, "certificates": t.certified_people,
                "certificate_trainings": t.certificates, "amount_fen": t.amount_fen,
                "target": target,
            })
        })
        .collect();
    let target_total = |f: fn(&policy::data::DistrictTarget) -> u64| {
        let list: Vec<u64> = targets
            .district
            .iter()
            .filter(|t| t.year == year)
            .map(f)
            .collect();
        (!list.is_empty()).then(|| list.iter().sum::<u64>())
    };
    Ok(respond(
        StatusCode::OK,
        &json!({
            "year": year,
            "basis": "settled vouchers, by the year of the class's first day; certificates are distinct people who obtained a 职业资格 or 职业技能等级 certificate (certificate_trainings counts the trainings), distinct within the city, each district or zone and each programme; a county rolled up with its zones adds their people; a programme's period adds up its years",
            "rollup": if rollup { "county" } else { "none" },
            "policy": policy.reference,
            "city": {
                "trainings": p.city.trainings,
                "certificates": p.city.certified_people,
                "certificate_trainings": p.city.certificates,
                "amount_fen": p.city.amount_fen,
                "target_trainings": t_train.value,
                "target_certificates": t_cert.value,
                "trainings_percent_of_target": pct(p.city.trainings, u64::try_from(t_train.value).ok()),
                "certificates_percent_of_target": pct(p.city.certified_people, u64::try_from(t_cert.value).ok()),
                "parameters": [t_train.label(), t_cert.label()],
                "district_targets_trainings": target_total(|t| t.trainings),
                "district_targets_certificates": target_total(|t| t.certificates),
            },
            "districts": districts,
            "district_targets_note": "REF-TARGET: the per-district split is the plan's attachment, not in the source: the bureau loads it (PUT /api/v1/admin/policy/targets); null where none is loaded",
            "programmes": programmes,
            "funds": funds,
        }),
    ))
}

//! The audit trail over HTTP, for the bureau: verify the hash chain page by
//! page, and list one entity's history.
//!
//! | route | roles |
//! | --- | --- |
//! | `GET /api/v1/audit/verify?from=&limit=` | bureau |
//! | `GET /api/v1/audit?entity=&cursor=&limit=` | bureau; a district officer for `class:` entities of their district |

use http::{Method, StatusCode};
use store::KeyValue;
use store::audit;
use web::json::respond;
use web::router::{Router, query};
use web::{Env, Principal, Problem, Request, Response, Role, paging};

/// The routes of the audit module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Verify the chain.
    Verify,
    /// One entity's history.
    History,
}

/// The router of the audit module.
pub fn router() -> Router<Route> {
    Router::new()
        .add(Method::GET, "/api/v1/audit/verify", Route::Verify)
        .add(Method::GET, "/api/v1/audit", Route::History)
}

/// Most events checked by one verify request.
pub const MAX_VERIFY_PAGE: u64 = 2_000;

/// Handles one request.
pub fn handle<K: KeyValue>(env: &Env<'_, K>, req: &Request) -> Response {
    web::finish(dispatch(env, req))
}

fn dispatch<K: KeyValue>(env: &Env<'_, K>, req: &Request) -> Result<Response, Problem> {
    let m = router().at(req.method(), req.uri().path())?;
    let who = env.authenticate(req)?;
    match m.route {
        Route::Verify => verify(env, req, &who),
        Route::History => history(env, req, &who),
    }
}

fn number(
    q: &std::collections::BTreeMap<String, String>,
    name: &str,
    default: u64,
    max: u64,
) -> Result<u64, Problem> {
    match q.get(name) {
        None => Ok(default),
        Some(v) => v
            .parse::<u64>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| {
                Problem::invalid(format!("{name} must be 1 to {max}"))
                    .field(name, format!("1 to {max}"))
            }),
    }
}

fn verify<K: KeyValue>(
    env: &Env<'_, K>,
    req: &Request,
    who: &Principal,
) -> Result<Response, Problem> {
    who.require(&[Role::BureauAdmin])?;
    let q = query(req);
    let from = number(&q, "from", 1, u64::MAX)?;
    let limit = number(&q, "limit", 500, MAX_VERIFY_PAGE)?;
    let length = audit::length(env.kv)?;
    let body = match audit::verify(env.kv, from, limit)? {
        Ok(next) => serde_json::json!({
            "intact": true,
            "checked_from": from,
            "checked_to": next.saturating_sub(1),
            "length": length,
            "next_from": (next <= length).then_some(next),
        }),
        Err(seq) => serde_json::json!({
            "intact": false,
            "broken_at": seq,
            "length": length,
            "message_zh": format!("审计链在第 {seq} 条记录处断开：该记录或其前一条被修改、删除或未写入"),
            "message_en": format!("the audit chain is broken at event {seq}: it or the one before it was changed, removed or never written"),
        }),
    };
    Ok(respond(StatusCode::OK, &body))
}

fn history<K: KeyValue>(
    env: &Env<'_, K>,
    req: &Request,
    who: &Principal,
) -> Result<Response, Problem> {
    who.require(&[Role::BureauAdmin, Role::DistrictOfficer])?;
    let q = query(req);
    let entity = q
        .get("entity")
        .filter(|e| !e.is_empty() && e.len() <= 200)
        .ok_or_else(|| {
            Problem::invalid("entity is required, for example class:KM-2022-000001")
                .field("entity", "required")
        })?;
    if who.role() == Role::DistrictOfficer {
        let class = entity
            .strip_prefix("class:")
            .and_then(|id| store::classes::get(env.kv, id).ok().flatten())
            .ok_or_else(|| {
                Problem::forbidden(
                    "a district officer reads the history of their district's classes only",
                )
            })?;
        if Some(class.application.district) != who.claims.district {
            return Err(Problem::forbidden("the class belongs to another district"));
        }
    }
    let limit = paging::limit(q.get("limit").map(String::as_str), 100, 500)?;
    let from = q
        .get("cursor")
        .map(|c| paging::decode(c))
        .transpose()?
        .unwrap_or_default();
    let (events, next) = audit::history(env.kv, entity, from, limit)?;
    Ok(respond(
        StatusCode::OK,
        &serde_json::json!({ "entity": entity, "events": events, "next_cursor": next.map(paging::encode) }),
    ))
}

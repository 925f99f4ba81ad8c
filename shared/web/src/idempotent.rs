//! Running a state-changing handler under an `Idempotency-Key`.
//!
//! Without the header the handler simply runs. With it, the key is claimed
//! first ([`store::idempotency::begin`]); a successful response is saved and
//! replayed to retries (marked `idempotent-replayed: true`); a failure frees
//! the key, so a rejected request leaves nothing behind; the same key with a
//! different body is refused with 422, and a retry while the first request
//! still runs gets 409.

use crate::auth::Principal;
use crate::env::Env;
use crate::problem::Problem;
use crate::{Request, Response};
use bytes::Bytes;
use http::StatusCode;
use std::future::Future;
use store::KeyValue;
use store::idempotency::{self, NextAction, SavedResponse};

/// The header name.
pub const HEADER: &str = "idempotency-key";

/// Runs `handler` once per idempotency key of the verified caller `who` in `scope`.
///
/// Records are keyed by the caller's role, binding and `sub`
/// ([`Principal::idempotency_caller`]): a key reused by another caller (another
/// institution with the same `sub`, the same `sub` in another role) is a fresh
/// request for that caller and never replays someone else's answer. Callers
/// check the route's role before calling this, so a caller without the right
/// is refused before any replay; a handler's object-level checks run again on
/// every request that is not a replay of the same caller's own answer.
pub fn run<K: KeyValue>(
    env: &Env<'_, K>,
    req: &Request,
    scope: &str,
    who: &Principal,
    handler: impl FnOnce() -> Result<Response, Problem>,
) -> Result<Response, Problem> {
    run_as(env, req, scope, &who.idempotency_caller(), handler)
}

/// [`run`] for a caller that is not a verified token (the WeChat bind, keyed by
/// the bind ticket's subject): `caller` must name the caller completely.
pub fn run_as<K: KeyValue>(
    env: &Env<'_, K>,
    req: &Request,
    scope: &str,
    caller: &str,
    handler: impl FnOnce() -> Result<Response, Problem>,
) -> Result<Response, Problem> {
    match start(env, req, scope, caller)? {
        Start::Answered(res) => Ok(res),
        Start::Run(claim) => finish(env, claim, handler()),
    }
}

/// [`run_as`] for a handler that awaits (one that calls another service).
pub async fn run_as_async<K: KeyValue, F>(
    env: &Env<'_, K>,
    req: &Request,
    scope: &str,
    caller: &str,
    handler: impl FnOnce() -> F,
) -> Result<Response, Problem>
where
    F: Future<Output = Result<Response, Problem>>,
{
    match start(env, req, scope, caller)? {
        Start::Answered(res) => Ok(res),
        Start::Run(claim) => finish(env, claim, handler().await),
    }
}

/// What to do with a request before its handler runs.
enum Start {
    /// A replay of the caller's own saved answer.
    Answered(Response),
    /// Run the handler; with a claim to complete or abandon when keyed.
    Run(Option<idempotency::Claim>),
}

fn start<K: KeyValue>(
    env: &Env<'_, K>,
    req: &Request,
    scope: &str,
    caller: &str,
) -> Result<Start, Problem> {
    let Some(value) = req.headers().get(HEADER) else {
        return Ok(Start::Run(None));
    };
    let key = value
        .to_str()
        .ok()
        .filter(|k| idempotency::key_ok(k))
        .ok_or_else(|| {
            Problem::invalid("Idempotency-Key must be 1 to 128 printable ASCII characters")
                .field("Idempotency-Key", "1 to 128 printable ASCII characters")
        })?;
    let mut canonical = Vec::with_capacity(req.body().len() + 64);
    canonical.extend_from_slice(req.method().as_str().as_bytes());
    canonical.push(b' ');
    canonical.extend_from_slice(req.uri().path().as_bytes());
    canonical.push(b'\n');
    canonical.extend_from_slice(req.body());
    let fingerprint = env.hasher().fingerprint(&canonical);
    match idempotency::begin(env.kv, scope, caller, key, fingerprint.as_bytes(), env.now)? {
        NextAction::ReturnSavedResponse(saved) => Ok(Start::Answered(replay(saved))),
        NextAction::KeyReused => Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            "幂等键已用于另一个请求",
            "this Idempotency-Key was used with a different request; use a new key",
        )),
        NextAction::InProgress { retry_after_secs } => Err(Problem::conflict(
            "request_in_progress",
            "相同幂等键的请求正在处理",
            format!(
                "a request with this Idempotency-Key is still being processed; retry in {retry_after_secs} s"
            ),
        )
        .header(http::header::RETRY_AFTER, retry_after_secs.to_string())
        .with("retry_after", retry_after_secs)),
        NextAction::StartProcessing(claim) => Ok(Start::Run(Some(claim))),
    }
}

/// Saves a successful answer under the claim, or frees the claim.
fn finish<K: KeyValue>(
    env: &Env<'_, K>,
    claim: Option<idempotency::Claim>,
    result: Result<Response, Problem>,
) -> Result<Response, Problem> {
    if let Some(claim) = claim {
        match &result {
            Ok(res) if res.status().is_success() => {
                idempotency::complete(env.kv, claim, save(res))?;
            }
            _ => idempotency::abandon(env.kv, claim)?,
        }
    }
    result
}

fn save(res: &Response) -> SavedResponse {
    let headers = [http::header::LOCATION]
        .iter()
        .filter_map(|h| {
            res.headers()
                .get(h)
                .and_then(|v| v.to_str().ok())
                .map(|v| (h.as_str().to_string(), v.to_string()))
        })
        .collect();
    SavedResponse {
        status: res.status().as_u16(),
        content_type: res
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/json")
            .to_string(),
        headers,
        body: String::from_utf8_lossy(res.body()).into_owned(),
    }
}

fn replay(saved: SavedResponse) -> Response {
    let mut res = http::Response::new(Bytes::from(saved.body));
    *res.status_mut() = StatusCode::from_u16(saved.status).unwrap_or(StatusCode::OK);
    let h = res.headers_mut();
    if let Ok(v) = http::HeaderValue::from_str(&saved.content_type) {
        h.insert(http::header::CONTENT_TYPE, v);
    }
    for (name, value) in saved.headers {
        if let (Ok(n), Ok(v)) = (
            http::HeaderName::from_bytes(name.as_bytes()),
            http::HeaderValue::from_str(&value),
        ) {
            h.insert(n, v);
        }
    }
    h.insert(
        "idempotent-replayed",
        http::HeaderValue::from_static("true"),
    );
    res
}

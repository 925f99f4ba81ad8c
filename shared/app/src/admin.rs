//! Administration routes for the bureau: key rotation. (The policy data,
//! `/api/v1/admin/policy…`, is its own component: [`crate::policy_admin`].)
//!
//! | route | roles |
//! | --- | --- |
//! | `POST /api/v1/admin/key-rotation` | bureau |
//!
//! Rotating the data key (`pii_key`): deploy with the new key in `pii_key`
//! and the old one in `pii_key_previous`; call this route with `{}` and then
//! with `{"after": <last_key of the previous answer>}` until `done` is true;
//! then remove `pii_key_previous`. Each call re-seals at most `limit` values
//! (default 500); a call that dies can simply be repeated: re-sealing a value
//! already on the new key does nothing.

use http::{Method, StatusCode};
use serde::Deserialize;
use store::KeyValue;
use web::json::{self, respond};
use web::router::Router;
use web::{Env, Problem, Request, Response, Role};

/// The routes of the admin module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Re-seal one page of values with the current data key.
    KeyRotation,
}

/// The router of the admin module.
pub fn router() -> Router<Route> {
    Router::new().add(
        Method::POST,
        "/api/v1/admin/key-rotation",
        Route::KeyRotation,
    )
}

/// Most values re-sealed by one request.
pub const MAX_PAGE: usize = 5_000;

/// Body of `POST /api/v1/admin/key-rotation`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotationRequest {
    /// Continue after this key (the `last_key` of the previous answer).
    #[serde(default)]
    pub after: Option<String>,
    /// Values to look at in this request.
    #[serde(default)]
    pub limit: Option<usize>,
}

/// Handles one request.
pub fn handle<K: KeyValue>(env: &Env<'_, K>, req: &Request) -> Response {
    web::finish(dispatch(env, req))
}

fn dispatch<K: KeyValue>(env: &Env<'_, K>, req: &Request) -> Result<Response, Problem> {
    let m = router().at(req.method(), req.uri().path())?;
    let who = env.authenticate(req)?;
    match m.route {
        Route::KeyRotation => {
            who.require(&[Role::BureauAdmin])?;
            let body: RotationRequest = json::body(req)?;
            let limit = body.limit.unwrap_or(500);
            if !(1..=MAX_PAGE).contains(&limit) {
                return Err(Problem::invalid(format!("limit must be 1 to {MAX_PAGE}"))
                    .field("limit", format!("1 to {MAX_PAGE}")));
            }
            let page = env
                .kv
                .reseal_page(body.after.as_deref(), limit)
                .map_err(|e| {
                    Problem::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "rotation_failed",
                        "密钥轮换未完成，请重试",
                        e.to_string(),
                    )
                })?;
            Ok(respond(StatusCode::OK, &page))
        }
    }
}

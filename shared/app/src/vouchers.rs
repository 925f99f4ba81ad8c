//! Routes of the vouchers component (not written yet: every route answers 501).

use http::StatusCode;
use store::KeyValue;
use web::{Env, Problem, Request, Response};

/// Handles one request.
pub fn handle<K: KeyValue>(_env: &Env<'_, K>, _req: &Request) -> Response {
    Problem::new(
        StatusCode::NOT_IMPLEMENTED,
        "not_implemented",
        "功能尚未实现",
        "this function is not implemented yet",
    )
    .into_response()
}

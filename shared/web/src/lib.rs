//! HTTP plumbing shared by the three functions.
//!
//! Requests and responses are plain `http` types with a `Bytes` body, so that
//! everything here runs and is tested natively; the Spin adapter in
//! `functions/platform` converts to and from spin-sdk's types. Modules:
//! [`problem`] (RFC 9457 errors), [`auth`] (JWT roles and bindings), [`json`]
//! (bodies with field paths), [`router`], [`paging`], [`idempotent`], [`env`].

#![warn(missing_docs)]
// `Problem` is the error type of every handler and the body of the response
// it becomes; it is built once per failed request, so its size does not matter.
#![allow(clippy::result_large_err)]

pub mod auth;
pub mod env;
pub mod idempotent;
pub mod json;
pub mod paging;
pub mod problem;
pub mod router;

pub use auth::{Principal, Role};
pub use env::{Env, Secrets};
pub use problem::Problem;

/// A request as handlers see it.
pub type Request = http::Request<bytes::Bytes>;
/// A response as handlers return it.
pub type Response = http::Response<bytes::Bytes>;

/// Largest request body accepted (1 MiB); larger bodies get 413.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Turns a handler result into a response: a problem becomes problem+json.
pub fn finish(result: Result<Response, Problem>) -> Response {
    result.unwrap_or_else(Problem::into_response)
}

//! The platform's floor: a component that answers every request with a fixed
//! body and makes no host call. Benchmarks and the end-to-end harness measure
//! the product's components against it.

use spin_sdk::http::{IntoResponse, Request};
use spin_sdk::http_service;

/// Answers `hello` with status 200.
#[http_service]
async fn hello(_req: Request) -> impl IntoResponse {
    "hello"
}

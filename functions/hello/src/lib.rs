//! The platform's floor: a component that answers every request with a fixed
//! body and makes no host call. Benchmarks and the end-to-end harness measure
//! the product's components against it.

#[cfg(feature = "p2")]
extern crate spin_sdk_p2 as spin_sdk;

use spin_sdk::http::IntoResponse;

/// Answers `hello` with status 200 (Spin 4).
#[cfg(not(feature = "p2"))]
#[spin_sdk::http_service]
async fn hello(_req: spin_sdk::http::Request) -> impl IntoResponse {
    "hello"
}

/// Answers `hello` with status 200 (Spin 3.x).
#[cfg(feature = "p2")]
#[spin_sdk::http_component]
fn hello(_req: spin_sdk::http::Request) -> impl IntoResponse {
    spin_sdk::http::Response::new(200, "hello")
}

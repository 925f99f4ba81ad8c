//! The vouchers component on Spin: adapts the request and hands it to `app::vouchers`.

use spin_sdk::http::{IntoResponse, Request};
use spin_sdk::http_service;

/// Entry point of the component.
#[http_service]
async fn handle(req: Request) -> impl IntoResponse {
    platform::serve("vouchers", req, app::vouchers::handle).await
}

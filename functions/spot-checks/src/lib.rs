//! The spot-checks component on Spin: adapts the request and hands it to `app::spot_checks`.

use spin_sdk::http::{IntoResponse, Request};
use spin_sdk::http_service;

/// Entry point of the component.
#[http_service]
async fn handle(req: Request) -> impl IntoResponse {
    platform::serve("spot-checks", req, app::spot_checks::handle).await
}

//! 开班审批 on Spin: adapts the request and hands it to `app::class_opening`.

use spin_sdk::http::{IntoResponse, Request};
use spin_sdk::http_service;

/// Entry point of the component.
#[http_service]
async fn handle(req: Request) -> impl IntoResponse {
    platform::serve("class-opening", req, app::class_opening::handle).await
}

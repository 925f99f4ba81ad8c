//! 开班审批 on Spin: adapts the request and hands it to `app::class_opening`.

#[cfg(feature = "p2")]
extern crate spin_sdk_p2 as spin_sdk;

use spin_sdk::http::IntoResponse;

/// Entry point of the component (Spin 4).
#[cfg(not(feature = "p2"))]
#[spin_sdk::http_service]
async fn handle(req: platform::Request) -> impl IntoResponse {
    platform::serve("class-opening", req, app::class_opening::handle).await
}

/// Entry point of the component (Spin 3.x).
#[cfg(feature = "p2")]
#[spin_sdk::http_component]
async fn handle(req: platform::Request) -> impl IntoResponse {
    platform::serve("class-opening", req, app::class_opening::handle).await
}

//! The vouchers component on Spin: adapts the request, supplies WeChat's API
//! through Spin's outbound HTTP, and hands everything to `app::vouchers`.

#[cfg(feature = "p2")]
extern crate spin_sdk_p2 as spin_sdk;

use spin_sdk::http::IntoResponse;

/// WeChat's API through Spin's outbound HTTP (the host must be in `allowed_outbound_hosts`).
struct SpinWeChat;

impl app::vouchers::WeChat for SpinWeChat {
    async fn get(&self, url: &str) -> Result<(u16, Vec<u8>), String> {
        platform::outbound_get(url).await
    }

    async fn post_json(&self, url: &str, body: Vec<u8>) -> Result<(u16, Vec<u8>), String> {
        platform::outbound_post_json(url, body).await
    }
}

async fn serve(req: platform::Request) -> platform::Reply {
    let prepared = match platform::prepare(req, app::vouchers::VARIABLES).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let env = prepared.env();
    let res = app::vouchers::handle_with(&env, &prepared.request, &SpinWeChat).await;
    platform::log("vouchers", &prepared.request, &res);
    platform::reply(res)
}

/// Entry point of the component (Spin 4).
#[cfg(not(feature = "p2"))]
#[spin_sdk::http_service]
async fn handle(req: platform::Request) -> impl IntoResponse {
    serve(req).await
}

/// Entry point of the component (Spin 3.x).
#[cfg(feature = "p2")]
#[spin_sdk::http_component]
async fn handle(req: platform::Request) -> impl IntoResponse {
    serve(req).await
}

//! The vouchers component on Spin: adapts the request, supplies WeChat's API
//! through Spin's outbound HTTP, and hands everything to `app::vouchers`.

use spin_sdk::http::body::IncomingBodyExt;
use spin_sdk::http::{IntoResponse, Request};
use spin_sdk::http_service;

/// WeChat's API through Spin's outbound HTTP (the host must be in `allowed_outbound_hosts`).
struct SpinWeChat;

impl app::vouchers::WeChat for SpinWeChat {
    async fn get(&self, url: &str) -> Result<(u16, Vec<u8>), String> {
        // Errors carry no URL: it holds the app secret.
        let resp = spin_sdk::http::get(url)
            .await
            .map_err(|_| "outbound request failed".to_string())?;
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .bytes()
            .await
            .map_err(|_| "response body could not be read".to_string())?;
        Ok((status, body.to_vec()))
    }
}

/// Entry point of the component.
#[http_service]
async fn handle(req: Request) -> impl IntoResponse {
    let prepared = match platform::prepare(req, app::vouchers::VARIABLES).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let env = prepared.env();
    let res = app::vouchers::handle_with(&env, &prepared.request, &SpinWeChat).await;
    platform::log("vouchers", &prepared.request, &res);
    platform::reply(res)
}

//! Spin 3.x (spin-sdk 5): `wasi:http/incoming-handler@0.2`, sync variables,
//! `wasi:keyvalue@0.2.0-draft2` through the SDK's generated bindings.

use bytes::Bytes;
use futures::TryStreamExt;
pub use spin_sdk_p2::http::IncomingRequest as Request;
pub use spin_sdk_p2::wit::wasi::keyvalue::{atomics, batch, store as wkv};

/// The response type components return.
pub type Reply = http::Response<Bytes>;

/// Converts a handler's response, with its `content-length`.
pub fn reply(res: web::Response) -> Reply {
    crate::with_content_length(res)
}

/// A Spin variable of the component.
pub(crate) async fn variable(name: &str) -> Result<String, ()> {
    spin_sdk_p2::variables::get(name).map_err(|_| ())
}

fn method(m: spin_sdk_p2::http::Method) -> Result<http::Method, ()> {
    use spin_sdk_p2::http::Method as M;
    Ok(match m {
        M::Get => http::Method::GET,
        M::Head => http::Method::HEAD,
        M::Post => http::Method::POST,
        M::Put => http::Method::PUT,
        M::Delete => http::Method::DELETE,
        M::Connect => http::Method::CONNECT,
        M::Options => http::Method::OPTIONS,
        M::Trace => http::Method::TRACE,
        M::Patch => http::Method::PATCH,
        M::Other(o) => http::Method::from_bytes(o.as_bytes()).map_err(|_| ())?,
    })
}

/// The request with its body read: at most [`web::MAX_BODY_BYTES`] (413 beyond).
pub(crate) async fn read_request(req: Request) -> Result<web::Request, Reply> {
    let mut builder = http::Request::builder()
        .method(method(req.method()).map_err(|_| crate::unreadable())?)
        .uri(req.uri());
    for (name, value) in req.headers().entries() {
        builder = builder.header(name, value);
    }
    let mut body = Vec::new();
    let mut stream = std::pin::pin!(req.into_body_stream());
    while let Some(chunk) = stream.try_next().await.map_err(|_| crate::unreadable())? {
        if body.len() + chunk.len() > web::MAX_BODY_BYTES {
            return Err(crate::too_large());
        }
        body.extend_from_slice(&chunk);
    }
    builder
        .body(Bytes::from(body))
        .map_err(|_| crate::unreadable())
}

/// GET `url` through Spin's outbound HTTP: the status and the body. Errors
/// carry no URL (it may hold a secret).
pub async fn outbound_get(url: &str) -> Result<(u16, Vec<u8>), String> {
    let request = spin_sdk_p2::http::Request::get(url).build();
    let resp: spin_sdk_p2::http::Response = spin_sdk_p2::http::send(request)
        .await
        .map_err(|_| "outbound request failed".to_string())?;
    Ok((*resp.status(), resp.into_body()))
}

/// POST the JSON `body` to `url` through Spin's outbound HTTP: the status and
/// the body. Errors carry no URL (it may hold a secret).
pub async fn outbound_post_json(url: &str, body: Vec<u8>) -> Result<(u16, Vec<u8>), String> {
    let request = spin_sdk_p2::http::Request::post(url, body)
        .header("content-type", "application/json")
        .build();
    let resp: spin_sdk_p2::http::Response = spin_sdk_p2::http::send(request)
        .await
        .map_err(|_| "outbound request failed".to_string())?;
    Ok((*resp.status(), resp.into_body()))
}

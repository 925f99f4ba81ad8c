//! Spin 4 (spin-sdk 6): `wasi:http/handler@0.3`, async variables.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
pub use spin_sdk::experimental::wasi::keyvalue::{atomics, batch, store as wkv};
pub use spin_sdk::http::Request;

/// The response type components return.
pub type Reply = http::Response<Full<Bytes>>;

/// Converts a handler's response, with its `content-length`.
pub fn reply(res: web::Response) -> Reply {
    crate::with_content_length(res).map(Full::new)
}

/// A Spin variable of the component.
pub(crate) async fn variable(name: &str) -> Result<String, ()> {
    spin_sdk::variables::get(name).await.map_err(|_| ())
}

/// The request with its body read: at most [`web::MAX_BODY_BYTES`] (413 beyond).
pub(crate) async fn read_request(req: Request) -> Result<web::Request, Reply> {
    let (parts, body) = req.into_parts();
    let bytes = match Limited::new(body, web::MAX_BODY_BYTES).collect().await {
        Ok(c) => c.to_bytes(),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            return Err(crate::too_large());
        }
        Err(_) => return Err(crate::unreadable()),
    };
    Ok(web::Request::from_parts(parts, bytes))
}

/// GET `url` through Spin's outbound HTTP: the status and the body. Errors
/// carry no URL (it may hold a secret).
pub async fn outbound_get(url: &str) -> Result<(u16, Vec<u8>), String> {
    use spin_sdk::http::body::IncomingBodyExt;
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

/// POST the JSON `body` to `url` through Spin's outbound HTTP: the status and
/// the body. Errors carry no URL (it may hold a secret).
pub async fn outbound_post_json(url: &str, body: Vec<u8>) -> Result<(u16, Vec<u8>), String> {
    use spin_sdk::http::body::IncomingBodyExt;
    let request = http::Request::post(url)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))
        .map_err(|_| "outbound request could not be built".to_string())?;
    let resp = spin_sdk::http::send(request)
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

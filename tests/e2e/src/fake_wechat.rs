//! A fake of WeChat's server API on loopback, for the vouchers component's
//! login and binding: `GET /sns/jscode2session`, `POST /cgi-bin/stable_token`
//! and `POST /wxa/business/getuserphonenumber`, with WeChat's error codes.
//!
//! It answers for one mini-program ([`APP_ID`], [`APP_SECRET`]): logins and
//! phone codes are registered by the test; a phone code is single-use, as
//! WeChat's; an access token stays valid until the test invalidates it
//! (`40001` afterwards, as when another server force-refreshed it). It counts
//! what it was asked, so that tests can show how often the component called.
//! Point the component at it with the variable `wechat_api_base`
//! ([`FakeWeChat::base_url`]).

use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The mini-program's app id the fake accepts.
pub const APP_ID: &str = "wx-e2e-app";
/// The mini-program's app secret the fake accepts.
pub const APP_SECRET: &str = "wx-e2e-secret";

#[derive(Default)]
struct State {
    logins: BTreeMap<String, Value>,
    phones: BTreeMap<String, Value>,
    token: Option<String>,
    token_delay: Duration,
    fetches: usize,
    phone_calls: usize,
    requests: Vec<String>,
}

/// The fake; it serves until dropped.
pub struct FakeWeChat {
    base: String,
    state: Arc<Mutex<State>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl FakeWeChat {
    /// Starts the fake on a free loopback port (a runtime thread of its own).
    pub fn start() -> FakeWeChat {
        let state = Arc::new(Mutex::new(State::default()));
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("loopback port");
        std_listener.set_nonblocking(true).expect("non-blocking");
        let base = format!("http://{}", std_listener.local_addr().expect("address"));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let shared = state.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener =
                    tokio::net::TcpListener::from_std(std_listener).expect("tokio listener");
                let serve = async {
                    loop {
                        let Ok((sock, _)) = listener.accept().await else {
                            return;
                        };
                        tokio::spawn(serve_one(sock, shared.clone()));
                    }
                };
                tokio::select! {
                    _ = serve => {}
                    _ = stopped => {}
                }
            });
        });
        FakeWeChat {
            base,
            state,
            stop: Some(stop),
        }
    }

    /// `http://127.0.0.1:port`, for the variable `wechat_api_base`.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// The `wx.login` code `code` belongs to `openid`.
    pub fn login(&self, code: &str, openid: &str) -> &Self {
        self.login_answer(code, json!({"openid": openid, "session_key": "sk"}))
    }

    /// The `wx.login` code `code` answers `answer` (an openid or an errcode).
    pub fn login_answer(&self, code: &str, answer: Value) -> &Self {
        self.lock().logins.insert(code.into(), answer);
        self
    }

    /// The `getPhoneNumber` code `code` is this mainland mobile number.
    pub fn phone(&self, code: &str, mobile: &str) -> &Self {
        self.phone_answer(
            code,
            json!({"errcode": 0, "errmsg": "ok", "phone_info": {
                "phoneNumber": mobile, "purePhoneNumber": mobile, "countryCode": "86",
                "watermark": {"timestamp": 1_655_000_000, "appid": APP_ID}}}),
        )
    }

    /// The `getPhoneNumber` code `code` answers `answer` (with a valid token).
    pub fn phone_answer(&self, code: &str, answer: Value) -> &Self {
        self.lock().phones.insert(code.into(), answer);
        self
    }

    /// The token endpoint takes this long to answer (widens the window in
    /// which concurrent requests could all fetch).
    pub fn token_delay(&self, delay: Duration) -> &Self {
        self.lock().token_delay = delay;
        self
    }

    /// WeChat invalidates the current access token: calls with it get 40001.
    pub fn invalidate_token(&self) {
        self.lock().token = None;
    }

    /// Access tokens handed out.
    pub fn token_fetches(&self) -> usize {
        self.lock().fetches
    }

    /// Phone-number calls received (with any token).
    pub fn phone_calls(&self) -> usize {
        self.lock().phone_calls
    }

    /// Every request's method and path (access tokens and secrets elided).
    pub fn requests(&self) -> Vec<String> {
        self.lock().requests.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for FakeWeChat {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn serve_one(mut sock: tokio::net::TcpStream, state: Arc<Mutex<State>>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match sock.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let header = |name: &str| {
        head.lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_ascii_lowercase())
    };
    let chunked = header("transfer-encoding").is_some_and(|v| v.contains("chunked"));
    let length: usize = header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    // A body with a length, or chunked (as outbound HTTP sends a streamed body).
    loop {
        let rest = &buf[head_end..];
        let complete = if chunked {
            rest.ends_with(b"0\r\n\r\n")
        } else {
            rest.len() >= length
        };
        if complete {
            break;
        }
        match sock.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let raw = if chunked {
        dechunk(&buf[head_end..])
    } else {
        buf[head_end..head_end + length].to_vec()
    };
    let body: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
    let mut words = head.split_whitespace();
    let method = words.next().unwrap_or("").to_string();
    let target = words.next().unwrap_or("").to_string();
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let params: BTreeMap<&str, &str> = query.split('&').filter_map(|p| p.split_once('=')).collect();
    let delay = {
        let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
        s.requests.push(format!("{method} {path}"));
        if path == "/cgi-bin/stable_token" {
            s.token_delay
        } else {
            Duration::ZERO
        }
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let answer = {
        let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
        answer(&mut s, &method, path, &params, &body)
    };
    let text = answer.to_string();
    let resp = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
        text.len()
    );
    let _ = sock.write_all(resp.as_bytes()).await;
    let _ = sock.shutdown().await;
}

/// The data of a chunked body.
fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(i) = rest.windows(2).position(|w| w == b"\r\n") {
        let size_line = String::from_utf8_lossy(&rest[..i]);
        let size = usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
            .unwrap_or(0);
        if size == 0 || rest.len() < i + 2 + size {
            break;
        }
        out.extend_from_slice(&rest[i + 2..i + 2 + size]);
        rest = &rest[(i + 4 + size).min(rest.len())..];
    }
    out
}

fn answer(
    s: &mut State,
    method: &str,
    path: &str,
    params: &BTreeMap<&str, &str>,
    body: &Value,
) -> Value {
    let invalid_app = json!({"errcode": 40013, "errmsg": "invalid appid"});
    match (method, path) {
        ("GET", "/sns/jscode2session") => {
            if params.get("appid") != Some(&APP_ID)
                || params.get("secret") != Some(&APP_SECRET)
                || params.get("grant_type") != Some(&"authorization_code")
            {
                return invalid_app;
            }
            let code = params.get("js_code").copied().unwrap_or("");
            s.logins
                .get(code)
                .cloned()
                .unwrap_or_else(|| json!({"errcode": 40029, "errmsg": "invalid code"}))
        }
        ("POST", "/cgi-bin/stable_token") => {
            if body["appid"] != APP_ID
                || body["secret"] != APP_SECRET
                || body["grant_type"] != "client_credential"
            {
                return invalid_app;
            }
            s.fetches += 1;
            let n = s.fetches;
            let token = s
                .token
                .get_or_insert_with(|| format!("E2E-ACCESS-TOKEN-{n}"))
                .clone();
            json!({"access_token": token, "expires_in": 7200})
        }
        ("POST", "/wxa/business/getuserphonenumber") => {
            s.phone_calls += 1;
            let token = params.get("access_token").copied().unwrap_or("");
            if s.token.as_deref() != Some(token) {
                return json!({"errcode": 40001, "errmsg": "invalid credential, access_token is invalid or not latest"});
            }
            let code = body["code"].as_str().unwrap_or("");
            s.phones
                .remove(code)
                .unwrap_or_else(|| json!({"errcode": 40029, "errmsg": "invalid code"}))
        }
        _ => json!({"errcode": 40066, "errmsg": "invalid url"}),
    }
}

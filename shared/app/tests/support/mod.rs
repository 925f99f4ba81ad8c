//! What the in-process app tests share: the secrets a `web::Env` is built
//! with, tokens, requests as a Spin trigger would hand them over, answers
//! read back, and a test source of random bytes.
//!
//! Each test file keeps its own `World` (the store and clock its routes
//! need); only these building blocks are common.

#![allow(dead_code)]

use bytes::Bytes;
use chrono::{DateTime, Utc};
use policy::fixtures;
use policy::ids::{AreaCode, CreditCode};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use web::Secrets;
use web::auth::testing::TestKeys;
use web::auth::{Claims, Role, mint};

pub mod access;
pub mod wechat;

/// The keys every in-process test signs tokens with: the test identity
/// provider's Ed25519 key for staff roles, the test trainee key for
/// `trainee` (`mint(&claims, JWT)`). The Secrets of [`secrets`] verify them.
pub const JWT: TestKeys = TestKeys;
/// The key of the keyed hashes (person and phone refs).
pub const HMAC: &str = "test-hmac-key-0123456789abcdefghijklmnopq";
/// The key that seals values at rest.
pub const PII_KEY: &str = "test-enc-key-0123456789abcdefghijklmnopqr";

/// The audit log's checkpoint signing key (an Ed25519 seed, hex).
pub const AUDIT_KEY: &str = "a0d1a0d1a0d1a0d1a0d1a0d1a0d1a0d1a0d1a0d1a0d1a0d1a0d1a0d1a0d1a0d1";

/// The secrets above and the audit log's key (the class-opening
/// component's variables).
pub fn secrets() -> Secrets {
    Secrets {
        identity: web::auth::testing::identity(),
        pii_hmac_key: HMAC.into(),
        pii_key: PII_KEY.into(),
        extra: BTreeMap::from([("audit_checkpoint_key".to_string(), AUDIT_KEY.to_string())]),
    }
}

/// [`secrets`] and the WeChat mini-program's variables (its API at
/// `http://wechat.test`, which the tests answer with a fake).
pub fn secrets_with_wechat() -> Secrets {
    let mut s = secrets();
    s.extra.extend([
        ("wechat_app_id".to_string(), "wx-test-app".to_string()),
        (
            "wechat_app_secret".to_string(),
            "wx-test-secret".to_string(),
        ),
        (
            "wechat_api_base".to_string(),
            "http://wechat.test".to_string(),
        ),
    ]);
    s
}

/// Claims for `role`, valid from `iat` to `exp`, bound to the fixtures'
/// institution, district 530102 or a fixed person ref, unless `binding`
/// names another institution or district.
pub fn claims(role: Role, binding: Option<&str>, iat: i64, exp: i64) -> Claims {
    Claims {
        sub: if role == Role::Trainee {
            wechat::trainee_sub(&"ab".repeat(32))
        } else {
            format!("{}-user", role.id())
        },
        role,
        institution: (role == Role::Institution)
            .then(|| CreditCode::parse(binding.unwrap_or(fixtures::INSTITUTION)).unwrap()),
        district: (role == Role::DistrictOfficer)
            .then(|| AreaCode::parse(binding.unwrap_or("530102")).unwrap()),
        person: (role == Role::Trainee).then(|| "ab".repeat(32)),
        iat,
        nbf: None,
        exp,
    }
}

/// The longest a token of `role` may live: the identity provider's maximum
/// (the default of `auth_max_lifetime_secs`), or a trainee token's.
pub fn max_lifetime(role: Role) -> i64 {
    if role == Role::Trainee {
        web::auth::TRAINEE_MAX_LIFETIME_SECS
    } else {
        web::auth::DEFAULT_MAX_LIFETIME_SECS
    }
}

/// A token signed with the test keys ([`JWT`]) for [`claims`] issued a
/// minute before `now`, valid for as long as its role's tokens may live.
pub fn token(role: Role, binding: Option<&str>, now: DateTime<Utc>) -> String {
    let t = now.timestamp();
    mint(
        &claims(role, binding, t - 60, t - 60 + max_lifetime(role)),
        JWT,
    )
}

/// A request: a JSON content type when there is a body, the bearer token if
/// any, then `headers`.
pub fn request(
    method: impl AsRef<str>,
    path: &str,
    token: Option<&str>,
    body: Option<Bytes>,
    headers: &[(&str, &str)],
) -> web::Request {
    let mut b = http::Request::builder().method(method.as_ref()).uri(path);
    if body.is_some() {
        b = b.header("content-type", "application/json");
    }
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(body.unwrap_or_default()).unwrap()
}

/// A JSON value as a request body.
pub fn json_body(v: &Value) -> Option<Bytes> {
    Some(Bytes::from(serde_json::to_vec(v).unwrap()))
}

/// What a route answered.
#[derive(Debug)]
pub struct Answer {
    /// Status.
    pub status: http::StatusCode,
    /// The body as JSON (`Null` when empty or not JSON).
    pub body: Value,
    /// The body as text.
    pub text: String,
    /// Headers.
    pub headers: http::HeaderMap,
}

/// Reads a response.
pub fn answer(res: web::Response) -> Answer {
    let text = String::from_utf8_lossy(res.body()).into_owned();
    Answer {
        status: res.status(),
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
        text,
        headers: res.headers().clone(),
    }
}

/// Random bytes for tests: splitmix64 over a shared counter, so distinct
/// across calls and threads, and the same sequence in every run.
pub fn random(buf: &mut [u8]) {
    static SEED: AtomicU64 = AtomicU64::new(0x9E37_79B9_7F4A_7C15);
    for chunk in buf.chunks_mut(8) {
        let mut z = SEED.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::SeqCst);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
    }
}

/// Polls a future that never waits to completion (the handlers' only await
/// is a WeChat call, which the tests answer with a fake at once).
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

/// The key of WeChat bind tickets in the in-process tests (derived from the
/// test trainee signing key).
pub fn ticket_key() -> String {
    web::auth::testing::identity()
        .bind_ticket_key()
        .expect("the test identity holds the trainee signing key")
}

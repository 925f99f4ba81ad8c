//! The mini-program's identity: WeChat login and binding (routes of the
//! vouchers component).
//!
//! | route | caller |
//! | --- | --- |
//! | `POST /api/v1/wechat/login` | anyone with a `wx.login` code |
//! | `POST /api/v1/wechat/bind` | anyone with a bind ticket from an unbound login |
//!
//! **Login** exchanges the `wx.login` code for the openid
//! (`sns/jscode2session`); a bound WeChat user gets a trainee token, an
//! unbound one a short-lived bind ticket. **Binding** proves who the user is
//! with what nobody at the institution can type in: the mini-program's
//! `getPhoneNumber` code, exchanged here through WeChat's
//! `wxa/business/getuserphonenumber` for the phone number WeChat itself
//! verified, which must equal the roster mobile of the person named by the ID
//! number. Each attempt is counted before it is checked, per WeChat user
//! (every attempt) and then per person (attempts the user's limit let
//! through); past [`BIND_MAX_ATTEMPTS`] of either in an hour it is locked.
//! A person has one binding at a time: a new one ends the old, whose tokens
//! stop working at once ([`require_current`]).
//!
//! WeChat's access token is shared through the store (`store::wechat`): one
//! request fetches it from `cgi-bin/stable_token` while the others wait for
//! it, and it is refreshed [`ACCESS_TOKEN_MARGIN_SECS`] before it expires or
//! when WeChat calls it invalid (40001, 42001).

use crate::vouchers::keyed;
use http::StatusCode;
use policy::ids::{IdNumber, Mobile};
use serde::Deserialize;
use serde_json::{Value, json};
use std::future::Future;
use store::KeyValue;
use store::classes::ClassRecord;
use store::records::decode;
use store::wechat::{self as wx, AccessToken};
use web::auth::Claims;
use web::json::{self, respond};
use web::{Env, Principal, Problem, Request, Response, Role, idempotent};

/// Binding attempts per WeChat user, and per person, in one hour; the next is locked out.
pub const BIND_MAX_ATTEMPTS: i64 = 5;
/// Lifetime of a trainee token, in seconds (the most a trainee token may live).
pub const TRAINEE_TOKEN_SECS: i64 = web::auth::TRAINEE_MAX_LIFETIME_SECS;
/// Lifetime of a bind ticket, in seconds.
pub const BIND_TICKET_SECS: i64 = 600;
/// The cached access token is refreshed this many seconds before WeChat's expiry.
pub const ACCESS_TOKEN_MARGIN_SECS: i64 = 300;
/// Reads of the store while another request fetches the access token (about 3 s).
const TOKEN_WAIT_POLLS: usize = 320;

/// An HTTP client for WeChat's API (the Spin component's outbound HTTP; a fake in tests).
pub trait WeChat {
    /// GETs `url` and returns the status and body, or a transport failure (without the URL).
    fn get(&self, url: &str) -> impl Future<Output = Result<(u16, Vec<u8>), String>>;
    /// POSTs the JSON `body` to `url` and returns the status and body, or a
    /// transport failure (without the URL).
    fn post_json(
        &self,
        url: &str,
        body: Vec<u8>,
    ) -> impl Future<Output = Result<(u16, Vec<u8>), String>>;
}

// ---------------------------------------------------------------------------
// Configuration and WeChat's answers

struct Config {
    app_id: String,
    secret: String,
    base: String,
}

fn config<K: KeyValue>(env: &Env<'_, K>) -> Result<Config, Problem> {
    let var = |n: &str| env.secrets.extra.get(n).map(|s| s.trim()).unwrap_or("");
    let (app_id, secret) = (var("wechat_app_id"), var("wechat_app_secret"));
    if app_id.is_empty() || secret.is_empty() {
        return Err(Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "wechat_not_configured",
            "微信登录未配置",
            "variables wechat_app_id and wechat_app_secret are not set",
        ));
    }
    let base = match var("wechat_api_base") {
        "" => "https://api.weixin.qq.com",
        b => b,
    }
    .trim_end_matches('/')
    .to_string();
    Ok(Config {
        app_id: app_id.to_string(),
        secret: secret.to_string(),
        base,
    })
}

/// The problem for a WeChat `errcode` (`what`: which code the caller sent).
fn wechat_problem(errcode: i64, what: &str) -> Problem {
    match errcode {
        40029 | 40163 => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "wechat_code_invalid",
            "微信凭证无效或已使用",
            format!("WeChat says the {what} is invalid or already used; get a new one"),
        ),
        45011 => Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "wechat_rate_limited",
            "微信接口调用过于频繁，请稍后再试",
            "WeChat rate-limited the call; retry in a minute",
        )
        .header(http::header::RETRY_AFTER, "60"),
        -1 => busy(),
        40226 => Problem::forbidden("WeChat flags this user as high-risk; login is refused"),
        _ => Problem::new(
            StatusCode::BAD_GATEWAY,
            "wechat_error",
            "微信接口返回错误",
            format!("WeChat answered with error code {errcode}"),
        ),
    }
    .with("wechat_errcode", errcode)
}

fn busy() -> Problem {
    Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "wechat_busy",
        "微信系统繁忙，请稍后再试",
        "WeChat is busy; retry shortly",
    )
    .header(http::header::RETRY_AFTER, "5")
}

fn unreachable() -> Problem {
    Problem::new(
        StatusCode::BAD_GATEWAY,
        "wechat_unreachable",
        "无法连接微信接口",
        "the WeChat API could not be reached",
    )
}

fn bad_answer(detail: &str) -> Problem {
    Problem::new(
        StatusCode::BAD_GATEWAY,
        "wechat_error",
        "微信接口返回错误",
        format!("WeChat answered {detail}"),
    )
}

fn encode_query(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A code from the mini-program (`wx.login`, `getPhoneNumber`): 1 to 128 characters.
fn code_field<'a>(raw: &'a str, field: &str) -> Result<&'a str, Problem> {
    let code = raw.trim();
    if code.is_empty() || code.len() > 128 {
        return Err(
            Problem::invalid(format!("{field} must be 1 to 128 characters"))
                .field(field, "1 to 128 characters"),
        );
    }
    Ok(code)
}

// ---------------------------------------------------------------------------
// Trainee tokens

/// 503 unless this component holds the trainee signing key (variable
/// `trainee_signing_key`): it signs trainee tokens and keys bind tickets.
fn trainee_key_problem() -> Problem {
    Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "wechat_not_configured",
        "微信登录未配置",
        "variable trainee_signing_key is not set",
    )
}

/// The bind tickets' key (derived from the trainee signing key).
fn ticket_key<K: KeyValue>(env: &Env<'_, K>) -> Result<String, Problem> {
    env.secrets
        .identity
        .bind_ticket_key()
        .ok_or_else(trainee_key_problem)
}

/// The `sub` of a trainee token: `wx:` and the first 16 hex digits of the openid ref.
fn trainee_sub(oref: &str) -> String {
    format!("wx:{}", &oref[..16.min(oref.len())])
}

fn trainee_token<K: KeyValue>(
    env: &Env<'_, K>,
    person: &str,
    oref: &str,
) -> Result<Value, Problem> {
    let iat = env.now.timestamp();
    let claims = Claims {
        sub: trainee_sub(oref),
        role: Role::Trainee,
        institution: None,
        district: None,
        person: Some(person.to_string()),
        iat,
        nbf: None,
        exp: iat + TRAINEE_TOKEN_SECS,
    };
    let token = env
        .secrets
        .identity
        .mint_trainee(&claims)
        .ok_or_else(trainee_key_problem)?;
    Ok(json!({
        "status": "bound",
        "token": token,
        "token_type": "Bearer",
        "expires_in": TRAINEE_TOKEN_SECS,
        "person_ref": person,
    }))
}

/// Refuses a trainee token whose binding is no longer the person's current
/// one (the person bound another WeChat user since, or this WeChat user
/// another person): 401 `token_binding_replaced`.
pub(crate) fn require_current<K: KeyValue>(
    env: &Env<'_, K>,
    who: &Principal,
) -> Result<(), Problem> {
    let person = who.claims.person.as_deref().unwrap_or("");
    let prefix = who.claims.sub.strip_prefix("wx:").unwrap_or("");
    if prefix.len() == 16 && wx::current(env.kv, person, prefix)? {
        return Ok(());
    }
    Err(Problem::new(
        StatusCode::UNAUTHORIZED,
        "token_binding_replaced",
        "微信绑定已变更，请重新登录",
        "this token's WeChat binding is not the person's current binding; log in again",
    ))
}

// ---------------------------------------------------------------------------
// Login

/// Body of `POST /api/v1/wechat/login`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// The code from `wx.login`.
    pub code: String,
}

#[derive(Deserialize)]
struct Session {
    #[serde(default)]
    openid: Option<String>,
    #[serde(default)]
    errcode: Option<i64>,
}

pub(crate) async fn login<K: KeyValue, W: WeChat>(
    env: &Env<'_, K>,
    req: &Request,
    client: &W,
) -> Result<Response, Problem> {
    let body: LoginRequest = json::body(req)?;
    let code = code_field(&body.code, "code")?;
    let cfg = config(env)?;
    let ticket_key = ticket_key(env)?;
    let url = format!(
        "{}/sns/jscode2session?appid={}&secret={}&js_code={}&grant_type=authorization_code",
        cfg.base,
        encode_query(&cfg.app_id),
        encode_query(&cfg.secret),
        encode_query(code)
    );
    let (status, bytes) = client.get(&url).await.map_err(|_| unreachable())?;
    let session: Session = serde_json::from_slice(&bytes)
        .map_err(|_| bad_answer(&format!("HTTP {status} with a body that is not a session")))?;
    if let Some(err) = session.errcode.filter(|e| *e != 0) {
        return Err(wechat_problem(err, "wx.login code"));
    }
    let openid = session
        .openid
        .filter(|o| !o.is_empty())
        .ok_or_else(|| bad_answer("without an openid"))?;
    let oref = wx::openid_ref(&env.secrets.pii_hmac_key, &openid);
    match wx::binding(env.kv, &oref)? {
        Some(b) => Ok(respond(
            StatusCode::OK,
            &trainee_token(env, &b.person, &oref)?,
        )),
        None => Ok(respond(
            StatusCode::OK,
            &json!({
                "status": "unbound",
                "binding_required": true,
                "bind_ticket": wx::sign_ticket(
                    &ticket_key,
                    &oref,
                    env.now.timestamp() + BIND_TICKET_SECS,
                ),
                "bind_ticket_expires_in": BIND_TICKET_SECS,
            }),
        )),
    }
}

// ---------------------------------------------------------------------------
// The access token

#[derive(Deserialize)]
struct TokenAnswer {
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<i64>,
    #[serde(default)]
    errcode: Option<i64>,
}

/// WeChat's access token: the cached one while it is fresh (and is not
/// `stale`, a token WeChat just called invalid), else one fetched by exactly
/// one request of all those that need it now, the others waiting for it.
async fn access_token<K: KeyValue, W: WeChat>(
    env: &Env<'_, K>,
    cfg: &Config,
    client: &W,
    stale: Option<&str>,
) -> Result<String, Problem> {
    let fresh = |t: &AccessToken| {
        Some(t.token.as_str()) != stale
            && env.now.timestamp() < t.expires_at.timestamp() - ACCESS_TOKEN_MARGIN_SECS
    };
    let mut wanted = None;
    for attempt in 0..TOKEN_WAIT_POLLS {
        store::records::backoff(attempt);
        let cached = wx::access_token(env.kv)?;
        if let Some(t) = cached.as_ref().filter(|t| fresh(t)) {
            return Ok(t.token.clone());
        }
        let generation = cached.as_ref().map_or(1, |t| t.generation + 1);
        if wanted.is_some_and(|g| g < generation) {
            // Another request stored a newer token that is not fresh for us.
            return Err(busy());
        }
        wanted = Some(generation);
        if wx::take_token_fetch(env.kv, generation, env.now)? {
            let token = fetch_access_token(env, cfg, client, generation).await?;
            wx::put_access_token(env.kv, &token)?;
            return Ok(token.token);
        }
    }
    Err(busy())
}

async fn fetch_access_token<K: KeyValue, W: WeChat>(
    env: &Env<'_, K>,
    cfg: &Config,
    client: &W,
    generation: i64,
) -> Result<AccessToken, Problem> {
    let body = json!({
        "grant_type": "client_credential",
        "appid": cfg.app_id,
        "secret": cfg.secret,
        "force_refresh": false,
    });
    let (status, bytes) = client
        .post_json(
            &format!("{}/cgi-bin/stable_token", cfg.base),
            serde_json::to_vec(&body).expect("serialises"),
        )
        .await
        .map_err(|_| unreachable())?;
    let answer: TokenAnswer = serde_json::from_slice(&bytes).map_err(|_| {
        bad_answer(&format!(
            "HTTP {status} with a body that is not an access token"
        ))
    })?;
    if let Some(err) = answer.errcode.filter(|e| *e != 0) {
        return Err(wechat_problem(err, "app credential"));
    }
    let (Some(token), Some(expires_in)) = (
        answer.access_token.filter(|t| !t.is_empty()),
        answer.expires_in.filter(|e| *e > 0),
    ) else {
        return Err(bad_answer("without an access token"));
    };
    Ok(AccessToken {
        token,
        expires_at: env.now + chrono::Duration::seconds(expires_in),
        generation,
        fetched_at: env.now,
    })
}

// ---------------------------------------------------------------------------
// The verified phone number

#[derive(Deserialize)]
struct PhoneAnswer {
    #[serde(default)]
    errcode: Option<i64>,
    #[serde(default)]
    phone_info: Option<PhoneInfo>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PhoneInfo {
    #[serde(default)]
    pure_phone_number: Option<String>,
    #[serde(default)]
    country_code: Option<Value>,
}

/// Errors of WeChat meaning "this access token is not valid (any more)".
const TOKEN_ERRORS: [i64; 3] = [40001, 40014, 42001];

/// The phone number WeChat verified for a `getPhoneNumber` code: `None` when
/// it is not a mainland China mobile number (it cannot be on a roster).
async fn verified_phone<K: KeyValue, W: WeChat>(
    env: &Env<'_, K>,
    cfg: &Config,
    client: &W,
    code: &str,
) -> Result<Option<Mobile>, Problem> {
    let body = serde_json::to_vec(&json!({ "code": code })).expect("serialises");
    let mut stale: Option<String> = None;
    for _ in 0..2 {
        let token = access_token(env, cfg, client, stale.as_deref()).await?;
        let url = format!(
            "{}/wxa/business/getuserphonenumber?access_token={}",
            cfg.base,
            encode_query(&token)
        );
        let (status, bytes) = client
            .post_json(&url, body.clone())
            .await
            .map_err(|_| unreachable())?;
        let answer: PhoneAnswer = serde_json::from_slice(&bytes).map_err(|_| {
            bad_answer(&format!(
                "HTTP {status} with a body that is not a phone number"
            ))
        })?;
        match answer.errcode.unwrap_or(0) {
            0 => {}
            e if TOKEN_ERRORS.contains(&e) => {
                stale = Some(token);
                continue;
            }
            e => return Err(wechat_problem(e, "getPhoneNumber code")),
        }
        let info = answer
            .phone_info
            .ok_or_else(|| bad_answer("without a phone number"))?;
        let mainland = match &info.country_code {
            None => true,
            Some(Value::String(c)) => c.trim_start_matches('+') == "86",
            Some(Value::Number(n)) => n.as_i64() == Some(86),
            Some(_) => false,
        };
        return Ok(info
            .pure_phone_number
            .filter(|_| mainland)
            .and_then(|p| Mobile::parse(p).ok()));
    }
    Err(wechat_problem(40001, "access token"))
}

// ---------------------------------------------------------------------------
// Binding

/// Body of `POST /api/v1/wechat/bind`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BindRequest {
    /// The ticket from an unbound login.
    pub bind_ticket: String,
    /// The trainee's ID number.
    pub id_number: IdNumber,
    /// The code of the mini-program's `getPhoneNumber` button.
    pub phone_code: String,
}

fn locked_problem(
    until: chrono::DateTime<chrono::Utc>,
    now: chrono::DateTime<chrono::Utc>,
) -> Problem {
    Problem::new(
        StatusCode::TOO_MANY_REQUESTS,
        "binding_locked",
        "验证次数过多，请稍后再试",
        format!(
            "too many binding attempts; binding is locked until {}",
            until.to_rfc3339()
        ),
    )
    .header(
        http::header::RETRY_AFTER,
        (until - now).num_seconds().max(1).to_string(),
    )
    .with("locked_until", until)
}

/// Whether the person has a roster entry whose mobile is `phone` (by refs).
fn on_roster_with<K: KeyValue>(
    env: &Env<'_, K>,
    person: &str,
    phone: &str,
) -> Result<bool, Problem> {
    let class_ids = store::vouchers::classes_of_person(env.kv, person)?;
    let keys: Vec<String> = class_ids.iter().map(|c| store::keys::class(c)).collect();
    for b in env
        .kv
        .get_many(&keys)
        .map_err(store::StoreError::from)?
        .into_iter()
        .flatten()
    {
        let c: ClassRecord = decode(&b, "class")?;
        if c.roster_refs
            .iter()
            .any(|r| r.person == person && r.phone == phone)
        {
            return Ok(true);
        }
    }
    Ok(false)
}

pub(crate) async fn bind<K: KeyValue, W: WeChat>(
    env: &Env<'_, K>,
    req: &Request,
    client: &W,
) -> Result<Response, Problem> {
    let body: BindRequest = json::body(req)?;
    let phone_code = code_field(&body.phone_code, "phone_code")?;
    let oref = wx::verify_ticket(&ticket_key(env)?, &body.bind_ticket, env.now.timestamp())
        .ok_or_else(|| {
            Problem::unauthenticated("the bind ticket is invalid or expired; log in again")
        })?;
    let cfg = config(env)?;
    let hasher = env.hasher();
    let person = hasher.person_ref(&body.id_number);
    let canonical = json!({
        "person": person,
        "phone_code": hasher.fingerprint(phone_code.as_bytes()),
    });
    let caller = format!("wx:{oref}");
    idempotent::run_as_async(
        env,
        &keyed(req, &canonical),
        "wechat.bind",
        &caller,
        || async {
            // Counted before checking: parallel attempts each take a number.
            // The WeChat user's counter counts every attempt; the person's
            // counts those the user's lockout let through, so that neither a
            // user nor all users together get more than the limit checked
            // for one person.
            let locked = || Err(locked_problem(wx::window_end(env.now), env.now));
            let by_user = wx::count_attempt(env.kv, &caller, BIND_MAX_ATTEMPTS, env.now)?;
            if by_user > BIND_MAX_ATTEMPTS {
                return locked();
            }
            let by_person = wx::count_attempt(
                env.kv,
                &format!("person:{person}"),
                BIND_MAX_ATTEMPTS,
                env.now,
            )?;
            if by_person > BIND_MAX_ATTEMPTS {
                return locked();
            }
            let used = by_user.max(by_person);
            let phone = verified_phone(env, &cfg, client, phone_code).await?;
            let proven = match &phone {
                Some(p) => on_roster_with(env, &person, &hasher.phone_ref(p))?,
                None => false,
            };
            if !proven {
                return Err(Problem::new(
                    StatusCode::FORBIDDEN,
                    "binding_proof_failed",
                    "微信验证的手机号与花名册登记的手机号不一致",
                    "the mobile number WeChat verified is not the one on a roster entry of this ID number",
                )
                .with("attempts_left", BIND_MAX_ATTEMPTS - used));
            }
            let actor = store::audit::Actor {
                sub: trainee_sub(&oref),
                role: Role::Trainee.id().to_string(),
            };
            let bound = wx::bind(env.kv, &oref, &person, &actor, env.now)?;
            let mut answer = trainee_token(env, &person, &oref)?;
            answer["replaced_binding"] = json!(bound.replaced.is_some());
            Ok(respond(StatusCode::OK, &answer))
        },
    )
    .await
}

//! A fake WeChat for the in-process tests, and trainees bound the way the
//! binding step binds them.

use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Mutex;
use store::KeyValue;

/// The openid ref the tests bind `person` to.
pub fn openid_ref_of(person: &str) -> String {
    store::wechat::openid_ref(super::HMAC, &format!("openid-of-{person}"))
}

/// The `sub` of a trainee token bound through [`openid_ref_of`].
pub fn trainee_sub(person: &str) -> String {
    format!("wx:{}", &openid_ref_of(person)[..16])
}

/// Binds `person` to its test WeChat user in `kv` at `now`, as a successful
/// binding does.
pub fn bind_at(kv: &impl KeyValue, person: &str, now: chrono::DateTime<chrono::Utc>) {
    let actor = store::audit::Actor {
        sub: trainee_sub(person),
        role: "trainee".into(),
    };
    store::wechat::bind(kv, &openid_ref_of(person), person, &actor, now).expect("binding written");
}

/// [`bind_at`] now.
pub fn bind(kv: &impl KeyValue, person: &str) {
    bind_at(kv, person, chrono::Utc::now());
}

#[derive(Default)]
struct State {
    logins: BTreeMap<String, Value>,
    phones: BTreeMap<String, Value>,
    token: Option<String>,
    fetches: usize,
    phone_calls: usize,
    token_errcode: Option<i64>,
}

/// WeChat's `jscode2session`, `cgi-bin/stable_token` and
/// `wxa/business/getuserphonenumber` at `http://wechat.test`, for the app
/// `wx-test-app` / `wx-test-secret`.
#[derive(Default)]
pub struct FakeWeChat {
    state: Mutex<State>,
}

impl FakeWeChat {
    /// `code` of `wx.login` answers `answer` (an openid or an errcode).
    pub fn login(self, code: &str, answer: Value) -> Self {
        self.state
            .lock()
            .unwrap()
            .logins
            .insert(code.into(), answer);
        self
    }

    /// `code` of `getPhoneNumber` is this mainland mobile number.
    pub fn phone(self, code: &str, mobile: &str) -> Self {
        self.add_phone(code, mobile);
        self
    }

    /// [`FakeWeChat::phone`] on a shared fake.
    pub fn add_phone(&self, code: &str, mobile: &str) {
        self.state.lock().unwrap().phones.insert(
            code.into(),
            json!({"errcode": 0, "errmsg": "ok", "phone_info": {
                "phoneNumber": mobile, "purePhoneNumber": mobile, "countryCode": "86",
                "watermark": {"timestamp": 1_655_000_000, "appid": "wx-test-app"}}}),
        );
    }

    /// `code` of `getPhoneNumber` answers `answer` when the token is valid.
    pub fn phone_answer(self, code: &str, answer: Value) -> Self {
        self.state
            .lock()
            .unwrap()
            .phones
            .insert(code.into(), answer);
        self
    }

    /// The token endpoint answers this error code from now on.
    pub fn token_error(&self, errcode: i64) {
        self.state.lock().unwrap().token_errcode = Some(errcode);
    }

    /// WeChat invalidates the current access token (as when another server
    /// force-refreshed it): the next phone call with it gets 40001.
    pub fn invalidate_token(&self) {
        self.state.lock().unwrap().token = None;
    }

    /// Access tokens handed out.
    pub fn fetches(&self) -> usize {
        self.state.lock().unwrap().fetches
    }

    /// Phone-number calls received.
    pub fn phone_calls(&self) -> usize {
        self.state.lock().unwrap().phone_calls
    }
}

impl app::vouchers::WeChat for FakeWeChat {
    async fn get(&self, url: &str) -> Result<(u16, Vec<u8>), String> {
        let rest = url
            .strip_prefix(
                "http://wechat.test/sns/jscode2session?appid=wx-test-app&secret=wx-test-secret&js_code=",
            )
            .ok_or("unexpected URL")?;
        let code = rest
            .strip_suffix("&grant_type=authorization_code")
            .ok_or("unexpected URL")?;
        match self.state.lock().unwrap().logins.get(code) {
            Some(v) => Ok((200, serde_json::to_vec(v).unwrap())),
            None => Err("down".into()),
        }
    }

    async fn post_json(&self, url: &str, body: Vec<u8>) -> Result<(u16, Vec<u8>), String> {
        let body: Value = serde_json::from_slice(&body).map_err(|_| "not JSON")?;
        let mut s = self.state.lock().unwrap();
        let answer = if url == "http://wechat.test/cgi-bin/stable_token" {
            assert_eq!(
                body,
                json!({"grant_type": "client_credential", "appid": "wx-test-app",
                       "secret": "wx-test-secret", "force_refresh": false})
            );
            match s.token_errcode {
                Some(e) => json!({"errcode": e, "errmsg": "error"}),
                None => {
                    s.fetches += 1;
                    let n = s.fetches;
                    let t = s
                        .token
                        .get_or_insert_with(|| format!("ACCESS-TOKEN-{n}"))
                        .clone();
                    json!({"access_token": t, "expires_in": 7200})
                }
            }
        } else if let Some(token) =
            url.strip_prefix("http://wechat.test/wxa/business/getuserphonenumber?access_token=")
        {
            s.phone_calls += 1;
            if s.token.as_deref() != Some(token) {
                json!({"errcode": 40001, "errmsg": "invalid credential"})
            } else {
                let code = body["code"].as_str().unwrap_or("");
                match s.phones.remove(code) {
                    // Codes are single-use, as WeChat's.
                    Some(v) => v,
                    None => json!({"errcode": 40029, "errmsg": "invalid code"}),
                }
            }
        } else {
            return Err("unexpected URL".into());
        };
        Ok((200, serde_json::to_vec(&answer).unwrap()))
    }
}

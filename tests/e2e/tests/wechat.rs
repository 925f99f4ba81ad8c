//! WeChat binding under concurrency, through the real `vouchers.wasm` and
//! outbound HTTP to the fake WeChat (`e2e::FakeWeChat`), on the SQLite and
//! the Redis backends: parallel wrong attempts cannot slip past the attempt
//! counter, many concurrent bindings share one access token, and a second
//! binding of a person ends the first.

use crate::common::{call, file_class, seed};
use e2e::kv::KvStore;
use e2e::redis_server::RedisServer;
use e2e::{FakeWeChat, Host, HostConfig, Reply};
use futures::future::join_all;
use serde_json::json;
use std::path::Path;
use std::time::Duration;
use store::wechat::{ATTEMPT_WINDOW_SECS, attempts_key, openid_ref};

/// Where a test's host keeps its data.
enum Backend {
    Sqlite(tempfile::TempDir),
    Redis(RedisServer),
}

impl Backend {
    fn config(&self, wechat: &FakeWeChat) -> HostConfig {
        let base = match self {
            Backend::Sqlite(dir) => crate::common::product(dir.path().join("kv.db")),
            Backend::Redis(r) => crate::common::with_secrets(
                HostConfig::product_only(r.dir().join("unused.db")).redis(r.url()),
            ),
        };
        base.variable("wechat_app_id", e2e::fake_wechat::APP_ID)
            .variable("wechat_app_secret", e2e::fake_wechat::APP_SECRET)
            .variable("wechat_api_base", wechat.base_url())
    }

    /// A connection of the test's own to the store.
    fn open(&self, wechat: &FakeWeChat) -> KvStore {
        let c = self.config(wechat);
        KvStore::open(Path::new(&c.kv_path), c.redis.as_ref()).unwrap()
    }
}

fn sqlite() -> Option<Backend> {
    Some(Backend::Sqlite(tempfile::tempdir().unwrap()))
}

fn redis(test: &str) -> Option<Backend> {
    RedisServer::start_or_skip(test).map(Backend::Redis)
}

async fn post(host: &Host, path: &str, body: serde_json::Value) -> Reply {
    call(host, "POST", path, None, &body.to_string(), &[]).await
}

async fn ticket(host: &Host, code: &str) -> String {
    let r = post(host, "/api/v1/wechat/login", json!({"code": code})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json().unwrap();
    assert_eq!(v["status"], "unbound", "{v}");
    v["bind_ticket"].as_str().unwrap().to_string()
}

/// The attempts counted for `subject` in this hour (and the one before, in
/// case the test crossed the hour).
fn counted(kv: &KvStore, subject: &str) -> i64 {
    let window = chrono::Utc::now()
        .timestamp()
        .div_euclid(ATTEMPT_WINDOW_SECS);
    [window - 1, window]
        .iter()
        .map(|w| {
            kv.increment("default", &attempts_key(subject, *w), 0)
                .unwrap()
        })
        .sum()
}

async fn twenty_parallel_wrong_attempts(backend: Backend) {
    let wechat = FakeWeChat::start();
    let host = Host::start(backend.config(&wechat)).expect("host starts");
    seed(&host).await;
    let (_, app) = file_class(&host, 2).await;
    wechat.login("guesser", "oE2E-guesser");
    for n in 0..21 {
        // WeChat verified the guesser's own phone: line 1's, not line 0's.
        wechat.phone(&format!("wrong-{n}"), app.roster[1].mobile.expose());
    }
    wechat.phone("right", app.roster[0].mobile.expose());
    let ticket = ticket(&host, "guesser").await;
    let id = app.roster[0].id_number.expose();
    let replies = join_all((0..20).map(|n| {
        post(
            &host,
            "/api/v1/wechat/bind",
            json!({"bind_ticket": ticket, "id_number": id, "phone_code": format!("wrong-{n}")}),
        )
    }))
    .await;
    let mut statuses: Vec<(u16, String)> = replies
        .iter()
        .map(|r| {
            (
                r.status,
                r.json().unwrap()["code"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    statuses.sort();
    let refused = statuses.iter().filter(|s| s.0 == 403).count();
    let locked = statuses.iter().filter(|s| s.0 == 429).count();
    assert_eq!((refused, locked), (5, 15), "{statuses:?}");
    assert_eq!(
        wechat.phone_calls(),
        5,
        "a locked-out attempt never reaches WeChat"
    );
    assert_eq!(
        wechat.token_fetches(),
        1,
        "one access token for all of them"
    );

    let kv = backend.open(&wechat);
    let oref = openid_ref(crate::common::HMAC, "oE2E-guesser");
    let person =
        store::pii::PiiHasher::new(crate::common::HMAC).person_ref(&app.roster[0].id_number);
    assert_eq!(
        counted(&kv, &format!("wx:{oref}")),
        20,
        "every attempt counted"
    );
    assert_eq!(
        counted(&kv, &format!("person:{person}")),
        5,
        "the person's counter counts the attempts the user's limit let through"
    );

    // The lockout is in force: the right phone is refused too, WeChat not asked.
    let r = post(
        &host,
        "/api/v1/wechat/bind",
        json!({"bind_ticket": ticket, "id_number": id, "phone_code": "right"}),
    )
    .await;
    assert_eq!(r.status, 429, "{}", r.text());
    assert!(r.header("retry-after").is_some());
    assert_eq!(wechat.phone_calls(), 5);
}

#[tokio::test(flavor = "multi_thread")]
async fn twenty_parallel_wrong_binding_attempts_are_all_counted_and_the_lockout_holds_on_sqlite() {
    twenty_parallel_wrong_attempts(sqlite().unwrap()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn twenty_parallel_wrong_binding_attempts_are_all_counted_and_the_lockout_holds_on_redis() {
    if let Some(b) = redis("wechat attempts on redis") {
        twenty_parallel_wrong_attempts(b).await;
    }
}

async fn concurrent_bindings_share_one_token(backend: Backend) {
    const N: usize = 12;
    let wechat = FakeWeChat::start();
    // A slow token endpoint: every binding needs the token while it is fetched.
    wechat.token_delay(Duration::from_millis(400));
    let host = Host::start(backend.config(&wechat)).expect("host starts");
    seed(&host).await;
    let (_, app) = file_class(&host, N).await;
    let mut tickets = Vec::new();
    for n in 0..N {
        wechat
            .login(&format!("c-{n}"), &format!("oE2E-{n}"))
            .phone(&format!("p-{n}"), app.roster[n].mobile.expose());
        tickets.push(ticket(&host, &format!("c-{n}")).await);
    }
    let replies = join_all((0..N).map(|n| {
        post(
            &host,
            "/api/v1/wechat/bind",
            json!({"bind_ticket": tickets[n], "id_number": app.roster[n].id_number.expose(),
                   "phone_code": format!("p-{n}")}),
        )
    }))
    .await;
    for r in &replies {
        assert_eq!(r.status, 200, "{}", r.text());
    }
    assert_eq!(
        wechat.token_fetches(),
        1,
        "fetched once for {N} concurrent bindings"
    );
    assert_eq!(wechat.phone_calls(), N);

    // A second binding of trainee 0, by another WeChat user, ends the first.
    let first_token = replies[0].json().unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let me = |tok: String| {
        let host = &host;
        async move { call(host, "GET", "/api/v1/me/archive", Some(&tok), "", &[]).await }
    };
    assert_eq!(me(first_token.clone()).await.status, 200);
    wechat
        .login("c-new", "oE2E-new-phone")
        .phone("p-new", app.roster[0].mobile.expose());
    let t = ticket(&host, "c-new").await;
    let again = post(
        &host,
        "/api/v1/wechat/bind",
        json!({"bind_ticket": t, "id_number": app.roster[0].id_number.expose(), "phone_code": "p-new"}),
    )
    .await;
    assert_eq!(again.status, 200, "{}", again.text());
    let v = again.json().unwrap();
    assert_eq!(v["replaced_binding"], true);
    let old = me(first_token).await;
    assert_eq!(old.status, 401, "{}", old.text());
    assert_eq!(old.json().unwrap()["code"], "token_binding_replaced");
    assert_eq!(
        me(v["token"].as_str().unwrap().to_string()).await.status,
        200
    );
    let relogin = post(&host, "/api/v1/wechat/login", json!({"code": "c-0"})).await;
    assert_eq!(
        relogin.json().unwrap()["status"],
        "unbound",
        "{}",
        relogin.text()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_bindings_fetch_the_access_token_once_and_a_second_binding_ends_the_first_on_sqlite()
 {
    concurrent_bindings_share_one_token(sqlite().unwrap()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_bindings_fetch_the_access_token_once_and_a_second_binding_ends_the_first_on_redis()
 {
    if let Some(b) = redis("wechat token on redis") {
        concurrent_bindings_share_one_token(b).await;
    }
}

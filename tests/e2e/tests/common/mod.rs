//! What the product's end-to-end tests share: the secrets the host is started
//! with, tokens, requests, the registry entries a class needs, sample
//! applications, and a dump of the SQLite store.

#![allow(dead_code)]

pub mod races;
pub mod rfc6962;
pub mod scenarios;
pub mod voucher_races;

use e2e::{Client, Host, HostConfig, Reply};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use web::auth::testing::TestKeys;
use web::auth::{Claims, Role, mint};

/// The keys the tests sign tokens with: the test identity provider's Ed25519
/// key for staff roles, the test trainee key for `trainee`. The hosts are
/// started with their JWKS and trainee keys ([`with_secrets`]).
pub const JWT: TestKeys = TestKeys;
/// The key that seals values at rest in the test hosts.
pub const PII_KEY: &str = "e2e-pii-key-0123456789abcdefghijklmnopqrs";
/// The key of the keyed hashes (person refs, fingerprints) in the test hosts.
pub const HMAC: &str = "e2e-hmac-key-0123456789abcdefghijklmnopqr";
/// The audit log's checkpoint signing key in the test hosts (an Ed25519 seed).
pub const AUDIT_KEY: &str = "a1d17a1d17a1d17a1d17a1d17a1d17a1d17a1d17a1d17a1d17a1d17a1d17a1d1";

/// `config` with the product's secrets set, as `spin up --variable` would:
/// the test identity provider's JWKS, issuer and audience, the trainee keys,
/// and the data keys.
pub fn with_secrets(config: HostConfig) -> HostConfig {
    let mut config = config;
    for (name, value) in web::auth::testing::variables() {
        config = config.variable(name, value);
    }
    config
        .variable("pii_key", PII_KEY)
        .variable("pii_hmac_key", HMAC)
        .variable("audit_checkpoint_key", AUDIT_KEY)
}

/// The product alone on a SQLite file.
pub fn product(db: impl AsRef<Path>) -> HostConfig {
    with_secrets(HostConfig::product_only(db.as_ref().to_path_buf()))
}

/// A token for `role`, bound to the fixtures' institution, district 530102,
/// or a fixed person ref, unless `binding` names another institution or district.
pub fn token(role: Role, binding: Option<&str>) -> String {
    token_as(role, &format!("{}-e2e", role.id()), binding)
}

/// [`token`] with the subject `sub` (an inspector's id, say).
pub fn token_as(role: Role, sub: &str, binding: Option<&str>) -> String {
    mint(&claims(role, sub, binding), JWT)
}

/// The claims of [`token_as`], valid for four hours from now (a trainee's for two).
pub fn claims(role: Role, sub: &str, binding: Option<&str>) -> Claims {
    let now = chrono::Utc::now().timestamp();
    Claims {
        sub: sub.into(),
        role,
        institution: (role == Role::Institution).then(|| {
            policy::ids::CreditCode::parse(binding.unwrap_or(policy::fixtures::INSTITUTION))
                .unwrap()
        }),
        district: (role == Role::DistrictOfficer)
            .then(|| policy::ids::AreaCode::parse(binding.unwrap_or("530102")).unwrap()),
        person: (role == Role::Trainee).then(|| "cd".repeat(32)),
        iat: now,
        nbf: None,
        exp: now + if role == Role::Trainee { 2 } else { 4 } * 3600,
    }
}

/// [`token_as`] valid at the host's clock moved `offset` seconds ([`Host::set_clock_offset_secs`]).
pub fn token_shifted(role: Role, sub: &str, binding: Option<&str>, offset: i64) -> String {
    let mut c = claims(role, sub, binding);
    c.iat += offset;
    c.exp += offset;
    mint(&c, JWT)
}

/// Where in a class's calendar a test stands (China Standard Time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moment {
    /// 20:00 on the eve of the first class day: the pre-opening check's time.
    Eve,
    /// 10:00 on the first class day: the in-training check's time.
    FirstDay,
    /// 10:00 on the day after the last class day: the assessment and settlement.
    AfterLastDay,
}

/// Moves the host's clock to `moment` of `app`'s calendar (CK-WINDOW asks
/// each check of 每班必查 to lie in its part of it) and returns the offset in
/// seconds, for [`token_shifted`] and [`record_check`].
pub fn move_clock(
    host: &Host,
    app: &policy::class_opening::ClassApplication,
    moment: Moment,
) -> i64 {
    use policy::checks::cst_start;
    let at = match moment {
        Moment::Eve => cst_start(app.start_date) - chrono::Duration::hours(4),
        Moment::FirstDay => cst_start(app.start_date) + chrono::Duration::hours(10),
        Moment::AfterLastDay => {
            cst_start(app.end_date + chrono::Duration::days(1)) + chrono::Duration::hours(10)
        }
    };
    let offset = (at - chrono::Utc::now()).num_seconds();
    host.set_clock_offset_secs(offset);
    offset
}

/// Records a passed check of `kind` (`pre_opening`, `in_training`,
/// `post_assessment`), dated 30 minutes before the host's clock (`offset`),
/// by the district officer `officer`; answers the response.
pub async fn record_check(
    host: &Host,
    class_id: &str,
    kind: &str,
    officer: &str,
    offset: i64,
) -> Reply {
    let at = chrono::Utc::now() + chrono::Duration::seconds(offset) - chrono::Duration::minutes(30);
    let body = json!({"kind": kind, "officer": "李科员", "at": at.to_rfc3339(), "result": "passed", "notes": "现场核验"});
    call(
        host,
        "POST",
        &format!("/api/v1/classes/{class_id}/checks"),
        Some(&token_shifted(Role::DistrictOfficer, officer, None, offset)),
        &body.to_string(),
        &[],
    )
    .await
}

/// A trainee token of `person` (a person ref), whose WeChat binding is
/// written into the store at `db` first (sealed with [`PII_KEY`], as the
/// components seal it): a trainee token is valid only while its binding is
/// the person's current one.
pub fn trainee(db: &Path, person: &str) -> String {
    let raw = store::MemoryStore::new();
    let random = |buf: &mut [u8]| buf.fill(3);
    let sealed = store::sealed::SealedKv::new(
        raw.clone(),
        store::sealed::Keyring::new(store::sealed::DataKey::from_secret(PII_KEY), vec![]),
        &random,
    );
    let oref = store::fixtures::bind_trainee(&sealed, HMAC, person, chrono::Utc::now()).unwrap();
    let all: Vec<(String, Vec<u8>)> = raw.dump().into_iter().collect();
    e2e::kv::KvDb::open(db)
        .unwrap()
        .set_many("default", &all)
        .unwrap();
    let mut claims = claims(Role::Trainee, &format!("wx:{}", &oref[..16]), None);
    claims.person = Some(person.to_string());
    mint(&claims, JWT)
}

/// Sends a JSON request with an optional bearer token and extra headers.
pub async fn call(
    host: &Host,
    method: &str,
    path: &str,
    tok: Option<&str>,
    body: &str,
    extra: &[(&str, &str)],
) -> Reply {
    let auth = tok.map(|t| format!("Bearer {t}"));
    let mut headers: Vec<(&str, &str)> = vec![("content-type", "application/json")];
    if let Some(a) = &auth {
        headers.push(("authorization", a));
    }
    headers.extend_from_slice(extra);
    Client::new()
        .send(method, &host.url(path), &headers, body.to_string())
        .await
        .expect("request completes")
}

/// Sends `body` as JSON with the bearer token `tok`, asserts a 2xx answer
/// (showing the host's last log lines if not) and returns the JSON body.
pub async fn ok(host: &Host, method: &str, path: &str, tok: &str, body: Value) -> Value {
    let r = call(host, method, path, Some(tok), &body.to_string(), &[]).await;
    assert!(
        (200..300).contains(&r.status),
        "{method} {path}: {} {}\nhost log tail:\n{}",
        r.status,
        r.text(),
        host.logs()
            .lines()
            .rev()
            .take(10)
            .collect::<Vec<_>>()
            .join("\n")
    );
    r.json().unwrap()
}

/// Sends 50 concurrent compare-and-swap increments of `key` to the kv-probe
/// fixture, asserts that each saw its own value (1 to 50 in some order) and
/// returns how many compare-and-swap retries they needed together.
pub async fn fifty_cas_increments(host: &Host, key: &str) -> u32 {
    let client = Client::new();
    let url = host.url(&format!("/probe/cas-incr?key={key}"));
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let client = client.clone();
            let url = url.clone();
            tokio::spawn(async move { client.get(&url).await })
        })
        .collect();
    let mut seen = Vec::new();
    let mut retries = 0;
    for t in tasks {
        let reply = t.await.unwrap().unwrap();
        assert_eq!(reply.status, 200, "{}", reply.text());
        seen.push(reply.text().parse::<i64>().unwrap());
        retries += reply
            .header("x-cas-retries")
            .and_then(|r| r.parse::<u32>().ok())
            .unwrap();
    }
    seen.sort();
    assert_eq!(
        seen,
        (1..=50).collect::<Vec<_>>(),
        "each increment saw its own value"
    );
    retries
}

/// Registers, as the bureau, the fixtures' institution, textbook and trainers YN-T-0001 to YN-T-0006.
pub async fn seed(host: &Host) {
    let admin = token(Role::BureauAdmin, None);
    let mut puts: Vec<(String, Value)> = vec![
        (
            format!(
                "/api/v1/registry/institutions/{}",
                policy::fixtures::INSTITUTION
            ),
            serde_json::to_value(policy::fixtures::institution()).unwrap(),
        ),
        (
            "/api/v1/registry/textbooks/9787111213826".into(),
            serde_json::to_value(policy::fixtures::textbook()).unwrap(),
        ),
    ];
    for n in 1..=6 {
        let no = format!("YN-T-{n:04}");
        puts.push((
            format!("/api/v1/registry/trainers/{no}"),
            json!({"registration_no": no, "name": "讲师", "status": "registered"}),
        ));
    }
    for (path, body) in puts {
        let r = call(host, "PUT", &path, Some(&admin), &body.to_string(), &[]).await;
        assert!(
            r.status == 201 || r.status == 200,
            "seeding {path}: {} {}",
            r.status,
            r.text()
        );
    }
}

/// A valid application of `n` trainees starting in three weeks; `salt` varies people, trainers and site.
pub fn application(n: usize, salt: u32) -> Value {
    let today = policy::ids::today_cst();
    let (app, _) =
        policy::fixtures::valid_class_from(today + chrono::Duration::days(21), today, n, salt);
    serde_json::to_value(app).unwrap()
}

/// Files an approved class of `n` trainees starting in three weeks; returns its id and application.
pub async fn file_class(
    host: &Host,
    n: usize,
) -> (String, policy::class_opening::ClassApplication) {
    file_class_salted(host, n, 0).await
}

/// [`file_class`] with the fixture's `salt` (other people, trainers and site).
pub async fn file_class_salted(
    host: &Host,
    n: usize,
    salt: u32,
) -> (String, policy::class_opening::ClassApplication) {
    let today = policy::ids::today_cst();
    let (app, _) =
        policy::fixtures::valid_class_from(today + chrono::Duration::days(21), today, n, salt);
    (file_approved(host, &app).await, app)
}

/// Files `app` as its institution; asserts it is filed and approved; returns its id.
pub async fn file_approved(host: &Host, app: &policy::class_opening::ClassApplication) -> String {
    let r = call(
        host,
        "POST",
        "/api/v1/classes",
        Some(&token(Role::Institution, None)),
        &serde_json::to_string(app).unwrap(),
        &[],
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let v = r.json().unwrap();
    assert_eq!(v["status"], "approved", "{v}");
    v["id"].as_str().unwrap().to_string()
}

/// Every key and value in a SQLite store file, as Spin's store keeps them.
pub fn dump(db: &Path) -> BTreeMap<String, Vec<u8>> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare("SELECT key, value FROM spin_key_value ORDER BY key")
        .unwrap();
    stmt.query_map([], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

//! Sample data: tokens, distinct class applications, and classes in training
//! written straight into the key-value store (as `tests/e2e/tests/spot_checks.rs`
//! seeds its scale run); and where a benchmark host keeps its data.

use chrono::{Duration, NaiveDate};
use policy::class_opening::{ClassApplication, TrainerRef};
use policy::ids::{IdNumber, Mobile};

use store::pii::PiiHasher;
use web::auth::testing::TestKeys;
use web::auth::{Claims, Role, mint};

/// The test keys the benchmark's tokens are signed with (their JWKS and the
/// trainee keys are given to the host).
pub const JWT: TestKeys = TestKeys;
pub const PII_KEY: &str = "bench-pii-key-0123456789abcdefghijklmnopqrs";
/// The audit log's checkpoint signing key (an Ed25519 seed).
pub const AUDIT_KEY: &str = "be9c4be9c4be9c4be9c4be9c4be9c4be9c4be9c4be9c4be9c4be9c4be9c4be9c";
pub const HMAC: &str = "bench-hmac-key-0123456789abcdefghijklmnopqr";

/// The host's configuration: the product's spin.toml (plus the harness's
/// fixtures when `fixtures`), with the secrets above and the test identity.
pub fn config(db: std::path::PathBuf, fixtures: bool) -> e2e::HostConfig {
    let base = if fixtures {
        e2e::HostConfig::new(db)
    } else {
        e2e::HostConfig::product_only(db)
    };
    let mut config = base;
    for (name, value) in web::auth::testing::variables() {
        config = config.variable(name, value);
    }
    // The cost of each route, not Nagle's algorithm: the routes run on sockets
    // with TCP_NODELAY (Spin with the one-line patch of docs/OPERATIONS.md §9);
    // the keep-alive comparison sets both kinds of socket itself.
    config
        .variable("pii_key", PII_KEY)
        .variable("pii_hmac_key", HMAC)
        .variable("audit_checkpoint_key", AUDIT_KEY)
        .tcp_nodelay(true)
}

/// A token of `role`, bound to the fixture institution, district 530102, or
/// `person` for a trainee.
pub fn token(role: Role, person: Option<&str>) -> String {
    let now = chrono::Utc::now().timestamp();
    let claims = Claims {
        sub: format!("{}-bench", role.id()),
        role,
        institution: (role == Role::Institution)
            .then(|| policy::ids::CreditCode::parse(policy::fixtures::INSTITUTION).unwrap()),
        district: (role == Role::DistrictOfficer)
            .then(|| policy::ids::AreaCode::parse("530102").unwrap()),
        person: person.map(str::to_string),
        iat: now,
        nbf: None,
        exp: now + if role == Role::Trainee { 2 } else { 6 } * 3600,
    };
    mint(&claims, JWT)
}

/// A trainee token of `person` bound through the WeChat user `openid_ref`.
fn trainee_token(person: &str, openid_ref: &str) -> String {
    let now = chrono::Utc::now().timestamp();
    let claims = Claims {
        sub: format!("wx:{}", &openid_ref[..16]),
        role: Role::Trainee,
        institution: None,
        district: None,
        person: Some(person.to_string()),
        iat: now,
        nbf: None,
        exp: now + 2 * 3600,
    };
    mint(&claims, JWT)
}

/// A valid ID number, distinct for each `n` below 9,000,000 (born 1985 onwards in 五华区).
pub fn id_number(n: usize) -> IdNumber {
    let birth = NaiveDate::from_ymd_opt(1985, 1, 1).unwrap() + Duration::days((n / 1000) as i64);
    let body = format!("530102{}{:03}", birth.format("%Y%m%d"), n % 1000);
    let check = policy::ids::check_character(body.as_bytes()) as char;
    IdNumber::parse(format!("{body}{check}")).expect("generated ID number is valid")
}

/// A valid mobile, distinct for each `n` below 10^8.
pub fn mobile(n: usize) -> Mobile {
    Mobile::parse(format!("138{:08}", n % 100_000_000)).expect("generated mobile is valid")
}

/// Trainer pairs the distinct applications share (`YN-B-0001` …).
pub const TRAINER_PAIRS: usize = 100;

pub fn trainer_no(n: usize) -> String {
    format!("YN-B-{:04}", n + 1)
}

/// Application `k` of `trainees` people: nobody in it is in any other
/// application `k`, its site is its own, and its two trainers (pair
/// `k % TRAINER_PAIRS`) teach no other class at the same time (classes of one
/// pair follow each other, 15 days apart, from three weeks ahead).
pub fn application(k: usize, trainees: usize) -> ClassApplication {
    let today = policy::ids::today_cst();
    let start = today + Duration::days(21 + 15 * (k / TRAINER_PAIRS) as i64);
    let (mut app, _) = policy::fixtures::valid_class_from(start, today, trainees, 0);
    let pair = k % TRAINER_PAIRS;
    let trainers = [trainer_no(2 * pair), trainer_no(2 * pair + 1)];
    app.trainers = trainers
        .iter()
        .enumerate()
        .map(|(i, no)| TrainerRef {
            registration_no: no.clone(),
            name: format!("讲师{}", i + 1),
        })
        .collect();
    let site = format!("昆明市五华区教场中路 8 号 {} 室", 10_000 + k);
    for (d, s) in app.sessions.iter_mut().enumerate() {
        s.trainer = trainers[d % 2].clone();
        s.site = Some(site.clone());
    }
    for (i, t) in app.roster.iter_mut().enumerate() {
        let n = 1000 + k * 100 + i;
        t.id_number = id_number(n);
        t.mobile = mobile(n);
    }
    app
}

/// Where one benchmark host keeps its key-value data: Spin's default SQLite
/// file in a temporary directory, or a private `redis-server` on loopback
/// (the SpinKube deployment's backend; `--redis`).
pub struct Backend {
    dir: tempfile::TempDir,
    redis: Option<e2e::redis_server::RedisServer>,
}

impl Backend {
    /// A fresh, empty store.
    pub fn new(redis: bool) -> anyhow::Result<Backend> {
        let redis = if redis {
            Some(e2e::redis_server::RedisServer::start()?)
        } else {
            None
        };
        Ok(Backend {
            dir: tempfile::tempdir()?,
            redis,
        })
    }

    fn db(&self) -> std::path::PathBuf {
        self.dir.path().join("sqlite_key_value.db")
    }

    /// The host's configuration (see [`config`]) on this store.
    pub fn config(&self, fixtures: bool) -> e2e::HostConfig {
        let c = config(self.db(), fixtures);
        match &self.redis {
            Some(r) => c.redis(r.url()),
            None => c,
        }
    }

    /// A connection of the benchmark's own to the store (not counted by a host).
    pub fn open(&self) -> anyhow::Result<e2e::kv::KvStore> {
        e2e::kv::KvStore::open(&self.db(), self.config(false).redis.as_ref())
    }

    /// What the store is, for the printed report.
    pub fn describe(&self) -> String {
        match &self.redis {
            Some(r) => format!("Redis ({}, loopback, no persistence)", r.url()),
            None => format!("SQLite file {}", self.db().display()),
        }
    }

    /// Trainee tokens of `persons`, each bound to a WeChat user of its own in
    /// this store first (a trainee token is valid only while its binding is
    /// current), sealed with [`PII_KEY`] as the components seal them.
    pub fn trainee_tokens(&self, persons: &[String]) -> anyhow::Result<Vec<String>> {
        let random = |buf: &mut [u8]| buf.fill(5);
        let raw = store::MemoryStore::new();
        let sealed = store::sealed::SealedKv::new(
            raw.clone(),
            store::sealed::Keyring::new(store::sealed::DataKey::from_secret(PII_KEY), vec![]),
            &random,
        );
        let mut tokens = Vec::with_capacity(persons.len());
        for p in persons {
            let oref = store::fixtures::bind_trainee(&sealed, HMAC, p, chrono::Utc::now())
                .map_err(|e| anyhow::anyhow!("in-memory write: {e}"))?;
            tokens.push(trainee_token(p, &oref));
        }
        let all: Vec<(String, Vec<u8>)> = raw.dump().into_iter().collect();
        self.open()?
            .set_many("default", &all)
            .map_err(|e| anyhow::anyhow!("binding write: {e}"))?;
        Ok(tokens)
    }

    /// Writes `classes` classes of 40 trainees in training (ids
    /// `KM-2022-000001` …), sealed with [`PII_KEY`] as the components seal
    /// them, and lists them in the in-training index. Call it before a host
    /// opens the store.
    pub fn seed_in_training(&self, classes: usize) -> anyhow::Result<()> {
        let random = |buf: &mut [u8]| {
            for (i, b) in buf.iter_mut().enumerate() {
                *b = i as u8;
            }
        };
        let keyring =
            || store::sealed::Keyring::new(store::sealed::DataKey::from_secret(PII_KEY), vec![]);
        let hasher = PiiHasher::new(HMAC);
        let kv = self.open()?;
        let index_raw = store::MemoryStore::new();
        let index = store::sealed::SealedKv::new(index_raw.clone(), keyring(), &random);
        let ids: Vec<String> = (1..=classes).map(|i| format!("KM-2022-{i:06}")).collect();
        // Records in chunks, so 20,000 classes never sit in memory at once.
        for chunk in ids.chunks(500) {
            let raw = store::MemoryStore::new();
            let sealed = store::sealed::SealedKv::new(raw.clone(), keyring(), &random);
            store::fixtures::classes_in_training(
                &sealed,
                &index,
                &hasher,
                chunk,
                chrono::Utc::now(),
            )
            .map_err(|e| anyhow::anyhow!("in-memory write: {e}"))?;
            let all: Vec<(String, Vec<u8>)> = raw.dump().into_iter().collect();
            kv.set_many("default", &all)
                .map_err(|e| anyhow::anyhow!("seed write: {e}"))?;
        }
        let all: Vec<(String, Vec<u8>)> = index_raw.dump().into_iter().collect();
        kv.set_many("default", &all)
            .map_err(|e| anyhow::anyhow!("seed index write: {e}"))?;
        Ok(())
    }
}

//! Where class validate and class file spend their time outside the host:
//! the same handlers (`app::class_opening::handle`) run natively in this
//! process on `store::MemoryStore`, sealed as on Spin or not, and the parts
//! of validate timed one by one. Native code is faster than the same code in
//! wasm, so these are shares, not the host's figures; `MemoryStore::calls`
//! counts key-value operations as the host does (a cross-check).

use crate::data;
use bytes::Bytes;
use policy::class_opening::ClassApplication;
use serde_json::json;
use std::time::{Duration, Instant};
use store::{KeyValue, MemoryStore};
use web::auth::Role;

pub struct Part {
    pub label: String,
    pub per_op: Duration,
    pub kv_calls: Option<f64>,
    /// Reads and writes per request, where counted.
    pub split: Option<(f64, f64)>,
}

/// Counts the operations a store serves, reads and writes apart (what the
/// host would see beneath the sealing layer).
#[derive(Clone, Default)]
pub struct Counting<K> {
    inner: K,
    counts: std::sync::Arc<[std::sync::atomic::AtomicU64; 2]>,
}

const READ: usize = 0;
const WRITE: usize = 1;

impl<K> Counting<K> {
    pub(crate) fn new(inner: K) -> Self {
        Self {
            inner,
            counts: Default::default(),
        }
    }

    fn bump(&self, which: usize) {
        self.counts[which].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// (reads, writes) so far; the creation of a compare-and-swap handle is neither.
    pub(crate) fn counts(&self) -> (u64, u64) {
        let c = |i: usize| self.counts[i].load(std::sync::atomic::Ordering::Relaxed);
        (c(READ), c(WRITE))
    }
}

pub struct CountingCas<C> {
    inner: C,
    counts: std::sync::Arc<[std::sync::atomic::AtomicU64; 2]>,
}

impl<C: store::Cas> store::Cas for CountingCas<C> {
    fn current(&self) -> Result<Option<Vec<u8>>, store::KvError> {
        self.counts[READ].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.inner.current()
    }

    fn swap(self, value: &[u8]) -> Result<bool, store::KvError> {
        self.counts[WRITE].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.inner.swap(value)
    }
}

impl<K: KeyValue> KeyValue for Counting<K> {
    type Cas = CountingCas<K::Cas>;

    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, store::KvError> {
        self.bump(READ);
        self.inner.get(key)
    }

    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, store::KvError> {
        self.bump(READ);
        self.inner.get_many(keys)
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), store::KvError> {
        self.bump(WRITE);
        self.inner.set(key, value)
    }

    fn set_many(&self, entries: &[(String, Vec<u8>)]) -> Result<(), store::KvError> {
        self.bump(WRITE);
        self.inner.set_many(entries)
    }

    fn delete(&self, key: &str) -> Result<(), store::KvError> {
        self.bump(WRITE);
        self.inner.delete(key)
    }

    fn exists(&self, key: &str) -> Result<bool, store::KvError> {
        self.bump(READ);
        self.inner.exists(key)
    }

    fn cas(&self, key: &str) -> Result<Self::Cas, store::KvError> {
        Ok(CountingCas {
            inner: self.inner.cas(key)?,
            counts: self.counts.clone(),
        })
    }

    fn list_keys(&self) -> Result<Vec<String>, store::KvError> {
        self.bump(READ);
        self.inner.list_keys()
    }

    fn increment(&self, key: &str, delta: i64) -> Result<i64, store::KvError> {
        self.bump(WRITE);
        self.inner.increment(key, delta)
    }
}

fn random(buf: &mut [u8]) {
    // Distinct nonces are all sealing needs here; this is not a secret.
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    for (i, b) in buf.iter_mut().enumerate() {
        *b = (n >> ((i % 8) * 8)) as u8 ^ i as u8;
    }
}

fn secrets() -> web::Secrets {
    web::Secrets {
        identity: web::auth::testing::identity(),
        pii_hmac_key: data::HMAC.into(),
        pii_key: data::PII_KEY.into(),
        extra: Default::default(),
    }
}

fn request(method: &str, path: &str, token: &str, body: Bytes) -> web::Request {
    http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {token}"))
        .body(body)
        .expect("valid request")
}

fn handle<K: KeyValue>(kv: &K, req: &web::Request) -> web::Response {
    let secrets = secrets();
    let env = web::Env {
        kv,
        secrets: &secrets,
        now: chrono::Utc::now(),
        random: &random,
    };
    app::class_opening::handle(&env, req)
}

fn seed<K: KeyValue>(kv: &K) {
    let admin = data::token(Role::BureauAdmin, None);
    let mut puts = vec![
        (
            format!(
                "/api/v1/registry/institutions/{}",
                policy::fixtures::INSTITUTION
            ),
            serde_json::to_vec(&policy::fixtures::institution()).unwrap(),
        ),
        (
            "/api/v1/registry/textbooks/9787111213826".into(),
            serde_json::to_vec(&policy::fixtures::textbook()).unwrap(),
        ),
    ];
    for n in 0..2 * data::TRAINER_PAIRS {
        let no = data::trainer_no(n);
        puts.push((
            format!("/api/v1/registry/trainers/{no}"),
            serde_json::to_vec(
                &json!({"registration_no": no, "name": "讲师", "status": "registered"}),
            )
            .unwrap(),
        ));
    }
    for (path, body) in puts {
        let r = handle(kv, &request("PUT", &path, &admin, body.into()));
        assert!(r.status().is_success(), "{path}: {}", r.status());
    }
    // The policy data stored as version 1 (validation reads the stored record).
    let r = handle(
        kv,
        &request(
            "POST",
            "/api/v1/admin/policy/import",
            &admin,
            b"{}".to_vec().into(),
        ),
    );
    assert!(r.status().is_success(), "policy import: {}", r.status());
}

fn time(iters: usize, mut f: impl FnMut(usize)) -> Duration {
    let t = Instant::now();
    for i in 0..iters {
        f(i);
    }
    t.elapsed() / iters.max(1) as u32
}

/// The parts of validate (60 trainees) and the whole of validate and file,
/// sealed and not.
pub fn breakdown(iters: usize) -> Vec<Part> {
    let inst = data::token(Role::Institution, None);
    let raw = MemoryStore::new();
    let counted = Counting::new(raw.clone());
    let keyring =
        || store::sealed::Keyring::new(store::sealed::DataKey::from_secret(data::PII_KEY), vec![]);
    let sealed = store::sealed::SealedKv::new(counted.clone(), keyring(), &random);
    let plain = MemoryStore::new();
    seed(&sealed);
    seed(&plain);
    let app = data::application(0, 60);
    let body = Bytes::from(serde_json::to_vec(&app).unwrap());
    let mut parts = Vec::new();

    let split = |a: (u64, u64), b: (u64, u64), n: usize| {
        Some(((b.0 - a.0) as f64 / n as f64, (b.1 - a.1) as f64 / n as f64))
    };
    let mut whole = |label: &str, kv_calls: &dyn Fn() -> u64, run: &mut dyn FnMut(usize)| {
        run(0); // warm
        let before = kv_calls();
        let rw = counted.counts();
        let per_op = time(iters, |i| run(i + 1));
        parts.push(Part {
            label: label.into(),
            per_op,
            kv_calls: Some((kv_calls() - before) as f64 / iters as f64),
            split: label
                .contains("sealed")
                .then(|| split(rw, counted.counts(), iters))
                .flatten(),
        });
    };
    whole(
        "validate, whole handler, sealed store",
        &|| raw.calls(),
        &mut |_| {
            let r = handle(
                &sealed,
                &request("POST", "/api/v1/classes/validate", &inst, body.clone()),
            );
            assert_eq!(r.status(), 200);
        },
    );
    whole(
        "validate, whole handler, plain store",
        &|| plain.calls(),
        &mut |_| {
            let r = handle(
                &plain,
                &request("POST", "/api/v1/classes/validate", &inst, body.clone()),
            );
            assert_eq!(r.status(), 200);
        },
    );

    let hasher = store::pii::PiiHasher::new(data::HMAC);
    let today = policy::ids::today_cst();
    let mut part = |label: &str, f: &mut dyn FnMut(usize)| {
        f(0);
        parts.push(Part {
            label: label.into(),
            per_op: time(iters, f),
            kv_calls: None,
            split: None,
        });
    };
    // The policy in force is one stored record, read in load_context's
    // get_many and decoded on every request (a component instance lives for
    // one request); its decoding is part of load_context below. Before the
    // first import, the shipped defaults are read instead:
    part(
        "  read the shipped policy data (per instance, before any import)",
        &mut |_| {
            std::hint::black_box(policy::PolicyData::read_shipped());
        },
    );
    part("  parse the JSON body (serde)", &mut |_| {
        let a: ClassApplication = serde_json::from_slice(&body).unwrap();
        std::hint::black_box(a);
    });
    part("  check_shape", &mut |_| {
        std::hint::black_box(app.check_shape()).ok();
    });
    part(
        "  120 HMACs (person and phone refs of 60 trainees)",
        &mut |_| {
            for t in &app.roster {
                std::hint::black_box(hasher.person_ref(&t.id_number));
                std::hint::black_box(hasher.phone_ref(&t.mobile));
            }
        },
    );
    part(
        "  load_context (keys, HMACs, one get_many, open and decode)",
        &mut |_| {
            std::hint::black_box(
                store::classes::load_context(&sealed, &hasher, &app, today).unwrap(),
            );
        },
    );
    let (ctx, policy) = store::classes::load_context(&sealed, &hasher, &app, today).unwrap();
    part("  evaluate the rules", &mut |_| {
        std::hint::black_box(policy::class_opening::evaluate(&app, &ctx, &policy));
    });
    let decision = policy::class_opening::evaluate(&app, &ctx, &policy);
    let out = serde_json::to_vec(&json!({ "decision": decision })).unwrap();
    part(
        &format!("  serialise the decision ({} bytes)", out.len()),
        &mut |_| {
            std::hint::black_box(serde_json::to_vec(&json!({ "decision": decision })).unwrap());
        },
    );
    let identity = web::auth::testing::identity();
    part("  verify the bearer token (EdDSA)", &mut |_| {
        std::hint::black_box(identity.verify(&inst, chrono::Utc::now().timestamp())).ok();
    });

    // Filing: distinct applications, sealed and plain.
    let file_iters = iters.clamp(1, 50);
    let mut filed = |label: &str,
                     kv: &dyn Fn(&web::Request) -> web::Response,
                     calls: &dyn Fn() -> u64,
                     base: usize| {
        let reqs: Vec<web::Request> = (0..file_iters)
            .map(|k| {
                request(
                    "POST",
                    "/api/v1/classes",
                    &inst,
                    serde_json::to_vec(&data::application(base + k, 60))
                        .unwrap()
                        .into(),
                )
            })
            .collect();
        let before = calls();
        let rw = counted.counts();
        let t = Instant::now();
        for r in &reqs {
            let res = kv(r);
            assert_eq!(res.status(), 201);
        }
        parts.push(Part {
            label: label.into(),
            per_op: t.elapsed() / file_iters as u32,
            kv_calls: Some((calls() - before) as f64 / file_iters as f64),
            split: label
                .contains("sealed")
                .then(|| split(rw, counted.counts(), file_iters))
                .flatten(),
        });
    };
    filed(
        "file, whole handler, sealed store",
        &|r| handle(&sealed, r),
        &|| raw.calls(),
        1_000,
    );
    filed(
        "file, whole handler, plain store",
        &|r| handle(&plain, r),
        &|| plain.calls(),
        2_000,
    );
    parts
}

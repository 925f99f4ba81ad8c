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
        jwt_secret: data::JWT.into(),
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
    let keyring =
        || store::sealed::Keyring::new(store::sealed::DataKey::from_secret(data::PII_KEY), vec![]);
    let sealed = store::sealed::SealedKv::new(raw.clone(), keyring(), &random);
    let plain = MemoryStore::new();
    seed(&sealed);
    seed(&plain);
    let app = data::application(0, 60);
    let body = Bytes::from(serde_json::to_vec(&app).unwrap());
    let mut parts = Vec::new();

    let mut whole = |label: &str, kv_calls: &dyn Fn() -> u64, run: &mut dyn FnMut(usize)| {
        run(0); // warm
        let before = kv_calls();
        let per_op = time(iters, |i| run(i + 1));
        parts.push(Part {
            label: label.into(),
            per_op,
            kv_calls: Some((kv_calls() - before) as f64 / iters as f64),
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
        });
    };
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
    let ctx = store::classes::load_context(&sealed, &hasher, &app, today).unwrap();
    part("  evaluate the rules", &mut |_| {
        std::hint::black_box(policy::class_opening::evaluate(
            &app,
            &ctx,
            policy::Parameters::shipped(),
            policy::Catalogue::shipped(),
        ));
    });
    let decision = policy::class_opening::evaluate(
        &app,
        &ctx,
        policy::Parameters::shipped(),
        policy::Catalogue::shipped(),
    );
    let out = serde_json::to_vec(&json!({ "decision": decision })).unwrap();
    part(
        &format!("  serialise the decision ({} bytes)", out.len()),
        &mut |_| {
            std::hint::black_box(serde_json::to_vec(&json!({ "decision": decision })).unwrap());
        },
    );
    part("  verify the bearer token", &mut |_| {
        std::hint::black_box(web::auth::verify(
            &inst,
            data::JWT,
            chrono::Utc::now().timestamp(),
        ))
        .ok();
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
        let t = Instant::now();
        for r in &reqs {
            let res = kv(r);
            assert_eq!(res.status(), 201);
        }
        parts.push(Part {
            label: label.into(),
            per_op: t.elapsed() / file_iters as u32,
            kv_calls: Some((calls() - before) as f64 / file_iters as f64),
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

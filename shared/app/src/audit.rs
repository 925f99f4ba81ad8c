//! The audit log over HTTP: its signed checkpoint and public key, proofs of
//! inclusion and consistency, the integration step, verification against a
//! checkpoint the caller kept, and one entity's history.
//!
//! | route | roles |
//! | --- | --- |
//! | `GET /api/v1/audit/checkpoint` | any authenticated caller |
//! | `GET /api/v1/audit/key` | any authenticated caller |
//! | `GET /api/v1/audit/proofs/consistency?from=&to=` | any authenticated caller |
//! | `GET /api/v1/audit/proofs/inclusion?seq=&size=` | bureau |
//! | `POST /api/v1/audit/integrate` | scheduler, bureau |
//! | `GET /api/v1/audit/verify?checkpoint=&cursor=&pages=` | bureau |
//! | `GET /api/v1/audit?entity=&cursor=&limit=` | bureau; a district officer for `class:` entities of their district |
//!
//! The checkpoint key (`audit_checkpoint_key`) is a variable of the
//! `audit` component only; the other components append events and
//! never sign.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use http::{Method, StatusCode};
use store::KeyValue;
use store::audit::tree::{self, LogSigner};
use store::audit::verify::{self, Cursor};
use store::audit::{self};
use store::checkpoint;
use store::index::Position;
use web::json::respond;
use web::router::{Router, query};
use web::{Env, Principal, Problem, Request, Response, Role, paging};

/// The variables the audit routes read (the `audit` component's).
pub const VARIABLES: &[&str] = &[
    "audit_checkpoint_key",
    "audit_log_origin",
    "audit_log_key_name",
    "audit_gap_timeout_seconds",
];

/// The origin line of checkpoints when `audit_log_origin` is not set.
pub const DEFAULT_ORIGIN: &str = "vocational-training.example/audit";
/// The key name when `audit_log_key_name` is not set.
pub const DEFAULT_KEY_NAME: &str = "vocational-training-audit";
/// Seconds a missing event is waited for before it is integrated as a gap.
pub const DEFAULT_GAP_TIMEOUT_SECONDS: i64 = 300;
/// Most chunks (of 256 events, or batches of 100 records) one verify request checks.
pub const MAX_VERIFY_PAGES: u64 = 16;

/// The routes of the audit module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// The latest signed checkpoint.
    Checkpoint,
    /// The public key.
    Key,
    /// An inclusion proof.
    Inclusion,
    /// A consistency proof.
    Consistency,
    /// One integration step.
    Integrate,
    /// Verify the log and the live records.
    Verify,
    /// One entity's history.
    History,
}

/// The router of the audit module.
pub fn router() -> Router<Route> {
    Router::new()
        .add(Method::GET, "/api/v1/audit/checkpoint", Route::Checkpoint)
        .add(Method::GET, "/api/v1/audit/key", Route::Key)
        .add(
            Method::GET,
            "/api/v1/audit/proofs/inclusion",
            Route::Inclusion,
        )
        .add(
            Method::GET,
            "/api/v1/audit/proofs/consistency",
            Route::Consistency,
        )
        .add(Method::POST, "/api/v1/audit/integrate", Route::Integrate)
        .add(Method::GET, "/api/v1/audit/verify", Route::Verify)
        .add(Method::GET, "/api/v1/audit", Route::History)
}

/// Handles one request.
pub fn handle<K: KeyValue>(env: &Env<'_, K>, req: &Request) -> Response {
    web::finish(dispatch(env, req))
}

fn dispatch<K: KeyValue>(env: &Env<'_, K>, req: &Request) -> Result<Response, Problem> {
    let m = router().at(req.method(), req.uri().path())?;
    let who = env.authenticate(req)?;
    match m.route {
        Route::Checkpoint => checkpoint_note(env, req),
        Route::Key => key(env, req),
        Route::Inclusion => inclusion(env, req, &who),
        Route::Consistency => consistency(env, req),
        Route::Integrate => integrate(env, req, &who),
        Route::Verify => verify_route(env, req, &who),
        Route::History => history(env, req, &who),
    }
}

/// The log's signer, from the component's variables: 503 when the key is not configured.
pub fn signer<K: KeyValue>(env: &Env<'_, K>) -> Result<LogSigner, Problem> {
    let var = |name: &str| env.secrets.extra.get(name).map(|v| v.trim()).unwrap_or("");
    let secret = var("audit_checkpoint_key");
    let not_configured = |why: &str| {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "audit_key_not_configured",
            "审计日志签名密钥未配置",
            format!("the audit log cannot sign or check checkpoints: {why}"),
        )
    };
    if secret.is_empty() {
        return Err(not_configured("variable audit_checkpoint_key is not set"));
    }
    let origin = Some(var("audit_log_origin"))
        .filter(|o| !o.is_empty())
        .unwrap_or(DEFAULT_ORIGIN);
    let name = Some(var("audit_log_key_name"))
        .filter(|o| !o.is_empty())
        .unwrap_or(DEFAULT_KEY_NAME);
    // The reason names the form expected, never the value.
    LogSigner::from_secret(secret, origin, name).map_err(|why| not_configured(&why))
}

fn only(q: &std::collections::BTreeMap<String, String>, allowed: &[&str]) -> Result<(), Problem> {
    match q.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(Problem::unknown_parameter(
            k,
            &format!("one of: {}", allowed.join(", ")),
        )),
        None => Ok(()),
    }
}

fn number(
    q: &std::collections::BTreeMap<String, String>,
    name: &str,
    min: u64,
) -> Result<Option<u64>, Problem> {
    q.get(name)
        .map(|v| {
            v.parse::<u64>()
                .ok()
                .filter(|n| *n >= min && (v == "0" || !v.starts_with('0')))
                .ok_or_else(|| {
                    Problem::invalid(format!("{name} must be a whole number from {min}"))
                        .field(name, format!("a whole number from {min}"))
                })
        })
        .transpose()
}

fn at_most(n: Option<u64>, name: &str, max: u64) -> Result<Option<u64>, Problem> {
    match n {
        Some(n) if n > max => Err(Problem::invalid(format!("{name} must be at most {max}"))
            .field(name, format!("1 to {max}"))),
        n => Ok(n),
    }
}

fn tree_state<K: KeyValue>(env: &Env<'_, K>) -> Result<tree::TreeState, Problem> {
    tree::settled_state(env.kv)?.ok_or_else(|| {
        Problem::new(
            StatusCode::NOT_FOUND,
            "audit_log_empty",
            "审计日志尚未生成检查点",
            "no checkpoint yet: the integration step has not run (POST /api/v1/audit/integrate)",
        )
    })
}

fn checkpoint_note<K: KeyValue>(env: &Env<'_, K>, req: &Request) -> Result<Response, Problem> {
    only(&query(req), &[])?;
    let state = tree_state(env)?;
    Ok(http::Response::builder()
        .status(StatusCode::OK)
        .header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .header(http::header::CACHE_CONTROL, "no-store")
        .body(bytes::Bytes::from(state.checkpoint))
        .expect("a valid response"))
}

fn key<K: KeyValue>(env: &Env<'_, K>, req: &Request) -> Result<Response, Problem> {
    only(&query(req), &[])?;
    let key = signer(env)?.public();
    Ok(respond(
        StatusCode::OK,
        &serde_json::json!({
            "origin": key.origin,
            "key_name": key.name,
            "verifier_key": key.verifier_key(),
            "public_key": B64.encode(key.public.as_bytes()),
            "algorithm": "Ed25519",
        }),
    ))
}

fn hashes(proof: &[store::tlog::Hash]) -> Vec<String> {
    proof.iter().map(|h| B64.encode(h)).collect()
}

fn inclusion<K: KeyValue>(
    env: &Env<'_, K>,
    req: &Request,
    who: &Principal,
) -> Result<Response, Problem> {
    who.require(&[Role::BureauAdmin])?;
    let q = query(req);
    only(&q, &["seq", "size"])?;
    let state = tree_state(env)?;
    let seq = number(&q, "seq", 1)?
        .ok_or_else(|| Problem::invalid("seq is required").field("seq", "required"))?;
    let size = number(&q, "size", 1)?.unwrap_or(state.size);
    if size > state.size {
        return Err(Problem::invalid(format!(
            "size must be at most the log's size, {}",
            state.size
        ))
        .field("size", format!("1 to {}", state.size)));
    }
    if seq > size {
        return Err(
            Problem::invalid(format!("event {seq} is not in a tree of {size} events"))
                .field("seq", format!("1 to {size}")),
        );
    }
    let data = tree::leaf_data(env.kv, seq - 1)?.ok_or_else(|| {
        Problem::new(
            StatusCode::CONFLICT,
            "audit_event_missing",
            "审计记录缺失",
            format!("event {seq} is integrated but no longer stored: run verify"),
        )
    })?;
    let proof = tree::inclusion_proof(env.kv, seq - 1, size)?;
    Ok(respond(
        StatusCode::OK,
        &serde_json::json!({
            "seq": seq,
            "leaf_index": seq - 1,
            "tree_size": size,
            "leaf_data": B64.encode(&data),
            "leaf_hash": B64.encode(store::tlog::leaf_hash(&data)),
            "proof": hashes(&proof),
            "root": B64.encode(tree::root_at(env.kv, size)?),
            "checkpoint": (size == state.size).then_some(state.checkpoint),
        }),
    ))
}

fn consistency<K: KeyValue>(env: &Env<'_, K>, req: &Request) -> Result<Response, Problem> {
    let q = query(req);
    only(&q, &["from", "to"])?;
    let state = tree_state(env)?;
    let to = number(&q, "to", 1)?.unwrap_or(state.size);
    let from = number(&q, "from", 1)?
        .ok_or_else(|| Problem::invalid("from is required").field("from", "required"))?;
    if to > state.size {
        return Err(
            Problem::invalid(format!("to must be at most the log's size, {}", state.size))
                .field("to", format!("1 to {}", state.size)),
        );
    }
    if from > to {
        return Err(Problem::invalid("from must not exceed to").field("from", format!("1 to {to}")));
    }
    let proof = tree::consistency_proof(env.kv, from, to)?;
    Ok(respond(
        StatusCode::OK,
        &serde_json::json!({
            "from": from,
            "to": to,
            "proof": hashes(&proof),
            "from_root": B64.encode(tree::root_at(env.kv, from)?),
            "to_root": B64.encode(tree::root_at(env.kv, to)?),
            "checkpoint": (to == state.size).then_some(state.checkpoint),
        }),
    ))
}

fn integrate<K: KeyValue>(
    env: &Env<'_, K>,
    req: &Request,
    who: &Principal,
) -> Result<Response, Problem> {
    who.require(&[Role::Scheduler, Role::BureauAdmin])?;
    if !req.body().is_empty() {
        // No body, or an empty object: anything else is refused as usual.
        web::json::body::<NoMembers>(req)?;
    }
    let q = query(req);
    only(&q, &["limit"])?;
    let limit =
        at_most(number(&q, "limit", 1)?, "limit", tree::MAX_PAGE)?.unwrap_or(tree::MAX_PAGE);
    let signer = signer(env)?;
    let timeout = env
        .secrets
        .extra
        .get("audit_gap_timeout_seconds")
        .and_then(|v| v.trim().parse::<i64>().ok())
        .filter(|s| *s >= 0)
        .unwrap_or(DEFAULT_GAP_TIMEOUT_SECONDS);
    let step = tree::integrate(
        env.kv,
        &signer,
        env.now,
        limit,
        chrono::Duration::seconds(timeout),
    )?;
    Ok(respond(StatusCode::OK, &step))
}

/// The body of a route that takes none but accepts `{}`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NoMembers {}

/// `log.<chunk>`, `vouchers.<page>.<offset>` or `classes.<page>.<offset>`.
fn encode_cursor(c: Cursor) -> String {
    match c {
        Cursor::Log { chunk } => format!("log.{chunk}"),
        Cursor::Vouchers { at } => format!("vouchers.{}", paging::encode(at)),
        Cursor::Classes { at } => format!("classes.{}", paging::encode(at)),
    }
}

fn decode_cursor(text: &str) -> Result<Cursor, Problem> {
    let bad = || {
        Problem::invalid("cursor is not valid").field("cursor", "a next_cursor this route returned")
    };
    let (phase, rest) = text.split_once('.').ok_or_else(bad)?;
    let at = |rest: &str| -> Result<Position, Problem> { paging::decode(rest).map_err(|_| bad()) };
    match phase {
        "log" => rest
            .parse::<u64>()
            .ok()
            .filter(|_| rest == "0" || !rest.starts_with('0'))
            .map(|chunk| Cursor::Log { chunk })
            .ok_or_else(bad),
        "vouchers" => Ok(Cursor::Vouchers { at: at(rest)? }),
        "classes" => Ok(Cursor::Classes { at: at(rest)? }),
        _ => Err(bad()),
    }
}

fn verify_route<K: KeyValue>(
    env: &Env<'_, K>,
    req: &Request,
    who: &Principal,
) -> Result<Response, Problem> {
    who.require(&[Role::BureauAdmin])?;
    let q = query(req);
    only(&q, &["checkpoint", "cursor", "pages"])?;
    let key = signer(env)?.public();
    let trusted = q
        .get("checkpoint")
        .map(|note| {
            checkpoint::open(note, &key.name, &key.public).map_err(|e| {
                Problem::invalid(format!(
                    "checkpoint is not a checkpoint signed by this log's key: {e}"
                ))
                .field(
                    "checkpoint",
                    "a signed note this log's GET /api/v1/audit/checkpoint returned",
                )
            })
        })
        .transpose()?;
    let cursor = q
        .get("cursor")
        .map(|c| decode_cursor(c))
        .transpose()?
        .unwrap_or_default();
    let pages = at_most(number(&q, "pages", 1)?, "pages", MAX_VERIFY_PAGES)?.unwrap_or(4);
    let report = verify::verify(env.kv, &key, trusted.as_ref(), cursor, pages)?;
    Ok(respond(
        StatusCode::OK,
        &serde_json::json!({
            "intact": report.discrepancies.is_empty(),
            "log_size": report.log_size,
            "taken": report.taken,
            "checkpoint_size": report.checkpoint_size,
            "checked": report.checked,
            "discrepancies": report.discrepancies,
            "next_cursor": report.next.map(encode_cursor),
        }),
    ))
}

fn history<K: KeyValue>(
    env: &Env<'_, K>,
    req: &Request,
    who: &Principal,
) -> Result<Response, Problem> {
    who.require(&[Role::BureauAdmin, Role::DistrictOfficer])?;
    let q = query(req);
    let entity = q
        .get("entity")
        .filter(|e| !e.is_empty() && e.len() <= 200)
        .ok_or_else(|| {
            Problem::invalid("entity is required, for example class:KM-2022-000001")
                .field("entity", "required")
        })?;
    if who.role() == Role::DistrictOfficer {
        let class = entity
            .strip_prefix("class:")
            .and_then(|id| store::classes::get(env.kv, id).ok().flatten())
            .ok_or_else(|| {
                Problem::forbidden(
                    "a district officer reads the history of their district's classes only",
                )
            })?;
        if Some(class.application.district) != who.claims.district {
            return Err(Problem::forbidden("the class belongs to another district"));
        }
    }
    let limit = paging::limit(q.get("limit").map(String::as_str), 100, 500)?;
    let from = q
        .get("cursor")
        .map(|c| paging::decode(c))
        .transpose()?
        .unwrap_or_default();
    let (events, next) = audit::history(env.kv, entity, from, limit)?;
    Ok(respond(
        StatusCode::OK,
        &serde_json::json!({ "entity": entity, "events": events, "next_cursor": next.map(paging::encode) }),
    ))
}

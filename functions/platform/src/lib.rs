//! The Spin side of every component: spin-sdk never enters `shared/`.
//!
//! - [`SpinKv`]: the `default` key-value store as a [`store::KeyValue`], through
//!   `wasi:keyvalue` store, batch (`get-many`, `set-many`) and atomics
//!   (`Cas`, `increment`). Every method is one host call.
//! - [`prepare`]: reads the request body (at most [`web::MAX_BODY_BYTES`],
//!   413 beyond), the secrets from Spin variables, and opens the store behind
//!   [`store::sealed::SealedKv`], so that every value is encrypted at rest
//!   with the key in `pii_key` (values sealed with a key listed in
//!   `pii_key_previous`, comma-separated, still open: see key rotation in
//!   docs/OPERATIONS.md).
//! - [`serve`]: prepare, run a synchronous handler, log one line, respond.
//!
//! Logs carry the method, the path and the status, never a body, a query
//! string or a header value.
//!
//! Two builds, chosen by cargo feature: `p3` (the default) for Spin 4
//! (spin-sdk 6, `wasi:http/handler@0.3`, async variables), `p2` for Spin 3.x
//! such as containerd-shim-spin v0.24 (spin-sdk 5,
//! `wasi:http/incoming-handler@0.2`, sync variables). Only the request body,
//! the variables, the response type and outbound HTTP differ (module `sdk`);
//! both speak `wasi:keyvalue@0.2.0-draft2`, so [`SpinKv`] is the same code.

#[cfg(all(feature = "p2", feature = "p3"))]
compile_error!(
    "features `p2` and `p3` exclude each other: build the p2 set with --no-default-features --features p2"
);
#[cfg(not(any(feature = "p2", feature = "p3")))]
compile_error!("enable feature `p3` (Spin 4, the default) or `p2` (Spin 3.x)");

#[cfg_attr(feature = "p2", path = "p2.rs")]
#[cfg_attr(not(feature = "p2"), path = "p3.rs")]
mod sdk;

pub use sdk::{Reply, Request, outbound_get, outbound_post_json, reply};

use sdk::{atomics, batch, wkv};
use store::sealed::{DataKey, Keyring, SealedKv};
use store::{Cas, KeyValue, KvError};
use web::{Env, Problem, Secrets};

/// The `default` store through `wasi:keyvalue`.
pub struct SpinKv {
    bucket: wkv::Bucket,
    batch_reads: bool,
}

fn kv_error(e: wkv::Error) -> KvError {
    match e {
        wkv::Error::NoSuchStore => KvError::Unavailable("no such store".into()),
        wkv::Error::AccessDenied => KvError::Unavailable("access denied".into()),
        wkv::Error::Other(_) => KvError::Backend("backend error".into()),
    }
}

impl SpinKv {
    /// Opens the store labelled `default` (listed in the component's `key_value_stores`).
    ///
    /// `batch_reads` false reads `get_many` key by key (variable
    /// `kv_batch_reads = "false"`): Spin 4.0.2's Redis backend sends `KEYS`
    /// instead of `MGET` for `get-many` and fails for two keys or more.
    pub fn open_default(batch_reads: bool) -> Result<Self, KvError> {
        wkv::open("default")
            .map(|bucket| Self {
                bucket,
                batch_reads,
            })
            .map_err(kv_error)
    }
}

/// A compare-and-swap on Spin's store.
pub struct SpinCas {
    cas: atomics::Cas,
    key: String,
}

impl Cas for SpinCas {
    fn current(&self) -> Result<Option<Vec<u8>>, KvError> {
        self.cas.current().map_err(kv_error)
    }

    /// A reported failure is checked by reading the key back: Spin 4.0.2's
    /// Redis backend reports every swap as failed, also when its write was
    /// applied. Values are sealed with a fresh nonce, so finding exactly the
    /// bytes this swap wrote means this swap wrote them.
    fn swap(self, value: &[u8]) -> Result<bool, KvError> {
        match atomics::swap(self.cas, value) {
            Ok(()) => Ok(true),
            Err(atomics::CasError::CasFailed(_)) => {
                let bucket = wkv::open("default").map_err(kv_error)?;
                Ok(bucket.get(&self.key).map_err(kv_error)?.as_deref() == Some(value))
            }
            Err(atomics::CasError::StoreError(e)) => Err(kv_error(e)),
        }
    }
}

impl KeyValue for SpinKv {
    type Cas = SpinCas;

    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        self.bucket.get(key).map_err(kv_error)
    }

    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, KvError> {
        if keys.len() < 2 || !self.batch_reads {
            return keys.iter().map(|k| self.get(k)).collect();
        }
        let found = match batch::get_many(&self.bucket, keys) {
            Ok(found) => found,
            // A backend whose get-many fails (Spin 4.0.2 on Redis): read key by key.
            Err(_) => return keys.iter().map(|k| self.get(k)).collect(),
        };
        let mut by_key: std::collections::HashMap<String, Option<Vec<u8>>> =
            found.into_iter().collect();
        Ok(keys.iter().map(|k| by_key.remove(k).flatten()).collect())
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), KvError> {
        self.bucket.set(key, value).map_err(kv_error)
    }

    fn set_many(&self, entries: &[(String, Vec<u8>)]) -> Result<(), KvError> {
        batch::set_many(&self.bucket, entries).map_err(kv_error)
    }

    fn delete(&self, key: &str) -> Result<(), KvError> {
        self.bucket.delete(key).map_err(kv_error)
    }

    fn exists(&self, key: &str) -> Result<bool, KvError> {
        self.bucket.exists(key).map_err(kv_error)
    }

    fn cas(&self, key: &str) -> Result<SpinCas, KvError> {
        atomics::Cas::new(&self.bucket, key)
            .map(|cas| SpinCas {
                cas,
                key: key.to_string(),
            })
            .map_err(kv_error)
    }

    fn list_keys(&self) -> Result<Vec<String>, KvError> {
        // Spin 4.0.2 has no cursor for list-keys: the first call returns every key.
        self.bucket
            .list_keys(None)
            .map(|r| r.keys)
            .map_err(kv_error)
    }

    fn increment(&self, key: &str, delta: i64) -> Result<i64, KvError> {
        atomics::increment(&self.bucket, key, delta).map_err(kv_error)
    }
}

/// `res` with a `content-length` header, as both builds' `reply` send it.
///
/// spin-sdk 6 hands the guest's headers over as they are and writes the body
/// from a task of its own after the handler returns: without a length, the
/// host answers in chunked encoding and ends the body with a last, separate
/// write once the guest's stream closes; on a socket without `TCP_NODELAY`
/// (Spin 4.0.2) that write can wait for the client's delayed ACK, ~40 ms per
/// keep-alive request. With the length, the host's HTTP server ends the
/// response after the last byte of the body, in the same write as the head
/// when the body is already there. See docs/OPERATIONS.md, "Keep-alive
/// stalls". Not for 1xx, 204 and 304, which carry no body and no length.
pub(crate) fn with_content_length(res: web::Response) -> web::Response {
    let (mut parts, body) = res.into_parts();
    let status = parts.status;
    if !status.is_informational()
        && status != http::StatusCode::NO_CONTENT
        && status != http::StatusCode::NOT_MODIFIED
    {
        parts.headers.insert(
            http::header::CONTENT_LENGTH,
            http::HeaderValue::from(body.len()),
        );
    }
    http::Response::from_parts(parts, body)
}

/// The store as handlers get it: Spin's store, every value sealed.
pub type Store = store::sealed::SealedKv<'static, SpinKv>;

/// A request made ready for a handler.
pub struct Prepared {
    /// The request with its body read.
    pub request: web::Request,
    /// Secrets and further variables.
    pub secrets: Secrets,
    /// The store.
    pub kv: Store,
}

fn random(buf: &mut [u8]) {
    getrandom::fill(buf).expect("the host provides randomness");
}

impl Prepared {
    /// The handler environment, with the host's clock and randomness.
    pub fn env(&self) -> Env<'_, Store> {
        Env {
            kv: &self.kv,
            secrets: &self.secrets,
            now: chrono::Utc::now(),
            random: &random,
        }
    }
}

async fn variable(name: &str) -> Result<String, Reply> {
    sdk::variable(name).await.map_err(|_| {
        log_line(&format!("configuration: variable {name} is not set"));
        reply(
            Problem::internal(format!(
                "the service is not configured: variable {name} is missing"
            ))
            .into_response(),
        )
    })
}

/// 413: the body is longer than [`web::MAX_BODY_BYTES`].
fn too_large() -> Reply {
    reply(Problem::too_large(web::MAX_BODY_BYTES).into_response())
}

/// 422: the body could not be read.
fn unreadable() -> Reply {
    reply(Problem::malformed_json("the request body could not be read").into_response())
}

fn not_configured(msg: &str) -> Reply {
    log_line(&format!("configuration: {msg}"));
    reply(Problem::internal(format!("the service is not configured: {msg}")).into_response())
}

/// Who may sign tokens, from the variables `auth_jwks`, `auth_issuer`,
/// `auth_audience`, `auth_max_lifetime_secs` (optional), `trainee_public_key`
/// and, where the component declares it (vouchers), `trainee_signing_key`.
async fn identity() -> Result<web::auth::Identity, Reply> {
    let max_lifetime = sdk::variable("auth_max_lifetime_secs")
        .await
        .unwrap_or_default();
    let identity = web::auth::Identity::new(
        &variable("auth_jwks").await?,
        &variable("auth_issuer").await?,
        &variable("auth_audience").await?,
        &max_lifetime,
        &variable("trainee_public_key").await?,
    )
    .map_err(|msg| not_configured(&msg))?;
    match sdk::variable("trainee_signing_key").await {
        Ok(seed) if !seed.trim().is_empty() => identity
            .with_trainee_signing_key(&seed)
            .map_err(|msg| not_configured(&msg)),
        _ => Ok(identity),
    }
}

/// Reads the body (413 beyond the limit), the secrets and `extra` variables, and opens the store.
pub async fn prepare(req: Request, extra: &[&str]) -> Result<Prepared, Reply> {
    let request = sdk::read_request(req).await?;
    let previous_keys = sdk::variable("pii_key_previous").await.unwrap_or_default();
    let batch_reads = sdk::variable("kv_batch_reads")
        .await
        .map(|v| v.trim() != "false")
        .unwrap_or(true);
    let identity = identity().await?;
    let mut secrets = Secrets {
        identity,
        pii_hmac_key: variable("pii_hmac_key").await?,
        pii_key: variable("pii_key").await?,
        extra: Default::default(),
    };
    for name in extra {
        if let Ok(v) = sdk::variable(name).await {
            secrets.extra.insert((*name).to_string(), v);
        }
    }
    if let Err(msg) = secrets.check() {
        return Err(not_configured(&msg));
    }
    let keys = Keyring::new(
        DataKey::from_secret(&secrets.pii_key),
        previous_keys
            .split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(DataKey::from_secret)
            .collect(),
    );
    let kv = SpinKv::open_default(batch_reads)
        .map_err(|_| reply(Problem::store_unavailable().into_response()))?;
    Ok(Prepared {
        request,
        secrets,
        kv: SealedKv::new(kv, keys, &random),
    })
}

/// Logs one line about a finished request: method, path, status.
pub fn log(component: &str, req: &web::Request, res: &web::Response) {
    log_line(&format!(
        "{component} {} {} {}",
        req.method(),
        req.uri().path(),
        res.status().as_u16()
    ));
}

/// Writes `line` and its newline to stderr in one write. Standard error is
/// not buffered, and `eprintln!` writes each piece of its format on its own,
/// so under concurrency the pieces of two requests' lines interleaved
/// ("vouchersvouchers POST  POST …"); one write of the whole line cannot.
pub fn log_line(line: &str) {
    use std::io::Write;
    let mut bytes = Vec::with_capacity(line.len() + 1);
    bytes.extend_from_slice(line.as_bytes());
    bytes.push(b'\n');
    let _ = std::io::stderr().write_all(&bytes);
}

/// Prepares the request, runs a synchronous `handler`, logs and replies.
pub async fn serve(
    component: &str,
    req: Request,
    handler: impl FnOnce(&Env<'_, Store>, &web::Request) -> web::Response,
) -> Reply {
    serve_with(component, req, &[], handler).await
}

/// [`serve`] for a component that reads further variables (`extra`).
pub async fn serve_with(
    component: &str,
    req: Request,
    extra: &[&str],
    handler: impl FnOnce(&Env<'_, Store>, &web::Request) -> web::Response,
) -> Reply {
    let prepared = match prepare(req, extra).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let env = prepared.env();
    let res = handler(&env, &prepared.request);
    log(component, &prepared.request, &res);
    reply(res)
}

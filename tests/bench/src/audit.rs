//! The audit log's costs on the real backends, natively in this process
//! (the store code the components run, over the test host's own SQLite and
//! Redis clients, sealed as on Spin):
//!
//! - appends under 4 and 16 writer threads: the transparency log's
//!   `store::audit::record` beside the hash chain it replaced (its append,
//!   kept here as the baseline: take a number, poll until the event before
//!   it is written, then write), events per second and the ratio;
//! - the integration step over logs of 10,000 and 100,000 events: events
//!   per second and key-value calls per integrated event, which must not
//!   grow with the size of the log.

use crate::data;
use crate::inproc::Counting;
use anyhow::{Context, Result};
use std::sync::Arc;
use std::time::{Duration, Instant};
use store::audit::tree::{self, LogSigner};
use store::audit::{Actor, Change};
use store::sealed::{DataKey, Keyring, SealedKv};
use store::{KeyValue, KvError};

/// `store::KeyValue` over the test host's store client (store `default`).
#[derive(Clone)]
pub struct HostKv(pub Arc<e2e::kv::KvStore>);

pub struct HostCas {
    kv: Arc<e2e::kv::KvStore>,
    key: String,
    state: std::sync::Mutex<Option<e2e::kv::CasState>>,
}

fn err(e: e2e::kv::KvError) -> KvError {
    KvError::Backend(e.to_string())
}

impl store::Cas for HostCas {
    fn current(&self) -> Result<Option<Vec<u8>>, KvError> {
        let mut guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let state = guard.as_mut().expect("a fresh handle");
        self.kv
            .cas_current("default", &self.key, state)
            .map_err(err)
    }

    fn swap(self, value: &[u8]) -> Result<bool, KvError> {
        let state = self
            .state
            .into_inner()
            .unwrap_or_else(|p| p.into_inner())
            .expect("a fresh handle");
        Ok(self
            .kv
            .cas_swap("default", &self.key, state, value)
            .map_err(err)?
            == e2e::kv::Swap::Swapped)
    }
}

impl KeyValue for HostKv {
    type Cas = HostCas;

    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        self.0.get("default", key).map_err(err)
    }

    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, KvError> {
        let pairs = self.0.get_many("default", keys).map_err(err)?;
        let mut by_key: std::collections::HashMap<String, Option<Vec<u8>>> =
            pairs.into_iter().collect();
        Ok(keys.iter().map(|k| by_key.remove(k).flatten()).collect())
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), KvError> {
        self.0.set("default", key, value).map_err(err)
    }

    fn set_many(&self, entries: &[(String, Vec<u8>)]) -> Result<(), KvError> {
        self.0.set_many("default", entries).map_err(err)
    }

    fn delete(&self, key: &str) -> Result<(), KvError> {
        self.0.delete("default", key).map_err(err)
    }

    fn exists(&self, key: &str) -> Result<bool, KvError> {
        self.0.exists("default", key).map_err(err)
    }

    fn cas(&self, key: &str) -> Result<HostCas, KvError> {
        Ok(HostCas {
            kv: self.0.clone(),
            key: key.to_string(),
            state: std::sync::Mutex::new(Some(self.0.cas_new().map_err(err)?)),
        })
    }

    fn increment(&self, key: &str, delta: i64) -> Result<i64, KvError> {
        self.0.increment("default", key, delta).map_err(err)
    }
}

fn random(buf: &mut [u8]) {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    for (i, b) in buf.iter_mut().enumerate() {
        *b = (n >> ((i % 8) * 8)) as u8 ^ i as u8;
    }
}

fn change(n: usize) -> Change {
    Change {
        actor: Actor {
            sub: "officer-bench".into(),
            role: "district_officer".into(),
        },
        action: "voucher.settled".into(),
        entity: format!("voucher:BENCH{n:08}"),
        before: Some("0".repeat(64)),
        after: Some("1".repeat(64)),
        note: Some("Y530000220600001".into()),
    }
}

/// The hash chain's append (before the transparency log), as the baseline:
/// take a number, poll until event `n − 1` is written (up to 2,000 reads
/// with the store's back-off), link to its digest, write event `n` and
/// append it to the entity's index.
fn record_chained(kv: &impl KeyValue, change: Change) -> Result<u64> {
    let seq = kv.increment(&store::keys::audit_next(), 1)?.max(1) as u64;
    let mut prev = "0".repeat(64);
    if seq > 1 {
        prev = "missing".into();
        for attempt in 0..2_000 {
            store::records::backoff(attempt);
            if let Some(b) = kv.get(&store::keys::audit_event(seq - 1))? {
                let e: serde_json::Value = serde_json::from_slice(&b)?;
                prev = e["digest"].as_str().unwrap_or_default().to_string();
                break;
            }
        }
    }
    let at = chrono::Utc::now();
    let body = serde_json::json!({"seq": seq, "at": at, "change": change, "prev": prev});
    let digest = store::pii::sha256_hex(serde_json::to_vec(&body)?);
    let mut event = serde_json::to_value(&change)?;
    event["seq"] = seq.into();
    event["at"] = serde_json::to_value(at)?;
    event["prev"] = prev.into();
    event["digest"] = digest.into();
    kv.set(&store::keys::audit_event(seq), &serde_json::to_vec(&event)?)?;
    store::index::append(
        kv,
        &format!("audit-entity:{}", store::pii::sha256_hex(&change.entity)),
        &seq.to_string(),
    )?;
    Ok(seq)
}

pub struct AppendRow {
    pub threads: usize,
    pub chained_per_s: f64,
    pub chained_p99: Duration,
    pub log_per_s: f64,
    pub log_p99: Duration,
}

/// `threads` writers appending `per_thread` events each with `append`:
/// (events per second, p99 latency of one append).
fn appends(
    kv: &HostKv,
    threads: usize,
    per_thread: usize,
    append: fn(&SealedKv<'_, HostKv>, Change) -> Result<u64>,
) -> Result<(f64, Duration)> {
    let started = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let kv = kv.clone();
            std::thread::spawn(move || -> Result<Vec<Duration>> {
                let sealed = SealedKv::new(
                    kv,
                    Keyring::new(DataKey::from_secret(data::PII_KEY), vec![]),
                    &random,
                );
                let mut lat = Vec::with_capacity(per_thread);
                for i in 0..per_thread {
                    let t0 = Instant::now();
                    append(&sealed, change(t * 1_000_000 + i))?;
                    lat.push(t0.elapsed());
                }
                Ok(lat)
            })
        })
        .collect();
    let mut all = Vec::new();
    for h in handles {
        all.extend(
            h.join()
                .map_err(|_| anyhow::anyhow!("a writer panicked"))??,
        );
    }
    let secs = started.elapsed().as_secs_f64();
    all.sort();
    let p99 = all[(all.len() * 99 / 100).min(all.len() - 1)];
    Ok(((threads * per_thread) as f64 / secs, p99))
}

/// Appends under 4 and 16 writers, chain and log, each on a fresh store.
pub fn append_rows(redis: bool, per_thread: usize) -> Result<Vec<AppendRow>> {
    let mut rows = Vec::new();
    for threads in [4usize, 16] {
        let chained = {
            let backend = data::Backend::new(redis)?;
            let kv = HostKv(Arc::new(backend.open()?));
            appends(&kv, threads, per_thread, |kv, c| record_chained(kv, c))?
        };
        let log = {
            let backend = data::Backend::new(redis)?;
            let kv = HostKv(Arc::new(backend.open()?));
            appends(&kv, threads, per_thread, |kv, c| {
                Ok(store::audit::record(kv, c, chrono::Utc::now())?)
            })?
        };
        rows.push(AppendRow {
            threads,
            chained_per_s: chained.0,
            chained_p99: chained.1,
            log_per_s: log.0,
            log_p99: log.1,
        });
    }
    Ok(rows)
}

pub struct IntegrationRow {
    pub events: u64,
    pub per_s: f64,
    pub calls_per_event: f64,
    pub reads_per_event: f64,
    pub writes_per_event: f64,
    pub seconds: f64,
    /// Mean time of a step of 1,000 events over the first and the last
    /// tenth of the steps: whether a step gets dearer as the log grows.
    pub first_tenth_ms: f64,
    pub last_tenth_ms: f64,
}

/// Writes `n` events straight into a fresh store (sealed, as the components
/// write them; the counter set to `n`), then integrates them in steps of
/// [`tree::MAX_PAGE`], counting time and key-value calls.
pub fn integration(redis: bool, n: u64) -> Result<IntegrationRow> {
    let backend = data::Backend::new(redis)?;
    let raw = HostKv(Arc::new(backend.open()?));
    let keys = || Keyring::new(DataKey::from_secret(data::PII_KEY), vec![]);
    {
        let sealed = SealedKv::new(raw.clone(), keys(), &random);
        let at = chrono::Utc::now();
        let mut batch = Vec::new();
        for seq in 1..=n {
            let mut e = store::audit::Event {
                seq,
                at,
                change: change(seq as usize),
                digest: String::new(),
            };
            e.digest = e.compute_digest();
            batch.push((store::keys::audit_event(seq), serde_json::to_vec(&e)?));
            if batch.len() == 2_000 || seq == n {
                sealed.set_many(&std::mem::take(&mut batch))?;
            }
        }
        raw.increment(&store::keys::audit_next(), n as i64)?;
    }
    let counting = Counting::new(raw);
    let sealed = SealedKv::new(counting.clone(), keys(), &random);
    let signer = LogSigner::for_tests();
    let started = Instant::now();
    let mut steps = Vec::new();
    loop {
        let t = Instant::now();
        let step = tree::integrate(
            &sealed,
            &signer,
            chrono::Utc::now(),
            tree::MAX_PAGE,
            chrono::Duration::seconds(300),
        )
        .context("integration")?;
        steps.push(t.elapsed().as_secs_f64() * 1e3);
        if step.pending == 0 {
            anyhow::ensure!(step.size == n, "integrated {} of {n}", step.size);
            break;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let (reads, writes) = counting.counts();
    let tenth = (steps.len() / 10).max(1);
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    Ok(IntegrationRow {
        first_tenth_ms: mean(&steps[..tenth]),
        last_tenth_ms: mean(&steps[steps.len() - tenth..]),
        events: n,
        per_s: n as f64 / seconds,
        calls_per_event: (reads + writes) as f64 / n as f64,
        reads_per_event: reads as f64 / n as f64,
        writes_per_event: writes as f64 / n as f64,
        seconds,
    })
}

/// Runs both and prints them.
pub fn run(redis: bool, sizes: &[u64], per_thread: usize) -> Result<()> {
    let backend = if redis { "Redis" } else { "SQLite" };
    println!();
    println!(
        "## Audit log on {backend}: appends under concurrency, before (hash chain) and after (transparency log)"
    );
    println!();
    println!(
        "Natively in this process over the host's own {backend} client, sealed as on Spin; {per_thread} appends per writer."
    );
    println!();
    println!(
        "| writers | chain: events/s | chain: p99 ms | log: events/s | log: p99 ms | log ÷ chain (events/s) |"
    );
    println!("|---|---|---|---|---|---|");
    for r in append_rows(redis, per_thread)? {
        println!(
            "| {} | {:.0} | {:.2} | {:.0} | {:.2} | {:.2} |",
            r.threads,
            r.chained_per_s,
            r.chained_p99.as_secs_f64() * 1e3,
            r.log_per_s,
            r.log_p99.as_secs_f64() * 1e3,
            r.log_per_s / r.chained_per_s
        );
    }
    println!();
    println!(
        "## Audit log on {backend}: integration (RFC 6962 tree, signed checkpoint) in steps of {}",
        tree::MAX_PAGE
    );
    println!();
    println!(
        "| events | seconds | events/s | kv calls per event (reads + writes) | ms per step: first tenth, last tenth |"
    );
    println!("|---|---|---|---|---|");
    let mut rows = Vec::new();
    for &n in sizes {
        let r = integration(redis, n)?;
        println!(
            "| {} | {:.2} | {:.0} | {:.4} ({:.4} + {:.4}) | {:.1}, {:.1} |",
            r.events,
            r.seconds,
            r.per_s,
            r.calls_per_event,
            r.reads_per_event,
            r.writes_per_event,
            r.first_tenth_ms,
            r.last_tenth_ms
        );
        rows.push(r);
    }
    if let (Some(a), Some(b)) = (rows.first(), rows.last())
        && rows.len() > 1
    {
        println!();
        println!(
            "cost per event, {} → {} events: kv calls ×{:.3}, time ×{:.3} (within ±20 %: {})",
            a.events,
            b.events,
            b.calls_per_event / a.calls_per_event,
            a.per_s / b.per_s,
            ((b.calls_per_event / a.calls_per_event) - 1.0).abs() <= 0.2
                && ((a.per_s / b.per_s) - 1.0).abs() <= 0.2
        );
    }
    Ok(())
}

//! The load generator: a few keep-alive connections to the host on loopback,
//! each sending its next request as soon as the previous answer is read, until
//! the request budget or the time budget is spent.

use bytes::Bytes;
use e2e::{Client, Reply};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One request to send.
pub struct Req {
    pub method: &'static str,
    /// Path and query, joined to the host's base URL.
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl Req {
    pub fn get(path: impl Into<String>, token: Option<&str>) -> Req {
        Req::new("GET", path, token, Bytes::new())
    }

    pub fn new(
        method: &'static str,
        path: impl Into<String>,
        token: Option<&str>,
        body: impl Into<Bytes>,
    ) -> Req {
        let mut headers = vec![("content-type".to_string(), "application/json".to_string())];
        if let Some(t) = token {
            headers.push(("authorization".into(), format!("Bearer {t}")));
        }
        Req {
            method,
            path: path.into(),
            headers,
            body: body.into(),
        }
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Req {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// What a route's traffic looks like: the `i`-th request (sent by connection
/// `worker`), and what is done with each answer.
pub trait Traffic: Send + Sync {
    /// The `i`-th request, or `None` when the route has no more work (a pool
    /// of prepared classes or vouchers used up).
    fn request(&self, worker: usize, i: usize) -> Option<Req>;

    /// Checks an answer; `Err` counts the request as failed.
    fn answer(&self, worker: usize, i: usize, reply: &Reply) -> Result<(), String> {
        let _ = (worker, i);
        if (200..300).contains(&reply.status) {
            Ok(())
        } else {
            Err(format!(
                "{} {}",
                reply.status,
                reply.text().chars().take(300).collect::<String>()
            ))
        }
    }
}

impl<F> Traffic for F
where
    F: Fn(usize, usize) -> Option<Req> + Send + Sync,
{
    fn request(&self, worker: usize, i: usize) -> Option<Req> {
        self(worker, i)
    }
}

/// Bounds of one load phase.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// Index of the first request (the traffic's `i`).
    pub start: usize,
    pub requests: usize,
    pub time: Duration,
    pub connections: usize,
}

/// The outcome of one load phase.
#[derive(Debug, Clone)]
pub struct Stats {
    pub requests: usize,
    pub failed: usize,
    pub first_failure: Option<String>,
    pub elapsed: Duration,
    /// Latencies of every request, sorted.
    pub latencies: Vec<Duration>,
    /// Key-value operations the host counted during the phase.
    pub kv_calls: u64,
    /// The instances' linear memory during the phase (set by the caller,
    /// which knows the host).
    pub memory: Option<e2e::MemoryUse>,
}

impl Stats {
    pub fn rps(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub fn percentile(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((p / 100.0) * self.latencies.len() as f64).ceil() as usize;
        self.latencies[rank.clamp(1, self.latencies.len()) - 1]
    }

    pub fn kv_per_request(&self) -> f64 {
        self.kv_calls as f64 / self.requests.max(1) as f64
    }
}

/// Drives `traffic` against `base_url` within `budget`; `kv_calls` reads the
/// host's key-value operation count.
pub async fn run(
    base_url: &str,
    budget: Budget,
    traffic: Arc<dyn Traffic>,
    kv_calls: &(dyn Fn() -> u64 + Sync),
) -> Stats {
    let next = Arc::new(AtomicUsize::new(budget.start));
    let failures = Arc::new(Mutex::new((0usize, None::<String>)));
    let deadline = Instant::now() + budget.time;
    let kv_before = kv_calls();
    let started = Instant::now();
    let mut workers = Vec::new();
    for worker in 0..budget.connections.max(1) {
        let (next, failures, traffic) = (next.clone(), failures.clone(), traffic.clone());
        let base = base_url.to_string();
        let limit = budget.start.saturating_add(budget.requests);
        workers.push(tokio::spawn(async move {
            // One client per worker: one keep-alive connection each.
            let client = Client::new();
            let mut latencies = Vec::new();
            loop {
                if Instant::now() >= deadline {
                    break;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= limit {
                    break;
                }
                let Some(req) = traffic.request(worker, i) else {
                    break;
                };
                let headers: Vec<(&str, &str)> = req
                    .headers
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                let url = format!("{base}{}", req.path);
                let t = Instant::now();
                let outcome = client.send(req.method, &url, &headers, req.body).await;
                latencies.push(t.elapsed());
                let verdict = match &outcome {
                    Ok(reply) => traffic.answer(worker, i, reply),
                    Err(e) => Err(format!("{e:#}")),
                };
                if let Err(e) = verdict {
                    let mut f = failures.lock().unwrap_or_else(|p| p.into_inner());
                    f.0 += 1;
                    if f.1.is_none() {
                        f.1 = Some(format!("{} {}: {e}", req.method, req.path));
                    }
                }
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for w in workers {
        latencies.extend(w.await.expect("load worker"));
    }
    let elapsed = started.elapsed();
    let kv_calls = kv_calls() - kv_before;
    latencies.sort();
    let (failed, first_failure) = failures.lock().unwrap_or_else(|p| p.into_inner()).clone();
    Stats {
        requests: latencies.len(),
        failed,
        first_failure,
        elapsed,
        latencies,
        kv_calls,
        memory: None,
    }
}

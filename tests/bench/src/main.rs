//! The benchmark of issue 8: `cargo run --release -p bench [-- --help]`.
//!
//! Starts the project's Spin test host (`e2e`, wasmtime 44) on loopback with
//! the release components of `spin.toml` and the harness fixtures (`hello`,
//! `kv-probe`), a SQLite key-value file in a temporary directory, seeds data
//! and drives each route from a few keep-alive connections, bounded in
//! requests and time. For each route it prints requests per second, p50 and
//! p99 latency, the key-value operations per request counted by the host, and
//! the ratios to `hello` and to `kv-probe`'s `kv-floor` with the same number
//! of key-value calls, measured in the same run. Then the sampling run at
//! scale (separate hosts), the Rust sampler against the Python reference,
//! and the component sizes. Traffic goes to 127.0.0.1 only.

mod audit;
mod data;
mod inproc;
mod load;
mod sampler;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use e2e::{Host, KvReads, Reply};
use load::{Budget, Req, Stats, Traffic};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use web::auth::Role;

const HELP: &str = "\
bench: cost per request of the product's routes on the project's Spin test host

USAGE: cargo run --release -p bench -- [OPTIONS]

OPTIONS (defaults in brackets):
  --requests N        requests per route at most [2000]
  --seconds S         seconds per route at most [10]
  --connections C     concurrent keep-alive connections [4]
  --issue-classes K   60-trainee classes prepared for voucher issue [12]
  --spot-classes M    classes in training in the main host, for the run-page route [1000]
  --page-size P       classes per spot-check run page [100]
  --scale LIST        class counts of the sampling-scale runs, or 'none' [1000,5000,20000]
  --sampler-classes N classes of 40 for the sampler comparison [5000]
  --inproc-iters N    iterations of the in-process (native) breakdown [200]
  --skip-routes       only the scale runs, the sampler, the breakdown and the sizes
  --validate-only     only the baselines and class validate, then the sizes: a
                      short run for profiling (see docs/PERFORMANCE.md)
  --keepalive-only    only the keep-alive comparison (Spin 4.0.2's sockets, without
                      TCP_NODELAY, against sockets with it), then the sizes
  --routes-only       only the baselines and the routes, then the sizes
  --audit-only        only the audit log: appends under 4 and 16 writers (hash
                      chain before, transparency log after) and the integration
                      of --audit-sizes events, natively over the backend
  --audit-sizes LIST  log sizes of the integration runs [10000,100000]
  --audit-appends N   appends per writer in the append comparison [500]
  --redis             keep the key-value data in a private redis-server on
                      loopback (SpinKube's backend) instead of a SQLite file
";

#[derive(Debug, Clone)]
struct Opts {
    requests: usize,
    seconds: f64,
    connections: usize,
    issue_classes: usize,
    spot_classes: usize,
    page_size: usize,
    scale: Vec<usize>,
    sampler_classes: usize,
    inproc_iters: usize,
    skip_routes: bool,
    validate_only: bool,
    keepalive_only: bool,
    routes_only: bool,
    audit_only: bool,
    audit_sizes: Vec<u64>,
    audit_appends: usize,
    redis: bool,
}

fn parse_args() -> Result<Opts> {
    let mut o = Opts {
        requests: 2000,
        seconds: 10.0,
        connections: 4,
        issue_classes: 12,
        spot_classes: 1000,
        page_size: 100,
        scale: vec![1000, 5000, 20000],
        sampler_classes: 5000,
        inproc_iters: 200,
        skip_routes: false,
        validate_only: false,
        keepalive_only: false,
        routes_only: false,
        audit_only: false,
        audit_sizes: vec![10_000, 100_000],
        audit_appends: 500,
        redis: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || {
            args.next()
                .with_context(|| format!("{a} needs a value (see --help)"))
        };
        match a.as_str() {
            "--requests" => o.requests = value()?.parse()?,
            "--seconds" => o.seconds = value()?.parse()?,
            "--connections" => o.connections = value()?.parse()?,
            "--issue-classes" => o.issue_classes = value()?.parse()?,
            "--spot-classes" => o.spot_classes = value()?.parse()?,
            "--page-size" => o.page_size = value()?.parse()?,
            "--scale" => {
                let v = value()?;
                o.scale = if v == "none" {
                    vec![]
                } else {
                    v.split(',')
                        .map(|s| s.trim().replace('_', "").parse())
                        .collect::<Result<_, _>>()?
                };
            }
            "--sampler-classes" => o.sampler_classes = value()?.parse()?,
            "--inproc-iters" => o.inproc_iters = value()?.parse()?,
            "--skip-routes" => o.skip_routes = true,
            "--validate-only" => o.validate_only = true,
            "--keepalive-only" => o.keepalive_only = true,
            "--routes-only" => o.routes_only = true,
            "--audit-only" => o.audit_only = true,
            "--audit-sizes" => {
                o.audit_sizes = value()?
                    .split(',')
                    .map(|s| s.trim().replace('_', "").parse())
                    .collect::<Result<_, _>>()?
            }
            "--audit-appends" => o.audit_appends = value()?.parse()?,
            "--redis" => o.redis = true,
            "-h" | "--help" => {
                print!("{HELP}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?} (see --help)"),
        }
    }
    if o.requests == 0 || o.connections == 0 || o.seconds <= 0.0 || o.page_size == 0 {
        bail!("--requests, --seconds, --connections and --page-size must be positive");
    }
    o.connections = o.connections.min(64);
    Ok(o)
}

fn machine() -> String {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpu = read("/proc/cpuinfo")
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem_kb: u64 = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    format!(
        "{cpu}, {cores} cores, {:.0} GiB, Linux {}",
        mem_kb as f64 / 1024.0 / 1024.0,
        read("/proc/sys/kernel/osrelease").trim()
    )
}

/// The commit the components were built from, and whether the product's
/// sources differ from it (other people's uncommitted work is built too).
fn source_state() -> String {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(e2e::wasm_build::repo_root())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let head = git(&["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "unknown".into());
    match git(&[
        "status",
        "--porcelain",
        "--",
        "shared",
        "functions",
        "Cargo.lock",
    ]) {
        Some(s) if s.is_empty() => format!("commit {head}, product sources clean"),
        Some(s) => format!(
            "commit {head} plus uncommitted changes to {} product file(s)",
            s.lines().count()
        ),
        None => format!("commit {head}"),
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// One printed row.
struct Row {
    label: String,
    stats: Stats,
    /// The route's first request, sent alone.
    alone: Option<Stats>,
    /// The kv floor it is compared with (n, stats), for product routes.
    floor: Option<(u64, Stats)>,
    /// What the route's first request read (keys, values found, bytes).
    alone_reads: KvReads,
    /// For a route whose one call is a get-many: the floors that make that
    /// same call (as many keys, as many found, as many bytes), without and
    /// with the route's request and response bodies.
    same_call: Option<SameCall>,
    setup: bool,
}

/// Rounds of the same-call comparison (route and floors alternate).
const SAME_CALL_ROUNDS: usize = 5;

/// The floors of a route whose one key-value call is a get-many, measured in
/// rounds that alternate route and floors, so that a slow minute of the
/// machine falls on all three alike.
struct SameCall {
    /// The call: keys asked for, values found, their bytes.
    reads: KvReads,
    request_bytes: usize,
    reply_bytes: usize,
    /// Per round, requests per second of: the route; `kv-probe` making that
    /// call and nothing else (a GET, a short answer); the same on a POST of
    /// the route's request body, answering as many bytes as the route.
    rounds: Vec<[f64; 3]>,
}

impl SameCall {
    /// The median over the rounds of `f`.
    fn median(&self, f: impl Fn(&[f64; 3]) -> f64) -> f64 {
        let mut v: Vec<f64> = self.rounds.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    }

    fn route(&self) -> f64 {
        self.median(|r| r[0])
    }

    fn call(&self) -> f64 {
        self.median(|r| r[1])
    }

    fn bodies(&self) -> f64 {
        self.median(|r| r[2])
    }

    /// Median of the route's share of the bare call's floor, round by round.
    fn call_share(&self) -> f64 {
        self.median(|r| r[0] / r[1])
    }

    /// Median of the route's share of the floor with bodies, round by round.
    fn bodies_share(&self) -> f64 {
        self.median(|r| r[0] / r[2])
    }
}

struct Bench<'h> {
    host: &'h Host,
    opts: Opts,
    floors: BTreeMap<u64, Stats>,
    hello: Option<Stats>,
    writes: Option<Stats>,
    rows: Vec<Row>,
}

impl Bench<'_> {
    /// Measures `hello` again (the drift over the run) and prints the route table.
    async fn finish(&self, calls_by_size: &[(usize, u64)]) {
        let hello_end = self
            .load(
                self.budget(self.opts.requests),
                Arc::new(|_, _| Some(Req::get("/hello", None))),
            )
            .await;
        print_routes(self, &hello_end, calls_by_size);
    }

    fn budget(&self, requests: usize) -> Budget {
        Budget {
            start: 0,
            requests,
            time: Duration::from_secs_f64(self.opts.seconds),
            connections: self.opts.connections,
        }
    }

    async fn load(&self, budget: Budget, traffic: Arc<dyn Traffic>) -> Stats {
        let host = self.host;
        let before = host.memory();
        let mut s = load::run(host.base_url(), budget, traffic, &|| host.kv_calls()).await;
        s.memory = Some(host.memory() - before);
        s
    }

    /// Work that must all succeed (seeding): every request, no time bound.
    async fn setup(&self, what: &str, n: usize, traffic: Arc<dyn Traffic>) -> Result<Stats> {
        let budget = Budget {
            start: 0,
            requests: n,
            time: Duration::from_secs(3600),
            connections: self.opts.connections,
        };
        let t = Instant::now();
        let s = self.load(budget, traffic).await;
        if s.failed > 0 || s.requests < n {
            bail!(
                "{what}: {} of {n} requests, {} failed; first: {}\nhost log tail:\n{}",
                s.requests,
                s.failed,
                s.first_failure.clone().unwrap_or_default(),
                log_tail(self.host)
            );
        }
        eprintln!(
            "  {what}: {n} requests in {:.1}s",
            t.elapsed().as_secs_f64()
        );
        Ok(s)
    }

    /// Compares the route `label` (measured already; `traffic` sends its
    /// requests), whose one key-value call is a get-many, with `kv-probe`
    /// making that same call: as many keys, of which as many hold values of
    /// the same mean size (seeded here under a prefix of their own), and
    /// nothing else; and with the same again on a POST of `body` answering
    /// `reply_bytes` bytes: the host's own work for such a request. Route and
    /// floors alternate over [`SAME_CALL_ROUNDS`] rounds.
    async fn same_call(
        &mut self,
        label: &str,
        traffic: Arc<dyn Traffic>,
        body: Bytes,
        reply_bytes: usize,
    ) -> Result<()> {
        let row = self
            .rows
            .iter()
            .position(|r| r.label == label)
            .with_context(|| format!("{label} is not measured"))?;
        let reads = self.rows[row].alone_reads;
        let calls = self.rows[row].alone.as_ref().map_or(0, |a| a.kv_calls);
        if calls != 1 || reads.keys < 2 {
            bail!(
                "{label} makes {calls} key-value calls reading {} keys, not one get-many",
                reads.keys
            );
        }
        let prefix = format!("floor-{}-{}-{}", reads.keys, reads.found, reads.bytes);
        let size = (reads.bytes / reads.found.max(1)) as usize;
        let (p, value) = (prefix.clone(), Bytes::from(vec![b'v'; size]));
        self.setup(
            &format!("same-call floor values ({} of {size} bytes)", reads.found),
            reads.found as usize,
            Arc::new(move |i, _| {
                Some(Req::new(
                    "PUT",
                    format!("/probe/kv?key={p}/{i}"),
                    None,
                    value.clone(),
                ))
            }),
        )
        .await?;
        let url = format!("/probe/kv-floor?batch={}&prefix={prefix}", reads.keys);
        let u = url.clone();
        let call: Arc<dyn Traffic> = Arc::new(move |_, _| Some(Req::get(u.clone(), None)));
        let u = format!("{url}&reply={reply_bytes}");
        let request_bytes = body.len();
        let bodies: Arc<dyn Traffic> =
            Arc::new(move |_, _| Some(Req::new("POST", u.clone(), None, body.clone())));
        let budget = Budget {
            time: Duration::from_secs_f64(self.opts.seconds / SAME_CALL_ROUNDS as f64),
            ..self.budget(self.opts.requests.div_ceil(SAME_CALL_ROUNDS).max(50))
        };
        let mut rounds = Vec::new();
        for _ in 0..SAME_CALL_ROUNDS {
            let mut round = [0.0; 3];
            for (i, t) in [&traffic, &call, &bodies].into_iter().enumerate() {
                let s = self.load(budget, t.clone()).await;
                if s.failed > 0 {
                    bail!(
                        "{label} same-call comparison: {} failed; first: {}",
                        s.failed,
                        s.first_failure.unwrap_or_default()
                    );
                }
                round[i] = s.rps();
            }
            rounds.push(round);
        }
        let c = SameCall {
            reads,
            request_bytes,
            reply_bytes,
            rounds,
        };
        eprintln!(
            "  {label} against its get-many of {} keys ({} found, {} bytes), {} rounds, medians: \
             route {:.0} req/s, the call alone {:.0} req/s ({:.1} %), \
             with {request_bytes} bytes in and {reply_bytes} out {:.0} req/s ({:.1} %)",
            reads.keys,
            reads.found,
            reads.bytes,
            SAME_CALL_ROUNDS,
            c.route(),
            c.call(),
            100.0 * c.call_share(),
            c.bodies(),
            100.0 * c.bodies_share()
        );
        self.rows[row].same_call = Some(c);
        Ok(())
    }

    async fn floor(&mut self, n: u64) -> Stats {
        if let Some(s) = self.floors.get(&n) {
            return s.clone();
        }
        let traffic: Arc<dyn Traffic> =
            Arc::new(move |_, _| Some(Req::get(format!("/probe/kv-floor?n={n}"), None)));
        let s = self.load(self.budget(self.opts.requests), traffic).await;
        eprintln!(
            "  kv-floor n={n}: {:.0} req/s, {:.2} kv calls per request",
            s.rps(),
            s.kv_per_request()
        );
        self.floors.insert(n, s.clone());
        s
    }

    /// Measures a product route within the budget, then its kv floor.
    async fn route(&mut self, label: &str, limit: usize, traffic: Arc<dyn Traffic>) -> Stats {
        let limit = limit.min(self.opts.requests);
        // The first request alone: its key-value calls without contention.
        let reads_before = self.host.kv_reads();
        let alone = self
            .load(
                Budget {
                    start: 0,
                    requests: 1,
                    time: Duration::from_secs(600),
                    connections: 1,
                },
                traffic.clone(),
            )
            .await;
        let alone_reads = self.host.kv_reads() - reads_before;
        let mut s = self
            .load(
                Budget {
                    start: 1,
                    ..self.budget(limit.saturating_sub(1))
                },
                traffic,
            )
            .await;
        if s.requests == 0 {
            s = alone.clone();
        }
        eprintln!(
            "  {label}: {} requests, {:.1} req/s, {:.1} kv calls per request ({} alone), {} failed{}",
            s.requests,
            s.rps(),
            s.kv_per_request(),
            alone.kv_calls,
            s.failed + alone.failed,
            s.first_failure
                .as_ref()
                .or(alone.first_failure.as_ref())
                .map(|f| format!(" (first: {f})"))
                .unwrap_or_default()
        );
        let n = s.kv_per_request().round().max(1.0) as u64;
        let f = self.floor(n).await;
        self.rows.push(Row {
            label: label.into(),
            stats: s.clone(),
            alone: Some(alone),
            alone_reads,
            floor: Some((n, f)),
            same_call: None,
            setup: false,
        });
        s
    }

    fn setup_row(&mut self, label: &str, s: Stats) {
        self.rows.push(Row {
            label: label.into(),
            stats: s,
            alone: None,
            alone_reads: KvReads::default(),
            floor: None,
            same_call: None,
            setup: true,
        });
    }
}

fn log_tail(host: &Host) -> String {
    let logs = host.logs();
    let lines: Vec<&str> = logs.lines().collect();
    lines[lines.len().saturating_sub(10)..].join("\n")
}

/// Answers must be 2xx; `then` sees the JSON body.
struct Checked<R, A> {
    request: R,
    answer: A,
}

impl<R, A> Traffic for Checked<R, A>
where
    R: Fn(usize, usize) -> Option<Req> + Send + Sync,
    A: Fn(usize, usize, &Value) -> Result<(), String> + Send + Sync,
{
    fn request(&self, worker: usize, i: usize) -> Option<Req> {
        (self.request)(worker, i)
    }

    fn answer(&self, worker: usize, i: usize, reply: &Reply) -> Result<(), String> {
        if !(200..300).contains(&reply.status) {
            return Err(format!(
                "{} {}",
                reply.status,
                reply.text().chars().take(300).collect::<String>()
            ));
        }
        let v: Value = serde_json::from_slice(&reply.body).map_err(|e| e.to_string())?;
        (self.answer)(worker, i, &v)
    }
}

/// Class validate's traffic: one application sent again and again; each
/// answer must be a decision (and an approval when `approved`). The answer
/// is read only as far as the decision's outcome, without building a JSON
/// tree of its 7 KB: the load generator runs in this process, and its own
/// cost per answer would be charged to the route and not to the floors.
struct Validate {
    tok: String,
    body: Bytes,
    approved: bool,
}

impl Traffic for Validate {
    fn request(&self, _: usize, _: usize) -> Option<Req> {
        Some(Req::new(
            "POST",
            "/api/v1/classes/validate",
            Some(&self.tok),
            self.body.clone(),
        ))
    }

    fn answer(&self, _: usize, _: usize, reply: &Reply) -> Result<(), String> {
        #[derive(serde::Deserialize)]
        struct Answer<'a> {
            #[serde(borrow)]
            decision: Decision<'a>,
        }
        #[derive(serde::Deserialize)]
        struct Decision<'a> {
            outcome: &'a str,
        }
        if reply.status != 200 {
            return Err(format!(
                "{} {}",
                reply.status,
                reply.text().chars().take(300).collect::<String>()
            ));
        }
        let a: Answer = serde_json::from_slice(&reply.body).map_err(|e| e.to_string())?;
        match a.decision.outcome {
            "approved" => Ok(()),
            _ if !self.approved => Ok(()),
            other => Err(format!("not approved: {other}")),
        }
    }
}

fn checked<R, A>(request: R, answer: A) -> Arc<dyn Traffic>
where
    R: Fn(usize, usize) -> Option<Req> + Send + Sync + 'static,
    A: Fn(usize, usize, &Value) -> Result<(), String> + Send + Sync + 'static,
{
    Arc::new(Checked { request, answer })
}

fn body(v: &impl serde::Serialize) -> Bytes {
    Bytes::from(serde_json::to_vec(v).expect("serialises"))
}

/// How the host under test treats its connections in the keep-alive
/// comparison, and which build of the components it runs. Variants come in
/// pairs of one build: Spin 4.0.2's sockets first, then `TCP_NODELAY`.
struct SocketVariant {
    label: &'static str,
    configure: fn(e2e::HostConfig) -> e2e::HostConfig,
}

const SOCKET_VARIANTS: [SocketVariant; 4] = [
    SocketVariant {
        label: "p3, Spin 4.0.2 (no TCP_NODELAY)",
        configure: |c| c.tcp_nodelay(false),
    },
    SocketVariant {
        label: "p3, TCP_NODELAY (patched Spin)",
        configure: |c| c.tcp_nodelay(true),
    },
    SocketVariant {
        label: "p2, Spin's sockets (no TCP_NODELAY)",
        configure: |c| c.p2().tcp_nodelay(false),
    },
    SocketVariant {
        label: "p2, TCP_NODELAY",
        configure: |c| c.p2().tcp_nodelay(true),
    },
];

/// Issue 13: keep-alive requests per second of a few routes on a host that
/// writes responses as Spin 4.0.2 does (head when the guest returns the
/// response, body as its stream delivers it) on sockets without
/// `TCP_NODELAY`, against the same host with it. Each variant gets a fresh
/// store and host with the same data.
async fn keepalive(opts: &Opts) -> Result<()> {
    let inst = data::token(Role::Institution, None);
    let admin = data::token(Role::BureauAdmin, None);
    let validate_body = body(&data::application(0, 60));
    type MakeTraffic = Box<dyn Fn() -> Arc<dyn Traffic>>;
    let (vi, vb) = (inst.clone(), validate_body.clone());
    let wa = admin.clone();
    let routes: Vec<(&str, MakeTraffic)> = vec![
        (
            "hello",
            Box::new(|| Arc::new(|_: usize, _: usize| Some(Req::get("/hello", None)))),
        ),
        (
            "kv-probe one get (kv-floor n=1)",
            Box::new(|| Arc::new(|_: usize, _: usize| Some(Req::get("/probe/kv-floor?n=1", None)))),
        ),
        (
            "class-opening health",
            Box::new(|| Arc::new(|_: usize, _: usize| Some(Req::get("/api/v1/health", None)))),
        ),
        (
            "class validate (60 trainees)",
            Box::new(move || {
                Arc::new(Validate {
                    tok: vi.clone(),
                    body: vb.clone(),
                    approved: true,
                })
            }),
        ),
        (
            "registry trainer PUT (a write)",
            Box::new(move || {
                let a = wa.clone();
                checked(
                    move |_, i| {
                        let no = data::trainer_no(1000 + i % 8000);
                        Some(Req::new(
                            "PUT",
                            format!("/api/v1/registry/trainers/{no}"),
                            Some(&a),
                            body(
                                &json!({"registration_no": no, "name": "讲师", "status": "registered"}),
                            ),
                        ))
                    },
                    |_, _, _| Ok(()),
                )
            }),
        ),
    ];
    // Per variant, per route: (req/s, p50 ms, p50 ms on one connection).
    let mut results: Vec<Vec<(f64, f64, f64)>> = Vec::new();
    for variant in &SOCKET_VARIANTS {
        let backend = data::Backend::new(opts.redis)?;
        let host =
            Host::start((variant.configure)(backend.config(true))).context("starting the host")?;
        let b = Bench {
            host: &host,
            opts: opts.clone(),
            floors: BTreeMap::new(),
            hello: None,
            writes: None,
            rows: Vec::new(),
        };
        let mut puts: Vec<(String, Bytes)> = vec![
            (
                format!(
                    "/api/v1/registry/institutions/{}",
                    policy::fixtures::INSTITUTION
                ),
                body(&policy::fixtures::institution()),
            ),
            (
                "/api/v1/registry/textbooks/9787111213826".into(),
                body(&policy::fixtures::textbook()),
            ),
        ];
        for n in 0..2 * data::TRAINER_PAIRS {
            let no = data::trainer_no(n);
            puts.push((
                format!("/api/v1/registry/trainers/{no}"),
                body(&json!({"registration_no": no, "name": "讲师", "status": "registered"})),
            ));
        }
        let puts = Arc::new(puts);
        let (p, a) = (puts.clone(), admin.clone());
        b.setup(
            "registry (PUT)",
            puts.len(),
            checked(
                move |_, i| Some(Req::new("PUT", p[i].0.clone(), Some(&a), p[i].1.clone())),
                |_, _, _| Ok(()),
            ),
        )
        .await?;
        let mut row = Vec::new();
        for (label, traffic) in &routes {
            let s = b.load(b.budget(opts.requests), traffic()).await;
            if s.failed > 0 {
                bail!(
                    "{label} on {}: {} failed, first: {}",
                    variant.label,
                    s.failed,
                    s.first_failure.unwrap_or_default()
                );
            }
            let one = b
                .load(
                    Budget {
                        start: opts.requests,
                        requests: 200,
                        time: Duration::from_secs(2),
                        connections: 1,
                    },
                    traffic(),
                )
                .await;
            eprintln!(
                "  {} / {label}: {:.0} req/s, p50 {:.1} ms; one connection p50 {:.1} ms",
                variant.label,
                s.rps(),
                ms(s.percentile(50.0)),
                ms(one.percentile(50.0))
            );
            row.push((s.rps(), ms(s.percentile(50.0)), ms(one.percentile(50.0))));
        }
        let sockets = host.sockets();
        println!(
            "{}: {} connections accepted, {} with TCP_NODELAY (read back from the socket)",
            variant.label, sockets.accepted, sockets.nodelay
        );
        results.push(row);
        host.stop();
    }
    println!();
    println!(
        "## Keep-alive: Spin 4.0.2's sockets against TCP_NODELAY ({} keep-alive connections, at most {} requests or {} s per route; p50 also on one connection)",
        opts.connections, opts.requests, opts.seconds
    );
    println!();
    println!(
        "{:<34} | {:<36} | {:>7} | {:>8} | {:>11} | {:>15}",
        "route", "host", "req/s", "p50", "1-conn p50", "÷ Spin's sockets"
    );
    for (i, (label, _)) in routes.iter().enumerate() {
        for (v, variant) in SOCKET_VARIANTS.iter().enumerate() {
            let (rps, p50, one) = results[v][i];
            // The first variant of each pair (same build) is the baseline.
            let ratio = rps / results[v - v % 2][i].0;
            println!(
                "{label:<34} | {:<36} | {rps:>7.0} | {p50:>5.1} ms | {one:>8.1} ms | {ratio:>14.2}×",
                variant.label
            );
        }
    }
    Ok(())
}

async fn routes(opts: &Opts) -> Result<()> {
    let backend = data::Backend::new(opts.redis)?;
    let t = Instant::now();
    backend.seed_in_training(opts.spot_classes)?;
    eprintln!(
        "seeded {} classes in training into {} in {:.1}s",
        opts.spot_classes,
        backend.describe(),
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let host = Host::start(backend.config(true)).context("starting the host")?;
    eprintln!(
        "host up at {} in {:.1}s (release components built and loaded)",
        host.base_url(),
        t.elapsed().as_secs_f64()
    );
    let mut b = Bench {
        host: &host,
        opts: opts.clone(),
        floors: BTreeMap::new(),
        hello: None,
        writes: None,
        rows: Vec::new(),
    };
    let admin = data::token(Role::BureauAdmin, None);
    let inst = data::token(Role::Institution, None);
    let officer = data::token(Role::DistrictOfficer, None);
    let social = data::token(Role::SocialSecurity, None);
    let scheduler = data::token(Role::Scheduler, None);

    // Registries: institution, textbook, trainers; inspectors.
    let mut puts: Vec<(String, Bytes)> = vec![
        (
            format!(
                "/api/v1/registry/institutions/{}",
                policy::fixtures::INSTITUTION
            ),
            body(&policy::fixtures::institution()),
        ),
        (
            "/api/v1/registry/textbooks/9787111213826".into(),
            body(&policy::fixtures::textbook()),
        ),
    ];
    for n in 0..2 * data::TRAINER_PAIRS {
        let no = data::trainer_no(n);
        puts.push((
            format!("/api/v1/registry/trainers/{no}"),
            body(&json!({"registration_no": no, "name": "讲师", "status": "registered"})),
        ));
    }
    for n in 1..=5 {
        puts.push((
            format!("/api/v1/spot-checks/inspectors/insp-{n}"),
            body(&json!({"name": format!("抽查员{n}")})),
        ));
    }
    let puts = Arc::new(puts);
    let (p, a) = (puts.clone(), admin.clone());
    let s = b
        .setup(
            "registry and inspectors (PUT)",
            puts.len(),
            checked(
                move |_, i| Some(Req::new("PUT", p[i].0.clone(), Some(&a), p[i].1.clone())),
                |_, _, _| Ok(()),
            ),
        )
        .await?;
    b.setup_row("registry PUT", s);
    // The policy data stored as version 1, as a deployment's first filing or
    // first change does: validation then reads and decodes the stored record.
    let a = admin.clone();
    b.setup(
        "policy import (POST)",
        1,
        checked(
            move |_, _| {
                Some(Req::new(
                    "POST",
                    "/api/v1/admin/policy/import".to_string(),
                    Some(&a),
                    Bytes::from_static(b"{}"),
                ))
            },
            |_, _, _| Ok(()),
        ),
    )
    .await?;

    // Baseline: hello.
    let s = b
        .load(
            b.budget(opts.requests),
            Arc::new(|_, _| Some(Req::get("/hello", None))),
        )
        .await;
    eprintln!("  hello: {:.0} req/s", s.rps());
    b.hello = Some(s);
    // A write: one spin:key-value set of a fresh key per request.
    let s = b
        .load(
            b.budget(opts.requests),
            Arc::new(|_, i| {
                Some(Req::new(
                    "PUT",
                    format!("/probe/kv?key=bench-write-{i}"),
                    None,
                    "x",
                ))
            }),
        )
        .await;
    eprintln!(
        "  kv-probe set: {:.0} req/s, {:.2} kv calls per request",
        s.rps(),
        s.kv_per_request()
    );
    b.writes = Some(s);
    // The product component's fixed cost: health makes one `exists`.
    b.route(
        "class-opening health (fixed cost)",
        usize::MAX,
        Arc::new(|_, _| Some(Req::get("/api/v1/health", None))),
    )
    .await;

    // Class validate, 60 trainees; and its key-value calls for other roster sizes.
    let validate_body = body(&data::application(0, 60));
    let mut calls_by_size = Vec::new();
    let mut reply_bytes = BTreeMap::new();
    for n in [1usize, 10, 60, 120, 500] {
        let before = host.kv_calls();
        let r = e2e::Client::new()
            .send(
                "POST",
                &host.url("/api/v1/classes/validate"),
                &[
                    ("content-type", "application/json"),
                    ("authorization", &format!("Bearer {inst}")),
                ],
                body(&data::application(0, n)),
            )
            .await?;
        if r.status != 200 {
            bail!("validate of {n} trainees: {} {}", r.status, r.text());
        }
        calls_by_size.push((n, host.kv_calls() - before));
        reply_bytes.insert(n, r.body.len());
    }
    let validate = |tok: String, vb: Bytes, approved: bool| -> Arc<dyn Traffic> {
        Arc::new(Validate {
            tok,
            body: vb,
            approved,
        })
    };
    let (v60, v1) = (
        validate(inst.clone(), validate_body.clone(), true),
        validate(inst.clone(), body(&data::application(0, 1)), false),
    );
    b.route("class validate (60 trainees)", usize::MAX, v60.clone())
        .await;
    // The same with one trainee: what grows with the roster.
    b.route("class validate (1 trainee)", usize::MAX, v1.clone())
        .await;
    for (label, n, traffic) in [
        ("class validate (60 trainees)", 60, v60),
        ("class validate (1 trainee)", 1, v1),
    ] {
        let body = body(&data::application(0, n));
        if let Err(e) = b.same_call(label, traffic, body, reply_bytes[&n]).await {
            eprintln!("  same-call floors of {label} not measured: {e:#}");
        }
    }
    if opts.validate_only {
        b.finish(&calls_by_size).await;
        return Ok(());
    }

    // Class file: distinct 60-trainee applications.
    let t = Instant::now();
    let bodies: Arc<Vec<Bytes>> = Arc::new(
        (0..opts.requests)
            .map(|k| body(&data::application(k, 60)))
            .collect(),
    );
    eprintln!(
        "  prepared {} applications in {:.1}s",
        bodies.len(),
        t.elapsed().as_secs_f64()
    );
    let filed: Arc<Mutex<BTreeMap<usize, String>>> = Arc::default();
    let (tok, bs, f) = (inst.clone(), bodies.clone(), filed.clone());
    b.route(
        "class file (60 trainees, distinct)",
        bodies.len(),
        checked(
            move |_, i| {
                Some(
                    Req::new("POST", "/api/v1/classes", Some(&tok), bs[i].clone())
                        .header("idempotency-key", format!("bench-file-{i}")),
                )
            },
            move |_, i, v| {
                if v["status"] != "approved" {
                    return Err(format!(
                        "status {}: {}",
                        v["status"], v["decision"]["blocking_rules"]
                    ));
                }
                let id = v["id"].as_str().ok_or("no id")?.to_string();
                f.lock().unwrap_or_else(|p| p.into_inner()).insert(i, id);
                Ok(())
            },
        ),
    )
    .await;
    drop(bodies);

    // Classes enough for voucher issue, filed outside the measurement if the
    // route filed fewer.
    let have = filed.lock().unwrap_or_else(|p| p.into_inner()).len();
    if have < opts.issue_classes {
        let base = opts.requests;
        let (tok, f) = (inst.clone(), filed.clone());
        b.setup(
            "more classes for voucher issue (POST /api/v1/classes)",
            opts.issue_classes - have,
            checked(
                move |_, i| {
                    Some(Req::new(
                        "POST",
                        "/api/v1/classes",
                        Some(&tok),
                        body(&data::application(base + i, 60)),
                    ))
                },
                move |_, i, v| {
                    let id = v["id"].as_str().ok_or("no id")?.to_string();
                    if v["status"] != "approved" {
                        return Err(format!("status {}", v["status"]));
                    }
                    f.lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(base + i, id);
                    Ok(())
                },
            ),
        )
        .await?;
    }
    // Cards of the first K filed classes, then voucher issue for those classes.
    let classes: Vec<(usize, String)> = filed
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .take(opts.issue_classes)
        .map(|(k, id)| (*k, id.clone()))
        .collect();
    if classes.is_empty() {
        bail!("no class was filed");
    }
    let ids_numbers: Arc<Vec<String>> = Arc::new(
        classes
            .iter()
            .flat_map(|(k, _)| {
                data::application(*k, 60)
                    .roster
                    .into_iter()
                    .map(|t| t.id_number.expose().to_string())
            })
            .collect(),
    );
    let (tok, ids) = (social.clone(), ids_numbers.clone());
    let s = b
        .setup(
            "card activations",
            ids_numbers.len(),
            checked(
                move |_, i| {
                    Some(Req::new(
                        "POST",
                        "/api/v1/cards/activations",
                        Some(&tok),
                        body(&json!({"id_number": ids[i], "active": true})),
                    ))
                },
                |_, _, v| {
                    v["person_ref"].as_str().ok_or("no person_ref")?;
                    Ok(())
                },
            ),
        )
        .await?;
    b.setup_row("card activation (setup)", s);

    let class_ids: Arc<Vec<String>> = Arc::new(classes.iter().map(|(_, id)| id.clone()).collect());
    let codes: Arc<Mutex<Vec<String>>> = Arc::default();
    // Holders of the vouchers issued: the trainees of my-vouchers read.
    let holders: Arc<Mutex<Vec<String>>> = Arc::default();
    let (tok, ci, cs, hs) = (
        inst.clone(),
        class_ids.clone(),
        codes.clone(),
        holders.clone(),
    );
    b.route(
        "voucher issue (60-trainee class)",
        class_ids.len(),
        checked(
            move |_, i| {
                let id = ci.get(i)?;
                Some(
                    Req::new(
                        "POST",
                        format!("/api/v1/classes/{id}/vouchers"),
                        Some(&tok),
                        "{}",
                    )
                    .header("idempotency-key", format!("bench-issue-{i}")),
                )
            },
            move |_, _, v| {
                if v["issued"] != 60 {
                    return Err(format!(
                        "issued {} refused {}: {}",
                        v["issued"], v["refused"], v["results"][0]
                    ));
                }
                let mut cs = cs.lock().unwrap_or_else(|p| p.into_inner());
                let mut hs = hs.lock().unwrap_or_else(|p| p.into_inner());
                for r in v["results"].as_array().into_iter().flatten() {
                    if let Some(c) = r["voucher"]["code_compact"].as_str() {
                        cs.push(c.to_string());
                    }
                    if let Some(p) = r["voucher"]["person_ref"].as_str() {
                        hs.push(p.to_string());
                    }
                }
                Ok(())
            },
        ),
    )
    .await;

    // Redeem (setup, measured), the checks of 每班必查, then settle.
    let codes: Arc<Vec<String>> = Arc::new(
        codes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .take(opts.requests)
            .cloned()
            .collect(),
    );
    // Redeem within a route's budget; settle then uses the vouchers redeemed.
    let redeemed: Arc<Mutex<Vec<String>>> = Arc::default();
    let (tok, cs, cs2, rd) = (inst.clone(), codes.clone(), codes.clone(), redeemed.clone());
    let s = b
        .load(
            b.budget(codes.len()),
            checked(
                move |_, i| {
                    Some(Req::new(
                        "POST",
                        format!("/api/v1/vouchers/{}/redeem", cs[i]),
                        Some(&tok),
                        Bytes::new(),
                    ))
                },
                move |_, i, _| {
                    rd.lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(cs2[i].clone());
                    Ok(())
                },
            ),
        )
        .await;
    eprintln!(
        "  voucher redeem: {} requests, {:.1} req/s, {} failed",
        s.requests,
        s.rps(),
        s.failed
    );
    let codes: Arc<Vec<String>> =
        Arc::new(redeemed.lock().unwrap_or_else(|p| p.into_inner()).clone());
    b.setup_row("voucher redeem (setup)", s);
    let at = (chrono::Utc::now() - chrono::Duration::minutes(1)).to_rfc3339();
    // The checks of 每班必查 in three waves, each kind for every class at
    // once on all connections (the order within a class holds between waves):
    // audited writes of many requests at the same time.
    for kind in ["pre_opening", "in_training", "post_assessment"] {
        let checks: Arc<Vec<(String, Bytes)>> = Arc::new(
            class_ids
                .iter()
                .map(|id| {
                    (
                        format!("/api/v1/classes/{id}/checks"),
                        body(&json!({"kind": kind, "officer": "王科长", "at": at, "result": "passed"})),
                    )
                })
                .collect(),
        );
        let (tok, ch) = (officer.clone(), checks.clone());
        let s = b
            .setup(
                "checks of 每班必查",
                checks.len(),
                checked(
                    move |_, i| {
                        Some(Req::new(
                            "POST",
                            ch[i].0.clone(),
                            Some(&tok),
                            ch[i].1.clone(),
                        ))
                    },
                    |_, _, _| Ok(()),
                ),
            )
            .await?;
        b.setup_row(
            &format!("class check {kind} ({} conn)", b.opts.connections),
            s,
        );
    }
    let (tok, cs) = (officer.clone(), codes.clone());
    b.route(
        "voucher settle",
        codes.len(),
        checked(
            move |_, i| {
                Some(
                    Req::new(
                        "POST",
                        format!("/api/v1/vouchers/{}/settle", cs.get(i)?),
                        Some(&tok),
                        body(&json!({"certificate_no": format!("Y5300002206{:05}", i % 100_000)})),
                    )
                    .header("idempotency-key", format!("bench-settle-{i}")),
                )
            },
            |_, _, v| match v["state"].as_str() {
                Some("settled") => Ok(()),
                other => Err(format!("state {other:?}")),
            },
        ),
    )
    .await;

    // Spot-check run page: each connection runs its own windows (days from
    // the seeded classes' first class day on) page by page, giving the public
    // value once the freeze is complete (SC-DRAW).
    let windows: Arc<Vec<AtomicUsize>> =
        Arc::new((0..opts.connections).map(|_| AtomicUsize::new(0)).collect());
    let awaiting: Arc<Vec<std::sync::atomic::AtomicBool>> = Arc::new(
        (0..opts.connections)
            .map(|_| std::sync::atomic::AtomicBool::new(false))
            .collect(),
    );
    let (tok, w1, w2, page) = (
        scheduler.clone(),
        windows.clone(),
        windows.clone(),
        opts.page_size,
    );
    let (a1, a2) = (awaiting.clone(), awaiting.clone());
    let first_day: chrono::NaiveDate = "2022-06-13".parse().expect("a date");
    b.route(
        &format!("spot-check run page ({page} classes of 40)"),
        usize::MAX,
        checked(
            move |w, _| {
                let k = w1[w].load(Ordering::Relaxed);
                let day = first_day + chrono::Duration::days((w * 10_000 + k) as i64);
                let mut b = json!({"window": day.to_string(), "page_size": page});
                if a1[w].load(Ordering::Relaxed) {
                    b["public_value"] = json!("314159");
                }
                Some(Req::new(
                    "POST",
                    "/api/v1/spot-checks/runs",
                    Some(&tok),
                    body(&b),
                ))
            },
            move |w, _, v| {
                a2[w].store(
                    v["frozen"] == true && v["seed_fixed"] == false,
                    Ordering::Relaxed,
                );
                if v["done"] == true {
                    w2[w].fetch_add(1, Ordering::Relaxed);
                }
                Ok(())
            },
        ),
    )
    .await;
    let runs_done: usize = windows.iter().map(|w| w.load(Ordering::Relaxed)).sum();
    eprintln!(
        "  ({runs_done} runs of {} classes completed)",
        opts.spot_classes
    );

    // My vouchers: trainees holding one of the vouchers issued.
    let people: Vec<String> = holders
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .take(opts.requests)
        .cloned()
        .collect();
    let tokens: Arc<Vec<String>> = Arc::new(backend.trainee_tokens(&people)?);
    let tk = tokens.clone();
    b.route(
        "my-vouchers read",
        usize::MAX,
        checked(
            move |_, i| Some(Req::get("/api/v1/me/vouchers", Some(&tk[i % tk.len()]))),
            |_, _, v| match v["items"].as_array().map(Vec::len) {
                Some(1) => Ok(()),
                n => Err(format!("{n:?} vouchers")),
            },
        ),
    )
    .await;

    b.finish(&calls_by_size).await;
    Ok(())
}

fn print_routes(b: &Bench<'_>, hello_end: &Stats, calls_by_size: &[(usize, u64)]) {
    let hello = b.hello.as_ref().expect("hello measured");
    println!();
    println!(
        "## Routes ({} connections, at most {} requests or {} s per route)",
        b.opts.connections, b.opts.requests, b.opts.seconds
    );
    println!();
    println!(
        "{:<40} {:>5} {:>8} {:>8} {:>8} {:>7} {:>6} {:>9} {:>8} {:>13} {:>8} {:>8} {:>6}",
        "route",
        "reqs",
        "req/s",
        "p50 ms",
        "p99 ms",
        "kv/req",
        "alone",
        "alone ms",
        "÷ hello",
        "kv floor",
        "÷ floor",
        "mem KiB",
        "grows"
    );
    let line = |label: &str, s: &Stats, alone: Option<&Stats>, floor: Option<&(u64, Stats)>| {
        let (floor_col, ratio_col) = match floor {
            Some((n, f)) => (
                format!("n={n} {:.0}/s", f.rps()),
                format!("{:.1}%", 100.0 * s.rps() / f.rps()),
            ),
            None => (String::new(), String::new()),
        };
        let (alone_kv, alone_ms) = match alone {
            Some(a) => (
                a.kv_calls.to_string(),
                format!("{:.2}", ms(a.percentile(50.0))),
            ),
            None => (String::new(), String::new()),
        };
        let (mem_col, grows_col) = match s.memory {
            Some(m) if m.requests > 0 => (
                format!("{:.0}", m.mean_peak_kib()),
                format!("{:.1}", m.mean_grows()),
            ),
            _ => (String::new(), String::new()),
        };
        println!(
            "{:<40} {:>5} {:>8.1} {:>8.2} {:>8.2} {:>7.1} {:>6} {:>9} {:>7.1}% {:>13} {:>8} {:>8} {:>6}{}",
            label,
            s.requests,
            s.rps(),
            ms(s.percentile(50.0)),
            ms(s.percentile(99.0)),
            s.kv_per_request(),
            alone_kv,
            alone_ms,
            100.0 * s.rps() / hello.rps(),
            floor_col,
            ratio_col,
            mem_col,
            grows_col,
            if s.failed > 0 {
                format!("  ({} failed)", s.failed)
            } else {
                String::new()
            }
        );
    };
    line("hello (baseline)", hello, None, None);
    for (n, f) in &b.floors {
        line(&format!("kv-floor n={n} (baseline, gets)"), f, None, None);
    }
    if let Some(w) = &b.writes {
        line("kv-probe set (baseline, 1 write)", w, None, None);
    }
    for r in b.rows.iter().filter(|r| !r.setup) {
        line(&r.label, &r.stats, r.alone.as_ref(), r.floor.as_ref());
    }
    for r in b.rows.iter().filter(|r| r.setup) {
        line(&r.label, &r.stats, None, None);
    }
    line("hello again, at the end (drift)", hello_end, None, None);
    println!();
    let same: Vec<(&Row, &SameCall)> = b
        .rows
        .iter()
        .filter_map(|r| r.same_call.as_ref().map(|c| (r, c)))
        .collect();
    if !same.is_empty() {
        println!(
            "## Class validate against kv-probe making its one call (a get-many of as many keys, \
             as many found, as many bytes) and nothing else: alone, and with the route's bytes in and out\n"
        );
        println!(
            "{:<30} {:>5} {:>5} {:>6} {:>6} {:>6} {:>8} {:>10} {:>7} {:>12} {:>7} {:>10} {:>7}",
            "route",
            "keys",
            "found",
            "bytes",
            "in B",
            "out B",
            "req/s",
            "call /s",
            "÷",
            "+bodies /s",
            "÷",
            "n=1 /s",
            "÷"
        );
        for (r, c) in same {
            let (_, n1) = r.floor.as_ref().expect("measured with the route");
            println!(
                "{:<30} {:>5} {:>5} {:>6} {:>6} {:>6} {:>8.1} {:>10.1} {:>6.1}% {:>12.1} {:>6.1}% {:>10.1} {:>6.1}%",
                r.label.trim_start_matches("class "),
                c.reads.keys,
                c.reads.found,
                c.reads.bytes,
                c.request_bytes,
                c.reply_bytes,
                c.route(),
                c.call(),
                100.0 * c.call_share(),
                c.bodies(),
                100.0 * c.bodies_share(),
                n1.rps(),
                100.0 * r.stats.rps() / n1.rps(),
            );
        }
        println!(
            "\n(req/s, call /s, +bodies /s: medians of {} rounds alternating route, call and call with bodies; \
             each ÷ is the median of the rounds' ratios; n=1 is the route's main run over kv-floor n=1, from the table above)",
            SAME_CALL_ROUNDS
        );
        println!();
    }
    let sizes: Vec<String> = calls_by_size
        .iter()
        .map(|(n, c)| format!("{n} trainees: {c}"))
        .collect();
    println!(
        "class validate, key-value calls by roster size: {}",
        sizes.join(", ")
    );
    if let Some(r) = b
        .rows
        .iter()
        .find(|r| r.label.starts_with("class validate"))
    {
        let max_calls = calls_by_size.iter().map(|(_, c)| *c).max().unwrap_or(0);
        let (n, f) = r.floor.as_ref().expect("floor measured");
        let share = 100.0 * r.stats.rps() / f.rps();
        let yes = |ok: bool| if ok { "yes" } else { "NO" };
        let same = match &r.same_call {
            Some(c) => {
                let (a, b) = (100.0 * c.call_share(), 100.0 * c.bodies_share());
                format!(
                    "; of the floor making the same call (get-many of {} keys): {} ({a:.0} %); \
                     of that floor with the same bytes in and out: {} ({b:.0} %)",
                    c.reads.keys,
                    yes(a >= 70.0),
                    yes(b >= 70.0)
                )
            }
            None => String::new(),
        };
        println!(
            "acceptance 2: at most 3 key-value calls whatever the roster: {} (max {max_calls}); \
             ≥ 70 % of kv-floor n={n} (one get of one key): {} ({share:.0} %){same}",
            yes(max_calls <= 3),
            yes(share >= 70.0),
        );
    }
}

struct ScaleRow {
    classes: usize,
    seed_s: f64,
    requests: usize,
    total_s: f64,
    freeze_s: f64,
    draw_s: f64,
    slowest_s: f64,
    kv_calls: u64,
    tasks: u64,
    /// Bytes of the run's record (sealed) at the end.
    run_record: usize,
}

async fn scale(opts: &Opts) -> Result<Vec<ScaleRow>> {
    let mut rows = Vec::new();
    for &classes in &opts.scale {
        let backend = data::Backend::new(opts.redis)?;
        let t = Instant::now();
        backend.seed_in_training(classes)?;
        let seed_s = t.elapsed().as_secs_f64();
        // The components the routes ran on (built when the first host started).
        let mut config = backend.config(false);
        config.build = opts.skip_routes;
        let host = Host::start(config).context("starting the scale host")?;
        let client = e2e::Client::new();
        let admin = format!("Bearer {}", data::token(Role::BureauAdmin, None));
        let sched = format!("Bearer {}", data::token(Role::Scheduler, None));
        let headers = |auth: &str| {
            vec![
                ("content-type".to_string(), "application/json".to_string()),
                ("authorization".to_string(), auth.to_string()),
            ]
        };
        let send = |path: String, auth: &str, body: Value| {
            let h = headers(auth);
            let client = client.clone();
            let url = host.url(&path);
            async move {
                let hs: Vec<(&str, &str)> =
                    h.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                let r = client.send("POST", &url, &hs, body.to_string()).await?;
                if !(200..300).contains(&r.status) {
                    bail!("{path}: {} {}", r.status, r.text());
                }
                r.json()
            }
        };
        for n in 1..=5 {
            let h = headers(&admin);
            let hs: Vec<(&str, &str)> = h.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let r = client
                .send(
                    "PUT",
                    &host.url(&format!("/api/v1/spot-checks/inspectors/insp-{n}")),
                    &hs,
                    json!({"name": format!("抽查员{n}")}).to_string(),
                )
                .await?;
            if !(200..300).contains(&r.status) {
                bail!("inspector: {} {}", r.status, r.text());
            }
        }
        let kv0 = host.kv_calls();
        let started = Instant::now();
        let (mut requests, mut freeze_s, mut draw_s, mut slowest_s) = (0, 0.0, 0.0, 0.0f64);
        let mut awaiting = false;
        let tasks = loop {
            let t = Instant::now();
            let mut b = json!({"window": "2022-06-20", "page_size": opts.page_size});
            if awaiting {
                b["public_value"] = json!("01382438112797316654");
            }
            let v = send("/api/v1/spot-checks/runs".into(), &sched, b).await?;
            awaiting = v["frozen"] == true && v["seed_fixed"] == false;
            let secs = t.elapsed().as_secs_f64();
            requests += 1;
            slowest_s = slowest_s.max(secs);
            let steps = v["steps"].to_string();
            if steps.contains("drew") {
                draw_s += secs;
            } else {
                freeze_s += secs;
            }
            if v["done"] == true {
                break v["tasks"].as_u64().unwrap_or(0);
            }
            if requests > 100_000 {
                bail!("the run never finished");
            }
        };
        let total_s = started.elapsed().as_secs_f64();
        let kv_calls = host.kv_calls() - kv0;
        let run_record = backend
            .open()
            .ok()
            .and_then(|kv| {
                kv.get("default", &store::spot_checks::run_key("scale"))
                    .ok()
                    .flatten()
            })
            .map_or(0, |v| v.len());
        eprintln!(
            "  scale {classes}: seeded in {seed_s:.1}s, run in {total_s:.1}s over {requests} requests"
        );
        rows.push(ScaleRow {
            classes,
            seed_s,
            requests,
            total_s,
            freeze_s,
            draw_s,
            slowest_s,
            kv_calls,
            tasks,
            run_record,
        });
    }
    Ok(rows)
}

fn print_scale(opts: &Opts, rows: &[ScaleRow]) {
    if rows.is_empty() {
        return;
    }
    println!();
    println!(
        "## Sampling scale (separate hosts, classes of 40 seeded into {}, page size {}, one connection)",
        if opts.redis {
            "a fresh redis-server each"
        } else {
            "a fresh SQLite file each"
        },
        opts.page_size
    );
    println!();
    println!(
        "{:>8} {:>8} {:>9} {:>10} {:>10} {:>12} {:>12} {:>12} {:>10} {:>9} {:>8} {:>11}",
        "classes",
        "seed s",
        "requests",
        "run s",
        "slowest s",
        "ms/class",
        "freeze ms/c",
        "draw ms/c",
        "µs/trainee",
        "kv/class",
        "tasks",
        "run rec B"
    );
    for r in rows {
        let c = r.classes as f64;
        println!(
            "{:>8} {:>8.1} {:>9} {:>10.2} {:>10.3} {:>12.3} {:>12.3} {:>12.3} {:>10.1} {:>9.2} {:>8} {:>11}",
            r.classes,
            r.seed_s,
            r.requests,
            r.total_s,
            r.slowest_s,
            1000.0 * r.total_s / c,
            1000.0 * r.freeze_s / c,
            1000.0 * r.draw_s / c,
            1e6 * r.total_s / (c * 40.0),
            r.kv_calls as f64 / c,
            r.tasks,
            r.run_record
        );
    }
    let first = &rows[0];
    let last = &rows[rows.len() - 1];
    if rows.len() > 1 {
        let per = |r: &ScaleRow| r.total_s / r.classes as f64;
        let growth = 100.0 * (per(last) / per(first) - 1.0);
        println!(
            "time per class from {} to {} classes: {growth:+.0} % (acceptance 3, at most +20 %: {})",
            first.classes,
            last.classes,
            if growth <= 20.0 { "yes" } else { "NO" }
        );
    }
}

fn print_sampler(c: &sampler::Comparison) {
    println!();
    println!(
        "## Sampler: tickets of {} sample ids (Rust policy::sampling in this process, best of 3; Python reference, tests/bench/reference_sampler.py)",
        c.tickets
    );
    println!();
    println!("rust   {:>12.0} tickets/s", c.rust_per_s);
    println!("python {:>12.0} tickets/s", c.python_per_s);
    println!("rust ÷ python: {:.2}", c.rust_per_s / c.python_per_s);
    println!(
        "agree: test vectors {}, digest of all tickets {}",
        if c.vectors_agree { "yes" } else { "NO" },
        if c.digests_agree { "yes" } else { "NO" }
    );
    for n in &c.notes {
        println!("note: {n}");
    }
}

fn print_sizes() -> Result<()> {
    let dir = e2e::wasm_build::wasm_target_dir().join("wasm32-wasip2/release");
    let size = |name: &str| -> Result<u64> {
        let p = dir.join(format!("{name}.wasm"));
        Ok(std::fs::metadata(&p)
            .with_context(|| format!("{}", p.display()))?
            .len())
    };
    let hello = size("hello")?;
    println!();
    println!("## Component sizes ({})", dir.display());
    println!();
    println!(
        "{:<16} {:>10} {:>10} {:>9} {:>8}",
        "component", "bytes", "KiB", "÷ hello", "< 2 MiB"
    );
    for name in [
        "class_opening",
        "policy_admin",
        "audit",
        "vouchers",
        "spot_checks",
        "hello",
        "kv_probe",
    ] {
        let s = size(name)?;
        println!(
            "{:<16} {:>10} {:>10.1} {:>9.1} {:>8}",
            name,
            s,
            s as f64 / 1024.0,
            s as f64 / hello as f64,
            if s < 2 * 1024 * 1024 { "yes" } else { "NO" }
        );
    }
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let opts = parse_args()?;
    let started = Instant::now();
    println!(
        "# bench: {}",
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC")
    );
    println!("machine: {}", machine());
    println!(
        "build: {} profile; host: e2e (wasmtime 44), {}; load average at start {}",
        if cfg!(debug_assertions) {
            "DEBUG (figures are not representative: use --release)"
        } else {
            "release"
        },
        if opts.redis {
            "key-value data in a private redis-server on loopback (--redis)"
        } else {
            "SQLite key-value file in a temporary directory"
        },
        loadavg()
    );
    println!("sources: {}", source_state());
    if opts.keepalive_only {
        keepalive(&opts).await?;
        return print_sizes();
    }
    if opts.audit_only {
        let (redis, sizes, appends) = (opts.redis, opts.audit_sizes.clone(), opts.audit_appends);
        return tokio::task::spawn_blocking(move || audit::run(redis, &sizes, appends)).await?;
    }
    if !opts.skip_routes {
        routes(&opts).await?;
    }
    if opts.validate_only || opts.routes_only {
        return print_sizes();
    }
    keepalive(&opts).await?;
    let rows = scale(&opts).await?;
    print_scale(&opts, &rows);
    let c = tokio::task::spawn_blocking({
        let n = opts.sampler_classes;
        move || sampler::compare(n, 40)
    })
    .await??;
    print_sampler(&c);
    let n = opts.inproc_iters;
    let parts = tokio::task::spawn_blocking(move || inproc::breakdown(n)).await?;
    println!();
    println!(
        "## In-process breakdown: the same handlers natively on store::MemoryStore ({n} iterations; shares, not host figures)"
    );
    println!();
    for p in &parts {
        println!(
            "{:<62} {:>10.3} ms{}{}",
            p.label,
            ms(p.per_op),
            p.kv_calls
                .map(|c| format!("  {c:.1} kv calls"))
                .unwrap_or_default(),
            p.split
                .map(|(r, w)| format!(" ({r:.1} reads, {w:.1} writes)"))
                .unwrap_or_default()
        );
    }
    print_sizes()?;
    println!();
    println!(
        "total {:.0} s; load average at the end {}",
        started.elapsed().as_secs_f64(),
        loadavg()
    );
    Ok(())
}

//! The host: loads the components of one or more manifests, serves them over
//! HTTP on a loopback port, routes as Spin does, and runs each request in a
//! fresh instance with the interfaces Spin 4 offers.

use crate::kv::KvStore;
use crate::kv_redis::{RedisConfig, RedisSemantics};
use crate::manifest::App;
use crate::outbound::{self, AllowedHost};
use crate::router::{RouteMatch, Router};
use crate::spin_host::SpinCtx;
use crate::stdio::{SharedOut, Terminal};
use crate::{variables, wasm_build};
use anyhow::{Context, Result, anyhow};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, combinators::UnsyncBoxBody};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::WasiHttpCtx;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p3::bindings::ServicePre;
use wasmtime_wasi_http::p3::bindings::http::types::ErrorCode;
use wasmtime_wasi_http::p3::{
    Request as P3Request, RequestOptions, WasiHttpCtxView, WasiHttpHooks, WasiHttpView,
};

/// How long one request may run before the host answers 500.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Most bytes kept of one request's stdout or stderr.
const LOG_CAPACITY: usize = 4 << 20;

/// What a host serves and with which settings.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// Manifests in spin.toml format, merged in order.
    pub manifests: Vec<PathBuf>,
    /// Application variable values, as `spin up --variable name=value` gives them.
    pub variables: BTreeMap<String, String>,
    /// The SQLite file that holds key-value data (Spin: `.spin/sqlite_key_value.db`).
    /// Unused when `redis` is set.
    pub kv_path: PathBuf,
    /// Key-value data on this Redis server instead, as with a runtime config
    /// `[key_value_store.default] type = "redis"` (every label shares it).
    pub redis: Option<RedisConfig>,
    /// Build the components with cargo before loading them (default true).
    pub build: bool,
    /// The loopback port to listen on (default: any free port).
    pub port: Option<u16>,
    /// Which build of the components to run (default: `E2E_BUILD`, else p3).
    pub wasi: wasm_build::Build,
    /// Set `TCP_NODELAY` on every accepted connection. Default false: Spin
    /// 4.0.2 does not, so a response whose parts leave in separate writes
    /// can wait for the client's delayed ACK (Nagle's algorithm, ~40 ms on
    /// Linux). True is Spin with the one-line patch described in
    /// docs/OPERATIONS.md ("Keep-alive stalls").
    pub tcp_nodelay: bool,
}

impl HostConfig {
    /// The product's `spin.toml` plus the harness's `fixtures.toml`.
    pub fn new(kv_path: impl Into<PathBuf>) -> HostConfig {
        HostConfig {
            manifests: vec![Self::product_manifest(), Self::fixtures_manifest()],
            variables: BTreeMap::new(),
            kv_path: kv_path.into(),
            redis: None,
            build: true,
            port: None,
            wasi: wasm_build::Build::from_env(),
            tcp_nodelay: false,
        }
    }

    /// Only the harness's `fixtures.toml` (`hello` and `kv-probe`).
    pub fn fixtures_only(kv_path: impl Into<PathBuf>) -> HostConfig {
        HostConfig {
            manifests: vec![Self::fixtures_manifest()],
            ..HostConfig::new(kv_path)
        }
    }

    /// Only the product's `spin.toml`.
    pub fn product_only(kv_path: impl Into<PathBuf>) -> HostConfig {
        HostConfig {
            manifests: vec![Self::product_manifest()],
            ..HostConfig::new(kv_path)
        }
    }

    pub fn product_manifest() -> PathBuf {
        wasm_build::repo_root().join("spin.toml")
    }

    pub fn fixtures_manifest() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures.toml")
    }

    /// Sets an application variable.
    pub fn variable(mut self, name: impl Into<String>, value: impl Into<String>) -> HostConfig {
        self.variables.insert(name.into(), value.into());
        self
    }

    /// Keeps key-value data on the Redis server at `url` (`redis://…`), with
    /// the semantics Spin's Redis backend is written to have.
    pub fn redis(self, url: impl Into<String>) -> HostConfig {
        self.redis_with(url, RedisSemantics::Intended)
    }

    /// Keeps key-value data on Redis with the given semantics
    /// ([`RedisSemantics::Spin402`]: exactly what Spin 4.0.2 sends).
    pub fn redis_with(mut self, url: impl Into<String>, semantics: RedisSemantics) -> HostConfig {
        self.redis = Some(RedisConfig {
            url: url.into(),
            semantics,
        });
        self
    }

    /// Listens on `127.0.0.1:port` instead of any free port.
    pub fn port(mut self, port: u16) -> HostConfig {
        self.port = Some(port);
        self
    }

    /// Runs the p2 build (Spin 3.x, `wasi:http/incoming-handler@0.2`) of the
    /// components that have one ([`wasm_build::P2_PACKAGES`]).
    pub fn p2(mut self) -> HostConfig {
        self.wasi = wasm_build::Build::P2;
        self
    }

    /// Sets (true) or leaves unset (false, Spin 4.0.2's behaviour)
    /// `TCP_NODELAY` on accepted connections: see [`HostConfig::tcp_nodelay`].
    pub fn tcp_nodelay(mut self, on: bool) -> HostConfig {
        self.tcp_nodelay = on;
        self
    }

    /// Adds a manifest.
    pub fn manifest(mut self, path: impl Into<PathBuf>) -> HostConfig {
        self.manifests.push(path.into());
        self
    }
}

/// What key-value reads returned, summed: see [`Host::kv_reads`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KvReads {
    /// Keys asked for by `get` and `get-many`.
    pub keys: u64,
    /// Of those, the keys that had a value.
    pub found: u64,
    /// The bytes of the values found.
    pub bytes: u64,
}

impl std::ops::Sub for KvReads {
    type Output = KvReads;
    fn sub(self, before: KvReads) -> KvReads {
        KvReads {
            keys: self.keys - before.keys,
            found: self.found - before.found,
            bytes: self.bytes - before.bytes,
        }
    }
}

/// The connections a host accepted, and how many of them had `TCP_NODELAY`
/// set, read back from each socket (`getsockopt`) after accepting it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sockets {
    pub accepted: u64,
    pub nodelay: u64,
}

#[derive(Debug, Default)]
struct SocketCounters {
    accepted: std::sync::atomic::AtomicU64,
    nodelay: std::sync::atomic::AtomicU64,
}

/// A running host. Dropping it stops it.
pub struct Host {
    clock_offset: Arc<AtomicI64>,
    base_url: String,
    config: HostConfig,
    logs: Arc<Logs>,
    terminal: Arc<Terminal>,
    kv_counters: Arc<crate::kv::KvCounters>,
    memory: Arc<MemoryTotals>,
    sockets: Arc<SocketCounters>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Host {
    /// Builds (unless `config.build` is false) and loads every component of the
    /// manifests, opens the key-value file and serves on `127.0.0.1:<free port>`.
    pub fn start(config: HostConfig) -> Result<Host> {
        let app = App::load(&config.manifests)?;
        let app_values = variables::app_values(&app, &config.variables)?;
        if config.build {
            let mut packages: BTreeMap<wasm_build::Build, BTreeSet<String>> = BTreeMap::new();
            for package in app
                .components
                .values()
                .filter_map(|c| c.cargo_package.clone())
            {
                let build = config.wasi.of_package(Some(&package));
                packages.entry(build).or_default().insert(package);
            }
            for (build, packages) in &packages {
                wasm_build::ensure_built_as(*build, packages)?;
            }
        }
        let router = Router::build(&app.triggers)?;
        let engine = engine()?;
        let linker = base_linker(engine)?;
        let mut components = HashMap::new();
        for spec in app.components.values() {
            let build = config.wasi.of_package(spec.cargo_package.as_deref());
            let path = wasm_build::wasm_path_of(build, &spec.base_dir, &spec.source);
            let component = load_component(engine, &path)
                .with_context(|| format!("loading component {:?}", spec.id))?;
            let pre = linker
                .instantiate_pre(&component)
                .map_err(|e| anyhow!("component {:?}: {e:#}", spec.id))?;
            let pre = Pre::detect(pre).map_err(|e| anyhow!("component {:?}: {e}", spec.id))?;
            let vars = variables::component_values(spec, &app_values)
                .with_context(|| format!("variables of component {:?}", spec.id))?;
            let allowed_hosts = spec
                .allowed_outbound_hosts
                .iter()
                .map(|h| AllowedHost::parse(&variables::resolve_template(h, &app_values)?))
                .collect::<Result<Vec<_>>>()
                .with_context(|| format!("allowed_outbound_hosts of {:?}", spec.id))?;
            components.insert(
                spec.id.clone(),
                Arc::new(Loaded {
                    id: spec.id.clone(),
                    pre,
                    allowed_stores: Arc::new(spec.key_value_stores.iter().cloned().collect()),
                    variables: Arc::new(vars),
                    allowed_hosts: Arc::new(allowed_hosts),
                    environment: spec.environment.clone().into_iter().collect(),
                }),
            );
        }
        let kv = Arc::new(KvStore::open(&config.kv_path, config.redis.as_ref())?);
        let kv_counters = kv.counters();
        let logs = Arc::new(Logs::default());
        let terminal = Arc::new(Terminal::default());
        let memory = Arc::new(MemoryTotals::default());
        let listener = std::net::TcpListener::bind(("127.0.0.1", config.port.unwrap_or(0)))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let clock_offset = Arc::new(AtomicI64::new(0));
        let sockets = Arc::new(SocketCounters::default());
        let shared = Arc::new(Shared {
            tcp_nodelay: config.tcp_nodelay,
            sockets: sockets.clone(),
            clock_offset: clock_offset.clone(),
            engine: engine.clone(),
            router,
            components,
            kv,
            logs: logs.clone(),
            terminal: terminal.clone(),
            addr,
            memory: memory.clone(),
        });
        let (tx, rx) = tokio::sync::oneshot::channel();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name(format!("e2e-host-{}", addr.port()))
            .spawn(move || serve(shared, listener, rx, ready_tx))?;
        ready_rx
            .recv()
            .map_err(|_| anyhow!("host thread died"))?
            .map_err(anyhow::Error::msg)?;
        Ok(Host {
            clock_offset,
            base_url: format!("http://{addr}"),
            config,
            logs,
            terminal,
            kv_counters,
            memory,
            sockets,
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }

    /// Moves the guests' wall clock `secs` seconds from the machine's (0: the
    /// real time again), for the requests that start from now on. A test
    /// walks through a class's calendar with it (file today, check on the
    /// first class day, settle after the last); Spin has no such setting: the
    /// product always reads the real time. A restart starts at the real time.
    pub fn set_clock_offset_secs(&self, secs: i64) {
        self.clock_offset
            .store(secs, std::sync::atomic::Ordering::SeqCst);
    }

    /// `http://127.0.0.1:<port>`
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The base URL joined with a path such as `/api/v1/health`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    /// Everything the components wrote to stdout and stderr, and the host's
    /// own error lines, one line each: `[component] stdout: text`.
    pub fn logs(&self) -> String {
        self.logs.text()
    }

    /// What the components wrote to stdout and stderr, every write as it
    /// came, all instances together: what Spin prints to its terminal
    /// ([`crate::stdio`]).
    pub fn terminal(&self) -> String {
        self.terminal.text()
    }

    /// How many key-value operations (get, get-many, set, set-many, delete,
    /// delete-many, exists, increment, compare-and-swap new, current and swap)
    /// the components of this host have made since it started.
    pub fn kv_calls(&self) -> u64 {
        self.kv_counters
            .calls
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The linear memory of the instances this host has served since it
    /// started (each request is a fresh instance, whose memory the pool
    /// zeroes or unmaps afterwards): requests, the sum of each instance's
    /// largest memory, and the sum of their `memory.grow` calls.
    pub fn memory(&self) -> MemoryUse {
        let load = |n: &std::sync::atomic::AtomicU64| n.load(std::sync::atomic::Ordering::Relaxed);
        MemoryUse {
            requests: load(&self.memory.requests),
            peak_bytes: load(&self.memory.peak_bytes),
            grows: load(&self.memory.grows),
        }
    }

    /// The connections accepted since the host started, and how many had
    /// `TCP_NODELAY` set as the socket reports it.
    pub fn sockets(&self) -> Sockets {
        let load = |n: &std::sync::atomic::AtomicU64| n.load(std::sync::atomic::Ordering::Relaxed);
        Sockets {
            accepted: load(&self.sockets.accepted),
            nodelay: load(&self.sockets.nodelay),
        }
    }

    /// What the components' `get` and `get-many` calls have read since the
    /// host started: keys asked for, values found, and their bytes.
    pub fn kv_reads(&self) -> KvReads {
        let load = |n: &std::sync::atomic::AtomicU64| n.load(std::sync::atomic::Ordering::Relaxed);
        KvReads {
            keys: load(&self.kv_counters.keys_read),
            found: load(&self.kv_counters.values_found),
            bytes: load(&self.kv_counters.bytes_read),
        }
    }

    /// Writes that landed since the host started on each key starting with
    /// `prefix` (see [`crate::kv::KvCounters::writes`]).
    pub fn kv_writes(&self, prefix: &str) -> std::collections::BTreeMap<String, u64> {
        self.kv_counters.writes_under(prefix)
    }

    /// The configuration this host was started with.
    pub fn config(&self) -> &HostConfig {
        &self.config
    }

    /// Stops serving and closes the key-value file.
    pub fn stop(mut self) {
        self.shutdown_now();
    }

    /// Stops this host and starts a new one with the same configuration (and
    /// so the same key-value file), on a new port.
    pub fn restart(mut self) -> Result<Host> {
        self.shutdown_now();
        Host::start(self.config.clone())
    }

    fn shutdown_now(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        self.shutdown_now();
    }
}

/// Captured output of the components of one host.
#[derive(Default)]
struct Logs {
    text: Mutex<String>,
}

impl Logs {
    fn text(&self) -> String {
        self.text.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn append(&self, component: &str, stream: &str, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let text = String::from_utf8_lossy(bytes);
        let mut out = self.text.lock().unwrap_or_else(|p| p.into_inner());
        for line in text.lines() {
            out.push_str(&format!("[{component}] {stream}: {line}\n"));
        }
    }
}

struct Loaded {
    id: String,
    pre: Pre,
    allowed_stores: Arc<HashSet<String>>,
    variables: Arc<HashMap<String, String>>,
    allowed_hosts: Arc<Vec<AllowedHost>>,
    environment: Vec<(String, String)>,
}

struct Shared {
    tcp_nodelay: bool,
    sockets: Arc<SocketCounters>,
    clock_offset: Arc<AtomicI64>,
    engine: Engine,
    router: Router,
    components: HashMap<String, Arc<Loaded>>,
    kv: Arc<KvStore>,
    logs: Arc<Logs>,
    terminal: Arc<Terminal>,
    addr: SocketAddr,
    memory: Arc<MemoryTotals>,
}

/// The linear memory of the instances a host has served, summed over
/// requests: see [`Host::memory`].
#[derive(Debug, Default)]
struct MemoryTotals {
    requests: std::sync::atomic::AtomicU64,
    /// Sum over requests of the largest size any memory of the instance
    /// reached, in bytes.
    peak_bytes: std::sync::atomic::AtomicU64,
    /// Sum over requests of the `memory.grow`s that asked for more.
    grows: std::sync::atomic::AtomicU64,
}

/// What one instance's memories did, seen through wasmtime's resource limiter
/// (which allows whatever the module's own maximum allows, as without one).
#[derive(Debug, Default)]
struct MemoryWatch {
    peak: usize,
    grows: u64,
}

impl wasmtime::ResourceLimiter for MemoryWatch {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = maximum.is_none_or(|m| desired <= m);
        if allowed {
            self.peak = self.peak.max(desired);
            if current > 0 {
                self.grows += 1;
            }
        }
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(maximum.is_none_or(|m| desired <= m))
    }
}

/// Linear memory per request, averaged: see [`Host::memory`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MemoryUse {
    /// Requests served.
    pub requests: u64,
    /// Sum over requests of each instance's largest memory, in bytes.
    pub peak_bytes: u64,
    /// Sum over requests of `memory.grow` calls after instantiation.
    pub grows: u64,
}

impl MemoryUse {
    /// The mean largest memory of an instance, in KiB.
    pub fn mean_peak_kib(&self) -> f64 {
        self.peak_bytes as f64 / 1024.0 / self.requests.max(1) as f64
    }

    /// The mean number of `memory.grow` calls per request.
    pub fn mean_grows(&self) -> f64 {
        self.grows as f64 / self.requests.max(1) as f64
    }
}

impl std::ops::Sub for MemoryUse {
    type Output = MemoryUse;
    fn sub(self, before: MemoryUse) -> MemoryUse {
        MemoryUse {
            requests: self.requests - before.requests,
            peak_bytes: self.peak_bytes - before.peak_bytes,
            grows: self.grows - before.grows,
        }
    }
}

/// The data of one instance's store.
pub struct HostState {
    table: ResourceTable,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    hooks: OutboundHooks,
    spin: SpinCtx,
    memory: MemoryWatch,
}

impl HostState {
    pub(crate) fn spin(&mut self) -> (&mut SpinCtx, &mut ResourceTable) {
        (&mut self.spin, &mut self.table)
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

impl wasmtime_wasi_http::p2::WasiHttpView for HostState {
    fn http(&mut self) -> wasmtime_wasi_http::p2::WasiHttpCtxView<'_> {
        wasmtime_wasi_http::p2::WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

/// The component's HTTP world, found when it is loaded: Spin 4's WASIp3
/// handler (`wasi:http/handler@0.3`) or Spin 3.x's WASIp2
/// `wasi:http/incoming-handler@0.2` (the p2 build).
pub(crate) enum Pre {
    P3(ServicePre<HostState>),
    P2(ProxyPre<HostState>),
}

impl Pre {
    fn detect(pre: wasmtime::component::InstancePre<HostState>) -> Result<Pre> {
        match ServicePre::new(pre.clone()) {
            Ok(p3) => Ok(Pre::P3(p3)),
            Err(p3_err) => ProxyPre::new(pre).map(Pre::P2).map_err(|p2_err| {
                anyhow!(
                    "exports neither wasi:http/handler@0.3 ({p3_err}) nor wasi:http/incoming-handler@0.2 ({p2_err})"
                )
            }),
        }
    }
}

/// Sends a component's outgoing requests, if allowed.
struct OutboundHooks {
    component: String,
    allowed: Arc<Vec<AllowedHost>>,
    logs: Arc<Logs>,
}

type SendResult = wasmtime_wasi::TrappableError<ErrorCode>;

impl WasiHttpHooks for OutboundHooks {
    fn send_request(
        &mut self,
        request: http::Request<UnsyncBoxBody<Bytes, ErrorCode>>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), ErrorCode>> + Send>,
    ) -> Box<
        dyn Future<
                Output = Result<
                    (
                        http::Response<UnsyncBoxBody<Bytes, ErrorCode>>,
                        Box<dyn Future<Output = Result<(), ErrorCode>> + Send>,
                    ),
                    SendResult,
                >,
            > + Send,
    > {
        _ = fut;
        if let Some(why) = outbound::refusal(&self.allowed, request.uri()) {
            self.logs.append(
                &self.component,
                "host",
                format!("outbound request denied: {why}").as_bytes(),
            );
            return Box::new(async { Err(ErrorCode::HttpRequestDenied.into()) });
        }
        Box::new(async move {
            let (res, io) = wasmtime_wasi_http::p3::default_send_request(request, options).await?;
            Ok((
                res.map(BodyExt::boxed_unsync),
                Box::new(io) as Box<dyn Future<Output = _> + Send>,
            ))
        })
    }
}

impl wasmtime_wasi_http::p2::WasiHttpHooks for OutboundHooks {
    fn send_request(
        &mut self,
        request: http::Request<wasmtime_wasi_http::p2::body::HyperOutgoingBody>,
        config: wasmtime_wasi_http::p2::types::OutgoingRequestConfig,
    ) -> wasmtime_wasi_http::p2::HttpResult<wasmtime_wasi_http::p2::types::HostFutureIncomingResponse>
    {
        if let Some(why) = outbound::refusal(&self.allowed, request.uri()) {
            self.logs.append(
                &self.component,
                "host",
                format!("outbound request denied: {why}").as_bytes(),
            );
            return Err(
                wasmtime_wasi_http::p2::bindings::http::types::ErrorCode::HttpRequestDenied.into(),
            );
        }
        Ok(wasmtime_wasi_http::p2::default_send_request(
            request, config,
        ))
    }
}

/// The process-wide engine. Compiled components are cached on disk under the
/// wasm target directory, and in memory per process.
fn engine() -> Result<&'static Engine> {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    if let Some(e) = ENGINE.get() {
        return Ok(e);
    }
    let mut config = Config::new();
    config.wasm_component_model_async(true);
    config.epoch_interruption(true);
    // Spin 4.0.2 serves from wasmtime's pooling instance allocator (linear
    // memories, tables and stacks reserved once and reused), with a pool of
    // 1,000 instances, when the machine's address space allows it; so does
    // this host. Without it every request maps and unmaps its guest's memory,
    // a kernel cost (page faults, TLB shootdowns) that grows with the memory
    // a handler touches and that Spin does not pay.
    // For profiling the guests with `perf record`: compiled guest functions
    // are named in /tmp/perf-<pid>.map (see docs/PERFORMANCE.md).
    if std::env::var_os("E2E_WASM_PERFMAP").is_some() {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    let mut cache = wasmtime::CacheConfig::new();
    cache.with_directory(wasm_build::wasm_target_dir().join("e2e-wasmtime-cache"));
    config.cache(Some(
        wasmtime::Cache::new(cache).map_err(|e| anyhow!("{e}"))?,
    ));
    let pooled = spin_pooling().and_then(|pooling| {
        let mut pooled = config.clone();
        pooled.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pooling));
        Engine::new(&pooled)
            .inspect_err(|e| {
                eprintln!("e2e: the pooling allocator is unavailable here ({e}); using on-demand allocation")
            })
            .ok()
    });
    let engine = match pooled {
        Some(engine) => engine,
        None => Engine::new(&config).map_err(|e| anyhow!("{e}"))?,
    };
    let engine = ENGINE.get_or_init(|| engine);
    // Epoch ticks let long-running guests yield, so request timeouts can fire.
    let ticker = engine.weak();
    std::thread::Builder::new()
        .name("e2e-epoch".into())
        .spawn(move || {
            while let Some(engine) = ticker.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(Duration::from_millis(10));
            }
        })?;
    Ok(engine)
}

/// The pooling configuration Spin 4.0.2 starts with (its defaults for 1,000
/// instances), or `None` where the machine cannot reserve the address space
/// for it (Spin then falls back to the default allocator too), or where
/// `SPIN_WASMTIME_POOLING=0` turns it off (Spin's own switch).
fn spin_pooling() -> Option<wasmtime::PoolingAllocationConfig> {
    const INSTANCES: u32 = 1_000;
    match std::env::var("SPIN_WASMTIME_POOLING").as_deref() {
        Ok("0") => return None,
        Ok("1") => return Some(spin_pooling_config(INSTANCES)),
        _ => {}
    }
    // Spin's probe: can a 64-bit memory reserve 2^42 bytes of address space?
    let probe = {
        let mut c = Config::new();
        c.wasm_memory64(true);
        c.memory_reservation(1 << 42);
        Engine::new(&c).ok().is_some_and(|engine| {
            let mut store = wasmtime::Store::new(&engine, ());
            wasmtime::Memory::new(&mut store, wasmtime::MemoryType::new64(0, Some(1 << 26))).is_ok()
        })
    };
    probe.then(|| spin_pooling_config(INSTANCES))
}

/// Spin 4.0.2's pool for `instances` instances (its default is 1,000).
fn spin_pooling_config(instances: u32) -> wasmtime::PoolingAllocationConfig {
    const MB: usize = 1 << 20;
    let mut p = wasmtime::PoolingAllocationConfig::default();
    p.total_component_instances(instances)
        .total_memories(instances)
        .total_tables(2 * instances)
        .total_stacks(instances)
        .total_core_instances(4 * instances)
        .table_elements(100_000)
        .max_component_instance_size(10 * MB)
        .max_core_instance_size(10 * MB)
        .max_core_instances_per_component(200)
        .max_tables_per_component(64)
        .max_memories_per_component(32)
        .max_tables_per_module(2)
        .max_memories_per_module(2)
        .max_memory_size(4 << 30)
        .linear_memory_keep_resident(2 * MB)
        .table_keep_resident(MB / 2);
    p
}

/// Compiles a component, or reuses this process's compilation of the same file.
fn load_component(engine: &Engine, path: &Path) -> Result<Component> {
    type Cached = HashMap<PathBuf, (SystemTime, u64, Component)>;
    static CACHE: OnceLock<Mutex<Cached>> = OnceLock::new();
    let meta = std::fs::metadata(path).with_context(|| {
        format!(
            "{} is missing (is the component built for wasm32-wasip2?)",
            path.display()
        )
    })?;
    let stamp = (meta.modified()?, meta.len());
    let cache = CACHE.get_or_init(Default::default);
    if let Some((m, l, c)) = cache.lock().unwrap_or_else(|p| p.into_inner()).get(path)
        && (*m, *l) == stamp
    {
        return Ok(c.clone());
    }
    let component = Component::from_file(engine, path)
        .map_err(|e| anyhow!("compiling {}: {e}", path.display()))?;
    cache
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(path.to_path_buf(), (stamp.0, stamp.1, component.clone()));
    Ok(component)
}

fn base_linker(engine: &Engine) -> Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(|e| anyhow!("{e}"))?;
    wasmtime_wasi::p3::add_to_linker(&mut linker).map_err(|e| anyhow!("{e}"))?;
    wasmtime_wasi_http::p3::add_to_linker(&mut linker).map_err(|e| anyhow!("{e}"))?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
        .map_err(|e| anyhow!("{e}"))?;
    crate::spin_host::add_to_linker(&mut linker).map_err(|e| anyhow!("{e}"))?;
    Ok(linker)
}

/// A response as the host hands it to hyper: the guest's body is streamed,
/// as Spin 4.0.2 does (hyper writes the head as soon as the guest returns the
/// response, then the body as the guest's stream delivers it).
type HostBody = UnsyncBoxBody<Bytes, ErrorCode>;
type HostResponse = http::Response<HostBody>;

fn serve(
    shared: Arc<Shared>,
    listener: std::net::TcpListener,
    shutdown: tokio::sync::oneshot::Receiver<()>,
    ready: std::sync::mpsc::Sender<Result<(), String>>,
) {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            let _ = ready.send(Err(e.to_string()));
            return;
        }
    };
    runtime.block_on(async move {
        let listener = match tokio::net::TcpListener::from_std(listener) {
            Ok(l) => l,
            Err(e) => {
                let _ = ready.send(Err(e.to_string()));
                return;
            }
        };
        let _ = ready.send(Ok(()));
        let accept = async {
            loop {
                let Ok((stream, client)) = listener.accept().await else {
                    continue;
                };
                if shared.tcp_nodelay {
                    let _ = stream.set_nodelay(true);
                }
                let relaxed = std::sync::atomic::Ordering::Relaxed;
                shared.sockets.accepted.fetch_add(1, relaxed);
                if stream.nodelay().unwrap_or(false) {
                    shared.sockets.nodelay.fetch_add(1, relaxed);
                }
                let shared = shared.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        let shared = shared.clone();
                        async move {
                            Ok::<_, std::convert::Infallible>(handle(shared, req, client).await)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .keep_alive(true)
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        };
        tokio::select! {
            _ = accept => {}
            _ = shutdown => {}
        }
    });
    runtime.shutdown_timeout(Duration::from_secs(5));
}

fn plain(status: u16, body: &'static str) -> HostResponse {
    let body = Full::new(Bytes::from_static(body.as_bytes()))
        .map_err(|never| match never {})
        .boxed_unsync();
    let mut r = http::Response::new(body);
    *r.status_mut() =
        http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    r
}

async fn handle(
    shared: Arc<Shared>,
    req: http::Request<Incoming>,
    client: SocketAddr,
) -> HostResponse {
    let path = req.uri().path().to_string();
    if let Some(well_known) = path.strip_prefix("/.well-known/spin/") {
        return match well_known {
            "health" => plain(200, "OK"),
            _ => plain(404, ""),
        };
    }
    let Some(route) = shared.router.route(&path) else {
        return plain(404, "");
    };
    let Some(component) = shared.components.get(&route.component).cloned() else {
        return plain(500, "");
    };
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return plain(400, ""),
    };
    let request = match spin_request(parts, body, &route, client, shared.addr) {
        Ok(r) => r,
        Err(e) => {
            shared.logs.append(
                &component.id,
                "host",
                format!("bad request: {e:#}").as_bytes(),
            );
            return plain(400, "");
        }
    };
    // As Spin 4.0.2: the instance runs in its own task, which hands the
    // response over as soon as the guest returns it and keeps the store's
    // event loop going until hyper has read (or dropped) the body.
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let mut tx = Some(tx);
        let result =
            tokio::time::timeout(REQUEST_TIMEOUT, run(&shared, &component, request, &mut tx)).await;
        let error = match result {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(format!("error handling request: {e:#}")),
            Err(_) => Some("request timed out".to_string()),
        };
        if let Some(error) = error {
            shared.logs.append(&component.id, "host", error.as_bytes());
        }
        // Dropped unsent (an error before the guest answered): a 500, sent
        // only now, after the error is in the log.
        drop(tx);
    });
    match rx.await {
        Ok(response) => response.map(|body| {
            HeadFirst {
                inner: body,
                polled: false,
            }
            .boxed_unsync()
        }),
        Err(_) => plain(500, ""),
    }
}

/// The guest's body as it reaches hyper in Spin 4.0.2: never ready at hyper's
/// first poll. Spin hands hyper the response when the guest returns it; the
/// guest writes its body afterwards, from a task of its own in the store's
/// event loop, so hyper finds no data when it first asks, flushes the head
/// alone and writes the body in a second write. On a socket without
/// `TCP_NODELAY` that second write waits for the client's delayed ACK (issue
/// 13: ~40 ms per keep-alive request on the real Spin, with or without a
/// `content-length`; docs/PERFORMANCE.md, "Keep-alive on the real Spin").
/// The host's own scheduling often has the data ready at the first poll, so
/// without this it would not show what Spin users get.
struct HeadFirst {
    inner: HostBody,
    polled: bool,
}

impl hyper::body::Body for HeadFirst {
    type Data = Bytes;
    type Error = ErrorCode;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, ErrorCode>>> {
        if !self.polled {
            self.polled = true;
            cx.waker().wake_by_ref();
            return std::task::Poll::Pending;
        }
        std::pin::Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// Copies a request's stdout and stderr into the host's log, each byte once:
/// when the response body ends (before hyper's last write, so a client that
/// has the whole response finds the lines in [`Host::logs`]) and again when
/// the instance is done.
struct GuestOutput {
    logs: Arc<Logs>,
    component: String,
    stdout: MemoryOutputPipe,
    stderr: MemoryOutputPipe,
    copied: Mutex<(usize, usize)>,
}

impl GuestOutput {
    fn copy(&self) {
        let mut copied = self.copied.lock().unwrap_or_else(|p| p.into_inner());
        let out = self.stdout.contents();
        let err = self.stderr.contents();
        if let Some(new) = out.get(copied.0..) {
            self.logs.append(&self.component, "stdout", new);
        }
        if let Some(new) = err.get(copied.1..) {
            self.logs.append(&self.component, "stderr", new);
        }
        *copied = (out.len(), err.len());
    }
}

/// The guest's response body as hyper reads it; says when hyper is done
/// with it (end, error or drop), as Spin's `NotifyOnDropBody` does.
struct WatchedBody {
    inner: HostBody,
    output: Arc<GuestOutput>,
    done: Option<tokio::sync::oneshot::Sender<()>>,
}

impl WatchedBody {
    fn finish(&mut self) {
        if let Some(done) = self.done.take() {
            self.output.copy();
            let _ = done.send(());
        }
    }
}

impl hyper::body::Body for WatchedBody {
    type Data = Bytes;
    type Error = ErrorCode;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, ErrorCode>>> {
        let frame = std::pin::Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(frame, std::task::Poll::Ready(None | Some(Err(_)))) {
            self.finish();
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for WatchedBody {
    fn drop(&mut self) {
        self.finish();
    }
}

/// The request as Spin hands it to a component: absolute URI, the client's
/// headers, then the `spin-*` headers appended (appended, as Spin does: a
/// client-sent `spin-path-info` stays first in line).
fn spin_request(
    parts: http::request::Parts,
    body: Bytes,
    route: &RouteMatch,
    client: SocketAddr,
    local: SocketAddr,
) -> Result<http::Request<Full<Bytes>>> {
    let host = parts
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| local.to_string());
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let full_url = format!("http://{host}{path_and_query}");
    let uri: http::Uri = full_url.parse()?;
    let mut headers = parts.headers.clone();
    let mut add = |name: &str, value: &str| -> Result<()> {
        headers.append(
            http::HeaderName::from_bytes(name.as_bytes())?,
            http::HeaderValue::from_str(value)?,
        );
        Ok(())
    };
    add("spin-path-info", &route.path_info)?;
    add("spin-full-url", &full_url)?;
    add("spin-matched-route", &route.based_route)?;
    add("spin-base-path", "/")?;
    add("spin-raw-component-route", &route.raw_route)?;
    add("spin-component-route", &route.component_route)?;
    add("spin-client-addr", &client.to_string())?;
    let mut named: Vec<_> = route.named.iter().collect();
    named.sort();
    for (name, value) in named {
        // Spin names it SPIN_PATH_MATCH_<NAME> and turns `_` into `-`.
        let name = name.to_ascii_lowercase().replace('_', "-");
        add(&format!("spin-path-match-{name}"), value)?;
    }
    let mut request = http::Request::new(Full::new(body));
    *request.method_mut() = parts.method;
    *request.uri_mut() = uri;
    *request.headers_mut() = headers;
    Ok(request)
}

/// The guests' wall clock: the machine's, moved by [`Host::set_clock_offset_secs`].
struct ShiftedClock(Arc<AtomicI64>);

impl wasmtime_wasi::HostWallClock for ShiftedClock {
    fn resolution(&self) -> Duration {
        Duration::from_nanos(1)
    }

    fn now(&self) -> Duration {
        let real = SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let offset = self.0.load(std::sync::atomic::Ordering::SeqCst);
        let shift = Duration::from_secs(offset.unsigned_abs());
        if offset >= 0 {
            real + shift
        } else {
            real.saturating_sub(shift)
        }
    }
}

async fn run(
    shared: &Shared,
    component: &Loaded,
    request: http::Request<Full<Bytes>>,
    respond: &mut Option<tokio::sync::oneshot::Sender<HostResponse>>,
) -> Result<()> {
    let stdout = MemoryOutputPipe::new(LOG_CAPACITY);
    let stderr = MemoryOutputPipe::new(LOG_CAPACITY);
    let wasi = WasiCtx::builder()
        .wall_clock(ShiftedClock(shared.clock_offset.clone()))
        .stdout(SharedOut::new(stdout.clone(), shared.terminal.clone()))
        .stderr(SharedOut::new(stderr.clone(), shared.terminal.clone()))
        .envs(&component.environment)
        .build();
    let state = HostState {
        table: ResourceTable::new(),
        wasi,
        http: WasiHttpCtx::new(),
        hooks: OutboundHooks {
            component: component.id.clone(),
            allowed: component.allowed_hosts.clone(),
            logs: shared.logs.clone(),
        },
        spin: SpinCtx {
            kv: shared.kv.clone(),
            allowed_stores: component.allowed_stores.clone(),
            variables: component.variables.clone(),
        },
        memory: MemoryWatch::default(),
    };
    let output = Arc::new(GuestOutput {
        logs: shared.logs.clone(),
        component: component.id.clone(),
        stdout,
        stderr,
        copied: Mutex::new((0, 0)),
    });
    let mut store = Store::new(&shared.engine, state);
    store.limiter(|state| &mut state.memory);
    store.epoch_deadline_async_yield_and_update(1);
    let outcome = match &component.pre {
        Pre::P3(pre) => handle_in_store(&mut store, pre, request, &output, respond).await,
        Pre::P2(pre) => handle_in_store_p2(&mut store, pre, request, respond).await,
    };
    let watch = &store.data().memory;
    let relaxed = std::sync::atomic::Ordering::Relaxed;
    shared.memory.requests.fetch_add(1, relaxed);
    shared
        .memory
        .peak_bytes
        .fetch_add(watch.peak as u64, relaxed);
    shared.memory.grows.fetch_add(watch.grows, relaxed);
    output.copy();
    outcome
}

async fn handle_in_store(
    store: &mut Store<HostState>,
    pre: &ServicePre<HostState>,
    request: http::Request<Full<Bytes>>,
    output: &Arc<GuestOutput>,
    respond: &mut Option<tokio::sync::oneshot::Sender<HostResponse>>,
) -> Result<()> {
    let service = pre
        .instantiate_async(&mut *store)
        .await
        .map_err(|e| anyhow!("instantiating: {e:?}"))?;
    let (request, request_io) = P3Request::from_http(request);
    store
        .run_concurrent(async |store| {
            futures::try_join!(
                async {
                    let response = match service.handle(store, request).await? {
                        Ok(r) => r,
                        Err(code) => {
                            return Err(wasmtime::format_err!(
                                "the handler returned error {code:?}"
                            ));
                        }
                    };
                    let response =
                        store.with(|store| response.into_http(store, async { Ok(()) }))?;
                    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
                    let response = response.map(|inner| {
                        WatchedBody {
                            inner,
                            output: output.clone(),
                            done: Some(done_tx),
                        }
                        .boxed_unsync()
                    });
                    if let Some(respond) = respond.take()
                        && respond.send(response).is_ok()
                    {
                        // The store's event loop must run until hyper has
                        // read the body: the guest writes it from here.
                        let _ = done_rx.await;
                    }
                    Ok(())
                },
                async {
                    request_io
                        .await
                        .map_err(|e| wasmtime::format_err!("request body: {e:?}"))
                }
            )?;
            wasmtime::Result::<()>::Ok(())
        })
        .await
        .map_err(|e: wasmtime::Error| anyhow!("{e:?}"))?
        .map_err(|e: wasmtime::Error| anyhow!("{e:?}"))?;
    Ok(())
}

/// Runs one request through a WASIp2 `wasi:http/incoming-handler` (the p2
/// build): the guest's call and the reading of its response run together, as
/// the response body streams while the guest writes it.
async fn handle_in_store_p2(
    store: &mut Store<HostState>,
    pre: &ProxyPre<HostState>,
    request: http::Request<Full<Bytes>>,
    respond: &mut Option<tokio::sync::oneshot::Sender<HostResponse>>,
) -> Result<()> {
    use wasmtime_wasi_http::p2::WasiHttpView as P2View;
    use wasmtime_wasi_http::p2::bindings::http::types::{ErrorCode as P2ErrorCode, Scheme};
    let request = request.map(|body| {
        body.map_err(|never: std::convert::Infallible| -> P2ErrorCode { match never {} })
    });
    let (sender, mut receiver) = tokio::sync::oneshot::channel();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let req = P2View::http(store.data_mut())
        .new_incoming_request(Scheme::Http, request)
        .map_err(|e| anyhow!("{e:?}"))?;
    let out = P2View::http(store.data_mut())
        .new_response_outparam(sender)
        .map_err(|e| anyhow!("{e:?}"))?;
    let call = async {
        let outcome = async {
            let proxy = pre
                .instantiate_async(&mut *store)
                .await
                .map_err(|e| anyhow!("instantiating: {e:?}"))?;
            proxy
                .wasi_http_incoming_handler()
                .call_handle(&mut *store, req, out)
                .await
                .map_err(|e| anyhow!("{e:?}"))
        }
        .await;
        let _ = done_tx.send(());
        outcome
    };
    let response = async {
        // The guest may return (or trap) without setting a response; its
        // sender then stays in the store, so its end is watched as well.
        let set = tokio::select! {
            biased;
            set = &mut receiver => set.ok(),
            _ = done_rx => receiver.try_recv().ok(),
        };
        let Some(set) = set else {
            return Err(anyhow!("the guest set no response"));
        };
        let response = set.map_err(|code| anyhow!("the handler returned error {code:?}"))?;
        let (parts, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .map_err(|e| anyhow!("reading the response body: {e:?}"))?
            .to_bytes();
        let body = Full::new(body)
            .map_err(|never| match never {})
            .boxed_unsync();
        Ok(http::Response::from_parts(parts, body))
    };
    let (called, response) = futures::join!(call, response);
    let response = response?;
    called?;
    if let Some(respond) = respond.take() {
        let _ = respond.send(response);
    }
    Ok(())
}

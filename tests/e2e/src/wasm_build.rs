//! Builds the wasm components inside the test run: one `cargo build --target
//! wasm32-wasip2 --release -p …` per set of packages and process, relying on
//! cargo's own freshness checks so an unchanged tree rebuilds nothing.

use anyhow::{Context, Result, bail};
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

/// The workspace root (two levels above this crate).
pub fn repo_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| here.to_path_buf())
}

/// The target directory the harness builds wasm into: the workspace's
/// `target/`, so the harness runs the very files `spin.toml` names. This does
/// not deadlock: `cargo test` releases the build-directory lock before it runs
/// test binaries (checked on cargo 1.95), so the nested `cargo build` takes it
/// in turn. `E2E_WASM_TARGET_DIR` moves the build elsewhere.
pub fn wasm_target_dir() -> PathBuf {
    match std::env::var_os("E2E_WASM_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => repo_root().join("target"),
    }
}

/// Which build of the components a host runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Build {
    /// Spin 4: spin-sdk 6, `wasi:http/handler@0.3` (the default features).
    #[default]
    P3,
    /// Spin 3.x (containerd-shim-spin v0.24): spin-sdk 5,
    /// `wasi:http/incoming-handler@0.2`; `--no-default-features --features p2`
    /// into `target/p2/`, beside the p3 set.
    P2,
}

/// The packages that have a p2 build. Others (the `kv-probe` fixture) run
/// their p3 build in a p2 host too: the host finds each component's world.
pub const P2_PACKAGES: &[&str] = &[
    "class-opening",
    "policy-admin",
    "audit",
    "vouchers",
    "spot-checks",
    "hello",
];

impl Build {
    /// `E2E_BUILD=p2` (or `p3`) runs every host of a test run on that set;
    /// without it, the test binary `e2e_p2` runs the p2 set and any other
    /// process the p3 set.
    pub fn from_env() -> Build {
        match std::env::var("E2E_BUILD").as_deref() {
            Ok("p2") => Build::P2,
            Ok("p3") => Build::P3,
            _ if Self::in_p2_binary() => Build::P2,
            _ => Build::P3,
        }
    }

    /// Whether this process is the `e2e_p2` test binary (`e2e_p2-<hash>`).
    fn in_p2_binary() -> bool {
        std::env::current_exe()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .is_some_and(|n| n.starts_with("e2e_p2-") || n == "e2e_p2")
    }

    /// The build `package` takes in a host of this build.
    pub fn of_package(self, package: Option<&str>) -> Build {
        match (self, package) {
            (Build::P2, Some(p)) if P2_PACKAGES.contains(&p) => Build::P2,
            _ => Build::P3,
        }
    }

    /// The cargo target directory of this build.
    pub fn target_dir(self) -> PathBuf {
        match self {
            Build::P3 => wasm_target_dir(),
            Build::P2 => wasm_target_dir().join("p2"),
        }
    }
}

/// Where the harness finds a component's `.wasm`: a manifest source under
/// `target/` (`target/wasm32-wasip2/release/x.wasm`) maps to the same path in
/// [`wasm_target_dir`]; anything else is relative to the manifest.
pub fn wasm_path(base_dir: &Path, source: &str) -> PathBuf {
    wasm_path_of(Build::P3, base_dir, source)
}

/// [`wasm_path`] for `build`: a p2 component is at the same path under
/// `target/p2/` (where `spin.p2.toml` names it).
pub fn wasm_path_of(build: Build, base_dir: &Path, source: &str) -> PathBuf {
    match source.strip_prefix("target/") {
        Some(rest) => match build {
            Build::P3 => wasm_target_dir().join(rest),
            Build::P2 => build
                .target_dir()
                .join(rest.strip_prefix("p2/").unwrap_or(rest)),
        },
        None => base_dir.join(source),
    }
}

/// Runs one cargo build of `packages` for wasm32-wasip2 (release) unless this
/// process already built exactly that set, and returns the build's output.
pub fn ensure_built(packages: &BTreeSet<String>) -> Result<()> {
    ensure_built_as(Build::P3, packages)
}

/// [`ensure_built`] for `build` (p2: with `--no-default-features --features p2`
/// into [`Build::target_dir`]).
pub fn ensure_built_as(build: Build, packages: &BTreeSet<String>) -> Result<()> {
    if packages.is_empty() {
        return Ok(());
    }
    type Builds = HashMap<(Build, BTreeSet<String>), Result<(), String>>;
    static BUILT: OnceLock<Mutex<Builds>> = OnceLock::new();
    let built = BUILT.get_or_init(Default::default);
    // Holding the lock while building makes concurrent tests wait for one build.
    let mut built = built.lock().unwrap_or_else(|p| p.into_inner());
    let key = (build, packages.clone());
    if let Some(outcome) = built.get(&key) {
        return outcome.clone().map_err(anyhow::Error::msg);
    }
    let outcome = run_cargo(build, packages).map_err(|e| format!("{e:#}"));
    built.insert(key, outcome.clone());
    outcome.map_err(anyhow::Error::msg)
}

fn run_cargo(build: Build, packages: &BTreeSet<String>) -> Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(repo_root())
        .args([
            "build",
            "--target",
            "wasm32-wasip2",
            "--release",
            "--locked",
        ])
        .arg("--target-dir")
        .arg(build.target_dir());
    if build == Build::P2 {
        cmd.args(["--no-default-features", "--features", "p2"]);
    }
    for p in packages {
        cmd.arg("-p").arg(p);
    }
    // The outer cargo's per-package variables must not leak into the build.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        if key.starts_with("CARGO_PKG_")
            || key.starts_with("CARGO_BIN_")
            || key == "CARGO_MANIFEST_DIR"
            || key == "CARGO_MANIFEST_PATH"
            || key == "CARGO_CRATE_NAME"
            || key == "CARGO_PRIMARY_PACKAGE"
            || key == "CARGO_TARGET_DIR"
            || key == "CARGO_BUILD_TARGET_DIR"
        {
            cmd.env_remove(&key);
        }
    }
    let started = std::time::Instant::now();
    let output = cmd
        .output()
        .context("running cargo to build the wasm components")?;
    if !output.status.success() {
        bail!(
            "building wasm components {:?} failed:\n{}",
            packages,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    if stderr.contains("Compiling") {
        eprintln!(
            "e2e: built wasm components {:?} ({:?}) in {:.1}s",
            packages,
            build,
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

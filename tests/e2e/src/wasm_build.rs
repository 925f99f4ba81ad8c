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

/// Where the harness finds a component's `.wasm`: a manifest source under
/// `target/` (`target/wasm32-wasip2/release/x.wasm`) maps to the same path in
/// [`wasm_target_dir`]; anything else is relative to the manifest.
pub fn wasm_path(base_dir: &Path, source: &str) -> PathBuf {
    match source.strip_prefix("target/") {
        Some(rest) => wasm_target_dir().join(rest),
        None => base_dir.join(source),
    }
}

/// Runs one cargo build of `packages` for wasm32-wasip2 (release) unless this
/// process already built exactly that set, and returns the build's output.
pub fn ensure_built(packages: &BTreeSet<String>) -> Result<()> {
    if packages.is_empty() {
        return Ok(());
    }
    type Builds = HashMap<BTreeSet<String>, Result<(), String>>;
    static BUILT: OnceLock<Mutex<Builds>> = OnceLock::new();
    let built = BUILT.get_or_init(Default::default);
    // Holding the lock while building makes concurrent tests wait for one build.
    let mut built = built.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(outcome) = built.get(packages) {
        return outcome.clone().map_err(anyhow::Error::msg);
    }
    let outcome = run_cargo(packages).map_err(|e| format!("{e:#}"));
    built.insert(packages.clone(), outcome.clone());
    outcome.map_err(anyhow::Error::msg)
}

fn run_cargo(packages: &BTreeSet<String>) -> Result<()> {
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
        .arg(wasm_target_dir());
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
            "e2e: built wasm components {:?} in {:.1}s",
            packages,
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

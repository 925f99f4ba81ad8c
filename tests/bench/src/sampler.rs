//! The Rust sampler (`policy::sampling`) against the Python reference
//! implementation beside this crate, in the same command.

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};
use std::process::Command;
use std::time::Instant;

pub struct Comparison {
    pub tickets: usize,
    pub rust_per_s: f64,
    pub python_per_s: f64,
    pub digests_agree: bool,
    pub vectors_agree: bool,
    pub notes: Vec<String>,
}

const DESIGN_AB_130: &str =
    "0.26299714122838008416507544297546663599715395525154425586041245287750224561854";

/// Tickets of every sample id of `classes` classes of `roster` trainees, in
/// Rust and in Python; compares speed and checks they agree.
pub fn compare(classes: usize, roster: usize) -> Result<Comparison> {
    let seed = "01382438112797316654";
    let ids: Vec<String> = (1..=classes)
        .flat_map(|c| {
            (0..roster).map(move |l| policy::sampling::sample_id(&format!("KM-2022-{c:06}"), l))
        })
        .collect();
    // Best of three, as for the Python side's single pass after warm-up.
    let mut best = f64::MAX;
    let mut tickets = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        let sh = policy::sampling::seed_hash(seed);
        tickets = ids
            .iter()
            .map(|id| policy::sampling::ticket(&sh, id))
            .collect::<Vec<String>>();
        best = best.min(t.elapsed().as_secs_f64());
    }
    let mut h = Sha256::new();
    for t in &tickets {
        h.update(t.as_bytes());
        h.update(b"\n");
    }
    let rust_digest: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();

    let script = e2e::wasm_build::repo_root().join("tests/bench/reference_sampler.py");
    let out = Command::new("python3")
        .arg(&script)
        .args(["--seed", seed])
        .args(["--classes", &classes.to_string()])
        .args(["--roster", &roster.to_string()])
        .output()
        .with_context(|| format!("running python3 {}", script.display()))?;
    if !out.status.success() {
        bail!(
            "python3 {}: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let py: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("the reference sampler's output")?;
    let py_tickets = py["tickets"].as_u64().unwrap_or(0) as usize;
    let py_seconds = py["seconds"].as_f64().unwrap_or(f64::NAN);
    let mut notes = Vec::new();
    if py_tickets != ids.len() {
        notes.push(format!(
            "python computed {py_tickets} tickets, rust {}",
            ids.len()
        ));
    }
    // Test vectors: DESIGN.md's, both implementations.
    let rust_ab130 = policy::sampling::ticket(&policy::sampling::seed_hash(seed), "AB-130");
    let population: Vec<String> = ["ab-1", "ab-2", "cd-1", "ef-3"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let rust_order: Vec<String> = policy::sampling::order("314159", &population)
        .into_iter()
        .map(|d| d.id)
        .collect();
    let py_order: Vec<String> = py["vectors"]["order_314159"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let vectors_agree = rust_ab130 == DESIGN_AB_130
        && py["vectors"]["AB-130"] == DESIGN_AB_130
        && rust_order == ["cd-1", "ef-3", "ab-1", "ab-2"]
        && py_order == rust_order;
    if !vectors_agree {
        notes.push(format!(
            "vectors: rust AB-130 {rust_ab130}, python {}; rust order {rust_order:?}, python {py_order:?}",
            py["vectors"]["AB-130"]
        ));
    }
    Ok(Comparison {
        tickets: ids.len(),
        rust_per_s: ids.len() as f64 / best,
        python_per_s: py_tickets as f64 / py_seconds,
        digests_agree: py["digest"].as_str() == Some(rust_digest.as_str()),
        vectors_agree,
        notes,
    })
}

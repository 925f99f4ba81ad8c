//! Turns the shipped data files (`data/*.toml`, the form people edit) into
//! JSON at build time. A Spin component instance lives for one request, so
//! the shipped data is read again on every request: JSON reads several times
//! faster than TOML, and the TOML is checked here, at build time.

use std::path::PathBuf;

fn main() {
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let mut parts = std::collections::BTreeMap::new();
    for name in [
        "parameters",
        "occupations",
        "subsidies",
        "calendar",
        "topics",
        "targets",
    ] {
        let path = format!("data/{name}.toml");
        println!("cargo::rerun-if-changed={path}");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let value: toml::Value =
            toml::from_str(&text).unwrap_or_else(|e| panic!("{path} is not valid TOML: {e}"));
        let json = serde_json::to_string(&value).expect("TOML values are JSON values");
        std::fs::write(out.join(format!("{name}.json")), json).expect("OUT_DIR is writable");
        parts.insert(name, value);
    }
    // All of it as one `PolicyData` (the defaults, version 1): read with the
    // same deserializer as a stored policy record, so a component carries one
    // copy of that code.
    let policy = serde_json::json!({
        "parameters": parts["parameters"],
        "catalogue": parts["occupations"],
        "subsidies": parts["subsidies"],
        "topics": parts["topics"],
        "calendar": parts["calendar"]["year"],
        "targets": parts["targets"],
    });
    std::fs::write(
        out.join("policy.json"),
        serde_json::to_string(&policy).expect("serialises"),
    )
    .expect("OUT_DIR is writable");
}

//! Every manifest the project ships parses, and the deployment files agree
//! with `spin.toml` and with each other: every application variable is bound
//! in the SpinApp, every secret a manifest reads is in the example secrets,
//! the runtime configs choose the backends they say they choose.

use serde::Deserialize;
use serde_norway::Value as Yaml;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Files under `dir` (recursively) whose name ends with one of `exts`.
fn files(dir: &Path, exts: &[&str]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.map(Result::unwrap) {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files(&path, exts));
        } else if exts
            .iter()
            .any(|e| path.extension().is_some_and(|x| x == *e))
        {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// Every document of a (multi-document) YAML file.
fn yaml_documents(path: &Path) -> Result<Vec<Yaml>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    serde_norway::Deserializer::from_str(&text)
        .map(Yaml::deserialize)
        .filter(|d| !matches!(d, Ok(Yaml::Null)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())
}

fn toml_file(path: &Path) -> Result<toml::Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    toml::from_str(&text).map_err(|e| e.to_string())
}

fn rel(path: &Path) -> String {
    path.strip_prefix(root())
        .unwrap_or(path)
        .display()
        .to_string()
}

/// The documents of one deploy/ file.
fn deploy(name: &str) -> Vec<Yaml> {
    let path = root().join("deploy").join(name);
    yaml_documents(&path).unwrap_or_else(|e| panic!("{}: {e}", rel(&path)))
}

fn str_at<'a>(v: &'a Yaml, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(*k))?.as_str()
}

/// Every `secretKeyRef` in a YAML value, as (secret name, key).
fn secret_refs(v: &Yaml, out: &mut BTreeSet<(String, String)>) {
    match v {
        Yaml::Mapping(m) => {
            for (k, v) in m {
                if k.as_str() == Some("secretKeyRef")
                    && let (Some(name), Some(key)) = (str_at(v, &["name"]), str_at(v, &["key"]))
                {
                    out.insert((name.to_string(), key.to_string()));
                }
                secret_refs(v, out);
            }
        }
        Yaml::Sequence(s) => s.iter().for_each(|v| secret_refs(v, out)),
        _ => {}
    }
}

/// The example secrets: name → keys → value.
fn example_secrets() -> BTreeMap<String, BTreeMap<String, String>> {
    deploy("secrets.example.yaml")
        .iter()
        .filter(|d| str_at(d, &["kind"]) == Some("Secret"))
        .map(|d| {
            let name = str_at(d, &["metadata", "name"]).unwrap().to_string();
            let data = d
                .get("stringData")
                .and_then(Yaml::as_mapping)
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| {
                            (
                                k.as_str().unwrap().to_string(),
                                v.as_str().unwrap_or_default().to_string(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            (name, data)
        })
        .collect()
}

#[test]
fn every_yaml_file_under_deploy_and_docs_parses_including_multi_document_files() {
    let mut checked = Vec::new();
    let mut failures = Vec::new();
    for dir in ["deploy", "docs"] {
        for path in files(&root().join(dir), &["yaml", "yml"]) {
            match yaml_documents(&path) {
                Ok(docs) if docs.is_empty() => failures.push(format!("{}: empty", rel(&path))),
                Ok(docs) => checked.push(format!("{} ({} documents)", rel(&path), docs.len())),
                Err(e) => failures.push(format!("{}: {e}", rel(&path))),
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(
        checked.iter().any(|c| c.starts_with("deploy/spinapp.yaml")),
        "{checked:?}"
    );
    eprintln!("parsed {checked:#?}");
}

#[test]
fn every_runtime_config_and_spin_toml_parse_as_toml() {
    let mut paths = files(&root().join("runtime-config"), &["toml"]);
    assert!(paths.len() >= 2, "runtime-config/ holds {paths:?}");
    paths.push(root().join("spin.toml"));
    paths.push(root().join("spin.p2.toml"));
    let failures: Vec<String> = paths
        .iter()
        .filter_map(|p| toml_file(p).err().map(|e| format!("{}: {e}", rel(p))))
        .collect();
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn the_runtime_configs_put_the_default_store_on_sqlite_and_on_redis() {
    let store = |v: &toml::Value| v["key_value_store"]["default"].clone();
    let local = store(&toml_file(&root().join("runtime-config/local.toml")).unwrap());
    assert_eq!(local["type"].as_str(), Some("spin"));
    assert!(
        local["path"]
            .as_str()
            .is_some_and(|p| p.ends_with("sqlite_key_value.db"))
    );
    let redis = store(&toml_file(&root().join("runtime-config/redis.toml")).unwrap());
    assert_eq!(redis["type"].as_str(), Some("redis"));
    assert!(redis["url"].as_str().unwrap().starts_with("redis://"));

    // The runtime config SpinKube loads from the secret is Redis too.
    let secrets = example_secrets();
    let spinapp = &deploy("spinapp.yaml")[0];
    let secret =
        str_at(spinapp, &["spec", "runtimeConfig", "loadFromSecret"]).expect("loadFromSecret");
    let keys = &secrets[secret];
    assert_eq!(
        keys.keys().collect::<Vec<_>>(),
        ["runtime-config.toml"],
        "SpinKube wants one key"
    );
    let in_cluster: toml::Value = toml::from_str(&keys["runtime-config.toml"]).unwrap();
    assert_eq!(store(&in_cluster)["type"].as_str(), Some("redis"));
    assert!(
        store(&in_cluster)["url"]
            .as_str()
            .unwrap()
            .starts_with("redis")
    );
}

#[test]
fn every_variable_of_spin_toml_is_bound_in_the_spinapp() {
    let manifest = toml_file(&root().join("spin.toml")).unwrap();
    let declared: BTreeSet<String> = manifest["variables"]
        .as_table()
        .expect("spin.toml has [variables]")
        .keys()
        .cloned()
        .collect();
    let spinapp = &deploy("spinapp.yaml")[0];
    assert_eq!(str_at(spinapp, &["kind"]), Some("SpinApp"));
    assert_eq!(
        str_at(spinapp, &["apiVersion"]),
        Some("core.spinkube.dev/v1alpha1")
    );
    let bound: BTreeSet<String> = spinapp["spec"]["variables"]
        .as_sequence()
        .expect("spec.variables")
        .iter()
        .map(|v| str_at(v, &["name"]).unwrap().to_string())
        .collect();
    let missing: Vec<_> = declared.difference(&bound).collect();
    assert!(
        missing.is_empty(),
        "spin.toml variables missing from deploy/spinapp.yaml: {missing:?}"
    );
    let unknown: Vec<_> = bound.difference(&declared).collect();
    assert!(
        unknown.is_empty(),
        "deploy/spinapp.yaml binds variables spin.toml does not declare: {unknown:?}"
    );
    // Secret variables never appear as plain values.
    for (name, spec) in manifest["variables"].as_table().unwrap() {
        if spec.get("secret").and_then(toml::Value::as_bool) == Some(true) {
            let binding = spinapp["spec"]["variables"]
                .as_sequence()
                .unwrap()
                .iter()
                .find(|v| str_at(v, &["name"]) == Some(name))
                .unwrap();
            assert!(
                binding.get("value").is_none(),
                "secret variable {name} is bound to a plain value"
            );
        }
    }
}

#[test]
fn every_secret_the_deployment_reads_is_in_the_example_secrets() {
    let secrets = example_secrets();
    let mut refs = BTreeSet::new();
    for file in ["spinapp.yaml", "cronjob.yaml"] {
        for doc in deploy(file) {
            secret_refs(&doc, &mut refs);
        }
    }
    assert!(!refs.is_empty());
    for (name, key) in &refs {
        assert!(
            secrets.get(name).is_some_and(|keys| keys.contains_key(key)),
            "secret {name:?} key {key:?} is not in deploy/secrets.example.yaml"
        );
    }
    let spinapp = &deploy("spinapp.yaml")[0];
    for pull in spinapp["spec"]["imagePullSecrets"]
        .as_sequence()
        .into_iter()
        .flatten()
    {
        let name = str_at(pull, &["name"]).unwrap();
        assert!(secrets.contains_key(name), "pull secret {name:?}");
    }
}

#[test]
fn the_cron_jobs_call_routes_that_spin_toml_serves() {
    let manifest = toml_file(&root().join("spin.toml")).unwrap();
    let routes: Vec<String> = manifest["trigger"]["http"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["route"].as_str().map(str::to_string))
        .collect();
    let served = |path: &str| {
        routes.iter().any(|r| match r.strip_suffix("/...") {
            Some(prefix) => path.starts_with(&format!("{prefix}/")) || path == prefix,
            None => path == r,
        })
    };
    let jobs = deploy("cronjob.yaml");
    assert_eq!(jobs.len(), 3);
    let mut called = Vec::new();
    for job in &jobs {
        assert_eq!(str_at(job, &["kind"]), Some("CronJob"));
        assert!(str_at(job, &["spec", "schedule"]).is_some());
        let text = serde_norway::to_string(job).unwrap();
        for path in [
            "/api/v1/spot-checks/runs",
            "/api/v1/vouchers/sweep",
            "/api/v1/audit/integrate",
        ] {
            if text.contains(path) {
                assert!(served(path), "{path} is not routed by spin.toml");
                // The integration step is idempotent without a key.
                assert!(
                    text.contains("idempotency-key") || path == "/api/v1/audit/integrate",
                    "{path} without a key"
                );
                called.push(path);
            }
        }
    }
    called.sort();
    assert_eq!(
        called,
        [
            "/api/v1/audit/integrate",
            "/api/v1/spot-checks/runs",
            "/api/v1/vouchers/sweep"
        ]
    );
}

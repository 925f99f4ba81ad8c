//! `docs/openapi.yaml` against the code.
//!
//! 1. Coverage: every `[[trigger.http]]` route of `spin.toml` is covered by a
//!    documented path, every `(method, path)` the components' routers declare
//!    is documented with that method, and nothing is documented that no router
//!    answers; spin.toml sends every declared route to the component whose
//!    router declares it. Adding a route without documenting it fails here
//!    (`the_coverage_check_catches_…` proves it on a grown router).
//! 2. Form: references resolve, schemas compile, operationIds are unique, path
//!    parameters match the templates; every operation has `x-roles` (named in
//!    its description), a 2xx and a problem response, and an `Idempotency-Key`
//!    parameter when it changes state; every problem `code` the sources emit is
//!    in the document and in the table of docs/INTEGRATION.md.
//! 3. Examples: every `example`/`examples` of a parameter, request body,
//!    response body or component schema validates against its schema (the
//!    `jsonschema` crate, `#/components/...` resolved against the document).
//! 4. Real responses: a worked flow (registries, file, checks, cards, issue,
//!    redeem, revoke, spot-check run, calls, finding, hold, rectification,
//!    settle, sweep, archive, progress, WeChat login and bind, audit, key
//!    rotation) runs through the handlers on the in-memory store with sealed
//!    values; every operation answers 2xx at least once, and every response,
//!    success or problem, validates against the schema the document gives for
//!    its path, method, status and media type. Then every operation is called
//!    with every role: a role not in `x-roles` gets 403, a listed one is never
//!    refused for its role.
//!
//! Set `OPENAPI_DUMP=path.json` to write the flow's requests and responses to a
//! file (handy when changing the document).

#![allow(clippy::result_large_err)]

mod support;

use bytes::Bytes;
use chrono::{DateTime, Duration, TimeZone, Utc};
use http::Method;
use policy::class_opening::ClassApplication;
use policy::fixtures;
use serde_json::{Value, json};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use store::MemoryStore;
use store::sealed::{DataKey, Keyring, SealedKv};
use support::{HMAC, JWT, block_on, random, secrets_with_wechat as secrets};
use web::auth::{Claims, Role, mint};
use web::{Env, Secrets};

// ---------------------------------------------------------------------------
// The document.

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The OpenAPI document as JSON.
fn document() -> Value {
    let text = std::fs::read_to_string(root().join("docs/openapi.yaml"))
        .expect("docs/openapi.yaml is readable");
    serde_norway::from_str(&text).expect("docs/openapi.yaml is valid YAML")
}

const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "patch", "head", "options", "trace",
];

/// Every `(METHOD, path)` the document describes.
fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    doc["paths"]
        .as_object()
        .expect("the document has paths")
        .iter()
        .flat_map(|(path, item)| {
            METHODS
                .iter()
                .filter(|m| item.get(**m).is_some())
                .map(|m| (m.to_uppercase(), path.clone()))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Every `(METHOD, path)` the routers of the components declare.
fn declared() -> BTreeSet<(String, String)> {
    app::class_opening::router()
        .declared()
        .into_iter()
        .chain(app::audit::router().declared())
        .chain(app::admin::router().declared())
        .chain(app::policy_admin::router().declared())
        .chain(app::vouchers::router().declared())
        .chain(app::spot_checks::router().declared())
        .map(|(m, p)| (m.as_str().to_string(), p))
        .collect()
}

/// The `route` of every `[[trigger.http]]` in `spin.toml`.
fn spin_routes() -> Vec<String> {
    let text = std::fs::read_to_string(root().join("spin.toml")).expect("spin.toml is readable");
    let manifest: toml::Value = toml::from_str(&text).expect("spin.toml is valid TOML");
    manifest["trigger"]["http"]
        .as_array()
        .expect("spin.toml has [[trigger.http]]")
        .iter()
        .map(|t| t["route"].as_str().expect("a route").to_string())
        .collect()
}

/// What is wrong with the coverage: routes declared by a router but not
/// documented with that method, and documented operations no router declares.
fn coverage_gaps(
    documented: &BTreeSet<(String, String)>,
    declared: &BTreeSet<(String, String)>,
) -> Vec<String> {
    let mut gaps: Vec<String> = declared
        .difference(documented)
        .map(|(m, p)| format!("{m} {p} is routed but not in docs/openapi.yaml"))
        .collect();
    gaps.extend(
        documented
            .difference(declared)
            .map(|(m, p)| format!("{m} {p} is documented but no router declares it (stale)")),
    );
    gaps
}

/// Whether a segment of a documented path is a `{parameter}`.
fn is_param(segment: &str) -> bool {
    segment.starts_with('{') && segment.ends_with('}')
}

/// Whether the Spin route `route` (`/a/b`, `/a/...`, `/a/:id/b/...`) sends
/// requests for the documented path `path` to a component.
fn spin_route_covers(route: &str, path: &str) -> bool {
    let (prefix, wildcard) = match route.strip_suffix("/...") {
        Some(p) => (p, true),
        None => (route, false),
    };
    let want: Vec<&str> = prefix.split('/').filter(|s| !s.is_empty()).collect();
    let have: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    if have.len() < want.len() || (!wildcard && have.len() != want.len()) {
        return false;
    }
    want.iter()
        .zip(&have)
        .all(|(w, h)| w.starts_with(':') || w == h || (is_param(h) && w.starts_with(':')))
}

/// Spin routes that no documented path falls under.
fn uncovered_spin_routes(routes: &[String], paths: &BTreeSet<String>) -> Vec<String> {
    routes
        .iter()
        .filter(|r| !paths.iter().any(|p| spin_route_covers(r, p)))
        .map(|r| format!("spin.toml route {r} has no path in docs/openapi.yaml"))
        .collect()
}

/// Documented paths that no Spin route sends to a component.
fn unrouted_paths(routes: &[String], paths: &BTreeSet<String>) -> Vec<String> {
    paths
        .iter()
        .filter(|p| !routes.iter().any(|r| spin_route_covers(r, p)))
        .map(|p| format!("{p} is documented but no spin.toml route reaches it"))
        .collect()
}

#[test]
fn every_route_of_spin_toml_and_of_the_routers_is_documented_and_nothing_else() {
    let doc = document();
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "OpenAPI 3.1"
    );
    let documented = documented(&doc);
    let declared = declared();
    assert!(declared.len() >= 30, "routers declare {}", declared.len());
    let paths: BTreeSet<String> = documented.iter().map(|(_, p)| p.clone()).collect();
    let routes = spin_routes();
    let mut gaps = coverage_gaps(&documented, &declared);
    gaps.extend(uncovered_spin_routes(&routes, &paths));
    gaps.extend(unrouted_paths(&routes, &paths));
    assert!(gaps.is_empty(), "\n{}", gaps.join("\n"));
}

#[test]
fn the_coverage_check_catches_an_undocumented_route_and_a_stale_one() {
    let doc = document();
    let documented = documented(&doc);
    let mut declared = declared();
    assert!(coverage_gaps(&documented, &declared).is_empty());

    // A component gains a route nobody documented.
    let router = app::spot_checks::router().add(
        Method::DELETE,
        "/api/v1/spot-checks/runs/{id}",
        app::spot_checks::Route::GetRun,
    );
    let grown: BTreeSet<(String, String)> = router
        .declared()
        .into_iter()
        .map(|(m, p)| (m.as_str().to_string(), p))
        .chain(declared.iter().cloned())
        .collect();
    assert_eq!(
        coverage_gaps(&documented, &grown),
        vec!["DELETE /api/v1/spot-checks/runs/{id} is routed but not in docs/openapi.yaml"]
    );

    // A route disappears from the code but stays in the document.
    declared.remove(&("GET".to_string(), "/api/v1/me/archive".to_string()));
    assert_eq!(
        coverage_gaps(&documented, &declared),
        vec!["GET /api/v1/me/archive is documented but no router declares it (stale)"]
    );

    // spin.toml gains a component route with no documented path.
    let paths: BTreeSet<String> = documented.iter().map(|(_, p)| p.clone()).collect();
    let mut routes = spin_routes();
    assert_eq!(uncovered_spin_routes(&routes, &paths), Vec::<String>::new());
    routes.push("/api/v1/payments/...".into());
    assert_eq!(
        uncovered_spin_routes(&routes, &paths),
        vec!["spin.toml route /api/v1/payments/... has no path in docs/openapi.yaml"]
    );
    assert!(spin_route_covers(
        "/api/v1/classes/:id/vouchers/...",
        "/api/v1/classes/{id}/vouchers"
    ));
    assert!(!spin_route_covers("/api/v1/audit", "/api/v1/audit/verify"));
    assert!(spin_route_covers(
        "/api/v1/audit/...",
        "/api/v1/audit/verify"
    ));
}

/// Every `$ref` in `v`, with where it is.
fn refs<'a>(v: &'a Value, at: String, out: &mut Vec<(String, &'a str)>) {
    match v {
        Value::Object(map) => {
            for (k, x) in map {
                if k == "$ref" {
                    if let Some(r) = x.as_str() {
                        out.push((at.clone(), r));
                    }
                } else {
                    refs(x, format!("{at}/{k}"), out);
                }
            }
        }
        Value::Array(items) => {
            for (i, x) in items.iter().enumerate() {
                refs(x, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn the_document_is_well_formed() {
    let doc = document();
    let mut problems = Vec::new();
    // Every reference resolves inside the document.
    let mut all = Vec::new();
    refs(&doc, String::new(), &mut all);
    for (at, r) in &all {
        let ok = r
            .strip_prefix('#')
            .is_some_and(|pointer| doc.pointer(pointer).is_some());
        if !ok {
            problems.push(format!("{at}: $ref {r} does not resolve"));
        }
    }
    // Every schema compiles.
    for (name, schema) in doc["components"]["schemas"].as_object().unwrap() {
        if let Err(e) = validate(&doc, schema, &Value::Null).map_err(|e| e.join("; "))
            && e.contains("does not compile")
        {
            problems.push(format!("components.schemas.{name}: {e}"));
        }
    }
    // operationIds are unique; path parameters match the path's template.
    let mut ids = BTreeSet::new();
    for (method, path) in documented(&doc) {
        let op = &doc["paths"][&path][method.to_lowercase()];
        if let Some(id) = op["operationId"].as_str()
            && !ids.insert(id.to_string())
        {
            problems.push(format!("operationId {id} is used twice"));
        }
        let in_path: BTreeSet<String> = path
            .split('/')
            .filter(|s| is_param(s))
            .map(|s| s.trim_matches(|c| c == '{' || c == '}').to_string())
            .collect();
        let declared: BTreeSet<String> = parameters_of(&doc, &path, &method)
            .iter()
            .map(|p| resolve(&doc, p))
            .filter(|p| p["in"] == "path")
            .map(|p| {
                if p["required"] != json!(true) {
                    problems.push(format!(
                        "{method} {path}: path parameter {} is not required",
                        p["name"]
                    ));
                }
                p["name"].as_str().unwrap_or("").to_string()
            })
            .collect();
        if in_path != declared {
            problems.push(format!(
                "{method} {path}: path parameters {in_path:?} but {declared:?} declared"
            ));
        }
        for (status, response) in op["responses"].as_object().into_iter().flatten() {
            if resolve(&doc, response)["description"].as_str().is_none() {
                problems.push(format!("{method} {path} {status}: no description"));
            }
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
    assert!(all.len() > 100, "{} references", all.len());
}

#[test]
fn every_operation_names_its_roles_and_its_problems_and_state_changes_take_an_idempotency_key() {
    let doc = document();
    let mut problems = Vec::new();
    let roles: BTreeSet<&str> = [
        "institution",
        "district_officer",
        "bureau_admin",
        "inspector",
        "scheduler",
        "trainee",
        "social_security",
    ]
    .into();
    for (method, path) in documented(&doc) {
        let op = &doc["paths"][&path][method.to_lowercase()];
        let name = format!("{method} {path}");
        if op["operationId"].as_str().is_none() {
            problems.push(format!("{name}: no operationId"));
        }
        match op["x-roles"].as_array() {
            None => problems.push(format!("{name}: no x-roles")),
            Some(list) => {
                for r in list {
                    if !r.as_str().is_some_and(|r| roles.contains(r)) {
                        problems.push(format!("{name}: x-roles has unknown role {r}"));
                    }
                }
                let description = op["description"].as_str().unwrap_or("");
                for r in list.iter().filter_map(Value::as_str) {
                    if !description.contains(&format!("`{r}`")) {
                        problems.push(format!("{name}: the description does not name role `{r}`"));
                    }
                }
                let open = op["security"].as_array().is_some_and(|s| s.is_empty());
                if list.is_empty() != open {
                    problems.push(format!(
                        "{name}: an operation without roles must have `security: []` and the reverse"
                    ));
                }
            }
        }
        let responses = op["responses"].as_object();
        if !responses.is_some_and(|r| r.keys().any(|k| k.starts_with('2'))) {
            problems.push(format!("{name}: no 2xx response"));
        }
        if !responses.is_some_and(|r| r.keys().any(|k| k.starts_with('4') || k.starts_with('5'))) {
            problems.push(format!("{name}: no problem response"));
        }
        if method == "POST" || method == "PUT" {
            let params = parameters_of(&doc, &path, &method);
            let has_key = params.iter().any(|p| {
                resolve(&doc, p)["name"]
                    .as_str()
                    .is_some_and(|n| n.eq_ignore_ascii_case("idempotency-key"))
            });
            // A dry run and a single-use WeChat code have nothing to replay; a
            // re-sealing page repeated does nothing, nor does an integration
            // step with nothing new.
            let exempt = [
                "/api/v1/wechat/login",
                "/api/v1/classes/validate",
                "/api/v1/admin/key-rotation",
                "/api/v1/audit/integrate",
            ]
            .contains(&path.as_str());
            if !has_key && !exempt {
                problems.push(format!("{name}: no Idempotency-Key parameter"));
            }
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

/// Every `.rs` file under `dir`, recursively.
fn rust_files(dir: &std::path::Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The problem `code`s the sources emit: the first string literal of every
/// `Problem::new(…)` and `Problem::conflict(…)` (and `Self::new(…)` in problem.rs).
fn emitted_problem_codes() -> BTreeSet<String> {
    let mut files = Vec::new();
    for dir in ["shared", "functions"] {
        rust_files(&root().join(dir), &mut files);
    }
    let mut codes = BTreeSet::new();
    for file in files
        .iter()
        .filter(|f| f.components().any(|c| c.as_os_str() == "src"))
    {
        let text = std::fs::read_to_string(file).unwrap();
        let mut calls = vec!["Problem::new(", "Problem::conflict("];
        if file.ends_with("web/src/problem.rs") {
            calls.push("Self::new(");
        }
        for call in calls {
            for (at, _) in text.match_indices(call) {
                let rest = &text[at + call.len()..];
                let Some(open) = rest.find('"') else { continue };
                let Some(len) = rest[open + 1..].find('"') else {
                    continue;
                };
                let code = &rest[open + 1..open + 1 + len];
                if !code.is_empty() && code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
                    codes.insert(code.to_string());
                }
            }
        }
    }
    codes
}

#[test]
fn every_problem_code_the_sources_emit_is_documented() {
    let codes = emitted_problem_codes();
    assert!(codes.len() >= 30, "found only {codes:?}");
    for known in [
        "validation_failed",
        "voucher_state_conflict",
        "seed_conflict",
        "store_unavailable",
    ] {
        assert!(codes.contains(known), "{known} not found in the sources");
    }
    let yaml = std::fs::read_to_string(root().join("docs/openapi.yaml")).unwrap();
    let guide = std::fs::read_to_string(root().join("docs/INTEGRATION.md")).unwrap();
    let missing: Vec<String> = codes
        .iter()
        .flat_map(|c| {
            let mut m = Vec::new();
            if !yaml.contains(c.as_str()) {
                m.push(format!("{c} is not in docs/openapi.yaml"));
            }
            if !guide.contains(&format!("| `{c}` |")) {
                m.push(format!(
                    "{c} has no row in the problem table of docs/INTEGRATION.md"
                ));
            }
            m
        })
        .collect();
    assert!(missing.is_empty(), "\n{}", missing.join("\n"));
}

/// The component Spin sends `path` to: an exact route before a wildcard, then the longest prefix.
fn spin_component_for<'a>(routes: &'a [(String, String)], path: &str) -> Option<&'a str> {
    routes
        .iter()
        .filter(|(r, _)| spin_route_covers(r, path))
        .max_by_key(|(r, _)| (!r.ends_with("/..."), r.split('/').count()))
        .map(|(_, c)| c.as_str())
}

#[test]
fn spin_toml_sends_every_route_to_the_component_whose_router_declares_it() {
    let text = std::fs::read_to_string(root().join("spin.toml")).unwrap();
    let manifest: toml::Value = toml::from_str(&text).unwrap();
    let routes: Vec<(String, String)> = manifest["trigger"]["http"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["route"].as_str().unwrap().to_string(),
                t["component"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let components = [
        (
            "class-opening",
            app::class_opening::router()
                .declared()
                .into_iter()
                .chain(app::admin::router().declared())
                .collect::<Vec<_>>(),
        ),
        ("audit", app::audit::router().declared()),
        ("vouchers", app::vouchers::router().declared()),
        ("spot-checks", app::spot_checks::router().declared()),
        ("policy-admin", app::policy_admin::router().declared()),
    ];
    let mut wrong = Vec::new();
    for (component, declared) in &components {
        for (method, path) in declared {
            let to = spin_component_for(&routes, path);
            if to != Some(*component) {
                wrong.push(format!(
                    "{method} {path}: declared by {component}, spin.toml sends it to {to:?}"
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "\n{}", wrong.join("\n"));
}

// ---------------------------------------------------------------------------
// Schemas and examples.

/// Follows a local `$ref` (`#/components/...`) once or more.
fn resolve<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    let mut v = v;
    for _ in 0..8 {
        match v.get("$ref").and_then(Value::as_str) {
            Some(r) => {
                let pointer = r.strip_prefix('#').expect("local references only");
                v = doc
                    .pointer(pointer)
                    .unwrap_or_else(|| panic!("unresolved reference {r}"));
            }
            None => return v,
        }
    }
    panic!("reference loop")
}

/// The parameters of an operation: those of its path item and its own.
fn parameters_of(doc: &Value, path: &str, method: &str) -> Vec<Value> {
    let item = &doc["paths"][path];
    item["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(
            item[method.to_lowercase()]["parameters"]
                .as_array()
                .into_iter()
                .flatten(),
        )
        .cloned()
        .collect()
}

/// Validates `instance` against `schema`, resolving `#/components/...` in the document.
fn validate(doc: &Value, schema: &Value, instance: &Value) -> Result<(), Vec<String>> {
    let root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "components": doc["components"],
        "allOf": [schema],
    });
    let validator = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .should_validate_formats(true)
        .build(&root)
        .map_err(|e| vec![format!("the schema does not compile: {e}")])?;
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// The examples of a media type or parameter object: `example` and every `examples` value.
fn examples_of<'a>(doc: &'a Value, holder: &'a Value) -> Vec<(String, &'a Value)> {
    let mut out = Vec::new();
    if let Some(e) = holder.get("example") {
        out.push(("example".to_string(), e));
    }
    if let Some(map) = holder.get("examples").and_then(Value::as_object) {
        for (name, e) in map {
            let e = resolve(doc, e);
            if let Some(v) = e.get("value") {
                out.push((format!("examples.{name}"), v));
            }
        }
    }
    out
}

#[test]
fn every_example_validates_against_its_schema() {
    let doc = document();
    let mut checked = 0;
    let mut failures = Vec::new();
    let mut check = |place: String, schema: &Value, example: &Value| {
        checked += 1;
        if let Err(errs) = validate(&doc, schema, example) {
            failures.push(format!("{place}:\n    {}", errs.join("\n    ")));
        }
    };
    for (method, path) in documented(&doc) {
        let op = &doc["paths"][&path][method.to_lowercase()];
        let name = format!("{method} {path}");
        for p in &parameters_of(&doc, &path, &method) {
            let p = resolve(&doc, p);
            for (which, e) in examples_of(&doc, p) {
                check(
                    format!("{name} parameter {} {which}", p["name"]),
                    &p["schema"],
                    e,
                );
            }
        }
        if let Some(body) = op.get("requestBody") {
            let body = resolve(&doc, body);
            for (media, content) in body["content"].as_object().into_iter().flatten() {
                for (which, e) in examples_of(&doc, content) {
                    check(
                        format!("{name} request {media} {which}"),
                        &content["schema"],
                        e,
                    );
                }
            }
        }
        for (status, response) in op["responses"].as_object().into_iter().flatten() {
            let response = resolve(&doc, response);
            for (media, content) in response["content"].as_object().into_iter().flatten() {
                for (which, e) in examples_of(&doc, content) {
                    check(
                        format!("{name} response {status} {media} {which}"),
                        &content["schema"],
                        e,
                    );
                }
            }
        }
    }
    for (name, schema) in doc["components"]["schemas"]
        .as_object()
        .into_iter()
        .flatten()
    {
        for (i, e) in schema["examples"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            check(
                format!("components.schemas.{name}.examples[{i}]"),
                schema,
                e,
            );
        }
        if let Some(e) = schema.get("example") {
            check(format!("components.schemas.{name}.example"), schema, e);
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    assert!(checked >= 60, "only {checked} examples in the document");
}

#[test]
fn a_schema_rejects_what_the_server_rejects() {
    // additionalProperties: false where the server refuses unknown fields.
    let doc = document();
    let (app, _) = fixtures::valid_class(3);
    let mut body = serde_json::to_value(&app).unwrap();
    let schema = json!({"$ref": "#/components/schemas/ClassApplication"});
    assert_eq!(validate(&doc, &schema, &body), Ok(()));
    body["colour"] = json!("blue");
    assert!(validate(&doc, &schema, &body).is_err(), "unknown field");
    let mut body = serde_json::to_value(&app).unwrap();
    body["roster"][0]["mobile"] = json!("12800138000");
    assert!(validate(&doc, &schema, &body).is_err(), "mobile pattern");
    let check = json!({"$ref": "#/components/schemas/CheckRequest"});
    assert!(
        validate(
            &doc,
            &check,
            &json!({"kind": "pre_opening", "officer": "李科员", "at": "2022-06-13T01:00:00Z", "result": "passed"})
        )
        .is_ok()
    );
    assert!(
        validate(
            &doc,
            &check,
            &json!({"kind": "opening", "officer": "李科员", "at": "2022-06-13T01:00:00Z", "result": "passed"})
        )
        .is_err()
    );
}

/// Every `pattern` in the document, with where it is.
fn patterns<'a>(v: &'a Value, at: String, out: &mut Vec<(String, &'a str)>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                if k == "pattern"
                    && let Some(p) = child.as_str()
                {
                    out.push((at.clone(), p));
                }
                patterns(child, format!("{at}/{k}"), out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                patterns(child, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn the_documents_not_blank_pattern_is_the_servers_and_accepts_exactly_what_the_server_accepts() {
    let doc = document();
    let mut found = Vec::new();
    patterns(&doc, String::new(), &mut found);
    // Every pattern that lists white space lists the server's.
    let listing: Vec<_> = found
        .iter()
        .filter(|(_, p)| p.contains(r"\u3000"))
        .collect();
    assert!(listing.len() >= 10, "{listing:?}");
    for (at, p) in &listing {
        assert!(
            p.contains(&policy::text::NOT_BLANK[2..policy::text::NOT_BLANK.len() - 1]),
            "{at}: {p}"
        );
    }
    // A JSON Schema validator reads it as the server does: over every
    // character of the Basic Multilingual Plane, the one-character string
    // matches the pattern exactly when the server counts it as not blank.
    let schema = json!({"type": "string", "pattern": policy::text::NOT_BLANK});
    let validator = jsonschema::validator_for(&schema).unwrap();
    for c in (0u32..=0xFFFF).filter_map(char::from_u32) {
        let text = c.to_string();
        assert_eq!(
            validator.is_valid(&json!(text)),
            policy::text::filled(&text, 1),
            "U+{:04X}",
            c as u32
        );
    }
    // And a field with it: 1 to 50 characters, not all blank.
    let name = json!({"$ref": "#/components/schemas/TrainerRef"});
    for (value, ok) in [
        ("张讲师", true),
        ("   ", false),
        ("\u{3000}", false),
        ("", false),
    ] {
        let body = json!({"registration_no": "YN-T-0001", "name": value});
        assert_eq!(validate(&doc, &name, &body).is_ok(), ok, "{value:?}");
        assert_eq!(policy::text::filled(value, 50), ok, "{value:?}");
    }
    let long = "讲".repeat(51);
    let body = json!({"registration_no": "YN-T-0001", "name": long});
    assert!(validate(&doc, &name, &body).is_err());
    assert!(!policy::text::filled(&long, 50));
}

#[test]
fn the_documents_cursor_pattern_accepts_exactly_the_cursors_the_server_reads() {
    let doc = document();
    let schema = resolve(&doc, &doc["components"]["parameters"]["Cursor"])["schema"].clone();
    for cursor in [
        "0.0",
        "3.17",
        "999999999999.999999999",
        "",
        "3",
        "03.1",
        "3.01",
        "-1.0",
        "1.2.3",
        "1234567890123.0",
        "0.1234567890",
        "a.b",
        "eyJwYWdlIjowfQ",
    ] {
        assert_eq!(
            validate(&doc, &schema, &json!(cursor)).is_ok(),
            web::paging::decode(cursor).is_ok(),
            "{cursor:?}"
        );
    }
}

// ---------------------------------------------------------------------------
// The worked flow on the in-memory store.

/// 10:00 China Standard Time on the CST date `day`.
fn cst(day: &str) -> DateTime<Utc> {
    let d: chrono::NaiveDate = day.parse().unwrap();
    Utc.from_utc_datetime(&d.and_hms_opt(2, 0, 0).unwrap())
}

/// A WeChat that knows one `wx.login` code (phone codes are added by the walk).
fn fake_wechat() -> support::wechat::FakeWeChat {
    support::wechat::FakeWeChat::default()
        .login(
            "good-code",
            json!({"openid": "o6_bmjrPTlm6_2sgVt7hMZOPfL2M", "session_key": "tiihtNczf5v6AKRyjwEUhQ=="}),
        )
        .login("used-code", json!({"errcode": 40029, "errmsg": "invalid code"}))
}

/// One request and its answer.
#[derive(Debug, Clone, serde::Serialize)]
struct Exchange {
    method: String,
    path: String,
    query: Option<String>,
    request: Option<Value>,
    status: u16,
    content_type: String,
    body: Value,
}

struct World {
    kv: MemoryStore,
    secrets: Secrets,
    now: Cell<DateTime<Utc>>,
    log: RefCell<Vec<Exchange>>,
    wechat: support::wechat::FakeWeChat,
}

fn answers(router_at: Result<(), web::Problem>) -> bool {
    match router_at {
        Ok(()) => true,
        Err(p) => p.status == 405,
    }
}

impl World {
    fn new() -> Self {
        Self {
            kv: MemoryStore::new(),
            secrets: secrets(),
            now: Cell::new(cst("2022-06-01")),
            log: RefCell::new(Vec::new()),
            wechat: fake_wechat(),
        }
    }

    fn token(&self, role: Role, sub: &str) -> String {
        let now = self.now.get().timestamp();
        let mut claims = support::claims(role, None, now - 60, now + 3600);
        claims.sub = sub.into();
        mint(&claims, JWT)
    }

    fn trainee(&self, person: &str) -> String {
        let sealed = SealedKv::new(
            self.kv.clone(),
            Keyring::new(DataKey::from_secret(&self.secrets.pii_key), vec![]),
            &random,
        );
        support::wechat::bind_at(&sealed, person, self.now.get());
        let now = self.now.get().timestamp();
        mint(
            &Claims {
                sub: support::wechat::trainee_sub(person),
                role: Role::Trainee,
                institution: None,
                district: None,
                person: Some(person.into()),
                iat: now - 60,
                nbf: None,
                exp: now + 3600,
            },
            JWT,
        )
    }

    /// Sends a request to the component Spin would route it to.
    fn send(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        body: Option<Bytes>,
        idem: Option<&str>,
    ) -> (u16, Value) {
        let headers: Vec<(&str, &str)> = idem.map(|k| ("idempotency-key", k)).into_iter().collect();
        let req = support::request(&method, uri, token, body.clone(), &headers);
        // Values sealed with a data key, as the Spin components store them.
        let kv = SealedKv::new(
            self.kv.clone(),
            Keyring::new(DataKey::from_secret(&self.secrets.pii_key), vec![]),
            &random,
        );
        let env = Env {
            kv: &kv,
            secrets: &self.secrets,
            now: self.now.get(),
            random: &random,
        };
        let (path, query) = match uri.split_once('?') {
            Some((p, q)) => (p, Some(q.to_string())),
            None => (uri, None),
        };
        let res = if path.starts_with("/api/v1/spot-checks") {
            app::spot_checks::handle(&env, &req)
        } else if path.starts_with("/api/v1/admin/policy") {
            app::policy_admin::handle(&env, &req)
        } else if path.starts_with("/api/v1/audit") {
            app::audit::handle(&env, &req)
        } else if answers(app::vouchers::router().at(&method, path).map(|_| ())) {
            block_on(app::vouchers::handle_with(&env, &req, &self.wechat))
        } else {
            app::class_opening::handle(&env, &req)
        };
        let a = support::answer(res);
        let status = a.status.as_u16();
        let content_type = a
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        // A text answer (the audit checkpoint) is validated as a JSON string.
        let value = if content_type.starts_with("text/plain") {
            Value::String(a.text.clone())
        } else {
            a.body
        };
        self.log.borrow_mut().push(Exchange {
            method: method.as_str().to_string(),
            path: path.to_string(),
            query,
            request: body.and_then(|b| serde_json::from_slice(&b).ok()),
            status,
            content_type,
            body: value.clone(),
        });
        (status, value)
    }

    fn call(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        body: Option<Value>,
        idem: Option<&str>,
    ) -> (u16, Value) {
        let body = body.map(|b| Bytes::from(serde_json::to_vec(&b).unwrap()));
        self.send(method, uri, token, body, idem)
    }

    /// A call that must answer `status`.
    fn expect(
        &self,
        status: u16,
        method: Method,
        uri: &str,
        token: Option<&str>,
        body: Option<Value>,
        idem: Option<&str>,
    ) -> Value {
        let (s, v) = self.call(method.clone(), uri, token, body, idem);
        assert_eq!(s, status, "{method} {uri}: {v}");
        v
    }
}

/// Runs the worked flow of docs/INTEGRATION.md through every route; returns the exchanges.
fn worked_flow() -> Vec<Exchange> {
    let w = World::new();
    let (app, _) = fixtures::valid_class(40);
    let bureau = w.token(Role::BureauAdmin, "bureau-1");
    let inst = w.token(Role::Institution, "inst-1");
    let officer = w.token(Role::DistrictOfficer, "officer-1");
    let social = w.token(Role::SocialSecurity, "sicard");
    let scheduler = w.token(Role::Scheduler, "cron");

    // Health, problems of the plumbing.
    w.expect(200, Method::GET, "/api/v1/health", None, None, None);
    w.expect(401, Method::GET, "/api/v1/classes", None, None, None);
    w.expect(
        405,
        Method::DELETE,
        "/api/v1/classes",
        Some(&inst),
        None,
        None,
    );
    let (s, _) = w.send(
        Method::POST,
        "/api/v1/classes/validate",
        Some(&inst),
        Some(Bytes::from_static(b"{\"institution\": ")),
        None,
    );
    assert_eq!(s, 400);

    // Registries.
    let reg = |kind: &str, id: &str, body: Value| {
        let path = format!("/api/v1/registry/{kind}/{id}");
        w.expect(201, Method::PUT, &path, Some(&bureau), Some(body), None);
        w.expect(200, Method::GET, &path, Some(&officer), None, None);
    };
    reg(
        "institutions",
        fixtures::INSTITUTION,
        serde_json::to_value(fixtures::institution()).unwrap(),
    );
    for t in &app.trainers {
        reg(
            "trainers",
            &t.registration_no,
            json!({"registration_no": t.registration_no, "name": t.name, "status": "registered"}),
        );
    }
    reg(
        "textbooks",
        "9787111213826",
        serde_json::to_value(fixtures::textbook()).unwrap(),
    );
    reg(
        "courseware",
        "YN-KJ-2022-0001",
        json!({"id": "YN-KJ-2022-0001", "title": "养老护理员线上理论课程", "status": "approved"}),
    );
    w.expect(
        404,
        Method::GET,
        "/api/v1/registry/trainers/YN-T-9999",
        Some(&officer),
        None,
        None,
    );

    // Validate and file.
    let body = serde_json::to_value(&app).unwrap();
    let v = w.expect(
        200,
        Method::POST,
        "/api/v1/classes/validate",
        Some(&inst),
        Some(body.clone()),
        None,
    );
    assert_eq!(v["decision"]["outcome"], "approved");
    let mut short: ClassApplication = app.clone();
    short.sessions.truncate(10);
    short.end_date = short.sessions.last().unwrap().date;
    let v = w.expect(
        200,
        Method::POST,
        "/api/v1/classes/validate",
        Some(&inst),
        Some(serde_json::to_value(&short).unwrap()),
        None,
    );
    assert_eq!(v["decision"]["outcome"], "rejected");
    let mut unknown = body.clone();
    unknown["colour"] = json!("blue");
    w.expect(
        422,
        Method::POST,
        "/api/v1/classes/validate",
        Some(&inst),
        Some(unknown),
        None,
    );
    let filed = w.expect(
        201,
        Method::POST,
        "/api/v1/classes",
        Some(&inst),
        Some(body.clone()),
        Some("file-2022-06-01"),
    );
    let id = filed["id"].as_str().unwrap().to_string();
    w.expect(
        201,
        Method::POST,
        "/api/v1/classes",
        Some(&inst),
        Some(body.clone()),
        Some("file-2022-06-01"),
    );
    let v = w.expect(
        200,
        Method::GET,
        "/api/v1/classes?status=approved&limit=10",
        Some(&officer),
        None,
        None,
    );
    assert_eq!(v["items"][0]["id"], json!(id));
    w.expect(
        200,
        Method::GET,
        &format!("/api/v1/classes/{id}"),
        Some(&inst),
        None,
        None,
    );
    w.expect(
        404,
        Method::GET,
        "/api/v1/classes/KM-2022-999999",
        Some(&inst),
        None,
        None,
    );

    // Cards and vouchers.
    for t in &app.roster[..4] {
        w.expect(
            200,
            Method::POST,
            "/api/v1/cards/activations",
            Some(&social),
            Some(json!({"id_number": t.id_number.expose(), "active": true})),
            None,
        );
    }
    let issued = w.expect(
        200,
        Method::POST,
        &format!("/api/v1/classes/{id}/vouchers"),
        Some(&inst),
        Some(json!({"lines": [0, 1, 2, 3, 5]})),
        Some("issue-1"),
    );
    assert_eq!(
        (issued["issued"].clone(), issued["refused"].clone()),
        (json!(4), json!(1))
    );
    let code = |i: usize| {
        issued["results"][i]["voucher"]["code_compact"]
            .as_str()
            .unwrap()
            .to_string()
    };
    w.expect(
        200,
        Method::GET,
        &format!("/api/v1/classes/{id}/vouchers?limit=2"),
        Some(&officer),
        None,
        None,
    );
    w.expect(
        200,
        Method::GET,
        &format!("/api/v1/vouchers/{}", code(0)),
        Some(&inst),
        None,
        None,
    );

    // 每班必查: the pre-opening check, on the eve, opens the class; trainees start it.
    w.now.set(cst("2022-06-12"));
    let officer = w.token(Role::DistrictOfficer, "officer-1");
    let check = |kind: &str| json!({"kind": kind, "officer": "李科员", "at": w.now.get() - Duration::hours(1), "result": "passed", "notes": "现场核验"});
    w.expect(
        409,
        Method::POST,
        &format!("/api/v1/classes/{id}/checks"),
        Some(&officer),
        Some(check("post_assessment")),
        None,
    );
    w.expect(
        200,
        Method::POST,
        &format!("/api/v1/classes/{id}/checks"),
        Some(&officer),
        Some(check("pre_opening")),
        Some("check-pre"),
    );
    w.now.set(cst("2022-06-13"));
    let inst = w.token(Role::Institution, "inst-1");
    for i in 0..2 {
        w.expect(
            200,
            Method::POST,
            &format!("/api/v1/vouchers/{}/redeem", code(i)),
            Some(&inst),
            None,
            Some(&format!("redeem-{i}")),
        );
    }
    w.expect(
        200,
        Method::POST,
        &format!("/api/v1/vouchers/{}/revoke", code(2)),
        Some(&inst),
        Some(json!({"reason": "学员因病退出培训"})),
        None,
    );

    // 电话抽查, and the in-training check, which does not end training.
    w.now.set(cst("2022-06-20"));
    w.expect(
        200,
        Method::POST,
        &format!("/api/v1/classes/{id}/checks"),
        Some(&w.token(Role::DistrictOfficer, "officer-1")),
        Some(json!({"kind": "in_training", "officer": "李科员", "at": w.now.get() - Duration::hours(1), "result": "passed"})),
        None,
    );
    let bureau = w.token(Role::BureauAdmin, "bureau-1");
    let scheduler2 = w.token(Role::Scheduler, "cron");
    let _ = scheduler;
    w.expect(
        200,
        Method::PUT,
        "/api/v1/spot-checks/inspectors/insp-a",
        Some(&bureau),
        Some(json!({"name": "张抽查", "active": true})),
        None,
    );
    w.expect(
        200,
        Method::GET,
        "/api/v1/spot-checks/inspectors",
        Some(&bureau),
        None,
        None,
    );
    // A public value before the freeze is refused; once frozen it fixes the seed.
    w.expect(
        409,
        Method::POST,
        "/api/v1/spot-checks/runs",
        Some(&scheduler2),
        Some(json!({"window": "2022-06-20", "public_value": "01382438112797316654"})),
        None,
    );
    let run_body = json!({"window": "2022-06-20", "page_size": 100});
    let mut done = false;
    for _ in 0..20 {
        let v = w.expect(
            200,
            Method::POST,
            "/api/v1/spot-checks/runs",
            Some(&scheduler2),
            Some(run_body.clone()),
            None,
        );
        if v["done"] == json!(true) {
            done = true;
            break;
        }
        if v["frozen"] == json!(true) && v["seed_fixed"] == json!(false) {
            w.expect(
                200,
                Method::POST,
                "/api/v1/spot-checks/runs",
                Some(&scheduler2),
                Some(json!({"window": "2022-06-20", "public_value": "01382438112797316654"})),
                None,
            );
        }
    }
    assert!(done);
    w.expect(
        409,
        Method::POST,
        "/api/v1/spot-checks/runs",
        Some(&scheduler2),
        Some(json!({"window": "2022-06-20", "seed": "271828"})),
        None,
    );
    let inspector = w.token(Role::Inspector, "insp-a");
    w.expect(
        200,
        Method::GET,
        "/api/v1/spot-checks/runs/2022-06-20",
        Some(&inspector),
        None,
        None,
    );
    let tasks = w.expect(
        200,
        Method::GET,
        "/api/v1/spot-checks/tasks/mine?run=2022-06-20&limit=20",
        Some(&inspector),
        None,
        None,
    );
    let task = |i: usize| tasks["items"][i]["task_id"].as_str().unwrap().to_string();
    let call = |attended: bool| {
        json!({
            "at": w.now.get() - Duration::minutes(10), "answered": true, "identity_confirmed": true,
            "attended": attended, "dates_match": attended, "place_match": attended,
            "teacher_match": attended, "fee_asked": false, "notes": if attended { "" } else { "学员称未参加培训" },
        })
    };
    w.expect(
        200,
        Method::POST,
        &format!("/api/v1/spot-checks/tasks/{}/calls", task(0)),
        Some(&inspector),
        Some(call(true)),
        Some("call-0"),
    );
    let denied = w.expect(
        200,
        Method::POST,
        &format!("/api/v1/spot-checks/tasks/{}/calls", task(1)),
        Some(&inspector),
        Some(call(false)),
        None,
    );
    let finding = denied["finding"]["id"].as_str().unwrap().to_string();
    w.expect(
        200,
        Method::POST,
        &format!("/api/v1/spot-checks/tasks/{}/calls", task(2)),
        Some(&inspector),
        Some(json!({"at": w.now.get() - Duration::minutes(5), "answered": false})),
        None,
    );
    w.expect(
        409,
        Method::POST,
        &format!("/api/v1/spot-checks/tasks/{}/calls", task(0)),
        Some(&inspector),
        Some(call(false)),
        None,
    );
    let officer = w.token(Role::DistrictOfficer, "officer-1");
    let inst = w.token(Role::Institution, "inst-1");
    w.expect(
        200,
        Method::GET,
        "/api/v1/spot-checks/tasks/mine",
        Some(&inspector),
        None,
        None,
    );
    w.expect(
        200,
        Method::GET,
        "/api/v1/spot-checks/findings?limit=10",
        Some(&officer),
        None,
        None,
    );
    w.expect(
        200,
        Method::GET,
        &format!("/api/v1/spot-checks/findings/{finding}"),
        Some(&inst),
        None,
        None,
    );
    w.expect(
        200,
        Method::GET,
        &format!("/api/v1/spot-checks/classes/{id}/hold"),
        Some(&inst),
        None,
        None,
    );
    w.expect(
        200,
        Method::GET,
        "/api/v1/spot-checks/proposals",
        Some(&bureau),
        None,
        None,
    );
    w.expect(
        403,
        Method::GET,
        "/api/v1/spot-checks/proposals",
        Some(&inst),
        None,
        None,
    );

    // The class ends and is assessed; settlement waits for the open call
    // (VO-CALLS), then for the finding (SC-DENY), and is never by the officer
    // who recorded the assessment (VO-4EYES).
    w.now.set(cst("2022-06-28"));
    let officer = w.token(Role::DistrictOfficer, "officer-1");
    let settler = w.token(Role::DistrictOfficer, "officer-2");
    w.expect(
        200,
        Method::POST,
        &format!("/api/v1/classes/{id}/checks"),
        Some(&officer),
        Some(json!({"kind": "post_assessment", "officer": "李科员", "at": w.now.get() - Duration::hours(1), "result": "passed"})),
        None,
    );
    let settle = json!({"certificate_no": "Y530000220600001"});
    w.expect(
        409,
        Method::POST,
        &format!("/api/v1/vouchers/{}/settle", code(0)),
        Some(&settler),
        Some(settle.clone()),
        None,
    );
    let inspector = w.token(Role::Inspector, "insp-a");
    for minutes in [30, 20] {
        w.expect(
            200,
            Method::POST,
            &format!("/api/v1/spot-checks/tasks/{}/calls", task(2)),
            Some(&inspector),
            Some(json!({"at": w.now.get() - Duration::minutes(minutes), "answered": false})),
            None,
        );
    }
    for i in 3..tasks["items"].as_array().unwrap().len() {
        w.expect(
            200,
            Method::POST,
            &format!("/api/v1/spot-checks/tasks/{}/calls", task(i)),
            Some(&inspector),
            Some(call(true)),
            None,
        );
    }
    let assessor = officer;
    let officer = settler;
    w.expect(
        409,
        Method::POST,
        &format!("/api/v1/vouchers/{}/settle", code(0)),
        Some(&officer),
        Some(settle.clone()),
        None,
    );
    w.expect(
        200,
        Method::POST,
        &format!("/api/v1/spot-checks/findings/{finding}/rectification"),
        Some(&officer),
        Some(json!({"notes": "约谈培训机构负责人，核实考勤并补正记录"})),
        Some("rectify-1"),
    );
    w.expect(
        403,
        Method::POST,
        &format!("/api/v1/vouchers/{}/settle", code(0)),
        Some(&assessor),
        Some(settle.clone()),
        None,
    );
    w.expect(
        200,
        Method::POST,
        &format!("/api/v1/vouchers/{}/settle", code(0)),
        Some(&officer),
        Some(settle.clone()),
        Some("settle-1"),
    );
    w.expect(
        409,
        Method::POST,
        &format!("/api/v1/vouchers/{}/settle", code(0)),
        Some(&officer),
        Some(settle),
        None,
    );
    w.expect(
        200,
        Method::POST,
        "/api/v1/vouchers/sweep",
        Some(&w.token(Role::Scheduler, "cron")),
        Some(json!({"limit": 200})),
        None,
    );

    // Archive, the trainee's own view, progress.
    let person = store::pii::PiiHasher::new(HMAC).person_ref(&app.roster[0].id_number);
    w.expect(
        200,
        Method::GET,
        &format!("/api/v1/people/{person}/archive"),
        Some(&officer),
        None,
        None,
    );
    let trainee = w.trainee(&person);
    w.expect(
        200,
        Method::GET,
        "/api/v1/me/vouchers",
        Some(&trainee),
        None,
        None,
    );
    w.expect(
        200,
        Method::GET,
        "/api/v1/me/archive",
        Some(&trainee),
        None,
        None,
    );
    w.expect(
        200,
        Method::GET,
        &format!("/api/v1/vouchers/{}", code(0)),
        Some(&trainee),
        None,
        None,
    );
    w.expect(
        200,
        Method::GET,
        "/api/v1/stats/progress?year=2022",
        Some(&w.token(Role::BureauAdmin, "bureau-1")),
        None,
        None,
    );

    // WeChat: login, bind, login again.
    w.expect(
        422,
        Method::POST,
        "/api/v1/wechat/login",
        None,
        Some(json!({"code": "used-code"})),
        None,
    );
    let unbound = w.expect(
        200,
        Method::POST,
        "/api/v1/wechat/login",
        None,
        Some(json!({"code": "good-code"})),
        None,
    );
    let ticket = unbound["bind_ticket"].as_str().unwrap().to_string();
    // The phone numbers WeChat verifies for two getPhoneNumber codes.
    w.wechat
        .add_phone("phone-of-line-1", app.roster[1].mobile.expose());
    w.wechat
        .add_phone("phone-of-line-0", app.roster[0].mobile.expose());
    w.expect(
        403,
        Method::POST,
        "/api/v1/wechat/bind",
        None,
        Some(json!({"bind_ticket": ticket, "id_number": app.roster[0].id_number.expose(), "phone_code": "phone-of-line-1"})),
        None,
    );
    w.expect(
        200,
        Method::POST,
        "/api/v1/wechat/bind",
        None,
        Some(json!({"bind_ticket": ticket, "id_number": app.roster[0].id_number.expose(), "phone_code": "phone-of-line-0"})),
        Some("bind-1"),
    );
    w.expect(
        200,
        Method::POST,
        "/api/v1/wechat/login",
        None,
        Some(json!({"code": "good-code"})),
        None,
    );

    // The audit trail.
    let bureau = w.token(Role::BureauAdmin, "bureau-1");
    w.expect(
        404,
        Method::GET,
        "/api/v1/audit/checkpoint",
        Some(&bureau),
        None,
        None,
    );
    w.expect(
        200,
        Method::POST,
        "/api/v1/audit/integrate",
        Some(&w.token(Role::Scheduler, "scheduler-1")),
        None,
        None,
    );
    w.expect(
        200,
        Method::GET,
        "/api/v1/audit/key",
        Some(&bureau),
        None,
        None,
    );
    w.expect(
        200,
        Method::GET,
        "/api/v1/audit/proofs/inclusion?seq=2",
        Some(&bureau),
        None,
        None,
    );
    w.expect(
        200,
        Method::GET,
        "/api/v1/audit/proofs/consistency?from=1",
        Some(&bureau),
        None,
        None,
    );
    w.expect(
        200,
        Method::GET,
        "/api/v1/audit/verify?pages=16",
        Some(&bureau),
        None,
        None,
    );
    w.expect(
        200,
        Method::GET,
        "/api/v1/audit/verify?cursor=vouchers.0.0",
        Some(&bureau),
        None,
        None,
    );
    w.expect(
        200,
        Method::GET,
        &format!("/api/v1/audit?entity=class:{id}&limit=5"),
        Some(&bureau),
        None,
        None,
    );
    w.expect(422, Method::GET, "/api/v1/audit", Some(&bureau), None, None);

    // Key rotation, one page.
    w.expect(
        422,
        Method::POST,
        "/api/v1/admin/key-rotation",
        Some(&bureau),
        Some(json!({"limit": 0})),
        None,
    );
    let page = w.expect(
        200,
        Method::POST,
        "/api/v1/admin/key-rotation",
        Some(&bureau),
        Some(json!({"limit": 5000})),
        None,
    );
    assert_eq!(page["done"], json!(true));

    // The policy data (issue 16): read, import, and one change of each kind.
    w.expect(
        200,
        Method::GET,
        "/api/v1/admin/policy",
        Some(&officer),
        None,
        None,
    );
    w.expect(
        200,
        Method::POST,
        "/api/v1/admin/policy/import",
        Some(&bureau),
        Some(json!({})),
        Some("import-1"),
    );
    let occupation = serde_json::to_value(
        policy::Policy::shipped()
            .catalogue()
            .occupation(&policy::ids::OccupationCode::parse("4-10-01-05").unwrap())
            .unwrap(),
    )
    .unwrap();
    let mut raised = occupation.clone();
    raised["min_hours"]["5"] = json!(130);
    let project = serde_json::to_value(
        policy::Policy::shipped()
            .catalogue()
            .project("syb")
            .unwrap(),
    )
    .unwrap();
    let mut project = project;
    project["min_hours"] = json!(88);
    for (method, path, body) in [
        (
            Method::POST,
            "/api/v1/admin/policy/parameters/co_min_class_hours/values",
            json!({"since": "2099-01-01", "value": 130, "reference": "通知", "reason": "提高培训质量"}),
        ),
        (
            Method::PUT,
            "/api/v1/admin/policy/occupations/4-10-01-05",
            json!({"occupation": raised}),
        ),
        (
            Method::PUT,
            "/api/v1/admin/policy/projects/syb",
            json!({"project": project}),
        ),
        (
            Method::POST,
            "/api/v1/admin/policy/subsidies",
            json!({"subsidy": {"occupation": "4-10-01-05", "level": 5, "since": "2099-01-01", "amount_fen": 150000, "fund": "employment_subsidy", "reference": "云南省补贴标准"}}),
        ),
        (
            Method::PUT,
            "/api/v1/admin/policy/calendar/2027",
            json!({"notice": "国务院办公厅通知", "days_off": ["2027-01-01"], "working_weekends": []}),
        ),
        (
            Method::PUT,
            "/api/v1/admin/policy/targets",
            json!({"district": [{"year": 2022, "district": "530102", "trainings": 12000, "certificates": 8000, "reference": "附件"}]}),
        ),
        (
            Method::PUT,
            "/api/v1/admin/policy/topics",
            json!({"required": ["law_and_regulations", "drug_control", "hiv_prevention", "smartphone_use", "putonghua"], "reference": "二(五)，测试"}),
        ),
    ] {
        w.expect(201, method, path, Some(&bureau), Some(body), None);
    }
    w.expect(
        200,
        Method::PUT,
        "/api/v1/admin/policy/calendar/2027",
        Some(&bureau),
        Some(json!({"notice": "国务院办公厅通知", "days_off": ["2027-01-01"], "working_weekends": []})),
        None,
    );
    w.expect(
        409,
        Method::POST,
        "/api/v1/admin/policy/parameters/co_min_class_hours/values",
        Some(&bureau),
        Some(json!({"since": "2022-01-01", "value": 130, "reference": "通知"})),
        None,
    );
    w.expect(
        422,
        Method::POST,
        "/api/v1/admin/policy/subsidies",
        Some(&bureau),
        Some(json!({"subsidy": {"occupation": "4-10-01-05", "level": 5, "since": "2099-01-01", "amount_fen": -1, "fund": "employment_subsidy", "reference": "r"}})),
        None,
    );
    w.expect(
        404,
        Method::POST,
        "/api/v1/admin/policy/parameters/no_such/values",
        Some(&bureau),
        Some(json!({"since": "2099-01-01", "value": 1, "reference": "r"})),
        None,
    );
    w.expect(
        403,
        Method::PUT,
        "/api/v1/admin/policy/topics",
        Some(&officer),
        Some(json!({"required": ["drug_control"], "reference": "r"})),
        None,
    );
    w.expect(
        200,
        Method::GET,
        "/api/v1/admin/policy/versions?limit=2",
        Some(&officer),
        None,
        None,
    );
    w.expect(
        200,
        Method::GET,
        "/api/v1/admin/policy/versions/2",
        Some(&bureau),
        None,
        None,
    );
    w.expect(
        404,
        Method::GET,
        "/api/v1/admin/policy/versions/999",
        Some(&bureau),
        None,
        None,
    );

    // The roles of every operation: a role not in `x-roles` is refused, a role
    // in it is never refused for its role (it may still be for its binding).
    let doc = document();
    let ids = BTreeMap::from([
        ("classes", id.clone()),
        ("runs", "2022-06-20".to_string()),
        ("tasks", task(1)),
        ("findings", finding.clone()),
        ("vouchers", code(0)),
        ("people", person.clone()),
        ("registry", "trainers".to_string()),
        ("trainers", "YN-T-0001".to_string()),
        ("inspectors", "insp-a".to_string()),
        ("versions", "1".to_string()),
        ("parameters", "co_min_class_hours".to_string()),
        ("occupations", "4-10-01-05".to_string()),
        ("projects", "syb".to_string()),
        ("calendar", "2027".to_string()),
    ]);
    let all_roles = [
        Role::Institution,
        Role::DistrictOfficer,
        Role::BureauAdmin,
        Role::Inspector,
        Role::Scheduler,
        Role::Trainee,
        Role::SocialSecurity,
    ];
    for (method, path) in documented(&doc) {
        let roles: Vec<&str> = doc["paths"][&path][method.to_lowercase()]["x-roles"]
            .as_array()
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if roles.is_empty() {
            continue;
        }
        let uri = fill(&path, &ids);
        for role in all_roles {
            let token = match role {
                Role::Trainee => w.trainee(&person),
                Role::Inspector => w.token(role, "insp-a"),
                _ => w.token(role, &format!("{}-1", role.id())),
            };
            let body = (method != "GET").then(|| json!({}));
            let m = Method::from_bytes(method.as_bytes()).unwrap();
            let (s, v) = w.call(m, &uri, Some(&token), body, None);
            let refused_for_role = s == 403
                && v["detail"] == json!(format!("role {} may not use this route", role.id()));
            if roles.contains(&role.id()) {
                assert!(
                    !refused_for_role,
                    "{method} {uri}: x-roles lists {} but it is refused",
                    role.id()
                );
            } else {
                assert_eq!(
                    s,
                    403,
                    "{method} {uri}: {} is not in x-roles but answered {s}",
                    role.id()
                );
            }
        }
    }

    let log = w.log.borrow().clone();
    if let Ok(path) = std::env::var("OPENAPI_DUMP") {
        std::fs::write(path, serde_json::to_vec_pretty(&log).unwrap()).unwrap();
    }
    log
}

/// A documented path with its parameters filled from `ids` (keyed by the segment before each).
fn fill(path: &str, ids: &BTreeMap<&str, String>) -> String {
    let segments: Vec<&str> = path.split('/').collect();
    segments
        .iter()
        .enumerate()
        .map(|(i, s)| {
            if !is_param(s) {
                return s.to_string();
            }
            let before = if i > 0 { segments[i - 1] } else { "" };
            let key = if is_param(before) && i > 1 {
                // `/registry/{kind}/{id}`: the id of the kind filled before.
                ids["registry"].as_str()
            } else {
                before
            };
            ids.get(key)
                .unwrap_or_else(|| panic!("no value for {s} in {path}"))
                .clone()
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The documented path template that `path` matches; literal segments win over parameters.
fn template_of<'a>(paths: &'a BTreeSet<String>, path: &str) -> Option<&'a String> {
    let have: Vec<&str> = path.split('/').collect();
    paths
        .iter()
        .filter(|t| {
            let want: Vec<&str> = t.split('/').collect();
            want.len() == have.len() && want.iter().zip(&have).all(|(w, h)| is_param(w) || w == h)
        })
        .max_by_key(|t| t.split('/').filter(|s| !is_param(s)).count())
}

#[test]
fn real_responses_of_every_route_validate_against_the_documented_schemas() {
    let doc = document();
    let paths: BTreeSet<String> = documented(&doc).into_iter().map(|(_, p)| p).collect();
    let log = worked_flow();
    let mut failures = Vec::new();
    let mut exercised = BTreeSet::new();
    for x in &log {
        let name = format!("{} {} → {}", x.method, x.path, x.status);
        let Some(template) = template_of(&paths, &x.path) else {
            failures.push(format!("{name}: no documented path"));
            continue;
        };
        let op = &doc["paths"][template][x.method.to_lowercase()];
        if op.is_null() {
            if x.status != 405 {
                failures.push(format!("{name}: method not documented"));
            }
            continue;
        }
        exercised.insert((x.method.clone(), template.clone(), x.status));
        let responses = &op["responses"];
        let Some(response) = responses
            .get(x.status.to_string())
            .or_else(|| responses.get(format!("{}XX", x.status / 100)))
            .or_else(|| responses.get("default"))
        else {
            failures.push(format!("{name}: status not documented"));
            continue;
        };
        let response = resolve(&doc, response);
        let media = x.content_type.split(';').next().unwrap_or("").trim();
        let Some(content) = response["content"].get(media) else {
            failures.push(format!("{name}: media type {media} not documented"));
            continue;
        };
        if let Err(errs) = validate(&doc, &content["schema"], &x.body) {
            failures.push(format!(
                "{name}:\n    {}\n    body: {}",
                errs.join("\n    "),
                x.body
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    // Every documented operation answered successfully at least once in the flow.
    let ok: BTreeSet<(String, String)> = exercised
        .iter()
        .filter(|(_, _, s)| (200..300).contains(s))
        .map(|(m, p, _)| (m.clone(), p.clone()))
        .collect();
    let missing: Vec<String> = documented(&doc)
        .difference(&ok)
        .map(|(m, p)| format!("{m} {p}"))
        .collect();
    assert!(missing.is_empty(), "not exercised: {missing:?}");
    // And the named ones, explicitly.
    for (m, p) in [
        ("POST", "/api/v1/classes"),
        ("GET", "/api/v1/classes/{id}"),
        ("POST", "/api/v1/classes/validate"),
        ("POST", "/api/v1/classes/{id}/vouchers"),
        ("POST", "/api/v1/spot-checks/runs"),
    ] {
        assert!(ok.contains(&(m.to_string(), p.to_string())), "{m} {p}");
    }
}

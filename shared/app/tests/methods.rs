//! RFC 9110: a 405 carries `Allow` listing exactly the methods the path is
//! served with, on every route of every router (HEAD wherever GET is).

use http::Method;
use std::collections::{BTreeMap, BTreeSet};
use web::router::Router;

/// A concrete path for a declared one: each `{param}` filled with a sample.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|seg| if seg.starts_with('{') { "X1" } else { seg })
        .collect::<Vec<_>>()
        .join("/")
}

/// Sends every method a path is not served with; returns how many were checked.
fn check_router<T: Copy>(router: &Router<T>) -> usize {
    let mut by_path: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (m, p) in router.declared() {
        by_path.entry(p).or_default().insert(m.to_string());
    }
    let mut checked = 0;
    for (path, methods) in by_path {
        let mut want = methods.clone();
        if want.contains("GET") {
            want.insert("HEAD".into());
        }
        let want = want.into_iter().collect::<Vec<_>>().join(", ");
        for m in ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"] {
            if methods.contains(m) {
                continue;
            }
            let method = Method::from_bytes(m.as_bytes()).unwrap();
            let Err(problem) = router.at(&method, &concrete(&path)) else {
                panic!("{m} {path} was served");
            };
            assert_eq!(
                (problem.status, problem.code.as_str()),
                (405, "method_not_allowed"),
                "{m} {path}"
            );
            let res = problem.into_response();
            assert_eq!(
                res.headers()
                    .get(http::header::ALLOW)
                    .map(|v| v.to_str().unwrap()),
                Some(want.as_str()),
                "{m} {path}"
            );
            checked += 1;
        }
    }
    checked
}

#[test]
fn every_route_answers_405_with_an_allow_header_naming_exactly_its_methods() {
    let checked = check_router(&app::class_opening::router())
        + check_router(&app::audit::router())
        + check_router(&app::admin::router())
        + check_router(&app::policy_admin::router())
        + check_router(&app::vouchers::router())
        + check_router(&app::spot_checks::router());
    assert!(checked > 100, "only {checked} method × route pairs checked");
}

//! Spin's HTTP routing: the same route syntax and precedence as Spin 4.0.2,
//! which builds on the `routefinder` crate (the version Spin pins). Exact
//! routes beat wildcards, longer prefixes beat shorter ones, literal segments
//! beat `:name` segments; a later duplicate of the same route wins.

use crate::manifest::HttpTrigger;
use anyhow::{Result, anyhow};
use std::collections::HashMap;

#[derive(Clone, Debug)]
struct Handler {
    component: String,
    /// The route with the base (`/`) applied and any trailing `/` removed.
    based_route: String,
    /// The route as written in the manifest.
    raw_route: String,
}

/// Routes paths to components.
pub struct Router {
    inner: routefinder::Router<Handler>,
}

/// The outcome of routing one path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteMatch {
    pub component: String,
    /// `spin-matched-route`
    pub based_route: String,
    /// `spin-raw-component-route`
    pub raw_route: String,
    /// `spin-component-route`: the raw route without a trailing `/...`.
    pub component_route: String,
    /// `spin-path-info`: the part of the path the trailing wildcard matched.
    pub path_info: String,
    /// `:name` segments and their values.
    pub named: HashMap<String, String>,
}

impl Router {
    /// Builds the router from triggers in declaration order.
    pub fn build(triggers: &[HttpTrigger]) -> Result<Router> {
        // Later duplicates of the same raw route replace earlier ones, keeping
        // the first one's position (as an insertion-ordered map does).
        let mut entries: Vec<Handler> = Vec::new();
        for t in triggers {
            let handler = Handler {
                component: t.component.clone(),
                based_route: sanitize_with_base("/", &t.route),
                raw_route: t.route.clone(),
            };
            match entries.iter_mut().find(|e| e.raw_route == t.route) {
                Some(existing) => *existing = handler,
                None => entries.push(handler),
            }
        }
        let mut inner = routefinder::Router::new();
        for h in entries {
            let spec = if let Some(prefix) = h.based_route.strip_suffix("/...") {
                format!("{prefix}/*")
            } else {
                h.based_route.clone()
            };
            let route = h.raw_route.clone();
            let component = h.component.clone();
            inner
                .add(spec.as_str(), h)
                .map_err(|e| anyhow!("route {route:?} of component {component:?}: {e}"))?;
        }
        Ok(Router { inner })
    }

    /// Finds the component for a request path (without the query).
    pub fn route(&self, path: &str) -> Option<RouteMatch> {
        let m = self.inner.best_match(path)?;
        let h = m.handler();
        let captures = m.captures();
        let named = captures
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let path_info = captures
            .wildcard()
            .map(|s| match (s.is_empty(), path.ends_with('/')) {
                (true, false) => s.to_string(),
                (true, true) => "/".to_string(),
                (false, false) => format!("/{s}"),
                (false, true) => format!("/{s}/"),
            })
            .unwrap_or_default();
        Some(RouteMatch {
            component: h.component.clone(),
            based_route: h.based_route.clone(),
            raw_route: h.raw_route.clone(),
            component_route: h
                .raw_route
                .strip_suffix("/...")
                .unwrap_or(&h.raw_route)
                .to_string(),
            path_info,
            named,
        })
    }
}

fn sanitize_with_base(base: &str, route: &str) -> String {
    let route = if route.starts_with('/') {
        route.to_string()
    } else {
        format!("/{route}")
    };
    let strip = |s: &str| s.strip_suffix('/').unwrap_or(s).to_string();
    format!("{}{}", strip(base), strip(&route))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router(routes: &[(&str, &str)]) -> Router {
        let triggers: Vec<HttpTrigger> = routes
            .iter()
            .map(|(c, r)| HttpTrigger {
                route: r.to_string(),
                component: c.to_string(),
            })
            .collect();
        Router::build(&triggers).unwrap()
    }

    fn target(r: &Router, path: &str) -> String {
        r.route(path).map(|m| m.component).unwrap_or_default()
    }

    #[test]
    fn exact_beats_wildcard_and_longest_prefix_wins() {
        let r = router(&[
            ("all", "/..."),
            ("one", "/one/..."),
            ("onetwo", "/one/two/..."),
            ("exact", "/one/two"),
        ]);
        assert_eq!(target(&r, "/one/two/three"), "onetwo");
        assert_eq!(target(&r, "/one/two"), "exact");
        assert_eq!(target(&r, "/one/x"), "one");
        assert_eq!(target(&r, "/elsewhere"), "all");
        assert_eq!(target(&r, "/"), "all");
    }

    #[test]
    fn literal_segments_beat_named_segments() {
        let r = router(&[
            ("classes", "/api/v1/classes/..."),
            ("vouchers", "/api/v1/classes/:id/vouchers"),
            ("health", "/api/v1/health"),
        ]);
        let m = r.route("/api/v1/classes/KM-1/vouchers").unwrap();
        assert_eq!(m.component, "vouchers");
        assert_eq!(m.named["id"], "KM-1");
        assert_eq!(target(&r, "/api/v1/classes/KM-1"), "classes");
        assert_eq!(target(&r, "/api/v1/classes/KM-1/vouchers/x"), "classes");
        assert_eq!(target(&r, "/api/v1/health"), "health");
        assert_eq!(target(&r, "/api/v1/healthz"), "");
    }

    #[test]
    fn path_info_keeps_the_trailing_slash() {
        let r = router(&[("c", "/test/...")]);
        assert_eq!(r.route("/test").unwrap().path_info, "");
        assert_eq!(r.route("/test/").unwrap().path_info, "/");
        assert_eq!(r.route("/test/a/b").unwrap().path_info, "/a/b");
        assert_eq!(r.route("/test/a/").unwrap().path_info, "/a/");
        let m = r.route("/test/a").unwrap();
        assert_eq!(m.based_route, "/test/...");
        assert_eq!(m.raw_route, "/test/...");
        assert_eq!(m.component_route, "/test");
    }

    #[test]
    fn a_later_duplicate_route_wins() {
        let r = router(&[("first", "/foo"), ("second", "/foo")]);
        assert_eq!(target(&r, "/foo"), "second");
    }
}

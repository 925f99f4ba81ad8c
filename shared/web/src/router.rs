//! Method and path matching for a component (spin-sdk 6 has no router).
//!
//! Paths use `{name}` parameters. A path that matches with another method is
//! a 405, a path that matches nothing a 404, both as problem details.

use crate::problem::Problem;
use http::Method;
use std::collections::BTreeMap;

/// A component's routes to handler ids of type `T`.
///
/// Built once per request (each request is a new instance), so adding is
/// cheap and the matcher is made once, at the first match.
pub struct Router<T: Copy> {
    inner: std::sync::OnceLock<matchit::Router<Vec<(Method, T)>>>,
    paths: Vec<(String, Vec<(Method, T)>)>,
}

/// A matched route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matched<T> {
    /// Handler id.
    pub route: T,
    /// Path parameters.
    pub params: BTreeMap<String, String>,
}

impl<T: Copy> Default for Router<T> {
    fn default() -> Self {
        Self {
            inner: std::sync::OnceLock::new(),
            paths: Vec::new(),
        }
    }
}

impl<T: Copy> Router<T> {
    /// An empty router.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `method path → route`.
    pub fn add(mut self, method: Method, path: &str, route: T) -> Self {
        match self.paths.iter_mut().find(|(p, _)| p == path) {
            Some((_, list)) => list.push((method, route)),
            None => self.paths.push((path.to_string(), vec![(method, route)])),
        }
        self.inner = std::sync::OnceLock::new();
        self
    }

    fn matcher(&self) -> &matchit::Router<Vec<(Method, T)>> {
        self.inner.get_or_init(|| {
            let mut inner = matchit::Router::new();
            for (p, list) in &self.paths {
                inner
                    .insert(p.clone(), list.clone())
                    .expect("routes do not conflict");
            }
            inner
        })
    }

    /// Every `(method, path)` declared, for documentation coverage tests.
    pub fn declared(&self) -> Vec<(Method, String)> {
        self.paths
            .iter()
            .flat_map(|(p, l)| l.iter().map(move |(m, _)| (m.clone(), p.clone())))
            .collect()
    }

    /// Matches a request.
    pub fn at(&self, method: &Method, path: &str) -> Result<Matched<T>, Problem> {
        let path = if path.len() > 1 {
            path.trim_end_matches('/')
        } else {
            path
        };
        let m = self
            .matcher()
            .at(path)
            .map_err(|_| Problem::not_found("no such route"))?;
        let route = m
            .value
            .iter()
            .find(|(meth, _)| meth == method || (method == Method::HEAD && meth == Method::GET))
            .map(|(_, r)| *r)
            .ok_or_else(|| {
                Problem::method_not_allowed().header(http::header::ALLOW, allow(m.value))
            })?;
        let params = m
            .params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Ok(Matched { route, params })
    }
}

/// The `Allow` header of a path served with `methods` (RFC 9110 §10.2.1):
/// each method once, HEAD wherever GET is (the router answers it).
fn allow<T>(methods: &[(Method, T)]) -> String {
    let mut names: Vec<&str> = methods.iter().map(|(m, _)| m.as_str()).collect();
    if names.contains(&"GET") {
        names.push("HEAD");
    }
    names.sort_unstable();
    names.dedup();
    names.join(", ")
}

/// Decodes `%XX` and `+` in a query component.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = |b: u8| (b as char).to_digit(16);
                match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The query parameters of a request (last value wins).
pub fn query(req: &crate::Request) -> BTreeMap<String, String> {
    req.uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum R {
        List,
        File,
        Get,
    }

    #[test]
    fn matches_methods_and_parameters() {
        let r = Router::new()
            .add(Method::GET, "/api/v1/classes", R::List)
            .add(Method::POST, "/api/v1/classes", R::File)
            .add(Method::GET, "/api/v1/classes/{id}", R::Get);
        assert_eq!(
            r.at(&Method::POST, "/api/v1/classes").unwrap().route,
            R::File
        );
        let m = r
            .at(&Method::GET, "/api/v1/classes/KM-2022-000001/")
            .unwrap();
        assert_eq!(
            (m.route, m.params["id"].as_str()),
            (R::Get, "KM-2022-000001")
        );
        assert_eq!(
            r.at(&Method::DELETE, "/api/v1/classes").unwrap_err().status,
            405
        );
        assert_eq!(
            r.at(&Method::GET, "/api/v1/nothing").unwrap_err().status,
            404
        );
        assert_eq!(r.declared().len(), 3);
    }

    #[test]
    fn decodes_queries() {
        assert_eq!(percent_decode("a%20b+c"), "a b c");
        assert_eq!(percent_decode("%E4%BA%94"), "五");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%E4%"), "\u{FFFD}%");
        assert_eq!(percent_decode("%五五"), "%五五");
    }
}

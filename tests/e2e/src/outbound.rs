//! Outgoing HTTP from components: allowed only if the component's
//! `allowed_outbound_hosts` admits the URL (as Spin checks it) and, because
//! this is a test host, only to loopback addresses.

use anyhow::{Result, anyhow, bail};

/// One `allowed_outbound_hosts` entry: `scheme://host[:port]`, where scheme,
/// host and port may be `*`, host may be `*.domain`, port may be `a..b`.
#[derive(Debug, Clone, PartialEq)]
pub struct AllowedHost {
    scheme: String,
    host: String,
    port: PortRule,
}

#[derive(Debug, Clone, PartialEq)]
enum PortRule {
    Any,
    Default,
    Exact(u16),
    Range(u16, u16),
}

impl AllowedHost {
    pub fn parse(entry: &str) -> Result<AllowedHost> {
        let (scheme, rest) = entry
            .split_once("://")
            .ok_or_else(|| anyhow!("allowed_outbound_hosts entry {entry:?} has no scheme"))?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains('/') {
            bail!("allowed_outbound_hosts entry {entry:?} must not have a path");
        }
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || rest.starts_with('[') => (h, Some(p)),
            _ => (rest, None),
        };
        let port = match port {
            None => PortRule::Default,
            Some("*") => PortRule::Any,
            Some(p) => match p.split_once("..") {
                Some((a, b)) => PortRule::Range(a.parse()?, b.parse()?),
                None => PortRule::Exact(p.parse()?),
            },
        };
        Ok(AllowedHost {
            scheme: scheme.to_ascii_lowercase(),
            host: host.to_ascii_lowercase(),
            port,
        })
    }

    fn admits(&self, scheme: &str, host: &str, port: u16) -> bool {
        let scheme_ok = self.scheme == "*" || self.scheme == scheme;
        let host_ok = self.host == "*"
            || self.host == host
            || self
                .host
                .strip_prefix("*.")
                .is_some_and(|d| host.ends_with(&format!(".{d}")));
        let port_ok = match self.port {
            PortRule::Any => true,
            PortRule::Default => Some(port) == default_port(scheme),
            PortRule::Exact(p) => p == port,
            PortRule::Range(a, b) => (a..b).contains(&port),
        };
        scheme_ok && host_ok && port_ok
    }
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

/// True for 127.0.0.0/8, ::1 and `localhost`.
pub fn is_loopback(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    if h.eq_ignore_ascii_case("localhost") {
        return true;
    }
    h.parse::<std::net::IpAddr>()
        .map(|ip| ip.is_loopback())
        .unwrap_or(false)
}

/// Why a request may not leave the component, or `None` if it may.
pub fn refusal(allowed: &[AllowedHost], uri: &http::Uri) -> Option<String> {
    let scheme = uri.scheme_str().unwrap_or("http").to_ascii_lowercase();
    let Some(host) = uri.host() else {
        return Some(format!("{uri}: no host"));
    };
    let host = host.to_ascii_lowercase();
    let Some(port) = uri.port_u16().or_else(|| default_port(&scheme)) else {
        return Some(format!("{uri}: no port"));
    };
    if !is_loopback(&host) {
        return Some(format!("{uri}: the test host sends only to loopback"));
    }
    if !allowed.iter().any(|a| a.admits(&scheme, &host, port)) {
        return Some(format!("{uri}: not in allowed_outbound_hosts"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(entries: &[&str]) -> Vec<AllowedHost> {
        entries
            .iter()
            .map(|e| AllowedHost::parse(e).unwrap())
            .collect()
    }

    fn ok(a: &[AllowedHost], url: &str) -> bool {
        refusal(a, &url.parse().unwrap()).is_none()
    }

    #[test]
    fn only_listed_loopback_hosts_are_reachable() {
        let a = allowed(&["http://127.0.0.1:*", "https://localhost:8443"]);
        assert!(ok(&a, "http://127.0.0.1:1234/x"));
        assert!(!ok(&a, "https://127.0.0.1:1234/x"));
        assert!(ok(&a, "https://localhost:8443/"));
        assert!(!ok(&a, "https://localhost:8444/"));
        assert!(!ok(&[], "http://127.0.0.1:1234/"));
        let any = allowed(&["*://*:*"]);
        assert!(!ok(&any, "http://10.1.2.3/"));
        assert!(!ok(&any, "https://example.com/"));
        assert!(ok(&any, "http://[::1]:80/"));
    }

    #[test]
    fn entries_parse_like_spin_manifests() {
        let a = AllowedHost::parse("http://localhost").unwrap();
        assert!(a.admits("http", "localhost", 80));
        assert!(!a.admits("http", "localhost", 8080));
        let r = AllowedHost::parse("http://127.0.0.1:8000..8010").unwrap();
        assert!(r.admits("http", "127.0.0.1", 8005));
        assert!(!r.admits("http", "127.0.0.1", 8010));
        let w = AllowedHost::parse("https://*.example.com").unwrap();
        assert!(w.admits("https", "api.example.com", 443));
        assert!(AllowedHost::parse("127.0.0.1").is_err());
        assert!(AllowedHost::parse("http://h/path").is_err());
    }
}

//! A private `redis-server` for one test: a free loopback port, a temp
//! directory, no persistence to disk (`--save "" --appendonly no`), stopped
//! when dropped. Data lives as long as the server runs, so a host restarted
//! against it finds its data again, as replicas sharing one Redis would.
//!
//! `redis-server` comes from Debian's `redis-server` package (`.ci/run`
//! installs it). Without it, [`RedisServer::start_or_skip`] fails the test
//! when `CI=true` and otherwise prints a notice and lets the test skip.

use anyhow::{Context, Result, anyhow, bail};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// A running `redis-server` child process.
pub struct RedisServer {
    child: Child,
    port: u16,
    dir: TempDir,
}

/// The program started, overridable for a redis-server outside `PATH`.
fn program() -> String {
    std::env::var("E2E_REDIS_SERVER").unwrap_or_else(|_| "redis-server".into())
}

/// Whether `redis-server` can be run here.
pub fn installed() -> bool {
    Command::new(program())
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Without `redis-server`: a failure message under CI (`CI=true` or `1`),
/// else a notice that the test is skipped.
fn when_missing(test: &str, ci: Option<&str>) -> Result<String, String> {
    let how = "install Debian's redis-server package \
               (apt-get install -y redis-server; .ci/run does this)";
    if matches!(ci, Some("true" | "1")) {
        Err(format!(
            "{test}: redis-server is not installed and CI=true: {how}"
        ))
    } else {
        Ok(format!(
            "SKIPPED {test}: redis-server is not installed; {how}"
        ))
    }
}

impl RedisServer {
    /// Starts a server, or — if `redis-server` is not installed — panics when
    /// `CI=true` and returns `None` after printing a notice otherwise.
    pub fn start_or_skip(test: &str) -> Option<RedisServer> {
        if !installed() {
            match when_missing(test, std::env::var("CI").ok().as_deref()) {
                Err(failure) => panic!("{failure}"),
                Ok(notice) => {
                    eprintln!("{notice}");
                    return None;
                }
            }
        }
        Some(RedisServer::start().expect("redis-server starts"))
    }

    /// Starts a server on a free loopback port and waits until it answers.
    pub fn start() -> Result<RedisServer> {
        let mut last = None;
        // A port found free can be taken before the server binds it: retry.
        for _ in 0..5 {
            match RedisServer::try_start() {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| anyhow!("redis-server did not start")))
    }

    fn try_start() -> Result<RedisServer> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let dir = tempfile::Builder::new().prefix("e2e-redis-").tempdir()?;
        let log = std::fs::File::create(dir.path().join("redis.log"))?;
        let child = Command::new(program())
            .args(["--port", &port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .arg("--dir")
            .arg(dir.path())
            .args(["--daemonize", "no"])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("running {}", program()))?;
        let mut server = RedisServer { child, port, dir };
        server.wait_ready()?;
        Ok(server)
    }

    fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let client = redis::Client::open(self.url())?;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "redis-server exited ({status}) on port {}: {}",
                    self.port,
                    self.log()
                );
            }
            let pong = client
                .get_connection_with_timeout(Duration::from_millis(500))
                .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c));
            if pong.is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "redis-server on port {} did not answer PING: {}",
                    self.port,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `redis://127.0.0.1:<port>/`
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's working directory (its log is `redis.log` there).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// What the server wrote to its log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("redis.log")).unwrap_or_default()
    }

    /// A connection for a test's own look at the data.
    pub fn connection(&self) -> Result<redis::Connection> {
        Ok(redis::Client::open(self.url())?.get_connection()?)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_redis_server_fails_under_ci_and_skips_with_a_notice_elsewhere() {
        let failure = when_missing("t", Some("true")).unwrap_err();
        assert!(failure.contains("not installed and CI=true"), "{failure}");
        assert!(when_missing("t", Some("1")).is_err());
        for ci in [None, Some("false"), Some("")] {
            let notice = when_missing("t", ci).unwrap();
            assert!(notice.starts_with("SKIPPED t:"), "{notice}");
        }
    }

    #[test]
    fn a_private_server_answers_on_loopback_keeps_data_while_it_runs_and_stops_on_drop() {
        let Some(server) = RedisServer::start_or_skip("redis_server lifecycle") else {
            return;
        };
        let mut conn = server.connection().unwrap();
        redis::cmd("SET").arg("k").arg("v").exec(&mut conn).unwrap();
        let mut again = server.connection().unwrap();
        let v: String = redis::cmd("GET").arg("k").query(&mut again).unwrap();
        assert_eq!(v, "v");
        let (port, dir) = (server.port(), server.dir().to_path_buf());
        drop(server);
        assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
        assert!(!dir.exists(), "the temp dir is removed");
    }
}

//! End-to-end test host: a test double of the Spin 4.0.2 platform.
//!
//! It runs the built `.wasm` components of `spin.toml` (and the harness's own
//! `fixtures.toml`) as Spin would: wasmtime 44 with the WASIp3 HTTP handler,
//! Spin's routing and `spin-*` headers, `spin:key-value` and `wasi:keyvalue`
//! over a SQLite file (or a Redis server, see [`kv_redis`]), Spin variables,
//! and outgoing HTTP to loopback only.
//! Nothing in the product depends on it.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use e2e::{Client, Host, HostConfig};
//! let dir = tempfile::tempdir()?;
//! let host = Host::start(
//!     HostConfig::fixtures_only(dir.path().join("kv.db")).variable("who", "tester"),
//! )?;
//! let reply = Client::new().get(&host.url("/hello")).await?;
//! assert_eq!(reply.text(), "hello");
//! let host = host.restart()?; // same key-value file, new port
//! println!("{}", host.logs());
//! # Ok(()) }
//! ```

mod client;
pub mod fake_wechat;
mod host;
pub mod kv;
pub mod kv_redis;
pub mod manifest;
pub mod outbound;
pub mod redis_server;
pub mod router;
mod spin_host;
pub mod stdio;
pub mod variables;
pub mod wasm_build;

pub use client::{Client, Reply};
pub use fake_wechat::FakeWeChat;
pub use host::{Host, HostConfig, KvReads, MemoryUse, Sockets};

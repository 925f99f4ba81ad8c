//! Log lines under concurrency. The host shares one output between all
//! instances, every write going on as it comes, as Spin 4.0.2's terminal and
//! `.spin/logs` do (`e2e::stdio`). The product writes each line with one
//! write (`platform::log_line`); a line written in pieces interleaves.

use crate::common;
use e2e::{Client, Host, HostConfig};
use std::collections::BTreeSet;

/// Whether `line` is one whole request line of the product: component,
/// method, path and status, nothing else.
fn whole_request_line(line: &str) -> bool {
    let parts: Vec<&str> = line.split(' ').collect();
    parts.len() == 4
        && ["class-opening", "policy-admin", "audit", "vouchers", "spot-checks"].contains(&parts[0])
        && ["GET", "POST", "PUT"].contains(&parts[1])
        && parts[2].starts_with("/api/v1/")
        && parts[3].len() == 3
        && parts[3].bytes().all(|b| b.is_ascii_digit())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn log_lines_of_ninety_concurrent_requests_to_three_components_never_interleave() {
    let dir = tempfile::tempdir().unwrap();
    let host = Host::start(common::product(dir.path().join("kv.db"))).unwrap();
    let paths = [
        "/api/v1/health",
        "/api/v1/vouchers/KM0000000000",
        "/api/v1/spot-checks/tasks/mine",
    ];
    let client = Client::new();
    let tasks: Vec<_> = (0..90)
        .map(|i| {
            let url = host.url(paths[i % 3]);
            let client = client.clone();
            tokio::spawn(async move { client.get(&url).await.unwrap().status })
        })
        .collect();
    for t in tasks {
        let status = t.await.unwrap();
        assert!([200, 401].contains(&status), "{status}");
    }
    let terminal = host.terminal();
    let lines: Vec<&str> = terminal.lines().collect();
    assert_eq!(lines.len(), 90, "one line per request:\n{terminal}");
    let bad: Vec<&&str> = lines.iter().filter(|l| !whole_request_line(l)).collect();
    assert!(bad.is_empty(), "lines broken by another request's: {bad:?}");
    let components: BTreeSet<&str> = lines.iter().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(components.len(), 3, "{components:?}");
}

/// The control: the same terminal does interleave lines written in pieces
/// with a host call between them, so the test above could fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lines_written_in_pieces_by_concurrent_requests_do_interleave_on_the_shared_output() {
    let dir = tempfile::tempdir().unwrap();
    let host = Host::start(HostConfig::fixtures_only(dir.path().join("kv.db"))).unwrap();
    let client = Client::new();
    let tasks: Vec<_> = (0..40)
        .map(|n| {
            let url = host.url(&format!("/probe/log-in-pieces?n={n}"));
            let client = client.clone();
            tokio::spawn(async move { client.get(&url).await.unwrap().status })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    let terminal = host.terminal();
    let broken = terminal
        .lines()
        .filter(|l| {
            let p: Vec<&str> = l.split(' ').collect();
            !(p.len() == 4 && p[0] == "kv-probe" && p[1] == "piece" && p[3] == "end")
        })
        .count();
    // Every piece arrived (nothing lost), and some lines were broken by others.
    assert_eq!(terminal.matches(" end\n").count(), 40, "{terminal}");
    assert!(broken > 0, "no line was interleaved:\n{terminal}");
}

//! The harness itself, proven through the `hello` and `kv-probe` fixtures.

use e2e::{Client, Host, HostConfig};
use std::collections::BTreeMap;
use tempfile::TempDir;

/// A host over fixtures.toml with a fresh key-value file in its own temp dir.
fn fixtures_host() -> (TempDir, Host) {
    let dir = tempfile::tempdir().unwrap();
    let host = Host::start(HostConfig::fixtures_only(
        dir.path().join("sqlite_key_value.db"),
    ))
    .expect("host starts");
    (dir, host)
}

/// The `spin-*` lines of an echo reply, as a map.
fn echoed(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn hello_answers_through_the_host() {
    let (_dir, host) = fixtures_host();
    let client = Client::new();
    let reply = client.get(&host.url("/hello")).await.unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(reply.text(), "hello");
    let reply = client.get(&host.url("/hello/any/path?x=1")).await.unwrap();
    assert_eq!(reply.text(), "hello");
    let reply = client.get(&host.url("/nowhere")).await.unwrap();
    assert_eq!(reply.status, 404);
    let reply = client
        .get(&host.url("/.well-known/spin/health"))
        .await
        .unwrap();
    assert_eq!((reply.status, reply.text().as_str()), (200, "OK"));
}

/// `HostConfig::tcp_nodelay`: off by default (Spin 4.0.2 leaves Nagle's
/// algorithm on for accepted connections), on when asked; the host reads
/// the option back from each accepted socket.
#[tokio::test(flavor = "multi_thread")]
async fn tcp_nodelay_is_off_as_in_spin_unless_asked_for() {
    for on in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let config = HostConfig::fixtures_only(dir.path().join("sqlite_key_value.db"));
        assert!(!config.tcp_nodelay, "the default is Spin 4.0.2's sockets");
        let host = Host::start(config.tcp_nodelay(on)).expect("host starts");
        for _ in 0..2 {
            // A new client: a new connection each time.
            let reply = Client::new().get(&host.url("/hello")).await.unwrap();
            assert_eq!(reply.text(), "hello");
        }
        let sockets = host.sockets();
        assert_eq!(sockets.accepted, 2, "tcp_nodelay({on})");
        assert_eq!(sockets.nodelay, if on { 2 } else { 0 }, "tcp_nodelay({on})");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn routes_follow_spin_precedence_and_headers() {
    let (_dir, host) = fixtures_host();
    let client = Client::new();

    // Wildcard route: path info is what the wildcard matched.
    let reply = client
        .get(&host.url("/probe/some/where/?q=1&r=2"))
        .await
        .unwrap();
    assert_eq!(reply.status, 200);
    let h = echoed(&reply.text());
    let port = host.base_url().rsplit(':').next().unwrap().to_string();
    assert_eq!(h["method"], "GET");
    assert_eq!(h["env-probe-mode"], "e2e");
    assert_eq!(
        h["uri"],
        format!("http://127.0.0.1:{port}/probe/some/where/?q=1&r=2")
    );
    assert_eq!(h["spin-path-info"], "/some/where/");
    assert_eq!(
        h["spin-full-url"],
        format!("http://127.0.0.1:{port}/probe/some/where/?q=1&r=2")
    );
    assert_eq!(h["spin-matched-route"], "/probe/...");
    assert_eq!(h["spin-raw-component-route"], "/probe/...");
    assert_eq!(h["spin-component-route"], "/probe");
    assert_eq!(h["spin-base-path"], "/");
    assert!(h["spin-client-addr"].starts_with("127.0.0.1:"));

    // An exact route of one component beats another component's wildcard.
    let h = echoed(&client.get(&host.url("/hello/echo")).await.unwrap().text());
    assert_eq!(h["spin-matched-route"], "/hello/echo");
    assert_eq!(h["spin-component-route"], "/hello/echo");
    assert_eq!(h["spin-path-info"], "");
    assert_eq!(
        client
            .get(&host.url("/hello/echo/more"))
            .await
            .unwrap()
            .text(),
        "hello"
    );

    // A longer wildcard beats a shorter one.
    assert_eq!(
        client
            .get(&host.url("/probe/hello/x"))
            .await
            .unwrap()
            .text(),
        "hello"
    );

    // A named segment is captured (Spin writes `_` in its name as `-`); a
    // literal segment in its place wins.
    let h = echoed(
        &client
            .get(&host.url("/probe/items/KM-2022-000123/rest"))
            .await
            .unwrap()
            .text(),
    );
    assert_eq!(h["spin-matched-route"], "/probe/items/:item_id/...");
    assert_eq!(h["spin-path-match-item-id"], "KM-2022-000123");
    assert_eq!(h["spin-path-info"], "/rest");
    assert_eq!(
        client
            .get(&host.url("/probe/items/special/rest"))
            .await
            .unwrap()
            .text(),
        "hello"
    );

    // What the component printed is in the host's log.
    let logs = host.logs();
    assert!(
        logs.contains("[kv-probe] stdout: probe echo /probe/some/where/"),
        "{logs}"
    );
    assert!(
        logs.contains("[kv-probe] stderr: probe stderr line"),
        "{logs}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn fifty_concurrent_cas_increments_count_exactly_fifty() {
    let (_dir, host) = fixtures_host();
    let client = Client::new();
    // The first write of a key is not a real compare-and-swap in Spin's SQLite
    // backend (nothing to compare with), so the counter exists before the race.
    let zero = client
        .get(&host.url("/probe/counter?key=hits"))
        .await
        .unwrap();
    assert_eq!(zero.text(), "0");

    let retries = crate::common::fifty_cas_increments(&host, "hits").await;
    eprintln!("50 concurrent increments needed {retries} compare-and-swap retries");
    let reply = client
        .get(&host.url("/probe/counter?key=hits"))
        .await
        .unwrap();
    assert_eq!(reply.text(), "50");
}

#[tokio::test(flavor = "multi_thread")]
async fn compare_and_swap_is_exclusive_only_once_the_key_exists() {
    let (_dir, host) = fixtures_host();
    let client = Client::new();
    // Spin's SQLite backend: with no value to compare against, `swap` writes
    // unconditionally, so two racing creators of a key both "win".
    let reply = client
        .get(&host.url("/probe/cas-race?key=fresh"))
        .await
        .unwrap();
    assert_eq!(reply.text(), "first=swapped second=swapped value=second");
    // Once the key exists, the second swap of the same read fails.
    let reply = client
        .get(&host.url("/probe/cas-race?key=fresh"))
        .await
        .unwrap();
    assert_eq!(reply.text(), "first=swapped second=cas-failed value=first");
}

#[tokio::test(flavor = "multi_thread")]
async fn key_value_operations_reach_sqlite() {
    let (_dir, host) = fixtures_host();
    let client = Client::new();
    let kv = |q: &str| host.url(&format!("/probe/kv?{q}"));
    assert_eq!(client.get(&kv("key=a")).await.unwrap().status, 404);
    let put = client
        .send("PUT", &kv("key=a"), &[], "alpha")
        .await
        .unwrap();
    assert_eq!(put.status, 204);
    client.send("PUT", &kv("key=b"), &[], "beta").await.unwrap();
    assert_eq!(client.get(&kv("key=a")).await.unwrap().text(), "alpha");
    assert_eq!(
        client
            .send("HEAD", &kv("key=a"), &[], "")
            .await
            .unwrap()
            .status,
        200
    );
    let many = client
        .get(&host.url("/probe/get-many?keys=a,b,missing"))
        .await
        .unwrap();
    assert_eq!(many.text(), "a=alpha\nb=beta");
    assert_eq!(
        client
            .send("DELETE", &kv("key=a"), &[], "")
            .await
            .unwrap()
            .status,
        204
    );
    assert_eq!(
        client
            .send("HEAD", &kv("key=a"), &[], "")
            .await
            .unwrap()
            .status,
        404
    );
    // The floor route makes N reads and nothing else.
    let floor = client.get(&host.url("/probe/kv-floor?n=3")).await.unwrap();
    assert_eq!(floor.text(), "ok 3");
}

#[tokio::test(flavor = "multi_thread")]
async fn data_survives_a_host_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join(".spin").join("sqlite_key_value.db");
    let host = Host::start(HostConfig::fixtures_only(&db)).unwrap();
    let client = Client::new();
    let put = client
        .send("PUT", &host.url("/probe/kv?key=kept"), &[], "still here")
        .await
        .unwrap();
    assert_eq!(put.status, 204);
    client
        .get(&host.url("/probe/cas-incr?key=n"))
        .await
        .unwrap();
    let old_url = host.base_url().to_string();
    host.stop();

    let host = Host::start(HostConfig::fixtures_only(&db)).unwrap();
    assert_ne!(host.base_url(), old_url);
    let reply = client.get(&host.url("/probe/kv?key=kept")).await.unwrap();
    assert_eq!((reply.status, reply.text().as_str()), (200, "still here"));
    let host = host.restart().unwrap();
    let reply = client.get(&host.url("/probe/counter?key=n")).await.unwrap();
    assert_eq!(reply.text(), "1");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_handler_error_reaches_the_caller_as_problem_json() {
    let (_dir, host) = fixtures_host();
    let reply = Client::new().get(&host.url("/probe/fail")).await.unwrap();
    assert_eq!(reply.status, 500);
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json")
    );
    let body = reply.json().unwrap();
    assert_eq!(body["code"], "probe_failure");
    assert_eq!(body["title"], "探针故障");
    assert_eq!(body["status"], 500);
}

#[tokio::test(flavor = "multi_thread")]
async fn store_not_listed_in_manifest_is_denied() {
    let (_dir, host) = fixtures_host();
    let client = Client::new();
    let reply = client
        .get(&host.url("/probe/kv?key=a&store=other"))
        .await
        .unwrap();
    assert_eq!(reply.status, 500);
    assert!(reply.text().contains("AccessDenied"), "{}", reply.text());
    let reply = client
        .get(&host.url("/probe/wasi-open?store=other"))
        .await
        .unwrap();
    assert!(reply.text().contains("AccessDenied"), "{}", reply.text());
    let reply = client
        .get(&host.url("/probe/wasi-open?store=default"))
        .await
        .unwrap();
    assert_eq!(reply.text(), "opened");
}

#[tokio::test(flavor = "multi_thread")]
async fn variables_resolve_from_host_config() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("kv.db");
    let host = Host::start(HostConfig::fixtures_only(&db).variable("who", "tester")).unwrap();
    let client = Client::new();
    let reply = client
        .get(&host.url("/probe/var?name=greeting"))
        .await
        .unwrap();
    assert_eq!(
        (reply.status, reply.text().as_str()),
        (200, "hello, tester!")
    );
    // A component sees only its own variables, not the application's.
    let reply = client.get(&host.url("/probe/var?name=who")).await.unwrap();
    assert_eq!(reply.status, 500);
    assert!(reply.text().contains("Undefined"), "{}", reply.text());
    let reply = client
        .get(&host.url("/probe/var?name=Bad-Name"))
        .await
        .unwrap();
    assert!(reply.text().contains("InvalidName"), "{}", reply.text());
    drop(host);

    // Defaults apply when no value is given.
    let host = Host::start(HostConfig::fixtures_only(&db)).unwrap();
    let reply = client
        .get(&host.url("/probe/var?name=greeting"))
        .await
        .unwrap();
    assert_eq!(reply.text(), "hello, nobody!");
    drop(host);

    // A required variable without a value fails start, as `spin up` does.
    let err = Host::start(HostConfig::product_only(&db).variable("auth_issuer", "x"))
        .err()
        .expect("start fails");
    assert!(format!("{err:#}").contains("required variable"), "{err:#}");
    // An unknown variable is refused too.
    let err = Host::start(HostConfig::fixtures_only(&db).variable("nonsense", "x"))
        .err()
        .expect("start fails");
    assert!(format!("{err:#}").contains("nonsense"), "{err:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn outbound_http_reaches_loopback_server_only_when_allowed() {
    // A loopback upstream that answers every request.
    let upstream = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream_addr = upstream.local_addr().unwrap();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut sock, _)) = upstream.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let _ = sock.read(&mut buf).await;
                let _ = sock
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 8\r\nconnection: close\r\n\r\nupstream",
                    )
                    .await;
            });
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let host = Host::start(
        HostConfig::fixtures_only(dir.path().join("kv.db"))
            .variable("outbound_url", format!("http://{upstream_addr}/hi")),
    )
    .unwrap();
    let client = Client::new();

    let allowed = client.get(&host.url("/probe/outbound")).await.unwrap();
    assert_eq!(
        (allowed.status, allowed.text().as_str()),
        (200, "200 upstream")
    );

    let sealed = client.get(&host.url("/sealed/outbound")).await.unwrap();
    assert_eq!(sealed.status, 502);
    assert!(
        sealed.text().contains("HttpRequestDenied"),
        "{}",
        sealed.text()
    );
    assert!(
        host.logs()
            .contains("[kv-probe-sealed] host: outbound request denied"),
        "{}",
        host.logs()
    );
}

#[test]
fn product_and_fixture_manifests_merge() {
    let app = e2e::manifest::App::load(&[
        HostConfig::product_manifest(),
        HostConfig::fixtures_manifest(),
    ])
    .unwrap();
    assert!(app.components.contains_key("hello"));
    assert!(app.components.contains_key("kv-probe"));
    let router = e2e::router::Router::build(&app.triggers).unwrap();
    assert_eq!(router.route("/hello").unwrap().component, "hello");
    // The product manifest itself names no fixture.
    let product = std::fs::read_to_string(HostConfig::product_manifest()).unwrap();
    assert!(!product.contains("kv-probe") && !product.contains("hello.wasm"));
}

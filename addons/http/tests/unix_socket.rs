//! `KINESIS_HTTP_ADDR=unix:/path`: the server on a real Unix domain socket
//! in a temporary directory: mode 0600, HTTP (reads, calls, `_watch`)
//! through the same hyper path (the `Host` check and the connection cap
//! included), the file removed on shutdown, a stale file replaced, a live
//! socket, a regular file and TLS refused.

mod common;

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{options, Counter};
use kinesis::{Config, Error, Runtime};
use kinesis_http::{HttpOptions, HttpServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

/// `options()` listening on `path`.
fn on(path: &Path) -> HttpOptions {
    HttpOptions { unix_socket: Some(path.to_path_buf()), ..options() }
}

/// A runtime with a counter, and the server added with `options`.
async fn start(options: HttpOptions) -> (Runtime, kinesis::Result<kinesis::Handle<HttpServer>>) {
    let runtime = Runtime::builder(Config::default()).start().await.unwrap();
    runtime.root().add("counter", Counter::default()).await.unwrap();
    let server = HttpServer::new(runtime.root().clone(), options);
    let http = runtime.addons().add("http", server).await;
    (runtime, http)
}

/// Sends `request` over the socket at `path` and reads until the server
/// closes: (status, head, body).
async fn exchange(path: &Path, request: &str) -> (u16, String, String) {
    let mut stream = UnixStream::connect(path).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut bytes = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut bytes))
        .await
        .expect("the server answers")
        .unwrap();
    let text = String::from_utf8(bytes).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, head.to_owned(), body.to_owned())
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
}

fn post(path: &str, json: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{json}",
        json.len()
    )
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path).unwrap().permissions().mode() & 0o777
}

fn is_socket(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket())
}

/// A socket file nobody listens on, as a killed server leaves it.
fn stale_socket(path: &Path) {
    drop(std::os::unix::net::UnixListener::bind(path).unwrap());
    assert!(is_socket(path));
    let refused = std::os::unix::net::UnixStream::connect(path).unwrap_err();
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
}

fn socket_path(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("kinesis.sock")
}

#[tokio::test]
async fn serves_http_on_a_socket_of_mode_0600_and_removes_it_on_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let path = socket_path(&dir);
    let (runtime, http) = start(on(&path)).await;
    let http = http.unwrap();

    assert!(is_socket(&path));
    assert_eq!(mode(&path), 0o600, "the socket file is for its owner only");
    let state = http.snapshot().state.clone();
    assert_eq!(state.unix_socket(), Some(path.clone()));
    assert_eq!(state.local_addr(), None);
    let shown = serde_json::to_value(&state).unwrap();
    assert_eq!(shown["addr"], format!("unix:{}", path.display()));

    // Reads, method calls and a `_watch` stream, with `Host: localhost`.
    let (status, _, body) = exchange(&path, &get("/root/counter")).await;
    assert_eq!(status, 200, "{body}");
    let (status, _, body) = exchange(&path, &post("/root/counter/increment", r#"{"by":3}"#)).await;
    assert_eq!((status, body.as_str()), (200, "3"));
    let (status, _, body) = exchange(&path, &get("/root/counter/total")).await;
    assert_eq!((status, body.as_str()), (200, "3"));
    let mut watch = UnixStream::connect(&path).await.unwrap();
    watch.write_all(get("/root/counter/_watch").as_bytes()).await.unwrap();
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !seen.contains("event: snapshot") || !seen.contains("\"count\":3") {
        assert!(Instant::now() < deadline, "no snapshot event: {seen}");
        let mut buf = [0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(10), watch.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "the stream ended: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");
    assert!(seen.to_ascii_lowercase().contains("content-type: text/event-stream"), "{seen}");

    // The guard still checks the Host.
    let other = "GET /root/counter HTTP/1.1\r\nhost: evil.example\r\nconnection: close\r\n\r\n";
    assert_eq!(exchange(&path, other).await.0, 403);

    assert!(runtime.shutdown().await.clean);
    assert!(!path.exists(), "the socket file is removed on shutdown");
}

#[tokio::test]
async fn a_stale_socket_file_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let path = socket_path(&dir);
    stale_socket(&path);

    let (runtime, http) = start(on(&path)).await;
    http.unwrap();
    assert_eq!(mode(&path), 0o600);
    assert_eq!(exchange(&path, &get("/root/counter")).await.0, 200);
    assert!(runtime.shutdown().await.clean);
    assert!(!path.exists());
}

#[tokio::test]
async fn a_socket_someone_listens_on_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = socket_path(&dir);
    let live = std::os::unix::net::UnixListener::bind(&path).unwrap();

    let (runtime, http) = start(on(&path)).await;
    let err = http.unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("KINESIS_HTTP_ADDR=unix:") && msg.contains("listening"), "{msg}");
    // The other listener still has its socket.
    std::os::unix::net::UnixStream::connect(&path).unwrap();
    live.accept().unwrap();
    assert!(runtime.shutdown().await.clean);
    assert!(is_socket(&path));
}

#[tokio::test]
async fn a_path_that_is_not_a_socket_is_refused_and_never_removed() {
    let dir = tempfile::tempdir().unwrap();
    let path = socket_path(&dir);
    std::fs::write(&path, "precious\n").unwrap();

    let (runtime, http) = start(on(&path)).await;
    let err = http.unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err:?}");
    assert!(err.to_string().contains("not a socket"), "{err}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "precious\n");
    assert!(runtime.shutdown().await.clean);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "precious\n");
}

#[tokio::test]
async fn a_socket_replaced_by_another_file_while_serving_is_not_removed() {
    let dir = tempfile::tempdir().unwrap();
    let path = socket_path(&dir);
    let (runtime, http) = start(on(&path)).await;
    http.unwrap();
    std::fs::remove_file(&path).unwrap();
    std::fs::write(&path, "someone else's\n").unwrap();
    assert!(runtime.shutdown().await.clean);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "someone else's\n");
}

#[tokio::test]
async fn tls_on_a_socket_is_a_config_error_both_from_the_environment_and_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = socket_path(&dir);
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.key_pair.serialize_pem()).unwrap();
    let addr = format!("unix:{}", path.display());
    let vars = [
        ("KINESIS_HTTP_ADDR", addr.as_str()),
        ("KINESIS_HTTP_TLS_CERT", cert.to_str().unwrap()),
        ("KINESIS_HTTP_TLS_KEY", key.to_str().unwrap()),
    ];
    let err =
        kinesis_http::HttpConfig::from_lookup(kinesis::config::from_pairs(&vars)).unwrap_err();
    assert!(matches!(err, Error::Config(_)) && err.to_string().contains("plain HTTP"), "{err}");

    let tls = kinesis_http::TlsConfig::from_pem_files(&cert, &key).unwrap();
    let (runtime, http) = start(HttpOptions { tls: Some(tls), ..on(&path) }).await;
    let err = http.unwrap_err();
    assert!(matches!(err, Error::Config(_)) && err.to_string().contains("TLS"), "{err}");
    assert!(!path.exists(), "nothing was bound");
    assert!(runtime.shutdown().await.clean);
}

#[tokio::test]
async fn the_connection_cap_holds_on_a_socket() {
    let dir = tempfile::tempdir().unwrap();
    let path = socket_path(&dir);
    let (runtime, http) = start(HttpOptions { max_connections: 1, ..on(&path) }).await;
    http.unwrap();
    // One connection, served (kept open: keep-alive), takes the only slot.
    let mut held = UnixStream::connect(&path).await.unwrap();
    held.write_all(b"GET /root/counter HTTP/1.1\r\nhost: localhost\r\n\r\n").await.unwrap();
    let mut buf = [0u8; 12];
    held.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"HTTP/1.1 200");
    let (status, head, _) = exchange(&path, &get("/root/counter")).await;
    assert_eq!(status, 503, "{head}");
    assert!(head.to_ascii_lowercase().contains("retry-after: 1"), "{head}");
    drop(held);
    assert!(runtime.shutdown().await.clean);
}

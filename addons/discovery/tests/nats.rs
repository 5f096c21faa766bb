//! Announcing and finding over a real NATS server (one of the test's own,
//! on a free port): a typed remote handle by instance name, an instance
//! started before NATS is found once NATS comes up, and a stopped one is
//! withdrawn.

#![cfg(feature = "nats")]

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use kinesis::{Component, Config, Result, Runtime};
use kinesis_discovery::{announce, Directory, Source};
use kinesis_http::HttpConfig;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;

/// A counter to call by name.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct Tally {
    /// The total.
    pub total: u64,
}

impl Component for Tally {}

#[kinesis::handlers]
impl Tally {
    /// Adds `n`; answers the total.
    pub fn add(&mut self, n: u64) -> u64 {
        self.total += n;
        self.total
    }
}

struct Nats(Child);

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A port nothing listens on, unique within this process and below the
/// kernel's ephemeral range (32768 and up), so that no `bind(0)` of a test
/// running in parallel (an HTTP server on port 0) can take it in the
/// moment between this check and nats-server binding it.
fn free_port() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let offset = (std::process::id() % 1_000) as u16 * 12;
    loop {
        let port = 20_000 + (offset + NEXT.fetch_add(1, Ordering::Relaxed)) % 12_000;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A nats-server on `port`, once it greets a client; `None` (a skip) when
/// it is not installed, except under CI=true where that fails.
async fn nats_server(port: u16) -> Option<Nats> {
    let binary = ["/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    let Some(binary) = binary else {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "nats-server is not installed");
        eprintln!("skipped: nats-server is not installed");
        return None;
    };
    let child = Command::new(binary)
        .args(["-a", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut server = Nats(child);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !greets_as_nats(port).await {
        if let Some(status) = server.0.try_wait().unwrap() {
            panic!("nats-server on port {port} exited ({status}) before it listened");
        }
        assert!(tokio::time::Instant::now() < deadline, "nats-server did not listen");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Some(server)
}

/// Whether what listens on `port` is a NATS server: it sends `INFO` first.
async fn greets_as_nats(port: u16) -> bool {
    let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        return false;
    };
    let mut greeting = [0u8; 4];
    let read = tokio::time::timeout(Duration::from_secs(2), stream.read_exact(&mut greeting));
    matches!(read.await, Ok(Ok(_))) && &greeting == b"INFO"
}

/// A runtime with a `Tally` at /root/tally and an HTTP server; its URL.
async fn runtime_with_tally() -> (Runtime, String) {
    let runtime = Runtime::builder(Config::default()).start().await.unwrap();
    runtime.root().add("tally", Tally::default()).await.unwrap();
    let config =
        HttpConfig { addr: SocketAddr::from(([127, 0, 0, 1], 0)), ..HttpConfig::default() };
    let http = kinesis_http::serve(&runtime, &config).await.unwrap();
    let addr = http.snapshot().state.local_addr().unwrap();
    (runtime, format!("http://{addr}"))
}

/// Polls `directory` (deadline 10 s) until `name` is found or, with
/// `present` false, until it is not.
async fn until_listed(directory: &Directory, name: &str, present: bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let names: Vec<String> =
            directory.instances().await.unwrap().into_iter().map(|i| i.name).collect();
        if names.iter().any(|n| n == name) == present {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{name} listed: {names:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn an_instance_is_called_by_name_through_a_typed_handle() -> Result<()> {
    let port = free_port();
    let Some(_nats) = nats_server(port).await else { return Ok(()) };
    let nats_url = format!("nats://127.0.0.1:{port}");
    let (runtime, url) = runtime_with_tally().await;
    let announcer = announce(&runtime, "ledger", vec![url.clone()], &nats_url).await?;
    let directory = Directory::new().nats(&nats_url)?;
    until_listed(&directory, "ledger", true).await;

    let found = directory.find("ledger").await?;
    assert_eq!(found.urls, [url]);
    assert_eq!(found.source, Source::Nats);
    assert_eq!(found.id.as_deref(), announcer.snapshot().state.id());
    assert_eq!(found.holds("/root/tally"), Some(true));
    assert_eq!(found.holds("/root/nothing"), Some(false));

    let tally = directory.remote::<Tally>("ledger", "/root/tally").await?;
    assert_eq!(tally.add(4).await?, 4);
    assert_eq!(runtime.root().get::<Tally>("tally")?.snapshot().state.total, 4);

    let missing = directory.find("nobody").await.unwrap_err();
    assert!(missing.to_string().contains("known: ledger"), "{missing}");

    // Stopping the runtime withdraws the instance.
    runtime.shutdown().await;
    until_listed(&directory, "ledger", false).await;
    Ok(())
}

#[tokio::test]
async fn an_instance_started_before_nats_is_found_once_nats_is_up() -> Result<()> {
    let port = free_port();
    let nats_url = format!("nats://127.0.0.1:{port}");
    let (runtime, url) = runtime_with_tally().await;
    // Nothing listens on the port yet: the announcement waits for it.
    announce(&runtime, "early", vec![url], &nats_url).await?;
    let Some(_nats) = nats_server(port).await else { return Ok(()) };
    let directory = Directory::new().nats(&nats_url)?;
    until_listed(&directory, "early", true).await;
    runtime.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn nats_that_is_down_is_a_clear_lookup_error() {
    let directory = Directory::new().nats(&format!("nats://127.0.0.1:{}", free_port())).unwrap();
    let err = directory.instances().await.unwrap_err();
    assert_eq!(err.kind(), kinesis::ErrorKind::Unreachable, "{err}");
    assert!(err.to_string().contains("NATS"), "{err}");
}

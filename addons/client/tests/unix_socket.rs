//! A runtime on a Unix domain socket (`KINESIS_HTTP_ADDR=unix:/path`),
//! reached with a `unix:` URL: calls, cached snapshots (`If-None-Match`,
//! 304), problem+json errors, bearer tokens, watches and timeouts.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kinesis::remote::RemoteChange;
use kinesis::{Component, Config, ErrorKind, Result, Runtime};
use kinesis_client::Client;
use kinesis_http::security::{new_token, SecurityConfig, TokenFile};
use kinesis_http::HttpConfig;
use serde::{Deserialize, Serialize};

/// A tally.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Tally {
    /// How many.
    pub n: u64,
}

impl Component for Tally {}

#[kinesis::handlers]
impl Tally {
    /// Adds one.
    pub fn add(&mut self) -> u64 {
        self.n += 1;
        self.n
    }
}

/// A runtime with a tally, served on the socket `path`, tokens required;
/// and the token of a writer.
async fn serve(path: &Path) -> (Runtime, String) {
    let (writer, line) = new_token("writer", "read:/** write:/root/tally").unwrap();
    let tokens = TokenFile::parse(&format!("{line}\n")).unwrap();
    let config = HttpConfig {
        unix_socket: Some(path.to_path_buf()),
        security: SecurityConfig { tokens: Some(Arc::new(tokens)), ..SecurityConfig::default() },
        ..HttpConfig::default()
    };
    let runtime = Runtime::builder(Config::default()).start().await.unwrap();
    runtime.root().add("tally", Tally::default()).await.unwrap();
    let http = kinesis_http::serve(&runtime, &config).await.unwrap();
    assert_eq!(http.snapshot().state.unix_socket().as_deref(), Some(path));
    (runtime, writer.to_string())
}

#[tokio::test]
async fn everything_works_over_a_unix_socket() -> Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.sock");
    let (runtime, writer) = serve(&path).await;
    let url = format!("unix:{}", path.display());

    // Refusals arrive as problem+json and keep their kinds.
    let anonymous = Client::new(&url)?;
    assert_eq!(anonymous.url(), url);
    let err = anonymous.remote::<Tally>("/root/tally").add().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthenticated, "{err}");

    let client = Client::builder(&url).token(writer.as_str()).build()?;
    let tally = client.remote::<Tally>("/root/tally");
    assert_eq!(tally.add().await?, 1);
    assert_eq!(client.dyn_remote("/root/tally").call("add", serde_json::json!({})).await?, 2);
    let err = client.remote::<Tally>("/root/nothing").snapshot().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    let names: Vec<String> = client.tree().await?.into_iter().map(|n| n.uri).collect();
    assert!(names.contains(&"/root/tally".to_owned()), "{names:?}");

    // A cached snapshot is asked for with If-None-Match: the 304 keeps it.
    let first = tally.snapshot().await?;
    assert_eq!(first.state.n, 2);
    let second = tally.snapshot().await?;
    assert!(Arc::ptr_eq(&first, &second), "answered 304, the cached snapshot is reused");

    // A watch: the snapshot, then each change.
    let mut changes = tally.watch();
    let next = tokio::time::timeout(Duration::from_secs(10), changes.next());
    match next.await.expect("an event").expect("the stream is open")? {
        RemoteChange::Snapshot(s) => assert_eq!(s.state.n, 2),
        other => panic!("expected the snapshot first, got {other:?}"),
    }
    assert_eq!(tally.add().await?, 3);
    loop {
        let next = tokio::time::timeout(Duration::from_secs(10), changes.next());
        if let RemoteChange::Updated { snapshot, .. } =
            next.await.expect("an event").expect("the stream is open")?
        {
            assert_eq!(snapshot.state.n, 3);
            break;
        }
    }
    drop(changes);
    assert!(runtime.shutdown().await.clean);
    assert!(!path.exists());
    Ok(())
}

#[tokio::test]
async fn a_socket_that_never_answers_times_out() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mute.sock");
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    let _keep = tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            let (socket, _) = listener.accept().await.unwrap();
            held.push(socket);
        }
    });
    let url = format!("unix:{}", path.display());
    let client = Client::builder(&url).timeout(Duration::from_millis(200)).build().unwrap();
    let err = client.remote::<Tally>("/root/tally").add().await.unwrap_err();
    assert_eq!(err, kinesis::Error::Timeout(Duration::from_millis(200)));
}

#[tokio::test]
async fn a_missing_socket_is_unreachable_and_bad_urls_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nobody.sock");
    let client = Client::new(format!("unix://{}", path.display())).unwrap();
    assert_eq!(client.url(), format!("unix:{}", path.display()));
    let err = client.remote::<Tally>("/root/tally").snapshot().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unreachable, "{err}");
    assert!(err.to_string().contains("nobody.sock"), "{err}");
    let err = Client::new("unix:").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
}

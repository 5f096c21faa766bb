//! What the client sends and how it reads answers: the bearer token, the
//! trace context, `If-None-Match` on cached reads, timeouts, and the edge's
//! refusals as error kinds.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use kinesis::remote::trace::{self, TraceParent};
use kinesis::{Component, Config, ErrorKind, Result, Runtime};
use kinesis_client::Client;
use kinesis_http::security::{new_token, SecurityConfig, TokenFile};
use kinesis_http::HttpConfig;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

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

/// A server that answers each connection's one request with the next of
/// `answers` and hands the request heads over, lower-cased.
async fn recording(answers: Vec<String>) -> (String, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        for answer in answers {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                if socket.read(&mut byte).await.unwrap() == 0 {
                    break;
                }
                head.push(byte[0]);
            }
            let head = String::from_utf8_lossy(&head).to_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |n| n.trim().parse().unwrap());
            let mut body = vec![0; length];
            socket.read_exact(&mut body).await.unwrap();
            tx.send(head).unwrap();
            socket.write_all(answer.as_bytes()).await.unwrap();
            socket.shutdown().await.unwrap();
        }
    });
    (url, rx)
}

fn answer(status: &str, headers: &[(&str, &str)], body: &str) -> String {
    let mut text =
        format!("HTTP/1.1 {status}\r\nconnection: close\r\ncontent-length: {}\r\n", body.len());
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    text.push_str(body);
    text
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| l.strip_prefix(&format!("{name}:"))).map(str::trim)
}

#[tokio::test]
async fn sends_the_token_and_the_trace_context_and_reads_cached_snapshots_with_if_none_match() {
    let tag = kinesis::ETag::of(br#"{"n":1}"#, None);
    let resource = format!(
        r#"{{"meta":{{"name":"tally","uri":"/root/tally","type":"Tally","stage":"Started","state":"Active","etag":"{tag}","version":2,"methods":[]}},"data":{{"n":1}}}}"#
    );
    let quoted = tag.quoted();
    let (url, mut requests) = recording(vec![
        answer("200 OK", &[("content-type", "application/json"), ("etag", &quoted)], &resource),
        answer("304 Not Modified", &[("etag", &quoted)], ""),
        answer("200 OK", &[("content-type", "application/json")], "2"),
    ])
    .await;
    let client = Client::builder(&url).token("secret-token").build().unwrap();
    let tally = client.remote::<Tally>("/root/tally");

    let first = tally.snapshot().await.unwrap();
    assert_eq!((first.state.n, first.version, first.etag), (1, 2, tag));
    let head = requests.recv().await.unwrap();
    assert!(head.starts_with("get /root/tally http/1.1"), "{head}");
    assert_eq!(header(&head, "authorization"), Some("bearer secret-token"));
    assert_eq!(header(&head, "if-none-match"), None);
    let sent: TraceParent = header(&head, "traceparent").expect("a traceparent").parse().unwrap();

    // Cached: asked with If-None-Match, answered 304, the same snapshot.
    let second = tally.snapshot().await.unwrap();
    assert!(Arc::ptr_eq(&first, &second), "the cached snapshot is reused");
    let head = requests.recv().await.unwrap();
    assert_eq!(header(&head, "if-none-match"), Some(quoted.to_lowercase().as_str()));
    let other: TraceParent = header(&head, "traceparent").unwrap().parse().unwrap();
    assert_ne!(sent.trace_id(), other.trace_id(), "outside a scope, each call is a new trace");

    // Inside a trace scope: the same trace id, a new span id.
    let parent: TraceParent =
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".parse().unwrap();
    let reply = trace::scope(parent.clone(), tally.add()).await.unwrap();
    assert_eq!(reply, 2);
    let head = requests.recv().await.unwrap();
    assert!(head.starts_with("post /root/tally/add http/1.1"), "{head}");
    assert_eq!(header(&head, "content-type"), Some("application/json"));
    let child: TraceParent = header(&head, "traceparent").unwrap().parse().unwrap();
    assert_eq!(child.trace_id(), parent.trace_id());
    assert_ne!(child.span_id(), parent.span_id());
}

#[tokio::test]
async fn a_slow_answer_times_out() {
    // A server that accepts and never answers.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let _keep = tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            let (socket, _) = listener.accept().await.unwrap();
            held.push(socket);
        }
    });
    let client = Client::builder(&url).timeout(Duration::from_millis(200)).build().unwrap();
    let err = client.remote::<Tally>("/root/tally").add().await.unwrap_err();
    assert_eq!(err, kinesis::Error::Timeout(Duration::from_millis(200)));
}

#[tokio::test]
async fn tokens_are_checked_by_the_runtime_and_refusals_have_their_kinds() -> Result<()> {
    let (writer, writer_line) = new_token("writer", "read:/root/** write:/root/tally")?;
    let (reader, reader_line) = new_token("reader", "read:/root/**")?;
    let tokens = TokenFile::parse(&format!("{writer_line}\n{reader_line}\n")).unwrap();
    let config = HttpConfig {
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        security: SecurityConfig { tokens: Some(Arc::new(tokens)), ..SecurityConfig::default() },
        ..HttpConfig::default()
    };
    let runtime = Runtime::builder(Config::default()).start().await?;
    runtime.root().add("tally", Tally::default()).await?;
    let http = kinesis_http::serve(&runtime, &config).await?;
    let url = format!("http://{}", http.snapshot().state.local_addr().unwrap());

    let anonymous = Client::new(&url)?.remote::<Tally>("/root/tally");
    assert_eq!(anonymous.add().await.unwrap_err().kind(), ErrorKind::Unauthenticated);
    let wrong = Client::builder(&url).token("kinesis_not-a-token").build()?;
    assert_eq!(
        wrong.remote::<Tally>("/root/tally").add().await.unwrap_err().kind(),
        ErrorKind::Unauthenticated
    );
    let narrow =
        Client::builder(&url).token(reader.as_str()).build()?.remote::<Tally>("/root/tally");
    assert_eq!(narrow.snapshot().await?.state.n, 0, "reading is granted");
    assert_eq!(narrow.add().await.unwrap_err().kind(), ErrorKind::Forbidden);
    let allowed =
        Client::builder(&url).token(writer.as_str()).build()?.remote::<Tally>("/root/tally");
    assert_eq!(allowed.add().await?, 1);
    runtime.shutdown().await;
    Ok(())
}

//! Connection limits against a real server on 127.0.0.1, with raw sockets:
//! the header read timeout (slowloris), the idle keep-alive timeout, stalled
//! connections next to a normal client, and the connection cap.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The first line and the header of a request, without the blank line that
/// ends the header: the server waits for more.
const HALF_SENT: &[u8] = b"GET /root HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: */*\r\n";

/// Reads until the server closes the connection, at most `limit`; returns
/// what was read and when the end came (`None`: still open at the limit).
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (Vec<u8>, Option<Instant>) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return (got, None),
            Ok(Ok(0)) | Ok(Err(_)) => return (got, Some(Instant::now())),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// Reads one response with a `content-length` from a keep-alive connection.
async fn read_response(stream: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .expect("a response within 5 s")
            .expect("read");
        assert!(n > 0, "closed before a full response: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap())
                })
                .expect("a content-length");
            if body.len() >= length {
                return text;
            }
        }
    }
}

async fn get_on(stream: &mut TcpStream, path: &str) -> String {
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    read_response(stream).await
}

#[tokio::test]
async fn a_half_sent_header_is_closed_within_the_header_timeout() {
    let timeout = Duration::from_millis(300);
    let s = serve_with(options_with(|o| o.header_timeout = timeout)).await;
    let mut stream = TcpStream::connect(s.addr).await.unwrap();
    let sent = Instant::now();
    stream.write_all(HALF_SENT).await.unwrap();
    let (_, closed) = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    let closed = closed.expect("the half-sent request is still open after 5 s");
    let took = closed - sent;
    assert!(
        took >= timeout - Duration::from_millis(20),
        "closed after {took:?}, before the timeout"
    );
    assert!(took < Duration::from_secs(2), "closed only after {took:?}");
}

#[tokio::test]
async fn a_header_sent_byte_by_byte_is_closed_all_the_same() {
    let timeout = Duration::from_millis(300);
    let s = serve_with(options_with(|o| o.header_timeout = timeout)).await;
    let mut stream = TcpStream::connect(s.addr).await.unwrap();
    let sent = Instant::now();
    // One byte every 50 ms: each byte resets no timer.
    let mut interval = tokio::time::interval(Duration::from_millis(50));
    for byte in HALF_SENT {
        interval.tick().await;
        if stream.write_all(&[*byte]).await.is_err() {
            break;
        }
        if sent.elapsed() > Duration::from_secs(2) {
            break;
        }
    }
    let (_, closed) = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    let took = closed.expect("still open after 5 s") - sent;
    assert!(took < Duration::from_millis(1500), "closed only after {took:?}");
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_header_timeout() {
    let timeout = Duration::from_millis(300);
    let s = serve_with(options_with(|o| o.header_timeout = timeout)).await;
    let mut stream = TcpStream::connect(s.addr).await.unwrap();
    // A keep-alive connection that made a request in time and is then idle.
    let answer = get_on(&mut stream, "/root").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let idle = Instant::now();
    let (rest, closed) = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    let took = closed.expect("the idle connection is still open after 5 s") - idle;
    assert!(took >= timeout - Duration::from_millis(20), "closed after {took:?}");
    assert!(took < Duration::from_secs(2), "closed only after {took:?}");
    assert!(!String::from_utf8_lossy(&rest).contains("HTTP/1.1 200"));
}

/// Raises the soft limit of open files to `want` (at most the hard limit);
/// returns the limit in force.
fn raise_open_files(want: u64) -> u64 {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current.is_some_and(|c| c < want) {
        limit.current = Some(limit.maximum.map_or(want, |m| m.min(want)));
        let _ = setrlimit(Resource::Nofile, limit);
    }
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}

async fn stall(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut stalled = Vec::with_capacity(n);
    for _ in 0..n {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(HALF_SENT).await.unwrap();
        stalled.push(stream);
    }
    stalled
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_stalled_connections_do_not_stop_a_normal_client() {
    // 500 stalled client sockets and their 500 server sides, and some spare.
    assert!(raise_open_files(4096) >= 1200, "too few file descriptors for this test");
    let s = serve().await;
    s.counter("counter").await;
    let stalled = stall(s.addr, 500).await;

    // A normal client, on a new connection per request (so every request
    // also goes through the accept loop the stalled connections sit in).
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let url = s.url("/root/counter");
    let mut latencies = Vec::with_capacity(200);
    for _ in 0..200 {
        let started = Instant::now();
        let r = client.get(&url).send().await.expect("served");
        assert_eq!(r.status(), 200);
        r.bytes().await.unwrap();
        latencies.push(started.elapsed());
    }
    latencies.sort();
    let p50 = latencies[100];
    let p99 = latencies[197];
    let max = latencies[199];
    eprintln!("200 GETs beside 500 stalled connections: p50 {p50:?}, p99 {p99:?}, max {max:?}");
    assert!(p99 < Duration::from_millis(50), "p99 {p99:?} (p50 {p50:?}, max {max:?})");

    // The stalled ones are still open: the server did not get rid of them
    // by closing everything (the default header timeout is 10 s).
    let mut probe = stalled.into_iter().next().unwrap();
    let (_, closed) = read_until_closed(&mut probe, Duration::from_millis(10)).await;
    assert!(closed.is_none(), "a stalled connection was closed within the default timeout");
}

#[tokio::test]
async fn past_the_connection_cap_a_new_connection_gets_503_until_one_closes() {
    let s = serve_with(options_with(|o| o.max_connections = 4)).await;
    // Four keep-alive connections, each served once, so each holds its place.
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut stream = TcpStream::connect(s.addr).await.unwrap();
        assert!(get_on(&mut stream, "/root").await.starts_with("HTTP/1.1 200"));
        held.push(stream);
    }

    // The fifth is told why, and closed.
    let mut fifth = TcpStream::connect(s.addr).await.unwrap();
    fifth.write_all(b"GET /root HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").await.unwrap();
    let (answer, closed) = read_until_closed(&mut fifth, Duration::from_secs(5)).await;
    assert!(closed.is_some(), "the refused connection was left open");
    let answer = String::from_utf8(answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").expect("a whole response");
    assert!(head.starts_with("HTTP/1.1 503 "), "{answer}");
    assert!(head.to_ascii_lowercase().contains("retry-after: 1"), "{head}");
    assert!(head.to_ascii_lowercase().contains("content-type: application/problem+json"), "{head}");
    let problem: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(problem["status"], 503);

    // The held ones are still served.
    assert!(get_on(&mut held[0], "/root").await.starts_with("HTTP/1.1 200"));

    // One closes: its place frees up once the server sees the close.
    drop(held.pop());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut stream = TcpStream::connect(s.addr).await.unwrap();
        stream.write_all(b"GET /root HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").await.unwrap();
        let mut first = [0u8; 12];
        stream.read_exact(&mut first).await.unwrap();
        if &first == b"HTTP/1.1 200" {
            break;
        }
        assert_eq!(&first, b"HTTP/1.1 503");
        assert!(Instant::now() < deadline, "the closed connection's place never freed up");
        tokio::task::yield_now().await;
    }
}

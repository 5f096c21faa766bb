//! A slow `_watch` reader, as it sees it: the changes in order, then, once
//! it fell more than the watch buffer behind, one `lagged` event, a fresh
//! `snapshot` of the state as it is then, and the changes after it.

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One server-sent event.
#[derive(Debug)]
struct Sse {
    event: String,
    id: Option<u64>,
    data: Value,
}

/// Reads server-sent events from a raw response.
struct Events {
    stream: tokio::net::TcpStream,
    buf: Vec<u8>,
    header_done: bool,
}

impl Events {
    async fn next(&mut self) -> Sse {
        loop {
            if !self.header_done {
                if let Some(end) = find(&self.buf, b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
                    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
                    self.buf.drain(..end + 4);
                    self.header_done = true;
                    continue;
                }
            } else if let Some(end) = find(&self.buf, b"\n\n") {
                let block = String::from_utf8_lossy(&self.buf[..end]).into_owned();
                self.buf.drain(..end + 2);
                let mut sse = Sse { event: String::new(), id: None, data: Value::Null };
                for line in block.lines() {
                    // Chunked framing: lines of hex sizes and empty lines.
                    if let Some(v) = line.strip_prefix("event: ") {
                        sse.event = v.to_owned();
                    } else if let Some(v) = line.strip_prefix("id: ") {
                        sse.id = Some(v.parse().unwrap());
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        sse.data = serde_json::from_str(v).unwrap();
                    }
                }
                if sse.event.is_empty() {
                    continue; // a keep-alive comment or chunk framing
                }
                return sse;
            }
            let mut chunk = vec![0u8; 1 << 16];
            let n = tokio::time::timeout(Duration::from_secs(10), self.stream.read(&mut chunk))
                .await
                .expect("an event within 10 s")
                .unwrap();
            assert!(n > 0, "the stream ended");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[tokio::test]
async fn a_slow_reader_gets_lagged_then_a_fresh_snapshot_then_the_changes_after_it() {
    let s = serve_with(options_with(|o| o.watch_buffer = 256 * 1024)).await;
    let counter = s.counter("counter").await;
    counter.set_blob(64 * 1024).await.unwrap();

    // A reader with a small receive buffer, so the server backs up soon.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(16 * 1024).unwrap();
    let mut stream = socket.connect(s.addr).await.unwrap();
    stream
        .write_all(b"GET /root/counter/_watch HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let mut events = Events { stream, buf: Vec::new(), header_done: false };
    let first = events.next().await;
    assert_eq!(first.event, "snapshot");
    let start = first.id.unwrap();

    // It stops reading while 300 changes of 64 KiB are made (about 19 MB,
    // far more than the socket buffers and the 256 KiB watch buffer hold).
    for _ in 0..300 {
        counter.increment(1).await.unwrap();
    }
    let last = counter.snapshot().version;
    assert_eq!(last, start + 300);

    // Reading again: the changes that were on their way, in order, ...
    let mut version = start;
    let lagged = loop {
        let e = events.next().await;
        match e.event.as_str() {
            "updated" => {
                assert_eq!(e.id, Some(version + 1), "versions in order, none left out");
                version += 1;
            }
            "lagged" => break e,
            other => panic!("unexpected {other} event: {e:?}"),
        }
    };
    let seen = version - start;
    // ... one `lagged` with the number of changes missed, ...
    let missed = lagged.data["missed"].as_u64().unwrap();
    assert!(missed > 0, "{lagged:?}");
    assert!(seen + missed <= 300, "{seen} seen and {missed} missed of 300");
    assert!(seen < 300 - 4, "the reader did not lag: it saw {seen} of 300");
    // ... a fresh snapshot of the state as it is now, ...
    let fresh = events.next().await;
    assert_eq!(fresh.event, "snapshot", "{fresh:?}");
    assert_eq!(fresh.id, Some(last));
    assert_eq!(fresh.data["version"], last);
    assert_eq!(fresh.data["data"]["count"], 300);
    // ... and the changes after it, none it already has.
    counter.increment(1).await.unwrap();
    let next = events.next().await;
    assert_eq!(next.event, "updated", "{next:?}");
    assert_eq!(next.id, Some(last + 1));
    assert_eq!(next.data["data"]["count"], 301);
}

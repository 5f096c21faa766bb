//! A request's trace id reaches the logs of the handler it calls: the
//! handler runs in a span that is a child of the request's `http.request`
//! span, so every JSON log line inside it carries the trace id. (One test:
//! it installs the process-wide subscriber.)

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use kinesis::{Component, Context};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[derive(Clone, Default, Serialize, Deserialize)]
struct Logger {
    count: u64,
}

impl Component for Logger {}

#[kinesis::handlers]
impl Logger {
    /// Logs from inside the mailbox.
    pub fn note(&mut self, ctx: &mut Context<Self>) -> u64 {
        self.count += 1;
        tracing::info!(uri = ctx.uri(), "inside the handler");
        self.count
    }
}

#[tokio::test]
async fn a_handler_log_line_carries_the_trace_id_of_the_request() {
    let lines = Lines::default();
    let writer = lines.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_env_filter("info")
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber of this test");

    let s = common::serve_with(common::options()).await;
    s.runtime.root().add("logger", Logger::default()).await.unwrap();
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let r = s
        .client
        .post(s.url("/root/logger/note"))
        .header("traceparent", format!("00-{trace}-00f067aa0ba902b7-01"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(common::header(&r, "trace-id"), trace);
    s.runtime.shutdown().await;

    let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
    let line: Value = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["fields"]["message"] == "inside the handler")
        .unwrap_or_else(|| panic!("the handler logged:\n{text}"));
    assert_eq!(line["span"]["name"], "handle", "{line}");
    assert_eq!(line["span"]["uri"], "/root/logger", "{line}");
    let request = line["spans"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "http.request")
        .unwrap_or_else(|| panic!("the request span is an ancestor: {line}"));
    assert_eq!(request["trace_id"], trace, "{line}");
    assert_eq!(request["path"], "/root/logger/note", "{line}");
}

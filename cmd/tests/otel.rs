//! With the `otel` feature: a request produces an exported `http.request`
//! span, and the handler of the message it sends into a component an
//! exported `handle` span whose parent is that request span. Exported into
//! the SDK's in-memory exporter. (One test: it installs the process-wide
//! subscriber.)

#![cfg(all(feature = "otel", feature = "http"))]

use std::net::SocketAddr;
use std::time::Duration;

use kinesis::{Component, Config, Context, Runtime};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use serde::{Deserialize, Serialize};
use tracing_subscriber::layer::SubscriberExt;

#[derive(Clone, Default, Serialize, Deserialize)]
struct Traced {
    count: u64,
}

impl Component for Traced {}

#[kinesis::handlers]
impl Traced {
    /// Logs and counts.
    pub fn touch(&mut self, ctx: &mut Context<Self>) -> u64 {
        tracing::info!(uri = ctx.uri(), "touched");
        self.count += 1;
        self.count
    }
}

fn spans_named<'a>(spans: &'a [SpanData], name: &str) -> Vec<&'a SpanData> {
    spans.iter().filter(|s| s.name == name).collect()
}

#[tokio::test]
async fn the_handler_span_is_exported_as_a_child_of_the_request_span() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder().with_simple_exporter(exporter.clone()).build();
    let subscriber = tracing_subscriber::registry().with(kinesis_cmd::otel::layer_for(&provider));
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber of this test");

    let runtime = Runtime::builder(Config::default()).start().await.unwrap();
    runtime.root().add("traced", Traced::default()).await.unwrap();
    let config = kinesis_http::HttpConfig {
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        ..kinesis_http::HttpConfig::default()
    };
    let http = kinesis_http::serve(&runtime, &config).await.unwrap();
    let addr = http.snapshot().state.local_addr().unwrap();
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let r = reqwest::Client::new()
        .post(format!("http://{addr}/root/traced/touch"))
        .header("traceparent", format!("00-{trace}-00f067aa0ba902b7-01"))
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let _ = r.bytes().await;

    // Spans are exported when they close; the request's closes once its
    // body was sent.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let spans = loop {
        let spans = exporter.get_finished_spans().unwrap();
        let request = spans_named(&spans, "http.request");
        if !spans_named(&spans, "handle").is_empty()
            && request.iter().any(|s| s.attributes.iter().any(|kv| kv.value.as_str() == trace))
        {
            break spans;
        }
        assert!(tokio::time::Instant::now() < deadline, "both spans exported within 10 s");
        tokio::task::yield_now().await;
    };
    let request = spans_named(&spans, "http.request")
        .into_iter()
        .find(|s| s.attributes.iter().any(|kv| kv.value.as_str() == trace))
        .expect("the request span carries the trace id");
    let handle = spans_named(&spans, "handle");
    assert_eq!(handle.len(), 1, "{handle:?}");
    let handle = handle[0];
    assert_eq!(
        handle.parent_span_id,
        request.span_context.span_id(),
        "the handler's span is a child of the request's"
    );
    assert_eq!(handle.span_context.trace_id(), request.span_context.trace_id());
    assert!(
        handle.events.iter().any(|e| e.name == "touched"),
        "the handler's log line is an event of its span: {handle:?}"
    );
    runtime.shutdown().await;
    let _ = provider.shutdown();
}

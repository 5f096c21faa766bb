//! The trace id is recorded on the request's tracing span, and every request
//! writes one access-log event with method, path, status, latency and trace
//! id. (One test: it installs the process-wide subscriber.)

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

type Fields = BTreeMap<String, String>;

/// Fields of an access-log event, and the trace id of its span.
type Access = (Fields, Option<String>);

#[derive(Clone, Default)]
struct Capture {
    spans: Arc<Mutex<Vec<Fields>>>,
    access: Arc<Mutex<Vec<Access>>>,
}

struct Collect<'a>(&'a mut Fields);

impl Visit for Collect<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

/// Remembers the fields of `http.request` spans (in the span's extensions)
/// and of access-log events, with the trace id of the span they are in.
impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if attrs.metadata().name() != "http.request" {
            return;
        }
        let mut fields = Fields::new();
        attrs.record(&mut Collect(&mut fields));
        self.spans.lock().unwrap().push(fields.clone());
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(fields);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        if event.metadata().target() != "kinesis_http::access" {
            return;
        }
        let mut fields = Fields::new();
        event.record(&mut Collect(&mut fields));
        let span_trace = ctx
            .event_span(event)
            .and_then(|s| s.extensions().get::<Fields>().and_then(|f| f.get("trace_id").cloned()));
        self.access.lock().unwrap().push((fields, span_trace));
    }
}

#[tokio::test]
async fn the_trace_id_is_on_the_span_and_in_the_access_log() {
    let capture = Capture::default();
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(capture.clone()))
        .expect("the only subscriber of this test binary");

    let s = common::serve().await;
    s.counter("counter").await;
    let r = s.client.get(s.url("/root/counter")).header("trace-id", "feed-beef").send().await;
    assert_eq!(r.unwrap().status(), 200);
    let r = s.client.get(s.url("/root/missing")).header("TraceID", "abc123").send().await;
    assert_eq!(r.unwrap().status(), 404);

    let spans = capture.spans.lock().unwrap().clone();
    let ids: Vec<&str> =
        spans.iter().filter_map(|f| f.get("trace_id").map(String::as_str)).collect();
    assert!(ids.contains(&"feed-beef") && ids.contains(&"abc123"), "{spans:?}");
    let span = spans.iter().find(|f| f["trace_id"] == "feed-beef").unwrap();
    assert_eq!(span["method"], "GET");
    assert_eq!(span["path"], "/root/counter");

    let access = capture.access.lock().unwrap().clone();
    let (ok, ok_span) = access.iter().find(|(f, _)| f["trace_id"] == "feed-beef").expect("logged");
    assert_eq!(ok["method"], "GET");
    assert_eq!(ok["path"], "/root/counter");
    assert_eq!(ok["status"], "200");
    assert!(ok["latency_us"].parse::<u64>().is_ok(), "{ok:?}");
    assert_eq!(ok_span.as_deref(), Some("feed-beef"));
    let (missing, _) = access.iter().find(|(f, _)| f["trace_id"] == "abc123").expect("logged");
    assert_eq!(missing["status"], "404");
    assert_eq!(missing["path"], "/root/missing");
}

//! The W3C trace context remote calls carry.
//!
//! A transport sends the `traceparent` of the call's context: the one set
//! with [`scope`] around the calling future, else a new one per call (a
//! new trace id and span id, sampled). The HTTP add-on of the called
//! runtime takes the trace id from it for its logs, its `Trace-ID` response
//! header and its problem bodies, so one id follows a request across
//! processes.
//!
//! ```
//! use kinesis::remote::trace::{self, TraceParent};
//! # tokio_test_block_on(async {
//! let parent: TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".parse().unwrap();
//! let seen = trace::scope(parent.clone(), async { trace::current() }).await;
//! assert_eq!(seen.unwrap().trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
//! # });
//! # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::str::FromStr;

use crate::Error;

tokio::task_local! {
    static CURRENT: TraceParent;
}

/// A W3C `traceparent`: version 00, a trace id, a parent span id, flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceParent {
    trace_id: String,
    span_id: String,
    flags: u8,
}

impl TraceParent {
    /// A new trace: random trace and span ids, sampled.
    pub fn new_root() -> TraceParent {
        // `| 1`: an all-zero id is invalid.
        let trace = format!("{:032x}", rand::random::<u128>() | 1);
        TraceParent { trace_id: trace, span_id: new_span_id(), flags: 1 }
    }

    /// The same trace with a new span id, for one outgoing call.
    pub fn child(&self) -> TraceParent {
        TraceParent { trace_id: self.trace_id.clone(), span_id: new_span_id(), flags: self.flags }
    }

    /// The 32 hex digits of the trace id.
    pub fn trace_id(&self) -> &str {
        &self.trace_id
    }

    /// The 16 hex digits of the parent span id.
    pub fn span_id(&self) -> &str {
        &self.span_id
    }
}

fn new_span_id() -> String {
    format!("{:016x}", rand::random::<u64>() | 1)
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "00-{}-{}-{:02x}", self.trace_id, self.span_id, self.flags)
    }
}

impl FromStr for TraceParent {
    type Err = Error;

    /// Parses `00-<32 hex>-<16 hex>-<2 hex>`; all-zero ids are invalid.
    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = || Error::Invalid(format!("`{s}` is not a W3C traceparent"));
        let hex = |part: &str, len: usize| {
            part.len() == len
                && part.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
                && part.bytes().any(|b| b != b'0')
        };
        let mut parts = s.trim().split('-');
        let (Some("00"), Some(trace), Some(span), Some(flags), None) =
            (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        if !hex(trace, 32) || !hex(span, 16) || flags.len() != 2 {
            return Err(bad());
        }
        let flags = u8::from_str_radix(flags, 16).map_err(|_| bad())?;
        Ok(TraceParent { trace_id: trace.to_owned(), span_id: span.to_owned(), flags })
    }
}

/// Runs `f` with `parent` as the trace context of the remote calls it makes.
pub async fn scope<F: Future>(parent: TraceParent, f: F) -> F::Output {
    CURRENT.scope(parent, f).await
}

/// The trace context set by [`scope`], if any.
pub fn current() -> Option<TraceParent> {
    CURRENT.try_with(Clone::clone).ok()
}

/// The `traceparent` to send with one outgoing call: a child of the current
/// context, or a new root.
pub fn outgoing() -> TraceParent {
    current().map_or_else(TraceParent::new_root, |parent| parent.child())
}

//! The transport switch: one test body over `Via::InProcess` and
//! `Via::Http`, on a real component and on a mock standing in for it.

use kinesis::remote::{Remote, RemoteDyn};
use kinesis::testing::{Mock, TestRuntime};
use kinesis::{Component, Error, ErrorKind, Result};
use kinesis_http::testing::Via;
use kinesis_http::HttpServer;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// A counter.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Counter {
    /// The count.
    pub count: u64,
}

impl Component for Counter {}

#[kinesis::handlers]
impl Counter {
    /// Adds `by`, at least 1.
    pub fn increment(&mut self, by: u64) -> Result<u64> {
        if by == 0 {
            return Err(Error::invalid("by is at least 1"));
        }
        self.count += by;
        Ok(self.count)
    }
}

/// The body: the same calls and the same answers over any transport.
async fn body(
    counter: &RemoteDyn,
) -> Vec<std::result::Result<serde_json::Value, (ErrorKind, String)>> {
    let mut out = Vec::new();
    for args in [json!({"by": 2}), json!({"by": 0}), json!({"by": 3})] {
        out.push(counter.call("increment", args).await.map_err(|e| (e.kind(), e.to_string())));
    }
    out
}

#[tokio::test]
async fn one_body_over_both_transports_on_the_component_and_on_a_mock() -> Result<()> {
    let expected = vec![
        Ok(json!(2)),
        Err((ErrorKind::Invalid, "invalid: by is at least 1".to_owned())),
        Ok(json!(5)),
    ];
    for via in Via::ALL {
        let rt = TestRuntime::memory().await;
        rt.root().add("counter", Counter::default()).await?;
        let counter = via.dyn_remote(&rt, "/root/counter").await?;
        assert_eq!(body(&counter).await, expected, "{via:?}");
        let typed: Remote<Counter> = via.remote(&rt, "/root/counter").await?;
        assert_eq!(typed.increment(1).await?, 6, "{via:?}");
        // Only the HTTP switch serves the runtime.
        let served = rt.runtime().addons().get::<HttpServer>("http").is_ok();
        assert_eq!(served, via == Via::Http, "{via:?}");
        assert!(rt.shutdown().await.clean);

        // A mock in the component's place: the body cannot tell.
        let rt = TestRuntime::memory().await;
        let count = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let mock = Mock::new().mutating("increment", move |args| {
            let by = args["by"].as_u64().unwrap_or(0);
            if by == 0 {
                return Err(Error::invalid("by is at least 1"));
            }
            Ok(json!(count.fetch_add(by, std::sync::atomic::Ordering::SeqCst) + by))
        });
        rt.root().add("counter", mock.clone()).await?;
        let counter = via.dyn_remote(&rt, "/root/counter").await?;
        assert_eq!(body(&counter).await, expected, "mock {via:?}");
        assert_eq!(mock.calls("increment").len(), 3, "mock {via:?}");
        assert!(rt.shutdown().await.clean);
    }
    Ok(())
}

//! One test body, run in process and across a real HTTP server (feature
//! `testing`).
//!
//! nano's idea: a service is proven once in process and once across its
//! transport by the same test. [`Via`] makes the [`Remote`] a test talks
//! to: [`Via::InProcess`] calls the component by name in this process (the
//! JSON path the server takes, without a network); [`Via::Http`] serves the
//! [`TestRuntime`] on 127.0.0.1 (a free port, once per runtime) and calls
//! it with `kinesis-client`. Both give the same type, so the body is
//! written once:
//!
//! ```
//! use kinesis::remote::Remote;
//! use kinesis::testing::TestRuntime;
//! use kinesis::{Component, Result};
//! use kinesis_http::testing::Via;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Clone, Default, Serialize, Deserialize)]
//! pub struct Counter { count: u64 }
//! impl Component for Counter {}
//!
//! #[kinesis::handlers]
//! impl Counter {
//!     pub fn increment(&mut self, by: u64) -> Result<u64> {
//!         if by == 0 { return Err(kinesis::Error::invalid("by is at least 1")); }
//!         self.count += by;
//!         Ok(self.count)
//!     }
//! }
//!
//! /// The test body: knows nothing of the transport.
//! async fn counts(counter: &impl CounterHandle) {
//!     assert_eq!(counter.increment(2).await.unwrap(), 2);
//!     let refused = counter.increment(0).await.unwrap_err();
//!     assert_eq!(refused.kind(), kinesis::ErrorKind::Invalid);
//! }
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! for via in Via::selected() {
//!     let rt = TestRuntime::memory().await;
//!     rt.root().add("counter", Counter::default()).await?;
//!     let counter: Remote<Counter> = via.remote(&rt, "/root/counter").await?;
//!     counts(&counter).await;
//!     assert!(rt.shutdown().await.clean, "{via:?}");
//! }
//! # Ok::<(), kinesis::Error>(()) }).unwrap();
//! ```
//!
//! [`Via::selected`] is both, unless `KINESIS_TEST_VIA` names one
//! (`in-process` or `http`), so a suite can be run over one transport alone.
//! The in-process `Handle<C>` needs no switch: the generated trait is
//! implemented for it too, so the same body takes it as it is.

use std::net::SocketAddr;
use std::sync::Arc;

use kinesis::remote::{InProcess, Remote, RemoteDyn, Transport};
use kinesis::testing::TestRuntime;
use kinesis::{Component, Error, Result};

use crate::{HttpOptions, HttpServer};

/// How a test reaches the components of a [`TestRuntime`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// Calls by name in this process ([`InProcess`]).
    InProcess,
    /// A real HTTP server on 127.0.0.1 and `kinesis-client`.
    Http,
}

impl Via {
    /// Both transports.
    pub const ALL: [Via; 2] = [Via::InProcess, Via::Http];

    /// The transports to run: `KINESIS_TEST_VIA=in-process` or `=http` picks
    /// one, anything else (or nothing) both.
    pub fn selected() -> Vec<Via> {
        match std::env::var("KINESIS_TEST_VIA").as_deref() {
            Ok("in-process") => vec![Via::InProcess],
            Ok("http") => vec![Via::Http],
            _ => Via::ALL.to_vec(),
        }
    }

    /// The transport to the components of `rt`: for [`Via::Http`], a
    /// server in `rt`'s `/addons` (started on first use, on a free
    /// loopback port; it stops with the runtime).
    pub async fn transport(self, rt: &TestRuntime) -> Result<Arc<dyn Transport>> {
        match self {
            Via::InProcess => Ok(Arc::new(InProcess::new(rt.root().clone()))),
            Via::Http => {
                let addons = rt.runtime().addons();
                let server = match addons.get::<HttpServer>("http") {
                    Ok(server) => server,
                    Err(_) => {
                        let options = HttpOptions {
                            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
                            ..HttpOptions::default()
                        };
                        addons.add("http", HttpServer::new(rt.root().clone(), options)).await?
                    }
                };
                let addr =
                    server.snapshot().state.local_addr().ok_or_else(|| {
                        Error::Invalid("the test server has no local address".into())
                    })?;
                Ok(kinesis_client::Client::new(format!("http://{addr}"))?.transport())
            }
        }
    }

    /// The component of type `C` at `uri` of `rt`, through this transport.
    pub async fn remote<C: Component>(self, rt: &TestRuntime, uri: &str) -> Result<Remote<C>> {
        Ok(Remote::new(self.transport(rt).await?, uri))
    }

    /// The component at `uri` of `rt`, by name, through this transport.
    pub async fn dyn_remote(self, rt: &TestRuntime, uri: &str) -> Result<RemoteDyn> {
        Ok(RemoteDyn::new(self.transport(rt).await?, uri))
    }
}

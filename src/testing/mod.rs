//! The test kit (feature `testing`): a runtime in one line, mock
//! components, stage assertions and paused-time helpers.
//!
//! * [`TestRuntime`]: `TestRuntime::memory().await` gives a started
//!   [`Runtime`](crate::Runtime) over a new `memory://` store with a fixed
//!   key ([`TEST_KEY`]); [`TestRuntime::builder`] opens other stores, such
//!   as filedb in a temporary directory removed with the runtime
//!   (`.stores(kinesis_filedb::register).temp_dir("file://")`). It exposes
//!   the [`Runtime`](crate::Runtime) and its root [`Container`](crate::Container),
//!   so an HTTP server can be added to its `/addons`.
//! * [`Mock`]: a component whose methods are closures, one per method,
//!   declared read-only or mutating, that records its calls. It is called
//!   by name exactly like a real component (in-process, over HTTP), so it
//!   can stand where a real one would.
//! * [`expect_stage`] and [`StageLog`]: wait for a stage, or a sequence of
//!   stages, under a deadline, with failure messages that name the
//!   component, the stage seen and the stage expected.
//! * [`advance`] and [`settle`]: move paused tokio time and let the
//!   runtime's tasks run, instead of sleeping.
//!
//! ```
//! use std::time::Duration;
//!
//! use kinesis::testing::{expect_stage, Mock, TestRuntime};
//! use kinesis::{DynComponent, Precondition, Stage};
//! use serde_json::json;
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let rt = TestRuntime::memory().await;
//! let prices = Mock::new().read_only("price", |args| Ok(json!(args["qty"].as_u64().unwrap_or(0) * 3)));
//! let handle = rt.root().add("prices", prices.clone()).await?;
//! expect_stage(&handle, Stage::Started, Duration::from_secs(1)).await;
//!
//! // What a component under test would do: call another one by name.
//! let answer = rt.root().lookup("/root/prices")?.call_json("price", json!({"qty": 2}), Precondition::Any).await?;
//! assert_eq!(answer, json!(6));
//! assert_eq!(prices.calls("price"), vec![json!({"qty": 2})]);
//! assert!(rt.shutdown().await.clean);
//! # Ok::<(), kinesis::Error>(()) }).unwrap();
//! ```

mod mock;
mod runtime;
mod stages;
mod time;

pub use mock::{Mock, MockCall};
pub use runtime::{TestRuntime, TestRuntimeBuilder, TEST_KEY};
pub use stages::{expect_stage, StageLog};
pub use time::{advance, settle};

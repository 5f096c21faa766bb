//! A counter served over HTTP: `cargo run -p kinesis-http --example counter`,
//! then try the curl session of the crate docs (or `addons/http/README.md`).
//! Reads the usual environment (`KINESIS_HTTP_ADDR`, `KINESIS_LOG_LEVEL`, …);
//! stops cleanly on SIGINT or SIGTERM.

use kinesis::{Component, Config, Runtime};
use kinesis_http::HttpConfig;
use serde::{Deserialize, Serialize};

/// Counts.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Counter {
    count: u64,
}

impl Component for Counter {}

#[kinesis::handlers]
impl Counter {
    /// Adds `by` and returns the new count.
    pub fn increment(&mut self, by: u64) -> u64 {
        self.count += by;
        self.count
    }

    /// The current count.
    pub fn total(&self) -> u64 {
        self.count
    }
}

#[tokio::main]
async fn main() {
    let (config, http) = match Config::from_env().and_then(|c| Ok((c, HttpConfig::from_env()?))) {
        Ok(both) => both,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    // The `kinesis` binary validates KINESIS_LOG_LEVEL/KINESIS_LOG_FORMAT
    // (`kinesis_cmd::logging`); an example takes the filter as it is.
    let filter = tracing_subscriber::EnvFilter::try_from_env("KINESIS_LOG_LEVEL")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let runtime = Runtime::builder(config).start().await.expect("the runtime starts");
    runtime.root().add("counter", Counter::default()).await.expect("the counter starts");
    if let Err(e) = kinesis_http::serve(&runtime, &http).await {
        eprintln!("{e}");
        std::process::exit(2);
    }
    let report = runtime.run_until_signal().await.expect("signal handlers install");
    std::process::exit(report.exit_code());
}

//! A key-value store and a live configuration served over HTTP:
//! `cargo run -p kinesis-http --example kv`, then try the curl session of
//! the README's "Key-value store and live configuration".
//!
//! The store lives at `/root/kv` (its entries persist in
//! `KINESIS_DB_CONNECTION`, by default `memory://`: kept while the process
//! runs). With `KINESIS_CONFIG_FILE` naming a TOML file such as
//!
//! ```toml
//! greeting = "hello"
//! [limits]
//! max_items = 100
//! ```
//!
//! its configuration is served at `/root/config` and reloaded on SIGHUP
//! and when the file changes; `KINESIS_CONFIG__LIMITS__MAX_ITEMS=5`
//! overrides a value. Stops cleanly on SIGINT or SIGTERM.

use kinesis::kv::{Kv, KvOptions};
use kinesis::settings::Settings;
use kinesis::{Config, Runtime};
use kinesis_http::HttpConfig;
use serde::{Deserialize, Serialize};

/// The example's configuration.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct ExampleConfig {
    greeting: String,
    #[serde(default)]
    limits: Limits,
}

/// A section of it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Limits {
    #[serde(default)]
    max_items: u32,
}

fn validate(config: &ExampleConfig) -> Result<(), String> {
    if config.greeting.trim().is_empty() {
        return Err("`greeting` must not be empty".into());
    }
    Ok(())
}

#[tokio::main]
async fn main() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("KINESIS_LOG_LEVEL")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let exit = |e: kinesis::Error| -> ! {
        eprintln!("{e}");
        std::process::exit(2)
    };
    let config = Config::from_env().unwrap_or_else(|e| exit(e));
    let http = HttpConfig::from_env().unwrap_or_else(|e| exit(e));
    // Only with KINESIS_CONFIG_FILE set.
    let settings = kinesis::config::env_var(kinesis::settings::CONFIG_FILE_VAR).map(|_| {
        Settings::<ExampleConfig>::builder_from_env(kinesis::config::env_var)
            .and_then(|b| b.validate(validate).exposed(true).load())
            .unwrap_or_else(|e| exit(e))
    });
    let runtime = Runtime::builder(config)
        .default_store("memory://", None)
        .start()
        .await
        .unwrap_or_else(|e| exit(e));
    if let Some(settings) = settings {
        runtime.root().add("config", settings).await.unwrap_or_else(|e| exit(e));
    }
    runtime.root().add("kv", Kv::new(KvOptions::default())).await.unwrap_or_else(|e| exit(e));
    if let Err(e) = kinesis_http::serve(&runtime, &http).await {
        exit(e);
    }
    match runtime.run_until_signal().await {
        Ok(report) => std::process::exit(report.exit_code()),
        Err(e) => exit(e),
    }
}

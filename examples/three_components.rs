//! A container of three components that talk to each other, a subscriber,
//! and a clean shutdown on ctrl-c (SIGINT) or SIGTERM.
//!
//! ```text
//! cargo run --example three_components
//! ```
//!
//! `sensor` produces readings from a supervised task and tells them to
//! `stats`; `alerts` subscribes to `stats` and counts readings over a
//! threshold. On ctrl-c the runtime stops them newest first: alerts, stats,
//! sensor. Set `EXAMPLE_READINGS=N` to stop the sensor after N readings.

use std::io::Write;
use std::time::Duration;

use kinesis::{Change, Component, Config, Context, Handle, Handler, Result, Runtime};
use serde::{Deserialize, Serialize};

/// Keeps running statistics of the readings it is told about.
#[derive(Clone, Default, Serialize, Deserialize)]
struct Stats {
    count: u64,
    sum: f64,
    max: f64,
}

impl Component for Stats {
    async fn stop(&mut self, ctx: &mut Context<Self>) -> Result<()> {
        say(&format!("stop {} after {} readings", ctx.name(), self.count));
        Ok(())
    }
}

/// One reading.
struct Reading(f64);

impl Handler<Reading> for Stats {
    type Reply = ();
    async fn handle(&mut self, Reading(v): Reading, _: &mut Context<Self>) -> Result<()> {
        self.count += 1;
        self.sum += v;
        self.max = self.max.max(v);
        Ok(())
    }
}

/// Produces readings from a supervised task.
#[derive(Clone, Default, Serialize, Deserialize)]
struct Sensor {
    interval_ms: u64,
    limit: Option<u64>,
    #[serde(skip)]
    stats: Option<Handle<Stats>>,
}

impl Component for Sensor {
    async fn start(&mut self, ctx: &mut Context<Self>) -> Result<()> {
        let stats =
            self.stats.clone().ok_or_else(|| kinesis::Error::invalid("sensor needs stats"))?;
        let interval = Duration::from_millis(self.interval_ms);
        let limit = self.limit;
        ctx.spawn(async move {
            let mut n: u64 = 0;
            loop {
                tokio::time::sleep(interval).await;
                n += 1;
                stats.tell(Reading((n % 10) as f64 * 1.5)).await?;
                if limit.is_some_and(|l| n >= l) {
                    std::future::pending::<()>().await;
                }
            }
        });
        Ok(())
    }

    async fn stop(&mut self, ctx: &mut Context<Self>) -> Result<()> {
        say(&format!("stop {}", ctx.name()));
        Ok(())
    }
}

/// Counts readings over a threshold, from a subscription to `stats`.
#[derive(Clone, Default, Serialize, Deserialize)]
struct Alerts {
    threshold: f64,
    #[serde(skip)]
    stats: Option<Handle<Stats>>,
}

impl Component for Alerts {
    async fn start(&mut self, ctx: &mut Context<Self>) -> Result<()> {
        let Some(stats) = self.stats.clone() else { return Ok(()) };
        let mut changes = stats.subscribe();
        let threshold = self.threshold;
        ctx.spawn(async move {
            let mut alerts = 0u64;
            loop {
                match changes.recv().await {
                    Ok(Some(Change::Updated { curr, .. })) if curr.state.max > threshold => {
                        alerts += 1;
                        if alerts == 1 {
                            tracing::info!(max = curr.state.max, "threshold passed");
                        }
                    }
                    Ok(Some(_)) => {}
                    Ok(None) => return Ok(()),
                    Err(lagged) => tracing::warn!(missed = lagged.missed, "alerts lagged"),
                }
            }
        });
        Ok(())
    }

    async fn stop(&mut self, ctx: &mut Context<Self>) -> Result<()> {
        say(&format!("stop {}", ctx.name()));
        Ok(())
    }
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return std::process::ExitCode::from(2);
        }
    };
    // The `kinesis` binary validates KINESIS_LOG_LEVEL/KINESIS_LOG_FORMAT
    // (`kinesis_cmd::logging`); an example takes the filter as it is.
    let filter = tracing_subscriber::EnvFilter::try_from_env("KINESIS_LOG_LEVEL")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    match run(config).await {
        Ok(code) => std::process::ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> Result<u8> {
    let runtime = Runtime::builder(config).start().await?;
    let app = runtime.root().add_container("app").await?;
    let stats = app.add("stats", Stats::default()).await?;
    let limit = std::env::var("EXAMPLE_READINGS").ok().and_then(|v| v.parse().ok());
    app.add("sensor", Sensor { interval_ms: 10, limit, stats: Some(stats.clone()) }).await?;
    app.add("alerts", Alerts { threshold: 12.0, stats: Some(stats.clone()) }).await?;
    say("ready");
    let report = runtime.run_until_signal().await?;
    say(&format!("stopped; clean = {}", report.clean));
    Ok(report.exit_code() as u8)
}

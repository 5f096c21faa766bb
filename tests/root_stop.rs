//! Stopping the root container ends the runtime as a signal does:
//! `run_until_signal` returns, after shutting the add-ons down, so a
//! program that stops `/root` (over HTTP, with the `control` scope) exits.

mod support;

use kinesis::{Component, Config, Control, Runtime, Stage};
use serde::{Deserialize, Serialize};
use support::within;

#[derive(Clone, Default, Serialize, Deserialize)]
struct Idle;
impl Component for Idle {}

#[tokio::test]
async fn stopping_the_root_returns_from_run_until_signal() {
    let runtime = Runtime::builder(Config::default()).start().await.unwrap();
    let app = runtime.root().add("app", Idle).await.unwrap();
    let addon = runtime.addons().add("addon", Idle).await.unwrap();
    let root = runtime.root().handle().unwrap();

    let running = runtime.clone();
    let run = tokio::spawn(async move { running.run_until_signal().await });
    root.control(Control::Shutdown).await.unwrap();
    let report = within("run_until_signal to return", run).await.unwrap().unwrap();
    assert!(report.clean, "{:?}", report.pending);
    assert_eq!(app.stage(), Stage::TornDown);
    assert_eq!(addon.stage(), Stage::TornDown, "the add-ons are shut down too");
}

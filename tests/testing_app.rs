//! [`kinesis::App`]: running a subset of an app's components
//! (`KINESIS_ONLY`) with what they depend on.
#![cfg(feature = "testing")]

use kinesis::config::from_pairs;
use kinesis::testing::{Mock, TestRuntime};
use kinesis::{App, Component, Config, Context, Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Needs `/root/ledger` when it starts, as a real dependency would.
#[derive(Clone, Default, Serialize, Deserialize)]
struct Billing;
impl Component for Billing {
    async fn start(&mut self, ctx: &mut Context<Self>) -> Result<()> {
        ctx.container().expect("in a container").get_dyn("ledger").map(drop)
    }
}

fn app() -> App {
    App::new()
        .component("mailer", Mock::new)
        .component("ledger", || Mock::new().read_only("balance", |_| Ok(Value::from(0))))
        .component("billing", Billing::default)
        .depends_on(&["ledger"])
        .component("shop", Mock::new)
        .depends_on(&["billing", "mailer"])
}

fn only(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

#[test]
fn a_subset_brings_what_it_depends_on_dependencies_first() {
    let app = app();
    assert_eq!(app.names(), ["mailer", "ledger", "billing", "shop"]);
    assert_eq!(app.resolve(None).unwrap(), ["mailer", "ledger", "billing", "shop"]);
    assert_eq!(app.resolve(Some(&only(&["billing"]))).unwrap(), ["ledger", "billing"]);
    assert_eq!(app.resolve(Some(&only(&["mailer"]))).unwrap(), ["mailer"]);
    assert_eq!(
        app.resolve(Some(&only(&["shop"]))).unwrap(),
        ["ledger", "billing", "mailer", "shop"],
        "dependencies first, in the order they are named"
    );
    // The order asked in does not matter; declaration order does.
    assert_eq!(
        app.resolve(Some(&only(&["billing", "mailer"]))).unwrap(),
        ["mailer", "ledger", "billing"]
    );
}

#[test]
fn an_unknown_name_is_a_configuration_error_listing_the_known_ones() {
    let err = app().resolve(Some(&only(&["billing", "nope"]))).unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err}");
    let text = err.to_string();
    assert!(text.contains("KINESIS_ONLY") && text.contains("`nope`"), "{text}");
    assert!(text.contains("mailer, ledger, billing, shop"), "{text}");
}

#[test]
fn a_missing_dependency_or_a_cycle_is_a_mistake_in_the_app() {
    let app = App::new().component("a", Mock::new).depends_on(&["b"]);
    let err = app.resolve(None).unwrap_err();
    assert!(matches!(err, Error::Invalid(_)), "{err}");
    assert!(err.to_string().contains("`a` depends on `b`"), "{err}");

    let app = App::new()
        .component("a", Mock::new)
        .depends_on(&["b"])
        .component("b", Mock::new)
        .depends_on(&["a"]);
    let err = app.resolve(Some(&only(&["b"]))).unwrap_err();
    assert!(err.to_string().contains("cycle: b -> a -> b"), "{err}");
}

#[test]
#[should_panic(expected = "declared twice")]
fn a_name_declared_twice_panics() {
    let _ = App::new().component("a", Mock::new).component("a", Mock::new);
}

#[tokio::test]
async fn install_starts_only_the_subset_and_its_dependencies() {
    let rt = TestRuntime::memory().await;
    let started = app().install(rt.root(), Some(&only(&["billing"]))).await.unwrap();
    assert_eq!(started, ["ledger", "billing"]);
    assert_eq!(rt.root().names(), ["ledger", "billing"]);
    assert!(rt.root().lookup("/root/shop").is_err());
    assert!(rt.root().lookup("/root/mailer").is_err());
    rt.shutdown().await;

    // Without its dependency, billing does not start: the dependency is real.
    let rt = TestRuntime::memory().await;
    let alone = App::new().component("billing", Billing::default);
    let err = alone.install(rt.root(), None).await.unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err}");
    rt.shutdown().await;

    let rt = TestRuntime::memory().await;
    assert_eq!(app().install(rt.root(), None).await.unwrap().len(), 4);
    assert_eq!(rt.root().names(), ["mailer", "ledger", "billing", "shop"]);
    rt.shutdown().await;
}

#[test]
fn kinesis_only_is_read_and_checked() {
    let cfg = Config::from_lookup(from_pairs(&[("KINESIS_ONLY", "billing, mailer")])).unwrap();
    assert_eq!(cfg.only, Some(only(&["billing", "mailer"])));
    assert_eq!(app().resolve(cfg.only.as_deref()).unwrap(), ["mailer", "ledger", "billing"]);
    let err = Config::from_lookup(from_pairs(&[("KINESIS_ONLY", "billing,../etc")])).unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err}");
    assert!(err.to_string().contains("KINESIS_ONLY"), "{err}");
    assert_eq!(Config::from_lookup(from_pairs(&[("KINESIS_ONLY", " ")])).unwrap().only, None);
}

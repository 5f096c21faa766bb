//! The test kit (`kinesis::testing`, feature `testing`): the runtime in one
//! line, mocks called by name like real components, stage assertions and
//! paused-time helpers.
#![cfg(feature = "testing")]

use std::time::Duration;

use kinesis::methods::BatchCall;
use kinesis::testing::{advance, expect_stage, settle, Mock, StageLog, TestRuntime, TEST_KEY};
use kinesis::{Component, Context, Control, Error, Persist, Precondition, Result, Stage};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

const SECOND: Duration = Duration::from_secs(1);

#[derive(Clone, Default, Serialize, Deserialize, Persist)]
struct Vault {
    #[persist(encrypt)]
    secret: String,
}
impl Component for Vault {}

#[tokio::test]
async fn the_memory_runtime_has_a_store_and_a_key_and_shuts_down_cleanly() {
    let rt = TestRuntime::memory().await;
    assert_eq!(rt.url(), "memory://");
    assert_eq!(rt.runtime().config().encrypt_key.as_deref(), Some(TEST_KEY));
    assert!(rt.root().persistence().is_some_and(|p| p.cipher.is_some()));
    // Encrypted fields need the key: they start, and are redacted.
    let vault = rt.root().add("vault", Vault { secret: "s3cret".into() }).await.unwrap();
    let json = rt.root().get_dyn("vault").unwrap().snapshot_json().unwrap();
    assert_eq!(json.data.to_value()["secret"], "***");
    let report = rt.shutdown().await;
    assert!(report.clean, "{report:?}");
    assert_eq!(vault.stage(), Stage::TornDown);
}

#[tokio::test]
async fn without_a_key_encrypted_fields_refuse_to_start() {
    let rt = TestRuntime::builder().key(None).start().await.unwrap();
    let err = rt.root().add("vault", Vault::default()).await.unwrap_err();
    assert!(err.to_string().contains("secret"), "{err}");
    rt.shutdown().await;
}

#[tokio::test]
async fn the_temporary_directory_lives_as_long_as_the_runtime() {
    let rt = TestRuntime::builder()
        .temp_dir_url(|dir| {
            assert!(dir.is_dir());
            "memory://".to_owned()
        })
        .start()
        .await
        .unwrap();
    let dir = rt.dir().unwrap().to_owned();
    assert!(dir.is_dir());
    rt.shutdown().await;
    assert!(!dir.exists(), "{} is left", dir.display());

    // Dropped without a shutdown: the shutdown runs in a task, then the
    // directory goes.
    let rt = TestRuntime::builder().temp_dir("memory://").start().await.unwrap();
    assert!(rt.url().starts_with("memory:///"), "{}", rt.url());
    let dir = rt.dir().unwrap().to_owned();
    let probe = rt.root().add("probe", Mock::new()).await.unwrap();
    drop(rt);
    expect_stage(&probe, Stage::TornDown, 10 * SECOND).await;
    let deadline = tokio::time::Instant::now() + 10 * SECOND;
    while dir.exists() {
        assert!(tokio::time::Instant::now() < deadline, "{} is left", dir.display());
        tokio::task::yield_now().await;
    }
}

#[test]
fn dropping_outside_a_tokio_runtime_does_not_hang_and_removes_the_directory() {
    let tokio = tokio::runtime::Runtime::new().unwrap();
    let rt = tokio.block_on(TestRuntime::builder().temp_dir("memory://").start()).unwrap();
    let dir = rt.dir().unwrap().to_owned();
    drop(rt);
    assert!(!dir.exists());
}

#[tokio::test]
async fn an_unknown_scheme_names_the_registered_ones() {
    let err = TestRuntime::builder().url("file:///tmp/x").start().await.unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err}");
    assert!(err.to_string().contains("memory://"), "{err}");
}

fn counter_mock() -> Mock {
    Mock::new()
        .state(json!({"count": 0}))
        .mutating("increment", |args| Ok(json!(args["by"].as_u64().unwrap_or(1))))
        .read_only("total", |_| Ok(json!(7)))
        .mutating("fail", |_| Err(Error::handler("refused")))
        .read_only_async("slow_total", |_| async { Ok(json!(8)) })
}

#[tokio::test]
async fn a_mock_is_called_by_name_like_a_real_component_and_records_its_calls() {
    let rt = TestRuntime::memory().await;
    let mock = counter_mock();
    let handle = rt.root().add("counter", mock.clone()).await.unwrap();
    let dynamic = rt.root().lookup("/root/counter").unwrap();

    let listed: Vec<(&str, bool)> =
        dynamic.methods().iter().map(|m| (m.name, m.mutating)).collect();
    assert_eq!(
        listed,
        [("increment", true), ("total", false), ("fail", true), ("slow_total", false)]
    );
    assert_eq!(dynamic.meta().methods, dynamic.methods());

    assert_eq!(
        dynamic.call_json("increment", json!({"by": 3}), Precondition::Any).await.unwrap(),
        json!(3)
    );
    assert_eq!(dynamic.call_json("total", json!({}), Precondition::Any).await.unwrap(), json!(7));
    assert_eq!(
        dynamic.call_json("slow_total", json!(null), Precondition::Any).await.unwrap(),
        json!(8)
    );
    let err = dynamic.call_json("fail", json!({"why": 1}), Precondition::Any).await.unwrap_err();
    assert!(matches!(err, Error::Handler(_)), "{err}");
    let err = dynamic.call_json("nope", json!({}), Precondition::Any).await.unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err}");

    assert_eq!(mock.calls("increment"), [json!({"by": 3})]);
    assert_eq!(mock.calls("total"), [json!({})]);
    assert_eq!(mock.calls("fail"), [json!({"why": 1})], "failing calls are recorded too");
    assert!(mock.calls("nope").is_empty());
    let order: Vec<String> = mock.all_calls().into_iter().map(|c| c.method).collect();
    assert_eq!(order, ["increment", "total", "slow_total", "fail"]);
    // Mock methods do not change the state; it is what the mock was given.
    assert_eq!(dynamic.snapshot_json().unwrap().data.to_value(), json!({"count": 0}));
    assert_eq!(handle.snapshot().version, 1);
    rt.shutdown().await;
}

#[tokio::test]
async fn mutating_mock_methods_go_through_the_mailbox_and_read_only_ones_do_not() {
    let rt = TestRuntime::memory().await;
    let mock = counter_mock();
    rt.root().add("counter", mock.clone()).await.unwrap();
    let dynamic = rt.root().get_dyn("counter").unwrap();
    let stale = Precondition::Tags(vec![kinesis::ETag::of(b"not the state", None)]);
    // A mutating call is checked against If-Match in the mailbox ...
    let err = dynamic.call_json("increment", json!({}), stale.clone()).await.unwrap_err();
    assert!(matches!(err, Error::Conflict { .. }), "{err}");
    assert!(mock.calls("increment").is_empty(), "refused before the closure ran");
    // ... a read-only one runs on the snapshot.
    assert_eq!(dynamic.call_json("total", json!({}), stale).await.unwrap(), json!(7));
    // A batch runs in one mailbox turn, all or nothing.
    let calls = vec![
        BatchCall { method: "increment".into(), args: json!({"by": 2}) },
        BatchCall { method: "total".into(), args: Value::Null },
    ];
    assert_eq!(dynamic.batch_json(calls, Precondition::Any).await.unwrap(), [json!(2), json!(7)]);
    let calls = vec![
        BatchCall { method: "increment".into(), args: json!({}) },
        BatchCall { method: "fail".into(), args: json!({}) },
    ];
    let err = dynamic.batch_json(calls, Precondition::Any).await.unwrap_err();
    assert!(err.to_string().contains("batch call 1 (`fail`)"), "{err}");
    rt.shutdown().await;
}

#[tokio::test]
async fn a_replaced_mock_keeps_its_methods_and_its_record() {
    let rt = TestRuntime::memory().await;
    let mock = counter_mock();
    rt.root().add("counter", mock.clone()).await.unwrap();
    let dynamic = rt.root().get_dyn("counter").unwrap();
    let replaced = dynamic.replace_json(json!({"count": 41}), Precondition::Any).await.unwrap();
    assert_eq!(replaced.data.to_value(), json!({"count": 41}));
    assert_eq!(
        dynamic.call_json("increment", json!({}), Precondition::Any).await.unwrap(),
        json!(1)
    );
    assert_eq!(mock.calls("increment").len(), 1);
    assert_eq!(dynamic.methods().len(), 4);
    rt.shutdown().await;
}

/// A component under test that calls its pricing service by name.
#[derive(Clone, Default, Serialize, Deserialize)]
struct Checkout {
    total: u64,
}
impl Component for Checkout {}

#[kinesis::handlers]
impl Checkout {
    /// Asks `/root/prices` for the price of `qty` items and adds it.
    pub async fn buy(&mut self, qty: u64, ctx: &mut Context<Self>) -> Result<u64> {
        let prices = ctx.container().expect("in a container").get_dyn("prices")?;
        let price = prices.call_json("quote", json!({"qty": qty}), Precondition::Any).await?;
        self.total += price.as_u64().ok_or_else(|| Error::invalid("a price is a number"))?;
        Ok(self.total)
    }
}

#[tokio::test]
async fn a_component_calling_another_by_name_cannot_tell_the_mock() {
    let rt = TestRuntime::memory().await;
    let prices = Mock::new().mutating("quote", |args| Ok(json!(args["qty"].as_u64().unwrap() * 5)));
    rt.root().add("prices", prices.clone()).await.unwrap();
    let checkout = rt.root().add("checkout", Checkout::default()).await.unwrap();
    assert_eq!(checkout.buy(2).await.unwrap(), 10);
    assert_eq!(checkout.buy(1).await.unwrap(), 15);
    assert_eq!(prices.calls("quote"), [json!({"qty": 2}), json!({"qty": 1})]);
    rt.shutdown().await;
}

#[tokio::test]
async fn wait_for_calls_sees_calls_made_later() {
    let rt = TestRuntime::memory().await;
    let mock = Mock::new().mutating("ping", |_| Ok(Value::Null));
    rt.root().add("pinger", mock.clone()).await.unwrap();
    let dynamic = rt.root().get_dyn("pinger").unwrap();
    let caller = tokio::spawn(async move {
        for n in 0..3 {
            dynamic.call_json("ping", json!({"n": n}), Precondition::Any).await.unwrap();
        }
    });
    let calls = mock.wait_for_calls("ping", 3, 10 * SECOND).await;
    assert_eq!(calls, [json!({"n": 0}), json!({"n": 1}), json!({"n": 2})]);
    caller.await.unwrap();
    rt.shutdown().await;
}

#[tokio::test]
#[should_panic(expected = "mock method `ping` was not called 1 times")]
async fn wait_for_calls_fails_naming_the_method() {
    let mock = Mock::new().mutating("ping", |_| Ok(Value::Null));
    mock.wait_for_calls("ping", 1, Duration::from_millis(10)).await;
}

#[test]
#[should_panic(expected = "declared twice")]
fn a_mock_method_declared_twice_panics() {
    let _ = Mock::new().read_only("a", |_| Ok(Value::Null)).mutating("a", |_| Ok(Value::Null));
}

#[test]
#[should_panic(expected = "before cloning")]
fn mock_methods_are_declared_before_cloning() {
    let mock = Mock::new();
    let _keep = mock.clone();
    let _ = mock.read_only("a", |_| Ok(Value::Null));
}

#[tokio::test]
#[should_panic(
    expected = "/root/probe did not reach Stopped within 10ms: it is at Started (the deadline passed)"
)]
async fn expect_stage_names_the_component_the_stage_seen_and_the_stage_expected() {
    let rt = TestRuntime::memory().await;
    let probe = rt.root().add("probe", Mock::new()).await.unwrap();
    expect_stage(&probe, Stage::Stopped, Duration::from_millis(10)).await;
}

#[tokio::test]
#[should_panic(expected = "did not go through [Restarting]")]
async fn a_stage_log_fails_naming_what_it_saw() {
    let rt = TestRuntime::memory().await;
    let probe = rt.root().add("probe", Mock::new()).await.unwrap();
    let log = StageLog::of(&probe);
    probe.shutdown().await.unwrap();
    log.expect(&[Stage::Restarting], Duration::from_millis(10)).await;
}

#[tokio::test(start_paused = true)]
async fn a_delayed_restart_runs_in_paused_time_without_waiting() {
    let real = std::time::Instant::now();
    let rt = TestRuntime::memory().await;
    let probe = rt.root().add("probe", Mock::new()).await.unwrap();
    let log = StageLog::of(&probe);
    let restart = tokio::spawn({
        let probe = probe.clone();
        async move { probe.control(Control::RestartAfter(Duration::from_secs(3600))).await }
    });
    settle().await;
    assert_eq!(probe.stage(), Stage::Restarting);
    advance(Duration::from_secs(3599)).await;
    assert_eq!(probe.stage(), Stage::Restarting, "an hour has not passed");
    advance(SECOND).await;
    expect_stage(&probe, Stage::Started, Duration::ZERO).await;
    log.expect(&[Stage::Restarting, Stage::Starting, Stage::Started], Duration::ZERO).await;
    restart.await.unwrap().unwrap();
    assert!(
        real.elapsed() < Duration::from_secs(60),
        "an hour of paused time took {:?}",
        real.elapsed()
    );
    rt.shutdown().await;
}

#[tokio::test]
async fn without_signal_handlers_run_until_signal_ends_when_the_root_stops() {
    let rt = TestRuntime::memory().await;
    let running = tokio::spawn({
        let runtime = rt.runtime().clone();
        async move { runtime.run_until_signal().await }
    });
    tokio::task::yield_now().await;
    assert!(!running.is_finished());
    rt.root().shutdown().await.unwrap();
    let report = tokio::time::timeout(10 * SECOND, running).await.unwrap().unwrap().unwrap();
    assert!(report.clean, "{report:?}");
    rt.shutdown().await;
}

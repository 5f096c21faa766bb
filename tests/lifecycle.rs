//! Lifecycle: exact stage sequences, hook order, aborts.

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{counter, Log};
use kinesis::{
    Change, Component, Container, Context, Error, RestartPolicy, Result, Stage, Subscription,
};
use serde::{Deserialize, Serialize};
use Stage::*;

/// Fails the first `fail_starts` starts, or `init` when `fail_init`.
#[derive(Clone, Default, Serialize, Deserialize)]
struct Flaky {
    #[serde(skip)]
    fail_starts: Arc<AtomicU32>,
    #[serde(skip)]
    fail_init: bool,
    #[serde(skip)]
    log: Log,
}

impl Component for Flaky {
    async fn init(&mut self, _: &mut Context<Self>) -> Result<()> {
        self.log.push("init");
        if self.fail_init {
            return Err(Error::handler("init refused"));
        }
        Ok(())
    }
    async fn post_init(&mut self, _: &mut Context<Self>) -> Result<()> {
        self.log.push("post_init");
        Ok(())
    }
    async fn pre_start(&mut self, _: &mut Context<Self>) -> Result<()> {
        self.log.push("pre_start");
        Ok(())
    }
    async fn start(&mut self, _: &mut Context<Self>) -> Result<()> {
        self.log.push("start");
        if self.fail_starts.load(Ordering::SeqCst) > 0 {
            self.fail_starts.fetch_sub(1, Ordering::SeqCst);
            return Err(Error::handler("start refused"));
        }
        Ok(())
    }
    async fn stop(&mut self, _: &mut Context<Self>) -> Result<()> {
        self.log.push("stop");
        Ok(())
    }
    fn restart_policy(&self) -> RestartPolicy {
        RestartPolicy::on_failure().with_backoff(Duration::from_millis(1), Duration::from_millis(5))
    }
}

fn stages<C>(sub: &mut Subscription<C>) -> Vec<Stage> {
    let mut out = Vec::new();
    while let Ok(Some(change)) = sub.try_recv() {
        if let Change::Stage { curr, .. } = change {
            out.push(curr);
        }
    }
    out
}

#[tokio::test]
async fn start_that_fails_once_is_restarted_with_exact_stages() {
    let root = Container::root().await.unwrap();
    let log = Log::default();
    let flaky =
        Flaky { fail_starts: Arc::new(AtomicU32::new(1)), log: log.clone(), ..Default::default() };
    let prepared = root.prepare("flaky", flaky).unwrap();
    let handle = prepared.handle();
    assert_eq!(handle.stage(), Submitted);
    let mut sub = handle.subscribe();
    prepared.start().await.unwrap();
    let mut seen = vec![Submitted];
    seen.extend(stages(&mut sub));
    assert_eq!(
        seen,
        [
            Submitted,
            Preinitializing,
            Preinitialized,
            Initializing,
            Initialized,
            Starting,
            Restarting,
            Starting,
            Started
        ]
    );
    assert_eq!(log.take(), ["init", "post_init", "pre_start", "start", "stop", "start"]);

    // A restart of a started component: Started → Restarting → Starting → Started,
    // and the old run's stop finishes before the new run's start.
    handle.restart().await.unwrap();
    assert_eq!(stages(&mut sub), [Restarting, Starting, Started]);
    assert_eq!(log.take(), ["stop", "start"]);
    root.shutdown().await.unwrap();
}

#[tokio::test]
async fn failing_init_aborts_and_add_returns_the_error() {
    let root = Container::root().await.unwrap();
    let log = Log::default();
    let prepared = root
        .prepare("broken", Flaky { fail_init: true, log: log.clone(), ..Default::default() })
        .unwrap();
    let handle = prepared.handle();
    let mut sub = handle.subscribe();
    let err = prepared.start().await.unwrap_err();
    assert_eq!(err, Error::Handler("init refused".into()));
    let mut seen = vec![Submitted];
    seen.extend(stages(&mut sub));
    assert_eq!(
        seen,
        [Submitted, Preinitializing, Preinitialized, Initializing, Aborting, TearingDown, TornDown]
    );
    assert_eq!(log.take(), ["init"]);
    assert!(root.get_dyn("broken").is_err(), "an aborted component is not in its container");
    // The name is free again.
    root.add("broken", Flaky::default()).await.unwrap();
    root.shutdown().await.unwrap();
}

#[tokio::test]
async fn start_that_always_fails_gives_up_after_the_restart_limit() {
    let root = Container::root().await.unwrap();
    let log = Log::default();
    let flaky = Flaky {
        fail_starts: Arc::new(AtomicU32::new(100)),
        log: log.clone(),
        ..Default::default()
    };
    let err = root.add("hopeless", flaky).await.unwrap_err();
    assert_eq!(err, Error::Handler("start refused".into()));
    // Default intensity: 5 restarts, so 6 starts in all.
    let starts = log.get().iter().filter(|e| *e == "start").count();
    assert_eq!(starts, 6, "{:?}", log.get());
    assert!(root.names().is_empty());
    root.shutdown().await.unwrap();
}

#[tokio::test]
async fn components_start_in_order_and_stop_in_reverse() {
    let root = Container::root().await.unwrap();
    let log = Log::default();
    for name in ["a", "b", "c"] {
        root.add(name, counter(&log)).await.unwrap();
    }
    assert_eq!(root.names(), ["a", "b", "c"]);
    root.shutdown().await.unwrap();
    assert_eq!(log.take(), ["start a", "start b", "start c", "stop c", "stop b", "stop a"]);
    assert!(root.names().is_empty());
    assert_eq!(root.handle().unwrap().stage(), TornDown);
}

#[tokio::test]
async fn a_stopped_component_is_gone_from_its_container() {
    let root = Container::root().await.unwrap();
    let log = Log::default();
    let a = root.add("a", counter(&log)).await.unwrap();
    root.add("b", counter(&log)).await.unwrap();
    a.shutdown().await.unwrap();
    assert_eq!(a.stage(), TornDown);
    assert_eq!(root.names(), ["b"]);
    assert!(matches!(root.get::<common::Counter>("a"), Err(Error::NotFound(_))));
    assert!(matches!(a.ask(common::Inc(1)).await, Err(Error::Stopping(_))));
    // Stopping again is fine.
    a.shutdown().await.unwrap();
    root.shutdown().await.unwrap();
}

#[tokio::test]
async fn bad_and_duplicate_names_are_refused() {
    let root = Container::root().await.unwrap();
    for bad in ["", "with space", "a/b", "50%", "..", "_watch"] {
        let err = root.add(bad, common::Counter::default()).await.unwrap_err();
        assert!(matches!(err, Error::Invalid(_)), "{bad:?}: {err}");
    }
    root.add("ok-name_1.2~x", common::Counter::default()).await.unwrap();
    let err = root.add("ok-name_1.2~x", common::Counter::default()).await.unwrap_err();
    assert!(matches!(err, Error::Invalid(_)), "{err}");
    root.shutdown().await.unwrap();
}

/// Adds a sibling it depends on from `pre_start`.
#[derive(Clone, Default, Serialize, Deserialize)]
struct NeedsSibling {
    #[serde(skip)]
    log: Log,
}

impl Component for NeedsSibling {
    async fn pre_start(&mut self, ctx: &mut Context<Self>) -> Result<()> {
        let container = ctx.container().expect("has a container");
        container.add("dependency", counter(&self.log)).await?;
        Ok(())
    }
    async fn start(&mut self, _: &mut Context<Self>) -> Result<()> {
        self.log.push("start dependent");
        Ok(())
    }
    async fn stop(&mut self, _: &mut Context<Self>) -> Result<()> {
        self.log.push("stop dependent");
        Ok(())
    }
}

#[tokio::test]
async fn a_component_adds_siblings_from_pre_start() {
    let root = Container::root().await.unwrap();
    let log = Log::default();
    let app = root.add_container("app").await.unwrap();
    app.add("dependent", NeedsSibling { log: log.clone() }).await.unwrap();
    assert_eq!(app.names(), ["dependency", "dependent"]);
    assert_eq!(app.get::<common::Counter>("dependency").unwrap().uri(), "/root/app/dependency");
    root.shutdown().await.unwrap();
    assert_eq!(
        log.take(),
        ["start dependency", "start dependent", "stop dependent", "stop dependency"]
    );
}

#[tokio::test]
async fn nested_containers_resolve_uris_and_stop_depth_first() {
    let root = Container::root().await.unwrap();
    let log = Log::default();
    let app = root.add_container("app").await.unwrap();
    let inner = app.add_container("inner").await.unwrap();
    inner.add("x", counter(&log)).await.unwrap();
    app.add("y", counter(&log)).await.unwrap();
    root.add("z", counter(&log)).await.unwrap();
    let uris: Vec<_> = root.walk().iter().map(|c| c.uri().to_owned()).collect();
    assert_eq!(
        uris,
        ["/root/app", "/root/app/inner", "/root/app/inner/x", "/root/app/y", "/root/z"]
    );
    assert_eq!(root.lookup("/root/app/inner/x").unwrap().name(), "x");
    assert_eq!(root.lookup("/root").unwrap().uri(), "/root");
    for missing in ["/root/nope", "/root/app/inner/x/deeper", "/other", "/root/app/", "/rootapp"] {
        assert!(root.lookup(missing).is_err(), "{missing}");
    }
    root.shutdown().await.unwrap();
    assert_eq!(log.take(), ["start x", "start y", "start z", "stop z", "stop y", "stop x"]);
}

#[tokio::test]
async fn concurrent_adds_activate_one_at_a_time_in_order() {
    let root = Container::root().await.unwrap();
    let log = Log::default();
    let prepared: Vec<_> =
        (0..10).map(|i| root.prepare(&format!("c{i}"), counter(&log)).unwrap()).collect();
    let tasks: Vec<_> = prepared.into_iter().map(|p| tokio::spawn(p.start())).collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(root.names().len(), 10);
    root.shutdown().await.unwrap();
}

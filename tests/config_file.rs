//! Live configuration from a real TOML file: reloads on file changes and
//! on SIGHUP, a bad file keeps the old configuration with the reason
//! visible, overrides from the environment, errors without secrets.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use kinesis::settings::{Reload, Reloaded, Settings};
use kinesis::{Change, Container, ErrorKind, Handle, Position, Snapshot};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct App {
    name: String,
    workers: u32,
    #[serde(default)]
    database: Database,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Database {
    #[serde(default)]
    url: String,
    #[serde(default)]
    password: String,
}

fn valid(app: &App) -> Result<(), String> {
    if app.workers == 0 || app.workers > 64 {
        return Err("`workers` must be between 1 and 64".into());
    }
    Ok(())
}

/// Replaces the file as editors and deployments do: write a new file
/// beside it, then rename it over the old one.
fn replace(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

type Config = Handle<Settings<App>>;

/// Whether the latest reload was refused for a reason containing `needle`.
fn error_has(s: &Settings<App>, needle: &str) -> bool {
    s.last_error().is_some_and(|e| e.contains(needle))
}

/// Waits (at most 10 s) until the configuration's latest snapshot passes
/// `check`, on its change subscription.
async fn wait_until(
    config: &Config,
    check: impl Fn(&Settings<App>) -> bool,
) -> Arc<Snapshot<Settings<App>>> {
    let mut changes = config.subscribe();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let snapshot = config.snapshot();
        if check(&snapshot.state) {
            return snapshot;
        }
        match tokio::time::timeout_at(deadline, changes.recv()).await {
            Ok(Ok(None)) => panic!("the configuration component stopped"),
            Ok(_) => {}
            Err(_) => panic!("timed out; the state is {:?}", snapshot.state),
        }
    }
}

async fn start(
    dir: &Path,
    text: &str,
    builder: impl FnOnce(
        kinesis::settings::SettingsBuilder<App>,
    ) -> kinesis::settings::SettingsBuilder<App>,
) -> (Container, Config) {
    let path = dir.join("app.toml");
    std::fs::write(&path, text).unwrap();
    let settings = builder(
        Settings::<App>::builder(&path)
            .validate(valid)
            .env_vars([])
            .reload_on_sighup(false)
            .debounce(Duration::from_millis(50)),
    )
    .load()
    .unwrap();
    let root = Container::root().await.unwrap();
    let config = root.add("config", settings).await.unwrap();
    (root, config)
}

const GOOD: &str = "name = \"shop\"\nworkers = 4\n[database]\npassword = \"hunter2\"\n";

/// Rewriting the file reloads it; a bad rewrite (not TOML, then a value
/// the validation refuses, then the wrong type) keeps the old
/// configuration and shows why, never quoting the file; a good one again
/// replaces it and clears the error. A component reacting to generations
/// sees exactly the good ones.
#[tokio::test]
async fn file_changes_reload_and_a_bad_file_keeps_the_old_config() {
    let dir = tempfile::tempdir().unwrap();
    let (root, config) = start(dir.path(), GOOD, |b| b).await;
    let path = config.snapshot().state.path().to_owned();
    assert_eq!(config.snapshot().state.config().workers, 4);

    // Another component's reaction: the generations it was told about.
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    config.on_change(Position::Tail, move |change| {
        let log = log.clone();
        async move {
            if let Change::Updated { prev, curr } = change {
                if prev.state.generation() != curr.state.generation() {
                    log.lock()
                        .unwrap()
                        .push((curr.state.generation(), curr.state.config().workers));
                }
            }
        }
    });

    replace(&path, "name = \"shop\"\nworkers = 8\n[database]\npassword = \"hunter2\"\n");
    let s = wait_until(&config, |s| s.generation() == 2).await;
    assert_eq!(s.state.config().workers, 8);
    assert_eq!(s.state.last_error(), None);

    // Not TOML, written in place.
    std::fs::write(&path, "name = \"shop\nworkers = 16\npassword = \"hunter2\"\n").unwrap();
    // (Written in place, the file may be read half-written first: that
    // is refused too. So each step waits for its own reason.)
    let s = wait_until(&config, |s| error_has(s, "line 1")).await;
    let error = s.state.last_error().unwrap();
    assert!(error.contains("app.toml: line 1"), "{error}");
    assert!(!error.contains("hunter2"), "{error}");
    assert_eq!((s.state.generation(), s.state.config().workers), (2, 8), "old config kept");

    // Valid TOML that the validation refuses.
    replace(&path, "name = \"shop\"\nworkers = 0\n");
    let s = wait_until(&config, |s| s.failed_reloads() == 2).await;
    assert!(
        s.state.last_error().unwrap().contains("between 1 and 64"),
        "{:?}",
        s.state.last_error()
    );
    assert_eq!(s.state.config().workers, 8);

    // The wrong type, with a secret-looking value: the path, not the value.
    replace(&path, "name = \"shop\"\nworkers = \"s3cret-value\"\n");
    let s = wait_until(&config, |s| error_has(s, "`workers`: invalid type")).await;
    assert!(!s.state.last_error().unwrap().contains("s3cret"), "{:?}", s.state.last_error());
    assert_eq!(s.state.config().workers, 8);

    // Deleted: cannot read; kept.
    std::fs::remove_file(&path).unwrap();
    let s = wait_until(&config, |s| error_has(s, "cannot read")).await;
    assert!(s.state.failed_reloads() >= 4);

    replace(&path, "name = \"shop\"\nworkers = 2\n");
    let s = wait_until(&config, |s| s.generation() == 3).await;
    assert_eq!((s.state.config().workers, s.state.last_error()), (2, None));
    assert_eq!(*seen.lock().unwrap(), [(2, 8), (3, 2)]);
    root.shutdown().await.unwrap();
}

/// SIGHUP, delivered to this process, reloads (the file watch is off, so
/// only the signal can have done it).
#[cfg(unix)]
#[tokio::test]
async fn sighup_reloads() {
    let dir = tempfile::tempdir().unwrap();
    let (root, config) =
        start(dir.path(), GOOD, |b| b.watch_file(false).reload_on_sighup(true)).await;
    let path = config.snapshot().state.path().to_owned();
    replace(&path, "name = \"shop\"\nworkers = 12\n");
    let status = std::process::Command::new("kill")
        .arg("-HUP")
        .arg(std::process::id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let s = wait_until(&config, |s| s.generation() == 2).await;
    assert_eq!(s.state.config().workers, 12);
    root.shutdown().await.unwrap();
}

/// A reload by hand: the outcomes, and an unchanged file publishes nothing.
#[tokio::test]
async fn reload_outcomes() {
    let dir = tempfile::tempdir().unwrap();
    let (root, config) = start(dir.path(), GOOD, |b| b.watch_file(false)).await;
    let path = config.snapshot().state.path().to_owned();
    let version = config.snapshot().version;
    assert_eq!(config.ask(Reload).await.unwrap(), Reloaded::Unchanged);
    assert_eq!(config.snapshot().version, version, "nothing changed, nothing published");

    std::fs::write(&path, "workers = 3\n").unwrap();
    let Reloaded::Rejected { reason } = config.ask(Reload).await.unwrap() else { panic!() };
    assert!(reason.contains("missing field `name`"), "{reason}");
    assert!(config.snapshot().version > version, "the error is published");

    std::fs::write(&path, GOOD).unwrap();
    assert_eq!(config.ask(Reload).await.unwrap(), Reloaded::Unchanged);
    assert_eq!(config.snapshot().state.last_error(), None, "the error is cleared");
    std::fs::write(&path, "name = \"x\"\nworkers = 5\n").unwrap();
    assert_eq!(config.ask(Reload).await.unwrap(), Reloaded::Applied { generation: 2 });
    root.shutdown().await.unwrap();
}

/// Overrides from the environment apply at load and at every reload, and a
/// bad first file is a configuration error naming the file, not its values.
#[tokio::test]
async fn environment_overrides_and_load_errors() {
    let dir = tempfile::tempdir().unwrap();
    let vars = [
        ("KINESIS_CONFIG__WORKERS".to_owned(), "32".to_owned()),
        ("KINESIS_CONFIG__DATABASE__URL".to_owned(), "postgres://db/app".to_owned()),
    ];
    let (root, config) = start(dir.path(), GOOD, |b| b.watch_file(false).env_vars(vars)).await;
    let app = config.snapshot().state.config().clone();
    assert_eq!((app.workers, app.database.url.as_str()), (32, "postgres://db/app"));
    let path = config.snapshot().state.path().to_owned();
    std::fs::write(&path, "name = \"other\"\nworkers = 1\n").unwrap();
    config.ask(Reload).await.unwrap();
    let app = config.snapshot().state.config().clone();
    assert_eq!((app.name.as_str(), app.workers), ("other", 32), "the override still wins");
    root.shutdown().await.unwrap();

    let missing = Settings::<App>::builder(dir.path().join("nope.toml")).load().unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::Config);
    assert!(missing.to_string().contains("nope.toml: cannot read"), "{missing}");
    std::fs::write(&path, "name = \"x\"\nworkers = 100\n[database]\npassword = 7\n").unwrap();
    let bad = Settings::<App>::builder(&path).validate(valid).load().unwrap_err();
    assert!(bad.to_string().contains("`database.password`"), "{bad}");
    std::fs::write(&path, "name = \"x\"\nworkers = 100\n").unwrap();
    let bad = Settings::<App>::builder(&path).validate(valid).load().unwrap_err();
    assert!(bad.to_string().contains("between 1 and 64"), "{bad}");

    let lookup = kinesis::config::from_pairs(&[("KINESIS_CONFIG_FILE", "/nonexistent/app.toml")]);
    let err = Settings::<App>::builder_from_env(lookup).unwrap().load().unwrap_err();
    assert!(err.to_string().contains("/nonexistent/app.toml"), "{err}");
}

/// Kept off the HTTP surface unless asked.
#[tokio::test]
async fn hidden_unless_exposed() {
    use kinesis::DynComponent;
    let dir = tempfile::tempdir().unwrap();
    let (root, config) = start(dir.path(), GOOD, |b| b.watch_file(false)).await;
    assert!(!DynComponent::exposed(&config));
    root.shutdown().await.unwrap();
    let (root, config) = start(dir.path(), GOOD, |b| b.watch_file(false).exposed(true)).await;
    assert!(DynComponent::exposed(&config));
    root.shutdown().await.unwrap();
}

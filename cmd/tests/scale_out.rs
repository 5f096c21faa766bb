//! Changes across processes, with real `kinesis` processes: two binaries on
//! one store, writes to A only, and B's GET and `_watch` must follow
//! without B writing — every version once and in order, also across a
//! PostgreSQL listener disconnect and a NATS restart.
//!
//! * PostgreSQL from `KINESIS_TEST_POSTGRES_URL` (default
//!   `postgres://postgres@127.0.0.1:5432/test`); `psql` terminates the
//!   listener's connection.
//! * NATS: each test runs its own `nats-server` (JetStream, a temporary
//!   storage directory, a free port), found on `PATH` or at
//!   `/usr/sbin/nats-server`.
//!
//! Under `CI=true` a missing server fails the tests; otherwise they print a
//! notice and pass. Each test prints the latency from "A's POST returned" to
//! "B's watcher got the event" (p50, p99) over its changes; BENCHMARKS.md
//! has the figures.

#![cfg(all(unix, feature = "http"))]

mod common;

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{client, spawn, Kinesis};
use serde_json::Value;

/// How many changes each test makes.
const CHANGES: u64 = 1000;

/// The PostgreSQL tests share `/root/counter`: one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

fn skip(why: &str) {
    assert!(!ci(), "CI=true and {why}");
    eprintln!("NOTICE: skipped, {why}");
}

#[cfg(feature = "postgres")]
fn pg_url() -> Option<String> {
    let url = std::env::var("KINESIS_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let reachable = Command::new("psql")
        .args([url.as_str(), "-Atc", "SELECT 1"])
        .output()
        .is_ok_and(|o| o.status.success());
    if reachable {
        return Some(url);
    }
    skip(&format!("PostgreSQL at {url} is unreachable through psql"));
    None
}

fn count(k: &Kinesis) -> u64 {
    let v: Value = client().get(k.url("/root/counter")).send().unwrap().json().unwrap();
    v["data"]["count"].as_u64().unwrap()
}

/// B's watcher: the count of every `updated` event and when it arrived.
/// Returns once the watch is open (its first event, the snapshot, came).
fn watch(k: &Kinesis) -> mpsc::Receiver<(u64, Instant)> {
    let (tx, rx) = mpsc::channel();
    let (opened, open) = mpsc::channel();
    let url = k.url("/root/counter/_watch");
    std::thread::spawn(move || {
        let http = reqwest::blocking::Client::builder().build().unwrap();
        let response = http.get(url).send().unwrap();
        assert_eq!(response.status(), 200);
        let mut event = String::new();
        for line in std::io::BufReader::new(response).lines() {
            let Ok(line) = line else { return };
            if let Some(name) = line.strip_prefix("event:") {
                event = name.trim().to_owned();
                if event == "snapshot" {
                    let _ = opened.send(());
                }
            } else if let Some(data) = line.strip_prefix("data:") {
                if event == "updated" {
                    let v: Value = serde_json::from_str(data.trim()).unwrap();
                    let c = v["data"]["count"].as_u64().unwrap();
                    if tx.send((c, Instant::now())).is_err() {
                        return;
                    }
                }
            }
        }
    });
    open.recv_timeout(Duration::from_secs(20)).expect("the watch opened");
    rx
}

/// Increments A's counter `n` times, one request at a time; calls `midway`
/// after half of them. Returns when each POST returned, by the count it made.
fn write(a: &Kinesis, n: u64, midway: impl FnOnce()) -> Vec<(u64, Instant)> {
    let http = client();
    let mut midway = Some(midway);
    let mut done = Vec::with_capacity(n as usize);
    for i in 0..n {
        if i == n / 2 {
            (midway.take().unwrap())();
        }
        let r = http.post(a.url("/root/counter/increment")).json(&serde_json::json!({})).send();
        let r = r.unwrap();
        assert!(r.status().is_success(), "POST {i}: {}", r.status());
        let c: u64 = r.json().unwrap();
        done.push((c, Instant::now()));
    }
    done
}

/// Reads B's events until the last count of `written`; checks that they are
/// exactly the written counts, in order, each once, and prints the latency.
fn check(
    what: &str,
    b: &Kinesis,
    events: &mpsc::Receiver<(u64, Instant)>,
    written: &[(u64, Instant)],
) {
    let last = written.last().unwrap().0;
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.last().map(|(c, _)| *c) != Some(last) {
        let left = deadline.saturating_duration_since(Instant::now());
        match events.recv_timeout(left) {
            Ok(e) => seen.push(e),
            Err(_) => {
                panic!("{what}: B's watch stopped at {:?} of {last}: {}", seen.last(), b.stderr())
            }
        }
    }
    let counts: Vec<u64> = seen.iter().map(|(c, _)| *c).collect();
    let expected: Vec<u64> = written.iter().map(|(c, _)| *c).collect();
    assert_eq!(counts, expected, "{what}: every version once, in order");
    // Nothing more comes (no duplicate at the end).
    assert!(events.recv_timeout(Duration::from_millis(200)).is_err(), "{what}: nothing after");
    assert_eq!(count(b), last, "{what}: B's GET shows A's last write");
    let mut lat: Vec<Duration> = seen
        .iter()
        .zip(written)
        .map(|((_, got), (_, sent))| got.saturating_duration_since(*sent))
        .collect();
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1];
    println!(
        "LATENCY {what}: {} changes, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        lat.len(),
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        lat.last().unwrap().as_secs_f64() * 1e3,
    );
}

fn stop(mut k: Kinesis) {
    k.signal(libc::SIGINT);
    assert_eq!(k.wait().code(), Some(0), "{}", k.stderr());
}

/// A fixed key, so the processes read each other's encrypted fields.
const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

#[cfg(feature = "postgres")]
fn pg_pair(dir: &Path, url: &str) -> (Kinesis, Kinesis) {
    let env = [
        ("KINESIS_DB_CONNECTION", url),
        ("KINESIS_DB_SYMMETRIC_ENCRYPT_KEY", KEY),
        ("KINESIS_LOG_LEVEL", "info"),
    ];
    (spawn(dir, &env), spawn(dir, &env))
}

#[cfg(feature = "postgres")]
#[test]
fn postgres_a_write_to_a_reaches_b_get_and_watch_without_b_writing() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let Some(url) = pg_url() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = pg_pair(dir.path(), &url);
    let events = watch(&b);
    let written = write(&a, CHANGES, || {});
    check("postgres", &b, &events, &written);
    stop(a);
    stop(b);
}

#[cfg(feature = "postgres")]
#[test]
fn postgres_listener_disconnect_in_the_middle_loses_and_repeats_nothing() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let Some(url) = pg_url() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = pg_pair(dir.path(), &url);
    let events = watch(&b);
    let terminate = || {
        let out = Command::new("psql")
            .args([
                url.as_str(),
                "-Atc",
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                 WHERE application_name = 'kinesis-listener'",
            ])
            .output()
            .unwrap();
        let killed: u32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or(0);
        assert!(killed >= 2, "both listeners terminated: {out:?}");
    };
    // In the middle: later notifications show the gap.
    let mut written = write(&a, CHANGES / 2, terminate);
    // At the end: the last writes likely fall while B reconnects, and no
    // notification follows them; only the resync after the reconnect
    // brings them.
    written.extend(write(&a, 4, terminate));
    b.wait_for_log("change listener is back", 1);
    check("postgres, listener terminated", &b, &events, &written);
    stop(a);
    stop(b);
}

/// A `nats-server` of the test's own: JetStream, storage in a temporary
/// directory, a free port; restartable on the same port and storage.
struct Nats {
    child: Child,
    port: u16,
    store: tempfile::TempDir,
}

fn nats_server() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths).map(|p| p.join("nats-server")).find(|p| p.is_file())
    });
    found.or_else(|| Some(PathBuf::from("/usr/sbin/nats-server")).filter(|p| p.is_file()))
}

impl Nats {
    fn start() -> Option<Nats> {
        let Some(_) = nats_server() else {
            skip("nats-server is not installed");
            return None;
        };
        let port = common::free_addr().rsplit(':').next().unwrap().parse().unwrap();
        let store = tempfile::tempdir().unwrap();
        let child = Nats::run(port, store.path());
        Some(Nats { child, port, store })
    }

    fn run(port: u16, store: &Path) -> Child {
        let child = Command::new(nats_server().unwrap())
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
            .arg(store)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not listen on {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        child
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Stops the server (SIGTERM, waited for).
    fn stop(&mut self) {
        let _ = Command::new("kill").arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
    }

    /// Starts it again on the same port and storage.
    fn start_again(&mut self) {
        self.child = Nats::run(self.port, self.store.path());
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(all(feature = "sqlite", feature = "nats"))]
fn sqlite_pair(dir: &Path, nats: &Nats) -> (Kinesis, Kinesis) {
    let db = format!("sqlite://{}", dir.join("shared.db").display());
    let url = nats.url();
    let env = [
        ("KINESIS_DB_CONNECTION", db.as_str()),
        ("KINESIS_DB_SYMMETRIC_ENCRYPT_KEY", KEY),
        ("KINESIS_EVENTS_URL", url.as_str()),
        ("KINESIS_EVENTS_PREFIX", "scale-out-test"),
        ("KINESIS_LOG_LEVEL", "info"),
    ];
    (spawn(dir, &env), spawn(dir, &env))
}

#[cfg(all(feature = "sqlite", feature = "nats"))]
#[test]
fn sqlite_shared_through_nats_a_write_to_a_reaches_b() {
    let Some(nats) = Nats::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = sqlite_pair(dir.path(), &nats);
    let events = watch(&b);
    let written = write(&a, CHANGES, || {});
    check("sqlite + nats", &b, &events, &written);
    stop(a);
    stop(b);
}

/// The NATS subject a process logged that its store's changes travel on.
#[cfg(all(feature = "sqlite", feature = "nats"))]
fn subject_of(k: &Kinesis) -> String {
    k.wait_for_log("changes across processes through NATS", 0);
    let log = k.stderr();
    let line = log.lines().find(|l| l.contains("changes across processes through NATS")).unwrap();
    let at = line.find("subject=").unwrap_or_else(|| panic!("no subject in {line}"));
    line[at + "subject=".len()..].split_whitespace().next().unwrap().to_owned()
}

#[cfg(all(feature = "sqlite", feature = "nats"))]
#[test]
fn processes_on_different_stores_share_a_nats_server_without_applying_each_others_changes() {
    let Some(nats) = Nats::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = sqlite_pair(dir.path(), &nats);
    // C: the same server and prefix, a store of its own.
    let other = format!("sqlite://{}", dir.path().join("other.db").display());
    let url = nats.url();
    let c = spawn(
        dir.path(),
        &[
            ("KINESIS_DB_CONNECTION", other.as_str()),
            ("KINESIS_DB_SYMMETRIC_ENCRYPT_KEY", KEY),
            ("KINESIS_EVENTS_URL", url.as_str()),
            ("KINESIS_EVENTS_PREFIX", "scale-out-test"),
            ("KINESIS_LOG_LEVEL", "info"),
        ],
    );
    // The store's id scopes the subject: A and B share one, C has another.
    let (sa, sb, sc) = (subject_of(&a), subject_of(&b), subject_of(&c));
    assert_eq!(sa, sb, "one store, one subject");
    assert_ne!(sa, sc, "another store, another subject");
    assert!(sa.starts_with("scale-out-test.changes.") && sc.starts_with("scale-out-test.changes."));

    let events = watch(&b);
    let written = write(&a, 5, || {});
    check("sqlite + nats, a third store beside", &b, &events, &written);
    // B has every change; C, on the stream of another store, none of them.
    assert_eq!(count(&c), 0);
    stop(a);
    stop(b);
    stop(c);
}

#[cfg(all(feature = "sqlite", feature = "nats"))]
#[test]
fn a_nats_restart_in_the_middle_loses_and_repeats_nothing() {
    let Some(mut nats) = Nats::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = sqlite_pair(dir.path(), &nats);
    let events = watch(&b);
    // Half-way, NATS stops; A goes on writing (its store is SQLite), then
    // NATS comes back and B must get what A wrote meanwhile, in order.
    let mut during = Vec::new();
    let mut written = write(&a, CHANGES / 2, || {
        nats.stop();
        during = write(&a, 20, || {});
        // Down until A's outbox has seen a publish fail (its retry path).
        a.wait_for_log("publishing a change failed", 0);
        nats.start_again();
    });
    // The writes while NATS was down come between the two halves.
    let half = written.iter().position(|(c, _)| *c > during[0].0).unwrap();
    written.splice(half..half, during);
    check("sqlite + nats, server restarted", &b, &events, &written);
    assert!(b.stderr().contains("NATS disconnected"), "B saw the restart: {}", b.stderr());
    stop(a);
    stop(b);
}

/// Bad NATS settings stop the start with the variable named (exit 2); a
/// server that cannot be reached stops it too, saying so (exit 1).
#[cfg(feature = "nats")]
#[test]
fn bad_nats_settings_are_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let run = |envs: &[(&str, &str)]| {
        let mut cmd = common::command(dir.path());
        cmd.env("KINESIS_DB_CONNECTION", "memory://").env("KINESIS_HTTP_ADDR", common::free_addr());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };
    for (name, value) in
        [("KINESIS_EVENTS_URL", "127.0.0.1:4222"), ("KINESIS_EVENTS_PREFIX", "a.b")]
    {
        let out = run(&[("KINESIS_EVENTS_URL", "nats://127.0.0.1:1"), (name, value)]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}={value}: {stderr}");
        assert!(stderr.contains(name), "{name}={value}: {stderr}");
    }
    let port = common::free_addr().rsplit(':').next().unwrap().to_owned();
    let out = run(&[("KINESIS_EVENTS_URL", &format!("nats://127.0.0.1:{port}"))]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("KINESIS_EVENTS_URL") && stderr.contains("cannot connect"), "{stderr}");
    let help = common::command(dir.path()).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("KINESIS_EVENTS_URL") && help.contains("KINESIS_EVENTS_PREFIX"),
        "{help}"
    );
}

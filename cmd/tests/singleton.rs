//! Three `kinesis` processes with `/root/counter` as a singleton, leases on
//! a real Redis and a real PostgreSQL server, the counter's record in one
//! SQLite file they share:
//!
//! * exactly one runs it, and a monitor polling all three never sees two;
//! * SIGKILL the holder: another runs it within the lease (+ 1 s margin);
//! * SIGSTOP the holder in the middle of a write and keep it stopped past
//!   its lease; another takes over and writes; SIGCONT the old one: its
//!   write is refused by the store with `409` `fenced`, and the count is
//!   the new holder's.
//!
//! Servers from `KINESIS_TEST_REDIS_URL` / `KINESIS_TEST_POSTGRES_URL`
//! (defaults on 127.0.0.1); under `CI=true` an unreachable one fails the
//! test, otherwise it prints a notice and passes. The takeover times are
//! printed (`cargo test … -- --nocapture`).

#![cfg(all(unix, feature = "http", feature = "lock", feature = "sqlite"))]

mod common;

use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{spawn, Kinesis};
use serde_json::{json, Value};

/// The lease time the processes use.
const TTL: Duration = Duration::from_secs(2);
/// What "within the lease" allows beyond it: a retry interval (a sixth of
/// the lease), starting the component, and the test's polling.
const MARGIN: Duration = Duration::from_secs(1);
const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

fn server(var: &str, default: &str, port: u16) -> Option<String> {
    let url = std::env::var(var).unwrap_or_else(|_| default.to_owned());
    if !url.contains(&format!("127.0.0.1:{port}"))
        || TcpStream::connect(("127.0.0.1", port)).is_ok()
    {
        return Some(url);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("CI=true and the server at {url} is unreachable");
    }
    eprintln!("NOTICE: skipped, {url} is unreachable; set {var}");
    None
}

fn quick() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder().timeout(Duration::from_millis(500)).build().unwrap()
}

/// Whether `k` runs the singleton: `GET /root/counter` answers 200 (404
/// when it does not; `None` when the process does not answer).
fn runs(c: &reqwest::blocking::Client, k: &Kinesis) -> Option<bool> {
    c.get(k.url("/root/counter")).send().ok().map(|r| r.status().is_success())
}

/// Polls until exactly one of `procs` (skipping `skip`) runs it; answers
/// its index and the time taken.
fn wait_holder(procs: &[Kinesis], skip: &[usize], limit: Duration) -> (usize, Duration) {
    let c = quick();
    let start = Instant::now();
    loop {
        let running: Vec<usize> = (0..procs.len())
            .filter(|i| !skip.contains(i))
            .filter(|&i| runs(&c, &procs[i]) == Some(true))
            .collect();
        assert!(running.len() <= 1, "{running:?} run the singleton at once");
        if let [one] = running[..] {
            return (one, start.elapsed());
        }
        assert!(start.elapsed() < limit, "nobody runs the singleton after {limit:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Polls every live process in a loop until stopped; records every sweep
/// in which two answered that they run the singleton.
struct Monitor {
    stop: Arc<AtomicBool>,
    skip: Arc<Mutex<Vec<usize>>>,
    thread: Option<std::thread::JoinHandle<(u64, Vec<Vec<usize>>)>>,
}

impl Monitor {
    fn start(urls: Vec<String>) -> Monitor {
        let stop = Arc::new(AtomicBool::new(false));
        let skip = Arc::new(Mutex::new(Vec::new()));
        let (s, k) = (stop.clone(), skip.clone());
        let thread = std::thread::spawn(move || {
            let c = quick();
            let (mut sweeps, mut doubles) = (0, Vec::new());
            while !s.load(Ordering::SeqCst) {
                let skip = k.lock().unwrap().clone();
                let running: Vec<usize> = (0..urls.len())
                    .filter(|i| !skip.contains(i))
                    .filter(|&i| c.get(&urls[i]).send().is_ok_and(|r| r.status().is_success()))
                    .collect();
                if running.len() > 1 {
                    doubles.push(running);
                }
                sweeps += 1;
                std::thread::sleep(Duration::from_millis(5));
            }
            (sweeps, doubles)
        });
        Monitor { stop, skip, thread: Some(thread) }
    }

    fn skip(&self, i: usize) {
        self.skip.lock().unwrap().push(i);
    }

    fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::SeqCst);
        let (sweeps, doubles) = self.thread.take().unwrap().join().unwrap();
        assert!(doubles.is_empty(), "two processes ran the singleton at once: {doubles:?}");
        sweeps
    }
}

fn count(k: &Kinesis) -> u64 {
    let v: Value = common::client().get(k.url("/root/counter")).send().unwrap().json().unwrap();
    v["data"]["count"].as_u64().unwrap()
}

fn scenario(backend: &str, lock_url: &str) {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("shared.db").display());
    let ttl = format!("{}ms", TTL.as_millis());
    let envs = [
        ("KINESIS_DB_CONNECTION", db.as_str()),
        ("KINESIS_DB_SYMMETRIC_ENCRYPT_KEY", KEY),
        ("KINESIS_ONLY", "counter"),
        ("KINESIS_SINGLETONS", "counter"),
        ("KINESIS_LOCK_URL", lock_url),
        ("KINESIS_LOCK_TTL", ttl.as_str()),
    ];
    let mut procs: Vec<Kinesis> = (0..3).map(|_| spawn(dir.path(), &envs)).collect();
    let monitor = Monitor::start(procs.iter().map(|k| k.url("/root/counter")).collect());

    // Exactly one runs it, and keeps it over several lease times.
    let (first, _) = wait_holder(&procs, &[], TTL * 3);
    let c = common::client();
    let r = c.post(procs[first].url("/root/counter/increment")).json(&json!({})).send().unwrap();
    assert!(r.status().is_success(), "{}", r.text().unwrap());
    std::thread::sleep(TTL * 2); // the monitor samples all along
    assert_eq!(wait_holder(&procs, &[], TTL).0, first, "a renewed lease moved");

    // SIGKILL the holder: another runs it within the lease.
    monitor.skip(first);
    procs[first].signal(libc::SIGKILL);
    let (second, took) = wait_holder(&procs, &[first], TTL * 5);
    println!(
        "{backend}: takeover after SIGKILL: {} ms (lease {} ms)",
        took.as_millis(),
        TTL.as_millis()
    );
    assert!(took <= TTL + MARGIN, "{backend}: takeover after SIGKILL took {took:?}");
    assert_eq!(count(&procs[second]), 1, "the new holder loaded the old one's write");
    let sweeps = monitor.finish();
    assert!(sweeps > 50, "the monitor sampled {sweeps} times only");

    // SIGSTOP the holder in the middle of a write, past its lease.
    let seen = procs[second].stderr().matches("increment_after waiting").count();
    let url = procs[second].url("/root/counter/increment_after");
    let late = std::thread::spawn(move || {
        let r = common::client().post(url).json(&json!({"ms": 1500})).send().unwrap();
        (r.status().as_u16(), r.text().unwrap())
    });
    procs[second].wait_for_log("increment_after waiting", seen);
    procs[second].signal(libc::SIGSTOP);
    let stopped = Instant::now();
    let (third, took) = wait_holder(&procs, &[first, second], TTL * 5);
    println!("{backend}: takeover from a stopped holder: {} ms", took.as_millis());
    assert!(stopped.elapsed() >= TTL / 2, "taken over from a live holder");
    let r = c.post(procs[third].url("/root/counter/increment")).json(&json!({})).send().unwrap();
    assert!(r.status().is_success(), "{}", r.text().unwrap());
    assert_eq!(r.json::<Value>().unwrap(), json!(2));
    // SIGCONT: the old holder's write reaches the store and is refused.
    procs[second].signal(libc::SIGCONT);
    let (status, body) = late.join().unwrap();
    assert_eq!(status, 409, "{backend}: the old holder's write: {body}");
    assert!(body.contains("fenced"), "{body}");
    println!("{backend}: the old holder's write after SIGCONT: {status} {body}");
    assert_eq!(count(&procs[third]), 2, "the count is the new holder's");
    // The old holder stops running it by itself; the new one keeps it.
    let deadline = Instant::now() + TTL * 3;
    while runs(&quick(), &procs[second]) != Some(false) {
        assert!(
            Instant::now() < deadline,
            "the old holder still runs it: {}",
            procs[second].stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(wait_holder(&procs, &[first], TTL).0, third);
    assert!(procs[second].stderr().contains("stopping the singleton"));
    for k in &mut procs {
        let _ = k.child.kill();
    }
}

#[test]
fn redis_singleton_over_three_processes() {
    let Some(url) = server("KINESIS_TEST_REDIS_URL", "redis://127.0.0.1:6379", 6379) else {
        return;
    };
    scenario("redis", &url);
}

#[test]
fn postgres_singleton_over_three_processes() {
    let Some(url) =
        server("KINESIS_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test", 5432)
    else {
        return;
    };
    scenario("postgres", &url);
}

#[test]
fn bad_lock_settings_stop_the_program() {
    let dir = tempfile::tempdir().unwrap();
    for (envs, needle) in [
        (&[("KINESIS_LOCK_TTL", "soon")][..], "KINESIS_LOCK_TTL"),
        (&[("KINESIS_LOCK_URL", "zk://127.0.0.1")][..], "KINESIS_LOCK_URL"),
        (&[("KINESIS_SINGLETONS", "counter")][..], "KINESIS_LOCK_URL"),
        (
            &[("KINESIS_SINGLETONS", "nope"), ("KINESIS_LOCK_URL", "redis://127.0.0.1:6379")][..],
            "KINESIS_SINGLETONS",
        ),
    ] {
        let mut cmd = common::command(dir.path());
        cmd.env("KINESIS_HTTP_ADDR", common::free_addr()).env("KINESIS_DB_CONNECTION", "memory://");
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{envs:?}: {stderr}");
        assert!(stderr.contains(needle), "{envs:?}: {stderr}");
    }
    let help = common::command(dir.path()).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for (var, _) in kinesis_lock::VARIABLES {
        let times = help.lines().filter(|l| l.trim_start().starts_with(var)).count();
        assert_eq!(times, 1, "{var}: {help}");
    }
}

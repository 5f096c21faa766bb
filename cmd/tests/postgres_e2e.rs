//! Two kinesis processes sharing one PostgreSQL database, and PostgreSQL
//! restarted under a stream of mutations: nothing acknowledged is lost.
//!
//! The server comes from `KINESIS_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`); under `CI=true` an unreachable
//! server fails the tests, otherwise they print a notice and pass.

#![cfg(all(unix, feature = "http", feature = "postgres"))]

mod common;

use std::net::TcpStream;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{client, spawn, Kinesis};
use serde_json::Value;

fn pg_url() -> Option<String> {
    let url = std::env::var("KINESIS_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    if TcpStream::connect("127.0.0.1:5432").is_ok() || !url.contains("127.0.0.1:5432") {
        return Some(url);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("CI=true and PostgreSQL at {url} is unreachable");
    }
    eprintln!("NOTICE: skipped, PostgreSQL is unreachable; set KINESIS_TEST_POSTGRES_URL");
    None
}

/// Both tests use the same records (`/root/counter`), and one restarts the
/// server: they run one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A fixed key, so runs against a shared database can read each other's records.
const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

fn count(k: &Kinesis) -> u64 {
    let v: Value = client().get(k.url("/root/counter")).send().unwrap().json().unwrap();
    v["data"]["count"].as_u64().unwrap()
}

/// Sends increments from `threads` threads until `stop`, counting 2xx
/// answers in `ok` as they come; returns that count and the other statuses.
fn hammer(
    k: &Kinesis,
    threads: usize,
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
) -> std::thread::JoinHandle<(u64, Vec<u16>)> {
    let url = k.url("/root/counter/increment");
    std::thread::spawn(move || {
        let statuses = Arc::new(std::sync::Mutex::new(Vec::new()));
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let (url, stop, ok, statuses) =
                    (url.clone(), stop.clone(), ok.clone(), statuses.clone());
                std::thread::spawn(move || {
                    let c = client();
                    while !stop.load(Ordering::SeqCst) {
                        match c.post(&url).json(&serde_json::json!({})).send() {
                            Ok(r) if r.status().is_success() => {
                                ok.fetch_add(1, Ordering::SeqCst);
                            }
                            Ok(r) => statuses.lock().unwrap().push(r.status().as_u16()),
                            Err(_) => statuses.lock().unwrap().push(0),
                        }
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
        let statuses = statuses.lock().unwrap().clone();
        (ok.load(Ordering::SeqCst), statuses)
    })
}

#[test]
fn two_processes_sharing_postgres_never_lose_an_acknowledged_update() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let Some(url) = pg_url() else { return };
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("KINESIS_DB_CONNECTION", url.as_str()),
        ("KINESIS_DB_SYMMETRIC_ENCRYPT_KEY", KEY),
        ("KINESIS_LOG_LEVEL", "warn"),
    ];
    let mut a = spawn(dir.path(), &env);
    let mut b = spawn(dir.path(), &env);
    let start = count(&a).max(count(&b));
    let stop = Arc::new(AtomicBool::new(false));
    let (ok_a, ok_b) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let ha = hammer(&a, 4, stop.clone(), ok_a.clone());
    let hb = hammer(&b, 4, stop.clone(), ok_b.clone());
    // Race until both processes have 200 acknowledged increments (at most 60 s).
    let deadline = Instant::now() + Duration::from_secs(60);
    while (ok_a.load(Ordering::SeqCst) < 200 || ok_b.load(Ordering::SeqCst) < 200)
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::SeqCst);
    let (ok_a, st_a) = ha.join().unwrap();
    let (ok_b, st_b) = hb.join().unwrap();
    // The loser of a race gets a conflict (412 Precondition Failed or 409),
    // never a 5xx, and its component reloads what the winner stored.
    for s in st_a.iter().chain(&st_b) {
        assert!(*s == 409 || *s == 412, "unexpected status {s}");
    }
    assert!(ok_a > 0 && ok_b > 0, "both processes made progress: {ok_a} {ok_b}");
    // One more increment on each brings both up to date with the store.
    let _ =
        client().post(a.url("/root/counter/increment")).json(&serde_json::json!({"by": 0})).send();
    let _ =
        client().post(b.url("/root/counter/increment")).json(&serde_json::json!({"by": 0})).send();
    let end = count(&a).max(count(&b));
    assert_eq!(
        end - start,
        ok_a + ok_b,
        "every acknowledged increment is in the store, none twice"
    );
    a.signal(libc::SIGINT);
    b.signal(libc::SIGINT);
    assert_eq!(a.wait().code(), Some(0));
    assert_eq!(b.wait().code(), Some(0));
}

fn pg_ctl_restart() -> bool {
    let Ok(entries) = std::fs::read_dir("/etc/postgresql") else { return false };
    let Some(version) =
        entries.flatten().next().map(|e| e.file_name().to_string_lossy().into_owned())
    else {
        return false;
    };
    Command::new("pg_ctlcluster")
        .args(["--skip-systemctl-redirect", &version, "main", "restart"])
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn postgres_restarted_under_load_loses_nothing_and_kinesis_recovers_by_itself() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let Some(url) = pg_url() else { return };
    if !url.contains("127.0.0.1") || Command::new("pg_ctlcluster").arg("--help").output().is_err() {
        eprintln!("NOTICE: skipped, PostgreSQL is not a local pg_ctlcluster cluster");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut k = spawn(
        dir.path(),
        &[
            ("KINESIS_DB_CONNECTION", url.as_str()),
            ("KINESIS_DB_SYMMETRIC_ENCRYPT_KEY", KEY),
            ("KINESIS_LOG_LEVEL", "warn"),
        ],
    );
    let start = count(&k);
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicU64::new(0));
    let h = hammer(&k, 2, stop.clone(), acked.clone());
    // Restart once writes are flowing.
    let deadline = Instant::now() + Duration::from_secs(30);
    while acked.load(Ordering::SeqCst) < 50 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(pg_ctl_restart(), "pg_ctlcluster restart failed");
    // Keep going after the restart until writes succeed again.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut recovered = false;
    while Instant::now() < deadline {
        let r = client()
            .post(k.url("/root/counter/increment"))
            .json(&serde_json::json!({"by": 0}))
            .send();
        if r.is_ok_and(|r| r.status().is_success()) {
            recovered = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    // Let the writers see the recovered server too.
    let resumed = acked.load(Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(30);
    while acked.load(Ordering::SeqCst) < resumed + 20 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::SeqCst);
    let (ok, statuses) = h.join().unwrap();
    assert!(recovered, "writes succeed again without restarting kinesis: {}", k.stderr());
    for s in &statuses {
        assert_eq!(*s, 503, "failures during the outage are 503 (Error::Store): {statuses:?}");
    }
    assert_eq!(count(&k) - start, ok, "every acknowledged increment survived the restart");
    k.signal(libc::SIGINT);
    assert_eq!(k.wait().code(), Some(0));
}

//! `KINESIS_ONLY`: two `kinesis` processes run disjoint subsets of the demo
//! app on one SQLite file (filedb holds an exclusive lock on its directory,
//! so it cannot be shared), each serving only its part; what each wrote is
//! there for a process that runs everything.

#![cfg(all(unix, feature = "http", feature = "sqlite"))]

mod common;

use std::path::Path;
use std::process::Stdio;

use common::{client, command, free_addr, spawn, spawn_at, Kinesis};
use serde_json::{json, Value};

/// A fixed key: the processes must read each other's encrypted fields.
const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

fn start(dir: &Path, only: Option<&str>) -> Kinesis {
    let mut envs = vec![
        ("KINESIS_DB_CONNECTION", "sqlite://shared.db"),
        ("KINESIS_DB_SYMMETRIC_ENCRYPT_KEY", KEY),
    ];
    if let Some(only) = only {
        envs.push(("KINESIS_ONLY", only));
    }
    spawn(dir, &envs)
}

fn status(k: &Kinesis, path: &str) -> u16 {
    client().get(k.url(path)).send().unwrap().status().as_u16()
}

fn post(k: &Kinesis, path: &str, body: Value) -> Value {
    let r = client().post(k.url(path)).json(&body).send().unwrap();
    assert_eq!(r.status(), 200, "POST {path}");
    r.json().unwrap()
}

fn get(k: &Kinesis, path: &str) -> Value {
    let r = client().get(k.url(path)).send().unwrap();
    assert_eq!(r.status(), 200, "GET {path}");
    r.json().unwrap()
}

/// The URIs `GET /` lists.
fn tree(k: &Kinesis) -> Vec<String> {
    let nodes = get(k, "/");
    let nodes = nodes.as_array().cloned().or_else(|| nodes["components"].as_array().cloned());
    nodes.unwrap().iter().map(|n| n["uri"].as_str().unwrap().to_owned()).collect()
}

fn stop(mut k: Kinesis) {
    k.signal(15);
    let status = k.wait();
    assert!(status.success(), "exit {status:?}: {}", k.stderr());
}

#[test]
fn two_processes_with_disjoint_subsets_share_one_store_each_serving_its_part() {
    let dir = tempfile::tempdir().unwrap();
    let a = start(dir.path(), Some("kinesis,counter"));
    let b = start(dir.path(), Some("notes"));

    assert_eq!(tree(&a), ["/root", "/root/kinesis", "/root/counter"]);
    assert_eq!(tree(&b), ["/root", "/root/notes"]);
    for path in ["/root/kinesis", "/root/counter"] {
        assert_eq!(status(&a, path), 200, "{path} on a");
        assert_eq!(status(&b, path), 404, "{path} on b");
    }
    assert_eq!(status(&a, "/root/notes"), 404);
    assert_eq!(status(&b, "/root/notes"), 200);
    assert_eq!(status(&b, "/root/counter/total"), 404);

    // Both write to the one store at the same time.
    for n in 1..=3 {
        assert_eq!(post(&a, "/root/counter/increment", json!({"by": 2})), json!(2 * n));
        post(&b, "/root/notes/put", json!({"key": format!("k{n}"), "text": "shared store"}));
    }
    assert_eq!(get(&b, "/root/notes/list"), json!(["k1", "k2", "k3"]));
    assert!(a.stderr().contains("running a subset of the app"), "{}", a.stderr());
    stop(a);
    stop(b);

    // One process running everything finds what both wrote.
    let all = start(dir.path(), None);
    assert_eq!(tree(&all), ["/root", "/root/kinesis", "/root/counter", "/root/notes"]);
    assert_eq!(get(&all, "/root/counter/total"), json!(6));
    assert_eq!(get(&all, "/root/notes/list"), json!(["k1", "k2", "k3"]));
    // `kinesis` ran once before, in process a only.
    assert_eq!(get(&all, "/root/kinesis/executions"), json!(2));
    stop(all);
}

#[test]
fn a_bad_subset_stops_the_start_with_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let help = command(dir.path()).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert_eq!(
        help.lines().filter(|l| l.trim_start().starts_with("KINESIS_ONLY")).count(),
        1,
        "{help}"
    );
    for (only, needles) in [
        ("counter,nope", &["KINESIS_ONLY", "`nope`", "kinesis, counter, notes"][..]),
        ("counter,no/slash", &["KINESIS_ONLY", "no/slash"][..]),
        (" , ", &["KINESIS_ONLY"][..]),
    ] {
        let stderr_path = dir.path().join("stderr.log");
        let child = command(dir.path())
            .env("KINESIS_HTTP_ADDR", free_addr())
            .env("KINESIS_DB_CONNECTION", "sqlite://shared.db")
            .env("KINESIS_DB_SYMMETRIC_ENCRYPT_KEY", KEY)
            .env("KINESIS_ONLY", only)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr_path).unwrap())
            .spawn()
            .unwrap();
        // Killed on drop if it does not exit (within the deadline of `wait`).
        let mut k = Kinesis { child, addr: String::new(), stderr_path };
        let status = k.wait();
        let stderr = k.stderr();
        assert_eq!(status.code(), Some(2), "KINESIS_ONLY={only}: {stderr}");
        for needle in needles {
            assert!(stderr.contains(needle), "KINESIS_ONLY={only}: no {needle} in {stderr}");
        }
    }
}

/// `kinesis serve --only NAMES` runs the subset, and wins over
/// `KINESIS_ONLY`.
#[test]
fn serve_only_runs_the_subset_named_on_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let k = spawn_at(
        dir.path(),
        &free_addr(),
        &["serve", "--only", "notes"],
        &[
            ("KINESIS_ONLY", "counter"),
            ("KINESIS_DB_CONNECTION", "sqlite://serve-only.db"),
            ("KINESIS_DB_SYMMETRIC_ENCRYPT_KEY", KEY),
        ],
    );
    assert_eq!(tree(&k), ["/root", "/root/notes"]);
    assert_eq!(status(&k, "/root/counter"), 404);
    stop(k);
}

//! Tests across processes: compare-and-set between processes sharing a
//! directory, and crash safety under SIGKILL.
//!
//! The child processes are this test binary itself, started with
//! [`CHILD_ENV`] set so that [`child_process_entry_point`] plays the child.
#![cfg(unix)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use kinesis::persist::{Record, Store, StoreError};
use kinesis_filedb::FileStore;
use rand::Rng;
use serde_json::{json, Map, Value};

/// Set in a child process to the role it plays.
const CHILD_ENV: &str = "KINESIS_FILEDB_TEST_CHILD";
/// The data directory of a child process.
const DIR_ENV: &str = "KINESIS_FILEDB_TEST_DIR";
/// The record the children write.
const URI: &str = "/root/contended";

/// Processes in the race.
const RACERS: usize = 3;
/// Versions the racers write in all.
const RACE_ROUNDS: u64 = 60;
/// Kills in the crash test.
const CRASH_ROUNDS: usize = 60;
/// Bytes of payload per crash-test record: large enough that a write is many
/// system calls, so a kill can land in the middle of one.
const PAYLOAD_BYTES: usize = 96 * 1024;

/// Not a test of its own: the entry point of the child processes the other
/// tests start by running this binary with [`CHILD_ENV`] set. Without it
/// (the normal test run) it returns at once.
#[test]
fn child_process_entry_point() {
    let Ok(role) = std::env::var(CHILD_ENV) else {
        return;
    };
    let dir = PathBuf::from(std::env::var(DIR_ENV).expect("the parent sets the data directory"));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    match role.split_once(':') {
        Some(("racer", id)) => runtime.block_on(racer(&dir, id.parse().unwrap())),
        _ if role == "crash-writer" => runtime.block_on(crash_writer(&dir)),
        _ => panic!("unknown child role {role}"),
    }
}

/// Runs this binary as a child playing `role` on `dir`, stdout piped.
fn spawn_child(role: &str, dir: &Path) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_process_entry_point", "--nocapture", "--test-threads=1", "-q"])
        .env(CHILD_ENV, role)
        .env(DIR_ENV, dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

/// Sends every stdout line of `child` of the form `<tag> <number>` to a
/// channel, from a thread.
fn numbered_lines(child: &mut Child) -> (mpsc::Receiver<(String, u64)>, thread::JoinHandle<()>) {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some((tag, n)) = line.split_once(' ') {
                if let Ok(n) = n.trim().parse::<u64>() {
                    let _ = tx.send((tag.to_owned(), n));
                }
            }
        }
    });
    (rx, reader)
}

/// Prints `<tag> <n>` on stdout at once.
fn report(tag: &str, n: u64) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{tag} {n}").unwrap();
    out.flush().unwrap();
}

// ---------------------------------------------------------------------------
// Two (three) processes racing compare-and-set.

/// [`RACERS`] processes share one directory. Once all are ready, each loops:
/// load the record, append its id to `history`, save expecting the loaded
/// version; until the record has [`RACE_ROUNDS`] versions. Each reports
/// `WIN v` or `LOSE v` for its save expecting `v`.
///
/// Every version is won by exactly one process, there were losers, and the
/// final history is exactly the winners in order: the OS lock makes the
/// compare-and-set hold across processes, and no acknowledged write is lost.
#[test]
fn processes_sharing_a_directory_race_compare_and_set() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    std::fs::create_dir_all(tmp.path().join("ready")).unwrap();
    let mut children: Vec<Child> =
        (0..RACERS).map(|id| spawn_child(&format!("racer:{id}"), &dir)).collect();
    let readers: Vec<_> = children.iter_mut().map(numbered_lines).collect();

    let deadline = Instant::now() + Duration::from_secs(60);
    for (id, child) in children.iter_mut().enumerate() {
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                assert!(status.success(), "racer {id} failed: {status}");
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("racer {id} did not finish in time");
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    let mut winners: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    let mut losses = 0;
    for (id, (rx, reader)) in readers.into_iter().enumerate() {
        reader.join().unwrap();
        for (tag, version) in rx.try_iter() {
            match tag.as_str() {
                "WIN" => winners.entry(version).or_default().push(id as u64),
                "LOSE" => losses += 1,
                other => panic!("racer {id} printed {other}"),
            }
        }
    }
    assert_eq!(winners.keys().copied().collect::<Vec<_>>(), (0..RACE_ROUNDS).collect::<Vec<_>>());
    for (version, ids) in &winners {
        assert_eq!(ids.len(), 1, "version {version} was won by processes {ids:?}");
    }
    assert!(losses > 0, "the processes never collided; the test proved nothing");

    let store = FileStore::open(&dir).unwrap();
    let record = block_on(store.load(URI)).unwrap().unwrap();
    assert_eq!(record.version, RACE_ROUNDS);
    let expected: Vec<Value> = winners.values().map(|ids| json!(ids[0])).collect();
    assert_eq!(record.fields["history"], Value::Array(expected), "an acknowledged write was lost");
}

/// The child side of the race.
async fn racer(dir: &Path, id: u64) {
    let store = FileStore::open(dir).unwrap();
    // Start together: announce, then wait for the others.
    let ready = dir.parent().unwrap().join("ready");
    std::fs::write(ready.join(id.to_string()), b"").unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::read_dir(&ready).unwrap().count() < RACERS {
        assert!(Instant::now() < deadline, "racer {id}: the others never came");
        thread::sleep(Duration::from_millis(1));
    }
    loop {
        let (version, mut history) = match store.load(URI).await.unwrap() {
            Some(r) => (r.version, r.fields["history"].as_array().unwrap().clone()),
            None => (0, Vec::new()),
        };
        if version >= RACE_ROUNDS {
            return;
        }
        history.push(json!(id));
        let mut fields = Map::new();
        fields.insert("history".into(), Value::Array(history));
        match store.save(&Record::new(URI, "test::History", version + 1, fields), version).await {
            Ok(()) => report("WIN", version),
            Err(StoreError::Conflict { .. }) => report("LOSE", version),
            Err(e) => panic!("racer {id}: {e}"),
        }
    }
}

// ---------------------------------------------------------------------------
// Crash safety.

/// [`CRASH_ROUNDS`] times: a child process saves version after version of
/// one record (about 96 KiB each), printing `ACK v` once `save` returned; it
/// is killed with SIGKILL at a random moment after its first acknowledgement.
/// After every kill the record loads (not torn, not empty, not missing), its
/// version is at least the last acknowledged one, and its payload is exactly
/// the one written for that version. The store ignores the temporary file a
/// killed writer may leave, and the next writer proceeds.
#[test]
fn acknowledged_saves_survive_sigkill_and_no_torn_record_is_seen() {
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let store = FileStore::open(&dir).unwrap();
    let mut rng = rand::thread_rng();
    let mut last_acked = 0;
    let mut unacknowledged_but_written = 0;
    for round in 0..CRASH_ROUNDS {
        let mut child = spawn_child("crash-writer", &dir);
        let (rx, reader) = numbered_lines(&mut child);
        let first = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok((_, v)) => v,
            Err(e) => {
                let _ = child.kill();
                panic!("round {round}: the writer acknowledged nothing: {e}");
            }
        };
        thread::sleep(Duration::from_micros(rng.gen_range(0..40_000)));
        child.kill().unwrap();
        child.wait().unwrap();
        reader.join().unwrap();
        let acked = rx.try_iter().map(|(_, v)| v).fold(first, u64::max);
        assert!(acked > last_acked, "round {round}: the writer made no progress");

        let record = match block_on(store.load(URI)) {
            Ok(Some(record)) => record,
            Ok(None) => panic!("round {round}: the record is gone"),
            Err(e) => panic!("round {round}: the record does not load: {e}"),
        };
        assert!(
            record.version >= acked,
            "round {round}: version {} on disk, {acked} acknowledged",
            record.version
        );
        assert!(record.version <= acked + 1, "round {round}: a version from nowhere");
        assert_eq!(record.fields["version"], json!(record.version), "round {round}");
        assert!(
            record.fields["payload"].as_str() == Some(payload(record.version).as_str()),
            "round {round}: the payload of version {} is not the one written",
            record.version
        );
        if record.version > acked {
            unacknowledged_but_written += 1;
        }
        assert_eq!(block_on(store.list("")).unwrap(), vec![URI.to_owned()], "round {round}");
        last_acked = acked;
    }
    eprintln!(
        "{CRASH_ROUNDS} kills in {:?}; last acknowledged version {last_acked}; {unacknowledged_but_written} \
         kills landed between a save and its acknowledgement",
        started.elapsed()
    );
}

/// The child side of the crash test: saves forever, acknowledging each save.
async fn crash_writer(dir: &Path) {
    let store = FileStore::open(dir).unwrap();
    loop {
        let current = store.load(URI).await.unwrap().map_or(0, |r| r.version);
        let next = current + 1;
        let mut fields = Map::new();
        fields.insert("version".into(), json!(next));
        fields.insert("payload".into(), json!(payload(next)));
        store.save(&Record::new(URI, "test::Crash", next, fields), current).await.unwrap();
        report("ACK", next);
    }
}

/// The payload written with `version`: distinct for every version.
fn payload(version: u64) -> String {
    let unit = format!("{version:012}|");
    unit.repeat(PAYLOAD_BYTES / unit.len())
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
}

//! Tests across processes: a second process on one directory is refused,
//! and acknowledged saves survive SIGKILL.
//!
//! The child processes are this test binary itself, started with
//! [`CHILD_ENV`] set so that [`child_process_entry_point`] plays the child.
#![cfg(unix)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use kinesis::persist::{Record, Store};
use kinesis_filedb::{FileStore, Options};
use rand::Rng;
use serde_json::{json, Map};

/// Set in a child process to the role it plays.
const CHILD_ENV: &str = "KINESIS_FILEDB_TEST_CHILD";
/// The data directory of a child process.
const DIR_ENV: &str = "KINESIS_FILEDB_TEST_DIR";

/// Kills in the crash test.
const CRASH_ROUNDS: usize = 120;
/// Concurrent writers in a crash-test child, each on its own record.
const CRASH_WRITERS: usize = 4;
/// Bytes of payload of the first writer's record: large enough that a
/// commit is many pages, so a kill can land in the middle of writing it.
const LARGE_PAYLOAD: usize = 96 * 1024;
/// Segment size in the crash-test child: small, so segments are sealed and
/// compacted while the kills land.
const CRASH_SEGMENT_BYTES: u64 = 512 * 1024;

/// Not a test of its own: the entry point of the child processes the other
/// tests start by running this binary with [`CHILD_ENV`] set. Without it
/// (the normal test run) it returns at once.
#[test]
fn child_process_entry_point() {
    let Ok(role) = std::env::var(CHILD_ENV) else {
        return;
    };
    let dir = PathBuf::from(std::env::var(DIR_ENV).expect("the parent sets the data directory"));
    match role.as_str() {
        "opener" => opener(&dir),
        "crash-writer" => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(crash_writer(&dir));
        }
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

/// Prints `line` on stdout at once.
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").unwrap();
    out.flush().unwrap();
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
}

// ---------------------------------------------------------------------------
// One process per directory.

/// The child side: opens the directory and says what happened: `REFUSED
/// <message>` or `OPENED <version of /shared>`.
fn opener(dir: &Path) {
    match FileStore::open(dir) {
        Err(e) => say(&format!("REFUSED {e}")),
        Ok(store) => {
            let version = block_on(store.load("/shared")).unwrap().map_or(0, |r| r.version);
            say(&format!("OPENED {version}"));
        }
    }
}

/// Runs an opener child to its end; the line it said.
fn run_opener(dir: &Path) -> String {
    let mut child = spawn_child("opener", dir);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "the opener failed: {status}");
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the opener did not finish in time");
        }
        thread::sleep(Duration::from_millis(5));
    }
    let mut out = String::new();
    child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    let said = out.lines().find(|l| l.starts_with("REFUSED ") || l.starts_with("OPENED "));
    said.unwrap_or_else(|| panic!("the opener said nothing: {out}")).to_owned()
}

/// While this process has the directory open, another process that opens
/// it is refused with a message naming the directory, saying another
/// process holds it and which one; once this process closes the store, the
/// other opens it and sees what was saved.
#[test]
fn a_second_process_is_refused_with_a_clear_message() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let store = FileStore::open(&dir).unwrap();
    block_on(store.save(&Record::new("/shared", "test::Shared", 1, Map::new()), 0)).unwrap();

    let out = run_opener(&dir);
    let message = out.strip_prefix("REFUSED ").unwrap_or_else(|| panic!("not refused: {out}"));
    assert!(message.contains(&store.dir().display().to_string()), "{message}");
    assert!(message.contains("in use by another process"), "{message}");
    assert!(message.contains(&format!("pid {}", std::process::id())), "{message}");
    assert!(message.contains("filedb.lock"), "{message}");

    drop(store);
    assert_eq!(run_opener(&dir), "OPENED 1");
}

// ---------------------------------------------------------------------------
// Crash safety.

/// [`CRASH_ROUNDS`] times: a child process runs [`CRASH_WRITERS`]
/// concurrent writers, each saving version after version of its own record
/// (one of about 96 KiB, the others small) and printing `ACK<i> <v>` once
/// `save` returned; it is killed with SIGKILL at a random moment, mostly
/// after its first acknowledgement, every tenth round while it is still
/// starting. After every kill this process opens the directory (a start
/// never fails), and every record loads at least at its last acknowledged
/// version (or the version found after the previous kill), at most one
/// beyond (the save in flight), with exactly the payload written for that
/// version; the listing holds exactly the records
/// written. Segments are small, so kills also land while segments are
/// sealed and compacted.
#[test]
fn acknowledged_saves_survive_sigkill() {
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let mut rng = rand::thread_rng();
    let mut acked = [0u64; CRASH_WRITERS];
    let mut beyond = 0;
    for round in 0..CRASH_ROUNDS {
        let mut child = spawn_child("crash-writer", &dir);
        let (rx, reader) = acknowledgements(&mut child);
        let while_starting = round % 10 == 9;
        let mut first = None;
        if !while_starting {
            match rx.recv_timeout(Duration::from_secs(20)) {
                Ok(ack) => first = Some(ack),
                Err(e) => {
                    let _ = child.kill();
                    panic!("round {round}: the writer acknowledged nothing: {e}");
                }
            }
        }
        thread::sleep(Duration::from_micros(rng.gen_range(0..30_000)));
        child.kill().unwrap();
        child.wait().unwrap();
        reader.join().unwrap();
        let before = acked;
        for (writer, version) in first.into_iter().chain(rx.try_iter()) {
            acked[writer] = acked[writer].max(version);
        }
        if !while_starting {
            assert!(acked != before, "round {round}: the writers made no progress");
        }

        let store = FileStore::open(&dir)
            .unwrap_or_else(|e| panic!("round {round}: the store does not open: {e}"));
        let mut listed = Vec::new();
        for (writer, acked) in acked.iter_mut().enumerate() {
            let uri = crash_uri(writer);
            let record = match block_on(store.load(&uri)) {
                Ok(record) => record,
                Err(e) => panic!("round {round}: {uri} does not load: {e}"),
            };
            let version = record.as_ref().map_or(0, |r| r.version);
            assert!(version >= *acked, "round {round}: {uri} at {version}, {acked} acknowledged");
            assert!(
                version <= *acked + 1,
                "round {round}: {uri} at {version}, a version from nowhere"
            );
            if let Some(record) = record {
                assert_eq!(
                    record.fields["payload"],
                    json!(payload(writer, version)),
                    "round {round}"
                );
                listed.push(uri);
            }
            beyond += usize::from(version > *acked);
            // Seen after a restart, it is as good as acknowledged: it must
            // never go away either.
            *acked = version;
        }
        listed.sort();
        assert_eq!(block_on(store.list("")).unwrap(), listed, "round {round}");
    }
    assert!(acked.iter().all(|&v| v > 0));
    let compacted = std::fs::read_dir(&dir)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_str().unwrap().ends_with(".compacted"))
        .count();
    assert_eq!(compacted, 1, "no compaction ran between the kills; the test covered less");
    eprintln!(
        "{CRASH_ROUNDS} kills in {:?}; last acknowledged versions {acked:?}; {beyond} times a \
         save was on disk but not yet acknowledged",
        started.elapsed()
    );
}

/// Sends every `ACK<i> <v>` line of `child` as `(i, v)` to a channel, from a
/// thread.
fn acknowledgements(child: &mut Child) -> (mpsc::Receiver<(usize, u64)>, thread::JoinHandle<()>) {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let parsed = line.strip_prefix("ACK").and_then(|rest| rest.split_once(' '));
            if let Some((writer, version)) = parsed {
                if let (Ok(w), Ok(v)) = (writer.parse(), version.trim().parse()) {
                    let _ = tx.send((w, v));
                }
            }
        }
    });
    (rx, reader)
}

/// The child side of the crash test: saves forever, acknowledging each save.
async fn crash_writer(dir: &Path) {
    let options = Options { segment_bytes: CRASH_SEGMENT_BYTES, ..Options::default() };
    let store = FileStore::open_with(dir, options).unwrap();
    let mut tasks = Vec::new();
    for writer in 0..CRASH_WRITERS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let uri = crash_uri(writer);
            loop {
                let current = store.load(&uri).await.unwrap().map_or(0, |r| r.version);
                let next = current + 1;
                let mut fields = Map::new();
                fields.insert("payload".into(), json!(payload(writer, next)));
                store.save(&Record::new(&uri, "test::Crash", next, fields), current).await.unwrap();
                say(&format!("ACK{writer} {next}"));
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
}

fn crash_uri(writer: usize) -> String {
    format!("/crash/{writer}")
}

/// The payload `writer` writes with `version`: distinct for every version.
fn payload(writer: usize, version: u64) -> String {
    let unit = format!("{writer}:{version:012}|");
    let bytes = if writer == 0 { LARGE_PAYLOAD } else { 100 };
    unit.repeat(bytes / unit.len())
}

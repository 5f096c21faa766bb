//! The command line against a real runtime: a `kinesis` server spawned in a
//! temporary directory, and `kinesis ps | get | put | patch | call | watch |
//! stop | restart | tasks | token new` run as subprocesses against it, with
//! and without `--json`, checking what they print and their exit codes.

#![cfg(all(unix, feature = "http", feature = "filedb"))]

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

mod common;

use common::{command, free_addr, spawn, Kinesis};

/// What one run of the command line left.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    /// Stdout as the one JSON document `--json` promises.
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not one JSON document ({e}): {self:?}"))
    }

    /// Stderr as the JSON error object `--json` promises.
    fn error(&self) -> Value {
        serde_json::from_str(self.stderr.trim())
            .unwrap_or_else(|e| panic!("not a JSON error ({e}): {self:?}"))
    }

    #[track_caller]
    fn expect(self, code: i32) -> Run {
        assert_eq!(self.code, Some(code), "{self:?}");
        self
    }
}

/// The command line, pointed at a runtime, with its own state directory
/// (where `get` remembers ETags).
struct Cli {
    url: String,
    state: PathBuf,
    token: Option<String>,
}

impl Cli {
    fn new(url: String, state: &Path) -> Cli {
        Cli { url, state: state.to_path_buf(), token: None }
    }

    fn at(k: &Kinesis, state: &Path) -> Cli {
        Cli::new(k.url(""), state)
    }

    fn command(&self, args: &[&str]) -> std::process::Command {
        let mut cmd = command(&self.state);
        cmd.env("KINESIS_URL", &self.url).env("XDG_STATE_HOME", &self.state).args(args);
        if let Some(token) = &self.token {
            cmd.env("KINESIS_TOKEN", token);
        }
        cmd
    }

    fn run(&self, args: &[&str]) -> Run {
        self.run_with_stdin(args, "")
    }

    fn run_with_stdin(&self, args: &[&str], input: &str) -> Run {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        Run {
            code: out.status.code(),
            stdout: String::from_utf8(out.stdout).unwrap(),
            stderr: String::from_utf8(out.stderr).unwrap(),
        }
    }

    /// The counter's count, read with `get --json`.
    fn count(&self) -> u64 {
        self.run(&["--json", "get", "/root/counter"]).expect(0).json()["data"]["count"]
            .as_u64()
            .unwrap()
    }
}

/// A command left running (`watch`), its stdout read line by line on a
/// thread.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Running {
    fn start(cli: &Cli, args: &[&str]) -> Running {
        let mut child =
            cli.command(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Running { child, lines }
    }

    /// Reads lines until one satisfies `wanted`, within 20 s; the lines read.
    #[track_caller]
    fn wait_for(&mut self, wanted: impl Fn(&str) -> bool) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let done = wanted(&line);
                    seen.push(line);
                    if done {
                        return seen;
                    }
                }
                Err(_) => panic!("no such line within 20 s; saw {seen:?}"),
            }
        }
    }

    /// What the command wrote on stderr (once it has exited).
    fn stderr(&mut self) -> String {
        let mut text = String::new();
        if let Some(mut stderr) = self.child.stderr.take() {
            std::io::Read::read_to_string(&mut stderr, &mut text).unwrap();
        }
        text
    }

    /// Waits (20 s at most) for the command to exit on its own.
    fn exit_code(&mut self) -> Option<i32> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(Instant::now() < deadline, "the command did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `check` every 20 ms until it holds, for at most 20 s.
#[track_caller]
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check() {
        assert!(Instant::now() < deadline, "{what}: not within 20 s");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The node of `uri` in `ps --json`, if it is there.
fn node(cli: &Cli, uri: &str) -> Option<Value> {
    let tree = cli.run(&["--json", "ps"]).expect(0).json();
    tree.as_array().unwrap().iter().find(|n| n["uri"] == uri).cloned()
}

#[test]
fn ps_and_get_show_the_tree_and_the_state() {
    let dir = tempfile::tempdir().unwrap();
    let k = spawn(dir.path(), &[]);
    let cli = Cli::at(&k, dir.path());

    let ps = cli.run(&["ps"]).expect(0);
    let header = ps.stdout.lines().next().unwrap();
    assert_eq!(
        header.split_whitespace().collect::<Vec<_>>(),
        ["URI", "TYPE", "STAGE", "VERSION", "RESTARTS"]
    );
    let row = ps.stdout.lines().find(|l| l.starts_with("/root/counter ")).expect(&ps.stdout);
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells, ["/root/counter", "kinesis_cmd::demo::Counter", "Started", "1", "0"]);
    // Columns are aligned: every row's TYPE starts where the header's does.
    let at = header.find("TYPE").unwrap();
    for line in ps.stdout.lines().skip(1) {
        assert_eq!(&line[at - 2..at], "  ", "{line}");
        assert_ne!(&line[at..=at], " ", "{line}");
    }
    let tree = cli.run(&["--json", "ps"]).expect(0).json();
    let uris: Vec<&str> =
        tree.as_array().unwrap().iter().map(|n| n["uri"].as_str().unwrap()).collect();
    assert_eq!(uris, ["/root", "/root/kinesis", "/root/counter", "/root/notes"]);
    assert_eq!(tree[2]["stage"], "Started");
    assert_eq!(tree[2]["restarts"], 0);

    let get = cli.run(&["get", "/root/counter"]).expect(0);
    assert_eq!(serde_json::from_str::<Value>(&get.stdout).unwrap(), json!({"count": 0}));
    assert!(get.stdout.contains("\n  \"count\""), "pretty: {}", get.stdout);
    let doc = cli.run(&["--json", "get", "/root/counter"]).expect(0).json();
    assert!(get.stderr.contains(doc["etag"].as_str().unwrap()), "{get:?}");
    assert_eq!(doc["uri"], "/root/counter");
    assert_eq!(doc["data"], json!({"count": 0}));
    assert_eq!(doc["meta"]["stage"], "Started");
    let methods: Vec<&str> = doc["meta"]["methods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert!(methods.contains(&"increment"), "{methods:?}");

    // A component the runtime does not have: the server says so, exit 1.
    let missing = cli.run(&["get", "/root/nope"]).expect(1);
    assert!(missing.stderr.starts_with("kinesis: not found:"), "{missing:?}");
    assert!(missing.stdout.is_empty());
    let missing = cli.run(&["--json", "get", "/root/nope"]).expect(1);
    assert_eq!(missing.error()["kind"], "not-found");
    assert_eq!(missing.error()["exit"], 1);
    assert!(missing.stdout.is_empty());
}

#[test]
fn call_types_arguments_by_the_method_table() {
    let dir = tempfile::tempdir().unwrap();
    let k = spawn(dir.path(), &[]);
    let cli = Cli::at(&k, dir.path());

    // `by` is declared Option<u64>: `by=3` is the number 3, so the
    // counter moves by 3 (a string would be refused with 422).
    let call = cli.run(&["call", "/root/counter", "increment", "by=3"]).expect(0);
    assert_eq!(call.stdout.trim(), "3");
    assert_eq!(cli.count(), 3);
    let call = cli.run(&["--json", "call", "/root/counter", "increment", "by=4"]).expect(0);
    assert_eq!(call.json(), json!(7));
    cli.run(&["call", "/root/counter", "increment"]).expect(0);
    assert_eq!(cli.count(), 8, "an Option may be left out");
    // Raw JSON with `:=`, not checked by the CLI; the server refuses a string.
    let raw = cli.run(&["call", "/root/counter", "increment", "by:=\"2\""]).expect(1);
    assert!(raw.stderr.starts_with("kinesis: invalid:"), "{raw:?}");
    cli.run(&["call", "/root/counter", "increment", "by:=2"]).expect(0);
    assert_eq!(cli.count(), 10);

    // Argument errors the CLI finds from the method table: exit 2, nothing sent.
    for (args, needle) in [
        (&["by=x"][..], "argument `by` (Option<u64>): `x` is not a whole number"),
        (&["by=-1"], "whole number of 0 or more"),
        (&["step=1"], "takes no argument `step`; its arguments: by: Option<u64>"),
        (&["by=1", "by=2"], "given twice"),
    ] {
        let mut all = vec!["call", "/root/counter", "increment"];
        all.extend_from_slice(args);
        let bad = cli.run(&all).expect(2);
        assert!(bad.stderr.contains(needle), "{args:?}: {bad:?}");
    }
    let bad = cli.run(&["call", "/root/counter", "sleep"]).expect(2);
    assert!(bad.stderr.contains("`sleep` needs ms=u64"), "{bad:?}");
    let bad = cli.run(&["call", "/root/counter", "decrement"]).expect(2);
    assert!(bad.stderr.contains("no method `decrement`; its methods: increment"), "{bad:?}");
    let bad = cli.run(&["--json", "call", "/root/counter", "increment", "by=x"]).expect(2);
    assert_eq!(bad.error()["kind"], "usage");
    assert_eq!(cli.count(), 10, "no refused call changed the counter");

    // Strings stay strings, even when they look like numbers.
    cli.run(&["call", "/root/notes", "put", "key=42", "text=hello world"]).expect(0);
    let note = cli.run(&["--json", "call", "/root/notes", "get", "key=42"]).expect(0);
    assert_eq!(note.json(), json!("hello world"));
    let listed = cli.run(&["call", "/root/notes", "list"]).expect(0);
    assert_eq!(serde_json::from_str::<Value>(&listed.stdout).unwrap(), json!(["42"]));
    // A handler's own refusal comes from the server: exit 1.
    let refused = cli.run(&["call", "/root/notes", "get", "key=missing"]).expect(1);
    assert!(refused.stderr.contains("not found: note `missing`"), "{refused:?}");
    // Conditional calls.
    let stale = "00000000000000000000000000000000";
    let conflict = cli.run(&["call", "/root/counter", "increment", "--if-match", stale]).expect(1);
    assert!(conflict.stderr.contains("conflict"), "{conflict:?}");
}

#[test]
fn put_uses_the_etag_of_the_last_get_and_patch_merges() {
    let dir = tempfile::tempdir().unwrap();
    let k = spawn(dir.path(), &[]);
    let cli = Cli::at(&k, dir.path());
    let file = dir.path().join("counter.json");
    std::fs::write(&file, r#"{"count": 10}"#).unwrap();
    let file = file.to_str().unwrap();

    // Never read: no ETag to put against, so no blind write.
    let refused = cli.run(&["put", "/root/counter", file]).expect(2);
    assert!(refused.stderr.contains("run `kinesis get /root/counter` first"), "{refused:?}");
    assert_eq!(cli.count(), 0);

    // Read, then put: conditional on the remembered ETag.
    cli.run(&["get", "/root/counter"]).expect(0);
    let put = cli.run(&["put", "/root/counter", file]).expect(0);
    assert_eq!(serde_json::from_str::<Value>(&put.stdout).unwrap(), json!({"count": 10}));
    assert!(put.stderr.contains("/root/counter replaced"), "{put:?}");
    assert_eq!(cli.count(), 10);
    // The ETags live in a file of the user's own (0600), without secrets.
    let etags = dir.path().join("kinesis").join("etags.json");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&etags).unwrap().permissions().mode() & 0o777, 0o600);

    // Someone else changes it: the remembered ETag is stale, exit 1 with the
    // current ETag.
    cli.run(&["call", "/root/counter", "increment"]).expect(0);
    // (`ps` does not update the remembered ETag; only get, put and patch do.)
    let current = node(&cli, "/root/counter").unwrap()["etag"].as_str().unwrap().to_owned();
    let stale = cli.run(&["put", "/root/counter", file]).expect(1);
    assert!(stale.stderr.contains(&format!("current etag is {current}")), "{stale:?}");
    let stale = cli.run(&["--json", "put", "/root/counter", file]).expect(1);
    assert_eq!(stale.error()["kind"], "conflict");
    assert_eq!(stale.error()["current_etag"], current.as_str());
    assert!(stale.stdout.is_empty());
    assert_eq!(cli.count(), 11, "the stale put changed nothing");

    // --if-match with the current ETag, the document from standard input.
    let put = cli
        .run_with_stdin(
            &["--json", "put", "/root/counter", "-", "--if-match", &current],
            r#"{"count": 20}"#,
        )
        .expect(0)
        .json();
    assert_eq!(put["data"], json!({"count": 20}));
    assert!(put["version"].as_u64().unwrap() > 1);
    // The put's ETag is remembered: the next put needs no --if-match.
    std::fs::write(dir.path().join("c21.json"), r#"{"count": 21}"#).unwrap();
    cli.run(&["put", "/root/counter", "c21.json"]).expect(0);
    assert_eq!(cli.count(), 21);
    // `*` overwrites whatever is there, deliberately.
    cli.run_with_stdin(&["put", "/root/counter", "-", "--if-match", "*"], r#"{"count": 5}"#)
        .expect(0);
    assert_eq!(cli.count(), 5);
    // Not JSON, or no such file: usage, exit 2.
    let bad =
        cli.run_with_stdin(&["put", "/root/counter", "-", "--if-match", "*"], "count=5").expect(2);
    assert!(bad.stderr.contains("standard input does not hold JSON"), "{bad:?}");
    cli.run(&["put", "/root/counter", "/nonexistent.json", "--if-match", "*"]).expect(2);
    cli.run(&["put", "/root/counter", file, "--if-match", "not-an-etag"]).expect(2);

    // patch: a merge patch; with a stale --if-match it is refused.
    let patched = cli.run(&["patch", "/root/counter", r#"{"count": 42}"#]).expect(0);
    assert_eq!(serde_json::from_str::<Value>(&patched.stdout).unwrap(), json!({"count": 42}));
    let doc = cli.run(&["--json", "patch", "/root/counter", r#"{"count": 43}"#]).expect(0).json();
    assert_eq!(doc["data"], json!({"count": 43}));
    let etag = doc["etag"].as_str().unwrap().to_owned();
    cli.run(&["patch", "/root/counter", r#"{"count": 44}"#, "--if-match", &etag]).expect(0);
    let stale =
        cli.run(&["patch", "/root/counter", r#"{"count": 45}"#, "--if-match", &etag]).expect(1);
    assert!(stale.stderr.contains("conflict"), "{stale:?}");
    cli.run(&["patch", "/root/counter", "{nope"]).expect(2);
    let invalid = cli.run(&["patch", "/root/counter", r#"{"count": "many"}"#]).expect(1);
    assert!(invalid.stderr.starts_with("kinesis: invalid:"), "{invalid:?}");
    assert_eq!(cli.count(), 44);
}

#[test]
fn watch_prints_changes_until_the_component_is_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let k = spawn(dir.path(), &[]);
    let cli = Cli::at(&k, dir.path());
    let mut human = Running::start(&cli, &["watch", "/root/counter"]);
    let mut machine = Running::start(&cli, &["--json", "watch", "/root/counter"]);
    let first = human.wait_for(|l| l.contains("snapshot"));
    assert_eq!(first.last().unwrap(), r#"v1 snapshot {"count":0}"#);
    machine.wait_for(|l| l.contains("snapshot"));

    cli.run(&["call", "/root/counter", "increment", "by=2"]).expect(0);
    human.wait_for(|l| l == r#"v2 updated {"count":2}"#);
    let seen = machine.wait_for(|l| l.contains(r#""type":"updated""#));
    let event: Value = serde_json::from_str(seen.last().unwrap()).unwrap();
    assert_eq!(event["version"], 2);
    assert_eq!(event["prev_version"], 1);
    assert_eq!(event["data"], json!({"count": 2}));

    // --since resumes after a version: the updates after it, no snapshot.
    let mut resumed = Running::start(&cli, &["--json", "watch", "/root/counter", "--since", "1"]);
    let seen = resumed.wait_for(|l| l.contains(r#""version":2"#));
    let first: Value = serde_json::from_str(&seen[0]).unwrap();
    assert_eq!(first["type"], "updated", "{seen:?}");
    assert_eq!(first["version"], 2);
    drop(resumed);

    // Stopping the component ends both watches, exit 0.
    let stop = cli.run(&["stop", "/root/counter"]).expect(0);
    assert_eq!(stop.stdout.trim(), "/root/counter stopped");
    assert_eq!(human.exit_code(), Some(0));
    assert_eq!(machine.exit_code(), Some(0));
    let note = human.stderr();
    assert!(note.contains("/root/counter went away"), "{note}");
    assert_eq!(machine.stderr(), "", "no notes with --json");
    assert!(node(&cli, "/root/counter").is_none(), "stopped for good");
    cli.run(&["get", "/root/counter"]).expect(1);
    // Watching what is not there fails at once.
    let gone = cli.run(&["watch", "/root/counter"]).expect(1);
    assert!(gone.stderr.starts_with("kinesis: not found:"), "{gone:?}");
    let stop = cli.run(&["--json", "stop", "/root/notes"]).expect(0);
    assert_eq!(stop.json(), json!({"uri": "/root/notes", "op": "stop"}));
}

#[test]
fn watch_ends_cleanly_on_ctrl_c() {
    let dir = tempfile::tempdir().unwrap();
    let k = spawn(dir.path(), &[]);
    let cli = Cli::at(&k, dir.path());
    let mut watch = Running::start(&cli, &["watch", "/root/notes"]);
    watch.wait_for(|l| l.contains("snapshot"));
    let ok = std::process::Command::new("kill")
        .args(["-INT", &watch.child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    assert_eq!(watch.exit_code(), Some(0));
}

#[test]
fn restart_now_and_after_a_delay() {
    let dir = tempfile::tempdir().unwrap();
    let k = spawn(dir.path(), &[]);
    let cli = Cli::at(&k, dir.path());
    cli.run(&["call", "/root/counter", "increment", "by=5"]).expect(0);

    let restart = cli.run(&["restart", "/root/counter"]).expect(0);
    assert_eq!(restart.stdout.trim(), "/root/counter restarted");
    let counter = node(&cli, "/root/counter").unwrap();
    assert_eq!(counter["stage"], "Started");
    assert_eq!(counter["restarts"], 1);
    assert_eq!(cli.count(), 5, "a restart keeps the state");

    let asked = Instant::now();
    let restart = cli.run(&["--json", "restart", "/root/counter", "--after", "1s"]).expect(0);
    assert_eq!(restart.json(), json!({"uri": "/root/counter", "op": "restart", "after": "1s"}));
    eventually("the counter stops", || node(&cli, "/root/counter").unwrap()["stage"] != "Started");
    eventually("the counter starts again", || {
        node(&cli, "/root/counter").unwrap()["stage"] == "Started"
    });
    assert!(asked.elapsed() >= Duration::from_secs(1), "{:?}", asked.elapsed());
    assert_eq!(node(&cli, "/root/counter").unwrap()["restarts"], 2);

    let human = cli.run(&["restart", "/root/notes", "--after", "250ms"]).expect(0);
    assert_eq!(human.stdout.trim(), "/root/notes stopping; it starts again in 250ms");
    cli.run(&["restart", "/root/nope"]).expect(1);
    cli.run(&["restart", "/root/counter", "--after", "soon"]).expect(2);
}

#[test]
fn tasks_lists_the_runtime_tasks() {
    let dir = tempfile::tempdir().unwrap();
    let k = spawn(dir.path(), &[]);
    let cli = Cli::at(&k, dir.path());
    let empty = cli.run(&["--json", "tasks"]).expect(0);
    assert_eq!(empty.json(), json!([]));
    let id = cli
        .run(&["call", "/root/notes", "recount", "steps=100", "step_ms=100"])
        .expect(0)
        .stdout
        .trim()
        .to_owned();
    // Until the task has reported its first progress, its total is unknown.
    let mut table = cli.run(&["tasks"]).expect(0);
    eventually("the task reports its progress", || {
        table = cli.run(&["tasks"]).expect(0);
        table.stdout.contains("/100")
    });
    let header: Vec<&str> = table.stdout.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["ID", "NAME", "OWNER", "STATE", "PROGRESS", "MESSAGE"]);
    let row = table.stdout.lines().nth(1).expect(&table.stdout);
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(&cells[..4], [id.as_str(), "notes.recount", "/root/notes", "running"], "{row}");
    assert!(cells[4].ends_with("/100"), "{row}");
    let tasks = cli.run(&["--json", "tasks"]).expect(0).json();
    assert_eq!(tasks[0]["id"].to_string(), id);
    assert_eq!(tasks[0]["total"], 100);
}

#[test]
fn tokens_made_by_token_new_open_a_protected_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let made = Cli::new(format!("http://{}", free_addr()), dir.path());
    let admin = made.run(&["--json", "token", "new", "ops", "admin:/**"]).expect(0).json();
    let reader = made.run(&["token", "new", "viewer", "read:/root/**"]).expect(0);
    let reader_token = reader
        .stdout
        .lines()
        .find_map(|l| l.split("once; give it to the client): ").nth(1))
        .unwrap()
        .to_owned();
    let reader_line =
        reader.stdout.lines().find_map(|l| l.split("KINESIS_AUTH_TOKENS_FILE: ").nth(1)).unwrap();
    let admin_token = admin["token"].as_str().unwrap().to_owned();
    assert_eq!(admin["name"], "ops");
    assert!(!admin["line"].as_str().unwrap().contains(&admin_token));
    made.run(&["token", "new", "bad name", "read:/**"]).expect(2);
    made.run(&["token", "new", "ops"]).expect(2);

    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, format!("{}\n{reader_line}\n", admin["line"].as_str().unwrap()))
        .unwrap();
    let k = spawn(dir.path(), &[("KINESIS_AUTH_TOKENS_FILE", tokens.to_str().unwrap())]);

    let mut cli = Cli::at(&k, dir.path());
    let refused = cli.run(&["ps"]).expect(1);
    assert!(refused.stderr.starts_with("kinesis: unauthenticated:"), "{refused:?}");
    let refused = cli.run(&["--json", "get", "/root/counter"]).expect(1);
    assert_eq!(refused.error()["kind"], "unauthorized");

    // --token on the command line, or KINESIS_TOKEN.
    let ps = cli.run(&["--token", &admin_token, "ps"]).expect(0);
    assert!(ps.stdout.contains("/root/counter"));
    cli.token = Some(reader_token.clone());
    cli.run(&["get", "/root/counter"]).expect(0);
    let forbidden = cli.run(&["call", "/root/counter", "increment", "by=1"]).expect(1);
    assert!(forbidden.stderr.starts_with("kinesis: forbidden:"), "{forbidden:?}");
    let forbidden = cli.run(&["--json", "stop", "/root/counter"]).expect(1);
    assert_eq!(forbidden.error()["kind"], "forbidden");
    cli.token = Some(admin_token.clone());
    cli.run(&["call", "/root/counter", "increment", "by=1"]).expect(0);
    cli.run(&["tasks"]).expect(0);
    let wrong = cli.run(&["--token", "kinesis_not-a-real-token", "ps"]).expect(1);
    assert!(!wrong.stderr.contains("not-a-real-token"), "the token is never printed: {wrong:?}");

    // The token never shows in help or errors, nor in the ETag file.
    let help = cli.run(&["--help"]).expect(0);
    assert!(!help.stdout.contains(&admin_token), "{help:?}");
    let etags = std::fs::read_to_string(dir.path().join("kinesis").join("etags.json")).unwrap();
    assert!(!etags.contains(&admin_token) && !etags.contains(&reader_token));
}

/// `kinesis serve` is `kinesis` spelled out: the same runtime, stopped by
/// ctrl-c with exit 0.
#[test]
fn serve_runs_the_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let mut k = common::spawn_at(dir.path(), &free_addr(), &["serve"], &[]);
    let cli = Cli::at(&k, dir.path());
    assert!(node(&cli, "/root/counter").is_some());
    k.signal(libc::SIGINT);
    assert_eq!(k.wait().code(), Some(0), "{}", k.stderr());
}

#[test]
fn cannot_connect_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on.
    let cli = Cli::new(format!("http://{}", free_addr()), dir.path());
    for args in [
        &["ps"][..],
        &["get", "/root/counter"],
        &["call", "/root/counter", "increment", "by=1"],
        &["watch", "/root/counter"],
        &["stop", "/root/counter"],
        &["tasks"],
    ] {
        let run = cli.run(args).expect(3);
        assert!(
            run.stderr.starts_with("kinesis: unreachable: cannot connect"),
            "{args:?}: {run:?}"
        );
    }
    let run = cli.run(&["--json", "ps"]).expect(3);
    assert_eq!(run.error()["kind"], "unreachable");
    assert_eq!(run.error()["exit"], 3);

    // A runtime that takes the connection but never answers: reached, so
    // not exit 3; `--timeout` bounds the wait (a write may have happened).
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let cli = Cli::new(format!("http://{}", silent.local_addr().unwrap()), dir.path());
    let started = Instant::now();
    let run = cli.run(&["--json", "--timeout", "300ms", "ps"]).expect(1);
    assert_eq!(run.error()["kind"], "timeout");
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
}

#[test]
fn usage_errors_exit_2_and_every_command_has_help() {
    let dir = tempfile::tempdir().unwrap();
    let cli = Cli::new(format!("http://{}", free_addr()), dir.path());
    for args in [
        &["bogus"][..],
        &["get"],
        &["get", "root/counter"],
        &["get", "/root/a b"],
        &["get", "/root/"],
        &["call", "/root/counter"],
        &["call", "/root/counter", "_control"],
        &["call", "/root/counter", "increment", "by"],
        &["put", "/root/counter"],
        &["patch", "/root/counter", "not json"],
        &["restart", "/root/counter", "--after"],
        &["--timeout", "soon", "ps"],
        &["--url", "not a url", "ps"],
        &["--url", "ftp://example.com", "ps"],
        &["completions", "tcsh"],
        &["serve", "--only", "a/b"],
    ] {
        let run = cli.run(args);
        assert_eq!(run.code, Some(2), "{args:?}: {run:?}");
        assert!(!run.stderr.is_empty(), "{args:?}");
        assert!(run.stdout.is_empty(), "{args:?}: {run:?}");
    }
    // Credentials in the URL are refused without being echoed.
    let run = cli.run(&["--url", "http://me:kns_hush@127.0.0.1:1", "ps"]).expect(2);
    assert!(run.stderr.contains("KINESIS_TOKEN") && !run.stderr.contains("kns_hush"), "{run:?}");
    // With --json, clap's refusals are JSON too.
    let run = cli.run(&["--json", "get", "root/counter"]).expect(2);
    assert_eq!(run.error()["kind"], "usage");
    let message = run.error()["message"].as_str().unwrap().to_owned();
    assert!(message.contains("`root/counter` is not a component URI"), "{message}");
    for command in [
        "serve",
        "ps",
        "get",
        "put",
        "patch",
        "call",
        "watch",
        "stop",
        "restart",
        "tasks",
        "token",
        "completions",
    ] {
        let help = cli.run(&[command, "--help"]).expect(0);
        assert!(help.stdout.contains("Usage: kinesis"), "{command}: {help:?}");
    }
    let serve = cli.run(&["serve", "--help"]).expect(0);
    assert!(serve.stdout.contains("--only") && serve.stdout.contains("KINESIS_HTTP_ADDR"));
    let help = cli.run(&["--help"]).expect(0).stdout;
    for needle in ["KINESIS_URL", "KINESIS_TOKEN", "Exit codes", "watch", "completions"] {
        assert!(help.contains(needle), "{needle}: {help}");
    }
    let version = cli.run(&["--version"]).expect(0);
    assert_eq!(version.stdout.trim(), format!("kinesis {}", env!("CARGO_PKG_VERSION")));
    for shell in ["bash", "zsh", "fish"] {
        let script = cli.run(&["completions", shell]).expect(0);
        assert!(script.stdout.contains("kinesis") && script.stdout.contains("restart"), "{shell}");
    }
}

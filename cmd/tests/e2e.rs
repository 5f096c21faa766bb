//! End to end: the real `kinesis` binary, spawned with a clean environment in
//! a temporary directory, driven over HTTP and with signals.

#![cfg(all(unix, feature = "http", feature = "filedb"))]

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kinesis::persist::{Cipher, ENCRYPTED_MARKER};
use serde_json::Value;

mod common;

use common::{client, command, spawn, Kinesis};

fn get_json(url: &str) -> Value {
    let resp = client().get(url).send().unwrap();
    assert!(resp.status().is_success(), "{url}: {}", resp.status());
    resp.json().unwrap()
}

fn all_file_bytes(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in walk(dir) {
        let mut f = std::fs::File::open(entry).unwrap();
        f.read_to_end(&mut out).unwrap();
    }
    out
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files.extend(walk(&p));
        } else {
            files.push(p);
        }
    }
    files
}

/// The latest copy of the record of `uri` in the file store's log
/// (`filedb-*.log`, `filedb-*.compacted`), found by its JSON text.
fn latest_record_in_log(data: &Path, uri: &str) -> Value {
    let needle = format!("{{\"schema\":1,\"uri\":{}", serde_json::to_string(uri).unwrap());
    let mut latest: Option<Value> = None;
    for path in walk(data) {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("filedb-") || !(name.ends_with(".log") || name.ends_with(".compacted"))
        {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        let starts =
            bytes.windows(needle.len()).enumerate().filter(|(_, w)| *w == needle.as_bytes());
        for (at, _) in starts {
            let mut records =
                serde_json::Deserializer::from_slice(&bytes[at..]).into_iter::<Value>();
            let record = records.next().unwrap().unwrap();
            if latest.as_ref().is_none_or(|l| l["version"].as_u64() <= record["version"].as_u64()) {
                latest = Some(record);
            }
        }
    }
    latest.unwrap_or_else(|| panic!("no record of {uri} in {}", data.display()))
}

#[test]
fn runs_with_no_environment_persists_and_counts_executions() {
    let dir = tempfile::tempdir().unwrap();
    let mut k = spawn(dir.path(), &[]);
    let first = get_json(&k.url("/root/kinesis"));
    assert_eq!(first["data"]["previous_executions"], 1);
    assert_eq!(first["data"]["api_key"], "***");
    let resp = client()
        .post(k.url("/root/counter/increment"))
        .json(&serde_json::json!({"by": 5}))
        .send()
        .unwrap();
    assert_eq!(resp.text().unwrap(), "5");
    k.signal(libc::SIGINT);
    assert_eq!(k.wait().code(), Some(0), "{}", k.stderr());
    drop(k);

    let data = dir.path().join("kinesis-data");
    let key_file = data.join("kinesis.key");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777, 0o600);

    let mut k = spawn(dir.path(), &[]);
    let second = get_json(&k.url("/root/kinesis"));
    assert_eq!(second["data"]["previous_executions"], 2, "one higher on the second run");
    assert_eq!(get_json(&k.url("/root/counter"))["data"]["count"], 5, "the counter persisted");

    // The api key is stored encrypted: decrypt it with the key file to learn
    // it, then check it appears neither on disk nor over HTTP.
    let record = latest_record_in_log(&data, "/root/kinesis");
    let stored = &record["fields"]["api_key"];
    assert!(stored[ENCRYPTED_MARKER].is_string(), "{record}");
    let key = std::fs::read_to_string(&key_file).unwrap();
    let cipher = Cipher::new(key.trim(), &[]).unwrap();
    let (plain, _) = cipher.decrypt("/root/kinesis", "api_key", stored).unwrap();
    let plain = plain.as_str().unwrap().to_owned();
    assert!(plain.len() >= 16);
    let disk = all_file_bytes(&data);
    assert!(!String::from_utf8_lossy(&disk).contains(&plain), "plaintext key on disk");
    let ok = client().get(k.url(&format!("/root/kinesis/check_key?key={plain}"))).send().unwrap();
    assert_eq!(ok.text().unwrap(), "true", "the decrypted key is the one in use");
    for path in ["/", "/root/kinesis", "/root/kinesis/executions"] {
        let body = client().get(k.url(path)).send().unwrap().text().unwrap();
        assert!(!body.contains(&plain), "key leaked at {path}");
    }
    assert!(!k.stderr().contains(&plain), "key leaked into the log");
    k.signal(libc::SIGTERM);
    assert_eq!(k.wait().code(), Some(0));
}

#[test]
fn sigint_and_sigterm_stop_components_in_reverse_order_and_exit_zero() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        let dir = tempfile::tempdir().unwrap();
        let mut k = spawn(dir.path(), &[]);
        k.signal(sig);
        assert_eq!(k.wait().code(), Some(0), "{}", k.stderr());
        let log = k.stderr();
        let pos =
            |needle: &str| log.find(needle).unwrap_or_else(|| panic!("{needle} missing: {log}"));
        let (http, notes, counter, app) = (
            pos("HTTP server stopped"),
            pos("stopping uri=\"/root/notes\""),
            pos("stopping uri=\"/root/counter\""),
            pos("stopping uri=\"/root/kinesis\""),
        );
        assert!(http < notes && notes < counter && counter < app, "LIFO order: {log}");
        assert!(log.contains("stopped cleanly"));
    }
}

/// Sends `GET /root/counter/sleep?ms=…` from a thread and returns once the
/// request is in its handler (the binary logs `sleep started`, at debug).
fn in_flight_sleep(k: &Kinesis, ms: u64) -> std::thread::JoinHandle<Option<u16>> {
    let seen = k.stderr().matches("sleep started").count();
    let url = k.url(&format!("/root/counter/sleep?ms={ms}"));
    let h = std::thread::spawn(move || client().get(url).send().ok().map(|r| r.status().as_u16()));
    k.wait_for_log("sleep started", seen);
    h
}

/// `spawn` with the debug log of the demo on (for [`in_flight_sleep`]).
fn spawn_logging_sleeps(dir: &Path, envs: &[(&str, &str)]) -> Kinesis {
    let mut all = vec![("KINESIS_LOG_LEVEL", "info,kinesis_cmd::demo=debug")];
    all.extend_from_slice(envs);
    spawn(dir, &all)
}

#[test]
fn a_second_sigint_exits_at_once_with_130() {
    let dir = tempfile::tempdir().unwrap();
    let mut k = spawn_logging_sleeps(dir.path(), &[]);
    let _slow = in_flight_sleep(&k, 20_000);
    k.signal(libc::SIGINT);
    // The first signal was taken: the runtime is shutting down (and waits
    // for the sleeping request).
    k.wait_for_log("shutting down", 0);
    k.signal(libc::SIGINT);
    let started = Instant::now();
    assert_eq!(k.wait().code(), Some(130), "{}", k.stderr());
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn in_flight_requests_finish_before_exit() {
    let dir = tempfile::tempdir().unwrap();
    let mut k = spawn_logging_sleeps(dir.path(), &[]);
    let slow = in_flight_sleep(&k, 1_000);
    k.signal(libc::SIGINT);
    // New connections are refused soon after the signal, while the request
    // in flight is still being served.
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::net::TcpStream::connect(&k.addr).is_ok() {
        assert!(Instant::now() < deadline, "new connections are still accepted");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(!slow.is_finished(), "the request ended before new connections were refused");
    assert_eq!(slow.join().unwrap(), Some(200), "the in-flight request completed");
    assert_eq!(k.wait().code(), Some(0), "{}", k.stderr());
}

#[test]
fn a_shutdown_past_the_deadline_exits_1_and_names_what_did_not_stop() {
    let dir = tempfile::tempdir().unwrap();
    let mut k = spawn_logging_sleeps(dir.path(), &[("KINESIS_SHUTDOWN_TIMEOUT", "1s")]);
    let _slow = in_flight_sleep(&k, 20_000);
    k.signal(libc::SIGINT);
    assert_eq!(k.wait().code(), Some(1), "{}", k.stderr());
    let log = k.stderr();
    assert!(log.contains("KINESIS_SHUTDOWN_TIMEOUT") && log.contains("/addons/http"), "{log}");
}

fn run_to_exit(envs: &[(&str, &str)]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = command(dir.path());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn every_bad_environment_value_exits_2_naming_the_variable() {
    for (var, value) in [
        ("KINESIS_HTTP_ADDR", "localhost"),
        ("KINESIS_LOG_LEVEL", "noisy=="),
        ("KINESIS_LOG_FORMAT", "yaml"),
        ("KINESIS_DB_CONNECTION", "nosuch://x"),
        ("KINESIS_DB_CONNECTION", "not a url"),
        // Any non-empty key is valid (a passphrase); an old key without a current one is not.
        ("KINESIS_DB_PREVIOUS_ENCRYPT_KEYS", "old-passphrase"),
        ("KINESIS_SHUTDOWN_TIMEOUT", "forever"),
        ("KINESIS_HTTP_BODY_LIMIT", "-1"),
    ] {
        let (code, stderr) = run_to_exit(&[(var, value)]);
        assert_eq!(code, Some(2), "{var}={value}: {stderr}");
        assert!(stderr.contains(var), "{var}={value}: {stderr}");
    }
    let (_, stderr) = run_to_exit(&[("KINESIS_DB_CONNECTION", "nosuch://x")]);
    assert!(
        stderr.contains("file://") && stderr.contains("built in"),
        "lists the built-in schemes: {stderr}"
    );
}

#[test]
fn a_port_in_use_is_a_clear_startup_error() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (code, stderr) = run_to_exit(&[("KINESIS_HTTP_ADDR", &addr)]);
    assert_ne!(code, Some(0));
    assert!(stderr.contains(&addr) && stderr.contains("KINESIS_HTTP_ADDR"), "{stderr}");
}

#[test]
fn a_data_directory_that_cannot_be_created_fails_clearly_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("a-file");
    std::fs::write(&blocker, b"not a directory").unwrap();
    let url = format!("file://{}/data", blocker.display());
    let (code, stderr) = run_to_exit(&[("KINESIS_DB_CONNECTION", &url)]);
    assert_ne!(code, Some(0));
    assert!(stderr.contains("data"), "{stderr}");
    assert_eq!(std::fs::read(&blocker).unwrap(), b"not a directory");
}

#[test]
fn help_and_version() {
    let out = command(Path::new(".")).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for needle in ["Add-ons built in:", "http", "filedb"] {
        assert!(help.contains(needle), "{needle}: {help}");
    }
    // Every variable, from the crate that owns it, each listed once.
    let sql = cfg!(any(feature = "sqlite", feature = "postgres", feature = "mysql"));
    for (name, listed) in [
        ("KINESIS_LOG_LEVEL", true),
        ("KINESIS_LOG_FORMAT", true),
        ("KINESIS_HTTP_ADDR", true),
        ("KINESIS_HTTP_BODY_LIMIT", true),
        ("KINESIS_DB_CONNECTION", true),
        ("KINESIS_DB_SYMMETRIC_ENCRYPT_KEY", true),
        ("KINESIS_DB_PREVIOUS_ENCRYPT_KEYS", true),
        ("KINESIS_SHUTDOWN_TIMEOUT", true),
        ("KINESIS_DB_POOL_SIZE", sql || cfg!(feature = "mongodb")),
        ("KINESIS_GRPC_ADDR", cfg!(feature = "grpc")),
        ("KINESIS_AUTH_TOKENS_FILE", cfg!(any(feature = "http", feature = "grpc"))),
    ] {
        let times = help.lines().filter(|l| l.trim_start().starts_with(name)).count();
        assert_eq!(times, usize::from(listed), "{name}: {help}");
    }
    let out = command(Path::new(".")).arg("--version").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("kinesis "));
    let out = command(Path::new(".")).arg("--bogus").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// The signal handlers are in place before the HTTP port accepts: a SIGINT
/// sent the instant the first connection is accepted is a clean shutdown
/// (exit 0), never the default action of the signal (killed by SIGINT).
#[test]
fn sigint_the_instant_the_port_accepts_is_a_clean_shutdown() {
    use std::os::unix::process::ExitStatusExt;
    use std::process::Stdio;

    // The default store, file://./kinesis-data, in a temporary directory.
    let dir = tempfile::tempdir().unwrap();
    for run in 0..20 {
        let addr = common::free_addr();
        let stderr_path = dir.path().join(format!("stderr-{run}.log"));
        let mut child = command(dir.path())
            .env("KINESIS_HTTP_ADDR", &addr)
            .env("KINESIS_LOG_LEVEL", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr_path).unwrap())
            .spawn()
            .unwrap();
        let log = || std::fs::read_to_string(&stderr_path).unwrap_or_default();
        // No delay between attempts: the signal goes out as close to the
        // moment the port opens as this process can manage.
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(&addr).is_err() {
            assert!(Instant::now() < deadline, "run {run}: never listened on {addr}: {}", log());
            assert!(child.try_wait().unwrap().is_none(), "run {run}: exited early: {}", log());
            std::thread::yield_now();
        }
        rustix::process::kill_process(
            rustix::process::Pid::from_child(&child),
            rustix::process::Signal::INT,
        )
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "run {run}: did not exit: {}", log());
            std::thread::sleep(Duration::from_millis(10));
        };
        assert_eq!(
            (status.code(), status.signal()),
            (Some(0), None),
            "run {run}: SIGINT right after the port opened must exit 0: {}",
            log()
        );
    }
}

/// A bare word that is not a level would be taken by `EnvFilter` as a target
/// name and silence every log line; it is refused at start instead.
#[test]
fn a_log_level_that_is_not_a_level_exits_2_listing_the_levels() {
    use std::process::Stdio;

    for value in ["inof", "loud", "kinesis"] {
        let dir = tempfile::tempdir().unwrap();
        let mut child = command(dir.path())
            .env("KINESIS_HTTP_ADDR", common::free_addr())
            .env("KINESIS_LOG_LEVEL", value)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("KINESIS_LOG_LEVEL={value}: still running after 20 s instead of exiting 2");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let mut stderr = String::new();
        child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
        assert_eq!(status.code(), Some(2), "KINESIS_LOG_LEVEL={value}: {stderr}");
        assert!(stderr.contains("KINESIS_LOG_LEVEL"), "{value}: {stderr}");
        assert!(stderr.contains(&format!("`{value}`")), "names the value: {stderr}");
        for level in ["off", "error", "warn", "info", "debug", "trace"] {
            assert!(stderr.contains(level), "{value}: lists `{level}`: {stderr}");
        }
    }
}

/// Real filter directives keep working.
#[test]
fn log_filter_directives_are_accepted() {
    for value in ["DEBUG", "kinesis=debug,info", "debug,hyper=warn", "kinesis_http=trace", "warn"] {
        let dir = tempfile::tempdir().unwrap();
        let mut k = spawn(dir.path(), &[("KINESIS_LOG_LEVEL", value)]);
        k.signal(libc::SIGTERM);
        assert_eq!(k.wait().code(), Some(0), "KINESIS_LOG_LEVEL={value}: {}", k.stderr());
    }
}

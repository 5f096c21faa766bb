//! The real binary on a Unix domain socket (`KINESIS_HTTP_ADDR=unix:…`):
//! the socket file has mode 0600, `kinesis --url unix:… ps` works, a
//! SIGKILL leaves the file behind and the next start replaces it, and a
//! clean stop (SIGTERM) removes it.

#![cfg(all(unix, feature = "http", feature = "filedb"))]

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;
use std::process::Child;
use std::time::Duration;

mod common;

use common::command;

/// Starts `kinesis` in `dir` listening on `socket`; returns once a
/// connection to the socket is accepted.
fn spawn_on(dir: &Path, socket: &Path, log: &str) -> Child {
    let envs = [("KINESIS_HTTP_ADDR", format!("unix:{}", socket.display()))];
    common::spawn_until(dir, &envs, log, || std::os::unix::net::UnixStream::connect(socket).is_ok())
}

/// `kinesis --url unix:SOCKET ps`: its exit code and stdout.
fn ps(dir: &Path, socket: &Path) -> (Option<i32>, String) {
    let out =
        command(dir).args(["--url", &format!("unix:{}", socket.display()), "ps"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ps failed: {stdout}{stderr}");
    (out.status.code(), stdout)
}

/// Waits (20 s at most) for `child` to exit.
fn wait(child: &mut Child) -> std::process::ExitStatus {
    common::wait_exit(child, Duration::from_secs(20), String::new)
}

fn is_socket(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket())
}

#[test]
fn a_socket_left_by_sigkill_is_replaced_on_restart_and_removed_on_a_clean_stop() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("kinesis.sock");

    let mut first = spawn_on(dir.path(), &socket, "first.log");
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let (code, stdout) = ps(dir.path(), &socket);
    assert_eq!(code, Some(0));
    assert!(stdout.contains("/root"), "{stdout}");

    // SIGKILL: no chance to clean up, the file stays and nobody accepts on it.
    first.kill().unwrap();
    wait(&mut first);
    assert!(is_socket(&socket), "a killed server leaves its socket file");
    let refused = std::os::unix::net::UnixStream::connect(&socket).unwrap_err();
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);

    // The next start replaces the stale file.
    let mut second = spawn_on(dir.path(), &socket, "second.log");
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(ps(dir.path(), &socket).0, Some(0));
    let log = std::fs::read_to_string(dir.path().join("second.log")).unwrap();
    assert!(log.contains("stale"), "{log}");

    // SIGTERM: a clean stop removes the file.
    let ok = std::process::Command::new("kill")
        .args(["-TERM", &second.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    assert!(wait(&mut second).success());
    assert!(!socket.exists(), "a clean stop removes the socket file");
}

#[test]
fn a_second_server_on_a_live_socket_exits_with_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("kinesis.sock");
    let mut first = spawn_on(dir.path(), &socket, "first.log");

    // In a directory of its own, so that its store is its own.
    let other = dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    let out = command(&other)
        .env("KINESIS_HTTP_ADDR", format!("unix:{}", socket.display()))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("KINESIS_HTTP_ADDR=unix:") && stderr.contains("listening"), "{stderr}");
    // The first one still serves on its socket.
    assert_eq!(ps(dir.path(), &socket).0, Some(0));
    first.kill().unwrap();
    wait(&mut first);
}

//! The real binary with the gRPC add-on: the command line over `grpc://`
//! (the same commands, exit codes and conflicts as over HTTP), and gRPC on
//! a Unix socket (`KINESIS_GRPC_ADDR=unix:…`): mode 0600, a SIGKILL leaves
//! the file behind and the next start replaces it, a clean stop removes it.

#![cfg(all(unix, feature = "grpc", feature = "filedb"))]

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;
use std::process::Child;
use std::time::Duration;

mod common;

use common::{command, free_addr};

/// Starts `kinesis` in `dir` with `KINESIS_GRPC_ADDR=grpc_addr` (HTTP on a
/// socket of its own, so parallel tests never share a port); returns once
/// `ready` holds.
fn spawn(dir: &Path, grpc_addr: &str, log: &str, ready: impl Fn() -> bool) -> Child {
    let envs = [
        ("KINESIS_GRPC_ADDR", grpc_addr.to_owned()),
        ("KINESIS_HTTP_ADDR", format!("unix:{}", dir.join("http.sock").display())),
    ];
    common::spawn_until(dir, &envs, log, ready)
}

/// `kinesis --url URL ARGS…`: exit code, stdout, stderr.
fn cli(dir: &Path, url: &str, args: &[&str]) -> (i32, String, String) {
    let out = command(dir).arg("--url").arg(url).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Waits (20 s at most) for `child` to exit.
fn wait(child: &mut Child) -> std::process::ExitStatus {
    common::wait_exit(child, Duration::from_secs(20), String::new)
}

fn terminate(child: &mut Child) -> std::process::ExitStatus {
    let ok = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    wait(child)
}

#[test]
fn the_command_line_works_over_grpc() {
    let dir = tempfile::tempdir().unwrap();
    let addr = free_addr();
    let mut k =
        spawn(dir.path(), &addr, "kinesis.log", || std::net::TcpStream::connect(&addr).is_ok());
    let url = format!("grpc://{addr}");

    let (code, out, err) = cli(dir.path(), &url, &["ps"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("/root/counter"), "{out}");
    let (code, out, err) = cli(dir.path(), &url, &["call", "/root/counter", "increment", "by=5"]);
    assert_eq!((code, out.trim()), (0, "5"), "{err}");
    let (code, out, err) = cli(dir.path(), &url, &["get", "/root/counter"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\"count\": 5"), "{out}");
    // A stale ETag: a conflict, exit 1, the current ETag said.
    let (code, out, err) = cli(
        dir.path(),
        &url,
        &[
            "--json",
            "patch",
            "/root/counter",
            r#"{"count": 1}"#,
            "--if-match",
            "00000000000000000000000000000000",
        ],
    );
    assert_eq!(code, 1, "{out}{err}");
    let error: serde_json::Value = serde_json::from_str(err.trim()).unwrap();
    assert_eq!(error["kind"], "conflict", "{err}");
    assert!(error["current_etag"].as_str().is_some_and(|t| t.len() >= 32), "{err}");
    let (code, _, err) = cli(dir.path(), &url, &["call", "/root/nowhere", "total"]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(terminate(&mut k).code(), Some(0));
    // Nobody listens: exit 3.
    let (code, _, err) = cli(dir.path(), &url, &["ps"]);
    assert_eq!(code, 3, "{err}");
}

fn is_socket(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket())
}

#[test]
fn a_grpc_socket_left_by_sigkill_is_replaced_on_restart_and_removed_on_a_clean_stop() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("grpc.sock");
    let addr = format!("unix:{}", socket.display());
    let url = format!("grpc+unix:{}", socket.display());
    let listening = || std::os::unix::net::UnixStream::connect(&socket).is_ok();

    let mut first = spawn(dir.path(), &addr, "first.log", listening);
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let (code, out, err) = cli(dir.path(), &url, &["ps"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("/root"), "{out}");

    // SIGKILL: no chance to clean up, the file stays and nobody accepts on it.
    first.kill().unwrap();
    wait(&mut first);
    assert!(is_socket(&socket), "a killed server leaves its socket file");
    let refused = std::os::unix::net::UnixStream::connect(&socket).unwrap_err();
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);

    // The next start replaces the stale file.
    let mut second = spawn(dir.path(), &addr, "second.log", listening);
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(cli(dir.path(), &url, &["ps"]).0, 0);
    let log = std::fs::read_to_string(dir.path().join("second.log")).unwrap();
    assert!(log.contains("stale"), "{log}");

    // SIGTERM: a clean stop removes the file.
    assert!(terminate(&mut second).success());
    assert!(!socket.exists(), "a clean stop removes the socket file");
}

#[test]
fn a_bad_grpc_address_stops_the_start_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    for (value, says) in
        [("nowhere", "is not a socket address"), ("0.0.0.0:0", "no authentication is configured")]
    {
        let out = command(dir.path())
            .env("KINESIS_GRPC_ADDR", value)
            .env("KINESIS_HTTP_ADDR", format!("unix:{}", dir.path().join("http.sock").display()))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{value}: {stderr}");
        assert!(stderr.contains("KINESIS_GRPC_ADDR") && stderr.contains(says), "{value}: {stderr}");
    }
}

//! Shutdown on SIGINT/SIGTERM of a real child process: the example binary.
//!
//! The child prints `ready` once its runtime has started, and the runtime
//! installs its signal handlers when it starts: the signal is sent the
//! moment that line is read, with no delay to let the child get there.

#![cfg(unix)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

fn example_binary() -> PathBuf {
    // Test executables live in target/<profile>/deps; examples, built by
    // `cargo test` before the tests run, in target/<profile>/examples.
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap();
    let bin = profile_dir.join("examples").join("three_components");
    if !bin.exists() {
        // Only this test target was built (`cargo test --test signals`).
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-p", "kinesis", "--example", "three_components"])
            .status()
            .unwrap();
        assert!(status.success());
    }
    assert!(bin.exists(), "{} is missing", bin.display());
    bin
}

fn run_and_signal(signal: i32, twice: bool) -> (Option<i32>, Vec<String>) {
    let mut child = Command::new(example_binary())
        .env("KINESIS_LOG_LEVEL", "warn")
        .env("KINESIS_SHUTDOWN_TIMEOUT", "10s")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let first = lines.next().unwrap().unwrap();
    assert_eq!(first, "ready");
    send(pid, signal);
    if twice {
        send(pid, signal);
    }
    // The rest of stdout ends when the child exits; a thread reads it and
    // reaps the child, and the test waits for that at most 20 s.
    let (done, exited) = mpsc::channel::<(ExitStatus, Vec<String>)>();
    std::thread::spawn(move || {
        let rest: Vec<String> = lines.map_while(|l| l.ok()).collect();
        let _ = done.send((child.wait().unwrap(), rest));
    });
    match exited.recv_timeout(Duration::from_secs(20)) {
        Ok((status, rest)) => (status.code(), rest),
        Err(_) => {
            send(pid, libc::SIGKILL);
            panic!("the child did not exit within 20 s of the signal");
        }
    }
}

fn send(pid: i32, signal: i32) {
    let status =
        Command::new("kill").arg(format!("-{signal}")).arg(pid.to_string()).status().unwrap();
    assert!(status.success());
}

#[test]
fn sigint_stops_components_in_reverse_order_and_exits_zero() {
    let (code, lines) = run_and_signal(libc::SIGINT, false);
    assert_eq!(code, Some(0), "{lines:?}");
    let stops: Vec<_> = lines.iter().filter(|l| l.starts_with("stop ")).cloned().collect();
    assert_eq!(stops.len(), 3, "{lines:?}");
    assert_eq!(stops[0], "stop alerts");
    assert_eq!(stops[1], "stop sensor");
    assert!(stops[2].starts_with("stop stats after "), "{stops:?}");
    assert_eq!(lines.last().map(String::as_str), Some("stopped; clean = true"));
}

#[test]
fn sigterm_is_handled_like_sigint() {
    let (code, lines) = run_and_signal(libc::SIGTERM, false);
    assert_eq!(code, Some(0), "{lines:?}");
    assert!(lines.iter().any(|l| l == "stop alerts"));
}

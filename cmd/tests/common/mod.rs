//! Spawning the real `kinesis` binary for end-to-end tests.
#![allow(dead_code, unreachable_pub)] // each test binary uses a part

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

pub struct Kinesis {
    pub child: Child,
    pub addr: String,
    pub stderr_path: PathBuf,
}

/// A loopback address nothing listens on, for a binary to bind. Its port
/// is unique within this test process and below the kernel's ephemeral
/// range (32768 and up), so that no `bind(0)` or outgoing connection of a
/// test running in parallel can take it before the binary binds it.
pub fn free_addr() -> String {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let offset = (std::process::id() % 1_000) as u16 * 12;
    loop {
        let port = 20_000 + (offset + NEXT.fetch_add(1, Ordering::Relaxed)) % 12_000;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return format!("127.0.0.1:{port}");
        }
    }
}

pub fn command(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kinesis"));
    cmd.current_dir(dir).env_clear();
    if let Ok(path) = std::env::var("PATH") {
        cmd.env("PATH", path);
    }
    cmd
}

pub fn spawn(dir: &Path, envs: &[(&str, &str)]) -> Kinesis {
    spawn_at(dir, &free_addr(), &[], envs)
}

/// The binary with `args`, listening on `addr`, its log in a file of `dir`;
/// waits until it listens.
pub fn spawn_at(dir: &Path, addr: &str, args: &[&str], envs: &[(&str, &str)]) -> Kinesis {
    let stderr_path = dir.join(format!("stderr-{}.log", addr.replace([':', '.'], "_")));
    let mut cmd = command(dir);
    cmd.args(args).env("KINESIS_HTTP_ADDR", addr).env("KINESIS_LOG_LEVEL", "info");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let child = cmd
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .unwrap();
    let k = Kinesis { child, addr: addr.to_owned(), stderr_path };
    k.wait_ready();
    k
}

impl Kinesis {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(&self.addr).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("kinesis did not listen on {}: {}", self.addr, self.stderr());
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Polls the log (with a 20 s deadline) until `needle` occurs in it more
    /// than `seen` times; returns how often it occurs.
    pub fn wait_for_log(&self, needle: &str, seen: usize) -> usize {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let times = self.stderr().matches(needle).count();
            if times > seen {
                return times;
            }
            assert!(Instant::now() < deadline, "`{needle}` not logged: {}", self.stderr());
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn signal(&self, sig: i32) {
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap()
            .success();
        assert!(ok);
    }

    pub fn wait(&mut self) -> ExitStatus {
        let log = self.stderr_path.clone();
        wait_exit(&mut self.child, Duration::from_secs(30), || {
            std::fs::read_to_string(&log).unwrap_or_default()
        })
    }
}

impl Drop for Kinesis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder().timeout(Duration::from_secs(30)).build().unwrap()
}

/// Waits (`limit` at most, polling) for `child` to exit; `log` tells why
/// when it does not.
pub fn wait_exit(child: &mut Child, limit: Duration, log: impl Fn() -> String) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "kinesis did not exit: {}", log());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `command` (the binary in `dir`, with `envs`, its log in `dir/log`)
/// spawned; returns once `ready()` (20 s at most, failing early if the
/// process exits).
pub fn spawn_until(
    dir: &Path,
    envs: &[(&str, String)],
    log: &str,
    ready: impl Fn() -> bool,
) -> Child {
    let stderr = std::fs::File::create(dir.join(log)).unwrap();
    let mut cmd = command(dir);
    cmd.env("KINESIS_LOG_LEVEL", "info");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd.stdout(Stdio::null()).stderr(stderr).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ready() {
        let log = std::fs::read_to_string(dir.join(log)).unwrap_or_default();
        assert!(child.try_wait().unwrap().is_none(), "kinesis exited: {log}");
        assert!(Instant::now() < deadline, "kinesis did not get ready: {log}");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

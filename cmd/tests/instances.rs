//! Discovery by name with real processes: three `kinesis` binaries named
//! `a`, `b` and `c` announce themselves on a NATS server of the test's own;
//! `kinesis instances` lists them, a killed one leaves the list, and
//! `--instance NAME` reaches the right one. Then the same by a static
//! `KINESIS_PEERS` list, with no NATS at all.

#![cfg(all(unix, feature = "http", feature = "filedb"))]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;

use common::{client, command, free_addr, spawn, Kinesis};

/// `kinesis ARGS…` with `envs`; its exit code and stdout.
fn cli(dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let mut cmd = command(dir);
    cmd.args(args);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The names `kinesis instances --json` lists.
fn listed(dir: &Path, envs: &[(&str, &str)]) -> Vec<Value> {
    let (code, stdout, stderr) = cli(dir, &["instances", "--json"], envs);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    serde_json::from_str::<Vec<Value>>(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

fn names(instances: &[Value]) -> Vec<String> {
    instances.iter().map(|i| i["name"].as_str().unwrap().to_owned()).collect()
}

/// The count of the demo counter of `k`.
fn count(k: &Kinesis) -> u64 {
    let body: Value = client().get(k.url("/root/counter")).send().unwrap().json().unwrap();
    body["data"]["count"].as_u64().unwrap_or_else(|| panic!("no count in {body}"))
}

/// A NATS server of this test's own, on a free port, killed on drop.
struct Nats {
    child: Child,
    url: String,
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn nats_server() -> Option<Nats> {
    let binary = ["/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    let Some(binary) = binary else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "nats-server is not installed (CI=true: a missing server is a failure)"
        );
        eprintln!("skipped: nats-server is not installed");
        return None;
    };
    let addr = free_addr();
    let port = addr.rsplit(':').next().unwrap().to_owned();
    let child = Command::new(binary)
        .args(["-a", "127.0.0.1", "-p", &port])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(Instant::now() < deadline, "nats-server did not listen on {addr}");
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(Nats { child, url: format!("nats://{addr}") })
}

#[test]
#[cfg(feature = "nats")]
fn three_instances_on_nats_are_listed_found_by_name_and_dropped_when_killed() {
    let Some(nats) = nats_server() else { return };
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut instances: Vec<Kinesis> = ["a", "b", "c"]
        .iter()
        .zip(&dirs)
        .map(|(name, dir)| {
            spawn(dir.path(), &[("KINESIS_INSTANCE", name), ("KINESIS_EVENTS_URL", &nats.url)])
        })
        .collect();
    let asker = tempfile::tempdir().unwrap();
    let env = [("KINESIS_EVENTS_URL", nats.url.as_str())];

    // Listed once each, with the URL each listens on and what it holds
    // (the announcement is made before the binary logs that it runs, but
    // the NATS connection is in the background: poll).
    let deadline = Instant::now() + Duration::from_secs(10);
    let found = loop {
        let found = listed(asker.path(), &env);
        if names(&found) == ["a", "b", "c"] || Instant::now() > deadline {
            break found;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(names(&found), ["a", "b", "c"], "{found:?}");
    for (instance, k) in found.iter().zip(&instances) {
        assert_eq!(instance["urls"][0], format!("http://{}", k.addr), "{instance}");
        assert_eq!(instance["source"], "nats");
        assert_eq!(instance["version"], env!("CARGO_PKG_VERSION"));
        let held = instance["components"].as_array().unwrap();
        assert!(held.iter().any(|c| c == "/root/counter"), "{instance}");
    }

    // A call by name reaches that instance and no other.
    let (code, stdout, stderr) =
        cli(asker.path(), &["--instance", "c", "call", "/root/counter", "increment", "by=5"], &env);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert_eq!([count(&instances[0]), count(&instances[1]), count(&instances[2])], [0, 0, 5]);

    // SIGKILL b: it leaves the list within 5 s (it stops answering at once;
    // the deadline is the promise).
    instances[1].child.kill().unwrap();
    instances[1].child.wait().unwrap();
    let killed = Instant::now();
    loop {
        let now = names(&listed(asker.path(), &env));
        if now == ["a", "c"] {
            break;
        }
        assert!(killed.elapsed() < Duration::from_secs(5), "b still listed: {now:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("a killed instance left the list after {:?}", killed.elapsed());

    // An unknown name is a failure that names the known ones.
    let (code, _, stderr) = cli(asker.path(), &["--instance", "b", "get", "/root/counter"], &env);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("no instance called `b`") && stderr.contains("a, c"), "{stderr}");

    // A clean stop withdraws the announcement.
    instances[0].signal(libc::SIGTERM);
    assert!(instances[0].wait().success());
    let now = names(&listed(asker.path(), &env));
    assert_eq!(now, ["c"]);
}

#[test]
fn static_peers_are_found_by_name_without_nats() {
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let one = spawn(dirs[0].path(), &[]);
    let two = spawn(dirs[1].path(), &[]);
    let peers = format!("one=http://{},two=http://{}", one.addr, two.addr);
    let env = [("KINESIS_PEERS", peers.as_str())];
    let asker = tempfile::tempdir().unwrap();

    let found = listed(asker.path(), &env);
    assert_eq!(names(&found), ["one", "two"]);
    assert_eq!(found[1]["source"], "peers");
    assert!(found[1]["components"].as_array().unwrap().iter().any(|c| c == "/root/counter"));

    let (code, stdout, stderr) = cli(
        asker.path(),
        &["--instance", "two", "call", "/root/counter", "increment", "by=2"],
        &env,
    );
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert_eq!((count(&one), count(&two)), (0, 2));

    // A bad list is a usage error naming the variable.
    let (code, _, stderr) = cli(asker.path(), &["instances"], &[("KINESIS_PEERS", "two=ftp://x")]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("KINESIS_PEERS"), "{stderr}");
    // So is a bad name.
    let (code, _, stderr) = cli(asker.path(), &["--instance", "a.b", "ps"], &env);
    assert_eq!(code, Some(2), "{stderr}");
}

#[test]
fn a_bad_instance_name_stops_the_server_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, stderr) = cli(
        dir.path(),
        &[],
        &[("KINESIS_INSTANCE", "no spaces"), ("KINESIS_HTTP_ADDR", &free_addr())],
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("KINESIS_INSTANCE"), "{stderr}");
}

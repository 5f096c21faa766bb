//! The binary's security posture, end to end: tokens made with
//! `kinesis token new`, `/root` stopped over HTTP (exit 0), a non-loopback
//! address without authentication (exit 2, or a loud warning when allowed),
//! and encrypted fields kept out of responses, logs and files even for an
//! admin.

#![cfg(all(unix, feature = "http", feature = "filedb"))]

use std::path::Path;
use std::process::Stdio;

use serde_json::Value;

mod common;

use common::{client, command, free_addr, spawn, Kinesis};

/// Runs `kinesis token new NAME GRANT…`; the token and the file line.
fn new_token(name: &str, grants: &[&str]) -> (String, String) {
    let out = command(Path::new(".")).args(["token", "new", name]).args(grants).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let token =
        text.lines().find_map(|l| l.split("once; give it to the client): ").nth(1)).unwrap();
    let line = text.lines().find_map(|l| l.split("KINESIS_AUTH_TOKENS_FILE: ").nth(1)).unwrap();
    assert!(!line.contains(token));
    (token.to_owned(), line.to_owned())
}

fn with_tokens(dir: &Path, lines: &[&str]) -> Kinesis {
    let file = dir.join("tokens");
    std::fs::write(&file, lines.join("\n")).unwrap();
    spawn(dir, &[("KINESIS_AUTH_TOKENS_FILE", file.to_str().unwrap())])
}

#[test]
fn token_new_refuses_bad_input_with_exit_2() {
    for args in [
        &["token"][..],
        &["token", "new", "ci"],
        &["token", "old", "ci", "read"],
        &["token", "new", "c i", "read"],
        &["token", "new", "ci", "delete:/x"],
    ] {
        let out = command(Path::new(".")).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!String::from_utf8_lossy(&out.stderr).is_empty());
    }
}

/// Stopping `/root` with the `control` grant shuts the process down as
/// ctrl-c does, and it exits 0; without a token, the same request is 401
/// and the process runs on.
#[test]
fn stopping_root_over_http_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let (admin, admin_line) = new_token("operator", &["control:/**"]);
    let (reader, reader_line) = new_token("reader", &["read:/root/**"]);
    let mut k = with_tokens(dir.path(), &[&admin_line, &reader_line]);
    let http = client();
    let control_url = k.url("/root/_control");
    let stop = |token: Option<&str>| {
        let mut req = http
            .post(&control_url)
            .header("content-type", "application/json")
            .body(r#"{"op":"stop"}"#);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().unwrap().status().as_u16()
    };
    assert_eq!(stop(None), 401);
    assert_eq!(stop(Some(&reader)), 403);
    assert_eq!(http.get(k.url("/root/counter")).bearer_auth(&reader).send().unwrap().status(), 200);
    assert!(k.child.try_wait().unwrap().is_none(), "refused stops stop nothing");
    let status = stop(Some(&admin));
    assert!(status == 200 || status == 202 || status == 204, "{status}");
    let exit = k.wait();
    assert_eq!(exit.code(), Some(0), "{}", k.stderr());
    assert!(k.stderr().contains("the root container was stopped"), "{}", k.stderr());
}

#[test]
fn a_non_loopback_address_needs_auth_or_an_explicit_allowance() {
    let port = free_addr().rsplit_once(':').unwrap().1.to_owned();
    let open = format!("0.0.0.0:{port}");
    let dir = tempfile::tempdir().unwrap();
    let out = command(dir.path()).env("KINESIS_HTTP_ADDR", &open).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("KINESIS_HTTP_ALLOW_ANONYMOUS") && stderr.contains(&open), "{stderr}");

    // Allowed explicitly: it starts, and says so loudly.
    let log = dir.path().join("stderr.log");
    let child = command(dir.path())
        .env("KINESIS_HTTP_ADDR", &open)
        .env("KINESIS_HTTP_ALLOW_ANONYMOUS", "true")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let k = Kinesis { child, addr: format!("127.0.0.1:{port}"), stderr_path: log };
    k.wait_ready();
    k.wait_for_log("WITHOUT AUTHENTICATION", 0);
}

/// With an admin token, the demo's encrypted `api_key` is still redacted in
/// responses and the change stream, and appears in no log and no file.
#[test]
fn encrypted_fields_stay_secret_even_for_an_admin() {
    let dir = tempfile::tempdir().unwrap();
    let (admin, line) = new_token("root", &["admin:/**"]);
    let k = with_tokens(dir.path(), &[&line]);
    let http = client();
    let get = |path: &str| -> Value {
        http.get(k.url(path)).bearer_auth(&admin).send().unwrap().json().unwrap()
    };
    let state = get("/root/kinesis");
    let shown = state["data"]["api_key"].clone();
    assert!(shown.is_null() || shown.as_str().is_some_and(|s| s.len() < 32), "redacted: {state}");
    // A watcher of the component, reading its events on a thread.
    let (started, watching) = std::sync::mpsc::channel();
    let watch_url = k.url("/root/kinesis/_watch");
    let watch_token = admin.clone();
    let watcher = std::thread::spawn(move || {
        use std::io::BufRead;
        let response = client().get(watch_url).bearer_auth(watch_token).send().unwrap();
        assert_eq!(response.status(), 200);
        let mut lines = std::io::BufReader::new(response).lines();
        let mut seen = String::new();
        let mut events = 0;
        while events < 2 {
            let line = lines.next().expect("the stream goes on").unwrap();
            if line.starts_with("event:") {
                events += 1;
                if events == 1 {
                    started.send(()).unwrap();
                }
            }
            seen.push_str(&line);
            seen.push('\n');
        }
        // The data line of the second event.
        for line in lines.by_ref().take(3) {
            seen.push_str(&line.unwrap());
            seen.push('\n');
        }
        seen
    });
    watching.recv_timeout(std::time::Duration::from_secs(20)).expect("the watch started");
    // Set a known key, then look for it everywhere.
    let secret = "f3a1c0de5ecre7f3a1c0de5ecre7f3a1";
    let r = http
        .patch(k.url("/root/kinesis"))
        .bearer_auth(&admin)
        .header("content-type", "application/merge-patch+json")
        .header("if-match", "*")
        .body(format!(r#"{{"api_key":"{secret}"}}"#))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let body = r.text().unwrap();
    assert!(!body.contains(secret), "{body}");
    let check: Value = http
        .post(k.url("/root/kinesis/check_key"))
        .bearer_auth(&admin)
        .header("content-type", "application/json")
        .body(format!(r#"{{"key":"{secret}"}}"#))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(check, Value::Bool(true), "the key was set");
    let events = watcher.join().unwrap();
    assert!(events.contains("api_key") && !events.contains(secret), "{events}");
    for path in ["/root/kinesis", "/", "/_kinesis/openapi.json"] {
        let text = http.get(k.url(path)).bearer_auth(&admin).send().unwrap().text().unwrap();
        assert!(!text.contains(secret), "{path}");
    }
    let mut files = Vec::new();
    let mut stack = vec![dir.path().to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p)
            } else {
                files.push(p)
            }
        }
    }
    assert!(files.len() > 2, "{files:?}");
    for f in files {
        let bytes = std::fs::read(&f).unwrap();
        assert!(!String::from_utf8_lossy(&bytes).contains(secret), "{}", f.display());
    }
    assert!(!k.stderr().contains(secret));
}

/// Every security variable is checked at start: a bad value exits 2 naming
/// it, and `--help` lists each once.
#[test]
fn bad_security_settings_exit_2_naming_the_variable() {
    for (var, value) in [
        ("KINESIS_AUTH_JWT_SECRET", "too-short"),
        ("KINESIS_AUTH_JWT_PUBLIC_KEY", "/nonexistent/key.pem"),
        ("KINESIS_AUTH_TOKENS_FILE", "/nonexistent/tokens"),
        ("KINESIS_HTTP_ALLOW_ANONYMOUS", "perhaps"),
        ("KINESIS_HTTP_ALLOWED_HOSTS", "bad/host"),
        ("KINESIS_HTTP_CORS_ORIGINS", "*"),
        ("KINESIS_HTTP_RATE_LIMIT", "fast"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let out = command(dir.path()).env(var, value).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{var}={value}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(var), "{var}={value}: {stderr}");
        if var == "KINESIS_AUTH_JWT_SECRET" {
            assert!(!stderr.contains(value), "the secret is not echoed: {stderr}");
        }
    }
    let help = command(Path::new(".")).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for (var, _) in kinesis_http::security::VARIABLES {
        let times = help.lines().filter(|l| l.trim_start().starts_with(var)).count();
        assert_eq!(times, 1, "{var}: {help}");
    }
}

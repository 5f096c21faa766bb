//! The real binary and its encryption keys: passphrase keys (the seed's own
//! examples) start and read back what they wrote; an empty or corrupt key
//! file stops the start with exit code 2 and a message naming the file.

#![cfg(all(unix, feature = "http", feature = "filedb"))]

mod common;

use common::{client, command, spawn};
use serde_json::Value;

fn get_json(url: &str) -> Value {
    let r = client().get(url).send().unwrap();
    assert_eq!(r.status(), 200, "{url}");
    r.json().unwrap()
}

#[test]
fn the_seeds_passphrase_keys_start_and_read_back_what_they_wrote() {
    for passphrase in ["68gjh658jhg8tf", "CAFEBEA"] {
        let dir = tempfile::tempdir().unwrap();
        let env = [("KINESIS_DB_SYMMETRIC_ENCRYPT_KEY", passphrase)];
        for run in 1..=2u64 {
            let mut k = spawn(dir.path(), &env);
            let state = get_json(&k.url("/root/kinesis"));
            assert_eq!(state["data"]["api_key"], "***");
            // The second run decrypted the first run's fields with the key
            // derived again from the passphrase.
            assert_eq!(state["data"]["previous_executions"], run, "{}", k.stderr());
            k.signal(libc::SIGINT);
            assert_eq!(k.wait().code(), Some(0), "{}", k.stderr());
            let log = k.stderr();
            assert!(!log.contains(passphrase), "the passphrase is not logged: {log}");
            assert!(log.contains("passphrase"), "a short passphrase is warned about: {log}");
        }
        assert!(
            !dir.path().join("kinesis-data").join("kinesis.key").exists(),
            "no key file is made when a key is configured"
        );
    }
}

#[test]
fn an_empty_or_corrupt_key_file_exits_2_naming_the_file() {
    for contents in ["", "bm90IGEga2V5"] {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("kinesis-data");
        std::fs::create_dir_all(&data).unwrap();
        let key_file = data.join("kinesis.key");
        std::fs::write(&key_file, contents).unwrap();
        let out =
            command(dir.path()).env("KINESIS_HTTP_ADDR", common::free_addr()).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{contents:?}: {stderr}");
        assert!(stderr.contains("kinesis-data/kinesis.key"), "names the file: {stderr}");
        assert!(stderr.contains("backup"), "says what to do: {stderr}");
        assert_eq!(std::fs::read_to_string(&key_file).unwrap(), contents, "left as it was");
    }
}

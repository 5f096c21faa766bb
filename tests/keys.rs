//! Encryption keys: the generated key file (atomic creation, an empty or
//! corrupt file is a clear error naming the file) and passphrase keys
//! (stretched with Argon2id, stable across constructions).

use std::path::Path;
use std::sync::Arc;

use kinesis::persist::{Cipher, ExposeSecret, MemoryStore, Persistence};
use kinesis::{Config, Container, Error, Persist, Runtime};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// Starts a runtime whose default store is `memory://` with its key file at
/// `key_file`, as the binary does with filedb; returns the error message if
/// it does not start.
async fn start_with_key_file(key_file: &Path) -> std::result::Result<(), String> {
    let started = Runtime::builder(Config::default())
        .default_store("memory://", Some(key_file.to_owned()))
        .start()
        .await;
    match started {
        Ok(rt) => {
            assert!(rt.shutdown().await.clean);
            Ok(())
        }
        Err(e @ Error::Config(_)) => Err(e.to_string()),
        Err(e) => panic!("expected a configuration error, got {e}"),
    }
}

fn assert_names_the_file_and_what_to_do(msg: &str, key_file: &Path) {
    assert!(msg.contains(&key_file.display().to_string()), "names the file: {msg}");
    assert!(!msg.contains("KINESIS_DB_SYMMETRIC_ENCRYPT_KEY is"), "blames the variable: {msg}");
    assert!(msg.contains("backup"), "says to restore it from a backup: {msg}");
    assert!(msg.contains("delete"), "says when it may be deleted: {msg}");
}

#[tokio::test]
async fn an_empty_key_file_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("kinesis.key");
    std::fs::write(&key_file, b"").unwrap();
    let msg = start_with_key_file(&key_file).await.unwrap_err();
    assert_names_the_file_and_what_to_do(&msg, &key_file);
    assert!(msg.contains("empty"), "{msg}");
    assert_eq!(std::fs::read(&key_file).unwrap(), b"", "the file is left as it was");
}

#[tokio::test]
async fn a_corrupt_key_file_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("kinesis.key");
    let good = Cipher::generate_key();
    // Truncated (as a torn write would leave it), not base64, or the wrong
    // length: never stretched like a passphrase, always refused.
    for corrupt in [&good[..20], "not base64 at all!", "AAAAAAAAAAAAAAAAAAAAAA=="] {
        std::fs::write(&key_file, corrupt).unwrap();
        let msg = start_with_key_file(&key_file).await.unwrap_err();
        assert_names_the_file_and_what_to_do(&msg, &key_file);
        assert!(!msg.contains(corrupt), "the key material is not echoed: {msg}");
        assert_eq!(std::fs::read_to_string(&key_file).unwrap(), corrupt);
    }
}

#[tokio::test]
async fn a_good_key_file_is_used_and_a_missing_one_created_complete() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("sub").join("kinesis.key");
    start_with_key_file(&key_file).await.unwrap();
    let key = std::fs::read_to_string(&key_file).unwrap();
    Cipher::new(key.trim(), &[]).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let (again, created) = Cipher::load_or_create_key_file(&key_file).unwrap();
    assert!(!created);
    assert_eq!(again.expose_secret(), key.trim(), "a second start reads the same key");
    let names: Vec<_> = std::fs::read_dir(key_file.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["kinesis.key"], "no temporary file is left behind");
}

/// A start killed between writing the temporary file and renaming it leaves
/// a temporary file and no key file; the next start ignores (and removes) the
/// leftover and creates a complete key file.
#[test]
fn a_leftover_temporary_file_is_ignored_and_the_key_file_is_complete() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("kinesis.key");
    let leftover = dir.path().join(".kinesis.key.4242.tmp");
    std::fs::write(&leftover, b"half a ke").unwrap();
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    std::fs::File::options().write(true).open(&leftover).unwrap().set_modified(old).unwrap();

    let (key, created) = Cipher::load_or_create_key_file(&key_file).unwrap();
    assert!(created);
    assert_eq!(std::fs::read_to_string(&key_file).unwrap(), key.expose_secret());
    Cipher::new(key.expose_secret(), &[]).unwrap();
    assert!(!leftover.exists(), "the stale temporary file was removed");
}

#[test]
fn passphrases_are_stretched_and_stable_across_constructions() {
    for passphrase in ["68gjh658jhg8tf", "CAFEBEA", "correct horse battery staple"] {
        let a = Cipher::new(passphrase, &[]).unwrap();
        let b = Cipher::new(passphrase, &[]).unwrap();
        assert_eq!(a.key_id(), b.key_id());
        let stored = a.encrypt("/root/app", "api_key", &json!("s3cret")).unwrap();
        assert!(!stored.to_string().contains(passphrase));
        assert_eq!(b.decrypt("/root/app", "api_key", &stored).unwrap(), (json!("s3cret"), false));
        assert!(!format!("{a:?}").contains(passphrase), "Debug shows no key material");
    }
    let a = Cipher::new("68gjh658jhg8tf", &[]).unwrap();
    let other = Cipher::new("CAFEBEA", &[]).unwrap();
    assert_ne!(a.key_id(), other.key_id());
    // A passphrase as a previous key, for reading only.
    let stored = a.encrypt("/root/app", "api_key", &json!(1)).unwrap();
    let rotated = Cipher::new(&Cipher::generate_key(), &["CAFEBEA", "68gjh658jhg8tf"]).unwrap();
    assert_eq!(rotated.decrypt("/root/app", "api_key", &stored).unwrap(), (json!(1), true));
}

/// The key ids (and so the keys) that existing data was written under do not
/// change: a base64 key of 32 bytes is used as it is, and base64 of another
/// length is stretched from its decoded bytes, as before passphrases.
#[test]
fn key_derivation_is_pinned() {
    let raw = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    assert_eq!(Cipher::new(raw, &[]).unwrap().key_id(), RAW_KEY_ID);
    let short = "AAECAwQFBgcICQoLDA0ODw==";
    assert_eq!(Cipher::new(short, &[]).unwrap().key_id(), SHORT_KEY_ID);
    assert_eq!(Cipher::new("68gjh658jhg8tf", &[]).unwrap().key_id(), PASSPHRASE_KEY_ID);
}

const RAW_KEY_ID: &str = "baae0454";
const SHORT_KEY_ID: &str = "dc962ac0";
const PASSPHRASE_KEY_ID: &str = "10258258";

#[test]
fn an_empty_passphrase_is_refused() {
    for empty in ["", "   "] {
        let err = Cipher::new(empty, &[]).unwrap_err();
        assert!(matches!(err, Error::Config(_)), "{err}");
    }
}

#[derive(Clone, Default, Serialize, Deserialize, Persist)]
struct Vault {
    #[persist(encrypt)]
    secret: String,
}

impl kinesis::Component for Vault {}

struct SetSecret(String);
impl kinesis::Handler<SetSecret> for Vault {
    type Reply = ();
    async fn handle(
        &mut self,
        SetSecret(s): SetSecret,
        _: &mut kinesis::Context<Self>,
    ) -> kinesis::Result<()> {
        self.secret = s;
        Ok(())
    }
}

/// A field encrypted under a passphrase key is read back by a second runtime
/// that derives the key again.
#[tokio::test]
async fn a_passphrase_key_round_trips_through_the_store() {
    let store = Arc::new(MemoryStore::new());
    let persistence = || Persistence {
        store: store.clone(),
        cipher: Some(Arc::new(Cipher::new("68gjh658jhg8tf", &[]).unwrap())),
    };
    let root = Container::root_with(Some(persistence())).await.unwrap();
    let vault = root.add("vault", Vault::default()).await.unwrap();
    vault.ask(SetSecret("s3cret".into())).await.unwrap();
    root.shutdown().await.unwrap();

    let root = Container::root_with(Some(persistence())).await.unwrap();
    let vault = root.add("vault", Vault::default()).await.unwrap();
    assert_eq!(vault.snapshot().state.secret, "s3cret");
    root.shutdown().await.unwrap();
}

//! The conformance suite every [`Store`](super::Store) back-end runs.
//!
//! Built with the `conformance` feature. A back-end's tests open their own
//! store and call [`run_all`], or any single check, with a prefix that no
//! other run uses ([`unique_prefix`]), so suites can share one database or
//! directory and can run again without cleaning up:
//!
//! ```
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use kinesis::persist::{conformance, MemoryStore, SharedStore};
//!
//! let store: SharedStore = Arc::new(MemoryStore::new());
//! conformance::run_all(store, &conformance::unique_prefix("memory")).await;
//! # });
//! ```
//!
//! What the suite holds every back-end to, check by check:
//!
//! | check | promise |
//! | --- | --- |
//! | [`load_missing`] | a URI never written loads as `None`, and so does a prefix or an extension of a stored URI |
//! | [`save_load_round_trip`] | a record saved at expected version 0 loads back equal in every field, and updates replace it whole |
//! | [`stale_save_conflicts`] | a save with a stale expected version fails with [`StoreError::Conflict`] naming the URI, the expected and the found version, and changes nothing |
//! | [`version_must_follow_expected`] | a save whose `record.version` is not `expected + 1` is refused and changes nothing |
//! | [`delete_once`] | `delete` answers `true` once and `false` after, removes only that record, and a deleted URI can be created again from version 0 |
//! | [`list_by_prefix`] | `list` returns exactly the URIs that start with the prefix, as plain string prefixes, sorted |
//! | [`racing_writers`] | of many writers saving the same expected version at once, exactly one wins each round, every other one gets `Conflict`, and the final version is the number of rounds |
//! | [`encrypted_fields_round_trip`] | `{"$enc": …}` values written by [`Cipher`] come back byte for byte and still decrypt |
//! | [`large_record`] | a record with about 1 MiB of field data round-trips and can be replaced |
//! | [`every_name_character`] | URIs made of every allowed name character (`A-Z a-z 0-9 . _ ~ -`) in any segment are stored, listed and deleted as they are |
//! | [`store_goes_away`] | while the back-end is unreachable every call fails without a false success, and once it is back nothing was lost or changed (not in [`run_all`]: it needs a way to take the back-end away) |
//!
//! Every check panics, with a message naming the check and the URI, when the
//! store breaks its promise; that is how a test using it fails. Field values
//! stay within what every back-end's JSON can hold exactly: no `\u0000` in
//! strings (PostgreSQL `jsonb` refuses it), integers within `i64`, and
//! floating point numbers that are exact in binary.

use std::future::Future;
use std::sync::Arc;

use rand::Rng;
use serde_json::{json, Map, Value};
use tokio::sync::Barrier;

use super::{Cipher, Record, SharedStore, StoreError, StoreResult, ENCRYPTED_MARKER};

/// Every character allowed in a URI segment besides `/`.
pub const NAME_CHARACTERS: &str =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._~-";

/// The type name the suite writes into its records.
pub const TYPE_NAME: &str = "kinesis::persist::conformance::Probe";

/// A prefix no other run uses: `/conformance-<tag>-<16 random hex digits>`.
///
/// `tag` should itself be made of [`NAME_CHARACTERS`]; it only helps a person
/// tell the runs apart in a shared database.
pub fn unique_prefix(tag: &str) -> String {
    let n: u64 = rand::thread_rng().gen();
    format!("/conformance-{tag}-{n:016x}")
}

/// Runs every check of the suite except [`store_goes_away`] on `store`, each
/// under its own sub-prefix of `prefix` (see [`unique_prefix`]).
///
/// Needs a tokio runtime ([`racing_writers`] spawns tasks); a multi-threaded
/// one makes the race real.
///
/// # Panics
///
/// When the store breaks any promise; the message names the check.
pub async fn run_all(store: SharedStore, prefix: &str) {
    load_missing(&store, &format!("{prefix}/load-missing")).await;
    save_load_round_trip(&store, &format!("{prefix}/round-trip")).await;
    stale_save_conflicts(&store, &format!("{prefix}/stale")).await;
    version_must_follow_expected(&store, &format!("{prefix}/version-step")).await;
    delete_once(&store, &format!("{prefix}/delete")).await;
    list_by_prefix(&store, &format!("{prefix}/list")).await;
    racing_writers(&store, &format!("{prefix}/race"), 16, 8).await;
    encrypted_fields_round_trip(&store, &format!("{prefix}/encrypted")).await;
    large_record(&store, &format!("{prefix}/large")).await;
    every_name_character(&store, &format!("{prefix}/names")).await;
    fencing(&store, &format!("{prefix}/fence")).await;
}

/// Through [`FencedStore`](crate::persist::FencedStore): a holder with a
/// lower fencing token cannot replace a record written with a higher one,
/// whether it names the version it last saw (a lost compare-and-set
/// reported as fenced) or the current one; a claim by the new holder
/// refuses every later write of the old one; the token is stored in the
/// reserved field, and a higher token writes over a lower one.
///
/// # Panics
///
/// When a lower token's write goes through, or a higher one's is refused.
pub async fn fencing(store: &SharedStore, prefix: &str) {
    use crate::persist::{claim, fence_of, FencedStore, Store};
    let check = "fencing";
    let uri = format!("{prefix}/job");
    let old = FencedStore::new(Arc::clone(store), 7);
    let new = FencedStore::new(Arc::clone(store), 8);
    // The old holder writes twice; its records carry its token.
    ok(old.save(&probe(&uri, 1, 1), 0).await, check, &uri);
    ok(old.save(&probe(&uri, 2, 1), 1).await, check, &uri);
    let stored = ok(store.load(&uri).await, check, &uri).expect("saved");
    assert_eq!(fence_of(&stored), 7, "{check}: the token is stored with the record");
    // The new holder claims: version 3 with token 8, same fields.
    ok(claim(&new, &uri, TYPE_NAME).await, check, &uri);
    let stored = ok(store.load(&uri).await, check, &uri).expect("claimed");
    assert_eq!((stored.version, fence_of(&stored)), (3, 8), "{check}: the claim");
    assert_eq!(stored.fields.get("writer"), Some(&json!(1)), "{check}: the claim keeps the fields");
    // The old holder, paused before the claim, writes on top of version 2.
    let late = old.save(&probe(&uri, 3, 1), 2).await;
    assert!(
        matches!(late, Err(StoreError::Fenced { token: 7, current: 8, .. })),
        "{check}: a paused holder's write after a claim: {late:?}"
    );
    // Even naming the current version (it reloaded) it is refused.
    let late = old.save(&probe(&uri, 4, 1), 3).await;
    assert!(
        matches!(late, Err(StoreError::Fenced { token: 7, current: 8, .. })),
        "{check}: a replaced holder's write on the current version: {late:?}"
    );
    let stored = ok(store.load(&uri).await, check, &uri).expect("kept");
    assert_eq!((stored.version, fence_of(&stored)), (3, 8), "{check}: nothing of the old holder's");
    // The new holder writes on.
    ok(new.save(&probe(&uri, 4, 2), 3).await, check, &uri);
    // A record the new holder claims before the old one ever wrote it.
    let fresh = format!("{prefix}/fresh");
    ok(claim(&new, &fresh, TYPE_NAME).await, check, &fresh);
    let late = old.save(&probe(&fresh, 1, 1), 0).await;
    assert!(late.is_err(), "{check}: the old holder created a claimed record: {late:?}");
    let late = old.save(&probe(&fresh, 2, 1), 1).await;
    assert!(
        matches!(late, Err(StoreError::Fenced { .. })),
        "{check}: the old holder wrote over a claimed record: {late:?}"
    );
}

/// A URI never written loads as `None`; so do a strict prefix of a stored
/// URI and a stored URI with a segment appended, which a back-end keying by
/// prefix or by path would get wrong.
///
/// # Panics
///
/// When any of these loads returns a record or fails.
pub async fn load_missing(store: &SharedStore, prefix: &str) {
    let check = "load_missing";
    let missing = format!("{prefix}/never-written");
    assert_eq!(ok(store.load(&missing).await, check, &missing), None, "{check}: {missing}");

    let stored = format!("{prefix}/stored");
    ok(store.save(&probe(&stored, 1, 0), 0).await, check, &stored);
    for other in [format!("{prefix}/store"), format!("{stored}/child"), format!("{stored}d")] {
        let got = ok(store.load(&other).await, check, &other);
        assert_eq!(got, None, "{check}: {other} was never written, but loads as a record");
    }
}

/// A record saved at expected version 0 loads back equal in every field
/// (`schema`, `uri`, `type`, `version`, `updated_at`, `fields`), with field
/// values of every JSON kind; a second save at expected version 1 replaces
/// it whole (fields it no longer has are gone).
///
/// # Panics
///
/// When a save fails or a load does not return exactly what was saved.
pub async fn save_load_round_trip(store: &SharedStore, prefix: &str) {
    let check = "save_load_round_trip";
    let uri = format!("{prefix}/component");
    let mut fields = Map::new();
    fields.insert("null".into(), Value::Null);
    fields.insert("yes".into(), json!(true));
    fields.insert("no".into(), json!(false));
    fields.insert("zero".into(), json!(0));
    fields.insert("count".into(), json!(42));
    fields.insert("negative".into(), json!(i64::MIN));
    fields.insert("big".into(), json!(i64::MAX));
    fields.insert("fraction".into(), json!(-1234.5625));
    fields.insert("empty".into(), json!(""));
    fields.insert(
        "text".into(),
        json!("quotes \" backslash \\ slash / tab \t newline \n unicode é ß 中文 🦀 \u{1f}"),
    );
    fields.insert("list".into(), json!([1, "two", [3], {"four": 4}, null]));
    fields.insert("nested".into(), json!({"a": {"b": {"c": [true, false]}}, "empty": {}}));
    fields.insert("with space and ünïcode".into(), json!("key names are free text"));
    let mut first = Record::new(&uri, TYPE_NAME, 1, fields);
    first.updated_at = "2026-01-02T03:04:05.678Z".into();
    ok(store.save(&first, 0).await, check, &uri);
    let loaded = ok(store.load(&uri).await, check, &uri);
    assert_eq!(loaded.as_ref(), Some(&first), "{check}: {uri} did not load as saved");

    let mut fields = Map::new();
    fields.insert("count".into(), json!(43));
    let second = Record::new(&uri, TYPE_NAME, 2, fields);
    ok(store.save(&second, 1).await, check, &uri);
    let loaded = ok(store.load(&uri).await, check, &uri);
    assert_eq!(loaded.as_ref(), Some(&second), "{check}: {uri} was not replaced whole");
}

/// A save whose expected version is not the stored one fails with
/// [`StoreError::Conflict`] carrying the URI, the expected version and the
/// version found, and leaves the stored record as it was. Covers: creating a
/// record that exists (expected 0), expecting a version behind, and one ahead
/// of the stored one, and updating a record that does not exist.
///
/// # Panics
///
/// When such a save succeeds, fails otherwise, or changes the record.
pub async fn stale_save_conflicts(store: &SharedStore, prefix: &str) {
    let check = "stale_save_conflicts";
    let uri = format!("{prefix}/component");
    ok(store.save(&probe(&uri, 1, 1), 0).await, check, &uri);
    ok(store.save(&probe(&uri, 2, 2), 1).await, check, &uri);
    let stored = ok(store.load(&uri).await, check, &uri);

    for expected in [0, 1, 3] {
        let result = store.save(&probe(&uri, expected + 1, 99), expected).await;
        expect_conflict(result, check, &uri, expected, Some(2));
        let now = ok(store.load(&uri).await, check, &uri);
        assert_eq!(now, stored, "{check}: a refused save (expected {expected}) changed {uri}");
    }

    let absent = format!("{prefix}/absent");
    let result = store.save(&probe(&absent, 5, 5), 4).await;
    expect_conflict(result, check, &absent, 4, None);
    let now = ok(store.load(&absent).await, check, &absent);
    assert_eq!(now, None, "{check}: a refused save created {absent}");
}

/// A save whose `record.version` is not `expected + 1` is refused (any
/// error), whether the expected version matches the stored one or not, and
/// changes nothing: a back-end must not let versions repeat or jump.
///
/// # Panics
///
/// When such a save succeeds or changes the record.
pub async fn version_must_follow_expected(store: &SharedStore, prefix: &str) {
    let check = "version_must_follow_expected";
    let uri = format!("{prefix}/component");
    for (version, expected) in [(0, 0), (2, 0), (5, 0)] {
        let result = store.save(&probe(&uri, version, 0), expected).await;
        assert!(
            result.is_err(),
            "{check}: {uri} saved at version {version} with expected {expected}"
        );
        let now = ok(store.load(&uri).await, check, &uri);
        assert_eq!(now, None, "{check}: a refused save created {uri}");
    }

    let first = probe(&uri, 1, 1);
    ok(store.save(&first, 0).await, check, &uri);
    for (version, expected) in [(1, 1), (3, 1), (1, 0), (u64::MAX, 1)] {
        let result = store.save(&probe(&uri, version, 0), expected).await;
        assert!(
            result.is_err(),
            "{check}: {uri} saved at version {version} with expected {expected}"
        );
        let now = ok(store.load(&uri).await, check, &uri);
        assert_eq!(now.as_ref(), Some(&first), "{check}: a refused save changed {uri}");
    }
}

/// `delete` removes the record and answers `true`; a second `delete`
/// answers `false`; a URI never written answers `false`; a neighbouring
/// record is untouched; the deleted URI loads as `None`, is not listed, and
/// can be created again from expected version 0.
///
/// # Panics
///
/// When any of these does not hold.
pub async fn delete_once(store: &SharedStore, prefix: &str) {
    let check = "delete_once";
    let uri = format!("{prefix}/component");
    let neighbour = format!("{prefix}/component-2");
    ok(store.save(&probe(&uri, 1, 1), 0).await, check, &uri);
    ok(store.save(&probe(&uri, 2, 2), 1).await, check, &uri);
    let kept = probe(&neighbour, 1, 7);
    ok(store.save(&kept, 0).await, check, &neighbour);

    assert!(ok(store.delete(&uri).await, check, &uri), "{check}: first delete of {uri} said none");
    assert!(!ok(store.delete(&uri).await, check, &uri), "{check}: second delete of {uri} said one");
    let never = format!("{prefix}/never-written");
    assert!(!ok(store.delete(&never).await, check, &never), "{check}: deleted unknown {never}");
    assert_eq!(ok(store.load(&uri).await, check, &uri), None, "{check}: {uri} loads after delete");
    let listed = ok(store.list(prefix).await, check, prefix);
    assert_eq!(listed, vec![neighbour.clone()], "{check}: list after deleting {uri}");
    let now = ok(store.load(&neighbour).await, check, &neighbour);
    assert_eq!(now.as_ref(), Some(&kept), "{check}: deleting {uri} changed {neighbour}");

    let again = probe(&uri, 1, 3);
    ok(store.save(&again, 0).await, check, &uri);
    let now = ok(store.load(&uri).await, check, &uri);
    assert_eq!(now.as_ref(), Some(&again), "{check}: {uri} recreated after delete");
}

/// `list(prefix)` returns exactly the stored URIs that start with `prefix`
/// as a plain string prefix (so `/a/b` matches `/a/b`, `/a/b/c` and
/// `/a/bc`), sorted by their bytes, without duplicates, and nothing for a
/// prefix that matches no record.
///
/// # Panics
///
/// When a listing differs from the expected one.
pub async fn list_by_prefix(store: &SharedStore, prefix: &str) {
    let check = "list_by_prefix";
    // Saved out of order on purpose.
    let uris = [
        format!("{prefix}/b/z"),
        format!("{prefix}/a"),
        format!("{prefix}/b"),
        format!("{prefix}/b/a/deep/er"),
        format!("{prefix}/bc"),
        format!("{prefix}/B"),
        format!("{prefix}/b-"),
        format!("{prefix}/b.x"),
        format!("{prefix}/c"),
    ];
    for uri in &uris {
        ok(store.save(&probe(uri, 1, 0), 0).await, check, uri);
    }
    // Updating must not make a record appear twice.
    ok(store.save(&probe(&uris[0], 2, 0), 1).await, check, &uris[0]);

    let mut everything: Vec<String> = uris.to_vec();
    everything.sort();
    let listed = ok(store.list(prefix).await, check, prefix);
    assert_eq!(listed, everything, "{check}: list({prefix})");
    let listed = ok(store.list(&format!("{prefix}/")).await, check, prefix);
    assert_eq!(listed, everything, "{check}: list({prefix}/)");

    let sub = format!("{prefix}/b");
    let mut expected: Vec<String> = uris.iter().filter(|u| u.starts_with(&sub)).cloned().collect();
    expected.sort();
    assert_eq!(expected.len(), 6, "{check}: the check itself miscounted");
    let listed = ok(store.list(&sub).await, check, &sub);
    assert_eq!(listed, expected, "{check}: list({sub})");

    let sub = format!("{prefix}/b/");
    let listed = ok(store.list(&sub).await, check, &sub);
    assert_eq!(listed, vec![format!("{prefix}/b/a/deep/er"), format!("{prefix}/b/z")]);

    let exact = format!("{prefix}/b/a/deep/er");
    let listed = ok(store.list(&exact).await, check, &exact);
    assert_eq!(listed, vec![exact.clone()], "{check}: list of a full URI");

    for nothing in [format!("{prefix}/d"), format!("{prefix}/a/"), format!("{prefix}x")] {
        let listed = ok(store.list(&nothing).await, check, &nothing);
        assert!(listed.is_empty(), "{check}: list({nothing}) returned {listed:?}");
    }
}

/// `writers` tasks race for `rounds` rounds on one record: in each round all
/// of them are released together (a barrier) and call `save` expecting the
/// same version `v`, each with its own record at `v + 1`. Exactly one wins;
/// every other gets [`StoreError::Conflict`]; the stored record is the
/// winner's; after the last round the version is `rounds`.
///
/// The tasks are spawned with `tokio::spawn`, so on a multi-threaded runtime
/// they truly run in parallel.
///
/// # Panics
///
/// When a round has no winner or several, a loser gets another error, or the
/// stored record is not the winner's.
pub async fn racing_writers(store: &SharedStore, prefix: &str, writers: usize, rounds: u64) {
    let check = "racing_writers";
    assert!(writers >= 2, "{check}: a race needs at least two writers");
    let uri = format!("{prefix}/contended");
    for round in 0..rounds {
        let barrier = Arc::new(Barrier::new(writers));
        let mut tasks = Vec::with_capacity(writers);
        for writer in 0..writers {
            let store = Arc::clone(store);
            let barrier = Arc::clone(&barrier);
            let record = probe(&uri, round + 1, writer as u64);
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                store.save(&record, round).await
            }));
        }
        let mut winners = Vec::new();
        for (writer, task) in tasks.into_iter().enumerate() {
            let result = match task.await {
                Ok(result) => result,
                Err(e) => panic!("{check}: writer {writer} of round {round} died: {e}"),
            };
            match result {
                Ok(()) => winners.push(writer),
                Err(StoreError::Conflict { uri: u, expected, found }) => {
                    assert_eq!(u, uri, "{check}: conflict names the wrong URI");
                    assert_eq!(expected, round, "{check}: conflict names the wrong expected");
                    assert_ne!(found, Some(round), "{check}: conflict although {round} is stored");
                }
                Err(e) => panic!("{check}: writer {writer} of round {round} failed: {e}"),
            }
        }
        assert_eq!(winners.len(), 1, "{check}: round {round} of {uri} had winners {winners:?}");
        let stored = ok(store.load(&uri).await, check, &uri);
        let Some(stored) = stored else { panic!("{check}: {uri} missing after round {round}") };
        assert_eq!(stored.version, round + 1, "{check}: version of {uri} after round {round}");
        assert_eq!(
            stored.fields.get("writer"),
            Some(&json!(winners[0] as u64)),
            "{check}: {uri} does not hold the winner's record after round {round}"
        );
    }
    let last = ok(store.load(&uri).await, check, &uri).map(|r| r.version);
    assert_eq!(last, Some(rounds), "{check}: final version of {uri}");
}

/// Fields encrypted with a [`Cipher`] (`{"$enc": "v1:…"}`) next to plain
/// ones come back identical from the store, decrypt to the original values
/// under the record's URI and field names, and an update with a fresh
/// ciphertext replaces the old one.
///
/// # Panics
///
/// When a value differs after the round trip or no longer decrypts.
pub async fn encrypted_fields_round_trip(store: &SharedStore, prefix: &str) {
    let check = "encrypted_fields_round_trip";
    let cipher = match Cipher::new(&Cipher::generate_key(), &[]) {
        Ok(c) => c,
        Err(e) => panic!("{check}: cannot make a cipher: {e}"),
    };
    let uri = format!("{prefix}/component");
    let secrets = [
        ("api_key", json!("s3cret-ü-🦀")),
        ("token", json!({"id": 7, "scopes": ["read", "write"]})),
        ("empty", json!("")),
    ];
    for version in 1..=2u64 {
        let mut fields = Map::new();
        fields.insert("plain".into(), json!(version));
        for (name, value) in &secrets {
            let sealed = match cipher.encrypt(&uri, name, value) {
                Ok(v) => v,
                Err(e) => panic!("{check}: cannot encrypt {name}: {e}"),
            };
            assert!(sealed.get(ENCRYPTED_MARKER).is_some(), "{check}: not an $enc value");
            fields.insert((*name).into(), sealed);
        }
        let record = Record::new(&uri, TYPE_NAME, version, fields);
        ok(store.save(&record, version - 1).await, check, &uri);
        let loaded = ok(store.load(&uri).await, check, &uri);
        assert_eq!(loaded.as_ref(), Some(&record), "{check}: {uri} version {version}");
        let Some(loaded) = loaded else { unreachable!("compared above") };
        for (name, value) in &secrets {
            match cipher.decrypt(&uri, name, &loaded.fields[*name]) {
                Ok((plain, stale)) => {
                    assert_eq!(&plain, value, "{check}: {name} of {uri} decrypts differently");
                    assert!(!stale, "{check}: {name} of {uri} flagged as under an old key");
                }
                Err(e) => panic!("{check}: {name} of {uri} no longer decrypts: {e}"),
            }
        }
    }
}

/// A record with about 1 MiB of field data (a long string full of characters
/// JSON must escape, many small fields, a long array) round-trips exactly,
/// and can be replaced by another large record.
///
/// # Panics
///
/// When the record fails to save or loads back different.
pub async fn large_record(store: &SharedStore, prefix: &str) {
    let check = "large_record";
    let uri = format!("{prefix}/component");
    for version in 1..=2u64 {
        let mut fields = Map::new();
        let piece = format!("v{version} \"quoted\" \\ back/slash\ttab\nline é 中 🦀 ");
        let mut text = String::with_capacity(600 * 1024);
        while text.len() < 512 * 1024 {
            text.push_str(&piece);
        }
        fields.insert("text".into(), Value::String(text));
        let numbers: Vec<Value> = (0..32_768i64).map(|i| json!(i * 7919 - 100_000)).collect();
        fields.insert("numbers".into(), Value::Array(numbers));
        for i in 0..2_000 {
            fields
                .insert(format!("field_{i:04}"), json!(format!("value {i} of version {version}")));
        }
        let record = Record::new(&uri, TYPE_NAME, version, fields);
        let size = match serde_json::to_vec(&record) {
            Ok(bytes) => bytes.len(),
            Err(e) => panic!("{check}: cannot serialise: {e}"),
        };
        assert!(size >= 1024 * 1024 * 9 / 10, "{check}: the record is only {size} bytes");
        ok(store.save(&record, version - 1).await, check, &uri);
        let loaded = ok(store.load(&uri).await, check, &uri);
        assert!(loaded.as_ref() == Some(&record), "{check}: {uri} version {version} differs");
    }
}

/// URIs built from every allowed name character, in segments like
/// `/root/a.b_c~d-E9`, `.`-only, `..`-like and `~`-leading ones, deep
/// paths, and a segment that is the whole [`NAME_CHARACTERS`] set, are each
/// saved, loaded, listed exactly as written (sorted) and deleted.
///
/// # Panics
///
/// When any URI is altered, mixed up with another, or not listed.
pub async fn every_name_character(store: &SharedStore, prefix: &str) {
    let check = "every_name_character";
    let mut uris: Vec<String> = [
        "/root/a.b_c~d-E9",
        "/root/A.B_C~D-e9",
        "/root",
        "/root/...",
        "/root/..a",
        "/root/.",
        "/root/~",
        "/root/-",
        "/root/_",
        "/root/.hidden",
        "/root/trailing.",
        "/root/a/b/c/d/e/f/g/h",
        "/0/1/2/3",
        "/UPPER/lower",
        "/upper/LOWER",
    ]
    .iter()
    .map(|s| format!("{prefix}{s}"))
    .collect();
    uris.push(format!("{prefix}/{NAME_CHARACTERS}"));
    uris.push(format!("{prefix}/{NAME_CHARACTERS}/{NAME_CHARACTERS}"));
    for c in NAME_CHARACTERS.chars() {
        uris.push(format!("{prefix}/single/{c}"));
    }

    for (i, uri) in uris.iter().enumerate() {
        ok(store.save(&probe(uri, 1, i as u64), 0).await, check, uri);
    }
    for (i, uri) in uris.iter().enumerate() {
        let loaded = ok(store.load(uri).await, check, uri);
        let Some(loaded) = loaded else { panic!("{check}: {uri} does not load") };
        assert_eq!(&loaded.uri, uri, "{check}: stored under another URI");
        assert_eq!(loaded.fields.get("writer"), Some(&json!(i as u64)), "{check}: {uri} mixed up");
    }
    let mut sorted = uris.clone();
    sorted.sort();
    let listed = ok(store.list(prefix).await, check, prefix);
    assert_eq!(listed, sorted, "{check}: list({prefix})");
    for uri in &uris {
        assert!(ok(store.delete(uri).await, check, uri), "{check}: delete {uri}");
    }
    let listed = ok(store.list(prefix).await, check, prefix);
    assert!(listed.is_empty(), "{check}: left after deleting all: {listed:?}");
}

/// The store's back-end goes away and comes back: `go_away` makes it
/// unreachable (stop the server, break the directory, `set_failing(true)`),
/// `come_back` restores it.
///
/// While it is away, `load`, `save`, `delete` and `list` each return an
/// error that is not [`StoreError::Conflict`] (a store that cannot reach its
/// data must not claim a version conflict). After it is back, the record
/// written before is exactly as it was, and a save expecting its version
/// succeeds, without opening the store again.
///
/// # Panics
///
/// When a call succeeds while the store is away, or data changed.
pub async fn store_goes_away<D, DF, U, UF>(
    store: &SharedStore,
    prefix: &str,
    go_away: D,
    come_back: U,
) where
    D: FnOnce() -> DF,
    DF: Future<Output = ()>,
    U: FnOnce() -> UF,
    UF: Future<Output = ()>,
{
    let check = "store_goes_away";
    let uri = format!("{prefix}/component");
    let before = probe(&uri, 1, 1);
    ok(store.save(&before, 0).await, check, &uri);

    go_away().await;
    let away = |what: &str, failed: Option<StoreError>| match failed {
        None => panic!("{check}: {what} of {uri} succeeded while the store is away"),
        Some(StoreError::Conflict { .. }) => {
            panic!("{check}: {what} of {uri} claims a conflict while the store is away")
        }
        Some(_) => {}
    };
    away("save", store.save(&probe(&uri, 2, 2), 1).await.err());
    away("load", store.load(&uri).await.err());
    away("list", store.list(prefix).await.err());
    away("delete", store.delete(&uri).await.err());
    come_back().await;

    let now = ok(store.load(&uri).await, check, &uri);
    assert_eq!(now.as_ref(), Some(&before), "{check}: {uri} changed while the store was away");
    let after = probe(&uri, 2, 3);
    ok(store.save(&after, 1).await, check, &uri);
    let now = ok(store.load(&uri).await, check, &uri);
    assert_eq!(now.as_ref(), Some(&after), "{check}: {uri} after the store came back");
}

/// A small record of the suite: one field `writer` that tells records apart.
fn probe(uri: &str, version: u64, writer: u64) -> Record {
    let mut fields = Map::new();
    fields.insert("writer".into(), json!(writer));
    Record::new(uri, TYPE_NAME, version, fields)
}

/// The value of a store call that must succeed.
#[track_caller]
fn ok<T>(result: StoreResult<T>, check: &str, uri: &str) -> T {
    match result {
        Ok(value) => value,
        Err(e) => panic!("{check}: store call on {uri} failed: {e}"),
    }
}

/// Asserts `result` is a [`StoreError::Conflict`] with these details.
#[track_caller]
fn expect_conflict(
    result: StoreResult<()>,
    check: &str,
    uri: &str,
    expected: u64,
    found: Option<u64>,
) {
    match result {
        Err(StoreError::Conflict { uri: u, expected: e, found: f }) => {
            assert_eq!(
                (u.as_str(), e, f),
                (uri, expected, found),
                "{check}: conflict details (uri, expected, found)"
            );
        }
        Ok(()) => panic!("{check}: save of {uri} expecting {expected} succeeded"),
        Err(e) => panic!("{check}: save of {uri} expecting {expected} failed otherwise: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persist::MemoryStore;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn memory_store_passes_the_suite() {
        let store: SharedStore = Arc::new(MemoryStore::new());
        run_all(store.clone(), &unique_prefix("memory")).await;
        // A second run on the same store with another prefix: runs do not
        // see each other.
        run_all(store, &unique_prefix("memory")).await;
    }

    #[tokio::test]
    async fn memory_store_survives_going_away() {
        let memory = Arc::new(MemoryStore::new());
        let store: SharedStore = memory.clone();
        let (down, up) = (memory.clone(), memory);
        store_goes_away(
            &store,
            &unique_prefix("memory"),
            || async move { down.set_failing(true) },
            || async move { up.set_failing(false) },
        )
        .await;
    }

    #[tokio::test]
    async fn a_store_that_breaks_a_promise_fails_the_suite() {
        /// Accepts every save, ignoring the expected version.
        struct Careless(MemoryStore);
        impl super::super::Store for Careless {
            fn backend(&self) -> &'static str {
                "careless"
            }
            fn load<'a>(
                &'a self,
                uri: &'a str,
            ) -> futures::future::BoxFuture<'a, StoreResult<Option<Record>>> {
                self.0.load(uri)
            }
            fn save<'a>(
                &'a self,
                record: &'a Record,
                _expected: u64,
            ) -> futures::future::BoxFuture<'a, StoreResult<()>> {
                Box::pin(async move {
                    let found = self.0.load(&record.uri).await?.map_or(0, |r| r.version);
                    self.0.save(record, found).await
                })
            }
            fn delete<'a>(
                &'a self,
                uri: &'a str,
            ) -> futures::future::BoxFuture<'a, StoreResult<bool>> {
                self.0.delete(uri)
            }
            fn list<'a>(
                &'a self,
                prefix: &'a str,
            ) -> futures::future::BoxFuture<'a, StoreResult<Vec<String>>> {
                self.0.list(prefix)
            }
        }
        let store: SharedStore = Arc::new(Careless(MemoryStore::new()));
        let prefix = unique_prefix("careless");
        let outcome =
            tokio::spawn(async move { stale_save_conflicts(&store, &prefix).await }).await;
        let panic = outcome.expect_err("a store ignoring the expected version passed");
        assert!(panic.is_panic());
    }

    #[test]
    fn unique_prefixes_differ_and_use_name_characters() {
        let (a, b) = (unique_prefix("x"), unique_prefix("x"));
        assert_ne!(a, b);
        assert!(a[1..].chars().all(|c| NAME_CHARACTERS.contains(c)), "{a}");
    }
}

//! AES-256-GCM encryption of `#[persist(encrypt)]` fields.
//!
//! An encrypted field is stored as `{"$enc": "v1:<key id>:<base64>"}` where
//! the base64 holds `nonce (12 bytes) | ciphertext | tag (16 bytes)`. The
//! nonce is random per write. The associated data is the component URI and
//! the field name, so a ciphertext copied to another field or component fails
//! to decrypt. The key id (8 hex digits derived from the key, never the key)
//! says which key wrote the value, so keys can be rotated: values written
//! under a previous key are read with it and re-encrypted under the current
//! key on the next write.

use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use rand::RngCore;
use secrecy::SecretBox;
/// The key file's key ([`Cipher::load_or_create_key_file`]) is a
/// [`SecretString`]; read it with [`ExposeSecret::expose_secret`].
pub use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use zeroize::Zeroizing;

use crate::{Error, Result};

/// The key of the JSON object that wraps an encrypted value.
pub const ENCRYPTED_MARKER: &str = "$enc";

const FORMAT: &str = "v1";
/// The fixed, versioned application salt of the passphrase KDF (see [`Cipher`] for why it
/// is fixed).
const KDF_SALT: &[u8] = b"kinesis.persist.cipher.v1";
/// Argon2id memory cost in KiB, passes and lanes: pinned (the argon2 0.5
/// defaults, OWASP's minimum), so that a passphrase gives the same key forever.
const KDF_PARAMS: (u32, u32, u32) = (19 * 1024, 2, 1);
/// Passphrases shorter than this are used with a warning.
const SHORT_PASSPHRASE: usize = 16;
/// Temporary key files older than this are left over from a killed start.
const STALE_TEMP: std::time::Duration = std::time::Duration::from_secs(60);

/// The public id of a key: 8 hex digits derived from it with BLAKE3.
pub type KeyId = String;

struct Key {
    id: KeyId,
    /// Zeroizes its key schedule when dropped (the `zeroize` features of
    /// `aes` and `aes-gcm`).
    aead: Aes256Gcm,
    etag_key: SecretBox<[u8; 32]>,
}

/// Encrypts and decrypts field values. Holds the current key and any number
/// of previous keys that are used for reading only.
///
/// # Keys
///
/// [`Cipher::new`] takes key material as text, as `KINESIS_DB_SYMMETRIC_ENCRYPT_KEY`
/// and `KINESIS_DB_PREVIOUS_ENCRYPT_KEYS` give it:
///
/// * base64 of exactly 32 bytes (what [`Cipher::generate_key`] and
///   `openssl rand -base64 32` make) is the AES-256 key as it is;
/// * anything else is a passphrase, stretched into a key with Argon2id
///   (version 0x13, 19 MiB of memory, 2 passes, 1 lane; pinned here, so an
///   upgrade of the `argon2` crate cannot change a key). The bytes stretched
///   are the base64-decoded bytes when the text is valid base64 (as it has
///   always been, so keys already in use keep their ids), else the UTF-8 text
///   itself (the seed's `68gjh658jhg8tf` or `CAFEBEA`). An empty passphrase is
///   refused; one shorter than 16 characters is used with a warning.
///
/// The salt is fixed: the application salt `kinesis.persist.cipher.v1`,
/// versioned with the encryption format. It is not random because the same
/// passphrase must give the same key in every process and after every
/// restart, and there is nowhere to keep a per-installation salt that is
/// not itself part of the key (a lost salt would lose the data). The cost is
/// that a fixed salt lets an attacker who has the ciphertexts precompute
/// guesses against every kinesis installation at once, which Argon2id only
/// slows down: use a random 32-byte key in production, and a passphrase only
/// for development or for keys kept from an older deployment.
///
/// The key id is the first 4 bytes of a BLAKE3 key derivation of the key (hex),
/// whichever way the key was made. Keys live in zeroizing memory: the key
/// bytes, the ETag key and the copies of the text made while deriving them
/// are wiped when dropped, and `Debug` shows only key ids.
///
/// # The key file
///
/// With the default file store and no key configured, the runtime keeps a
/// generated key in a file beside the data ([`Cipher::load_or_create_key_file`]).
/// It is created atomically: a temporary file in the same directory (mode
/// 0600) is written and fsynced, then linked to its final name (which never
/// replaces a key file another process made meanwhile), and the directory is
/// fsynced. A start killed half way leaves at most a temporary file, which is
/// never read and is removed by a later start; the key file itself is either
/// absent or complete. A key file that is empty or does not hold a 32-byte
/// base64 key is an error naming the file: it is never replaced, since data
/// may have been encrypted with the key it held.
///
/// # Example
///
/// ```
/// use kinesis::persist::Cipher;
/// use serde_json::json;
///
/// let cipher = Cipher::new(&Cipher::generate_key(), &[]).unwrap();
/// let stored = cipher.encrypt("/root/app", "api_key", &json!("s3cret")).unwrap();
/// assert!(!stored.to_string().contains("s3cret"));
/// let (plain, stale_key) = cipher.decrypt("/root/app", "api_key", &stored).unwrap();
/// assert_eq!(plain, json!("s3cret"));
/// assert!(!stale_key);
/// // Moved to another field: refused.
/// assert!(cipher.decrypt("/root/app", "other", &stored).is_err());
/// // A passphrase works too; it is stretched with Argon2id.
/// let from_passphrase = Cipher::new("68gjh658jhg8tf", &[]).unwrap();
/// assert_eq!(from_passphrase.key_id(), Cipher::new("68gjh658jhg8tf", &[]).unwrap().key_id());
/// ```
pub struct Cipher {
    current: Key,
    previous: Vec<Key>,
}

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cipher")
            .field("key_id", &self.current.id)
            .field("previous", &self.previous.iter().map(|k| &k.id).collect::<Vec<_>>())
            .finish()
    }
}

impl Cipher {
    /// A cipher from key material: base64 of 32 bytes is the key as it is;
    /// anything else is a passphrase stretched with Argon2id (see
    /// [keys](Cipher#keys)). `previous` keys, of either kind, are used
    /// only to read values written under them.
    ///
    /// Errors: [`Error::Config`] for an empty key, naming the variable.
    pub fn new(current: &str, previous: &[&str]) -> Result<Self> {
        let current = Key::parse(current, "KINESIS_DB_SYMMETRIC_ENCRYPT_KEY")?;
        let previous = previous
            .iter()
            .map(|k| Key::parse(k, "KINESIS_DB_PREVIOUS_ENCRYPT_KEYS"))
            .collect::<Result<Vec<_>>>()?;
        Ok(Cipher { current, previous })
    }

    /// A cipher from `KINESIS_DB_SYMMETRIC_ENCRYPT_KEY` and the comma
    /// separated `KINESIS_DB_PREVIOUS_ENCRYPT_KEYS`; `None` when no key is set.
    pub fn from_env() -> Result<Option<Self>> {
        let current = match std::env::var("KINESIS_DB_SYMMETRIC_ENCRYPT_KEY") {
            Ok(v) => Zeroizing::new(v),
            Err(std::env::VarError::NotPresent) => return Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => {
                return Err(Error::Config(
                    "KINESIS_DB_SYMMETRIC_ENCRYPT_KEY is not valid UTF-8; it takes a base64 key or a passphrase"
                        .into(),
                ))
            }
        };
        if current.trim().is_empty() {
            return Ok(None);
        }
        let previous =
            Zeroizing::new(std::env::var("KINESIS_DB_PREVIOUS_ENCRYPT_KEYS").unwrap_or_default());
        let previous: Vec<&str> =
            previous.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
        Cipher::new(current.trim(), &previous).map(Some)
    }

    /// A new random 32-byte key, base64 encoded.
    pub fn generate_key() -> String {
        let mut key = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(&mut *key);
        B64.encode(*key)
    }

    /// Reads the base64 key in `path`, or creates the file (mode 0600) with a
    /// new random key, atomically (see
    /// [the key file](Cipher#the-key-file)).
    /// Returns the key and whether it was created.
    ///
    /// Errors: [`Error::Config`] naming the file when it cannot be read or
    /// created, or when it is empty or does not hold base64 of 32 bytes; the
    /// message says what to do. Such a file is left as it is.
    pub fn load_or_create_key_file(path: &Path) -> Result<(SecretString, bool)> {
        loop {
            match read_key_file(path)? {
                Some(key) => return Ok((key, false)),
                None => {
                    if let Some(key) = create_key_file(path).map_err(|e| {
                        Error::Config(format!("cannot create key file {}: {e}", path.display()))
                    })? {
                        return Ok((key, true));
                    }
                    // Another process made it first: read theirs.
                }
            }
        }
    }

    /// A key derived from the current key for hashing states into ETags, so
    /// that the ETag of a state with encrypted fields reveals nothing about
    /// them.
    pub(crate) fn etag_key(&self) -> &[u8; 32] {
        self.current.etag_key.expose_secret()
    }

    /// The id of the current key.
    pub fn key_id(&self) -> &str {
        &self.current.id
    }

    /// Encrypts `value` (any JSON) for field `field` of component `uri`.
    pub fn encrypt(&self, uri: &str, field: &str, value: &Value) -> Result<Value> {
        let plaintext = serde_json::to_vec(value)?;
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let aad = associated_data(uri, field);
        let sealed = self
            .current
            .aead
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: &plaintext, aad: &aad })
            .map_err(|_| Error::Crypto(format!("cannot encrypt field `{field}` of {uri}")))?;
        let mut blob = Vec::with_capacity(12 + sealed.len());
        blob.extend_from_slice(&nonce);
        blob.extend_from_slice(&sealed);
        let text = format!("{FORMAT}:{}:{}", self.current.id, B64.encode(blob));
        Ok(serde_json::json!({ ENCRYPTED_MARKER: text }))
    }

    /// Decrypts a stored value of field `field` of component `uri`. The flag
    /// is `true` when it was written under a previous key (rewrite it).
    pub fn decrypt(&self, uri: &str, field: &str, stored: &Value) -> Result<(Value, bool)> {
        let fail = |why: &str| Error::Crypto(format!("field `{field}` of {uri}: {why}"));
        let text = stored
            .get(ENCRYPTED_MARKER)
            .and_then(Value::as_str)
            .ok_or_else(|| fail("stored value is not encrypted"))?;
        let mut parts = text.splitn(3, ':');
        let (Some(format), Some(key_id), Some(b64)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(fail("malformed encrypted value"));
        };
        if format != FORMAT {
            return Err(fail(&format!("unknown encryption format `{format}`")));
        }
        let (key, stale) = if key_id == self.current.id {
            (&self.current, false)
        } else if let Some(k) = self.previous.iter().find(|k| k.id == key_id) {
            (k, true)
        } else {
            return Err(fail(&format!(
                "written under key {key_id}, which is neither the current key nor a previous one"
            )));
        };
        let blob = B64.decode(b64).map_err(|_| fail("encrypted value is not valid base64"))?;
        if blob.len() < 12 + 16 {
            return Err(fail("encrypted value is truncated"));
        }
        let (nonce, sealed) = blob.split_at(12);
        let aad = associated_data(uri, field);
        let plaintext = key
            .aead
            .decrypt(Nonce::from_slice(nonce), Payload { msg: sealed, aad: &aad })
            .map_err(|_| {
                fail("authentication failed (tampered, moved from another field, or a wrong key)")
            })?;
        let value =
            serde_json::from_slice(&plaintext).map_err(|_| fail("decrypted value is not JSON"))?;
        Ok((value, stale))
    }
}

impl Key {
    fn parse(material: &str, variable: &str) -> Result<Key> {
        let material = material.trim();
        if material.is_empty() {
            return Err(Error::Config(format!(
                "{variable} has an empty key; use a base64 key of 32 bytes (openssl rand -base64 32) or a passphrase"
            )));
        }
        let decoded = Zeroizing::new(B64.decode(material).ok());
        let mut key = Zeroizing::new([0u8; 32]);
        match decoded.as_deref() {
            Some(raw) if raw.len() == 32 => key.copy_from_slice(raw),
            Some(raw) if !raw.is_empty() => stretch(raw, &mut key, variable)?,
            _ => stretch(material.as_bytes(), &mut key, variable)?,
        }
        if (*decoded).as_ref().is_none_or(|raw| raw.len() != 32)
            && material.chars().count() < SHORT_PASSPHRASE
        {
            tracing::warn!(
                variable,
                "{variable} is not a 32-byte base64 key but a short passphrase (under {SHORT_PASSPHRASE} characters), stretched with Argon2id; use a random key in production (openssl rand -base64 32)"
            );
        }
        Ok(Key::from_bytes(&key))
    }

    fn from_bytes(key: &[u8; 32]) -> Key {
        let digest = blake3::derive_key("kinesis persist key id v1", key);
        let id = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
        let aead = Aes256Gcm::new(key.into());
        let etag_key = SecretBox::init_with(|| blake3::derive_key("kinesis etag key v1", key));
        Key { id, aead, etag_key }
    }
}

/// Stretches `passphrase` into `out` with Argon2id and the fixed salt.
fn stretch(passphrase: &[u8], out: &mut [u8; 32], variable: &str) -> Result<()> {
    let fail = |e: argon2::Error| Error::Config(format!("{variable}: key derivation failed: {e}"));
    let (m, t, p) = KDF_PARAMS;
    let params = argon2::Params::new(m, t, p, Some(32)).map_err(fail)?;
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
        .hash_password_into(passphrase, KDF_SALT, out)
        .map_err(fail)
}

fn associated_data(uri: &str, field: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(uri.len() + field.len() + 1);
    aad.extend_from_slice(uri.as_bytes());
    aad.push(0);
    aad.extend_from_slice(field.as_bytes());
    aad
}

/// What to do about a key file that is not usable, for the error message.
const KEY_FILE_ADVICE: &str = "it is left as it is. If anything was ever encrypted with this key, restore the file from a backup; delete it only if nothing was (a new key is then made at the next start); or set KINESIS_DB_SYMMETRIC_ENCRYPT_KEY to the key to use instead";

/// The key in the key file at `path`; `None` when there is no such file.
fn read_key_file(path: &Path) -> Result<Option<SecretString>> {
    let text = match std::fs::read(path) {
        Ok(bytes) => Zeroizing::new(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Error::Config(format!("cannot read key file {}: {e}", path.display())))
        }
    };
    let trimmed = text.trim_ascii();
    if trimmed.is_empty() {
        return Err(Error::Config(format!(
            "key file {} is empty (a full disk or a start killed while writing it can leave it so); {KEY_FILE_ADVICE}",
            path.display()
        )));
    }
    let valid = B64.decode(trimmed).ok().map(Zeroizing::new).is_some_and(|raw| raw.len() == 32);
    let key = std::str::from_utf8(trimmed).ok().filter(|_| valid).ok_or_else(|| {
        Error::Config(format!(
            "key file {} is corrupt: it does not hold a base64 key of 32 bytes ({} bytes found, 44 expected); {KEY_FILE_ADVICE}",
            path.display(),
            trimmed.len()
        ))
    })?;
    Ok(Some(SecretString::from(key)))
}

/// Creates the key file at `path` with a new key, atomically; `None` when
/// another process created it first.
fn create_key_file(path: &Path) -> std::io::Result<Option<SecretString>> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| std::io::Error::other("the key file path has no file name"))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir)?;
    remove_stale_temps(dir, name);
    let temp =
        dir.join(format!(".{name}.{}.{:016x}.tmp", std::process::id(), rand::random::<u64>()));
    let key = SecretString::from(Cipher::generate_key());
    if let Err(e) = write_private_file(&temp, key.expose_secret().as_bytes()) {
        let _ = std::fs::remove_file(&temp);
        return Err(e);
    }
    // A hard link publishes the complete file under its name and, unlike a
    // rename, never replaces a key file made meanwhile by another process.
    let published = match std::fs::hard_link(&temp, path) {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => false,
        // A file system without hard links: rename, unless the file appeared.
        Err(_) if !path.exists() => {
            std::fs::rename(&temp, path)?;
            true
        }
        Err(_) => false,
    };
    let _ = std::fs::remove_file(&temp);
    sync_dir(dir)?;
    Ok(published.then_some(key))
}

/// Removes temporary key files left by starts killed while creating one.
fn remove_stale_temps(dir: &Path, name: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let prefix = format!(".{name}.");
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(file_name) = file_name.to_str() else { continue };
        if !(file_name.starts_with(&prefix) && file_name.ends_with(".tmp")) {
            continue;
        }
        let stale = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > STALE_TEMP);
        if stale {
            match std::fs::remove_file(entry.path()) {
                Ok(()) => {
                    tracing::info!(path = %entry.path().display(), "removed a temporary key file left by an interrupted start")
                }
                Err(e) => {
                    tracing::debug!(path = %entry.path().display(), error = %e, "cannot remove a stale temporary key file")
                }
            }
        }
    }
}

#[cfg(unix)]
fn write_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    f.write_all(contents)?;
    f.sync_all()
}

#[cfg(not(unix))]
fn write_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).open(path)?;
    f.write_all(contents)?;
    f.sync_all()
}

/// Makes the directory entries in `dir` durable.
#[cfg(unix)]
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_: &Path) -> std::io::Result<()> {
    Ok(())
}

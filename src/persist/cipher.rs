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
use serde_json::Value;

use crate::{Error, Result};

/// The key of the JSON object that wraps an encrypted value.
pub const ENCRYPTED_MARKER: &str = "$enc";

const FORMAT: &str = "v1";
const KDF_SALT: &[u8] = b"kinesis.persist.cipher.v1";

/// The public id of a key: 8 hex digits derived from it with BLAKE3.
pub type KeyId = String;

struct Key {
    id: KeyId,
    aead: Aes256Gcm,
    etag_key: [u8; 32],
}

/// Encrypts and decrypts field values. Holds the current key and any number
/// of previous keys that are used for reading only.
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
    /// A cipher from base64 key material: 32 decoded bytes are the key as
    /// they are; anything else is stretched with Argon2id. `previous` keys are
    /// used only to read values written under them.
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
        let current =
            match std::env::var("KINESIS_DB_SYMMETRIC_ENCRYPT_KEY") {
                Ok(v) if !v.trim().is_empty() => v,
                Ok(_) | Err(std::env::VarError::NotPresent) => return Ok(None),
                Err(std::env::VarError::NotUnicode(_)) => return Err(Error::Config(
                    "KINESIS_DB_SYMMETRIC_ENCRYPT_KEY is not valid UTF-8; it takes a base64 key"
                        .into(),
                )),
            };
        let previous = std::env::var("KINESIS_DB_PREVIOUS_ENCRYPT_KEYS").unwrap_or_default();
        let previous: Vec<&str> =
            previous.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
        Cipher::new(current.trim(), &previous).map(Some)
    }

    /// A new random 32-byte key, base64 encoded.
    pub fn generate_key() -> String {
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        B64.encode(key)
    }

    /// Reads the base64 key in `path`, or creates the file (mode 0600) with a
    /// new random key. Returns the key and whether it was created.
    pub fn load_or_create_key_file(path: &Path) -> Result<(String, bool)> {
        match std::fs::read_to_string(path) {
            Ok(key) => return Ok((key.trim().to_owned(), false)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(Error::Config(format!("cannot read key file {}: {e}", path.display())))
            }
        }
        let key = Cipher::generate_key();
        write_private_file(path, key.as_bytes()).map_err(|e| {
            Error::Config(format!("cannot create key file {}: {e}", path.display()))
        })?;
        Ok((key, true))
    }

    /// A key derived from the current key for hashing states into ETags, so
    /// that the ETag of a state with encrypted fields reveals nothing about
    /// them.
    pub(crate) fn etag_key(&self) -> &[u8; 32] {
        &self.current.etag_key
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
        let bytes = B64.decode(material.trim()).map_err(|_| {
            Error::Config(format!("{variable} is not valid base64; it takes a base64 key (32 bytes are used as they are, anything else is stretched with Argon2id)"))
        })?;
        if bytes.is_empty() {
            return Err(Error::Config(format!("{variable} is empty")));
        }
        let key: [u8; 32] = match <[u8; 32]>::try_from(bytes.as_slice()) {
            Ok(k) => k,
            Err(_) => {
                let mut out = [0u8; 32];
                argon2::Argon2::default().hash_password_into(&bytes, KDF_SALT, &mut out).map_err(
                    |e| Error::Config(format!("{variable}: key derivation failed: {e}")),
                )?;
                out
            }
        };
        let digest = blake3::derive_key("kinesis persist key id v1", &key);
        let id = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
        let aead = Aes256Gcm::new_from_slice(&key)
            .map_err(|_| Error::Config(format!("{variable}: bad key length")))?;
        let etag_key = blake3::derive_key("kinesis etag key v1", &key);
        Ok(Key { id, aead, etag_key })
    }
}

fn associated_data(uri: &str, field: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(uri.len() + field.len() + 1);
    aad.extend_from_slice(uri.as_bytes());
    aad.push(0);
    aad.extend_from_slice(field.as_bytes());
    aad
}

#[cfg(unix)]
fn write_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    f.write_all(contents)?;
    f.sync_all()
}

#[cfg(not(unix))]
fn write_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).open(path)?;
    f.write_all(contents)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn password_keys_are_stretched_and_stable() {
        let pw = B64.encode("correct horse battery staple");
        let a = Cipher::new(&pw, &[]).unwrap();
        let b = Cipher::new(&pw, &[]).unwrap();
        assert_eq!(a.key_id(), b.key_id());
        let v = a.encrypt("/r/c", "f", &json!({"x": 1})).unwrap();
        assert_eq!(b.decrypt("/r/c", "f", &v).unwrap().0, json!({"x": 1}));
    }

    #[test]
    fn rotation_reads_old_and_flags_it() {
        let old = Cipher::generate_key();
        let new = Cipher::generate_key();
        let a = Cipher::new(&old, &[]).unwrap();
        let v = a.encrypt("/r/c", "f", &json!("s")).unwrap();
        let b = Cipher::new(&new, &[&old]).unwrap();
        assert_eq!(b.decrypt("/r/c", "f", &v).unwrap(), (json!("s"), true));
        let only_new = Cipher::new(&new, &[]).unwrap();
        let err = only_new.decrypt("/r/c", "f", &v).unwrap_err();
        assert!(err.to_string().contains("field `f` of /r/c"), "{err}");
    }

    #[test]
    fn tampering_and_bad_keys_fail_loudly() {
        let c = Cipher::new(&Cipher::generate_key(), &[]).unwrap();
        let v = c.encrypt("/r/c", "f", &json!("secret")).unwrap();
        let text = v[ENCRYPTED_MARKER].as_str().unwrap();
        let mut chars: Vec<char> = text.chars().collect();
        let last = chars.len() - 3;
        chars[last] = if chars[last] == 'A' { 'B' } else { 'A' };
        let tampered = json!({ ENCRYPTED_MARKER: chars.into_iter().collect::<String>() });
        assert!(matches!(c.decrypt("/r/c", "f", &tampered), Err(Error::Crypto(_))));
        assert!(matches!(c.decrypt("/r/other", "f", &v), Err(Error::Crypto(_))));
        assert!(matches!(Cipher::new("not base64!!", &[]), Err(Error::Config(_))));
    }

    #[test]
    fn debug_shows_no_key_material() {
        let key = Cipher::generate_key();
        let c = Cipher::new(&key, &[]).unwrap();
        let dbg = format!("{c:?}");
        assert!(!dbg.contains(&key));
        assert!(dbg.contains(c.key_id()));
    }
}

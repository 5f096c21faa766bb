//! The persistence side of a running component: loads its persisted fields
//! before `init` and writes them through after every change.

use serde_json::{Map, Value};

use crate::persist::{Cipher, PersistSchema, Persistence, Record, SharedStore, StoreError};
use crate::{Component, Error, Result};

/// Why a write failed.
pub(crate) enum SaveError {
    /// Another writer saved first: reload, then tell the caller.
    Conflict(StoreError),
    /// Anything else; the mutation is rolled back.
    Failed(Error),
}

/// One component's binding to its store.
pub(crate) struct Persisted {
    store: SharedStore,
    cipher: Option<std::sync::Arc<Cipher>>,
    pub(crate) schema: &'static PersistSchema,
    uri: String,
    /// Version of the record in the store (0: none yet).
    saved_version: u64,
    /// Plaintext of the fields as last saved or loaded.
    saved_fields: Option<Map<String, Value>>,
    /// A loaded value was encrypted under a previous key.
    stale_key: bool,
    /// Brings the changes other processes save (see `cell::remote`).
    feed: Option<std::sync::Arc<crate::persist::ChangeFeed>>,
}

impl Persisted {
    /// Binds a component type with `schema` at `uri` to `persistence`.
    pub(crate) fn new(
        schema: &'static PersistSchema,
        persistence: Option<&Persistence>,
        uri: &str,
    ) -> Result<Self> {
        let Some(p) = persistence else {
            return Err(Error::Config(format!(
                "component {uri} ({}) has persisted fields but no store is configured (KINESIS_DB_CONNECTION)",
                schema.type_name
            )));
        };
        if schema.has_encrypted() && p.cipher.is_none() {
            let fields: Vec<_> =
                schema.fields.iter().filter(|f| f.encrypt).map(|f| f.name).collect();
            return Err(Error::Config(format!(
                "component {uri} ({}) has encrypted fields ({}) but no encryption key is configured (KINESIS_DB_SYMMETRIC_ENCRYPT_KEY)",
                schema.type_name,
                fields.join(", ")
            )));
        }
        Ok(Persisted {
            store: p.store.clone(),
            cipher: p.cipher.clone(),
            schema,
            uri: uri.to_owned(),
            saved_version: 0,
            saved_fields: None,
            stale_key: false,
            feed: p.store.feed(),
        })
    }

    /// The key ETags of this component are hashed with, if it has encrypted fields.
    pub(crate) fn etag_key(&self) -> Option<[u8; 32]> {
        match &self.cipher {
            Some(c) if self.schema.has_encrypted() => Some(*c.etag_key()),
            _ => None,
        }
    }

    /// Loads the stored fields into `state`. Returns whether a record existed.
    pub(crate) async fn load<C: Component>(&mut self, state: &mut C) -> Result<bool> {
        let record =
            self.store.load(&self.uri).await.map_err(|e| {
                Error::Store(format!("loading persisted fields of {}: {e}", self.uri))
            })?;
        let Some(record) = record else {
            self.saved_version = 0;
            self.saved_fields = Some(self.plain_fields(state)?);
            return Ok(false);
        };
        self.apply(state, &record)?;
        Ok(true)
    }

    /// Loads the fields of `record` (as stored: encrypted fields are
    /// decrypted here) into `state`; the record's version becomes the saved one.
    pub(crate) fn apply<C: Component>(&mut self, state: &mut C, record: &Record) -> Result<()> {
        let mut plain = Map::new();
        let mut stale = false;
        for field in self.schema.fields {
            let Some(stored) = record.fields.get(field.name) else { continue };
            let value = if field.encrypt {
                let cipher = self.cipher.as_ref().ok_or_else(|| {
                    Error::Config(format!(
                        "field `{}` of {} is encrypted but no key is configured",
                        field.name, self.uri
                    ))
                })?;
                let (v, old_key) = cipher.decrypt(&self.uri, field.name, stored)?;
                stale |= old_key;
                v
            } else {
                stored.clone()
            };
            plain.insert(field.name.to_owned(), value);
        }
        let mut current = serde_json::to_value(&*state).map_err(|e| {
            Error::Invalid(format!("state of {} does not serialise: {e}", self.uri))
        })?;
        if let Value::Object(obj) = &mut current {
            for (k, v) in &plain {
                obj.insert(k.clone(), v.clone());
            }
        }
        (self.schema.load_fields)(state, current).map_err(|e| {
            Error::Invalid(format!(
                "persisted fields of {} do not fit the component: {e}",
                self.uri
            ))
        })?;
        self.saved_version = record.version;
        self.saved_fields = Some(self.plain_fields(state)?);
        self.stale_key = stale;
        Ok(())
    }

    /// The version of the record in the store as this component last saved
    /// or loaded it (0: none).
    pub(crate) fn saved_version(&self) -> u64 {
        self.saved_version
    }

    /// The feed of changes saved by other processes, if the store has one.
    pub(crate) fn feed(&self) -> Option<&std::sync::Arc<crate::persist::ChangeFeed>> {
        self.feed.as_ref()
    }

    /// The record stored under this component's URI now.
    pub(crate) async fn fetch(&self) -> Result<Option<Record>> {
        self.store
            .load(&self.uri)
            .await
            .map_err(|e| Error::Store(format!("loading persisted fields of {}: {e}", self.uri)))
    }

    /// Whether a loaded value must be re-encrypted under the current key.
    pub(crate) fn needs_rewrite(&self) -> bool {
        self.stale_key
    }

    /// Writes the persisted fields of `state` if they changed (or `force`).
    pub(crate) async fn save<C: Component>(
        &mut self,
        state: &C,
        force: bool,
    ) -> std::result::Result<(), SaveError> {
        let plain = self.plain_fields(state).map_err(SaveError::Failed)?;
        if !force && !self.stale_key && self.saved_fields.as_ref() == Some(&plain) {
            return Ok(());
        }
        let mut stored = Map::new();
        for field in self.schema.fields {
            let value = plain.get(field.name).cloned().unwrap_or(Value::Null);
            let value = if field.encrypt {
                let cipher = self.cipher.as_ref().ok_or_else(|| {
                    SaveError::Failed(Error::Config(format!(
                        "field `{}` of {} is encrypted but no key is configured",
                        field.name, self.uri
                    )))
                })?;
                cipher.encrypt(&self.uri, field.name, &value).map_err(SaveError::Failed)?
            } else {
                value
            };
            stored.insert(field.name.to_owned(), value);
        }
        let record = Record::new(&self.uri, self.schema.type_name, self.saved_version + 1, stored);
        match self.store.save(&record, self.saved_version).await {
            Ok(()) => {
                self.saved_version = record.version;
                self.saved_fields = Some(plain);
                self.stale_key = false;
                Ok(())
            }
            Err(e @ StoreError::Conflict { .. }) => Err(SaveError::Conflict(e)),
            // A later holder of this singleton's lease wrote (lease::FencedStore).
            Err(e @ StoreError::Fenced { .. }) => Err(SaveError::Failed(e.into())),
            Err(e) => Err(SaveError::Failed(Error::Store(format!(
                "saving persisted fields of {}: {e}",
                self.uri
            )))),
        }
    }

    fn plain_fields<C: Component>(&self, state: &C) -> Result<Map<String, Value>> {
        let value = serde_json::to_value(state).map_err(|e| {
            Error::Invalid(format!("state of {} does not serialise: {e}", self.uri))
        })?;
        let mut out = Map::new();
        if let Value::Object(obj) = value {
            for field in self.schema.fields {
                out.insert(
                    field.name.to_owned(),
                    obj.get(field.name).cloned().unwrap_or(Value::Null),
                );
            }
        }
        Ok(out)
    }
}

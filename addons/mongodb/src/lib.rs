//! MongoDB store of kinesis (`mongodb://…`, `mongodb+srv://…`).
//!
//! [`MongoStore`] keeps one document per record in one collection:
//!
//! ```json
//! { "_id": "/root/counter", "schema": 1, "type": "app::Counter",
//!   "version": 3, "updated_at": "2026-11-23T10:00:00.000Z",
//!   "fields": { "count": 3, "api_key": { "$enc": "v1:…" } } }
//! ```
//!
//! `version` and `schema` are 64-bit integers; `fields` is a document
//! converted exactly from the record's JSON (see [Limits](#limits)).
//!
//! # Guarantees
//!
//! * **Compare-and-set across processes.** [`Store::save`] with
//!   `expected > 0` is one `replaceOne({_id: uri, version: expected}, …)`; it
//!   wrote if and only if it matched a document. With `expected == 0` it is
//!   one `insertOne`, and the unique `_id` makes a second insert of the same
//!   uri fail with a duplicate-key error (code 11000), which becomes
//!   [`StoreError::Conflict`]. A single document write is atomic in MongoDB,
//!   so any number of processes see exactly one winner per version. On a
//!   conflict the found version is read afterwards, so it is the version at
//!   that moment.
//! * **Durable on success.** Unless the URL sets a write concern, writes use
//!   `{w: "majority", j: true}`: `save` returns `Ok` once a majority has the
//!   write in its journal (on a single server: once it is journaled).
//! * **`list` is byte-ordered** (the order of Rust's `str`) and a prefix
//!   matches literally: the query is an `_id` range `[prefix, successor)`,
//!   which MongoDB answers from the `_id` index, and the result is checked
//!   and sorted again here, whatever collation the collection has.
//! * **Failures.** A server that cannot be reached, a lost connection or a
//!   restart gives [`StoreError::Backend`] (at connect: [`kinesis::Error::Store`])
//!   with the driver's cause. Choosing a server gives up after
//!   [`SERVER_SELECTION_TIMEOUT`] and any call after [`OPERATION_TIMEOUT`],
//!   unless the URL sets `serverSelectionTimeoutMS` / `connectTimeoutMS`. The
//!   driver reconnects by itself; later calls succeed once the server is
//!   back. A `save` that failed this way may or may not have been written;
//!   the next `save` with the same `expected` then gets a `Conflict`, and a
//!   `load` tells which.
//! * **No secrets in messages.** Errors and logs show the URL with its
//!   password replaced by `***` and its query string left out, and the
//!   password is masked in driver messages too.
//!
//! # URLs
//!
//! `mongodb://user:password@host1:27017,host2:27017/database?collection=name&…`:
//! the database is the URL's path (default [`DEFAULT_DATABASE`]) and the
//! collection its `collection` parameter (default [`DEFAULT_COLLECTION`]);
//! every other parameter goes to the driver. The connection pool's size is
//! `maxPoolSize` from the URL, else `KINESIS_DB_POOL_SIZE`, else the
//! driver's default.
//!
//! # Limits
//!
//! * A JSON integer above `i64::MAX` (a `u64` field) is stored as
//!   `Decimal128` and read back as the same integer. Every other JSON value
//!   maps to one BSON type and back without loss.
//! * Object keys may not contain the NUL character (BSON keys cannot), and
//!   MongoDB before 5.0 refuses keys starting with `$`, which encrypted
//!   fields (`{"$enc": …}`) use: MongoDB 5.0 or later is required.
//! * A record is at most 16 MiB as BSON (MongoDB's document limit).
//! * Documents in the collection that are not records (other types in
//!   `fields`, missing keys) load as [`StoreError::Corrupt`].
//! * Uses only `insertOne`, `replaceOne`, `deleteOne`, `find` with a
//!   range filter, a projection and a sort on `_id`, `listCollectionNames`,
//!   `create` and `ping`, so that MongoDB-compatible servers with a partial
//!   command set (such as the test server `nx-27017`) work too.

mod convert;
mod url;

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::TryStreamExt;
use kinesis::persist::{Record, SharedStore, Store, StoreError, StoreRegistry, StoreResult};
use kinesis::{Error, Result};
use mongodb::bson::{doc, Bson, Document};
use mongodb::error::{ErrorKind, WriteFailure};
use mongodb::options::{Acknowledgment, ClientOptions, WriteConcern};
use mongodb::{Client, Collection};

use url::MongoUrl;

/// The database used when the URL names none.
pub const DEFAULT_DATABASE: &str = "kinesis";

/// The collection used when the URL has no `collection` parameter.
pub const DEFAULT_COLLECTION: &str = "components";

/// The environment variable that sets the connection pool size when the URL
/// has no `maxPoolSize`.
pub const POOL_SIZE_ENV: &str = "KINESIS_DB_POOL_SIZE";

/// The variables the MongoDB store reads, with what each accepts (for
/// `kinesis --help`). [`POOL_SIZE_ENV`] is the variable the SQL stores read
/// too, with the same range.
pub const VARIABLES: &[(&str, &str)] = &[(
    POOL_SIZE_ENV,
    "MongoDB connections per pool, 1-10000 (default: the URL's maxPoolSize, else the driver's)",
)];

/// How long choosing a server may take (which includes connecting) before a
/// call fails, unless the URL sets `serverSelectionTimeoutMS`.
pub const SERVER_SELECTION_TIMEOUT: Duration = Duration::from_secs(5);

/// How long one call may take before it fails with [`StoreError::Backend`].
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(30);

/// MongoDB's error code for a duplicate key.
const DUPLICATE_KEY: i32 = 11000;
/// MongoDB's error code for creating a collection that exists.
const NAMESPACE_EXISTS: i32 = 48;

/// A [`Store`] on a MongoDB collection.
pub struct MongoStore {
    client: Client,
    collection: Collection<Document>,
    database: String,
    url: MongoUrl,
}

/// Registers [`MongoStore`] in `registry` for `mongodb://` and `mongodb+srv://`.
pub fn register(registry: &mut StoreRegistry) {
    for scheme in ["mongodb", "mongodb+srv"] {
        registry.register(scheme, |url| {
            Box::pin(async move { Ok(Arc::new(MongoStore::connect(&url).await?) as SharedStore) })
        });
    }
}

impl MongoStore {
    /// Connects to the server `url` names, checks it answers (the error says
    /// why not), and creates the collection if it is missing.
    ///
    /// Errors: [`Error::Config`] for a URL the driver cannot read or a bad
    /// `KINESIS_DB_POOL_SIZE`; [`Error::Store`] when no server answers or the
    /// collection cannot be created.
    pub async fn connect(url: &str) -> Result<MongoStore> {
        let url = MongoUrl::parse(url)?;
        let mut options = ClientOptions::parse(&url.driver_url).await.map_err(|e| {
            Error::Config(format!(
                "KINESIS_DB_CONNECTION: cannot read {}: {}",
                url.display,
                url.scrub(&e.to_string())
            ))
        })?;
        if options.max_pool_size.is_none() {
            match std::env::var(POOL_SIZE_ENV) {
                Ok(v) => options.max_pool_size = Some(url::parse_pool_size(&v, POOL_SIZE_ENV)?),
                Err(std::env::VarError::NotPresent) => {}
                Err(std::env::VarError::NotUnicode(_)) => {
                    return Err(Error::Config(format!("{POOL_SIZE_ENV} is not valid UTF-8")))
                }
            }
        }
        options.server_selection_timeout.get_or_insert(SERVER_SELECTION_TIMEOUT);
        options.connect_timeout.get_or_insert(SERVER_SELECTION_TIMEOUT);
        options.app_name.get_or_insert_with(|| "kinesis".to_owned());
        let write_concern = options.write_concern.take().unwrap_or_else(|| {
            WriteConcern::builder().w(Acknowledgment::Majority).journal(true).build()
        });
        let database_name =
            options.default_database.clone().unwrap_or_else(|| DEFAULT_DATABASE.to_owned());
        let client = Client::with_options(options).map_err(|e| {
            Error::Config(format!(
                "KINESIS_DB_CONNECTION: cannot use {}: {}",
                url.display,
                url.scrub(&e.to_string())
            ))
        })?;
        let database = client.database(&database_name);
        let startup = |what: &str, e: &dyn std::fmt::Display| -> Error {
            StoreError::Backend(format!(
                "mongodb {}: {what}: {}",
                url.display,
                url.scrub(&e.to_string())
            ))
            .into()
        };

        let prepare = async {
            database
                .run_command(doc! { "ping": 1 })
                .await
                .map_err(|e| startup("cannot connect", &e))?;
            let names = database
                .list_collection_names()
                .await
                .map_err(|e| startup("cannot list collections", &e))?;
            if !names.iter().any(|n| n == &url.collection) {
                match database.create_collection(&url.collection).await {
                    Ok(()) => {}
                    Err(e) if command_code(&e) == Some(NAMESPACE_EXISTS) => {}
                    Err(e) => {
                        return Err(startup(
                            &format!("cannot create the collection {}", url.collection),
                            &e,
                        ))
                    }
                }
            }
            Ok(())
        };
        match tokio::time::timeout(OPERATION_TIMEOUT, prepare).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => {
                return Err(startup(
                    "cannot connect",
                    &format!("no answer within {OPERATION_TIMEOUT:?}"),
                ))
            }
        }
        let collection = database.collection_with_options::<Document>(
            &url.collection,
            mongodb::options::CollectionOptions::builder().write_concern(write_concern).build(),
        );
        tracing::info!(url = %url.display, collection = %url.collection, "MongoDB store connected");
        Ok(MongoStore { client, collection, database: database_name, url })
    }

    /// The name of the database records live in.
    pub fn database_name(&self) -> &str {
        &self.database
    }

    /// The name of the collection records live in.
    pub fn collection_name(&self) -> &str {
        self.collection.name()
    }

    /// Closes the client: waits for calls in progress, then ends every
    /// connection. Calls afterwards fail with [`StoreError::Backend`].
    pub async fn close(&self) {
        self.client.clone().shutdown().await;
    }

    async fn load_record(&self, uri: &str) -> StoreResult<Option<Record>> {
        check_uri(uri)?;
        let found = self.run("load", uri, self.collection.find_one(doc! { "_id": uri })).await?;
        found.map(|document| convert::record_from_document(uri, document)).transpose()
    }

    async fn save_record(&self, record: &Record, expected: u64) -> StoreResult<()> {
        let uri = record.uri.as_str();
        check_uri(uri)?;
        let invalid = |reason: String| StoreError::Corrupt { uri: uri.to_owned(), reason };
        if expected.checked_add(1) != Some(record.version) {
            return Err(invalid(format!(
                "refusing to save version {} over expected version {expected}: \
                 a save must write version expected + 1",
                record.version
            )));
        }
        let document = convert::document_from_record(record)?;
        let written = if expected == 0 {
            match tokio::time::timeout(OPERATION_TIMEOUT, self.collection.insert_one(document))
                .await
            {
                Ok(Ok(_)) => true,
                Ok(Err(e)) if write_code(&e) == Some(DUPLICATE_KEY) => false,
                Ok(Err(e)) => return Err(self.failure("save", uri, &e.to_string())),
                Err(_) => return Err(self.timed_out("save", uri)),
            }
        } else {
            let expected_i64 = i64::try_from(expected).unwrap_or(i64::MAX);
            let filter = doc! { "_id": uri, "version": expected_i64 };
            let result =
                self.run("save", uri, self.collection.replace_one(filter, document)).await?;
            result.matched_count == 1
        };
        if written {
            return Ok(());
        }
        let found = self
            .run(
                "save",
                uri,
                self.collection.find_one(doc! { "_id": uri }).projection(doc! { "version": 1 }),
            )
            .await?;
        let found = match found {
            None => None,
            Some(document) => Some(convert::version_of(uri, &document)?),
        };
        Err(StoreError::Conflict { uri: uri.to_owned(), expected, found })
    }

    async fn delete_record(&self, uri: &str) -> StoreResult<bool> {
        check_uri(uri)?;
        let result =
            self.run("delete", uri, self.collection.delete_one(doc! { "_id": uri })).await?;
        Ok(result.deleted_count > 0)
    }

    async fn list_uris(&self, prefix: &str) -> StoreResult<Vec<String>> {
        let mut range = doc! { "$gte": prefix };
        if let Some(end) = successor(prefix) {
            range.insert("$lt", end);
        }
        let filter = doc! { "_id": range };
        let documents: Vec<Document> = self
            .run("list", prefix, async {
                self.collection
                    .find(filter)
                    .projection(doc! { "_id": 1 })
                    .sort(doc! { "_id": 1 })
                    .await?
                    .try_collect()
                    .await
            })
            .await?;
        let mut uris = Vec::with_capacity(documents.len());
        for document in documents {
            match document.get("_id") {
                Some(Bson::String(uri)) if uri.starts_with(prefix) => uris.push(uri.clone()),
                Some(Bson::String(_)) => {}
                // Not a record of this store (an `_id` of another type).
                Some(_) | None => {}
            }
        }
        uris.sort_unstable();
        uris.dedup();
        Ok(uris)
    }

    async fn run<T>(
        &self,
        op: &str,
        key: &str,
        call: impl std::future::IntoFuture<Output = mongodb::error::Result<T>>,
    ) -> StoreResult<T> {
        match tokio::time::timeout(OPERATION_TIMEOUT, call.into_future()).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(self.failure(op, key, &e.to_string())),
            Err(_) => Err(self.timed_out(op, key)),
        }
    }

    fn failure(&self, op: &str, key: &str, cause: &str) -> StoreError {
        let message =
            format!("mongodb {}: {op} {key}: {}", self.url.display, self.url.scrub(cause));
        tracing::warn!(%message, "store operation failed");
        StoreError::Backend(message)
    }

    fn timed_out(&self, op: &str, key: &str) -> StoreError {
        self.failure(
            op,
            key,
            &format!("no answer within {OPERATION_TIMEOUT:?} (the outcome of a save is unknown: reload to find out)"),
        )
    }
}

/// The smallest string greater than every string that starts with `prefix`
/// (`None`: no upper bound). Strings compare by UTF-8 bytes, which is code
/// point order, so bumping the last character that can be bumped is enough.
fn successor(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match last {
            '\u{D7FF}' => Some('\u{E000}'),
            char::MAX => None,
            c => char::from_u32(c as u32 + 1),
        };
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// URIs this store refuses: empty or holding a NUL character.
fn check_uri(uri: &str) -> StoreResult<()> {
    if uri.is_empty() {
        return Err(StoreError::InvalidKey("(empty)".to_owned()));
    }
    if uri.contains('\0') {
        return Err(StoreError::InvalidKey(format!("{uri:?} contains a NUL character")));
    }
    Ok(())
}

/// The server's code of a failed write.
fn write_code(e: &mongodb::error::Error) -> Option<i32> {
    match e.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteError(w)) => Some(w.code),
        ErrorKind::Command(c) => Some(c.code),
        _ => None,
    }
}

/// The server's code of a failed command.
fn command_code(e: &mongodb::error::Error) -> Option<i32> {
    match e.kind.as_ref() {
        ErrorKind::Command(c) => Some(c.code),
        _ => None,
    }
}

impl Store for MongoStore {
    fn backend(&self) -> &'static str {
        "mongodb"
    }

    fn load<'a>(&'a self, uri: &'a str) -> BoxFuture<'a, StoreResult<Option<Record>>> {
        Box::pin(self.load_record(uri))
    }

    fn save<'a>(&'a self, record: &'a Record, expected: u64) -> BoxFuture<'a, StoreResult<()>> {
        Box::pin(self.save_record(record, expected))
    }

    fn delete<'a>(&'a self, uri: &'a str) -> BoxFuture<'a, StoreResult<bool>> {
        Box::pin(self.delete_record(uri))
    }

    fn list<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, StoreResult<Vec<String>>> {
        Box::pin(self.list_uris(prefix))
    }
}

impl std::fmt::Debug for MongoStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MongoStore")
            .field("url", &self.url.display)
            .field("database", &self.database_name())
            .field("collection", &self.collection_name())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::successor;

    #[test]
    fn successor_bounds_exactly_the_strings_with_the_prefix() {
        assert_eq!(successor("/a/b").as_deref(), Some("/a/c"));
        assert_eq!(successor("").as_deref(), None);
        assert_eq!(successor("a\u{D7FF}").as_deref(), Some("a\u{E000}"));
        assert_eq!(successor("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(successor("\u{10FFFF}"), None);
        let prefix = "/root/x";
        let end = successor(prefix).unwrap();
        for s in ["/root/x", "/root/x/", "/root/x\u{10FFFF}", "/root/xyz"] {
            assert!(s >= prefix && s < end.as_str(), "{s}");
        }
        for s in ["/root/w\u{10FFFF}", "/root/y", "/root/", "/root/X"] {
            assert!(!(s >= prefix && s < end.as_str()), "{s}");
        }
    }
}

//! The OpenAPI 3.1 document of a live tree (`kinesis_http::openapi::document`),
//! validated with a real JSON Schema validator against the official OpenAPI
//! 3.1 meta-schemas, and its JSON Schemas checked against what the runtime
//! actually accepts and answers.
//!
//! The meta-schemas in `tests/fixtures/openapi-3.1/` are copied verbatim from
//! the OAI/OpenAPI-Specification repository (`schemas/v3.1/`, commit
//! 1f0334d1), Apache-2.0 licensed: see the README and LICENSE beside them.

mod common;

use std::collections::BTreeSet;

use jsonschema::{Draft, Registry, Validator};
use kinesis::{Component, Container, Precondition, Result};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// A state type without `JsonSchema`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Counter {
    count: u64,
}

impl Component for Counter {}

#[kinesis::handlers]
impl Counter {
    /// Adds `by` to the count.
    ///
    /// Returns the new count.
    pub fn increment(&mut self, by: u64) -> Result<u64> {
        self.count += by;
        Ok(self.count)
    }

    /// The count.
    pub fn total(&self) -> u64 {
        self.count
    }

    /// The count times `factor`, plus `offset`.
    pub fn scaled(&self, factor: u64, offset: Option<u64>) -> u64 {
        self.count * factor + offset.unwrap_or(0)
    }
}

/// A user type deriving `JsonSchema`, used in arguments, replies and state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Book {
    title: String,
    pages: u32,
}

/// An argument type without `JsonSchema`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Note {
    text: String,
}

/// A state type deriving `JsonSchema`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Library {
    books: Vec<Book>,
    notes: u32,
}

impl Component for Library {}

#[kinesis::handlers]
impl Library {
    /// Adds a book, with an optional note; answers the number of books.
    pub fn add_book(&mut self, book: Book, note: Option<Note>) -> usize {
        self.notes += u32::from(note.is_some());
        self.books.push(book);
        self.books.len()
    }

    /// The book called `title`, if any.
    pub fn find(&self, title: String) -> Option<Book> {
        self.books.iter().find(|b| b.title == title).cloned()
    }
}

/// A component without `#[kinesis::handlers]`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Plain {
    value: u32,
}

impl Component for Plain {}

/// A component that keeps itself off the REST surface.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Hidden;

impl Component for Hidden {
    fn exposed(&self) -> bool {
        false
    }
}

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/openapi-3.1");

fn fixture(path: &str) -> Value {
    let text = std::fs::read_to_string(format!("{FIXTURES}/{path}")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The four official meta-schemas, offline.
fn oas_registry() -> Registry<'static> {
    Registry::new()
        .add("https://spec.openapis.org/oas/3.1/schema/2022-10-07", fixture("schema.json"))
        .unwrap()
        .add(
            "https://spec.openapis.org/oas/3.1/schema-base/2022-10-07",
            fixture("schema-base.json"),
        )
        .unwrap()
        .add("https://spec.openapis.org/oas/3.1/dialect/base", fixture("dialect/base.schema.json"))
        .unwrap()
        .add("https://spec.openapis.org/oas/3.1/meta/base", fixture("meta/base.schema.json"))
        .unwrap()
        .prepare()
        .unwrap()
}

/// A validator for the meta-schema `id` (one of the registry's).
fn oas_validator(registry: &Registry<'_>, id: &str) -> Validator {
    jsonschema::options()
        .with_draft(Draft::Draft202012)
        .with_registry(registry)
        .build(&json!({"$ref": id}))
        .unwrap()
}

fn errors(validator: &Validator, instance: &Value) -> Vec<String> {
    validator.iter_errors(instance).map(|e| format!("{} at {}", e, e.instance_path())).collect()
}

/// The document under a base URI, so that the schema at a JSON pointer of it
/// can be used with its `$ref`s to `components/schemas` resolved.
const DOC_URI: &str = "https://kinesis.invalid/openapi.json";

fn schema_validator(registry: &Registry<'_>, pointer: &str) -> Validator {
    jsonschema::options()
        .with_draft(Draft::Draft202012)
        .with_registry(registry)
        .build(&json!({"$ref": format!("{DOC_URI}#{pointer}")}))
        .unwrap_or_else(|e| panic!("schema at {pointer}: {e}"))
}

/// `/root/x` as a JSON pointer segment.
fn seg(path: &str) -> String {
    path.replace('~', "~0").replace('/', "~1")
}

async fn tree() -> Container {
    let root = Container::root().await.unwrap();
    root.add("counter", Counter::default()).await.unwrap();
    root.add("library", Library::default()).await.unwrap();
    root.add("plain", Plain { value: 7 }).await.unwrap();
    root.add("hidden", Hidden).await.unwrap();
    let shop = root.add_container("shop").await.unwrap();
    shop.add("till", Counter::default()).await.unwrap();
    root
}

#[tokio::test]
async fn the_document_is_a_valid_openapi_3_1_document() {
    let root = tree().await;
    let doc = kinesis_http::openapi::document(&root);
    assert_eq!(doc["openapi"], "3.1.0");

    let registry = oas_registry();
    // The structure, and every Schema Object against the OpenAPI dialect.
    for id in [
        "https://spec.openapis.org/oas/3.1/schema/2022-10-07",
        "https://spec.openapis.org/oas/3.1/schema-base/2022-10-07",
    ] {
        let validator = oas_validator(&registry, id);
        let errs = errors(&validator, &doc);
        assert!(errs.is_empty(), "{id}:\n{}", errs.join("\n"));
    }

    // The validator does check: a broken document is refused by each.
    let base = oas_validator(&registry, "https://spec.openapis.org/oas/3.1/schema-base/2022-10-07");
    let mut bad = doc.clone();
    bad["components"]["schemas"]["kinesis.Problem"]["type"] = json!(12);
    assert!(!base.is_valid(&bad), "a Schema Object with `type: 12` must be refused");
    let structure = oas_validator(&registry, "https://spec.openapis.org/oas/3.1/schema/2022-10-07");
    assert!(structure.is_valid(&bad), "only schema-base checks Schema Objects");
    let mut bad = doc.clone();
    bad["components"]["schemas"]["not a name"] = json!({});
    assert!(!structure.is_valid(&bad), "component names are restricted");
    let mut bad = doc.clone();
    bad["paths"]["/root/counter"]["get"]["responses"] = json!({"200": {}});
    assert!(!structure.is_valid(&bad), "a response needs a description");

    // Every shared schema is itself a valid JSON Schema 2020-12.
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for (name, schema) in schemas {
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || ".-_".contains(c)),
            "component name {name:?}"
        );
        if let Err(e) = jsonschema::draft202012::meta::validate(schema) {
            panic!("components/schemas/{name} is not a 2020-12 schema: {e}");
        }
    }

    // Every `$ref` points at something in the document.
    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    assert!(refs.len() > 20);
    for r in refs {
        let pointer = r.strip_prefix('#').unwrap_or_else(|| panic!("external $ref {r}"));
        assert!(doc.pointer(pointer).is_some(), "dangling $ref {r}");
    }

    // operationIds are unique.
    let mut ids = BTreeSet::new();
    for item in doc["paths"].as_object().unwrap().values() {
        for op in item.as_object().unwrap().values() {
            let id = op["operationId"].as_str().unwrap().to_owned();
            assert!(ids.insert(id.clone()), "duplicate operationId {id}");
        }
    }
    root.shutdown().await.unwrap();
}

fn collect_refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("$ref", Value::String(r)) => out.push(r.clone()),
                    _ => collect_refs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

#[tokio::test]
async fn it_describes_every_live_exposed_component_and_method() {
    let root = tree().await;
    let doc = kinesis_http::openapi::document(&root);
    let paths: BTreeSet<&str> =
        doc["paths"].as_object().unwrap().keys().map(String::as_str).collect();
    let methods_of = |path: &str| -> BTreeSet<String> {
        doc["paths"][path]
            .as_object()
            .unwrap_or_else(|| panic!("no path {path}"))
            .keys()
            .cloned()
            .collect()
    };
    let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();

    for uri in
        ["/root", "/root/counter", "/root/library", "/root/plain", "/root/shop", "/root/shop/till"]
    {
        assert_eq!(methods_of(uri), set(&["get", "patch", "put"]), "{uri}");
        assert_eq!(methods_of(&format!("{uri}/_control")), set(&["post"]));
        assert_eq!(methods_of(&format!("{uri}/_watch")), set(&["get"]));
    }
    assert!(paths.contains("/") && paths.contains("/_kinesis/openapi.json"));
    assert!(!paths.iter().any(|p| p.contains("hidden")), "not exposed: not described");
    // Mutating methods take POST; read-only ones GET (and POST).
    assert_eq!(methods_of("/root/counter/increment"), set(&["post"]));
    assert_eq!(methods_of("/root/counter/total"), set(&["get", "post"]));
    assert_eq!(methods_of("/root/shop/till/scaled"), set(&["get", "post"]));
    assert_eq!(methods_of("/root/library/add_book"), set(&["post"]));
    // Batches where there are methods.
    assert_eq!(methods_of("/root/library/_batch"), set(&["post"]));
    assert!(!paths.contains("/root/plain/_batch"));
    // Paths of components, methods and the runtime's routes, nothing else.
    assert_eq!(paths.len(), 2 + 6 * 3 + 3 + 2 + 3 + 3, "{paths:#?}");

    let op = |path: &str, verb: &str| doc["paths"][path][verb].clone();
    let get = op("/root/counter", "get");
    assert_eq!(get["tags"], json!(["/root/counter"]));
    assert!(get["responses"]["200"]["headers"]["ETag"].is_object());
    assert!(get["responses"]["304"].is_object());
    let put = op("/root/counter", "put");
    for status in ["412", "428"] {
        assert_eq!(
            put["responses"][status]["$ref"],
            format!("#/components/responses/Problem{status}")
        );
    }
    assert_eq!(
        doc["components"]["responses"]["Problem412"]["content"]["application/problem+json"]
            ["schema"],
        json!({"$ref": "#/components/schemas/kinesis.Problem"})
    );

    // The method: its doc, its reply, its arguments.
    let increment = op("/root/counter/increment", "post");
    assert_eq!(increment["summary"], "Adds `by` to the count.");
    assert!(increment["description"]
        .as_str()
        .unwrap()
        .contains("fn increment(&mut self, by: u64) -> Result<u64>"));
    assert_eq!(
        increment["responses"]["200"]["content"]["application/json"]["schema"],
        json!({"type": "integer", "format": "uint64", "minimum": 0})
    );
    assert_eq!(increment["requestBody"]["required"], true);
    let scaled = op("/root/counter/scaled", "get");
    let params: Vec<(&str, bool)> = scaled["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].as_str().unwrap(), p["required"].as_bool().unwrap()))
        .collect();
    assert_eq!(params, [("factor", true), ("offset", false)]);
    assert_eq!(op("/root/counter/total", "post")["requestBody"]["required"], false);

    // One state schema per component type, named after it: both counters
    // share one; a state type without `JsonSchema` allows anything.
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let counter_states: Vec<&String> = schemas.keys().filter(|k| k.ends_with("Counter")).collect();
    assert_eq!(counter_states, ["openapi.Counter"], "{:?}", schemas.keys());
    assert!(schemas["openapi.Counter"].get("type").is_none());
    assert_eq!(
        doc["paths"]["/root/shop/till"]["put"]["requestBody"]["content"]["application/json"]
            ["schema"],
        json!({"$ref": "#/components/schemas/openapi.Counter"})
    );
    assert_eq!(schemas["openapi.Library"]["type"], "object");
    assert_eq!(
        schemas["openapi.Library"]["properties"]["books"]["items"],
        json!({"$ref": "#/components/schemas/Book"})
    );
    assert_eq!(schemas["Book"]["required"], json!(["title", "pages"]));
    assert_eq!(
        schemas["openapi.Library.Resource"]["properties"]["data"]["$ref"],
        "#/components/schemas/openapi.Library"
    );
    assert!(schemas.contains_key("kinesis.container.Container"));
    root.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_schemas_accept_what_the_runtime_accepts_and_describe_what_it_answers() {
    let root = tree().await;
    let doc = kinesis_http::openapi::document(&root);
    let registry = Registry::new().add(DOC_URI, doc.clone()).unwrap().prepare().unwrap();
    let library = root.lookup("/root/library").unwrap();

    let body = |path: &str| {
        format!("/paths/{}/post/requestBody/content/application~1json/schema", seg(path))
    };
    let add_book = schema_validator(&registry, &body("/root/library/add_book"));
    let good = [
        json!({"book": {"title": "Dune", "pages": 412}}),
        json!({"book": {"title": "Emma", "pages": 474}, "note": {"text": "a gift"}}),
        json!({"book": {"title": "Ulysses", "pages": 730}, "note": null}),
    ];
    for args in &good {
        assert!(add_book.is_valid(args), "{args}: {:?}", errors(&add_book, args));
        library.call_json("add_book", args.clone(), Precondition::Any).await.unwrap();
    }
    let bad = [
        json!({}),
        json!({"note": {"text": "no book"}}),
        json!({"book": {"title": "Dune", "pages": "many"}}),
        json!({"book": {"title": "Dune"}}),
        json!({"book": {"title": "Dune", "pages": 412}, "colour": "red"}),
        json!([{"title": "Dune", "pages": 412}]),
    ];
    for args in &bad {
        assert!(!add_book.is_valid(args), "the schema accepts {args}");
        let err = library.call_json("add_book", args.clone(), Precondition::Any).await.unwrap_err();
        assert_eq!(err.kind(), kinesis::ErrorKind::Invalid, "the runtime refuses {args}");
    }

    // The state as served validates against the state schema and the
    // resource schema; a wrong state does not.
    let snapshot = library.snapshot_json().unwrap();
    let state = schema_validator(&registry, "/components/schemas/openapi.Library");
    assert!(
        state.is_valid(&snapshot.data.to_value()),
        "{:?}",
        errors(&state, &snapshot.data.to_value())
    );
    assert!(!state.is_valid(&json!({"books": [{"title": 1, "pages": 2}], "notes": 0})));
    let resource = schema_validator(&registry, "/components/schemas/openapi.Library.Resource");
    let served =
        json!({"meta": serde_json::to_value(library.meta()).unwrap(), "data": snapshot.data});
    assert!(resource.is_valid(&served), "{:?}", errors(&resource, &served));
    let put = schema_validator(
        &registry,
        &format!(
            "/paths/{}/put/requestBody/content/application~1json/schema",
            seg("/root/library")
        ),
    );
    assert!(put.is_valid(&snapshot.data.to_value()));
    assert!(!put.is_valid(&json!({"books": "none"})));

    // Replies validate against the 200 schema.
    let reply = |path: &str, verb: &str| {
        schema_validator(
            &registry,
            &format!("/paths/{}/{verb}/responses/200/content/application~1json/schema", seg(path)),
        )
    };
    let found =
        library.call_json("find", json!({"title": "Emma"}), Precondition::Any).await.unwrap();
    let missing =
        library.call_json("find", json!({"title": "?"}), Precondition::Any).await.unwrap();
    let find = reply("/root/library/find", "get");
    assert!(find.is_valid(&found) && find.is_valid(&missing), "{found} {missing}");
    assert!(!find.is_valid(&json!("Emma")));
    let added = reply("/root/library/add_book", "post");
    assert!(added.is_valid(&json!(3)) && !added.is_valid(&json!(-1)));

    // Without `JsonSchema`, anything goes; with no arguments, only `{}`.
    let counter = schema_validator(&registry, "/components/schemas/openapi.Counter");
    assert!(counter.is_valid(&json!({"count": 1})) && counter.is_valid(&json!("x")));
    let total = schema_validator(&registry, &body("/root/counter/total"));
    assert!(total.is_valid(&json!({})) && !total.is_valid(&json!({"by": 1})));

    // A batch names existing methods with their arguments.
    let batch = schema_validator(&registry, &body("/root/counter/_batch"));
    assert!(
        batch.is_valid(&json!([{"method": "increment", "args": {"by": 2}}, {"method": "total"}]))
    );
    assert!(!batch.is_valid(&json!([{"method": "increment", "args": {"by": "two"}}])));
    assert!(!batch.is_valid(&json!([{"method": "nope"}])));

    // Every component's `meta`, as served, validates.
    let meta = schema_validator(&registry, "/components/schemas/kinesis.Meta");
    for c in root.walk() {
        let served = serde_json::to_value(c.meta()).unwrap();
        assert!(meta.is_valid(&served), "{:?}", errors(&meta, &served));
    }
    assert!(!meta.is_valid(&json!({"name": "x"})));
    root.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_server_serves_the_document_of_the_live_tree() {
    let s = common::serve().await;
    let r = s.get("/_kinesis/openapi.json").await;
    assert_eq!(r.status(), 200);
    assert_eq!(common::header(&r, "content-type"), "application/json");
    let before: serde_json::Value = r.json().await.unwrap();
    assert_eq!(before["openapi"], "3.1.0");
    assert!(before["paths"].get("/root/counter").is_none());
    s.counter("counter").await;
    let after: serde_json::Value = s.get("/_kinesis/openapi.json").await.json().await.unwrap();
    assert!(after["paths"]["/root/counter/increment"]["post"].is_object(), "{after}");
}

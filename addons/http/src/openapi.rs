//! The OpenAPI 3.1 document of the live component tree, served at
//! `GET /_kinesis/openapi.json`.
//!
//! [`document`] walks the tree as `GET /` does (the root and every exposed
//! component below it; nothing below a component that is not exposed) and
//! describes, for each component URI:
//!
//! | path | operations |
//! | --- | --- |
//! | `{uri}` | `GET` (`If-None-Match`, 304), `PUT` and `PATCH` (`If-Match`, 412, 428): the resource `{"meta", "data"}` |
//! | `{uri}/{method}` | `POST` for every method (a JSON object of named arguments); `GET` for read-only ones (arguments in the query string) |
//! | `{uri}/_control` | `POST {"op", "after"}` |
//! | `{uri}/_watch` | `GET`, `text/event-stream`, resuming from `Last-Event-ID` or `?since=` |
//! | `{uri}/_batch` | `POST [{"method", "args"}, …]` → `{"results": […]}` (components with methods) |
//!
//! plus `GET /` and `GET /_kinesis/openapi.json`. Each component is one tag
//! (its URI), each operation has an `operationId` unique in the document,
//! and every error response is `application/problem+json` with the schema
//! `kinesis.Problem`.
//!
//! # Schemas
//!
//! The JSON Schemas (draft 2020-12, the dialect of OpenAPI 3.1) come from
//! `#[kinesis::handlers]`: the state of a component, the object of named
//! arguments of each method and each method's reply (see
//! [`kinesis::methods`]). Types that implement `schemars::JsonSchema` are
//! described exactly; any other type, and the state of a component without
//! `#[kinesis::handlers]`, by a schema that allows any value. Shared schemas
//! live in `components/schemas`:
//!
//! - `kinesis.Problem`, `kinesis.Meta`, `kinesis.Stage` and the add-on's
//!   other fixed shapes, all prefixed `kinesis.`;
//! - one state schema per component type, named after the type's path with
//!   `::` written `.` (`app.Counter`), and its resource `app.Counter.Resource`;
//! - the named types those schemas refer to, under their `schemars` names.
//!
//! Every name matches `^[a-zA-Z0-9.\-_]+$` and no two types share one: a
//! clash gets a numeric suffix.
//!
//! Encrypted persisted fields are `"***"` in every response, whatever their
//! schema says.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use kinesis::dynamic::SharedDyn;
use kinesis::methods::MethodInfo;
use kinesis::{Container, DynComponent};
use schemars::generate::SchemaSettings;
use schemars::SchemaGenerator;
use serde_json::{json, Map, Value};

/// Where shared schemas live, as a `$ref` prefix.
const SCHEMAS: &str = "#/components/schemas/";

/// Where the generator's `$ref`s point while the document is built: the
/// definitions get their final names in `components/schemas` at the end, and
/// these references are rewritten then, so that a generated name can never be
/// confused with one of the document's own.
const GENERATED: &str = "#/x-kinesis-generated/";

/// The OpenAPI 3.1.0 document of the components under `root` as they are
/// now: every exposed component with its methods, and the JSON Schemas of
/// their state, arguments and replies (see the [module docs](self)).
///
/// The HTTP add-on serves it at `GET /_kinesis/openapi.json`; it is public so
/// that an application can serve or post-process it elsewhere. Paths are the
/// component URIs as served at the server's root: an application that nests
/// the routes under a prefix sets `servers` accordingly.
///
/// ```no_run
/// # async fn run() -> kinesis::Result<()> {
/// let root = kinesis::Container::root().await?;
/// let mut doc = kinesis_http::openapi::document(&root);
/// doc["servers"] = serde_json::json!([{"url": "/api"}]);
/// assert_eq!(doc["openapi"], "3.1.0");
/// # Ok(()) }
/// ```
pub fn document(root: &Container) -> Value {
    let mut components = Vec::new();
    if let Some(handle) = root.handle() {
        collect(&(Arc::new(handle) as SharedDyn), &mut components);
    }
    let mut doc = Document::new();
    let uris: HashSet<String> = components.iter().map(|c| c.uri().to_owned()).collect();
    for c in &components {
        doc.component(c.as_ref(), &uris);
    }
    doc.finish()
}

/// The exposed components from `c` down, depth first in start order.
fn collect(c: &SharedDyn, out: &mut Vec<SharedDyn>) {
    if !c.exposed() {
        return;
    }
    out.push(c.clone());
    if let Some(container) = c.as_container() {
        for child in container.list() {
            collect(&child, out);
        }
    }
}

/// The document under construction.
struct Document {
    generator: SchemaGenerator,
    paths: Map<String, Value>,
    schemas: Map<String, Value>,
    /// Names taken in `components/schemas`.
    names: BTreeSet<String>,
    /// Type name → (state schema name, resource schema name).
    states: HashMap<&'static str, (String, String)>,
    operation_ids: HashSet<String>,
    tags: Vec<Value>,
    /// Problem statuses used, for `components/responses`.
    problems: BTreeSet<u16>,
}

impl Document {
    fn new() -> Document {
        let generator = SchemaSettings::draft2020_12()
            .with(|s| s.definitions_path = GENERATED[1..GENERATED.len() - 1].to_owned().into())
            .into_generator();
        let mut doc = Document {
            generator,
            paths: Map::new(),
            schemas: Map::new(),
            names: BTreeSet::new(),
            states: HashMap::new(),
            operation_ids: HashSet::new(),
            tags: Vec::new(),
            problems: BTreeSet::new(),
        };
        for (name, schema) in fixed_schemas() {
            doc.names.insert(name.to_owned());
            doc.schemas.insert(name.to_owned(), schema);
        }
        let tree = doc.operation(
            "tree",
            None,
            "The component tree",
            "The root and every exposed component below it, depth first in start order.",
            json!({"200": ok_json("The components.", schema_ref("kinesis.Tree"))}),
        );
        doc.paths.insert("/".to_owned(), json!({ "get": tree }));
        let openapi = doc.operation(
            "openapi",
            None,
            "This document",
            "The OpenAPI 3.1 document of the components as they are now.",
            json!({"200": ok_json("The OpenAPI document.", json!({"type": "object"}))}),
        );
        doc.paths.insert("/_kinesis/openapi.json".to_owned(), json!({ "get": openapi }));
        doc
    }

    /// A name for `components/schemas` from `base`, made safe and unique.
    fn name(&mut self, base: &str) -> String {
        let base = safe_name(base);
        let mut name = base.clone();
        let mut i = 2;
        while self.names.contains(&name) {
            name = format!("{base}{i}");
            i += 1;
        }
        self.names.insert(name.clone());
        name
    }

    /// The names of the state and resource schemas of `c`'s type, written on
    /// first use.
    fn state_schemas(&mut self, c: &dyn DynComponent) -> (String, String) {
        let type_name = c.type_name();
        if let Some(names) = self.states.get(type_name) {
            return names.clone();
        }
        let state = self.name(type_name);
        let resource = self.name(&format!("{state}.Resource"));
        let schema = match c.state_schema(&mut self.generator) {
            Some(schema) => schema.to_value(),
            None => json!({
                "description": format!(
                    "The state of `{type_name}`. Its type does not implement \
                     `schemars::JsonSchema` (or has no `#[kinesis::handlers]` block), so any \
                     JSON value is shown here."
                )
            }),
        };
        self.schemas.insert(state.clone(), schema);
        self.schemas.insert(
            resource.clone(),
            json!({
                "type": "object",
                "description": format!("A component of type `{type_name}`: what it is and its state."),
                "properties": {
                    "meta": schema_ref("kinesis.Meta"),
                    "data": {
                        "$ref": format!("{SCHEMAS}{state}"),
                        "description": "The state. Encrypted persisted fields are `\"***\"`."
                    }
                },
                "required": ["meta", "data"]
            }),
        );
        self.states.insert(type_name, (state.clone(), resource.clone()));
        (state, resource)
    }

    /// An operation object; `tag` is the component URI, if any.
    fn operation(
        &mut self,
        id: &str,
        tag: Option<&str>,
        summary: &str,
        description: &str,
        responses: Value,
    ) -> Value {
        let mut op_id = id.to_owned();
        let mut i = 2;
        while !self.operation_ids.insert(op_id.clone()) {
            op_id = format!("{id}.{i}");
            i += 1;
        }
        let mut op = json!({
            "operationId": op_id,
            "summary": summary,
            "responses": responses,
        });
        if !description.is_empty() {
            op["description"] = Value::from(description);
        }
        if let Some(tag) = tag {
            op["tags"] = json!([tag]);
        }
        op
    }

    /// Adds `responses` for the problem `statuses` to `op`.
    fn problems(&mut self, op: &mut Value, statuses: &[u16]) {
        for status in statuses {
            self.problems.insert(*status);
            op["responses"][status.to_string()] =
                json!({"$ref": format!("#/components/responses/Problem{status}")});
        }
    }

    /// Every path of one component. Paths that are component URIs belong to
    /// the component: a method or `_watch` shadowed by a child of the same
    /// name is not reachable, so not described.
    fn component(&mut self, c: &dyn DynComponent, uris: &HashSet<String>) {
        let uri = c.uri().to_owned();
        let base_id = operation_base(&uri);
        let (state, resource) = self.state_schemas(c);
        let type_name = c.type_name();
        self.tags.push(json!({"name": uri, "description": format!("`{type_name}`")}));
        let resource_ok = |what: &str| {
            let mut r = ok_json(what, schema_ref(&resource));
            r["headers"]["ETag"] = json!({"$ref": "#/components/headers/ETag"});
            r
        };

        let mut get = self.operation(
            &format!("{base_id}.get"),
            Some(&uri),
            &format!("Read {uri}"),
            "The component's meta data and state, with its ETag.",
            json!({
                "200": resource_ok("The component."),
                "304": {
                    "description": "The ETag matches `If-None-Match`: unchanged.",
                    "headers": {
                        "ETag": {"$ref": "#/components/headers/ETag"},
                        "Trace-ID": {"$ref": "#/components/headers/Trace-ID"}
                    }
                }
            }),
        );
        get["parameters"] = json!([{"$ref": "#/components/parameters/If-None-Match"}]);
        self.problems(&mut get, &[400, 404]);

        let write_errors = [400, 404, 409, 412, 413, 415, 422, 428, 500, 503, 504];
        let mut put = self.operation(
            &format!("{base_id}.replace"),
            Some(&uri),
            &format!("Replace the state of {uri}"),
            "Replaces `data` with the body, if `If-Match` holds the current ETag (or `*`).",
            json!({"200": resource_ok("The component after the write.")}),
        );
        put["parameters"] = json!([{"$ref": "#/components/parameters/If-Match"}]);
        put["requestBody"] = json!({
            "required": true,
            "content": {"application/json": {"schema": schema_ref(&state)}}
        });
        self.problems(&mut put, &write_errors);

        let mut patch = self.operation(
            &format!("{base_id}.patch"),
            Some(&uri),
            &format!("Patch the state of {uri}"),
            "Applies a JSON merge patch (RFC 7396) to `data`, if `If-Match` holds the current \
             ETag (or `*`). The result must fit the state's type.",
            json!({"200": resource_ok("The component after the write.")}),
        );
        patch["parameters"] = json!([{"$ref": "#/components/parameters/If-Match"}]);
        let merge_patch = json!({
            "description": "An RFC 7396 merge patch: members set to `null` are removed, \
                            objects are merged, anything else replaces."
        });
        patch["requestBody"] = json!({
            "required": true,
            "content": {
                "application/merge-patch+json": {"schema": merge_patch},
                "application/json": {"schema": merge_patch}
            }
        });
        self.problems(&mut patch, &write_errors);
        self.paths.insert(uri.clone(), json!({"get": get, "put": put, "patch": patch}));

        let methods = c.methods();
        for m in methods {
            let path = format!("{uri}/{}", m.name);
            if uris.contains(&path) {
                continue;
            }
            let item = self.method(&uri, &base_id, m);
            self.paths.insert(path, item);
        }

        let control_path = format!("{uri}/_control");
        if !uris.contains(&control_path) {
            let mut control = self.operation(
                &format!("{base_id}._control"),
                Some(&uri),
                &format!("Control {uri}"),
                "Sends a control message and answers once it was carried out.",
                json!({"200": ok_json("Done.", schema_ref("kinesis.ControlDone"))}),
            );
            control["requestBody"] = json!({
                "required": true,
                "content": {"application/json": {"schema": schema_ref("kinesis.Control")}}
            });
            self.problems(&mut control, &[400, 404, 409, 413, 415, 422, 500, 503, 504]);
            self.paths.insert(control_path, json!({"post": control}));
        }

        let watch_path = format!("{uri}/_watch");
        if !uris.contains(&watch_path) {
            let mut watch = self.operation(
                &format!("{base_id}._watch"),
                Some(&uri),
                &format!("Watch {uri}"),
                "Server-sent events: a `snapshot` event (the state when the watch began), then \
                 one event per change, named after its type; `updated` events carry `id` = the \
                 new version. With `Last-Event-ID` or `since`, the changes after that version \
                 are replayed first; a version older than the history starts with a \
                 `snapshot`. A watcher that falls behind gets `lagged` with `{\"missed\": n}`.",
                json!({"200": {
                    "description": "The event stream.",
                    "headers": {"Trace-ID": {"$ref": "#/components/headers/Trace-ID"}},
                    "content": {"text/event-stream": {"schema": {"type": "string"}}}
                }}),
            );
            watch["parameters"] = json!([
                {"$ref": "#/components/parameters/Last-Event-ID"},
                {"$ref": "#/components/parameters/since"}
            ]);
            self.problems(&mut watch, &[400, 404]);
            self.paths.insert(watch_path, json!({"get": watch}));
        }

        let batch_path = format!("{uri}/_batch");
        if !methods.is_empty() && !uris.contains(&batch_path) {
            let calls: Vec<Value> = methods
                .iter()
                .map(|m| {
                    json!({
                        "type": "object",
                        "properties": {
                            "method": {"const": m.name},
                            "args": (m.args_schema)(&mut self.generator).to_value()
                        },
                        "required": ["method"],
                        "additionalProperties": false
                    })
                })
                .collect();
            let mut batch = self.operation(
                &format!("{base_id}._batch"),
                Some(&uri),
                &format!("Call several methods of {uri} at once"),
                "Runs the calls in order in one mailbox turn, all or nothing, honouring \
                 `If-Match`: if one fails, the state is left as it was and the problem names \
                 the failing call.",
                json!({"200": ok_json(
                    "Every call succeeded; their replies, in order.",
                    schema_ref("kinesis.BatchResults"),
                )}),
            );
            batch["parameters"] = json!([{"$ref": "#/components/parameters/If-Match-optional"}]);
            batch["requestBody"] = json!({
                "required": true,
                "content": {"application/json": {"schema": {
                    "type": "array",
                    "items": {"oneOf": calls}
                }}}
            });
            self.problems(&mut batch, &[400, 404, 409, 412, 413, 415, 422, 500, 503, 504]);
            self.paths.insert(batch_path, json!({"post": batch}));
        }
    }

    /// The path item of `POST {uri}/{method}` and, for a read-only method,
    /// `GET {uri}/{method}`.
    fn method(&mut self, uri: &str, base_id: &str, m: &MethodInfo) -> Value {
        let args = (m.args_schema)(&mut self.generator).to_value();
        let reply = (m.reply_schema)(&mut self.generator).to_value();
        let signature = {
            let args: Vec<String> =
                m.args.iter().map(|a| format!("{}: {}", a.name, a.ty)).collect();
            let receiver = if m.mutating { "&mut self" } else { "&self" };
            let args =
                if args.is_empty() { String::new() } else { format!(", {}", args.join(", ")) };
            format!("`fn {}({receiver}{args}) -> {}`", m.name, m.returns)
        };
        let summary = m.doc.lines().next().filter(|l| !l.trim().is_empty()).map_or_else(
            || format!("{} {uri}.{}", if m.mutating { "Call" } else { "Read" }, m.name),
            str::to_owned,
        );
        let how = if m.mutating {
            "Runs through the component's mailbox; with `If-Match`, only if the ETag is current."
        } else {
            "Read-only: runs on the latest snapshot, without entering the mailbox."
        };
        let description = if m.doc.is_empty() {
            format!("{signature}\n\n{how}")
        } else {
            format!("{}\n\n{signature}\n\n{how}", m.doc)
        };
        let responses = json!({"200": ok_json(
            &format!("The reply, `{}` as JSON.", m.returns),
            reply,
        )});
        let has_required = args["required"].as_array().is_some_and(|r| !r.is_empty());

        let mut item = Map::new();
        let mut post = self.operation(
            &format!("{base_id}.call.{}", m.name),
            Some(uri),
            &summary,
            &description,
            responses.clone(),
        );
        post["requestBody"] = json!({
            "required": has_required,
            "description": "The JSON object of named arguments; an empty body is no arguments.",
            "content": {"application/json": {"schema": args}}
        });
        if m.mutating {
            post["parameters"] = json!([{"$ref": "#/components/parameters/If-Match-optional"}]);
            self.problems(&mut post, &[400, 404, 409, 412, 413, 415, 422, 500, 503, 504]);
        } else {
            self.problems(&mut post, &[400, 404, 409, 413, 415, 422, 500, 503, 504]);
        }
        item.insert("post".to_owned(), post);

        if !m.mutating {
            let required: BTreeSet<&str> = args["required"]
                .as_array()
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let parameters: Vec<Value> = m
                .args
                .iter()
                .map(|a| {
                    json!({
                        "name": a.name,
                        "in": "query",
                        "required": required.contains(a.name),
                        "description": format!(
                            "`{}`, as JSON; a value that is not JSON is taken as a string.",
                            a.ty
                        ),
                        "content": {"application/json": {
                            "schema": args["properties"][a.name].clone()
                        }}
                    })
                })
                .collect();
            let mut get = self.operation(
                &format!("{base_id}.read.{}", m.name),
                Some(uri),
                &summary,
                &description,
                responses,
            );
            get["parameters"] = Value::Array(parameters);
            self.problems(&mut get, &[400, 404, 409, 422, 500, 503, 504]);
            item.insert("get".to_owned(), get);
        }
        Value::Object(item)
    }

    /// The document, with the definitions the generator collected.
    fn finish(mut self) -> Value {
        // Definitions of named types, under their `schemars` names unless
        // unsafe or already taken.
        let mut names: HashMap<String, String> = HashMap::new();
        let definitions = self.generator.take_definitions(true);
        for (generated, schema) in definitions {
            let valid = !generated.is_empty() && generated.chars().all(allowed);
            let name = if valid && self.names.insert(generated.clone()) {
                generated.clone()
            } else {
                self.name(&generated)
            };
            names.insert(generated, name.clone());
            self.schemas.insert(name, schema);
        }
        let mut responses = Map::new();
        for status in &self.problems {
            responses.insert(
                format!("Problem{status}"),
                json!({
                    "description": problem_description(*status),
                    "headers": {"Trace-ID": {"$ref": "#/components/headers/Trace-ID"}},
                    "content": {"application/problem+json": {"schema": schema_ref("kinesis.Problem")}}
                }),
            );
        }
        if self.problems.contains(&412) {
            responses["Problem412"]["headers"]["ETag"] =
                json!({"$ref": "#/components/headers/ETag"});
        }
        let mut doc = json!({
            "openapi": "3.1.0",
            "info": {
                "title": "kinesis",
                "version": env!("CARGO_PKG_VERSION"),
                "description": "The components of a kinesis runtime as REST resources, as they \
                                are at the time of the request: routes appear when a \
                                component starts and disappear when it stops."
            },
            "tags": self.tags,
            "paths": self.paths,
            "components": {
                "schemas": self.schemas,
                "responses": responses,
                "parameters": parameters(),
                "headers": {
                    "ETag": {
                        "description": "The component's current ETag (a quoted string).",
                        "schema": {"type": "string"}
                    },
                    "Trace-ID": {
                        "description": "The request's trace id: from `traceparent`, `TraceID` \
                                        or `Trace-ID`, else a new one.",
                        "schema": {"type": "string"}
                    }
                }
            }
        });
        resolve_refs(&mut doc, &names);
        doc
    }
}

/// The add-on's fixed schemas.
fn fixed_schemas() -> Vec<(&'static str, Value)> {
    let stages = [
        "Submitted",
        "Preinitializing",
        "Preinitialized",
        "Initializing",
        "Initialized",
        "Starting",
        "Started",
        "Restarting",
        "Stopping",
        "Stopped",
        "TearingDown",
        "TornDown",
        "Aborting",
    ];
    vec![
        (
            "kinesis.Problem",
            json!({
                "type": "object",
                "description": "An error (RFC 9457).",
                "properties": {
                    "type": {"type": "string", "description": "`urn:kinesis:problem:{slug}`"},
                    "title": {"type": "string"},
                    "status": {"type": "integer", "minimum": 100, "maximum": 599},
                    "detail": {"type": "string"},
                    "trace_id": {"type": "string"},
                    "current_etag": {
                        "type": "string",
                        "description": "The current ETag, on 412 Precondition Failed."
                    }
                },
                "required": ["type", "title", "status"]
            }),
        ),
        ("kinesis.Stage", json!({"type": "string", "enum": stages})),
        (
            "kinesis.State",
            json!({
                "type": "string",
                "enum": ["Active", "Inactive"],
                "description": "`Active` in `Initialized`, `Starting` and `Started`."
            }),
        ),
        (
            "kinesis.Method",
            json!({
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "mutating": {"type": "boolean"},
                    "args": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "name": {"type": "string"},
                                "type": {"type": "string"}
                            },
                            "required": ["name", "type"]
                        }
                    },
                    "returns": {"type": "string"},
                    "doc": {"type": "string"}
                },
                "required": ["name", "mutating", "args", "returns", "doc"]
            }),
        ),
        (
            "kinesis.Meta",
            json!({
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "uri": {"type": "string"},
                    "type": {"type": "string", "description": "The Rust type."},
                    "stage": schema_ref("kinesis.Stage"),
                    "state": schema_ref("kinesis.State"),
                    "etag": {"type": "string"},
                    "version": {"type": "integer", "minimum": 0},
                    "methods": {"type": "array", "items": schema_ref("kinesis.Method")}
                },
                "required": ["name", "uri", "type", "stage", "state", "etag", "version", "methods"]
            }),
        ),
        (
            "kinesis.Tree",
            json!({
                "type": "object",
                "properties": {
                    "components": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "uri": {"type": "string"},
                                "type": {"type": "string"},
                                "stage": schema_ref("kinesis.Stage"),
                                "state": schema_ref("kinesis.State"),
                                "etag": {"type": "string"},
                                "version": {"type": "integer", "minimum": 0},
                                "restarts": {"type": "integer", "minimum": 0}
                            },
                            "required": ["uri", "type", "stage", "state", "etag", "version", "restarts"]
                        }
                    }
                },
                "required": ["components"]
            }),
        ),
        (
            "kinesis.Control",
            json!({
                "type": "object",
                "properties": {
                    "op": {"type": "string", "enum": ["restart", "stop", "persist", "notify"]},
                    "after": {
                        "type": "string",
                        "description": "With `restart`: a delay such as `5s` before the new run."
                    }
                },
                "required": ["op"]
            }),
        ),
        (
            "kinesis.ControlDone",
            json!({
                "type": "object",
                "properties": {
                    "op": {"type": "string"},
                    "uri": {"type": "string"},
                    "stage": schema_ref("kinesis.Stage")
                },
                "required": ["op", "uri", "stage"]
            }),
        ),
        (
            "kinesis.BatchResults",
            json!({
                "type": "object",
                "properties": {
                    "results": {
                        "type": "array",
                        "description": "The reply of each call, in order."
                    }
                },
                "required": ["results"]
            }),
        ),
    ]
}

/// The shared header and query parameters.
fn parameters() -> Value {
    json!({
        "If-Match": {
            "name": "If-Match",
            "in": "header",
            "required": true,
            "description": "The ETag the write is based on, or `*`. Without it: 428; stale: 412.",
            "schema": {"type": "string"}
        },
        "If-Match-optional": {
            "name": "If-Match",
            "in": "header",
            "required": false,
            "description": "Only if the ETag is current (412 otherwise).",
            "schema": {"type": "string"}
        },
        "If-None-Match": {
            "name": "If-None-Match",
            "in": "header",
            "required": false,
            "description": "304 if one of these ETags is current.",
            "schema": {"type": "string"}
        },
        "Last-Event-ID": {
            "name": "Last-Event-ID",
            "in": "header",
            "required": false,
            "description": "Resume after this version.",
            "schema": {"type": "string"}
        },
        "since": {
            "name": "since",
            "in": "query",
            "required": false,
            "description": "Resume after this version.",
            "schema": {"type": "integer", "minimum": 0}
        }
    })
}

/// What a problem status means here.
fn problem_description(status: u16) -> &'static str {
    match status {
        400 => "Bad request: malformed JSON or header.",
        404 => "No such component or method.",
        409 => "The component is not started, or another writer won.",
        412 => "`If-Match` is stale; the body has `current_etag`.",
        413 => "The body is over the limit.",
        415 => "Wrong content type.",
        422 => "Arguments or state that do not fit.",
        428 => "`If-Match` is required.",
        500 => "The handler failed or panicked.",
        503 => "The component is stopping, or the store is unavailable.",
        504 => "The request took longer than the request timeout.",
        _ => "An error.",
    }
}

/// A JSON `200` response.
fn ok_json(description: &str, schema: Value) -> Value {
    json!({
        "description": description,
        "headers": {"Trace-ID": {"$ref": "#/components/headers/Trace-ID"}},
        "content": {"application/json": {"schema": schema}}
    })
}

fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("{SCHEMAS}{name}")})
}

/// A character allowed in a component name of an OpenAPI document.
fn allowed(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')
}

/// `base` as a component name: `::` as `.`, any other character outside
/// `[a-zA-Z0-9._-]` as `_`.
fn safe_name(base: &str) -> String {
    let name: String =
        base.replace("::", ".").chars().map(|c| if allowed(c) { c } else { '_' }).collect();
    if name.is_empty() {
        "_".to_owned()
    } else {
        name
    }
}

/// The prefix of a component's operation ids: its URI with `/` as `.`.
fn operation_base(uri: &str) -> String {
    let base = uri.trim_matches('/').replace('/', ".");
    if base.is_empty() {
        "root".to_owned()
    } else {
        base
    }
}

/// Points the generator's `$ref`s at the definitions' final names.
fn resolve_refs(value: &mut Value, names: &HashMap<String, String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if key == "$ref" {
                    if let Some(name) = v
                        .as_str()
                        .and_then(|r| r.strip_prefix(GENERATED))
                        .and_then(decode_ref_name)
                        .and_then(|name| names.get(&name))
                    {
                        *v = Value::from(format!("{SCHEMAS}{name}"));
                    }
                } else {
                    resolve_refs(v, names);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| resolve_refs(v, names)),
        _ => {}
    }
}

/// A name as written in a `$ref` (JSON pointer in a URI fragment:
/// percent-encoded, `~1` for `/`, `~0` for `~`), decoded.
fn decode_ref_name(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            if let Some(b) = s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    let s = String::from_utf8(out).ok()?;
    Some(s.replace("~1", "/").replace("~0", "~"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_safe() {
        assert_eq!(safe_name("app::Counter"), "app.Counter");
        assert_eq!(safe_name("app::Wrap<app::Inner, u8>"), "app.Wrap_app.Inner__u8_");
        assert_eq!(safe_name(""), "_");
        assert_eq!(operation_base("/root/a/b"), "root.a.b");
    }

    #[test]
    fn generated_refs_point_at_the_final_names() {
        let mut doc = json!({
            "a": {"$ref": "#/x-kinesis-generated/Wrap%3Cu8%3E"},
            "b": [{"$ref": "#/x-kinesis-generated/a~1b"}, {"$ref": "#/components/schemas/a~1b"}],
            "$ref": "#/x-kinesis-generated/Keep"
        });
        let names = HashMap::from([
            ("Wrap<u8>".to_owned(), "Wrap_u8_".to_owned()),
            ("a/b".to_owned(), "a_b".to_owned()),
            ("Keep".to_owned(), "Keep".to_owned()),
        ]);
        resolve_refs(&mut doc, &names);
        assert_eq!(
            doc,
            json!({
                "a": {"$ref": "#/components/schemas/Wrap_u8_"},
                "b": [{"$ref": "#/components/schemas/a_b"}, {"$ref": "#/components/schemas/a~1b"}],
                "$ref": "#/components/schemas/Keep"
            })
        );
    }

    /// A user type whose schema name is one of the document's own names, and
    /// one whose name is not allowed in `components/schemas`.
    #[derive(schemars::JsonSchema)]
    #[schemars(rename = "kinesis.Problem")]
    #[allow(dead_code)]
    struct Clash {
        n: u8,
    }

    #[derive(schemars::JsonSchema)]
    #[schemars(rename = "bad name/with slash")]
    #[allow(dead_code)]
    struct Unsafe {
        s: String,
    }

    #[test]
    fn generated_names_never_replace_the_documents_own() {
        let mut doc = Document::new();
        let clash = doc.generator.subschema_for::<Clash>().to_value();
        let bad = doc.generator.subschema_for::<Unsafe>().to_value();
        doc.paths.insert("/x".to_owned(), json!({"clash": clash, "bad": bad}));
        let doc = doc.finish();
        let schemas = &doc["components"]["schemas"];
        assert_eq!(schemas["kinesis.Problem"]["description"], "An error (RFC 9457).");
        assert_eq!(doc["paths"]["/x"]["clash"]["$ref"], "#/components/schemas/kinesis.Problem2");
        assert_eq!(schemas["kinesis.Problem2"]["properties"]["n"]["type"], "integer");
        assert_eq!(doc["paths"]["/x"]["bad"]["$ref"], "#/components/schemas/bad_name_with_slash");
        assert_eq!(schemas["bad_name_with_slash"]["properties"]["s"]["type"], "string");
        // The fixed schemas' own references are untouched.
        assert_eq!(
            schemas["kinesis.Meta"]["properties"]["stage"]["$ref"],
            "#/components/schemas/kinesis.Stage"
        );
    }
}

//! `#[kinesis::handlers]` against the real runtime: components driven by name
//! with JSON through `DynComponent`, and through the generated typed methods.

mod support;

use std::fmt;
use std::time::Duration;
use support::Gate;

use futures::StreamExt;
use kinesis::methods::{methods_of, ArgInfo};
use kinesis::{
    Component, Container, Context, Error, ErrorKind, JsonChange, JsonSnapshot, Precondition, Result,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// An error type that only implements `Display`.
#[derive(Debug)]
pub struct Rejected(String);

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rejected: {}", self.0)
    }
}

/// The component under test.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Counter {
    count: u64,
    label: String,
    #[serde(skip)]
    gate: Gate,
}

impl Component for Counter {}

#[kinesis::handlers]
impl Counter {
    /// Adds `by` to the count.
    ///
    /// Returns the new count.
    pub async fn increment(&mut self, by: u64) -> Result<u64> {
        self.count += by;
        Ok(self.count)
    }

    /// Sets the label, with an optional suffix; returns it.
    pub fn relabel(&mut self, label: String, suffix: Option<String>) -> String {
        self.label = match suffix {
            Some(s) => format!("{label}-{s}"),
            None => label,
        };
        self.label.clone()
    }

    /// Sets the count to zero and answers the component's URI.
    pub fn reset(&mut self, ctx: &mut Context<Self>) -> String {
        self.count = 0;
        ctx.uri().to_owned()
    }

    /// Changes the count, then fails with an error that is only `Display`.
    pub fn fail_with(&mut self, message: String) -> std::result::Result<(), Rejected> {
        self.count += 1000;
        Err(Rejected(message))
    }

    /// Sets the count if it is at most 100; a `kinesis::Error` keeps its kind.
    pub fn checked_set(&mut self, count: u64) -> std::result::Result<u64, Error> {
        if count > 100 {
            self.count = count;
            return Err(Error::invalid(format!("{count} is over 100")));
        }
        self.count = count;
        Ok(count)
    }

    /// Clears the label; answers nothing.
    pub async fn clear_label(&mut self) {
        tokio::task::yield_now().await;
        self.label.clear();
    }

    /// Holds the mailbox until the test releases the gate.
    pub async fn hold(&mut self) {
        self.gate.hold().await;
    }

    /// The count.
    pub fn total(&self) -> u64 {
        self.count
    }

    /// The count times `factor`, computed asynchronously.
    pub async fn scaled(&self, factor: u64) -> Result<u64> {
        tokio::task::yield_now().await;
        self.count.checked_mul(factor).ok_or_else(|| Error::invalid("overflow"))
    }

    /// The label, or `fallback` when it is empty; no label and no fallback is an error.
    pub fn label_or(&self, fallback: Option<String>) -> std::result::Result<String, Rejected> {
        match (self.label.is_empty(), fallback) {
            (false, _) => Ok(self.label.clone()),
            (true, Some(f)) => Ok(f),
            (true, None) => Err(Rejected("no label".into())),
        }
    }

    /// Parses a number: `serde_json::Error` is `Into<kinesis::Error>` (`Invalid`).
    pub fn parse(&self, text: String) -> std::result::Result<u64, serde_json::Error> {
        serde_json::from_str(&text)
    }

    /// Not `pub`: not exposed.
    #[allow(dead_code)]
    fn private_helper(&self) -> u64 {
        self.count
    }

    /// `pub(crate)`: not exposed either.
    #[allow(dead_code)]
    pub(crate) fn crate_helper(&self) -> u64 {
        self.count
    }
}

/// Calls its own method table from inside the mailbox, to test `call_mut`
/// directly (a `Context` exists only there).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Echo {
    bumps: u64,
}

impl Component for Echo {}

#[kinesis::handlers]
impl Echo {
    /// Adds `n`.
    pub fn bump(&mut self, n: u64) -> u64 {
        self.bumps += n;
        self.bumps
    }

    /// The bumps so far.
    pub fn peek(&self) -> u64 {
        self.bumps
    }

    /// Calls `method` of this component's table through `call_mut`.
    pub async fn via_table(
        &mut self,
        method: String,
        args: Value,
        ctx: &mut Context<Self>,
    ) -> Result<Value> {
        let table = methods_of::<Echo>().expect("Echo has a method table");
        (table.call_mut)(self, ctx, &method, args).await
    }
}

/// An argument type that derives `JsonSchema`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Book {
    title: String,
    pages: u32,
}

/// An argument type that does not implement `JsonSchema`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Note {
    text: String,
}

/// A component whose state type derives `JsonSchema`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Shelf {
    books: Vec<Book>,
}

impl Component for Shelf {}

#[kinesis::handlers]
impl Shelf {
    /// Shelves a book, with an optional note; answers the books.
    pub fn shelve(&mut self, book: Book, note: Option<Note>, copies: Option<u8>) -> Vec<Book> {
        let _ = (note, copies);
        self.books.push(book);
        self.books.clone()
    }

    /// Any note; its type has no schema.
    pub fn note(&self, about: Note) -> Note {
        about
    }
}

/// A component with an empty `#[kinesis::handlers]` block: it registers the
/// state schema and no method.
#[derive(Clone, Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Gauge {
    level: i32,
}

impl Component for Gauge {}

#[kinesis::handlers]
impl Gauge {}

/// A component without `#[kinesis::handlers]`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Plain {
    value: u32,
}

impl Component for Plain {}

fn invalid(result: Result<impl fmt::Debug>) -> String {
    match result {
        Err(Error::Invalid(message)) => message,
        other => panic!("expected Error::Invalid, got {other:?}"),
    }
}

/// Fails the test if `f` does not finish within 5 s.
async fn promptly<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(5), f).await.expect("waited for the mailbox")
}

async fn next_update(
    sub: &mut (impl futures::Stream<Item = std::result::Result<JsonChange, kinesis::Lagged>> + Unpin),
) -> JsonChange {
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match sub.next().await {
                Some(Ok(change @ JsonChange::Updated { .. })) => return change,
                Some(_) => continue,
                None => panic!("subscription ended"),
            }
        }
    })
    .await
    .expect("an update within 5 s")
}

#[tokio::test]
async fn a_component_with_the_macro_is_driven_entirely_through_dyn_component() {
    let root = Container::root().await.unwrap();
    root.add("counter", Counter::default()).await.unwrap();
    let d = root.lookup("/root/counter").unwrap();

    let start = d.snapshot_json().unwrap();
    assert_eq!(start.data, json!({"count": 0, "label": ""}));

    // A mutating call with JSON arguments goes through the mailbox.
    let mut sub = d.subscribe_json();
    assert_eq!(
        d.call_json("increment", json!({"by": 3}), Precondition::Any).await.unwrap(),
        json!(3)
    );
    let after_inc = d.snapshot_json().unwrap();
    assert_eq!(after_inc.data, json!({"count": 3, "label": ""}));
    assert_eq!(after_inc.version, start.version + 1);
    assert_ne!(after_inc.etag, start.etag);

    // Subscribers get the JSON change.
    match next_update(&mut sub).await {
        JsonChange::Updated { prev_version, version, etag, data } => {
            assert_eq!(prev_version, start.version);
            assert_eq!(version, after_inc.version);
            assert_eq!(etag, after_inc.etag);
            assert_eq!(data, json!({"count": 3, "label": ""}));
        }
        other => panic!("expected an update, got {other:?}"),
    }

    // Read-only calls, sync and async.
    assert_eq!(d.call_json("total", json!({}), Precondition::Any).await.unwrap(), json!(3));
    assert_eq!(
        d.call_json("scaled", json!({"factor": 5}), Precondition::Any).await.unwrap(),
        json!(15)
    );
    assert_eq!(d.snapshot_json().unwrap(), after_inc, "read-only calls change nothing");

    // Replace with the right ETag, then with the stale one.
    let replaced =
        d.replace_json(json!({"count": 10, "label": "ten"}), after_inc.etag.into()).await.unwrap();
    assert_eq!(replaced.data, json!({"count": 10, "label": "ten"}));
    assert_eq!(replaced.version, after_inc.version + 1);
    assert_eq!(d.snapshot_json().unwrap(), replaced);
    let err = d
        .replace_json(json!({"count": 11, "label": "eleven"}), after_inc.etag.into())
        .await
        .unwrap_err();
    assert_eq!(err, Error::Conflict { current: replaced.etag });
    assert_eq!(d.snapshot_json().unwrap(), replaced);

    // Merge patch with the right ETag, then with the stale one.
    let patched =
        d.merge_patch_json(json!({"label": "patched"}), replaced.etag.into()).await.unwrap();
    assert_eq!(patched.data, json!({"count": 10, "label": "patched"}));
    assert_eq!(patched.version, replaced.version + 1);
    let err =
        d.merge_patch_json(json!({"label": "stale"}), replaced.etag.into()).await.unwrap_err();
    assert_eq!(err, Error::Conflict { current: patched.etag });
    assert_eq!(d.snapshot_json().unwrap(), patched);

    // A mutating call honours If-Match too.
    let err = d.call_json("increment", json!({"by": 1}), replaced.etag.into()).await.unwrap_err();
    assert_eq!(err, Error::Conflict { current: patched.etag });
    assert_eq!(d.snapshot_json().unwrap(), patched);
    assert_eq!(
        d.call_json("increment", json!({"by": 1}), patched.etag.into()).await.unwrap(),
        json!(11)
    );

    // The context reaches methods that take it.
    assert_eq!(
        d.call_json("reset", json!(null), Precondition::Any).await.unwrap(),
        json!("/root/counter")
    );
    assert_eq!(d.snapshot_json().unwrap().data.to_value()["count"], json!(0));
    root.shutdown().await.unwrap();
}

#[tokio::test]
async fn bad_calls_and_invalid_patches_give_the_right_error_and_change_nothing() {
    let root = Container::root().await.unwrap();
    root.add("counter", Counter { count: 7, label: "seven".into(), ..Counter::default() })
        .await
        .unwrap();
    let d = root.get_dyn("counter").unwrap();
    d.call_json("increment", json!({"by": 1}), Precondition::Any).await.unwrap();
    let before: JsonSnapshot = d.snapshot_json().unwrap();

    let call = |m: &'static str, args: Value| d.call_json(m, args, Precondition::Any);

    // Wrong argument names.
    let msg = invalid(call("increment", json!({"byy": 1})).await);
    assert_eq!(msg, "method `increment` has no argument `byy`; its arguments are `by`");
    let msg = invalid(call("total", json!({"x": 1})).await);
    assert_eq!(msg, "method `total` takes no arguments, got `x`");
    // Wrong argument types.
    let msg = invalid(call("increment", json!({"by": "x"})).await);
    assert_eq!(msg, "argument `by`: invalid type: string \"x\", expected u64");
    let msg = invalid(call("increment", json!({"by": -1})).await);
    assert!(msg.starts_with("argument `by`: invalid value: integer `-1`"), "{msg}");
    let msg = invalid(call("relabel", json!({"label": "a", "suffix": 3})).await);
    assert!(msg.starts_with("argument `suffix`: invalid type: integer `3`"), "{msg}");
    // Missing arguments, and arguments that are not an object.
    let msg = invalid(call("increment", json!({})).await);
    assert_eq!(msg, "missing argument `by` of method `increment`");
    let msg = invalid(call("increment", json!(null)).await);
    assert_eq!(msg, "missing argument `by` of method `increment`");
    let msg = invalid(call("increment", json!([1])).await);
    assert!(msg.contains("must be a JSON object of named arguments, not an array"), "{msg}");
    let msg = invalid(call("total", json!("x")).await);
    assert!(msg.contains("not a string"), "{msg}");

    // Unknown methods, and methods that are not exposed.
    for m in ["nope", "private_helper", "crate_helper", "_control", ""] {
        let err = call(m, json!({})).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{m}: {err}");
    }

    // Handler errors roll back what the method changed.
    let err = call("fail_with", json!({"message": "no"})).await.unwrap_err();
    assert_eq!(err, Error::Handler("rejected: no".into()));
    let err = call("checked_set", json!({"count": 500})).await.unwrap_err();
    assert_eq!(err, Error::Invalid("500 is over 100".into()));
    // Read-only errors: a Display error is a Handler error, an Into<Error> keeps its kind.
    let err = call("parse", json!({"text": "x"})).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid, "{err}");
    assert_eq!(call("parse", json!({"text": "12"})).await.unwrap(), json!(12));
    let err = call("scaled", json!({"factor": u64::MAX})).await.unwrap_err();
    assert_eq!(err, Error::Invalid("overflow".into()));

    // Patches and replacements that make the state invalid.
    let err = d.merge_patch_json(json!({"count": "x"}), Precondition::Any).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid);
    assert!(err.to_string().contains("count"), "names the field: {err}");
    let err = d.merge_patch_json(json!({"count": null}), Precondition::Any).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid);
    let err =
        d.replace_json(json!({"count": -1, "label": "x"}), Precondition::Any).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid);
    assert!(err.to_string().contains("count"), "names the field: {err}");
    let err = d.replace_json(json!("not an object"), Precondition::Any).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid);

    // State, version and ETag are untouched by all of the above.
    assert_eq!(d.snapshot_json().unwrap(), before);
    assert_eq!(before.data, json!({"count": 8, "label": "seven"}));
    root.shutdown().await.unwrap();
}

#[tokio::test]
async fn typed_handle_methods_and_the_json_path_give_the_same_results() {
    let root = Container::root().await.unwrap();
    let typed = root.add("typed", Counter::default()).await.unwrap();
    root.add("json", Counter::default()).await.unwrap();
    let d = root.get_dyn("json").unwrap();
    let call = |m: &'static str, args: Value| d.call_json(m, args, Precondition::Any);

    // A read-only error that is only `Display` is a Handler error on both paths.
    let err = typed.label_or(None).await.unwrap_err();
    assert_eq!(err, Error::Handler("rejected: no label".into()));
    assert_eq!(err, call("label_or", json!({})).await.unwrap_err());

    assert_eq!(
        json!(typed.increment(4).await.unwrap()),
        call("increment", json!({"by": 4})).await.unwrap()
    );
    assert_eq!(
        json!(typed.relabel("a".into(), None).await.unwrap()),
        call("relabel", json!({"label": "a"})).await.unwrap()
    );
    assert_eq!(
        json!(typed.relabel("a".into(), Some("b".into())).await.unwrap()),
        call("relabel", json!({"label": "a", "suffix": "b"})).await.unwrap()
    );
    assert_eq!(json!(typed.total().await.unwrap()), call("total", json!({})).await.unwrap());
    assert_eq!(
        json!(typed.scaled(3).await.unwrap()),
        call("scaled", json!({"factor": 3})).await.unwrap()
    );
    assert_eq!(
        json!(typed.label_or(None).await.unwrap()),
        call("label_or", json!({})).await.unwrap()
    );
    assert_eq!(json!(typed.clear_label().await.unwrap()), json!(null));
    assert_eq!(call("clear_label", json!({})).await.unwrap(), json!(null));
    assert_eq!(
        json!(typed.relabel("a".into(), Some("b".into())).await.unwrap()),
        call("relabel", json!({"label": "a", "suffix": "b"})).await.unwrap()
    );

    // Errors are the same too.
    assert_eq!(
        typed.fail_with("x".into()).await.unwrap_err(),
        call("fail_with", json!({"message": "x"})).await.unwrap_err()
    );
    assert_eq!(
        typed.checked_set(101).await.unwrap_err(),
        call("checked_set", json!({"count": 101})).await.unwrap_err()
    );
    assert_eq!(
        typed.parse("?".into()).await.unwrap_err(),
        call("parse", json!({"text": "?"})).await.unwrap_err()
    );

    // The context: each answers its own URI.
    assert_eq!(typed.reset().await.unwrap(), "/root/typed");
    assert_eq!(call("reset", json!({})).await.unwrap(), json!("/root/json"));

    // Same states, same versions, same ETags.
    let a = typed.snapshot();
    let b = d.snapshot_json().unwrap();
    assert_eq!(b.data, serde_json::to_value(&a.state).unwrap());
    assert_eq!(a.version, b.version);
    assert_eq!(a.etag, b.etag);

    root.shutdown().await.unwrap();
}

#[tokio::test]
async fn read_only_methods_run_on_the_snapshot_without_waiting_for_the_mailbox() {
    let root = Container::root().await.unwrap();
    let c = root.add("c", Counter { count: 2, ..Counter::default() }).await.unwrap();
    let d = root.get_dyn("c").unwrap();
    let version = c.snapshot().version;
    let gate = c.snapshot().state.gate.clone();

    let busy = c.clone();
    let held = tokio::spawn(async move { busy.hold().await });
    gate.entered().await; // the mailbox is inside `hold` now

    assert_eq!(promptly(c.total()).await.unwrap(), 2);
    assert_eq!(promptly(c.scaled(2)).await.unwrap(), 4);
    assert_eq!(
        promptly(d.call_json("total", json!({}), Precondition::Any)).await.unwrap(),
        json!(2)
    );

    // A mutating call queues behind the held message.
    let queued = c.clone();
    let inc = tokio::spawn(async move { queued.increment(1).await });
    support::queued(&c, 1).await;
    assert!(!inc.is_finished(), "a mutating call did not queue behind the mailbox");
    assert!(!held.is_finished());
    gate.release();
    held.await.unwrap().unwrap();
    assert_eq!(inc.await.unwrap().unwrap(), 3);
    assert_eq!(c.snapshot().version, version + 1, "only the increment made a version");
    root.shutdown().await.unwrap();
}

#[tokio::test]
async fn meta_lists_the_pub_methods_with_mutating_flags_arguments_and_docs() {
    let root = Container::root().await.unwrap();
    root.add("counter", Counter::default()).await.unwrap();
    let meta = root.get_dyn("counter").unwrap().meta();
    let names: Vec<_> = meta.methods.iter().map(|m| (m.name, m.mutating)).collect();
    assert_eq!(
        names,
        [
            ("increment", true),
            ("relabel", true),
            ("reset", true),
            ("fail_with", true),
            ("checked_set", true),
            ("clear_label", true),
            ("hold", true),
            ("total", false),
            ("scaled", false),
            ("label_or", false),
            ("parse", false),
        ]
    );
    let by_name = |n: &str| *meta.methods.iter().find(|m| m.name == n).unwrap();
    let increment = by_name("increment");
    assert_eq!(increment.args, &[ArgInfo { name: "by", ty: "u64" }]);
    assert_eq!(increment.returns, "Result<u64>");
    assert_eq!(increment.doc, "Adds `by` to the count.\n\nReturns the new count.");
    assert_eq!(
        by_name("relabel").args,
        &[
            ArgInfo { name: "label", ty: "String" },
            ArgInfo { name: "suffix", ty: "Option<String>" }
        ]
    );
    assert_eq!(by_name("reset").args, &[], "the context is not an argument");
    assert_eq!(by_name("clear_label").returns, "()");
    assert_eq!(by_name("label_or").returns, "std::result::Result<String, Rejected>");

    // The same table is what `methods_of` finds, and it serialises for HTTP.
    assert_eq!(methods_of::<Counter>().unwrap().methods, meta.methods);
    let json = serde_json::to_value(meta.methods).unwrap();
    assert_eq!(json[0]["args"], json!([{"name": "by", "type": "u64"}]));
    root.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_method_table_refuses_calls_through_the_wrong_path() {
    let table = methods_of::<Counter>().unwrap();
    // call_ref needs no runtime: it runs on a plain value.
    let state = Counter { count: 5, ..Counter::default() };
    assert_eq!((table.call_ref)(&state, "total", json!({})).await.unwrap(), json!(5));
    assert_eq!((table.call_ref)(&state, "scaled", json!({"factor": 3})).await.unwrap(), json!(15));
    let msg = invalid((table.call_ref)(&state, "increment", json!({"by": 1})).await);
    assert!(msg.contains("changes the state"), "{msg}");
    let err = (table.call_ref)(&state, "nope", json!({})).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let msg = invalid((table.call_ref)(&7u32, "total", json!({})).await);
    assert!(msg.contains("another component type"), "{msg}");

    // call_mut needs a Context, which exists only in the mailbox.
    let root = Container::root().await.unwrap();
    let echo = root.add("echo", Echo::default()).await.unwrap();
    assert_eq!(echo.via_table("bump".into(), json!({"n": 2})).await.unwrap(), json!(2));
    let msg = invalid(echo.via_table("peek".into(), json!({})).await);
    assert!(msg.contains("read-only"), "{msg}");
    let err = echo.via_table("nope".into(), json!({})).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(echo.peek().await.unwrap(), 2);
    root.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_component_without_the_macro_has_every_operation_but_call_json() {
    let root = Container::root().await.unwrap();
    root.add("plain", Plain { value: 1 }).await.unwrap();
    let d = root.lookup("/root/plain").unwrap();
    assert!(methods_of::<Plain>().is_none());
    assert!(d.meta().methods.is_empty());
    assert!(d.methods().is_empty());

    let start = d.snapshot_json().unwrap();
    assert_eq!(start.data, json!({"value": 1}));
    let mut sub = d.subscribe_json();
    let replaced = d.replace_json(json!({"value": 2}), start.etag.into()).await.unwrap();
    assert_eq!(replaced.data, json!({"value": 2}));
    match next_update(&mut sub).await {
        JsonChange::Updated { data, version, .. } => {
            assert_eq!(data, json!({"value": 2}));
            assert_eq!(version, replaced.version);
        }
        other => panic!("expected an update, got {other:?}"),
    }
    let patched = d.merge_patch_json(json!({"value": 3}), replaced.etag.into()).await.unwrap();
    assert_eq!(patched.data, json!({"value": 3}));
    d.control(kinesis::Control::NotifyPeers).await.unwrap();

    let err = d.call_json("anything", json!({}), Precondition::Any).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(d.snapshot_json().unwrap(), patched);
    root.shutdown().await.unwrap();
}

/// A batch by name as the seed's mixed batches: calls of different methods.
fn batch(calls: &[(&str, Value)]) -> Vec<kinesis::methods::BatchCall> {
    calls
        .iter()
        .map(|(method, args)| kinesis::methods::BatchCall {
            method: (*method).to_owned(),
            args: args.clone(),
        })
        .collect()
}

#[tokio::test]
async fn a_batch_by_name_runs_mixed_calls_in_one_turn_and_reads_its_own_changes() {
    let root = Container::root().await.unwrap();
    let h = root.add("counter", Counter::default()).await.unwrap();
    let d = root.get_dyn("counter").unwrap();
    let before = h.snapshot().version;
    let replies = d
        .batch_json(
            batch(&[
                ("increment", json!({"by": 2})),
                ("relabel", json!({"label": "two"})),
                ("total", json!({})),
                ("increment", json!({"by": 3})),
            ]),
            Precondition::Any,
        )
        .await
        .unwrap();
    assert_eq!(replies, [json!(2), json!("two"), json!(2), json!(5)]);
    let after = h.snapshot();
    assert_eq!((after.state.count, after.state.label.as_str()), (5, "two"));
    assert_eq!(after.version, before + 1, "one commit for the whole batch");
    root.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_failing_call_rolls_the_whole_batch_back_and_is_named() {
    let root = Container::root().await.unwrap();
    let h = root.add("counter", Counter::default()).await.unwrap();
    let d = root.get_dyn("counter").unwrap();
    let before = h.snapshot();
    let err = d
        .batch_json(
            batch(&[
                ("increment", json!({"by": 2})),
                ("relabel", json!({"label": "x"})),
                ("fail_with", json!({"message": "no"})),
                ("increment", json!({"by": 3})),
            ]),
            Precondition::Any,
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Handler);
    assert!(err.to_string().contains("batch call 2 (`fail_with`) failed"), "{err}");
    let after = h.snapshot();
    assert_eq!((after.state.count, after.state.label.as_str()), (0, ""), "rolled back");
    assert_eq!((after.version, after.etag), (before.version, before.etag));

    // An unknown method fails the batch the same way, as NotFound.
    let err = d
        .batch_json(
            batch(&[("increment", json!({"by": 1})), ("nope", json!({}))]),
            Precondition::Any,
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.to_string().contains("batch call 1 (`nope`)"), "{err}");
    assert_eq!(h.snapshot().state.count, 0);

    // A stale precondition refuses the whole batch before any call.
    let stale = before.etag;
    d.batch_json(batch(&[("increment", json!({"by": 1}))]), stale.into()).await.unwrap();
    let err =
        d.batch_json(batch(&[("increment", json!({"by": 1}))]), stale.into()).await.unwrap_err();
    assert_eq!(err, Error::Conflict { current: h.etag() });
    assert_eq!(h.snapshot().state.count, 1);
    root.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_method_table_carries_json_schemas_of_arguments_replies_and_state() {
    use schemars::generate::SchemaSettings;

    let mut generator = SchemaSettings::draft2020_12().into_generator();
    let counter = methods_of::<Counter>().unwrap();
    let method = |n: &str| *counter.method(n).unwrap();

    // One property per argument, required unless `Option<_>`, nothing else.
    let increment = (method("increment").args_schema)(&mut generator).to_value();
    assert_eq!(
        increment,
        json!({
            "type": "object",
            "properties": {"by": {"type": "integer", "format": "uint64", "minimum": 0}},
            "required": ["by"],
            "additionalProperties": false,
        })
    );
    let relabel = (method("relabel").args_schema)(&mut generator).to_value();
    assert_eq!(relabel["required"], json!(["label"]), "the `Option` argument is optional");
    assert_eq!(relabel["properties"]["suffix"], json!({"type": ["string", "null"]}));
    let reset = (method("reset").args_schema)(&mut generator).to_value();
    assert_eq!(
        reset,
        json!({"type": "object", "properties": {}, "additionalProperties": false}),
        "the context is not an argument"
    );
    // The reply: the `T` of `Result<T, E>`, or `null` for `()`.
    assert_eq!(
        (method("increment").reply_schema)(&mut generator).to_value(),
        json!({"type": "integer", "format": "uint64", "minimum": 0})
    );
    assert_eq!(
        (method("fail_with").reply_schema)(&mut generator).to_value(),
        json!({"type": "null"})
    );
    assert_eq!(
        (method("label_or").reply_schema)(&mut generator).to_value(),
        json!({"type": "string"})
    );
    // `Counter` does not implement `JsonSchema`.
    assert!((counter.state_schema)(&mut generator).is_none());

    // A type with `JsonSchema` is referenced and defined once; one without
    // is described by `true`.
    let shelf = methods_of::<Shelf>().unwrap();
    let shelve = (shelf.method("shelve").unwrap().args_schema)(&mut generator).to_value();
    assert_eq!(shelve["properties"]["book"], json!({"$ref": "#/$defs/Book"}));
    assert_eq!(shelve["properties"]["note"], json!(true), "`Note` has no schema");
    assert_eq!(shelve["properties"]["copies"]["type"], json!(["integer", "null"]));
    assert_eq!(shelve["required"], json!(["book"]));
    assert_eq!(
        (shelf.method("shelve").unwrap().reply_schema)(&mut generator).to_value(),
        json!({"type": "array", "items": {"$ref": "#/$defs/Book"}})
    );
    let note = shelf.method("note").unwrap();
    assert_eq!((note.args_schema)(&mut generator).to_value()["required"], json!(["about"]));
    assert_eq!((note.reply_schema)(&mut generator).to_value(), json!(true));
    let state = (shelf.state_schema)(&mut generator).expect("Shelf derives JsonSchema").to_value();
    assert_eq!(state["type"], json!("object"));
    assert_eq!(state["properties"]["books"]["items"], json!({"$ref": "#/$defs/Book"}));
    let definitions = generator.definitions();
    assert_eq!(definitions.keys().collect::<Vec<_>>(), ["Book"]);
    assert_eq!(definitions["Book"]["required"], json!(["title", "pages"]));

    // The schemas stay out of the serialised table.
    let json = serde_json::to_value(shelf.methods).unwrap();
    assert_eq!(
        json[1],
        json!({"name": "note", "mutating": false, "args": [{"name": "about", "type": "Note"}],
               "returns": "Note", "doc": "Any note; its type has no schema."})
    );

    // Through `DynComponent`: an empty block is enough for the state schema;
    // no block, no schema.
    let root = Container::root().await.unwrap();
    root.add("gauge", Gauge::default()).await.unwrap();
    root.add("plain", Plain::default()).await.unwrap();
    let gauge = root.get_dyn("gauge").unwrap();
    assert!(gauge.methods().is_empty());
    let schema = gauge.state_schema(&mut generator).expect("Gauge derives JsonSchema").to_value();
    assert_eq!(schema["properties"]["level"]["type"], json!("integer"));
    assert!(root.get_dyn("plain").unwrap().state_schema(&mut generator).is_none());
    root.shutdown().await.unwrap();
}

//! The generic kinesis service over a real gRPC server on 127.0.0.1, with a
//! tonic client: every call, its errors and their status codes, and a
//! `Watch` that resumes after the server restarts.

mod common;

use common::*;
use futures::StreamExt;
use kinesis_http::security::SecurityConfig;
use kinesis_proto::v1 as pb;
use kinesis_proto::v1::watch_event::Event;
use tonic::Code;

fn kind(status: &tonic::Status) -> &str {
    status.metadata().get("kinesis-error-kind").and_then(|v| v.to_str().ok()).unwrap_or("")
}

#[tokio::test]
async fn every_call_answers_as_over_http() {
    let (runtime, counter) = runtime().await;
    let server = serve(&runtime, loopback(), SecurityConfig::default()).await;
    let mut c = client(addr_of(&server)).await;
    let uri = "/root/counter".to_owned();

    // Tree: the root and the counter, never the add-ons.
    let tree = c.tree(pb::TreeRequest {}).await.unwrap().into_inner();
    let uris: Vec<&str> = tree.components.iter().map(|n| n.uri.as_str()).collect();
    assert_eq!(uris, ["/root", "/root/counter"]);

    // Get, then Get with the current ETag: not modified.
    let got = c.get(pb::GetRequest { uri: uri.clone(), if_none_match: String::new() }).await;
    let resource = got.unwrap().into_inner().resource.unwrap();
    let meta = resource.meta.clone().unwrap();
    assert_eq!(
        (meta.uri.as_str(), meta.stage.as_str(), meta.state.as_str()),
        ("/root/counter", "Started", "Active")
    );
    assert_eq!(resource.data_json, r#"{"count":0}"#);
    assert_eq!(resource.etag, counter.snapshot().etag.to_hex());
    assert!(meta.methods.iter().any(|m| m.name == "increment" && m.mutating));
    assert!(meta.methods.iter().any(|m| m.name == "total" && !m.mutating));
    let again = c
        .get(pb::GetRequest { uri: uri.clone(), if_none_match: resource.etag.clone() })
        .await
        .unwrap()
        .into_inner();
    assert!(again.not_modified && again.resource.is_none());

    // Call: mutating, read-only; an unknown method, component, bad arguments.
    let call = |method: &str, args: &str| pb::CallRequest {
        uri: uri.clone(),
        method: method.into(),
        args_json: args.into(),
        if_match: vec![],
    };
    assert_eq!(c.call(call("increment", r#"{"by": 5}"#)).await.unwrap().into_inner().json, "5");
    assert_eq!(c.call(call("total", "")).await.unwrap().into_inner().json, "5");
    let missing = c.call(call("nope", "")).await.unwrap_err();
    assert_eq!((missing.code(), kind(&missing)), (Code::NotFound, "not-found"));
    assert!(missing.message().contains("has no method `nope`"), "{}", missing.message());
    let nowhere =
        c.call(pb::CallRequest { uri: "/root/nowhere".into(), ..call("total", "") }).await;
    assert_eq!(nowhere.unwrap_err().code(), Code::NotFound);
    let hidden = c.call(pb::CallRequest { uri: "/addons/grpc".into(), ..call("total", "") }).await;
    assert_eq!(hidden.unwrap_err().code(), Code::NotFound, "add-ons are not served");
    let bad = c.call(call("increment", r#"{"by": "five"}"#)).await.unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    let bad = c.call(call("increment", "{not json")).await.unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    let refused = c.call(call("increment", r#"{"by": 0}"#)).await.unwrap_err();
    assert_eq!(
        (refused.code(), refused.message()),
        (Code::InvalidArgument, "invalid: increment by at least 1")
    );

    // Replace with the current ETag; again with the old one: a conflict
    // that carries the current ETag; without an ETag: refused.
    let before = counter.snapshot().etag.to_hex();
    let replaced = c
        .replace(pb::WriteRequest {
            uri: uri.clone(),
            data_json: r#"{"count":100}"#.into(),
            if_match: vec![before.clone()],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(replaced.data_json, r#"{"count":100}"#);
    assert_eq!(replaced.etag, counter.snapshot().etag.to_hex());
    assert_eq!(replaced.version, counter.snapshot().version);
    let stale = c
        .replace(pb::WriteRequest {
            uri: uri.clone(),
            data_json: r#"{"count":1}"#.into(),
            if_match: vec![before.clone()],
        })
        .await
        .unwrap_err();
    assert_eq!((stale.code(), kind(&stale)), (Code::FailedPrecondition, "conflict"));
    let current = stale.metadata().get("kinesis-current-etag").unwrap().to_str().unwrap();
    assert_eq!(current, replaced.etag, "the conflict carries the current ETag");
    let unconditional = c
        .replace(pb::WriteRequest {
            uri: uri.clone(),
            data_json: r#"{"count":1}"#.into(),
            if_match: vec![],
        })
        .await
        .unwrap_err();
    assert_eq!(unconditional.code(), Code::InvalidArgument);
    assert_eq!(counter.snapshot().state.count, 100, "refused writes change nothing");

    // Patch (RFC 7396) with `*`; a patch that does not fit the type.
    let patched = c
        .patch(pb::WriteRequest {
            uri: uri.clone(),
            data_json: r#"{"count":7}"#.into(),
            if_match: vec!["*".into()],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(patched.data_json, r#"{"count":7}"#);
    let unfit = c
        .patch(pb::WriteRequest {
            uri: uri.clone(),
            data_json: r#"{"colour":"red"}"#.into(),
            if_match: vec!["*".into()],
        })
        .await
        .unwrap_err();
    assert_eq!(unfit.code(), Code::InvalidArgument);

    // Batch: in order, all or nothing.
    let batch = |calls: Vec<(&str, &str)>| pb::BatchRequest {
        uri: uri.clone(),
        calls: calls
            .into_iter()
            .map(|(m, a)| pb::BatchCall { method: m.into(), args_json: a.into() })
            .collect(),
        if_match: vec![],
    };
    let done =
        c.batch(batch(vec![("increment", r#"{"by":1}"#), ("increment", r#"{"by":2}"#)])).await;
    assert_eq!(done.unwrap().into_inner().results_json, ["8", "10"]);
    let version = counter.snapshot().version;
    let failed =
        c.batch(batch(vec![("increment", r#"{"by":1}"#), ("increment", r#"{"by":0}"#)])).await;
    assert_eq!(failed.unwrap_err().code(), Code::InvalidArgument);
    assert_eq!(
        (counter.snapshot().state.count, counter.snapshot().version),
        (10, version),
        "rolled back"
    );

    // Watch: a snapshot, then each change.
    let mut watch = c
        .watch(pb::WatchRequest { uri: uri.clone(), since: None, run: String::new() })
        .await
        .unwrap()
        .into_inner();
    let Some(Event::Snapshot(first)) = watch.next().await.unwrap().unwrap().event else {
        panic!("a snapshot first")
    };
    assert_eq!((first.data_json.as_str(), first.version), (r#"{"count":10}"#, version));
    assert_eq!(first.run, kinesis::runtime::run_id());
    counter.increment(1).await.unwrap();
    let Some(Event::Updated(next)) = watch.next().await.unwrap().unwrap().event else {
        panic!("an update")
    };
    assert_eq!(
        (next.prev_version, next.version, next.data_json.as_str()),
        (version, version + 1, r#"{"count":11}"#)
    );

    // Control: persist answers; stop stops the component and says so.
    let control =
        |op: pb::ControlOp| pb::ControlRequest { uri: uri.clone(), op: op as i32, after_ms: 0 };
    c.control(control(pb::ControlOp::Persist)).await.unwrap();
    let unknown = c.control(control(pb::ControlOp::Unspecified)).await.unwrap_err();
    assert_eq!(unknown.code(), Code::InvalidArgument);
    let stopped = c.control(control(pb::ControlOp::Stop)).await.unwrap().into_inner();
    assert_eq!((stopped.uri.as_str(), stopped.stage.as_str()), ("/root/counter", "TornDown"));
    let gone = c.get(pb::GetRequest { uri, if_none_match: String::new() }).await.unwrap_err();
    assert_eq!(gone.code(), Code::NotFound);
    runtime.shutdown().await;
}

/// Versions of `Updated` events until `n` of them arrived.
async fn updates(stream: &mut tonic::Streaming<pb::WatchEvent>, n: usize) -> Vec<u64> {
    let mut out = Vec::new();
    while out.len() < n {
        let event = tokio::time::timeout(std::time::Duration::from_secs(10), stream.next())
            .await
            .expect("an event within 10 s")
            .expect("the stream goes on")
            .expect("no error");
        match event.event {
            Some(Event::Updated(u)) => out.push(u.version),
            Some(Event::Snapshot(s)) => {
                panic!("a resumed watch gets no snapshot, got version {}", s.version)
            }
            _ => {}
        }
    }
    out
}

#[tokio::test]
async fn a_watch_resumes_after_the_server_restarts_without_missing_or_repeating_a_version() {
    let (runtime, counter) = runtime().await;
    let server = serve(&runtime, loopback(), SecurityConfig::default()).await;
    let addr = addr_of(&server);
    let mut c = client(addr).await;
    let uri = "/root/counter".to_owned();
    let mut watch = c
        .watch(pb::WatchRequest { uri: uri.clone(), since: None, run: String::new() })
        .await
        .unwrap()
        .into_inner();
    let Some(Event::Snapshot(first)) = watch.next().await.unwrap().unwrap().event else {
        panic!("a snapshot first")
    };
    for _ in 0..3 {
        counter.increment(1).await.unwrap();
    }
    let seen = updates(&mut watch, 3).await;
    assert_eq!(seen, [first.version + 1, first.version + 2, first.version + 3]);
    let last = *seen.last().unwrap();

    // The server stops: the stream ends. Changes go on meanwhile.
    server.shutdown().await.unwrap();
    let end = tokio::time::timeout(std::time::Duration::from_secs(10), watch.next())
        .await
        .expect("the stream ends");
    assert!(end.as_ref().is_none_or(|e| e.is_err()), "no event after the server stopped: {end:?}");
    for _ in 0..2 {
        counter.increment(1).await.unwrap();
    }

    // The server starts again on the same address; the watch resumes.
    let server =
        serve(&runtime, kinesis_grpc::GrpcAddr::Tcp(addr), SecurityConfig::default()).await;
    assert_eq!(addr_of(&server), addr);
    let mut c = client(addr).await;
    let mut resumed = c
        .watch(pb::WatchRequest { uri, since: Some(last), run: first.run.clone() })
        .await
        .unwrap()
        .into_inner();
    let missed = updates(&mut resumed, 2).await;
    assert_eq!(missed, [last + 1, last + 2], "the versions made while the server was down, once");
    counter.increment(1).await.unwrap();
    assert_eq!(updates(&mut resumed, 1).await, [last + 3], "then the live ones");
    runtime.shutdown().await;
}

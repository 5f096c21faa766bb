//! [`GrpcTransport`]: the REST surface of a runtime over its gRPC add-on
//! (`grpc://host:port`, or `grpc+unix:/path/to.sock`), with tonic.
//!
//! One HTTP/2 connection per client, multiplexing every call; each call
//! carries the bearer token (`authorization` metadata), a W3C
//! `traceparent` and the client's deadline (watches have none). Statuses
//! come back as the [`Error`] the runtime had
//! ([`kinesis_proto::status::error_of`]).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::{BoxStream, StreamExt};
use kinesis::remote::{
    trace, Fetched, RemoteArg, RemoteMeta, RemoteMethod, RemoteNode, RemoteSnapshot, Resume,
    Transport, WatchEvent,
};
use kinesis::{Control, ETag, Error, Precondition, Result, Stage, State};
use kinesis_proto::kinesis_client::KinesisClient;
use kinesis_proto::status::error_of;
use kinesis_proto::v1 as pb;
use serde_json::Value;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::{Channel, Endpoint};

/// Where and how to reach one runtime over gRPC.
#[derive(Debug, Clone)]
pub(crate) struct GrpcTransport {
    /// The runtime as errors name it: `grpc://host:port` or `grpc+unix:/path`.
    pub(crate) name: Arc<str>,
    client: KinesisClient<Channel>,
    /// `Bearer …`, marked sensitive.
    authorization: Option<MetadataValue<Ascii>>,
    /// The deadline of one call (watches have none).
    timeout: Duration,
}

impl GrpcTransport {
    /// A transport for `url`; nothing is dialled until the first call.
    pub(crate) fn new(
        url: &str,
        token: Option<&str>,
        timeout: Duration,
        connect_timeout: Duration,
    ) -> Result<GrpcTransport> {
        let bad = |why: &str| {
            Error::Config(format!("`{url}` is not a gRPC URL of a kinesis runtime: {why}"))
        };
        let (channel, name) = if let Some(path) = url.strip_prefix("grpc+unix:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() || path.contains('\0') {
                return Err(bad("use grpc+unix:/path/to.sock"));
            }
            let path = PathBuf::from(path);
            // The authority is not used on a Unix socket.
            let endpoint =
                Endpoint::from_static("http://localhost").connect_timeout(connect_timeout);
            let socket = path.clone();
            let channel = endpoint.connect_with_connector_lazy(tower::service_fn(move |_| {
                let socket = socket.clone();
                async move {
                    let stream = tokio::net::UnixStream::connect(socket).await?;
                    Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
                }
            }));
            (channel, format!("grpc+unix:{}", path.display()))
        } else {
            let rest = url.strip_prefix("grpc://").ok_or_else(|| bad("use grpc://host:port"))?;
            let authority = rest.trim_end_matches('/');
            if authority.is_empty() || authority.contains('/') {
                return Err(bad("use grpc://host:port, without a path"));
            }
            let endpoint = Endpoint::from_shared(format!("http://{authority}"))
                .map_err(|e| bad(&e.to_string()))?
                .connect_timeout(connect_timeout)
                .tcp_nodelay(true);
            (endpoint.connect_lazy(), format!("grpc://{authority}"))
        };
        let authorization = match token {
            None => None,
            Some(token) => {
                let mut value: MetadataValue<Ascii> =
                    format!("Bearer {}", token.trim()).parse().map_err(|_| {
                        Error::Config("the token has characters metadata cannot carry".into())
                    })?;
                value.set_sensitive(true);
                Some(value)
            }
        };
        Ok(GrpcTransport {
            name: name.into(),
            client: KinesisClient::new(channel),
            authorization,
            timeout,
        })
    }

    /// A call's request: the message, the token, the trace context, and
    /// the deadline unless `watch`.
    fn request<T>(&self, message: T, watch: bool) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        if !watch {
            request.set_timeout(self.timeout);
        }
        let metadata = request.metadata_mut();
        if let Ok(parent) = trace::outgoing().to_string().parse() {
            metadata.insert("traceparent", parent);
        }
        if let Some(auth) = &self.authorization {
            metadata.insert("authorization", auth.clone());
        }
        request
    }

    /// The error of a failed call: the runtime's, or `Unreachable` naming
    /// this runtime when the call never got an answer.
    fn error(&self, status: &tonic::Status) -> Error {
        match error_of(status) {
            Error::Unreachable(why) => Error::Unreachable(format!("{}: {why}", self.name)),
            Error::Timeout(_)
                if status.metadata().get(kinesis_proto::status::ERROR_KIND).is_none() =>
            {
                Error::Timeout(self.timeout)
            }
            other => other,
        }
    }
}

fn json_text(value: &Value) -> String {
    value.to_string()
}

fn parse_json(text: &str) -> Result<Value> {
    if text.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(text)
        .map_err(|e| Error::Invalid(format!("the runtime answered JSON that does not parse: {e}")))
}

fn etag(text: &str) -> Result<ETag> {
    text.parse()
}

fn stage(text: &str) -> Result<Stage> {
    serde_json::from_value(Value::String(text.to_owned()))
        .map_err(|_| Error::Invalid(format!("`{text}` is not a stage")))
}

fn state(text: &str) -> Result<State> {
    serde_json::from_value(Value::String(text.to_owned()))
        .map_err(|_| Error::Invalid(format!("`{text}` is not a state")))
}

fn tags(condition: &Precondition) -> Vec<String> {
    match condition {
        Precondition::Tags(tags) if !tags.is_empty() => tags.iter().map(ETag::to_hex).collect(),
        _ => vec!["*".to_owned()],
    }
}

fn meta(meta: pb::Meta) -> Result<RemoteMeta> {
    Ok(RemoteMeta {
        stage: stage(&meta.stage)?,
        state: state(&meta.state)?,
        etag: etag(&meta.etag)?,
        name: meta.name,
        uri: meta.uri,
        type_name: meta.r#type,
        version: meta.version,
        methods: meta
            .methods
            .into_iter()
            .map(|m| RemoteMethod {
                name: m.name,
                mutating: m.mutating,
                args: m
                    .args
                    .into_iter()
                    .map(|a| RemoteArg { name: a.name, ty: a.r#type })
                    .collect(),
                returns: m.returns,
                doc: m.doc,
            })
            .collect(),
    })
}

fn snapshot(resource: pb::Resource) -> Result<RemoteSnapshot> {
    Ok(RemoteSnapshot {
        etag: etag(&resource.etag)?,
        version: resource.version,
        data: parse_json(&resource.data_json)?,
        meta: resource.meta.map(meta).transpose()?,
    })
}

fn run(run: String) -> Option<String> {
    (!run.is_empty()).then_some(run)
}

fn watch_event(event: pb::WatchEvent) -> Result<WatchEvent> {
    use pb::watch_event::Event;
    Ok(match event.event {
        Some(Event::Snapshot(s)) => WatchEvent::Snapshot {
            version: s.version,
            etag: etag(&s.etag)?,
            data: parse_json(&s.data_json)?,
            run: run(s.run),
        },
        Some(Event::Updated(u)) => WatchEvent::Updated {
            prev_version: u.prev_version,
            version: u.version,
            etag: etag(&u.etag)?,
            data: parse_json(&u.data_json)?,
            run: run(u.run),
        },
        Some(Event::Stage(s)) => WatchEvent::Stage { prev: stage(&s.prev)?, curr: stage(&s.curr)? },
        Some(Event::State(s)) => WatchEvent::State { prev: state(&s.prev)?, curr: state(&s.curr)? },
        Some(Event::Lagged(l)) => WatchEvent::Lagged { missed: l.missed },
        None => return Err(Error::Invalid("the runtime sent an empty watch event".into())),
    })
}

impl Transport for GrpcTransport {
    fn get(&self, uri: &str, if_none_match: Option<ETag>) -> BoxFuture<'static, Result<Fetched>> {
        let request = self.request(
            pb::GetRequest {
                uri: uri.to_owned(),
                if_none_match: if_none_match.map(|t| t.to_hex()).unwrap_or_default(),
            },
            false,
        );
        let this = self.clone();
        Box::pin(async move {
            let reply =
                this.client.clone().get(request).await.map_err(|s| this.error(&s))?.into_inner();
            match reply.resource {
                _ if reply.not_modified => Ok(Fetched::NotModified),
                Some(resource) => Ok(Fetched::Snapshot(Box::new(snapshot(resource)?))),
                None => Err(Error::Invalid("the runtime answered a read without a state".into())),
            }
        })
    }

    fn replace(
        &self,
        uri: &str,
        data: Value,
        if_match: Precondition,
    ) -> BoxFuture<'static, Result<RemoteSnapshot>> {
        let request = self.request(
            pb::WriteRequest {
                uri: uri.to_owned(),
                data_json: json_text(&data),
                if_match: tags(&if_match),
            },
            false,
        );
        let this = self.clone();
        Box::pin(async move {
            let reply = this.client.clone().replace(request).await.map_err(|s| this.error(&s))?;
            snapshot(reply.into_inner())
        })
    }

    fn patch(
        &self,
        uri: &str,
        patch: Value,
        if_match: Precondition,
    ) -> BoxFuture<'static, Result<RemoteSnapshot>> {
        let request = self.request(
            pb::WriteRequest {
                uri: uri.to_owned(),
                data_json: json_text(&patch),
                if_match: tags(&if_match),
            },
            false,
        );
        let this = self.clone();
        Box::pin(async move {
            let reply = this.client.clone().patch(request).await.map_err(|s| this.error(&s))?;
            snapshot(reply.into_inner())
        })
    }

    fn call(
        &self,
        uri: &str,
        method: &str,
        args: Value,
        if_match: Precondition,
    ) -> BoxFuture<'static, Result<Value>> {
        let if_match = match &if_match {
            Precondition::Tags(tags) if !tags.is_empty() => tags.iter().map(ETag::to_hex).collect(),
            _ => Vec::new(),
        };
        let args_json = if args.is_null() { String::new() } else { json_text(&args) };
        let request = self.request(
            pb::CallRequest { uri: uri.to_owned(), method: method.to_owned(), args_json, if_match },
            false,
        );
        let this = self.clone();
        Box::pin(async move {
            let reply = this.client.clone().call(request).await.map_err(|s| this.error(&s))?;
            parse_json(&reply.into_inner().json)
        })
    }

    fn control(&self, uri: &str, control: Control) -> BoxFuture<'static, Result<()>> {
        let (op, after_ms) = match control {
            Control::Shutdown => (pb::ControlOp::Stop, 0),
            Control::Restart => (pb::ControlOp::Restart, 0),
            Control::RestartAfter(after) => (
                pb::ControlOp::Restart,
                u64::try_from(after.as_millis()).unwrap_or(u64::MAX).max(1),
            ),
            Control::Persist => (pb::ControlOp::Persist, 0),
            Control::NotifyPeers => (pb::ControlOp::Notify, 0),
        };
        let request = self
            .request(pb::ControlRequest { uri: uri.to_owned(), op: op as i32, after_ms }, false);
        let this = self.clone();
        Box::pin(async move {
            this.client.clone().control(request).await.map_err(|s| this.error(&s))?;
            Ok(())
        })
    }

    fn tree(&self) -> BoxFuture<'static, Result<Vec<RemoteNode>>> {
        let request = self.request(pb::TreeRequest {}, false);
        let this = self.clone();
        Box::pin(async move {
            let reply = this.client.clone().tree(request).await.map_err(|s| this.error(&s))?;
            reply
                .into_inner()
                .components
                .into_iter()
                .map(|n| {
                    Ok(RemoteNode {
                        stage: stage(&n.stage)?,
                        state: state(&n.state)?,
                        etag: etag(&n.etag)?,
                        uri: n.uri,
                        type_name: n.r#type,
                        version: n.version,
                        restarts: n.restarts,
                    })
                })
                .collect()
        })
    }

    fn watch(&self, uri: &str, since: Option<Resume>) -> BoxStream<'static, Result<WatchEvent>> {
        let (since, run) = match since {
            Some(resume) => (Some(resume.version), resume.run.unwrap_or_default()),
            None => (None, String::new()),
        };
        let request = self.request(pb::WatchRequest { uri: uri.to_owned(), since, run }, true);
        let this = self.clone();
        let opened = async move {
            match this.client.clone().watch(request).await {
                Ok(stream) => {
                    let this = this.clone();
                    stream
                        .into_inner()
                        .map(move |item| match item {
                            Ok(event) => watch_event(event),
                            Err(status) => Err(this.error(&status)),
                        })
                        .boxed()
                }
                Err(status) => {
                    futures::stream::once(futures::future::ready(Err(this.error(&status)))).boxed()
                }
            }
        };
        futures::stream::once(opened).flatten().boxed()
    }
}

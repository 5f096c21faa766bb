//! [`HttpTransport`]: the REST surface of a runtime, over HTTP with reqwest
//! (or hyper on a Unix socket, see [`crate::unix`]).

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use kinesis::remote::{
    trace, Fetched, RemoteMeta, RemoteNode, RemoteSnapshot, Resume, Transport, WatchEvent,
};
use kinesis::{Control, ETag, Error, Precondition, Result};
use reqwest::header::{HeaderValue, CONTENT_TYPE, ETAG, IF_MATCH, IF_NONE_MATCH};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde::Deserialize;
use serde_json::Value;

use crate::errors::{error_of, transport_error};
use crate::unix::UnixSocket;

/// Where and how to reach one runtime.
#[derive(Debug)]
pub(crate) struct HttpTransport {
    /// The base URL, without a trailing slash (`http://localhost/` on a
    /// Unix socket).
    pub(crate) base: url::Url,
    /// The runtime as errors name it: the URL, or `unix:/path`.
    pub(crate) name: Arc<str>,
    pub(crate) http: reqwest::Client,
    /// Set when the runtime is reached on a Unix socket rather than by
    /// `base`.
    pub(crate) unix: Option<Arc<UnixSocket>>,
    /// `Bearer …`, marked sensitive.
    pub(crate) authorization: Option<HeaderValue>,
    /// The deadline of one request (watches have none).
    pub(crate) timeout: Duration,
}

/// `{"meta": …, "data": …}`, the body of `GET {uri}`, `PUT` and `PATCH`.
#[derive(Deserialize)]
struct Resource {
    meta: RemoteMeta,
    data: Value,
}

impl HttpTransport {
    /// The URL of `uri` plus `member`, each segment checked and encoded.
    fn url(&self, uri: &str, member: Option<&str>) -> Result<url::Url> {
        let Some(path) = uri.strip_prefix('/') else {
            return Err(Error::Invalid(format!(
                "`{uri}` is not a component URI: it starts with `/`"
            )));
        };
        let mut url = self.base.clone();
        {
            let mut segments = url
                .path_segments_mut()
                .map_err(|()| Error::Invalid(format!("{} cannot be a base URL", self.base)))?;
            segments.pop_if_empty();
            for segment in path.split('/').filter(|s| !s.is_empty()) {
                kinesis::validate_name(segment)
                    .map_err(|e| Error::Invalid(format!("`{uri}` is not a component URI: {e}")))?;
                segments.push(segment);
            }
            if let Some(member) = member {
                if !member.starts_with('_') {
                    kinesis::validate_name(member)?;
                }
                segments.push(member);
            }
        }
        Ok(url)
    }

    fn request(&self, method: Method, url: url::Url) -> RequestBuilder {
        let mut request =
            self.http.request(method, url).header("traceparent", trace::outgoing().to_string());
        if let Some(auth) = &self.authorization {
            request = request.header(reqwest::header::AUTHORIZATION, auth.clone());
        }
        request
    }

    /// Sends `request` (on `unix` if set) with the request deadline; an
    /// error status becomes the error it stands for.
    async fn send(
        unix: Option<Arc<UnixSocket>>,
        base: &str,
        timeout: Duration,
        request: RequestBuilder,
    ) -> Result<Response> {
        let response = dispatch(unix.as_deref(), base, timeout, request.timeout(timeout)).await?;
        let status = response.status();
        if status.is_success() || status == StatusCode::NOT_MODIFIED {
            return Ok(response);
        }
        let body = response.bytes().await.unwrap_or_default();
        Err(error_of(status, &body))
    }

    /// The body of `response` as `T`.
    async fn body<T: serde::de::DeserializeOwned>(
        base: &str,
        timeout: Duration,
        response: Response,
    ) -> Result<T> {
        let bytes = tokio::time::timeout(timeout, response.bytes())
            .await
            .map_err(|_| Error::Timeout(timeout))?
            .map_err(|e| transport_error(base, &e, timeout))?;
        serde_json::from_slice(&bytes)
            .map_err(|e| Error::Invalid(format!("{base} answered a body that does not fit: {e}")))
    }

    /// A request and its parsed answer, as one future that owns what it
    /// needs.
    fn exchange<T: serde::de::DeserializeOwned + Send + 'static>(
        &self,
        request: Result<RequestBuilder>,
    ) -> BoxFuture<'static, Result<T>> {
        let (unix, base, timeout) = (self.unix.clone(), self.name.clone(), self.timeout);
        Box::pin(async move {
            let response = Self::send(unix, &base, timeout, request?).await?;
            Self::body(&base, timeout, response).await
        })
    }

    /// `PUT` or `PATCH` of `uri`.
    fn write(
        &self,
        method: Method,
        media_type: &'static str,
        uri: &str,
        body: Value,
        if_match: Precondition,
    ) -> BoxFuture<'static, Result<RemoteSnapshot>> {
        let request = self.url(uri, None).map(|url| {
            self.request(method, url)
                .header(CONTENT_TYPE, media_type)
                .header(IF_MATCH, if_match_value(&if_match))
                .body(body.to_string())
        });
        let written = self.exchange::<Resource>(request);
        Box::pin(async move {
            let Resource { meta, data } = written.await?;
            Ok(RemoteSnapshot { etag: meta.etag, version: meta.version, meta: Some(meta), data })
        })
    }
}

/// Sends `request` with reqwest, or on the Unix socket `unix`, bounded by
/// `timeout` (reqwest bounds it itself; on the socket, until the head of the
/// answer arrived).
pub(crate) async fn dispatch(
    unix: Option<&UnixSocket>,
    base: &str,
    timeout: Duration,
    request: RequestBuilder,
) -> Result<Response> {
    match unix {
        None => request.send().await.map_err(|e| transport_error(base, &e, timeout)),
        Some(socket) => {
            let request = request.build().map_err(|e| transport_error(base, &e, timeout))?;
            tokio::time::timeout(timeout, socket.send(request))
                .await
                .map_err(|_| Error::Timeout(timeout))?
        }
    }
}

/// `If-Match`: the tags, or `*` for any state.
fn if_match_value(condition: &Precondition) -> String {
    match condition {
        Precondition::Tags(tags) if !tags.is_empty() => {
            tags.iter().map(ETag::quoted).collect::<Vec<_>>().join(", ")
        }
        _ => "*".to_owned(),
    }
}

/// The body of `POST {uri}/_control`.
fn control_body(control: &Control) -> Value {
    match control {
        Control::Shutdown => serde_json::json!({"op": "stop"}),
        Control::Restart => serde_json::json!({"op": "restart"}),
        Control::RestartAfter(after) => {
            serde_json::json!({"op": "restart", "after": format!("{}ms", after.as_millis())})
        }
        Control::Persist => serde_json::json!({"op": "persist"}),
        Control::NotifyPeers => serde_json::json!({"op": "notify"}),
    }
}

impl Transport for HttpTransport {
    fn get(&self, uri: &str, if_none_match: Option<ETag>) -> BoxFuture<'static, Result<Fetched>> {
        let request = self.url(uri, None).map(|url| {
            let request = self.request(Method::GET, url);
            match if_none_match {
                Some(tag) => request.header(IF_NONE_MATCH, tag.quoted()),
                None => request,
            }
        });
        let (unix, base, timeout) = (self.unix.clone(), self.name.clone(), self.timeout);
        Box::pin(async move {
            let response = Self::send(unix, &base, timeout, request?).await?;
            if response.status() == StatusCode::NOT_MODIFIED {
                return Ok(Fetched::NotModified);
            }
            let header_tag =
                response.headers().get(ETAG).and_then(|v| v.to_str().ok()?.parse().ok());
            let Resource { meta, data } = Self::body(&base, timeout, response).await?;
            let etag = header_tag.unwrap_or(meta.etag);
            Ok(Fetched::Snapshot(Box::new(RemoteSnapshot {
                etag,
                version: meta.version,
                meta: Some(meta),
                data,
            })))
        })
    }

    fn replace(
        &self,
        uri: &str,
        data: Value,
        if_match: Precondition,
    ) -> BoxFuture<'static, Result<RemoteSnapshot>> {
        self.write(Method::PUT, "application/json", uri, data, if_match)
    }

    fn patch(
        &self,
        uri: &str,
        patch: Value,
        if_match: Precondition,
    ) -> BoxFuture<'static, Result<RemoteSnapshot>> {
        self.write(Method::PATCH, "application/merge-patch+json", uri, patch, if_match)
    }

    fn call(
        &self,
        uri: &str,
        method: &str,
        args: Value,
        if_match: Precondition,
    ) -> BoxFuture<'static, Result<Value>> {
        let args = if args.is_null() { Value::Object(Default::default()) } else { args };
        let request = self.url(uri, Some(method)).map(|url| {
            let request = self
                .request(Method::POST, url)
                .header(CONTENT_TYPE, "application/json")
                .body(args.to_string());
            match &if_match {
                Precondition::Tags(tags) if !tags.is_empty() => {
                    request.header(IF_MATCH, if_match_value(&if_match))
                }
                _ => request,
            }
        });
        self.exchange(request)
    }

    fn control(&self, uri: &str, control: Control) -> BoxFuture<'static, Result<()>> {
        let request = self.url(uri, Some("_control")).map(|url| {
            self.request(Method::POST, url)
                .header(CONTENT_TYPE, "application/json")
                .body(control_body(&control).to_string())
        });
        let done = self.exchange::<Value>(request);
        Box::pin(async move { done.await.map(drop) })
    }

    fn tree(&self) -> BoxFuture<'static, Result<Vec<RemoteNode>>> {
        #[derive(Deserialize)]
        struct Tree {
            components: Vec<RemoteNode>,
        }
        let request = Ok(self.request(Method::GET, self.base.clone()));
        let tree = self.exchange::<Tree>(request);
        Box::pin(async move { Ok(tree.await?.components) })
    }

    fn watch(&self, uri: &str, since: Option<Resume>) -> BoxStream<'static, Result<WatchEvent>> {
        let request = self.url(uri, Some("_watch")).map(|url| {
            let mut request = self.request(Method::GET, url).header("accept", "text/event-stream");
            if let Some(resume) = since {
                request = request.header("last-event-id", resume.version.to_string());
                if let Some(run) = resume.run {
                    request = request.header("kinesis-run", run);
                }
            }
            request
        });
        crate::watch::events(self.unix.clone(), self.name.clone(), self.timeout, request)
    }
}

impl HttpTransport {
    /// `GET /_kinesis/{path}` as JSON.
    pub(crate) async fn runtime_resource(&self, path: &str) -> Result<Value> {
        let mut url = self.base.clone();
        {
            let mut segments = url
                .path_segments_mut()
                .map_err(|()| Error::Invalid(format!("{} cannot be a base URL", self.base)))?;
            segments.pop_if_empty().push("_kinesis");
            for segment in path.split('/').filter(|s| !s.is_empty()) {
                kinesis::validate_name(segment)
                    .map_err(|e| Error::Invalid(format!("`{path}`: {e}")))?;
                segments.push(segment);
            }
        }
        self.exchange(Ok(self.request(Method::GET, url))).await
    }
}

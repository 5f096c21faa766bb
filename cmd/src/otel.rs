//! OpenTelemetry (Cargo feature `otel`): the spans of the process (each
//! HTTP request's `http.request` span, the `handle` span of every message
//! it sends into a component, tasks, components' lifecycles) exported over
//! OTLP/HTTP (protobuf) with a batch processor.
//!
//! | variable | accepts | default |
//! | --- | --- | --- |
//! | `OTEL_EXPORTER_OTLP_ENDPOINT` | the collector's base URL, `http://…` or `https://…` (spans go to `{endpoint}/v1/traces`); unset: nothing is exported | unset |
//! | `OTEL_SERVICE_NAME` | the `service.name` of the resource | `kinesis` |
//!
//! The other standard `OTEL_EXPORTER_OTLP_*` variables (headers, timeout,
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) are read by the exporter itself.
//! A request's `trace_id` (from its `traceparent`, `TraceID` or `Trace-ID`)
//! is an attribute of its exported span.

use std::sync::OnceLock;

use kinesis::config::read;
use kinesis::{Error, Result};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing::Subscriber;
use tracing_subscriber::registry::LookupSpan;

/// The variables read here, for `kinesis --help`.
pub const VARIABLES: &[(&str, &str)] = &[
    ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTLP/HTTP collector URL; spans are exported when set (otel)"),
    ("OTEL_SERVICE_NAME", "service.name of exported spans (default kinesis)"),
];

/// The validated OpenTelemetry settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtelConfig {
    /// Where spans go.
    pub endpoint: String,
    /// `service.name`.
    pub service_name: String,
}

impl OtelConfig {
    /// Reads and validates the variables from `lookup`; `None` when
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` is not set.
    ///
    /// ```
    /// use kinesis::config::from_pairs;
    /// use kinesis_cmd::otel::OtelConfig;
    ///
    /// let cfg = OtelConfig::from_lookup(from_pairs(&[
    ///     ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"),
    /// ]))
    /// .unwrap()
    /// .unwrap();
    /// assert_eq!(cfg.service_name, "kinesis");
    /// assert!(OtelConfig::from_lookup(from_pairs(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "collector")])).is_err());
    /// ```
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<Result<String>>,
    ) -> Result<Option<OtelConfig>> {
        let Some(endpoint) = read(&lookup, "OTEL_EXPORTER_OTLP_ENDPOINT")? else { return Ok(None) };
        if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
            return Err(Error::Config(format!(
                "OTEL_EXPORTER_OTLP_ENDPOINT=`{endpoint}` is not valid; use an http:// or https:// URL such as http://127.0.0.1:4318"
            )));
        }
        let service_name =
            read(&lookup, "OTEL_SERVICE_NAME")?.unwrap_or_else(|| "kinesis".to_owned());
        Ok(Some(OtelConfig { endpoint, service_name }))
    }

    /// A tracer provider exporting to the endpoint with a batch processor.
    pub fn provider(&self) -> Result<SdkTracerProvider> {
        use opentelemetry_otlp::WithExportConfig;
        let traces = format!("{}/v1/traces", self.endpoint.trim_end_matches('/'));
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint(traces)
            .build()
            .map_err(|e| Error::Config(format!("OTEL_EXPORTER_OTLP_ENDPOINT: {e}")))?;
        let resource = Resource::builder().with_service_name(self.service_name.clone()).build();
        Ok(SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource)
            .build())
    }
}

/// The provider [`layer`] installed, flushed by [`shutdown`].
static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// The tracing layer that exports spans through `provider`.
pub fn layer_for<S>(
    provider: &SdkTracerProvider,
) -> tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::Tracer>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    tracing_opentelemetry::layer().with_tracer(provider.tracer("kinesis"))
}

/// The exporting layer for `config`, its provider kept for [`shutdown`].
pub fn layer<S>(
    config: &OtelConfig,
) -> Result<tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::Tracer>>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let provider = config.provider()?;
    let layer = layer_for(&provider);
    let _ = PROVIDER.set(provider);
    Ok(layer)
}

/// Exports the spans still buffered and stops the exporter.
pub fn shutdown() {
    if let Some(provider) = PROVIDER.get() {
        if let Err(e) = provider.shutdown() {
            eprintln!("kinesis: exporting the last spans failed: {e}");
        }
    }
}

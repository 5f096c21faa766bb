//! The standard health service (`grpc.health.v1.Health`) follows the
//! runtime's readiness: the checks of `GET /_kinesis/ready`
//! ([`kinesis_http::ops::readiness`]: every component `Started`, the store
//! answers, every component's health hook passes). The overall status
//! (service `""`) and `kinesis.v1.Kinesis` are `SERVING` while they pass,
//! `NOT_SERVING` otherwise and once the server stops. The checks run every
//! [`INTERVAL`]; a `Watch` of the health service hears each change.

use std::time::Duration;

use kinesis::{Container, Result};
use tokio_util::sync::CancellationToken;
use tonic_health::server::HealthReporter;
use tonic_health::ServingStatus;

/// How often readiness is checked.
pub const INTERVAL: Duration = Duration::from_millis(250);

/// Sets the health of `""` and `kinesis.v1.Kinesis` from readiness until
/// `shutdown`, then `NOT_SERVING`.
pub(crate) async fn follow(
    root: Container,
    reporter: HealthReporter,
    shutdown: CancellationToken,
) -> Result<()> {
    let mut last = None;
    loop {
        let ready = kinesis_http::ops::readiness(&root).await;
        let status = if ready.is_ok() { ServingStatus::Serving } else { ServingStatus::NotServing };
        if last != Some(status) {
            if let Err(why) = &ready {
                tracing::debug!(%why, "gRPC health: not serving");
            }
            set(&reporter, status).await;
            last = Some(status);
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(INTERVAL) => {}
        }
    }
    set(&reporter, ServingStatus::NotServing).await;
    Ok(())
}

async fn set(reporter: &HealthReporter, status: ServingStatus) {
    reporter.set_service_status("", status).await;
    reporter.set_service_status(kinesis_proto::SERVICE_NAME, status).await;
}

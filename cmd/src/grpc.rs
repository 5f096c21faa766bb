//! `kinesis serve` with the `grpc` feature: the gRPC add-on when
//! `KINESIS_GRPC_ADDR` names an address.

use kinesis::{Result, Runtime};

/// The target of the runtime's own log lines.
const LOG_TARGET: &str = "kinesis";

/// Starts the gRPC add-on if `config` has an address, and says where it
/// listens; answers its URL (`grpc://…`, `grpc+unix:…`), if started.
pub(crate) async fn start(
    runtime: &Runtime,
    config: &kinesis_grpc::GrpcConfig,
) -> Result<Option<String>> {
    let Some(grpc) = kinesis_grpc::serve(runtime, config).await? else { return Ok(None) };
    let state = grpc.snapshot().state.clone();
    match (state.unix_socket(), state.local_addr()) {
        (Some(path), _) => {
            let path = path.display();
            tracing::info!(target: LOG_TARGET, addr = %format!("unix:{path}"), "gRPC add-on listening; try: KINESIS_URL=grpc+unix:{path} kinesis ps");
            Ok(Some(format!("grpc+unix:{path}")))
        }
        (None, Some(addr)) => {
            tracing::info!(target: LOG_TARGET, %addr, "gRPC add-on listening; try: KINESIS_URL=grpc://{addr} kinesis ps");
            Ok(Some(format!("grpc://{addr}")))
        }
        (None, None) => Ok(None),
    }
}

//! [`GrpcConfig`]: the gRPC add-on's settings from the environment.
//!
//! | variable | accepts | default |
//! | --- | --- | --- |
//! | `KINESIS_GRPC_ADDR` | `off`, a socket address such as `127.0.0.1:50051` or `[::1]:50051`, or `unix:/path/to.sock` for a Unix domain socket (mode 0600, removed on shutdown) | `off`: no gRPC server |
//!
//! Authentication is the HTTP add-on's: the same `KINESIS_AUTH_*`
//! variables, the same tokens and grants (see
//! [`kinesis_http::security`]); without them only a loopback address (or
//! a Unix socket) is served, unless `KINESIS_HTTP_ALLOW_ANONYMOUS=true`.

use std::net::SocketAddr;
use std::path::PathBuf;

use kinesis::config::{env_var, read};
use kinesis::{Error, Result};
use kinesis_http::security::SecurityConfig;

/// The variables the gRPC add-on reads, with what each accepts (for
/// `kinesis --help`). It also reads the `KINESIS_AUTH_*` variables of
/// [`kinesis_http::security::VARIABLES`].
pub const VARIABLES: &[(&str, &str)] = &[(
    "KINESIS_GRPC_ADDR",
    "gRPC server: off, a socket address (127.0.0.1:50051) or unix:/path/to.sock (default off)",
)];

/// Where the gRPC server listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrpcAddr {
    /// A TCP address; port 0 picks a free port.
    Tcp(SocketAddr),
    /// A Unix domain socket file.
    Unix(PathBuf),
}

impl std::fmt::Display for GrpcAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GrpcAddr::Tcp(addr) => write!(f, "{addr}"),
            GrpcAddr::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

impl GrpcAddr {
    /// Parses `127.0.0.1:50051`, `[::1]:50051` or `unix:/path/to.sock`.
    ///
    /// ```
    /// use kinesis_grpc::GrpcAddr;
    /// assert_eq!(GrpcAddr::parse("127.0.0.1:50051").unwrap().to_string(), "127.0.0.1:50051");
    /// assert_eq!(GrpcAddr::parse("unix:/run/k.sock").unwrap().to_string(), "unix:/run/k.sock");
    /// assert!(GrpcAddr::parse("nowhere").unwrap_err().to_string().contains("KINESIS_GRPC_ADDR"));
    /// ```
    pub fn parse(text: &str) -> Result<GrpcAddr> {
        let text = text.trim();
        if let Some(path) = text.strip_prefix("unix:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            // sun_path holds 108 bytes with the terminating NUL.
            if path.is_empty() || path.contains('\0') || path.len() > 107 {
                return Err(Error::Config(format!(
                    "KINESIS_GRPC_ADDR=`{text}` is not a Unix socket path; use unix:/path/to.sock (at most 107 bytes)"
                )));
            }
            return Ok(GrpcAddr::Unix(PathBuf::from(path)));
        }
        text.parse().map(GrpcAddr::Tcp).map_err(|_| {
            Error::Config(format!(
                "KINESIS_GRPC_ADDR=`{text}` is not a socket address; use off, IP:PORT such as 127.0.0.1:50051, or unix:/path/to.sock"
            ))
        })
    }
}

/// The validated settings of the gRPC add-on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GrpcConfig {
    /// Where to listen (`KINESIS_GRPC_ADDR`); `None`: no gRPC server.
    pub addr: Option<GrpcAddr>,
    /// Who may call (`KINESIS_AUTH_*`, shared with the HTTP add-on).
    pub security: SecurityConfig,
}

impl GrpcConfig {
    /// Reads and validates the process environment.
    pub fn from_env() -> Result<GrpcConfig> {
        GrpcConfig::from_lookup(env_var)
    }

    /// Reads and validates variables from `lookup` (for tests).
    ///
    /// ```
    /// use kinesis::config::from_pairs;
    /// use kinesis_grpc::{GrpcAddr, GrpcConfig};
    ///
    /// assert_eq!(GrpcConfig::from_lookup(from_pairs(&[])).unwrap().addr, None);
    /// let on = GrpcConfig::from_lookup(from_pairs(&[("KINESIS_GRPC_ADDR", "127.0.0.1:0")])).unwrap();
    /// assert_eq!(on.addr, Some(GrpcAddr::Tcp("127.0.0.1:0".parse().unwrap())));
    /// ```
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<Result<String>>) -> Result<GrpcConfig> {
        let addr = match read(&lookup, "KINESIS_GRPC_ADDR")? {
            None => None,
            Some(v) if v.trim().eq_ignore_ascii_case("off") || v.trim().is_empty() => None,
            Some(v) => Some(GrpcAddr::parse(&v)?),
        };
        let security = SecurityConfig::from_lookup(&lookup)?;
        Ok(GrpcConfig { addr, security })
    }
}

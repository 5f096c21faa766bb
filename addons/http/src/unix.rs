//! Listening on a Unix domain socket (`KINESIS_HTTP_ADDR=unix:/path/to.sock`).
//!
//! The gRPC add-on binds its socket (`KINESIS_GRPC_ADDR=unix:…`) with the
//! same [`bind`] and [`BoundSocket`], so both behave as described here.
//!
//! * **Binding is safe.** When the path exists and is a socket that nobody
//!   accepts on (a connection to it is refused: the file a killed server left
//!   behind), it is removed and the path bound again. When something accepts
//!   on it, or the path is anything but a socket (a regular file, a
//!   directory, a symbolic link), the start fails with [`Error::Config`] and
//!   nothing is removed.
//! * **Only the owner may connect.** The socket file gets mode `0600` right
//!   after `bind`, before the first connection is accepted. (`bind` creates it
//!   with `0777` minus the umask, so under a umask of `0` another user could
//!   connect in that instant; its connection would still only be accepted
//!   after the mode is set, and then served. Put the socket in a directory
//!   only its owner can enter to rule that out.)
//! * **The file is removed on shutdown**, after the drain, if it is still the
//!   socket this server bound (not one another process put in its place).
//! * **A Unix socket is local**: the posture check (no authentication only on
//!   loopback) does not refuse it, the `Host` check accepts `localhost` as on
//!   loopback, and every request carries `127.0.0.1:0` as its peer address
//!   (`ConnectInfo`). TLS is not served on it: asking for both is a
//!   configuration error.

use std::net::SocketAddr;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use kinesis::{Error, Result};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};

/// The peer address requests over a Unix socket carry.
pub(crate) const UNIX_PEER: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 0);

/// The mode of the socket file: read and write (connect) for its owner only.
pub const SOCKET_MODE: u32 = 0o600;

/// A listener of either kind.
pub(crate) enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

/// A connection of either kind.
pub(crate) enum Accepted {
    Tcp(TcpStream, SocketAddr),
    Unix(UnixStream),
}

impl Listener {
    /// The next connection.
    pub(crate) async fn accept(&self) -> std::io::Result<Accepted> {
        match self {
            Listener::Tcp(l) => l.accept().await.map(|(s, peer)| Accepted::Tcp(s, peer)),
            Listener::Unix(l) => l.accept().await.map(|(s, _)| Accepted::Unix(s)),
        }
    }

    /// Where it listens, for logs.
    pub(crate) fn describe(&self) -> String {
        match self {
            Listener::Tcp(l) => l.local_addr().map(|a| a.to_string()).unwrap_or_default(),
            Listener::Unix(l) => l
                .local_addr()
                .ok()
                .and_then(|a| a.as_pathname().map(|p| format!("unix:{}", p.display())))
                .unwrap_or_default(),
        }
    }
}

/// The socket file a server bound: removed by [`remove`](Self::remove) only
/// while it is still that file (same device and inode).
#[derive(Debug)]
pub struct BoundSocket {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

impl BoundSocket {
    /// The path it was bound at.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the file if it is still the socket bound here.
    pub fn remove(self) {
        match std::fs::symlink_metadata(&self.path) {
            Ok(meta) if meta.dev() == self.dev && meta.ino() == self.ino => {
                if let Err(e) = std::fs::remove_file(&self.path) {
                    tracing::warn!(path = %self.path.display(), error = %e, "cannot remove the Unix socket file");
                }
            }
            Ok(_) => tracing::warn!(
                path = %self.path.display(),
                "the Unix socket file was replaced by another; leaving it"
            ),
            Err(_) => {}
        }
    }
}

/// Binds `path` as described in the [module docs](self): replaces a stale
/// socket, refuses a live one or anything that is not a socket, sets mode
/// `0600`. Errors are [`Error::Config`] naming `variable` (the setting the
/// path came from, `KINESIS_HTTP_ADDR` or `KINESIS_GRPC_ADDR`). Must run
/// inside a tokio runtime.
pub fn bind(path: &Path, variable: &str) -> Result<(UnixListener, BoundSocket)> {
    let shown = path.display();
    let fail = |why: String| Error::Config(format!("{variable}=unix:{shown}: {why}"));
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            match std::os::unix::net::UnixStream::connect(path) {
                Ok(_) => {
                    return Err(fail(
                        "another process is listening on this socket; stop it or choose another path"
                            .into(),
                    ))
                }
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                    tracing::info!(path = %shown, "replacing a stale Unix socket file nobody listens on");
                    std::fs::remove_file(path)
                        .map_err(|e| fail(format!("cannot remove the stale socket file: {e}")))?;
                }
                Err(e) => return Err(fail(format!("cannot tell whether the socket is in use: {e}"))),
            }
        }
        Ok(meta) => {
            return Err(fail(format!(
                "the path exists and is not a socket (a {}); it is left alone: remove it or choose another path",
                kind(&meta.file_type())
            )))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(fail(format!("cannot inspect the path: {e}"))),
    }
    let listener = UnixListener::bind(path).map_err(|e| fail(format!("cannot listen: {e}")))?;
    let remove_on_error = |why: String| {
        let _ = std::fs::remove_file(path);
        fail(why)
    };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(SOCKET_MODE))
        .map_err(|e| remove_on_error(format!("cannot set mode 0600 on the socket: {e}")))?;
    let meta = std::fs::symlink_metadata(path)
        .map_err(|e| remove_on_error(format!("cannot inspect the bound socket: {e}")))?;
    Ok((listener, BoundSocket { path: path.to_path_buf(), dev: meta.dev(), ino: meta.ino() }))
}

fn kind(t: &std::fs::FileType) -> &'static str {
    if t.is_file() {
        "regular file"
    } else if t.is_dir() {
        "directory"
    } else if t.is_symlink() {
        "symbolic link"
    } else if t.is_fifo() {
        "FIFO"
    } else {
        "special file"
    }
}

//! What makes a [`Settings`](super::Settings) reload: SIGHUP and changes to
//! its file. Both run as supervised tasks of the component and talk to it
//! through its mailbox with [`Reload`].

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::event::{AccessKind, AccessMode};
use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::mpsc;

use super::{Configuration, Reload, Settings};
use crate::{Context, Error, Handle, Result};

/// Reloads on every SIGHUP the process receives.
#[cfg(unix)]
pub(super) fn on_sighup<T: Configuration>(ctx: &mut Context<Settings<T>>) -> Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hangups = signal(SignalKind::hangup())
        .map_err(|e| Error::Config(format!("cannot listen for SIGHUP: {e}")))?;
    let settings = ctx.handle().clone();
    ctx.spawn(async move {
        while hangups.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading the configuration");
            request(&settings).await?;
        }
        Ok(())
    });
    Ok(())
}

/// Without Unix signals there is nothing to listen for.
#[cfg(not(unix))]
pub(super) fn on_sighup<T: Configuration>(_ctx: &mut Context<Settings<T>>) -> Result<()> {
    Ok(())
}

/// Reloads when the file changes: watches its directory (so a file an
/// editor or a deployment replaces by renaming is seen too) and reloads
/// once the events have stopped for `debounce`.
pub(super) fn on_file_change<T: Configuration>(
    ctx: &mut Context<Settings<T>>,
    path: &Path,
    debounce: Duration,
) -> Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(OsString::from)
        .ok_or_else(|| Error::Config(format!("{} does not name a file", path.display())))?;
    let (tx, mut rx) = mpsc::channel::<()>(1);
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        match event {
            Ok(event) if concerns(&event, &name) => {
                // Full: a reload is already pending, which is enough.
                let _ = tx.try_send(());
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "watching the configuration file failed"),
        }
    })
    .map_err(|e| Error::Config(format!("cannot watch {}: {e}", dir.display())))?;
    watcher
        .watch(&dir, RecursiveMode::NonRecursive)
        .map_err(|e| Error::Config(format!("cannot watch {}: {e}", dir.display())))?;
    let settings = ctx.handle().clone();
    ctx.spawn(async move {
        // Dropped (and the watch removed) when the task ends.
        let _watcher = watcher;
        while rx.recv().await.is_some() {
            loop {
                match tokio::time::timeout(debounce, rx.recv()).await {
                    Ok(Some(())) => continue,
                    Ok(None) => return Ok(()),
                    Err(_quiet) => break,
                }
            }
            tracing::debug!("the configuration file changed: reloading");
            request(&settings).await?;
        }
        Ok(())
    });
    Ok(())
}

/// Whether `event` may have changed the file named `name`: a change (not
/// a mere read, which the reload itself causes) to that name, or to a name
/// starting with `..` (Kubernetes swaps a mounted ConfigMap's `..data`
/// link).
fn concerns(event: &notify::Event, name: &OsString) -> bool {
    let relevant_kind = match event.kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    };
    relevant_kind
        && event.paths.iter().any(|p| {
            p.file_name().is_some_and(|f| f == name || f.as_encoded_bytes().starts_with(b".."))
        })
}

/// Queues a reload; ends the task quietly when the component is stopping.
async fn request<T: Configuration>(settings: &Handle<Settings<T>>) -> Result<()> {
    match settings.tell(Reload).await {
        Ok(()) | Err(Error::Stopping(_)) => Ok(()),
        Err(e) => {
            tracing::warn!(error = %e, "cannot queue a configuration reload");
            Ok(())
        }
    }
}

//! The running bank's admin socket: the server that runs terminal operations sent to it
//! ([`serve_socket`]) and the client side, [`terminal_op`], which runs an operation on the
//! stopped bank's database directly or else through the socket.

use std::path::{Path, PathBuf};

use crate::store::{self, StoreError};
use crate::StartError;

use super::error::AdminError;
use super::ops::{execute, TerminalOp, TerminalReply};

/// Where the running bank listens for terminal operations.
pub fn admin_socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join("admin").join("admin.sock")
}

/// Runs `op` on the bank in `data_dir`: directly if it is stopped (its store checked against
/// `checkpoint_file`, which records the change; a store from before auditor keys gets one from
/// `custody`), else through its socket.
pub fn terminal_op(
    data_dir: &Path,
    checkpoint_file: &Path,
    bank_key_file: &Path,
    storage: &store::Storage,
    custody: &store::Custody,
    node: &crate::node::NodeName,
    op: TerminalOp,
) -> Result<TerminalReply, StartError> {
    // PostgreSQL locks no node's data directory: a node that runs answers on its socket, so
    // its checkpoint file keeps one writer.
    if matches!(storage, store::Storage::Postgres { .. }) && listening(data_dir) {
        return remote(data_dir, &op);
    }
    match store::open_for_admin(
        data_dir,
        checkpoint_file,
        bank_key_file,
        storage,
        custody,
        node,
    ) {
        Ok(opened) => Ok(execute(&*opened.ledger, op)),
        Err(StoreError::InUse(_)) => remote(data_dir, &op),
        Err(e) => Err(e.into()),
    }
}

/// Whether a bank answers on the admin socket of `data_dir`.
#[cfg(unix)]
fn listening(data_dir: &Path) -> bool {
    std::os::unix::net::UnixStream::connect(admin_socket_path(data_dir)).is_ok()
}

#[cfg(not(unix))]
fn listening(_: &Path) -> bool {
    false
}

#[cfg(unix)]
fn remote(data_dir: &Path, op: &TerminalOp) -> Result<TerminalReply, StartError> {
    use std::io::{BufRead as _, Read as _, Write as _};
    let path = admin_socket_path(data_dir);
    let fail = |source: std::io::Error| AdminError::Unreachable {
        path: path.clone(),
        source,
    };
    let mut stream = connect_when_ready(&path).map_err(fail)?;
    stream.set_read_timeout(Some(ADMIN_TIMEOUT)).map_err(fail)?;
    stream
        .set_write_timeout(Some(ADMIN_TIMEOUT))
        .map_err(fail)?;
    let mut request = serde_json::to_string(op).expect("ops serialize");
    request.push('\n');
    stream.write_all(request.as_bytes()).map_err(fail)?;
    let mut line = zeroize::Zeroizing::new(String::new());
    std::io::BufReader::new(stream.take(MAX_ADMIN_LINE))
        .read_line(&mut line)
        .map_err(fail)?;
    Ok(serde_json::from_str(&line).map_err(AdminError::BadAnswer)?)
}

/// Connects to the admin socket, waiting up to [`SOCKET_READY`] for it: a bank that has just
/// opened its database (so the command found it in use) may not have bound its socket yet.
#[cfg(unix)]
fn connect_when_ready(path: &Path) -> std::io::Result<std::os::unix::net::UnixStream> {
    let deadline = std::time::Instant::now() + SOCKET_READY;
    loop {
        match std::os::unix::net::UnixStream::connect(path) {
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
                ) && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            other => return other,
        }
    }
}

/// How long a command waits for a starting bank's admin socket.
#[cfg(unix)]
const SOCKET_READY: std::time::Duration = std::time::Duration::from_secs(3);

#[cfg(not(unix))]
fn remote(_: &Path, _: &TerminalOp) -> Result<TerminalReply, StartError> {
    Err(AdminError::Running.into())
}

const ADMIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
const MAX_ADMIN_LINE: u64 = 1 << 20;

/// Serves terminal operations on the admin socket until shutdown. The socket lives in a
/// directory only the bank's user can enter (0700).
#[cfg(unix)]
pub(crate) async fn serve_socket(shared: std::sync::Arc<crate::Shared>) {
    use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
    let path = admin_socket_path(&shared.config.data_dir);
    let dir = path
        .parent()
        .expect("the socket is inside a directory")
        .to_owned();
    let prepared = std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .and_then(|()| std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)));
    // The database lock makes this the only bank on this directory: a socket left over from a
    // crash is stale.
    let _ = std::fs::remove_file(&path);
    let listener = match prepared.and_then(|()| tokio::net::UnixListener::bind(&path)) {
        Ok(listener) => listener,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "no admin socket; terminal commands need the bank stopped");
            return;
        }
    };
    loop {
        let accepted = tokio::select! {
            () = shared.shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        if let Ok((stream, _)) = accepted {
            // Tracked, so the bank's shutdown waits for it (it holds the database).
            shared
                .tracker
                .spawn(admin_connection(shared.clone(), stream));
        }
    }
    let _ = std::fs::remove_file(&path);
}

#[cfg(not(unix))]
pub(crate) async fn serve_socket(_: std::sync::Arc<crate::Shared>) {}

#[cfg(unix)]
async fn admin_connection(shared: std::sync::Arc<crate::Shared>, stream: tokio::net::UnixStream) {
    use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _};
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    let mut reader = tokio::io::BufReader::new(read.take(4096));
    if !matches!(
        tokio::time::timeout(ADMIN_TIMEOUT, reader.read_line(&mut line)).await,
        Ok(Ok(_))
    ) {
        return;
    }
    let reply = match serde_json::from_str::<TerminalOp>(&line) {
        Ok(op) => {
            tracing::info!(?op, "admin request");
            let ledger = shared.ledger.clone();
            tokio::task::spawn_blocking(move || execute(&*ledger, op))
                .await
                .unwrap_or_else(|e| {
                    // The reply is text for the command; the typed error stays in the log.
                    tracing::error!(error = %e, "admin request: the task did not finish");
                    TerminalReply::Failed {
                        error: "internal error".into(),
                    }
                })
        }
        Err(_) => TerminalReply::Failed {
            error: "not a terminal operation".into(),
        },
    };
    let mut text =
        zeroize::Zeroizing::new(serde_json::to_string(&reply).expect("replies serialize"));
    text.push('\n');
    let _ = tokio::time::timeout(ADMIN_TIMEOUT, write.write_all(text.as_bytes())).await;
}

//! What both bank commands (`bank-server` and the BIBIFI `bank`) do as a process: logging to
//! stderr, the runtime, and the signals that stop them.

use std::future::Future;

/// Most threads in the bank's blocking pool.
///
/// Blocking work is short ledger calls (which the combining writer batches: more threads would
/// only wait on its lock), one group flush at a time and the bounded Argon2 pool, so a small
/// pool is enough; tokio's default of 512 threads costs memory under a burst of logins and
/// gains nothing.
pub const BLOCKING_THREADS: usize = 32;

/// Logs to stderr, filtered by `RUST_LOG` (`default_filter` when it is unset or invalid).
pub fn init_logging(default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .init();
}

/// The multi-threaded runtime a bank runs on, with [`BLOCKING_THREADS`].
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(BLOCKING_THREADS)
        .build()
}

/// Registers SIGTERM and SIGINT and returns a future that resolves on the first of them.
/// Call it first thing inside the runtime, so an early signal is not lost.
pub fn shutdown_signals() -> std::io::Result<impl Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
            _ = int.recv() => tracing::info!("SIGINT: shutting down"),
        }
    })
}

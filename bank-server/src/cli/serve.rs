//! `bank-server serve` (the default): the bank's configuration from the options, the
//! open-file limit it needs, and serving until a shutdown signal.

use std::net::SocketAddr;
use std::time::Duration;

use bank_server::{Config, StartError};

use super::args::{bank_key_file, ceilings, checkpoint_file, openings, storage, Opts};

/// Files the bank keeps open besides its connections (sled's files, the listener, the admin
/// socket, standard streams), with room to spare.
const RESERVED_FILES: u64 = 64;

/// Raises the open-file limit to the hard limit and checks that `max_connections` fits in it.
fn check_file_limit(max_connections: u32) -> Result<(), StartError> {
    let limit = rlimit::increase_nofile_limit(u64::MAX).map_err(StartError::FileLimitUnreadable)?;
    let needed = u64::from(max_connections) + RESERVED_FILES;
    if needed > limit {
        return Err(StartError::FileLimit {
            max_connections,
            needed,
            limit,
        });
    }
    Ok(())
}

fn config(opts: &Opts) -> Result<Config, StartError> {
    let mut config = Config::new(
        opts.data_dir.clone(),
        opts.auth_file.clone(),
        opts.audit_key_file.clone(),
    );
    config.auditor_public_key = opts.auditor_public_key;
    config.web_root = opts.web_root.clone();
    config.checkpoint_file = checkpoint_file(opts);
    config.bank_key_file = bank_key_file(opts);
    config.reset_checkpoints = opts.reset_checkpoints;
    config.storage = storage(opts);
    if let Some(name) = &opts.node_name {
        config.node_name = name.clone();
    }
    config.max_sessions = opts.max_sessions.max(1);
    // As given: fewer connections than sessions simply means fewer sessions at once.
    config.max_connections = opts.max_connections as usize;
    config.max_connections_per_address = opts.max_connections_per_ip as usize;
    config.request_head_timeout = Duration::from_secs(opts.request_head_timeout_secs);
    config.idle_timeout = Duration::from_secs(opts.idle_timeout_secs.max(1));
    config.allowed_origins = opts.allow_origin.clone();
    config.public_url = opts.public_url.clone();
    config.console_public_url = opts.console_public_url.clone();
    if let (Some(cert), Some(key)) = (&opts.tls_cert, &opts.tls_key) {
        config.tls = Some(bank_server::Tls::from_pem_files(cert, key).map_err(StartError::Tls)?);
    }
    config.max_amount = opts.max_amount;
    config.first_terminal = ceilings(opts);
    config.openings = openings(opts);
    Ok(config)
}

pub(crate) fn serve(opts: &Opts) -> Result<(), StartError> {
    let runtime = bank_server::process::runtime().map_err(StartError::Runtime)?;
    runtime.block_on(async {
        // Register the handlers before anything else so an early signal is not lost.
        let shutdown = bank_server::process::shutdown_signals().map_err(StartError::Runtime)?;
        check_file_limit(opts.max_connections)?;
        let config = config(opts)?;
        let (http, ws) = if config.tls.is_some() {
            ("https", "wss")
        } else {
            ("http", "ws")
        };
        let bank = tokio::task::spawn_blocking(move || bank_server::open(config))
            .await
            .map_err(StartError::Task)??;
        let addr = SocketAddr::new(opts.bind, opts.port);
        let listen = |source| StartError::Listen { addr, source };
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(listen)?;
        let addr = listener.local_addr().map_err(listen)?;
        eprintln!("bank-server: serving on {http}://{addr}/ (web ATM); native ATMs connect to {ws}://{addr}/ws");
        let metrics = match opts.metrics_listen {
            Some(at) => {
                let listen = |source| StartError::Listen { addr: at, source };
                let metrics = tokio::net::TcpListener::bind(at).await.map_err(listen)?;
                let at = metrics.local_addr().map_err(listen)?;
                eprintln!("bank-server: metrics on http://{at}/metrics");
                let serving = bank_server::serve_metrics(metrics, bank.clone());
                Some(tokio::spawn(async move {
                    if let Err(e) = serving.await {
                        tracing::error!(error = %e, "the metrics listener failed");
                    }
                }))
            }
            None => None,
        };
        let served = serve_sites(opts, listener, bank, shutdown, http).await;
        // Nothing to flush there: a scraper's open connection must not hold the exit.
        if let Some(metrics) = metrics {
            metrics.abort();
        }
        served
    })
}

/// Serves the web ATM on `listener`, and the console on its own listener with
/// `--console-listen`, until `shutdown`.
async fn serve_sites(
    opts: &Opts,
    listener: tokio::net::TcpListener,
    bank: bank_server::Bank,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    http: &str,
) -> Result<(), StartError> {
    let Some(console) = opts.console_listen else {
        return bank_server::serve(listener, bank, shutdown)
            .await
            .map_err(StartError::from);
    };
    let listen = |source| StartError::Listen {
        addr: console,
        source,
    };
    let console = tokio::net::TcpListener::bind(console)
        .await
        .map_err(listen)?;
    let at = console.local_addr().map_err(listen)?;
    eprintln!("bank-server: the bank console on {http}://{at}/console");
    bank_server::serve_with_console(listener, console, bank, shutdown)
        .await
        .map_err(StartError::from)
}

//! The bank: an axum WebSocket server speaking the `protocol` crate, its state on sled (the
//! default), redb or PostgreSQL.
//!
//! In the mini-redis / axum-examples style: [`open`] prepares a bank from a [`Config`] (creating
//! the data directory, the first terminal and the auth file on first start), [`app`] is its
//! router, and [`serve`] (or [`run`], which does both) serves it on a listener until the
//! `shutdown` future resolves. Tests start a bank on port 0:
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = std::path::Path::new("/tmp/bank-demo");
//! let config = bank_server::Config::new(dir.join("data"), dir.join("bank.auth"), dir.join("audit.key"));
//! let bank = bank_server::open(config)?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! tokio::spawn(bank_server::serve(listener, bank, std::future::pending::<()>()));
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

pub mod admin;
mod attempts;
pub mod audit;
pub mod bank_key;
pub mod bibifi;
mod chain_store;
pub mod checkpoint;
pub mod clock;
mod compact;
mod enroll;
mod fault;
mod group_sync;
pub mod kv;
pub mod kv_ledger;
pub mod ledger;
mod listener;
mod live;
mod metrics;
pub mod node;
mod openings;
pub mod output;
pub mod passwords;
pub mod pg_ledger;
mod posting;
mod presence;
pub mod process;
mod records;
pub mod redb_ledger;
mod revoker;
mod rules;
pub mod secrets;
mod session;
mod site;
pub mod sled_ledger;
pub mod store;
mod tally;
pub mod terminals;
#[cfg(feature = "testing")]
pub mod testing;
pub mod throttle;
pub mod tls;
mod web;
mod writer;

use core::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use protocol::Cents;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use clock::Clock;
pub use fault::{StorageFailed, EXIT_STORAGE_FAILED};
pub use ledger::Ledger;
pub use metrics::{metrics_app, serve_metrics, CONTENT_TYPE as METRICS_CONTENT_TYPE};
pub use openings::OpeningRate;
pub use output::Output;
pub use passwords::Argon2Params;
pub use throttle::Backoff;
pub use tls::{Tls, TlsError};
pub use web::{app, app_for, console_app, PublicUrl, PublicUrlError, Site, READ_BUFFER_SIZE};

use crate::passwords::PasswordPool;

/// Default WebSocket / HTTP port of `bank-server` (the web bank); the BIBIFI `bank` command
/// listens on [`bibifi::DEFAULT_PORT`] instead.
pub const DEFAULT_PORT: u16 = protocol::WEB_BANK_PORT;

/// Everything a running bank needs to know. [`Config::new`] gives the production defaults.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where sled keeps the bank's data.
    pub data_dir: PathBuf,
    /// The auth file written on first start (first terminal's id and key).
    pub auth_file: PathBuf,
    /// The audit key file: where a bank created without [`Self::auditor_public_key`] writes
    /// the auditor's private key it generated (once, 0600), keeping only the public key. A store
    /// from before auditor keys holds its legacy first key here (never overwritten: its upgrade
    /// writes a generated key to [`store::upgrade_key_file`] of it).
    pub audit_key_file: PathBuf,
    /// The auditor's X25519 public key, recorded in the store when the bank is created (or a
    /// store from before auditor keys first starts): every audit epoch's first key is derived
    /// with it, and only the auditor's private key, which the bank never holds, derives it
    /// again. `None` makes a lab bank generate the pair (see [`Self::audit_key_file`]).
    pub auditor_public_key: Option<audit::AuditorPublicKey>,
    /// The bank's static private key (protocol v2): written on first start, 0600, outside the
    /// data directory; terminals pin its public key.
    pub bank_key_file: PathBuf,
    /// Where the bank records, after each durable commit, how far its audit chain reaches;
    /// outside the data directory (best on another disk), checked at every start.
    pub checkpoint_file: PathBuf,
    /// Accept a store that fails the checkpoint check as it is (audited), once.
    pub reset_checkpoints: bool,
    /// The built web ATM (static files, `index.html` fallback).
    pub web_root: PathBuf,
    /// Which storage engine keeps the data, with its settings.
    pub storage: store::Storage,
    /// This node's name (`--node-name`): on a shared database, its audit chain and its live
    /// sessions go under it. Default: the data directory's name.
    pub node_name: node::NodeName,
    /// Most WebSocket sessions at once; more are refused with 503.
    pub max_sessions: usize,
    /// Most open TCP connections (HTTP and WebSocket); more wait in the kernel's backlog.
    pub max_connections: usize,
    /// Most open TCP connections from one peer address; more are closed at once.
    pub max_connections_per_address: usize,
    /// A connection must have each HTTP request answered within this of its opening or of the
    /// bank's last answer (a request head sent slowly does not extend it). After the WebSocket
    /// upgrade a peer silent for `idle_timeout + handshake_timeout` is dropped instead.
    pub request_head_timeout: Duration,
    /// Report a connection that never completed a request within `request_head_timeout` as
    /// `protocol_error` on the output, as the BIBIFI bank does (the web bank does not: browsers
    /// open spare connections they may never use).
    pub stalled_connection_is_protocol_error: bool,
    /// A session with no message for this long is closed.
    pub idle_timeout: Duration,
    /// The handshake must complete within this.
    pub handshake_timeout: Duration,
    /// A frame must be written to the peer within this, or the session is closed (a peer that
    /// stops reading cannot hold a session forever).
    pub send_timeout: Duration,
    /// On shutdown, how long to wait for open HTTP connections and sessions to finish before
    /// flushing and returning anyway.
    pub shutdown_grace: Duration,
    /// After a write to the storage fails, how long the bank keeps answering (`/healthz` 503,
    /// requests `internal`, no new sessions) before it stops with [`StorageFailed`]: time for
    /// a health check to see it.
    pub storage_fault_grace: Duration,
    /// Browser origins allowed to open a WebSocket besides the bank's own (`*` allows any).
    /// Their hosts are also accepted as `Host`.
    pub allowed_origins: Vec<String>,
    /// The bank's URL as browsers reach it (behind a reverse proxy, say). Requests are
    /// answered only for this host, the listening address and `localhost` (else 421), and
    /// browsers may open WebSockets only from these origins and [`Self::allowed_origins`].
    pub public_url: Option<PublicUrl>,
    /// The bank console's URL as browsers reach it, when it is served on a listener of its
    /// own ([`serve_with_console`]): that listener answers only for this host, its own
    /// address and `localhost`, and its WebSocket only to these origins (never
    /// [`Self::allowed_origins`]).
    pub console_public_url: Option<PublicUrl>,
    /// Serve HTTPS (and WSS) with this certificate instead of plain HTTP; responses then
    /// carry `Strict-Transport-Security`.
    pub tls: Option<Tls>,
    /// Largest deposit or withdrawal.
    pub max_amount: Cents,
    /// The deposit ceilings of the first terminal, set when the bank is created (the one in
    /// the auth file): [`ledger::DepositCeilings::DEFAULT`], like every terminal `bank-server`
    /// enrolls; the BIBIFI bank's has none.
    pub first_terminal: ledger::DepositCeilings,
    /// Argon2id cost (OWASP by default; tests may lower it).
    pub argon2: Argon2Params,
    /// Argon2id cost of an operator's password when the bank hashes one (a console's
    /// `change_password`); `operator add` uses the same, [`Argon2Params::OPERATOR`].
    pub operator_argon2: Argon2Params,
    /// Concurrent Argon2 runs.
    pub hash_workers: usize,
    /// How long a login waits for an Argon2 worker before the bank answers `Busy`.
    pub hash_wait: Duration,
    /// How fast one terminal may open accounts (`register`, `open_card_account`): a token
    /// bucket per terminal, in this process's memory on sled, shared by every node on
    /// PostgreSQL; `None`: no limit (the BIBIFI bank).
    pub openings: Option<OpeningRate>,
    /// Failed-login back-off per account (username).
    pub account_backoff: Backoff,
    /// Failed-login back-off per terminal.
    pub terminal_backoff: Backoff,
    /// The clock the time-based rules read: the login back-off, the UTC day of the deposit
    /// ceilings, the openings bucket (the system's; tests set their own).
    pub clock: Clock,
    /// Protocol settings (clock skew).
    pub protocol: protocol::Config,
    /// Where the one-line JSON summaries go.
    pub output: Output,
}

impl Config {
    /// Production defaults with the given paths.
    pub fn new(data_dir: PathBuf, auth_file: PathBuf, audit_key_file: PathBuf) -> Self {
        Self {
            checkpoint_file: default_checkpoint_file(&data_dir),
            bank_key_file: default_bank_key_file(&data_dir),
            reset_checkpoints: false,
            node_name: node::NodeName::from_data_dir(&data_dir),
            data_dir,
            auth_file,
            audit_key_file,
            auditor_public_key: None,
            web_root: PathBuf::from("dist"),
            storage: store::Storage::default(),
            max_sessions: 256,
            max_connections: 512,
            max_connections_per_address: 128,
            request_head_timeout: Duration::from_secs(10),
            stalled_connection_is_protocol_error: false,
            idle_timeout: Duration::from_secs(300),
            handshake_timeout: Duration::from_secs(10),
            send_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(10),
            storage_fault_grace: Duration::from_secs(3),
            allowed_origins: Vec::new(),
            public_url: None,
            console_public_url: None,
            tls: None,
            max_amount: protocol::money::BIBIFI_MAX,
            first_terminal: ledger::DepositCeilings::DEFAULT,
            argon2: Argon2Params::OWASP,
            operator_argon2: Argon2Params::OPERATOR,
            hash_workers: std::thread::available_parallelism().map_or(2, usize::from),
            hash_wait: Duration::from_secs(5),
            openings: Some(OpeningRate::DEFAULT),
            account_backoff: Backoff::ACCOUNT,
            terminal_backoff: Backoff::TERMINAL,
            clock: Clock::system(),
            protocol: protocol::Config::default(),
            output: Output::Stdout,
        }
    }
}

/// The checkpoint file beside (not in) the data directory: `<data-dir>.checkpoint`.
pub fn default_checkpoint_file(data_dir: &std::path::Path) -> PathBuf {
    beside(data_dir, ".checkpoint")
}

/// The bank's key file beside (not in) the data directory: `<data-dir>.bank-key`, so a copy
/// of the data directory does not carry it.
pub fn default_bank_key_file(data_dir: &std::path::Path) -> PathBuf {
    beside(data_dir, ".bank-key")
}

fn beside(data_dir: &std::path::Path, suffix: &str) -> PathBuf {
    let mut name = data_dir
        .file_name()
        .map(std::ffi::OsStr::to_os_string)
        .unwrap_or_else(|| "bank-data".into());
    name.push(suffix);
    data_dir.with_file_name(name)
}

/// Why the bank could not start or an admin command failed.
#[derive(Debug)]
pub enum StartError {
    /// A file or directory could not be created, read or written.
    File {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The address could not be listened on.
    Listen {
        /// The address asked for.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The tokio runtime or the shutdown signal handlers could not be set up.
    Runtime(std::io::Error),
    /// A blocking task (opening the bank, say) panicked or was cancelled.
    Task(tokio::task::JoinError),
    /// Serving stopped with an I/O error that is not a storage failure (see [`Self::Stopped`]).
    Serve(std::io::Error),
    /// `--max-connections` needs more open files than this process may open.
    FileLimit {
        /// The connections asked for.
        max_connections: u32,
        /// The open files they need (with the bank's own files).
        needed: u64,
        /// The open files this process may have (the hard limit).
        limit: u64,
    },
    /// The open-file limit could not be read or raised.
    FileLimitUnreadable(std::io::Error),
    /// An administration command (terminals, operators) was refused.
    Admin(admin::AdminError),
    /// The storage failed.
    Storage(String),
    /// Another process (the running bank) holds the database.
    InUse(String),
    /// Argon2 could not be set up.
    Hash,
    /// The store could not be opened or created.
    Store(store::StoreError),
    /// The storage could not read or write its files at start (a full disk, say).
    Failing(ledger::IoFailure),
    /// The bank stopped serving because its storage failed.
    Stopped(StorageFailed),
    /// The TLS certificate or key could not be used.
    Tls(TlsError),
}

impl StartError {
    /// The process exit status for this error: [`EXIT_STORAGE_FAILED`] (75) when the storage
    /// failed (worth a restart once the fault is fixed), 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Failing(_) | Self::Stopped(_) => EXIT_STORAGE_FAILED,
            _ => 1,
        }
    }
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File { path, source } => write!(f, "{}: {source}", path.display()),
            Self::Listen { addr, source } => write!(f, "cannot listen on {addr}: {source}"),
            Self::Runtime(e) => write!(f, "cannot set up the runtime or signal handlers: {e}"),
            Self::Task(e) => write!(f, "a background task did not finish: {e}"),
            Self::Serve(e) => write!(f, "serving failed: {e}"),
            Self::FileLimit {
                max_connections,
                needed,
                limit,
            } => write!(
                f,
                "--max-connections {max_connections} needs an open-file limit of at least \
                 {needed}, but this process may open only {limit} files (ulimit -n); lower \
                 --max-connections or raise the limit"
            ),
            Self::FileLimitUnreadable(e) => write!(f, "cannot read the open-file limit: {e}"),
            Self::Admin(e) => write!(f, "{e}"),
            Self::Storage(e) => write!(f, "storage: {e}"),
            Self::InUse(e) => f.write_str(e),
            Self::Hash => f.write_str("invalid Argon2 parameters"),
            Self::Store(e) => write!(f, "{e}"),
            Self::Failing(e) => write!(
                f,
                "storage failing: {e}; fix the fault (free disk space there) and start again"
            ),
            Self::Stopped(e) => write!(f, "{e}"),
            Self::Tls(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for StartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::File { source, .. } | Self::Listen { source, .. } => Some(source),
            Self::Runtime(e) | Self::Serve(e) | Self::FileLimitUnreadable(e) => Some(e),
            Self::Task(e) => Some(e),
            Self::Admin(e) => Some(e),
            Self::Store(e) => Some(e),
            Self::Failing(e) => Some(e),
            Self::Stopped(e) => Some(e),
            Self::Tls(e) => Some(e),
            Self::FileLimit { .. } | Self::Storage(_) | Self::InUse(_) | Self::Hash => None,
        }
    }
}

impl From<store::StoreError> for StartError {
    fn from(e: store::StoreError) -> Self {
        match e {
            store::StoreError::InUse(detail) => Self::InUse(detail),
            store::StoreError::Failing(failure) => Self::Failing(failure),
            other => Self::Store(other),
        }
    }
}

/// An error of [`serve`]: [`StartError::Stopped`] when the storage failed, else
/// [`StartError::Serve`].
impl From<std::io::Error> for StartError {
    fn from(e: std::io::Error) -> Self {
        match StorageFailed::take(e) {
            Ok(failed) => Self::Stopped(failed),
            Err(e) => Self::Serve(e),
        }
    }
}

impl From<admin::AdminError> for StartError {
    fn from(e: admin::AdminError) -> Self {
        Self::Admin(e)
    }
}

impl From<tokio::task::JoinError> for StartError {
    fn from(e: tokio::task::JoinError) -> Self {
        Self::Task(e)
    }
}

impl From<ledger::LedgerError> for StartError {
    fn from(e: ledger::LedgerError) -> Self {
        match e {
            ledger::LedgerError::InUse(detail) => Self::InUse(detail),
            ledger::LedgerError::Io(failure) => Self::Failing(failure),
            other => Self::Storage(other.to_string()),
        }
    }
}

/// What every session shares.
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) ledger: Arc<dyn Ledger>,
    /// The checkpoint file the ledger writes after each durable commit.
    pub(crate) checkpoints: Arc<checkpoint::CheckpointFile>,
    /// The bank's static key: every handshake proves it to the terminal.
    pub(crate) bank_key: protocol::BankKey,
    pub(crate) passwords: PasswordPool,
    /// Login attempts in flight per throttle key.
    pub(crate) attempts: Arc<attempts::InFlight>,
    /// Each terminal's bucket for opening accounts.
    pub(crate) openings: openings::Openings,
    pub(crate) sessions: Arc<Semaphore>,
    pub(crate) shutdown: CancellationToken,
    pub(crate) tracker: TaskTracker,
    pub(crate) next_conn: AtomicU64,
    /// This node's open sessions, for the consoles and to end a revoked terminal's.
    pub(crate) live: live::Registry,
    /// The console's last audit-chain link check: (when, Unix ms; what it found).
    pub(crate) chain_status: std::sync::Mutex<Option<(u64, protocol::console::ChainStatus)>>,
    /// Storage faults seen (the first stops the bank).
    pub(crate) faults: fault::Faults,
}

/// A prepared bank (the router's state). Cloning shares it.
#[derive(Clone)]
pub struct Bank {
    pub(crate) shared: Arc<Shared>,
}

impl Bank {
    /// What terminals pin of this bank (its id and static public key), for enrollment links
    /// and auth files.
    pub fn pin(&self) -> protocol::BankPin {
        self.shared.bank_key.pin()
    }
}

impl fmt::Debug for Bank {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bank")
            .field("data_dir", &self.shared.config.data_dir)
            .finish_non_exhaustive()
    }
}

impl Bank {
    /// The bank's configuration.
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// The bank's storage, for administration while it runs (e.g. adding or revoking a
    /// terminal in-process).
    pub fn ledger(&self) -> &dyn Ledger {
        &*self.shared.ledger
    }
}

/// Opens the bank in `config.data_dir`, creating it on first start: the data directory, the
/// audit log for `config.auditor_public_key` (or, without one, for a key pair generated here,
/// its private key written to `config.audit_key_file`), a first terminal and the auth file
/// (printing `created`). Blocks briefly (sled, one Argon2 run for the dummy hash).
pub fn open(config: Config) -> Result<Bank, StartError> {
    let store::OpenedBank {
        store: store::Opened {
            ledger,
            checkpoints,
        },
        bank_key,
        storage_keys,
    } = store::open_or_create(&config)?;
    let pepper = storage_keys.pepper();
    let passwords = PasswordPool::new(
        config.argon2,
        config.hash_workers,
        config.hash_wait,
        Some(pepper),
    )
    .map_err(|_| StartError::Hash)?;
    Ok(Bank {
        shared: Arc::new(Shared {
            sessions: Arc::new(Semaphore::new(config.max_sessions)),
            live: live::Registry::new(&config.node_name),
            openings: openings::Openings::new(config.openings),
            config,
            ledger: Arc::from(ledger),
            checkpoints,
            bank_key,
            passwords,
            attempts: Arc::default(),
            shutdown: CancellationToken::new(),
            tracker: TaskTracker::new(),
            next_conn: AtomicU64::new(1),
            chain_status: std::sync::Mutex::new(None),
            faults: fault::Faults::default(),
        }),
    })
}

/// Serves `bank` on `listener` until `shutdown` resolves; then stops accepting, ends every
/// session cleanly (a request in progress is finished and answered), flushes the storage and
/// returns. The web ATM and the bank console share the listener's origin ([`Site::Shared`]);
/// [`serve_with_console`] gives the console its own.
///
/// When a write to the storage fails (a full disk, an I/O error), the bank answers `/healthz`
/// with 503 at once and stops the same way `storage_fault_grace` later, returning an error
/// that carries [`StorageFailed`] (sled 0.34 refuses every write after one I/O error until
/// the database is reopened: restarting is how the bank heals).
pub async fn serve(
    listener: tokio::net::TcpListener,
    bank: Bank,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_sites(vec![(listener, Site::Shared)], bank, shutdown).await
}

/// [`serve`] with the bank console on a listener of its own, `console` ([`Site::Console`]),
/// and the web ATM alone on `listener` ([`Site::Customer`]): no script of a customer page
/// shares an origin with the console's key. Both listeners share the connection caps, the
/// deadlines, TLS and the shutdown.
pub async fn serve_with_console(
    listener: tokio::net::TcpListener,
    console: tokio::net::TcpListener,
    bank: Bank,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let sites = vec![(listener, Site::Customer), (console, Site::Console)];
    serve_sites(sites, bank, shutdown).await
}

async fn serve_sites(
    listeners: Vec<(tokio::net::TcpListener, Site)>,
    bank: Bank,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut sites = Vec::with_capacity(listeners.len());
    for (listener, site) in listeners {
        let local = listener.local_addr()?;
        sites.push((listener, local, site));
    }
    let shared = bank.shared.clone();
    let token = shared.shutdown.clone();
    let (faulted, fault_grace) = (shared.clone(), shared.config.storage_fault_grace);
    let signal = async move {
        tokio::select! {
            () = shutdown => {}
            () = async {
                faulted.faults.seen().await;
                tokio::time::sleep(fault_grace).await;
            } => tracing::error!("stopping: the storage failed"),
        }
        token.cancel();
    };
    // Tracked like the sessions: `serve` returns only once nothing holds the database.
    shared.tracker.spawn(admin::serve_socket(shared.clone()));
    shared.tracker.spawn(summaries(shared.clone()));
    shared.tracker.spawn(revoker::run(shared.clone()));
    shared.tracker.spawn(presence::publish(shared.clone()));
    let grace = shared.config.shutdown_grace;
    let config = &shared.config;
    let gate = listener::Gate::new(listener::Limits {
        max_connections: config.max_connections,
        max_per_address: config.max_connections_per_address,
        head_timeout: config.request_head_timeout,
        idle: config.idle_timeout + config.handshake_timeout,
        report_stalls: config
            .stalled_connection_is_protocol_error
            .then(|| config.output.clone()),
    });
    let atm = sites
        .iter()
        .find(|(_, _, site)| *site == Site::Customer)
        .map(|(_, local, _)| *local);
    let servers = sites.into_iter().map(|(listener, local, site)| {
        let listener = listener::LimitedListener::new(
            listener,
            gate.clone(),
            config.tls.as_ref().map(Tls::acceptor),
        );
        let router = match (site, atm) {
            (Site::Console, Some(atm)) => web::console_app(bank.clone(), local, atm),
            _ => app_for(bank.clone(), local, site),
        };
        let service = router.into_make_service_with_connect_info::<listener::Peer>();
        std::future::IntoFuture::into_future(
            axum::serve(listener, service)
                .with_graceful_shutdown(shared.shutdown.clone().cancelled_owned()),
        )
    });
    let servers = futures_util::future::try_join_all(servers);
    let server = async move {
        tokio::pin!(servers);
        tokio::select! {
            result = &mut servers => return result.map(drop),
            () = signal => {}
        }
        servers.await.map(drop)
    };
    // A peer holding an HTTP connection open (say, half a request) must not block shutdown.
    let cancelled = shared.shutdown.clone();
    tokio::select! {
        result = server => result?,
        () = async move {
            cancelled.cancelled().await;
            tokio::time::sleep(grace).await;
        } => tracing::warn!("HTTP connections still open after the grace period; not waiting"),
    }
    shared.shutdown.cancel();
    shared.tracker.close();
    if tokio::time::timeout(grace, shared.tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!("sessions still open after the grace period; not waiting");
    }
    if let Some(failure) = shared.faults.failing() {
        // Nothing to flush: the storage refuses every write now.
        return Err(std::io::Error::other(StorageFailed {
            data_dir: shared.config.data_dir.clone(),
            source: failure.clone(),
        }));
    }
    let ledger = shared.ledger.clone();
    tokio::task::spawn_blocking(move || ledger.sync())
        .await
        .map_err(std::io::Error::other)?
        .map_err(std::io::Error::other)?;
    tracing::info!("bank stopped; storage flushed");
    Ok(())
}

/// How often the bank logs a summary line at info level.
const SUMMARY_EVERY: Duration = Duration::from_secs(60);

/// Logs, every [`SUMMARY_EVERY`] until shutdown, what an operator watches: open sessions,
/// accounts, money held and the transactions of the last full minute (per-request lines are
/// at debug level).
async fn summaries(shared: Arc<Shared>) {
    let mut every = tokio::time::interval(SUMMARY_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    every.tick().await;
    loop {
        tokio::select! {
            () = shared.shutdown.cancelled() => return,
            _ = every.tick() => {}
        }
        let (sessions, _) = shared.live.snapshot(0);
        let now = now_ms();
        // Blocking: an engine may ask a database server.
        let ledger = shared.ledger.clone();
        let totals =
            tokio::task::spawn_blocking(move || ledger.totals(now, now - now % 86_400_000, 2))
                .await;
        match totals.unwrap_or_else(|e| Err(ledger::LedgerError::Storage(e.to_string()))) {
            Ok(totals) => tracing::info!(
                sessions,
                accounts = totals.accounts,
                held_cents = %totals.deposits_cents,
                last_minute = totals.per_minute.first().copied().unwrap_or(0),
                today = totals.transactions_today,
                "summary"
            ),
            Err(e) => tracing::error!(error = %e, "summary: the totals could not be read"),
        }
    }
}

/// [`open`] then [`serve`].
pub async fn run(
    listener: tokio::net::TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    let bank = tokio::task::spawn_blocking(move || open(config))
        .await
        .map_err(StartError::Task)??;
    serve(listener, bank, shutdown)
        .await
        .map_err(StartError::from)
}

/// The current Unix time in milliseconds.
pub(crate) fn now_ms() -> u64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    fn io() -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::PermissionDenied, "denied")
    }

    #[test]
    fn start_errors_keep_their_source_and_exit_code() {
        let file = StartError::File {
            path: PathBuf::from("/d/x.auth"),
            source: io(),
        };
        assert_eq!(file.to_string(), "/d/x.auth: denied");
        let listen = StartError::Listen {
            addr: "127.0.0.1:3000".parse().unwrap(),
            source: io(),
        };
        assert_eq!(
            listen.to_string(),
            "cannot listen on 127.0.0.1:3000: denied"
        );
        let limit = StartError::FileLimit {
            max_connections: 9,
            needed: 73,
            limit: 20,
        };
        assert!(limit.to_string().contains("open-file limit"), "{limit}");
        assert!(limit.source().is_none());
        let admin = StartError::from(admin::AdminError::PasswordsDiffer);
        assert_eq!(admin.to_string(), "the two passwords differ");
        for e in [
            file,
            listen,
            StartError::Runtime(io()),
            StartError::Serve(io()),
            StartError::FileLimitUnreadable(io()),
            admin,
        ] {
            assert!(e.source().is_some(), "{e:?}");
            assert_eq!(e.exit_code(), 1, "{e:?}");
        }
        assert!(matches!(StartError::from(io()), StartError::Serve(_)));
    }

    #[tokio::test]
    async fn a_panicked_task_is_a_task_error() {
        let joined = tokio::spawn(async { panic!("boom") }).await.unwrap_err();
        let e = StartError::from(joined);
        assert!(matches!(e, StartError::Task(_)) && e.source().is_some());
        assert_eq!(e.exit_code(), 1);
    }
}

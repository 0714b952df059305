//! The command line's arguments: the options every subcommand shares and the subcommands
//! (clap definitions; their `///` comments are the `--help` text).

use std::path::PathBuf;

use bank_server::ledger::DepositCeilings;
use clap::{Args, Parser, Subcommand};
use protocol::Cents;

/// The secure-ATM bank: a WebSocket server (path /ws) speaking the ATM protocol, with its
/// state in a sled database, a forward-secure audit log and the web ATM's static files.
///
/// With no subcommand it serves. On first start it creates the data directory, a first
/// terminal and the auth file (printing `created`), and records the auditor's public key
/// (--auditor-public-key; without it, a lab: it generates the auditor's key pair and writes the
/// private key to --audit-key-file).
/// Stdout carries one JSON line per completed transaction and `protocol_error` when a
/// session breaks the protocol; logs go to stderr (filter with RUST_LOG, e.g. RUST_LOG=debug).
///
/// Exit status: 0 after SIGINT or SIGTERM; 75 (EX_TEMPFAIL) when the storage fails (a full
/// disk, an I/O error): /healthz answers 503 at once, and 3 s later the bank stops accepting,
/// closes its sessions and exits, naming the data directory; so does a start on a disk still
/// full. Restart it (a supervisor's job) once there is room: every acknowledged transaction
/// is kept. 1 on any other error, 2 on bad arguments.
#[derive(Parser, Debug)]
#[command(name = "bank-server", version, args_conflicts_with_subcommands = false)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) opts: Opts,
    #[command(subcommand)]
    pub(crate) command: Option<Command>,
}

#[derive(Args, Debug)]
pub(crate) struct Opts {
    /// TCP port to listen on (0 picks a free one, printed on stderr).
    #[arg(long, global = true, env = "BANK_PORT", default_value_t = bank_server::DEFAULT_PORT)]
    pub(crate) port: u16,
    /// Address to bind.
    #[arg(long, global = true, env = "BANK_BIND", default_value = "127.0.0.1")]
    pub(crate) bind: std::net::IpAddr,
    /// Directory of the bank's database (created on first start).
    #[arg(
        long,
        global = true,
        env = "BANK_DATA_DIR",
        default_value = "./bank-data"
    )]
    pub(crate) data_dir: PathBuf,
    /// Auth file written on first start: the first terminal's id and key, for native ATMs
    /// (like the BIBIFI bank's -s).
    #[arg(
        long,
        global = true,
        env = "BANK_AUTH_FILE",
        default_value = "bank.auth"
    )]
    pub(crate) auth_file: PathBuf,
    /// The auditor's key file. `audit verify` and `audit show` read the auditor's private key
    /// from it (and, for a log begun before auditor keys, its legacy first key). A bank created
    /// without --auditor-public-key generates the auditor's key pair and writes the private key
    /// here (0600, never over an existing file), keeping only the public key: move it off the
    /// bank machine. (A store from before auditor keys, started without --auditor-public-key,
    /// writes a new key to `<this file>.auditor` instead.)
    #[arg(
        long,
        global = true,
        env = "BANK_AUDIT_KEY_FILE",
        default_value = "bank-audit.key"
    )]
    pub(crate) audit_key_file: PathBuf,
    /// The auditor's X25519 public key (64 hex, from `bank-server audit keygen` on the
    /// auditor's machine), recorded when the bank is created (or when a store from before
    /// auditor keys first starts): each audit epoch's first key is derived for it, so only the
    /// auditor's private key, never on the bank, can read or check the log.
    #[arg(long, global = true, env = "BANK_AUDITOR_PUBLIC_KEY", value_parser = parse_auditor_key)]
    pub(crate) auditor_public_key: Option<bank_server::audit::AuditorPublicKey>,
    /// The checkpoint file: after each durable commit the bank records there how far its
    /// audit chain reaches, and at start it refuses a store that falls short (damaged or rolled
    /// back). Keep it outside the data directory, best on another disk. Default:
    /// `<data-dir>.checkpoint` beside the data directory.
    #[arg(long, global = true, env = "BANK_CHECKPOINT_FILE")]
    pub(crate) checkpoint_file: Option<PathBuf>,
    /// The bank's static private key (protocol v2), written once, 0600, on first start; every
    /// terminal pins its public key, and the bank refuses to start without it. Keep it outside
    /// the data directory and out of its backups. Default: `<data-dir>.bank-key` beside the
    /// data directory.
    #[arg(long, global = true, env = "BANK_KEY_FILE")]
    pub(crate) bank_key_file: Option<PathBuf>,
    /// Start on a store that fails the checkpoint check, accepting it as it is (acknowledged
    /// transactions after its state may be lost); audited as `checkpoints_reset`.
    #[arg(long, global = true)]
    pub(crate) reset_checkpoints: bool,
    /// Directory of the built web ATM to serve (index.html fallback). If it is missing, a
    /// short "not built" page is served instead.
    #[arg(long, global = true, env = "BANK_WEB_ROOT", default_value = "dist")]
    pub(crate) web_root: PathBuf,
    /// The embedded engine that keeps the bank in the data directory: sled (the default), or
    /// redb, whose memory stays within its page cache however much the store holds. A store
    /// is opened only by the engine that made it. Ignored with --database-url.
    #[arg(long, global = true, env = "BANK_ENGINE", value_enum, default_value_t = Engine::Sled)]
    pub(crate) engine: Engine,
    /// The database's page cache in MiB (memory for reads, beyond the OS's page cache).
    #[arg(
        long,
        global = true,
        env = "BANK_CACHE_MB",
        default_value_t = 64,
        value_parser = clap::value_parser!(u64).range(1..=65_536)
    )]
    pub(crate) cache_mb: u64,
    /// Keep the bank in this PostgreSQL database (`postgres://user:password@host:port/db`)
    /// instead of sled in the data directory: several bank nodes may share it. Without it,
    /// sled. The database must be empty at the bank's first start; the schema is migrated at
    /// each start, and a database newer than this binary is refused.
    #[arg(long, global = true, env = "BANK_DATABASE_URL", hide_env_values = true)]
    pub(crate) database_url: Option<String>,
    /// PEM CA certificate(s) the database server's certificate must chain to. With it, every
    /// connection to the database is TLS (rustls): the server's certificate is verified against
    /// these roots only, and its name against the host of --database-url (an IP address needs
    /// an IP SAN); a server without TLS, an untrusted certificate or another name is refused
    /// at start, whatever the URL's sslmode (sslmode=prefer is taken as require;
    /// sslmode=disable is refused). Without it, plaintext as before, and a URL with
    /// sslmode=require is refused: the bank never uses TLS without verification.
    #[arg(
        long,
        global = true,
        env = "BANK_DATABASE_CA_FILE",
        value_name = "PATH",
        requires = "database_url"
    )]
    pub(crate) database_ca_file: Option<PathBuf>,
    /// This node's name, unique among the nodes on one database: its audit chain and its live
    /// sessions (on the console) go under it. 1 to 64 ASCII letters, digits, '.', '_', '-'.
    /// Default: the data directory's name.
    #[arg(long, global = true, env = "BANK_NODE_NAME")]
    pub(crate) node_name: Option<bank_server::node::NodeName>,
    /// Most concurrent WebSocket sessions; more are refused with 503.
    #[arg(long, global = true, env = "BANK_MAX_SESSIONS", default_value_t = 256)]
    pub(crate) max_sessions: usize,
    /// Most open TCP connections (HTTP and WebSocket) in all; more wait until one closes.
    /// The bank refuses to start when its open-file limit (`ulimit -n`, raised to the hard
    /// limit at start) cannot hold this many plus its own files.
    #[arg(
        long,
        global = true,
        env = "BANK_MAX_CONNECTIONS",
        default_value_t = 512,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub(crate) max_connections: u32,
    /// Most open TCP connections from one IP address; more are closed at once. Behind a
    /// reverse proxy every connection comes from the proxy: set it to --max-connections.
    #[arg(
        long,
        global = true,
        env = "BANK_MAX_CONNECTIONS_PER_IP",
        default_value_t = 128,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub(crate) max_connections_per_ip: u32,
    /// Close a connection whose HTTP request (the WebSocket upgrade included) is not complete
    /// this many seconds after it opened or after the bank's last answer on it.
    #[arg(
        long,
        global = true,
        env = "BANK_REQUEST_HEAD_TIMEOUT_SECS",
        default_value_t = 10,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub(crate) request_head_timeout_secs: u64,
    /// Close a session after this many seconds without a message.
    #[arg(
        long,
        global = true,
        env = "BANK_IDLE_TIMEOUT_SECS",
        default_value_t = 300
    )]
    pub(crate) idle_timeout_secs: u64,
    /// Largest deposit or withdrawal, in currency units with up to two decimals.
    #[arg(long, global = true, env = "BANK_MAX_AMOUNT", default_value = "4294967295.99", value_parser = parse_amount)]
    pub(crate) max_amount: Cents,
    /// The largest single deposit of the terminal this command creates (`terminal add`'s new
    /// terminal; when serving creates the bank, the first terminal, the one in the auth file),
    /// an opening balance included; `none` for no ceiling. Set at enrollment: it changes no
    /// existing terminal.
    #[arg(long, global = true, default_value_t = Ceiling(DepositCeilings::DEFAULT.per_deposit), value_parser = parse_ceiling)]
    pub(crate) max_deposit: Ceiling,
    /// How many accounts one terminal may open (register, open_card_account) per minute,
    /// sustained; `none` for no limit. Beyond it the terminal is answered `busy` (the first
    /// refusal of a run audited as `openings_throttled`). Kept per terminal: in memory with
    /// sled, in the database (shared by every node) with --database-url.
    #[arg(long, global = true, env = "BANK_OPENINGS_PER_MINUTE", default_value = "10", value_parser = parse_rate)]
    pub(crate) openings_per_minute: Rate,
    /// How many accounts one terminal may open at once (the bucket's size).
    #[arg(
        long,
        global = true,
        env = "BANK_OPENINGS_BURST",
        default_value_t = 20,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub(crate) openings_burst: u32,
    /// The most that terminal may take in deposits (opening balances included) per UTC day;
    /// `none` for no ceiling. Withdrawals free nothing. Set at enrollment, like --max-deposit.
    #[arg(long, global = true, default_value_t = Ceiling(DepositCeilings::DEFAULT.per_day), value_parser = parse_ceiling)]
    pub(crate) max_deposit_per_day: Ceiling,
    /// A browser origin (like http://localhost:8080) allowed to open WebSockets besides the
    /// bank's own; repeat it or separate with commas; `*` allows any.
    #[arg(long, global = true, env = "BANK_ALLOW_ORIGIN", value_delimiter = ',')]
    pub(crate) allow_origin: Vec<String>,
    /// The bank's URL as browsers reach it (like https://bank.example behind a reverse
    /// proxy): the bank answers only requests for this host, the bind address and localhost
    /// (others get 421, against DNS rebinding), and browsers may open WebSockets from it; also
    /// the base of the links `terminal add --web` and `operator add` print (default
    /// http://BIND:PORT).
    #[arg(long, global = true, env = "BANK_PUBLIC_URL", value_parser = parse_public_url)]
    pub(crate) public_url: Option<bank_server::PublicUrl>,
    /// Serve the bank console on a listener of its own at this address (like
    /// 127.0.0.1:8766), with its own /ws: the customer's listener then answers 404 for
    /// /console and closes console terminals' sessions, and this one closes ATM terminals'
    /// sessions, so no script of the customer pages shares an origin with an operator's key.
    /// Without it the console is at /console on the customer's origin. Also the base of the
    /// link `operator add` prints.
    #[arg(long, global = true, env = "BANK_CONSOLE_LISTEN")]
    pub(crate) console_listen: Option<std::net::SocketAddr>,
    /// Serve Prometheus metrics at GET /metrics (OpenMetrics text, plain HTTP) on a listener
    /// of its own at this address, like 127.0.0.1:9100; bind it to the loopback or an
    /// internal network only: it is not authenticated. Off by default; never on the customer's
    /// or the console's listener.
    #[arg(long, global = true, env = "BANK_METRICS_LISTEN")]
    pub(crate) metrics_listen: Option<std::net::SocketAddr>,
    /// The console's URL as browsers reach it (like https://console.bank.example behind a
    /// reverse proxy), the counterpart of --public-url for --console-listen: its listener
    /// answers only for this host, its own address and localhost, and its WebSocket only to
    /// its own origin and this one (never --allow-origin's); the base of the link
    /// `operator add` prints.
    #[arg(long, global = true, env = "BANK_CONSOLE_PUBLIC_URL", value_parser = parse_public_url, requires = "console_listen")]
    pub(crate) console_public_url: Option<bank_server::PublicUrl>,
    /// Serve HTTPS and WSS with this certificate chain (PEM, the bank's certificate first)
    /// instead of plain HTTP; needs --tls-key. Responses then carry HSTS.
    #[arg(long, global = true, env = "BANK_TLS_CERT", requires = "tls_key")]
    pub(crate) tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM: PKCS#8, PKCS#1 or SEC1); needs --tls-cert.
    #[arg(long, global = true, env = "BANK_TLS_KEY", requires = "tls_cert")]
    pub(crate) tls_key: Option<PathBuf>,
}

fn parse_public_url(text: &str) -> Result<bank_server::PublicUrl, bank_server::PublicUrlError> {
    bank_server::PublicUrl::parse(text)
}

/// The base of enrollment and console links: `--public-url`, or http://BIND:PORT.
pub(crate) fn link_base(opts: &Opts) -> String {
    opts.public_url.as_ref().map_or_else(
        || format!("http://{}", std::net::SocketAddr::new(opts.bind, opts.port)),
        |url| url.as_str().to_owned(),
    )
}

/// The base of console links: `--console-public-url`, else http://CONSOLE-LISTEN with
/// `--console-listen`, else [`link_base`] (the console shares the customer's origin).
pub(crate) fn console_link_base(opts: &Opts) -> String {
    match (&opts.console_public_url, opts.console_listen) {
        (Some(url), _) => url.as_str().to_owned(),
        (None, Some(addr)) => format!("http://{addr}"),
        (None, None) => link_base(opts),
    }
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Serve the bank (the default).
    Serve,
    /// Manage ATM terminals (on the stopped bank's database, or through the running bank's
    /// admin socket in the data directory).
    #[command(subcommand)]
    Terminal(TerminalCommand),
    /// Manage bank operators, who use the bank console (at /console, on --console-listen's
    /// origin when it is given; on the stopped bank's
    /// database, or through the running bank's admin socket).
    #[command(subcommand)]
    Operator(OperatorCommand),
    /// Check or read the audit log with the auditor's private key, where that key is (on a copy
    /// of the stopped bank's data directory: the database allows one process), or make the
    /// auditor's key pair.
    #[command(subcommand)]
    Audit(AuditCommand),
}

#[derive(Subcommand, Debug)]
pub(crate) enum OperatorCommand {
    /// Add an operator. Asks for the password twice on the terminal (or reads one line from
    /// standard input when it is not a terminal), stores only its Argon2id hash, creates a
    /// console terminal for the operator and prints the console's enrollment link: open it
    /// once in the operator's browser, then log in there with the name and password.
    Add {
        /// The operator's login name (lowercase letters, digits, _ - .).
        name: String,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum TerminalCommand {
    /// Add a terminal. With --code, prints a one-time enrollment code (the recommended way:
    /// the terminal derives its own key with the bank, and the key never travels); otherwise
    /// its auth-file line (or writes it with --out), or with --web an enrollment link carrying
    /// the id and key in the URL fragment. Its deposit ceilings are --max-deposit and
    /// --max-deposit-per-day (2000.00 and 10000.00 unless given).
    Add {
        /// A label for the terminal.
        #[arg(long, default_value = "terminal")]
        name: String,
        /// Print a one-time enrollment code (valid 10 minutes, one try) for `atm-enroll` or
        /// the web ATM's enrollment page, instead of credentials.
        #[arg(long, conflicts_with_all = ["web", "out"])]
        code: bool,
        /// Print a browser enrollment link instead of an auth file.
        #[arg(long)]
        web: bool,
        /// Write the auth file here (must not exist) instead of printing it.
        #[arg(long, conflicts_with = "web")]
        out: Option<PathBuf>,
    },
    /// List terminals: id, state, role, max deposit, max per day, deposited today (UTC), name;
    /// never keys.
    List,
    /// Revoke a terminal: its next handshake fails like a wrong key.
    Revoke {
        /// The terminal id (t-...).
        id: String,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum AuditCommand {
    /// Verify the whole chain with the auditor's key file (--audit-key-file), and that it
    /// reaches the checkpoint (the --checkpoint-file, or --checkpoints FILE, say an off-machine
    /// copy); exits 1 naming the first bad entry or the mismatch, 2 when it cannot check (a
    /// missing key file, or one without a key the log needs).
    Verify(AuditArgs),
    /// Verify, then print every entry (time, action, user, account, amount).
    Show(AuditArgs),
    /// Make the auditor's key pair (on the auditor's machine): writes the private key to
    /// --out (0600, never over an existing file) and prints the public key (64 hex) on
    /// stdout, for the bank's --auditor-public-key.
    Keygen(KeygenArgs),
}

#[derive(Args, Debug)]
pub(crate) struct KeygenArgs {
    /// Where to write the auditor's private key (must not exist).
    #[arg(long)]
    pub(crate) out: PathBuf,
}

#[derive(Args, Debug)]
pub(crate) struct AuditArgs {
    /// A checkpoint file to check the log against instead of --checkpoint-file.
    #[arg(long)]
    pub(crate) checkpoints: Option<PathBuf>,
}

/// A deposit ceiling as given on the command line: an amount, or `none`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ceiling(pub(crate) Option<Cents>);

impl core::fmt::Display for Ceiling {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            Some(cents) => write!(f, "{cents}"),
            None => f.write_str("none"),
        }
    }
}

fn parse_ceiling(text: &str) -> Result<Ceiling, String> {
    if text == "none" {
        return Ok(Ceiling(None));
    }
    parse_amount(text)
        .map(|c| Ceiling(Some(c)))
        .map_err(|_| "expected a positive amount like 2000.00, or none".to_owned())
}

/// `--openings-per-minute`: a number of accounts, or `none`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Rate(pub(crate) Option<u32>);

fn parse_rate(text: &str) -> Result<Rate, String> {
    if text == "none" {
        return Ok(Rate(None));
    }
    match text.parse::<u32>() {
        Ok(n) if n > 0 && !text.starts_with('+') => Ok(Rate(Some(n))),
        _ => Err("expected a number of accounts above 0, or none".to_owned()),
    }
}

/// The openings bucket the options ask for.
pub(crate) fn openings(opts: &Opts) -> Option<bank_server::OpeningRate> {
    opts.openings_per_minute
        .0
        .map(|per_minute| bank_server::OpeningRate {
            per_minute,
            burst: opts.openings_burst,
        })
}

/// The deposit ceilings the options give the terminal this command creates.
pub(crate) fn ceilings(opts: &Opts) -> DepositCeilings {
    DepositCeilings {
        per_deposit: opts.max_deposit.0,
        per_day: opts.max_deposit_per_day.0,
    }
}

fn parse_amount(text: &str) -> Result<Cents, String> {
    Cents::parse_decimal(text)
        .filter(|c| *c > Cents::ZERO)
        .ok_or_else(|| "expected a positive amount like 1000.00".to_owned())
}

/// The checkpoint file: as given, or beside the data directory.
pub(crate) fn checkpoint_file(opts: &Opts) -> PathBuf {
    opts.checkpoint_file
        .clone()
        .unwrap_or_else(|| bank_server::default_checkpoint_file(&opts.data_dir))
}

/// This node's name: as given, or the data directory's name.
pub(crate) fn node_name(opts: &Opts) -> bank_server::node::NodeName {
    opts.node_name
        .clone()
        .unwrap_or_else(|| bank_server::node::NodeName::from_data_dir(&opts.data_dir))
}

/// The bank's key file: as given, or beside the data directory.
pub(crate) fn bank_key_file(opts: &Opts) -> PathBuf {
    opts.bank_key_file
        .clone()
        .unwrap_or_else(|| bank_server::default_bank_key_file(&opts.data_dir))
}

fn parse_auditor_key(text: &str) -> Result<bank_server::audit::AuditorPublicKey, String> {
    bank_server::audit::AuditorPublicKey::from_hex(text)
        .ok_or_else(|| "expected the auditor's X25519 public key as 64 hex characters".to_owned())
}

/// Where the auditor's public key comes from when the store needs one.
pub(crate) fn custody(opts: &Opts) -> bank_server::store::Custody {
    bank_server::store::Custody {
        auditor: opts.auditor_public_key,
        key_file: opts.audit_key_file.clone(),
    }
}

/// The embedded engines (`--engine`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Engine {
    /// sled 0.34.
    Sled,
    /// redb.
    Redb,
}

/// The storage engine and its settings, from the options.
pub(crate) fn storage(opts: &Opts) -> bank_server::store::Storage {
    match &opts.database_url {
        Some(url) => bank_server::store::Storage::Postgres {
            url: bank_server::store::DatabaseUrl(url.clone()),
            ca_file: opts.database_ca_file.clone(),
        },
        None => match opts.engine {
            Engine::Sled => bank_server::store::Storage::Sled {
                cache_bytes: opts.cache_mb * 1024 * 1024,
            },
            Engine::Redb => bank_server::store::Storage::Redb {
                cache_bytes: opts.cache_mb * 1024 * 1024,
            },
        },
    }
}

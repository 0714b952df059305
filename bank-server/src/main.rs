//! The `bank-server` command line: serve the bank (default), manage terminals, audit the log.
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use bank_server::admin::{self, AuditCheckError, TerminalOp, TerminalReply};
use bank_server::ledger::TerminalRecord;
use bank_server::terminals::{
    auth_file_text, console_link, enrollment_link, write_new_secret_file,
};
use bank_server::{Config, StartError};
use clap::{Args, Parser, Subcommand};
use protocol::{Cents, Psk, TerminalId, TerminalRole};

/// The secure-ATM bank: a WebSocket server (path /ws) speaking the ATM protocol, with its
/// state in a sled database, a forward-secure audit log and the web ATM's static files.
///
/// With no subcommand it serves. On first start it creates the data directory, a first
/// terminal and the auth file (printing `created`), and writes the auditor's first audit key.
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
struct Cli {
    #[command(flatten)]
    opts: Opts,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Args, Debug)]
struct Opts {
    /// TCP port to listen on (0 picks a free one, printed on stderr).
    #[arg(long, global = true, env = "BANK_PORT", default_value_t = bank_server::DEFAULT_PORT)]
    port: u16,
    /// Address to bind.
    #[arg(long, global = true, env = "BANK_BIND", default_value = "127.0.0.1")]
    bind: std::net::IpAddr,
    /// Directory of the bank's database (created on first start).
    #[arg(
        long,
        global = true,
        env = "BANK_DATA_DIR",
        default_value = "./bank-data"
    )]
    data_dir: PathBuf,
    /// Auth file written on first start: the first terminal's id and key, for native ATMs
    /// (like the BIBIFI bank's -s).
    #[arg(
        long,
        global = true,
        env = "BANK_AUTH_FILE",
        default_value = "bank.auth"
    )]
    auth_file: PathBuf,
    /// The auditor's copy of the first audit key, written once on first start; `audit verify`
    /// and `audit show` read it. Keep it away from the bank machine.
    #[arg(
        long,
        global = true,
        env = "BANK_AUDIT_KEY_FILE",
        default_value = "bank-audit.key"
    )]
    audit_key_file: PathBuf,
    /// The checkpoint file: after each durable commit the bank records there how far its
    /// audit chain reaches, and at start it refuses a store that falls short (damaged or rolled
    /// back). Keep it outside the data directory, best on another disk. Default:
    /// `<data-dir>.checkpoint` beside the data directory.
    #[arg(long, global = true, env = "BANK_CHECKPOINT_FILE")]
    checkpoint_file: Option<PathBuf>,
    /// Start on a store that fails the checkpoint check, accepting it as it is (acknowledged
    /// transactions after its state may be lost); audited as `checkpoints_reset`.
    #[arg(long, global = true)]
    reset_checkpoints: bool,
    /// Directory of the built web ATM to serve (index.html fallback). If it is missing, a
    /// short "not built" page is served instead.
    #[arg(long, global = true, env = "BANK_WEB_ROOT", default_value = "dist")]
    web_root: PathBuf,
    /// The database's page cache in MiB (memory for reads, beyond the OS's page cache).
    #[arg(
        long,
        global = true,
        env = "BANK_CACHE_MB",
        default_value_t = 64,
        value_parser = clap::value_parser!(u64).range(1..=65_536)
    )]
    cache_mb: u64,
    /// Most concurrent WebSocket sessions; more are refused with 503.
    #[arg(long, global = true, env = "BANK_MAX_SESSIONS", default_value_t = 256)]
    max_sessions: usize,
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
    max_connections: u32,
    /// Most open TCP connections from one IP address; more are closed at once. Behind a
    /// reverse proxy every connection comes from the proxy: set it to --max-connections.
    #[arg(
        long,
        global = true,
        env = "BANK_MAX_CONNECTIONS_PER_IP",
        default_value_t = 128,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    max_connections_per_ip: u32,
    /// Close a connection whose HTTP request (the WebSocket upgrade included) is not complete
    /// this many seconds after it opened or after the bank's last answer on it.
    #[arg(
        long,
        global = true,
        env = "BANK_REQUEST_HEAD_TIMEOUT_SECS",
        default_value_t = 10,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    request_head_timeout_secs: u64,
    /// Close a session after this many seconds without a message.
    #[arg(
        long,
        global = true,
        env = "BANK_IDLE_TIMEOUT_SECS",
        default_value_t = 300
    )]
    idle_timeout_secs: u64,
    /// Largest deposit or withdrawal, in currency units with up to two decimals.
    #[arg(long, global = true, env = "BANK_MAX_AMOUNT", default_value = "4294967295.99", value_parser = parse_amount)]
    max_amount: Cents,
    /// A browser origin (like http://localhost:8080) allowed to open WebSockets besides the
    /// bank's own; repeat it or separate with commas; `*` allows any.
    #[arg(long, global = true, env = "BANK_ALLOW_ORIGIN", value_delimiter = ',')]
    allow_origin: Vec<String>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve the bank (the default).
    Serve,
    /// Manage ATM terminals (on the stopped bank's database, or through the running bank's
    /// admin socket in the data directory).
    #[command(subcommand)]
    Terminal(TerminalCommand),
    /// Manage bank operators, who use the bank console at /console (on the stopped bank's
    /// database, or through the running bank's admin socket).
    #[command(subcommand)]
    Operator(OperatorCommand),
    /// Check or read the audit log with the auditor's key (stop the bank first: the database
    /// allows one process).
    #[command(subcommand)]
    Audit(AuditCommand),
}

#[derive(Subcommand, Debug)]
enum OperatorCommand {
    /// Add an operator. Asks for the password twice on the terminal (or reads one line from
    /// standard input when it is not a terminal), stores only its Argon2id hash, creates a
    /// console terminal for the operator and prints the console's enrollment link: open it
    /// once in the operator's browser, then log in there with the name and password.
    Add {
        /// The operator's login name (lowercase letters, digits, _ - .).
        name: String,
        /// The bank's URL as browsers reach it, for the link (default http://BIND:PORT).
        #[arg(long)]
        public_url: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum TerminalCommand {
    /// Add a terminal. Prints its auth-file line (or writes it with --out), or with --web an
    /// enrollment link carrying the id and key in the URL fragment.
    Add {
        /// A label for the terminal.
        #[arg(long, default_value = "terminal")]
        name: String,
        /// Print a browser enrollment link instead of an auth file.
        #[arg(long)]
        web: bool,
        /// Write the auth file here (must not exist) instead of printing it.
        #[arg(long, conflicts_with = "web")]
        out: Option<PathBuf>,
        /// The bank's URL as browsers reach it, for the link (default http://BIND:PORT).
        #[arg(long)]
        public_url: Option<String>,
    },
    /// List terminals (id, state, name; never keys).
    List,
    /// Revoke a terminal: its next handshake fails like a wrong key.
    Revoke {
        /// The terminal id (t-...).
        id: String,
    },
}

#[derive(Subcommand, Debug)]
enum AuditCommand {
    /// Verify the whole chain, and that it reaches the checkpoint (the --checkpoint-file, or
    /// --checkpoints FILE, say an off-machine copy); exits 1 naming the first bad entry or the
    /// mismatch.
    Verify(AuditArgs),
    /// Verify, then print every entry (time, action, user, account, amount).
    Show(AuditArgs),
}

#[derive(Args, Debug)]
struct AuditArgs {
    /// A checkpoint file to check the log against instead of --checkpoint-file.
    #[arg(long)]
    checkpoints: Option<PathBuf>,
}

fn parse_amount(text: &str) -> Result<Cents, String> {
    Cents::parse_decimal(text)
        .filter(|c| *c > Cents::ZERO)
        .ok_or_else(|| "expected a positive amount like 1000.00".to_owned())
}

/// Files the bank keeps open besides its connections (sled's files, the listener, the admin
/// socket, standard streams), with room to spare.
const RESERVED_FILES: u64 = 64;

/// Raises the open-file limit to the hard limit and checks that `max_connections` fits in it.
fn check_file_limit(max_connections: u32) -> Result<(), StartError> {
    let limit = rlimit::increase_nofile_limit(u64::MAX)
        .map_err(|e| StartError::Io(format!("cannot read the open-file limit: {e}")))?;
    let needed = u64::from(max_connections) + RESERVED_FILES;
    if needed > limit {
        return Err(StartError::Io(format!(
            "--max-connections {max_connections} needs an open-file limit of at least {needed}, \
             but this process may open only {limit} files (ulimit -n); lower --max-connections \
             or raise the limit"
        )));
    }
    Ok(())
}

/// The checkpoint file: as given, or beside the data directory.
fn checkpoint_file(opts: &Opts) -> PathBuf {
    opts.checkpoint_file
        .clone()
        .unwrap_or_else(|| bank_server::default_checkpoint_file(&opts.data_dir))
}

fn config(opts: &Opts) -> Config {
    let mut config = Config::new(
        opts.data_dir.clone(),
        opts.auth_file.clone(),
        opts.audit_key_file.clone(),
    );
    config.web_root = opts.web_root.clone();
    config.checkpoint_file = checkpoint_file(opts);
    config.reset_checkpoints = opts.reset_checkpoints;
    config.cache_bytes = opts.cache_mb * 1024 * 1024;
    config.max_sessions = opts.max_sessions.max(1);
    // As given: fewer connections than sessions simply means fewer sessions at once.
    config.max_connections = opts.max_connections as usize;
    config.max_connections_per_address = opts.max_connections_per_ip as usize;
    config.request_head_timeout = Duration::from_secs(opts.request_head_timeout_secs);
    config.idle_timeout = Duration::from_secs(opts.idle_timeout_secs.max(1));
    config.allowed_origins = opts.allow_origin.clone();
    config.max_amount = opts.max_amount;
    config
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    bank_server::process::init_logging("info");
    let result = match cli.command {
        None | Some(Command::Serve) => serve(&cli.opts),
        Some(Command::Terminal(cmd)) => terminal(&cli.opts, cmd),
        Some(Command::Operator(cmd)) => operator(&cli.opts, cmd),
        Some(Command::Audit(cmd)) => return audit(&cli.opts, cmd),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bank-server: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn serve(opts: &Opts) -> Result<(), StartError> {
    let io = |e: std::io::Error| StartError::Io(e.to_string());
    let runtime = bank_server::process::runtime().map_err(io)?;
    runtime.block_on(async {
        // Register the handlers before anything else so an early signal is not lost.
        let shutdown = bank_server::process::shutdown_signals().map_err(io)?;
        check_file_limit(opts.max_connections)?;
        let config = config(opts);
        let bank = tokio::task::spawn_blocking(move || bank_server::open(config))
            .await
            .map_err(|e| StartError::Io(e.to_string()))??;
        let listener = tokio::net::TcpListener::bind(SocketAddr::new(opts.bind, opts.port))
            .await
            .map_err(|e| StartError::Io(format!("cannot listen on {}:{}: {e}", opts.bind, opts.port)))?;
        let addr = listener.local_addr().map_err(io)?;
        eprintln!("bank-server: serving on http://{addr}/ (web ATM); native ATMs connect to ws://{addr}/ws");
        bank_server::serve(listener, bank, shutdown)
            .await
            .map_err(StartError::from)
    })
}

fn terminal(opts: &Opts, cmd: TerminalCommand) -> Result<(), StartError> {
    let op = match &cmd {
        TerminalCommand::Add { name, .. } => TerminalOp::Add { name: name.clone() },
        TerminalCommand::List => TerminalOp::List,
        TerminalCommand::Revoke { id } => TerminalOp::Revoke { id: id.clone() },
    };
    let reply = admin::terminal_op(
        &opts.data_dir,
        &checkpoint_file(opts),
        opts.cache_mb * 1024 * 1024,
        op,
    )?;
    match (cmd, reply) {
        (_, TerminalReply::Failed { error }) => return Err(StartError::Io(error)),
        (
            TerminalCommand::Add {
                name,
                web,
                out,
                public_url,
            },
            TerminalReply::Added { terminal_id, psk },
        ) => {
            let psk = zeroize::Zeroizing::new(psk);
            let terminal = TerminalRecord {
                id: TerminalId::new(terminal_id)
                    .ok_or_else(|| StartError::Io("bad terminal id".into()))?,
                name,
                psk: Psk::from_hex(&psk)
                    .ok_or_else(|| StartError::Io("bad terminal key".into()))?,
                revoked: false,
                created_ms: 0,
                role: TerminalRole::Atm,
            };
            if web {
                let base = public_url
                    .unwrap_or_else(|| format!("http://{}", SocketAddr::new(opts.bind, opts.port)));
                println!("{}", enrollment_link(&base, &terminal).as_str());
                eprintln!(
                    "Open this link once in the browser that will be the ATM; it keeps the key."
                );
            } else if let Some(path) = out {
                write_new_secret_file(&path, &auth_file_text(&terminal))
                    .map_err(|e| StartError::Io(format!("{}: {e}", path.display())))?;
                println!("{}", terminal.id);
            } else {
                print!("{}", auth_file_text(&terminal).as_str());
            }
        }
        (TerminalCommand::List, TerminalReply::Listed { terminals }) => {
            for t in terminals {
                let state = if t.revoked { "revoked" } else { "active" };
                let role = match t.role {
                    TerminalRole::Atm => "atm",
                    TerminalRole::Console => "console",
                };
                println!("{}\t{state}\t{role}\t{}", t.id, t.name);
            }
        }
        (TerminalCommand::Revoke { id }, TerminalReply::Revoked) => println!("revoked {id}"),
        _ => return Err(StartError::Io("unexpected answer from the bank".into())),
    }
    Ok(())
}

/// The new operator's password: typed twice without echo on a terminal, else one line of
/// standard input (for scripts: `printf '%s\n' "$PASSWORD" | bank-server operator add ops`).
fn read_operator_password(name: &str) -> Result<zeroize::Zeroizing<String>, StartError> {
    use std::io::IsTerminal as _;
    let io = |e: std::io::Error| StartError::Io(format!("reading the password: {e}"));
    if std::io::stdin().is_terminal() {
        let first = zeroize::Zeroizing::new(
            rpassword::prompt_password(format!("Password for operator {name}: ")).map_err(io)?,
        );
        let again = zeroize::Zeroizing::new(rpassword::prompt_password("Again: ").map_err(io)?);
        if first != again {
            return Err(StartError::Io("the two passwords differ".into()));
        }
        Ok(first)
    } else {
        let mut line = zeroize::Zeroizing::new(String::new());
        std::io::stdin().read_line(&mut line).map_err(io)?;
        let trimmed = line.trim_end_matches(['\n', '\r']).len();
        line.truncate(trimmed);
        Ok(line)
    }
}

fn operator(opts: &Opts, cmd: OperatorCommand) -> Result<(), StartError> {
    let OperatorCommand::Add { name, public_url } = cmd;
    let password = read_operator_password(&name)?;
    // Hashed here: the password itself never reaches the running bank.
    let (username, password_hash) =
        admin::operator_credentials(bank_server::Argon2Params::OWASP, &name, &password)?;
    drop(password);
    let op = TerminalOp::AddOperator {
        username: username.to_string(),
        password_hash,
    };
    match admin::terminal_op(
        &opts.data_dir,
        &checkpoint_file(opts),
        opts.cache_mb * 1024 * 1024,
        op,
    )? {
        TerminalReply::Added { terminal_id, psk } => {
            let psk = zeroize::Zeroizing::new(psk);
            let terminal = TerminalRecord {
                id: TerminalId::new(terminal_id)
                    .ok_or_else(|| StartError::Io("bad terminal id".into()))?,
                name: String::new(),
                psk: Psk::from_hex(&psk)
                    .ok_or_else(|| StartError::Io("bad terminal key".into()))?,
                revoked: false,
                created_ms: 0,
                role: TerminalRole::Console,
            };
            let base = public_url
                .unwrap_or_else(|| format!("http://{}", SocketAddr::new(opts.bind, opts.port)));
            println!("{}", console_link(&base, &terminal).as_str());
            eprintln!(
                "Operator {username} added. Open this link once in the operator's browser (it keeps the console's key), then log in as {username}."
            );
            Ok(())
        }
        TerminalReply::Failed { error } => Err(StartError::Io(error)),
        _ => Err(StartError::Io("unexpected answer from the bank".into())),
    }
}

fn audit(opts: &Opts, cmd: AuditCommand) -> ExitCode {
    let (show, args) = match cmd {
        AuditCommand::Verify(args) => (false, args),
        AuditCommand::Show(args) => (true, args),
    };
    let checkpoint_file = args.checkpoints.unwrap_or_else(|| checkpoint_file(opts));
    // A damaged store must be reported, never crash the auditor's tool.
    let checked = std::panic::catch_unwind(|| {
        let ledger =
            bank_server::store::open_existing(&opts.data_dir).map_err(AuditCheckError::Store)?;
        let key = admin::read_audit_key(&opts.audit_key_file)?;
        let events = admin::verify_audit(&ledger, &key)?;
        let checkpoint = match bank_server::store::read_checkpoint(&checkpoint_file) {
            Ok(checkpoint) => checkpoint,
            Err(e) => return Err(AuditCheckError::Checkpoint(e)),
        };
        admin::verify_checkpoint(&ledger, &key, events.len() as u64, &checkpoint)?;
        Ok((events, checkpoint))
    })
    .unwrap_or(Err(AuditCheckError::Broken(
        bank_server::audit::VerifyError {
            entry: 0,
            problem: "the store cannot be read (damaged)",
        },
    )));
    match checked {
        Ok((events, checkpoint)) => {
            if show {
                for (seq, event) in events.iter().enumerate() {
                    println!("{}", admin::format_event(seq, event));
                }
            }
            eprintln!(
                "audit log OK: {} entries; it reaches the checkpoint of {} entries in {}",
                events.len(),
                checkpoint.next_seq,
                checkpoint_file.display()
            );
            ExitCode::SUCCESS
        }
        Err(AuditCheckError::Setup(e)) => {
            eprintln!("bank-server: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("audit log BROKEN: {e}");
            ExitCode::FAILURE
        }
    }
}

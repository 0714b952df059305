//! The BIBIFI `bank` command: `bank [-p <port>] [-s <auth-file>]`, a fresh bank on every start.
//!
//! The bank-server library does the work ([`bank_server::open`] creates the bank, writes the
//! auth file and prints `created`; [`bank_server::serve`] prints the JSON summary lines and
//! `protocol_error`). This file only reads the spec's command line, chooses the data directory
//! ([`bank_server::bibifi::DataDir`]) and maps every failure to exit code 255. SIGTERM and
//! SIGINT stop it cleanly with exit code 0.
#![forbid(unsafe_code)]

use std::ffi::OsString;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use bank_server::bibifi::{self, DataDir, DataDirError, Invocation, DATA_DIR_VAR};
use bank_server::{process, Config, StartError};

/// Exit code for invalid arguments and for any failure to start or run.
const EXIT_INVALID: u8 = 255;

/// Why the bank stopped with an error.
#[derive(Debug)]
enum BankError {
    /// The command line is not a valid `bank` invocation.
    Arguments,
    /// The auth file exists already.
    AuthFileExists,
    /// The data directory could not be prepared.
    DataDir(DataDirError),
    /// The port could not be listened on.
    Listen(std::io::Error),
    /// The bank could not start or stopped with an error.
    Start(StartError),
}

impl std::fmt::Display for BankError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Arguments => f.write_str("invalid arguments"),
            Self::AuthFileExists => f.write_str("the auth file already exists"),
            Self::DataDir(e) => write!(f, "{e}"),
            Self::Listen(e) => write!(f, "cannot listen: {e}"),
            Self::Start(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for BankError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Arguments | Self::AuthFileExists => None,
            Self::DataDir(e) => Some(e),
            Self::Listen(e) => Some(e),
            Self::Start(e) => Some(e),
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bank: {e}");
            ExitCode::from(EXIT_INVALID)
        }
    }
}

fn run(args: &[OsString]) -> Result<(), BankError> {
    // Everything that can be refused is checked before anything is created.
    let inv = bibifi::parse(args).map_err(|_| BankError::Arguments)?;
    if std::fs::symlink_metadata(&inv.auth_file).is_ok() {
        return Err(BankError::AuthFileExists);
    }
    let kept = std::env::var_os(DATA_DIR_VAR).map(PathBuf::from);
    DataDir::check(kept.as_deref()).map_err(BankError::DataDir)?;
    process::init_logging("warn");
    let runtime = process::runtime().map_err(|e| BankError::Start(StartError::Runtime(e)))?;
    runtime.block_on(serve(inv, kept))
}

async fn serve(inv: Invocation, kept: Option<PathBuf>) -> Result<(), BankError> {
    // Register the handlers before anything else so an early signal is not lost.
    let shutdown =
        process::shutdown_signals().map_err(|e| BankError::Start(StartError::Runtime(e)))?;
    // Listening before creating: a taken port leaves nothing behind.
    let listener =
        tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, inv.port)))
            .await
            .map_err(BankError::Listen)?;
    let dir = DataDir::create(kept.as_deref()).map_err(BankError::DataDir)?;
    let mut config = Config::new(
        dir.database(),
        PathBuf::from(&inv.auth_file),
        dir.audit_key(),
    );
    config.stalled_connection_is_protocol_error = true;
    // The spec's bank takes any amount up to its grammar's maximum from its one terminal.
    config.first_terminal = bank_server::ledger::DepositCeilings::NONE;
    // ...and opens as many accounts as it is asked to, as fast as it is asked.
    config.openings = None;
    let bank = tokio::task::spawn_blocking(move || bank_server::open(config))
        .await
        .map_err(|e| BankError::Start(StartError::Task(e)))?
        .map_err(BankError::Start)?;
    let served = bank_server::serve(listener, bank, shutdown).await;
    // The temporary directory is deleted here, after the storage is flushed and closed.
    drop(dir);
    // A storage failure becomes `StartError::Stopped`, any other I/O error `StartError::Serve`.
    served.map_err(|e| BankError::Start(StartError::from(e)))
}

//! Bank administration on the data directory: first-start setup, terminals (add, list, revoke)
//! and the auditor's commands (verify, show). The command-line subcommands call these.

use std::path::Path;

use protocol::TerminalId;

use crate::audit::{self, AuditEvent, AuditKey, VerifyError};
use crate::ledger::{Ledger, LedgerError, TerminalRecord};
use crate::sled_ledger::SledLedger;
use crate::terminals::{auth_file_text, new_terminal, write_new_secret_file};
use crate::{now_ms, Config, StartError};

fn io(path: &Path, e: std::io::Error) -> StartError {
    StartError::Io(format!("{}: {e}", path.display()))
}

/// Opens the data directory, creating the bank on first start (see [`crate::open`]).
pub fn open_or_create(config: &Config) -> Result<SledLedger, StartError> {
    std::fs::create_dir_all(&config.data_dir).map_err(|e| io(&config.data_dir, e))?;
    let ledger = SledLedger::open(&config.data_dir)?;
    if ledger.audit_log()?.head.is_some() {
        return Ok(ledger);
    }
    // First start. Refuse to overwrite secrets that belong to another bank.
    for path in [&config.auth_file, &config.audit_key_file] {
        if path.exists() {
            return Err(StartError::Exists(path.clone()));
        }
    }
    let first_key = AuditKey::random();
    let mut key_text = first_key.to_hex();
    key_text.push('\n');
    write_new_secret_file(&config.audit_key_file, &key_text)
        .map_err(|e| io(&config.audit_key_file, e))?;
    ledger.init_audit(&first_key)?;
    let terminal = new_terminal("first terminal", now_ms());
    ledger.add_terminal(&terminal, &terminal_event("terminal_added", &terminal.id))?;
    ledger.sync()?;
    write_new_secret_file(&config.auth_file, &auth_file_text(&terminal))
        .map_err(|e| io(&config.auth_file, e))?;
    tracing::info!(terminal = %terminal.id, auth_file = %config.auth_file.display(), "created a new bank");
    config.output.line("created");
    Ok(ledger)
}

/// Opens an existing bank's data directory (for admin commands; the bank must be stopped,
/// since sled allows one process at a time).
pub fn open_existing(data_dir: &Path) -> Result<SledLedger, StartError> {
    if !data_dir.is_dir() {
        return Err(StartError::Io(format!(
            "{}: no bank data here",
            data_dir.display()
        )));
    }
    let ledger = SledLedger::open(data_dir)?;
    if ledger.audit_log()?.head.is_none() {
        return Err(StartError::Io(format!(
            "{}: no bank data here",
            data_dir.display()
        )));
    }
    Ok(ledger)
}

fn terminal_event(action: &str, id: &TerminalId) -> AuditEvent {
    let mut event = AuditEvent::new(action, now_ms());
    event.terminal = Some(id.to_string());
    event
}

/// Adds a terminal named `name`; the caller hands its key to the ATM.
pub fn add_terminal(ledger: &dyn Ledger, name: &str) -> Result<TerminalRecord, StartError> {
    let terminal = new_terminal(name, now_ms());
    ledger.add_terminal(&terminal, &terminal_event("terminal_added", &terminal.id))?;
    ledger.sync()?;
    Ok(terminal)
}

/// Revokes a terminal; its next handshake fails like a wrong key.
pub fn revoke_terminal(ledger: &dyn Ledger, id: &TerminalId) -> Result<(), StartError> {
    match ledger.revoke_terminal(id, &terminal_event("terminal_revoked", id)) {
        Err(LedgerError::NotFound) => return Err(StartError::Io(format!("no terminal {id}"))),
        other => other?,
    }
    ledger.sync()?;
    Ok(())
}

/// Why an audit check failed.
#[derive(Debug)]
pub enum AuditCheckError {
    /// The key file or storage could not be read.
    Setup(String),
    /// The chain is broken.
    Broken(VerifyError),
}

impl core::fmt::Display for AuditCheckError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Setup(e) => f.write_str(e),
            Self::Broken(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for AuditCheckError {}

/// Reads the auditor's first key.
pub fn read_audit_key(path: &Path) -> Result<AuditKey, AuditCheckError> {
    let text = zeroize::Zeroizing::new(
        std::fs::read_to_string(path)
            .map_err(|e| AuditCheckError::Setup(format!("{}: {e}", path.display())))?,
    );
    AuditKey::from_hex(&text)
        .ok_or_else(|| AuditCheckError::Setup(format!("{}: not an audit key", path.display())))
}

/// Verifies the whole audit log with the auditor's first key; returns every event.
pub fn verify_audit(
    ledger: &dyn Ledger,
    first_key: &AuditKey,
) -> Result<Vec<AuditEvent>, AuditCheckError> {
    let log = ledger
        .audit_log()
        .map_err(|e| AuditCheckError::Setup(e.to_string()))?;
    audit::verify(first_key, &log.entries, log.head.as_ref()).map_err(AuditCheckError::Broken)
}

/// One event as the auditor reads it: `#seq time action user=.. account=.. amount=..`.
pub fn format_event(seq: usize, event: &AuditEvent) -> String {
    let mut line = format!("#{seq} {} {}", event.time_ms, event.action);
    let mut field = |name: &str, value: Option<String>| {
        if let Some(value) = value {
            line.push_str(&format!(" {name}={value}"));
        }
    };
    field("user", event.user.clone());
    field("account", event.account.clone());
    field(
        "amount",
        event.amount_cents.map(|c| protocol::Cents(c).to_string()),
    );
    field(
        "balance",
        event.balance_cents.map(|c| protocol::Cents(c).to_string()),
    );
    field("terminal", event.terminal.clone());
    field("conn", event.conn.map(|c| c.to_string()));
    field("detail", event.detail.clone());
    line
}

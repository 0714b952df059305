//! The auditor's commands: read the audit key, verify the log's chain and hold it against a
//! checkpoint, and print an event as the auditor reads it.

use std::path::Path;

use crate::audit::{self, AuditEvent, AuditKey, VerifyError};
use crate::checkpoint::{Checkpoint, CheckpointError};
use crate::ledger::{Ledger, LedgerError};
use crate::store::StoreError;

/// Why an audit check failed.
#[derive(Debug)]
pub enum AuditCheckError {
    /// The key file could not be read.
    Setup(String),
    /// The chain is broken.
    Broken(VerifyError),
    /// The store could not be read: damaged, not a bank, or in use.
    Store(StoreError),
    /// The checkpoint file could not be read.
    Checkpoint(CheckpointError),
    /// The log does not reach, or differs from, what the checkpoint vouches for.
    BehindCheckpoint {
        /// Entries in the log.
        log: u64,
        /// Entries the checkpoint vouches for.
        checkpoint: u64,
        /// What does not match.
        problem: &'static str,
    },
}

impl AuditCheckError {
    /// `true` when the log or the store is shown to be damaged, truncated or rolled back;
    /// `false` when the check could not be made (a missing key or checkpoint file, a wrong
    /// path, the bank still running), which is no verdict on the log.
    pub fn is_broken(&self) -> bool {
        use crate::store::StoreError;
        match self {
            Self::Broken(_) | Self::BehindCheckpoint { .. } => true,
            Self::Checkpoint(e) => matches!(e, CheckpointError::Unreadable(_)),
            Self::Store(e) => matches!(e, StoreError::Damaged(..) | StoreError::TooNew { .. }),
            Self::Setup(_) => false,
        }
    }
}

impl core::fmt::Display for AuditCheckError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Setup(e) => f.write_str(e),
            Self::Broken(e) => write!(f, "{e}"),
            Self::Store(e) => write!(f, "{e}"),
            Self::Checkpoint(e) => write!(f, "{e}"),
            Self::BehindCheckpoint {
                log,
                checkpoint,
                problem,
            } => write!(
                f,
                "the log holds {log} entries, the checkpoint vouches for {checkpoint}: {problem}"
            ),
        }
    }
}

impl std::error::Error for AuditCheckError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Broken(e) => Some(e),
            Self::Store(e) => Some(e),
            Self::Checkpoint(e) => Some(e),
            _ => None,
        }
    }
}

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
        .map_err(|e| AuditCheckError::Broken(unreadable(e)))?;
    audit::verify(first_key, &log.entries, log.head.as_ref()).map_err(AuditCheckError::Broken)
}

fn unreadable(e: LedgerError) -> VerifyError {
    tracing::error!(error = %e, "the audit log could not be read");
    VerifyError {
        entry: 0,
        problem: "the store cannot be read (damaged)",
    }
}

/// Checks a verified log of `entries` entries against a checkpoint: the log reaches it, its
/// entry there hashes as the checkpoint says, the bank is the same, and the MAC verifies under
/// `K_seq` derived from the auditor's first key.
pub fn verify_checkpoint(
    ledger: &dyn Ledger,
    first_key: &AuditKey,
    entries: u64,
    checkpoint: &Checkpoint,
) -> Result<(), AuditCheckError> {
    let behind = |problem| AuditCheckError::BehindCheckpoint {
        log: entries,
        checkpoint: checkpoint.next_seq,
        problem,
    };
    if entries < checkpoint.next_seq {
        return Err(behind("the log is shorter (truncated or rolled back)"));
    }
    let identity = ledger
        .identity()
        .map_err(|e| AuditCheckError::Broken(unreadable(e)))?;
    if identity.is_none_or(|i| i.id != checkpoint.bank_id) {
        return Err(behind("the checkpoint belongs to another bank"));
    }
    if let Some(last) = checkpoint.next_seq.checked_sub(1) {
        let entry = ledger
            .audit_entry(last)
            .map_err(|e| AuditCheckError::Broken(unreadable(e)))?;
        if entry.is_none_or(|e| protocol::primitives::sha256(&[&e]) != checkpoint.last_hash) {
            return Err(behind("the log differs from the one checkpointed"));
        }
    }
    let expected = first_key.evolved(checkpoint.next_seq).checkpoint_mac(
        &checkpoint.bank_id,
        checkpoint.next_seq,
        &checkpoint.last_hash,
    );
    if !bool::from(subtle::ConstantTimeEq::ct_eq(
        &expected[..],
        &checkpoint.mac[..],
    )) {
        return Err(behind("the checkpoint's MAC does not verify (forged)"));
    }
    Ok(())
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

//! The auditor's commands: read the auditor's keys, verify the log's chain epoch by epoch and
//! hold it against a checkpoint, and print an event as the auditor reads it. They run where
//! the auditor's private key is, on a copy of the stopped bank's data directory.

use std::path::Path;

use crate::audit::{self, AuditEvent, AuditorKeys, Epoch, EpochKind, VerifyError};
use crate::checkpoint::{Checkpoint, CheckpointError};
use crate::ledger::{AuditLog, Ledger, LedgerError};
use crate::store::StoreError;

/// Why an audit check failed.
#[derive(Debug)]
pub enum AuditCheckError {
    /// The key file could not be read.
    Setup(String),
    /// The key file lacks a key the log needs (`"auditor key"` or `"legacy first key"`).
    MissingKey(&'static str),
    /// The chain is broken.
    Broken(VerifyError),
    /// The chain is broken where the key file's auditor key is not the one the store records:
    /// a tampered log, or another bank's key file.
    OtherAuditor {
        /// The first bad entry.
        error: VerifyError,
        /// The auditor public key the store records (64 hex).
        recorded: String,
    },
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
    /// One of a store's several audit chains failed its check.
    InChain {
        /// The chain's name ([`AuditLog::chain`]).
        chain: String,
        /// What failed.
        error: Box<AuditCheckError>,
    },
}

/// How the auditor's tools name a chain: `node "n1"`, or for the chain named `""` on a
/// store with per-node chains, the one they all shared before.
pub fn chain_title(chain: &str) -> String {
    if chain.is_empty() {
        "the shared chain (before per-node chains)".to_owned()
    } else {
        format!("the chain of node {chain:?}")
    }
}

/// One audit chain, verified: as stored, and its events in order.
pub struct VerifiedChain {
    /// The chain as stored.
    pub log: AuditLog,
    /// Its events, in order.
    pub events: Vec<AuditEvent>,
}

impl AuditCheckError {
    /// `true` when the log or the store is shown to be damaged, truncated or rolled back;
    /// `false` when the check could not be made (a missing key or checkpoint file, a key the
    /// log needs missing from the key file, a wrong path, the bank still running), which is no
    /// verdict on the log.
    pub fn is_broken(&self) -> bool {
        use crate::store::StoreError;
        match self {
            Self::Broken(_) | Self::OtherAuditor { .. } | Self::BehindCheckpoint { .. } => true,
            Self::Checkpoint(e) => matches!(e, CheckpointError::Unreadable(_)),
            Self::Store(e) => matches!(e, StoreError::Damaged(..) | StoreError::TooNew { .. }),
            Self::Setup(_) | Self::MissingKey(_) => false,
            Self::InChain { error, .. } => error.is_broken(),
        }
    }
}

impl core::fmt::Display for AuditCheckError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Setup(e) => f.write_str(e),
            Self::MissingKey(key) => write!(
                f,
                "the audit key file holds no {key}, which this log needs (an epoch begun with \
                 auditor keys needs the `auditor-x25519` line; a log begun before them needs its \
                 legacy first key too, as a bare 64-hex line)"
            ),
            Self::Broken(e) => write!(f, "{e}"),
            Self::OtherAuditor { error, recorded } => write!(
                f,
                "{error}; and the key file's auditor key is not the one this store records \
                 ({recorded}): is it this bank's key file?"
            ),
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
            Self::InChain { chain, error } => write!(f, "{}: {error}", chain_title(chain)),
        }
    }
}

impl std::error::Error for AuditCheckError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Broken(e) | Self::OtherAuditor { error: e, .. } => Some(e),
            Self::Store(e) => Some(e),
            Self::Checkpoint(e) => Some(e),
            Self::InChain { error, .. } => Some(&**error),
            _ => None,
        }
    }
}

/// Reads the auditor's key file ([`AuditorKeys::parse`]: the `auditor-x25519` private key,
/// and for a log begun before auditor keys its legacy first key).
pub fn read_audit_keys(path: &Path) -> Result<AuditorKeys, AuditCheckError> {
    let text = zeroize::Zeroizing::new(
        std::fs::read_to_string(path)
            .map_err(|e| AuditCheckError::Setup(format!("{}: {e}", path.display())))?,
    );
    AuditorKeys::parse(&text).map_err(|e| {
        AuditCheckError::Setup(format!("{}: not an audit key file: {e}", path.display()))
    })
}

fn unreadable(e: LedgerError) -> AuditCheckError {
    tracing::error!(error = %e, "the audit log could not be read");
    AuditCheckError::Broken(VerifyError {
        entry: 0,
        problem: "the store cannot be read (damaged)",
    })
}

/// The bank's id and the auditor public key its store records (a store from before
/// identities has neither: its log is legacy, which needs no id).
fn recorded(ledger: &dyn Ledger) -> Result<(String, Option<String>), AuditCheckError> {
    Ok(ledger
        .identity()
        .map_err(unreadable)?
        .map_or((String::new(), None), |i| (i.id, i.auditor_key)))
}

/// Verifies this store's audit log (a store with one chain; on a shared database, the chain
/// of the node it was opened as) with the auditor's keys, deriving each epoch's first key;
/// returns every event.
pub fn verify_audit(
    ledger: &dyn Ledger,
    keys: &AuditorKeys,
) -> Result<Vec<AuditEvent>, AuditCheckError> {
    let log = ledger.audit_log().map_err(unreadable)?;
    let (bank_id, recorded) = recorded(ledger)?;
    verify_log(&log, keys, &bank_id, recorded.as_ref())
}

/// Verifies every audit chain of the store ([`Ledger::audit_chains`]: one, or one per node on
/// a shared database) with the auditor's one key file; returns each chain with its events, or
/// the first failure, naming its chain when the store keeps chains by name.
pub fn verify_chains(
    ledger: &dyn Ledger,
    keys: &AuditorKeys,
) -> Result<Vec<VerifiedChain>, AuditCheckError> {
    let chains = ledger.audit_chains().map_err(unreadable)?;
    let (bank_id, recorded) = recorded(ledger)?;
    let named = chains.len() > 1 || chains.iter().any(|log| !log.chain.is_empty());
    chains
        .into_iter()
        .map(
            |log| match verify_log(&log, keys, &bank_id, recorded.as_ref()) {
                Ok(events) => Ok(VerifiedChain { log, events }),
                Err(error) if named => Err(AuditCheckError::InChain {
                    chain: log.chain,
                    error: Box::new(error),
                }),
                Err(error) => Err(error),
            },
        )
        .collect()
}

fn verify_log(
    log: &AuditLog,
    keys: &AuditorKeys,
    bank_id: &str,
    recorded: Option<&String>,
) -> Result<Vec<AuditEvent>, AuditCheckError> {
    if let Some(key) = keys.missing_for(&log.epochs) {
        return Err(AuditCheckError::MissingKey(key));
    }
    let held = keys.secret().map(|secret| secret.public().to_hex());
    let other = recorded.filter(|r| held.is_some() && held.as_ref() != Some(*r));
    let label = audit::chain_label(bank_id, &log.chain);
    match (
        audit::verify(keys, &label, &log.epochs, &log.entries, log.head.as_ref()),
        other,
    ) {
        (Ok(events), None) => Ok(events),
        // Every epoch verified under the auditor's key, but the store now names another:
        // epochs begun from here on would be sealed for someone else.
        (Ok(events), Some(_)) => Err(AuditCheckError::Broken(VerifyError {
            entry: events.len() as u64,
            problem: "the store records another auditor key than the one its log is sealed for",
        })),
        (Err(error), Some(recorded)) => Err(AuditCheckError::OtherAuditor {
            error,
            recorded: recorded.clone(),
        }),
        (Err(error), None) => Err(AuditCheckError::Broken(error)),
    }
}

/// Checks the verified `chains` against a checkpoint of the one it names: that chain reaches
/// it, its entry there hashes as the checkpoint says, the bank is the same, the epoch it names
/// is one of the chain's and was being written at its position, and the MAC verifies under
/// that epoch's key there (`K_seq`), derived with the auditor's keys. Returns the chain
/// checked.
pub fn verify_checkpoint<'a>(
    ledger: &dyn Ledger,
    keys: &AuditorKeys,
    chains: &'a [VerifiedChain],
    checkpoint: &Checkpoint,
) -> Result<&'a VerifiedChain, AuditCheckError> {
    let named = chains.len() > 1 || chains.iter().any(|c| !c.log.chain.is_empty());
    let in_chain = |error| {
        if named {
            AuditCheckError::InChain {
                chain: checkpoint.chain.clone(),
                error: Box::new(error),
            }
        } else {
            error
        }
    };
    let Some(chain) = chains.iter().find(|c| c.log.chain == checkpoint.chain) else {
        return Err(in_chain(AuditCheckError::BehindCheckpoint {
            log: 0,
            checkpoint: checkpoint.next_seq,
            problem: "the store holds no chain of the name the checkpoint gives",
        }));
    };
    check_checkpoint(ledger, keys, chain, checkpoint).map_err(in_chain)?;
    Ok(chain)
}

fn check_checkpoint(
    ledger: &dyn Ledger,
    keys: &AuditorKeys,
    chain: &VerifiedChain,
    checkpoint: &Checkpoint,
) -> Result<(), AuditCheckError> {
    let entries = chain.events.len() as u64;
    let behind = |problem| AuditCheckError::BehindCheckpoint {
        log: entries,
        checkpoint: checkpoint.next_seq,
        problem,
    };
    if entries < checkpoint.next_seq {
        return Err(behind("the log is shorter (truncated or rolled back)"));
    }
    let identity = ledger.identity().map_err(unreadable)?;
    if identity.is_none_or(|i| i.id != checkpoint.bank_id) {
        return Err(behind("the checkpoint belongs to another bank"));
    }
    if let Some(last) = checkpoint.next_seq.checked_sub(1) {
        let entry = chain.log.entries.iter().find(|(seq, _)| *seq == last);
        if entry.is_none_or(|(_, e)| protocol::primitives::sha256(&[e]) != checkpoint.last_hash) {
            return Err(behind("the log differs from the one checkpointed"));
        }
    }
    let epoch = checkpoint_epoch(&chain.log.epochs, checkpoint).map_err(behind)?;
    if let Some(key) = keys.missing_for(std::slice::from_ref(&epoch)) {
        return Err(AuditCheckError::MissingKey(key));
    }
    let label = audit::chain_label(&checkpoint.bank_id, &checkpoint.chain);
    let expected = keys
        .key_at(&label, &epoch, checkpoint.next_seq)
        .map_err(behind)?
        .checkpoint_mac(
            &label,
            checkpoint.next_seq,
            checkpoint.epoch,
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

/// The epoch whose key MACs `checkpoint`: the legacy epoch for a checkpoint of format 1, else
/// the exchange epoch it names, which must have begun at or before its position with no other
/// beginning in between.
fn checkpoint_epoch(epochs: &[Epoch], checkpoint: &Checkpoint) -> Result<Epoch, &'static str> {
    let Some(start) = checkpoint.epoch else {
        return match epochs.first() {
            Some(first) if first.kind == EpochKind::Legacy => Ok(*first),
            _ => Err("a checkpoint from before auditor keys, of a log begun with them"),
        };
    };
    let epoch = epochs
        .iter()
        .find(|e| e.start == start)
        .ok_or("the checkpoint names an epoch the log does not hold")?;
    if epoch.kind == EpochKind::Legacy {
        return Err("the checkpoint names the legacy epoch");
    }
    if start > checkpoint.next_seq
        || epochs
            .iter()
            .any(|e| e.start > start && e.start < checkpoint.next_seq)
    {
        return Err("the checkpoint's epoch was not being written at its position");
    }
    Ok(*epoch)
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

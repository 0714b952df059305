//! Terminal operations as data: the [`TerminalOp`] a command asks for and the [`TerminalReply`]
//! it gets (their JSON is the admin socket's wire format), and [`execute`], which runs one on
//! a ledger.

use serde::{Deserialize, Serialize};

use protocol::{BankPin, Cents, TerminalId, TerminalRole, Username};

use crate::ledger::{DepositCeilings, Ledger, TerminalRecord};
use crate::{now_ms, StartError};

use super::error::AdminError;
use super::terminals::{
    add_operator_hashed, add_terminal_with, issue_enrollment_code, revoke_terminal,
};

/// A terminal operation: run on the database directly when the bank is stopped, or through the
/// running bank's admin socket (`<data-dir>/admin/admin.sock`, owner-only) when it holds the
/// database.
#[derive(Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum TerminalOp {
    /// Add a terminal with this label.
    Add {
        /// The label.
        name: String,
        /// Its deposit ceilings; absent: [`DepositCeilings::DEFAULT`].
        #[serde(default)]
        ceilings: Option<DepositCeilings>,
    },
    /// Issue a one-time enrollment code for an ATM terminal with this label.
    AddCode {
        /// The label.
        name: String,
        /// The enrolled terminal's deposit ceilings; absent: [`DepositCeilings::DEFAULT`].
        #[serde(default)]
        ceilings: Option<DepositCeilings>,
    },
    /// List terminals (never keys).
    List,
    /// Revoke a terminal.
    Revoke {
        /// Its id.
        id: String,
    },
    /// Add an operator (the password already hashed by the command) and their console
    /// terminal; answered like `Add`, with the console terminal.
    AddOperator {
        /// The operator's name.
        username: String,
        /// Argon2id PHC string.
        password_hash: String,
    },
}

/// Names the operation and its public fields; never the password hash.
impl core::fmt::Debug for TerminalOp {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Add { name, ceilings } => f
                .debug_struct("Add")
                .field("name", name)
                .field("ceilings", ceilings)
                .finish(),
            Self::AddCode { name, ceilings } => f
                .debug_struct("AddCode")
                .field("name", name)
                .field("ceilings", ceilings)
                .finish(),
            Self::List => f.write_str("List"),
            Self::Revoke { id } => f.debug_struct("Revoke").field("id", id).finish(),
            Self::AddOperator { username, .. } => f
                .debug_struct("AddOperator")
                .field("username", username)
                .finish_non_exhaustive(),
        }
    }
}

/// A terminal as listed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TerminalSummary {
    /// Its id.
    pub id: String,
    /// Its label.
    pub name: String,
    /// Whether it is revoked.
    pub revoked: bool,
    /// ATM or console.
    #[serde(default)]
    pub role: TerminalRole,
    /// Its deposit ceilings.
    #[serde(default)]
    pub ceilings: DepositCeilings,
    /// What it deposited so far this UTC day (counted under a per-day ceiling only).
    #[serde(default)]
    pub deposited_today: Cents,
}

/// The answer to a [`TerminalOp`]. No `Debug` (an added terminal carries its key).
#[derive(Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case", deny_unknown_fields)]
pub enum TerminalReply {
    /// The new terminal's id and key (64 hex), and the bank's pin for its credentials.
    Added {
        /// Its id.
        terminal_id: String,
        /// Its key.
        psk: String,
        /// What it pins of the bank: `<bank id>:<64 hex>` ([`protocol::BankPin::to_text`]).
        bank: String,
    },
    /// A one-time enrollment code, and when it expires (Unix ms).
    CodeIssued {
        /// The code (secret until used).
        code: String,
        /// When it stops enrolling.
        expires_ms: u64,
    },
    /// Every terminal.
    Listed {
        /// The terminals.
        terminals: Vec<TerminalSummary>,
    },
    /// Revoked.
    Revoked,
    /// Refused, with a reason: the refusing bank's error as display text (it crosses a
    /// process boundary; the receiving side wraps it in [`AdminError::Refused`]).
    Failed {
        /// Why, for a person to read.
        error: String,
    },
}

/// What a new terminal pins of the bank in `ledger`: from its identity.
fn pin(ledger: &dyn Ledger) -> Result<BankPin, StartError> {
    ledger
        .identity()?
        .and_then(|identity| identity.pin())
        .ok_or(StartError::Admin(AdminError::NoBankKey))
}

/// Every terminal with its ceilings and today's deposits.
fn list(ledger: &dyn Ledger) -> Result<Vec<TerminalSummary>, crate::ledger::LedgerError> {
    let now = now_ms();
    ledger
        .terminals()?
        .into_iter()
        .map(|t| {
            Ok(TerminalSummary {
                deposited_today: ledger.deposited_today(&t.id, now)?,
                id: t.id.to_string(),
                name: t.name,
                revoked: t.revoked,
                role: t.role,
                ceilings: t.ceilings,
            })
        })
        .collect()
}

/// Runs `op` on `ledger`.
pub fn execute(ledger: &dyn Ledger, op: TerminalOp) -> TerminalReply {
    let failed = |e: StartError| TerminalReply::Failed {
        error: e.to_string(),
    };
    let added = |t: TerminalRecord, bank: BankPin| TerminalReply::Added {
        terminal_id: t.id.to_string(),
        psk: t.psk.to_hex().to_string(),
        bank: bank.to_text(),
    };
    match op {
        TerminalOp::Add { name, ceilings } => {
            let ceilings = ceilings.unwrap_or(DepositCeilings::DEFAULT);
            let reply = pin(ledger).and_then(|bank| {
                add_terminal_with(ledger, &name, ceilings).map(|t| added(t, bank))
            });
            match reply {
                Ok(reply) => reply,
                Err(e) => failed(e),
            }
        }
        TerminalOp::AddCode { name, ceilings } => {
            let ceilings = ceilings.unwrap_or(DepositCeilings::DEFAULT);
            match issue_enrollment_code(ledger, &name, TerminalRole::Atm, ceilings) {
                Ok((code, expires_ms)) => TerminalReply::CodeIssued {
                    code: code.to_text().to_string(),
                    expires_ms,
                },
                Err(e) => failed(e),
            }
        }
        TerminalOp::List => match list(ledger) {
            Ok(terminals) => TerminalReply::Listed { terminals },
            Err(e) => failed(e.into()),
        },
        TerminalOp::Revoke { id } => match TerminalId::new(id.as_str()) {
            None => failed(AdminError::NotTerminalId(id).into()),
            Some(id) => match revoke_terminal(ledger, &id) {
                Ok(()) => TerminalReply::Revoked,
                Err(e) => failed(e),
            },
        },
        TerminalOp::AddOperator {
            username,
            password_hash,
        } => {
            let reply = pin(ledger).and_then(|bank| {
                let name = Username::new(username).ok_or(AdminError::OperatorName)?;
                add_operator_hashed(ledger, &name, password_hash).map(|t| added(t, bank))
            });
            match reply {
                Ok(reply) => reply,
                Err(e) => failed(e),
            }
        }
    }
}

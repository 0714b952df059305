//! What every request rule shares: the session's context (terminal, role, who is logged in),
//! what the session does after answering, and the helpers that run ledger calls and turn
//! their failures into refusals.

use std::sync::Arc;

use protocol::{
    AccountNumber, ChannelBinding, ErrorCode, Response, TerminalId, TerminalRole, Username,
};

use crate::audit::AuditEvent;
use crate::ledger::{Ledger, LedgerError};
use crate::passwords::HashError;
use crate::{now_ms, Shared};

/// Who is logged in on a session.
#[derive(Clone)]
pub(super) struct LoggedIn {
    pub(super) username: Username,
    pub(super) account: AccountNumber,
}

/// A digest of the credentials a login was made with (the stored password hash, card hash and
/// card public key), so a session can tell, without keeping them, that they were replaced since.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// Of a user's stored credentials.
    pub(super) fn of_user(user: &crate::ledger::UserRecord) -> Self {
        Self(protocol::primitives::sha256(&[
            b"user\0",
            user.password_hash.as_deref().unwrap_or("").as_bytes(),
            b"\0",
            user.card_sha256.as_deref().unwrap_or("").as_bytes(),
            b"\0",
            user.card_public.as_deref().unwrap_or("").as_bytes(),
        ]))
    }

    /// Of an operator's stored password hash.
    pub(super) fn of_operator(password_hash: &str) -> Self {
        Self(protocol::primitives::sha256(&[
            b"operator\0",
            password_hash.as_bytes(),
        ]))
    }
}

/// Per-session state the rules need.
pub(crate) struct SessionCtx {
    pub(crate) conn: u64,
    pub(crate) terminal: TerminalId,
    /// The terminal's role: which requests this session may make.
    pub(crate) role: TerminalRole,
    pub(super) user: Option<LoggedIn>,
    /// The operator logged in on a console session.
    pub(crate) operator: Option<Username>,
    /// The credentials the user or operator logged in with, as they were stored then.
    pub(super) fingerprint: Option<Fingerprint>,
    /// The session's channel binding (§17): what a signed card must have signed.
    pub(super) binding: ChannelBinding,
}

impl SessionCtx {
    pub(crate) fn new(
        conn: u64,
        terminal: TerminalId,
        role: TerminalRole,
        binding: ChannelBinding,
    ) -> Self {
        Self {
            binding,
            conn,
            terminal,
            role,
            user: None,
            operator: None,
            fingerprint: None,
        }
    }

    /// An audit event stamped with this session's terminal, connection and user (or
    /// operator, marked as such in `detail`).
    pub(crate) fn event(&self, action: &str) -> AuditEvent {
        let mut event = AuditEvent::new(action, now_ms());
        event.terminal = Some(self.terminal.to_string());
        event.conn = Some(self.conn);
        if let Some(user) = &self.user {
            event.user = Some(user.username.to_string());
            event.account = Some(user.account.to_string());
        }
        if let Some(operator) = &self.operator {
            event.user = Some(operator.to_string());
            event.detail = Some("operator".into());
        }
        event
    }

    /// Who is logged in: the user, or the operator on a console.
    pub(crate) fn username(&self) -> Option<&str> {
        self.user
            .as_ref()
            .map(|u| u.username.as_str())
            .or(self.operator.as_ref().map(Username::as_str))
    }
}

/// What the session does after answering.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum After {
    Continue,
    Close,
}

pub(super) fn refuse(code: ErrorCode) -> Response {
    Response::Error { code }
}

/// Runs a ledger call on the blocking pool (an I/O failure is reported as a storage fault).
pub(crate) async fn ledger<T: Send + 'static>(
    shared: &Arc<Shared>,
    f: impl FnOnce(&dyn Ledger) -> Result<T, LedgerError> + Send + 'static,
) -> Result<T, LedgerError> {
    let ledger = shared.ledger.clone();
    let result = crate::ledger::blocking(move || f(&*ledger)).await;
    if let Err(e) = &result {
        shared.faults.report(e);
    }
    result
}

/// Awaits a ledger call the engine answers by itself (see [`Ledger::apply_durably`]); an I/O
/// failure is reported as a storage fault, as [`ledger`]'s are.
pub(crate) async fn answered<T>(
    shared: &Arc<Shared>,
    call: impl std::future::Future<Output = Result<T, LedgerError>>,
) -> Result<T, LedgerError> {
    let result = call.await;
    if let Err(e) = &result {
        shared.faults.report(e);
    }
    result
}

/// Maps a ledger refusal to its error code; storage failures become the generic `Internal`
/// (the detail goes to the log only).
pub(super) fn refusal(e: &LedgerError) -> Response {
    refuse(refusal_code(e).unwrap_or_else(|| {
        tracing::error!(error = %e, "ledger failure");
        ErrorCode::Internal
    }))
}

/// The code of a ledger refusal by the bank's rules; `None` for a failure of the storage.
pub(super) fn refusal_code(e: &LedgerError) -> Option<ErrorCode> {
    match e {
        LedgerError::NameTaken => Some(ErrorCode::NameTaken),
        LedgerError::InsufficientFunds => Some(ErrorCode::InsufficientFunds),
        LedgerError::LimitExceeded => Some(ErrorCode::LimitExceeded),
        LedgerError::OverCeiling(_) => Some(ErrorCode::DepositLimit),
        LedgerError::TxIdReused => Some(ErrorCode::TxIdReused),
        LedgerError::NotFound
        | LedgerError::InUse(_)
        | LedgerError::Storage(_)
        | LedgerError::Io(_)
        | LedgerError::Database(_) => None,
    }
}

pub(super) fn hash_refusal(e: HashError) -> Response {
    match e {
        HashError::Busy => {
            tracing::warn!("password workers busy");
            refuse(ErrorCode::Busy)
        }
        HashError::Internal => {
            tracing::error!("password hashing failed");
            refuse(ErrorCode::Internal)
        }
    }
}

/// Waits until everything committed is durable (the group flush), a failure reported as a
/// storage fault.
pub(crate) async fn flushed(shared: &Arc<Shared>) -> Result<(), LedgerError> {
    shared
        .ledger
        .durable()
        .await
        .inspect_err(|e| shared.faults.report(e))
}

/// [`flushed`]; `Err` carries the reply to send instead.
pub(super) async fn durable(shared: &Arc<Shared>) -> Result<(), Response> {
    flushed(shared).await.map_err(|e| refusal(&e))
}

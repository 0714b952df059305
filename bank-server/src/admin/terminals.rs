//! Terminals and operators on a ledger: add and revoke a terminal, issue a one-time enrollment
//! code, check and hash an operator's credentials, add an operator with their console terminal;
//! each change audited and synced.

use protocol::{Password, TerminalId, TerminalRole, Username};

use crate::audit::AuditEvent;
use crate::ledger::{
    DepositCeilings, Ledger, LedgerError, OperatorRecord, PendingEnrollment, TerminalRecord,
};
use crate::passwords::{hash_password, Argon2Params};
use crate::terminals::{new_terminal, new_terminal_with_role};
use crate::{now_ms, StartError};

use super::error::AdminError;

/// Shortest operator password accepted: the same policy as customers'
/// ([`protocol::MIN_PASSWORD_CHARS`]).
pub const MIN_OPERATOR_PASSWORD: usize = protocol::MIN_PASSWORD_CHARS;

fn terminal_event(action: &str, id: &TerminalId) -> AuditEvent {
    let mut event = AuditEvent::new(action, now_ms());
    event.terminal = Some(id.to_string());
    event
}

/// Adds a terminal named `name` with the default ceilings ([`DepositCeilings::DEFAULT`]); the
/// caller hands its key to the ATM.
pub fn add_terminal(ledger: &dyn Ledger, name: &str) -> Result<TerminalRecord, StartError> {
    add_terminal_with(ledger, name, DepositCeilings::DEFAULT)
}

/// Adds a terminal named `name` under `ceilings` (audited with them).
pub fn add_terminal_with(
    ledger: &dyn Ledger,
    name: &str,
    ceilings: DepositCeilings,
) -> Result<TerminalRecord, StartError> {
    let terminal = new_terminal(name, now_ms(), ceilings);
    let mut event = terminal_event("terminal_added", &terminal.id);
    event.detail = Some(ceilings.to_string());
    ledger.add_terminal(&terminal, &event)?;
    ledger.sync()?;
    Ok(terminal)
}

/// How long an enrollment code enrolls: 10 minutes from its issue.
pub const ENROLLMENT_CODE_LIFETIME_MS: u64 = 10 * 60 * 1000;

/// Issues a one-time enrollment code for a terminal named `name` with `role`, valid for
/// [`ENROLLMENT_CODE_LIFETIME_MS`]; the caller hands the code over (it is stored only as its
/// handshake key, and never logged). Returns the code and when it expires (Unix ms).
pub fn issue_enrollment_code(
    ledger: &dyn Ledger,
    name: &str,
    role: TerminalRole,
    ceilings: DepositCeilings,
) -> Result<(protocol::enrollment::EnrollmentCode, u64), StartError> {
    let code = protocol::enrollment::EnrollmentCode::random(&mut rand_core::OsRng);
    let now = now_ms();
    let pending = PendingEnrollment {
        code: code.id().clone(),
        name: name.to_owned(),
        key: code.psk(),
        role,
        ceilings,
        created_ms: now,
        expires_ms: now + ENROLLMENT_CODE_LIFETIME_MS,
    };
    let mut event = terminal_event("enrollment_code_issued", code.id());
    event.detail = Some(format!(
        "for {name:?}, {ceilings}, expires at {}",
        pending.expires_ms
    ));
    ledger.add_enrollment(&pending, &event)?;
    ledger.sync()?;
    Ok((code, pending.expires_ms))
}

/// Revokes a terminal; its next handshake fails like a wrong key.
pub fn revoke_terminal(ledger: &dyn Ledger, id: &TerminalId) -> Result<(), StartError> {
    match ledger.revoke_terminal(id, &terminal_event("terminal_revoked", id)) {
        Err(LedgerError::NotFound) => return Err(AdminError::NoTerminal(id.clone()).into()),
        other => other?,
    }
    ledger.sync()?;
    Ok(())
}

/// Checks an operator name and password against the rules (a valid username; a password of
/// at least [`MIN_OPERATOR_PASSWORD`] characters) and hashes the password with Argon2id, keyed
/// with `pepper` when given (see [`crate::passwords`]).
pub fn operator_credentials(
    argon2: Argon2Params,
    username: &str,
    password: &str,
    pepper: Option<&crate::passwords::Pepper>,
) -> Result<(Username, String), StartError> {
    let username = Username::new(username).ok_or(AdminError::OperatorName)?;
    let password = Password::new(password)
        .filter(|p| p.expose().chars().count() >= MIN_OPERATOR_PASSWORD)
        .ok_or(AdminError::OperatorPassword)?;
    let hash = hash_password(argon2, &password, pepper).map_err(|_| StartError::Hash)?;
    Ok((username, hash))
}

/// Adds an operator (with an already computed Argon2id hash) and a console terminal for them;
/// returns the console terminal, whose key goes to the operator's browser as a console link.
pub fn add_operator_hashed(
    ledger: &dyn Ledger,
    username: &Username,
    password_hash: String,
) -> Result<TerminalRecord, StartError> {
    let phc_ok =
        argon2::PasswordHash::new(&password_hash).is_ok_and(|h| h.algorithm.as_str() == "argon2id");
    if !phc_ok {
        return Err(AdminError::NotArgon2id.into());
    }
    let now = now_ms();
    let console = new_terminal_with_role(
        &format!("console of {username}"),
        now,
        TerminalRole::Console,
    );
    let operator = OperatorRecord {
        username: username.clone(),
        password_hash,
        created_ms: now,
    };
    let mut event = terminal_event("operator_added", &console.id);
    event.user = Some(username.to_string());
    match ledger.add_operator(&operator, &console, &event) {
        Err(LedgerError::NameTaken) => {
            return Err(AdminError::OperatorExists(username.clone()).into())
        }
        other => other?,
    }
    ledger.sync()?;
    Ok(console)
}

/// Creates an operator named `username` with `password` (see [`operator_credentials`]; the
/// hash is unkeyed: the library call has no pepper, `bank-server operator add` has) and their
/// console terminal, which it returns.
pub fn add_operator(
    ledger: &dyn Ledger,
    argon2: &Argon2Params,
    username: &str,
    password: &str,
) -> Result<TerminalRecord, StartError> {
    let (username, hash) = operator_credentials(*argon2, username, password, None)?;
    add_operator_hashed(ledger, &username, hash)
}

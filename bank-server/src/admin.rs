//! Bank administration: terminals and operators (on the stopped bank's database or through the
//! running bank's admin socket) and the auditor's commands (verify, show). The command-line
//! subcommands call these.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use protocol::{Password, TerminalId, TerminalRole, Username};

use crate::audit::{self, AuditEvent, AuditKey, VerifyError};
use crate::checkpoint::{Checkpoint, CheckpointError};
use crate::ledger::{Ledger, LedgerError, OperatorRecord, TerminalRecord};
use crate::passwords::{hash_password, Argon2Params};
use crate::store::{self, StoreError};
use crate::terminals::{new_terminal, new_terminal_with_role};
use crate::{now_ms, StartError};

/// Shortest operator password accepted: the same policy as customers'
/// ([`protocol::MIN_PASSWORD_CHARS`]).
pub const MIN_OPERATOR_PASSWORD: usize = protocol::MIN_PASSWORD_CHARS;

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

/// Checks an operator name and password against the rules (a valid username; a password of
/// at least [`MIN_OPERATOR_PASSWORD`] characters) and hashes the password with Argon2id.
pub fn operator_credentials(
    argon2: Argon2Params,
    username: &str,
    password: &str,
) -> Result<(Username, String), StartError> {
    let username = Username::new(username).ok_or_else(|| {
        StartError::Io(
            "an operator name is 1 to 250 characters of lowercase letters, digits, _ - .".into(),
        )
    })?;
    let password = Password::new(password)
        .filter(|p| p.expose().chars().count() >= MIN_OPERATOR_PASSWORD)
        .ok_or_else(|| {
            StartError::Io(format!(
                "an operator password has {MIN_OPERATOR_PASSWORD} to {} characters",
                Password::MAX_LEN
            ))
        })?;
    let hash = hash_password(argon2, &password).map_err(|_| StartError::Hash)?;
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
        return Err(StartError::Io("not an Argon2id password hash".into()));
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
            return Err(StartError::Io(format!(
                "operator {username} already exists"
            )))
        }
        other => other?,
    }
    ledger.sync()?;
    Ok(console)
}

/// Creates an operator named `username` with `password` (see [`operator_credentials`]) and
/// their console terminal, which it returns.
pub fn add_operator(
    ledger: &dyn Ledger,
    argon2: &Argon2Params,
    username: &str,
    password: &str,
) -> Result<TerminalRecord, StartError> {
    let (username, hash) = operator_credentials(*argon2, username, password)?;
    add_operator_hashed(ledger, &username, hash)
}

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
            Self::Add { name } => f.debug_struct("Add").field("name", name).finish(),
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
}

/// The answer to a [`TerminalOp`]. No `Debug` (an added terminal carries its key).
#[derive(Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case", deny_unknown_fields)]
pub enum TerminalReply {
    /// The new terminal's id and key (64 hex).
    Added {
        /// Its id.
        terminal_id: String,
        /// Its key.
        psk: String,
    },
    /// Every terminal.
    Listed {
        /// The terminals.
        terminals: Vec<TerminalSummary>,
    },
    /// Revoked.
    Revoked,
    /// Refused, with a reason.
    Failed {
        /// Why.
        error: String,
    },
}

/// Runs `op` on `ledger`.
pub fn execute(ledger: &dyn Ledger, op: TerminalOp) -> TerminalReply {
    let failed = |e: StartError| TerminalReply::Failed {
        error: e.to_string(),
    };
    match op {
        TerminalOp::Add { name } => match add_terminal(ledger, &name) {
            Ok(t) => TerminalReply::Added {
                terminal_id: t.id.to_string(),
                psk: t.psk.to_hex().to_string(),
            },
            Err(e) => failed(e),
        },
        TerminalOp::List => match ledger.terminals() {
            Ok(list) => TerminalReply::Listed {
                terminals: list
                    .into_iter()
                    .map(|t| TerminalSummary {
                        id: t.id.to_string(),
                        name: t.name.clone(),
                        revoked: t.revoked,
                        role: t.role,
                    })
                    .collect(),
            },
            Err(e) => failed(e.into()),
        },
        TerminalOp::Revoke { id } => match TerminalId::new(id) {
            None => failed(StartError::Io("not a terminal id".into())),
            Some(id) => match revoke_terminal(ledger, &id) {
                Ok(()) => TerminalReply::Revoked,
                Err(e) => failed(e),
            },
        },
        TerminalOp::AddOperator {
            username,
            password_hash,
        } => {
            let added = Username::new(username)
                .ok_or_else(|| StartError::Io("not an operator name".into()))
                .and_then(|name| add_operator_hashed(ledger, &name, password_hash));
            match added {
                Ok(t) => TerminalReply::Added {
                    terminal_id: t.id.to_string(),
                    psk: t.psk.to_hex().to_string(),
                },
                Err(e) => failed(e),
            }
        }
    }
}

/// Where the running bank listens for terminal operations.
pub fn admin_socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join("admin").join("admin.sock")
}

/// Runs `op` on the bank in `data_dir`: directly if it is stopped (its store checked against
/// `checkpoint_file`, which records the change), else through its socket.
pub fn terminal_op(
    data_dir: &Path,
    checkpoint_file: &Path,
    cache_bytes: u64,
    op: TerminalOp,
) -> Result<TerminalReply, StartError> {
    match store::open_checked(data_dir, checkpoint_file, cache_bytes, false) {
        Ok(opened) => Ok(execute(&opened.ledger, op)),
        Err(StoreError::InUse(_)) => remote(data_dir, &op),
        Err(e) => Err(e.into()),
    }
}

#[cfg(unix)]
fn remote(data_dir: &Path, op: &TerminalOp) -> Result<TerminalReply, StartError> {
    use std::io::{BufRead as _, Read as _, Write as _};
    let path = admin_socket_path(data_dir);
    let fail = |e: std::io::Error| {
        StartError::Io(format!(
            "the running bank's admin socket {}: {e}",
            path.display()
        ))
    };
    let mut stream = std::os::unix::net::UnixStream::connect(&path).map_err(fail)?;
    stream.set_read_timeout(Some(ADMIN_TIMEOUT)).map_err(fail)?;
    stream
        .set_write_timeout(Some(ADMIN_TIMEOUT))
        .map_err(fail)?;
    let mut request = serde_json::to_string(op).expect("ops serialize");
    request.push('\n');
    stream.write_all(request.as_bytes()).map_err(fail)?;
    let mut line = zeroize::Zeroizing::new(String::new());
    std::io::BufReader::new(stream.take(MAX_ADMIN_LINE))
        .read_line(&mut line)
        .map_err(fail)?;
    serde_json::from_str(&line)
        .map_err(|_| StartError::Io("the running bank sent a bad answer".into()))
}

#[cfg(not(unix))]
fn remote(_: &Path, _: &TerminalOp) -> Result<TerminalReply, StartError> {
    Err(StartError::Io("the bank is running; stop it first".into()))
}

const ADMIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
const MAX_ADMIN_LINE: u64 = 1 << 20;

/// Serves terminal operations on the admin socket until shutdown. The socket lives in a
/// directory only the bank's user can enter (0700).
#[cfg(unix)]
pub(crate) async fn serve_socket(shared: std::sync::Arc<crate::Shared>) {
    use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
    let path = admin_socket_path(&shared.config.data_dir);
    let dir = path
        .parent()
        .expect("the socket is inside a directory")
        .to_owned();
    let prepared = std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .and_then(|()| std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)));
    // The database lock makes this the only bank on this directory: a socket left over from a
    // crash is stale.
    let _ = std::fs::remove_file(&path);
    let listener = match prepared.and_then(|()| tokio::net::UnixListener::bind(&path)) {
        Ok(listener) => listener,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "no admin socket; terminal commands need the bank stopped");
            return;
        }
    };
    loop {
        let accepted = tokio::select! {
            () = shared.shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        if let Ok((stream, _)) = accepted {
            // Tracked, so the bank's shutdown waits for it (it holds the database).
            shared
                .tracker
                .spawn(admin_connection(shared.clone(), stream));
        }
    }
    let _ = std::fs::remove_file(&path);
}

#[cfg(not(unix))]
pub(crate) async fn serve_socket(_: std::sync::Arc<crate::Shared>) {}

#[cfg(unix)]
async fn admin_connection(shared: std::sync::Arc<crate::Shared>, stream: tokio::net::UnixStream) {
    use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _};
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    let mut reader = tokio::io::BufReader::new(read.take(4096));
    if !matches!(
        tokio::time::timeout(ADMIN_TIMEOUT, reader.read_line(&mut line)).await,
        Ok(Ok(_))
    ) {
        return;
    }
    let reply = match serde_json::from_str::<TerminalOp>(&line) {
        Ok(op) => {
            tracing::info!(?op, "admin request");
            let ledger = shared.ledger.clone();
            tokio::task::spawn_blocking(move || execute(&*ledger, op))
                .await
                .unwrap_or_else(|_| TerminalReply::Failed {
                    error: "internal error".into(),
                })
        }
        Err(_) => TerminalReply::Failed {
            error: "not a terminal operation".into(),
        },
    };
    let mut text =
        zeroize::Zeroizing::new(serde_json::to_string(&reply).expect("replies serialize"));
    text.push('\n');
    let _ = tokio::time::timeout(ADMIN_TIMEOUT, write.write_all(text.as_bytes())).await;
}

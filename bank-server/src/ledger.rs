//! The storage contract the bank logic uses: the `Ledger` trait and its plain-data types (no
//! storage engine types leak through it).
//!
//! The bank decides (the rules in `posting` and `rules/`); an engine stores a decided change
//! atomically and makes it durable. What several bank nodes on one database must share, and
//! where the contract carries it:
//!
//! | State | In the contract | On PostgreSQL (`pg_ledger`), several nodes |
//! |---|---|---|
//! | balances, history, txids, users, terminals, operators, identity | the data methods | shared: it is the data |
//! | the audit chain | the data methods, on this node's chain; [`Ledger::audit_chains`] reads every chain | one chain per node (`--node-name`), held by one running node at a time; the shared chain of databases from before per-node chains is kept, closed |
//! | revocations, credential replacements | [`Ledger::revocations`], [`Ledger::credential_changes`] (counters a session compares) | shared counters in the database, read by each node every 250 ms |
//! | failed-login throttles | [`Ledger::throttle`], [`Ledger::update_throttle`] | shared; the attempts *in flight* (`attempts.rs`) stay per node |
//! | the openings bucket (`register`, `open_card_account` per terminal) | [`Ledger::update_opening`] (the arithmetic is `openings.rs`'s); an engine that keeps none (sled) leaves it to the bank's memory, forgotten at restart | shared: one row per terminal, updated in one transaction |
//! | deposit ceilings per terminal | [`TerminalRecord::ceilings`]; the day's deposits per terminal are checked and moved in the deposit's own commit ([`Ledger::apply`], [`Ledger::open_account`]), read by [`Ledger::deposited_today`] | shared |
//! | console totals | [`Ledger::totals`] | counted from the tables when asked: the whole bank |
//! | checkpoints | [`Ledger::on_durable`] (told the chain's tip after each flush) | one checkpoint file per node |
//! | the audit chain's evolving key | not stored: [`Ledger::chain_tip`], in the writing process's memory | each node its own epochs |
//! | live sessions | each node's registry (`live.rs`); [`Ledger::publish_sessions`], [`Ledger::other_sessions`] carry them to the other nodes | each node publishes its own (a row per node, with a heartbeat), and lists every live node's |
//! | revoked terminals' open sessions | [`Ledger::revocations`] moving: the bank then closes them (`revoker.rs`) | each node closes its own within a second |
//! | the chain-status cache | not in the contract: per node (`Shared`) | per node |

use core::fmt;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use protocol::{
    AccountNumber, Cents, FullName, HistoryEntry, Psk, TerminalId, TerminalRole, TxId, TxKind,
    Username,
};
use serde::{Deserialize, Serialize};

use crate::audit::{AuditEvent, ChainHead, ChainTip, Epoch};

/// A stored user and their account. No `Debug` (holds the password hash).
#[derive(Clone, Serialize, Deserialize)]
pub struct UserRecord {
    /// Login name (also the BIBIFI account name).
    pub username: Username,
    /// Display name.
    pub full_name: FullName,
    /// The user's account.
    pub account: AccountNumber,
    /// Argon2id PHC string; `None` for card-only accounts.
    pub password_hash: Option<String>,
    /// SHA-256 of a legacy card's secret (hex); `None` for password accounts and signed cards.
    pub card_sha256: Option<String>,
    /// A signed card's Ed25519 public key (hex, §17); `None` for password accounts and legacy
    /// cards. Absent from records written before signed cards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card_public: Option<String>,
    /// The transaction id that opened a card account (a retry of it gets the same answer).
    pub open_txid: Option<TxId>,
}

/// Runs `f` on tokio's blocking pool (a task that failed is a storage failure).
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, LedgerError> + Send + 'static,
) -> Result<T, LedgerError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(LedgerError::Storage(format!("ledger task failed: {e}"))))
}

/// Milliseconds in a UTC day: a terminal's day is `now_ms / DAY_MS`.
pub const DAY_MS: u64 = 86_400_000;

/// A terminal's deposit ceilings, set when it is enrolled (`None`: no ceiling). An opening
/// balance counts as a deposit; withdrawals free nothing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DepositCeilings {
    /// The largest single deposit.
    pub per_deposit: Option<Cents>,
    /// The most deposited in one UTC day (00:00 to 24:00 UTC).
    pub per_day: Option<Cents>,
}

impl DepositCeilings {
    /// No ceiling: the BIBIFI bank's terminal, consoles (which cannot deposit).
    pub const NONE: Self = Self {
        per_deposit: None,
        per_day: None,
    };

    /// What a terminal enrolled with `bank-server` gets unless told otherwise: 2,000.00 per
    /// deposit and 10,000.00 per UTC day, so a stolen terminal key mints at most that much a
    /// day (and shows in the audit log as it tries), while an ATM's customers are not bothered.
    pub const DEFAULT: Self = Self {
        per_deposit: Some(Cents(200_000)),
        per_day: Some(Cents(1_000_000)),
    };
}

impl fmt::Display for DepositCeilings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |c: Option<Cents>| c.map_or_else(|| "none".to_owned(), |c| c.to_string());
        write!(
            f,
            "max deposit {}, max per day {}",
            show(self.per_deposit),
            show(self.per_day)
        )
    }
}

/// Which ceiling a deposit would cross, with the figures for the audit log and the operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ceiling {
    /// The deposit alone is above the terminal's largest deposit.
    PerDeposit {
        /// The ceiling.
        ceiling: Cents,
    },
    /// The deposit would take the terminal's day over its ceiling.
    PerDay {
        /// The ceiling.
        ceiling: Cents,
        /// What the terminal had deposited that UTC day before this one.
        deposited: Cents,
    },
}

impl fmt::Display for Ceiling {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PerDeposit { ceiling } => {
                write!(f, "over the terminal's ceiling of {ceiling} per deposit")
            }
            Self::PerDay { ceiling, deposited } => write!(
                f,
                "over the terminal's ceiling of {ceiling} per day ({deposited} deposited today)"
            ),
        }
    }
}

/// What one terminal deposited on one UTC day, as the engine keeps it (one record per
/// terminal, replaced when a new day starts).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TerminalDay {
    /// The UTC day (`time_ms / DAY_MS`).
    pub day: u64,
    /// Deposits and opening balances that day.
    pub deposited: Cents,
}

impl TerminalDay {
    /// What was deposited on the day holding `now_ms` (zero if the record is of another day).
    pub fn on(self, now_ms: u64) -> Cents {
        if self.day == now_ms / DAY_MS {
            self.deposited
        } else {
            Cents::ZERO
        }
    }
}

/// What [`Ledger::open_account`] creates.
pub struct NewAccount {
    /// Login name.
    pub username: Username,
    /// Display name.
    pub full_name: FullName,
    /// Argon2id PHC string, for password accounts.
    pub password_hash: Option<String>,
    /// SHA-256 of the card secret (hex), for legacy card accounts.
    pub card_sha256: Option<String>,
    /// The card's Ed25519 public key (hex), for signed card accounts.
    pub card_public: Option<String>,
    /// Opening deposit and its transaction id, for card accounts.
    pub opening: Option<(TxId, Cents)>,
    /// The terminal the request came from (the session's, never a request field): the
    /// opening balance counts against its deposit ceilings. `None` only for the bank's own
    /// tools and tests (no ceiling applies).
    pub terminal: Option<TerminalId>,
}

/// A deposit or withdrawal to apply.
#[derive(Clone, Debug)]
pub struct Movement {
    /// [`TxKind::Deposit`] or [`TxKind::Withdraw`].
    pub kind: TxKind,
    /// The client's transaction id.
    pub txid: TxId,
    /// How much (> 0, checked by the caller).
    pub amount: Cents,
    /// The terminal the request came from (the session's, never a request field): a deposit
    /// counts against its ceilings. `None` only for the bank's own tools and tests (no
    /// ceiling applies).
    pub terminal: Option<TerminalId>,
}

/// The outcome of [`Ledger::apply`].
#[derive(Clone, Debug)]
pub struct Applied {
    /// The transaction as recorded.
    pub entry: HistoryEntry,
    /// `true` when the transaction id had already been applied and nothing changed now.
    pub replay: bool,
}

/// A terminal (ATM) allowed to connect. No `Debug` (holds the PSK).
#[derive(Clone)]
pub struct TerminalRecord {
    /// Public id.
    pub id: TerminalId,
    /// Free-text label.
    pub name: String,
    /// The pre-shared key.
    pub psk: Psk,
    /// Revoked terminals cannot complete a handshake.
    pub revoked: bool,
    /// When it was added (Unix ms).
    pub created_ms: u64,
    /// An ATM or an operator's console.
    pub role: TerminalRole,
    /// Its deposit ceilings, set when it was enrolled.
    pub ceilings: DepositCeilings,
}

/// A one-time enrollment code waiting to be used: what the bank keeps of it is its id and the
/// key its handshake runs on, never the code. No `Debug` (holds the key).
#[derive(Clone)]
pub struct PendingEnrollment {
    /// The code's public id (`e-…`).
    pub code: TerminalId,
    /// The label the enrolled terminal gets.
    pub name: String,
    /// The code's handshake key ([`protocol::enrollment::EnrollmentCode::psk`]).
    pub key: Psk,
    /// What the enrolled terminal will be.
    pub role: TerminalRole,
    /// The enrolled terminal's deposit ceilings.
    pub ceilings: DepositCeilings,
    /// When it was issued (Unix ms).
    pub created_ms: u64,
    /// After this (Unix ms) the code enrolls nothing.
    pub expires_ms: u64,
}

/// A credential that replaces a user's own of the same kind; the old one then logs nobody in.
pub enum NewCredential {
    /// An Argon2id PHC string for the password.
    PasswordHash(String),
    /// SHA-256 of a legacy card's secret (hex); ends a signed card the user had.
    CardSha256(String),
    /// A signed card's public key (hex); ends the card the user had, legacy or signed.
    CardPublic(String),
}

impl NewCredential {
    /// Puts this credential into `user` (a card replaces the card, whichever kind each is:
    /// one card per user).
    pub fn apply_to(&self, user: &mut UserRecord) {
        match self {
            Self::PasswordHash(hash) => user.password_hash = Some(hash.clone()),
            Self::CardSha256(card) => {
                user.card_sha256 = Some(card.clone());
                user.card_public = None;
            }
            Self::CardPublic(public) => {
                user.card_sha256 = None;
                user.card_public = Some(public.clone());
            }
        }
    }
}

/// A bank operator (console user). No `Debug` (holds the password hash).
#[derive(Clone, Serialize, Deserialize)]
pub struct OperatorRecord {
    /// Login name (a separate namespace from customers').
    pub username: Username,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// When it was created (Unix ms).
    pub created_ms: u64,
}

/// The bank at a glance, for the console.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// How many accounts exist.
    pub accounts: u64,
    /// The sum of every balance, in cents.
    pub deposits_cents: u128,
    /// Transactions committed at or after the `day_start_ms` asked for.
    pub transactions_today: u64,
    /// Transactions per minute, oldest first, the minute holding `now_ms` last.
    pub per_minute: Vec<u32>,
}

/// The audit entries appended while this ledger has been open, newest first.
#[derive(Clone, Debug, Default)]
pub struct RecentAudit {
    /// How many entries the whole log holds.
    pub total: u64,
    /// `(sequence number, event)`, newest first.
    pub entries: Vec<(u64, AuditEvent)>,
}

/// Who a store belongs to: written once, when the bank is created, in the same commit as the
/// start of its audit log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BankIdentity {
    /// A random id (32 hex digits), also written into every checkpoint.
    pub id: String,
    /// When the bank was created (Unix ms).
    pub created_ms: u64,
    /// The store's format version; a binary refuses a store newer than it knows.
    pub format: u32,
    /// The bank's static public key (64 lowercase hex), which terminals pin (protocol v2);
    /// its private key lives in the bank key file, outside the store. `None` in a store made
    /// before protocol v2, until its first start records one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bank_key: Option<String>,
    /// The auditor's X25519 public key (64 lowercase hex): every audit epoch's first key is
    /// derived with it, and only the auditor's private key derives it again. `None` in a store
    /// made before auditor keys, until its first start records one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auditor_key: Option<String>,
}

impl BankIdentity {
    /// What terminals pin of this bank: its id and static public key (`None` before one is
    /// recorded, or if the stored one is not a usable key).
    pub fn pin(&self) -> Option<protocol::BankPin> {
        protocol::BankPin::from_parts(&self.id, self.bank_key.as_deref()?)
    }
}

/// Where the audit chain stands: how many entries it holds and the hash of the last one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChainPosition {
    /// Entries written (the sequence number of the next one).
    pub next_seq: u64,
    /// SHA-256 of the last entry, all zero before the first.
    pub last_hash: [u8; 32],
}

/// One terminal's openings bucket as an engine stores it; what it means, and how a request
/// moves it, is the bank's (`openings.rs`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpeningBucket {
    /// When the bucket is next full again, Unix ms (GCRA's theoretical arrival time).
    pub full_at_ms: u64,
    /// Whether the last answer was a refusal.
    pub refusing: bool,
}

/// What one node publishes of its open sessions for the other nodes' consoles.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeSessions {
    /// How many sessions the node has open.
    pub total: u64,
    /// The newest of them, newest first (each names the node).
    pub sessions: Vec<protocol::console::LiveSession>,
}

/// Failed-login bookkeeping for one account or terminal.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThrottleState {
    /// Failures since the counter was last reset.
    pub failures: u32,
    /// When the last failure happened (Unix ms).
    pub last_failure_ms: u64,
    /// No attempt is accepted before this time (Unix ms).
    pub locked_until_ms: u64,
    /// How many waits the failures have imposed since the count was last reset (repeated
    /// locks are what an operator should look at).
    #[serde(default)]
    pub locks: u32,
}

/// The audit log as stored: entries in storage order, the head and the epoch records.
pub struct AuditLog {
    /// The chain's name: `""` for the one chain of a single node's store (and PostgreSQL's
    /// shared chain from before per-node chains), else the node's that appends to it. Its
    /// epochs are bound to [`crate::audit::chain_label`] of the bank's id and it.
    pub chain: String,
    /// `(sequence key, entry bytes)`.
    pub entries: Vec<(u64, Vec<u8>)>,
    /// The bank's head, if present.
    pub head: Option<ChainHead>,
    /// The epoch records in order of their start (a store from before auditor keys that has
    /// not been started since: one legacy epoch at 0).
    pub epochs: Vec<Epoch>,
}

/// Why a ledger operation did not happen. Refusals change nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LedgerError {
    /// The username is taken.
    NameTaken,
    /// The withdrawal would go below zero.
    InsufficientFunds,
    /// The balance would overflow.
    LimitExceeded,
    /// The deposit (or opening balance) would take its terminal over a ceiling.
    OverCeiling(Ceiling),
    /// The transaction id was used for a different request.
    TxIdReused,
    /// No such account or terminal.
    NotFound,
    /// Another process holds the storage (the bank is running).
    InUse(String),
    /// The storage failed (detail for the log).
    Storage(String),
    /// The storage could not read or write its files (a full disk, a failing device). With
    /// sled 0.34 every later write fails too, until the database is reopened.
    Io(IoFailure),
    /// A database server failed the request (unreachable, restarting, out of retries): the
    /// change did not happen, or its outcome is unknown; the client retries its txid.
    Database(DatabaseFailure),
}

/// A database server's failure: what was being done, its SQLSTATE when it sent one, and the
/// driver's error.
#[derive(Clone, Debug)]
pub struct DatabaseFailure {
    /// What failed, e.g. `commit` or `connecting`.
    pub during: &'static str,
    /// The SQLSTATE the server sent, if it sent one (`40001`: a serialization failure).
    pub code: Option<String>,
    /// The driver's error.
    pub source: Arc<dyn std::error::Error + Send + Sync>,
}

/// The driver's error and what it carries (tokio-postgres shows only its kind, `db error`,
/// leaving the server's message to its source).
impl fmt::Display for DatabaseFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.during, self.source)?;
        let mut cause = self.source.source();
        while let Some(e) = cause {
            write!(f, ": {e}")?;
            cause = e.source();
        }
        Ok(())
    }
}

impl std::error::Error for DatabaseFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.source)
    }
}

/// Equal when the same step failed with the same SQLSTATE.
impl PartialEq for DatabaseFailure {
    fn eq(&self, other: &Self) -> bool {
        self.during == other.during && self.code == other.code
    }
}

impl Eq for DatabaseFailure {}

/// An I/O failure underneath the ledger: what was being done, and the operating system's error.
#[derive(Clone, Debug)]
pub struct IoFailure {
    /// What failed, e.g. `commit` or `opening /var/lib/bank`.
    pub during: String,
    /// The operating system's error.
    pub source: Arc<std::io::Error>,
}

impl IoFailure {
    /// `source` while doing `during`.
    pub fn new(during: impl Into<String>, source: std::io::Error) -> Self {
        Self {
            during: during.into(),
            source: Arc::new(source),
        }
    }
}

impl fmt::Display for IoFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.during, self.source)
    }
}

impl std::error::Error for IoFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.source)
    }
}

/// Equal when the same step failed the same way (`std::io::Error` has no equality of its own).
impl PartialEq for IoFailure {
    fn eq(&self, other: &Self) -> bool {
        self.during == other.during && self.source.kind() == other.source.kind()
    }
}

impl Eq for IoFailure {}

impl LedgerError {
    /// `true` for a refusal by the bank's rules (decided before anything is written), `false`
    /// for a failure of the store.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            Self::NameTaken
                | Self::InsufficientFunds
                | Self::LimitExceeded
                | Self::OverCeiling(_)
                | Self::TxIdReused
                | Self::NotFound
        )
    }
}

impl fmt::Display for LedgerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Storage(detail) => write!(f, "storage error: {detail}"),
            Self::Io(failure) => write!(f, "storage I/O error: {failure}"),
            Self::Database(failure) => write!(f, "database error: {failure}"),
            Self::InUse(detail) => f.write_str(detail),
            Self::OverCeiling(ceiling) => write!(f, "{ceiling}"),
            other => write!(f, "{other:?}"),
        }
    }
}

impl std::error::Error for LedgerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io(failure) => Some(failure),
            Self::Database(failure) => Some(failure),
            _ => None,
        }
    }
}

/// Told, after a flush made everything committed durable, where this process's audit chain
/// stood when the flush began (its tip, with the key for the next entry, held in memory only);
/// not called before the process appended its first entry. An error fails the flush (its
/// waiters get no acknowledgement).
pub type FlushHook = std::sync::Arc<dyn Fn(&ChainTip) -> Result<(), LedgerError> + Send + Sync>;

/// Everything the bank stores. Each mutating call commits atomically (the change, its
/// transaction record, its transaction-id entry and its audit entry together) but is durable
/// only after [`Ledger::durable`] completes: callers await it before replying.
///
/// The audit chain's key is never stored. The first entry a ledger appends after it is opened
/// begins a new epoch ([`crate::audit`]): the engine draws it for the auditor's public key in
/// the identity, stores the epoch record in the same commit as that entry, and keeps the
/// evolving key in memory ([`Ledger::chain_tip`]). A store without an auditor key (from before
/// them) refuses to append until [`Ledger::record_auditor_key`].
pub trait Ledger: Send + Sync + 'static {
    /// Creates a user, their account and (for card accounts) the opening transaction; an
    /// opening balance counts against its terminal's deposit ceilings, checked and moved in
    /// the same commit (refused with [`LedgerError::OverCeiling`]).
    fn open_account(
        &self,
        new: NewAccount,
        now_ms: u64,
        audit: &AuditEvent,
    ) -> Result<UserRecord, LedgerError>;
    /// Looks a user up.
    fn user(&self, username: &Username) -> Result<Option<UserRecord>, LedgerError>;
    /// An account's balance.
    fn balance(&self, account: &AccountNumber) -> Result<Cents, LedgerError>;
    /// Applies a deposit or withdrawal once per transaction id; a retry returns the first result
    /// (and counts nothing again). A deposit counts against its terminal's ceilings on the UTC
    /// day of `now_ms`, checked and moved in the same commit, so sessions of one terminal
    /// cannot together cross them (refused with [`LedgerError::OverCeiling`]); an unknown
    /// terminal is `NotFound`.
    fn apply(
        &self,
        account: &AccountNumber,
        movement: Movement,
        now_ms: u64,
        audit: &AuditEvent,
    ) -> Result<Applied, LedgerError>;
    /// [`Self::apply`], resolved once the change is durable too ([`Self::durable`]; a
    /// refusal, which stores nothing, at once). The default runs `apply` on tokio's blocking
    /// pool; an engine with a writer of its own hands the change to it, and no thread waits.
    fn apply_durably(
        self: Arc<Self>,
        account: AccountNumber,
        movement: Movement,
        now_ms: u64,
        audit: AuditEvent,
    ) -> BoxFuture<'static, Result<Applied, LedgerError>> {
        Box::pin(async move {
            let this = self.clone();
            let applied = blocking(move || this.apply(&account, movement, now_ms, &audit)).await?;
            self.durable().await?;
            Ok(applied)
        })
    }
    /// An account's balance, with `audit` (its `balance_cents` set to it) appended in the same
    /// commit; not waiting for durability (a balance moves nothing). The default runs on
    /// tokio's blocking pool, as [`Self::apply_durably`]'s does.
    fn audited_balance(
        self: Arc<Self>,
        account: AccountNumber,
        audit: AuditEvent,
    ) -> BoxFuture<'static, Result<Cents, LedgerError>> {
        Box::pin(blocking(move || {
            let balance = self.balance(&account)?;
            let mut audit = audit;
            audit.balance_cents = Some(balance.0);
            self.audit(&audit)?;
            Ok(balance)
        }))
    }
    /// The transaction recorded under `txid` for `account`, if any.
    fn transaction(
        &self,
        account: &AccountNumber,
        txid: &TxId,
    ) -> Result<Option<HistoryEntry>, LedgerError>;
    /// The last `limit` transactions, newest first.
    fn history(
        &self,
        account: &AccountNumber,
        limit: u32,
    ) -> Result<Vec<HistoryEntry>, LedgerError>;
    /// Failed-login state under `key` (default when none).
    fn throttle(&self, key: &str) -> Result<ThrottleState, LedgerError>;
    /// Atomically replaces the failed-login state under `key` with `update(current)` (no
    /// concurrent update is lost); returns the state before.
    fn update_throttle(
        &self,
        key: &str,
        update: &mut dyn FnMut(ThrottleState) -> ThrottleState,
    ) -> Result<ThrottleState, LedgerError>;
    /// A terminal by id.
    fn terminal(&self, id: &TerminalId) -> Result<Option<TerminalRecord>, LedgerError>;
    /// Adds a terminal.
    fn add_terminal(
        &self,
        terminal: &TerminalRecord,
        audit: &AuditEvent,
    ) -> Result<(), LedgerError>;
    /// Every terminal.
    fn terminals(&self) -> Result<Vec<TerminalRecord>, LedgerError>;
    /// Stores a pending enrollment code with its audit entry; `NameTaken` if its id exists.
    fn add_enrollment(
        &self,
        pending: &PendingEnrollment,
        audit: &AuditEvent,
    ) -> Result<(), LedgerError>;
    /// Removes the pending enrollment `code` and appends `audit`, in one commit, and returns
    /// what was removed; `None`, and nothing written, when there is none. (Each code is thus
    /// taken once, whatever its fate: one guess per code.)
    fn take_enrollment(
        &self,
        code: &TerminalId,
        audit: &AuditEvent,
    ) -> Result<Option<PendingEnrollment>, LedgerError>;
    /// What `terminal` has deposited (opening balances included) on the UTC day holding
    /// `now_ms`. Counted only while it has a per-day ceiling; zero for an unknown terminal.
    fn deposited_today(&self, terminal: &TerminalId, now_ms: u64) -> Result<Cents, LedgerError>;
    /// Revokes a terminal; `NotFound` if there is none.
    fn revoke_terminal(&self, id: &TerminalId, audit: &AuditEvent) -> Result<(), LedgerError>;
    /// A counter that grows after every committed revocation (sled: this process's, from 0
    /// when opened; PostgreSQL: every node's, as this node last read it): a session that saw
    /// the same value before its terminal was looked up knows it is not revoked without
    /// reading storage.
    fn revocations(&self) -> u64;
    /// Whether the storage is out of reach now, as the engine last saw it (a database server
    /// it cannot connect to; it keeps trying, and this turns false again once it can). An
    /// embedded engine never is; its write failures are reported by the bank's fault latch.
    fn unreachable(&self) -> bool {
        false
    }
    /// Adds an operator and their console terminal together; `NameTaken` if the operator
    /// exists.
    fn add_operator(
        &self,
        operator: &OperatorRecord,
        console: &TerminalRecord,
        audit: &AuditEvent,
    ) -> Result<(), LedgerError>;
    /// Looks an operator up.
    fn operator(&self, username: &Username) -> Result<Option<OperatorRecord>, LedgerError>;
    /// Replaces a user's password hash or card hash, with `audit`, in one commit; `NotFound`
    /// if there is no such user.
    fn replace_credential(
        &self,
        username: &Username,
        credential: NewCredential,
        audit: &AuditEvent,
    ) -> Result<(), LedgerError>;
    /// Replaces an operator's password hash, with `audit`, in one commit; `NotFound` if there
    /// is no such operator.
    fn replace_operator_password(
        &self,
        username: &Username,
        password_hash: String,
        audit: &AuditEvent,
    ) -> Result<(), LedgerError>;
    /// A counter that grows after every committed credential replacement (counted as
    /// [`Ledger::revocations`] is): a session that saw the same value knows its login's
    /// credential still stands without reading storage.
    fn credential_changes(&self) -> u64;
    /// From now on stores terminal and enrollment keys sealed under `keys` (and opens sealed
    /// ones with them), and seals those still stored plain, with `audit`, in one commit;
    /// returns how many it sealed (0: nothing written). A store without `keys` still reads
    /// plain keys, and refuses sealed ones.
    fn seal_secrets(
        &self,
        keys: Arc<crate::secrets::StorageKeys>,
        audit: &AuditEvent,
    ) -> Result<usize, LedgerError>;
    /// Counts accounts, sums balances, and counts transactions since `day_start_ms` and per
    /// minute over the `minutes` minutes ending with the one holding `now_ms`.
    fn totals(&self, now_ms: u64, day_start_ms: u64, minutes: usize)
        -> Result<Totals, LedgerError>;
    /// The newest `limit` audit events appended since this ledger was opened (earlier ones
    /// are readable only with the auditor's key), and the log's length.
    fn recent_audit(&self, limit: usize) -> Result<RecentAudit, LedgerError>;
    /// Appends an audit entry on its own.
    fn audit(&self, event: &AuditEvent) -> Result<(), LedgerError>;
    /// Creates the bank in an empty store: its identity, which must name the auditor's public
    /// key, and an empty audit log, in one commit; `false` (and nothing written) when the
    /// store holds either.
    fn create_bank(&self, identity: &BankIdentity) -> Result<bool, LedgerError>;
    /// The bank's identity, if the store holds one.
    fn identity(&self) -> Result<Option<BankIdentity>, LedgerError>;
    /// Records the identity of a bank created before stores held one (its audit log exists);
    /// `false` when an identity is there already.
    fn adopt_identity(&self, identity: &BankIdentity) -> Result<bool, LedgerError>;
    /// Records the bank's static public key (64 hex) in an identity that has none (a store
    /// from before protocol v2), with `audit`, in one commit; `false` (nothing written) when
    /// there is no identity or it has a key already.
    fn record_bank_key(&self, public_hex: &str, audit: &AuditEvent) -> Result<bool, LedgerError>;
    /// Moves a store from before auditor keys to them, in one commit: replaces its identity
    /// (one without an auditor key) with `identity` (the same bank, with one), drops the key
    /// from the stored head, records the entries so far as a legacy epoch, and appends `audit`
    /// (the first entry of a new epoch). `false` (nothing written) when there is no identity
    /// or it has an auditor key already.
    fn record_auditor_key(
        &self,
        identity: &BankIdentity,
        audit: &AuditEvent,
    ) -> Result<bool, LedgerError>;
    /// Where the audit chain stands, if the log exists.
    fn chain_position(&self) -> Result<Option<ChainPosition>, LedgerError>;
    /// Where this process's audit chain stands, with the key for the next entry (in memory
    /// only): the bank MACs a checkpoint with it. `None` until this ledger appended an entry.
    fn chain_tip(&self) -> Option<ChainTip>;
    /// The stored audit entry at `seq`, if any.
    fn audit_entry(&self, seq: u64) -> Result<Option<Vec<u8>>, LedgerError>;
    /// The stored audit log and its epochs (this node's chain).
    fn audit_log(&self) -> Result<AuditLog, LedgerError>;
    /// The name of the chain this ledger appends to ([`AuditLog::chain`]): `""` unless the
    /// engine keeps one chain per node.
    fn audit_chain_name(&self) -> String {
        String::new()
    }
    /// Every audit chain the store holds, in order of their names (one engine keeping one
    /// chain: [`Self::audit_log`]); what the auditor verifies.
    fn audit_chains(&self) -> Result<Vec<AuditLog>, LedgerError> {
        Ok(vec![self.audit_log()?])
    }
    /// The audit log's epoch records in order of their start (as [`AuditLog::epochs`]).
    fn audit_epochs(&self) -> Result<Vec<Epoch>, LedgerError>;
    /// [`crate::audit::check_links`] over the stored log, streamed (never loaded whole): how
    /// many entries are linked, or the first that is not.
    fn check_audit_links(&self) -> Result<Result<u64, crate::audit::VerifyError>, LedgerError>;
    /// Resolves once everything committed so far is on disk (concurrent callers share one
    /// sync).
    fn durable(&self) -> BoxFuture<'static, Result<(), LedgerError>>;
    /// Blocking form of [`Self::durable`], for shutdown and command-line tools.
    fn sync(&self) -> Result<(), LedgerError>;
    /// Sets what each flush reports to once it is on disk (the bank's checkpoints), once;
    /// `false` if one was set already.
    fn on_durable(&self, hook: FlushHook) -> bool;
    /// Atomically replaces `terminal`'s openings bucket with `update(current)` (the default
    /// bucket when none is stored; no concurrent update, on any node, is lost) and returns
    /// the bucket after; `None`, with `update` not called, from an engine that keeps no
    /// buckets (one node: the bank keeps them in memory).
    fn update_opening(
        &self,
        terminal: &TerminalId,
        update: &mut dyn FnMut(OpeningBucket) -> OpeningBucket,
    ) -> Result<Option<OpeningBucket>, LedgerError> {
        let _ = (terminal, update);
        Ok(None)
    }
    /// Publishes `node`'s open sessions for the consoles of every node sharing the storage,
    /// which also tells them the node is alive; `false` (nothing stored) from an engine that
    /// serves one node.
    fn publish_sessions(
        &self,
        node: &crate::node::NodeName,
        sessions: &NodeSessions,
    ) -> Result<bool, LedgerError> {
        let _ = (node, sessions);
        Ok(false)
    }
    /// What the other nodes that are alive (published within the last few seconds) published,
    /// each session naming its node; nothing from an engine that serves one node.
    fn other_sessions(
        &self,
        node: &crate::node::NodeName,
    ) -> Result<Vec<NodeSessions>, LedgerError> {
        let _ = node;
        Ok(Vec::new())
    }
    /// Withdraws what `node` published (it is stopping).
    fn withdraw_sessions(&self, node: &crate::node::NodeName) -> Result<(), LedgerError> {
        let _ = node;
        Ok(())
    }
}

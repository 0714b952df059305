//! The PostgreSQL `Ledger`: the bank's data in a PostgreSQL database several bank nodes may
//! share. Every change is one SERIALIZABLE transaction (retried on serialization failures and
//! deadlocks), acknowledged only after its COMMIT with `synchronous_commit = on`; the
//! posting rules are `posting`'s, run inside it over the tables (a `posting::Book`); the
//! schema is versioned and migrated at opening.
//!
//! Each node appends to an audit chain of its own (its `--node-name`): nodes never wait for
//! one another's audit entries. A running node holds its chain for its whole life (a session
//! advisory lock on a connection of its own), so a second node started under the same name is
//! refused before it writes anything. The chain every node shared before (schema version 2)
//! is kept under the name `""`, closed: verified, never appended to.
//!
//! What would not port to a distributed engine speaking PostgreSQL's protocol (CockroachDB,
//! YugabyteDB), each named where it is used: advisory locks (migrations, and each node's hold
//! on its audit chain), `to_regclass` (is there a schema), a `DEFERRABLE` foreign
//! key (a transaction's entry is written before its account row), `NUMERIC(20,0)` read and
//! written as text, `ON CONFLICT` upserts (those two engines take it; others would not), and
//! the session settings `lock_timeout`, `idle_in_transaction_session_timeout` and
//! `tcp_keepalives_*` (on the connection that holds a node's chain).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures_util::future::BoxFuture;
use postgres::error::SqlState;
use postgres::types::ToSql;
use postgres::{Client, IsolationLevel, Row, Transaction};
use protocol::{AccountNumber, Cents, HistoryEntry, TerminalId, TxId, Username};

use crate::audit::{AuditEvent, ChainHead, ChainTip, Epoch};
use crate::chain_store::{self, ChainRows, Moved};
use crate::group_sync::GroupSync;
use crate::ledger::{
    Applied, AuditLog, BankIdentity, ChainPosition, DatabaseFailure, DepositCeilings, FlushHook,
    Ledger, LedgerError, Movement, NewAccount, NewCredential, NodeSessions, OpeningBucket,
    OperatorRecord, PendingEnrollment, RecentAudit, TerminalDay, TerminalRecord, ThrottleState,
    Totals, UserRecord,
};
use crate::node::NodeName;
use crate::posting::{self, AccountRecord, Book, PostingError};
use crate::records::{
    decode, encode, key_to_store, require_auditor_key, stored_key, takes_auditor_key,
    terminal_from, to_stored, with_bank_key, Recent, StoredCeilings, StoredEnrollment,
    StoredTerminal,
};
use crate::secrets::StorageKeys;
use crate::tally::Delta;

mod buckets;
mod pool;
mod presence;
mod schema;
mod tls;

use tls::Connector;
pub use tls::DbTlsError;

use pool::{connect, Conn, Pool, Pooled, Statements};
use schema::migrate;
pub use schema::{migrate_to, schema_version};

/// How long a node waits at start for its chain's lock (a node of that name that has just
/// stopped may still hold it for a moment) before refusing.
const HOLD_WAIT: Duration = Duration::from_secs(3);
/// The bank's identity in `bank_meta` (JSON).
const IDENTITY_KEY: &str = "identity";
/// Attempts of one transaction before a serialization failure is given up as an error.
const ATTEMPTS: u32 = 30;
const MINUTE_MS: u64 = 60_000;
/// How often a node reads the shared counters (another node's revocation reaches this node
/// within this; `revoker.rs` then closes the revoked terminal's sessions).
const COUNTERS_EVERY: Duration = Duration::from_millis(250);

/// Revocations and credential replacements committed by every node, as this node last saw
/// them ([`Ledger::revocations`], [`Ledger::credential_changes`]): moved by its own commits
/// and by a thread reading `bank_counters`.
#[derive(Default)]
struct Counters {
    revocations: AtomicU64,
    credential_changes: AtomicU64,
    /// The last read failed (the database is out of reach); cleared by the next that works.
    unreachable: std::sync::atomic::AtomicBool,
}

impl Counters {
    fn read(&self, client: &mut Client) -> Result<(), postgres::Error> {
        for row in client.query("SELECT name, value FROM bank_counters", &[])? {
            let value = u64::try_from(row.get::<_, i64>(1)).unwrap_or(0);
            match row.get::<_, &str>(0) {
                "revocations" => self.revocations.fetch_max(value, Ordering::SeqCst),
                "credential_changes" => self.credential_changes.fetch_max(value, Ordering::SeqCst),
                _ => 0,
            };
        }
        Ok(())
    }
}

/// Reads the shared counters every [`COUNTERS_EVERY`] until the ledger is dropped,
/// connecting again after a failure.
fn watch_counters(database: Database, counters: std::sync::Weak<Counters>) {
    let mut client = None;
    loop {
        std::thread::sleep(COUNTERS_EVERY);
        let Some(counters) = counters.upgrade() else {
            return;
        };
        if client.is_none() {
            client = connect(&database).ok();
        }
        let read = match client.as_mut() {
            Some(connected) => counters.read(connected).map_err(|e| {
                tracing::warn!(error = %e, "reading the shared counters");
                client = None;
            }),
            None => Err(()),
        };
        let was = counters.unreachable.swap(read.is_err(), Ordering::SeqCst);
        match (was, read.is_err()) {
            (false, true) => tracing::error!("the database is out of reach; /healthz answers 503"),
            (true, false) => tracing::warn!("the database is reachable again"),
            _ => {}
        }
    }
}

/// Why the database cannot be opened.
#[derive(Debug)]
pub enum OpenError {
    /// The URL does not parse, or the server cannot be reached or refused the login.
    Connect(DatabaseFailure),
    /// The CA file (`--database-ca-file`) cannot be used, or the URL's `sslmode` contradicts
    /// it.
    Tls(DbTlsError),
    /// TLS to the database failed because its certificate was refused: not issued under the
    /// CA file's roots, not for the URL's host, expired, ... .
    CertificateRefused(DatabaseFailure),
    /// The database holds tables but no bank schema: a bank is never created over them.
    Foreign,
    /// The schema was written by a newer bank-server.
    TooNew {
        /// Its version.
        found: i32,
    },
    /// Applying a migration failed.
    Migrate(DatabaseFailure),
    /// The thread that reads the shared counters could not be started.
    Thread(Arc<std::io::Error>),
    /// A running node holds the audit chain of this node's name.
    ChainHeld {
        /// The node's name.
        node: NodeName,
    },
}

impl core::fmt::Display for OpenError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Connect(e) => write!(f, "{e}"),
            Self::Tls(e) => write!(f, "{e}"),
            Self::CertificateRefused(e) => write!(
                f,
                "the database's TLS certificate was refused: it is not trusted under \
                 --database-ca-file (BANK_DATABASE_CA_FILE) or not for the host of \
                 --database-url ({e})"
            ),
            Self::Foreign => f.write_str(
                "the database holds tables but no bank schema; refusing to create a bank over \
                 them (point --database-url at an empty database)",
            ),
            Self::TooNew { found } => write!(
                f,
                "the database's schema version {found} is newer than this bank-server knows \
                 ({}); run a newer bank-server",
                schema_version()
            ),
            Self::Migrate(e) => write!(f, "migrating the schema: {e}"),
            Self::Thread(e) => write!(f, "starting a thread: {e}"),
            Self::ChainHeld { node } => write!(
                f,
                "a running node already holds the audit chain of node name {node:?} on this \
                 database; each node needs its own --node-name (BANK_NODE_NAME) (a node whose \
                 machine died lets go within about 30 s)"
            ),
        }
    }
}

impl std::error::Error for OpenError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Connect(e) | Self::Migrate(e) | Self::CertificateRefused(e) => Some(e),
            Self::Tls(e) => Some(e),
            Self::Thread(e) => Some(&**e),
            Self::Foreign | Self::TooNew { .. } | Self::ChainHeld { .. } => None,
        }
    }
}

impl OpenError {
    /// A connection that could not be made: [`Self::CertificateRefused`] when rustls refused
    /// the server's certificate, else [`Self::Connect`].
    fn connecting(e: DatabaseFailure) -> Self {
        if tls::certificate_refused(&e) {
            Self::CertificateRefused(e)
        } else {
            Self::Connect(e)
        }
    }
}

/// Where the database is and how connections to it are made (TLS or not): every connection
/// of a ledger (the pool, the one holding its chain, the counters' reader) is made from it.
#[derive(Clone)]
struct Database {
    config: postgres::Config,
    connector: Connector,
}

impl Database {
    /// `url` parsed, with the connector `ca_file` asks for ([`Connector::new`]).
    fn new(url: &str, ca_file: Option<&Path>) -> Result<Self, OpenError> {
        let mut config: postgres::Config = url
            .parse()
            .map_err(|e| OpenError::Connect(failure("parsing the database URL", e)))?;
        let connector = Connector::new(&mut config, ca_file).map_err(OpenError::Tls)?;
        Ok(Self { config, connector })
    }
}

fn failure(during: &'static str, e: postgres::Error) -> DatabaseFailure {
    DatabaseFailure {
        during,
        code: e.code().map(|c| c.code().to_owned()),
        source: Arc::new(e),
    }
}

/// A failure inside one transaction attempt: the database's (maybe worth a retry) or the
/// bank's (a refusal, a corrupt record: never retried).
enum Fail {
    Db(postgres::Error),
    Ledger(LedgerError),
}

impl From<postgres::Error> for Fail {
    fn from(e: postgres::Error) -> Self {
        Self::Db(e)
    }
}

impl From<LedgerError> for Fail {
    fn from(e: LedgerError) -> Self {
        Self::Ledger(e)
    }
}

type TxResult<T> = Result<T, Fail>;

/// Worth running the transaction again: a serialization failure or a deadlock (SERIALIZABLE
/// aborts one of two conflicting transactions), or a unique key another transaction took
/// first (the retry reads it and refuses by the rules).
fn retryable(e: &postgres::Error) -> bool {
    e.code().is_some_and(|code| {
        *code == SqlState::T_R_SERIALIZATION_FAILURE
            || *code == SqlState::T_R_DEADLOCK_DETECTED
            || *code == SqlState::UNIQUE_VIOLATION
    })
}

fn to_i64(value: u64) -> Result<i64, LedgerError> {
    i64::try_from(value).map_err(|_| LedgerError::Storage(format!("{value} out of range")))
}

fn to_u64(value: i64) -> Result<u64, LedgerError> {
    u64::try_from(value).map_err(|_| LedgerError::Storage(format!("corrupt number {value}")))
}

/// What an attempt did that memory must learn once it commits.
#[derive(Default)]
struct Pending {
    /// Audit events appended, for the console's recent entries.
    audit: Vec<(u64, AuditEvent)>,
    /// Where this node's audit chain writer stands after the attempt.
    tip: Option<ChainTip>,
}

/// One transaction attempt.
struct Tx<'c> {
    tx: RefCell<Transaction<'c>>,
    /// The connection's prepared statements.
    statements: RefCell<&'c mut Statements>,
    pending: RefCell<Pending>,
    /// The audit chain this node appends to.
    chain: Arc<str>,
}

impl Tx<'_> {
    fn one(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> TxResult<Option<Row>> {
        let statement = self.prepared(sql)?;
        Ok(self.tx.borrow_mut().query_opt(&statement, params)?)
    }

    fn run(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> TxResult<u64> {
        let statement = self.prepared(sql)?;
        Ok(self.tx.borrow_mut().execute(&statement, params)?)
    }

    /// `sql` as the connection prepared it (once).
    fn prepared(&self, sql: &str) -> TxResult<postgres::Statement> {
        let mut tx = self.tx.borrow_mut();
        Ok(self.statements.borrow_mut().get(&mut *tx, sql)?)
    }

    /// The text column `record` of the one row `sql` selects, decoded.
    fn record<T: for<'de> serde::Deserialize<'de>>(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> TxResult<Option<T>> {
        match self.one(sql, params)? {
            Some(row) => Ok(Some(decode(row.get::<_, &str>(0).as_bytes())?)),
            None => Ok(None),
        }
    }

    fn meta(&self, key: &str) -> TxResult<Option<Vec<u8>>> {
        Ok(self
            .one("SELECT value FROM bank_meta WHERE key = $1", &[&key])?
            .map(|row| row.get(0)))
    }

    /// Upserts a `bank_meta` row (`ON CONFLICT`: see the module doc).
    fn put_meta(&self, key: &str, value: &[u8]) -> TxResult<()> {
        self.run(
            "INSERT INTO bank_meta (key, value) VALUES ($1, $2) \
             ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            &[&key, &value],
        )?;
        Ok(())
    }

    /// Whether any audit chain exists (the bank's log was begun).
    fn any_chain(&self) -> TxResult<bool> {
        Ok(self
            .one("SELECT 1 FROM audit_chains LIMIT 1", &[])?
            .is_some())
    }

    /// Moves a shared counter on by one; returns its value after.
    fn bump(&self, name: &str) -> TxResult<u64> {
        let Some(row) = self.one(
            "UPDATE bank_counters SET value = value + 1 WHERE name = $1 RETURNING value",
            &[&name],
        )?
        else {
            return Err(LedgerError::Storage(format!("no counter {name}")).into());
        };
        Ok(to_u64(row.get(0))?)
    }

    fn audit(&self, event: &AuditEvent) -> TxResult<()> {
        let held = self.pending.borrow_mut().tip.take();
        let next = chain_store::append(self, held, Moved::NewEpoch, event)?;
        let mut pending = self.pending.borrow_mut();
        pending
            .audit
            .push((next.head().next_seq - 1, event.clone()));
        pending.tip = Some(next);
        Ok(())
    }
}

impl ChainRows for Tx<'_> {
    type Error = Fail;

    fn fail(&self, e: LedgerError) -> Fail {
        Fail::Ledger(e)
    }

    /// This node's chain's head; an empty one before its first entry (once the bank exists).
    fn head_bytes(&self) -> TxResult<Option<Vec<u8>>> {
        let head = self.one(
            "SELECT head FROM audit_chains WHERE chain = $1",
            &[&&*self.chain],
        )?;
        match head {
            Some(row) => Ok(Some(row.get(0))),
            None if self.meta(IDENTITY_KEY)?.is_some() => {
                Ok(Some(ChainHead::EMPTY.to_bytes().to_vec()))
            }
            None => Ok(None),
        }
    }

    fn chain_name(&self) -> &str {
        &self.chain
    }

    fn identity_bytes(&self) -> TxResult<Option<Vec<u8>>> {
        self.meta(IDENTITY_KEY)
    }

    fn put_entry(&self, seq: u64, entry: Vec<u8>) -> TxResult<()> {
        self.run(
            "INSERT INTO audit_entries (chain, seq, entry) VALUES ($1, $2, $3)",
            &[&&*self.chain, &to_i64(seq)?, &entry],
        )?;
        Ok(())
    }

    /// Upserts this node's chain's head (`ON CONFLICT`: see the module doc).
    fn put_head(&self, head: &ChainHead) -> TxResult<()> {
        self.run(
            "INSERT INTO audit_chains (chain, head) VALUES ($1, $2) \
             ON CONFLICT (chain) DO UPDATE SET head = EXCLUDED.head",
            &[&&*self.chain, &head.to_bytes().as_slice()],
        )?;
        Ok(())
    }

    fn put_epoch(&self, epoch: &Epoch) -> TxResult<()> {
        self.run(
            "INSERT INTO audit_epochs (chain, start, record) VALUES ($1, $2, $3)",
            &[&&*self.chain, &to_i64(epoch.start)?, &epoch.to_bytes()],
        )?;
        Ok(())
    }
}

/// The posting rules' store, inside one transaction.
impl Book for Tx<'_> {
    type Error = Fail;

    fn user_exists(&self, username: &Username) -> TxResult<bool> {
        Ok(self
            .one(
                "SELECT 1 FROM users WHERE username = $1",
                &[&username.as_str()],
            )?
            .is_some())
    }

    fn account(&self, account: &AccountNumber) -> TxResult<Option<AccountRecord>> {
        let Some(row) = self.one(
            "SELECT username, balance::text, tx_count FROM accounts WHERE number = $1",
            &[&account.as_str()],
        )?
        else {
            return Ok(None);
        };
        let corrupt = || LedgerError::Storage(format!("corrupt account {account}"));
        Ok(Some(AccountRecord {
            username: Username::new(row.get::<_, &str>(0)).ok_or_else(corrupt)?,
            balance: Cents(row.get::<_, &str>(1).parse().map_err(|_| corrupt())?),
            tx_count: to_u64(row.get(2))?,
        }))
    }

    fn txid_entry(&self, account: &AccountNumber, txid: &TxId) -> TxResult<Option<HistoryEntry>> {
        self.record(
            "SELECT entry FROM transactions WHERE account = $1 AND txid = $2",
            &[&account.as_str(), &txid.as_bytes().as_slice()],
        )
    }

    fn put_user(&self, user: &UserRecord) -> TxResult<()> {
        let record = String::from_utf8(encode(user)).expect("JSON is UTF-8");
        self.run(
            "INSERT INTO users (username, record) VALUES ($1, $2) \
             ON CONFLICT (username) DO UPDATE SET record = EXCLUDED.record",
            &[&user.username.as_str(), &record],
        )?;
        Ok(())
    }

    fn put_account(&self, account: &AccountNumber, record: &AccountRecord) -> TxResult<()> {
        self.run(
            "INSERT INTO accounts (number, username, balance, tx_count) \
             VALUES ($1, $2, $3::text::numeric, $4) \
             ON CONFLICT (number) DO UPDATE SET balance = EXCLUDED.balance, \
             tx_count = EXCLUDED.tx_count",
            &[
                &account.as_str(),
                &record.username.as_str(),
                &record.balance.0.to_string(),
                &to_i64(record.tx_count)?,
            ],
        )?;
        Ok(())
    }

    fn put_entry(&self, account: &AccountNumber, seq: u64, entry: &HistoryEntry) -> TxResult<()> {
        let record = String::from_utf8(encode(entry)).expect("JSON is UTF-8");
        self.run(
            "INSERT INTO transactions (account, seq, txid, time_ms, entry) \
             VALUES ($1, $2, $3, $4, $5)",
            &[
                &account.as_str(),
                &to_i64(seq)?,
                &entry.txid.as_bytes().as_slice(),
                &to_i64(entry.time_ms)?,
                &record,
            ],
        )?;
        Ok(())
    }

    fn terminal_ceilings(&self, terminal: &TerminalId) -> TxResult<Option<DepositCeilings>> {
        Ok(self
            .record::<StoredCeilings>(
                "SELECT record FROM terminals WHERE id = $1",
                &[&terminal.as_str()],
            )?
            .map(Into::into))
    }

    fn terminal_day(&self, terminal: &TerminalId) -> TxResult<Option<TerminalDay>> {
        self.record(
            "SELECT record FROM terminal_days WHERE terminal = $1",
            &[&terminal.as_str()],
        )
    }

    fn put_terminal_day(&self, terminal: &TerminalId, day: &TerminalDay) -> TxResult<()> {
        let record = String::from_utf8(encode(day)).expect("JSON is UTF-8");
        self.run(
            "INSERT INTO terminal_days (terminal, record) VALUES ($1, $2) \
             ON CONFLICT (terminal) DO UPDATE SET record = EXCLUDED.record",
            &[&terminal.as_str(), &record],
        )?;
        Ok(())
    }

    fn append_audit(&self, event: &AuditEvent) -> TxResult<()> {
        self.audit(event)
    }

    /// The totals are counted from the tables when asked (shared by every node), not kept.
    fn moved(&self, _delta: Delta) {}
}

/// A posting's failure: a refusal or a store failure, both end the attempt.
fn posted<T>(result: Result<T, PostingError<Fail>>) -> TxResult<T> {
    result.map_err(|e| match e {
        PostingError::Refused(refusal) => Fail::Ledger(refusal.into()),
        PostingError::Store(e) => e,
    })
}

/// JSON text of a record.
fn json<T: serde::Serialize>(value: &T) -> String {
    String::from_utf8(encode(value)).expect("JSON is UTF-8")
}

/// The PostgreSQL ledger. Cheap to share behind an `Arc`.
pub struct PgLedger {
    pool: Pool,
    /// The audit chain this node appends to (its name); `None` when opened for reading.
    chain: Option<Arc<str>>,
    /// The connection whose session holds this node's chain (an advisory lock), for the
    /// ledger's life; `None` when opened for reading.
    hold: Mutex<Option<Client>>,
    /// One writing transaction of this process at a time: they all move this node's audit
    /// chain's head, so they would only abort each other. Other nodes append to chains of
    /// their own: across nodes SERIALIZABLE orders only what truly conflicts.
    writer: Mutex<()>,
    /// The newest audit events this process appended, newest last.
    recent: Recent,
    /// Revocations and credential replacements of every node, as last seen.
    counters: Arc<Counters>,
    /// The keys that seal stored terminal and enrollment keys, once the bank gave them.
    sealing: OnceLock<Arc<StorageKeys>>,
    /// Durability waiters: a commit is durable when it returns, so this only tells the hook.
    group: Arc<GroupSync>,
    /// Told after each durability request where this process's chain stood (checkpoints).
    hook: Arc<OnceLock<FlushHook>>,
    /// Where this process's audit chain writer stands, with the key for the next entry.
    tip: Arc<Mutex<Option<ChainTip>>>,
}

/// Tells `hook` where the chain stood (committed, hence durable), once this process appended.
fn tell(hook: Option<&FlushHook>, tip: &Mutex<Option<ChainTip>>) -> Result<(), LedgerError> {
    let tip = tip.lock().unwrap_or_else(|p| p.into_inner()).clone();
    match (hook, tip) {
        (Some(hook), Some(tip)) => hook(&tip),
        _ => Ok(()),
    }
}

/// A connection's `Drop` blocks on the driver's own runtime, which panics on a thread that
/// drives tokio tasks (the bank drops its ledger in one): the pool is dropped on a thread of
/// its own.
impl Drop for PgLedger {
    fn drop(&mut self) {
        let clients = self.pool.take_idle();
        let hold = self.hold.lock().unwrap_or_else(|p| p.into_inner()).take();
        let key = self.chain.as_deref().map(hold_key);
        if let Ok(closing) = std::thread::Builder::new()
            .name("pg-close".into())
            .spawn(move || {
                // Let go of the chain before closing, so a restart finds it free at once.
                if let (Some(mut hold), Some(key)) = (hold, key) {
                    let _ = hold.execute("SELECT pg_advisory_unlock($1)", &[&key]);
                }
                drop(clients);
            })
        {
            let _ = closing.join();
        }
    }
}

/// The advisory lock that holds the audit chain `chain` (PostgreSQL-only, see the module doc):
/// the first 8 bytes of a hash of its name.
fn hold_key(chain: &str) -> i64 {
    let digest = protocol::primitives::sha256(&[b"bank audit chain hold\0", chain.as_bytes()]);
    i64::from_be_bytes(digest[..8].try_into().expect("8 bytes"))
}

/// Takes the advisory lock of `node`'s chain on a connection of its own, waiting up to
/// [`HOLD_WAIT`] for a node of that name that has just stopped to let go.
fn hold_chain(database: &Database, node: &NodeName) -> Result<Client, OpenError> {
    let mut client = connect(database).map_err(OpenError::connecting)?;
    // The server probes this connection when idle, so the hold of a node whose machine died
    // without closing it ends within about 25 s, not the system's default two hours.
    client
        .batch_execute(
            "SET tcp_keepalives_idle = 10; SET tcp_keepalives_interval = 5; \
             SET tcp_keepalives_count = 3",
        )
        .map_err(|e| OpenError::Connect(failure("taking this node's audit chain", e)))?;
    let key = hold_key(node.as_str());
    let waited = std::time::Instant::now();
    loop {
        let held: bool = client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
            .map_err(|e| OpenError::Connect(failure("taking this node's audit chain", e)))?
            .get(0);
        if held {
            return Ok(client);
        }
        if waited.elapsed() >= HOLD_WAIT {
            return Err(OpenError::ChainHeld { node: node.clone() });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

impl PgLedger {
    /// Connects to the database at `url`, brings its schema to this binary's version
    /// (creating it in an empty database) and takes the audit chain of `node` for this
    /// ledger's life: refused ([`OpenError::ChainHeld`]) while a running node holds it.
    ///
    /// With `ca_file` (PEM), every connection is TLS, the server's certificate verified
    /// against those roots only and its name against the URL's host, whatever the URL's
    /// `sslmode` (`disable` is refused); without it, plaintext, and a URL with
    /// `sslmode=require` is refused ([`DbTlsError::NeedsCaFile`]).
    pub fn open(url: &str, ca_file: Option<&Path>, node: &NodeName) -> Result<Self, OpenError> {
        Self::open_as(&Database::new(url, ca_file)?, Some(node))
    }

    /// Opens the database at `url` for reading (the auditor's commands): its schema migrated
    /// as [`Self::open`] does, no chain taken; every change is refused. `ca_file`: as for
    /// [`Self::open`].
    pub fn open_reader(url: &str, ca_file: Option<&Path>) -> Result<Self, OpenError> {
        Self::open_as(&Database::new(url, ca_file)?, None)
    }

    fn open_as(database: &Database, node: Option<&NodeName>) -> Result<Self, OpenError> {
        let mut client = connect(database).map_err(OpenError::connecting)?;
        migrate(&mut client, schema_version())?;
        let hold = node.map(|node| hold_chain(database, node)).transpose()?;
        let counters = Arc::new(Counters::default());
        counters
            .read(&mut client)
            .map_err(|e| OpenError::Connect(failure("reading the shared counters", e)))?;
        let watched = (database.clone(), Arc::downgrade(&counters));
        std::thread::Builder::new()
            .name("pg-counters".into())
            .spawn(move || watch_counters(watched.0, watched.1))
            .map_err(|e| OpenError::Thread(Arc::new(e)))?;
        let hook = Arc::new(OnceLock::<FlushHook>::new());
        let tip = Arc::new(Mutex::new(None));
        let group = {
            let (hook, tip) = (hook.clone(), tip.clone());
            GroupSync::new(move || tell(hook.get(), &tip))
        };
        Ok(Self {
            pool: Pool::new(database.clone(), client),
            chain: node.map(|node| Arc::from(node.as_str())),
            hold: Mutex::new(hold),
            writer: Mutex::new(()),
            recent: Recent::default(),
            counters,
            sealing: OnceLock::new(),
            group,
            hook,
            tip,
        })
    }

    /// Whether the database at `url` holds a bank (its schema, and an identity or audit
    /// log in it), without creating anything. `ca_file`: as for [`Self::open`].
    pub fn holds_bank(url: &str, ca_file: Option<&Path>) -> Result<bool, OpenError> {
        let mut client = connect(&Database::new(url, ca_file)?).map_err(OpenError::connecting)?;
        let read = |e| OpenError::Connect(failure("reading the schema", e));
        // `to_regclass`: PostgreSQL's (see the module doc).
        let schema: bool = client
            .query_one("SELECT to_regclass('bank_meta') IS NOT NULL", &[])
            .map_err(read)?
            .get(0);
        if !schema {
            return Ok(false);
        }
        let rows: i64 = client
            .query_one("SELECT count(*) FROM bank_meta", &[])
            .map_err(read)?
            .get(0);
        Ok(rows > 0)
    }

    fn keys(&self) -> Option<&StorageKeys> {
        self.sealing.get().map(|k| &**k)
    }

    fn client(&self) -> Result<Pooled<'_>, LedgerError> {
        self.pool.get().map_err(LedgerError::Database)
    }

    /// Rewrites the stored record `username` of `table` (`users`, `operators`) with `edit`,
    /// audits it and counts a credential change, in one transaction; every node sees the
    /// count.
    fn replace_login<T: serde::Serialize + for<'de> serde::Deserialize<'de>>(
        &self,
        what: &'static str,
        table: &'static str,
        username: &Username,
        edit: impl Fn(&mut T),
        audit: &AuditEvent,
    ) -> Result<(), LedgerError> {
        let select = format!("SELECT record FROM {table} WHERE username = $1");
        let update = format!("UPDATE {table} SET record = $2 WHERE username = $1");
        self.write(what, |tx| {
            let Some(mut record) = tx.record::<T>(&select, &[&username.as_str()])? else {
                return Err(LedgerError::NotFound.into());
            };
            edit(&mut record);
            tx.run(&update, &[&username.as_str(), &json(&record)])?;
            tx.audit(audit)?;
            tx.bump("credential_changes")
        })
        .map(|seen| {
            self.counters
                .credential_changes
                .fetch_max(seen, Ordering::SeqCst);
        })
    }

    /// Runs `f` in one SERIALIZABLE transaction, again on a serialization failure or
    /// deadlock (a bounded number of times), and returns its result once committed (and
    /// durable: `synchronous_commit = on`). A failure of `f` rolls the attempt back.
    fn write<T>(
        &self,
        during: &'static str,
        f: impl Fn(&Tx<'_>) -> TxResult<T>,
    ) -> Result<T, LedgerError> {
        let Some(chain) = self.chain.clone() else {
            return Err(LedgerError::Storage(
                "the database was opened for reading".into(),
            ));
        };
        let _writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let mut client = self.client()?;
        // No queue across nodes: each appends to its own chain, so two nodes' transactions
        // conflict only on the data they share (SERIALIZABLE aborts one; it is retried).
        let result = retrying(
            &mut client,
            &chain,
            || self.tip.lock().unwrap_or_else(|p| p.into_inner()).clone(),
            &f,
        );
        match result {
            Ok((value, pending)) => {
                self.committed(pending);
                Ok(value)
            }
            Err(Fail::Ledger(e)) => Err(e),
            Err(Fail::Db(e)) => Err(LedgerError::Database(failure(during, e))),
        }
    }

    /// What memory learns once an attempt committed.
    fn committed(&self, pending: Pending) {
        if pending.tip.is_some() {
            *self.tip.lock().unwrap_or_else(|p| p.into_inner()) = pending.tip;
        }
        self.recent.extend(pending.audit);
    }

    /// A read outside any writing transaction (each statement sees committed data).
    fn read<T>(
        &self,
        during: &'static str,
        f: impl FnOnce(&mut Conn) -> Result<T, Fail>,
    ) -> Result<T, LedgerError> {
        let mut client = self.client()?;
        match f(&mut client) {
            Ok(value) => Ok(value),
            Err(Fail::Ledger(e)) => Err(e),
            Err(Fail::Db(e)) => Err(LedgerError::Database(failure(during, e))),
        }
    }

    /// The text column of the one row `sql` selects, decoded.
    fn read_record<T: for<'de> serde::Deserialize<'de>>(
        &self,
        sql: &str,
        key: &str,
    ) -> Result<Option<T>, LedgerError> {
        self.read("reading", |client| {
            match client.query_opt(sql, &[&key])? {
                Some(row) => Ok(Some(decode(row.get::<_, &str>(0).as_bytes())?)),
                None => Ok(None),
            }
        })
    }

    /// This node's chain's head: an empty one before its first entry once the bank exists;
    /// `None` before the bank exists, or opened for reading.
    fn head(&self) -> Result<Option<ChainHead>, LedgerError> {
        let Some(chain) = self.chain.as_deref() else {
            return Ok(None);
        };
        let bytes = self.chain_head(chain)?;
        if bytes.is_none() && self.identity()?.is_some() {
            return Ok(Some(ChainHead::EMPTY));
        }
        bytes
            .map(|bytes| {
                ChainHead::from_bytes(&bytes)
                    .ok_or_else(|| LedgerError::Storage("audit head corrupt".into()))
            })
            .transpose()
    }

    /// The stored head of the chain `chain`, if it has one.
    fn chain_head(&self, chain: &str) -> Result<Option<Vec<u8>>, LedgerError> {
        self.read("reading the audit head", |client| {
            Ok(client
                .query_opt("SELECT head FROM audit_chains WHERE chain = $1", &[&chain])?
                .map(|row| row.get(0)))
        })
    }

    /// The chain `chain`'s log as stored.
    fn chain_log(&self, chain: &str) -> Result<AuditLog, LedgerError> {
        let (entries, epochs) = self.read("reading the audit log", |client| {
            let entries = client
                .query(
                    "SELECT seq, entry FROM audit_entries WHERE chain = $1 ORDER BY seq",
                    &[&chain],
                )?
                .iter()
                .map(|row| Ok((to_u64(row.get(0))?, row.get(1))))
                .collect::<Result<Vec<_>, Fail>>()?;
            let epochs = client
                .query(
                    "SELECT start, record FROM audit_epochs WHERE chain = $1 ORDER BY start",
                    &[&chain],
                )?
                .iter()
                .map(|row| {
                    Epoch::from_bytes(to_u64(row.get(0))?, row.get(1)).ok_or_else(|| {
                        Fail::Ledger(LedgerError::Storage("corrupt audit epoch".into()))
                    })
                })
                .collect::<Result<Vec<_>, Fail>>()?;
            Ok((entries, epochs))
        })?;
        let head = self
            .chain_head(chain)?
            .map(|bytes| {
                ChainHead::from_bytes(&bytes)
                    .ok_or_else(|| LedgerError::Storage("audit head corrupt".into()))
            })
            .transpose()?;
        Ok(AuditLog {
            chain: chain.to_owned(),
            entries,
            head,
            epochs,
        })
    }

    /// Ids of the rows of `table` whose stored key (`psk` or `key`) is still plain.
    fn plain_keys(&self, sql: &str) -> Result<Vec<String>, LedgerError> {
        self.read("reading stored keys", |client| {
            let mut ids = Vec::new();
            for row in client.query(sql, &[])? {
                let value: serde_json::Value = decode(&zeroize::Zeroizing::new(
                    row.get::<_, String>(1).into_bytes(),
                ))?;
                let key = value
                    .get("psk")
                    .or_else(|| value.get("key"))
                    .and_then(serde_json::Value::as_str);
                if key.is_some_and(|k| !crate::secrets::is_sealed(k)) {
                    ids.push(row.get(0));
                }
            }
            Ok(ids)
        })
    }
}

/// Runs `f` in SERIALIZABLE transactions on `client` (each beginning with the writer's tip
/// `held()`) until one commits, fails in a way not worth retrying, or [`ATTEMPTS`] did.
fn retrying<T>(
    conn: &mut Conn,
    chain: &Arc<str>,
    held: impl Fn() -> Option<ChainTip>,
    f: &impl Fn(&Tx<'_>) -> TxResult<T>,
) -> TxResult<(T, Pending)> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match attempt_once(conn, chain.clone(), held(), f) {
            Err(Fail::Db(e)) if retryable(&e) && attempt < ATTEMPTS => {
                // Back off a little, more each time, so the winner finishes.
                let jitter = u64::from(rand_core::RngCore::next_u32(&mut rand_core::OsRng) % 4);
                std::thread::sleep(Duration::from_millis((1u64 << attempt.min(5)) + jitter));
            }
            Err(Fail::Db(e)) => {
                // It may have come from a statement planned before a migration: plan anew.
                conn.statements.clear();
                return Err(Fail::Db(e));
            }
            other => return other,
        }
    }
}

fn attempt_once<T>(
    conn: &mut Conn,
    chain: Arc<str>,
    held: Option<ChainTip>,
    f: &impl Fn(&Tx<'_>) -> TxResult<T>,
) -> TxResult<(T, Pending)> {
    let tx = conn
        .client
        .build_transaction()
        .isolation_level(IsolationLevel::Serializable)
        .start()?;
    let view = Tx {
        tx: RefCell::new(tx),
        statements: RefCell::new(&mut conn.statements),
        pending: RefCell::new(Pending {
            audit: Vec::new(),
            tip: held,
        }),
        chain,
    };
    // On failure `view` drops here, and with it the transaction: rolled back.
    let value = f(&view)?;
    let Tx { tx, pending, .. } = view;
    tx.into_inner().commit()?;
    Ok((value, pending.into_inner()))
}

impl Ledger for PgLedger {
    fn open_account(
        &self,
        new: NewAccount,
        now_ms: u64,
        audit: &AuditEvent,
    ) -> Result<UserRecord, LedgerError> {
        let candidates = posting::account_candidates();
        self.write("opening an account", |tx| {
            posted(posting::open_account(tx, &new, &candidates, now_ms, audit))
        })
    }

    fn user(&self, username: &Username) -> Result<Option<UserRecord>, LedgerError> {
        self.read_record(
            "SELECT record FROM users WHERE username = $1",
            username.as_str(),
        )
    }

    fn balance(&self, account: &AccountNumber) -> Result<Cents, LedgerError> {
        let balance: Option<String> = self.read("reading a balance", |client| {
            Ok(client
                .query_cached(
                    "SELECT balance::text FROM accounts WHERE number = $1",
                    &[&account.as_str()],
                )?
                .map(|row| row.get(0)))
        })?;
        let balance = balance.ok_or(LedgerError::NotFound)?;
        balance
            .parse()
            .map(Cents)
            .map_err(|_| LedgerError::Storage(format!("corrupt balance of {account}")))
    }

    fn apply(
        &self,
        account: &AccountNumber,
        movement: Movement,
        now_ms: u64,
        audit: &AuditEvent,
    ) -> Result<Applied, LedgerError> {
        self.write("applying a transaction", |tx| {
            posted(posting::post(tx, account, movement.clone(), now_ms, audit))
        })
    }

    fn transaction(
        &self,
        account: &AccountNumber,
        txid: &TxId,
    ) -> Result<Option<HistoryEntry>, LedgerError> {
        self.read("reading a transaction", |client| {
            match client.query_opt(
                "SELECT entry FROM transactions WHERE account = $1 AND txid = $2",
                &[&account.as_str(), &txid.as_bytes().as_slice()],
            )? {
                Some(row) => Ok(Some(decode(row.get::<_, &str>(0).as_bytes())?)),
                None => Ok(None),
            }
        })
    }

    fn history(
        &self,
        account: &AccountNumber,
        limit: u32,
    ) -> Result<Vec<HistoryEntry>, LedgerError> {
        self.read("reading a history", |client| {
            client
                .query(
                    "SELECT entry FROM transactions WHERE account = $1 \
                     ORDER BY seq DESC LIMIT $2",
                    &[&account.as_str(), &i64::from(limit)],
                )?
                .iter()
                .map(|row| Ok(decode(row.get::<_, &str>(0).as_bytes())?))
                .collect()
        })
    }

    fn throttle(&self, key: &str) -> Result<ThrottleState, LedgerError> {
        Ok(self
            .read_record("SELECT record FROM throttles WHERE key = $1", key)?
            .unwrap_or_default())
    }

    fn update_throttle(
        &self,
        key: &str,
        update: &mut dyn FnMut(ThrottleState) -> ThrottleState,
    ) -> Result<ThrottleState, LedgerError> {
        // Not under the writer lock: it moves no audit chain. SERIALIZABLE keeps concurrent
        // updates (on every node) from losing one another.
        let update = RefCell::new(update);
        let mut client = self.client()?;
        let no_chain = Arc::from("");
        let result = retrying(&mut client, &no_chain, || None, &|tx: &Tx<'_>| {
            let before: ThrottleState = tx
                .record("SELECT record FROM throttles WHERE key = $1", &[&key])?
                .unwrap_or_default();
            let after = {
                let mut update = update.borrow_mut();
                (*update)(before)
            };
            if after == before {
                // Nothing to change, nothing written (the usual login).
            } else if after == ThrottleState::default() {
                tx.run("DELETE FROM throttles WHERE key = $1", &[&key])?;
            } else {
                tx.run(
                    "INSERT INTO throttles (key, record) VALUES ($1, $2) \
                         ON CONFLICT (key) DO UPDATE SET record = EXCLUDED.record",
                    &[&key, &json(&after)],
                )?;
            }
            Ok(before)
        });
        match result {
            Ok((before, _)) => Ok(before),
            Err(Fail::Ledger(e)) => Err(e),
            Err(Fail::Db(e)) => Err(LedgerError::Database(failure("updating a throttle", e))),
        }
    }

    fn terminal(&self, id: &TerminalId) -> Result<Option<TerminalRecord>, LedgerError> {
        let stored: Option<StoredTerminal> =
            self.read_record("SELECT record FROM terminals WHERE id = $1", id.as_str())?;
        stored
            .map(|stored| terminal_from(id.clone(), stored, self.keys()))
            .transpose()
    }

    fn add_terminal(
        &self,
        terminal: &TerminalRecord,
        audit: &AuditEvent,
    ) -> Result<(), LedgerError> {
        let stored = to_stored(terminal, self.keys());
        let stored = std::str::from_utf8(&stored).expect("JSON is UTF-8");
        self.write("adding a terminal", |tx| {
            let id = terminal.id.as_str();
            if tx
                .one("SELECT 1 FROM terminals WHERE id = $1", &[&id])?
                .is_some()
            {
                return Err(LedgerError::NameTaken.into());
            }
            tx.run(
                "INSERT INTO terminals (id, record) VALUES ($1, $2)",
                &[&id, &stored],
            )?;
            tx.audit(audit)
        })
    }

    fn terminals(&self) -> Result<Vec<TerminalRecord>, LedgerError> {
        let rows: Vec<(String, String)> = self.read("reading terminals", |client| {
            Ok(client
                .query("SELECT id, record FROM terminals ORDER BY id", &[])?
                .iter()
                .map(|row| (row.get(0), row.get(1)))
                .collect())
        })?;
        rows.into_iter()
            .map(|(id, record)| {
                let id = TerminalId::new(id)
                    .ok_or_else(|| LedgerError::Storage("corrupt terminal id".into()))?;
                let record = zeroize::Zeroizing::new(record.into_bytes());
                terminal_from(id, decode(&record)?, self.keys())
            })
            .collect()
    }

    fn add_enrollment(
        &self,
        pending: &PendingEnrollment,
        audit: &AuditEvent,
    ) -> Result<(), LedgerError> {
        let code = pending.code.as_str();
        let stored = StoredEnrollment {
            name: pending.name.clone(),
            key: key_to_store(code, &pending.key, self.keys()),
            role: pending.role,
            ceilings: pending.ceilings,
            created_ms: pending.created_ms,
            expires_ms: pending.expires_ms,
        };
        let record = zeroize::Zeroizing::new(json(&stored));
        drop(zeroize::Zeroizing::new(stored.key));
        self.write("adding an enrollment", |tx| {
            if tx
                .one("SELECT 1 FROM enrollments WHERE code = $1", &[&code])?
                .is_some()
            {
                return Err(LedgerError::NameTaken.into());
            }
            tx.run(
                "INSERT INTO enrollments (code, record) VALUES ($1, $2)",
                &[&code, &record.as_str()],
            )?;
            tx.audit(audit)
        })
    }

    fn take_enrollment(
        &self,
        code: &TerminalId,
        audit: &AuditEvent,
    ) -> Result<Option<PendingEnrollment>, LedgerError> {
        let keys = self.keys();
        self.write("taking an enrollment", |tx| {
            let Some(row) = tx.one(
                "DELETE FROM enrollments WHERE code = $1 RETURNING record",
                &[&code.as_str()],
            )?
            else {
                return Ok(None);
            };
            let record = zeroize::Zeroizing::new(row.get::<_, String>(0).into_bytes());
            let stored: StoredEnrollment = decode(&record)?;
            let key = stored_key(code.as_str(), stored.key, keys)?;
            tx.audit(audit)?;
            Ok(Some(PendingEnrollment {
                code: code.clone(),
                name: stored.name,
                key,
                role: stored.role,
                ceilings: stored.ceilings,
                created_ms: stored.created_ms,
                expires_ms: stored.expires_ms,
            }))
        })
    }

    fn deposited_today(&self, terminal: &TerminalId, now_ms: u64) -> Result<Cents, LedgerError> {
        let day: Option<TerminalDay> = self.read_record(
            "SELECT record FROM terminal_days WHERE terminal = $1",
            terminal.as_str(),
        )?;
        Ok(day.map_or(Cents::ZERO, |day| day.on(now_ms)))
    }

    fn revoke_terminal(&self, id: &TerminalId, audit: &AuditEvent) -> Result<(), LedgerError> {
        let keys = self.keys();
        self.write("revoking a terminal", |tx| {
            let Some(row) = tx.one(
                "SELECT record FROM terminals WHERE id = $1",
                &[&id.as_str()],
            )?
            else {
                return Err(LedgerError::NotFound.into());
            };
            let stored = zeroize::Zeroizing::new(row.get::<_, String>(0).into_bytes());
            let mut record = terminal_from(id.clone(), decode(&stored)?, keys)?;
            record.revoked = true;
            let stored = to_stored(&record, keys);
            tx.run(
                "UPDATE terminals SET record = $2 WHERE id = $1",
                &[
                    &id.as_str(),
                    &std::str::from_utf8(&stored).expect("JSON is UTF-8"),
                ],
            )?;
            tx.audit(audit)?;
            tx.bump("revocations")
        })
        .map(|seen| {
            self.counters.revocations.fetch_max(seen, Ordering::SeqCst);
        })
    }

    fn revocations(&self) -> u64 {
        self.counters.revocations.load(Ordering::SeqCst)
    }

    fn unreachable(&self) -> bool {
        self.counters.unreachable.load(Ordering::SeqCst)
    }

    fn add_operator(
        &self,
        operator: &OperatorRecord,
        console: &TerminalRecord,
        audit: &AuditEvent,
    ) -> Result<(), LedgerError> {
        let stored = to_stored(console, self.keys());
        let stored = std::str::from_utf8(&stored).expect("JSON is UTF-8");
        let record = json(operator);
        let (name, id) = (operator.username.as_str(), console.id.as_str());
        self.write("adding an operator", |tx| {
            if tx
                .one("SELECT 1 FROM operators WHERE username = $1", &[&name])?
                .is_some()
                || tx
                    .one("SELECT 1 FROM terminals WHERE id = $1", &[&id])?
                    .is_some()
            {
                return Err(LedgerError::NameTaken.into());
            }
            tx.run(
                "INSERT INTO operators (username, record) VALUES ($1, $2)",
                &[&name, &record],
            )?;
            tx.run(
                "INSERT INTO terminals (id, record) VALUES ($1, $2)",
                &[&id, &stored],
            )?;
            tx.audit(audit)
        })
    }

    fn operator(&self, username: &Username) -> Result<Option<OperatorRecord>, LedgerError> {
        self.read_record(
            "SELECT record FROM operators WHERE username = $1",
            username.as_str(),
        )
    }

    fn replace_credential(
        &self,
        username: &Username,
        credential: NewCredential,
        audit: &AuditEvent,
    ) -> Result<(), LedgerError> {
        self.replace_login(
            "replacing a credential",
            "users",
            username,
            |user: &mut UserRecord| credential.apply_to(user),
            audit,
        )
    }

    fn replace_operator_password(
        &self,
        username: &Username,
        password_hash: String,
        audit: &AuditEvent,
    ) -> Result<(), LedgerError> {
        self.replace_login(
            "replacing an operator's password",
            "operators",
            username,
            |operator: &mut OperatorRecord| operator.password_hash.clone_from(&password_hash),
            audit,
        )
    }

    fn credential_changes(&self) -> u64 {
        self.counters.credential_changes.load(Ordering::SeqCst)
    }

    fn seal_secrets(
        &self,
        keys: Arc<StorageKeys>,
        audit: &AuditEvent,
    ) -> Result<usize, LedgerError> {
        let keys = self.sealing.get_or_init(|| keys).clone();
        let terminals = self.plain_keys("SELECT id, record FROM terminals")?;
        let enrollments = self.plain_keys("SELECT code, record FROM enrollments")?;
        if terminals.is_empty() && enrollments.is_empty() {
            return Ok(0);
        }
        let mut audit = audit.clone();
        audit.detail = Some(format!(
            "{} terminal and {} enrollment keys sealed",
            terminals.len(),
            enrollments.len()
        ));
        self.write("sealing stored keys", |tx| {
            let mut sealed = 0usize;
            for id in &terminals {
                let Some(stored) = tx.record::<StoredTerminal>(
                    "SELECT record FROM terminals WHERE id = $1",
                    &[id],
                )?
                else {
                    continue;
                };
                if crate::secrets::is_sealed(&stored.psk) {
                    continue;
                }
                let terminal_id = TerminalId::new(id.as_str())
                    .ok_or_else(|| LedgerError::Storage("corrupt terminal id".into()))?;
                let record = terminal_from(terminal_id, stored, None)?;
                let stored = to_stored(&record, Some(&keys));
                tx.run(
                    "UPDATE terminals SET record = $2 WHERE id = $1",
                    &[id, &std::str::from_utf8(&stored).expect("JSON is UTF-8")],
                )?;
                sealed += 1;
            }
            for code in &enrollments {
                let Some(mut stored) = tx.record::<StoredEnrollment>(
                    "SELECT record FROM enrollments WHERE code = $1",
                    &[code],
                )?
                else {
                    continue;
                };
                if crate::secrets::is_sealed(&stored.key) {
                    continue;
                }
                let key = stored_key(code, std::mem::take(&mut stored.key), None)?;
                stored.key = keys.seal(code, &key);
                tx.run(
                    "UPDATE enrollments SET record = $2 WHERE code = $1",
                    &[code, &json(&stored)],
                )?;
                sealed += 1;
            }
            if sealed > 0 {
                tx.audit(&audit)?;
            }
            Ok(sealed)
        })
    }

    fn totals(
        &self,
        now_ms: u64,
        day_start_ms: u64,
        minutes: usize,
    ) -> Result<Totals, LedgerError> {
        let this_minute = now_ms / MINUTE_MS;
        let end = to_i64((this_minute + 1) * MINUTE_MS)?;
        let today = to_i64(day_start_ms.div_ceil(MINUTE_MS) * MINUTE_MS)?;
        let span = u64::try_from(minutes).unwrap_or(u64::MAX);
        let first = to_i64(this_minute.saturating_sub(span.saturating_sub(1)) * MINUTE_MS)?;
        self.read("counting the totals", |client| {
            // One snapshot for all three counts.
            let mut tx = client
                .build_transaction()
                .isolation_level(IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()?;
            let row = tx.query_one(
                "SELECT count(*), COALESCE(sum(balance), 0)::text FROM accounts",
                &[],
            )?;
            let accounts = to_u64(row.get(0))?;
            let deposits_cents = row
                .get::<_, &str>(1)
                .parse::<u128>()
                .map_err(|_| LedgerError::Storage("corrupt balances".into()))?;
            let transactions_today = to_u64(
                tx.query_one(
                    "SELECT count(*) FROM transactions WHERE time_ms >= $1 AND time_ms < $2",
                    &[&today, &end],
                )?
                .get(0),
            )?;
            let mut per_minute = vec![0u32; minutes];
            for row in tx.query(
                "SELECT time_ms / 60000, count(*) FROM transactions \
                 WHERE time_ms >= $1 AND time_ms < $2 GROUP BY 1",
                &[&first, &end],
            )? {
                let minute = to_u64(row.get(0))?;
                let ago = usize::try_from(this_minute - minute).unwrap_or(usize::MAX);
                if let Some(slot) = minutes
                    .checked_sub(1 + ago)
                    .and_then(|i| per_minute.get_mut(i))
                {
                    *slot = u32::try_from(row.get::<_, i64>(1)).unwrap_or(u32::MAX);
                }
            }
            tx.commit()?;
            Ok(Totals {
                accounts,
                deposits_cents,
                transactions_today,
                per_minute,
            })
        })
    }

    fn recent_audit(&self, limit: usize) -> Result<RecentAudit, LedgerError> {
        let total = self.head()?.map_or(0, |head| head.next_seq);
        Ok(self.recent.newest(total, limit))
    }

    fn audit(&self, event: &AuditEvent) -> Result<(), LedgerError> {
        self.write("appending to the audit log", |tx| tx.audit(event))
    }

    fn create_bank(&self, identity: &BankIdentity) -> Result<bool, LedgerError> {
        require_auditor_key(identity, "a bank needs the auditor's public key")?;
        let identity = encode(identity);
        self.write("creating the bank", |tx| {
            if tx.any_chain()? || tx.meta(IDENTITY_KEY)?.is_some() {
                return Ok(false);
            }
            tx.put_head(&ChainHead::EMPTY)?;
            tx.put_meta(IDENTITY_KEY, &identity)?;
            Ok(true)
        })
    }

    fn identity(&self) -> Result<Option<BankIdentity>, LedgerError> {
        let bytes: Option<Vec<u8>> = self.read("reading the identity", |client| {
            Ok(client
                .query_opt(
                    "SELECT value FROM bank_meta WHERE key = $1",
                    &[&IDENTITY_KEY],
                )?
                .map(|row| row.get(0)))
        })?;
        bytes.map(|bytes| decode(&bytes)).transpose()
    }

    fn adopt_identity(&self, identity: &BankIdentity) -> Result<bool, LedgerError> {
        let identity = encode(identity);
        self.write("recording the identity", |tx| {
            if tx.meta(IDENTITY_KEY)?.is_some() || !tx.any_chain()? {
                return Ok(false);
            }
            tx.put_meta(IDENTITY_KEY, &identity)?;
            Ok(true)
        })
    }

    fn record_bank_key(&self, public_hex: &str, audit: &AuditEvent) -> Result<bool, LedgerError> {
        self.write("recording the bank key", |tx| {
            let Some(bytes) = tx.meta(IDENTITY_KEY)? else {
                return Ok(false);
            };
            let Some(identity) = with_bank_key(&bytes, public_hex)? else {
                return Ok(false);
            };
            tx.put_meta(IDENTITY_KEY, &encode(&identity))?;
            tx.audit(audit)?;
            Ok(true)
        })
    }

    fn record_auditor_key(
        &self,
        identity: &BankIdentity,
        audit: &AuditEvent,
    ) -> Result<bool, LedgerError> {
        require_auditor_key(identity, "no usable auditor key to record")?;
        let recorded = encode(identity);
        self.write("recording the auditor key", |tx| {
            let Some(bytes) = tx.meta(IDENTITY_KEY)? else {
                return Ok(false);
            };
            if !takes_auditor_key(&bytes, identity)? {
                return Ok(false);
            }
            let Some(bytes) = tx.head_bytes()? else {
                return Err(LedgerError::Storage("audit log not initialised".into()).into());
            };
            let Some(head) = ChainHead::from_bytes(&bytes) else {
                return Err(LedgerError::Storage("audit head corrupt".into()).into());
            };
            // A database is never from before auditor keys, but an identity adopted without
            // one is moved the same way: the entries so far become a legacy epoch.
            if ChainHead::is_legacy_encoding(&bytes) && head.next_seq > 0 {
                tx.put_epoch(&Epoch::legacy())?;
            }
            tx.put_head(&head)?;
            tx.put_meta(IDENTITY_KEY, &recorded)?;
            tx.audit(audit)?;
            Ok(true)
        })
    }

    fn chain_position(&self) -> Result<Option<ChainPosition>, LedgerError> {
        Ok(self.head()?.map(|head| ChainPosition {
            next_seq: head.next_seq,
            last_hash: head.prev_hash,
        }))
    }

    fn chain_tip(&self) -> Option<ChainTip> {
        self.tip.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn audit_entry(&self, seq: u64) -> Result<Option<Vec<u8>>, LedgerError> {
        let seq = to_i64(seq)?;
        let Some(chain) = self.chain.as_deref() else {
            return Ok(None);
        };
        self.read("reading an audit entry", |client| {
            Ok(client
                .query_opt(
                    "SELECT entry FROM audit_entries WHERE chain = $1 AND seq = $2",
                    &[&chain, &seq],
                )?
                .map(|row| row.get(0)))
        })
    }

    fn audit_log(&self) -> Result<AuditLog, LedgerError> {
        let Some(chain) = self.chain.as_deref() else {
            return self.chain_log("");
        };
        let mut log = self.chain_log(chain)?;
        log.head = self.head()?;
        Ok(log)
    }

    fn audit_epochs(&self) -> Result<Vec<Epoch>, LedgerError> {
        Ok(self.audit_log()?.epochs)
    }

    fn audit_chain_name(&self) -> String {
        self.chain.as_deref().unwrap_or("").to_owned()
    }

    /// Every chain with a head, an entry or an epoch record (a chain whose head row was
    /// deleted is still verified, and found headless).
    fn audit_chains(&self) -> Result<Vec<AuditLog>, LedgerError> {
        let names: Vec<String> = self.read("reading the audit chains", |client| {
            Ok(client
                .query(
                    "SELECT chain FROM audit_chains UNION SELECT chain FROM audit_entries \
                     UNION SELECT chain FROM audit_epochs ORDER BY 1",
                    &[],
                )?
                .iter()
                .map(|row| row.get(0))
                .collect())
        })?;
        names.iter().map(|name| self.chain_log(name)).collect()
    }

    fn check_audit_links(&self) -> Result<Result<u64, crate::audit::VerifyError>, LedgerError> {
        /// Entries read per query: the log is streamed, never loaded whole.
        const PAGE: i64 = 1_000;
        let head = self.head()?;
        let chain = self.chain.as_deref().unwrap_or("").to_owned();
        let mut client = self.client()?;
        let mut failure_seen = None;
        let mut next = 0i64;
        let mut page = VecDeque::<(u64, Vec<u8>)>::new();
        let mut done = false;
        let entries = std::iter::from_fn(|| {
            if page.is_empty() && !done {
                let rows = client.query(
                    "SELECT seq, entry FROM audit_entries WHERE chain = $1 AND seq >= $2 \
                     ORDER BY seq LIMIT $3",
                    &[&chain, &next, &PAGE],
                );
                match rows {
                    Ok(rows) => {
                        done = i64::try_from(rows.len()).unwrap_or(0) < PAGE;
                        for row in rows {
                            let seq: i64 = row.get(0);
                            next = seq + 1;
                            match to_u64(seq) {
                                Ok(seq) => page.push_back((seq, row.get(1))),
                                Err(e) => {
                                    failure_seen = Some(e);
                                    done = true;
                                    break;
                                }
                            }
                        }
                    }
                    Err(e) => {
                        failure_seen =
                            Some(LedgerError::Database(failure("reading the audit log", e)));
                        done = true;
                    }
                }
            }
            page.pop_front()
        });
        let checked = crate::audit::check_links(entries, head.as_ref());
        failure_seen.map_or(Ok(checked), Err)
    }

    fn durable(&self) -> BoxFuture<'static, Result<(), LedgerError>> {
        Box::pin(self.group.clone().durable())
    }

    fn sync(&self) -> Result<(), LedgerError> {
        tell(self.hook.get(), &self.tip)
    }

    fn on_durable(&self, hook: FlushHook) -> bool {
        self.hook.set(hook).is_ok()
    }

    fn update_opening(
        &self,
        terminal: &TerminalId,
        update: &mut dyn FnMut(OpeningBucket) -> OpeningBucket,
    ) -> Result<Option<OpeningBucket>, LedgerError> {
        self.update_opening_bucket(terminal, update).map(Some)
    }

    fn publish_sessions(
        &self,
        node: &NodeName,
        sessions: &NodeSessions,
    ) -> Result<bool, LedgerError> {
        self.publish_node_sessions(node, sessions).map(|()| true)
    }

    fn other_sessions(&self, node: &NodeName) -> Result<Vec<NodeSessions>, LedgerError> {
        self.other_node_sessions(node)
    }

    fn withdraw_sessions(&self, node: &NodeName) -> Result<(), LedgerError> {
        self.withdraw_node_sessions(node)
    }
}

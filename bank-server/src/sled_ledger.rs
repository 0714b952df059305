//! The default `Ledger`'s storage on sled: keys, trees (the hot records in `compact`'s
//! binary forms), and every change handed to one writer thread (`writer`), which commits what
//! is queued as one sled transaction per batch (balance, transaction record, transaction-id
//! entry, the terminal's day of deposits and audit entry together); its flusher thread makes
//! each batch durable with one sync. The money rules are `posting`'s, run inside the
//! transaction over the trees (a `posting::Book`). The audit chain's key is held in memory
//! only (`Store::tip`): the first entry after opening begins an epoch, its record written to
//! `meta` in the same commit.

use std::cell::RefCell;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::future::BoxFuture;
use protocol::{AccountNumber, Cents, HistoryEntry, TerminalId, TxId, Username};
use serde::{Deserialize, Serialize};
use sled::transaction::{
    ConflictableTransactionError, TransactionError, TransactionalTree, UnabortableTransactionError,
};
use sled::{Db, Tree};

use crate::audit::{AuditEvent, ChainHead, ChainTip, Epoch};
use crate::chain_store::{self, ChainRows, Moved};
use crate::compact::{self, TxidValue};
use crate::ledger::{
    Applied, AuditLog, BankIdentity, ChainPosition, DepositCeilings, FlushHook, IoFailure, Ledger,
    LedgerError, Movement, NewAccount, NewCredential, OperatorRecord, PendingEnrollment,
    RecentAudit, TerminalDay, TerminalRecord, ThrottleState, Totals, UserRecord,
};
use crate::posting::{self, AccountRecord, Book, PostingError};
use crate::records::{
    decode, encode, key_to_store, require_auditor_key, storage, stored_key, takes_auditor_key,
    terminal_from, to_stored, with_bank_key, Recent, StoredCeilings, StoredEnrollment,
    StoredTerminal,
};
use crate::secrets::StorageKeys;
use crate::tally::{Delta, Stored, Tally};
use crate::writer::{self, Flushed, Writer};

/// The audit chain's head in `meta` ([`ChainHead::to_bytes`]): next seq || 32 zero bytes ||
/// hash of the last entry. Never a key: a store from before auditor keys held the current key
/// in the middle until its first start.
const HEAD_KEY: &[u8] = b"audit_head";
/// The audit epochs in `meta`: `audit_epoch/` || start (u64 BE) -> [`Epoch::to_bytes`].
const EPOCH_PREFIX: &[u8] = b"audit_epoch/";
const IDENTITY_KEY: &[u8] = b"identity";
/// The console's totals (accounts, money held) in `meta`, rewritten by every batch that moves
/// them; their per-minute transaction counts are the keys of [`MINUTES_TREE`].
const TOTALS_KEY: &[u8] = b"totals";
/// Transactions per minute: `minute (u64 BE) -> count (u32 BE)`, the last day only.
const MINUTES_TREE: &str = "tally_minutes";
/// What each terminal under a per-day ceiling deposited on its latest day:
/// `terminal id -> TerminalDay (JSON)`, moved in the deposit's own transaction.
const TERMINAL_DAYS_TREE: &str = "terminal_days";

/// The totals as stored under [`TOTALS_KEY`] (the money held as a decimal string: it may
/// exceed `u64`).
#[derive(Serialize, Deserialize)]
struct StoredTotals {
    accounts: u64,
    cents: String,
}

/// Writes what the totals become (the record, the changed minutes, the dropped minutes) inside
/// a transaction.
fn write_totals(
    meta: &TransactionalTree,
    minutes: &TransactionalTree,
    stored: &Stored,
) -> Result<(), UnabortableTransactionError> {
    let record = StoredTotals {
        accounts: stored.accounts,
        cents: stored.cents.to_string(),
    };
    meta.insert(TOTALS_KEY, encode(&record))?;
    for (minute, count) in &stored.minutes {
        minutes.insert(&minute.to_be_bytes(), &count.to_be_bytes())?;
    }
    for minute in &stored.dropped {
        minutes.remove(&minute.to_be_bytes())?;
    }
    Ok(())
}

/// The trees every change may touch, inside one transaction.
struct View<'a> {
    users: &'a TransactionalTree,
    accounts: &'a TransactionalTree,
    txs: &'a TransactionalTree,
    txids: &'a TransactionalTree,
    terminals: &'a TransactionalTree,
    audit: &'a TransactionalTree,
    meta: &'a TransactionalTree,
    operators: &'a TransactionalTree,
    enrollments: &'a TransactionalTree,
    terminal_days: &'a TransactionalTree,
    /// What this attempt did that memory must learn once it commits.
    pending: &'a RefCell<Pending>,
}

/// What a transaction attempt did, applied to the in-memory state only once it commits.
#[derive(Default)]
struct Pending {
    /// Audit events appended, for the console's recent entries.
    audit: Vec<(u64, AuditEvent)>,
    /// Movements of the running totals.
    tally: Delta,
    /// Where the audit chain's writer stands after this attempt's entries (memory only).
    tip: Option<ChainTip>,
}

type TxResult<T> = Result<T, ConflictableTransactionError<LedgerError>>;

/// A change queued for the writer: applies itself inside its batch's transaction, then is
/// answered (see [`writer::Job`]).
trait Queued: Send + 'static {
    /// Applies the change, recording its own result or refusal; `Err` fails the whole batch
    /// (a store failure, which may come after some of its writes). A change that refuses
    /// must do so before it writes anything (every change here checks first, then writes),
    /// so its refusal is its own and the others in the batch still commit.
    fn run(&self, view: &View<'_>) -> TxResult<()>;
    /// [`writer::Job::committed`].
    fn committed(self: Box<Self>) -> Option<Flushed>;
    /// [`writer::Job::failed`].
    fn failed(self: Box<Self>, e: LedgerError);
}

impl writer::Job for Box<dyn Queued> {
    fn committed(self) -> Option<Flushed> {
        Queued::committed(self)
    }

    fn failed(self, e: LedgerError) {
        Queued::failed(self, e);
    }
}

/// Where a change's answer goes: a thread blocked on it, or a task awaiting it.
enum Reply<T> {
    Wait(std::sync::mpsc::SyncSender<Result<T, LedgerError>>),
    Await(tokio::sync::oneshot::Sender<Result<T, LedgerError>>),
}

impl<T> Reply<T> {
    fn send(self, result: Result<T, LedgerError>) {
        // A caller that stopped waiting (a closed session) needs no answer.
        match self {
            Self::Wait(to) => drop(to.send(result)),
            Self::Await(to) => drop(to.send(result)),
        }
    }
}

/// One change: `f` run inside the batch's transaction (again if sled retries it), its last
/// result kept until the batch commits.
struct Change<T, F> {
    f: F,
    result: RefCell<Option<Result<T, LedgerError>>>,
    reply: Reply<T>,
    /// Answered only once a flush covers it (a refusal, which wrote nothing, at once).
    durable: bool,
}

impl<T, F> Queued for Change<T, F>
where
    T: Send + 'static,
    F: Fn(&View<'_>) -> TxResult<T> + Send + 'static,
{
    fn run(&self, view: &View<'_>) -> TxResult<()> {
        let result = match (self.f)(view) {
            Ok(value) => Ok(value),
            // A refusal by the rules wrote nothing: it is this change's alone.
            Err(ConflictableTransactionError::Abort(e)) if e.is_refusal() => Err(e),
            // A store failure may come after this change's first writes: the whole batch
            // aborts, so nothing of it commits half done.
            Err(other) => return Err(other),
        };
        *self.result.borrow_mut() = Some(result);
        Ok(())
    }

    fn committed(self: Box<Self>) -> Option<Flushed> {
        let Self {
            result,
            reply,
            durable,
            ..
        } = *self;
        let result = result
            .into_inner()
            .unwrap_or_else(|| Err(LedgerError::Storage("a change was lost".into())));
        if durable && result.is_ok() {
            return Some(Box::new(move |flushed: Result<(), LedgerError>| {
                reply.send(flushed.and(result));
            }));
        }
        reply.send(result);
        None
    }

    fn failed(self: Box<Self>, e: LedgerError) {
        self.reply.send(Err(e));
    }
}

fn abort<T>(e: LedgerError) -> TxResult<T> {
    Err(ConflictableTransactionError::Abort(e))
}

/// A sled failure while doing `during`: an I/O error stays one (typed, so the bank can tell a
/// failing disk from a refusal).
fn sled_failure(during: &str, e: sled::Error) -> LedgerError {
    match e {
        sled::Error::Io(io) => LedgerError::Io(IoFailure::new(during, io)),
        other => storage(other),
    }
}

fn history_prefix(account: &AccountNumber) -> Vec<u8> {
    let mut key = account.as_str().as_bytes().to_vec();
    key.push(b'/');
    key
}

fn history_key(account: &AccountNumber, seq: u64) -> Vec<u8> {
    let mut key = history_prefix(account);
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

fn txid_key(account: &AccountNumber, txid: &TxId) -> Vec<u8> {
    let mut key = account.as_str().as_bytes().to_vec();
    key.push(b'#');
    key.extend_from_slice(txid.as_bytes());
    key
}

/// A transaction id whose entry is missing from its account's history.
fn dangling_txid() -> LedgerError {
    LedgerError::Storage("corrupt record: a transaction id points at no history entry".into())
}

fn epoch_key(start: u64) -> Vec<u8> {
    [EPOCH_PREFIX, &start.to_be_bytes()].concat()
}

/// The audit chain's rows in the batch's sled transaction.
impl ChainRows for View<'_> {
    type Error = ConflictableTransactionError<LedgerError>;

    fn fail(&self, e: LedgerError) -> Self::Error {
        ConflictableTransactionError::Abort(e)
    }

    fn head_bytes(&self) -> TxResult<Option<Vec<u8>>> {
        Ok(self.meta.get(HEAD_KEY)?.map(|v| v.to_vec()))
    }

    fn identity_bytes(&self) -> TxResult<Option<Vec<u8>>> {
        Ok(self.meta.get(IDENTITY_KEY)?.map(|v| v.to_vec()))
    }

    fn put_entry(&self, seq: u64, entry: Vec<u8>) -> TxResult<()> {
        self.audit.insert(seq.to_be_bytes().to_vec(), entry)?;
        Ok(())
    }

    fn put_head(&self, head: &ChainHead) -> TxResult<()> {
        self.meta.insert(HEAD_KEY, &head.to_bytes()[..])?;
        Ok(())
    }

    fn put_epoch(&self, epoch: &Epoch) -> TxResult<()> {
        self.meta.insert(epoch_key(epoch.start), epoch.to_bytes())?;
        Ok(())
    }
}

/// Appends an audit entry inside the transaction; the first this ledger appends begins an
/// epoch. The key stays in memory (`Pending::tip`, then `SledLedger::tip` once committed).
fn append_audit(view: &View<'_>, event: &AuditEvent) -> TxResult<()> {
    let held = view.pending.borrow_mut().tip.take();
    let next = chain_store::append(view, held, Moved::Refuse, event)?;
    let mut pending = view.pending.borrow_mut();
    pending
        .audit
        .push((next.head().next_seq - 1, event.clone()));
    pending.tip = Some(next);
    Ok(())
}

/// The posting rules' store, inside the batch's sled transaction.
impl Book for View<'_> {
    type Error = ConflictableTransactionError<LedgerError>;

    fn user_exists(&self, username: &Username) -> TxResult<bool> {
        Ok(self.users.get(username.as_str())?.is_some())
    }

    fn account(&self, account: &AccountNumber) -> TxResult<Option<AccountRecord>> {
        match self.accounts.get(account.as_str())? {
            Some(bytes) => compact::account_from_bytes(&bytes).map(Some).or_else(abort),
            None => Ok(None),
        }
    }

    fn txid_entry(&self, account: &AccountNumber, txid: &TxId) -> TxResult<Option<HistoryEntry>> {
        let Some(bytes) = self.txids.get(txid_key(account, txid))? else {
            return Ok(None);
        };
        match compact::txid_from_bytes(&bytes).or_else(abort)? {
            TxidValue::Entry(entry) => Ok(Some(entry)),
            TxidValue::At(seq) => match self.txs.get(history_key(account, seq))? {
                Some(bytes) => compact::entry_from_bytes(&bytes).map(Some).or_else(abort),
                None => abort(dangling_txid()),
            },
        }
    }

    fn put_user(&self, user: &UserRecord) -> TxResult<()> {
        self.users.insert(user.username.as_str(), encode(user))?;
        Ok(())
    }

    fn put_account(&self, account: &AccountNumber, record: &AccountRecord) -> TxResult<()> {
        self.accounts
            .insert(account.as_str(), compact::account_to_bytes(record))?;
        Ok(())
    }

    fn put_entry(&self, account: &AccountNumber, seq: u64, entry: &HistoryEntry) -> TxResult<()> {
        self.txs
            .insert(history_key(account, seq), compact::entry_to_bytes(entry))?;
        self.txids.insert(
            txid_key(account, &entry.txid),
            &compact::txid_to_bytes(seq)[..],
        )?;
        Ok(())
    }

    fn terminal_ceilings(&self, terminal: &TerminalId) -> TxResult<Option<DepositCeilings>> {
        match self.terminals.get(terminal.as_str())? {
            Some(bytes) => decode::<StoredCeilings>(&bytes)
                .map(|stored| Some(stored.into()))
                .or_else(abort),
            None => Ok(None),
        }
    }

    fn terminal_day(&self, terminal: &TerminalId) -> TxResult<Option<TerminalDay>> {
        match self.terminal_days.get(terminal.as_str())? {
            Some(bytes) => decode(&bytes).map(Some).or_else(abort),
            None => Ok(None),
        }
    }

    fn put_terminal_day(&self, terminal: &TerminalId, day: &TerminalDay) -> TxResult<()> {
        self.terminal_days.insert(terminal.as_str(), encode(day))?;
        Ok(())
    }

    fn append_audit(&self, event: &AuditEvent) -> TxResult<()> {
        append_audit(self, event)
    }

    fn moved(&self, delta: Delta) {
        self.pending.borrow_mut().tally.add(delta);
    }
}

/// A deposit or withdrawal as a change for the writer: the posting rules over the batch's
/// trees.
fn post(
    account: AccountNumber,
    movement: Movement,
    now_ms: u64,
    audit: AuditEvent,
) -> impl Fn(&View<'_>) -> TxResult<Applied> + Send + 'static {
    move |view| {
        posted(posting::post(
            view,
            &account,
            movement.clone(),
            now_ms,
            &audit,
        ))
    }
}

/// A posting's failure as the batch transaction sees it: a refusal aborts this change only
/// (the rules wrote nothing), a store failure the whole batch.
fn posted<T>(
    result: Result<T, PostingError<ConflictableTransactionError<LedgerError>>>,
) -> TxResult<T> {
    result.map_err(|e| match e {
        PostingError::Refused(refusal) => ConflictableTransactionError::Abort(refusal.into()),
        PostingError::Store(e) => e,
    })
}

/// The sled ledger: its store, and the one writer every change goes through.
pub struct SledLedger {
    store: Arc<Store>,
    writer: Writer<Box<dyn Queued>>,
}

/// The trees and what memory keeps of them, shared by the ledger and its writer threads.
struct Store {
    db: Arc<Db>,
    users: Tree,
    accounts: Tree,
    txs: Tree,
    txids: Tree,
    terminals: Tree,
    audit: Tree,
    meta: Tree,
    throttle: Tree,
    operators: Tree,
    /// Pending enrollment codes, by code id.
    enrollments: Tree,
    /// Transactions per minute (see [`MINUTES_TREE`]).
    minutes: Tree,
    /// The day's deposits per terminal (see [`TERMINAL_DAYS_TREE`]).
    terminal_days: Tree,
    /// Running totals for the console (counted at open, then moved by each commit).
    tally: Mutex<Tally>,
    /// The newest audit events appended since opening, newest last.
    recent: Recent,
    /// Committed revocations since opening (see [`Ledger::revocations`]).
    revocations: AtomicU64,
    /// Committed credential replacements since opening (see [`Ledger::credential_changes`]).
    credential_changes: AtomicU64,
    /// The keys that seal stored terminal and enrollment keys, once the bank gave them.
    sealing: std::sync::OnceLock<Arc<StorageKeys>>,
    /// The totals were counted at open (a store from before they were kept) and are not yet
    /// stored: the next commit stores them whole.
    totals_unsaved: AtomicBool,
    /// Serialises the throttle's read-modify-write (outside the writer's batches).
    throttle_lock: Mutex<()>,
    /// sled's log file, for the `fdatasync` its own flush does not make.
    log: std::fs::File,
    /// Told after each flush where the audit chain stood when it began (the checkpoints).
    hook: std::sync::OnceLock<FlushHook>,
    /// Where this ledger's audit chain writer stands, with the key for the next entry: in
    /// memory only, set by the first committed entry (which begins an epoch), moved by each.
    tip: Mutex<Option<ChainTip>>,
}

/// sled's page cache unless configured (sled's own default is 1 GiB).
pub const DEFAULT_CACHE_BYTES: u64 = 64 * 1024 * 1024;

/// The file in a sled 0.34 directory that holds its log (every committed write).
const SLED_LOG_FILE: &str = "db";

/// Writes what sled has committed to its log and makes it durable. sled 0.34's flush ends in
/// `sync_file_range`, which starts and waits for the page writes but flushes neither the
/// drive's cache nor the file's metadata (its own `fsync` runs only every 500 ms in the
/// background), so an `fdatasync` of the log follows; `fdatasync` acts on the file, whichever
/// descriptor names it.
/// Then `hook` is told where this ledger's audit chain stood before the flush (its `tip`, set
/// only after a commit, so all of it is on disk).
fn flush_to_disk(
    db: &sled::Db,
    log: &std::fs::File,
    hook: Option<&FlushHook>,
    tip: &Mutex<Option<ChainTip>>,
) -> Result<(), LedgerError> {
    let tip = match hook {
        Some(_) => tip.lock().unwrap_or_else(|p| p.into_inner()).clone(),
        None => None,
    };
    db.flush().map_err(|e| sled_failure("flush", e))?;
    log.sync_data()
        .map_err(|e| LedgerError::Io(IoFailure::new("fdatasync of sled's log", e)))?;
    match (hook, tip) {
        (Some(hook), Some(tip)) => hook(&tip),
        _ => Ok(()),
    }
}

impl SledLedger {
    /// Whether `dir` holds a sled database at all (its `conf` and log files), without opening
    /// it: opening creates one.
    pub fn exists_in(dir: &Path) -> bool {
        dir.join("conf").is_file() && dir.join(SLED_LOG_FILE).is_file()
    }

    /// Opens (or creates) the database in `dir` with the default page cache.
    pub fn open(dir: &Path) -> Result<Self, LedgerError> {
        Self::open_with_cache(dir, DEFAULT_CACHE_BYTES)
    }

    /// Opens (or creates) the database in `dir`, its page cache bounded to `cache_bytes`.
    pub fn open_with_cache(dir: &Path, cache_bytes: u64) -> Result<Self, LedgerError> {
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(cache_bytes)
            .open()
            .map_err(|e| {
                let detail = e.to_string();
                if detail.contains("lock") {
                    LedgerError::InUse(format!(
                        "{} is in use by another process (is the bank running? stop it first)",
                        dir.display()
                    ))
                } else {
                    sled_failure(&format!("opening {}", dir.display()), e)
                }
            })?;
        let db = Arc::new(db);
        let log = std::fs::File::open(dir.join(SLED_LOG_FILE))
            .map_err(|e| storage(format!("{}: {e}", dir.join(SLED_LOG_FILE).display())))?;
        let tree = |name: &str| db.open_tree(name).map_err(storage);
        let store = Store {
            users: tree("users")?,
            accounts: tree("accounts")?,
            txs: tree("transactions")?,
            txids: tree("txids")?,
            terminals: tree("terminals")?,
            audit: tree("audit")?,
            meta: tree("meta")?,
            throttle: tree("throttle")?,
            operators: tree("operators")?,
            enrollments: tree("enrollments")?,
            minutes: tree(MINUTES_TREE)?,
            terminal_days: tree(TERMINAL_DAYS_TREE)?,
            recent: Recent::default(),
            tally: Mutex::new(Tally::default()),
            log,
            hook: std::sync::OnceLock::new(),
            tip: Mutex::new(None),
            db,
            revocations: AtomicU64::new(0),
            credential_changes: AtomicU64::new(0),
            sealing: std::sync::OnceLock::new(),
            totals_unsaved: AtomicBool::new(false),
            throttle_lock: Mutex::new(()),
        };
        store.load_totals()?;
        let store = Arc::new(store);
        // The threads hold the store until the ledger is dropped, which joins them: the
        // database (and its file lock) is closed when `drop` returns.
        let (committing, flushing) = (store.clone(), store.clone());
        let writer = Writer::spawn(
            "sled",
            move |jobs: &[Box<dyn Queued>]| committing.commit_batch(jobs),
            move || flushing.flush_to_disk(),
        )
        .map_err(|e| LedgerError::Io(IoFailure::new("starting the writer threads", e)))?;
        Ok(Self { store, writer })
    }

    /// Queues `f` for the writer and blocks until it is answered: once its batch committed
    /// (durable only after [`Ledger::durable`]).
    fn tx<T: Send + 'static>(
        &self,
        f: impl Fn(&View<'_>) -> TxResult<T> + Send + 'static,
    ) -> Result<T, LedgerError> {
        let (reply, answer) = std::sync::mpsc::sync_channel(1);
        self.submit(f, Reply::Wait(reply), false);
        answer
            .recv()
            .unwrap_or_else(|_| Err(LedgerError::Storage("the writer stopped".into())))
    }

    /// Queues `f` for the writer; the future resolves with its answer, once its batch
    /// committed and, when `durable`, once a flush covers it. No thread blocks meanwhile.
    fn queue<T: Send + 'static>(
        &self,
        durable: bool,
        f: impl Fn(&View<'_>) -> TxResult<T> + Send + 'static,
    ) -> BoxFuture<'static, Result<T, LedgerError>> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.submit(f, Reply::Await(reply), durable);
        Box::pin(async move {
            answer
                .await
                .unwrap_or_else(|_| Err(LedgerError::Storage("the writer stopped".into())))
        })
    }

    fn submit<T: Send + 'static>(
        &self,
        f: impl Fn(&View<'_>) -> TxResult<T> + Send + 'static,
        reply: Reply<T>,
        durable: bool,
    ) {
        let change: Box<dyn Queued> = Box::new(Change {
            f,
            result: RefCell::new(None),
            reply,
            durable,
        });
        self.writer.submit(change);
    }
}

impl Store {
    /// [`flush_to_disk`] of this store.
    fn flush_to_disk(&self) -> Result<(), LedgerError> {
        flush_to_disk(&self.db, &self.log, self.hook.get(), &self.tip)
    }

    /// Reads the stored totals (a record and at most a day of minute keys). A store written
    /// before totals were kept is counted once and the count stored, in one commit.
    fn load_totals(&self) -> Result<(), LedgerError> {
        let tally = match self.meta.get(TOTALS_KEY).map_err(storage)? {
            Some(bytes) => {
                let record: StoredTotals = decode(&bytes)?;
                let cents = record
                    .cents
                    .parse::<u128>()
                    .map_err(|e| LedgerError::Storage(format!("corrupt totals: {e}")))?;
                let minutes = self
                    .minutes
                    .iter()
                    .map(|item| {
                        let (key, value) = item.map_err(storage)?;
                        let minute = <[u8; 8]>::try_from(key.as_ref()).map(u64::from_be_bytes);
                        let count = <[u8; 4]>::try_from(value.as_ref()).map(u32::from_be_bytes);
                        match (minute, count) {
                            (Ok(minute), Ok(count)) => Ok((minute, count)),
                            _ => Err(LedgerError::Storage("corrupt minute count".into())),
                        }
                    })
                    .collect::<Result<Vec<_>, LedgerError>>()?;
                Tally::restore(record.accounts, cents, minutes)
            }
            // A store written before the totals were kept: counted once, in memory; the whole
            // count is stored with the first commit, so opening writes nothing (the auditor's
            // tool, a refused start).
            None => {
                self.totals_unsaved.store(true, Ordering::SeqCst);
                self.count_existing()?
            }
        };
        *self.tally.lock().unwrap_or_else(|p| p.into_inner()) = tally;
        Ok(())
    }

    /// Counts what is stored into running totals (a store written before totals were kept).
    fn count_existing(&self) -> Result<Tally, LedgerError> {
        let mut tally = Tally::default();
        for item in &self.accounts {
            let record = compact::account_from_bytes(&item.map_err(storage)?.1)?;
            tally.count_account(record.balance.0);
        }
        for item in &self.txs {
            let entry = compact::entry_from_bytes(&item.map_err(storage)?.1)?;
            tally.count_transaction(entry.time_ms);
        }
        Ok(tally)
    }

    /// Runs `jobs` in order in one sled transaction (on the writer thread, so nothing else
    /// commits meanwhile and no transaction conflicts); their results wait in each job.
    fn commit_batch(&self, jobs: &[Box<dyn Queued>]) -> Result<(), LedgerError> {
        use sled::Transactional;
        // More trees than sled's tuple impls take (nine), so a slice, in this order.
        let trees: [&Tree; 11] = [
            &self.users,
            &self.accounts,
            &self.txs,
            &self.txids,
            &self.terminals,
            &self.audit,
            &self.meta,
            &self.operators,
            &self.minutes,
            &self.enrollments,
            &self.terminal_days,
        ];
        let pending = RefCell::new(Pending::default());
        // On the writer thread: the tip cannot move while the batch runs.
        let tip = self.tip.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let result = trees[..].transaction(
            |views: &Vec<TransactionalTree>| {
                let [users, accounts, txs, txids, terminals, audit, meta, operators, minutes, enrollments, terminal_days] =
                    &views[..]
                else {
                    unreachable!("one view per tree");
                };
                *pending.borrow_mut() = Pending::default();
                pending.borrow_mut().tip = tip.clone();
                let view = View {
                    users,
                    accounts,
                    txs,
                    txids,
                    terminals,
                    audit,
                    meta,
                    operators,
                    enrollments,
                    terminal_days,
                    pending: &pending,
                };
                for job in jobs {
                    job.run(&view)?;
                }
                // The totals move in the same commit as the changes that move them: one small
                // record rewritten and one key per minute touched (a minute older than a day
                // deleted when a new minute starts).
                let pending = pending.borrow();
                let unsaved = self.totals_unsaved.load(Ordering::SeqCst);
                if pending.tally != Delta::default() || unsaved {
                    let tally = self.tally.lock().unwrap_or_else(|p| p.into_inner());
                    let stored = if unsaved {
                        let mut after = tally.clone();
                        after.apply(&pending.tally);
                        after.stored()
                    } else {
                        tally.stored_after(&pending.tally)
                    };
                    drop(tally);
                    write_totals(meta, minutes, &stored)?;
                }
                Ok(())
            },
        );
        match result {
            Ok(()) => {
                self.totals_unsaved.store(false, Ordering::SeqCst);
                let pending = pending.into_inner();
                *self.tip.lock().unwrap_or_else(|p| p.into_inner()) = pending.tip;
                self.tally
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .apply(&pending.tally);
                self.recent.extend(pending.audit);
                Ok(())
            }
            // Nothing of the batch committed: every change in it fails alike.
            Err(TransactionError::Abort(e)) => Err(e),
            Err(TransactionError::Storage(e)) => Err(sled_failure("commit", e)),
        }
    }

    /// The audit log's head, if the log exists.
    fn head(&self) -> Result<Option<ChainHead>, LedgerError> {
        match self.meta.get(HEAD_KEY).map_err(storage)? {
            Some(bytes) => ChainHead::from_bytes(&bytes)
                .map(Some)
                .ok_or_else(|| LedgerError::Storage("audit head corrupt".into())),
            None => Ok(None),
        }
    }
}

impl Ledger for SledLedger {
    fn open_account(
        &self,
        new: NewAccount,
        now_ms: u64,
        audit: &AuditEvent,
    ) -> Result<UserRecord, LedgerError> {
        // Draw account numbers outside the (re-runnable) transaction body.
        let candidates = posting::account_candidates();
        let audit = audit.clone();
        self.tx(move |view| {
            posted(posting::open_account(
                view,
                &new,
                &candidates,
                now_ms,
                &audit,
            ))
        })
    }

    fn user(&self, username: &Username) -> Result<Option<UserRecord>, LedgerError> {
        match self.store.users.get(username.as_str()).map_err(storage)? {
            Some(bytes) => decode(&bytes).map(Some),
            None => Ok(None),
        }
    }

    fn balance(&self, account: &AccountNumber) -> Result<Cents, LedgerError> {
        match self.store.accounts.get(account.as_str()).map_err(storage)? {
            Some(bytes) => compact::balance_from_bytes(&bytes),
            None => Err(LedgerError::NotFound),
        }
    }

    fn apply(
        &self,
        account: &AccountNumber,
        movement: Movement,
        now_ms: u64,
        audit: &AuditEvent,
    ) -> Result<Applied, LedgerError> {
        self.tx(post(account.clone(), movement, now_ms, audit.clone()))
    }

    fn apply_durably(
        self: Arc<Self>,
        account: AccountNumber,
        movement: Movement,
        now_ms: u64,
        audit: AuditEvent,
    ) -> BoxFuture<'static, Result<Applied, LedgerError>> {
        self.queue(true, post(account, movement, now_ms, audit))
    }

    fn audited_balance(
        self: Arc<Self>,
        account: AccountNumber,
        audit: AuditEvent,
    ) -> BoxFuture<'static, Result<Cents, LedgerError>> {
        self.queue(false, move |view| {
            let balance = match view.account(&account)? {
                Some(record) => record.balance,
                None => return abort(LedgerError::NotFound),
            };
            let mut event = audit.clone();
            event.balance_cents = Some(balance.0);
            append_audit(view, &event)?;
            Ok(balance)
        })
    }

    fn transaction(
        &self,
        account: &AccountNumber,
        txid: &TxId,
    ) -> Result<Option<HistoryEntry>, LedgerError> {
        let Some(bytes) = self
            .store
            .txids
            .get(txid_key(account, txid))
            .map_err(storage)?
        else {
            return Ok(None);
        };
        match compact::txid_from_bytes(&bytes)? {
            TxidValue::Entry(entry) => Ok(Some(entry)),
            TxidValue::At(seq) => match self
                .store
                .txs
                .get(history_key(account, seq))
                .map_err(storage)?
            {
                Some(bytes) => compact::entry_from_bytes(&bytes).map(Some),
                None => Err(dangling_txid()),
            },
        }
    }

    fn history(
        &self,
        account: &AccountNumber,
        limit: u32,
    ) -> Result<Vec<HistoryEntry>, LedgerError> {
        self.store
            .txs
            .scan_prefix(history_prefix(account))
            .rev()
            .take(limit as usize)
            .map(|item| compact::entry_from_bytes(&item.map_err(storage)?.1))
            .collect()
    }

    fn throttle(&self, key: &str) -> Result<ThrottleState, LedgerError> {
        match self.store.throttle.get(key).map_err(storage)? {
            Some(bytes) => decode(&bytes),
            None => Ok(ThrottleState::default()),
        }
    }

    fn update_throttle(
        &self,
        key: &str,
        update: &mut dyn FnMut(ThrottleState) -> ThrottleState,
    ) -> Result<ThrottleState, LedgerError> {
        let _guard = self
            .store
            .throttle_lock
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let before = self.throttle(key)?;
        let after = update(before);
        // Nothing to change, nothing written: a right credential on an account with no
        // failures (the usual login) must not need the disk.
        if after == before {
            return Ok(before);
        }
        if after == ThrottleState::default() {
            self.store
                .throttle
                .remove(key)
                .map_err(|e| sled_failure("commit", e))?;
        } else {
            self.store
                .throttle
                .insert(key, encode(&after))
                .map_err(|e| sled_failure("commit", e))?;
        }
        Ok(before)
    }

    fn terminal(&self, id: &TerminalId) -> Result<Option<TerminalRecord>, LedgerError> {
        match self.store.terminals.get(id.as_str()).map_err(storage)? {
            Some(bytes) => terminal_from(
                id.clone(),
                decode(&zeroize::Zeroizing::new(bytes.to_vec()))?,
                self.store.sealing.get().map(|k| &**k),
            )
            .map(Some),
            None => Ok(None),
        }
    }

    fn add_terminal(
        &self,
        terminal: &TerminalRecord,
        audit: &AuditEvent,
    ) -> Result<(), LedgerError> {
        let stored = to_stored(terminal, self.store.sealing.get().map(|k| &**k));
        let (id, audit) = (terminal.id.clone(), audit.clone());
        self.tx(move |view| {
            if view.terminals.get(id.as_str())?.is_some() {
                return abort(LedgerError::NameTaken);
            }
            view.terminals.insert(id.as_str(), stored.as_slice())?;
            append_audit(view, &audit)
        })
    }

    fn add_enrollment(
        &self,
        pending: &PendingEnrollment,
        audit: &AuditEvent,
    ) -> Result<(), LedgerError> {
        let stored = StoredEnrollment {
            name: pending.name.clone(),
            key: key_to_store(
                pending.code.as_str(),
                &pending.key,
                self.store.sealing.get().map(|k| &**k),
            ),
            role: pending.role,
            ceilings: pending.ceilings,
            created_ms: pending.created_ms,
            expires_ms: pending.expires_ms,
        };
        let bytes = zeroize::Zeroizing::new(encode(&stored));
        drop(zeroize::Zeroizing::new(stored.key));
        let (code, audit) = (pending.code.clone(), audit.clone());
        self.tx(move |view| {
            if view.enrollments.get(code.as_str())?.is_some() {
                return abort(LedgerError::NameTaken);
            }
            view.enrollments.insert(code.as_str(), bytes.as_slice())?;
            append_audit(view, &audit)
        })
    }

    fn take_enrollment(
        &self,
        code: &TerminalId,
        audit: &AuditEvent,
    ) -> Result<Option<PendingEnrollment>, LedgerError> {
        let (code, audit) = (code.clone(), audit.clone());
        let keys = self.store.sealing.get().cloned();
        self.tx(move |view| {
            let Some(bytes) = view.enrollments.remove(code.as_str())? else {
                return Ok(None);
            };
            let stored: StoredEnrollment = decode(&bytes).or_else(abort)?;
            let key = stored_key(code.as_str(), stored.key, keys.as_deref()).or_else(abort)?;
            append_audit(view, &audit)?;
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

    fn terminals(&self) -> Result<Vec<TerminalRecord>, LedgerError> {
        self.store
            .terminals
            .iter()
            .map(|item| {
                let (key, bytes) = item.map_err(storage)?;
                let id = TerminalId::new(String::from_utf8_lossy(&key).into_owned())
                    .ok_or_else(|| LedgerError::Storage("corrupt terminal id".into()))?;
                terminal_from(
                    id,
                    decode(&zeroize::Zeroizing::new(bytes.to_vec()))?,
                    self.store.sealing.get().map(|k| &**k),
                )
            })
            .collect()
    }

    fn deposited_today(&self, terminal: &TerminalId, now_ms: u64) -> Result<Cents, LedgerError> {
        match self
            .store
            .terminal_days
            .get(terminal.as_str())
            .map_err(storage)?
        {
            Some(bytes) => decode::<TerminalDay>(&bytes).map(|day| day.on(now_ms)),
            None => Ok(Cents::ZERO),
        }
    }

    fn revoke_terminal(&self, id: &TerminalId, audit: &AuditEvent) -> Result<(), LedgerError> {
        let (id, audit) = (id.clone(), audit.clone());
        let keys = self.store.sealing.get().cloned();
        self.tx(move |view| {
            let Some(bytes) = view.terminals.get(id.as_str())? else {
                return abort(LedgerError::NotFound);
            };
            let stored = zeroize::Zeroizing::new(bytes.to_vec());
            let keys = keys.as_deref();
            let mut record =
                terminal_from(id.clone(), decode(&stored).or_else(abort)?, keys).or_else(abort)?;
            record.revoked = true;
            view.terminals
                .insert(id.as_str(), to_stored(&record, keys).as_slice())?;
            append_audit(view, &audit)
        })?;
        self.store.revocations.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    fn revocations(&self) -> u64 {
        self.store.revocations.load(Ordering::SeqCst)
    }

    fn add_operator(
        &self,
        operator: &OperatorRecord,
        console: &TerminalRecord,
        audit: &AuditEvent,
    ) -> Result<(), LedgerError> {
        let stored = to_stored(console, self.store.sealing.get().map(|k| &**k));
        let record = encode(operator);
        let (name, id, audit) = (operator.username.clone(), console.id.clone(), audit.clone());
        self.tx(move |view| {
            if view.operators.get(name.as_str())?.is_some()
                || view.terminals.get(id.as_str())?.is_some()
            {
                return abort(LedgerError::NameTaken);
            }
            view.operators.insert(name.as_str(), record.as_slice())?;
            view.terminals.insert(id.as_str(), stored.as_slice())?;
            append_audit(view, &audit)
        })
    }

    fn operator(&self, username: &Username) -> Result<Option<OperatorRecord>, LedgerError> {
        match self
            .store
            .operators
            .get(username.as_str())
            .map_err(storage)?
        {
            Some(bytes) => decode(&bytes).map(Some),
            None => Ok(None),
        }
    }

    fn replace_credential(
        &self,
        username: &Username,
        credential: NewCredential,
        audit: &AuditEvent,
    ) -> Result<(), LedgerError> {
        let (name, audit) = (username.clone(), audit.clone());
        self.tx(move |view| {
            let Some(bytes) = view.users.get(name.as_str())? else {
                return abort(LedgerError::NotFound);
            };
            let mut user: UserRecord = decode(&bytes).or_else(abort)?;
            credential.apply_to(&mut user);
            view.users.insert(name.as_str(), encode(&user))?;
            append_audit(view, &audit)
        })?;
        self.store.credential_changes.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    fn replace_operator_password(
        &self,
        username: &Username,
        password_hash: String,
        audit: &AuditEvent,
    ) -> Result<(), LedgerError> {
        let (name, audit) = (username.clone(), audit.clone());
        self.tx(move |view| {
            let Some(bytes) = view.operators.get(name.as_str())? else {
                return abort(LedgerError::NotFound);
            };
            let mut operator: OperatorRecord = decode(&bytes).or_else(abort)?;
            operator.password_hash.clone_from(&password_hash);
            view.operators.insert(name.as_str(), encode(&operator))?;
            append_audit(view, &audit)
        })?;
        self.store.credential_changes.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    fn seal_secrets(
        &self,
        keys: Arc<StorageKeys>,
        audit: &AuditEvent,
    ) -> Result<usize, LedgerError> {
        let keys = self.store.sealing.get_or_init(|| keys).clone();
        // Which records still hold a plain key (transactions cannot iterate; each is checked
        // again inside the commit).
        let plain = |tree: &Tree| -> Result<Vec<String>, LedgerError> {
            let mut ids = Vec::new();
            for item in tree.iter() {
                let (id, bytes) = item.map_err(storage)?;
                let value: serde_json::Value = decode(&zeroize::Zeroizing::new(bytes.to_vec()))?;
                let key = value
                    .get("psk")
                    .or_else(|| value.get("key"))
                    .and_then(serde_json::Value::as_str);
                if key.is_some_and(|k| !crate::secrets::is_sealed(k)) {
                    ids.push(String::from_utf8_lossy(&id).into_owned());
                }
            }
            Ok(ids)
        };
        let (terminals, enrollments) = (
            plain(&self.store.terminals)?,
            plain(&self.store.enrollments)?,
        );
        if terminals.is_empty() && enrollments.is_empty() {
            return Ok(0);
        }
        let mut audit = audit.clone();
        audit.detail = Some(format!(
            "{} terminal and {} enrollment keys sealed",
            terminals.len(),
            enrollments.len()
        ));
        self.tx(move |view| {
            let mut sealed = 0usize;
            for id in &terminals {
                let Some(bytes) = view.terminals.get(id.as_str())? else {
                    continue;
                };
                let Some(terminal_id) = TerminalId::new(id.as_str()) else {
                    return abort(LedgerError::Storage("corrupt terminal id".into()));
                };
                let stored: StoredTerminal =
                    decode(&zeroize::Zeroizing::new(bytes.to_vec())).or_else(abort)?;
                if crate::secrets::is_sealed(&stored.psk) {
                    continue;
                }
                let record = terminal_from(terminal_id, stored, None).or_else(abort)?;
                view.terminals
                    .insert(id.as_str(), to_stored(&record, Some(&keys)).as_slice())?;
                sealed += 1;
            }
            for id in &enrollments {
                let Some(bytes) = view.enrollments.get(id.as_str())? else {
                    continue;
                };
                let mut stored: StoredEnrollment = decode(&bytes).or_else(abort)?;
                if crate::secrets::is_sealed(&stored.key) {
                    continue;
                }
                let key = stored_key(id, std::mem::take(&mut stored.key), None).or_else(abort)?;
                stored.key = keys.seal(id, &key);
                view.enrollments.insert(id.as_str(), encode(&stored))?;
                sealed += 1;
            }
            if sealed > 0 {
                append_audit(view, &audit)?;
            }
            Ok(sealed)
        })
    }

    fn credential_changes(&self) -> u64 {
        self.store.credential_changes.load(Ordering::SeqCst)
    }

    fn totals(
        &self,
        now_ms: u64,
        day_start_ms: u64,
        minutes: usize,
    ) -> Result<Totals, LedgerError> {
        let tally = self.store.tally.lock().unwrap_or_else(|p| p.into_inner());
        Ok(tally.totals(now_ms, day_start_ms, minutes))
    }

    fn recent_audit(&self, limit: usize) -> Result<RecentAudit, LedgerError> {
        let total = self.store.head()?.map_or(0, |head| head.next_seq);
        Ok(self.store.recent.newest(total, limit))
    }

    fn audit(&self, event: &AuditEvent) -> Result<(), LedgerError> {
        let event = event.clone();
        self.tx(move |view| append_audit(view, &event))
    }

    fn create_bank(&self, identity: &BankIdentity) -> Result<bool, LedgerError> {
        require_auditor_key(identity, "a bank needs the auditor's public key")?;
        let head = ChainHead::EMPTY.to_bytes();
        let identity = encode(identity);
        self.tx(move |view| {
            if view.meta.get(HEAD_KEY)?.is_some() || view.meta.get(IDENTITY_KEY)?.is_some() {
                return Ok(false);
            }
            view.meta.insert(HEAD_KEY, &head[..])?;
            view.meta.insert(IDENTITY_KEY, identity.as_slice())?;
            Ok(true)
        })
    }

    fn identity(&self) -> Result<Option<BankIdentity>, LedgerError> {
        match self.store.meta.get(IDENTITY_KEY).map_err(storage)? {
            Some(bytes) => decode(&bytes).map(Some),
            None => Ok(None),
        }
    }

    fn adopt_identity(&self, identity: &BankIdentity) -> Result<bool, LedgerError> {
        let identity = encode(identity);
        self.tx(move |view| {
            if view.meta.get(IDENTITY_KEY)?.is_some() || view.meta.get(HEAD_KEY)?.is_none() {
                return Ok(false);
            }
            view.meta.insert(IDENTITY_KEY, identity.as_slice())?;
            Ok(true)
        })
    }

    fn record_bank_key(&self, public_hex: &str, audit: &AuditEvent) -> Result<bool, LedgerError> {
        let (public_hex, audit) = (public_hex.to_owned(), audit.clone());
        self.tx(move |view| {
            let Some(bytes) = view.meta.get(IDENTITY_KEY)? else {
                return Ok(false);
            };
            let Some(identity) = with_bank_key(&bytes, &public_hex).or_else(abort)? else {
                return Ok(false);
            };
            view.meta.insert(IDENTITY_KEY, encode(&identity))?;
            append_audit(view, &audit)?;
            Ok(true)
        })
    }

    fn record_auditor_key(
        &self,
        identity: &BankIdentity,
        audit: &AuditEvent,
    ) -> Result<bool, LedgerError> {
        require_auditor_key(identity, "no usable auditor key to record")?;
        let (upgraded, recorded, audit) = (identity.clone(), encode(identity), audit.clone());
        self.tx(move |view| {
            let Some(bytes) = view.meta.get(IDENTITY_KEY)? else {
                return Ok(false);
            };
            if !takes_auditor_key(&bytes, &upgraded).or_else(abort)? {
                return Ok(false);
            }
            let Some(bytes) = view.meta.get(HEAD_KEY)? else {
                return abort(LedgerError::Storage("audit log not initialised".into()));
            };
            let Some(head) = ChainHead::from_bytes(&bytes) else {
                return abort(LedgerError::Storage("audit head corrupt".into()));
            };
            // The entries so far were sealed under the legacy chain; the key leaves the head.
            if ChainHead::is_legacy_encoding(&bytes) && head.next_seq > 0 {
                let legacy = Epoch::legacy();
                view.meta
                    .insert(epoch_key(legacy.start), legacy.to_bytes())?;
            }
            view.meta.insert(HEAD_KEY, &head.to_bytes()[..])?;
            view.meta.insert(IDENTITY_KEY, recorded.as_slice())?;
            append_audit(view, &audit)?;
            Ok(true)
        })
    }

    fn chain_position(&self) -> Result<Option<ChainPosition>, LedgerError> {
        Ok(self.store.head()?.map(|head| ChainPosition {
            next_seq: head.next_seq,
            last_hash: head.prev_hash,
        }))
    }

    fn chain_tip(&self) -> Option<ChainTip> {
        self.store
            .tip
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn audit_entry(&self, seq: u64) -> Result<Option<Vec<u8>>, LedgerError> {
        Ok(self
            .store
            .audit
            .get(seq.to_be_bytes())
            .map_err(storage)?
            .map(|v| v.to_vec()))
    }

    fn audit_log(&self) -> Result<AuditLog, LedgerError> {
        let entries = self
            .store
            .audit
            .iter()
            .map(|item| {
                let (key, value) = item.map_err(storage)?;
                let seq = <[u8; 8]>::try_from(key.as_ref())
                    .map(u64::from_be_bytes)
                    .map_err(|_| LedgerError::Storage("corrupt audit key".into()))?;
                Ok((seq, value.to_vec()))
            })
            .collect::<Result<Vec<_>, LedgerError>>()?;
        Ok(AuditLog {
            chain: String::new(),
            entries,
            head: self.store.head()?,
            epochs: self.audit_epochs()?,
        })
    }

    fn audit_epochs(&self) -> Result<Vec<Epoch>, LedgerError> {
        let legacy_head = self
            .store
            .meta
            .get(HEAD_KEY)
            .map_err(storage)?
            .is_some_and(|bytes| ChainHead::is_legacy_encoding(&bytes));
        let mut epochs = self
            .store
            .meta
            .scan_prefix(EPOCH_PREFIX)
            .map(|item| {
                let (key, value) = item.map_err(storage)?;
                <[u8; 8]>::try_from(&key[EPOCH_PREFIX.len()..])
                    .ok()
                    .and_then(|start| Epoch::from_bytes(u64::from_be_bytes(start), &value))
                    .ok_or_else(|| LedgerError::Storage("corrupt audit epoch".into()))
            })
            .collect::<Result<Vec<_>, LedgerError>>()?;
        // A store from before auditor keys, not started since: its log is one legacy epoch.
        if epochs.is_empty() && legacy_head {
            epochs.push(Epoch::legacy());
        }
        Ok(epochs)
    }

    fn check_audit_links(&self) -> Result<Result<u64, crate::audit::VerifyError>, LedgerError> {
        let head = self.store.head()?;
        let mut failure = None;
        let entries = self.store.audit.iter().map_while(|item| {
            let entry = item.map_err(storage).and_then(|(key, value)| {
                let seq = <[u8; 8]>::try_from(key.as_ref())
                    .map(u64::from_be_bytes)
                    .map_err(|_| LedgerError::Storage("corrupt audit key".into()))?;
                Ok((seq, value))
            });
            entry.map_err(|e| failure = Some(e)).ok()
        });
        let checked = crate::audit::check_links(entries, head.as_ref());
        failure.map_or(Ok(checked), Err)
    }

    fn durable(&self) -> BoxFuture<'static, Result<(), LedgerError>> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.writer
            .after_flush(Box::new(move |flushed| drop(reply.send(flushed))));
        Box::pin(async move {
            answer
                .await
                .unwrap_or_else(|_| Err(LedgerError::Storage("the writer stopped".into())))
        })
    }

    fn sync(&self) -> Result<(), LedgerError> {
        self.store.flush_to_disk()
    }

    fn on_durable(&self, hook: FlushHook) -> bool {
        self.store.hook.set(hook).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use protocol::TerminalRole;

    use super::*;

    /// A terminal as stored before ceilings existed (and before consoles).
    const OLD_TERMINAL: &str = r#"{"name":"lobby","psk":"abababababababababababababababababababababababababababababababab","revoked":false,"created_ms":5}"#;

    #[test]
    fn terminals_stored_before_ceilings_read_as_without_and_are_written_as_before() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = SledLedger::open(dir.path()).unwrap();
        ledger
            .store
            .terminals
            .insert("t-old", OLD_TERMINAL)
            .unwrap();
        let id = TerminalId::new("t-old").unwrap();
        let old = ledger.terminal(&id).unwrap().unwrap();
        assert_eq!(old.ceilings, DepositCeilings::NONE);
        assert_eq!((old.role, old.created_ms), (TerminalRole::Atm, 5));
        // Without ceilings the stored form is what an older bank reads and writes.
        let again: serde_json::Value = serde_json::from_slice(&to_stored(&old, None)).unwrap();
        assert_eq!(again.get("max_deposit"), None);
        assert_eq!(again.get("max_deposit_per_day"), None);
        let limited = TerminalRecord {
            ceilings: DepositCeilings::DEFAULT,
            ..old
        };
        let stored: serde_json::Value = serde_json::from_slice(&to_stored(&limited, None)).unwrap();
        assert_eq!(stored["max_deposit"], 200_000);
        assert_eq!(stored["max_deposit_per_day"], 1_000_000);
        let decoded: StoredTerminal = decode(&to_stored(&limited, None)).unwrap();
        assert_eq!(decoded.ceilings(), DepositCeilings::DEFAULT);
        let read: StoredCeilings = decode(&to_stored(&limited, None)).unwrap();
        assert_eq!(DepositCeilings::from(read), DepositCeilings::DEFAULT);
        let old: StoredCeilings = decode(OLD_TERMINAL.as_bytes()).unwrap();
        assert_eq!(DepositCeilings::from(old), DepositCeilings::NONE);
    }
}

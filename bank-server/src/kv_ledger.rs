//! The bank's store on an embedded engine ([`Kv`]: sled or redb): its keys, the hot records in
//! `compact`'s binary forms, and every change handed to one writer thread (`writer`), which
//! commits what is queued as one engine transaction per batch (balance, transaction record,
//! transaction-id entry, the terminal's day of deposits and audit entry together); its flusher
//! thread makes each batch durable with one sync. The money rules are `posting`'s, run inside
//! the transaction over the tables (a `posting::Book`). The audit chain's key is held in memory
//! only (`Store::tip`): the first entry after opening begins an epoch, its record written to
//! `meta` in the same commit.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::future::BoxFuture;
use protocol::{AccountNumber, Cents, HistoryEntry, TerminalId, TxId, Username};
use serde::{Deserialize, Serialize};

use crate::audit::{AuditEvent, ChainHead, ChainTip, Epoch};
use crate::chain_store::{self, ChainRows, Moved};
use crate::compact::{self, TxidValue};
use crate::kv::{Kv, KvTx, Table};
use crate::ledger::{
    Applied, AuditLog, BankIdentity, ChainPosition, DepositCeilings, FlushHook, IoFailure, Ledger,
    LedgerError, Movement, NewAccount, NewCredential, OperatorRecord, PendingEnrollment,
    RecentAudit, TerminalDay, TerminalRecord, ThrottleState, Totals, UserRecord,
};
use crate::posting::{self, AccountRecord, Book, PostingError};
use crate::records::{
    decode, encode, key_to_store, require_auditor_key, stored_key, takes_auditor_key,
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
/// them; their per-minute transaction counts are the keys of [`Table::Minutes`].
const TOTALS_KEY: &[u8] = b"totals";

/// The totals as stored under [`TOTALS_KEY`] (the money held as a decimal string: it may
/// exceed `u64`).
#[derive(Serialize, Deserialize)]
struct StoredTotals {
    accounts: u64,
    cents: String,
}

/// Writes what the totals become (the record, the changed minutes, the dropped minutes) inside
/// a transaction.
fn write_totals(tx: &dyn KvTx, stored: &Stored) -> Result<(), LedgerError> {
    let record = StoredTotals {
        accounts: stored.accounts,
        cents: stored.cents.to_string(),
    };
    tx.insert(Table::Meta, TOTALS_KEY, &encode(&record))?;
    for (minute, count) in &stored.minutes {
        tx.insert(Table::Minutes, &minute.to_be_bytes(), &count.to_be_bytes())?;
    }
    for minute in &stored.dropped {
        tx.remove(Table::Minutes, &minute.to_be_bytes())?;
    }
    Ok(())
}

/// The tables every change may touch, inside one transaction.
struct View<'a> {
    tx: &'a dyn KvTx,
    /// What this attempt did that memory must learn once it commits.
    pending: &'a RefCell<Pending>,
}

impl View<'_> {
    fn get(&self, table: Table, key: impl AsRef<[u8]>) -> TxResult<Option<Vec<u8>>> {
        self.tx.get(table, key.as_ref())
    }

    fn insert(&self, table: Table, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> TxResult<()> {
        self.tx.insert(table, key.as_ref(), value.as_ref())
    }

    fn remove(&self, table: Table, key: impl AsRef<[u8]>) -> TxResult<Option<Vec<u8>>> {
        self.tx.remove(table, key.as_ref())
    }
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

type TxResult<T> = Result<T, LedgerError>;

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

/// One change: `f` run inside the batch's transaction (again if the engine retries it), its
/// last result kept until the batch commits.
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
            Err(e) if e.is_refusal() => Err(e),
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

/// An audit key (`seq`, u64 BE).
fn audit_seq(key: &[u8]) -> Result<u64, LedgerError> {
    <[u8; 8]>::try_from(key)
        .map(u64::from_be_bytes)
        .map_err(|_| LedgerError::Storage("corrupt audit key".into()))
}

/// The audit chain's rows in the batch's transaction.
impl ChainRows for View<'_> {
    type Error = LedgerError;

    fn fail(&self, e: LedgerError) -> Self::Error {
        e
    }

    fn head_bytes(&self) -> TxResult<Option<Vec<u8>>> {
        self.get(Table::Meta, HEAD_KEY)
    }

    fn identity_bytes(&self) -> TxResult<Option<Vec<u8>>> {
        self.get(Table::Meta, IDENTITY_KEY)
    }

    fn put_entry(&self, seq: u64, entry: Vec<u8>) -> TxResult<()> {
        self.insert(Table::Audit, seq.to_be_bytes(), entry)
    }

    fn put_head(&self, head: &ChainHead) -> TxResult<()> {
        self.insert(Table::Meta, HEAD_KEY, head.to_bytes())
    }

    fn put_epoch(&self, epoch: &Epoch) -> TxResult<()> {
        self.insert(Table::Meta, epoch_key(epoch.start), epoch.to_bytes())
    }
}

/// Appends an audit entry inside the transaction; the first this ledger appends begins an
/// epoch. The key stays in memory (`Pending::tip`, then `Store::tip` once committed).
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

/// The posting rules' store, inside the batch's transaction.
impl Book for View<'_> {
    type Error = LedgerError;

    fn user_exists(&self, username: &Username) -> TxResult<bool> {
        Ok(self.get(Table::Users, username.as_str())?.is_some())
    }

    fn account(&self, account: &AccountNumber) -> TxResult<Option<AccountRecord>> {
        match self.get(Table::Accounts, account.as_str())? {
            Some(bytes) => compact::account_from_bytes(&bytes).map(Some),
            None => Ok(None),
        }
    }

    fn txid_entry(&self, account: &AccountNumber, txid: &TxId) -> TxResult<Option<HistoryEntry>> {
        let Some(bytes) = self.get(Table::Txids, txid_key(account, txid))? else {
            return Ok(None);
        };
        match compact::txid_from_bytes(&bytes)? {
            TxidValue::Entry(entry) => Ok(Some(entry)),
            TxidValue::At(seq) => match self.get(Table::Txs, history_key(account, seq))? {
                Some(bytes) => compact::entry_from_bytes(&bytes).map(Some),
                None => Err(dangling_txid()),
            },
        }
    }

    fn put_user(&self, user: &UserRecord) -> TxResult<()> {
        self.insert(Table::Users, user.username.as_str(), encode(user))
    }

    fn put_account(&self, account: &AccountNumber, record: &AccountRecord) -> TxResult<()> {
        self.insert(
            Table::Accounts,
            account.as_str(),
            compact::account_to_bytes(record),
        )
    }

    fn put_entry(&self, account: &AccountNumber, seq: u64, entry: &HistoryEntry) -> TxResult<()> {
        self.insert(
            Table::Txs,
            history_key(account, seq),
            compact::entry_to_bytes(entry),
        )?;
        self.insert(
            Table::Txids,
            txid_key(account, &entry.txid),
            compact::txid_to_bytes(seq),
        )
    }

    fn terminal_ceilings(&self, terminal: &TerminalId) -> TxResult<Option<DepositCeilings>> {
        match self.get(Table::Terminals, terminal.as_str())? {
            Some(bytes) => decode::<StoredCeilings>(&bytes).map(|stored| Some(stored.into())),
            None => Ok(None),
        }
    }

    fn terminal_day(&self, terminal: &TerminalId) -> TxResult<Option<TerminalDay>> {
        match self.get(Table::TerminalDays, terminal.as_str())? {
            Some(bytes) => decode(&bytes).map(Some),
            None => Ok(None),
        }
    }

    fn put_terminal_day(&self, terminal: &TerminalId, day: &TerminalDay) -> TxResult<()> {
        self.insert(Table::TerminalDays, terminal.as_str(), encode(day))
    }

    fn append_audit(&self, event: &AuditEvent) -> TxResult<()> {
        append_audit(self, event)
    }

    fn moved(&self, delta: Delta) {
        self.pending.borrow_mut().tally.add(delta);
    }
}

/// A deposit or withdrawal as a change for the writer: the posting rules over the batch's
/// tables.
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

/// A posting's failure as the batch sees it: a refusal fails this change only (the rules
/// wrote nothing), a store failure the whole batch.
fn posted<T>(result: Result<T, PostingError<LedgerError>>) -> TxResult<T> {
    result.map_err(|e| match e {
        PostingError::Refused(refusal) => refusal.into(),
        PostingError::Store(e) => e,
    })
}

/// The bank's ledger on an embedded engine: its store, and the one writer every change goes
/// through.
pub struct KvLedger<E: Kv> {
    store: Arc<Store<E>>,
    writer: Writer<Box<dyn Queued>>,
}

/// The engine and what memory keeps of it, shared by the ledger and its writer threads.
struct Store<E> {
    kv: E,
    /// Running totals for the console (read at open, then moved by each commit).
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
    /// Told after each flush where the audit chain stood when it began (the checkpoints).
    hook: std::sync::OnceLock<FlushHook>,
    /// Where this ledger's audit chain writer stands, with the key for the next entry: in
    /// memory only, set by the first committed entry (which begins an epoch), moved by each.
    tip: Mutex<Option<ChainTip>>,
}

impl<E: Kv> KvLedger<E> {
    /// The ledger over `kv`, its totals read, its writer threads (named after `engine`)
    /// started.
    pub(crate) fn over(kv: E, engine: &str) -> Result<Self, LedgerError> {
        let store = Store {
            kv,
            recent: Recent::default(),
            tally: Mutex::new(Tally::default()),
            hook: std::sync::OnceLock::new(),
            tip: Mutex::new(None),
            revocations: AtomicU64::new(0),
            credential_changes: AtomicU64::new(0),
            sealing: std::sync::OnceLock::new(),
            totals_unsaved: AtomicBool::new(false),
            throttle_lock: Mutex::new(()),
        };
        store.load_totals()?;
        let store = Arc::new(store);
        // The threads hold the store until the ledger is dropped, which joins them: the
        // engine (and its file lock) is closed when `drop` returns.
        let (committing, flushing) = (store.clone(), store.clone());
        let writer = Writer::spawn(
            engine,
            move |jobs: &[Box<dyn Queued>]| committing.commit_batch(jobs),
            move || flushing.flush_to_disk(),
        )
        .map_err(|e| LedgerError::Io(IoFailure::new("starting the writer threads", e)))?;
        Ok(Self { store, writer })
    }

    /// The engine underneath (for an engine's own tests).
    #[cfg(test)]
    pub(crate) fn kv(&self) -> &E {
        &self.store.kv
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

impl<E: Kv> Store<E> {
    fn get(&self, table: Table, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>, LedgerError> {
        self.kv.get(table, key.as_ref())
    }

    /// Makes what the engine committed durable, then tells `hook` where this ledger's audit
    /// chain stood before the flush (its `tip`, set only after a commit, so all of it is on
    /// disk).
    fn flush_to_disk(&self) -> Result<(), LedgerError> {
        let hook = self.hook.get();
        let tip = match hook {
            Some(_) => self.tip.lock().unwrap_or_else(|p| p.into_inner()).clone(),
            None => None,
        };
        self.kv.flush()?;
        match (hook, tip) {
            (Some(hook), Some(tip)) => hook(&tip),
            _ => Ok(()),
        }
    }

    /// Reads the stored totals (a record and at most a day of minute keys). A store written
    /// before totals were kept is counted once and the count stored, in one commit.
    fn load_totals(&self) -> Result<(), LedgerError> {
        let tally = match self.get(Table::Meta, TOTALS_KEY)? {
            Some(bytes) => {
                let record: StoredTotals = decode(&bytes)?;
                let cents = record
                    .cents
                    .parse::<u128>()
                    .map_err(|e| LedgerError::Storage(format!("corrupt totals: {e}")))?;
                let minutes = self
                    .kv
                    .scan(Table::Minutes, b"", false)
                    .map(|item| {
                        let (key, value) = item?;
                        let minute = <[u8; 8]>::try_from(key.as_slice()).map(u64::from_be_bytes);
                        let count = <[u8; 4]>::try_from(value.as_slice()).map(u32::from_be_bytes);
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
        for item in self.kv.scan(Table::Accounts, b"", false) {
            let record = compact::account_from_bytes(&item?.1)?;
            tally.count_account(record.balance.0);
        }
        for item in self.kv.scan(Table::Txs, b"", false) {
            let entry = compact::entry_from_bytes(&item?.1)?;
            tally.count_transaction(entry.time_ms);
        }
        Ok(tally)
    }

    /// Runs `jobs` in order in one engine transaction (on the writer thread, so nothing else
    /// commits meanwhile); their results wait in each job.
    fn commit_batch(&self, jobs: &[Box<dyn Queued>]) -> Result<(), LedgerError> {
        let pending = RefCell::new(Pending::default());
        // On the writer thread: the tip cannot move while the batch runs.
        let tip = self.tip.lock().unwrap_or_else(|p| p.into_inner()).clone();
        self.kv.transaction(&mut |tx: &dyn KvTx| {
            *pending.borrow_mut() = Pending {
                tip: tip.clone(),
                ..Pending::default()
            };
            let view = View {
                tx,
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
                write_totals(tx, &stored)?;
            }
            Ok(())
        })?;
        // Committed: memory learns what the batch did.
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

    /// The audit log's head, if the log exists.
    fn head(&self) -> Result<Option<ChainHead>, LedgerError> {
        match self.get(Table::Meta, HEAD_KEY)? {
            Some(bytes) => ChainHead::from_bytes(&bytes)
                .map(Some)
                .ok_or_else(|| LedgerError::Storage("audit head corrupt".into())),
            None => Ok(None),
        }
    }
}

impl<E: Kv> Ledger for KvLedger<E> {
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
        match self.store.get(Table::Users, username.as_str())? {
            Some(bytes) => decode(&bytes).map(Some),
            None => Ok(None),
        }
    }

    fn balance(&self, account: &AccountNumber) -> Result<Cents, LedgerError> {
        match self.store.get(Table::Accounts, account.as_str())? {
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
                None => return Err(LedgerError::NotFound),
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
        let Some(bytes) = self.store.get(Table::Txids, txid_key(account, txid))? else {
            return Ok(None);
        };
        match compact::txid_from_bytes(&bytes)? {
            TxidValue::Entry(entry) => Ok(Some(entry)),
            TxidValue::At(seq) => match self.store.get(Table::Txs, history_key(account, seq))? {
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
            .kv
            .scan(Table::Txs, &history_prefix(account), true)
            .take(limit as usize)
            .map(|item| compact::entry_from_bytes(&item?.1))
            .collect()
    }

    fn throttle(&self, key: &str) -> Result<ThrottleState, LedgerError> {
        match self.store.get(Table::Throttle, key)? {
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
        let stored = (after != ThrottleState::default()).then(|| encode(&after));
        self.store
            .kv
            .put_outside(Table::Throttle, key.as_bytes(), stored.as_deref())?;
        Ok(before)
    }

    fn terminal(&self, id: &TerminalId) -> Result<Option<TerminalRecord>, LedgerError> {
        match self.store.get(Table::Terminals, id.as_str())? {
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
            if view.get(Table::Terminals, id.as_str())?.is_some() {
                return Err(LedgerError::NameTaken);
            }
            view.insert(Table::Terminals, id.as_str(), stored.as_slice())?;
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
            if view.get(Table::Enrollments, code.as_str())?.is_some() {
                return Err(LedgerError::NameTaken);
            }
            view.insert(Table::Enrollments, code.as_str(), bytes.as_slice())?;
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
            let Some(bytes) = view.remove(Table::Enrollments, code.as_str())? else {
                return Ok(None);
            };
            let stored: StoredEnrollment = decode(&bytes)?;
            let key = stored_key(code.as_str(), stored.key, keys.as_deref())?;
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
            .kv
            .scan(Table::Terminals, b"", false)
            .map(|item| {
                let (key, bytes) = item?;
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
        match self.store.get(Table::TerminalDays, terminal.as_str())? {
            Some(bytes) => decode::<TerminalDay>(&bytes).map(|day| day.on(now_ms)),
            None => Ok(Cents::ZERO),
        }
    }

    fn revoke_terminal(&self, id: &TerminalId, audit: &AuditEvent) -> Result<(), LedgerError> {
        let (id, audit) = (id.clone(), audit.clone());
        let keys = self.store.sealing.get().cloned();
        self.tx(move |view| {
            let Some(bytes) = view.get(Table::Terminals, id.as_str())? else {
                return Err(LedgerError::NotFound);
            };
            let stored = zeroize::Zeroizing::new(bytes.to_vec());
            let keys = keys.as_deref();
            let mut record = terminal_from(id.clone(), decode(&stored)?, keys)?;
            record.revoked = true;
            view.insert(
                Table::Terminals,
                id.as_str(),
                to_stored(&record, keys).as_slice(),
            )?;
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
            if view.get(Table::Operators, name.as_str())?.is_some()
                || view.get(Table::Terminals, id.as_str())?.is_some()
            {
                return Err(LedgerError::NameTaken);
            }
            view.insert(Table::Operators, name.as_str(), record.as_slice())?;
            view.insert(Table::Terminals, id.as_str(), stored.as_slice())?;
            append_audit(view, &audit)
        })
    }

    fn operator(&self, username: &Username) -> Result<Option<OperatorRecord>, LedgerError> {
        match self.store.get(Table::Operators, username.as_str())? {
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
            let Some(bytes) = view.get(Table::Users, name.as_str())? else {
                return Err(LedgerError::NotFound);
            };
            let mut user: UserRecord = decode(&bytes)?;
            credential.apply_to(&mut user);
            view.insert(Table::Users, name.as_str(), encode(&user))?;
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
            let Some(bytes) = view.get(Table::Operators, name.as_str())? else {
                return Err(LedgerError::NotFound);
            };
            let mut operator: OperatorRecord = decode(&bytes)?;
            operator.password_hash.clone_from(&password_hash);
            view.insert(Table::Operators, name.as_str(), encode(&operator))?;
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
        let plain = |table: Table| -> Result<Vec<String>, LedgerError> {
            let mut ids = Vec::new();
            for item in self.store.kv.scan(table, b"", false) {
                let (id, bytes) = item?;
                let value: serde_json::Value = decode(&zeroize::Zeroizing::new(bytes))?;
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
        let (terminals, enrollments) = (plain(Table::Terminals)?, plain(Table::Enrollments)?);
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
                let Some(bytes) = view.get(Table::Terminals, id.as_str())? else {
                    continue;
                };
                let Some(terminal_id) = TerminalId::new(id.as_str()) else {
                    return Err(LedgerError::Storage("corrupt terminal id".into()));
                };
                let stored: StoredTerminal = decode(&zeroize::Zeroizing::new(bytes.to_vec()))?;
                if crate::secrets::is_sealed(&stored.psk) {
                    continue;
                }
                let record = terminal_from(terminal_id, stored, None)?;
                view.insert(
                    Table::Terminals,
                    id.as_str(),
                    to_stored(&record, Some(&keys)).as_slice(),
                )?;
                sealed += 1;
            }
            for id in &enrollments {
                let Some(bytes) = view.get(Table::Enrollments, id.as_str())? else {
                    continue;
                };
                let mut stored: StoredEnrollment = decode(&bytes)?;
                if crate::secrets::is_sealed(&stored.key) {
                    continue;
                }
                let key = stored_key(id, std::mem::take(&mut stored.key), None)?;
                stored.key = keys.seal(id, &key);
                view.insert(Table::Enrollments, id.as_str(), encode(&stored))?;
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
            if view.get(Table::Meta, HEAD_KEY)?.is_some()
                || view.get(Table::Meta, IDENTITY_KEY)?.is_some()
            {
                return Ok(false);
            }
            view.insert(Table::Meta, HEAD_KEY, &head[..])?;
            view.insert(Table::Meta, IDENTITY_KEY, identity.as_slice())?;
            Ok(true)
        })
    }

    fn identity(&self) -> Result<Option<BankIdentity>, LedgerError> {
        match self.store.get(Table::Meta, IDENTITY_KEY)? {
            Some(bytes) => decode(&bytes).map(Some),
            None => Ok(None),
        }
    }

    fn adopt_identity(&self, identity: &BankIdentity) -> Result<bool, LedgerError> {
        let identity = encode(identity);
        self.tx(move |view| {
            if view.get(Table::Meta, IDENTITY_KEY)?.is_some()
                || view.get(Table::Meta, HEAD_KEY)?.is_none()
            {
                return Ok(false);
            }
            view.insert(Table::Meta, IDENTITY_KEY, identity.as_slice())?;
            Ok(true)
        })
    }

    fn record_bank_key(&self, public_hex: &str, audit: &AuditEvent) -> Result<bool, LedgerError> {
        let (public_hex, audit) = (public_hex.to_owned(), audit.clone());
        self.tx(move |view| {
            let Some(bytes) = view.get(Table::Meta, IDENTITY_KEY)? else {
                return Ok(false);
            };
            let Some(identity) = with_bank_key(&bytes, &public_hex)? else {
                return Ok(false);
            };
            view.insert(Table::Meta, IDENTITY_KEY, encode(&identity))?;
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
            let Some(bytes) = view.get(Table::Meta, IDENTITY_KEY)? else {
                return Ok(false);
            };
            if !takes_auditor_key(&bytes, &upgraded)? {
                return Ok(false);
            }
            let Some(bytes) = view.get(Table::Meta, HEAD_KEY)? else {
                return Err(LedgerError::Storage("audit log not initialised".into()));
            };
            let Some(head) = ChainHead::from_bytes(&bytes) else {
                return Err(LedgerError::Storage("audit head corrupt".into()));
            };
            // The entries so far were sealed under the legacy chain; the key leaves the head.
            if ChainHead::is_legacy_encoding(&bytes) && head.next_seq > 0 {
                let legacy = Epoch::legacy();
                view.insert(Table::Meta, epoch_key(legacy.start), legacy.to_bytes())?;
            }
            view.insert(Table::Meta, HEAD_KEY, &head.to_bytes()[..])?;
            view.insert(Table::Meta, IDENTITY_KEY, recorded.as_slice())?;
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
        self.store.get(Table::Audit, seq.to_be_bytes())
    }

    fn audit_log(&self) -> Result<AuditLog, LedgerError> {
        let entries = self
            .store
            .kv
            .scan(Table::Audit, b"", false)
            .map(|item| {
                let (key, value) = item?;
                Ok((audit_seq(&key)?, value))
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
            .get(Table::Meta, HEAD_KEY)?
            .is_some_and(|bytes| ChainHead::is_legacy_encoding(&bytes));
        let mut epochs = self
            .store
            .kv
            .scan(Table::Meta, EPOCH_PREFIX, false)
            .map(|item| {
                let (key, value) = item?;
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
        let entries = self
            .store
            .kv
            .scan(Table::Audit, b"", false)
            .map_while(|item| {
                let entry = item.and_then(|(key, value)| Ok((audit_seq(&key)?, value)));
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

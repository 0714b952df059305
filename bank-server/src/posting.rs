//! The bank's posting rules: given what the store holds, decide a change (open an account,
//! post a deposit or withdrawal), independent of any storage engine.
//!
//! An engine implements [`Book`] over its own atomic transaction and runs these functions
//! inside it; the rules read first and write only once the change is decided, so a refusal
//! leaves the transaction untouched (the sled engine relies on this to batch changes).

use core::fmt;

use protocol::{AccountNumber, Cents, HistoryEntry, TerminalId, TxId, TxKind, Username};
use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};

use crate::audit::AuditEvent;
use crate::ledger::{
    Applied, Ceiling, DepositCeilings, LedgerError, Movement, NewAccount, TerminalDay, UserRecord,
    DAY_MS,
};
use crate::tally::Delta;

/// How many account numbers an opening may try before giving up.
const ACCOUNT_CANDIDATES: usize = 8;

/// An account's stored state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct AccountRecord {
    /// Its owner.
    pub(crate) username: Username,
    /// What it holds.
    pub(crate) balance: Cents,
    /// How many transactions its history holds (the position of the next one).
    pub(crate) tx_count: u64,
}

/// What the rules need from a store, inside one atomic transaction of the engine. Reads see
/// the transaction's own writes.
pub(crate) trait Book {
    /// The engine's failure (a conflict to retry, an I/O error, a corrupt record): it aborts
    /// the whole transaction.
    type Error;
    /// Whether a user by that name exists.
    fn user_exists(&self, username: &Username) -> Result<bool, Self::Error>;
    /// An account's stored state.
    fn account(&self, account: &AccountNumber) -> Result<Option<AccountRecord>, Self::Error>;
    /// The transaction recorded under `txid` for `account`.
    fn txid_entry(
        &self,
        account: &AccountNumber,
        txid: &TxId,
    ) -> Result<Option<HistoryEntry>, Self::Error>;
    /// Stores a user.
    fn put_user(&self, user: &UserRecord) -> Result<(), Self::Error>;
    /// Stores an account's state.
    fn put_account(
        &self,
        account: &AccountNumber,
        record: &AccountRecord,
    ) -> Result<(), Self::Error>;
    /// Records a transaction at position `seq` of the account's history and under its txid.
    fn put_entry(
        &self,
        account: &AccountNumber,
        seq: u64,
        entry: &HistoryEntry,
    ) -> Result<(), Self::Error>;
    /// A terminal's deposit ceilings; `None` when there is no such terminal.
    fn terminal_ceilings(
        &self,
        terminal: &TerminalId,
    ) -> Result<Option<DepositCeilings>, Self::Error>;
    /// What a terminal deposited on the day of its record, if it has one.
    fn terminal_day(&self, terminal: &TerminalId) -> Result<Option<TerminalDay>, Self::Error>;
    /// Replaces a terminal's day record.
    fn put_terminal_day(&self, terminal: &TerminalId, day: &TerminalDay)
        -> Result<(), Self::Error>;
    /// Appends an audit entry.
    fn append_audit(&self, event: &AuditEvent) -> Result<(), Self::Error>;
    /// Notes how the change moves the console's totals (kept with the change).
    fn moved(&self, delta: Delta);
}

/// Why the rules refused a change. A refusal writes nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The username is taken.
    NameTaken,
    /// No such account.
    NotFound,
    /// The withdrawal would go below zero.
    InsufficientFunds,
    /// The balance would overflow.
    LimitExceeded,
    /// The deposit would take its terminal over a ceiling.
    OverCeiling(Ceiling),
    /// The transaction id was used for a different request.
    TxIdReused,
    /// An opening is not a deposit or a withdrawal.
    NotAMovement,
    /// Every account number tried is taken.
    NoFreeAccountNumber,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            Self::OverCeiling(ceiling) => return write!(f, "{ceiling}"),
            Self::NameTaken => "the username is taken",
            Self::NotFound => "no such account",
            Self::InsufficientFunds => "insufficient funds",
            Self::LimitExceeded => "the balance would overflow",
            Self::TxIdReused => "the transaction id was used for another request",
            Self::NotAMovement => "open is not a movement",
            Self::NoFreeAccountNumber => "no free account number",
        };
        f.write_str(text)
    }
}

impl From<Refusal> for LedgerError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::NameTaken => Self::NameTaken,
            Refusal::NotFound => Self::NotFound,
            Refusal::InsufficientFunds => Self::InsufficientFunds,
            Refusal::LimitExceeded => Self::LimitExceeded,
            Refusal::OverCeiling(ceiling) => Self::OverCeiling(ceiling),
            Refusal::TxIdReused => Self::TxIdReused,
            // Legacy string errors: the ledger contract has no variant for these.
            Refusal::NotAMovement | Refusal::NoFreeAccountNumber => {
                Self::Storage(refusal.to_string())
            }
        }
    }
}

/// Why a posting did not happen: the rules refused it, or the store failed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum PostingError<E> {
    /// Refused by the rules (nothing written).
    Refused(Refusal),
    /// The store failed.
    Store(E),
}

impl<E> From<E> for PostingError<E> {
    fn from(e: E) -> Self {
        Self::Store(e)
    }
}

/// Account numbers to try for one opening (drawn outside the engine's transaction, which may
/// run more than once).
pub(crate) fn account_candidates() -> Vec<AccountNumber> {
    (0..ACCOUNT_CANDIDATES)
        .map(|_| random_account_number())
        .collect()
}

fn random_account_number() -> AccountNumber {
    let n = OsRng.next_u64() % 1_000_000_000_000;
    let digits = format!("{n:012}");
    AccountNumber::new(format!(
        "{}-{}-{}",
        &digits[..4],
        &digits[4..8],
        &digits[8..]
    ))
    .expect("digits and dashes form an account number")
}

/// Opens a user's account on the first free number of `candidates`, with the opening
/// transaction of a card account; audits it with the account number and balance.
pub(crate) fn open_account<B: Book>(
    book: &B,
    new: &NewAccount,
    candidates: &[AccountNumber],
    now_ms: u64,
    audit: &AuditEvent,
) -> Result<UserRecord, PostingError<B::Error>> {
    if book.user_exists(&new.username)? {
        return Err(PostingError::Refused(Refusal::NameTaken));
    }
    let mut account = None;
    for candidate in candidates {
        if book.account(candidate)?.is_none() {
            account = Some(candidate.clone());
            break;
        }
    }
    let Some(account) = account else {
        return Err(PostingError::Refused(Refusal::NoFreeAccountNumber));
    };
    let day = match new.opening {
        Some((_, amount)) => room_for(book, new.terminal.as_ref(), amount, now_ms)?,
        None => None,
    };
    let user = UserRecord {
        username: new.username.clone(),
        full_name: new.full_name.clone(),
        account: account.clone(),
        password_hash: new.password_hash.clone(),
        card_sha256: new.card_sha256.clone(),
        card_public: new.card_public.clone(),
        open_txid: new.opening.map(|(txid, _)| txid),
    };
    let mut record = AccountRecord {
        username: new.username.clone(),
        balance: Cents::ZERO,
        tx_count: 0,
    };
    let mut delta = Delta {
        accounts: 1,
        ..Delta::default()
    };
    if let Some((txid, amount)) = new.opening {
        let entry = HistoryEntry {
            txid,
            kind: TxKind::Open,
            amount_cents: amount,
            balance_cents: amount,
            time_ms: now_ms,
        };
        book.put_entry(&account, 0, &entry)?;
        record.balance = amount;
        record.tx_count = 1;
        delta.cents_in = u128::from(amount.0);
        delta.transactions.push(now_ms);
    }
    book.put_user(&user)?;
    book.put_account(&account, &record)?;
    if let (Some(terminal), Some(day)) = (&new.terminal, day) {
        book.put_terminal_day(terminal, &day)?;
    }
    let mut event = audit.clone();
    event.account = Some(account.to_string());
    event.balance_cents = Some(record.balance.0);
    book.append_audit(&event)?;
    book.moved(delta);
    Ok(user)
}

/// Posts a deposit or withdrawal once per transaction id: a retry with the same kind and
/// amount gets the first result and changes nothing; another request under the same id is
/// refused. Audits it with the balance after.
pub(crate) fn post<B: Book>(
    book: &B,
    account: &AccountNumber,
    movement: Movement,
    now_ms: u64,
    audit: &AuditEvent,
) -> Result<Applied, PostingError<B::Error>> {
    if let Some(entry) = book.txid_entry(account, &movement.txid)? {
        if entry.kind != movement.kind || entry.amount_cents != movement.amount {
            return Err(PostingError::Refused(Refusal::TxIdReused));
        }
        return Ok(Applied {
            entry,
            replay: true,
        });
    }
    let Some(mut record) = book.account(account)? else {
        return Err(PostingError::Refused(Refusal::NotFound));
    };
    let day = match movement.kind {
        TxKind::Deposit => room_for(book, movement.terminal.as_ref(), movement.amount, now_ms)?,
        // A withdrawal frees no room: the ceiling is on money coming in.
        TxKind::Withdraw | TxKind::Open => None,
    };
    let balance = match movement.kind {
        TxKind::Deposit => record
            .balance
            .checked_add(movement.amount)
            .ok_or(Refusal::LimitExceeded),
        TxKind::Withdraw => record
            .balance
            .checked_sub(movement.amount)
            .ok_or(Refusal::InsufficientFunds),
        TxKind::Open => Err(Refusal::NotAMovement),
    }
    .map_err(PostingError::Refused)?;
    let entry = HistoryEntry {
        txid: movement.txid,
        kind: movement.kind,
        amount_cents: movement.amount,
        balance_cents: balance,
        time_ms: now_ms,
    };
    book.put_entry(account, record.tx_count, &entry)?;
    record.balance = balance;
    record.tx_count += 1;
    book.put_account(account, &record)?;
    if let (Some(terminal), Some(day)) = (&movement.terminal, day) {
        book.put_terminal_day(terminal, &day)?;
    }
    let mut event = audit.clone();
    event.balance_cents = Some(balance.0);
    book.append_audit(&event)?;
    let amount = u128::from(movement.amount.0);
    let delta = match movement.kind {
        TxKind::Withdraw => Delta {
            cents_out: amount,
            transactions: vec![now_ms],
            ..Delta::default()
        },
        _ => Delta {
            cents_in: amount,
            transactions: vec![now_ms],
            ..Delta::default()
        },
    };
    book.moved(delta);
    Ok(Applied {
        entry,
        replay: false,
    })
}

/// Checks a deposit of `amount` by `terminal` on the UTC day of `now_ms` against that
/// terminal's ceilings, reading only: the day's record to store with the deposit, or `None`
/// when nothing is counted (no terminal given, or no per-day ceiling). An unknown terminal is
/// refused (`NotFound`).
fn room_for<B: Book>(
    book: &B,
    terminal: Option<&TerminalId>,
    amount: Cents,
    now_ms: u64,
) -> Result<Option<TerminalDay>, PostingError<B::Error>> {
    let Some(terminal) = terminal else {
        return Ok(None);
    };
    let Some(ceilings) = book.terminal_ceilings(terminal)? else {
        return Err(PostingError::Refused(Refusal::NotFound));
    };
    if let Some(ceiling) = ceilings.per_deposit {
        if amount > ceiling {
            let over = Ceiling::PerDeposit { ceiling };
            return Err(PostingError::Refused(Refusal::OverCeiling(over)));
        }
    }
    let Some(ceiling) = ceilings.per_day else {
        return Ok(None);
    };
    let deposited = book
        .terminal_day(terminal)?
        .map_or(Cents::ZERO, |day| day.on(now_ms));
    match deposited.checked_add(amount) {
        Some(after) if after <= ceiling => Ok(Some(TerminalDay {
            day: now_ms / DAY_MS,
            deposited: after,
        })),
        _ => {
            let over = Ceiling::PerDay { ceiling, deposited };
            Err(PostingError::Refused(Refusal::OverCeiling(over)))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::BTreeMap;

    use protocol::FullName;

    use super::*;

    /// A store failure the in-memory book can be told to produce.
    #[derive(Debug, PartialEq, Eq)]
    struct Broken;

    /// The rules' view of a store, in memory: a unit test of pure rules.
    #[derive(Default)]
    struct MemoryBook {
        users: RefCell<BTreeMap<String, UserRecord>>,
        accounts: RefCell<BTreeMap<String, AccountRecord>>,
        history: RefCell<BTreeMap<(String, u64), HistoryEntry>>,
        txids: RefCell<BTreeMap<(String, TxId), HistoryEntry>>,
        audit: RefCell<Vec<AuditEvent>>,
        deltas: RefCell<Vec<Delta>>,
        terminals: RefCell<BTreeMap<String, DepositCeilings>>,
        days: RefCell<BTreeMap<String, TerminalDay>>,
        /// Fail every write (reads still work).
        fail_writes: bool,
    }

    impl MemoryBook {
        fn write(&self) -> Result<(), Broken> {
            if self.fail_writes {
                Err(Broken)
            } else {
                Ok(())
            }
        }

        /// Everything stored, to compare before and after a refusal.
        fn snapshot(&self) -> String {
            format!(
                "{:?} {:?} {:?} {} {} {:?}",
                self.accounts.borrow(),
                self.history.borrow(),
                self.txids.borrow().len(),
                self.audit.borrow().len(),
                self.deltas.borrow().len(),
                self.days.borrow()
            ) + &self.users.borrow().keys().cloned().collect::<String>()
        }
    }

    impl Book for MemoryBook {
        type Error = Broken;

        fn user_exists(&self, username: &Username) -> Result<bool, Broken> {
            Ok(self.users.borrow().contains_key(username.as_str()))
        }

        fn account(&self, account: &AccountNumber) -> Result<Option<AccountRecord>, Broken> {
            Ok(self.accounts.borrow().get(account.as_str()).cloned())
        }

        fn txid_entry(
            &self,
            account: &AccountNumber,
            txid: &TxId,
        ) -> Result<Option<HistoryEntry>, Broken> {
            let key = (account.to_string(), *txid);
            Ok(self.txids.borrow().get(&key).cloned())
        }

        fn put_user(&self, user: &UserRecord) -> Result<(), Broken> {
            self.write()?;
            let name = user.username.as_str().to_owned();
            self.users.borrow_mut().insert(name, user.clone());
            Ok(())
        }

        fn put_account(
            &self,
            account: &AccountNumber,
            record: &AccountRecord,
        ) -> Result<(), Broken> {
            self.write()?;
            let key = account.to_string();
            self.accounts.borrow_mut().insert(key, record.clone());
            Ok(())
        }

        fn put_entry(
            &self,
            account: &AccountNumber,
            seq: u64,
            entry: &HistoryEntry,
        ) -> Result<(), Broken> {
            self.write()?;
            let key = account.to_string();
            self.history
                .borrow_mut()
                .insert((key.clone(), seq), entry.clone());
            self.txids
                .borrow_mut()
                .insert((key, entry.txid), entry.clone());
            Ok(())
        }

        fn terminal_ceilings(
            &self,
            terminal: &TerminalId,
        ) -> Result<Option<DepositCeilings>, Broken> {
            Ok(self.terminals.borrow().get(terminal.as_str()).copied())
        }

        fn terminal_day(&self, terminal: &TerminalId) -> Result<Option<TerminalDay>, Broken> {
            Ok(self.days.borrow().get(terminal.as_str()).copied())
        }

        fn put_terminal_day(&self, terminal: &TerminalId, day: &TerminalDay) -> Result<(), Broken> {
            self.write()?;
            let key = terminal.as_str().to_owned();
            self.days.borrow_mut().insert(key, *day);
            Ok(())
        }

        fn append_audit(&self, event: &AuditEvent) -> Result<(), Broken> {
            self.write()?;
            self.audit.borrow_mut().push(event.clone());
            Ok(())
        }

        fn moved(&self, delta: Delta) {
            self.deltas.borrow_mut().push(delta);
        }
    }

    fn txid(n: u8) -> TxId {
        TxId::from_bytes([n; 16])
    }

    fn movement(kind: TxKind, n: u8, amount: u64) -> Movement {
        Movement {
            kind,
            txid: txid(n),
            amount: Cents(amount),
            terminal: None,
        }
    }

    /// Opens a card account holding `opening` cents.
    fn opened(book: &MemoryBook, name: &str, opening: u64) -> AccountNumber {
        let new = NewAccount {
            username: Username::new(name).unwrap(),
            full_name: FullName::new("Ada Lovelace").unwrap(),
            password_hash: None,
            card_sha256: Some("00".repeat(32)),
            card_public: None,
            opening: Some((txid(200), Cents(opening))),
            terminal: None,
        };
        let audit = AuditEvent::new("open_account", 5);
        open_account(book, &new, &account_candidates(), 5, &audit)
            .unwrap()
            .account
    }

    fn refused<T>(result: Result<T, PostingError<Broken>>) -> Refusal {
        match result {
            Err(PostingError::Refused(refusal)) => refusal,
            other => panic!("expected a refusal, got {:?}", other.err()),
        }
    }

    #[test]
    fn opening_records_the_account_its_opening_and_an_enriched_audit_event() {
        let book = MemoryBook::default();
        let account = opened(&book, "ada", 1_000);
        let record = book.account(&account).unwrap().unwrap();
        assert_eq!((record.balance, record.tx_count), (Cents(1_000), 1));
        let entry = book.txid_entry(&account, &txid(200)).unwrap().unwrap();
        assert_eq!(
            (
                entry.kind,
                entry.amount_cents,
                entry.balance_cents,
                entry.time_ms
            ),
            (TxKind::Open, Cents(1_000), Cents(1_000), 5)
        );
        assert_eq!(book.history.borrow().len(), 1);
        let event = book.audit.borrow()[0].clone();
        assert_eq!(event.account, Some(account.to_string()));
        assert_eq!(event.balance_cents, Some(1_000));
        assert_eq!(
            *book.deltas.borrow(),
            vec![Delta {
                accounts: 1,
                cents_in: 1_000,
                cents_out: 0,
                transactions: vec![5],
            }]
        );
    }

    #[test]
    fn a_taken_name_or_no_free_number_is_refused_and_writes_nothing() {
        let book = MemoryBook::default();
        let account = opened(&book, "ada", 0);
        let before = book.snapshot();
        let again = NewAccount {
            username: Username::new("ada").unwrap(),
            full_name: FullName::new("Ada Again").unwrap(),
            password_hash: Some("hash".into()),
            card_sha256: None,
            card_public: None,
            opening: None,
            terminal: None,
        };
        let audit = AuditEvent::new("register", 6);
        let result = open_account(&book, &again, &account_candidates(), 6, &audit);
        assert_eq!(refused(result), Refusal::NameTaken);
        let other = NewAccount {
            username: Username::new("bob").unwrap(),
            ..again
        };
        // The only candidate offered is taken.
        let result = open_account(&book, &other, std::slice::from_ref(&account), 6, &audit);
        assert_eq!(refused(result), Refusal::NoFreeAccountNumber);
        assert_eq!(book.snapshot(), before);
    }

    #[test]
    fn deposits_and_withdrawals_move_the_balance_and_append_history() {
        let book = MemoryBook::default();
        let account = opened(&book, "ada", 1_000);
        let audit = AuditEvent::new("deposit", 7);
        let applied = post(
            &book,
            &account,
            movement(TxKind::Deposit, 1, 250),
            7,
            &audit,
        )
        .unwrap();
        assert!(!applied.replay);
        assert_eq!(applied.entry.balance_cents, Cents(1_250));
        let applied = post(
            &book,
            &account,
            movement(TxKind::Withdraw, 2, 1_250),
            8,
            &audit,
        )
        .unwrap();
        assert_eq!(applied.entry.balance_cents, Cents::ZERO);
        let record = book.account(&account).unwrap().unwrap();
        assert_eq!((record.balance, record.tx_count), (Cents::ZERO, 3));
        assert_eq!(
            book.history.borrow()[&(account.to_string(), 2)],
            applied.entry
        );
        assert_eq!(book.audit.borrow()[2].balance_cents, Some(0));
        let deltas = book.deltas.borrow();
        assert_eq!((deltas[1].cents_in, deltas[1].cents_out), (250, 0));
        assert_eq!((deltas[2].cents_in, deltas[2].cents_out), (0, 1_250));
        assert_eq!(deltas[2].transactions, vec![8]);
    }

    #[test]
    fn overdraft_overflow_and_unknown_accounts_are_refused_and_write_nothing() {
        let book = MemoryBook::default();
        let account = opened(&book, "ada", u64::MAX - 10);
        let audit = AuditEvent::new("deposit", 7);
        let before = book.snapshot();
        let result = post(&book, &account, movement(TxKind::Deposit, 1, 11), 7, &audit);
        assert_eq!(refused(result), Refusal::LimitExceeded);
        // Exactly up to the limit is fine.
        let applied = post(&book, &account, movement(TxKind::Deposit, 2, 10), 7, &audit).unwrap();
        assert_eq!(applied.entry.balance_cents, Cents(u64::MAX));
        let result = post(&book, &account, movement(TxKind::Deposit, 3, 1), 7, &audit);
        assert_eq!(refused(result), Refusal::LimitExceeded);

        let poor = opened(&book, "bob", 5);
        let before_overdraft = book.snapshot();
        let result = post(&book, &poor, movement(TxKind::Withdraw, 4, 6), 7, &audit);
        assert_eq!(refused(result), Refusal::InsufficientFunds);
        let result = post(&book, &poor, movement(TxKind::Open, 5, 1), 7, &audit);
        assert_eq!(refused(result), Refusal::NotAMovement);
        let nobody = AccountNumber::new("0000-0000-0000").unwrap();
        let result = post(&book, &nobody, movement(TxKind::Deposit, 6, 1), 7, &audit);
        assert_eq!(refused(result), Refusal::NotFound);
        assert_eq!(book.snapshot(), before_overdraft);
        assert_ne!(book.snapshot(), before);
    }

    #[test]
    fn a_replay_returns_the_first_result_and_a_reused_txid_is_refused() {
        let book = MemoryBook::default();
        let account = opened(&book, "ada", 100);
        let audit = AuditEvent::new("deposit", 7);
        let first = post(&book, &account, movement(TxKind::Deposit, 1, 50), 7, &audit).unwrap();
        let before = book.snapshot();
        let replay = post(
            &book,
            &account,
            movement(TxKind::Deposit, 1, 50),
            99,
            &audit,
        )
        .unwrap();
        assert!(replay.replay);
        assert_eq!(replay.entry, first.entry);
        assert_eq!(book.snapshot(), before, "a replay writes nothing");
        let other_amount = post(&book, &account, movement(TxKind::Deposit, 1, 51), 9, &audit);
        assert_eq!(refused(other_amount), Refusal::TxIdReused);
        let other_kind = post(
            &book,
            &account,
            movement(TxKind::Withdraw, 1, 50),
            9,
            &audit,
        );
        assert_eq!(refused(other_kind), Refusal::TxIdReused);
        // The opening's txid is taken too.
        let opening = post(
            &book,
            &account,
            movement(TxKind::Deposit, 200, 100),
            9,
            &audit,
        );
        assert_eq!(refused(opening), Refusal::TxIdReused);
        assert_eq!(book.snapshot(), before);
        assert_eq!(book.account(&account).unwrap().unwrap().balance, Cents(150));
    }

    #[test]
    fn a_store_failure_is_the_stores_not_a_refusal() {
        let book = MemoryBook {
            fail_writes: true,
            ..MemoryBook::default()
        };
        let new = NewAccount {
            username: Username::new("ada").unwrap(),
            full_name: FullName::new("Ada").unwrap(),
            password_hash: Some("hash".into()),
            card_sha256: None,
            card_public: None,
            opening: None,
            terminal: None,
        };
        let audit = AuditEvent::new("register", 1);
        let result = open_account(&book, &new, &account_candidates(), 1, &audit);
        assert_eq!(result.err(), Some(PostingError::Store(Broken)));
    }

    const DAY: u64 = 20_000 * DAY_MS;

    /// A book with terminal `t-1` under `ceilings`.
    fn with_terminal(ceilings: DepositCeilings) -> (MemoryBook, TerminalId) {
        let book = MemoryBook::default();
        let id = TerminalId::new("t-1").unwrap();
        book.terminals
            .borrow_mut()
            .insert(id.as_str().to_owned(), ceilings);
        (book, id)
    }

    fn deposit_by(terminal: &TerminalId, n: u8, amount: u64) -> Movement {
        Movement {
            terminal: Some(terminal.clone()),
            ..movement(TxKind::Deposit, n, amount)
        }
    }

    #[test]
    fn a_deposit_above_the_terminals_ceiling_per_deposit_is_refused_and_writes_nothing() {
        let (book, terminal) = with_terminal(DepositCeilings {
            per_deposit: Some(Cents(1_000)),
            per_day: None,
        });
        let account = opened(&book, "ada", 0);
        let audit = AuditEvent::new("deposit", DAY);
        let before = book.snapshot();
        let result = post(
            &book,
            &account,
            deposit_by(&terminal, 1, 1_001),
            DAY,
            &audit,
        );
        let over = Ceiling::PerDeposit {
            ceiling: Cents(1_000),
        };
        assert_eq!(refused(result), Refusal::OverCeiling(over));
        assert_eq!(book.snapshot(), before);
        // Exactly the ceiling is fine, as often as asked without a per-day ceiling.
        for n in 2..5 {
            post(
                &book,
                &account,
                deposit_by(&terminal, n, 1_000),
                DAY,
                &audit,
            )
            .unwrap();
        }
        assert!(
            book.days.borrow().is_empty(),
            "nothing counted without a per-day ceiling"
        );
        // A withdrawal is not a deposit: no ceiling.
        post(
            &book,
            &account,
            movement(TxKind::Withdraw, 9, 3_000),
            DAY,
            &audit,
        )
        .unwrap();
    }

    #[test]
    fn the_day_is_counted_once_per_txid_freed_by_nothing_and_starts_again_at_midnight_utc() {
        let (book, terminal) = with_terminal(DepositCeilings {
            per_deposit: None,
            per_day: Some(Cents(1_000)),
        });
        let account = opened(&book, "ada", 0);
        let audit = AuditEvent::new("deposit", DAY);
        let first = post(&book, &account, deposit_by(&terminal, 1, 600), DAY, &audit).unwrap();
        // A retry of the same txid is answered, not counted again.
        let retry = post(
            &book,
            &account,
            deposit_by(&terminal, 1, 600),
            DAY + 5,
            &audit,
        )
        .unwrap();
        assert!(retry.replay);
        assert_eq!(retry.entry, first.entry);
        // A withdrawal frees nothing.
        post(
            &book,
            &account,
            movement(TxKind::Withdraw, 2, 600),
            DAY,
            &audit,
        )
        .unwrap();
        let before = book.snapshot();
        let result = post(&book, &account, deposit_by(&terminal, 3, 401), DAY, &audit);
        let over = Ceiling::PerDay {
            ceiling: Cents(1_000),
            deposited: Cents(600),
        };
        assert_eq!(refused(result), Refusal::OverCeiling(over));
        assert_eq!(book.snapshot(), before, "a refusal writes nothing");
        // Up to the ceiling exactly, the last millisecond of the day included.
        let end = DAY + DAY_MS - 1;
        post(&book, &account, deposit_by(&terminal, 4, 400), end, &audit).unwrap();
        let full = post(&book, &account, deposit_by(&terminal, 5, 1), end, &audit);
        assert!(matches!(refused(full), Refusal::OverCeiling(_)));
        // The next UTC day starts from zero.
        let next = DAY + DAY_MS;
        post(
            &book,
            &account,
            deposit_by(&terminal, 6, 1_000),
            next,
            &audit,
        )
        .unwrap();
        let day = book.terminal_day(&terminal).unwrap().unwrap();
        assert_eq!((day.day, day.deposited), (next / DAY_MS, Cents(1_000)));
        assert_eq!(day.on(next + DAY_MS), Cents::ZERO);
        // Without a terminal (the bank's own tools) nothing is counted or refused.
        post(
            &book,
            &account,
            movement(TxKind::Deposit, 7, 5_000),
            next,
            &audit,
        )
        .unwrap();
        assert_eq!(book.terminal_day(&terminal).unwrap(), Some(day));
    }

    #[test]
    fn an_opening_balance_counts_as_a_deposit_and_an_unknown_terminal_is_refused() {
        let (book, terminal) = with_terminal(DepositCeilings {
            per_deposit: Some(Cents(800)),
            per_day: Some(Cents(1_000)),
        });
        let opening = |name: &str, n: u8, cents: u64, by: &TerminalId| NewAccount {
            username: Username::new(name).unwrap(),
            full_name: FullName::new("A Customer").unwrap(),
            password_hash: None,
            card_sha256: Some("00".repeat(32)),
            card_public: None,
            opening: Some((txid(n), Cents(cents))),
            terminal: Some(by.clone()),
        };
        let audit = AuditEvent::new("open_account", DAY);
        let candidates = account_candidates();
        let too_big = open_account(
            &book,
            &opening("ada", 1, 801, &terminal),
            &candidates,
            DAY,
            &audit,
        );
        let over = Ceiling::PerDeposit {
            ceiling: Cents(800),
        };
        assert_eq!(refused(too_big), Refusal::OverCeiling(over));
        open_account(
            &book,
            &opening("ada", 1, 700, &terminal),
            &candidates,
            DAY,
            &audit,
        )
        .unwrap();
        let before = book.snapshot();
        let crossing = open_account(
            &book,
            &opening("bob", 2, 301, &terminal),
            &candidates,
            DAY,
            &audit,
        );
        let over = Ceiling::PerDay {
            ceiling: Cents(1_000),
            deposited: Cents(700),
        };
        assert_eq!(refused(crossing), Refusal::OverCeiling(over));
        assert!(!book.user_exists(&Username::new("bob").unwrap()).unwrap());
        assert_eq!(book.snapshot(), before);
        let stranger = TerminalId::new("t-2").unwrap();
        let unknown = open_account(
            &book,
            &opening("bob", 3, 1, &stranger),
            &candidates,
            DAY,
            &audit,
        );
        assert_eq!(refused(unknown), Refusal::NotFound);
        assert_eq!(book.snapshot(), before);
    }

    #[test]
    fn refusals_map_onto_the_ledger_contract() {
        assert_eq!(
            LedgerError::from(Refusal::InsufficientFunds),
            LedgerError::InsufficientFunds
        );
        assert_eq!(
            LedgerError::from(Refusal::TxIdReused),
            LedgerError::TxIdReused
        );
        let over = Ceiling::PerDay {
            ceiling: Cents(10),
            deposited: Cents(9),
        };
        assert_eq!(
            LedgerError::from(Refusal::OverCeiling(over)),
            LedgerError::OverCeiling(over)
        );
        assert!(LedgerError::OverCeiling(over).is_refusal());
        assert!(matches!(
            LedgerError::from(Refusal::NoFreeAccountNumber),
            LedgerError::Storage(_)
        ));
    }
}

//! The storage contract every `Ledger` engine must keep, stated once over `&dyn Ledger` and run
//! on each engine: a new engine adds one line, `contract!(name, its_open_fn);`. PostgreSQL's
//! runs on a real server the suite starts (`pg-harness`).

use std::path::Path;
use std::sync::Mutex;

use bank_server::audit::{AuditEvent, AuditorKeys, AuditorSecret, Epoch, EpochKind};
use bank_server::ledger::{
    BankIdentity, Ceiling, ChainPosition, DepositCeilings, LedgerError, Movement, NewAccount,
    NewCredential, OperatorRecord, PendingEnrollment, TerminalRecord, ThrottleState, Totals,
};
use bank_server::pg_ledger::PgLedger;
use bank_server::redb_ledger::RedbLedger;
use bank_server::sled_ledger::SledLedger;
use bank_server::Ledger;
use protocol::{
    AccountNumber, Cents, FullName, HistoryEntry, Psk, TerminalId, TerminalRole, TxId, TxKind,
    Username,
};
use rand_core::{OsRng, RngCore};
use tempfile::TempDir;

/// Opens (or reopens) an engine's store in a directory.
type Open = fn(&Path) -> Box<dyn Ledger>;

/// A fixed clock for the whole suite: a minute boundary plus a little.
const NOW: u64 = 1_800_000_000_000 + 1_234;
const DAY_MS: u64 = 86_400_000;

/// A fresh bank: an empty store, created for the auditor's key.
fn fresh(open: Open) -> (TempDir, Box<dyn Ledger>, AuditorKeys) {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(&dir.path().join("data"));
    assert!(ledger.create_bank(&identity()).unwrap());
    (dir, ledger, keys())
}

const BANK_ID: &str = "0123456789abcdef0123456789abcdef";

/// The suite's auditor (a fixed key, so identities compare equal).
fn auditor() -> AuditorSecret {
    AuditorSecret::from_hex(&"42".repeat(32)).unwrap()
}

/// What the auditor holds.
fn keys() -> AuditorKeys {
    AuditorKeys::new(Some(auditor()), None)
}

fn identity() -> BankIdentity {
    BankIdentity {
        id: BANK_ID.into(),
        created_ms: NOW,
        format: 2,
        bank_key: None,
        auditor_key: Some(auditor().public().to_hex()),
    }
}

/// The stored log, verified with `keys`.
fn verified(
    ledger: &dyn Ledger,
    keys: &AuditorKeys,
) -> Result<Vec<AuditEvent>, bank_server::audit::VerifyError> {
    let log = ledger.audit_log().unwrap();
    assert_eq!(ledger.audit_epochs().unwrap(), log.epochs);
    // Each engine's chain is bound to its name (PostgreSQL: the node's), sled's to the bank.
    let label = bank_server::audit::chain_label(BANK_ID, &log.chain);
    bank_server::audit::verify(keys, &label, &log.epochs, &log.entries, log.head.as_ref())
}

fn name(text: &str) -> Username {
    Username::new(text).unwrap()
}

fn txid() -> TxId {
    let mut bytes = [0u8; 16];
    OsRng.fill_bytes(&mut bytes);
    TxId::from_bytes(bytes)
}

/// Opens a card account holding `opening` cents.
fn card_account(ledger: &dyn Ledger, user: &str, opening: u64) -> AccountNumber {
    let new = NewAccount {
        username: name(user),
        full_name: FullName::new("Ada Lovelace").unwrap(),
        password_hash: None,
        card_sha256: Some("ab".repeat(32)),
        card_public: None,
        opening: Some((txid(), Cents(opening))),
        terminal: None,
    };
    let audit = AuditEvent::new("open_account", NOW);
    ledger.open_account(new, NOW, &audit).unwrap().account
}

fn movement(kind: TxKind, txid: TxId, amount: u64) -> Movement {
    Movement {
        kind,
        txid,
        amount: Cents(amount),
        terminal: None,
    }
}

fn apply(
    ledger: &dyn Ledger,
    account: &AccountNumber,
    movement: Movement,
) -> Result<bank_server::ledger::Applied, LedgerError> {
    let action = match movement.kind {
        TxKind::Withdraw => "withdraw",
        _ => "deposit",
    };
    let mut audit = AuditEvent::new(action, NOW);
    audit.account = Some(account.to_string());
    audit.amount_cents = Some(movement.amount.0);
    ledger.apply(account, movement, NOW, &audit)
}

fn totals(ledger: &dyn Ledger) -> Totals {
    ledger.totals(NOW, NOW - NOW % DAY_MS, 60).unwrap()
}

fn terminal(id: &str, role: TerminalRole) -> TerminalRecord {
    TerminalRecord {
        id: TerminalId::new(id).unwrap(),
        name: format!("terminal {id}"),
        psk: Psk::random(&mut OsRng),
        revoked: false,
        created_ms: NOW,
        role,
        ceilings: DepositCeilings::NONE,
    }
}

/// What an account looks like from outside: its balance and its whole history.
fn account_state(ledger: &dyn Ledger, account: &AccountNumber) -> (Cents, Vec<HistoryEntry>) {
    (
        ledger.balance(account).unwrap(),
        ledger.history(account, u32::MAX).unwrap(),
    )
}

/// A replay returns the first entry and changes nothing; reusing a transaction id for another
/// request, and every other refusal, is refused and changes nothing either.
fn idempotency(open: Open) {
    let (_dir, ledger, _) = fresh(open);
    let ledger = &*ledger;
    let account = card_account(ledger, "ada", 1_000);
    let id = txid();
    let first = apply(ledger, &account, movement(TxKind::Deposit, id, 500)).unwrap();
    assert!(!first.replay);
    assert_eq!(first.entry.balance_cents, Cents(1_500));
    assert_eq!(
        ledger.transaction(&account, &id).unwrap(),
        Some(first.entry.clone())
    );
    let before = (
        account_state(ledger, &account),
        ledger.chain_position().unwrap(),
        totals(ledger),
    );
    let still = || {
        (
            account_state(ledger, &account),
            ledger.chain_position().unwrap(),
            totals(ledger),
        )
    };

    let replay = apply(ledger, &account, movement(TxKind::Deposit, id, 500)).unwrap();
    assert!(replay.replay);
    assert_eq!(replay.entry, first.entry);
    assert_eq!(still(), before, "a replay changes nothing");

    for (request, why) in [
        (movement(TxKind::Deposit, id, 501), "another amount"),
        (movement(TxKind::Withdraw, id, 500), "another kind"),
    ] {
        assert_eq!(
            apply(ledger, &account, request).unwrap_err(),
            LedgerError::TxIdReused,
            "{why}"
        );
        assert_eq!(still(), before, "{why} changes nothing");
    }
    let overdraft = movement(TxKind::Withdraw, txid(), 1_501);
    assert_eq!(
        apply(ledger, &account, overdraft).unwrap_err(),
        LedgerError::InsufficientFunds
    );
    let overflow = movement(TxKind::Deposit, txid(), u64::MAX - 1_499);
    assert_eq!(
        apply(ledger, &account, overflow).unwrap_err(),
        LedgerError::LimitExceeded
    );
    let nobody = AccountNumber::new("0000-0000-0001").unwrap();
    assert_eq!(
        apply(ledger, &nobody, movement(TxKind::Deposit, txid(), 1)).unwrap_err(),
        LedgerError::NotFound
    );
    assert_eq!(ledger.balance(&nobody).unwrap_err(), LedgerError::NotFound);
    let taken = NewAccount {
        username: name("ada"),
        full_name: FullName::new("Ada Again").unwrap(),
        password_hash: Some("$argon2id$test".into()),
        card_sha256: None,
        card_public: None,
        opening: None,
        terminal: None,
    };
    let audit = AuditEvent::new("register", NOW);
    assert_eq!(
        ledger.open_account(taken, NOW, &audit).err(),
        Some(LedgerError::NameTaken)
    );
    assert_eq!(still(), before, "refusals change nothing");
    // Exactly up to the limit is accepted.
    let to_the_top = movement(TxKind::Deposit, txid(), u64::MAX - 1_500);
    let top = apply(ledger, &account, to_the_top).unwrap();
    assert_eq!(top.entry.balance_cents, Cents(u64::MAX));
}

/// Concurrent deposits and withdrawals through the trait are exact: every balance equals its
/// opening plus what was acknowledged in minus what was acknowledged out, never negative, and
/// the history holds one entry per acknowledged transaction.
fn exact_under_concurrency(open: Open) {
    const THREADS: usize = 8;
    const EACH: usize = 50;
    const OPENING: u64 = 2_000;
    let (_dir, ledger, _) = fresh(open);
    let ledger = &*ledger;
    let accounts: Vec<AccountNumber> = (0..4)
        .map(|i| card_account(ledger, &format!("user{i}"), OPENING))
        .collect();
    // Per account: (cents in, cents out, transactions) acknowledged.
    let acknowledged = Mutex::new(vec![(0u64, 0u64, 0u64); accounts.len()]);
    std::thread::scope(|scope| {
        for _ in 0..THREADS {
            scope.spawn(|| {
                for _ in 0..EACH {
                    let which = (OsRng.next_u32() as usize) % accounts.len();
                    let amount = 1 + u64::from(OsRng.next_u32() % 500);
                    let kind = if OsRng.next_u32() % 2 == 0 {
                        TxKind::Deposit
                    } else {
                        TxKind::Withdraw
                    };
                    match apply(ledger, &accounts[which], movement(kind, txid(), amount)) {
                        Ok(applied) => {
                            assert!(!applied.replay);
                            let mut ack = acknowledged.lock().unwrap();
                            match kind {
                                TxKind::Withdraw => ack[which].1 += amount,
                                _ => ack[which].0 += amount,
                            }
                            ack[which].2 += 1;
                        }
                        Err(LedgerError::InsufficientFunds) => {
                            assert_eq!(kind, TxKind::Withdraw);
                        }
                        Err(other) => panic!("unexpected refusal: {other:?}"),
                    }
                }
            });
        }
    });
    let acknowledged = acknowledged.into_inner().unwrap();
    let mut held = 0u128;
    for (account, (cents_in, cents_out, count)) in accounts.iter().zip(&acknowledged) {
        let (balance, history) = account_state(ledger, account);
        assert_eq!(balance.0, OPENING + cents_in - cents_out, "{account}");
        assert_eq!(history.len() as u64, 1 + count, "{account}");
        // Every entry's balance follows from the one before: none went below zero.
        let mut running = 0u64;
        for entry in history.iter().rev() {
            running = match entry.kind {
                TxKind::Withdraw => running.checked_sub(entry.amount_cents.0).unwrap(),
                _ => running.checked_add(entry.amount_cents.0).unwrap(),
            };
            assert_eq!(entry.balance_cents.0, running, "{account}");
        }
        held += u128::from(balance.0);
    }
    let totals = totals(ledger);
    assert_eq!(totals.accounts, accounts.len() as u64);
    assert_eq!(totals.deposits_cents, held);
    let count: u64 = acknowledged.iter().map(|a| a.2).sum::<u64>() + accounts.len() as u64;
    assert_eq!(totals.transactions_today, count);
    // Every acknowledged change is audited.
    assert_eq!(ledger.chain_position().unwrap().unwrap().next_seq, count);
}

/// History is newest first and `limit` is respected.
fn history_newest_first(open: Open) {
    let (_dir, ledger, _) = fresh(open);
    let ledger = &*ledger;
    let account = card_account(ledger, "ada", 10);
    let other = card_account(ledger, "bob", 20);
    for amount in 1..=5 {
        apply(ledger, &account, movement(TxKind::Deposit, txid(), amount)).unwrap();
    }
    apply(ledger, &other, movement(TxKind::Withdraw, txid(), 5)).unwrap();
    let history = ledger.history(&account, 3).unwrap();
    let amounts: Vec<u64> = history.iter().map(|e| e.amount_cents.0).collect();
    assert_eq!(amounts, vec![5, 4, 3]);
    assert_eq!(history[0].balance_cents, Cents(25));
    let all = ledger.history(&account, 100).unwrap();
    assert_eq!(all.len(), 6);
    assert_eq!(all[5].kind, TxKind::Open);
    assert!(ledger.history(&account, 0).unwrap().is_empty());
    let theirs = ledger.history(&other, 100).unwrap();
    assert_eq!(theirs.len(), 2, "histories do not mix");
    assert_eq!(theirs[0].balance_cents, Cents(15));
}

/// Terminals are added, listed and revoked; the revocation counter grows.
fn terminals(open: Open) {
    let (_dir, ledger, _) = fresh(open);
    let ledger = &*ledger;
    let atm = TerminalRecord {
        ceilings: DepositCeilings {
            per_deposit: Some(Cents(500)),
            per_day: Some(Cents(2_000)),
        },
        ..terminal("atm-1", TerminalRole::Atm)
    };
    let audit = AuditEvent::new("terminal_added", NOW);
    ledger.add_terminal(&atm, &audit).unwrap();
    ledger
        .add_terminal(&terminal("atm-2", TerminalRole::Atm), &audit)
        .unwrap();
    assert_eq!(
        ledger.add_terminal(&atm, &audit).unwrap_err(),
        LedgerError::NameTaken
    );
    let stored = ledger.terminal(&atm.id).unwrap().unwrap();
    assert_eq!(
        (
            &stored.name,
            stored.psk.to_hex(),
            stored.revoked,
            stored.created_ms,
            stored.role,
            stored.ceilings
        ),
        (
            &atm.name,
            atm.psk.to_hex(),
            false,
            NOW,
            TerminalRole::Atm,
            atm.ceilings
        )
    );
    let listed: Vec<(String, DepositCeilings)> = ledger
        .terminals()
        .unwrap()
        .iter()
        .map(|t| (t.id.to_string(), t.ceilings))
        .collect();
    assert!(listed.contains(&("atm-1".into(), atm.ceilings)));
    assert!(listed.contains(&("atm-2".into(), DepositCeilings::NONE)));
    let mut ids: Vec<String> = ledger
        .terminals()
        .unwrap()
        .iter()
        .map(|t| t.id.to_string())
        .collect();
    ids.sort();
    assert_eq!(ids, vec!["atm-1", "atm-2"]);
    let before = ledger.revocations();
    let revoke = AuditEvent::new("terminal_revoked", NOW);
    ledger.revoke_terminal(&atm.id, &revoke).unwrap();
    assert!(ledger.revocations() > before);
    let revoked = ledger.terminal(&atm.id).unwrap().unwrap();
    assert!(revoked.revoked);
    assert_eq!(
        revoked.ceilings, atm.ceilings,
        "a revocation keeps the ceilings"
    );
    let missing = TerminalId::new("atm-9").unwrap();
    assert!(ledger.terminal(&missing).unwrap().is_none());
    assert_eq!(
        ledger.revoke_terminal(&missing, &revoke).unwrap_err(),
        LedgerError::NotFound
    );
}

/// Adds ATM `id` under `ceilings`.
fn add_atm(ledger: &dyn Ledger, id: &str, ceilings: DepositCeilings) -> TerminalId {
    let atm = TerminalRecord {
        ceilings,
        ..terminal(id, TerminalRole::Atm)
    };
    ledger
        .add_terminal(&atm, &AuditEvent::new("terminal_added", NOW))
        .unwrap();
    atm.id
}

/// A deposit of `amount` cents from terminal `by` at `at`.
fn deposit_by(
    ledger: &dyn Ledger,
    account: &AccountNumber,
    by: &TerminalId,
    id: TxId,
    amount: u64,
    at: u64,
) -> Result<bank_server::ledger::Applied, LedgerError> {
    let movement = Movement {
        terminal: Some(by.clone()),
        ..movement(TxKind::Deposit, id, amount)
    };
    ledger.apply(account, movement, at, &AuditEvent::new("deposit", at))
}

/// A card account opened from terminal `by` with `opening` cents.
fn open_by(
    ledger: &dyn Ledger,
    user: &str,
    by: &TerminalId,
    opening: u64,
) -> Result<AccountNumber, LedgerError> {
    let new = NewAccount {
        username: name(user),
        full_name: FullName::new("Ada Lovelace").unwrap(),
        password_hash: None,
        card_sha256: Some("ab".repeat(32)),
        card_public: None,
        opening: Some((txid(), Cents(opening))),
        terminal: Some(by.clone()),
    };
    let audit = AuditEvent::new("open_account", NOW);
    ledger
        .open_account(new, NOW, &audit)
        .map(|user| user.account)
}

/// A terminal's deposits (opening balances included) are held to its ceilings per deposit and
/// per UTC day, checked and counted in the deposit's own commit: a refusal changes nothing, a
/// replay is not counted twice, a withdrawal frees nothing, the next UTC day starts from zero;
/// a terminal without ceilings is not counted; an unknown terminal is refused.
fn deposit_ceilings(open: Open) {
    let (_dir, ledger, _) = fresh(open);
    let ledger = &*ledger;
    let atm = add_atm(
        ledger,
        "atm-1",
        DepositCeilings {
            per_deposit: Some(Cents(1_000)),
            per_day: Some(Cents(2_500)),
        },
    );
    let free = add_atm(ledger, "atm-free", DepositCeilings::NONE);
    let today = |by: &TerminalId| ledger.deposited_today(by, NOW).unwrap();
    assert_eq!(today(&atm), Cents::ZERO);
    let account = open_by(ledger, "ada", &atm, 1_000).unwrap();
    assert_eq!(today(&atm), Cents(1_000), "an opening balance counts");
    let still = || {
        (
            account_state(ledger, &account),
            ledger.chain_position().unwrap(),
            totals(ledger),
            today(&atm),
        )
    };
    let before = still();
    assert_eq!(
        deposit_by(ledger, &account, &atm, txid(), 1_001, NOW).unwrap_err(),
        LedgerError::OverCeiling(Ceiling::PerDeposit {
            ceiling: Cents(1_000)
        })
    );
    assert_eq!(still(), before, "a refusal changes nothing");

    let id = txid();
    deposit_by(ledger, &account, &atm, id, 1_000, NOW).unwrap();
    let replay = deposit_by(ledger, &account, &atm, id, 1_000, NOW + 1).unwrap();
    assert!(replay.replay);
    assert_eq!(today(&atm), Cents(2_000), "a replay is not counted again");
    apply(ledger, &account, movement(TxKind::Withdraw, txid(), 1_500)).unwrap();
    assert_eq!(today(&atm), Cents(2_000), "a withdrawal frees nothing");
    let before = still();
    assert_eq!(
        deposit_by(ledger, &account, &atm, txid(), 501, NOW).unwrap_err(),
        LedgerError::OverCeiling(Ceiling::PerDay {
            ceiling: Cents(2_500),
            deposited: Cents(2_000),
        })
    );
    assert_eq!(
        open_by(ledger, "bob", &atm, 501).unwrap_err(),
        LedgerError::OverCeiling(Ceiling::PerDay {
            ceiling: Cents(2_500),
            deposited: Cents(2_000),
        })
    );
    assert!(ledger.user(&name("bob")).unwrap().is_none());
    assert_eq!(still(), before, "refusals change nothing");
    deposit_by(ledger, &account, &atm, txid(), 500, NOW).unwrap();
    assert_eq!(today(&atm), Cents(2_500), "exactly the ceiling");
    assert!(matches!(
        deposit_by(ledger, &account, &atm, txid(), 1, NOW),
        Err(LedgerError::OverCeiling(Ceiling::PerDay { .. }))
    ));

    // Another terminal has its own (here: none, and nothing is counted).
    deposit_by(ledger, &account, &free, txid(), 5_000_000, NOW).unwrap();
    assert_eq!(today(&free), Cents::ZERO);
    let stranger = TerminalId::new("atm-unknown").unwrap();
    assert_eq!(
        deposit_by(ledger, &account, &stranger, txid(), 1, NOW).unwrap_err(),
        LedgerError::NotFound
    );
    assert_eq!(today(&stranger), Cents::ZERO);

    // 00:00 UTC the next day: room again.
    let midnight = NOW - NOW % DAY_MS + DAY_MS;
    assert!(matches!(
        deposit_by(ledger, &account, &atm, txid(), 1, midnight - 1),
        Err(LedgerError::OverCeiling(Ceiling::PerDay { .. }))
    ));
    assert_eq!(ledger.deposited_today(&atm, midnight).unwrap(), Cents::ZERO);
    deposit_by(ledger, &account, &atm, txid(), 1_000, midnight).unwrap();
    assert_eq!(
        ledger.deposited_today(&atm, midnight).unwrap(),
        Cents(1_000)
    );
}

/// Concurrent deposits from one terminal never add up past its day's ceiling, and what it
/// counted is exactly what was acknowledged.
fn ceilings_under_concurrency(open: Open) {
    const THREADS: usize = 8;
    const EACH: usize = 40;
    const CEILING: u64 = 10_000;
    let (_dir, ledger, _) = fresh(open);
    let ledger = &*ledger;
    let atm = add_atm(
        ledger,
        "atm-1",
        DepositCeilings {
            per_deposit: None,
            per_day: Some(Cents(CEILING)),
        },
    );
    let accounts: Vec<AccountNumber> = (0..3)
        .map(|i| card_account(ledger, &format!("user{i}"), 0))
        .collect();
    let accepted = Mutex::new(0u64);
    let refused = Mutex::new(0u64);
    std::thread::scope(|scope| {
        for _ in 0..THREADS {
            scope.spawn(|| {
                for _ in 0..EACH {
                    let which = (OsRng.next_u32() as usize) % accounts.len();
                    let amount = 1 + u64::from(OsRng.next_u32() % 100);
                    match deposit_by(ledger, &accounts[which], &atm, txid(), amount, NOW) {
                        Ok(_) => *accepted.lock().unwrap() += amount,
                        Err(LedgerError::OverCeiling(Ceiling::PerDay { .. })) => {
                            *refused.lock().unwrap() += 1;
                        }
                        Err(other) => panic!("unexpected refusal: {other:?}"),
                    }
                }
            });
        }
    });
    let accepted = accepted.into_inner().unwrap();
    assert!(*refused.lock().unwrap() > 0, "the load crossed the ceiling");
    assert!(accepted <= CEILING, "{accepted} accepted past {CEILING}");
    // Once refused, room only shrinks: what is left is less than one deposit.
    assert!(accepted > CEILING - 100, "{accepted}");
    assert_eq!(ledger.deposited_today(&atm, NOW).unwrap(), Cents(accepted));
    let held: u64 = accounts.iter().map(|a| ledger.balance(a).unwrap().0).sum();
    assert_eq!(held, accepted);
}

/// Operators are added with their console; a taken name is refused.
fn operators(open: Open) {
    let (_dir, ledger, _) = fresh(open);
    let ledger = &*ledger;
    let operator = OperatorRecord {
        username: name("olga"),
        password_hash: "$argon2id$test".into(),
        created_ms: NOW,
    };
    let console = terminal("console-olga", TerminalRole::Console);
    let audit = AuditEvent::new("operator_added", NOW);
    ledger.add_operator(&operator, &console, &audit).unwrap();
    let stored = ledger.operator(&name("olga")).unwrap().unwrap();
    assert_eq!(
        (stored.password_hash, stored.created_ms),
        (operator.password_hash.clone(), NOW)
    );
    assert_eq!(
        ledger.terminal(&console.id).unwrap().unwrap().role,
        TerminalRole::Console
    );
    let another_console = terminal("console-olga-2", TerminalRole::Console);
    assert_eq!(
        ledger
            .add_operator(&operator, &another_console, &audit)
            .unwrap_err(),
        LedgerError::NameTaken
    );
    assert!(ledger.terminal(&another_console.id).unwrap().is_none());
    assert!(ledger.operator(&name("nobody")).unwrap().is_none());
    // Operators and customers are separate namespaces.
    card_account(ledger, "olga", 0);
}

/// Every change is audited in a linked chain that verifies with the first key, the posting's
/// entries enriched with the account and the balance after.
fn audit_chain(open: Open) {
    let (_dir, ledger, key) = fresh(open);
    let ledger = &*ledger;
    let account = card_account(ledger, "ada", 100);
    apply(ledger, &account, movement(TxKind::Deposit, txid(), 50)).unwrap();
    apply(ledger, &account, movement(TxKind::Withdraw, txid(), 30)).unwrap();
    ledger
        .add_terminal(
            &terminal("atm-1", TerminalRole::Atm),
            &AuditEvent::new("terminal_added", NOW),
        )
        .unwrap();
    ledger.audit(&AuditEvent::new("logout", NOW)).unwrap();
    let position = ledger.chain_position().unwrap().unwrap();
    assert_eq!(position.next_seq, 5);
    assert_eq!(ledger.check_audit_links().unwrap(), Ok(5));
    let log = ledger.audit_log().unwrap();
    assert_eq!(log.entries.len(), 5);
    let events = verified(ledger, &key).unwrap();
    let actions: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "open_account",
            "deposit",
            "withdraw",
            "terminal_added",
            "logout"
        ]
    );
    assert_eq!(events[0].account, Some(account.to_string()));
    assert_eq!(events[0].balance_cents, Some(100));
    assert_eq!(events[1].balance_cents, Some(150));
    assert_eq!(events[2].balance_cents, Some(120));
    let stranger = AuditorKeys::new(Some(AuditorSecret::random()), None);
    assert!(verified(ledger, &stranger).is_err());
    let recent = ledger.recent_audit(2).unwrap();
    assert_eq!(recent.total, 5);
    let seqs: Vec<u64> = recent.entries.iter().map(|(seq, _)| *seq).collect();
    assert_eq!(seqs, vec![4, 3]);
    assert_eq!(recent.entries[0].1.action, "logout");
}

/// A bank is created once, in an empty store; its identity and chain position are read back.
fn identity_and_chain_position(open: Open) {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(&dir.path().join("data"));
    assert_eq!(ledger.identity().unwrap(), None);
    assert_eq!(ledger.chain_position().unwrap(), None);
    assert!(!ledger.adopt_identity(&identity()).unwrap(), "no log yet");
    assert!(
        !ledger
            .record_bank_key(&"ab".repeat(32), &AuditEvent::new("bank_key_recorded", NOW))
            .unwrap(),
        "no identity to record it in"
    );
    let anonymous = BankIdentity {
        auditor_key: None,
        ..identity()
    };
    assert!(
        ledger.create_bank(&anonymous).is_err(),
        "a bank needs the auditor's key"
    );
    assert_eq!(ledger.identity().unwrap(), None);
    assert!(ledger.create_bank(&identity()).unwrap());
    assert!(!ledger.create_bank(&identity()).unwrap());
    assert!(
        !ledger.adopt_identity(&identity()).unwrap(),
        "already there"
    );
    assert_eq!(ledger.identity().unwrap(), Some(identity()));
    assert_eq!(
        ledger.chain_position().unwrap(),
        Some(ChainPosition {
            next_seq: 0,
            last_hash: [0; 32],
        })
    );
    assert_eq!(ledger.audit_entry(0).unwrap(), None);
    ledger.audit(&AuditEvent::new("logout", NOW)).unwrap();
    let position = ledger.chain_position().unwrap().unwrap();
    assert_eq!(position.next_seq, 1);
    assert_ne!(position.last_hash, [0; 32]);
    let entry = ledger.audit_entry(0).unwrap().unwrap();
    assert_eq!(ledger.audit_log().unwrap().entries, vec![(0, entry)]);
    assert_eq!(ledger.audit_entry(1).unwrap(), None);

    // A bank key is recorded once, with its audit entry, and survives a restart.
    let public = "ab".repeat(32);
    let event = AuditEvent::new("bank_key_recorded", NOW);
    assert!(ledger.record_bank_key(&public, &event).unwrap());
    assert!(!ledger.record_bank_key(&"cd".repeat(32), &event).unwrap());
    assert_eq!(ledger.chain_position().unwrap().unwrap().next_seq, 2);
    ledger.sync().unwrap();
    drop(ledger);
    let ledger = open(&dir.path().join("data"));
    let recorded = ledger.identity().unwrap().unwrap();
    assert_eq!(recorded.bank_key.as_deref(), Some(public.as_str()));
    assert_eq!(
        recorded,
        BankIdentity {
            bank_key: Some(public),
            ..identity()
        }
    );
}

/// A user's password or card hash and an operator's password are replaced, audited, and
/// counted; replacing for someone who does not exist is `NotFound` and writes nothing.
fn credentials(open: Open) {
    let (_dir, ledger, _) = fresh(open);
    let ledger = &*ledger;
    card_account(ledger, "ada", 1_000);
    let operator = OperatorRecord {
        username: name("olga"),
        password_hash: "$argon2id$old".into(),
        created_ms: NOW,
    };
    let console = terminal("console-olga", TerminalRole::Console);
    ledger
        .add_operator(&operator, &console, &AuditEvent::new("operator_added", NOW))
        .unwrap();
    let before = ledger.credential_changes();
    let seq = ledger.chain_position().unwrap().unwrap().next_seq;
    let event = AuditEvent::new("card_reissued", NOW);
    ledger
        .replace_credential(
            &name("ada"),
            NewCredential::CardSha256("cd".repeat(32)),
            &event,
        )
        .unwrap();
    let ada = ledger.user(&name("ada")).unwrap().unwrap();
    assert_eq!(ada.card_sha256.as_deref(), Some("cd".repeat(32).as_str()));
    assert_eq!(ada.password_hash, None);
    ledger
        .replace_credential(
            &name("ada"),
            NewCredential::PasswordHash("$argon2id$new".into()),
            &AuditEvent::new("password_changed", NOW),
        )
        .unwrap();
    let ada = ledger.user(&name("ada")).unwrap().unwrap();
    assert_eq!(ada.password_hash.as_deref(), Some("$argon2id$new"));
    assert_eq!(ada.card_sha256.as_deref(), Some("cd".repeat(32).as_str()));
    ledger
        .replace_operator_password(
            &name("olga"),
            "$argon2id$newer".into(),
            &AuditEvent::new("password_changed", NOW),
        )
        .unwrap();
    assert_eq!(
        ledger
            .operator(&name("olga"))
            .unwrap()
            .unwrap()
            .password_hash,
        "$argon2id$newer"
    );
    assert_eq!(ledger.credential_changes(), before + 3);
    assert_eq!(ledger.chain_position().unwrap().unwrap().next_seq, seq + 3);
    for result in [
        ledger.replace_credential(
            &name("nobody"),
            NewCredential::PasswordHash("x".into()),
            &event,
        ),
        ledger.replace_operator_password(&name("nobody"), "x".into(), &event),
    ] {
        assert!(matches!(result, Err(LedgerError::NotFound)));
    }
    assert_eq!(ledger.credential_changes(), before + 3);
    assert_eq!(ledger.chain_position().unwrap().unwrap().next_seq, seq + 3);
}

/// Stored terminal and enrollment keys: plain until the bank gives its storage keys, then
/// sealed (those stored plain before, in one audited commit), and readable again after a
/// restart only with the same keys.
fn sealed_keys(open: Open) {
    use std::sync::Arc;
    let (dir, ledger, _) = fresh(open);
    let path = dir.path().join("data");
    let bank = protocol::BankKey::from_secret(protocol::BankId::new("b").unwrap(), [9; 32]);
    let desk = terminal("t-desk", TerminalRole::Atm);
    {
        ledger
            .add_terminal(&desk, &AuditEvent::new("terminal_added", NOW))
            .unwrap();
        let keys = Arc::new(bank_server::secrets::StorageKeys::of(&bank));
        let sealed = ledger
            .seal_secrets(keys.clone(), &AuditEvent::new("stored_keys_sealed", NOW))
            .unwrap();
        assert_eq!(sealed, 1);
        assert_eq!(
            ledger
                .seal_secrets(keys, &AuditEvent::new("stored_keys_sealed", NOW))
                .unwrap(),
            0,
            "nothing left to seal"
        );
        assert!(ledger.terminal(&desk.id).unwrap().unwrap().psk == desk.psk);
        let lobby = terminal("t-lobby", TerminalRole::Atm);
        ledger
            .add_terminal(&lobby, &AuditEvent::new("terminal_added", NOW))
            .unwrap();
        ledger.sync().unwrap();
        drop(ledger);
    }
    // Reopened without the keys: sealed keys are refused, not guessed.
    {
        let ledger = open(&path);
        assert!(ledger.terminal(&desk.id).is_err());
        let keys = Arc::new(bank_server::secrets::StorageKeys::of(&bank));
        assert_eq!(
            ledger
                .seal_secrets(keys, &AuditEvent::new("stored_keys_sealed", NOW))
                .unwrap(),
            0
        );
        assert!(ledger.terminal(&desk.id).unwrap().unwrap().psk == desk.psk);
        assert_eq!(ledger.terminals().unwrap().len(), 2);
    }
    // Another bank's keys open nothing.
    let ledger = open(&path);
    let other = protocol::BankKey::from_secret(protocol::BankId::new("b").unwrap(), [8; 32]);
    ledger
        .seal_secrets(
            Arc::new(bank_server::secrets::StorageKeys::of(&other)),
            &AuditEvent::new("stored_keys_sealed", NOW),
        )
        .unwrap();
    assert!(ledger.terminal(&desk.id).is_err());
}

/// A pending enrollment is stored once (its id is unique) and taken once, with its audit
/// entry; taking an absent one writes nothing.
fn enrollments(open: Open) {
    let (_dir, ledger, _) = fresh(open);
    let pending = PendingEnrollment {
        code: TerminalId::new("e-0011223344").unwrap(),
        name: "kiosk".into(),
        key: Psk::from_bytes([3; 32]),
        role: TerminalRole::Atm,
        ceilings: DepositCeilings {
            per_deposit: Some(Cents(5_000)),
            per_day: None,
        },
        created_ms: NOW,
        expires_ms: NOW + 600_000,
    };
    let issued = AuditEvent::new("enrollment_code_issued", NOW);
    ledger.add_enrollment(&pending, &issued).unwrap();
    assert!(matches!(
        ledger.add_enrollment(&pending, &issued),
        Err(LedgerError::NameTaken)
    ));
    let before = ledger.chain_position().unwrap().unwrap().next_seq;
    let used = AuditEvent::new("enrollment_code_used", NOW);
    let taken = ledger
        .take_enrollment(&pending.code, &used)
        .unwrap()
        .unwrap();
    assert_eq!(taken.code, pending.code);
    assert_eq!(taken.name, "kiosk");
    assert!(taken.key == pending.key);
    assert_eq!(taken.role, TerminalRole::Atm);
    assert_eq!(taken.ceilings, pending.ceilings);
    assert_eq!(
        (taken.created_ms, taken.expires_ms),
        (pending.created_ms, pending.expires_ms)
    );
    assert_eq!(
        ledger.chain_position().unwrap().unwrap().next_seq,
        before + 1
    );
    assert!(ledger
        .take_enrollment(&pending.code, &used)
        .unwrap()
        .is_none());
    assert_eq!(
        ledger.chain_position().unwrap().unwrap().next_seq,
        before + 1,
        "nothing written for an absent code"
    );
    assert!(ledger
        .terminals()
        .unwrap()
        .iter()
        .all(|t| t.id != pending.code));
}

/// The audit chain's key is never stored: the first entry of each opening begins an epoch for
/// the auditor's key, recorded in the same commit; the writer's tip (with the key) is in
/// memory only, and the flush hook is told it.
fn audit_custody(open: Open) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data");
    let recorded = AuditEvent::new("auditor_key_recorded", NOW);
    let logout = AuditEvent::new("logout", NOW);
    {
        let ledger = open(&path);
        assert!(
            !ledger.record_auditor_key(&identity(), &recorded).unwrap(),
            "no identity to record it in"
        );
        assert!(ledger.create_bank(&identity()).unwrap());
        assert!(ledger.chain_tip().is_none());
        assert_eq!(
            ledger.audit_epochs().unwrap(),
            [],
            "nothing before the first entry"
        );
        assert!(
            !ledger.record_auditor_key(&identity(), &recorded).unwrap(),
            "it has one"
        );
        ledger.audit(&logout).unwrap();
        ledger.audit(&logout).unwrap();
        let tip = ledger.chain_tip().unwrap();
        let position = ledger.chain_position().unwrap().unwrap();
        assert_eq!(
            (tip.head().next_seq, tip.head().prev_hash),
            (position.next_seq, position.last_hash)
        );
        let epochs = ledger.audit_epochs().unwrap();
        assert_eq!(epochs.len(), 1);
        assert_eq!(epochs[0].start, 0);
        assert!(matches!(epochs[0].kind, EpochKind::Exchange { .. }));
        assert_eq!(*tip.epoch(), epochs[0]);
        ledger.sync().unwrap();
    }
    // An opening that appends nothing records nothing.
    {
        let ledger = open(&path);
        assert!(ledger.chain_tip().is_none());
        assert_eq!(ledger.audit_epochs().unwrap().len(), 1);
    }
    let ledger = open(&path);
    let seen = std::sync::Arc::new(Mutex::new(Vec::new()));
    let told = seen.clone();
    assert!(ledger.on_durable(std::sync::Arc::new(move |tip| {
        told.lock().unwrap().push(tip.head().next_seq);
        Ok(())
    })));
    ledger.sync().unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        [0u64; 0],
        "no tip before this opening appends"
    );
    ledger.audit(&logout).unwrap();
    ledger.sync().unwrap();
    assert_eq!(*seen.lock().unwrap(), [3]);
    let epochs: Vec<Epoch> = ledger.audit_epochs().unwrap();
    assert_eq!(epochs.iter().map(|e| e.start).collect::<Vec<_>>(), [0, 2]);
    assert_eq!(verified(&*ledger, &keys()).unwrap().len(), 3);
}

/// Failed-login state is read, updated atomically and cleared.
/// A change whose audit entry cannot be written (here: a store with no audit log) leaves
/// nothing behind: not the account it would have opened, not a balance. It fails as a whole,
/// and so does the batch it was in.
fn no_change_without_its_audit_entry(open: Open) {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(&dir.path().join("data"));
    let new = NewAccount {
        username: name("ada"),
        full_name: FullName::new("Ada Lovelace").unwrap(),
        password_hash: None,
        card_sha256: Some("ab".repeat(32)),
        card_public: None,
        opening: Some((txid(), Cents(1_000))),
        terminal: None,
    };
    let opened = ledger.open_account(new, NOW, &AuditEvent::new("open_account", NOW));
    assert!(
        matches!(opened, Err(ref e) if !e.is_refusal()),
        "a store failure, not a refusal: {:?}",
        opened.err()
    );
    assert!(
        ledger.user(&name("ada")).unwrap().is_none(),
        "half a change committed"
    );
    assert_eq!(ledger.totals(NOW, 0, 1).unwrap().accounts, 0);
}

fn throttle(open: Open) {
    let (_dir, ledger, _) = fresh(open);
    assert_eq!(
        ledger.throttle("user:ada").unwrap(),
        ThrottleState::default()
    );
    let failed = ThrottleState {
        failures: 2,
        last_failure_ms: NOW,
        locked_until_ms: NOW + 1_000,
        locks: 1,
    };
    let before = ledger.update_throttle("user:ada", &mut |_| failed).unwrap();
    assert_eq!(before, ThrottleState::default());
    assert_eq!(ledger.throttle("user:ada").unwrap(), failed);
    let before = ledger
        .update_throttle("user:ada", &mut |_| ThrottleState::default())
        .unwrap();
    assert_eq!(before, failed);
    assert_eq!(
        ledger.throttle("user:ada").unwrap(),
        ThrottleState::default()
    );
}

/// Dropped and reopened, a store holds everything it acknowledged; the totals are equal.
fn restart(open: Open) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data");
    let key = keys();
    let before = {
        let ledger = open(&path);
        let ledger = &*ledger;
        assert!(ledger.create_bank(&identity()).unwrap());
        let mut accounts = Vec::new();
        for i in 0..3 {
            let account = card_account(ledger, &format!("user{i}"), 1_000 * (i + 1));
            apply(ledger, &account, movement(TxKind::Deposit, txid(), 7)).unwrap();
            apply(ledger, &account, movement(TxKind::Withdraw, txid(), 3)).unwrap();
            accounts.push(account);
        }
        let atm = terminal("atm-1", TerminalRole::Atm);
        ledger
            .add_terminal(&atm, &AuditEvent::new("terminal_added", NOW))
            .unwrap();
        ledger
            .revoke_terminal(&atm.id, &AuditEvent::new("terminal_revoked", NOW))
            .unwrap();
        let failed = ThrottleState {
            failures: 1,
            ..ThrottleState::default()
        };
        ledger
            .update_throttle("user:user0", &mut |_| failed)
            .unwrap();
        let limited = add_atm(ledger, "atm-2", DepositCeilings::DEFAULT);
        deposit_by(ledger, &accounts[0], &limited, txid(), 1_234, NOW).unwrap();
        ledger.sync().unwrap();
        snapshot(ledger, &accounts)
    };
    let ledger = open(&path);
    let accounts: Vec<AccountNumber> = before.0.iter().map(|a| a.0.clone()).collect();
    assert_eq!(snapshot(&*ledger, &accounts), before);
    let written = verified(&*ledger, &key).unwrap().len() as u64;
    // And it keeps going from where it was, in a new epoch.
    apply(&*ledger, &accounts[0], movement(TxKind::Deposit, txid(), 1)).unwrap();
    assert_eq!(totals(&*ledger).deposits_cents, before.1.deposits_cents + 1);
    let starts: Vec<u64> = ledger
        .audit_epochs()
        .unwrap()
        .iter()
        .map(|e| e.start)
        .collect();
    assert_eq!(starts, [0, written]);
    assert_eq!(verified(&*ledger, &key).unwrap().len() as u64, written + 1);
}

type Snapshot = (
    Vec<(AccountNumber, Cents, Vec<HistoryEntry>)>,
    Totals,
    Option<ChainPosition>,
    Option<BankIdentity>,
    Vec<(String, bool, DepositCeilings)>,
    ThrottleState,
    Cents,
);

fn snapshot(ledger: &dyn Ledger, accounts: &[AccountNumber]) -> Snapshot {
    let accounts = accounts
        .iter()
        .map(|account| {
            let (balance, history) = account_state(ledger, account);
            (account.clone(), balance, history)
        })
        .collect();
    let mut terminals: Vec<(String, bool, DepositCeilings)> = ledger
        .terminals()
        .unwrap()
        .iter()
        .map(|t| (t.id.to_string(), t.revoked, t.ceilings))
        .collect();
    terminals.sort_by(|a, b| a.0.cmp(&b.0));
    (
        accounts,
        totals(ledger),
        ledger.chain_position().unwrap(),
        ledger.identity().unwrap(),
        terminals,
        ledger.throttle("user:user0").unwrap(),
        ledger
            .deposited_today(&TerminalId::new("atm-2").unwrap(), NOW)
            .unwrap(),
    )
}

/// One `#[test]` per property of the contract, on one engine.
macro_rules! contract {
    ($engine:ident, $open:expr) => {
        mod $engine {
            use super::*;

            #[test]
            fn idempotency() {
                super::idempotency($open);
            }

            #[test]
            fn exact_under_concurrency() {
                super::exact_under_concurrency($open);
            }

            #[test]
            fn history_newest_first() {
                super::history_newest_first($open);
            }

            #[test]
            fn terminals() {
                super::terminals($open);
            }

            #[test]
            fn deposit_ceilings() {
                super::deposit_ceilings($open);
            }

            #[test]
            fn ceilings_under_concurrency() {
                super::ceilings_under_concurrency($open);
            }

            #[test]
            fn operators() {
                super::operators($open);
            }

            #[test]
            fn audit_chain() {
                super::audit_chain($open);
            }

            #[test]
            fn audit_custody() {
                super::audit_custody($open);
            }

            #[test]
            fn identity_and_chain_position() {
                super::identity_and_chain_position($open);
            }

            #[test]
            fn no_change_without_its_audit_entry() {
                super::no_change_without_its_audit_entry($open);
            }

            #[test]
            fn credentials() {
                super::credentials($open);
            }

            #[test]
            fn sealed_keys() {
                super::sealed_keys($open);
            }

            #[test]
            fn enrollments() {
                super::enrollments($open);
            }

            #[test]
            fn throttle() {
                super::throttle($open);
            }

            #[test]
            fn restart() {
                super::restart($open);
            }
        }
    };
}

fn open_sled(dir: &Path) -> Box<dyn Ledger> {
    Box::new(SledLedger::open(dir).unwrap())
}

contract!(sled, open_sled);

fn open_redb(dir: &Path) -> Box<dyn Ledger> {
    Box::new(RedbLedger::open_with_cache(dir, 8 << 20).unwrap())
}

contract!(redb, open_redb);

/// The suite's PostgreSQL: one cluster for the whole run (stopped by its watchdog when the
/// test process ends), one database per store directory.
static CLUSTER: std::sync::OnceLock<pg_harness::Cluster> = std::sync::OnceLock::new();

/// The database standing for `dir`: created the first time (when `dir` does not exist yet,
/// which then marks it), the same one when `dir` is opened again.
fn open_postgres(dir: &Path) -> Box<dyn Ledger> {
    let cluster = CLUSTER.get_or_init(|| {
        let started = std::time::Instant::now();
        let cluster = pg_harness::Cluster::start().expect("a PostgreSQL for the tests");
        eprintln!("PostgreSQL started in {:?}", started.elapsed());
        cluster
    });
    let digest = <sha2::Sha256 as sha2::Digest>::digest(dir.as_os_str().as_encoded_bytes());
    let name = format!("bank_{}", hex::encode(&digest[..10]));
    if !dir.exists() {
        std::fs::create_dir_all(dir).unwrap();
        cluster.create_database(&name).unwrap();
    }
    let node = bank_server::node::NodeName::new("n1").unwrap();
    Box::new(PgLedger::open(&cluster.url(&name), None, &node).unwrap())
}

contract!(postgres, open_postgres);

//! Property tests of the books where a fuzzer is the wrong tool (long runs of one kind of
//! request, shrunk to a short counterexample): any sequence of deposits and withdrawals with
//! retries, on the real sled ledger, keeps each balance the sum of the movements it accepted,
//! never below zero, applies a transaction id at most once per account, and keeps the audit
//! chain linked; and a retry through a new session of the in-process seam
//! (`bank_server::testing`) gets the first answer.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bank_server::audit::AuditEvent;
use bank_server::ledger::{LedgerError, Movement, NewAccount};
use bank_server::{Bank, Clock};
use proptest::prelude::*;
use protocol::{client, Cents, FullName, Request, Response, TxId, TxKind, Username};
use rand_core::OsRng;

/// One movement: which account, deposit or withdrawal, which of a few txids, how much.
#[derive(Clone, Copy, Debug)]
struct Op {
    account: usize,
    deposit: bool,
    txid: u8,
    amount: u64,
}

fn op() -> impl Strategy<Value = Op> {
    (
        0..2usize,
        any::<bool>(),
        0..5u8,
        prop_oneof![1..1_000u64, 1..u64::MAX / 2, Just(u64::MAX)],
    )
        .prop_map(|(account, deposit, txid, amount)| Op {
            account,
            deposit,
            txid,
            amount,
        })
}

fn bank(dir: &std::path::Path) -> Bank {
    let mut config = common::config(dir);
    config.output = bank_server::Output::memory().0;
    bank_server::open(config).expect("the bank opens")
}

fn open_account(bank: &Bank, name: &str) -> protocol::AccountNumber {
    let user = bank
        .ledger()
        .open_account(
            NewAccount {
                username: Username::new(name).unwrap(),
                full_name: FullName::new(name).unwrap(),
                password_hash: None,
                card_sha256: None,
                card_public: None,
                opening: None,
                terminal: None,
            },
            1,
            &AuditEvent::new("register", 1),
        )
        .expect("an account");
    user.account
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn movements_with_retries_keep_the_books(ops in proptest::collection::vec(op(), 1..40)) {
        let dir = tempfile::tempdir().unwrap();
        let bank = bank(dir.path());
        let accounts = [open_account(&bank, "alice"), open_account(&bank, "bob")];
        let mut balances = [0u64; 2];
        // (account, txid) -> (deposit, amount) of the movement applied under it.
        let mut applied = std::collections::HashMap::new();
        let ledger = bank.ledger();
        for (n, op) in ops.iter().enumerate() {
            let movement = Movement {
                kind: if op.deposit { TxKind::Deposit } else { TxKind::Withdraw },
                txid: TxId::from_bytes([op.txid; 16]),
                amount: Cents(op.amount),
                terminal: None,
            };
            let now = 10 + n as u64;
            let event = AuditEvent::new("move", now);
            let result = ledger.apply(&accounts[op.account], movement, now, &event);
            let balance = balances[op.account];
            let key = (op.account, op.txid);
            match (applied.get(&key).copied(), result) {
                (Some(first), Ok(again)) => {
                    prop_assert!(again.replay, "{op:?} applied twice");
                    prop_assert_eq!(first, (op.deposit, op.amount));
                }
                (Some(first), Err(LedgerError::TxIdReused)) => {
                    prop_assert_ne!(first, (op.deposit, op.amount));
                }
                (None, Ok(done)) => {
                    prop_assert!(!done.replay);
                    let after = if op.deposit {
                        balance.checked_add(op.amount)
                    } else {
                        balance.checked_sub(op.amount)
                    };
                    prop_assert_eq!(Some(done.entry.balance_cents.0), after, "{:?}", op);
                    balances[op.account] = done.entry.balance_cents.0;
                    applied.insert(key, (op.deposit, op.amount));
                }
                (None, Err(LedgerError::InsufficientFunds)) => {
                    prop_assert!(!op.deposit && op.amount > balance);
                }
                (None, Err(LedgerError::LimitExceeded)) => {
                    prop_assert!(op.deposit && balance.checked_add(op.amount).is_none());
                }
                (_, other) => {
                    let entry = other.map(|a| a.entry);
                    prop_assert!(false, "{op:?} after {balance}: {entry:?}");
                }
            }
            for (account, balance) in accounts.iter().zip(balances) {
                prop_assert_eq!(ledger.balance(account).unwrap(), Cents(balance));
            }
        }
        // The history holds exactly the accepted movements, each balance their running sum.
        for (i, account) in accounts.iter().enumerate() {
            let history = ledger.history(account, 1000).unwrap();
            let moved = history.iter().filter(|e| e.kind != TxKind::Open).count();
            prop_assert_eq!(moved, applied.keys().filter(|(a, _)| *a == i).count());
        }
        prop_assert!(ledger.check_audit_links().unwrap().is_ok(), "the audit chain links");
    }
}

/// A session of the in-process seam on the bank's first terminal, handshaken at the bank's
/// clock: the terminal's end and the bank's.
async fn session(
    bank: &Bank,
    auth: &protocol::auth_file::AuthFile,
    now: u64,
) -> (protocol::ClientSession, bank_server::testing::Connection) {
    let config = protocol::Config::default();
    let (state, hello) = client::start(
        &config,
        auth.terminal_id.clone(),
        &auth.psk,
        &auth.bank,
        &mut OsRng,
        now,
    )
    .unwrap();
    let mut conn = bank.connect();
    let reply = conn.hello(&hello).await.expect("a server hello");
    let (atm, finished) = state.read_server_hello(reply.as_bytes(), now).unwrap();
    conn.finished(&finished).await.expect("the session opens");
    (atm, conn)
}

async fn ask(
    atm: &mut protocol::ClientSession,
    conn: &mut bank_server::testing::Connection,
    request: &Request,
    now: u64,
) -> Response {
    let sealed = atm.seal(request, &mut OsRng, now).unwrap();
    let reply = conn.record(&sealed).await.expect("an answer");
    atm.open(reply.sealed.as_bytes(), now).unwrap()
}

#[tokio::test]
async fn a_retry_in_a_new_session_gets_the_first_answer_and_a_replayed_record_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(AtomicU64::new(1_767_225_600_000));
    let mut config = common::config(dir.path());
    config.output = bank_server::Output::memory().0;
    config.clock = Clock::manual(clock.clone());
    let auth_file = config.auth_file.clone();
    let bank = tokio::task::spawn_blocking(move || bank_server::open(config))
        .await
        .unwrap()
        .unwrap();
    let auth =
        protocol::auth_file::AuthFile::parse(&std::fs::read_to_string(auth_file).unwrap()).unwrap();
    let now = clock.load(Ordering::SeqCst);
    let (mut atm, mut conn) = session(&bank, &auth, now).await;
    let register = common::register_req("carol", "password-1");
    assert!(matches!(
        ask(&mut atm, &mut conn, &register, now).await,
        Response::Welcome { .. }
    ));
    let deposit = Request::Deposit {
        txid: TxId::from_bytes([9; 16]),
        amount_cents: Cents(5_000),
    };
    let first = ask(&mut atm, &mut conn, &deposit, now).await;
    // The same record again is refused, and ends the session.
    let sealed = atm.seal(&Request::Balance {}, &mut OsRng, now).unwrap();
    conn.record(&sealed).await.expect("an answer");
    assert_eq!(
        conn.record(&sealed).await,
        Err(bank_server::testing::Closed {
            code: protocol::close::FAILURE
        })
    );
    clock.fetch_add(60_000, Ordering::SeqCst);
    let now = clock.load(Ordering::SeqCst);
    let (mut atm, mut conn) = session(&bank, &auth, now).await;
    let login = common::login_req("carol", "password-1");
    assert!(matches!(
        ask(&mut atm, &mut conn, &login, now).await,
        Response::Welcome { .. }
    ));
    assert_eq!(ask(&mut atm, &mut conn, &deposit, now).await, first);
    assert_eq!(
        ask(&mut atm, &mut conn, &Request::Balance {}, now).await,
        Response::Balance {
            balance_cents: Cents(5_000)
        }
    );
    assert!(bank.ledger().check_audit_links().unwrap().is_ok());
}

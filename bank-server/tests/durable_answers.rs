//! An embedded engine's writer (sled's, redb's) answers a deposit or withdrawal
//! (`apply_durably`) only once the flush that covers it has finished, checkpoint included, and
//! with that flush's outcome; a balance (`audited_balance`) waits for its commit only.

use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use bank_server::audit::AuditEvent;
use bank_server::ledger::{LedgerError, Movement};
use bank_server::Ledger;
use protocol::{AccountNumber, Cents, TxId, TxKind};

#[path = "common/sled_bank.rs"]
mod sled_bank;
use sled_bank::{card_account, redb_bank, sled_bank, NOW};

fn deposit(n: u8) -> Movement {
    Movement {
        kind: TxKind::Deposit,
        txid: TxId::from_bytes([n; 16]),
        amount: Cents(100),
        terminal: None,
    }
}

/// `ledger` with one card account holding 1.00.
fn bank<L: Ledger>(ledger: L) -> (Arc<L>, AccountNumber) {
    let account = card_account(
        &ledger,
        "dora",
        "Dora D",
        (TxId::from_bytes([0xEE; 16]), Cents(100)),
    );
    (Arc::new(ledger), account)
}

#[tokio::test]
async fn a_deposit_is_answered_after_the_flush_that_covers_it_and_a_balance_before() {
    let dir = tempfile::tempdir().unwrap();
    answered_after_the_flush(sled_bank(dir.path())).await;
}

#[tokio::test]
async fn on_redb_a_deposit_is_answered_after_the_flush_that_covers_it_and_a_balance_before() {
    let dir = tempfile::tempdir().unwrap();
    answered_after_the_flush(redb_bank(dir.path())).await;
}

async fn answered_after_the_flush<L: Ledger>(ledger: L) {
    let (ledger, account) = bank(ledger);
    // The checkpoint, the last step of every flush, holds the flush until the test lets go.
    let (entered, flush_began) = mpsc::channel::<()>();
    let (release, gate) = mpsc::channel::<()>();
    let (entered, gate) = (Mutex::new(entered), Mutex::new(gate));
    assert!(ledger.on_durable(Arc::new(move |_tip| {
        let _ = entered.lock().unwrap().send(());
        // Held until released (or the test is over).
        let _ = gate.lock().unwrap().recv();
        Ok(())
    })));
    let deposit = tokio::spawn(ledger.clone().apply_durably(
        account.clone(),
        deposit(1),
        NOW,
        AuditEvent::new("deposit", NOW),
    ));
    let began =
        tokio::task::spawn_blocking(move || flush_began.recv_timeout(Duration::from_secs(30)))
            .await
            .unwrap();
    assert!(
        began.is_ok(),
        "no flush began for a deposit (answered without one: {})",
        deposit.is_finished()
    );
    // The flush covering the deposit is running and held: the deposit is committed (a
    // balance, which waits for its commit only, sees it) but not answered.
    let balance = ledger
        .clone()
        .audited_balance(account.clone(), AuditEvent::new("balance", NOW))
        .await
        .unwrap();
    assert_eq!(balance, Cents(200));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !deposit.is_finished(),
        "answered before the flush covering it finished"
    );
    release.send(()).unwrap();
    let applied = deposit.await.unwrap().unwrap();
    assert_eq!(applied.entry.balance_cents, Cents(200));
    drop(release);
}

#[tokio::test]
async fn a_failed_flush_is_the_deposits_answer() {
    let dir = tempfile::tempdir().unwrap();
    failed_flush_answers(sled_bank(dir.path())).await;
}

#[tokio::test]
async fn on_redb_a_failed_flush_is_the_deposits_answer() {
    let dir = tempfile::tempdir().unwrap();
    failed_flush_answers(redb_bank(dir.path())).await;
}

async fn failed_flush_answers<L: Ledger>(ledger: L) {
    let (ledger, account) = bank(ledger);
    assert!(ledger.on_durable(Arc::new(|_tip| {
        Err(LedgerError::Storage("checkpoint disk gone".into()))
    })));
    let answer = ledger
        .clone()
        .apply_durably(account, deposit(3), NOW, AuditEvent::new("deposit", NOW))
        .await;
    assert_eq!(
        answer.unwrap_err(),
        LedgerError::Storage("checkpoint disk gone".into())
    );
}

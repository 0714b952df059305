//! The console's totals are kept in the sled store with each change, so opening reads them
//! instead of scanning every account and transaction; a store written before they were kept
//! is counted once and the count stored.

use std::path::Path;

use bank_server::audit::AuditEvent;
use bank_server::ledger::{Movement, Totals};
use bank_server::sled_ledger::SledLedger;
use bank_server::Ledger;
use protocol::{AccountNumber, Cents, TxId, TxKind, Username};

#[path = "common/sled_bank.rs"]
mod sled_bank;
use sled_bank::{card_account, sled_bank, NOW};
const DAY_MS: u64 = 86_400_000;

fn totals(ledger: &SledLedger) -> Totals {
    ledger.totals(NOW, NOW - NOW % DAY_MS, 60).unwrap()
}

fn txid(n: u64) -> TxId {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&n.to_be_bytes());
    TxId::from_bytes(bytes)
}

/// A bank with `accounts` card accounts and `movements` deposits and withdrawals spread over
/// the last few minutes.
fn populate(dir: &Path, accounts: u64, movements: u64) -> Totals {
    let ledger = sled_bank(dir);
    let numbers: Vec<AccountNumber> = (0..accounts)
        .map(|i| {
            let opening = (txid(1_000_000 + i), Cents(10_000));
            card_account(&ledger, &format!("user{i}"), "A Customer", opening)
        })
        .collect();
    for n in 0..movements {
        let kind = if n % 3 == 0 {
            TxKind::Withdraw
        } else {
            TxKind::Deposit
        };
        let movement = Movement {
            kind,
            txid: txid(n),
            amount: Cents(1 + n % 7),
            terminal: None,
        };
        let at = NOW - (n % 5) * 60_000;
        let audit = AuditEvent::new("deposit", at);
        let account = &numbers[usize::try_from(n % accounts).unwrap()];
        ledger.apply(account, movement, at, &audit).unwrap();
    }
    ledger.sync().unwrap();
    totals(&ledger)
}

/// Puts a record no engine could decode into the accounts and the transactions: a ledger that
/// scanned them when opening would fail.
fn poison_scans(dir: &Path) {
    let db = sled::open(dir).unwrap();
    for tree in ["accounts", "transactions"] {
        db.open_tree(tree)
            .unwrap()
            .insert("~not-a-record", "{ not json")
            .unwrap();
    }
    db.flush().unwrap();
}

fn unpoison(dir: &Path) {
    let db = sled::open(dir).unwrap();
    for tree in ["accounts", "transactions"] {
        db.open_tree(tree).unwrap().remove("~not-a-record").unwrap();
    }
    db.flush().unwrap();
}

#[test]
fn opening_reads_the_kept_totals_without_scanning() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let before = populate(&data, 20, 2_000);
    assert_eq!(before.accounts, 20);
    assert_eq!(before.transactions_today, 2_020);
    assert_eq!(before.per_minute[55..], [400, 400, 400, 400, 420]);

    poison_scans(&data);
    let ledger = SledLedger::open(&data).expect("opening reads no account or transaction");
    assert_eq!(
        totals(&ledger),
        before,
        "the totals are the same after a restart"
    );
    drop(ledger);

    // The same store without the record is refused by the scan: the check above is real.
    {
        let db = sled::open(&data).unwrap();
        db.open_tree("meta").unwrap().remove("totals").unwrap();
        db.flush().unwrap();
    }
    assert!(SledLedger::open(&data).is_err());
}

#[test]
fn a_store_without_kept_totals_is_counted_and_stored_with_the_first_change() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let before = populate(&data, 5, 300);
    // As written before totals were kept: no record, no minute counts.
    {
        let db = sled::open(&data).unwrap();
        db.open_tree("meta").unwrap().remove("totals").unwrap();
        db.drop_tree("tally_minutes").unwrap();
        db.flush().unwrap();
    }
    let ledger = SledLedger::open(&data).unwrap();
    assert_eq!(totals(&ledger), before, "counted the old way");
    ledger.sync().unwrap();
    drop(ledger);
    // Opening alone writes nothing (the auditor's tool, a refused start): the next open
    // still has to count.
    poison_scans(&data);
    assert!(SledLedger::open(&data).is_err(), "opening stored the count");
    unpoison(&data);
    // The first change stores the whole count with it, and keeps moving it.
    let ledger = SledLedger::open(&data).unwrap();
    let account = ledger
        .user(&Username::new("user0").unwrap())
        .unwrap()
        .unwrap()
        .account;
    let movement = Movement {
        kind: TxKind::Deposit,
        txid: txid(9_999_999),
        amount: Cents(5),
        terminal: None,
    };
    ledger
        .apply(&account, movement, NOW, &AuditEvent::new("deposit", NOW))
        .unwrap();
    let after = totals(&ledger);
    ledger.sync().unwrap();
    drop(ledger);
    // Counted once: from now on the kept totals are read, not recounted.
    poison_scans(&data);
    let ledger = SledLedger::open(&data).unwrap();
    assert_eq!(totals(&ledger), after);
    assert_eq!(after.deposits_cents, before.deposits_cents + 5);
    assert_eq!(after.transactions_today, before.transactions_today + 1);
}

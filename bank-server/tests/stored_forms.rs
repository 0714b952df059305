//! The sled engine stores what every transaction writes (an account, a history entry, its
//! transaction id) in compact binary, and still reads the JSON that older stores hold: a store
//! turned back into the older form serves the same balances, history and replays, and takes
//! new transactions beside the old records.

use std::path::Path;

use bank_server::audit::AuditEvent;
use bank_server::ledger::Movement;
use bank_server::sled_ledger::SledLedger;
use bank_server::Ledger;
use protocol::{AccountNumber, Cents, HistoryEntry, TxId, TxKind};

#[path = "common/sled_bank.rs"]
mod sled_bank;
use sled_bank::{card_account, sled_bank, NOW};

fn txid(n: u64) -> TxId {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&n.to_be_bytes());
    TxId::from_bytes(bytes)
}

fn deposit(n: u64, cents: u64) -> Movement {
    Movement {
        kind: TxKind::Deposit,
        txid: txid(n),
        amount: Cents(cents),
        terminal: None,
    }
}

/// A bank with one card account (opening 100.00) and three deposits of 1, 2 and 3 cents.
fn populate(dir: &Path) -> AccountNumber {
    let ledger = sled_bank(dir);
    let account = card_account(&ledger, "carol", "Carol C", (txid(100), Cents(10_000)));
    for n in 1..=3 {
        ledger
            .apply(
                &account,
                deposit(n, n),
                NOW + n,
                &AuditEvent::new("deposit", NOW),
            )
            .unwrap();
    }
    ledger.sync().unwrap();
    account
}

/// Every value of `tree`.
fn values(db: &sled::Db, tree: &str) -> Vec<(sled::IVec, sled::IVec)> {
    db.open_tree(tree)
        .unwrap()
        .iter()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn transactions_are_stored_compact() {
    let dir = tempfile::tempdir().unwrap();
    populate(dir.path());
    let db = sled::open(dir.path()).unwrap();
    let accounts = values(&db, "accounts");
    assert_eq!(accounts.len(), 1);
    // Tag, balance, count, "carol".
    assert_eq!(accounts[0].1.len(), 1 + 8 + 8 + 5);
    assert_eq!(accounts[0].1[0], 0x01);
    let history = values(&db, "transactions");
    assert_eq!(history.len(), 4);
    assert!(history.iter().all(|(_, v)| v.len() == 42 && v[0] == 0x01));
    let txids = values(&db, "txids");
    assert_eq!(txids.len(), 4);
    // A txid holds only where its entry is: the tag and the position.
    assert!(txids.iter().all(|(_, v)| v.len() == 9 && v[0] == 0x01));
}

#[test]
fn a_store_in_the_older_json_form_serves_alike_and_takes_new_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let account = populate(dir.path());
    let (balance, history) = {
        let ledger = SledLedger::open(dir.path()).unwrap();
        (
            ledger.balance(&account).unwrap(),
            ledger.history(&account, 10).unwrap(),
        )
    };
    assert_eq!(balance, Cents(10_006));
    assert_eq!(history.len(), 4);

    // Turn the store back into the older form: JSON accounts, entries, and txids holding the
    // entry itself.
    {
        let db = sled::open(dir.path()).unwrap();
        let accounts = db.open_tree("accounts").unwrap();
        for (key, _) in values(&db, "accounts") {
            let json = r#"{"username":"carol","balance":10006,"tx_count":4}"#;
            accounts.insert(key, json.as_bytes()).unwrap();
        }
        let txs = db.open_tree("transactions").unwrap();
        let txids = db.open_tree("txids").unwrap();
        let mut oldest_first: Vec<HistoryEntry> = history.clone();
        oldest_first.reverse();
        for ((key, _), entry) in values(&db, "transactions").into_iter().zip(&oldest_first) {
            txs.insert(key, serde_json::to_vec(entry).unwrap()).unwrap();
            let mut txid_key = account.as_str().as_bytes().to_vec();
            txid_key.push(b'#');
            txid_key.extend_from_slice(entry.txid.as_bytes());
            assert!(
                txids.get(&txid_key).unwrap().is_some(),
                "the txid key's form"
            );
            txids
                .insert(txid_key, serde_json::to_vec(entry).unwrap())
                .unwrap();
        }
        assert!(values(&db, "transactions")
            .iter()
            .all(|(_, v)| v[0] == b'{'));
        db.flush().unwrap();
    }

    let ledger = SledLedger::open(dir.path()).unwrap();
    assert_eq!(ledger.balance(&account).unwrap(), balance);
    assert_eq!(ledger.history(&account, 10).unwrap(), history);
    // A retry of an old transaction is answered from its old entry, and moves nothing.
    let replay = ledger
        .apply(
            &account,
            deposit(2, 2),
            NOW + 50,
            &AuditEvent::new("deposit", NOW),
        )
        .unwrap();
    assert!(replay.replay);
    assert_eq!(replay.entry, history[1]);
    assert_eq!(
        ledger.transaction(&account, &txid(2)).unwrap().as_ref(),
        Some(&history[1])
    );
    // The same txid with another amount is still refused.
    assert!(ledger
        .apply(
            &account,
            deposit(2, 99),
            NOW + 51,
            &AuditEvent::new("deposit", NOW)
        )
        .is_err());
    // A new transaction lands after the old ones, compact, and the history reads both forms.
    let new = ledger
        .apply(
            &account,
            deposit(4, 40),
            NOW + 60,
            &AuditEvent::new("deposit", NOW),
        )
        .unwrap();
    assert!(!new.replay);
    assert_eq!(new.entry.balance_cents, Cents(10_046));
    let after = ledger.history(&account, 10).unwrap();
    assert_eq!(after.len(), 5);
    assert_eq!(after[0], new.entry);
    assert_eq!(after[1..], history[..]);
    assert_eq!(
        ledger.transaction(&account, &txid(4)).unwrap(),
        Some(new.entry)
    );
    ledger.sync().unwrap();
    drop(ledger);
    let db = sled::open(dir.path()).unwrap();
    let forms: Vec<u8> = values(&db, "transactions")
        .iter()
        .map(|(_, v)| v[0])
        .collect();
    assert_eq!(forms, [b'{', b'{', b'{', b'{', 0x01]);
    assert_eq!(values(&db, "accounts")[0].1[0], 0x01, "rewritten compact");
}

#[test]
fn a_txid_pointing_at_no_entry_is_a_storage_error_not_a_new_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let account = populate(dir.path());
    {
        let db = sled::open(dir.path()).unwrap();
        let txs = db.open_tree("transactions").unwrap();
        let (last, _) = values(&db, "transactions").pop().unwrap();
        txs.remove(last).unwrap();
        db.flush().unwrap();
    }
    let ledger = SledLedger::open(dir.path()).unwrap();
    assert!(ledger.transaction(&account, &txid(3)).is_err());
    let retried = ledger.apply(
        &account,
        deposit(3, 3),
        NOW + 9,
        &AuditEvent::new("deposit", NOW),
    );
    assert!(
        matches!(retried, Err(bank_server::ledger::LedgerError::Storage(_))),
        "{retried:?}"
    );
}

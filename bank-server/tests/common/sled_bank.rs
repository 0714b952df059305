//! An embedded bank (sled or redb) made directly through the ledger contract, for the tests
//! of what an engine stores: an identity, then card accounts with an opening deposit.
#![allow(dead_code, unreachable_pub)]

use std::path::Path;

use bank_server::audit::{AuditEvent, AuditorSecret};
use bank_server::ledger::{BankIdentity, NewAccount};
use bank_server::redb_ledger::RedbLedger;
use bank_server::sled_ledger::SledLedger;
use bank_server::Ledger;
use protocol::{AccountNumber, Cents, FullName, TxId, Username};

/// The clock of these tests (2027-01-15).
pub const NOW: u64 = 1_800_000_000_000;

/// A new bank in `dir`: sled opened there and an identity (with a fresh auditor key) created.
pub fn sled_bank(dir: &Path) -> SledLedger {
    let ledger = SledLedger::open(dir).unwrap();
    create(&ledger);
    ledger
}

/// A new bank in `dir` on redb (a small page cache), its identity created.
pub fn redb_bank(dir: &Path) -> RedbLedger {
    let ledger = RedbLedger::open_with_cache(dir, 8 << 20).unwrap();
    create(&ledger);
    ledger
}

/// Creates the bank's identity (with a fresh auditor key) in `ledger`.
fn create(ledger: &dyn Ledger) {
    let identity = BankIdentity {
        id: "00112233445566778899aabbccddeeff".into(),
        created_ms: NOW,
        format: 1,
        bank_key: None,
        auditor_key: Some(AuditorSecret::random().public().to_hex()),
    };
    assert!(ledger.create_bank(&identity).unwrap());
}

/// Opens a card account for `username` with `opening` deposited under `txid`.
pub fn card_account(
    ledger: &dyn Ledger,
    username: &str,
    full_name: &str,
    (txid, opening): (TxId, Cents),
) -> AccountNumber {
    let new = NewAccount {
        username: Username::new(username).unwrap(),
        full_name: FullName::new(full_name).unwrap(),
        password_hash: None,
        card_sha256: Some("cd".repeat(32)),
        card_public: None,
        opening: Some((txid, opening)),
        terminal: None,
    };
    ledger
        .open_account(new, NOW, &AuditEvent::new("open_account", NOW))
        .unwrap()
        .account
}

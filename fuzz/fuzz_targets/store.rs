//! What the stored-data fuzz targets share: a real bank's store to damage (a user with a
//! deposit, terminals, an operator, the audit log), copying it, and every read the bank makes
//! of an opened store.
#![allow(dead_code)]

use std::path::Path;

use bank_server::audit::AuditEvent;
use bank_server::ledger::{Movement, NewAccount};
use protocol::{Cents, FullName, TxId, TxKind, Username};

use crate::bank;

/// Makes the bank opened from `config` hold a user with a deposit, a second terminal and an
/// operator, synced, then closes it.
pub fn populate(config: bank_server::Config) {
    let bank = bank_server::open(config).expect("the bank opens");
    let ledger = bank.ledger();
    let name = Username::new("alice").unwrap();
    let user = ledger
        .open_account(
            NewAccount {
                username: name.clone(),
                full_name: FullName::new("Alice").unwrap(),
                password_hash: Some(
                    "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA".into(),
                ),
                card_sha256: None,
                card_public: None,
                opening: None,
                terminal: None,
            },
            bank::START_MS,
            &AuditEvent::new("register", bank::START_MS),
        )
        .expect("an account");
    ledger
        .apply(
            &user.account,
            Movement {
                kind: TxKind::Deposit,
                txid: TxId::from_bytes([7; 16]),
                amount: Cents(12_345),
                terminal: None,
            },
            bank::START_MS,
            &AuditEvent::new("deposit", bank::START_MS),
        )
        .expect("a deposit");
    bank_server::admin::add_terminal(ledger, "second").expect("a terminal");
    bank_server::admin::add_operator(ledger, &bank::ARGON2, "operator", "operator-password")
        .expect("an operator");
    ledger.sync().expect("synced");
    drop(bank);
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("a directory");
    for entry in std::fs::read_dir(from).expect("a directory listing") {
        let entry = entry.expect("an entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("a type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("a copy");
        }
    }
}

/// Everything the bank reads of an opened store: a value or an error, never a panic.
pub fn read_all(bank: &bank_server::Bank) {
    let ledger = bank.ledger();
    let now = bank::START_MS;
    if let Ok(Some(user)) = ledger.user(&Username::new("alice").unwrap()) {
        let _ = ledger.balance(&user.account);
        let _ = ledger.history(&user.account, 100);
        let _ = ledger.transaction(&user.account, &TxId::from_bytes([7; 16]));
    }
    if let Ok(terminals) = ledger.terminals() {
        for t in terminals {
            let _ = ledger.deposited_today(&t.id, now);
            let _ = ledger.terminal(&t.id);
        }
    }
    let _ = ledger.operator(&Username::new("operator").unwrap());
    let _ = ledger.throttle("alice");
    let _ = ledger.totals(now, now - now % 86_400_000, 2);
    let _ = ledger.recent_audit(10);
    let _ = ledger.chain_position();
    let _ = ledger.audit_log();
    let _ = ledger.audit_epochs();
    let _ = ledger.check_audit_links();
    let _ = ledger.identity();
}

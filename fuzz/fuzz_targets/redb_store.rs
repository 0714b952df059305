//! Fuzz target: a damaged redb store read back at start. A real bank's store on redb (a user
//! with a deposit, terminals, an operator, the audit log) is made once; each input decodes
//! (`arbitrary`) into damage to a copy of its one file, `bank.redb` (bytes overwritten at an
//! offset, the file cut short), which the bank then opens (`bank_server::open`: redb's own
//! checks, the identity, the bank key, the checkpoint and audit chain checks, the totals).
//!
//! Asserts: the bank refuses the store or opens it, and no panic escapes it (redb's own, on a
//! damaged file, are caught by the bank and become a refusal or a storage error); the
//! undamaged copy opens; an opened store answers every read the bank makes of it with a value
//! or an error. (The records inside are decoded by the same code as sled's, which `stored_records`
//! fuzzes record by record.)
#![no_main]

mod bank;

use std::path::Path;
use std::sync::OnceLock;

use arbitrary::Arbitrary;
use bank_server::audit::AuditEvent;
use bank_server::ledger::{Movement, NewAccount};
use bank_server::store::Storage;
use libfuzzer_sys::fuzz_target;
use protocol::{Cents, FullName, TxId, TxKind, Username};

#[derive(Arbitrary, Debug)]
enum Damage {
    /// These bytes written at this offset (modulo the file's length).
    Overwrite { at: u32, bytes: Vec<u8> },
    /// The file cut to this length (modulo its length).
    Cut(u32),
}

/// `config` for `dir`, on redb.
fn config(dir: &Path) -> bank_server::Config {
    let (mut config, _) = bank::config(dir);
    config.storage = Storage::Redb {
        cache_bytes: 4 << 20,
    };
    config
}

/// The genuine store, made once: its directory (the data directory and the files beside it).
fn template() -> &'static tempfile::TempDir {
    static TEMPLATE: OnceLock<tempfile::TempDir> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let dir = bank::temp_dir();
        let bank = bank_server::open(config(dir.path())).expect("the bank opens");
        let ledger = bank.ledger();
        let user = ledger
            .open_account(
                NewAccount {
                    username: Username::new("alice").unwrap(),
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
        dir
    })
}

fn copy_dir(from: &Path, to: &Path) {
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

fn damage(file: &Path, damages: &[Damage]) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(file)
        .expect("the store file");
    for d in damages {
        let len = f.metadata().expect("its length").len().max(1);
        match d {
            Damage::Overwrite { at, bytes } => {
                f.write_all_at(bytes, u64::from(*at) % len).expect("a write");
            }
            Damage::Cut(to) => f.set_len(u64::from(*to) % len).expect("a cut"),
        }
    }
}

/// Everything the bank reads of an opened store: a value or an error, never a panic.
fn read_all(bank: &bank_server::Bank) {
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

fuzz_target!(|damages: Vec<Damage>| {
    if damages.len() > 4 {
        return;
    }
    // redb can panic on a damaged file; the bank catches that (at open, and around each read)
    // and refuses or fails the read with a storage error. libfuzzer's hook would abort on the
    // caught panic too: a silent hook instead, so only a panic that escapes the bank (out of
    // this closure) is a finding.
    static QUIET: std::sync::Once = std::sync::Once::new();
    QUIET.call_once(|| std::panic::set_hook(Box::new(|_| {})));
    let template = template();
    let dir = bank::temp_dir();
    copy_dir(template.path(), dir.path());
    damage(&dir.path().join("data").join("bank.redb"), &damages);
    match bank_server::open(config(dir.path())) {
        Ok(bank) => read_all(&bank),
        Err(e) => {
            assert!(!damages.is_empty(), "the genuine store is refused: {e}");
            assert!(!e.to_string().is_empty());
        }
    }
});

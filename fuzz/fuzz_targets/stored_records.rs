//! Fuzz target: a damaged store read back at start. A real bank's store (a user with a
//! deposit, terminals, an operator, the audit log) is made once; each input decodes
//! (`arbitrary`) into edits to its sled trees (a stored record replaced by fuzzer bytes, a bit
//! of it flipped, cut short, a key added or removed) made to a copy, which the bank then opens
//! (`bank_server::open`: the identity, the bank key, the checkpoint and audit chain checks, the
//! totals).
//!
//! Asserts: the bank refuses the store or opens it, never panics; the unedited copy opens; an
//! opened store answers every read the bank makes of it (users, balances, history, terminals,
//! operators, totals, the audit log and its links) with a value or an error, never a panic.
#![no_main]

mod bank;

use std::path::Path;
use std::sync::OnceLock;

use arbitrary::Arbitrary;
use bank_server::audit::AuditEvent;
use bank_server::ledger::{Movement, NewAccount};
use libfuzzer_sys::fuzz_target;
use protocol::{Cents, FullName, TxId, TxKind, Username};

const TREES: [&str; 13] = [
    "__sled__default",
    "users",
    "accounts",
    "transactions",
    "txids",
    "terminals",
    "audit",
    "meta",
    "throttle",
    "operators",
    "enrollments",
    "tally_minutes",
    "terminal_days",
];

#[derive(Arbitrary, Debug)]
enum Key {
    /// The n-th key the tree holds.
    Existing(u8),
    New(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
enum Change {
    /// The key's value becomes these bytes.
    Write(Vec<u8>),
    /// One bit of the stored value flips (a key that holds nothing is left alone).
    Flip {
        at: u16,
        bit: u8,
    },
    /// The stored value is cut to this length.
    Cut(u16),
    Remove,
}

#[derive(Arbitrary, Debug)]
struct Edit {
    tree: u8,
    key: Key,
    change: Change,
}

/// The genuine store, made once: its directory (the data directory and the files beside it).
fn template() -> &'static tempfile::TempDir {
    static TEMPLATE: OnceLock<tempfile::TempDir> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let dir = bank::temp_dir();
        let (config, _) = bank::config(dir.path());
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

fn edit(data: &Path, edits: &[Edit]) {
    let db = sled::open(data).expect("the copy opens in sled");
    for e in edits {
        let tree = db
            .open_tree(TREES[usize::from(e.tree) % TREES.len()])
            .expect("a tree");
        let key = match &e.key {
            Key::New(bytes) => bytes.clone(),
            Key::Existing(n) => {
                let count = tree.len();
                if count == 0 {
                    continue;
                }
                match tree.iter().keys().nth(usize::from(*n) % count) {
                    Some(Ok(k)) => k.to_vec(),
                    _ => continue,
                }
            }
        };
        let stored = tree.get(&key).expect("a read").map(|v| v.to_vec());
        let value = match (&e.change, stored) {
            (Change::Write(bytes), _) => Some(bytes.clone()),
            (Change::Flip { at, bit }, Some(mut v)) if !v.is_empty() => {
                let at = usize::from(*at) % v.len();
                v[at] ^= 1 << (bit % 8);
                Some(v)
            }
            (Change::Cut(len), Some(mut v)) => {
                v.truncate(usize::from(*len) % (v.len() + 1));
                Some(v)
            }
            (Change::Remove, _) => None,
            (_, _) => continue,
        };
        match value {
            Some(value) => tree.insert(key, value).map(drop),
            None => tree.remove(key).map(drop),
        }
        .expect("an edit");
    }
    db.flush().expect("flushed");
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

fuzz_target!(|edits: Vec<Edit>| {
    if edits.len() > 4 {
        return;
    }
    let template = template();
    let dir = bank::temp_dir();
    copy_dir(template.path(), dir.path());
    edit(&dir.path().join("data"), &edits);
    let (config, _) = bank::config(dir.path());
    match bank_server::open(config) {
        Ok(bank) => read_all(&bank),
        Err(e) => {
            assert!(!edits.is_empty(), "the genuine store is refused: {e}");
            assert!(!e.to_string().is_empty());
        }
    }
});

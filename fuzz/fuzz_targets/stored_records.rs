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
mod store;

use std::path::Path;
use std::sync::OnceLock;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

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
        store::populate(bank::config(dir.path()).0);
        dir
    })
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

fuzz_target!(|edits: Vec<Edit>| {
    if edits.len() > 4 {
        return;
    }
    let template = template();
    let dir = bank::temp_dir();
    store::copy_dir(template.path(), dir.path());
    edit(&dir.path().join("data"), &edits);
    let (config, _) = bank::config(dir.path());
    match bank_server::open(config) {
        Ok(bank) => store::read_all(&bank),
        Err(e) => {
            assert!(!edits.is_empty(), "the genuine store is refused: {e}");
            assert!(!e.to_string().is_empty());
        }
    }
});

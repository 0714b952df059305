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
mod store;

use std::path::Path;
use std::sync::OnceLock;

use arbitrary::Arbitrary;
use bank_server::store::Storage;
use libfuzzer_sys::fuzz_target;

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
        store::populate(config(dir.path()));
        dir
    })
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
                f.write_all_at(bytes, u64::from(*at) % len)
                    .expect("a write");
            }
            Damage::Cut(to) => f.set_len(u64::from(*to) % len).expect("a cut"),
        }
    }
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
    store::copy_dir(template.path(), dir.path());
    damage(&dir.path().join("data").join("bank.redb"), &damages);
    match bank_server::open(config(dir.path())) {
        Ok(bank) => store::read_all(&bank),
        Err(e) => {
            assert!(!damages.is_empty(), "the genuine store is refused: {e}");
            assert!(!e.to_string().is_empty());
        }
    }
});

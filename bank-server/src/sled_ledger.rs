//! The sled engine under the bank's store (`kv_ledger`): the tables as sled trees, a batch
//! as one sled transaction over them, and a flush that ends in a real `fdatasync` of sled's
//! log. The default engine: one bank node, its page cache bounded.

use std::cell::{Cell, RefCell};
use std::path::Path;

use sled::transaction::{
    ConflictableTransactionError, TransactionError, TransactionalTree, UnabortableTransactionError,
};
use sled::{Db, Tree};

use crate::kv::{Kv, KvTx, Pair, Pairs, Table};
use crate::kv_ledger::KvLedger;
use crate::ledger::{IoFailure, LedgerError};
use crate::records::storage;

/// The bank's ledger on sled.
pub type SledLedger = KvLedger<SledKv>;

/// sled's page cache unless configured (sled's own default is 1 GiB).
pub const DEFAULT_CACHE_BYTES: u64 = 64 * 1024 * 1024;

/// The file in a sled 0.34 directory that holds its log (every committed write).
const SLED_LOG_FILE: &str = "db";

/// The tables a batch writes, in [`Table::ALL`]'s order. Not the throttle: a tree in sled's
/// transaction and written beside it could make the batch conflict.
fn batch_tables() -> impl Iterator<Item = Table> {
    Table::ALL.into_iter().filter(|t| t.in_batches())
}

/// A sled failure while doing `during`: an I/O error stays one (typed, so the bank can tell a
/// failing disk from a refusal).
fn sled_failure(during: &str, e: sled::Error) -> LedgerError {
    match e {
        sled::Error::Io(io) => LedgerError::Io(IoFailure::new(during, io)),
        other => storage(other),
    }
}

/// sled's trees, one per table, and its log file.
pub struct SledKv {
    db: Db,
    /// In [`Table::ALL`]'s order.
    trees: Vec<Tree>,
    /// sled's log file, for the `fdatasync` its own flush does not make.
    log: std::fs::File,
}

impl SledKv {
    /// The tree that holds `table`.
    pub(crate) fn tree(&self, table: Table) -> &Tree {
        &self.trees[table.index()]
    }
}

/// One batch inside sled's transaction over the trees of `batch_tables`.
struct SledTx<'a> {
    views: &'a [TransactionalTree],
    /// sled reported a conflict: the batch is run again rather than failed.
    conflicted: &'a Cell<bool>,
}

impl SledTx<'_> {
    fn view(&self, table: Table) -> Result<&TransactionalTree, LedgerError> {
        batch_tables()
            .position(|t| t == table)
            .map(|i| &self.views[i])
            .ok_or_else(|| {
                LedgerError::Storage(format!("{} is not written in a batch", table.name()))
            })
    }

    fn failed(&self, e: UnabortableTransactionError) -> LedgerError {
        match e {
            UnabortableTransactionError::Conflict => {
                self.conflicted.set(true);
                LedgerError::Storage("sled transaction conflict".into())
            }
            UnabortableTransactionError::Storage(e) => sled_failure("commit", e),
        }
    }
}

impl KvTx for SledTx<'_> {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, LedgerError> {
        let found = self.view(table)?.get(key).map_err(|e| self.failed(e))?;
        Ok(found.map(|v| v.to_vec()))
    }

    fn insert(&self, table: Table, key: &[u8], value: &[u8]) -> Result<(), LedgerError> {
        self.view(table)?
            .insert(key, value)
            .map_err(|e| self.failed(e))?;
        Ok(())
    }

    fn remove(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, LedgerError> {
        let removed = self.view(table)?.remove(key).map_err(|e| self.failed(e))?;
        Ok(removed.map(|v| v.to_vec()))
    }
}

fn pair(item: sled::Result<(sled::IVec, sled::IVec)>) -> Result<Pair, LedgerError> {
    let (key, value) = item.map_err(storage)?;
    Ok((key.to_vec(), value.to_vec()))
}

impl Kv for SledKv {
    fn transaction(
        &self,
        batch: &mut dyn FnMut(&dyn KvTx) -> Result<(), LedgerError>,
    ) -> Result<(), LedgerError> {
        use sled::Transactional;
        // More trees than sled's tuple impls take (nine), so a slice, in `batch_tables` order.
        let trees: Vec<&Tree> = batch_tables().map(|t| self.tree(t)).collect();
        let batch = RefCell::new(batch);
        let result = trees[..].transaction(|views: &Vec<TransactionalTree>| {
            let conflicted = Cell::new(false);
            let tx = SledTx {
                views,
                conflicted: &conflicted,
            };
            let outcome = (batch.borrow_mut())(&tx);
            match outcome {
                Ok(()) => Ok(()),
                // sled runs the whole batch again.
                Err(_) if conflicted.get() => Err(ConflictableTransactionError::Conflict),
                Err(e) => Err(ConflictableTransactionError::Abort(e)),
            }
        });
        match result {
            Ok(()) => Ok(()),
            // Nothing of the batch committed: every change in it fails alike.
            Err(TransactionError::Abort(e)) => Err(e),
            Err(TransactionError::Storage(e)) => Err(sled_failure("commit", e)),
        }
    }

    /// sled 0.34's flush ends in `sync_file_range`, which starts and waits for the page writes
    /// but flushes neither the drive's cache nor the file's metadata (its own `fsync` runs
    /// only every 500 ms in the background), so an `fdatasync` of the log follows;
    /// `fdatasync` acts on the file, whichever descriptor names it.
    fn flush(&self) -> Result<(), LedgerError> {
        self.db.flush().map_err(|e| sled_failure("flush", e))?;
        self.log
            .sync_data()
            .map_err(|e| LedgerError::Io(IoFailure::new("fdatasync of sled's log", e)))
    }

    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, LedgerError> {
        let found = self.tree(table).get(key).map_err(storage)?;
        Ok(found.map(|v| v.to_vec()))
    }

    fn scan(&self, table: Table, prefix: &[u8], reverse: bool) -> Pairs<'_> {
        let pairs = self.tree(table).scan_prefix(prefix);
        if reverse {
            Box::new(pairs.rev().map(pair))
        } else {
            Box::new(pairs.map(pair))
        }
    }

    fn put_outside(
        &self,
        table: Table,
        key: &[u8],
        value: Option<&[u8]>,
    ) -> Result<(), LedgerError> {
        let tree = self.tree(table);
        match value {
            Some(value) => tree.insert(key, value).map(drop),
            None => tree.remove(key).map(drop),
        }
        .map_err(|e| sled_failure("commit", e))
    }
}

impl KvLedger<SledKv> {
    /// Whether `dir` holds a sled database at all (its `conf` and log files), without opening
    /// it: opening creates one.
    pub fn exists_in(dir: &Path) -> bool {
        dir.join("conf").is_file() && dir.join(SLED_LOG_FILE).is_file()
    }

    /// Opens (or creates) the database in `dir` with the default page cache.
    pub fn open(dir: &Path) -> Result<Self, LedgerError> {
        Self::open_with_cache(dir, DEFAULT_CACHE_BYTES)
    }

    /// Opens (or creates) the database in `dir`, its page cache bounded to `cache_bytes`.
    pub fn open_with_cache(dir: &Path, cache_bytes: u64) -> Result<Self, LedgerError> {
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(cache_bytes)
            .open()
            .map_err(|e| {
                let detail = e.to_string();
                if detail.contains("lock") {
                    LedgerError::InUse(format!(
                        "{} is in use by another process (is the bank running? stop it first)",
                        dir.display()
                    ))
                } else {
                    sled_failure(&format!("opening {}", dir.display()), e)
                }
            })?;
        let log = std::fs::File::open(dir.join(SLED_LOG_FILE))
            .map_err(|e| storage(format!("{}: {e}", dir.join(SLED_LOG_FILE).display())))?;
        let trees = Table::ALL
            .iter()
            .map(|t| db.open_tree(t.name()).map_err(storage))
            .collect::<Result<Vec<_>, _>>()?;
        KvLedger::over(SledKv { db, trees, log }, "sled")
    }
}

#[cfg(test)]
mod tests {
    use protocol::{TerminalId, TerminalRole};

    use super::*;
    use crate::ledger::{DepositCeilings, Ledger, TerminalRecord};
    use crate::records::{decode, to_stored, StoredCeilings, StoredTerminal};

    /// A terminal as stored before ceilings existed (and before consoles).
    const OLD_TERMINAL: &str = r#"{"name":"lobby","psk":"abababababababababababababababababababababababababababababababab","revoked":false,"created_ms":5}"#;

    #[test]
    fn terminals_stored_before_ceilings_read_as_without_and_are_written_as_before() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = SledLedger::open(dir.path()).unwrap();
        ledger
            .kv()
            .tree(Table::Terminals)
            .insert("t-old", OLD_TERMINAL)
            .unwrap();
        let id = TerminalId::new("t-old").unwrap();
        let old = ledger.terminal(&id).unwrap().unwrap();
        assert_eq!(old.ceilings, DepositCeilings::NONE);
        assert_eq!((old.role, old.created_ms), (TerminalRole::Atm, 5));
        // Without ceilings the stored form is what an older bank reads and writes.
        let again: serde_json::Value = serde_json::from_slice(&to_stored(&old, None)).unwrap();
        assert_eq!(again.get("max_deposit"), None);
        assert_eq!(again.get("max_deposit_per_day"), None);
        let limited = TerminalRecord {
            ceilings: DepositCeilings::DEFAULT,
            ..old
        };
        let stored: serde_json::Value = serde_json::from_slice(&to_stored(&limited, None)).unwrap();
        assert_eq!(stored["max_deposit"], 200_000);
        assert_eq!(stored["max_deposit_per_day"], 1_000_000);
        let decoded: StoredTerminal = decode(&to_stored(&limited, None)).unwrap();
        assert_eq!(decoded.ceilings(), DepositCeilings::DEFAULT);
        let read: StoredCeilings = decode(&to_stored(&limited, None)).unwrap();
        assert_eq!(DepositCeilings::from(read), DepositCeilings::DEFAULT);
        let old: StoredCeilings = decode(OLD_TERMINAL.as_bytes()).unwrap();
        assert_eq!(DepositCeilings::from(old), DepositCeilings::NONE);
    }
}

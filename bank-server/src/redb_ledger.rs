//! The redb engine under the bank's store (`kv_ledger`): the tables as redb tables in one
//! file, `bank.redb`, in the data directory; a batch as one write transaction, committed
//! durably (redb `fdatasync`s the file before `commit` returns); a page cache that bounds
//! its memory however much the store holds.

use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use redb::{ReadableDatabase, ReadableTable, TableDefinition};

use crate::kv::{prefix_end, Kv, KvTx, Pair, Pairs, Table};
use crate::kv_ledger::KvLedger;
use crate::ledger::{IoFailure, LedgerError};
use crate::records::storage;

/// The bank's ledger on redb.
pub type RedbLedger = KvLedger<RedbKv>;

/// The file in the data directory that holds the store.
pub const REDB_FILE: &str = "bank.redb";

type Def = TableDefinition<'static, &'static [u8], &'static [u8]>;
/// A table open in a write transaction.
type WriteTable<'txn> = redb::Table<'txn, &'static [u8], &'static [u8]>;
/// A table open in a read transaction.
type ReadTable = redb::ReadOnlyTable<&'static [u8], &'static [u8]>;

fn def(table: Table) -> Def {
    TableDefinition::new(table.name())
}

/// A redb failure while doing `during`: an I/O error stays one (typed, so the bank can tell a
/// failing disk from a refusal); a database another process holds is in use.
fn redb_failure(during: &str, e: impl Into<redb::Error>) -> LedgerError {
    match e.into() {
        redb::Error::Io(io) => LedgerError::Io(IoFailure::new(during, io)),
        redb::Error::DatabaseAlreadyOpen => LedgerError::InUse(format!(
            "{during}: the store is in use by another process (is the bank running? stop it first)"
        )),
        other => storage(format!("{during}: {other}")),
    }
}

/// Runs a read of redb's: redb 4.6 can panic on a damaged file (an index out of a page's
/// bounds), which is then the store's damage, not a crash of whoever read.
fn guarded<T>(read: impl FnOnce() -> Result<T, LedgerError>) -> Result<T, LedgerError> {
    catch_unwind(AssertUnwindSafe(read)).unwrap_or_else(|_| {
        Err(LedgerError::Storage(
            "the store is damaged (redb failed reading it)".into(),
        ))
    })
}

/// The store's redb database.
pub struct RedbKv {
    db: redb::Database,
}

/// One batch inside a redb write transaction: every table but the throttle, open.
struct RedbTx<'txn> {
    /// In [`Table::ALL`]'s order, `None` for a table batches do not write.
    tables: RefCell<Vec<Option<WriteTable<'txn>>>>,
}

impl RedbTx<'_> {
    fn with<T>(
        &self,
        table: Table,
        f: impl FnOnce(&mut WriteTable<'_>) -> Result<T, redb::StorageError>,
    ) -> Result<T, LedgerError> {
        let mut tables = self.tables.borrow_mut();
        let open = tables[table.index()].as_mut().ok_or_else(|| {
            LedgerError::Storage(format!("{} is not written in a batch", table.name()))
        })?;
        f(open).map_err(|e| redb_failure("commit", e))
    }
}

impl KvTx for RedbTx<'_> {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, LedgerError> {
        self.with(table, |t| Ok(t.get(key)?.map(|v| v.value().to_vec())))
    }

    fn insert(&self, table: Table, key: &[u8], value: &[u8]) -> Result<(), LedgerError> {
        self.with(table, |t| t.insert(key, value).map(drop))
    }

    fn remove(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, LedgerError> {
        self.with(table, |t| Ok(t.remove(key)?.map(|v| v.value().to_vec())))
    }
}

impl RedbKv {
    /// `table` in a new read transaction, or `None` when no commit has created it yet (a
    /// table is made by the first batch that opens it; opening the store writes nothing).
    fn read(&self, table: Table) -> Result<Option<ReadTable>, LedgerError> {
        let txn = self
            .db
            .begin_read()
            .map_err(|e| redb_failure("reading", e))?;
        match txn.open_table(def(table)) {
            Ok(t) => Ok(Some(t)),
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
            Err(e) => Err(redb_failure("reading", e)),
        }
    }
}

impl Kv for RedbKv {
    fn transaction(
        &self,
        batch: &mut dyn FnMut(&dyn KvTx) -> Result<(), LedgerError>,
    ) -> Result<(), LedgerError> {
        let txn = self
            .db
            .begin_write()
            .map_err(|e| redb_failure("commit", e))?;
        let outcome = {
            let tables = Table::ALL
                .iter()
                .map(|t| match t.in_batches() {
                    true => txn.open_table(def(*t)).map(Some),
                    false => Ok(None),
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| redb_failure("commit", e))?;
            let tx = RedbTx {
                tables: RefCell::new(tables),
            };
            batch(&tx)
        };
        match outcome {
            // Durable when `commit` returns: redb syncs the file first.
            Ok(()) => txn.commit().map_err(|e| redb_failure("commit", e)),
            // Nothing of the batch is stored: every change in it fails alike.
            Err(e) => {
                txn.abort().map_err(|abort| redb_failure("abort", abort))?;
                Err(e)
            }
        }
    }

    /// Every commit is durable when it returns (see [`Kv::transaction`] above): nothing to
    /// sync here.
    fn flush(&self) -> Result<(), LedgerError> {
        Ok(())
    }

    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, LedgerError> {
        guarded(|| {
            let Some(t) = self.read(table)? else {
                return Ok(None);
            };
            let found = t.get(key).map_err(|e| redb_failure("reading", e))?;
            Ok(found.map(|v| v.value().to_vec()))
        })
    }

    fn scan(&self, table: Table, prefix: &[u8], reverse: bool) -> Pairs<'_> {
        let t = match guarded(|| self.read(table)) {
            Ok(Some(t)) => t,
            Ok(None) => return Box::new(std::iter::empty()),
            Err(e) => return Box::new(std::iter::once(Err(e))),
        };
        let range = guarded(|| {
            match prefix_end(prefix) {
                Some(end) => t.range::<&[u8]>(prefix..end.as_slice()),
                None => t.range::<&[u8]>(prefix..),
            }
            .map_err(|e| redb_failure("reading", e))
        });
        let range = match range {
            Ok(range) => range,
            Err(e) => return Box::new(std::iter::once(Err(e))),
        };
        // Each step read under `guarded`; a damaged page ends the scan with its error.
        let mut range = if reverse {
            Box::new(range.rev()) as Box<dyn Iterator<Item = _>>
        } else {
            Box::new(range)
        };
        let mut failed = false;
        let pair = |item: Result<_, redb::StorageError>| -> Result<Pair, LedgerError> {
            let (key, value): (redb::AccessGuard<'_, &[u8]>, redb::AccessGuard<'_, &[u8]>) =
                item.map_err(|e| redb_failure("reading", e))?;
            Ok((key.value().to_vec(), value.value().to_vec()))
        };
        Box::new(std::iter::from_fn(move || {
            if failed {
                return None;
            }
            let next = guarded(|| range.next().map(pair).transpose());
            failed = next.is_err();
            next.transpose()
        }))
    }

    fn put_outside(
        &self,
        table: Table,
        key: &[u8],
        value: Option<&[u8]>,
    ) -> Result<(), LedgerError> {
        let txn = self
            .db
            .begin_write()
            .map_err(|e| redb_failure("commit", e))?;
        {
            let mut t = txn
                .open_table(def(table))
                .map_err(|e| redb_failure("commit", e))?;
            match value {
                Some(value) => t.insert(key, value).map(drop),
                None => t.remove(key).map(drop),
            }
            .map_err(|e| redb_failure("commit", e))?;
        }
        txn.commit().map_err(|e| redb_failure("commit", e))
    }
}

impl KvLedger<RedbKv> {
    /// Whether `dir` holds a redb store, without opening it: opening creates one.
    pub fn exists_in(dir: &Path) -> bool {
        dir.join(REDB_FILE).is_file()
    }

    /// Opens (or creates) the store in `dir`, its page cache bounded to `cache_bytes`. After
    /// an unclean stop redb repairs the file first (its allocator state), which takes time in
    /// proportion to what it holds.
    pub fn open_with_cache(dir: &Path, cache_bytes: u64) -> Result<Self, LedgerError> {
        let during = format!("opening {}", dir.join(REDB_FILE).display());
        std::fs::create_dir_all(dir).map_err(|e| LedgerError::Io(IoFailure::new(&during, e)))?;
        let db = redb::Builder::new()
            .set_cache_size(usize::try_from(cache_bytes).unwrap_or(usize::MAX))
            .set_repair_callback(|session: &mut redb::RepairSession| {
                tracing::warn!(
                    progress = session.progress(),
                    "repairing the store after an unclean stop"
                );
            })
            .create(dir.join(REDB_FILE))
            .map_err(|e| redb_failure(&during, e))?;
        KvLedger::over(RedbKv { db }, "redb")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_inside_a_read_is_the_stores_damage_not_the_readers() {
        let read: Result<u8, LedgerError> = guarded(|| panic!("range end index out of range"));
        assert!(
            matches!(&read, Err(LedgerError::Storage(detail)) if detail.contains("damaged")),
            "{read:?}"
        );
        assert_eq!(guarded(|| Ok(7)).unwrap(), 7);
    }
}

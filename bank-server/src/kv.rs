//! What an embedded engine must provide for the bank's store (`kv_ledger`): ordered tables of
//! byte keys and values, one atomic write transaction per batch, reads outside it, and a flush
//! after which everything committed is on the disk. sled and redb implement it; the bank's
//! rules and record forms live above it and are the same on both.

use crate::ledger::LedgerError;

/// The store's tables. Their names are the sled tree names every existing store has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Table {
    Users,
    Accounts,
    /// Each account's history: `account '/' seq (u64 BE)` -> entry.
    Txs,
    /// `account '#' txid` -> where its history entry is.
    Txids,
    Terminals,
    /// The audit log: `seq (u64 BE)` -> sealed entry.
    Audit,
    /// The identity, the audit chain's head and epochs, the console's totals.
    Meta,
    /// Failed-login counters, written outside the batches.
    Throttle,
    Operators,
    /// Pending enrollment codes, by code id.
    Enrollments,
    /// Transactions per minute: `minute (u64 BE)` -> count (u32 BE), the last day only.
    Minutes,
    /// What each terminal under a per-day ceiling deposited on its latest day.
    TerminalDays,
}

impl Table {
    /// Every table, in a fixed order (an engine may keep its handles in this order).
    pub const ALL: [Table; 12] = [
        Table::Users,
        Table::Accounts,
        Table::Txs,
        Table::Txids,
        Table::Terminals,
        Table::Audit,
        Table::Meta,
        Table::Throttle,
        Table::Operators,
        Table::Enrollments,
        Table::Minutes,
        Table::TerminalDays,
    ];

    /// The table's name in the engine.
    pub const fn name(self) -> &'static str {
        match self {
            Table::Users => "users",
            Table::Accounts => "accounts",
            Table::Txs => "transactions",
            Table::Txids => "txids",
            Table::Terminals => "terminals",
            Table::Audit => "audit",
            Table::Meta => "meta",
            Table::Throttle => "throttle",
            Table::Operators => "operators",
            Table::Enrollments => "enrollments",
            Table::Minutes => "tally_minutes",
            Table::TerminalDays => "terminal_days",
        }
    }

    /// Its place in [`Table::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }

    /// Whether batches write it: every table but the throttle, whose counters are written
    /// outside them ([`Kv::put_outside`]).
    pub fn in_batches(self) -> bool {
        self != Table::Throttle
    }
}

/// A key and its value, read from a table.
pub type Pair = (Vec<u8>, Vec<u8>);

/// Pairs of a table in key order (or reversed), read lazily.
pub type Pairs<'a> = Box<dyn Iterator<Item = Result<Pair, LedgerError>> + 'a>;

/// One batch's reads and writes, inside the engine's write transaction: what it writes is
/// committed together or not at all. The throttle is not written here (see
/// [`Kv::put_outside`]).
pub trait KvTx {
    /// The value of `key` in `table`, as this transaction sees it.
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, LedgerError>;
    /// Sets `key` to `value` in `table`.
    fn insert(&self, table: Table, key: &[u8], value: &[u8]) -> Result<(), LedgerError>;
    /// Removes `key` from `table`, returning what it held.
    fn remove(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, LedgerError>;
}

/// An embedded engine holding the bank's tables.
pub trait Kv: Send + Sync + 'static {
    /// Runs `batch` in one write transaction and commits it if it returns `Ok`; nothing of it
    /// is stored if it returns `Err`. Only the ledger's writer thread calls this, so batches
    /// never run concurrently. Durable only after [`Kv::flush`] (or at once, if the engine
    /// commits durably).
    fn transaction(
        &self,
        batch: &mut dyn FnMut(&dyn KvTx) -> Result<(), LedgerError>,
    ) -> Result<(), LedgerError>;
    /// Makes everything committed so far durable: returns once a real sync covers it.
    fn flush(&self) -> Result<(), LedgerError>;
    /// The committed value of `key` in `table`.
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, LedgerError>;
    /// The committed pairs of `table` whose key starts with `prefix`, in key order, or in
    /// reverse when `reverse`.
    fn scan(&self, table: Table, prefix: &[u8], reverse: bool) -> Pairs<'_>;
    /// Sets (`Some`) or removes (`None`) `key` in `table` outside the batches (the throttle's
    /// counters), durable by the next [`Kv::flush`] at the latest.
    fn put_outside(
        &self,
        table: Table,
        key: &[u8],
        value: Option<&[u8]>,
    ) -> Result<(), LedgerError>;
}

/// The first key after every key that starts with `prefix` (`None`: there is none, the
/// prefix is all `0xFF` or empty).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_in_their_index_order_with_distinct_names() {
        for (i, table) in Table::ALL.iter().enumerate() {
            assert_eq!(table.index(), i);
        }
        let outside: Vec<_> = Table::ALL.into_iter().filter(|t| !t.in_batches()).collect();
        assert_eq!(outside, [Table::Throttle]);
        let mut names: Vec<_> = Table::ALL.iter().map(|t| t.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Table::ALL.len());
    }

    #[test]
    fn the_prefix_end_is_the_first_key_past_the_prefix() {
        assert_eq!(prefix_end(b"ab/"), Some(b"ab0".to_vec()));
        assert_eq!(prefix_end(&[1, 0xFF]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xFF, 0xFF]), None);
        assert_eq!(prefix_end(b""), None);
    }
}

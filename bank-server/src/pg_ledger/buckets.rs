//! The openings buckets on PostgreSQL: one row per terminal in `opening_buckets`, read and
//! replaced in one SERIALIZABLE transaction, so the nodes sharing the database share each
//! terminal's bucket (the bucket's arithmetic is the bank's, `openings.rs`).

use std::cell::RefCell;

use protocol::TerminalId;

use super::{failure, retrying, to_i64, to_u64, Fail, PgLedger, Tx};
use crate::ledger::{LedgerError, OpeningBucket};

impl PgLedger {
    /// [`crate::Ledger::update_opening`]: not under the writer lock (it moves no audit chain);
    /// two nodes updating one terminal's bucket at once conflict, and the loser runs again on
    /// the winner's bucket. A terminal's row is never deleted: there are as many as terminals
    /// that opened an account.
    pub(super) fn update_opening_bucket(
        &self,
        terminal: &TerminalId,
        update: &mut dyn FnMut(OpeningBucket) -> OpeningBucket,
    ) -> Result<OpeningBucket, LedgerError> {
        let update = RefCell::new(update);
        let id = terminal.as_str();
        let mut client = self.client()?;
        // Moves no audit chain (the empty name: none is appended to).
        let no_chain: std::sync::Arc<str> = std::sync::Arc::from("");
        let result = retrying(&mut client, &no_chain, || None, &|tx: &Tx<'_>| {
            let before = match tx.one(
                "SELECT full_at_ms, refusing FROM opening_buckets WHERE terminal = $1",
                &[&id],
            )? {
                Some(row) => OpeningBucket {
                    full_at_ms: to_u64(row.get(0))?,
                    refusing: row.get(1),
                },
                None => OpeningBucket::default(),
            };
            let after = {
                let mut update = update.borrow_mut();
                (*update)(before)
            };
            if after != before {
                tx.run(
                    "INSERT INTO opening_buckets (terminal, full_at_ms, refusing) \
                     VALUES ($1, $2, $3) ON CONFLICT (terminal) DO UPDATE \
                     SET full_at_ms = EXCLUDED.full_at_ms, refusing = EXCLUDED.refusing",
                    &[&id, &to_i64(after.full_at_ms)?, &after.refusing],
                )?;
            }
            Ok(after)
        });
        match result {
            Ok((after, _)) => Ok(after),
            Err(Fail::Ledger(e)) => Err(e),
            Err(Fail::Db(e)) => Err(LedgerError::Database(failure(
                "updating an openings bucket",
                e,
            ))),
        }
    }
}

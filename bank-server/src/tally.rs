//! Running totals for the console (accounts, money held, transactions per minute over the
//! last day): held in memory, moved by each committed change, and stored with it (what the
//! store must write is computed here), so neither an overview nor a restart scans the ledger.

use std::collections::BTreeMap;

use crate::ledger::Totals;

const MINUTE_MS: u64 = 60_000;
/// Minutes kept: a day, enough for "today" and the last hour.
const KEPT_MINUTES: u64 = 24 * 60;

/// What one change adds to the totals (collected inside a transaction attempt, applied once it
/// commits).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Delta {
    /// Accounts opened.
    pub(crate) accounts: u64,
    /// Cents that came in (openings, deposits).
    pub(crate) cents_in: u128,
    /// Cents that went out (withdrawals).
    pub(crate) cents_out: u128,
    /// Commit times (Unix ms) of the transactions recorded.
    pub(crate) transactions: Vec<u64>,
}

impl Delta {
    /// Adds another change's movements (a batch of changes moves the totals once).
    pub(crate) fn add(&mut self, other: Delta) {
        self.accounts += other.accounts;
        self.cents_in += other.cents_in;
        self.cents_out += other.cents_out;
        self.transactions.extend(other.transactions);
    }
}

/// What the stored totals become after a change, written in the same commit as the change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Stored {
    /// How many accounts exist.
    pub(crate) accounts: u64,
    /// The sum of every balance, in cents.
    pub(crate) cents: u128,
    /// The minutes whose count changed, with their new count.
    pub(crate) minutes: Vec<(u64, u32)>,
    /// The minutes now older than a day, to delete.
    pub(crate) dropped: Vec<u64>,
}

/// The running totals.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Tally {
    accounts: u64,
    cents: u128,
    /// Transactions per minute (`time_ms / 60000`), for the last [`KEPT_MINUTES`].
    minutes: BTreeMap<u64, u32>,
    /// The newest minute seen (older ones are dropped past a day).
    newest: u64,
}

impl Tally {
    /// Counts an existing account's balance.
    pub(crate) fn count_account(&mut self, balance_cents: u64) {
        self.accounts += 1;
        self.cents += u128::from(balance_cents);
    }

    /// Counts a transaction committed at `time_ms`.
    pub(crate) fn count_transaction(&mut self, time_ms: u64) {
        let minute = time_ms / MINUTE_MS;
        self.newest = self.newest.max(minute);
        if minute + KEPT_MINUTES < self.newest {
            return;
        }
        let slot = self.minutes.entry(minute).or_default();
        *slot = slot.saturating_add(1);
        let oldest = self.newest.saturating_sub(KEPT_MINUTES);
        while self
            .minutes
            .first_key_value()
            .is_some_and(|(m, _)| *m < oldest)
        {
            self.minutes.pop_first();
        }
    }

    /// Totals as stored: `accounts`, `cents` and per-minute counts.
    pub(crate) fn restore(
        accounts: u64,
        cents: u128,
        minutes: impl IntoIterator<Item = (u64, u32)>,
    ) -> Self {
        let mut tally = Self {
            accounts,
            cents,
            ..Self::default()
        };
        for (minute, count) in minutes {
            tally.newest = tally.newest.max(minute);
            tally.minutes.insert(minute, count);
        }
        let oldest = tally.newest.saturating_sub(KEPT_MINUTES);
        tally.minutes.retain(|m, _| *m >= oldest);
        tally
    }

    /// The whole of the totals in their stored form (to write them first, after a count).
    pub(crate) fn stored(&self) -> Stored {
        Stored {
            accounts: self.accounts,
            cents: self.cents,
            minutes: self.minutes.iter().map(|(m, c)| (*m, *c)).collect(),
            dropped: Vec::new(),
        }
    }

    /// What the stored totals become once `delta` is applied (as [`Self::apply`] would), without
    /// applying it: only the minutes it touches or drops, so it costs nothing like a copy.
    pub(crate) fn stored_after(&self, delta: &Delta) -> Stored {
        let newest = delta
            .transactions
            .iter()
            .map(|t| t / MINUTE_MS)
            .fold(self.newest, u64::max);
        let oldest = newest.saturating_sub(KEPT_MINUTES);
        let mut touched = BTreeMap::<u64, u32>::new();
        for minute in delta.transactions.iter().map(|t| t / MINUTE_MS) {
            if minute < oldest {
                continue;
            }
            let slot = touched
                .entry(minute)
                .or_insert_with(|| self.minutes.get(&minute).copied().unwrap_or(0));
            *slot = slot.saturating_add(1);
        }
        Stored {
            accounts: self.accounts + delta.accounts,
            cents: (self.cents + delta.cents_in).saturating_sub(delta.cents_out),
            minutes: touched.into_iter().collect(),
            dropped: self.minutes.range(..oldest).map(|(m, _)| *m).collect(),
        }
    }

    /// Applies a committed change.
    pub(crate) fn apply(&mut self, delta: &Delta) {
        self.accounts += delta.accounts;
        // Balances never go below zero, so the sum never does either.
        self.cents = (self.cents + delta.cents_in).saturating_sub(delta.cents_out);
        for &time in &delta.transactions {
            self.count_transaction(time);
        }
    }

    /// The totals at `now_ms`: transactions since `day_start_ms` and per minute over the
    /// `minutes` minutes ending with the one holding `now_ms` (oldest first).
    pub(crate) fn totals(&self, now_ms: u64, day_start_ms: u64, minutes: usize) -> Totals {
        let this_minute = now_ms / MINUTE_MS;
        let first_today = day_start_ms.div_ceil(MINUTE_MS);
        let mut per_minute = vec![0u32; minutes];
        let mut today = 0u64;
        for (&minute, &count) in &self.minutes {
            if minute >= first_today && minute <= this_minute {
                today += u64::from(count);
            }
            let ago = this_minute
                .checked_sub(minute)
                .and_then(|a| usize::try_from(a).ok());
            if let Some(ago) = ago.filter(|a| *a < minutes) {
                per_minute[minutes - 1 - ago] = count;
            }
        }
        Totals {
            accounts: self.accounts,
            deposits_cents: self.cents,
            transactions_today: today,
            per_minute,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_follow_accounts_movements_and_minutes() {
        let base = 1_700_000_000_000 / DAY * DAY;
        let mut tally = Tally::default();
        tally.count_account(1_000);
        tally.count_transaction(base - MINUTE_MS); // yesterday
        tally.apply(&Delta {
            accounts: 1,
            cents_in: 500,
            cents_out: 200,
            transactions: vec![base + 5, base + MINUTE_MS * 3, base + MINUTE_MS * 3 + 1],
        });
        let now = base + MINUTE_MS * 3 + 10;
        let totals = tally.totals(now, base, 5);
        assert_eq!(totals.accounts, 2);
        assert_eq!(totals.deposits_cents, 1_300);
        assert_eq!(totals.transactions_today, 3);
        assert_eq!(totals.per_minute, vec![1, 1, 0, 0, 2]);
        // Older than a day is forgotten.
        tally.count_transaction(now + DAY);
        assert_eq!(tally.totals(now + DAY, base + DAY, 5).transactions_today, 1);
        assert!(tally.minutes.len() <= 2);
    }

    #[test]
    fn what_is_stored_after_each_change_restores_the_same_totals() {
        let base = 1_700_000_000_000 / DAY * DAY;
        let mut tally = Tally::default();
        // The store: the record and the minute keys, as an engine keeps them.
        let mut record = (0u64, 0u128);
        let mut minutes = BTreeMap::<u64, u32>::new();
        let steps = [
            (1, 1_000, 0, vec![base]),
            (0, 0, 300, vec![base + 5, base + MINUTE_MS]),
            (0, 7, 0, vec![base + MINUTE_MS * 2; 3]),
            // A day later: the early minutes go.
            (2, 50, 0, vec![base + DAY + MINUTE_MS]),
            (0, 0, 0, vec![base + DAY + MINUTE_MS * 2, base + 10]),
        ];
        for (accounts, cents_in, cents_out, transactions) in steps {
            let delta = Delta {
                accounts,
                cents_in,
                cents_out,
                transactions,
            };
            let stored = tally.stored_after(&delta);
            record = (stored.accounts, stored.cents);
            minutes.extend(stored.minutes);
            for minute in stored.dropped {
                minutes.remove(&minute);
            }
            tally.apply(&delta);
            let restored = Tally::restore(record.0, record.1, minutes.clone());
            assert_eq!(restored.totals(base + DAY, base + DAY, 1_500), {
                tally.totals(base + DAY, base + DAY, 1_500)
            });
            assert_eq!(restored.minutes, tally.minutes);
            assert_eq!(tally.stored().minutes.len(), minutes.len());
        }
        assert_eq!(record, (3, 757));
        assert!(!minutes.contains_key(&(base / MINUTE_MS)));
    }

    const DAY: u64 = 86_400_000;
}

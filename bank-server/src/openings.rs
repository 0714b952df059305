//! The openings throttle: a token bucket per terminal on the requests that create an account
//! (`register`, `open_card_account`), its arithmetic, and where the buckets are kept.
//!
//! A terminal may open `burst` accounts at once, then one every `60 s / per_minute`. The
//! bucket is kept as the time at which it would next be full (GCRA, integer milliseconds on
//! the bank's injectable clock), so a terminal costs one number. The bank decides here
//! ([`OpeningRate::step`]); an engine that several nodes share stores each terminal's bucket
//! and updates it atomically ([`Ledger::update_opening`]: one bucket for the whole bank),
//! and with one that does not (sled, one node) the buckets live in this process's memory and
//! a restart forgets them.

use std::collections::HashMap;
use std::sync::Mutex;

use protocol::TerminalId;

use crate::ledger::{Ledger, LedgerError, OpeningBucket};

/// How fast one terminal may open accounts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpeningRate {
    /// Accounts per minute, sustained (at least 1).
    pub per_minute: u32,
    /// Accounts at once from a full bucket (at least 1).
    pub burst: u32,
}

impl OpeningRate {
    /// 10 a minute, 20 at once. A person opening an account at an ATM types a name and a
    /// password (or waits for a card): well under one a minute per terminal, and a queue at a
    /// branch opening is covered by the burst. A stolen terminal key gets at most 10 accounts
    /// a minute instead of as many as it can send, and a registration flood keeps at most 10
    /// Argon2 hashes a minute per terminal busy instead of the whole pool.
    pub const DEFAULT: Self = Self {
        per_minute: 10,
        burst: 20,
    };

    /// Milliseconds between two tokens (rounded up: never faster than asked).
    fn interval_ms(self) -> u64 {
        60_000u64.div_ceil(u64::from(self.per_minute.max(1)))
    }

    /// How far ahead of now a bucket may be booked and still grant one more.
    fn tolerance_ms(self) -> u64 {
        self.interval_ms()
            .saturating_mul(u64::from(self.burst.max(1) - 1))
    }

    /// Takes a token from `bucket` at `now_ms`: the bucket after, and the answer. The one
    /// place the bucket's arithmetic lives, whoever stores the bucket.
    pub(crate) fn step(self, bucket: OpeningBucket, now_ms: u64) -> (OpeningBucket, Take) {
        let booked = bucket.full_at_ms.max(now_ms);
        if booked - now_ms > self.tolerance_ms() {
            let first = !bucket.refusing;
            let refused = OpeningBucket {
                refusing: true,
                ..bucket
            };
            return (refused, Take::Refused { first });
        }
        let granted = OpeningBucket {
            full_at_ms: booked.saturating_add(self.interval_ms()),
            refusing: false,
        };
        (granted, Take::Granted)
    }
}

/// The answer to [`Openings::take`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Take {
    /// Go ahead.
    Granted,
    /// Refused; `first` for the first refusal since the terminal was last granted one (the
    /// one worth auditing: a flood is audited once, not once per request).
    Refused {
        /// The first refusal of this run.
        first: bool,
    },
}

/// Past this many terminals, buckets that have filled up again are forgotten.
const PRUNE_ABOVE: usize = 1_024;

/// Every terminal's bucket kept in memory, for an engine that keeps none (`None` rate: no
/// throttle, as the BIBIFI bank).
#[derive(Debug, Default)]
pub(crate) struct Openings {
    rate: Option<OpeningRate>,
    buckets: Mutex<HashMap<TerminalId, OpeningBucket>>,
}

impl Openings {
    pub(crate) fn new(rate: Option<OpeningRate>) -> Self {
        Self {
            rate,
            buckets: Mutex::default(),
        }
    }

    /// The rate, if any.
    pub(crate) fn rate(&self) -> Option<OpeningRate> {
        self.rate
    }

    /// Takes a token from `terminal`'s bucket at `now_ms`: from the bucket `ledger` stores
    /// when it keeps them (blocking: it may ask a database server), else from memory.
    pub(crate) fn take_from(
        &self,
        ledger: &dyn Ledger,
        terminal: &TerminalId,
        now_ms: u64,
    ) -> Result<Take, LedgerError> {
        let Some(rate) = self.rate else {
            return Ok(Take::Granted);
        };
        let mut answer = Take::Granted;
        let stored = ledger.update_opening(terminal, &mut |bucket| {
            let (after, take) = rate.step(bucket, now_ms);
            answer = take;
            after
        })?;
        Ok(match stored {
            Some(_) => answer,
            None => self.take(terminal, now_ms),
        })
    }

    /// Takes a token from `terminal`'s bucket in memory at `now_ms`.
    pub(crate) fn take(&self, terminal: &TerminalId, now_ms: u64) -> Take {
        let Some(rate) = self.rate else {
            return Take::Granted;
        };
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() > PRUNE_ABOVE {
            buckets.retain(|_, bucket| bucket.full_at_ms > now_ms);
        }
        let bucket = buckets.entry(terminal.clone()).or_default();
        let (after, take) = rate.step(*bucket, now_ms);
        *bucket = after;
        take
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000_000;

    fn granted(openings: &Openings, terminal: &TerminalId, at: u64, count: u32) {
        for i in 0..count {
            assert_eq!(openings.take(terminal, at), Take::Granted, "take {i}");
        }
    }

    #[test]
    fn a_burst_then_one_per_interval_per_terminal() {
        let openings = Openings::new(Some(OpeningRate::DEFAULT));
        let lobby = TerminalId::new("t-lobby").unwrap();
        let kiosk = TerminalId::new("t-kiosk").unwrap();
        granted(&openings, &lobby, NOW, 20);
        assert_eq!(openings.take(&lobby, NOW), Take::Refused { first: true });
        assert_eq!(
            openings.take(&lobby, NOW + 5_999),
            Take::Refused { first: false }
        );
        // Another terminal has its own bucket.
        granted(&openings, &kiosk, NOW, 20);
        // One token every 6 s.
        granted(&openings, &lobby, NOW + 6_000, 1);
        assert_eq!(
            openings.take(&lobby, NOW + 6_000),
            Take::Refused { first: true }
        );
        // Two minutes later the bucket is full again: a whole burst, and no more.
        granted(&openings, &lobby, NOW + 6_000 + 120_000, 20);
        assert!(matches!(
            openings.take(&lobby, NOW + 6_000 + 120_000),
            Take::Refused { .. }
        ));
    }

    #[test]
    fn no_rate_no_throttle_and_odd_rates_round_towards_slower() {
        let free = Openings::new(None);
        let t = TerminalId::new("t-1").unwrap();
        granted(&free, &t, NOW, 1_000);
        let rate = OpeningRate {
            per_minute: 7,
            burst: 1,
        };
        assert_eq!(rate.interval_ms(), 8_572);
        let slow = Openings::new(Some(rate));
        granted(&slow, &t, NOW, 1);
        assert!(matches!(slow.take(&t, NOW + 8_571), Take::Refused { .. }));
        granted(&slow, &t, NOW + 8_572, 1);
    }

    #[test]
    fn many_terminals_are_pruned_once_full_again() {
        let openings = Openings::new(Some(OpeningRate::DEFAULT));
        for i in 0..=PRUNE_ABOVE {
            let t = TerminalId::new(format!("t-{i}")).unwrap();
            granted(&openings, &t, NOW, 1);
        }
        let later = NOW + 60_000;
        granted(&openings, &TerminalId::new("t-new").unwrap(), later, 1);
        assert_eq!(openings.buckets.lock().unwrap().len(), 1);
    }
}

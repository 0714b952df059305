//! Login attempts in flight, per throttle key (an account, a terminal): never more than the
//! back-off still allows, so guesses sent in parallel cannot outrun it, while right
//! credentials sent in parallel all get through (only failures are counted).
//!
//! An attempt is admitted when none of its keys is locked and each has room: the attempts
//! already in flight on a key, all of which may fail, must stay below the failures that key
//! still allows before its next wait. Admission and settling (recording the outcome and
//! leaving) take the same lock, so the count read and the count written cannot interleave.
//! The stored state is the ledger's; the in-flight counts are this process's (several bank
//! nodes on one database each admit their own).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

use crate::ledger::{Ledger, LedgerError, ThrottleState};
use crate::throttle::Backoff;

/// One throttle key and the policy that governs it.
#[derive(Clone, Debug)]
pub(crate) struct Key {
    pub(crate) name: String,
    pub(crate) policy: Backoff,
    /// The audit action recorded when this key's failures start a wait.
    pub(crate) lock_action: &'static str,
}

/// What an attempt's credential check found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The right credential: the first key's (the account's) count is reset.
    Success,
    /// A wrong credential: every key is charged one failure.
    Failure,
}

/// Whether an attempt may go ahead now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Admission {
    /// It is in flight; settle it with [`InFlight::settle`] (or drop the [`Ticket`]).
    Admitted,
    /// A key is locked: refuse it (`throttled`).
    Locked,
    /// Every allowed attempt is in flight already: wait for one to settle.
    Full,
}

/// The attempts in flight, by key, and a signal for those waiting for room.
#[derive(Default)]
pub(crate) struct InFlight {
    counts: Mutex<HashMap<String, u32>>,
    settled: Notify,
}

impl InFlight {
    fn counts(&self) -> MutexGuard<'_, HashMap<String, u32>> {
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Signalled whenever an attempt leaves.
    pub(crate) fn settled(&self) -> &Notify {
        &self.settled
    }

    /// Admits an attempt on every key of `keys`, or none (blocking: reads the ledger).
    pub(crate) fn enter(
        &self,
        ledger: &dyn Ledger,
        keys: &[Key],
        now_ms: u64,
    ) -> Result<Admission, LedgerError> {
        let mut counts = self.counts();
        for key in keys {
            let state = ledger.throttle(&key.name)?;
            if key.policy.locked(&state, now_ms) {
                return Ok(Admission::Locked);
            }
            let in_flight = counts.get(&key.name).copied().unwrap_or(0);
            if in_flight >= key.policy.attempts_left(&state, now_ms) {
                return Ok(Admission::Full);
            }
        }
        for key in keys {
            *counts.entry(key.name.clone()).or_default() += 1;
        }
        Ok(Admission::Admitted)
    }

    /// Records an admitted attempt's outcome and lets it leave (blocking: writes the ledger).
    /// Returns each key's state after a failure (for the audit of a new lock), none after a
    /// success. The attempt leaves even when the ledger fails.
    pub(crate) fn settle(
        &self,
        ledger: &dyn Ledger,
        keys: &[Key],
        outcome: Outcome,
        now_ms: u64,
    ) -> Result<Vec<ThrottleState>, LedgerError> {
        let mut counts = self.counts();
        let recorded = record(ledger, keys, outcome, now_ms);
        leave(&mut counts, keys);
        drop(counts);
        self.settled.notify_waiters();
        recorded
    }

    /// Lets an admitted attempt leave without an outcome (its check never ran).
    pub(crate) fn abandon(&self, keys: &[Key]) {
        leave(&mut self.counts(), keys);
        self.settled.notify_waiters();
    }
}

fn record(
    ledger: &dyn Ledger,
    keys: &[Key],
    outcome: Outcome,
    now_ms: u64,
) -> Result<Vec<ThrottleState>, LedgerError> {
    match outcome {
        Outcome::Success => {
            if let Some(account) = keys.first() {
                ledger.update_throttle(&account.name, &mut |_| ThrottleState::default())?;
            }
            Ok(Vec::new())
        }
        Outcome::Failure => keys
            .iter()
            .map(|key| {
                let before =
                    ledger.update_throttle(&key.name, &mut |s| key.policy.fail(s, now_ms))?;
                Ok(key.policy.fail(before, now_ms))
            })
            .collect(),
    }
}

fn leave(counts: &mut HashMap<String, u32>, keys: &[Key]) {
    for key in keys {
        if let Some(count) = counts.get_mut(&key.name) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(&key.name);
            }
        }
    }
}

/// An admitted attempt: leaves on drop unless settled, so a cancelled or failed check never
/// holds a slot.
pub(crate) struct Ticket {
    in_flight: Arc<InFlight>,
    keys: Vec<Key>,
    settled: bool,
}

impl Ticket {
    pub(crate) fn new(in_flight: Arc<InFlight>, keys: Vec<Key>) -> Self {
        Self {
            in_flight,
            keys,
            settled: false,
        }
    }

    /// The keys, and the promise that settling is now the caller's job.
    pub(crate) fn into_settle(mut self) -> (Arc<InFlight>, Vec<Key>) {
        self.settled = true;
        (self.in_flight.clone(), std::mem::take(&mut self.keys))
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if !self.settled {
            self.in_flight.abandon(&self.keys);
        }
    }
}

//! The failed-login back-off policy: how many free failures, then exponentially longer waits up
//! to a cap that holds for as long as the guessing goes on.

use crate::ledger::ThrottleState;

const MINUTE_MS: u64 = 60_000;
const HOUR_MS: u64 = 60 * MINUTE_MS;

/// Back-off settings for one kind of key (an account or a terminal).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// Failures allowed before any wait.
    pub free_failures: u32,
    /// The first wait, in ms; each further failure doubles it.
    pub base_ms: u64,
    /// The longest wait, in ms.
    pub max_ms: u64,
    /// Failures are forgotten only after this long (ms) without one. It must be much longer
    /// than `max_ms`: a guesser who waits out one maximum wait must find the count where it
    /// was, or the free failures and the whole ramp come back with every lock.
    pub forget_after_ms: u64,
}

impl Backoff {
    /// Per account: 5 free failures, then 1 s doubling up to 15 minutes; forgotten after a day
    /// without a failure. Sustained guessing gets one guess per 15 minutes.
    pub const ACCOUNT: Self = Self {
        free_failures: 5,
        base_ms: 1_000,
        max_ms: 15 * MINUTE_MS,
        forget_after_ms: 24 * HOUR_MS,
    };

    /// Per terminal: 30 free failures (a terminal serves many people, whose typing mistakes
    /// add up), then the same curve; forgotten after an hour without a failure.
    pub const TERMINAL: Self = Self {
        free_failures: 30,
        base_ms: 1_000,
        max_ms: 15 * MINUTE_MS,
        forget_after_ms: HOUR_MS,
    };

    /// `true` while `state` forbids an attempt at `now_ms`.
    pub fn locked(&self, state: &ThrottleState, now_ms: u64) -> bool {
        now_ms < state.locked_until_ms
    }

    /// `state` as it stands at `now_ms`: forgotten after a long enough quiet period.
    fn current(&self, state: ThrottleState, now_ms: u64) -> ThrottleState {
        if now_ms.saturating_sub(state.last_failure_ms) > self.forget_after_ms
            && !self.locked(&state, now_ms)
        {
            ThrottleState::default()
        } else {
            state
        }
    }

    /// How many attempts may be in flight at once at `now_ms`: every one of them could fail,
    /// so no more than the failures still allowed before the next wait (at least one, once a
    /// wait is over). 0 while locked.
    pub fn attempts_left(&self, state: &ThrottleState, now_ms: u64) -> u32 {
        if self.locked(state, now_ms) {
            return 0;
        }
        let failures = self.current(*state, now_ms).failures;
        (self.free_failures + 1).saturating_sub(failures).max(1)
    }

    /// The state after one more failure at `now_ms`.
    pub fn fail(&self, state: ThrottleState, now_ms: u64) -> ThrottleState {
        let state = self.current(state, now_ms);
        let failures = state.failures.saturating_add(1);
        let over = failures.saturating_sub(self.free_failures);
        if over == 0 {
            return ThrottleState {
                failures,
                last_failure_ms: now_ms,
                locked_until_ms: 0,
                locks: state.locks,
            };
        }
        let wait = self
            .base_ms
            .saturating_mul(1u64 << (over - 1).min(30))
            .min(self.max_ms);
        ThrottleState {
            failures,
            last_failure_ms: now_ms,
            locked_until_ms: now_ms.saturating_add(wait),
            locks: state.locks.saturating_add(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_start_after_the_free_failures_and_double() {
        let policy = Backoff::ACCOUNT;
        let mut state = ThrottleState::default();
        for left in (2..=6).rev() {
            assert_eq!(policy.attempts_left(&state, 10_000), left);
            state = policy.fail(state, 10_000);
            assert!(!policy.locked(&state, 10_000));
        }
        assert_eq!(policy.attempts_left(&state, 10_000), 1);
        state = policy.fail(state, 10_000);
        assert_eq!(state.locks, 1);
        assert!(policy.locked(&state, 10_999));
        assert_eq!(policy.attempts_left(&state, 10_999), 0);
        assert!(!policy.locked(&state, 11_000));
        assert_eq!(policy.attempts_left(&state, 11_000), 1);
        state = policy.fail(state, 11_000);
        assert_eq!(state.locked_until_ms, 13_000);
        for _ in 0..100 {
            state = policy.fail(state, 20_000);
        }
        assert_eq!(state.locked_until_ms, 20_000 + 15 * MINUTE_MS);
    }

    /// A guesser who waits out each maximum wait gets one guess per wait, for as long as the
    /// guessing goes on: the count is not forgotten between the locks.
    #[test]
    fn the_cap_holds_for_a_patient_guesser() {
        let policy = Backoff::ACCOUNT;
        let mut now = 1_000_000;
        let mut state = ThrottleState::default();
        while state.locked_until_ms.saturating_sub(now) < policy.max_ms {
            now = now.max(state.locked_until_ms);
            state = policy.fail(state, now);
        }
        let locks_at_cap = state.locks;
        // A whole day of guessing, each guess 1 ms after the lock ends.
        let mut guesses = 0;
        let day_end = now + 24 * HOUR_MS;
        while state.locked_until_ms < day_end {
            now = state.locked_until_ms + 1;
            assert_eq!(policy.attempts_left(&state, now), 1, "one guess at a time");
            state = policy.fail(state, now);
            guesses += 1;
            assert_eq!(
                state.locked_until_ms,
                now + policy.max_ms,
                "still at the cap"
            );
        }
        // The day starts inside a wait; each later wait is 15 minutes and the 1 ms of delay.
        assert_eq!(guesses, 95, "one guess per 15 minutes");
        assert_eq!(state.locks, locks_at_cap + 95);
    }

    #[test]
    fn the_policies_are_the_documented_ones() {
        // README: accounts 5 free, 1 s doubling to 15 min, forgotten after a day; terminals
        // 30 free, the same curve, forgotten after an hour.
        assert_eq!(
            Backoff::ACCOUNT,
            Backoff {
                free_failures: 5,
                base_ms: 1_000,
                max_ms: 900_000,
                forget_after_ms: 86_400_000,
            }
        );
        assert_eq!(
            Backoff::TERMINAL,
            Backoff {
                free_failures: 30,
                base_ms: 1_000,
                max_ms: 900_000,
                forget_after_ms: 3_600_000,
            }
        );
    }

    #[test]
    fn failures_are_forgotten_after_a_quiet_day_only() {
        let policy = Backoff::ACCOUNT;
        let mut state = ThrottleState::default();
        for _ in 0..7 {
            state = policy.fail(state, 0);
        }
        let after_cap = state.locked_until_ms + policy.max_ms + 1;
        assert_eq!(policy.attempts_left(&state, after_cap), 1);
        assert_eq!(policy.fail(state, after_cap).failures, 8);
        let next_day = 24 * HOUR_MS + 1;
        assert_eq!(policy.attempts_left(&state, next_day), 6);
        let fresh = policy.fail(state, next_day);
        assert_eq!((fresh.failures, fresh.locks), (1, 0));
    }
}

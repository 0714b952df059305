//! The failed-login back-off policy: how many free failures, then exponentially longer waits.

use crate::ledger::ThrottleState;

/// Back-off settings for one kind of key (an account or a terminal).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// Failures allowed before any wait.
    pub free_failures: u32,
    /// The first wait, in ms; each further failure doubles it.
    pub base_ms: u64,
    /// The longest wait, in ms.
    pub max_ms: u64,
    /// Failures older than this (ms since the last one) are forgotten.
    pub forget_after_ms: u64,
}

impl Backoff {
    /// Per account: 5 free failures, then 1 s doubling up to 15 minutes.
    pub const ACCOUNT: Self = Self {
        free_failures: 5,
        base_ms: 1_000,
        max_ms: 15 * 60_000,
        forget_after_ms: 15 * 60_000,
    };

    /// Per terminal: 30 free failures (a terminal serves many people), then the same curve.
    pub const TERMINAL: Self = Self {
        free_failures: 30,
        base_ms: 1_000,
        max_ms: 15 * 60_000,
        forget_after_ms: 15 * 60_000,
    };

    /// `true` while `state` forbids an attempt at `now_ms`.
    pub fn locked(&self, state: &ThrottleState, now_ms: u64) -> bool {
        now_ms < state.locked_until_ms
    }

    /// The state after one more failure at `now_ms`.
    pub fn fail(&self, state: ThrottleState, now_ms: u64) -> ThrottleState {
        let stale = now_ms.saturating_sub(state.last_failure_ms) > self.forget_after_ms;
        let failures = if stale {
            1
        } else {
            state.failures.saturating_add(1)
        };
        let over = failures.saturating_sub(self.free_failures);
        let locked_until_ms = if over == 0 {
            0
        } else {
            let wait = self
                .base_ms
                .saturating_mul(1u64 << (over - 1).min(30))
                .min(self.max_ms);
            now_ms.saturating_add(wait)
        };
        ThrottleState {
            failures,
            last_failure_ms: now_ms,
            locked_until_ms,
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
        for _ in 0..5 {
            state = policy.fail(state, 10_000);
            assert!(!policy.locked(&state, 10_000));
        }
        state = policy.fail(state, 10_000);
        assert!(policy.locked(&state, 10_999));
        assert!(!policy.locked(&state, 11_000));
        state = policy.fail(state, 11_000);
        assert_eq!(state.locked_until_ms, 13_000);
        for _ in 0..100 {
            state = policy.fail(state, 20_000);
        }
        assert_eq!(state.locked_until_ms, 20_000 + 15 * 60_000);
        // Forgotten after a quiet period.
        let later = policy.fail(state, 20_000 + 16 * 60_000);
        assert_eq!(later.failures, 1);
    }
}

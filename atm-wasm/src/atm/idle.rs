//! Idle logout: how long a logged-in person may leave the ATM untouched, and the warning before.

/// After this long without a key press, click or touch, the session is logged out.
pub const IDLE_LIMIT_MS: u64 = 3 * 60 * 1000;

/// The warning shows this long before the logout.
pub const WARN_BEFORE_MS: u64 = 30 * 1000;

/// Where an idle session stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Idle {
    /// Recently used.
    Active,
    /// About to be logged out in this many whole seconds (rounded up).
    Warn(u64),
    /// Time is up: log out.
    Expired,
}

/// The state of a session last used at `last_ms`, at `now_ms`, with a limit of `limit_ms`.
/// A clock that went backwards counts as activity.
pub fn check(last_ms: u64, now_ms: u64, limit_ms: u64) -> Idle {
    let idle = now_ms.saturating_sub(last_ms);
    if idle >= limit_ms {
        Idle::Expired
    } else if idle + WARN_BEFORE_MS >= limit_ms {
        Idle::Warn((limit_ms - idle).div_ceil(1000))
    } else {
        Idle::Active
    }
}

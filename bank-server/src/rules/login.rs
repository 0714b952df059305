//! Logins of customers and operators alike: the throttle keys a login is counted under, its
//! admission (see [`crate::attempts`]), and the settling of a success or a failure.

use std::sync::Arc;

use protocol::{ErrorCode, Response, TerminalId, Username};

use crate::attempts::{self, Admission, Outcome, Ticket};
use crate::audit::AuditEvent;
use crate::ledger::{Ledger, LedgerError};
use crate::Shared;

use super::ctx::{durable, ledger, refusal, refuse, SessionCtx};

/// The throttle key of a customer's account.
pub(super) fn user_key(username: &Username) -> String {
    format!("user:{username}")
}

/// The throttle key of an operator.
pub(super) fn operator_key(username: &Username) -> String {
    format!("operator:{username}")
}

fn terminal_key(terminal: &TerminalId) -> String {
    format!("terminal:{terminal}")
}

/// The throttle keys of a login on this session: the account's (first) and the terminal's.
fn login_keys(shared: &Shared, ctx: &SessionCtx, account_key: String) -> Vec<attempts::Key> {
    vec![
        attempts::Key {
            name: account_key,
            policy: shared.config.account_backoff,
            lock_action: "account_locked",
        },
        attempts::Key {
            name: terminal_key(&ctx.terminal),
            policy: shared.config.terminal_backoff,
            lock_action: "terminal_locked",
        },
    ]
}

/// Admits a login attempt on `account_key` from this session's terminal (see
/// [`crate::attempts`]), waiting up to `hash_wait` for room, then runs `lookup`. `Err` carries
/// the reply: `throttled` while a key is locked, `busy` when no room came in time, or a
/// storage failure.
pub(super) async fn begin_login<T: Send + 'static>(
    shared: &Arc<Shared>,
    ctx: &SessionCtx,
    account_key: String,
    lookup: impl FnOnce(&dyn Ledger) -> Result<T, LedgerError> + Send + 'static,
) -> Result<(Ticket, T), Response> {
    let keys = login_keys(shared, ctx, account_key);
    let deadline = tokio::time::Instant::now() + shared.config.hash_wait;
    loop {
        // Listening before the check: an attempt that settles during it still wakes us.
        let settled = shared.attempts.settled().notified();
        tokio::pin!(settled);
        settled.as_mut().enable();
        let (in_flight, entering, now) = (
            shared.attempts.clone(),
            keys.clone(),
            shared.config.clock.now_ms(),
        );
        match ledger(shared, move |l| in_flight.enter(l, &entering, now)).await {
            Ok(Admission::Admitted) => break,
            Ok(Admission::Locked) => return Err(refuse(ErrorCode::Throttled)),
            Ok(Admission::Full) => {
                if tokio::time::timeout_at(deadline, settled).await.is_err() {
                    tracing::warn!("login attempts on one key waited too long for room");
                    return Err(refuse(ErrorCode::Busy));
                }
            }
            Err(e) => return Err(refusal(&e)),
        }
    }
    let ticket = Ticket::new(shared.attempts.clone(), keys);
    match ledger(shared, lookup).await {
        Ok(found) => Ok((ticket, found)),
        Err(e) => Err(refusal(&e)),
    }
}

/// A successful login: resets the account's failure count (writing only when there was one),
/// then runs `then` (the balance; an operator's login audit).
pub(super) async fn login_succeeded<T: Send + 'static>(
    shared: &Arc<Shared>,
    ticket: Ticket,
    then: impl FnOnce(&dyn Ledger) -> Result<T, LedgerError> + Send + 'static,
) -> Result<T, LedgerError> {
    let (in_flight, keys) = ticket.into_settle();
    let now = shared.config.clock.now_ms();
    ledger(shared, move |l| {
        in_flight.settle(l, &keys, Outcome::Success, now)?;
        then(l)
    })
    .await
}

/// A failed login: charges the account and the terminal, audits `event` (and a lock it
/// starts), makes both durable and answers `auth_failed`.
pub(super) async fn login_failed(
    shared: &Arc<Shared>,
    ctx: &SessionCtx,
    ticket: Ticket,
    event: AuditEvent,
) -> Response {
    let (in_flight, keys) = ticket.into_settle();
    let now = shared.config.clock.now_ms();
    let locks: Vec<AuditEvent> = keys
        .iter()
        .map(|key| {
            let mut locked = ctx.event(key.lock_action);
            locked.user.clone_from(&event.user);
            locked
        })
        .collect();
    let recorded = ledger(shared, move |l| {
        let after = in_flight.settle(l, &keys, Outcome::Failure, now)?;
        l.audit(&event)?;
        // A failure that starts a wait is audited with the wait and how many there have been,
        // so repeated locks show in the log and on the console.
        for ((key, state), mut locked) in keys.iter().zip(after).zip(locks) {
            if key.policy.locked(&state, now) {
                let wait_s = state.locked_until_ms.saturating_sub(now) / 1000;
                locked.detail = Some(format!(
                    "lock {} after {} failures: {wait_s} s",
                    state.locks, state.failures
                ));
                l.audit(&locked)?;
            }
        }
        Ok(())
    })
    .await;
    if let Err(e) = recorded {
        return refusal(&e);
    }
    if let Err(reply) = durable(shared).await {
        return reply;
    }
    refuse(ErrorCode::AuthFailed)
}

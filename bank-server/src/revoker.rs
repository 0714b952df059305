//! Ends the open sessions of revoked terminals as soon as this node learns of a revocation,
//! idle or not: its own (the counter moves at commit) or another node's (the engine reads the
//! shared counter every 250 ms), instead of at the session's next request.

use std::sync::Arc;
use std::time::Duration;

use protocol::TerminalId;

use crate::ledger::LedgerError;
use crate::Shared;

/// How often the revocation counter is compared (an atomic read; storage is read only when it
/// moved).
const CHECK_EVERY: Duration = Duration::from_millis(50);

/// Watches [`crate::Ledger::revocations`] until shutdown; when it moves, looks up the
/// terminals with open sessions and ends those of the revoked ones (a failed look-up is tried
/// again at the next tick).
pub(crate) async fn run(shared: Arc<Shared>) {
    let mut seen = shared.ledger.revocations();
    let mut every = tokio::time::interval(CHECK_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shared.shutdown.cancelled() => return,
            _ = every.tick() => {}
        }
        let now = shared.ledger.revocations();
        if now == seen {
            continue;
        }
        let open = shared.live.terminals();
        let ledger = shared.ledger.clone();
        let revoked = tokio::task::spawn_blocking(move || revoked(&*ledger, open))
            .await
            .unwrap_or_else(|e| Err(LedgerError::Storage(format!("ledger task failed: {e}"))));
        match revoked {
            Ok(revoked) => {
                for terminal in revoked {
                    let ended = shared.live.end_terminal(&terminal);
                    if ended > 0 {
                        tracing::info!(%terminal, sessions = ended, "terminal revoked; closing its open sessions");
                    }
                }
                seen = now;
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not look up revoked terminals; trying again")
            }
        }
    }
}

/// Those of `open` that are revoked or gone.
fn revoked(
    ledger: &dyn crate::Ledger,
    open: impl IntoIterator<Item = TerminalId>,
) -> Result<Vec<TerminalId>, LedgerError> {
    let mut revoked = Vec::new();
    for terminal in open {
        match ledger.terminal(&terminal)? {
            Some(record) if !record.revoked => {}
            _ => revoked.push(terminal),
        }
    }
    Ok(revoked)
}

//! This node's live sessions for the other nodes' consoles, and every node's for its own: a
//! task publishes the registry through the ledger when it changed (at most every 250 ms) and
//! at least every second (a heartbeat), and [`merge`] lists the newest of every live node.

use std::sync::Arc;
use std::time::{Duration, Instant};

use protocol::console::{LiveSession, MAX_LISTED_SESSIONS};

use crate::ledger::NodeSessions;
use crate::Shared;

/// How often the registry is looked at (and published if it changed).
const PUBLISH_EVERY: Duration = Duration::from_millis(250);
/// Published at least this often, changed or not, so the other nodes know this one lives.
const HEARTBEAT: Duration = Duration::from_secs(1);

/// Publishes this node's sessions until shutdown, then withdraws them. Returns at once when
/// the engine serves one node (it stores nothing).
pub(crate) async fn publish(shared: Arc<Shared>) {
    let mut every = tokio::time::interval(PUBLISH_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut published: Option<(u64, Instant)> = None;
    let mut failing = false;
    loop {
        tokio::select! {
            () = shared.shutdown.cancelled() => break,
            _ = every.tick() => {}
        }
        let changes = shared.live.changes();
        if published.is_some_and(|(seen, at)| seen == changes && at.elapsed() < HEARTBEAT) {
            continue;
        }
        // Only the newest are ever listed: a row holds at most that many.
        let (total, sessions) = shared.live.snapshot(MAX_LISTED_SESSIONS);
        let (ledger, node) = (shared.ledger.clone(), shared.config.node_name.clone());
        let stored = tokio::task::spawn_blocking(move || {
            ledger.publish_sessions(&node, &NodeSessions { total, sessions })
        })
        .await;
        match stored {
            Ok(Ok(true)) => {
                if failing {
                    tracing::info!("publishing live sessions again");
                    failing = false;
                }
                published = Some((changes, Instant::now()));
            }
            Ok(Ok(false)) => return,
            Ok(Err(e)) if !failing => {
                tracing::warn!(error = %e, "could not publish the live sessions; retrying");
                failing = true;
            }
            Err(e) if !failing => {
                tracing::warn!(error = %e, "publishing the live sessions failed; retrying");
                failing = true;
            }
            Ok(Err(_)) | Err(_) => {}
        }
    }
    let (ledger, node) = (shared.ledger.clone(), shared.config.node_name.clone());
    match tokio::task::spawn_blocking(move || ledger.withdraw_sessions(&node)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "could not withdraw the live sessions"),
        Err(e) => tracing::warn!(error = %e, "withdrawing the live sessions failed"),
    }
}

/// This node's sessions and the other live nodes': how many are open in all, and the newest
/// [`MAX_LISTED_SESSIONS`] of them, newest first.
pub(crate) fn merge(local: NodeSessions, others: Vec<NodeSessions>) -> (u64, Vec<LiveSession>) {
    let mut total = local.total;
    let mut sessions = local.sessions;
    for node in others {
        total = total.saturating_add(node.total);
        sessions.extend(node.sessions);
    }
    sessions.sort_by(|a, b| (b.since_ms, &b.node, b.conn).cmp(&(a.since_ms, &a.node, a.conn)));
    sessions.truncate(MAX_LISTED_SESSIONS);
    (total, sessions)
}

#[cfg(test)]
mod tests {
    use protocol::{TerminalId, TerminalRole};

    use super::*;

    fn session(node: &str, conn: u64, since_ms: u64) -> LiveSession {
        LiveSession {
            conn,
            terminal: TerminalId::new("t-1").unwrap(),
            role: TerminalRole::Atm,
            user: None,
            since_ms,
            node: node.into(),
        }
    }

    #[test]
    fn every_node_counts_and_the_newest_are_listed() {
        let local = NodeSessions {
            total: 2,
            sessions: vec![session("a", 2, 50), session("a", 1, 10)],
        };
        let b = NodeSessions {
            total: 40,
            sessions: (0..MAX_LISTED_SESSIONS as u64)
                .map(|i| session("b", i, 20 + i))
                .collect(),
        };
        let (total, listed) = merge(local, vec![b]);
        assert_eq!(total, 42);
        assert_eq!(listed.len(), MAX_LISTED_SESSIONS);
        assert_eq!((listed[0].node.as_str(), listed[0].since_ms), ("a", 50));
        assert!(listed.windows(2).all(|w| w[0].since_ms >= w[1].since_ms));
        assert!(listed.iter().all(|s| s.since_ms != 10), "the oldest drops");
    }
}

//! The registry of this node's open sessions: what the console lists (terminal, role, who is
//! logged in, since when, on which node), and the handle that ends a session at once (a
//! revoked terminal's). In memory only; an entry lives as long as its session's guard.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use protocol::console::LiveSession;
use protocol::{TerminalId, TerminalRole};
use tokio_util::sync::CancellationToken;

use crate::node::NodeName;

/// One open session: what is listed, and what ends it.
struct Entry {
    listed: LiveSession,
    end: CancellationToken,
}

#[derive(Default)]
struct Inner {
    sessions: BTreeMap<u64, Entry>,
    /// Grows with every change to what is listed (for publishing only changes).
    changes: u64,
}

/// Every open, handshaken session of this node. Cloning shares it.
#[derive(Clone)]
pub(crate) struct Registry {
    node: Arc<str>,
    inner: Arc<Mutex<Inner>>,
}

/// Removes its session from the registry when dropped.
pub(crate) struct Guard {
    registry: Registry,
    conn: u64,
    end: CancellationToken,
}

impl Guard {
    /// Cancelled when the bank ends the session from outside it (its terminal was revoked).
    pub(crate) fn ended(&self) -> &CancellationToken {
        &self.end
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let mut inner = self.registry.lock();
        inner.sessions.remove(&self.conn);
        inner.changes += 1;
        crate::metrics::metrics().session_closed();
    }
}

impl Registry {
    /// An empty registry of `node`'s sessions.
    pub(crate) fn new(node: &NodeName) -> Self {
        Self {
            node: Arc::from(node.as_str()),
            inner: Arc::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a session whose handshake just completed.
    pub(crate) fn open(
        &self,
        conn: u64,
        terminal: TerminalId,
        role: TerminalRole,
        since_ms: u64,
    ) -> Guard {
        let end = CancellationToken::new();
        let mut inner = self.lock();
        inner.sessions.insert(
            conn,
            Entry {
                listed: LiveSession {
                    conn,
                    terminal,
                    role,
                    user: None,
                    since_ms,
                    node: self.node.to_string(),
                },
                end: end.clone(),
            },
        );
        inner.changes += 1;
        crate::metrics::metrics().session_opened();
        Guard {
            registry: self.clone(),
            conn,
            end,
        }
    }

    /// Records who is logged in on `conn` (if it changed).
    pub(crate) fn set_user(&self, conn: u64, user: Option<&str>) {
        let mut inner = self.lock();
        let Some(entry) = inner.sessions.get_mut(&conn) else {
            return;
        };
        if entry.listed.user.as_deref() != user {
            entry.listed.user = user.map(protocol::console::clip);
            inner.changes += 1;
        }
    }

    /// How many sessions are open, and the newest `limit` of them, newest first.
    pub(crate) fn snapshot(&self, limit: usize) -> (u64, Vec<LiveSession>) {
        let inner = self.lock();
        let total = inner.sessions.len() as u64;
        let listed = inner
            .sessions
            .values()
            .rev()
            .take(limit)
            .map(|entry| entry.listed.clone())
            .collect();
        (total, listed)
    }

    /// How many times what is listed has changed.
    pub(crate) fn changes(&self) -> u64 {
        self.lock().changes
    }

    /// The terminals with a session open.
    pub(crate) fn terminals(&self) -> BTreeSet<TerminalId> {
        self.lock()
            .sessions
            .values()
            .map(|entry| entry.listed.terminal.clone())
            .collect()
    }

    /// Ends every open session of `terminal` (each closes itself); how many there were.
    pub(crate) fn end_terminal(&self, terminal: &TerminalId) -> usize {
        let inner = self.lock();
        let mut ended = 0;
        for entry in inner.sessions.values() {
            if entry.listed.terminal == *terminal && !entry.end.is_cancelled() {
                entry.end.cancel();
                ended += 1;
            }
        }
        ended
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_appear_change_and_leave_with_their_guard() {
        let registry = Registry::new(&NodeName::new("n1").unwrap());
        let id = TerminalId::new("t-1").unwrap();
        let a = registry.open(1, id.clone(), TerminalRole::Atm, 10);
        let b = registry.open(2, id, TerminalRole::Console, 20);
        let changes = registry.changes();
        registry.set_user(1, Some("alice"));
        assert_eq!(registry.changes(), changes + 1);
        registry.set_user(1, Some("alice"));
        assert_eq!(registry.changes(), changes + 1, "no change, not counted");
        let (total, listed) = registry.snapshot(1);
        assert_eq!((total, listed[0].conn), (2, 2));
        assert_eq!(listed[0].node, "n1");
        assert_eq!(registry.snapshot(5).1[1].user.as_deref(), Some("alice"));
        drop(b);
        drop(a);
        assert_eq!(registry.snapshot(5).0, 0);
        assert_eq!(registry.changes(), changes + 3);
    }

    #[test]
    fn ending_a_terminal_ends_its_sessions_only() {
        let registry = Registry::new(&NodeName::new("n1").unwrap());
        let (lobby, kiosk) = (
            TerminalId::new("t-lobby").unwrap(),
            TerminalId::new("t-kiosk").unwrap(),
        );
        let a = registry.open(1, lobby.clone(), TerminalRole::Atm, 10);
        let b = registry.open(2, kiosk.clone(), TerminalRole::Atm, 20);
        let c = registry.open(3, lobby.clone(), TerminalRole::Atm, 30);
        assert_eq!(
            registry.terminals().into_iter().collect::<Vec<_>>(),
            vec![kiosk, lobby.clone()]
        );
        assert_eq!(registry.end_terminal(&lobby), 2);
        assert!(a.ended().is_cancelled() && c.ended().is_cancelled());
        assert!(!b.ended().is_cancelled());
        assert_eq!(registry.end_terminal(&lobby), 0, "ended once");
    }
}

//! The registry of open sessions the console lists: terminal, role, who is logged in, since
//! when. In memory only; an entry lives as long as its session's guard.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use protocol::console::LiveSession;
use protocol::{TerminalId, TerminalRole};

/// Every open, handshaken session. Cloning shares it.
#[derive(Clone, Default)]
pub(crate) struct Registry {
    sessions: Arc<Mutex<BTreeMap<u64, LiveSession>>>,
}

/// Removes its session from the registry when dropped.
pub(crate) struct Guard {
    registry: Registry,
    conn: u64,
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.registry.lock().remove(&self.conn);
    }
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, LiveSession>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a session whose handshake just completed.
    pub(crate) fn open(
        &self,
        conn: u64,
        terminal: TerminalId,
        role: TerminalRole,
        since_ms: u64,
    ) -> Guard {
        self.lock().insert(
            conn,
            LiveSession {
                conn,
                terminal,
                role,
                user: None,
                since_ms,
            },
        );
        Guard {
            registry: self.clone(),
            conn,
        }
    }

    /// Records who is logged in on `conn` (if it changed).
    pub(crate) fn set_user(&self, conn: u64, user: Option<&str>) {
        if let Some(session) = self.lock().get_mut(&conn) {
            if session.user.as_deref() != user {
                session.user = user.map(protocol::console::clip);
            }
        }
    }

    /// How many sessions are open, and the newest `limit` of them, newest first.
    pub(crate) fn snapshot(&self, limit: usize) -> (u64, Vec<LiveSession>) {
        let sessions = self.lock();
        let total = sessions.len() as u64;
        (
            total,
            sessions.values().rev().take(limit).cloned().collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_appear_change_and_leave_with_their_guard() {
        let registry = Registry::default();
        let id = TerminalId::new("t-1").unwrap();
        let a = registry.open(1, id.clone(), TerminalRole::Atm, 10);
        let b = registry.open(2, id, TerminalRole::Console, 20);
        registry.set_user(1, Some("alice"));
        let (total, listed) = registry.snapshot(1);
        assert_eq!((total, listed[0].conn), (2, 2));
        assert_eq!(registry.snapshot(5).1[1].user.as_deref(), Some("alice"));
        drop(b);
        drop(a);
        assert_eq!(registry.snapshot(5).0, 0);
    }
}

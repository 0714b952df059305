//! Live sessions across nodes on PostgreSQL: each node keeps one row of `node_sessions` (its
//! name, its open sessions as JSON, when it last wrote, on the database's clock, so the nodes'
//! clocks need not agree); a row older than [`STALE_MS`] is a dead node's: left out of the
//! listing, and deleted by the next node that publishes.

use std::sync::OnceLock;

use protocol::console::LiveSession;

use super::{decode, json, to_i64, to_u64, PgLedger};
use crate::ledger::{LedgerError, NodeSessions};
use crate::node::NodeName;

/// A node that has not published for this long (ms) is taken for dead. The bank publishes at
/// least every second.
pub(crate) const STALE_MS: i64 = 5_000;

/// This process's random id, told apart from another process publishing under its name.
fn instance() -> &'static str {
    static INSTANCE: OnceLock<String> = OnceLock::new();
    INSTANCE.get_or_init(|| {
        let mut bytes = [0u8; 8];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
        hex::encode(bytes)
    })
}

/// The database's clock in Unix ms, in SQL.
const DB_NOW_MS: &str = "(extract(epoch FROM clock_timestamp()) * 1000)::bigint";

impl PgLedger {
    /// [`crate::Ledger::publish_sessions`]: upserts `node`'s row, then deletes the rows of
    /// dead nodes. Two statements, each on its own: nothing here needs them together. A row
    /// of the same name kept fresh by another process is not overwritten: two live nodes
    /// under one name is a mistake worth an error, not a listing that flickers.
    pub(super) fn publish_node_sessions(
        &self,
        node: &NodeName,
        sessions: &NodeSessions,
    ) -> Result<(), LedgerError> {
        let total = to_i64(sessions.total)?;
        let listed = json(&sessions.sessions);
        let written = self.read("publishing live sessions", |client| {
            let written = client.execute(
                &format!(
                    "INSERT INTO node_sessions (node, instance, sessions_total, sessions, updated_ms) \
                     VALUES ($1, $2, $3, $4, {DB_NOW_MS}) ON CONFLICT (node) DO UPDATE \
                     SET instance = EXCLUDED.instance, sessions_total = EXCLUDED.sessions_total, \
                     sessions = EXCLUDED.sessions, updated_ms = EXCLUDED.updated_ms \
                     WHERE node_sessions.instance = EXCLUDED.instance \
                     OR node_sessions.updated_ms < {DB_NOW_MS} - $5"
                ),
                &[&node.as_str(), &instance(), &total, &listed, &STALE_MS],
            )?;
            client.execute(
                &format!("DELETE FROM node_sessions WHERE updated_ms < {DB_NOW_MS} - $1"),
                &[&STALE_MS],
            )?;
            Ok(written)
        })?;
        if written == 0 {
            return Err(LedgerError::Storage(format!(
                "another live node publishes its sessions as {node}: give each node its own --node-name"
            )));
        }
        Ok(())
    }

    /// [`crate::Ledger::other_sessions`]: the rows of the other nodes alive; each session is
    /// given its row's node name (a row names its node once, as its key).
    pub(super) fn other_node_sessions(
        &self,
        node: &NodeName,
    ) -> Result<Vec<NodeSessions>, LedgerError> {
        self.read("reading live sessions", |client| {
            let rows = client.query(
                &format!(
                    "SELECT node, sessions_total, sessions FROM node_sessions \
                     WHERE node <> $1 AND updated_ms >= {DB_NOW_MS} - $2 ORDER BY node"
                ),
                &[&node.as_str(), &STALE_MS],
            )?;
            let mut nodes = Vec::with_capacity(rows.len());
            for row in rows {
                let name: String = row.get(0);
                let mut sessions: Vec<LiveSession> = decode(row.get::<_, &str>(2).as_bytes())?;
                for session in &mut sessions {
                    session.node.clone_from(&name);
                }
                nodes.push(NodeSessions {
                    total: to_u64(row.get(1))?,
                    sessions,
                });
            }
            Ok(nodes)
        })
    }

    /// [`crate::Ledger::withdraw_sessions`] (its own row only).
    pub(super) fn withdraw_node_sessions(&self, node: &NodeName) -> Result<(), LedgerError> {
        self.read("withdrawing live sessions", |client| {
            client.execute(
                "DELETE FROM node_sessions WHERE node = $1 AND instance = $2",
                &[&node.as_str(), &instance()],
            )?;
            Ok(())
        })
    }
}

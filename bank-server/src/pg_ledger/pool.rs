//! The PostgreSQL engine's connections: how one is opened (durable commits, bounded waits),
//! the pool that lends them, and the statements each has prepared.

use std::collections::HashMap;
use std::sync::{Condvar, Mutex};

use postgres::{Client, GenericClient, Statement};

use super::{failure, Database};
use crate::ledger::DatabaseFailure;

/// Connections one process keeps to the database at most.
const POOL_SIZE: usize = 16;

/// A connection and the statements prepared on it.
pub(super) struct Conn {
    pub(super) client: Client,
    pub(super) statements: Statements,
}

/// The statements a connection has prepared, by their SQL. The server parses and plans each
/// once per connection; after that it is only bound and run: one round trip per statement
/// instead of two, and no planning. The SQL is the engine's own (a fixed set), so the cache
/// stays small; it lives and dies with its connection.
#[derive(Default)]
pub(super) struct Statements(HashMap<String, Statement>);

impl Statements {
    /// `sql` prepared on `client` (the connection these statements belong to, or a
    /// transaction on it): from the cache, else prepared now and kept.
    pub(super) fn get(
        &mut self,
        client: &mut impl GenericClient,
        sql: &str,
    ) -> Result<Statement, postgres::Error> {
        if let Some(statement) = self.0.get(sql) {
            return Ok(statement.clone());
        }
        let statement = client.prepare(sql)?;
        self.0.insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }

    /// Forgets every statement (after an error that may have come from a stale one: a schema
    /// migrated under this connection's plans).
    pub(super) fn clear(&mut self) {
        self.0.clear();
    }
}

/// A connection pool: at most [`POOL_SIZE`] connections, made as needed, a broken one
/// dropped when returned.
pub(super) struct Pool {
    database: Database,
    state: Mutex<(Vec<Conn>, usize)>,
    returned: Condvar,
}

/// A pooled connection, returned on drop.
pub(super) struct Pooled<'a> {
    pool: &'a Pool,
    conn: Option<Conn>,
}

impl std::ops::Deref for Pooled<'_> {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        self.conn.as_ref().expect("held until dropped")
    }
}

impl std::ops::DerefMut for Pooled<'_> {
    fn deref_mut(&mut self) -> &mut Conn {
        self.conn.as_mut().expect("held until dropped")
    }
}

impl std::ops::Deref for Conn {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self.client
    }
}

impl std::ops::DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut Client {
        &mut self.client
    }
}

impl Conn {
    /// The one row (or none) of `sql`, prepared once per connection.
    pub(super) fn query_cached(
        &mut self,
        sql: &str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Result<Option<postgres::Row>, postgres::Error> {
        let statement = self.statements.get(&mut self.client, sql)?;
        self.client.query_opt(&statement, params).inspect_err(|_| {
            self.statements.clear();
        })
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        let mut state = self.pool.state.lock().unwrap_or_else(|p| p.into_inner());
        match self.conn.take() {
            Some(conn) if !conn.client.is_closed() => state.0.push(conn),
            _ => state.1 -= 1,
        }
        self.pool.returned.notify_one();
    }
}

impl Pool {
    /// A pool for `database` that starts with `client`.
    pub(super) fn new(database: Database, client: Client) -> Self {
        Self {
            database,
            state: Mutex::new((
                vec![Conn {
                    client,
                    statements: Statements::default(),
                }],
                1,
            )),
            returned: Condvar::new(),
        }
    }

    /// Every idle connection, out of the pool (to be closed: see `PgLedger`'s `Drop`).
    pub(super) fn take_idle(&self) -> Vec<Conn> {
        std::mem::take(&mut self.state.lock().unwrap_or_else(|p| p.into_inner()).0)
    }

    pub(super) fn get(&self) -> Result<Pooled<'_>, DatabaseFailure> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(conn) = state.0.pop() {
                return Ok(Pooled {
                    pool: self,
                    conn: Some(conn),
                });
            }
            if state.1 < POOL_SIZE {
                state.1 += 1;
                drop(state);
                return match connect(&self.database) {
                    Ok(client) => Ok(Pooled {
                        pool: self,
                        conn: Some(Conn {
                            client,
                            statements: Statements::default(),
                        }),
                    }),
                    Err(e) => {
                        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
                        state.1 -= 1;
                        self.returned.notify_one();
                        Err(e)
                    }
                };
            }
            state = self.returned.wait(state).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// A connection whose commits are durable before they return (`synchronous_commit = on`,
/// whatever the server's default), that waits for no lock longer than 10 s, and whose
/// session the server ends if it sits 10 s inside a transaction (a node stuck mid-commit
/// releases its locks).
pub(super) fn connect(database: &Database) -> Result<Client, DatabaseFailure> {
    let mut client = database
        .connector
        .connect(&database.config)
        .map_err(|e| failure("connecting", e))?;
    client
        .batch_execute(
            "SET synchronous_commit = on; SET lock_timeout = '10s'; \
             SET idle_in_transaction_session_timeout = '10s'",
        )
        .map_err(|e| failure("connecting", e))?;
    Ok(client)
}

//! The PostgreSQL engine's schema: one migration per version, applied at start under an
//! advisory lock, and the refusal of a database newer than this binary or holding other tables.

use postgres::Client;

use super::pool::connect;
use super::{failure, Database, OpenError};

/// The schema, one migration per version (version `i + 1` is `MIGRATIONS[i]`); a binary
/// refuses a database whose version is higher than it knows. Money is `NUMERIC(20,0)`: the
/// contract's cents are `u64`, which `BIGINT` (signed) cannot hold whole.
const MIGRATIONS: &[&str] = &[
    r"
CREATE TABLE bank_meta (key TEXT PRIMARY KEY, value BYTEA NOT NULL);
CREATE TABLE users (username TEXT PRIMARY KEY, record TEXT NOT NULL);
CREATE TABLE accounts (
    number TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    balance NUMERIC(20, 0) NOT NULL
        CHECK (balance >= 0 AND balance <= 18446744073709551615),
    tx_count BIGINT NOT NULL CHECK (tx_count >= 0)
);
CREATE TABLE transactions (
    account TEXT NOT NULL REFERENCES accounts (number) DEFERRABLE INITIALLY DEFERRED,
    seq BIGINT NOT NULL CHECK (seq >= 0),
    txid BYTEA NOT NULL,
    time_ms BIGINT NOT NULL,
    entry TEXT NOT NULL,
    PRIMARY KEY (account, seq),
    UNIQUE (account, txid)
);
CREATE INDEX transactions_by_time ON transactions (time_ms);
CREATE TABLE terminals (id TEXT PRIMARY KEY, record TEXT NOT NULL);
CREATE TABLE terminal_days (terminal TEXT PRIMARY KEY, record TEXT NOT NULL);
CREATE TABLE operators (username TEXT PRIMARY KEY, record TEXT NOT NULL);
CREATE TABLE enrollments (code TEXT PRIMARY KEY, record TEXT NOT NULL);
CREATE TABLE throttles (key TEXT PRIMARY KEY, record TEXT NOT NULL);
CREATE TABLE audit_entries (seq BIGINT PRIMARY KEY CHECK (seq >= 0), entry BYTEA NOT NULL);
CREATE TABLE audit_epochs (start BIGINT PRIMARY KEY CHECK (start >= 0), record BYTEA NOT NULL);
",
    r"
CREATE TABLE bank_counters (name TEXT PRIMARY KEY, value BIGINT NOT NULL CHECK (value >= 0));
INSERT INTO bank_counters (name, value) VALUES ('revocations', 0), ('credential_changes', 0);
",
    // One audit chain per node, each head in its own row; the one chain of version 2 becomes
    // the chain named '' (closed: no node has that name).
    r"
CREATE TABLE audit_chains (chain TEXT PRIMARY KEY, head BYTEA NOT NULL);
INSERT INTO audit_chains (chain, head) SELECT '', value FROM bank_meta WHERE key = 'audit_head';
DELETE FROM bank_meta WHERE key = 'audit_head';
ALTER TABLE audit_entries ADD COLUMN chain TEXT NOT NULL DEFAULT '';
ALTER TABLE audit_entries ALTER COLUMN chain DROP DEFAULT;
ALTER TABLE audit_entries DROP CONSTRAINT audit_entries_pkey;
ALTER TABLE audit_entries ADD PRIMARY KEY (chain, seq);
ALTER TABLE audit_epochs ADD COLUMN chain TEXT NOT NULL DEFAULT '';
ALTER TABLE audit_epochs ALTER COLUMN chain DROP DEFAULT;
ALTER TABLE audit_epochs DROP CONSTRAINT audit_epochs_pkey;
ALTER TABLE audit_epochs ADD PRIMARY KEY (chain, start);
",
    // Shared across nodes: each terminal's openings bucket (`pg_ledger/buckets.rs`) and each
    // node's live sessions (`pg_ledger/presence.rs`).
    r"
CREATE TABLE opening_buckets (
    terminal TEXT PRIMARY KEY,
    full_at_ms BIGINT NOT NULL CHECK (full_at_ms >= 0),
    refusing BOOLEAN NOT NULL
);
CREATE TABLE node_sessions (
    node TEXT PRIMARY KEY,
    instance TEXT NOT NULL,
    sessions_total BIGINT NOT NULL CHECK (sessions_total >= 0),
    sessions TEXT NOT NULL,
    updated_ms BIGINT NOT NULL
);
",
];

/// The advisory lock migrations hold (any constant; PostgreSQL-only, see the module doc).
const MIGRATION_LOCK: i64 = 0x6261_6e6b_0001;

/// The schema version this binary writes and reads.
pub fn schema_version() -> i32 {
    i32::try_from(MIGRATIONS.len()).expect("a few migrations")
}

/// Brings the schema of the database at `url` to `version` (at most [`schema_version`]) and
/// no further, creating nothing else: for tests of the migrations, which need a database as an
/// older bank-server left it.
pub fn migrate_to(url: &str, version: i32) -> Result<(), OpenError> {
    let mut client = connect(&Database::new(url, None)?).map_err(OpenError::connecting)?;
    migrate(&mut client, version.min(schema_version()))
}

/// Brings the schema to `target` (the binary's [`schema_version`], but for tests) under an
/// advisory lock (nodes starting together migrate once); refuses a newer schema, and a
/// database holding other tables.
pub(super) fn migrate(client: &mut Client, target: i32) -> Result<(), OpenError> {
    let db = |e| OpenError::Migrate(failure("migrating", e));
    let mut tx = client.transaction().map_err(db)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .map_err(db)?;
    let exists: bool = tx
        .query_one("SELECT to_regclass('schema_version') IS NOT NULL", &[])
        .map_err(db)?
        .get(0);
    if !exists {
        let tables: i64 = tx
            .query_one(
                "SELECT count(*) FROM information_schema.tables \
                 WHERE table_schema = current_schema()",
                &[],
            )
            .map_err(db)?
            .get(0);
        if tables > 0 {
            return Err(OpenError::Foreign);
        }
        tx.batch_execute(
            "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_ms BIGINT NOT NULL)",
        )
        .map_err(db)?;
    }
    let found: i32 = tx
        .query_one("SELECT COALESCE(max(version), 0) FROM schema_version", &[])
        .map_err(db)?
        .get(0);
    if found > schema_version() {
        return Err(OpenError::TooNew { found });
    }
    for (version, sql) in (1..).zip(MIGRATIONS) {
        if version <= found || version > target {
            continue;
        }
        tx.batch_execute(sql).map_err(db)?;
        let now = i64::try_from(crate::now_ms()).unwrap_or(i64::MAX);
        tx.execute(
            "INSERT INTO schema_version (version, applied_ms) VALUES ($1, $2)",
            &[&version, &now],
        )
        .map_err(db)?;
        if found > 0 {
            tracing::info!(from = found, to = version, "migrated the database schema");
        }
    }
    tx.commit().map_err(db)
}

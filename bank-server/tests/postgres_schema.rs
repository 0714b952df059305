//! The PostgreSQL engine's schema on a real server: created in an empty database, migrated
//! once, a database newer than the binary or holding other tables refused with a clear
//! message.

use bank_server::pg_ledger::{schema_version, OpenError, PgLedger};

#[test]
fn the_schema_is_made_once_and_a_newer_or_foreign_database_is_refused() {
    let cluster = pg_harness::Cluster::start().unwrap();
    for name in ["fresh", "newer", "foreign"] {
        cluster.create_database(name).unwrap();
    }
    // Made in an empty database; opening again finds it and changes nothing.
    let url = cluster.url("fresh");
    assert!(!PgLedger::holds_bank(&url).unwrap(), "no bank before");
    drop(PgLedger::open(&url).unwrap());
    drop(PgLedger::open(&url).unwrap());
    assert!(
        !PgLedger::holds_bank(&url).unwrap(),
        "a schema is not a bank"
    );
    cluster
        .psql(
            "fresh",
            &format!(
                "DO $$ BEGIN IF (SELECT count(*) FROM schema_version) <> {} \
                 THEN RAISE 'migrated twice'; END IF; END $$",
                schema_version()
            ),
        )
        .unwrap();

    // A newer schema: refused, saying so.
    let url = cluster.url("newer");
    drop(PgLedger::open(&url).unwrap());
    cluster
        .psql("newer", "INSERT INTO schema_version VALUES (999, 0)")
        .unwrap();
    let Err(refused) = PgLedger::open(&url) else {
        panic!("a newer schema was opened")
    };
    assert!(matches!(refused, OpenError::TooNew { found: 999 }));
    assert!(
        refused.to_string().contains("newer than this bank-server"),
        "{refused}"
    );

    // Another application's tables: no bank is made over them.
    cluster
        .psql("foreign", "CREATE TABLE invoices (id BIGINT)")
        .unwrap();
    let Err(refused) = PgLedger::open(&cluster.url("foreign")) else {
        panic!("a bank was made over another application's tables")
    };
    assert!(matches!(refused, OpenError::Foreign), "{refused}");

    // No server there: a connection error, not a panic.
    let gone = format!("postgres://bank@127.0.0.1:{}/fresh", cluster.port());
    drop(cluster);
    assert!(matches!(PgLedger::open(&gone), Err(OpenError::Connect(_))));
}

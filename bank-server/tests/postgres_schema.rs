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
    assert!(!PgLedger::holds_bank(&url, None).unwrap(), "no bank before");
    drop(PgLedger::open_reader(&url, None).unwrap());
    drop(PgLedger::open_reader(&url, None).unwrap());
    assert!(
        !PgLedger::holds_bank(&url, None).unwrap(),
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
    drop(PgLedger::open_reader(&url, None).unwrap());
    cluster
        .psql("newer", "INSERT INTO schema_version VALUES (999, 0)")
        .unwrap();
    let Err(refused) = PgLedger::open_reader(&url, None) else {
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
    let Err(refused) = PgLedger::open_reader(&cluster.url("foreign"), None) else {
        panic!("a bank was made over another application's tables")
    };
    assert!(matches!(refused, OpenError::Foreign), "{refused}");

    // No server there: a connection error, not a panic.
    let gone = format!("postgres://bank@127.0.0.1:{}/fresh", cluster.port());
    drop(cluster);
    assert!(matches!(
        PgLedger::open_reader(&gone, None),
        Err(OpenError::Connect(_))
    ));
}

/// A database at schema version 2 (one audit chain every node shared, its head in
/// `bank_meta`) with a real chain in it: migrated, that chain is kept whole under the name
/// `""`, verifies with the auditor's key as before, and is never appended to again; a node's
/// entries go to a chain of its own, and `verify_chains` checks both.
#[test]
fn a_version_2_database_keeps_its_shared_chain_closed_and_verifiable() {
    use bank_server::audit::{AuditEvent, AuditorKeys, AuditorSecret, ChainHead, ChainTip};
    use bank_server::ledger::BankIdentity;
    use bank_server::Ledger;

    const BANK: &str = "0123456789abcdef0123456789abcdef";
    let cluster = pg_harness::Cluster::start().unwrap();
    cluster.create_database("v2").unwrap();
    let url = cluster.url("v2");
    bank_server::pg_ledger::migrate_to(&url, 2).unwrap();
    // What a version-2 bank wrote: its identity, and two nodes' turns on the one chain (an
    // epoch each), sealed for the bank's id alone.
    let auditor = AuditorSecret::random();
    let identity = BankIdentity {
        id: BANK.into(),
        created_ms: 1,
        format: 2,
        bank_key: None,
        auditor_key: Some(auditor.public().to_hex()),
    };
    let mut db = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let mut head = ChainHead::EMPTY;
    let mut last = None;
    for turn in [3u64, 2] {
        let (epoch, mut tip) = ChainTip::begin(BANK, head, &auditor.public());
        db.execute(
            "INSERT INTO audit_epochs (start, record) VALUES ($1, $2)",
            &[&(epoch.start as i64), &epoch.to_bytes()],
        )
        .unwrap();
        for i in 0..turn {
            let seq = tip.head().next_seq;
            let (entry, next) = tip.append(&AuditEvent::new("deposit", i), [7; 16]);
            db.execute(
                "INSERT INTO audit_entries (seq, entry) VALUES ($1, $2)",
                &[&(seq as i64), &entry],
            )
            .unwrap();
            tip = next;
        }
        head = *tip.head();
        last = Some(tip);
    }
    let last = last.unwrap();
    db.execute(
        "INSERT INTO bank_meta (key, value) VALUES ('audit_head', $1), ('identity', $2)",
        &[
            &head.to_bytes().as_slice(),
            &serde_json::to_vec(&identity).unwrap(),
        ],
    )
    .unwrap();
    assert!(PgLedger::holds_bank(&url, None).unwrap());

    // A node of that bank starts, its checkpoint file (format 2) vouching for the shared
    // chain: migrated, the shared chain kept as "", held against that checkpoint; the node
    // then joins with a chain of its own, and its checkpoint file names it.
    use bank_server::checkpoint::{Checkpoint, CheckpointFile};
    use bank_server::store::{self, Custody, DatabaseUrl, Storage, StoreError};
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::Postgres {
        url: DatabaseUrl(url.clone()),
        ca_file: None,
    };
    let custody = Custody {
        auditor: Some(auditor.public()),
        key_file: dir.path().join("auditor.key"),
    };
    let node = bank_server::node::NodeName::new("n1").unwrap();
    let data = dir.path().join("n1");
    let shared = Checkpoint::of(BANK, &last, 1);
    // One vouching for more than the shared chain holds: refused, nothing written.
    let ahead = dir.path().join("ahead.checkpoint");
    CheckpointFile::create(
        &ahead,
        &Checkpoint {
            next_seq: 6,
            ..shared.clone()
        },
    )
    .unwrap();
    let Err(refused) = store::open_checked(&data, &ahead, &storage, false, &custody, &node) else {
        panic!("a checkpoint beyond the shared chain was accepted")
    };
    assert!(
        matches!(refused, StoreError::RolledBack { .. }),
        "{refused}"
    );
    let file = dir.path().join("n1.checkpoint");
    CheckpointFile::create(&file, &shared).unwrap();
    let opened = store::open_checked(&data, &file, &storage, false, &custody, &node).unwrap();
    let now = store::read_checkpoint(&file).unwrap();
    assert_eq!((now.chain.as_str(), now.next_seq), ("n1", 1));
    drop(opened);

    // Opened again by that node: its chain goes on in a new epoch.
    let version: i32 = db
        .query_one("SELECT max(version) FROM schema_version", &[])
        .unwrap()
        .get(0);
    assert_eq!(version, schema_version());
    let left: i64 = db
        .query_one(
            "SELECT count(*) FROM bank_meta WHERE key = 'audit_head'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(left, 0, "the head moved to audit_chains");
    let ledger = PgLedger::open(&url, None, &node).unwrap();
    assert_eq!(ledger.chain_position().unwrap().unwrap().next_seq, 1);
    ledger.audit(&AuditEvent::new("node_joined", 9)).unwrap();
    ledger.audit(&AuditEvent::new("logout", 10)).unwrap();
    let keys = AuditorKeys::new(
        Some(AuditorSecret::from_hex(auditor.to_line().trim().split(' ').nth(1).unwrap()).unwrap()),
        None,
    );
    let chains = bank_server::admin::verify_chains(&ledger, &keys).unwrap();
    let seen: Vec<(&str, usize, usize)> = chains
        .iter()
        .map(|c| (c.log.chain.as_str(), c.events.len(), c.log.epochs.len()))
        .collect();
    assert_eq!(seen, [("", 5, 2), ("n1", 3, 2)]);
    assert_eq!(chains[1].events[0].action, "node_joined");
    // The shared chain is closed: nothing was appended to it.
    assert_eq!(chains[0].log.head, Some(head));

    // A byte flipped in the shared chain is found there, and named.
    db.execute(
        "UPDATE audit_entries SET entry = set_byte(entry, 60, get_byte(entry, 60) # 1) \
         WHERE chain = '' AND seq = 1",
        &[],
    )
    .unwrap();
    let Err(broken) = bank_server::admin::verify_chains(&ledger, &keys) else {
        panic!("a flipped byte verified")
    };
    assert!(broken.is_broken());
    assert!(broken.to_string().contains("shared chain"), "{broken}");
    drop(ledger);
}

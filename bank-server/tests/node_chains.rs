//! One audit chain per node on a shared PostgreSQL database (a real server the test starts): a
//! second node started under a running node's name is refused before it writes anything, a
//! node whose chain was rolled back is refused at its restart while the others serve on, and
//! `audit verify` names the chain a flipped byte is in.

mod common;

use std::path::Path;
use std::process::Command;

use atm_client::{load_auth_file, Client};
use common::process::*;
use common::*;
use protocol::{CardSecret, Response};
use rand_core::OsRng;

/// Starts node `name` in `dir/name`.
fn node(dir: &Path, name: &str, url: &str) -> (Paths, BankProcess) {
    start_node(dir, name, url, &[])
}

/// `audit verify` from `paths`' data directory with the auditor's key file `key`: its exit
/// code and what it said.
fn audit_verify(url: &str, paths: &Paths, key: &Path) -> (i32, String) {
    let out = Command::new(BIN)
        .args(["--database-url", url, "--data-dir"])
        .arg(&paths.data)
        .arg("--audit-key-file")
        .arg(key)
        .args(["audit", "verify"])
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `f` on a connection of its own to the database at `url` (the driver blocks: off the
/// test's runtime).
fn sql<T>(url: &str, f: impl FnOnce(&mut postgres::Client) -> T) -> T {
    tokio::task::block_in_place(|| {
        let mut db = postgres::Client::connect(url, postgres::NoTls).unwrap();
        f(&mut db)
    })
}

/// Entries, epochs and chains in the database.
fn counts(db: &mut postgres::Client) -> (i64, i64, i64) {
    let row = db
        .query_one(
            "SELECT (SELECT count(*) FROM audit_entries), (SELECT count(*) FROM audit_epochs), \
             (SELECT count(*) FROM audit_chains)",
            &[],
        )
        .unwrap();
    (row.get(0), row.get(1), row.get(2))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_node_keeps_a_chain_of_its_own_and_holds_it_alone() {
    let cluster = pg_harness::Cluster::start().unwrap();
    cluster.create_database("bank").unwrap();
    let url = cluster.url("bank");
    let dir = temp();
    let mut nodes: Vec<(Paths, BankProcess)> = ["n1", "n2", "n3"]
        .iter()
        .map(|name| node(dir.path(), name, &url))
        .collect();
    let auth = load_auth_file(&nodes[0].0.auth).unwrap();
    let mut cards = Vec::new();
    for (i, (_, bank)) in nodes.iter().enumerate() {
        let mut client = Client::connect(&bank.addr, &auth).await.unwrap();
        let card = CardSecret::random(&mut OsRng);
        open_card_account(&mut client, &format!("user{i}"), 1_000, card.clone()).await;
        cards.push(card);
    }
    let key = dir.path().join("n1").join("audit.key");
    let (code, said) = audit_verify(&url, &nodes[0].0, &key);
    assert_eq!(code, 0, "{said}");
    assert!(said.contains("audit log OK: 3 chains"), "{said}");

    // A second node under a running node's name: refused before it writes anything, saying
    // which name and which flag.
    let before = sql(&url, counts);
    let twin = Paths::new(&dir.path().join("twin"));
    std::fs::create_dir_all(dir.path().join("twin")).unwrap();
    let out = refused_start(&twin, &node_flags(dir.path(), "n2", &url), "warn");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("--node-name") && said.contains("\"n2\""),
        "{said}"
    );
    assert_eq!(sql(&url, counts), before, "the refused node wrote");
    assert!(!bank_server::default_checkpoint_file(&twin.data).exists());

    // n2's chain rolled back below its checkpoint (its newest entries deleted, its head set
    // back to match): n2's restart is refused; n1 and n3 serve on.
    let (n2, bank) = nodes.remove(1);
    bank.signal("TERM");
    assert!(bank.wait(), "SIGTERM exits 0");
    let checkpoint =
        bank_server::store::read_checkpoint(&bank_server::default_checkpoint_file(&n2.data))
            .unwrap();
    assert_eq!(checkpoint.chain, "n2");
    let cut = i64::try_from(checkpoint.next_seq).unwrap() - 1;
    assert!(cut >= 1, "n2 wrote a few entries");
    sql(&url, |db| {
        let mut tx = db.transaction().unwrap();
        tx.execute(
            "DELETE FROM audit_epochs WHERE chain = 'n2' AND start >= $1",
            &[&cut],
        )
        .unwrap();
        tx.execute(
            "DELETE FROM audit_entries WHERE chain = 'n2' AND seq >= $1",
            &[&cut],
        )
        .unwrap();
        tx.execute(
            "UPDATE audit_chains SET head = int8send($1) || decode(repeat('00', 32), 'hex') || \
         (SELECT sha256(entry) FROM audit_entries WHERE chain = 'n2' AND seq = $1 - 1) \
         WHERE chain = 'n2'",
            &[&cut],
        )
        .unwrap();
        tx.commit().unwrap();
    });
    let out = refused_start(&n2, &node_flags(dir.path(), "n2", &url), "warn");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("rolled back") && said.contains("\"n2\""),
        "{said}"
    );
    for ((_, bank), i) in nodes.iter().zip([0, 2]) {
        let (mut client, _) = card_session(&bank.addr, &auth, &format!("user{i}"), &cards[i]).await;
        assert!(matches!(
            client.call(&deposit_req(100)).await.unwrap(),
            Response::Deposited { .. }
        ));
    }
    // The cut chain holds together on its own; against n2's checkpoint it is short.
    let (code, said) = audit_verify(&url, &n2, &key);
    assert_eq!(code, 1, "{said}");
    assert!(said.contains("BROKEN") && said.contains("\"n2\""), "{said}");

    // A byte flipped in n3's chain: `audit verify` fails, naming that chain.
    sql(&url, |db| {
        db.execute(
            "UPDATE audit_entries SET entry = set_byte(entry, 60, get_byte(entry, 60) # 1) \
             WHERE chain = 'n3' AND seq = 1",
            &[],
        )
        .unwrap()
    });
    let (code, said) = audit_verify(&url, &nodes[0].0, &key);
    assert_eq!(code, 1, "{said}");
    assert!(
        said.contains("BROKEN") && said.contains("node \"n3\""),
        "{said}"
    );
    for (_, bank) in nodes {
        bank.signal("TERM");
        assert!(bank.wait(), "SIGTERM exits 0");
    }
}

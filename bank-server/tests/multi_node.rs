//! Several `bank-server` processes on one PostgreSQL database (a real server the test starts):
//! withdrawals racing through every node are exact, a terminal revoked through one node is
//! refused by the others, and the audit log verifies.

mod common;

use std::time::Instant;

use atm_client::{load_auth_file, Client};
use common::process::*;
use common::*;
use protocol::{CardSecret, Cents, ErrorCode, Request, Response};
use rand_core::OsRng;

/// A node: its own data directory, checkpoint and admin socket; the bank's key file and
/// database shared.
fn node(dir: &std::path::Path, name: &str, url: &str) -> (Paths, BankProcess) {
    let paths = Paths::new(&dir.join(name));
    std::fs::create_dir_all(dir.join(name)).unwrap();
    let key = dir.join("bank.key").display().to_string();
    let bank = BankProcess::start_with(
        &paths,
        &["--database-url", url, "--bank-key-file", &key],
        "warn",
    );
    (paths, bank)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_on_one_database_are_one_bank() {
    let started = Instant::now();
    let cluster = pg_harness::Cluster::start().unwrap();
    eprintln!("PostgreSQL up in {:?}", started.elapsed());
    cluster.create_database("bank").unwrap();
    let url = cluster.url("bank");
    let dir = temp();
    let nodes: Vec<(Paths, BankProcess)> = ["n1", "n2", "n3"]
        .iter()
        .map(|name| node(dir.path(), name, &url))
        .collect();
    assert_eq!(
        nodes[0].1.stdout().first().map(String::as_str),
        Some("created")
    );
    for (_, bank) in &nodes[1..] {
        assert!(bank.stdout().iter().all(|l| l != "created"), "one bank");
    }
    // The first node's terminal is the bank's: every node knows it.
    let auth = load_auth_file(&nodes[0].0.auth).unwrap();
    let card = CardSecret::random(&mut OsRng);
    let mut opener = Client::connect(&nodes[1].1.addr, &auth).await.unwrap();
    let open = Request::OpenCardAccount {
        username: username("ada"),
        initial_cents: Cents(10_000),
        txid: txid(),
        card: card.clone(),
    };
    assert!(matches!(
        opener.call(&open).await.unwrap(),
        Response::AccountOpened { .. }
    ));
    // Fifty sessions, spread over the three nodes, logged in one by one ...
    let mut sessions = Vec::new();
    for i in 0..50 {
        let addr = &nodes[i % 3].1.addr;
        let mut client = Client::connect(addr, &auth).await.unwrap();
        let login = Request::CardLogin {
            username: username("ada"),
            card: card.clone(),
        };
        assert!(matches!(
            client.call(&login).await.unwrap(),
            Response::Welcome { .. }
        ));
        sessions.push(client);
    }
    // ... then each withdraws 60.00 at once.
    let racing = Instant::now();
    let tasks: Vec<_> = sessions
        .into_iter()
        .map(|mut client| tokio::spawn(async move { client.call(&withdraw_req(6_000)).await }))
        .collect();
    let (mut withdrawn, mut refused) = (0, 0);
    for task in tasks {
        match task.await.unwrap().unwrap() {
            Response::Withdrawn { balance_cents, .. } => {
                assert_eq!(balance_cents, Cents(4_000));
                withdrawn += 1;
            }
            reply if reply == error(ErrorCode::InsufficientFunds) => refused += 1,
            other => panic!("unexpected reply {other:?}"),
        }
    }
    eprintln!("50 withdrawals over 3 nodes in {:?}", racing.elapsed());
    assert_eq!((withdrawn, refused), (1, 49));
    for (_, bank) in &nodes {
        let mut client = Client::connect(&bank.addr, &auth).await.unwrap();
        let login = Request::CardLogin {
            username: username("ada"),
            card: card.clone(),
        };
        let Response::Welcome { balance_cents, .. } = client.call(&login).await.unwrap() else {
            panic!("card login")
        };
        assert_eq!(balance_cents, Cents(4_000), "every node sees 40.00");
    }
    // A terminal revoked through one node is refused by the others within a second: a
    // session open on the third ends at its next request, a new handshake on the first fails.
    let mut on_third = Client::connect(&nodes[2].1.addr, &auth).await.unwrap();
    let login = Request::CardLogin {
        username: username("ada"),
        card: card.clone(),
    };
    assert!(matches!(
        on_third.call(&login).await.unwrap(),
        Response::Welcome { .. }
    ));
    let key_file = dir.path().join("bank.key");
    let revoked = std::process::Command::new(BIN)
        .args(["--database-url", &url, "--data-dir"])
        .arg(&nodes[1].0.data)
        .arg("--bank-key-file")
        .arg(&key_file)
        .args(["terminal", "revoke", auth.terminal_id.as_str()])
        .output()
        .unwrap();
    assert!(
        revoked.status.success(),
        "{}",
        String::from_utf8_lossy(&revoked.stderr)
    );
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert!(
        on_third.call(&Request::Balance {}).await.is_err(),
        "a session of the revoked terminal on another node goes on"
    );
    assert!(
        Client::connect(&nodes[0].1.addr, &auth).await.is_err(),
        "the revoked terminal's handshake passes on another node"
    );
    // Stopped, the audit log (one chain, an epoch per node's turn) verifies with the
    // auditor's key, and reaches each node's checkpoint.
    let key = dir.path().join("n1").join("audit.key");
    for (paths, bank) in nodes {
        bank.signal("TERM");
        let said = bank.stderr.clone();
        assert!(bank.wait(), "SIGTERM exits 0: {:?}", said.lock().unwrap());
        let verify = std::process::Command::new(BIN)
            .args(["--database-url", &url, "--data-dir"])
            .arg(&paths.data)
            .arg("--audit-key-file")
            .arg(&key)
            .args(["audit", "verify"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&verify.stderr);
        assert!(verify.status.success(), "{stderr}");
        assert!(stderr.contains("audit log OK"), "{stderr}");
    }
}

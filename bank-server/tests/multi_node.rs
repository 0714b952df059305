//! Several `bank-server` nodes on one PostgreSQL database (a real server the test starts):
//! withdrawals racing through every node are exact, a terminal revoked through one node is
//! refused by the others and its idle sessions on every node are closed within a second, the
//! openings bucket is one for the bank, any node's console lists every node's live sessions,
//! a node killed under load loses nothing acknowledged while the others serve on, and the
//! audit log verifies: every node's own chain.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use atm_client::{load_auth_file, Client, Frame};
use common::load::{self, signed};
use common::process::*;
use common::*;
use protocol::{CardSecret, Cents, ErrorCode, Request, Response};
use rand_core::OsRng;

/// A node named `name`: its own data directory, checkpoint, admin socket and audit chain; the
/// bank's key file and database shared.
fn node(dir: &std::path::Path, name: &str, url: &str) -> (Paths, BankProcess) {
    start_node(dir, name, url, &[])
}

/// `terminal revoke id` through `node`'s admin socket (its data directory).
fn revoke_through(url: &str, node: &Paths, key_file: &std::path::Path, id: &str) {
    let revoked = std::process::Command::new(BIN)
        .args(["--database-url", url, "--data-dir"])
        .arg(&node.data)
        .arg("--bank-key-file")
        .arg(key_file)
        .args(["terminal", "revoke", id])
        .output()
        .unwrap();
    assert!(
        revoked.status.success(),
        "{}",
        String::from_utf8_lossy(&revoked.stderr)
    );
}

/// Waits (at most 5 s) for the bank to close `client`'s idle session: when it did, and with
/// which close code.
fn closed_when(mut client: Client) -> tokio::task::JoinHandle<(Instant, Option<u16>)> {
    tokio::spawn(async move {
        let conn = client.conn();
        conn.set_read_timeout(Duration::from_secs(5));
        let frame = conn.recv().await.expect("closed within 5 s");
        assert!(
            matches!(frame, Frame::Closed),
            "the bank sent something else"
        );
        (Instant::now(), conn.close_frame().map(|(code, _)| code))
    })
}

/// `audit verify` from a node's data directory passes, with the auditor's key file `key`, over
/// every node's chain (and no other); returns what it said.
fn audit_verify(url: &str, node: &Paths, key: &std::path::Path) -> String {
    let verify = std::process::Command::new(BIN)
        .args(["--database-url", url, "--data-dir"])
        .arg(&node.data)
        .arg("--audit-key-file")
        .arg(key)
        .args(["audit", "verify"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&verify.stderr).into_owned();
    assert!(verify.status.success(), "{stderr}");
    assert!(stderr.contains("audit log OK: 3 chains"), "{stderr}");
    for name in ["n1", "n2", "n3"] {
        assert!(
            stderr.contains(&format!("the chain of node \"{name}\": OK")),
            "{stderr}"
        );
    }
    stderr
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
    open_card_account(&mut opener, "ada", 10_000, card.clone()).await;
    // Fifty sessions, spread over the three nodes, logged in one by one ...
    let mut sessions = Vec::new();
    for i in 0..50 {
        let addr = &nodes[i % 3].1.addr;
        let (client, _) = card_session(addr, &auth, "ada", &card).await;
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
        let (_client, balance_cents) = card_session(&bank.addr, &auth, "ada", &card).await;
        assert_eq!(balance_cents, Cents(4_000), "every node sees 40.00");
    }
    // A terminal revoked through one node is refused by the others within a second: a
    // session open on the third is closed, a new handshake on the first fails.
    let (mut on_third, _) = card_session(&nodes[2].1.addr, &auth, "ada", &card).await;
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
    // Stopped, the audit log (a chain per node) verifies with the auditor's key, and reaches
    // each node's checkpoint.
    let key = dir.path().join("n1").join("audit.key");
    for (paths, bank) in nodes {
        bank.signal("TERM");
        let said = bank.stderr.clone();
        assert!(bank.wait(), "SIGTERM exits 0: {:?}", said.lock().unwrap());
        audit_verify(&url, &paths, &key);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_under_load_loses_nothing_acknowledged_and_the_others_serve_on() {
    const ACCOUNTS: usize = 6;
    let cluster = pg_harness::Cluster::start().unwrap();
    cluster.create_database("bank").unwrap();
    let url = cluster.url("bank");
    let dir = temp();
    let mut nodes: Vec<(Paths, BankProcess)> = ["n1", "n2", "n3"]
        .iter()
        .map(|name| node(dir.path(), name, &url))
        .collect();
    let auth = load_auth_file(&nodes[0].0.auth).unwrap();
    let (acked_total, stop) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicBool::new(false)),
    );
    let mut cards = Vec::new();
    let mut tasks = Vec::new();
    for a in 0..ACCOUNTS {
        let card = CardSecret::random(&mut OsRng);
        cards.push(card.clone());
        let mut client = Client::connect(&nodes[a % 3].1.addr, &auth).await.unwrap();
        open_card_account(&mut client, &format!("card{a}"), 100_000, card).await;
        let (counter, stop) = (acked_total.clone(), stop.clone());
        tasks.push(tokio::spawn(load::run(client, 100_000, counter, stop)));
    }
    let acked_by = |n: usize| {
        let counter = acked_total.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(60);
            while counter.load(Ordering::Relaxed) < n {
                assert!(Instant::now() < deadline, "the load stalled");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    };
    acked_by(150).await;
    // kill -9 of the first node mid-stream; the other two keep serving their sessions.
    drop(nodes.remove(0));
    let at_kill = acked_total.load(Ordering::Relaxed);
    acked_by(at_kill + 100).await;
    stop.store(true, Ordering::Relaxed);
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    let acked: usize = results.iter().map(|r| r.done.len()).sum();
    eprintln!("{acked} acknowledged, {at_kill} of them before the kill");
    for (a, result) in results.iter().enumerate() {
        if a % 3 != 0 {
            assert!(result.in_flight.is_none(), "card{a} was on a live node");
        }
        let (mut client, balance_cents) =
            card_session(&nodes[a % 2].1.addr, &auth, &format!("card{a}"), &cards[a]).await;
        let (base, now) = (result.expected(), i128::from(balance_cents.0));
        let in_flight = result.in_flight.as_ref().map_or(0, signed);
        assert!(
            now == base || now == base + in_flight,
            "card{a}: balance {now}, acknowledged {base}, in flight {in_flight}"
        );
        // Every acknowledged transaction id, retried on another node, is answered as it was.
        for (request, acked_balance) in &result.done {
            let Ok(
                Response::Deposited { balance_cents, .. }
                | Response::Withdrawn { balance_cents, .. },
            ) = client.call(request).await
            else {
                panic!("card{a}: a replay was not answered")
            };
            assert_eq!(balance_cents.0, *acked_balance, "card{a}: a replay differs");
        }
        // The one in flight at the kill, retried twice: applied once at most.
        if let Some(request) = &result.in_flight {
            let first = client.call(request).await.unwrap();
            assert_eq!(client.call(request).await.unwrap(), first, "card{a}");
            let (Response::Deposited { balance_cents, .. }
            | Response::Withdrawn { balance_cents, .. }) = first
            else {
                panic!("card{a}: {first:?}")
            };
            assert_eq!(i128::from(balance_cents.0), base + in_flight, "card{a}");
            assert_eq!(balance(&mut client).await, balance_cents.0, "card{a}");
        }
    }
    // The audit log verifies, from a node that lived.
    let key = dir.path().join("n1").join("audit.key");
    let (paths, bank) = nodes.remove(0);
    bank.signal("TERM");
    assert!(bank.wait(), "SIGTERM exits 0");
    audit_verify(&url, &paths, &key);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_through_one_node_closes_idle_sessions_on_every_node_within_a_second() {
    let cluster = pg_harness::Cluster::start().unwrap();
    cluster.create_database("bank").unwrap();
    let url = cluster.url("bank");
    let dir = temp();
    let nodes: Vec<(Paths, BankProcess)> = ["a", "b"]
        .iter()
        .map(|name| node(dir.path(), name, &url))
        .collect();
    let auth = load_auth_file(&nodes[0].0.auth).unwrap();
    let card = CardSecret::random(&mut OsRng);
    let mut opener = Client::connect(&nodes[0].1.addr, &auth).await.unwrap();
    open_card_account(&mut opener, "ada", 10_000, card.clone()).await;
    drop(opener);
    // An authenticated session on each node, then idle: nothing more is sent on them.
    let mut idle = Vec::new();
    for (_, bank) in &nodes {
        let (client, _) = card_session(&bank.addr, &auth, "ada", &card).await;
        idle.push(closed_when(client));
    }
    // Long enough for a node that ends sessions only at their next request to show it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let asked = Instant::now();
    revoke_through(
        &url,
        &nodes[0].0,
        &dir.path().join("bank.key"),
        auth.terminal_id.as_str(),
    );
    let revoked = Instant::now();
    eprintln!("terminal revoke through node a took {:?}", revoked - asked);
    for (name, waiting) in ["a (the revoking node)", "b (another node)"]
        .iter()
        .zip(idle)
    {
        let (at, code) = waiting.await.unwrap();
        let after = at.saturating_duration_since(revoked);
        eprintln!(
            "session on node {name} closed {after:?} after the revocation returned ({:?} after it was asked)",
            at - asked
        );
        assert_eq!(code, Some(protocol::close::FAILURE), "node {name}");
        assert!(
            after <= Duration::from_secs(1),
            "node {name}: closed after {after:?}"
        );
    }
    // A new handshake on either node fails.
    for (_, bank) in &nodes {
        assert!(Client::connect(&bank.addr, &auth).await.is_err());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openings_bucket_is_shared_by_the_nodes() {
    let cluster = pg_harness::Cluster::start().unwrap();
    cluster.create_database("bank").unwrap();
    let url = cluster.url("bank");
    let dir = temp();
    // A burst of 3, then one a minute: no token comes back during the test.
    let rate = ["--openings-burst", "3", "--openings-per-minute", "1"];
    let nodes: Vec<(Paths, BankProcess)> = ["a", "b"]
        .iter()
        .map(|name| start_node(dir.path(), name, &url, &rate))
        .collect();
    let auth = load_auth_file(&nodes[0].0.auth).unwrap();
    let open_on = |node: usize, name: &'static str| {
        let (addr, auth) = (nodes[node].1.addr.clone(), auth.clone());
        async move {
            let mut client = Client::connect(&addr, &auth).await.unwrap();
            client
                .call(&Request::OpenCardAccount {
                    username: username(name),
                    initial_cents: Cents(1_000),
                    txid: txid(),
                    card: CardSecret::random(&mut OsRng),
                })
                .await
                .unwrap()
        }
    };
    for name in ["one", "two", "three"] {
        let reply = open_on(0, name).await;
        assert!(
            matches!(reply, Response::AccountOpened { .. }),
            "{name}: {reply:?}"
        );
    }
    // The fourth, through the other node, finds the bucket empty.
    assert_eq!(open_on(1, "four").await, error(ErrorCode::Busy));
    assert_eq!(open_on(0, "five").await, error(ErrorCode::Busy));
}

/// The overview `console` is shown.
async fn overview(console: &mut Client) -> protocol::console::Overview {
    match console.call(&Request::ConsoleOverview {}).await.unwrap() {
        Response::Overview(overview) => *overview,
        other => panic!("expected an overview, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_of_any_node_lists_the_live_sessions_of_every_node() {
    const OP_PASSWORD: &str = "operator password 1";
    let cluster = pg_harness::Cluster::start().unwrap();
    cluster.create_database("bank").unwrap();
    let url = cluster.url("bank");
    let dir = temp();
    // Two banks in this process on one database, as two nodes.
    let node_config = |name: &str| {
        let home = dir.path().join(name);
        std::fs::create_dir_all(&home).unwrap();
        let mut config = config(&home);
        config.storage = bank_server::store::Storage::Postgres {
            url: bank_server::store::DatabaseUrl(url.clone()),
            ca_file: None,
        };
        config.node_name = bank_server::node::NodeName::new(name).unwrap();
        config.bank_key_file = dir.path().join("bank.key");
        config.auth_file = dir.path().join("bank.auth");
        config
    };
    let a = TestBank::start(node_config("a")).await;
    let b = TestBank::start(node_config("b")).await;
    // A customer logged in on a; an operator's console on b.
    let _alice = registered(&a, "alice").await;
    // (The PostgreSQL driver blocks: not on a thread that drives tasks.)
    let on_b = b.bank.clone();
    let terminal = tokio::task::spawn_blocking(move || {
        bank_server::admin::add_operator(on_b.ledger(), &TEST_ARGON2, "ops", OP_PASSWORD)
    })
    .await
    .unwrap()
    .unwrap();
    let mut console = Client::connect(&b.addr, &b.creds(&terminal.id, &terminal.psk))
        .await
        .unwrap();
    let login = Request::OperatorLogin {
        username: username("ops"),
        password: protocol::Password::new(OP_PASSWORD).unwrap(),
    };
    assert!(matches!(
        console.call(&login).await.unwrap(),
        Response::OperatorWelcome { .. }
    ));
    // Within a second or so (a node publishes a change within 250 ms), b lists both.
    let listed = |o: &protocol::console::Overview| {
        let mut seen: Vec<(String, String, Option<String>)> = o
            .sessions
            .iter()
            .map(|s| (s.node.clone(), s.terminal.to_string(), s.user.clone()))
            .collect();
        seen.sort();
        seen
    };
    let want = vec![
        (
            "a".to_owned(),
            a.auth.terminal_id.to_string(),
            Some("alice".to_owned()),
        ),
        (
            "b".to_owned(),
            terminal.id.to_string(),
            Some("ops".to_owned()),
        ),
    ];
    let started = Instant::now();
    let mut seen = overview(&mut console).await;
    while listed(&seen) != want {
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "b's console lists {:?}",
            listed(&seen)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        seen = overview(&mut console).await;
    }
    eprintln!(
        "node a's session listed on node b after {:?}",
        started.elapsed()
    );
    assert_eq!(seen.sessions_total, 2);
    // A dead node's row (its last word 60 s old) is neither listed nor kept: brought back to
    // life after the next publication, there is nothing to bring back.
    cluster
        .psql(
            "bank",
            "INSERT INTO node_sessions VALUES ('ghost', 'x', 7, '[]', \
             (extract(epoch FROM clock_timestamp()) * 1000)::bigint - 60000)",
        )
        .unwrap();
    assert_eq!(
        overview(&mut console).await.sessions_total,
        2,
        "a dead node counts"
    );
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    cluster
        .psql(
            "bank",
            "UPDATE node_sessions SET updated_ms = \
             (extract(epoch FROM clock_timestamp()) * 1000)::bigint WHERE node = 'ghost'",
        )
        .unwrap();
    assert_eq!(
        overview(&mut console).await.sessions_total,
        2,
        "a dead node's row is kept"
    );
    // A node that stops withdraws its sessions at once.
    a.stop().await;
    let after = overview(&mut console).await;
    assert_eq!((after.sessions_total, after.sessions.len()), (1, 1));
    assert_eq!(after.sessions[0].node, "b");
    b.stop().await;
}

/// Polls `/healthz` of `addr` (every 50 ms, at most `within`) until it answers `status`;
/// how long that took.
async fn health_becomes(addr: &str, status: &str, within: Duration) -> Duration {
    let began = Instant::now();
    loop {
        let (line, body) = http_get(addr, "/healthz").await;
        if line.contains(status) {
            eprintln!("/healthz {line:?} {body:?} after {:?}", began.elapsed());
            return began.elapsed();
        }
        assert!(
            began.elapsed() < within,
            "/healthz still {line:?} {body:?} after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_out_of_reach_shows_in_healthz_and_the_node_heals_when_it_is_back() {
    let mut cluster = pg_harness::Cluster::start().unwrap();
    cluster.create_database("bank").unwrap();
    let url = cluster.url("bank");
    let dir = temp();
    let (paths, bank) = node(dir.path(), "n1", &url);
    let auth = load_auth_file(&paths.auth).unwrap();
    let card = CardSecret::random(&mut OsRng);
    let mut opener = Client::connect(&bank.addr, &auth).await.unwrap();
    open_card_account(&mut opener, "ada", 1_000, card.clone()).await;
    drop(opener);
    health_becomes(&bank.addr, "200", Duration::from_secs(1)).await;

    // The database goes away: /healthz says so within a second, and the node lets nobody in
    // (a handshake needs the terminal's record, a login the customer's): a generic refusal,
    // nothing applied, the node still running.
    cluster.stop().unwrap();
    let noticed = health_becomes(&bank.addr, "503", Duration::from_secs(3)).await;
    assert!(
        noticed < Duration::from_secs(1),
        "noticed after {noticed:?}"
    );
    let (_, body) = http_get(&bank.addr, "/healthz").await;
    assert_eq!(body, "database unreachable\n");
    if let Ok(mut c) = Client::connect(&bank.addr, &auth).await {
        let login = Request::CardLogin {
            username: username("ada"),
            card: card.clone(),
        };
        let answer = c.call(&login).await.unwrap();
        assert_eq!(
            answer,
            error(ErrorCode::Internal),
            "no login without the database"
        );
    }
    let deposit = deposit_req(2_500);

    // It comes back: /healthz heals by itself, and a deposit, resent under its transaction id
    // until a connection of the pool works again, is applied once.
    cluster.start_again().unwrap();
    let healed = health_becomes(&bank.addr, "200", Duration::from_secs(5)).await;
    eprintln!("healed {healed:?} after the database came back");
    let mut balance_cents = None;
    for _ in 0..10 {
        let Ok(mut c) = Client::connect(&bank.addr, &auth).await else {
            continue;
        };
        let login = Request::CardLogin {
            username: username("ada"),
            card: card.clone(),
        };
        if !matches!(c.call(&login).await, Ok(Response::Welcome { .. })) {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        for _ in 0..2 {
            c.call(&deposit).await.unwrap();
        }
        balance_cents = Some(balance(&mut c).await);
        break;
    }
    assert_eq!(
        balance_cents,
        Some(3_500),
        "applied once, after the database came back"
    );
    bank.signal("TERM");
    assert!(bank.wait(), "the node never stopped; SIGTERM exits 0");
}

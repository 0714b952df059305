//! Two bank nodes on one PostgreSQL database behind HAProxy (the repo's `deploy/haproxy.cfg`,
//! as the README documents it): the web ATM in headless Chromium, opened at the balancer,
//! deposits; the node that served it is frozen, a second deposit is sent to it, and it is
//! killed (`kill -9`); the same page reconnects through the balancer to the other node, its
//! session and balance intact, resends the deposit in flight (applied once) and deposits
//! again; the total is exact, and the first deposit's txid replayed through the survivor is
//! answered, not applied.
//!
//! Needs what the other end-to-end tests need (the release bundle, chromedriver, Chromium),
//! PostgreSQL's server binaries and HAProxy (`cargo xtask setup` installs both), so it is
//! ignored in a plain `cargo test`; `cargo xtask test` runs it.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use atm_client::{load_auth_file, Client as AtmClient};
use e2e::nodes::{bank_server_bin, free_port, Balancer, BankNode, NodeFlags};
use e2e::{
    browser, click, dist_dir, enroll_by_link, register, shot, start_chromedriver, type_into,
    wait_text, Res,
};
use fantoccini::Client;
use protocol::{HistoryEntry, Password, Request, Response, TxKind, Username};

const USER: &str = "ada";
const PASSWORD: &str = "correct horse battery";
const FULL_NAME: &str = "Ada Lovelace";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the release web bundle, chromedriver, PostgreSQL and HAProxy; run by `cargo xtask test`"]
async fn a_deposit_survives_the_loss_of_the_node_it_was_on() -> Res {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();
    assert!(
        dist_dir().join("index.html").is_file(),
        "no web bundle in {}: run `trunk build --release` (cargo xtask test does)",
        dist_dir().display()
    );
    let bin = tokio::task::spawn_blocking(bank_server_bin).await??;
    let started = Instant::now();
    let cluster = tokio::task::spawn_blocking(pg_harness::Cluster::start).await??;
    cluster.create_database("bank")?;
    eprintln!("PostgreSQL up in {:?}", started.elapsed());
    let port = free_port()?;
    let flags = NodeFlags {
        bin,
        database_url: cluster.url("bank"),
        bank_key: dir.join("bank.key"),
        public_url: format!("http://127.0.0.1:{port}"),
        web_root: dist_dir(),
    };
    // The first node creates the bank (and its key file); the second joins it.
    let first = flags.start(dir, "node1")?;
    let second = flags.start(dir, "node2")?;
    assert_eq!(
        first.stdout_lines().first().map(String::as_str),
        Some("created")
    );
    let balancer = Balancer::start(port, &[&first.addr, &second.addr])?;
    let base = format!("http://{}", balancer.addr);
    let link = flags.admin(
        dir,
        "node1",
        &[
            "terminal",
            "add",
            "--web",
            "--name",
            "e2e behind the balancer",
        ],
    )?;
    let link = link.trim().to_owned();
    assert!(
        link.starts_with(&base),
        "the link names the balancer: {link}"
    );

    let driver = start_chromedriver().await?;
    let c = browser(&driver, &dir.join("chrome"), 1280, 900).await?;
    let mut nodes = vec![first, second];
    let result = scenario(&c, &link, &mut nodes, &balancer, dir).await;
    if result.is_err() {
        let _ = shot(&c, "failure-balancer").await;
        eprintln!("haproxy log: {:#?}", balancer.log_lines());
        for node in &nodes {
            eprintln!("{} stderr: {:#?}", node.name, node.stderr_lines());
        }
    }
    let _ = c.close().await;
    drop(driver);
    result
}

async fn scenario(
    c: &Client,
    link: &str,
    nodes: &mut Vec<BankNode>,
    balancer: &Balancer,
    dir: &Path,
) -> Res {
    enroll_by_link(c, link, "#link-state[data-state='Up']").await?;
    register(c, USER, FULL_NAME, PASSWORD).await?;
    deposit(c, "25.00", "25.00").await?;

    // The node that served the deposit printed its line (one JSON line per transaction).
    let served = node_that_printed(nodes, 1).await?;
    let gone = nodes.remove(served);
    eprintln!("the deposit was on {} ({})", gone.name, gone.addr);
    let gone_name = gone.name.clone();
    watch_link(c).await?;
    // A deposit in flight when its node dies: the node is frozen first, so it never reads it.
    gone.signal("STOP")?;
    type_into(c, "deposit-amount", "10.00").await?;
    click(c, "deposit-submit").await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let killed_ms = unix_ms();
    let killed = Instant::now();
    gone.kill()?;

    // The same page: the link drops, comes back through the balancer to the other node,
    // logs in again and resends the deposit (same txid), applied once.
    let (down_ms, up_ms) = wait_reconnect(c, killed_ms).await?;
    eprintln!(
        "reconnect: link down {} ms after the kill, up again {} ms after it",
        down_ms.saturating_sub(killed_ms),
        up_ms.saturating_sub(killed_ms)
    );
    wait_text(c, "#balance", "$35.00").await?;
    wait_text(
        c,
        "#notice p",
        "Deposited 10.00. Your balance is now 35.00.",
    )
    .await?;
    eprintln!(
        "the deposit in flight at the kill answered {:?} after it",
        killed.elapsed()
    );
    wait_text(c, "#greeting", &format!("Hello, {FULL_NAME}")).await?;
    deposit(c, "15.00", "50.00").await?;
    assert_eq!(
        node_that_printed(nodes, 2).await?,
        0,
        "the survivor took both"
    );
    shot(c, "balancer-after-failover").await?;

    // Exact, as the database has it: through the balancer, a native ATM (the bank's first
    // terminal) logs in and reads three deposits, 50.00 in all.
    let auth = load_auth_file(dir.join("node1").join("bank.auth"))?;
    let mut atm = AtmClient::connect(&balancer.addr, &auth).await?;
    let login = Request::Login {
        username: Username::new(USER).ok_or("username")?,
        password: Password::new(PASSWORD).ok_or("password")?,
    };
    let Response::Welcome { balance_cents, .. } = atm.call(&login).await? else {
        return Err("the native login was refused".into());
    };
    assert_eq!(balance_cents.0, 5_000, "the total");
    let entries = history(&mut atm).await?;
    let mut deposits: Vec<u64> = entries
        .iter()
        .filter(|e| e.kind == TxKind::Deposit)
        .map(|e| e.amount_cents.0)
        .collect();
    deposits.sort_unstable();
    assert_eq!(deposits, [1_000, 1_500, 2_500], "{entries:?}");
    assert_eq!(entries.len(), 3, "{entries:?}");
    // The first deposit, committed by the node now dead, sent again with its txid through
    // the survivor: answered as it was, not applied again.
    let first = entries
        .iter()
        .find(|e| e.amount_cents.0 == 2_500)
        .ok_or("the first deposit")?;
    let replay = Request::Deposit {
        txid: first.txid,
        amount_cents: first.amount_cents,
    };
    match atm.call(&replay).await? {
        Response::Deposited { balance_cents, .. } => {
            assert_eq!(balance_cents.0, 2_500, "the first answer, again");
        }
        other => return Err(format!("the replay was answered {other:?}").into()),
    }
    assert_eq!(history(&mut atm).await?.len(), 3, "the replay was applied");
    // The balancer's health checks took the dead node out, and only it.
    let down = |name: &str| {
        let line = format!("Server banks/{name} is DOWN");
        balancer.log_lines().iter().any(|l| l.contains(&line))
    };
    for _ in 0..100 {
        if down(&gone_name) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(down(&gone_name), "{gone_name} never marked down");
    assert!(!down(&nodes[0].name), "the survivor was marked down");
    let ws: Vec<String> = balancer
        .log_lines()
        .into_iter()
        .filter(|l| l.contains("GET /ws"))
        .collect();
    eprintln!("haproxy, the WebSockets: {ws:#?}");
    Ok(())
}

/// The account's history through a native ATM.
async fn history(atm: &mut AtmClient) -> Res<Vec<HistoryEntry>> {
    match atm.call(&Request::History { limit: 10 }).await? {
        Response::History { entries } => Ok(entries),
        other => Err(format!("history: {other:?}").into()),
    }
}

/// Deposits `amount` and waits for the balance to read `balance`.
async fn deposit(c: &Client, amount: &str, balance: &str) -> Res {
    type_into(c, "deposit-amount", amount).await?;
    click(c, "deposit-submit").await?;
    wait_text(c, "#balance", &format!("${balance}")).await?;
    wait_text(
        c,
        "#notice p",
        &format!("Deposited {amount}. Your balance is now {balance}."),
    )
    .await
}

/// Which of `nodes` has printed `n` deposit lines for the user, when exactly one has (the
/// others none); waits up to 10 s.
async fn node_that_printed(nodes: &[BankNode], n: usize) -> Res<usize> {
    let want = format!("{{\"account\":\"{USER}\",\"deposit\":");
    let mut counts = Vec::new();
    for _ in 0..100 {
        counts = nodes
            .iter()
            .map(|node| {
                node.stdout_lines()
                    .iter()
                    .filter(|l| l.starts_with(&want))
                    .count()
            })
            .collect();
        let with: Vec<usize> = (0..nodes.len()).filter(|&i| counts[i] > 0).collect();
        if let [one] = with[..] {
            if counts[one] == n {
                return Ok(one);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!("deposit lines per node: {counts:?}").into())
}

/// Starts noting, in the page, each change of the link's state with the time (Unix ms).
async fn watch_link(c: &Client) -> Res {
    c.execute(
        "window.__e2eLink = [];\
         const note = () => {\
           const el = document.getElementById('link-state');\
           const state = el ? el.dataset.state : 'none';\
           const log = window.__e2eLink;\
           if (!log.length || log[log.length - 1][1] !== state) log.push([Date.now(), state]);\
         };\
         note();\
         new MutationObserver(note).observe(document.body,\
           {subtree: true, childList: true, attributes: true, attributeFilter: ['data-state']});",
        vec![],
    )
    .await?;
    Ok(())
}

/// Waits (up to 30 s) until the link, after `since`, went down and came up again: the times
/// (Unix ms) it first left `Up` and first came back.
async fn wait_reconnect(c: &Client, since: u64) -> Res<(u64, u64)> {
    let mut log = Vec::new();
    for _ in 0..300 {
        let seen = c.execute("return window.__e2eLink || [];", vec![]).await?;
        log = serde_json::from_value::<Vec<(u64, String)>>(seen)?;
        let down = log
            .iter()
            .position(|(t, state)| *t >= since && state != "Up");
        if let Some(down) = down {
            if let Some((up, _)) = log[down..].iter().find(|(_, state)| state == "Up") {
                return Ok((log[down].0, *up));
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!("the link did not come back: {log:?}").into())
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

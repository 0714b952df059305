//! Transport limits: the session cap, idle and handshake timeouts, the Origin allow-list, and
//! a login flood that cannot starve transactions.

mod common;

use std::time::Duration;

use atm_client::{Client, Connection};
use common::*;
use protocol::{ErrorCode, Response};

/// Retries `attempt` until it succeeds (bounded): the bank frees resources asynchronously.
async fn eventually<T, E>(mut attempt: impl AsyncFnMut() -> Result<T, E>) -> T {
    for _ in 0..500 {
        if let Ok(value) = attempt().await {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("never succeeded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_cap_refuses_extra_connections_until_one_ends() {
    let dir = temp();
    let mut config = config(dir.path());
    config.max_sessions = 2;
    let bank = TestBank::start(config).await;
    let first = bank.client().await;
    let mut second = bank.client().await;
    assert!(
        Connection::open(&bank.addr).await.is_err(),
        "a third session is refused"
    );
    assert_eq!(
        balance_or_error(&mut second).await,
        error(ErrorCode::NotLoggedIn)
    );
    first.close().await.unwrap();
    let mut third = eventually(async || {
        Client::connect(&bank.addr, &bank.auth.terminal_id, &bank.auth.psk).await
    })
    .await;
    assert_eq!(
        balance_or_error(&mut third).await,
        error(ErrorCode::NotLoggedIn)
    );
    bank.stop().await;
}

async fn balance_or_error(client: &mut Client) -> Response {
    client.call(&protocol::Request::Balance {}).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_half_open_connections_are_closed() {
    let dir = temp();
    let mut config = config(dir.path());
    config.idle_timeout = Duration::from_secs(1);
    config.handshake_timeout = Duration::from_secs(1);
    let bank = TestBank::start(config).await;

    // Silent before the handshake.
    let mut silent = bank.raw().await;
    assert_closed(&mut silent).await;
    // Stops half way through the handshake.
    let mut half = bank.raw().await;
    let (_, hello) = protocol::client::start(
        &protocol::Config::default(),
        bank.auth.terminal_id.clone(),
        &bank.auth.psk,
        &mut rand_core::OsRng,
        atm_client::now_ms(),
    )
    .unwrap();
    half.send_text(hello).await.unwrap();
    let _server_hello = half.recv_text().await.unwrap();
    assert_closed(&mut half).await;
    // Idle after the handshake.
    let mut idle = bank.client().await;
    assert_closed(idle.conn()).await;
    // Two handshake timeouts are protocol errors; an idle session is not.
    assert_eq!(
        bank.lines()
            .iter()
            .filter(|l| *l == "protocol_error")
            .count(),
        2
    );
    // An active client is still served.
    let mut alice = registered(&bank, "alice").await;
    assert!(matches!(
        alice.call(&deposit_req(100)).await.unwrap(),
        Response::Deposited { .. }
    ));
    bank.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browsers_from_foreign_origins_are_refused() {
    let dir = temp();
    let mut config = config(dir.path());
    config.allowed_origins = vec!["http://localhost:8080".to_owned()];
    let bank = TestBank::start(config).await;
    assert!(
        Connection::open_with_origin(&bank.addr, "http://evil.example")
            .await
            .is_err()
    );
    assert!(Connection::open_with_origin(&bank.addr, "null")
        .await
        .is_err());
    let own = format!("http://{}", bank.addr);
    let conn = Connection::open_with_origin(&bank.addr, &own)
        .await
        .unwrap();
    let mut client = Client::handshake(conn, &bank.auth.terminal_id, &bank.auth.psk)
        .await
        .unwrap();
    assert_eq!(
        balance_or_error(&mut client).await,
        error(ErrorCode::NotLoggedIn)
    );
    let listed = Connection::open_with_origin(&bank.addr, "http://localhost:8080")
        .await
        .unwrap();
    listed.close().await.unwrap();
    bank.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_flood_does_not_starve_transactions() {
    let dir = temp();
    let mut config = config(dir.path());
    // Real OWASP cost, one worker, a short wait: the flood queues or is told Busy.
    config.argon2 = bank_server::Argon2Params::OWASP;
    config.hash_workers = 1;
    config.hash_wait = Duration::from_millis(50);
    config.terminal_backoff.free_failures = 10_000;
    let bank = TestBank::start(config).await;
    let mut alice = registered(&bank, "alice").await;

    let mut flood = Vec::new();
    for i in 0..16 {
        let mut client = bank.client().await;
        flood.push(tokio::spawn(async move {
            let mut replies = Vec::new();
            for j in 0..3 {
                replies.push(
                    client
                        .call(&login_req(&format!("nobody{i}x{j}"), "wrong horse"))
                        .await
                        .unwrap(),
                );
            }
            replies
        }));
    }
    // Transactions go through while the flood runs.
    for _ in 0..20 {
        let reply = alice.call(&deposit_req(1)).await.unwrap();
        assert!(matches!(reply, Response::Deposited { .. }), "{reply:?}");
    }
    let mut busy = 0;
    for task in flood {
        for reply in task.await.unwrap() {
            match reply {
                Response::Error {
                    code: ErrorCode::AuthFailed,
                } => {}
                Response::Error {
                    code: ErrorCode::Busy,
                } => busy += 1,
                other => panic!("unexpected reply {other:?}"),
            }
        }
    }
    eprintln!("{busy} of 48 flooding logins were told Busy");
    assert_eq!(balance(&mut alice).await, 20);
    bank.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_sent_http_request_does_not_block_shutdown() {
    use tokio::io::AsyncWriteExt;
    let dir = temp();
    let mut config = config(dir.path());
    config.shutdown_grace = Duration::from_millis(200);
    let bank = TestBank::start(config).await;
    let mut slow = tokio::net::TcpStream::connect(&bank.addr).await.unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nHost: bank\r\n")
        .await
        .unwrap();
    let mut session = bank.client().await;
    assert_eq!(
        balance_or_error(&mut session).await,
        error(ErrorCode::NotLoggedIn)
    );
    // Stops (the harness bounds the wait), closing the session cleanly.
    bank.stop().await;
    assert_closed(session.conn()).await;
    drop(slow);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_cannot_hold_every_slot() {
    let dir = temp();
    let mut config = config(dir.path());
    config.max_connections = 2;
    config.idle_timeout = Duration::from_secs(1);
    config.handshake_timeout = Duration::from_secs(1);
    let bank = TestBank::start(config).await;
    // Two connections that never send a byte take every slot...
    let _silent: Vec<_> = vec![
        tokio::net::TcpStream::connect(&bank.addr).await.unwrap(),
        tokio::net::TcpStream::connect(&bank.addr).await.unwrap(),
    ];
    // ...until the bank drops them, and a real client gets in.
    let mut client = bank.client().await;
    assert_eq!(
        balance_or_error(&mut client).await,
        error(ErrorCode::NotLoggedIn)
    );
    client.close().await.unwrap();
    bank.stop().await;
}

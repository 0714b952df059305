//! Transport limits: the session cap, idle and handshake timeouts, the Origin allow-list, and
//! a login flood that cannot starve transactions.

mod common;

use std::time::Duration;

use std::time::Instant;

use atm_client::{Client, ClientError, Connection};
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
        matches!(
            Connection::open(&bank.addr).await,
            Err(ClientError::Refused(503))
        ),
        "a third session is refused with 503"
    );
    assert_eq!(
        balance_or_error(&mut second).await,
        error(ErrorCode::NotLoggedIn)
    );
    first.close().await.unwrap();
    let mut third = eventually(async || Client::connect(&bank.addr, &bank.auth).await).await;
    assert_eq!(
        balance_or_error(&mut third).await,
        error(ErrorCode::NotLoggedIn)
    );
    bank.stop().await;
}

async fn balance_or_error(client: &mut Client) -> Response {
    client.call(&protocol::Request::Balance {}).await.unwrap()
}

/// Close times are checked against the configured 1 s (a bank that closed after 29 s, or at
/// once, fails): a failure closes with 1008, an idle session with 1000.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_half_open_connections_are_closed_on_time() {
    const EARLIEST: Duration = Duration::from_millis(900);
    const LATEST: Duration = Duration::from_millis(2500);
    let dir = temp();
    let mut config = config(dir.path());
    config.idle_timeout = Duration::from_secs(1);
    config.handshake_timeout = Duration::from_secs(1);
    let bank = TestBank::start(config).await;

    // Silent before the handshake.
    let start = Instant::now();
    let mut silent = bank.raw().await;
    assert_closed_between(&mut silent, 1008, start, EARLIEST, LATEST).await;
    // Stops half way through the handshake.
    let start = Instant::now();
    let mut half = bank.raw().await;
    let (_, hello) = protocol::client::start(
        &protocol::Config::default(),
        bank.auth.terminal_id.clone(),
        &bank.auth.psk,
        &bank.auth.bank,
        &mut rand_core::OsRng,
        atm_client::now_ms(),
    )
    .unwrap();
    half.send_text(hello).await.unwrap();
    let _server_hello = half.recv_text().await.unwrap();
    assert_closed_between(&mut half, 1008, start, EARLIEST, LATEST).await;
    // Idle after the handshake.
    let mut idle = bank.client().await;
    let start = Instant::now();
    assert_closed_between(idle.conn(), 1000, start, EARLIEST, LATEST).await;
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
    for foreign in ["http://evil.example", "null"] {
        assert!(
            matches!(
                Connection::open_with_origin(&bank.addr, foreign).await,
                Err(ClientError::Refused(403))
            ),
            "{foreign} is refused with 403"
        );
    }
    let own = format!("http://{}", bank.addr);
    let conn = Connection::open_with_origin(&bank.addr, &own)
        .await
        .unwrap();
    let mut client = Client::handshake(conn, &bank.auth).await.unwrap();
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

/// A login flood on a bank with one password worker: the logins beyond what the worker can
/// take are told `busy` (the bounded pool), and deposits made while the flood is still running
/// all go through, none taking anywhere near the flood's length (a bank whose hashing held the
/// runtime or the blocking pool would make them wait for the flood).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_flood_does_not_starve_transactions() {
    const FLOODERS: usize = 16;
    const FLOOD: Duration = Duration::from_secs(3);
    let dir = temp();
    let mut config = config(dir.path());
    // Real OWASP cost, one worker, a short wait: the flood queues or is told Busy.
    config.argon2 = bank_server::Argon2Params::OWASP;
    config.hash_workers = 1;
    config.hash_wait = Duration::from_millis(50);
    config.terminal_backoff.free_failures = 1_000_000;
    let bank = TestBank::start(config).await;
    let mut alice = registered(&bank, "alice").await;

    let flood_end = Instant::now() + FLOOD;
    let mut flood = Vec::new();
    for i in 0..FLOODERS {
        let mut client = bank.client().await;
        flood.push(tokio::spawn(async move {
            let (mut failed, mut busy) = (0u32, 0u32);
            let mut j = 0;
            while Instant::now() < flood_end {
                j += 1;
                match client
                    .call(&login_req(&format!("nobody{i}x{j}"), "wrong horse"))
                    .await
                    .unwrap()
                {
                    Response::Error {
                        code: ErrorCode::AuthFailed,
                    } => failed += 1,
                    Response::Error {
                        code: ErrorCode::Busy,
                    } => busy += 1,
                    other => panic!("unexpected reply {other:?}"),
                }
            }
            (failed, busy)
        }));
    }
    // Deposits while the flood runs, each timed.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut slowest = Duration::ZERO;
    let mut deposits = 0;
    while deposits < 20 {
        let sent = Instant::now();
        let reply = alice.call(&deposit_req(1)).await.unwrap();
        assert!(matches!(reply, Response::Deposited { .. }), "{reply:?}");
        slowest = slowest.max(sent.elapsed());
        deposits += 1;
    }
    let deposits_done = Instant::now();
    assert!(
        deposits_done < flood_end,
        "20 deposits should finish while the {FLOOD:?} flood still runs"
    );
    let (mut failed, mut busy) = (0, 0);
    for task in flood {
        let (f, b) = task.await.unwrap();
        failed += f;
        busy += b;
    }
    eprintln!("flood: {failed} checked, {busy} busy; slowest deposit {slowest:?}");
    assert!(busy > 0, "logins beyond the one worker are told busy");
    assert!(failed > 0, "the worker does check logins");
    assert!(
        slowest < Duration::from_secs(1),
        "a deposit during the flood took {slowest:?}"
    );
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
    assert_close_code(session.conn(), 1001).await;
    drop(slow);
}

/// Reads from a raw TCP connection until the bank closes it; how long that took from `since`.
async fn closed_after(
    stream: &mut tokio::net::TcpStream,
    since: Instant,
    limit: Duration,
) -> Duration {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 1024];
    tokio::time::timeout(limit, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return since.elapsed(),
                Ok(_) => {}
            }
        }
    })
    .await
    .expect("the bank closes the connection in time")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_cannot_hold_every_slot() {
    let dir = temp();
    let mut config = config(dir.path());
    config.max_connections = 2;
    config.request_head_timeout = Duration::from_secs(1);
    let bank = TestBank::start(config).await;
    // Two connections that never send a byte take every slot...
    let start = Instant::now();
    let mut silent = vec![
        tokio::net::TcpStream::connect(&bank.addr).await.unwrap(),
        tokio::net::TcpStream::connect(&bank.addr).await.unwrap(),
    ];
    // ...until the bank drops them at the request-head deadline, and a real client gets in.
    let mut client = bank.client().await;
    assert_eq!(
        balance_or_error(&mut client).await,
        error(ErrorCode::NotLoggedIn)
    );
    for stream in &mut silent {
        let took = closed_after(stream, start, Duration::from_secs(3)).await;
        assert!(took >= Duration::from_millis(900), "closed after {took:?}");
    }
    // The web bank does not report them as protocol errors (browsers open spare connections).
    assert!(!bank.lines().iter().any(|l| l == "protocol_error"));
    client.close().await.unwrap();
    bank.stop().await;
}

/// A request head sent one byte at a time is cut at the deadline, however steadily the bytes
/// come; the BIBIFI bank's setting reports it as `protocol_error`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_head_sent_slowly_is_cut_at_the_deadline() {
    use tokio::io::AsyncWriteExt;
    let dir = temp();
    let mut config = config(dir.path());
    config.request_head_timeout = Duration::from_secs(1);
    config.stalled_connection_is_protocol_error = true;
    let bank = TestBank::start(config).await;
    let start = Instant::now();
    let stream = tokio::net::TcpStream::connect(&bank.addr).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let dribble = tokio::spawn(async move {
        let head =
            b"GET /ws HTTP/1.1\r\nHost: bank\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n";
        for byte in head {
            if write.write_all(&[*byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let took = tokio::time::timeout(Duration::from_secs(3), async {
        use tokio::io::AsyncReadExt;
        let mut buf = [0u8; 256];
        while matches!(read.read(&mut buf).await, Ok(n) if n > 0) {}
        start.elapsed()
    })
    .await
    .expect("cut within the deadline");
    assert!(
        (Duration::from_millis(900)..Duration::from_millis(2500)).contains(&took),
        "cut after {took:?}"
    );
    dribble.abort();
    assert_eq!(bank.lines(), ["created", "protocol_error"]);
    bank.stop().await;
}

/// Slowloris: 64 connections sending their request head at one byte per second from one
/// address, against a bank capped at 64 connections. The per-address cap keeps room for
/// others, the head deadline cuts the slow ones, and an honest ATM from another address
/// finishes its whole exchange within the atm's 10 s while `/healthz` answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_cannot_lock_out_an_honest_atm() {
    use tokio::io::AsyncWriteExt;
    const SLOW: usize = 64;
    let dir = temp();
    let mut config = config(dir.path());
    config.max_connections = 64;
    config.max_connections_per_address = 32;
    let bank = TestBank::start(config).await;
    let bank_addr: std::net::SocketAddr = bank.addr.parse().unwrap();
    let start = Instant::now();
    let mut slow = Vec::new();
    for _ in 0..SLOW {
        // 127.0.0.2 is loopback too: the attacker's address, apart from the ATM's.
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        let stream = socket.connect(bank_addr).await.unwrap();
        let (mut read, mut write) = stream.into_split();
        let writer = tokio::spawn(async move {
            let head = b"GET /ws HTTP/1.1\r\nHost: bank\r\nUpgrade: websocket\r\n";
            for byte in head.iter().take(15) {
                if write.write_all(&[*byte]).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
        slow.push(tokio::spawn(async move {
            use tokio::io::AsyncReadExt;
            let mut buf = [0u8; 256];
            while matches!(read.read(&mut buf).await, Ok(n) if n > 0) {}
            writer.abort();
            start.elapsed()
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let honest = tokio::time::timeout(Duration::from_secs(10), async {
        let mut alice = registered(&bank, "alice").await;
        let reply = alice.call(&deposit_req(12_345)).await.unwrap();
        assert!(matches!(reply, Response::Deposited { .. }), "{reply:?}");
        alice.close().await.unwrap();
        http_get(&bank.addr, "/healthz").await
    })
    .await
    .expect("the honest ATM and /healthz are served within 10 s");
    assert_eq!(honest, ("HTTP/1.1 200 OK".to_owned(), "ok\n".to_owned()));
    // Half of the slow connections were closed at once, the rest at the 10 s head deadline:
    // none of them lasted until its 15th byte.
    let mut cut_at_once = 0;
    for task in slow {
        let lasted = task.await.unwrap();
        assert!(
            lasted < Duration::from_millis(11_500),
            "a slow connection lasted {lasted:?}"
        );
        if lasted < Duration::from_secs(3) {
            cut_at_once += 1;
        } else {
            // The rest held their slot until the 10 s head deadline, not before.
            assert!(
                lasted >= Duration::from_millis(9_500),
                "a slow connection was cut after {lasted:?}, before the 10 s deadline"
            );
        }
    }
    assert_eq!(
        cut_at_once,
        SLOW - 32,
        "the per-address cap closes the excess at once"
    );
    bank.stop().await;
}

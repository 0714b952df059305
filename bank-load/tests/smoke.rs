//! Smoke test of the generator against a real in-process bank and echo floor on port 0: each
//! mode completes work and every balance adds up. Not a speed test.

use std::time::Duration;

use atm_client::load_auth_file;
use bank_load::{Mode, Options, Target};
use bank_server::{Argon2Params, Config, Output};

async fn bank(dir: &std::path::Path) -> (Target, tokio::sync::oneshot::Sender<()>) {
    let mut config = Config::new(
        dir.join("data"),
        dir.join("bank.auth"),
        dir.join("audit.key"),
    );
    config.web_root = dir.join("no-web-root");
    config.argon2 = Argon2Params {
        m_kib: 1024,
        t: 1,
        p: 1,
    };
    config.output = Output::memory().0;
    // As `bank-load` starts its bank: one terminal opens every load account (1000.00 each)
    // at once and deposits without pause.
    config.first_terminal = bank_server::ledger::DepositCeilings::NONE;
    config.openings = None;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let bank = tokio::task::spawn_blocking(move || bank_server::open(config))
        .await
        .unwrap()
        .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(bank_server::serve(listener, bank, async move {
        let _ = stopped.await;
    }));
    let auth = load_auth_file(dir.join("bank.auth")).unwrap();
    let target = Target { addr, creds: auth };
    (target, stop)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_mode_does_work_and_balances_add_up() {
    let dir = tempfile::tempdir().unwrap();
    let (target, stop) = bank(dir.path()).await;
    let second = Duration::from_secs(1);

    let tx = bank_load::run(&target, &Options::new(Mode::Transactions, 2, second, "tx"))
        .await
        .unwrap();
    assert!(tx.round_trips >= 1, "{tx:?}");
    assert!(tx.durable_txs >= 1, "{tx:?}");
    assert_eq!(
        (tx.balances_checked, tx.balance_mismatches, tx.errors),
        (2, 0, 0),
        "{tx:?}"
    );
    assert_eq!(tx.latency.count, tx.round_trips);

    for mode in [Mode::Handshakes, Mode::PasswordLogins] {
        let hs = bank_load::run(&target, &Options::new(mode, 2, second, mode.name()))
            .await
            .unwrap();
        assert!(hs.handshakes >= 1, "{hs:?}");
        assert_eq!(hs.balances_checked, hs.handshakes, "{hs:?}");
        assert_eq!((hs.balance_mismatches, hs.errors), (0, 0), "{hs:?}");
    }

    let idle = bank_load::run(&target, &Options::new(Mode::Idle, 3, second, "idle"))
        .await
        .unwrap();
    assert_eq!(
        (idle.balances_checked, idle.balance_mismatches, idle.errors),
        (3, 0, 0)
    );

    // Reusing account names is refused by the bank, and the generator says so.
    let again = bank_load::run(&target, &Options::new(Mode::Transactions, 1, second, "tx"))
        .await
        .unwrap();
    assert_eq!((again.errors, again.round_trips), (1, 0), "{again:?}");
    let _ = stop.send(());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_floor_echoes_record_sized_messages() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(bank_load::echo::serve(listener, async move {
        let _ = stopped.await;
    }));
    let target = Target::echo(addr);
    let echo = bank_load::run(
        &target,
        &Options::new(Mode::Echo, 2, Duration::from_secs(1), "echo"),
    )
    .await
    .unwrap();
    assert!(echo.round_trips >= 1, "{echo:?}");
    assert_eq!(echo.errors, 0);
    assert_eq!(echo.message_bytes, bank_load::load::record_len());
    assert!(echo.message_bytes > 100);
    let _ = stop.send(());
}

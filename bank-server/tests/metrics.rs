//! `/metrics` on its own listener: scraped from a running bank before and after a little load
//! through real WebSockets, its counters, gauges and histograms move as the load says; the
//! public listener does not serve it.
// The exposition's values are floats; the differences taken here are of small integers.
#![allow(clippy::float_arithmetic, clippy::float_cmp)]

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::*;
use protocol::{ErrorCode, Psk, Request, Response, TerminalId};
use rand_core::OsRng;

/// The samples of one scrape: series (name and labels, as written) to value.
struct Scrape(HashMap<String, f64>);

impl Scrape {
    async fn of(addr: &str) -> Self {
        let (status, body) = http_get(addr, "/metrics").await;
        assert!(status.contains(" 200 "), "{status}");
        assert!(
            body.trim_end().ends_with("# EOF"),
            "OpenMetrics ends so: {body}"
        );
        let samples = body
            .lines()
            .filter(|line| !line.starts_with('#') && !line.is_empty())
            .map(|line| {
                let (series, value) = line.rsplit_once(' ').expect("a sample line");
                (series.to_owned(), value.parse().expect("a number"))
            })
            .collect();
        Self(samples)
    }

    /// The value of `series`; 0 when it was not written yet (a label set never seen).
    fn get(&self, series: &str) -> f64 {
        self.0.get(series).copied().unwrap_or(0.0)
    }

    /// How much `series` moved from `before` to this scrape.
    fn moved(&self, before: &Self, series: &str) -> f64 {
        self.get(series) - before.get(series)
    }
}

async fn scrape_until(addr: &str, series: &str, value: f64) -> Scrape {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let scrape = Scrape::of(addr).await;
        if scrape.get(series) == value || tokio::time::Instant::now() > deadline {
            return scrape;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_counters_move_with_the_load_and_only_the_metrics_listener_serves_them() {
    let dir = temp();
    let bank = TestBank::in_dir(dir.path()).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics = listener.local_addr().unwrap().to_string();
    let serving = tokio::spawn(bank_server::serve_metrics(listener, bank.bank.clone()));

    let (status, _) = http_get(&bank.addr, "/metrics").await;
    assert!(status.contains(" 404 "), "the public listener: {status}");
    let (status, _) = http_get(&metrics, "/ws").await;
    assert!(
        status.contains(" 404 "),
        "the metrics listener serves /metrics only: {status}"
    );

    let before = Scrape::of(&metrics).await;
    assert_eq!(before.get("bank_storage_healthy"), 1.0);
    assert_eq!(before.get("bank_sessions"), 0.0);

    // Two sessions: each registers and deposits; one withdrawal is refused.
    let mut alice = registered(&bank, "alice").await;
    let mut bob = registered(&bank, "bob").await;
    for client in [&mut alice, &mut bob] {
        for cents in [100, 200] {
            let reply = client.call(&deposit_req(cents)).await.unwrap();
            assert!(matches!(reply, Response::Deposited { .. }), "{reply:?}");
        }
    }
    let reply = alice.call(&deposit_req(300)).await.unwrap();
    assert!(matches!(reply, Response::Deposited { .. }), "{reply:?}");
    let reply = bob.call(&withdraw_req(1_000_000)).await.unwrap();
    assert_eq!(reply, error(ErrorCode::InsufficientFunds));
    // A hello that is not one: the bank refuses the handshake.
    let mut garbage = bank.raw().await;
    garbage.send_text("not a hello").await.unwrap();
    assert_close_code(&mut garbage, protocol::close::FAILURE).await;
    // A terminal the bank does not know: the bank answers as for a wrong key, and the client,
    // seeing no proof of its key, gives up (from the bank's side, abandoned).
    let unknown = TerminalId::new("t-000000000000").unwrap();
    let stranger =
        atm_client::Client::connect(&bank.addr, &bank.creds(&unknown, &Psk::random(&mut OsRng)))
            .await;
    assert!(stranger.is_err());

    // The client may see the failure before the bank has finished with the handshake.
    let refused = r#"bank_handshakes_total{outcome="refused"}"#;
    scrape_until(&metrics, refused, before.get(refused) + 1.0).await;
    let abandoned = r#"bank_handshakes_total{outcome="abandoned"}"#;
    let during = scrape_until(&metrics, abandoned, before.get(abandoned) + 1.0).await;
    assert_eq!(during.get("bank_sessions"), 2.0);
    let ok = r#"bank_handshakes_total{outcome="ok"}"#;
    assert_eq!(during.moved(&before, ok), 2.0);
    assert_eq!(during.moved(&before, abandoned), 1.0);
    assert_eq!(during.moved(&before, refused), 1.0);
    let deposits = r#"bank_requests_total{kind="deposit",outcome="ok"}"#;
    assert_eq!(during.moved(&before, deposits), 5.0);
    let registers = r#"bank_requests_total{kind="register",outcome="ok"}"#;
    assert_eq!(during.moved(&before, registers), 2.0);
    let short = r#"bank_requests_total{kind="withdraw",outcome="insufficient_funds"}"#;
    assert_eq!(during.moved(&before, short), 1.0);
    let ok_withdrawals = r#"bank_requests_total{kind="withdraw",outcome="ok"}"#;
    assert_eq!(during.moved(&before, ok_withdrawals), 0.0);
    let timed = r#"bank_request_seconds_count{kind="deposit"}"#;
    assert_eq!(during.moved(&before, timed), 5.0);
    assert!(during.moved(&before, r#"bank_request_seconds_sum{kind="deposit"}"#) > 0.0);
    // Every registration and deposit waited for a group flush that covered it.
    assert!(during.moved(&before, "bank_flush_seconds_count") >= 1.0);
    assert!(during.moved(&before, "bank_commit_batch_size_count") >= 1.0);
    assert!(during.moved(&before, "bank_commit_batch_size_sum") >= 7.0);
    assert_eq!(during.get("bank_storage_healthy"), 1.0);
    let lag = during.get("bank_checkpoint_lag_entries");
    assert!((0.0..100.0).contains(&lag), "checkpoint lag {lag}");

    alice.call(&Request::Logout {}).await.unwrap();
    bob.close().await.unwrap();
    let after = scrape_until(&metrics, "bank_sessions", 0.0).await;
    assert_eq!(after.get("bank_sessions"), 0.0, "sessions closed");
    let logouts = r#"bank_requests_total{kind="logout",outcome="ok"}"#;
    assert_eq!(after.moved(&before, logouts), 1.0);

    bank.stop().await;
    tokio::time::timeout(Duration::from_secs(10), serving)
        .await
        .expect("the metrics listener stops with the bank")
        .unwrap()
        .unwrap();
}

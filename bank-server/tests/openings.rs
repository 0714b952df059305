//! The openings bucket against a real bank: one terminal's burst of registrations and card
//! openings is refused `busy` past 20 and recovers with time on the injected clock (no
//! sleeping); another terminal is not held back; a retried opening is answered without a
//! token; the first refusal of a run is audited.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use atm_client::{AuthFile, Client};
use bank_server::ledger::DepositCeilings;
use common::*;
use protocol::{CardSecret, Cents, ErrorCode, Request, Response, TxId};
use rand_core::OsRng;

/// Registers `name` on a new session of `creds`; the bank's answer.
async fn register_on(bank: &TestBank, creds: &AuthFile, name: &str) -> Response {
    let mut client = Client::connect(&bank.addr, creds).await.unwrap();
    client
        .call(&register_req(name, "correct horse"))
        .await
        .unwrap()
}

fn welcomed(reply: &Response) -> bool {
    matches!(reply, Response::Welcome { .. })
}

fn open_req(name: &str, txid: TxId, card: &CardSecret) -> Request {
    Request::OpenCardAccount {
        username: username(name),
        initial_cents: Cents(1_000),
        txid,
        card: card.clone(),
    }
}

fn throttled_entries(bank: &TestBank) -> Vec<(Option<String>, Option<String>)> {
    bank.bank
        .ledger()
        .recent_audit(256)
        .unwrap()
        .entries
        .into_iter()
        .filter(|(_, e)| e.action == "openings_throttled")
        .map(|(_, e)| (e.terminal, e.detail))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_registrations_is_refused_past_20_and_recovers_with_time() {
    let dir = temp();
    let now = Arc::new(AtomicU64::new(atm_client::now_ms()));
    let mut config = config(dir.path());
    config.clock = bank_server::Clock::manual(now.clone());
    assert_eq!(
        config.openings,
        Some(bank_server::OpeningRate {
            per_minute: 10,
            burst: 20
        }),
        "the production default"
    );
    let bank = TestBank::start(config).await;
    let first = bank.auth.clone();

    for i in 0..20 {
        let reply = register_on(&bank, &first, &format!("user{i}")).await;
        assert!(welcomed(&reply), "registration {i}: {reply:?}");
    }
    assert_eq!(
        register_on(&bank, &first, "user20").await,
        error(ErrorCode::Busy)
    );
    // A card opening draws on the same bucket.
    let card = CardSecret::random(&mut OsRng);
    let mut anon = Client::connect(&bank.addr, &first).await.unwrap();
    assert_eq!(
        anon.call(&open_req("carded", txid(), &card)).await.unwrap(),
        error(ErrorCode::Busy)
    );
    assert!(bank
        .bank
        .ledger()
        .user(&username("user20"))
        .unwrap()
        .is_none());
    assert!(bank
        .bank
        .ledger()
        .user(&username("carded"))
        .unwrap()
        .is_none());
    // Another terminal has its own bucket.
    let other = bank_server::admin::add_terminal_with(
        bank.bank.ledger(),
        "other",
        DepositCeilings::DEFAULT,
    )
    .unwrap();
    let other = bank.creds(&other.id, &other.psk);
    assert!(welcomed(&register_on(&bank, &other, "elsewhere").await));

    // The run of refusals is audited once, naming the terminal and the rate.
    assert_eq!(
        throttled_entries(&bank),
        vec![(
            Some(first.terminal_id.to_string()),
            Some("register: over 10 a minute, 20 at once".into())
        )]
    );

    // 6 s later one more token; not two.
    now.fetch_add(6_000, Ordering::SeqCst);
    let opening = txid();
    let reply = anon
        .call(&open_req("carded", opening, &card))
        .await
        .unwrap();
    assert!(matches!(reply, Response::AccountOpened { .. }), "{reply:?}");
    assert_eq!(
        register_on(&bank, &first, "user20").await,
        error(ErrorCode::Busy)
    );
    // A retry of the opening just made (an atm that lost the answer) needs no token.
    let mut retry = Client::connect(&bank.addr, &first).await.unwrap();
    assert_eq!(
        retry
            .call(&open_req("carded", opening, &card))
            .await
            .unwrap(),
        reply
    );
    // Two minutes later the bucket is full again: 20 more, then refused.
    now.fetch_add(120_000, Ordering::SeqCst);
    for i in 20..40 {
        let reply = register_on(&bank, &first, &format!("user{i}")).await;
        assert!(
            welcomed(&reply),
            "registration {i} after the wait: {reply:?}"
        );
    }
    assert_eq!(
        register_on(&bank, &first, "user40").await,
        error(ErrorCode::Busy)
    );
    assert_eq!(throttled_entries(&bank).len(), 3, "one entry per run");
    bank.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_rate_nothing_is_throttled() {
    let dir = temp();
    let mut config = config(dir.path());
    config.openings = None;
    let bank = TestBank::start(config).await;
    for i in 0..30 {
        let reply = register_on(&bank, &bank.auth, &format!("user{i}")).await;
        assert!(welcomed(&reply), "registration {i}: {reply:?}");
    }
    bank.stop().await;
}

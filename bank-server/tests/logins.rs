//! Logins and card accounts against a real bank: the throttle counts failures, not attempts
//! (parallel right cards all get in, parallel guesses still lock), the back-off keeps its cap
//! under a patient guesser (an injected clock, no waiting), repeated locks are audited, and
//! `open_card_account` retries follow §9.5.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use common::*;
use protocol::{CardSecret, Cents, ErrorCode, Request, Response, TxId};
use rand_core::OsRng;
use tokio::sync::Barrier;

fn open_req(name: &str, cents: u64, txid: TxId, card: &CardSecret) -> Request {
    Request::OpenCardAccount {
        username: username(name),
        initial_cents: Cents(cents),
        txid,
        card: card.clone(),
    }
}

fn card_login(name: &str, card: &CardSecret) -> Request {
    Request::CardLogin {
        username: username(name),
        card: card.clone(),
    }
}

/// Opens a card account `name` with 100.00 and returns its card.
async fn card_account(bank: &TestBank, name: &str) -> CardSecret {
    let card = CardSecret::random(&mut OsRng);
    let mut client = bank.client().await;
    let reply = client
        .call(&open_req(name, 10_000, txid(), &card))
        .await
        .unwrap();
    assert!(matches!(reply, Response::AccountOpened { .. }), "{reply:?}");
    client.close().await.unwrap();
    card
}

/// Sends `request` on `sessions` sessions at once (after a barrier) and returns the replies.
async fn all_at_once(bank: &TestBank, sessions: usize, request: &Request) -> Vec<Response> {
    let mut clients = Vec::new();
    for _ in 0..sessions {
        clients.push(bank.client().await);
    }
    let barrier = Arc::new(Barrier::new(sessions));
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|mut client| {
            let (barrier, request) = (barrier.clone(), request.clone());
            tokio::spawn(async move {
                let sealed = client.seal(&request).unwrap();
                barrier.wait().await;
                client.conn().send_text(sealed).await.unwrap();
                let reply = client.conn().recv_text().await.unwrap();
                client.open(&reply).unwrap()
            })
        })
        .collect();
    let mut replies = Vec::new();
    for task in tasks {
        replies.push(task.await.unwrap());
    }
    replies
}

fn count(replies: &[Response], code: ErrorCode) -> usize {
    replies.iter().filter(|r| **r == error(code)).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_parallel_logins_with_the_right_card_all_succeed() {
    let dir = temp();
    let bank = TestBank::in_dir(dir.path()).await;
    let card = card_account(&bank, "family").await;
    let replies = all_at_once(&bank, 50, &card_login("family", &card)).await;
    let welcomed = replies
        .iter()
        .filter(|r| matches!(r, Response::Welcome { .. }))
        .count();
    assert_eq!(welcomed, 50, "{replies:?}");
    bank.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_parallel_wrong_guesses_still_lock_the_account() {
    let dir = temp();
    let bank = TestBank::in_dir(dir.path()).await;
    let card = card_account(&bank, "victim").await;
    let guess = card_login("victim", &CardSecret::random(&mut OsRng));
    let replies = all_at_once(&bank, 50, &guess).await;
    // 5 free failures, then the 6th starts a wait: exactly 6 guesses are checked.
    assert_eq!(count(&replies, ErrorCode::AuthFailed), 6, "{replies:?}");
    assert_eq!(count(&replies, ErrorCode::Throttled), 44, "{replies:?}");
    let mut owner = bank.client().await;
    assert_eq!(
        owner.call(&card_login("victim", &card)).await.unwrap(),
        error(ErrorCode::Throttled),
        "locked, even for the right card"
    );
    bank.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_back_off_keeps_its_cap_and_repeated_locks_are_audited() {
    const MINUTE: u64 = 60_000;
    let dir = temp();
    let now = Arc::new(AtomicU64::new(atm_client::now_ms()));
    let mut config = config(dir.path());
    config.clock = bank_server::Clock::manual(now.clone());
    // The production policy (terminal throttling out of the way).
    config.account_backoff = bank_server::Backoff::ACCOUNT;
    config.terminal_backoff.free_failures = 1_000_000;
    let bank = TestBank::start(config).await;
    let card = card_account(&bank, "patient").await;
    let guess = card_login("patient", &CardSecret::random(&mut OsRng));
    let mut c = bank.client().await;
    let try_guess = async |c: &mut atm_client::Client| c.call(&guess).await.unwrap();

    for _ in 0..6 {
        assert_eq!(try_guess(&mut c).await, error(ErrorCode::AuthFailed));
    }
    assert_eq!(try_guess(&mut c).await, error(ErrorCode::Throttled));
    // Wait out each lock exactly: the waits double up to the 15-minute cap.
    let mut waits = Vec::new();
    let mut lock_started = now.load(Ordering::SeqCst);
    for _ in 0..14 {
        // Find when the lock ends, a second at a time up to the cap.
        let mut waited = 0;
        loop {
            waited += 1_000;
            now.store(lock_started + waited, Ordering::SeqCst);
            if waited > 15 * MINUTE {
                panic!("a lock longer than the 15-minute cap");
            }
            let reply = try_guess(&mut c).await;
            if reply == error(ErrorCode::AuthFailed) {
                break;
            }
            assert_eq!(reply, error(ErrorCode::Throttled));
        }
        waits.push(waited / 1_000);
        lock_started = now.load(Ordering::SeqCst);
    }
    assert_eq!(
        waits,
        [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900, 900, 900],
        "seconds each lock lasted"
    );
    // The guesser who waits the cap out by a millisecond gets one guess, not five: the count
    // is still there.
    now.store(lock_started + 15 * MINUTE + 1, Ordering::SeqCst);
    assert_eq!(try_guess(&mut c).await, error(ErrorCode::AuthFailed));
    assert_eq!(try_guess(&mut c).await, error(ErrorCode::Throttled));
    assert_eq!(
        c.call(&card_login("patient", &card)).await.unwrap(),
        error(ErrorCode::Throttled)
    );
    // A quiet day later the owner gets in, and that resets the count.
    now.fetch_add(24 * 60 * MINUTE + 1, Ordering::SeqCst);
    assert!(matches!(
        c.call(&card_login("patient", &card)).await.unwrap(),
        Response::Welcome { .. }
    ));
    // Each lock is audited with its number (the console lists them).
    let recent = bank.bank.ledger().recent_audit(256).unwrap();
    let locks: Vec<_> = recent
        .entries
        .iter()
        .rev()
        .filter(|(_, e)| e.action == "account_locked")
        .map(|(_, e)| e.detail.clone().unwrap_or_default())
        .collect();
    assert_eq!(locks.len(), 16, "{locks:?}");
    assert!(
        locks[0].starts_with("lock 1 after 6 failures: 1 s"),
        "{locks:?}"
    );
    assert!(
        locks[15].starts_with("lock 16 after 21 failures: 900 s"),
        "{locks:?}"
    );
    bank.stop().await;
}

/// §9.5: the idempotency lookup comes first; a retry is identical only with the same name,
/// amount and card; a different request under the same txid is `tx_id_reused`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_card_account_retries_follow_the_spec() {
    let dir = temp();
    let bank = TestBank::in_dir(dir.path()).await;
    let card = CardSecret::random(&mut OsRng);
    let id = txid();
    let mut c = bank.client().await;
    let first = c.call(&open_req("bob", 100_000, id, &card)).await.unwrap();
    assert!(matches!(first, Response::AccountOpened { .. }), "{first:?}");
    c.close().await.unwrap();
    let ask = async |request: Request| {
        let mut c = bank.client().await;
        let reply = c.call(&request).await.unwrap();
        c.close().await.unwrap();
        reply
    };
    // The identical retry: the first answer.
    assert_eq!(ask(open_req("bob", 100_000, id, &card)).await, first);
    // Same name, txid and card, another amount.
    assert_eq!(
        ask(open_req("bob", 200_000, id, &card)).await,
        error(ErrorCode::TxIdReused)
    );
    // Same name, txid and amount, another card.
    let other = CardSecret::random(&mut OsRng);
    assert_eq!(
        ask(open_req("bob", 100_000, id, &other)).await,
        error(ErrorCode::TxIdReused)
    );
    // The lookup comes before the amount check: an amount the bank would refuse, under the
    // txid already applied, is a reuse, not an invalid amount.
    assert_eq!(
        ask(open_req("bob", 999, id, &card)).await,
        error(ErrorCode::TxIdReused)
    );
    // Another txid for the name: taken. A fresh name with a bad amount: invalid.
    assert_eq!(
        ask(open_req("bob", 100_000, txid(), &card)).await,
        error(ErrorCode::NameTaken)
    );
    assert_eq!(
        ask(open_req("carol", 999, txid(), &card)).await,
        error(ErrorCode::AmountInvalid)
    );
    // Nothing changed: one account with its first amount.
    let mut bob = bank.client().await;
    assert!(matches!(
        bob.call(&card_login("bob", &card)).await.unwrap(),
        Response::Welcome { .. }
    ));
    assert_eq!(balance(&mut bob).await, 100_000);
    // Each refusal is audited with the name asked for, the amount and the reason.
    let recent = bank.bank.ledger().recent_audit(256).unwrap();
    let declined: Vec<(Option<String>, Option<u64>, Option<String>)> = recent
        .entries
        .iter()
        .rev()
        .filter(|(_, e)| e.action == "open_account_declined")
        .map(|(_, e)| (e.user.clone(), e.amount_cents, e.detail.clone()))
        .collect();
    let bob = || Some("bob".to_owned());
    assert_eq!(
        declined,
        [
            (bob(), Some(200_000), Some("tx_id_reused".into())),
            (bob(), Some(100_000), Some("tx_id_reused".into())),
            (bob(), Some(999), Some("tx_id_reused".into())),
            (bob(), Some(100_000), Some("name_taken".into())),
            (
                Some("carol".into()),
                Some(999),
                Some("amount_invalid".into())
            ),
        ]
    );
    bank.stop().await;
}

/// Only failures count, and a success clears them: after 4 wrong guesses and the right card,
/// 5 wrong guesses are free again. Failures then last a whole day: 23 h 59 min after the last
/// one the count is still there (one guess, then a wait); a day and a millisecond after it,
/// it is forgotten.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_right_login_clears_the_count_and_failures_last_a_day() {
    const MINUTE: u64 = 60_000;
    let dir = temp();
    let now = Arc::new(AtomicU64::new(atm_client::now_ms()));
    let mut config = config(dir.path());
    config.clock = bank_server::Clock::manual(now.clone());
    config.account_backoff = bank_server::Backoff::ACCOUNT;
    config.terminal_backoff.free_failures = 1_000_000;
    let bank = TestBank::start(config).await;
    let card = card_account(&bank, "ada").await;
    let guess = card_login("ada", &CardSecret::random(&mut OsRng));
    let mut c = bank.client().await;
    let failed = error(ErrorCode::AuthFailed);
    let throttled = error(ErrorCode::Throttled);
    for _ in 0..4 {
        assert_eq!(c.call(&guess).await.unwrap(), failed);
    }
    let mut owner = bank.client().await;
    assert!(matches!(
        owner.call(&card_login("ada", &card)).await.unwrap(),
        Response::Welcome { .. }
    ));
    // Cleared: 5 free failures and the 6th that starts a wait, as from scratch.
    for _ in 0..6 {
        assert_eq!(c.call(&guess).await.unwrap(), failed);
    }
    assert_eq!(c.call(&guess).await.unwrap(), throttled);
    let last_failure = now.load(Ordering::SeqCst);
    // Still counted 23 h 59 min later: one guess, which starts the next wait.
    now.store(last_failure + 24 * 60 * MINUTE - MINUTE, Ordering::SeqCst);
    assert_eq!(c.call(&guess).await.unwrap(), failed);
    assert_eq!(c.call(&guess).await.unwrap(), throttled);
    // Forgotten a day and a millisecond after the last failure.
    let last_failure = now.load(Ordering::SeqCst);
    now.store(last_failure + 24 * 60 * MINUTE + 1, Ordering::SeqCst);
    for _ in 0..6 {
        assert_eq!(c.call(&guess).await.unwrap(), failed);
    }
    assert_eq!(c.call(&guess).await.unwrap(), throttled);
    bank.stop().await;
}

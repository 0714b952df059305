//! Hostile input against a real bank: malformed and oversized frames, tampered, replayed,
//! reordered, reflected and stale records, wrong keys and terminals, credential guessing, bad
//! amounts and overdrafts. Each gets a generic error or a close, changes nothing, and the bank
//! keeps serving everyone else.

mod common;

use std::time::Duration;

use atm_client::{now_ms, Client, ClientError, Connection};
use common::*;
use protocol::{client, Cents, ErrorCode, Psk, Request, Response, TerminalId};
use rand_core::OsRng;

fn protocol_errors(bank: &TestBank) -> usize {
    bank.lines()
        .iter()
        .filter(|l| *l == "protocol_error")
        .count()
}

/// Sends `frames` on a fresh raw connection and expects the bank to close it and report one
/// protocol error.
async fn expect_refused_before_handshake(
    bank: &TestBank,
    frame: impl AsyncFnOnce(&mut Connection),
) {
    let before = protocol_errors(bank);
    let mut conn = bank.raw().await;
    frame(&mut conn).await;
    assert_close_code(&mut conn, 1008).await;
    wait_for(|| protocol_errors(bank) == before + 1).await;
}

/// Polls a condition the bank reaches asynchronously (bounded, no timing assertion).
async fn wait_for(mut condition: impl FnMut() -> bool) {
    for _ in 0..500 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("condition not reached");
}

fn tamper(record: &str, field: &str, edit: impl FnOnce(&str) -> String) -> String {
    let mut value: serde_json::Value = serde_json::from_str(record).unwrap();
    let old = value[field].as_str().unwrap().to_owned();
    value[field] = serde_json::Value::String(edit(&old));
    value.to_string()
}

/// Flips the lowest bit of the hex digit at `index`.
fn flip_hex(hex: &str, index: usize) -> String {
    let mut bytes = hex.as_bytes().to_vec();
    let digit = u8::from_str_radix(&hex[index..=index], 16).unwrap() ^ 1;
    bytes[index] = format!("{digit:x}").as_bytes()[0];
    String::from_utf8(bytes).unwrap()
}

/// Turns a good record into a bad frame (`None`: a binary frame).
type Attack = Box<dyn Fn(String) -> Option<String>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_frames_close_only_their_own_connection() {
    let dir = temp();
    let bank = TestBank::in_dir(dir.path()).await;
    let mut bystander = registered(&bank, "alice").await;
    assert!(matches!(
        bystander.call(&deposit_req(5_000)).await.unwrap(),
        Response::Deposited { .. }
    ));

    // Before the handshake.
    expect_refused_before_handshake(&bank, async |c: &mut Connection| {
        c.send_text("not json").await.unwrap()
    })
    .await;
    expect_refused_before_handshake(&bank, async |c: &mut Connection| {
        c.send_text("{}").await.unwrap()
    })
    .await;
    expect_refused_before_handshake(&bank, async |c: &mut Connection| {
        c.send_binary(vec![0, 1, 2]).await.unwrap()
    })
    .await;
    expect_refused_before_handshake(&bank, async |c: &mut Connection| {
        let _ = c.send_text("x".repeat(protocol::MAX_RECORD_LEN + 1)).await;
    })
    .await;
    let id = bank.auth.terminal_id.clone();
    let psk = bank.auth.psk.clone();
    let pin = bank.auth.bank.clone();
    let hello = |time: u64| {
        client::start(
            &protocol::Config::default(),
            id.clone(),
            &psk,
            &pin,
            &mut OsRng,
            time,
        )
        .unwrap()
        .1
    };
    let bad_hex = tamper(&hello(now_ms()), "client_share", |s| {
        format!("zz{}", &s[2..])
    });
    expect_refused_before_handshake(&bank, async |c: &mut Connection| {
        c.send_text(bad_hex).await.unwrap()
    })
    .await;
    let short = tamper(&hello(now_ms()), "client_nonce", |s| s[2..].to_owned());
    expect_refused_before_handshake(&bank, async |c: &mut Connection| {
        c.send_text(short).await.unwrap()
    })
    .await;
    // A sealed id that does not verify (altered on the way) is refused before any answer.
    let bad_seal = tamper(&hello(now_ms()), "sealed_terminal_id", |s| flip_hex(s, 0));
    expect_refused_before_handshake(&bank, async |c: &mut Connection| {
        c.send_text(bad_seal).await.unwrap()
    })
    .await;
    let stale = hello(now_ms() - 10 * 60_000);
    expect_refused_before_handshake(&bank, async |c: &mut Connection| {
        c.send_text(stale).await.unwrap()
    })
    .await;

    // After the handshake: each bad record closes the session.
    let record_attacks: Vec<(&str, Attack)> = vec![
        ("not json", Box::new(|_| Some("not json".to_owned()))),
        ("binary", Box::new(|_| None)),
        (
            "oversized",
            Box::new(|_| Some(" ".repeat(protocol::MAX_RECORD_LEN + 10))),
        ),
        (
            "bad hex iv",
            Box::new(|r| Some(tamper(&r, "iv", |s| format!("{}g", &s[1..])))),
        ),
        (
            "uppercase hex mac",
            Box::new(|r| Some(tamper(&r, "mac", |s| s.to_uppercase()))),
        ),
        (
            "short iv",
            Box::new(|r| Some(tamper(&r, "iv", |s| s[2..].to_owned()))),
        ),
        (
            "ciphertext not whole blocks",
            Box::new(|r| Some(tamper(&r, "ciphertext", |s| s[2..].to_owned()))),
        ),
        (
            "flipped iv bit",
            Box::new(|r| Some(tamper(&r, "iv", |s| flip_hex(s, 5)))),
        ),
        (
            "flipped ciphertext bit",
            Box::new(|r| Some(tamper(&r, "ciphertext", |s| flip_hex(s, 20)))),
        ),
        (
            "flipped mac bit",
            Box::new(|r| Some(tamper(&r, "mac", |s| flip_hex(s, 63)))),
        ),
        (
            "wrong seq",
            Box::new(|r| {
                let mut v: serde_json::Value = serde_json::from_str(&r).unwrap();
                v["seq"] = 1.into();
                Some(v.to_string())
            }),
        ),
        (
            "extra field",
            Box::new(|r| {
                let mut v: serde_json::Value = serde_json::from_str(&r).unwrap();
                v["extra"] = 1.into();
                Some(v.to_string())
            }),
        ),
    ];
    for (name, attack) in record_attacks {
        let before = protocol_errors(&bank);
        let mut client = bank.client().await;
        // A login that would get a Welcome (not a close) if it got through.
        let record = client.seal(&login_req("alice", "correct horse")).unwrap();
        match attack(record) {
            Some(text) => {
                let _ = client.conn().send_text(text).await;
            }
            None => client.conn().send_binary(vec![0xff; 32]).await.unwrap(),
        }
        assert_close_code(client.conn(), 1008).await;
        wait_for(|| protocol_errors(&bank) == before + 1).await;
        assert_eq!(balance(&mut bystander).await, 5_000, "{name}");
    }
    assert_eq!(balance(&mut bystander).await, 5_000);
    bank.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_reordered_reflected_and_stale_records_change_nothing() {
    let dir = temp();
    let bank = TestBank::in_dir(dir.path()).await;
    drop(registered(&bank, "alice").await);

    // Replay: the same deposit record twice; the second closes the session.
    let mut c = logged_in(&bank, "alice").await;
    let record = c.seal(&deposit_req(100)).unwrap();
    c.conn().send_text(record.clone()).await.unwrap();
    let reply = c.conn().recv_text().await.unwrap();
    assert!(matches!(
        c.open(&reply).unwrap(),
        Response::Deposited {
            balance_cents: Cents(100),
            ..
        }
    ));
    c.conn().send_text(record).await.unwrap();
    assert_close_code(c.conn(), 1008).await;

    // Reorder: the second record first.
    let mut c = logged_in(&bank, "alice").await;
    let _first = c.seal(&deposit_req(1)).unwrap();
    let second = c.seal(&deposit_req(2)).unwrap();
    c.conn().send_text(second).await.unwrap();
    assert_close_code(c.conn(), 1008).await;

    // Reflection: the bank's own record sent back to it.
    let mut c = logged_in(&bank, "alice").await;
    let record = c.seal(&Request::Balance {}).unwrap();
    c.conn().send_text(record).await.unwrap();
    let reply = c.conn().recv_text().await.unwrap();
    c.conn().send_text(reply).await.unwrap();
    assert_close_code(c.conn(), 1008).await;

    // Stale and future timestamps.
    for skew in [-(10 * 60_000_i64), 10 * 60_000] {
        let mut c = logged_in(&bank, "alice").await;
        let at = now_ms().checked_add_signed(skew).unwrap();
        let record = c.seal_at(&deposit_req(7), at).unwrap();
        c.conn().send_text(record).await.unwrap();
        assert_close_code(c.conn(), 1008).await;
    }

    // A record from another session (different keys) is refused too.
    let mut a = logged_in(&bank, "alice").await;
    let mut b = logged_in(&bank, "alice").await;
    let from_a = a.seal(&deposit_req(9)).unwrap();
    b.conn().send_text(from_a).await.unwrap();
    assert_close_code(b.conn(), 1008).await;

    let mut check = logged_in(&bank, "alice").await;
    assert_eq!(balance(&mut check).await, 100);
    assert_eq!(
        bank.lines()
            .iter()
            .filter(|l| l.contains("deposit"))
            .count(),
        1
    );
    bank.stop().await;
}

fn handshake_failure(result: Result<Client, ClientError>) -> String {
    match result {
        Ok(_) => panic!("the handshake should fail"),
        Err(ClientError::Protocol(e)) => e.detail(),
        Err(other) => panic!("expected a handshake failure, got {other}"),
    }
}

/// Completes the bank's side of a handshake with a Finished MAC the bank cannot accept, and
/// expects a close.
async fn bogus_finished(bank: &TestBank, id: &TerminalId, psk: &Psk) {
    let mut conn = bank.raw().await;
    let (_, hello) = client::start(
        &protocol::Config::default(),
        id.clone(),
        psk,
        &bank.auth.bank,
        &mut OsRng,
        now_ms(),
    )
    .unwrap();
    conn.send_text(hello).await.unwrap();
    let _server_hello = conn.recv_text().await.unwrap();
    conn.send_text(format!(
        r#"{{"type":"client_finished","finished":"{}"}}"#,
        "ab".repeat(32)
    ))
    .await
    .unwrap();
    assert_close_code(&mut conn, 1008).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_key_unknown_and_revoked_terminals_fail_alike() {
    let dir = temp();
    let bank = TestBank::in_dir(dir.path()).await;
    let mut bystander = registered(&bank, "alice").await;
    let id = bank.auth.terminal_id.clone();

    let wrong_key = handshake_failure(
        Client::connect(&bank.addr, &bank.creds(&id, &Psk::random(&mut OsRng))).await,
    );
    let unknown_id = TerminalId::new("t-000000000000").unwrap();
    let unknown = handshake_failure(
        Client::connect(&bank.addr, &bank.creds(&unknown_id, &bank.auth.psk)).await,
    );

    let second = bank_server::admin::add_terminal(bank.bank.ledger(), "second").unwrap();
    let mut ok = Client::connect(&bank.addr, &bank.creds(&second.id, &second.psk))
        .await
        .unwrap();
    assert_eq!(
        ok.call(&Request::Balance {}).await.unwrap(),
        error(ErrorCode::NotLoggedIn)
    );
    bank_server::admin::revoke_terminal(bank.bank.ledger(), &second.id).unwrap();
    let revoked =
        handshake_failure(Client::connect(&bank.addr, &bank.creds(&second.id, &second.psk)).await);

    assert_eq!(wrong_key, unknown);
    assert_eq!(wrong_key, revoked);
    let before = protocol_errors(&bank);
    bogus_finished(&bank, &id, &bank.auth.psk).await;
    bogus_finished(&bank, &unknown_id, &bank.auth.psk).await;
    bogus_finished(&bank, &second.id, &second.psk).await;
    wait_for(|| protocol_errors(&bank) == before + 3).await;
    assert_eq!(balance(&mut bystander).await, 0);
    bank.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credential_guessing_gets_one_answer_and_backs_off_across_restarts() {
    let dir = temp();
    let mut config = config(dir.path());
    config.account_backoff = bank_server::Backoff {
        free_failures: 3,
        base_ms: 3_600_000,
        max_ms: 3_600_000,
        forget_after_ms: 3_600_000,
    };
    let bank = TestBank::start(config.clone()).await;
    drop(registered(&bank, "alice").await);

    let mut c = bank.client().await;
    let wrong_password = c.call(&login_req("alice", "wrong horse")).await.unwrap();
    let unknown_user = c.call(&login_req("nobody", "wrong horse")).await.unwrap();
    assert_eq!(wrong_password, error(ErrorCode::AuthFailed));
    assert_eq!(wrong_password, unknown_user);
    let card_login = Request::CardLogin {
        username: username("alice"),
        card: protocol::CardSecret::random(&mut OsRng),
    };
    assert_eq!(
        c.call(&card_login).await.unwrap(),
        error(ErrorCode::AuthFailed)
    );
    // alice: 2 failures so far (password, card); nobody: 1.
    assert_eq!(
        c.call(&login_req("alice", "wrong horse")).await.unwrap(),
        error(ErrorCode::AuthFailed)
    );
    assert_eq!(
        c.call(&login_req("alice", "wrong horse")).await.unwrap(),
        error(ErrorCode::AuthFailed)
    );
    for _ in 0..3 {
        assert_eq!(
            c.call(&login_req("nobody", "wrong horse")).await.unwrap(),
            error(ErrorCode::AuthFailed)
        );
    }
    // Both are locked now, existing or not; even the right password is refused.
    assert_eq!(
        c.call(&login_req("alice", "correct horse")).await.unwrap(),
        error(ErrorCode::Throttled)
    );
    assert_eq!(
        c.call(&login_req("nobody", "whatever1")).await.unwrap(),
        error(ErrorCode::Throttled)
    );
    c.close().await.unwrap();

    // Guesses sent in parallel all count: exactly free + 1 of them are checked.
    drop(registered(&bank, "carol").await);
    let mut guessers = Vec::new();
    for _ in 0..12 {
        guessers.push(bank.client().await);
    }
    let tasks: Vec<_> = guessers
        .into_iter()
        .map(|mut g| {
            tokio::spawn(async move { g.call(&login_req("carol", "wrong horse")).await.unwrap() })
        })
        .collect();
    let mut checked = 0;
    for task in tasks {
        match task.await.unwrap() {
            Response::Error {
                code: ErrorCode::AuthFailed,
            } => checked += 1,
            Response::Error {
                code: ErrorCode::Throttled,
            } => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(checked, 4, "3 free failures, then the 4th locks");

    bank.stop().await;
    let bank = TestBank::start(config).await;
    let mut c = bank.client().await;
    assert_eq!(
        c.call(&login_req("alice", "correct horse")).await.unwrap(),
        error(ErrorCode::Throttled)
    );
    // Others are unaffected.
    drop(registered(&bank, "bob").await);
    bank.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminal_guessing_many_names_is_throttled() {
    let dir = temp();
    let mut config = config(dir.path());
    config.terminal_backoff = bank_server::Backoff {
        free_failures: 4,
        base_ms: 3_600_000,
        max_ms: 3_600_000,
        forget_after_ms: 3_600_000,
    };
    let bank = TestBank::start(config).await;
    drop(registered(&bank, "alice").await);
    let mut c = bank.client().await;
    for i in 0..5 {
        let reply = c
            .call(&login_req(&format!("guess{i}"), "wrong horse"))
            .await
            .unwrap();
        assert_eq!(reply, error(ErrorCode::AuthFailed));
    }
    assert_eq!(
        c.call(&login_req("alice", "correct horse")).await.unwrap(),
        error(ErrorCode::Throttled)
    );
    bank.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_amounts_overdrafts_and_missing_logins_are_refused_without_effect() {
    let dir = temp();
    let bank = TestBank::in_dir(dir.path()).await;

    let mut anon = bank.client().await;
    for request in [
        Request::Balance {},
        deposit_req(1),
        withdraw_req(1),
        Request::History { limit: 1 },
    ] {
        assert_eq!(
            anon.call(&request).await.unwrap(),
            error(ErrorCode::NotLoggedIn),
            "{request:?}"
        );
    }
    assert_eq!(
        anon.call(&register_req("weak", "1234567")).await.unwrap(),
        error(ErrorCode::WeakPassword)
    );
    anon.close().await.unwrap();

    let mut alice = registered(&bank, "alice").await;
    let mut taken = bank.client().await;
    assert_eq!(
        taken
            .call(&register_req("alice", "another password"))
            .await
            .unwrap(),
        error(ErrorCode::NameTaken)
    );
    taken.close().await.unwrap();

    assert!(matches!(
        alice.call(&deposit_req(10_000)).await.unwrap(),
        Response::Deposited { .. }
    ));
    let max = protocol::money::BIBIFI_MAX.0;
    for amount in [0, max + 1, u64::MAX] {
        assert_eq!(
            alice.call(&deposit_req(amount)).await.unwrap(),
            error(ErrorCode::AmountInvalid),
            "{amount}"
        );
        assert_eq!(
            alice.call(&withdraw_req(amount)).await.unwrap(),
            error(ErrorCode::AmountInvalid),
            "{amount}"
        );
    }
    assert_eq!(
        alice.call(&withdraw_req(10_001)).await.unwrap(),
        error(ErrorCode::InsufficientFunds)
    );
    for limit in [0, protocol::message::MAX_HISTORY + 1] {
        assert_eq!(
            alice.call(&Request::History { limit }).await.unwrap(),
            error(ErrorCode::BadRequest)
        );
    }
    assert_eq!(balance(&mut alice).await, 10_000);
    // The largest amount is accepted.
    let reply = alice.call(&deposit_req(max)).await.unwrap();
    assert!(
        matches!(reply, Response::Deposited { balance_cents, .. } if balance_cents.0 == max + 10_000)
    );

    // Another user's session cannot reach alice's account, even with alice's transaction id.
    let mut bob = registered(&bank, "bob").await;
    let alice_tx = deposit_req(500);
    assert!(matches!(
        alice.call(&alice_tx).await.unwrap(),
        Response::Deposited { .. }
    ));
    let reply = bob.call(&alice_tx).await.unwrap();
    assert!(
        matches!(
            reply,
            Response::Deposited {
                balance_cents: Cents(500),
                ..
            }
        ),
        "{reply:?}"
    );
    assert_eq!(
        bob.call(&withdraw_req(501)).await.unwrap(),
        error(ErrorCode::InsufficientFunds)
    );
    assert_eq!(balance(&mut alice).await, max + 10_500);
    assert_eq!(balance(&mut bob).await, 500);
    bank.stop().await;

    // Balances never overflow, even when the per-transaction maximum allows huge amounts.
    let dir = temp();
    let mut config = config(dir.path());
    config.max_amount = Cents(u64::MAX);
    let bank = TestBank::start(config).await;
    let mut rich = registered(&bank, "rich").await;
    assert!(matches!(
        rich.call(&deposit_req(u64::MAX - 1)).await.unwrap(),
        Response::Deposited { .. }
    ));
    assert_eq!(
        rich.call(&deposit_req(2)).await.unwrap(),
        error(ErrorCode::LimitExceeded)
    );
    assert_eq!(balance(&mut rich).await, u64::MAX - 1);
    bank.stop().await;
}

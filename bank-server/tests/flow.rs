//! The whole happy path against a real bank: register, login, deposit, withdraw, balance,
//! history, logout, card accounts, idempotent retries; then a restart keeps everything.

mod common;

use common::*;
use protocol::{CardSecret, Cents, ErrorCode, Request, Response, TxKind};
use rand_core::OsRng;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_flow_survives_a_restart() {
    let dir = temp();
    let bank = TestBank::in_dir(dir.path()).await;
    assert_eq!(bank.lines(), ["created"]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for file in [&bank.config.auth_file, &bank.config.audit_key_file] {
            let mode = std::fs::metadata(file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{}", file.display());
        }
    }
    let auth_text = std::fs::read_to_string(&bank.config.auth_file).unwrap();
    let json: serde_json::Value = serde_json::from_str(&auth_text).unwrap();
    assert!(json["terminal_id"].as_str().unwrap().starts_with("t-"));
    assert_eq!(json["psk"].as_str().unwrap().len(), 64);

    // Register, move money, read it back.
    let mut alice = bank.client().await;
    let account = match alice
        .call(&register_req("alice", "correct horse"))
        .await
        .unwrap()
    {
        Response::Welcome {
            username,
            full_name,
            account,
            balance_cents,
        } => {
            assert_eq!(username.as_str(), "alice");
            assert_eq!(full_name.as_str(), "alice tester");
            assert_eq!(balance_cents, Cents(0));
            account
        }
        other => panic!("{other:?}"),
    };
    let deposit = deposit_req(10_000);
    let Response::Deposited { balance_cents, .. } = alice.call(&deposit).await.unwrap() else {
        panic!()
    };
    assert_eq!(balance_cents, Cents(10_000));
    // The same transaction id again: applied once, same answer.
    let again = alice.call(&deposit).await.unwrap();
    assert!(
        matches!(
            again,
            Response::Deposited {
                balance_cents: Cents(10_000),
                ..
            }
        ),
        "{again:?}"
    );
    // The same id for a different request is refused.
    let Request::Deposit { txid: used, .. } = deposit else {
        unreachable!()
    };
    let reused = Request::Withdraw {
        txid: used,
        amount_cents: Cents(1),
    };
    assert_eq!(
        alice.call(&reused).await.unwrap(),
        error(ErrorCode::TxIdReused)
    );
    let reply = alice.call(&withdraw_req(2_550)).await.unwrap();
    assert!(
        matches!(
            reply,
            Response::Withdrawn {
                amount_cents: Cents(2_550),
                balance_cents: Cents(7_450),
                ..
            }
        ),
        "{reply:?}"
    );
    assert_eq!(balance(&mut alice).await, 7_450);
    let Response::History { entries } = alice.call(&Request::History { limit: 10 }).await.unwrap()
    else {
        panic!()
    };
    assert_eq!(entries.len(), 2);
    assert_eq!(
        (
            entries[0].kind,
            entries[0].amount_cents,
            entries[0].balance_cents
        ),
        (TxKind::Withdraw, Cents(2_550), Cents(7_450))
    );
    assert_eq!(
        (entries[1].kind, entries[1].amount_cents),
        (TxKind::Deposit, Cents(10_000))
    );
    assert_eq!(
        alice.call(&Request::Logout {}).await.unwrap(),
        Response::LoggedOut {}
    );
    assert_close_code(alice.conn(), 1000).await;

    // Log in again; wrong password first.
    let mut alice = bank.client().await;
    assert_eq!(
        alice
            .call(&login_req("alice", "wrong horse"))
            .await
            .unwrap(),
        error(ErrorCode::AuthFailed)
    );
    let reply = alice
        .call(&login_req("alice", "correct horse"))
        .await
        .unwrap();
    assert!(
        matches!(&reply, Response::Welcome { account: a, balance_cents: Cents(7_450), .. } if *a == account),
        "{reply:?}"
    );
    assert_eq!(
        alice
            .call(&register_req("alice2", "correct horse"))
            .await
            .unwrap(),
        error(ErrorCode::AlreadyLoggedIn)
    );
    alice.close().await.unwrap();

    // A BIBIFI card account; a retry of the opening gets the same answer and changes nothing.
    let card = CardSecret::random(&mut OsRng);
    let open = Request::OpenCardAccount {
        username: username("bob"),
        initial_cents: Cents(100_000),
        txid: txid(),
        card: card.clone(),
    };
    let mut bob = bank.client().await;
    let first = bob.call(&open).await.unwrap();
    assert!(
        matches!(
            first,
            Response::AccountOpened {
                balance_cents: Cents(100_000),
                ..
            }
        ),
        "{first:?}"
    );
    assert_eq!(balance(&mut bob).await, 100_000);
    bob.close().await.unwrap();
    let mut retry = bank.client().await;
    assert_eq!(retry.call(&open).await.unwrap(), first);
    assert_eq!(balance(&mut retry).await, 100_000);
    retry.close().await.unwrap();
    let mut other_card = bank.client().await;
    let stolen_name = Request::OpenCardAccount {
        username: username("bob"),
        initial_cents: Cents(100_000),
        txid: txid(),
        card: CardSecret::random(&mut OsRng),
    };
    assert_eq!(
        other_card.call(&stolen_name).await.unwrap(),
        error(ErrorCode::NameTaken)
    );
    let small = Request::OpenCardAccount {
        username: username("carol"),
        initial_cents: Cents(999),
        txid: txid(),
        card: CardSecret::random(&mut OsRng),
    };
    assert_eq!(
        other_card.call(&small).await.unwrap(),
        error(ErrorCode::AmountInvalid)
    );
    let wrong_card = Request::CardLogin {
        username: username("bob"),
        card: CardSecret::random(&mut OsRng),
    };
    assert_eq!(
        other_card.call(&wrong_card).await.unwrap(),
        error(ErrorCode::AuthFailed)
    );
    let right_card = Request::CardLogin {
        username: username("bob"),
        card: card.clone(),
    };
    let reply = other_card.call(&right_card).await.unwrap();
    assert!(
        matches!(
            reply,
            Response::Welcome {
                balance_cents: Cents(100_000),
                ..
            }
        ),
        "{reply:?}"
    );
    let reply = other_card.call(&withdraw_req(6_310)).await.unwrap();
    assert!(
        matches!(
            reply,
            Response::Withdrawn {
                balance_cents: Cents(93_690),
                ..
            }
        ),
        "{reply:?}"
    );
    other_card.close().await.unwrap();

    // The BIBIFI-style stdout summaries.
    assert_eq!(
        bank.lines(),
        [
            "created",
            r#"{"account":"alice","initial_balance":0}"#,
            r#"{"account":"alice","deposit":100}"#,
            r#"{"account":"alice","withdraw":25.5}"#,
            r#"{"account":"alice","balance":74.5}"#,
            r#"{"account":"bob","initial_balance":1000}"#,
            r#"{"account":"bob","balance":1000}"#,
            r#"{"account":"bob","balance":1000}"#,
            r#"{"account":"bob","withdraw":63.1}"#,
        ]
    );

    // Health and the web root.
    let (status, body) = http_get(&bank.addr, "/healthz").await;
    assert!(status.contains("200"), "{status}");
    assert_eq!(body.trim(), "ok");
    let page = http_request(&bank.addr, &bank.addr, "/some/page", &["Accept: text/html"]).await;
    assert_eq!(page.status, 200, "{page:?}");
    assert!(
        String::from_utf8_lossy(&page.body).contains("not built"),
        "{page:?}"
    );

    // Restart on the same directory: everything is still there, nothing is recreated.
    bank.stop().await;
    let bank = TestBank::in_dir(dir.path()).await;
    assert!(bank.lines().is_empty(), "{:?}", bank.lines());
    let mut alice = logged_in(&bank, "alice").await;
    assert_eq!(balance(&mut alice).await, 7_450);
    let reply = alice
        .call(&Request::History {
            limit: protocol::message::MAX_HISTORY,
        })
        .await
        .unwrap();
    let Response::History { entries: after } = reply else {
        panic!("{reply:?}")
    };
    assert_eq!(after, entries);
    alice.close().await.unwrap();
    let mut bob = bank.client().await;
    let reply = bob.call(&right_card).await.unwrap();
    assert!(
        matches!(
            reply,
            Response::Welcome {
                balance_cents: Cents(93_690),
                ..
            }
        ),
        "{reply:?}"
    );
    bob.close().await.unwrap();
    let config = bank.config.clone();
    bank.stop().await;

    // The audit log verifies and recorded the events.
    let ledger = bank_server::store::open_existing(&config.storage, &config.data_dir).unwrap();
    let key = bank_server::admin::read_audit_keys(&config.audit_key_file).unwrap();
    let events = bank_server::admin::verify_audit(&*ledger, &key).unwrap();
    let actions: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
    for expected in [
        "terminal_added",
        "register",
        "deposit",
        "withdraw",
        "balance",
        "history",
        "logout",
        "login_failed",
        "open_account",
    ] {
        assert!(
            actions.contains(&expected),
            "{expected} missing from {actions:?}"
        );
    }
    // Successful logins (alice's and bob's card above) write nothing, so are not audited.
    assert!(
        !actions.contains(&"login_ok"),
        "a successful login was audited: {actions:?}"
    );
    assert_eq!(
        actions.iter().filter(|a| **a == "deposit").count(),
        1,
        "a retried deposit is audited once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_the_web_atm_with_an_index_fallback() {
    let dir = temp();
    let web = dir.path().join("dist");
    std::fs::create_dir_all(web.join("assets")).unwrap();
    std::fs::write(web.join("index.html"), "<html>web atm index</html>").unwrap();
    std::fs::write(web.join("assets/app.js"), "console.log('atm')").unwrap();
    let mut config = config(dir.path());
    config.web_root = web;
    let bank = TestBank::start(config).await;
    let (status, body) = http_get(&bank.addr, "/").await;
    assert!(
        status.contains("200") && body.contains("web atm index"),
        "{status} {body}"
    );
    let (status, body) = http_get(&bank.addr, "/assets/app.js").await;
    assert!(
        status.contains("200") && body.contains("console.log"),
        "{status} {body}"
    );
    // Client-side routes fall back to index.html when a browser loads them as a page.
    let page = http_request(&bank.addr, &bank.addr, "/deposit", &["Accept: text/html"]).await;
    let body = String::from_utf8_lossy(&page.body);
    assert!(
        page.status == 200 && body.contains("web atm index"),
        "{page:?}"
    );
    // Nothing outside the web root.
    let (_, body) = http_get(&bank.addr, "/../bank.auth").await;
    assert!(!body.contains("psk"), "{body}");
    let (status, body) = http_get(&bank.addr, "/healthz").await;
    assert!(status.contains("200") && body.trim() == "ok");
    bank.stop().await;
}

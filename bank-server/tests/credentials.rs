//! Credentials that can be retired, against a real bank on port 0: a customer's password
//! change, a card reissue and an operator's password change each need the current credential
//! (a wrong one is a failed login), end the old one for new logins, and end the other sessions
//! still logged in with it, while the session that made the change goes on.

mod common;

use atm_client::{Client, ClientError};
use common::*;
use protocol::{CardSecret, Cents, ErrorCode, Password, Request, Response};
use rand_core::OsRng;

fn change(old: &str, new: &str) -> Request {
    Request::ChangePassword {
        old: Password::new(old).unwrap(),
        new: Password::new(new).unwrap(),
    }
}

/// The next request on `client` finds the session ended by the bank.
async fn ended(client: &mut Client) {
    assert!(
        matches!(
            client.call(&Request::Balance {}).await,
            Err(ClientError::Closed)
        ),
        "the session should have been ended"
    );
    assert_eq!(client.conn().close_frame(), Some((1008, "")));
}

fn actions(bank: &TestBank) -> Vec<String> {
    let audit = bank.bank.ledger().recent_audit(200).unwrap();
    audit.entries.into_iter().map(|(_, e)| e.action).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_password_ends_the_old_one() {
    let dir = temp();
    let bank = TestBank::in_dir(dir.path()).await;
    let mut alice = registered(&bank, "alice").await;
    let mut elsewhere = logged_in(&bank, "alice").await;
    let mut bystander = registered(&bank, "bob").await;

    assert_eq!(
        alice
            .call(&change("wrong password", "new password 2"))
            .await
            .unwrap(),
        error(ErrorCode::AuthFailed)
    );
    assert_eq!(
        alice.call(&change("correct horse", "short")).await.unwrap(),
        error(ErrorCode::WeakPassword)
    );
    assert_eq!(
        alice
            .call(&change("correct horse", "new password 2"))
            .await
            .unwrap(),
        Response::PasswordChanged {}
    );
    // The session that changed it goes on; another one logged in with the old one ends; a
    // session of someone else does not notice.
    assert_eq!(balance(&mut alice).await, 0);
    ended(&mut elsewhere).await;
    assert_eq!(balance(&mut bystander).await, 0);
    let mut again = bank.client().await;
    assert_eq!(
        again
            .call(&login_req("alice", "correct horse"))
            .await
            .unwrap(),
        error(ErrorCode::AuthFailed)
    );
    let mut again = bank.client().await;
    assert!(matches!(
        again
            .call(&login_req("alice", "new password 2"))
            .await
            .unwrap(),
        Response::Welcome { .. }
    ));
    // Not logged in: nothing to change.
    let mut anonymous = bank.client().await;
    assert_eq!(
        anonymous
            .call(&change("correct horse", "new password 3"))
            .await
            .unwrap(),
        error(ErrorCode::NotLoggedIn)
    );
    let seen = actions(&bank);
    assert!(seen.iter().any(|a| a == "password_changed"), "{seen:?}");
    assert!(
        seen.iter().any(|a| a == "password_change_failed"),
        "{seen:?}"
    );
    bank.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reissued_card_ends_the_old_one() {
    let dir = temp();
    let bank = TestBank::in_dir(dir.path()).await;
    let old = CardSecret::random(&mut OsRng);
    let mut carol = bank.client().await;
    let opened = carol
        .call(&Request::OpenCardAccount {
            username: username("carol"),
            initial_cents: Cents(2_000),
            txid: txid(),
            card: old.clone(),
        })
        .await
        .unwrap();
    assert!(
        matches!(opened, Response::AccountOpened { .. }),
        "{opened:?}"
    );
    let card_login = |card: &CardSecret| Request::CardLogin {
        username: username("carol"),
        card: card.clone(),
    };
    let mut elsewhere = bank.client().await;
    assert!(matches!(
        elsewhere.call(&card_login(&old)).await.unwrap(),
        Response::Welcome { .. }
    ));
    let new = CardSecret::random(&mut OsRng);
    let reissue = |old: &CardSecret, new: &CardSecret| Request::ReissueCard {
        old: old.clone(),
        new: new.clone(),
    };
    // A wrong current card, or a "new" card equal to the current one, is refused.
    let wrong = CardSecret::random(&mut OsRng);
    assert_eq!(
        carol.call(&reissue(&wrong, &new)).await.unwrap(),
        error(ErrorCode::AuthFailed)
    );
    assert_eq!(
        carol.call(&reissue(&old, &old)).await.unwrap(),
        error(ErrorCode::AuthFailed)
    );
    assert_eq!(
        carol.call(&reissue(&old, &new)).await.unwrap(),
        Response::CardReissued {}
    );
    assert_eq!(balance(&mut carol).await, 2_000);
    ended(&mut elsewhere).await;
    let mut again = bank.client().await;
    assert_eq!(
        again.call(&card_login(&old)).await.unwrap(),
        error(ErrorCode::AuthFailed)
    );
    let mut again = bank.client().await;
    assert!(matches!(
        again.call(&card_login(&new)).await.unwrap(),
        Response::Welcome { .. }
    ));
    assert!(actions(&bank).iter().any(|a| a == "card_reissued"));
    bank.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_changes_their_password_and_only_on_a_console() {
    let dir = temp();
    let bank = TestBank::in_dir(dir.path()).await;
    let old = "operator password 1";
    let terminal =
        bank_server::admin::add_operator(bank.bank.ledger(), &TEST_ARGON2, "ops", old).unwrap();
    let login = |password: &str| Request::OperatorLogin {
        username: username("ops"),
        password: Password::new(password).unwrap(),
    };
    let creds = bank.creds(&terminal.id, &terminal.psk);
    let console = || Client::connect(&bank.addr, &creds);
    let mut ops = console().await.unwrap();
    assert!(matches!(
        ops.call(&login(old)).await.unwrap(),
        Response::OperatorWelcome { .. }
    ));
    let mut other = console().await.unwrap();
    assert!(matches!(
        other.call(&login(old)).await.unwrap(),
        Response::OperatorWelcome { .. }
    ));
    assert_eq!(
        ops.call(&change(old, "operator password 2")).await.unwrap(),
        Response::PasswordChanged {}
    );
    assert!(matches!(
        ops.call(&Request::ConsoleTerminals {}).await.unwrap(),
        Response::Terminals { .. }
    ));
    assert!(matches!(
        other.call(&Request::ConsoleTerminals {}).await,
        Err(ClientError::Closed)
    ));
    let mut again = console().await.unwrap();
    assert_eq!(
        again.call(&login(old)).await.unwrap(),
        error(ErrorCode::AuthFailed)
    );
    let mut again = console().await.unwrap();
    assert!(matches!(
        again.call(&login("operator password 2")).await.unwrap(),
        Response::OperatorWelcome { .. }
    ));
    // The new hash keeps the operators' cost (and the pepper), as `operator add` makes it.
    let hash = bank
        .bank
        .ledger()
        .operator(&username("ops"))
        .unwrap()
        .unwrap()
        .password_hash;
    assert!(
        hash.contains("m=65536,t=3,p=1") && hash.contains("keyid="),
        "{hash}"
    );
    // A card reissue is an ATM's request.
    let card = CardSecret::random(&mut OsRng);
    assert_eq!(
        again
            .call(&Request::ReissueCard {
                old: card.clone(),
                new: card
            })
            .await
            .unwrap(),
        error(ErrorCode::NotAllowed)
    );
    bank.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_password_hashes_are_peppered_and_old_ones_still_log_in() {
    use bank_server::ledger::NewAccount;
    use protocol::FullName;
    let dir = temp();
    let bank = TestBank::in_dir(dir.path()).await;
    drop(registered(&bank, "alice").await);
    let stored = bank
        .bank
        .ledger()
        .user(&username("alice"))
        .unwrap()
        .unwrap()
        .password_hash
        .unwrap();
    assert!(stored.contains("keyid="), "keyed with the pepper: {stored}");
    // The pepper is not in the data directory: the hash alone does not verify.
    let pepperless = bank_server::passwords::PasswordPool::new(
        TEST_ARGON2,
        1,
        std::time::Duration::from_secs(5),
        None,
    )
    .unwrap();
    assert!(!pepperless
        .verify(Password::new("correct horse").unwrap(), Some(stored))
        .await
        .unwrap());
    // A hash made before peppers (no key id) still logs in.
    let old = bank_server::passwords::hash_password(
        TEST_ARGON2,
        &Password::new("old password 1").unwrap(),
        None,
    )
    .unwrap();
    let new = NewAccount {
        username: username("olde"),
        full_name: FullName::new("Olde Timer").unwrap(),
        password_hash: Some(old),
        card_sha256: None,
        card_public: None,
        opening: None,
        terminal: None,
    };
    bank.bank
        .ledger()
        .open_account(
            new,
            atm_client::now_ms(),
            &bank_server::audit::AuditEvent::new("register", 0),
        )
        .unwrap();
    let mut client = bank.client().await;
    assert!(matches!(
        client
            .call(&login_req("olde", "old password 1"))
            .await
            .unwrap(),
        Response::Welcome { .. }
    ));
    bank.stop().await;
}

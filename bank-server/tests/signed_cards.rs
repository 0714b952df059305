//! Signed cards (PROTOCOL.md §17) against a real bank on port 0: an account opened with a
//! card's public key logs in with a signature of the session's channel binding; the bank keeps
//! only the public key; a harvested signature (or the record carrying it) logs in on no other
//! session; a wrong key is a failed login like a wrong card; a legacy card keeps working until
//! it is upgraded, and the upgrade ends it.

mod common;

use atm_client::{Client, ClientError};
use common::*;
use protocol::{
    CardKey, CardPublic, CardSecret, Cents, ChannelBinding, ErrorCode, Request, Response,
};
use rand_core::OsRng;

async fn open_signed(bank: &TestBank, name: &str, card: &CardKey) -> Client {
    let mut client = bank.client().await;
    let opened = client
        .call(&Request::OpenSignedCardAccount {
            username: username(name),
            initial_cents: Cents(5_000),
            txid: txid(),
            card_public: card.public(),
        })
        .await
        .unwrap();
    assert!(
        matches!(
            opened,
            Response::AccountOpened {
                balance_cents: Cents(5_000),
                ..
            }
        ),
        "{opened:?}"
    );
    client
}

fn signed_login(client: &Client, name: &str, card: &CardKey) -> Request {
    Request::CardLoginSigned {
        username: username(name),
        signature: card.sign_login(client.channel_binding(), &username(name)),
    }
}

/// A fresh session's answer to a signed login by `card`.
async fn try_signed_login(bank: &TestBank, name: &str, card: &CardKey) -> Response {
    let mut client = bank.client().await;
    let login = signed_login(&client, name, card);
    client.call(&login).await.unwrap()
}

fn actions(bank: &TestBank) -> Vec<String> {
    let audit = bank.bank.ledger().recent_audit(200).unwrap();
    audit.entries.into_iter().map(|(_, e)| e.action).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_card_opens_logs_in_and_the_bank_keeps_only_its_public_key() {
    let dir = temp();
    let bank = TestBank::in_dir(dir.path()).await;
    let card = CardKey::random(&mut OsRng);
    open_signed(&bank, "dora", &card).await;

    let mut client = bank.client().await;
    let login = signed_login(&client, "dora", &card);
    assert!(matches!(
        client.call(&login).await.unwrap(),
        Response::Welcome {
            balance_cents: Cents(5_000),
            ..
        }
    ));
    assert_eq!(balance(&mut client).await, 5_000);

    let record = bank.bank.ledger().user(&username("dora")).unwrap().unwrap();
    assert_eq!(record.card_public, Some(card.public().to_hex()));
    assert_eq!(record.card_sha256, None);
    assert_eq!(record.password_hash, None);
    // Nothing the bank stores is the card's seed, or derived from it but the public key.
    let stored = serde_json::to_string(&serde_json::json!({
        "sha256": record.card_sha256,
        "public": record.card_public,
    }))
    .unwrap();
    assert!(!stored.contains(card.to_hex().as_str()));

    // A signed card does not log in with the legacy request, whatever it sends as the secret.
    let mut legacy = bank.client().await;
    let seed_as_secret = CardSecret::from_hex(&card.to_hex()).unwrap();
    assert_eq!(
        legacy
            .call(&Request::CardLogin {
                username: username("dora"),
                card: seed_as_secret,
            })
            .await
            .unwrap(),
        error(ErrorCode::AuthFailed)
    );
    bank.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_harvested_signature_or_record_logs_in_on_no_other_session() {
    let dir = temp();
    let bank = TestBank::in_dir(dir.path()).await;
    let card = CardKey::random(&mut OsRng);
    open_signed(&bank, "erin", &card).await;

    // A malicious terminal sees the plaintext of its own session's login ...
    let mut first = bank.client().await;
    let login = signed_login(&first, "erin", &card);
    let record = first.seal(&login).unwrap();
    first.conn().send_text(record.clone()).await.unwrap();
    let reply = first.conn().recv_text().await.unwrap();
    assert!(matches!(
        first.open(&reply).unwrap(),
        Response::Welcome { .. }
    ));

    // ... and replays the signed request inside a session of its own: a failed login.
    let mut thief = bank.client().await;
    assert_eq!(
        thief.call(&login).await.unwrap(),
        error(ErrorCode::AuthFailed)
    );
    // The sealed record itself does not even open on another session: it is closed.
    let mut other = bank.client().await;
    other.conn().send_text(record).await.unwrap();
    assert!(matches!(
        other.conn().recv_text().await,
        Err(ClientError::Closed)
    ));
    assert!(actions(&bank).iter().any(|a| a == "login_failed"));
    bank.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_key_an_unknown_user_and_a_password_account_fail_alike() {
    let dir = temp();
    let bank = TestBank::in_dir(dir.path()).await;
    let card = CardKey::random(&mut OsRng);
    open_signed(&bank, "fred", &card).await;
    registered(&bank, "gina").await;
    let thief = CardKey::random(&mut OsRng);
    for (name, key) in [("fred", &thief), ("nobody", &card), ("gina", &card)] {
        assert_eq!(
            try_signed_login(&bank, name, key).await,
            error(ErrorCode::AuthFailed),
            "{name}"
        );
    }
    // The failures count like wrong cards: enough of them lock the name for a while.
    let mut last = error(ErrorCode::AuthFailed);
    for _ in 0..10 {
        last = try_signed_login(&bank, "fred", &thief).await;
        if last == error(ErrorCode::Throttled) {
            break;
        }
    }
    assert_eq!(last, error(ErrorCode::Throttled));
    assert_eq!(
        try_signed_login(&bank, "fred", &card).await,
        error(ErrorCode::Throttled)
    );
    bank.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_signed_opening_gets_the_same_answer_and_another_key_does_not() {
    let dir = temp();
    let bank = TestBank::in_dir(dir.path()).await;
    let card = CardKey::random(&mut OsRng);
    let open = |public: CardPublic, txid| Request::OpenSignedCardAccount {
        username: username("hugo"),
        initial_cents: Cents(1_500),
        txid,
        card_public: public,
    };
    let id = txid();
    for _ in 0..2 {
        let mut client = bank.client().await;
        assert!(matches!(
            client.call(&open(card.public(), id)).await.unwrap(),
            Response::AccountOpened {
                balance_cents: Cents(1_500),
                ..
            }
        ));
    }
    let mut client = bank.client().await;
    assert_eq!(
        client
            .call(&open(CardKey::random(&mut OsRng).public(), id))
            .await
            .unwrap(),
        error(ErrorCode::TxIdReused)
    );
    bank.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_legacy_card_works_until_upgraded_and_the_upgrade_ends_it() {
    let dir = temp();
    let bank = TestBank::in_dir(dir.path()).await;
    let old = CardSecret::random(&mut OsRng);
    let mut ivan = bank.client().await;
    assert!(matches!(
        ivan.call(&Request::OpenCardAccount {
            username: username("ivan"),
            initial_cents: Cents(3_000),
            txid: txid(),
            card: old.clone(),
        })
        .await
        .unwrap(),
        Response::AccountOpened { .. }
    ));
    let legacy_login = || Request::CardLogin {
        username: username("ivan"),
        card: old.clone(),
    };
    let mut elsewhere = bank.client().await;
    assert!(matches!(
        elsewhere.call(&legacy_login()).await.unwrap(),
        Response::Welcome { .. }
    ));

    let new = CardKey::random(&mut OsRng);
    let upgrade = |old: &CardSecret| Request::UpgradeCard {
        old: old.clone(),
        new_public: new.public(),
    };
    assert_eq!(
        ivan.call(&upgrade(&CardSecret::random(&mut OsRng)))
            .await
            .unwrap(),
        error(ErrorCode::AuthFailed)
    );
    assert_eq!(
        ivan.call(&upgrade(&old)).await.unwrap(),
        Response::CardReissued {}
    );
    assert_eq!(balance(&mut ivan).await, 3_000);
    // The other session logged in with the legacy card ends; the legacy card logs in no more.
    assert!(matches!(
        elsewhere.call(&Request::Balance {}).await,
        Err(ClientError::Closed)
    ));
    let mut again = bank.client().await;
    assert_eq!(
        again.call(&legacy_login()).await.unwrap(),
        error(ErrorCode::AuthFailed)
    );
    assert!(matches!(
        try_signed_login(&bank, "ivan", &new).await,
        Response::Welcome {
            balance_cents: Cents(3_000),
            ..
        }
    ));
    let record = bank.bank.ledger().user(&username("ivan")).unwrap().unwrap();
    assert_eq!(record.card_sha256, None);
    assert_eq!(record.card_public, Some(new.public().to_hex()));
    assert!(actions(&bank).iter().any(|a| a == "card_upgraded"));
    bank.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_reissue_needs_the_current_key_on_this_session_and_ends_it() {
    let dir = temp();
    let bank = TestBank::in_dir(dir.path()).await;
    let old = CardKey::random(&mut OsRng);
    open_signed(&bank, "jane", &old).await;
    let mut jane = bank.client().await;
    let login = signed_login(&jane, "jane", &old);
    assert!(matches!(
        jane.call(&login).await.unwrap(),
        Response::Welcome { .. }
    ));
    let mut elsewhere = bank.client().await;
    let login = signed_login(&elsewhere, "jane", &old);
    assert!(matches!(
        elsewhere.call(&login).await.unwrap(),
        Response::Welcome { .. }
    ));

    let new = CardKey::random(&mut OsRng);
    let (here, there) = (
        jane.channel_binding().clone(),
        elsewhere.channel_binding().clone(),
    );
    let reissue =
        |signer: &CardKey, binding: &ChannelBinding, new: &CardKey| Request::ReissueCardSigned {
            signature: signer.sign_reissue(binding, &username("jane"), &new.public()),
            new_public: new.public(),
        };
    // Signed by another key, on another session, or "replaced" by itself: a failed login.
    let thief = CardKey::random(&mut OsRng);
    let bad = [
        reissue(&thief, &here, &new),
        reissue(&old, &there, &new),
        reissue(&old, &here, &old),
    ];
    for request in bad {
        assert_eq!(
            jane.call(&request).await.unwrap(),
            error(ErrorCode::AuthFailed)
        );
    }
    let good = reissue(&old, &here, &new);
    assert_eq!(jane.call(&good).await.unwrap(), Response::CardReissued {});
    assert_eq!(balance(&mut jane).await, 5_000);
    assert!(matches!(
        elsewhere.call(&Request::Balance {}).await,
        Err(ClientError::Closed)
    ));
    assert_eq!(
        try_signed_login(&bank, "jane", &old).await,
        error(ErrorCode::AuthFailed)
    );
    assert!(matches!(
        try_signed_login(&bank, "jane", &new).await,
        Response::Welcome { .. }
    ));
    // A legacy reissue or an upgrade does not apply to a signed card.
    let mut jane = bank.client().await;
    let login = signed_login(&jane, "jane", &new);
    assert!(matches!(
        jane.call(&login).await.unwrap(),
        Response::Welcome { .. }
    ));
    let seed = CardSecret::from_hex(&new.to_hex()).unwrap();
    assert_eq!(
        jane.call(&Request::UpgradeCard {
            old: seed,
            new_public: old.public(),
        })
        .await
        .unwrap(),
        error(ErrorCode::AuthFailed)
    );
    bank.stop().await;
}

//! The `atm` with signed cards (PROTOCOL.md §17), against a real bank on port 0: `-n` writes a
//! signed card whose seed the bank never sees (its user record holds only the public key, and
//! the card file holds nothing the bank stores), its logins sign each session; a legacy card
//! file still logs in, with the same outputs.

mod common;

use atm_cli::files::{Card, CardCredential};
use atm_client::{load_auth_file, Client};
use common::{line, Env};
use protocol::{CardSecret, Cents, Request, Response, TxId, Username};
use rand_core::OsRng;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_card_file_holds_no_value_the_bank_stores() {
    let env = Env::start().await;
    env.open("bob", "100.00").await;
    let text = std::fs::read_to_string(env.path("bob.card")).unwrap();
    let card = Card::load(env.path("bob.card").to_str().unwrap()).unwrap();
    let CardCredential::Signed(key) = &card.secret else {
        panic!("-n made a legacy card: {text}");
    };
    assert!(text.ends_with(",\"version\":2}\n"), "{text}");
    let record = env
        .bank
        .ledger()
        .user(&Username::new("bob").unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(record.card_public, Some(key.public().to_hex()));
    assert_eq!(record.card_sha256, None);
    // Neither way round: the bank's record holds no value of the card file, the file no value
    // of the record (the public key is not written; it follows from the seed).
    let stored = serde_json::to_string(&record).unwrap();
    let seed = key.to_hex();
    assert!(!stored.contains(seed.as_str()), "{stored}");
    let seed_bytes = CardSecret::from_hex(&seed).unwrap();
    let sha: String = protocol::primitives::sha256(&[seed_bytes.expose()])
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert!(!stored.contains(&sha), "{stored}");
    assert!(!text.contains(&key.public().to_hex()), "{text}");
    // And the card works, with the spec's outputs.
    assert_eq!(
        env.ok(&["-a", "bob", "-d", "5.00"]).await,
        line("bob", "deposit", "5")
    );
    assert_eq!(env.balance("bob").await, line("bob", "balance", "105"));
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_legacy_card_file_still_logs_in() {
    let env = Env::start().await;
    // An account opened before signed cards: its card is a secret, its file has no version.
    let secret = CardSecret::random(&mut OsRng);
    let auth = load_auth_file(env.path("bank.auth")).unwrap();
    let mut client = Client::connect(&format!("127.0.0.1:{}", env.port), &auth)
        .await
        .unwrap();
    let opened = client
        .call(&Request::OpenCardAccount {
            username: Username::new("old").unwrap(),
            initial_cents: Cents(2_000),
            txid: TxId::random(&mut OsRng),
            card: secret.clone(),
        })
        .await
        .unwrap();
    assert!(
        matches!(opened, Response::AccountOpened { .. }),
        "{opened:?}"
    );
    let _ = client.close().await;
    let card = Card {
        account: Username::new("old").unwrap(),
        secret: secret.into(),
    };
    card.create(env.path("old.card").to_str().unwrap()).unwrap();
    assert!(!std::fs::read_to_string(env.path("old.card"))
        .unwrap()
        .contains("version"));
    assert_eq!(
        env.ok(&["-a", "old", "-w", "5.00"]).await,
        line("old", "withdraw", "5")
    );
    assert_eq!(env.balance("old").await, line("old", "balance", "15"));
    // A signed card of the right account name but another key is refused (255).
    let forged = Card {
        account: Username::new("old").unwrap(),
        secret: protocol::CardKey::random(&mut OsRng).into(),
    };
    forged
        .create(env.path("forged.card").to_str().unwrap())
        .unwrap();
    env.fails(255, &["-a", "old", "-c", "forged.card", "-g"])
        .await;
    env.stop().await;
}

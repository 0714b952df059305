//! The terminal key in headless Chromium (PROTOCOL.md §6.8): stored in IndexedDB as a
//! non-extractable WebCrypto key that WebCrypto refuses to export, yet completes a real
//! handshake with the bank side of the protocol through its one HMAC.
#![cfg(target_arch = "wasm32")]

use atm_wasm::link::keystore::{self, Slot};
use idb::{DatabaseEvent, Factory, TransactionMode};
use js_sys::Reflect;
use protocol::server::{self, Hello};
use protocol::{client, BankId, BankKey, Config, MasterSecret, Psk, TerminalId};
use rand_core::OsRng;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::wasm_bindgen_test as test;
use web_sys::CryptoKey;

wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

const NOW: u64 = 1_700_000_000_000;

fn bank_key() -> BankKey {
    BankKey::from_secret(BankId::new("bank-1").unwrap(), [0x24; 32])
}

fn terminal() -> TerminalId {
    TerminalId::new("t-keystore-test").unwrap()
}

/// The raw `CryptoKey` as any script on the page would find it, read straight from IndexedDB.
async fn raw_stored_key(slot: &str) -> CryptoKey {
    let mut open = Factory::new().unwrap().open("secure-atm", Some(1)).unwrap();
    open.on_upgrade_needed(|event| {
        let _ = event.database();
    });
    let database = open.await.unwrap();
    let transaction = database
        .transaction(&["terminals"], TransactionMode::ReadOnly)
        .unwrap();
    let record = transaction
        .object_store("terminals")
        .unwrap()
        .get(JsValue::from(slot))
        .unwrap()
        .await
        .unwrap()
        .expect("a stored record");
    database.close();
    Reflect::get(&record, &"key".into())
        .unwrap()
        .dyn_into::<CryptoKey>()
        .unwrap()
}

#[test]
async fn the_stored_key_cannot_be_exported() {
    let psk = Psk::from_bytes([7; 32]);
    let stored = keystore::save(Slot::Atm, &terminal(), &psk, &bank_key().pin())
        .await
        .unwrap();
    assert!(!stored.extractable());

    let key = raw_stored_key("atm").await;
    assert!(!key.extractable());
    let subtle = web_sys::window().unwrap().crypto().unwrap().subtle();
    for format in ["raw", "jwk"] {
        let export = subtle.export_key(format, &key).unwrap();
        let refused = JsFuture::from(export).await.expect_err("exported");
        let name = Reflect::get(&refused, &"name".into()).unwrap();
        assert_eq!(name.as_string().as_deref(), Some("InvalidAccessError"));
    }
    keystore::forget(Slot::Atm).await.unwrap();
}

#[test]
async fn the_stored_key_completes_a_real_handshake_after_a_reload() {
    let psk = Psk::from_bytes([9; 32]);
    let pin = bank_key().pin();
    keystore::save(Slot::Console, &terminal(), &psk, &pin)
        .await
        .unwrap();
    // As after a reload: everything comes back from IndexedDB.
    let stored = keystore::load(Slot::Console)
        .await
        .unwrap()
        .expect("stored");
    assert_eq!(stored.terminal, terminal());
    assert_eq!(stored.bank, pin);

    let config = Config::default();
    let (atm, hello) = client::start_external_key(
        &config,
        stored.terminal.clone(),
        &stored.bank,
        &mut OsRng,
        NOW,
    )
    .unwrap();
    let Ok(Hello::Terminal(received)) =
        server::read_hello(&config, &bank_key(), hello.as_bytes(), NOW)
    else {
        panic!("not a terminal hello");
    };
    let (bank, server_hello) = received
        .respond(Some(&psk), &bank_key(), &mut OsRng, NOW)
        .unwrap();
    let pending = atm.read_server_hello(server_hello.as_bytes(), NOW).unwrap();
    let master = stored.master_secret(pending.master_input()).await.unwrap();
    let (_, finished) = pending.finish(master).unwrap();
    assert!(bank.read_client_finished(finished.as_bytes()).is_ok());

    keystore::forget(Slot::Console).await.unwrap();
    assert!(keystore::load(Slot::Console).await.unwrap().is_none());
}

#[test]
async fn another_key_fails_the_handshake() {
    let pin = bank_key().pin();
    let stored = keystore::save(Slot::Atm, &terminal(), &Psk::from_bytes([1; 32]), &pin)
        .await
        .unwrap();
    let config = Config::default();
    let (atm, hello) =
        client::start_external_key(&config, terminal(), &pin, &mut OsRng, NOW).unwrap();
    let Ok(Hello::Terminal(received)) =
        server::read_hello(&config, &bank_key(), hello.as_bytes(), NOW)
    else {
        panic!("not a terminal hello");
    };
    let (_, server_hello) = received
        .respond(
            Some(&Psk::from_bytes([2; 32])),
            &bank_key(),
            &mut OsRng,
            NOW,
        )
        .unwrap();
    let pending = atm.read_server_hello(server_hello.as_bytes(), NOW).unwrap();
    let master: MasterSecret = stored.master_secret(pending.master_input()).await.unwrap();
    assert!(pending.finish(master).is_err());
    keystore::forget(Slot::Atm).await.unwrap();
}

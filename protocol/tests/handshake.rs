//! Handshake tests: the happy path and every way a handshake must fail (holes 2, 4, 5, 6, 7, 9),
//! and protocol v2's bank identity: only the holder of the pinned static key passes.

mod common;

use common::*;
use protocol::{
    client, server, BankId, BankKey, Config, Error, HandshakeFault, Psk, Request, TerminalId,
};
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

fn run(
    bank_keys: impl Fn(&TerminalId) -> Option<Psk>,
    tamper: impl FnMut(Flight, &mut Vec<u8>),
) -> Result<(), Failed> {
    let atm = terminal();
    handshake_with(
        &Config::default(),
        &atm,
        bank_keys,
        &mut rng(1),
        NOW,
        NOW,
        tamper,
    )
    .map(|_| ())
}

/// Replaces the first occurrence of `field`'s value (a JSON string) in a message.
fn set_field(msg: &mut Vec<u8>, field: &str, value: &str) {
    let mut v: serde_json::Value = serde_json::from_slice(msg).unwrap();
    v[field] = serde_json::Value::String(value.to_owned());
    *msg = serde_json::to_vec(&v).unwrap();
}

fn flip_hex_field(msg: &mut Vec<u8>, field: &str) {
    let v: serde_json::Value = serde_json::from_slice(msg).unwrap();
    let old = v[field].as_str().unwrap();
    let mut bytes = hex::decode(old).unwrap();
    bytes[0] ^= 0x01;
    set_field(msg, field, &hex::encode(bytes));
}

const BAD_FINISHED_AT_CLIENT: Failed =
    Failed::ClientHello(Error::HandshakeFailed(HandshakeFault::BadFinished));

#[test]
fn clean_handshake_then_records_flow_both_ways() {
    let (mut atm, mut bank) = established(&mut rng(2));
    let mut r = rng(3);
    let wire = atm.seal(&Request::Balance {}, &mut r, NOW).unwrap();
    assert_eq!(
        bank.open(wire.as_bytes(), NOW).unwrap(),
        Request::Balance {}
    );
    assert_eq!(bank.terminal_id().as_str(), "atm-0001");
}

#[test]
fn a_bank_with_the_terminals_psk_but_not_the_pinned_static_key_is_refused() {
    // An impostor that stole the terminal's PSK (from the terminal, a shared auth file or the
    // bank's data) but not the bank's private key: same id, or a key of its own.
    // It cannot open the sealed id (the hello was sealed for the pinned key), but it knows
    // whose PSK it stole: it seals that id again for its own key and answers.
    let atm = terminal();
    for (secret, id) in [([0x25; 32], "bank-0001"), ([0x24; 32], "bank-0002")] {
        let fake = BankKey::from_secret(BankId::new(id).unwrap(), secret);
        let res = handshake_as(
            &Config::default(),
            &atm,
            &fake,
            known(&atm),
            &mut rng(11),
            (NOW, NOW),
            |f, m| {
                if f == Flight::ClientHello {
                    reseal(m, secret, atm.id.as_str());
                }
            },
        );
        assert_eq!(res.err(), Some(BAD_FINISHED_AT_CLIENT));
    }
    // The genuine key passes.
    assert!(handshake_as(
        &Config::default(),
        &atm,
        &bank_key(),
        known(&atm),
        &mut rng(11),
        (NOW, NOW),
        |_, _| {},
    )
    .is_ok());
}

#[test]
fn version_1_is_refused_both_ways_without_fallback() {
    let set_version = |msg: &mut Vec<u8>| {
        let mut v: serde_json::Value = serde_json::from_slice(msg).unwrap();
        v["version"] = 1.into();
        *msg = serde_json::to_vec(&v).unwrap();
    };
    let version = Error::HandshakeFailed(HandshakeFault::Version);
    let res = run(known_default, |f, m| {
        if f == Flight::ClientHello {
            set_version(m)
        }
    });
    assert_eq!(res, Err(Failed::BankHello(version)));
    let res = run(known_default, |f, m| {
        if f == Flight::ServerHello {
            set_version(m)
        }
    });
    assert_eq!(res, Err(Failed::ClientHello(version)));
    assert_eq!(protocol::PROTOCOL_VERSION, 2);
}

#[test]
fn wrong_psk_fails_at_the_atm_and_the_bank_sees_nothing_accepted() {
    // The bank holds another key for this terminal: the ATM refuses the bank's Finished.
    assert_eq!(
        run(|_| Some(Psk::from_bytes([9; 32])), |_, _| {}),
        Err(BAD_FINISHED_AT_CLIENT)
    );
}

#[test]
fn unknown_terminal_looks_exactly_like_a_wrong_key() {
    // The bank answers an unknown terminal with a throw-away key: the ATM sees the same failure,
    // at the same step, as with a wrong key.
    assert_eq!(run(|_| None, |_, _| {}), Err(BAD_FINISHED_AT_CLIENT));
}

#[test]
fn bank_refuses_client_finished_from_an_atm_with_the_wrong_key() {
    // Simulate an ATM that skips its own check of the bank's Finished: the bank still refuses.
    let config = Config::default();
    let atm = terminal();
    let mut r = rng(4);
    for bank_psk in [Some(Psk::from_bytes([9; 32])), None] {
        let (state, hello) =
            client::start(&config, atm.id.clone(), &atm.psk, &atm.pin, &mut r, NOW).unwrap();
        let received =
            server::read_client_hello(&config, &bank_key(), hello.as_bytes(), NOW).unwrap();
        let (bank, server_hello) = received
            .respond(bank_psk.as_ref(), &bank_key(), &mut r, NOW)
            .unwrap();
        // The ATM's check fails; forge a ClientFinished from the ATM's own (wrong) view instead.
        assert!(state
            .read_server_hello(server_hello.as_bytes(), NOW)
            .is_err());
        let forged = format!(
            r#"{{"type":"client_finished","finished":"{}"}}"#,
            "ab".repeat(32)
        );
        assert_eq!(
            bank.read_client_finished(forged.as_bytes()).err(),
            Some(Error::HandshakeFailed(HandshakeFault::BadFinished))
        );
    }
}

#[test]
fn altered_client_nonce_or_share_or_terminal_breaks_the_transcript() {
    let res = run(known_default, |f, m| {
        if f == Flight::ClientHello {
            flip_hex_field(m, "client_nonce");
        }
    });
    assert_eq!(res, Err(BAD_FINISHED_AT_CLIENT));
    // The share keys the sealed id, so an altered share fails at the bank, before it answers.
    for field in ["client_share", "sealed_terminal_id"] {
        let res = run(known_default, |f, m| {
            if f == Flight::ClientHello {
                flip_hex_field(m, field);
            }
        });
        assert_eq!(res, Err(Failed::BankHello(SEALED_ID)), "{field}");
    }
}

const SEALED_ID: Error = Error::HandshakeFailed(HandshakeFault::SealedId);

#[test]
fn the_terminal_id_never_appears_in_the_client_hello() {
    let config = Config::default();
    let mut lengths = std::collections::BTreeSet::new();
    let mut seen = std::collections::BTreeSet::new();
    for (i, id) in ["a", "atm-0001", "ATM_0001", &"x".repeat(64)]
        .into_iter()
        .enumerate()
    {
        for seed in 0..3 {
            let atm = Terminal {
                id: TerminalId::new(id).unwrap(),
                ..terminal()
            };
            let (_, hello) = client::start(
                &config,
                atm.id.clone(),
                &atm.psk,
                &atm.pin,
                &mut rng(100 + 10 * i as u64 + seed),
                NOW,
            )
            .unwrap();
            // Neither the id (as a JSON string, or anywhere for ids too long to occur in hex by
            // chance), nor its hex, nor a `terminal_id` field.
            assert!(!hello.contains(&format!("\"{id}\"")), "{hello}");
            if id.len() >= 8 {
                assert!(!hello.contains(id), "{hello}");
                assert!(!hello.contains(&hex::encode(id)), "{hello}");
            }
            assert!(!hello.contains("\"terminal_id\""), "{hello}");
            let v: serde_json::Value = serde_json::from_str(&hello).unwrap();
            let sealed = v["sealed_terminal_id"].as_str().unwrap().to_owned();
            assert_eq!(sealed.len(), 224);
            // Every id seals to the same length, and never twice to the same bytes.
            lengths.insert(hello.len());
            assert!(seen.insert(sealed));
            // The bank opens it.
            let received =
                server::read_client_hello(&config, &bank_key(), hello.as_bytes(), NOW).unwrap();
            assert_eq!(received.terminal_id(), &atm.id);
        }
    }
    assert_eq!(lengths.len(), 1, "{lengths:?}");
}

#[test]
fn a_tampered_sealed_id_fails_at_the_bank() {
    let config = Config::default();
    let atm = terminal();
    let (_, hello) = client::start(
        &config,
        atm.id.clone(),
        &atm.psk,
        &atm.pin,
        &mut rng(20),
        NOW,
    )
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&hello).unwrap();
    let sealed = hex::decode(v["sealed_terminal_id"].as_str().unwrap()).unwrap();
    // Every byte of the ciphertext (the first block flips the id's start, CBC-style) and of
    // the MAC.
    for at in 0..sealed.len() {
        let mut bad = sealed.clone();
        bad[at] ^= 0x01;
        let mut v = v.clone();
        v["sealed_terminal_id"] = hex::encode(&bad).into();
        let err =
            server::read_client_hello(&config, &bank_key(), v.to_string().as_bytes(), NOW).err();
        assert_eq!(err, Some(SEALED_ID), "byte {at}");
    }
    // Another id sealed under another share (a splice from another hello) fails too.
    let (_, other) = client::start(
        &config,
        atm.id.clone(),
        &atm.psk,
        &atm.pin,
        &mut rng(21),
        NOW,
    )
    .unwrap();
    let other: serde_json::Value = serde_json::from_str(&other).unwrap();
    let mut spliced = v.clone();
    spliced["sealed_terminal_id"] = other["sealed_terminal_id"].clone();
    assert_eq!(
        server::read_client_hello(&config, &bank_key(), spliced.to_string().as_bytes(), NOW).err(),
        Some(SEALED_ID)
    );
}

#[test]
fn a_hello_sealed_for_another_banks_key_fails_at_that_bank() {
    let config = Config::default();
    let atm = terminal();
    let other = BankKey::from_secret(BankId::new("bank-0001").unwrap(), [0x25; 32]);
    let (_, hello) = client::start(
        &config,
        atm.id.clone(),
        &atm.psk,
        &other.pin(),
        &mut rng(22),
        NOW,
    )
    .unwrap();
    assert_eq!(
        server::read_client_hello(&config, &bank_key(), hello.as_bytes(), NOW).err(),
        Some(SEALED_ID)
    );
    // The bank it was sealed for opens it.
    let received = server::read_client_hello(&config, &other, hello.as_bytes(), NOW).unwrap();
    assert_eq!(received.terminal_id(), &atm.id);
}

fn known_default(id: &TerminalId) -> Option<Psk> {
    let atm = terminal();
    (id == &atm.id).then_some(atm.psk)
}

#[test]
fn altered_bank_nonce_share_or_finished_is_refused_by_the_atm() {
    for field in ["bank_nonce", "bank_share", "finished"] {
        let res = run(known_default, |f, m| {
            if f == Flight::ServerHello {
                flip_hex_field(m, field);
            }
        });
        assert_eq!(res, Err(BAD_FINISHED_AT_CLIENT), "{field}");
    }
}

#[test]
fn altered_timestamps_break_the_transcript() {
    let bump = |m: &mut Vec<u8>| {
        let mut v: serde_json::Value = serde_json::from_slice(m).unwrap();
        v["timestamp"] = (v["timestamp"].as_u64().unwrap() + 1).into();
        *m = serde_json::to_vec(&v).unwrap();
    };
    let res = run(known_default, |f, m| {
        if f == Flight::ClientHello {
            bump(m)
        }
    });
    assert_eq!(res, Err(BAD_FINISHED_AT_CLIENT));
    let res = run(known_default, |f, m| {
        if f == Flight::ServerHello {
            bump(m)
        }
    });
    assert_eq!(res, Err(BAD_FINISHED_AT_CLIENT));
}

#[test]
fn altered_client_finished_is_refused_by_the_bank() {
    let res = run(known_default, |f, m| {
        if f == Flight::ClientFinished {
            flip_hex_field(m, "finished");
        }
    });
    assert_eq!(
        res,
        Err(Failed::BankFinished(Error::HandshakeFailed(
            HandshakeFault::BadFinished
        )))
    );
}

#[test]
fn stale_hellos_are_refused_either_way() {
    let atm = terminal();
    let config = Config::default();
    let skew = config.max_skew_ms;
    // Client clock behind the bank by more than the window: the bank refuses the ClientHello.
    let res = handshake_with(
        &config,
        &atm,
        known(&atm),
        &mut rng(5),
        NOW - skew - 1,
        NOW,
        |_, _| {},
    );
    assert_eq!(
        res.err(),
        Some(Failed::BankHello(Error::HandshakeFailed(
            HandshakeFault::Stale
        )))
    );
    // Exactly at the window edge both sides accept.
    assert!(handshake_with(
        &config,
        &atm,
        known(&atm),
        &mut rng(5),
        NOW - skew,
        NOW,
        |_, _| {}
    )
    .is_ok());
    // Extreme values never overflow: time 0 against u64::MAX is just stale.
    let res = handshake_with(
        &config,
        &atm,
        known(&atm),
        &mut rng(5),
        0,
        u64::MAX,
        |_, _| {},
    );
    assert_eq!(
        res.err(),
        Some(Failed::BankHello(Error::HandshakeFailed(
            HandshakeFault::Stale
        )))
    );
    // A delayed ServerHello (the ATM's clock has moved on) is refused by the ATM.
    let config2 = config.clone();
    let (state, hello) = client::start(
        &config2,
        atm.id.clone(),
        &atm.psk,
        &atm.pin,
        &mut rng(6),
        NOW,
    )
    .unwrap();
    let received = server::read_client_hello(&config2, &bank_key(), hello.as_bytes(), NOW).unwrap();
    let (_, sh) = received
        .respond(Some(&atm.psk), &bank_key(), &mut rng(7), NOW)
        .unwrap();
    assert_eq!(
        state.read_server_hello(sh.as_bytes(), NOW + skew + 1).err(),
        Some(Error::HandshakeFailed(HandshakeFault::Stale))
    );
}

#[test]
fn replayed_client_hello_gets_fresh_keys_and_the_old_finished_fails() {
    let config = Config::default();
    let atm = terminal();
    let mut r = rng(8);
    let (state, hello) =
        client::start(&config, atm.id.clone(), &atm.psk, &atm.pin, &mut r, NOW).unwrap();
    let first = server::read_client_hello(&config, &bank_key(), hello.as_bytes(), NOW).unwrap();
    let (_, sh) = first
        .respond(Some(&atm.psk), &bank_key(), &mut r, NOW)
        .unwrap();
    let (_, finished) = state.read_server_hello(sh.as_bytes(), NOW).unwrap();
    // An attacker replays the same ClientHello and the recorded ClientFinished.
    let again = server::read_client_hello(&config, &bank_key(), hello.as_bytes(), NOW + 1).unwrap();
    let (bank, _) = again
        .respond(Some(&atm.psk), &bank_key(), &mut r, NOW + 1)
        .unwrap();
    assert_eq!(
        bank.read_client_finished(finished.as_bytes()).err(),
        Some(Error::HandshakeFailed(HandshakeFault::BadFinished))
    );
}

#[test]
fn low_order_shares_are_refused() {
    // An all-zero share makes the X25519 output all zero: no contribution from the peer.
    let zero = "00".repeat(32);
    let res = run(known_default, |f, m| {
        if f == Flight::ClientHello {
            set_field(m, "client_share", &zero)
        }
    });
    assert_eq!(
        res,
        Err(Failed::BankHello(Error::HandshakeFailed(
            HandshakeFault::WeakShare
        )))
    );
    let res = run(known_default, |f, m| {
        if f == Flight::ServerHello {
            set_field(m, "bank_share", &zero)
        }
    });
    assert_eq!(
        res,
        Err(Failed::ClientHello(Error::HandshakeFailed(
            HandshakeFault::WeakShare
        )))
    );
}

#[test]
fn malformed_hellos_are_one_generic_error() {
    let config = Config::default();
    let (_, good) = client::start(
        &config,
        terminal().id,
        &terminal().psk,
        &terminal().pin,
        &mut rng(9),
        NOW,
    )
    .unwrap();
    let good: serde_json::Value = serde_json::from_str(&good).unwrap();
    let mut cases: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"not json".to_vec(),
        b"[]".to_vec(),
        b"{}".to_vec(),
        vec![0xff, 0xfe, 0x00],
        vec![b' '; protocol::MAX_HANDSHAKE_LEN + 1],
    ];
    let mut variant = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut v = good.clone();
        f(&mut v);
        cases.push(serde_json::to_vec(&v).unwrap());
    };
    variant(&|v| v["extra"] = 1.into());
    variant(&|v| v["type"] = "server_hello".into());
    variant(&|v| v["version"] = 1.into());
    variant(&|v| v["version"] = 3.into());
    variant(&|v| v["version"] = 256.into());
    variant(&|v| v["timestamp"] = (-1).into());
    variant(&|v| v["timestamp"] = "1700000000000".into());
    variant(&|v| v["terminal_id"] = "atm-0001".into());
    variant(&|v| {
        let sealed = v
            .as_object_mut()
            .unwrap()
            .remove("sealed_terminal_id")
            .unwrap();
        v["terminal_id"] = sealed;
    });
    variant(&|v| v["sealed_terminal_id"] = "".into());
    variant(&|v| v["sealed_terminal_id"] = "atm-0001".into());
    variant(&|v| {
        v["sealed_terminal_id"] = v["sealed_terminal_id"]
            .as_str()
            .unwrap()
            .to_uppercase()
            .into()
    });
    variant(&|v| v["sealed_terminal_id"] = v["sealed_terminal_id"].as_str().unwrap()[2..].into());
    variant(&|v| {
        v["sealed_terminal_id"] = format!("{}00", v["sealed_terminal_id"].as_str().unwrap()).into()
    });
    variant(&|v| v["client_nonce"] = v["client_nonce"].as_str().unwrap().to_uppercase().into());
    variant(&|v| v["client_nonce"] = v["client_nonce"].as_str().unwrap()[2..].into());
    variant(&|v| v["client_share"] = format!("{}00", v["client_share"].as_str().unwrap()).into());
    variant(&|v| {
        v.as_object_mut().unwrap().remove("client_share");
    });
    for case in cases {
        let err = server::read_client_hello(&config, &bank_key(), &case, NOW)
            .err()
            .expect("must fail");
        assert!(matches!(err, Error::HandshakeFailed(_)), "{err:?}");
        assert_eq!(err.to_string(), "handshake failed");
    }
}

#[test]
fn a_server_hello_reflected_to_the_bank_or_a_client_hello_to_the_atm_fails() {
    let config = Config::default();
    let atm = terminal();
    let mut r = rng(10);
    let (state, hello) =
        client::start(&config, atm.id.clone(), &atm.psk, &atm.pin, &mut r, NOW).unwrap();
    let received = server::read_client_hello(&config, &bank_key(), hello.as_bytes(), NOW).unwrap();
    let (bank, sh) = received
        .respond(Some(&atm.psk), &bank_key(), &mut r, NOW)
        .unwrap();
    assert!(server::read_client_hello(&config, &bank_key(), sh.as_bytes(), NOW).is_err());
    assert!(bank.read_client_finished(sh.as_bytes()).is_err());
    assert!(state.read_server_hello(hello.as_bytes(), NOW).is_err());
}

#[test]
fn different_sessions_get_different_keys() {
    // Same terminal and key, fresh randomness: a record from one session never opens in another.
    let (mut atm1, _) = established(&mut rng(11));
    let (_, mut bank2) = established(&mut rng(12));
    let wire = atm1.seal(&Request::Balance {}, &mut rng(13), NOW).unwrap();
    assert!(bank2.open(wire.as_bytes(), NOW).is_err());
}

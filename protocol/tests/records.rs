//! Record-layer tests: round trips, and refusal of every tampered, replayed, reordered, dropped,
//! truncated, reflected or stale record (holes 1, 3, 4, 9, 10).

mod common;

use common::*;
use protocol::{
    BankSession, Cents, ClientSession, Error, RecordFault, Request, Response, TxId,
    MAX_PLAINTEXT_LEN, MAX_RECORD_LEN,
};
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

fn deposit(cents: u64) -> Request {
    Request::Deposit {
        txid: TxId::from_bytes([7; 16]),
        amount_cents: Cents(cents),
    }
}

fn pair(seed: u64) -> (ClientSession, BankSession) {
    established(&mut rng(seed))
}

fn field(wire: &str, name: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(wire).unwrap();
    v[name].as_str().unwrap().to_owned()
}

fn with_field(wire: &str, name: &str, value: serde_json::Value) -> String {
    let mut v: serde_json::Value = serde_json::from_str(wire).unwrap();
    v[name] = value;
    serde_json::to_string(&v).unwrap()
}

fn flip_hex(wire: &str, name: &str, byte: usize, mask: u8) -> String {
    let mut bytes = hex::decode(field(wire, name)).unwrap();
    bytes[byte] ^= mask;
    with_field(wire, name, hex::encode(bytes).into())
}

#[test]
fn requests_and_responses_round_trip_in_order() {
    let (mut atm, mut bank) = pair(1);
    let mut r = rng(2);
    for i in 0..20u64 {
        let req = deposit(100 + i);
        let wire = atm.seal(&req, &mut r, NOW + i).unwrap();
        assert_eq!(field(&wire, "iv").len(), 32);
        assert_eq!(bank.open(wire.as_bytes(), NOW + i).unwrap(), req);
        let resp = Response::Balance {
            balance_cents: Cents(i),
        };
        let wire = bank.seal(&resp, &mut r, NOW + i).unwrap();
        assert_eq!(atm.open(wire.as_bytes(), NOW + i).unwrap(), resp);
    }
}

#[test]
fn iv_bit_flip_cannot_rewrite_the_amount() {
    // Hole 1: in the seed, the MAC covered only the ciphertext, so flipping IV bits rewrote the
    // first plaintext block. Our MAC covers the IV: every IV bit flip is refused.
    let (mut atm, _) = pair(3);
    let wire = atm.seal(&deposit(100), &mut rng(4), NOW).unwrap();
    for byte in 0..16 {
        for bit in 0..8 {
            let (_, mut bank) = pair(3);
            let tampered = flip_hex(&wire, "iv", byte, 1 << bit);
            assert_eq!(
                bank.open(tampered.as_bytes(), NOW),
                Err(Error::BadRecord(RecordFault::Mac))
            );
        }
    }
}

#[test]
fn any_flip_in_ciphertext_or_mac_is_refused() {
    let (mut atm, _) = pair(5);
    let wire = atm.seal(&deposit(100), &mut rng(6), NOW).unwrap();
    let ct_len = field(&wire, "ciphertext").len() / 2;
    for (name, len) in [("ciphertext", ct_len), ("mac", 32)] {
        for byte in 0..len {
            let (_, mut bank) = pair(5);
            let tampered = flip_hex(&wire, name, byte, 0x80);
            assert_eq!(
                bank.open(tampered.as_bytes(), NOW),
                Err(Error::BadRecord(RecordFault::Mac)),
                "{name}[{byte}]"
            );
        }
    }
}

#[test]
fn replay_reorder_and_drop_are_refused() {
    let mut r = rng(7);
    let (mut atm, mut bank) = pair(8);
    let first = atm.seal(&deposit(1), &mut r, NOW).unwrap();
    let second = atm.seal(&deposit(2), &mut r, NOW).unwrap();
    let _third = atm.seal(&deposit(3), &mut r, NOW).unwrap();
    assert!(bank.open(first.as_bytes(), NOW).is_ok());
    // Replay of an accepted record.
    assert_eq!(
        bank.open(first.as_bytes(), NOW),
        Err(Error::BadRecord(RecordFault::Sequence))
    );
    // The session is closed for good after any failure, even for the right next record.
    assert_eq!(bank.open(second.as_bytes(), NOW), Err(Error::Closed));
    assert!(!bank.is_open());

    // Drop: the third arrives where the second was expected.
    let (mut atm, mut bank) = pair(8);
    let [first, _second, third] = [1, 2, 3].map(|i| atm.seal(&deposit(i), &mut r, NOW).unwrap());
    assert!(bank.open(first.as_bytes(), NOW).is_ok());
    assert_eq!(
        bank.open(third.as_bytes(), NOW),
        Err(Error::BadRecord(RecordFault::Sequence))
    );
    let _ = third;

    // Reorder with the sequence number rewritten to the expected value: the MAC covers it.
    let (mut atm, mut bank) = pair(8);
    let [_first, second] = [1, 2].map(|i| atm.seal(&deposit(i), &mut r, NOW).unwrap());
    let relabelled = with_field(&second, "seq", 0.into());
    assert_eq!(
        bank.open(relabelled.as_bytes(), NOW),
        Err(Error::BadRecord(RecordFault::Mac))
    );
}

#[test]
fn reflection_is_refused_both_ways() {
    // Hole 4: keys differ per direction and request/response types cannot parse as each other.
    let mut r = rng(9);
    let (mut atm, mut bank) = pair(10);
    let from_bank = bank.seal(&Response::LoggedOut {}, &mut r, NOW).unwrap();
    assert!(matches!(
        bank.open(from_bank.as_bytes(), NOW),
        Err(Error::BadRecord(_))
    ));

    let (mut atm2, _) = pair(10);
    let from_atm = atm2.seal(&Request::Logout {}, &mut r, NOW).unwrap();
    assert!(matches!(
        atm.open(from_atm.as_bytes(), NOW),
        Err(Error::BadRecord(_))
    ));
}

#[test]
fn stale_and_future_records_are_refused() {
    let skew = protocol::Config::default().max_skew_ms;
    for (sealed_at, opened_at) in [(NOW, NOW + skew + 1), (NOW + skew + 1, NOW), (0, u64::MAX)] {
        let (mut atm, mut bank) = pair(11);
        let wire = atm
            .seal(&Request::Balance {}, &mut rng(12), sealed_at)
            .unwrap();
        assert_eq!(
            bank.open(wire.as_bytes(), opened_at),
            Err(Error::BadRecord(RecordFault::Stale))
        );
    }
    let (mut atm, mut bank) = pair(11);
    let wire = atm.seal(&Request::Balance {}, &mut rng(12), NOW).unwrap();
    assert!(bank.open(wire.as_bytes(), NOW + skew).is_ok());
}

#[test]
fn malformed_records_are_one_generic_error() {
    let (mut atm, _) = pair(13);
    let good = atm.seal(&deposit(5), &mut rng(14), NOW).unwrap();
    let ct = field(&good, "ciphertext");
    let mut cases = vec![
        String::new(),
        "null".into(),
        "[]".into(),
        "{}".into(),
        good[..good.len() - 1].to_owned(),
        good.replace("\"seq\":0", "\"seq\":-1"),
        good.replace("\"seq\":0", "\"seq\":\"0\""),
        good.replace("\"seq\":0", "\"seq\":0.0"),
        good.replace("\"seq\":0", "\"seq\":0,\"seq\":0"),
        with_field(&good, "extra", 1.into()),
        with_field(&good, "iv", field(&good, "iv").to_uppercase().into()),
        with_field(&good, "iv", field(&good, "iv")[2..].into()),
        with_field(&good, "mac", field(&good, "mac")[..62].into()),
        with_field(&good, "mac", format!("{}00", field(&good, "mac")).into()),
        with_field(&good, "ciphertext", "".into()),
        with_field(&good, "ciphertext", ct[..ct.len() - 2].into()),
        with_field(&good, "ciphertext", ct[..ct.len() - 32].into()),
        with_field(&good, "ciphertext", format!("{ct} ").into()),
        with_field(&good, "mac", 5.into()),
        " ".repeat(MAX_RECORD_LEN + 1),
    ];
    cases.push(String::from_utf8_lossy(&[0xff, 0x00, 0x7b]).into_owned());
    for case in &cases {
        let (_, mut bank) = pair(13);
        let err = bank.open(case.as_bytes(), NOW).expect_err("must fail");
        assert!(matches!(err, Error::BadRecord(_)), "{case:?}: {err:?}");
        assert_eq!(err.to_string(), "bad record");
    }
    // Invalid UTF-8 straight from a binary frame.
    let (_, mut bank) = pair(13);
    assert!(matches!(
        bank.open(&[0xc3, 0x28], NOW),
        Err(Error::BadRecord(_))
    ));
    // The untouched record still opens in a fresh session.
    let (_, mut bank) = pair(13);
    assert!(bank.open(good.as_bytes(), NOW).is_ok());
}

#[test]
fn oversized_plaintext_is_refused_locally_and_the_limit_fits_a_record() {
    let (mut atm, mut bank) = pair(15);
    // The largest history the bank can send must fit in one record.
    let entries = (0..protocol::message::MAX_HISTORY)
        .map(|i| protocol::HistoryEntry {
            txid: TxId::from_bytes([0xff; 16]),
            kind: protocol::TxKind::Withdraw,
            amount_cents: Cents(u64::MAX - u64::from(i)),
            balance_cents: Cents(u64::MAX),
            time_ms: u64::MAX,
        })
        .collect();
    let big = Response::History { entries };
    let wire = bank.seal(&big, &mut rng(16), NOW).unwrap();
    assert!(wire.len() <= MAX_RECORD_LEN, "{} bytes", wire.len());
    assert_eq!(atm.open(wire.as_bytes(), NOW).unwrap(), big);
    // Anything over the plaintext limit is refused before anything is sent, and the session
    // stays usable.
    let too_many = Response::History {
        entries: vec![
            protocol::HistoryEntry {
                txid: TxId::from_bytes([0; 16]),
                kind: protocol::TxKind::Deposit,
                amount_cents: Cents(1),
                balance_cents: Cents(1),
                time_ms: 1,
            };
            MAX_PLAINTEXT_LEN / 64
        ],
    };
    assert_eq!(
        bank.seal(&too_many, &mut rng(17), NOW),
        Err(Error::TooLarge)
    );
    let wire = bank
        .seal(&Response::LoggedOut {}, &mut rng(18), NOW)
        .unwrap();
    assert_eq!(
        atm.open(wire.as_bytes(), NOW).unwrap(),
        Response::LoggedOut {}
    );
}

#[test]
fn the_largest_request_fits_the_plaintext_limit() {
    // Register with every field at its maximum, the password all escaped control characters.
    let (mut atm, mut bank) = pair(19);
    let req = Request::Register {
        username: protocol::Username::new("z".repeat(250)).unwrap(),
        full_name: protocol::FullName::new("\u{10FFFF}".repeat(100)).unwrap(),
        password: protocol::Password::new("\u{1}".repeat(protocol::Password::MAX_LEN)).unwrap(),
    };
    let wire = atm.seal(&req, &mut rng(20), NOW).unwrap();
    assert_eq!(bank.open(wire.as_bytes(), NOW).unwrap(), req);
}

#[test]
fn requests_with_out_of_domain_fields_do_not_parse() {
    // A record whose plaintext is valid JSON but not a valid request is a record failure.
    for bad in [
        r#"{"type":"deposit","txid":"00","amount_cents":1}"#,
        r#"{"type":"deposit","txid":"0707070707070707070707070707070707","amount_cents":-1}"#,
        r#"{"type":"deposit","txid":"07070707070707070707070707070707","amount_cents":1.5}"#,
        r#"{"type":"deposit","txid":"07070707070707070707070707070707","amount_cents":18446744073709551616}"#,
        r#"{"type":"deposit","txid":"07070707070707070707070707070707","amount_cents":1,"account":"x"}"#,
        r#"{"type":"login","username":"Bob","password":"x"}"#,
        r#"{"type":"login","username":"bob","password":""}"#,
        r#"{"type":"transfer"}"#,
        r#"{"type":"welcome"}"#,
    ] {
        assert!(serde_json::from_str::<Request>(bad).is_err(), "{bad}");
    }
    let ok = r#"{"type":"deposit","txid":"07070707070707070707070707070707","amount_cents":1}"#;
    assert_eq!(serde_json::from_str::<Request>(ok).unwrap(), deposit(1));
}

#[test]
fn forged_plaintexts_that_break_the_message_rules_are_refused() {
    let now = vector_now();
    // First, a forged but well-formed record opens: the forging helper is faithful.
    let (_, mut bank) = vector_pair();
    let ok = format!(r#"{{"ts":{now},"request":{{"type":"balance"}}}}"#);
    assert_eq!(
        bank.open(forge("c2s", 0, ok.as_bytes()).as_bytes(), now)
            .unwrap(),
        Request::Balance {}
    );
    let (mut atm, _) = vector_pair();
    let ok = format!(r#"{{"ts":{now},"response":{{"type":"logged_out"}}}}"#);
    assert_eq!(
        atm.open(forge("s2c", 0, ok.as_bytes()).as_bytes(), now)
            .unwrap(),
        Response::LoggedOut {}
    );

    let bad_requests = [
        // Structs written as arrays.
        format!(r#"["{now}",{{"type":"balance"}}]"#),
        format!(r#"{{"ts":{now},"request":["history",5]}}"#),
        format!(r#"[{now},["balance"]]"#),
        // Unknown fields, also on variants without fields.
        format!(r#"{{"ts":{now},"request":{{"type":"balance","x":1}}}}"#),
        format!(r#"{{"ts":{now},"request":{{"type":"logout","account":"bob"}}}}"#),
        format!(r#"{{"ts":{now},"request":{{"type":"balance"}},"x":1}}"#),
        // A bank reply where a request belongs (reflection at the message level).
        format!(r#"{{"ts":{now},"request":{{"type":"balance","balance_cents":7}}}}"#),
        format!(r#"{{"ts":{now},"response":{{"type":"logged_out"}}}}"#),
        // Duplicate keys, missing timestamp, wrong types.
        format!(r#"{{"ts":{now},"ts":{now},"request":{{"type":"balance"}}}}"#),
        r#"{"request":{"type":"balance"}}"#.to_owned(),
        format!(r#"{{"ts":"{now}","request":{{"type":"balance"}}}}"#),
        // Not UTF-8, not JSON.
        "\u{0}".to_owned(),
        "x".repeat(protocol::MAX_PLAINTEXT_LEN + 1),
    ];
    for bad in bad_requests {
        let (_, mut bank) = vector_pair();
        let wire = forge("c2s", 0, bad.as_bytes());
        assert_eq!(
            bank.open(wire.as_bytes(), now),
            Err(Error::BadRecord(RecordFault::Plaintext)),
            "{bad}"
        );
    }
    let (_, mut bank) = vector_pair();
    let wire = forge("c2s", 0, &[0xff, 0xfe]);
    assert_eq!(
        bank.open(wire.as_bytes(), now),
        Err(Error::BadRecord(RecordFault::Plaintext))
    );
    // A history whose entries are arrays is refused by the ATM.
    let (mut atm, _) = vector_pair();
    let bad = format!(r#"{{"ts":{now},"response":{{"type":"history","entries":[["00",1]]}}}}"#);
    assert!(atm
        .open(forge("s2c", 0, bad.as_bytes()).as_bytes(), now)
        .is_err());
}

#[test]
fn records_and_hellos_written_as_arrays_are_refused() {
    let (mut atm, mut bank) = pair(21);
    let wire = atm.seal(&Request::Balance {}, &mut rng(22), NOW).unwrap();
    let v: serde_json::Value = serde_json::from_str(&wire).unwrap();
    let as_array = serde_json::json!([v["seq"], v["iv"], v["ciphertext"], v["mac"]]).to_string();
    assert_eq!(
        bank.open(as_array.as_bytes(), NOW),
        Err(Error::BadRecord(RecordFault::Malformed))
    );
    let hello =
        r#"["client_finished","0000000000000000000000000000000000000000000000000000000000000000"]"#;
    let atm_t = terminal();
    let cfg = protocol::Config::default();
    let (_, ch) = protocol::client::start(
        &cfg,
        atm_t.id.clone(),
        &atm_t.psk,
        &atm_t.pin,
        &mut rng(23),
        NOW,
    )
    .unwrap();
    let received =
        protocol::server::read_client_hello(&cfg, &bank_key(), ch.as_bytes(), NOW).unwrap();
    let (state, _) = received
        .respond(Some(&atm_t.psk), &bank_key(), &mut rng(24), NOW)
        .unwrap();
    assert_eq!(
        state.read_client_finished(hello.as_bytes()).err(),
        Some(Error::HandshakeFailed(protocol::HandshakeFault::Malformed))
    );
}

// ---------------------------------------------------------------------------------------------
// Padding (PROTOCOL.md §8.6): what carries a credential, and the answer to it, have one length.

/// The plaintext length a record's ciphertext stands for, up to PKCS#7's 1 to 16 bytes.
fn ciphertext_len(wire: &str) -> usize {
    field(wire, "ciphertext").len() / 2
}

/// The ciphertext length of a plaintext of `len` bytes.
fn sealed_len(len: usize) -> usize {
    (len / 16 + 1) * 16
}

fn user(name: &str) -> protocol::Username {
    protocol::Username::new(name).unwrap()
}

fn password(text: &str) -> protocol::Password {
    protocol::Password::new(text).unwrap()
}

fn card(byte: u8) -> protocol::CardSecret {
    protocol::CardSecret::from_hex(&hex::encode([byte; 32])).unwrap()
}

/// Every request that carries a credential, with short fields and with every field at its
/// limit (passwords of `Password::MAX_LEN` bytes written as themselves in JSON).
fn credential_requests() -> Vec<(Request, Request)> {
    let long_user = user(&"z".repeat(protocol::Username::MAX_LEN));
    let long_password = || password(&"p".repeat(protocol::Password::MAX_LEN));
    vec![
        (
            Request::Register {
                username: user("a"),
                full_name: protocol::FullName::new("A").unwrap(),
                password: password("p"),
            },
            Request::Register {
                username: long_user.clone(),
                // Four bytes of UTF-8 each, the most a character of a full name takes.
                full_name: protocol::FullName::new(
                    "\u{10FFFF}".repeat(protocol::FullName::MAX_CHARS),
                )
                .unwrap(),
                password: long_password(),
            },
        ),
        (
            Request::Login {
                username: user("a"),
                password: password("p"),
            },
            Request::Login {
                username: long_user.clone(),
                password: long_password(),
            },
        ),
        (
            Request::OperatorLogin {
                username: user("a"),
                password: password("p"),
            },
            Request::OperatorLogin {
                username: long_user.clone(),
                password: long_password(),
            },
        ),
        (
            Request::CardLogin {
                username: user("a"),
                card: card(1),
            },
            Request::CardLogin {
                username: long_user.clone(),
                card: card(2),
            },
        ),
        (
            Request::OpenCardAccount {
                username: user("a"),
                initial_cents: Cents(1_000),
                txid: TxId::from_bytes([1; 16]),
                card: card(1),
            },
            Request::OpenCardAccount {
                username: long_user,
                initial_cents: Cents(u64::MAX),
                txid: TxId::from_bytes([2; 16]),
                card: card(2),
            },
        ),
        (
            Request::ChangePassword {
                old: password("p"),
                new: password("q"),
            },
            Request::ChangePassword {
                old: long_password(),
                new: long_password(),
            },
        ),
        (
            Request::ReissueCard {
                old: card(1),
                new: card(2),
            },
            Request::ReissueCard {
                old: card(3),
                new: card(4),
            },
        ),
    ]
}

#[test]
fn logins_with_passwords_of_1_and_1000_bytes_are_records_of_one_length() {
    let (mut atm, mut bank) = pair(40);
    let mut wires = Vec::new();
    for length in [1, 1_000] {
        let login = Request::Login {
            username: user("alice"),
            password: password(&"x".repeat(length)),
        };
        let wire = atm.seal(&login, &mut rng(41), NOW).unwrap();
        assert_eq!(bank.open(wire.as_bytes(), NOW).unwrap(), login);
        wires.push(wire);
    }
    assert_eq!(wires[0].len(), wires[1].len());
    assert_eq!(
        ciphertext_len(&wires[0]),
        sealed_len(protocol::CREDENTIAL_REQUEST_LEN)
    );
}

#[test]
fn every_credential_request_up_to_its_field_limits_is_one_length() {
    // The size is computed from the field limits with the longest `ts` (20 digits).
    let mut longest = 0;
    for (short, long) in credential_requests() {
        assert!(short.carries_credential() && long.carries_credential());
        let json = serde_json::json!({ "ts": u64::MAX, "request": &long }).to_string();
        longest = longest.max(json.len());
        let (mut atm, mut bank) = pair(42);
        for (request, now) in [(&short, NOW), (&long, u64::MAX)] {
            let wire = atm.seal(request, &mut rng(43), now).unwrap();
            assert_eq!(
                ciphertext_len(&wire),
                sealed_len(protocol::CREDENTIAL_REQUEST_LEN),
                "{}",
                request.kind()
            );
            if now == NOW {
                assert_eq!(bank.open(wire.as_bytes(), NOW).unwrap(), *request);
            }
        }
    }
    // The longest: a change_password with two passwords of Password::MAX_LEN bytes (the
    // number lib.rs and PROTOCOL.md §8.6 give).
    assert_eq!(longest, 2_130);
    assert!(longest <= protocol::CREDENTIAL_REQUEST_LEN);
}

#[test]
fn escaped_passwords_past_the_size_take_its_next_multiple_up_to_the_plaintext_limit() {
    let (mut atm, _) = pair(44);
    let sealed = |atm: &mut ClientSession, request: &Request| {
        atm.seal(request, &mut rng(45), u64::MAX)
            .map(|w| ciphertext_len(&w))
    };
    let unit = protocol::CREDENTIAL_REQUEST_LEN;
    // Any password of up to 176 bytes fits the size, whatever its characters: two of them
    // written as \u0001 each (6 bytes a byte) in a change_password, with a 20-digit ts.
    let change = |text: &str| Request::ChangePassword {
        old: password(text),
        new: password(text),
    };
    assert_eq!(
        sealed(&mut atm, &change(&"\u{1}".repeat(176))),
        Ok(sealed_len(unit))
    );
    assert_eq!(
        sealed(&mut atm, &change(&"\u{1}".repeat(177))),
        Ok(sealed_len(2 * unit))
    );
    // Two passwords of 1024 quotes (2 bytes each in JSON): 4178 bytes, so twice the size.
    assert_eq!(
        sealed(&mut atm, &change(&"\"".repeat(1_024))),
        Ok(sealed_len(2 * unit))
    );
    // A login whose password is 1024 control characters: 6476 bytes, three times the size.
    let login = Request::Login {
        username: user(&"z".repeat(protocol::Username::MAX_LEN)),
        password: password(&"\u{1}".repeat(1_024)),
    };
    assert_eq!(sealed(&mut atm, &login), Ok(sealed_len(3 * unit)));
    // A register as long as it gets (6894 bytes): four times would pass the plaintext limit,
    // so it is padded to the limit.
    let register = Request::Register {
        username: user(&"z".repeat(protocol::Username::MAX_LEN)),
        full_name: protocol::FullName::new("\u{10FFFF}".repeat(100)).unwrap(),
        password: password(&"\u{1}".repeat(1_024)),
    };
    assert_eq!(
        sealed(&mut atm, &register),
        Ok(sealed_len(MAX_PLAINTEXT_LEN))
    );
    // Two such passwords cannot be sent at all (12370 bytes), padded or not; nothing is sent
    // and the session goes on.
    assert_eq!(
        sealed(&mut atm, &change(&"\u{1}".repeat(1_024))),
        Err(Error::TooLarge)
    );
    let wire = atm.seal(&deposit(1), &mut rng(46), NOW).unwrap();
    let seq = serde_json::from_str::<serde_json::Value>(&wire).unwrap()["seq"].clone();
    assert_eq!(seq, 5, "the refused request took no sequence number");
}

#[test]
fn requests_without_a_credential_are_not_padded() {
    let (mut atm, mut bank) = pair(47);
    for request in [
        deposit(1),
        Request::Balance {},
        Request::Logout {},
        Request::Enroll {},
    ] {
        assert!(!request.carries_credential());
        let plaintext = serde_json::json!({ "ts": NOW, "request": &request }).to_string();
        let wire = atm.seal(&request, &mut rng(48), NOW).unwrap();
        assert_eq!(ciphertext_len(&wire), sealed_len(plaintext.len()));
        assert_eq!(bank.open(wire.as_bytes(), NOW).unwrap(), request);
    }
}

#[test]
fn a_right_and_a_wrong_logins_answers_are_one_length() {
    let login = Request::Login {
        username: user("alice"),
        password: password("correct horse"),
    };
    let welcome = Response::Welcome {
        username: user("alice"),
        full_name: protocol::FullName::new("Alice").unwrap(),
        account: protocol::AccountNumber::new("1000000001").unwrap(),
        balance_cents: Cents(12_345),
    };
    let refused = Response::Error {
        code: protocol::ErrorCode::AuthFailed,
    };
    let mut answers = Vec::new();
    for (seed, answer) in [(50, &welcome), (52, &refused)] {
        let (mut atm, mut bank) = pair(seed);
        let wire = atm.seal(&login, &mut rng(seed + 1), NOW).unwrap();
        bank.open(wire.as_bytes(), NOW).unwrap();
        let wire = bank.seal(answer, &mut rng(seed + 1), NOW).unwrap();
        assert_eq!(atm.open(wire.as_bytes(), NOW).unwrap(), *answer);
        answers.push(wire);
    }
    assert_eq!(answers[0].len(), answers[1].len());
    assert_eq!(
        ciphertext_len(&answers[0]),
        sealed_len(protocol::CREDENTIAL_REPLY_LEN)
    );
}

#[test]
fn the_bank_pads_the_answer_to_the_credential_request_it_opened_last() {
    let (mut atm, mut bank) = pair(54);
    let reply = sealed_len(protocol::CREDENTIAL_REPLY_LEN);
    let mut exchange = |request: Request, answer: Response| {
        let wire = atm.seal(&request, &mut rng(55), NOW).unwrap();
        bank.open(wire.as_bytes(), NOW).unwrap();
        let wire = bank.seal(&answer, &mut rng(56), NOW).unwrap();
        assert_eq!(atm.open(wire.as_bytes(), NOW).unwrap(), answer);
        ciphertext_len(&wire)
    };
    let balance = Response::Balance {
        balance_cents: Cents(7),
    };
    // Before any request, and after one without a credential: not padded.
    assert!(exchange(Request::Balance {}, balance.clone()) < reply);
    // Every answer a credential request may get, at its longest, fits the one size.
    let longest_welcome = Response::Welcome {
        username: user(&"z".repeat(protocol::Username::MAX_LEN)),
        full_name: protocol::FullName::new("\u{10FFFF}".repeat(protocol::FullName::MAX_CHARS))
            .unwrap(),
        account: protocol::AccountNumber::new("9".repeat(protocol::AccountNumber::MAX_LEN))
            .unwrap(),
        balance_cents: Cents(u64::MAX),
    };
    let json = serde_json::json!({ "ts": u64::MAX, "response": &longest_welcome }).to_string();
    assert_eq!(
        json.len(),
        818,
        "the number lib.rs and PROTOCOL.md §8.6 give"
    );
    assert!(json.len() <= protocol::CREDENTIAL_REPLY_LEN);
    let (short, long) = credential_requests().swap_remove(1);
    for answer in [
        longest_welcome,
        Response::AccountOpened {
            account: protocol::AccountNumber::new("1").unwrap(),
            balance_cents: Cents(1_000),
        },
        Response::OperatorWelcome {
            username: user("ops"),
        },
        Response::PasswordChanged {},
        Response::CardReissued {},
        Response::Error {
            code: protocol::ErrorCode::AlreadyLoggedIn,
        },
    ] {
        assert_eq!(exchange(short.clone(), answer.clone()), reply);
        assert_eq!(exchange(long.clone(), answer), reply);
        // The next answer follows its own request.
        assert!(exchange(Request::Balance {}, balance.clone()) < reply);
    }
}

//! Enrollment by a one-time code: the exchange end to end in memory, and every way it must fail
//! (a wrong, unknown or used code; a bank identity swapped in flight; a hello of the wrong kind).

mod common;

use common::*;
use protocol::enrollment::client::{self as enroll_client, EnrollFailure};
use protocol::enrollment::{is_code_id, EnrollmentCode};
use protocol::server::{self, Hello};
use protocol::{
    auth_file::AuthFile, client, BankId, BankKey, Config, Error, ErrorCode, HandshakeFault,
    Response, TerminalId,
};
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

const BAD_FINISHED: Error = Error::HandshakeFailed(HandshakeFault::BadFinished);

fn code(seed: u64) -> EnrollmentCode {
    EnrollmentCode::random(&mut rng(seed))
}

/// Runs an enrollment with `code` against a bank holding `bank_code`'s key (`None`: no such
/// code), passing the bank's hello through `tamper`. Returns the terminal's credentials and the
/// key the bank derived for it.
fn enroll(
    code: &EnrollmentCode,
    bank_code: Option<&EnrollmentCode>,
    bank: &BankKey,
    tamper: impl FnOnce(&mut serde_json::Value),
) -> Result<(AuthFile, protocol::Psk), Error> {
    let config = Config::default();
    let mut r = rng(40);
    let (state, hello) = enroll_client::start(&config, code, &mut r, NOW);
    let Hello::Enrollment(received) = server::read_hello(&config, bank, hello.as_bytes(), NOW)?
    else {
        panic!("an enrollment hello read as a terminal's");
    };
    assert_eq!(received.code_id(), code.id());
    let psk = bank_code.map(EnrollmentCode::psk);
    let (bank_state, server_hello) = received.respond(psk.as_ref(), bank, &mut r, NOW)?;
    let mut value: serde_json::Value = serde_json::from_str(&server_hello).unwrap();
    tamper(&mut value);
    let server_hello = serde_json::to_string(&value).unwrap();
    let (mut enrolling, finished) = state.read_server_hello(server_hello.as_bytes(), NOW)?;
    assert!(enrolling.bank() == &bank.pin());
    let mut bank_session = bank_state.read_client_finished(finished.as_bytes())?;
    let request = enrolling.request(&mut r, NOW)?;
    assert!(bank_session.open_request(request.as_bytes(), NOW)?);
    let terminal = TerminalId::new("t-00112233aabb").unwrap();
    let bank_key = bank_session.terminal_key(&terminal);
    let answer = bank_session.seal(&Response::Enrolled { terminal }, &mut r, NOW)?;
    let creds = enrolling
        .finish(answer.as_bytes(), NOW)
        .unwrap_or_else(|e| panic!("enrolled answer refused: {e:?}"));
    Ok((creds, bank_key))
}

#[test]
fn a_code_enrolls_a_terminal_whose_derived_key_then_opens_sessions() {
    let code = code(1);
    let bank = bank_key();
    let (creds, bank_side) = enroll(&code, Some(&code), &bank, |_| {}).unwrap();
    assert_eq!(creds.terminal_id.as_str(), "t-00112233aabb");
    assert!(creds.psk == bank_side, "both ends derive the same key");
    assert!(creds.bank == bank.pin(), "the bank's identity is pinned");
    assert!(
        creds.psk != code.psk(),
        "the terminal key is not the code's key"
    );
    // The credentials work for an ordinary session with that bank.
    let atm = Terminal {
        id: creds.terminal_id.clone(),
        psk: creds.psk.clone(),
        pin: creds.bank.clone(),
    };
    let done = handshake_with(
        &Config::default(),
        &atm,
        |id| (id == &atm.id).then(|| bank_side.clone()),
        &mut rng(41),
        NOW,
        NOW,
        |_, _| {},
    );
    assert!(done.is_ok());
    // Another enrollment (other randomness) gives another key.
    let config = Config::default();
    let mut r = rng(99);
    let (state, hello) = enroll_client::start(&config, &code, &mut r, NOW);
    let Ok(Hello::Enrollment(received)) = server::read_hello(&config, &bank, hello.as_bytes(), NOW)
    else {
        panic!("not an enrollment hello");
    };
    let (bank_state, sh) = received
        .respond(Some(&code.psk()), &bank, &mut r, NOW)
        .unwrap();
    let (_, finished) = state.read_server_hello(sh.as_bytes(), NOW).unwrap();
    let other = bank_state
        .read_client_finished(finished.as_bytes())
        .unwrap();
    assert!(other.terminal_key(&creds.terminal_id) != bank_side);
}

#[test]
fn a_wrong_or_unknown_code_fails_at_the_terminal_like_a_wrong_key() {
    let bank = bank_key();
    let code = code(2);
    // Same id, another secret: what a guesser holds.
    let text = code.to_text();
    let guess = EnrollmentCode::parse(&format!("{}{}", &text[..13], "0".repeat(32))).unwrap();
    assert_eq!(guess.id(), code.id());
    assert_eq!(
        enroll(&guess, Some(&code), &bank, |_| {}).err(),
        Some(BAD_FINISHED)
    );
    assert_eq!(enroll(&code, None, &bank, |_| {}).err(), Some(BAD_FINISHED));
}

#[test]
fn the_bank_identity_in_its_hello_is_authenticated_by_the_code() {
    let code = code(3);
    let bank = bank_key();
    let impostor = BankKey::from_secret(BankId::new("bank-0001").unwrap(), [0x77; 32]);
    // A man in the middle swaps in his own key or id: the Finished no longer verifies.
    let key = impostor.pin().public_hex();
    assert_eq!(
        enroll(&code, Some(&code), &bank, |v| v["bank_key"] = key.into()).err(),
        Some(BAD_FINISHED)
    );
    assert_eq!(
        enroll(&code, Some(&code), &bank, |v| v["bank_id"] =
            "bank-0002".into())
        .err(),
        Some(BAD_FINISHED)
    );
    // A bank key no secret can be agreed with is refused outright.
    assert_eq!(
        enroll(&code, Some(&code), &bank, |v| v["bank_key"] =
            "00".repeat(32).into())
        .err(),
        Some(Error::HandshakeFailed(HandshakeFault::Malformed))
    );
    // An impostor holding the code itself (the code leaked) is the one thing that passes:
    // the code is what authenticates the bank at enrollment.
    assert!(enroll(&code, Some(&code), &impostor, |_| {}).is_ok());
}

#[test]
fn hellos_of_the_wrong_kind_are_refused() {
    let config = Config::default();
    let code = code(4);
    let (_, enroll_hello) = enroll_client::start(&config, &code, &mut rng(5), NOW);
    assert_eq!(
        server::read_client_hello(&config, &bank_key(), enroll_hello.as_bytes(), NOW).err(),
        Some(Error::HandshakeFailed(HandshakeFault::Malformed))
    );
    let atm = terminal();
    let (_, hello) = client::start(
        &config,
        atm.id.clone(),
        &atm.psk,
        &atm.pin,
        &mut rng(6),
        NOW,
    )
    .unwrap();
    assert!(matches!(
        server::read_hello(&config, &bank_key(), hello.as_bytes(), NOW),
        Ok(Hello::Terminal(_))
    ));
    // An enrollment hello must name a code, not a terminal.
    let mut v: serde_json::Value = serde_json::from_str(&enroll_hello).unwrap();
    v["code_id"] = "t-0123456789ab".into();
    assert!(server::read_hello(&config, &bank_key(), v.to_string().as_bytes(), NOW).is_err());
    v["code_id"] = code.id().as_str().into();
    v["version"] = 1.into();
    assert_eq!(
        server::read_hello(&config, &bank_key(), v.to_string().as_bytes(), NOW).err(),
        Some(Error::HandshakeFailed(HandshakeFault::Version))
    );
    assert!(is_code_id(code.id()));
    // A terminal's ServerHello is not an enrollment answer, and the reverse.
    let (state, _) = enroll_client::start(&config, &code, &mut rng(7), NOW);
    let received = server::read_client_hello(&config, &bank_key(), hello.as_bytes(), NOW).unwrap();
    let (_, terminal_sh) = received
        .respond(Some(&atm.psk), &bank_key(), &mut rng(8), NOW)
        .unwrap();
    assert_eq!(
        state.read_server_hello(terminal_sh.as_bytes(), NOW).err(),
        Some(Error::HandshakeFailed(HandshakeFault::Malformed))
    );
}

#[test]
fn a_refusal_by_the_bank_gives_no_credentials() {
    let config = Config::default();
    let code = code(9);
    let mut r = rng(10);
    let (state, hello) = enroll_client::start(&config, &code, &mut r, NOW);
    let Ok(Hello::Enrollment(received)) =
        server::read_hello(&config, &bank_key(), hello.as_bytes(), NOW)
    else {
        panic!("not an enrollment hello");
    };
    let (bank_state, sh) = received
        .respond(Some(&code.psk()), &bank_key(), &mut r, NOW)
        .unwrap();
    let (mut enrolling, finished) = state.read_server_hello(sh.as_bytes(), NOW).unwrap();
    let mut bank = bank_state
        .read_client_finished(finished.as_bytes())
        .unwrap();
    assert_eq!(bank.code_id(), code.id());
    let request = enrolling.request(&mut r, NOW).unwrap();
    assert!(bank.open_request(request.as_bytes(), NOW).unwrap());
    let refusal = bank
        .seal(
            &Response::Error {
                code: ErrorCode::NotAllowed,
            },
            &mut r,
            NOW,
        )
        .unwrap();
    assert_eq!(
        enrolling.finish(refusal.as_bytes(), NOW).err(),
        Some(EnrollFailure::Refused(ErrorCode::NotAllowed))
    );
}

//! Enrollment by a one-time code, natively and in headless Chromium: reading the typed code,
//! the [`Enroller`] against the real bank side of the exchange (`protocol::enrollment::server`
//! with real keys), every way it ends, and what the page's reducer shows for each.

use atm_wasm::atm::state::{Action, Form, State};
use atm_wasm::link::enroll_code::{
    parse_code, CodeError, CodeFailure, Enroller, Progress, NOT_ACCEPTED,
};
use protocol::enrollment::server::{AwaitEnrollFinished, EnrollingBank};
use protocol::enrollment::EnrollmentCode;
use protocol::server::{self, Hello};
use protocol::{BankId, BankKey, Config, ErrorCode, Psk, Response, TerminalId};
use rand_core::OsRng;

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

const NOW: u64 = 1_700_000_000_000;
const CODE: &str = "e-0123456789-00112233445566778899aabbccddeeff";

fn bank_key() -> BankKey {
    BankKey::from_secret(BankId::new("bank-1").unwrap(), [0x24; 32])
}

fn code() -> EnrollmentCode {
    parse_code(CODE).unwrap()
}

fn terminal() -> TerminalId {
    TerminalId::new("t-00112233aabb").unwrap()
}

/// Starts an enrollment with `code` and has the bank answer its hello holding `bank_code`'s
/// key (`None`: no such code, or used, or expired) at the bank's time `bank_now`. Returns the
/// enroller, the bank's state and the bank's hello.
fn hello(
    code: &EnrollmentCode,
    bank_code: Option<&EnrollmentCode>,
    bank_now: u64,
) -> (Enroller, AwaitEnrollFinished, String) {
    let config = Config::default();
    let (enroller, hello) = Enroller::start(&config, code, &mut OsRng, NOW);
    let Ok(Hello::Enrollment(received)) =
        server::read_hello(&config, &bank_key(), hello.as_bytes(), NOW)
    else {
        panic!("the hello is not an enrollment hello");
    };
    assert_eq!(received.code_id(), code.id());
    assert!(
        !hello.contains(&CODE[13..]),
        "the code's secret is in the hello"
    );
    let psk = bank_code.map(EnrollmentCode::psk);
    let (bank, server_hello) = received
        .respond(psk.as_ref(), &bank_key(), &mut OsRng, bank_now)
        .unwrap();
    (enroller, bank, server_hello)
}

/// Runs the exchange up to the bank's answer: the bank checks the Finished and opens the one
/// `enroll` request.
fn up_to_answer() -> (Enroller, EnrollingBank) {
    let code = code();
    let (mut enroller, bank, server_hello) = hello(&code, Some(&code), NOW);
    let Ok(Progress::Send(frames)) = enroller.receive(server_hello.as_bytes(), &mut OsRng, NOW)
    else {
        panic!("the bank's hello was refused");
    };
    assert_eq!(frames.len(), 2, "the Finished, then the enroll request");
    let mut bank = bank.read_client_finished(frames[0].as_bytes()).unwrap();
    assert!(bank.open_request(frames[1].as_bytes(), NOW).unwrap());
    assert!(!enroller.is_over());
    (enroller, bank)
}

fn answer(
    enroller: &mut Enroller,
    bank: &mut EnrollingBank,
    response: &Response,
) -> Result<Progress, CodeFailure> {
    let frame = bank.seal(response, &mut OsRng, NOW).unwrap();
    enroller.receive(frame.as_bytes(), &mut OsRng, NOW)
}

#[test]
fn typed_codes_are_read_exactly_with_reasons() {
    let code = parse_code(CODE).unwrap();
    assert_eq!(code.id().as_str(), "e-0123456789");
    assert_eq!(code.to_text().as_str(), CODE);
    // Spaces around it and capitals (a phone's keyboard) are forgiven; nothing else is.
    let loose = parse_code(&format!("  {}\n", CODE.to_uppercase())).unwrap();
    assert!(loose.psk() == code.psk());
    assert_eq!(parse_code("").err(), Some(CodeError::Empty));
    assert_eq!(parse_code("   ").err(), Some(CodeError::Empty));
    for bad in [
        "e-0123456789",
        "t-0123456789-00112233445566778899aabbccddeeff",
        "e-0123456789-00112233445566778899aabbccddeef",
        "e-0123456789-00112233445566778899aabbccddeeff0",
        "e-012345678-900112233445566778899aabbccddeeff",
        "e-0123456789-00112233445566778899aabbccddeefg",
        "e-0123456789 00112233445566778899aabbccddeeff",
        "e-0123456789-0011223344556677 8899aabbccddeeff",
        "http://127.0.0.1:8765/#terminal=t-0123456789ab",
    ] {
        assert_eq!(parse_code(bad).err(), Some(CodeError::Malformed), "{bad:?}");
    }
    for e in [CodeError::Empty, CodeError::Malformed] {
        assert!(e.message().ends_with('.'), "{e:?}");
    }
    assert!(CodeError::Malformed.message().contains("e-0123456789-"));
}

#[test]
fn a_good_code_gives_the_credentials_the_bank_derived() {
    let (mut enroller, mut bank) = up_to_answer();
    let bank_side_key: Psk = bank.terminal_key(&terminal());
    let Ok(Progress::Enrolled(enrollment)) = answer(
        &mut enroller,
        &mut bank,
        &Response::Enrolled {
            terminal: terminal(),
        },
    ) else {
        panic!("the enrolled answer was refused");
    };
    assert_eq!(enrollment.terminal, terminal());
    assert!(
        enrollment.psk == bank_side_key,
        "the two ends derived other keys"
    );
    assert!(enrollment.bank == bank_key().pin(), "not the bank's pin");
    // The key is not the code's: it was never sent, only derived.
    assert!(enrollment.psk != code().psk());
    assert!(enroller.is_over());
    // Over: the socket closing afterwards is no failure; another frame is not expected.
    assert_eq!(enroller.closed(), None);
    assert_eq!(
        enroller.receive(b"{}", &mut OsRng, NOW).err(),
        Some(CodeFailure::Broken)
    );
}

#[test]
fn the_credentials_open_a_session_with_the_bank() {
    let (mut enroller, mut bank) = up_to_answer();
    let bank_side_key = bank.terminal_key(&terminal());
    let Ok(Progress::Enrolled(e)) = answer(
        &mut enroller,
        &mut bank,
        &Response::Enrolled {
            terminal: terminal(),
        },
    ) else {
        panic!("not enrolled");
    };
    // What the ATM's driver then does with them: a normal handshake the bank accepts.
    let config = Config::default();
    let (state, client_hello) =
        protocol::client::start(&config, e.terminal, &e.psk, &e.bank, &mut OsRng, NOW).unwrap();
    let Ok(Hello::Terminal(received)) =
        server::read_hello(&config, &bank_key(), client_hello.as_bytes(), NOW)
    else {
        panic!("not a terminal hello");
    };
    let (bank_state, server_hello) = received
        .respond(Some(&bank_side_key), &bank_key(), &mut OsRng, NOW)
        .unwrap();
    let (_, finished) = state
        .read_server_hello(server_hello.as_bytes(), NOW)
        .unwrap();
    assert!(bank_state.read_client_finished(finished.as_bytes()).is_ok());
}

#[test]
fn a_wrong_used_or_expired_code_is_not_accepted() {
    let code = code();
    let other = EnrollmentCode::random(&mut OsRng);
    // The bank holds another code's key (a typo), or none (unknown, used or expired): its
    // Finished does not verify, and the enroller sends nothing more.
    for bank_code in [Some(&other), None] {
        let (mut enroller, _, server_hello) = hello(&code, bank_code, NOW);
        assert_eq!(
            enroller
                .receive(server_hello.as_bytes(), &mut OsRng, NOW)
                .err(),
            Some(CodeFailure::NotAccepted)
        );
        assert!(enroller.is_over());
        assert_eq!(enroller.closed(), None, "reported twice");
    }
    assert_eq!(CodeFailure::NotAccepted.message(), NOT_ACCEPTED);
    assert_eq!(
        NOT_ACCEPTED,
        "That code was not accepted. A code works once and for 10 minutes; ask the bank for a \
         new one."
    );
}

#[test]
fn a_bank_hello_that_is_not_one_is_broken_and_a_far_clock_is_told() {
    let code = code();
    let (mut enroller, _, _) = hello(&code, Some(&code), NOW);
    assert_eq!(
        enroller.receive(b"not json", &mut OsRng, NOW).err(),
        Some(CodeFailure::Broken)
    );
    // The bank's time is an hour from this device's.
    let (mut enroller, _, server_hello) = hello(&code, Some(&code), NOW + 3_600_000);
    assert_eq!(
        enroller
            .receive(server_hello.as_bytes(), &mut OsRng, NOW)
            .err(),
        Some(CodeFailure::Clock)
    );
}

#[test]
fn a_refused_or_strange_answer_gives_nothing() {
    let (mut enroller, mut bank) = up_to_answer();
    assert_eq!(
        answer(
            &mut enroller,
            &mut bank,
            &Response::Error {
                code: ErrorCode::Internal
            }
        )
        .err(),
        Some(CodeFailure::Refused(ErrorCode::Internal))
    );
    assert!(enroller.is_over());
    let (mut enroller, mut bank) = up_to_answer();
    assert_eq!(
        answer(&mut enroller, &mut bank, &Response::LoggedOut {}).err(),
        Some(CodeFailure::Broken)
    );
    // A record that does not open (not sealed by the bank).
    let (mut enroller, _) = up_to_answer();
    let (_, mut stranger) = up_to_answer();
    let foreign = stranger
        .seal(
            &Response::Enrolled {
                terminal: terminal(),
            },
            &mut OsRng,
            NOW,
        )
        .unwrap();
    assert_eq!(
        enroller.receive(foreign.as_bytes(), &mut OsRng, NOW).err(),
        Some(CodeFailure::Broken)
    );
}

#[test]
fn a_closed_connection_says_whether_the_code_is_used_up() {
    let code = code();
    let (mut enroller, _, _) = hello(&code, Some(&code), NOW);
    assert_eq!(enroller.closed(), Some(CodeFailure::Unreachable));
    assert_eq!(enroller.closed(), None, "reported twice");
    let (mut enroller, _) = up_to_answer();
    assert_eq!(enroller.closed(), Some(CodeFailure::Lost));
    assert!(CodeFailure::Lost.message().contains("used up"));
    assert!(CodeFailure::Unreachable
        .message()
        .contains("enter the code again"));
}

#[test]
fn every_failure_has_its_own_plain_words() {
    let all = [
        CodeFailure::NotAccepted,
        CodeFailure::Refused(ErrorCode::Internal),
        CodeFailure::Clock,
        CodeFailure::Broken,
        CodeFailure::Unreachable,
        CodeFailure::Lost,
    ];
    for (i, a) in all.iter().enumerate() {
        let text = a.message();
        assert!(text.ends_with('.') && !text.contains('_'), "{a:?}: {text}");
        for b in &all[i + 1..] {
            assert_ne!(text, b.message());
        }
    }
    assert!(CodeFailure::Refused(ErrorCode::Internal)
        .message()
        .contains(ErrorCode::Internal.message()));
}

#[test]
fn the_page_shows_the_attempt_and_its_outcome() {
    let mut s = State::default();
    s.apply(Action::Invalid(
        Form::EnrollCode,
        CodeError::Malformed.message().into(),
    ));
    assert_eq!(
        s.error(Form::EnrollCode),
        Some(CodeError::Malformed.message())
    );
    // A link's error replaces the code's, and the other way round: one error at a time.
    s.apply(Action::Invalid(Form::EnrollKey, "bad key".into()));
    assert_eq!(s.error(Form::EnrollCode), None);
    s.apply(Action::Pending(Form::EnrollCode));
    assert!(s.is_pending(Form::EnrollCode));
    assert!(s.errors.is_empty(), "an attempt clears the old errors");
    s.apply(Action::EnrollFailed(CodeFailure::NotAccepted));
    assert!(!s.is_pending(Form::EnrollCode));
    assert_eq!(s.error(Form::EnrollCode), Some(NOT_ACCEPTED));
    assert_eq!(s.terminal, None, "a failed attempt enrolls nothing");
    // A later attempt that succeeds: enrolled, nothing pending, no error left.
    s.apply(Action::Pending(Form::EnrollCode));
    s.apply(Action::Enrolled("t-00112233aabb".into()));
    assert!(!s.is_pending(Form::EnrollCode));
    assert!(s.errors.is_empty());
    assert_eq!(s.terminal.as_deref(), Some("t-00112233aabb"));
}

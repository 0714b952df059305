//! Fuzz target: enrollment by a one-time code (PROTOCOL.md §16). The bytes go to the code
//! parser (an accepted code prints back to itself), to the bank's first-flight reader (either
//! kind of hello; an enrollment's must name a code, and is answered with a code key or a
//! throw-away one), to a terminal awaiting the bank's `enroll_server_hello` and a bank awaiting
//! the `client_finished` (neither may ever verify), and, as the plaintext of a record sealed
//! with the public enrollment keys of protocol/vectors/v2.json, to the bank's `enroll` reader
//! and the terminal's `enrolled` reader: whatever credentials the terminal accepts, the bank
//! derives the same key for the same terminal id.
#![no_main]

use libfuzzer_sys::fuzz_target;
use protocol::enrollment::client::{self as enroll_client, AwaitEnrollHello, Enrolling};
use protocol::enrollment::server::{AwaitEnrollFinished, EnrollingBank};
use protocol::enrollment::{is_code_id, EnrollmentCode};
use protocol::server::{self, Hello};
use std::sync::OnceLock;

#[path = "common.rs"]
mod common;

struct States {
    f: common::Fixture,
    code: EnrollmentCode,
    /// Started with the vectors' code and other randomness: no answer can verify.
    awaiting_hello: AwaitEnrollHello,
    /// Answered a hello of other randomness: no client_finished can verify.
    awaiting_finished: AwaitEnrollFinished,
    enrolling: Enrolling,
    bank: EnrollingBank,
    /// The clock: the `ts` of the vectors' `enroll` record.
    now: u64,
}

fuzz_target!(|data: &[u8]| {
    static STATES: OnceLock<States> = OnceLock::new();
    let s = STATES.get_or_init(|| {
        let f = common::fixture();
        let (code, enrolling, bank) = common::enrollment_pair(&f);
        let e = &f.v["enrollment"]["inputs"];
        let bank_time = e["bank_timestamp"].as_u64().unwrap();
        let mut r = common::script(&[vec![3; 64]]);
        let (awaiting_hello, _) = enroll_client::start(&f.config, &code, &mut r, bank_time);
        let mut r = common::script(&[vec![4; 64]]);
        let (_, hello) = enroll_client::start(&f.config, &code, &mut r, bank_time);
        let Ok(Hello::Enrollment(received)) =
            server::read_hello(&f.config, &f.bank_key, hello.as_bytes(), bank_time)
        else {
            panic!("an enrollment hello is refused");
        };
        let mut r = common::script(&[vec![5; 64]]);
        let (awaiting_finished, _) =
            received.respond(Some(&code.psk()), &f.bank_key, &mut r, bank_time).unwrap();
        let request = &f.v["enrollment"]["records"][0]["plaintext"];
        let now = serde_json::from_str::<serde_json::Value>(request.as_str().unwrap()).unwrap()
            ["ts"]
            .as_u64()
            .unwrap();
        States { f, code, awaiting_hello, awaiting_finished, enrolling, bank, now }
    });
    let f = &s.f;
    let bank_time = f.v["enrollment"]["inputs"]["bank_timestamp"].as_u64().unwrap();

    // As a code's text.
    if let Ok(text) = std::str::from_utf8(data) {
        if let Some(code) = EnrollmentCode::parse(text) {
            let printed = code.to_text();
            assert_eq!(printed.as_str(), text.trim(), "a code prints back as it was read");
            assert_eq!(printed.len(), EnrollmentCode::TEXT_LEN);
            assert!(is_code_id(code.id()));
            let back = EnrollmentCode::parse(&printed).expect("a printed code parses");
            assert!(back.id() == code.id() && back.psk() == code.psk());
        }
    }

    // As a first flight at the bank: the two kinds never stand for each other.
    let as_terminal = server::read_client_hello(&f.config, &f.bank_key, data, bank_time).is_ok();
    match server::read_hello(&f.config, &f.bank_key, data, bank_time) {
        Ok(Hello::Enrollment(hello)) => {
            assert!(!as_terminal, "an enrollment hello read as a terminal's");
            assert!(is_code_id(hello.code_id()));
            let mut r = common::script(&[]);
            let _ = hello.respond(Some(&s.code.psk()), &f.bank_key, &mut r, bank_time);
        }
        Ok(Hello::Terminal(hello)) => {
            assert!(as_terminal);
            let _ = hello.terminal_id();
        }
        Err(_) => assert!(!as_terminal),
    }
    if let Ok(Hello::Enrollment(hello)) = server::read_hello(&f.config, &f.bank_key, data, bank_time) {
        let mut r = common::script(&[]);
        let _ = hello.respond(None, &f.bank_key, &mut r, bank_time);
    }

    // As the bank's answer at a terminal, and as the terminal's Finished at a bank: both need
    // a transcript of randomness the input cannot know.
    assert!(s.awaiting_hello.clone().read_server_hello(data, bank_time).is_err());
    assert!(s.awaiting_finished.clone().read_client_finished(data).is_err());

    // As a record, raw, to both ends of the established enrollment.
    let _ = s.bank.clone().open_request(data, s.now);
    let _ = s.enrolling.clone().finish(data, s.now);

    // As a plaintext in a record with a valid MAC under the enrollment's keys.
    let keys = &f.v["enrollment"]["keys"];
    let _ = s.bank.clone().open_request(common::forge_with(keys, "c2s", data).as_bytes(), s.now);
    if let Ok(creds) =
        s.enrolling.clone().finish(common::forge_with(keys, "s2c", data).as_bytes(), s.now)
    {
        // Any `enrolled` the terminal accepts gives the key the bank derives for that id, and
        // the bank's identity from the verified hello.
        assert!(creds.psk == s.bank.terminal_key(&creds.terminal_id));
        assert!(creds.bank == f.pin);
    }
});

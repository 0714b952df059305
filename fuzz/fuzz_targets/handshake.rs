//! Fuzz target: handshake message parsing at every step (ClientHello at the bank, ServerHello at
//! the ATM, ClientFinished at the bank). Nothing may panic, and nothing but the genuine
//! messages may complete a handshake.
#![no_main]

use libfuzzer_sys::fuzz_target;
use protocol::client::AwaitServerHello;
use protocol::server::AwaitClientFinished;
use protocol::{client, server};
use std::sync::OnceLock;

#[path = "common.rs"]
mod common;

struct States {
    f: common::Fixture,
    atm: AwaitServerHello,
    bank: AwaitClientFinished,
}

fuzz_target!(|data: &[u8]| {
    static STATES: OnceLock<States> = OnceLock::new();
    let s = STATES.get_or_init(|| {
        let f = common::fixture();
        let mut r = common::script(&[vec![1; 64]]);
        let (atm, _) =
            client::start(&f.config, f.id.clone(), &f.psk, &f.pin, &mut r, f.client_time).unwrap();
        let (_, ch) =
            client::start(&f.config, f.id.clone(), &f.psk, &f.pin, &mut r, f.client_time).unwrap();
        let hello = server::read_client_hello(&f.config, &f.bank_key, ch.as_bytes(), f.bank_time).unwrap();
        let (bank, _) = hello.respond(Some(&f.psk), &f.bank_key, &mut r, f.bank_time).unwrap();
        States { f, atm, bank }
    });
    let f = &s.f;
    // As a ClientHello.
    if let Ok(hello) = server::read_client_hello(&f.config, &f.bank_key, data, f.bank_time) {
        let _ = hello.terminal_id();
        let mut r = common::script(&[]);
        let _ = hello.respond(Some(&f.psk), &f.bank_key, &mut r, f.bank_time);
    }
    // As a ServerHello: must never verify (the bank's Finished needs the session's keys).
    assert!(s.atm.clone().read_server_hello(data, f.client_time).is_err());
    // As a ClientFinished: must never verify either.
    assert!(s.bank.clone().read_client_finished(data).is_err());
});

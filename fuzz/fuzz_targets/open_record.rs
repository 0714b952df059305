//! Fuzz target: record opening on both sides, from raw wire bytes and from forged plaintexts
//! with a valid MAC (so the plaintext parser is reached). Nothing may panic; a forged
//! plaintext that opens must round-trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use protocol::{BankSession, ClientSession};
use std::sync::OnceLock;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    static FIXTURE: OnceLock<(common::Fixture, ClientSession, BankSession)> = OnceLock::new();
    let (f, atm0, bank0) = FIXTURE.get_or_init(|| {
        let f = common::fixture();
        let (atm, bank) = common::pair(&f);
        (f, atm, bank)
    });
    let now = f.client_time + 1000;
    let (mut atm, mut bank) = (atm0.clone(), bank0.clone());
    // Raw bytes as a record, to both sides.
    let _ = bank.open(data, now);
    let _ = atm.open(data, now);
    // The same bytes as a plaintext inside a valid record.
    let (mut atm, mut bank) = (atm0.clone(), bank0.clone());
    if let Ok(req) = bank.open(common::forge(f, "c2s", data).as_bytes(), now) {
        // Anything the bank accepts re-serializes to something it accepts again.
        let mut r = common::script(&[]);
        let (mut atm2, mut bank2) = (atm0.clone(), bank0.clone());
        let wire = atm2.seal(&req, &mut r, now).unwrap();
        assert!(bank2.open(wire.as_bytes(), now).unwrap() == req);
    }
    let _ = atm.open(common::forge(f, "s2c", data).as_bytes(), now);
});

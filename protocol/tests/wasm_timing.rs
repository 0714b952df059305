//! In-browser timing for `cargo xtask bench`: one record seal+open and one full handshake in
//! wasm32, timed with `performance.now()`, printed as a `bench-wasm {json}` line. Checks that
//! the work succeeds; asserts nothing about time (speed targets live in the benchmark report).
#![cfg(target_arch = "wasm32")]
#![allow(clippy::float_arithmetic)] // timings are measurements

use protocol::{client, server, BankId, BankKey, Cents, Config, Psk, Request, TerminalId, TxId};
use rand_core::OsRng;
use wasm_bindgen_test::{console_log, wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

/// Records sealed and opened for the mean: 10,000, so that it is stable on a loaded machine
/// (issue 16: over 1,000 the mean moved with the load on the machine).
const SEAL_OPENS: u32 = 10_000;
const HANDSHAKES: u32 = 50;

fn now_ms() -> f64 {
    web_sys::window()
        .and_then(|w| w.performance())
        .expect("performance.now() in a browser")
        .now()
}

fn handshake(
    config: &Config,
    id: &TerminalId,
    psk: &Psk,
    now: u64,
) -> (protocol::ClientSession, protocol::BankSession) {
    let bank_key = BankKey::from_secret(BankId::new("bank-0001").unwrap(), [0x24; 32]);
    let (atm, hello) =
        client::start(config, id.clone(), psk, &bank_key.pin(), &mut OsRng, now).unwrap();
    let (bank, reply) = server::read_client_hello(config, &bank_key, hello.as_bytes(), now)
        .unwrap()
        .respond(Some(psk), &bank_key, &mut OsRng, now)
        .unwrap();
    let (atm, finished) = atm.read_server_hello(reply.as_bytes(), now).unwrap();
    (atm, bank.read_client_finished(finished.as_bytes()).unwrap())
}

#[wasm_bindgen_test]
fn seal_open_and_handshake_timings() {
    let config = Config::default();
    let psk = Psk::from_bytes([0x42; 32]);
    let id = TerminalId::new("t-0123456789ab").unwrap();
    let now = 1_700_000_000_000;

    let start = now_ms();
    for _ in 0..HANDSHAKES {
        handshake(&config, &id, &psk, now);
    }
    let handshake_us = (now_ms() - start) * 1000.0 / f64::from(HANDSHAKES);

    let (mut atm, mut bank) = handshake(&config, &id, &psk, now);
    let deposit = Request::Deposit {
        txid: TxId::from_bytes([7; 16]),
        amount_cents: Cents(12_345),
    };
    let start = now_ms();
    for _ in 0..SEAL_OPENS {
        let wire = atm.seal(&deposit, &mut OsRng, now).unwrap();
        assert!(matches!(
            bank.open(wire.as_bytes(), now),
            Ok(Request::Deposit { .. })
        ));
    }
    let seal_open_us = (now_ms() - start) * 1000.0 / f64::from(SEAL_OPENS);

    let user_agent = web_sys::window()
        .and_then(|w| w.navigator().user_agent().ok())
        .unwrap_or_default();
    console_log!(
        "bench-wasm {}",
        serde_json::json!({
            "seal_open_us": seal_open_us,
            "seal_opens": SEAL_OPENS,
            "handshake_us": handshake_us,
            "handshakes": HANDSHAKES,
            "user_agent": user_agent,
        })
    );
}

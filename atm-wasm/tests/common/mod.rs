//! What the driver tests share: the bank's static key, and a handshake of a page's driver with
//! the bank side of the real protocol crate, the terminal key held outside the driver as the
//! page holds it (PROTOCOL.md §6.8).

use atm_wasm::link::connection::{Broken, Output};
use atm_wasm::link::Driver;
use protocol::{server, BankId, BankKey, BankSession, Config, Psk};
use rand_core::OsRng;

pub(crate) const NOW: u64 = 1_700_000_000_000;

/// The bank's static key: the drivers pin its public half.
pub(crate) fn bank_key() -> BankKey {
    BankKey::from_secret(BankId::new("bank-1").unwrap(), [0x24; 32])
}

/// A handshake of `d` (terminal `terminal`, whose key holder MACs with `own`) with a bank that
/// answers with `bank_psk` and the static key `bank`; returns the bank's session and what the
/// driver sent and showed once the key holder answered.
pub(crate) fn handshake_as<D: Driver>(
    d: &mut D,
    terminal: &str,
    own: &Psk,
    bank_psk: &Psk,
    bank: &BankKey,
) -> Result<(BankSession, Output<D::Event>), Broken> {
    let hello = d.connect(&mut OsRng, NOW)?;
    let read =
        server::read_client_hello(&Config::default(), &bank_key(), hello.as_bytes(), NOW).unwrap();
    assert_eq!(read.terminal_id().as_str(), terminal);
    let (state, server_hello) = read.respond(Some(bank_psk), bank, &mut OsRng, NOW).unwrap();
    // Nothing goes out, and nothing is shown, until the key holder has made the master secret.
    let waiting = d.receive(server_hello.as_bytes(), &mut OsRng, NOW)?;
    assert!(waiting.send.is_empty() && waiting.events.is_empty());
    assert!(!d.is_up());
    // The terminal's key holder (WebCrypto in the page) MACs what the driver asks it to.
    let master = own.master_secret(d.master_input().expect("the handshake waits for the key"));
    let out = d.keyed(master, &mut OsRng, NOW)?;
    assert!(d.master_input().is_none());
    let bank = state.read_client_finished(out.send[0].as_bytes()).unwrap();
    Ok((bank, out))
}

//! Shared test harness: deterministic RNGs and an in-memory ATM <-> bank pair with a tamper hook.
#![allow(dead_code, unreachable_pub)]

use protocol::{
    client, server, BankId, BankKey, BankPin, BankSession, ClientSession, Config, Error, Psk,
    TerminalId,
};
use rand_chacha::rand_core::{CryptoRng, RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use std::collections::VecDeque;

/// The time every test runs at unless it says otherwise (2023-11-14T22:13:20Z).
pub const NOW: u64 = 1_700_000_000_000;

/// A seeded CSPRNG: every run draws the same bytes.
pub fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

/// An RNG that hands out a fixed script of bytes, for known-answer vectors. Panics when the
/// script runs out, so a test notices if the implementation draws more than the spec says.
pub struct ScriptedRng(VecDeque<u8>);

impl ScriptedRng {
    pub fn new(chunks: &[&[u8]]) -> Self {
        Self(chunks.iter().flat_map(|c| c.iter().copied()).collect())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl RngCore for ScriptedRng {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }
    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for byte in dest {
            *byte = self.0.pop_front().expect("scripted RNG ran out of bytes");
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_chacha::rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

// Test-only: the script is chosen by the test, which is the point.
impl CryptoRng for ScriptedRng {}

/// §6.7 from the primitives: `terminal` sealed for the bank whose static secret is
/// `bank_secret`, over `client_share`, as 224 lowercase hex digits (ciphertext || MAC).
/// What an impostor holding its own static key can make for a hello it did not send.
pub fn seal_id_for(bank_secret: [u8; 32], client_share: [u8; 32], terminal: &str) -> String {
    use protocol::primitives::{aes256_cbc_encrypt, hkdf_sha256, hmac_sha256};
    use x25519_dalek::{PublicKey, StaticSecret};
    let secret = StaticSecret::from(bank_secret);
    let public = PublicKey::from(&secret).to_bytes();
    let dh_es = secret
        .diffie_hellman(&PublicKey::from(client_share))
        .to_bytes();
    let info = [&client_share[..], &public[..]].concat();
    let okm = hkdf_sha256(b"atm-psk-v2 terminal id", &dh_es, &info, 64).unwrap();
    let mut plain = terminal.as_bytes().to_vec();
    plain.resize(64, 0);
    let ct = aes256_cbc_encrypt(okm[..32].try_into().unwrap(), &[0; 16], &plain);
    let mac = hmac_sha256(&okm[32..], &[b"atm-psk-v2 sealed terminal id", &ct]);
    hex::encode([&ct[..], &mac[..]].concat())
}

/// Rewrites a client_hello's sealed id as [`seal_id_for`] makes it.
pub fn reseal(hello: &mut Vec<u8>, bank_secret: [u8; 32], terminal: &str) {
    let mut v: serde_json::Value = serde_json::from_slice(hello).unwrap();
    let share: [u8; 32] = hex::decode(v["client_share"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    v["sealed_terminal_id"] = seal_id_for(bank_secret, share, terminal).into();
    *hello = serde_json::to_vec(&v).unwrap();
}

/// Which handshake message a tamper hook is looking at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flight {
    ClientHello,
    ServerHello,
    ClientFinished,
}

/// Where a handshake stopped.
#[derive(Debug, PartialEq, Eq)]
pub enum Failed {
    /// The bank refused the ClientHello.
    BankHello(Error),
    /// The ATM refused the ServerHello.
    ClientHello(Error),
    /// The bank refused the ClientFinished.
    BankFinished(Error),
}

/// A terminal, the key the ATM holds and the bank identity it pinned.
pub struct Terminal {
    pub id: TerminalId,
    pub psk: Psk,
    pub pin: BankPin,
}

/// The test bank's static key (what [`terminal`] pins).
pub fn bank_key() -> BankKey {
    BankKey::from_secret(BankId::new("bank-0001").unwrap(), [0x24; 32])
}

pub fn terminal() -> Terminal {
    Terminal {
        id: TerminalId::new("atm-0001").unwrap(),
        psk: Psk::from_bytes([0x42; 32]),
        pin: bank_key().pin(),
    }
}

/// The in-memory harness: runs a whole handshake with the test bank ([`bank_key`]), passing
/// every flight through `tamper`. `bank_keys` is the bank's terminal table lookup (`None` =
/// unknown or revoked terminal).
pub fn handshake_with(
    config: &Config,
    atm: &Terminal,
    bank_keys: impl Fn(&TerminalId) -> Option<Psk>,
    rng: &mut impl protocol::Rng,
    now_client: u64,
    now_bank: u64,
    tamper: impl FnMut(Flight, &mut Vec<u8>),
) -> Result<(ClientSession, BankSession), Failed> {
    handshake_as(
        config,
        atm,
        &bank_key(),
        bank_keys,
        rng,
        (now_client, now_bank),
        tamper,
    )
}

/// [`handshake_with`] against a bank holding `bank` as its static key.
pub fn handshake_as(
    config: &Config,
    atm: &Terminal,
    bank: &BankKey,
    bank_keys: impl Fn(&TerminalId) -> Option<Psk>,
    rng: &mut impl protocol::Rng,
    (now_client, now_bank): (u64, u64),
    mut tamper: impl FnMut(Flight, &mut Vec<u8>),
) -> Result<(ClientSession, BankSession), Failed> {
    let (state, hello) =
        client::start(config, atm.id.clone(), &atm.psk, &atm.pin, rng, now_client).unwrap();
    let mut hello = hello.into_bytes();
    tamper(Flight::ClientHello, &mut hello);

    let received =
        server::read_client_hello(config, bank, &hello, now_bank).map_err(Failed::BankHello)?;
    let psk = bank_keys(received.terminal_id());
    let (bank_state, server_hello) = received
        .respond(psk.as_ref(), bank, rng, now_bank)
        .map_err(Failed::BankHello)?;
    let mut server_hello = server_hello.into_bytes();
    tamper(Flight::ServerHello, &mut server_hello);

    let (client_session, finished) = state
        .read_server_hello(&server_hello, now_client)
        .map_err(Failed::ClientHello)?;
    let mut finished = finished.into_bytes();
    tamper(Flight::ClientFinished, &mut finished);

    let bank_session = bank_state
        .read_client_finished(&finished)
        .map_err(Failed::BankFinished)?;
    Ok((client_session, bank_session))
}

/// The bank knows exactly the test terminal.
pub fn known(atm: &Terminal) -> impl Fn(&TerminalId) -> Option<Psk> + '_ {
    move |id| (id == &atm.id).then(|| atm.psk.clone())
}

/// A clean handshake between the test terminal and a bank that knows it.
pub fn established(rng: &mut impl protocol::Rng) -> (ClientSession, BankSession) {
    let atm = terminal();
    handshake_with(
        &Config::default(),
        &atm,
        known(&atm),
        rng,
        NOW,
        NOW,
        |_, _| {},
    )
    .unwrap_or_else(|e| panic!("clean handshake failed: {e:?}"))
}

/// The vectors file, parsed.
pub fn vectors() -> serde_json::Value {
    serde_json::from_str(include_str!("../../vectors/v2.json")).unwrap()
}

fn vhex(v: &serde_json::Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

/// The session pair of the vectors file (same inputs, so the keys in the file are its keys).
pub fn vector_pair() -> (ClientSession, BankSession) {
    let v = vectors();
    let i = &v["inputs"];
    let config = Config::default();
    let psk = Psk::from_bytes(vhex(&i["psk"]).try_into().unwrap());
    let id = TerminalId::new(i["terminal_id"].as_str().unwrap()).unwrap();
    let bank_key = BankKey::from_secret(
        BankId::new(i["bank_id"].as_str().unwrap()).unwrap(),
        vhex(&i["bank_static_secret"]).try_into().unwrap(),
    );
    let (ct, bt) = (
        i["client_timestamp"].as_u64().unwrap(),
        i["bank_timestamp"].as_u64().unwrap(),
    );
    let mut r = ScriptedRng::new(&[&vhex(&i["client_nonce"]), &vhex(&i["client_x25519_secret"])]);
    let (atm, ch) = client::start(&config, id, &psk, &bank_key.pin(), &mut r, ct).unwrap();
    let hello = server::read_client_hello(&config, &bank_key, ch.as_bytes(), bt).unwrap();
    let mut r = ScriptedRng::new(&[&vhex(&i["bank_nonce"]), &vhex(&i["bank_x25519_secret"])]);
    let (bank, sh) = hello.respond(Some(&psk), &bank_key, &mut r, bt).unwrap();
    let (atm, cf) = atm.read_server_hello(sh.as_bytes(), ct).unwrap();
    (atm, bank.read_client_finished(cf.as_bytes()).unwrap())
}

/// Seals an arbitrary plaintext with the vector session's real keys, as a peer that holds the
/// keys but breaks the message rules would. `direction` is "c2s" or "s2c".
pub fn forge(direction: &str, seq: u64, plaintext: &[u8]) -> String {
    use protocol::primitives::{aes256_cbc_encrypt, hmac_sha256};
    let v = vectors();
    let keys = &v["handshake"]["keys"];
    let enc: [u8; 32] = vhex(&keys[format!("{direction}_enc")]).try_into().unwrap();
    let mac_key = vhex(&keys[format!("{direction}_mac")]);
    let dir = if direction == "c2s" { 1u8 } else { 2u8 };
    let iv = [0x5a; 16];
    let ct = aes256_cbc_encrypt(&enc, &iv, plaintext);
    let mac = hmac_sha256(
        &mac_key,
        &[b"atm-psk-v2 record", &[dir], &seq.to_be_bytes(), &iv, &ct],
    );
    format!(
        r#"{{"seq":{seq},"iv":"{}","ciphertext":"{}","mac":"{}"}}"#,
        hex::encode(iv),
        hex::encode(ct),
        hex::encode(mac)
    )
}

/// The vector session's timestamp for its first record.
pub fn vector_now() -> u64 {
    vectors()["inputs"]["client_timestamp"].as_u64().unwrap() + 1000
}

//! Fuzz fixtures: the known-answer session of protocol/vectors/v2.json, whose keys are public
//! (the bank's static key included), so a target can seal arbitrary plaintexts and reach the
//! plaintext parser.

#![allow(dead_code)] // each target uses part of the fixture

use protocol::primitives::{aes256_cbc_encrypt, hmac_sha256};
use protocol::{
    client, server, BankId, BankKey, BankPin, BankSession, ClientSession, Config, Psk, TerminalId,
};
use rand_chacha::rand_core::{CryptoRng, Error, RngCore};
use serde_json::Value;
use std::collections::VecDeque;

pub struct Script(VecDeque<u8>);

impl RngCore for Script {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }
    fn next_u64(&mut self) -> u64 {
        let mut b = [0; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for b in dest {
            // Past the script, a fixed byte: fine for IVs of records the target never checks.
            *b = self.0.pop_front().unwrap_or(0x5a);
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}
impl CryptoRng for Script {}

pub fn vectors() -> Value {
    serde_json::from_str(include_str!("../../protocol/vectors/v2.json")).unwrap()
}

fn h(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

pub fn script(parts: &[Vec<u8>]) -> Script {
    Script(parts.iter().flatten().copied().collect())
}

pub struct Fixture {
    pub config: Config,
    pub psk: Psk,
    pub id: TerminalId,
    /// The bank's static key of the vectors, and the pin a terminal keeps of it.
    pub bank_key: BankKey,
    pub pin: BankPin,
    pub client_time: u64,
    pub bank_time: u64,
    pub v: Value,
}

pub fn fixture() -> Fixture {
    let v = vectors();
    let i = &v["inputs"];
    let bank_key = BankKey::from_secret(
        BankId::new(i["bank_id"].as_str().unwrap()).unwrap(),
        h(&i["bank_static_secret"]).try_into().unwrap(),
    );
    let pin = bank_key.pin();
    assert!(BankPin::parse(v["handshake"]["bank_pin"].as_str().unwrap()) == Some(pin.clone()));
    Fixture {
        config: Config::default(),
        psk: Psk::from_bytes(h(&i["psk"]).try_into().unwrap()),
        id: TerminalId::new(i["terminal_id"].as_str().unwrap()).unwrap(),
        bank_key,
        pin,
        client_time: i["client_timestamp"].as_u64().unwrap(),
        bank_time: i["bank_timestamp"].as_u64().unwrap(),
        v,
    }
}

pub fn pair(f: &Fixture) -> (ClientSession, BankSession) {
    let i = &f.v["inputs"];
    let mut r = script(&[h(&i["client_nonce"]), h(&i["client_x25519_secret"])]);
    let (atm, ch) =
        client::start(&f.config, f.id.clone(), &f.psk, &f.pin, &mut r, f.client_time).unwrap();
    let hello = server::read_client_hello(&f.config, &f.bank_key, ch.as_bytes(), f.bank_time).unwrap();
    let mut r = script(&[h(&i["bank_nonce"]), h(&i["bank_x25519_secret"])]);
    let (bank, sh) = hello.respond(Some(&f.psk), &f.bank_key, &mut r, f.bank_time).unwrap();
    let (atm, cf) = atm.read_server_hello(sh.as_bytes(), f.client_time).unwrap();
    (atm, bank.read_client_finished(cf.as_bytes()).unwrap())
}

/// A record with a valid MAC around `plaintext`, in direction "c2s" or "s2c", sequence 0.
pub fn forge(f: &Fixture, direction: &str, plaintext: &[u8]) -> String {
    forge_with(&f.v["handshake"]["keys"], direction, plaintext)
}

/// [`forge`] with the keys of another session of the vectors (e.g. `enrollment.keys`).
pub fn forge_with(keys: &Value, direction: &str, plaintext: &[u8]) -> String {
    let enc: [u8; 32] = h(&keys[format!("{direction}_enc")]).try_into().unwrap();
    let mac_key = h(&keys[format!("{direction}_mac")]);
    let dir = if direction == "c2s" { 1u8 } else { 2u8 };
    let iv = [0x5a; 16];
    let ct = aes256_cbc_encrypt(&enc, &iv, plaintext);
    let mac = hmac_sha256(&mac_key, &[b"atm-psk-v2 record", &[dir], &0u64.to_be_bytes(), &iv, &ct]);
    format!(
        r#"{{"seq":0,"iv":"{}","ciphertext":"{}","mac":"{}"}}"#,
        hex::encode(iv),
        hex::encode(ct),
        hex::encode(mac)
    )
}

/// The enrollment of the vectors (`enrollment`), established on both ends: the terminal's
/// session, awaiting `enrolled`, and the bank's, awaiting `enroll`; their keys are
/// `enrollment.keys`. Also the code.
pub fn enrollment_pair(
    f: &Fixture,
) -> (
    protocol::enrollment::EnrollmentCode,
    protocol::enrollment::client::Enrolling,
    protocol::enrollment::server::EnrollingBank,
) {
    use protocol::enrollment::{client as enroll_client, EnrollmentCode};
    let e = &f.v["enrollment"];
    let i = &e["inputs"];
    let code = EnrollmentCode::parse(e["code"].as_str().unwrap()).unwrap();
    let (ct, bt) = (i["client_timestamp"].as_u64().unwrap(), i["bank_timestamp"].as_u64().unwrap());
    let mut r = script(&[h(&i["client_nonce"]), h(&i["client_x25519_secret"])]);
    let (state, hello) = enroll_client::start(&f.config, &code, &mut r, ct);
    let Ok(server::Hello::Enrollment(received)) =
        server::read_hello(&f.config, &f.bank_key, hello.as_bytes(), bt)
    else {
        panic!("the vectors' enroll_hello is refused");
    };
    let mut r = script(&[h(&i["bank_nonce"]), h(&i["bank_x25519_secret"])]);
    let (bank, sh) = received.respond(Some(&code.psk()), &f.bank_key, &mut r, bt).unwrap();
    assert_eq!(sh, e["enroll_server_hello_message"].as_str().unwrap());
    let (enrolling, cf) = state.read_server_hello(sh.as_bytes(), ct).unwrap();
    let bank = bank.read_client_finished(cf.as_bytes()).unwrap();
    (code, enrolling, bank)
}

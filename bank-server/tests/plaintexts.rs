//! Requests no honest client can build (negative, fractional or huge amounts, extra fields such
//! as another account, unknown types), sealed correctly by an independent implementation of the
//! protocol written from docs/PROTOCOL.md: the bank closes the session and changes nothing.

mod common;

use atm_client::{now_ms, Connection};
use common::*;
use protocol::primitives::{
    aes256_cbc_decrypt, aes256_cbc_encrypt, hkdf_sha256, hmac_sha256, sha256, Prk,
};
use protocol::{BankPin, Psk, Response, TerminalId};
use rand_core::{OsRng, RngCore};
use serde_json::{json, Value};
use x25519_dalek::{PublicKey, StaticSecret};

const PREFIX: &str = "atm-psk-v2 ";

fn label(name: &str) -> Vec<u8> {
    format!("{PREFIX}{name}").into_bytes()
}

fn random32() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    bytes
}

fn hex32(value: &Value) -> [u8; 32] {
    hex::decode(value.as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap()
}

/// A client that seals any plaintext it is given.
struct RawSession {
    conn: Connection,
    c2s_enc: [u8; 32],
    c2s_mac: [u8; 32],
    s2c_enc: [u8; 32],
    seq: u64,
}

impl RawSession {
    async fn connect(addr: &str, id: &TerminalId, psk: &Psk, pin: &BankPin) -> Self {
        let mut conn = Connection::open(addr).await.unwrap();
        let client_nonce = random32();
        let secret = StaticSecret::from(random32());
        let client_share = PublicKey::from(&secret).to_bytes();
        let client_time = now_ms();
        // §6.7: the id sealed for the pinned key, under keys from dh_es.
        let dh_es = secret
            .diffie_hellman(&PublicKey::from(pin.public))
            .to_bytes();
        let id_okm = hkdf_sha256(
            &label("terminal id"),
            &dh_es,
            &[&client_share[..], &pin.public[..]].concat(),
            64,
        )
        .unwrap();
        let mut id_plain = id.as_str().as_bytes().to_vec();
        id_plain.resize(64, 0);
        let id_ct = aes256_cbc_encrypt(id_okm[..32].try_into().unwrap(), &[0; 16], &id_plain);
        let id_mac = hmac_sha256(&id_okm[32..], &[&label("sealed terminal id"), &id_ct]);
        let hello = json!({
            "type": "client_hello", "version": 2,
            "sealed_terminal_id": hex::encode([&id_ct[..], &id_mac[..]].concat()),
            "client_nonce": hex::encode(client_nonce), "client_share": hex::encode(client_share),
            "timestamp": client_time,
        });
        conn.send_text(hello.to_string()).await.unwrap();
        let server: Value = serde_json::from_str(&conn.recv_text().await.unwrap()).unwrap();
        assert_eq!(server["type"], "server_hello");
        let bank_nonce = hex32(&server["bank_nonce"]);
        let bank_share = hex32(&server["bank_share"]);
        let bank_time = server["timestamp"].as_u64().unwrap();
        let dh = secret
            .diffie_hellman(&PublicKey::from(bank_share))
            .to_bytes();
        // Version 2: X25519 with the bank's pinned static key too (above), and its identity in
        // the transcript.
        let bank_id = pin.bank_id.as_str().as_bytes();
        let id_bytes = id.as_str().as_bytes();
        let transcript = sha256(&[
            &label("transcript"),
            &[2],
            &[u8::try_from(bank_id.len()).unwrap()],
            bank_id,
            &pin.public,
            &[u8::try_from(id_bytes.len()).unwrap()],
            id_bytes,
            &client_nonce,
            &client_share,
            &client_time.to_be_bytes(),
            &bank_nonce,
            &bank_share,
            &bank_time.to_be_bytes(),
        ]);
        let master = hmac_sha256(
            psk.expose(),
            &[
                &label("master secret"),
                &client_nonce,
                &bank_nonce,
                &dh,
                &dh_es,
            ],
        );
        let prk = Prk::extract(&transcript, &master);
        let key = |name: &str| -> [u8; 32] {
            prk.expand(&label(name), 32)
                .unwrap()
                .as_slice()
                .try_into()
                .unwrap()
        };
        let server_finished = hmac_sha256(&key("server finished"), &[&transcript]);
        assert_eq!(
            hex32(&server["finished"]),
            server_finished,
            "independent key schedule agrees"
        );
        let finished = hmac_sha256(&key("client finished"), &[&transcript]);
        let reply = json!({"type": "client_finished", "finished": hex::encode(finished)});
        conn.send_text(reply.to_string()).await.unwrap();
        Self {
            conn,
            c2s_enc: key("c2s enc"),
            c2s_mac: key("c2s mac"),
            s2c_enc: key("s2c enc"),
            seq: 0,
        }
    }

    async fn send_plaintext(&mut self, plaintext: &str) {
        let mut iv = [0u8; 16];
        OsRng.fill_bytes(&mut iv);
        let ciphertext = aes256_cbc_encrypt(&self.c2s_enc, &iv, plaintext.as_bytes());
        let mac = hmac_sha256(
            &self.c2s_mac,
            &[
                &label("record"),
                &[1],
                &self.seq.to_be_bytes(),
                &iv,
                &ciphertext,
            ],
        );
        let record = json!({
            "seq": self.seq, "iv": hex::encode(iv),
            "ciphertext": hex::encode(&ciphertext), "mac": hex::encode(mac),
        });
        self.seq += 1;
        self.conn.send_text(record.to_string()).await.unwrap();
    }

    async fn send_request(&mut self, request: Value) {
        self.send_plaintext(&json!({"ts": now_ms(), "request": request}).to_string())
            .await;
    }

    /// Reads and decrypts the bank's next record (MAC checked by the real client elsewhere).
    async fn recv_response(&mut self) -> Value {
        let record: Value = serde_json::from_str(&self.conn.recv_text().await.unwrap()).unwrap();
        let iv: [u8; 16] = hex::decode(record["iv"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap();
        let ciphertext = hex::decode(record["ciphertext"].as_str().unwrap()).unwrap();
        let plain = aes256_cbc_decrypt(&self.s2c_enc, &iv, &ciphertext).unwrap();
        let plain: Value = serde_json::from_slice(&plain).unwrap();
        plain["response"].clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_outside_the_schema_close_the_session_and_change_nothing() {
    let dir = temp();
    let bank = TestBank::in_dir(dir.path()).await;
    let (id, psk) = (bank.auth.terminal_id.clone(), bank.auth.psk.clone());
    let mut bob = registered(&bank, "bob").await;
    assert!(matches!(
        bob.call(&deposit_req(700)).await.unwrap(),
        Response::Deposited { .. }
    ));

    // The independent client is right: a well-formed request works.
    let mut raw = RawSession::connect(&bank.addr, &id, &psk, &bank.auth.bank).await;
    raw.send_request(json!({"type": "register", "username": "alice", "full_name": "Alice", "password": "correct horse"}))
        .await;
    assert_eq!(raw.recv_response().await["type"], "welcome");
    raw.send_request(json!({"type": "deposit", "txid": "00".repeat(16), "amount_cents": 1000}))
        .await;
    assert_eq!(raw.recv_response().await["balance_cents"], 1000);

    let txid = "11".repeat(16);
    let bad = [
        json!({"type": "deposit", "txid": txid, "amount_cents": -100}),
        json!({"type": "withdraw", "txid": txid, "amount_cents": -100}),
        json!({"type": "deposit", "txid": txid, "amount_cents": 12.5}),
        json!({"type": "deposit", "txid": txid, "amount_cents": 100.0}),
        json!({"type": "deposit", "txid": txid, "amount_cents": 1e30}),
        json!({"type": "deposit", "txid": txid, "amount_cents": "100"}),
        json!({"type": "withdraw", "txid": txid, "amount_cents": 100, "account": "bob"}),
        json!({"type": "balance", "username": "bob"}),
        json!({"type": "deposit", "txid": "zz", "amount_cents": 100}),
        json!({"type": "transfer", "to": "bob", "amount_cents": 100}),
        json!(["deposit", txid, 100]),
    ];
    let mut bad: Vec<String> = bad.iter().map(Value::to_string).collect();
    // One more than u64::MAX cents (serde_json's `json!` cannot build it).
    bad.push(format!(
        r#"{{"type":"deposit","txid":"{txid}","amount_cents":18446744073709551616}}"#
    ));
    for request in bad {
        let mut raw = RawSession::connect(&bank.addr, &id, &psk, &bank.auth.bank).await;
        raw.send_request(
            json!({"type": "login", "username": "alice", "password": "correct horse"}),
        )
        .await;
        assert_eq!(raw.recv_response().await["type"], "welcome");
        raw.send_plaintext(&format!(r#"{{"ts":{},"request":{request}}}"#, now_ms()))
            .await;
        assert_closed(&mut raw.conn).await;
    }
    // Plaintexts that are not the request envelope.
    for plaintext in [
        "not json".to_owned(),
        json!({"request": {"type": "balance"}}).to_string(),
        json!({"ts": now_ms(), "request": {"type": "balance"}, "extra": 1}).to_string(),
        json!({"ts": now_ms(), "response": {"type": "logged_out"}}).to_string(),
    ] {
        let mut raw = RawSession::connect(&bank.addr, &id, &psk, &bank.auth.bank).await;
        raw.send_plaintext(&plaintext).await;
        assert_closed(&mut raw.conn).await;
    }

    let mut alice = logged_in(&bank, "alice").await;
    assert_eq!(balance(&mut alice).await, 1000);
    assert_eq!(balance(&mut bob).await, 700);
    assert_eq!(
        bank.lines()
            .iter()
            .filter(|l| *l == "protocol_error")
            .count(),
        16
    );
    bank.stop().await;
}

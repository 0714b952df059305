//! Criterion benchmarks: one record sealed and opened, and one full handshake (both sides, no
//! password hashing). Numbers go in docs/PERFORMANCE.md and the issue notes.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use protocol::primitives::{
    aes256_cbc_decrypt, aes256_cbc_encrypt, hmac_sha256, hmac_sha256_verify,
};
use protocol::{client, server, BankId, BankKey, Cents, Config, Psk, Request, TerminalId, TxId};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use std::hint::black_box;

const NOW: u64 = 1_700_000_000_000;

fn handshake(
    rng: &mut ChaCha20Rng,
    config: &Config,
    psk: &Psk,
    id: &TerminalId,
) -> (protocol::ClientSession, protocol::BankSession) {
    let bank_key = BankKey::from_secret(BankId::new("bank-0001").unwrap(), [0x24; 32]);
    let (atm, hello) = client::start(config, id.clone(), psk, &bank_key.pin(), rng, NOW).unwrap();
    let received = server::read_client_hello(config, &bank_key, hello.as_bytes(), NOW).unwrap();
    let (bank, sh) = received.respond(Some(psk), &bank_key, rng, NOW).unwrap();
    let (atm, cf) = atm.read_server_hello(sh.as_bytes(), NOW).unwrap();
    (atm, bank.read_client_finished(cf.as_bytes()).unwrap())
}

fn benches(c: &mut Criterion) {
    let config = Config::default();
    let psk = Psk::from_bytes([0x42; 32]);
    let id = TerminalId::new("atm-0001").unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(1);

    c.bench_function("handshake/full (both sides)", |b| {
        b.iter(|| black_box(handshake(&mut rng, &config, &psk, &id)))
    });

    let (mut atm, mut bank) = handshake(&mut rng, &config, &psk, &id);
    let deposit = Request::Deposit {
        txid: TxId::from_bytes([7; 16]),
        amount_cents: Cents(12_345),
    };
    // One record first, to report its size; the pair stays in lock-step.
    let first = atm.seal(&deposit, &mut rng, NOW).unwrap();
    bank.open(first.as_bytes(), NOW).unwrap();
    let mut group = c.benchmark_group("record");
    group.throughput(Throughput::Bytes(first.len() as u64));
    group.bench_function("seal+open deposit", |b| {
        b.iter(|| {
            let wire = atm.seal(black_box(&deposit), &mut rng, NOW).unwrap();
            black_box(bank.open(wire.as_bytes(), NOW).unwrap())
        })
    });
    // The floor: the same primitives on the same number of bytes, with no JSON, hex or
    // allocation of the record's own (issue 16: seal+open within 2 times this).
    let plaintext = serde_json::to_vec(&serde_json::json!({
        "request": deposit, "timestamp": NOW
    }))
    .unwrap();
    let (enc, mac_key, iv) = ([0x11u8; 32], [0x22u8; 32], [0x33u8; 16]);
    group.bench_function("raw aes-256-cbc + hmac-sha256, both ways", |b| {
        b.iter(|| {
            let ct = aes256_cbc_encrypt(&enc, &iv, black_box(&plaintext));
            let tag = hmac_sha256(&mac_key, &[b"atm-psk-v2 record", &[1], &[0; 8], &iv, &ct]);
            let ok = hmac_sha256_verify(
                &mac_key,
                &[b"atm-psk-v2 record", &[1], &[0; 8], &iv, &ct],
                &tag,
            );
            black_box((ok, aes256_cbc_decrypt(&enc, &iv, &ct)))
        })
    });
    group.finish();
}

criterion_group!(protocol_benches, benches);
criterion_main!(protocol_benches);

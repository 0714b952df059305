//! Criterion benchmarks of the bank's two expensive steps, through bank-server's public API at
//! the production settings: one Argon2id verify (OWASP parameters, the bank's password pool)
//! and one durable sled commit (a deposit with its audit entry, then fsync).

use std::time::Duration;

use bank_server::audit::{AuditEvent, AuditorSecret};
use bank_server::ledger::{Ledger, Movement, NewAccount};
use bank_server::passwords::PasswordPool;
use bank_server::sled_ledger::SledLedger;
use bank_server::Argon2Params;
use criterion::{criterion_group, criterion_main, Criterion};
use protocol::{Cents, FullName, Password, TxId, TxKind, Username};
use rand_core::OsRng;

fn argon2(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    // Keyed with a pepper, as the bank hashes.
    let bank_key = protocol::BankKey::from_secret(protocol::BankId::new("b").unwrap(), [3; 32]);
    let pepper = bank_server::secrets::StorageKeys::of(&bank_key).pepper();
    let pool = PasswordPool::new(
        Argon2Params::OWASP,
        1,
        Duration::from_secs(60),
        Some(pepper.clone()),
    )
    .unwrap();
    let password = Password::new("correct horse battery staple").unwrap();
    let stored = rt.block_on(pool.hash(password.clone())).unwrap();
    let mut group = c.benchmark_group("argon2id");
    group.sample_size(10);
    // An operator's hash (made by `operator add`): the stronger parameters' cost per guess.
    let operator =
        bank_server::passwords::hash_password(Argon2Params::OPERATOR, &password, Some(&pepper))
            .unwrap();
    group.bench_function("verify operator (m=65536 KiB, t=3, p=1)", |b| {
        b.iter(|| {
            let ok = rt
                .block_on(pool.verify(password.clone(), Some(operator.clone())))
                .unwrap();
            assert!(ok);
        });
    });
    group.bench_function("verify (OWASP: m=19456 KiB, t=2, p=1)", |b| {
        b.iter(|| {
            let ok = rt
                .block_on(pool.verify(password.clone(), Some(stored.clone())))
                .unwrap();
            assert!(ok);
        })
    });
    group.finish();
}

fn sled_commit(c: &mut Criterion) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let ledger = SledLedger::open(&dir.path().join("data")).unwrap();
    let identity = bank_server::ledger::BankIdentity {
        id: "0".repeat(32),
        created_ms: 0,
        format: bank_server::store::FORMAT,
        bank_key: None,
        auditor_key: Some(AuditorSecret::random().public().to_hex()),
    };
    assert!(ledger.create_bank(&identity).unwrap());
    let user = ledger
        .open_account(
            NewAccount {
                username: Username::new("bench").unwrap(),
                full_name: FullName::new("Bench").unwrap(),
                password_hash: None,
                card_sha256: Some("00".repeat(32)),
                card_public: None,
                opening: Some((TxId::random(&mut OsRng), Cents(100_000))),
                terminal: None,
            },
            1_700_000_000_000,
            &AuditEvent::new("open_account", 1_700_000_000_000),
        )
        .unwrap();
    ledger.sync().unwrap();
    let mut group = c.benchmark_group("sled");
    group.bench_function("durable commit (deposit + fsync)", |b| {
        b.iter(|| {
            let movement = Movement {
                kind: TxKind::Deposit,
                txid: TxId::random(&mut OsRng),
                amount: Cents(100),
                terminal: None,
            };
            let mut event = AuditEvent::new("deposit", 1_700_000_000_000);
            event.amount_cents = Some(100);
            ledger
                .apply(&user.account, movement, 1_700_000_000_000, &event)
                .unwrap();
            ledger.sync().unwrap();
        })
    });
    group.finish();
}

criterion_group!(benches, argon2, sled_commit);
criterion_main!(benches);

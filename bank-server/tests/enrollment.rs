//! Enrollment by a one-time code against a real bank on port 0: a code enrolls a terminal
//! whose key works and pins the bank; a code is good for one try (a wrong guess uses it up),
//! expires, and is audited when issued and used; an ordinary session cannot enroll.

mod common;

use atm_client::{enroll, ClientError};
use bank_server::ledger::PendingEnrollment;
use common::*;
use protocol::enrollment::EnrollmentCode;
use protocol::{ErrorCode, HandshakeFault, Request, TerminalRole};
use rand_core::OsRng;

fn handshake_failed(result: Result<atm_client::AuthFile, ClientError>) -> bool {
    matches!(
        result,
        Err(ClientError::Protocol(protocol::Error::HandshakeFailed(
            HandshakeFault::BadFinished
        )))
    )
}

fn actions(bank: &TestBank) -> Vec<String> {
    let audit = bank.bank.ledger().recent_audit(100).unwrap();
    audit
        .entries
        .into_iter()
        .rev()
        .map(|(_, e)| e.action)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_enrolls_one_terminal_once() {
    let dir = temp();
    let bank = TestBank::in_dir(dir.path()).await;
    let (code, expires) = bank_server::admin::issue_enrollment_code(
        bank.bank.ledger(),
        "kiosk",
        TerminalRole::Atm,
        bank_server::ledger::DepositCeilings::DEFAULT,
    )
    .unwrap();
    // Valid for 10 minutes from its issue (the README's figure).
    assert_eq!(bank_server::admin::ENROLLMENT_CODE_LIFETIME_MS, 600_000);
    let left = expires.saturating_sub(atm_client::now_ms());
    assert!((595_000..=600_000).contains(&left), "{left} ms left");
    let creds = enroll(&bank.addr, &code).await.unwrap();
    assert!(
        creds.bank == bank.auth.bank,
        "the bank's identity is pinned"
    );
    assert!(creds.terminal_id.as_str().starts_with("t-"));
    // The derived key opens ordinary sessions, as an ATM terminal.
    let mut client = atm_client::Client::connect(&bank.addr, &creds)
        .await
        .unwrap();
    assert_eq!(
        client.call(&Request::Balance {}).await.unwrap(),
        error(ErrorCode::NotLoggedIn)
    );
    let stored = bank
        .bank
        .ledger()
        .terminal(&creds.terminal_id)
        .unwrap()
        .unwrap();
    assert_eq!(stored.name, "kiosk");
    assert_eq!(stored.role, TerminalRole::Atm);
    assert_eq!(
        stored.ceilings,
        bank_server::ledger::DepositCeilings::DEFAULT,
        "the code's ceilings"
    );
    assert!(stored.psk == creds.psk);
    // Used: the same code fails like a wrong key.
    assert!(handshake_failed(enroll(&bank.addr, &code).await));
    let seen = actions(&bank);
    for action in [
        "enrollment_code_issued",
        "enrollment_code_used",
        "terminal_enrolled",
    ] {
        assert!(seen.iter().any(|a| a == action), "{action} in {seen:?}");
    }
    // No more terminals than the first and this one.
    assert_eq!(bank.bank.ledger().terminals().unwrap().len(), 2);
    bank.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_wrong_guess_uses_the_code_up() {
    let dir = temp();
    let bank = TestBank::in_dir(dir.path()).await;
    let (code, _) = bank_server::admin::issue_enrollment_code(
        bank.bank.ledger(),
        "lobby",
        TerminalRole::Atm,
        bank_server::ledger::DepositCeilings::DEFAULT,
    )
    .unwrap();
    let text = code.to_text();
    let guess = EnrollmentCode::parse(&format!("{}{}", &text[..13], "5".repeat(32))).unwrap();
    assert!(handshake_failed(enroll(&bank.addr, &guess).await));
    // The right code no longer works either: one try per code.
    assert!(handshake_failed(enroll(&bank.addr, &code).await));
    // The bank takes a code before it answers: once its hello is out, the code is gone,
    // whatever the terminal does next (here: nothing).
    let (third, _) = bank_server::admin::issue_enrollment_code(
        bank.bank.ledger(),
        "desk",
        TerminalRole::Atm,
        bank_server::ledger::DepositCeilings::DEFAULT,
    )
    .unwrap();
    let mut raw = bank.raw().await;
    let (_, hello) = protocol::enrollment::client::start(
        &protocol::Config::default(),
        &third,
        &mut OsRng,
        atm_client::now_ms(),
    );
    raw.send_text(hello).await.unwrap();
    let answer = raw.recv_text().await.unwrap();
    assert!(answer.contains("enroll_server_hello"), "{answer}");
    let probe = bank_server::audit::AuditEvent::new("test_probe", atm_client::now_ms());
    assert!(
        bank.bank
            .ledger()
            .take_enrollment(third.id(), &probe)
            .unwrap()
            .is_none(),
        "the code was still there after the bank answered"
    );
    drop(raw);
    // An unknown code looks the same.
    let unknown = EnrollmentCode::random(&mut OsRng);
    assert!(handshake_failed(enroll(&bank.addr, &unknown).await));
    assert_eq!(bank.bank.ledger().terminals().unwrap().len(), 1);
    bank.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_code_enrolls_nothing() {
    let dir = temp();
    let bank = TestBank::in_dir(dir.path()).await;
    let code = EnrollmentCode::random(&mut OsRng);
    let now = atm_client::now_ms();
    let pending = PendingEnrollment {
        code: code.id().clone(),
        name: "late".into(),
        key: code.psk(),
        role: TerminalRole::Atm,
        ceilings: bank_server::ledger::DepositCeilings::DEFAULT,
        created_ms: now - bank_server::admin::ENROLLMENT_CODE_LIFETIME_MS - 1,
        expires_ms: now - 1,
    };
    let event = bank_server::audit::AuditEvent::new("enrollment_code_issued", now);
    bank.bank.ledger().add_enrollment(&pending, &event).unwrap();
    assert!(handshake_failed(enroll(&bank.addr, &code).await));
    assert!(actions(&bank)
        .iter()
        .any(|a| a == "enrollment_code_expired"));
    assert_eq!(bank.bank.ledger().terminals().unwrap().len(), 1);
    bank.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ordinary_session_cannot_enroll() {
    let dir = temp();
    let bank = TestBank::in_dir(dir.path()).await;
    let mut client = bank.client().await;
    assert_eq!(
        client.call(&Request::Enroll {}).await.unwrap(),
        error(ErrorCode::NotAllowed)
    );
    assert_eq!(bank.bank.ledger().terminals().unwrap().len(), 1);
    bank.stop().await;
}

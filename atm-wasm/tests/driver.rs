//! The session driver over the real protocol crate, natively and in headless Chromium: the
//! bank's side here is `protocol::server` with real keys, so every frame is really sealed.

mod common;

use common::{bank_key, NOW};

use atm_wasm::atm::driver::{Broken, Driver, Event, Op, OpKind, Output};
use atm_wasm::link::Driver as _;
use protocol::{
    AccountNumber, BankId, BankKey, BankSession, Cents, Config, FullName, HistoryEntry, Password,
    Psk, Request, Response, TerminalId, TxId, TxKind, Username,
};
use rand_core::OsRng;

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

fn psk() -> Psk {
    Psk::from_bytes([9; 32])
}

fn driver() -> Driver {
    Driver::new(
        TerminalId::new("t-web").unwrap(),
        bank_key().pin(),
        Config::default(),
    )
}

/// Runs a handshake with `bank_psk`; returns the bank's session and the driver's output.
fn handshake(d: &mut Driver, bank_psk: &Psk) -> Result<(BankSession, Output), Broken> {
    handshake_as(d, bank_psk, &bank_key())
}

/// A handshake with a bank answering with `bank_psk` and the static key `bank`.
fn handshake_as(
    d: &mut Driver,
    bank_psk: &Psk,
    bank: &BankKey,
) -> Result<(BankSession, Output), Broken> {
    common::handshake_as(d, "t-web", &psk(), bank_psk, bank)
}

fn login_op() -> Op {
    Op::Login {
        username: Username::new("alice").unwrap(),
        password: Password::new("correct horse").unwrap(),
    }
}

fn welcome() -> Response {
    Response::Welcome {
        username: Username::new("alice").unwrap(),
        full_name: FullName::new("Alice").unwrap(),
        account: AccountNumber::new("A-1").unwrap(),
        balance_cents: Cents(0),
    }
}

fn open(bank: &mut BankSession, frame: &str) -> Request {
    bank.open(frame.as_bytes(), NOW).unwrap()
}

fn reply(d: &mut Driver, bank: &mut BankSession, response: &Response) -> Output {
    let frame = bank.seal(response, &mut OsRng, NOW).unwrap();
    d.receive(frame.as_bytes(), &mut OsRng, NOW).unwrap()
}

fn submit(d: &mut Driver, op: Op) -> Output {
    d.submit(op, &mut OsRng, NOW).expect("not busy").unwrap()
}

/// Logs in and answers the mini statement fetched behind the welcome.
fn log_in(d: &mut Driver, bank: &mut BankSession) {
    let out = submit(d, login_op());
    let _ = open(bank, &out.send[0]);
    let out = reply(d, bank, &welcome());
    assert!(matches!(open(bank, &out.send[0]), Request::History { .. }));
    let _ = reply(d, bank, &Response::History { entries: vec![] });
}

#[test]
fn handshake_login_and_a_deposit() {
    let mut d = driver();
    let (mut bank, out) = handshake(&mut d, &psk()).unwrap();
    assert_eq!(out.events, vec![Event::Connected]);
    assert_eq!(out.send.len(), 1, "only the ClientFinished");
    assert!(d.is_up() && !d.logged_in());

    let out = submit(&mut d, login_op());
    assert!(matches!(
        open(&mut bank, &out.send[0]),
        Request::Login { .. }
    ));
    let out = reply(&mut d, &mut bank, &welcome());
    assert_eq!(out.events, vec![Event::Reply(OpKind::Login, welcome())]);
    assert!(d.logged_in());
    // The follow-up rule: the mini statement is fetched right behind the welcome.
    assert_eq!(out.send.len(), 1);
    assert!(matches!(
        open(&mut bank, &out.send[0]),
        Request::History { limit: 10 }
    ));
    let history = Response::History { entries: vec![] };
    let out = reply(&mut d, &mut bank, &history);
    assert_eq!(out.events, vec![Event::Reply(OpKind::History, history)]);
    assert!(out.send.is_empty());

    let txid = TxId::from_bytes([7; 16]);
    let out = submit(
        &mut d,
        Op::Deposit {
            txid,
            amount: Cents(10_000),
        },
    );
    let Request::Deposit {
        txid: seen,
        amount_cents,
    } = open(&mut bank, &out.send[0])
    else {
        panic!("not a deposit");
    };
    assert_eq!((seen, amount_cents), (txid, Cents(10_000)));
    let done = Response::Deposited {
        txid,
        amount_cents,
        balance_cents: Cents(10_000),
    };
    // One round trip: the answer becomes the statement's newest row, and nothing more is sent.
    let out = reply(&mut d, &mut bank, &done);
    assert_eq!(
        out.events,
        vec![
            Event::Reply(OpKind::Deposit, done),
            Event::Row(HistoryEntry {
                txid,
                kind: TxKind::Deposit,
                amount_cents: Cents(10_000),
                balance_cents: Cents(10_000),
                time_ms: NOW,
            }),
        ]
    );
    assert!(out.send.is_empty(), "no history request follows a deposit");
    assert!(!d.busy(OpKind::History));
}

#[test]
fn a_withdrawal_costs_one_round_trip_too() {
    let mut d = driver();
    let (mut bank, _) = handshake(&mut d, &psk()).unwrap();
    log_in(&mut d, &mut bank);
    let txid = TxId::from_bytes([5; 16]);
    let out = submit(
        &mut d,
        Op::Withdraw {
            txid,
            amount: Cents(250),
        },
    );
    let _ = open(&mut bank, &out.send[0]);
    let done = Response::Withdrawn {
        txid,
        amount_cents: Cents(250),
        balance_cents: Cents(750),
    };
    let out = reply(&mut d, &mut bank, &done);
    assert!(
        out.send.is_empty(),
        "no history request follows a withdrawal"
    );
    assert_eq!(
        out.events.last(),
        Some(&Event::Row(HistoryEntry {
            txid,
            kind: TxKind::Withdraw,
            amount_cents: Cents(250),
            balance_cents: Cents(750),
            time_ms: NOW,
        }))
    );
}

#[test]
fn a_second_request_of_the_same_kind_is_refused_while_one_is_under_way() {
    let mut d = driver();
    let (mut bank, _) = handshake(&mut d, &psk()).unwrap();
    let first = submit(
        &mut d,
        Op::Deposit {
            txid: TxId::from_bytes([1; 16]),
            amount: Cents(1),
        },
    );
    assert_eq!(first.send.len(), 1);
    assert!(d.busy(OpKind::Deposit));
    assert!(d
        .submit(
            Op::Deposit {
                txid: TxId::from_bytes([2; 16]),
                amount: Cents(1)
            },
            &mut OsRng,
            NOW
        )
        .is_none());
    // Another kind may go at the same time.
    assert_eq!(submit(&mut d, Op::History).send.len(), 1);
    let _ = open(&mut bank, &first.send[0]);
}

#[test]
fn requests_made_before_the_handshake_go_right_after_it() {
    let mut d = driver();
    let out = submit(&mut d, login_op());
    assert!(out.send.is_empty() && out.events.is_empty());
    assert!(d.busy(OpKind::Login));
    let (mut bank, out) = handshake(&mut d, &psk()).unwrap();
    assert_eq!(out.send.len(), 2, "ClientFinished then the login");
    assert!(matches!(
        open(&mut bank, &out.send[1]),
        Request::Login { .. }
    ));
}

#[test]
fn a_dropped_deposit_is_retried_once_with_the_same_txid_after_a_fresh_login() {
    let mut d = driver();
    let (mut bank, _) = handshake(&mut d, &psk()).unwrap();
    log_in(&mut d, &mut bank);
    let txid = TxId::from_bytes([3; 16]);
    let out = submit(
        &mut d,
        Op::Withdraw {
            txid,
            amount: Cents(3_050),
        },
    );
    let _ = open(&mut bank, &out.send[0]);

    // The socket drops before the answer: nothing is reported lost, the withdrawal waits.
    assert!(d.disconnected().is_empty());
    assert!(!d.is_up() && d.logged_in() && d.busy(OpKind::Withdraw));

    // A new connection: a new handshake (new keys), log in again, then the same withdrawal.
    let (mut bank2, out) = handshake(&mut d, &psk()).unwrap();
    assert_eq!(out.send.len(), 3);
    let Request::Login { username, password } = open(&mut bank2, &out.send[1]) else {
        panic!("no re-login");
    };
    assert_eq!(
        (username.as_str(), password.expose()),
        ("alice", "correct horse")
    );
    let Request::Withdraw {
        txid: again,
        amount_cents,
    } = open(&mut bank2, &out.send[2])
    else {
        panic!("no retry");
    };
    assert_eq!((again, amount_cents), (txid, Cents(3_050)));
    // The re-login's welcome is not news to the page; the withdrawal's answer is.
    assert!(reply(&mut d, &mut bank2, &welcome()).events.is_empty());
    let done = Response::Withdrawn {
        txid,
        amount_cents,
        balance_cents: Cents(6_950),
    };
    let events = reply(&mut d, &mut bank2, &done).events;
    assert_eq!(events[0], Event::Reply(OpKind::Withdraw, done));
    assert!(
        matches!(&events[1..], [Event::Row(row)] if row.txid == txid && row.balance_cents == Cents(6_950))
    );
    assert!(!d.busy(OpKind::Withdraw));
    // The old connection's keys are gone: its records no longer open here.
    let stale = bank
        .seal(
            &Response::Balance {
                balance_cents: Cents(1),
            },
            &mut OsRng,
            NOW,
        )
        .unwrap();
    assert_eq!(
        d.receive(stale.as_bytes(), &mut OsRng, NOW),
        Err(Broken::Record)
    );
}

#[test]
fn a_dropped_login_is_reported_not_replayed() {
    let mut d = driver();
    let _ = handshake(&mut d, &psk()).unwrap();
    let _ = submit(&mut d, login_op());
    assert_eq!(d.disconnected(), vec![Event::Lost(OpKind::Login)]);
    assert!(!d.busy(OpKind::Login) && !d.logged_in());
    let (_, out) = handshake(&mut d, &psk()).unwrap();
    assert_eq!(out.send.len(), 1, "nothing sent on its own");
}

#[test]
fn a_refused_relogin_ends_the_session() {
    let mut d = driver();
    let (mut bank, _) = handshake(&mut d, &psk()).unwrap();
    log_in(&mut d, &mut bank);
    let _ = submit(&mut d, Op::History);
    assert!(d.disconnected().is_empty());
    let (mut bank2, out) = handshake(&mut d, &psk()).unwrap();
    let _ = open(&mut bank2, &out.send[1]);
    let refused = Response::Error {
        code: protocol::ErrorCode::AuthFailed,
    };
    assert_eq!(
        reply(&mut d, &mut bank2, &refused).events,
        vec![Event::SessionEnded]
    );
    assert!(!d.logged_in());
    // The history went right behind the re-login; the bank refuses it too, and it is done.
    assert!(matches!(
        open(&mut bank2, &out.send[2]),
        Request::History { .. }
    ));
    let not_logged_in = Response::Error {
        code: protocol::ErrorCode::NotLoggedIn,
    };
    assert_eq!(
        reply(&mut d, &mut bank2, &not_logged_in).events,
        vec![Event::Reply(OpKind::History, not_logged_in)]
    );
    assert!(!d.busy(OpKind::History));
}

#[test]
fn logout_forgets_the_login() {
    let mut d = driver();
    let (mut bank, _) = handshake(&mut d, &psk()).unwrap();
    log_in(&mut d, &mut bank);
    let out = submit(&mut d, Op::Logout);
    assert!(matches!(open(&mut bank, &out.send[0]), Request::Logout {}));
    let out = reply(&mut d, &mut bank, &Response::LoggedOut {});
    assert_eq!(
        out.events,
        vec![Event::Reply(OpKind::Logout, Response::LoggedOut {})]
    );
    assert!(!d.logged_in());
    let _ = d.disconnected();
    let (_, out) = handshake(&mut d, &psk()).unwrap();
    assert_eq!(out.send.len(), 1, "no re-login after a logout");
}

#[test]
fn a_wrong_key_or_a_tampered_record_breaks_the_connection() {
    let mut d = driver();
    assert_eq!(
        handshake(&mut d, &Psk::from_bytes([1; 32])).err(),
        Some(Broken::Handshake)
    );
    let _ = d.disconnected();
    let (mut bank, _) = handshake(&mut d, &psk()).unwrap();
    let _ = submit(&mut d, Op::Balance);
    let frame = bank
        .seal(
            &Response::Balance {
                balance_cents: Cents(5),
            },
            &mut OsRng,
            NOW,
        )
        .unwrap();
    // Flip one hex digit inside the record.
    let mut bytes = frame.into_bytes();
    let i = bytes.len() / 2;
    bytes[i] = if bytes[i] == b'0' { b'1' } else { b'0' };
    assert_eq!(d.receive(&bytes, &mut OsRng, NOW), Err(Broken::Record));
    // A frame before any handshake is unexpected.
    let mut fresh = driver();
    assert_eq!(
        fresh.receive(b"{}", &mut OsRng, NOW),
        Err(Broken::Unexpected)
    );
}

#[test]
fn a_bank_with_the_right_terminal_key_but_not_the_pinned_bank_key_is_refused() {
    // Whoever has the terminal's key (a copied auth file, a leaked link) but not the bank's
    // private key cannot pass for the bank: not with another key, nor the pinned bank's id.
    let impostors = [
        BankKey::from_secret(BankId::new("bank-1").unwrap(), [0x25; 32]),
        BankKey::from_secret(BankId::new("bank-2").unwrap(), [0x24; 32]),
    ];
    for impostor in &impostors {
        let mut d = driver();
        // A login typed while connecting waits for the handshake.
        let out = submit(&mut d, login_op());
        assert!(out.send.is_empty());
        assert_eq!(
            handshake_as(&mut d, &psk(), impostor).err(),
            Some(Broken::Handshake)
        );
        // The link is not up and nothing was sealed for the impostor: the password stays here.
        assert!(!d.is_up() && !d.logged_in());
        assert!(d.busy(OpKind::Login), "the login still waits, unsent");
        assert!(d.disconnected().is_empty());
        // The real bank is accepted on the next connection, and the login goes to it.
        let (mut bank, out) = handshake(&mut d, &psk()).unwrap();
        assert_eq!(out.events, vec![Event::Connected]);
        assert!(matches!(
            open(&mut bank, &out.send[1]),
            Request::Login { .. }
        ));
    }
}

#[test]
fn a_logout_ends_the_login_here_and_answers_itself_when_the_bank_was_not_asked() {
    let mut d = driver();
    let (mut bank, _) = handshake(&mut d, &psk()).unwrap();
    log_in(&mut d, &mut bank);
    let _ = submit(&mut d, Op::Logout);
    assert_eq!(d.logged_out(true), None, "the bank answers");
    assert!(!d.logged_in());
    let mut d = driver();
    let (mut bank, _) = handshake(&mut d, &psk()).unwrap();
    log_in(&mut d, &mut bank);
    assert_eq!(
        d.logged_out(false),
        Some(Event::Reply(OpKind::Logout, Response::LoggedOut {}))
    );
    assert!(!d.logged_in());
}

//! Client-side logic of the web ATM, natively and in headless Chromium: amount parsing,
//! enrollment parsing (bank key included), the page reducer's state transitions and idle logout.

use atm_wasm::atm::amount::{parse_amount, AmountError};
use atm_wasm::atm::driver::{Event, OpKind};
use atm_wasm::atm::idle::{self, Idle};
use atm_wasm::atm::state::{enroll_form_of, Action, Form, Link, State, LOST};
use atm_wasm::link::enroll::{is_enrollment_fragment, EnrollError, Enrollment, ENROLL_AGAIN};
use protocol::{
    AccountNumber, BankId, BankKey, BankPin, Cents, ErrorCode, FullName, HistoryEntry, Response,
    TxId, TxKind, Username,
};

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

const KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

#[test]
fn amounts_parse_exactly_with_reasons() {
    assert_eq!(parse_amount("100.00"), Ok(Cents(10_000)));
    assert_eq!(parse_amount("30.5"), Ok(Cents(3_050)));
    assert_eq!(parse_amount("0.01"), Ok(Cents(1)));
    assert_eq!(parse_amount("  7 "), Ok(Cents(700)));
    assert_eq!(parse_amount("4294967295.99"), Ok(Cents(429_496_729_599)));
    assert_eq!(parse_amount(""), Err(AmountError::Empty));
    assert_eq!(parse_amount("   "), Err(AmountError::Empty));
    assert_eq!(parse_amount("0"), Err(AmountError::Zero));
    assert_eq!(parse_amount("0.00"), Err(AmountError::Zero));
    assert_eq!(parse_amount("12.345"), Err(AmountError::TooPrecise));
    assert_eq!(parse_amount("4294967296.00"), Err(AmountError::TooLarge));
    assert_eq!(
        parse_amount("184467440737095516.16"),
        Err(AmountError::TooLarge)
    );
    for bad in [
        "-5", "+5", "1e3", "1,50", "12.5.1", ".5", "5.", "abc", "1 000", "NaN", "0x10",
    ] {
        assert_eq!(parse_amount(bad), Err(AmountError::NotANumber), "{bad:?}");
    }
    // Every reason has plain words, never a code.
    for e in [
        AmountError::Empty,
        AmountError::NotANumber,
        AmountError::TooPrecise,
        AmountError::Zero,
        AmountError::TooLarge,
    ] {
        assert!(e.message().ends_with('.') && !e.message().contains('_'));
    }
}

#[test]
fn money_displays_from_integer_cents() {
    assert_eq!(Cents(6_950).to_string(), "69.50");
    assert_eq!(Cents(5).to_string(), "0.05");
    assert_eq!(Cents(u64::MAX).to_string(), "184467440737095516.15");
}

fn pin() -> BankPin {
    BankKey::from_secret(BankId::new("bank-1").unwrap(), [0x24; 32]).pin()
}

/// The bank key as the bank prints it: `bank-1:<64 hex>`.
fn bank() -> String {
    pin().to_text()
}

#[test]
fn enrollment_links_parse_exactly() {
    let b = bank();
    let e = Enrollment::from_link(&format!(
        "http://127.0.0.1:8765/#terminal=t-0123456789ab&key={KEY}&bank={b}"
    ))
    .ok()
    .unwrap();
    assert_eq!(e.terminal.as_str(), "t-0123456789ab");
    assert_eq!(e.psk.to_hex().as_str(), KEY);
    assert!(e.bank == pin());
    assert!(Enrollment::from_fragment(&format!("#terminal=t-1&key={KEY}&bank={b}")).is_ok());
    assert!(
        Enrollment::from_link(&format!("http://h/console#terminal=t-1&key={KEY}&bank={b}")).is_ok()
    );
    assert!(is_enrollment_fragment("#terminal=x"));
    assert!(!is_enrollment_fragment("#main"));
    let err = |text: &str| Enrollment::from_link(text).err();
    assert_eq!(
        err(&format!("#key={KEY}&terminal=t-1&bank={b}")),
        Some(EnrollError::NotALink)
    );
    assert_eq!(
        err(&format!("#terminal=&key={KEY}&bank={b}")),
        Some(EnrollError::BadTerminal)
    );
    assert_eq!(
        err(&format!("#terminal=t 1&key={KEY}&bank={b}")),
        Some(EnrollError::BadTerminal)
    );
    assert_eq!(
        err(&format!("#terminal=t-1&key=abc&bank={b}")),
        Some(EnrollError::BadKey)
    );
    assert_eq!(
        err(&format!(
            "#terminal=t-1&key={}&bank={b}",
            KEY.to_uppercase()
        )),
        Some(EnrollError::BadKey)
    );
    assert_eq!(
        err(&format!("#terminal=t-1&key={KEY}0&bank={b}")),
        Some(EnrollError::BadKey)
    );
    assert_eq!(err("http://127.0.0.1:8765/"), Some(EnrollError::NotALink));
    // By hand: spaces around are forgiven.
    assert!(Enrollment::from_fields(" t-1 ", &format!(" {KEY}\n"), &format!(" {b} ")).is_ok());
    assert_eq!(
        Enrollment::from_fields("", KEY, &b).err(),
        Some(EnrollError::BadTerminal)
    );
}

#[test]
fn links_and_fields_without_a_good_bank_key_are_refused() {
    let b = bank();
    let err = |text: &str| Enrollment::from_link(text).err();
    // A link from before the bank key (protocol v1), or with the bank key out of place.
    assert_eq!(
        err(&format!("http://127.0.0.1:8765/#terminal=t-1&key={KEY}")),
        Some(EnrollError::NotALink)
    );
    assert_eq!(
        err(&format!("#terminal=t-1&bank={b}&key={KEY}")),
        Some(EnrollError::NotALink)
    );
    assert_eq!(
        err(&format!("#terminal=t-1&key={KEY}&bank={b}&x=1")),
        Some(EnrollError::NotALink)
    );
    assert_eq!(
        err(&format!("#terminal=t-1&key={KEY}&bank= {b}")),
        Some(EnrollError::NotALink),
        "a link is machine-made: no spaces"
    );
    let bad_banks = [
        String::new(),
        "bank-1".to_owned(),
        "bank-1:".to_owned(),
        pin().public_hex(),
        format!(":{}", pin().public_hex()),
        format!("bad id:{}", pin().public_hex()),
        format!("bank-1:{}", pin().public_hex().to_uppercase()),
        format!("bank-1:{}", &pin().public_hex()[2..]),
        format!("bank-1:{}0", pin().public_hex()),
        // A low-order point: no secret could be agreed with it.
        format!("bank-1:{}", "00".repeat(32)),
    ];
    for bad in &bad_banks {
        assert_eq!(
            err(&format!("#terminal=t-1&key={KEY}&bank={bad}")),
            Some(EnrollError::BadBank),
            "link with {bad:?}"
        );
        assert_eq!(
            Enrollment::from_fields("t-1", KEY, bad).err(),
            Some(EnrollError::BadBank),
            "field {bad:?}"
        );
    }
    // The first bad field is the one reported.
    assert_eq!(
        Enrollment::from_fields("t-1", "abc", "").err(),
        Some(EnrollError::BadKey)
    );
    // Each error has plain words (ending with a full stop or an example) and no codes.
    for e in [
        EnrollError::BadTerminal,
        EnrollError::BadKey,
        EnrollError::BadBank,
        EnrollError::NotALink,
    ] {
        assert!(e.message().ends_with(['.', '…']), "{e:?}");
        assert!(!e.message().contains('_'), "{e:?}");
    }
    assert!(EnrollError::BadBank.message().contains("bank key"));
    assert!(EnrollError::NotALink.message().contains("&bank="));
}

#[test]
fn enrollment_errors_show_under_their_field_one_at_a_time() {
    // Typed by hand, each error goes under its own field; from a link, under the first one
    // (where links are pasted).
    assert_eq!(enroll_form_of(EnrollError::BadTerminal, true), Form::Enroll);
    assert_eq!(enroll_form_of(EnrollError::BadKey, true), Form::EnrollKey);
    assert_eq!(enroll_form_of(EnrollError::BadBank, true), Form::EnrollBank);
    for e in [
        EnrollError::BadTerminal,
        EnrollError::BadKey,
        EnrollError::BadBank,
        EnrollError::NotALink,
    ] {
        assert_eq!(enroll_form_of(e, false), Form::Enroll);
    }
    let mut s = State::default();
    s.apply(Action::Invalid(
        Form::EnrollBank,
        EnrollError::BadBank.message().into(),
    ));
    assert_eq!(
        s.error(Form::EnrollBank),
        Some(EnrollError::BadBank.message())
    );
    // A new attempt's error replaces the last one, wherever it was.
    s.apply(Action::Invalid(
        Form::EnrollKey,
        EnrollError::BadKey.message().into(),
    ));
    assert_eq!(s.error(Form::EnrollBank), None);
    assert_eq!(
        s.error(Form::EnrollKey),
        Some(EnrollError::BadKey.message())
    );
    // A stored v1 enrollment asks, at the top, to enroll again; enrolling clears it all.
    s.apply(Action::Notice(ENROLL_AGAIN.into()));
    assert_eq!(s.notice.as_deref(), Some(ENROLL_AGAIN));
    s.apply(Action::Enrolled("t-1".into()));
    assert!(s.errors.is_empty() && s.notice.is_none());
    assert_eq!(s.link, Link::Connecting);
}

#[test]
fn idle_logout_warns_then_expires() {
    let limit = idle::IDLE_LIMIT_MS;
    assert_eq!(idle::check(1_000, 1_000, limit), Idle::Active);
    assert_eq!(
        idle::check(1_000, 1_000 + limit - 30_001, limit),
        Idle::Active
    );
    assert_eq!(
        idle::check(1_000, 1_000 + limit - 30_000, limit),
        Idle::Warn(30)
    );
    assert_eq!(idle::check(1_000, 1_000 + limit - 1, limit), Idle::Warn(1));
    assert_eq!(idle::check(1_000, 1_000 + limit, limit), Idle::Expired);
    // A clock that went back counts as activity.
    assert_eq!(idle::check(10_000, 5_000, limit), Idle::Active);
}

fn welcome(balance: u64) -> Response {
    Response::Welcome {
        username: Username::new("alice").unwrap(),
        full_name: FullName::new("Alice Example").unwrap(),
        account: AccountNumber::new("ACC-1").unwrap(),
        balance_cents: Cents(balance),
    }
}

fn entry(kind: TxKind, amount: u64, balance: u64) -> HistoryEntry {
    HistoryEntry {
        txid: TxId::from_bytes([1; 16]),
        kind,
        amount_cents: Cents(amount),
        balance_cents: Cents(balance),
        time_ms: 1,
    }
}

#[test]
fn state_moves_from_enrollment_to_dashboard_and_back() {
    let mut s = State::default();
    s.apply(Action::Enrolled("t-1".into()));
    assert_eq!(s.link, Link::Connecting);
    s.apply(Action::Bank(Event::Connected));
    assert_eq!(s.link, Link::Up);

    s.apply(Action::Pending(Form::Login));
    assert!(s.is_pending(Form::Login));
    s.apply(Action::Bank(Event::Reply(
        OpKind::Login,
        Response::Error {
            code: ErrorCode::AuthFailed,
        },
    )));
    assert!(!s.is_pending(Form::Login));
    assert_eq!(s.error(Form::Login), Some(ErrorCode::AuthFailed.message()));
    assert!(s.account.is_none());

    s.apply(Action::Pending(Form::Login));
    assert_eq!(
        s.error(Form::Login),
        None,
        "a new attempt clears the old error"
    );
    s.apply(Action::Bank(Event::Reply(OpKind::Login, welcome(0))));
    assert_eq!(
        s.account.as_ref().unwrap().full_name.as_str(),
        "Alice Example"
    );

    s.apply(Action::Pending(Form::Deposit));
    s.apply(Action::Bank(Event::Reply(
        OpKind::Deposit,
        Response::Deposited {
            txid: TxId::from_bytes([2; 16]),
            amount_cents: Cents(10_000),
            balance_cents: Cents(10_000),
        },
    )));
    assert!(!s.is_pending(Form::Deposit));
    assert_eq!(s.account.as_ref().unwrap().balance, Cents(10_000));
    assert_eq!(s.completed, 1);
    assert!(s.notice.as_deref().unwrap().contains("100.00"));

    s.apply(Action::Pending(Form::Withdraw));
    s.apply(Action::Bank(Event::Reply(
        OpKind::Withdraw,
        Response::Error {
            code: ErrorCode::InsufficientFunds,
        },
    )));
    assert_eq!(
        s.error(Form::Withdraw),
        Some("There is not enough money in the account.")
    );
    assert_eq!(s.account.as_ref().unwrap().balance, Cents(10_000));

    s.apply(Action::Bank(Event::Reply(
        OpKind::History,
        Response::History {
            entries: vec![
                entry(TxKind::Withdraw, 3_050, 6_950),
                entry(TxKind::Deposit, 10_000, 10_000),
            ],
        },
    )));
    assert_eq!(s.history.len(), 2);
    assert_eq!(s.account.as_ref().unwrap().balance, Cents(6_950));

    s.apply(Action::Bank(Event::Reply(
        OpKind::Logout,
        Response::LoggedOut {},
    )));
    assert!(s.account.is_none());
    assert!(
        s.history.is_empty(),
        "nothing of the account stays on screen"
    );
    assert_eq!(s.error(Form::Withdraw), None);
}

#[test]
fn registration_errors_go_to_their_field() {
    let mut s = State::default();
    s.apply(Action::Enrolled("t-1".into()));
    s.apply(Action::Pending(Form::Register));
    s.apply(Action::Bank(Event::Reply(
        OpKind::Register,
        Response::Error {
            code: ErrorCode::NameTaken,
        },
    )));
    assert_eq!(
        s.error(Form::RegisterUsername),
        Some(ErrorCode::NameTaken.message())
    );
    s.apply(Action::Pending(Form::Register));
    assert_eq!(s.error(Form::RegisterUsername), None);
    s.apply(Action::Bank(Event::Reply(
        OpKind::Register,
        Response::Error {
            code: ErrorCode::WeakPassword,
        },
    )));
    assert_eq!(
        s.error(Form::RegisterPassword),
        Some(ErrorCode::WeakPassword.message())
    );
}

#[test]
fn lost_connections_and_idle_logout_are_said_in_words() {
    let mut s = State::default();
    s.apply(Action::Enrolled("t-1".into()));
    s.apply(Action::Pending(Form::Login));
    s.apply(Action::Bank(Event::Lost(OpKind::Login)));
    assert!(!s.is_pending(Form::Login));
    assert_eq!(s.error(Form::Login), Some(LOST));

    s.apply(Action::Bank(Event::Reply(OpKind::Login, welcome(500))));
    s.apply(Action::IdleWarning(Some(12)));
    assert_eq!(s.idle_warning, Some(12));
    s.apply(Action::IdleLogout);
    assert!(s.account.is_none());
    assert_eq!(s.idle_warning, None);
    assert!(s.notice.as_deref().unwrap().contains("3 minutes"));
    // The bank's late LoggedOut does not replace the reason.
    s.apply(Action::Bank(Event::Reply(
        OpKind::Logout,
        Response::LoggedOut {},
    )));
    assert!(s.notice.as_deref().unwrap().contains("3 minutes"));

    s.apply(Action::Link(Link::Down(2)));
    assert_eq!(s.link, Link::Down(2));
    s.apply(Action::Forgotten);
    assert_eq!(s, State::default());
}

#[test]
fn a_confirmation_stays_and_the_answer_becomes_the_statement_row() {
    let mut s = State::default();
    s.apply(Action::Enrolled("t-1".into()));
    s.apply(Action::Bank(Event::Reply(OpKind::Login, welcome(0))));
    assert!(
        s.is_pending(Form::Statement),
        "the driver fetches the statement behind a welcome"
    );
    s.apply(Action::Bank(Event::Reply(
        OpKind::History,
        Response::History {
            entries: vec![entry(TxKind::Open, 0, 0)],
        },
    )));
    assert!(!s.is_pending(Form::Statement));

    s.apply(Action::Pending(Form::Deposit));
    let txid = TxId::from_bytes([4; 16]);
    let row = HistoryEntry {
        txid,
        kind: TxKind::Deposit,
        amount_cents: Cents(2_500),
        balance_cents: Cents(2_500),
        time_ms: 9,
    };
    s.apply(Action::Bank(Event::Reply(
        OpKind::Deposit,
        Response::Deposited {
            txid,
            amount_cents: Cents(2_500),
            balance_cents: Cents(2_500),
        },
    )));
    s.apply(Action::Bank(Event::Row(row.clone())));
    assert_eq!(
        s.notice.as_deref(),
        Some("Deposited 25.00. Your balance is now 25.00.")
    );
    assert_eq!(s.history.first(), Some(&row));
    assert_eq!(s.history.len(), 2);
    // A statement refresh does not hide the confirmation.
    s.apply(Action::Pending(Form::Statement));
    assert!(s.notice.is_some());
    // A retried transaction id is one row.
    s.apply(Action::Bank(Event::Row(row)));
    assert_eq!(s.history.len(), 2);
    // A withdrawal says so.
    s.apply(Action::Pending(Form::Withdraw));
    s.apply(Action::Bank(Event::Reply(
        OpKind::Withdraw,
        Response::Withdrawn {
            txid: TxId::from_bytes([5; 16]),
            amount_cents: Cents(1_000),
            balance_cents: Cents(1_500),
        },
    )));
    assert_eq!(
        s.notice.as_deref(),
        Some("Withdrew 10.00. Your balance is now 15.00.")
    );
    // The statement keeps the driver's limit.
    for i in 0..20u8 {
        s.apply(Action::Bank(Event::Row(HistoryEntry {
            txid: TxId::from_bytes([i + 10; 16]),
            ..entry(TxKind::Withdraw, 1, 1)
        })));
    }
    assert_eq!(
        s.history.len(),
        atm_wasm::atm::driver::HISTORY_LIMIT as usize
    );
    // The next form sent hides it.
    s.apply(Action::Pending(Form::Withdraw));
    assert!(s.notice.is_none());
}

#[test]
fn login_errors_show_under_their_own_field_and_go_when_it_changes() {
    let mut s = State::default();
    s.apply(Action::Enrolled("t-1".into()));
    s.apply(Action::Invalid(
        Form::LoginUsername,
        "Please enter your username.".into(),
    ));
    assert_eq!(s.error(Form::Login), None, "not under the password");
    assert!(s.error(Form::LoginUsername).is_some());
    // The field changed: its error goes, the others stay.
    s.apply(Action::Invalid(Form::RegisterPassword, "short".into()));
    s.apply(Action::ClearErrors(vec![Form::LoginUsername]));
    assert_eq!(s.error(Form::LoginUsername), None);
    assert_eq!(s.error(Form::RegisterPassword), Some("short"));
    // Sending the login clears both of its fields' errors.
    s.apply(Action::Invalid(Form::LoginUsername, "x".into()));
    s.apply(Action::Invalid(Form::Login, "y".into()));
    s.apply(Action::Pending(Form::Login));
    assert_eq!(
        (s.error(Form::LoginUsername), s.error(Form::Login)),
        (None, None)
    );
}

//! The bank console's logic, natively and in headless Chromium: its driver over the real
//! protocol crate (the bank's side is `protocol::server` with real keys), its reducer, and its
//! exact display helpers.

mod common;

use common::{bank_key, NOW};

use atm_wasm::console::driver::{
    ConsoleBroken, ConsoleDriver, ConsoleEvent, ConsoleKind, ConsoleOp, ConsoleOutput,
};
use atm_wasm::console::format::{
    auth_line, chain_line, chart_bars, chart_total, clock, enrollment_link, money, CHART_H,
};
use atm_wasm::console::state::{
    ConsoleAction, ConsoleForm, ConsoleState, Link, LOGGED_OUT, LOST, SESSION_ENDED,
};
use atm_wasm::link::Driver as _;
use protocol::console::{
    AuditLine, ChainStatus, LiveSession, NewTerminalKey, Overview, TerminalInfo, TerminalRole,
    TotalCents, CHART_MINUTES,
};
use protocol::link::LinkPage;
use protocol::{
    auth_file::AuthFile, BankId, BankKey, BankPin, BankSession, Cents, Config, ErrorCode, Password,
    Psk, Request, Response, TerminalId, TerminalName, Username,
};
use rand_core::OsRng;

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

fn psk() -> Psk {
    Psk::from_bytes([5; 32])
}

fn pin() -> BankPin {
    bank_key().pin()
}

fn driver() -> ConsoleDriver {
    ConsoleDriver::new(
        TerminalId::new("t-console").unwrap(),
        pin(),
        Config::default(),
    )
}

fn handshake(
    d: &mut ConsoleDriver,
    bank_psk: &Psk,
) -> Result<(BankSession, ConsoleOutput), ConsoleBroken> {
    handshake_as(d, bank_psk, &bank_key())
}

/// A handshake with a bank answering with `bank_psk` and the static key `bank`.
fn handshake_as(
    d: &mut ConsoleDriver,
    bank_psk: &Psk,
    bank: &BankKey,
) -> Result<(BankSession, ConsoleOutput), ConsoleBroken> {
    common::handshake_as(d, "t-console", &psk(), bank_psk, bank)
}

fn login_op() -> ConsoleOp {
    ConsoleOp::Login {
        username: Username::new("ops").unwrap(),
        password: Password::new("operator password 1").unwrap(),
    }
}

fn welcome() -> Response {
    Response::OperatorWelcome {
        username: Username::new("ops").unwrap(),
    }
}

fn open(bank: &mut BankSession, frame: &str) -> Request {
    bank.open(frame.as_bytes(), NOW).unwrap()
}

fn reply(d: &mut ConsoleDriver, bank: &mut BankSession, response: &Response) -> ConsoleOutput {
    let frame = bank.seal(response, &mut OsRng, NOW).unwrap();
    d.receive(frame.as_bytes(), &mut OsRng, NOW).unwrap()
}

fn submit(d: &mut ConsoleDriver, op: ConsoleOp) -> ConsoleOutput {
    d.submit(op, &mut OsRng, NOW).expect("not busy").unwrap()
}

fn overview() -> Response {
    let mut per_minute = vec![0; CHART_MINUTES];
    per_minute[CHART_MINUTES - 1] = 2;
    Response::Overview(Box::new(Overview {
        now_ms: NOW,
        accounts: 1,
        deposits_cents: TotalCents(12_345),
        transactions_today: 2,
        per_minute,
        sessions_total: 1,
        sessions: vec![LiveSession {
            conn: 1,
            terminal: TerminalId::new("t-console").unwrap(),
            role: TerminalRole::Console,
            user: Some("ops".into()),
            since_ms: NOW,
            node: "node1".into(),
        }],
        chain: ChainStatus::Linked { entries: 3 },
        checkpoint_entries: Some(3),
        checkpoint_ms: Some(NOW - 2_000),
    }))
}

fn terminals() -> Response {
    Response::Terminals {
        total: 1,
        terminals: vec![TerminalInfo {
            id: TerminalId::new("t-lobby").unwrap(),
            name: "lobby".into(),
            role: TerminalRole::Atm,
            revoked: false,
            created_ms: NOW,
            max_deposit_cents: None,
            max_deposit_per_day_cents: None,
            deposited_today_cents: None,
        }],
    }
}

#[test]
fn handshake_login_and_console_requests_go_one_at_a_time_paired_in_order() {
    let mut d = driver();
    let (mut bank, out) = handshake(&mut d, &psk()).unwrap();
    assert_eq!(out.events, vec![ConsoleEvent::Connected]);
    assert_eq!(out.send.len(), 1, "only the ClientFinished");
    assert!(d.is_up() && !d.logged_in());

    let out = submit(&mut d, login_op());
    let Request::OperatorLogin { username, password } = open(&mut bank, &out.send[0]) else {
        panic!("not an operator login");
    };
    assert_eq!(
        (username.as_str(), password.expose()),
        ("ops", "operator password 1")
    );
    let first = reply(&mut d, &mut bank, &welcome());
    assert_eq!(
        first.events,
        vec![ConsoleEvent::Reply(ConsoleKind::Login, welcome())]
    );
    assert!(d.logged_in());

    // The welcome fetches fresh numbers at once, three requests: only the first is sent; each
    // answer releases the next.
    assert_eq!(first.send.len(), 1);
    assert_eq!(d.pending(), 3);
    assert!(
        d.submit(ConsoleOp::Audit, &mut OsRng, NOW).is_none(),
        "twin refused"
    );
    answer_refresh(&mut d, &mut bank, &first.send[0]);

    // Enroll and revoke carry their fields; a terminal added refreshes the numbers at once.
    let out = submit(
        &mut d,
        ConsoleOp::AddTerminal {
            name: TerminalName::new("lobby").unwrap(),
        },
    );
    let Request::AddTerminal { name, .. } = open(&mut bank, &out.send[0]) else {
        panic!("not add_terminal");
    };
    assert_eq!(name.as_str(), "lobby");
    let added = Response::TerminalAdded {
        terminal: TerminalId::new("t-lobby").unwrap(),
        name,
        key: NewTerminalKey(Psk::from_bytes([7; 32])),
    };
    let out = reply(&mut d, &mut bank, &added);
    assert_eq!(
        out.events,
        vec![ConsoleEvent::Reply(ConsoleKind::AddTerminal, added)]
    );
    answer_refresh(&mut d, &mut bank, &out.send[0]);
    let out = submit(
        &mut d,
        ConsoleOp::Revoke {
            terminal: TerminalId::new("t-lobby").unwrap(),
        },
    );
    let Request::RevokeTerminal { terminal } = open(&mut bank, &out.send[0]) else {
        panic!("not revoke_terminal");
    };
    assert_eq!(terminal.as_str(), "t-lobby");
}

/// Answers a refresh whose overview request is `first`: the audit and the terminals follow,
/// one at a time, and nothing after them.
fn answer_refresh(d: &mut ConsoleDriver, bank: &mut BankSession, first: &str) {
    assert!(matches!(open(bank, first), Request::ConsoleOverview {}));
    let out = reply(d, bank, &overview());
    assert_eq!(
        out.events,
        vec![ConsoleEvent::Reply(ConsoleKind::Overview, overview())]
    );
    assert_eq!(out.send.len(), 1);
    assert!(matches!(open(bank, &out.send[0]), Request::ConsoleAudit {}));
    let audit = Response::AuditEntries {
        total: 0,
        entries: vec![],
    };
    let out = reply(d, bank, &audit);
    assert_eq!(
        out.events,
        vec![ConsoleEvent::Reply(ConsoleKind::Audit, audit)]
    );
    assert!(matches!(
        open(bank, &out.send[0]),
        Request::ConsoleTerminals {}
    ));
    let out = reply(d, bank, &terminals());
    assert_eq!(
        out.events,
        vec![ConsoleEvent::Reply(ConsoleKind::Terminals, terminals())]
    );
    assert!(out.send.is_empty());
    assert_eq!(d.pending(), 0);
}

#[test]
fn requests_made_before_the_handshake_go_one_at_a_time_right_after_it() {
    let mut d = driver();
    assert!(submit(&mut d, login_op()).send.is_empty());
    assert!(submit(&mut d, ConsoleOp::Overview).send.is_empty());
    let (mut bank, out) = handshake(&mut d, &psk()).unwrap();
    assert_eq!(
        out.send.len(),
        2,
        "ClientFinished then the login, not the overview"
    );
    assert!(matches!(
        open(&mut bank, &out.send[1]),
        Request::OperatorLogin { .. }
    ));
    let out = reply(&mut d, &mut bank, &welcome());
    assert!(matches!(
        open(&mut bank, &out.send[0]),
        Request::ConsoleOverview {}
    ));
}

#[test]
fn a_disconnect_reports_everything_pending_lost_and_ends_the_login_without_replay() {
    let mut d = driver();
    let (mut bank, _) = handshake(&mut d, &psk()).unwrap();
    let out = submit(&mut d, login_op());
    let _ = open(&mut bank, &out.send[0]);
    // The welcome's refresh: the overview in flight, the audit and the terminals waiting.
    let _ = reply(&mut d, &mut bank, &welcome());
    let _ = submit(
        &mut d,
        ConsoleOp::AddTerminal {
            name: TerminalName::new("lobby").unwrap(),
        },
    );
    assert_eq!(
        d.disconnected(),
        vec![
            ConsoleEvent::Lost(ConsoleKind::Overview),
            ConsoleEvent::Lost(ConsoleKind::Audit),
            ConsoleEvent::Lost(ConsoleKind::Terminals),
            ConsoleEvent::Lost(ConsoleKind::AddTerminal),
            ConsoleEvent::SessionEnded,
        ]
    );
    assert!(!d.logged_in() && !d.is_up() && d.pending() == 0);
    // A new connection sends nothing by itself: no silent re-login.
    let (_, out) = handshake(&mut d, &psk()).unwrap();
    assert_eq!(out.send.len(), 1);
    // A login lost in flight is reported, not replayed.
    let _ = submit(&mut d, login_op());
    assert_eq!(
        d.disconnected(),
        vec![ConsoleEvent::Lost(ConsoleKind::Login)]
    );
}

#[test]
fn a_refused_login_and_a_logout_leave_no_login() {
    let mut d = driver();
    let (mut bank, _) = handshake(&mut d, &psk()).unwrap();
    let out = submit(&mut d, login_op());
    let _ = open(&mut bank, &out.send[0]);
    let refused = Response::Error {
        code: ErrorCode::AuthFailed,
    };
    assert_eq!(
        reply(&mut d, &mut bank, &refused).events,
        vec![ConsoleEvent::Reply(ConsoleKind::Login, refused)]
    );
    assert!(!d.logged_in());
    let out = submit(&mut d, login_op());
    let _ = open(&mut bank, &out.send[0]);
    let _ = reply(&mut d, &mut bank, &welcome());
    assert!(d.logged_in());
    // The welcome's refresh: the overview in flight, the audit and the terminals waiting.
    assert_eq!(d.pending(), 3);
    // Logout drops what was still waiting and ends the login at once.
    let _ = submit(&mut d, ConsoleOp::Logout);
    assert!(!d.logged_in());
    assert_eq!(d.pending(), 2, "the overview in flight, then the logout");
    assert!(d
        .disconnected()
        .iter()
        .all(|e| matches!(e, ConsoleEvent::Lost(_))));
}

#[test]
fn a_wrong_key_or_a_stray_frame_breaks_the_connection() {
    let mut d = driver();
    assert_eq!(
        handshake(&mut d, &Psk::from_bytes([1; 32])).err(),
        Some(ConsoleBroken::Handshake)
    );
    let _ = d.disconnected();
    let (mut bank, _) = handshake(&mut d, &psk()).unwrap();
    // An answer nobody asked for.
    let frame = bank.seal(&welcome(), &mut OsRng, NOW).unwrap();
    assert_eq!(
        d.receive(frame.as_bytes(), &mut OsRng, NOW),
        Err(ConsoleBroken::Unexpected)
    );
    let mut fresh = driver();
    assert_eq!(
        fresh.receive(b"{}", &mut OsRng, NOW),
        Err(ConsoleBroken::Unexpected)
    );
}

#[test]
fn a_bank_with_the_right_console_key_but_not_the_pinned_bank_key_is_refused() {
    let impostors = [
        BankKey::from_secret(BankId::new("bank-1").unwrap(), [0x25; 32]),
        BankKey::from_secret(BankId::new("bank-2").unwrap(), [0x24; 32]),
    ];
    for impostor in &impostors {
        let mut d = driver();
        // The operator's login waits for the handshake; it must never reach the impostor.
        assert!(submit(&mut d, login_op()).send.is_empty());
        assert_eq!(
            handshake_as(&mut d, &psk(), impostor).err(),
            Some(ConsoleBroken::Handshake)
        );
        assert!(!d.is_up() && !d.logged_in());
        assert_eq!(
            d.disconnected(),
            vec![ConsoleEvent::Lost(ConsoleKind::Login)],
            "reported lost, never sent"
        );
        let (_, out) = handshake(&mut d, &psk()).unwrap();
        assert_eq!(out.events, vec![ConsoleEvent::Connected]);
        assert_eq!(out.send.len(), 1, "nothing replayed");
    }
}

fn logged_in_state() -> ConsoleState {
    let mut s = ConsoleState::default();
    s.apply(ConsoleAction::Enrolled("t-console".into(), pin()));
    s.apply(ConsoleAction::Bank(ConsoleEvent::Connected));
    s.apply(ConsoleAction::Pending(ConsoleForm::Login, None));
    s.apply(ConsoleAction::Bank(ConsoleEvent::Reply(
        ConsoleKind::Login,
        welcome(),
    )));
    s
}

#[test]
fn reducer_login_then_dashboard_with_pending_flags() {
    let mut s = ConsoleState::default();
    s.apply(ConsoleAction::Notice("enroll again".into()));
    s.apply(ConsoleAction::Enrolled("t-console".into(), pin()));
    assert_eq!(s.link, Link::Connecting);
    assert_eq!(s.bank, Some(pin()), "the console keeps its bank's pin");
    assert_eq!(s.notice, None, "enrolling answers the notice");
    s.apply(ConsoleAction::Bank(ConsoleEvent::Connected));
    assert_eq!(s.link, Link::Up);
    // A customer's credentials: refused next to the login form, no dashboard.
    s.apply(ConsoleAction::Pending(ConsoleForm::Login, None));
    assert!(s.is_pending(ConsoleForm::Login));
    s.apply(ConsoleAction::Bank(ConsoleEvent::Reply(
        ConsoleKind::Login,
        Response::Error {
            code: ErrorCode::AuthFailed,
        },
    )));
    assert!(!s.is_pending(ConsoleForm::Login));
    assert_eq!(
        s.error(ConsoleForm::Login),
        Some(ErrorCode::AuthFailed.message())
    );
    assert!(s.operator.is_none());

    let mut s = logged_in_state();
    assert_eq!(s.operator.as_deref(), Some("ops"));
    assert!(s.errors.is_empty() && s.pending.is_empty());
    s.apply(ConsoleAction::Bank(ConsoleEvent::Reply(
        ConsoleKind::Overview,
        overview(),
    )));
    s.apply(ConsoleAction::Bank(ConsoleEvent::Reply(
        ConsoleKind::Terminals,
        terminals(),
    )));
    let o = s.overview.as_ref().unwrap();
    assert_eq!(
        (o.accounts, o.deposits_cents.0, o.sessions_total),
        (1, 12_345, 1)
    );
    assert_eq!(s.terminals.as_ref().unwrap().1.len(), 1);
    // Refresh failures are shown once, on the dashboard, and clear on the next overview.
    s.apply(ConsoleAction::Bank(ConsoleEvent::Reply(
        ConsoleKind::Audit,
        Response::Error {
            code: ErrorCode::Busy,
        },
    )));
    assert_eq!(
        s.error(ConsoleForm::Refresh),
        Some(ErrorCode::Busy.message())
    );
    s.apply(ConsoleAction::Bank(ConsoleEvent::Reply(
        ConsoleKind::Overview,
        overview(),
    )));
    assert_eq!(s.error(ConsoleForm::Refresh), None);
}

#[test]
fn reducer_shows_a_new_terminal_once_and_done_drops_its_key() {
    let mut s = logged_in_state();
    s.apply(ConsoleAction::Pending(ConsoleForm::AddTerminal, None));
    assert!(s.is_pending(ConsoleForm::AddTerminal));
    let key = Psk::from_bytes([7; 32]);
    s.apply(ConsoleAction::Bank(ConsoleEvent::Reply(
        ConsoleKind::AddTerminal,
        Response::TerminalAdded {
            terminal: TerminalId::new("t-lobby").unwrap(),
            name: TerminalName::new("lobby").unwrap(),
            key: NewTerminalKey(key.clone()),
        },
    )));
    assert!(!s.is_pending(ConsoleForm::AddTerminal));
    let new = s.new_terminal.as_ref().expect("shown");
    assert_eq!(new.terminal.as_str(), "t-lobby");
    assert!(new.key == key);
    assert!(
        !format!("{s:?}").contains(key.to_hex().as_str()),
        "key in Debug"
    );
    // Refreshes keep it; Done drops it.
    s.apply(ConsoleAction::Bank(ConsoleEvent::Reply(
        ConsoleKind::Terminals,
        terminals(),
    )));
    assert!(s.new_terminal.is_some());
    s.apply(ConsoleAction::HideNewTerminal);
    assert!(s.new_terminal.is_none());
}

#[test]
fn reducer_places_errors_next_to_their_cause_and_confirms_revokes() {
    let mut s = logged_in_state();
    s.apply(ConsoleAction::Bank(ConsoleEvent::Reply(
        ConsoleKind::Terminals,
        terminals(),
    )));
    s.apply(ConsoleAction::Pending(ConsoleForm::AddTerminal, None));
    s.apply(ConsoleAction::Bank(ConsoleEvent::Reply(
        ConsoleKind::AddTerminal,
        Response::Error {
            code: ErrorCode::NotAllowed,
        },
    )));
    assert_eq!(
        s.error(ConsoleForm::AddTerminal),
        Some(ErrorCode::NotAllowed.message())
    );
    assert_eq!(s.error(ConsoleForm::Revoke), None);

    s.apply(ConsoleAction::AskRevoke("t-lobby".into()));
    assert_eq!(s.confirm_revoke.as_deref(), Some("t-lobby"));
    s.apply(ConsoleAction::CancelRevoke);
    assert_eq!(s.confirm_revoke, None);
    s.apply(ConsoleAction::AskRevoke("t-lobby".into()));
    s.apply(ConsoleAction::Pending(
        ConsoleForm::Revoke,
        Some("t-lobby".into()),
    ));
    assert_eq!(
        (s.confirm_revoke.as_deref(), s.revoking.as_deref()),
        (None, Some("t-lobby"))
    );
    s.apply(ConsoleAction::Bank(ConsoleEvent::Lost(ConsoleKind::Revoke)));
    assert_eq!(s.error(ConsoleForm::Revoke), Some(LOST));
    assert_eq!(s.revoking, None);
    s.apply(ConsoleAction::Pending(
        ConsoleForm::Revoke,
        Some("t-lobby".into()),
    ));
    assert_eq!(s.error(ConsoleForm::Revoke), None);
    s.apply(ConsoleAction::Bank(ConsoleEvent::Reply(
        ConsoleKind::Revoke,
        Response::TerminalRevoked {
            terminal: TerminalId::new("t-lobby").unwrap(),
        },
    )));
    assert!(s.terminals.as_ref().unwrap().1[0].revoked);
    assert!(!s.is_pending(ConsoleForm::Revoke));
}

#[test]
fn reducer_logout_and_a_dropped_session_go_back_to_the_login_with_a_notice() {
    let mut s = logged_in_state();
    s.apply(ConsoleAction::Bank(ConsoleEvent::Reply(
        ConsoleKind::Overview,
        overview(),
    )));
    s.apply(ConsoleAction::Bank(ConsoleEvent::Reply(
        ConsoleKind::AddTerminal,
        Response::TerminalAdded {
            terminal: TerminalId::new("t-lobby").unwrap(),
            name: TerminalName::new("lobby").unwrap(),
            key: NewTerminalKey(Psk::from_bytes([7; 32])),
        },
    )));
    s.apply(ConsoleAction::Pending(ConsoleForm::Logout, None));
    s.apply(ConsoleAction::Bank(ConsoleEvent::Reply(
        ConsoleKind::Logout,
        Response::LoggedOut {},
    )));
    assert!(s.operator.is_none() && s.overview.is_none() && s.new_terminal.is_none());
    assert!(s.pending.is_empty());
    assert_eq!(s.notice.as_deref(), Some(LOGGED_OUT));

    let mut s = logged_in_state();
    s.apply(ConsoleAction::Bank(ConsoleEvent::Lost(
        ConsoleKind::Overview,
    )));
    assert_eq!(
        s.error(ConsoleForm::Refresh),
        None,
        "a lost refresh is not an error"
    );
    s.apply(ConsoleAction::Bank(ConsoleEvent::SessionEnded));
    assert!(s.operator.is_none());
    assert_eq!(s.notice.as_deref(), Some(SESSION_ENDED));
    s.apply(ConsoleAction::Forgotten);
    assert_eq!(s, ConsoleState::default());
    assert_eq!(s.bank, None, "forgetting drops the pin too");
}

#[test]
fn money_is_exact_with_thousands_separators() {
    assert_eq!(money(0), "$0.00");
    assert_eq!(money(5), "$0.05");
    assert_eq!(money(12_345), "$123.45");
    assert_eq!(money(123_450), "$1,234.50");
    assert_eq!(money(100_000_000), "$1,000,000.00");
    assert_eq!(
        money(u128::MAX),
        "$3,402,823,669,209,384,634,633,746,074,317,682,114.55"
    );
    assert_eq!(
        money(u128::from(Cents(u64::MAX).0)),
        "$184,467,440,737,095,516.15"
    );
}

#[test]
fn clock_chart_chain_and_one_time_texts() {
    // 2023-11-14 22:13:20 UTC.
    assert_eq!(clock(NOW, 0), "22:13:20");
    assert_eq!(clock(NOW, 120), "00:13:20");
    assert_eq!(clock(NOW, -600), "12:13:20");
    assert_eq!(clock(0, -60), "23:00:00");

    let mut per_minute = vec![0u32; CHART_MINUTES];
    per_minute[0] = 1;
    per_minute[59] = 40;
    let bars = chart_bars(&per_minute);
    assert_eq!(bars.len(), CHART_MINUTES);
    assert_eq!(bars[59].height, CHART_H);
    assert_eq!(bars[59].count, 40);
    assert!(bars[0].height >= 1, "a busy minute never vanishes");
    assert_eq!(bars[1].height, 0);
    assert!(bars.windows(2).all(|w| w[0].x + w[0].width <= w[1].x));
    assert_eq!(chart_total(&per_minute), 41);
    assert!(chart_bars(&[0; 60]).iter().all(|b| b.height == 0));

    assert_eq!(
        chain_line(&ChainStatus::Linked { entries: 42 }),
        ("linked", "Chain intact: 42 entries linked".to_owned())
    );
    assert_eq!(
        chain_line(&ChainStatus::Broken {
            entry: 7,
            problem: "not chained".into()
        }),
        ("broken", "Broken at entry 7: not chained".to_owned())
    );

    let id = TerminalId::new("t-0123456789ab").unwrap();
    let key = Psk::from_bytes([0xab; 32]);
    let hex = "ab".repeat(32);
    // The console gives new terminals the pin of the bank it was enrolled with.
    let bank = pin();
    let bank_text = format!("bank-1:{}", bank.public_hex());
    assert_eq!(bank.to_text(), bank_text);
    assert_eq!(
        enrollment_link("http://127.0.0.1:8765", &id, &key, &bank).as_str(),
        format!("http://127.0.0.1:8765/#terminal=t-0123456789ab&key={hex}&bank={bank_text}")
    );
    assert_eq!(
        enrollment_link("http://h:1/", &id, &key, &bank).as_str(),
        protocol::link::format("http://h:1", LinkPage::Atm, &id, &key, &bank).as_str()
    );
    let auth = auth_line(&id, &key, &bank);
    assert_eq!(
        auth.as_str(),
        format!(
            "{{\"terminal_id\":\"t-0123456789ab\",\"psk\":\"{hex}\",\"bank\":\"{bank_text}\"}}"
        )
    );
    // The auth line reads back as a native ATM's auth file, pin included.
    let file = AuthFile::parse(&auth).ok().unwrap();
    assert!(file.terminal_id == id && file.psk == key && file.bank == bank);
    // The link parses back as the ATM would read it.
    let link = enrollment_link("http://h:1/", &id, &key, &bank);
    let e = atm_wasm::link::enroll::Enrollment::from_link(&link)
        .ok()
        .unwrap();
    assert!(e.terminal == id && e.psk == key && e.bank == bank);
}

#[test]
fn an_audit_line_with_money_formats_exactly() {
    let line = AuditLine {
        seq: 3,
        time_ms: NOW,
        action: "deposit".into(),
        user: Some("carol".into()),
        account: None,
        amount_cents: Some(Cents(12_345)),
        terminal: None,
        detail: None,
    };
    assert_eq!(money(u128::from(line.amount_cents.unwrap().0)), "$123.45");
}

#[test]
fn the_refresh_asks_only_for_a_logged_in_operator_and_not_twice() {
    let mut d = driver();
    assert!(d.refresh().is_empty(), "not connected");
    let (mut bank, _) = handshake(&mut d, &psk()).unwrap();
    assert!(d.refresh().is_empty(), "no operator");
    let out = submit(&mut d, login_op());
    let _ = open(&mut bank, &out.send[0]);
    let _ = reply(&mut d, &mut bank, &welcome());
    assert!(d.refresh().is_empty(), "the welcome's refresh is under way");
}

#[test]
fn the_answer_to_a_logout_ends_the_connection_and_a_logout_offline_answers_itself() {
    let logout = |response| ConsoleEvent::Reply(ConsoleKind::Logout, response);
    assert!(ConsoleDriver::ends_connection(&logout(
        Response::LoggedOut {}
    )));
    assert!(ConsoleDriver::ends_connection(&logout(Response::Error {
        code: ErrorCode::NotLoggedIn
    })));
    assert!(!ConsoleDriver::ends_connection(&ConsoleEvent::Reply(
        ConsoleKind::Login,
        welcome()
    )));
    let mut d = driver();
    assert_eq!(d.logged_out(true), None, "the bank was asked");
    assert_eq!(d.logged_out(false), Some(logout(Response::LoggedOut {})));
    assert!(!d.logged_in() && d.pending() == 0);
}

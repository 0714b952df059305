//! A terminal's deposit ceilings against a real bank: per deposit and per UTC day (an opening
//! balance counts, a retried txid is answered and not counted again, a withdrawal frees
//! nothing, the next UTC day on the injected clock starts afresh), two sessions of one terminal
//! together, the refusal audited and logged with its detail, the defaults, and `bank-server
//! terminal add --max-deposit-per-day` on the real binary.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use atm_client::{load_auth_file, AuthFile, Client};
use bank_server::ledger::{DepositCeilings, DAY_MS};
use bank_server::Config;
use common::process::{BankProcess, Paths};
use common::*;
use protocol::{CardSecret, Cents, ErrorCode, Request, Response, TxId};
use rand_core::OsRng;

/// Enrolls an ATM under `ceilings` in the running bank and returns its credentials.
fn enroll(bank: &TestBank, name: &str, ceilings: DepositCeilings) -> AuthFile {
    let terminal = bank_server::admin::add_terminal_with(bank.bank.ledger(), name, ceilings)
        .expect("terminal added");
    bank.creds(&terminal.id, &terminal.psk)
}

/// A session on `creds` registered as `name` (logged in).
async fn registered_on(bank: &TestBank, creds: &AuthFile, name: &str) -> Client {
    let mut client = Client::connect(&bank.addr, creds).await.unwrap();
    let reply = client
        .call(&register_req(name, "correct horse"))
        .await
        .unwrap();
    assert!(matches!(reply, Response::Welcome { .. }), "{reply:?}");
    client
}

fn deposit(txid: TxId, cents: u64) -> Request {
    Request::Deposit {
        txid,
        amount_cents: Cents(cents),
    }
}

fn open_req(name: &str, cents: u64) -> Request {
    Request::OpenCardAccount {
        username: username(name),
        initial_cents: Cents(cents),
        txid: txid(),
        card: CardSecret::random(&mut OsRng),
    }
}

fn deposited(reply: &Response) -> u64 {
    match reply {
        Response::Deposited { balance_cents, .. } => balance_cents.0,
        other => panic!("expected deposited, got {other:?}"),
    }
}

/// The audit events the bank appended with `action`, oldest first: (amount, detail).
fn audited(bank: &TestBank, action: &str) -> Vec<(Option<u64>, Option<String>)> {
    let recent = bank.bank.ledger().recent_audit(256).unwrap();
    let mut found: Vec<_> = recent
        .entries
        .into_iter()
        .filter(|(_, e)| e.action == action)
        .map(|(_, e)| (e.amount_cents, e.detail))
        .collect();
    found.reverse();
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminal_over_its_daily_ceiling_is_refused_until_the_next_utc_day() {
    let dir = temp();
    // 10:00 UTC on some day.
    let day_start = atm_client::now_ms() / DAY_MS * DAY_MS;
    let now = Arc::new(AtomicU64::new(day_start + 10 * 3_600_000));
    let mut config = config(dir.path());
    config.clock = bank_server::Clock::manual(now.clone());
    let bank = TestBank::start(config).await;
    let atm = enroll(
        &bank,
        "lobby",
        DepositCeilings {
            per_deposit: None,
            per_day: Some(Cents(10_000)),
        },
    );
    let mut alice = registered_on(&bank, &atm, "alice").await;

    let first = deposit(txid(), 6_000);
    assert_eq!(deposited(&alice.call(&first).await.unwrap()), 6_000);
    // The same txid again (an ATM retrying a lost answer): answered, not counted again.
    assert_eq!(deposited(&alice.call(&first).await.unwrap()), 6_000);
    // A withdrawal frees nothing.
    let reply = alice.call(&withdraw_req(6_000)).await.unwrap();
    assert!(matches!(reply, Response::Withdrawn { .. }), "{reply:?}");
    // 60.00 deposited today: 40.01 more would cross 100.00.
    assert_eq!(
        alice.call(&deposit(txid(), 4_001)).await.unwrap(),
        error(ErrorCode::DepositLimit)
    );
    assert_eq!(balance(&mut alice).await, 0, "a refusal changes nothing");
    // An opening balance is a deposit too, on another session of the same terminal.
    let mut anon = Client::connect(&bank.addr, &atm).await.unwrap();
    assert_eq!(
        anon.call(&open_req("bob", 4_001)).await.unwrap(),
        error(ErrorCode::DepositLimit)
    );
    // Up to the ceiling exactly, then not a cent more.
    assert_eq!(
        deposited(&alice.call(&deposit(txid(), 4_000)).await.unwrap()),
        4_000
    );
    assert_eq!(
        alice.call(&deposit(txid(), 1)).await.unwrap(),
        error(ErrorCode::DepositLimit)
    );
    // Another terminal (here the first, without ceilings) is not held to this one's.
    let mut elsewhere = logged_in(&bank, "alice").await;
    assert_eq!(
        deposited(&elsewhere.call(&deposit(txid(), 1)).await.unwrap()),
        4_001
    );

    // The refusals are audited with the amount and which ceiling, the terminal told only the
    // code; no summary line was printed for them.
    let declined = audited(&bank, "deposit_declined");
    assert_eq!(
        declined,
        vec![
            (
                Some(4_001),
                Some(
                    "deposit_limit: over the terminal's ceiling of 100.00 per day \
                     (60.00 deposited today)"
                        .into()
                )
            ),
            (
                Some(1),
                Some(
                    "deposit_limit: over the terminal's ceiling of 100.00 per day \
                     (100.00 deposited today)"
                        .into()
                )
            ),
        ]
    );
    let opening = audited(&bank, "open_account_declined");
    assert_eq!(opening.len(), 1);
    assert!(
        opening[0]
            .1
            .as_deref()
            .unwrap()
            .starts_with("deposit_limit: "),
        "{opening:?}"
    );
    assert!(bank.bank.ledger().user(&username("bob")).unwrap().is_none());
    let deposits = bank
        .lines()
        .iter()
        .filter(|l| l.contains("\"deposit\""))
        .count();
    assert_eq!(deposits, 3, "{:?}", bank.lines());

    // 23:59:59.999 UTC is still today; 00:00 UTC the next day starts afresh.
    now.store(day_start + DAY_MS - 1, Ordering::SeqCst);
    assert_eq!(
        alice.call(&deposit(txid(), 1)).await.unwrap(),
        error(ErrorCode::DepositLimit)
    );
    now.store(day_start + DAY_MS, Ordering::SeqCst);
    assert_eq!(
        deposited(&alice.call(&deposit(txid(), 10_000)).await.unwrap()),
        14_001
    );
    let reply = anon.call(&open_req("bob", 1_000)).await.unwrap();
    assert_eq!(
        reply,
        error(ErrorCode::DepositLimit),
        "the new day is full already"
    );
    bank.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deposit_or_opening_above_the_ceiling_per_deposit_is_refused() {
    let dir = temp();
    let bank = TestBank::in_dir(dir.path()).await;
    let atm = enroll(
        &bank,
        "kiosk",
        DepositCeilings {
            per_deposit: Some(Cents(2_000)),
            per_day: None,
        },
    );
    let mut anon = Client::connect(&bank.addr, &atm).await.unwrap();
    assert_eq!(
        anon.call(&open_req("carol", 2_001)).await.unwrap(),
        error(ErrorCode::DepositLimit)
    );
    let reply = anon.call(&open_req("carol", 2_000)).await.unwrap();
    assert!(matches!(reply, Response::AccountOpened { .. }), "{reply:?}");
    assert_eq!(
        anon.call(&deposit(txid(), 2_001)).await.unwrap(),
        error(ErrorCode::DepositLimit)
    );
    // Without a per-day ceiling, the per-deposit one is the only bound.
    for _ in 0..3 {
        anon.call(&deposit(txid(), 2_000)).await.unwrap();
    }
    assert_eq!(balance(&mut anon).await, 8_000);
    // The bank's own maximum still answers first for what no terminal may take.
    assert_eq!(
        anon.call(&deposit(txid(), protocol::money::BIBIFI_MAX.0 + 1))
            .await
            .unwrap(),
        error(ErrorCode::AmountInvalid)
    );
    assert_eq!(
        audited(&bank, "deposit_declined")
            .into_iter()
            .map(|(amount, detail)| (amount, detail.unwrap()))
            .filter(|(_, detail)| detail.starts_with("deposit_limit"))
            .collect::<Vec<_>>(),
        vec![(
            Some(2_001),
            "deposit_limit: over the terminal's ceiling of 20.00 per deposit".to_owned()
        )]
    );
    bank.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sessions_of_one_terminal_cannot_together_cross_its_day() {
    const CEILING: u64 = 5_000;
    const EACH: usize = 40;
    let dir = temp();
    let bank = TestBank::in_dir(dir.path()).await;
    let atm = enroll(
        &bank,
        "busy",
        DepositCeilings {
            per_deposit: None,
            per_day: Some(Cents(CEILING)),
        },
    );
    let mut sessions = vec![
        registered_on(&bank, &atm, "dora").await,
        registered_on(&bank, &atm, "eve").await,
    ];
    // Each session alone would deposit 80.00 in 2.00 steps: 160.00 asked against 50.00.
    let barrier = Arc::new(tokio::sync::Barrier::new(sessions.len()));
    let tasks: Vec<_> = sessions
        .drain(..)
        .map(|mut client| {
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                let (mut accepted, mut refused) = (0u64, 0u64);
                for _ in 0..EACH {
                    match client.call(&deposit(txid(), 200)).await.unwrap() {
                        Response::Deposited { amount_cents, .. } => accepted += amount_cents.0,
                        Response::Error {
                            code: ErrorCode::DepositLimit,
                        } => refused += 1,
                        other => panic!("unexpected reply {other:?}"),
                    }
                }
                (accepted, refused, balance(&mut client).await)
            })
        })
        .collect();
    let mut accepted = 0;
    let mut held = 0;
    for task in tasks {
        let (a, r, b) = task.await.unwrap();
        assert!(
            r > 0,
            "each session asked more than the whole day: {a} accepted"
        );
        accepted += a;
        held += b;
    }
    assert_eq!(accepted, CEILING, "exactly the ceiling, together");
    assert_eq!(held, CEILING);
    let terminal = atm.terminal_id.clone();
    let today = bank
        .bank
        .ledger()
        .deposited_today(&terminal, atm_client::now_ms())
        .unwrap();
    assert_eq!(today, Cents(CEILING));
    bank.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bank_server_terminal_gets_2000_per_deposit_and_10000_per_day_unless_told() {
    let dir = temp();
    let defaults = Config::new(
        dir.path().join("data"),
        dir.path().join("bank.auth"),
        dir.path().join("audit.key"),
    );
    assert_eq!(defaults.first_terminal, DepositCeilings::DEFAULT);
    assert_eq!(
        DepositCeilings::DEFAULT,
        DepositCeilings {
            per_deposit: Some(Cents(200_000)),
            per_day: Some(Cents(1_000_000)),
        }
    );
    let mut config = config(dir.path());
    config.first_terminal = defaults.first_terminal;
    let bank = TestBank::start(config).await;
    let first = bank
        .bank
        .ledger()
        .terminal(&bank.auth.terminal_id)
        .unwrap()
        .unwrap();
    assert_eq!(first.ceilings, DepositCeilings::DEFAULT);
    let added = bank_server::admin::add_terminal(bank.bank.ledger(), "plain").unwrap();
    assert_eq!(added.ceilings, DepositCeilings::DEFAULT);
    let mut alice = registered(&bank, "alice").await;
    assert_eq!(
        alice.call(&deposit(txid(), 200_001)).await.unwrap(),
        error(ErrorCode::DepositLimit)
    );
    for _ in 0..5 {
        alice.call(&deposit(txid(), 200_000)).await.unwrap();
    }
    assert_eq!(
        alice.call(&deposit(txid(), 1)).await.unwrap(),
        error(ErrorCode::DepositLimit)
    );
    assert_eq!(balance(&mut alice).await, 1_000_000);
    bank.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_enrolls_with_ceilings_and_lists_them() {
    use protocol::console::TerminalInfo;
    use protocol::TerminalName;

    let dir = temp();
    let bank = TestBank::in_dir(dir.path()).await;
    let console = bank_server::admin::add_operator(
        bank.bank.ledger(),
        &TEST_ARGON2,
        "ops",
        "correct horse battery",
    )
    .unwrap();
    let mut ops = Client::connect(&bank.addr, &bank.creds(&console.id, &console.psk))
        .await
        .unwrap();
    let login = Request::OperatorLogin {
        username: username("ops"),
        password: protocol::Password::new("correct horse battery").unwrap(),
    };
    assert!(matches!(
        ops.call(&login).await.unwrap(),
        Response::OperatorWelcome { .. }
    ));
    let add = |per_deposit, per_day| Request::AddTerminal {
        name: TerminalName::new("night").unwrap(),
        max_deposit_cents: per_deposit,
        max_deposit_per_day_cents: per_day,
    };
    assert_eq!(
        ops.call(&add(Some(Cents::ZERO), None)).await.unwrap(),
        error(ErrorCode::BadRequest)
    );
    let Response::TerminalAdded { terminal, key, .. } =
        ops.call(&add(None, Some(Cents(3_000)))).await.unwrap()
    else {
        panic!("expected terminal_added");
    };
    let night = bank.creds(&terminal, &key.0);
    let mut frank = registered_on(&bank, &night, "frank").await;
    frank.call(&deposit(txid(), 2_500)).await.unwrap();
    let list: Vec<TerminalInfo> = match ops.call(&Request::ConsoleTerminals {}).await.unwrap() {
        Response::Terminals { terminals, .. } => terminals,
        other => panic!("expected terminals, got {other:?}"),
    };
    let row = list.iter().find(|t| t.id == terminal).unwrap();
    assert_eq!(
        (
            row.max_deposit_cents,
            row.max_deposit_per_day_cents,
            row.deposited_today_cents
        ),
        (Some(Cents(200_000)), Some(Cents(3_000)), Some(Cents(2_500))),
        "the default per deposit, the asked per day, and the day so far"
    );
    let first = list.iter().find(|t| t.id == bank.auth.terminal_id).unwrap();
    assert_eq!(
        (
            first.max_deposit_cents,
            first.max_deposit_per_day_cents,
            first.deposited_today_cents
        ),
        (None, None, None),
        "no ceilings: nothing shown"
    );
    let added = audited(&bank, "terminal_added");
    assert!(
        added
            .last()
            .unwrap()
            .1
            .as_deref()
            .unwrap()
            .ends_with("max deposit 2000.00, max per day 30.00"),
        "{added:?}"
    );
    bank.stop().await;
}

/// `bank-server terminal add --max-deposit-per-day 50.00` through the running binary's admin
/// socket: 50 deposits of 1.00 are taken, the 51st refused (exit code and log as the atm and
/// an operator see them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminal_add_max_deposit_per_day_on_the_real_binary() {
    let dir = temp();
    let paths = Paths::new(dir.path());
    let bank = BankProcess::start(&paths);
    let out = dir.path().join("fifty.auth");
    let added = paths.command(&[
        "terminal",
        "add",
        "--name",
        "fifty",
        "--max-deposit-per-day",
        "50.00",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(added.status.success(), "{added:?}");
    let bad = paths.command(&["terminal", "add", "--max-deposit", "0.00"]);
    assert_eq!(bad.status.code(), Some(2), "a zero ceiling is refused");
    let creds = load_auth_file(&out).unwrap();
    let mut client = Client::connect(&bank.addr, &creds).await.unwrap();
    let reply = client
        .call(&register_req("gina", "correct horse"))
        .await
        .unwrap();
    assert!(matches!(reply, Response::Welcome { .. }), "{reply:?}");
    for unit in 1..=50 {
        let reply = client.call(&deposit(txid(), 100)).await.unwrap();
        assert_eq!(deposited(&reply), unit * 100);
    }
    assert_eq!(
        client.call(&deposit(txid(), 100)).await.unwrap(),
        error(ErrorCode::DepositLimit),
        "the 51st unit"
    );
    assert_eq!(balance(&mut client).await, 5_000);
    let list = String::from_utf8(paths.command(&["terminal", "list"]).stdout).unwrap();
    let row = list
        .lines()
        .find(|l| l.starts_with(creds.terminal_id.as_str()))
        .unwrap();
    assert_eq!(
        row,
        format!(
            "{}\tactive\tatm\tmax-deposit=2000.00\tmax-per-day=50.00\ttoday=50.00\tfifty",
            creds.terminal_id
        )
    );
    client.close().await.unwrap();
    bank.signal("TERM");
    let stderr = bank.stderr.clone();
    assert!(bank.wait());
    let log = stderr.lock().unwrap().join("\n");
    assert!(
        log.contains("deposit refused: over the terminal's ceiling")
            && log.contains("ceiling of 50.00 per day (50.00 deposited today)"),
        "{log}"
    );
    let show = String::from_utf8(paths.command(&["audit", "show"]).stdout).unwrap();
    assert!(show.contains("deposit_declined"), "{show}");
}

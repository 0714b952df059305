//! The bank console's side of the bank: operators log in only from console terminals, see
//! totals, the chart, live sessions, the audit chain and entries, and enroll and revoke
//! terminals; every operator action is audited. Against a real bank on port 0.

mod common;

use atm_client::{Client, ClientError};
use common::*;
use protocol::console::{ChainStatus, TerminalInfo};
use protocol::{Cents, ErrorCode, Password, Request, Response, TerminalName, TerminalRole};

const OP_PASSWORD: &str = "operator password 1";

fn operator_login(name: &str, password: &str) -> Request {
    Request::OperatorLogin {
        username: username(name),
        password: Password::new(password).unwrap(),
    }
}

/// Adds operator `name` and returns a console session logged in as them.
async fn console(bank: &TestBank, name: &str) -> Client {
    let terminal =
        bank_server::admin::add_operator(bank.bank.ledger(), &TEST_ARGON2, name, OP_PASSWORD)
            .unwrap();
    assert_eq!(terminal.role, TerminalRole::Console);
    let mut client = Client::connect(&bank.addr, &bank.creds(&terminal.id, &terminal.psk))
        .await
        .unwrap();
    let reply = client
        .call(&operator_login(name, OP_PASSWORD))
        .await
        .unwrap();
    assert_eq!(
        reply,
        Response::OperatorWelcome {
            username: username(name)
        }
    );
    client
}

async fn audit_actions(client: &mut Client) -> Vec<(String, Option<String>, Option<Cents>)> {
    match client.call(&Request::ConsoleAudit {}).await.unwrap() {
        Response::AuditEntries { entries, total } => {
            assert!(entries.len() as u64 <= total);
            // Newest first, consecutive positions.
            assert!(entries.windows(2).all(|w| w[0].seq == w[1].seq + 1));
            entries
                .into_iter()
                .map(|e| (e.action, e.user, e.amount_cents))
                .collect()
        }
        other => panic!("expected audit entries, got {other:?}"),
    }
}

async fn terminal_list(client: &mut Client) -> Vec<TerminalInfo> {
    match client.call(&Request::ConsoleTerminals {}).await.unwrap() {
        Response::Terminals { total, terminals } => {
            assert_eq!(total, terminals.len() as u64);
            terminals
        }
        other => panic!("expected terminals, got {other:?}"),
    }
}

#[tokio::test]
async fn an_operator_sees_the_bank_and_manages_terminals() {
    let dir = temp();
    let bank = TestBank::in_dir(dir.path()).await;
    let mut alice = registered(&bank, "alice").await;
    alice.call(&deposit_req(12_345)).await.unwrap();
    alice.call(&withdraw_req(345)).await.unwrap();
    let mut ops = console(&bank, "ops").await;

    let Response::Overview(overview) = ops.call(&Request::ConsoleOverview {}).await.unwrap() else {
        panic!("expected an overview");
    };
    let protocol::console::Overview {
        accounts,
        deposits_cents,
        transactions_today,
        per_minute,
        sessions_total,
        sessions,
        chain,
        now_ms,
        checkpoint_entries,
        checkpoint_ms,
    } = *overview;
    assert_eq!(accounts, 1, "operators are not accounts");
    assert_eq!(deposits_cents.0, 12_000);
    assert_eq!(transactions_today, 2);
    assert_eq!(per_minute.len(), 60);
    assert_eq!(per_minute.iter().sum::<u32>(), 2);
    let clock = atm_client::now_ms();
    assert!(
        now_ms.abs_diff(clock) < 60_000,
        "the bank's clock: {now_ms} vs {clock}"
    );
    assert_eq!(sessions_total, 2);
    // A bank of one node names itself: by default its data directory's name.
    assert!(sessions.iter().all(|s| s.node == "data"), "{sessions:?}");
    let listed: Vec<_> = sessions
        .iter()
        .map(|s| (s.role, s.user.clone().unwrap_or_default()))
        .collect();
    assert!(
        listed.contains(&(TerminalRole::Atm, "alice".into())),
        "{listed:?}"
    );
    assert!(
        listed.contains(&(TerminalRole::Console, "ops".into())),
        "{listed:?}"
    );
    let ChainStatus::Linked { entries } = chain else {
        panic!("chain broken: {chain:?}");
    };
    // Everything acknowledged so far is checkpointed (the console's own login included).
    assert_eq!(checkpoint_entries, Some(entries), "the latest checkpoint");
    assert!(checkpoint_ms.is_some_and(|ms| ms.abs_diff(clock) < 60_000));
    // Every entry so far is linked (the overview itself writes none).
    let Response::AuditEntries { total, .. } = ops.call(&Request::ConsoleAudit {}).await.unwrap()
    else {
        panic!("expected audit entries");
    };
    assert_eq!(entries, total);

    let actions = audit_actions(&mut ops).await;
    assert_eq!(actions[0].0, "operator_login");
    let deposit = actions
        .iter()
        .find(|a| a.0 == "deposit")
        .expect("deposit audited");
    assert_eq!(
        (deposit.1.as_deref(), deposit.2),
        (Some("alice"), Some(Cents(12_345)))
    );

    // Enroll a terminal: its key appears once, it works, then it is revoked and refused.
    let Response::TerminalAdded {
        terminal,
        name,
        key,
    } = ops
        .call(&Request::AddTerminal {
            name: TerminalName::new("lobby").unwrap(),
            max_deposit_cents: None,
            max_deposit_per_day_cents: None,
        })
        .await
        .unwrap()
    else {
        panic!("expected terminal_added");
    };
    assert_eq!(name.as_str(), "lobby");
    let mut lobby = Client::connect(&bank.addr, &bank.creds(&terminal, &key.0))
        .await
        .unwrap();
    assert_eq!(
        lobby.call(&Request::ConsoleOverview {}).await.unwrap(),
        error(ErrorCode::NotAllowed),
        "an ATM terminal cannot ask for console views"
    );
    let listed = terminal_list(&mut ops).await;
    let row = listed.iter().find(|t| t.id == terminal).unwrap();
    assert!(!row.revoked && row.role == TerminalRole::Atm && row.name == "lobby");
    assert_eq!(
        (
            row.max_deposit_cents,
            row.max_deposit_per_day_cents,
            row.deposited_today_cents
        ),
        (
            Some(Cents(200_000)),
            Some(Cents(1_000_000)),
            Some(Cents::ZERO)
        ),
        "enrolled with the default ceilings"
    );
    assert_eq!(
        ops.call(&Request::RevokeTerminal {
            terminal: terminal.clone()
        })
        .await
        .unwrap(),
        Response::TerminalRevoked {
            terminal: terminal.clone()
        }
    );
    assert!(
        matches!(
            Client::connect(&bank.addr, &bank.creds(&terminal, &key.0)).await,
            Err(ClientError::Protocol(_))
        ),
        "a revoked terminal's handshake fails"
    );
    assert!(
        matches!(
            lobby.call(&Request::Balance {}).await,
            Err(ClientError::Closed)
        ),
        "its open session ends at its next request"
    );
    assert_eq!(lobby.conn().close_frame(), Some((1008, "")));
    assert!(terminal_list(&mut ops)
        .await
        .iter()
        .any(|t| t.id == terminal && t.revoked));
    let actions = audit_actions(&mut ops).await;
    let names: Vec<_> = actions.iter().map(|a| a.0.as_str()).collect();
    assert_eq!(
        &names[..2],
        ["terminal_revoked", "terminal_added"],
        "{names:?}"
    );
    assert!(actions[..2].iter().all(|a| a.1.as_deref() == Some("ops")));

    // Unknown terminals and the console's own are refused without a change.
    let unknown = protocol::TerminalId::new("t-000000000000").unwrap();
    assert_eq!(
        ops.call(&Request::RevokeTerminal { terminal: unknown })
            .await
            .unwrap(),
        error(ErrorCode::BadRequest)
    );

    assert_eq!(
        ops.call(&Request::Logout {}).await.unwrap(),
        Response::LoggedOut {}
    );
    bank.stop().await;
    let ledger =
        bank_server::store::open_existing(&Default::default(), &data_dir(dir.path())).unwrap();
    // The totals are kept in storage with each change and read back when the ledger opens.
    let now = atm_client::now_ms();
    let totals = bank_server::Ledger::totals(&*ledger, now, now - now % 86_400_000, 60).unwrap();
    assert_eq!(
        (totals.accounts, totals.deposits_cents),
        (1, 12_000),
        "after a restart"
    );
    assert_eq!(totals.per_minute.iter().sum::<u32>(), 2);
    let key = bank_server::admin::read_audit_keys(&dir.path().join("audit.key")).unwrap();
    let events = bank_server::admin::verify_audit(&*ledger, &key).unwrap();
    let last = events.last().unwrap();
    assert_eq!(
        (last.action.as_str(), last.user.as_deref()),
        ("operator_logout", Some("ops"))
    );
}

#[tokio::test]
async fn only_operators_on_console_terminals_open_the_console() {
    let dir = temp();
    let bank = TestBank::in_dir(dir.path()).await;
    drop(registered(&bank, "carol").await);
    let terminal =
        bank_server::admin::add_operator(bank.bank.ledger(), &TEST_ARGON2, "ops", OP_PASSWORD)
            .unwrap();
    assert!(
        bank_server::admin::add_operator(bank.bank.ledger(), &TEST_ARGON2, "ops", OP_PASSWORD)
            .is_err(),
        "an operator name is taken once"
    );
    assert!(
        bank_server::admin::add_operator(bank.bank.ledger(), &TEST_ARGON2, "short", "1234567")
            .is_err(),
        "short operator passwords are refused"
    );
    let mut console = Client::connect(&bank.addr, &bank.creds(&terminal.id, &terminal.psk))
        .await
        .unwrap();
    // Nothing before the operator logs in; a customer's credentials and a wrong password
    // get the same answer as an unknown operator.
    assert_eq!(
        console.call(&Request::ConsoleOverview {}).await.unwrap(),
        error(ErrorCode::NotAllowed)
    );
    for (name, password) in [
        ("carol", "correct horse"),
        ("ops", "wrong password"),
        ("nobody", OP_PASSWORD),
    ] {
        assert_eq!(
            console.call(&operator_login(name, password)).await.unwrap(),
            error(ErrorCode::AuthFailed),
            "{name}"
        );
    }
    // A console terminal cannot act as an ATM, not even for a real customer.
    assert_eq!(
        console
            .call(&login_req("carol", "correct horse"))
            .await
            .unwrap(),
        error(ErrorCode::NotAllowed)
    );
    // An ATM terminal cannot log an operator in, even with the right password.
    let mut atm = bank.client().await;
    assert_eq!(
        atm.call(&operator_login("ops", OP_PASSWORD)).await.unwrap(),
        error(ErrorCode::NotAllowed)
    );
    assert!(matches!(
        console
            .call(&operator_login("ops", OP_PASSWORD))
            .await
            .unwrap(),
        Response::OperatorWelcome { .. }
    ));
    assert_eq!(
        console
            .call(&operator_login("ops", OP_PASSWORD))
            .await
            .unwrap(),
        error(ErrorCode::AlreadyLoggedIn)
    );
    assert!(matches!(
        console.call(&Request::ConsoleOverview {}).await.unwrap(),
        Response::Overview(_)
    ));
    let actions = audit_actions(&mut console).await;
    let failed = actions
        .iter()
        .filter(|a| a.0 == "operator_login_failed")
        .count();
    assert_eq!(failed, 3, "{actions:?}");
    bank.stop().await;
}

//! Conformance of the `atm` binary to the BIBIFI ATM spec, against a real bank on port 0:
//! the spec's examples, every grammar rule, every exit code, and wrong files.

mod common;

use atm_client::{load_auth_file, AuthFile, Client};
use common::{closed_port, line, snapshot, Env};
use protocol::{Cents, Request, Response, TxId};
use rand_core::OsRng;

#[test]
fn the_default_port_is_the_bibifi_banks() {
    assert_eq!(
        atm_cli::args::DEFAULT_PORT,
        bank_server::bibifi::DEFAULT_PORT
    );
    assert_eq!(atm_cli::args::DEFAULT_PORT, 3000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spec_example_session() {
    let env = Env::start().await;
    assert_eq!(
        env.open("bob", "1000.00").await,
        r#"{"account":"bob","initial_balance":1000}"#
    );
    // The card file: one JSON line naming the account, private to its owner.
    let card = std::fs::read_to_string(env.path("bob.card")).unwrap();
    assert!(card.starts_with(r#"{"account":"bob","card":""#), "{card}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(env.path("bob.card"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert_eq!(
        env.ok(&["-a", "bob", "-d", "100.00"]).await,
        r#"{"account":"bob","deposit":100}"#
    );
    assert_eq!(
        env.ok(&["-a", "bob", "-w", "63.10"]).await,
        r#"{"account":"bob","withdraw":63.1}"#
    );
    assert_eq!(
        env.balance("bob").await,
        r#"{"account":"bob","balance":1036.9}"#
    );

    // Refusals: 255, nothing printed, nothing changed.
    let before = (snapshot(env.dir()), env.bank_lines());
    env.fails(255, &["-a", "bob", "-w", "2000.00"]).await; // overdraft
    env.fails(255, &["-a", "bob", "-n", "2000.00"]).await; // bob.card exists
    env.fails(255, &["-a", "bob", "-n", "2000.00", "-c", "bob2.card"])
        .await; // the bank has bob
    assert_eq!((snapshot(env.dir()), env.bank_lines()), before);

    // Wrong card: alice's card for bob, locally and at the bank.
    env.open("alice", "50.00").await;
    let before = (snapshot(env.dir()), env.bank_lines());
    env.fails(255, &["-a", "bob", "-c", "alice.card", "-g"])
        .await;
    env.fails(255, &["-a", "bob", "-c", "alice.card", "-d", "1.00"])
        .await;
    let alice = std::fs::read_to_string(env.path("alice.card")).unwrap();
    std::fs::write(
        env.path("forged.card"),
        alice.replace(r#""account":"alice""#, r#""account":"bob""#),
    )
    .unwrap();
    let before_forged = snapshot(env.dir());
    env.fails(255, &["-a", "bob", "-c", "forged.card", "-w", "1.00"])
        .await;
    env.fails(255, &["-a", "bob", "-c", "forged.card", "-g"])
        .await;
    assert_eq!(snapshot(env.dir()), before_forged);
    assert_eq!(env.bank_lines(), before.1);
    assert_eq!(
        env.balance("bob").await,
        r#"{"account":"bob","balance":1036.9}"#
    );
    assert_eq!(
        env.balance("alice").await,
        r#"{"account":"alice","balance":50}"#
    );

    // The bank printed exactly the lines the atm printed, in order.
    assert_eq!(
        env.bank_lines(),
        [
            r#"{"account":"bob","initial_balance":1000}"#,
            r#"{"account":"bob","deposit":100}"#,
            r#"{"account":"bob","withdraw":63.1}"#,
            r#"{"account":"bob","balance":1036.9}"#,
            r#"{"account":"alice","initial_balance":50}"#,
            r#"{"account":"bob","balance":1036.9}"#,
            r#"{"account":"alice","balance":50}"#,
        ]
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_command_lines_exit_255_print_nothing_and_change_nothing() {
    let env = Env::start().await;
    env.open("bob", "100.00").await;
    let port = env.port.to_string();
    let p = port.as_str();
    let before = (snapshot(env.dir()), env.bank_lines());
    let long = "a".repeat(4097);
    let long250 = "a".repeat(251);
    let long_file = "f".repeat(256);
    let cases: Vec<Vec<&str>> = vec![
        // Structure.
        vec![],
        vec!["-p", p],
        vec!["-a", "bob", "-p", p],
        vec!["-a", "bob", "-g", "-d", "1.00", "-p", p],
        vec!["-a", "bob", "-n", "20.00", "-w", "1.00", "-p", p],
        vec!["-a", "bob", "-g", "-g", "-p", p],
        vec!["-a", "bob", "-a", "bob", "-g", "-p", p],
        vec!["-a", "bob", "-g", "-p", p, "-p", p],
        vec![
            "-a",
            "bob",
            "-g",
            "-s",
            "bank.auth",
            "-s",
            "bank.auth",
            "-p",
            p,
        ],
        vec![
            "-a", "bob", "-g", "-c", "bob.card", "-c", "bob.card", "-p", p,
        ],
        vec![
            "-a",
            "bob",
            "-g",
            "-i",
            "127.0.0.1",
            "-i",
            "127.0.0.1",
            "-p",
            p,
        ],
        vec!["-a", "bob", "-d", "1.00", "-d", "1.00", "-p", p],
        vec!["-a", "bob", "-g", "-x", "-p", p],
        vec!["-a", "bob", "-g", "-h", "-p", p],
        vec!["-h"],
        vec!["--help"],
        vec!["-a", "bob", "-g", "--", "-p", p],
        vec!["--", "-a", "bob", "-g", "-p", p],
        vec!["-a", "bob", "-g", "-", "-p", p],
        vec!["-a", "bob", "-g", "stray", "-p", p],
        vec!["stray", "-a", "bob", "-g", "-p", p],
        vec!["-a", "bob", "-g", "-p"],
        vec!["-p", p, "-g", "-a"],
        vec!["-a", "bob", "-g", "--port", p],
        vec!["-a", "bob", "-G", "-p", p],
        vec!["-a", "bob", "-gx", "-p", p],
        // Lengths.
        vec!["-a", "bob", "-g", "-s", &long, "-p", p],
        vec!["-a", &long250, "-g", "-p", p],
        vec!["-a", "bob", "-g", "-c", &long_file, "-p", p],
        // Account names.
        vec!["-a", "", "-g", "-p", p],
        vec!["-a", "Bob", "-g", "-p", p],
        vec!["-a", "b b", "-g", "-p", p],
        vec!["-a", "b/b", "-g", "-p", p],
        vec!["-a", "b\u{e9}", "-g", "-p", p],
        // File names.
        vec!["-a", "bob", "-g", "-c", ".", "-p", p],
        vec!["-a", "bob", "-g", "-c", "..", "-p", p],
        vec!["-a", "bob", "-g", "-c", "", "-p", p],
        vec!["-a", "bob", "-g", "-c", "Bob.card", "-p", p],
        vec!["-a", "bob", "-g", "-c", "./bob.card", "-p", p],
        vec!["-a", "bob", "-g", "-s", "./bank.auth", "-p", p],
        vec!["-a", "bob", "-g", "-s", "..", "-p", p],
        vec!["-a", "bob", "-g", "-s", "BANK.auth", "-p", p],
        // Addresses and ports.
        vec!["-a", "bob", "-g", "-i", "127.0.0.01", "-p", p],
        vec!["-a", "bob", "-g", "-i", "127.0.0", "-p", p],
        vec!["-a", "bob", "-g", "-i", "256.0.0.1", "-p", p],
        vec!["-a", "bob", "-g", "-i", "localhost", "-p", p],
        vec!["-a", "bob", "-g", "-p", "1023"],
        vec!["-a", "bob", "-g", "-p", "65536"],
        vec!["-a", "bob", "-g", "-p", "0"],
        vec!["-a", "bob", "-g", "-p", "01024"],
        vec!["-a", "bob", "-g", "-p", "-1"],
        // Amounts.
        vec!["-a", "carol", "-n", "9.99", "-p", p],
        vec!["-a", "carol", "-n", "10", "-p", p],
        vec!["-a", "carol", "-n", "4294967296.00", "-p", p],
        vec!["-a", "bob", "-d", "0.00", "-p", p],
        vec!["-a", "bob", "-w", "0.00", "-p", p],
        vec!["-a", "bob", "-d", "1.0", "-p", p],
        vec!["-a", "bob", "-d", "1.000", "-p", p],
        vec!["-a", "bob", "-d", "01.00", "-p", p],
        vec!["-a", "bob", "-d", ".50", "-p", p],
        vec!["-a", "bob", "-d", "-1.00", "-p", p],
        vec!["-a", "bob", "-w", "+1.00", "-p", p],
        vec!["-a", "bob", "-d", "4294967296.00", "-p", p],
        vec!["-a", "bob", "-w", "1e2", "-p", p],
        vec!["-a", "bob", "-d", "", "-p", p],
    ];
    for args in &cases {
        let run = env.atm_raw(args).await;
        assert_eq!(run.code, 255, "atm {args:?}: {run:?}");
        assert_eq!(run.stdout, "", "atm {args:?}");
    }
    assert_eq!((snapshot(env.dir()), env.bank_lines()), before);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posix_option_syntax() {
    let env = Env::start().await;
    let port = env.port.to_string();
    let p_attached = format!("-p{port}");
    // Attached values, options in any order.
    assert_eq!(
        env.atm_raw(&[
            "-n10.00",
            "-i127.0.0.1",
            &p_attached,
            "-abob",
            "-sbank.auth"
        ])
        .await
        .stdout,
        format!("{}\n", line("bob", "initial_balance", "10"))
    );
    assert_eq!(
        env.atm_raw(&[
            "-d",
            "5.00",
            "-p",
            &port,
            "-c",
            "bob.card",
            "-a",
            "bob",
            "-i",
            "127.0.0.1"
        ])
        .await
        .stdout,
        format!("{}\n", line("bob", "deposit", "5"))
    );
    // A value may start with '-': this opens the account "-g".
    assert_eq!(
        env.open("-g", "11.00").await,
        line("-g", "initial_balance", "11")
    );
    assert!(env.path("-g.card").exists());
    // `-g` grouped in front of `-a`, whose value is the next argument "-g".
    assert_eq!(env.ok(&["-ga", "-g"]).await, line("-g", "balance", "11"));
    assert_eq!(env.ok(&["-gabob"]).await, line("bob", "balance", "15"));
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_names_at_the_edges() {
    let env = Env::start().await;
    let longest = "z".repeat(250);
    for name in [".", "..", "-", "_", "0", longest.as_str()] {
        assert_eq!(
            env.open(name, "10.00").await,
            line(name, "initial_balance", "10")
        );
        assert!(env.path(&format!("{name}.card")).exists(), "{name}");
        assert_eq!(
            env.ok(&["-a", name, "-d", "0.01"]).await,
            line(name, "deposit", "0.01")
        );
        assert_eq!(env.balance(name).await, line(name, "balance", "10.01"));
    }
    // `.` and `..` are different accounts with different cards.
    env.fails(255, &["-a", ".", "-c", "...card", "-g"]).await;
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amounts_at_the_edges_print_exactly() {
    let env = Env::start().await;
    assert_eq!(
        env.open("max", "4294967295.99").await,
        line("max", "initial_balance", "4294967295.99")
    );
    // A balance may grow beyond the largest amount.
    assert_eq!(
        env.ok(&["-a", "max", "-d", "4294967295.99"]).await,
        line("max", "deposit", "4294967295.99")
    );
    assert_eq!(
        env.balance("max").await,
        line("max", "balance", "8589934591.98")
    );
    env.open("min", "10.00").await;
    assert_eq!(
        env.ok(&["-a", "min", "-w", "9.90"]).await,
        line("min", "withdraw", "9.9")
    );
    assert_eq!(
        env.ok(&["-a", "min", "-w", "0.10"]).await,
        line("min", "withdraw", "0.1")
    );
    assert_eq!(env.balance("min").await, line("min", "balance", "0"));
    let lines = env.bank_lines();
    env.fails(255, &["-a", "min", "-w", "0.01"]).await;
    assert_eq!(env.bank_lines(), lines);
    assert_eq!(
        env.ok(&["-a", "min", "-d", "0.05"]).await,
        line("min", "deposit", "0.05")
    );
    env.stop().await;
}

/// Logs in with `account`'s card file straight through the client library.
async fn card_client(env: &Env, account: &str) -> Client {
    let auth = load_auth_file(env.path("bank.auth")).unwrap();
    let card =
        atm_cli::files::Card::load(env.path(&format!("{account}.card")).to_str().unwrap()).unwrap();
    let mut client = Client::connect(&format!("127.0.0.1:{}", env.port), &auth)
        .await
        .unwrap();
    let login = card
        .secret
        .login_request(&card.account, client.channel_binding());
    let reply = client.call(&login).await.unwrap();
    assert!(matches!(reply, Response::Welcome { .. }), "{reply:?}");
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_balance_beyond_2_pow_53_cents_prints_exactly() {
    // The CLI never sends more than 4294967295.99 at once; this bank takes larger deposits from
    // the client library so the balance can pass 2^53 cents without 21 000 runs.
    let env = Env::start_with(|c| c.max_amount = Cents(u64::MAX / 4)).await;
    env.open("rich", "10.00").await;
    let mut client = card_client(&env, "rich").await;
    let reply = client
        .call(&Request::Deposit {
            txid: TxId::random(&mut OsRng),
            amount_cents: Cents((1 << 53) + 1),
        })
        .await
        .unwrap();
    assert!(matches!(reply, Response::Deposited { .. }), "{reply:?}");
    drop(client);
    // 2^53 + 1 + 1000 cents = 9007199254741993 cents.
    assert_eq!(
        env.balance("rich").await,
        line("rich", "balance", "90071992547419.93")
    );
    assert_eq!(
        env.ok(&["-a", "rich", "-d", "0.07"]).await,
        line("rich", "deposit", "0.07")
    );
    assert_eq!(
        env.balance("rich").await,
        line("rich", "balance", "90071992547420")
    );
    env.stop().await;
}

/// A bank-server terminal under deposit ceilings (the BIBIFI bank's has none): a deposit or an
/// opening over them is a refusal like any other, 255 with the bank's reason on stderr.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deposit_over_the_terminals_ceiling_exits_255_and_changes_nothing() {
    let env = Env::start_with(|c| {
        c.first_terminal = bank_server::ledger::DepositCeilings {
            per_deposit: Some(Cents(5_000)),
            per_day: Some(Cents(8_000)),
        }
    })
    .await;
    let run = env.fails(255, &["-a", "bob", "-n", "50.01"]).await;
    assert_eq!(run.stderr, "atm: That deposit is over this ATM's limit.\n");
    assert!(!env.path("bob.card").exists());
    env.open("bob", "50.00").await;
    env.fails(255, &["-a", "bob", "-d", "30.01"]).await;
    assert_eq!(
        env.ok(&["-a", "bob", "-d", "30.00"]).await,
        line("bob", "deposit", "30")
    );
    env.fails(255, &["-a", "bob", "-d", "0.01"]).await;
    assert_eq!(env.balance("bob").await, line("bob", "balance", "80"));
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_missing_empty_and_truncated_files_exit_255_and_change_nothing() {
    let env = Env::start().await;
    env.open("bob", "100.00").await;
    let card = std::fs::read(env.path("bob.card")).unwrap();
    let auth = std::fs::read(env.path("bank.auth")).unwrap();
    std::fs::write(env.path("empty.card"), b"").unwrap();
    std::fs::write(env.path("half.card"), &card[..card.len() / 2]).unwrap();
    std::fs::write(env.path("short.card"), &card[..card.len() - 4]).unwrap();
    std::fs::write(env.path("empty.auth"), b"").unwrap();
    std::fs::write(env.path("half.auth"), &auth[..auth.len() / 2]).unwrap();
    std::fs::write(env.path("noise"), [0xffu8, 0xfe, 0, 1, 2]).unwrap();
    std::fs::create_dir(env.path("dir.card")).unwrap();
    let before = (snapshot(env.dir()), env.bank_lines());
    for args in [
        // The card as the auth file, the auth file as the card.
        &["-a", "bob", "-g", "-s", "bob.card"][..],
        &[
            "-a", "bob", "-d", "1.00", "-s", "bob.card", "-c", "bob.card",
        ],
        &["-a", "bob", "-g", "-c", "bank.auth"],
        &["-a", "bob", "-w", "1.00", "-c", "bank.auth"],
        // -n never overwrites: not the auth file, not an existing card, not a directory.
        &["-a", "carol", "-n", "10.00", "-c", "bank.auth"],
        &["-a", "carol", "-n", "10.00", "-c", "bob.card"],
        &["-a", "carol", "-n", "10.00", "-c", "dir.card"],
        // Missing, empty, truncated, garbage.
        &["-a", "bob", "-g", "-s", "missing.auth"],
        &["-a", "carol", "-n", "10.00", "-s", "missing.auth"],
        &["-a", "bob", "-g", "-s", "empty.auth"],
        &["-a", "bob", "-g", "-s", "half.auth"],
        &["-a", "bob", "-g", "-s", "noise"],
        &["-a", "bob", "-g", "-s", "dir.card"],
        &["-a", "bob", "-g", "-c", "missing.card"],
        &["-a", "dave", "-g"],
        &["-a", "bob", "-g", "-c", "empty.card"],
        &["-a", "bob", "-d", "1.00", "-c", "half.card"],
        &["-a", "bob", "-w", "1.00", "-c", "short.card"],
        &["-a", "bob", "-g", "-c", "noise"],
        &["-a", "bob", "-g", "-c", "dir.card"],
    ] {
        env.fails(255, args).await;
    }
    assert_eq!((snapshot(env.dir()), env.bank_lines()), before);
    // Nothing was created for carol.
    assert!(!env.path("carol.card").exists());
    env.fails(255, &["-a", "carol", "-g", "-c", "bob.card"])
        .await;
    assert_eq!(env.balance("bob").await, line("bob", "balance", "100"));
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_card_made_up_for_an_account_is_refused() {
    let env = Env::start().await;
    env.open("bob", "100.00").await;
    // A well-formed card with a random key or secret (signed or legacy), for an existing and
    // for a missing account.
    let cases = [
        ("guess.card", "bob", true),
        ("ghost.card", "ghost", true),
        ("guess-legacy.card", "bob", false),
        ("ghost-legacy.card", "ghost", false),
    ];
    for (file, account, signed) in cases {
        let card = atm_cli::files::Card {
            account: protocol::Username::new(account).unwrap(),
            secret: if signed {
                protocol::CardKey::random(&mut OsRng).into()
            } else {
                protocol::CardSecret::random(&mut OsRng).into()
            },
        };
        card.create(env.path(file).to_str().unwrap()).unwrap();
        let before = (snapshot(env.dir()), env.bank_lines());
        env.fails(255, &["-a", account, "-c", file, "-w", "1.00"])
            .await;
        env.fails(255, &["-a", account, "-c", file, "-g"]).await;
        assert_eq!((snapshot(env.dir()), env.bank_lines()), before);
    }
    assert_eq!(env.balance("bob").await, line("bob", "balance", "100"));
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_bank_is_63_and_writes_no_card() {
    let env = Env::start().await;
    let port = closed_port().await.to_string();
    let before = snapshot(env.dir());
    for args in [
        &["-a", "bob", "-n", "10.00", "-p", &port][..],
        &["-a", "bob", "-n", "10.00", "-p", &port, "-i", "127.0.0.1"],
    ] {
        let run = env.atm_raw(args).await;
        assert_eq!((run.code, run.stdout.as_str()), (63, ""), "{run:?}");
    }
    assert_eq!(snapshot(env.dir()), before);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_terminal_key_fails_the_handshake_with_63() {
    let env = Env::start().await;
    env.open("bob", "100.00").await;
    let auth = load_auth_file(env.path("bank.auth")).unwrap();
    let wrong_key = AuthFile {
        terminal_id: auth.terminal_id.clone(),
        psk: protocol::Psk::random(&mut OsRng),
        bank: auth.bank.clone(),
    };
    std::fs::write(env.path("wrong.auth"), wrong_key.to_text().as_bytes()).unwrap();
    let unknown = AuthFile {
        terminal_id: protocol::TerminalId::new("t-unknown").unwrap(),
        psk: auth.psk.clone(),
        bank: auth.bank.clone(),
    };
    std::fs::write(env.path("unknown.auth"), unknown.to_text().as_bytes()).unwrap();
    let before = snapshot(env.dir());
    for args in [
        &["-a", "bob", "-g", "-s", "wrong.auth"][..],
        &["-a", "bob", "-d", "5.00", "-s", "unknown.auth"],
        &["-a", "carol", "-n", "10.00", "-s", "wrong.auth"],
    ] {
        env.fails(63, args).await;
    }
    assert_eq!(snapshot(env.dir()), before);
    assert_eq!(env.balance("bob").await, line("bob", "balance", "100"));
    env.fails(255, &["-a", "carol", "-g", "-c", "bob.card"])
        .await;
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fake_bank_holding_the_terminal_key_but_not_the_bank_key_is_63() {
    use futures_util::{SinkExt as _, StreamExt as _};
    let env = Env::start().await;
    env.open("bob", "100.00").await;
    // An impostor that stole bank.auth (the terminal's key) and answers on its own port with a
    // static key of its own: it completes its side of the handshake as the bank would, and
    // counts the records it receives (the ATM must never send one).
    let auth = load_auth_file(env.path("bank.auth")).unwrap();
    let fake = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let fake_port = fake.local_addr().unwrap().port().to_string();
    let records = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = records.clone();
    let (stolen_id, stolen_psk) = (auth.terminal_id.clone(), auth.psk.clone());
    tokio::spawn(async move {
        let fake_key = protocol::BankKey::random(
            protocol::BankId::new(auth.bank.bank_id.as_str()).unwrap(),
            &mut OsRng,
        );
        while let Ok((s, _)) = fake.accept().await {
            let (id, psk, key, seen) = (
                stolen_id.clone(),
                stolen_psk.clone(),
                fake_key.clone(),
                seen.clone(),
            );
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(s).await else {
                    return;
                };
                let now = atm_client::now_ms;
                let config = protocol::Config::default();
                let Some(Ok(hello)) = ws.next().await else {
                    return;
                };
                let hello =
                    protocol::server::read_client_hello(&config, &key, &hello.into_data(), now())
                        .unwrap();
                assert_eq!(hello.terminal_id(), &id);
                let (state, reply) = hello.respond(Some(&psk), &key, &mut OsRng, now()).unwrap();
                let _ = ws.send(reply.into()).await;
                if let Some(Ok(finished)) = ws.next().await {
                    if state.read_client_finished(&finished.into_data()).is_ok() {
                        seen.fetch_add(1000, std::sync::atomic::Ordering::SeqCst);
                    }
                }
                while let Some(Ok(_)) = ws.next().await {
                    seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
            });
        }
    });
    let before = snapshot(env.dir());
    for args in [
        &["-a", "bob", "-g", "-p", fake_port.as_str()][..],
        &["-a", "carol", "-n", "10.00", "-p", fake_port.as_str()],
    ] {
        let run = env.atm_raw(args).await;
        assert_eq!(
            (run.code, run.stdout.as_str()),
            (63, ""),
            "{args:?} {run:?}"
        );
    }
    assert_eq!(records.load(std::sync::atomic::Ordering::SeqCst), 0);
    assert_eq!(snapshot(env.dir()), before);
    // The same auth file against the real bank works.
    env.ok(&["-a", "bob", "-g"]).await;
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn something_that_is_not_the_bank_is_63() {
    use futures_util::{SinkExt as _, StreamExt as _};
    let env = Env::start().await;
    env.open("bob", "100.00").await;
    // A plain HTTP server that is not a WebSocket endpoint.
    let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http_port = http.local_addr().unwrap().port().to_string();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        while let Ok((mut s, _)) = http.accept().await {
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).await;
            let _ = s
                .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                .await;
        }
    });
    // A WebSocket server that answers the hello with nonsense.
    let ws = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ws_port = ws.local_addr().unwrap().port().to_string();
    tokio::spawn(async move {
        while let Ok((s, _)) = ws.accept().await {
            tokio::spawn(async move {
                if let Ok(mut ws) = tokio_tungstenite::accept_async(s).await {
                    let _ = ws.next().await;
                    let _ = ws.send("{\"type\":\"server_hello\"}".into()).await;
                    let _ = ws.next().await;
                }
            });
        }
    });
    for port in [&http_port, &ws_port] {
        for args in [
            &["-a", "bob", "-g", "-p", port.as_str()][..],
            &["-a", "carol", "-n", "10.00", "-p", port.as_str()],
        ] {
            let run = env.atm_raw(args).await;
            assert_eq!(
                (run.code, run.stdout.as_str()),
                (63, ""),
                "{args:?} {run:?}"
            );
        }
    }
    assert!(!env.path("carol.card").exists());
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_atm_writes_no_file_but_the_card_and_only_on_n() {
    let env = Env::start().await;
    let start = snapshot(env.dir());
    env.open("bob", "20.00").await;
    let after_open = snapshot(env.dir());
    let mut expected = start.clone();
    expected.insert(
        "bob.card".into(),
        std::fs::read(env.path("bob.card")).unwrap(),
    );
    assert_eq!(after_open, expected);
    env.ok(&["-a", "bob", "-d", "1.00"]).await;
    env.ok(&["-a", "bob", "-w", "1.00"]).await;
    env.ok(&["-a", "bob", "-g"]).await;
    assert_eq!(snapshot(env.dir()), after_open);
    // A card for another name (-c) is the one written.
    env.ok(&["-a", "carol", "-n", "10.00", "-c", "mine.card"])
        .await;
    assert!(env.path("mine.card").exists() && !env.path("carol.card").exists());
    assert_eq!(
        env.ok(&["-a", "carol", "-c", "mine.card", "-g"]).await,
        line("carol", "balance", "10")
    );
    env.stop().await;
}

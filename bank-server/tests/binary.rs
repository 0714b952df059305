//! The `bank-server` binary as a child process: SIGKILL under load loses no acknowledged
//! transaction and leaves nothing half-applied; SIGTERM and SIGINT shut down cleanly (exit 0);
//! `audit verify`/`show` read the log; `terminal` subcommands; the console on its own listener
//! (`--console-listen`); `--help` documents every flag.

mod common;

use std::io::{BufRead, BufReader};

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use atm_client::{load_auth_file, AuthFile, Client, ClientError};
use common::load::{self, signed};
use common::process::*;
use common::*;
use protocol::{CardSecret, Cents, Request, Response};
use rand_core::OsRng;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_loses_nothing_acknowledged() {
    const ACCOUNTS: usize = 4;
    let dir = temp();
    let paths = Paths::new(dir.path());
    let bank = BankProcess::start(&paths);
    let auth = load_auth_file(&paths.auth).unwrap();
    let acked_total = Arc::new(AtomicUsize::new(0));
    let mut cards = Vec::new();
    let mut tasks = Vec::new();
    for a in 0..ACCOUNTS {
        let card = CardSecret::random(&mut OsRng);
        cards.push(card.clone());
        let mut client = Client::connect(&bank.addr, &auth).await.unwrap();
        open_card_account(&mut client, &format!("card{a}"), 100_000, card).await;
        let (counter, stop) = (acked_total.clone(), Arc::new(AtomicBool::new(false)));
        tasks.push(tokio::spawn(load::run(client, 100_000, counter, stop)));
    }
    // Let the load run, then kill the bank mid-stream.
    while acked_total.load(Ordering::Relaxed) < 200 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let before_kill = bank.stdout();
    drop(bank); // SIGKILL
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    let acked: usize = results.iter().map(|r| r.done.len()).sum();
    assert!(acked >= 200);
    eprintln!("{acked} transactions acknowledged before SIGKILL");
    assert_eq!(before_kill.first().map(String::as_str), Some("created"));

    // Restart: every acknowledged transaction is there, nothing half-applied.
    let bank = BankProcess::start(&paths);
    for (a, result) in results.iter().enumerate() {
        let mut client = Client::connect(&bank.addr, &auth).await.unwrap();
        let login = Request::CardLogin {
            username: username(&format!("card{a}")),
            card: cards[a].clone(),
        };
        let Response::Welcome { balance_cents, .. } = client.call(&login).await.unwrap() else {
            panic!("card login after restart")
        };
        let base = result.expected();
        let now = i128::from(balance_cents.0);
        // Either the in-flight request never committed, or it committed in full.
        let in_flight = result.in_flight.as_ref().map_or(0, signed);
        assert!(
            now == base || now == base + in_flight,
            "card{a}: balance {now}, acknowledged {base}, in flight {in_flight}"
        );
        // Replaying each acknowledged transaction id returns the recorded result, unchanged.
        for (request, acked_balance) in &result.done {
            let reply = client.call(request).await.unwrap();
            let replayed = match reply {
                Response::Deposited { balance_cents, .. }
                | Response::Withdrawn { balance_cents, .. } => balance_cents.0,
                other => panic!("{other:?}"),
            };
            assert_eq!(
                replayed, *acked_balance,
                "card{a}: an acknowledged transaction was lost"
            );
        }
        assert_eq!(
            balance(&mut client).await,
            balance_cents.0,
            "replays changed nothing"
        );
        client.close().await.unwrap();
    }
    assert!(
        bank.stdout().iter().all(|l| l != "created"),
        "a restart does not recreate the bank"
    );

    // SIGTERM: clean exit, then the audit log verifies.
    bank.signal("TERM");
    assert!(bank.wait(), "SIGTERM exits 0");
    let verify = paths.command(&["audit", "verify"]);
    let stderr = String::from_utf8_lossy(&verify.stderr);
    assert!(verify.status.success(), "{stderr}");
    assert!(stderr.contains("audit log OK"), "{stderr}");
    let show = paths.command(&["audit", "show"]);
    assert!(show.status.success());
    let shown = String::from_utf8_lossy(&show.stdout);
    assert!(shown.lines().filter(|l| l.contains(" deposit ")).count() >= acked / 2);
    assert!(shown.contains("user=card0"), "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_ends_sessions_cleanly_and_exits_zero() {
    let dir = temp();
    let paths = Paths::new(dir.path());
    let bank = BankProcess::start(&paths);
    let auth = load_auth_file(&paths.auth).unwrap();
    let mut client = Client::connect(&bank.addr, &auth).await.unwrap();
    assert_eq!(
        client.call(&Request::Balance {}).await.unwrap(),
        error(protocol::ErrorCode::NotLoggedIn)
    );
    let (status, body) = http_get(&bank.addr, "/healthz").await;
    assert!(status.contains("200") && body.trim() == "ok");
    // The auditor's tool gives no verdict on a store the running bank holds: exit 2, not
    // "BROKEN".
    let audit = paths.command(&["audit", "verify"]);
    assert_eq!(
        audit.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&audit.stderr)
    );
    bank.signal("INT");
    // The open session is closed by the bank with "going away", not cut.
    assert_close_code(client.conn(), 1001).await;
    assert!(bank.wait(), "SIGINT exits 0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminal_subcommands_work_on_a_running_and_a_stopped_bank() {
    let dir = temp();
    let paths = Paths::new(dir.path());
    // Admin commands need an existing bank.
    assert!(!paths.command(&["terminal", "list"]).status.success());

    // While the bank runs, through its admin socket.
    let bank = BankProcess::start(&paths);
    let out = dir.path().join("second.auth");
    let add = paths.command(&[
        "terminal",
        "add",
        "--name",
        "desk",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(add.status.success(), "{add:?}");
    let second = load_auth_file(&out).unwrap();
    let mut client = Client::connect(&bank.addr, &second).await.unwrap();
    assert_eq!(
        client.call(&Request::Balance {}).await.unwrap(),
        error(protocol::ErrorCode::NotLoggedIn)
    );
    client.close().await.unwrap();

    let web = paths.command(&[
        "terminal", "add", "--web", "--name", "lobby", "--port", "9999",
    ]);
    assert!(web.status.success());
    let link = String::from_utf8(web.stdout).unwrap();
    let (base, fragment) = link.trim().split_once("/#").unwrap();
    assert_eq!(base, "http://127.0.0.1:9999");
    let enrolled = protocol::link::Enrollment::from_fragment(fragment)
        .ok()
        .unwrap();
    let (id, key) = (enrolled.terminal.as_str(), enrolled.psk.to_hex());
    assert!(id.starts_with("t-") && key.len() == 64);
    // The link pins the same bank as the auth file added before.
    assert!(enrolled.bank == second.bank);
    let web = AuthFile {
        terminal_id: enrolled.terminal.clone(),
        psk: enrolled.psk.clone(),
        bank: enrolled.bank.clone(),
    };
    let mut open_session = Client::connect(&bank.addr, &web).await.unwrap();
    let reply = open_session.call(&Request::Balance {}).await.unwrap();
    assert_eq!(reply, error(protocol::ErrorCode::NotLoggedIn));

    let list = String::from_utf8(paths.command(&["terminal", "list"]).stdout).unwrap();
    assert_eq!(list.lines().count(), 3, "{list}");
    assert!(
        list.contains(id) && list.contains("lobby") && list.contains(second.terminal_id.as_str())
    );
    assert!(!list.contains(key.as_str()), "keys are never listed");

    assert!(paths.command(&["terminal", "revoke", id]).status.success());
    assert!(
        matches!(
            Client::connect(&bank.addr, &web).await,
            Err(ClientError::Protocol(_))
        ),
        "a revoked terminal's handshake fails at once"
    );
    // Its open session ends at its next request, closed like any failure.
    assert!(matches!(
        open_session.call(&Request::Balance {}).await,
        Err(ClientError::Closed)
    ));
    assert_eq!(open_session.conn().close_frame(), Some((1008, "")));
    bank.signal("TERM");
    assert!(bank.wait());

    // With the bank stopped, directly on the database.
    let list = String::from_utf8(paths.command(&["terminal", "list"]).stdout).unwrap();
    assert!(
        list.lines()
            .any(|l| l.starts_with(id) && l.contains("revoked")),
        "{list}"
    );
    assert!(!paths
        .command(&["terminal", "revoke", "t-ffffffffffff"])
        .status
        .success());
    let printed = paths.command(&["terminal", "add"]);
    assert!(printed.status.success());
    let third = AuthFile::parse(&String::from_utf8(printed.stdout).unwrap()).unwrap();
    let list = String::from_utf8(paths.command(&["terminal", "list"]).stdout).unwrap();
    assert!(
        list.contains(third.terminal_id.as_str()) && list.lines().count() == 4,
        "{list}"
    );

    let verify = paths.command(&["audit", "verify"]);
    assert!(verify.status.success());
    let show = String::from_utf8(paths.command(&["audit", "show"]).stdout).unwrap();
    assert!(
        show.contains("terminal_revoked") && show.contains(&format!("terminal={id}")),
        "{show}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_the_logs_even_at_trace_level() {
    let dir = temp();
    let paths = Paths::new(dir.path());
    let bank = BankProcess::start_logging(&paths, "trace");
    let auth = load_auth_file(&paths.auth).unwrap();
    let password = "Secret-Passw0rd-XYZZY";
    let card = CardSecret::random(&mut OsRng);
    let mut client = Client::connect(&bank.addr, &auth).await.unwrap();
    let reply = client.call(&register_req("alice", password)).await.unwrap();
    assert!(matches!(reply, Response::Welcome { .. }));
    client.call(&deposit_req(1_234)).await.unwrap();
    client.call(&Request::Logout {}).await.unwrap();
    let mut client = Client::connect(&bank.addr, &auth).await.unwrap();
    client.call(&login_req("alice", password)).await.unwrap();
    client.close().await.unwrap();
    let mut client = Client::connect(&bank.addr, &auth).await.unwrap();
    client
        .call(&login_req("alice", "Wrong-Passw0rd-PLUGH"))
        .await
        .unwrap();
    let open = Request::OpenCardAccount {
        username: username("bob"),
        initial_cents: Cents(5_000),
        txid: txid(),
        card: card.clone(),
    };
    client.call(&open).await.unwrap();
    client.close().await.unwrap();
    let mut client = Client::connect(&bank.addr, &auth).await.unwrap();
    let login = Request::CardLogin {
        username: username("bob"),
        card: card.clone(),
    };
    client.call(&login).await.unwrap();
    client.close().await.unwrap();
    // A wrong key, too.
    let wrong = AuthFile {
        psk: protocol::Psk::random(&mut OsRng),
        ..auth.clone()
    };
    assert!(matches!(
        Client::connect(&bank.addr, &wrong).await,
        Err(ClientError::Protocol(protocol::Error::HandshakeFailed(
            protocol::HandshakeFault::BadFinished
        )))
    ));
    // An enrollment code, issued through the admin socket, used once, then tried again.
    let issued = paths.command(&["terminal", "add", "--code", "--name", "host"]);
    assert!(issued.status.success(), "{issued:?}");
    let code_text = String::from_utf8(issued.stdout).unwrap();
    let code = protocol::enrollment::EnrollmentCode::parse(&code_text).unwrap();
    let enrolled = atm_client::enroll(&bank.addr, &code).await.unwrap();
    assert!(
        matches!(
            atm_client::enroll(&bank.addr, &code).await,
            Err(ClientError::Protocol(protocol::Error::HandshakeFailed(
                protocol::HandshakeFault::BadFinished
            )))
        ),
        "a used code fails the handshake like a wrong one"
    );
    let enrolled_psk = enrolled.psk.to_hex();
    bank.signal("TERM");
    let (stdout, stderr) = (bank.stdout.clone(), bank.stderr.clone());
    assert!(bank.wait());

    let stderr = stderr.lock().unwrap().join("\n");
    let stdout = stdout.lock().unwrap().join("\n");
    assert!(
        stderr.contains("alice") && stderr.contains("session"),
        "the log is on: {stderr}"
    );
    // The auditor's private key, which this lab bank generated and wrote (and forgot).
    let audit_key = std::fs::read_to_string(&paths.key).unwrap();
    let audit_key = audit_key
        .trim()
        .strip_prefix("auditor-x25519 ")
        .expect("an auditor key file")
        .to_owned();
    let psk = auth.psk.to_hex();
    let card_hex = card.to_hex();
    let bank_key = std::fs::read_to_string(paths.data.with_file_name("data.bank-key")).unwrap();
    assert!(
        stderr.contains(code.id().as_str()),
        "the code's id is logged: {stderr}"
    );
    for secret in [
        password,
        "Wrong-Passw0rd-PLUGH",
        psk.as_str(),
        card_hex.as_str(),
        audit_key.as_str(),
        bank_key.trim(),
        code_text.trim(),
        &code_text.trim()[13..],
        enrolled_psk.as_str(),
    ] {
        assert!(!stderr.contains(secret), "a secret reached the log");
        assert!(!stdout.contains(secret), "a secret reached stdout");
    }
}

impl Paths {
    /// `operator add NAME` with the password on standard input; returns (success, link, stderr).
    fn add_operator(&self, name: &str, password: &str, log: &str) -> (bool, String, String) {
        self.add_operator_with(name, password, log, &[])
    }

    /// [`Self::add_operator`] with more flags.
    fn add_operator_with(
        &self,
        name: &str,
        password: &str,
        log: &str,
        extra: &[&str],
    ) -> (bool, String, String) {
        use std::io::Write as _;
        let mut child = Command::new(BIN)
            .args(["operator", "add", name])
            .args(extra)
            .args(self.args())
            .env("RUST_LOG", log)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.success(),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    }
}

/// The console terminal's id and key from a console link.
fn console_credentials(link: &str) -> AuthFile {
    let (base, fragment) = link.trim().split_once("/console#").expect("a console link");
    assert!(base.starts_with("http://127.0.0.1:"), "{link}");
    let e = protocol::link::Enrollment::from_fragment(fragment)
        .ok()
        .unwrap();
    AuthFile {
        terminal_id: e.terminal,
        psk: e.psk,
        bank: e.bank,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_add_works_on_a_stopped_and_a_running_bank() {
    let dir = temp();
    let paths = Paths::new(dir.path());
    drop(BankProcess::start(&paths));
    let password = "Operator-Passw0rd-QUUX";
    // Stopped bank: straight to the database. Bad names and short passwords are refused.
    let (ok, first_link, _) = paths.add_operator("ops", password, "warn");
    assert!(ok);
    assert!(!paths.add_operator("ops", password, "warn").0, "taken");
    assert!(!paths.add_operator("Bad Name", password, "warn").0);
    assert!(!paths.add_operator("short", "1234567", "warn").0);

    // Running bank: through its admin socket, the password hashed by the command itself.
    let bank = BankProcess::start_logging(&paths, "trace");
    let (ok, second_link, stderr) = paths.add_operator("night-shift", password, "trace");
    assert!(ok, "{stderr}");
    assert!(!stderr.contains(password));
    for (link, name) in [(&first_link, "ops"), (&second_link, "night-shift")] {
        let creds = console_credentials(link);
        let mut console = Client::connect(&bank.addr, &creds).await.unwrap();
        let reply = console
            .call(&Request::OperatorLogin {
                username: username(name),
                password: protocol::Password::new(password).unwrap(),
            })
            .await
            .unwrap();
        assert!(
            matches!(reply, Response::OperatorWelcome { .. }),
            "{reply:?}"
        );
        console.close().await.unwrap();
    }
    let list = String::from_utf8(paths.command(&["terminal", "list"]).stdout).unwrap();
    assert_eq!(
        list.lines().filter(|l| l.contains("\tconsole\t")).count(),
        2,
        "{list}"
    );
    bank.signal("TERM");
    let stderr = bank.stderr.clone();
    assert!(bank.wait());
    let stderr = stderr.lock().unwrap().join("\n");
    assert!(
        !stderr.contains(password),
        "the password reached the bank's log"
    );
    assert!(
        !stderr.contains("$argon2id$"),
        "a password hash reached the bank's log"
    );
    let show = String::from_utf8(paths.command(&["audit", "show"]).stdout).unwrap();
    assert_eq!(show.matches(" operator_added ").count(), 2, "{show}");
    assert!(show.contains(" operator_login user=night-shift"), "{show}");
    // Operators' hashes: the stronger parameters, keyed with the bank's pepper.
    let ledger = bank_server::sled_ledger::SledLedger::open(&paths.data).unwrap();
    for name in ["ops", "night-shift"] {
        use bank_server::Ledger as _;
        let hash = ledger
            .operator(&username(name))
            .unwrap()
            .unwrap()
            .password_hash;
        assert!(
            hash.contains("m=65536,t=3,p=1") && hash.contains("keyid="),
            "{hash}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_listen_gives_the_console_its_own_listener() {
    let dir = temp();
    let paths = Paths::new(dir.path());
    let bank = BankProcess::start_with(&paths, &["--console-listen", "127.0.0.1:0"], "warn");
    let mut console = None;
    for _ in 0..500 {
        console = bank.stderr.lock().unwrap().iter().find_map(|line| {
            let rest = line.split("the bank console on http://").nth(1)?;
            Some(rest.trim_end_matches("/console").to_owned())
        });
        if console.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let console = console.expect("the bank prints the console's address");
    assert_ne!(console, bank.addr);
    assert!(http_get(&bank.addr, "/console").await.0.contains(" 404 "));
    assert!(http_get(&console, "/").await.0.contains(" 303 "));
    // `operator add` with the same flag links to the console's listener, where the console
    // terminal works; the customer's closes its session.
    let flag = ["--console-listen", console.as_str()];
    let (ok, link, stderr) =
        paths.add_operator_with("ops", "Operator-Passw0rd-QUUX", "warn", &flag);
    assert!(ok, "{stderr}");
    assert!(
        link.starts_with(&format!("http://{console}/console#")),
        "{link}"
    );
    let creds = console_credentials(&link);
    let mut desk = Client::connect(&console, &creds).await.unwrap();
    assert_eq!(
        desk.call(&Request::ConsoleOverview {}).await.unwrap(),
        error(protocol::ErrorCode::NotAllowed)
    );
    let mut crossed = Client::connect(&bank.addr, &creds).await.unwrap();
    assert_close_code(crossed.conn(), protocol::close::FAILURE).await;
    // Native ATMs keep the customer's listener.
    let auth = load_auth_file(&paths.auth).unwrap();
    assert!(Client::connect(&bank.addr, &auth).await.is_ok());
    bank.signal("TERM");
    assert!(bank.wait());
}

#[test]
fn help_documents_every_flag() {
    let help = Command::new(BIN).arg("--help").output().unwrap();
    assert!(help.status.success());
    let text = String::from_utf8(help.stdout).unwrap();
    assert!(
        text.contains("[default: 8765]"),
        "the web bank's default port is 8765:\n{text}"
    );
    for flag in [
        "--port",
        "--bind",
        "--data-dir",
        "--auth-file",
        "--audit-key-file",
        "--auditor-public-key",
        "BANK_AUDITOR_PUBLIC_KEY",
        "--web-root",
        "--max-sessions",
        "--max-connections",
        "--max-connections-per-ip",
        "--cache-mb",
        "--request-head-timeout-secs",
        "--max-amount",
        "--max-deposit",
        "--max-deposit-per-day",
        "--openings-per-minute",
        "--openings-burst",
        "BANK_OPENINGS_PER_MINUTE",
        "--idle-timeout-secs",
        "--allow-origin",
        "--public-url",
        "BANK_PUBLIC_URL",
        "--console-listen",
        "BANK_CONSOLE_LISTEN",
        "--console-public-url",
        "--tls-cert",
        "--tls-key",
        "BANK_PORT",
        "serve",
        "terminal",
        "operator",
        "audit",
    ] {
        assert!(
            text.contains(flag),
            "--help does not mention {flag}:\n{text}"
        );
    }
    assert!(
        text.contains("75 (EX_TEMPFAIL) when the storage fails"),
        "--help does not document the storage-fault exit status:\n{text}"
    );
    // The command line's own defaults are the documented ones (clap states them apart from
    // the library's Config).
    for (flag, default) in [
        ("--openings-per-minute", "[default: 10]"),
        ("--openings-burst", "[default: 20]"),
        ("--max-deposit-per-day", "[default: 10000.00]"),
    ] {
        let from = text.find(&format!("{flag} <")).unwrap();
        let next = text[from + 2..]
            .find("\n      --")
            .map_or(text.len(), |n| from + 2 + n);
        assert!(
            text[from..next].contains(default),
            "{flag} should say {default}:\n{}",
            &text[from..next]
        );
    }
    let audit = Command::new(BIN)
        .args(["audit", "--help"])
        .output()
        .unwrap();
    let text = String::from_utf8(audit.stdout).unwrap();
    for command in ["verify", "show", "keygen"] {
        assert!(
            text.contains(command),
            "audit --help does not mention {command}"
        );
    }
    let keygen = Command::new(BIN)
        .args(["audit", "keygen", "--help"])
        .output()
        .unwrap();
    let text = String::from_utf8(keygen.stdout).unwrap();
    assert!(
        text.contains("--out") && text.contains("public key"),
        "{text}"
    );
    let add = Command::new(BIN)
        .args(["terminal", "add", "--help"])
        .output()
        .unwrap();
    let text = String::from_utf8(add.stdout).unwrap();
    for flag in [
        "--web",
        "--name",
        "--out",
        "--public-url",
        "--max-deposit",
        "--max-deposit-per-day",
        "[default: 2000.00]",
        "[default: 10000.00]",
    ] {
        assert!(
            text.contains(flag),
            "terminal add --help does not mention {flag}"
        );
    }
}

/// `--max-connections` is the cap on open connections, even below the session limit, and a
/// value the open-file limit cannot hold is refused before anything is created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_connections_means_what_it_says() {
    let dir = temp();
    let paths = Paths::new(dir.path());
    let zero = paths.command(&["--max-connections", "0"]);
    assert_eq!(zero.status.code(), Some(2), "clap refuses 0");
    let huge = paths.command(&["--max-connections", "4000000000"]);
    assert_eq!(huge.status.code(), Some(1));
    let said = String::from_utf8_lossy(&huge.stderr);
    assert!(said.contains("open-file limit"), "{said}");
    assert!(
        !paths.data.exists() && !paths.auth.exists(),
        "nothing created"
    );

    let mut bank = {
        let mut child = Command::new(BIN)
            .args(["--port", "0", "--max-connections", "2"])
            .args(["--request-head-timeout-secs", "2"])
            .args(paths.args())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let err = BufReader::new(child.stderr.take().unwrap());
        let addr = err
            .lines()
            .map_while(Result::ok)
            .find_map(|l| {
                l.split("serving on http://")
                    .nth(1)
                    .map(|r| r.split('/').next().unwrap().to_owned())
            })
            .expect("the bank prints its address");
        (child, addr)
    };
    let addr = bank.1.clone();
    let auth = load_auth_file(&paths.auth).unwrap();
    // Two silent connections hold both slots: a third (far below the 256 sessions) waits...
    let started = std::time::Instant::now();
    let silent = [
        tokio::net::TcpStream::connect(&addr).await.unwrap(),
        tokio::net::TcpStream::connect(&addr).await.unwrap(),
    ];
    let third =
        tokio::time::timeout(Duration::from_millis(1_000), Client::connect(&addr, &auth)).await;
    assert!(
        third.is_err(),
        "a third connection waits while two are open"
    );
    // ...until the bank drops them at the request-head deadline.
    let mut client = Client::connect(&addr, &auth).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(1_900));
    assert_eq!(
        client.call(&Request::Balance {}).await.unwrap(),
        error(protocol::ErrorCode::NotLoggedIn)
    );
    drop(silent);
    client.close().await.unwrap();
    let _ = bank.0.kill();
    let _ = bank.0.wait();
}

//! `atm-enroll` against a real bank: a one-time code gives this host its own terminal key and
//! auth file (pinning the bank), which the `atm` then uses; a code works once; bad input
//! changes nothing.

mod common;

use std::path::Path;
use std::process::Stdio;

use common::{line, snapshot, Env, HANG_GUARD};
use protocol::TerminalRole;
use tokio::io::AsyncWriteExt as _;

/// Runs `atm-enroll` in `dir` with `args`, `stdin` as its standard input.
async fn enroll_in(dir: &Path, args: &[&str], stdin: &str) -> common::Run {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_atm-enroll"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("atm-enroll starts");
    let mut input = child.stdin.take().unwrap();
    // A run that refuses its arguments exits without reading: a broken pipe is fine.
    let _ = input.write_all(stdin.as_bytes()).await;
    drop(input);
    let output = tokio::time::timeout(HANG_GUARD, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("atm-enroll {args:?} hung"))
        .expect("atm-enroll runs");
    common::Run {
        code: output.status.code().expect("an exit code"),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_gives_this_host_its_own_auth_file_once() {
    let env = Env::start().await;
    let port = env.port.to_string();
    let (code, _) = bank_server::admin::issue_enrollment_code(
        env.bank.ledger(),
        "host two",
        TerminalRole::Atm,
        bank_server::ledger::DepositCeilings::DEFAULT,
    )
    .unwrap();
    let code_text = format!("{}\n", code.to_text().as_str());

    let run = enroll_in(env.dir(), &["-p", &port, "-s", "host2.auth"], &code_text).await;
    assert_eq!(run.code, 0, "{run:?}");
    let own = atm_client::load_auth_file(env.path("host2.auth")).unwrap();
    let first = atm_client::load_auth_file(env.path("bank.auth")).unwrap();
    assert_eq!(run.stdout.trim(), own.terminal_id.as_str());
    assert_ne!(own.terminal_id, first.terminal_id, "a terminal of its own");
    assert!(own.psk != first.psk);
    assert!(own.bank == first.bank, "the same bank, pinned");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(env.path("host2.auth"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // The atm runs on it.
    let opened = env
        .atm(&["-s", "host2.auth", "-a", "carol", "-n", "10.00"])
        .await;
    assert_eq!(opened.code, 0, "{opened:?}");
    assert_eq!(opened.stdout.trim(), line("carol", "initial_balance", "10"));

    // Once: the same code again fails the handshake (63) and writes nothing.
    let before = snapshot(env.dir());
    let again = enroll_in(env.dir(), &["-p", &port, "-s", "host3.auth"], &code_text).await;
    assert_eq!((again.code, again.stdout.as_str()), (63, ""), "{again:?}");
    assert_eq!(snapshot(env.dir()), before);
    // The secret part of the code is nowhere in what the bank printed.
    let secret = &code.to_text()[13..];
    assert!(env.bank_lines().iter().all(|l| !l.contains(secret)));
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_255_and_uses_no_code() {
    let env = Env::start().await;
    let port = env.port.to_string();
    let (code, _) = bank_server::admin::issue_enrollment_code(
        env.bank.ledger(),
        "host",
        TerminalRole::Atm,
        bank_server::ledger::DepositCeilings::DEFAULT,
    )
    .unwrap();
    let code_text = format!("{}\n", code.to_text().as_str());
    let before = snapshot(env.dir());
    for (args, stdin) in [
        (vec!["-p", port.as_str()], code_text.as_str()),
        (
            vec!["-p", port.as_str(), "-s", "bank.auth"],
            code_text.as_str(),
        ),
        (
            vec!["-p", port.as_str(), "-s", "x.auth", "-q"],
            code_text.as_str(),
        ),
        (vec!["-p", "80", "-s", "x.auth"], code_text.as_str()),
        (vec!["-p", port.as_str(), "-s", "x.auth"], "not a code\n"),
        (vec!["-p", port.as_str(), "-s", "x.auth"], ""),
    ] {
        let run = enroll_in(env.dir(), &args, stdin).await;
        assert_eq!(
            (run.code, run.stdout.as_str()),
            (255, ""),
            "{args:?} {run:?}"
        );
    }
    assert_eq!(snapshot(env.dir()), before);
    // None of that used the code up.
    let run = enroll_in(env.dir(), &["-p", &port, "-s", "x.auth"], &code_text).await;
    assert_eq!(run.code, 0, "{run:?}");
    env.stop().await;
}

//! Test harness: a real bank on 127.0.0.1 port 0 (in-process, sled in a temp dir) and the real
//! `atm` binary run as a child process in its own working directory.
#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bank_server::{Argon2Params, Config, Output};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Fast Argon2 (card logins do not hash passwords; the bank still makes one dummy hash).
pub const TEST_ARGON2: Argon2Params = Argon2Params {
    m_kib: 1024,
    t: 1,
    p: 1,
};

/// A guard against hangs, far above the atm's own 10-second limit: a run that takes longer
/// fails the test instead of blocking CI. Not a speed assertion.
pub const HANG_GUARD: Duration = Duration::from_secs(60);

/// What one `atm` run did.
#[derive(Debug, Clone)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the `atm` binary in `dir` with exactly `args`.
pub async fn atm_in(dir: &Path, args: &[&str]) -> Run {
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_atm"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("atm starts");
    let output = tokio::time::timeout(HANG_GUARD, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("atm {args:?} hung"))
        .expect("atm runs");
    Run {
        code: output.status.code().expect("atm exits with a code"),
        stdout: String::from_utf8(output.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Every file in `dir` with its contents (the atm's working directory, for "nothing changed").
pub fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            let name = entry.file_name().into_string().unwrap();
            let contents = std::fs::read(entry.path()).unwrap_or_else(|_| b"<dir>".to_vec());
            (name, contents)
        })
        .collect()
}

/// A bank and a working directory holding its auth file.
pub struct Env {
    /// The atm's working directory; the bank writes `bank.auth` here.
    pub work: tempfile::TempDir,
    /// The bank's own files (sled, audit key).
    pub bank_dir: tempfile::TempDir,
    pub port: u16,
    pub lines: Arc<Mutex<Vec<String>>>,
    pub bank: bank_server::Bank,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl Env {
    /// A bank with the test defaults.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// A bank whose config `tweak` may change first.
    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> Self {
        let work = tempfile::tempdir().unwrap();
        let bank_dir = tempfile::tempdir().unwrap();
        let mut config = Config::new(
            bank_dir.path().join("data"),
            work.path().join("bank.auth"),
            bank_dir.path().join("audit.key"),
        );
        config.web_root = bank_dir.path().join("no-web-root");
        config.argon2 = TEST_ARGON2;
        // The BIBIFI bank's terminal, as `bank` makes it: no deposit ceilings, no openings
        // bucket.
        config.first_terminal = bank_server::ledger::DepositCeilings::NONE;
        config.openings = None;
        let (output, lines) = Output::memory();
        config.output = output;
        tweak(&mut config);
        let bank = tokio::task::spawn_blocking(move || bank_server::open(config))
            .await
            .unwrap()
            .expect("bank opens");
        lines.lock().unwrap().clear(); // `created`
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(bank_server::serve(listener, bank.clone(), async move {
            let _ = stopped.await;
        }));
        Self {
            work,
            bank_dir,
            port,
            lines,
            bank,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn dir(&self) -> &Path {
        self.work.path()
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.work.path().join(name)
    }

    /// Runs the atm with exactly `args` (no port added).
    pub async fn atm_raw(&self, args: &[&str]) -> Run {
        atm_in(self.dir(), args).await
    }

    /// Runs the atm with `args` plus `-p <this bank's port>`.
    pub async fn atm(&self, args: &[&str]) -> Run {
        let port = self.port.to_string();
        let mut all = args.to_vec();
        all.extend(["-p", &port]);
        self.atm_raw(&all).await
    }

    /// Runs the atm, requires exit 0, and returns the stdout line (without its newline).
    pub async fn ok(&self, args: &[&str]) -> String {
        let run = self.atm(args).await;
        assert_eq!(run.code, 0, "atm {args:?}: {run:?}");
        assert!(run.stdout.ends_with('\n'), "{run:?}");
        let line = run.stdout.trim_end_matches('\n');
        assert!(!line.contains('\n'), "one line: {run:?}");
        line.to_owned()
    }

    /// Runs the atm and requires `code` with nothing on stdout.
    pub async fn fails(&self, code: i32, args: &[&str]) -> Run {
        let run = self.atm(args).await;
        assert_eq!(run.code, code, "atm {args:?}: {run:?}");
        assert_eq!(run.stdout, "", "atm {args:?} printed on stdout");
        run
    }

    /// Opens `account` with `-n balance`.
    pub async fn open(&self, account: &str, balance: &str) -> String {
        self.ok(&["-a", account, "-n", balance]).await
    }

    /// The account's balance line as `atm -g` prints it.
    pub async fn balance(&self, account: &str) -> String {
        self.ok(&["-a", account, "-g"]).await
    }

    /// The bank's summary lines so far.
    pub fn bank_lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// The bank's transaction lines so far (without its `protocol_error` lines).
    pub fn transactions(&self) -> Vec<String> {
        let mut lines = self.bank_lines();
        lines.retain(|l| l != "protocol_error");
        lines
    }

    /// Graceful shutdown.
    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        let task = self.task.take().unwrap();
        tokio::time::timeout(HANG_GUARD, task)
            .await
            .expect("bank stops")
            .unwrap()
            .expect("bank stops cleanly");
    }
}

/// `{"account":"<name>","<field>":<number>}`.
pub fn line(account: &str, field: &str, number: &str) -> String {
    format!(
        "{{\"account\":{},\"{field}\":{number}}}",
        serde_json::to_string(account).unwrap()
    )
}

/// A port on 127.0.0.1 with nothing listening (bound, then released).
pub async fn closed_port() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    port
}

//! The BIBIFI `bank` binary as a child process in a temp working directory: it prints
//! `created` and writes the auth file, the real `atm` binary works against it, every invalid
//! invocation exits 255 having created nothing, SIGTERM and SIGINT exit 0, and a client that
//! connects and says nothing is reported as `protocol_error`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

const BANK: &str = env!("CARGO_BIN_EXE_bank");

/// A port on 127.0.0.1 that nothing listened on a moment ago.
/// A port that is free now, below Linux's ephemeral range (32768-60999): a port the kernel
/// hands out for port 0 may be taken as another connection's source port before the bank
/// binds it. (The spec's bank takes a fixed port, 1024-65535, never 0.)
fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let base = 20_000 + (std::process::id() % 1_000) as u16 * 10;
    loop {
        let port = base + NEXT.fetch_add(1, Ordering::Relaxed) % 2_000;
        if std::net::TcpListener::bind(("0.0.0.0", port)).is_ok() {
            return port;
        }
    }
}

/// The names in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The real `atm` binary of this workspace, built on first use next to the `bank` binary
/// (a test can only name binaries of its own package).
fn atm_binary() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let bank = Path::new(BANK);
            let release = bank.parent().and_then(Path::file_name) == Some("release".as_ref());
            let mut build = Command::new(env!("CARGO"));
            build.args(["build", "--quiet", "-p", "atm-cli", "--bin", "atm"]);
            if release {
                build.arg("--release");
            }
            let status = build.status().expect("cargo runs");
            assert!(status.success(), "building the atm failed");
            let atm = bank.with_file_name("atm");
            assert!(atm.is_file(), "{} was not built", atm.display());
            atm
        })
        .clone()
}

/// A running `bank`; killed if the test fails.
struct BankProcess {
    child: Child,
    lines: mpsc::Receiver<String>,
    stdout: Arc<Mutex<Vec<String>>>,
}

impl BankProcess {
    /// Starts `bank args` in `cwd` and waits for `created`.
    fn start(cwd: &Path, args: &[&str]) -> Self {
        Self::start_in(cwd, args, None)
    }

    /// [`Self::start`], with `BANK_DATA_DIR` set to `data_dir` if given.
    fn start_in(cwd: &Path, args: &[&str], data_dir: Option<&Path>) -> Self {
        let mut command = Command::new(BANK);
        command.env_remove("BANK_DATA_DIR");
        if let Some(dir) = data_dir {
            command.env("BANK_DATA_DIR", dir);
        }
        let mut child = command
            .args(args)
            .current_dir(cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let (tx, lines) = mpsc::channel();
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let all = stdout.clone();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                all.lock().unwrap().push(line.clone());
                let _ = tx.send(line);
            }
        });
        let bank = Self {
            child,
            lines,
            stdout,
        };
        assert_eq!(
            bank.next_line(Duration::from_secs(60)).as_deref(),
            Some("created"),
            "the bank's first line"
        );
        bank
    }

    fn next_line(&self, within: Duration) -> Option<String> {
        self.lines.recv_timeout(within).ok()
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits (bounded) for the process to exit and returns its exit code.
    fn wait(mut self) -> Option<i32> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("the bank did not exit");
    }
}

impl Drop for BankProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the atm in `cwd` and returns (exit code, stdout).
fn atm(cwd: &Path, args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(atm_binary())
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8(out.stdout).unwrap().trim_end().to_owned(),
    )
}

#[test]
fn it_creates_the_auth_file_and_the_atm_works_against_it() {
    let cwd = tempfile::tempdir().unwrap();
    let port = free_port().to_string();
    let bank = BankProcess::start(cwd.path(), &["-p", &port, "-s", "x.auth"]);
    // Only the auth file lands in the working directory; the data lives elsewhere.
    assert_eq!(listing(cwd.path()), ["x.auth"]);
    let auth = std::fs::read_to_string(cwd.path().join("x.auth")).unwrap();
    assert!(auth.starts_with(r#"{"terminal_id":"t-"#), "{auth}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(cwd.path().join("x.auth"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let run = |args: &[&str]| {
        let mut all = vec!["-p", &port, "-s", "x.auth"];
        all.extend_from_slice(args);
        atm(cwd.path(), &all)
    };
    assert_eq!(
        run(&["-a", "bob", "-n", "1000.00"]),
        (
            Some(0),
            r#"{"account":"bob","initial_balance":1000}"#.into()
        )
    );
    assert_eq!(
        run(&["-a", "bob", "-d", "100.00"]),
        (Some(0), r#"{"account":"bob","deposit":100}"#.into())
    );
    assert_eq!(
        run(&["-a", "bob", "-w", "63.10"]),
        (Some(0), r#"{"account":"bob","withdraw":63.1}"#.into())
    );
    assert_eq!(
        run(&["-a", "bob", "-g"]),
        (Some(0), r#"{"account":"bob","balance":1036.9}"#.into())
    );
    assert_eq!(run(&["-a", "bob", "-w", "2000.00"]).0, Some(255));
    // The bank printed the same lines, in order, after `created`.
    let want = [
        r#"{"account":"bob","initial_balance":1000}"#,
        r#"{"account":"bob","deposit":100}"#,
        r#"{"account":"bob","withdraw":63.1}"#,
        r#"{"account":"bob","balance":1036.9}"#,
    ];
    for line in want {
        assert_eq!(
            bank.next_line(Duration::from_secs(10)).as_deref(),
            Some(line)
        );
    }
    bank.signal("TERM");
    assert_eq!(bank.wait(), Some(0));
    assert_eq!(listing(cwd.path()), ["bob.card", "x.auth"]);
}

#[test]
fn sigterm_and_sigint_exit_0() {
    for signal in ["TERM", "INT"] {
        let cwd = tempfile::tempdir().unwrap();
        let port = free_port().to_string();
        let bank = BankProcess::start(cwd.path(), &["-p", &port]);
        assert_eq!(listing(cwd.path()), ["bank.auth"], "the default auth file");
        bank.signal(signal);
        assert_eq!(bank.wait(), Some(0), "SIG{signal}");
    }
}

#[test]
fn a_kept_data_dir_holds_the_database_the_audit_key_the_bank_key_and_the_checkpoints() {
    let cwd = tempfile::tempdir().unwrap();
    let kept = tempfile::tempdir().unwrap();
    let dir = kept.path().join("bank");
    let port = free_port().to_string();
    let bank = BankProcess::start_in(cwd.path(), &["-p", &port], Some(&dir));
    assert_eq!(listing(cwd.path()), ["bank.auth"]);
    bank.signal("TERM");
    assert_eq!(bank.wait(), Some(0));
    assert_eq!(
        listing(&dir),
        ["audit.key", "data", "data.bank-key", "data.checkpoint"]
    );
    // Owner-only: the kept directory and the data directory, and the key files in it.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("data")), 0o700);
        assert_eq!(mode(&dir.join("audit.key")), 0o600);
        assert_eq!(mode(&dir.join("data.bank-key")), 0o600);
    }
    // The auditor's private key of the lab pair the bank made (it keeps only the public key).
    let key = std::fs::read_to_string(dir.join("audit.key")).unwrap();
    assert!(key.starts_with("auditor-x25519 "), "{key}");
    // A kept directory that exists already is refused: every start is a fresh bank.
    std::fs::remove_file(cwd.path().join("bank.auth")).unwrap();
    let out = Command::new(BANK)
        .args(["-p", &port])
        .current_dir(cwd.path())
        .env("BANK_DATA_DIR", &dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(255));
    assert!(out.stdout.is_empty());
    assert!(listing(cwd.path()).is_empty());
}

#[test]
fn invalid_invocations_exit_255_and_create_nothing() {
    let port = free_port().to_string();
    let cases: Vec<Vec<&str>> = vec![
        vec!["-p", "80"],
        vec!["-p", "65536"],
        vec!["-p", "03000"],
        vec!["-p", "1023"],
        vec!["-p", ""],
        vec!["-p"],
        vec!["-x"],
        vec!["-h"],
        vec!["--help"],
        vec!["-p", &port, "-p", &port],
        vec!["-s", "a.auth", "-s", "a.auth"],
        vec!["-p", &port, "operand"],
        vec!["operand"],
        vec!["--"],
        vec!["-p", &port, "--"],
        vec!["-"],
        vec!["-s", "."],
        vec!["-s", ".."],
        vec!["-s", "Bank.auth"],
        vec!["-s", "sub/x.auth"],
    ];
    for args in cases {
        let cwd = tempfile::tempdir().unwrap();
        let kept = cwd.path().join("kept");
        let out = Command::new(BANK)
            .args(&args)
            .current_dir(cwd.path())
            .env("BANK_DATA_DIR", &kept)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(255), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}: nothing on stdout");
        assert!(listing(cwd.path()).is_empty(), "{args:?} created something");
    }
}

#[test]
fn an_existing_auth_file_is_refused_untouched() {
    let cwd = tempfile::tempdir().unwrap();
    let port = free_port().to_string();
    std::fs::write(cwd.path().join("x.auth"), "someone else's\n").unwrap();
    std::fs::write(cwd.path().join("bank.auth"), "").unwrap();
    for args in [&["-p", &port, "-s", "x.auth"][..], &["-p", &port]] {
        let out = Command::new(BANK)
            .args(args)
            .current_dir(cwd.path())
            .env("BANK_DATA_DIR", cwd.path().join("kept"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(255), "{args:?}");
        assert!(out.stdout.is_empty());
        assert_eq!(listing(cwd.path()), ["bank.auth", "x.auth"]);
    }
    assert_eq!(
        std::fs::read_to_string(cwd.path().join("x.auth")).unwrap(),
        "someone else's\n"
    );
}

#[test]
fn a_silent_client_is_a_protocol_error() {
    let cwd = tempfile::tempdir().unwrap();
    let port = free_port();
    let bank = BankProcess::start(cwd.path(), &["-p", &port.to_string()]);
    let connected = Instant::now();
    let _silent = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    // The BIBIFI deadline is 10 s: reported at it, not before, and not much after.
    assert_eq!(
        bank.next_line(Duration::from_secs(20)).as_deref(),
        Some("protocol_error")
    );
    let took = connected.elapsed();
    assert!(
        (Duration::from_millis(9_500)..Duration::from_millis(12_500)).contains(&took),
        "protocol_error after {took:?}"
    );
    assert_eq!(
        bank.stdout.lock().unwrap().as_slice(),
        ["created", "protocol_error"]
    );
}

//! A real `bank-server` process for the tests that run the binary: its paths in a temp
//! directory, starting it on port 0 (alone, or as one node of several on one PostgreSQL
//! database), its output, signals and exit, and starts that must be refused.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_bank-server");

pub struct Paths {
    pub data: PathBuf,
    pub auth: PathBuf,
    pub key: PathBuf,
    pub web: PathBuf,
    /// `--engine` for every command (`None`: the default, sled).
    pub engine: Option<&'static str>,
}

impl Paths {
    pub fn new(dir: &Path) -> Self {
        Self {
            data: dir.join("data"),
            auth: dir.join("bank.auth"),
            key: dir.join("audit.key"),
            web: dir.join("web"),
            engine: None,
        }
    }

    /// The same paths, every command given `--engine engine`.
    pub fn with_engine(self, engine: &'static str) -> Self {
        Self {
            engine: Some(engine),
            ..self
        }
    }

    pub fn args(&self) -> Vec<String> {
        [
            ("--data-dir", &self.data),
            ("--auth-file", &self.auth),
            ("--audit-key-file", &self.key),
            ("--web-root", &self.web),
        ]
        .into_iter()
        .flat_map(|(flag, path)| [flag.to_owned(), path.display().to_string()])
        .chain(
            self.engine
                .into_iter()
                .flat_map(|engine| ["--engine".to_owned(), engine.to_owned()]),
        )
        .collect()
    }

    pub fn command(&self, extra: &[&str]) -> Output {
        Command::new(BIN)
            .args(extra)
            .args(self.args())
            .env("RUST_LOG", "warn")
            .output()
            .unwrap()
    }
}

/// A running bank process; killed if the test fails.
pub struct BankProcess {
    pub child: Child,
    pub addr: String,
    pub stdout: Arc<Mutex<Vec<String>>>,
    pub stderr: Arc<Mutex<Vec<String>>>,
}

impl BankProcess {
    pub fn start(paths: &Paths) -> Self {
        Self::start_logging(paths, "warn")
    }

    /// Started as a user would, but its first terminal (made if this start creates the bank)
    /// has no deposit ceilings: these tests load it past the defaults.
    pub fn start_logging(paths: &Paths, log: &str) -> Self {
        Self::start_with(paths, &[], log)
    }

    /// Starts the bank with `extra` flags before the paths' own.
    pub fn start_with(paths: &Paths, extra: &[&str], log: &str) -> Self {
        let mut child = Command::new(BIN)
            .args(["--port", "0", "--bind", "127.0.0.1"])
            .args(extra)
            .args(["--max-deposit", "none", "--max-deposit-per-day", "none"])
            .args(paths.args())
            .env("RUST_LOG", log)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let lines = stdout.clone();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        });
        let (tx, rx) = mpsc::channel();
        let err = child.stderr.take().unwrap();
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let err_lines = stderr.clone();
        std::thread::spawn(move || {
            // Keep draining so the bank never blocks on a full pipe.
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("serving on http://").nth(1) {
                    let addr = rest.split('/').next().unwrap().to_owned();
                    let _ = tx.send(addr);
                }
                err_lines.lock().unwrap().push(line);
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the bank prints its address");
        Self {
            child,
            addr,
            stdout,
            stderr,
        }
    }

    pub fn stdout(&self) -> Vec<String> {
        self.stdout.lock().unwrap().clone()
    }

    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit (bounded) and returns whether it exited 0.
    pub fn wait(mut self) -> bool {
        for _ in 0..3_000 {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.success();
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

/// The flags of node `name` of a bank in the PostgreSQL database at `url`: the bank's key file
/// `dir/bank.key`, which every node shares.
pub fn node_flags(dir: &Path, name: &str, url: &str) -> Vec<String> {
    let key = dir.join("bank.key").display().to_string();
    [
        "--database-url",
        url,
        "--bank-key-file",
        &key,
        "--node-name",
        name,
    ]
    .map(str::to_owned)
    .to_vec()
}

/// Starts node `name` (its files in `dir/name`) of the bank in the database at `url`, with
/// `extra` flags.
pub fn start_node(dir: &Path, name: &str, url: &str, extra: &[&str]) -> (Paths, BankProcess) {
    let paths = Paths::new(&dir.join(name));
    std::fs::create_dir_all(dir.join(name)).unwrap();
    let flags = node_flags(dir, name, url);
    let mut args: Vec<&str> = flags.iter().map(String::as_str).collect();
    args.extend_from_slice(extra);
    let bank = BankProcess::start_with(&paths, &args, "warn");
    (paths, bank)
}

/// Runs a start of the bank with `flags` that must be refused, logging at `log` (bounded: a
/// start that serves is killed and fails the test); what it wrote. It exited non-zero and
/// never said it was serving.
pub fn refused_start(paths: &Paths, flags: &[String], log: &str) -> Output {
    let mut child = Command::new(BIN)
        .args(["--port", "0", "--bind", "127.0.0.1"])
        .args(flags)
        .args(paths.args())
        .env("RUST_LOG", log)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the start was not refused");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success(), "refused starts exit non-zero");
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("serving on"),
        "a refused start served"
    );
    out
}

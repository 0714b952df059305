//! Real processes for the tests that need them: `bank-server` nodes (the binary, built here
//! if needed) and HAProxy in front of them with the repo's `deploy/haproxy.cfg`; each killed
//! (by its own handle) when dropped.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use crate::{repo_root, Res};

/// Lines a child process wrote, kept as they come (its pipe is always drained).
pub type Lines = Arc<Mutex<Vec<String>>>;

/// Reads `from` line by line into `into` on a thread; each line also goes to `seen`.
fn drain(from: impl std::io::Read + Send + 'static, into: Lines, seen: mpsc::Sender<String>) {
    std::thread::spawn(move || {
        for line in BufReader::new(from).lines().map_while(Result::ok) {
            let _ = seen.send(line.clone());
            if let Ok(mut lines) = into.lock() {
                lines.push(line);
            }
        }
    });
}

/// A free port on 127.0.0.1 now (another process could take it before it is used).
pub fn free_port() -> Res<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The `bank-server` binary: `$BANK_SERVER_BIN`, else the one `cargo build -p bank-server`
/// makes (run now, so it is never stale) beside this test's own profile directory.
pub fn bank_server_bin() -> Res<PathBuf> {
    if let Some(bin) = std::env::var_os("BANK_SERVER_BIN") {
        return Ok(PathBuf::from(bin));
    }
    // This test runs as <target>/<profile>/deps/<test>-<hash>; the binary goes beside deps.
    let exe = std::env::current_exe()?;
    let profile = exe
        .parent()
        .and_then(Path::parent)
        .ok_or("the test binary is not in <target>/<profile>/deps")?;
    let mut build = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    build.args([
        "build",
        "--quiet",
        "-p",
        "bank-server",
        "--bin",
        "bank-server",
    ]);
    if profile.file_name().is_some_and(|name| name == "release") {
        build.arg("--release");
    }
    let status = build.current_dir(repo_root()).status()?;
    if !status.success() {
        return Err(format!("cargo build -p bank-server failed: {status}").into());
    }
    let bin = profile.join("bank-server");
    if !bin.is_file() {
        return Err(format!("no {}", bin.display()).into());
    }
    Ok(bin)
}

/// A `bank-server` node on a shared PostgreSQL database: serving on 127.0.0.1 (a port it
/// picks), its standard output (one JSON line per transaction) and error kept.
pub struct BankNode {
    /// The node's name (`--node-name`).
    pub name: String,
    /// Where it serves (`127.0.0.1:port`).
    pub addr: String,
    /// Its data directory (admin socket, checkpoint beside it).
    pub data: PathBuf,
    /// Its auth file (written by the node that creates the bank).
    pub auth: PathBuf,
    /// What it printed on standard output.
    pub stdout: Lines,
    /// What it printed on standard error.
    pub stderr: Lines,
    child: Child,
}

/// The flags every node and every admin command of one bank share.
#[derive(Clone, Debug)]
pub struct NodeFlags {
    /// The bank's binary.
    pub bin: PathBuf,
    /// The PostgreSQL URL.
    pub database_url: String,
    /// The bank's key file, shared by the nodes.
    pub bank_key: PathBuf,
    /// The URL browsers reach the bank at (the balancer's).
    pub public_url: String,
    /// The web ATM's bundle.
    pub web_root: PathBuf,
}

impl NodeFlags {
    /// The command for node `name` under `dir` (`dir/<name>/…`), with these flags.
    fn command(&self, dir: &Path, name: &str) -> Command {
        let home = dir.join(name);
        let mut c = Command::new(&self.bin);
        c.arg("--database-url")
            .arg(&self.database_url)
            .arg("--bank-key-file")
            .arg(&self.bank_key)
            .arg("--public-url")
            .arg(&self.public_url)
            .arg("--web-root")
            .arg(&self.web_root)
            .arg("--node-name")
            .arg(name)
            .arg("--data-dir")
            .arg(home.join("data"))
            .arg("--auth-file")
            .arg(home.join("bank.auth"))
            .arg("--audit-key-file")
            .arg(home.join("audit.key"))
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null());
        c
    }

    /// Starts node `name` (its files under `dir/<name>`) and waits until it serves.
    pub fn start(&self, dir: &Path, name: &str) -> Res<BankNode> {
        std::fs::create_dir_all(dir.join(name))?;
        let mut child = self
            .command(dir, name)
            .args(["--bind", "127.0.0.1", "--port", "0", "serve"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let (stdout, stderr) = (Lines::default(), Lines::default());
        let (tx, rx) = mpsc::channel();
        let (out, err) = (child.stdout.take(), child.stderr.take());
        let (Some(out), Some(err)) = (out, err) else {
            return Err("no pipes".into());
        };
        drain(out, stdout.clone(), mpsc::channel().0);
        drain(err, stderr.clone(), tx);
        let mut node = BankNode {
            name: name.to_owned(),
            addr: String::new(),
            data: dir.join(name).join("data"),
            auth: dir.join(name).join("bank.auth"),
            stdout,
            stderr,
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            if let Some(rest) = line.split("serving on http://").nth(1) {
                node.addr = rest.split('/').next().unwrap_or_default().to_owned();
                return Ok(node);
            }
        }
        Err(format!("{name} did not start: {:?}", node.stderr_lines()).into())
    }

    /// Runs an admin command (`terminal add --web`, say) as node `name` (through its admin
    /// socket while it runs); its standard output when it succeeds.
    pub fn admin(&self, dir: &Path, name: &str, args: &[&str]) -> Res<String> {
        let out = self.command(dir, name).args(args).output()?;
        if !out.status.success() {
            return Err(
                format!("{args:?} failed: {}", String::from_utf8_lossy(&out.stderr)).into(),
            );
        }
        Ok(String::from_utf8(out.stdout)?)
    }
}

impl BankNode {
    /// Its standard output so far.
    pub fn stdout_lines(&self) -> Vec<String> {
        self.stdout.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Its standard error so far.
    pub fn stderr_lines(&self) -> Vec<String> {
        self.stderr.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Sends it a signal (`STOP`, `TERM`, …) with `kill`.
    pub fn signal(&self, name: &str) -> Res {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()?;
        if !status.success() {
            return Err(format!("kill -{name} {}: {status}", self.child.id()).into());
        }
        Ok(())
    }

    /// `kill -9`, and waits for it to be gone.
    pub fn kill(mut self) -> Res {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for BankNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// HAProxy in the foreground (`-db`) with `deploy/haproxy.cfg`, its addresses given through
/// the environment the file reads; its log (standard error) kept.
pub struct Balancer {
    /// Where it listens (`127.0.0.1:port`).
    pub addr: String,
    /// Its log.
    pub log: Lines,
    child: Child,
}

/// The repo's example configuration, the one the README documents.
pub fn haproxy_cfg() -> PathBuf {
    repo_root().join("deploy").join("haproxy.cfg")
}

/// Debian's HAProxy: `$HAPROXY`, else `/usr/sbin/haproxy` (`cargo xtask setup` installs it).
fn haproxy_bin() -> PathBuf {
    std::env::var_os("HAPROXY").map_or_else(|| "/usr/sbin/haproxy".into(), PathBuf::from)
}

impl Balancer {
    /// Checks the configuration, starts HAProxy on `port` in front of `nodes` (in order:
    /// `BANK_NODE1`, `BANK_NODE2`, …) and waits until it answers `/healthz` with 200.
    pub fn start(port: u16, nodes: &[&str]) -> Res<Self> {
        let addr = format!("127.0.0.1:{port}");
        let env: HashMap<String, String> =
            std::iter::once(("BANK_LISTEN".to_owned(), addr.clone()))
                .chain(
                    nodes
                        .iter()
                        .enumerate()
                        .map(|(i, n)| (format!("BANK_NODE{}", i + 1), (*n).to_owned())),
                )
                .collect();
        let check = Command::new(haproxy_bin())
            .arg("-c")
            .arg("-f")
            .arg(haproxy_cfg())
            .envs(&env)
            .output()
            .map_err(|e| {
                format!(
                    "{}: {e} (cargo xtask setup installs it)",
                    haproxy_bin().display()
                )
            })?;
        if !check.status.success() {
            return Err(format!(
                "haproxy -c: {}{}",
                String::from_utf8_lossy(&check.stdout),
                String::from_utf8_lossy(&check.stderr)
            )
            .into());
        }
        let mut child = Command::new(haproxy_bin())
            .arg("-f")
            .arg(haproxy_cfg())
            .arg("-db")
            .envs(&env)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let log = Lines::default();
        let err = child.stderr.take().ok_or("no pipe")?;
        drain(err, log.clone(), mpsc::channel().0);
        let balancer = Self { addr, log, child };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if balancer.healthz().is_ok_and(|status| status == 200) {
                return Ok(balancer);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!("haproxy did not serve: {:?}", balancer.log_lines()).into())
    }

    /// The status of `GET /healthz` through the balancer.
    pub fn healthz(&self) -> Res<u16> {
        use std::io::{Read as _, Write as _};
        let mut stream = std::net::TcpStream::connect(&self.addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        write!(
            stream,
            "GET /healthz HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.addr
        )?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer)?;
        let status = answer
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("not HTTP: {answer:?}"))?;
        Ok(status)
    }

    /// Its log so far.
    pub fn log_lines(&self) -> Vec<String> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

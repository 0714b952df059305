//! The server processes the benchmarks drive: the release bank (optionally under a wrapper such
//! as strace) and the bare echo floor, started on port 0 and stopped on drop.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use atm_client::{load_auth_file, AuthFile};

use crate::proc;

/// A server process this run started; stopped on drop.
pub(crate) struct Server {
    child: Child,
    /// The server itself: the child, or the child's child when it runs under a wrapper.
    pid: u32,
    pub(crate) addr: String,
    pub(crate) command: String,
    /// From spawning the process to its `serving on` line.
    pub(crate) started_in: Duration,
    exited: bool,
}

impl Server {
    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// Sends `signal` (`INT`, `TERM`) to the server and waits for the process this run started
    /// to exit (SIGKILL after 60 s); returns how long that took.
    pub(crate) fn stop(&mut self, signal: &str) -> Duration {
        let began = Instant::now();
        if self.exited {
            return Duration::ZERO;
        }
        self.exited = true;
        let _ = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid.to_string())
            .status();
        let deadline = began + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return began.elapsed();
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if self.pid != self.child.id() {
            let _ = Command::new("kill")
                .arg("-KILL")
                .arg(self.pid.to_string())
                .status();
        }
        began.elapsed()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // SIGTERM (the bank flushes and exits 0), SIGKILL if it lingers.
        self.stop("TERM");
    }
}

pub(crate) fn err(e: impl core::fmt::Display) -> String {
    e.to_string()
}

/// Starts the echo floor (`bank-load echo --port 0` from this same binary).
pub(crate) fn start_echo() -> Result<Server, String> {
    let exe = std::env::current_exe().map_err(err)?;
    let mut child = Command::new(&exe)
        .args(["echo", "--port", "0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start the echo server: {e}"))?;
    let stdout = child.stdout.take().ok_or("echo server has no stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).map_err(err)?;
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .ok_or_else(|| format!("echo server said {line:?}"))?
        .to_owned();
    Ok(Server {
        pid: child.id(),
        child,
        addr,
        command: format!("{} echo --port 0", exe.display()),
        started_in: Duration::ZERO,
        exited: false,
    })
}

/// Starts the release bank on port 0 in a fresh directory under `dir`, as a user would.
pub(crate) fn start_bank(
    bin: &Path,
    dir: &Path,
    max_sessions: usize,
) -> Result<(Server, AuthFile), String> {
    let server = spawn_bank(bin, &[], dir, max_sessions, &[])?;
    let auth = load_auth_file(dir.join("bank.auth")).map_err(err)?;
    Ok((server, auth))
}

/// Starts the bank on port 0 with its files under `dir` (made on first start, reused after),
/// optionally under `wrapper` (a program and its arguments, e.g. `strace -c ...`), and waits
/// for its `serving on` line; `extra` arguments go after the usual ones.
pub(crate) fn spawn_bank(
    bin: &Path,
    wrapper: &[String],
    dir: &Path,
    max_sessions: usize,
    extra: &[String],
) -> Result<Server, String> {
    let log = dir.join("bank.log");
    let mut args: Vec<String> = vec![
        "--port".into(),
        "0".into(),
        "--data-dir".into(),
        dir.join("data").display().to_string(),
        "--auth-file".into(),
        dir.join("bank.auth").display().to_string(),
        "--audit-key-file".into(),
        dir.join("audit.key").display().to_string(),
        "--web-root".into(),
        dir.join("no-web-root").display().to_string(),
        "--max-sessions".into(),
        max_sessions.to_string(),
        "--max-connections".into(),
        (max_sessions + 64).to_string(),
        // Every load session comes from 127.0.0.1.
        "--max-connections-per-ip".into(),
        (max_sessions + 64).to_string(),
        // One terminal opens every load account (1000.00 each) and deposits without pause:
        // its first terminal has no deposit ceilings.
        "--max-deposit".into(),
        "none".into(),
        "--max-deposit-per-day".into(),
        "none".into(),
        // ...and opens every session's account at once.
        "--openings-per-minute".into(),
        "none".into(),
    ];
    args.extend_from_slice(extra);
    let mut command = match wrapper.split_first() {
        Some((program, rest)) => {
            let mut c = Command::new(program);
            c.args(rest).arg(bin);
            c
        }
        None => Command::new(bin),
    };
    let spawned = Instant::now();
    let child = command
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).map_err(err)?)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
    let mut server = Server {
        pid: child.id(),
        child,
        addr: String::new(),
        command: format!(
            "bank-server {} >/dev/null 2>bank.log",
            args.iter()
                .map(|a| a.replace(&dir.display().to_string(), "$TMP"))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        started_in: Duration::ZERO,
        exited: false,
    };
    let deadline = spawned + Duration::from_secs(120);
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        // Only a whole address counts: the log may be read while the line is half written
        // (a cut port once sent the load to some other service).
        let whole = text
            .split("serving on http://")
            .nth(1)
            .and_then(|rest| rest.split_once('/'));
        if let Some((addr, _)) = whole {
            server.started_in = spawned.elapsed();
            server.addr = addr.to_owned();
            break;
        }
        if let Ok(Some(status)) = server.child.try_wait() {
            server.exited = true;
            return Err(format!("the bank exited ({status}): {text}"));
        }
        if Instant::now() > deadline {
            return Err(format!("the bank did not start: {text}"));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    if !wrapper.is_empty() {
        server.pid = proc::child_of(server.child.id())
            .ok_or_else(|| format!("{} started no bank", wrapper.join(" ")))?;
    }
    Ok(server)
}

pub(crate) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

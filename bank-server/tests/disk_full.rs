//! A full disk under the real `bank-server` binary (its data directory on a small tmpfs in a
//! private mount namespace): a login writes nothing, a failed write turns `/healthz` to 503 and
//! stops the bank (exit 75), a restart on the still-full disk fails naming the directory, and
//! once space is freed a restart serves with every acknowledged deposit intact.
#![cfg(target_os = "linux")]

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use atm_client::{load_auth_file, Client};
use common::process::Paths;
use common::*;
use protocol::{CardSecret, Cents, ErrorCode, Request, Response};
use rand_core::OsRng;
use sha2::{Digest, Sha256};

const BIN: &str = env!("CARGO_BIN_EXE_bank-server");
/// Room for the bank's database and little else.
const TMPFS_SIZE: &str = "24m";
/// `ENOSPC` on Linux.
const ENOSPC: i32 = 28;

/// A private mount namespace with a small tmpfs mounted at `mount`, kept alive by a `sleep`
/// (the tmpfs, and what the bank wrote there, outlives each bank process; it goes when the
/// namespace does).
struct Namespace {
    holder: Child,
    mount: PathBuf,
}

impl Namespace {
    fn create(mount: &Path) -> Result<Self, String> {
        let mut holder = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg(format!(
                "mount -t tmpfs -o size={TMPFS_SIZE} tmpfs \"$1\" && echo mounted && exec sleep 3600"
            ))
            .arg("sh")
            .arg(mount)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run unshare: {e}"))?;
        let mut line = String::new();
        let _ = BufReader::new(holder.stdout.take().unwrap()).read_line(&mut line);
        if line.trim() != "mounted" {
            let _ = holder.kill();
            let out = holder.wait_with_output().map_err(|e| e.to_string())?;
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
        }
        Ok(Self {
            holder,
            mount: mount.to_owned(),
        })
    }

    /// `relative` inside the tmpfs, as this process (outside the namespace) reaches it.
    fn outside(&self, relative: &str) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root", self.holder.id()))
            .join(self.mount.strip_prefix("/").unwrap())
            .join(relative)
    }

    /// `relative` inside the tmpfs, as a process in the namespace names it.
    fn inside(&self, relative: &str) -> PathBuf {
        self.mount.join(relative)
    }

    /// The bank binary, run in the namespace.
    fn bank(&self) -> Command {
        let mut command = Command::new("nsenter");
        command
            .arg(format!("--mount=/proc/{}/ns/mnt", self.holder.id()))
            .arg("--")
            .arg(BIN);
        command
    }

    /// The bank serving on `paths` on a free loopback port, its stderr piped.
    fn serve(&self, paths: &Paths) -> Child {
        self.bank()
            .args(["--port", "0", "--bind", "127.0.0.1"])
            .args(paths.args())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let uid = status.lines().find(|l| l.starts_with("Uid:"))?;
            uid.split_whitespace().nth(1).map(|real| real == "0")
        })
        .unwrap_or(false)
}

/// The namespace, or `None` (said loudly) where this machine does not allow one. CI runs as
/// root and sets `CI`: there it must work.
fn namespace_or_skip(mount: &Path) -> Option<Namespace> {
    let why = if is_root() {
        match Namespace::create(mount) {
            Ok(namespace) => return Some(namespace),
            Err(e) => format!("unshare/mount failed: {e}"),
        }
    } else {
        "not root".to_owned()
    };
    assert!(
        std::env::var_os("CI").is_none(),
        "the disk-full test must run in CI, but cannot mount a tmpfs in a private mount \
         namespace: {why}"
    );
    eprintln!(
        "\n*** SKIPPED disk_full: it needs root to mount a tmpfs in a private mount namespace \
         ({why}); NOTHING WAS TESTED ***\n"
    );
    None
}

/// A bank process in the namespace; killed if the test fails.
struct BankProcess {
    child: Child,
    addr: String,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl BankProcess {
    /// Starts the bank and waits for it to serve.
    fn start(namespace: &Namespace, paths: &Paths) -> Self {
        let mut child = namespace.serve(paths);
        let (tx, rx) = mpsc::channel();
        let err = child.stderr.take().unwrap();
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let lines = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("serving on http://").nth(1) {
                    let _ = tx.send(rest.split('/').next().unwrap().to_owned());
                }
                lines.lock().unwrap().push(line);
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(addr) => addr,
            Err(_) => panic!(
                "the bank did not serve: {}",
                stderr.lock().unwrap().join("\n")
            ),
        };
        Self {
            child,
            addr,
            stderr,
        }
    }

    /// Waits (bounded) for the process to exit; its status and stderr.
    fn exited(mut self) -> (ExitStatus, String) {
        let status = wait_bounded(&mut self.child);
        // The reader thread sees EOF once the process is gone.
        std::thread::sleep(Duration::from_millis(100));
        let stderr = self.stderr.lock().unwrap().join("\n");
        (status, stderr)
    }

    /// Waits for the bank to stop for lack of space: exit 75 (EX_TEMPFAIL), the error and
    /// the data directory `data_dir` on its stderr.
    fn stopped_for_lack_of_space(self, data_dir: &str) {
        let (status, stderr) = self.exited();
        eprintln!("the bank stopped with {status}:\n{stderr}");
        assert_eq!(status.code(), Some(75), "{stderr}");
        assert!(
            stderr.contains("No space left on device") && stderr.contains(data_dir),
            "{stderr}"
        );
    }
}

impl Drop for BankProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_bounded(child: &mut Child) -> ExitStatus {
    for _ in 0..6_000 {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    panic!("the bank did not exit within 60 s");
}

/// Writes zeros to `path` until the file system is full (`ENOSPC`); returns the bytes written.
fn fill(path: &Path) -> u64 {
    let mut file = std::fs::File::create(path).unwrap();
    let mut written = 0;
    for chunk in [1 << 20, 4096, 1] {
        let zeros = vec![0u8; chunk];
        loop {
            match file.write(&zeros) {
                Ok(0) => panic!("a write of 0 bytes"),
                Ok(n) => written += n as u64,
                Err(e) if e.raw_os_error() == Some(ENOSPC) => break,
                Err(e) => panic!("filling {}: {e}", path.display()),
            }
        }
    }
    written
}

/// Every file under `dir` but the admin socket: its length and SHA-256.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (u64, [u8; 32])> {
    let mut files = BTreeMap::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(next) = pending.pop() {
        for entry in std::fs::read_dir(&next).unwrap() {
            let entry = entry.unwrap();
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                pending.push(entry.path());
            } else if kind.is_file() {
                let bytes = std::fs::read(entry.path()).unwrap();
                let relative = entry.path().strip_prefix(dir).unwrap().to_owned();
                files.insert(
                    relative,
                    (bytes.len() as u64, Sha256::digest(&bytes).into()),
                );
            }
        }
    }
    files
}

fn card_login(card: &CardSecret) -> Request {
    Request::CardLogin {
        username: username("carol"),
        card: card.clone(),
    }
}

fn deposited(reply: &Response) -> Option<u64> {
    match reply {
        Response::Deposited { balance_cents, .. } => Some(balance_cents.0),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_stops_the_bank_and_a_restart_keeps_every_acknowledged_deposit() {
    full_disk(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_redb_a_full_disk_stops_the_bank_and_a_restart_keeps_every_acknowledged_deposit() {
    full_disk(Some("redb")).await;
}

/// The full-disk story on `engine` (`None`: the default).
async fn full_disk(engine: Option<&'static str>) {
    const OPENING: u64 = 100_000;
    let dir = temp();
    let mount = dir.path().join("tmpfs");
    std::fs::create_dir(&mount).unwrap();
    let Some(namespace) = namespace_or_skip(&mount) else {
        return;
    };
    // The bank's files outside the tmpfs, and its data directory inside.
    let paths = Paths {
        data: namespace.inside("data"),
        auth: dir.path().join("bank.auth"),
        key: dir.path().join("audit.key"),
        web: dir.path().join("web"),
        engine,
    };
    let bank = BankProcess::start(&namespace, &paths);
    let auth = load_auth_file(&paths.auth).unwrap();
    let connect = |addr: String| {
        let auth = auth.clone();
        async move { Client::connect(&addr, &auth).await.unwrap() }
    };
    let card = CardSecret::random(&mut OsRng);
    let mut opener = connect(bank.addr.clone()).await;
    let open = Request::OpenCardAccount {
        username: username("carol"),
        initial_cents: Cents(OPENING),
        txid: txid(),
        card: card.clone(),
    };
    let reply = opener.call(&open).await.unwrap();
    assert!(matches!(reply, Response::AccountOpened { .. }), "{reply:?}");
    // Deposits acknowledged on a healthy disk, then more until the disk fails (below).
    let mut acked: Vec<(Request, u64)> = Vec::new();
    for i in 0..20 {
        let request = deposit_req(10_000 + i);
        let reply = opener.call(&request).await.unwrap();
        acked.push((
            request,
            deposited(&reply).expect("a deposit on a healthy disk"),
        ));
    }
    opener.close().await.unwrap();

    // The disk fills up while the bank runs.
    let filler = namespace.outside("filler");
    let filled = fill(&filler);
    eprintln!("filled the tmpfs with {filled} bytes");

    // A card login on the full disk succeeds and writes nothing: every file of the database
    // is unchanged (after waiting out sled's 500 ms background flush).
    let data_outside = namespace.outside("data");
    let before = snapshot(&data_outside);
    let mut client = connect(bank.addr.clone()).await;
    let reply = client.call(&card_login(&card)).await.unwrap();
    let healthy = acked.last().map(|(_, balance)| *balance);
    assert!(
        matches!(reply, Response::Welcome { balance_cents, .. } if Some(balance_cents.0) == healthy),
        "{reply:?}"
    );
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(
        snapshot(&data_outside),
        before,
        "a successful login wrote to the database"
    );
    let (status, body) = http_get(&bank.addr, "/healthz").await;
    assert!(
        status.contains("200") && body.trim() == "ok",
        "{status} {body}"
    );

    // Deposits until the storage fails: the failing one is answered `internal`.
    let on_healthy_disk = acked.len();
    let mut failed = None;
    for i in 0..20_000 {
        let request = deposit_req(100 + i);
        let reply = client.call(&request).await.unwrap();
        if let Some(balance) = deposited(&reply) {
            acked.push((request, balance));
            continue;
        }
        assert_eq!(reply, error(ErrorCode::Internal), "after {i} deposits");
        failed = Some(request);
        break;
    }
    let failed = failed.expect("a deposit fails on a full disk");
    eprintln!(
        "{} deposits acknowledged on the full disk before one failed",
        acked.len() - on_healthy_disk
    );

    // While the fault stands, /healthz says so (generically)...
    let (status, body) = http_get(&bank.addr, "/healthz").await;
    assert!(status.contains("503"), "{status}");
    assert_eq!(body.trim(), "storage failing");
    // ...and new sessions are refused with 503...
    assert!(matches!(
        atm_client::Connection::open(&bank.addr).await,
        Err(atm_client::ClientError::Refused(503))
    ));
    // ...then the bank stops by itself: the session is closed (going away), the process exits
    // 75 (EX_TEMPFAIL), saying why and where on stderr.
    assert_close_code(client.conn(), 1001).await;
    let data_dir = paths.data.display().to_string();
    bank.stopped_for_lack_of_space(&data_dir);

    let amount = |r: &Request| match r {
        Request::Deposit { amount_cents, .. } => amount_cents.0,
        _ => unreachable!(),
    };
    // A restart while the disk is still full: sled's open writes, so it fails at once, naming
    // the data directory; redb's open reads only, so the bank serves what it holds (a login
    // writes nothing) until its first write fails, and stops again the same way.
    let more = fill(&namespace.outside("filler2"));
    eprintln!("{more} more bytes filled before the restart");
    if engine == Some("redb") {
        let bank = BankProcess::start(&namespace, &paths);
        let mut client = connect(bank.addr.clone()).await;
        let reply = client.call(&card_login(&card)).await.unwrap();
        let Response::Welcome { balance_cents, .. } = reply else {
            panic!("card login on the full disk after the restart: {reply:?}")
        };
        let acked_now = acked.last().map(|(_, balance)| *balance);
        assert!(
            Some(balance_cents.0) == acked_now
                || Some(balance_cents.0) == acked_now.map(|b| b + amount(&failed)),
            "{balance_cents:?}"
        );
        let reply = client.call(&deposit_req(1)).await.unwrap();
        assert_eq!(reply, error(ErrorCode::Internal));
        bank.stopped_for_lack_of_space(&data_dir);
    } else {
        let mut restart = namespace.serve(&paths);
        let status = wait_bounded(&mut restart);
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut restart.stderr.take().unwrap(), &mut stderr).unwrap();
        eprintln!("the restart on a full disk exited with {status}:\n{stderr}");
        assert_eq!(status.code(), Some(75), "{stderr}");
        assert!(
            stderr.contains("storage failing") && stderr.contains(&data_dir),
            "{stderr}"
        );
    }

    // Space freed: a restart serves, with every acknowledged deposit there and nothing else
    // but, possibly, the one answered `internal` (its outcome was never told).
    std::fs::remove_file(&filler).unwrap();
    std::fs::remove_file(namespace.outside("filler2")).unwrap();
    let bank = BankProcess::start(&namespace, &paths);
    let mut client = connect(bank.addr.clone()).await;
    let Response::Welcome { balance_cents, .. } = client.call(&card_login(&card)).await.unwrap()
    else {
        panic!("card login after the restart")
    };
    let acked_total = OPENING + acked.iter().map(|(r, _)| amount(r)).sum::<u64>();
    let now = balance_cents.0;
    assert!(
        now == acked_total || now == acked_total + amount(&failed),
        "balance {now}, acknowledged {acked_total}, unanswered deposit {}",
        amount(&failed)
    );
    eprintln!(
        "the deposit answered `internal` was {}",
        if now == acked_total {
            "not applied"
        } else {
            "applied"
        }
    );
    // Each acknowledged deposit is recorded as acknowledged: its retry gets the same answer
    // and changes nothing.
    for (request, acked_balance) in &acked {
        let reply = client.call(request).await.unwrap();
        assert_eq!(deposited(&reply), Some(*acked_balance), "{reply:?}");
    }
    assert_eq!(balance(&mut client).await, now, "retries changed nothing");
    let reply = client.call(&deposit_req(1)).await.unwrap();
    assert_eq!(deposited(&reply), Some(now + 1), "{reply:?}");
    let (status, body) = http_get(&bank.addr, "/healthz").await;
    assert!(
        status.contains("200") && body.trim() == "ok",
        "{status} {body}"
    );
    client.close().await.unwrap();

    // A clean stop, and the audit log still verifies.
    let term = Command::new("kill")
        .args(["-TERM", &bank.child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let (status, stderr) = bank.exited();
    assert!(status.success(), "{stderr}");
    let verify = namespace
        .bank()
        .args(["audit", "verify"])
        .args(paths.args())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&verify.stderr);
    assert!(
        verify.status.success() && said.contains("audit log OK"),
        "{said}"
    );
}

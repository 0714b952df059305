//! Shared test harness: a real bank on 127.0.0.1 port 0 in a temp directory, and helpers to
//! talk to it with the native client.
#![allow(dead_code, unreachable_pub)]

pub mod load;
pub mod process;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use atm_client::{load_auth_file, AuthFile, Client, Connection, Frame};
use bank_server::{Argon2Params, Config, Output};
use protocol::{CardSecret, Cents, FullName, Password, Request, Response, TxId, Username};
use rand_core::OsRng;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Fast Argon2 for tests (the production parameters are tested by construction only).
pub const TEST_ARGON2: Argon2Params = Argon2Params {
    m_kib: 1024,
    t: 1,
    p: 1,
};

/// Paths of one bank's files inside a temp directory. Its first terminal has no deposit
/// ceilings: these tests exercise the bank's other rules (amounts up to the BIBIFI maximum,
/// balances up to `u64::MAX`); `tests/ceilings.rs` tests the ceilings and their defaults.
pub fn config(dir: &Path) -> Config {
    let mut config = Config::new(
        dir.join("data"),
        dir.join("bank.auth"),
        dir.join("audit.key"),
    );
    config.web_root = dir.join("no-web-root");
    config.argon2 = TEST_ARGON2;
    config.first_terminal = bank_server::ledger::DepositCeilings::NONE;
    config
}

/// A running bank.
pub struct TestBank {
    pub addr: String,
    /// The console's own listener, when the bank was started with one.
    pub console: Option<String>,
    pub auth: AuthFile,
    pub lines: Arc<Mutex<Vec<String>>>,
    pub config: Config,
    pub bank: bank_server::Bank,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestBank {
    /// Credentials of another terminal of this bank (its id and key, this bank's pin).
    pub fn creds(&self, terminal_id: &protocol::TerminalId, psk: &protocol::Psk) -> AuthFile {
        AuthFile {
            terminal_id: terminal_id.clone(),
            psk: psk.clone(),
            bank: self.auth.bank.clone(),
        }
    }

    /// Starts a bank with `config` (its output redirected to memory).
    pub async fn start(config: Config) -> Self {
        Self::start_sites(config, false).await
    }

    /// Starts a bank with `config` and the console on a listener of its own.
    pub async fn start_with_console(config: Config) -> Self {
        Self::start_sites(config, true).await
    }

    async fn start_sites(mut config: Config, own_console: bool) -> Self {
        let (output, lines) = Output::memory();
        config.output = output;
        let opened = config.clone();
        let bank = tokio::task::spawn_blocking(move || bank_server::open(opened))
            .await
            .unwrap()
            .expect("bank opens");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (stop, stopped) = oneshot::channel::<()>();
        let stopped = async move {
            let _ = stopped.await;
        };
        let (task, console) = if own_console {
            let console = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let at = console.local_addr().unwrap().to_string();
            let serving = bank_server::serve_with_console(listener, console, bank.clone(), stopped);
            (tokio::spawn(serving), Some(at))
        } else {
            let serving = bank_server::serve(listener, bank.clone(), stopped);
            (tokio::spawn(serving), None)
        };
        let auth = load_auth_file(&config.auth_file).expect("auth file");
        Self {
            addr,
            console,
            auth,
            lines,
            config,
            bank,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Starts a bank in `dir` with the test defaults.
    pub async fn in_dir(dir: &Path) -> Self {
        Self::start(config(dir)).await
    }

    /// A client handshaken with the first terminal.
    pub async fn client(&self) -> Client {
        Client::connect(&self.addr, &self.auth)
            .await
            .expect("handshake")
    }

    /// A raw connection.
    pub async fn raw(&self) -> Connection {
        Connection::open(&self.addr).await.expect("connect")
    }

    /// Stdout lines so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// Graceful shutdown; waits until the bank has flushed and released its storage.
    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        let task = self.task.take().unwrap();
        tokio::time::timeout(Duration::from_secs(30), task)
            .await
            .expect("bank stops in time")
            .unwrap()
            .expect("bank stops cleanly");
    }
}

pub fn username(name: &str) -> Username {
    Username::new(name).unwrap()
}

pub fn txid() -> TxId {
    TxId::random(&mut OsRng)
}

pub fn register_req(name: &str, password: &str) -> Request {
    Request::Register {
        username: username(name),
        full_name: FullName::new(format!("{name} tester")).unwrap(),
        password: Password::new(password).unwrap(),
    }
}

pub fn login_req(name: &str, password: &str) -> Request {
    Request::Login {
        username: username(name),
        password: Password::new(password).unwrap(),
    }
}

pub fn deposit_req(cents: u64) -> Request {
    Request::Deposit {
        txid: txid(),
        amount_cents: Cents(cents),
    }
}

pub fn withdraw_req(cents: u64) -> Request {
    Request::Withdraw {
        txid: txid(),
        amount_cents: Cents(cents),
    }
}

/// Opens the card account `name` holding `cents` with `card` on `client` (logged in to it
/// after).
/// A session on the bank at `addr` as the terminal `auth`, logged in as `name` with `card`,
/// and the balance the bank welcomed it with.
pub async fn card_session(
    addr: &str,
    auth: &AuthFile,
    name: &str,
    card: &CardSecret,
) -> (Client, Cents) {
    let mut client = Client::connect(addr, auth).await.unwrap();
    let login = Request::CardLogin {
        username: username(name),
        card: card.clone(),
    };
    match client.call(&login).await.unwrap() {
        Response::Welcome { balance_cents, .. } => (client, balance_cents),
        other => panic!("card login of {name} at {addr}: {other:?}"),
    }
}

pub async fn open_card_account(client: &mut Client, name: &str, cents: u64, card: CardSecret) {
    let open = Request::OpenCardAccount {
        username: username(name),
        initial_cents: Cents(cents),
        txid: txid(),
        card,
    };
    assert!(matches!(
        client.call(&open).await.unwrap(),
        Response::AccountOpened { .. }
    ));
}

/// Registers `name` on a fresh session and returns the logged-in client.
pub async fn registered(bank: &TestBank, name: &str) -> Client {
    let mut client = bank.client().await;
    let reply = client
        .call(&register_req(name, "correct horse"))
        .await
        .unwrap();
    assert!(matches!(reply, Response::Welcome { .. }), "{reply:?}");
    client
}

/// Logs `name` in on a fresh session.
pub async fn logged_in(bank: &TestBank, name: &str) -> Client {
    let mut client = bank.client().await;
    let reply = client
        .call(&login_req(name, "correct horse"))
        .await
        .unwrap();
    assert!(matches!(reply, Response::Welcome { .. }), "{reply:?}");
    client
}

pub async fn balance(client: &mut Client) -> u64 {
    match client.call(&Request::Balance {}).await.unwrap() {
        Response::Balance { balance_cents } => balance_cents.0,
        other => panic!("expected a balance, got {other:?}"),
    }
}

pub fn error(code: protocol::ErrorCode) -> Response {
    Response::Error { code }
}

/// Waits for the bank to close the connection (no further frames but a close).
pub async fn assert_closed(conn: &mut Connection) {
    match conn
        .recv()
        .await
        .expect("the bank answers or closes in time")
    {
        Frame::Closed => {}
        Frame::Text(t) => panic!("expected a close, got a text frame: {t}"),
        Frame::Binary(_) => panic!("expected a close, got a binary frame"),
    }
}

/// Plain HTTP GET over a TCP socket; returns (status line, body).
pub async fn http_get(addr: &str, path: &str) -> (String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).await.unwrap();
    let status = text.lines().next().unwrap_or_default().to_owned();
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// An HTTP answer read to the end: its status code, headers (names lowercased) and body (the
/// chunked transfer coding removed).
#[derive(Debug)]
pub struct HttpReply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpReply {
    /// The first value of `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `GET path` with `Host: host` and the extra header lines, and reads the answer until
/// the bank closes (a 101 answer: until its head ends).
pub async fn http_request(addr: &str, host: &str, path: &str, extra: &[&str]) -> HttpReply {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    http_exchange(stream, host, path, extra).await
}

/// [`http_request`] on an open connection (a TLS one, say).
pub async fn http_exchange<S>(mut stream: S, host: &str, path: &str, extra: &[&str]) -> HttpReply
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut head = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    if extra
        .iter()
        .any(|h| h.to_ascii_lowercase().starts_with("upgrade:"))
    {
        head = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n");
    }
    for line in extra {
        head.push_str(line);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
            .await
            .expect("the bank answers in time")
            .unwrap_or(0);
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            // A 101, or an answer of known length on a kept-alive connection, is complete.
            let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok());
            if head.starts_with("http/1.1 101") || length.is_some_and(|n| raw.len() >= end + 4 + n)
            {
                break;
            }
        }
    }
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete head");
    let head = String::from_utf8(raw[..split].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
    if chunked {
        let mut plain = Vec::new();
        let mut rest = &body[..];
        loop {
            let line_end = rest.windows(2).position(|w| w == b"\r\n").unwrap();
            let size_text = std::str::from_utf8(&rest[..line_end]).unwrap();
            let size =
                usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap();
            rest = &rest[line_end + 2..];
            if size == 0 {
                break;
            }
            plain.extend_from_slice(&rest[..size]);
            rest = &rest[size + 2..];
        }
        body = plain;
    }
    HttpReply {
        status,
        headers,
        body,
    }
}

pub fn temp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

pub fn data_dir(dir: &Path) -> PathBuf {
    dir.join("data")
}

/// Waits for the bank to close the connection with a close frame carrying `code` and an
/// empty reason (PROTOCOL.md §2).
pub async fn assert_close_code(conn: &mut Connection, code: u16) {
    assert_closed(conn).await;
    assert_eq!(
        conn.close_frame(),
        Some((code, "")),
        "close code and reason"
    );
}

/// Waits for the bank to close the connection with `code`, and checks it did so between
/// `earliest` and `latest` after `since`: a bank that closes late fails (the read gives up
/// just after `latest`), and so does one that closes early.
pub async fn assert_closed_between(
    conn: &mut Connection,
    code: u16,
    since: std::time::Instant,
    earliest: Duration,
    latest: Duration,
) {
    conn.set_read_timeout(latest.saturating_sub(since.elapsed()) + Duration::from_millis(50));
    assert_close_code(conn, code).await;
    let took = since.elapsed();
    assert!(
        took >= earliest && took <= latest,
        "closed after {took:?}, expected between {earliest:?} and {latest:?}"
    );
}

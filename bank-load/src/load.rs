//! The generator: N concurrent sessions against a bank (or the echo floor) in one of the modes,
//! timed, with latency samples, a progress line, and the end-of-run balance check.
#![allow(clippy::float_arithmetic)] // rates and durations are measurements, not money

use std::io::IsTerminal as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use atm_client::{AuthFile, Client, ClientError, Connection};
use protocol::{
    client, server, BankId, BankKey, CardSecret, Cents, Config, FullName, Password, Psk, Request,
    Response, TerminalId, TxId, Username,
};
use rand_core::OsRng;
use tokio::sync::{mpsc, watch, Semaphore};

use crate::proc;
use crate::stats::{Latency, Samples, Summary};

/// Opening balance of every load account (1000.00).
pub const OPENING: Cents = Cents(100_000);
/// Each deposit (1.00).
const DEPOSIT: Cents = Cents(100);
/// Each withdrawal (0.50): never more than was just deposited, so no refusal is expected.
const WITHDRAW: Cents = Cents(50);
/// Password of the `password-logins` accounts.
const PASSWORD: &str = "load-test-password";

/// What the sessions do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Handshake and card login once, then deposit / withdraw / balance in a loop.
    Transactions,
    /// Loop: connect, handshake, card login (SHA-256), logout, close.
    Handshakes,
    /// As `handshakes`, but logging in with a password (Argon2id at the bank's parameters).
    PasswordLogins,
    /// Open the sessions (handshake, login), hold them, check them, close them.
    Idle,
    /// The floor: a bare WebSocket echo, same-sized messages, same lock-step.
    Echo,
}

impl Mode {
    /// The name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Transactions => "transactions",
            Self::Handshakes => "handshakes",
            Self::PasswordLogins => "password-logins",
            Self::Idle => "idle",
            Self::Echo => "echo",
        }
    }
}

/// Where the bank is and how to authenticate as a terminal.
#[derive(Clone)]
pub struct Target {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// The terminal to handshake as, its key and the bank's pin (unused by the echo floor).
    pub creds: AuthFile,
}

impl Target {
    /// Credentials for the echo floor, which runs no handshake.
    pub fn echo(addr: String) -> Self {
        Self {
            addr,
            creds: AuthFile {
                terminal_id: TerminalId::new("t-000000000000").expect("valid id"),
                psk: Psk::from_bytes([0; 32]),
                bank: floor_key().pin(),
            },
        }
    }
}

/// A fixed key for measurements that need a bank key but no bank.
fn floor_key() -> BankKey {
    BankKey::from_secret(BankId::new("floor").expect("valid id"), [1; 32])
}

/// One run's settings.
#[derive(Clone, Debug)]
pub struct Options {
    /// What the sessions do.
    pub mode: Mode,
    /// How many at once.
    pub sessions: usize,
    /// The timed phase (for `idle`, how long the sessions are held).
    pub duration: Duration,
    /// Account names are `{prefix}-{i}`; must be new to the bank.
    pub prefix: String,
    /// Label of the progress line on stderr; `None` for no progress line.
    pub progress: Option<String>,
    /// Sessions set up at once (connect, handshake, open account).
    pub setup_concurrency: usize,
    /// The server's pid, to read its memory and CPU time from /proc.
    pub server_pid: Option<u32>,
    /// Counts deposits and withdrawals as they are acknowledged, for a caller sampling the
    /// run while it goes (transactions mode).
    pub acknowledged: Option<Arc<AtomicU64>>,
    /// Sessions stop once this many deposits and withdrawals were acknowledged (the run also
    /// stops at `duration`, whichever comes first; transactions mode).
    pub durable_limit: Option<u64>,
}

impl Options {
    /// Defaults for `mode` with `sessions` for `duration`.
    pub fn new(mode: Mode, sessions: usize, duration: Duration, prefix: &str) -> Self {
        Self {
            mode,
            sessions,
            duration,
            prefix: prefix.to_owned(),
            progress: None,
            setup_concurrency: 64,
            server_pid: None,
            acknowledged: None,
            durable_limit: None,
        }
    }
}

/// Why a run could not be carried out at all (failures during the run are counted instead).
#[derive(Debug)]
pub struct LoadError(pub String);

impl core::fmt::Display for LoadError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LoadError {}

/// What one session brings back.
#[derive(Default)]
struct SessionResult {
    samples: Samples,
    login_samples: Samples,
    round_trips: u64,
    durable: u64,
    handshakes: u64,
    errors: u64,
    checked: u64,
    mismatches: u64,
}

/// Counters the progress line reads.
#[derive(Default)]
struct Live {
    done: AtomicU64,
    errors: AtomicU64,
    /// Deposits and withdrawals acknowledged so far (shared with the caller, if it asked).
    durable: Arc<AtomicU64>,
    /// Stop once `durable` reaches this.
    durable_limit: u64,
}

/// The shared start signal: `Some(deadline)` once every session is set up.
type Start = watch::Receiver<Option<Instant>>;

/// The length in bytes of a sealed deposit request: what the echo floor sends.
pub fn record_len() -> usize {
    let config = Config::default();
    let psk = Psk::from_bytes([1; 32]);
    let id = TerminalId::new("t-000000000000").expect("valid id");
    let now = atm_client::now_ms();
    let key = floor_key();
    let (atm, hello) =
        client::start(&config, id, &psk, &key.pin(), &mut OsRng, now).expect("hello");
    let (bank, reply) = server::read_client_hello(&config, &key, hello.as_bytes(), now)
        .and_then(|h| h.respond(Some(&psk), &key, &mut OsRng, now))
        .expect("server hello");
    let (mut atm, finished) = atm
        .read_server_hello(reply.as_bytes(), now)
        .expect("finished");
    bank.read_client_finished(finished.as_bytes())
        .expect("handshake");
    let deposit = Request::Deposit {
        txid: TxId::random(&mut OsRng),
        amount_cents: DEPOSIT,
    };
    atm.seal(&deposit, &mut OsRng, now).expect("seal").len()
}

/// Runs the sessions and returns what they measured.
pub async fn run(target: &Target, opts: &Options) -> Result<Summary, LoadError> {
    if opts.sessions == 0 {
        return Err(LoadError("at least one session".into()));
    }
    let target = Arc::new(target.clone());
    let live = Arc::new(Live {
        durable: opts.acknowledged.clone().unwrap_or_default(),
        durable_limit: opts.durable_limit.unwrap_or(u64::MAX),
        ..Live::default()
    });
    let setup = Arc::new(Semaphore::new(opts.setup_concurrency.max(1)));
    let (ready_tx, mut ready_rx) = mpsc::channel::<bool>(opts.sessions);
    let (start_tx, start_rx) = watch::channel::<Option<Instant>>(None);
    let message = "x".repeat(record_len());
    let rss_before = opts.server_pid.and_then(proc::rss_kib);

    let mut tasks = Vec::with_capacity(opts.sessions);
    for i in 0..opts.sessions {
        let (target, live, setup, ready) = (
            target.clone(),
            live.clone(),
            setup.clone(),
            ready_tx.clone(),
        );
        let start = start_rx.clone();
        let name = format!("{}-{i}", opts.prefix);
        let (mode, message) = (opts.mode, message.clone());
        tasks.push(tokio::spawn(async move {
            match mode {
                Mode::Transactions => {
                    transactions(&target, &name, setup, ready, start, &live).await
                }
                Mode::Handshakes | Mode::PasswordLogins => {
                    handshakes(&target, &name, mode, setup, ready, start, &live).await
                }
                Mode::Idle => idle(&target, &name, setup, ready, start).await,
                Mode::Echo => echo(&target.addr, message, setup, ready, start, &live).await,
            }
        }));
    }
    drop(ready_tx);
    let mut failed_setups = 0u64;
    for _ in 0..opts.sessions {
        match ready_rx.recv().await {
            Some(true) => {}
            Some(false) => failed_setups += 1,
            None => break,
        }
    }
    if opts.mode == Mode::Idle {
        // Let the allocator and the bank settle before reading its memory.
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let rss_held = opts.server_pid.and_then(proc::rss_kib);
    let cpu_before = opts.server_pid.and_then(proc::cpu_secs);
    let generator_before = proc::cpu_secs(std::process::id());
    let started = Instant::now();
    let _ = start_tx.send(Some(started + opts.duration));
    let progress = opts
        .progress
        .clone()
        .map(|label| tokio::spawn(progress_line(label, opts.mode, live.clone(), started)));

    let mut total = SessionResult {
        errors: failed_setups,
        ..SessionResult::default()
    };
    for task in tasks {
        let one = task
            .await
            .map_err(|e| LoadError(format!("session task failed: {e}")))?;
        total.samples.extend(one.samples);
        total.login_samples.extend(one.login_samples);
        total.round_trips += one.round_trips;
        total.durable += one.durable;
        total.handshakes += one.handshakes;
        total.errors += one.errors;
        total.checked += one.checked;
        total.mismatches += one.mismatches;
    }
    let elapsed = if opts.mode == Mode::Idle {
        opts.duration
    } else {
        started
            .elapsed()
            .min(opts.duration + Duration::from_secs(60))
    };
    let cpu_after = opts.server_pid.and_then(proc::cpu_secs);
    let generator_after = proc::cpu_secs(std::process::id());
    if let Some(progress) = progress {
        progress.abort();
        eprintln!();
    }
    let seconds = elapsed.as_secs_f64().max(1e-9);
    let rate = |n: u64| n as f64 / seconds;
    Ok(Summary {
        mode: opts.mode.name().to_owned(),
        sessions: opts.sessions,
        seconds,
        round_trips: total.round_trips,
        round_trips_per_sec: rate(total.round_trips),
        durable_txs: total.durable,
        durable_txs_per_sec: rate(total.durable),
        handshakes: total.handshakes,
        handshakes_per_sec: rate(total.handshakes),
        latency: Latency::of(&mut total.samples.0),
        login_latency: Latency::of(&mut total.login_samples.0),
        errors: total.errors,
        balances_checked: total.checked,
        balance_mismatches: total.mismatches,
        message_bytes: message.len(),
        server_rss_kib: if opts.mode == Mode::Idle {
            rss_held
        } else {
            opts.server_pid.and_then(proc::rss_kib)
        },
        server_rss_before_kib: (opts.mode == Mode::Idle).then_some(rss_before).flatten(),
        server_cpu_secs: cpu_before.zip(cpu_after).map(|(a, b)| b - a),
        generator_cpu_secs: generator_before.zip(generator_after).map(|(a, b)| b - a),
    })
}

async fn progress_line(label: String, mode: Mode, live: Arc<Live>, started: Instant) {
    let unit = match mode {
        Mode::Handshakes | Mode::PasswordLogins => "handshakes",
        Mode::Idle => "sessions held",
        Mode::Transactions | Mode::Echo => "round trips",
    };
    let terminal = std::io::stderr().is_terminal();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    let mut last = 0;
    loop {
        tick.tick().await;
        let done = live.done.load(Ordering::Relaxed);
        let line = format!(
            "{label}: {:>3.0}s  {done} {unit}  {}/s now  {} errors",
            started.elapsed().as_secs_f64(),
            done - last,
            live.errors.load(Ordering::Relaxed)
        );
        last = done;
        if terminal {
            eprint!("\r{line}    ");
        } else {
            eprintln!("{line}");
        }
    }
}

/// Waits for the start signal; `None` if the run was abandoned.
async fn wait_start(mut start: Start) -> Option<Instant> {
    start.wait_for(Option::is_some).await.ok().and_then(|s| *s)
}

fn username(name: &str) -> Username {
    Username::new(name).expect("load account names are valid usernames")
}

/// Connects, handshakes and opens a card account: a logged-in session and its card.
async fn open_account(target: &Target, name: &str) -> Result<(Client, CardSecret), String> {
    let mut client = Client::connect(&target.addr, &target.creds)
        .await
        .map_err(|e| e.to_string())?;
    let card = CardSecret::random(&mut OsRng);
    let reply = client
        .call(&Request::OpenCardAccount {
            username: username(name),
            initial_cents: OPENING,
            txid: TxId::random(&mut OsRng),
            card: card.clone(),
        })
        .await
        .map_err(|e| e.to_string())?;
    match reply {
        Response::AccountOpened { balance_cents, .. } if balance_cents == OPENING => {
            Ok((client, card))
        }
        other => Err(format!("open account: unexpected {:?}", other.kind())),
    }
}

/// Opens the card account `name` for a later [`probe`] and closes the session; returns its card.
pub async fn open_probe(target: &Target, name: &str) -> Result<CardSecret, LoadError> {
    let (client, card) = open_account(target, name).await.map_err(LoadError)?;
    let _ = client.close().await;
    Ok(card)
}

/// One connect, handshake, card login and balance of an account [`open_probe`] opened:
/// `Ok(true)` when its balance is still the opening balance.
pub async fn probe(target: &Target, name: &str, card: &CardSecret) -> Result<bool, ClientError> {
    let (mut client, _) = card_login(target, name, card).await?;
    let reply = client.call(&Request::Balance {}).await?;
    let _ = client.close().await;
    Ok(matches!(reply, Response::Balance { balance_cents } if balance_cents == OPENING))
}

/// Connects, handshakes and logs in with the card: `(client, balance)`.
async fn card_login(
    target: &Target,
    name: &str,
    card: &CardSecret,
) -> Result<(Client, Cents), ClientError> {
    let mut client = Client::connect(&target.addr, &target.creds).await?;
    match client
        .call(&Request::CardLogin {
            username: username(name),
            card: card.clone(),
        })
        .await?
    {
        Response::Welcome { balance_cents, .. } => Ok((client, balance_cents)),
        _ => Err(ClientError::Closed),
    }
}

async fn transactions(
    target: &Target,
    name: &str,
    setup: Arc<Semaphore>,
    ready: mpsc::Sender<bool>,
    start: Start,
    live: &Live,
) -> SessionResult {
    let mut result = SessionResult::default();
    let permit = setup.acquire_owned().await;
    let opened = open_account(target, name).await;
    drop(permit);
    let (mut client, card) = match opened {
        Ok(opened) => opened,
        Err(e) => {
            eprintln!("bank-load: session {name} setup failed: {e}");
            let _ = ready.send(false).await;
            return result;
        }
    };
    let _ = ready.send(true).await;
    let Some(deadline) = wait_start(start).await else {
        return result;
    };
    let mut expected = OPENING;
    let mut step = 0u64;
    while Instant::now() < deadline && live.durable.load(Ordering::Relaxed) < live.durable_limit {
        let request = match step % 3 {
            0 => Request::Deposit {
                txid: TxId::random(&mut OsRng),
                amount_cents: DEPOSIT,
            },
            1 => Request::Withdraw {
                txid: TxId::random(&mut OsRng),
                amount_cents: WITHDRAW,
            },
            _ => Request::Balance {},
        };
        step += 1;
        let began = Instant::now();
        match client.call(&request).await {
            Ok(reply) => {
                result.samples.push(began.elapsed());
                result.round_trips += 1;
                live.done.fetch_add(1, Ordering::Relaxed);
                let durable = result.durable;
                if !account(&request, &reply, &mut expected, &mut result) {
                    live.errors.fetch_add(1, Ordering::Relaxed);
                }
                live.durable
                    .fetch_add(result.durable - durable, Ordering::Relaxed);
            }
            Err(e) => {
                // The request may or may not have been applied: log in again and resend it
                // with the same txid (idempotent) to learn its outcome.
                result.errors += 1;
                live.errors.fetch_add(1, Ordering::Relaxed);
                eprintln!("bank-load: session {name}: {e}; reconnecting");
                match recover(target, name, &card, &request).await {
                    Ok((again, reply)) => {
                        client = again;
                        let durable = result.durable;
                        account(&request, &reply, &mut expected, &mut result);
                        live.durable
                            .fetch_add(result.durable - durable, Ordering::Relaxed);
                    }
                    Err(e) => {
                        eprintln!("bank-load: session {name} could not reconnect: {e}");
                        result.checked += 1;
                        result.mismatches += 1;
                        return result;
                    }
                }
            }
        }
    }
    // The check: the bank's balance equals the opening plus every acknowledged deposit minus
    // every acknowledged withdrawal.
    result.checked += 1;
    match client.call(&Request::Balance {}).await {
        Ok(Response::Balance { balance_cents }) if balance_cents == expected => {}
        other => {
            eprintln!(
                "bank-load: session {name}: final balance {:?}, expected {}",
                other.map(|r| r.kind()),
                expected.0
            );
            result.mismatches += 1;
        }
    }
    let _ = client.close().await;
    result
}

/// Applies an answer to the running expected balance; `false` (and an error counted) when the
/// bank refused or answered something that does not match.
fn account(
    request: &Request,
    reply: &Response,
    expected: &mut Cents,
    result: &mut SessionResult,
) -> bool {
    let ok = match (request, reply) {
        (Request::Deposit { amount_cents, .. }, Response::Deposited { balance_cents, .. }) => {
            *expected = expected.checked_add(*amount_cents).unwrap_or(*expected);
            result.durable += 1;
            *balance_cents == *expected
        }
        (Request::Withdraw { amount_cents, .. }, Response::Withdrawn { balance_cents, .. }) => {
            *expected = expected.checked_sub(*amount_cents).unwrap_or(*expected);
            result.durable += 1;
            *balance_cents == *expected
        }
        (Request::Balance {}, Response::Balance { balance_cents }) => *balance_cents == *expected,
        _ => false,
    };
    if !ok {
        result.errors += 1;
    }
    ok
}

async fn recover(
    target: &Target,
    name: &str,
    card: &CardSecret,
    request: &Request,
) -> Result<(Client, Response), ClientError> {
    let (mut client, _) = card_login(target, name, card).await?;
    let reply = client.call(request).await?;
    Ok((client, reply))
}

async fn handshakes(
    target: &Target,
    name: &str,
    mode: Mode,
    setup: Arc<Semaphore>,
    ready: mpsc::Sender<bool>,
    start: Start,
    live: &Live,
) -> SessionResult {
    let mut result = SessionResult::default();
    let password = Password::new(PASSWORD).expect("valid password");
    let permit = setup.acquire_owned().await;
    let opened = if mode == Mode::PasswordLogins {
        register(target, name, &password).await.map(|()| None)
    } else {
        open_account(target, name).await.map(|(client, card)| {
            tokio::spawn(client.close());
            Some(card)
        })
    };
    drop(permit);
    let (card, balance) = match opened {
        Ok(card) => {
            let balance = if card.is_some() { OPENING } else { Cents::ZERO };
            (card, balance)
        }
        Err(e) => {
            eprintln!("bank-load: session {name} setup failed: {e}");
            let _ = ready.send(false).await;
            return result;
        }
    };
    let _ = ready.send(true).await;
    let Some(deadline) = wait_start(start).await else {
        return result;
    };
    while Instant::now() < deadline {
        let began = Instant::now();
        let attempt = async {
            let mut client = Client::connect(&target.addr, &target.creds).await?;
            let handshaken = Instant::now();
            let login = match &card {
                Some(card) => Request::CardLogin {
                    username: username(name),
                    card: card.clone(),
                },
                None => Request::Login {
                    username: username(name),
                    password: password.clone(),
                },
            };
            let welcome = client.call(&login).await?;
            let logged_in = Instant::now();
            let reply = client.call(&Request::Logout {}).await?;
            let _ = client.close().await;
            Ok::<_, ClientError>((handshaken, logged_in, welcome, reply))
        };
        match attempt.await {
            Ok((handshaken, logged_in, welcome, bye)) => {
                result.samples.push(handshaken - began);
                result.login_samples.push(logged_in - handshaken);
                result.handshakes += 1;
                result.round_trips += 2;
                live.done.fetch_add(1, Ordering::Relaxed);
                result.checked += 1;
                let good = matches!(welcome, Response::Welcome { balance_cents, .. } if balance_cents == balance)
                    && matches!(bye, Response::LoggedOut {});
                if !good {
                    result.mismatches += 1;
                    result.errors += 1;
                    live.errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(e) => {
                eprintln!("bank-load: session {name}: {e}");
                result.errors += 1;
                live.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    result
}

async fn register(target: &Target, name: &str, password: &Password) -> Result<(), String> {
    let mut client = Client::connect(&target.addr, &target.creds)
        .await
        .map_err(|e| e.to_string())?;
    let reply = client
        .call(&Request::Register {
            username: username(name),
            full_name: FullName::new("Load Test").expect("valid name"),
            password: password.clone(),
        })
        .await
        .map_err(|e| e.to_string())?;
    let _ = client.close().await;
    match reply {
        Response::Welcome { .. } => Ok(()),
        other => Err(format!("register: unexpected {:?}", other.kind())),
    }
}

async fn idle(
    target: &Target,
    name: &str,
    setup: Arc<Semaphore>,
    ready: mpsc::Sender<bool>,
    start: Start,
) -> SessionResult {
    let mut result = SessionResult::default();
    let permit = setup.acquire_owned().await;
    let opened = open_account(target, name).await;
    drop(permit);
    let mut client = match opened {
        Ok((client, _)) => client,
        Err(e) => {
            eprintln!("bank-load: session {name} setup failed: {e}");
            let _ = ready.send(false).await;
            return result;
        }
    };
    let _ = ready.send(true).await;
    let Some(deadline) = wait_start(start).await else {
        return result;
    };
    tokio::time::sleep_until(deadline.into()).await;
    // Still there after being held: the balance is the opening balance.
    result.checked = 1;
    match client.call(&Request::Balance {}).await {
        Ok(Response::Balance { balance_cents }) if balance_cents == OPENING => {
            result.round_trips = 1;
        }
        _ => {
            result.mismatches = 1;
            result.errors = 1;
        }
    }
    let _ = client.close().await;
    result
}

async fn echo(
    addr: &str,
    message: String,
    setup: Arc<Semaphore>,
    ready: mpsc::Sender<bool>,
    start: Start,
    live: &Live,
) -> SessionResult {
    let mut result = SessionResult::default();
    let permit = setup.acquire_owned().await;
    let opened = Connection::open(addr).await;
    drop(permit);
    let mut conn = match opened {
        Ok(conn) => conn,
        Err(e) => {
            eprintln!("bank-load: echo session setup failed: {e}");
            let _ = ready.send(false).await;
            return result;
        }
    };
    let _ = ready.send(true).await;
    let Some(deadline) = wait_start(start).await else {
        return result;
    };
    while Instant::now() < deadline {
        let began = Instant::now();
        let echoed = match conn.send_text(message.clone()).await {
            Ok(()) => conn.recv_text().await,
            Err(e) => Err(e),
        };
        match echoed {
            Ok(text) if text == message => {
                result.samples.push(began.elapsed());
                result.round_trips += 1;
                live.done.fetch_add(1, Ordering::Relaxed);
            }
            other => {
                eprintln!("bank-load: echo session: {:?}", other.err());
                result.errors += 1;
                live.errors.fetch_add(1, Ordering::Relaxed);
                break;
            }
        }
    }
    let _ = conn.close().await;
    result
}

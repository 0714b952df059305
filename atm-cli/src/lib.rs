//! The native `atm` command (BIBIFI ATM interface) over the protocol crate: one run, one answer;
//! and [`enroll`], the `atm-enroll` command that gives a host its own terminal key.
//!
//! [`run`] parses the command line ([`args`]), reads the auth and card files ([`files`]),
//! talks to the bank over [`atm_client`] (handshake with the terminal's PSK from the auth file,
//! then `open_signed_card_account` or a login and the operation), prints one JSON line and
//! returns the exit code. `-n` makes a signed card (PROTOCOL.md §17): the bank gets its public
//! key, and each login sends a signature of that session's channel binding, never the card's
//! seed; a legacy card file (a secret) still logs in with `card_login`:
//!
//! | Code | When |
//! |---|---|
//! | 0 | success; the JSON line is on stdout |
//! | 255 | invalid input (arguments, a missing, unreadable or wrong-kind auth or card file, a card of another account, an existing card file for `-n`) or a refusal by the bank (any `error` answer: wrong card, overdraft, taken name, ...) |
//! | 63 | the bank could not be reached, did not answer within 10 seconds in total, or broke the protocol (failed handshake, a record that does not verify, a closed connection, an answer that does not fit the request), also on the one retry of an operation whose outcome was lost |
//!
//! Nothing is printed on stdout unless the exit code is 0; a one-line reason goes to stderr.
#![forbid(unsafe_code)]

pub mod args;
pub mod enroll;
pub mod files;

use std::ffi::OsString;
use std::io::Write;
use std::net::SocketAddrV4;
use std::time::Duration;

use atm_client::{AuthFile, Client, ClientError};
use protocol::bibifi::{summary_line, SummaryField};
use protocol::{CardKey, Request, Response, TxId};
use rand_core::OsRng;

use crate::args::{Invocation, Mode};
use crate::files::{Card, CardCredential};

/// Exit code for success.
pub const EXIT_OK: u8 = 0;
/// Exit code for invalid input or an operation the bank refused.
pub const EXIT_INVALID: u8 = 255;
/// Exit code for a protocol error, an unreachable bank or one that did not answer in time.
pub const EXIT_PROTOCOL: u8 = 63;

/// How long the bank has, in total, from connecting to the operation's answer.
pub const BANK_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the atm waits for a clean WebSocket close after it has its answer.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// Why a run failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Invalid input, or the bank refused (exit 255).
    Invalid(&'static str),
    /// Unreachable, silent or misbehaving bank (exit 63).
    Protocol(&'static str),
}

impl Failure {
    /// The exit code.
    pub fn code(self) -> u8 {
        match self {
            Self::Invalid(_) => EXIT_INVALID,
            Self::Protocol(_) => EXIT_PROTOCOL,
        }
    }

    /// A short reason for stderr.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Invalid(r) | Self::Protocol(r) => r,
        }
    }
}

impl From<args::Invalid> for Failure {
    fn from(_: args::Invalid) -> Self {
        Self::Invalid("invalid arguments")
    }
}

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Self {
        Self::Protocol(match e {
            ClientError::Transport(_) | ClientError::Refused(_) | ClientError::Closed => {
                "the bank could not be reached"
            }
            ClientError::Timeout => "the bank did not answer in time",
            ClientError::Protocol(_)
            | ClientError::UnexpectedFrame
            | ClientError::UnexpectedAnswer => "protocol error",
            ClientError::EnrollRefused(_) => "the bank refused the enrollment",
            ClientError::AuthFile(_) => "auth file",
        })
    }
}

/// What a successful exchange with the bank produced.
struct Answer {
    line: String,
    client: Client,
}

fn unexpected() -> Failure {
    Failure::Protocol("unexpected answer from the bank")
}

fn refused(code: protocol::ErrorCode) -> Failure {
    Failure::Invalid(match code {
        // The bank's wording speaks of passwords; here the credential is the card.
        protocol::ErrorCode::AuthFailed => "the bank did not accept this card for this account",
        other => other.message(),
    })
}

/// A new connection, logged in with the card unless the operation opens the account.
async fn session(
    inv: &Invocation,
    auth: &AuthFile,
    secret: &CardCredential,
) -> Result<Client, Failure> {
    let addr = SocketAddrV4::new(inv.ip, inv.port).to_string();
    let mut client = Client::connect(&addr, auth).await?;
    if let Mode::New(_) = inv.mode {
        return Ok(client);
    }
    // A signed card signs this session's binding: the login is worth nothing elsewhere.
    let login = secret.login_request(&inv.account, client.channel_binding());
    match client.call(&login).await? {
        Response::Welcome { username, .. } if username == inv.account => Ok(client),
        Response::Error { code } => Err(refused(code)),
        _ => Err(unexpected()),
    }
}

/// The operation's request. Its txid (and, for `-n`, the card) stay the same for a retry.
fn request(inv: &Invocation, secret: &CardCredential) -> Request {
    let txid = TxId::random(&mut OsRng);
    match inv.mode {
        Mode::New(initial) => match secret {
            CardCredential::Signed(key) => Request::OpenSignedCardAccount {
                username: inv.account.clone(),
                initial_cents: initial,
                txid,
                card_public: key.public(),
            },
            CardCredential::Legacy(secret) => Request::OpenCardAccount {
                username: inv.account.clone(),
                initial_cents: initial,
                txid,
                card: secret.clone(),
            },
        },
        Mode::Deposit(amount) => Request::Deposit {
            txid,
            amount_cents: amount,
        },
        Mode::Withdraw(amount) => Request::Withdraw {
            txid,
            amount_cents: amount,
        },
        Mode::Balance => Request::Balance {},
    }
}

/// The JSON line for the bank's answer to `request`, if the answer fits the request.
fn outcome(inv: &Invocation, request: &Request, response: Response) -> Result<String, Failure> {
    let summary = |field, amount| summary_line(inv.account.as_str(), field, amount);
    match (request, response) {
        (
            Request::OpenCardAccount { initial_cents, .. }
            | Request::OpenSignedCardAccount { initial_cents, .. },
            Response::AccountOpened { balance_cents, .. },
        ) if balance_cents == *initial_cents => {
            Ok(summary(SummaryField::InitialBalance, *initial_cents))
        }
        (
            Request::Deposit { txid, amount_cents },
            Response::Deposited {
                txid: t,
                amount_cents: a,
                ..
            },
        ) if t == *txid && a == *amount_cents => Ok(summary(SummaryField::Deposit, a)),
        (
            Request::Withdraw { txid, amount_cents },
            Response::Withdrawn {
                txid: t,
                amount_cents: a,
                ..
            },
        ) if t == *txid && a == *amount_cents => Ok(summary(SummaryField::Withdraw, a)),
        (Request::Balance {}, Response::Balance { balance_cents }) => {
            Ok(summary(SummaryField::Balance, balance_cents))
        }
        (_, Response::Error { code }) => Err(refused(code)),
        _ => Err(unexpected()),
    }
}

/// Connects, logs in (or opens the account) and runs the operation.
///
/// If the connection fails or an answer does not verify after the operation was sent, the
/// atm cannot know whether the bank applied it, so it asks once more on a new connection with
/// the same request, as [`Request::may_resend`] allows for every atm operation: the same txid
/// (and card) makes the bank apply it at most once and answer with the first result
/// (PROTOCOL.md §9.5). Both tries share the one 10-second deadline.
async fn exchange(
    inv: &Invocation,
    auth: &AuthFile,
    secret: &CardCredential,
) -> Result<Answer, Failure> {
    let request = request(inv, secret);
    let mut client = session(inv, auth, secret).await?;
    let response = match client.call(&request).await {
        Ok(response) => response,
        Err(_) if request.may_resend() => {
            client = session(inv, auth, secret).await?;
            client.call(&request).await?
        }
        Err(e) => return Err(e.into()),
    };
    let line = outcome(inv, &request, response)?;
    Ok(Answer { line, client })
}

/// Everything up to the answer; the card file is written here for `-n`.
async fn attempt(args: &[OsString]) -> Result<Answer, Failure> {
    let inv = args::parse(args)?;
    let auth = files::load_auth(&inv.auth_file)
        .map_err(|_| Failure::Invalid("the auth file is missing or not an auth file"))?;
    let card = match inv.mode {
        Mode::New(_) => {
            if files::exists(&inv.card_file) {
                return Err(Failure::Invalid("the card file already exists"));
            }
            Card {
                account: inv.account.clone(),
                secret: CardKey::random(&mut OsRng).into(),
            }
        }
        _ => {
            let card = Card::load(&inv.card_file)
                .map_err(|_| Failure::Invalid("the card file is missing or not a card"))?;
            if card.account != inv.account {
                return Err(Failure::Invalid("the card is not this account's card"));
            }
            card
        }
    };
    let answer = tokio::time::timeout(BANK_TIMEOUT, exchange(&inv, &auth, &card.secret))
        .await
        .map_err(|_| Failure::Protocol("the bank did not answer in time"))??;
    if let Mode::New(_) = inv.mode {
        // The account exists now; the card is its only credential.
        card.create(&inv.card_file)
            .map_err(|_| Failure::Invalid("could not create the card file"))?;
    }
    Ok(answer)
}

/// Runs the `atm` with `args` (without the program name), writing the JSON line to `out`,
/// and returns the exit code.
pub async fn run(args: &[OsString], out: &mut impl Write) -> u8 {
    match attempt(args).await {
        Ok(Answer { line, client }) => {
            // The operation is done at the bank whether or not stdout takes the line.
            let _ = writeln!(out, "{line}").and_then(|()| out.flush());
            let _ = tokio::time::timeout(CLOSE_WAIT, client.close()).await;
            EXIT_OK
        }
        Err(failure) => {
            eprintln!("atm: {}", failure.reason());
            failure.code()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes() {
        assert_eq!(Failure::Invalid("x").code(), 255);
        assert_eq!(Failure::Protocol("x").code(), 63);
        assert_eq!(Failure::from(ClientError::Timeout).code(), 63);
        assert_eq!(Failure::from(ClientError::Closed).code(), 63);
        assert_eq!(Failure::from(args::Invalid).code(), 255);
    }
}

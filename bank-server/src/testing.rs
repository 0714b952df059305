//! A seam for fuzzing and property tests (feature `testing`): a terminal's session driven in
//! process with strings in place of WebSocket frames, every step at the time of the bank's
//! injected clock ([`crate::Config::clock`]).
//!
//! Each step runs the same code as a session over a WebSocket (`session.rs`): the terminal's
//! lookup and the handshake, then for each record the revocation and login checks, the rules
//! and the sealing. What it leaves out is the transport: time limits, frames, the session
//! limit and the console's list of open sessions. Enrollment hellos are refused here
//! (enrollment has its own tests).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use protocol::server::{self, AwaitClientFinished, Hello};
use protocol::TerminalRole;

use crate::rules::After;
use crate::session::{self, Answer, Established, Fault};
use crate::{Bank, Shared};

/// Why a step was not answered: the session is over, and the bank would close it with `code`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Closed {
    /// The WebSocket close code (`protocol::close`).
    pub code: u16,
}

/// A sealed response, and whether the bank closes the session after sending it (logout).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The record to hand the terminal.
    pub sealed: String,
    /// The session ends after this answer.
    pub closes: bool,
}

enum State {
    AwaitHello,
    AwaitFinished(Box<AwaitClientFinished>, TerminalRole, u64),
    Open(Box<Established>),
    Closed(u16),
}

/// One terminal's connection to a bank, with no socket.
pub struct Connection {
    shared: Arc<Shared>,
    conn: u64,
    state: State,
}

impl Bank {
    /// A new connection, awaiting the terminal's hello.
    pub fn connect(&self) -> Connection {
        Connection {
            conn: self.shared.next_conn.fetch_add(1, Ordering::Relaxed),
            shared: self.shared.clone(),
            state: State::AwaitHello,
        }
    }
}

fn failure() -> Closed {
    Closed {
        code: protocol::close::FAILURE,
    }
}

impl Connection {
    fn now(&self) -> u64 {
        self.shared.config.clock.now_ms()
    }

    /// Ends the session with `code` after a failure, reporting a protocol error as a session
    /// does.
    async fn fail(&mut self, fault: Fault) -> Closed {
        if let Fault::Protocol(detail) = fault {
            session::protocol_error(&self.shared, None, self.conn, detail).await;
        }
        self.state = State::Closed(protocol::close::FAILURE);
        failure()
    }

    /// Reads the terminal's hello; answers the server hello.
    pub async fn hello(&mut self, text: &str) -> Result<String, Closed> {
        self.expect(|s| matches!(s, State::AwaitHello))?;
        let revocations = self.shared.ledger.revocations();
        let shared = &self.shared;
        let hello = match server::read_hello(
            &shared.config.protocol,
            &shared.bank_key,
            text.as_bytes(),
            self.now(),
        ) {
            Ok(Hello::Terminal(hello)) => hello,
            Ok(Hello::Enrollment(_)) => {
                return Err(self.fail(Fault::Protocol("enrollment".into())).await)
            }
            Err(e) => return Err(self.fail(Fault::Protocol(e.detail())).await),
        };
        match session::respond_terminal(&self.shared, hello, self.now()).await {
            Ok((state, reply, role)) => {
                self.state = State::AwaitFinished(Box::new(state), role, revocations);
                Ok(reply)
            }
            Err(fault) => Err(self.fail(fault).await),
        }
    }

    /// Reads the terminal's `client_finished`: the session is open when it verifies.
    pub async fn finished(&mut self, text: &str) -> Result<(), Closed> {
        self.expect(|s| matches!(s, State::AwaitFinished(..)))?;
        let State::AwaitFinished(state, role, revocations) =
            std::mem::replace(&mut self.state, State::AwaitHello)
        else {
            return Err(failure());
        };
        match state.read_client_finished(text.as_bytes()) {
            Ok(session) => {
                let open = Established::new(&self.shared, session, self.conn, role, revocations);
                self.state = State::Open(Box::new(open));
                Ok(())
            }
            Err(e) => Err(self.fail(Fault::Protocol(e.detail())).await),
        }
    }

    /// Answers one record of the open session.
    pub async fn record(&mut self, text: &str) -> Result<Reply, Closed> {
        self.expect(|s| matches!(s, State::Open(_)))?;
        let now = self.now();
        let State::Open(open) = &mut self.state else {
            return Err(failure());
        };
        match session::answer(&self.shared, open, text, now).await {
            Answer::Reply(sealed, after) => {
                let closes = after == After::Close;
                if closes {
                    self.state = State::Closed(protocol::close::NORMAL);
                }
                Ok(Reply { sealed, closes })
            }
            Answer::Close(code) => {
                self.state = State::Closed(code);
                Err(Closed { code })
            }
        }
    }

    /// `Ok` when the connection is at the step `at`; a message out of turn closes it (a closed
    /// connection stays closed with its code).
    fn expect(&mut self, at: impl FnOnce(&State) -> bool) -> Result<(), Closed> {
        match &self.state {
            State::Closed(code) => Err(Closed { code: *code }),
            state if at(state) => Ok(()),
            _ => {
                self.state = State::Closed(protocol::close::FAILURE);
                Err(failure())
            }
        }
    }
}

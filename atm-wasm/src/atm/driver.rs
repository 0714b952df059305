//! The session driver: one bank connection's protocol state (handshake, sealed requests, replies
//! in order), plus re-login and retry after a reconnect. No IO and no clock: the caller moves
//! the frames, passes the time and the RNG, and gets back frames to send and events to show.
//!
//! The follow-up rule lives here too: a welcome (login or registration) fetches the mini
//! statement at once; a deposit or withdrawal costs one round trip, its answer becoming the
//! statement's newest row ([`Event::Row`]) with no second request.

use std::collections::VecDeque;

use protocol::{
    BankPin, Cents, Config, FullName, HistoryEntry, MasterInput, MasterSecret, Password, Request,
    Response, TerminalId, TxId, TxKind, Username,
};

pub use crate::link::connection::Broken;
use crate::link::connection::{Connection, Received};
use crate::link::{self, Accepted, Driver as _, News};

/// How many history entries the dashboard asks for.
pub const HISTORY_LIMIT: u32 = 10;

/// Something the person asked the ATM to do. No `Debug`: it may hold a password.
#[derive(Clone)]
pub enum Op {
    /// Log in with a password.
    Login {
        /// Who.
        username: Username,
        /// Their password.
        password: Password,
    },
    /// Open an account and log in.
    Register {
        /// The new user name.
        username: Username,
        /// Name to greet them with.
        full_name: FullName,
        /// Their password.
        password: Password,
    },
    /// Put money in; the txid makes a retry apply once.
    Deposit {
        /// Chosen once per operation and kept across retries.
        txid: TxId,
        /// How much.
        amount: Cents,
    },
    /// Take money out; the txid makes a retry apply once.
    Withdraw {
        /// Chosen once per operation and kept across retries.
        txid: TxId,
        /// How much.
        amount: Cents,
    },
    /// The balance.
    Balance,
    /// The mini statement.
    History,
    /// End the session.
    Logout,
}

/// Which kind of operation an answer or a failure is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpKind {
    /// [`Op::Login`].
    Login,
    /// [`Op::Register`].
    Register,
    /// [`Op::Deposit`].
    Deposit,
    /// [`Op::Withdraw`].
    Withdraw,
    /// [`Op::Balance`].
    Balance,
    /// [`Op::History`].
    History,
    /// [`Op::Logout`].
    Logout,
}

impl Op {
    /// Its kind.
    pub fn kind(&self) -> OpKind {
        match self {
            Self::Login { .. } => OpKind::Login,
            Self::Register { .. } => OpKind::Register,
            Self::Deposit { .. } => OpKind::Deposit,
            Self::Withdraw { .. } => OpKind::Withdraw,
            Self::Balance => OpKind::Balance,
            Self::History => OpKind::History,
            Self::Logout => OpKind::Logout,
        }
    }

    fn request(&self) -> Request {
        match self {
            Self::Login { username, password } => Request::Login {
                username: username.clone(),
                password: password.clone(),
            },
            Self::Register {
                username,
                full_name,
                password,
            } => Request::Register {
                username: username.clone(),
                full_name: full_name.clone(),
                password: password.clone(),
            },
            Self::Deposit { txid, amount } => Request::Deposit {
                txid: *txid,
                amount_cents: *amount,
            },
            Self::Withdraw { txid, amount } => Request::Withdraw {
                txid: *txid,
                amount_cents: *amount,
            },
            Self::Balance => Request::Balance {},
            Self::History => Request::History {
                limit: HISTORY_LIMIT,
            },
            Self::Logout => Request::Logout {},
        }
    }

    /// Whether a lost answer may be fixed by sending it again on a new connection, as
    /// [`Request::may_resend`] decides: money movements carry a txid (the bank applies each
    /// once) and reads change nothing; logins, registrations and logouts are not replayed.
    fn retried(&self) -> bool {
        self.request().may_resend()
    }
}

/// What the page should know about.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// The handshake finished: the bank is reachable and authenticated.
    Connected,
    /// The bank answered an operation.
    Reply(OpKind, Response),
    /// The connection dropped before the bank answered, and the operation is not retried by
    /// itself (a login, a registration or a logout).
    Lost(OpKind),
    /// After a reconnect the bank refused the saved login; the person must log in again.
    SessionEnded,
    /// A deposit or withdrawal's statement row, built from its answer (which carries the new
    /// balance) at the time it arrived: the mini statement stays fresh without asking again.
    Row(HistoryEntry),
}

/// Frames to send (in order) and events to show, from one step of the driver.
pub type Output = crate::link::connection::Output<Event>;

enum Sent {
    Op(Op),
    /// The automatic login after a reconnect.
    Relogin,
}

/// One ATM's protocol state across connections. Keys and the remembered password live only
/// here, in memory; [`Driver::end_session`] drops the login, and dropping the driver drops all.
pub struct Driver {
    link: Connection,
    /// The logged-in user's credentials, kept to log in again after a reconnect.
    login: Option<(Username, Password)>,
    /// Sent, awaiting the bank's answers, oldest first.
    sent: VecDeque<Sent>,
    /// To send once the link is up, oldest first.
    waiting: VecDeque<Op>,
}

impl link::Driver for Driver {
    type Op = Op;
    type Kind = OpKind;
    type Event = Event;
    const ACCEPTED: Accepted = Accepted::AtHandshake;

    fn news(event: &Event) -> News {
        match event {
            Event::Connected => News::Up,
            Event::Reply(..) => News::Answer,
            _ => News::Other,
        }
    }

    fn ends_connection(_: &Event) -> bool {
        false
    }

    fn logout() -> Op {
        Op::Logout
    }

    /// The login ends here at once, whether the bank was asked or not.
    fn logged_out(&mut self, asked: bool) -> Option<Event> {
        self.end_session();
        (!asked).then_some(Event::Reply(OpKind::Logout, Response::LoggedOut {}))
    }

    /// A driver for this terminal, not connected. `bank` is the bank's pin from the
    /// enrollment: a handshake with anyone not holding its private key fails.
    fn new(terminal: TerminalId, bank: BankPin, config: Config) -> Self {
        Self {
            link: Connection::new(terminal, bank, config),
            login: None,
            sent: VecDeque::new(),
            waiting: VecDeque::new(),
        }
    }

    /// `true` once the handshake has finished on the current connection.
    fn is_up(&self) -> bool {
        self.link.is_up()
    }

    /// `true` while a login is remembered (between a welcome and a logout).
    fn logged_in(&self) -> bool {
        self.login.is_some()
    }

    /// `true` while an operation of this kind is sent or waiting: a second one is refused.
    fn busy(&self, kind: OpKind) -> bool {
        self.sent
            .iter()
            .any(|s| matches!(s, Sent::Op(op) if op.kind() == kind))
            || self.waiting.iter().any(|op| op.kind() == kind)
    }

    /// Begins a handshake on a freshly opened socket: returns the ClientHello to send first.
    fn connect(&mut self, rng: &mut impl protocol::Rng, now_ms: u64) -> Result<String, Broken> {
        self.link.connect(rng, now_ms)
    }

    /// Queues an operation, sealing it at once when the link is up. Returns `None` (and
    /// changes nothing) when one of the same kind is already under way.
    fn submit(
        &mut self,
        op: Op,
        rng: &mut impl protocol::Rng,
        now_ms: u64,
    ) -> Option<Result<Output, Broken>> {
        if self.busy(op.kind()) {
            return None;
        }
        self.waiting.push_back(op);
        Some(self.flush(rng, now_ms))
    }

    /// Handles one frame from the bank.
    fn receive(
        &mut self,
        frame: &[u8],
        rng: &mut impl protocol::Rng,
        now_ms: u64,
    ) -> Result<Output, Broken> {
        match self.link.receive(frame, now_ms)? {
            Received::NeedsKey => Ok(Output::default()),
            Received::Reply(response) => {
                let sent = self.sent.pop_front().ok_or(Broken::Unexpected)?;
                self.answered(sent, response, rng, now_ms)
            }
        }
    }

    fn master_input(&self) -> Option<&MasterInput> {
        self.link.master_input()
    }

    /// The link is up: the Finished first, then a re-login (so the session continues where it
    /// was), then what waited.
    fn keyed(
        &mut self,
        master: MasterSecret,
        rng: &mut impl protocol::Rng,
        now_ms: u64,
    ) -> Result<Output, Broken> {
        let finished = self.link.keyed(master)?;
        let mut out = Output {
            send: vec![finished],
            events: vec![Event::Connected],
        };
        if let Some((username, password)) = &self.login {
            let relogin = Request::Login {
                username: username.clone(),
                password: password.clone(),
            };
            out.send.push(self.link.seal(&relogin, rng, now_ms)?);
            self.sent.push_back(Sent::Relogin);
        }
        let more = self.flush(rng, now_ms)?;
        out.send.extend(more.send);
        Ok(out)
    }

    /// The socket closed (or the caller closed it after a [`Broken`]). Operations that may be
    /// retried wait for the next connection, in their order; the others are reported lost.
    fn disconnected(&mut self) -> Vec<Event> {
        self.link.disconnected();
        let mut events = Vec::new();
        let mut retry = VecDeque::new();
        for sent in self.sent.drain(..) {
            match sent {
                Sent::Op(op) if op.retried() => retry.push_back(op),
                Sent::Op(op) => {
                    if op.kind() == OpKind::Logout {
                        // A lost logout still ends the session here; the bank ends it on close.
                        self.login = None;
                    }
                    events.push(Event::Lost(op.kind()));
                }
                Sent::Relogin => {}
            }
        }
        retry.extend(self.waiting.drain(..));
        self.waiting = retry;
        events
    }
}

impl Driver {
    /// The terminal this driver speaks for.
    pub fn terminal(&self) -> &TerminalId {
        self.link.terminal()
    }

    fn answered(
        &mut self,
        sent: Sent,
        response: Response,
        rng: &mut impl protocol::Rng,
        now_ms: u64,
    ) -> Result<Output, Broken> {
        let mut out = Output::default();
        match sent {
            Sent::Relogin => {
                if !matches!(response, Response::Welcome { .. }) {
                    self.login = None;
                    self.waiting.clear();
                    out.events.push(Event::SessionEnded);
                }
            }
            Sent::Op(op) => {
                match (&op, &response) {
                    (
                        Op::Login { username, password }
                        | Op::Register {
                            username, password, ..
                        },
                        Response::Welcome { .. },
                    ) => {
                        self.login = Some((username.clone(), password.clone()));
                        // Fetch the mini statement right behind the welcome.
                        if !self.busy(OpKind::History) {
                            self.waiting.push_back(Op::History);
                        }
                    }
                    (Op::Logout, _) => self.end_session(),
                    _ => {}
                }
                let row = statement_row(&response, now_ms);
                out.events.push(Event::Reply(op.kind(), response));
                out.events.extend(row.map(Event::Row));
                out.send = self.flush(rng, now_ms)?.send;
            }
        }
        Ok(out)
    }

    /// Forgets the login and everything queued (logout, idle logout): nothing of the
    /// session is kept.
    pub fn end_session(&mut self) {
        self.login = None;
        self.waiting.clear();
    }

    /// Seals every waiting operation if the link is up.
    fn flush(&mut self, rng: &mut impl protocol::Rng, now_ms: u64) -> Result<Output, Broken> {
        let mut out = Output::default();
        if !self.is_up() {
            return Ok(out);
        }
        while let Some(op) = self.waiting.pop_front() {
            let frame = self.link.seal(&op.request(), rng, now_ms)?;
            out.send.push(frame);
            self.sent.push_back(Sent::Op(op));
        }
        Ok(out)
    }
}

/// The statement row a deposit or withdrawal answer stands for, stamped with the time it
/// arrived (the answer carries no time; the bank's own row is within a round trip of it).
fn statement_row(response: &Response, now_ms: u64) -> Option<HistoryEntry> {
    let (kind, txid, amount_cents, balance_cents) = match *response {
        Response::Deposited {
            txid,
            amount_cents,
            balance_cents,
        } => (TxKind::Deposit, txid, amount_cents, balance_cents),
        Response::Withdrawn {
            txid,
            amount_cents,
            balance_cents,
        } => (TxKind::Withdraw, txid, amount_cents, balance_cents),
        _ => return None,
    };
    Some(HistoryEntry {
        txid,
        kind,
        amount_cents,
        balance_cents,
        time_ms: now_ms,
    })
}

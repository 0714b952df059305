//! The console's session driver: one bank connection's protocol state (handshake, then console
//! requests sent one at a time, replies paired in order). No IO and no clock: the caller moves
//! the frames, passes the time and the RNG, and gets back frames to send and events to show.
//!
//! The follow-up rules live here too: an operator's welcome, and a terminal added or revoked,
//! fetch fresh numbers at once ([`ConsoleDriver::refresh`]); the answer to a logout ends the
//! connection ([`link::Driver::ends_connection`]).
//!
//! Nothing is replayed after a reconnect: a dropped connection reports every pending request
//! lost and ends the operator's login (the password is never kept to log in again).

use std::collections::VecDeque;

use protocol::{
    BankPin, Config, MasterInput, MasterSecret, Password, Request, Response, TerminalId,
    TerminalName, Username,
};

use crate::link::connection::{Broken, Connection, Received};
use crate::link::{self, Accepted, Driver as _, News};

/// Something the operator (or the refresh timer) asks the bank. No `Debug`: it may hold a
/// password.
#[derive(Clone)]
pub enum ConsoleOp {
    /// Log in as an operator.
    Login {
        /// Who.
        username: Username,
        /// Their password (dropped once the request is answered or lost).
        password: Password,
    },
    /// Totals, the chart, live sessions and the chain status.
    Overview,
    /// The newest audit entries.
    Audit,
    /// The terminals.
    Terminals,
    /// Enroll a new ATM terminal.
    AddTerminal {
        /// Its label.
        name: TerminalName,
    },
    /// Revoke a terminal.
    Revoke {
        /// Which.
        terminal: TerminalId,
    },
    /// End the session.
    Logout,
}

/// Which kind of operation an answer or a loss is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConsoleKind {
    /// [`ConsoleOp::Login`].
    Login,
    /// [`ConsoleOp::Overview`].
    Overview,
    /// [`ConsoleOp::Audit`].
    Audit,
    /// [`ConsoleOp::Terminals`].
    Terminals,
    /// [`ConsoleOp::AddTerminal`].
    AddTerminal,
    /// [`ConsoleOp::Revoke`].
    Revoke,
    /// [`ConsoleOp::Logout`].
    Logout,
}

impl ConsoleOp {
    /// Its kind.
    pub fn kind(&self) -> ConsoleKind {
        match self {
            Self::Login { .. } => ConsoleKind::Login,
            Self::Overview => ConsoleKind::Overview,
            Self::Audit => ConsoleKind::Audit,
            Self::Terminals => ConsoleKind::Terminals,
            Self::AddTerminal { .. } => ConsoleKind::AddTerminal,
            Self::Revoke { .. } => ConsoleKind::Revoke,
            Self::Logout => ConsoleKind::Logout,
        }
    }

    fn request(&self) -> Request {
        match self {
            Self::Login { username, password } => Request::OperatorLogin {
                username: username.clone(),
                password: password.clone(),
            },
            Self::Overview => Request::ConsoleOverview {},
            Self::Audit => Request::ConsoleAudit {},
            Self::Terminals => Request::ConsoleTerminals {},
            // The bank's default ceilings (the console has no fields for them yet).
            Self::AddTerminal { name } => Request::AddTerminal {
                name: name.clone(),
                max_deposit_cents: None,
                max_deposit_per_day_cents: None,
            },
            Self::Revoke { terminal } => Request::RevokeTerminal {
                terminal: terminal.clone(),
            },
            Self::Logout => Request::Logout {},
        }
    }
}

/// What the page should know about.
#[derive(Clone, Debug, PartialEq)]
pub enum ConsoleEvent {
    /// The handshake finished: the bank is reachable and authenticated.
    Connected,
    /// The bank answered an operation.
    Reply(ConsoleKind, Response),
    /// The connection dropped before the bank answered this operation (or before it was sent).
    Lost(ConsoleKind),
    /// The connection dropped while an operator was logged in: they must log in again.
    SessionEnded,
}

/// Why the driver could not go on with this connection; the caller closes the socket and
/// calls [`ConsoleDriver::disconnected`]. The same reasons as the ATM's.
pub type ConsoleBroken = Broken;

/// Frames to send (in order) and events to show, from one step of the driver.
pub type ConsoleOutput = crate::link::connection::Output<ConsoleEvent>;

/// How often the dashboard asks for fresh numbers ([`ConsoleDriver::refresh`]).
pub const REFRESH_MS: u32 = 3_000;

/// One console's protocol state across connections. Keys live only here, in memory; a
/// password lives here only while its login is waiting or unanswered.
pub struct ConsoleDriver {
    link: Connection,
    /// Whether the bank welcomed an operator on this connection.
    logged_in: bool,
    /// The one request sent and not yet answered (the bank answers lock-step).
    sent: Option<ConsoleOp>,
    /// To send once the link is up and nothing is outstanding, oldest first.
    waiting: VecDeque<ConsoleOp>,
}

impl link::Driver for ConsoleDriver {
    type Op = ConsoleOp;
    type Kind = ConsoleKind;
    type Event = ConsoleEvent;
    const ACCEPTED: Accepted = Accepted::AtFirstAnswer;

    fn news(event: &ConsoleEvent) -> News {
        match event {
            ConsoleEvent::Connected => News::Up,
            ConsoleEvent::Reply(..) => News::Answer,
            _ => News::Other,
        }
    }

    /// After a logout the connection is not reused, whatever the bank answered.
    fn ends_connection(event: &ConsoleEvent) -> bool {
        matches!(event, ConsoleEvent::Reply(ConsoleKind::Logout, _))
    }

    fn logout() -> ConsoleOp {
        ConsoleOp::Logout
    }

    /// A logout sent to the bank already ended the login ([`link::Driver::submit`]); one that
    /// could not be sent ends it here.
    fn logged_out(&mut self, asked: bool) -> Option<ConsoleEvent> {
        if asked {
            return None;
        }
        self.end_session();
        Some(ConsoleEvent::Reply(
            ConsoleKind::Logout,
            Response::LoggedOut {},
        ))
    }

    /// A driver for this console terminal, not connected. `bank` is the bank's pin from the
    /// enrollment: a handshake with anyone not holding its private key fails.
    fn new(terminal: TerminalId, bank: BankPin, config: Config) -> Self {
        Self {
            link: Connection::new(terminal, bank, config),
            logged_in: false,
            sent: None,
            waiting: VecDeque::new(),
        }
    }

    /// `true` once the handshake has finished on the current connection.
    fn is_up(&self) -> bool {
        self.link.is_up()
    }

    /// `true` between an operator welcome and a logout or disconnect.
    fn logged_in(&self) -> bool {
        self.logged_in
    }

    /// `true` while an operation of this kind is sent or waiting: a second one is refused.
    fn busy(&self, kind: ConsoleKind) -> bool {
        self.sent.as_ref().is_some_and(|op| op.kind() == kind)
            || self.waiting.iter().any(|op| op.kind() == kind)
    }

    /// Begins a handshake on a freshly opened socket: returns the ClientHello to send first.
    fn connect(
        &mut self,
        rng: &mut impl protocol::Rng,
        now_ms: u64,
    ) -> Result<String, ConsoleBroken> {
        self.link.connect(rng, now_ms)
    }

    /// Queues an operation, sealing it at once when the link is up and nothing is outstanding.
    /// Returns `None` (and changes nothing) when one of the same kind is already under way.
    fn submit(
        &mut self,
        op: ConsoleOp,
        rng: &mut impl protocol::Rng,
        now_ms: u64,
    ) -> Option<Result<ConsoleOutput, ConsoleBroken>> {
        if self.busy(op.kind()) {
            return None;
        }
        if op.kind() == ConsoleKind::Logout {
            // Nothing queued behind a logout, and the login ends here whatever the bank says.
            self.waiting.clear();
            self.logged_in = false;
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
    ) -> Result<ConsoleOutput, ConsoleBroken> {
        match self.link.receive(frame, now_ms)? {
            Received::NeedsKey => Ok(ConsoleOutput::default()),
            Received::Reply(response) => {
                let op = self.sent.take().ok_or(ConsoleBroken::Unexpected)?;
                match (&op, &response) {
                    (ConsoleOp::Login { .. }, Response::OperatorWelcome { .. }) => {
                        self.logged_in = true;
                    }
                    (ConsoleOp::Logout, _) => self.logged_in = false,
                    _ => {}
                }
                let kind = op.kind();
                // The follow-up rule: what the operator just did shows in fresh numbers at once.
                if refreshes(kind, &response) {
                    let fresh = self.refresh();
                    self.waiting.extend(fresh);
                }
                // The password (if it was a login) goes with the op, here.
                drop(op);
                let mut out = self.flush(rng, now_ms)?;
                out.events.insert(0, ConsoleEvent::Reply(kind, response));
                Ok(out)
            }
        }
    }

    fn master_input(&self) -> Option<&MasterInput> {
        self.link.master_input()
    }

    /// The link is up: the Finished first, then what waited.
    fn keyed(
        &mut self,
        master: MasterSecret,
        rng: &mut impl protocol::Rng,
        now_ms: u64,
    ) -> Result<ConsoleOutput, ConsoleBroken> {
        let finished = self.link.keyed(master)?;
        let more = self.flush(rng, now_ms)?;
        let mut send = vec![finished];
        send.extend(more.send);
        Ok(ConsoleOutput {
            send,
            events: vec![ConsoleEvent::Connected],
        })
    }

    /// The socket closed (or the caller closed it after a [`ConsoleBroken`]). Everything sent
    /// or waiting is reported lost, in order, and a logged-in operator is logged out.
    fn disconnected(&mut self) -> Vec<ConsoleEvent> {
        self.link.disconnected();
        let mut events: Vec<ConsoleEvent> = self
            .sent
            .take()
            .into_iter()
            .chain(self.waiting.drain(..))
            .map(|op| ConsoleEvent::Lost(op.kind()))
            .collect();
        if std::mem::take(&mut self.logged_in) {
            events.push(ConsoleEvent::SessionEnded);
        }
        events
    }
}

impl ConsoleDriver {
    /// The terminal this driver speaks for.
    pub fn terminal(&self) -> &TerminalId {
        self.link.terminal()
    }

    /// How many operations are sent or waiting.
    pub fn pending(&self) -> usize {
        self.waiting.len() + usize::from(self.sent.is_some())
    }

    /// The requests that refresh the dashboard (overview, audit, terminals) when an operator
    /// is logged in on an up link, but for those still under way from the last refresh.
    pub fn refresh(&self) -> Vec<ConsoleOp> {
        if !(self.is_up() && self.logged_in()) {
            return Vec::new();
        }
        [ConsoleOp::Overview, ConsoleOp::Audit, ConsoleOp::Terminals]
            .into_iter()
            .filter(|op| !self.busy(op.kind()))
            .collect()
    }

    /// Forgets the login and everything queued (nothing of the session is kept).
    pub fn end_session(&mut self) {
        self.logged_in = false;
        self.waiting.clear();
    }

    /// Seals the next waiting operation if the link is up and nothing is outstanding.
    fn flush(
        &mut self,
        rng: &mut impl protocol::Rng,
        now_ms: u64,
    ) -> Result<ConsoleOutput, ConsoleBroken> {
        let mut out = ConsoleOutput::default();
        if self.sent.is_some() || !self.link.is_up() {
            return Ok(out);
        }
        if let Some(op) = self.waiting.pop_front() {
            let request = op.request();
            // Outstanding before sealing, so a failure reports it lost on disconnect.
            self.sent = Some(op);
            let frame = self.link.seal(&request, rng, now_ms)?;
            out.send.push(frame);
        }
        Ok(out)
    }
}

/// Whether this answer is followed by a refresh: an operator's welcome, and a terminal added
/// or revoked.
fn refreshes(kind: ConsoleKind, response: &Response) -> bool {
    matches!(
        (kind, response),
        (ConsoleKind::Login, Response::OperatorWelcome { .. })
            | (
                ConsoleKind::AddTerminal | ConsoleKind::Revoke,
                Response::TerminalAdded { .. } | Response::TerminalRevoked { .. }
            )
    )
}

//! One bank connection's protocol link, shared by the ATM and console drivers: the handshake
//! over `protocol::client`, then records sealed and opened on its session. No IO and no clock.

use protocol::client::{self, AwaitServerHello};
use protocol::{BankPin, ClientSession, Config, Psk, Request, Response, TerminalId};

/// Why a driver could not go on with this connection; the caller closes the socket and calls
/// the driver's `disconnected`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Broken {
    /// The bank's handshake answer did not verify (wrong key, revoked terminal, not a bank, or
    /// a bank that does not hold the pinned key).
    Handshake,
    /// A record did not open (tampered, replayed, stale) or could not be sealed.
    Record,
    /// A frame arrived when none was expected.
    Unexpected,
}

/// Frames to send (in order) and events to show, from one step of a driver.
#[derive(Debug, PartialEq)]
pub struct Output<E> {
    /// Frames to write to the socket, in order.
    pub send: Vec<String>,
    /// What happened.
    pub events: Vec<E>,
}

impl<E> Default for Output<E> {
    fn default() -> Self {
        Self {
            send: Vec::new(),
            events: Vec::new(),
        }
    }
}

/// What a frame from the bank was.
pub(crate) enum Received {
    /// The bank's handshake answer verified: the link is up; send this Finished frame first.
    Up(String),
    /// The answer to the oldest request sent.
    Reply(Response),
}

enum State {
    Down,
    Handshaking(AwaitServerHello),
    Up(ClientSession),
}

/// One terminal's keys, its bank's pin and its link on the current connection (down,
/// handshaking or up).
pub(crate) struct Connection {
    config: Config,
    terminal: TerminalId,
    psk: Psk,
    bank: BankPin,
    state: State,
}

impl Connection {
    /// A link for this terminal to the bank pinned by `bank`, down.
    pub(crate) fn new(terminal: TerminalId, psk: Psk, bank: BankPin, config: Config) -> Self {
        Self {
            config,
            terminal,
            psk,
            bank,
            state: State::Down,
        }
    }

    /// The terminal this link speaks for.
    pub(crate) fn terminal(&self) -> &TerminalId {
        &self.terminal
    }

    /// `true` once the handshake has finished on the current connection.
    pub(crate) fn is_up(&self) -> bool {
        matches!(self.state, State::Up(_))
    }

    /// Begins a handshake on a freshly opened socket: returns the ClientHello to send first.
    pub(crate) fn connect(
        &mut self,
        rng: &mut impl protocol::Rng,
        now_ms: u64,
    ) -> Result<String, Broken> {
        let (state, hello) = client::start(
            &self.config,
            self.terminal.clone(),
            &self.psk,
            &self.bank,
            rng,
            now_ms,
        )
        .map_err(|_| Broken::Handshake)?;
        self.state = State::Handshaking(state);
        Ok(hello)
    }

    /// Handles one frame from the bank: the handshake's answer, or a record once up.
    pub(crate) fn receive(&mut self, frame: &[u8], now_ms: u64) -> Result<Received, Broken> {
        match std::mem::replace(&mut self.state, State::Down) {
            State::Down => Err(Broken::Unexpected),
            State::Handshaking(state) => {
                let (session, finished) = state
                    .read_server_hello(frame, now_ms)
                    .map_err(|_| Broken::Handshake)?;
                self.state = State::Up(session);
                Ok(Received::Up(finished))
            }
            State::Up(mut session) => {
                let opened = session.open(frame, now_ms);
                self.state = State::Up(session);
                opened.map(Received::Reply).map_err(|_| Broken::Record)
            }
        }
    }

    /// Seals a request on the session (the link must be up).
    pub(crate) fn seal(
        &mut self,
        request: &Request,
        rng: &mut impl protocol::Rng,
        now_ms: u64,
    ) -> Result<String, Broken> {
        let State::Up(session) = &mut self.state else {
            return Err(Broken::Unexpected);
        };
        session
            .seal(request, rng, now_ms)
            .map_err(|_| Broken::Record)
    }

    /// The socket closed: the link is down until the next handshake.
    pub(crate) fn disconnected(&mut self) {
        self.state = State::Down;
    }
}

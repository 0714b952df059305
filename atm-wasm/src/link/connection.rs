//! One bank connection's protocol link, shared by the ATM and console drivers: the handshake
//! over `protocol::client`, then records sealed and opened on its session. No IO and no clock.
//!
//! The link never holds the terminal key: the handshake asks for the master secret
//! (PROTOCOL.md §6.8), which the page's key holder computes with a non-extractable WebCrypto
//! key and hands back through [`Connection::keyed`].

use protocol::client::{self, AwaitMasterSecret, AwaitServerHelloExternal};
use protocol::{
    BankPin, ClientSession, Config, MasterInput, MasterSecret, Request, Response, TerminalId,
};

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
    /// The bank's handshake answer passed its checks: the key holder must now compute the
    /// master secret over [`Connection::master_input`] and hand it to [`Connection::keyed`].
    NeedsKey,
    /// The answer to the oldest request sent.
    Reply(Response),
}

enum State {
    Down,
    Handshaking(AwaitServerHelloExternal),
    AwaitingKey(AwaitMasterSecret),
    Up(ClientSession),
}

/// One terminal's id, its bank's pin and its link on the current connection (down,
/// handshaking, waiting for the key holder, or up).
pub(crate) struct Connection {
    config: Config,
    terminal: TerminalId,
    bank: BankPin,
    state: State,
}

impl Connection {
    /// A link for this terminal to the bank pinned by `bank`, down.
    pub(crate) fn new(terminal: TerminalId, bank: BankPin, config: Config) -> Self {
        Self {
            config,
            terminal,
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
        let (state, hello) = client::start_external_key(
            &self.config,
            self.terminal.clone(),
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
                let awaiting = state
                    .read_server_hello(frame, now_ms)
                    .map_err(|_| Broken::Handshake)?;
                self.state = State::AwaitingKey(awaiting);
                Ok(Received::NeedsKey)
            }
            // The bank sends nothing before the terminal's Finished.
            State::AwaitingKey(_) => Err(Broken::Unexpected),
            State::Up(mut session) => {
                let opened = session.open(frame, now_ms);
                self.state = State::Up(session);
                opened.map(Received::Reply).map_err(|_| Broken::Record)
            }
        }
    }

    /// What the key holder must MAC while the handshake waits for it (§6.8), else `None`.
    pub(crate) fn master_input(&self) -> Option<&MasterInput> {
        match &self.state {
            State::AwaitingKey(awaiting) => Some(awaiting.master_input()),
            _ => None,
        }
    }

    /// The key holder's master secret: checks the bank's Finished with the keys it makes. The
    /// link is up; returns the Finished frame to send first.
    pub(crate) fn keyed(&mut self, master: MasterSecret) -> Result<String, Broken> {
        let State::AwaitingKey(awaiting) = std::mem::replace(&mut self.state, State::Down) else {
            return Err(Broken::Unexpected);
        };
        let (session, finished) = awaiting.finish(master).map_err(|_| Broken::Handshake)?;
        self.state = State::Up(session);
        Ok(finished)
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

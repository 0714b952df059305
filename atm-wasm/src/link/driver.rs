//! The seam between the one controller and a page: the [`Driver`] trait that the ATM's and the
//! console's sans-IO session drivers implement (frames, operations, a dropped connection, and
//! the few rules where the two pages differ), and the [`Page`] trait by which a page's
//! reducer hears what the controller saw.

use protocol::{BankPin, Config, MasterInput, MasterSecret, TerminalId};

use super::connection::{Broken, Output};
use super::enroll::Slot;
use super::Link;

/// When a connection counts as accepted by the bank, for the failures in a row behind
/// [`Link::Down`] and [`Link::Refused`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accepted {
    /// Once its handshake finishes.
    AtHandshake,
    /// Once the bank answers a request on it: a connection that the bank drops soon after the
    /// handshake, with nothing answered, counts as failed, and several such in a row as refused.
    AtFirstAnswer,
}

/// What an event says about the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum News {
    /// The handshake finished.
    Up,
    /// The bank answered a request.
    Answer,
    /// Anything else.
    Other,
}

/// One page's protocol state across connections, with no IO and no clock: the controller moves
/// the frames, passes the time and the RNG, and shows the events.
pub trait Driver: Sized {
    /// Something the page asks the bank.
    type Op;
    /// Which kind of operation an answer or a loss is about.
    type Kind: Copy;
    /// What the page should know about.
    type Event;
    /// When a connection counts as accepted.
    const ACCEPTED: Accepted;

    /// A driver for this terminal, not connected. It never holds the terminal key: the
    /// handshake asks for the master secret instead ([`Driver::master_input`]).
    fn new(terminal: TerminalId, bank: BankPin, config: Config) -> Self;
    /// `true` once the handshake has finished on the current connection.
    fn is_up(&self) -> bool;
    /// `true` while someone is logged in.
    fn logged_in(&self) -> bool;
    /// `true` while an operation of this kind is sent or waiting.
    fn busy(&self, kind: Self::Kind) -> bool;
    /// Begins a handshake on a freshly opened socket: the ClientHello to send first.
    fn connect(&mut self, rng: &mut impl protocol::Rng, now_ms: u64) -> Result<String, Broken>;
    /// Queues an operation (sealing what may go now); `None` when one of its kind is under way.
    fn submit(
        &mut self,
        op: Self::Op,
        rng: &mut impl protocol::Rng,
        now_ms: u64,
    ) -> Option<Result<Output<Self::Event>, Broken>>;
    /// Handles one frame from the bank.
    fn receive(
        &mut self,
        frame: &[u8],
        rng: &mut impl protocol::Rng,
        now_ms: u64,
    ) -> Result<Output<Self::Event>, Broken>;
    /// While the handshake waits for the key holder: what to MAC with the terminal key
    /// (HMAC-SHA256, PROTOCOL.md §6.8). `None` at any other time.
    fn master_input(&self) -> Option<&MasterInput>;
    /// The key holder's master secret: the handshake finishes (or fails, for a wrong key or
    /// an impostor bank) and what waited is sent.
    fn keyed(
        &mut self,
        master: MasterSecret,
        rng: &mut impl protocol::Rng,
        now_ms: u64,
    ) -> Result<Output<Self::Event>, Broken>;
    /// The socket closed (or the controller closed it after a [`Broken`]).
    fn disconnected(&mut self) -> Vec<Self::Event>;
    /// What an event says about the connection.
    fn news(event: &Self::Event) -> News;
    /// Whether this event ends the connection: a fresh one is opened at once.
    fn ends_connection(event: &Self::Event) -> bool;
    /// The logout request.
    fn logout() -> Self::Op;
    /// After a logout, sent to the bank (`asked`) or not (the link was down): ends the session
    /// here as this page's rule says, and returns the answer to show when the bank was not
    /// asked.
    fn logged_out(&mut self, asked: bool) -> Option<Self::Event>;
}

/// How a page's reducer hears from the controller.
pub trait Page {
    /// The page's session driver.
    type Driver: Driver;
    /// What the page's reducer takes.
    type Action;
    /// Which enrollment the page keeps in the browser.
    const SLOT: Slot;
    /// Plain words when the browser would not keep the key (it works until the page closes).
    const NOT_STORED: &'static str;
    /// Plain words when the browser cannot hold the key as a WebCrypto key (nothing is kept).
    const NO_WEBCRYPTO: &'static str;
    /// This browser is now enrolled as `terminal` of the bank pinned by `bank`.
    fn enrolled(terminal: &TerminalId, bank: &BankPin) -> Self::Action;
    /// The enrollment is gone (forgotten, or it could not be kept).
    fn forgotten() -> Self::Action;
    /// A message the bank's answers do not bring (enroll again, the key is not kept).
    fn notice(text: String) -> Self::Action;
    /// The link changed.
    fn link(link: Link) -> Self::Action;
    /// Something from the bank, through the driver.
    fn bank(event: <Self::Driver as Driver>::Event) -> Self::Action;
    /// A request the driver took, shown as under way (`None`: nothing to show).
    fn pending(op: &<Self::Driver as Driver>::Op) -> Option<Self::Action>;
}

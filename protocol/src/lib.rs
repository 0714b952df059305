//! Sans-IO ATM <-> bank secure channel: PSK + X25519 handshake that proves the bank's pinned
//! static key, then encrypt-then-MAC records.
//!
//! This crate does no IO, reads no clock and owns no randomness. The caller passes the bytes it
//! received, the current Unix time in milliseconds and a cryptographic RNG, and gets back the
//! bytes to send. The same code runs natively (bank server, `atm` CLI) and on
//! `wasm32-unknown-unknown` (the browser ATM). The byte-exact specification is
//! `docs/PROTOCOL.md` at the repository root.
//!
//! ```
//! use protocol::{client, server, BankId, BankKey, Config, Psk, Request, Response, TerminalId};
//! use rand_core::OsRng;
//!
//! let config = Config::default();
//! // The bank's static key; terminals pin `bank_key.pin()` at enrollment.
//! let bank_key = BankKey::random(BankId::new("bank-1").unwrap(), &mut OsRng);
//! let pin = bank_key.pin();
//! let psk = Psk::from_bytes([7; 32]);
//! let terminal = TerminalId::new("atm-1").unwrap();
//! let now = 1_700_000_000_000;
//!
//! // ATM: first flight.
//! let (atm, client_hello) = client::start(&config, terminal, &psk, &pin, &mut OsRng, now).unwrap();
//! // Bank: look the terminal up, answer.
//! let hello = server::read_client_hello(&config, &bank_key, client_hello.as_bytes(), now).unwrap();
//! assert_eq!(hello.terminal_id().as_str(), "atm-1");
//! let (bank, server_hello) = hello.respond(Some(&psk), &bank_key, &mut OsRng, now).unwrap();
//! // ATM: check the bank's Finished, send its own.
//! let (mut atm, client_finished) = atm.read_server_hello(server_hello.as_bytes(), now).unwrap();
//! let mut bank = bank.read_client_finished(client_finished.as_bytes()).unwrap();
//!
//! let record = atm.seal(&Request::Balance {}, &mut OsRng, now).unwrap();
//! assert!(matches!(bank.open(record.as_bytes(), now), Ok(Request::Balance {})));
//! let reply = bank.seal(&Response::LoggedOut {}, &mut OsRng, now).unwrap();
//! assert!(matches!(atm.open(reply.as_bytes(), now), Ok(Response::LoggedOut {})));
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod auth_file;
mod bank_key;
pub mod bibifi;
pub mod card;
pub mod client;
pub mod console;
pub mod enrollment;
mod error;
mod exchange;
mod hexfmt;
pub mod link;
pub mod message;
pub mod money;
pub mod primitives;
mod record;
mod schedule;
mod secret;
pub mod server;
mod wire;

pub use bank_key::{BankId, BankKey, BankPin};
pub use card::{CardKey, CardPublic, CardSignature, ChannelBinding};
pub use console::{TerminalName, TerminalRole};
pub use error::{Error, HandshakeFault, RecordFault};
pub use message::{
    AccountNumber, CardSecret, ErrorCode, FullName, HistoryEntry, Password, Request, Response,
    TxId, TxKind, Username,
};
pub use money::Cents;
pub use record::{BankSession, ClientSession};
pub use secret::{MasterInput, MasterSecret, Psk, TerminalId, MASTER_INPUT_LEN};

/// The protocol version carried in both hellos. A peer speaking another version is refused:
/// there is no fallback (version 1, without the bank's static key, is refused like any other).
pub const PROTOCOL_VERSION: u8 = 2;

/// Largest handshake message accepted, in bytes on the wire.
pub const MAX_HANDSHAKE_LEN: usize = 1024;

/// Largest record accepted, in bytes on the wire. Transports should refuse larger frames
/// before buffering them.
pub const MAX_RECORD_LEN: usize = 16_384;

/// Largest plaintext a record may carry. `2 * (MAX_PLAINTEXT_LEN + 16) + 150 < MAX_RECORD_LEN`.
pub const MAX_PLAINTEXT_LEN: usize = 8_000;
/// Plaintext size of a request that carries a credential ([`Request::carries_credential`]):
/// the sender pads its JSON with spaces to this many bytes, or, when longer, to the next
/// multiple of it, never beyond [`MAX_PLAINTEXT_LEN`] (PROTOCOL.md §8.6). It holds every such
/// request with every field at its limit and passwords written as themselves: the longest is a
/// `change_password` with two passwords of [`Password::MAX_LEN`] bytes, 2130 bytes with a
/// 20-digit `ts`. A password whose escapes (`\"`, `\\`, `\u00XX` for control characters) take
/// it past that lands in a larger multiple; any password of up to 176 bytes fits whatever its
/// characters.
pub const CREDENTIAL_REQUEST_LEN: usize = 2_200;
/// Plaintext size of the bank's answer to a request that carries a credential, whatever the
/// answer (`welcome` or `error` alike), padded as [`CREDENTIAL_REQUEST_LEN`] is. It holds the
/// longest possible answer, a `welcome` with every field at its limit: 818 bytes.
pub const CREDENTIAL_REPLY_LEN: usize = 1_024;
/// Most records one session sends in each direction (sequence numbers 0 to 2³² − 1): AES-CBC
/// with random IVs under one key wants a bound well below the birthday limit. A session that
/// reaches it is closed; the peer refuses a record numbered beyond it.
pub const MAX_RECORDS_PER_DIRECTION: u64 = 1 << 32;

pub mod close {
    //! WebSocket close codes the bank sends (§2), always with an empty reason.

    /// Every handshake or record failure, a timeout in the handshake and a revoked terminal:
    /// one code, so the close never says what failed.
    pub const FAILURE: u16 = 1008;
    /// The session ended as agreed: after `logged_out`, or idle for too long.
    pub const NORMAL: u16 = 1000;
    /// The bank is shutting down.
    pub const GOING_AWAY: u16 = 1001;
}
/// The BIBIFI bank's default TCP port (the `bank` command), which the `atm` uses when `-p` is
/// not given.
pub const BIBIFI_PORT: u16 = 3000;

/// The web bank's default TCP port (`bank-server`): web ATM, console and native ATMs.
pub const WEB_BANK_PORT: u16 = 8765;

/// Smallest opening balance of an account: 10.00. The bank refuses less; the `atm` refuses
/// `-n` below it before connecting.
pub const MIN_OPENING: money::Cents = money::Cents(1_000);

/// Shortest password (in characters) the bank accepts for a customer or an operator; the web
/// ATM checks it before sending.
pub const MIN_PASSWORD_CHARS: usize = 8;

/// Default for [`Config::max_skew_ms`].
pub const DEFAULT_MAX_SKEW_MS: u64 = 30_000;

/// Settings both sides share. Plain data, cheap to clone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// How far (in milliseconds, either way) a peer's timestamp may be from our clock before the
    /// hello or record carrying it is refused. A second line of defence: freshness comes from the
    /// nonces and sequence numbers.
    pub max_skew_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_skew_ms: DEFAULT_MAX_SKEW_MS,
        }
    }
}

/// Randomness the caller supplies: any cryptographically secure RNG (`rand_core` 0.6).
pub trait Rng: rand_core::RngCore + rand_core::CryptoRng {}
impl<T: rand_core::RngCore + rand_core::CryptoRng> Rng for T {}

/// `true` when `then` is within `max_skew_ms` of `now`, in either direction, without overflow.
pub(crate) fn fresh(then_ms: u64, now_ms: u64, max_skew_ms: u64) -> bool {
    then_ms.abs_diff(now_ms) <= max_skew_ms
}

//! The bank's side of an enrollment, as states that consume `self`: answer the code's hello
//! (with the code's key, or a throw-away one for an unknown, used or expired code), read the
//! ClientFinished, then open the `enroll` request and derive the new terminal's key.

use crate::error::HandshakeFault;
use crate::exchange;
use crate::message::{Request, Response};
use crate::schedule::{enrolled_terminal_key, ClientHelloFields, Key, Keys};
use crate::wire::Handshake;
use crate::{hexfmt, BankKey, BankSession, Config, Error, Psk, Rng, TerminalId, PROTOCOL_VERSION};

/// A well-formed enrollment hello; the bank now looks the code up (and consumes it).
pub struct EnrollHelloReceived {
    config: Config,
    fields: ClientHelloFields,
}

impl EnrollHelloReceived {
    pub(crate) fn new(config: &Config, fields: ClientHelloFields) -> Self {
        Self {
            config: config.clone(),
            fields,
        }
    }

    /// The code's id (not yet authenticated).
    pub fn code_id(&self) -> &TerminalId {
        &self.fields.terminal
    }

    /// Answers with the bank's identity and Finished. Draws the bank nonce and X25519 secret
    /// (32 bytes each) and, when `code_psk` is `None` (no such code, or used, or expired), a
    /// throw-away key from `rng`: the terminal cannot tell those cases from a wrong code.
    pub fn respond(
        self,
        code_psk: Option<&Psk>,
        bank: &BankKey,
        rng: &mut impl Rng,
        now_ms: u64,
    ) -> Result<(AwaitEnrollFinished, String), Error> {
        let Some((server, agreed)) =
            exchange::bank_exchange(bank, &self.fields.client_share, None, rng, now_ms)
        else {
            return Err(Error::HandshakeFailed(HandshakeFault::WeakShare));
        };
        let (psk, known) = exchange::psk_or_throwaway(code_psk, rng);
        let pin = bank.pin();
        let dh = agreed.shared();
        let (keys, exporter) = Keys::derive_enrollment(&psk, &pin, &self.fields, &server, &dh);
        let hello = Handshake::EnrollServerHello {
            version: PROTOCOL_VERSION,
            bank_id: pin.bank_id.as_str().to_owned(),
            bank_key: pin.public_hex(),
            bank_nonce: hexfmt::encode(&server.bank_nonce),
            bank_share: hexfmt::encode(&server.bank_share),
            timestamp: now_ms,
            finished: hexfmt::encode(&keys.server_finished_mac()),
        };
        let state = AwaitEnrollFinished {
            config: self.config,
            code: self.fields.terminal,
            keys,
            exporter,
            known,
        };
        Ok((state, hello.to_text()))
    }
}

/// Sent the bank's enrollment hello; waiting for the ClientFinished.
#[cfg_attr(fuzzing, derive(Clone))]
pub struct AwaitEnrollFinished {
    config: Config,
    code: TerminalId,
    keys: Keys,
    exporter: Key,
    known: bool,
}

impl AwaitEnrollFinished {
    /// Checks the terminal's Finished (constant time); a wrong code, an unknown one and an
    /// altered handshake all fail here alike.
    pub fn read_client_finished(self, wire: &[u8]) -> Result<EnrollingBank, Error> {
        exchange::check_client_finished(&self.keys, self.known, wire)?;
        Ok(EnrollingBank {
            session: BankSession::new(self.keys, &self.config, self.code),
            exporter: self.exporter,
        })
    }
}

/// The bank's end of an enrollment session. No `Debug`: it holds the exporter key.
#[cfg_attr(fuzzing, derive(Clone))]
pub struct EnrollingBank {
    session: BankSession,
    exporter: Key,
}

impl EnrollingBank {
    /// The code this session was opened with.
    pub fn code_id(&self) -> &TerminalId {
        self.session.terminal_id()
    }

    /// Opens the terminal's request; `true` when it is `enroll`, the only one allowed.
    pub fn open_request(&mut self, wire: &[u8], now_ms: u64) -> Result<bool, Error> {
        Ok(matches!(
            self.session.open(wire, now_ms)?,
            Request::Enroll {}
        ))
    }

    /// The key of the terminal enrolled as `terminal` in this session (the terminal derives
    /// the same from the `enrolled` answer).
    pub fn terminal_key(&self, terminal: &TerminalId) -> Psk {
        enrolled_terminal_key(&self.exporter, terminal)
    }

    /// Seals the answer.
    pub fn seal(
        &mut self,
        response: &Response,
        rng: &mut impl Rng,
        now_ms: u64,
    ) -> Result<String, Error> {
        self.session.seal(response, rng, now_ms)
    }
}

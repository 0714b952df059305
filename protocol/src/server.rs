//! The bank side of the handshake, as states that consume `self`: read ClientHello, respond with
//! the terminal's PSK (or none) and the bank's static key, then read ClientFinished.

use crate::error::HandshakeFault;
use crate::exchange;
use crate::schedule::{ClientHelloFields, Keys};
use crate::wire::Handshake;
use crate::{hexfmt, BankKey, BankSession, Config, Error, Psk, Rng, TerminalId, PROTOCOL_VERSION};

/// A first flight, parsed and checked: a terminal's ClientHello, or an enrollment's hello
/// (a one-time code's id in place of a terminal id).
pub enum Hello {
    /// A terminal opening a session.
    Terminal(ClientHelloReceived),
    /// A new terminal enrolling with a one-time code.
    Enrollment(crate::enrollment::server::EnrollHelloReceived),
}

/// Parses and checks a first flight of either kind. `bank` is the bank's static key: a
/// terminal's id travels sealed for it (PROTOCOL.md §6.7), and is opened here.
pub fn read_hello(
    config: &Config,
    bank: &BankKey,
    wire: &[u8],
    now_ms: u64,
) -> Result<Hello, Error> {
    let fail = Error::HandshakeFailed;
    let (enrolling, version, id, client_nonce, client_share, timestamp) =
        match Handshake::parse(wire).map_err(fail)? {
            Handshake::ClientHello {
                version,
                sealed_terminal_id,
                client_nonce,
                client_share,
                timestamp,
            } => (
                false,
                version,
                sealed_terminal_id,
                client_nonce,
                client_share,
                timestamp,
            ),
            Handshake::EnrollHello {
                version,
                code_id,
                client_nonce,
                client_share,
                timestamp,
            } => (
                true,
                version,
                code_id,
                client_nonce,
                client_share,
                timestamp,
            ),
            _ => return Err(fail(HandshakeFault::Malformed)),
        };
    let id = if enrolling {
        exchange::IdField::Clear(&id)
    } else {
        exchange::IdField::Sealed(&id, bank)
    };
    let (fields, es) = exchange::client_fields(
        config,
        now_ms,
        version,
        id,
        &client_nonce,
        &client_share,
        timestamp,
    )?;
    if !enrolling {
        return Ok(Hello::Terminal(ClientHelloReceived {
            config: config.clone(),
            fields,
            es,
        }));
    }
    // An enrollment's hello must name a code, never a terminal.
    if !crate::enrollment::is_code_id(&fields.terminal) {
        return Err(fail(HandshakeFault::Malformed));
    }
    Ok(Hello::Enrollment(
        crate::enrollment::server::EnrollHelloReceived::new(config, fields),
    ))
}

/// Parses and checks a ClientHello, opening its sealed terminal id with `bank`'s static key.
/// The caller then looks up [`ClientHelloReceived::terminal_id`] and calls
/// [`ClientHelloReceived::respond`] (with the same key). An enrollment's hello is refused here
/// (see [`read_hello`]).
pub fn read_client_hello(
    config: &Config,
    bank: &BankKey,
    wire: &[u8],
    now_ms: u64,
) -> Result<ClientHelloReceived, Error> {
    match read_hello(config, bank, wire, now_ms)? {
        Hello::Terminal(hello) => Ok(hello),
        Hello::Enrollment(_) => Err(Error::HandshakeFailed(HandshakeFault::Malformed)),
    }
}

/// A well-formed ClientHello; the bank now finds the terminal's PSK.
pub struct ClientHelloReceived {
    config: Config,
    fields: ClientHelloFields,
    /// `dh_es`, from opening the sealed id.
    es: Option<zeroize::Zeroizing<[u8; 32]>>,
}

impl ClientHelloReceived {
    /// The terminal the ATM claims to be (not yet authenticated: the sealed id's MAC shows only
    /// that the sender chose it for this bank's key).
    pub fn terminal_id(&self) -> &TerminalId {
        &self.fields.terminal
    }

    /// Answers with a ServerHello. Draws the bank nonce (32 bytes), the X25519 secret (32 bytes)
    /// and, when `psk` is `None` (unknown or revoked terminal), a throw-away key (32 bytes) from
    /// `rng`. An unknown terminal gets a ServerHello just like a known one and fails only at
    /// ClientFinished, exactly like a wrong key: the ATM cannot tell the cases apart. `bank` is
    /// the bank's static key: the keys depend on it, so only its holder completes a handshake.
    pub fn respond(
        self,
        psk: Option<&Psk>,
        bank: &BankKey,
        rng: &mut impl Rng,
        now_ms: u64,
    ) -> Result<(AwaitClientFinished, String), Error> {
        let Some((server, agreed)) = exchange::bank_exchange(
            bank,
            &self.fields.client_share,
            self.es.as_ref(),
            rng,
            now_ms,
        ) else {
            return Err(Error::HandshakeFailed(HandshakeFault::WeakShare));
        };
        let (psk, known) = exchange::psk_or_throwaway(psk, rng);
        let dh = agreed.shared();
        let keys = Keys::derive(&psk, &bank.pin(), &self.fields, &server, &dh);
        let hello = Handshake::ServerHello {
            version: PROTOCOL_VERSION,
            bank_nonce: hexfmt::encode(&server.bank_nonce),
            bank_share: hexfmt::encode(&server.bank_share),
            timestamp: now_ms,
            finished: hexfmt::encode(&keys.server_finished_mac()),
        };
        let state = AwaitClientFinished {
            config: self.config,
            terminal: self.fields.terminal,
            keys,
            known,
        };
        Ok((state, hello.to_text()))
    }
}

/// Sent ServerHello; waiting for ClientFinished. Nothing else is accepted before it.
#[cfg_attr(fuzzing, derive(Clone))]
pub struct AwaitClientFinished {
    config: Config,
    terminal: TerminalId,
    keys: Keys,
    known: bool,
}

impl AwaitClientFinished {
    /// Checks the ATM's Finished MAC (constant time). Wrong key, unknown terminal and altered
    /// handshake all fail here the same way.
    pub fn read_client_finished(self, wire: &[u8]) -> Result<BankSession, Error> {
        exchange::check_client_finished(&self.keys, self.known, wire)?;
        Ok(BankSession::new(self.keys, &self.config, self.terminal))
    }

    /// The terminal the ATM claims to be.
    pub fn terminal_id(&self) -> &TerminalId {
        &self.terminal
    }
}

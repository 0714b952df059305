//! The ATM side of the handshake, as states that consume `self`: start, then read ServerHello.
//! The bank must prove it holds the private key of the pinned [`BankPin`].

use x25519_dalek::StaticSecret;

use crate::error::HandshakeFault;
use crate::exchange;
use crate::schedule::{ClientHelloFields, Keys};
use crate::wire::Handshake;
use crate::{
    hexfmt, BankPin, ClientSession, Config, Error, Psk, Rng, TerminalId, PROTOCOL_VERSION,
};

/// Begins a handshake: draws the client nonce (32 bytes) then the X25519 secret (32 bytes) from
/// `rng`, and returns the state awaiting the bank's answer plus the ClientHello to send. `bank`
/// is the bank's identity as pinned at enrollment; the terminal id travels sealed for its key
/// (PROTOCOL.md §6.7), so a passive observer does not learn it.
pub fn start(
    config: &Config,
    terminal: TerminalId,
    psk: &Psk,
    bank: &BankPin,
    rng: &mut impl Rng,
    now_ms: u64,
) -> Result<(AwaitServerHello, String), Error> {
    let exchange::ClientStart {
        client_nonce,
        secret,
        client_share,
        sealed,
        es,
    } = exchange::client_hello_start(rng, &terminal, bank)
        .ok_or(Error::HandshakeFailed(HandshakeFault::WeakShare))?;
    let hello = Handshake::ClientHello {
        version: PROTOCOL_VERSION,
        sealed_terminal_id: hexfmt::encode(&sealed),
        client_nonce: hexfmt::encode(&client_nonce),
        client_share: hexfmt::encode(&client_share),
        timestamp: now_ms,
    };
    let state = AwaitServerHello {
        config: config.clone(),
        psk: psk.clone(),
        bank: bank.clone(),
        secret,
        es,
        fields: ClientHelloFields {
            terminal,
            client_nonce,
            client_share,
            client_time: now_ms,
        },
    };
    Ok((state, hello.to_text()))
}

/// Sent ClientHello; waiting for ServerHello. No `Debug`: it holds the PSK and the secret.
#[cfg_attr(fuzzing, derive(Clone))]
pub struct AwaitServerHello {
    config: Config,
    psk: Psk,
    bank: BankPin,
    secret: StaticSecret,
    /// `dh_es`, from sealing the id.
    es: zeroize::Zeroizing<[u8; 32]>,
    fields: ClientHelloFields,
}

impl AwaitServerHello {
    /// Checks the bank's hello and Finished MAC. On success returns the established session and
    /// the ClientFinished to send; requests may be sealed right away (the bank reads them after
    /// the ClientFinished).
    pub fn read_server_hello(
        self,
        wire: &[u8],
        now_ms: u64,
    ) -> Result<(ClientSession, String), Error> {
        let fail = Error::HandshakeFailed;
        let Handshake::ServerHello {
            version,
            bank_nonce,
            bank_share,
            timestamp,
            finished,
        } = Handshake::parse(wire).map_err(fail)?
        else {
            return Err(fail(HandshakeFault::Malformed));
        };
        let (server, finished) = exchange::server_fields(
            &self.config,
            now_ms,
            version,
            &bank_nonce,
            &bank_share,
            timestamp,
            &finished,
        )?;
        let agreed = exchange::client_exchange(&self.secret, &server, &self.bank, Some(&self.es))?;
        let dh = agreed.shared();
        let keys = Keys::derive(&self.psk, &self.bank, &self.fields, &server, &dh);
        let reply = exchange::finish(&keys, &finished)?;
        Ok((ClientSession::new(keys, &self.config), reply))
    }

    /// The terminal id this handshake presents.
    pub fn terminal_id(&self) -> &TerminalId {
        &self.fields.terminal
    }
}

//! The bank side of the handshake, as states that consume `self`: read ClientHello, respond with
//! the terminal's PSK (or none) and the bank's static key, then read ClientFinished.

use x25519_dalek::{PublicKey, StaticSecret};

use crate::error::HandshakeFault;
use crate::schedule::{ClientHelloFields, Keys, ServerHelloFields, Shared};
use crate::wire::Handshake;
use crate::{
    fresh, hexfmt, BankKey, BankSession, Config, Error, Psk, Rng, TerminalId, PROTOCOL_VERSION,
};

/// Parses and checks a ClientHello. The caller then looks up [`ClientHelloReceived::terminal_id`]
/// and calls [`ClientHelloReceived::respond`].
pub fn read_client_hello(
    config: &Config,
    wire: &[u8],
    now_ms: u64,
) -> Result<ClientHelloReceived, Error> {
    let fail = Error::HandshakeFailed;
    let Handshake::ClientHello {
        version,
        terminal_id,
        client_nonce,
        client_share,
        timestamp,
    } = Handshake::parse(wire).map_err(fail)?
    else {
        return Err(fail(HandshakeFault::Malformed));
    };
    if version != PROTOCOL_VERSION {
        return Err(fail(HandshakeFault::Version));
    }
    let (Some(terminal), Some(client_nonce), Some(client_share)) = (
        TerminalId::new(terminal_id),
        hexfmt::decode_array::<32>(&client_nonce),
        hexfmt::decode_array::<32>(&client_share),
    ) else {
        return Err(fail(HandshakeFault::Malformed));
    };
    if !fresh(timestamp, now_ms, config.max_skew_ms) {
        return Err(fail(HandshakeFault::Stale));
    }
    Ok(ClientHelloReceived {
        config: config.clone(),
        fields: ClientHelloFields {
            terminal,
            client_nonce,
            client_share,
            client_time: timestamp,
        },
    })
}

/// A well-formed ClientHello; the bank now finds the terminal's PSK.
pub struct ClientHelloReceived {
    config: Config,
    fields: ClientHelloFields,
}

impl ClientHelloReceived {
    /// The terminal the ATM claims to be (not yet authenticated).
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
        let mut bank_nonce = [0u8; 32];
        rng.fill_bytes(&mut bank_nonce);
        let mut secret_bytes = zeroize::Zeroizing::new([0u8; 32]);
        rng.fill_bytes(secret_bytes.as_mut());
        let secret = StaticSecret::from(*secret_bytes);
        let bank_share = PublicKey::from(&secret).to_bytes();
        let (psk, known) = match psk {
            Some(psk) => (psk.clone(), true),
            None => (Psk::random(rng), false),
        };
        let ee = secret.diffie_hellman(&PublicKey::from(self.fields.client_share));
        let es = bank.agree(&self.fields.client_share);
        if !(ee.was_contributory() && es.was_contributory()) {
            return Err(Error::HandshakeFailed(HandshakeFault::WeakShare));
        }
        let server = ServerHelloFields {
            bank_nonce,
            bank_share,
            bank_time: now_ms,
        };
        let dh = Shared {
            ee: ee.as_bytes(),
            es: es.as_bytes(),
        };
        let keys = Keys::derive(&psk, &bank.pin(), &self.fields, &server, &dh);
        let hello = Handshake::ServerHello {
            version: PROTOCOL_VERSION,
            bank_nonce: hexfmt::encode(&bank_nonce),
            bank_share: hexfmt::encode(&bank_share),
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
        let fail = Error::HandshakeFailed;
        let Handshake::ClientFinished { finished } = Handshake::parse(wire).map_err(fail)? else {
            return Err(fail(HandshakeFault::Malformed));
        };
        let Some(finished) = hexfmt::decode_array::<32>(&finished) else {
            return Err(fail(HandshakeFault::Malformed));
        };
        // Both checks always run, so timing does not tell unknown terminals from wrong keys.
        let mac_ok = self.keys.verify_client_finished(&finished);
        if !(mac_ok & self.known) {
            return Err(fail(HandshakeFault::BadFinished));
        }
        Ok(BankSession::new(self.keys, &self.config, self.terminal))
    }

    /// The terminal the ATM claims to be.
    pub fn terminal_id(&self) -> &TerminalId {
        &self.terminal
    }
}

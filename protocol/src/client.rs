//! The ATM side of the handshake, as states that consume `self`: start, then read ServerHello.
//! The bank must prove it holds the private key of the pinned [`BankPin`].

use x25519_dalek::{PublicKey, StaticSecret};

use crate::error::HandshakeFault;
use crate::schedule::{ClientHelloFields, Keys, ServerHelloFields, Shared};
use crate::wire::Handshake;
use crate::{
    fresh, hexfmt, BankPin, ClientSession, Config, Error, Psk, Rng, TerminalId, PROTOCOL_VERSION,
};

/// Begins a handshake: draws the client nonce (32 bytes) then the X25519 secret (32 bytes) from
/// `rng`, and returns the state awaiting the bank's answer plus the ClientHello to send. `bank`
/// is the bank's identity as pinned at enrollment.
pub fn start(
    config: &Config,
    terminal: TerminalId,
    psk: &Psk,
    bank: &BankPin,
    rng: &mut impl Rng,
    now_ms: u64,
) -> Result<(AwaitServerHello, String), Error> {
    let mut client_nonce = [0u8; 32];
    rng.fill_bytes(&mut client_nonce);
    let mut secret_bytes = zeroize::Zeroizing::new([0u8; 32]);
    rng.fill_bytes(secret_bytes.as_mut());
    let secret = StaticSecret::from(*secret_bytes);
    let client_share = PublicKey::from(&secret).to_bytes();
    let hello = Handshake::ClientHello {
        version: PROTOCOL_VERSION,
        terminal_id: terminal.as_str().to_owned(),
        client_nonce: hexfmt::encode(&client_nonce),
        client_share: hexfmt::encode(&client_share),
        timestamp: now_ms,
    };
    let state = AwaitServerHello {
        config: config.clone(),
        psk: psk.clone(),
        bank: bank.clone(),
        secret,
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
        if version != PROTOCOL_VERSION {
            return Err(fail(HandshakeFault::Version));
        }
        let (Some(bank_nonce), Some(bank_share), Some(finished)) = (
            hexfmt::decode_array::<32>(&bank_nonce),
            hexfmt::decode_array::<32>(&bank_share),
            hexfmt::decode_array::<32>(&finished),
        ) else {
            return Err(fail(HandshakeFault::Malformed));
        };
        if !fresh(timestamp, now_ms, self.config.max_skew_ms) {
            return Err(fail(HandshakeFault::Stale));
        }
        let ee = self.secret.diffie_hellman(&PublicKey::from(bank_share));
        let es = self
            .secret
            .diffie_hellman(&PublicKey::from(self.bank.public));
        if !(ee.was_contributory() && es.was_contributory()) {
            return Err(fail(HandshakeFault::WeakShare));
        }
        let server = ServerHelloFields {
            bank_nonce,
            bank_share,
            bank_time: timestamp,
        };
        let dh = Shared {
            ee: ee.as_bytes(),
            es: es.as_bytes(),
        };
        let keys = Keys::derive(&self.psk, &self.bank, &self.fields, &server, &dh);
        if !keys.verify_server_finished(&finished) {
            return Err(fail(HandshakeFault::BadFinished));
        }
        let reply = Handshake::ClientFinished {
            finished: hexfmt::encode(&keys.client_finished_mac()),
        };
        Ok((ClientSession::new(keys, &self.config), reply.to_text()))
    }

    /// The terminal id this handshake presents.
    pub fn terminal_id(&self) -> &TerminalId {
        &self.fields.terminal
    }
}

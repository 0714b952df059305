//! What both handshakes (a terminal's and an enrollment's) share: the checks of each hello's
//! fields, each side's half of the X25519 exchange, and the ATM's check of the bank's Finished.

use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use crate::error::HandshakeFault;
use crate::schedule::{ClientHelloFields, Keys, ServerHelloFields, Shared};
use crate::wire::Handshake;
use crate::{fresh, hexfmt, BankKey, BankPin, Config, Error, Rng, TerminalId, PROTOCOL_VERSION};

/// The two X25519 results of one handshake, zeroized on drop.
pub(crate) struct Agreed {
    ee: Zeroizing<[u8; 32]>,
    es: Zeroizing<[u8; 32]>,
}

impl Agreed {
    fn new(ee: &x25519_dalek::SharedSecret, es: &x25519_dalek::SharedSecret) -> Self {
        Self {
            ee: Zeroizing::new(ee.to_bytes()),
            es: Zeroizing::new(es.to_bytes()),
        }
    }

    /// As the key schedule takes them.
    pub(crate) fn shared(&self) -> Shared<'_> {
        Shared {
            ee: &self.ee,
            es: &self.es,
        }
    }
}

/// The checks both first flights share: the version, the id, the nonce and share (hex), the
/// timestamp's freshness.
pub(crate) fn client_fields(
    config: &Config,
    now_ms: u64,
    version: u8,
    id: &str,
    client_nonce: &str,
    client_share: &str,
    timestamp: u64,
) -> Result<ClientHelloFields, Error> {
    let fail = Error::HandshakeFailed;
    if version != PROTOCOL_VERSION {
        return Err(fail(HandshakeFault::Version));
    }
    let (Some(terminal), Some(client_nonce), Some(client_share)) = (
        TerminalId::new(id),
        hexfmt::decode_array::<32>(client_nonce),
        hexfmt::decode_array::<32>(client_share),
    ) else {
        return Err(fail(HandshakeFault::Malformed));
    };
    if !fresh(timestamp, now_ms, config.max_skew_ms) {
        return Err(fail(HandshakeFault::Stale));
    }
    Ok(ClientHelloFields {
        terminal,
        client_nonce,
        client_share,
        client_time: timestamp,
    })
}

/// The bank's half of a handshake's key exchange: draws the bank nonce (32 bytes) and the
/// X25519 secret (32 bytes) from `rng`, computes both X25519 results, and returns the
/// ServerHello's fields with them. `None` when the client's share is of low order.
pub(crate) fn bank_exchange(
    bank: &BankKey,
    client_share: &[u8; 32],
    rng: &mut impl Rng,
    now_ms: u64,
) -> Option<(ServerHelloFields, Agreed)> {
    let mut bank_nonce = [0u8; 32];
    rng.fill_bytes(&mut bank_nonce);
    let mut secret_bytes = Zeroizing::new([0u8; 32]);
    rng.fill_bytes(secret_bytes.as_mut());
    let secret = StaticSecret::from(*secret_bytes);
    let bank_share = PublicKey::from(&secret).to_bytes();
    let ee = secret.diffie_hellman(&PublicKey::from(*client_share));
    let es = bank.agree(client_share);
    if !(ee.was_contributory() && es.was_contributory()) {
        return None;
    }
    let fields = ServerHelloFields {
        bank_nonce,
        bank_share,
        bank_time: now_ms,
    };
    Some((fields, Agreed::new(&ee, &es)))
}

/// The checks every ServerHello shares: the version, the nonce, share and Finished (hex), the
/// timestamp's freshness. Returns the fields that enter the transcript, and the Finished.
pub(crate) fn server_fields(
    config: &Config,
    now_ms: u64,
    version: u8,
    bank_nonce: &str,
    bank_share: &str,
    timestamp: u64,
    finished: &str,
) -> Result<(ServerHelloFields, [u8; 32]), Error> {
    let fail = Error::HandshakeFailed;
    if version != PROTOCOL_VERSION {
        return Err(fail(HandshakeFault::Version));
    }
    let (Some(bank_nonce), Some(bank_share), Some(finished)) = (
        hexfmt::decode_array::<32>(bank_nonce),
        hexfmt::decode_array::<32>(bank_share),
        hexfmt::decode_array::<32>(finished),
    ) else {
        return Err(fail(HandshakeFault::Malformed));
    };
    if !fresh(timestamp, now_ms, config.max_skew_ms) {
        return Err(fail(HandshakeFault::Stale));
    }
    let fields = ServerHelloFields {
        bank_nonce,
        bank_share,
        bank_time: timestamp,
    };
    Ok((fields, finished))
}

/// The ATM's half of the key exchange: X25519 of its ephemeral secret with the bank's
/// ephemeral share and with the bank's static key; both must be contributory.
pub(crate) fn client_exchange(
    secret: &StaticSecret,
    server: &ServerHelloFields,
    bank: &BankPin,
) -> Result<Agreed, Error> {
    let ee = secret.diffie_hellman(&PublicKey::from(server.bank_share));
    let es = secret.diffie_hellman(&PublicKey::from(bank.public));
    if !(ee.was_contributory() && es.was_contributory()) {
        return Err(Error::HandshakeFailed(HandshakeFault::WeakShare));
    }
    Ok(Agreed::new(&ee, &es))
}

/// Checks the bank's Finished against `keys` and returns the ClientFinished to send.
pub(crate) fn finish(keys: &Keys, finished: &[u8; 32]) -> Result<String, Error> {
    if !keys.verify_server_finished(finished) {
        return Err(Error::HandshakeFailed(HandshakeFault::BadFinished));
    }
    let reply = Handshake::ClientFinished {
        finished: hexfmt::encode(&keys.client_finished_mac()),
    };
    Ok(reply.to_text())
}

/// Draws the client nonce (32 bytes) then the X25519 secret (32 bytes) from `rng`.
pub(crate) fn client_exchange_start(rng: &mut impl Rng) -> ([u8; 32], StaticSecret, [u8; 32]) {
    let mut client_nonce = [0u8; 32];
    rng.fill_bytes(&mut client_nonce);
    let mut secret_bytes = Zeroizing::new([0u8; 32]);
    rng.fill_bytes(secret_bytes.as_mut());
    let secret = StaticSecret::from(*secret_bytes);
    let client_share = PublicKey::from(&secret).to_bytes();
    (client_nonce, secret, client_share)
}

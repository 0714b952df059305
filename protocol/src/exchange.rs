//! What both handshakes (a terminal's and an enrollment's) share: the checks of each hello's
//! fields, each side's half of the X25519 exchange, and the ATM's check of the bank's Finished.

use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use crate::error::HandshakeFault;
use crate::primitives::{
    aes256_cbc_decrypt, aes256_cbc_encrypt, hmac_sha256, hmac_sha256_verify, IV_LEN, TAG_LEN,
};
use crate::schedule::{label, ClientHelloFields, IdKeys, Keys, ServerHelloFields, Shared};
use crate::wire::Handshake;
use crate::{
    fresh, hexfmt, BankKey, BankPin, Config, Error, Psk, Rng, TerminalId, PROTOCOL_VERSION,
};

/// The two X25519 results of one handshake, zeroized on drop.
pub(crate) struct Agreed {
    ee: Zeroizing<[u8; 32]>,
    es: Zeroizing<[u8; 32]>,
}

impl Agreed {
    fn new(ee: Zeroizing<[u8; 32]>, es: Zeroizing<[u8; 32]>) -> Self {
        Self { ee, es }
    }

    /// As the key schedule takes them.
    pub(crate) fn shared(&self) -> Shared<'_> {
        Shared {
            ee: &self.ee,
            es: &self.es,
        }
    }
}

/// `dh_es` as bytes: X25519 of the client's ephemeral with the bank's static key.
pub(crate) type DhEs = Zeroizing<[u8; 32]>;

/// How a first flight names its sender: an enrollment's code id in clear, or a terminal's id
/// sealed for the bank's static key (§6.7).
pub(crate) enum IdField<'a> {
    Clear(&'a str),
    Sealed(&'a str, &'a BankKey),
}

/// The checks both first flights share: the version, the id, the nonce and share (hex), the
/// timestamp's freshness; then, for a sealed id, `dh_es` (not all zero) and the sealed id's
/// MAC, and its plaintext.
pub(crate) fn client_fields(
    config: &Config,
    now_ms: u64,
    version: u8,
    id: IdField<'_>,
    client_nonce: &str,
    client_share: &str,
    timestamp: u64,
) -> Result<(ClientHelloFields, Option<DhEs>), Error> {
    let fail = Error::HandshakeFailed;
    if version != PROTOCOL_VERSION {
        return Err(fail(HandshakeFault::Version));
    }
    enum Decoded<'a> {
        Clear(TerminalId),
        Sealed([u8; SEALED_ID_LEN], &'a BankKey),
    }
    let id = match id {
        IdField::Clear(id) => TerminalId::new(id).map(Decoded::Clear),
        IdField::Sealed(sealed, bank) => {
            hexfmt::decode_array::<SEALED_ID_LEN>(sealed).map(|s| Decoded::Sealed(s, bank))
        }
    };
    let (Some(id), Some(client_nonce), Some(client_share)) = (
        id,
        hexfmt::decode_array::<32>(client_nonce),
        hexfmt::decode_array::<32>(client_share),
    ) else {
        return Err(fail(HandshakeFault::Malformed));
    };
    if !fresh(timestamp, now_ms, config.max_skew_ms) {
        return Err(fail(HandshakeFault::Stale));
    }
    let (terminal, es) = match id {
        Decoded::Clear(id) => (id, None),
        Decoded::Sealed(sealed, bank) => {
            let es = bank.agree(&client_share);
            if !es.was_contributory() {
                return Err(fail(HandshakeFault::WeakShare));
            }
            let es = Zeroizing::new(es.to_bytes());
            let keys = IdKeys::derive(&es, &client_share, &bank.pin());
            (open_terminal_id(&keys, &sealed).map_err(fail)?, Some(es))
        }
    };
    let fields = ClientHelloFields {
        terminal,
        client_nonce,
        client_share,
        client_time: timestamp,
    };
    // `dh_es`, when opening the id computed it: the answer reuses it.
    Ok((fields, es))
}

/// The bank's half of a handshake's key exchange: draws the bank nonce (32 bytes) and the
/// X25519 secret (32 bytes) from `rng`, computes both X25519 results, and returns the
/// ServerHello's fields with them (`dh_es` taken from `es` when the first flight's check
/// computed it already). `None` when the client's share is of low order.
pub(crate) fn bank_exchange(
    bank: &BankKey,
    client_share: &[u8; 32],
    es: Option<&DhEs>,
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
    let es = match es {
        Some(es) => es.clone(),
        None => contributory(&bank.agree(client_share))?,
    };
    let fields = ServerHelloFields {
        bank_nonce,
        bank_share,
        bank_time: now_ms,
    };
    Some((fields, Agreed::new(contributory(&ee)?, es)))
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
/// ephemeral share and with the bank's static key (`es` when sealing its id computed it
/// already); both must be contributory.
pub(crate) fn client_exchange(
    secret: &StaticSecret,
    server: &ServerHelloFields,
    bank: &BankPin,
    es: Option<&DhEs>,
) -> Result<Agreed, Error> {
    let weak = Error::HandshakeFailed(HandshakeFault::WeakShare);
    let ee =
        contributory(&secret.diffie_hellman(&PublicKey::from(server.bank_share))).ok_or(weak)?;
    let es = match es {
        Some(es) => es.clone(),
        None => contributory(&secret.diffie_hellman(&PublicKey::from(bank.public))).ok_or(weak)?,
    };
    Ok(Agreed::new(ee, es))
}

/// An X25519 result as bytes, `None` when it is all zero (a low-order share).
fn contributory(shared: &x25519_dalek::SharedSecret) -> Option<Zeroizing<[u8; 32]>> {
    shared
        .was_contributory()
        .then(|| Zeroizing::new(shared.to_bytes()))
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

/// A terminal's first flight: draws the client nonce (32 bytes) then the X25519 secret
/// (32 bytes) from `rng` (nothing more), and seals `terminal` for `bank` (§6.7). `None` when
/// `dh_es` is all zero (never, with a pin checked as §15.1 requires).
pub(crate) fn client_hello_start(
    rng: &mut impl Rng,
    terminal: &TerminalId,
    bank: &BankPin,
) -> Option<ClientStart> {
    let (client_nonce, secret, client_share) = client_exchange_start(rng);
    let es = secret.diffie_hellman(&PublicKey::from(bank.public));
    if !es.was_contributory() {
        return None;
    }
    let es = Zeroizing::new(es.to_bytes());
    let keys = IdKeys::derive(&es, &client_share, bank);
    let sealed = seal_terminal_id(&keys, terminal);
    Some(ClientStart {
        client_nonce,
        secret,
        client_share,
        sealed,
        es,
    })
}

/// A terminal's first flight, before it is written out.
pub(crate) struct ClientStart {
    pub(crate) client_nonce: [u8; 32],
    pub(crate) secret: StaticSecret,
    pub(crate) client_share: [u8; 32],
    pub(crate) sealed: [u8; SEALED_ID_LEN],
    /// `dh_es`, kept for the key schedule once the bank answers.
    pub(crate) es: Zeroizing<[u8; 32]>,
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

/// The sealed terminal id's plaintext length: the id, then zero bytes up to 64 (so every id
/// seals to the same length).
const SEALED_ID_PLAIN: usize = TerminalId::MAX_LEN;
/// Its AES-256-CBC ciphertext: 64 bytes plus a full block of PKCS#7 padding.
const SEALED_ID_CIPHER: usize = SEALED_ID_PLAIN + IV_LEN;
/// `sealed_terminal_id` on the wire: ciphertext || MAC, 112 bytes.
pub(crate) const SEALED_ID_LEN: usize = SEALED_ID_CIPHER + TAG_LEN;

/// The IV of the sealed id: all zero. Each [`IdKeys`] encrypts exactly one message (the keys
/// come from a fresh ephemeral share), so a fixed IV loses nothing and draws nothing.
const SEALED_ID_IV: [u8; IV_LEN] = [0; IV_LEN];

/// Seals a terminal id for the bank whose static key is pinned (PROTOCOL.md §6.7):
/// `ciphertext = AES-256-CBC(K_id_enc, 0^16, id || 0^(64 − len(id)))` (PKCS#7, 80 bytes), then
/// `ciphertext || HMAC(K_id_mac, label || ciphertext)`.
pub(crate) fn seal_terminal_id(keys: &IdKeys, terminal: &TerminalId) -> [u8; SEALED_ID_LEN] {
    let mut plain = Zeroizing::new([0u8; SEALED_ID_PLAIN]);
    let id = terminal.as_str().as_bytes();
    plain[..id.len()].copy_from_slice(id);
    let ciphertext = aes256_cbc_encrypt(keys.enc.bytes(), &SEALED_ID_IV, plain.as_ref());
    let mac = hmac_sha256(keys.mac.bytes(), &[label::SEALED_ID, &ciphertext]);
    let mut sealed = [0u8; SEALED_ID_LEN];
    sealed[..SEALED_ID_CIPHER].copy_from_slice(&ciphertext);
    sealed[SEALED_ID_CIPHER..].copy_from_slice(&mac);
    sealed
}

/// Opens a sealed terminal id: the MAC first (constant time), then decryption, then the
/// plaintext's shape (an id, then only zero bytes).
pub(crate) fn open_terminal_id(
    keys: &IdKeys,
    sealed: &[u8; SEALED_ID_LEN],
) -> Result<TerminalId, HandshakeFault> {
    let (ciphertext, mac) = sealed.split_at(SEALED_ID_CIPHER);
    if !hmac_sha256_verify(keys.mac.bytes(), &[label::SEALED_ID, ciphertext], mac) {
        return Err(HandshakeFault::SealedId);
    }
    // Only reachable with a valid MAC, i.e. from the holder of the ephemeral secret.
    let plain = aes256_cbc_decrypt(keys.enc.bytes(), &SEALED_ID_IV, ciphertext)
        .filter(|p| p.len() == SEALED_ID_PLAIN)
        .ok_or(HandshakeFault::Malformed)?;
    let len = plain
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(SEALED_ID_PLAIN);
    if plain[len..].iter().any(|&b| b != 0) {
        return Err(HandshakeFault::Malformed);
    }
    std::str::from_utf8(&plain[..len])
        .ok()
        .and_then(TerminalId::new)
        .ok_or(HandshakeFault::Malformed)
}

/// The key the bank answers with: the one it found (`known`), or a throw-away one drawn from
/// `rng` (32 bytes) for an unknown, revoked, used or expired one, so that the peer fails at the
/// same step either way.
pub(crate) fn psk_or_throwaway(psk: Option<&Psk>, rng: &mut impl Rng) -> (Psk, bool) {
    match psk {
        Some(psk) => (psk.clone(), true),
        None => (Psk::random(rng), false),
    }
}

/// The bank's check of a ClientFinished (constant time): the MAC and whether the key was
/// known always both run, so timing does not tell an unknown name from a wrong key.
pub(crate) fn check_client_finished(keys: &Keys, known: bool, wire: &[u8]) -> Result<(), Error> {
    let fail = Error::HandshakeFailed;
    let Handshake::ClientFinished { finished } = Handshake::parse(wire).map_err(fail)? else {
        return Err(fail(HandshakeFault::Malformed));
    };
    let Some(finished) = hexfmt::decode_array::<32>(&finished) else {
        return Err(fail(HandshakeFault::Malformed));
    };
    let mac_ok = keys.verify_client_finished(&finished);
    if mac_ok & known {
        Ok(())
    } else {
        Err(fail(HandshakeFault::BadFinished))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::Key;

    fn keys() -> IdKeys {
        IdKeys {
            enc: Key::from_bytes([0x11; 32]),
            mac: Key::from_bytes([0x22; 32]),
        }
    }

    /// A sealed id over any 64-byte plaintext, with a valid MAC: what only the holder of the
    /// ephemeral secret can make.
    fn seal_raw(plain: &[u8; SEALED_ID_PLAIN]) -> [u8; SEALED_ID_LEN] {
        let k = keys();
        let ciphertext = aes256_cbc_encrypt(k.enc.bytes(), &SEALED_ID_IV, plain);
        let mac = hmac_sha256(k.mac.bytes(), &[label::SEALED_ID, &ciphertext]);
        let mut sealed = [0u8; SEALED_ID_LEN];
        sealed[..SEALED_ID_CIPHER].copy_from_slice(&ciphertext);
        sealed[SEALED_ID_CIPHER..].copy_from_slice(&mac);
        sealed
    }

    #[test]
    fn ids_of_every_length_seal_to_112_bytes_and_open_to_themselves() {
        for id in ["a", "atm-0001", &"Z_9-".repeat(16)] {
            let id = TerminalId::new(id).unwrap();
            let sealed = seal_terminal_id(&keys(), &id);
            assert_eq!(
                sealed,
                seal_raw(&{
                    let mut p = [0u8; SEALED_ID_PLAIN];
                    p[..id.as_str().len()].copy_from_slice(id.as_str().as_bytes());
                    p
                })
            );
            assert_eq!(open_terminal_id(&keys(), &sealed).unwrap(), id);
        }
    }

    #[test]
    fn a_plaintext_that_is_not_an_id_then_zeros_is_refused_after_the_mac() {
        let mut nul_inside = [0u8; SEALED_ID_PLAIN];
        nul_inside[..3].copy_from_slice(b"atm");
        nul_inside[4] = b'1';
        let mut byte_after = [0u8; SEALED_ID_PLAIN];
        byte_after[..8].copy_from_slice(b"atm-0001");
        byte_after[63] = b'x';
        let mut bad_char = [0u8; SEALED_ID_PLAIN];
        bad_char[..7].copy_from_slice(b"atm 001");
        for plain in [[0u8; SEALED_ID_PLAIN], nul_inside, byte_after, bad_char] {
            assert_eq!(
                open_terminal_id(&keys(), &seal_raw(&plain)).err(),
                Some(HandshakeFault::Malformed)
            );
        }
        // With a MAC that does not verify, nothing is decrypted at all.
        let mut sealed = seal_raw(&byte_after);
        sealed[SEALED_ID_LEN - 1] ^= 1;
        assert_eq!(
            open_terminal_id(&keys(), &sealed).err(),
            Some(HandshakeFault::SealedId)
        );
    }
}

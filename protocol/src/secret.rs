//! Secret and identity newtypes: the PSK and the master secret it makes (no Debug, zeroized on
//! drop), and the terminal id.

use core::fmt;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::primitives::hmac_sha256;
use crate::{hexfmt, Rng};

/// A terminal's 32-byte pre-shared key. No `Debug`, no `Display`; zeroized on drop.
#[derive(Clone)]
pub struct Psk(Zeroizing<[u8; 32]>);

impl Psk {
    /// Wraps 32 key bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// A fresh random key (the bank uses this to enroll a terminal).
    pub fn random(rng: &mut impl Rng) -> Self {
        let mut key = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(key.as_mut());
        Self(key)
    }

    /// Parses 64 lowercase hex characters (surrounding whitespace ignored).
    pub fn from_hex(text: &str) -> Option<Self> {
        hexfmt::decode_array::<32>(text.trim()).map(Self::from_bytes)
    }

    /// The key as 64 lowercase hex characters, for the auth file or an enrollment link.
    pub fn to_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(hexfmt::encode(self.0.as_ref()))
    }

    /// The raw key bytes, for storing. Handle with care.
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }

    /// The handshake's master secret: HMAC-SHA256(this key, `input`). This is the only use a
    /// handshake makes of a terminal key (PROTOCOL.md §6.8), so a key kept outside this crate
    /// (a non-extractable WebCrypto key) computes the same value with its own HMAC.
    pub fn master_secret(&self, input: &MasterInput) -> MasterSecret {
        MasterSecret::from_bytes(hmac_sha256(self.expose(), &[input.bytes()]))
    }
}

/// Length of a [`MasterInput`]: the label (24 bytes), both nonces and both X25519 results.
pub const MASTER_INPUT_LEN: usize = 24 + 4 * 32;

/// What a terminal key MACs into a handshake's master secret (PROTOCOL.md §6.8):
/// `"atm-psk-v2 master secret" || client_nonce || bank_nonce || dh_ee || dh_es`.
/// It holds both X25519 results, so it is secret too: no `Debug`; zeroized on drop.
#[cfg_attr(fuzzing, derive(Clone))]
pub struct MasterInput(Zeroizing<[u8; MASTER_INPUT_LEN]>);

impl MasterInput {
    /// All zero, to be filled in place (no unzeroized copy is left behind).
    pub(crate) fn zeroed() -> Self {
        Self(Zeroizing::new([0u8; MASTER_INPUT_LEN]))
    }

    pub(crate) fn bytes_mut(&mut self) -> &mut [u8; MASTER_INPUT_LEN] {
        &mut self.0
    }

    /// The bytes to MAC with the terminal key (HMAC-SHA256).
    pub fn bytes(&self) -> &[u8; MASTER_INPUT_LEN] {
        &self.0
    }
}

/// A handshake's master secret, HMAC-SHA256(PSK, [`MasterInput`]). No `Debug`; zeroized on drop.
pub struct MasterSecret(Zeroizing<[u8; 32]>);

impl MasterSecret {
    /// Wraps the 32-byte HMAC a key holder computed.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// Wraps the HMAC a key holder computed; `None` unless it is exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(bytes).ok().map(Self::from_bytes)
    }

    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl PartialEq for Psk {
    fn eq(&self, other: &Self) -> bool {
        self.0[..].ct_eq(&other.0[..]).into()
    }
}
impl Eq for Psk {}

/// Whether `text` is a public name of the protocol (a terminal id, a bank id): 1 to `max`
/// characters of `[A-Za-z0-9_-]`.
pub(crate) fn is_name(text: &str, max: usize) -> bool {
    (1..=max).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A terminal's name: 1 to 64 characters of `[A-Za-z0-9_-]`, sent in the ClientHello, sealed
/// for the bank's static key (PROTOCOL.md §6.7), so the bank can find the terminal's PSK.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TerminalId(String);

impl TerminalId {
    /// Longest terminal id.
    pub const MAX_LEN: usize = 64;

    /// Validates and wraps a terminal id.
    pub fn new(id: impl Into<String>) -> Option<Self> {
        let id = id.into();
        is_name(&id, Self::MAX_LEN).then_some(Self(id))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for TerminalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TerminalId({})", self.0)
    }
}

impl fmt::Display for TerminalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl serde::Serialize for TerminalId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for TerminalId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::new(<String as serde::Deserialize>::deserialize(d)?)
            .ok_or_else(|| serde::de::Error::custom("invalid TerminalId"))
    }
}

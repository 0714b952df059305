//! The bank's own identity (protocol v2): its id and static X25519 key pair, held by the bank
//! alone, and the pin a terminal keeps of it (the id and public key, learnt at enrollment).

use core::fmt;

use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use crate::{hexfmt, Rng};

/// The bank's public name: 1 to 64 characters of `[A-Za-z0-9_-]` (the bank-server uses the
/// 32 hex digits of its store's identity). It enters every handshake transcript.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct BankId(String);

impl BankId {
    /// Longest bank id.
    pub const MAX_LEN: usize = 64;

    /// Validates and wraps a bank id.
    pub fn new(id: impl Into<String>) -> Option<Self> {
        let id = id.into();
        crate::secret::is_name(&id, Self::MAX_LEN).then_some(Self(id))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for BankId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BankId({})", self.0)
    }
}

impl fmt::Display for BankId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a terminal pins of its bank at enrollment: the bank's id and static public key. Public
/// data; the handshake fails unless the peer proves it holds the matching private key.
#[derive(Clone, PartialEq, Eq)]
pub struct BankPin {
    /// The bank's id.
    pub bank_id: BankId,
    /// The bank's static X25519 public key.
    pub public: [u8; 32],
}

impl BankPin {
    /// From a bank id and a public key as 64 lowercase hex characters. `None` when either is
    /// malformed, or the key is one of the low-order points (with which no secret could be
    /// agreed).
    pub fn from_parts(bank_id: &str, public_hex: &str) -> Option<Self> {
        let bank_id = BankId::new(bank_id)?;
        let public = hexfmt::decode_array::<32>(public_hex)?;
        Self::new(bank_id, public)
    }

    /// Wraps an id and public key; `None` for a low-order public key.
    pub fn new(bank_id: BankId, public: [u8; 32]) -> Option<Self> {
        // A low-order point gives the same all-zero secret with every private key.
        let probe = StaticSecret::from([0x5a; 32]);
        probe
            .diffie_hellman(&PublicKey::from(public))
            .was_contributory()
            .then_some(Self { bank_id, public })
    }

    /// The public key as 64 lowercase hex characters.
    pub fn public_hex(&self) -> String {
        hexfmt::encode(&self.public)
    }

    /// The pin as one token, `<bank id>:<public key, 64 lowercase hex>`: how auth files,
    /// enrollment links and the bank's own output carry it.
    pub fn to_text(&self) -> String {
        format!("{}:{}", self.bank_id, self.public_hex())
    }

    /// Parses [`BankPin::to_text`] exactly (no spaces, lowercase hex).
    pub fn parse(text: &str) -> Option<Self> {
        let (id, public) = text.split_once(':')?;
        Self::from_parts(id, public)
    }
}

impl fmt::Debug for BankPin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BankPin({}, {})", self.bank_id, self.public_hex())
    }
}

/// The bank's static key pair and id. Only the bank holds it. No `Debug`; the private key is
/// zeroized on drop.
#[derive(Clone)]
pub struct BankKey {
    bank_id: BankId,
    secret: StaticSecret,
    public: [u8; 32],
}

impl BankKey {
    /// A fresh key pair: 32 bytes drawn from `rng`.
    pub fn random(bank_id: BankId, rng: &mut impl Rng) -> Self {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(bytes.as_mut());
        Self::from_secret(bank_id, *bytes)
    }

    /// From the 32 private-key bytes (X25519 clamps them).
    pub fn from_secret(bank_id: BankId, secret: [u8; 32]) -> Self {
        let secret = StaticSecret::from(secret);
        let public = PublicKey::from(&secret).to_bytes();
        Self {
            bank_id,
            secret,
            public,
        }
    }

    /// From the private key as 64 lowercase hex characters (surrounding whitespace ignored).
    pub fn from_hex(bank_id: BankId, text: &str) -> Option<Self> {
        let bytes = Zeroizing::new(hexfmt::decode_array::<32>(text.trim())?);
        Some(Self::from_secret(bank_id, *bytes))
    }

    /// The private key as 64 lowercase hex characters, for the bank's key file.
    pub fn secret_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(hexfmt::encode(self.secret.as_bytes()))
    }

    /// What terminals pin: the id and the public key.
    pub fn pin(&self) -> BankPin {
        BankPin {
            bank_id: self.bank_id.clone(),
            public: self.public,
        }
    }

    /// The bank's id.
    pub fn bank_id(&self) -> &BankId {
        &self.bank_id
    }

    /// X25519 of the private key with a peer's share.
    pub(crate) fn agree(&self, share: &[u8; 32]) -> x25519_dalek::SharedSecret {
        self.secret.diffie_hellman(&PublicKey::from(*share))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_validated() {
        assert!(BankId::new("0123456789abcdef0123456789abcdef").is_some());
        assert!(BankId::new("").is_none());
        assert!(BankId::new("a b").is_none());
        assert!(BankId::new("x".repeat(65)).is_none());
    }

    #[test]
    fn a_pin_refuses_low_order_points_and_bad_hex() {
        let id = BankId::new("bank").unwrap();
        let key = BankKey::from_secret(id.clone(), [9; 32]);
        let pin = key.pin();
        assert_eq!(
            BankPin::from_parts("bank", &pin.public_hex()),
            Some(pin.clone())
        );
        assert!(BankPin::new(id.clone(), [0; 32]).is_none());
        let mut one = [0u8; 32];
        one[0] = 1;
        assert!(BankPin::new(id, one).is_none());
        assert!(BankPin::from_parts("bank", &pin.public_hex().to_uppercase()).is_none());
        assert!(BankPin::from_parts("bank", "00").is_none());
        assert!(BankPin::from_parts("bad id", &pin.public_hex()).is_none());
        assert_eq!(BankPin::parse(&pin.to_text()), Some(pin.clone()));
        assert!(pin.to_text().starts_with("bank:"));
        assert!(BankPin::parse(&pin.public_hex()).is_none());
        assert!(BankPin::parse(&format!("{}:", pin.to_text())).is_none());
        let back = BankKey::from_hex(BankId::new("bank").unwrap(), &key.secret_hex()).unwrap();
        assert!(back.pin() == pin);
    }
}

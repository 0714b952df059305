//! Signed cards (docs/PROTOCOL.md §17): a card is an Ed25519 key pair whose seed stays on the
//! card file; the bank stores only the public key, and a login signs the session's channel
//! binding, so a signature (or anything else the bank or a terminal sees) logs in nowhere else.
//!
//! Every signed message is `label || channel binding (32) || len(username) (1) || username`,
//! followed by the new public key (32) for a reissue. Verification is strict
//! ([`ed25519_dalek::VerifyingKey::verify_strict`]): no small-order keys, no malleable
//! signatures. A public key that does not decode to a point, or is of small order, is refused
//! while parsing.

use core::fmt;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroizing;

use crate::{hexfmt, Rng, Username};

/// Domain-separation labels of the signed messages (ASCII, no terminator).
pub mod label {
    /// A login with a signed card (`card_login_signed`).
    pub const LOGIN: &[u8] = b"atm-psk-v2 card login";
    /// A signed card's replacement by a new key (`reissue_card_signed`).
    pub const REISSUE: &[u8] = b"atm-psk-v2 card reissue";
}

/// 32 bytes both ends of one session derive from its key schedule and no other session shares
/// (§17.1). Not a key: knowing it decrypts nothing; it is what a card signs so that the
/// signature is worth nothing outside this session. Its `Debug` does not print it.
#[derive(Clone, PartialEq, Eq)]
pub struct ChannelBinding([u8; 32]);

impl ChannelBinding {
    /// Wraps 32 bytes (sessions make their own; this is for vectors and tests).
    pub fn new(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for ChannelBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ChannelBinding(..)")
    }
}

/// The bytes a card signs: `label || binding || len(username) || username || extra`.
pub fn signed_message(
    label: &[u8],
    binding: &ChannelBinding,
    username: &Username,
    extra: &[u8],
) -> Vec<u8> {
    let name = username.as_str().as_bytes();
    let len = u8::try_from(name.len()).expect("usernames are at most 250 bytes");
    let mut message = Vec::with_capacity(label.len() + 32 + 1 + name.len() + extra.len());
    message.extend_from_slice(label);
    message.extend_from_slice(binding.as_bytes());
    message.push(len);
    message.extend_from_slice(name);
    message.extend_from_slice(extra);
    message
}

/// A signed card's private key: the 32-byte Ed25519 seed kept on the card file. Never sent.
/// No `Debug`; zeroized on drop.
#[derive(Clone)]
pub struct CardKey(SigningKey);

impl CardKey {
    /// A fresh key from 32 bytes of `rng` (the ATM draws it for `-n`).
    pub fn random(rng: &mut impl Rng) -> Self {
        let mut seed = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(seed.as_mut());
        Self::from_seed(&seed)
    }

    /// The key of a seed.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self(SigningKey::from_bytes(seed))
    }

    /// Parses 64 lowercase hex characters (the seed).
    pub fn from_hex(text: &str) -> Option<Self> {
        hexfmt::decode_array::<32>(text).map(|seed| Self::from_seed(&Zeroizing::new(seed)))
    }

    /// The seed as 64 lowercase hex characters.
    pub fn to_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(hexfmt::encode(&Zeroizing::new(self.0.to_bytes())[..]))
    }

    /// The public key the bank stores.
    pub fn public(&self) -> CardPublic {
        CardPublic(self.0.verifying_key())
    }

    /// The signature of a `card_login_signed` for `username` on the session of `binding`.
    pub fn sign_login(&self, binding: &ChannelBinding, username: &Username) -> CardSignature {
        let message = signed_message(label::LOGIN, binding, username, &[]);
        CardSignature(self.0.sign(&message).to_bytes())
    }

    /// The signature of a `reissue_card_signed` that replaces this card of `username` with
    /// `new`, on the session of `binding`.
    pub fn sign_reissue(
        &self,
        binding: &ChannelBinding,
        username: &Username,
        new: &CardPublic,
    ) -> CardSignature {
        let message = signed_message(label::REISSUE, binding, username, new.as_bytes());
        CardSignature(self.0.sign(&message).to_bytes())
    }
}

impl Serialize for CardKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for CardKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = Zeroizing::new(String::deserialize(d)?);
        Self::from_hex(&text).ok_or_else(|| de::Error::custom("invalid card key"))
    }
}

/// A signed card's public key, what the bank stores: 64 lowercase hex characters on the wire,
/// a point of the curve that is not of small order (checked while parsing).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct CardPublic(VerifyingKey);

impl CardPublic {
    /// Decodes 32 bytes; `None` unless they are a point of large order.
    pub fn from_bytes(bytes: &[u8; 32]) -> Option<Self> {
        VerifyingKey::from_bytes(bytes)
            .ok()
            .filter(|key| !key.is_weak())
            .map(Self)
    }

    /// Parses 64 lowercase hex characters.
    pub fn from_hex(text: &str) -> Option<Self> {
        Self::from_bytes(&hexfmt::decode_array::<32>(text)?)
    }

    /// The 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        self.0.as_bytes()
    }

    /// The key as 64 lowercase hex characters (as stored by the bank).
    pub fn to_hex(&self) -> String {
        hexfmt::encode(self.as_bytes())
    }

    /// `true` when `signature` is this key's strict signature of a login of `username` on
    /// the session of `binding`.
    pub fn verify_login(
        &self,
        binding: &ChannelBinding,
        username: &Username,
        signature: &CardSignature,
    ) -> bool {
        self.verify(
            &signed_message(label::LOGIN, binding, username, &[]),
            signature,
        )
    }

    /// `true` when `signature` is this key's strict signature of its replacement by `new`
    /// for `username` on the session of `binding`.
    pub fn verify_reissue(
        &self,
        binding: &ChannelBinding,
        username: &Username,
        new: &CardPublic,
        signature: &CardSignature,
    ) -> bool {
        let message = signed_message(label::REISSUE, binding, username, new.as_bytes());
        self.verify(&message, signature)
    }

    fn verify(&self, message: &[u8], signature: &CardSignature) -> bool {
        let signature = Signature::from_bytes(&signature.0);
        self.0.verify_strict(message, &signature).is_ok()
    }
}

impl fmt::Debug for CardPublic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CardPublic({})", self.to_hex())
    }
}

impl Serialize for CardPublic {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for CardPublic {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::from_hex(&String::deserialize(d)?)
            .ok_or_else(|| de::Error::custom("invalid card public key"))
    }
}

/// An Ed25519 signature by a card: 128 lowercase hex characters on the wire. Bound to one
/// session, so it is not a secret; its `Debug` does not print it all the same.
#[derive(Clone, PartialEq, Eq)]
pub struct CardSignature([u8; 64]);

impl CardSignature {
    /// Wraps 64 bytes (`R || s`).
    pub fn from_bytes(bytes: [u8; 64]) -> Self {
        Self(bytes)
    }

    /// The 64 bytes.
    pub fn as_bytes(&self) -> &[u8; 64] {
        &self.0
    }

    /// Parses 128 lowercase hex characters.
    pub fn from_hex(text: &str) -> Option<Self> {
        hexfmt::decode_array::<64>(text).map(Self)
    }
}

impl fmt::Debug for CardSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CardSignature(..)")
    }
}

impl Serialize for CardSignature {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hexfmt::encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for CardSignature {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::from_hex(&String::deserialize(d)?)
            .ok_or_else(|| de::Error::custom("invalid card signature"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::OsRng;

    fn bob() -> Username {
        Username::new("bob").unwrap()
    }

    #[test]
    fn a_login_signature_verifies_only_for_its_session_name_and_key() {
        let key = CardKey::random(&mut OsRng);
        let here = ChannelBinding::new([1; 32]);
        let there = ChannelBinding::new([2; 32]);
        let signature = key.sign_login(&here, &bob());
        assert!(key.public().verify_login(&here, &bob(), &signature));
        assert!(!key.public().verify_login(&there, &bob(), &signature));
        let alice = Username::new("alice").unwrap();
        assert!(!key.public().verify_login(&here, &alice, &signature));
        let other = CardKey::random(&mut OsRng);
        assert!(!other.public().verify_login(&here, &bob(), &signature));
        // A login signature is no reissue signature.
        let new = other.public();
        assert!(!key.public().verify_reissue(&here, &bob(), &new, &signature));
        let reissue = key.sign_reissue(&here, &bob(), &new);
        assert!(key.public().verify_reissue(&here, &bob(), &new, &reissue));
        assert!(!key
            .public()
            .verify_reissue(&here, &bob(), &key.public(), &reissue));
        assert!(!key.public().verify_login(&here, &bob(), &reissue));
        let mut flipped = *signature.as_bytes();
        flipped[10] ^= 1;
        let flipped = CardSignature::from_bytes(flipped);
        assert!(!key.public().verify_login(&here, &bob(), &flipped));
    }

    #[test]
    fn small_order_and_invalid_public_keys_are_refused() {
        // The identity point and a point of order 8 (canonical encodings).
        let identity = {
            let mut b = [0u8; 32];
            b[0] = 1;
            b
        };
        assert!(CardPublic::from_bytes(&identity).is_none());
        let order8 = hexfmt::decode_array::<32>(
            "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
        )
        .unwrap();
        assert!(CardPublic::from_bytes(&order8).is_none());
        // Not on the curve (y = 2).
        let mut off = [0u8; 32];
        off[0] = 2;
        assert!(CardPublic::from_bytes(&off).is_none());
        let key = CardKey::random(&mut OsRng).public();
        assert_eq!(CardPublic::from_hex(&key.to_hex()), Some(key));
        assert!(CardPublic::from_hex(&key.to_hex().to_uppercase()).is_none());
    }

    #[test]
    fn keys_round_trip_as_hex_and_debug_shows_no_secret() {
        let key = CardKey::random(&mut OsRng);
        let back = CardKey::from_hex(&key.to_hex()).unwrap();
        assert_eq!(back.public(), key.public());
        let signature = key.sign_login(&ChannelBinding::new([0; 32]), &bob());
        let text = serde_json::to_string(&signature).unwrap();
        assert_eq!(text.len(), 128 + 2);
        assert_eq!(
            serde_json::from_str::<CardSignature>(&text).unwrap(),
            signature
        );
        assert_eq!(format!("{signature:?}"), "CardSignature(..)");
        assert_eq!(
            format!("{:?}", ChannelBinding::new([9; 32])),
            "ChannelBinding(..)"
        );
    }
}

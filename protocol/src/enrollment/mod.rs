//! Enrollment by a one-time code (protocol v2): the code's text and key, shared by the two
//! sides of its handshake ([`client`], [`server`]), in which the new terminal learns the
//! bank's identity and both ends derive the terminal's key, which never travels.
//!
//! A code is `e-<10 lowercase hex>-<32 lowercase hex>`: a public id (what the bank looks the
//! code up by) and a 128-bit secret. Its handshake is the terminal handshake with the code's
//! key in place of a terminal key, the code's id in place of a terminal id, another transcript
//! label, and the bank's id and static key sent in the bank's hello (the terminal has no pin
//! yet: the Finished, under the code's key, authenticates them). The bank consumes the code
//! before it answers, so each code gets one guess; a recorded exchange lets nobody test
//! guesses offline, because the secret is 128 bits.

pub mod client;
pub mod server;

use zeroize::Zeroizing;

use crate::primitives::hkdf_sha256;
use crate::schedule::label;
use crate::{hexfmt, Psk, Rng, TerminalId};

/// The prefix of a code's id; terminal ids the bank makes start with `t-`.
const ID_PREFIX: &str = "e-";
/// Random bytes in a code's id.
const ID_BYTES: usize = 5;

/// A one-time enrollment code. No `Debug`: it holds the secret.
pub struct EnrollmentCode {
    id: TerminalId,
    secret: Zeroizing<[u8; 16]>,
}

impl EnrollmentCode {
    /// Length of a code's text.
    pub const TEXT_LEN: usize = ID_PREFIX.len() + 2 * ID_BYTES + 1 + 32;

    /// A fresh code: 5 bytes of id, then 16 bytes of secret, from `rng`.
    pub fn random(rng: &mut impl Rng) -> Self {
        let mut id = [0u8; ID_BYTES];
        rng.fill_bytes(&mut id);
        let mut secret = Zeroizing::new([0u8; 16]);
        rng.fill_bytes(secret.as_mut());
        Self {
            id: TerminalId::new(format!("{ID_PREFIX}{}", hexfmt::encode(&id)))
                .expect("e- and hex form an id"),
            secret,
        }
    }

    /// Parses `e-<10 hex>-<32 hex>` (lowercase; spaces around it ignored).
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let rest = text.strip_prefix(ID_PREFIX)?;
        let (id_hex, secret_hex) = rest.split_once('-')?;
        hexfmt::decode_array::<ID_BYTES>(id_hex)?;
        let secret = Zeroizing::new(hexfmt::decode_array::<16>(secret_hex)?);
        Some(Self {
            id: TerminalId::new(format!("{ID_PREFIX}{id_hex}"))?,
            secret,
        })
    }

    /// The code as text, for the operator to hand over. Contains the secret.
    pub fn to_text(&self) -> Zeroizing<String> {
        let mut text = Zeroizing::new(String::with_capacity(Self::TEXT_LEN));
        text.push_str(self.id.as_str());
        text.push('-');
        text.push_str(&hexfmt::encode(self.secret.as_ref()));
        text
    }

    /// The code's public id.
    pub fn id(&self) -> &TerminalId {
        &self.id
    }

    /// The key its handshake runs on: HKDF-SHA256(salt = "atm-psk-v2 enrollment code",
    /// IKM = the secret, info = the id), 32 bytes. The bank stores this, never the code.
    pub fn psk(&self) -> Psk {
        let okm = hkdf_sha256(
            label::CODE_PSK,
            self.secret.as_ref(),
            self.id.as_str().as_bytes(),
            32,
        )
        .expect("32 bytes is a valid HKDF-SHA256 output length");
        let mut key = [0u8; 32];
        key.copy_from_slice(&okm);
        let psk = Psk::from_bytes(key);
        zeroize::Zeroize::zeroize(&mut key);
        psk
    }
}

/// Whether `id` names an enrollment code rather than a terminal.
pub fn is_code_id(id: &TerminalId) -> bool {
    id.as_str()
        .strip_prefix(ID_PREFIX)
        .is_some_and(|hex| hexfmt::decode_array::<ID_BYTES>(hex).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng;

    #[test]
    fn codes_round_trip_and_nothing_else_parses() {
        let code = EnrollmentCode::random(&mut rand_chacha::ChaCha20Rng::seed_from_u64(1));
        let text = code.to_text();
        assert_eq!(text.len(), EnrollmentCode::TEXT_LEN);
        assert!(text.starts_with("e-"));
        let back = EnrollmentCode::parse(&format!(" {} \n", text.as_str())).unwrap();
        assert_eq!(back.id(), code.id());
        assert!(back.psk() == code.psk());
        assert!(is_code_id(code.id()));
        assert!(!is_code_id(&TerminalId::new("t-0123456789ab").unwrap()));
        assert!(!is_code_id(&TerminalId::new("e-01234").unwrap()));
        let good = text.as_str().to_owned();
        for bad in [
            String::new(),
            good.to_uppercase(),
            good.replacen("e-", "t-", 1),
            good[..good.len() - 1].to_owned(),
            format!("{good}0"),
            good.replacen('-', "", 2),
            good.replace(&good[2..12], "0123456789a"),
        ] {
            assert!(EnrollmentCode::parse(&bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn the_code_key_depends_on_secret_and_id() {
        let a = EnrollmentCode::parse(&format!("e-0000000000-{}", "11".repeat(16))).unwrap();
        let b = EnrollmentCode::parse(&format!("e-0000000000-{}", "12".repeat(16))).unwrap();
        let c = EnrollmentCode::parse(&format!("e-0000000001-{}", "11".repeat(16))).unwrap();
        assert!(a.psk() != b.psk());
        assert!(a.psk() != c.psk());
    }
}

//! Secrets at rest: keys derived from the bank's key file (kept outside the data directory)
//! that seal the terminal and enrollment keys the store keeps, so a copy of the data directory
//! alone holds no key a terminal uses, and the pepper that keys password hashes.
//!
//! Each key is derived with HKDF-SHA256 (salt `"bank-server storage keys"`, IKM the bank's
//! static private key, info its label). A sealed value is `sealed1:` and the hex of
//! `iv (16) || AES-256-CBC(enc, iv, key) (48) || HMAC-SHA256(mac, "sealed1" || len(id) || id ||
//! iv || ciphertext) (32)`: encrypt-then-MAC, bound to the record it belongs to, so a sealed
//! key moved to another terminal does not open.

use protocol::primitives::{aes256_cbc_decrypt, aes256_cbc_encrypt, hkdf_sha256, hmac_sha256};
use protocol::{BankKey, Psk};
use zeroize::Zeroizing;

const SALT: &[u8] = b"bank-server storage keys";
const LABEL_SEAL_ENC: &[u8] = b"seal enc";
const LABEL_SEAL_MAC: &[u8] = b"seal mac";
const LABEL_PEPPER: &[u8] = b"password pepper";
const PREFIX: &str = "sealed1:";
const MAC_LABEL: &[u8] = b"sealed1";

/// The keys that protect secrets at rest. No `Debug`; zeroized on drop.
pub struct StorageKeys {
    enc: Zeroizing<[u8; 32]>,
    mac: Zeroizing<[u8; 32]>,
    pepper: crate::passwords::Pepper,
}

fn derive(ikm: &[u8], label: &[u8]) -> Zeroizing<[u8; 32]> {
    let okm = hkdf_sha256(SALT, ikm, label, 32).expect("32 bytes is a valid HKDF-SHA256 length");
    let mut key = Zeroizing::new([0u8; 32]);
    key.copy_from_slice(&okm);
    key
}

impl StorageKeys {
    /// The storage keys of the bank whose static key is `bank`.
    pub fn of(bank: &BankKey) -> Self {
        let secret = bank.secret_hex();
        let bytes = Zeroizing::new(hex::decode(secret.as_str()).expect("the key's own hex"));
        Self {
            enc: derive(&bytes, LABEL_SEAL_ENC),
            mac: derive(&bytes, LABEL_SEAL_MAC),
            pepper: crate::passwords::Pepper::new(derive(&bytes, LABEL_PEPPER)),
        }
    }

    /// The pepper that keys password hashes (see [`crate::passwords`]).
    pub fn pepper(&self) -> crate::passwords::Pepper {
        self.pepper.clone()
    }

    fn mac_of(&self, id: &str, iv: &[u8], ciphertext: &[u8]) -> [u8; 32] {
        let id_len = u8::try_from(id.len()).unwrap_or(u8::MAX).to_be_bytes();
        hmac_sha256(
            self.mac.as_ref(),
            &[MAC_LABEL, &id_len, id.as_bytes(), iv, ciphertext],
        )
    }

    /// `key` sealed for the record `id` (a terminal or enrollment code id).
    pub fn seal(&self, id: &str, key: &Psk) -> String {
        let mut iv = [0u8; 16];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut iv);
        let ciphertext = aes256_cbc_encrypt(&self.enc, &iv, key.expose());
        let mac = self.mac_of(id, &iv, &ciphertext);
        let mut out = String::with_capacity(PREFIX.len() + 2 * (16 + 48 + 32));
        out.push_str(PREFIX);
        out.push_str(&hex::encode(iv));
        out.push_str(&hex::encode(&ciphertext));
        out.push_str(&hex::encode(mac));
        out
    }

    /// Opens what [`Self::seal`] made for `id`; `None` when it was altered, belongs to another
    /// record or another bank.
    pub fn open(&self, id: &str, sealed: &str) -> Option<Psk> {
        let bytes = hex::decode(sealed.strip_prefix(PREFIX)?).ok()?;
        if bytes.len() != 16 + 48 + 32 {
            return None;
        }
        let (iv, rest) = bytes.split_at(16);
        let (ciphertext, mac) = rest.split_at(48);
        // Compared in constant time.
        if !bool::from(subtle::ConstantTimeEq::ct_eq(
            &self.mac_of(id, iv, ciphertext)[..],
            mac,
        )) {
            return None;
        }
        let iv: [u8; 16] = iv.try_into().ok()?;
        let plain = Zeroizing::new(aes256_cbc_decrypt(&self.enc, &iv, ciphertext)?);
        let key: [u8; 32] = plain.as_slice().try_into().ok()?;
        Some(Psk::from_bytes(key))
    }
}

/// Whether a stored key is sealed (else it is a key in plain hex, as stores kept them before).
pub fn is_sealed(stored: &str) -> bool {
    stored.starts_with(PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::BankId;

    fn keys(seed: u8) -> StorageKeys {
        StorageKeys::of(&BankKey::from_secret(BankId::new("b").unwrap(), [seed; 32]))
    }

    #[test]
    fn sealed_keys_open_only_for_their_record_and_bank() {
        let k = keys(1);
        let psk = Psk::from_bytes([7; 32]);
        let sealed = k.seal("t-1", &psk);
        assert!(is_sealed(&sealed));
        assert!(!sealed.contains(&hex::encode([7u8; 32])));
        assert!(k.open("t-1", &sealed).unwrap() == psk);
        assert!(
            k.open("t-2", &sealed).is_none(),
            "moved to another terminal"
        );
        assert!(
            keys(2).open("t-1", &sealed).is_none(),
            "another bank's keys"
        );
        let mut bytes = sealed.clone().into_bytes();
        let last = bytes.len() - 1;
        bytes[last] = if bytes[last] == b'0' { b'1' } else { b'0' };
        assert!(k.open("t-1", &String::from_utf8(bytes).unwrap()).is_none());
        assert!(k.open("t-1", &hex::encode([7u8; 32])).is_none());
        // Fresh IVs: sealing twice differs.
        assert_ne!(k.seal("t-1", &psk), sealed);
    }
}

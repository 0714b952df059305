//! The four primitives the protocol is built from, wrapped once: HMAC-SHA256, HKDF-SHA256,
//! AES-256-CBC with PKCS#7, SHA-256. Public so known-answer suites (RFC 4231, RFC 5869,
//! Wycheproof) test exactly the code the protocol runs.

use aes::{Aes256Dec, Aes256Enc};
use cbc::cipher::{block_padding::Pkcs7, BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

type HmacSha256 = Hmac<Sha256>;

/// Length of an HMAC-SHA256 tag, a SHA-256 digest and every derived key.
pub const TAG_LEN: usize = 32;
/// AES block and IV length.
pub const IV_LEN: usize = 16;
/// AES-256 key length.
pub const KEY_LEN: usize = 32;

fn hmac(key: &[u8], parts: &[&[u8]]) -> HmacSha256 {
    // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    for part in parts {
        mac.update(part);
    }
    mac
}

/// HMAC-SHA256 over the concatenation of `parts`.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; TAG_LEN] {
    hmac(key, parts).finalize().into_bytes().into()
}

/// Checks a full 32-byte HMAC-SHA256 tag in constant time. A tag of any other length, truncated
/// or not, is refused.
pub fn hmac_sha256_verify(key: &[u8], parts: &[&[u8]], tag: &[u8]) -> bool {
    tag.len() == TAG_LEN && hmac(key, parts).verify_slice(tag).is_ok()
}

/// SHA-256 over the concatenation of `parts`.
pub fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for part in parts {
        h.update(part);
    }
    h.finalize().into()
}

/// An HKDF-SHA256 pseudorandom key (RFC 5869 extract step). No `Debug`.
pub struct Prk(hkdf::Hkdf<Sha256>);

impl Prk {
    /// HKDF-Extract(salt, ikm).
    pub fn extract(salt: &[u8], ikm: &[u8]) -> Self {
        Self(hkdf::Hkdf::<Sha256>::new(Some(salt), ikm))
    }

    /// HKDF-Expand(prk, info, len); `None` when `len > 255 * 32`.
    pub fn expand(&self, info: &[u8], len: usize) -> Option<Zeroizing<Vec<u8>>> {
        let mut okm = Zeroizing::new(vec![0u8; len]);
        self.0.expand(info, &mut okm).ok()?;
        Some(okm)
    }
}

/// HKDF-SHA256 (RFC 5869) extract then expand to `len` bytes; `None` when `len > 255 * 32`.
pub fn hkdf_sha256(salt: &[u8], ikm: &[u8], info: &[u8], len: usize) -> Option<Zeroizing<Vec<u8>>> {
    Prk::extract(salt, ikm).expand(info, len)
}

/// AES-256-CBC encryption with PKCS#7 padding.
pub fn aes256_cbc_encrypt(key: &[u8; KEY_LEN], iv: &[u8; IV_LEN], plaintext: &[u8]) -> Vec<u8> {
    let mut buffer = Vec::with_capacity(aes256_cbc_padded_len(plaintext.len()));
    buffer.extend_from_slice(plaintext);
    aes256_cbc_encrypt_in_place(key, iv, &mut buffer);
    buffer
}

/// AES-256-CBC decryption with PKCS#7 padding; `None` for a length that is not a positive
/// multiple of 16 or for bad padding.
pub fn aes256_cbc_decrypt(
    key: &[u8; KEY_LEN],
    iv: &[u8; IV_LEN],
    ciphertext: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    let mut buffer = Zeroizing::new(ciphertext.to_vec());
    aes256_cbc_decrypt_in_place(key, iv, &mut buffer).then_some(buffer)
}

/// The length of the PKCS#7-padded AES-256-CBC ciphertext of a `len`-byte plaintext: the next
/// multiple of 16 above `len` (1 to 16 bytes of padding).
pub fn aes256_cbc_padded_len(len: usize) -> usize {
    (len / IV_LEN + 1) * IV_LEN
}

/// AES-256-CBC encryption with PKCS#7 padding in place: `buffer` holds the plaintext and ends
/// holding the ciphertext. A buffer whose capacity is at least
/// [`aes256_cbc_padded_len`]`(buffer.len())` never moves, so no copy of the plaintext is left
/// behind in freed memory.
pub fn aes256_cbc_encrypt_in_place(key: &[u8; KEY_LEN], iv: &[u8; IV_LEN], buffer: &mut Vec<u8>) {
    let len = buffer.len();
    buffer.resize(aes256_cbc_padded_len(len), 0);
    // The encryption key schedule alone (`Aes256` would expand the decryption one too).
    cbc::Encryptor::<Aes256Enc>::new(key.into(), iv.into())
        .encrypt_padded_mut::<Pkcs7>(buffer, len)
        .expect("the buffer has room for the padding");
}

/// AES-256-CBC decryption with PKCS#7 padding in place: `buffer` holds the ciphertext and ends
/// holding the plaintext. `false` for a length that is not a positive multiple of 16 or for
/// bad padding (the buffer then holds garbage, and its owner should wipe it).
pub fn aes256_cbc_decrypt_in_place(
    key: &[u8; KEY_LEN],
    iv: &[u8; IV_LEN],
    buffer: &mut Vec<u8>,
) -> bool {
    if buffer.is_empty() || buffer.len() % IV_LEN != 0 {
        return false;
    }
    let Ok(plaintext) =
        cbc::Decryptor::<Aes256Dec>::new(key.into(), iv.into()).decrypt_padded_mut::<Pkcs7>(buffer)
    else {
        return false;
    };
    let len = plaintext.len();
    buffer.truncate(len);
    true
}

//! Strict lowercase hex: the only text encoding of bytes on the wire.

/// Writes the lowercase hex of `bytes` to the first `2 * bytes.len()` bytes of `out`
/// (constant time in the data: `base16ct`, no table or branch on a byte's value).
pub(crate) fn encode_to_slice(bytes: &[u8], out: &mut [u8]) {
    base16ct::lower::encode(bytes, out).expect("room for the hex of every byte");
}

/// Appends the lowercase hex of `bytes` to `out`.
pub(crate) fn encode_into(bytes: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    out.resize(start + 2 * bytes.len(), 0);
    encode_to_slice(bytes, &mut out[start..]);
}

/// Lowercase hex of `bytes`.
pub(crate) fn encode(bytes: &[u8]) -> String {
    let mut out = vec![0; 2 * bytes.len()];
    encode_to_slice(bytes, &mut out);
    String::from_utf8(out).expect("hex digits are ASCII")
}

/// Decodes lowercase hex of exactly `out.len()` bytes into `out`; `false` for any other length,
/// uppercase or any other character (`out` then holds garbage). Constant time in the data
/// (`base16ct`): keys and card secrets are decoded here too.
pub(crate) fn decode_into(text: &[u8], out: &mut [u8]) -> bool {
    text.len() == 2 * out.len() && base16ct::lower::decode(text, out).is_ok()
}

/// Whether every byte of `text` is a lowercase hex digit (a record's public fields: not
/// constant time).
pub(crate) fn is_hex(text: &[u8]) -> bool {
    text.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Decode lowercase hex; `None` for odd length, uppercase or any other character. (The record
/// layer decodes into its own buffer with [`decode_into`].)
#[cfg(test)]
pub(crate) fn decode(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    let mut out = vec![0u8; text.len() / 2];
    decode_into(text.as_bytes(), &mut out).then_some(out)
}

/// Decode lowercase hex of exactly `N` bytes.
pub(crate) fn decode_array<const N: usize>(text: impl AsRef<[u8]>) -> Option<[u8; N]> {
    let mut out = [0u8; N];
    decode_into(text.as_ref(), &mut out).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_round_trips_and_only_lowercase_hex_decodes() {
        let all: Vec<u8> = (0..=255).collect();
        let text = encode(&all);
        assert_eq!(text, hex::encode(&all));
        assert_eq!(decode(&text).as_deref(), Some(&all[..]));
        for c in 0..=255u8 {
            let ok = c.is_ascii_digit() || (b'a'..=b'f').contains(&c);
            assert_eq!(is_hex(&[b'a', c, b'0']), ok);
            for text in [[c, b'0'], [b'0', c]] {
                let mut out = [0u8; 1];
                assert_eq!(decode_into(&text, &mut out), ok, "{text:?}");
            }
        }
        assert_eq!(decode("abc"), None);
        assert_eq!(decode(""), Some(vec![]));
        assert_eq!(decode_array::<2>("00ff"), Some([0, 255]));
        assert_eq!(decode_array::<2>("00f"), None);
        assert_eq!(decode_array::<2>("00ff00"), None);
        assert_eq!(decode_array::<1>("é"), None);
    }
}

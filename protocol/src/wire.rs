//! The JSON shapes on the wire: the handshake messages (a terminal's and an enrollment's), the
//! record, the two plaintexts.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::HandshakeFault;
use crate::hexfmt;
use crate::message::{Request, Response};

/// The keys whose value is a list of objects: `entries` (a history, the console's audit
/// lines), `sessions` and `terminals` (console views).
const OBJECT_LISTS: [&str; 3] = ["entries", "sessions", "terminals"];

/// Parses one protocol JSON text strictly: the text must be an object, and so must every nested
/// value except the lists named in [`OBJECT_LISTS`] (lists of objects) and the console's
/// `per_minute` (a list of integers). Serde alone would also accept a struct written as an
/// array (`["history",5]`); this refuses it. Duplicate keys and unknown fields are refused by
/// the typed parse that follows.
pub(crate) fn parse_strict<'a, T: Deserialize<'a>>(text: &'a [u8]) -> Option<T> {
    fn objects_only(v: &Value) -> bool {
        match v {
            Value::Array(_) => false,
            Value::Object(map) => map.iter().all(|(key, v)| match v {
                Value::Array(items) if OBJECT_LISTS.contains(&key.as_str()) => {
                    items.iter().all(|i| i.is_object() && objects_only(i))
                }
                Value::Array(items) if key == "per_minute" => items.iter().all(Value::is_u64),
                other => objects_only(other),
            }),
            _ => true,
        }
    }
    // A JSON array needs a `[` outside strings: a text with no `[` byte at all has none, and
    // its first token decides whether it is an object. Only a text with a `[` somewhere (a
    // list, or a bracket inside a string) pays for the shape check.
    let first = text.iter().find(|b| !b.is_ascii_whitespace());
    if !text.contains(&b'[') {
        if first != Some(&b'{') {
            return None;
        }
        return serde_json::from_slice(text).ok();
    }
    let shape: Value = serde_json::from_slice(text).ok()?;
    if !(shape.is_object() && objects_only(&shape)) {
        return None;
    }
    serde_json::from_slice(text).ok()
}

/// A handshake message. Exactly one of these per WebSocket text frame.
#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum Handshake {
    /// A terminal's first flight: its id sealed for the bank's static key (PROTOCOL.md §6.7).
    ClientHello {
        version: u8,
        sealed_terminal_id: String,
        client_nonce: String,
        client_share: String,
        timestamp: u64,
    },
    ServerHello {
        version: u8,
        bank_nonce: String,
        bank_share: String,
        timestamp: u64,
        finished: String,
    },
    ClientFinished {
        finished: String,
    },
    /// An enrollment's first flight: a one-time code's id instead of a terminal id.
    EnrollHello {
        version: u8,
        code_id: String,
        client_nonce: String,
        client_share: String,
        timestamp: u64,
    },
    /// The bank's answer to an enrollment: its identity, for the terminal to pin once the
    /// Finished (under the code's key) verifies.
    EnrollServerHello {
        version: u8,
        bank_id: String,
        bank_key: String,
        bank_nonce: String,
        bank_share: String,
        timestamp: u64,
        finished: String,
    },
}

impl Handshake {
    pub(crate) fn parse(wire: &[u8]) -> Result<Self, HandshakeFault> {
        if wire.len() > crate::MAX_HANDSHAKE_LEN {
            return Err(HandshakeFault::TooLarge);
        }
        parse_strict(wire).ok_or(HandshakeFault::Malformed)
    }

    pub(crate) fn to_text(&self) -> String {
        serde_json::to_string(self).expect("handshake messages always serialize")
    }
}

/// A protected record as received: `{"seq":N,"iv":"..","ciphertext":"..","mac":".."}`. The
/// strings borrow from the received text unless they hold a JSON escape (which a receiver
/// accepts, PROTOCOL.md §3.3). A record is written by [`write_record`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Record<'a> {
    pub(crate) seq: u64,
    #[serde(borrow)]
    pub(crate) iv: Cow<'a, str>,
    #[serde(borrow)]
    pub(crate) ciphertext: Cow<'a, str>,
    #[serde(borrow)]
    pub(crate) mac: Cow<'a, str>,
}

/// A received record's fields, its three strings as their bytes (checked as hex by the caller).
pub(crate) struct RecordFields<'a> {
    pub(crate) seq: u64,
    pub(crate) iv: Cow<'a, [u8]>,
    pub(crate) ciphertext: Cow<'a, [u8]>,
    pub(crate) mac: Cow<'a, [u8]>,
}

/// Parses a received record's JSON (PROTOCOL.md §8.4 step 3). A text in exactly the form
/// [`write_record`] writes, every string lowercase hex digits only, is read directly; any other
/// text goes to [`parse_strict`], which decides. Both give the same fields for such a text
/// (tested), so the direct reading changes no verdict; it only skips serde's work.
pub(crate) fn parse_record(text: &[u8]) -> Option<RecordFields<'_>> {
    if let Some(fields) = read_written_record(text) {
        return Some(fields);
    }
    let record: Record<'_> = parse_strict(text)?;
    Some(RecordFields {
        seq: record.seq,
        iv: cow_bytes(record.iv),
        ciphertext: cow_bytes(record.ciphertext),
        mac: cow_bytes(record.mac),
    })
}

/// A string's bytes, still borrowed when the string was.
fn cow_bytes(text: Cow<'_, str>) -> Cow<'_, [u8]> {
    match text {
        Cow::Borrowed(text) => Cow::Borrowed(text.as_bytes()),
        Cow::Owned(text) => Cow::Owned(text.into_bytes()),
    }
}

/// Reads a record in exactly [`write_record`]'s form with an `iv` of 32 and a `mac` of 64
/// characters, or `None` (any whitespace, escape, character that is not lowercase hex in a
/// string, other key order, leading zero...). With those two lengths fixed, the ciphertext is
/// what lies between its key and the record's fixed-length tail, and no byte is searched for.
fn read_written_record(text: &[u8]) -> Option<RecordFields<'_>> {
    const IV_HEX: usize = 32;
    const MAC_HEX: usize = 64;
    const TAIL: usize = b"\",\"mac\":\"".len() + MAC_HEX + b"\"}".len();
    let rest = text.strip_prefix(b"{\"seq\":")?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    let (number, rest) = rest.split_at(digits);
    let seq = read_decimal(number)?;
    let rest = rest.strip_prefix(b",\"iv\":\"")?;
    let (iv, rest) = rest.split_at_checked(IV_HEX)?;
    let rest = rest.strip_prefix(b"\",\"ciphertext\":\"")?;
    let (ciphertext, tail) = rest.split_at_checked(rest.len().checked_sub(TAIL)?)?;
    let mac = tail.strip_prefix(b"\",\"mac\":\"")?;
    let (mac, end) = mac.split_at_checked(MAC_HEX)?;
    let shape =
        end == b"\"}" && hexfmt::is_hex(iv) && hexfmt::is_hex(ciphertext) && hexfmt::is_hex(mac);
    shape.then_some(RecordFields {
        seq,
        iv: Cow::Borrowed(iv),
        ciphertext: Cow::Borrowed(ciphertext),
        mac: Cow::Borrowed(mac),
    })
}

/// A JSON integer's decimal digits as a `u64`; `None` for no digits, a leading zero (not JSON)
/// or a value past `u64::MAX`.
fn read_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || (digits.len() > 1 && digits[0] == b'0') {
        return None;
    }
    digits.iter().try_fold(0u64, |n, d| {
        n.checked_mul(10)?
            .checked_add(u64::from(d.wrapping_sub(b'0')))
    })
}

/// The JSON text of a record, written straight from its bytes: exactly what serializing
/// [`Record`] with `serde_json` gives (`{"seq":N,"iv":"<hex>","ciphertext":"<hex>","mac":"<hex>"}`,
/// no whitespace, PROTOCOL.md §8.3 step 7), with one allocation.
pub(crate) fn write_record(seq: u64, iv: &[u8; 16], ciphertext: &[u8], mac: &[u8; 32]) -> String {
    const PARTS: [&[u8]; 5] = [
        b"{\"seq\":",
        b",\"iv\":\"",
        b"\",\"ciphertext\":\"",
        b"\",\"mac\":\"",
        b"\"}",
    ];
    let fixed: usize = PARTS.iter().map(|p| p.len()).sum();
    let hex_len = 2 * (iv.len() + ciphertext.len() + mac.len());
    let mut out = Vec::with_capacity(fixed + 20 + hex_len);
    out.extend_from_slice(PARTS[0]);
    write_decimal(seq, &mut out);
    out.extend_from_slice(PARTS[1]);
    hexfmt::encode_into(iv, &mut out);
    out.extend_from_slice(PARTS[2]);
    hexfmt::encode_into(ciphertext, &mut out);
    out.extend_from_slice(PARTS[3]);
    hexfmt::encode_into(mac, &mut out);
    out.extend_from_slice(PARTS[4]);
    String::from_utf8(out).expect("a record is ASCII")
}

/// Appends the decimal digits of `n` (no sign, no leading zeros: a JSON integer) to `out`.
fn write_decimal(mut n: u64, out: &mut Vec<u8>) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + u8::try_from(n % 10).expect("a digit");
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[start..]);
}

/// Plaintext of a client-to-bank record.
#[derive(Serialize)]
pub(crate) struct ClientPlainOut<'a> {
    pub(crate) ts: u64,
    pub(crate) request: &'a Request,
}

/// Plaintext of a client-to-bank record, parsed.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ClientPlainIn {
    pub(crate) ts: u64,
    pub(crate) request: Request,
}

/// Plaintext of a bank-to-client record.
#[derive(Serialize)]
pub(crate) struct BankPlainOut<'a> {
    pub(crate) ts: u64,
    pub(crate) response: &'a Response,
}

/// Plaintext of a bank-to-client record, parsed.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BankPlainIn {
    pub(crate) ts: u64,
    pub(crate) response: Response,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_record_is_what_serde_json_writes_and_parses_back() {
        #[derive(Serialize)]
        struct Owned {
            seq: u64,
            iv: String,
            ciphertext: String,
            mac: String,
        }
        let (iv, mac) = ([0xa5; 16], [0x0f; 32]);
        for (seq, ciphertext) in [
            (0, vec![0u8; 16]),
            (9, (0..=255).collect::<Vec<u8>>()),
            (10, vec![0xff; 32]),
            (1_000_000_007, vec![1; 48]),
            (u64::MAX, vec![0x80; 8016]),
        ] {
            let written = write_record(seq, &iv, &ciphertext, &mac);
            let expected = serde_json::to_string(&Owned {
                seq,
                iv: hexfmt::encode(&iv),
                ciphertext: hexfmt::encode(&ciphertext),
                mac: hexfmt::encode(&mac),
            })
            .unwrap();
            assert_eq!(written, expected);
            let back: Record<'_> = parse_strict(written.as_bytes()).unwrap();
            assert_eq!(back.seq, seq);
            assert!(matches!(back.ciphertext, Cow::Borrowed(_)));
            assert_eq!(hexfmt::decode(&back.ciphertext), Some(ciphertext));
        }
        // An escaped character is still read (PROTOCOL.md §3.3), into an owned string.
        let escaped_record = br#"{"seq":1,"iv":"\u0061","ciphertext":"00","mac":"11"}"#;
        let fields = parse_record(escaped_record).unwrap();
        assert!(matches!(fields.iv, Cow::Owned(ref iv) if iv == b"a"));
        let escaped = br#"{"seq":1,"iv":"\u0061","ciphertext":"00","mac":"11"}"#;
        let back: Record<'_> = parse_strict(escaped).unwrap();
        assert!(matches!(back.iv, Cow::Owned(ref iv) if iv == "a"));
    }

    /// `parse_record` against serde alone, on `text`: the same verdict and the same fields.
    fn agrees_with_serde(text: &[u8]) {
        let fields = parse_record(text);
        let serde: Option<Record<'_>> = parse_strict(text);
        match (fields, serde) {
            (None, None) => {}
            (Some(f), Some(r)) => {
                assert_eq!(f.seq, r.seq, "{}", String::from_utf8_lossy(text));
                assert_eq!(&f.iv[..], r.iv.as_bytes());
                assert_eq!(&f.ciphertext[..], r.ciphertext.as_bytes());
                assert_eq!(&f.mac[..], r.mac.as_bytes());
            }
            (f, r) => panic!(
                "{}: direct {} serde {}",
                String::from_utf8_lossy(text),
                f.is_some(),
                r.is_some()
            ),
        }
    }

    #[test]
    fn the_direct_record_reading_agrees_with_serde_on_every_one_byte_change() {
        let written = write_record(10, &[0x3c; 16], &[0xa7; 16], &[0x01; 32]);
        for short in [
            write_record(7, &[0; 16], &[], &[0; 32]),
            write_record(7, &[0; 16], &[1], &[0; 32]),
        ] {
            assert!(read_written_record(short.as_bytes()).is_some());
            agrees_with_serde(short.as_bytes());
            for end in 0..short.len() {
                agrees_with_serde(&short.as_bytes()[..end]);
            }
        }
        assert!(read_written_record(written.as_bytes()).is_some());
        let bytes = written.as_bytes();
        let swaps = b"0119afgA\"\\ ,:}{[-.e+\x7f\x00\xc3";
        for at in 0..=bytes.len() {
            // Deleted, replaced, inserted.
            if at < bytes.len() {
                agrees_with_serde(&[&bytes[..at], &bytes[at + 1..]].concat());
            }
            for &b in swaps {
                if at < bytes.len() {
                    agrees_with_serde(&[&bytes[..at], &[b], &bytes[at + 1..]].concat());
                }
                agrees_with_serde(&[&bytes[..at], &[b], &bytes[at..]].concat());
            }
        }
        for seq in [
            "0",
            "00",
            "01",
            "-0",
            "1.0",
            "1e2",
            "18446744073709551615",
            "18446744073709551616",
            "99999999999999999999",
        ] {
            let text = format!(r#"{{"seq":{seq},"iv":"00","ciphertext":"","mac":"ff"}}"#);
            agrees_with_serde(text.as_bytes());
        }
    }

    #[test]
    fn a_plaintext_may_end_in_padding_spaces_and_nothing_else() {
        let json = br#"{"ts":5,"request":{"type":"balance"}}"#;
        let padded = [&json[..], &[b' '; 2_000][..]].concat();
        let plain = parse_strict::<ClientPlainIn>(&padded).expect("trailing spaces are accepted");
        assert!((plain.ts, plain.request) == (5, Request::Balance {}));
        // Any JSON whitespace is insignificant (PROTOCOL.md §3.3); anything else after the
        // object is not.
        for tail in [
            &b" \t\r\n"[..],
            b"  x",
            b" {}",
            b"\0",
            b" \x0c",
            b"\xc2\xa0",
        ] {
            let text = [&json[..], tail].concat();
            let ok = tail.iter().all(|b| b" \t\r\n".contains(b));
            assert_eq!(
                parse_strict::<ClientPlainIn>(&text).is_some(),
                ok,
                "{tail:?}"
            );
        }
    }

    #[test]
    fn a_struct_as_an_array_is_refused_on_either_path() {
        // No `[` anywhere: the fast path; a `[` inside a string alone: the shape check.
        let plain = |text: &str| parse_strict::<ClientPlainIn>(text.as_bytes()).is_some();
        assert!(plain(r#"{"ts":5,"request":{"type":"balance"}}"#));
        assert!(!plain(r#"[5,{"type":"balance"}]"#));
        assert!(!plain(r#"{"ts":5,"request":["balance"]}"#));
        assert!(!plain(r#" "ts" "#));
        assert!(!plain("5"));
        assert!(plain(
            r#"{"ts":5,"request":{"type":"login","username":"alice","password":"pa[ss"}}"#
        ));
        assert!(!plain(r#"{"ts":5,"request":["login","alice","pa[ss"]}"#));
    }
}

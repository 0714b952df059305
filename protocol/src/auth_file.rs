//! The auth file both ends must agree on: the bank writes it, native ATMs read it. One JSON
//! line, `{"terminal_id":"t-...","psk":"<64 lowercase hex>","bank":"<bank id>:<64 hex>"}`,
//! and a newline. `bank` is the bank's pinned identity (protocol v2, [`BankPin::to_text`]).
//!
//! Text only, no IO: the bank writes [`AuthFile::to_text`] to a new 0600 file, the atm reads a
//! file and passes its text to [`AuthFile::parse`].

use core::fmt;

use serde::Deserialize;
use zeroize::Zeroizing;

use crate::{BankPin, Psk, TerminalId};

/// A terminal's credentials as the auth file holds them. No `Debug`: it holds the key.
#[derive(Clone)]
pub struct AuthFile {
    /// The terminal's public id.
    pub terminal_id: TerminalId,
    /// The terminal's pre-shared key.
    pub psk: Psk,
    /// The bank's identity, pinned: only the holder of its private key passes the handshake.
    pub bank: BankPin,
}

/// Why a text is not an auth file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFileError {
    /// Not one JSON object with exactly the three string fields `terminal_id`, `psk`, `bank`.
    Malformed,
    /// A file of protocol v1: no `bank` field. The terminal must be enrolled again.
    NoBankKey,
    /// `terminal_id` is not a terminal id.
    BadTerminalId,
    /// `psk` is not 64 hex characters.
    BadKey,
    /// `bank` is not `<bank id>:<64 hex>` of a usable public key.
    BadBankKey,
}

impl fmt::Display for AuthFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Malformed => "not an auth file",
            Self::BadTerminalId => "the auth file's terminal id is not valid",
            Self::BadKey => "the auth file's key is not 64 hex characters",
            Self::NoBankKey => {
                "the auth file has no bank key (it was made for protocol v1): enroll this terminal again"
            }
            Self::BadBankKey => "the auth file's bank key is not valid",
        })
    }
}

impl std::error::Error for AuthFileError {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthFileJson {
    terminal_id: String,
    psk: String,
    /// Absent in a version 1 file; `null` is not absent (see [`absent_or_string`]).
    #[serde(default, deserialize_with = "absent_or_string")]
    bank: Option<String>,
}

/// A present `bank` must be a string: `"bank":null` is malformed, not a version 1 file.
fn absent_or_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    String::deserialize(d).map(Some)
}

/// `{"terminal_id":"<id>","psk":"<64 hex>","bank":"<bank id>:<64 hex>"}` without a newline
/// (the console shows this line). Contains the key.
pub fn line(terminal: &TerminalId, psk: &Psk, bank: &BankPin) -> Zeroizing<String> {
    let bank = bank.to_text();
    // Sized up front so the key is never left behind in a reallocated buffer.
    let mut text = Zeroizing::new(String::with_capacity(
        60 + TerminalId::MAX_LEN + 2 * psk.expose().len() + bank.len(),
    ));
    text.push_str("{\"terminal_id\":\"");
    text.push_str(terminal.as_str());
    text.push_str("\",\"psk\":\"");
    text.push_str(&psk.to_hex());
    text.push_str("\",\"bank\":\"");
    text.push_str(&bank);
    text.push_str("\"}");
    text
}

impl AuthFile {
    /// Largest auth file a reader should accept, in bytes (a real one is about 110).
    pub const MAX_LEN: u64 = 4096;

    /// Parses an auth file's text (surrounding whitespace ignored).
    pub fn parse(text: &str) -> Result<Self, AuthFileError> {
        // An object only: serde alone would also take `["t-1","<psk>"]` for the struct.
        let text = text.trim();
        if !text.starts_with('{') {
            return Err(AuthFileError::Malformed);
        }
        let json: AuthFileJson =
            serde_json::from_str(text).map_err(|_| AuthFileError::Malformed)?;
        let psk_hex = Zeroizing::new(json.psk);
        Ok(Self {
            terminal_id: TerminalId::new(json.terminal_id).ok_or(AuthFileError::BadTerminalId)?,
            // Exactly 64 lowercase hex characters: no trimming inside the string.
            psk: crate::hexfmt::decode_array::<32>(&psk_hex)
                .map(Psk::from_bytes)
                .ok_or(AuthFileError::BadKey)?,
            bank: BankPin::parse(&json.bank.ok_or(AuthFileError::NoBankKey)?)
                .ok_or(AuthFileError::BadBankKey)?,
        })
    }

    /// The file's text: [`line`] and a newline. Contains the key.
    pub fn to_text(&self) -> Zeroizing<String> {
        let mut text = line(&self.terminal_id, &self.psk, &self.bank);
        text.push('\n');
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BankId, BankKey};

    const ZEROS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

    fn pin() -> BankPin {
        BankKey::from_secret(BankId::new("b-1").unwrap(), [3; 32]).pin()
    }

    #[test]
    fn the_text_is_byte_exact_and_round_trips() {
        let auth = AuthFile {
            terminal_id: TerminalId::new("t-0123456789ab").unwrap(),
            psk: Psk::from_bytes([7; 32]),
            bank: pin(),
        };
        let text = auth.to_text();
        let want = format!(
            "{{\"terminal_id\":\"t-0123456789ab\",\"psk\":\"{}\",\"bank\":\"b-1:{}\"}}\n",
            "07".repeat(32),
            pin().public_hex()
        );
        assert_eq!(text.as_str(), want);
        assert_eq!(
            line(&auth.terminal_id, &auth.psk, &auth.bank).as_str(),
            want.trim_end()
        );
        let back = AuthFile::parse(&text).unwrap();
        assert_eq!(back.terminal_id, auth.terminal_id);
        assert!(back.psk == auth.psk);
        assert!(back.bank == auth.bank);
        // Whitespace around the object is ignored.
        assert!(AuthFile::parse(&format!("  {}\r\n\n", text.trim_end())).is_ok());
    }

    #[test]
    fn anything_else_is_refused_with_its_reason() {
        let bank = pin().to_text();
        let t1 = |psk: &str| format!(r#"{{"terminal_id":"t-1","psk":"{psk}","bank":"{bank}"}}"#);
        assert_eq!(
            AuthFile::parse(&t1("00")).err(),
            Some(AuthFileError::BadKey)
        );
        for spaced in [format!(" {ZEROS} "), format!("{ZEROS}\n")] {
            assert_eq!(
                AuthFile::parse(&t1(&spaced.escape_default().to_string())).err(),
                Some(AuthFileError::BadKey),
                "{spaced:?}"
            );
        }
        assert_eq!(
            AuthFile::parse(&t1(&format!("{}g", &ZEROS[1..]))).err(),
            Some(AuthFileError::BadKey)
        );
        assert_eq!(
            AuthFile::parse(&format!(
                r#"{{"terminal_id":"bad id","psk":"{ZEROS}","bank":"{bank}"}}"#
            ))
            .err(),
            Some(AuthFileError::BadTerminalId)
        );
        // A protocol v1 file says so.
        assert_eq!(
            AuthFile::parse(&format!(r#"{{"terminal_id":"t-1","psk":"{ZEROS}"}}"#)).err(),
            Some(AuthFileError::NoBankKey)
        );
        for bad_bank in [
            String::new(),
            ZEROS.to_owned(),
            format!("b-1:{ZEROS}"),
            bank.to_uppercase(),
            format!("{bank} "),
        ] {
            assert_eq!(
                AuthFile::parse(&format!(
                    r#"{{"terminal_id":"t-1","psk":"{ZEROS}","bank":"{bad_bank}"}}"#
                ))
                .err(),
                Some(AuthFileError::BadBankKey),
                "{bad_bank}"
            );
        }
        for bad in [
            String::new(),
            "{}".into(),
            "null".into(),
            format!(r#"{{"terminal_id":"t-1","psk":"{ZEROS}","bank":"{bank}","x":1}}"#),
            format!(r#"["t-1","{ZEROS}","{bank}"]"#),
            r#"{"terminal_id":"t-1"}"#.into(),
            format!(r#"{{"terminal_id":1,"psk":"{ZEROS}","bank":"{bank}"}}"#),
            format!(r#"{{"terminal_id":"t-1","psk":"{ZEROS}","bank":7}}"#),
            format!(r#"{{"terminal_id":"t-1","psk":"{ZEROS}","bank":null}}"#),
            format!(r#"{{"account":"bob","card":"{ZEROS}"}}"#),
            t1(ZEROS)[..20].to_owned(),
        ] {
            assert_eq!(
                AuthFile::parse(&bad).err(),
                Some(AuthFileError::Malformed),
                "{bad}"
            );
        }
    }
}

//! The auth file both ends must agree on: the bank writes it, native ATMs read it. One JSON
//! line, `{"terminal_id":"t-...","psk":"<64 lowercase hex>"}`, and a newline.
//!
//! Text only, no IO: the bank writes [`AuthFile::to_text`] to a new 0600 file, the atm reads a
//! file and passes its text to [`AuthFile::parse`].

use core::fmt;

use serde::Deserialize;
use zeroize::Zeroizing;

use crate::{Psk, TerminalId};

/// A terminal's credentials as the auth file holds them. No `Debug`: it holds the key.
#[derive(Clone)]
pub struct AuthFile {
    /// The terminal's public id.
    pub terminal_id: TerminalId,
    /// The terminal's pre-shared key.
    pub psk: Psk,
}

/// Why a text is not an auth file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFileError {
    /// Not one JSON object with exactly the two string fields `terminal_id` and `psk`.
    Malformed,
    /// `terminal_id` is not a terminal id.
    BadTerminalId,
    /// `psk` is not 64 hex characters.
    BadKey,
}

impl fmt::Display for AuthFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Malformed => "not an auth file",
            Self::BadTerminalId => "the auth file's terminal id is not valid",
            Self::BadKey => "the auth file's key is not 64 hex characters",
        })
    }
}

impl std::error::Error for AuthFileError {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthFileJson {
    terminal_id: String,
    psk: String,
}

/// `{"terminal_id":"<id>","psk":"<64 hex>"}` without a newline (the console shows this line).
/// Contains the key.
pub fn line(terminal: &TerminalId, psk: &Psk) -> Zeroizing<String> {
    // Sized up front so the key is never left behind in a reallocated buffer.
    let mut text = Zeroizing::new(String::with_capacity(
        40 + TerminalId::MAX_LEN + 2 * psk.expose().len(),
    ));
    text.push_str("{\"terminal_id\":\"");
    text.push_str(terminal.as_str());
    text.push_str("\",\"psk\":\"");
    text.push_str(&psk.to_hex());
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
            psk: Psk::from_hex(&psk_hex).ok_or(AuthFileError::BadKey)?,
        })
    }

    /// The file's text: [`line`] and a newline. Contains the key.
    pub fn to_text(&self) -> Zeroizing<String> {
        let mut text = line(&self.terminal_id, &self.psk);
        text.push('\n');
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ZEROS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

    #[test]
    fn the_text_is_byte_exact_and_round_trips() {
        let auth = AuthFile {
            terminal_id: TerminalId::new("t-0123456789ab").unwrap(),
            psk: Psk::from_bytes([7; 32]),
        };
        let text = auth.to_text();
        let want = format!(
            "{{\"terminal_id\":\"t-0123456789ab\",\"psk\":\"{}\"}}\n",
            "07".repeat(32)
        );
        assert_eq!(text.as_str(), want);
        assert_eq!(line(&auth.terminal_id, &auth.psk).as_str(), want.trim_end());
        let back = AuthFile::parse(&text).unwrap();
        assert_eq!(back.terminal_id, auth.terminal_id);
        assert!(back.psk == auth.psk);
        // Whitespace around the object is ignored.
        assert!(AuthFile::parse(&format!("  {}\r\n\n", text.trim_end())).is_ok());
    }

    #[test]
    fn anything_else_is_refused_with_its_reason() {
        let t1 = |psk: &str| format!(r#"{{"terminal_id":"t-1","psk":"{psk}"}}"#);
        assert_eq!(
            AuthFile::parse(&t1("00")).err(),
            Some(AuthFileError::BadKey)
        );
        assert_eq!(
            AuthFile::parse(&t1(&format!("{}g", &ZEROS[1..]))).err(),
            Some(AuthFileError::BadKey)
        );
        assert_eq!(
            AuthFile::parse(&format!(r#"{{"terminal_id":"bad id","psk":"{ZEROS}"}}"#)).err(),
            Some(AuthFileError::BadTerminalId)
        );
        for bad in [
            String::new(),
            "{}".into(),
            "null".into(),
            format!(r#"{{"terminal_id":"t-1","psk":"{ZEROS}","x":1}}"#),
            format!(r#"["t-1","{ZEROS}"]"#),
            r#"{"terminal_id":"t-1"}"#.into(),
            format!(r#"{{"terminal_id":1,"psk":"{ZEROS}"}}"#),
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

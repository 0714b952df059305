//! The atm's two files: reading the bank's auth file, and reading and creating card files.
//!
//! A card file is one JSON line, `{"account":"<name>","card":"<64 lowercase hex>"}`, created
//! with `O_EXCL` and mode 0600 only after the bank has opened the account. The two formats
//! have disjoint fields and both refuse unknown fields, so a card given as the auth file (or
//! the auth file given as a card) is recognised and refused.

use std::fs::File;
use std::io::{Read as _, Write as _};

use atm_client::AuthFile;
use protocol::{CardSecret, Username};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// Largest auth or card file read; both are under 200 bytes.
pub const MAX_FILE_LEN: u64 = 4096;

/// A file could not be read, was not of its kind, or could not be created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadFile;

/// Reads a small text file, refusing anything larger than [`MAX_FILE_LEN`].
fn read_small(name: &str) -> Result<Zeroizing<String>, BadFile> {
    let file = File::open(name).map_err(|_| BadFile)?;
    let mut text = Zeroizing::new(String::new());
    file.take(MAX_FILE_LEN + 1)
        .read_to_string(&mut text)
        .map_err(|_| BadFile)?;
    if text.len() as u64 > MAX_FILE_LEN {
        return Err(BadFile);
    }
    Ok(text)
}

/// Loads the bank's auth file (`{"terminal_id":..,"psk":..,"bank":..}`, [`protocol::auth_file`]).
pub fn load_auth(name: &str) -> Result<AuthFile, BadFile> {
    AuthFile::parse(&read_small(name)?).map_err(|_| BadFile)
}

/// A card: the account it opens and its secret. No `Debug`.
pub struct Card {
    /// The account named in the card file.
    pub account: Username,
    /// The secret the bank knows only a hash of.
    pub secret: CardSecret,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CardJson {
    account: Username,
    card: CardSecret,
}

impl Card {
    /// Parses a card file's text (surrounding whitespace ignored).
    pub fn parse(text: &str) -> Result<Self, BadFile> {
        // An object only: serde would also take the two fields as a JSON array.
        let value: serde_json::Value = serde_json::from_str(text.trim()).map_err(|_| BadFile)?;
        if !value.is_object() {
            return Err(BadFile);
        }
        let json: CardJson = serde_json::from_value(value).map_err(|_| BadFile)?;
        Ok(Self {
            account: json.account,
            secret: json.card,
        })
    }

    /// Reads and parses a card file.
    pub fn load(name: &str) -> Result<Self, BadFile> {
        Self::parse(&read_small(name)?)
    }

    /// The file's text: one JSON line with a trailing newline. Contains the secret.
    pub fn to_text(&self) -> Zeroizing<String> {
        let json = CardJson {
            account: self.account.clone(),
            card: self.secret.clone(),
        };
        // Sized up front so the secret is never left behind in a reallocated buffer.
        let mut bytes = Vec::with_capacity(256);
        serde_json::to_writer(&mut bytes, &json).expect("a card serializes");
        bytes.push(b'\n');
        Zeroizing::new(String::from_utf8(bytes).expect("JSON is UTF-8"))
    }

    /// Creates the card file `name` (see [`create_secret_file`]).
    pub fn create(&self, name: &str) -> Result<(), BadFile> {
        create_secret_file(name, &self.to_text())
    }
}

/// Creates the file `name` holding `text`: never overwrites (`O_EXCL`), mode 0600 on Unix,
/// synced to disk before returning. If writing fails after the file was created, the partial
/// file is removed.
pub fn create_secret_file(name: &str, text: &str) -> Result<(), BadFile> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(name).map_err(|_| BadFile)?;
    let written = file
        .write_all(text.as_bytes())
        .and_then(|()| file.sync_all());
    if written.is_err() {
        drop(file);
        let _ = std::fs::remove_file(name);
        return Err(BadFile);
    }
    Ok(())
}

/// `true` if anything (a file, a directory, a dangling link) has this name.
pub fn exists(name: &str) -> bool {
    std::fs::symlink_metadata(name).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::OsRng;

    fn card(name: &str) -> Card {
        Card {
            account: Username::new(name).unwrap(),
            secret: CardSecret::random(&mut OsRng),
        }
    }

    #[test]
    fn round_trip() {
        let c = card("bob");
        let text = c.to_text();
        assert!(text.starts_with("{\"account\":\"bob\",\"card\":\""));
        assert!(text.ends_with("\"}\n"));
        let back = Card::parse(&text).unwrap();
        assert_eq!(back.account.as_str(), "bob");
        assert!(back.secret == c.secret);
    }

    #[test]
    fn other_files_are_not_cards_and_cards_are_not_auth_files() {
        let pin = protocol::BankKey::from_secret(protocol::BankId::new("b1").unwrap(), [5; 32]);
        let auth = &format!(
            r#"{{"terminal_id":"t-1","psk":"{}","bank":"{}"}}"#,
            "00".repeat(32),
            pin.pin().to_text()
        );
        assert!(Card::parse(auth).is_err());
        assert!(AuthFile::parse(auth).is_ok());
        let c = card("bob").to_text();
        assert!(AuthFile::parse(&c).is_err());
        for bad in [
            "",
            "\n",
            "{}",
            "null",
            "[]",
            &c[..c.len() / 2],
            &c[..c.len() - 3],
            r#"{"account":"bob"}"#,
            r#"{"account":"Bob","card":"0000000000000000000000000000000000000000000000000000000000000000"}"#,
            r#"{"account":"bob","card":"00"}"#,
            r#"{"account":"bob","card":"000000000000000000000000000000000000000000000000000000000000000G"}"#,
            r#"{"account":"bob","card":"0000000000000000000000000000000000000000000000000000000000000000","x":1}"#,
            r#"["bob","0000000000000000000000000000000000000000000000000000000000000000"]"#,
        ] {
            assert!(Card::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn create_never_overwrites_and_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bob.card");
        let name = path.to_str().unwrap();
        let c = card("bob");
        c.create(name).unwrap();
        assert!(exists(name));
        let before = std::fs::read(&path).unwrap();
        assert_eq!(card("bob").create(name), Err(BadFile));
        assert_eq!(std::fs::read(&path).unwrap(), before);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let loaded = Card::load(name).unwrap();
        assert!(loaded.secret == c.secret);
    }

    #[test]
    fn oversized_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big");
        let mut text = card("bob").to_text().to_string();
        text.push_str(&" ".repeat(5000));
        std::fs::write(&path, text).unwrap();
        assert!(Card::load(path.to_str().unwrap()).is_err());
        assert!(load_auth(path.to_str().unwrap()).is_err());
        assert!(Card::load("/nonexistent/dir/x.card").is_err());
    }
}

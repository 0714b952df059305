//! The atm's two files: reading the bank's auth file, and reading and creating card files.
//!
//! A card file is one JSON line, created with `O_EXCL` and mode 0600 only after the bank has
//! opened the account. A signed card (PROTOCOL.md §17, what `-n` makes) is
//! `{"account":"<name>","card":"<64 lowercase hex>","version":2}`, the hex being its Ed25519
//! seed, of which the bank knows only the public key; a legacy card, without `version`, holds a
//! secret the bank knows the SHA-256 of, and still logs in. The auth file and the card formats
//! have disjoint fields and all refuse unknown fields, so a card given as the auth file (or
//! the auth file given as a card) is recognised and refused.

use std::fs::File;
use std::io::{Read as _, Write as _};

use atm_client::AuthFile;
use protocol::{CardKey, CardSecret, ChannelBinding, Request, Username};
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
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

/// What a card file holds. No `Debug`.
#[derive(Clone)]
pub enum CardCredential {
    /// A signed card's Ed25519 seed: it signs each login for its session only (§17).
    Signed(CardKey),
    /// A legacy card's secret, sent at each login; the bank keeps its SHA-256.
    Legacy(CardSecret),
}

impl CardCredential {
    /// The value in the file's `card` field: 64 lowercase hex characters.
    pub fn to_hex(&self) -> Zeroizing<String> {
        match self {
            Self::Signed(key) => key.to_hex(),
            Self::Legacy(secret) => secret.to_hex(),
        }
    }

    /// The request that logs `account` in with this card on the session of `binding`.
    pub fn login_request(&self, account: &Username, binding: &ChannelBinding) -> Request {
        match self {
            Self::Signed(key) => Request::CardLoginSigned {
                username: account.clone(),
                signature: key.sign_login(binding, account),
            },
            Self::Legacy(secret) => Request::CardLogin {
                username: account.clone(),
                card: secret.clone(),
            },
        }
    }
}

impl From<CardSecret> for CardCredential {
    fn from(secret: CardSecret) -> Self {
        Self::Legacy(secret)
    }
}

impl From<CardKey> for CardCredential {
    fn from(key: CardKey) -> Self {
        Self::Signed(key)
    }
}

/// A card: the account it opens and what logs in to it. No `Debug`.
pub struct Card {
    /// The account named in the card file.
    pub account: Username,
    /// The signed card's seed or the legacy card's secret.
    pub secret: CardCredential,
}

/// The `version` of a signed card file: the number 2, nothing else.
#[derive(Clone, Copy)]
struct Signed;

impl Serialize for Signed {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(2)
    }
}

impl<'de> Deserialize<'de> for Signed {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match u8::deserialize(d)? {
            2 => Ok(Self),
            _ => Err(de::Error::custom("unknown card file version")),
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignedJson {
    account: Username,
    card: CardKey,
    version: Signed,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LegacyJson {
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
        if value.get("version").is_some() {
            let json: SignedJson = serde_json::from_value(value).map_err(|_| BadFile)?;
            Ok(Self {
                account: json.account,
                secret: CardCredential::Signed(json.card),
            })
        } else {
            let json: LegacyJson = serde_json::from_value(value).map_err(|_| BadFile)?;
            Ok(Self {
                account: json.account,
                secret: CardCredential::Legacy(json.card),
            })
        }
    }

    /// Reads and parses a card file.
    pub fn load(name: &str) -> Result<Self, BadFile> {
        Self::parse(&read_small(name)?)
    }

    /// The file's text: one JSON line with a trailing newline. Contains the secret.
    pub fn to_text(&self) -> Zeroizing<String> {
        // Sized up front so the secret is never left behind in a reallocated buffer.
        let mut bytes = Vec::with_capacity(512);
        let account = self.account.clone();
        let written = match &self.secret {
            CardCredential::Signed(key) => serde_json::to_writer(
                &mut bytes,
                &SignedJson {
                    account,
                    card: key.clone(),
                    version: Signed,
                },
            ),
            CardCredential::Legacy(secret) => serde_json::to_writer(
                &mut bytes,
                &LegacyJson {
                    account,
                    card: secret.clone(),
                },
            ),
        };
        written.expect("a card serializes");
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
            secret: CardKey::random(&mut OsRng).into(),
        }
    }

    fn legacy(name: &str) -> Card {
        Card {
            account: Username::new(name).unwrap(),
            secret: CardSecret::random(&mut OsRng).into(),
        }
    }

    #[test]
    fn round_trip() {
        let c = card("bob");
        let text = c.to_text();
        assert!(text.starts_with("{\"account\":\"bob\",\"card\":\""));
        assert!(text.ends_with("\",\"version\":2}\n"));
        let back = Card::parse(&text).unwrap();
        assert_eq!(back.account.as_str(), "bob");
        let (CardCredential::Signed(a), CardCredential::Signed(b)) = (&back.secret, &c.secret)
        else {
            panic!("not a signed card");
        };
        assert_eq!(a.public(), b.public());
    }

    #[test]
    fn legacy_card_files_are_still_read_as_legacy() {
        let c = legacy("bob");
        let text = c.to_text();
        assert!(text.ends_with("\"}\n") && !text.contains("version"));
        let back = Card::parse(&text).unwrap();
        let (CardCredential::Legacy(a), CardCredential::Legacy(b)) = (&back.secret, &c.secret)
        else {
            panic!("not a legacy card");
        };
        assert!(a == b);
        // The same hex as a signed card is another card: the version tells them apart.
        let as_signed = text.replace("\"}", "\",\"version\":2}");
        assert!(matches!(
            Card::parse(&as_signed).unwrap().secret,
            CardCredential::Signed(_)
        ));
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
        assert!(AuthFile::parse(&legacy("bob").to_text()).is_err());
        let zeros = "0".repeat(64);
        for bad in [
            format!(r#"{{"account":"bob","card":"{zeros}","version":1}}"#),
            format!(r#"{{"account":"bob","card":"{zeros}","version":"2"}}"#),
            format!(r#"{{"account":"bob","card":"{zeros}","version":null}}"#),
            format!(r#"{{"account":"bob","card":"{zeros}","version":2,"x":1}}"#),
            r#"{"account":"bob","version":2}"#.to_owned(),
        ] {
            assert!(Card::parse(&bad).is_err(), "{bad:?}");
        }
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
        assert_eq!(loaded.secret.to_hex(), c.secret.to_hex());
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

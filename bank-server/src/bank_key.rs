//! The bank's static key file (protocol v2): written once, 0600, outside the data directory;
//! read at every start and checked against the public key the store's identity records.
//!
//! The file holds the private key as 64 lowercase hex characters and a newline. Only the bank
//! reads it, so its format is the bank's own (terminals see the public key, in their pin).

use std::path::{Path, PathBuf};

use protocol::{BankId, BankKey};
use zeroize::Zeroizing;

use crate::terminals::write_new_secret_file;

/// Why the bank's key could not be had.
#[derive(Debug)]
pub enum BankKeyError {
    /// The file could not be read or written.
    Io(PathBuf, std::io::Error),
    /// The file is not 64 lowercase hex characters.
    Malformed(PathBuf),
    /// The store records a bank key but the file is missing.
    Missing(PathBuf),
    /// The file's key is not the one the store's identity records (another bank's file).
    Mismatch(PathBuf),
    /// The store's identity holds no usable id for a key.
    BadIdentity(String),
}

impl core::fmt::Display for BankKeyError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Io(path, e) => write!(f, "{}: {e}", path.display()),
            Self::Malformed(path) => write!(
                f,
                "{}: not a bank key file (64 hex characters expected); restore it from a backup",
                path.display()
            ),
            Self::Missing(path) => write!(
                f,
                "{}: the bank's key file is missing; every terminal pinned its public key, so \
                 the bank cannot start without it: restore it from a backup, or point \
                 --bank-key-file at it",
                path.display()
            ),
            Self::Mismatch(path) => write!(
                f,
                "{}: this key is not the one this bank's terminals pinned (another bank's key \
                 file?); point --bank-key-file at this bank's key",
                path.display()
            ),
            Self::BadIdentity(id) => write!(f, "the store's bank id {id:?} cannot name a key"),
        }
    }
}

impl std::error::Error for BankKeyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io(_, e) => Some(e),
            _ => None,
        }
    }
}

fn bank_id(id: &str) -> Result<BankId, BankKeyError> {
    BankId::new(id).ok_or_else(|| BankKeyError::BadIdentity(id.to_owned()))
}

/// Creates a fresh key for the bank `id` and writes it to `path`, which must not exist.
pub fn create(path: &Path, id: &str) -> Result<BankKey, BankKeyError> {
    let key = BankKey::random(bank_id(id)?, &mut rand_core::OsRng);
    let mut text = key.secret_hex();
    text.push('\n');
    write_new_secret_file(path, &text).map_err(|e| BankKeyError::Io(path.to_owned(), e))?;
    Ok(key)
}

/// Reads the key of bank `id` from `path`; `None` when the file does not exist.
pub fn read(path: &Path, id: &str) -> Result<Option<BankKey>, BankKeyError> {
    let text = match std::fs::read(path) {
        Ok(bytes) => Zeroizing::new(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(BankKeyError::Io(path.to_owned(), e)),
    };
    let text = std::str::from_utf8(&text).map_err(|_| BankKeyError::Malformed(path.to_owned()))?;
    BankKey::from_hex(bank_id(id)?, text)
        .map(Some)
        .ok_or_else(|| BankKeyError::Malformed(path.to_owned()))
}

/// The password pepper of the bank whose key file is `path` (for commands that hash a password
/// themselves, the bank running or not).
pub fn pepper_from(path: &Path) -> Result<crate::passwords::Pepper, BankKeyError> {
    // The bank id does not enter the storage keys: any valid one reads the file.
    let key = read(path, "bank")?.ok_or_else(|| BankKeyError::Missing(path.to_owned()))?;
    Ok(crate::secrets::StorageKeys::of(&key).pepper())
}

/// The key of a bank whose identity records `public_hex`: read from `path`, which must hold
/// exactly that key.
pub fn load(path: &Path, id: &str, public_hex: &str) -> Result<BankKey, BankKeyError> {
    let key = read(path, id)?.ok_or_else(|| BankKeyError::Missing(path.to_owned()))?;
    if key.pin().public_hex() == public_hex {
        Ok(key)
    } else {
        Err(BankKeyError::Mismatch(path.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_keys_load_back_and_nothing_else_does() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bank.key");
        let key = create(&path, "b1").unwrap();
        let public = key.pin().public_hex();
        assert!(load(&path, "b1", &public).unwrap().pin() == key.pin());
        // Never overwritten.
        assert!(matches!(create(&path, "b1"), Err(BankKeyError::Io(..))));
        assert!(matches!(
            load(&path, "b1", &"11".repeat(32)),
            Err(BankKeyError::Mismatch(_))
        ));
        let missing = dir.path().join("none.key");
        assert!(matches!(
            load(&missing, "b1", &public),
            Err(BankKeyError::Missing(_))
        ));
        assert!(read(&missing, "b1").unwrap().is_none());
        std::fs::write(&missing, "not hex\n").unwrap();
        assert!(matches!(
            read(&missing, "b1"),
            Err(BankKeyError::Malformed(_))
        ));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}

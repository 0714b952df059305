//! The BIBIFI `bank` command's setup: its command line (`bank [-p <port>] [-s <auth-file>]`,
//! read by the scanner the `atm` uses) and where a fresh bank keeps its data.
//!
//! The spec's bank starts fresh every time (an existing auth file is an error), so by default
//! its data directory and the auditor's key live in a new private temporary directory that is
//! deleted when the bank stops: nothing of a finished bank is reachable by the next one, and
//! the working directory gets only the auth file. `BANK_DATA_DIR` (an environment variable,
//! since the options are fixed by the spec) names a directory, which must not exist yet, to
//! create and keep instead: its `data` holds the database, `data.bank-key` the bank's static
//! key (protocol v2), `data.checkpoint` its checkpoints and `audit.key` the auditor's private
//! key (a lab pair the bank generates, keeping only the public key),
//! for `bank-server audit verify --data-dir <dir>/data --audit-key-file <dir>/audit.key`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use protocol::bibifi::{self, Invalid, OptionSpec, DEFAULT_AUTH_FILE};

/// The port the `bank` listens on when `-p` is not given.
pub const DEFAULT_PORT: u16 = protocol::BIBIFI_PORT;

/// The environment variable naming a data directory to keep (see the module docs).
pub const DATA_DIR_VAR: &str = "BANK_DATA_DIR";

/// The bank's options: `-p <port>` and `-s <auth-file>`.
const OPTIONS: OptionSpec = OptionSpec {
    valued: "ps",
    flags: "",
};

/// A valid `bank` invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    /// `-p`: the port to listen on.
    pub port: u16,
    /// `-s`: the auth file to create (a file name in the current directory).
    pub auth_file: String,
}

/// Parses the arguments after the program name.
pub fn parse(args: &[OsString]) -> Result<Invocation, Invalid> {
    let raw = bibifi::scan(args, OPTIONS)?;
    let port = match raw.value('p') {
        Some(text) => bibifi::port(text).ok_or(Invalid)?,
        None => DEFAULT_PORT,
    };
    let auth_file = raw.value('s').unwrap_or(DEFAULT_AUTH_FILE);
    if !bibifi::valid_file_name(auth_file) {
        return Err(Invalid);
    }
    Ok(Invocation {
        port,
        auth_file: auth_file.to_owned(),
    })
}

/// Where this run's bank lives.
#[derive(Debug)]
pub enum DataDir {
    /// A fresh private temporary directory, deleted when this value is dropped.
    Temporary(tempfile::TempDir),
    /// `BANK_DATA_DIR`, created by this run and kept.
    Kept(PathBuf),
}

/// Why the data directory could not be prepared.
#[derive(Debug)]
pub enum DataDirError {
    /// `BANK_DATA_DIR` names something that exists already (a fresh bank needs a new one).
    Exists(PathBuf),
    /// Creating the directory failed.
    Io(std::io::Error),
}

impl core::fmt::Display for DataDirError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Exists(p) => write!(
                f,
                "{} already exists; a fresh bank needs a new directory",
                p.display()
            ),
            Self::Io(e) => write!(f, "cannot create the data directory: {e}"),
        }
    }
}

impl std::error::Error for DataDirError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Exists(_) => None,
            Self::Io(e) => Some(e),
        }
    }
}

impl DataDir {
    /// Checks, without creating anything, that `kept` (the value of `BANK_DATA_DIR`, if set)
    /// can hold a fresh bank.
    pub fn check(kept: Option<&Path>) -> Result<(), DataDirError> {
        match kept {
            Some(dir) if std::fs::symlink_metadata(dir).is_ok() => {
                Err(DataDirError::Exists(dir.to_owned()))
            }
            _ => Ok(()),
        }
    }

    /// Creates the directory: `kept` (mode 0700) if given, else a new temporary one.
    pub fn create(kept: Option<&Path>) -> Result<Self, DataDirError> {
        Self::check(kept)?;
        match kept {
            Some(dir) => {
                let mut builder = std::fs::DirBuilder::new();
                std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
                builder.create(dir).map_err(DataDirError::Io)?;
                Ok(Self::Kept(dir.to_owned()))
            }
            None => tempfile::Builder::new()
                .prefix("bibifi-bank-")
                .tempdir()
                .map(Self::Temporary)
                .map_err(DataDirError::Io),
        }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        match self {
            Self::Temporary(dir) => dir.path(),
            Self::Kept(dir) => dir,
        }
    }

    /// The bank's database directory inside it.
    pub fn database(&self) -> PathBuf {
        self.path().join("data")
    }

    /// The auditor's key file inside it (the private key of the lab pair the bank generates).
    pub fn audit_key(&self) -> PathBuf {
        self.path().join("audit.key")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_line(line: &[&str]) -> Result<Invocation, Invalid> {
        parse(&line.iter().map(OsString::from).collect::<Vec<_>>())
    }

    #[test]
    fn defaults_are_the_specs() {
        assert_eq!(
            parse_line(&[]),
            Ok(Invocation {
                port: 3000,
                auth_file: "bank.auth".into()
            })
        );
        assert_eq!(DEFAULT_PORT, protocol::BIBIFI_PORT);
    }

    #[test]
    fn options_in_any_order_attached_or_not() {
        let want = Invocation {
            port: 4000,
            auth_file: "x.auth".into(),
        };
        assert_eq!(
            parse_line(&["-p", "4000", "-s", "x.auth"]),
            Ok(want.clone())
        );
        assert_eq!(parse_line(&["-sx.auth", "-p4000"]), Ok(want));
        assert_eq!(parse_line(&["-p", "65535"]).map(|i| i.port), Ok(65535));
        assert_eq!(
            parse_line(&["-s", "-"]).map(|i| i.auth_file),
            Ok("-".into())
        );
    }

    #[test]
    fn everything_else_is_refused() {
        for line in [
            &["-p", "80"][..],
            &["-p", "1023"],
            &["-p", "65536"],
            &["-p", "03000"],
            &["-p", ""],
            &["-p", "3000", "-p", "3000"],
            &["-s", "a", "-s", "a"],
            &["-s", "."],
            &["-s", ".."],
            &["-s", "A.auth"],
            &["-s", "dir/x.auth"],
            &["-x"],
            &["-h"],
            &["--help"],
            &["--"],
            &["-"],
            &["operand"],
            &["-p", "3000", "operand"],
            &["-p"],
            &["-g"],
        ] {
            assert_eq!(parse_line(line), Err(Invalid), "{line:?}");
        }
    }

    #[test]
    fn a_kept_data_dir_must_be_new() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            DataDir::check(Some(dir.path())),
            Err(DataDirError::Exists(_))
        ));
        let fresh = dir.path().join("bank");
        let kept = DataDir::create(Some(&fresh)).unwrap();
        assert_eq!(kept.path(), fresh);
        assert_eq!(kept.database(), fresh.join("data"));
        assert!(fresh.is_dir());
        drop(kept);
        assert!(fresh.is_dir(), "a kept directory outlives the bank");
        let temp = DataDir::create(None).unwrap();
        let path = temp.path().to_owned();
        assert!(path.is_dir());
        drop(temp);
        assert!(!path.exists(), "a temporary directory is deleted");
    }
}

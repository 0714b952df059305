//! [`AdminError`]: why an administration command (terminals, operators) was refused, typed and
//! carrying its source where there is one. It depends on nothing else in `admin`.

use std::fmt;
use std::path::PathBuf;

use protocol::{Password, TerminalId, Username};

/// Why an administration command was refused.
#[derive(Debug)]
pub enum AdminError {
    /// No terminal has this id.
    NoTerminal(TerminalId),
    /// The text given is not a terminal id.
    NotTerminalId(String),
    /// The operator name breaks the rules (1 to 250 characters of lowercase letters, digits,
    /// `_ - .`).
    OperatorName,
    /// The operator password breaks the rules ([`super::MIN_OPERATOR_PASSWORD`], which is
    /// [`protocol::MIN_PASSWORD_CHARS`], to [`Password::MAX_LEN`] characters).
    OperatorPassword,
    /// An operator with this name exists already.
    OperatorExists(Username),
    /// The password hash handed over is not an Argon2id PHC string.
    NotArgon2id,
    /// The running bank's admin socket could not be reached (connected to, written or read).
    Unreachable {
        /// The socket.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The running bank's answer on the admin socket was not understood.
    BadAnswer(serde_json::Error),
    /// The running bank answered with a terminal id that is not one.
    BadAnswerTerminalId,
    /// The running bank answered with a terminal key that is not one.
    BadAnswerTerminalKey,
    /// The running bank answered with a bank pin that is not one.
    BadAnswerBankKey,
    /// The store records no static key yet (a bank created before protocol v2 that has not
    /// been started since): nothing to pin in a new terminal's credentials.
    NoBankKey,
    /// The running bank answered with a reply of the wrong kind for the operation.
    UnexpectedAnswer,
    /// The bank is running and this platform has no admin socket: stop it first.
    Running,
    /// The password typed twice differs.
    PasswordsDiffer,
    /// The password could not be read (from the terminal or standard input).
    ReadPassword(std::io::Error),
    /// The running bank refused the operation; this is its own message, as it came over the
    /// admin socket (the wire carries display text, not a typed error).
    Refused(String),
}

impl fmt::Display for AdminError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoTerminal(id) => write!(f, "no terminal {id}"),
            Self::NotTerminalId(text) => write!(f, "not a terminal id: {text:?}"),
            Self::OperatorName => f.write_str(
                "an operator name is 1 to 250 characters of lowercase letters, digits, _ - .",
            ),
            Self::OperatorPassword => write!(
                f,
                "an operator password has {} to {} characters",
                protocol::MIN_PASSWORD_CHARS,
                Password::MAX_LEN
            ),
            Self::OperatorExists(name) => write!(f, "operator {name} already exists"),
            Self::NotArgon2id => f.write_str("not an Argon2id password hash"),
            Self::Unreachable { path, source } => write!(
                f,
                "the running bank's admin socket {}: {source}",
                path.display()
            ),
            // Not the parser's message: it may quote the answer, which can hold a terminal key.
            Self::BadAnswer(_) => f.write_str("the running bank sent a bad answer"),
            Self::BadAnswerTerminalId => {
                f.write_str("the running bank sent a bad answer: bad terminal id")
            }
            Self::BadAnswerTerminalKey => {
                f.write_str("the running bank sent a bad answer: bad terminal key")
            }
            Self::BadAnswerBankKey => {
                f.write_str("the running bank sent a bad answer: bad bank key")
            }
            Self::NoBankKey => f.write_str(
                "this bank has no static key yet (it was created before protocol v2): start \
                 it once, which creates the key, then add terminals",
            ),
            Self::UnexpectedAnswer => f.write_str("unexpected answer from the bank"),
            Self::Running => f.write_str("the bank is running; stop it first"),
            Self::PasswordsDiffer => f.write_str("the two passwords differ"),
            Self::ReadPassword(e) => write!(f, "reading the password: {e}"),
            Self::Refused(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for AdminError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Unreachable { source, .. } => Some(source),
            Self::BadAnswer(e) => Some(e),
            Self::ReadPassword(e) => Some(e),
            Self::NoTerminal(_)
            | Self::NotTerminalId(_)
            | Self::OperatorName
            | Self::OperatorPassword
            | Self::OperatorExists(_)
            | Self::NotArgon2id
            | Self::BadAnswerTerminalId
            | Self::BadAnswerTerminalKey
            | Self::BadAnswerBankKey
            | Self::NoBankKey
            | Self::UnexpectedAnswer
            | Self::Running
            | Self::PasswordsDiffer
            | Self::Refused(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    fn io() -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused")
    }

    #[test]
    fn sources_are_kept_and_messages_name_the_problem() {
        let unreachable = AdminError::Unreachable {
            path: PathBuf::from("/d/admin/admin.sock"),
            source: io(),
        };
        assert!(unreachable.source().is_some());
        assert_eq!(
            unreachable.to_string(),
            "the running bank's admin socket /d/admin/admin.sock: refused"
        );
        let bad = serde_json::from_str::<u8>("{").unwrap_err();
        assert!(AdminError::BadAnswer(bad).source().is_some());
        assert!(AdminError::ReadPassword(io()).source().is_some());
        assert!(AdminError::PasswordsDiffer.source().is_none());

        let id = TerminalId::new("t1").unwrap();
        assert_eq!(AdminError::NoTerminal(id).to_string(), "no terminal t1");
        let name = Username::new("ops").unwrap();
        assert_eq!(
            AdminError::OperatorExists(name).to_string(),
            "operator ops already exists"
        );
        assert_eq!(
            AdminError::Refused("no terminal t2".into()).to_string(),
            "no terminal t2",
            "the running bank's message as it came"
        );
    }
}

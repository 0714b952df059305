//! Error categories: one generic error per class for the peer, a detail for the local log.

use core::fmt;

/// Everything that can go wrong. `Display` is deliberately generic (it is what a peer may be
/// told); the attached fault says exactly what failed, for the local log only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The handshake did not complete. Every handshake failure is this one error.
    HandshakeFailed(HandshakeFault),
    /// A record was refused. Every record failure (size, JSON, hex, lengths, sequence number,
    /// MAC, padding, plaintext schema, timestamp) is this one error.
    BadRecord(RecordFault),
    /// A local caller tried to seal a message larger than [`crate::MAX_PLAINTEXT_LEN`].
    TooLarge,
    /// The session already failed, or its 64-bit sequence number is used up. Start a new one.
    Closed,
}

/// What exactly failed in a handshake (for logs; never sent).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandshakeFault {
    /// Larger than [`crate::MAX_HANDSHAKE_LEN`].
    TooLarge,
    /// Not the JSON message expected at this step, or a field out of its domain.
    Malformed,
    /// A version other than [`crate::PROTOCOL_VERSION`].
    Version,
    /// The peer's timestamp is outside the allowed skew.
    Stale,
    /// The peer's X25519 share gives an all-zero (non-contributory) secret.
    WeakShare,
    /// The ClientHello's sealed terminal id does not verify: sealed for another bank's key,
    /// or altered on the way.
    SealedId,
    /// The peer's Finished MAC is wrong: wrong PSK, unknown terminal or altered handshake.
    BadFinished,
}

/// What exactly failed in a record (for logs; never sent).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecordFault {
    /// Larger than [`crate::MAX_RECORD_LEN`].
    TooLarge,
    /// Not a JSON record object with exactly the four fields.
    Malformed,
    /// Hex that is not lowercase hex, or a field of the wrong length.
    Encoding,
    /// Not the next sequence number expected.
    Sequence,
    /// The MAC does not verify.
    Mac,
    /// Decryption or PKCS#7 padding failed (only reachable with a valid MAC, i.e. a bug).
    Padding,
    /// The plaintext is not a message of the expected direction and schema.
    Plaintext,
    /// The timestamp inside the record is outside the allowed skew.
    Stale,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::HandshakeFailed(_) => "handshake failed",
            Self::BadRecord(_) => "bad record",
            Self::TooLarge => "message too large",
            Self::Closed => "session closed",
        })
    }
}

impl std::error::Error for Error {}

impl Error {
    /// A log-friendly description including the fault (never send this to the peer).
    pub fn detail(&self) -> String {
        match self {
            Self::HandshakeFailed(f) => format!("handshake failed: {f:?}"),
            Self::BadRecord(f) => format!("bad record: {f:?}"),
            other => other.to_string(),
        }
    }
}

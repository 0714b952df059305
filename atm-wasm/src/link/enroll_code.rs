//! Enrollment by a one-time code: reading the typed code, and the [`Enroller`] that runs its
//! exchange with the bank (over `protocol::enrollment::client`) and gives this browser's
//! credentials. No IO and no clock: the caller moves the frames, passes the time and the RNG.

use protocol::enrollment::client::{
    self as enrollment, AwaitEnrollHello, EnrollFailure, Enrolling,
};
use protocol::enrollment::EnrollmentCode;
use protocol::{Config, Error, ErrorCode, HandshakeFault};
use zeroize::Zeroizing;

use crate::link::enroll::Enrollment;

/// Why the typed text is not a code (found before any connection).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodeError {
    /// Nothing was typed.
    Empty,
    /// The text is not `e-<10 hex>-<32 hex>`.
    Malformed,
}

impl CodeError {
    /// Plain words for the page (never the code itself).
    pub fn message(self) -> &'static str {
        match self {
            Self::Empty => "Please enter the enrollment code the bank gave you.",
            Self::Malformed => {
                "That is not an enrollment code. A code is e-, 10 characters, a dash and 32 \
                 characters, each a digit or a letter a to f (like e-0123456789-0a1b…)."
            }
        }
    }
}

/// Reads a typed code: spaces around it are ignored and capitals are read as small letters
/// (the bank prints it in small letters); then exactly what [`EnrollmentCode::parse`] takes.
pub fn parse_code(text: &str) -> Result<EnrollmentCode, CodeError> {
    let text = Zeroizing::new(text.trim().to_ascii_lowercase());
    if text.is_empty() {
        return Err(CodeError::Empty);
    }
    EnrollmentCode::parse(&text).ok_or(CodeError::Malformed)
}

/// Why an enrollment with a code gave no credentials. Nothing is stored after any of these.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodeFailure {
    /// The bank's answer did not verify under the code: a wrong, used or expired code (the
    /// bank answers all three like a wrong key, and the code is used up).
    NotAccepted,
    /// The code was good but the bank refused to enroll this terminal.
    Refused(ErrorCode),
    /// This device's clock and the bank's differ by more than the protocol allows.
    Clock,
    /// The bank's answer was not a valid one (malformed, a record that does not open, an
    /// answer other than `enrolled`).
    Broken,
    /// The connection failed or closed before the bank answered the code: the bank may never
    /// have seen it.
    Unreachable,
    /// The connection closed after the bank answered the code, before the terminal was
    /// enrolled: the code is used up.
    Lost,
}

/// What [`CodeFailure::NotAccepted`] says.
pub const NOT_ACCEPTED: &str =
    "That code was not accepted. A code works once and for 10 minutes; ask the bank for a new one.";

impl CodeFailure {
    /// Plain words for the page.
    pub fn message(self) -> String {
        match self {
            Self::NotAccepted => NOT_ACCEPTED.to_owned(),
            Self::Refused(code) => format!(
                "The bank accepted the code but did not enroll this ATM: {} Ask the bank for a \
                 new code.",
                code.message()
            ),
            Self::Clock => "This device's clock does not agree with the bank's, so the \
                            enrollment failed and nothing was stored. Set the clock right, then \
                            ask the bank for a new code."
                .to_owned(),
            Self::Broken => "The bank's answer could not be checked, so nothing was stored. Ask \
                             the bank for a new code."
                .to_owned(),
            Self::Unreachable => "The bank could not be reached, so nothing was enrolled. Check \
                                  the connection and enter the code again."
                .to_owned(),
            Self::Lost => "The connection to the bank was lost before the enrollment finished, \
                           so nothing was stored. The code is used up: ask the bank for a new \
                           one."
                .to_owned(),
        }
    }
}

/// What a frame from the bank led to.
pub enum Progress {
    /// Send these frames, in order, and wait for the bank's next one.
    Send(Vec<String>),
    /// Enrolled: these are the credentials to keep. Nothing more is sent; close the socket.
    Enrolled(Enrollment),
}

enum Step {
    /// Sent the hello; the bank's answer checks the code.
    Hello(AwaitEnrollHello),
    /// Sent the Finished and the `enroll` request; awaiting the terminal id.
    Answer(Enrolling),
    /// Enrolled or failed: nothing more to do.
    Over,
}

/// One enrollment with a code, on one connection: hello, the bank's hello (which proves the
/// bank holds the code and tells its identity), Finished and `enroll`, then the terminal id.
/// No `Debug`: it holds the code's key, then the session's.
pub struct Enroller {
    step: Step,
}

impl Enroller {
    /// Begins an enrollment with `code` on a freshly opened socket: returns the enroller and
    /// the hello to send first.
    pub fn start(
        config: &Config,
        code: &EnrollmentCode,
        rng: &mut impl protocol::Rng,
        now_ms: u64,
    ) -> (Self, String) {
        let (state, hello) = enrollment::start(config, code, rng, now_ms);
        (
            Self {
                step: Step::Hello(state),
            },
            hello,
        )
    }

    /// `true` once enrolled or failed.
    pub fn is_over(&self) -> bool {
        matches!(self.step, Step::Over)
    }

    /// Handles one frame from the bank. After an error (or the credentials) the enrollment is
    /// over: close the socket.
    pub fn receive(
        &mut self,
        frame: &[u8],
        rng: &mut impl protocol::Rng,
        now_ms: u64,
    ) -> Result<Progress, CodeFailure> {
        match std::mem::replace(&mut self.step, Step::Over) {
            Step::Hello(state) => {
                let (mut enrolling, finished) = state
                    .read_server_hello(frame, now_ms)
                    .map_err(handshake_failure)?;
                let request = enrolling
                    .request(rng, now_ms)
                    .map_err(|_| CodeFailure::Broken)?;
                self.step = Step::Answer(enrolling);
                Ok(Progress::Send(vec![finished, request]))
            }
            Step::Answer(enrolling) => match enrolling.finish(frame, now_ms) {
                Ok(credentials) => Ok(Progress::Enrolled(credentials.into())),
                Err(EnrollFailure::Refused(code)) => Err(CodeFailure::Refused(code)),
                Err(EnrollFailure::Protocol(_) | EnrollFailure::Unexpected) => {
                    Err(CodeFailure::Broken)
                }
            },
            Step::Over => Err(CodeFailure::Broken),
        }
    }

    /// The socket closed (or the caller gave up waiting): the failure to show, or `None` when
    /// the enrollment was already over.
    pub fn closed(&mut self) -> Option<CodeFailure> {
        match std::mem::replace(&mut self.step, Step::Over) {
            Step::Hello(_) => Some(CodeFailure::Unreachable),
            Step::Answer(_) => Some(CodeFailure::Lost),
            Step::Over => None,
        }
    }
}

/// The failure a refused bank hello means: a Finished that does not verify is a code the bank
/// did not hold (wrong, used or expired).
fn handshake_failure(e: Error) -> CodeFailure {
    match e {
        Error::HandshakeFailed(HandshakeFault::BadFinished) => CodeFailure::NotAccepted,
        Error::HandshakeFailed(HandshakeFault::Stale) => CodeFailure::Clock,
        _ => CodeFailure::Broken,
    }
}

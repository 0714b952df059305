//! The new terminal's side of an enrollment, as states that consume `self`: start with the
//! code, read the bank's hello (learning and checking its identity), send the one `enroll`
//! request, and read the terminal id: the credentials, with a key derived on both ends.

use x25519_dalek::StaticSecret;

use crate::auth_file::AuthFile;
use crate::error::HandshakeFault;
use crate::exchange;
use crate::message::{ErrorCode, Request, Response};
use crate::schedule::{enrolled_terminal_key, ClientHelloFields, Key, Keys};
use crate::wire::Handshake;
use crate::{BankId, BankPin, ClientSession, Config, Error, Psk, Rng, PROTOCOL_VERSION};

use super::EnrollmentCode;

/// Begins an enrollment with `code`: draws the client nonce then the X25519 secret (32 bytes
/// each) from `rng`; returns the state awaiting the bank's hello and the first flight.
pub fn start(
    config: &Config,
    code: &EnrollmentCode,
    rng: &mut impl Rng,
    now_ms: u64,
) -> (AwaitEnrollHello, String) {
    let (client_nonce, secret, client_share) = exchange::client_exchange_start(rng);
    let hello = Handshake::EnrollHello {
        version: PROTOCOL_VERSION,
        code_id: code.id().as_str().to_owned(),
        client_nonce: crate::hexfmt::encode(&client_nonce),
        client_share: crate::hexfmt::encode(&client_share),
        timestamp: now_ms,
    };
    let state = AwaitEnrollHello {
        config: config.clone(),
        psk: code.psk(),
        secret,
        fields: ClientHelloFields {
            terminal: code.id().clone(),
            client_nonce,
            client_share,
            client_time: now_ms,
        },
    };
    (state, hello.to_text())
}

/// Sent the enrollment hello; waiting for the bank's. No `Debug`: it holds the code's key.
#[cfg_attr(fuzzing, derive(Clone))]
pub struct AwaitEnrollHello {
    config: Config,
    psk: Psk,
    secret: StaticSecret,
    fields: ClientHelloFields,
}

impl AwaitEnrollHello {
    /// Checks the bank's hello: its identity (a usable key), and its Finished under the code's
    /// key with that identity in the transcript. Returns the session and the ClientFinished.
    pub fn read_server_hello(self, wire: &[u8], now_ms: u64) -> Result<(Enrolling, String), Error> {
        let fail = Error::HandshakeFailed;
        let Handshake::EnrollServerHello {
            version,
            bank_id,
            bank_key,
            bank_nonce,
            bank_share,
            timestamp,
            finished,
        } = Handshake::parse(wire).map_err(fail)?
        else {
            return Err(fail(HandshakeFault::Malformed));
        };
        let (server, finished) = exchange::server_fields(
            &self.config,
            now_ms,
            version,
            &bank_nonce,
            &bank_share,
            timestamp,
            &finished,
        )?;
        let bank = BankId::new(bank_id)
            .and_then(|id| BankPin::from_parts(id.as_str(), &bank_key))
            .ok_or(fail(HandshakeFault::Malformed))?;
        let agreed = exchange::client_exchange(&self.secret, &server, &bank, None)?;
        let dh = agreed.shared();
        let (keys, exporter) =
            Keys::derive_enrollment(&self.psk, &bank, &self.fields, &server, &dh);
        let reply = exchange::finish(&keys, &finished)?;
        let session = ClientSession::new(keys, &self.config);
        Ok((
            Enrolling {
                session,
                exporter,
                bank,
            },
            reply,
        ))
    }
}

/// Why an enrollment did not give credentials.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnrollFailure {
    /// The session broke (a record that does not verify, say).
    Protocol(Error),
    /// The bank refused the enrollment.
    Refused(ErrorCode),
    /// The bank answered something else than `enrolled`.
    Unexpected,
}

/// An enrollment session, up. No `Debug`: it holds the exporter key.
#[cfg_attr(fuzzing, derive(Clone))]
pub struct Enrolling {
    session: ClientSession,
    exporter: Key,
    bank: BankPin,
}

impl Enrolling {
    /// The bank's identity this session authenticated (what the terminal will pin).
    pub fn bank(&self) -> &BankPin {
        &self.bank
    }

    /// Seals the session's one request, `enroll`.
    pub fn request(&mut self, rng: &mut impl Rng, now_ms: u64) -> Result<String, Error> {
        self.session.seal(&Request::Enroll {}, rng, now_ms)
    }

    /// Opens the bank's answer: `enrolled` gives the terminal's credentials (its id, the key
    /// both ends derive from this session, the bank's pin).
    pub fn finish(mut self, wire: &[u8], now_ms: u64) -> Result<AuthFile, EnrollFailure> {
        match self
            .session
            .open(wire, now_ms)
            .map_err(EnrollFailure::Protocol)?
        {
            Response::Enrolled { terminal } => Ok(AuthFile {
                psk: enrolled_terminal_key(&self.exporter, &terminal),
                terminal_id: terminal,
                bank: self.bank,
            }),
            Response::Error { code } => Err(EnrollFailure::Refused(code)),
            _ => Err(EnrollFailure::Unexpected),
        }
    }
}

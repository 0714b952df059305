//! The ATM side of the handshake, as states that consume `self`: start, then read ServerHello.
//! The bank must prove it holds the private key of the pinned [`BankPin`]. A terminal key held
//! outside this crate adds one step: the holder's HMAC makes the master secret (§6.8).

use x25519_dalek::StaticSecret;

use crate::error::HandshakeFault;
use crate::exchange;
use crate::schedule::{master_input, ClientHelloFields, Keys, Kind, ServerHelloFields};
use crate::wire::Handshake;
use crate::{
    hexfmt, BankPin, ClientSession, Config, Error, MasterInput, MasterSecret, Psk, Rng, TerminalId,
    PROTOCOL_VERSION,
};

/// Begins a handshake: draws the client nonce (32 bytes) then the X25519 secret (32 bytes) from
/// `rng`, and returns the state awaiting the bank's answer plus the ClientHello to send. `bank`
/// is the bank's identity as pinned at enrollment; the terminal id travels sealed for its key
/// (PROTOCOL.md §6.7), so a passive observer does not learn it.
pub fn start(
    config: &Config,
    terminal: TerminalId,
    psk: &Psk,
    bank: &BankPin,
    rng: &mut impl Rng,
    now_ms: u64,
) -> Result<(AwaitServerHello, String), Error> {
    let (hello, text) = start_external_key(config, terminal, bank, rng, now_ms)?;
    let state = AwaitServerHello {
        psk: psk.clone(),
        hello,
    };
    Ok((state, text))
}

/// [`start`] for a terminal whose key this crate never sees (PROTOCOL.md §6.8): a key kept as
/// a non-extractable WebCrypto key, in a hardware module, or in another process. The handshake
/// asks its holder for one HMAC-SHA256, through [`AwaitMasterSecret`]. Draws what [`start`]
/// draws, in the same order, and sends the same ClientHello.
pub fn start_external_key(
    config: &Config,
    terminal: TerminalId,
    bank: &BankPin,
    rng: &mut impl Rng,
    now_ms: u64,
) -> Result<(AwaitServerHelloExternal, String), Error> {
    let exchange::ClientStart {
        client_nonce,
        secret,
        client_share,
        sealed,
        es,
    } = exchange::client_hello_start(rng, &terminal, bank)
        .ok_or(Error::HandshakeFailed(HandshakeFault::WeakShare))?;
    let hello = Handshake::ClientHello {
        version: PROTOCOL_VERSION,
        sealed_terminal_id: hexfmt::encode(&sealed),
        client_nonce: hexfmt::encode(&client_nonce),
        client_share: hexfmt::encode(&client_share),
        timestamp: now_ms,
    };
    let state = AwaitServerHelloExternal {
        config: config.clone(),
        bank: bank.clone(),
        secret,
        es,
        fields: ClientHelloFields {
            terminal,
            client_nonce,
            client_share,
            client_time: now_ms,
        },
    };
    Ok((state, hello.to_text()))
}

/// Sent ClientHello; waiting for ServerHello. No `Debug`: it holds the PSK and the secret.
#[cfg_attr(fuzzing, derive(Clone))]
pub struct AwaitServerHello {
    psk: Psk,
    hello: AwaitServerHelloExternal,
}

impl AwaitServerHello {
    /// Checks the bank's hello and Finished MAC. On success returns the established session and
    /// the ClientFinished to send; requests may be sealed right away (the bank reads them after
    /// the ClientFinished).
    pub fn read_server_hello(
        self,
        wire: &[u8],
        now_ms: u64,
    ) -> Result<(ClientSession, String), Error> {
        let pending = self.hello.read_server_hello(wire, now_ms)?;
        let master = self.psk.master_secret(pending.master_input());
        pending.finish(master)
    }

    /// The terminal id this handshake presents.
    pub fn terminal_id(&self) -> &TerminalId {
        self.hello.terminal_id()
    }
}

/// Sent ClientHello for a key held outside this crate; waiting for ServerHello. No `Debug`: it
/// holds the ephemeral secret.
#[cfg_attr(fuzzing, derive(Clone))]
pub struct AwaitServerHelloExternal {
    config: Config,
    bank: BankPin,
    secret: StaticSecret,
    /// `dh_es`, from sealing the id.
    es: zeroize::Zeroizing<[u8; 32]>,
    fields: ClientHelloFields,
}

impl AwaitServerHelloExternal {
    /// Checks the bank's hello (format, version, time, both X25519 results) and returns the
    /// state that waits for the master secret. The bank's Finished MAC is checked by
    /// [`AwaitMasterSecret::finish`], once the key holder has computed the master secret.
    pub fn read_server_hello(self, wire: &[u8], now_ms: u64) -> Result<AwaitMasterSecret, Error> {
        let fail = Error::HandshakeFailed;
        let Handshake::ServerHello {
            version,
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
        let agreed = exchange::client_exchange(&self.secret, &server, &self.bank, Some(&self.es))?;
        let input = master_input(&self.fields, &server, &agreed.shared());
        Ok(AwaitMasterSecret {
            config: self.config,
            bank: self.bank,
            fields: self.fields,
            server,
            finished,
            input,
        })
    }

    /// The terminal id this handshake presents.
    pub fn terminal_id(&self) -> &TerminalId {
        &self.fields.terminal
    }
}

/// The bank's hello checked; waiting for the key holder's HMAC-SHA256(PSK, [`Self::master_input`]).
/// No `Debug`: the input holds both X25519 results.
#[cfg_attr(fuzzing, derive(Clone))]
pub struct AwaitMasterSecret {
    config: Config,
    bank: BankPin,
    fields: ClientHelloFields,
    server: ServerHelloFields,
    finished: [u8; 32],
    input: MasterInput,
}

impl AwaitMasterSecret {
    /// What the terminal key must MAC (HMAC-SHA256) to make the master secret (§6.3).
    pub fn master_input(&self) -> &MasterInput {
        &self.input
    }

    /// Derives the session keys from the key holder's master secret and checks the bank's
    /// Finished MAC with them (a wrong key fails here, as a wrong PSK does). On success returns
    /// the session and the ClientFinished to send.
    pub fn finish(self, master: MasterSecret) -> Result<(ClientSession, String), Error> {
        let (keys, _) = Keys::from_master(
            Kind::Session,
            &self.bank,
            &self.fields,
            &self.server,
            &master,
        );
        let reply = exchange::finish(&keys, &self.finished)?;
        Ok((ClientSession::new(keys, &self.config), reply))
    }

    /// The terminal id this handshake presents.
    pub fn terminal_id(&self) -> &TerminalId {
        &self.fields.terminal
    }
}

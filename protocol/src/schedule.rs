//! The key schedule: transcript hash, master secret, HKDF-separated keys, Finished MACs.

use zeroize::Zeroizing;

use crate::primitives::{hkdf_sha256, hmac_sha256, hmac_sha256_verify, sha256, Prk};
use crate::secret::{MasterInput, MasterSecret, MASTER_INPUT_LEN};
use crate::{BankPin, Psk, TerminalId, PROTOCOL_VERSION};

/// Domain-separation labels (ASCII, no terminator). See docs/PROTOCOL.md, "Key schedule".
pub(crate) mod label {
    pub(crate) const TRANSCRIPT: &[u8] = b"atm-psk-v2 transcript";
    pub(crate) const MASTER: &[u8] = b"atm-psk-v2 master secret";
    pub(crate) const C2S_ENC: &[u8] = b"atm-psk-v2 c2s enc";
    pub(crate) const C2S_MAC: &[u8] = b"atm-psk-v2 c2s mac";
    pub(crate) const S2C_ENC: &[u8] = b"atm-psk-v2 s2c enc";
    pub(crate) const S2C_MAC: &[u8] = b"atm-psk-v2 s2c mac";
    pub(crate) const CLIENT_FINISHED: &[u8] = b"atm-psk-v2 client finished";
    pub(crate) const SERVER_FINISHED: &[u8] = b"atm-psk-v2 server finished";
    pub(crate) const RECORD: &[u8] = b"atm-psk-v2 record";
    /// The transcript of an enrollment handshake (a one-time code instead of a terminal key).
    pub(crate) const ENROLL_TRANSCRIPT: &[u8] = b"atm-psk-v2 enroll transcript";
    /// An enrollment session's exporter key, from which the new terminal key is derived.
    pub(crate) const EXPORTER: &[u8] = b"atm-psk-v2 enroll exporter";
    /// The enrolled terminal's key: HMAC(exporter, this || len(id) || id).
    pub(crate) const TERMINAL_KEY: &[u8] = b"atm-psk-v2 enrolled terminal key";
    /// A one-time code's PSK: HKDF(salt = this, IKM = the code's secret, info = its id).
    pub(crate) const CODE_PSK: &[u8] = b"atm-psk-v2 enrollment code";
    /// A session's channel binding: HKDF-Expand(PRK, this, 32); what a signed card signs.
    pub(crate) const CHANNEL_BINDING: &[u8] = b"atm-psk-v2 channel binding";
    /// The sealed terminal id's keys: HKDF(salt = this, IKM = dh_es,
    /// info = client_share || bank_static_public), 64 bytes.
    pub(crate) const TERMINAL_ID: &[u8] = b"atm-psk-v2 terminal id";
    /// The sealed terminal id's MAC input: this || ciphertext.
    pub(crate) const SEALED_ID: &[u8] = b"atm-psk-v2 sealed terminal id";
}

/// Which handshake a transcript belongs to: a terminal's, or an enrollment with a code.
#[derive(Clone, Copy)]
pub(crate) enum Kind {
    Session,
    Enrollment,
}

impl Kind {
    fn transcript_label(self) -> &'static [u8] {
        match self {
            Self::Session => label::TRANSCRIPT,
            Self::Enrollment => label::ENROLL_TRANSCRIPT,
        }
    }
}

/// A 32-byte symmetric key. No `Debug`; zeroized on drop.
#[cfg_attr(fuzzing, derive(Clone))]
pub(crate) struct Key(Zeroizing<[u8; 32]>);

impl Key {
    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    #[cfg(test)]
    pub(crate) fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }
}

/// HKDF-Expand(prk, info, 32) as a key.
fn expand_key(prk: &Prk, info: &[u8]) -> Key {
    let okm = prk
        .expand(info, 32)
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    let mut key = Zeroizing::new([0u8; 32]);
    key.copy_from_slice(&okm);
    Key(key)
}

/// The key of a terminal enrolled in a session whose exporter key is `exporter`:
/// HMAC(exporter, label || len(id) || id). Both ends compute it; it never travels.
pub(crate) fn enrolled_terminal_key(exporter: &Key, terminal: &TerminalId) -> Psk {
    let id = terminal.as_str().as_bytes();
    let id_len = [u8::try_from(id.len()).expect("terminal ids are at most 64 bytes")];
    Psk::from_bytes(hmac_sha256(
        exporter.bytes(),
        &[label::TERMINAL_KEY, &id_len, id],
    ))
}

/// The two keys that seal a ClientHello's terminal id (PROTOCOL.md §6.7): the first and last
/// 32 bytes of HKDF(salt = label, IKM = dh_es, info = client_share || bank_static_public, 64).
/// Single-use: a fresh ephemeral share makes fresh keys.
pub(crate) struct IdKeys {
    pub(crate) enc: Key,
    pub(crate) mac: Key,
}

impl IdKeys {
    pub(crate) fn derive(dh_es: &[u8; 32], client_share: &[u8; 32], bank: &BankPin) -> Self {
        let okm = hkdf_sha256(
            label::TERMINAL_ID,
            dh_es,
            &[&client_share[..], &bank.public[..]].concat(),
            64,
        )
        .expect("64 bytes is a valid HKDF-SHA256 output length");
        let mut enc = Zeroizing::new([0u8; 32]);
        let mut mac = Zeroizing::new([0u8; 32]);
        enc.copy_from_slice(&okm[..32]);
        mac.copy_from_slice(&okm[32..]);
        Self {
            enc: Key(enc),
            mac: Key(mac),
        }
    }
}

/// The ClientHello's fields that enter the transcript.
#[cfg_attr(fuzzing, derive(Clone))]
pub(crate) struct ClientHelloFields {
    pub(crate) terminal: TerminalId,
    pub(crate) client_nonce: [u8; 32],
    pub(crate) client_share: [u8; 32],
    pub(crate) client_time: u64,
}

/// The ServerHello's fields that enter the transcript (everything but `finished`).
#[cfg_attr(fuzzing, derive(Clone))]
pub(crate) struct ServerHelloFields {
    pub(crate) bank_nonce: [u8; 32],
    pub(crate) bank_share: [u8; 32],
    pub(crate) bank_time: u64,
}

/// SHA-256 over the label, the bank's pinned identity and both hellos' fields in a fixed
/// binary layout (an enrollment's code id in the terminal id's place).
pub(crate) fn transcript_hash(
    kind: Kind,
    bank: &BankPin,
    ch: &ClientHelloFields,
    sh: &ServerHelloFields,
) -> [u8; 32] {
    let bank_id = bank.bank_id.as_str().as_bytes();
    let bank_id_len = [u8::try_from(bank_id.len()).expect("bank ids are at most 64 bytes")];
    let id = ch.terminal.as_str().as_bytes();
    let id_len = [u8::try_from(id.len()).expect("terminal ids are at most 64 bytes")];
    sha256(&[
        kind.transcript_label(),
        &[PROTOCOL_VERSION],
        &bank_id_len,
        bank_id,
        &bank.public,
        &id_len,
        id,
        &ch.client_nonce,
        &ch.client_share,
        &ch.client_time.to_be_bytes(),
        &sh.bank_nonce,
        &sh.bank_share,
        &sh.bank_time.to_be_bytes(),
    ])
}

/// The two X25519 results a session's keys depend on.
pub(crate) struct Shared<'a> {
    /// Client ephemeral with bank ephemeral: forward secrecy.
    pub(crate) ee: &'a [u8; 32],
    /// Client ephemeral with bank static: only the holder of the bank's private key has it.
    pub(crate) es: &'a [u8; 32],
}

/// The message the terminal key MACs into the master secret (§6.3):
/// label || client_nonce || bank_nonce || dh_ee || dh_es.
pub(crate) fn master_input(
    ch: &ClientHelloFields,
    sh: &ServerHelloFields,
    dh: &Shared<'_>,
) -> MasterInput {
    let mut input = MasterInput::zeroed();
    let bytes = input.bytes_mut();
    let parts: [&[u8]; 5] = [
        label::MASTER,
        &ch.client_nonce,
        &sh.bank_nonce,
        dh.ee,
        dh.es,
    ];
    let mut at = 0;
    for part in parts {
        bytes[at..at + part.len()].copy_from_slice(part);
        at += part.len();
    }
    debug_assert_eq!(at, MASTER_INPUT_LEN);
    input
}

/// Every key of one session, each from its own HKDF label.
#[cfg_attr(fuzzing, derive(Clone))]
pub(crate) struct Keys {
    pub(crate) c2s_enc: Key,
    pub(crate) c2s_mac: Key,
    pub(crate) s2c_enc: Key,
    pub(crate) s2c_mac: Key,
    pub(crate) client_finished: Key,
    pub(crate) server_finished: Key,
    pub(crate) transcript: [u8; 32],
    /// Unique to the session, known to both ends only (§17).
    pub(crate) channel_binding: [u8; 32],
}

impl Keys {
    /// MS = HMAC(PSK, label || client_nonce || bank_nonce || dh_ee || dh_es);
    /// PRK = HKDF-Extract(th, MS); each key = HKDF-Expand(PRK, its label, 32).
    pub(crate) fn derive(
        psk: &Psk,
        bank: &BankPin,
        ch: &ClientHelloFields,
        sh: &ServerHelloFields,
        dh: &Shared<'_>,
    ) -> Self {
        Self::derive_kind(Kind::Session, psk, bank, ch, sh, dh).0
    }

    /// [`Keys::derive`] for an enrollment handshake, with its exporter key.
    pub(crate) fn derive_enrollment(
        psk: &Psk,
        bank: &BankPin,
        ch: &ClientHelloFields,
        sh: &ServerHelloFields,
        dh: &Shared<'_>,
    ) -> (Self, Key) {
        let (keys, prk) = Self::derive_kind(Kind::Enrollment, psk, bank, ch, sh, dh);
        (keys, expand_key(&prk, label::EXPORTER))
    }

    fn derive_kind(
        kind: Kind,
        psk: &Psk,
        bank: &BankPin,
        ch: &ClientHelloFields,
        sh: &ServerHelloFields,
        dh: &Shared<'_>,
    ) -> (Self, Prk) {
        let master = psk.master_secret(&master_input(ch, sh, dh));
        Self::from_master(kind, bank, ch, sh, &master)
    }

    /// The keys from a master secret computed by whoever holds the terminal key (§6.8).
    pub(crate) fn from_master(
        kind: Kind,
        bank: &BankPin,
        ch: &ClientHelloFields,
        sh: &ServerHelloFields,
        master: &MasterSecret,
    ) -> (Self, Prk) {
        let transcript = transcript_hash(kind, bank, ch, sh);
        let prk = Prk::extract(&transcript, master.bytes());
        let expand = |info: &[u8]| expand_key(&prk, info);
        let keys = Self {
            c2s_enc: expand(label::C2S_ENC),
            c2s_mac: expand(label::C2S_MAC),
            s2c_enc: expand(label::S2C_ENC),
            s2c_mac: expand(label::S2C_MAC),
            client_finished: expand(label::CLIENT_FINISHED),
            server_finished: expand(label::SERVER_FINISHED),
            transcript,
            channel_binding: *expand(label::CHANNEL_BINDING).bytes(),
        };
        (keys, prk)
    }

    /// The bank's Finished: HMAC(server_finished key, transcript hash).
    pub(crate) fn server_finished_mac(&self) -> [u8; 32] {
        hmac_sha256(self.server_finished.bytes(), &[&self.transcript])
    }

    /// The ATM's Finished: HMAC(client_finished key, transcript hash).
    pub(crate) fn client_finished_mac(&self) -> [u8; 32] {
        hmac_sha256(self.client_finished.bytes(), &[&self.transcript])
    }

    /// Constant-time check of a received bank Finished.
    pub(crate) fn verify_server_finished(&self, tag: &[u8]) -> bool {
        hmac_sha256_verify(self.server_finished.bytes(), &[&self.transcript], tag)
    }

    /// Constant-time check of a received ATM Finished.
    pub(crate) fn verify_client_finished(&self, tag: &[u8]) -> bool {
        hmac_sha256_verify(self.client_finished.bytes(), &[&self.transcript], tag)
    }
}

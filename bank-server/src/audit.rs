//! The forward-secure audit log format: encrypted, MACed, hash-chained entries under a key that
//! evolves one way after every entry, cut into epochs whose first keys only the auditor can
//! derive; sealing a new entry and verifying a whole chain.
//!
//! Entry `i` is sealed under key `K_i` (Schneier-Kelsey / journald FSS style):
//!
//! ```text
//! enc_i = HMAC(K_i, "bank audit enc")      mac_i = HMAC(K_i, "bank audit mac")
//! K_{i+1} = HMAC(K_i, "bank audit evolve")  (K_i is then forgotten)
//! entry_i = seq (8, BE) || prev_hash (32) || iv (16) || mac (32) || AES-256-CBC(enc_i, iv, json)
//! mac = HMAC(mac_i, "bank audit entry" || seq || prev_hash || iv || ciphertext)
//! prev_hash = SHA-256(entry_{i-1}), all zero for entry 0
//! ```
//!
//! **Epochs and key custody.** The auditor has an X25519 key pair `(a, A)`; the bank holds
//! only `A`. Every time a process opens the store for writing, its first entry begins a new
//! epoch at that entry's sequence number `s`: the bank draws an ephemeral X25519 key `e`,
//!
//! ```text
//! K_s = HKDF-SHA256(IKM = X25519(e, A), salt = "bank audit epoch",
//!                   info = bank_id || s (8, BE) || E || A)          (32 bytes, E = e·G)
//! ```
//!
//! stores the epoch record `(s, E)` in the same commit as entry `s`, and forgets `e` at once;
//! within the epoch the key evolves as above. The auditor derives the same `K_s` from
//! `X25519(a, E)`. The evolving key lives only in the writing process's memory ([`ChainTip`]):
//! the stored head ([`ChainHead`]) holds the next sequence number and the last entry's hash,
//! and nothing stored reveals any key, so neither the data directory, nor a backup, nor the
//! bank's own files let anyone recompute a key and re-seal an entry.
//!
//! **Chains.** A store holds one chain (sled), or one per node on a shared database
//! (PostgreSQL): each node appends only to the chain named by its `--node-name`, its epochs
//! derived with `bank_id || "/" || node` in place of `bank_id` above ([`chain_label`]), so the
//! auditor's one private key derives every chain's first keys, and an epoch record moved to
//! another chain derives a key that verifies nothing there. The chain named `""` (sled's one
//! chain, and the chain every node of a shared database appended to before per-node chains)
//! keeps `bank_id` alone.
//!
//! **What is caught.** Altering, reordering or dropping an entry inside the log fails its MAC
//! or the hash chain. Cutting the tail is not visible in the log itself: whoever can write the
//! store can do what the bank does after a crash (start a new epoch with `A`, which is public),
//! so a log cut at entry `t` and continued from there looks like a restart at `t`. The
//! checkpoint file catches a cut (`audit verify` checks the log reaches it, its entry there
//! hashing as recorded); against someone who can rewrite the bank's checkpoint file too, only
//! a copy kept off the machine does (`audit verify --checkpoints`).
//!
//! **Legacy logs.** A log begun before auditor keys (a head that held the current key, and a
//! symmetric first key `K_0` in the auditor's file) keeps its entries as one legacy epoch at 0,
//! checked with that `K_0`; the bank's first start under this code drops the key from the head
//! and continues with exchange epochs. Old copies of the head may survive in the storage
//! engine's files until it reclaims them: the guarantee above is for logs begun by this code.

use std::fmt;

use protocol::primitives::{
    aes256_cbc_decrypt, aes256_cbc_encrypt, hkdf_sha256, hmac_sha256, hmac_sha256_verify, sha256,
};
use serde::{Deserialize, Serialize};
use x25519_dalek::{EphemeralSecret, PublicKey, StaticSecret};
use zeroize::Zeroizing;

const LABEL_ENC: &[u8] = b"bank audit enc";
const LABEL_MAC: &[u8] = b"bank audit mac";
const LABEL_EVOLVE: &[u8] = b"bank audit evolve";
const LABEL_ENTRY: &[u8] = b"bank audit entry";
const LABEL_CHECKPOINT: &[u8] = b"bank audit checkpoint";
const LABEL_CHECKPOINT_V2: &[u8] = b"bank audit checkpoint v2";
const EPOCH_SALT: &[u8] = b"bank audit epoch";
const HEADER_LEN: usize = 8 + 32 + 16 + 32;
/// The stored head: next seq || 32 zero bytes || prev_hash. Before auditor keys the middle
/// held the current key; it is kept, zeroed, so that an older bank-server still reads the head
/// and refuses the store by its format instead of calling it damaged.
const HEAD_LEN: usize = 8 + 32 + 32;
/// The auditor key file's line holding the auditor's private key.
const AUDITOR_LINE: &str = "auditor-x25519";
/// An epoch record's first byte: a legacy epoch (symmetric first key) or an exchange epoch
/// (followed by the bank's ephemeral public key).
const EPOCH_LEGACY: u8 = 0;
const EPOCH_EXCHANGE: u8 = 1;

/// An audit key (`K_i`). No `Debug`; zeroized on drop.
#[derive(Clone)]
pub struct AuditKey(Zeroizing<[u8; 32]>);

impl AuditKey {
    /// A fresh random key (a legacy log's first key; tests).
    pub fn random() -> Self {
        let mut key = Zeroizing::new([0u8; 32]);
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, key.as_mut());
        Self(key)
    }

    /// Parses 64 hex characters (surrounding whitespace ignored).
    pub fn from_hex(text: &str) -> Option<Self> {
        let bytes = Zeroizing::new(hex::decode(text.trim()).ok()?);
        let array: [u8; 32] = bytes.as_slice().try_into().ok()?;
        Some(Self(Zeroizing::new(array)))
    }

    /// The key as 64 lowercase hex characters (a legacy auditor key file's line).
    pub fn to_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(hex::encode(self.0.as_ref()))
    }

    fn derive(&self, label: &[u8]) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(hmac_sha256(self.0.as_ref(), &[label]))
    }

    /// The next key in the one-way chain.
    pub fn evolve(&self) -> Self {
        Self(self.derive(LABEL_EVOLVE))
    }

    #[cfg(test)]
    fn ct_eq(&self, other: &Self) -> bool {
        use subtle::ConstantTimeEq as _;
        self.0[..].ct_eq(&other.0[..]).into()
    }

    /// This key evolved `n` times: `K_{s+n}` from `K_s` (what the auditor derives).
    pub fn evolved(&self, n: u64) -> Self {
        let mut key = self.clone();
        for _ in 0..n {
            key = key.evolve();
        }
        key
    }

    /// The MAC of a checkpoint of the chain at `next_seq` entries ending in `last_hash`, under
    /// this key, which must be `K_{next_seq}` (the key for the next entry at that point) of the
    /// epoch that began at `epoch`:
    /// `HMAC(HMAC(K, "bank audit checkpoint"), "bank audit checkpoint v2" || bank_id || seq ||
    /// epoch || last_hash)`. A checkpoint of a legacy log (`epoch` `None`, checkpoint format 1)
    /// has the label `"bank audit checkpoint"` and no epoch. The bank forgets the key with the
    /// next entry; the auditor derives it.
    pub fn checkpoint_mac(
        &self,
        bank_id: &str,
        next_seq: u64,
        epoch: Option<u64>,
        last_hash: &[u8; 32],
    ) -> [u8; 32] {
        let key = self.derive(LABEL_CHECKPOINT);
        let seq = next_seq.to_be_bytes();
        match epoch {
            None => hmac_sha256(
                key.as_ref(),
                &[LABEL_CHECKPOINT, bank_id.as_bytes(), &seq, last_hash],
            ),
            Some(start) => hmac_sha256(
                key.as_ref(),
                &[
                    LABEL_CHECKPOINT_V2,
                    bank_id.as_bytes(),
                    &seq,
                    &start.to_be_bytes(),
                    last_hash,
                ],
            ),
        }
    }
}

/// What an audit chain's epoch keys and checkpoint MACs are bound to: the bank's id for the
/// chain named `""` (a single node's store; PostgreSQL's shared chain from before per-node
/// chains), else `bank_id/chain` (a node's name holds no `/`, so no two chains share one).
pub fn chain_label<'a>(bank_id: &'a str, chain: &str) -> std::borrow::Cow<'a, str> {
    if chain.is_empty() {
        std::borrow::Cow::Borrowed(bank_id)
    } else {
        std::borrow::Cow::Owned(format!("{bank_id}/{chain}"))
    }
}

/// The first key of the exchange epoch at `start`, from the X25519 secret both sides agree on.
fn epoch_first_key(
    shared: &[u8; 32],
    bank_id: &str,
    start: u64,
    ephemeral: &[u8; 32],
    auditor: &[u8; 32],
) -> AuditKey {
    let info = [bank_id.as_bytes(), &start.to_be_bytes(), ephemeral, auditor].concat();
    let okm = hkdf_sha256(EPOCH_SALT, shared, &info, 32).expect("32 bytes is in HKDF's range");
    let mut key = Zeroizing::new([0u8; 32]);
    key.copy_from_slice(&okm);
    AuditKey(key)
}

/// Whether `public` is a point with which X25519 agrees a real secret (not a low-order point,
/// which gives the same all-zero secret with every private key).
fn contributory(public: &[u8; 32]) -> bool {
    StaticSecret::from([0x5a; 32])
        .diffie_hellman(&PublicKey::from(*public))
        .was_contributory()
}

/// The auditor's X25519 public key: all the bank holds of the auditor. `Debug` shows it (it is
/// public).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct AuditorPublicKey([u8; 32]);

impl AuditorPublicKey {
    /// Parses 64 hex characters (surrounding whitespace ignored); `None` when malformed or a
    /// low-order point.
    pub fn from_hex(text: &str) -> Option<Self> {
        let bytes: [u8; 32] = hex::decode(text.trim()).ok()?.try_into().ok()?;
        contributory(&bytes).then_some(Self(bytes))
    }

    /// The key as 64 lowercase hex characters.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for AuditorPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AuditorPublicKey({})", self.to_hex())
    }
}

impl fmt::Display for AuditorPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// The auditor's X25519 private key: never on the bank (unless a lab bank generated the pair,
/// wrote it to a file and forgot it). No `Debug`; zeroized on drop.
pub struct AuditorSecret(StaticSecret);

impl AuditorSecret {
    /// A fresh key pair.
    pub fn random() -> Self {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, bytes.as_mut());
        Self(StaticSecret::from(*bytes))
    }

    /// Parses the private key as 64 hex characters.
    pub fn from_hex(text: &str) -> Option<Self> {
        let bytes = Zeroizing::new(hex::decode(text.trim()).ok()?);
        let array: Zeroizing<[u8; 32]> = Zeroizing::new(bytes.as_slice().try_into().ok()?);
        Some(Self(StaticSecret::from(*array)))
    }

    /// The public key the bank is given.
    pub fn public(&self) -> AuditorPublicKey {
        AuditorPublicKey(PublicKey::from(&self.0).to_bytes())
    }

    /// The auditor key file's line for this key: `auditor-x25519 <64 hex>` and a newline.
    pub fn to_line(&self) -> Zeroizing<String> {
        let bytes = Zeroizing::new(self.0.to_bytes());
        Zeroizing::new(format!("{AUDITOR_LINE} {}\n", hex::encode(bytes.as_ref())))
    }

    /// The first key of the exchange epoch at `start` whose ephemeral public key is
    /// `ephemeral`, for the bank `bank_id`; `None` for a low-order ephemeral key.
    pub fn epoch_key(&self, bank_id: &str, start: u64, ephemeral: &[u8; 32]) -> Option<AuditKey> {
        let shared = self.0.diffie_hellman(&PublicKey::from(*ephemeral));
        if !shared.was_contributory() {
            return None;
        }
        let auditor = self.public().0;
        Some(epoch_first_key(
            shared.as_bytes(),
            bank_id,
            start,
            ephemeral,
            &auditor,
        ))
    }
}

/// How an epoch's first key is had.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EpochKind {
    /// A log begun before auditor keys: its first key `K_0` is in the auditor's file.
    Legacy,
    /// Derived from X25519 of the bank's ephemeral key `ephemeral` with the auditor's key.
    Exchange {
        /// The ephemeral public key `E` the bank drew for the epoch.
        ephemeral: [u8; 32],
    },
}

/// Where an epoch of the chain begins and how its first key is had: public, stored beside the
/// log (the engine keys it by `start`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Epoch {
    /// The sequence number of its first entry.
    pub start: u64,
    /// How its first key is had.
    pub kind: EpochKind,
}

impl Epoch {
    /// The legacy epoch: a log begun before auditor keys, from entry 0.
    pub fn legacy() -> Self {
        Self {
            start: 0,
            kind: EpochKind::Legacy,
        }
    }

    /// Storage encoding of the record (its start is the storage key): `0` for a legacy epoch,
    /// `1 || E (32)` for an exchange epoch.
    pub fn to_bytes(&self) -> Vec<u8> {
        match &self.kind {
            EpochKind::Legacy => vec![EPOCH_LEGACY],
            EpochKind::Exchange { ephemeral } => {
                let mut out = Vec::with_capacity(33);
                out.push(EPOCH_EXCHANGE);
                out.extend_from_slice(ephemeral);
                out
            }
        }
    }

    /// Parses [`Self::to_bytes`] of the epoch beginning at `start`.
    pub fn from_bytes(start: u64, bytes: &[u8]) -> Option<Self> {
        let kind = match bytes.split_first()? {
            (&EPOCH_LEGACY, []) => EpochKind::Legacy,
            (&EPOCH_EXCHANGE, rest) => EpochKind::Exchange {
                ephemeral: rest.try_into().ok()?,
            },
            _ => return None,
        };
        Some(Self { start, kind })
    }
}

/// Where the stored chain stands: public (no key).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChainHead {
    /// Sequence number of the next entry (= number of entries written).
    pub next_seq: u64,
    /// SHA-256 of the last entry, zero before the first.
    pub prev_hash: [u8; 32],
}

impl ChainHead {
    /// The head of an empty log.
    pub const EMPTY: Self = Self {
        next_seq: 0,
        prev_hash: [0; 32],
    };

    /// Storage encoding: seq || 32 zero bytes (no key) || prev_hash.
    pub fn to_bytes(&self) -> [u8; HEAD_LEN] {
        let mut out = [0u8; HEAD_LEN];
        out[..8].copy_from_slice(&self.next_seq.to_be_bytes());
        out[40..].copy_from_slice(&self.prev_hash);
        out
    }

    /// Parses [`Self::to_bytes`], or a head stored before auditor keys (seq || key ||
    /// prev_hash: its key is not read).
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != HEAD_LEN {
            return None;
        }
        Some(Self {
            next_seq: u64::from_be_bytes(bytes[..8].try_into().ok()?),
            prev_hash: bytes[40..].try_into().ok()?,
        })
    }

    /// Whether `bytes` is a head stored before auditor keys: one that holds a key.
    pub fn is_legacy_encoding(bytes: &[u8]) -> bool {
        bytes.len() == HEAD_LEN && bytes[8..40] != [0; 32]
    }
}

/// Where a writer stands: the head, the epoch it writes and the key for the next entry. Lives
/// only in the writing process's memory. No `Debug` (holds the key).
#[derive(Clone)]
pub struct ChainTip {
    head: ChainHead,
    epoch: Epoch,
    key: AuditKey,
}

impl ChainTip {
    /// Begins an exchange epoch at `head` for the auditor `auditor` of bank `bank_id`: draws
    /// an ephemeral key, derives the epoch's first key and forgets the ephemeral key. Returns
    /// the epoch record to store with the epoch's first entry, and the writer's tip.
    pub fn begin(bank_id: &str, head: ChainHead, auditor: &AuditorPublicKey) -> (Epoch, Self) {
        let secret = EphemeralSecret::random_from_rng(rand_core::OsRng);
        let ephemeral = PublicKey::from(&secret).to_bytes();
        // Consumes (and zeroizes) the ephemeral secret: nothing can derive the key after this
        // but the auditor. `auditor` is contributory (checked when parsed).
        let shared = secret.diffie_hellman(&PublicKey::from(auditor.0));
        let key = epoch_first_key(
            shared.as_bytes(),
            bank_id,
            head.next_seq,
            &ephemeral,
            &auditor.0,
        );
        let epoch = Epoch {
            start: head.next_seq,
            kind: EpochKind::Exchange { ephemeral },
        };
        (epoch, Self { head, epoch, key })
    }

    /// The tip of an empty legacy log whose first key is `first_key` (how logs began before
    /// auditor keys: to build one in a test, or check one).
    pub fn legacy(first_key: AuditKey) -> Self {
        Self {
            head: ChainHead::EMPTY,
            epoch: Epoch::legacy(),
            key: first_key,
        }
    }

    /// Where the chain stands.
    pub fn head(&self) -> &ChainHead {
        &self.head
    }

    /// The epoch being written.
    pub fn epoch(&self) -> &Epoch {
        &self.epoch
    }

    /// Seals `event` as the next entry; returns the entry bytes and the new tip.
    pub fn append(&self, event: &AuditEvent, iv: [u8; 16]) -> (Vec<u8>, ChainTip) {
        let seq = self.head.next_seq.to_be_bytes();
        let plaintext = Zeroizing::new(serde_json::to_vec(event).expect("events serialize"));
        let ciphertext = aes256_cbc_encrypt(&self.key.derive(LABEL_ENC), &iv, &plaintext);
        let mac = hmac_sha256(
            self.key.derive(LABEL_MAC).as_ref(),
            &[LABEL_ENTRY, &seq, &self.head.prev_hash, &iv, &ciphertext],
        );
        let mut entry = Vec::with_capacity(HEADER_LEN + ciphertext.len());
        entry.extend_from_slice(&seq);
        entry.extend_from_slice(&self.head.prev_hash);
        entry.extend_from_slice(&iv);
        entry.extend_from_slice(&mac);
        entry.extend_from_slice(&ciphertext);
        let next = ChainTip {
            head: ChainHead {
                next_seq: self.head.next_seq + 1,
                prev_hash: sha256(&[&entry]),
            },
            epoch: self.epoch,
            key: self.key.evolve(),
        };
        (entry, next)
    }

    /// The MAC of a checkpoint at this tip ([`AuditKey::checkpoint_mac`]; format 1 for a
    /// legacy epoch).
    pub fn checkpoint_mac(&self, bank_id: &str) -> [u8; 32] {
        let epoch = match self.epoch.kind {
            EpochKind::Legacy => None,
            EpochKind::Exchange { .. } => Some(self.epoch.start),
        };
        self.key
            .checkpoint_mac(bank_id, self.head.next_seq, epoch, &self.head.prev_hash)
    }
}

/// Why an auditor key file cannot be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyFileError {
    /// This line (from 1) is neither `auditor-x25519 <64 hex>` nor a legacy first key.
    Line(usize),
    /// The file holds two keys of this kind.
    Twice(&'static str),
    /// The file holds no key.
    Empty,
}

impl fmt::Display for KeyFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Line(n) => write!(
                f,
                "line {n} is neither `{AUDITOR_LINE} <64 hex>` nor a legacy first key (64 hex)"
            ),
            Self::Twice(what) => write!(f, "holds two {what}s"),
            Self::Empty => f.write_str("holds no audit key"),
        }
    }
}

impl std::error::Error for KeyFileError {}

/// What the auditor holds: their X25519 private key and, for a log begun before auditor keys,
/// its legacy first key. No `Debug`.
///
/// The auditor key file holds one key per line, in any order: `auditor-x25519 <64 hex>` (the
/// private key, as `audit keygen` writes it) and, for a legacy log, its first key as the bare
/// 64 hex characters the bank wrote before auditor keys (so `cat bank-audit.key >> auditor.key`
/// combines them). Empty lines are ignored.
#[derive(Default)]
pub struct AuditorKeys {
    secret: Option<AuditorSecret>,
    legacy: Option<AuditKey>,
}

impl AuditorKeys {
    /// The keys given.
    pub fn new(secret: Option<AuditorSecret>, legacy: Option<AuditKey>) -> Self {
        Self { secret, legacy }
    }

    /// Parses an auditor key file's text.
    pub fn parse(text: &str) -> Result<Self, KeyFileError> {
        let mut keys = Self::default();
        for (n, line) in (1..).zip(text.lines()) {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            if let Some(hex) = line.strip_prefix(AUDITOR_LINE) {
                let secret = hex
                    .starts_with(' ')
                    .then(|| AuditorSecret::from_hex(hex))
                    .flatten()
                    .ok_or(KeyFileError::Line(n))?;
                if keys.secret.replace(secret).is_some() {
                    return Err(KeyFileError::Twice("auditor key"));
                }
            } else {
                let key = AuditKey::from_hex(line).ok_or(KeyFileError::Line(n))?;
                if keys.legacy.replace(key).is_some() {
                    return Err(KeyFileError::Twice("legacy first key"));
                }
            }
        }
        if keys.secret.is_none() && keys.legacy.is_none() {
            return Err(KeyFileError::Empty);
        }
        Ok(keys)
    }

    /// The auditor's private key, if held.
    pub fn secret(&self) -> Option<&AuditorSecret> {
        self.secret.as_ref()
    }

    /// What checking `epochs` needs that these keys lack: `"auditor key"` (an exchange epoch)
    /// or `"legacy first key"` (a legacy epoch).
    pub fn missing_for(&self, epochs: &[Epoch]) -> Option<&'static str> {
        epochs.iter().find_map(|epoch| match epoch.kind {
            EpochKind::Legacy if self.legacy.is_none() => Some("legacy first key"),
            EpochKind::Exchange { .. } if self.secret.is_none() => Some("auditor key"),
            _ => None,
        })
    }

    /// The first key of `epoch` of bank `bank_id`.
    pub fn first_key(&self, bank_id: &str, epoch: &Epoch) -> Result<AuditKey, &'static str> {
        match epoch.kind {
            EpochKind::Legacy if epoch.start != 0 => Err("a legacy epoch can only begin the log"),
            EpochKind::Legacy => self
                .legacy
                .clone()
                .ok_or("its epoch needs the legacy first key, which the key file lacks"),
            EpochKind::Exchange { ephemeral } => self
                .secret
                .as_ref()
                .ok_or("its epoch needs the auditor key, which the key file lacks")?
                .epoch_key(bank_id, epoch.start, &ephemeral)
                .ok_or("its epoch record holds no usable key"),
        }
    }

    /// `K_seq` of `epoch`: its first key evolved once per entry before `seq`.
    pub fn key_at(&self, bank_id: &str, epoch: &Epoch, seq: u64) -> Result<AuditKey, &'static str> {
        let steps = seq
            .checked_sub(epoch.start)
            .ok_or("it lies before its epoch")?;
        Ok(self.first_key(bank_id, epoch)?.evolved(steps))
    }
}

/// One audited event. Never holds a password, key or card secret.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// When (Unix ms).
    pub time_ms: u64,
    /// What: `register`, `login_ok` (in logs written before successful logins stopped being
    /// audited), `login_failed`, `account_locked`, `terminal_locked`,
    /// `open_account`, `deposit`, `withdraw`, their refusals (`open_account_declined`,
    /// `deposit_declined`, `withdraw_declined`, the reason code in `detail`), `balance`,
    /// `history`, `logout`, `protocol_error`, `terminal_added` (its ceilings in `detail`),
    /// `terminal_revoked`, `openings_throttled` (a terminal opening accounts faster than its
    /// bucket allows, once per run of refusals), `wrong_listener` (a terminal's session on the
    /// listener of the other kind, closed after its handshake), and the operators' events.
    pub action: String,
    /// The user (username) concerned, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The account number concerned, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// The amount moved, in cents, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_cents: Option<u64>,
    /// The balance after, in cents, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub balance_cents: Option<u64>,
    /// The terminal, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminal: Option<String>,
    /// The connection id, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conn: Option<u64>,
    /// A short non-secret detail (e.g. the protocol fault).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl AuditEvent {
    /// An event of `action` at `time_ms`, other fields empty.
    pub fn new(action: &str, time_ms: u64) -> Self {
        Self {
            time_ms,
            action: action.to_owned(),
            ..Self::default()
        }
    }
}

/// Why a chain does not verify: the first bad entry and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyError {
    /// The position (sequence number) of the first bad entry; for a truncated log, the
    /// position of the first missing entry.
    pub entry: u64,
    /// What is wrong.
    pub problem: &'static str,
}

impl core::fmt::Display for VerifyError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "audit entry {}: {}", self.entry, self.problem)
    }
}

impl std::error::Error for VerifyError {}

/// Walks the chain's structure: each entry long enough, at its position, chained by hash to
/// the one before; `each` then checks the entry at its position (its MAC and contents, or
/// nothing). Returns the number of entries and the hash of the last, or the first bad entry.
fn walk<E: AsRef<[u8]>>(
    entries: impl IntoIterator<Item = (u64, E)>,
    mut each: impl FnMut(u64, &[u8]) -> Result<(), &'static str>,
) -> Result<(u64, [u8; 32]), VerifyError> {
    let mut prev_hash = [0u8; 32];
    let mut count = 0u64;
    for (position, (stored_at, entry)) in (0u64..).zip(entries) {
        let entry = entry.as_ref();
        let fail = |problem| VerifyError {
            entry: position,
            problem,
        };
        if entry.len() < HEADER_LEN + 16 {
            return Err(fail("too short"));
        }
        let seq = u64::from_be_bytes(entry[..8].try_into().expect("8 bytes"));
        if stored_at != position || seq != position {
            return Err(fail("missing, moved or out of order"));
        }
        if entry[8..40] != prev_hash {
            return Err(fail("does not chain to the previous entry"));
        }
        each(position, entry).map_err(fail)?;
        prev_hash = sha256(&[entry]);
        count = position + 1;
    }
    Ok((count, prev_hash))
}

/// The head must point just past the last entry (`count` entries ending in `prev_hash`). It
/// holds no key, so a tail cut together with a head rewound to match is caught only against a
/// checkpoint.
fn check_head(
    count: u64,
    prev_hash: [u8; 32],
    head: Option<&ChainHead>,
) -> Result<(), VerifyError> {
    let Some(head) = head else {
        return Err(VerifyError {
            entry: count,
            problem: "the log head is missing",
        });
    };
    if head.next_seq == count && head.prev_hash == prev_hash {
        Ok(())
    } else {
        Err(VerifyError {
            entry: count.min(head.next_seq),
            problem: "the log is truncated or its head does not match",
        })
    }
}

/// Checks the MAC of `entry` under `key` and decrypts it.
fn open_entry(key: &AuditKey, entry: &[u8]) -> Result<AuditEvent, &'static str> {
    let (seq, rest) = entry.split_at(8);
    let (prev, rest) = rest.split_at(32);
    let (iv, rest) = rest.split_at(16);
    let (mac, ciphertext) = rest.split_at(32);
    let ok = hmac_sha256_verify(
        key.derive(LABEL_MAC).as_ref(),
        &[LABEL_ENTRY, seq, prev, iv, ciphertext],
        mac,
    );
    if !ok {
        return Err("MAC does not verify (altered or forged)");
    }
    let iv: [u8; 16] = iv.try_into().expect("16 bytes");
    let plaintext =
        aes256_cbc_decrypt(&key.derive(LABEL_ENC), &iv, ciphertext).ok_or("does not decrypt")?;
    serde_json::from_slice(&plaintext).map_err(|_| "not an audit event")
}

/// Checks a whole log of bank `bank_id` with the auditor's `keys`: `epochs` are the stored
/// epoch records in order of their start, `entries` are `(storage key, entry bytes)` in storage
/// order, `head` is the stored head. Every entry must lie in an epoch, each epoch must begin
/// with an entry, and every MAC must verify under the key of the entry's epoch and position.
/// Returns every event, in order, or the first bad entry.
pub fn verify(
    keys: &AuditorKeys,
    bank_id: &str,
    epochs: &[Epoch],
    entries: &[(u64, Vec<u8>)],
    head: Option<&ChainHead>,
) -> Result<Vec<AuditEvent>, VerifyError> {
    if let Some(pair) = epochs
        .windows(2)
        .find(|pair| pair[0].start >= pair[1].start)
    {
        return Err(VerifyError {
            entry: pair[1].start,
            problem: "its epoch record is out of order",
        });
    }
    let mut upcoming = epochs.iter().peekable();
    let mut key: Option<AuditKey> = None;
    let mut events = Vec::with_capacity(entries.len());
    let pairs = entries.iter().map(|(at, entry)| (*at, entry));
    let (count, prev_hash) = walk(pairs, |position, entry| {
        if let Some(epoch) = upcoming.next_if(|epoch| epoch.start == position) {
            key = Some(keys.first_key(bank_id, epoch)?);
        }
        let current = key
            .as_ref()
            .ok_or("no epoch covers it (its epoch record is missing)")?;
        events.push(open_entry(current, entry)?);
        key = Some(current.evolve());
        Ok(())
    })?;
    if let Some(epoch) = upcoming.next() {
        return Err(VerifyError {
            entry: epoch.start,
            problem: "an epoch begins here but holds no entry (entries cut off?)",
        });
    }
    check_head(count, prev_hash, head)?;
    Ok(events)
}

/// Checks what the bank can check without the auditor's key: every entry is in its place,
/// chained by hash to the one before, and the head points past the last one. Returns how many
/// entries are linked, or the first entry that is not. (Edits by someone who rewrites the
/// following hashes too are caught only by the MACs: [`verify`], with the auditor's key.)
/// `entries` stream in storage order, so a long log is never held in memory.
pub fn check_links<E: AsRef<[u8]>>(
    entries: impl IntoIterator<Item = (u64, E)>,
    head: Option<&ChainHead>,
) -> Result<u64, VerifyError> {
    let (count, prev_hash) = walk(entries, |_, _| Ok(()))?;
    check_head(count, prev_hash, head)?;
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BANK: &str = "0123456789abcdef0123456789abcdef";

    /// A log: its epoch records, entries and head.
    #[derive(Clone)]
    struct Log {
        epochs: Vec<Epoch>,
        entries: Vec<(u64, Vec<u8>)>,
        head: ChainHead,
    }

    /// A log of epochs holding `sizes` entries each: the first a legacy epoch under `legacy`
    /// when given, the others exchange epochs for `auditor`.
    fn log(auditor: &AuditorPublicKey, legacy: Option<&AuditKey>, sizes: &[u64]) -> Log {
        let mut out = Log {
            epochs: Vec::new(),
            entries: Vec::new(),
            head: ChainHead::EMPTY,
        };
        for (n, size) in sizes.iter().enumerate() {
            let mut tip = match legacy {
                Some(k0) if n == 0 => {
                    out.epochs.push(Epoch::legacy());
                    ChainTip::legacy(k0.clone())
                }
                _ => {
                    let (epoch, tip) = ChainTip::begin(BANK, out.head, auditor);
                    out.epochs.push(epoch);
                    tip
                }
            };
            for _ in 0..*size {
                let seq = tip.head().next_seq;
                let mut event = AuditEvent::new("deposit", 1000 + seq);
                event.amount_cents = Some(seq);
                let (entry, next) = tip.append(&event, [u8::try_from(seq).unwrap(); 16]);
                out.entries.push((seq, entry));
                tip = next;
            }
            out.head = *tip.head();
        }
        out
    }

    fn keys(secret: AuditorSecret) -> AuditorKeys {
        AuditorKeys::new(Some(secret), None)
    }

    fn check(keys: &AuditorKeys, log: &Log) -> Result<Vec<AuditEvent>, VerifyError> {
        verify(keys, BANK, &log.epochs, &log.entries, Some(&log.head))
    }

    fn ephemeral(epoch: &Epoch) -> [u8; 32] {
        match epoch.kind {
            EpochKind::Exchange { ephemeral } => ephemeral,
            EpochKind::Legacy => panic!("a legacy epoch"),
        }
    }

    #[test]
    fn bank_and_auditor_derive_the_same_epoch_key() {
        let auditor = AuditorSecret::random();
        let head = ChainHead {
            next_seq: 17,
            prev_hash: [3; 32],
        };
        let (epoch, tip) = ChainTip::begin(BANK, head, &auditor.public());
        assert_eq!(epoch.start, 17);
        let e = ephemeral(&epoch);
        assert!(auditor.epoch_key(BANK, 17, &e).unwrap().ct_eq(&tip.key));
        // Bound to the bank, the position, the ephemeral key and the auditor.
        assert!(!auditor
            .epoch_key("another bank", 17, &e)
            .unwrap()
            .ct_eq(&tip.key));
        assert!(!auditor.epoch_key(BANK, 16, &e).unwrap().ct_eq(&tip.key));
        assert!(!AuditorSecret::random()
            .epoch_key(BANK, 17, &e)
            .unwrap()
            .ct_eq(&tip.key));
        // Every epoch draws its own ephemeral key: two starts at one place differ.
        let (again, tip2) = ChainTip::begin(BANK, head, &auditor.public());
        assert_ne!(again, epoch);
        assert!(!tip2.key.ct_eq(&tip.key));
        // A low-order point is no key.
        assert!(auditor.epoch_key(BANK, 17, &[0; 32]).is_none());
        assert!(AuditorPublicKey::from_hex(&"00".repeat(32)).is_none());
        let public = auditor.public();
        assert_eq!(AuditorPublicKey::from_hex(&public.to_hex()), Some(public));
    }

    #[test]
    fn a_chain_across_epochs_verifies_and_decrypts() {
        let auditor = AuditorSecret::random();
        let log = log(&auditor.public(), None, &[3, 1, 4]);
        assert_eq!(
            log.epochs.iter().map(|e| e.start).collect::<Vec<_>>(),
            [0, 3, 4]
        );
        let events = check(&keys(auditor), &log).unwrap();
        assert_eq!(events.len(), 8);
        assert_eq!(events[5].amount_cents, Some(5));
    }

    #[test]
    fn a_legacy_epoch_then_exchange_epochs_verify_with_both_keys() {
        let auditor = AuditorSecret::random();
        let k0 = AuditKey::random();
        let log = log(&auditor.public(), Some(&k0), &[3, 2]);
        assert_eq!(log.epochs[0], Epoch::legacy());
        let both = AuditorKeys::new(
            Some(AuditorSecret::from_hex(&hex_of(&auditor)).unwrap()),
            Some(k0.clone()),
        );
        assert_eq!(check(&both, &log).unwrap().len(), 5);
        assert_eq!(both.missing_for(&log.epochs), None);
        let only_new = keys(auditor);
        assert_eq!(only_new.missing_for(&log.epochs), Some("legacy first key"));
        assert_eq!(check(&only_new, &log).unwrap_err().entry, 0);
        let only_legacy = AuditorKeys::new(None, Some(k0.clone()));
        assert_eq!(only_legacy.missing_for(&log.epochs), Some("auditor key"));
        assert_eq!(check(&only_legacy, &log).unwrap_err().entry, 3);
        // A wrong legacy key fails at entry 0.
        let wrong = AuditorKeys::new(None, Some(AuditKey::random()));
        assert_eq!(check(&wrong, &log).unwrap_err().entry, 0);
    }

    fn hex_of(secret: &AuditorSecret) -> String {
        secret
            .to_line()
            .trim()
            .strip_prefix("auditor-x25519 ")
            .unwrap()
            .to_owned()
    }

    #[test]
    fn a_wrong_auditor_key_fails_at_the_first_entry() {
        let auditor = AuditorSecret::random();
        let log = log(&auditor.public(), None, &[2, 2]);
        let err = check(&keys(AuditorSecret::random()), &log).unwrap_err();
        assert_eq!(err.entry, 0);
        assert!(err.problem.contains("MAC"), "{err}");
        assert!(check(&AuditorKeys::new(None, Some(AuditKey::random())), &log).is_err());
    }

    #[test]
    fn every_byte_flip_is_caught_at_its_entry() {
        let auditor = AuditorSecret::random();
        let log = log(&auditor.public(), None, &[2, 3]);
        let keys = keys(auditor);
        for at in [0, 1, 2, 4] {
            for byte in 0..log.entries[at].1.len() {
                let mut bad = log.clone();
                bad.entries[at].1[byte] ^= 0x01;
                let err = check(&keys, &bad).unwrap_err();
                assert_eq!(err.entry, at as u64, "entry {at} byte {byte}: {err}");
            }
        }
    }

    #[test]
    fn a_swapped_ephemeral_key_fails_the_first_entry_of_its_epoch() {
        let auditor = AuditorSecret::random();
        let mut log = log(&auditor.public(), None, &[2, 3, 1]);
        let keys = keys(auditor);
        // Someone who starts an epoch of their own (the auditor's public key is no secret)
        // and puts it in place of a real one: the real entries do not verify under it.
        let (forged, _) = ChainTip::begin(
            BANK,
            ChainHead {
                next_seq: 2,
                prev_hash: log.entries[1].1[8..40].try_into().unwrap(),
            },
            &keys.secret().unwrap().public(),
        );
        log.epochs[1] = forged;
        let err = check(&keys, &log).unwrap_err();
        assert_eq!(err.entry, 2, "{err}");
        // A removed epoch record leaves its entries under no key of theirs.
        let mut removed = log.clone();
        removed.epochs.remove(0);
        assert_eq!(check(&keys, &removed).unwrap_err().entry, 0);
        // An epoch record with no entry, out of order, or a legacy epoch later in the log.
        let mut extra = log.clone();
        extra.epochs.push(Epoch::legacy());
        assert!(check(&keys, &extra).is_err());
    }

    #[test]
    fn a_cut_tail_is_caught_unless_the_head_is_rewound_too() {
        let auditor = AuditorSecret::random();
        let log = log(&auditor.public(), None, &[3, 3]);
        let keys = keys(auditor);
        let cut = Log {
            epochs: log.epochs.clone(),
            entries: log.entries[..4].to_vec(),
            head: log.head,
        };
        assert_eq!(check(&keys, &cut).unwrap_err().entry, 4);
        // The whole last epoch cut, its record left: the record holds no entry.
        let whole = Log {
            epochs: log.epochs.clone(),
            entries: log.entries[..3].to_vec(),
            head: ChainHead {
                next_seq: 3,
                prev_hash: sha256(&[&log.entries[2].1]),
            },
        };
        assert_eq!(check(&keys, &whole).unwrap_err().entry, 3);
        // Cut inside the last epoch with the head rewound: the head holds no key, so the log
        // alone cannot show it; the checkpoint does (see the module documentation).
        let rewound = Log {
            epochs: log.epochs.clone(),
            entries: log.entries[..4].to_vec(),
            head: ChainHead {
                next_seq: 4,
                prev_hash: sha256(&[&log.entries[3].1]),
            },
        };
        assert_eq!(check(&keys, &rewound).unwrap().len(), 4);
    }

    #[test]
    fn links_catch_deletion_reordering_truncation_and_plain_edits() {
        let auditor = AuditorSecret::random();
        let Log { entries, head, .. } = log(&auditor.public(), None, &[4]);
        assert_eq!(check_links(entries.clone(), Some(&head)), Ok(4));
        let mut edited = entries.clone();
        edited[1].1[70] ^= 1; // inside entry 1: entry 2 no longer chains to it
        assert_eq!(check_links(edited, Some(&head)).unwrap_err().entry, 2);
        let mut deleted = entries.clone();
        deleted.remove(1);
        assert_eq!(check_links(deleted, Some(&head)).unwrap_err().entry, 1);
        let mut swapped = entries.clone();
        swapped.swap(1, 2);
        assert_eq!(check_links(swapped, Some(&head)).unwrap_err().entry, 1);
        assert_eq!(
            check_links(entries[..3].to_vec(), Some(&head))
                .unwrap_err()
                .entry,
            3
        );
        assert!(check_links(entries, None).is_err());
    }

    #[test]
    fn heads_and_epoch_records_round_trip() {
        let head = ChainHead {
            next_seq: 2,
            prev_hash: [9; 32],
        };
        assert_eq!(ChainHead::from_bytes(&head.to_bytes()), Some(head));
        assert!(!ChainHead::is_legacy_encoding(&head.to_bytes()));
        assert_eq!(head.to_bytes()[8..40], [0; 32], "no key");
        // A head stored before auditor keys: seq || key || prev_hash, its key not read.
        let legacy = [&2u64.to_be_bytes()[..], &[7; 32], &[9; 32]].concat();
        assert!(ChainHead::is_legacy_encoding(&legacy));
        assert_eq!(ChainHead::from_bytes(&legacy), Some(head));
        assert_eq!(ChainHead::from_bytes(&legacy[1..]), None);
        let (epoch, _) = ChainTip::begin(BANK, head, &AuditorSecret::random().public());
        assert_eq!(epoch.to_bytes().len(), 33);
        assert_eq!(Epoch::from_bytes(2, &epoch.to_bytes()), Some(epoch));
        assert_eq!(Epoch::from_bytes(0, &[0]), Some(Epoch::legacy()));
        assert_eq!(Epoch::from_bytes(2, &epoch.to_bytes()[..32]), None);
        assert_eq!(Epoch::from_bytes(2, &[2]), None);
        assert_eq!(Epoch::from_bytes(2, &[]), None);
    }

    #[test]
    fn key_files_hold_an_auditor_key_a_legacy_key_or_both() {
        let auditor = AuditorSecret::random();
        let line = auditor.to_line();
        assert!(line.starts_with("auditor-x25519 ") && line.ends_with('\n'));
        assert_eq!(line.len(), "auditor-x25519 ".len() + 64 + 1);
        let parsed = AuditorKeys::parse(&line).unwrap();
        assert_eq!(parsed.secret().unwrap().public(), auditor.public());
        assert!(parsed.legacy.is_none());
        let k0 = AuditKey::random();
        let legacy = format!("{}\n", k0.to_hex().as_str());
        let only = AuditorKeys::parse(&legacy).unwrap();
        assert!(only.secret().is_none() && only.legacy.unwrap().ct_eq(&k0));
        // `cat bank-audit.key >> auditor.key`, in either order, with blank lines.
        for text in [
            format!("{}{legacy}", line.as_str()),
            format!("{legacy}\n{}", line.as_str()),
        ] {
            let both = AuditorKeys::parse(&text).unwrap();
            assert!(both.secret().is_some() && both.legacy.is_some());
        }
        assert_eq!(
            AuditorKeys::parse(&format!("{}{}", line.as_str(), line.as_str())).err(),
            Some(KeyFileError::Twice("auditor key"))
        );
        assert_eq!(
            AuditorKeys::parse(&format!("{legacy}{legacy}")).err(),
            Some(KeyFileError::Twice("legacy first key"))
        );
        assert_eq!(AuditorKeys::parse("\n\n").err(), Some(KeyFileError::Empty));
        assert_eq!(
            AuditorKeys::parse(&format!("{legacy}auditor-x25519{}\n", "ab".repeat(32))).err(),
            Some(KeyFileError::Line(2))
        );
        assert_eq!(
            AuditorKeys::parse("auditor-x25519 abc\n").err(),
            Some(KeyFileError::Line(1))
        );
        assert_eq!(
            AuditorKeys::parse("hello\n").err(),
            Some(KeyFileError::Line(1))
        );
    }

    #[test]
    fn each_chain_derives_its_own_keys_from_the_one_auditor_key() {
        let auditor = AuditorSecret::random();
        assert_eq!(chain_label(BANK, ""), BANK);
        let (n1, n2) = (chain_label(BANK, "n1"), chain_label(BANK, "n2"));
        assert_eq!(n1, format!("{BANK}/n1"));
        let (epoch, tip) = ChainTip::begin(&n1, ChainHead::EMPTY, &auditor.public());
        let keys = keys(auditor);
        assert!(keys.first_key(&n1, &epoch).unwrap().ct_eq(&tip.key));
        // The same epoch record on another chain (or the bank's own) derives another key.
        assert!(!keys.first_key(&n2, &epoch).unwrap().ct_eq(&tip.key));
        assert!(!keys.first_key(BANK, &epoch).unwrap().ct_eq(&tip.key));
    }

    #[test]
    fn checkpoint_macs_name_their_epoch() {
        let auditor = AuditorSecret::random();
        let log = log(&auditor.public(), None, &[2, 3]);
        let keys = keys(auditor);
        let k = keys.key_at(BANK, &log.epochs[1], 5).unwrap();
        let mac = k.checkpoint_mac(BANK, 5, Some(2), &log.head.prev_hash);
        assert_ne!(mac, k.checkpoint_mac(BANK, 5, Some(0), &log.head.prev_hash));
        assert_ne!(mac, k.checkpoint_mac(BANK, 5, None, &log.head.prev_hash));
        assert!(keys.key_at(BANK, &log.epochs[1], 1).is_err());
    }
}

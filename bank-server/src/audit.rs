//! The forward-secure audit log format: encrypted, MACed, hash-chained entries under a key that
//! evolves one way after every entry; sealing a new entry and verifying a whole chain.
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
//! The bank keeps only the head (next seq, current key, hash of the last entry). `K_0` goes once
//! to the auditor. Someone who steals the bank's current key cannot compute any earlier key, so
//! cannot alter, reorder or drop earlier entries without the MACs failing; truncating the tail
//! is caught because the head's key must equal `K_0` evolved once per entry.

use protocol::primitives::{
    aes256_cbc_decrypt, aes256_cbc_encrypt, hmac_sha256, hmac_sha256_verify, sha256,
};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

const LABEL_ENC: &[u8] = b"bank audit enc";
const LABEL_MAC: &[u8] = b"bank audit mac";
const LABEL_EVOLVE: &[u8] = b"bank audit evolve";
const LABEL_ENTRY: &[u8] = b"bank audit entry";
const LABEL_CHECKPOINT: &[u8] = b"bank audit checkpoint";
const HEADER_LEN: usize = 8 + 32 + 16 + 32;
const HEAD_LEN: usize = 8 + 32 + 32;

/// An audit key (`K_i`). No `Debug`; zeroized on drop.
#[derive(Clone)]
pub struct AuditKey(Zeroizing<[u8; 32]>);

impl AuditKey {
    /// A fresh random first key.
    pub fn random() -> Self {
        let mut key = Zeroizing::new([0u8; 32]);
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, key.as_mut());
        Self(key)
    }

    /// Parses 64 lowercase hex characters (surrounding whitespace ignored).
    pub fn from_hex(text: &str) -> Option<Self> {
        let bytes = Zeroizing::new(hex::decode(text.trim()).ok()?);
        let array: [u8; 32] = bytes.as_slice().try_into().ok()?;
        Some(Self(Zeroizing::new(array)))
    }

    /// The key as 64 lowercase hex characters (for the auditor's key file).
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

    fn ct_eq(&self, other: &Self) -> bool {
        self.0[..].ct_eq(&other.0[..]).into()
    }

    /// This key evolved `n` times: `K_n` from `K_0` (what the auditor derives).
    pub fn evolved(&self, n: u64) -> Self {
        let mut key = self.clone();
        for _ in 0..n {
            key = key.evolve();
        }
        key
    }

    /// The MAC of a checkpoint of the chain at `next_seq` entries ending in `last_hash`, under
    /// this key, which must be `K_{next_seq}` (the head's key at that point):
    /// `HMAC(HMAC(K, "bank audit checkpoint"), "bank audit checkpoint" || bank_id || seq ||
    /// last_hash)`. The bank forgets the key with the next entry; the auditor derives it.
    pub fn checkpoint_mac(&self, bank_id: &str, next_seq: u64, last_hash: &[u8; 32]) -> [u8; 32] {
        hmac_sha256(
            self.derive(LABEL_CHECKPOINT).as_ref(),
            &[
                LABEL_CHECKPOINT,
                bank_id.as_bytes(),
                &next_seq.to_be_bytes(),
                last_hash,
            ],
        )
    }
}

/// What the bank keeps to append the next entry. No `Debug` (holds the current key).
#[derive(Clone)]
pub struct ChainHead {
    /// Sequence number of the next entry (= number of entries written).
    pub next_seq: u64,
    /// The key for the next entry.
    pub key: AuditKey,
    /// SHA-256 of the last entry, zero before the first.
    pub prev_hash: [u8; 32],
}

impl ChainHead {
    /// The head of an empty log starting at `first_key`.
    pub fn new(first_key: AuditKey) -> Self {
        Self {
            next_seq: 0,
            key: first_key,
            prev_hash: [0; 32],
        }
    }

    /// Storage encoding: seq || key || prev_hash.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(HEAD_LEN));
        out.extend_from_slice(&self.next_seq.to_be_bytes());
        out.extend_from_slice(self.key.0.as_ref());
        out.extend_from_slice(&self.prev_hash);
        out
    }

    /// Parses [`Self::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != HEAD_LEN {
            return None;
        }
        let next_seq = u64::from_be_bytes(bytes[..8].try_into().ok()?);
        let key: [u8; 32] = bytes[8..40].try_into().ok()?;
        let prev_hash: [u8; 32] = bytes[40..].try_into().ok()?;
        Some(Self {
            next_seq,
            key: AuditKey(Zeroizing::new(key)),
            prev_hash,
        })
    }

    /// Seals `event` as the next entry; returns the entry bytes and the new head.
    pub fn append(&self, event: &AuditEvent, iv: [u8; 16]) -> (Vec<u8>, ChainHead) {
        let seq = self.next_seq.to_be_bytes();
        let plaintext = Zeroizing::new(serde_json::to_vec(event).expect("events serialize"));
        let ciphertext = aes256_cbc_encrypt(&self.key.derive(LABEL_ENC), &iv, &plaintext);
        let mac = hmac_sha256(
            self.key.derive(LABEL_MAC).as_ref(),
            &[LABEL_ENTRY, &seq, &self.prev_hash, &iv, &ciphertext],
        );
        let mut entry = Vec::with_capacity(HEADER_LEN + ciphertext.len());
        entry.extend_from_slice(&seq);
        entry.extend_from_slice(&self.prev_hash);
        entry.extend_from_slice(&iv);
        entry.extend_from_slice(&mac);
        entry.extend_from_slice(&ciphertext);
        let next = ChainHead {
            next_seq: self.next_seq + 1,
            key: self.key.evolve(),
            prev_hash: sha256(&[&entry]),
        };
        (entry, next)
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
    /// bucket allows, once per run of refusals), and the operators' events.
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
/// the one before; `each` then checks the entry's MAC and contents (or nothing). Returns the
/// hash of the last entry, or the first bad entry.
fn walk<E: AsRef<[u8]>>(
    entries: impl IntoIterator<Item = (u64, E)>,
    mut each: impl FnMut(&[u8]) -> Result<(), &'static str>,
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
        each(entry).map_err(fail)?;
        prev_hash = sha256(&[entry]);
        count = position + 1;
    }
    Ok((count, prev_hash))
}

/// The head must point just past the last entry (`count` entries ending in `prev_hash`) and,
/// when the auditor's key is known, hold that key evolved once per entry (`key_ok`).
fn check_head(
    count: u64,
    prev_hash: [u8; 32],
    head: Option<&ChainHead>,
    key_ok: impl FnOnce(&ChainHead) -> bool,
) -> Result<(), VerifyError> {
    let Some(head) = head else {
        return Err(VerifyError {
            entry: count,
            problem: "the log head is missing",
        });
    };
    if head.next_seq == count && head.prev_hash == prev_hash && key_ok(head) {
        Ok(())
    } else {
        Err(VerifyError {
            entry: count.min(head.next_seq),
            problem: "the log is truncated or its head does not match",
        })
    }
}

/// Checks a whole log: `entries` are `(storage key, entry bytes)` in storage order, `head` is the
/// bank's current head. Returns every event, in order, or the first bad entry.
pub fn verify(
    first_key: &AuditKey,
    entries: &[(u64, Vec<u8>)],
    head: Option<&ChainHead>,
) -> Result<Vec<AuditEvent>, VerifyError> {
    let mut key = first_key.clone();
    let mut events = Vec::with_capacity(entries.len());
    let pairs = entries.iter().map(|(at, entry)| (*at, entry));
    let (count, prev_hash) = walk(pairs, |entry| {
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
        let plaintext = aes256_cbc_decrypt(&key.derive(LABEL_ENC), &iv, ciphertext)
            .ok_or("does not decrypt")?;
        let event: AuditEvent =
            serde_json::from_slice(&plaintext).map_err(|_| "not an audit event")?;
        events.push(event);
        key = key.evolve();
        Ok(())
    })?;
    check_head(count, prev_hash, head, |h| h.key.ct_eq(&key))?;
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
    let (count, prev_hash) = walk(entries, |_| Ok(()))?;
    check_head(count, prev_hash, head, |_| true)?;
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: u64) -> (AuditKey, Vec<(u64, Vec<u8>)>, ChainHead) {
        let k0 = AuditKey::random();
        let mut head = ChainHead::new(k0.clone());
        let mut entries = Vec::new();
        for i in 0..n {
            let mut event = AuditEvent::new("deposit", 1000 + i);
            event.amount_cents = Some(i);
            let (entry, next) = head.append(&event, [u8::try_from(i).unwrap(); 16]);
            entries.push((i, entry));
            head = next;
        }
        (k0, entries, head)
    }

    #[test]
    fn an_intact_chain_verifies_and_decrypts() {
        let (k0, entries, head) = chain(5);
        let events = verify(&k0, &entries, Some(&head)).unwrap();
        assert_eq!(events.len(), 5);
        assert_eq!(events[3].amount_cents, Some(3));
        assert!(verify(&AuditKey::random(), &entries, Some(&head)).is_err());
    }

    #[test]
    fn every_byte_flip_is_caught_at_its_entry() {
        let (k0, entries, head) = chain(3);
        for byte in 0..entries[1].1.len() {
            let mut bad = entries.clone();
            bad[1].1[byte] ^= 0x01;
            let err = verify(&k0, &bad, Some(&head)).unwrap_err();
            assert_eq!(err.entry, 1, "byte {byte}");
        }
    }

    #[test]
    fn truncation_is_caught_even_with_a_rewound_head() {
        let (k0, entries, head) = chain(4);
        let err = verify(&k0, &entries[..3], Some(&head)).unwrap_err();
        assert_eq!(err.entry, 3);
        // An attacker holding the current key cannot produce K_3 to rewind the head.
        let mut rewound = head.clone();
        rewound.next_seq = 3;
        rewound.prev_hash = sha256(&[&entries[2].1]);
        assert!(verify(&k0, &entries[..3], Some(&rewound)).is_err());
    }

    #[test]
    fn links_catch_deletion_reordering_truncation_and_plain_edits() {
        let (_, entries, head) = chain(4);
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
    fn head_round_trips() {
        let (_, _, head) = chain(2);
        let back = ChainHead::from_bytes(&head.to_bytes()).unwrap();
        assert_eq!(back.next_seq, 2);
        assert!(back.key.ct_eq(&head.key));
    }
}

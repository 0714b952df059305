//! The stored forms of records every engine keeps alike (JSON): terminals, pending
//! enrollments, and their keys, sealed under the storage keys once the bank gives them; and
//! what both engines decide alike about the identity and keep of the recent audit entries.

use std::collections::VecDeque;
use std::sync::Mutex;

use protocol::{Cents, Psk, TerminalId, TerminalRole};
use serde::{Deserialize, Serialize};

use crate::audit::{AuditEvent, AuditorPublicKey};
use crate::ledger::{BankIdentity, DepositCeilings, LedgerError, RecentAudit, TerminalRecord};
use crate::secrets::StorageKeys;

/// A terminal as stored (the PSK as hex).
#[derive(Serialize, Deserialize)]
pub(crate) struct StoredTerminal {
    pub(crate) name: String,
    pub(crate) psk: String,
    pub(crate) revoked: bool,
    pub(crate) created_ms: u64,
    /// Absent in data written before consoles existed: those are ATMs.
    #[serde(default)]
    pub(crate) role: TerminalRole,
    /// Its largest deposit in cents; absent (in data written before ceilings existed too):
    /// none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) max_deposit: Option<Cents>,
    /// The most it may deposit per UTC day in cents; absent: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) max_deposit_per_day: Option<Cents>,
}

impl StoredTerminal {
    pub(crate) fn ceilings(&self) -> DepositCeilings {
        StoredCeilings {
            max_deposit: self.max_deposit,
            max_deposit_per_day: self.max_deposit_per_day,
        }
        .into()
    }
}

/// Only the ceilings of a [`StoredTerminal`], read on every deposit: its key is skipped by the
/// parser, never copied into memory.
#[derive(Deserialize)]
pub(crate) struct StoredCeilings {
    #[serde(default)]
    pub(crate) max_deposit: Option<Cents>,
    #[serde(default)]
    pub(crate) max_deposit_per_day: Option<Cents>,
}

impl From<StoredCeilings> for DepositCeilings {
    fn from(stored: StoredCeilings) -> Self {
        Self {
            per_deposit: stored.max_deposit,
            per_day: stored.max_deposit_per_day,
        }
    }
}

/// A pending enrollment as stored (the code's handshake key in hex, never the code).
#[derive(Serialize, Deserialize)]
pub(crate) struct StoredEnrollment {
    pub(crate) name: String,
    pub(crate) key: String,
    pub(crate) role: TerminalRole,
    pub(crate) ceilings: DepositCeilings,
    pub(crate) created_ms: u64,
    pub(crate) expires_ms: u64,
}

pub(crate) fn storage(e: impl core::fmt::Display) -> LedgerError {
    LedgerError::Storage(e.to_string())
}

pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("stored records serialize")
}

pub(crate) fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, LedgerError> {
    serde_json::from_slice(bytes).map_err(|e| LedgerError::Storage(format!("corrupt record: {e}")))
}

/// A stored key: sealed under the storage keys, or (in stores from before keys were sealed)
/// plain hex.
pub(crate) fn stored_key(
    id: &str,
    stored: String,
    keys: Option<&StorageKeys>,
) -> Result<Psk, LedgerError> {
    let stored = zeroize::Zeroizing::new(stored);
    if crate::secrets::is_sealed(&stored) {
        let keys = keys.ok_or_else(|| {
            LedgerError::Storage("the keys are sealed: the bank's key file is needed".into())
        })?;
        return keys.open(id, &stored).ok_or_else(|| {
            LedgerError::Storage(format!(
                "the sealed key of {id} does not open (altered, or another bank's key file)"
            ))
        });
    }
    Psk::from_hex(&stored).ok_or_else(|| LedgerError::Storage("corrupt stored key".into()))
}

/// A key as stored: sealed when the storage keys are known.
pub(crate) fn key_to_store(id: &str, key: &Psk, keys: Option<&StorageKeys>) -> String {
    match keys {
        Some(keys) => keys.seal(id, key),
        None => key.to_hex().to_string(),
    }
}

pub(crate) fn terminal_from(
    id: TerminalId,
    stored: StoredTerminal,
    keys: Option<&StorageKeys>,
) -> Result<TerminalRecord, LedgerError> {
    Ok(TerminalRecord {
        ceilings: stored.ceilings(),
        psk: stored_key(id.as_str(), stored.psk, keys)?,
        id,
        name: stored.name,
        revoked: stored.revoked,
        created_ms: stored.created_ms,
        role: stored.role,
    })
}

pub(crate) fn to_stored(
    t: &TerminalRecord,
    keys: Option<&StorageKeys>,
) -> zeroize::Zeroizing<Vec<u8>> {
    let stored = StoredTerminal {
        name: t.name.clone(),
        psk: key_to_store(t.id.as_str(), &t.psk, keys),
        revoked: t.revoked,
        created_ms: t.created_ms,
        role: t.role,
        max_deposit: t.ceilings.per_deposit,
        max_deposit_per_day: t.ceilings.per_day,
    };
    let bytes = zeroize::Zeroizing::new(encode(&stored));
    let mut psk = stored.psk;
    zeroize::Zeroize::zeroize(&mut psk);
    bytes
}

/// `Err(Storage(why))` unless `identity` names a usable auditor public key.
pub(crate) fn require_auditor_key(identity: &BankIdentity, why: &str) -> Result<(), LedgerError> {
    match identity
        .auditor_key
        .as_deref()
        .and_then(AuditorPublicKey::from_hex)
    {
        Some(_) => Ok(()),
        None => Err(LedgerError::Storage(why.into())),
    }
}

/// The stored identity (`bytes`) with the bank key `public_hex` recorded; `None` when it has
/// one already.
pub(crate) fn with_bank_key(
    bytes: &[u8],
    public_hex: &str,
) -> Result<Option<BankIdentity>, LedgerError> {
    let mut identity: BankIdentity = decode(bytes)?;
    if identity.bank_key.is_some() {
        return Ok(None);
    }
    identity.bank_key = Some(public_hex.to_owned());
    Ok(Some(identity))
}

/// Whether the stored identity (`bytes`) is to get the auditor key of `upgraded` (it has none
/// yet); refused when it is another bank's.
pub(crate) fn takes_auditor_key(
    bytes: &[u8],
    upgraded: &BankIdentity,
) -> Result<bool, LedgerError> {
    let current: BankIdentity = decode(bytes)?;
    if current.auditor_key.is_some() {
        return Ok(false);
    }
    if current.id != upgraded.id {
        return Err(LedgerError::Storage("another bank's identity".into()));
    }
    Ok(true)
}

/// How many appended audit events a ledger remembers in memory for the console.
const RECENT_AUDIT: usize = 256;

/// The newest audit events this process appended (memory only), for the console.
#[derive(Default)]
pub(crate) struct Recent(Mutex<VecDeque<(u64, AuditEvent)>>);

impl Recent {
    /// Remembers committed entries, forgetting the oldest beyond [`RECENT_AUDIT`].
    pub(crate) fn extend(&self, entries: Vec<(u64, AuditEvent)>) {
        let mut recent = self.0.lock().unwrap_or_else(|p| p.into_inner());
        for item in entries {
            if recent.len() == RECENT_AUDIT {
                recent.pop_front();
            }
            recent.push_back(item);
        }
    }

    /// The newest `limit`, newest first, with the log's length `total`.
    pub(crate) fn newest(&self, total: u64, limit: usize) -> RecentAudit {
        let recent = self.0.lock().unwrap_or_else(|p| p.into_inner());
        RecentAudit {
            total,
            entries: recent.iter().rev().take(limit).cloned().collect(),
        }
    }
}

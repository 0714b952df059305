//! The compact binary forms in which the embedded engines (sled, redb) store what every
//! transaction writes (an account's state, a history entry, a transaction id's pointer to its
//! entry), and the reading of the JSON that stores written before them hold.
//!
//! Every compact record begins with [`TAG`] (`0x01`), a byte no JSON text begins with, so one
//! reader takes both forms and a store is never rewritten to change its encoding: old records
//! stay JSON until the bank next writes them. Integers are big-endian.
//!
//! | Record | Bytes |
//! | --- | --- |
//! | account | `01` · balance u64 · transaction count u64 · username (UTF-8, the rest) |
//! | history entry | `01` · txid (16) · kind u8 (0 open, 1 deposit, 2 withdraw) · amount u64 · balance after u64 · time (Unix ms) u64 |
//! | txid pointer | `01` · the entry's position in its account's history u64 |

use protocol::{Cents, HistoryEntry, TxId, TxKind, Username};

use crate::ledger::LedgerError;
use crate::posting::AccountRecord;
use crate::records::decode;

/// The first byte of every compact record.
pub(crate) const TAG: u8 = 0x01;

/// The length of a compact history entry.
const ENTRY_LEN: usize = 1 + 16 + 1 + 8 + 8 + 8;

/// What a transaction id's key holds: a pointer to the entry (compact), or the entry itself
/// (JSON, in stores written before the compact forms).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum TxidValue {
    /// The entry's position in its account's history.
    At(u64),
    /// The entry as an older store kept it.
    Entry(HistoryEntry),
}

fn corrupt(what: &str) -> LedgerError {
    LedgerError::Storage(format!("corrupt record: {what}"))
}

/// Splits `N` bytes off the front of `bytes`.
fn take<const N: usize>(bytes: &mut &[u8], what: &str) -> Result<[u8; N], LedgerError> {
    let (head, rest) = bytes
        .split_first_chunk::<N>()
        .ok_or_else(|| corrupt(what))?;
    *bytes = rest;
    Ok(*head)
}

fn take_u64(bytes: &mut &[u8], what: &str) -> Result<u64, LedgerError> {
    take::<8>(bytes, what).map(u64::from_be_bytes)
}

/// An account's state, compact.
pub(crate) fn account_to_bytes(record: &AccountRecord) -> Vec<u8> {
    let name = record.username.as_str().as_bytes();
    let mut out = Vec::with_capacity(17 + name.len());
    out.push(TAG);
    out.extend_from_slice(&record.balance.0.to_be_bytes());
    out.extend_from_slice(&record.tx_count.to_be_bytes());
    out.extend_from_slice(name);
    out
}

/// An account's state from either form.
pub(crate) fn account_from_bytes(bytes: &[u8]) -> Result<AccountRecord, LedgerError> {
    let Some((&TAG, mut rest)) = bytes.split_first() else {
        return decode(bytes);
    };
    let balance = Cents(take_u64(&mut rest, "account balance")?);
    let tx_count = take_u64(&mut rest, "account count")?;
    let username = core::str::from_utf8(rest)
        .ok()
        .and_then(Username::new)
        .ok_or_else(|| corrupt("account owner"))?;
    Ok(AccountRecord {
        username,
        balance,
        tx_count,
    })
}

/// Only the balance of a stored account (the form read on every balance request).
pub(crate) fn balance_from_bytes(bytes: &[u8]) -> Result<Cents, LedgerError> {
    match bytes.split_first() {
        Some((&TAG, mut rest)) => take_u64(&mut rest, "account balance").map(Cents),
        _ => decode::<AccountRecord>(bytes).map(|record| record.balance),
    }
}

fn kind_byte(kind: TxKind) -> u8 {
    match kind {
        TxKind::Open => 0,
        TxKind::Deposit => 1,
        TxKind::Withdraw => 2,
    }
}

/// A history entry, compact ([`ENTRY_LEN`] bytes).
pub(crate) fn entry_to_bytes(entry: &HistoryEntry) -> Vec<u8> {
    let mut out = Vec::with_capacity(ENTRY_LEN);
    out.push(TAG);
    out.extend_from_slice(entry.txid.as_bytes());
    out.push(kind_byte(entry.kind));
    out.extend_from_slice(&entry.amount_cents.0.to_be_bytes());
    out.extend_from_slice(&entry.balance_cents.0.to_be_bytes());
    out.extend_from_slice(&entry.time_ms.to_be_bytes());
    out
}

/// A history entry from either form.
pub(crate) fn entry_from_bytes(bytes: &[u8]) -> Result<HistoryEntry, LedgerError> {
    let Some((&TAG, mut rest)) = bytes.split_first() else {
        return decode(bytes);
    };
    if bytes.len() != ENTRY_LEN {
        return Err(corrupt("history entry length"));
    }
    let txid = TxId::from_bytes(take::<16>(&mut rest, "history txid")?);
    let kind = match take::<1>(&mut rest, "history kind")? {
        [0] => TxKind::Open,
        [1] => TxKind::Deposit,
        [2] => TxKind::Withdraw,
        _ => return Err(corrupt("history kind")),
    };
    Ok(HistoryEntry {
        txid,
        kind,
        amount_cents: Cents(take_u64(&mut rest, "history amount")?),
        balance_cents: Cents(take_u64(&mut rest, "history balance")?),
        time_ms: take_u64(&mut rest, "history time")?,
    })
}

/// A transaction id's pointer to its entry at position `seq`.
pub(crate) fn txid_to_bytes(seq: u64) -> [u8; 9] {
    let mut out = [0; 9];
    out[0] = TAG;
    out[1..].copy_from_slice(&seq.to_be_bytes());
    out
}

/// What a transaction id's key holds, from either form.
pub(crate) fn txid_from_bytes(bytes: &[u8]) -> Result<TxidValue, LedgerError> {
    match bytes.split_first() {
        Some((&TAG, rest)) => {
            let seq: [u8; 8] = rest.try_into().map_err(|_| corrupt("txid pointer"))?;
            Ok(TxidValue::At(u64::from_be_bytes(seq)))
        }
        _ => decode(bytes).map(TxidValue::Entry),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(kind: TxKind) -> HistoryEntry {
        HistoryEntry {
            txid: TxId::from_bytes([0xA5; 16]),
            kind,
            amount_cents: Cents(u64::MAX),
            balance_cents: Cents(12_345),
            time_ms: 1_700_000_000_123,
        }
    }

    #[test]
    fn entries_round_trip_in_every_kind_and_are_smaller_than_json() {
        for kind in [TxKind::Open, TxKind::Deposit, TxKind::Withdraw] {
            let bytes = entry_to_bytes(&entry(kind));
            assert_eq!(bytes.len(), ENTRY_LEN);
            assert_eq!(entry_from_bytes(&bytes).unwrap(), entry(kind));
            assert!(bytes.len() * 3 < serde_json::to_vec(&entry(kind)).unwrap().len());
        }
    }

    #[test]
    fn accounts_round_trip_and_the_balance_reads_alone() {
        let record = AccountRecord {
            username: Username::new("alice_01").unwrap(),
            balance: Cents(987_654_321),
            tx_count: 42,
        };
        let bytes = account_to_bytes(&record);
        assert_eq!(bytes.len(), 17 + "alice_01".len());
        let back = account_from_bytes(&bytes).unwrap();
        assert_eq!(
            (back.username.as_str(), back.balance, back.tx_count),
            ("alice_01", Cents(987_654_321), 42)
        );
        assert_eq!(balance_from_bytes(&bytes).unwrap(), Cents(987_654_321));
    }

    #[test]
    fn json_of_older_stores_still_reads() {
        let json = br#"{"username":"bob","balance":12410,"tx_count":3}"#;
        let record = account_from_bytes(json).unwrap();
        assert_eq!(
            (record.username.as_str(), record.balance),
            ("bob", Cents(12_410))
        );
        assert_eq!(balance_from_bytes(json).unwrap(), Cents(12_410));
        let old = serde_json::to_vec(&entry(TxKind::Deposit)).unwrap();
        assert_eq!(entry_from_bytes(&old).unwrap(), entry(TxKind::Deposit));
        assert_eq!(
            txid_from_bytes(&old).unwrap(),
            TxidValue::Entry(entry(TxKind::Deposit))
        );
        assert_eq!(
            txid_from_bytes(&txid_to_bytes(7)).unwrap(),
            TxidValue::At(7)
        );
    }

    #[test]
    fn damaged_records_are_refused_not_misread() {
        let good = entry_to_bytes(&entry(TxKind::Withdraw));
        for cut in 1..good.len() {
            assert!(entry_from_bytes(&good[..cut]).is_err(), "cut to {cut}");
        }
        let mut longer = good.clone();
        longer.push(0);
        assert!(entry_from_bytes(&longer).is_err());
        let mut kind = good;
        kind[17] = 3;
        assert!(entry_from_bytes(&kind).is_err());
        assert!(account_from_bytes(&[TAG, 0, 0]).is_err());
        let mut no_owner = vec![TAG];
        no_owner.extend_from_slice(&[0; 16]);
        assert!(account_from_bytes(&no_owner).is_err());
        assert!(txid_from_bytes(&[TAG, 1, 2]).is_err());
        assert!(txid_from_bytes(&[]).is_err());
        assert!(balance_from_bytes(&[TAG]).is_err());
    }
}

//! The bank console's message fields: what an operator's console is shown (totals, live
//! sessions, audit lines, the audit chain's status, terminals). Plain data, no secrets but the
//! one-time key of a terminal the operator just enrolled.

use core::fmt;
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

use crate::{Cents, Psk, TerminalId};

/// Minutes in the console's transactions-per-minute chart (the last hour).
pub const CHART_MINUTES: usize = 60;
/// Most live sessions listed in one overview (the newest); `sessions_total` counts them all.
pub const MAX_LISTED_SESSIONS: usize = 20;
/// Most audit lines in one answer (the newest).
pub const MAX_AUDIT_LINES: usize = 12;
/// Most terminals listed in one answer (the newest); `total` counts them all.
pub const MAX_LISTED_TERMINALS: usize = 25;
/// Longest text field (action, user, detail…) in an audit line, in bytes.
pub const MAX_AUDIT_TEXT: usize = 120;

/// A terminal's label: 1 to 64 characters, no control characters, not blank.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct TerminalName(String);

impl TerminalName {
    /// Longest label, in characters.
    pub const MAX_CHARS: usize = 64;

    /// Validates and wraps a label; `None` if it breaks the rule above.
    pub fn new(text: impl Into<String>) -> Option<Self> {
        let text = text.into();
        let ok = (1..=Self::MAX_CHARS).contains(&text.chars().count())
            && !text.trim().is_empty()
            && !text.chars().any(char::is_control);
        ok.then_some(Self(text))
    }

    /// The label.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TerminalName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for TerminalName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::new(String::deserialize(d)?).ok_or_else(|| de::Error::custom("invalid TerminalName"))
    }
}

/// What a terminal may do: an ATM (customers' requests) or an operator's console (operator
/// requests only). The bank keeps the role with the terminal; it is never sent by the client.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TerminalRole {
    /// A customer ATM (browser or native).
    #[default]
    Atm,
    /// A bank console.
    Console,
}

/// A terminal's key shown once to the operator who enrolled it (64 lowercase hex on the wire).
/// No `Debug`; zeroized on drop (it wraps a [`Psk`]).
#[derive(Clone, PartialEq, Eq)]
pub struct NewTerminalKey(pub Psk);

impl Serialize for NewTerminalKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.to_hex())
    }
}

impl<'de> Deserialize<'de> for NewTerminalKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = zeroize::Zeroizing::new(String::deserialize(d)?);
        // Exactly 64 lowercase hex characters, no surrounding whitespace.
        if text.len() != 64 || text.trim() != text.as_str() {
            return Err(de::Error::custom("invalid key"));
        }
        Psk::from_hex(&text)
            .map(Self)
            .ok_or_else(|| de::Error::custom("invalid key"))
    }
}

/// A sum of balances in cents, which may exceed u64. On the wire a JSON string of decimal
/// digits without leading zeros (`"0"`, `"12000"`): JSON numbers past 2^64 are not portable,
/// and serde's tagged enums cannot carry u128 numbers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct TotalCents(pub u128);

impl Serialize for TotalCents {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.to_string())
    }
}

impl<'de> Deserialize<'de> for TotalCents {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let canonical = !text.is_empty()
            && text.bytes().all(|b| b.is_ascii_digit())
            && (text == "0" || !text.starts_with('0'));
        canonical
            .then(|| text.parse().ok())
            .flatten()
            .map(Self)
            .ok_or_else(|| de::Error::custom("invalid TotalCents"))
    }
}

/// An optional field is absent when empty, never `null` (PROTOCOL.md §3.3): present values
/// parse as themselves and `null` is refused.
pub(crate) fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// One open session, as the console lists it (never a key).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiveSession {
    /// The bank's connection id.
    pub conn: u64,
    /// The terminal it came from.
    pub terminal: TerminalId,
    /// That terminal's role.
    pub role: TerminalRole,
    /// Who is logged in (a user, or an operator on a console), if anyone.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub user: Option<String>,
    /// When the handshake completed (Unix ms).
    pub since_ms: u64,
    /// The bank node that holds the session (1 to 64 of `[A-Za-z0-9._-]`; a bank of one node
    /// names itself too). `conn` is unique per node.
    pub node: String,
}

/// The audit chain as the bank can check it without the auditor's key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case", deny_unknown_fields)]
pub enum ChainStatus {
    /// Every entry is in place and chained to the one before, up to the head.
    Linked {
        /// How many entries were checked (all of them).
        entries: u64,
    },
    /// The first entry that is missing, moved or not chained, and why.
    Broken {
        /// Its position.
        entry: u64,
        /// What is wrong, in a few words.
        problem: String,
    },
}

/// One audit entry, decrypted by the bank for the console.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditLine {
    /// Its position in the log.
    pub seq: u64,
    /// When (Unix ms).
    pub time_ms: u64,
    /// What (`deposit`, `login_failed`, `terminal_revoked`…).
    pub action: String,
    /// The user or operator concerned, if any.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub user: Option<String>,
    /// The account concerned, if any.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub account: Option<String>,
    /// The amount moved, if any.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub amount_cents: Option<Cents>,
    /// The terminal, if any.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub terminal: Option<String>,
    /// A short non-secret detail, if any.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub detail: Option<String>,
}

/// One terminal, as the console lists it (never its key).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TerminalInfo {
    /// Its id.
    pub id: TerminalId,
    /// Its label.
    pub name: String,
    /// ATM or console.
    pub role: TerminalRole,
    /// Whether it is revoked.
    pub revoked: bool,
    /// When it was added (Unix ms).
    pub created_ms: u64,
    /// Its largest deposit (an opening balance counts as one); absent: no ceiling.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_deposit_cents: Option<Cents>,
    /// The most it may take in deposits per UTC day; absent: no ceiling.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_deposit_per_day_cents: Option<Cents>,
    /// What it has taken in deposits so far this UTC day (counted only under a per-day
    /// ceiling; absent without one).
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub deposited_today_cents: Option<Cents>,
}

/// The bank at a glance: the console's `overview` answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Overview {
    /// The bank's clock when it answered (Unix ms).
    pub now_ms: u64,
    /// How many accounts exist.
    pub accounts: u64,
    /// The sum of every balance, in cents (may exceed u64 in a huge bank).
    pub deposits_cents: TotalCents,
    /// Transactions (openings, deposits, withdrawals) since 00:00 UTC today.
    pub transactions_today: u64,
    /// Transactions per minute over the last hour, oldest first, the current minute last
    /// ([`CHART_MINUTES`] numbers).
    pub per_minute: Vec<u32>,
    /// How many sessions are open.
    pub sessions_total: u64,
    /// The newest open sessions (at most [`MAX_LISTED_SESSIONS`]).
    pub sessions: Vec<LiveSession>,
    /// The audit chain's links, as checked at most a few seconds ago (the reference bank
    /// checks at most every 10 s: the check hashes the whole log).
    pub chain: ChainStatus,
    /// How many audit entries the latest checkpoint vouches for (absent if the bank keeps
    /// none).
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub checkpoint_entries: Option<u64>,
    /// When that checkpoint was written (Unix ms; absent with it).
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub checkpoint_ms: Option<u64>,
}

/// Cuts `text` to at most [`MAX_AUDIT_TEXT`] bytes on a character boundary.
pub fn clip(text: &str) -> String {
    let mut end = text.len().min(MAX_AUDIT_TEXT);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_keys_and_clipping_follow_their_rules() {
        assert!(TerminalName::new("lobby 2").is_some());
        assert!(TerminalName::new(" ").is_none());
        assert!(TerminalName::new("a\nb").is_none());
        assert!(TerminalName::new("x".repeat(65)).is_none());
        let key = NewTerminalKey(Psk::from_bytes([0xab; 32]));
        let json = serde_json::to_string(&key).unwrap();
        assert_eq!(json, format!("\"{}\"", "ab".repeat(32)));
        assert!(serde_json::from_str::<NewTerminalKey>(&json).unwrap() == key);
        assert!(serde_json::from_str::<NewTerminalKey>(&json.to_uppercase()).is_err());
        assert_eq!(clip(&"é".repeat(100)).len(), 120);
        assert_eq!(clip("short"), "short");
        let big = TotalCents(u128::from(u64::MAX) * 3);
        let json = serde_json::to_string(&big).unwrap();
        assert_eq!(json, "\"55340232221128654845\"");
        assert_eq!(serde_json::from_str::<TotalCents>(&json).unwrap(), big);
        let line: AuditLine =
            serde_json::from_str(r#"{"seq":1,"time_ms":2,"action":"balance"}"#).unwrap();
        assert_eq!((line.user, line.amount_cents), (None, None));
        assert!(serde_json::from_str::<AuditLine>(
            r#"{"seq":1,"time_ms":2,"action":"balance","user":null}"#
        )
        .is_err());
        for bad in ["\"\"", "\"01\"", "\"-1\"", "\"1.0\"", "12"] {
            assert!(serde_json::from_str::<TotalCents>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_terminals_ceilings_are_optional_fields() {
        // As a bank without ceilings (or a terminal without any) sends it.
        let bare = r#"{"id":"t-1","name":"lobby","role":"atm","revoked":false,"created_ms":5}"#;
        let info: TerminalInfo = serde_json::from_str(bare).unwrap();
        assert_eq!(
            (
                info.max_deposit_cents,
                info.max_deposit_per_day_cents,
                info.deposited_today_cents
            ),
            (None, None, None)
        );
        assert_eq!(
            serde_json::to_string(&info).unwrap(),
            bare,
            "absent, never null"
        );
        let full = TerminalInfo {
            max_deposit_cents: Some(Cents(200_000)),
            max_deposit_per_day_cents: Some(Cents(1_000_000)),
            deposited_today_cents: Some(Cents(12_345)),
            ..info
        };
        let json = serde_json::to_string(&full).unwrap();
        assert!(
            json.contains(r#""max_deposit_cents":200000"#)
                && json.contains(r#""max_deposit_per_day_cents":1000000"#)
                && json.contains(r#""deposited_today_cents":12345"#),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<TerminalInfo>(&json).unwrap(), full);
        let null = bare.replace('}', r#","max_deposit_cents":null}"#);
        assert!(serde_json::from_str::<TerminalInfo>(&null).is_err());
    }
}

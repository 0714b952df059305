//! Typed application messages: what an ATM may ask inside the channel and what the bank answers.
//!
//! Field contents are validated while parsing (parse, don't validate): a request that
//! deserializes is well-formed, and a malformed one is a record failure like any other.
//! Business rules (amount limits, funds, taken names) are the bank's, answered with an
//! [`ErrorCode`].

use core::fmt;
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::card::{CardPublic, CardSignature};
use crate::console::{AuditLine, NewTerminalKey, Overview, TerminalInfo, TerminalName};
use crate::{hexfmt, money::Cents, Rng, TerminalId};

/// Most history entries a bank returns for one request.
pub const MAX_HISTORY: u32 = 25;

macro_rules! validated_string {
    ($(#[$doc:meta])* $name:ident, $check:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Validates and wraps the text; `None` if it breaks the rule above.
            pub fn new(text: impl Into<String>) -> Option<Self> {
                let text = text.into();
                let check: fn(&str) -> bool = $check;
                check(&text).then_some(Self(text))
            }

            /// The text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                Self::new(String::deserialize(d)?)
                    .ok_or_else(|| de::Error::custom(concat!("invalid ", stringify!($name))))
            }
        }
    };
}

validated_string!(
    /// A user or BIBIFI account name: 1 to 250 characters of `[_\-.0-9a-z]` (`.` and `..`
    /// included, as in the BIBIFI spec).
    Username,
    |s| {
        (1..=Username::MAX_LEN).contains(&s.len())
            && s.bytes().all(|b| matches!(b, b'_' | b'-' | b'.' | b'0'..=b'9' | b'a'..=b'z'))
    }
);

validated_string!(
    /// A person's name for display: 1 to 100 characters, no control characters, not blank.
    FullName,
    |s| {
        (1..=FullName::MAX_CHARS).contains(&s.chars().count())
            && !s.trim().is_empty()
            && !s.chars().any(char::is_control)
    }
);

validated_string!(
    /// A bank account number, assigned by the bank: 1 to 32 characters of `[0-9A-Z-]`.
    AccountNumber,
    |s| {
        (1..=AccountNumber::MAX_LEN).contains(&s.len())
            && s.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_uppercase() || b == b'-')
    }
);

impl Username {
    /// Longest user or account name, in bytes (ASCII, so also characters).
    pub const MAX_LEN: usize = 250;
}

impl FullName {
    /// Longest full name, in characters (Unicode scalar values; up to 4 bytes each in UTF-8).
    pub const MAX_CHARS: usize = 100;
}

impl AccountNumber {
    /// Longest account number, in bytes (ASCII).
    pub const MAX_LEN: usize = 32;
}

/// A password in transit: 1 to 1024 bytes. No `Debug`; zeroized on drop.
#[derive(Clone)]
pub struct Password(Zeroizing<String>);

impl Password {
    /// Longest password accepted on the wire.
    pub const MAX_LEN: usize = 1024;

    /// Wraps a password; `None` when empty or longer than [`Self::MAX_LEN`] bytes.
    pub fn new(text: impl Into<String>) -> Option<Self> {
        let text = Zeroizing::new(text.into());
        (1..=Self::MAX_LEN)
            .contains(&text.len())
            .then_some(Self(text))
    }

    /// The password, for hashing.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl PartialEq for Password {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}

impl Serialize for Password {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Password {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::new(Zeroizing::new(String::deserialize(d)?).as_str())
            .ok_or_else(|| de::Error::custom("invalid password"))
    }
}

/// The secret on a BIBIFI card file: 32 random bytes, 64 lowercase hex characters on the wire.
/// No `Debug`; zeroized on drop.
#[derive(Clone)]
pub struct CardSecret(Zeroizing<[u8; 32]>);

impl CardSecret {
    /// A fresh random card secret (the bank issues these).
    pub fn random(rng: &mut impl Rng) -> Self {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(bytes.as_mut());
        Self(bytes)
    }

    /// Parses 64 lowercase hex characters.
    pub fn from_hex(text: &str) -> Option<Self> {
        hexfmt::decode_array::<32>(text).map(|b| Self(Zeroizing::new(b)))
    }

    /// The secret as 64 lowercase hex characters.
    pub fn to_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(hexfmt::encode(self.0.as_ref()))
    }

    /// The raw bytes, for hashing.
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }
}

impl PartialEq for CardSecret {
    fn eq(&self, other: &Self) -> bool {
        self.0[..].ct_eq(&other.0[..]).into()
    }
}

impl Serialize for CardSecret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for CardSecret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = Zeroizing::new(String::deserialize(d)?);
        Self::from_hex(&text).ok_or_else(|| de::Error::custom("invalid card"))
    }
}

/// A client-chosen transaction id (16 random bytes, 32 lowercase hex characters). The bank
/// applies a given id at most once per account and answers a retry with the first result.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TxId([u8; 16]);

impl TxId {
    /// A fresh random id.
    pub fn random(rng: &mut impl Rng) -> Self {
        let mut bytes = [0u8; 16];
        rng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// Wraps 16 bytes.
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    /// The raw bytes (a storage key).
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// Parses 32 lowercase hex characters.
    pub fn from_hex(text: &str) -> Option<Self> {
        hexfmt::decode_array::<16>(text).map(Self)
    }
}

impl fmt::Display for TxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hexfmt::encode(&self.0))
    }
}

impl fmt::Debug for TxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TxId({self})")
    }
}

impl Serialize for TxId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut text = [0u8; 32];
        hexfmt::encode_to_slice(&self.0, &mut text);
        s.serialize_str(core::str::from_utf8(&text).expect("hex digits are ASCII"))
    }
}

impl<'de> Deserialize<'de> for TxId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        /// Reads the id straight from the parser's text: no `String` in between.
        struct Hex;
        impl de::Visitor<'_> for Hex {
            type Value = TxId;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<TxId, E> {
                TxId::from_hex(text).ok_or_else(|| E::custom("invalid txid"))
            }
            fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> Result<TxId, E> {
                let text = core::str::from_utf8(bytes)
                    .map_err(|_| E::invalid_value(de::Unexpected::Bytes(bytes), &self))?;
                self.visit_str(text)
            }
        }
        d.deserialize_string(Hex)
    }
}

/// What an ATM asks, client to bank. A bank reply can never parse as one of these.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Create a user with a password and an empty account; logs the session in.
    Register {
        /// The new user's name.
        username: Username,
        /// Name shown on screen.
        full_name: FullName,
        /// The password (the bank stores only an Argon2id hash).
        password: Password,
    },
    /// Log in with a password.
    Login {
        /// Who.
        username: Username,
        /// Their password.
        password: Password,
    },
    /// BIBIFI `-n`: create a card account with an initial balance. The ATM makes the card
    /// secret (from its CSPRNG) and writes it to the card file only after the bank's answer; the
    /// bank stores only a hash, and a retry with the same txid and card gets the same answer.
    OpenCardAccount {
        /// The BIBIFI account name.
        username: Username,
        /// The initial balance.
        initial_cents: Cents,
        /// Makes a retry idempotent.
        txid: TxId,
        /// The new card's secret.
        card: CardSecret,
    },
    /// Log in with a card (the BIBIFI `atm`).
    CardLogin {
        /// The BIBIFI account name.
        username: Username,
        /// The secret from the card file.
        card: CardSecret,
    },
    /// The logged-in account's balance. (Variants without fields are written `{}` so that
    /// unknown fields are refused for them too.)
    Balance {},
    /// Add money to the logged-in account.
    Deposit {
        /// Makes a retry idempotent.
        txid: TxId,
        /// How much, > 0.
        amount_cents: Cents,
    },
    /// Take money from the logged-in account; never below zero.
    Withdraw {
        /// Makes a retry idempotent.
        txid: TxId,
        /// How much, > 0.
        amount_cents: Cents,
    },
    /// The logged-in account's last transactions, newest first.
    History {
        /// How many, at most [`MAX_HISTORY`].
        limit: u32,
    },
    /// End the session.
    Logout {},
    /// Console: log in as an operator (accepted only from a console terminal).
    OperatorLogin {
        /// The operator's name.
        username: Username,
        /// Their password.
        password: Password,
    },
    /// Console: totals, the last hour's transactions per minute, live sessions, chain status.
    ConsoleOverview {},
    /// Console: the newest audit entries.
    ConsoleAudit {},
    /// Console: the terminals (never their keys).
    ConsoleTerminals {},
    /// Console: enroll a new ATM terminal; its key is shown once, in the answer.
    AddTerminal {
        /// Its label.
        name: TerminalName,
        /// Its largest deposit (an opening balance counts as a deposit), above zero; absent:
        /// the bank's default.
        #[serde(
            default,
            deserialize_with = "crate::console::present",
            skip_serializing_if = "Option::is_none"
        )]
        max_deposit_cents: Option<Cents>,
        /// The most it may take in deposits per UTC day, above zero; absent: the bank's
        /// default.
        #[serde(
            default,
            deserialize_with = "crate::console::present",
            skip_serializing_if = "Option::is_none"
        )]
        max_deposit_per_day_cents: Option<Cents>,
    },
    /// Console: revoke a terminal; its next handshake fails and its sessions end.
    RevokeTerminal {
        /// Which.
        terminal: TerminalId,
    },
    /// Enrollment: the only request of a session opened with a one-time code; the bank
    /// creates the terminal and answers [`Response::Enrolled`] (anywhere else: `not_allowed`).
    Enroll {},
    /// The logged-in customer (from an ATM) or operator (from a console) replaces their
    /// password; `old` must be the current one (a wrong one counts as a failed login). The old
    /// password then logs nobody in, and other sessions logged in with it end.
    ChangePassword {
        /// The current password.
        old: Password,
        /// The new one.
        new: Password,
    },
    /// BIBIFI `-n` with a signed card (§17): like [`Request::OpenCardAccount`], but the ATM
    /// sends only the new card's public key; its seed never leaves the ATM. The bank stores the
    /// key; a retry with the same txid and key gets the same answer.
    OpenSignedCardAccount {
        /// The BIBIFI account name.
        username: Username,
        /// The initial balance.
        initial_cents: Cents,
        /// Makes a retry idempotent.
        txid: TxId,
        /// The new card's public key.
        card_public: CardPublic,
    },
    /// Log in with a signed card (§17): `signature` is the card's Ed25519 signature of
    /// `"atm-psk-v2 card login" || channel binding || len(username) || username`, so it logs
    /// in on this session only. A wrong one is a failed login, like a wrong card.
    CardLoginSigned {
        /// The BIBIFI account name.
        username: Username,
        /// The card's signature bound to this session.
        signature: CardSignature,
    },
    /// The logged-in signed-card customer replaces their card (§17): `signature` is the
    /// current card's signature of `"atm-psk-v2 card reissue" || channel binding ||
    /// len(username) || username || new_public` (a wrong one counts as a failed login). The
    /// old card then logs nobody in, and other sessions logged in with it end.
    ReissueCardSigned {
        /// The current card's signature bound to this session and to `new_public`.
        signature: CardSignature,
        /// The new card's public key.
        new_public: CardPublic,
    },
    /// The logged-in customer of a legacy (secret) card replaces it with a signed card (§17):
    /// `old` must be the current card's secret (a wrong one counts as a failed login). The
    /// bank then keeps only `new_public`; the old card logs nobody in, and other sessions
    /// logged in with it end.
    UpgradeCard {
        /// The current card's secret.
        old: CardSecret,
        /// The new card's public key.
        new_public: CardPublic,
    },
    /// The logged-in card customer replaces their card: `old` must be the current card's
    /// secret (a wrong one counts as a failed login), `new` a fresh one the terminal drew and
    /// keeps (it writes the new card file). The old card then logs nobody in, and other
    /// sessions logged in with it end.
    ReissueCard {
        /// The current card's secret.
        old: CardSecret,
        /// The new card's secret.
        new: CardSecret,
    },
}

impl Request {
    /// The message type as it appears on the wire (`"deposit"`), for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Register { .. } => "register",
            Self::Login { .. } => "login",
            Self::OpenCardAccount { .. } => "open_card_account",
            Self::CardLogin { .. } => "card_login",
            Self::Balance {} => "balance",
            Self::Deposit { .. } => "deposit",
            Self::Withdraw { .. } => "withdraw",
            Self::History { .. } => "history",
            Self::Logout {} => "logout",
            Self::OperatorLogin { .. } => "operator_login",
            Self::ConsoleOverview {} => "console_overview",
            Self::ConsoleAudit {} => "console_audit",
            Self::ConsoleTerminals {} => "console_terminals",
            Self::AddTerminal { .. } => "add_terminal",
            Self::RevokeTerminal { .. } => "revoke_terminal",
            Self::Enroll {} => "enroll",
            Self::ChangePassword { .. } => "change_password",
            Self::ReissueCard { .. } => "reissue_card",
            Self::OpenSignedCardAccount { .. } => "open_signed_card_account",
            Self::CardLoginSigned { .. } => "card_login_signed",
            Self::ReissueCardSigned { .. } => "reissue_card_signed",
            Self::UpgradeCard { .. } => "upgrade_card",
        }
    }

    /// Whether a client that lost this request's answer (the connection broke after it was
    /// sent) may send it again, unchanged, on a new connection once logged in again: the
    /// requests that carry a txid (the bank applies each txid once per account and answers a
    /// resend with the first result, §9.5) and those that only read. Never a login, a
    /// registration (no txid: a resend would find its own name taken), a logout or a change of
    /// terminals.
    pub fn may_resend(&self) -> bool {
        match self {
            Self::OpenCardAccount { .. }
            | Self::OpenSignedCardAccount { .. }
            | Self::Deposit { .. }
            | Self::Withdraw { .. }
            | Self::Balance {}
            | Self::History { .. }
            | Self::ConsoleOverview {}
            | Self::ConsoleAudit {}
            | Self::ConsoleTerminals {} => true,
            Self::Register { .. }
            | Self::Login { .. }
            | Self::CardLogin { .. }
            | Self::CardLoginSigned { .. }
            | Self::Logout {}
            | Self::OperatorLogin { .. }
            | Self::AddTerminal { .. }
            | Self::RevokeTerminal { .. }
            | Self::Enroll {}
            | Self::ChangePassword { .. }
            | Self::ReissueCard { .. }
            | Self::ReissueCardSigned { .. }
            | Self::UpgradeCard { .. } => false,
        }
    }

    /// Whether this request carries a credential: a password (`register`, `login`,
    /// `operator_login`, `change_password`), a card secret (`card_login`,
    /// `open_card_account`, `reissue_card`, `upgrade_card`) or a card's signature or key
    /// (`card_login_signed`, `open_signed_card_account`, `reissue_card_signed`). Its record is padded to
    /// [`crate::CREDENTIAL_REQUEST_LEN`], and the bank's answer to it, whatever it is, to
    /// [`crate::CREDENTIAL_REPLY_LEN`] (PROTOCOL.md §8.6): their lengths tell nothing of the
    /// password's length nor of whether it was right.
    pub fn carries_credential(&self) -> bool {
        match self {
            Self::Register { .. }
            | Self::Login { .. }
            | Self::CardLogin { .. }
            | Self::OperatorLogin { .. }
            | Self::OpenCardAccount { .. }
            | Self::ChangePassword { .. }
            | Self::ReissueCard { .. }
            | Self::CardLoginSigned { .. }
            | Self::OpenSignedCardAccount { .. }
            | Self::ReissueCardSigned { .. }
            | Self::UpgradeCard { .. } => true,
            Self::Balance {}
            | Self::Deposit { .. }
            | Self::Withdraw { .. }
            | Self::History { .. }
            | Self::Logout {}
            | Self::ConsoleOverview {}
            | Self::ConsoleAudit {}
            | Self::ConsoleTerminals {}
            | Self::AddTerminal { .. }
            | Self::RevokeTerminal { .. }
            | Self::Enroll {} => false,
        }
    }

    /// Whether this is a console (operator) request rather than an ATM's.
    pub fn is_console(&self) -> bool {
        matches!(
            self,
            Self::OperatorLogin { .. }
                | Self::ConsoleOverview {}
                | Self::ConsoleAudit {}
                | Self::ConsoleTerminals {}
                | Self::AddTerminal { .. }
                | Self::RevokeTerminal { .. }
        )
    }

    /// Whether both an ATM and a console may make this request (for their own logged-in
    /// customer or operator): `logout` and `change_password`.
    pub fn is_for_both(&self) -> bool {
        matches!(self, Self::Logout {} | Self::ChangePassword { .. })
    }
}

/// Names the variant and its public fields; never prints a password or card.
impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct(self.kind());
        match self {
            Self::Register { username, .. }
            | Self::Login { username, .. }
            | Self::OperatorLogin { username, .. } => d.field("username", username),
            Self::CardLogin { username, .. } | Self::CardLoginSigned { username, .. } => {
                d.field("username", username)
            }
            Self::OpenSignedCardAccount {
                username,
                initial_cents,
                txid,
                card_public,
            } => d
                .field("username", username)
                .field("initial_cents", initial_cents)
                .field("txid", txid)
                .field("card_public", card_public),
            Self::ReissueCardSigned { new_public, .. } | Self::UpgradeCard { new_public, .. } => {
                d.field("new_public", new_public)
            }
            Self::OpenCardAccount {
                username,
                initial_cents,
                txid,
                ..
            } => d
                .field("username", username)
                .field("initial_cents", initial_cents)
                .field("txid", txid),
            Self::Deposit { txid, amount_cents } | Self::Withdraw { txid, amount_cents } => {
                d.field("txid", txid).field("amount_cents", amount_cents)
            }
            Self::History { limit } => d.field("limit", limit),
            Self::AddTerminal {
                name,
                max_deposit_cents,
                max_deposit_per_day_cents,
            } => d
                .field("name", name)
                .field("max_deposit_cents", max_deposit_cents)
                .field("max_deposit_per_day_cents", max_deposit_per_day_cents),
            Self::RevokeTerminal { terminal } => d.field("terminal", terminal),
            Self::Balance {}
            | Self::Logout {}
            | Self::ConsoleOverview {}
            | Self::ConsoleAudit {}
            | Self::ConsoleTerminals {}
            | Self::Enroll {}
            | Self::ChangePassword { .. }
            | Self::ReissueCard { .. } => &mut d,
        };
        d.finish_non_exhaustive()
    }
}

/// What kind of transaction a history entry records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TxKind {
    /// The initial balance of a card account.
    Open,
    /// Money in.
    Deposit,
    /// Money out.
    Withdraw,
}

/// One line of a mini statement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryEntry {
    /// The transaction id the client chose.
    pub txid: TxId,
    /// Deposit, withdrawal or opening balance.
    pub kind: TxKind,
    /// The amount moved.
    pub amount_cents: Cents,
    /// The balance right after.
    pub balance_cents: Cents,
    /// When the bank committed it (Unix ms).
    pub time_ms: u64,
}

/// The closed set of refusals a bank may send. Each is deliberately coarse.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Well-formed but not acceptable here (e.g. a history limit of 0).
    BadRequest,
    /// Wrong username, password or card: one answer for all of them.
    AuthFailed,
    /// Too many failed logins; try later.
    Throttled,
    /// The request needs a logged-in session.
    NotLoggedIn,
    /// Login or register on a session that is already logged in.
    AlreadyLoggedIn,
    /// The username or account name is taken.
    NameTaken,
    /// The password is too short or too weak.
    WeakPassword,
    /// Zero, or above the bank's per-transaction maximum.
    AmountInvalid,
    /// The balance would exceed what the bank holds per account.
    LimitExceeded,
    /// The deposit (or an opening balance) would take the terminal over one of its deposit
    /// ceilings: per deposit, or per UTC day. The bank does not say which (its audit log does).
    DepositLimit,
    /// The withdrawal would take the balance below zero.
    InsufficientFunds,
    /// The same transaction id was already used for a different request.
    TxIdReused,
    /// The bank is overloaded; try again.
    Busy,
    /// Something failed inside the bank; nothing was changed.
    Internal,
    /// This terminal may not make that request (an operator request from an ATM, or an ATM
    /// request from a console), or the session is not logged in as an operator.
    NotAllowed,
}

impl ErrorCode {
    /// The code as it travels (`insufficient_funds`), for logs and audit entries.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::AuthFailed => "auth_failed",
            Self::Throttled => "throttled",
            Self::NotLoggedIn => "not_logged_in",
            Self::AlreadyLoggedIn => "already_logged_in",
            Self::NameTaken => "name_taken",
            Self::WeakPassword => "weak_password",
            Self::AmountInvalid => "amount_invalid",
            Self::LimitExceeded => "limit_exceeded",
            Self::DepositLimit => "deposit_limit",
            Self::InsufficientFunds => "insufficient_funds",
            Self::TxIdReused => "tx_id_reused",
            Self::Busy => "busy",
            Self::Internal => "internal",
            Self::NotAllowed => "not_allowed",
        }
    }

    /// Plain words for a person at an ATM.
    pub fn message(self) -> &'static str {
        match self {
            Self::BadRequest => "The bank could not accept that request.",
            Self::AuthFailed => "The username or password is not right.",
            Self::Throttled => "Too many failed attempts. Please wait a minute and try again.",
            Self::NotLoggedIn => "Please log in first.",
            Self::AlreadyLoggedIn => "You are already logged in.",
            Self::NameTaken => "That name is taken. Please choose another.",
            Self::WeakPassword => "That password is too weak. Please choose a longer one.",
            Self::AmountInvalid => "That amount is not allowed.",
            Self::LimitExceeded => "That would take the balance above the bank's limit.",
            Self::DepositLimit => "That deposit is over this ATM's limit.",
            Self::InsufficientFunds => "There is not enough money in the account.",
            Self::TxIdReused => "That transaction conflicts with an earlier one.",
            Self::Busy => "The bank is busy. Please try again.",
            Self::Internal => "Something went wrong at the bank. Nothing was changed.",
            Self::NotAllowed => "That is not allowed from this terminal.",
        }
    }
}

/// What the bank answers, bank to client. A client request can never parse as one of these.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Response {
    /// Logged in (after register, login or card login).
    Welcome {
        /// The user's name.
        username: Username,
        /// Name to greet them with.
        full_name: FullName,
        /// Their account number.
        account: AccountNumber,
        /// The current balance.
        balance_cents: Cents,
    },
    /// A card account was opened (or had been, for a retried txid with the same card); the
    /// ATM now writes the card file. The session is logged in to the new account.
    AccountOpened {
        /// The account number.
        account: AccountNumber,
        /// The opening balance.
        balance_cents: Cents,
    },
    /// The balance.
    Balance {
        /// The current balance.
        balance_cents: Cents,
    },
    /// A deposit was applied (or had been, for a retried transaction id).
    Deposited {
        /// The request's transaction id.
        txid: TxId,
        /// The amount.
        amount_cents: Cents,
        /// The balance right after it.
        balance_cents: Cents,
    },
    /// A withdrawal was applied (or had been, for a retried transaction id).
    Withdrawn {
        /// The request's transaction id.
        txid: TxId,
        /// The amount.
        amount_cents: Cents,
        /// The balance right after it.
        balance_cents: Cents,
    },
    /// The last transactions, newest first.
    History {
        /// The entries.
        entries: Vec<HistoryEntry>,
    },
    /// The session is logged out; the bank will close the connection.
    LoggedOut {},
    /// The request was refused and changed nothing.
    Error {
        /// Why, coarsely.
        code: ErrorCode,
    },
    /// Console: logged in as an operator.
    OperatorWelcome {
        /// The operator's name.
        username: Username,
    },
    /// Console: the bank at a glance (boxed: it is the largest answer by far).
    Overview(Box<Overview>),
    /// Console: the newest audit entries, newest first.
    AuditEntries {
        /// How many entries the log holds.
        total: u64,
        /// At most [`crate::console::MAX_AUDIT_LINES`] entries.
        entries: Vec<AuditLine>,
    },
    /// Console: terminals, newest first.
    Terminals {
        /// How many terminals exist.
        total: u64,
        /// At most [`crate::console::MAX_LISTED_TERMINALS`] of them.
        terminals: Vec<TerminalInfo>,
    },
    /// Console: a terminal was enrolled. Its key appears here once and nowhere else.
    TerminalAdded {
        /// Its id.
        terminal: TerminalId,
        /// Its label.
        name: TerminalName,
        /// Its pre-shared key.
        key: NewTerminalKey,
    },
    /// Console: the terminal is revoked (now, or it already was).
    TerminalRevoked {
        /// Which.
        terminal: TerminalId,
    },
    /// Enrollment: the terminal now exists under this id; its key is the one both ends derive
    /// from the enrollment session (it never travels).
    Enrolled {
        /// The new terminal's id.
        terminal: TerminalId,
    },
    /// The password was replaced.
    PasswordChanged {},
    /// The card was replaced: the new card's secret is the one the terminal sent.
    CardReissued {},
}

impl Response {
    /// The message type as it appears on the wire, for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Welcome { .. } => "welcome",
            Self::AccountOpened { .. } => "account_opened",
            Self::Balance { .. } => "balance",
            Self::Deposited { .. } => "deposited",
            Self::Withdrawn { .. } => "withdrawn",
            Self::History { .. } => "history",
            Self::LoggedOut {} => "logged_out",
            Self::Error { .. } => "error",
            Self::OperatorWelcome { .. } => "operator_welcome",
            Self::Overview { .. } => "overview",
            Self::AuditEntries { .. } => "audit_entries",
            Self::Terminals { .. } => "terminals",
            Self::TerminalAdded { .. } => "terminal_added",
            Self::TerminalRevoked { .. } => "terminal_revoked",
            Self::Enrolled { .. } => "enrolled",
            Self::PasswordChanged {} => "password_changed",
            Self::CardReissued {} => "card_reissued",
        }
    }
}

/// Names the variant and its public fields.
impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct(self.kind());
        match self {
            Self::Welcome {
                username,
                full_name,
                account,
                balance_cents,
            } => d
                .field("username", username)
                .field("full_name", full_name)
                .field("account", account)
                .field("balance_cents", balance_cents),
            Self::AccountOpened {
                account,
                balance_cents,
            } => d
                .field("account", account)
                .field("balance_cents", balance_cents),
            Self::Balance { balance_cents } => d.field("balance_cents", balance_cents),
            Self::Deposited {
                txid,
                amount_cents,
                balance_cents,
            }
            | Self::Withdrawn {
                txid,
                amount_cents,
                balance_cents,
            } => d
                .field("txid", txid)
                .field("amount_cents", amount_cents)
                .field("balance_cents", balance_cents),
            Self::History { entries } => d.field("entries", entries),
            Self::Error { code } => d.field("code", code),
            Self::OperatorWelcome { username } => d.field("username", username),
            Self::Overview(overview) => d
                .field("accounts", &overview.accounts)
                .field("transactions_today", &overview.transactions_today)
                .field("sessions_total", &overview.sessions_total)
                .field("chain", &overview.chain),
            Self::AuditEntries { total, entries } => {
                d.field("total", total).field("entries", &entries.len())
            }
            Self::Terminals { total, terminals } => {
                d.field("total", total).field("terminals", terminals)
            }
            // Never the key.
            Self::TerminalAdded { terminal, name, .. } => {
                d.field("terminal", terminal).field("name", name)
            }
            Self::TerminalRevoked { terminal } | Self::Enrolled { terminal } => {
                d.field("terminal", terminal)
            }
            Self::LoggedOut {} | Self::PasswordChanged {} | Self::CardReissued {} => &mut d,
        };
        d.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{console::TerminalName, TerminalId};
    use rand_core::OsRng;

    #[test]
    fn only_txid_carrying_and_read_only_requests_may_be_resent() {
        let user = || Username::new("bob").unwrap();
        let password = || Password::new("correct horse").unwrap();
        let txid = || TxId::random(&mut OsRng);
        let card = || CardSecret::random(&mut OsRng);
        let resend = [
            Request::OpenCardAccount {
                username: user(),
                initial_cents: Cents(1_000),
                txid: txid(),
                card: card(),
            },
            Request::Deposit {
                txid: txid(),
                amount_cents: Cents(1),
            },
            Request::Withdraw {
                txid: txid(),
                amount_cents: Cents(1),
            },
            Request::Balance {},
            Request::History { limit: 10 },
            Request::ConsoleOverview {},
            Request::ConsoleAudit {},
            Request::ConsoleTerminals {},
        ];
        let never = [
            Request::Register {
                username: user(),
                full_name: FullName::new("Bob").unwrap(),
                password: password(),
            },
            Request::Login {
                username: user(),
                password: password(),
            },
            Request::CardLogin {
                username: user(),
                card: card(),
            },
            Request::Logout {},
            Request::OperatorLogin {
                username: user(),
                password: password(),
            },
            Request::AddTerminal {
                name: TerminalName::new("front desk").unwrap(),
                max_deposit_cents: None,
                max_deposit_per_day_cents: None,
            },
            Request::RevokeTerminal {
                terminal: TerminalId::new("t-1").unwrap(),
            },
        ];
        for request in resend {
            assert!(request.may_resend(), "{}", request.kind());
        }
        for request in never {
            assert!(!request.may_resend(), "{}", request.kind());
        }
    }

    #[test]
    fn signed_card_requests_are_byte_exact_and_never_print_a_signature() {
        use crate::card::{CardKey, ChannelBinding};
        let key = CardKey::from_seed(&[7; 32]);
        let public = key.public();
        let signature = key.sign_login(
            &ChannelBinding::new([3; 32]),
            &Username::new("bob").unwrap(),
        );
        let login = Request::CardLoginSigned {
            username: Username::new("bob").unwrap(),
            signature: signature.clone(),
        };
        let json = serde_json::to_string(&login).unwrap();
        let sig_hex = hexfmt::encode(signature.as_bytes());
        assert_eq!(
            json,
            format!(r#"{{"type":"card_login_signed","username":"bob","signature":"{sig_hex}"}}"#)
        );
        assert!(serde_json::from_str::<Request>(&json).unwrap() == login);
        assert!(!format!("{login:?}").contains(&sig_hex[..16]));
        let open = Request::OpenSignedCardAccount {
            username: Username::new("bob").unwrap(),
            initial_cents: Cents(1_000),
            txid: TxId::from_bytes([1; 16]),
            card_public: public,
        };
        let json = serde_json::to_string(&open).unwrap();
        assert_eq!(
            json,
            format!(
                r#"{{"type":"open_signed_card_account","username":"bob","initial_cents":1000,"txid":"{}","card_public":"{}"}}"#,
                "01".repeat(16),
                public.to_hex()
            )
        );
        assert!(open.may_resend() && !login.may_resend());
        // A small-order key does not parse: the request is malformed.
        let weak = json.replace(&public.to_hex(), &format!("01{}", "00".repeat(31)));
        assert!(serde_json::from_str::<Request>(&weak).is_err());
        let reissue = Request::ReissueCardSigned {
            signature,
            new_public: public,
        };
        let json = serde_json::to_string(&reissue).unwrap();
        assert!(json.starts_with(r#"{"type":"reissue_card_signed","signature":""#));
        assert!(serde_json::from_str::<Request>(&json).unwrap() == reissue);
        assert!(!reissue.may_resend());
        let upgrade = Request::UpgradeCard {
            old: CardSecret::from_hex(&"ab".repeat(32)).unwrap(),
            new_public: public,
        };
        assert!(!format!("{upgrade:?}").contains("abab"));
        assert_eq!(upgrade.kind(), "upgrade_card");
    }

    #[test]
    fn add_terminal_ceilings_are_optional() {
        // A console that sends no ceilings (the bank applies its defaults).
        let bare = r#"{"type":"add_terminal","name":"lobby"}"#;
        let Request::AddTerminal {
            name,
            max_deposit_cents,
            max_deposit_per_day_cents,
        } = serde_json::from_str(bare).unwrap()
        else {
            panic!("not add_terminal");
        };
        assert_eq!(name.as_str(), "lobby");
        assert_eq!((max_deposit_cents, max_deposit_per_day_cents), (None, None));
        let with = Request::AddTerminal {
            name,
            max_deposit_cents: Some(Cents(5_000)),
            max_deposit_per_day_cents: Some(Cents(50_000)),
        };
        let json = serde_json::to_string(&with).unwrap();
        assert_eq!(
            json,
            r#"{"type":"add_terminal","name":"lobby","max_deposit_cents":5000,"max_deposit_per_day_cents":50000}"#
        );
        assert!(serde_json::from_str::<Request>(&json).unwrap() == with);
        let null = r#"{"type":"add_terminal","name":"lobby","max_deposit_cents":null}"#;
        assert!(serde_json::from_str::<Request>(null).is_err());
    }

    #[test]
    fn error_code_names_are_their_wire_form() {
        use ErrorCode::*;
        for code in [
            BadRequest,
            AuthFailed,
            Throttled,
            NotLoggedIn,
            AlreadyLoggedIn,
            NameTaken,
            WeakPassword,
            AmountInvalid,
            LimitExceeded,
            DepositLimit,
            InsufficientFunds,
            TxIdReused,
            Busy,
            Internal,
            NotAllowed,
        ] {
            let wire = serde_json::to_string(&code).unwrap();
            assert_eq!(wire, format!("\"{}\"", code.as_str()));
        }
    }
}

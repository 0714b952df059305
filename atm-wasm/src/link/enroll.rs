//! Terminal enrollment: reading the id, key and bank key from an enrollment link or typed
//! fields (the link format is [`protocol::link`]'s), taking them from an enrollment by code
//! ([`crate::link::enroll_code`]), and keeping them: the key as a non-extractable WebCrypto
//! key (`keystore`), moved there from the localStorage of older versions.

use protocol::auth_file::AuthFile;
use protocol::link::{self, LinkError};
use protocol::{BankPin, Psk, TerminalId};

/// This browser's terminal credentials. No `Debug`: it holds the key.
#[derive(Clone)]
pub struct Enrollment {
    /// The terminal id the bank knows this ATM by.
    pub terminal: TerminalId,
    /// The terminal's pre-shared key.
    pub psk: Psk,
    /// The bank's id and public key, pinned: only the bank holding its private key passes
    /// the handshake.
    pub bank: BankPin,
}

/// Which enrollment a browser keeps: one browser can be an ATM and a console.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    /// The web ATM's terminal.
    Atm,
    /// The bank console's terminal.
    Console,
}

impl Slot {
    /// Its name in the browser's key store.
    pub fn name(self) -> &'static str {
        match self {
            Self::Atm => "atm",
            Self::Console => "console",
        }
    }
}

/// Why enrollment text was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnrollError {
    /// The terminal id is missing or has characters a terminal id cannot have.
    BadTerminal,
    /// The key is missing or is not 64 hexadecimal characters.
    BadKey,
    /// The bank key is missing or is not `<bank id>:<64 lowercase hex>` of a usable key.
    BadBank,
    /// The link is not an enrollment link.
    NotALink,
}

impl EnrollError {
    /// Plain words for the page.
    pub fn message(self) -> &'static str {
        match self {
            Self::BadTerminal => "That terminal id is not valid. It looks like t-0123456789ab.",
            Self::BadKey => "That key is not valid. It is 64 characters, digits and a to f.",
            Self::BadBank => {
                "That bank key is not valid. It looks like 0123…:abcd… (the bank id, a colon, \
                 64 characters)."
            }
            Self::NotALink => {
                "That is not an enrollment link. It looks like \
                 http://bank/#terminal=t-…&key=…&bank=…"
            }
        }
    }
}

impl From<LinkError> for EnrollError {
    fn from(e: LinkError) -> Self {
        match e {
            LinkError::BadTerminal => Self::BadTerminal,
            LinkError::BadKey => Self::BadKey,
            LinkError::BadBank => Self::BadBank,
            LinkError::NotALink => Self::NotALink,
        }
    }
}

impl From<link::Enrollment> for Enrollment {
    fn from(e: link::Enrollment) -> Self {
        Self {
            terminal: e.terminal,
            psk: e.psk,
            bank: e.bank,
        }
    }
}

impl From<AuthFile> for Enrollment {
    /// The credentials an enrollment by code gives (the same three parts a link holds).
    fn from(a: AuthFile) -> Self {
        Self {
            terminal: a.terminal_id,
            psk: a.psk,
            bank: a.bank,
        }
    }
}

impl Enrollment {
    /// From a terminal id, a key and a bank key typed by hand (spaces around them ignored;
    /// each exactly as the bank prints it: the key 64 lowercase hex characters, the bank key
    /// `<bank id>:<64 lowercase hex>`). The first bad field is the error.
    pub fn from_fields(terminal: &str, key: &str, bank: &str) -> Result<Self, EnrollError> {
        Ok(link::Enrollment::from_fields(terminal, key, bank)?.into())
    }

    /// From a URL fragment, with or without its `#`: exactly
    /// `terminal=<id>&key=<64 hex>&bank=<bank id>:<64 hex>`.
    pub fn from_fragment(fragment: &str) -> Result<Self, EnrollError> {
        Ok(link::Enrollment::from_fragment(fragment)?.into())
    }

    /// From a whole pasted link (`http://host:port/#terminal=…&key=…&bank=…`) or just its
    /// fragment.
    pub fn from_link(text: &str) -> Result<Self, EnrollError> {
        Ok(link::Enrollment::from_link(text)?.into())
    }
}

/// `true` when a URL fragment is meant as an enrollment link (so it must be read and removed).
pub use protocol::link::is_enrollment_fragment;

/// Plain words when this browser holds an enrollment from before the bank key (protocol v1):
/// it cannot connect any more and must be enrolled again.
pub const ENROLL_AGAIN: &str = "This browser was enrolled before the bank began proving who it \
                                is, so it must be enrolled again. Ask the bank for a \
                                one-time enrollment code (or a new enrollment link: it now \
                                ends with &bank=…).";

#[cfg(target_arch = "wasm32")]
mod store {
    //! Where this browser keeps its enrollments: the key store (IndexedDB, the key
    //! non-extractable), and, read once to move it there, the localStorage where older
    //! versions of this page kept the key in hex.
    use super::Enrollment;
    use super::Slot;
    use crate::link::keystore::{self, KeyStoreError, StoredTerminal};
    use zeroize::Zeroizing;

    /// What this browser holds for a page.
    pub enum Stored {
        /// An enrolled terminal, its key usable through WebCrypto.
        Terminal(StoredTerminal),
        /// An enrollment from protocol v1 (no bank key): it must be enrolled again.
        FromV1,
        /// Nothing.
        Nothing,
    }

    /// Where an older version of this page kept one enrollment in localStorage.
    struct Legacy {
        terminal: &'static str,
        key: &'static str,
        bank: &'static str,
    }

    fn legacy(slot: Slot) -> Legacy {
        match slot {
            Slot::Atm => Legacy {
                terminal: "atm.terminal_id",
                key: "atm.terminal_key",
                bank: "atm.bank",
            },
            Slot::Console => Legacy {
                terminal: "secure-atm.console-terminal",
                key: "secure-atm.console-key",
                bank: "secure-atm.console-bank",
            },
        }
    }

    fn storage() -> Option<web_sys::Storage> {
        web_sys::window()?.local_storage().ok()?
    }

    fn legacy_enrollment(slot: Slot) -> Option<Enrollment> {
        let keys = legacy(slot);
        let s = storage()?;
        let terminal = s.get_item(keys.terminal).ok()??;
        let key = Zeroizing::new(s.get_item(keys.key).ok()??);
        let bank = s.get_item(keys.bank).ok()??;
        Enrollment::from_fields(&terminal, &key, &bank).ok()
    }

    fn legacy_from_v1(slot: Slot) -> bool {
        let keys = legacy(slot);
        storage().is_some_and(|s| {
            matches!(s.get_item(keys.terminal), Ok(Some(_)))
                && matches!(s.get_item(keys.key), Ok(Some(_)))
                && matches!(s.get_item(keys.bank), Ok(None))
        })
    }

    fn clear_legacy(slot: Slot) {
        let keys = legacy(slot);
        if let Some(s) = storage() {
            let _ = s.remove_item(keys.terminal);
            let _ = s.remove_item(keys.key);
            let _ = s.remove_item(keys.bank);
        }
    }

    fn log(what: &str, err: &KeyStoreError) {
        web_sys::console::error_1(&format!("{what}: {err}").into());
    }

    /// The enrollment this browser holds for `slot`. One that an older version of this page
    /// kept in localStorage is moved into the key store first (and its hex key removed).
    pub async fn load(slot: Slot) -> Stored {
        match keystore::load(slot).await {
            Ok(Some(stored)) => return Stored::Terminal(stored),
            Ok(None) => {}
            Err(err) => log("reading the terminal key", &err),
        }
        if let Some(old) = legacy_enrollment(slot) {
            let imported = keystore::import(&old.terminal, &old.psk, &old.bank).await;
            drop(old);
            match imported {
                Ok(stored) => {
                    // The hex goes only once the key store holds the key: a browser that will
                    // not keep it (private mode) keeps what it had.
                    match keystore::store(slot, &stored).await {
                        Ok(()) => clear_legacy(slot),
                        Err(err) => log("moving the terminal key", &err),
                    }
                    return Stored::Terminal(stored);
                }
                Err(err) => log("moving the terminal key", &err),
            }
        }
        if legacy_from_v1(slot) {
            return Stored::FromV1;
        }
        Stored::Nothing
    }

    /// Makes `e` usable as a non-extractable key and keeps it, dropping (zeroizing) its bytes;
    /// an enrollment an older page kept in localStorage is superseded and wiped.
    /// `Ok((terminal, false))` when the browser would not keep it (private mode, quota): it
    /// works until the page closes. `Err` when WebCrypto could not import it at all.
    pub async fn save(slot: Slot, e: Enrollment) -> Result<(StoredTerminal, bool), KeyStoreError> {
        let stored = keystore::import(&e.terminal, &e.psk, &e.bank).await;
        drop(e);
        let stored = stored?;
        let kept = match keystore::store(slot, &stored).await {
            Ok(()) => true,
            Err(err) => {
                log("keeping the terminal key", &err);
                false
            }
        };
        clear_legacy(slot);
        Ok((stored, kept))
    }

    /// Removes what this browser holds for `slot`: the key, its id and bank key.
    pub async fn forget(slot: Slot) {
        if let Err(err) = keystore::forget(slot).await {
            log("forgetting the terminal key", &err);
        }
        clear_legacy(slot);
    }

    /// Reads an enrollment link from the address bar's fragment, removing the fragment from the
    /// address bar (and history entry) right away. `None` when there is no enrollment fragment.
    pub fn take_from_location() -> Option<Result<Enrollment, super::EnrollError>> {
        let window = web_sys::window()?;
        let location = window.location();
        let hash = Zeroizing::new(location.hash().ok()?);
        if !super::is_enrollment_fragment(&hash) {
            return None;
        }
        let path = location.pathname().unwrap_or_else(|_| "/".into());
        let search = location.search().unwrap_or_default();
        if let Ok(history) = window.history() {
            let _ = history.replace_state_with_url(
                &wasm_bindgen::JsValue::NULL,
                "",
                Some(&format!("{path}{search}")),
            );
        }
        Some(Enrollment::from_fragment(&hash))
    }
}

#[cfg(target_arch = "wasm32")]
pub use store::{forget, load, save, take_from_location, Stored};

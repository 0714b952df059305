//! Terminal enrollment: reading the id, key and bank key from an enrollment link or typed
//! fields (the link format is [`protocol::link`]'s), taking them from an enrollment by code
//! ([`crate::link::enroll_code`]), and keeping them in localStorage.

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
    //! localStorage keys.
    use super::Enrollment;
    use zeroize::Zeroizing;

    /// Where one enrollment is kept: its terminal id, key and bank key (the pin).
    struct Keys {
        terminal: &'static str,
        key: &'static str,
        bank: &'static str,
    }

    const ATM: Keys = Keys {
        terminal: "atm.terminal_id",
        key: "atm.terminal_key",
        bank: "atm.bank",
    };
    /// The bank console's own keys, so one browser can be an ATM and a console.
    const CONSOLE: Keys = Keys {
        terminal: "secure-atm.console-terminal",
        key: "secure-atm.console-key",
        bank: "secure-atm.console-bank",
    };

    fn storage() -> Option<web_sys::Storage> {
        web_sys::window()?.local_storage().ok()?
    }

    /// All three parts, or `None`: an enrollment from protocol v1 (no bank key) is not one.
    fn load_from(keys: &Keys) -> Option<Enrollment> {
        let s = storage()?;
        let terminal = s.get_item(keys.terminal).ok()??;
        let key = Zeroizing::new(s.get_item(keys.key).ok()??);
        let bank = s.get_item(keys.bank).ok()??;
        Enrollment::from_fields(&terminal, &key, &bank).ok()
    }

    /// A terminal id and key are stored but no bank key: enrolled under protocol v1.
    fn from_v1(keys: &Keys) -> bool {
        storage().is_some_and(|s| {
            matches!(s.get_item(keys.terminal), Ok(Some(_)))
                && matches!(s.get_item(keys.key), Ok(Some(_)))
                && matches!(s.get_item(keys.bank), Ok(None))
        })
    }

    fn save_to(keys: &Keys, e: &Enrollment) -> bool {
        let Some(s) = storage() else { return false };
        s.set_item(keys.terminal, e.terminal.as_str()).is_ok()
            && s.set_item(keys.key, e.psk.to_hex().as_str()).is_ok()
            && s.set_item(keys.bank, &e.bank.to_text()).is_ok()
    }

    fn forget_at(keys: &Keys) {
        if let Some(s) = storage() {
            let _ = s.remove_item(keys.terminal);
            let _ = s.remove_item(keys.key);
            let _ = s.remove_item(keys.bank);
        }
    }

    /// The stored enrollment, if any (and if it still parses: one without a bank key, from
    /// protocol v1, is `None`).
    pub fn load() -> Option<Enrollment> {
        load_from(&ATM)
    }

    /// Whether the stored enrollment is from protocol v1 (no bank key): enroll again.
    pub fn stored_from_v1() -> bool {
        from_v1(&ATM)
    }

    /// Stores an enrollment; `false` when the browser refuses (private mode, quota).
    pub fn save(e: &Enrollment) -> bool {
        save_to(&ATM, e)
    }

    /// Removes the stored enrollment, bank key included.
    pub fn forget() {
        forget_at(&ATM);
    }

    /// The stored console enrollment, if any (and if it still parses; `None` from v1).
    pub fn load_console() -> Option<Enrollment> {
        load_from(&CONSOLE)
    }

    /// Whether the stored console enrollment is from protocol v1 (no bank key).
    pub fn console_stored_from_v1() -> bool {
        from_v1(&CONSOLE)
    }

    /// Stores the console enrollment; `false` when the browser refuses.
    pub fn save_console(e: &Enrollment) -> bool {
        save_to(&CONSOLE, e)
    }

    /// Removes the stored console enrollment, bank key included.
    pub fn forget_console() {
        forget_at(&CONSOLE);
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
pub use store::{
    console_stored_from_v1, forget, forget_console, load, load_console, save, save_console,
    stored_from_v1, take_from_location,
};

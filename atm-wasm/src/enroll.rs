//! Terminal enrollment: reading the id and key from an enrollment link or typed fields (the
//! link format is [`protocol::link`]'s), and keeping them in the browser's localStorage.

use protocol::link::{self, LinkError};
use protocol::{Psk, TerminalId};

/// This browser's terminal credentials. No `Debug`: it holds the key.
#[derive(Clone)]
pub struct Enrollment {
    /// The terminal id the bank knows this ATM by.
    pub terminal: TerminalId,
    /// The terminal's pre-shared key.
    pub psk: Psk,
}

/// Why enrollment text was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnrollError {
    /// The terminal id is missing or has characters a terminal id cannot have.
    BadTerminal,
    /// The key is missing or is not 64 hexadecimal characters.
    BadKey,
    /// The link is not an enrollment link.
    NotALink,
}

impl EnrollError {
    /// Plain words for the page.
    pub fn message(self) -> &'static str {
        match self {
            Self::BadTerminal => "That terminal id is not valid. It looks like t-0123456789ab.",
            Self::BadKey => "That key is not valid. It is 64 characters, digits and a to f.",
            Self::NotALink => {
                "That is not an enrollment link. It looks like http://bank/#terminal=t-…&key=…"
            }
        }
    }
}

impl From<LinkError> for EnrollError {
    fn from(e: LinkError) -> Self {
        match e {
            LinkError::BadTerminal => Self::BadTerminal,
            LinkError::BadKey => Self::BadKey,
            LinkError::NotALink => Self::NotALink,
        }
    }
}

impl From<link::Enrollment> for Enrollment {
    fn from(e: link::Enrollment) -> Self {
        Self {
            terminal: e.terminal,
            psk: e.psk,
        }
    }
}

impl Enrollment {
    /// From a terminal id and a key typed by hand (spaces around them ignored; the key exactly
    /// 64 lowercase hex characters, as the bank prints it).
    pub fn from_fields(terminal: &str, key: &str) -> Result<Self, EnrollError> {
        Ok(link::Enrollment::from_fields(terminal, key)?.into())
    }

    /// From a URL fragment, with or without its `#`: exactly `terminal=<id>&key=<64 hex>`.
    pub fn from_fragment(fragment: &str) -> Result<Self, EnrollError> {
        Ok(link::Enrollment::from_fragment(fragment)?.into())
    }

    /// From a whole pasted link (`http://host:port/#terminal=…&key=…`) or just its fragment.
    pub fn from_link(text: &str) -> Result<Self, EnrollError> {
        Ok(link::Enrollment::from_link(text)?.into())
    }
}

/// `true` when a URL fragment is meant as an enrollment link (so it must be read and removed).
pub use protocol::link::is_enrollment_fragment;

#[cfg(target_arch = "wasm32")]
mod store {
    //! localStorage keys.
    use super::Enrollment;
    use zeroize::Zeroizing;

    const TERMINAL: &str = "atm.terminal_id";
    const KEY: &str = "atm.terminal_key";
    /// The bank console's own keys, so one browser can be an ATM and a console.
    const CONSOLE_TERMINAL: &str = "secure-atm.console-terminal";
    const CONSOLE_KEY: &str = "secure-atm.console-key";

    fn storage() -> Option<web_sys::Storage> {
        web_sys::window()?.local_storage().ok()?
    }

    fn load_from(terminal: &str, key: &str) -> Option<Enrollment> {
        let s = storage()?;
        let terminal = s.get_item(terminal).ok()??;
        let key = Zeroizing::new(s.get_item(key).ok()??);
        Enrollment::from_fields(&terminal, &key).ok()
    }

    fn save_to(terminal: &str, key: &str, e: &Enrollment) -> bool {
        let Some(s) = storage() else { return false };
        s.set_item(terminal, e.terminal.as_str()).is_ok()
            && s.set_item(key, e.psk.to_hex().as_str()).is_ok()
    }

    fn forget_at(terminal: &str, key: &str) {
        if let Some(s) = storage() {
            let _ = s.remove_item(terminal);
            let _ = s.remove_item(key);
        }
    }

    /// The stored enrollment, if any (and if it still parses).
    pub fn load() -> Option<Enrollment> {
        load_from(TERMINAL, KEY)
    }

    /// Stores an enrollment; `false` when the browser refuses (private mode, quota).
    pub fn save(e: &Enrollment) -> bool {
        save_to(TERMINAL, KEY, e)
    }

    /// Removes the stored enrollment.
    pub fn forget() {
        forget_at(TERMINAL, KEY);
    }

    /// The stored console enrollment, if any (and if it still parses).
    pub fn load_console() -> Option<Enrollment> {
        load_from(CONSOLE_TERMINAL, CONSOLE_KEY)
    }

    /// Stores the console enrollment; `false` when the browser refuses.
    pub fn save_console(e: &Enrollment) -> bool {
        save_to(CONSOLE_TERMINAL, CONSOLE_KEY, e)
    }

    /// Removes the stored console enrollment.
    pub fn forget_console() {
        forget_at(CONSOLE_TERMINAL, CONSOLE_KEY);
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
    forget, forget_console, load, load_console, save, save_console, take_from_location,
};

//! The enrollment links both ends must agree on: the bank prints them, the browser reads
//! them. `<base>/#terminal=<id>&key=<64 lowercase hex>&bank=<bank id>:<64 lowercase hex>`
//! enrolls a web ATM; the same fragment after `<base>/console` the bank console. `bank` is the
//! bank's pinned identity (protocol v2). The fragment is never sent to a server by a browser.

use core::fmt;

use zeroize::Zeroizing;

use crate::{BankPin, Psk, TerminalId};

/// Where a bank console served on its own listener (its own origin) asks, with a plain GET on
/// that origin, for the web ATM's URL: the base of the enrollment links it shows. The answer
/// is the URL as text (no trailing `/`); 404 where the console shares the web ATM's origin.
pub const ATM_URL_PATH: &str = "/console/atm-url";

/// Which page a link opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkPage {
    /// The web ATM, at the bank's root (`<base>/#…`).
    Atm,
    /// The bank console (`<base>/console#…`).
    Console,
}

impl LinkPage {
    /// The path after the base, before the `#`.
    fn path(self) -> &'static str {
        match self {
            Self::Atm => "/",
            Self::Console => "/console",
        }
    }
}

/// A terminal's credentials read from a link or typed fields. No `Debug`: it holds the key.
#[derive(Clone)]
pub struct Enrollment {
    /// The terminal id the bank knows it by.
    pub terminal: TerminalId,
    /// The terminal's pre-shared key.
    pub psk: Psk,
    /// The bank's identity, pinned.
    pub bank: BankPin,
}

/// Why a text is not an enrollment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkError {
    /// The terminal id is missing or has characters a terminal id cannot have.
    BadTerminal,
    /// The key is missing or is not 64 lowercase hexadecimal characters.
    BadKey,
    /// The bank key is missing or is not `<bank id>:<64 lowercase hex>` of a usable key.
    BadBank,
    /// The text is not an enrollment link (or fragment).
    NotALink,
}

impl fmt::Display for LinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::BadTerminal => "invalid terminal id",
            Self::BadKey => "invalid terminal key",
            Self::BadBank => "invalid bank key",
            Self::NotALink => "not an enrollment link",
        })
    }
}

impl std::error::Error for LinkError {}

/// The link for `page` of the bank at `base` (like `http://127.0.0.1:8765`, a trailing `/`
/// ignored). Contains the key.
pub fn format(
    base: &str,
    page: LinkPage,
    terminal: &TerminalId,
    psk: &Psk,
    bank: &BankPin,
) -> Zeroizing<String> {
    let base = base.trim_end_matches('/');
    let bank = bank.to_text();
    let mut link = Zeroizing::new(String::with_capacity(
        base.len() + 40 + TerminalId::MAX_LEN + 2 * psk.expose().len() + bank.len(),
    ));
    link.push_str(base);
    link.push_str(page.path());
    link.push_str("#terminal=");
    link.push_str(terminal.as_str());
    link.push_str("&key=");
    link.push_str(&psk.to_hex());
    link.push_str("&bank=");
    link.push_str(&bank);
    link
}

/// `true` when a URL fragment (with or without its `#`) is meant as an enrollment, so a page
/// must read it and remove it from the address bar.
pub fn is_enrollment_fragment(fragment: &str) -> bool {
    fragment
        .strip_prefix('#')
        .unwrap_or(fragment)
        .starts_with("terminal=")
}

impl Enrollment {
    /// From a terminal id, a key and the bank key typed by hand (spaces around them ignored),
    /// each exactly as the bank prints it: the key 64 lowercase hex characters, the bank key
    /// `<bank id>:<64 lowercase hex>`.
    pub fn from_fields(terminal: &str, key: &str, bank: &str) -> Result<Self, LinkError> {
        let terminal = TerminalId::new(terminal.trim()).ok_or(LinkError::BadTerminal)?;
        let key = key.trim();
        let lower_hex = key.len() == 64
            && key
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        let psk = lower_hex
            .then(|| Psk::from_hex(key))
            .flatten()
            .ok_or(LinkError::BadKey)?;
        let bank = BankPin::parse(bank.trim()).ok_or(LinkError::BadBank)?;
        Ok(Self {
            terminal,
            psk,
            bank,
        })
    }

    /// From a URL fragment, with or without its `#`: exactly
    /// `terminal=<id>&key=<64 hex>&bank=<bank id>:<64 hex>`.
    pub fn from_fragment(fragment: &str) -> Result<Self, LinkError> {
        let fragment = fragment.strip_prefix('#').unwrap_or(fragment);
        let mut parts = fragment.split('&');
        let mut field = |name: &str| {
            parts
                .next()
                .and_then(|part| part.strip_prefix(name))
                .and_then(|rest| rest.strip_prefix('='))
                .ok_or(LinkError::NotALink)
        };
        let terminal = field("terminal")?;
        let key = field("key")?;
        let bank = field("bank")?;
        if parts.next().is_some() {
            return Err(LinkError::NotALink);
        }
        if terminal.is_empty() {
            return Err(LinkError::BadTerminal);
        }
        // No trimming here: a link is machine-made and must match exactly.
        if [terminal, key, bank].iter().any(|f| f.trim() != *f) {
            return Err(LinkError::NotALink);
        }
        Self::from_fields(terminal, key, bank)
    }

    /// From a whole link (`http://host:port/#terminal=…&key=…`, either page) or just its
    /// fragment; spaces around it ignored.
    pub fn from_link(link: &str) -> Result<Self, LinkError> {
        let link = link.trim();
        match link.split_once('#') {
            Some((_, fragment)) => Self::from_fragment(fragment),
            None => Self::from_fragment(link),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BankId, BankKey};

    const KEY: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn creds() -> (TerminalId, Psk) {
        (
            TerminalId::new("t-0123456789ab").unwrap(),
            Psk::from_hex(KEY).unwrap(),
        )
    }

    fn pin() -> BankPin {
        BankKey::from_secret(BankId::new("b-1").unwrap(), [3; 32]).pin()
    }

    fn bank() -> String {
        pin().to_text()
    }

    #[test]
    fn links_are_byte_exact_for_both_pages() {
        let (id, psk) = creds();
        assert_eq!(
            format("http://127.0.0.1:8765/", LinkPage::Atm, &id, &psk, &pin()).as_str(),
            format!(
                "http://127.0.0.1:8765/#terminal=t-0123456789ab&key={KEY}&bank=b-1:{}",
                pin().public_hex()
            )
        );
        assert_eq!(
            format("http://bank", LinkPage::Console, &id, &psk, &pin()).as_str(),
            format!(
                "http://bank/console#terminal=t-0123456789ab&key={KEY}&bank={}",
                bank()
            )
        );
    }

    #[test]
    fn what_is_formatted_parses_back() {
        let (id, psk) = creds();
        for page in [LinkPage::Atm, LinkPage::Console] {
            let link = format("https://bank.example", page, &id, &psk, &pin());
            let e = Enrollment::from_link(&link).ok().unwrap();
            assert_eq!(e.terminal, id);
            assert!(e.psk == psk);
            assert!(e.bank == pin());
        }
        let b = bank();
        assert!(Enrollment::from_fragment(&format!("terminal=t-1&key={KEY}&bank={b}")).is_ok());
        assert!(Enrollment::from_fields(" t-1 ", &format!(" {KEY}\n"), &format!(" {b} ")).is_ok());
    }

    #[test]
    fn anything_else_is_refused_with_its_reason() {
        let err = |text: &str| Enrollment::from_link(text).err();
        let b = bank();
        // A protocol v1 link (no bank key) is not a link any more.
        assert_eq!(
            err(&format!("#terminal=t-1&key={KEY}")),
            Some(LinkError::NotALink)
        );
        assert_eq!(
            err(&format!("#terminal=t-1&key={KEY}&bank={b}&x=1")),
            Some(LinkError::NotALink)
        );
        assert_eq!(
            err(&format!("#terminal=t-1&bank={b}&key={KEY}")),
            Some(LinkError::NotALink)
        );
        for bad in [
            String::new(),
            KEY.to_owned(),
            format!("b-1:{}", "00".repeat(32)),
            b.to_uppercase(),
        ] {
            assert_eq!(
                err(&format!("#terminal=t-1&key={KEY}&bank={bad}")),
                Some(LinkError::BadBank),
                "{bad}"
            );
        }
        assert_eq!(
            err(&format!("#terminal=t-1&key={KEY}&bank= {b}")),
            Some(LinkError::NotALink)
        );
        assert_eq!(err("http://127.0.0.1:8765/"), Some(LinkError::NotALink));
        assert_eq!(
            err(&format!("#key={KEY}&terminal=t-1&bank={b}")),
            Some(LinkError::NotALink)
        );
        assert_eq!(
            err(&format!("#terminal=&key={KEY}&bank={b}")),
            Some(LinkError::BadTerminal)
        );
        assert_eq!(
            err(&format!("#terminal=t 1&key={KEY}&bank={b}")),
            Some(LinkError::BadTerminal)
        );
        assert_eq!(
            err(&format!("#terminal= t-1&key={KEY}&bank={b}")),
            Some(LinkError::NotALink)
        );
        assert_eq!(
            err(&format!("#terminal=t-1&key=abc&bank={b}")),
            Some(LinkError::BadKey)
        );
        assert_eq!(
            err(&format!(
                "#terminal=t-1&key={}&bank={b}",
                KEY.to_uppercase()
            )),
            Some(LinkError::BadKey)
        );
        assert_eq!(
            err(&format!("#terminal=t-1&key={KEY}0&bank={b}")),
            Some(LinkError::BadKey)
        );
        assert_eq!(
            Enrollment::from_fields("t-1", "", &b).err(),
            Some(LinkError::BadKey)
        );
    }

    #[test]
    fn enrollment_fragments_are_recognised() {
        assert!(is_enrollment_fragment("#terminal=x"));
        assert!(is_enrollment_fragment("terminal=x"));
        assert!(!is_enrollment_fragment("#/history"));
        assert!(!is_enrollment_fragment(""));
    }
}

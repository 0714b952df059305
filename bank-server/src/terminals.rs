//! Terminal credentials: fresh ids and keys, the auth file for native ATMs, and the enrollment
//! link for browser ATMs (id and key in the URL fragment, which browsers never send).

use std::io::Write as _;
use std::path::Path;

use protocol::auth_file::AuthFile;
use protocol::link::{self, LinkPage};
use protocol::{BankPin, Psk, TerminalId, TerminalRole};
use rand_core::{OsRng, RngCore};
use zeroize::Zeroizing;

use crate::ledger::{DepositCeilings, TerminalRecord};

/// A fresh ATM terminal under `ceilings`: id `t-` + 12 lowercase hex characters, a random
/// 32-byte key.
pub fn new_terminal(name: &str, now_ms: u64, ceilings: DepositCeilings) -> TerminalRecord {
    TerminalRecord {
        ceilings,
        ..new_terminal_with_role(name, now_ms, TerminalRole::Atm)
    }
}

/// A fresh terminal of `role` without deposit ceilings (a console cannot deposit; see
/// [`new_terminal`] for an ATM's).
pub fn new_terminal_with_role(name: &str, now_ms: u64, role: TerminalRole) -> TerminalRecord {
    let mut id = [0u8; 6];
    OsRng.fill_bytes(&mut id);
    TerminalRecord {
        id: TerminalId::new(format!("t-{}", hex::encode(id))).expect("t- and hex form an id"),
        name: name.to_owned(),
        psk: Psk::random(&mut OsRng),
        revoked: false,
        created_ms: now_ms,
        role,
        ceilings: DepositCeilings::NONE,
    }
}

/// The auth file's text ([`protocol::auth_file`]):
/// `{"terminal_id":"<id>","psk":"<64 hex>","bank":"<bank id>:<64 hex>"}` and a newline.
pub fn auth_file_text(terminal: &TerminalRecord, bank: &BankPin) -> Zeroizing<String> {
    AuthFile {
        terminal_id: terminal.id.clone(),
        psk: terminal.psk.clone(),
        bank: bank.clone(),
    }
    .to_text()
}

/// Writes a secret file that must not exist yet, readable by the owner only (0600).
pub fn write_new_secret_file(path: &Path, text: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

/// `<base>/#terminal=<id>&key=<64 hex>&bank=<pin>` ([`protocol::link`]): the web ATM reads
/// this fragment and stores the key and the bank's pin. `base` is the bank's URL, like
/// `http://127.0.0.1:8765`.
pub fn enrollment_link(base: &str, terminal: &TerminalRecord, bank: &BankPin) -> Zeroizing<String> {
    link::format(base, LinkPage::Atm, &terminal.id, &terminal.psk, bank)
}

/// `<base>/console#terminal=<id>&key=<64 hex>&bank=<pin>` ([`protocol::link`]): the bank
/// console reads this fragment and stores the console terminal's key (apart from an ATM's, so
/// one browser can be both).
pub fn console_link(base: &str, terminal: &TerminalRecord, bank: &BankPin) -> Zeroizing<String> {
    link::format(base, LinkPage::Console, &terminal.id, &terminal.psk, bank)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_links_and_auth_files_have_the_agreed_shape() {
        let t = new_terminal("front desk", 1, DepositCeilings::DEFAULT);
        assert_eq!(t.ceilings, DepositCeilings::DEFAULT);
        let id = t.id.as_str();
        assert_eq!(id.len(), 14);
        assert!(
            id.starts_with("t-")
                && id[2..]
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        let pin =
            protocol::BankKey::from_secret(protocol::BankId::new("b1").unwrap(), [5; 32]).pin();
        let link = enrollment_link("http://127.0.0.1:8765/", &t, &pin);
        let key = t.psk.to_hex();
        assert_eq!(
            *link,
            format!(
                "http://127.0.0.1:8765/#terminal={id}&key={}&bank={}",
                key.as_str(),
                pin.to_text()
            )
        );
        let text = auth_file_text(&t, &pin);
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(json["terminal_id"], id);
        assert_eq!(json["psk"], key.as_str());
        assert_eq!(json["bank"], pin.to_text());
    }
}

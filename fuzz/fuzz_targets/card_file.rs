//! Fuzz target: the `atm`'s card file (`atm_cli::files::Card::parse`), legacy and signed.
//!
//! Asserts: nothing panics; an accepted card prints (`to_text`) to one JSON line that parses
//! back to the same account and the same credential, and prints again to the same text.
#![no_main]

use atm_cli::files::{Card, CardCredential};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(card) = Card::parse(text) else { return };
    let printed = card.to_text();
    assert!(printed.ends_with('\n') && printed.matches('\n').count() == 1);
    let back = Card::parse(&printed).expect("a printed card parses");
    assert_eq!(back.account, card.account);
    assert_eq!(back.secret.to_hex().as_str(), card.secret.to_hex().as_str());
    assert_eq!(
        matches!(back.secret, CardCredential::Signed(_)),
        matches!(card.secret, CardCredential::Signed(_))
    );
    assert_eq!(back.to_text().as_str(), printed.as_str());
});

//! Fuzz target: the enrollment-link parser (`protocol::link`), as a whole link, a fragment and
//! typed fields. Nothing may panic, and a link it accepts must format back (for either page) to
//! a link that parses to the same credentials.
#![no_main]

use libfuzzer_sys::fuzz_target;
use protocol::link::{self, Enrollment, LinkPage};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = link::is_enrollment_fragment(text);
    let _ = Enrollment::from_fragment(text);
    // Typed fields: the terminal id, the key and the bank pin, one per line.
    let mut lines = text.splitn(3, '\n');
    if let (Some(terminal), Some(key), Some(bank)) = (lines.next(), lines.next(), lines.next()) {
        if let Ok(e) = Enrollment::from_fields(terminal, key, bank) {
            let page = LinkPage::Atm;
            let again = link::format("http://bank.example", page, &e.terminal, &e.psk, &e.bank);
            let back = Enrollment::from_link(&again).ok().expect("typed fields format to a link");
            assert_eq!(back.terminal, e.terminal);
            assert!(back.psk == e.psk);
            assert!(back.bank == e.bank);
        }
    }
    if let Ok(e) = Enrollment::from_link(text) {
        for page in [LinkPage::Atm, LinkPage::Console] {
            let again = link::format("http://bank.example", page, &e.terminal, &e.psk, &e.bank);
            let back = Enrollment::from_link(&again).ok().expect("a formatted link parses");
            assert_eq!(back.terminal, e.terminal);
            assert!(back.psk == e.psk);
            assert!(back.bank == e.bank);
        }
    }
});

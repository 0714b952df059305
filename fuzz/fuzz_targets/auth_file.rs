//! Fuzz target: the auth-file parser (`protocol::auth_file`). Nothing may panic, and a text it
//! accepts must print back to a canonical text that parses to the same credentials.
#![no_main]

use libfuzzer_sys::fuzz_target;
use protocol::auth_file::AuthFile;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(auth) = AuthFile::parse(text) {
        let canonical = auth.to_text();
        let back = AuthFile::parse(&canonical).expect("a printed auth file parses");
        assert_eq!(back.terminal_id, auth.terminal_id);
        assert!(back.psk == auth.psk);
        assert!(back.bank == auth.bank);
        assert_eq!(back.to_text().as_str(), canonical.as_str());
    }
});

//! `atm-enroll`: enrolls this host as a new terminal of a `bank-server` with a one-time code
//! read from standard input, and writes the terminal's own auth file (its id, the key it
//! derived with the bank, the bank's pinned identity). The key never travels.
//!
//! ```text
//! atm-enroll [-i <ip-address>] [-p <port>] -s <auth-file>     (the code on standard input)
//! ```
//!
//! Exit 0 after the auth file is written (the terminal id on stdout); 255 for invalid input (an
//! option, a code that is not one, an auth file that exists already); 63 when the bank cannot
//! be reached or the enrollment fails (a wrong, used or expired code fails the handshake like a
//! wrong key, and uses the code up). Reading the code from standard input keeps it out of the
//! process list and the shell history.

use std::ffi::OsString;
use std::io::{BufRead, Write};
use std::net::{Ipv4Addr, SocketAddrV4};

use protocol::bibifi::{self, OptionSpec};
use protocol::enrollment::EnrollmentCode;
use zeroize::Zeroizing;

use crate::files::{create_secret_file, exists, BadFile};
use crate::{BANK_TIMEOUT, EXIT_INVALID, EXIT_OK, EXIT_PROTOCOL};

const SPEC: OptionSpec = OptionSpec {
    valued: "ips",
    flags: "",
};

/// Runs `atm-enroll` with `args` (without the program name), the code read from `input`;
/// returns the exit code.
pub async fn run(args: &[OsString], input: &mut impl BufRead, out: &mut impl Write) -> u8 {
    let Ok(scanned) = bibifi::scan(args, SPEC) else {
        eprintln!("atm-enroll: invalid arguments");
        return EXIT_INVALID;
    };
    let ip = scanned
        .value('i')
        .map_or(Some(Ipv4Addr::LOCALHOST), bibifi::ip);
    let port = scanned
        .value('p')
        .map_or(Some(protocol::WEB_BANK_PORT), bibifi::port);
    let auth = scanned
        .value('s')
        .filter(|name| bibifi::valid_file_name(name));
    let (Some(ip), Some(port), Some(auth)) = (ip, port, auth) else {
        eprintln!("atm-enroll: invalid arguments");
        return EXIT_INVALID;
    };
    if exists(auth) {
        eprintln!("atm-enroll: {auth} exists already");
        return EXIT_INVALID;
    }
    let mut line = Zeroizing::new(String::new());
    let code = match input.read_line(&mut line) {
        Ok(_) => EnrollmentCode::parse(&line),
        Err(_) => None,
    };
    let Some(code) = code else {
        eprintln!("atm-enroll: that is not an enrollment code (e-<10 hex>-<32 hex>)");
        return EXIT_INVALID;
    };
    let addr = SocketAddrV4::new(ip, port).to_string();
    let creds = match tokio::time::timeout(BANK_TIMEOUT, atm_client::enroll(&addr, &code)).await {
        Ok(Ok(creds)) => creds,
        Ok(Err(e)) => {
            eprintln!("atm-enroll: {e}");
            return EXIT_PROTOCOL;
        }
        Err(_) => {
            eprintln!("atm-enroll: the bank did not answer in time");
            return EXIT_PROTOCOL;
        }
    };
    if let Err(BadFile) = create_secret_file(auth, &creds.to_text()) {
        eprintln!("atm-enroll: could not write {auth}");
        return EXIT_INVALID;
    }
    let _ = writeln!(out, "{}", creds.terminal_id);
    EXIT_OK
}

//! Fuzz target: the BIBIFI `atm` command line (`atm_cli::args::parse`). The input is split on
//! NUL bytes into arguments (invalid UTF-8 kept as it is).
//!
//! Asserts: nothing panics; an accepted invocation has every value within its grammar (an
//! account and file names the BIBIFI grammar accepts, amounts in range: an opening at least
//! 10.00, a movement above zero) and is accepted again, to the same invocation, when its
//! options come back in another order and in the form `-x value`.
#![no_main]

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt as _;

use atm_cli::args::{parse, Mode};
use libfuzzer_sys::fuzz_target;
use protocol::money::BIBIFI_MAX;
use protocol::{bibifi, Cents};

fuzz_target!(|data: &[u8]| {
    let args: Vec<OsString> = data
        .split(|b| *b == 0)
        .map(|a| OsString::from_vec(a.to_vec()))
        .collect();
    let Ok(inv) = parse(&args) else { return };
    assert!(bibifi::valid_file_name(&inv.auth_file));
    assert!(bibifi::valid_file_name(&inv.card_file));
    assert_eq!(
        bibifi::account(inv.account.as_str()).as_ref(),
        Some(&inv.account)
    );
    let (mode, amount) = match inv.mode {
        Mode::New(c) => {
            assert!(c >= protocol::MIN_OPENING && c <= BIBIFI_MAX);
            ("-n", Some(c))
        }
        Mode::Deposit(c) | Mode::Withdraw(c) => {
            assert!(c > Cents::ZERO && c <= BIBIFI_MAX);
            (
                if matches!(inv.mode, Mode::Deposit(_)) {
                    "-d"
                } else {
                    "-w"
                },
                Some(c),
            )
        }
        Mode::Balance => ("-g", None),
    };
    // The same invocation, spelled out in reverse order.
    let mut again: Vec<String> = vec![mode.into()];
    if let Some(c) = amount {
        again.push(c.to_string());
    }
    for (flag, value) in [
        ("-a", inv.account.as_str().to_owned()),
        ("-c", inv.card_file.clone()),
        ("-p", inv.port.to_string()),
        ("-i", inv.ip.to_string()),
        ("-s", inv.auth_file.clone()),
    ] {
        again.push(flag.into());
        again.push(value);
    }
    let again: Vec<OsString> = again.into_iter().map(OsString::from).collect();
    assert_eq!(parse(&again).as_ref(), Ok(&inv), "{again:?}");
});

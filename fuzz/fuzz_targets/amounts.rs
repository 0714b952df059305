//! Fuzz target: the amount parsers of untrusted text: `Cents::parse_decimal` (what a person
//! types), `Cents::parse_bibifi` (the `atm` and `bank` grammar, also through
//! `protocol::bibifi::amount`) and the web ATM's `parse_amount` (atm-wasm/src/atm/amount.rs, read
//! as a module here: it is plain Rust, and the crate itself pulls in the browser).
//!
//! Asserts: an accepted amount prints back (two decimals, and as a JSON number) to a text that
//! parses to the same cents; the BIBIFI grammar accepts exactly its canonical printing, at
//! most 4294967295.99; what the BIBIFI grammar accepts the decimal parser accepts alike; the
//! web ATM accepts exactly the trimmed decimal amounts above zero up to the maximum, and its
//! reason for a refusal is `Zero` or `TooLarge` only for a number.
#![no_main]

#[path = "../../atm-wasm/src/atm/amount.rs"]
#[allow(dead_code)]
mod amount;

use amount::{parse_amount, AmountError};
use libfuzzer_sys::fuzz_target;
use protocol::money::BIBIFI_MAX;
use protocol::Cents;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let decimal = Cents::parse_decimal(text);
    if let Some(c) = decimal {
        assert_eq!(Cents::parse_decimal(&c.to_string()), Some(c));
        assert_eq!(Cents::parse_decimal(&c.to_json_number()), Some(c));
    }
    let bibifi = Cents::parse_bibifi(text);
    assert_eq!(protocol::bibifi::amount(text), bibifi);
    if let Some(c) = bibifi {
        assert!(c <= BIBIFI_MAX);
        assert_eq!(
            c.to_string(),
            text,
            "the BIBIFI grammar has one spelling per amount"
        );
        assert_eq!(decimal, Some(c));
    }
    let typed = parse_amount(text);
    let trimmed = Cents::parse_decimal(text.trim());
    match typed {
        Ok(c) => {
            assert_eq!(trimmed, Some(c));
            assert!(c > Cents::ZERO && c <= BIBIFI_MAX);
        }
        Err(AmountError::Zero) => assert_eq!(trimmed, Some(Cents::ZERO)),
        Err(AmountError::Empty) => assert!(text.trim().is_empty()),
        Err(AmountError::TooLarge) => {
            assert!(trimmed.is_none_or(|c| c > BIBIFI_MAX));
            assert!(text.trim().bytes().all(|b| b.is_ascii_digit() || b == b'.'));
        }
        Err(AmountError::NotANumber | AmountError::TooPrecise) => {
            assert!(trimmed.is_none(), "{text:?} is a number");
        }
    }
    if let Err(e) = typed {
        assert!(!e.message().is_empty());
    }
});

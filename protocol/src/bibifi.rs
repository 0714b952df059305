//! The BIBIFI command-line and stdout contract shared by `atm` and `bank`: one POSIX option
//! scanner, the value grammars (port, file name, IP, account, amount) and the summary line.
//!
//! Pure parsing and formatting, no IO: both commands call these, so an option is read and a
//! line is written the same way on both ends.
//!
//! Scanning follows the POSIX utility syntax guidelines: options in any order, each at most
//! once; an option's value either follows the letter in the same argument (`-p3000`) or is the
//! next argument, whatever it looks like (`-a -g` gives `-a` the value `-g`); a flag (an option
//! without a value) may be grouped in front of another option (`-ga bob`). Everything else is
//! refused with one error: an unknown option, a repeated option, a missing value, an operand,
//! `-`, `--`, `-h`/`--help`, an argument longer than [`MAX_ARG_LEN`] bytes or not UTF-8.

use std::ffi::OsStr;
use std::net::Ipv4Addr;

use crate::money::BIBIFI_MAX;
use crate::{Cents, Username};

/// Longest command-line argument accepted, in bytes.
pub const MAX_ARG_LEN: usize = 4096;

/// The auth file both commands use when `-s` is not given.
pub const DEFAULT_AUTH_FILE: &str = "bank.auth";

/// The command line was not a valid invocation (exit 255). Deliberately carries no detail:
/// there is one answer for every kind of bad input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Invalid;

/// The options a command accepts: letters that take a value, and letters that do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionSpec {
    /// Letters that take a value (`-p <port>`).
    pub valued: &'static str,
    /// Letters that stand alone (`-g`).
    pub flags: &'static str,
}

/// The options as scanned, before their values are checked against a grammar.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scanned {
    values: Vec<(char, String)>,
    flags: Vec<char>,
}

impl Scanned {
    /// The value given to `letter`, if the option was given.
    pub fn value(&self, letter: char) -> Option<&str> {
        self.values
            .iter()
            .find(|(l, _)| *l == letter)
            .map(|(_, v)| v.as_str())
    }

    /// Whether the flag `letter` was given.
    pub fn flag(&self, letter: char) -> bool {
        self.flags.contains(&letter)
    }

    fn seen(&self, letter: char) -> bool {
        self.flag(letter) || self.value(letter).is_some()
    }
}

/// Scans `args` (without the program name) for the options in `spec`, without judging
/// their values.
pub fn scan<S: AsRef<OsStr>>(args: &[S], spec: OptionSpec) -> Result<Scanned, Invalid> {
    let args: Vec<&str> = args
        .iter()
        .map(|a| {
            a.as_ref()
                .to_str()
                .filter(|a| a.len() <= MAX_ARG_LEN)
                .ok_or(Invalid)
        })
        .collect::<Result<_, _>>()?;
    let mut scanned = Scanned::default();
    let mut rest = args.into_iter();
    while let Some(arg) = rest.next() {
        // Operands, `-` and `--` (and so `--help` and every long option) are all refused.
        let letters = arg.strip_prefix('-').ok_or(Invalid)?;
        if letters.is_empty() || letters.starts_with('-') {
            return Err(Invalid);
        }
        for (at, letter) in letters.char_indices() {
            if scanned.seen(letter) {
                return Err(Invalid);
            }
            if spec.flags.contains(letter) {
                scanned.flags.push(letter);
                continue;
            }
            if !spec.valued.contains(letter) {
                return Err(Invalid);
            }
            let attached = &letters[at + letter.len_utf8()..];
            let value = if attached.is_empty() {
                rest.next().ok_or(Invalid)?
            } else {
                attached
            };
            scanned.values.push((letter, value.to_owned()));
            break;
        }
    }
    Ok(scanned)
}

/// `(0|[1-9][0-9]*)`, as a number that fits in a `u32`.
fn number(text: &str) -> Option<u32> {
    let digits = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    let canonical = text == "0" || !text.starts_with('0');
    if digits && canonical && text.len() <= 10 {
        text.parse().ok()
    } else {
        None
    }
}

/// A file name: 1 to 255 characters of `[_\-.0-9a-z]`, not `.` or `..`.
pub fn valid_file_name(name: &str) -> bool {
    (1..=255).contains(&name.len())
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| matches!(b, b'_' | b'-' | b'.' | b'0'..=b'9' | b'a'..=b'z'))
}

/// An account name: what [`Username`] accepts (1 to 250 characters of `[_\-.0-9a-z]`, `.` and
/// `..` included).
pub fn account(name: &str) -> Option<Username> {
    Username::new(name).filter(|u| (1..=250).contains(&u.as_str().len()))
}

/// Dotted decimal, four numbers 0-255 without leading zeros.
pub fn ip(text: &str) -> Option<Ipv4Addr> {
    let parts: Vec<&str> = text.split('.').collect();
    if parts.len() != 4 {
        return None;
    }
    let mut octets = [0u8; 4];
    for (octet, part) in octets.iter_mut().zip(parts) {
        *octet = u8::try_from(number(part)?).ok()?;
    }
    Some(Ipv4Addr::from(octets))
}

/// A port: a decimal number 1024-65535 without leading zeros.
pub fn port(text: &str) -> Option<u16> {
    number(text)
        .and_then(|n| u16::try_from(n).ok())
        .filter(|p| *p >= 1024)
}

/// An amount: `number.dd`, 0.00 to 4294967295.99.
pub fn amount(text: &str) -> Option<Cents> {
    Cents::parse_bibifi(text).filter(|c| *c <= BIBIFI_MAX)
}

/// What a summary line reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SummaryField {
    /// An account was opened with this balance.
    InitialBalance,
    /// Money was put in.
    Deposit,
    /// Money was taken out.
    Withdraw,
    /// The balance was read.
    Balance,
}

impl SummaryField {
    /// The JSON key.
    pub fn key(self) -> &'static str {
        match self {
            Self::InitialBalance => "initial_balance",
            Self::Deposit => "deposit",
            Self::Withdraw => "withdraw",
            Self::Balance => "balance",
        }
    }
}

/// The one JSON line both the bank and the atm print for a completed transaction:
/// `{"account":"<name>","<field>":<amount as an exact JSON number>}` (no newline).
pub fn summary_line(account: &str, field: SummaryField, amount: Cents) -> String {
    let name = serde_json::to_string(account).expect("strings serialize");
    format!(
        "{{\"account\":{name},\"{}\":{}}}",
        field.key(),
        amount.to_json_number()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const ATM: OptionSpec = OptionSpec {
        valued: "sipcandw",
        flags: "g",
    };
    const BANK: OptionSpec = OptionSpec {
        valued: "ps",
        flags: "",
    };

    fn scan_line(line: &[&str], spec: OptionSpec) -> Result<Scanned, Invalid> {
        scan(line, spec)
    }

    #[test]
    fn scan_takes_attached_and_separate_values_and_grouped_flags() {
        let s = scan_line(&["-p3000", "-s", "x.auth"], BANK).unwrap();
        assert_eq!(s.value('p'), Some("3000"));
        assert_eq!(s.value('s'), Some("x.auth"));
        let s = scan_line(&["-gabob"], ATM).unwrap();
        assert!(s.flag('g'));
        assert_eq!(s.value('a'), Some("bob"));
        let s = scan_line(&["-a", "-g"], ATM).unwrap();
        assert!(!s.flag('g'));
        assert_eq!(s.value('a'), Some("-g"));
        assert_eq!(scan_line(&[], BANK), Ok(Scanned::default()));
    }

    #[test]
    fn scan_refuses_everything_else() {
        for line in [
            &["-p", "3000", "-p", "3000"][..],
            &["-s", "a", "-s", "b"],
            &["-x"],
            &["-h"],
            &["--help"],
            &["--"],
            &["-"],
            &["operand"],
            &[""],
            &["-p"],
            &["-g"],
            &["-P", "3000"],
        ] {
            assert_eq!(scan_line(line, BANK), Err(Invalid), "{line:?}");
        }
        assert_eq!(scan_line(&["-gg", "-a", "b"], ATM), Err(Invalid));
        let long = "a".repeat(MAX_ARG_LEN + 1);
        assert_eq!(scan_line(&["-s", &long], BANK), Err(Invalid));
        let just_fits = format!("-s{}", "a".repeat(MAX_ARG_LEN - 2));
        assert!(scan_line(&[just_fits.as_str()], BANK).is_ok());
        #[cfg(unix)]
        {
            use std::ffi::OsString;
            use std::os::unix::ffi::OsStringExt;
            let bad = [OsString::from("-s"), OsString::from_vec(vec![b'a', 0xff])];
            assert_eq!(scan(&bad, BANK), Err(Invalid));
        }
    }

    #[test]
    fn ports() {
        assert_eq!(port("1024"), Some(1024));
        assert_eq!(port("3000"), Some(3000));
        assert_eq!(port("65535"), Some(65535));
        for bad in [
            "",
            "0",
            "80",
            "1023",
            "65536",
            "03000",
            "+3000",
            "3000 ",
            "4294967296",
        ] {
            assert_eq!(port(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn file_names() {
        for good in ["a", "...", "bank.auth", "-", "_x-y.z9", &"f".repeat(255)] {
            assert!(valid_file_name(good), "{good:?}");
        }
        for bad in ["", ".", "..", "A", "a/b", "x y", "\u{e9}", &"f".repeat(256)] {
            assert!(!valid_file_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn ips_accounts_and_amounts() {
        assert_eq!(ip("10.0.0.1"), Some(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(ip("01.0.0.1"), None);
        assert_eq!(
            account("..").map(|u| u.as_str().to_owned()),
            Some("..".into())
        );
        assert_eq!(account(&"a".repeat(251)), None);
        assert_eq!(amount("10.00"), Some(Cents(1_000)));
        assert_eq!(amount("4294967296.00"), None);
    }

    #[test]
    fn summary_lines_are_exact() {
        assert_eq!(
            summary_line("bob", SummaryField::Deposit, Cents(1250)),
            r#"{"account":"bob","deposit":12.5}"#
        );
        assert_eq!(
            summary_line("bob", SummaryField::InitialBalance, Cents(100_000)),
            r#"{"account":"bob","initial_balance":1000}"#
        );
        assert_eq!(
            summary_line("bob", SummaryField::Withdraw, Cents(6310)),
            r#"{"account":"bob","withdraw":63.1}"#
        );
        assert_eq!(
            summary_line("bob", SummaryField::Balance, Cents(5)),
            r#"{"account":"bob","balance":0.05}"#
        );
        // Beyond 2^53 cents, still exact.
        assert_eq!(
            summary_line("bob", SummaryField::Balance, Cents((1 << 53) + 1)),
            r#"{"account":"bob","balance":90071992547409.93}"#
        );
        assert_eq!(
            summary_line("..", SummaryField::Deposit, Cents(1)),
            r#"{"account":"..","deposit":0.01}"#
        );
    }
}

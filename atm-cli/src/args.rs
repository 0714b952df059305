//! The `atm` command line: a POSIX getopt-style scan, then the BIBIFI grammar for every value.
//!
//! ```text
//! atm [-s <auth-file>] [-i <ip-address>] [-p <port>] [-c <card-file>] -a <account> -n <balance>
//! atm [-s <auth-file>] [-i <ip-address>] [-p <port>] [-c <card-file>] -a <account> -d <amount>
//! atm [-s <auth-file>] [-i <ip-address>] [-p <port>] [-c <card-file>] -a <account> -w <amount>
//! atm [-s <auth-file>] [-i <ip-address>] [-p <port>] [-c <card-file>] -a <account> -g
//! ```
//!
//! Scanning and every value grammar are [`protocol::bibifi`]'s, shared with the `bank`
//! command: options in any order, each at most once, a value attached (`-i4000`) or the next
//! argument whatever it looks like (`-a -g` names the account `-g`), `-g` grouped in front of
//! another option (`-ga bob`); an unknown or repeated option, a missing value, an operand, `-`,
//! `--`, `-h`/`--help`, an argument longer than 4096 bytes or not UTF-8, and any value outside
//! its grammar are all refused with one error.

use std::ffi::OsString;
use std::net::Ipv4Addr;

use protocol::bibifi::{self, OptionSpec};
use protocol::{Cents, Username};

pub use protocol::bibifi::{Invalid, DEFAULT_AUTH_FILE, MAX_ARG_LEN};

/// The port the atm connects to by default: the BIBIFI bank's ([`protocol::BIBIFI_PORT`]).
pub const DEFAULT_PORT: u16 = protocol::BIBIFI_PORT;

/// The atm's options: `-g` stands alone, the others take a value.
const OPTIONS: OptionSpec = OptionSpec {
    valued: "sipcandw",
    flags: "g",
};

/// What the `atm` was asked to do with the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `-n <balance>`: open the account with this balance (>= 10.00) and write its card.
    New(Cents),
    /// `-d <amount>`: deposit (> 0.00).
    Deposit(Cents),
    /// `-w <amount>`: withdraw (> 0.00).
    Withdraw(Cents),
    /// `-g`: read the balance.
    Balance,
}

/// A valid invocation, every value checked against its grammar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    /// `-s`: the bank's auth file (a file name in the current directory).
    pub auth_file: String,
    /// `-i`: the bank's IPv4 address.
    pub ip: Ipv4Addr,
    /// `-p`: the bank's port.
    pub port: u16,
    /// `-c`: the card file (a file name in the current directory).
    pub card_file: String,
    /// `-a`: the account.
    pub account: Username,
    /// The one operation.
    pub mode: Mode,
}

/// Parses the arguments after the program name.
pub fn parse(args: &[OsString]) -> Result<Invocation, Invalid> {
    let raw = bibifi::scan(args, OPTIONS)?;
    let (n, d, w, g) = (
        raw.value('n'),
        raw.value('d'),
        raw.value('w'),
        raw.flag('g'),
    );
    let modes = [n.is_some(), d.is_some(), w.is_some(), g];
    if modes.iter().filter(|m| **m).count() != 1 {
        return Err(Invalid);
    }
    let account = bibifi::account(raw.value('a').ok_or(Invalid)?).ok_or(Invalid)?;
    let positive = |text: &str| {
        bibifi::amount(text)
            .filter(|c| *c > Cents::ZERO)
            .ok_or(Invalid)
    };
    let mode = if let Some(n) = n {
        Mode::New(
            bibifi::amount(n)
                .filter(|c| *c >= protocol::MIN_OPENING)
                .ok_or(Invalid)?,
        )
    } else if let Some(d) = d {
        Mode::Deposit(positive(d)?)
    } else if let Some(w) = w {
        Mode::Withdraw(positive(w)?)
    } else {
        Mode::Balance
    };
    let file = |name: String| {
        if bibifi::valid_file_name(&name) {
            Ok(name)
        } else {
            Err(Invalid)
        }
    };
    Ok(Invocation {
        auth_file: file(raw.value('s').unwrap_or(DEFAULT_AUTH_FILE).to_owned())?,
        ip: match raw.value('i') {
            Some(text) => bibifi::ip(text).ok_or(Invalid)?,
            None => Ipv4Addr::LOCALHOST,
        },
        port: match raw.value('p') {
            Some(text) => bibifi::port(text).ok_or(Invalid)?,
            None => DEFAULT_PORT,
        },
        card_file: file(
            raw.value('c')
                .map_or_else(|| format!("{}.card", account.as_str()), str::to_owned),
        )?,
        account,
        mode,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &[&str]) -> Vec<OsString> {
        line.iter().map(OsString::from).collect()
    }

    fn ok(line: &[&str]) -> Invocation {
        parse(&args(line)).unwrap_or_else(|_| panic!("{line:?} should parse"))
    }

    fn bad(line: &[&str]) {
        assert_eq!(
            parse(&args(line)),
            Err(Invalid),
            "{line:?} should be refused"
        );
    }

    #[test]
    fn defaults() {
        let inv = ok(&["-a", "bob", "-n", "1000.00"]);
        assert_eq!(inv.auth_file, "bank.auth");
        assert_eq!(inv.ip, Ipv4Addr::LOCALHOST);
        assert_eq!(inv.port, 3000);
        assert_eq!(inv.card_file, "bob.card");
        assert_eq!(inv.account.as_str(), "bob");
        assert_eq!(inv.mode, Mode::New(Cents(100_000)));
    }

    #[test]
    fn every_option_in_any_order() {
        let a = ok(&[
            "-s", "x.auth", "-i", "10.0.0.1", "-p", "4000", "-c", "c.card", "-a", "bob", "-d",
            "1.50",
        ]);
        let b = ok(&[
            "-d", "1.50", "-a", "bob", "-c", "c.card", "-p", "4000", "-i", "10.0.0.1", "-s",
            "x.auth",
        ]);
        assert_eq!(a, b);
        assert_eq!(a.auth_file, "x.auth");
        assert_eq!(a.ip, Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(a.port, 4000);
        assert_eq!(a.card_file, "c.card");
        assert_eq!(a.mode, Mode::Deposit(Cents(150)));
        assert_eq!(
            ok(&["-a", "bob", "-w", "63.10"]).mode,
            Mode::Withdraw(Cents(6310))
        );
        assert_eq!(ok(&["-g", "-a", "bob"]).mode, Mode::Balance);
    }

    #[test]
    fn attached_values_and_grouping() {
        let inv = ok(&["-p4000", "-i127.0.0.1", "-abob", "-n10.00", "-sbank.auth"]);
        assert_eq!(inv.port, 4000);
        assert_eq!(inv.account.as_str(), "bob");
        assert_eq!(inv.mode, Mode::New(Cents(1_000)));
        assert_eq!(ok(&["-ga", "bob"]).mode, Mode::Balance);
        assert_eq!(ok(&["-gabob"]).account.as_str(), "bob");
        // A grouped flag after a value-taking letter is part of the value.
        assert_eq!(ok(&["-ag", "-g"]).account.as_str(), "g");
        bad(&["-gg", "-a", "bob"]);
    }

    #[test]
    fn values_may_start_with_a_dash() {
        let inv = ok(&["-a", "-g", "-n", "11.00"]);
        assert_eq!(inv.account.as_str(), "-g");
        assert_eq!(inv.card_file, "-g.card");
        assert_eq!(inv.mode, Mode::New(Cents(1_100)));
        assert_eq!(ok(&["-a", "--", "-g"]).account.as_str(), "--");
        assert_eq!(ok(&["-c", "-", "-a", "b", "-g"]).card_file, "-");
        // A value that looks like an amount for another option is still just the value.
        bad(&["-a", "bob", "-d", "-w", "1.00"]);
    }

    #[test]
    fn missing_or_extra_modes() {
        bad(&["-a", "bob"]);
        bad(&["-a", "bob", "-g", "-d", "1.00"]);
        bad(&["-a", "bob", "-n", "10.00", "-d", "1.00"]);
        bad(&["-a", "bob", "-w", "1.00", "-d", "1.00"]);
        bad(&["-g"]);
        bad(&["-n", "10.00"]);
        bad(&[]);
    }

    #[test]
    fn repeated_unknown_and_stray_arguments() {
        for line in [
            &["-a", "bob", "-a", "bob", "-g"][..],
            &["-a", "bob", "-g", "-g"],
            &["-a", "bob", "-d", "1.00", "-d", "1.00"],
            &["-a", "bob", "-g", "-s", "a", "-s", "a"],
            &["-a", "bob", "-g", "-i", "1.2.3.4", "-i", "1.2.3.4"],
            &["-a", "bob", "-g", "-p", "2000", "-p", "2000"],
            &["-a", "bob", "-g", "-c", "a", "-c", "a"],
            &["-a", "bob", "-g", "-x"],
            &["-a", "bob", "-g", "-h"],
            &["-h"],
            &["--help"],
            &["-a", "bob", "-g", "--help"],
            &["-a", "bob", "-g", "--"],
            &["--", "-a", "bob", "-g"],
            &["-a", "bob", "-g", "-"],
            &["-a", "bob", "-g", "extra"],
            &["extra", "-a", "bob", "-g"],
            &["-a", "bob", "-g", ""],
            &["-a", "bob", "-G"],
            &["-A", "bob", "-g"],
            &["-a", "bob", "-g", "--account=bob"],
            &["-a", "bob", "-gx"],
            &["-a", "bob", "-gé"],
            &["-a"],
            &["-g", "-a"],
            &["-a", "bob", "-d"],
            &["-a", "bob", "-g", "-s"],
        ] {
            bad(line);
        }
    }

    #[test]
    fn argument_length_and_encoding() {
        let long = "a".repeat(MAX_ARG_LEN + 1);
        bad(&["-a", "bob", "-g", "-s", &long]);
        let long_opt = format!("-s{}", "a".repeat(MAX_ARG_LEN));
        bad(&["-a", "bob", "-g", &long_opt]);
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStringExt;
            let mut line = args(&["-g", "-a"]);
            line.push(OsString::from_vec(vec![b'b', 0xff]));
            assert_eq!(parse(&line), Err(Invalid));
        }
    }

    #[test]
    fn account_names() {
        for good in [".", "..", "...", "-", "_", "a", "0", "a.b-c_d", "bob"] {
            assert_eq!(ok(&["-a", good, "-g"]).account.as_str(), good);
        }
        let max = "a".repeat(250);
        let inv = ok(&["-a", &max, "-g"]);
        assert_eq!(inv.card_file.len(), 255);
        assert_eq!(ok(&["-a", ".", "-g"]).card_file, "..card");
        assert_eq!(ok(&["-a", "..", "-g"]).card_file, "...card");
        for bad_name in [
            "",
            "Bob",
            "bob smith",
            "bob/x",
            "b\u{e9}b",
            "a+b",
            "a\0b",
            &"a".repeat(251),
        ] {
            bad(&["-a", bad_name, "-g"]);
        }
    }

    #[test]
    fn file_names() {
        for good in ["a", "...", "bank.auth", "-", "_x-y.z9", &"f".repeat(255)] {
            assert_eq!(ok(&["-a", "b", "-g", "-c", good]).card_file, good);
            assert_eq!(ok(&["-a", "b", "-g", "-s", good]).auth_file, good);
        }
        for name in [
            "",
            ".",
            "..",
            "A",
            "a/b",
            "/tmp/x",
            "./x",
            "x y",
            "\u{e9}",
            &"f".repeat(256),
        ] {
            bad(&["-a", "b", "-g", "-c", name]);
            bad(&["-a", "b", "-g", "-s", name]);
        }
    }

    #[test]
    fn ip_addresses() {
        for (text, want) in [
            ("0.0.0.0", [0, 0, 0, 0]),
            ("127.0.0.1", [127, 0, 0, 1]),
            ("255.255.255.255", [255, 255, 255, 255]),
            ("10.20.30.40", [10, 20, 30, 40]),
        ] {
            assert_eq!(ok(&["-a", "b", "-g", "-i", text]).ip, Ipv4Addr::from(want));
        }
        for text in [
            "",
            "256.0.0.1",
            "1.2.3",
            "1.2.3.4.5",
            "01.2.3.4",
            "1.2.3.04",
            "1.2.3.00",
            "1..3.4",
            "1.2.3.4.",
            ".1.2.3.4",
            "localhost",
            "::1",
            "1.2.3.-4",
            "1.2.3.+4",
            " 1.2.3.4",
            "1.2.3.4 ",
            "0x7f.0.0.1",
            "99999999999.0.0.1",
        ] {
            bad(&["-a", "b", "-g", "-i", text]);
        }
    }

    #[test]
    fn ports() {
        for (text, want) in [("1024", 1024), ("8765", 8765), ("65535", 65535)] {
            assert_eq!(ok(&["-a", "b", "-g", "-p", text]).port, want);
        }
        for text in [
            "",
            "0",
            "1",
            "1023",
            "65536",
            "99999999999",
            "08765",
            "+8765",
            "-8765",
            "8765 ",
            "87a5",
            "4294967296",
        ] {
            bad(&["-a", "b", "-g", "-p", text]);
        }
    }

    #[test]
    fn amounts() {
        let new = |t: &str| parse(&args(&["-a", "b", "-n", t])).map(|i| i.mode);
        assert_eq!(new("10.00"), Ok(Mode::New(Cents(1_000))));
        assert_eq!(new("4294967295.99"), Ok(Mode::New(Cents(429_496_729_599))));
        assert_eq!(new("9.99"), Err(Invalid));
        assert_eq!(new("0.00"), Err(Invalid));
        assert_eq!(new("4294967296.00"), Err(Invalid));
        for flag in ["-d", "-w"] {
            let op = |t: &str| parse(&args(&["-a", "b", flag, t])).map(|i| i.mode);
            let want = |c| {
                if flag == "-d" {
                    Mode::Deposit(Cents(c))
                } else {
                    Mode::Withdraw(Cents(c))
                }
            };
            assert_eq!(op("0.01"), Ok(want(1)));
            assert_eq!(op("0.10"), Ok(want(10)));
            assert_eq!(op("4294967295.99"), Ok(want(429_496_729_599)));
            for text in [
                "0.00",
                "4294967296.00",
                "1",
                "1.",
                "1.0",
                "1.000",
                ".50",
                "01.00",
                "00.00",
                "-1.00",
                "+1.00",
                "1e2",
                "1,00",
                " 1.00",
                "1.00 ",
                "1.0a",
                "١.٠٠",
                "",
            ] {
                assert_eq!(op(text), Err(Invalid), "{flag} {text:?}");
            }
        }
    }
}

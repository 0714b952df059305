//! Money as integer cents: exact parsing of decimal text, exact formatting, checked arithmetic.

use core::fmt;
use serde::{Deserialize, Serialize};

/// An amount of money in cents. Never a float; arithmetic is checked.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Cents(pub u64);

/// Largest amount the BIBIFI grammar accepts: 4294967295.99.
pub const BIBIFI_MAX: Cents = Cents(4_294_967_295 * 100 + 99);

impl Cents {
    /// Zero cents.
    pub const ZERO: Self = Self(0);

    /// `self + other`, or `None` on overflow.
    pub fn checked_add(self, other: Self) -> Option<Self> {
        self.0.checked_add(other.0).map(Self)
    }

    /// `self - other`, or `None` when it would go below zero.
    pub fn checked_sub(self, other: Self) -> Option<Self> {
        self.0.checked_sub(other.0).map(Self)
    }

    /// Parses what a person types: digits, optionally a point and one or two digits
    /// (`"12"`, `"12.5"`, `"12.50"`, `"0.07"`). No sign, exponent, spaces or separators.
    /// `None` for anything else or an amount that does not fit.
    pub fn parse_decimal(text: &str) -> Option<Self> {
        let (whole, frac) = match text.split_once('.') {
            Some((w, f)) if (1..=2).contains(&f.len()) => (w, f),
            Some(_) => return None,
            None => (text, ""),
        };
        Self::from_parts(whole, frac)
    }

    /// Parses the BIBIFI amount grammar exactly: `(0|[1-9][0-9]*)\.[0-9]{2}`, at most
    /// 4294967295.99.
    pub fn parse_bibifi(text: &str) -> Option<Self> {
        let (whole, frac) = text.split_once('.')?;
        if frac.len() != 2 || (whole.len() > 1 && whole.starts_with('0')) {
            return None;
        }
        Self::from_parts(whole, frac).filter(|c| *c <= BIBIFI_MAX)
    }

    fn from_parts(whole: &str, frac: &str) -> Option<Self> {
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || !digits(whole) || !digits(frac) {
            return None;
        }
        let units: u64 = whole.parse().ok()?;
        let cents: u64 = match frac.len() {
            0 => 0,
            1 => frac.parse::<u64>().ok()? * 10,
            _ => frac.parse().ok()?,
        };
        units.checked_mul(100)?.checked_add(cents).map(Self)
    }

    /// The amount as the shortest exact JSON number: `1000.00` is `1000`, `63.10` is `63.1`,
    /// `0.05` is `0.05`. Exact for every `u64` (no float on the way).
    pub fn to_json_number(self) -> String {
        let (units, cents) = (self.0 / 100, self.0 % 100);
        match cents {
            0 => units.to_string(),
            c if c % 10 == 0 => format!("{units}.{}", c / 10),
            c => format!("{units}.{c:02}"),
        }
    }
}

/// Always two decimals: `1234.50`.
impl fmt::Display for Cents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_parsing_is_exact_and_strict() {
        assert_eq!(Cents::parse_decimal("12"), Some(Cents(1200)));
        assert_eq!(Cents::parse_decimal("12.5"), Some(Cents(1250)));
        assert_eq!(Cents::parse_decimal("0.07"), Some(Cents(7)));
        assert_eq!(
            Cents::parse_decimal("184467440737095516.15"),
            Some(Cents(u64::MAX))
        );
        for bad in [
            "",
            ".5",
            "1.",
            "1.234",
            "-1",
            "+1",
            "1e3",
            " 1",
            "1 ",
            "1,00",
            "0x10",
            "1.-1",
            "184467440737095516.16",
            "NaN",
            "١٢",
        ] {
            assert_eq!(Cents::parse_decimal(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn bibifi_grammar() {
        assert_eq!(Cents::parse_bibifi("0.00"), Some(Cents(0)));
        assert_eq!(Cents::parse_bibifi("4294967295.99"), Some(BIBIFI_MAX));
        for bad in [
            "4294967296.00",
            "01.00",
            "1.0",
            "1",
            "1.000",
            "00.00",
            "-1.00",
        ] {
            assert_eq!(Cents::parse_bibifi(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn formatting() {
        assert_eq!(Cents(100_000).to_json_number(), "1000");
        assert_eq!(Cents(6310).to_json_number(), "63.1");
        assert_eq!(Cents(5).to_json_number(), "0.05");
        assert_eq!(Cents(u64::MAX).to_json_number(), "184467440737095516.15");
        assert_eq!(Cents(6310).to_string(), "63.10");
        assert_eq!(Cents(7).to_string(), "0.07");
    }
}

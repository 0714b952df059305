//! Reading an amount a person typed into exact cents, with a plain-words reason when it is wrong.

use protocol::money::BIBIFI_MAX;
use protocol::Cents;

/// Why a typed amount cannot be sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AmountError {
    /// Nothing was typed.
    Empty,
    /// Not a plain decimal number (letters, signs, commas, spaces inside).
    NotANumber,
    /// More than two digits after the point.
    TooPrecise,
    /// Zero.
    Zero,
    /// Above the most one transaction may move.
    TooLarge,
}

impl AmountError {
    /// Plain words for the page, shown next to the amount field.
    pub fn message(self) -> &'static str {
        match self {
            Self::Empty => "Please enter an amount.",
            Self::NotANumber => "Please enter the amount as a number, like 25 or 19.99.",
            Self::TooPrecise => "Please use at most two digits after the point.",
            Self::Zero => "The amount must be more than zero.",
            Self::TooLarge => "That amount is larger than one transaction may be.",
        }
    }
}

/// Parses what a person typed (`"25"`, `"19.9"`, `"19.99"`), ignoring spaces around it.
/// The amount must be above zero and at most the bank's per-transaction maximum
/// (4294967295.99); the bank checks again.
pub fn parse_amount(text: &str) -> Result<Cents, AmountError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(AmountError::Empty);
    }
    if let Some(cents) = Cents::parse_decimal(text) {
        return match cents {
            Cents::ZERO => Err(AmountError::Zero),
            c if c > BIBIFI_MAX => Err(AmountError::TooLarge),
            c => Ok(c),
        };
    }
    // Say why: too many decimals, or a number too big to hold, or not a number at all.
    let plain = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match text.split_once('.') {
        Some((whole, frac)) if plain(whole) && plain(frac) && frac.len() > 2 => {
            Err(AmountError::TooPrecise)
        }
        Some((whole, frac)) if plain(whole) && (frac.is_empty() || plain(frac)) => {
            if frac.is_empty() {
                Err(AmountError::NotANumber)
            } else {
                Err(AmountError::TooLarge)
            }
        }
        None if plain(text) => Err(AmountError::TooLarge),
        _ => Err(AmountError::NotANumber),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons() {
        assert_eq!(parse_amount(" 12.5 "), Ok(Cents(1250)));
        assert_eq!(parse_amount("1."), Err(AmountError::NotANumber));
        assert_eq!(
            parse_amount("99999999999999999999"),
            Err(AmountError::TooLarge)
        );
    }
}

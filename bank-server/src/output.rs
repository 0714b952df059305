//! The bank's stdout contract (as the BIBIFI bank): one JSON summary line per completed
//! transaction, `protocol_error` when a session breaks the protocol, `created` on first start.

use std::io::Write as _;
use std::sync::{Arc, Mutex};

use protocol::bibifi::{summary_line, SummaryField};
use protocol::Cents;

/// Where summary lines go.
#[derive(Clone, Debug, Default)]
pub enum Output {
    /// Standard output, flushed per line (the binary).
    #[default]
    Stdout,
    /// Kept in memory (tests that run several banks in one process).
    Memory(Arc<Mutex<Vec<String>>>),
}

impl Output {
    /// A fresh in-memory output and a handle to read it.
    pub fn memory() -> (Self, Arc<Mutex<Vec<String>>>) {
        let lines = Arc::new(Mutex::new(Vec::new()));
        (Self::Memory(lines.clone()), lines)
    }

    /// Writes one line.
    pub fn line(&self, line: &str) {
        match self {
            Self::Stdout => {
                let mut out = std::io::stdout().lock();
                // A closed stdout must not take the bank down.
                let _ = writeln!(out, "{line}").and_then(|()| out.flush());
            }
            Self::Memory(lines) => lines
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(line.to_owned()),
        }
    }

    /// `{"account":"<name>","<field>":<amount>}` with the amount as an exact JSON number
    /// ([`protocol::bibifi::summary_line`], the line the `atm` prints too).
    pub fn summary(&self, account: &str, field: SummaryField, amount: Cents) {
        self.line(&summary_line(account, field, amount));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_lines_match_the_bibifi_format() {
        let (out, lines) = Output::memory();
        out.summary("bob", SummaryField::Deposit, Cents(1250));
        out.summary("bob", SummaryField::InitialBalance, Cents(100_000));
        out.summary("bob", SummaryField::Withdraw, Cents(6310));
        assert_eq!(
            *lines.lock().unwrap(),
            [
                r#"{"account":"bob","deposit":12.5}"#,
                r#"{"account":"bob","initial_balance":1000}"#,
                r#"{"account":"bob","withdraw":63.1}"#
            ]
        );
    }
}

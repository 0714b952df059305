//! The bank's stdout contract (as the BIBIFI bank): one JSON summary line per completed
//! transaction, `protocol_error` when a session breaks the protocol, `created` on first start.

use std::io::Write as _;
use std::sync::{Arc, Mutex};

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

    /// `{"account":"<name>","<field>":<amount>}` with the amount as an exact JSON number.
    pub fn summary(&self, account: &str, field: &str, amount: Cents) {
        let name = serde_json::to_string(account).expect("strings serialize");
        self.line(&format!(
            "{{\"account\":{name},\"{field}\":{}}}",
            amount.to_json_number()
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_lines_match_the_bibifi_format() {
        let (out, lines) = Output::memory();
        out.summary("bob", "deposit", Cents(1250));
        out.summary("bob", "initial_balance", Cents(100_000));
        out.summary("bob", "withdraw", Cents(6310));
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

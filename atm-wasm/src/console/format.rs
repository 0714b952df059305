//! Exact display helpers for the console: money from integer cents with thousands separators,
//! clock times, the per-minute chart's bars, the chain status line and the one-time enrollment
//! texts of a new terminal. No floats, no clock: times come with their UTC offset.

use protocol::console::ChainStatus;
use protocol::{BankPin, Psk, TerminalId};
use zeroize::Zeroizing;

/// `$1,234.50` from cents, exact for every `u128`.
pub fn money(cents: u128) -> String {
    let units = (cents / 100).to_string();
    let mut grouped = String::with_capacity(units.len() + units.len() / 3 + 4);
    for (i, digit) in units.chars().enumerate() {
        if i > 0 && (units.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    format!("${grouped}.{:02}", cents % 100)
}

/// `HH:MM:SS` of a Unix time in milliseconds, shifted by `offset_minutes` east of UTC (the
/// browser's local time passes its own offset).
pub fn clock(ms: u64, offset_minutes: i64) -> String {
    const DAY: i64 = 24 * 3600;
    let secs = i64::try_from(ms / 1000).unwrap_or(i64::MAX);
    let local = secs.saturating_add(offset_minutes.saturating_mul(60));
    let of_day = local.rem_euclid(DAY);
    format!(
        "{:02}:{:02}:{:02}",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60
    )
}

/// The chart's size in SVG units.
pub const CHART_W: u32 = 600;
/// The chart's height in SVG units.
pub const CHART_H: u32 = 120;

/// One bar of the transactions-per-minute chart, in integer SVG units.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bar {
    /// Left edge.
    pub x: u32,
    /// Top edge.
    pub y: u32,
    /// Width.
    pub width: u32,
    /// Height (0 for an empty minute).
    pub height: u32,
    /// Transactions in that minute.
    pub count: u32,
}

/// Bars for `per_minute` (oldest first), scaled so the busiest minute fills the height.
pub fn chart_bars(per_minute: &[u32]) -> Vec<Bar> {
    let n = u32::try_from(per_minute.len()).unwrap_or(u32::MAX).max(1);
    let slot = (CHART_W / n).max(1);
    let width = slot.saturating_sub(2).max(1);
    let max = u64::from(per_minute.iter().copied().max().unwrap_or(0).max(1));
    per_minute
        .iter()
        .zip(0u32..)
        .map(|(&count, i)| {
            let scaled = u64::from(count) * u64::from(CHART_H) / max;
            // A busy minute never disappears under rounding.
            let height = u32::try_from(scaled)
                .unwrap_or(CHART_H)
                .max(u32::from(count > 0));
            Bar {
                x: i * slot + 1,
                y: CHART_H - height,
                width,
                height,
                count,
            }
        })
        .collect()
}

/// The hour's total.
pub fn chart_total(per_minute: &[u32]) -> u64 {
    per_minute.iter().map(|&c| u64::from(c)).sum()
}

/// `("linked", "Chain intact: 42 entries linked")` or `("broken", "Broken at entry 7: …")`.
pub fn chain_line(chain: &ChainStatus) -> (&'static str, String) {
    match chain {
        ChainStatus::Linked { entries: 1 } => ("linked", "Chain intact: 1 entry linked".into()),
        ChainStatus::Linked { entries } => {
            ("linked", format!("Chain intact: {entries} entries linked"))
        }
        ChainStatus::Broken { entry, problem } => {
            ("broken", format!("Broken at entry {entry}: {problem}"))
        }
    }
}

/// The web enrollment link for a new terminal of the bank pinned by `bank`:
/// `{origin}/#terminal={id}&key={hex}&bank={bank id}:{hex}` ([`protocol::link`]).
pub fn enrollment_link(
    origin: &str,
    terminal: &TerminalId,
    key: &Psk,
    bank: &BankPin,
) -> Zeroizing<String> {
    protocol::link::format(origin, protocol::link::LinkPage::Atm, terminal, key, bank)
}

/// The native ATM's auth-file line: `{"terminal_id":"…","psk":"…","bank":"…"}`
/// ([`protocol::auth_file`]).
pub fn auth_line(terminal: &TerminalId, key: &Psk, bank: &BankPin) -> Zeroizing<String> {
    protocol::auth_file::line(terminal, key, bank)
}

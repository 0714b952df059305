//! Latency samples and the per-run summary (what a run reports, as JSON and as a table row).

use serde::{Deserialize, Serialize};

/// Latency percentiles of one kind of round trip, in microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// How many samples.
    pub count: u64,
    /// Median.
    pub p50_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// 99.9th percentile.
    pub p999_us: u64,
    /// Slowest.
    pub max_us: u64,
}

impl Latency {
    /// Percentiles of `samples` (microseconds); sorts them.
    pub fn of(samples: &mut [u32]) -> Self {
        if samples.is_empty() {
            return Self::default();
        }
        samples.sort_unstable();
        let at = |per_mille: usize| {
            let n = samples.len();
            // Nearest rank: the smallest sample with at least per_mille/1000 of them at or below.
            let rank = (n * per_mille).div_ceil(1000).clamp(1, n);
            u64::from(samples[rank - 1])
        };
        Self {
            count: samples.len() as u64,
            p50_us: at(500),
            p99_us: at(990),
            p999_us: at(999),
            max_us: u64::from(samples[samples.len() - 1]),
        }
    }
}

/// Latency samples in microseconds, saturating at `u32::MAX` (over an hour).
#[derive(Clone, Debug, Default)]
pub struct Samples(pub Vec<u32>);

impl Samples {
    /// Adds one sample.
    pub fn push(&mut self, elapsed: std::time::Duration) {
        self.0
            .push(u32::try_from(elapsed.as_micros()).unwrap_or(u32::MAX));
    }

    /// Appends another set.
    pub fn extend(&mut self, other: Samples) {
        self.0.extend(other.0);
    }
}

/// What one run of the generator measured.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Summary {
    /// `transactions`, `handshakes`, `password-logins`, `idle` or `echo`.
    pub mode: String,
    /// Concurrent sessions.
    pub sessions: usize,
    /// Length of the timed phase, seconds.
    pub seconds: f64,
    /// Request/response round trips completed in the timed phase (every request kind; for
    /// `echo`, echoed messages).
    pub round_trips: u64,
    /// Round trips per second.
    pub round_trips_per_sec: f64,
    /// Deposits and withdrawals acknowledged (each durable before its answer).
    pub durable_txs: u64,
    /// Durable deposits and withdrawals per second.
    pub durable_txs_per_sec: f64,
    /// Handshakes completed in the timed phase (handshake modes).
    pub handshakes: u64,
    /// Handshakes (with login and close) per second.
    pub handshakes_per_sec: f64,
    /// Latency of each round trip (transactions, echo) or of each connect+handshake.
    pub latency: Latency,
    /// Latency of each login (handshake modes).
    pub login_latency: Latency,
    /// Failed operations (transport errors, timeouts, refusals).
    pub errors: u64,
    /// Accounts whose balance was checked at the end against the sum of their acknowledged
    /// transactions.
    pub balances_checked: u64,
    /// Accounts whose balance did not match (must be 0).
    pub balance_mismatches: u64,
    /// Bytes of each message (echo mode: the size of a sealed deposit request).
    pub message_bytes: usize,
    /// Server resident memory after the run (or, for `idle`, with every session held), KiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_rss_kib: Option<u64>,
    /// Server resident memory before the sessions were opened (idle mode), KiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_rss_before_kib: Option<u64>,
    /// Server CPU time (user + system) spent during the timed phase, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_cpu_secs: Option<f64>,
    /// The generator's own CPU time (this process, user + system) during the timed phase,
    /// seconds: beside the floor's, it shows whether the floor measured the server or the
    /// generator (a generator near one core per second of run is the limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator_cpu_secs: Option<f64>,
}

impl Summary {
    /// `true` when the run had no errors and every checked balance matched.
    pub fn clean(&self) -> bool {
        self.errors == 0 && self.balance_mismatches == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let mut samples: Vec<u32> = (1..=1000).collect();
        let l = Latency::of(&mut samples);
        assert_eq!(
            (l.count, l.p50_us, l.p99_us, l.p999_us, l.max_us),
            (1000, 500, 990, 999, 1000)
        );
        let mut one = vec![7];
        assert_eq!(Latency::of(&mut one).p999_us, 7);
        assert_eq!(Latency::of(&mut []).count, 0);
    }
}

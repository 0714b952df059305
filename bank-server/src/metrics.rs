//! The bank's Prometheus metrics: the typed metric families (sessions, handshakes, requests
//! by kind and outcome, latencies, group-commit batches and flushes, storage health,
//! checkpoint lag) and the `GET /metrics` listener that serves them in the OpenMetrics text
//! format, on an address of its own (`--metrics-listen`), never the public one.
//!
//! The metrics are the process's (one bank per process): the counters live in one registry
//! for the process's lifetime, as Prometheus expects of a target. Every label comes from a
//! bounded set the bank defines (a request kind, an error code, an outcome); no account,
//! user or terminal ever appears in a label.

use std::sync::OnceLock;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::{Bank, Shared};

/// The content type of the OpenMetrics text exposition the crate writes (Prometheus reads it).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// One label pair: a fixed name and a value from a bounded set.
type Label = (&'static str, &'static str);

/// How a handshake ended, as the `outcome` label of `bank_handshakes_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Handshake {
    /// Completed: a terminal's session or an enrollment opened.
    Ok,
    /// Refused: the protocol failed (wrong key, unknown terminal, timeout) or the storage did.
    Refused,
    /// The peer left (or the bank began shutting down) before it completed.
    Abandoned,
}

impl Handshake {
    fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Refused => "refused",
            Self::Abandoned => "abandoned",
        }
    }
}

/// Every metric the bank exports, and the registry that encodes them.
pub(crate) struct Metrics {
    registry: Registry,
    sessions: Gauge,
    handshakes: Family<[Label; 1], Counter>,
    requests: Family<[Label; 2], Counter>,
    request_seconds: Family<[Label; 1], Histogram>,
    commit_batch: Histogram,
    flush_seconds: Histogram,
    storage_healthy: Gauge,
    checkpoint_lag: Gauge,
}

/// The process's metrics.
pub(crate) fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

/// Latency buckets from 0.1 ms to about 1.6 s (doubling).
fn seconds_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.0001, 2.0, 15)
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::default();
        let sessions = Gauge::default();
        registry.register(
            "bank_sessions",
            "Open WebSocket sessions past their handshake",
            sessions.clone(),
        );
        let handshakes = Family::<[Label; 1], Counter>::default();
        registry.register(
            "bank_handshakes",
            "Handshakes by outcome (ok, refused, abandoned)",
            handshakes.clone(),
        );
        let requests = Family::<[Label; 2], Counter>::default();
        registry.register(
            "bank_requests",
            "Requests answered, by kind and outcome (ok or the error code)",
            requests.clone(),
        );
        let request_seconds = Family::<[Label; 1], Histogram>::new_with_constructor(
            (|| Histogram::new(seconds_buckets())) as fn() -> Histogram,
        );
        registry.register(
            "bank_request_seconds",
            "Time to answer a request, by kind",
            request_seconds.clone(),
        );
        let commit_batch = Histogram::new(exponential_buckets(1.0, 2.0, 10));
        registry.register(
            "bank_commit_batch_size",
            "Commits made durable by one group flush",
            commit_batch.clone(),
        );
        let flush_seconds = Histogram::new(seconds_buckets());
        registry.register(
            "bank_flush_seconds",
            "Time of one group flush (sled: fdatasync and checkpoint; PostgreSQL: the checkpoint)",
            flush_seconds.clone(),
        );
        let storage_healthy = Gauge::default();
        registry.register(
            "bank_storage_healthy",
            "1 while the storage takes writes, 0 once a write failed or while the database is out of reach",
            storage_healthy.clone(),
        );
        let checkpoint_lag = Gauge::default();
        registry.register(
            "bank_checkpoint_lag_entries",
            "Audit entries this process appended that no checkpoint covers yet",
            checkpoint_lag.clone(),
        );
        Self {
            registry,
            sessions,
            handshakes,
            requests,
            request_seconds,
            commit_batch,
            flush_seconds,
            storage_healthy,
            checkpoint_lag,
        }
    }

    /// A session passed its handshake (until [`Self::session_closed`]).
    pub(crate) fn session_opened(&self) {
        self.sessions.inc();
    }

    /// A session counted by [`Self::session_opened`] ended.
    pub(crate) fn session_closed(&self) {
        self.sessions.dec();
    }

    /// A handshake ended so.
    pub(crate) fn handshake(&self, outcome: Handshake) {
        self.handshakes
            .get_or_create(&[("outcome", outcome.as_str())])
            .inc();
    }

    /// A request of `kind` was answered with `outcome` (`ok` or an error code) in `took`.
    pub(crate) fn request(&self, kind: &'static str, outcome: &'static str, took: Duration) {
        self.requests
            .get_or_create(&[("kind", kind), ("outcome", outcome)])
            .inc();
        self.request_seconds
            .get_or_create(&[("kind", kind)])
            .observe(took.as_secs_f64());
    }

    /// One group flush made `commits` commits durable in `took`.
    pub(crate) fn flushed(&self, commits: u64, took: Duration) {
        // Precision is not at stake: a batch is far below 2^52.
        #[allow(clippy::cast_precision_loss)]
        self.commit_batch.observe(commits as f64);
        self.flush_seconds.observe(took.as_secs_f64());
    }

    /// The exposition, with the gauges read from `shared` now.
    fn render(&self, shared: &Shared) -> Result<String, std::fmt::Error> {
        self.storage_healthy.set(i64::from(
            shared.faults.failing().is_none() && !shared.ledger.unreachable(),
        ));
        let appended = shared.ledger.chain_tip().map(|tip| tip.head().next_seq);
        if let Some(appended) = appended {
            let covered = shared.checkpoints.latest().next_seq;
            let lag = appended.saturating_sub(covered);
            self.checkpoint_lag
                .set(i64::try_from(lag).unwrap_or(i64::MAX));
        }
        let mut text = String::new();
        encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

/// `GET /metrics`: the OpenMetrics text exposition.
async fn scrape(State(bank): State<Bank>) -> Response {
    match metrics().render(&bank.shared) {
        Ok(text) => (
            [
                (header::CONTENT_TYPE, CONTENT_TYPE),
                (header::CACHE_CONTROL, "no-store"),
            ],
            text,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// The metrics listener's router: `GET /metrics` and nothing else (404).
pub fn metrics_app(bank: Bank) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .with_state(bank)
}

/// Serves `GET /metrics` of `bank` on `listener` (plain HTTP; bind it to 127.0.0.1 or an
/// internal network) until the bank shuts down. Run it beside [`crate::serve`] or
/// [`crate::serve_with_console`].
pub async fn serve_metrics(listener: tokio::net::TcpListener, bank: Bank) -> std::io::Result<()> {
    let stop = bank.shared.shutdown.clone();
    axum::serve(listener, metrics_app(bank))
        .with_graceful_shutdown(stop.cancelled_owned())
        .await
}

//! HTTP routes: the WebSocket upgrade at `/ws` (host and origin checks, session limit, size
//! limits), `/healthz` (503 once the storage fails), and the web ATM's static files, behind
//! the host check and the security headers of every response.

mod assets;
mod headers;
mod hosts;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use tower_http::compression::{CompressionLayer, CompressionLevel};

pub use hosts::{PublicUrl, PublicUrlError};

use crate::listener::Peer;
use crate::{session, Bank};
use hosts::AllowedHosts;

/// Brotli's default quality (11) takes seconds for the wasm; 5 is close in size and fast.
const COMPRESSION_QUALITY: i32 = 5;

/// The bank's router for a bank listening on `local` (the host check allows its address):
/// `/ws`, `/healthz`, and static files from the configured web root.
pub fn app(bank: Bank, local: SocketAddr) -> Router {
    let config = &bank.shared.config;
    let hosts = AllowedHosts::new(
        local,
        config.tls.is_some(),
        config.public_url.clone(),
        config.allowed_origins.clone(),
    );
    let files = Arc::new(assets::Assets::new(config.web_root.clone()));
    let policy = Arc::new(headers::Policy::new(
        hosts.clone(),
        &config.web_root.join("index.html"),
    ));
    let static_files = Router::new()
        .fallback(assets::serve)
        .layer(CompressionLayer::new().quality(CompressionLevel::Precise(COMPRESSION_QUALITY)))
        .with_state(files);
    let hosts = Arc::new(hosts);
    Router::new()
        .route("/ws", get(upgrade).layer(Extension(hosts.clone())))
        .route("/healthz", get(health))
        .with_state(bank)
        .fallback_service(static_files)
        .layer(middleware::from_fn_with_state(hosts, check_host))
        .layer(middleware::from_fn_with_state(policy, headers::secure))
}

/// DNS rebinding: a request for a host the bank does not answer to gets 421.
async fn check_host(State(hosts): State<Arc<AllowedHosts>>, req: Request, next: Next) -> Response {
    if hosts.host(req.uri(), req.headers()).is_none() {
        tracing::debug!(host = ?req.headers().get(header::HOST), "request for an unknown host refused");
        return (StatusCode::MISDIRECTED_REQUEST, "unknown host\n").into_response();
    }
    next.run(req).await
}

/// `200 ok`, or `503 storage failing` once a write to the storage has failed (the detail is in
/// the log; the bank stops shortly after).
async fn health(State(bank): State<Bank>) -> Response {
    if bank.shared.faults.failing().is_some() {
        return (StatusCode::SERVICE_UNAVAILABLE, "storage failing\n").into_response();
    }
    "ok\n".into_response()
}

/// Bytes read from a WebSocket at a time. tungstenite's default (128 KiB) is zero-filled and
/// so resident for every open session: 10,000 idle sessions held 1.4 GB. Records are a few
/// hundred bytes; a larger message (up to `MAX_RECORD_LEN`) is simply read in several steps.
pub const READ_BUFFER_SIZE: usize = 4096;

async fn upgrade(
    State(bank): State<Bank>,
    Extension(hosts): Extension<Arc<AllowedHosts>>,
    peer: Option<Extension<ConnectInfo<Peer>>>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let shared = bank.shared;
    let from = peer.as_ref().map(|Extension(ConnectInfo(p))| p.addr);
    if !hosts.origin_allowed(&headers) {
        tracing::warn!(origin = ?headers.get(header::ORIGIN), ?from, "WebSocket from a foreign origin refused");
        return (StatusCode::FORBIDDEN, "origin not allowed\n").into_response();
    }
    if shared.shutdown.is_cancelled() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response();
    }
    if shared.faults.failing().is_some() {
        return (StatusCode::SERVICE_UNAVAILABLE, "storage failing\n").into_response();
    }
    let Ok(permit) = shared.sessions.clone().try_acquire_owned() else {
        tracing::warn!(?from, "session limit reached; refusing a connection");
        return (StatusCode::SERVICE_UNAVAILABLE, "busy\n").into_response();
    };
    let conn = shared.next_conn.fetch_add(1, Ordering::Relaxed);
    // The request head is in: the listener's WebSocket deadline applies from here.
    if let Some(Extension(ConnectInfo(peer))) = peer {
        peer.state.mark_upgraded();
    }
    tracing::debug!(conn, ?from, "WebSocket upgrade");
    let tracker = shared.tracker.clone();
    ws.max_message_size(protocol::MAX_RECORD_LEN)
        .max_frame_size(protocol::MAX_RECORD_LEN)
        .read_buffer_size(READ_BUFFER_SIZE)
        .on_upgrade(move |socket| tracker.track_future(session::run(shared, socket, conn, permit)))
}

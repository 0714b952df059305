//! HTTP routes: the WebSocket upgrade at `/ws` (origin check, session limit, size limits),
//! `/healthz` (503 once the storage fails), and the web ATM's static files with an
//! `index.html` fallback.

use std::sync::atomic::Ordering;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use tower_http::services::{ServeDir, ServeFile};

use crate::listener::Peer;
use crate::{session, Bank};

const NOT_BUILT: &str =
    "<!doctype html><html><head><meta charset=\"utf-8\"><title>Bank</title></head>\
<body><h1>The bank is running</h1><p>The web ATM is not built. Build it (see the README) and \
restart the bank with <code>--web-root</code> pointing at it.</p></body></html>";

/// The bank's router: `/ws`, `/healthz`, and static files from the configured web root.
pub fn app(bank: Bank) -> Router {
    let web_root = bank.shared.config.web_root.clone();
    let index = web_root.join("index.html");
    let router = Router::new()
        .route("/ws", get(upgrade))
        .route("/healthz", get(health));
    let router = if index.is_file() {
        router.fallback_service(ServeDir::new(&web_root).fallback(ServeFile::new(index)))
    } else {
        router.fallback(|| async { Html(NOT_BUILT) })
    };
    router.with_state(bank)
}

/// `200 ok`, or `503 storage failing` once a write to the storage has failed (the detail is in
/// the log; the bank stops shortly after).
async fn health(State(bank): State<Bank>) -> Response {
    if bank.shared.faults.failing().is_some() {
        return (StatusCode::SERVICE_UNAVAILABLE, "storage failing\n").into_response();
    }
    "ok\n".into_response()
}

/// Browsers always send `Origin`; native clients do not. Allowed: no `Origin`, the bank's own
/// origin (same host and port as the `Host` header), or one on the allow-list.
fn origin_allowed(headers: &HeaderMap, allowed: &[String]) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    if allowed
        .iter()
        .any(|a| a == "*" || a.trim_end_matches('/').eq_ignore_ascii_case(origin))
    {
        return true;
    }
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let origin_host = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    matches!((origin_host, host), (Some(o), Some(h)) if o.eq_ignore_ascii_case(h))
}

/// Bytes read from a WebSocket at a time. tungstenite's default (128 KiB) is zero-filled and
/// so resident for every open session: 10,000 idle sessions held 1.4 GB. Records are a few
/// hundred bytes; a larger message (up to `MAX_RECORD_LEN`) is simply read in several steps.
pub const READ_BUFFER_SIZE: usize = 4096;

async fn upgrade(
    State(bank): State<Bank>,
    peer: Option<Extension<ConnectInfo<Peer>>>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let shared = bank.shared;
    let from = peer.as_ref().map(|Extension(ConnectInfo(p))| p.addr);
    if !origin_allowed(&headers, &shared.config.allowed_origins) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(origin: Option<&str>, host: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_str(host).unwrap());
        if let Some(o) = origin {
            h.insert(header::ORIGIN, HeaderValue::from_str(o).unwrap());
        }
        h
    }

    #[test]
    fn origins() {
        let none: Vec<String> = vec![];
        assert!(origin_allowed(&headers(None, "127.0.0.1:8765"), &none));
        assert!(origin_allowed(
            &headers(Some("http://127.0.0.1:8765"), "127.0.0.1:8765"),
            &none
        ));
        assert!(!origin_allowed(
            &headers(Some("http://evil.example"), "127.0.0.1:8765"),
            &none
        ));
        assert!(!origin_allowed(
            &headers(Some("null"), "127.0.0.1:8765"),
            &none
        ));
        let list = vec!["http://localhost:8080".to_owned()];
        assert!(origin_allowed(
            &headers(Some("http://localhost:8080"), "127.0.0.1:8765"),
            &list
        ));
    }
}

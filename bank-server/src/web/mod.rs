//! HTTP routes: the WebSocket upgrade at `/ws` (host and origin checks, session limit, size
//! limits), `/healthz` (503 once the storage fails, or while the database is out of reach),
//! and the web ATM's static files, behind the host check and the security headers of every
//! response; per [`Site`], the customer pages, the bank console, or both on one origin.

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
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Extension, Router};
use tower_http::compression::{CompressionLayer, CompressionLevel};

pub use crate::site::Site;
pub use hosts::{PublicUrl, PublicUrlError};

use crate::listener::Peer;
use crate::{session, Bank};
use hosts::AllowedHosts;

/// The console's page.
const CONSOLE: &str = "/console";

/// Whether `path` shows the console: the web app renders it for every path that starts with
/// `/console`.
fn is_console(path: &str) -> bool {
    path.starts_with(CONSOLE)
}

/// Brotli's default quality (11) takes seconds for the wasm; 5 is close in size and fast.
const COMPRESSION_QUALITY: i32 = 5;

/// The bank's router for a bank listening on `local` (the host check allows its address):
/// `/ws`, `/healthz`, and static files from the configured web root, the console's page
/// among them ([`Site::Shared`]).
pub fn app(bank: Bank, local: SocketAddr) -> Router {
    app_for(bank, local, Site::Shared)
}

/// The router of one listener on `local` serving `site`. The console's listener answers to
/// its own address and [`crate::Config::console_public_url`] only (no `--allow-origin`).
pub fn app_for(bank: Bank, local: SocketAddr, site: Site) -> Router {
    router(bank, local, site, None)
}

/// The console's listener on `local`, for a bank whose web ATM listens on `atm`: the console
/// page learns the web ATM's URL (for the enrollment links it shows) at
/// [`protocol::link::ATM_URL_PATH`].
pub fn console_app(bank: Bank, local: SocketAddr, atm: SocketAddr) -> Router {
    router(bank, local, Site::Console, Some(atm))
}

fn router(bank: Bank, local: SocketAddr, site: Site, atm: Option<SocketAddr>) -> Router {
    let config = &bank.shared.config;
    let hosts = match site {
        Site::Console => AllowedHosts::new(
            local,
            config.tls.is_some(),
            config.console_public_url.clone(),
            Vec::new(),
        ),
        Site::Shared | Site::Customer => AllowedHosts::new(
            local,
            config.tls.is_some(),
            config.public_url.clone(),
            config.allowed_origins.clone(),
        ),
    };
    let files = Arc::new(assets::Assets::new(config.web_root.clone()));
    let policy = Arc::new(headers::Policy::new(
        hosts.clone(),
        &config.web_root.join("index.html"),
    ));
    let static_files = Router::new()
        .fallback(assets::serve)
        .layer(CompressionLayer::new().quality(CompressionLevel::Precise(COMPRESSION_QUALITY)))
        .with_state(files)
        .layer(middleware::from_fn_with_state(site, pages));
    let hosts = Arc::new(hosts);
    let atm_url = AtmUrl {
        public: config
            .public_url
            .as_ref()
            .map(|url| url.as_str().to_owned()),
        port: atm.map(|addr| addr.port()),
        hosts: hosts.clone(),
    };
    let mut routes = Router::new()
        .route("/ws", get(upgrade).layer(Extension((hosts.clone(), site))))
        .route("/healthz", get(health));
    if site == Site::Console {
        routes = routes.route(
            protocol::link::ATM_URL_PATH,
            get(atm_url_text).layer(Extension(Arc::new(atm_url))),
        );
    }
    routes
        .with_state(bank)
        .fallback_service(static_files)
        .layer(middleware::from_fn_with_state(hosts, check_host))
        .layer(middleware::from_fn_with_state(policy, headers::secure))
}

/// Which pages a site has: the customer's listener has no console (404), the console's
/// leads every page that is not the console's (`/`, `/index.html`, the ATM's routes) to it.
async fn pages(State(site): State<Site>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    match site {
        Site::Customer if is_console(path) => StatusCode::NOT_FOUND.into_response(),
        Site::Console
            if !is_console(path)
                && (path == "/index.html"
                    || !path.rsplit('/').next().unwrap_or_default().contains('.')) =>
        {
            Redirect::to(CONSOLE).into_response()
        }
        _ => next.run(req).await,
    }
}

/// Where the web ATM is, as the console's page asks it: the customer's `--public-url`, else
/// the host the console was reached at with the web ATM's port.
struct AtmUrl {
    public: Option<String>,
    port: Option<u16>,
    hosts: Arc<AllowedHosts>,
}

/// The web ATM's URL (no trailing `/`), as text: the base of the enrollment links the console
/// shows. 404 when this bank has no web ATM listener of its own to name.
async fn atm_url_text(Extension(atm): Extension<Arc<AtmUrl>>, req: Request) -> Response {
    let url = match (&atm.public, atm.port) {
        (Some(public), _) => Some(public.clone()),
        (None, Some(port)) => atm.hosts.origin_at(req.uri(), req.headers(), port),
        (None, None) => None,
    };
    match url {
        Some(url) => (
            [
                (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            url,
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
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
    if bank.shared.ledger.unreachable() {
        return (StatusCode::SERVICE_UNAVAILABLE, "database unreachable\n").into_response();
    }
    "ok\n".into_response()
}

/// Bytes read from a WebSocket at a time, and the read buffer's first size. tungstenite's
/// default (128 KiB) is zero-filled and so resident for every open session: 10,000 idle
/// sessions held 1.4 GB. tungstenite 0.29 doubles the buffer when it compacts it, so an idle
/// session's buffer ended at 16 KiB from 4 KiB (heaptrack); from 1 KiB, 10,000 idle sessions
/// hold about 8 KB less each. Records are a few hundred bytes; a larger message (up to
/// `MAX_RECORD_LEN`) is simply read in several steps.
pub const READ_BUFFER_SIZE: usize = 1024;

async fn upgrade(
    State(bank): State<Bank>,
    Extension((hosts, site)): Extension<(Arc<AllowedHosts>, Site)>,
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
        .on_upgrade(move |socket| {
            tracker.track_future(session::run(shared, socket, conn, permit, site))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_console_is_every_path_the_app_renders_it_for() {
        assert!(is_console("/console"));
        assert!(is_console("/console/"));
        assert!(is_console("/console/x"));
        assert!(is_console("/consoles"));
        assert!(!is_console("/"));
        assert!(!is_console("/x/console"));
    }
}

//! Serving the web ATM: the security headers of every response, caching, 404 for missing
//! assets, compression, and the host and origin checks against DNS rebinding.

mod common;

use std::io::Read as _;
use std::path::Path;

use base64::Engine as _;
use common::*;
use sha2::{Digest as _, Sha256};

const INLINE: &str = "\nimport init from '/atm-wasm-0123456789abcdef.js';\nawait init();\n";
const JS: &str = "/atm-wasm-0123456789abcdef.js";
const WASM: &str = "/atm-wasm-0123456789abcdef_bg.wasm";

/// A web root like trunk's: an index with an inline bootstrap script and hashed assets.
fn web_root(dir: &Path) -> std::path::PathBuf {
    let web = dir.join("dist");
    std::fs::create_dir_all(&web).unwrap();
    std::fs::write(
        web.join("index.html"),
        format!("<!doctype html><html><head><script type=\"module\">{INLINE}</script></head><body>web atm index</body></html>"),
    )
    .unwrap();
    std::fs::write(
        web.join(&JS[1..]),
        "export default function init() {}\n".repeat(50),
    )
    .unwrap();
    std::fs::write(web.join(&WASM[1..]), wasm_bytes()).unwrap();
    web
}

fn wasm_bytes() -> Vec<u8> {
    let mut bytes = b"\0asm\x01\0\0\0".to_vec();
    for i in 0..20_000u32 {
        bytes.extend_from_slice(&(i % 97).to_le_bytes());
    }
    bytes
}

async fn bank_with_web(dir: &Path) -> TestBank {
    let mut config = config(dir);
    config.web_root = web_root(dir);
    TestBank::start(config).await
}

const HTML: &str = "Accept: text/html,application/xhtml+xml";
const UPGRADE: [&str; 4] = [
    "Upgrade: websocket",
    "Connection: Upgrade",
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
    "Sec-WebSocket-Version: 13",
];

fn upgrade_with(origin: &str) -> Vec<String> {
    let mut lines: Vec<String> = UPGRADE.iter().map(|s| (*s).to_owned()).collect();
    lines.push(format!("Origin: {origin}"));
    lines
}

/// Checks the headers every answer carries whatever the listener (the CSP's fixed directives,
/// nosniff, no referrer, no framing, same-origin opener, the Permissions-Policy); returns
/// the CSP.
fn assert_security_headers<'a>(reply: &'a HttpReply, path: &str) -> &'a str {
    let csp = reply.header("content-security-policy").unwrap_or_default();
    for directive in [
        "default-src 'none'",
        "style-src 'self'",
        "img-src 'self' data:",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ] {
        assert!(
            csp.contains(directive),
            "{path}: {directive} missing in {csp}"
        );
    }
    for (name, value) in [
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        ("x-frame-options", "DENY"),
        ("cross-origin-opener-policy", "same-origin"),
    ] {
        assert_eq!(reply.header(name), Some(value), "{path}: {name}");
    }
    assert!(
        reply
            .header("permissions-policy")
            .is_some_and(|p| p.contains("camera=()")),
        "{path}"
    );
    csp
}

async fn get(bank: &TestBank, path: &str, extra: &[&str]) -> HttpReply {
    http_request(&bank.addr, &bank.addr, path, extra).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_carries_the_security_headers() {
    let dir = temp();
    let bank = bank_with_web(dir.path()).await;
    let hash = format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(Sha256::digest(INLINE))
    );
    let own = format!("http://{}", bank.addr);
    let upgrade = upgrade_with(&own);
    let upgrade: Vec<&str> = upgrade.iter().map(String::as_str).collect();
    let cases: [(&str, Vec<&str>, u16, &str); 7] = [
        ("/", vec![HTML], 200, "no-cache"),
        ("/index.html", vec![HTML], 200, "no-cache"),
        ("/deposit", vec![HTML], 200, "no-cache"),
        (JS, vec![], 200, "public, max-age=31536000, immutable"),
        ("/nonexistent.wasm", vec![HTML], 404, "no-store"),
        ("/healthz", vec![], 200, "no-store"),
        ("/ws", upgrade, 101, "no-store"),
    ];
    for (path, extra, status, cache) in cases {
        let reply = get(&bank, path, &extra).await;
        assert_eq!(reply.status, status, "{path}: {reply:?}");
        let csp = assert_security_headers(&reply, path);
        assert!(
            csp.contains(&format!("script-src 'self' 'wasm-unsafe-eval' {hash}")),
            "{path}: {csp}"
        );
        assert!(
            csp.contains(&format!("connect-src 'self' ws://{}", bank.addr)),
            "{path}: {csp}"
        );
        assert_eq!(reply.header("cache-control"), Some(cache), "{path}");
        // Plain HTTP: no HSTS (it would be ignored, and it belongs to the TLS origin).
        assert_eq!(reply.header("strict-transport-security"), None, "{path}");
    }
    bank.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_assets_are_404_and_only_page_navigations_get_the_index() {
    let dir = temp();
    let bank = bank_with_web(dir.path()).await;
    for (path, extra) in [
        ("/nonexistent.wasm", vec![HTML]),
        ("/x.js", vec![]),
        ("/x.js", vec![HTML]),
        // A fetch (not a page load) of an app route is not a navigation.
        ("/deposit", vec!["Accept: application/json"]),
        ("/deposit", vec![]),
        // A console sharing the web ATM's origin asks where the web ATM is and must get 404
        // (it then keeps its own origin), not the page.
        (protocol::link::ATM_URL_PATH, vec!["Accept: */*"]),
    ] {
        let reply = get(&bank, path, &extra).await;
        assert_eq!(reply.status, 404, "{path} {extra:?}");
        assert_eq!(reply.header("cache-control"), Some("no-store"), "{path}");
        assert!(!String::from_utf8_lossy(&reply.body).contains("web atm index"));
    }
    let page = get(&bank, "/console", &[HTML]).await;
    assert_eq!(page.status, 200);
    assert!(String::from_utf8_lossy(&page.body).contains("web atm index"));
    let wasm = get(&bank, WASM, &[]).await;
    assert_eq!(wasm.status, 200);
    assert_eq!(wasm.header("content-type"), Some("application/wasm"));
    assert_eq!(wasm.body, wasm_bytes());
    bank.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assets_are_compressed_when_the_client_accepts_it() {
    let dir = temp();
    let bank = bank_with_web(dir.path()).await;
    let gzip = get(&bank, WASM, &["Accept-Encoding: gzip"]).await;
    assert_eq!(gzip.status, 200);
    assert_eq!(gzip.header("content-encoding"), Some("gzip"));
    assert_eq!(gzip.header("vary"), Some("accept-encoding"));
    assert!(
        gzip.body.len() < wasm_bytes().len() / 4,
        "{}",
        gzip.body.len()
    );
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(&gzip.body[..])
        .read_to_end(&mut plain)
        .unwrap();
    assert_eq!(plain, wasm_bytes());

    let br = get(&bank, JS, &["Accept-Encoding: gzip, deflate, br"]).await;
    assert_eq!(br.header("content-encoding"), Some("br"));
    let mut plain = Vec::new();
    brotli::Decompressor::new(&br.body[..], 4096)
        .read_to_end(&mut plain)
        .unwrap();
    assert_eq!(
        plain,
        "export default function init() {}\n"
            .repeat(50)
            .into_bytes()
    );
    assert_eq!(
        br.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );

    let index = get(&bank, "/", &[HTML, "Accept-Encoding: br"]).await;
    assert_eq!(index.header("content-encoding"), Some("br"));

    let identity = get(&bank, WASM, &[]).await;
    assert_eq!(identity.header("content-encoding"), None);
    assert_eq!(identity.header("vary"), Some("accept-encoding"));
    assert_eq!(identity.body, wasm_bytes());
    bank.stop().await;
}

/// DNS rebinding: `evil.example` resolving to the bank. The bank must not answer for that
/// host, and its page's origin must not open a WebSocket (before, an Origin equal to the
/// request's own Host was accepted, whatever the host).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebound_host_and_its_origin_are_refused() {
    let dir = temp();
    let mut config = config(dir.path());
    config.web_root = web_root(dir.path());
    config.public_url = Some(bank_server::PublicUrl::parse("https://bank.example").unwrap());
    let bank = TestBank::start(config).await;
    let port = bank.addr.rsplit(':').next().unwrap().to_owned();
    let evil = format!("evil.example:{port}");
    let foreign = upgrade_with(&format!("http://{evil}"));
    let foreign: Vec<&str> = foreign.iter().map(String::as_str).collect();
    let rebound = http_request(&bank.addr, &evil, "/ws", &foreign).await;
    assert_eq!(rebound.status, 421, "{rebound:?}");
    assert_eq!(rebound.header("cache-control"), Some("no-store"));
    assert_eq!(
        http_request(&bank.addr, &evil, "/", &[HTML]).await.status,
        421
    );
    assert_eq!(
        http_request(&bank.addr, &evil, "/healthz", &[])
            .await
            .status,
        421
    );
    // The bank's own host, but the page came from elsewhere.
    let from_evil = http_request(&bank.addr, &bank.addr, "/ws", &foreign).await;
    assert_eq!(from_evil.status, 403, "{from_evil:?}");
    // The allowed hosts: the listening address, localhost, the public URL's host.
    let localhost = format!("localhost:{port}");
    for (host, origin) in [
        (bank.addr.as_str(), format!("http://{}", bank.addr)),
        (localhost.as_str(), format!("http://{localhost}")),
        ("bank.example", "https://bank.example".to_owned()),
    ] {
        let lines = upgrade_with(&origin);
        let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
        let reply = http_request(&bank.addr, host, "/ws", &lines).await;
        assert_eq!(reply.status, 101, "{host} {origin}: {reply:?}");
        assert_eq!(
            http_request(&bank.addr, host, "/healthz", &[]).await.status,
            200
        );
    }
    // The native client (no Origin) still works.
    let mut client = bank.client().await;
    let reply = client.call(&protocol::Request::Balance {}).await.unwrap();
    assert_eq!(reply, error(protocol::ErrorCode::NotLoggedIn));
    bank.stop().await;
}

/// A bank with the console on a listener of its own; the customer's and the console's public
/// URLs and an allow-listed origin for the customer pages.
async fn bank_with_console(dir: &Path) -> (TestBank, String) {
    let mut config = config(dir);
    config.web_root = web_root(dir);
    config.public_url = Some(bank_server::PublicUrl::parse("https://bank.example").unwrap());
    config.console_public_url =
        Some(bank_server::PublicUrl::parse("https://console.bank.example").unwrap());
    config.allowed_origins = vec!["http://localhost:8080".to_owned()];
    let bank = TestBank::start_with_console(config).await;
    let console = bank.console.clone().expect("a console listener");
    (bank, console)
}

/// The status of a WebSocket upgrade at `addr` for `Host: host` from `origin`.
async fn upgrade_status(addr: &str, host: &str, origin: &str) -> u16 {
    let lines = upgrade_with(origin);
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    http_request(addr, host, "/ws", &lines).await.status
}

/// The console on its own origin asks where the web ATM is, for the enrollment links it
/// shows: the customer's public URL, else the host it was reached at with the ATM's port.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_learns_where_the_web_atm_is() {
    let path = protocol::link::ATM_URL_PATH;
    let dir = temp();
    let (bank, console) = bank_with_console(dir.path()).await;
    let reply = http_request(&console, &console, path, &[]).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(String::from_utf8_lossy(&reply.body), "https://bank.example");
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    assert_security_headers(&reply, path);
    // Not a page of the customer's listener.
    assert_eq!(get(&bank, path, &[]).await.status, 404);

    // Without a public URL: the host the console was reached at, the web ATM's port.
    let dir = temp();
    let mut config = config(dir.path());
    config.web_root = web_root(dir.path());
    let bank = TestBank::start_with_console(config).await;
    let console = bank.console.clone().expect("a console listener");
    let atm_port = bank.addr.rsplit(':').next().unwrap();
    let console_port = console.rsplit(':').next().unwrap();
    for (host, expected) in [
        (console.clone(), format!("http://127.0.0.1:{atm_port}")),
        (
            format!("localhost:{console_port}"),
            format!("http://localhost:{atm_port}"),
        ),
    ] {
        let reply = http_request(&console, &host, path, &[]).await;
        assert_eq!(reply.status, 200, "{host}: {reply:?}");
        assert_eq!(String::from_utf8_lossy(&reply.body), expected, "{host}");
    }
    // A host the bank does not answer to learns nothing.
    let reply = http_request(&console, "evil.example", path, &[]).await;
    assert_eq!(reply.status, 421);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_on_its_own_listener_is_not_on_the_customers() {
    let dir = temp();
    let (bank, console) = bank_with_console(dir.path()).await;
    // The customer's listener has no console page, at any path the app would render it for.
    for path in ["/console", "/console/", "/console/terminals", "/consoles"] {
        let reply = get(&bank, path, &[HTML]).await;
        assert_eq!(reply.status, 404, "{path}: {reply:?}");
        assert_eq!(reply.header("cache-control"), Some("no-store"), "{path}");
        assert!(!String::from_utf8_lossy(&reply.body).contains("web atm index"));
    }
    assert_eq!(get(&bank, "/", &[HTML]).await.status, 200);
    assert_eq!(get(&bank, "/deposit", &[HTML]).await.status, 200);

    // The console's listener: its page and the bundle's files; every other page leads there.
    let at = |path: &'static str, extra: &'static [&'static str]| {
        let console = console.clone();
        async move { http_request(&console, &console, path, extra).await }
    };
    let page = at("/console", &[HTML]).await;
    assert_eq!(page.status, 200, "{page:?}");
    assert!(String::from_utf8_lossy(&page.body).contains("web atm index"));
    assert_eq!(page.header("cache-control"), Some("no-cache"));
    for path in ["/", "/index.html", "/deposit"] {
        let reply = at(path, &[HTML]).await;
        assert_eq!(reply.status, 303, "{path}: {reply:?}");
        assert_eq!(reply.header("location"), Some("/console"), "{path}");
    }
    let js = at(JS, &[]).await;
    assert_eq!(js.status, 200);
    assert_eq!(
        js.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    assert_eq!(at("/healthz", &[]).await.status, 200);
    assert_eq!(at("/nonexistent.wasm", &[]).await.status, 404);
    // Every answer of the console's listener carries the headers, `connect-src` its own
    // socket's origin.
    for path in ["/console", "/", JS, "/healthz", "/nonexistent.wasm"] {
        let reply = at(path, &[HTML]).await;
        let csp = assert_security_headers(&reply, path);
        assert!(
            csp.contains(&format!("connect-src 'self' ws://{console};")),
            "{path}: {csp}"
        );
    }

    // Each socket opens only for its own origin: the console's for its address and public
    // URL (never the customer's origins, the allow-listed one included), and the reverse.
    let customer = format!("http://{}", bank.addr);
    let own = format!("http://{console}");
    assert_eq!(upgrade_status(&console, &console, &own).await, 101);
    assert_eq!(
        upgrade_status(
            &console,
            "console.bank.example",
            "https://console.bank.example"
        )
        .await,
        101
    );
    for origin in [
        customer.as_str(),
        "https://bank.example",
        "http://localhost:8080",
    ] {
        assert_eq!(
            upgrade_status(&console, &console, origin).await,
            403,
            "{origin}"
        );
    }
    assert_eq!(upgrade_status(&bank.addr, &bank.addr, &customer).await, 101);
    assert_eq!(
        upgrade_status(&bank.addr, &bank.addr, "http://localhost:8080").await,
        101
    );
    for origin in [own.as_str(), "https://console.bank.example"] {
        assert_eq!(
            upgrade_status(&bank.addr, &bank.addr, origin).await,
            403,
            "{origin}"
        );
    }
    // Each listener answers for its own public host only.
    assert_eq!(
        http_request(&console, "bank.example", "/healthz", &[])
            .await
            .status,
        421
    );
    assert_eq!(
        http_request(&bank.addr, "console.bank.example", "/healthz", &[])
            .await
            .status,
        421
    );
    bank.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_listener_closes_the_other_kinds_terminals_after_the_handshake() {
    use protocol::{ErrorCode, Request, TerminalRole};
    let dir = temp();
    let (bank, console) = bank_with_console(dir.path()).await;
    let ops = bank_server::admin::add_operator(
        bank.bank.ledger(),
        &TEST_ARGON2,
        "ops",
        "operator password 1",
    )
    .unwrap();
    let ops = bank.creds(&ops.id, &ops.psk);
    // Each kind has its sessions on its own listener.
    let mut atm = bank.client().await;
    assert_eq!(
        atm.call(&Request::Balance {}).await.unwrap(),
        error(ErrorCode::NotLoggedIn)
    );
    let mut desk = atm_client::Client::connect(&console, &ops).await.unwrap();
    assert_eq!(
        desk.call(&Request::ConsoleOverview {}).await.unwrap(),
        error(ErrorCode::NotAllowed)
    );
    // On the other's: the handshake completes (only then does the bank know the kind), then
    // the generic failure close.
    for (addr, creds) in [(&console, &bank.auth), (&bank.addr, &ops)] {
        let mut crossed = atm_client::Client::connect(addr, creds)
            .await
            .expect("a real handshake");
        assert_close_code(crossed.conn(), protocol::close::FAILURE).await;
    }
    // An enrollment code for an ATM on the console's listener: closed, and the code is spent
    // (one try), with nothing enrolled.
    let (code, _) = bank_server::admin::issue_enrollment_code(
        bank.bank.ledger(),
        "lobby",
        TerminalRole::Atm,
        bank_server::ledger::DepositCeilings::DEFAULT,
    )
    .unwrap();
    assert!(atm_client::enroll(&console, &code).await.is_err());
    assert!(atm_client::enroll(&bank.addr, &code).await.is_err());
    assert_eq!(bank.bank.ledger().terminals().unwrap().len(), 2);
    let audit = bank.bank.ledger().recent_audit(100).unwrap();
    let refused: Vec<_> = audit
        .entries
        .iter()
        .filter(|(_, e)| e.action == "wrong_listener")
        .map(|(_, e)| e.detail.clone().unwrap_or_default())
        .collect();
    assert_eq!(refused.len(), 3, "{refused:?}");
    assert!(
        refused
            .iter()
            .any(|d| d.contains("Console terminal on the Customer")),
        "{refused:?}"
    );
    // Nothing for stdout's protocol_error: no one broke the protocol.
    assert!(!bank.lines().iter().any(|l| l == "protocol_error"));
    drop(atm);
    drop(desk);
    bank.stop().await;
}

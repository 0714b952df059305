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
        assert!(
            csp.contains(&format!("script-src 'self' 'wasm-unsafe-eval' {hash}")),
            "{path}: {csp}"
        );
        assert!(
            csp.contains(&format!("connect-src 'self' ws://{}", bank.addr)),
            "{path}: {csp}"
        );
        assert_eq!(
            reply.header("x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
        assert_eq!(
            reply.header("referrer-policy"),
            Some("no-referrer"),
            "{path}"
        );
        assert_eq!(
            reply.header("cross-origin-opener-policy"),
            Some("same-origin"),
            "{path}"
        );
        assert!(
            reply
                .header("permissions-policy")
                .is_some_and(|p| p.contains("camera=()")),
            "{path}"
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

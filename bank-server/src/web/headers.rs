//! The security headers on every response: a strict Content-Security-Policy (with the hashes
//! of `index.html`'s inline scripts), nosniff, no referrer, same-origin opener and resource
//! policies, a minimal Permissions-Policy, HSTS under TLS, and `no-store` unless the route
//! chose a cache policy (errors are always `no-store`).

use std::path::Path;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine as _;
use sha2::{Digest as _, Sha256};

use super::hosts::AllowedHosts;

/// What the header layer needs: the allowed hosts (for `connect-src` and TLS) and the
/// page's inline-script hashes.
#[derive(Debug)]
pub(crate) struct Policy {
    hosts: AllowedHosts,
    /// `'sha256-…'` sources for `script-src`.
    script_hashes: Vec<String>,
}

impl Policy {
    /// The policy for the page at `index` (hashing its inline scripts; none if it is missing).
    pub(crate) fn new(hosts: AllowedHosts, index: &Path) -> Self {
        let script_hashes = std::fs::read_to_string(index)
            .map(|html| inline_script_hashes(&html))
            .unwrap_or_default();
        Self {
            hosts,
            script_hashes,
        }
    }

    /// The CSP for a request that came for `host` (an allowed one) or for an unknown host.
    fn csp(&self, host: Option<&str>) -> String {
        let mut script = String::from("'self' 'wasm-unsafe-eval'");
        for hash in &self.script_hashes {
            script.push(' ');
            script.push_str(hash);
        }
        let mut connect = String::from("'self'");
        if let Some(host) = host {
            let scheme = if self.hosts.tls() { "wss" } else { "ws" };
            connect.push_str(&format!(" {scheme}://{host}"));
        }
        format!(
            "default-src 'none'; script-src {script}; style-src 'self'; img-src 'self' data:; \
             connect-src {connect}; manifest-src 'self'; base-uri 'none'; form-action 'none'; \
             frame-ancestors 'none'"
        )
    }
}

/// `'sha256-…'` of every inline `<script>` (one without `src`) of `html`, as a browser hashes
/// it: the exact text between the tags.
pub(crate) fn inline_script_hashes(html: &str) -> Vec<String> {
    let mut hashes = Vec::new();
    let lower = html.to_ascii_lowercase();
    let mut at = 0;
    while let Some(open) = lower[at..].find("<script").map(|i| i + at) {
        let Some(tag_end) = lower[open..].find('>').map(|i| i + open) else {
            break;
        };
        let tag = &lower[open..tag_end];
        let body_start = tag_end + 1;
        let Some(close) = lower[body_start..].find("</script").map(|i| i + body_start) else {
            break;
        };
        if !tag.contains(" src=") && !tag.contains("\nsrc=") {
            let digest = Sha256::digest(&html.as_bytes()[body_start..close]);
            let b64 = base64::engine::general_purpose::STANDARD.encode(digest);
            hashes.push(format!("'sha256-{b64}'"));
        }
        at = close;
    }
    hashes
}

const PERMISSIONS: &str = "accelerometer=(), camera=(), geolocation=(), gyroscope=(), \
magnetometer=(), microphone=(), payment=(), usb=()";

/// Adds the headers (see the module docs) to the response.
pub(crate) async fn secure(
    State(policy): State<Arc<Policy>>,
    req: Request,
    next: Next,
) -> Response {
    let host = policy
        .hosts
        .host(req.uri(), req.headers())
        .map(str::to_owned);
    let mut response = next.run(req).await;
    let error = response.status().is_client_error() || response.status().is_server_error();
    let headers = response.headers_mut();
    let mut set = |name: HeaderName, value: HeaderValue| {
        headers.insert(name, value);
    };
    if let Ok(csp) = HeaderValue::from_str(&policy.csp(host.as_deref())) {
        set(header::CONTENT_SECURITY_POLICY, csp);
    }
    set(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    set(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    set(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    set(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    set(
        HeaderName::from_static("cross-origin-resource-policy"),
        HeaderValue::from_static("same-origin"),
    );
    set(
        HeaderName::from_static("permissions-policy"),
        HeaderValue::from_static(PERMISSIONS),
    );
    if policy.hosts.tls() {
        set(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    if error || !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_scripts_are_hashed_and_external_ones_skipped() {
        let html = "<html><script type=\"module\">\nboot()\n</script>\
                    <script src=\"/a.js\"></script><SCRIPT>x</SCRIPT></html>";
        let hashes = inline_script_hashes(html);
        let expect = |body: &str| {
            format!(
                "'sha256-{}'",
                base64::engine::general_purpose::STANDARD.encode(Sha256::digest(body))
            )
        };
        assert_eq!(hashes, [expect("\nboot()\n"), expect("x")]);
        assert!(inline_script_hashes("<html></html>").is_empty());
    }
}

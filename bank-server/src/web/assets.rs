//! The web ATM's static files: trunk's hashed assets cached for a year, `index.html`
//! revalidated on every load, the `index.html` fallback only for page navigations, and 404
//! for anything else that is missing.

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use tower::ServiceExt as _;
use tower_http::services::{ServeDir, ServeFile};

const NOT_BUILT: &str =
    "<!doctype html><html><head><meta charset=\"utf-8\"><title>Bank</title></head>\
<body><h1>The bank is running</h1><p>The web ATM is not built. Build it (see the README) and \
restart the bank with <code>--web-root</code> pointing at it.</p></body></html>";

/// For files whose name carries trunk's content hash: a new build has new names.
pub(crate) const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// For `index.html`: it names the current build's assets, so it is checked on every load.
pub(crate) const REVALIDATE: &str = "no-cache";

/// The web root and its `index.html`.
#[derive(Debug)]
pub(crate) struct Assets {
    root: PathBuf,
    index: PathBuf,
}

impl Assets {
    pub(crate) fn new(root: PathBuf) -> Self {
        let index = root.join("index.html");
        Self { root, index }
    }
}

/// Whether the last path segment carries trunk's hash: `name-<16 hex>[_bg].ext`.
pub(crate) fn is_hashed(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or_default();
    let Some((stem, _ext)) = name.split_once('.') else {
        return false;
    };
    let stem = stem.strip_suffix("_bg").unwrap_or(stem);
    stem.rsplit_once('-').is_some_and(|(_, hash)| {
        hash.len() == 16 && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

/// A browser loading a page: GET (or HEAD) of a path without a file extension that accepts
/// HTML. Only these get `index.html` for a path that is not a file (the app's own routes).
fn is_navigation(req: &Request) -> bool {
    let method = req.method();
    let last = req.uri().path().rsplit('/').next().unwrap_or_default();
    let accepts_html = req
        .headers()
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("text/html"));
    (method == Method::GET || method == Method::HEAD) && !last.contains('.') && accepts_html
}

/// Serves one request from the web root (see the module docs).
pub(crate) async fn serve(State(assets): State<Arc<Assets>>, req: Request) -> Response {
    let navigation = is_navigation(&req);
    let path = req.uri().path().to_owned();
    if !assets.index.is_file() {
        return if navigation {
            with_cache(Html(NOT_BUILT).into_response(), REVALIDATE)
        } else {
            StatusCode::NOT_FOUND.into_response()
        };
    }
    let retry = navigation.then(|| {
        let mut again = Request::new(Body::empty());
        *again.method_mut() = req.method().clone();
        *again.headers_mut() = req.headers().clone();
        again
    });
    let found = match ServeDir::new(&assets.root).oneshot(req).await {
        Ok(response) => response.map(Body::new),
        Err(never) => match never {},
    };
    if found.status() != StatusCode::NOT_FOUND {
        let policy = if path.ends_with('/') || path.ends_with("/index.html") || !is_hashed(&path) {
            REVALIDATE
        } else {
            IMMUTABLE
        };
        return with_cache(found, policy);
    }
    let Some(again) = retry else {
        return found;
    };
    match ServeFile::new(&assets.index).oneshot(again).await {
        Ok(response) => with_cache(response.map(Body::new), REVALIDATE),
        Err(never) => match never {},
    }
}

fn with_cache(mut response: Response, policy: &'static str) -> Response {
    if response.status().is_success() || response.status() == StatusCode::NOT_MODIFIED {
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static(policy));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trunk_hashes_are_recognised() {
        assert!(is_hashed("/atm-wasm-5fb9ff39649fec04_bg.wasm"));
        assert!(is_hashed("/atm-wasm-5fb9ff39649fec04.js"));
        assert!(is_hashed("/style-c93624bf3ba71d61.css"));
        assert!(!is_hashed("/index.html"));
        assert!(!is_hashed("/assets/app.js"));
        assert!(!is_hashed("/style-C93624BF3BA71D61.css"));
        assert!(!is_hashed("/style-c93624bf3ba71d6.css"));
        assert!(!is_hashed("/deposit"));
    }
}

//! Fuzz target: the HTTP handling in front of the session: the bank's router (`bank_server::app`,
//! listening on 127.0.0.1:3000 with `--public-url https://bank.example` and
//! `--allow-origin https://atm.example`) called in process on requests the input decodes into
//! (`arbitrary`): a method, a path, a `Host` and an `Origin` chosen among the allowed, the
//! foreign and raw fuzzer text, the WebSocket upgrade headers or not, more headers.
//!
//! Asserts: nothing panics; every answer carries the security headers; a request without a
//! host or for a foreign one gets 421 and one for the bank's own names does not; a WebSocket
//! upgrade for an allowed host is switched (101) exactly when its `Origin` is absent or
//! allowed, and refused with 403 when it is foreign; an answer is the same when asked again.
#![no_main]

mod bank;

use std::sync::OnceLock;

use arbitrary::Arbitrary;
use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt as _;

#[derive(Arbitrary, Debug, Clone)]
enum Name {
    Localhost,
    Loopback,
    Public,
    Listed,
    Evil,
    Shouted(bool),
    Raw(String),
}

#[derive(Arbitrary, Debug, Clone)]
enum Port {
    Absent,
    Bank,
    Other(u16),
    Raw(String),
}

#[derive(Arbitrary, Debug, Clone)]
enum Origin {
    Own,
    Localhost,
    Public,
    Listed,
    ListedSlash,
    Evil,
    OwnOtherPort,
    Null,
    Raw(String),
}

#[derive(Arbitrary, Debug, Clone)]
enum Path {
    Ws,
    Healthz,
    Index,
    Raw(String),
}

#[derive(Arbitrary, Debug)]
struct Input {
    post: bool,
    path: Path,
    host: Option<(Name, Port)>,
    origin: Option<Origin>,
    upgrade: bool,
    headers: Vec<(String, String)>,
}

/// The router of one bank, made once.
fn router() -> &'static Router {
    static ROUTER: OnceLock<(Router, tempfile::TempDir)> = OnceLock::new();
    &ROUTER
        .get_or_init(|| {
            let dir = bank::temp_dir();
            let (mut config, _) = bank::config(dir.path());
            config.public_url =
                Some(bank_server::PublicUrl::parse("https://bank.example").unwrap());
            config.allowed_origins = vec!["https://atm.example".into()];
            config.max_sessions = usize::MAX >> 4;
            let bank = bank_server::open(config).expect("the bank opens");
            let local = "127.0.0.1:3000".parse().unwrap();
            (bank_server::app(bank, local), dir)
        })
        .0
}

/// The `Host` header's text, and whether the bank answers to it (`None`: not known here).
fn host_text(name: &Name, port: &Port) -> (String, Option<bool>) {
    let (name, allowed) = match name {
        Name::Localhost => ("localhost".to_owned(), Some(true)),
        Name::Loopback => ("127.0.0.1".to_owned(), Some(true)),
        Name::Public => ("bank.example".to_owned(), Some(true)),
        Name::Listed => ("atm.example".to_owned(), Some(true)),
        Name::Evil => ("evil.example".to_owned(), Some(false)),
        Name::Shouted(public) => (
            if *public { "BANK.Example" } else { "LocalHost" }.to_owned(),
            Some(true),
        ),
        Name::Raw(text) => (text.clone(), None),
    };
    match port {
        Port::Absent => (name, allowed),
        Port::Bank => (format!("{name}:3000"), allowed),
        Port::Other(0) => (format!("{name}:0"), None),
        Port::Other(p) => (format!("{name}:{p}"), allowed),
        Port::Raw(text) => (format!("{name}:{text}"), None),
    }
}

/// The `Origin` header's text, and whether it may open a WebSocket (`None`: not known here).
fn origin_text(origin: &Origin) -> (String, Option<bool>) {
    match origin {
        Origin::Own => ("http://127.0.0.1:3000".into(), Some(true)),
        Origin::Localhost => ("http://localhost:3000".into(), Some(true)),
        Origin::Public => ("https://bank.example".into(), Some(true)),
        Origin::Listed => ("https://atm.example".into(), Some(true)),
        Origin::ListedSlash => ("https://atm.example/".into(), None),
        Origin::Evil => ("https://evil.example".into(), Some(false)),
        Origin::OwnOtherPort => ("http://127.0.0.1:3001".into(), Some(false)),
        Origin::Null => ("null".into(), Some(false)),
        Origin::Raw(text) => (text.clone(), None),
    }
}

/// The request's path and query.
fn path_text(path: &Path) -> String {
    match path {
        Path::Ws => "/ws".to_owned(),
        Path::Healthz => "/healthz".to_owned(),
        Path::Index => "/".to_owned(),
        Path::Raw(text) => format!("/{text}"),
    }
}

/// Whether the request is for `/ws` (a raw path may spell it, with a query or not).
fn for_ws(path: &Path) -> bool {
    let text = path_text(path);
    text.split(['?', '#']).next() == Some("/ws")
}

fn request(input: &Input) -> Option<Request<Body>> {
    let path = path_text(&input.path);
    let mut builder = Request::builder()
        .method(if input.post { "POST" } else { "GET" })
        .uri(path);
    if let Some((name, port)) = &input.host {
        builder = builder.header(header::HOST, host_text(name, port).0);
    }
    if let Some(origin) = &input.origin {
        builder = builder.header(header::ORIGIN, origin_text(origin).0);
    }
    if input.upgrade {
        builder = builder
            .header(header::CONNECTION, "upgrade")
            .header(header::UPGRADE, "websocket")
            .header(header::SEC_WEBSOCKET_VERSION, "13")
            .header(header::SEC_WEBSOCKET_KEY, "dGhlIHNhbXBsZSBub25jZQ==");
    }
    for (name, value) in input.headers.iter().take(4) {
        builder = builder.header(name.as_str(), value.as_str());
    }
    let mut request = builder.body(Body::empty()).ok()?;
    // What hyper leaves for the upgrade (here: none will come), so the WebSocket extractor
    // runs and the origin check is reached.
    let upgrade = hyper::upgrade::on(&mut request);
    request.extensions_mut().insert(upgrade);
    Some(request)
}

async fn status(input: &Input) -> Option<StatusCode> {
    let response = router()
        .clone()
        .oneshot(request(input)?)
        .await
        .expect("infallible");
    let headers = response.headers();
    assert_eq!(
        headers
            .get(header::X_CONTENT_TYPE_OPTIONS)
            .map(|v| v.as_bytes()),
        Some(&b"nosniff"[..]),
        "{:?} lacks the security headers",
        response.status()
    );
    assert!(headers.contains_key(header::X_FRAME_OPTIONS));
    Some(response.status())
}

fuzz_target!(|input: Input| {
    bank::runtime().block_on(async {
        let Some(got) = status(&input).await else {
            return;
        };
        assert_eq!(
            status(&input).await,
            Some(got),
            "the same request, another answer"
        );
        let plain_headers = input.headers.is_empty();
        let host_allowed = match &input.host {
            None => Some(false),
            Some((name, port)) => host_text(name, port).1,
        };
        match host_allowed {
            Some(false) => assert_eq!(got, StatusCode::MISDIRECTED_REQUEST, "{input:?}"),
            Some(true) => assert_ne!(got, StatusCode::MISDIRECTED_REQUEST, "{input:?}"),
            None => {}
        }
        let origin_allowed = match &input.origin {
            None => Some(true),
            Some(origin) => origin_text(origin).1,
        };
        let websocket = matches!(input.path, Path::Ws) && !input.post && input.upgrade;
        if websocket && host_allowed == Some(true) && plain_headers {
            match origin_allowed {
                Some(true) => assert_eq!(got, StatusCode::SWITCHING_PROTOCOLS, "{input:?}"),
                Some(false) => assert_eq!(got, StatusCode::FORBIDDEN, "{input:?}"),
                None => assert!(
                    matches!(got, StatusCode::SWITCHING_PROTOCOLS | StatusCode::FORBIDDEN),
                    "{input:?}: {got}"
                ),
            }
        }
        if got == StatusCode::SWITCHING_PROTOCOLS {
            assert!(
                for_ws(&input.path) && !input.post,
                "switched elsewhere than GET /ws: {input:?}"
            );
        }
    });
});

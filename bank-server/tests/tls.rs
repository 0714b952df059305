//! HTTPS in the bank itself: a certificate made in the test (rcgen), HSTS and a `wss:`
//! connect-src over TLS, a WebSocket session over TLS, plain HTTP refused on the TLS port, and
//! the listener's head deadline cutting a connection that never finishes its handshake.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use futures_util::{SinkExt as _, StreamExt as _};
use tokio_rustls::rustls::{self, pki_types::ServerName, ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::Message;

/// Writes a self-signed certificate for localhost and its key; the client config trusting it.
fn certificate(dir: &Path) -> (bank_server::Tls, TlsConnector) {
    let rcgen::CertifiedKey { cert, key_pair } =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert_file, key_file) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_file, cert.pem()).unwrap();
    std::fs::write(&key_file, key_pair.serialize_pem()).unwrap();
    let tls = bank_server::Tls::from_pem_files(&cert_file, &key_file).unwrap();
    let mut roots = RootCertStore::empty();
    roots.add(cert.der().clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let client = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    (tls, TlsConnector::from(Arc::new(client)))
}

async fn tls_bank(dir: &Path, head_timeout: Duration) -> (TestBank, TlsConnector) {
    let (tls, connector) = certificate(dir);
    let mut config = config(dir);
    config.tls = Some(tls);
    config.request_head_timeout = head_timeout;
    (TestBank::start(config).await, connector)
}

async fn connect(
    bank: &TestBank,
    connector: &TlsConnector,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let tcp = tokio::net::TcpStream::connect(&bank.addr).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    connector.connect(name, tcp).await.expect("TLS handshake")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_carries_hsts_and_wss_works() {
    let dir = temp();
    let (bank, connector) = tls_bank(dir.path(), Duration::from_secs(10)).await;
    let port = bank.addr.rsplit(':').next().unwrap().to_owned();
    let host = format!("localhost:{port}");

    let health = http_exchange(connect(&bank, &connector).await, &host, "/healthz", &[]).await;
    assert_eq!(health.status, 200, "{health:?}");
    assert_eq!(health.body, b"ok\n");
    assert_eq!(
        health.header("strict-transport-security"),
        Some("max-age=31536000")
    );
    let csp = health.header("content-security-policy").unwrap();
    assert!(
        csp.contains(&format!("connect-src 'self' wss://{host}")),
        "{csp}"
    );

    // A WebSocket over TLS reaches a session: a text frame breaks the protocol and the bank
    // closes with 1008.
    let stream = connect(&bank, &connector).await;
    let (mut ws, response) = tokio_tungstenite::client_async(format!("wss://{host}/ws"), stream)
        .await
        .expect("wss upgrade");
    assert_eq!(response.status(), 101);
    ws.send(Message::text("not a record")).await.unwrap();
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => {}
                other => panic!("expected a close frame, got {other:?}"),
            }
        }
    })
    .await
    .expect("the bank answers in time");
    assert_eq!(closed, Some(1008));

    // Plain HTTP on the TLS port gets no answer.
    let plain = tokio::time::timeout(Duration::from_secs(5), async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut tcp = tokio::net::TcpStream::connect(&bank.addr).await.unwrap();
        tcp.write_all(format!("GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut text = Vec::new();
        let _ = tcp.read_to_end(&mut text).await;
        text
    })
    .await
    .expect("the bank closes the connection");
    assert!(!plain.starts_with(b"HTTP/1.1 200"), "{plain:?}");
    bank.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_never_finishes_its_handshake_is_cut_at_the_head_deadline() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = temp();
    let (bank, connector) = tls_bank(dir.path(), Duration::from_secs(1)).await;
    let start = Instant::now();
    let mut silent = tokio::net::TcpStream::connect(&bank.addr).await.unwrap();
    // Half a ClientHello record header, then nothing.
    silent.write_all(&[0x16, 0x03]).await.unwrap();
    let mut buf = [0u8; 64];
    let cut = tokio::time::timeout(Duration::from_secs(5), async {
        while matches!(silent.read(&mut buf).await, Ok(n) if n > 0) {}
        start.elapsed()
    })
    .await
    .expect("cut within the deadline");
    assert!(
        (Duration::from_millis(900)..Duration::from_millis(2500)).contains(&cut),
        "cut after {cut:?}"
    );
    // The bank still serves TLS clients.
    let host = format!("localhost:{}", bank.addr.rsplit(':').next().unwrap());
    let health = http_exchange(connect(&bank, &connector).await, &host, "/healthz", &[]).await;
    assert_eq!(health.status, 200);
    bank.stop().await;
}

#[test]
fn unusable_certificate_files_are_typed_errors() {
    let dir = temp();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let missing = bank_server::Tls::from_pem_files(&cert, &key).unwrap_err();
    assert!(
        matches!(missing, bank_server::TlsError::Pem { .. }),
        "{missing:?}"
    );
    std::fs::write(&cert, "not a certificate\n").unwrap();
    let empty = bank_server::Tls::from_pem_files(&cert, &key).unwrap_err();
    assert!(
        matches!(empty, bank_server::TlsError::NoCertificate(_)),
        "{empty:?}"
    );
    // A key that is not the certificate's.
    let rcgen::CertifiedKey { cert: made, .. } =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    std::fs::write(&cert, made.pem()).unwrap();
    std::fs::write(&key, rcgen::KeyPair::generate().unwrap().serialize_pem()).unwrap();
    let mismatch = bank_server::Tls::from_pem_files(&cert, &key).unwrap_err();
    assert!(
        matches!(mismatch, bank_server::TlsError::Rejected(_)),
        "{mismatch:?}"
    );
}

#[test]
fn the_binary_refuses_unusable_tls_flags_before_creating_anything() {
    let dir = temp();
    let paths = common::process::Paths::new(dir.path());
    let alone = paths.command(&["--port", "0", "--tls-cert", "cert.pem"]);
    assert_eq!(alone.status.code(), Some(2), "{alone:?}");
    let cert = dir.path().join("cert.pem");
    std::fs::write(&cert, "not a certificate\n").unwrap();
    let cert = cert.display().to_string();
    let bad = paths.command(&["--port", "0", "--tls-cert", &cert, "--tls-key", &cert]);
    assert_eq!(bad.status.code(), Some(1), "{bad:?}");
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("no PEM certificate"), "{stderr}");
    assert!(!paths.data.exists(), "a data directory was created");
}

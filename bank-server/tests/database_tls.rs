//! TLS from the bank to PostgreSQL (`--database-ca-file`), against real servers the test
//! starts that take TCP connections over TLS only: with the right CA the bank serves and
//! `audit verify` reads; without a CA file the server refuses it; a certificate from another
//! CA, or for another name, is refused by the bank; a server without TLS is refused whatever
//! the URL's sslmode; `sslmode=require` without a CA file is refused before connecting.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use atm_client::{load_auth_file, Client};
use common::process::*;
use common::*;
use protocol::{CardSecret, Cents, Response};
use rand_core::OsRng;

/// A password in every URL: trust authentication ignores it, and no message may show it.
const PASSWORD: &str = "pw-not-for-logs-7f3a";

/// A certificate authority made for the test.
struct Ca {
    cert: rcgen::Certificate,
    key: rcgen::KeyPair,
}

impl Ca {
    fn new(name: &str) -> Self {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let cert = params.self_signed(&key).unwrap();
        Self { cert, key }
    }

    /// A server certificate for `names` (an IP address becomes an IP SAN) and its key, PEM.
    fn server(&self, names: &[&str]) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let cert = rcgen::CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, &self.cert, &self.key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    }

    /// Its certificate in a PEM file in `dir`.
    fn file(&self, dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, self.cert.pem()).unwrap();
        path
    }
}

/// `cluster`'s URL for the database `bank`, with a password and `query`.
fn url(cluster: &pg_harness::Cluster, query: &str) -> String {
    let plain = cluster.url("bank");
    let url = plain.replacen(
        &format!("{}@", pg_harness::USER),
        &format!("{}:{PASSWORD}@", pg_harness::USER),
        1,
    );
    assert_ne!(url, plain);
    format!("{url}{query}")
}

/// The flags of node `n1` in `dir`: the database URL, and the CA file if any.
fn flags(dir: &Path, url: &str, ca: Option<&Path>) -> Vec<String> {
    let mut flags = vec![
        "--database-url".to_owned(),
        url.to_owned(),
        "--bank-key-file".to_owned(),
        dir.join("bank.key").display().to_string(),
        "--node-name".to_owned(),
        "n1".to_owned(),
    ];
    if let Some(ca) = ca {
        flags.push("--database-ca-file".to_owned());
        flags.push(ca.display().to_string());
    }
    flags
}

/// A start that must be refused (bounded: a start that serves is killed and fails the test):
/// what it wrote to stderr. No message shows the URL's password.
fn refused(paths: &Paths, flags: &[String]) -> String {
    let out = refused_start(paths, flags, "debug");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains(PASSWORD), "the password shown: {stderr}");
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains(PASSWORD),
        "the password shown"
    );
    stderr
}

/// `audit verify` of node `n1` with `flags`: its exit code and what it said.
fn audit_verify(paths: &Paths, flags: &[String]) -> (i32, String) {
    let out = Command::new(BIN)
        .args(flags)
        .arg("--data-dir")
        .arg(&paths.data)
        .arg("--audit-key-file")
        .arg(&paths.key)
        .args(["audit", "verify"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains(PASSWORD), "the password shown: {stderr}");
    (out.status.code().unwrap_or(-1), stderr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bank_verifies_the_database_it_talks_to_over_tls() {
    let ca = Ca::new("bank test database CA");
    let (cert, key) = ca.server(&["127.0.0.1"]);
    let started = Instant::now();
    let cluster = pg_harness::Cluster::start_with_tls(&cert, &key).unwrap();
    eprintln!("PostgreSQL (TLS only) up in {:?}", started.elapsed());
    cluster.create_database("bank").unwrap();
    let dir = temp();
    let ca_file = ca.file(dir.path(), "db-ca.pem");
    let paths = Paths::new(&dir.path().join("n1"));
    std::fs::create_dir_all(dir.path().join("n1")).unwrap();
    let url = url(&cluster, "");

    // Without a CA file the bank speaks plaintext, which this server refuses.
    let said = refused(&paths, &flags(dir.path(), &url, None));
    assert!(said.contains("no encryption"), "{said}");
    assert!(!paths.auth.exists(), "nothing made");

    // A CA file of another CA: the database's certificate is not trusted.
    let other = Ca::new("another CA").file(dir.path(), "other-ca.pem");
    let said = refused(&paths, &flags(dir.path(), &url, Some(&other)));
    assert!(
        said.contains("the database's TLS certificate was refused"),
        "{said}"
    );
    assert!(said.contains("UnknownIssuer"), "{said}");

    // A CA file that is no CA file: named.
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "no certificate here\n").unwrap();
    let said = refused(&paths, &flags(dir.path(), &url, Some(&junk)));
    assert!(said.contains(&junk.display().to_string()), "{said}");
    assert!(said.contains("no PEM certificate"), "{said}");
    let missing = dir.path().join("missing.pem");
    let said = refused(&paths, &flags(dir.path(), &url, Some(&missing)));
    assert!(said.contains(&missing.display().to_string()), "{said}");

    // sslmode=require without a CA file: refused before connecting (the URL's port has no
    // server behind it; a connection attempt would say so instead).
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let nowhere = format!(
        "postgres://bank:{PASSWORD}@127.0.0.1:{}/bank?sslmode=require",
        free.local_addr().unwrap().port()
    );
    drop(free);
    let said = refused(&paths, &flags(dir.path(), &nowhere, None));
    assert!(said.contains("--database-ca-file"), "{said}");
    assert!(said.contains("sslmode=require"), "{said}");
    assert!(!said.contains("onnection refused"), "{said}");
    // ... and with sslmode=disable beside a CA file, refused as a contradiction.
    let disabled = format!("{url}?sslmode=disable");
    let said = refused(&paths, &flags(dir.path(), &disabled, Some(&ca_file)));
    assert!(said.contains("sslmode=disable"), "{said}");

    // The right CA: the bank starts (creating the bank in the database) and serves.
    let with_ca = flags(dir.path(), &url, Some(&ca_file));
    let with_ca_refs: Vec<&str> = with_ca.iter().map(String::as_str).collect();
    let bank = BankProcess::start_with(&paths, &with_ca_refs, "warn");
    assert_eq!(bank.stdout().first().map(String::as_str), Some("created"));
    let auth = load_auth_file(&paths.auth).unwrap();
    let mut client = Client::connect(&bank.addr, &auth).await.unwrap();
    let card = CardSecret::random(&mut OsRng);
    open_card_account(&mut client, "ada", 1_000, card.clone()).await;
    let (mut ada, _) = card_session(&bank.addr, &auth, "ada", &card).await;
    let Response::Deposited { balance_cents, .. } = ada.call(&deposit_req(2_500)).await.unwrap()
    else {
        panic!("deposit refused")
    };
    assert_eq!(balance_cents, Cents(3_500));
    drop(ada);
    drop(client);
    bank.signal("TERM");
    assert!(bank.wait(), "a clean stop");

    // `audit verify` reads the database over TLS with the CA file, and not without it.
    let (code, said) = audit_verify(&paths, &with_ca);
    assert_eq!(code, 0, "{said}");
    assert!(said.contains("audit log OK"), "{said}");
    let (code, said) = audit_verify(&paths, &flags(dir.path(), &url, None));
    assert_ne!(code, 0, "{said}");
    assert!(said.contains("no encryption"), "{said}");

    // The bank's data is in the database: a restart with the CA file finds it.
    let bank = BankProcess::start_with(&paths, &with_ca_refs, "warn");
    assert!(
        bank.stdout().iter().all(|l| l != "created"),
        "the same bank"
    );
    let (_ada, balance_cents) = card_session(&bank.addr, &auth, "ada", &card).await;
    assert_eq!(balance_cents, Cents(3_500));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_for_another_name_or_no_tls_at_all_is_refused() {
    let ca = Ca::new("bank test database CA");
    let (cert, key) = ca.server(&["db.example"]);
    let elsewhere = pg_harness::Cluster::start_with_tls(&cert, &key).unwrap();
    elsewhere.create_database("bank").unwrap();
    let dir = temp();
    let ca_file = ca.file(dir.path(), "db-ca.pem");
    let paths = Paths::new(&dir.path().join("n1"));
    std::fs::create_dir_all(dir.path().join("n1")).unwrap();

    // The right CA, but the certificate names db.example, not 127.0.0.1.
    let said = refused(
        &paths,
        &flags(dir.path(), &url(&elsewhere, ""), Some(&ca_file)),
    );
    assert!(
        said.contains("the database's TLS certificate was refused"),
        "{said}"
    );
    assert!(said.contains("not valid for name \"127.0.0.1\""), "{said}");
    drop(elsewhere);

    // A server without TLS: with a CA file the bank never falls back to plaintext, whether
    // the URL says nothing (tokio-postgres's default, prefer) or prefer.
    let plain = pg_harness::Cluster::start().unwrap();
    plain.create_database("bank").unwrap();
    for query in ["", "?sslmode=prefer"] {
        let said = refused(
            &paths,
            &flags(dir.path(), &url(&plain, query), Some(&ca_file)),
        );
        assert!(said.contains("server does not support TLS"), "{said}");
    }
    // ... which the same server serves without one.
    let bank = BankProcess::start_with(
        &paths,
        &flags(dir.path(), &url(&plain, ""), None)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        "warn",
    );
    assert_eq!(bank.stdout().first().map(String::as_str), Some("created"));
}

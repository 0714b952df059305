//! TLS to the database: the connector every connection to PostgreSQL is made with, from
//! `--database-ca-file` and the URL's `sslmode` (verified rustls, or none at all; never TLS
//! without verification, never a silent fall back to plaintext).

use core::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use postgres::config::SslMode;
use postgres::{Client, NoTls};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::CertificateDer;
use tokio_postgres_rustls::MakeRustlsConnect;
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};

/// How connections to the database are made.
#[derive(Clone)]
pub(crate) enum Connector {
    /// Plaintext (no CA file given, and the URL does not ask for TLS).
    Plain,
    /// TLS with rustls, the server's certificate verified against the CA file's roots only
    /// and its name against the URL's host; the URL's `sslmode` forced to `require`.
    Verified(MakeRustlsConnect),
}

impl fmt::Debug for Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Plain => "Plain",
            Self::Verified(_) => "Verified",
        })
    }
}

/// Why the database's TLS settings cannot be used.
#[derive(Debug)]
pub enum DbTlsError {
    /// The CA file could not be read, or is not PEM.
    Read {
        /// The CA file.
        path: PathBuf,
        /// Why.
        source: rustls_pki_types::pem::Error,
    },
    /// The CA file holds no certificate.
    NoCertificate(PathBuf),
    /// A certificate of the CA file is not one rustls can take as a root.
    BadCertificate {
        /// The CA file.
        path: PathBuf,
        /// rustls's reason.
        source: rustls::Error,
    },
    /// rustls refused the client settings (no protocol version the provider supports).
    Settings(rustls::Error),
    /// The URL asks for TLS (`sslmode=require`) but no CA file was given to verify the
    /// server's certificate with.
    NeedsCaFile,
    /// A CA file was given and the URL turns TLS off (`sslmode=disable`).
    Disabled,
}

impl fmt::Display for DbTlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Read { path, source } => write!(
                f,
                "the database CA file {}: {source} (--database-ca-file wants PEM certificates)",
                path.display()
            ),
            Self::NoCertificate(path) => write!(
                f,
                "the database CA file {}: no PEM certificate in the file",
                path.display()
            ),
            Self::BadCertificate { path, source } => write!(
                f,
                "the database CA file {}: a certificate cannot be used as a root: {source}",
                path.display()
            ),
            Self::Settings(e) => write!(f, "the TLS settings for the database: {e}"),
            Self::NeedsCaFile => f.write_str(
                "the database URL asks for TLS (sslmode=require) but no CA file was given to \
                 verify the database's certificate: give --database-ca-file \
                 (BANK_DATABASE_CA_FILE); the bank never uses TLS without verification",
            ),
            Self::Disabled => f.write_str(
                "the database URL turns TLS off (sslmode=disable) while --database-ca-file \
                 (BANK_DATABASE_CA_FILE) is given: drop one of them",
            ),
        }
    }
}

impl std::error::Error for DbTlsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Read { source, .. } => Some(source),
            Self::BadCertificate { source, .. } | Self::Settings(source) => Some(source),
            Self::NoCertificate(_) | Self::NeedsCaFile | Self::Disabled => None,
        }
    }
}

impl Connector {
    /// The connector for `config` and the CA file `ca_file`: with it, verified TLS, and
    /// `config`'s `sslmode` forced to `require` (tokio-postgres's default `prefer` goes on in
    /// plaintext when the server answers that it has no TLS, which an attacker on the path
    /// can answer); without it, plaintext, refused if the URL asks for TLS.
    pub(crate) fn new(
        config: &mut postgres::Config,
        ca_file: Option<&Path>,
    ) -> Result<Self, DbTlsError> {
        let Some(path) = ca_file else {
            return match config.get_ssl_mode() {
                SslMode::Require => Err(DbTlsError::NeedsCaFile),
                _ => Ok(Self::Plain),
            };
        };
        if config.get_ssl_mode() == SslMode::Disable {
            return Err(DbTlsError::Disabled);
        }
        let roots = roots(path)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let client = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(DbTlsError::Settings)?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.ssl_mode(SslMode::Require);
        Ok(Self::Verified(MakeRustlsConnect::new(client)))
    }

    /// A connection to the database `config` names.
    pub(crate) fn connect(&self, config: &postgres::Config) -> Result<Client, postgres::Error> {
        match self {
            Self::Plain => config.connect(NoTls),
            Self::Verified(tls) => config.connect(tls.clone()),
        }
    }
}

/// The certificates of the PEM file `path`, as the only roots.
fn roots(path: &Path) -> Result<RootCertStore, DbTlsError> {
    let read = |source| DbTlsError::Read {
        path: path.to_owned(),
        source,
    };
    let certificates = CertificateDer::pem_file_iter(path)
        .map_err(read)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(read)?;
    if certificates.is_empty() {
        return Err(DbTlsError::NoCertificate(path.to_owned()));
    }
    let mut roots = RootCertStore::empty();
    for certificate in certificates {
        roots
            .add(certificate)
            .map_err(|source| DbTlsError::BadCertificate {
                path: path.to_owned(),
                source,
            })?;
    }
    Ok(roots)
}

/// Whether `error` (a connection's failure, or anything it carries) is rustls refusing the
/// database's certificate: an unknown issuer, another name, expired, ... .
pub(crate) fn certificate_refused(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(e) = next {
        if refusal(e) {
            return true;
        }
        // `io::Error::source` skips the error it wraps: look inside it too.
        if let Some(inner) = e
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
        {
            if certificate_refused(inner) {
                return true;
            }
        }
        next = e.source();
    }
    false
}

fn refusal(e: &(dyn std::error::Error + 'static)) -> bool {
    matches!(
        e.downcast_ref::<rustls::Error>(),
        Some(
            rustls::Error::InvalidCertificate(_)
                | rustls::Error::NoCertificatesPresented
                | rustls::Error::UnsupportedNameType
        )
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: &str) -> postgres::Config {
        url.parse().unwrap()
    }

    #[test]
    fn without_a_ca_file_require_is_refused_and_prefer_stays_plain() {
        let mut required = config("postgres://bank@127.0.0.1:5432/bank?sslmode=require");
        assert!(matches!(
            Connector::new(&mut required, None),
            Err(DbTlsError::NeedsCaFile)
        ));
        for url in [
            "postgres://bank@127.0.0.1/bank",
            "postgres://bank@127.0.0.1/bank?sslmode=prefer",
            "postgres://bank@127.0.0.1/bank?sslmode=disable",
        ] {
            let mut plain = config(url);
            assert!(matches!(
                Connector::new(&mut plain, None),
                Ok(Connector::Plain)
            ));
        }
    }

    #[test]
    fn a_bad_ca_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let mut url = config("postgres://bank@127.0.0.1/bank");
        let Err(e) = Connector::new(&mut url, Some(&missing)) else {
            panic!("a missing CA file taken")
        };
        assert!(matches!(e, DbTlsError::Read { .. }), "{e:?}");
        assert!(e.to_string().contains("missing.pem"), "{e}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let Err(e) = Connector::new(&mut url, Some(&empty)) else {
            panic!("a CA file without certificates taken")
        };
        assert!(matches!(e, DbTlsError::NoCertificate(_)), "{e:?}");
        assert!(e.to_string().contains("empty.pem"), "{e}");
    }

    #[test]
    fn a_ca_file_forces_tls() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ca.pem");
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        std::fs::write(&file, params.self_signed(&key).unwrap().pem()).unwrap();
        for url in [
            "postgres://bank@127.0.0.1/bank",
            "postgres://bank@127.0.0.1/bank?sslmode=prefer",
            "postgres://bank@127.0.0.1/bank?sslmode=require",
        ] {
            let mut config = config(url);
            assert!(matches!(
                Connector::new(&mut config, Some(&file)),
                Ok(Connector::Verified(_))
            ));
            assert_eq!(config.get_ssl_mode(), SslMode::Require, "{url}");
        }
    }

    #[test]
    fn a_ca_file_with_sslmode_disable_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ca.pem");
        std::fs::write(&file, "").unwrap();
        let mut url = config("postgres://bank@127.0.0.1/bank?sslmode=disable");
        assert!(matches!(
            Connector::new(&mut url, Some(&file)),
            Err(DbTlsError::Disabled)
        ));
    }
}

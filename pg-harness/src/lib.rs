//! Starts a throwaway PostgreSQL cluster for tests: `initdb` into a temporary directory, a
//! free port on 127.0.0.1, trust authentication for the superuser `bank`; stopped (and its
//! directory removed) when dropped, or by a watchdog when the test process dies first.
//!
//! [`Cluster::start_with_tls`] starts one that takes TCP connections over TLS only (the
//! certificate and key given), plaintext ones refused by the server itself.
//!
//! PostgreSQL refuses to run as root, and CI runs as root: then the server's directory is
//! given to the `postgres` system user (Debian's package makes it) and `initdb`, `pg_ctl`
//! run as that user through `runuser`. As any other user they run directly.

#![forbid(unsafe_code)]

use std::fmt;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use tempfile::TempDir;

/// The superuser the cluster is made with (trust authentication, 127.0.0.1 only).
pub const USER: &str = "bank";
/// The system user the server runs as when the tests run as root.
const SYSTEM_USER: &str = "postgres";

/// Why a cluster could not be started or used.
#[derive(Debug)]
pub enum HarnessError {
    /// No PostgreSQL server binaries (`initdb`, `pg_ctl`) were found.
    NoBinaries,
    /// A command could not be run at all.
    Spawn {
        /// The program.
        program: String,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A command ran and failed.
    Failed {
        /// The command line.
        command: String,
        /// Its standard error and, for `pg_ctl start`, the server log.
        output: String,
    },
    /// A file or directory could not be made or read.
    Io(std::io::Error),
}

impl fmt::Display for HarnessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoBinaries => write!(
                f,
                "no PostgreSQL server binaries (initdb, pg_ctl) in /usr/lib/postgresql/*/bin or \
                 $PG_BIN: run `cargo xtask setup` (installs Debian's postgresql)"
            ),
            Self::Spawn { program, source } => write!(f, "cannot run {program}: {source}"),
            Self::Failed { command, output } => write!(f, "`{command}` failed: {output}"),
            Self::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for HarnessError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Spawn { source, .. } | Self::Io(source) => Some(source),
            _ => None,
        }
    }
}

impl From<std::io::Error> for HarnessError {
    fn from(e: std::io::Error) -> Self {
        Self::Io(e)
    }
}

/// A running cluster. Dropping it stops the server (`pg_ctl -m fast stop`) and removes its
/// directory.
pub struct Cluster {
    dir: TempDir,
    bin: PathBuf,
    port: u16,
    as_root: bool,
    stopped: bool,
    /// TCP connections only over TLS ([`Cluster::start_with_tls`]).
    tls: bool,
    /// The server's options (`pg_ctl start -o`), for a start after a stop.
    options: String,
}

impl fmt::Debug for Cluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cluster")
            .field("dir", &self.dir.path())
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// Makes and starts a new cluster (a few seconds: `initdb` is most of it).
    pub fn start() -> Result<Self, HarnessError> {
        Self::start_as(None)
    }

    /// Makes and starts a new cluster that takes TCP connections over TLS only, with the
    /// certificate chain `cert_pem` (the server's certificate first) and its private key
    /// `key_pem`: `pg_hba.conf` has `hostssl` lines and no `host` line, so the server itself
    /// refuses a plaintext connection (the unix socket stays open, for [`Self::psql`]).
    pub fn start_with_tls(cert_pem: &str, key_pem: &str) -> Result<Self, HarnessError> {
        Self::start_as(Some((cert_pem, key_pem)))
    }

    fn start_as(tls: Option<(&str, &str)>) -> Result<Self, HarnessError> {
        let bin = binaries()?;
        let as_root = is_root()?;
        let dir = tempfile::Builder::new().prefix("bank-pg-").tempdir()?;
        if as_root {
            run(Command::new("chown").arg(SYSTEM_USER).arg(dir.path()))?;
        }
        let mut cluster = Self {
            dir,
            bin,
            port: 0,
            as_root,
            stopped: true,
            tls: tls.is_some(),
            options: String::new(),
        };
        cluster.pg("initdb", |c| {
            c.arg("-D").arg(cluster.data()).args([
                "-A",
                "trust",
                "-U",
                USER,
                "-E",
                "UTF8",
                "--no-sync",
            ]);
        })?;
        let ssl = match tls {
            Some((cert, key)) => cluster.install_tls(cert, key)?,
            None => String::new(),
        };
        // A free port now; another process could take it before the server binds, so a
        // start that fails is tried again on another.
        let mut last = None;
        for _ in 0..3 {
            let port = free_port()?;
            cluster.port = port;
            let options = format!(
                "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=on \
                 -c synchronous_commit=on -c max_connections=200{ssl}",
                cluster.dir.path().display()
            );
            cluster.options = options;
            match cluster.pg_ctl_start() {
                Ok(()) => {
                    cluster.watch()?;
                    return Ok(cluster);
                }
                Err(HarnessError::Failed { command, output }) => {
                    let log = std::fs::read_to_string(cluster.log()).unwrap_or_default();
                    last = Some(HarnessError::Failed {
                        command,
                        output: format!("{output}\n{log}"),
                    });
                }
                Err(other) => return Err(other),
            }
        }
        Err(last.unwrap_or(HarnessError::NoBinaries))
    }

    /// `pg_ctl start` with the cluster's options (port, socket directory, settings).
    fn pg_ctl_start(&mut self) -> Result<(), HarnessError> {
        self.pg("pg_ctl", |c| {
            c.arg("-D")
                .arg(self.data())
                .args(["-o", &self.options, "-l"])
                .arg(self.log())
                .args(["-w", "-t", "60", "start"]);
        })?;
        self.stopped = false;
        Ok(())
    }

    /// Starts the server again after [`Self::stop`], on the same port with the same data
    /// (a database that was out of reach and comes back).
    pub fn start_again(&mut self) -> Result<(), HarnessError> {
        if !self.stopped {
            return Ok(());
        }
        self.pg_ctl_start()
    }

    /// The port the server listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A connection URL for `database` as the superuser [`USER`].
    pub fn url(&self, database: &str) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/{database}", self.port)
    }

    /// Creates an empty database `name` (letters, digits and `_` only).
    pub fn create_database(&self, name: &str) -> Result<(), HarnessError> {
        assert!(
            name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
            "a plain database name"
        );
        self.psql("postgres", &format!("CREATE DATABASE \"{name}\""))
    }

    /// Runs `sql` in `database` with `psql` (stops at the first error); over TLS (not
    /// verified: the harness's own check) on a cluster started with TLS.
    pub fn psql(&self, database: &str, sql: &str) -> Result<(), HarnessError> {
        let mut url = self.url(database);
        if self.tls {
            url.push_str("?sslmode=require");
        }
        run(Command::new("psql")
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", &url, "-c"])
            .arg(sql))
    }

    /// Writes `server.crt` and `server.key` (0600, the server's user's) into the data
    /// directory and a `pg_hba.conf` taking TCP connections over TLS only; returns the
    /// server options that turn TLS on with them.
    fn install_tls(&self, cert_pem: &str, key_pem: &str) -> Result<String, HarnessError> {
        use std::os::unix::fs::PermissionsExt as _;
        let data = self.data();
        let (cert, key, hba) = (
            data.join("server.crt"),
            data.join("server.key"),
            data.join("pg_hba.conf"),
        );
        std::fs::write(&cert, cert_pem)?;
        std::fs::write(&key, key_pem)?;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600))?;
        std::fs::write(
            &hba,
            "# pg-harness: TCP over TLS only (no `host` line: plaintext is refused)\n\
             local all all trust\n\
             hostssl all all 127.0.0.1/32 trust\n",
        )?;
        if self.as_root {
            run(Command::new("chown")
                .arg(SYSTEM_USER)
                .args([&cert, &key, &hba]))?;
        }
        Ok(format!(
            " -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
            cert.display(),
            key.display()
        ))
    }

    /// The server's main process (the postmaster, whose children are the backends), from
    /// its `postmaster.pid`; `None` when the server is not running.
    pub fn postmaster_pid(&self) -> Option<u32> {
        if self.stopped {
            return None;
        }
        std::fs::read_to_string(self.data().join("postmaster.pid"))
            .ok()?
            .lines()
            .next()?
            .trim()
            .parse()
            .ok()
    }

    /// Stops the server now (`pg_ctl -m fast stop`).
    pub fn stop(&mut self) -> Result<(), HarnessError> {
        if self.stopped {
            return Ok(());
        }
        self.stopped = true;
        self.pg("pg_ctl", |c| {
            c.arg("-D")
                .arg(self.data())
                .args(["-m", "fast", "-w", "stop"]);
        })
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("pg")
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("log")
    }

    /// Runs one of the server's programs, as the `postgres` user when we are root.
    fn pg(&self, program: &str, args: impl FnOnce(&mut Command)) -> Result<(), HarnessError> {
        let path = self.bin.join(program);
        let mut command = if self.as_root {
            let mut c = Command::new("runuser");
            c.args(["-u", SYSTEM_USER, "--"]).arg(&path);
            c
        } else {
            Command::new(&path)
        };
        args(&mut command);
        run(&mut command)
    }

    /// Stops the server and removes its directory once this process is gone, however it
    /// ends (a cluster in a `static` is never dropped; a test may be killed).
    fn watch(&self) -> Result<(), HarnessError> {
        let stop = if self.as_root {
            format!("runuser -u {SYSTEM_USER} -- ")
        } else {
            String::new()
        };
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; \
             {stop}'{bin}/pg_ctl' -D '{data}' -m immediate stop >/dev/null 2>&1; \
             rm -rf '{dir}'",
            pid = std::process::id(),
            bin = self.bin.display(),
            data = self.data().display(),
            dir = self.dir.path().display(),
        );
        Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map(drop)
            .map_err(|source| HarnessError::Spawn {
                program: "sh".into(),
                source,
            })
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("pg-harness: {e}");
        }
    }
}

/// The directory holding `initdb` and `pg_ctl`: `$PG_BIN`, else the newest
/// `/usr/lib/postgresql/<version>/bin`.
fn binaries() -> Result<PathBuf, HarnessError> {
    if let Some(dir) = std::env::var_os("PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let root = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(root)
        .map_err(|_| HarnessError::NoBinaries)?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .ok_or(HarnessError::NoBinaries)
}

fn is_root() -> Result<bool, HarnessError> {
    let out = Command::new("id")
        .arg("-u")
        .output()
        .map_err(|source| HarnessError::Spawn {
            program: "id".into(),
            source,
        })?;
    Ok(String::from_utf8_lossy(&out.stdout).trim() == "0")
}

fn free_port() -> Result<u16, HarnessError> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn run(command: &mut Command) -> Result<(), HarnessError> {
    let out = command
        .stdin(Stdio::null())
        .output()
        .map_err(|source| HarnessError::Spawn {
            program: format!("{:?}", command.get_program()),
            source,
        })?;
    if out.status.success() {
        return Ok(());
    }
    Err(HarnessError::Failed {
        command: format!("{command:?}"),
        output: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    #[test]
    fn a_cluster_starts_serves_sql_and_stops() {
        let started = Instant::now();
        let mut cluster = Cluster::start().unwrap();
        eprintln!("cluster up in {:?}", started.elapsed());
        cluster.create_database("probe").unwrap();
        cluster
            .psql(
                "probe",
                "CREATE TABLE t (x BIGINT); INSERT INTO t VALUES (1)",
            )
            .unwrap();
        cluster.stop().unwrap();
        assert!(cluster.psql("probe", "SELECT 1").is_err(), "stopped");
    }

    #[test]
    fn a_tls_cluster_refuses_plaintext() {
        let rcgen::CertifiedKey { cert, key_pair } =
            rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
        let cluster = Cluster::start_with_tls(&cert.pem(), &key_pair.serialize_pem()).unwrap();
        cluster.create_database("probe").unwrap();
        cluster.psql("probe", "SELECT 1").unwrap();
        let over = |sslmode: &str| {
            Command::new("psql")
                .args(["-X", "-q", "-d"])
                .arg(format!("{}?sslmode={sslmode}", cluster.url("probe")))
                .args([
                    "-tAc",
                    "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                ])
                .output()
                .unwrap()
        };
        let plain = over("disable");
        assert!(!plain.status.success(), "plaintext taken");
        assert!(
            String::from_utf8_lossy(&plain.stderr).contains("no encryption"),
            "{}",
            String::from_utf8_lossy(&plain.stderr)
        );
        let tls = over("require");
        assert!(
            tls.status.success(),
            "{}",
            String::from_utf8_lossy(&tls.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&tls.stdout).trim(), "t");
    }
}

//! Opening the bank's store: a bank is created only in an absent or empty data directory, an
//! existing one must carry a bank identity of a format this binary knows, and its audit chain
//! must reach at least as far as the checkpoint file says, or the bank refuses to start.
//!
//! The audit log's custody ([`Custody`]): a bank is created with the auditor's public key
//! (given, or in a lab generated here, its private key written to the audit key file and
//! forgotten), recorded in its identity; a store from before auditor keys gets one at its first
//! opening for writing, its earlier entries staying a legacy epoch.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use protocol::BankKey;

use crate::audit::{AuditEvent, AuditorPublicKey, AuditorSecret, ChainTip};
use crate::bank_key::{self, BankKeyError};
use crate::checkpoint::{self, Checkpoint, CheckpointError, CheckpointFile};
use crate::ledger::{BankIdentity, ChainPosition, IoFailure, Ledger, LedgerError};
use crate::node::NodeName;
use crate::pg_ledger::{self, PgLedger};
use crate::redb_ledger::RedbLedger;
use crate::sled_ledger::SledLedger;
use crate::terminals::{auth_file_text, new_terminal, write_new_secret_file};
use crate::{now_ms, Config};

/// The store format this binary writes and reads: 2, an audit log in epochs for the auditor's
/// public key (1, from before auditor keys, is read and moved to 2 at its first start).
pub const FORMAT: u32 = 2;

/// Where the auditor's public key comes from when the bank needs one: creating a bank, or the
/// first start of a store from before auditor keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Custody {
    /// The auditor's public key (`--auditor-public-key`). `None`: the bank generates the pair
    /// (a lab), writes the private key to a new file and keeps only the public key.
    pub auditor: Option<AuditorPublicKey>,
    /// The audit key file (`--audit-key-file`): where a new bank writes a generated auditor
    /// key. A store from before auditor keys gets [`upgrade_key_file`] instead, so its legacy
    /// first key there is never overwritten.
    pub key_file: PathBuf,
}

impl Custody {
    /// The custody `config` asks for.
    pub fn of(config: &Config) -> Self {
        Self {
            auditor: config.auditor_public_key,
            key_file: config.audit_key_file.clone(),
        }
    }
}

/// Where the first start of a store from before auditor keys writes a generated auditor key:
/// `<audit key file>.auditor`, beside the legacy first key.
pub fn upgrade_key_file(key_file: &Path) -> PathBuf {
    let mut name = key_file.as_os_str().to_os_string();
    name.push(".auditor");
    PathBuf::from(name)
}

/// Which engine keeps the bank's data, with its settings: chosen here, and nowhere else.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Storage {
    /// sled in the data directory (embedded, one bank node), its page cache bounded.
    Sled {
        /// The page cache, in bytes.
        cache_bytes: u64,
    },
    /// redb in the data directory (embedded, one bank node; `--engine redb`): its memory is
    /// bounded by its page cache however much the store holds.
    Redb {
        /// The page cache, in bytes.
        cache_bytes: u64,
    },
    /// A PostgreSQL database (`--database-url`), which several bank nodes may share; the
    /// data directory then holds nothing, its neighbours (auth, checkpoint and bank key
    /// files) stay this node's.
    Postgres {
        /// Where the database is.
        url: DatabaseUrl,
        /// The PEM CA certificate(s) the database's certificate must chain to
        /// (`--database-ca-file`): with it every connection is TLS, verified; without it,
        /// plaintext (see [`PgLedger::open`]).
        ca_file: Option<PathBuf>,
    },
}

/// A PostgreSQL connection URL (`postgres://user:password@host:port/database`). Its
/// `Debug` hides the password.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(pub String);

impl core::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // `scheme://user:password@rest`: the password goes.
        let url = &self.0;
        let shown = match (url.find("://"), url.rfind('@')) {
            (Some(scheme), Some(at)) if at > scheme => {
                let user = &url[scheme + 3..at];
                match user.find(':') {
                    Some(colon) => {
                        format!("{}{}:***{}", &url[..scheme + 3], &user[..colon], &url[at..])
                    }
                    None => url.clone(),
                }
            }
            _ => url.clone(),
        };
        f.write_str(&shown)
    }
}

impl Default for Storage {
    fn default() -> Self {
        Self::Sled {
            cache_bytes: crate::sled_ledger::DEFAULT_CACHE_BYTES,
        }
    }
}

impl Storage {
    /// Whether this engine's store exists at all, without opening it (opening creates): for
    /// sled a database in `dir`, for PostgreSQL the bank's schema in the database.
    fn holds_store(&self, dir: &Path) -> Result<bool, StoreError> {
        match self {
            Self::Sled { .. } => {
                Ok(matches!(place(dir)?, Place::Occupied) && SledLedger::exists_in(dir))
            }
            Self::Redb { .. } => {
                Ok(matches!(place(dir)?, Place::Occupied) && RedbLedger::exists_in(dir))
            }
            Self::Postgres { url, ca_file } => {
                PgLedger::holds_bank(&url.0, ca_file.as_deref()).map_err(StoreError::Database)
            }
        }
    }
}

/// Why `dir`, which holds no store of `storage`'s engine, is refused: it may hold the other
/// embedded engine's.
fn not_a_bank(storage: &Storage, dir: &Path) -> StoreError {
    let found = match storage {
        Storage::Sled { .. } if RedbLedger::exists_in(dir) => "redb",
        Storage::Redb { .. } if SledLedger::exists_in(dir) => "sled",
        _ => return StoreError::NotABank(dir.to_owned()),
    };
    StoreError::OtherEngine {
        path: dir.to_owned(),
        found,
    }
}

/// Why the store cannot be opened. Each message names the path and the way out.
#[derive(Debug)]
pub enum StoreError {
    /// A file or directory could not be read or written.
    Io(PathBuf, std::io::Error),
    /// The data directory holds something that is not a bank.
    NotABank(PathBuf),
    /// The data directory holds a bank kept by the other embedded engine.
    OtherEngine {
        /// The data directory.
        path: PathBuf,
        /// The engine whose store it holds (`sled`, `redb`).
        found: &'static str,
    },
    /// A first start would overwrite a file that belongs to another bank.
    Exists(PathBuf),
    /// The store was written by a newer version.
    TooNew {
        /// The data directory.
        path: PathBuf,
        /// Its format.
        found: u32,
    },
    /// The storage engine failed or found the store damaged.
    Damaged(PathBuf, String),
    /// Another process (the running bank) holds the store.
    InUse(String),
    /// The store's files could not be read or written (a full disk, say): worth a restart
    /// once the fault is fixed.
    Failing(IoFailure),
    /// The checkpoint file is missing, unreadable or of another bank.
    Checkpoint(CheckpointError),
    /// The PostgreSQL database cannot be reached, holds something else, or has a newer
    /// schema.
    Database(pg_ledger::OpenError),
    /// The bank's static key file is missing, unreadable or of another bank.
    BankKey(BankKeyError),
    /// A store from before auditor keys needs one, and the file a generated one would go to
    /// exists already.
    AuditorKeyFileExists(PathBuf),
    /// The auditor key given is not the one the store records (it cannot change).
    OtherAuditor {
        /// The auditor public key the store records (64 hex).
        recorded: String,
    },
    /// The checkpoint belongs to another bank.
    OtherBank {
        /// The checkpoint file.
        path: PathBuf,
    },
    /// The checkpoint vouches for another node's audit chain (a shared database).
    OtherChain {
        /// The checkpoint file.
        path: PathBuf,
        /// The chain it vouches for.
        chain: String,
        /// This node's chain (its name).
        node: String,
    },
    /// The store's audit chain is shorter than, or differs from, the checkpoint: it was
    /// damaged or rolled back.
    RolledBack {
        /// The data directory.
        path: PathBuf,
        /// The chain checked (`""`: the store's one chain).
        chain: String,
        /// Entries in the store's chain.
        store: u64,
        /// Entries the checkpoint vouches for.
        checkpoint: u64,
        /// The checkpoint file.
        file: PathBuf,
    },
}

const WAY_OUT: &str = "restore the data directory from a backup taken after the checkpoint, \
or, knowing that acknowledged transactions may be lost, start once with --reset-checkpoints \
(audited)";

impl core::fmt::Display for StoreError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Io(path, e) => write!(f, "{}: {e}", path.display()),
            Self::NotABank(path) => write!(
                f,
                "{}: not empty and holds no bank; refusing to create a bank over it (point \
                 --data-dir at an empty or absent directory)",
                path.display()
            ),
            Self::OtherEngine { path, found } => write!(
                f,
                "{}: holds a bank kept by {found}; start it with --engine {found}",
                path.display()
            ),
            Self::Exists(path) => write!(
                f,
                "{} already exists (it belongs to another bank); refusing to create a new bank \
                 over it: move it away or point --data-dir at that bank's data",
                path.display()
            ),
            Self::TooNew { path, found } => write!(
                f,
                "{}: store format {found} is newer than this bank-server knows ({FORMAT}); \
                 run a newer bank-server",
                path.display()
            ),
            Self::Damaged(path, detail) => write!(
                f,
                "{}: the store is damaged ({detail}); restore it from a backup",
                path.display()
            ),
            Self::InUse(detail) => f.write_str(detail),
            Self::Failing(e) => write!(f, "{e}"),
            Self::Checkpoint(CheckpointError::Missing(path)) => write!(
                f,
                "{}: the checkpoint file is missing, so the store cannot be checked against \
                 rollback; put it back (or point --checkpoint-file at it), or {WAY_OUT}",
                path.display()
            ),
            Self::Checkpoint(e) => write!(f, "{e}; {WAY_OUT}"),
            Self::BankKey(e) => write!(f, "{e}"),
            Self::Database(e) => write!(f, "the database: {e}"),
            Self::AuditorKeyFileExists(path) => write!(
                f,
                "{}: already exists; this store's audit log is from before auditor keys and \
                 needs one: start with --auditor-public-key (from `bank-server audit keygen` on \
                 the auditor's machine), or move that file away to have a key pair written there",
                path.display()
            ),
            Self::OtherAuditor { recorded } => write!(
                f,
                "--auditor-public-key is not the auditor key this bank records ({recorded}); \
                 a bank's auditor key cannot change: give that key or none"
            ),
            Self::OtherBank { path } => write!(
                f,
                "{}: the checkpoint belongs to another bank; point --checkpoint-file at this \
                 bank's, or {WAY_OUT}",
                path.display()
            ),
            Self::OtherChain { path, chain, node } => write!(
                f,
                "{}: the checkpoint vouches for the audit chain of node {chain:?}, but this node \
                 is {node:?}: point --checkpoint-file at this node's checkpoint file, or give \
                 the --node-name it belongs to",
                path.display()
            ),
            Self::RolledBack {
                path,
                chain,
                store,
                checkpoint,
                file,
            } => {
                let log = if chain.is_empty() {
                    "the store's audit log".to_owned()
                } else {
                    format!("the audit chain of node {chain:?}")
                };
                write!(
                    f,
                    "{}: {log} holds {store} entries but {} vouches for {checkpoint} (or a \
                     different history): the store was damaged or rolled back and would serve \
                     old balances; {WAY_OUT}",
                    path.display(),
                    file.display()
                )
            }
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io(_, e) => Some(e),
            Self::Checkpoint(e) => Some(e),
            Self::BankKey(e) => Some(e),
            Self::Database(e) => Some(e),
            _ => None,
        }
    }
}

impl StoreError {
    fn ledger(path: &Path, e: LedgerError) -> Self {
        match e {
            LedgerError::InUse(detail) => Self::InUse(detail),
            LedgerError::Io(failure) => Self::Failing(failure),
            other => Self::Damaged(path.to_owned(), other.to_string()),
        }
    }
}

/// An open store and its checkpoints.
pub struct Opened {
    /// The ledger.
    pub ledger: Box<dyn Ledger>,
    /// The checkpoint file the ledger writes after each durable commit.
    pub checkpoints: Arc<CheckpointFile>,
}

/// A bank ready to serve: its store and its static key.
pub struct OpenedBank {
    /// The store and its checkpoints.
    pub store: Opened,
    /// The bank's static key (the handshake proves it to terminals).
    pub bank_key: BankKey,
    /// The keys derived from it that protect secrets at rest (sealing, the password pepper).
    pub storage_keys: Arc<crate::secrets::StorageKeys>,
}

/// What is at the data directory's path.
enum Place {
    Absent,
    Empty,
    Occupied,
}

fn place(dir: &Path) -> Result<Place, StoreError> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => Ok(if entries.next().is_none() {
            Place::Empty
        } else {
            Place::Occupied
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Place::Absent),
        Err(e) => Err(StoreError::Io(dir.to_owned(), e)),
    }
}

/// Opens the ledger `storage` names in `dir`, turning a panic inside the engine (a damaged
/// store) into an error.
pub fn open_ledger(
    storage: &Storage,
    dir: &Path,
    node: Option<&NodeName>,
) -> Result<Box<dyn Ledger>, StoreError> {
    let opened = std::panic::catch_unwind(|| match storage {
        Storage::Sled { cache_bytes } => SledLedger::open_with_cache(dir, *cache_bytes)
            .map(|ledger| Box::new(ledger) as Box<dyn Ledger>)
            .map_err(|e| StoreError::ledger(dir, e)),
        Storage::Redb { cache_bytes } => RedbLedger::open_with_cache(dir, *cache_bytes)
            .map(|ledger| Box::new(ledger) as Box<dyn Ledger>)
            .map_err(|e| StoreError::ledger(dir, e)),
        Storage::Postgres { url, ca_file } => match node {
            Some(node) => PgLedger::open(&url.0, ca_file.as_deref(), node),
            None => PgLedger::open_reader(&url.0, ca_file.as_deref()),
        }
        .map(|ledger| Box::new(ledger) as Box<dyn Ledger>)
        .map_err(StoreError::Database),
    });
    match opened {
        Ok(result) => result,
        Err(_) => Err(StoreError::Damaged(
            dir.to_owned(),
            "the storage engine failed reading it".into(),
        )),
    }
}

/// Opens the bank in `config.data_dir`, creating it when the directory is absent or empty
/// (see [`crate::open`]); an existing store is checked against the checkpoint file, and its
/// static key read from `config.bank_key_file`.
pub fn open_or_create(config: &Config) -> Result<OpenedBank, StoreError> {
    let exists = match &config.storage {
        Storage::Sled { .. } | Storage::Redb { .. } => {
            matches!(place(&config.data_dir)?, Place::Occupied)
        }
        // A database with the schema but no bank in it (a first start that stopped between
        // the two) is created over: it holds nothing.
        postgres @ Storage::Postgres { .. } => postgres.holds_store(&config.data_dir)?,
    };
    if !exists {
        create(config)
    } else {
        if matches!(config.storage, Storage::Sled { .. } | Storage::Redb { .. }) {
            owner_only(&config.data_dir)?;
        }
        let store = open_checked(
            &config.data_dir,
            &config.checkpoint_file,
            &config.storage,
            config.reset_checkpoints,
            &Custody::of(config),
            &config.node_name,
        )?;
        let bank_key = bank_key_of(&*store.ledger, &config.data_dir, &config.bank_key_file)?;
        let storage_keys = seal_stored_keys(&*store.ledger, &config.data_dir, &bank_key)?;
        Ok(OpenedBank {
            store,
            bank_key,
            storage_keys,
        })
    }
}

/// Makes the data directory owner-only (0700), as it must be: the store inside holds every
/// account (its sealed keys and peppered hashes included). A looser directory is tightened, and
/// said so.
fn owner_only(dir: &Path) -> Result<(), StoreError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let io = |e| StoreError::Io(dir.to_owned(), e);
        let mode = std::fs::metadata(dir).map_err(io)?.permissions().mode() & 0o777;
        if mode != 0o700 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io)?;
            tracing::info!(dir = %dir.display(), was = format!("{mode:o}"), "made the data directory owner-only (0700)");
        }
    }
    Ok(())
}

/// Opens an existing bank for the offline admin commands: checked as a start is, its static
/// key read from `bank_key_file` (the terminal keys it stores are sealed under keys derived
/// from it).
pub fn open_for_admin(
    dir: &Path,
    checkpoint_file: &Path,
    bank_key_file: &Path,
    storage: &Storage,
    custody: &Custody,
    node: &NodeName,
) -> Result<Opened, StoreError> {
    let store = open_checked(dir, checkpoint_file, storage, false, custody, node)?;
    let bank_key = bank_key_of(&*store.ledger, dir, bank_key_file)?;
    seal_stored_keys(&*store.ledger, dir, &bank_key)?;
    Ok(store)
}

/// Gives the ledger the storage keys of `bank_key` (see [`crate::secrets`]); a store from
/// before keys were sealed has its plain ones sealed now, audited (`stored_keys_sealed`).
fn seal_stored_keys(
    ledger: &dyn Ledger,
    dir: &Path,
    bank_key: &BankKey,
) -> Result<Arc<crate::secrets::StorageKeys>, StoreError> {
    let fail = |e| StoreError::ledger(dir, e);
    let keys = Arc::new(crate::secrets::StorageKeys::of(bank_key));
    let event = AuditEvent::new("stored_keys_sealed", now_ms());
    let sealed = ledger.seal_secrets(keys.clone(), &event).map_err(fail)?;
    if sealed > 0 {
        ledger.sync().map_err(fail)?;
        tracing::warn!(
            sealed,
            "sealed the terminal keys the store kept in plain (older copies may remain in the \
             database's log until it reuses that space)"
        );
    }
    Ok(keys)
}

/// The static key of the bank in `ledger`: the one its identity records, read from `path`. A
/// store from before protocol v2 gets one now (the file at `path` if there is one, else a new
/// one written there), recorded in its identity and audited.
fn bank_key_of(ledger: &dyn Ledger, dir: &Path, path: &Path) -> Result<BankKey, StoreError> {
    let fail = |e| StoreError::ledger(dir, e);
    let identity = ledger
        .identity()
        .map_err(fail)?
        .ok_or_else(|| StoreError::NotABank(dir.to_owned()))?;
    if let Some(public) = &identity.bank_key {
        return bank_key::load(path, &identity.id, public).map_err(StoreError::BankKey);
    }
    let key = match bank_key::read(path, &identity.id).map_err(StoreError::BankKey)? {
        Some(key) => key,
        None => bank_key::create(path, &identity.id).map_err(StoreError::BankKey)?,
    };
    let mut event = AuditEvent::new("bank_key_recorded", now_ms());
    event.detail = Some(format!("public key {}", key.pin().public_hex()));
    if !ledger
        .record_bank_key(&key.pin().public_hex(), &event)
        .and_then(|recorded| ledger.sync().map(|()| recorded))
        .map_err(fail)?
    {
        return Err(StoreError::Damaged(
            dir.to_owned(),
            "a bank key appeared while one was being recorded".into(),
        ));
    }
    tracing::warn!(
        bank = %identity.id,
        bank_key_file = %path.display(),
        "recorded a static key for a bank created before protocol v2; terminals enrolled \
         before must be enrolled again"
    );
    Ok(key)
}

fn create(config: &Config) -> Result<OpenedBank, StoreError> {
    let custody = Custody::of(config);
    // Refuse before creating anything: these belong to another bank.
    let mut ours = vec![
        &config.auth_file,
        &config.checkpoint_file,
        &config.bank_key_file,
    ];
    if custody.auditor.is_none() {
        ours.push(&config.audit_key_file);
    }
    for path in ours {
        if std::fs::symlink_metadata(path).is_ok() {
            return Err(StoreError::Exists(path.clone()));
        }
    }
    let dir = &config.data_dir;
    std::fs::create_dir_all(dir).map_err(|e| StoreError::Io(dir.clone(), e))?;
    owner_only(dir)?;
    let ledger = open_ledger(&config.storage, dir, Some(&config.node_name))?;
    let id = random_id();
    let bank_key = bank_key::create(&config.bank_key_file, &id).map_err(StoreError::BankKey)?;
    let storage_keys = seal_stored_keys(&*ledger, dir, &bank_key)?;
    let pin = bank_key.pin();
    let auditor = match custody.auditor {
        Some(auditor) => auditor,
        None => {
            // A lab: the pair is made here, its private key written once and forgotten.
            let secret = AuditorSecret::random();
            write_new_secret_file(&custody.key_file, &secret.to_line())
                .map_err(|e| StoreError::Io(custody.key_file.clone(), e))?;
            tracing::warn!(
                audit_key_file = %custody.key_file.display(),
                "wrote the auditor's private key (no --auditor-public-key was given); move it \
                 off this machine: whoever holds it can read the audit log"
            );
            secret.public()
        }
    };
    let identity = BankIdentity {
        id,
        created_ms: now_ms(),
        format: FORMAT,
        bank_key: Some(pin.public_hex()),
        auditor_key: Some(auditor.to_hex()),
    };
    if !ledger
        .create_bank(&identity)
        .map_err(|e| StoreError::ledger(dir, e))?
    {
        return Err(StoreError::NotABank(dir.clone()));
    }
    // The first entry begins the first audit epoch; the first checkpoint is of it.
    let terminal = new_terminal("first terminal", now_ms(), config.first_terminal);
    let mut event = AuditEvent::new("terminal_added", now_ms());
    event.terminal = Some(terminal.id.to_string());
    event.detail = Some(config.first_terminal.to_string());
    ledger
        .add_terminal(&terminal, &event)
        .and_then(|()| ledger.sync())
        .map_err(|e| StoreError::ledger(dir, e))?;
    let checkpoints = start_checkpoints(&*ledger, dir, &identity, &config.checkpoint_file)?;
    write_new_secret_file(&config.auth_file, &auth_file_text(&terminal, &pin))
        .map_err(|e| StoreError::Io(config.auth_file.clone(), e))?;
    tracing::info!(bank = %identity.id, bank_key = %pin.public_hex(), auditor_key = %auditor, terminal = %terminal.id, auth_file = %config.auth_file.display(), "created a new bank");
    config.output.line("created");
    Ok(OpenedBank {
        store: Opened {
            ledger,
            checkpoints,
        },
        bank_key,
        storage_keys,
    })
}

/// A store from before auditor keys gets one (`custody`'s, or a pair generated here, its
/// private key written to [`upgrade_key_file`]), recorded in its identity, the key dropped from
/// its head, audited (`auditor_key_recorded`) as the first entry of its first exchange epoch;
/// its entries so far stay a legacy epoch. A store that has one keeps it: another given is
/// refused.
fn ensure_auditor_key(
    ledger: &dyn Ledger,
    dir: &Path,
    identity: &BankIdentity,
    custody: &Custody,
) -> Result<(), StoreError> {
    if let Some(recorded) = &identity.auditor_key {
        return match custody.auditor {
            Some(given) if given.to_hex() != *recorded => Err(StoreError::OtherAuditor {
                recorded: recorded.clone(),
            }),
            _ => Ok(()),
        };
    }
    let fail = |e| StoreError::ledger(dir, e);
    let (auditor, written) = match custody.auditor {
        Some(auditor) => (auditor, None),
        None => {
            let path = upgrade_key_file(&custody.key_file);
            let secret = AuditorSecret::random();
            write_new_secret_file(&path, &secret.to_line()).map_err(|e| {
                if e.kind() == std::io::ErrorKind::AlreadyExists {
                    StoreError::AuditorKeyFileExists(path.clone())
                } else {
                    StoreError::Io(path.clone(), e)
                }
            })?;
            (secret.public(), Some(path))
        }
    };
    let legacy = ledger
        .chain_position()
        .map_err(fail)?
        .map_or(0, |p| p.next_seq);
    let mut event = AuditEvent::new("auditor_key_recorded", now_ms());
    event.detail = Some(format!(
        "auditor public key {auditor}; entries before {legacy} are under the legacy first key"
    ));
    let upgraded = BankIdentity {
        format: FORMAT,
        auditor_key: Some(auditor.to_hex()),
        ..identity.clone()
    };
    if !ledger
        .record_auditor_key(&upgraded, &event)
        .and_then(|recorded| ledger.sync().map(|()| recorded))
        .map_err(fail)?
    {
        return Err(StoreError::Damaged(
            dir.to_owned(),
            "an auditor key appeared while one was being recorded".into(),
        ));
    }
    match written {
        Some(path) => tracing::warn!(
            bank = %identity.id,
            auditor_key = %auditor,
            auditor_key_file = %path.display(),
            legacy_entries = legacy,
            "the audit log was from before auditor keys: generated the auditor's key pair and \
             wrote its private key to a new file; move it off this machine, and give `audit \
             verify` both it and the legacy first key (one file: the legacy key's line, then \
             this one's)"
        ),
        None => tracing::warn!(
            bank = %identity.id,
            auditor_key = %auditor,
            legacy_entries = legacy,
            "the audit log was from before auditor keys: recorded the auditor's public key; \
             `audit verify` needs the auditor's key file with the legacy first key added"
        ),
    }
    Ok(())
}

/// Opens an existing bank for writing and checks it against its checkpoint file; with
/// `reset`, a store that fails the check is accepted as it is, the reset audited. A store from
/// before auditor keys gets one from `custody` (see [`Custody`]).
pub fn open_checked(
    dir: &Path,
    checkpoint_file: &Path,
    storage: &Storage,
    reset: bool,
    custody: &Custody,
    node: &NodeName,
) -> Result<Opened, StoreError> {
    // Never create a store here: a directory without a database holds no bank.
    if !storage.holds_store(dir)? {
        return Err(not_a_bank(storage, dir));
    }
    let ledger = open_ledger(storage, dir, Some(node))?;
    let fail = |e| StoreError::ledger(dir, e);
    let position = ledger.chain_position().map_err(fail)?;
    let (identity, position) = match (ledger.identity().map_err(fail)?, position) {
        (Some(identity), Some(position)) => (identity, position),
        (None, None) => return Err(StoreError::NotABank(dir.to_owned())),
        (Some(_), None) => {
            return Err(StoreError::Damaged(
                dir.to_owned(),
                "an identity but no audit log".into(),
            ))
        }
        (None, Some(_)) => {
            // A bank created before stores held an identity: record one, and start its
            // checkpoints from where its chain stands now.
            let identity = BankIdentity {
                id: random_id(),
                created_ms: now_ms(),
                format: FORMAT,
                bank_key: None,
                auditor_key: None,
            };
            // Checked before anything is written: a refused start changes nothing.
            if std::fs::symlink_metadata(checkpoint_file).is_ok() {
                return Err(StoreError::OtherBank {
                    path: checkpoint_file.to_owned(),
                });
            }
            if !ledger.adopt_identity(&identity).map_err(fail)? {
                return Err(StoreError::Damaged(
                    dir.to_owned(),
                    "an identity appeared while it was being recorded".into(),
                ));
            }
            tracing::warn!(bank = %identity.id, "recorded an identity for a bank created before identities");
            ensure_auditor_key(&*ledger, dir, &identity, custody)?;
            let checkpoints = start_checkpoints(&*ledger, dir, &identity, checkpoint_file)?;
            return Ok(Opened {
                ledger,
                checkpoints,
            });
        }
    };
    if identity.format > FORMAT {
        return Err(StoreError::TooNew {
            path: dir.to_owned(),
            found: identity.format,
        });
    }
    if matches!(storage, Storage::Postgres { .. }) && absent(checkpoint_file) {
        return join(ledger, dir, &identity, checkpoint_file, custody);
    }
    let chain = ledger.audit_chain_name();
    let checked = CheckpointFile::open(checkpoint_file)
        .map_err(StoreError::Checkpoint)
        .and_then(|(file, latest)| {
            if latest.chain == chain {
                check(&*ledger, dir, &identity, position, checkpoint_file, &latest)?;
                Ok(Some(file))
            } else if latest.chain.is_empty() {
                // A node's checkpoint from before per-node chains vouches for the shared
                // chain, now closed: held against it, then this node's own chain begins.
                check_shared(&*ledger, dir, &identity, checkpoint_file, &latest)?;
                Ok(None)
            } else {
                Err(StoreError::OtherChain {
                    path: checkpoint_file.to_owned(),
                    chain: latest.chain,
                    node: chain.clone(),
                })
            }
        });
    match checked {
        Ok(None) => join(ledger, dir, &identity, checkpoint_file, custody),
        Ok(Some(file)) => {
            let checkpoints = Arc::new(file);
            watch(&*ledger, &identity, &checkpoints);
            ensure_auditor_key(&*ledger, dir, &identity, custody)?;
            Ok(Opened {
                ledger,
                checkpoints,
            })
        }
        Err(e)
            if reset
                && !matches!(
                    e,
                    StoreError::Io(..)
                        | StoreError::InUse(_)
                        | StoreError::Failing(_)
                        | StoreError::OtherChain { .. }
                ) =>
        {
            tracing::warn!(error = %e, "--reset-checkpoints: accepting the store as it is");
            ensure_auditor_key(&*ledger, dir, &identity, custody)?;
            let fail = |e| StoreError::ledger(dir, e);
            let mut event = AuditEvent::new("checkpoints_reset", now_ms());
            event.detail = Some(e.to_string().chars().take(300).collect());
            ledger.audit(&event).map_err(fail)?;
            ledger.sync().map_err(fail)?;
            let checkpoints = start_checkpoints(&*ledger, dir, &identity, checkpoint_file)?;
            Ok(Opened {
                ledger,
                checkpoints,
            })
        }
        Err(e) => Err(e),
    }
}

fn absent(path: &Path) -> bool {
    matches!(std::fs::symlink_metadata(path), Err(e) if e.kind() == std::io::ErrorKind::NotFound)
}

/// A node's first start on a shared database (PostgreSQL, no checkpoint file of its own yet,
/// or one from before per-node chains): its chain begins, or goes on, at a new epoch, the start
/// audited (`node_joined`) as its first entry there, and its checkpoints begin where its chain
/// stands now. The rollback check thus covers a node's chain from its first start on; a
/// checkpoint file removed is taken for a new node, and says so in its chain.
fn join(
    ledger: Box<dyn Ledger>,
    dir: &Path,
    identity: &BankIdentity,
    checkpoint_file: &Path,
    custody: &Custody,
) -> Result<Opened, StoreError> {
    let fail = |e| StoreError::ledger(dir, e);
    ensure_auditor_key(&*ledger, dir, identity, custody)?;
    let mut event = AuditEvent::new("node_joined", now_ms());
    event.detail = Some(format!(
        "node {:?}, checkpoint file {}",
        ledger.audit_chain_name(),
        checkpoint_file.display()
    ));
    ledger.audit(&event).map_err(fail)?;
    ledger.sync().map_err(fail)?;
    tracing::warn!(
        bank = %identity.id,
        checkpoint_file = %checkpoint_file.display(),
        "no checkpoint file: this node joins the bank's database and starts its checkpoints now"
    );
    let checkpoints = start_checkpoints(&*ledger, dir, identity, checkpoint_file)?;
    Ok(Opened {
        ledger,
        checkpoints,
    })
}

/// The checkpoint file `file` must be of this bank.
fn of_this_bank(
    identity: &BankIdentity,
    file: &Path,
    latest: &Checkpoint,
) -> Result<(), StoreError> {
    if latest.bank_id == identity.id {
        Ok(())
    } else {
        Err(StoreError::OtherBank {
            path: file.to_owned(),
        })
    }
}

/// The store's chain must hold the checkpoint's entries, the last one hashing alike.
fn check(
    ledger: &dyn Ledger,
    dir: &Path,
    identity: &BankIdentity,
    position: ChainPosition,
    file: &Path,
    latest: &Checkpoint,
) -> Result<(), StoreError> {
    of_this_bank(identity, file, latest)?;
    let rolled_back = || StoreError::RolledBack {
        path: dir.to_owned(),
        chain: latest.chain.clone(),
        store: position.next_seq,
        checkpoint: latest.next_seq,
        file: file.to_owned(),
    };
    if position.next_seq < latest.next_seq {
        return Err(rolled_back());
    }
    let same = match latest.next_seq.checked_sub(1) {
        None => true,
        Some(last) => ledger
            .audit_entry(last)
            .map_err(|e| StoreError::ledger(dir, e))?
            .is_some_and(|entry| protocol::primitives::sha256(&[&entry]) == latest.last_hash),
    };
    if same {
        Ok(())
    } else {
        Err(rolled_back())
    }
}

/// A checkpoint of the chain every node shared before per-node chains (named `""`, closed
/// since): that chain must hold its entries, the last one hashing alike.
fn check_shared(
    ledger: &dyn Ledger,
    dir: &Path,
    identity: &BankIdentity,
    file: &Path,
    latest: &Checkpoint,
) -> Result<(), StoreError> {
    of_this_bank(identity, file, latest)?;
    let chains = ledger
        .audit_chains()
        .map_err(|e| StoreError::ledger(dir, e))?;
    let shared = chains.iter().find(|log| log.chain.is_empty());
    let store = shared
        .and_then(|log| log.head)
        .map_or(0, |head| head.next_seq);
    let same = match latest.next_seq.checked_sub(1) {
        None => true,
        Some(last) => shared
            .and_then(|log| log.entries.iter().find(|(seq, _)| *seq == last))
            .is_some_and(|(_, entry)| protocol::primitives::sha256(&[entry]) == latest.last_hash),
    };
    if store >= latest.next_seq && same {
        Ok(())
    } else {
        Err(StoreError::RolledBack {
            path: dir.to_owned(),
            chain: String::new(),
            store,
            checkpoint: latest.next_seq,
            file: file.to_owned(),
        })
    }
}

/// Writes a fresh checkpoint file at the chain's tip (the ledger has appended, and synced, an
/// entry of its own epoch: its key MACs the checkpoint) and watches the ledger.
fn start_checkpoints(
    ledger: &dyn Ledger,
    dir: &Path,
    identity: &BankIdentity,
    file: &Path,
) -> Result<Arc<CheckpointFile>, StoreError> {
    let tip = ledger.chain_tip().ok_or_else(|| {
        StoreError::Damaged(dir.to_owned(), "no audit entry to checkpoint".into())
    })?;
    let chain = ledger.audit_chain_name();
    let checkpoints = Arc::new(
        CheckpointFile::create(
            file,
            &Checkpoint::of_chain(&identity.id, &chain, &tip, now_ms()),
        )
        .map_err(StoreError::Checkpoint)?,
    );
    watch(ledger, identity, &checkpoints);
    Ok(checkpoints)
}

/// After each flush, records a checkpoint of the chain as the flush began (once this process
/// has appended: the checkpoint is MACed with its epoch's key).
fn watch(ledger: &dyn Ledger, identity: &BankIdentity, checkpoints: &Arc<CheckpointFile>) {
    let (bank_id, file) = (identity.id.clone(), checkpoints.clone());
    let chain = ledger.audit_chain_name();
    ledger.on_durable(Arc::new(move |tip: &ChainTip| {
        if tip.head().next_seq <= file.latest().next_seq {
            return Ok(());
        }
        let checkpoint = Checkpoint::of_chain(&bank_id, &chain, tip, now_ms());
        file.record(&checkpoint).map_err(|e| match e {
            CheckpointError::Io(path, e) => LedgerError::Io(IoFailure::new(
                format!("writing the checkpoint file {}", path.display()),
                e,
            )),
            other => LedgerError::Storage(other.to_string()),
        })?;
        // For a log shipper: an off-machine record of how far the chain reached.
        tracing::debug!(
            bank = %checkpoint.bank_id,
            chain = %checkpoint.chain,
            entries = checkpoint.next_seq,
            epoch = %checkpoint.epoch.map_or_else(|| "legacy".to_owned(), |e| e.to_string()),
            last_hash = %hex::encode(checkpoint.last_hash),
            mac = %hex::encode(checkpoint.mac),
            "checkpoint"
        );
        Ok(())
    }));
}

/// Opens an existing bank's store for reading (the auditor's commands: no checkpoint check,
/// nothing written); a damaged store is an error, never a panic.
pub fn open_existing(storage: &Storage, data_dir: &Path) -> Result<Box<dyn Ledger>, StoreError> {
    if !storage.holds_store(data_dir)? {
        return Err(not_a_bank(storage, data_dir));
    }
    let ledger = open_ledger(storage, data_dir, None)?;
    // Read from no node's chain (PostgreSQL, opened for reading): the bank is its identity.
    let exists = match storage {
        Storage::Sled { .. } | Storage::Redb { .. } => ledger.chain_position().map(|p| p.is_some()),
        Storage::Postgres { .. } => ledger.identity().map(|i| i.is_some()),
    };
    match exists {
        Ok(true) => Ok(ledger),
        Ok(false) => Err(StoreError::NotABank(data_dir.to_owned())),
        Err(e) => Err(StoreError::ledger(data_dir, e)),
    }
}

/// Reads the checkpoint file (for `audit verify --checkpoints`).
pub fn read_checkpoint(path: &Path) -> Result<Checkpoint, CheckpointError> {
    checkpoint::read(path)
}

fn random_id() -> String {
    let mut id = [0u8; 16];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut id);
    hex::encode(id)
}

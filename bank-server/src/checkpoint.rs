//! The checkpoint file: where the audit chain stood after the last durable commit (its length,
//! the hash of its last entry, the audit epoch then being written, and a MAC only the auditor
//! can check), kept outside the data directory so that a store found shorter or different at
//! start is refused, not served.
//!
//! The file holds two fixed-size slots of one JSON line each, written in turn with `pwrite`
//! and `fdatasync`: a write torn by a crash spoils at most the slot being written, and the
//! reader takes the valid slot that reaches furthest. So the file stays 1 KiB however long the
//! bank runs, and one sync covers each batch of transactions.
//!
//! A slot is format 2: `{"v":2,"bank":…,"seq":…,"epoch":…,"hash":…,"time_ms":…,"mac":…,
//! "sum":…}`, `epoch` naming the epoch whose key MACs it. Format 1 (no `epoch`; the MAC under
//! the legacy chain) is still read, and rewritten as it is, for a store from before auditor
//! keys until its next checkpoint. Format 3 is format 2 with `"chain":…` after `epoch`: the
//! checkpoint of a node's own chain on a shared database (its MAC bound to the chain too, see
//! [`crate::audit::chain_label`]); a checkpoint of the chain named `""` (sled's) stays format 2.

use std::fs::File;
use std::io::{self, Read as _};
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use protocol::primitives::sha256;
use serde::{Deserialize, Serialize};

use crate::audit::{ChainTip, EpochKind};

/// Bytes per slot (a JSON line padded with spaces, ending in a newline).
const SLOT: usize = 512;
/// The format of a slot that names its epoch (every checkpoint this code takes).
const VERSION: u32 = 2;
/// The format of a legacy log's checkpoint (no epoch), still read.
const LEGACY_VERSION: u32 = 1;
/// The format of a checkpoint of a node's chain (an epoch and the chain's name).
const CHAIN_VERSION: u32 = 3;

/// One checkpoint: the chain had `next_seq` entries, the last hashing to `last_hash`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// The bank it belongs to ([`crate::ledger::BankIdentity::id`]).
    pub bank_id: String,
    /// The audit chain it vouches for ([`crate::ledger::AuditLog::chain`]): `""` for a single
    /// node's store (and a shared database's chain from before per-node chains).
    pub chain: String,
    /// How many audit entries the chain held.
    pub next_seq: u64,
    /// The start of the audit epoch whose key MACs it (the epoch being written then); `None`
    /// for a checkpoint of a legacy log (format 1), MACed under its legacy chain.
    pub epoch: Option<u64>,
    /// SHA-256 of the last of them (all zero for an empty chain).
    pub last_hash: [u8; 32],
    /// When it was taken (Unix ms).
    pub time_ms: u64,
    /// [`crate::audit::AuditKey::checkpoint_mac`] under `K_{next_seq}` of the epoch.
    pub mac: [u8; 32],
}

impl Checkpoint {
    /// The checkpoint of the chain (named `""`) whose writer stands at `tip`.
    pub fn of(bank_id: &str, tip: &ChainTip, time_ms: u64) -> Self {
        Self::of_chain(bank_id, "", tip, time_ms)
    }

    /// The checkpoint of the chain `chain` whose writer stands at `tip`.
    pub fn of_chain(bank_id: &str, chain: &str, tip: &ChainTip, time_ms: u64) -> Self {
        let head = tip.head();
        Self {
            bank_id: bank_id.to_owned(),
            chain: chain.to_owned(),
            next_seq: head.next_seq,
            epoch: match tip.epoch().kind {
                EpochKind::Legacy => None,
                EpochKind::Exchange { .. } => Some(tip.epoch().start),
            },
            last_hash: head.prev_hash,
            time_ms,
            mac: tip.checkpoint_mac(&crate::audit::chain_label(bank_id, chain)),
        }
    }

    fn encode(&self) -> [u8; SLOT] {
        let fields = Fields {
            v: match (self.epoch, self.chain.is_empty()) {
                (None, _) => LEGACY_VERSION,
                (Some(_), true) => VERSION,
                (Some(_), false) => CHAIN_VERSION,
            },
            bank: self.bank_id.clone(),
            seq: self.next_seq,
            epoch: self.epoch,
            chain: (!self.chain.is_empty()).then(|| self.chain.clone()),
            hash: hex::encode(self.last_hash),
            time_ms: self.time_ms,
            mac: hex::encode(self.mac),
            sum: String::new(),
        };
        let sum = hex::encode(sha256(&[fields.summed().as_bytes()]));
        let line = serde_json::to_string(&Fields { sum, ..fields }).expect("fields serialize");
        let mut slot = [b' '; SLOT];
        slot[..line.len()].copy_from_slice(line.as_bytes());
        slot[SLOT - 1] = b'\n';
        slot
    }

    fn decode(slot: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(slot).ok()?;
        let fields: Fields = serde_json::from_str(text.trim_end()).ok()?;
        let sum = hex::encode(sha256(&[fields.summed().as_bytes()]));
        let known = match (fields.epoch, &fields.chain) {
            (Some(_), None) => fields.v == VERSION,
            (Some(_), Some(chain)) => fields.v == CHAIN_VERSION && !chain.is_empty(),
            (None, None) => fields.v == LEGACY_VERSION,
            (None, Some(_)) => false,
        };
        if !known || sum != fields.sum {
            return None;
        }
        Some(Self {
            bank_id: fields.bank,
            chain: fields.chain.unwrap_or_default(),
            next_seq: fields.seq,
            epoch: fields.epoch,
            last_hash: hex::decode(&fields.hash).ok()?.try_into().ok()?,
            time_ms: fields.time_ms,
            mac: hex::decode(&fields.mac).ok()?.try_into().ok()?,
        })
    }
}

/// A slot as stored.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Fields {
    v: u32,
    bank: String,
    seq: u64,
    /// Formats 2 and 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    epoch: Option<u64>,
    /// Format 3 only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    chain: Option<String>,
    hash: String,
    time_ms: u64,
    mac: String,
    /// SHA-256 of the other fields (a torn or damaged slot does not match).
    sum: String,
}

impl Fields {
    fn summed(&self) -> String {
        match (self.epoch, &self.chain) {
            (None, _) => format!(
                "{}|{}|{}|{}|{}|{}",
                self.v, self.bank, self.seq, self.hash, self.time_ms, self.mac
            ),
            (Some(epoch), None) => format!(
                "{}|{}|{}|{}|{}|{}|{}",
                self.v, self.bank, self.seq, epoch, self.hash, self.time_ms, self.mac
            ),
            (Some(epoch), Some(chain)) => format!(
                "{}|{}|{}|{}|{}|{}|{}|{}",
                self.v, self.bank, self.seq, epoch, chain, self.hash, self.time_ms, self.mac
            ),
        }
    }
}

/// Why the checkpoint file could not be used.
#[derive(Debug)]
pub enum CheckpointError {
    /// There is no checkpoint file.
    Missing(PathBuf),
    /// It could not be read or written.
    Io(PathBuf, io::Error),
    /// Neither slot holds a valid checkpoint.
    Unreadable(PathBuf),
}

impl core::fmt::Display for CheckpointError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Missing(path) => write!(f, "{}: no checkpoint file", path.display()),
            Self::Io(path, e) => write!(f, "{}: {e}", path.display()),
            Self::Unreadable(path) => {
                write!(f, "{}: holds no valid checkpoint", path.display())
            }
        }
    }
}

impl std::error::Error for CheckpointError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io(_, e) => Some(e),
            _ => None,
        }
    }
}

/// Reads the latest valid checkpoint in the file at `path`.
pub fn read(path: &Path) -> Result<Checkpoint, CheckpointError> {
    let mut file = File::open(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => CheckpointError::Missing(path.to_owned()),
        _ => CheckpointError::Io(path.to_owned(), e),
    })?;
    let mut bytes = Vec::with_capacity(2 * SLOT);
    file.by_ref()
        .take(2 * SLOT as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| CheckpointError::Io(path.to_owned(), e))?;
    bytes
        .chunks(SLOT)
        .take(2)
        .filter_map(Checkpoint::decode)
        .max_by_key(|c| c.next_seq)
        .ok_or_else(|| CheckpointError::Unreadable(path.to_owned()))
}

/// The open checkpoint file the bank writes after each durable commit.
pub struct CheckpointFile {
    path: PathBuf,
    /// The file, the slot to write next, and the latest checkpoint written.
    state: Mutex<(File, u64, Checkpoint)>,
}

impl CheckpointFile {
    /// Writes a new checkpoint file holding `first` (replacing any file at `path` at once, by
    /// a rename) and opens it.
    pub fn create(path: &Path, first: &Checkpoint) -> Result<Self, CheckpointError> {
        let fail = |e| CheckpointError::Io(path.to_owned(), e);
        let fresh = path.with_extension("checkpoint-new");
        let mut options = std::fs::OpenOptions::new();
        options.read(true).write(true).create(true).truncate(true);
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(&fresh).map_err(fail)?;
        let slot = first.encode();
        file.write_all_at(&slot, 0).map_err(fail)?;
        file.write_all_at(&slot, SLOT as u64).map_err(fail)?;
        file.sync_all().map_err(fail)?;
        std::fs::rename(&fresh, path).map_err(fail)?;
        sync_parent(path).map_err(fail)?;
        Ok(Self {
            path: path.to_owned(),
            state: Mutex::new((file, 0, first.clone())),
        })
    }

    /// Opens an existing checkpoint file; returns it with its latest checkpoint.
    pub fn open(path: &Path) -> Result<(Self, Checkpoint), CheckpointError> {
        let latest = read(path)?;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| CheckpointError::Io(path.to_owned(), e))?;
        let opened = Self {
            path: path.to_owned(),
            state: Mutex::new((file, 0, latest.clone())),
        };
        // Rewrite both slots with the latest, so the next write may take either.
        opened.record(&latest)?;
        opened.record(&latest)?;
        Ok((opened, latest))
    }

    /// Makes `checkpoint` the latest, durably (one `pwrite` and one `fdatasync`); one that
    /// reaches no further than the latest is skipped (two flushes may finish out of order).
    pub fn record(&self, checkpoint: &Checkpoint) -> Result<(), CheckpointError> {
        let fail = |e| CheckpointError::Io(self.path.clone(), e);
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let (file, slot, latest) = &mut *state;
        if checkpoint.next_seq <= latest.next_seq && checkpoint != latest {
            return Ok(());
        }
        file.write_all_at(&checkpoint.encode(), *slot * SLOT as u64)
            .map_err(fail)?;
        file.sync_data().map_err(fail)?;
        *slot = 1 - *slot;
        *latest = checkpoint.clone();
        Ok(())
    }

    /// The latest checkpoint written.
    pub fn latest(&self) -> Checkpoint {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .2
            .clone()
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Makes a rename or creation in `path`'s directory durable.
fn sync_parent(path: &Path) -> io::Result<()> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(parent)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{AuditEvent, AuditKey, AuditorKeys, AuditorSecret, ChainHead};

    fn tip(n: u64) -> ChainTip {
        let auditor = AuditorSecret::random().public();
        let mut tip = ChainTip::begin("b1", ChainHead::EMPTY, &auditor).1;
        for i in 0..n {
            tip = tip.append(&AuditEvent::new("deposit", i), [0; 16]).1;
        }
        tip
    }

    #[test]
    fn the_latest_valid_slot_wins_and_a_torn_slot_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bank.checkpoint");
        let first = Checkpoint::of("b1", &tip(1), 10);
        let file = CheckpointFile::create(&path, &first).unwrap();
        assert_eq!(read(&path).unwrap(), first);
        let second = Checkpoint::of("b1", &tip(2), 20);
        let third = Checkpoint::of("b1", &tip(3), 30);
        file.record(&second).unwrap();
        file.record(&third).unwrap();
        assert_eq!(read(&path).unwrap(), third);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 2 * SLOT as u64);
        // Tear the slot holding the latest: the other one (older) is read.
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[SLOT + 40] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(read(&path).unwrap(), second);
        // Both torn: unreadable.
        bytes[40] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        assert!(matches!(read(&path), Err(CheckpointError::Unreadable(_))));
        assert!(matches!(
            read(&dir.path().join("none")),
            Err(CheckpointError::Missing(_))
        ));
    }

    #[test]
    fn the_mac_is_the_auditors_to_check() {
        let auditor = AuditorSecret::random();
        let keys = AuditorKeys::new(
            Some(AuditorSecret::from_hex(&hex_of(&auditor)).unwrap()),
            None,
        );
        let (epoch, mut t) = ChainTip::begin("b1", ChainHead::EMPTY, &auditor.public());
        for i in 0..3 {
            t = t.append(&AuditEvent::new("deposit", i), [0; 16]).1;
        }
        let cp = Checkpoint::of("b1", &t, 5);
        assert_eq!(cp.epoch, Some(0));
        let k3 = keys.key_at("b1", &epoch, 3).unwrap();
        assert_eq!(cp.mac, k3.checkpoint_mac("b1", 3, Some(0), &cp.last_hash));
        let k2 = keys.key_at("b1", &epoch, 2).unwrap();
        assert_ne!(cp.mac, k2.checkpoint_mac("b1", 3, Some(0), &cp.last_hash));
        assert_ne!(cp.mac, k3.checkpoint_mac("b2", 3, Some(0), &cp.last_hash));
    }

    fn hex_of(secret: &AuditorSecret) -> String {
        secret.to_line().trim()["auditor-x25519 ".len()..].to_owned()
    }

    #[test]
    fn a_node_chain_s_checkpoint_names_it_and_is_bound_to_it() {
        let auditor = AuditorSecret::random();
        let keys = AuditorKeys::new(
            Some(AuditorSecret::from_hex(&hex_of(&auditor)).unwrap()),
            None,
        );
        let (epoch, mut t) = ChainTip::begin("b1/n1", ChainHead::EMPTY, &auditor.public());
        t = t.append(&AuditEvent::new("deposit", 1), [0; 16]).1;
        let cp = Checkpoint::of_chain("b1", "n1", &t, 5);
        let text = String::from_utf8(cp.encode().to_vec()).unwrap();
        assert!(
            text.starts_with("{\"v\":3,") && text.contains("\"chain\":\"n1\""),
            "{text}"
        );
        assert_eq!(Checkpoint::decode(&cp.encode()), Some(cp.clone()));
        let k1 = keys.key_at("b1/n1", &epoch, 1).unwrap();
        assert_eq!(
            cp.mac,
            k1.checkpoint_mac("b1/n1", 1, Some(0), &cp.last_hash)
        );
        // The chain named "" keeps format 2, as sled writes it.
        let plain = Checkpoint::of("b1", &tip(1), 5);
        assert!(plain.chain.is_empty());
        assert!(std::str::from_utf8(&plain.encode())
            .unwrap()
            .starts_with("{\"v\":2,"));
        assert_eq!(Checkpoint::decode(&plain.encode()), Some(plain));
    }

    #[test]
    fn legacy_slots_are_read_and_kept_in_their_format() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bank.checkpoint");
        let k0 = AuditKey::random();
        let mut legacy = ChainTip::legacy(k0.clone());
        for i in 0..2 {
            legacy = legacy.append(&AuditEvent::new("deposit", i), [0; 16]).1;
        }
        let old = Checkpoint::of("b1", &legacy, 7);
        assert_eq!(old.epoch, None);
        assert_eq!(
            old.mac,
            k0.evolved(2).checkpoint_mac("b1", 2, None, &old.last_hash)
        );
        let slot = old.encode();
        let text = std::str::from_utf8(&slot).unwrap();
        assert!(
            text.starts_with("{\"v\":1,") && !text.contains("epoch"),
            "{text}"
        );
        CheckpointFile::create(&path, &old).unwrap();
        let (reopened, latest) = CheckpointFile::open(&path).unwrap();
        assert_eq!(latest, old);
        assert_eq!(read(&path).unwrap(), old);
        // The next checkpoint (of an exchange epoch) is format 2 and wins.
        let new = Checkpoint::of("b1", &tip(3), 9);
        reopened.record(&new).unwrap();
        assert_eq!(read(&path).unwrap(), new);
        assert!(std::str::from_utf8(&new.encode())
            .unwrap()
            .starts_with("{\"v\":2,"));
        // A format-2 slot without its epoch, or a format-1 slot with one, is not valid.
        for (v, epoch) in [(2, None), (1, Some(0))] {
            let fields = Fields {
                v,
                bank: "b1".into(),
                seq: 1,
                epoch,
                chain: None,
                hash: "00".repeat(32),
                time_ms: 1,
                mac: "00".repeat(32),
                sum: String::new(),
            };
            let sum = hex::encode(sha256(&[fields.summed().as_bytes()]));
            let line = serde_json::to_string(&Fields { sum, ..fields }).unwrap();
            assert_eq!(Checkpoint::decode(line.as_bytes()), None, "{line}");
        }
    }
}

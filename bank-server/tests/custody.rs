//! The audit log's key custody against the real binary: a bank created with the auditor's
//! public key (from `audit keygen`, run elsewhere) holds no audit key anywhere, across clean
//! restarts, an offline admin command and a `kill -9`; the auditor, deriving every chain key
//! independently from the documented schedule, finds none of them in any file of the bank;
//! nothing found on the bank re-seals an entry; only the auditor's key file verifies; and a
//! store from before auditor keys keeps its log, checked with both keys, once upgraded.

mod common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use atm_client::{load_auth_file, Client};
use bank_server::audit::{AuditEvent, AuditorPublicKey, ChainHead, ChainTip, Epoch, EpochKind};
use bank_server::checkpoint::{Checkpoint, CheckpointFile};
use common::process::*;
use common::*;
use protocol::primitives::{hkdf_sha256, hmac_sha256};
use protocol::Response;

/// `bank-server audit keygen --out FILE` (on "the auditor's machine"); returns the public key.
fn keygen(out: &Path) -> String {
    let made = Command::new(BIN)
        .args(["audit", "keygen", "--out"])
        .arg(out)
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let public = String::from_utf8(made.stdout).unwrap().trim().to_owned();
    assert_eq!(public.len(), 64, "{public}");
    assert!(AuditorPublicKey::from_hex(&public).is_some());
    public
}

/// `audit verify|show` of `paths`'s store with the key file `key`: (exit code, stdout, stderr).
fn audit(paths: &Paths, command: &str, key: &Path) -> (Option<i32>, String, String) {
    audit_against(
        paths,
        command,
        key,
        &paths.data.with_file_name("data.checkpoint"),
    )
}

fn audit_against(
    paths: &Paths,
    command: &str,
    key: &Path,
    checkpoints: &Path,
) -> (Option<i32>, String, String) {
    let out = Command::new(BIN)
        .args(["audit", command, "--data-dir"])
        .arg(&paths.data)
        .arg("--audit-key-file")
        .arg(key)
        .arg("--checkpoints")
        .arg(checkpoints)
        .output()
        .unwrap();
    text(out)
}

fn text(out: Output) -> (Option<i32>, String, String) {
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Makes `n` deposits of 1.00 to alice on the bank at `addr` (registering her first when
/// `register`), each acknowledged.
async fn deposits(addr: &str, auth: &Path, register: bool, n: usize) {
    let auth = load_auth_file(auth).unwrap();
    let mut client = Client::connect(addr, &auth).await.unwrap();
    let first = if register {
        register_req("alice", "correct horse")
    } else {
        login_req("alice", "correct horse")
    };
    let reply = client.call(&first).await.unwrap();
    assert!(matches!(reply, Response::Welcome { .. }), "{reply:?}");
    for _ in 0..n {
        let reply = client.call(&deposit_req(100)).await.unwrap();
        assert!(matches!(reply, Response::Deposited { .. }), "{reply:?}");
    }
    client.close().await.unwrap();
}

/// Every regular file under `dir`, recursively (a stale socket is no file).
fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            files_under(&entry.path(), out);
        } else if kind.is_file() {
            out.push(entry.path());
        }
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let kind = entry.file_type().unwrap();
        let target = to.join(entry.file_name());
        if kind.is_dir() {
            copy_dir(&entry.path(), &target);
        } else if kind.is_file() {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// The stored log of the stopped bank in `data`, read from a copy (opening a store may write
/// to it): its id, epochs and entries.
fn stored_log(data: &Path, scratch: &Path) -> (String, Vec<Epoch>, Vec<Vec<u8>>) {
    copy_dir(data, scratch);
    let ledger = bank_server::store::open_existing(&Default::default(), scratch).unwrap();
    let id = ledger.identity().unwrap().unwrap().id;
    let log = ledger.audit_log().unwrap();
    let entries = (0u64..)
        .zip(log.entries)
        .map(|(seq, (at, entry))| {
            assert_eq!(seq, at);
            entry
        })
        .collect();
    (id, log.epochs, entries)
}

/// 32-byte secrets to look for, raw and as lowercase hex.
#[derive(Default)]
struct Needles {
    raw: HashSet<[u8; 32]>,
    hex: HashSet<Vec<u8>>,
}

impl Needles {
    fn add(&mut self, secret: [u8; 32]) {
        self.raw.insert(secret);
        self.hex.insert(hex::encode(secret).into_bytes());
    }

    /// How many windows of `bytes` are one of the needles.
    fn found_in(&self, bytes: &[u8]) -> usize {
        let raw = bytes
            .windows(32)
            .filter(|w| self.raw.contains(<&[u8; 32]>::try_from(*w).unwrap()))
            .count();
        let hex = bytes.windows(64).filter(|w| self.hex.contains(*w)).count();
        raw + hex
    }
}

fn hmac(key: &[u8; 32], label: &[u8]) -> [u8; 32] {
    hmac_sha256(key, &[label])
}

/// The auditor's private key from the auditor's key file.
fn auditor_secret(file: &Path) -> x25519_dalek::StaticSecret {
    let text = std::fs::read_to_string(file).unwrap();
    let hex = text.trim().strip_prefix("auditor-x25519 ").unwrap();
    let bytes: [u8; 32] = hex::decode(hex).unwrap().try_into().unwrap();
    x25519_dalek::StaticSecret::from(bytes)
}

/// Derives, as the auditor and independently of the bank's code (from the schedule the
/// README and `audit.rs` document), every secret of every epoch: the X25519 secret, the
/// first key, every evolved key up to the one held when the epoch ended, and each key's
/// encryption, MAC and checkpoint subkeys. Checks each entry's MAC with its derived MAC key,
/// so the keys are the bank's own. Returns the secrets and how many entries were checked.
fn every_secret(
    auditor: &x25519_dalek::StaticSecret,
    bank_id: &str,
    epochs: &[Epoch],
    entries: &[Vec<u8>],
) -> (Needles, usize, usize) {
    let auditor_public = x25519_dalek::PublicKey::from(auditor).to_bytes();
    let mut needles = Needles::default();
    let (mut checked, mut chain_keys) = (0, 0);
    for (n, epoch) in epochs.iter().enumerate() {
        let EpochKind::Exchange { ephemeral } = epoch.kind else {
            panic!("a bank created with auditor keys has no legacy epoch");
        };
        let shared = auditor
            .diffie_hellman(&x25519_dalek::PublicKey::from(ephemeral))
            .to_bytes();
        needles.add(shared);
        let info = [
            bank_id.as_bytes(),
            &epoch.start.to_be_bytes(),
            &ephemeral,
            &auditor_public,
        ]
        .concat();
        let first = hkdf_sha256(b"bank audit epoch", &shared, &info, 32).unwrap();
        let mut key: [u8; 32] = first[..].try_into().unwrap();
        let end = epochs
            .get(n + 1)
            .map_or(entries.len() as u64, |next| next.start);
        for seq in epoch.start..=end {
            chain_keys += 1;
            let mac_key = hmac(&key, b"bank audit mac");
            for secret in [
                key,
                hmac(&key, b"bank audit enc"),
                mac_key,
                hmac(&key, b"bank audit checkpoint"),
            ] {
                needles.add(secret);
            }
            if let Some(entry) = entries
                .get(usize::try_from(seq).unwrap())
                .filter(|_| seq < end)
            {
                let (head, rest) = entry.split_at(56);
                let (mac, ciphertext) = rest.split_at(32);
                let expected = hmac_sha256(
                    &mac_key,
                    &[
                        b"bank audit entry",
                        &head[..8],
                        &head[8..40],
                        &head[40..],
                        ciphertext,
                    ],
                );
                assert_eq!(
                    mac, expected,
                    "entry {seq}: the derived key is not the bank's"
                );
                checked += 1;
            }
            key = hmac(&key, b"bank audit evolve");
        }
    }
    (needles, checked, chain_keys)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_file_of_the_bank_holds_an_audit_key() {
    let auditor_dir = temp();
    let auditor_file = auditor_dir.path().join("auditor.key");
    let public = keygen(&auditor_file);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&auditor_file)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // Never over an existing file.
    let again = Command::new(BIN)
        .args(["audit", "keygen", "--out"])
        .arg(&auditor_file)
        .output()
        .unwrap();
    assert!(!again.status.success());

    let dir = temp();
    let paths = Paths::new(dir.path());
    let with_key = ["--auditor-public-key", public.as_str()];
    let mut logs = Vec::new();
    // Run 1: created for the auditor's key; 100 deposits; a clean stop.
    let bank = BankProcess::start_with(&paths, &with_key, "info");
    assert!(!paths.key.exists(), "the bank writes no audit key file");
    deposits(&bank.addr, &paths.auth, true, 100).await;
    bank.signal("TERM");
    let stderr = bank.stderr.clone();
    assert!(bank.wait());
    logs.extend(stderr.lock().unwrap().clone());
    // An offline admin command appends (its own epoch).
    let added = paths.command(&["terminal", "add", "--name", "second"]);
    assert!(added.status.success());
    // Run 2: 100 deposits, then `kill -9`.
    let mut bank = BankProcess::start_logging(&paths, "info");
    deposits(&bank.addr, &paths.auth, false, 100).await;
    bank.child.kill().unwrap();
    bank.child.wait().unwrap();
    logs.extend(bank.stderr.lock().unwrap().clone());
    drop(bank);
    // Run 3: 100 deposits after the crash; a clean stop.
    let bank = BankProcess::start_logging(&paths, "bank_server=debug");
    deposits(&bank.addr, &paths.auth, false, 100).await;
    bank.signal("TERM");
    let stderr = bank.stderr.clone();
    assert!(bank.wait());
    logs.extend(stderr.lock().unwrap().clone());
    // Run 4: a start that appends nothing begins no epoch; its key given again is accepted,
    // another refused.
    let bank = BankProcess::start_with(&paths, &with_key, "info");
    bank.signal("INT");
    assert!(bank.wait());
    let other = keygen(&auditor_dir.path().join("other.key"));
    let refused = paths.command(&["terminal", "list", "--auditor-public-key", &other]);
    assert_eq!(refused.status.code(), Some(1));
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        said.contains("cannot change") && said.contains(&public),
        "{said}"
    );

    // The auditor: derive every key from the store's public epoch records.
    let (bank_id, epochs, entries) = stored_log(&paths.data, &dir.path().join("copy"));
    assert_eq!(
        epochs.len(),
        4,
        "runs 1-3 and the admin command: {epochs:?}"
    );
    assert!(entries.len() >= 302, "{} entries", entries.len());
    let (needles, checked, chain_keys) =
        every_secret(&auditor_secret(&auditor_file), &bank_id, &epochs, &entries);
    assert_eq!(checked, entries.len(), "every entry's MAC checked");
    assert_eq!(chain_keys, entries.len() + epochs.len());
    // The search finds what is there.
    let planted = [
        &[7u8; 100][..],
        &needles.raw.iter().next().unwrap()[..],
        &[9; 10],
    ]
    .concat();
    assert_eq!(needles.found_in(&planted), 1);
    let planted_hex = hex::encode(needles.raw.iter().next().unwrap());
    assert_eq!(needles.found_in(planted_hex.as_bytes()), 1);

    // Every file the bank has: its data directory (recursively) and the files beside it.
    let mut files = Vec::new();
    files_under(&paths.data, &mut files);
    let data_files = files.len();
    for beside in [
        paths.data.with_file_name("data.checkpoint"),
        paths.data.with_file_name("data.bank-key"),
        paths.auth.clone(),
    ] {
        assert!(beside.is_file(), "{}", beside.display());
        files.push(beside);
    }
    let mut bytes = 0;
    for file in &files {
        let content = std::fs::read(file).unwrap();
        bytes += content.len();
        assert_eq!(
            needles.found_in(&content),
            0,
            "an audit key is in {}",
            file.display()
        );
    }
    let log = logs.join("\n");
    assert!(log.contains("checkpoint"), "the debug log was captured");
    assert_eq!(
        needles.found_in(log.as_bytes()),
        0,
        "an audit key is in the log"
    );
    eprintln!(
        "searched {} files ({data_files} in the data directory, {bytes} bytes) and {} bytes \
         of logs for {} secrets ({chain_keys} chain keys of {} entries in {} epochs, their \
         subkeys, the epochs' X25519 secrets), raw and hex: none found",
        files.len(),
        log.len(),
        needles.raw.len(),
        entries.len(),
        epochs.len()
    );

    // Only the auditor's key file checks the log.
    let (code, shown, said) = audit(&paths, "show", &auditor_file);
    assert_eq!(code, Some(0), "{said}");
    assert!(said.contains("audit log OK"), "{said}");
    assert_eq!(shown.lines().count(), entries.len());
    assert_eq!(shown.matches(" deposit user=alice").count(), 300, "{shown}");
    assert_eq!(audit(&paths, "verify", &auditor_file).0, Some(0));
    let (code, _, said) = audit(&paths, "verify", &paths.key);
    assert_eq!(code, Some(2), "no key file on the bank: {said}");
    assert!(said.contains("cannot check"), "{said}");
    let stranger = auditor_dir.path().join("stranger.key");
    keygen(&stranger);
    let (code, _, said) = audit(&paths, "verify", &stranger);
    assert_eq!(code, Some(1), "{said}");
    assert!(
        said.contains("BROKEN") && said.contains("audit entry 0:"),
        "{said}"
    );
}

/// Every 32-byte value in `bytes`, and the decoded value of every 64-character lowercase hex
/// run in it: whatever key someone holding the file could try.
fn candidates(bytes: &[u8], into: &mut HashSet<[u8; 32]>) {
    for window in bytes.windows(32) {
        into.insert(window.try_into().unwrap());
    }
    for window in bytes.windows(64) {
        if window
            .iter()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
        {
            into.insert(hex::decode(window).unwrap().try_into().unwrap());
        }
    }
}

/// Writes `edit`'s changes to the raw sled trees of a copy of `paths.data` at `to`.
fn tamper(paths: &Paths, to: &Path, edit: impl FnOnce(&sled::Tree, &sled::Tree)) -> Paths {
    let copy = Paths::new(to);
    copy_dir(&paths.data, &copy.data);
    let db = sled::open(&copy.data).unwrap();
    edit(
        &db.open_tree("audit").unwrap(),
        &db.open_tree("meta").unwrap(),
    );
    db.flush().unwrap();
    copy
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_on_the_bank_reseals_an_entry() {
    let auditor_dir = temp();
    let auditor_file = auditor_dir.path().join("auditor.key");
    let public = keygen(&auditor_file);
    let dir = temp();
    let paths = Paths::new(dir.path());
    let bank = BankProcess::start_with(&paths, &["--auditor-public-key", &public], "warn");
    deposits(&bank.addr, &paths.auth, true, 5).await;
    bank.signal("TERM");
    assert!(bank.wait());
    let checkpoint_file = paths.data.with_file_name("data.checkpoint");
    let offsite = auditor_dir.path().join("offsite.checkpoint");
    std::fs::copy(&checkpoint_file, &offsite).unwrap();
    let (bank_id, _, entries) = stored_log(&paths.data, &dir.path().join("copy"));
    assert_eq!(entries.len(), 7, "terminal_added, register, 5 deposits");

    // Whatever 32 bytes the bank's files hold, as a chain key or as a MAC key, none re-MACs
    // an entry: here entry 2, a deposit.
    let mut tried = HashSet::new();
    let mut files = Vec::new();
    files_under(&paths.data, &mut files);
    files.extend([
        checkpoint_file.clone(),
        paths.data.with_file_name("data.bank-key"),
        paths.auth.clone(),
    ]);
    for file in &files {
        candidates(&std::fs::read(file).unwrap(), &mut tried);
    }
    let entry = &entries[2];
    let (head, rest) = entry.split_at(56);
    let (mac, ciphertext) = rest.split_at(32);
    let fields: [&[u8]; 5] = [
        b"bank audit entry",
        &head[..8],
        &head[8..40],
        &head[40..],
        ciphertext,
    ];
    let resealed = tried
        .iter()
        .filter(|key| {
            hmac_sha256(&hmac(key, b"bank audit mac"), &fields) == mac
                || hmac_sha256(*key, &fields) == mac
        })
        .count();
    eprintln!(
        "tried {} distinct 32-byte values from {} files of the bank: {resealed} re-MAC entry 2",
        tried.len(),
        files.len()
    );
    assert_eq!(resealed, 0);

    // An entry rewritten (a bigger deposit) and sealed under the bank's own static key, the
    // likeliest secret on the machine: caught at that entry.
    let bank_key_hex = std::fs::read_to_string(paths.data.with_file_name("data.bank-key")).unwrap();
    let guess: [u8; 32] = hex::decode(bank_key_hex.trim())
        .unwrap()
        .try_into()
        .unwrap();
    let rewritten = tamper(&paths, &dir.path().join("rewritten"), |audit, _| {
        let mut event = AuditEvent::new("deposit", 1);
        event.amount_cents = Some(1_000_000);
        let plaintext = serde_json::to_vec(&event).unwrap();
        let iv = [5u8; 16];
        let ct = protocol::primitives::aes256_cbc_encrypt(
            &hmac(&guess, b"bank audit enc"),
            &iv,
            &plaintext,
        );
        let mac = hmac_sha256(
            &hmac(&guess, b"bank audit mac"),
            &[b"bank audit entry", &head[..8], &head[8..40], &iv, &ct],
        );
        let forged = [&head[..40], &iv, &mac, &ct].concat();
        audit.insert(2u64.to_be_bytes(), forged).unwrap();
    });
    let (code, _, said) = audit_against(&rewritten, "verify", &auditor_file, &checkpoint_file);
    assert_eq!(code, Some(1), "{said}");
    assert!(said.contains("audit entry 2:"), "{said}");

    // What the bank can do after a crash, anyone holding its files can: start an epoch of
    // their own with the auditor's public key. Cut at entry 2 and continued with invented
    // entries, the log is whole in itself; the checkpoint catches it, and if they rewrite the
    // bank's checkpoint file too, only a copy kept off the machine does (README, "Audit log").
    let auditor = AuditorPublicKey::from_hex(&public).unwrap();
    let mut forged_tip = None;
    let cut = tamper(&paths, &dir.path().join("cut"), |audit, meta| {
        for seq in 2..7u64 {
            audit.remove(seq.to_be_bytes()).unwrap();
        }
        let at = ChainHead {
            next_seq: 2,
            prev_hash: protocol::primitives::sha256(&[&entries[1]]),
        };
        let (epoch, mut tip) = ChainTip::begin(&bank_id, at, &auditor);
        meta.insert(
            [&b"audit_epoch/"[..], &2u64.to_be_bytes()].concat(),
            epoch.to_bytes(),
        )
        .unwrap();
        for n in 0..10 {
            let mut event = AuditEvent::new("withdraw", n);
            event.amount_cents = Some(1);
            let (entry, next) = tip.append(&event, [u8::try_from(n).unwrap(); 16]);
            audit
                .insert(tip.head().next_seq.to_be_bytes(), entry)
                .unwrap();
            tip = next;
        }
        meta.insert("audit_head", &tip.head().to_bytes()[..])
            .unwrap();
        forged_tip = Some(tip);
    });
    let (code, _, said) = audit_against(&cut, "verify", &auditor_file, &checkpoint_file);
    assert_eq!(code, Some(1), "{said}");
    assert!(said.contains("differs from the one checkpointed"), "{said}");
    let forged_checkpoint = dir.path().join("forged.checkpoint");
    let forged = Checkpoint::of(&bank_id, &forged_tip.unwrap(), 1);
    CheckpointFile::create(&forged_checkpoint, &forged).unwrap();
    let (code, _, said) = audit_against(&cut, "verify", &auditor_file, &forged_checkpoint);
    assert_eq!(
        code,
        Some(0),
        "the documented limit: with the bank's checkpoint rewritten too, the log alone \
         passes: {said}"
    );
    let (code, _, said) = audit_against(&cut, "verify", &auditor_file, &offsite);
    assert_eq!(code, Some(1), "{said}");
    assert!(said.contains("differs from the one checkpointed"), "{said}");
}

/// A store as the code before auditor keys left it, built from the old formats: an identity
/// of format 1 without an auditor key, `n` entries sealed under the symmetric `k0`, a head
/// holding the current key, a format-1 checkpoint, and `k0` in the audit key file as bare hex.
fn legacy_store(paths: &Paths, k0: &bank_server::audit::AuditKey, n: u64) -> String {
    std::fs::create_dir_all(paths.data.parent().unwrap()).unwrap();
    let id =
        hex::encode(rand_core::RngCore::next_u64(&mut rand_core::OsRng).to_be_bytes()).repeat(2);
    let bank_key =
        bank_server::bank_key::create(&paths.data.with_file_name("data.bank-key"), &id).unwrap();
    let db = sled::open(&paths.data).unwrap();
    let (meta, audit) = (
        db.open_tree("meta").unwrap(),
        db.open_tree("audit").unwrap(),
    );
    let identity = serde_json::json!({
        "id": id,
        "created_ms": 1,
        "format": 1,
        "bank_key": bank_key.pin().public_hex(),
    });
    meta.insert("identity", serde_json::to_vec(&identity).unwrap())
        .unwrap();
    let mut tip = ChainTip::legacy(k0.clone());
    for seq in 0..n {
        let mut event = AuditEvent::new("terminal_added", seq);
        event.terminal = Some(format!("t-00000000000{seq}"));
        let (entry, next) = tip.append(&event, [u8::try_from(seq).unwrap(); 16]);
        audit.insert(seq.to_be_bytes(), entry).unwrap();
        tip = next;
    }
    let key = hex::decode(k0.evolved(n).to_hex().as_str()).unwrap();
    let head = [&n.to_be_bytes()[..], &key, &tip.head().prev_hash].concat();
    assert!(ChainHead::is_legacy_encoding(&head));
    meta.insert("audit_head", head).unwrap();
    db.flush().unwrap();
    drop(db);
    let checkpoint = Checkpoint::of(&id, &tip, 1);
    assert_eq!(checkpoint.epoch, None);
    CheckpointFile::create(&paths.data.with_file_name("data.checkpoint"), &checkpoint).unwrap();
    bank_server::terminals::write_new_secret_file(
        &paths.key,
        &format!("{}\n", k0.to_hex().as_str()),
    )
    .unwrap();
    id
}

/// The auditor's file holding the legacy first key's line, then the auditor key's.
fn combined(legacy: &Path, auditor: &Path, to: &Path) -> PathBuf {
    let text =
        std::fs::read_to_string(legacy).unwrap() + &std::fs::read_to_string(auditor).unwrap();
    std::fs::write(to, text).unwrap();
    to.to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_from_before_auditor_keys_keeps_its_log() {
    let dir = temp();
    let auditor_file = dir.path().join("auditor.key");
    let public = keygen(&auditor_file);

    // Given the auditor's key at its first start.
    let paths = Paths::new(&dir.path().join("given"));
    let k0 = bank_server::audit::AuditKey::random();
    legacy_store(&paths, &k0, 4);
    let k0_file = std::fs::read(&paths.key).unwrap();
    let (code, shown, said) = audit(&paths, "show", &paths.key);
    assert_eq!(
        code,
        Some(0),
        "before the upgrade, with its legacy key: {said}"
    );
    assert_eq!(shown.lines().count(), 4);
    let bank = BankProcess::start_with(&paths, &["--auditor-public-key", &public], "warn");
    let auth = dir.path().join("atm.auth");
    let added = Command::new(BIN)
        .args(["terminal", "add", "--out"])
        .arg(&auth)
        .args(paths.args())
        .output()
        .unwrap();
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    deposits(&bank.addr, &auth, true, 3).await;
    bank.signal("TERM");
    let stderr = bank.stderr.clone();
    assert!(bank.wait());
    let stderr = stderr.lock().unwrap().join("\n");
    assert!(stderr.contains("from before auditor keys"), "{stderr}");
    assert_eq!(
        std::fs::read(&paths.key).unwrap(),
        k0_file,
        "the legacy key file is untouched"
    );
    assert!(!bank_server::store::upgrade_key_file(&paths.key).exists());
    let (_, epochs, entries) = stored_log(&paths.data, &dir.path().join("copy"));
    assert_eq!(epochs[0], Epoch::legacy());
    assert_eq!(epochs[1].start, 4);
    assert!(matches!(epochs[1].kind, EpochKind::Exchange { .. }));
    assert_eq!(
        entries.len(),
        4 + 1 + 1 + 1 + 3,
        "legacy, recorded, added, register, deposits"
    );
    let checkpoint = std::fs::read_to_string(paths.data.with_file_name("data.checkpoint")).unwrap();
    assert!(checkpoint.starts_with("{\"v\":2,"), "{checkpoint}");
    // The old entries need the legacy key, the new ones the auditor's; together they pass.
    let (code, _, said) = audit(&paths, "verify", &auditor_file);
    assert_eq!(code, Some(2), "{said}");
    assert!(said.contains("holds no legacy first key"), "{said}");
    let (code, _, said) = audit(&paths, "verify", &paths.key);
    assert_eq!(code, Some(2), "{said}");
    assert!(said.contains("holds no auditor key"), "{said}");
    let both = combined(&paths.key, &auditor_file, &dir.path().join("both.key"));
    let (code, shown, said) = audit(&paths, "show", &both);
    assert_eq!(code, Some(0), "{said}");
    assert_eq!(shown.lines().count(), entries.len());
    assert_eq!(shown.matches(" terminal_added ").count(), 5, "{shown}");
    assert!(
        shown.contains(&format!(
            " auditor_key_recorded detail=auditor public key {public}; entries before 4 "
        )),
        "{shown}"
    );
    assert_eq!(shown.matches(" deposit user=alice").count(), 3, "{shown}");
    // The bank now holds its keys like a new one: no audit key in the head.
    let copy = dir.path().join("copy2");
    copy_dir(&paths.data, &copy);
    let head = sled::open(&copy)
        .unwrap()
        .open_tree("meta")
        .unwrap()
        .get("audit_head")
        .unwrap()
        .unwrap();
    assert!(!ChainHead::is_legacy_encoding(&head));

    // A lab bank without the auditor's key: the first command that opens it for writing
    // makes the pair, writing the private key beside (never over) the legacy key.
    let lab = Paths::new(&dir.path().join("lab"));
    let k0 = bank_server::audit::AuditKey::random();
    legacy_store(&lab, &k0, 3);
    let k0_file = std::fs::read(&lab.key).unwrap();
    let generated = bank_server::store::upgrade_key_file(&lab.key);
    // ...unless that file exists: refused, and nothing changes.
    std::fs::write(&generated, "mine\n").unwrap();
    let refused = lab.command(&["terminal", "list"]);
    assert_eq!(refused.status.code(), Some(1));
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        said.contains("already exists") && said.contains("--auditor-public-key"),
        "{said}"
    );
    assert_eq!(
        audit(&lab, "verify", &lab.key).0,
        Some(0),
        "still a legacy store"
    );
    std::fs::remove_file(&generated).unwrap();
    let listed = lab.command(&["terminal", "list"]);
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let said = String::from_utf8_lossy(&listed.stderr);
    assert!(said.contains(&generated.display().to_string()), "{said}");
    assert_eq!(std::fs::read(&lab.key).unwrap(), k0_file);
    let text = std::fs::read_to_string(&generated).unwrap();
    assert!(text.starts_with("auditor-x25519 "), "{text}");
    let both = combined(&lab.key, &generated, &dir.path().join("lab-both.key"));
    let (code, shown, said) = audit(&lab, "show", &both);
    assert_eq!(code, Some(0), "{said}");
    assert_eq!(
        shown.lines().count(),
        4,
        "three legacy entries and the recording"
    );
}

//! The audit log against tampering: editing a byte, deleting, swapping or truncating entries,
//! rewinding the head (caught by the checkpoint), re-sealing an old entry under a key of one's
//! own, or putting an epoch of one's own in its place is caught by `bank-server audit verify`,
//! which names the first bad entry; a missing or wrong key file is no verdict, or no pass.

mod common;

use std::path::Path;
use std::process::Command;

use bank_server::audit::{AuditEvent, AuditorPublicKey, ChainHead, ChainTip};
use common::*;

const BIN: &str = env!("CARGO_BIN_EXE_bank-server");

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Runs `audit verify` (against the bank's checkpoint file, beside the pristine data
/// directory); returns (exit code, stderr).
fn verify_code(data: &Path, key: &Path, checkpoints: &Path) -> (Option<i32>, String) {
    let out = Command::new(BIN)
        .args(["audit", "verify", "--data-dir"])
        .arg(data)
        .arg("--audit-key-file")
        .arg(key)
        .arg("--checkpoints")
        .arg(checkpoints)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Copies the pristine data dir, lets `edit` tamper with the raw sled trees, then verifies.
fn tampered(
    pristine: &Path,
    key: &Path,
    scratch: &Path,
    edit: impl FnOnce(&sled::Tree, &sled::Tree),
) -> (bool, String) {
    copy_dir(pristine, scratch);
    {
        let db = sled::open(scratch).unwrap();
        let audit = db.open_tree("audit").unwrap();
        let meta = db.open_tree("meta").unwrap();
        edit(&audit, &meta);
        db.flush().unwrap();
    }
    let (code, err) = verify_code(scratch, key, &checkpoint_of(pristine));
    (code == Some(0), err)
}

fn checkpoint_of(data: &Path) -> std::path::PathBuf {
    bank_server::default_checkpoint_file(data)
}

/// Runs `audit verify` on the pristine store; returns (success, stderr).
fn verify(data: &Path, key: &Path) -> (bool, String) {
    let (code, err) = verify_code(data, key, &checkpoint_of(data));
    (code == Some(0), err)
}

fn key(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampering_with_the_audit_log_is_detected() {
    let dir = temp();
    let bank = TestBank::in_dir(dir.path()).await;
    let mut alice = registered(&bank, "alice").await;
    for cents in [100, 200, 300] {
        alice.call(&deposit_req(cents)).await.unwrap();
    }
    alice.call(&withdraw_req(50)).await.unwrap();
    balance(&mut alice).await;
    alice.close().await.unwrap();
    let config = bank.config.clone();
    bank.stop().await;

    let pristine = config.data_dir.clone();
    let audit_key = config.audit_key_file.clone();
    let (ok, stderr) = verify(&pristine, &audit_key);
    assert!(ok, "{stderr}");
    // terminal_added, register, 3 deposits, withdraw, balance = 7 entries at least.
    let n = {
        let probe = dir.path().join("probe");
        copy_dir(&pristine, &probe);
        let db = sled::open(&probe).unwrap();
        db.open_tree("audit").unwrap().len() as u64
    };
    assert!(n >= 7, "{n} entries");
    let scratch = |name: &str| dir.path().join(name);

    // One byte edited in entry 3.
    let (ok, err) = tampered(&pristine, &audit_key, &scratch("edit"), |audit, _| {
        let mut entry = audit.get(key(3)).unwrap().unwrap().to_vec();
        let last = entry.len() - 1;
        entry[last] ^= 0x01;
        audit.insert(key(3), entry).unwrap();
    });
    assert!(!ok && err.contains("audit entry 3:"), "{err}");

    // Entry 3 deleted.
    let (ok, err) = tampered(&pristine, &audit_key, &scratch("delete"), |audit, _| {
        audit.remove(key(3)).unwrap();
    });
    assert!(!ok && err.contains("audit entry 3:"), "{err}");

    // Entries 2 and 4 swapped.
    let (ok, err) = tampered(&pristine, &audit_key, &scratch("swap"), |audit, _| {
        let two = audit.get(key(2)).unwrap().unwrap();
        let four = audit.get(key(4)).unwrap().unwrap();
        audit.insert(key(2), four).unwrap();
        audit.insert(key(4), two).unwrap();
    });
    assert!(!ok && err.contains("audit entry 2:"), "{err}");

    // The last two entries cut off.
    let (ok, err) = tampered(&pristine, &audit_key, &scratch("truncate"), |audit, _| {
        audit.remove(key(n - 1)).unwrap();
        audit.remove(key(n - 2)).unwrap();
    });
    assert!(
        !ok && err.contains(&format!("audit entry {}:", n - 2)),
        "{err}"
    );

    // Truncated and the head rewound to match: the head holds no key, so the log alone looks
    // whole; the checkpoint, which reaches further, catches it.
    let (ok, err) = tampered(&pristine, &audit_key, &scratch("rewind"), |audit, meta| {
        let last_kept = audit.get(key(n - 3)).unwrap().unwrap();
        audit.remove(key(n - 1)).unwrap();
        audit.remove(key(n - 2)).unwrap();
        let rewound = ChainHead {
            next_seq: n - 2,
            prev_hash: protocol::primitives::sha256(&[&last_kept]),
        };
        meta.insert("audit_head", &rewound.to_bytes()[..]).unwrap();
    });
    assert!(!ok && err.contains("truncated"), "{err}");

    // An old entry rewritten and re-sealed in an epoch of the forger's own, begun at its place
    // with the auditor's public key (which the store holds): the next entry no longer chains.
    let (ok, err) = tampered(&pristine, &audit_key, &scratch("forge"), |audit, meta| {
        let identity: serde_json::Value =
            serde_json::from_slice(&meta.get("identity").unwrap().unwrap()).unwrap();
        let auditor =
            AuditorPublicKey::from_hex(identity["auditor_key"].as_str().unwrap()).unwrap();
        let old = audit.get(key(2)).unwrap().unwrap();
        let at = ChainHead {
            next_seq: 2,
            prev_hash: old[8..40].try_into().unwrap(),
        };
        let (epoch, forger) = ChainTip::begin(identity["id"].as_str().unwrap(), at, &auditor);
        let mut event = AuditEvent::new("deposit", 1);
        event.amount_cents = Some(1_000_000);
        let (forged, _) = forger.append(&event, [7; 16]);
        audit.insert(key(2), forged).unwrap();
        meta.insert(
            [&b"audit_epoch/"[..], &2u64.to_be_bytes()].concat(),
            epoch.to_bytes(),
        )
        .unwrap();
    });
    assert!(!ok && err.contains("audit entry 3:"), "{err}");

    // The same without the epoch record: the entry fails under the real epoch's key.
    let (ok, err) = tampered(
        &pristine,
        &audit_key,
        &scratch("forge-in-place"),
        |audit, meta| {
            let identity: serde_json::Value =
                serde_json::from_slice(&meta.get("identity").unwrap().unwrap()).unwrap();
            let auditor =
                AuditorPublicKey::from_hex(identity["auditor_key"].as_str().unwrap()).unwrap();
            let old = audit.get(key(2)).unwrap().unwrap();
            let at = ChainHead {
                next_seq: 2,
                prev_hash: old[8..40].try_into().unwrap(),
            };
            let (_, forger) = ChainTip::begin(identity["id"].as_str().unwrap(), at, &auditor);
            let (forged, _) = forger.append(&AuditEvent::new("deposit", 1), [7; 16]);
            audit.insert(key(2), forged).unwrap();
        },
    );
    assert!(!ok && err.contains("audit entry 2:"), "{err}");

    // A wrong auditor key fails at the first entry, saying the store records another.
    let wrong_key = dir.path().join("wrong.key");
    std::fs::write(
        &wrong_key,
        bank_server::audit::AuditorSecret::random()
            .to_line()
            .as_str(),
    )
    .unwrap();
    let (code, err) = verify_code(&pristine, &wrong_key, &checkpoint_of(&pristine));
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("audit entry 0:") && err.contains("is it this bank's key file"),
        "{err}"
    );
    // No key file, one that is not one, or one without the auditor's key: no verdict.
    let legacy_only = dir.path().join("legacy-only.key");
    std::fs::write(&legacy_only, format!("{}\n", "11".repeat(32))).unwrap();
    let garbage = dir.path().join("garbage.key");
    std::fs::write(&garbage, "hello\n").unwrap();
    for (file, says) in [
        (dir.path().join("absent.key"), "No such file"),
        (garbage, "not an audit key file"),
        (legacy_only, "holds no auditor key"),
    ] {
        let (code, err) = verify_code(&pristine, &file, &checkpoint_of(&pristine));
        assert_eq!(code, Some(2), "{err}");
        assert!(err.contains("cannot check") && err.contains(says), "{err}");
    }

    // The pristine log still verifies (the copies were tampered with, not it).
    assert!(verify(&pristine, &audit_key).0);
}

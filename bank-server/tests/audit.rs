//! The audit log against tampering: editing a byte, deleting, swapping or truncating entries,
//! rewinding the head, or re-sealing an old entry with the bank's current key is caught by
//! `bank-server audit verify`, which names the first bad entry.

mod common;

use std::path::Path;
use std::process::Command;

use bank_server::audit::{AuditEvent, ChainHead};
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

/// Runs `audit verify`; returns (success, stderr).
fn verify(data: &Path, key: &Path) -> (bool, String) {
    let out = Command::new(BIN)
        .args(["audit", "verify", "--data-dir"])
        .arg(data)
        .arg("--audit-key-file")
        .arg(key)
        .output()
        .unwrap();
    (
        out.status.success(),
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
    verify(scratch, key)
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

    // Truncated and the head rewound to match, as far as an attacker can (the current key
    // cannot be turned back into an earlier one).
    let (ok, err) = tampered(&pristine, &audit_key, &scratch("rewind"), |audit, meta| {
        let head = ChainHead::from_bytes(&meta.get("audit_head").unwrap().unwrap()).unwrap();
        let last_kept = audit.get(key(n - 3)).unwrap().unwrap();
        audit.remove(key(n - 1)).unwrap();
        audit.remove(key(n - 2)).unwrap();
        let rewound = ChainHead {
            next_seq: n - 2,
            key: head.key,
            prev_hash: protocol::primitives::sha256(&[&last_kept]),
        };
        meta.insert("audit_head", rewound.to_bytes().as_slice())
            .unwrap();
    });
    assert!(!ok && err.contains("truncated"), "{err}");

    // An old entry rewritten and re-sealed with the bank's current (stolen) key.
    let (ok, err) = tampered(&pristine, &audit_key, &scratch("forge"), |audit, meta| {
        let head = ChainHead::from_bytes(&meta.get("audit_head").unwrap().unwrap()).unwrap();
        let old = audit.get(key(2)).unwrap().unwrap();
        let forger = ChainHead {
            next_seq: 2,
            key: head.key,
            prev_hash: old[8..40].try_into().unwrap(),
        };
        let mut event = AuditEvent::new("deposit", 1);
        event.amount_cents = Some(1_000_000);
        let (forged, _) = forger.append(&event, [7; 16]);
        audit.insert(key(2), forged).unwrap();
    });
    assert!(!ok && err.contains("audit entry 2:"), "{err}");

    // A wrong auditor key fails at the first entry.
    let wrong_key = dir.path().join("wrong.key");
    std::fs::write(&wrong_key, format!("{}\n", "11".repeat(32))).unwrap();
    let (ok, err) = verify(&pristine, &wrong_key);
    assert!(!ok && err.contains("audit entry 0:"), "{err}");

    // The pristine log still verifies (the copies were tampered with, not it).
    assert!(verify(&pristine, &audit_key).0);
}

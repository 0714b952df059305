//! Fuzz target: the admin socket's JSON lines. A line is read as the bank's socket reads it
//! (`TerminalOp`, at most 4096 bytes) and run on a real bank's ledger (`admin::execute`); the
//! same bytes are read as the command reads the bank's answer (`TerminalReply`).
//!
//! Asserts: nothing panics; an accepted operation prints back to JSON that reads as the same
//! operation; the answer is one that belongs to the operation and prints as a JSON line the
//! command reads back; a terminal added is listed afterwards, a revoked id was a terminal,
//! an answer read by the command prints back to the same JSON.
#![no_main]

mod bank;

use std::sync::Mutex;

use bank_server::admin::{execute, TerminalOp, TerminalReply};
use bank_server::Bank;
use libfuzzer_sys::fuzz_target;

/// A bank reused across inputs, opened anew every [`FRESH_EVERY`] operations so the store
/// stays small.
struct Held {
    bank: Bank,
    runs: u32,
    _dir: tempfile::TempDir,
}

const FRESH_EVERY: u32 = 500;

fn held() -> &'static Mutex<Option<Held>> {
    static HELD: Mutex<Option<Held>> = Mutex::new(None);
    &HELD
}

fn fresh() -> Held {
    let dir = bank::temp_dir();
    let (config, _) = bank::config(dir.path());
    let bank = bank_server::open(config).expect("the bank opens");
    Held {
        bank,
        runs: 0,
        _dir: dir,
    }
}

fn listed(bank: &Bank, id: &str) -> bool {
    match execute(bank.ledger(), TerminalOp::List) {
        TerminalReply::Listed { terminals } => terminals.iter().any(|t| t.id == id),
        _ => panic!("the list is refused"),
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() > 4096 {
        return;
    }
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(reply) = serde_json::from_str::<TerminalReply>(line) {
        let printed = serde_json::to_string(&reply).expect("a reply prints");
        let again: TerminalReply = serde_json::from_str(&printed).expect("a printed reply reads");
        assert_eq!(serde_json::to_string(&again).unwrap(), printed);
    }
    let Ok(op) = serde_json::from_str::<TerminalOp>(line) else {
        return;
    };
    let printed = serde_json::to_string(&op).expect("an operation prints");
    let again: TerminalOp = serde_json::from_str(&printed).expect("a printed operation reads");
    assert_eq!(serde_json::to_string(&again).unwrap(), printed);

    let mut guard = held().lock().unwrap_or_else(|e| e.into_inner());
    if guard.as_ref().is_none_or(|h| h.runs >= FRESH_EVERY) {
        *guard = None; // the old store closes before the next opens
        *guard = Some(fresh());
    }
    let held = guard.as_mut().expect("a bank");
    held.runs += 1;
    let bank = &held.bank;
    let revoking = match &op {
        TerminalOp::Revoke { id } => Some((id.clone(), listed(bank, id))),
        _ => None,
    };
    let reply = execute(bank.ledger(), op.clone());
    let text = serde_json::to_string(&reply).expect("a reply prints");
    assert!(!text.contains('\n'), "one line");
    serde_json::from_str::<TerminalReply>(&text).expect("the command reads the reply");
    match (&op, &reply) {
        (
            TerminalOp::Add { .. } | TerminalOp::AddOperator { .. },
            TerminalReply::Added {
                terminal_id, psk, ..
            },
        ) => {
            assert!(listed(bank, terminal_id), "an added terminal is listed");
            assert_eq!(psk.len(), 64);
        }
        (TerminalOp::AddCode { .. }, TerminalReply::CodeIssued { expires_ms, .. }) => {
            assert!(*expires_ms > 0);
        }
        (TerminalOp::List, TerminalReply::Listed { .. }) => {}
        (TerminalOp::Revoke { .. }, TerminalReply::Revoked) => {
            let (id, known) = revoking.expect("a revocation");
            assert!(known, "{id:?} was revoked without being a terminal");
        }
        (
            TerminalOp::AddOperator { .. }
            | TerminalOp::Revoke { .. }
            | TerminalOp::Add { .. }
            | TerminalOp::AddCode { .. },
            TerminalReply::Failed { error },
        ) => {
            assert!(!error.is_empty());
        }
        (op, _) => panic!("{op:?} got an answer of another operation"),
    }
});

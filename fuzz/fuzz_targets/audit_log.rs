//! Fuzz target: reading the audit log back (`audit::verify` with the auditor's keys, and
//! `audit::check_links`, which the bank runs without them), the stored epoch records and chain
//! head (`Epoch::from_bytes`, `ChainHead::from_bytes`) and the auditor's key file
//! (`AuditorKeys::parse`).
//!
//! A genuine log (a legacy epoch, then an epoch for the auditor's key) is built once; the input
//! decodes (`arbitrary`) into damage to it: bytes written into an entry, an entry replaced,
//! dropped or moved, an epoch record or the head replaced, or another key file. Asserts:
//! nothing panics; a damaged log either fails to verify or verifies to exactly the genuine
//! events (damage that changed nothing); a log that verifies also links; raw epoch and head
//! records that parse print back to the same bytes.
#![no_main]

use std::sync::OnceLock;

use arbitrary::Arbitrary;
use bank_server::audit::{
    self, AuditEvent, AuditKey, AuditorKeys, AuditorSecret, ChainHead, ChainTip, Epoch,
};
use libfuzzer_sys::fuzz_target;

const BANK: &str = "0123456789abcdef0123456789abcdef";

struct Log {
    keys_text: String,
    epochs: Vec<Epoch>,
    entries: Vec<(u64, Vec<u8>)>,
    head: ChainHead,
    events: Vec<AuditEvent>,
}

fn genuine() -> &'static Log {
    static LOG: OnceLock<Log> = OnceLock::new();
    LOG.get_or_init(|| {
        let secret = AuditorSecret::from_hex(&"17".repeat(32)).expect("a secret");
        let legacy = AuditKey::from_hex(&"42".repeat(32)).expect("a key");
        let keys_text = format!(
            "{}{}\n",
            secret.to_line().as_str(),
            legacy.to_hex().as_str()
        );
        let mut log = Log {
            keys_text,
            epochs: vec![Epoch::legacy()],
            entries: Vec::new(),
            head: ChainHead::EMPTY,
            events: Vec::new(),
        };
        let mut tip = ChainTip::legacy(legacy);
        for n in 0..6u64 {
            if n == 3 {
                let (epoch, next) = ChainTip::begin(BANK, *tip.head(), &secret.public());
                log.epochs.push(epoch);
                tip = next;
            }
            let mut event = AuditEvent::new(if n % 2 == 0 { "deposit" } else { "login" }, 1000 + n);
            event.amount_cents = Some(n * 100);
            event.user = Some(format!("user{n}"));
            let (entry, next) = tip.append(&event, [n as u8; 16]);
            log.entries.push((tip.head().next_seq, entry));
            log.events.push(event);
            tip = next;
        }
        log.head = *tip.head();
        let keys = AuditorKeys::parse(&log.keys_text).expect("the key file parses");
        let events = audit::verify(&keys, BANK, &log.epochs, &log.entries, Some(&log.head))
            .expect("the genuine log verifies");
        assert_eq!(events, log.events);
        log
    })
}

#[derive(Arbitrary, Debug)]
enum Damage {
    Write {
        entry: u8,
        at: u16,
        bytes: Vec<u8>,
    },
    Replace {
        entry: u8,
        bytes: Vec<u8>,
    },
    Drop {
        entry: u8,
    },
    Swap {
        a: u8,
        b: u8,
    },
    Renumber {
        entry: u8,
        seq: u64,
    },
    Epoch {
        index: u8,
        start: u64,
        bytes: Vec<u8>,
    },
    Head {
        bytes: Vec<u8>,
    },
    NoHead,
    KeyFile {
        text: String,
    },
}

fuzz_target!(|damage: Vec<Damage>| {
    let log = genuine();
    let mut keys_text = log.keys_text.clone();
    let mut epochs = log.epochs.clone();
    let mut entries = log.entries.clone();
    let mut head = Some(log.head);
    for d in damage.into_iter().take(8) {
        let n = entries.len().max(1);
        match d {
            Damage::Write { entry, at, bytes } => {
                if let Some((_, e)) = entries.get_mut(usize::from(entry) % n) {
                    let at = usize::from(at) % (e.len() + 1);
                    let end = (at + bytes.len()).min(e.len());
                    e.splice(at..end, bytes);
                }
            }
            Damage::Replace { entry, bytes } => {
                if let Some((_, e)) = entries.get_mut(usize::from(entry) % n) {
                    *e = bytes;
                }
            }
            Damage::Drop { entry } => {
                if !entries.is_empty() {
                    entries.remove(usize::from(entry) % n);
                }
            }
            Damage::Swap { a, b } => {
                if !entries.is_empty() {
                    let (a, b) = (usize::from(a) % n, usize::from(b) % n);
                    let (ea, eb) = (entries[a].1.clone(), entries[b].1.clone());
                    entries[a].1 = eb;
                    entries[b].1 = ea;
                }
            }
            Damage::Renumber { entry, seq } => {
                if let Some((at, _)) = entries.get_mut(usize::from(entry) % n) {
                    *at = seq;
                }
            }
            Damage::Epoch {
                index,
                start,
                bytes,
            } => {
                if let Some(epoch) = Epoch::from_bytes(start, &bytes) {
                    assert_eq!(epoch.start, start);
                    assert_eq!(epoch.to_bytes(), bytes);
                    let i = usize::from(index) % (epochs.len() + 1);
                    if i == epochs.len() {
                        epochs.push(epoch);
                    } else {
                        epochs[i] = epoch;
                    }
                }
            }
            Damage::Head { bytes } => {
                if let Some(h) = ChainHead::from_bytes(&bytes) {
                    if !ChainHead::is_legacy_encoding(&bytes) {
                        assert_eq!(h.to_bytes().as_slice(), bytes.as_slice());
                    }
                    head = Some(h);
                }
            }
            Damage::NoHead => head = None,
            Damage::KeyFile { text } => keys_text = text,
        }
    }
    let Ok(keys) = AuditorKeys::parse(&keys_text) else {
        return;
    };
    let _ = keys.missing_for(&epochs);
    let verified = audit::verify(&keys, BANK, &epochs, &entries, head.as_ref());
    let linked = audit::check_links(entries.iter().map(|(at, e)| (*at, e)), head.as_ref());
    if let Ok(events) = verified {
        assert_eq!(events, log.events, "a damaged log verified to other events");
        assert_eq!(
            linked,
            Ok(log.events.len() as u64),
            "a log that verifies links"
        );
    }
});

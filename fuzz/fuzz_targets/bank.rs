//! Fuzz fixtures for the targets that reach the bank: a bank in a temp directory (in memory
//! where `/dev/shm` exists) with cheap Argon2, an injected clock and its output kept in memory,
//! and the one tokio runtime its async code runs on.

#![allow(dead_code)] // each target uses part of the fixture

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, OnceLock};

use bank_server::ledger::DepositCeilings;
use bank_server::{Argon2Params, Clock, Config, Output};

/// Cheap Argon2 (the production cost is tested elsewhere).
pub const ARGON2: Argon2Params = Argon2Params {
    m_kib: 64,
    t: 1,
    p: 1,
};

/// Where the injected clock starts: 2026-01-01, Unix ms.
pub const START_MS: u64 = 1_767_225_600_000;

/// The runtime the bank's async code runs on (current thread, with a blocking pool).
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
    })
}

/// A temp directory in memory when there is one (sled syncs on every commit).
pub fn temp_dir() -> tempfile::TempDir {
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(dir) = tempfile::tempdir_in(shm) {
            return dir;
        }
    }
    tempfile::tempdir().expect("a temp dir")
}

/// A bank's configuration in `dir`, its clock the returned counter (Unix ms), its first
/// terminal without deposit ceilings.
pub fn config(dir: &std::path::Path) -> (Config, Arc<AtomicU64>) {
    let mut config = Config::new(
        dir.join("data"),
        dir.join("bank.auth"),
        dir.join("audit.key"),
    );
    let clock = Arc::new(AtomicU64::new(START_MS));
    config.clock = Clock::manual(clock.clone());
    config.argon2 = ARGON2;
    config.operator_argon2 = ARGON2;
    config.hash_workers = 1;
    config.output = Output::memory().0;
    config.first_terminal = DepositCeilings::NONE;
    config.web_root = dir.join("no-web-root");
    (config, clock)
}

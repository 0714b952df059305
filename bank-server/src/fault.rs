//! Storage faults: the first failed write (a full disk, an I/O error) marks the bank failing
//! (`/healthz` answers 503) and stops it soon after, since sled 0.34 refuses every later write
//! until the database is reopened; a supervisor restarts it once the fault is fixed.

use core::fmt;
use std::path::PathBuf;
use std::sync::OnceLock;

use tokio_util::sync::CancellationToken;

use crate::ledger::{IoFailure, LedgerError};

/// Exit status of a bank stopped by a storage fault: `EX_TEMPFAIL` (sysexits.h), "try again
/// later": restart it once the disk has room (or the device is replaced).
pub const EXIT_STORAGE_FAILED: u8 = 75;

/// The storage faults seen by this bank.
#[derive(Default)]
pub(crate) struct Faults {
    /// The first I/O failure.
    first: OnceLock<IoFailure>,
    /// Cancelled at the first failure.
    seen: CancellationToken,
}

impl Faults {
    /// Takes note of `error` if it is an I/O failure of the storage (refusals and other
    /// errors are not faults); logs the first one with its detail.
    pub(crate) fn report(&self, error: &LedgerError) {
        let LedgerError::Io(failure) = error else {
            return;
        };
        if self.first.set(failure.clone()).is_ok() {
            tracing::error!(error = %failure, "storage failing; the bank will stop");
        }
        self.seen.cancel();
    }

    /// The first I/O failure, once there was one.
    pub(crate) fn failing(&self) -> Option<&IoFailure> {
        self.first.get()
    }

    /// Resolves at the first I/O failure.
    pub(crate) async fn seen(&self) {
        self.seen.cancelled().await;
    }
}

/// Why [`crate::serve`] stopped on its own: the storage failed. Carried inside the
/// `std::io::Error` that `serve` returns (see [`StorageFailed::find`]).
#[derive(Debug)]
pub struct StorageFailed {
    /// The bank's data directory.
    pub data_dir: PathBuf,
    /// The first failure.
    pub source: IoFailure,
}

impl StorageFailed {
    /// The storage fault inside an error returned by [`crate::serve`], if that is why it
    /// stopped.
    pub fn find(error: &std::io::Error) -> Option<&Self> {
        error.get_ref()?.downcast_ref()
    }

    /// The storage fault inside an error returned by [`crate::serve`], or the error itself
    /// when it is something else.
    pub fn take(error: std::io::Error) -> Result<Self, std::io::Error> {
        if Self::find(&error).is_none() {
            return Err(error);
        }
        match error.into_inner().map(|inner| inner.downcast::<Self>()) {
            Some(Ok(failed)) => Ok(*failed),
            _ => unreachable!("checked by find"),
        }
    }
}

impl fmt::Display for StorageFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the storage in {} failed ({}); stopped so that a restart reopens it once the fault \
             is fixed (free disk space there)",
            self.data_dir.display(),
            self.source
        )
    }
}

impl std::error::Error for StorageFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

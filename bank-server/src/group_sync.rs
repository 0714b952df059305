//! Group commit for the PostgreSQL engine's checkpoints: many sessions wait for durability,
//! one blocking flush at a time serves them all. (The sled engine has its own flusher thread,
//! `writer`; it first replaced sled 0.34's `flush_async`, which deadlocks when called
//! concurrently: sled issue #1308.)

use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::watch;

use crate::ledger::LedgerError;
use crate::metrics::metrics;

/// The flush the group commit runs (sled's blocking `Db::flush`).
type Flush = Arc<dyn Fn() -> Result<(), LedgerError> + Send + Sync>;

struct State {
    /// Tickets handed out: each waiter takes one after its commit.
    requested: u64,
    /// Is a flusher running?
    running: bool,
}

/// Coalesces concurrent durability requests into as few flushes as possible. A flush that
/// starts after a waiter's commit covers that commit; a waiter is released by the first such
/// flush to finish.
pub(crate) struct GroupSync {
    flush: Flush,
    state: Mutex<State>,
    /// `(highest ticket covered by a finished flush, that flush's error)`.
    done: watch::Sender<(u64, Option<LedgerError>)>,
}

impl GroupSync {
    pub(crate) fn new(
        flush: impl Fn() -> Result<(), LedgerError> + Send + Sync + 'static,
    ) -> Arc<Self> {
        Arc::new(Self {
            flush: Arc::new(flush),
            state: Mutex::new(State {
                requested: 0,
                running: false,
            }),
            done: watch::channel((0, None)).0,
        })
    }

    /// Resolves once a flush that started after this call has finished. Call it after the
    /// commit returned; must be awaited inside a tokio runtime.
    pub(crate) async fn durable(self: Arc<Self>) -> Result<(), LedgerError> {
        let mut done = self.done.subscribe();
        let (ticket, start) = {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            state.requested += 1;
            let start = !state.running;
            state.running = true;
            (state.requested, start)
        };
        if start {
            let this = self.clone();
            tokio::task::spawn_blocking(move || this.flusher());
        }
        let finished = done
            .wait_for(|(covered, _)| *covered >= ticket)
            .await
            .map_err(|_| LedgerError::Storage("the flusher stopped".to_owned()))?;
        match &finished.1 {
            None => Ok(()),
            Some(e) => Err(e.clone()),
        }
    }

    /// Flushes until no ticket is left uncovered.
    fn flusher(&self) {
        loop {
            let target = self
                .state
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .requested;
            let covered = self.done.borrow().0;
            let started = Instant::now();
            let result = (self.flush)().err();
            metrics().flushed(target.saturating_sub(covered), started.elapsed());
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            self.done.send_replace((target, result));
            if state.requested == target {
                state.running = false;
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_waiters_share_flushes_and_each_is_covered() {
        let flushes = Arc::new(AtomicU64::new(0));
        let count = flushes.clone();
        let sync = GroupSync::new(move || {
            std::thread::sleep(std::time::Duration::from_millis(5));
            count.fetch_add(1, Ordering::SeqCst);
            Ok(())
        });
        let waiters: Vec<_> = (0..200)
            .map(|_| tokio::spawn(sync.clone().durable()))
            .collect();
        for w in waiters {
            w.await.unwrap().unwrap();
        }
        let n = flushes.load(Ordering::SeqCst);
        assert!((1..200).contains(&n), "{n} flushes for 200 waiters");
        // A later waiter still gets its own flush.
        sync.clone().durable().await.unwrap();
        assert_eq!(flushes.load(Ordering::SeqCst), n + 1);
    }

    #[tokio::test]
    async fn a_failed_flush_fails_its_waiters() {
        let sync = GroupSync::new(|| Err(LedgerError::Storage("disk on fire".into())));
        assert_eq!(
            sync.durable().await.unwrap_err(),
            LedgerError::Storage("disk on fire".into())
        );
    }
}

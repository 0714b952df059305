//! One writer thread and one flusher thread for an engine that commits in-process: the writer
//! takes every job queued on its channel, commits them as one batch, and hands the answers
//! that wait for durability to the flusher, which makes everything committed so far durable
//! with one flush for all of them. No job crosses tokio's blocking pool; each is answered
//! once, through its own channel.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;
use std::time::Instant;

use crate::ledger::LedgerError;
use crate::metrics::metrics;

/// An answer waiting for the first flush that begins after its change committed.
pub(crate) type Flushed = Box<dyn FnOnce(Result<(), LedgerError>) + Send>;

/// The most jobs committed in one batch.
const MAX_BATCH: usize = 4096;

/// A queued change, as the writer sees it.
pub(crate) trait Job: Send + 'static {
    /// Its batch committed: answers now, or returns the answer to give once a flush covers it.
    fn committed(self) -> Option<Flushed>;
    /// Its batch did not commit (nothing of it is stored).
    fn failed(self, e: LedgerError);
}

fn stopped() -> LedgerError {
    LedgerError::Storage("the writer stopped".into())
}

/// The two threads and their channels. Dropping it answers what is queued, then joins both.
pub(crate) struct Writer<J> {
    jobs: Option<Sender<J>>,
    flushes: Option<Sender<Flushed>>,
    threads: Vec<JoinHandle<()>>,
}

impl<J: Job> Writer<J> {
    /// Starts the threads: `commit` stores a batch atomically (all or nothing) and `flush`
    /// makes what is committed durable.
    pub(crate) fn spawn(
        name: &str,
        commit: impl FnMut(&[J]) -> Result<(), LedgerError> + Send + 'static,
        flush: impl Fn() -> Result<(), LedgerError> + Send + 'static,
    ) -> std::io::Result<Self> {
        let (jobs, queued) = mpsc::channel();
        let (flushes, waiting) = mpsc::channel();
        let to_flusher = flushes.clone();
        let flusher = std::thread::Builder::new()
            .name(format!("{name}-flush"))
            .spawn(move || flush_loop(&waiting, &flush))?;
        let writer = std::thread::Builder::new()
            .name(format!("{name}-write"))
            .spawn(move || write_loop(&queued, commit, &to_flusher))?;
        Ok(Self {
            jobs: Some(jobs),
            flushes: Some(flushes),
            threads: vec![writer, flusher],
        })
    }

    /// Queues `job`; a writer that stopped fails it at once.
    pub(crate) fn submit(&self, job: J) {
        let Some(jobs) = &self.jobs else {
            return job.failed(stopped());
        };
        if let Err(mpsc::SendError(job)) = jobs.send(job) {
            job.failed(stopped());
        }
    }

    /// Calls `waiter` once a flush that begins after this call has finished.
    pub(crate) fn after_flush(&self, waiter: Flushed) {
        let Some(flushes) = &self.flushes else {
            return waiter(Err(stopped()));
        };
        if let Err(mpsc::SendError(waiter)) = flushes.send(waiter) {
            waiter(Err(stopped()));
        }
    }
}

impl<J> Drop for Writer<J> {
    fn drop(&mut self) {
        // The writer ends once its queue is empty and closed, then the flusher once the
        // writer's answers are flushed: nothing queued goes unanswered.
        self.jobs = None;
        self.flushes = None;
        for thread in self.threads.drain(..) {
            // A thread that panicked has nothing left to answer.
            let _ = thread.join();
        }
    }
}

fn write_loop<J: Job>(
    queued: &Receiver<J>,
    mut commit: impl FnMut(&[J]) -> Result<(), LedgerError>,
    flusher: &Sender<Flushed>,
) {
    while let Ok(first) = queued.recv() {
        let mut batch = vec![first];
        batch.extend(queued.try_iter().take(MAX_BATCH - 1));
        // A change that panics fails its batch, not the writer.
        let outcome = catch_unwind(AssertUnwindSafe(|| commit(&batch))).unwrap_or_else(|_| {
            tracing::error!("a change panicked; its batch was not committed");
            Err(LedgerError::Storage("a change panicked".into()))
        });
        match outcome {
            Ok(()) => {
                for job in batch {
                    if let Some(waiter) = job.committed() {
                        if let Err(mpsc::SendError(waiter)) = flusher.send(waiter) {
                            waiter(Err(stopped()));
                        }
                    }
                }
            }
            Err(e) => {
                for job in batch {
                    job.failed(e.clone());
                }
            }
        }
    }
}

fn flush_loop(waiting: &Receiver<Flushed>, flush: &dyn Fn() -> Result<(), LedgerError>) {
    while let Ok(first) = waiting.recv() {
        // Everything received before the flush begins was committed before it: one flush
        // covers them all.
        let mut covered = vec![first];
        covered.extend(waiting.try_iter());
        let started = Instant::now();
        let result = flush();
        metrics().flushed(covered.len() as u64, started.elapsed());
        for waiter in covered {
            waiter(result.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};

    use super::*;

    /// Each job's id and answer, in the order given.
    type Answers = Arc<Mutex<Vec<(u64, Result<(), LedgerError>)>>>;

    /// A job that records its answer; `durable` ones wait for a flush.
    struct Probe {
        id: u64,
        durable: bool,
        answers: Answers,
    }

    impl Job for Probe {
        fn committed(self) -> Option<Flushed> {
            let answer = move |r| self.answers.lock().unwrap().push((self.id, r));
            if self.durable {
                Some(Box::new(answer))
            } else {
                answer(Ok(()));
                None
            }
        }

        fn failed(self, e: LedgerError) {
            self.answers.lock().unwrap().push((self.id, Err(e)));
        }
    }

    #[test]
    fn batches_share_flushes_and_every_job_is_answered_once_before_drop_returns() {
        let answers = Arc::new(Mutex::new(Vec::new()));
        let (batches, flushes) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let (b, f) = (batches.clone(), flushes.clone());
        let writer = Writer::spawn(
            "test",
            move |batch: &[Probe]| {
                b.fetch_add(1, Ordering::SeqCst);
                assert!(!batch.is_empty());
                std::thread::sleep(std::time::Duration::from_millis(1));
                Ok(())
            },
            move || {
                f.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(std::time::Duration::from_millis(2));
                Ok(())
            },
        )
        .unwrap();
        for id in 0..500 {
            writer.submit(Probe {
                id,
                durable: id % 2 == 0,
                answers: answers.clone(),
            });
        }
        drop(writer);
        let answers = answers.lock().unwrap();
        let mut ids: Vec<u64> = answers.iter().map(|(id, _)| *id).collect();
        ids.sort_unstable();
        assert_eq!(ids, (0..500).collect::<Vec<_>>(), "each answered once");
        assert!(answers.iter().all(|(_, r)| r.is_ok()));
        let (batches, flushes) = (
            batches.load(Ordering::SeqCst),
            flushes.load(Ordering::SeqCst),
        );
        assert!(batches < 500, "{batches} batches for 500 jobs");
        assert!(
            (1..250).contains(&flushes),
            "{flushes} flushes for 250 durable jobs"
        );
    }

    #[test]
    fn a_failed_flush_fails_its_waiters_and_a_failed_or_panicking_batch_its_jobs() {
        let answers = Arc::new(Mutex::new(Vec::new()));
        let writer = Writer::spawn(
            "test",
            |batch: &[Probe]| {
                assert!(batch.iter().all(|p| p.id != 7), "job 7 panics");
                if batch.iter().any(|p| p.id == 9) {
                    return Err(LedgerError::Storage("batch refused".into()));
                }
                Ok(())
            },
            || Err(LedgerError::Storage("disk on fire".into())),
        )
        .unwrap();
        let probe = |id| Probe {
            id,
            durable: true,
            answers: answers.clone(),
        };
        writer.submit(probe(7));
        writer.submit(probe(8));
        writer.submit(probe(9));
        drop(writer);
        let answers = answers.lock().unwrap();
        assert_eq!(answers.len(), 3);
        assert!(answers.iter().all(|(_, r)| r.is_err()));
        // Whether 8 shared 7's batch or not, it fails: by the panic or by the flush.
        assert!(
            answers
                .iter()
                .any(|(id, r)| *id == 7
                    && *r == Err(LedgerError::Storage("a change panicked".into())))
        );
    }
}

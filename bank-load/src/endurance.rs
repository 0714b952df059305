//! The storage and resource runs of the benchmark, each on its own fresh release bank: a
//! sustained load with the bank's memory and data directory sampled over time, sync calls per
//! transaction under `strace -c`, and restart time with a full data directory.
#![allow(clippy::float_arithmetic)] // rates, ratios and seconds are measurements, not money

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use atm_client::load_auth_file;
use serde::{Deserialize, Serialize};

use crate::load::{self, Mode, Options, Target};
use crate::proc;
use crate::servers::{err, load_average, spawn_bank, Server};
use crate::stats::Summary;
use crate::strace::{self, SyscallCount};

/// Where strace is expected.
pub const STRACE: &str = "/usr/bin/strace";
/// The syscalls that push data to the disk.
pub const SYNC_CALLS: &[&str] = &["fdatasync", "fsync", "sync_file_range", "msync"];
/// The memory target of the sustained run, KiB (256 MiB).
pub const RSS_LIMIT_KIB: u64 = 256 * 1024;
/// "Flat after warm-up": growth from the end of the warm-up to the end, at most this share of
/// the resident memory at the end of the warm-up.
pub const RSS_GROWTH_LIMIT: f64 = 0.10;
/// The disk target: bytes per acknowledged transaction at steady state.
pub const DISK_LIMIT_BYTES_PER_TX: f64 = 1024.0;
/// The restart target.
pub const RESTART_LIMIT: Duration = Duration::from_secs(1);

/// What to run (a length or count of 0 skips that part).
#[derive(Clone, Debug)]
pub struct EnduranceOptions {
    /// The release `bank-server` binary.
    pub bank_bin: PathBuf,
    /// Where the data directories go.
    pub work_dir: PathBuf,
    /// Prefix of every account name.
    pub run_id: String,
    /// Length of the sustained run.
    pub sustained: Duration,
    /// Sessions of the sustained run (and of the restart fill).
    pub sustained_sessions: usize,
    /// Seconds between samples.
    pub sample_every: Duration,
    /// Length of each strace run.
    pub syncs: Duration,
    /// Session counts of the strace runs.
    pub syncs_sessions: Vec<usize>,
    /// Transactions to store before timing a restart.
    pub restart_tx: u64,
}

/// One sample of the sustained run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Seconds since the sessions began connecting.
    pub secs: f64,
    /// The bank's resident memory (VmRSS), KiB.
    pub rss_kib: u64,
    /// Sum of the sizes of the files in the data directory, bytes.
    pub data_bytes: u64,
    /// Disk blocks allocated to them (as `du` counts), bytes.
    pub data_alloc_bytes: u64,
    /// Deposits and withdrawals acknowledged so far.
    pub acknowledged: u64,
}

/// The sustained run.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Sustained {
    /// What the generator measured over the whole run.
    pub summary: Summary,
    /// Seconds counted as warm-up: the steady state is from the first sample at or after it
    /// to the last sample.
    pub warmup_secs: f64,
    /// The samples, in order; the last one is taken after the sessions closed.
    pub samples: Vec<Sample>,
    /// The data directory's files at the end: path inside it and size in bytes.
    pub files: Vec<(String, u64)>,
    /// `/proc/loadavg` after the run.
    pub load_after: String,
}

impl Sustained {
    /// The steady-state window: the first sample at or after the warm-up, and the last.
    pub fn steady(&self) -> Option<(&Sample, &Sample)> {
        steady(&self.samples, self.warmup_secs)
    }
}

/// The first sample at or after `warmup_secs` and the last sample, if they differ.
pub fn steady(samples: &[Sample], warmup_secs: f64) -> Option<(&Sample, &Sample)> {
    let last = samples.last()?;
    let first = samples.iter().find(|s| s.secs >= warmup_secs)?;
    (first.secs < last.secs).then_some((first, last))
}

/// The sample nearest to `secs`.
pub fn nearest(samples: &[Sample], secs: f64) -> Option<&Sample> {
    samples
        .iter()
        .min_by(|a, b| (a.secs - secs).abs().total_cmp(&(b.secs - secs).abs()))
}

/// Resident memory growth from `a` to `b` as a share of `a`'s (negative: it shrank).
pub fn rss_growth(a: &Sample, b: &Sample) -> f64 {
    (b.rss_kib as f64 - a.rss_kib as f64) / (a.rss_kib as f64).max(1.0)
}

/// Bytes the data directory grew per transaction acknowledged from `a` to `b`: (file sizes,
/// allocated blocks); `None` when none was acknowledged in between.
pub fn bytes_per_tx(a: &Sample, b: &Sample) -> Option<(f64, f64)> {
    let txs = b
        .acknowledged
        .checked_sub(a.acknowledged)
        .filter(|&n| n > 0)? as f64;
    Some((
        (b.data_bytes as f64 - a.data_bytes as f64) / txs,
        (b.data_alloc_bytes as f64 - a.data_alloc_bytes as f64) / txs,
    ))
}

/// What a directory holds on disk.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DiskUsage {
    /// Sum of the file sizes, bytes.
    pub bytes: u64,
    /// Blocks allocated to the files, bytes.
    pub alloc_bytes: u64,
    /// Each file: path inside the directory, size in bytes (sorted by path).
    pub files: Vec<(String, u64)>,
}

/// Walks `dir` recursively (files only; an unreadable entry counts as nothing).
pub fn disk_usage(dir: &Path) -> DiskUsage {
    use std::os::unix::fs::MetadataExt as _;
    let mut usage = DiskUsage::default();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else {
                continue;
            };
            let path = entry.path();
            if meta.is_dir() {
                stack.push(path);
            } else if meta.is_file() {
                usage.bytes += meta.len();
                usage.alloc_bytes += meta.blocks() * 512;
                let name = path.strip_prefix(dir).unwrap_or(&path);
                usage.files.push((name.display().to_string(), meta.len()));
            }
        }
    }
    usage.files.sort();
    usage
}

/// One run under `strace -c`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Syncs {
    /// What the generator measured (throughput distorted by the tracing).
    pub summary: Summary,
    /// Accounts opened while setting the sessions up (each also a durable write).
    pub accounts_opened: u64,
    /// The sync calls strace counted over the bank's whole life (start, run, shutdown).
    pub calls: Vec<SyscallCount>,
}

impl Syncs {
    /// Durable writes acknowledged: deposits, withdrawals and account openings.
    pub fn acknowledged(&self) -> u64 {
        self.summary.durable_txs + self.accounts_opened
    }

    /// Calls of `name` per acknowledged durable write.
    pub fn per_tx(&self, name: &str) -> f64 {
        strace::calls(&self.calls, name) as f64 / self.acknowledged().max(1) as f64
    }
}

/// One timed restart.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Restart {
    /// Deposits and withdrawals acknowledged before the bank was stopped.
    pub stored_tx: u64,
    /// Accounts in the bank.
    pub accounts: u64,
    /// Size of the data directory's files when restarting, bytes.
    pub data_bytes: u64,
    /// From SIGINT to the bank's exit, seconds.
    pub stop_secs: f64,
    /// From spawning `bank-server` to its `serving on` line, seconds.
    pub serving_secs: f64,
    /// From spawning it to the first handshake, card login and correct balance, seconds.
    pub first_balance_secs: f64,
    /// Deposits and withdrawals written since the bank last started: sled replays the log
    /// they filled at its next open.
    #[serde(default)]
    pub since_start_tx: u64,
    /// The restarted bank's resident memory (VmRSS) once it answered the first balance, KiB.
    #[serde(default)]
    pub rss_kib: u64,
}

/// The restart runs: an almost empty bank (the floor) and the filled one at checkpoints.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Restarts {
    /// Sessions of the fill.
    pub sessions: usize,
    /// Durable transactions per second of the fill (every fill phase together).
    pub fill_tx_per_sec: f64,
    /// A bank holding only the probe account.
    pub empty: Restart,
    /// The filled bank, at half and at the full count.
    pub filled: Vec<Restart>,
    /// The full bank restarted once more right after, with nothing written in between.
    #[serde(default)]
    pub again: Option<Restart>,
}

/// Everything the storage and resource runs measured.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Endurance {
    /// The sustained run.
    pub sustained: Option<Sustained>,
    /// The strace runs.
    pub syncs: Vec<Syncs>,
    /// Why there are no strace runs, if they were asked for.
    pub syncs_skipped: Option<String>,
    /// The restart runs.
    pub restart: Option<Restarts>,
}

fn fresh_dir(work_dir: &Path, prefix: &str) -> Result<tempfile::TempDir, String> {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(work_dir)
        .map_err(err)
}

fn target_of(server: &Server, dir: &Path) -> Result<Target, String> {
    let auth = load_auth_file(dir.join("bank.auth")).map_err(err)?;
    Ok(Target {
        addr: server.addr.clone(),
        creds: auth,
    })
}

/// Runs every part asked for.
pub async fn run(opts: &EnduranceOptions) -> Result<Endurance, String> {
    let mut out = Endurance::default();
    if !opts.sustained.is_zero() {
        out.sustained = Some(sustained(opts).await?);
    }
    if !opts.syncs.is_zero() && !opts.syncs_sessions.is_empty() {
        match strace::available(STRACE) {
            Ok(()) => {
                for &sessions in &opts.syncs_sessions {
                    match syncs(opts, sessions).await {
                        Ok(s) => out.syncs.push(s),
                        Err(e) => {
                            eprintln!("bench: the strace run failed: {e}");
                            out.syncs_skipped = Some(format!("the strace run failed: {e}"));
                            break;
                        }
                    }
                }
            }
            Err(why) => {
                eprintln!("bench: no sync counts: {why}");
                out.syncs_skipped = Some(why);
            }
        }
    }
    if opts.restart_tx > 0 {
        out.restart = Some(restarts(opts).await?);
    }
    Ok(out)
}

fn sample(pid: u32, data: &Path, began: Instant, acknowledged: &AtomicU64) -> Sample {
    let usage = disk_usage(data);
    Sample {
        secs: began.elapsed().as_secs_f64(),
        rss_kib: proc::rss_kib(pid).unwrap_or(0),
        data_bytes: usage.bytes,
        data_alloc_bytes: usage.alloc_bytes,
        acknowledged: acknowledged.load(Ordering::Relaxed),
    }
}

async fn sustained(opts: &EnduranceOptions) -> Result<Sustained, String> {
    let dir = fresh_dir(&opts.work_dir, "bank-bench-sustained-")?;
    let sessions = opts.sustained_sessions.max(1);
    let bank = spawn_bank(&opts.bank_bin, &[], dir.path(), sessions.max(256), &[])?;
    let target = target_of(&bank, dir.path())?;
    let data = dir.path().join("data");
    let acknowledged = Arc::new(AtomicU64::new(0));
    let mut o = Options::new(
        Mode::Transactions,
        sessions,
        opts.sustained,
        &format!("{}-sustained", opts.run_id),
    );
    o.server_pid = Some(bank.pid());
    o.acknowledged = Some(acknowledged.clone());
    o.progress = Some(format!("sustained ({sessions} sessions)"));
    eprintln!(
        "bench: sustained run, {sessions} sessions for {} s, bank pid {}",
        opts.sustained.as_secs(),
        bank.pid()
    );
    let began = Instant::now();
    let mut handle = tokio::spawn(async move { load::run(&target, &o).await });
    let mut tick = tokio::time::interval(opts.sample_every.max(Duration::from_secs(1)));
    let mut samples = Vec::new();
    let summary = loop {
        tokio::select! {
            done = &mut handle => break done.map_err(err)?.map_err(err)?,
            _ = tick.tick() => samples.push(sample(bank.pid(), &data, began, &acknowledged)),
        }
    };
    samples.push(sample(bank.pid(), &data, began, &acknowledged));
    let files = disk_usage(&data).files;
    drop(bank);
    Ok(Sustained {
        summary,
        warmup_secs: (opts.sustained.as_secs_f64() / 2.0).min(60.0),
        samples,
        files,
        load_after: load_average(),
    })
}

async fn syncs(opts: &EnduranceOptions, sessions: usize) -> Result<Syncs, String> {
    let dir = fresh_dir(&opts.work_dir, "bank-bench-strace-")?;
    let counts = dir.path().join("strace.txt");
    let wrapper: Vec<String> = vec![
        STRACE.into(),
        "-f".into(),
        "-c".into(),
        "-e".into(),
        format!("trace={}", SYNC_CALLS.join(",")),
        "-o".into(),
        counts.display().to_string(),
    ];
    let mut bank = spawn_bank(&opts.bank_bin, &wrapper, dir.path(), sessions.max(256), &[])?;
    let target = target_of(&bank, dir.path())?;
    let mut o = Options::new(
        Mode::Transactions,
        sessions,
        opts.syncs,
        &format!("{}-strace{sessions}", opts.run_id),
    );
    o.server_pid = Some(bank.pid());
    o.progress = Some(format!("strace tx{sessions} ({sessions} sessions)"));
    let summary = load::run(&target, &o).await.map_err(err)?;
    bank.stop("TERM");
    if summary.durable_txs == 0 {
        let log = std::fs::read_to_string(dir.path().join("bank.log")).unwrap_or_default();
        return Err(format!(
            "no transaction was acknowledged ({} errors); the bank said: {}",
            summary.errors,
            log.lines().take(5).collect::<Vec<_>>().join(" / ")
        ));
    }
    let text =
        std::fs::read_to_string(&counts).map_err(|e| format!("{}: {e}", counts.display()))?;
    let syncs = Syncs {
        accounts_opened: summary.sessions as u64,
        summary,
        calls: strace::parse_summary(&text),
    };
    eprintln!(
        "strace tx{sessions}: {} acknowledged durable writes; per write: {}",
        syncs.acknowledged(),
        SYNC_CALLS
            .iter()
            .map(|c| format!("{c} {:.3}", syncs.per_tx(c)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(syncs)
}

/// Stops `bank` with SIGINT, restarts it on the same directory and times it; `stored_tx` and
/// `accounts` describe what the directory holds, `since_start_tx` what was written since the
/// bank last started.
async fn restart(
    opts: &EnduranceOptions,
    mut bank: Server,
    dir: &Path,
    probe: (&str, &protocol::CardSecret),
    (stored_tx, accounts, since_start_tx): (u64, u64, u64),
) -> Result<(Server, Restart), String> {
    let stop_secs = bank.stop("INT").as_secs_f64();
    drop(bank);
    let data_bytes = disk_usage(&dir.join("data")).bytes;
    let bank = spawn_bank(
        &opts.bank_bin,
        &[],
        dir,
        opts.sustained_sessions.max(256),
        &[],
    )?;
    let returned = Instant::now();
    let target = target_of(&bank, dir)?;
    let deadline = returned + Duration::from_secs(60);
    loop {
        match load::probe(&target, probe.0, probe.1).await {
            Ok(true) => break,
            Ok(false) => return Err("the probe account's balance changed over a restart".into()),
            Err(e) if Instant::now() > deadline => {
                return Err(format!("no balance within 60 s of the restart: {e}"))
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
    let first_balance = bank.started_in + returned.elapsed();
    let r = Restart {
        stored_tx,
        accounts,
        data_bytes,
        stop_secs,
        serving_secs: bank.started_in.as_secs_f64(),
        first_balance_secs: first_balance.as_secs_f64(),
        since_start_tx,
        rss_kib: proc::rss_kib(bank.pid()).unwrap_or(0),
    };
    eprintln!(
        "restart with {stored_tx} transactions ({:.0} MB, {since_start_tx} since the last start): serving after {:.3} s, first balance after {:.3} s (stop took {stop_secs:.3} s), {} KiB resident",
        data_bytes as f64 / 1e6,
        r.serving_secs,
        r.first_balance_secs,
        r.rss_kib
    );
    Ok((bank, r))
}

async fn restarts(opts: &EnduranceOptions) -> Result<Restarts, String> {
    let sessions = opts.sustained_sessions.max(1);
    let probe_name = format!("{}-probe", opts.run_id);
    // The floor: a bank holding only the probe account.
    let empty = {
        let dir = fresh_dir(&opts.work_dir, "bank-bench-restart0-")?;
        let bank = spawn_bank(&opts.bank_bin, &[], dir.path(), sessions.max(256), &[])?;
        let card = load::open_probe(&target_of(&bank, dir.path())?, &probe_name)
            .await
            .map_err(err)?;
        restart(opts, bank, dir.path(), (&probe_name, &card), (0, 1, 0))
            .await?
            .1
    };
    let dir = fresh_dir(&opts.work_dir, "bank-bench-restart-")?;
    let mut bank = spawn_bank(&opts.bank_bin, &[], dir.path(), sessions.max(256), &[])?;
    let card = load::open_probe(&target_of(&bank, dir.path())?, &probe_name)
        .await
        .map_err(err)?;
    let (mut stored, mut accounts, mut fill_secs) = (0u64, 1u64, 0.0);
    let mut filled = Vec::new();
    for (phase, goal) in [opts.restart_tx / 2, opts.restart_tx]
        .into_iter()
        .enumerate()
    {
        let target = target_of(&bank, dir.path())?;
        let mut o = Options::new(
            Mode::Transactions,
            sessions,
            // Bounded in time too: at the slowest this machine has done, 1M takes ~7 minutes.
            Duration::from_secs(1200),
            &format!("{}-fill{phase}", opts.run_id),
        );
        o.durable_limit = Some(goal.saturating_sub(stored));
        o.server_pid = Some(bank.pid());
        o.progress = Some(format!("fill to {goal} ({sessions} sessions)"));
        let summary = load::run(&target, &o).await.map_err(err)?;
        if summary.balance_mismatches > 0 {
            return Err("a balance did not match during the restart fill".into());
        }
        stored += summary.durable_txs;
        accounts += sessions as u64;
        fill_secs += summary.seconds;
        let written = (stored, accounts, summary.durable_txs);
        let (restarted, r) = restart(opts, bank, dir.path(), (&probe_name, &card), written).await?;
        bank = restarted;
        filled.push(r);
    }
    let (bank, again) = restart(
        opts,
        bank,
        dir.path(),
        (&probe_name, &card),
        (stored, accounts, 0),
    )
    .await?;
    drop(bank);
    Ok(Restarts {
        sessions,
        fill_tx_per_sec: stored as f64 / f64::max(fill_secs, 1e-9),
        empty,
        filled,
        again: Some(again),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: f64, rss_kib: u64, data_bytes: u64, acknowledged: u64) -> Sample {
        Sample {
            secs,
            rss_kib,
            data_bytes,
            data_alloc_bytes: data_bytes * 2,
            acknowledged,
        }
    }

    #[test]
    fn steady_state_is_warm_up_to_end() {
        let samples = [
            at(0.0, 10, 0, 0),
            at(30.0, 50, 1_000, 100),
            at(60.0, 60, 5_000, 1_000),
            at(90.0, 66, 8_000, 3_000),
        ];
        let (a, b) = steady(&samples, 60.0).unwrap();
        assert_eq!((a.secs, b.secs), (60.0, 90.0));
        assert!((rss_growth(a, b) - 0.10).abs() < 1e-9);
        assert_eq!(bytes_per_tx(a, b), Some((1.5, 3.0)));
        assert!(steady(&samples, 91.0).is_none());
        assert_eq!(nearest(&samples, 70.0).map(|s| s.secs), Some(60.0));
        assert_eq!(nearest(&samples, 80.0).map(|s| s.secs), Some(90.0));
        assert!(nearest(&[], 1.0).is_none());
        assert!(steady(&samples[..1], 0.0).is_none());
        assert_eq!(bytes_per_tx(a, a), None);
        // A garbage-collected log can shrink: that is a negative cost, not an overflow.
        assert_eq!(
            bytes_per_tx(b, &at(99.0, 1, 7_000, 3_500)),
            Some((-2.0, -4.0))
        );
    }

    #[test]
    fn disk_usage_sums_files_recursively() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("blobs")).unwrap();
        std::fs::write(dir.path().join("db"), [0u8; 100]).unwrap();
        std::fs::write(dir.path().join("blobs").join("1"), [0u8; 20]).unwrap();
        let usage = disk_usage(dir.path());
        assert_eq!(usage.bytes, 120);
        assert_eq!(
            usage.files,
            vec![("blobs/1".to_owned(), 20), ("db".to_owned(), 100)]
        );
        assert_eq!(disk_usage(&dir.path().join("absent")), DiskUsage::default());
    }
}

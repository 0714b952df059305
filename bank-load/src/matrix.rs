//! The benchmark matrix: starts the release bank (a real process, a fresh data directory) and
//! the echo floor on loopback, runs every point against both in the same run (then the
//! storage and resource runs of [`crate::endurance`]), and records the results as JSON for the
//! report.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::endurance::{self, Endurance, EnduranceOptions};
use crate::load::{self, Mode, Options, Target};
use crate::proc;
use crate::servers::{err, load_average, start_bank, start_echo};
use crate::stats::Summary;

/// What to run.
#[derive(Clone, Debug)]
pub struct MatrixOptions {
    /// The release `bank-server` binary.
    pub bank_bin: PathBuf,
    /// Session counts of the transaction points (each also run against the echo floor).
    pub sessions: Vec<usize>,
    /// Session counts of the handshake-only points (card login).
    pub handshake_sessions: Vec<usize>,
    /// Sessions of the password-login point (0: none).
    pub password_sessions: usize,
    /// Sessions of the idle point, on a fresh bank (0: none).
    pub idle_sessions: usize,
    /// Length of each timed point.
    pub duration: Duration,
    /// Where the temporary data directories go (on the disk the bank would use).
    pub work_dir: PathBuf,
    /// Length of the sustained run (zero: none).
    pub sustained: Duration,
    /// Sessions of the sustained run and of the restart fill.
    pub sustained_sessions: usize,
    /// Length of each strace run (zero: none).
    pub syncs: Duration,
    /// Session counts of the strace runs.
    pub syncs_sessions: Vec<usize>,
    /// Transactions stored before the timed restart (0: none).
    pub restart_tx: u64,
}

/// One transaction point: the floor and the bank at the same session count.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Point {
    /// The echo floor.
    pub echo: Summary,
    /// The bank.
    pub bank: Summary,
}

/// Everything one matrix run measured.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct MatrixResults {
    /// When it started (UTC).
    pub started_utc: String,
    /// Logical CPUs.
    pub cores: usize,
    /// CPU model.
    pub cpu: String,
    /// `/proc/loadavg` before the first point.
    pub load_before: String,
    /// `/proc/loadavg` after the last point.
    pub load_after: String,
    /// Seconds per timed point.
    pub duration_secs: u64,
    /// The bank's command line.
    pub bank_command: String,
    /// Open-file limit in force for the generator and the servers it starts.
    pub nofile: u64,
    /// Transaction points with their floors.
    pub points: Vec<Point>,
    /// Handshake-only points (card and password logins).
    pub handshakes: Vec<Summary>,
    /// The idle-sessions point.
    pub idle: Option<Summary>,
    /// The sustained, strace and restart runs.
    #[serde(default)]
    pub endurance: Endurance,
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown".into())
}

pub(crate) fn utc_now() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

async fn point(target: &Target, opts: Options) -> Result<Summary, String> {
    let label = opts.progress.clone().unwrap_or_default();
    let summary = load::run(target, &opts).await.map_err(err)?;
    eprintln!(
        "{label}: {:.0} round trips/s, {:.0} handshakes/s, p50 {} us, p99 {} us, p99.9 {} us, {} errors, {}/{} balances ok",
        summary.round_trips_per_sec,
        summary.handshakes_per_sec,
        summary.latency.p50_us,
        summary.latency.p99_us,
        summary.latency.p999_us,
        summary.errors,
        summary.balances_checked - summary.balance_mismatches,
        summary.balances_checked,
    );
    // Let closed sessions drain before the next point.
    tokio::time::sleep(Duration::from_secs(1)).await;
    Ok(summary)
}

/// Runs the whole matrix.
pub async fn run(opts: &MatrixOptions) -> Result<MatrixResults, String> {
    let biggest = opts
        .sessions
        .iter()
        .chain(&opts.handshake_sessions)
        .copied()
        .chain([opts.password_sessions, opts.idle_sessions])
        .max()
        .unwrap_or(1);
    // Generator and servers (which inherit it) need a descriptor per session and some spare.
    let nofile = proc::raise_nofile(u64::try_from(biggest).unwrap_or(u64::MAX) + 1024);
    std::fs::create_dir_all(&opts.work_dir).map_err(err)?;
    let mut results = MatrixResults {
        started_utc: utc_now(),
        cores: std::thread::available_parallelism().map_or(1, usize::from),
        cpu: cpu_model(),
        load_before: load_average(),
        duration_secs: opts.duration.as_secs(),
        nofile,
        ..MatrixResults::default()
    };
    let run_id = format!(
        "{:06x}",
        rand_core::RngCore::next_u32(&mut rand_core::OsRng) & 0xff_ffff
    );
    {
        let echo = start_echo()?;
        let dir = tempfile::Builder::new()
            .prefix("bank-bench-")
            .tempdir_in(&opts.work_dir)
            .map_err(err)?;
        let load_max = opts
            .sessions
            .iter()
            .chain(&opts.handshake_sessions)
            .copied()
            .chain([opts.password_sessions])
            .max()
            .unwrap_or(1);
        let (bank, auth) = start_bank(&opts.bank_bin, dir.path(), load_max.max(256))?;
        results.bank_command = bank.command.clone();
        eprintln!(
            "bench: bank on {} (pid {}), echo floor on {} (pid {}), {} cores, load {}",
            bank.addr,
            bank.pid(),
            echo.addr,
            echo.pid(),
            results.cores,
            results.load_before
        );
        let bank_target = Target {
            addr: bank.addr.clone(),
            creds: auth.clone(),
        };
        let echo_target = Target {
            addr: echo.addr.clone(),
            ..bank_target.clone()
        };
        let options = |mode: Mode, sessions: usize, pid: u32, label: String| {
            let mut o = Options::new(mode, sessions, opts.duration, &format!("{run_id}-{label}"));
            o.server_pid = Some(pid);
            o.progress = Some(format!("{label} ({sessions} sessions)"));
            o
        };
        for &sessions in &opts.sessions {
            let echo_summary = point(
                &echo_target,
                options(Mode::Echo, sessions, echo.pid(), format!("echo{sessions}")),
            )
            .await?;
            let bank_summary = point(
                &bank_target,
                options(
                    Mode::Transactions,
                    sessions,
                    bank.pid(),
                    format!("tx{sessions}"),
                ),
            )
            .await?;
            results.points.push(Point {
                echo: echo_summary,
                bank: bank_summary,
            });
        }
        for &sessions in &opts.handshake_sessions {
            let summary = point(
                &bank_target,
                options(
                    Mode::Handshakes,
                    sessions,
                    bank.pid(),
                    format!("hs{sessions}"),
                ),
            )
            .await?;
            results.handshakes.push(summary);
        }
        if opts.password_sessions > 0 {
            let sessions = opts.password_sessions;
            let summary = point(
                &bank_target,
                options(
                    Mode::PasswordLogins,
                    sessions,
                    bank.pid(),
                    format!("pw{sessions}"),
                ),
            )
            .await?;
            results.handshakes.push(summary);
        }
        drop(bank);
        drop(echo);
    }
    if opts.idle_sessions > 0 {
        let dir = tempfile::Builder::new()
            .prefix("bank-bench-idle-")
            .tempdir_in(&opts.work_dir)
            .map_err(err)?;
        let sessions = opts.idle_sessions;
        let (bank, auth) = start_bank(&opts.bank_bin, dir.path(), sessions)?;
        let target = Target {
            addr: bank.addr.clone(),
            creds: auth.clone(),
        };
        let mut o = Options::new(
            Mode::Idle,
            sessions,
            opts.duration.min(Duration::from_secs(5)),
            &format!("{run_id}-idle"),
        );
        o.server_pid = Some(bank.pid());
        o.progress = Some(format!("idle ({sessions} sessions)"));
        o.setup_concurrency = 128;
        let summary = point(&target, o).await?;
        eprintln!(
            "idle: bank RSS {} KiB before, {} KiB with {sessions} sessions held",
            summary.server_rss_before_kib.unwrap_or(0),
            summary.server_rss_kib.unwrap_or(0)
        );
        results.idle = Some(summary);
    }
    results.endurance = endurance::run(&EnduranceOptions {
        bank_bin: opts.bank_bin.clone(),
        work_dir: opts.work_dir.clone(),
        run_id,
        sustained: opts.sustained,
        sustained_sessions: opts.sustained_sessions,
        sample_every: Duration::from_secs(5),
        syncs: opts.syncs,
        syncs_sessions: opts.syncs_sessions.clone(),
        restart_tx: opts.restart_tx,
    })
    .await?;
    results.load_after = load_average();
    Ok(results)
}

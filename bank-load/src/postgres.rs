//! The PostgreSQL rows of the benchmark: the release bank on a PostgreSQL cluster this run
//! starts, one node and then two on the same database, beside the echo floor at the same
//! session counts, with the CPU per round trip of the bank nodes and of the database.
#![allow(clippy::float_arithmetic)] // rates, ratios and CPU seconds are measurements, not money

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::load::{self, Mode, Options, Target};
use crate::proc;
use crate::servers::{err, load_average, spawn_bank, start_echo, Server};
use crate::stats::Summary;

/// What to run.
#[derive(Clone, Debug)]
pub struct PgOptions {
    /// The release `bank-server` binary.
    pub bank_bin: PathBuf,
    /// Session counts; each is run on one node, on two (half the sessions each) and against
    /// the echo floor.
    pub sessions: Vec<usize>,
    /// Length of each timed point.
    pub duration: Duration,
    /// Where the bank nodes' directories go.
    pub work_dir: PathBuf,
}

/// One session count on some number of nodes.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PgPoint {
    /// Bank nodes on the database.
    pub nodes: usize,
    /// Sessions in all (spread evenly over the nodes).
    pub sessions: usize,
    /// Each node's share of the sessions, as the generator saw it.
    pub per_node: Vec<Summary>,
    /// CPU time of the database server (the postmaster and every backend) over the point.
    pub db_cpu_secs: Option<f64>,
}

impl PgPoint {
    /// Round trips per second over every node.
    pub fn round_trips_per_sec(&self) -> f64 {
        self.per_node.iter().map(|s| s.round_trips_per_sec).sum()
    }

    /// Durable deposits and withdrawals per second over every node.
    pub fn durable_txs_per_sec(&self) -> f64 {
        self.per_node.iter().map(|s| s.durable_txs_per_sec).sum()
    }

    /// Round trips in all.
    pub fn round_trips(&self) -> u64 {
        self.per_node.iter().map(|s| s.round_trips).sum()
    }

    /// The bank nodes' CPU time, seconds, when every node's was read.
    pub fn bank_cpu_secs(&self) -> Option<f64> {
        self.per_node.iter().map(|s| s.server_cpu_secs).sum()
    }
}

/// Everything one PostgreSQL run measured.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct PgResults {
    /// When it started (UTC).
    pub started_utc: String,
    /// Logical CPUs.
    pub cores: usize,
    /// `/proc/loadavg` before the first point and after the last.
    pub load_before: String,
    /// See [`Self::load_before`].
    pub load_after: String,
    /// Seconds per timed point.
    pub duration_secs: u64,
    /// `SHOW server_version`.
    pub server_version: String,
    /// The first node's command line (the second differs in its directory and name).
    pub bank_command: String,
    /// The echo floor at each session count.
    pub floor: Vec<Summary>,
    /// One node, then two, at each session count.
    pub points: Vec<PgPoint>,
}

/// Starts a cluster and the nodes, runs every point, stops them all.
pub async fn run(opts: &PgOptions) -> Result<PgResults, String> {
    let biggest = opts.sessions.iter().copied().max().unwrap_or(1);
    proc::raise_nofile(u64::try_from(biggest).unwrap_or(u64::MAX) + 1024);
    std::fs::create_dir_all(&opts.work_dir).map_err(err)?;
    let cluster = pg_harness::Cluster::start().map_err(err)?;
    cluster.create_database("bank").map_err(err)?;
    let url = cluster.url("bank");
    let postmaster = cluster
        .postmaster_pid()
        .ok_or("no postmaster.pid in the cluster this run started")?;
    let dir = tempfile::Builder::new()
        .prefix("bank-bench-pg-")
        .tempdir_in(&opts.work_dir)
        .map_err(err)?;
    let mut results = PgResults {
        started_utc: crate::matrix::utc_now(),
        cores: std::thread::available_parallelism().map_or(1, usize::from),
        load_before: load_average(),
        duration_secs: opts.duration.as_secs(),
        server_version: server_version(&url),
        ..PgResults::default()
    };
    let run_id = format!(
        "{:06x}",
        rand_core::RngCore::next_u32(&mut rand_core::OsRng) & 0xff_ffff
    );
    let first = node(opts, dir.path(), &url, 1, biggest)?;
    results.bank_command = first
        .command
        .replace(&url, "$URL")
        .replace(&dir.path().display().to_string(), "$DIR")
        .replace(" >/dev/null 2>bank.log", "");
    let auth =
        atm_client::load_auth_file(dir.path().join("node1").join("bank.auth")).map_err(err)?;
    let echo = start_echo()?;
    let echo_target = Target {
        addr: echo.addr.clone(),
        creds: auth.clone(),
    };
    for &sessions in &opts.sessions {
        let label = format!("pg-echo{sessions}");
        let mut o = Options::new(
            Mode::Echo,
            sessions,
            opts.duration,
            &format!("{run_id}-{label}"),
        );
        o.server_pid = Some(echo.pid());
        o.progress = Some(format!("{label} ({sessions} sessions)"));
        results.floor.push(point(&echo_target, o).await?);
    }
    drop(echo);
    let mut nodes = vec![first];
    for count in [1, 2] {
        while nodes.len() < count {
            let n = nodes.len() + 1;
            nodes.push(node(opts, dir.path(), &url, n, biggest)?);
        }
        for &sessions in &opts.sessions {
            let db_before = proc::tree_cpu_secs(postmaster);
            let runs = nodes.iter().enumerate().map(|(i, bank)| {
                let target = Target {
                    addr: bank.addr.clone(),
                    creds: auth.clone(),
                };
                let share = sessions / count + usize::from(i < sessions % count);
                let label = format!("pg{count}n{sessions}-node{}", i + 1);
                let mut o = Options::new(
                    Mode::Transactions,
                    share.max(1),
                    opts.duration,
                    &format!("{run_id}-{label}"),
                );
                o.server_pid = Some(bank.pid());
                o.progress = Some(format!("{label} ({share} sessions)"));
                async move { load::run(&target, &o).await }
            });
            let per_node = futures_join(runs.collect()).await?;
            let db_after = proc::tree_cpu_secs(postmaster);
            for s in &per_node {
                eprintln!(
                    "pg {count} node(s), {sessions} sessions: {:.0} round trips/s, p99 {} us, {} errors",
                    s.round_trips_per_sec, s.latency.p99_us, s.errors
                );
            }
            results.points.push(PgPoint {
                nodes: count,
                sessions,
                per_node,
                db_cpu_secs: db_before.zip(db_after).map(|(a, b)| b - a),
            });
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
    drop(nodes);
    drop(cluster);
    results.load_after = load_average();
    Ok(results)
}

/// Runs the futures at once, each on its own task; every result, in order, or the first error.
async fn futures_join<F>(runs: Vec<F>) -> Result<Vec<Summary>, String>
where
    F: std::future::Future<Output = Result<Summary, load::LoadError>> + Send + 'static,
{
    let handles: Vec<_> = runs.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for handle in handles {
        out.push(handle.await.map_err(err)?.map_err(|e| e.0)?);
    }
    Ok(out)
}

async fn point(target: &Target, opts: Options) -> Result<Summary, String> {
    let summary = load::run(target, &opts).await.map_err(|e| e.0)?;
    eprintln!(
        "{}: {:.0} round trips/s, p99 {} us",
        opts.progress.unwrap_or_default(),
        summary.round_trips_per_sec,
        summary.latency.p99_us
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    Ok(summary)
}

/// Starts node `n` (`node{n}`) on the database at `url`; every node shares one bank key file.
fn node(
    opts: &PgOptions,
    dir: &Path,
    url: &str,
    n: usize,
    sessions: usize,
) -> Result<Server, String> {
    let home = dir.join(format!("node{n}"));
    std::fs::create_dir_all(&home).map_err(err)?;
    let extra = [
        "--database-url".to_owned(),
        url.to_owned(),
        "--node-name".to_owned(),
        format!("node{n}"),
        "--bank-key-file".to_owned(),
        dir.join("bank.key").display().to_string(),
    ];
    let server = spawn_bank(&opts.bank_bin, &[], &home, sessions.max(256), &extra)?;
    Ok(server)
}

fn server_version(url: &str) -> String {
    Command::new("psql")
        .args(["-X", "-A", "-t", "-d", url, "-c", "SHOW server_version"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

//! The `bank-load` command line: drive a bank (`run`), serve the echo floor (`echo`), run the
//! benchmark matrix (`matrix`) and write `docs/PERFORMANCE.md` from its results (`report`),
//! and measure the bank on PostgreSQL (`postgres`).
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use atm_client::load_auth_file;
use bank_load::matrix::{self, MatrixOptions, MatrixResults};
use bank_load::report::{self, Extras};
use bank_load::{Mode, Options, Target};
use clap::{Parser, Subcommand};

/// Load generator and benchmark runner for the secure-ATM bank.
#[derive(Parser, Debug)]
#[command(name = "bank-load", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Drive a running bank (or echo server) with N concurrent sessions; print a table (and
    /// JSON with --json).
    Run {
        /// The bank's address.
        #[arg(long, default_value_t = format!("127.0.0.1:{}", protocol::WEB_BANK_PORT))]
        addr: String,
        /// The terminal's auth file (the bank writes bank.auth on first start).
        #[arg(long, default_value = "bank.auth")]
        auth_file: PathBuf,
        /// What each session does.
        #[arg(long, value_enum, default_value = "transactions")]
        mode: Mode,
        /// Concurrent sessions.
        #[arg(long, default_value_t = 16)]
        sessions: usize,
        /// Seconds of the timed phase (idle: how long sessions are held).
        #[arg(long, default_value_t = 10)]
        duration: u64,
        /// Account-name prefix (must be new to the bank; random by default).
        #[arg(long)]
        prefix: Option<String>,
        /// The server's pid, to report its memory and CPU time.
        #[arg(long)]
        server_pid: Option<u32>,
        /// Print the summary as JSON on stdout instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Serve the echo floor: GET /ws echoes every message (same stack as the bank, no crypto,
    /// no storage). Prints `listening on ADDR` on stdout.
    Echo {
        /// Port (0 picks one).
        #[arg(long, default_value_t = 8766)]
        port: u16,
    },
    /// Start the release bank and the echo floor and run the benchmark matrix; writes JSON.
    Matrix {
        /// The release bank-server binary.
        #[arg(long, default_value = "target/release/bank-server")]
        bank_bin: PathBuf,
        /// Session counts of the transaction points.
        #[arg(long, value_delimiter = ',', default_value = "1,16,64,256,1024")]
        sessions: Vec<usize>,
        /// Session counts of the handshake-only points (card login).
        #[arg(long, value_delimiter = ',', default_value = "16,64")]
        handshake_sessions: Vec<usize>,
        /// Sessions of the password-login point (0 skips it).
        #[arg(long, default_value_t = 16)]
        password_sessions: usize,
        /// Sessions of the idle point (0 skips it).
        #[arg(long, default_value_t = 10_000)]
        idle_sessions: usize,
        /// Seconds per point.
        #[arg(long, default_value_t = 10)]
        duration: u64,
        /// Where the temporary bank directories go.
        #[arg(long, default_value = "target/bench")]
        work_dir: PathBuf,
        /// Where to write the results.
        #[arg(long, default_value = "target/bench/load.json")]
        out: PathBuf,
        /// Seconds of the sustained run (bank memory and disk sampled over time; 0 skips it).
        #[arg(long, default_value_t = 180)]
        sustained_secs: u64,
        /// Sessions of the sustained run and of the restart fill.
        #[arg(long, default_value_t = 256)]
        sustained_sessions: usize,
        /// Seconds of each run under `strace -c` counting sync calls (0 skips them).
        #[arg(long, default_value_t = 10)]
        syncs_secs: u64,
        /// Session counts of the strace runs.
        #[arg(long, value_delimiter = ',', default_value = "16,256")]
        syncs_sessions: Vec<usize>,
        /// Transactions stored before the timed restart (0 skips it).
        #[arg(long, default_value_t = 1_000_000)]
        restart_tx: u64,
    },
    /// Start a PostgreSQL cluster, run the bank on it with one node and then two beside the
    /// echo floor, and write the PostgreSQL part of docs/PERFORMANCE.md.
    Postgres {
        /// The release bank-server binary.
        #[arg(long, default_value = "target/release/bank-server")]
        bank_bin: PathBuf,
        /// Session counts (each on one node, on two, and against the floor).
        #[arg(long, value_delimiter = ',', default_value = "16,64")]
        sessions: Vec<usize>,
        /// Seconds per point.
        #[arg(long, default_value_t = 10)]
        duration: u64,
        /// Where the nodes' directories go.
        #[arg(long, default_value = "target/bench")]
        work_dir: PathBuf,
        /// Where the results go (JSON).
        #[arg(long, default_value = "target/bench/postgres.json")]
        results: PathBuf,
        /// The main matrix's results, for the sled rows beside (skipped when missing).
        #[arg(long, default_value = "target/bench/load.json")]
        sled_results: PathBuf,
        /// The report to update (text outside the PostgreSQL markers is kept).
        #[arg(long, default_value = "docs/PERFORMANCE.md")]
        out: PathBuf,
    },
    /// Write the generated part of docs/PERFORMANCE.md from the matrix results, criterion's
    /// estimates, the in-browser figures and the web bundle.
    Report {
        /// The matrix results.
        #[arg(long, default_value = "target/bench/load.json")]
        results: PathBuf,
        /// Criterion's output directory.
        #[arg(long, default_value = "target/criterion")]
        criterion_dir: PathBuf,
        /// The in-browser benchmark's captured output (a `bench-wasm {json}` line).
        #[arg(long, default_value = "target/bench/wasm.txt")]
        wasm: PathBuf,
        /// The click benchmark's captured output (a `bench-click {json}` line).
        #[arg(long, default_value = "target/bench/click.txt")]
        click: PathBuf,
        /// The built web ATM.
        #[arg(long, default_value = "dist")]
        dist: PathBuf,
        /// The report to update (text outside the generated markers is kept).
        #[arg(long, default_value = "docs/PERFORMANCE.md")]
        out: PathBuf,
    },
}

/// The criterion benchmarks the report lists, in order.
const CRITERION: &[&str] = &[
    report::SEAL_OPEN_ID,
    report::RAW_RECORD_ID,
    "handshake/full (both sides)",
    "argon2id/verify (OWASP: m=19456 KiB, t=2, p=1)",
    "sled/durable commit (deposit + fsync)",
];

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Echo { port } => echo(port),
        Command::Run {
            addr,
            auth_file,
            mode,
            sessions,
            duration,
            prefix,
            server_pid,
            json,
        } => run_once(RunArgs {
            addr,
            auth_file,
            mode,
            sessions,
            duration,
            prefix,
            server_pid,
            json,
        }),
        Command::Matrix {
            bank_bin,
            sessions,
            handshake_sessions,
            password_sessions,
            idle_sessions,
            duration,
            work_dir,
            out,
            sustained_secs,
            sustained_sessions,
            syncs_secs,
            syncs_sessions,
            restart_tx,
        } => run_matrix(
            MatrixOptions {
                bank_bin,
                sessions,
                handshake_sessions,
                password_sessions,
                idle_sessions,
                duration: Duration::from_secs(duration.max(1)),
                work_dir,
                sustained: Duration::from_secs(sustained_secs),
                sustained_sessions,
                syncs: Duration::from_secs(syncs_secs),
                syncs_sessions,
                restart_tx,
            },
            &out,
        ),
        Command::Postgres {
            bank_bin,
            sessions,
            duration,
            work_dir,
            results,
            sled_results,
            out,
        } => run_postgres(
            &bank_load::postgres::PgOptions {
                bank_bin,
                sessions,
                duration: Duration::from_secs(duration),
                work_dir,
            },
            &results,
            &sled_results,
            &out,
        ),
        Command::Report {
            results,
            criterion_dir,
            wasm,
            click,
            dist,
            out,
        } => write_report(&results, &criterion_dir, &wasm, &click, dist, &out),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bank-load: {e}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Runtime::new().map_err(|e| e.to_string())
}

fn echo(port: u16) -> Result<(), String> {
    runtime()?.block_on(async {
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port)))
            .await
            .map_err(|e| format!("cannot listen on port {port}: {e}"))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        println!("listening on {addr}");
        use std::io::Write as _;
        let _ = std::io::stdout().flush();
        let shutdown = async {
            use tokio::signal::unix::{signal, SignalKind};
            match signal(SignalKind::terminate()) {
                Ok(mut term) => {
                    tokio::select! {
                        _ = term.recv() => {}
                        _ = tokio::signal::ctrl_c() => {}
                    }
                }
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        };
        bank_load::echo::serve(listener, shutdown)
            .await
            .map_err(|e| e.to_string())
    })
}

struct RunArgs {
    addr: String,
    auth_file: PathBuf,
    mode: Mode,
    sessions: usize,
    duration: u64,
    prefix: Option<String>,
    server_pid: Option<u32>,
    json: bool,
}

fn run_once(args: RunArgs) -> Result<(), String> {
    bank_load::proc::raise_nofile(u64::try_from(args.sessions).unwrap_or(u64::MAX) + 1024);
    let target = if args.mode == Mode::Echo {
        Target::echo(args.addr)
    } else {
        let auth = load_auth_file(&args.auth_file).map_err(|e| e.to_string())?;
        Target {
            addr: args.addr,
            creds: auth,
        }
    };
    let prefix = args.prefix.unwrap_or_else(|| {
        format!(
            "load-{:08x}",
            rand_core::RngCore::next_u32(&mut rand_core::OsRng)
        )
    });
    let mut opts = Options::new(
        args.mode,
        args.sessions,
        Duration::from_secs(args.duration.max(1)),
        &prefix,
    );
    opts.server_pid = args.server_pid;
    opts.progress = Some(format!("{} x{}", args.mode.name(), args.sessions));
    let summary = runtime()?
        .block_on(bank_load::run(&target, &opts))
        .map_err(|e| e.to_string())?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&summary).map_err(|e| e.to_string())?
        );
    } else {
        print!("{}", report::table(std::slice::from_ref(&summary)));
    }
    if summary.balance_mismatches > 0 {
        return Err(format!(
            "{} of {} balances did not match their acknowledged transactions",
            summary.balance_mismatches, summary.balances_checked
        ));
    }
    Ok(())
}

fn run_matrix(opts: MatrixOptions, out: &PathBuf) -> Result<(), String> {
    let results = runtime()?.block_on(matrix::run(&opts))?;
    let mut all: Vec<bank_load::Summary> = Vec::new();
    for p in &results.points {
        all.push(p.echo.clone());
        all.push(p.bank.clone());
    }
    all.extend(results.handshakes.iter().cloned());
    all.extend(results.idle.iter().cloned());
    let e = &results.endurance;
    all.extend(e.sustained.iter().map(|s| s.summary.clone()));
    all.extend(e.syncs.iter().map(|s| s.summary.clone()));
    print!("{}", report::table(&all));
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    }
    let json = serde_json::to_string_pretty(&results).map_err(|e| e.to_string())?;
    std::fs::write(out, json).map_err(|e| format!("{}: {e}", out.display()))?;
    eprintln!("bench: results in {}", out.display());
    let bad: Vec<&bank_load::Summary> = all.iter().filter(|s| !s.clean()).collect();
    if bad.iter().any(|s| s.balance_mismatches > 0) {
        return Err("a balance did not match its acknowledged transactions".into());
    }
    Ok(())
}

fn run_postgres(
    opts: &bank_load::postgres::PgOptions,
    results: &PathBuf,
    sled_results: &PathBuf,
    out: &PathBuf,
) -> Result<(), String> {
    let measured = runtime()?.block_on(bank_load::postgres::run(opts))?;
    if let Some(dir) = results.parent() {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    }
    let json = serde_json::to_string_pretty(&measured).map_err(|e| e.to_string())?;
    std::fs::write(results, json).map_err(|e| format!("{}: {e}", results.display()))?;
    let sled: Option<MatrixResults> = std::fs::read_to_string(sled_results)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    let generated = bank_load::pg_report::markdown(&measured, sled.as_ref());
    print!("{generated}");
    let existing = std::fs::read_to_string(out).unwrap_or_default();
    let text = bank_load::pg_report::splice(&existing, &generated);
    std::fs::write(out, text).map_err(|e| format!("{}: {e}", out.display()))?;
    eprintln!("bench: wrote the PostgreSQL part of {}", out.display());
    let mismatches: u64 = measured
        .points
        .iter()
        .flat_map(|p| &p.per_node)
        .map(|s| s.balance_mismatches)
        .sum();
    if mismatches > 0 {
        return Err(format!(
            "{mismatches} balances did not match their acknowledged transactions"
        ));
    }
    Ok(())
}

fn write_report(
    results: &PathBuf,
    criterion_dir: &std::path::Path,
    wasm: &PathBuf,
    click: &PathBuf,
    dist: PathBuf,
    out: &PathBuf,
) -> Result<(), String> {
    let text = std::fs::read_to_string(results)
        .map_err(|e| format!("{}: {e} (run `bank-load matrix` first)", results.display()))?;
    let results: MatrixResults = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let wasm_text = std::fs::read_to_string(wasm).ok();
    let figures = wasm_text.as_deref().and_then(report::parse_wasm);
    let click_text = std::fs::read_to_string(click).ok();
    let clicks = click_text.as_deref().and_then(report::parse_click);
    let extras = Extras {
        criterion: report::criterion_estimates(criterion_dir, CRITERION),
        wasm_missing: figures.is_none().then(|| match wasm_text {
            None => format!("no browser results in {}", wasm.display()),
            Some(_) => "the browser run printed no figures".into(),
        }),
        wasm: figures,
        click_missing: clicks.is_none().then(|| match click_text {
            None => format!("no click results in {}", click.display()),
            Some(_) => "the click benchmark printed no figures".into(),
        }),
        click: clicks,
        bundle: report::bundle(&dist),
        dist,
    };
    let generated = report::markdown(&results, &extras);
    let existing = std::fs::read_to_string(out).ok();
    let text = report::splice(existing.as_deref(), &generated);
    std::fs::write(out, text).map_err(|e| format!("{}: {e}", out.display()))?;
    eprintln!("bench: wrote {}", out.display());
    Ok(())
}

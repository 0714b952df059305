//! `cargo xtask bench`: builds in release mode, runs the criterion benchmarks, times the
//! protocol in headless Chromium, builds the web ATM for its size and times clicks in it (click
//! to confirmed balance, e2e's `click_bench`), runs the load matrix against
//! the release bank and the echo floor on loopback (then the sustained, sync-counting and
//! restart runs, then the bank on PostgreSQL with one node and two), and writes
//! `docs/PERFORMANCE.md`. `cargo xtask bench postgres [ARGS..]` runs only the PostgreSQL part.

use std::path::Path;

use crate::cmd::Cmd;
use crate::files::{self, target_dir, write_file};
use crate::run;
use crate::setup::{self, Purpose};

/// Runs everything; `matrix_args` go to `bank-load matrix` (e.g. `--duration 3`). With
/// `postgres` first, only the PostgreSQL part, the rest going to `bank-load postgres`.
pub(crate) fn bench(root: &Path, matrix_args: &[String]) -> Result<(), String> {
    if let Some(("postgres", rest)) = matrix_args.split_first().map(|(a, r)| (a.as_str(), r)) {
        setup::ensure(root, Some(Purpose::Bench))?;
        Cmd::cargo()
            .args(["build", "--release", "-p", "bank-server", "-p", "bank-load"])
            .run()?;
        return postgres(root, rest);
    }
    let target = target_dir(root);
    let out = target.join("bench");
    // strace for the sync counts; the bench goes on without it (and says so in the report).
    if let Err(e) = setup::ensure(root, Some(Purpose::Bench)) {
        eprintln!("bench: {e}\nbench: going on; the sync counts will be skipped");
    }
    Cmd::cargo()
        .args(["build", "--release", "-p", "bank-server", "-p", "bank-load"])
        .run()?;
    // Criterion: record seal+open, its floor (the raw primitives on the same bytes) and the
    // handshake (protocol); Argon2id verify and one durable sled commit (bank-load's benches,
    // through bank-server's API).
    let quick = ["--warm-up-time", "1", "--measurement-time", "3"];
    Cmd::cargo()
        .args(["bench", "-p", "protocol", "--bench", "protocol", "--"])
        .args(quick)
        .run()?;
    Cmd::cargo()
        .args(["bench", "-p", "bank-load", "--bench", "bank", "--"])
        .args(quick)
        .run()?;
    // In the browser: the protocol built for wasm32 in release mode, in headless Chromium.
    let webdriver_json = files::webdriver_json_path(root);
    files::write_webdriver_json(&webdriver_json)?;
    let wasm = Cmd::cargo()
        .env("CHROMEDRIVER", "/usr/bin/chromedriver")
        .env("WASM_BINDGEN_TEST_WEBDRIVER_JSON", &webdriver_json)
        .args([
            "test",
            "--release",
            "--target",
            "wasm32-unknown-unknown",
            "-p",
            "protocol",
            "--test",
            "wasm_timing",
            "--",
            "--nocapture",
        ]);
    println!("$ {wasm}");
    let wasm_out = figures_or_pending(&wasm, &out.join("wasm.txt"), "the in-browser timing")?;
    write_file(&out.join("wasm.txt"), &wasm_out)?;
    // The web ATM bundle, built fresh when possible (otherwise whatever dist/ holds).
    if let Err(e) = run::build_web_atm(root) {
        eprintln!("bench: web ATM build failed ({e}); using dist/ as it is, if present");
    }
    // Click to confirmed balance: that bundle in headless Chromium against the bank built in
    // release mode (in the example's own process), 100 durable deposits timed in the page.
    let click = Cmd::cargo().env("ATM_E2E_DIST", root.join("dist")).args([
        "run",
        "--release",
        "-p",
        "e2e",
        "--example",
        "click_bench",
    ]);
    println!("$ {click}");
    let click_out = figures_or_pending(&click, &out.join("click.txt"), "the click benchmark")?;
    write_file(&out.join("click.txt"), &click_out)?;
    let load = target.join("release").join("bank-load");
    let results = out.join("load.json");
    Cmd::new(&load)
        .arg("matrix")
        .arg("--bank-bin")
        .arg(target.join("release").join("bank-server"))
        .arg("--work-dir")
        .arg(&out)
        .arg("--out")
        .arg(&results)
        .args(matrix_args)
        .run()?;
    Cmd::new(&load)
        .arg("report")
        .arg("--results")
        .arg(&results)
        .arg("--criterion-dir")
        .arg(target.join("criterion"))
        .arg("--wasm")
        .arg(out.join("wasm.txt"))
        .arg("--click")
        .arg(out.join("click.txt"))
        .args(["--dist", "dist", "--out", "docs/PERFORMANCE.md"])
        .run()?;
    postgres(root, &[])
}

/// The bank on a PostgreSQL cluster the run starts, one node and two, beside the echo floor:
/// the PostgreSQL part of `docs/PERFORMANCE.md`.
fn postgres(root: &Path, args: &[String]) -> Result<(), String> {
    let target = target_dir(root);
    let out = target.join("bench");
    Cmd::new(target.join("release").join("bank-load"))
        .arg("postgres")
        .arg("--bank-bin")
        .arg(target.join("release").join("bank-server"))
        .arg("--work-dir")
        .arg(&out)
        .arg("--results")
        .arg(out.join("postgres.json"))
        .arg("--sled-results")
        .arg(out.join("load.json"))
        .args(["--out", "docs/PERFORMANCE.md"])
        .args(args)
        .run()
}

/// Runs a bench step whose output the report reads from `figures`. When it fails, its figures
/// are left empty (the report marks them pending) and what it printed is kept beside them, in
/// `<figures>.failed.txt`, with the last lines echoed here.
fn figures_or_pending(cmd: &Cmd, figures: &Path, what: &str) -> Result<String, String> {
    let failed = figures.with_extension("failed.txt");
    match cmd.capture() {
        Some(c) if c.ok => {
            // A stale failure from an earlier run would mislead whoever reads the folder.
            let _ = std::fs::remove_file(&failed);
            Ok(c.text)
        }
        Some(c) => {
            write_file(&failed, &c.text)?;
            let tail: Vec<&str> = c.text.lines().rev().take(20).collect();
            eprintln!(
                "bench: {what} failed; the report marks it pending. Its output is in {}; it ended:",
                failed.display()
            );
            for line in tail.iter().rev() {
                eprintln!("  {line}");
            }
            Ok(String::new())
        }
        None => {
            eprintln!("bench: {what} could not be started; the report marks it pending");
            Ok(String::new())
        }
    }
}

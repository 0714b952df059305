//! Project runner: `cargo xtask setup | test | run | bench | fuzz`.
#![forbid(unsafe_code)]

mod bench;
mod cmd;
mod devflow;
mod files;
mod fuzz;
mod run;
mod setup;
mod test;

use std::path::Path;
use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  setup          install what the tests need (wasm32 target, wasm-bindgen-cli, Chromium,
                 PostgreSQL, nightly and cargo-fuzz); skips what is already present at the
                 right version
  test           setup, then fmt, clippy, native tests, in-browser wasm tests, the developer
                 workflow (wasm-pack test, trunk serve), e2e, every fuzz target briefly,
                 interop vectors
  fuzz [SECONDS] build every fuzz target of fuzz/ and run each for SECONDS (default 60) over
                 its seeds and corpus, one at a time
  run [ARGS..]   build the web ATM, print its URL and a one-time enrollment code, run
                 `bank-server serve ARGS..`
  bench [ARGS..] release build, criterion benches, in-browser timing, web bundle size, then the
                 load matrix against the bank and an echo floor, a sustained run, sync counts
                 under strace and a restart with 1,000,000 transactions stored; writes
                 docs/PERFORMANCE.md (ARGS go to `bank-load matrix`, e.g. --duration 3
                 --sustained-secs 0 --restart-tx 0); `bench postgres [ARGS..]` runs only
                 the bank on PostgreSQL, one node and two (ARGS go to `bank-load postgres`,
                 e.g. --sessions 16,64 --duration 10)";

fn main() -> ExitCode {
    // xtask/ lives in the repo root; everything runs from there, wherever cargo was called.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask/ has a parent directory");
    if let Err(err) = std::env::set_current_dir(root) {
        eprintln!("xtask: cannot enter {}: {err}", root.display());
        return ExitCode::FAILURE;
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("setup") => setup::setup(root),
        Some("test") => test::test(root),
        Some("run") => {
            let rest = &args[1..];
            let rest = rest.strip_prefix(&["--".to_owned()]).unwrap_or(rest);
            run::run(root, rest)
        }
        Some("bench") => {
            let rest = &args[1..];
            let rest = rest.strip_prefix(&["--".to_owned()]).unwrap_or(rest);
            bench::bench(root, rest)
        }
        Some("fuzz") => fuzz::seconds(&args[1..]).and_then(|s| fuzz::fuzz(root, s)),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xtask: error: {err}");
            ExitCode::FAILURE
        }
    }
}

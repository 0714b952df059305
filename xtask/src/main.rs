//! Project runner: `cargo xtask setup | test | run | bench`.
#![forbid(unsafe_code)]

mod cmd;
mod run;
mod setup;
mod test;

use std::path::Path;
use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  setup          install what the tests need (wasm32 target, wasm-bindgen-cli, Chromium);
                 skips what is already present at the right version
  test           setup, then fmt, clippy, native tests, in-browser wasm tests, interop vectors
  run [ARGS..]   build the web ATM, print a browser enrollment link, run `bank-server serve ARGS..`
  bench          benchmarks (not built yet)";

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
            eprintln!("xtask bench: not built yet (a later issue adds the benchmarks)");
            return ExitCode::from(2);
        }
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

//! The `atm-enroll` binary: runs [`atm_cli::enroll::run`] on a single-threaded runtime and
//! exits with its code.
#![forbid(unsafe_code)]

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        eprintln!("atm-enroll: could not start");
        return ExitCode::from(atm_cli::EXIT_INVALID);
    };
    let mut stdout = std::io::stdout().lock();
    let mut stdin = std::io::stdin().lock();
    ExitCode::from(runtime.block_on(atm_cli::enroll::run(&args, &mut stdin, &mut stdout)))
}

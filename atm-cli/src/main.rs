//! The `atm` binary: runs [`atm_cli::run`] on a single-threaded runtime and exits with its code.
#![forbid(unsafe_code)]

use std::process::ExitCode;

fn main() -> ExitCode {
    // A crash must still end in one of the documented codes, with nothing on stdout.
    std::panic::set_hook(Box::new(|_| {
        eprintln!("atm: internal error");
        std::process::exit(i32::from(atm_cli::EXIT_INVALID));
    }));
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(_) => {
            eprintln!("atm: could not start");
            return ExitCode::from(atm_cli::EXIT_INVALID);
        }
    };
    let mut stdout = std::io::stdout().lock();
    let code = runtime.block_on(atm_cli::run(&args, &mut stdout));
    ExitCode::from(code)
}

//! The `bank-server` command line: serve the bank (default), manage terminals and operators,
//! audit the log. Each subcommand lives in [`cli`].
#![forbid(unsafe_code)]

mod cli;

use std::process::ExitCode;

use clap::Parser as _;

use cli::args::{Cli, Command};
use cli::{audit::audit, operator::operator, serve::serve, terminal::terminal};

/// With `--features mimalloc`, mimalloc instead of glibc's malloc (docs/PERFORMANCE.md: less
/// CPU per round trip, more memory per idle session).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    bank_server::process::init_logging("info");
    let result = match cli.command {
        None | Some(Command::Serve) => serve(&cli.opts),
        Some(Command::Terminal(cmd)) => terminal(&cli.opts, cmd),
        Some(Command::Operator(cmd)) => operator(&cli.opts, cmd),
        Some(Command::Audit(cmd)) => return audit(&cli.opts, cmd),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bank-server: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

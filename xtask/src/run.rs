//! `cargo xtask run`: builds the web ATM, builds the bank server, issues a one-time enrollment
//! code for a browser and prints it with the URL to open, then runs the bank in the foreground
//! with the bank console on a listener of its own (`--console-listen`, 127.0.0.1:8766 unless
//! given).

use std::collections::BTreeMap;
use std::env;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::cmd::Cmd;
use crate::files::target_dir;
use crate::setup::{self, Purpose};

/// The name a browser enrolled with the printed code gets in `bank-server terminal list`.
const TERMINAL_NAME: &str = "web ATM (cargo xtask run)";

/// Where the bank console listens unless `--console-listen` or `BANK_CONSOLE_LISTEN` says.
const CONSOLE_LISTEN: &str = "127.0.0.1:8766";

pub(crate) fn run(root: &Path, server_args: &[String]) -> Result<(), String> {
    build_web_atm(root)?;
    Cmd::cargo()
        .args(["build", "--release", "-p", "bank-server"])
        .run()?;
    let server = target_dir(root).join("release").join("bank-server");
    let opts = ServeOpts::from_args(server_args);
    let mut server_args = server_args.to_vec();
    if !opts.console_given {
        server_args.extend(["--console-listen".to_owned(), opts.console.clone()]);
    }
    let server_args = &server_args[..];
    match enrollment_code(&server, server_args, &opts) {
        Ok(code) => {
            let base = format!("http://{}:{}/", url_host(&opts.bind), opts.port);
            println!("\n================================================================");
            println!("Open {base} in the browser that will be the ATM and, unless it is");
            println!(
                "enrolled already, enroll it with this one-time code (10 minutes, one try):\n"
            );
            println!("  {code}\n");
            println!(
                "No key is printed: the browser and the bank derive the terminal's key together.\n\
                 Native ATMs: `target/release/bank-server terminal add --code` (same --data-dir),\n\
                 then `atm-enroll -p {} -s atm.auth` with the code on standard input.",
                opts.port
            );
            println!(
                "Bank console, on its own origin: http://{}/console\n\
                 `target/release/bank-server operator add NAME --console-listen {}` (same\n\
                 --data-dir) prints the console's link; open it and log in as NAME.",
                opts.console, opts.console
            );
            println!("================================================================\n");
        }
        Err(why) => println!("run: no enrollment code printed ({why})"),
    }
    // exec, so Ctrl-C and the exit code are the server's.
    Err(Cmd::new(&server).arg("serve").args(server_args).exec())
}

/// `trunk build --release` of the web ATM into `dist/`, offline, with npm's wasm-opt first on
/// `PATH`. Installs trunk and binaryen first when they are missing.
pub(crate) fn build_web_atm(root: &Path) -> Result<(), String> {
    setup::ensure(root, Some(Purpose::WebBuild))?;
    // Offline trunk passes `--offline` to cargo, so fetch the crates first.
    Cmd::cargo().arg("fetch").run()?;
    web_build_cmd(root).run()
}

/// The trunk command that builds the release bundle.
pub(crate) fn web_build_cmd(root: &Path) -> Cmd {
    Cmd::new("trunk")
        .path_first(&setup::binaryen_bin(root))
        .env("TRUNK_OFFLINE", "true")
        .args(["build", "--release"])
}

/// The few `serve` options that say where the bank listens and keeps its data, read like
/// `bank-server` reads them (flag, then environment, then default).
#[derive(Debug, PartialEq, Eq)]
struct ServeOpts {
    port: String,
    bind: String,
    data_dir: PathBuf,
    /// The console's listening address.
    console: String,
    /// Whether the arguments or the environment gave it (else `run` adds the flag).
    console_given: bool,
}

impl ServeOpts {
    fn from_args(args: &[String]) -> Self {
        let mut flags = BTreeMap::new();
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            for name in ["--port", "--bind", "--data-dir", "--console-listen"] {
                if arg == name {
                    if let Some(value) = it.clone().next() {
                        flags.insert(name, value.clone());
                    }
                } else if let Some(value) = arg.strip_prefix(&format!("{name}=")) {
                    flags.insert(name, value.to_owned());
                }
            }
        }
        let pick = |flag: &str, var: &str, default: &str| {
            flags
                .get(flag)
                .cloned()
                .or_else(|| env::var(var).ok())
                .unwrap_or_else(|| default.to_owned())
        };
        Self {
            port: pick("--port", "BANK_PORT", "8765"),
            bind: pick("--bind", "BANK_BIND", "127.0.0.1"),
            data_dir: PathBuf::from(pick("--data-dir", "BANK_DATA_DIR", "./bank-data")),
            console: pick("--console-listen", "BANK_CONSOLE_LISTEN", CONSOLE_LISTEN),
            console_given: flags.contains_key("--console-listen")
                || env::var_os("BANK_CONSOLE_LISTEN").is_some(),
        }
    }
}

/// A one-time enrollment code for a browser terminal of the bank in `opts.data_dir` (created
/// first when absent), from `bank-server terminal add --code`.
fn enrollment_code(server: &Path, args: &[String], opts: &ServeOpts) -> Result<String, String> {
    if opts.port == "0" {
        return Err("--port 0: the port is only known once the bank runs".into());
    }
    if !opts.data_dir.exists() {
        first_start(server, args)?;
    }
    let out = Command::new(server)
        .args(["terminal", "add", "--code", "--name", TERMINAL_NAME])
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .map_err(|e| format!("bank-server terminal add --code: {e}"))?;
    if !out.status.success() {
        return Err("bank-server terminal add --code failed".into());
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("e-"))
        .map(str::to_owned)
        .ok_or_else(|| "bank-server terminal add --code printed no code".into())
}

/// Creates a new bank by starting it once on a free port until it says `created`.
fn first_start(server: &Path, args: &[String]) -> Result<(), String> {
    println!("run: first start; creating the bank");
    let mut child = Command::new(server)
        .arg("serve")
        .args(without(&without(args, "--port"), "--console-listen"))
        .args(["--port", "0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", server.display()))?;
    let created = child.stdout.take().is_some_and(|out| {
        BufReader::new(out)
            .lines()
            .next()
            .is_some_and(|line| line.is_ok_and(|l| l.trim() == "created"))
    });
    // Stop that bank (our own child) the way an operator would: SIGTERM, then wait.
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    if created {
        Ok(())
    } else {
        Err("the bank did not start; see `bank-server serve` output".into())
    }
}

/// The arguments minus any `flag` and its value (the first start picks a free port and needs
/// no console; clap refuses a flag given twice).
fn without(args: &[String], flag: &str) -> Vec<String> {
    let mut kept = Vec::new();
    let mut it = args.iter();
    let joined = format!("{flag}=");
    while let Some(arg) = it.next() {
        if arg == flag {
            it.next();
        } else if !arg.starts_with(&joined) {
            kept.push(arg.clone());
        }
    }
    kept
}

fn url_host(bind: &str) -> String {
    if bind.contains(':') {
        format!("[{bind}]")
    } else {
        bind.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn serve_options_are_read_from_both_flag_forms() {
        let o = ServeOpts::from_args(&args(&[
            "--port",
            "9000",
            "--data-dir=/tmp/d",
            "--bind=0.0.0.0",
        ]));
        assert_eq!(o.port, "9000");
        assert_eq!(o.bind, "0.0.0.0");
        assert_eq!(o.data_dir, PathBuf::from("/tmp/d"));
        let console = ServeOpts::from_args(&args(&["--console-listen=127.0.0.1:9001"]));
        assert_eq!(console.console, "127.0.0.1:9001");
        assert!(console.console_given);
    }

    #[test]
    fn the_first_start_drops_the_port_and_the_console() {
        assert_eq!(
            without(
                &args(&["--console-listen", "127.0.0.1:1", "--console-listen=x"]),
                "--console-listen"
            ),
            Vec::<String>::new()
        );
        assert_eq!(
            without(
                &args(&[
                    "--port",
                    "9000",
                    "--data-dir",
                    "d",
                    "--port=1",
                    "--bind=::1"
                ]),
                "--port"
            ),
            args(&["--data-dir", "d", "--bind=::1"])
        );
    }

    #[test]
    fn ipv6_hosts_are_bracketed() {
        assert_eq!(url_host("::1"), "[::1]");
        assert_eq!(url_host("127.0.0.1"), "127.0.0.1");
    }
}

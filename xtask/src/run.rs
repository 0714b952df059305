//! `cargo xtask run`: builds the web ATM, builds the bank server, makes sure a browser terminal
//! exists and prints its enrollment link, then runs the bank in the foreground.

use protocol::link::{self, Enrollment, LinkPage};
use std::collections::BTreeMap;
use std::env;
use std::fs;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::cmd::Cmd;
use crate::setup::{self, Purpose};

/// Where the browser terminal made by `cargo xtask run` is remembered (owner-only, gitignored),
/// so each run prints the same link instead of adding a terminal.
const SAVED: &str = ".tools/web-terminal";
/// The name that terminal gets in `bank-server terminal list`.
const TERMINAL_NAME: &str = "web ATM (cargo xtask run)";

pub(crate) fn run(root: &Path, server_args: &[String]) -> Result<(), String> {
    build_web_atm(root)?;
    Cmd::cargo()
        .args(["build", "--release", "-p", "bank-server"])
        .run()?;
    let server = target_dir(root).join("release").join("bank-server");
    let opts = ServeOpts::from_args(server_args);
    match enrollment_link(root, &server, server_args, &opts) {
        Ok(link) => {
            println!("\n================================================================");
            println!(
                "Open this link in the browser that will be the ATM (once; it keeps the key):\n"
            );
            println!("  {link}\n");
            println!("Native ATMs use the auth file of the bank's first terminal.");
            println!(
                "Bank console: `target/release/bank-server operator add NAME` (same --data-dir)\n\
                 prints the console's link; open it and log in as NAME."
            );
            println!("================================================================\n");
        }
        Err(why) => println!("run: no enrollment link printed ({why})"),
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
}

impl ServeOpts {
    fn from_args(args: &[String]) -> Self {
        let mut flags = BTreeMap::new();
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            for name in ["--port", "--bind", "--data-dir"] {
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
        }
    }
}

/// The link for this bank's browser terminal: the saved one if that terminal is still active
/// in this data directory, else a new terminal (`bank-server terminal add --web`).
fn enrollment_link(
    root: &Path,
    server: &Path,
    args: &[String],
    opts: &ServeOpts,
) -> Result<String, String> {
    if opts.port == "0" {
        return Err("--port 0: the port is only known once the bank runs".into());
    }
    if !opts.data_dir.exists() {
        first_start(server, args)?;
    }
    let data_dir = fs::canonicalize(&opts.data_dir)
        .map_err(|e| format!("{}: {e}", opts.data_dir.display()))?;
    let base = format!("http://{}:{}", url_host(&opts.bind), opts.port);
    let saved_path = root.join(SAVED);
    if let Some(saved) = read_saved(&saved_path, &data_dir)
        .and_then(|fragment| Enrollment::from_fragment(&fragment).ok())
    {
        let id = saved.terminal.as_str();
        let list = Command::new(server)
            .args(["terminal", "list"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("bank-server terminal list: {e}"))?;
        let listed = String::from_utf8_lossy(&list.stdout).into_owned();
        if listed
            .lines()
            .any(|l| l.starts_with(&format!("{id}\tactive")))
        {
            let link = link::format(
                &base,
                LinkPage::Atm,
                &saved.terminal,
                &saved.psk,
                &saved.bank,
            );
            return Ok(link.to_string());
        }
    }
    let out = Command::new(server)
        .args(["terminal", "add", "--web", "--name", TERMINAL_NAME])
        .args(["--public-url", &base])
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("bank-server terminal add: {e}"))?;
    if !out.status.success() {
        return Err("bank-server terminal add --web failed".into());
    }
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let link = stdout
        .lines()
        .find(|l| l.starts_with("http"))
        .ok_or("bank-server terminal add --web printed no link")?
        .trim()
        .to_owned();
    let (_, fragment) = link
        .split_once('#')
        .filter(|(_, fragment)| Enrollment::from_fragment(fragment).is_ok())
        .ok_or("the printed link is not an enrollment link")?;
    save(&saved_path, &data_dir, fragment)?;
    Ok(link)
}

/// Creates a new bank by starting it once on a free port until it says `created`.
fn first_start(server: &Path, args: &[String]) -> Result<(), String> {
    println!("run: first start; creating the bank");
    let mut child = Command::new(server)
        .arg("serve")
        .args(without_port(args))
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

/// The arguments minus any `--port` (clap refuses a flag given twice).
fn without_port(args: &[String]) -> Vec<String> {
    let mut kept = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        if arg == "--port" {
            it.next();
        } else if !arg.starts_with("--port=") {
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

/// The saved file: `<data dir>\t<the link's fragment>` ([`protocol::link`]'s format).
fn read_saved(path: &Path, data_dir: &Path) -> Option<String> {
    let text = fs::read_to_string(path).ok()?;
    let (dir, fragment) = text.trim_end().split_once('\t')?;
    (Path::new(dir) == data_dir).then(|| fragment.to_owned())
}

fn save(path: &Path, data_dir: &Path, fragment: &str) -> Result<(), String> {
    use std::io::Write as _;
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    writeln!(file, "{}\t{fragment}", data_dir.display())
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Cargo's target dir: `$CARGO_TARGET_DIR` (relative to the repo root) or `target/`.
fn target_dir(root: &Path) -> PathBuf {
    match env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => root.join(dir),
        None => root.join("target"),
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
    }

    #[test]
    fn the_first_start_drops_the_port() {
        assert_eq!(
            without_port(&args(&[
                "--port",
                "9000",
                "--data-dir",
                "d",
                "--port=1",
                "--bind=::1"
            ])),
            args(&["--data-dir", "d", "--bind=::1"])
        );
    }

    #[test]
    fn ipv6_hosts_are_bracketed() {
        assert_eq!(url_host("::1"), "[::1]");
        assert_eq!(url_host("127.0.0.1"), "127.0.0.1");
    }

    #[test]
    fn a_saved_terminal_belongs_to_one_data_dir() {
        let dir = std::env::temp_dir().join(format!("xtask-run-test-{}", std::process::id()));
        let path = dir.join("saved");
        save(&path, Path::new("/data/a"), "terminal=t-1&key=k&bank=b").unwrap();
        assert_eq!(
            read_saved(&path, Path::new("/data/a")).as_deref(),
            Some("terminal=t-1&key=k&bank=b")
        );
        assert_eq!(read_saved(&path, Path::new("/data/b")), None);
        let _ = fs::remove_dir_all(dir);
    }
}

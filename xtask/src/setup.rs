//! `cargo xtask setup`: installs the tools the tests and the web build need, skipping what is there.

use std::fs;
use std::path::{Path, PathBuf};

use crate::cmd::Cmd;

/// What a tool is needed for, so `run` can install only what building the web ATM takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// `cargo xtask test`.
    Test,
    /// `trunk build` of the web ATM (used by `cargo xtask run`).
    WebBuild,
    /// `cargo xtask bench` alone (`cargo xtask setup` leaves these out).
    Bench,
}

const TEST: &[Purpose] = &[Purpose::Test];
const BENCH: &[Purpose] = &[Purpose::Bench];
const TEST_AND_BENCH: &[Purpose] = &[Purpose::Test, Purpose::Bench];

/// The trunk the project pins (0.22 needs a newer rustc; README, "Toolchain notes").
pub(crate) const TRUNK_VERSION: &str = "0.21.14";
/// The cargo-fuzz that `cargo xtask fuzz` and the test's fuzz smoke step run (fuzz/README.md).
pub(crate) const CARGO_FUZZ_VERSION: &str = "0.13.2";
/// The wasm-pack of the README's `wasm-pack test` (run with `--mode no-install`).
pub(crate) const WASM_PACK_VERSION: &str = "0.15.1";
/// The npm binaryen whose `wasm-opt` trunk runs (`wasm_opt` in Trunk.toml).
const BINARYEN_VERSION: &str = "132";
/// Where npm installs it, relative to the repo root (gitignored).
const BINARYEN_DIR: &str = ".tools/binaryen";

/// The folder holding npm binaryen's `wasm-opt`, to put first on trunk's `PATH`.
pub(crate) fn binaryen_bin(root: &Path) -> PathBuf {
    root.join(BINARYEN_DIR).join("node_modules").join(".bin")
}
const TEST_AND_WEB: &[Purpose] = &[Purpose::Test, Purpose::WebBuild];

/// One tool: how to tell it is already there at the right version, and how to install it.
#[derive(Debug)]
struct Tool {
    name: String,
    purposes: &'static [Purpose],
    probe: Probe,
    install: Vec<Cmd>,
    needs_root: bool,
}

/// How to tell a tool is present at the right version.
#[derive(Debug)]
enum Probe {
    /// The command runs and prints `version` as one of the words of its output
    /// (`wasm-bindgen --version` prints `wasm-bindgen 0.2.130`).
    Version { cmd: Cmd, version: String },
    /// The command runs and prints `item` alone on one of its lines.
    Lists { cmd: Cmd, item: String },
    /// Each command runs and exits with status 0.
    Runs(Vec<Cmd>),
    /// All these files exist.
    Files(Vec<PathBuf>),
    /// Every one of these probes passes.
    All(Vec<Probe>),
}

impl Probe {
    /// `Ok` when the tool is there as wanted, else why not.
    fn check(&self) -> Result<(), String> {
        match self {
            Probe::Version { cmd, version } => {
                let out = cmd.output().ok_or_else(|| format!("`{cmd}` did not run"))?;
                if prints_version(&out, version) {
                    Ok(())
                } else {
                    Err(format!("`{cmd}` printed `{}`, want {version}", out.trim()))
                }
            }
            Probe::Lists { cmd, item } => {
                let out = cmd.output().ok_or_else(|| format!("`{cmd}` did not run"))?;
                if out.lines().any(|line| line.trim() == item) {
                    Ok(())
                } else {
                    Err(format!("`{cmd}` does not list {item}"))
                }
            }
            Probe::Runs(cmds) => cmds.iter().try_for_each(|cmd| {
                cmd.output()
                    .map(drop)
                    .ok_or_else(|| format!("`{cmd}` did not run"))
            }),
            Probe::Files(paths) => match paths.iter().find(|p| !p.exists()) {
                None => Ok(()),
                Some(missing) => Err(format!("{} is missing", missing.display())),
            },
            Probe::All(probes) => probes.iter().try_for_each(Probe::check),
        }
    }
}

/// The tools, in install order. Adding one is one entry here.
fn tools(root: &Path) -> Result<Vec<Tool>, String> {
    let wasm_bindgen = locked_version(&read(&root.join("Cargo.lock"))?, "wasm-bindgen")?;
    Ok(vec![
        Tool {
            name: "rustfmt and clippy".to_owned(),
            purposes: TEST,
            probe: Probe::Runs(vec![
                Cmd::cargo().args(["fmt", "--version"]),
                Cmd::cargo().args(["clippy", "--version"]),
            ]),
            install: vec![Cmd::new("rustup").args(["component", "add", "rustfmt", "clippy"])],
            needs_root: false,
        },
        Tool {
            name: "rust target wasm32-unknown-unknown".to_owned(),
            purposes: TEST_AND_WEB,
            probe: Probe::Lists {
                cmd: Cmd::new("rustup").args(["target", "list", "--installed"]),
                item: "wasm32-unknown-unknown".to_owned(),
            },
            install: vec![Cmd::new("rustup").args(["target", "add", "wasm32-unknown-unknown"])],
            needs_root: false,
        },
        Tool {
            // Must equal the wasm-bindgen crate in Cargo.lock. Not `--locked`: that fails on
            // a registry mirror that lags crates.io (README, "Toolchain notes").
            name: format!("wasm-bindgen-cli {wasm_bindgen}"),
            purposes: TEST_AND_WEB,
            probe: Probe::All(vec![
                version("wasm-bindgen", &wasm_bindgen),
                version("wasm-bindgen-test-runner", &wasm_bindgen),
            ]),
            install: vec![Cmd::cargo().args([
                "install",
                "wasm-bindgen-cli",
                "--version",
                &wasm_bindgen,
            ])],
            needs_root: false,
        },
        Tool {
            // cargo-fuzz builds the fuzz targets with nightly's sanitizer flags.
            name: "rust nightly (fuzz targets)".to_owned(),
            purposes: TEST,
            probe: Probe::Runs(vec![Cmd::cargo_on("nightly").arg("--version")]),
            install: vec![Cmd::new("rustup").args([
                "toolchain",
                "install",
                "nightly",
                "--profile",
                "minimal",
            ])],
            needs_root: false,
        },
        Tool {
            // Not `--locked`, like wasm-bindgen-cli.
            name: format!("cargo-fuzz {CARGO_FUZZ_VERSION}"),
            purposes: TEST,
            probe: Probe::Version {
                cmd: Cmd::cargo().args(["fuzz", "--version"]),
                version: CARGO_FUZZ_VERSION.to_owned(),
            },
            install: vec![Cmd::cargo().args([
                "install",
                "cargo-fuzz",
                "--version",
                CARGO_FUZZ_VERSION,
            ])],
            needs_root: false,
        },
        Tool {
            // Not `--locked`, like wasm-bindgen-cli. It never downloads here: the test runs
            // it with `--mode no-install` and Debian's chromedriver.
            name: format!("wasm-pack {WASM_PACK_VERSION}"),
            purposes: TEST,
            probe: version("wasm-pack", WASM_PACK_VERSION),
            install: vec![Cmd::cargo().args([
                "install",
                "wasm-pack",
                "--version",
                WASM_PACK_VERSION,
            ])],
            needs_root: false,
        },
        Tool {
            // The bench counts the bank's sync calls with `strace -c`; without it, it skips that.
            name: "strace (Debian)".to_owned(),
            purposes: BENCH,
            probe: Probe::Files(vec!["/usr/bin/strace".into()]),
            install: vec![
                Cmd::new("apt-get").arg("update"),
                Cmd::new("apt-get")
                    .env("DEBIAN_FRONTEND", "noninteractive")
                    .args(["install", "-y", "strace"]),
            ],
            needs_root: true,
        },
        Tool {
            // The PostgreSQL engine's tests start their own server (pg-harness: initdb into a
            // temporary directory, as the `postgres` user the package makes when run as root).
            name: "postgresql (Debian)".to_owned(),
            purposes: TEST_AND_BENCH,
            probe: Probe::Runs(vec![Cmd::new("sh").args([
                "-c",
                "ls /usr/lib/postgresql/*/bin/initdb /usr/lib/postgresql/*/bin/pg_ctl \
                 && command -v psql && id postgres",
            ])]),
            install: vec![
                Cmd::new("apt-get").arg("update"),
                Cmd::new("apt-get")
                    .env("DEBIAN_FRONTEND", "noninteractive")
                    .args(["install", "-y", "postgresql"]),
            ],
            needs_root: true,
        },
        Tool {
            // The balancer end-to-end test runs HAProxy (deploy/haproxy.cfg) in the foreground
            // in front of two bank nodes; it needs no root to run, only to install.
            name: "haproxy (Debian)".to_owned(),
            purposes: TEST,
            probe: Probe::Files(vec!["/usr/sbin/haproxy".into()]),
            install: vec![
                Cmd::new("apt-get").arg("update"),
                Cmd::new("apt-get")
                    .env("DEBIAN_FRONTEND", "noninteractive")
                    .args(["install", "-y", "haproxy"]),
            ],
            needs_root: true,
        },
        Tool {
            name: "chromium and chromium-driver (Debian)".to_owned(),
            purposes: TEST,
            probe: Probe::Files(vec![
                "/usr/bin/chromium".into(),
                "/usr/bin/chromedriver".into(),
            ]),
            install: vec![
                Cmd::new("apt-get").arg("update"),
                Cmd::new("apt-get")
                    .env("DEBIAN_FRONTEND", "noninteractive")
                    .args(["install", "-y", "chromium", "chromium-driver"]),
            ],
            needs_root: true,
        },
        Tool {
            // MUST be `--locked` (README, "Toolchain notes"); 0.22 needs a newer rustc.
            name: format!("trunk {TRUNK_VERSION}"),
            purposes: TEST_AND_WEB,
            probe: version("trunk", TRUNK_VERSION),
            install: vec![Cmd::cargo().args([
                "install",
                "trunk",
                "--version",
                TRUNK_VERSION,
                "--locked",
            ])],
            needs_root: false,
        },
        Tool {
            // Debian's binaryen is too old for current rustc output; npm's 132 works.
            name: format!("binaryen {BINARYEN_VERSION} (npm, in .tools/)"),
            purposes: TEST_AND_WEB,
            probe: Probe::Version {
                cmd: Cmd::new(binaryen_bin(root).join("wasm-opt")).arg("--version"),
                version: BINARYEN_VERSION.to_owned(),
            },
            install: vec![Cmd::new("npm")
                .arg("install")
                .arg("--prefix")
                .arg(root.join(BINARYEN_DIR))
                .args([
                    "--no-save",
                    "--no-audit",
                    "--no-fund",
                    &format!("binaryen@{BINARYEN_VERSION}"),
                ])],
            needs_root: false,
        },
    ])
}

/// `PROGRAM --version` prints `version`.
fn version(program: &str, version: &str) -> Probe {
    Probe::Version {
        cmd: Cmd::new(program).arg("--version"),
        version: version.to_owned(),
    }
}

/// Installs every tool the tests and the web build need that is missing or at the wrong version.
pub(crate) fn setup(root: &Path) -> Result<(), String> {
    ensure(root, None)
}

/// Installs the tools needed for `purpose` (when `None`, all but those only the bench needs), skipping
/// those present.
pub(crate) fn ensure(root: &Path, purpose: Option<Purpose>) -> Result<(), String> {
    let tools = tools(root)?;
    let wanted = tools.iter().filter(|tool| match purpose {
        Some(p) => tool.purposes.contains(&p),
        None => tool.purposes != BENCH,
    });
    for tool in wanted {
        let why = match tool.probe.check() {
            Ok(()) => {
                println!("setup: {}: present, skipping", tool.name);
                continue;
            }
            Err(why) => why,
        };
        println!("setup: {}: {why}; installing", tool.name);
        if tool.needs_root && !is_root() {
            let commands: Vec<String> = tool.install.iter().map(ToString::to_string).collect();
            return Err(format!(
                "{} needs root to install. Run this as root, then run the xtask again:\n  {}",
                tool.name,
                commands.join(" && ")
            ));
        }
        for cmd in &tool.install {
            cmd.run()?;
        }
        tool.probe
            .check()
            .map_err(|why| format!("{}: still not right after installing: {why}", tool.name))?;
        println!("setup: {}: installed", tool.name);
    }
    Ok(())
}

/// The one version of `package` in a Cargo.lock; an error if it is absent or locked twice.
fn locked_version(lock: &str, package: &str) -> Result<String, String> {
    let wanted_name = format!("name = \"{package}\"");
    let mut versions = Vec::new();
    let mut lines = lock.lines().map(str::trim);
    while let Some(line) = lines.next() {
        if line != wanted_name {
            continue;
        }
        // In Cargo.lock, `version` is the line right after `name`.
        let version = lines
            .next()
            .and_then(|l| l.strip_prefix("version = \""))
            .and_then(|l| l.strip_suffix('"'))
            .ok_or_else(|| format!("Cargo.lock: no version line after {wanted_name}"))?;
        versions.push(version.to_owned());
    }
    match versions.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(format!("Cargo.lock has no `{package}` package")),
        many => Err(format!(
            "Cargo.lock has several `{package}` versions: {many:?}"
        )),
    }
}

/// Whether `version` appears as a whole word (optionally `v`-prefixed) in a `--version` output.
fn prints_version(output: &str, version: &str) -> bool {
    output
        .split(|c: char| c.is_whitespace() || "(),".contains(c))
        .any(|word| word == version || word.strip_prefix('v') == Some(version))
}

/// Whether this process runs as root (effective uid 0).
fn is_root() -> bool {
    Cmd::new("id")
        .arg("-u")
        .output()
        .is_some_and(|uid| uid.trim() == "0")
}

fn read(path: &Path) -> Result<String, String> {
    fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCK: &str = r#"
[[package]]
name = "wasm-bindgen"
version = "0.2.130"
source = "registry+https://github.com/rust-lang/crates.io-index"

[[package]]
name = "wasm-bindgen-backend"
version = "0.2.99"
"#;

    #[test]
    fn reads_the_locked_version_of_exactly_that_package() {
        assert_eq!(locked_version(LOCK, "wasm-bindgen").unwrap(), "0.2.130");
        assert_eq!(
            locked_version(LOCK, "wasm-bindgen-backend").unwrap(),
            "0.2.99"
        );
        assert!(locked_version(LOCK, "trunk").is_err());
    }

    #[test]
    fn two_locked_versions_are_an_error() {
        let twice =
            format!("{LOCK}\n[[package]]\nname = \"wasm-bindgen\"\nversion = \"0.2.100\"\n");
        let err = locked_version(&twice, "wasm-bindgen").unwrap_err();
        assert!(err.contains("0.2.100") && err.contains("0.2.130"), "{err}");
    }

    #[test]
    fn this_workspace_locks_one_wasm_bindgen() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let version =
            locked_version(&read(&root.join("Cargo.lock")).unwrap(), "wasm-bindgen").unwrap();
        assert!(version.starts_with("0.2."), "{version}");
    }

    #[test]
    fn version_must_match_a_whole_word() {
        assert!(prints_version("wasm-bindgen 0.2.130\n", "0.2.130"));
        assert!(!prints_version("wasm-bindgen 0.2.13\n", "0.2.130"));
        assert!(!prints_version("wasm-bindgen 0.2.1300\n", "0.2.130"));
        assert!(!prints_version("wasm-bindgen 0.2.131\n", "0.2.130"));
        assert!(prints_version("trunk v0.21.14", "0.21.14"));
        assert!(prints_version("wasm-opt version 132 (version_132)", "132"));
    }

    #[test]
    fn probes_tell_present_from_missing() {
        assert!(Probe::Files(vec!["/".into()]).check().is_ok());
        assert!(Probe::Files(vec!["/".into(), "/no/such/file/here".into()])
            .check()
            .is_err());
        let echo = |text: &str| Cmd::new("echo").arg(text);
        let v = |text: &str, version: &str| Probe::Version {
            cmd: echo(text),
            version: version.to_owned(),
        };
        assert!(v("tool 1.2.3", "1.2.3").check().is_ok());
        assert!(v("tool 1.2.4", "1.2.3").check().is_err());
        assert!(
            Probe::All(vec![v("tool 1.2.3", "1.2.3"), v("tool 1.2.4", "1.2.3")])
                .check()
                .is_err()
        );
        assert!(version("xtask-no-such-program-here", "1.0.0")
            .check()
            .is_err());
        let listed = |item: &str| Probe::Lists {
            cmd: Cmd::new("printf").arg("a-b\nwasm32-unknown-unknown\n"),
            item: item.to_owned(),
        };
        assert!(listed("wasm32-unknown-unknown").check().is_ok());
        assert!(listed("wasm32").check().is_err());
        assert!(Probe::Runs(vec![Cmd::new("true")]).check().is_ok());
        assert!(Probe::Runs(vec![Cmd::new("true"), Cmd::new("false")])
            .check()
            .is_err());
    }
}

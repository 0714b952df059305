//! `cargo xtask run`: builds the web ATM when it exists, then builds and runs the bank server.

use std::path::Path;

use crate::cmd::Cmd;
use crate::setup::{self, Purpose};

/// The trunk the project pins (0.22 needs a newer rustc; see shared/TOOLCHAIN.md).
const TRUNK_VERSION: &str = "0.21.14";

pub(crate) fn run(root: &Path, server_args: &[String]) -> Result<(), String> {
    if root.join("index.html").is_file() && root.join("Trunk.toml").is_file() {
        build_web_atm(root)?;
    } else {
        println!(
            "run: no index.html + Trunk.toml at the repo root yet; skipping the web ATM build"
        );
    }
    // `cargo run` builds the release binary first; exec so Ctrl-C and the exit code are the server's.
    let server = Cmd::cargo()
        .args(["run", "--release", "-p", "bank-server", "--", "serve"])
        .args(server_args);
    Err(server.exec())
}

fn build_web_atm(root: &Path) -> Result<(), String> {
    setup::ensure(root, Some(Purpose::WebBuild))?;
    if Cmd::new("trunk").arg("--version").output().is_none() {
        return Err(format!(
            "trunk is not installed; run: cargo install trunk --version {TRUNK_VERSION} --locked"
        ));
    }
    // Offline trunk passes `--offline` to cargo, so fetch the crates first.
    Cmd::cargo().arg("fetch").run()?;
    Cmd::new("trunk")
        .env("TRUNK_OFFLINE", "true")
        .args(["build", "--release"])
        .run()
}

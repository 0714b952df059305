//! `cargo xtask test`: every check and test in order, stopping at the first failure, then a timed summary.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::cmd::Cmd;
use crate::files::target_dir;
use crate::{devflow, files, fuzz, run, setup};

type Action = Box<dyn FnOnce() -> Result<(), String>>;

/// One step of the run, with the name shown in the summary.
struct Step {
    name: String,
    action: Action,
}

impl Step {
    fn new(name: impl Into<String>, action: impl FnOnce() -> Result<(), String> + 'static) -> Self {
        Self {
            name: name.into(),
            action: Box::new(action),
        }
    }

    fn cmd(cmd: Cmd) -> Self {
        Self::new(cmd.to_string(), move || cmd.run())
    }
}

enum Outcome {
    Passed(Duration),
    Failed(Duration),
    NotRun,
}

pub(crate) fn test(root: &Path) -> Result<(), String> {
    let steps = steps(root);
    let total = steps.len();
    let mut outcomes: Vec<(String, Outcome)> = Vec::with_capacity(total);
    let mut failure = None;
    for (i, step) in steps.into_iter().enumerate() {
        if failure.is_some() {
            outcomes.push((step.name, Outcome::NotRun));
            continue;
        }
        println!("\n==> [{}/{total}] {}", i + 1, step.name);
        let start = Instant::now();
        let result = (step.action)();
        let took = start.elapsed();
        match result {
            Ok(()) => outcomes.push((step.name, Outcome::Passed(took))),
            Err(err) => {
                outcomes.push((step.name, Outcome::Failed(took)));
                failure = Some(err);
            }
        }
    }
    print_summary(&outcomes);
    match failure {
        None => {
            println!("xtask test: all {total} steps ok");
            Ok(())
        }
        Some(err) => Err(err),
    }
}

fn steps(root: &Path) -> Vec<Step> {
    let setup_root = root.to_owned();
    let mut steps = vec![
        Step::new("cargo xtask setup", move || setup::setup(&setup_root)),
        Step::cmd(Cmd::cargo().args(["fmt", "--all", "--", "--check"])),
        Step::cmd(Cmd::cargo().args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ])),
        Step::cmd(Cmd::cargo().args(["test", "--workspace"])),
    ];
    // The protocol's tests in headless Chromium, as the README's developer workflow runs them.
    let pack_root = root.to_owned();
    steps.push(Step::new(
        "wasm-pack test --headless --chrome protocol",
        move || devflow::wasm_pack_test(&pack_root),
    ));
    // The web ATM: lint it as wasm, run its logic in Chromium, build the release bundle and
    // drive it end to end in headless Chromium against a real bank.
    steps.push(Step::cmd(Cmd::cargo().args([
        "clippy",
        "--target",
        "wasm32-unknown-unknown",
        "-p",
        "atm-wasm",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ])));
    let wasm_json = files::webdriver_json_path(root);
    let atm_wasm = Cmd::cargo()
        .env("CHROMEDRIVER", "/usr/bin/chromedriver")
        .env("WASM_BINDGEN_TEST_WEBDRIVER_JSON", &wasm_json)
        .args([
            "test",
            "--target",
            "wasm32-unknown-unknown",
            "-p",
            "atm-wasm",
            "--tests",
        ]);
    steps.push(Step::new(
        "cargo test --target wasm32-unknown-unknown -p atm-wasm --tests (Chromium)",
        move || {
            files::write_webdriver_json(&wasm_json)?;
            atm_wasm.run()
        },
    ));
    let web_root = root.to_owned();
    steps.push(Step::new(
        "trunk build --release (web ATM bundle)",
        move || {
            run::build_web_atm(&web_root)?;
            report_bundle_size(&web_root.join("dist"))
        },
    ));
    let serve_root = root.to_owned();
    steps.push(Step::new(
        "trunk serve, proxying /ws to a running bank",
        move || devflow::trunk_serve(&serve_root),
    ));
    steps.push(Step::cmd(
        Cmd::cargo().env("ATM_E2E_DIST", root.join("dist")).args([
            "test",
            "-p",
            "e2e",
            "--",
            "--include-ignored",
        ]),
    ));
    // Every fuzz target built and run over its seeds, then briefly (fuzz/README.md).
    let fuzz_root = root.to_owned();
    steps.push(Step::new(
        format!(
            "cargo xtask fuzz {} (every fuzz target, its seeds and {} s)",
            fuzz::SMOKE_SECONDS,
            fuzz::SMOKE_SECONDS
        ),
        move || fuzz::fuzz(&fuzz_root, fuzz::SMOKE_SECONDS),
    ));
    let script = root.join("docs/interop/check_vectors.py");
    if script.is_file() {
        let venv = target_dir(root).join("xtask").join("interop-venv");
        let requirements = root.join("docs/interop/requirements.txt");
        steps.push(Step::new(
            "python3 docs/interop/check_vectors.py",
            move || interop(&venv, &requirements, &script),
        ));
    } else {
        println!("test: docs/interop/check_vectors.py does not exist yet; no interop step");
    }
    steps
}

/// Prints the gzip -9 size of the bundle's .wasm and .js (what a browser downloads).
fn report_bundle_size(dist: &Path) -> Result<(), String> {
    let entries = fs::read_dir(dist).map_err(|e| format!("{}: {e}", dist.display()))?;
    let mut total = 0usize;
    for entry in entries.flatten() {
        let path = entry.path();
        let wanted = path
            .extension()
            .is_some_and(|ext| ext == "wasm" || ext == "js");
        if !wanted {
            continue;
        }
        let gz = Cmd::new("sh")
            .arg("-c")
            .arg("gzip -9c \"$1\" | wc -c")
            .arg("sh")
            .arg(&path)
            .output()
            .and_then(|out| out.trim().parse::<usize>().ok())
            .ok_or_else(|| format!("cannot gzip {}", path.display()))?;
        let raw = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        println!(
            "bundle: {} {raw} bytes, {gz} bytes gzipped",
            path.file_name().unwrap_or_default().to_string_lossy()
        );
        total += gz;
    }
    println!("bundle: .wasm + .js gzipped: {total} bytes");
    Ok(())
}

/// Runs the interop script in a venv under target/ (Debian's python3 refuses a global pip install).
fn interop(venv: &Path, requirements: &Path, script: &Path) -> Result<(), String> {
    let python = venv.join("bin").join("python3");
    if !python.exists() {
        Cmd::new("python3").args(["-m", "venv"]).arg(venv).run()?;
    }
    if requirements.is_file() {
        Cmd::new(&python)
            .args(["-m", "pip", "install", "--disable-pip-version-check", "-r"])
            .arg(requirements)
            .run()?;
    }
    Cmd::new(&python).arg(script).run()
}

fn print_summary(outcomes: &[(String, Outcome)]) {
    println!("\nxtask test summary:");
    let mut total = Duration::ZERO;
    for (name, outcome) in outcomes {
        let (word, took) = match outcome {
            Outcome::Passed(d) => ("ok", Some(*d)),
            Outcome::Failed(d) => ("FAILED", Some(*d)),
            Outcome::NotRun => ("not run", None),
        };
        let took = took.map_or_else(String::new, |d| {
            total += d;
            format!("{:.1}s", d.as_secs_f64())
        });
        println!("  {word:<8}{took:>8}  {name}");
    }
    println!(
        "  {:<8}{:>8}",
        "total",
        format!("{:.1}s", total.as_secs_f64())
    );
}

/// Cargo's target dir: `$CARGO_TARGET_DIR` (relative to the repo root) or `target/`.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_run_in_the_documented_order() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let names: Vec<String> = steps(root).into_iter().map(|s| s.name).collect();
        assert_eq!(
            names[..5],
            [
                "cargo xtask setup",
                "cargo fmt --all -- --check",
                "cargo clippy --workspace --all-targets -- -D warnings",
                "cargo test --workspace",
                "wasm-pack test --headless --chrome protocol",
            ]
        );
        let e2e = format!(
            "ATM_E2E_DIST={} cargo test -p e2e -- --include-ignored",
            root.join("dist").display()
        );
        assert_eq!(
            names[5..10],
            [
                "cargo clippy --target wasm32-unknown-unknown -p atm-wasm --all-targets -- -D warnings",
                "cargo test --target wasm32-unknown-unknown -p atm-wasm --tests (Chromium)",
                "trunk build --release (web ATM bundle)",
                "trunk serve, proxying /ws to a running bank",
                e2e.as_str(),
            ]
        );
        assert_eq!(
            names[10],
            "cargo xtask fuzz 10 (every fuzz target, its seeds and 10 s)"
        );
        let interop = root.join("docs/interop/check_vectors.py").is_file();
        assert_eq!(names.len(), if interop { 12 } else { 11 });
    }
}

//! `cargo xtask test`: every check and test in order, stopping at the first failure, then a timed summary.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::cmd::Cmd;
use crate::setup;

/// Chromium as root needs `--no-sandbox`; the rest keep it off the (closed) network.
const WEBDRIVER_JSON: &str = r#"{"goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": ["--headless=new","--no-sandbox","--disable-gpu","--disable-dev-shm-usage","--disable-background-networking","--disable-component-update","--disable-sync","--disable-quic","--no-first-run"]}}
"#;

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
    let webdriver_json = target_dir(root).join("xtask").join("webdriver.json");
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
    let wasm = Cmd::cargo()
        .env("CHROMEDRIVER", "/usr/bin/chromedriver")
        .env("WASM_BINDGEN_TEST_WEBDRIVER_JSON", &webdriver_json)
        .args([
            "test",
            "--target",
            "wasm32-unknown-unknown",
            "-p",
            "protocol",
            "--tests",
        ]);
    steps.push(Step::new(
        "cargo test --target wasm32-unknown-unknown -p protocol --tests (Chromium)",
        move || {
            write_file(&webdriver_json, WEBDRIVER_JSON)?;
            wasm.run()
        },
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
fn target_dir(root: &Path) -> PathBuf {
    match env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => root.join(dir),
        None => root.join("target"),
    }
}

fn write_file(path: &Path, text: &str) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webdriver_json_names_debian_chromium_and_the_offline_flags() {
        let args = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-quic",
            "--no-first-run",
        ];
        let quoted: Vec<String> = args.iter().map(|a| format!("\"{a}\"")).collect();
        let expected = format!(
            "{{\"goog:chromeOptions\": {{\"binary\": \"/usr/bin/chromium\", \"args\": [{}]}}}}\n",
            quoted.join(",")
        );
        assert_eq!(WEBDRIVER_JSON, expected);
    }

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
                "cargo test --target wasm32-unknown-unknown -p protocol --tests (Chromium)",
            ]
        );
        let interop = root.join("docs/interop/check_vectors.py").is_file();
        assert_eq!(names.len(), if interop { 6 } else { 5 });
    }
}

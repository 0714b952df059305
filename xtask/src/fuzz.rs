//! `cargo xtask fuzz [SECONDS]`: builds every cargo-fuzz target of fuzz/ and runs each in turn
//! for SECONDS over its committed seeds and local corpus; the test command's smoke step is the
//! same run, short.

use std::path::Path;

use crate::cmd::Cmd;

/// How long `cargo xtask fuzz` runs each target unless told.
pub(crate) const DEFAULT_SECONDS: u64 = 60;
/// How long the test command's smoke step runs each target (after its seeds).
pub(crate) const SMOKE_SECONDS: u64 = 10;
/// libFuzzer's limit on one input: a hang in the bank would show as a timeout.
const INPUT_TIMEOUT_SECONDS: u64 = 60;

/// `cargo +nightly fuzz <args>` in fuzz/, its build output kept in fuzz/target whatever
/// `CARGO_TARGET_DIR` the workspace uses.
fn cargo_fuzz(root: &Path) -> Cmd {
    Cmd::cargo_on("nightly")
        .env("CARGO_TARGET_DIR", root.join("fuzz").join("target"))
        .arg("fuzz")
}

/// The targets fuzz/Cargo.toml declares (`[[bin]]` names), in its order.
pub(crate) fn targets(root: &Path) -> Result<Vec<String>, String> {
    let path = root.join("fuzz").join("Cargo.toml");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(bin_names(&text))
}

/// The `name` of every `[[bin]]` table of a Cargo.toml.
fn bin_names(manifest: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut in_bin = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_bin = line == "[[bin]]";
        } else if in_bin {
            if let Some(value) = line.strip_prefix("name").map(str::trim_start) {
                if let Some(value) = value.strip_prefix('=') {
                    names.push(value.trim().trim_matches('"').to_owned());
                }
            }
        }
    }
    names
}

/// Parses `cargo xtask fuzz`'s arguments: none, or the seconds per target.
pub(crate) fn seconds(args: &[String]) -> Result<u64, String> {
    match args {
        [] => Ok(DEFAULT_SECONDS),
        [n] => n
            .parse::<u64>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("`{n}` is not a number of seconds")),
        _ => Err("usage: cargo xtask fuzz [SECONDS]".to_owned()),
    }
}

/// Builds every target, then runs each for `seconds` over `fuzz/seeds/<target>` (read only)
/// and `fuzz/corpus/<target>` (where new inputs go), one process at a time. A finding stops
/// the run with the target's name; its input is in `fuzz/artifacts/<target>/`.
pub(crate) fn fuzz(root: &Path, seconds: u64) -> Result<(), String> {
    let targets = targets(root)?;
    if targets.is_empty() {
        return Err("fuzz/Cargo.toml declares no target".to_owned());
    }
    cargo_fuzz(root).arg("build").run()?;
    for target in &targets {
        let corpus = root.join("fuzz").join("corpus").join(target);
        std::fs::create_dir_all(&corpus)
            .map_err(|e| format!("cannot create {}: {e}", corpus.display()))?;
        cargo_fuzz(root)
            .args(["run", target.as_str()])
            .arg(&corpus)
            .arg(root.join("fuzz").join("seeds").join(target))
            .arg("--")
            .arg(format!("-max_total_time={seconds}"))
            .arg(format!("-timeout={INPUT_TIMEOUT_SECONDS}"))
            .arg("-print_final_stats=1")
            .run()
            .map_err(|e| format!("fuzz target {target}: {e}"))?;
    }
    println!(
        "fuzz: {} targets ran {seconds} s each without a finding",
        targets.len()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bin_of_the_fuzz_manifest_is_a_target() {
        let manifest = "[package]\nname = \"protocol-fuzz\"\n\n[[bin]]\nname = \"a\"\npath = \"x\"\n\n[dependencies]\nname = 1\n\n[[bin]]\nname = \"b_c\"\n";
        assert_eq!(bin_names(manifest), ["a", "b_c"]);
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let targets = targets(root).unwrap();
        for target in &targets {
            let seeds = root.join("fuzz").join("seeds").join(target);
            assert!(
                seeds.is_dir(),
                "{target} has no seeds in {}",
                seeds.display()
            );
        }
        assert!(targets.iter().any(|t| t == "bank_session"), "{targets:?}");
    }

    #[test]
    fn seconds_default_to_a_minute_and_must_be_a_positive_number() {
        assert_eq!(seconds(&[]), Ok(DEFAULT_SECONDS));
        assert_eq!(seconds(&["600".to_owned()]), Ok(600));
        assert!(seconds(&["0".to_owned()]).is_err());
        assert!(seconds(&["ten".to_owned()]).is_err());
        assert!(seconds(&["1".to_owned(), "2".to_owned()]).is_err());
    }
}

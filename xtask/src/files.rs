//! Where the xtask keeps its files: the cargo target directory, the files it writes there, and
//! the options file it gives Chromium's wasm test runners.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};

/// Chromium as root needs `--no-sandbox`; the rest keep it off the (closed) network.
pub(crate) const WEBDRIVER_JSON: &str = r#"{"goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": ["--headless=new","--no-sandbox","--disable-gpu","--disable-dev-shm-usage","--disable-background-networking","--disable-component-update","--disable-sync","--disable-quic","--no-first-run"]}}
"#;

/// The cargo target directory (`CARGO_TARGET_DIR`, relative to the repository, or `target/`).
pub(crate) fn target_dir(root: &Path) -> PathBuf {
    match env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => root.join(dir),
        None => root.join("target"),
    }
}

/// Writes `text` to `path`, making its folder first.
pub(crate) fn write_file(path: &Path, text: &str) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Where the wasm test runners' Chromium options are written.
pub(crate) fn webdriver_json_path(root: &Path) -> PathBuf {
    target_dir(root).join("xtask").join("webdriver.json")
}

/// Writes [`WEBDRIVER_JSON`] to `path`.
pub(crate) fn write_webdriver_json(path: &Path) -> Result<(), String> {
    write_file(path, WEBDRIVER_JSON)
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
}

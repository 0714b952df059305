//! The README's developer workflow, run once as test steps: `trunk serve` with its proxy to a
//! running bank, and `wasm-pack test --headless --chrome protocol`.

use std::fs;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::cmd::Cmd;
use crate::files::{self, target_dir, write_file};
use crate::setup;

/// How long trunk may take to build the debug bundle before it serves the page.
const TRUNK_BUILD_LIMIT: Duration = Duration::from_secs(600);
/// The bank's WebSocket close code for any handshake failure (PROTOCOL.md §2: `close::FAILURE`).
const CLOSE_FAILURE: u16 = 1008;

/// `wasm-pack test --headless --chrome protocol`, as the README shows it, with Debian's
/// chromedriver and no downloads (`--mode no-install`: wasm-bindgen-cli comes from `setup`).
pub(crate) fn wasm_pack_test(root: &Path) -> Result<(), String> {
    let webdriver_json = files::webdriver_json_path(root);
    files::write_webdriver_json(&webdriver_json)?;
    Cmd::new("wasm-pack")
        // Chromium as root needs --no-sandbox: the runner reads its options from this file.
        .env("WASM_BINDGEN_TEST_WEBDRIVER_JSON", &webdriver_json)
        .args([
            "test",
            "--headless",
            "--chrome",
            "--chromedriver",
            "/usr/bin/chromedriver",
            "--mode",
            "no-install",
            "protocol",
        ])
        .run()
}

/// A child process killed when dropped, so a failed check leaves nothing running.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `trunk serve` as the README shows it: a bank on its own port, trunk serving the page and
/// proxying `/ws` to the bank (Trunk.toml's `[[proxy]]`). Checks that the page is served and
/// that a WebSocket opened through trunk reaches the bank (the bank's own close code comes
/// back for a malformed hello). Both on free ports, with Trunk.toml's ports swapped for them.
pub(crate) fn trunk_serve(root: &Path) -> Result<(), String> {
    setup::ensure(root, Some(setup::Purpose::WebBuild))?;
    Cmd::cargo().args(["build", "-p", "bank-server"]).run()?;
    let work = target_dir(root).join("xtask").join("trunk-serve");
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;

    // What a first start makes by default in the working directory must not appear here.
    let litter = ["bank.auth", "bank-audit.key", "bank-data"].map(|name| root.join(name));
    let before: Vec<bool> = litter.iter().map(|path| path.exists()).collect();
    let trunk_port = free_port()?;
    let (bank, bank_addr) = start_bank(root, &work, trunk_port)?;
    let config = work.join("Trunk.toml");
    let text = trunk_config(root, &work, trunk_port, bank_addr)?;
    write_file(&config, &text)?;

    let log = work.join("trunk.log");
    let log_file = fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
    let trunk = Command::new("trunk")
        .env("PATH", path_with(&setup::binaryen_bin(root)))
        .env("TRUNK_OFFLINE", "true")
        .env("CI", "true")
        .arg("--config")
        .arg(&config)
        .args(["serve", "--no-autoreload"])
        .current_dir(root)
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().map_err(|e| e.to_string())?)
        .stderr(log_file)
        .spawn()
        .map_err(|e| format!("cannot start trunk: {e}"))?;
    let _trunk = Running(trunk);
    let page = SocketAddr::from(([127, 0, 0, 1], trunk_port));
    let check = wait_for_page(page).and_then(|()| ws_reaches_bank(page));
    drop(bank);
    check.map_err(|e| format!("trunk serve: {e} (trunk's output: {})", log.display()))?;
    for (path, existed) in litter.iter().zip(before) {
        if !existed && path.exists() {
            return Err(format!("the test bank left {} behind", path.display()));
        }
    }
    println!("trunk serve: page served on {page}; /ws reached the bank through the proxy");
    Ok(())
}

fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

fn path_with(dir: &Path) -> std::ffi::OsString {
    let mut dirs: Vec<PathBuf> = vec![dir.to_owned()];
    if let Some(bin) = crate::cmd::cargo_bin_dir() {
        dirs.push(bin);
    }
    dirs.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(dirs).unwrap_or_default()
}

/// A fresh bank on a free port that accepts the page's origin; returns it with its address.
fn start_bank(root: &Path, work: &Path, trunk_port: u16) -> Result<(Running, SocketAddr), String> {
    let server = target_dir(root).join("debug").join("bank-server");
    // Every file the bank makes at its first start goes into `work`, never the repository.
    let mut child = Command::new(&server)
        .current_dir(work)
        .arg("serve")
        .arg("--data-dir")
        .arg(work.join("bank-data"))
        .arg("--auth-file")
        .arg(work.join("bank.auth"))
        .arg("--audit-key-file")
        .arg(work.join("bank-audit.key"))
        .args(["--bind", "127.0.0.1", "--port", "0"])
        .arg("--allow-origin")
        .arg(format!("http://127.0.0.1:{trunk_port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", server.display()))?;
    let stderr = child.stderr.take().ok_or("no stderr")?;
    let bank = Running(child);
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            // "bank-server: serving on http://127.0.0.1:PORT/ (web ATM); ..."
            let addr = line
                .split("serving on http://")
                .nth(1)
                .and_then(|rest| rest.split('/').next())
                .and_then(|a| a.parse::<SocketAddr>().ok());
            if let Some(addr) = addr {
                let _ = tx.send(addr);
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(60))
        .map_err(|_| "the bank did not say where it serves".to_owned())?;
    Ok((bank, addr))
}

/// Trunk.toml with its paths made absolute and its two ports (trunk's 8080, the bank's 8765)
/// swapped for free ones. Fails if Trunk.toml no longer has what the README describes.
fn trunk_config(root: &Path, work: &Path, port: u16, bank: SocketAddr) -> Result<String, String> {
    let original = fs::read_to_string(root.join("Trunk.toml")).map_err(|e| e.to_string())?;
    let swaps = [
        (
            "target = \"index.html\"".to_owned(),
            format!(
                "target = {:?}",
                root.join("index.html").display().to_string()
            ),
        ),
        (
            "dist = \"dist\"".to_owned(),
            format!("dist = {:?}", work.join("dist").display().to_string()),
        ),
        ("port = 8080".to_owned(), format!("port = {port}")),
        (
            "backend = \"ws://127.0.0.1:8765/ws\"".to_owned(),
            format!("backend = \"ws://{bank}/ws\""),
        ),
    ];
    let mut text = original;
    for (from, to) in swaps {
        if !text.contains(&from) {
            return Err(format!("Trunk.toml no longer has `{from}`"));
        }
        text = text.replace(&from, &to);
    }
    Ok(text)
}

fn wait_for_page(page: SocketAddr) -> Result<(), String> {
    let start = Instant::now();
    while start.elapsed() < TRUNK_BUILD_LIMIT {
        if let Ok(body) = http_get(page, "/") {
            if body.starts_with("HTTP/1.1 200") && body.contains(".wasm") {
                return Ok(());
            }
        }
        thread::sleep(Duration::from_millis(500));
    }
    Err(format!(
        "no page with the wasm bundle on http://{page}/ within {TRUNK_BUILD_LIMIT:?}"
    ))
}

fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut text = String::new();
    stream.read_to_string(&mut text)?;
    Ok(text)
}

/// Opens `/ws` through trunk, sends a text frame that is no hello, and expects the bank's
/// close code for a failed handshake back: trunk alone would never send it.
fn ws_reaches_bank(page: SocketAddr) -> Result<(), String> {
    let io = |e: std::io::Error| format!("WebSocket through trunk: {e}");
    let mut stream = TcpStream::connect_timeout(&page, Duration::from_secs(2)).map_err(io)?;
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .map_err(io)?;
    write!(
        stream,
        "GET /ws HTTP/1.1\r\nHost: {page}\r\nOrigin: http://{page}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n"
    )
    .map_err(io)?;
    let head = read_head(&mut stream).map_err(io)?;
    if !head.starts_with("HTTP/1.1 101") {
        return Err(format!(
            "the upgrade was refused: {}",
            head.lines().next().unwrap_or("")
        ));
    }
    // A masked text frame "{}" (RFC 6455 §5.2), mask 0.
    stream
        .write_all(&[0x81, 0x82, 0, 0, 0, 0, b'{', b'}'])
        .map_err(io)?;
    let mut frame = [0u8; 4];
    stream.read_exact(&mut frame).map_err(io)?;
    let code = u16::from_be_bytes([frame[2], frame[3]]);
    if frame[0] == 0x88 && code == CLOSE_FAILURE {
        Ok(())
    } else {
        Err(format!(
            "expected the bank's close {CLOSE_FAILURE}, got frame {frame:02x?}"
        ))
    }
}

fn read_head(stream: &mut TcpStream) -> std::io::Result<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 8192 {
        stream.read_exact(&mut byte)?;
        head.push(byte[0]);
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

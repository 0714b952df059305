//! The store against the real binary: a bank is created only where nothing is, never over
//! existing data; a damaged, truncated or rolled-back store is refused at start and by
//! `audit verify`, never served with older balances; `--reset-checkpoints` accepts a store
//! as it is, and says so in the audit log.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use atm_client::{load_auth_file, Client};
use common::process::*;
use common::*;
use protocol::Response;

/// How a start ended: serving (the process, its address) or exited (code, stdout, stderr).
enum Start {
    Serving(std::process::Child, String),
    Exited(Option<i32>, String, String),
}

/// Starts `bank-server` on `paths` with `extra` flags and waits until it serves or exits.
fn try_start(paths: &Paths, extra: &[&str]) -> Start {
    let mut child = Command::new(BIN)
        .args(["--port", "0"])
        .args(extra)
        .args(paths.args())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = String::new();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    for line in lines.by_ref().map_while(Result::ok) {
        if let Some(rest) = line.split("serving on http://").nth(1) {
            let addr = rest.split('/').next().unwrap().to_owned();
            // Keep draining stderr so the bank never blocks on a full pipe.
            std::thread::spawn(move || lines.for_each(drop));
            return Start::Serving(child, addr);
        }
        stderr.push_str(&line);
        stderr.push('\n');
    }
    let status = child.wait().unwrap();
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut stdout).unwrap();
    Start::Exited(status.code(), stdout, stderr)
}

/// Stops a serving bank with SIGINT and waits for exit 0.
fn stop(mut child: std::process::Child) {
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(child.wait().unwrap().success(), "the bank stops cleanly");
}

/// `audit verify` on `paths`: (exit code, stderr).
fn audit_verify(paths: &Paths) -> (Option<i32>, String) {
    let out = paths.command(&["audit", "verify"]);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// alice's balance on the bank at `addr` (logging in with her password).
async fn alice_balance(addr: &str, paths: &Paths) -> u64 {
    let auth = load_auth_file(&paths.auth).unwrap();
    let mut client = Client::connect(addr, &auth).await.unwrap();
    let reply = client
        .call(&login_req("alice", "correct horse"))
        .await
        .unwrap();
    assert!(matches!(reply, Response::Welcome { .. }), "{reply:?}");
    balance(&mut client).await
}

/// Makes `n` deposits of 1.00 to alice (registering her first when `register`).
async fn deposits(addr: &str, paths: &Paths, register: bool, n: usize) {
    let auth = load_auth_file(&paths.auth).unwrap();
    let mut client = Client::connect(addr, &auth).await.unwrap();
    let first = if register {
        register_req("alice", "correct horse")
    } else {
        login_req("alice", "correct horse")
    };
    let reply = client.call(&first).await.unwrap();
    assert!(matches!(reply, Response::Welcome { .. }), "{reply:?}");
    for _ in 0..n {
        let reply = client.call(&deposit_req(100)).await.unwrap();
        assert!(matches!(reply, Response::Deposited { .. }), "{reply:?}");
    }
    client.close().await.unwrap();
}

fn serving(start: Start) -> (std::process::Child, String) {
    match start {
        Start::Serving(child, addr) => (child, addr),
        Start::Exited(code, _, stderr) => panic!("the bank exited ({code:?}): {stderr}"),
    }
}

/// Copies a directory tree (regular files only: sockets are left behind).
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let kind = entry.file_type().unwrap();
        let target = to.join(entry.file_name());
        if kind.is_dir() {
            copy_dir(&entry.path(), &target);
        } else if kind.is_file() {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn replace_data(paths: &Paths, with: &Path) {
    std::fs::remove_dir_all(&paths.data).unwrap();
    copy_dir(with, &paths.data);
}

/// The file of `paths`'s engine that holds the store.
fn store_file(paths: &Paths) -> std::path::PathBuf {
    match paths.engine {
        Some("redb") => paths.data.join("bank.redb"),
        _ => paths.data.join("db"),
    }
}

/// The ways a store is damaged or rolled back, applied to `paths.data`.
fn damage(paths: &Paths, variant: &str, older: &Path) {
    let db = store_file(paths);
    let len = std::fs::metadata(&db).unwrap().len();
    let overwrite = |at: u64, bytes: &[u8]| {
        use std::os::unix::fs::FileExt;
        let file = std::fs::OpenOptions::new().write(true).open(&db).unwrap();
        file.write_all_at(bytes, at).unwrap();
    };
    let truncate = |to: u64| {
        std::fs::OpenOptions::new()
            .write(true)
            .open(&db)
            .unwrap()
            .set_len(to)
            .unwrap();
    };
    match variant {
        "an older copy" => replace_data(paths, older),
        "truncated by half" => truncate(len / 2),
        "truncated by 100 bytes" => truncate(len - 100),
        "64 B overwritten" => overwrite(len / 2, &[0xa5; 64]),
        "4 KiB overwritten" => overwrite(len / 2, &[0xa5; 4096]),
        "last 4 KiB zeroed" => overwrite(len.saturating_sub(4096), &[0; 4096]),
        other => unreachable!("{other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_or_rolled_back_stores_are_refused_never_served() {
    let dir = temp();
    // sled's log is appended to: a cut end always loses acknowledged history.
    refused_never_served(
        Paths::new(dir.path()),
        &["an older copy", "truncated by 100 bytes"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_or_rolled_back_redb_stores_are_refused_never_served() {
    let dir = temp();
    let paths = Paths::new(dir.path()).with_engine("redb");
    refused_never_served(paths, &["an older copy", "truncated by 100 bytes"]).await;
}

/// Each damage to a store of `paths`'s engine is refused at start and by `audit verify`, or,
/// if it reached nothing live, served with every acknowledged transaction; the variants in
/// `must` are always refused.
async fn refused_never_served(paths: Paths, must: &[&str]) {
    let dir = paths.data.parent().unwrap().to_owned();
    let (bank, addr) = serving(try_start(&paths, &[]));
    deposits(&addr, &paths, true, 10).await;
    stop(bank);
    let older = dir.join("older");
    copy_dir(&paths.data, &older);
    let (bank, addr) = serving(try_start(&paths, &[]));
    deposits(&addr, &paths, false, 5).await;
    assert_eq!(alice_balance(&addr, &paths).await, 1_500);
    stop(bank);
    let good = dir.join("good");
    copy_dir(&paths.data, &good);

    let beside = (
        std::fs::read(&paths.auth).unwrap(),
        std::fs::read(&paths.key).unwrap(),
    );
    let mut refused = Vec::new();
    for variant in [
        "an older copy",
        "truncated by half",
        "truncated by 100 bytes",
        "64 B overwritten",
        "4 KiB overwritten",
        "last 4 KiB zeroed",
    ] {
        replace_data(&paths, &good);
        damage(&paths, variant, &older);
        match try_start(&paths, &[]) {
            Start::Exited(code, stdout, stderr) => {
                assert_eq!(code, Some(1), "{variant}: {stderr}");
                assert!(!stdout.contains("created"), "{variant}: a new bank");
                let data = paths.data.display().to_string();
                assert!(
                    stderr.contains(&data)
                        && (stderr.contains("rolled back") || stderr.contains("damaged")),
                    "{variant}: the refusal names the path and the problem: {stderr}"
                );
                let (code, said) = audit_verify(&paths);
                assert_eq!(code, Some(1), "{variant}: audit verify: {said}");
                assert!(said.contains("BROKEN"), "{variant}: {said}");
                refused.push(variant);
            }
            // The damage missed everything live: then the bank must serve exactly what it
            // acknowledged, never older balances.
            Start::Serving(bank, addr) => {
                assert_eq!(alice_balance(&addr, &paths).await, 1_500, "{variant}");
                stop(bank);
                assert_eq!(audit_verify(&paths).0, Some(0), "{variant}");
            }
        }
        // The files beside the store are untouched: a refusal writes nothing, and a served
        // store is not a new bank.
        assert_eq!(
            std::fs::read(&paths.auth).unwrap(),
            beside.0,
            "{variant}: auth file"
        );
        assert_eq!(
            std::fs::read(&paths.key).unwrap(),
            beside.1,
            "{variant}: audit key"
        );
    }
    eprintln!("{} refused: {refused:?}", paths.engine.unwrap_or("sled"));
    for must in must {
        assert!(refused.contains(must), "{must} was served: {refused:?}");
    }

    // The operator who knows what they do: the older copy, accepted as it is, audited.
    replace_data(&paths, &older);
    let (bank, addr) = serving(try_start(&paths, &["--reset-checkpoints"]));
    assert_eq!(alice_balance(&addr, &paths).await, 1_000);
    stop(bank);
    let out = paths.command(&["audit", "show"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(shown.contains(" checkpoints_reset "), "{shown}");
    // And from then on it is checked again: the next start needs no flag.
    let (bank, _) = serving(try_start(&paths, &[]));
    stop(bank);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_is_opened_only_by_the_engine_that_made_it() {
    let dir = temp();
    let sled = Paths::new(dir.path());
    let (bank, addr) = serving(try_start(&sled, &[]));
    deposits(&addr, &sled, true, 2).await;
    stop(bank);
    let files = |paths: &Paths| {
        let mut names: Vec<_> = std::fs::read_dir(&paths.data)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        names
    };
    let before = files(&sled);
    // The same directory asked of redb: refused, naming the engine that made it, and nothing
    // of redb's is created beside sled's files.
    let redb = Paths::new(dir.path()).with_engine("redb");
    for start in [
        try_start(&redb, &[]),
        try_start(&redb, &["--reset-checkpoints"]),
    ] {
        match start {
            Start::Exited(code, stdout, stderr) => {
                assert_eq!(code, Some(1), "{stderr}");
                assert!(!stdout.contains("created"), "{stdout}");
                assert!(
                    stderr.contains(&redb.data.display().to_string())
                        && stderr
                            .contains("holds a bank kept by sled; start it with --engine sled"),
                    "{stderr}"
                );
            }
            Start::Serving(..) => panic!("redb served sled's store"),
        }
    }
    // The auditor's tool cannot check it either (2: not checked, where 1 is a broken log).
    let (code, said) = audit_verify(&redb);
    assert_eq!(code, Some(2), "{said}");
    assert!(said.contains("kept by sled"), "{said}");
    assert_eq!(
        files(&sled),
        before,
        "a refused engine wrote in the data directory"
    );
    // And sled still serves it.
    let (bank, addr) = serving(try_start(&sled, &[]));
    assert_eq!(alice_balance(&addr, &sled).await, 200);
    stop(bank);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bank_is_created_only_where_nothing_is() {
    let dir = temp();
    let paths = Paths::new(dir.path());
    let (bank, addr) = serving(try_start(&paths, &[]));
    deposits(&addr, &paths, true, 3).await;
    stop(bank);

    // Without its auth and key files (the key belongs off the machine anyway), the bank
    // opens its store: nothing is created, nothing is lost.
    let auth = std::fs::read(&paths.auth).unwrap();
    std::fs::remove_file(&paths.auth).unwrap();
    std::fs::remove_file(&paths.key).unwrap();
    let started = try_start(&paths, &[]);
    assert!(
        !paths.auth.exists() && !paths.key.exists(),
        "nothing created"
    );
    let (bank, addr) = serving(started);
    std::fs::write(&paths.auth, &auth).unwrap();
    assert_eq!(alice_balance(&addr, &paths).await, 300);
    stop(bank);
    let stdout_lines = paths.command(&["terminal", "list"]);
    assert!(stdout_lines.status.success());

    // Without its checkpoint file, the store cannot be checked: refused.
    let checkpoint = paths.data.with_file_name("data.checkpoint");
    let saved = std::fs::read(&checkpoint).unwrap();
    std::fs::remove_file(&checkpoint).unwrap();
    let Start::Exited(code, _, stderr) = try_start(&paths, &[]) else {
        panic!("served without its checkpoint file");
    };
    assert_eq!(code, Some(1));
    assert!(stderr.contains("checkpoint file is missing"), "{stderr}");
    std::fs::write(&checkpoint, &saved).unwrap();

    // A directory that holds something else.
    let other = Paths::new(&dir.path().join("other"));
    std::fs::create_dir_all(&other.data).unwrap();
    std::fs::write(other.data.join("notes.txt"), "mine").unwrap();
    let Start::Exited(code, stdout, stderr) = try_start(&other, &[]) else {
        panic!("a bank was created over a foreign directory");
    };
    assert_eq!(code, Some(1));
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.contains(&other.data.display().to_string()) && stderr.contains("holds no bank"),
        "{stderr}"
    );
    assert!(!other.auth.exists() && !other.key.exists());
    assert_eq!(std::fs::read_dir(&other.data).unwrap().count(), 1);

    // An absent data directory next to another bank's auth file.
    let moved = Paths::new(&dir.path().join("moved"));
    std::fs::create_dir_all(dir.path().join("moved")).unwrap();
    std::fs::write(&moved.auth, &auth).unwrap();
    let Start::Exited(code, _, stderr) = try_start(&moved, &[]) else {
        panic!("a new bank next to another's auth file");
    };
    assert_eq!(code, Some(1));
    assert!(stderr.contains("already exists"), "{stderr}");
    assert!(!moved.data.exists() && !moved.key.exists());

    // A store from a newer version.
    let newer = Paths::new(&dir.path().join("newer"));
    {
        let ledger = bank_server::sled_ledger::SledLedger::open(&newer.data).unwrap();
        let identity = bank_server::ledger::BankIdentity {
            id: "0".repeat(32),
            created_ms: 1,
            format: bank_server::store::FORMAT + 1,
            bank_key: None,
            auditor_key: Some(
                bank_server::audit::AuditorSecret::random()
                    .public()
                    .to_hex(),
            ),
        };
        use bank_server::Ledger as _;
        assert!(ledger.create_bank(&identity).unwrap());
        ledger.sync().unwrap();
    }
    let Start::Exited(code, _, stderr) = try_start(&newer, &[]) else {
        panic!("served a store of a newer format");
    };
    assert_eq!(code, Some(1));
    assert!(stderr.contains("newer"), "{stderr}");
}

/// Rewrites the store's identity without its bank key, as a store from before protocol v2
/// holds it (a test of the upgrade path, so it edits the engine's record directly).
fn forget_bank_key_in_store(data: &Path) {
    let db = sled::open(data).unwrap();
    let meta = db.open_tree("meta").unwrap();
    let bytes = meta.get("identity").unwrap().unwrap();
    let mut identity: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert!(identity
        .as_object_mut()
        .unwrap()
        .remove("bank_key")
        .is_some());
    meta.insert("identity", serde_json::to_vec(&identity).unwrap())
        .unwrap();
    db.flush().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bank_key_file_is_required_and_must_be_this_banks() {
    let dir = temp();
    let paths = Paths::new(dir.path());
    let (bank, addr) = serving(try_start(&paths, &[]));
    deposits(&addr, &paths, true, 2).await;
    stop(bank);

    // Created beside (not in) the data directory, owner-only, and it is what the auth file pins.
    let key_file = paths.data.with_file_name("data.bank-key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // The data directory is owner-only, and a loosened one is tightened at the next start.
        let dir_mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(dir_mode(&paths.data), 0o700);
        std::fs::set_permissions(&paths.data, std::fs::Permissions::from_mode(0o755)).unwrap();
        let (bank, _) = serving(try_start(&paths, &[]));
        stop(bank);
        assert_eq!(dir_mode(&paths.data), 0o700);
    }
    let auth = load_auth_file(&paths.auth).unwrap();
    let key_text = std::fs::read_to_string(&key_file).unwrap();
    let key = protocol::BankKey::from_hex(auth.bank.bank_id.clone(), &key_text).unwrap();
    assert!(key.pin() == auth.bank);
    assert!(std::fs::read_dir(&paths.data)
        .unwrap()
        .all(
            |e| std::fs::read(e.unwrap().path()).map_or(true, |bytes| !bytes
                .windows(64)
                .any(|w| w == key_text.trim().as_bytes()))
        ));

    // No terminal key is in the data directory: they are sealed under keys derived from the
    // bank key file (which is outside it), from the first one on.
    let issued = paths.command(&["terminal", "add", "--name", "desk"]);
    assert!(issued.status.success(), "{issued:?}");
    let second = atm_client::AuthFile::parse(&String::from_utf8(issued.stdout).unwrap()).unwrap();
    for psk in [&auth.psk, &second.psk] {
        let (raw, hex) = (psk.expose().to_vec(), psk.to_hex().as_bytes().to_vec());
        for file in std::fs::read_dir(&paths.data).unwrap() {
            let bytes = std::fs::read(file.unwrap().path()).unwrap_or_default();
            assert!(
                !bytes.windows(32).any(|w| w == raw.as_slice())
                    && !bytes.windows(64).any(|w| w == hex.as_slice()),
                "a terminal key in the data directory"
            );
        }
    }

    // Missing: refused, named, and not made anew.
    let moved = dir.path().join("elsewhere.key");
    std::fs::rename(&key_file, &moved).unwrap();
    let Start::Exited(code, stdout, stderr) = try_start(&paths, &[]) else {
        panic!("served without its key");
    };
    assert_eq!(code, Some(1));
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.contains("key file is missing") && stderr.contains(&key_file.display().to_string()),
        "{stderr}"
    );
    assert!(!key_file.exists(), "a missing key is never made anew");

    // Another bank's key: refused.
    let other = Paths::new(&dir.path().join("other"));
    std::fs::create_dir_all(dir.path().join("other")).unwrap();
    let (other_bank, _) = serving(try_start(&other, &[]));
    stop(other_bank);
    std::fs::copy(other.data.with_file_name("data.bank-key"), &key_file).unwrap();
    let Start::Exited(code, _, stderr) = try_start(&paths, &[]) else {
        panic!("served with another bank's key");
    };
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("not the one this bank's terminals pinned"),
        "{stderr}"
    );
    std::fs::remove_file(&key_file).unwrap();

    // Its own key, wherever --bank-key-file says.
    let (bank, addr) = serving(try_start(
        &paths,
        &["--bank-key-file", moved.to_str().unwrap()],
    ));
    assert_eq!(alice_balance(&addr, &paths).await, 200);
    stop(bank);

    // A terminal key stored in plain (as stores kept them before keys were sealed) is sealed
    // at the next start, audited, and still works.
    {
        let db = sled::open(&paths.data).unwrap();
        let terminals = db.open_tree("terminals").unwrap();
        let bytes = terminals.get(auth.terminal_id.as_str()).unwrap().unwrap();
        let mut stored: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert!(stored["psk"].as_str().unwrap().starts_with("sealed1:"));
        stored["psk"] = auth.psk.to_hex().as_str().into();
        terminals
            .insert(
                auth.terminal_id.as_str(),
                serde_json::to_vec(&stored).unwrap(),
            )
            .unwrap();
        db.flush().unwrap();
    }
    let (bank, addr) = serving(try_start(
        &paths,
        &["--bank-key-file", moved.to_str().unwrap()],
    ));
    assert_eq!(alice_balance(&addr, &paths).await, 200);
    stop(bank);
    {
        let db = sled::open(&paths.data).unwrap();
        let bytes = db
            .open_tree("terminals")
            .unwrap()
            .get(auth.terminal_id.as_str())
            .unwrap()
            .unwrap();
        let stored: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert!(stored["psk"].as_str().unwrap().starts_with("sealed1:"));
    }
    let show = paths.command(&["audit", "show", "--bank-key-file", moved.to_str().unwrap()]);
    assert!(
        String::from_utf8_lossy(&show.stdout).contains("stored_keys_sealed"),
        "{show:?}"
    );

    // A store from before protocol v2: its first start makes a key, records it (audited)
    // and from then on needs it.
    forget_bank_key_in_store(&paths.data);
    let (bank, _) = serving(try_start(&paths, &[]));
    stop(bank);
    assert!(key_file.exists(), "the upgrade writes a key");
    let show = String::from_utf8(paths.command(&["audit", "show"]).stdout).unwrap();
    assert!(show.contains("bank_key_recorded"), "{show}");
    std::fs::remove_file(&key_file).unwrap();
    let Start::Exited(code, _, stderr) = try_start(&paths, &[]) else {
        panic!("served without the key it recorded");
    };
    assert_eq!(code, Some(1));
    assert!(stderr.contains("key file is missing"), "{stderr}");
}

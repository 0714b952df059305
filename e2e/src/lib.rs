//! The harness the end-to-end tests in `tests/` share: a real bank serving the release bundle,
//! chromedriver, headless Chromium, screenshots, and waiting for, typing into and clicking
//! the page's elements; a test certificate Chromium trusts by its key alone, for HTTPS; and
//! real bank and balancer processes ([`nodes`]).
#![forbid(unsafe_code)]

pub mod nodes;

use std::net::TcpListener as StdListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{elements::Element, Client, ClientBuilder, Locator};
use serde_json::json;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// What every test step returns.
pub type Res<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("e2e/ is in the repo")
        .to_owned()
}

/// The release web bundle: `ATM_E2E_DIST`, or `dist/` in the repo.
pub fn dist_dir() -> PathBuf {
    std::env::var_os("ATM_E2E_DIST").map_or_else(|| repo_root().join("dist"), PathBuf::from)
}

fn artifacts_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| repo_root().join("target"), |d| repo_root().join(d));
    target.join("e2e-artifacts")
}

/// A fresh bank (data directory under `tmp`) that serves the release bundle, and the listener
/// it will serve on (127.0.0.1, a free port); not serving yet, so a test can set it up first.
pub async fn open_bank(tmp: &Path) -> Res<(bank_server::Bank, tokio::net::TcpListener)> {
    open_bank_with(tmp, |_| {}).await
}

/// [`open_bank`] with `set` changing the bank's configuration first (TLS, say).
pub async fn open_bank_with(
    tmp: &Path,
    set: impl FnOnce(&mut bank_server::Config),
) -> Res<(bank_server::Bank, tokio::net::TcpListener)> {
    let dist = dist_dir();
    assert!(
        dist.join("index.html").is_file(),
        "no web bundle in {}: run `trunk build --release` (cargo xtask test does)",
        dist.display()
    );
    let mut config = bank_server::Config::new(
        tmp.join("data"),
        tmp.join("bank.auth"),
        tmp.join("audit.key"),
    );
    config.web_root = dist;
    config.output = bank_server::Output::Memory(std::sync::Arc::default());
    set(&mut config);
    let bank = tokio::task::spawn_blocking(move || bank_server::open(config)).await??;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    Ok((bank, listener))
}

/// A bank serving in a task until [`Serving::stop`].
pub struct Serving {
    stop: oneshot::Sender<()>,
    server: JoinHandle<std::io::Result<()>>,
}

/// Starts serving `bank` on `listener`.
pub fn serve(listener: tokio::net::TcpListener, bank: bank_server::Bank) -> Serving {
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(bank_server::serve(listener, bank, async move {
        let _ = stopped.await;
    }));
    Serving { stop, server }
}

/// Starts serving `bank`, the web ATM on `listener` and the bank console on `console`.
pub fn serve_with_console(
    listener: tokio::net::TcpListener,
    console: tokio::net::TcpListener,
    bank: bank_server::Bank,
) -> Serving {
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(bank_server::serve_with_console(
        listener,
        console,
        bank,
        async move {
            let _ = stopped.await;
        },
    ));
    Serving { stop, server }
}

/// A self-signed certificate for `127.0.0.1` and `localhost`, made for one test: the bank's
/// TLS settings (its PEM files written under `dir`) and the Chromium argument that trusts
/// this certificate's key, and no other (the SHA-256 of its SubjectPublicKeyInfo; Chromium
/// honours it with a profile of its own, which [`browser`] always gives).
pub fn test_certificate(dir: &Path) -> Res<(bank_server::Tls, String)> {
    use base64::Engine as _;
    use sha2::Digest as _;
    let names = vec!["127.0.0.1".to_owned(), "localhost".to_owned()];
    let rcgen::CertifiedKey { cert, key_pair } = rcgen::generate_simple_self_signed(names)?;
    let (cert_file, key_file) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_file, cert.pem())?;
    std::fs::write(&key_file, key_pair.serialize_pem())?;
    let tls = bank_server::Tls::from_pem_files(&cert_file, &key_file)?;
    let spki = sha2::Sha256::digest(key_pair.public_key_der());
    let pin = base64::engine::general_purpose::STANDARD.encode(spki);
    Ok((tls, format!("--ignore-certificate-errors-spki-list={pin}")))
}

impl Serving {
    /// Shuts the bank down and waits for it; its error, if it failed.
    pub async fn stop(self) -> Res {
        let _ = self.stop.send(());
        self.server.await??;
        Ok(())
    }
}

/// The chromedriver a test starts; killed (by its own handle) when dropped.
pub struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `/usr/bin/chromedriver` on a free port and waits until it listens.
pub async fn start_chromedriver() -> Res<Driver> {
    // Chromedriver cannot report a port it picked, so pick a free one for it.
    let port = StdListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let child = Command::new("/usr/bin/chromedriver")
        .arg(format!("--port={port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(driver);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err("chromedriver did not start".into())
}

/// A fresh headless Chromium (its own profile, so its own localStorage).
pub async fn browser(driver: &Driver, profile: &Path, width: u32, height: u32) -> Res<Client> {
    browser_with(driver, profile, width, height, &[]).await
}

/// [`browser`] with more Chromium arguments (like [`test_certificate`]'s).
pub async fn browser_with(
    driver: &Driver,
    profile: &Path,
    width: u32,
    height: u32,
    extra: &[String],
) -> Res<Client> {
    // A phone is emulated: Chromium will not open a window narrower than 500 pixels.
    let mobile = (width < 500).then(|| {
        json!({"deviceMetrics": {"width": width, "height": height, "pixelRatio": 1.0, "mobile": true, "touch": true}})
    });
    let mut caps = json!({
        "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-quic", "--no-first-run", "--hide-scrollbars",
                format!("--user-data-dir={}", profile.display()),
                format!("--window-size={width},{height}"),
            ]
        }
    });
    if let Some(args) = caps["goog:chromeOptions"]["args"].as_array_mut() {
        args.extend(extra.iter().map(|a| json!(a)));
    }
    if let Some(mobile) = mobile {
        caps["goog:chromeOptions"]["mobileEmulation"] = mobile;
    }
    let serde_json::Value::Object(caps) = caps else {
        unreachable!()
    };
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await?;
    Ok(client)
}

/// Saves a full-page screenshot as `target/e2e-artifacts/<name>.png` (under `CARGO_TARGET_DIR`
/// when set).
pub async fn shot(c: &Client, name: &str) -> Res {
    let dir = artifacts_dir();
    std::fs::create_dir_all(&dir)?;
    let png = c.screenshot().await?;
    std::fs::write(dir.join(format!("{name}.png")), png)?;
    Ok(())
}

/// Waits (up to 30 s) for an element matching `css`.
pub async fn wait_css(c: &Client, css: &str) -> Res<Element> {
    Ok(c.wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css(css))
        .await?)
}

/// Waits until the element's text equals `want`; returns the last text seen otherwise.
pub async fn wait_text(c: &Client, css: &str, want: &str) -> Res {
    let mut last = String::new();
    for _ in 0..300 {
        if let Ok(el) = c.find(Locator::Css(css)).await {
            if let Ok(text) = el.text().await {
                if text.trim() == want {
                    return Ok(());
                }
                last = text;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!("{css}: wanted {want:?}, last saw {last:?}").into())
}

/// Waits until the element's text contains `want`.
pub async fn wait_contains(c: &Client, css: &str, want: &str) -> Res<String> {
    let mut last = String::new();
    for _ in 0..300 {
        if let Ok(el) = c.find(Locator::Css(css)).await {
            if let Ok(text) = el.text().await {
                if text.contains(want) {
                    return Ok(text);
                }
                last = text;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!("{css}: wanted text containing {want:?}, last saw {last:?}").into())
}

/// Opens an enrollment link and waits for `link_up_css` (the handshake done); the key must
/// leave the address bar. Returns the page's path.
pub async fn enroll_by_link(c: &Client, link: &str, link_up_css: &str) -> Res<String> {
    c.goto(link).await?;
    wait_css(c, link_up_css).await?;
    let url = c.current_url().await?;
    assert_eq!(
        url.fragment(),
        None,
        "the key stays in the address bar: {url}"
    );
    assert!(!url.as_str().contains("key="), "{url}");
    Ok(url.path().to_owned())
}

/// Replaces the text of the input with this id.
pub async fn type_into(c: &Client, id: &str, text: &str) -> Res {
    let el = c.find(Locator::Id(id)).await?;
    el.clear().await?;
    el.send_keys(text).await?;
    Ok(())
}

/// Clicks the element with this id.
pub async fn click(c: &Client, id: &str) -> Res {
    c.find(Locator::Id(id)).await?.click().await?;
    Ok(())
}

/// Registers a customer in the enrolled web ATM's form and waits for the dashboard's greeting.
pub async fn register(c: &Client, username: &str, full_name: &str, password: &str) -> Res {
    type_into(c, "register-username", username).await?;
    type_into(c, "register-fullname", full_name).await?;
    type_into(c, "register-password", password).await?;
    type_into(c, "register-confirm", password).await?;
    click(c, "register-submit").await?;
    wait_text(c, "#greeting", &format!("Hello, {full_name}")).await?;
    Ok(())
}

/// Asserts the page does not scroll sideways and the element with this id lies inside the
/// viewport's width.
pub async fn fits(c: &Client, id: &str) -> Res {
    let fit = c
        .execute(
            "const el = document.getElementById(arguments[0]);\
             const r = el.getBoundingClientRect();\
             return [document.documentElement.scrollWidth <= window.innerWidth,\
                     r.left >= 0 && r.right <= window.innerWidth, window.innerWidth,\
                     document.documentElement.scrollWidth, r.left, r.right];",
            vec![id.into()],
        )
        .await?;
    if fit[0] != true {
        return Err(format!("the page scrolls sideways: {fit}").into());
    }
    if fit[1] != true {
        return Err(format!("#{id} does not fit: {fit}").into());
    }
    Ok(())
}

/// Starts counting the WebSocket frames the page sends from now on (see [`frames_sent`]), and
/// noting the sockets' URLs (see [`socket_urls`]).
pub async fn count_frames(c: &Client) -> Res {
    c.execute(
        "if (!window.__e2eSend) {\
           window.__e2eSend = WebSocket.prototype.send;\
           window.__e2eUrls = [];\
           WebSocket.prototype.send = function (data) {\
             window.__e2eFrames = (window.__e2eFrames || 0) + 1;\
             if (!window.__e2eUrls.includes(this.url)) { window.__e2eUrls.push(this.url); }\
             return window.__e2eSend.call(this, data);\
           };\
         }\
         window.__e2eFrames = 0;",
        vec![],
    )
    .await?;
    Ok(())
}

/// How many frames the page sent since [`count_frames`].
pub async fn frames_sent(c: &Client) -> Res<u64> {
    let n = c.execute("return window.__e2eFrames || 0;", vec![]).await?;
    n.as_u64().ok_or_else(|| format!("not a count: {n}").into())
}

/// What `localStorage` holds under `key` (`None` when nothing).
pub async fn stored(c: &Client, key: &str) -> Res<Option<String>> {
    let value = c
        .execute(
            "return localStorage.getItem(arguments[0]);",
            vec![key.into()],
        )
        .await?;
    Ok(value.as_str().map(str::to_owned))
}

/// What any script on the page finds in IndexedDB for `slot` (`null` when nothing): the stored
/// terminal id and bank pin, whether the `CryptoKey` is extractable, what `exportKey` does with
/// it (`"exported"` or the error's name), and the page's own HMAC of `message` with it.
pub async fn stored_key(c: &Client, slot: &str, message: &str) -> Res<serde_json::Value> {
    let found = c
        .execute_async(
            "const [slot, message, done] = arguments;\
             const open = indexedDB.open('secure-atm', 1);\
             open.onerror = () => done({error: 'open'});\
             open.onsuccess = () => {\
               const db = open.result;\
               let req;\
               try { req = db.transaction('terminals').objectStore('terminals').get(slot); }\
               catch (e) { db.close(); return done(null); }\
               req.onerror = () => { db.close(); done({error: 'get'}); };\
               req.onsuccess = async () => {\
                 db.close();\
                 const r = req.result;\
                 if (!r) return done(null);\
                 const out = {terminal: r.terminal, bank: r.bank,\
                   extractable: r.key.extractable, usages: r.key.usages,\
                   algorithm: r.key.algorithm.name + '/' + r.key.algorithm.hash.name};\
                 for (const format of ['raw', 'jwk']) {\
                   try { await crypto.subtle.exportKey(format, r.key); out[format] = 'exported'; }\
                   catch (e) { out[format] = e.name; }\
                 }\
                 const mac = new Uint8Array(await crypto.subtle.sign('HMAC', r.key,\
                   new TextEncoder().encode(message)));\
                 out.mac = Array.from(mac, b => b.toString(16).padStart(2, '0')).join('');\
                 done(out);\
               };\
             };",
            vec![slot.into(), message.into()],
        )
        .await?;
    Ok(found)
}

/// The URLs of the WebSockets the page sent frames on since [`count_frames`].
pub async fn socket_urls(c: &Client) -> Res<Vec<String>> {
    let urls = c.execute("return window.__e2eUrls || [];", vec![]).await?;
    Ok(serde_json::from_value(urls)?)
}

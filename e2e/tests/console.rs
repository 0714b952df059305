//! The bank console end to end: the release bundle's `/console` page in real headless Chromium
//! against a real bank started here on 127.0.0.1:0 with a fresh data directory, the console on
//! a listener (an origin) of its own, next to a native ATM session (atm-client) on the
//! customer's listener that makes the numbers the console shows.
//!
//! Needs `trunk build --release` first (the bundle in `dist/`, or `ATM_E2E_DIST`) and
//! `/usr/bin/chromedriver` + `/usr/bin/chromium`; `cargo xtask test` does both, so the test is
//! ignored in a plain `cargo test`. Screenshots go to `target/e2e-artifacts/console-*.png`.

use std::time::Duration;

use atm_client::{load_auth_file, AuthFile, Client as AtmClient};
use e2e::{
    browser, click, enroll_by_link, fits, open_bank, serve_with_console, shot, start_chromedriver,
    type_into, wait_contains, wait_css, wait_text, Res,
};
use fantoccini::{Client, Locator};
use protocol::{Cents, FullName, Password, Request, Response, TxId, Username};
use rand_core::OsRng;

const OPERATOR: &str = "ops";
const OPERATOR_PASSWORD: &str = "operator password 1";
const CAROL_PASSWORD: &str = "carol's good password";

/// Waits until some row matching `rows_css` has text containing every one of `wants`.
async fn wait_row(c: &Client, rows_css: &str, wants: &[&str]) -> Res<String> {
    let mut last = Vec::new();
    for _ in 0..300 {
        let mut seen = Vec::new();
        for row in c.find_all(Locator::Css(rows_css)).await.unwrap_or_default() {
            if let Ok(text) = row.text().await {
                if wants.iter().all(|w| text.contains(w)) {
                    return Ok(text);
                }
                seen.push(text);
            }
        }
        last = seen;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!("no {rows_css} row with {wants:?}; rows: {last:?}").into())
}

async fn text_of(c: &Client, css: &str) -> Res<String> {
    Ok(c.find(Locator::Css(css))
        .await?
        .text()
        .await?
        .trim()
        .to_owned())
}

/// Opens the console link and waits for the handshake; the key must leave the address bar.
async fn enroll_console(c: &Client, link: &str) -> Res {
    let path = enroll_by_link(c, link, "#console-link-state[data-state='Up']").await?;
    assert_eq!(path, "/console", "{link}");
    Ok(())
}

async fn operator_login(c: &Client, username: &str, password: &str) -> Res {
    wait_css(c, "#op-login-form").await?;
    type_into(c, "op-username", username).await?;
    type_into(c, "op-password", password).await?;
    click(c, "op-login-submit").await
}

/// Whether a native handshake with these credentials is accepted: the bank answers a sealed
/// request only on a session whose handshake it verified.
async fn native_handshake_accepted(addr: &str, auth: &AuthFile) -> bool {
    let Ok(mut client) = AtmClient::connect(addr, auth).await else {
        return false;
    };
    client.call(&Request::Balance {}).await.is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the release web bundle and chromedriver; run by `cargo xtask test`"]
async fn bank_console_end_to_end() -> Res {
    let tmp = tempfile::tempdir()?;
    let (bank, listener) = open_bank(tmp.path()).await?;
    let addr = listener.local_addr()?.to_string();
    let console_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", console_listener.local_addr()?);
    // The operator and their console terminal, and the console link the bank prints.
    let console = bank_server::admin::add_operator(
        bank.ledger(),
        &bank.config().argon2,
        OPERATOR,
        OPERATOR_PASSWORD,
    )?;
    let console_link =
        bank_server::terminals::console_link(&base, &console, &bank.pin()).to_string();
    let atm = load_auth_file(&bank.config().auth_file)?;
    let serving = serve_with_console(listener, console_listener, bank);

    let driver = start_chromedriver().await?;
    let wide = browser(&driver, &tmp.path().join("chrome-wide"), 1280, 900).await?;
    let phone = browser(&driver, &tmp.path().join("chrome-phone"), 390, 844).await?;
    let result = scenario(
        &wide,
        &phone,
        &base,
        &addr,
        &console_link,
        &atm,
        console.id.as_str(),
    )
    .await;
    if result.is_err() {
        let _ = shot(&wide, "console-failure-wide").await;
        let _ = shot(&phone, "console-failure-phone").await;
    }
    let _ = wide.close().await;
    let _ = phone.close().await;
    drop(driver);
    serving.stop().await?;
    result
}

async fn scenario(
    c: &Client,
    phone: &Client,
    base: &str,
    addr: &str,
    console_link: &str,
    atm: &AuthFile,
    console_id: &str,
) -> Res {
    // The console's origin leads to the console.
    c.goto(base).await?;
    assert_eq!(c.current_url().await?.path(), "/console");
    // Not enrolled: the console explains how to get a link; no handshake is attempted.
    c.goto(&format!("{base}/console")).await?;
    wait_text(c, "#console-enroll-title", "This console is not enrolled").await?;
    wait_contains(c, "main", "bank-server operator add NAME").await?;
    assert!(
        c.find(Locator::Id("console-link-state")).await.is_err(),
        "a handshake state shows before enrollment"
    );
    shot(c, "console-01-not-enrolled").await?;

    // b) A native ATM session: carol registers and deposits 123.45.
    let mut carol = AtmClient::connect(addr, atm).await?;
    let welcome = carol
        .call(&Request::Register {
            username: Username::new("carol").unwrap(),
            full_name: FullName::new("Carol Example").unwrap(),
            password: Password::new(CAROL_PASSWORD).unwrap(),
        })
        .await?;
    assert!(matches!(welcome, Response::Welcome { .. }), "{welcome:?}");
    let deposited = carol
        .call(&Request::Deposit {
            txid: TxId::random(&mut OsRng),
            amount_cents: Cents(12_345),
        })
        .await?;
    assert!(
        matches!(deposited, Response::Deposited { .. }),
        "{deposited:?}"
    );

    // The console link enrolls this browser (the key leaves the address bar).
    enroll_console(c, console_link).await?;
    wait_css(c, "#op-login-form").await?;
    wait_text(c, "#console-terminal", console_id).await?;
    shot(c, "console-02-login").await?;

    // c) A customer's credentials do not open the console.
    operator_login(c, "carol", CAROL_PASSWORD).await?;
    wait_contains(c, "#op-login-error", "username or password is not right").await?;
    assert!(
        c.find(Locator::Id("total-accounts")).await.is_err(),
        "a customer reached the dashboard"
    );
    shot(c, "console-03-customer-refused").await?;

    // d) The operator logs in and sees the bank.
    operator_login(c, OPERATOR, OPERATOR_PASSWORD).await?;
    wait_text(c, "#total-accounts", "1").await?;
    let deposits = wait_contains(c, "#total-deposits", "123.45").await?;
    assert_eq!(deposits.trim(), "$123.45");
    let today: u64 = text_of(c, "#total-today").await?.parse()?;
    assert!(today >= 1, "transactions today: {today}");
    let hour: u64 = text_of(c, "#tx-chart-total").await?.parse()?;
    assert!(hour >= 1, "chart total: {hour}");
    let bars = c
        .find_all(Locator::Css("#tx-chart rect[data-count]"))
        .await?;
    assert_eq!(bars.len(), protocol::console::CHART_MINUTES);
    let mut counted = 0u64;
    for bar in &bars {
        counted += bar
            .attr("data-count")
            .await?
            .unwrap_or_default()
            .parse::<u64>()?;
    }
    assert_eq!(counted, hour, "the bars add up to the hour's total");
    wait_row(c, "#audit tbody tr", &["deposit", "carol", "123.45"]).await?;
    wait_css(c, "#chain-status[data-state='linked']").await?;
    wait_contains(c, "#chain-status", "Chain intact").await?;
    wait_row(c, "#sessions tbody tr", &[console_id, OPERATOR]).await?;
    let sessions: u64 = text_of(c, "#sessions-total").await?.parse()?;
    assert!(sessions >= 1, "sessions: {sessions}");
    shot(c, "console-04-dashboard").await?;

    // The same dashboard at phone width (its own browser, enrolled by the same link).
    enroll_console(phone, console_link).await?;
    operator_login(phone, OPERATOR, OPERATOR_PASSWORD).await?;
    wait_text(phone, "#total-accounts", "1").await?;
    wait_row(phone, "#audit tbody tr", &["deposit", "carol"]).await?;
    shot(phone, "console-05-dashboard-phone").await?;
    phone
        .execute("document.getElementById('audit').scrollIntoView();", vec![])
        .await?;
    shot(phone, "console-05b-audit-phone").await?;
    // On a phone the tables stack: no sideways scrolling, in the page or in a table.
    for id in ["audit", "sessions", "terminals"] {
        fits(phone, id).await?;
        let table_fits = phone
            .execute(
                "const el = document.getElementById(arguments[0]);\
                 return el.scrollWidth <= el.parentElement.clientWidth;",
                vec![id.into()],
            )
            .await?;
        assert_eq!(table_fits, true, "#{id} scrolls sideways on a phone");
    }

    // e) Enroll a terminal named "lobby"; its key shows once.
    type_into(c, "enroll-name", "lobby").await?;
    click(c, "enroll-submit").await?;
    wait_css(c, "#new-terminal").await?;
    // Focus moves to the new terminal's panel, which offers to copy the link.
    let mut focused = serde_json::Value::Null;
    for _ in 0..50 {
        focused = c
            .execute(
                "return document.activeElement && document.activeElement.id;",
                vec![],
            )
            .await?;
        if focused == "new-terminal-title" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        focused, "new-terminal-title",
        "focus did not move to the new terminal"
    );
    click(c, "new-terminal-copy").await?;
    // The status says either way (headless Chromium may refuse the clipboard); wait for it.
    let mut copied = String::new();
    for _ in 0..50 {
        copied = text_of(c, "#new-terminal-copied").await.unwrap_or_default();
        if copied.contains("copied") || copied.contains("copy it by hand") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        copied.contains("copied") || copied.contains("copy it by hand"),
        "{copied:?}"
    );
    let lobby_id = text_of(c, "#new-terminal-id").await?;
    let auth_text = text_of(c, "#new-terminal-auth").await?;
    let lobby = AuthFile::parse(&auth_text)?;
    assert_eq!(lobby.terminal_id.as_str(), lobby_id);
    let link = text_of(c, "#new-terminal-link").await?;
    // The link opens the web ATM: the console, on an origin of its own, asked the bank where
    // the web ATM is (the customer's listener), not this page's origin.
    assert_eq!(
        link,
        format!(
            "http://{addr}/#terminal={lobby_id}&key={}&bank={}",
            lobby.psk.to_hex().as_str(),
            lobby.bank.to_text()
        )
    );
    assert!(!link.starts_with(base), "{link}");
    wait_row(c, "#terminals tbody tr", &[&lobby_id, "lobby", "Active"]).await?;
    shot(c, "console-06-new-terminal").await?;
    // The new key works for a native ATM.
    assert!(
        native_handshake_accepted(addr, &lobby).await,
        "the new terminal's handshake was refused"
    );
    click(c, "new-terminal-done").await?;
    for _ in 0..100 {
        if c.find(Locator::Id("new-terminal")).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        c.find(Locator::Id("new-terminal")).await.is_err(),
        "the key is still on the page"
    );
    let stored: serde_json::Value = c
        .execute(
            "return JSON.stringify(Object.assign({}, window.localStorage));",
            vec![],
        )
        .await?;
    let key_hex = lobby.psk.to_hex();
    assert!(
        !stored
            .as_str()
            .unwrap_or_default()
            .contains(key_hex.as_str()),
        "the new terminal's key is in localStorage"
    );

    // On a phone, the terminal ids do not wrap a few characters per line and the inline
    // Confirm and Cancel buttons are whole on screen.
    // (the phone's dashboard refreshes by itself)
    wait_row(phone, "#terminals tbody tr", &[&lobby_id, "lobby"]).await?;
    click(phone, &format!("revoke-{lobby_id}")).await?;
    wait_css(phone, &format!("#confirm-revoke-{lobby_id}")).await?;
    fits(phone, &format!("confirm-revoke-{lobby_id}")).await?;
    fits(phone, &format!("cancel-revoke-{lobby_id}")).await?;
    let id_lines = phone
        .execute(
            "const code = document.querySelector(\
               `#terminals tr[data-terminal='${arguments[0]}'] td code`);\
             const lh = parseFloat(getComputedStyle(code).lineHeight) || 20;\
             return Math.round(code.getBoundingClientRect().height / lh);",
            vec![lobby_id.clone().into()],
        )
        .await?;
    assert!(
        id_lines.as_u64().is_some_and(|n| n <= 2),
        "a terminal id wraps over {id_lines} lines on a phone"
    );
    phone
        .execute(
            "document.getElementById(arguments[0]).scrollIntoView({block: 'center'});",
            vec![format!("confirm-revoke-{lobby_id}").into()],
        )
        .await?;
    shot(phone, "console-06b-confirm-revoke-phone").await?;
    click(phone, &format!("cancel-revoke-{lobby_id}")).await?;
    wait_css(phone, &format!("#revoke-{lobby_id}")).await?;

    // Revoke it, confirmed inline.
    click(c, &format!("revoke-{lobby_id}")).await?;
    wait_css(c, &format!("#confirm-revoke-{lobby_id}")).await?;
    shot(c, "console-07-confirm-revoke").await?;
    click(c, &format!("confirm-revoke-{lobby_id}")).await?;
    wait_text(
        c,
        &format!("#terminals tbody tr[data-terminal='{lobby_id}'] td.state"),
        "Revoked",
    )
    .await?;
    assert!(
        c.find(Locator::Id(&format!("revoke-{lobby_id}")))
            .await
            .is_err(),
        "a revoked terminal still has a revoke button"
    );
    shot(c, "console-08-revoked").await?;
    assert!(
        !native_handshake_accepted(addr, &lobby).await,
        "a revoked terminal's handshake was accepted"
    );
    // The ATM that was not revoked still works.
    assert!(native_handshake_accepted(addr, atm).await);

    // g) Logout: back to the login, with a notice.
    click(c, "op-logout").await?;
    wait_css(c, "#op-login-form").await?;
    wait_contains(c, "#console-notice", "logged out").await?;
    assert!(c.find(Locator::Id("total-accounts")).await.is_err());
    shot(c, "console-09-logged-out").await?;
    click(phone, "op-logout").await?;
    wait_css(phone, "#op-login-form").await?;
    shot(phone, "console-10-logged-out-phone").await?;
    let _ = carol.close().await;
    Ok(())
}

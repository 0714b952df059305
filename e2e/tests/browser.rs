//! The web ATM end to end: the release bundle in real headless Chromium (two browsers at once)
//! against a real bank started here on 127.0.0.1:0 with a fresh data directory, and once over
//! HTTPS with a certificate made by the test.
//!
//! Needs `trunk build --release` first (the bundle in `dist/`, or `ATM_E2E_DIST`) and
//! `/usr/bin/chromedriver` + `/usr/bin/chromium`; `cargo xtask test` does both, so the test is
//! ignored in a plain `cargo test`. Screenshots of each screen go to `target/e2e-artifacts/`.

use std::time::Duration;

use e2e::{
    browser, browser_with, click, count_frames, enroll_by_link, fits, frames_sent, open_bank,
    open_bank_with, register, serve, shot, socket_urls, start_chromedriver, stored, stored_key,
    test_certificate, type_into, wait_contains, wait_css, wait_text, Res,
};
use fantoccini::{Client, Locator};

/// The statement's rows as text, newest first.
async fn statement_rows(c: &Client) -> Res<Vec<String>> {
    let mut rows = Vec::new();
    for row in c.find_all(Locator::Css("#statement tbody tr")).await? {
        rows.push(row.text().await?);
    }
    Ok(rows)
}

async fn wait_rows(c: &Client, n: usize) -> Res<Vec<String>> {
    for _ in 0..300 {
        let rows = statement_rows(c).await.unwrap_or_default();
        if rows.len() == n {
            return Ok(rows);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!(
        "statement never had {n} rows: {:?}",
        statement_rows(c).await?
    )
    .into())
}

/// Waits (up to 10 s) until no element has this id.
async fn gone(c: &Client, id: &str) -> Res {
    for _ in 0..100 {
        if c.find(Locator::Id(id)).await.is_err() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!("#{id} is still there").into())
}

async fn enroll_and_wait(c: &Client, link: &str) -> Res {
    enroll_by_link(c, link, "#link-state[data-state='Up']").await?;
    Ok(())
}

async fn login(c: &Client, username: &str, password: &str) -> Res {
    type_into(c, "login-username", username).await?;
    type_into(c, "login-password", password).await?;
    click(c, "login-submit").await
}

async fn money(c: &Client, which: &str, amount: &str) -> Res {
    type_into(c, &format!("{which}-amount"), amount).await?;
    click(c, &format!("{which}-submit")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the release web bundle and chromedriver; run by `cargo xtask test`"]
async fn web_atm_end_to_end() -> Res {
    let tmp = tempfile::tempdir()?;
    let (bank, listener) = open_bank(tmp.path()).await?;
    let base = format!("http://{}", listener.local_addr()?);
    // Two browser terminals, each enrolled by the link the bank prints for `terminal add --web`.
    let first = bank_server::admin::add_terminal(bank.ledger(), "e2e browser one")?;
    let second = bank_server::admin::add_terminal(bank.ledger(), "e2e browser two")?;
    let link_one = bank_server::terminals::enrollment_link(&base, &first, &bank.pin()).to_string();
    let link_two = bank_server::terminals::enrollment_link(&base, &second, &bank.pin()).to_string();
    let serving = serve(listener, bank);

    let driver = start_chromedriver().await?;
    let a = browser(&driver, &tmp.path().join("chrome-a"), 1280, 900).await?;
    let b = browser(&driver, &tmp.path().join("chrome-b"), 390, 844).await?;
    let result = scenario(&a, &b, &base, &link_one, &link_two).await;
    if result.is_err() {
        let _ = shot(&a, "failure-a").await;
        let _ = shot(&b, "failure-b").await;
    }
    let _ = a.close().await;
    let _ = b.close().await;
    drop(driver);
    serving.stop().await?;
    result
}

async fn scenario(a: &Client, b: &Client, base: &str, link_one: &str, link_two: &str) -> Res {
    // B first opens the ATM without enrolling: no handshake, an explanation and a form.
    b.goto(base).await?;
    wait_text(b, "#enroll-title", "This ATM is not enrolled").await?;
    assert!(
        b.find(Locator::Id("link-state")).await.is_err(),
        "a handshake state shows before enrollment"
    );
    shot(b, "01-not-enrolled-phone").await?;

    // A enrolls by the link, registers, deposits 100.00, withdraws 30.50.
    enroll_and_wait(a, link_one).await?;
    wait_css(a, "#login-form").await?;
    shot(a, "02-login-register").await?;
    register(a, "alice", "Alice Example", "correct horse battery").await?;
    wait_text(a, "#account-username", "alice").await?;
    let account_a = a.find(Locator::Id("account-number")).await?.text().await?;
    assert!(!account_a.trim().is_empty());
    wait_text(a, "#balance", "$0.00").await?;
    // Each transaction is one round trip (its answer carries the new balance and becomes the
    // statement's row), and its confirmation shows, in the polite live region.
    tokio::time::sleep(Duration::from_millis(500)).await;
    count_frames(a).await?;
    money(a, "deposit", "100.00").await?;
    wait_text(a, "#balance", "$100.00").await?;
    wait_text(
        a,
        "#notice p",
        "Deposited 100.00. Your balance is now 100.00.",
    )
    .await?;
    wait_css(a, ".notices[aria-live='polite'] #notice").await?;
    shot(a, "03a-deposit-confirmed").await?;
    money(a, "withdraw", "30.50").await?;
    wait_text(a, "#balance", "$69.50").await?;
    wait_text(a, "#notice p", "Withdrew 30.50. Your balance is now 69.50.").await?;
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert_eq!(
        frames_sent(a).await?,
        2,
        "a deposit and a withdrawal sent more than one frame each (a history request followed?)"
    );
    wait_contains(a, "#notice", "Withdrew 30.50").await?;
    let rows = wait_rows(a, 2).await?;
    assert!(
        rows[0].contains("Withdrawal") && rows[0].contains("30.50") && rows[0].contains("69.50"),
        "{rows:?}"
    );
    assert!(
        rows[1].contains("Deposit") && rows[1].contains("100.00"),
        "{rows:?}"
    );
    shot(a, "03-dashboard").await?;

    // Bad input is refused in the page, next to the field, and changes nothing.
    money(a, "deposit", "12.345").await?;
    wait_contains(a, "#deposit-amount-error", "at most two digits").await?;
    money(a, "withdraw", "1000").await?;
    wait_contains(a, "#withdraw-amount-error", "not enough money").await?;
    wait_text(a, "#balance", "$69.50").await?;
    assert_eq!(wait_rows(a, 2).await?.len(), 2);
    shot(a, "04-dashboard-errors").await?;

    // B enrolls (phone width) and uses another account at the same time.
    enroll_and_wait(b, link_two).await?;
    wait_css(b, "#register-form").await?;
    shot(b, "05-login-register-phone").await?;
    // Tap targets of at least 44 px, and input borders at 3:1 or more against white.
    let small = b
        .execute(
            "return [...document.querySelectorAll('button, input')]\
               .filter(el => el.offsetParent !== null)\
               .map(el => [el.id || el.textContent.trim(), el.getBoundingClientRect().height])\
               .filter(([, h]) => h < 44);",
            vec![],
        )
        .await?;
    assert_eq!(small, serde_json::json!([]), "tap targets under 44 px");
    let contrast = b
        .execute(
            "const lum = c => { const v = c.match(/\\d+(\\.\\d+)?/g).slice(0, 3).map(x => {\
               const s = x / 255; return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4; });\
               return 0.2126 * v[0] + 0.7152 * v[1] + 0.0722 * v[2]; };\
             const border = getComputedStyle(document.getElementById('login-username')).borderTopColor;\
             return 1.05 / (lum(border) + 0.05);",
            vec![],
        )
        .await?;
    assert!(
        contrast.as_f64().is_some_and(|c| c >= 3.0),
        "input border contrast {contrast} < 3:1"
    );
    register(b, "bob", "Bob Example", "another good password").await?;
    money(b, "deposit", "5").await?;
    wait_text(b, "#balance", "$5.00").await?;
    let rows_b = wait_rows(b, 1).await?;
    assert!(
        rows_b[0].contains("5.00") && !rows_b[0].contains("69.50"),
        "{rows_b:?}"
    );
    let account_b = b.find(Locator::Id("account-number")).await?.text().await?;
    assert_ne!(account_a, account_b);
    shot(b, "06-dashboard-phone").await?;
    b.execute(
        "document.getElementById('statement').scrollIntoView();",
        vec![],
    )
    .await?;
    shot(b, "06b-statement-phone").await?;

    // A double click sends one deposit (the button is disabled and the driver refuses twins).
    a.execute(
        "document.getElementById('deposit-amount').value = '1.00';\
         const b = document.getElementById('deposit-submit'); b.click(); b.click();",
        vec![],
    )
    .await?;
    wait_text(a, "#balance", "$70.50").await?;
    let rows = wait_rows(a, 3).await?;
    assert!(rows[0].contains("1.00"), "{rows:?}");
    // Each sees only its own account.
    wait_text(b, "#balance", "$5.00").await?;
    assert_eq!(wait_rows(b, 1).await?.len(), 1);

    // A logs out, fails with a wrong password, then logs in and finds its money.
    click(a, "logout").await?;
    wait_css(a, "#login-form").await?;
    wait_contains(a, "#notice", "logged out").await?;
    // A missing username is said under the username field, and goes once it is typed.
    login(a, "", "something").await?;
    wait_contains(a, "#login-username-error", "Please enter your username").await?;
    assert!(
        a.find(Locator::Id("login-password-error")).await.is_err(),
        "the username's error shows under the password"
    );
    shot(a, "07a-login-username-missing").await?;
    type_into(a, "login-username", "a").await?;
    gone(a, "login-username-error").await?;
    login(a, "alice", "wrong password here").await?;
    wait_contains(
        a,
        "#login-password-error",
        "username or password is not right",
    )
    .await?;
    shot(a, "07-wrong-password").await?;
    login(a, "alice", "correct horse battery").await?;
    wait_text(a, "#balance", "$70.50").await?;
    assert_eq!(wait_rows(a, 3).await?.len(), 3);

    // Registration errors show next to their field.
    click(b, "logout").await?;
    wait_css(b, "#register-form").await?;
    type_into(b, "register-username", "Bad Name").await?;
    type_into(b, "register-fullname", "Someone").await?;
    type_into(b, "register-password", "short").await?;
    click(b, "register-submit").await?;
    wait_contains(b, "#register-username-error", "lowercase letters").await?;
    wait_contains(b, "#register-password-error", "at least 8 characters").await?;
    shot(b, "08-register-errors-phone").await?;
    // Changing a field clears its own error only.
    type_into(b, "register-username", "good.name").await?;
    gone(b, "register-username-error").await?;
    wait_css(b, "#register-password-error").await?;

    // The enrollment stays in the browser across a reload; no fragment is needed again.
    a.goto(base).await?;
    wait_css(a, "#link-state[data-state='Up']").await?;
    wait_css(a, "#login-form").await?;
    Ok(())
}

/// An impostor on the bank's address that holds the browser terminal's key (copied from the
/// bank's data, say) but not the bank's static key: it cannot even read which terminal is
/// calling (the id is sealed for the pinned key), the web ATM never comes up with it and sends
/// it nothing but hellos, and comes back to the real bank by itself once it is there again. A
/// terminal the real bank then revokes is refused, and the page offers only what works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the release web bundle and chromedriver; run by `cargo xtask test`"]
async fn web_atm_refuses_a_bank_without_the_pinned_key() -> Res {
    let tmp = tempfile::tempdir()?;
    let (bank, listener) = open_bank(&tmp.path().join("real")).await?;
    let addr = listener.local_addr()?;
    let base = format!("http://{addr}");
    let terminal = bank_server::admin::add_terminal(bank.ledger(), "e2e pinned")?;
    let link = bank_server::terminals::enrollment_link(&base, &terminal, &bank.pin()).to_string();
    let serving = serve(listener, bank);

    let driver = start_chromedriver().await?;
    let c = browser(&driver, &tmp.path().join("chrome"), 390, 844).await?;
    let result = async {
        enroll_and_wait(&c, &link).await?;
        serving.stop().await?;

        // The impostor: another bank, same address, the stolen terminal id and key.
        let (fake, fake_listener) = open_bank(&tmp.path().join("fake")).await?;
        drop(fake_listener);
        let mut event = bank_server::audit::AuditEvent::new("terminal_added", 0);
        event.terminal = Some(terminal.id.to_string());
        fake.ledger().add_terminal(&terminal, &event)?;
        let before = fake.ledger().recent_audit(100)?.total;
        let bank_server::Output::Memory(fake_output) = fake.config().output.clone() else {
            unreachable!("open_bank keeps the output in memory");
        };
        let fake_serving = serve(tokio::net::TcpListener::bind(addr).await?, fake.clone());
        // The impostor cannot open the sealed terminal id: it closes at the first flight, so
        // the page keeps trying (the link down), and never comes up.
        for _ in 0..100 {
            if fake_output
                .lock()
                .map_err(|_| "poisoned")?
                .iter()
                .any(|l| l == "protocol_error")
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        wait_css(&c, "#link-state[data-state^='Down']").await?;
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert!(
            c.find(Locator::Css("#link-state[data-state='Up']"))
                .await
                .is_err(),
            "the web ATM came up with a bank that does not hold the pinned key"
        );
        shot(&c, "pinned-01-impostor-down").await?;
        let lines = fake_output.lock().map_err(|_| "poisoned")?.clone();
        assert!(
            lines.iter().any(|l| l == "protocol_error"),
            "the impostor saw no hello: {lines:?}"
        );
        assert!(
            lines
                .iter()
                .all(|l| l == "created" || l == "protocol_error"),
            "the impostor served requests: {lines:?}"
        );
        let audit = fake.ledger().recent_audit(100)?;
        let requests: Vec<&str> = audit
            .entries
            .iter()
            .filter(|(seq, _)| *seq >= before)
            .map(|(_, e)| e.action.as_str())
            .filter(|a| *a != "protocol_error")
            .collect();
        assert!(
            requests.is_empty(),
            "the impostor served requests: {requests:?}"
        );
        fake_serving.stop().await?;

        // The real bank again, on the same address: the same browser comes up by itself.
        let (real, real_listener) = reopen(&tmp.path().join("real"), addr).await?;
        let real_serving = serve(real_listener, real.clone());
        wait_css(&c, "#link-state[data-state='Up']").await?;
        wait_css(&c, "#login-form").await?;
        real_serving.stop().await?;

        // Revoked by the real bank: refused, and only what works is offered (forgetting the
        // terminal to enroll again), no forms.
        bank_server::admin::revoke_terminal(real.ledger(), &terminal.id)?;
        drop(real);
        let (real, real_listener) = reopen(&tmp.path().join("real"), addr).await?;
        let real_serving = serve(real_listener, real);
        wait_css(&c, "#link-state[data-state='Refused']").await?;
        wait_css(&c, "#refused-panel #refused-forget").await?;
        for form in ["login-form", "register-form", "enroll-form"] {
            assert!(
                c.find(Locator::Id(form)).await.is_err(),
                "#{form} shows on the refused screen"
            );
        }
        fits(&c, "refused-forget").await?;
        shot(&c, "pinned-02-revoked-refused").await?;
        real_serving.stop().await
    }
    .await;
    if result.is_err() {
        let _ = shot(&c, "failure-pinned").await;
    }
    let _ = c.close().await;
    drop(driver);
    result
}

/// Opens the bank in `dir` again, to serve on `addr`.
async fn reopen(
    dir: &std::path::Path,
    addr: std::net::SocketAddr,
) -> Res<(bank_server::Bank, tokio::net::TcpListener)> {
    let (bank, listener) = open_bank(dir).await?;
    drop(listener);
    Ok((bank, tokio::net::TcpListener::bind(addr).await?))
}

/// Records everything the page writes to the console from now on (into `window.__logged`).
async fn record_console(c: &Client) -> Res {
    c.execute(
        "window.__logged = [];\
         for (const level of ['log', 'info', 'warn', 'error', 'debug']) {\
           const real = console[level].bind(console);\
           console[level] = (...args) => { window.__logged.push(args.map(String).join(' ')); real(...args); };\
         }",
        vec![],
    )
    .await?;
    Ok(())
}

/// What the page wrote to the console since [`record_console`].
async fn console_text(c: &Client) -> Res<String> {
    let logged = c
        .execute("return (window.__logged || []).join('\\n');", vec![])
        .await?;
    Ok(logged.as_str().unwrap_or_default().to_owned())
}

/// Types a code and submits it.
async fn enter_code(c: &Client, code: &str) -> Res {
    type_into(c, "enroll-code", code).await?;
    click(c, "enroll-code-submit").await
}

/// Enrollment by a one-time code the bank issued: typed in a phone's browser, the exchange
/// runs in the page and the ATM comes up with a key both ends derived (never sent); the same
/// code typed in a second browser is not accepted and enrolls nothing. Neither browser puts
/// the code in its address bar or its console.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the release web bundle and chromedriver; run by `cargo xtask test`"]
async fn web_atm_enrolls_with_a_one_time_code() -> Res {
    let tmp = tempfile::tempdir()?;
    let (bank, listener) = open_bank(tmp.path()).await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (code, _expires) = bank_server::admin::issue_enrollment_code(
        bank.ledger(),
        "e2e code",
        protocol::TerminalRole::Atm,
        bank_server::ledger::DepositCeilings::DEFAULT,
    )?;
    let code = code.to_text();
    let checks = bank.clone();
    let serving = serve(listener, bank);

    let driver = start_chromedriver().await?;
    let a = browser(&driver, &tmp.path().join("chrome-a"), 390, 844).await?;
    let b = browser(&driver, &tmp.path().join("chrome-b"), 1280, 900).await?;
    let result = code_scenario(&a, &b, &base, &code, &checks).await;
    if result.is_err() {
        let _ = shot(&a, "failure-code-a").await;
        let _ = shot(&b, "failure-code-b").await;
    }
    let _ = a.close().await;
    let _ = b.close().await;
    drop(driver);
    serving.stop().await?;
    result
}

async fn code_scenario(
    a: &Client,
    b: &Client,
    base: &str,
    code: &str,
    bank: &bank_server::Bank,
) -> Res {
    let secret = &code[code.len() - 32..];

    // A phone opens the ATM: the code comes first.
    a.goto(base).await?;
    wait_contains(a, "#enroll-code-title", "Enroll with a one-time code").await?;
    let code_first = a
        .execute(
            "return !!(document.getElementById('enroll-code').compareDocumentPosition(\
             document.getElementById('enroll-terminal')) & Node.DOCUMENT_POSITION_FOLLOWING);",
            vec![],
        )
        .await?;
    assert_eq!(code_first, true, "the code is not the first way offered");
    record_console(a).await?;
    fits(a, "enroll-code").await?;
    shot(a, "code-01-enroll-phone").await?;

    // A malformed code is refused in the page, before any connection.
    enter_code(a, "e-12345").await?;
    wait_contains(a, "#enroll-code-error", "not an enrollment code").await?;
    fits(a, "enroll-code-error").await?;
    shot(a, "code-02-malformed-phone").await?;
    // A well-formed code the bank never issued: not accepted, the field emptied.
    enter_code(a, "e-00000000ff-00000000000000000000000000000000").await?;
    wait_contains(a, "#enroll-code-error", "That code was not accepted").await?;
    fits(a, "enroll-code-error").await?;
    let left = a
        .find(Locator::Id("enroll-code"))
        .await?
        .prop("value")
        .await?;
    assert_eq!(left.as_deref(), Some(""), "the code stays in the field");
    shot(a, "code-03-not-accepted-phone").await?;
    assert_eq!(stored(a, "atm.terminal_id").await?, None);

    // The real code: the ATM comes up, enrolled as the terminal the bank created for it.
    type_into(a, "enroll-code", code).await?;
    fits(a, "enroll-code").await?;
    shot(a, "code-04-typed-phone").await?;
    click(a, "enroll-code-submit").await?;
    wait_css(a, "#link-state[data-state='Up']").await?;
    wait_css(a, "#register-form").await?;
    let url = a.current_url().await?;
    assert!(
        !url.as_str().contains(secret) && url.query().is_none() && url.fragment().is_none(),
        "the code went into the address bar: {url}"
    );
    let terminals = bank.ledger().terminals()?;
    let enrolled = terminals
        .iter()
        .find(|t| t.name == "e2e code")
        .ok_or("the bank created no terminal for the code")?;
    // The key is a non-extractable WebCrypto key in IndexedDB: a script on the page can use it
    // (its HMAC is the one the bank's copy of the key makes) but cannot read it out; nothing
    // of the enrollment is left in localStorage.
    let message = "any script on the page";
    let found = stored_key(a, "atm", message).await?;
    assert_eq!(found["terminal"], enrolled.id.as_str(), "{found}");
    assert_eq!(found["bank"], bank.pin().to_text(), "{found}");
    assert_eq!(found["extractable"], false, "{found}");
    assert_eq!(found["usages"], serde_json::json!(["sign"]), "{found}");
    assert_eq!(found["algorithm"], "HMAC/SHA-256", "{found}");
    assert_eq!(
        found["raw"], "InvalidAccessError",
        "the key was exported: {found}"
    );
    assert_eq!(
        found["jwk"], "InvalidAccessError",
        "the key was exported: {found}"
    );
    let expected = protocol::primitives::hmac_sha256(enrolled.psk.expose(), &[message.as_bytes()]);
    assert_eq!(
        found["mac"],
        hex::encode(expected),
        "the two ends derived other keys"
    );
    for key in ["atm.terminal_id", "atm.terminal_key", "atm.bank"] {
        assert_eq!(stored(a, key).await?, None, "{key} is in localStorage");
    }
    let page_text = a
        .execute(
            "return JSON.stringify(Object.assign({}, localStorage)) + \
             JSON.stringify(Object.assign({}, sessionStorage)) + document.documentElement.outerHTML;",
            vec![],
        )
        .await?;
    assert!(
        !page_text
            .as_str()
            .unwrap_or_default()
            .contains(enrolled.psk.to_hex().as_str()),
        "the key is readable in the page's storage or markup"
    );
    let logged = console_text(a).await?;
    assert!(
        !logged.contains(secret) && !logged.contains(enrolled.psk.to_hex().as_str()),
        "a secret went to the console: {logged}"
    );
    shot(a, "code-05-enrolled-phone").await?;
    register(a, "carol", "Carol Example", "a good long password").await?;
    money(a, "deposit", "12.34").await?;
    wait_text(a, "#balance", "$12.34").await?;
    let rows = wait_rows(a, 1).await?;
    assert!(rows[0].contains("12.34"), "{rows:?}");

    // A second browser (desktop width), the same code: used up, not accepted, nothing stored.
    b.goto(base).await?;
    wait_css(b, "#enroll-code").await?;
    fits(b, "enroll-code").await?;
    shot(b, "code-06-enroll-desktop").await?;
    enter_code(b, code).await?;
    wait_contains(
        b,
        "#enroll-code-error",
        "That code was not accepted. A code works once and for 10 minutes; ask the bank for a \
         new one.",
    )
    .await?;
    fits(b, "enroll-code-error").await?;
    shot(b, "code-07-not-accepted-desktop").await?;
    let left = b
        .find(Locator::Id("enroll-code"))
        .await?
        .prop("value")
        .await?;
    assert_eq!(left.as_deref(), Some(""), "the code stays in the field");
    for key in ["atm.terminal_id", "atm.terminal_key", "atm.bank"] {
        assert_eq!(stored(b, key).await?, None, "{key} stored after a failure");
    }
    assert_eq!(
        stored_key(b, "atm", "x").await?,
        serde_json::Value::Null,
        "a key stored after a failure"
    );
    assert!(
        b.find(Locator::Id("link-state")).await.is_err(),
        "a terminal state shows after a failed enrollment"
    );
    wait_text(b, "#enroll-title", "This ATM is not enrolled").await?;
    assert_eq!(
        bank.ledger()
            .terminals()?
            .iter()
            .filter(|t| t.name == "e2e code")
            .count(),
        1,
        "the code enrolled twice"
    );
    // The first ATM is unaffected.
    wait_css(a, "#link-state[data-state='Up']").await?;
    Ok(())
}

/// A name at the allowed maximum (a 250-character username, a 100-character full name) on a
/// 390 x 844 phone: nothing scrolls sideways and every button stays on screen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the release web bundle and chromedriver; run by `cargo xtask test`"]
async fn web_atm_fits_a_phone_at_maximum_lengths() -> Res {
    let tmp = tempfile::tempdir()?;
    let (bank, listener) = open_bank(tmp.path()).await?;
    let base = format!("http://{}", listener.local_addr()?);
    let terminal = bank_server::admin::add_terminal(bank.ledger(), "e2e long names")?;
    let link = bank_server::terminals::enrollment_link(&base, &terminal, &bank.pin()).to_string();
    let serving = serve(listener, bank);

    let driver = start_chromedriver().await?;
    let c = browser(&driver, &tmp.path().join("chrome"), 390, 844).await?;
    let result = async {
        enroll_and_wait(&c, &link).await?;
        wait_css(&c, "#register-form").await?;
        let username = "u".repeat(240) + "_long.name";
        assert_eq!(username.len(), 250);
        let full_name = "Maximiliana".repeat(9) + "X";
        assert_eq!(full_name.chars().count(), 100);
        register(&c, &username, &full_name, "a long enough password").await?;
        wait_text(&c, "#account-username", &username).await?;
        for id in [
            "greeting",
            "account-username",
            "logout",
            "deposit-submit",
            "withdraw-submit",
        ] {
            fits(&c, id).await?;
        }
        shot(&c, "phone-01-long-names").await?;
        money(&c, "deposit", "1999.99").await?;
        wait_contains(&c, "#notice", "Deposited 1999.99").await?;
        for id in ["notice", "balance", "statement", "deposit-submit"] {
            fits(&c, id).await?;
        }
        shot(&c, "phone-02-long-names-deposit").await?;
        click(&c, "logout").await?;
        wait_css(&c, "#login-form").await?;
        fits(&c, "login-submit").await?;
        Ok(())
    }
    .await;
    if result.is_err() {
        let _ = shot(&c, "failure-long-names").await;
    }
    let _ = c.close().await;
    drop(driver);
    serving.stop().await?;
    result
}

/// The web ATM over HTTPS (`--tls-cert`): a certificate made here for 127.0.0.1, which this
/// Chromium trusts by its key alone (never every certificate). The browser enrolls with a
/// one-time code, logs in, deposits and sees the confirmation; its socket is `wss:` and the
/// page carries HSTS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the release web bundle and chromedriver; run by `cargo xtask test`"]
async fn web_atm_over_https() -> Res {
    let tmp = tempfile::tempdir()?;
    let (tls, trust) = test_certificate(tmp.path())?;
    let (bank, listener) = open_bank_with(tmp.path(), move |c| c.tls = Some(tls)).await?;
    let host = listener.local_addr()?.to_string();
    let (code, _expires) = bank_server::admin::issue_enrollment_code(
        bank.ledger(),
        "e2e https",
        protocol::TerminalRole::Atm,
        bank_server::ledger::DepositCeilings::DEFAULT,
    )?;
    let code = code.to_text();
    let serving = serve(listener, bank);

    let driver = start_chromedriver().await?;
    let c = browser_with(
        &driver,
        &tmp.path().join("chrome-https"),
        1280,
        900,
        &[trust],
    )
    .await?;
    let result = https_scenario(&c, &host, &code).await;
    if result.is_err() {
        let _ = shot(&c, "failure-https").await;
    }
    let _ = c.close().await;
    // Certificate checks stay on: a browser without the key's pin does not get the page.
    let plain = browser(&driver, &tmp.path().join("chrome-untrusting"), 1280, 900).await?;
    // (Chromium shows its interstitial, titled "Privacy error", in place of the page.)
    let untrusted = match plain.goto(&format!("https://{host}/")).await {
        Err(_) => true,
        Ok(()) => plain.title().await? == "Privacy error",
    };
    let _ = plain.close().await;
    drop(driver);
    serving.stop().await?;
    result?;
    assert!(untrusted, "a browser without the pin loaded the page");
    Ok(())
}

async fn https_scenario(c: &Client, host: &str, code: &str) -> Res {
    c.goto(&format!("https://{host}/")).await?;
    assert_eq!(c.current_url().await?.scheme(), "https");
    wait_css(c, "#enroll-code").await?;
    enter_code(c, code).await?;
    wait_css(c, "#link-state[data-state='Up']").await?;
    wait_css(c, "#register-form").await?;
    register(c, "dana", "Dana Example", "a good long password").await?;
    click(c, "logout").await?;
    wait_css(c, "#login-form").await?;
    login(c, "dana", "a good long password").await?;
    wait_text(c, "#account-username", "dana").await?;
    wait_text(c, "#balance", "$0.00").await?;
    count_frames(c).await?;
    money(c, "deposit", "25.00").await?;
    wait_text(c, "#balance", "$25.00").await?;
    wait_text(
        c,
        "#notice p",
        "Deposited 25.00. Your balance is now 25.00.",
    )
    .await?;
    shot(c, "https-01-deposited").await?;
    assert_eq!(socket_urls(c).await?, [format!("wss://{host}/ws")]);
    let hsts = c
        .execute_async(
            "const done = arguments[arguments.length - 1];\
             fetch('/', {cache: 'no-store'}).then(\
               (r) => done(r.headers.get('strict-transport-security')),\
               (e) => done('fetch failed: ' + e));",
            vec![],
        )
        .await?;
    assert_eq!(hsts, "max-age=31536000");
    Ok(())
}

//! The terminal key's custody in the browser, end to end: a key an older version of the page
//! left in localStorage (hex) is moved, on the next load, into a non-extractable WebCrypto key
//! in IndexedDB and wiped from localStorage; the ATM goes on working with it after a reload.

use e2e::{browser, open_bank, serve, shot, start_chromedriver, stored, stored_key, wait_css, Res};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the release web bundle and chromedriver; run by `cargo xtask test`"]
async fn web_atm_moves_a_key_an_older_page_kept_in_local_storage() -> Res {
    let tmp = tempfile::tempdir()?;
    let (bank, listener) = open_bank(tmp.path()).await?;
    let base = format!("http://{}", listener.local_addr()?);
    let terminal = bank_server::admin::add_terminal(bank.ledger(), "e2e older page")?;
    let pin = bank.pin().to_text();
    let serving = serve(listener, bank);

    let driver = start_chromedriver().await?;
    let c = browser(&driver, &tmp.path().join("chrome"), 390, 844).await?;
    let result = async {
        // What an older page kept: the id, the key in hex and the bank's pin.
        c.goto(&base).await?;
        wait_css(&c, "#enroll-code").await?;
        c.execute(
            "localStorage.setItem('atm.terminal_id', arguments[0]);\
             localStorage.setItem('atm.terminal_key', arguments[1]);\
             localStorage.setItem('atm.bank', arguments[2]);",
            vec![
                terminal.id.as_str().into(),
                terminal.psk.to_hex().as_str().into(),
                pin.as_str().into(),
            ],
        )
        .await?;

        // The next load moves it and connects with it.
        c.goto(&base).await?;
        wait_css(&c, "#link-state[data-state='Up']").await?;
        wait_css(&c, "#register-form").await?;
        for key in ["atm.terminal_id", "atm.terminal_key", "atm.bank"] {
            assert_eq!(
                stored(&c, key).await?,
                None,
                "{key} is still in localStorage"
            );
        }
        let message = "moved";
        let found = stored_key(&c, "atm", message).await?;
        assert_eq!(found["terminal"], terminal.id.as_str(), "{found}");
        assert_eq!(found["bank"], pin.as_str(), "{found}");
        assert_eq!(found["extractable"], false, "{found}");
        assert_eq!(found["raw"], "InvalidAccessError", "{found}");
        let mac = protocol::primitives::hmac_sha256(terminal.psk.expose(), &[message.as_bytes()]);
        assert_eq!(found["mac"], hex::encode(mac), "{found}");

        // And after another reload it still works, from IndexedDB alone.
        c.goto(&base).await?;
        wait_css(&c, "#link-state[data-state='Up']").await?;
        shot(&c, "custody-moved-phone").await?;
        Res::Ok(())
    }
    .await;
    if result.is_err() {
        let _ = shot(&c, "failure-custody").await;
    }
    let _ = c.close().await;
    drop(driver);
    serving.stop().await?;
    result
}

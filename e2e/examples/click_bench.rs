//! The click-to-confirmed-balance benchmark (issue 16): the web ATM in headless Chromium against
//! a bank on 127.0.0.1 (fresh data directory, every deposit fsynced before its answer), 100
//! deposits clicked one after another, each timed in the page from the click on Deposit to the
//! new balance in `#balance`; prints `bench-click {json}` (p50/p99) for the report that
//! `cargo xtask bench` writes. A measurement, never a timed test: nothing is asserted about
//! time, only that every click shows the balance it must.
//!
//! ```sh
//! trunk build --release   # the bundle in dist/
//! ATM_E2E_DIST=$PWD/dist cargo run --release -p e2e --example click_bench [CLICKS]
//! ```
//!
//! The bank is the one the e2e tests run, in this process: built `--release` here, it is the
//! release bank; the figures say which.
#![forbid(unsafe_code)]

use std::fmt;
use std::time::Duration;

use bank_load::report::{ClickFigures, CLICK_LINE};
use bank_load::stats::Latency;
use e2e::{
    browser, enroll_by_link, open_bank, register, serve, shot, start_chromedriver, wait_text, Res,
};
use fantoccini::Client;
use serde_json::json;

/// Timed clicks (the issue's 100), unless the first argument says otherwise.
const CLICKS: u32 = 100;
/// Clicks made first and not timed: the page's first deposit, the bank's first commit.
const WARMUP: u32 = 5;
/// Each click deposits this much.
const AMOUNT: &str = "1.00";
const AMOUNT_CENTS: u64 = 100;
/// How long one click may take to show its balance before the run fails (in the page).
const CLICK_LIMIT_MS: u64 = 10_000;

/// True when the deposit form can take the next click: the link is up, the field is empty
/// (the page clears it after each completed deposit) and the form is not busy.
const READY_JS: &str = "\
    const $ = id => document.getElementById(id);\
    const input = $('deposit-amount'), button = $('deposit-submit'), form = $('deposit-form');\
    return !!(input && button && form && $('balance'))\
      && document.querySelector(\"#link-state[data-state='Up']\") !== null\
      && input.value === '' && !button.disabled && form.getAttribute('aria-busy') === null;";

/// One timed click, all in the page: fills the amount, notes `performance.now()`, clicks
/// Deposit, and on every DOM change reads `#balance`; done with `{us}` when it shows `want`,
/// `{wrong}` when it shows anything else new, `{timeout}` after the limit.
const CLICK_JS: &str = "\
    const [want, amount, limit, done] = arguments;\
    const $ = id => document.getElementById(id);\
    const shown = () => { const b = $('balance'); return b ? b.textContent : null; };\
    const before = shown();\
    $('deposit-amount').value = amount;\
    let t0 = 0, finished = false, observer = null, timer = null;\
    const finish = r => {\
      if (finished) return; finished = true;\
      observer.disconnect(); clearTimeout(timer); done(r);\
    };\
    observer = new MutationObserver(() => {\
      const now = performance.now(), seen = shown();\
      if (seen === want) finish({us: Math.round((now - t0) * 1000)});\
      else if (seen !== null && seen !== before) finish({wrong: seen});\
    });\
    timer = setTimeout(() => finish({timeout: shown()}), limit);\
    observer.observe(document.body, {subtree: true, childList: true, characterData: true});\
    t0 = performance.now();\
    $('deposit-submit').click();";

/// Why the run failed.
#[derive(Debug)]
enum ClickError {
    /// The deposit form never became ready for the next click.
    NotReady { click: u32 },
    /// The balance showed something other than the expected amount.
    WrongBalance {
        click: u32,
        want: String,
        saw: String,
    },
    /// The balance did not change to the expected amount in time.
    NoBalance {
        click: u32,
        want: String,
        last: Option<String>,
    },
    /// The page's script answered something unexpected.
    Script {
        click: u32,
        answer: serde_json::Value,
    },
}

impl fmt::Display for ClickError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotReady { click } => {
                write!(f, "click {click}: the deposit form never became ready")
            }
            Self::WrongBalance { click, want, saw } => {
                write!(f, "click {click}: the balance showed {saw:?}, not {want:?}")
            }
            Self::NoBalance { click, want, last } => write!(
                f,
                "click {click}: no {want:?} within {CLICK_LIMIT_MS} ms (last {last:?})"
            ),
            Self::Script { click, answer } => {
                write!(f, "click {click}: the page answered {answer}")
            }
        }
    }
}

impl std::error::Error for ClickError {}

/// How the balance reads after `cents` were deposited on an empty account.
fn balance_text(cents: u64) -> String {
    format!("${}.{:02}", cents / 100, cents % 100)
}

/// Waits (up to 10 s) until the deposit form takes the next click.
async fn ready(c: &Client, click: u32) -> Res {
    for _ in 0..2_000 {
        if c.execute(READY_JS, vec![]).await? == json!(true) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Err(ClickError::NotReady { click }.into())
}

/// Click number `click` (from 1), which must bring the balance to `want`: its time in
/// microseconds, measured in the page.
async fn timed_click(c: &Client, click: u32, want: &str) -> Res<u32> {
    ready(c, click).await?;
    let answer = c
        .execute_async(
            CLICK_JS,
            vec![want.into(), AMOUNT.into(), CLICK_LIMIT_MS.into()],
        )
        .await?;
    if let Some(us) = answer["us"].as_u64() {
        return Ok(u32::try_from(us).unwrap_or(u32::MAX));
    }
    let want = want.to_owned();
    Err(match (&answer["wrong"], answer.get("timeout")) {
        (serde_json::Value::String(saw), _) => ClickError::WrongBalance {
            click,
            want,
            saw: saw.clone(),
        },
        (_, Some(last)) => ClickError::NoBalance {
            click,
            want,
            last: last.as_str().map(str::to_owned),
        },
        _ => ClickError::Script { click, answer },
    }
    .into())
}

/// Enrolls, registers, makes the untimed clicks and then the timed ones.
async fn measure(c: &Client, link: &str, clicks: u32) -> Res<ClickFigures> {
    enroll_by_link(c, link, "#link-state[data-state='Up']").await?;
    register(c, "clicker", "Click Benchmark", "a long enough password").await?;
    wait_text(c, "#balance", &balance_text(0)).await?;
    let mut samples = Vec::new();
    let mut deposited = 0;
    for click in 1..=WARMUP + clicks {
        deposited += AMOUNT_CENTS;
        let us = timed_click(c, click, &balance_text(deposited)).await?;
        if click > WARMUP {
            samples.push(us);
        }
    }
    // The last answer's notice, and the balance once more, as the page shows them at rest.
    wait_text(
        c,
        "#notice p",
        &format!(
            "Deposited {AMOUNT}. Your balance is now {}.",
            &balance_text(deposited)[1..]
        ),
    )
    .await?;
    wait_text(c, "#balance", &balance_text(deposited)).await?;
    let user_agent = c.execute("return navigator.userAgent;", vec![]).await?;
    Ok(ClickFigures {
        latency: Latency::of(&mut samples),
        warmup: WARMUP,
        bank_build: if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
        .into(),
        user_agent: user_agent.as_str().unwrap_or_default().to_owned(),
    })
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Res {
    let clicks = match std::env::args().nth(1) {
        Some(n) => n.parse()?,
        None => CLICKS,
    };
    let tmp = tempfile::tempdir()?;
    let (bank, listener) = open_bank(tmp.path()).await?;
    let base = format!("http://{}", listener.local_addr()?);
    let terminal = bank_server::admin::add_terminal(bank.ledger(), "click benchmark")?;
    let link = bank_server::terminals::enrollment_link(&base, &terminal, &bank.pin()).to_string();
    let serving = serve(listener, bank);
    let driver = start_chromedriver().await?;
    let c = browser(&driver, &tmp.path().join("chrome"), 1280, 900).await?;
    let result = measure(&c, &link, clicks).await;
    if result.is_err() {
        let _ = shot(&c, "click-bench-failure").await;
    }
    let _ = c.close().await;
    drop(driver);
    serving.stop().await?;
    let figures = result?;
    eprintln!(
        "click to confirmed balance, {} clicks after {} untimed ({} bank): p50 {} µs, p99 {} µs, max {} µs",
        figures.latency.count,
        figures.warmup,
        figures.bank_build,
        figures.latency.p50_us,
        figures.latency.p99_us,
        figures.latency.max_us
    );
    println!("{CLICK_LINE}{}", serde_json::to_string(&figures)?);
    Ok(())
}

//! The dashboard: greeting, account, balance, deposit and withdraw panels, the mini statement
//! with a small balance chart, and logout.

use std::rc::Rc;

use protocol::{Cents, HistoryEntry, TxId, TxKind};
use rand_core::OsRng;
use yew::prelude::*;

use super::{clears, Cmd};
use crate::atm::amount::parse_amount;
use crate::atm::driver::Op;
use crate::atm::state::{Form, State};
use crate::widgets::{clear, focus, value, Field, Submit};

#[derive(Properties, PartialEq)]
pub(crate) struct Props {
    pub(crate) state: Rc<State>,
    pub(crate) on_cmd: Callback<Cmd>,
}

#[function_component(Dashboard)]
pub(crate) fn dashboard(props: &Props) -> Html {
    let heading = use_node_ref();
    {
        let heading = heading.clone();
        use_effect_with((), move |()| focus(&heading));
    }
    let Some(account) = &props.state.account else {
        return html! {};
    };
    let on_logout = {
        let on_cmd = props.on_cmd.clone();
        Callback::from(move |_: MouseEvent| on_cmd.emit(Cmd::Logout))
    };
    let logging_out = props.state.is_pending(Form::Logout);
    html! {
        <div class="dashboard">
            <section class="hello" aria-labelledby="greeting">
                <div>
                    <h1 id="greeting" tabindex="-1" ref={heading}>{ format!("Hello, {}", account.full_name) }</h1>
                    <dl class="ids">
                        <div><dt>{ "Username" }</dt><dd id="account-username">{ account.username.as_str() }</dd></div>
                        <div><dt>{ "Account" }</dt><dd id="account-number"><code>{ account.account.as_str() }</code></dd></div>
                    </dl>
                </div>
                <button type="button" id="logout" class="button ghost" onclick={on_logout}
                    disabled={logging_out} aria-busy={logging_out.then_some("true")}>
                    if logging_out { <span class="spinner" aria-hidden="true"></span> }
                    { "Log out" }
                </button>
            </section>
            <section class="card balance" aria-labelledby="balance-title">
                <h2 id="balance-title">{ "Balance" }</h2>
                <p class="amount" id="balance" aria-live="polite">{ money(account.balance) }</p>
                <Chart entries={props.state.history.clone()} />
            </section>
            <MoneyForm kind={TxKind::Deposit} state={Rc::clone(&props.state)} on_cmd={props.on_cmd.clone()} />
            <MoneyForm kind={TxKind::Withdraw} state={Rc::clone(&props.state)} on_cmd={props.on_cmd.clone()} />
            <Statement entries={props.state.history.clone()} />
            if let Some(e) = props.state.error(Form::Logout) {
                <p class="error" role="alert">{ e }</p>
            }
        </div>
    }
}

/// `1 234.50` style is locale work; the ATM shows plain `1234.50` with a currency sign.
fn money(c: Cents) -> String {
    format!("${c}")
}

#[derive(Properties, PartialEq)]
struct MoneyProps {
    kind: TxKind,
    state: Rc<State>,
    on_cmd: Callback<Cmd>,
}

#[function_component(MoneyForm)]
fn money_form(props: &MoneyProps) -> Html {
    let amount = use_node_ref();
    let (form, id, title, verb, busy_label, help) = match props.kind {
        TxKind::Withdraw => (
            Form::Withdraw,
            "withdraw",
            "Withdraw",
            "Withdraw",
            "Withdrawing…",
            "Take cash out of your account.",
        ),
        _ => (
            Form::Deposit,
            "deposit",
            "Deposit",
            "Deposit",
            "Depositing…",
            "Put money into your account.",
        ),
    };
    // Clear the field after each completed deposit or withdrawal.
    {
        let amount = amount.clone();
        use_effect_with(props.state.completed, move |_| clear(&amount));
    }
    let onsubmit = {
        let (amount, on_cmd, kind) = (amount.clone(), props.on_cmd.clone(), props.kind);
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            match parse_amount(&value(&amount)) {
                Ok(cents) => {
                    // One txid per operation: a retry after a dropped connection reuses it.
                    let txid = TxId::random(&mut OsRng);
                    let op = if kind == TxKind::Withdraw {
                        Op::Withdraw {
                            txid,
                            amount: cents,
                        }
                    } else {
                        Op::Deposit {
                            txid,
                            amount: cents,
                        }
                    };
                    on_cmd.emit(Cmd::Send(op));
                }
                Err(err) => on_cmd.emit(Cmd::Invalid(form, err.message().into())),
            }
        })
    };
    let busy = props.state.is_pending(form);
    let error = props
        .state
        .error(form)
        .map(|e| AttrValue::from(e.to_owned()));
    let field_id = format!("{id}-amount");
    html! {
        <section class={classes!("card", "money", id)} aria-labelledby={format!("{id}-title")}>
            <h2 id={format!("{id}-title")}>{ title }</h2>
            <p class="muted">{ help }</p>
            <form id={format!("{id}-form")} onsubmit={onsubmit} novalidate=true aria-busy={busy.then_some("true")}>
                <Field id={AttrValue::from(field_id)} label="Amount in dollars" node={amount}
                    inputmode="decimal" autocomplete="off" placeholder="0.00"
                    hint="Up to two digits after the point, like 19.99." error={error}
                    oninput={clears(&props.on_cmd, &props.state, &[form])} />
                <Submit id={AttrValue::from(format!("{id}-submit"))} label={verb} busy_label={busy_label} busy={busy} />
            </form>
        </section>
    }
}

#[derive(Properties, PartialEq)]
struct EntriesProps {
    entries: Vec<HistoryEntry>,
}

/// When the bank committed an entry, in the browser's locale.
fn when(ms: u64) -> String {
    #[allow(clippy::cast_precision_loss)] // exact for every date before the year 285616
    let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(ms as f64));
    let day = date.to_locale_date_string("default", &wasm_bindgen::JsValue::UNDEFINED);
    let opts = js_sys::Object::new();
    let _ = js_sys::Reflect::set(&opts, &"hour".into(), &"2-digit".into());
    let _ = js_sys::Reflect::set(&opts, &"minute".into(), &"2-digit".into());
    let time = date.to_locale_time_string_with_options("default", &opts);
    format!("{day} {time}")
}

#[function_component(Statement)]
fn statement(props: &EntriesProps) -> Html {
    html! {
        <section class="card statement" aria-labelledby="statement-title">
            <h2 id="statement-title">{ "Mini statement" }</h2>
            if props.entries.is_empty() {
                <p class="muted" id="statement-empty">{ "No transactions yet." }</p>
            } else {
                <table id="statement">
                    <caption class="visually-hidden">{ "Your last transactions, newest first" }</caption>
                    <thead><tr>
                        <th scope="col">{ "When" }</th>
                        <th scope="col">{ "What" }</th>
                        <th scope="col" class="num">{ "Amount" }</th>
                        <th scope="col" class="num">{ "Balance" }</th>
                    </tr></thead>
                    <tbody>
                        { for props.entries.iter().map(|e| {
                            let (what, sign, class) = match e.kind {
                                TxKind::Deposit => ("Deposit", "+", "in"),
                                TxKind::Withdraw => ("Withdrawal", "−", "out"),
                                TxKind::Open => ("Opening balance", "+", "in"),
                            };
                            html! {
                                <tr class={class}>
                                    <td>{ when(e.time_ms) }</td>
                                    <td>{ what }</td>
                                    <td class="num amount-cell">{ format!("{sign}{}", e.amount_cents) }</td>
                                    <td class="num">{ e.balance_cents.to_string() }</td>
                                </tr>
                            }
                        }) }
                    </tbody>
                </table>
            }
        </section>
    }
}

/// Chart size in SVG units.
const W: u64 = 300;
const H: u64 = 64;
const PAD: u64 = 4;

/// Points of a balance line, oldest first, in integer SVG units (no floats anywhere).
pub(crate) fn chart_points(balances: &[Cents]) -> Vec<(u64, u64)> {
    let max = balances.iter().map(|c| c.0).max().unwrap_or(0).max(1);
    let n = balances.len() as u64;
    balances
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let x = if n <= 1 {
                W / 2
            } else {
                i as u64 * W / (n - 1)
            };
            let span = u128::from(H - 2 * PAD);
            let scaled = u128::from(c.0) * span / u128::from(max);
            let y = H - PAD - u64::try_from(scaled).unwrap_or(0);
            (x, y)
        })
        .collect()
}

#[function_component(Chart)]
fn chart(props: &EntriesProps) -> Html {
    if props.entries.len() < 2 {
        return html! {};
    }
    let balances: Vec<Cents> = props
        .entries
        .iter()
        .rev()
        .map(|e| e.balance_cents)
        .collect();
    let points = chart_points(&balances);
    let line: Vec<String> = points.iter().map(|(x, y)| format!("{x},{y}")).collect();
    let area = format!("0,{H} {} {W},{H}", line.join(" "));
    let summary = format!(
        "Balance over the last {} transactions, from {} to {}.",
        balances.len(),
        balances.first().copied().unwrap_or_default(),
        balances.last().copied().unwrap_or_default()
    );
    html! {
        <figure class="chart">
            <svg viewBox={format!("0 0 {W} {H}")} preserveAspectRatio="none" aria-hidden="true" focusable="false">
                <polygon class="area" points={area} />
                <polyline class="line" points={line.join(" ")} />
            </svg>
            <figcaption class="muted small">{ summary }</figcaption>
        </figure>
    }
}

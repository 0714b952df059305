//! The console dashboard: totals, the last hour's transactions per minute, live sessions, the
//! audit chain and its newest entries, the terminals (enroll one, revoke one) and logout.

use protocol::console::{TerminalInfo, TerminalRole};
use protocol::{TerminalId, TerminalName};
use yew::prelude::*;

use super::{Cmd, Props};
use crate::console::driver::ConsoleOp;
use crate::console::format::{
    auth_line, chain_line, chart_bars, chart_total, clock, enrollment_link, money, CHART_H, CHART_W,
};
use crate::console::state::{ConsoleAction, ConsoleForm, ConsoleState};
use crate::widgets::{clear, focus, value, Field, Submit};

/// Minutes east of UTC in this browser, now.
fn local_offset_minutes() -> i64 {
    // getTimezoneOffset() is a whole number of minutes (UTC minus local), within ±1000.
    #[allow(clippy::cast_possible_truncation)]
    let west = js_sys::Date::new_0().get_timezone_offset() as i64;
    -west
}

fn err(state: &ConsoleState, form: ConsoleForm) -> Option<AttrValue> {
    state.error(form).map(|e| AttrValue::from(e.to_owned()))
}

fn role_text(role: TerminalRole) -> &'static str {
    match role {
        TerminalRole::Atm => "ATM",
        TerminalRole::Console => "Console",
    }
}

fn dash(text: Option<&str>) -> String {
    text.unwrap_or("—").to_owned()
}

#[function_component(Dashboard)]
pub(crate) fn dashboard(props: &Props) -> Html {
    let heading = use_node_ref();
    {
        let heading = heading.clone();
        use_effect_with((), move |()| focus(&heading));
    }
    let s = &props.state;
    let offset = local_offset_minutes();
    let on_logout = {
        let on_cmd = props.on_cmd.clone();
        Callback::from(move |_: MouseEvent| on_cmd.emit(Cmd::Logout))
    };
    let logging_out = s.is_pending(ConsoleForm::Logout);
    let operator = s.operator.clone().unwrap_or_default();
    html! {
        <div class="console-dashboard">
            <section class="hello console-hello" aria-labelledby="console-greeting">
                <div>
                    <h1 id="console-greeting" tabindex="-1" ref={heading}>{ "Bank console" }</h1>
                    <p class="muted">{ "Logged in as operator " }<strong id="op-name">{ operator }</strong>{ ". Refreshes every 3 seconds." }</p>
                </div>
                <button type="button" id="op-logout" class="button ghost" onclick={on_logout}
                    disabled={logging_out} aria-busy={logging_out.then_some("true")}>
                    if logging_out { <span class="spinner" aria-hidden="true"></span> }
                    { "Log out" }
                </button>
            </section>
            <div class="wide" aria-live="polite">
                if let Some(e) = s.error(ConsoleForm::Refresh) {
                    <p class="error" role="alert" id="refresh-error">{ e }</p>
                }
            </div>
            <Totals state={props.state.clone()} on_cmd={props.on_cmd.clone()} />
            <Chart state={props.state.clone()} on_cmd={props.on_cmd.clone()} />
            <NewTerminalPanel state={props.state.clone()} on_cmd={props.on_cmd.clone()} />
            <Terminals state={props.state.clone()} on_cmd={props.on_cmd.clone()} />
            <section class="card wide" aria-labelledby="sessions-title">
                <h2 id="sessions-title">{ "Live sessions" }</h2>
                if let Some(o) = &s.overview {
                    <p class="muted">
                        <span id="sessions-total">{ o.sessions_total }</span>
                        { if o.sessions_total == 1 { " session open" } else { " sessions open" } }
                        if (o.sessions.len() as u64) < o.sessions_total {
                            { format!(" (the newest {} shown)", o.sessions.len()) }
                        }
                    </p>
                    <div class="scroll">
                        <table id="sessions" class="stack">
                            <caption class="visually-hidden">{ "Open sessions, newest first" }</caption>
                            <thead><tr>
                                <th scope="col">{ "Terminal" }</th>
                                <th scope="col">{ "Role" }</th>
                                <th scope="col">{ "User" }</th>
                                <th scope="col">{ "Since" }</th>
                                <th scope="col">{ "Node" }</th>
                            </tr></thead>
                            <tbody>
                                { for o.sessions.iter().map(|session| html! {
                                    <tr>
                                        <td data-label="Terminal"><code>{ session.terminal.as_str() }</code></td>
                                        <td data-label="Role">{ role_text(session.role) }</td>
                                        <td data-label="User">{ dash(session.user.as_deref()) }</td>
                                        <td data-label="Since">{ clock(session.since_ms, offset) }</td>
                                        <td data-label="Node"><code>{ session.node.as_str() }</code></td>
                                    </tr>
                                }) }
                            </tbody>
                        </table>
                    </div>
                } else {
                    <p class="muted">{ "Loading…" }</p>
                }
            </section>
            <Audit state={props.state.clone()} on_cmd={props.on_cmd.clone()} />
        </div>
    }
}

#[function_component(Totals)]
fn totals(props: &Props) -> Html {
    let Some(o) = &props.state.overview else {
        return html! {
            <section class="card wide totals" aria-label="Totals"><p class="muted">{ "Loading…" }</p></section>
        };
    };
    let (state, text) = chain_line(&o.chain);
    html! {
        <section class="card wide totals" aria-label="Totals">
            <dl class="stats">
                <div><dt>{ "Accounts" }</dt><dd id="total-accounts">{ o.accounts }</dd></div>
                <div><dt>{ "Deposits held" }</dt><dd id="total-deposits">{ money(o.deposits_cents.0) }</dd></div>
                <div><dt>{ "Transactions today (UTC)" }</dt><dd id="total-today">{ o.transactions_today }</dd></div>
            </dl>
            <div class={classes!("chain", state)}>
                <p id="chain-status" data-state={state}>
                    <span class="dot" aria-hidden="true"></span>
                    { text }
                </p>
                if let (Some(entries), Some(at)) = (o.checkpoint_entries, o.checkpoint_ms) {
                    <p id="checkpoint" class="small">
                        { format!("Latest checkpoint: {entries} entries, at {}", clock(at, local_offset_minutes())) }
                    </p>
                }
                <p class="muted small">
                    { "This checks that the audit entries are all there and chained in order. Their MACs and contents are verified with the auditor's key: " }
                    <code>{ "bank-server audit verify" }</code>{ "." }
                </p>
            </div>
        </section>
    }
}

#[function_component(Chart)]
fn chart(props: &Props) -> Html {
    let Some(o) = &props.state.overview else {
        return html! {};
    };
    let bars = chart_bars(&o.per_minute);
    let total = chart_total(&o.per_minute);
    let busiest = o.per_minute.iter().copied().max().unwrap_or(0);
    let label = format!(
        "Transactions per minute over the last hour: {total} in all, at most {busiest} in one minute."
    );
    let minutes = bars.len();
    html! {
        <section class="card wide" aria-labelledby="chart-title">
            <h2 id="chart-title">{ "Transactions per minute, last hour" }</h2>
            <p><span id="tx-chart-total" class="big">{ total }</span>{ if total == 1 { " transaction in the last hour" } else { " transactions in the last hour" } }</p>
            <svg id="tx-chart" class="bars" viewBox={format!("0 0 {CHART_W} {CHART_H}")}
                preserveAspectRatio="none" role="img" aria-label={label.clone()}>
                <title>{ label }</title>
                { for bars.iter().enumerate().map(|(i, bar)| {
                    let ago = minutes - 1 - i;
                    let tip = match ago {
                        0 => format!("This minute: {}", bar.count),
                        1 => format!("1 minute ago: {}", bar.count),
                        n => format!("{n} minutes ago: {}", bar.count),
                    };
                    html! {
                        <rect x={bar.x.to_string()} y={bar.y.to_string()}
                            width={bar.width.to_string()} height={bar.height.to_string()}
                            data-count={bar.count.to_string()}>
                            <title>{ tip }</title>
                        </rect>
                    }
                }) }
            </svg>
            <p class="axis muted small" aria-hidden="true"><span>{ "60 min ago" }</span><span>{ "now" }</span></p>
        </section>
    }
}

#[function_component(Audit)]
fn audit(props: &Props) -> Html {
    let offset = local_offset_minutes();
    html! {
        <section class="card wide" aria-labelledby="audit-title">
            <h2 id="audit-title">{ "Recent audit entries" }</h2>
            if let Some((total, entries)) = &props.state.audit {
                <p class="muted"><span id="audit-total">{ total }</span>{ if *total == 1 { " entry in the log." } else { " entries in the log; the newest first." } }</p>
                <div class="scroll">
                    <table id="audit" class="stack">
                        <caption class="visually-hidden">{ "The newest audit entries" }</caption>
                        <thead><tr>
                            <th scope="col" class="num">{ "#" }</th>
                            <th scope="col">{ "Time" }</th>
                            <th scope="col">{ "Action" }</th>
                            <th scope="col">{ "User" }</th>
                            <th scope="col">{ "Account" }</th>
                            <th scope="col" class="num">{ "Amount" }</th>
                            <th scope="col">{ "Terminal" }</th>
                            <th scope="col">{ "Detail" }</th>
                        </tr></thead>
                        <tbody>
                            { for entries.iter().map(|line| html! {
                                <tr>
                                    <td class="num" data-label="#">{ line.seq }</td>
                                    <td data-label="Time">{ clock(line.time_ms, offset) }</td>
                                    <td data-label="Action"><code>{ line.action.clone() }</code></td>
                                    <td data-label="User">{ dash(line.user.as_deref()) }</td>
                                    <td data-label="Account">{ dash(line.account.as_deref()) }</td>
                                    <td class="num" data-label="Amount">{ line.amount_cents.map_or_else(|| "—".to_owned(), |c| money(u128::from(c.0))) }</td>
                                    <td data-label="Terminal">{ dash(line.terminal.as_deref()) }</td>
                                    <td data-label="Detail">{ dash(line.detail.as_deref()) }</td>
                                </tr>
                            }) }
                        </tbody>
                    </table>
                </div>
                <p class="muted small">
                    { "These are the entries the bank wrote since it started. Older ones, by design, only the auditor can read: " }
                    <code>{ "bank-server audit show" }</code>{ "." }
                </p>
            } else {
                <p class="muted">{ "Loading…" }</p>
            }
        </section>
    }
}

#[derive(Properties, PartialEq)]
struct RowProps {
    terminal: TerminalInfo,
    confirming: bool,
    revoking: bool,
    on_cmd: Callback<Cmd>,
}

#[function_component(TerminalRow)]
fn terminal_row(props: &RowProps) -> Html {
    let t = &props.terminal;
    let id = t.id.as_str().to_owned();
    let action = if t.revoked || t.role != TerminalRole::Atm {
        html! {}
    } else if props.revoking {
        html! {
            <button type="button" class="button small danger" id={format!("confirm-revoke-{id}")} disabled=true aria-busy="true">
                <span class="spinner" aria-hidden="true"></span>{ "Revoking…" }
            </button>
        }
    } else if props.confirming {
        let confirm = {
            let (on_cmd, terminal) = (props.on_cmd.clone(), t.id.clone());
            Callback::from(move |_: MouseEvent| {
                on_cmd.emit(Cmd::Send(ConsoleOp::Revoke {
                    terminal: terminal.clone(),
                }));
            })
        };
        let cancel = {
            let on_cmd = props.on_cmd.clone();
            Callback::from(move |_: MouseEvent| on_cmd.emit(Cmd::Do(ConsoleAction::CancelRevoke)))
        };
        html! {
            <span class="confirm">
                <button type="button" class="button small danger" id={format!("confirm-revoke-{id}")} onclick={confirm}
                    aria-label={format!("Confirm: revoke terminal {id}")}>{ "Confirm revoke" }</button>
                <button type="button" class="button small ghost" id={format!("cancel-revoke-{id}")} onclick={cancel}>{ "Cancel" }</button>
            </span>
        }
    } else {
        let ask = {
            let (on_cmd, id) = (props.on_cmd.clone(), id.clone());
            Callback::from(move |_: MouseEvent| {
                on_cmd.emit(Cmd::Do(ConsoleAction::AskRevoke(id.clone())));
            })
        };
        html! {
            <button type="button" class="button small ghost revoke" id={format!("revoke-{id}")} onclick={ask}
                aria-label={format!("Revoke terminal {id}")}>{ "Revoke" }</button>
        }
    };
    html! {
        <tr data-terminal={id.clone()} class={classes!(t.revoked.then_some("revoked"))}>
            <td data-label="Id"><code>{ id.clone() }</code></td>
            <td data-label="Name">{ t.name.clone() }</td>
            <td data-label="Role">{ role_text(t.role) }</td>
            <td class="state" data-label="State">{ if t.revoked { "Revoked" } else { "Active" } }</td>
            <td class="actions">{ action }</td>
        </tr>
    }
}

#[function_component(Terminals)]
fn terminals(props: &Props) -> Html {
    let name = use_node_ref();
    {
        let name = name.clone();
        use_effect_with(props.state.completed, move |_| clear(&name));
    }
    let onsubmit = {
        let (name, on_cmd) = (name.clone(), props.on_cmd.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            match TerminalName::new(value(&name).trim()) {
                Some(name) => on_cmd.emit(Cmd::Send(ConsoleOp::AddTerminal { name })),
                None => on_cmd.emit(Cmd::Do(ConsoleAction::Invalid(
                    ConsoleForm::AddTerminal,
                    format!(
                        "Please give the terminal a name of 1 to {} characters.",
                        TerminalName::MAX_CHARS
                    ),
                ))),
            }
        })
    };
    let s = &props.state;
    let busy = s.is_pending(ConsoleForm::AddTerminal);
    html! {
        <section class="card wide" aria-labelledby="terminals-title">
            <h2 id="terminals-title">{ "Terminals" }</h2>
            <form id="enroll-form" class="inline-form" onsubmit={onsubmit} novalidate=true aria-busy={busy.then_some("true")}>
                <Field id="enroll-name" label="Enroll a new ATM terminal, named" node={name}
                    autocomplete="off" placeholder="lobby" hint="Its key is shown once, right here."
                    error={err(s, ConsoleForm::AddTerminal)} />
                <Submit id="enroll-submit" label="Enroll terminal" busy_label="Enrolling…" busy={busy} />
            </form>
            if let Some((total, list)) = &s.terminals {
                <p class="muted"><span id="terminals-total">{ total }</span>{ " terminals; the newest first." }</p>
                <div class="scroll">
                    <table id="terminals" class="stack">
                        <caption class="visually-hidden">{ "Terminals, newest first" }</caption>
                        <thead><tr>
                            <th scope="col">{ "Id" }</th>
                            <th scope="col">{ "Name" }</th>
                            <th scope="col">{ "Role" }</th>
                            <th scope="col">{ "State" }</th>
                            <th scope="col"><span class="visually-hidden">{ "Actions" }</span></th>
                        </tr></thead>
                        <tbody>
                            { for list.iter().map(|t| {
                                let id = t.id.as_str();
                                html! {
                                    <TerminalRow key={id.to_owned()} terminal={t.clone()}
                                        confirming={s.confirm_revoke.as_deref() == Some(id)}
                                        revoking={s.revoking.as_deref() == Some(id)}
                                        on_cmd={props.on_cmd.clone()} />
                                }
                            }) }
                        </tbody>
                    </table>
                </div>
            } else {
                <p class="muted">{ "Loading…" }</p>
            }
            <div aria-live="polite">
                if let Some(e) = s.error(ConsoleForm::Revoke) {
                    <p class="error" role="alert" id="revoke-error">{ e }</p>
                }
            </div>
        </section>
    }
}

/// The one-time panel with a new terminal's key, until "Done, hide the key".
#[function_component(NewTerminalPanel)]
fn new_terminal_panel(props: &Props) -> Html {
    let heading = use_node_ref();
    let copied = use_state(|| None::<bool>);
    // Focus moves to the new terminal's panel as soon as it shows.
    {
        let (heading, copied) = (heading.clone(), copied.clone());
        let shown = props
            .state
            .new_terminal
            .as_ref()
            .map(|n| n.terminal.clone());
        use_effect_with(shown, move |shown| {
            copied.set(None);
            if shown.is_some() {
                focus(&heading);
            }
        });
    }
    let Some(new) = &props.state.new_terminal else {
        return html! {};
    };
    // The web ATM's own origin when the console has another one, else this page's.
    let origin = props.state.atm_url.clone().unwrap_or_else(|| {
        web_sys::window()
            .and_then(|w| w.location().origin().ok())
            .unwrap_or_default()
    });
    let id: &TerminalId = &new.terminal;
    // The terminal pins the bank this console was enrolled with: the same bank.
    let texts = props.state.bank.as_ref().map(|bank| {
        (
            enrollment_link(&origin, id, &new.key, bank),
            auth_line(id, &new.key, bank),
        )
    });
    let done = {
        let on_cmd = props.on_cmd.clone();
        Callback::from(move |_: MouseEvent| on_cmd.emit(Cmd::Do(ConsoleAction::HideNewTerminal)))
    };
    let on_copy = texts.as_ref().map(|(link, _)| {
        let (link, copied) = (link.clone(), copied.clone());
        Callback::from(move |_: MouseEvent| {
            let copied = copied.clone();
            copy_text(&link, move |ok| copied.set(Some(ok)));
        })
    });
    html! {
        <section class="card wide new-terminal" id="new-terminal" aria-labelledby="new-terminal-title">
            <h2 id="new-terminal-title" tabindex="-1" ref={heading}>{ format!("New terminal “{}”", new.name) }</h2>
            <p>{ "Its key is shown this once and is not kept anywhere in this page after you hide it. Give it to the terminal now." }</p>
            <dl class="secret">
                <div><dt>{ "Terminal id" }</dt><dd><code id="new-terminal-id">{ id.as_str() }</code></dd></div>
                if let Some((link, auth)) = &texts {
                    <div><dt>{ "Web ATM enrollment link (open it on the ATM)" }</dt><dd>
                        <code id="new-terminal-link">{ link.as_str() }</code>
                        if let Some(on_copy) = on_copy {
                            <button type="button" class="button small ghost copy" id="new-terminal-copy" onclick={on_copy}>{ "Copy link" }</button>
                        }
                        <span class="muted small" id="new-terminal-copied" aria-live="polite">
                            { match *copied {
                                Some(true) => "Link copied.",
                                Some(false) => "This browser would not copy it: select the link and copy it by hand.",
                                None => "",
                            } }
                        </span>
                    </dd></div>
                    <div><dt>{ "Native ATM auth file line" }</dt><dd><code id="new-terminal-auth">{ auth.as_str() }</code></dd></div>
                }
            </dl>
            <button type="button" class="button" id="new-terminal-done" onclick={done}>{ "Done, hide the key" }</button>
        </section>
    }
}

/// Copies `text` to the clipboard through `navigator.clipboard.writeText` (read by name, so no
/// extra web-sys features), then tells `done` whether it worked.
fn copy_text(text: &str, done: impl Fn(bool) + 'static) {
    use wasm_bindgen::JsCast as _;
    let get = |target: &wasm_bindgen::JsValue, name: &str| {
        js_sys::Reflect::get(target, &wasm_bindgen::JsValue::from_str(name)).ok()
    };
    let promise = web_sys::window()
        .and_then(|w| get(&w.into(), "navigator"))
        .and_then(|n| get(&n, "clipboard"))
        .filter(|c| !c.is_undefined())
        .and_then(|clipboard| {
            let write = get(&clipboard, "writeText")?
                .dyn_into::<js_sys::Function>()
                .ok()?;
            write
                .call1(&clipboard, &wasm_bindgen::JsValue::from_str(text))
                .ok()?
                .dyn_into::<js_sys::Promise>()
                .ok()
        });
    let Some(promise) = promise else {
        done(false);
        return;
    };
    let done = std::rc::Rc::new(done);
    let (ok, fail) = (std::rc::Rc::clone(&done), done);
    let on_ok = wasm_bindgen::closure::Closure::once(move |_: wasm_bindgen::JsValue| ok(true));
    let on_fail = wasm_bindgen::closure::Closure::once(move |_: wasm_bindgen::JsValue| fail(false));
    let _ = promise.then2(&on_ok, &on_fail);
    on_ok.forget();
    on_fail.forget();
}

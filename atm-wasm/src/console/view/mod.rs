//! The bank console's root component (the page at `/console`): owns the console state (a
//! reducer) and its bank controller, and picks the screen: enrollment, operator login, or the
//! dashboard.

mod dashboard;

use std::rc::Rc;

use yew::prelude::*;

use crate::console::driver::{ConsoleDriver, ConsoleOp, REFRESH_MS};
use crate::console::state::{ConsoleAction, ConsoleForm, ConsoleState};
use crate::link::controller::Controller;
use crate::link::enroll::Enrollment;
use crate::widgets::{
    clear, focus, follow_enrollment_links, login_fields, value, Banner, Brand, Field, LinkBadge,
    Submit,
};

/// What a console screen asks the root to do.
pub(crate) enum Cmd {
    /// Enroll this browser as a console terminal.
    Enroll(Enrollment),
    /// Forget the console terminal.
    Forget,
    /// Send an operation to the bank.
    Send(ConsoleOp),
    /// Log out.
    Logout,
    /// Any other change to the page state.
    Do(ConsoleAction),
}

#[derive(Properties, PartialEq)]
pub(crate) struct Props {
    pub(crate) state: Rc<ConsoleState>,
    pub(crate) on_cmd: Callback<Cmd>,
}

/// Asks the bank where its web ATM is ([`protocol::link::ATM_URL_PATH`], on this origin); a
/// console that shares the web ATM's origin gets 404 and keeps using its own origin.
async fn ask_atm_url(dispatcher: UseReducerDispatcher<ConsoleState>) {
    use wasm_bindgen::JsCast as _;
    use wasm_bindgen_futures::JsFuture;
    let Some(window) = web_sys::window() else {
        return;
    };
    let Ok(answer) = JsFuture::from(window.fetch_with_str(protocol::link::ATM_URL_PATH)).await
    else {
        return;
    };
    let Ok(response) = answer.dyn_into::<web_sys::Response>() else {
        return;
    };
    if !response.ok() {
        return;
    }
    let Ok(text) = response.text() else { return };
    if let Ok(url) = JsFuture::from(text).await {
        if let Some(url) = url.as_string().filter(|u| u.starts_with("http")) {
            dispatcher.dispatch(ConsoleAction::AtmUrl(url));
        }
    }
}

const BANK_DOWN: &str = "Bank unreachable. The console keeps trying to connect; you will need to \
                         log in again once it is back.";

const REFUSED: &str = "The bank did not accept this console, or could not prove it is the bank \
                       this console was enrolled with. Its key may have been revoked or the bank \
                       reset. Forget this console and enroll it again with a new link.";

/// The whole console page.
#[function_component(Console)]
pub(crate) fn console() -> Html {
    let state = use_reducer(ConsoleState::default);
    let controller = {
        let dispatcher = state.dispatcher();
        use_memo((), move |()| {
            Controller::<ConsoleState>::new(Callback::from(move |a: ConsoleAction| {
                dispatcher.dispatch(a);
            }))
        })
    };

    let on_cmd = {
        let controller = Rc::clone(&controller);
        let dispatcher = state.dispatcher();
        Callback::from(move |cmd: Cmd| match cmd {
            Cmd::Enroll(e) => controller.adopt(e),
            Cmd::Forget => controller.forget(),
            Cmd::Send(op) => controller.submit(op),
            Cmd::Logout => controller.logout(),
            Cmd::Do(action) => dispatcher.dispatch(action),
        })
    };

    // Once: read a console link (removing it from the address bar), else the stored one; start
    // the refresh timer.
    {
        let controller = Rc::clone(&controller);
        let dispatcher = state.dispatcher();
        let on_cmd = on_cmd.clone();
        use_effect_with((), move |()| {
            if let Some(doc) = web_sys::window().and_then(|w| w.document()) {
                doc.set_title("Bank console · Secure ATM");
            }
            let stop_following = follow_enrollment_links(move |link| match link {
                Ok(e) => on_cmd.emit(Cmd::Enroll(e)),
                Err(err) => on_cmd.emit(Cmd::Do(ConsoleAction::Invalid(
                    ConsoleForm::Enroll,
                    err.message().into(),
                ))),
            });
            wasm_bindgen_futures::spawn_local(ask_atm_url(dispatcher.clone()));
            controller.restore();
            let ticker = Rc::clone(&controller);
            let interval = gloo_timers::callback::Interval::new(REFRESH_MS, move || {
                for op in ticker.read(ConsoleDriver::refresh).unwrap_or_default() {
                    ticker.submit(op);
                }
            });
            move || {
                drop(interval);
                stop_following();
            }
        });
    }

    let state: Rc<ConsoleState> = Rc::new((*state).clone());
    let main = match (&state.terminal, &state.operator) {
        (None, _) => html! { <EnrollScreen state={Rc::clone(&state)} on_cmd={on_cmd.clone()} /> },
        (Some(_), None) => {
            html! { <LoginScreen state={Rc::clone(&state)} on_cmd={on_cmd.clone()} /> }
        }
        (Some(_), Some(_)) => {
            html! { <dashboard::Dashboard state={Rc::clone(&state)} on_cmd={on_cmd.clone()} /> }
        }
    };
    let dismiss = {
        let on_cmd = on_cmd.clone();
        Callback::from(move |_: MouseEvent| on_cmd.emit(Cmd::Do(ConsoleAction::DismissNotice)))
    };
    html! {
        <>
            <a class="skip" href="#main">{ "Skip to content" }</a>
            <header class="top console-top">
                <Brand name="Bank console" />
                <LinkBadge link={state.link} enrolled={state.terminal.is_some()}
                    id="console-link-state" refused="Console refused" />
            </header>
            <Banner link={state.link} id="console-banner" down={BANK_DOWN} refused={REFUSED} />
            <main id="main" tabindex="-1" class="console">
                <div class="notices" role="status" aria-live="polite">
                    if let Some(text) = &state.notice {
                        <div class="notice" id="console-notice">
                            <p>{ text }</p>
                            <button type="button" class="icon-button" aria-label="Dismiss message" onclick={dismiss}>{ "×" }</button>
                        </div>
                    }
                </div>
                { main }
            </main>
            <footer class="foot">
                if let Some(terminal) = &state.terminal {
                    <span>{ "Console terminal " }<code id="console-terminal">{ terminal }</code></span>
                    if state.operator.is_none() {
                        <ForgetButton on_cmd={on_cmd.clone()} />
                    }
                }
                <span class="muted">{ "All encryption happens in this page. Keys never leave it." }</span>
            </footer>
        </>
    }
}

#[derive(Properties, PartialEq)]
struct ForgetProps {
    on_cmd: Callback<Cmd>,
}

/// "Forget this console", confirmed inline (a second click) rather than by a dialog.
#[function_component(ForgetButton)]
fn forget_button(props: &ForgetProps) -> Html {
    let asking = use_state(|| false);
    if *asking {
        let forget = {
            let on_cmd = props.on_cmd.clone();
            Callback::from(move |_: MouseEvent| on_cmd.emit(Cmd::Forget))
        };
        let cancel = {
            let asking = asking.clone();
            Callback::from(move |_: MouseEvent| asking.set(false))
        };
        html! {
            <span class="confirm-forget">
                { "Forget the console key in this browser? " }
                <button type="button" class="link-button" id="console-forget-confirm" onclick={forget}>{ "Yes, forget it" }</button>
                <button type="button" class="link-button plain" onclick={cancel}>{ "Cancel" }</button>
            </span>
        }
    } else {
        let ask = Callback::from(move |_: MouseEvent| asking.set(true));
        html! {
            <button type="button" class="link-button" id="console-forget" onclick={ask}>{ "Forget this console" }</button>
        }
    }
}

/// "This console is not enrolled": how to get a console link, and a field to paste one.
#[function_component(EnrollScreen)]
fn enroll_screen(props: &Props) -> Html {
    let link = use_node_ref();
    let onsubmit = {
        let (link, on_cmd) = (link.clone(), props.on_cmd.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            match Enrollment::from_link(&value(&link)) {
                Ok(enrollment) => {
                    clear(&link);
                    on_cmd.emit(Cmd::Enroll(enrollment));
                }
                Err(err) => on_cmd.emit(Cmd::Do(ConsoleAction::Invalid(
                    ConsoleForm::Enroll,
                    err.message().into(),
                ))),
            }
        })
    };
    let error = props
        .state
        .error(ConsoleForm::Enroll)
        .map(|e| AttrValue::from(e.to_owned()));
    html! {
        <section class="card narrow" aria-labelledby="console-enroll-title">
            <h1 id="console-enroll-title">{ "This console is not enrolled" }</h1>
            <p>
                { "A bank console is a terminal of its own. On the bank's machine, run " }
                <code>{ "bank-server operator add NAME" }</code>
                { ": it creates the operator and prints a console link (it looks like " }
                <code>{ "http://…/console#terminal=t-…&key=…&bank=…" }</code>
                { "). Open that link in this browser, or paste it below." }
            </p>
            <p class="muted">{ "The console key is kept in this browser only, apart from any ATM key it holds." }</p>
            <form id="console-enroll-form" onsubmit={onsubmit} novalidate=true>
                <Field id="console-enroll-link" label="Console link" kind="password" node={link}
                    autocomplete="off" placeholder="http://…/console#terminal=t-…&key=…&bank=…"
                    error={error} />
                <button type="submit" class="button" id="console-enroll-submit">{ "Enroll this console" }</button>
            </form>
        </section>
    }
}

/// The operator login.
#[function_component(LoginScreen)]
fn login_screen(props: &Props) -> Html {
    let username = use_node_ref();
    let password = use_node_ref();
    {
        let username = username.clone();
        use_effect_with((), move |()| focus(&username));
    }
    let onsubmit = {
        let (username, password, on_cmd) =
            (username.clone(), password.clone(), props.on_cmd.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            match login_fields(&username, &password, "Please enter your operator username.") {
                Ok((username, password)) => {
                    on_cmd.emit(Cmd::Send(ConsoleOp::Login { username, password }));
                }
                Err(missing) => on_cmd.emit(Cmd::Do(ConsoleAction::Invalid(
                    ConsoleForm::Login,
                    missing.message().to_owned(),
                ))),
            }
        })
    };
    let busy = props.state.is_pending(ConsoleForm::Login);
    html! {
        <section class="card narrow" aria-labelledby="op-login-title">
            <h1 id="op-login-title">{ "Operator login" }</h1>
            <p class="muted">{ "Log in with your operator account. Customer accounts cannot open the console." }</p>
            <form id="op-login-form" onsubmit={onsubmit} novalidate=true aria-busy={busy.then_some("true")}>
                <Field id="op-username" label="Operator username" node={username} autocomplete="username" />
                <Field id="op-password" label="Password" kind="password" node={password}
                    autocomplete="current-password" />
                <div aria-live="assertive">
                    if let Some(e) = props.state.error(ConsoleForm::Login) {
                        <p class="error" id="op-login-error" role="alert">{ e }</p>
                    }
                </div>
                <Submit id="op-login-submit" label="Log in" busy_label="Logging in…" busy={busy} />
            </form>
        </section>
    }
}

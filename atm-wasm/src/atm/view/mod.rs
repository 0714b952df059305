//! The app component: owns the page state (a reducer) and the bank controller, and picks the
//! screen: enrollment, login and registration, or the dashboard.

mod auth;
mod dashboard;
mod enroll;

use std::rc::Rc;

use protocol::enrollment::EnrollmentCode;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast as _;
use yew::prelude::*;

use crate::atm::clock::IdleClock;
use crate::atm::driver::Op;
use crate::atm::state::{Action, Form, Link, State};
use crate::link::code_net::CodeEnrollment;
use crate::link::controller::Controller;
use crate::link::enroll::Enrollment;
use crate::link::Driver as _;
use crate::widgets;

/// What a screen asks the app to do.
pub(crate) enum Cmd {
    /// Enroll this browser as a terminal.
    Enroll(Enrollment),
    /// Enroll this browser with a one-time code (an exchange with the bank first).
    EnrollCode(EnrollmentCode),
    /// Forget the terminal.
    Forget,
    /// Send an operation to the bank.
    Send(Op),
    /// Log out.
    Logout,
    /// A form's input was refused before sending.
    Invalid(Form, String),
    /// Clear these forms' errors.
    Clear(Vec<Form>),
    /// Hide the notice.
    Dismiss,
}

/// The whole page.
#[function_component(App)]
pub(crate) fn app() -> Html {
    let state = use_reducer(State::default);
    let clock = {
        let dispatcher = state.dispatcher();
        use_memo((), move |()| {
            IdleClock::new(Callback::from(move |a: Action| dispatcher.dispatch(a)))
        })
    };
    let controller = {
        let dispatcher = state.dispatcher();
        let clock = Rc::clone(&clock);
        use_memo((), move |()| {
            Controller::<State>::new(Callback::from(move |a: Action| {
                clock.heard(&a);
                dispatcher.dispatch(a);
            }))
        })
    };
    let codes = use_memo((), |()| CodeEnrollment::default());

    let on_cmd = {
        let controller = Rc::clone(&controller);
        let dispatcher = state.dispatcher();
        let codes = Rc::clone(&codes);
        let clock = Rc::clone(&clock);
        Callback::from(move |cmd: Cmd| match cmd {
            Cmd::Enroll(e) => controller.adopt(e),
            Cmd::EnrollCode(code) => {
                if codes.busy() {
                    return;
                }
                dispatcher.dispatch(Action::Pending(Form::EnrollCode));
                let (controller, dispatcher) = (Rc::clone(&controller), dispatcher.clone());
                codes.start(&code, move |outcome| match outcome {
                    Ok(e) => controller.adopt(e),
                    Err(failure) => dispatcher.dispatch(Action::EnrollFailed(failure)),
                });
            }
            Cmd::Forget => controller.forget(),
            Cmd::Send(op) => {
                let kind = op.kind();
                if !controller.read(|d| d.busy(kind)).unwrap_or(false) {
                    clock.touch();
                    controller.submit(op);
                }
            }
            Cmd::Logout => controller.logout(),
            Cmd::Invalid(form, message) => dispatcher.dispatch(Action::Invalid(form, message)),
            Cmd::Clear(forms) => dispatcher.dispatch(Action::ClearErrors(forms)),
            Cmd::Dismiss => dispatcher.dispatch(Action::DismissNotice),
        })
    };

    // Once: read an enrollment link (removing it from the address bar), else the stored one;
    // start the idle clock and the activity listeners.
    {
        let controller = Rc::clone(&controller);
        let clock = Rc::clone(&clock);
        let on_cmd = on_cmd.clone();
        use_effect_with((), move |()| {
            // A link opened in a tab that already shows the ATM only changes the fragment.
            let stop_following = widgets::follow_enrollment_links(move |link| match link {
                Ok(e) => on_cmd.emit(Cmd::Enroll(e)),
                Err(err) => on_cmd.emit(Cmd::Invalid(Form::Enroll, err.message().into())),
            });
            controller.restore();
            let ticker = Rc::clone(&clock);
            let interval =
                gloo_timers::callback::Interval::new(1_000, move || ticker.tick(&controller));
            let on_activity = Closure::<dyn Fn()>::new(move || clock.touch());
            if let Some(doc) = web_sys::window().and_then(|w| w.document()) {
                for kind in ["keydown", "pointerdown", "input"] {
                    let _ = doc.add_event_listener_with_callback(
                        kind,
                        on_activity.as_ref().unchecked_ref(),
                    );
                }
            }
            move || {
                drop(interval);
                stop_following();
                if let Some(doc) = web_sys::window().and_then(|w| w.document()) {
                    for kind in ["keydown", "pointerdown", "input"] {
                        let _ = doc.remove_event_listener_with_callback(
                            kind,
                            on_activity.as_ref().unchecked_ref(),
                        );
                    }
                }
            }
        });
    }

    let state: Rc<State> = Rc::new((*state).clone());
    let on_forget = {
        let on_cmd = on_cmd.clone();
        Callback::from(move |_: MouseEvent| {
            let sure = web_sys::window()
                .and_then(|w| {
                    w.confirm_with_message(
                        "Forget this terminal? This browser will need a new enrollment code or link to work as an ATM again.",
                    )
                    .ok()
                })
                .unwrap_or(false);
            if sure {
                on_cmd.emit(Cmd::Forget);
            }
        })
    };
    let on_dismiss = {
        let on_cmd = on_cmd.clone();
        Callback::from(move |_: MouseEvent| on_cmd.emit(Cmd::Dismiss))
    };
    let refused = state.terminal.is_some() && state.link == Link::Refused;
    let main = match (&state.terminal, &state.account) {
        // Nothing but forgetting works while the bank refuses this terminal: no forms.
        _ if refused => html! { <Refused on_forget={on_forget.clone()} /> },
        (None, _) => {
            html! { <enroll::EnrollScreen state={Rc::clone(&state)} on_cmd={on_cmd.clone()} /> }
        }
        (Some(_), None) => {
            html! { <auth::AuthScreen state={Rc::clone(&state)} on_cmd={on_cmd.clone()} /> }
        }
        (Some(_), Some(_)) => {
            html! { <dashboard::Dashboard state={Rc::clone(&state)} on_cmd={on_cmd.clone()} /> }
        }
    };
    html! {
        <>
            <a class="skip" href="#main">{ "Skip to content" }</a>
            <header class="top">
                <widgets::Brand name="Secure ATM" />
                <widgets::LinkBadge link={state.link} enrolled={state.terminal.is_some()}
                    id="link-state" refused="Terminal refused" />
            </header>
            <widgets::Banner link={state.link} id="bank-banner" down={BANK_DOWN} refused={REFUSED} />
            <main id="main" tabindex="-1">
                <widgets::Notice notice={state.notice.clone()} idle={state.idle_warning} on_dismiss={on_dismiss} />
                { main }
            </main>
            <footer class="foot">
                if let Some(terminal) = &state.terminal {
                    <span>{ "Terminal " }<code>{ terminal }</code></span>
                    if state.account.is_none() && !refused {
                        <button type="button" class="link-button" onclick={on_forget}>{ "Forget this terminal" }</button>
                    }
                }
                <span class="muted">{ "All encryption happens in this page. Keys never leave it." }</span>
            </footer>
        </>
    }
}

#[derive(Properties, PartialEq)]
struct RefusedProps {
    on_forget: Callback<MouseEvent>,
}

/// What a refused terminal offers: only what works, forgetting it to enroll again.
#[function_component(Refused)]
fn refused(props: &RefusedProps) -> Html {
    let heading = use_node_ref();
    {
        let heading = heading.clone();
        use_effect_with((), move |()| widgets::focus(&heading));
    }
    html! {
        <section class="card narrow" id="refused-panel" aria-labelledby="refused-title">
            <h1 id="refused-title" tabindex="-1" ref={heading}>{ "This terminal cannot be used" }</h1>
            <p>{ "The bank refuses this terminal, or could not prove it is the bank it was enrolled with. Logging in and transactions cannot work until the terminal is enrolled again." }</p>
            <p class="muted">{ "Forgetting removes this terminal's key from this browser. Then enroll with a new code or link from the bank." }</p>
            <button type="button" class="button" id="refused-forget" onclick={props.on_forget.clone()}>
                { "Forget this terminal and enroll again" }
            </button>
        </section>
    }
}

const BANK_DOWN: &str = "The bank cannot be reached right now. The ATM keeps trying; anything \
                         you started is sent once the connection is back.";

const REFUSED: &str = "The bank did not accept this terminal, or could not prove it is the bank \
                       this terminal was enrolled with. Its key may have been revoked or the bank \
                       reset. Forget this terminal and enroll it again with a new code or link.";

/// An `oninput` that clears these forms' errors once the person changes the field, or `None`
/// while none of them shows one (so typing does not re-render the page on every key).
fn clears(on_cmd: &Callback<Cmd>, state: &State, forms: &[Form]) -> Option<Callback<InputEvent>> {
    if !forms.iter().any(|f| state.error(*f).is_some()) {
        return None;
    }
    let (on_cmd, forms) = (on_cmd.clone(), forms.to_vec());
    Some(Callback::from(move |_: InputEvent| {
        on_cmd.emit(Cmd::Clear(forms.clone()));
    }))
}

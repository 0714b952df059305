//! The enrollment screen: "This ATM is not enrolled", the enrollment by a one-time code first
//! (recommended), then a form for the terminal id, key and bank key (or a whole enrollment link
//! pasted into the first field).

use std::rc::Rc;

use yew::prelude::*;
use zeroize::Zeroizing;

use super::{clears, Cmd};
use crate::atm::state::{enroll_form_of, Form, State};
use crate::link::enroll::{EnrollError, Enrollment};
use crate::link::enroll_code::parse_code;
use crate::widgets::{clear, value, Field, Submit};

#[derive(Properties, PartialEq)]
pub(crate) struct Props {
    pub(crate) state: Rc<State>,
    pub(crate) on_cmd: Callback<Cmd>,
}

fn error(state: &State, form: Form) -> Option<AttrValue> {
    state.error(form).map(|e| AttrValue::from(e.to_owned()))
}

#[function_component(EnrollScreen)]
pub(crate) fn enroll_screen(props: &Props) -> Html {
    html! {
        <section class="card narrow" aria-labelledby="enroll-title">
            <h1 id="enroll-title">{ "This ATM is not enrolled" }</h1>
            <p>{ "Before this browser can work as an ATM, the bank must enroll it." }</p>
            <CodeForm state={Rc::clone(&props.state)} on_cmd={props.on_cmd.clone()} />
            <p class="or" aria-hidden="true"><span>{ "or" }</span></p>
            <LinkForm state={Rc::clone(&props.state)} on_cmd={props.on_cmd.clone()} />
        </section>
    }
}

/// The one-time code: read, checked, and handed over (the field emptied) before any
/// connection; the exchange's outcome comes back through the state.
#[function_component(CodeForm)]
fn code_form(props: &Props) -> Html {
    let code = use_node_ref();
    let busy = props.state.is_pending(Form::EnrollCode);
    let onsubmit = {
        let (code, on_cmd) = (code.clone(), props.on_cmd.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            if busy {
                return;
            }
            let text = Zeroizing::new(value(&code));
            match parse_code(&text) {
                Ok(parsed) => {
                    // The attempt uses the code up, whatever its outcome.
                    clear(&code);
                    on_cmd.emit(Cmd::EnrollCode(parsed));
                }
                Err(err) => on_cmd.emit(Cmd::Invalid(Form::EnrollCode, err.message().into())),
            }
        })
    };
    html! {
        <div class="recommended" role="group" aria-labelledby="enroll-code-title">
            <h2 id="enroll-code-title">
                { "Enroll with a one-time code" }
                <span class="pill">{ "Recommended" }</span>
            </h2>
            <p class="muted">{ "The safest way: this ATM and the bank make its key together, so the key never travels, not even inside the code." }</p>
            <form id="enroll-code-form" onsubmit={onsubmit} novalidate=true aria-busy={busy.then_some("true")}>
                <Field id="enroll-code" label="Enrollment code" node={code} named={false}
                    placeholder="e-0123456789-…" autocomplete="off"
                    hint="Ask the bank for one. It works once, within 10 minutes."
                    error={error(&props.state, Form::EnrollCode)}
                    oninput={clears(&props.on_cmd, &props.state, &[Form::EnrollCode])} />
                <Submit id="enroll-code-submit" label="Enroll with this code"
                    busy_label="Enrolling…" busy={busy} />
            </form>
        </div>
    }
}

/// The enrollment link, or its three parts typed by hand.
#[function_component(LinkForm)]
fn link_form(props: &Props) -> Html {
    let terminal = use_node_ref();
    let key = use_node_ref();
    let bank = use_node_ref();
    let onsubmit = {
        let (terminal, key, bank, on_cmd) = (
            terminal.clone(),
            key.clone(),
            bank.clone(),
            props.on_cmd.clone(),
        );
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let first = value(&terminal);
            let typed = !(first.contains('#') || first.contains("terminal="));
            let parsed = if !typed {
                Enrollment::from_link(&first)
            } else if first.trim().is_empty() {
                Err(EnrollError::BadTerminal)
            } else {
                Enrollment::from_fields(&first, &value(&key), &value(&bank))
            };
            match parsed {
                Ok(enrollment) => {
                    clear(&bank);
                    clear(&key);
                    clear(&terminal);
                    on_cmd.emit(Cmd::Enroll(enrollment));
                }
                Err(err) => on_cmd.emit(Cmd::Invalid(
                    enroll_form_of(err, typed),
                    err.message().into(),
                )),
            }
        })
    };
    html! {
        <div role="group" aria-labelledby="enroll-link-title">
            <h2 id="enroll-link-title">{ "Enroll with a link or a key" }</h2>
            <p>
                { "Open the enrollment link the bank printed (it looks like " }
                <code>{ "http://…/#terminal=t-…&key=…&bank=…" }</code>
                { ") in this browser, or copy the terminal id, key and bank key into the form below." }
            </p>
            <p class="muted">{ "The key is kept in this browser only and is never sent to anyone: the bank already has it. The bank key is public: with it this ATM checks that it is talking to the real bank." }</p>
            <form id="enroll-form" onsubmit={onsubmit} novalidate=true>
                <Field id="enroll-terminal" label="Terminal id" node={terminal} named={false}
                    placeholder="t-0123456789ab" autocomplete="off"
                    hint="Or paste the whole enrollment link here."
                    error={error(&props.state, Form::Enroll)}
                    oninput={clears(&props.on_cmd, &props.state, &[Form::Enroll])} />
                <Field id="enroll-key" label="Terminal key" kind="password" node={key} named={false}
                    autocomplete="off" hint="64 characters, digits and the letters a to f."
                    error={error(&props.state, Form::EnrollKey)}
                    oninput={clears(&props.on_cmd, &props.state, &[Form::EnrollKey])} />
                <Field id="enroll-bank" label="Bank key" node={bank}
                    placeholder="0123…:abcd…" autocomplete="off"
                    hint="The bank id, a colon, then 64 characters, digits and a to f."
                    error={error(&props.state, Form::EnrollBank)}
                    oninput={clears(&props.on_cmd, &props.state, &[Form::EnrollBank])} />
                <button type="submit" class="button ghost" id="enroll-submit">{ "Enroll this ATM" }</button>
            </form>
        </div>
    }
}

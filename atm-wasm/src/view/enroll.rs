//! The enrollment screen: "This ATM is not enrolled", and a form for the terminal id, key and
//! bank key (or a whole enrollment link pasted into the first field).

use std::rc::Rc;

use yew::prelude::*;

use super::widgets::{clear, value, Field};
use super::Cmd;
use crate::enroll::{EnrollError, Enrollment};
use crate::state::{enroll_form_of, Form, State};

#[derive(Properties, PartialEq)]
pub(crate) struct Props {
    pub(crate) state: Rc<State>,
    pub(crate) on_cmd: Callback<Cmd>,
}

#[function_component(EnrollScreen)]
pub(crate) fn enroll_screen(props: &Props) -> Html {
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
    let error = |form: Form| {
        props
            .state
            .error(form)
            .map(|e| AttrValue::from(e.to_owned()))
    };
    html! {
        <section class="card narrow" aria-labelledby="enroll-title">
            <h1 id="enroll-title">{ "This ATM is not enrolled" }</h1>
            <p>
                { "Before this browser can work as an ATM, the bank must enroll it. Open the enrollment link the bank printed (it looks like " }
                <code>{ "http://…/#terminal=t-…&key=…&bank=…" }</code>
                { ") in this browser, or copy the terminal id, key and bank key into the form below." }
            </p>
            <p class="muted">{ "The key is kept in this browser only and is never sent to anyone: the bank already has it. The bank key is public: with it this ATM checks that it is talking to the real bank." }</p>
            <form id="enroll-form" onsubmit={onsubmit} novalidate=true>
                <Field id="enroll-terminal" label="Terminal id" node={terminal}
                    placeholder="t-0123456789ab" autocomplete="off"
                    hint="Or paste the whole enrollment link here."
                    error={error(Form::Enroll)} />
                <Field id="enroll-key" label="Terminal key" kind="password" node={key}
                    autocomplete="off" hint="64 characters, digits and the letters a to f."
                    error={error(Form::EnrollKey)} />
                <Field id="enroll-bank" label="Bank key" node={bank}
                    placeholder="0123…:abcd…" autocomplete="off"
                    hint="The bank id, a colon, then 64 characters, digits and a to f."
                    error={error(Form::EnrollBank)} />
                <button type="submit" class="button" id="enroll-submit">{ "Enroll this ATM" }</button>
            </form>
        </section>
    }
}

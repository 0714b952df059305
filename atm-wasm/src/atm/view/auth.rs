//! Login and registration, side by side (stacked on a phone).

use std::rc::Rc;

use protocol::{FullName, Password, Username, MIN_PASSWORD_CHARS};
use yew::prelude::*;

use super::{clears, Cmd};
use crate::atm::driver::Op;
use crate::atm::state::{Form, State};
use crate::widgets::{clear, login_fields, value, Field, Missing, Submit};

const USERNAME_RULE: &str =
    "Use 1 to 250 characters: lowercase letters, digits, dots, dashes or underscores.";

#[derive(Properties, PartialEq)]
pub(crate) struct Props {
    pub(crate) state: Rc<State>,
    pub(crate) on_cmd: Callback<Cmd>,
}

fn err(state: &State, form: Form) -> Option<AttrValue> {
    state.error(form).map(|e| AttrValue::from(e.to_owned()))
}

#[function_component(AuthScreen)]
pub(crate) fn auth_screen(props: &Props) -> Html {
    html! {
        <div class="auth">
            <h1 class="visually-hidden">{ "Welcome to the Secure ATM" }</h1>
            <LoginForm state={Rc::clone(&props.state)} on_cmd={props.on_cmd.clone()} />
            <RegisterForm state={Rc::clone(&props.state)} on_cmd={props.on_cmd.clone()} />
        </div>
    }
}

#[function_component(LoginForm)]
fn login_form(props: &Props) -> Html {
    let username = use_node_ref();
    let password = use_node_ref();
    let onsubmit = {
        let (username, password, on_cmd) =
            (username.clone(), password.clone(), props.on_cmd.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            on_cmd.emit(Cmd::Clear(vec![Form::Login, Form::LoginUsername]));
            match login_fields(&username, &password, "Please enter your username.") {
                Ok((username, password)) => {
                    on_cmd.emit(Cmd::Send(Op::Login { username, password }))
                }
                Err(missing @ Missing::Username(_)) => {
                    on_cmd.emit(Cmd::Invalid(Form::LoginUsername, missing.message().into()))
                }
                Err(missing @ Missing::Password(_)) => {
                    on_cmd.emit(Cmd::Invalid(Form::Login, missing.message().into()));
                }
            }
        })
    };
    let busy = props.state.is_pending(Form::Login);
    let (s, c) = (&props.state, &props.on_cmd);
    html! {
        <section class="card" aria-labelledby="login-title">
            <h2 id="login-title">{ "Log in" }</h2>
            <p class="muted">{ "Welcome back. Log in to see your account." }</p>
            <form id="login-form" onsubmit={onsubmit} novalidate=true aria-busy={busy.then_some("true")}>
                <Field id="login-username" label="Username" node={username} autocomplete="username"
                    error={err(s, Form::LoginUsername)} oninput={clears(c, s, &[Form::LoginUsername])} />
                <Field id="login-password" label="Password" kind="password" node={password}
                    autocomplete="current-password" error={err(s, Form::Login)}
                    oninput={clears(c, s, &[Form::Login])} />
                <Submit id="login-submit" label="Log in" busy_label="Logging in…" busy={busy} />
            </form>
        </section>
    }
}

#[function_component(RegisterForm)]
fn register_form(props: &Props) -> Html {
    let username = use_node_ref();
    let full_name = use_node_ref();
    let password = use_node_ref();
    let confirm = use_node_ref();
    let onsubmit = {
        let nodes = (
            username.clone(),
            full_name.clone(),
            password.clone(),
            confirm.clone(),
        );
        let on_cmd = props.on_cmd.clone();
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let (username, full_name, password, confirm) = &nodes;
            on_cmd.emit(Cmd::Clear(vec![
                Form::Register,
                Form::RegisterUsername,
                Form::RegisterFullName,
                Form::RegisterPassword,
                Form::RegisterConfirm,
            ]));
            let name = Username::new(value(username).trim());
            let full = FullName::new(value(full_name).trim());
            let pass = value(password);
            let again = value(confirm);
            let mut ok = true;
            let mut invalid = |form, text: &str| {
                ok = false;
                on_cmd.emit(Cmd::Invalid(form, text.to_owned()));
            };
            if name.is_none() {
                invalid(Form::RegisterUsername, USERNAME_RULE);
            }
            if full.is_none() {
                invalid(
                    Form::RegisterFullName,
                    "Please enter your name (up to 100 characters).",
                );
            }
            if pass.chars().count() < MIN_PASSWORD_CHARS || pass.len() > Password::MAX_LEN {
                invalid(
                    Form::RegisterPassword,
                    &format!(
                        "Please choose a password of at least {MIN_PASSWORD_CHARS} characters."
                    ),
                );
            } else if pass != again {
                invalid(Form::RegisterConfirm, "The two passwords are not the same.");
            }
            let (Some(username_v), Some(full_v), Some(password_v), true) =
                (name, full, Password::new(pass), ok)
            else {
                return;
            };
            clear(password);
            clear(confirm);
            on_cmd.emit(Cmd::Send(Op::Register {
                username: username_v,
                full_name: full_v,
                password: password_v,
            }));
        })
    };
    let busy = props.state.is_pending(Form::Register);
    let (s, c) = (&props.state, &props.on_cmd);
    html! {
        <section class="card" aria-labelledby="register-title">
            <h2 id="register-title">{ "Open an account" }</h2>
            <p class="muted">{ "New here? It takes a moment." }</p>
            <form id="register-form" onsubmit={onsubmit} novalidate=true aria-busy={busy.then_some("true")}>
                <Field id="register-username" label="Username" node={username}
                    autocomplete="username" hint="Lowercase letters, digits, dots, dashes, underscores."
                    error={err(s, Form::RegisterUsername)}
                    oninput={clears(c, s, &[Form::RegisterUsername, Form::Register])} />
                <Field id="register-fullname" label="Full name" node={full_name}
                    autocomplete="name" error={err(s, Form::RegisterFullName)}
                    oninput={clears(c, s, &[Form::RegisterFullName, Form::Register])} />
                <Field id="register-password" label="Password" kind="password" node={password}
                    autocomplete="new-password" hint="At least 8 characters."
                    error={err(s, Form::RegisterPassword)}
                    oninput={clears(c, s, &[Form::RegisterPassword, Form::Register])} />
                <Field id="register-confirm" label="Confirm password" kind="password" node={confirm}
                    autocomplete="new-password" error={err(s, Form::RegisterConfirm)}
                    oninput={clears(c, s, &[Form::RegisterConfirm, Form::Register])} />
                if let Some(e) = s.error(Form::Register) {
                    <p class="error" role="alert" id="register-error">{ e }</p>
                }
                <Submit id="register-submit" label="Open account" busy_label="Opening…" busy={busy} class="secondary" />
            </form>
        </section>
    }
}

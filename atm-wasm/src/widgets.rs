//! Small shared pieces of the ATM and the console: the brand, the link badge and banner, the
//! notice bar, labelled fields with their error, the submit button that shows it is working,
//! reading a login form, and following enrollment links in the address bar.

use protocol::{Password, Username};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast as _;
use yew::prelude::*;

use crate::link::enroll::{self as enrollment, EnrollError, Enrollment};
use crate::link::Link;

#[derive(Properties, PartialEq)]
pub(crate) struct BrandProps {
    pub(crate) name: AttrValue,
}

/// The logo and the page's name, top left.
#[function_component(Brand)]
pub(crate) fn brand(props: &BrandProps) -> Html {
    html! {
        <div class="brand">
            <svg class="logo" viewBox="0 0 24 24" aria-hidden="true" focusable="false">
                <path d="M12 2 3 6v6c0 5 3.8 9.3 9 10 5.2-.7 9-5 9-10V6l-9-4Z" />
                <path class="tick" d="m8 12 3 3 5-6" />
            </svg>
            <span>{ props.name.clone() }</span>
        </div>
    }
}

#[derive(Properties, PartialEq)]
pub(crate) struct LinkProps {
    pub(crate) link: Link,
    #[prop_or_default]
    pub(crate) enrolled: bool,
    /// The badge's element id.
    pub(crate) id: AttrValue,
    /// What the badge says when the bank refuses this terminal.
    pub(crate) refused: AttrValue,
}

/// The connection state, top right.
#[function_component(LinkBadge)]
pub(crate) fn link_badge(props: &LinkProps) -> Html {
    if !props.enrolled {
        return html! {};
    }
    let class = match props.link {
        Link::Up => "badge ok",
        Link::Connecting | Link::Idle => "badge wait",
        Link::Down(_) | Link::Refused => "badge bad",
    };
    let text = match props.link {
        Link::Idle => AttrValue::Static("Not enrolled"),
        Link::Connecting => AttrValue::Static("Connecting…"),
        Link::Up => AttrValue::Static("Connected securely"),
        Link::Down(_) => AttrValue::Static("Bank unreachable"),
        Link::Refused => props.refused.clone(),
    };
    html! {
        <span class={class} id={props.id.clone()} data-state={format!("{:?}", props.link)}>
            <span class="dot" aria-hidden="true"></span>
            { text }
        </span>
    }
}

#[derive(Properties, PartialEq)]
pub(crate) struct BannerProps {
    pub(crate) link: Link,
    /// The banner's element id.
    pub(crate) id: AttrValue,
    /// What it says while the bank cannot be reached.
    pub(crate) down: AttrValue,
    /// What it says when the bank refuses this terminal.
    pub(crate) refused: AttrValue,
}

/// A clear banner when the bank cannot be reached or refuses this terminal.
#[function_component(Banner)]
pub(crate) fn banner(props: &BannerProps) -> Html {
    let text = match props.link {
        Link::Down(n) if n >= 1 => props.down.clone(),
        Link::Refused => props.refused.clone(),
        _ => return html! {},
    };
    html! {
        <div class="banner" role="alert" id={props.id.clone()}>
            <svg viewBox="0 0 24 24" aria-hidden="true" focusable="false"><path d="M12 3 2 21h20L12 3Zm0 6v5m0 3v.5" /></svg>
            <p>{ text }</p>
        </div>
    }
}

#[derive(Properties, PartialEq)]
pub(crate) struct NoticeProps {
    pub(crate) notice: Option<String>,
    pub(crate) idle: Option<u64>,
    /// Hides the notice.
    pub(crate) on_dismiss: Callback<MouseEvent>,
}

/// Confirmations and the idle warning, announced politely to screen readers.
#[function_component(Notice)]
pub(crate) fn notice(props: &NoticeProps) -> Html {
    html! {
        <div class="notices" role="status" aria-live="polite">
            if let Some(secs) = props.idle {
                <div class="notice warn" id="idle-warning">
                    // The countdown changes every second: shown, but said once (below).
                    <p aria-hidden="true">{ format!("For your safety you will be logged out in {secs} seconds. Press any key or tap to stay.") }</p>
                    <p class="visually-hidden">{ "For your safety you will soon be logged out for inactivity. Press any key or tap to stay." }</p>
                </div>
            }
            if let Some(text) = &props.notice {
                <div class="notice" id="notice">
                    <p>{ text }</p>
                    <button type="button" class="icon-button" aria-label="Dismiss message" onclick={props.on_dismiss.clone()}>{ "×" }</button>
                </div>
            }
        </div>
    }
}

#[derive(Properties, PartialEq)]
pub(crate) struct FieldProps {
    pub(crate) id: AttrValue,
    pub(crate) label: AttrValue,
    #[prop_or(AttrValue::Static("text"))]
    pub(crate) kind: AttrValue,
    #[prop_or_default]
    pub(crate) node: NodeRef,
    #[prop_or_default]
    pub(crate) autocomplete: Option<AttrValue>,
    #[prop_or_default]
    pub(crate) hint: Option<AttrValue>,
    #[prop_or_default]
    pub(crate) error: Option<AttrValue>,
    #[prop_or_default]
    pub(crate) inputmode: Option<AttrValue>,
    #[prop_or_default]
    pub(crate) placeholder: Option<AttrValue>,
    #[prop_or_default]
    pub(crate) oninput: Option<Callback<InputEvent>>,
    /// `false` for a secret: the input gets no `name`, so a form the browser submits by
    /// itself (were the page's code to stop before it could prevent that) carries nothing of
    /// it into the address bar.
    #[prop_or(true)]
    pub(crate) named: bool,
}

/// A label, an input, an optional hint and the error about it (linked for screen readers).
#[function_component(Field)]
pub(crate) fn field(props: &FieldProps) -> Html {
    let hint_id = format!("{}-hint", props.id);
    let error_id = format!("{}-error", props.id);
    let mut described = Vec::new();
    if props.hint.is_some() {
        described.push(hint_id.clone());
    }
    if props.error.is_some() {
        described.push(error_id.clone());
    }
    let described = (!described.is_empty()).then(|| described.join(" "));
    html! {
        <div class={classes!("field", props.error.is_some().then_some("has-error"))}>
            <label for={props.id.clone()}>{ props.label.clone() }</label>
            <input
                id={props.id.clone()}
                name={props.named.then(|| props.id.clone())}
                type={props.kind.clone()}
                ref={props.node.clone()}
                autocomplete={props.autocomplete.clone()}
                inputmode={props.inputmode.clone()}
                placeholder={props.placeholder.clone()}
                spellcheck="false"
                autocapitalize="off"
                aria-invalid={props.error.is_some().then_some("true")}
                aria-describedby={described}
                oninput={props.oninput.clone()}
            />
            if let Some(hint) = &props.hint {
                <p class="hint" id={hint_id}>{ hint.clone() }</p>
            }
            if let Some(error) = &props.error {
                <p class="error" id={error_id} role="alert">{ error.clone() }</p>
            }
        </div>
    }
}

#[derive(Properties, PartialEq)]
pub(crate) struct SubmitProps {
    pub(crate) id: AttrValue,
    pub(crate) label: AttrValue,
    pub(crate) busy_label: AttrValue,
    pub(crate) busy: bool,
    #[prop_or_default]
    pub(crate) class: Classes,
}

/// A submit button that is disabled, with a spinner, while its request is under way.
#[function_component(Submit)]
pub(crate) fn submit(props: &SubmitProps) -> Html {
    html! {
        <button
            type="submit"
            id={props.id.clone()}
            class={classes!("button", props.class.clone())}
            disabled={props.busy}
            aria-busy={props.busy.then_some("true")}
        >
            if props.busy {
                <span class="spinner" aria-hidden="true"></span>
                { props.busy_label.clone() }
            } else {
                { props.label.clone() }
            }
        </button>
    }
}

/// The text of an input behind a node ref ("" when it is not mounted).
pub(crate) fn value(node: &NodeRef) -> String {
    node.cast::<web_sys::HtmlInputElement>()
        .map(|i| i.value())
        .unwrap_or_default()
}

/// Empties an input behind a node ref.
pub(crate) fn clear(node: &NodeRef) {
    if let Some(input) = node.cast::<web_sys::HtmlInputElement>() {
        input.set_value("");
    }
}

/// Moves keyboard focus to an element behind a node ref.
pub(crate) fn focus(node: &NodeRef) {
    if let Some(el) = node.cast::<web_sys::HtmlElement>() {
        let _ = el.focus();
    }
}

/// Which login field is missing, with the message shown under it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Missing {
    /// The username is missing or not valid.
    Username(&'static str),
    /// The password is empty.
    Password(&'static str),
}

impl Missing {
    /// What to show.
    pub(crate) fn message(self) -> &'static str {
        match self {
            Self::Username(text) | Self::Password(text) => text,
        }
    }
}

/// The username and password typed into a login form, emptying the password field; or the
/// field at fault (`no_username` when the username is missing or not valid).
pub(crate) fn login_fields(
    username: &NodeRef,
    password: &NodeRef,
    no_username: &'static str,
) -> Result<(Username, Password), Missing> {
    let name = Username::new(value(username).trim()).ok_or(Missing::Username(no_username))?;
    let pass =
        Password::new(value(password)).ok_or(Missing::Password("Please enter your password."))?;
    clear(password);
    Ok((name, pass))
}

/// Reads an enrollment link from the address bar (removing it) now, and again whenever one is
/// opened in this tab (only the fragment changes then); `on_link` gets what each one held.
/// Returns what stops listening, for the effect's cleanup.
pub(crate) fn follow_enrollment_links(
    on_link: impl Fn(Result<Enrollment, EnrollError>) + 'static,
) -> impl FnOnce() {
    let from_link = move || {
        if let Some(link) = enrollment::take_from_location() {
            on_link(link);
        }
    };
    from_link();
    let on_hash = Closure::<dyn Fn()>::new(from_link);
    let window = web_sys::window();
    if let Some(w) = &window {
        let _ = w.add_event_listener_with_callback("hashchange", on_hash.as_ref().unchecked_ref());
    }
    move || {
        if let Some(w) = &window {
            let _ = w.remove_event_listener_with_callback(
                "hashchange",
                on_hash.as_ref().unchecked_ref(),
            );
        }
    }
}

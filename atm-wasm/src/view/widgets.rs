//! Small shared pieces: the link badge and banner, the notice bar, labelled fields with their
//! error, and the submit button that shows it is working.

use yew::prelude::*;

use super::{link_text, Cmd};
use crate::state::Link;

#[derive(Properties, PartialEq)]
pub(crate) struct LinkProps {
    pub(crate) link: Link,
    #[prop_or_default]
    pub(crate) enrolled: bool,
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
    html! {
        <span class={class} id="link-state" data-state={format!("{:?}", props.link)}>
            <span class="dot" aria-hidden="true"></span>
            { link_text(props.link) }
        </span>
    }
}

/// A clear banner when the bank cannot be reached or refuses this terminal.
#[function_component(Banner)]
pub(crate) fn banner(props: &LinkProps) -> Html {
    let text = match props.link {
        Link::Down(n) if n >= 1 => {
            "The bank cannot be reached right now. The ATM keeps trying; anything you started \
             is sent once the connection is back."
        }
        Link::Refused => {
            "The bank did not accept this terminal. Its key may have been revoked or the bank \
             reset. Forget this terminal and enroll it again with a new link."
        }
        _ => return html! {},
    };
    html! {
        <div class="banner" role="alert" id="bank-banner">
            <svg viewBox="0 0 24 24" aria-hidden="true" focusable="false"><path d="M12 3 2 21h20L12 3Zm0 6v5m0 3v.5" /></svg>
            <p>{ text }</p>
        </div>
    }
}

#[derive(Properties, PartialEq)]
pub(crate) struct NoticeProps {
    pub(crate) notice: Option<String>,
    pub(crate) idle: Option<u64>,
    pub(crate) on_cmd: Callback<Cmd>,
}

/// Confirmations and the idle warning, announced politely to screen readers.
#[function_component(Notice)]
pub(crate) fn notice(props: &NoticeProps) -> Html {
    let dismiss = {
        let on_cmd = props.on_cmd.clone();
        Callback::from(move |_: MouseEvent| on_cmd.emit(Cmd::Dismiss))
    };
    html! {
        <div class="notices" role="status" aria-live="polite">
            if let Some(secs) = props.idle {
                <div class="notice warn" id="idle-warning">
                    <p>{ format!("For your safety you will be logged out in {secs} seconds. Press any key or tap to stay.") }</p>
                </div>
            }
            if let Some(text) = &props.notice {
                <div class="notice" id="notice">
                    <p>{ text }</p>
                    <button type="button" class="icon-button" aria-label="Dismiss message" onclick={dismiss}>{ "×" }</button>
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
                name={props.id.clone()}
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

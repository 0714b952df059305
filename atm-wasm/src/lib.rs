//! The browser ATM: a Yew app that runs the whole protocol (handshake, sealed records) in wasm,
//! from the same `protocol` crate as the bank, over a WebSocket to the bank.
//!
//! By feature: [`link`] is what both pages share (the protocol [`link::connection`], the
//! enrollment, the link status and, on wasm32, the socket and the one controller generic over
//! a [`link::Driver`]); [`atm`] is the ATM page and [`console`] the bank console at
//! `/console`, each with its sans-IO driver and its reducer, testable natively and in a
//! browser. The feature folders use `link` and `widgets`, never each other.
//! The browser glue and the components exist only on wasm32.
#![forbid(unsafe_code)]

pub mod atm;
pub mod console;
pub mod link;

#[cfg(target_arch = "wasm32")]
mod widgets;

/// Renders the app into the page's body: the bank console under `/console`, else the ATM.
#[cfg(target_arch = "wasm32")]
pub fn start() {
    let console = web_sys::window()
        .and_then(|w| w.location().pathname().ok())
        .is_some_and(|path| path.starts_with("/console"));
    if console {
        yew::Renderer::<console::view::Console>::new().render();
    } else {
        yew::Renderer::<atm::view::App>::new().render();
    }
}

//! The browser ATM: a Yew app that runs the whole protocol (handshake, sealed records) in wasm,
//! from the same `protocol` crate as the bank, over a WebSocket to the bank.
//!
//! The logic the page depends on is plain Rust, testable natively and in a browser:
//! [`amount`] (typed amounts to cents), [`enroll`] (terminal id, key and bank pin),
//! [`enroll_code`] (enrollment by a one-time code, as an exchange fed frames), [`driver`]
//! (the session over the protocol crate), [`idle`] (idle logout) and [`state`] (the page's
//! reducer).
//! Both drivers speak over one [`connection`] (handshake and records). The bank console at
//! `/console` has its own driver and reducer in [`console`].
//! The browser glue (`socket`, `net`, `code_net`) and the components (`view`) exist only on
//! wasm32.
#![forbid(unsafe_code)]

pub mod amount;
pub mod connection;
pub mod console;
pub mod driver;
pub mod enroll;
pub mod enroll_code;
pub mod idle;
pub mod state;

#[cfg(target_arch = "wasm32")]
mod code_net;
#[cfg(target_arch = "wasm32")]
pub mod keystore;
#[cfg(target_arch = "wasm32")]
mod net;
#[cfg(target_arch = "wasm32")]
mod socket;
#[cfg(target_arch = "wasm32")]
mod view;

/// Renders the app into the page's body: the bank console under `/console`, else the ATM.
#[cfg(target_arch = "wasm32")]
pub fn start() {
    let console = web_sys::window()
        .and_then(|w| w.location().pathname().ok())
        .is_some_and(|path| path.starts_with("/console"));
    if console {
        yew::Renderer::<view::console::Console>::new().render();
    } else {
        yew::Renderer::<view::App>::new().render();
    }
}

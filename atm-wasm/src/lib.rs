//! The browser ATM: a Yew app that runs the whole protocol (handshake, sealed records) in wasm,
//! from the same `protocol` crate as the bank, over a WebSocket to the bank.
//!
//! The logic the page depends on is plain Rust, testable natively and in a browser:
//! [`amount`] (typed amounts to cents), [`enroll`] (terminal id and key), [`driver`] (the
//! session over the protocol crate), [`idle`] (idle logout) and [`state`] (the page's reducer).
//! The browser glue (`net`) and the components (`view`) exist only on wasm32.
#![forbid(unsafe_code)]

pub mod amount;
pub mod driver;
pub mod enroll;
pub mod idle;
pub mod state;

#[cfg(target_arch = "wasm32")]
mod net;
#[cfg(target_arch = "wasm32")]
mod view;

/// Renders the app into the page's body.
#[cfg(target_arch = "wasm32")]
pub fn start() {
    yew::Renderer::<view::App>::new().render();
}

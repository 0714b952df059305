//! Entry point of the web ATM bundle: renders the Yew app into the page (wasm32 only).
#![forbid(unsafe_code)]

fn main() {
    #[cfg(target_arch = "wasm32")]
    atm_wasm::start();
}

//! The ATM page: its sans-IO session [`driver`] (with the follow-up rules), its reducer
//! ([`state`]), typed amounts ([`amount`]) and the idle-logout rule ([`idle`]); the browser
//! glue and the components (`view`) exist only on wasm32.

pub mod amount;
pub mod driver;
pub mod idle;
pub mod state;

#[cfg(target_arch = "wasm32")]
pub(crate) mod clock;
#[cfg(target_arch = "wasm32")]
pub(crate) mod view;

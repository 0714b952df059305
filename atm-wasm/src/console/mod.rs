//! The bank console (an operator's page at `/console`): its own sans-IO session [`driver`],
//! its reducer ([`state`]) and exact display helpers ([`format`]); the browser glue and the
//! components (`view`) exist only on wasm32.

pub mod driver;
pub mod format;
pub mod state;

#[cfg(target_arch = "wasm32")]
pub(crate) mod view;

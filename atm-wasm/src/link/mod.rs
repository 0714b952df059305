//! The link layer both pages share: one bank connection's protocol state ([`connection`]),
//! enrollment by link or fields ([`enroll`]) and by a one-time code ([`enroll_code`]), the
//! link's status ([`status`]), the terminal key kept non-extractable in the browser
//! (`keystore`, wasm32), and the [`Driver`] trait that the one controller is generic
//! over. The browser glue (the socket, the code exchange and the controller) exists only on
//! wasm32.

pub mod connection;
pub mod driver;
pub mod enroll;
pub mod enroll_code;
pub mod status;

#[cfg(target_arch = "wasm32")]
pub(crate) mod code_net;
#[cfg(target_arch = "wasm32")]
pub(crate) mod controller;
#[cfg(target_arch = "wasm32")]
pub mod keystore;
#[cfg(target_arch = "wasm32")]
pub(crate) mod socket;

pub use driver::{Accepted, Driver, News, Page};
pub use status::Link;

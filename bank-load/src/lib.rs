//! Load generator and benchmark runner for the bank: concurrent sessions doing transactions,
//! handshakes or holding idle sessions, the bare WebSocket echo floor they are compared with,
//! the matrix behind `cargo xtask bench` (with its sustained, sync-counting and restart runs,
//! and its PostgreSQL rows),
//! and the `docs/PERFORMANCE.md` report.
#![forbid(unsafe_code)]

pub mod echo;
pub mod endurance;
pub mod load;
pub mod matrix;
pub mod pg_report;
pub mod postgres;
pub mod proc;
pub mod report;
mod servers;
pub mod stats;
pub mod strace;

pub use load::{run, LoadError, Mode, Options, Target};
pub use stats::Summary;

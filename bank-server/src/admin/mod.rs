//! Bank administration, for the command-line subcommands: terminals and operators (on the
//! stopped bank's database or through the running bank's admin socket) and the auditor's
//! commands (verify, show).
//!
//! Dependencies point one way: `socket` uses `ops`, which uses `terminals`; all three refuse
//! with an [`AdminError`] (`error`); `auditor` stands alone.

mod auditor;
mod error;
mod ops;
mod socket;
mod terminals;

pub use auditor::{
    chain_title, format_event, read_audit_keys, verify_audit, verify_chains, verify_checkpoint,
    AuditCheckError, VerifiedChain,
};
pub use error::AdminError;
pub use ops::{execute, TerminalOp, TerminalReply, TerminalSummary};
pub(crate) use socket::serve_socket;
pub use socket::{admin_socket_path, terminal_op};
pub use terminals::{
    add_operator, add_operator_hashed, add_terminal, add_terminal_with, issue_enrollment_code,
    operator_credentials, revoke_terminal, ENROLLMENT_CODE_LIFETIME_MS, MIN_OPERATOR_PASSWORD,
};

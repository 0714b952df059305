//! The subcommands of the `bank-server` command line, one module each, over the arguments
//! they share ([`args`]).

pub(crate) mod args;
pub(crate) mod audit;
pub(crate) mod operator;
pub(crate) mod serve;
pub(crate) mod terminal;

//! End-to-end tests of the web ATM live in `tests/`; this library is empty on purpose.
#![forbid(unsafe_code)]

//! The browser ATM (issue 4 builds the Yew app; for now it only proves the workspace links).
#![forbid(unsafe_code)]

fn main() {
    let _ = protocol::PROTOCOL_VERSION;
}

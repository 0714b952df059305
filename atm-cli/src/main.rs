//! The native `atm` command (issue 5 builds it out; for now it only proves the workspace links).
#![forbid(unsafe_code)]

fn main() {
    eprintln!(
        "atm: not built yet (protocol version {})",
        protocol::PROTOCOL_VERSION
    );
    std::process::exit(255);
}

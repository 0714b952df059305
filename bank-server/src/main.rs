//! The bank server binary (issue 3 builds it out; for now it only proves the workspace links).
#![forbid(unsafe_code)]

fn main() {
    eprintln!(
        "bank-server: not built yet (protocol version {})",
        protocol::PROTOCOL_VERSION
    );
    std::process::exit(2);
}

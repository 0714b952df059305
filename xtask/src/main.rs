//! Project runner: setup, run, test, bench.
fn main() {}

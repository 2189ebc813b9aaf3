//! The `flotilla` binary: every command of flotilla in one program.

fn main() {}

//! Test node stand-in.

fn main() {}

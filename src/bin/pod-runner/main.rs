//! Test node stand-in.

mod expand;
mod images;
mod status;

fn main() {}

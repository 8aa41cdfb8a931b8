//! The `datamigrate` command line.

fn main() {}

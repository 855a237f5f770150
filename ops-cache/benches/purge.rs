//! Purge benchmark (see the README).

fn main() {}

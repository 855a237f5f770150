//! `opsbook`: the runbooks from a terminal, against the system `opsbook.toml` describes.
//!
//! ```sh
//! cargo run -p ops-examples --bin opsbook -- --system examples/systems/shop.toml check-config
//! cargo run -p ops-examples --bin opsbook -- api-down                 # plan: changes nothing
//! cargo run -p ops-examples --bin opsbook -- api-down --execute       # asks y/N before each change
//! cargo run -p ops-examples --bin opsbook -- journal postmortem RUN_ID
//! ```
//!
//! One subcommand per runbook of `ops_core::runbooks`, plus `backup`, `restore`,
//! `cache-purge`, `journal`, `check-config` and `completions`; `opsbook --help` lists them
//! with the exit statuses. The command line is in `ops_examples::cli`, the system file in
//! `ops_examples::system`.
#![forbid(unsafe_code)]

#[tokio::main]
async fn main() -> std::process::ExitCode {
    ops_examples::cli::main().await
}

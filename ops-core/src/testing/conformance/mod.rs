//! Behaviour tests every backend runs against the real system, and the fakes run too.
//!
//! Each function panics (like `assert!`) when the backend breaks the contract, so a backend's
//! integration test is one call:
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! use ops_core::testing::{conformance, MemoryJournal};
//! conformance::journal::run_all(&MemoryJournal::default()).await;
//! # });
//! ```

pub mod cache;
pub mod database;
pub mod journal;
pub mod lockdown;
pub mod metrics;
pub mod notifier;
pub mod platform;
pub mod probe;
pub mod resources;

/// Ask `gone` every 100 ms until it says yes; panic with `what` after ten seconds.
async fn within_ten_seconds<F, Fut>(what: &str, mut gone: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let until = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while !gone().await {
        assert!(tokio::time::Instant::now() < until, "{what}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

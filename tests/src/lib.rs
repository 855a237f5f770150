//! Real services for integration tests: PostgreSQL, Redis, demo-api and Prometheus in
//! containers from the locally built images (see `docs/testing.md`), each on a per-test
//! Docker network and removed when its handle drops, plus fault helpers that stop, kill,
//! restart or pause a container mid-test.
//!
//! ```no_run
//! use ops_tests::{Stack, require};
//!
//! #[tokio::test(flavor = "multi_thread")]
//! async fn api_is_ready_with_its_dependencies() {
//!     let stack = Stack::new();
//!     let pg = require!(stack.postgres().await);
//!     let redis = require!(stack.redis().await);
//!     let api = require!(stack.demo_api(&pg, &redis).await);
//!     let (status, _) = api.get("/health/ready").await.unwrap();
//!     assert_eq!(status, 200);
//! }
//! ```
//!
//! When the Docker engine or an image is missing, a helper returns
//! [`ServiceError::Unavailable`]. [`require!`] turns that into a skipped test (a message on
//! stderr and an early return) outside CI, and into a failure naming `scripts/provision`
//! when `CI=true`.
//!
//! Image names come from `OPSBOOK_IMAGE_POSTGRES`, `OPSBOOK_IMAGE_REDIS`,
//! `OPSBOOK_IMAGE_PROMETHEUS` and `OPSBOOK_IMAGE_DEMO_API`. `OPSBOOK_TEST_PG_URL` and
//! `OPSBOOK_TEST_REDIS_URL` point the helpers at running servers instead of containers.
#![forbid(unsafe_code)]

pub mod bench;
mod container;
mod engine;
mod error;
mod provider_api;
mod services;
mod settings;

pub use container::Service;
pub use engine::ensure_engine;
pub use error::{ServiceError, skip_or_fail};
pub use provider_api::provider_api;
pub use services::{
    DemoApi, OPERATOR_GRANTS, Postgres, Prometheus, READY_TIMEOUT, Redis, Stack, scan_keys,
    start_demo_api, start_postgres, start_prometheus, start_redis,
};
pub use settings::{ImageRef, Images, in_ci};

/// Unwraps a service helper's result, or skips the test.
///
/// `Ok(v)` gives `v`. An [`ServiceError::Unavailable`] (no Docker engine, image not built)
/// prints the reason and returns from the test outside CI, and panics with
/// "run scripts/provision" when `CI=true`. Any other error panics.
/// The one-argument form returns `()`; pass the value to return as the second argument
/// in tests that return a `Result`: `require!(stack.redis().await, Ok(()))`.
#[macro_export]
macro_rules! require {
    ($service:expr) => {
        $crate::require!($service, ())
    };
    ($service:expr, $skipped:expr) => {
        match $service {
            ::std::result::Result::Ok(value) => value,
            ::std::result::Result::Err(err) => {
                $crate::skip_or_fail(&err);
                return $skipped;
            }
        }
    };
}

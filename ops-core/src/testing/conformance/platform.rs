//! Conformance tests for [`Platform`](crate::Platform) backends: the whole suite is
//! [`run_all`] over a [`PlatformFixture`]; its parts are public for a backend that wants one.

mod secrets;
mod suite;
pub use secrets::*;
pub use suite::*;

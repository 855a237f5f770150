//! Cross-crate integration test support.
#![forbid(unsafe_code)]

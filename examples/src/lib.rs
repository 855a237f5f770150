//! Placeholder binary list; binaries land with their issues.
#![forbid(unsafe_code)]

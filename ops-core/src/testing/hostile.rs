//! Checks for what hostile input may make of an error: the same check for every crate's
//! property tests.

use crate::error::OpsError;
use crate::text;

/// The longest message (Display, chain, target or detail) any input may produce.
pub const MESSAGE_MAX: usize = 2000;

/// Asserts that `shown`, a message built from hostile input, is bounded and holds no raw
/// control or invisible character ([`text::must_escape`]).
///
/// # Panics
/// When it is longer than [`MESSAGE_MAX`] characters or holds such a character.
///
/// # Examples
/// ```
/// ops_core::testing::assert_safe_message("invalid name \"a\\nb\"");
/// ```
pub fn assert_safe_message(shown: &str) {
    assert!(
        shown.chars().count() <= MESSAGE_MAX,
        "unbounded message: {} characters",
        shown.chars().count()
    );
    assert!(
        !shown.chars().any(text::must_escape),
        "raw control character in {shown:?}"
    );
}

/// Asserts [`assert_safe_message`] of every way `err` is shown: `Display`, [`OpsError::chain`],
/// its target and detail.
///
/// # Panics
/// As [`assert_safe_message`].
///
/// # Examples
/// ```
/// let err = "run\r\nFORGED".parse::<ops_core::run::RunId>().unwrap_err();
/// ops_core::testing::assert_safe_error(&err);
/// ```
pub fn assert_safe_error(err: &OpsError) {
    assert_safe_message(&err.to_string());
    assert_safe_message(&err.chain());
    assert_safe_message(err.target());
    if let Some(detail) = err.detail() {
        assert_safe_message(detail);
    }
}

//! Untrusted text on its way into errors, logs, reports and notifications.
//!
//! Two kinds of outside text reach opsbook's messages: input it validates (a run id, a
//! severity, a workload ref, a probe host) and answers peers send back (an error page, a
//! Prometheus error, a certificate subject). Both pass through this module before they are
//! quoted anywhere:
//!
//! - [`quote`] and [`bounded`] shorten text and escape every control character (CR, LF, ESC,
//!   NUL, C1 controls) and the invisible characters that reorder or hide text (bidi overrides,
//!   zero-width spaces, line separators), so a value can neither forge a log line nor grow a
//!   message without bound. Both are idempotent: quoting quoted text changes nothing.
//! - [`redact_credentials`] hides the credentials that text from a system under diagnosis
//!   carries by shape (SQL password literals, `password=` pairs, `Authorization` headers,
//!   bearer tokens, URL user info); [`evidence`] applies it before cutting.
//! - [`markdown_inline`], [`markdown_code`] and [`markdown_cell`] keep untrusted text inside
//!   the Markdown element it was put in (no new block, no broken table).
//! - [`Redactor`] knows the secrets a client sent (URL paths and query tokens, header values,
//!   routing keys, passwords) and strips every one of them, in the encodings a peer may echo,
//!   from what the peer answered ([`Redactor::peer_text`]).
//!
//! # Examples
//! ```
//! use ops_core::text;
//! assert_eq!(text::quote("run\r\n\u{1b}[2Jforged"), r"run\r\n\u{1b}[2Jforged");
//! assert!(text::quote(&"x".repeat(100_000)).chars().count() <= text::QUOTE_MAX);
//! let secrets = text::Redactor::new().with_url("https://hooks.example/services/T0/B0/CANARY-7f3a9");
//! let echoed = secrets.peer_text(b"404: no route for /services/T0/B0/CANARY-7f3a9\n", true);
//! assert!(!echoed.contains("CANARY-7f3a9"));
//! ```

mod credentials;
mod markdown;
mod redact;

pub use credentials::redact_credentials;
pub use markdown::{markdown_cell, markdown_code, markdown_inline};
pub use redact::{Redactor, percent_decode};

/// The most characters [`quote`] keeps of a quoted input, ellipsis included.
pub const QUOTE_MAX: usize = 120;

/// The most characters kept of a peer's answer ([`Redactor::peer_text`]).
pub const PEER_MAX: usize = 300;

/// What [`Redactor`] puts where a secret was.
pub const REDACTED: &str = "[redacted]";

/// Quote untrusted input in an error message: at most [`QUOTE_MAX`] characters, control and
/// invisible characters escaped (see [`bounded`]).
///
/// # Examples
/// ```
/// assert_eq!(ops_core::text::quote("prod"), "prod");
/// assert_eq!(ops_core::text::quote("a\nb"), r"a\nb");
/// let long = ops_core::text::quote(&"é".repeat(1000));
/// assert!(long.ends_with("…(2000 bytes)"));
/// assert!(long.chars().count() <= ops_core::text::QUOTE_MAX);
/// ```
pub fn quote(value: &str) -> String {
    bounded(value, QUOTE_MAX)
}

/// `value` with control and invisible characters escaped, cut to at most `max` characters.
///
/// Escapes are Rust's: `\n`, `\r`, `\t`, `\0`, and `\u{..}` for the rest. A cut value ends
/// with `…(N bytes)` naming the input's full length, and the whole result, that suffix
/// included, stays within `max` characters (a `max` too small for the suffix gives the
/// suffix alone). A value that already fits and has nothing to escape comes back unchanged,
/// so `bounded(&bounded(v, n), n) == bounded(v, n)`.
///
/// # Examples
/// ```
/// use ops_core::text::bounded;
/// assert_eq!(bounded("ok", 10), "ok");
/// assert_eq!(bounded("\u{202e}evil", 20), r"\u{202e}evil");
/// assert_eq!(bounded("abcdefghijklmnopqrstuvwxyz", 16), "abcde…(26 bytes)");
/// ```
pub fn bounded(value: &str, max: usize) -> String {
    let mut out = String::with_capacity(value.len().min(max.saturating_mul(4)));
    let mut chars = 0;
    for c in value.chars() {
        let before = out.len();
        push_escaped(&mut out, c);
        chars += out[before..].chars().count();
        if chars > max {
            return cut(value, max);
        }
    }
    out
}

/// The longest escaped prefix of `value` that leaves room for the `…(N bytes)` suffix.
fn cut(value: &str, max: usize) -> String {
    let suffix = format!("…({} bytes)", value.len());
    let room = max.saturating_sub(suffix.chars().count());
    let mut out = String::new();
    let mut chars = 0;
    let mut one = String::new();
    for c in value.chars() {
        one.clear();
        push_escaped(&mut one, c);
        let n = one.chars().count();
        if chars + n > room {
            break;
        }
        chars += n;
        out.push_str(&one);
    }
    out.push_str(&suffix);
    out
}

/// Text from a system under diagnosis (a session's query, slow-query text, a log line, an
/// event) fit for a finding: credentials redacted first ([`redact_credentials`], so a cut
/// never leaves half a password behind), then control and invisible characters escaped and
/// the result cut to `max` characters ([`bounded`]).
///
/// # Examples
/// ```
/// let shown = ops_core::text::evidence("ALTER ROLE app PASSWORD 'hunter2-canary'\n", 60);
/// assert_eq!(shown, r"ALTER ROLE app PASSWORD '[redacted]'\n");
/// let cut = ops_core::text::evidence(&format!("{} password=hunter2-canary", "x".repeat(40)), 50);
/// assert!(!cut.contains("hunter2"));
/// ```
pub fn evidence(text: &str, max: usize) -> String {
    bounded(&redact_credentials(text), max)
}

/// `value` with control and invisible characters escaped, not shortened (for text whose
/// length the caller bounds, such as a condition shown with a caret under an error).
///
/// # Examples
/// ```
/// assert_eq!(ops_core::text::escape("a\tb"), r"a\tb");
/// ```
pub fn escape(value: &str) -> String {
    bounded(value, usize::MAX)
}

/// Whether `c` must not appear raw in a message: a control character, or an invisible one
/// that reorders, hides or breaks text (bidi controls, zero-width characters, line and
/// paragraph separators, the byte-order mark).
///
/// # Examples
/// ```
/// assert!(ops_core::text::must_escape('\u{1b}'));
/// assert!(ops_core::text::must_escape('\u{2028}'));
/// assert!(!ops_core::text::must_escape('é'));
/// ```
pub fn must_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200b}'..='\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{2069}'
                | '\u{feff}'
        )
}

fn push_escaped(out: &mut String, c: char) {
    use std::fmt::Write as _;
    if !must_escape(c) {
        out.push(c);
        return;
    }
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\0' => out.push_str("\\0"),
        c => {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_clean_text_is_unchanged() {
        for s in ["", "prod", "shop/service/api", r"cache\[v2\]:*", "naïve ✓"] {
            assert_eq!(quote(s), s);
        }
    }

    #[test]
    fn control_and_invisible_characters_are_escaped() {
        assert_eq!(quote("a\r\nb"), r"a\r\nb");
        assert_eq!(quote("\u{1b}[31m"), r"\u{1b}[31m");
        assert_eq!(quote("\0"), r"\0");
        assert_eq!(quote("\u{85}"), r"\u{85}");
        assert_eq!(quote("x\u{200b}y"), r"x\u{200b}y");
    }

    #[test]
    fn long_text_is_cut_with_its_length() {
        let q = quote(&"a".repeat(100_000));
        assert!(q.ends_with("…(100000 bytes)"), "{q}");
        assert_eq!(q.chars().count(), QUOTE_MAX);
        let q = quote(&"\n".repeat(1000));
        assert!(q.starts_with(r"\n\n"));
        assert!(q.chars().count() <= QUOTE_MAX);
        assert_eq!(bounded("abcdef", 3), "…(6 bytes)");
    }
}

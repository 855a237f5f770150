//! Untrusted text inside Markdown: it stays in the element it was put in.
//!
//! A report's title, evidence or error may come from a system under diagnosis. Raw, a line
//! break in it starts a new block (`# heading`, a list item, a table row) and a `|` in a table
//! cell splits the row. These helpers keep each value on its line and inside its element.

use super::escape;

/// Whether `c` breaks a line in some Markdown renderer or editor.
fn breaks_line(c: char) -> bool {
    matches!(
        c,
        '\n' | '\r' | '\t' | '\u{b}' | '\u{c}' | '\u{85}' | '\u{2028}' | '\u{2029}'
    )
}

/// `text` for running Markdown text (a list item, a heading, a paragraph): line breaks and
/// tabs become spaces, other control and invisible characters are escaped
/// ([`super::escape`]), and a leading block marker (`#`, `>`, `-`, `<!--`, `1.`, a fence…)
/// gets a backslash, so it can never start a new block, even at the start of a line.
///
/// # Examples
/// ```
/// use ops_core::text::markdown_inline;
/// assert_eq!(markdown_inline("2 of 3 pods\n# in CrashLoopBackOff"), "2 of 3 pods # in CrashLoopBackOff");
/// assert_eq!(markdown_inline("a\u{1b}[2Jb"), r"a\u{1b}[2Jb");
/// assert_eq!(markdown_inline("  # not a heading"), r"\# not a heading");
/// assert_eq!(markdown_inline("1. not a list"), r"1\. not a list");
/// ```
pub fn markdown_inline(text: &str) -> String {
    let flat: String = text
        .chars()
        .map(|c| if breaks_line(c) { ' ' } else { c })
        .collect();
    let flat = flat.trim_start_matches(' ');
    let digits = flat.bytes().take_while(u8::is_ascii_digit).count();
    let marker = match flat.as_bytes().get(digits) {
        Some(b'.' | b')') if digits > 0 => Some(digits),
        Some(b) if digits == 0 && BLOCK_MARKERS.contains(b) => Some(0),
        _ => None,
    };
    match marker {
        Some(at) => escape(&format!("{}\\{}", &flat[..at], &flat[at..])),
        None => escape(flat),
    }
}

/// ASCII punctuation that starts a block at the start of a line (headings, quotes, lists,
/// HTML blocks, tables, fences, setext and thematic breaks, footnotes, link definitions).
const BLOCK_MARKERS: &[u8] = b"#>-+*=<|`~_[!:";

/// `text` as a complete inline code span, backticks included: every control character
/// escaped (a line break shows as `\n`, so the span stays on its line) and backticks
/// replaced by `'` (so the span cannot be closed early).
///
/// # Examples
/// ```
/// use ops_core::text::markdown_code;
/// assert_eq!(markdown_code("ERROR `x`\n| a | b |"), r"`ERROR 'x'\n| a | b |`");
/// ```
pub fn markdown_code(text: &str) -> String {
    format!("`{}`", escape(&text.replace('`', "'")))
}

/// `text` for a Markdown table cell: [`markdown_inline`], then `\` and `|` escaped so the
/// cell cannot split its row.
///
/// # Examples
/// ```
/// use ops_core::text::markdown_cell;
/// assert_eq!(markdown_cell("failed: a | b\nc"), r"failed: a \| b c");
/// assert_eq!(markdown_cell(r"a\|b"), r"a\\\|b");
/// ```
pub fn markdown_cell(text: &str) -> String {
    markdown_inline(text)
        .replace('\\', "\\\\")
        .replace('|', "\\|")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_breaks_a_line() {
        let hostile = "a\r\n# h\u{2028}- x\u{85}| y |\u{b}z\tw";
        for shown in [
            markdown_inline(hostile),
            markdown_code(hostile),
            markdown_cell(hostile),
        ] {
            assert!(!shown.chars().any(breaks_line), "{shown:?}");
        }
        assert!(!markdown_cell(hostile).contains(" | "));
    }
}

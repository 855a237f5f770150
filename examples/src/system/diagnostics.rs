//! Errors in a system file, each pointing at its line, column and key.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// One thing wrong in a system file: where (line and column, from 1), which key (dotted,
/// e.g. `thresholds.rollout_timeout`), and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The line, from 1 (0 when the error is about the file as a whole).
    pub line: usize,
    /// The column, from 1.
    pub column: usize,
    /// The key, dotted (`services.api.health`); empty when there is none.
    pub key: String,
    /// What is wrong, and how to write it right where that helps.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "{}:{}: ", self.line, self.column)?;
        }
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        f.write_str(&self.message)
    }
}

/// Every error found in a system file, in the order of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors {
    /// The file (or `<text>` when parsed from a string).
    pub file: PathBuf,
    /// The errors, at least one.
    pub errors: Vec<ConfigError>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{}:{e}", self.file.display())?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Collects errors against the text they are about.
#[derive(Debug)]
pub(crate) struct Collector<'a> {
    source: &'a str,
    pub(crate) errors: Vec<ConfigError>,
}

impl<'a> Collector<'a> {
    pub(crate) fn new(source: &'a str) -> Self {
        Self {
            source,
            errors: Vec::new(),
        }
    }

    /// An error about `key` at the byte range `span`.
    pub(crate) fn at(
        &mut self,
        span: Range<usize>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) {
        let (line, column) = line_column(self.source, span.start);
        self.errors.push(ConfigError {
            line,
            column,
            key: key.into(),
            message: message.into(),
        });
    }

    /// The errors in file order, or `Ok` when there are none.
    pub(crate) fn finish(mut self, file: &Path) -> Result<(), ConfigErrors> {
        if self.errors.is_empty() {
            return Ok(());
        }
        self.errors.sort_by_key(|e| (e.line, e.column));
        Err(ConfigErrors {
            file: file.to_owned(),
            errors: self.errors,
        })
    }
}

/// Line and column (from 1, in characters) of byte `offset` in `source`.
pub(crate) fn line_column(source: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(source.len());
    while !source.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &source[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// The dotted key at byte `offset`: the last table header before it (`[a.b]`, `[[a]]`) and
/// the key that starts its line, if any (`c = …` gives `a.b.c`). Used for the errors the
/// TOML parser reports, which carry a position but no key.
pub(crate) fn key_at(source: &str, offset: usize) -> String {
    let mut offset = offset.min(source.len());
    while !source.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &source[..offset];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line_end = source[line_start..]
        .find('\n')
        .map_or(source.len(), |i| line_start + i);
    let line = source[line_start..line_end].trim();
    let mut table = String::new();
    for l in before[..line_start].lines() {
        let l = l.trim();
        if let Some(h) = l.strip_prefix('[') {
            let h = h.trim_start_matches('[');
            if let Some(end) = h.find(']') {
                h[..end].trim().clone_into(&mut table);
            }
        }
    }
    if line.starts_with('[') {
        let h = line.trim_start_matches('[');
        return h
            .find(']')
            .map_or_else(String::new, |end| h[..end].trim().to_owned());
    }
    let key = line
        .split_once('=')
        .map(|(k, _)| k.trim().trim_matches('"').to_owned())
        .filter(|k| !k.is_empty() && !k.starts_with('#'));
    match (table.is_empty(), key) {
        (true, Some(k)) => k,
        (false, Some(k)) => format!("{table}.{k}"),
        (_, None) => table,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_lines_and_characters_from_one() {
        let text = "a = 1\nbé = \"x\"\n";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 6), (2, 1));
        assert_eq!(line_column(text, text.find('=').unwrap()), (1, 3));
        assert_eq!(line_column(text, text.rfind('"').unwrap()), (2, 8));
        assert_eq!(line_column(text, 999), (3, 1));
    }

    #[test]
    fn keys_are_dotted_from_the_last_header() {
        let text =
            "name = \"x\"\n[thresholds.db]\nidle_limit = \"5m\"\n[[checks]]\nname = \"db\"\n";
        assert_eq!(key_at(text, 2), "name");
        assert_eq!(
            key_at(text, text.find("idle").unwrap() + 3),
            "thresholds.db.idle_limit"
        );
        assert_eq!(key_at(text, text.rfind("name").unwrap()), "checks.name");
        assert_eq!(
            key_at(text, text.find("[thresholds").unwrap()),
            "thresholds.db"
        );
    }
}

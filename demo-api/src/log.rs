//! Structured logs: one JSON object per line on stdout with `ts`, `level`, `msg` and `fields`.

use std::io::Write as _;

use serde_json::Value;

/// Severity of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Level {
    /// Normal operation.
    Info,
    /// Something degraded but handled.
    Warn,
    /// A failure: a dependency down, a request failed, an injected error.
    Error,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warn => "warn",
            Self::Error => "error",
        }
    }
}

/// Renders one log line (without the trailing newline), keys in the order
/// `ts`, `level`, `msg`, `fields`.
#[allow(
    clippy::needless_pass_by_value,
    reason = "callers hand over a json! literal; taking it by value keeps call sites plain"
)]
pub(crate) fn line(level: Level, msg: &str, fields: Value) -> String {
    format!(
        "{{\"ts\":{},\"level\":{},\"msg\":{},\"fields\":{}}}",
        Value::String(jiff::Timestamp::now().to_string()),
        Value::String(level.as_str().to_owned()),
        Value::String(msg.to_owned()),
        fields,
    )
}

/// Writes one log line to stdout; a closed stdout is ignored.
pub(crate) fn emit(level: Level, msg: &str, fields: Value) {
    let text = line(level, msg, fields);
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
}

/// Logs at info level.
pub(crate) fn info(msg: &str, fields: Value) {
    emit(Level::Info, msg, fields);
}

/// Logs at warn level.
pub(crate) fn warn(msg: &str, fields: Value) {
    emit(Level::Warn, msg, fields);
}

/// Logs at error level.
pub(crate) fn error(msg: &str, fields: Value) {
    emit(Level::Error, msg, fields);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_one_json_object_with_the_four_keys() {
        let text = line(
            Level::Error,
            "redis down",
            serde_json::json!({ "dependency": "redis" }),
        );
        assert!(!text.contains('\n'));
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["level"], "error");
        assert_eq!(value["msg"], "redis down");
        assert_eq!(value["fields"]["dependency"], "redis");
        assert!(
            value["ts"]
                .as_str()
                .unwrap()
                .parse::<jiff::Timestamp>()
                .is_ok()
        );
    }
}

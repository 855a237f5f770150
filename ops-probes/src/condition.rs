//! Conditions: what a check must find, written as strings configuration files can hold.
//!
//! # Grammar
//!
//! ```text
//! condition   = subject ws operator ws value
//! subject     = placeholder | "len(" placeholder ")" | "has(" placeholder ")"
//! placeholder = "[STATUS]" | "[BODY]" path? | "[RESPONSE_TIME]"
//!             | "[CERTIFICATE_EXPIRATION]" | "[CONNECTED]"
//! path        = ( "." key | "[" index "]" )+      e.g. [BODY].data.items[0].id
//!             | "/" json-pointer                   e.g. [BODY]/data/items/0/id
//! operator    = "==" | "!=" | "<=" | ">=" | "<" | ">"
//! value       = "pat(" glob ")" | "any(" v ("," v)* ")" | "re(" regex ")" | text | '"' text '"'
//! ```
//!
//! - Durations (`[RESPONSE_TIME]`, `[CERTIFICATE_EXPIRATION]`) take `300ms`, `2s`, `5m`,
//!   `1h` or `7d`; a bare number is milliseconds.
//! - `==`/`!=` compare numerically when both sides are numbers, else as text (a JSON string
//!   without its quotes). `<`, `<=`, `>`, `>=` need numbers.
//! - `pat(..)` is a glob (`*`, `?`); `any(..)` is a list of values; `re(..)` a regular
//!   expression (an opsbook extension); `has([BODY].x) == true` tests presence.
//! - `[RESPONSE_TIME]` and `[CERTIFICATE_EXPIRATION]` are *soft*: failing them makes a check
//!   degraded, not down.
//!
//! This follows gatus' condition syntax, so its examples work here.
//!
//! # Examples
//! ```
//! use ops_probes::Condition;
//! let c: Condition = "[BODY].status == ok".parse()?;
//! assert_eq!(c.to_string(), "[BODY].status == ok");
//! let err = "[STATUS] 200".parse::<Condition>().unwrap_err();
//! assert_eq!(err.column(), 10);
//! # Ok::<(), ops_probes::ConditionError>(())
//! ```

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use ops_core::probe::Observation;
use ops_core::text::{self, Redactor};
use regex::Regex;
use serde_json::Value;

/// A condition string that did not parse, with the 1-based column of the problem.
///
/// # Examples
/// ```
/// let err = "[STATUS] == ".parse::<ops_probes::Condition>().unwrap_err();
/// assert_eq!(err.column(), 13);
/// assert!(err.to_string().contains("column 13"));
/// assert!(err.render().ends_with("^"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column {column}: {message}")]
pub struct ConditionError {
    input: String,
    column: usize,
    message: String,
}

impl ConditionError {
    fn at(input: &str, byte: usize, message: impl Into<String>) -> Self {
        let column = input[..byte.min(input.len())].chars().count() + 1;
        Self {
            input: input.to_owned(),
            column,
            message: message.into(),
        }
    }

    /// The 1-based column (in characters) where parsing failed.
    pub fn column(&self) -> usize {
        self.column
    }

    /// What was expected.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The condition text.
    pub fn input(&self) -> &str {
        &self.input
    }

    /// The input with a caret under the column, for terminals and logs (control characters
    /// in the input are escaped, and the caret moved to match).
    pub fn render(&self) -> String {
        let before: String = self
            .input
            .chars()
            .take(self.column.saturating_sub(1))
            .collect();
        let width = text::escape(&before).chars().count();
        format!("{}\n{}^", text::escape(&self.input), " ".repeat(width))
    }
}

/// A value a condition looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Placeholder {
    Status,
    /// A JSON pointer into the body; empty means the whole body as text.
    Body {
        pointer: String,
        shown: String,
    },
    ResponseTime,
    CertificateExpiration,
    Connected,
}

impl Placeholder {
    fn is_duration(&self) -> bool {
        matches!(self, Self::ResponseTime | Self::CertificateExpiration)
    }
}

impl fmt::Display for Placeholder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Status => f.write_str("[STATUS]"),
            Self::Body { shown, .. } => write!(f, "[BODY]{shown}"),
            Self::ResponseTime => f.write_str("[RESPONSE_TIME]"),
            Self::CertificateExpiration => f.write_str("[CERTIFICATE_EXPIRATION]"),
            Self::Connected => f.write_str("[CONNECTED]"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Subject {
    Value(Placeholder),
    Len(Placeholder),
    Has(Placeholder),
}

impl Subject {
    fn placeholder(&self) -> &Placeholder {
        match self {
            Self::Value(p) | Self::Len(p) | Self::Has(p) => p,
        }
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Value(p) => write!(f, "{p}"),
            Self::Len(p) => write!(f, "len({p})"),
            Self::Has(p) => write!(f, "has({p})"),
        }
    }
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    fn as_str(self) -> &'static str {
        match self {
            Self::Eq => "==",
            Self::Ne => "!=",
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Gt => ">",
            Self::Ge => ">=",
        }
    }

    fn is_ordering(self) -> bool {
        !matches!(self, Self::Eq | Self::Ne)
    }
}

#[derive(Debug, Clone)]
pub(crate) enum Expected {
    Literal(String),
    Number(f64),
    Pattern(Regex),
    Contains(String),
    Regex(Regex),
    Any(Vec<String>),
}

/// One parsed condition, e.g. `[STATUS] == 200` or `[BODY].queue.depth < 100`.
///
/// Build one with [`str::parse`] (the grammar is in the [module docs](self)) or through the
/// [`crate::HttpProbeBuilder`] methods. `Display` gives the condition back as text.
///
/// # Examples
/// ```
/// use ops_probes::Condition;
/// for text in ["[STATUS] == any(200, 204)", "[RESPONSE_TIME] < 300ms",
///              "len([BODY].items) > 0", "[BODY] == pat(*healthy*)",
///              "[CERTIFICATE_EXPIRATION] > 7d", "has([BODY].errors) == false"] {
///     let c: Condition = text.parse()?;
///     assert_eq!(c.to_string(), text);
/// }
/// # Ok::<(), ops_probes::ConditionError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Condition {
    text: String,
    subject: Subject,
    op: Op,
    expected: Expected,
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for Condition {
    type Err = ConditionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Parser { input: s, pos: 0 }.condition()
    }
}

struct Parser<'a> {
    input: &'a str,
    pos: usize,
}

const PLACEHOLDERS: &str =
    "[STATUS], [BODY], [RESPONSE_TIME], [CERTIFICATE_EXPIRATION] or [CONNECTED]";

impl Parser<'_> {
    fn rest(&self) -> &str {
        &self.input[self.pos..]
    }

    fn err(&self, at: usize, msg: impl Into<String>) -> ConditionError {
        ConditionError::at(self.input, at, msg)
    }

    fn skip_ws(&mut self) {
        let trimmed = self.rest().trim_start();
        self.pos = self.input.len() - trimmed.len();
    }

    fn eat(&mut self, s: &str) -> bool {
        if self.rest().starts_with(s) {
            self.pos += s.len();
            true
        } else {
            false
        }
    }

    fn condition(mut self) -> Result<Condition, ConditionError> {
        self.skip_ws();
        let subject = if self.eat("len(") {
            let p = self.placeholder()?;
            self.close()?;
            Subject::Len(p)
        } else if self.eat("has(") {
            let p = self.placeholder()?;
            self.close()?;
            Subject::Has(p)
        } else {
            Subject::Value(self.placeholder()?)
        };
        self.skip_ws();
        let op_at = self.pos;
        let op = [
            ("==", Op::Eq),
            ("!=", Op::Ne),
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("<", Op::Lt),
            (">", Op::Gt),
        ]
        .into_iter()
        .find(|(t, _)| self.eat(t))
        .map(|(_, op)| op)
        .ok_or_else(|| self.err(op_at, "expected an operator: ==, !=, <, <=, > or >="))?;
        self.skip_ws();
        let value_at = self.pos;
        let raw = self.rest().trim_end();
        if raw.is_empty() {
            return Err(self.err(value_at, "expected a value after the operator"));
        }
        let expected = self.value(&subject, op, raw, value_at)?;
        let text = format!("{subject} {} {raw}", op.as_str());
        Ok(Condition {
            text,
            subject,
            op,
            expected,
        })
    }

    fn close(&mut self) -> Result<(), ConditionError> {
        if self.eat(")") {
            Ok(())
        } else {
            Err(self.err(self.pos, "expected `)`"))
        }
    }

    fn placeholder(&mut self) -> Result<Placeholder, ConditionError> {
        let start = self.pos;
        if !self.eat("[") {
            return Err(self.err(start, format!("expected a placeholder: {PLACEHOLDERS}")));
        }
        let Some(end) = self.rest().find(']') else {
            return Err(self.err(start, "expected `]` closing the placeholder"));
        };
        let name = &self.rest()[..end];
        let p = match name {
            "STATUS" => Placeholder::Status,
            "BODY" => Placeholder::Body {
                pointer: String::new(),
                shown: String::new(),
            },
            "RESPONSE_TIME" => Placeholder::ResponseTime,
            "CERTIFICATE_EXPIRATION" => Placeholder::CertificateExpiration,
            "CONNECTED" => Placeholder::Connected,
            _ => {
                return Err(self.err(
                    start + 1,
                    format!(
                        "unknown placeholder [{}]; expected {PLACEHOLDERS}",
                        text::quote(name)
                    ),
                ));
            }
        };
        self.pos += end + 1;
        if matches!(p, Placeholder::Body { .. }) {
            return self.body_path();
        }
        Ok(p)
    }

    fn body_path(&mut self) -> Result<Placeholder, ConditionError> {
        let start = self.pos;
        let mut pointer = String::new();
        if self.rest().starts_with('/') {
            let len = self
                .rest()
                .find(|c: char| c.is_whitespace() || c == ')')
                .unwrap_or(self.rest().len());
            self.rest()[..len].clone_into(&mut pointer);
            self.pos += len;
        } else {
            loop {
                if self.eat(".") {
                    let at = self.pos;
                    let len = self
                        .rest()
                        .find(|c: char| c.is_whitespace() || matches!(c, '.' | '[' | ']' | ')'))
                        .unwrap_or(self.rest().len());
                    if len == 0 {
                        return Err(self.err(at, "expected a key after `.`"));
                    }
                    let key = &self.rest()[..len];
                    pointer.push('/');
                    pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
                    self.pos += len;
                } else if self.rest().starts_with('[') {
                    let at = self.pos + 1;
                    self.pos += 1;
                    let len = self.rest().find(']').unwrap_or(0);
                    let index = &self.rest()[..len];
                    if len == 0 || !index.bytes().all(|b| b.is_ascii_digit()) {
                        return Err(self.err(at, "expected an array index like [0]"));
                    }
                    pointer.push('/');
                    pointer.push_str(index);
                    self.pos += len + 1;
                } else {
                    break;
                }
            }
        }
        Ok(Placeholder::Body {
            pointer,
            shown: self.input[start..self.pos].to_owned(),
        })
    }

    fn value(
        &self,
        subject: &Subject,
        op: Op,
        raw: &str,
        at: usize,
    ) -> Result<Expected, ConditionError> {
        let func = |name: &str| {
            raw.strip_prefix(name)
                .and_then(|r| r.strip_prefix('('))
                .map(|r| r.strip_suffix(')').ok_or(()))
        };
        if let Some(inner) = func("pat") {
            let inner = inner.map_err(|()| self.err(at + raw.len(), "expected `)`"))?;
            if op.is_ordering() {
                return Err(self.err(at, "pat(..) only works with == and !="));
            }
            return Ok(Expected::Pattern(glob(inner)));
        }
        if let Some(inner) = func("re") {
            let inner = inner.map_err(|()| self.err(at + raw.len(), "expected `)`"))?;
            if op.is_ordering() {
                return Err(self.err(at, "re(..) only works with == and !="));
            }
            return Regex::new(inner).map(Expected::Regex).map_err(|e| {
                let why = text::quote(&e.to_string());
                self.err(at + 3, format!("invalid regular expression: {why}"))
            });
        }
        if let Some(inner) = func("any") {
            let inner = inner.map_err(|()| self.err(at + raw.len(), "expected `)`"))?;
            if op.is_ordering() {
                return Err(self.err(at, "any(..) only works with == and !="));
            }
            let items: Vec<String> = inner.split(',').map(|s| unquote(s.trim())).collect();
            if items.iter().any(String::is_empty) {
                return Err(self.err(at + 4, "any(..) needs comma-separated values"));
            }
            return Ok(Expected::Any(items));
        }
        let text = unquote(raw);
        if subject.placeholder().is_duration() && matches!(subject, Subject::Value(_)) {
            let d = parse_duration(&text)
                .ok_or_else(|| self.err(at, "expected a duration like 300ms, 2s, 5m, 1h or 7d"))?;
            return Ok(Expected::Number(millis(d)));
        }
        if op.is_ordering() {
            return text
                .parse::<f64>()
                .map(Expected::Number)
                .map_err(|_| self.err(at, format!("{} needs a number", op.as_str())));
        }
        Ok(Expected::Literal(text))
    }
}

fn unquote(s: &str) -> String {
    s.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(s)
        .to_owned()
}

fn glob(pattern: &str) -> Regex {
    let mut re = String::from("(?s)^");
    for c in pattern.chars() {
        match c {
            '*' => re.push_str(".*"),
            '?' => re.push('.'),
            c => re.push_str(&regex::escape(&c.to_string())),
        }
    }
    re.push('$');
    // Every character is escaped or one of two fixed fragments: the pattern is valid.
    Regex::new(&re).unwrap_or_else(|_| Regex::new("^$").unwrap_or_else(|_| unreachable!()))
}

#[allow(clippy::cast_precision_loss, reason = "milliseconds well below 2^52")]
fn millis(d: Duration) -> f64 {
    d.as_millis() as f64
}

/// Parses `300ms`, `2s`, `5m`, `1h`, `7d`, or a bare number of milliseconds.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// assert_eq!(ops_probes::condition::parse_duration("7d"), Some(Duration::from_secs(7 * 86_400)));
/// assert_eq!(ops_probes::condition::parse_duration("250"), Some(Duration::from_millis(250)));
/// assert_eq!(ops_probes::condition::parse_duration("soon"), None);
/// ```
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    let secs = |k: u64| n.checked_mul(k).map(Duration::from_secs);
    match unit.trim() {
        "" | "ms" => Some(Duration::from_millis(n)),
        "s" => Some(Duration::from_secs(n)),
        "m" => secs(60),
        "h" => secs(3600),
        "d" => secs(86_400),
        _ => None,
    }
}

/// How many characters of an observed value (a body, a JSON value) an observation shows.
const SHOWN_MAX: usize = 80;

/// What a check saw, for conditions to look at.
#[derive(Debug, Default)]
pub(crate) struct Facts<'a> {
    /// The secrets the request carried, stripped from every value shown.
    pub(crate) secrets: Option<&'a Redactor>,
    pub(crate) status: Option<u16>,
    pub(crate) body: Option<&'a str>,
    pub(crate) json: Option<Value>,
    pub(crate) response_time: Duration,
    pub(crate) certificate_expiration: Option<Duration>,
    pub(crate) connected: bool,
}

#[derive(Debug)]
enum Actual {
    Num(f64),
    Text(String),
    Json(Value),
}

impl Actual {
    fn number(&self) -> Option<f64> {
        match self {
            Self::Num(n) => Some(*n),
            Self::Text(t) => t.trim().parse().ok(),
            Self::Json(Value::Number(n)) => n.as_f64(),
            Self::Json(Value::String(s)) => s.trim().parse().ok(),
            Self::Json(_) => None,
        }
    }

    fn text(&self) -> String {
        match self {
            Self::Num(n) => format_num(*n),
            Self::Text(t) => t.clone(),
            Self::Json(Value::String(s)) => s.clone(),
            Self::Json(v) => v.to_string(),
        }
    }

    fn shown(&self, duration: bool) -> String {
        match self {
            Self::Num(n) if duration => format!("{}ms", format_num(*n)),
            Self::Json(v) => v.to_string(),
            other => other.text(),
        }
    }
}

fn format_num(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{n:.0}")
    } else {
        n.to_string()
    }
}

fn equal(actual: &Actual, expected: &str) -> bool {
    match (actual.number(), expected.trim().parse::<f64>()) {
        (Some(a), Ok(b)) => (a - b).abs() < f64::EPSILON * a.abs().max(b.abs()).max(1.0),
        _ => actual.text() == expected,
    }
}

impl Condition {
    pub(crate) fn status_in(statuses: &[u16]) -> Self {
        let items: Vec<String> = statuses.iter().map(u16::to_string).collect();
        let text = if items.len() == 1 {
            format!("[STATUS] == {}", items[0])
        } else {
            format!("[STATUS] == any({})", items.join(", "))
        };
        Self {
            text,
            subject: Subject::Value(Placeholder::Status),
            op: Op::Eq,
            expected: Expected::Any(items),
        }
    }

    pub(crate) fn status_2xx() -> Self {
        Self {
            text: "[STATUS] == pat(2??)".to_owned(),
            subject: Subject::Value(Placeholder::Status),
            op: Op::Eq,
            expected: Expected::Pattern(glob("2??")),
        }
    }

    pub(crate) fn max_response_time(budget: Duration) -> Self {
        Self {
            text: format!("[RESPONSE_TIME] <= {}ms", budget.as_millis()),
            subject: Subject::Value(Placeholder::ResponseTime),
            op: Op::Le,
            expected: Expected::Number(millis(budget)),
        }
    }

    pub(crate) fn json(pointer: &str, op: &'static str, expected: Expected) -> Self {
        let placeholder = Placeholder::Body {
            pointer: pointer.to_owned(),
            shown: pointer.to_owned(),
        };
        let (subject, op_value, shown) = match op {
            "present" => (Subject::Has(placeholder), Op::Eq, "true".to_owned()),
            "==" => (
                Subject::Value(placeholder),
                Op::Eq,
                expected_text(&expected),
            ),
            "!=" => (
                Subject::Value(placeholder),
                Op::Ne,
                expected_text(&expected),
            ),
            "<" => (
                Subject::Value(placeholder),
                Op::Lt,
                expected_text(&expected),
            ),
            _ => (
                Subject::Value(placeholder),
                Op::Gt,
                expected_text(&expected),
            ),
        };
        let expected = if op == "present" {
            Expected::Literal("true".to_owned())
        } else {
            expected
        };
        Self {
            text: format!("{subject} {} {shown}", op_value.as_str()),
            subject,
            op: op_value,
            expected,
        }
    }

    pub(crate) fn json_literal(v: &Value) -> Expected {
        match v {
            Value::String(s) => Expected::Literal(s.clone()),
            other => Expected::Literal(other.to_string()),
        }
    }

    pub(crate) fn json_number(n: f64) -> Expected {
        Expected::Number(n)
    }

    pub(crate) fn json_regex(re: Regex) -> Expected {
        Expected::Regex(re)
    }

    pub(crate) fn body_contains(needle: &str) -> Self {
        Self {
            text: format!("[BODY] == pat(*{needle}*)"),
            subject: Subject::Value(Placeholder::Body {
                pointer: String::new(),
                shown: String::new(),
            }),
            op: Op::Eq,
            expected: Expected::Contains(needle.to_owned()),
        }
    }

    pub(crate) fn body_matches(re: Regex) -> Self {
        Self {
            text: format!("[BODY] == re({})", re.as_str()),
            subject: Subject::Value(Placeholder::Body {
                pointer: String::new(),
                shown: String::new(),
            }),
            op: Op::Eq,
            expected: Expected::Regex(re),
        }
    }

    /// Whether failing this condition only degrades a check (response time, certificate
    /// expiration) instead of taking it down.
    ///
    /// # Examples
    /// ```
    /// let c: ops_probes::Condition = "[RESPONSE_TIME] < 1s".parse()?;
    /// assert!(c.is_soft());
    /// # Ok::<(), ops_probes::ConditionError>(())
    /// ```
    pub fn is_soft(&self) -> bool {
        matches!(self.subject, Subject::Value(ref p) if p.is_duration())
    }

    /// Whether the condition reads the body as JSON.
    pub(crate) fn needs_json(&self) -> bool {
        matches!(self.subject.placeholder(), Placeholder::Body { pointer, .. } if !pointer.is_empty())
    }

    fn resolve(&self, facts: &Facts<'_>) -> Option<Actual> {
        let p = self.subject.placeholder();
        let value = match p {
            Placeholder::Status => facts.status.map(|s| Actual::Num(f64::from(s))),
            Placeholder::Body { pointer, .. } if pointer.is_empty() => {
                facts.body.map(|b| Actual::Text(b.to_owned()))
            }
            Placeholder::Body { pointer, .. } => facts
                .json
                .as_ref()
                .and_then(|j| j.pointer(pointer))
                .map(|v| Actual::Json(v.clone())),
            Placeholder::ResponseTime => Some(Actual::Num(millis(facts.response_time))),
            Placeholder::CertificateExpiration => {
                facts.certificate_expiration.map(|d| Actual::Num(millis(d)))
            }
            Placeholder::Connected => Some(Actual::Text(facts.connected.to_string())),
        };
        match &self.subject {
            Subject::Value(_) => value,
            Subject::Has(_) => Some(Actual::Text(value.is_some().to_string())),
            Subject::Len(_) => value.map(|v| match v {
                Actual::Json(Value::Array(a)) => Actual::Num(len_f64(a.len())),
                Actual::Json(Value::Object(o)) => Actual::Num(len_f64(o.len())),
                other => Actual::Num(len_f64(other.text().chars().count())),
            }),
        }
    }

    /// Evaluates the condition; the observation names the subject, shows what was seen (with
    /// the request's secrets redacted, control characters escaped, at most 80 characters) and
    /// carries the condition text.
    pub(crate) fn evaluate(&self, facts: &Facts<'_>) -> Observation {
        let name = self.subject.to_string();
        let duration = self.is_soft();
        let Some(actual) = self.resolve(facts) else {
            return Observation::new(name, "missing", false).with_condition(&self.text);
        };
        let matched = match &self.expected {
            Expected::Literal(l) => equal(&actual, l),
            Expected::Number(n) => match (actual.number(), self.op) {
                (Some(a), Op::Lt) => a < *n,
                (Some(a), Op::Le) => a <= *n,
                (Some(a), Op::Gt) => a > *n,
                (Some(a), Op::Ge) => a >= *n,
                (Some(a), Op::Eq | Op::Ne) => (a - n).abs() < f64::EPSILON,
                (None, _) => false,
            },
            Expected::Pattern(re) | Expected::Regex(re) => re.is_match(&actual.text()),
            Expected::Contains(s) => actual.text().contains(s.as_str()),
            Expected::Any(items) => items.iter().any(|i| equal(&actual, i)),
        };
        let ok = if self.op == Op::Ne { !matched } else { matched };
        let shown = actual.shown(duration);
        let shown = match facts.secrets {
            Some(secrets) => secrets.scrub(&shown, SHOWN_MAX),
            None => text::bounded(&shown, SHOWN_MAX),
        };
        Observation::new(name, shown, ok).with_condition(&self.text)
    }
}

#[allow(clippy::cast_precision_loss, reason = "lengths are far below 2^52")]
fn len_f64(n: usize) -> f64 {
    n as f64
}

fn expected_text(e: &Expected) -> String {
    match e {
        Expected::Literal(l) => l.clone(),
        Expected::Number(n) => format_num(*n),
        Expected::Pattern(re) | Expected::Regex(re) => format!("re({})", re.as_str()),
        Expected::Contains(s) => format!("pat(*{s}*)"),
        Expected::Any(items) => format!("any({})", items.join(", ")),
    }
}

/// One sentence naming a failed observation, e.g. `[STATUS] == 200 (got 503)`.
pub(crate) fn describe_failure(o: &Observation) -> String {
    match &o.condition {
        Some(c) => format!("{c} (got {})", o.value),
        None => format!("{} = {}", o.name, o.value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(cond: &str, facts: &Facts<'_>) -> bool {
        cond.parse::<Condition>().unwrap().evaluate(facts).ok
    }

    #[test]
    fn parse_errors_point_at_the_column() {
        let e = "[STATUS] 200".parse::<Condition>().unwrap_err();
        assert_eq!((e.column(), e.message().contains("operator")), (10, true));
        let e = "[STAUTS] == 200".parse::<Condition>().unwrap_err();
        assert_eq!(e.column(), 2);
        assert!(e.message().contains("unknown placeholder [STAUTS]"));
        let e = "[RESPONSE_TIME] < fast".parse::<Condition>().unwrap_err();
        assert_eq!(e.column(), 19);
        let e = "[BODY]. == 1".parse::<Condition>().unwrap_err();
        assert_eq!(e.column(), 8);
        let e = "[BODY].a > high".parse::<Condition>().unwrap_err();
        assert_eq!(e.column(), 12);
        let e = "[BODY] == re(()".parse::<Condition>().unwrap_err();
        assert_eq!(e.column(), 14);
        assert_eq!(e.render(), "[BODY] == re(()\n             ^");
        let e = "STATUS == 1".parse::<Condition>().unwrap_err();
        assert_eq!(e.column(), 1);
    }

    #[test]
    fn evaluates_status_body_and_durations() {
        let body = r#"{"status":"ok","queue":{"depth":3},"items":[{"id":7}],"version":"1.2.3"}"#;
        let facts = Facts {
            status: Some(200),
            body: Some(body),
            json: serde_json::from_str(body).ok(),
            response_time: Duration::from_millis(120),
            certificate_expiration: Some(Duration::from_secs(3 * 86_400)),
            connected: true,
            secrets: None,
        };
        assert!(check("[STATUS] == 200", &facts));
        assert!(!check("[STATUS] != 200", &facts));
        assert!(check("[STATUS] == any(200, 204)", &facts));
        assert!(check("[STATUS] < 300", &facts));
        assert!(check("[BODY].status == ok", &facts));
        assert!(check(r#"[BODY].status == "ok""#, &facts));
        assert!(check("[BODY].queue.depth < 10", &facts));
        assert!(check("[BODY]/queue/depth == 3", &facts));
        assert!(check("[BODY].items[0].id == 7", &facts));
        assert!(check("len([BODY].items) == 1", &facts));
        assert!(check("has([BODY].errors) == false", &facts));
        assert!(check("[BODY].version == re(^1\\.\\d+)", &facts));
        assert!(check("[BODY] == pat(*\"ok\"*)", &facts));
        assert!(check("[RESPONSE_TIME] < 300ms", &facts));
        assert!(!check("[RESPONSE_TIME] < 100", &facts));
        assert!(!check("[CERTIFICATE_EXPIRATION] > 7d", &facts));
        assert!(check("[CONNECTED] == true", &facts));
        assert!(!check("[BODY].missing == 1", &facts));
    }

    #[test]
    fn failure_words_name_condition_and_value() {
        let facts = Facts {
            status: Some(503),
            ..Facts::default()
        };
        let o = "[STATUS] == 200"
            .parse::<Condition>()
            .unwrap()
            .evaluate(&facts);
        assert_eq!(describe_failure(&o), "[STATUS] == 200 (got 503)");
    }
}

//! Label and field selectors: the query-string syntax and `LabelSelector` objects.

use serde_json::Value;

use crate::error::ApiError;
use crate::json;

/// One requirement of a label selector.
#[derive(Debug, Clone, PartialEq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    DoesNotExist(String),
}

/// A parsed label selector; empty matches everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct LabelSelector(Vec<Requirement>);

impl LabelSelector {
    /// Parses the query-string form: `a=b,c!=d,e in (f,g),h notin (i),j,!k`.
    ///
    /// # Errors
    /// 400 `BadRequest` for text that is not a selector.
    pub(crate) fn parse(text: &str) -> Result<Self, ApiError> {
        let bad = || ApiError::bad_request(format!("unable to parse requirement: {text:?}"));
        let mut out = Vec::new();
        for part in split_top_level(text) {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let requirement = if let Some(key) = part.strip_prefix('!') {
                Requirement::DoesNotExist(checked_key(key.trim()).ok_or_else(bad)?)
            } else if let Some((key, values)) = split_set(part, " notin ") {
                Requirement::NotIn(checked_key(key).ok_or_else(bad)?, values.ok_or_else(bad)?)
            } else if let Some((key, values)) = split_set(part, " in ") {
                Requirement::In(checked_key(key).ok_or_else(bad)?, values.ok_or_else(bad)?)
            } else if let Some((key, value)) = part.split_once("!=") {
                Requirement::NotEquals(checked_key(key).ok_or_else(bad)?, value.trim().to_owned())
            } else if let Some((key, value)) =
                part.split_once("==").or_else(|| part.split_once('='))
            {
                Requirement::Equals(checked_key(key).ok_or_else(bad)?, value.trim().to_owned())
            } else {
                Requirement::Exists(checked_key(part).ok_or_else(bad)?)
            };
            out.push(requirement);
        }
        Ok(Self(out))
    }

    /// The selector of a `LabelSelector` object (`matchLabels`, `matchExpressions`).
    ///
    /// # Errors
    /// 400 `BadRequest` for an unknown operator.
    pub(crate) fn from_object(selector: &Value) -> Result<Self, ApiError> {
        let mut out: Vec<Requirement> = json::string_map(selector, &["matchLabels"])
            .into_iter()
            .map(|(k, v)| Requirement::Equals(k, v))
            .collect();
        for expr in json::array_at(selector, &["matchExpressions"]) {
            let key = json::str_at(expr, &["key"]).unwrap_or_default().to_owned();
            let values: Vec<String> = json::array_at(expr, &["values"])
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect();
            out.push(match json::str_at(expr, &["operator"]) {
                Some("In") => Requirement::In(key, values),
                Some("NotIn") => Requirement::NotIn(key, values),
                Some("Exists") => Requirement::Exists(key),
                Some("DoesNotExist") => Requirement::DoesNotExist(key),
                other => {
                    return Err(ApiError::bad_request(format!(
                        "{other:?} is not a valid label selector operator"
                    )));
                }
            });
        }
        Ok(Self(out))
    }

    /// Whether an object with `labels` matches.
    pub(crate) fn matches(&self, labels: &[(String, String)]) -> bool {
        let get = |key: &str| {
            labels
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        };
        self.0.iter().all(|r| match r {
            Requirement::Equals(k, v) => get(k) == Some(v.as_str()),
            Requirement::NotEquals(k, v) => get(k) != Some(v.as_str()),
            Requirement::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            Requirement::NotIn(k, vs) => get(k).is_none_or(|x| vs.iter().all(|v| v != x)),
            Requirement::Exists(k) => get(k).is_some(),
            Requirement::DoesNotExist(k) => get(k).is_none(),
        })
    }

    /// Whether the object's `metadata.labels` match.
    pub(crate) fn matches_object(&self, object: &Value) -> bool {
        self.0.is_empty() || self.matches(&json::string_map(object, &["metadata", "labels"]))
    }

    /// The query-string form, as `status.selector` of a Scale shows it.
    pub(crate) fn to_query(&self) -> String {
        let mut parts: Vec<String> = self
            .0
            .iter()
            .map(|r| match r {
                Requirement::Equals(k, v) => format!("{k}={v}"),
                Requirement::NotEquals(k, v) => format!("{k}!={v}"),
                Requirement::In(k, vs) => format!("{k} in ({})", sorted(vs).join(",")),
                Requirement::NotIn(k, vs) => format!("{k} notin ({})", sorted(vs).join(",")),
                Requirement::Exists(k) => k.clone(),
                Requirement::DoesNotExist(k) => format!("!{k}"),
            })
            .collect();
        parts.sort();
        parts.join(",")
    }
}

fn sorted(values: &[String]) -> Vec<String> {
    let mut v = values.to_vec();
    v.sort();
    v
}

/// Splits on commas outside parentheses.
fn split_top_level(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0_i32;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

/// `key in (a,b)` → key and values; `None` values when the set is malformed.
fn split_set<'a>(part: &'a str, op: &str) -> Option<(&'a str, Option<Vec<String>>)> {
    let (key, rest) = part.split_once(op)?;
    let values = rest
        .trim()
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .map(|inner| {
            inner
                .split(',')
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
                .collect()
        });
    Some((key, values))
}

fn checked_key(key: &str) -> Option<String> {
    let key = key.trim();
    let ok = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
    ok.then(|| key.to_owned())
}

/// A parsed field selector: `metadata.name=x,involvedObject.kind!=Pod`.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct FieldSelector(Vec<(String, bool, String)>);

impl FieldSelector {
    /// Parses the query-string form (`=`, `==`, `!=`).
    ///
    /// # Errors
    /// 400 `BadRequest` for a term without an operator.
    pub(crate) fn parse(text: &str) -> Result<Self, ApiError> {
        let mut out = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (field, equal, value) = if let Some((f, v)) = part.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
                (f, true, v)
            } else {
                return Err(ApiError::bad_request(format!(
                    "invalid selector: '{text}'; can't understand '{part}'"
                )));
            };
            out.push((field.trim().to_owned(), equal, value.trim().to_owned()));
        }
        Ok(Self(out))
    }

    /// Whether `object` matches every term; a missing field reads as the empty string.
    pub(crate) fn matches(&self, object: &Value) -> bool {
        self.0.iter().all(|(field, equal, value)| {
            let path: Vec<&str> = field.split('.').collect();
            let actual = match json::at(object, &path) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            };
            (actual == *value) == *equal
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn label_selector_operators() {
        let s = LabelSelector::parse(
            "app=web,tier!=db,env in (prod, staging),zone notin (a),team,!legacy",
        )
        .unwrap();
        assert!(s.matches(&labels(&[("app", "web"), ("env", "prod"), ("team", "x")])));
        assert!(!s.matches(&labels(&[("app", "web"), ("env", "dev"), ("team", "x")])));
        assert!(!s.matches(&labels(&[
            ("app", "web"),
            ("env", "prod"),
            ("team", "x"),
            ("legacy", "")
        ])));
        assert!(!s.matches(&labels(&[("app", "web"), ("env", "prod")])));
        assert!(LabelSelector::parse("a in b").is_err());
        assert!(LabelSelector::parse("").unwrap().matches(&[]));
    }

    #[test]
    fn object_selector_and_query_form() {
        let s = LabelSelector::from_object(&json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "env", "operator": "In", "values": ["b", "a"]}]
        }))
        .unwrap();
        assert_eq!(s.to_query(), "app=web,env in (a,b)");
        assert_eq!(
            LabelSelector::parse(&s.to_query()).unwrap().to_query(),
            s.to_query()
        );
    }

    #[test]
    fn field_selector_reads_paths() {
        let ev = json!({"involvedObject": {"name": "x", "kind": "Pod"}, "metadata": {"name": "e"}});
        assert!(
            FieldSelector::parse("involvedObject.name=x,involvedObject.kind==Pod")
                .unwrap()
                .matches(&ev)
        );
        assert!(
            !FieldSelector::parse("metadata.name!=e")
                .unwrap()
                .matches(&ev)
        );
        assert!(FieldSelector::parse("nonsense").is_err());
    }
}

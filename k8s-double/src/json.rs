//! Small helpers for reading and writing paths in `serde_json::Value` objects.

use serde_json::{Map, Value};

/// The value at `path` (object keys only), if every step exists.
pub(crate) fn at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, key| v.get(key))
}

/// The string at `path`.
pub(crate) fn str_at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    at(value, path).and_then(Value::as_str)
}

/// The integer at `path`.
pub(crate) fn i64_at(value: &Value, path: &[&str]) -> Option<i64> {
    at(value, path).and_then(Value::as_i64)
}

/// The boolean at `path`, `false` when absent.
pub(crate) fn bool_at(value: &Value, path: &[&str]) -> bool {
    at(value, path).and_then(Value::as_bool).unwrap_or(false)
}

/// The array at `path`, empty when absent.
pub(crate) fn array_at<'a>(value: &'a Value, path: &[&str]) -> &'a [Value] {
    at(value, path)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// A mutable reference to the object at `path`, creating (or replacing non-objects with) empty objects.
pub(crate) fn object_mut<'a>(value: &'a mut Value, path: &[&str]) -> &'a mut Map<String, Value> {
    let mut current = value;
    for key in path {
        if !current.is_object() {
            *current = Value::Object(Map::new());
        }
        let Value::Object(map) = current else {
            unreachable!("made an object just above")
        };
        current = map
            .entry((*key).to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    if !current.is_object() {
        *current = Value::Object(Map::new());
    }
    match current {
        Value::Object(map) => map,
        _ => unreachable!("made an object just above"),
    }
}

/// Sets the value at `path`, creating intermediate objects.
pub(crate) fn set_at(value: &mut Value, path: &[&str], new: Value) {
    if let Some((last, parents)) = path.split_last() {
        object_mut(value, parents).insert((*last).to_owned(), new);
    }
}

/// Removes the value at `path`, returning it.
pub(crate) fn remove_at(value: &mut Value, path: &[&str]) -> Option<Value> {
    let (last, parents) = path.split_last()?;
    let mut current = value;
    for key in parents {
        current = current.get_mut(key)?;
    }
    current.as_object_mut()?.remove(*last)
}

/// The string map (labels, annotations, selectors) at `path` as owned pairs.
pub(crate) fn string_map(value: &Value, path: &[&str]) -> Vec<(String, String)> {
    at(value, path)
        .and_then(Value::as_object)
        .map(|map| {
            map.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

/// Canonical JSON text: object keys sorted, so equal values give equal text whatever the map order.
pub(crate) fn canonical(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// A copy without nulls, empty objects and empty arrays (recursively): the shape Go's `omitempty` and
/// typed round trips make equal, used to compare pod templates semantically.
pub(crate) fn pruned(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter_map(|(k, v)| {
                    let v = pruned(v);
                    (!is_empty(&v)).then(|| (k.clone(), v))
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(pruned).collect()),
        other => other.clone(),
    }
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Object(map) => map.is_empty(),
        Value::Array(items) => items.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn set_at_creates_parents_and_remove_at_takes_it_back() {
        let mut v = json!({});
        set_at(&mut v, &["a", "b", "c"], json!(1));
        assert_eq!(v, json!({"a": {"b": {"c": 1}}}));
        assert_eq!(remove_at(&mut v, &["a", "b", "c"]), Some(json!(1)));
        assert_eq!(i64_at(&v, &["a", "b", "c"]), None);
    }

    #[test]
    fn canonical_ignores_key_order_and_pruned_drops_empties() {
        let a = json!({"b": 1, "a": [ {"y": null, "x": {}} ]});
        assert_eq!(canonical(&a), r#"{"a":[{"x":{},"y":null}],"b":1}"#);
        assert_eq!(pruned(&a), json!({"b": 1, "a": [{}]}));
    }
}

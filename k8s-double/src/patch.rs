//! The three patch formats: JSON merge patch (RFC 7386), JSON patch (RFC 6902) and the strategic
//! merge patch for the fields opsbook and kubectl touch.

use serde_json::{Map, Value};

use crate::error::ApiError;

/// Which patch format a `Content-Type` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PatchKind {
    Merge,
    Json,
    Strategic,
}

impl PatchKind {
    /// The format of a PATCH request's content type; `None` means 415.
    pub(crate) fn from_content_type(content_type: &str) -> Option<Self> {
        match content_type.split(';').next().unwrap_or_default().trim() {
            "application/merge-patch+json" => Some(Self::Merge),
            "application/json-patch+json" => Some(Self::Json),
            "application/strategic-merge-patch+json" => Some(Self::Strategic),
            _ => None,
        }
    }
}

/// Applies `patch` of `kind` to `target`.
///
/// # Errors
/// 400 for a malformed patch, 422 for a JSON patch whose `test` fails or whose path is missing.
pub(crate) fn apply(kind: PatchKind, target: &Value, patch: &Value) -> Result<Value, ApiError> {
    match kind {
        PatchKind::Merge => {
            if !patch.is_object() {
                return Err(ApiError::bad_request("merge patch must be a JSON object"));
            }
            Ok(merge(target, patch))
        }
        PatchKind::Json => json_patch(target, patch),
        PatchKind::Strategic => {
            if !patch.is_object() {
                return Err(ApiError::bad_request(
                    "strategic merge patch must be a JSON object",
                ));
            }
            strategic(target, patch, "")
        }
    }
}

/// RFC 7386: objects merge, `null` removes, anything else replaces.
pub(crate) fn merge(target: &Value, patch: &Value) -> Value {
    let Value::Object(patch_map) = patch else {
        return patch.clone();
    };
    let mut out = match target {
        Value::Object(map) => map.clone(),
        _ => Map::new(),
    };
    for (key, value) in patch_map {
        if value.is_null() {
            out.remove(key);
        } else {
            let merged = merge(out.get(key).unwrap_or(&Value::Null), value);
            out.insert(key.clone(), merged);
        }
    }
    Value::Object(out)
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(422, "Invalid", message)
}

/// RFC 6901 pointer → unescaped tokens.
fn tokens(pointer: &str) -> Result<Vec<String>, ApiError> {
    if pointer.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = pointer.strip_prefix('/') else {
        return Err(ApiError::bad_request(format!(
            "invalid JSON pointer {pointer:?}"
        )));
    };
    Ok(rest
        .split('/')
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect())
}

fn get<'a>(doc: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(doc, |v, t| match v {
        Value::Object(m) => m.get(t),
        Value::Array(a) => t.parse::<usize>().ok().and_then(|i| a.get(i)),
        _ => None,
    })
}

fn parent_mut<'a>(doc: &'a mut Value, path: &[String]) -> Option<&'a mut Value> {
    path.iter().try_fold(doc, |v, t| match v {
        Value::Object(m) => m.get_mut(t),
        Value::Array(a) => t.parse::<usize>().ok().and_then(|i| a.get_mut(i)),
        _ => None,
    })
}

fn remove(doc: &mut Value, path: &[String], pointer: &str) -> Result<Value, ApiError> {
    let missing = || {
        invalid(format!(
            "the server rejected our request due to an error in our request: unable to remove nonexistent key: {pointer}"
        ))
    };
    let (last, parents) = path.split_last().ok_or_else(missing)?;
    match parent_mut(doc, parents).ok_or_else(missing)? {
        Value::Object(m) => m.remove(last).ok_or_else(missing),
        Value::Array(a) => {
            let i = last
                .parse::<usize>()
                .ok()
                .filter(|i| *i < a.len())
                .ok_or_else(missing)?;
            Ok(a.remove(i))
        }
        _ => Err(missing()),
    }
}

fn add(doc: &mut Value, path: &[String], value: Value, pointer: &str) -> Result<(), ApiError> {
    let Some((last, parents)) = path.split_last() else {
        *doc = value;
        return Ok(());
    };
    let missing = || {
        invalid(format!(
            "the server rejected our request due to an error in our request: add operation does not apply: doc is missing path: {pointer:?}"
        ))
    };
    match parent_mut(doc, parents).ok_or_else(missing)? {
        Value::Object(m) => {
            m.insert(last.clone(), value);
            Ok(())
        }
        Value::Array(a) => {
            let i = if last == "-" {
                a.len()
            } else {
                last.parse::<usize>()
                    .ok()
                    .filter(|i| *i <= a.len())
                    .ok_or_else(missing)?
            };
            a.insert(i, value);
            Ok(())
        }
        _ => Err(missing()),
    }
}

fn json_patch(target: &Value, operations: &Value) -> Result<Value, ApiError> {
    let Value::Array(ops) = operations else {
        return Err(ApiError::bad_request(
            "json patch must be a JSON array of operations",
        ));
    };
    let mut doc = target.clone();
    for op in ops {
        let op_name = op.get("op").and_then(Value::as_str).unwrap_or_default();
        let pointer = op.get("path").and_then(Value::as_str).unwrap_or_default();
        let path = tokens(pointer)?;
        let value = || {
            op.get("value").cloned().ok_or_else(|| {
                ApiError::bad_request(format!("json patch {op_name} operation needs a value"))
            })
        };
        let from = || tokens(op.get("from").and_then(Value::as_str).unwrap_or_default());
        match op_name {
            "add" => add(&mut doc, &path, value()?, pointer)?,
            "remove" => {
                remove(&mut doc, &path, pointer)?;
            }
            "replace" => {
                if get(&doc, &path).is_none() {
                    return Err(invalid(format!(
                        "the server rejected our request due to an error in our request: replace operation does not apply: doc is missing key: {pointer}"
                    )));
                }
                if path.is_empty() {
                    doc = value()?;
                } else {
                    remove(&mut doc, &path, pointer)?;
                    add(&mut doc, &path, value()?, pointer)?;
                }
            }
            "test" => {
                if get(&doc, &path) != Some(&value()?) {
                    return Err(invalid(format!(
                        "the server rejected our request due to an error in our request: testing value {pointer} failed: test failed"
                    )));
                }
            }
            "move" => {
                let from = from()?;
                let moved = remove(&mut doc, &from, pointer)?;
                add(&mut doc, &path, moved, pointer)?;
            }
            "copy" => {
                let from = from()?;
                let copied = get(&doc, &from)
                    .cloned()
                    .ok_or_else(|| invalid(format!("copy from a missing path: {pointer}")))?;
                add(&mut doc, &path, copied, pointer)?;
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "unexpected json patch operation {other:?}"
                )));
            }
        }
    }
    Ok(doc)
}

/// The patch merge key of the list at `field` whose items look like `sample`.
fn merge_key(field: &str, sample: Option<&Value>) -> Option<&'static str> {
    match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets"
        | "hostAliases"
        | "readinessGates"
        | "resourceClaims"
        | "containerStatuses"
        | "initContainerStatuses" => Some(match field {
            "hostAliases" => "ip",
            "readinessGates" => "conditionType",
            _ => "name",
        }),
        "volumeMounts" => Some("mountPath"),
        "volumeDevices" => Some("devicePath"),
        "conditions" => Some("type"),
        "ownerReferences" => Some("uid"),
        "ports" => Some(
            if sample.is_some_and(|s| s.get("containerPort").is_some()) {
                "containerPort"
            } else {
                "port"
            },
        ),
        _ => None,
    }
}

/// Lists of scalars merged as sets rather than replaced.
fn is_set_list(field: &str) -> bool {
    field == "finalizers"
}

/// The strategic merge patch of `patch` onto `target`; `field` names the key `target` sits under.
fn strategic(target: &Value, patch: &Value, field: &str) -> Result<Value, ApiError> {
    let Value::Object(patch_map) = patch else {
        return Ok(patch.clone());
    };
    match patch_map.get("$patch").and_then(Value::as_str) {
        Some("replace") => {
            let mut replaced = patch_map.clone();
            replaced.remove("$patch");
            return Ok(strip_directives(&Value::Object(replaced)));
        }
        Some("delete") => return Ok(Value::Null),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "unknown patch type {other:?} in field {field:?}"
            )));
        }
        None => {}
    }
    let _ = field;
    let mut out = match target {
        Value::Object(map) => map.clone(),
        _ => Map::new(),
    };
    let retain: Option<Vec<String>> =
        patch_map
            .get("$retainKeys")
            .and_then(Value::as_array)
            .map(|keys| {
                keys.iter()
                    .filter_map(|k| k.as_str().map(str::to_owned))
                    .collect()
            });
    for (key, value) in patch_map {
        if let Some(list_field) = key.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(items)), Some(gone)) =
                (out.get_mut(list_field), value.as_array())
            {
                items.retain(|item| !gone.contains(item));
            }
            continue;
        }
        if key.starts_with('$') {
            continue;
        }
        if value.is_null() {
            out.remove(key);
            continue;
        }
        let current = out.get(key).cloned().unwrap_or(Value::Null);
        let merged = match value {
            Value::Object(_) => strategic(&current, value, key)?,
            Value::Array(items) => merge_list(&current, items, key)?,
            other => other.clone(),
        };
        if merged.is_null() {
            out.remove(key);
        } else {
            out.insert(key.clone(), merged);
        }
    }
    if let Some(keys) = retain {
        out.retain(|k, _| keys.contains(k));
    }
    Ok(Value::Object(out))
}

fn merge_list(current: &Value, items: &[Value], field: &str) -> Result<Value, ApiError> {
    let existing: Vec<Value> = current.as_array().cloned().unwrap_or_default();
    if items
        .iter()
        .any(|i| i.get("$patch").and_then(Value::as_str) == Some("replace"))
    {
        let kept: Vec<Value> = items
            .iter()
            .filter(|i| i.get("$patch").is_none())
            .map(strip_directives)
            .collect();
        return Ok(Value::Array(kept));
    }
    if is_set_list(field) {
        let mut out = existing;
        for item in items {
            if !out.contains(item) {
                out.push(item.clone());
            }
        }
        return Ok(Value::Array(out));
    }
    let Some(key) = merge_key(field, items.first().or(existing.first())) else {
        return Ok(Value::Array(items.iter().map(strip_directives).collect()));
    };
    let mut out = existing;
    for item in items {
        let id = item.get(key).cloned();
        let position = id
            .as_ref()
            .and_then(|id| out.iter().position(|e| e.get(key) == Some(id)));
        let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
        match (position, delete) {
            (Some(i), true) => {
                out.remove(i);
            }
            (None, true) => {}
            (Some(i), false) => {
                out[i] = strategic(&out[i], item, field)?;
            }
            (None, false) => out.push(strip_directives(item)),
        }
    }
    Ok(Value::Array(out))
}

/// A copy without `$patch`/`$retainKeys`/`$setElementOrder` directives.
fn strip_directives(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .map(|(k, v)| (k.clone(), strip_directives(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(strip_directives).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn merge_patch_removes_nulls_and_replaces_lists() {
        let t = json!({"a": {"b": 1, "c": 2}, "l": [1, 2]});
        let out = apply(
            PatchKind::Merge,
            &t,
            &json!({"a": {"b": null, "d": 3}, "l": [3]}),
        )
        .unwrap();
        assert_eq!(out, json!({"a": {"c": 2, "d": 3}, "l": [3]}));
    }

    #[test]
    fn json_patch_ops_and_failed_test_is_422() {
        let t = json!({"spec": {"template": {"a": 1}}, "metadata": {"annotations": {"x": "1"}}});
        let p = json!([
            {"op": "test", "path": "/spec/template/a", "value": 1},
            {"op": "replace", "path": "/spec/template", "value": {"b": 2}},
            {"op": "add", "path": "/metadata/annotations/y~1z", "value": "2"},
            {"op": "remove", "path": "/metadata/annotations/x"}
        ]);
        let out = apply(PatchKind::Json, &t, &p).unwrap();
        assert_eq!(
            out,
            json!({"spec": {"template": {"b": 2}}, "metadata": {"annotations": {"y/z": "2"}}})
        );
        let err = apply(
            PatchKind::Json,
            &t,
            &json!([{"op": "test", "path": "/spec/template/a", "value": 2}]),
        )
        .unwrap_err();
        assert_eq!(err.code(), 422);
        let err = apply(
            PatchKind::Json,
            &t,
            &json!([{"op": "remove", "path": "/nope"}]),
        )
        .unwrap_err();
        assert_eq!(err.code(), 422);
    }

    #[test]
    fn strategic_merges_containers_by_name_and_honours_directives() {
        let t = json!({"spec": {"containers": [
            {"name": "a", "image": "a:1", "env": [{"name": "X", "value": "1"}], "ports": [{"containerPort": 80}]},
            {"name": "b", "image": "b:1"}
        ]}});
        let p = json!({"spec": {
        "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
        "containers": [
            {"name": "a", "env": [{"name": "Y", "value": "2"}], "ports": [{"containerPort": 81}]},
            {"name": "b", "$patch": "delete"}
        ]}});
        let out = apply(PatchKind::Strategic, &t, &p).unwrap();
        assert_eq!(
            out,
            json!({"spec": {"containers": [
                {"name": "a", "image": "a:1",
                 "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}],
                 "ports": [{"containerPort": 80}, {"containerPort": 81}]}
            ]}})
        );
        let out = apply(
            PatchKind::Strategic,
            &t,
            &json!({"spec": {"$patch": "replace", "x": 1}}),
        )
        .unwrap();
        assert_eq!(out, json!({"spec": {"x": 1}}));
    }
}

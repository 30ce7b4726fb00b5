//! PATCH bodies as the Web API takes them: a JSON Patch (RFC 6902) array with `add`,
//! `replace`, `remove` and `test` (paths case-insensitive, leading slash optional), or a
//! JSON Merge Patch (RFC 7396) object, where an object sent for an array is added to it.

use serde_json::{Map, Value};

#[derive(Debug, PartialEq, thiserror::Error)]
pub enum PatchError {
    /// A `test` operation found a different value (409).
    #[error("{0}")]
    TestFailed(String),
    /// The patch itself is malformed (400).
    #[error("{0}")]
    Invalid(String),
}

/// Applies `patch` to `target` (an entity as JSON).
pub fn apply(target: &mut Value, patch: &Value) -> Result<(), PatchError> {
    match patch {
        Value::Array(ops) => {
            for op in ops {
                apply_op(target, op)?;
            }
            Ok(())
        }
        Value::Object(changes) => {
            merge(target, changes);
            Ok(())
        }
        _ => Err(PatchError::Invalid(
            "A PATCH body is a JSON Patch array or a JSON Merge Patch object".into(),
        )),
    }
}

fn key_of(object: &Map<String, Value>, name: &str) -> Option<String> {
    object
        .keys()
        .find(|k| k.eq_ignore_ascii_case(name))
        .cloned()
}

fn merge(target: &mut Value, changes: &Map<String, Value>) {
    let Value::Object(object) = target else {
        *target = Value::Object(changes.clone());
        return;
    };
    for (name, change) in changes {
        let key = key_of(object, name).unwrap_or_else(|| name.clone());
        match (object.get_mut(&key), change) {
            (Some(Value::Array(items)), Value::Object(_)) => items.push(change.clone()),
            (Some(existing @ Value::Object(_)), Value::Object(inner)) => merge(existing, inner),
            (_, Value::Null) => {
                object.remove(&key);
            }
            _ => {
                object.insert(key, change.clone());
            }
        }
    }
}

fn apply_op(target: &mut Value, op: &Value) -> Result<(), PatchError> {
    let invalid = |m: &str| PatchError::Invalid(m.to_string());
    let Value::Object(op) = op else {
        return Err(invalid("Each JSON Patch operation is an object"));
    };
    let field = |name: &str| {
        op.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    };
    let kind = field("op")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("A JSON Patch operation needs \"op\""))?
        .to_ascii_lowercase();
    let path = field("path")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("A JSON Patch operation needs \"path\""))?;
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    if segments.iter().any(|s| s.is_empty()) {
        return Err(invalid(&format!("Cannot patch the path {path:?}")));
    }
    let value = field("value");
    match kind.as_str() {
        "add" | "replace" => {
            let value = value.ok_or_else(|| invalid(&format!("\"{kind}\" needs a value")))?;
            set(target, &segments, value.clone(), kind == "add", path)
        }
        "remove" => remove(target, &segments, path),
        "test" => {
            let value = value.ok_or_else(|| invalid("\"test\" needs a value"))?;
            let current = find(target, &segments);
            if current.is_some_and(|c| loosely_equal(c, value)) {
                Ok(())
            } else {
                Err(PatchError::TestFailed(format!(
                    "The test of {path:?} failed: the entity has {}",
                    current.cloned().unwrap_or(Value::Null)
                )))
            }
        }
        "move" | "copy" => Err(invalid(&format!(
            "The JSON Patch operation {kind:?} is not supported"
        ))),
        other => Err(invalid(&format!("Unknown JSON Patch operation {other:?}"))),
    }
}

/// Json.NET reads `"10"` into an int: a test compares the way the entity would read it.
fn loosely_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(n), Value::String(s)) | (Value::String(s), Value::Number(n)) => {
            s.trim() == n.to_string()
        }
        _ => a == b,
    }
}

fn find<'v>(target: &'v Value, segments: &[&str]) -> Option<&'v Value> {
    let mut current = target;
    for segment in segments {
        current = match current {
            Value::Object(o) => o.get(&key_of(o, segment)?)?,
            Value::Array(items) => items.get(segment.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(current)
}

fn parent<'v>(
    target: &'v mut Value,
    segments: &[&str],
    path: &str,
) -> Result<&'v mut Value, PatchError> {
    let mut current = target;
    for segment in segments {
        let next = match current {
            Value::Object(o) => {
                let key = key_of(o, segment).unwrap_or_else(|| segment.to_string());
                // A null carrier (such as "Person": null) becomes an object to patch into.
                let slot = o.entry(key).or_insert(Value::Null);
                if slot.is_null() {
                    *slot = Value::Object(Map::new());
                }
                slot
            }
            Value::Array(items) => segment
                .parse::<usize>()
                .ok()
                .and_then(|i| items.get_mut(i))
                .ok_or_else(|| PatchError::Invalid(format!("No element {segment} in {path:?}")))?,
            _ => {
                return Err(PatchError::Invalid(format!(
                    "{path:?} goes through a value that is not an object"
                )));
            }
        };
        current = next;
    }
    Ok(current)
}

fn set(
    target: &mut Value,
    segments: &[&str],
    value: Value,
    add: bool,
    path: &str,
) -> Result<(), PatchError> {
    let (last, rest) = segments
        .split_last()
        .ok_or_else(|| PatchError::Invalid("Empty path".into()))?;
    match parent(target, rest, path)? {
        Value::Object(o) => {
            let key = key_of(o, last).unwrap_or_else(|| last.to_string());
            match (o.get_mut(&key), &value) {
                // `add` of an object to an array property appends, as merge patches do.
                (Some(Value::Array(items)), Value::Object(_)) if add => items.push(value),
                _ => {
                    o.insert(key, value);
                }
            }
            Ok(())
        }
        Value::Array(items) => {
            if *last == "-" {
                items.push(value);
                return Ok(());
            }
            let index = last
                .parse::<usize>()
                .ok()
                .filter(|i| *i <= items.len() && (add || *i < items.len()))
                .ok_or_else(|| PatchError::Invalid(format!("No element {last} in {path:?}")))?;
            if add {
                items.insert(index, value);
            } else {
                items[index] = value;
            }
            Ok(())
        }
        _ => Err(PatchError::Invalid(format!("Cannot patch {path:?}"))),
    }
}

fn remove(target: &mut Value, segments: &[&str], path: &str) -> Result<(), PatchError> {
    let (last, rest) = segments
        .split_last()
        .ok_or_else(|| PatchError::Invalid("Empty path".into()))?;
    match parent(target, rest, path)? {
        Value::Object(o) => {
            if let Some(key) = key_of(o, last) {
                o.remove(&key);
            }
            Ok(())
        }
        Value::Array(items) => {
            let index = last
                .parse::<usize>()
                .ok()
                .filter(|i| *i < items.len())
                .ok_or_else(|| PatchError::Invalid(format!("No element {last} in {path:?}")))?;
            items.remove(index);
            Ok(())
        }
        _ => Err(PatchError::Invalid(format!("Cannot patch {path:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_patch_and_merge_patch_apply_case_insensitively() {
        let mut e = json!({"Title": "a", "Associate": {"AssociateId": 1}, "Links": []});
        apply(
            &mut e,
            &json!([
                {"op": "replace", "path": "/title", "value": "b"},
                {"op": "replace", "path": "Associate", "value": {"AssociateId": "10"}},
                {"op": "test", "path": "associate/associateId", "value": 10},
                {"op": "add", "path": "Links", "value": {"Id": 1}}
            ]),
        )
        .unwrap();
        assert_eq!(e["Title"], "b");
        assert_eq!(e["Links"].as_array().map(Vec::len), Some(1));
        apply(&mut e, &json!({"location": "Oslo", "Links": {"Id": 2}})).unwrap();
        assert_eq!(e["Links"].as_array().map(Vec::len), Some(2));
        assert!(e.get("location").is_some() || e.get("Location").is_some());
        assert!(matches!(
            apply(
                &mut e,
                &json!([{"op": "test", "path": "Title", "value": "x"}])
            ),
            Err(PatchError::TestFailed(_))
        ));
        for bad in [
            json!([{"op": "move", "path": "Title", "from": "x"}]),
            json!([{"op": "replace", "path": "Title"}]),
            json!([{"path": "Title"}]),
            json!(["x"]),
            json!(7),
        ] {
            assert!(
                matches!(apply(&mut e, &bad), Err(PatchError::Invalid(_))),
                "{bad}"
            );
        }
    }
}

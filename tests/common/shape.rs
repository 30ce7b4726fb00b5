//! Conformance of JSON shapes: a documented sample and an emulator's answer must have the
//! same field names, nesting and JSON types; values may differ. Samples are often truncated
//! in the docs, so the answer may have more fields than the sample, never fewer.

use serde_json::Value;

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Differences between `sample` and `actual`, one line each, with the JSON path. `null` in
/// the sample stands for "any type" (the docs show null for unset properties of every type).
pub fn shape_differences(sample: &Value, actual: &Value) -> Vec<String> {
    let mut out = Vec::new();
    compare(sample, actual, "$", &mut out);
    out
}

fn compare(sample: &Value, actual: &Value, path: &str, out: &mut Vec<String>) {
    match (sample, actual) {
        (Value::Null, _) => {}
        (Value::Object(s), Value::Object(a)) => {
            for (key, sv) in s {
                match a.get(key) {
                    Some(av) => compare(sv, av, &format!("{path}.{key}"), out),
                    None => out.push(format!(
                        "{path}.{key}: missing (the sample has {})",
                        kind(sv)
                    )),
                }
            }
        }
        (Value::Array(s), Value::Array(a)) => {
            // Every element of the answer must have the shape of the sample's first element.
            if let Some(first) = s.first() {
                for (i, av) in a.iter().enumerate() {
                    compare(first, av, &format!("{path}[{i}]"), out);
                }
            }
        }
        (s, a) if kind(s) == kind(a) => {}
        (s, a) => out.push(format!(
            "{path}: the sample has {}, the answer {}",
            kind(s),
            kind(a)
        )),
    }
}

/// Panics with every difference, naming the sample.
pub fn assert_same_shape(sample_name: &str, sample: &Value, actual: &Value) {
    let differences = shape_differences(sample, actual);
    assert!(
        differences.is_empty(),
        "the answer does not have the shape of {sample_name}:\n  {}\nanswer: {}",
        differences.join("\n  "),
        serde_json::to_string_pretty(actual).unwrap_or_default()
    );
}

/// A sample from `../shared/reference/` (the directory CI has beside the clone).
pub fn reference(relative: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/reference")
        .join(relative);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read the reference sample {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn shapes_compare_names_nesting_and_types_not_values() {
        let sample = json!({"a": 1, "b": {"c": "x"}, "d": [{"e": true}], "f": null});
        assert!(
            shape_differences(
                &sample,
                &json!({"a": 2, "b": {"c": "y"}, "d": [], "f": 3, "g": 0})
            )
            .is_empty()
        );
        let diffs = shape_differences(
            &sample,
            &json!({"a": "1", "b": {}, "d": [{"e": 1}], "f": null}),
        );
        assert_eq!(diffs.len(), 3, "{diffs:?}");
    }
}

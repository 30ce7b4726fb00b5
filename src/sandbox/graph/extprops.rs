//! Single-value extended properties (events and contacts): the documented id formats,
//! stored per item, read back only through `$expand=singleValueExtendedProperties($filter=id
//! eq '...')`.

use serde_json::{Value, json};

use super::error::GraphError;
use super::filter::{self, Expr, Subject};
use super::wire::Obj;

const TYPES: &[&str] = &[
    "Binary",
    "Boolean",
    "CLSID",
    "Currency",
    "Double",
    "Float",
    "Integer",
    "Long",
    "Object",
    "Short",
    "String",
    "SystemTime",
];

fn is_guid(text: &str) -> bool {
    let parts: Vec<&str> = text.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && p.chars().all(|c| c.is_ascii_hexdigit()))
}

fn is_hex_tag(text: &str) -> bool {
    text.len() > 2
        && text[..2].eq_ignore_ascii_case("0x")
        && text.len() <= 10
        && text[2..].chars().all(|c| c.is_ascii_hexdigit())
}

/// The canonical form of an extended property id (`{type} {guid} Name {name}`, `{type}
/// {guid} Id {hex}` or `{type} {proptag}`): type, keyword, GUID and hex case-insensitive,
/// the name as given (the docs: "Filtering the string name (Name) in the id of an extended
/// property is case-sensitive"). `None` when it is not an extended property id.
pub fn canonical(id: &str) -> Option<String> {
    let id = id.trim();
    let (kind, rest) = id.split_once(char::is_whitespace)?;
    let kind = TYPES.iter().find(|t| t.eq_ignore_ascii_case(kind))?;
    let rest = rest.trim_start();
    if is_hex_tag(rest) {
        return Some(format!("{kind} 0x{}", rest[2..].to_ascii_lowercase()));
    }
    let (guid, rest) = rest.split_once(char::is_whitespace)?;
    let guid = guid.strip_prefix('{')?.strip_suffix('}')?;
    if !is_guid(guid) {
        return None;
    }
    let guid = guid.to_ascii_lowercase();
    let (keyword, value) = rest.trim_start().split_once(char::is_whitespace)?;
    let value = value.trim_start();
    if keyword.eq_ignore_ascii_case("name") && !value.is_empty() {
        Some(format!("{kind} {{{guid}}} Name {value}"))
    } else if keyword.eq_ignore_ascii_case("id") && is_hex_tag(value) {
        Some(format!(
            "{kind} {{{guid}}} Id 0x{}",
            value[2..].to_ascii_lowercase()
        ))
    } else {
        None
    }
}

/// Extended properties of one item: canonical id, value.
pub type ExtProps = Vec<(String, String)>;

/// Applies `singleValueExtendedProperties` of a create or update body: each id is set (or,
/// with a null value, removed).
pub fn apply(props: &mut ExtProps, obj: &Obj<'_>) -> Result<(), GraphError> {
    let Some(items) = obj.objects(
        "singleValueExtendedProperties",
        "singleValueLegacyExtendedProperty",
    )?
    else {
        return Ok(());
    };
    for item in items {
        item.known(&["id", "value"])?;
        let raw = item.string("id")?.unwrap_or_default();
        let id = canonical(&raw).ok_or_else(|| {
            GraphError::bad_request(
                "ErrorInvalidProperty",
                format!("The extended property id '{raw}' is not valid."),
            )
        })?;
        let value = item.string("value")?;
        props.retain(|(existing, _)| *existing != id);
        if let Some(value) = value {
            props.push((id, value));
        }
    }
    Ok(())
}

/// The properties as filterable JSON (`[{"id", "value"}]`).
pub fn json(props: &ExtProps) -> Value {
    Value::Array(
        props
            .iter()
            .map(|(id, value)| json!({"id": id, "value": value}))
            .collect(),
    )
}

/// The `$expand`ed properties: those the expand's filter selects (Graph cannot return all
/// of them). `None` when none matches: the property is then left out of the item.
pub fn expand(props: &ExtProps, filter: Option<&Expr>) -> Result<Option<Value>, GraphError> {
    let Some(filter) = filter else {
        return Err(GraphError::invalid_query(
            "singleValueExtendedProperties can only be expanded with a $filter on id.",
        ));
    };
    let mut out = Vec::new();
    for (id, value) in props {
        let item = json!({"id": id, "value": value});
        let subject = Subject {
            json: &item,
            known: &["id", "value"],
            entity: "singleValueLegacyExtendedProperty",
        };
        if filter::eval(filter, &subject)? {
            out.push(item);
        }
    }
    Ok((!out.is_empty()).then_some(Value::Array(out)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_canonical_except_the_name() {
        assert_eq!(
            canonical("string {66F5A359-4659-4830-9070-00047EC6AC6E} name crmsyncId").as_deref(),
            Some("String {66f5a359-4659-4830-9070-00047ec6ac6e} Name crmsyncId")
        );
        assert_eq!(
            canonical("Integer {8ECCC264-6880-4EBE-992F-8888D2EEAA1D} Id 0x8012").as_deref(),
            Some("Integer {8eccc264-6880-4ebe-992f-8888d2eeaa1d} Id 0x8012")
        );
        assert_eq!(
            canonical("String 0x4001001E").as_deref(),
            Some("String 0x4001001e")
        );
        for bad in [
            "",
            "String",
            "Text {66f5a359-4659-4830-9070-00047ec6ac6e} Name x",
            "String {66f5a359} Name x",
            "String {66f5a359-4659-4830-9070-00047ec6ac6e} Name",
            "AAMkAGI1AAAt9AHjAAA=",
        ] {
            assert_eq!(canonical(bad), None, "{bad}");
        }
    }
}

//! Canonical JSON: object keys sorted, no insignificant whitespace, UTF-8.
//!
//! Grant documents and audit events are hashed and signed over these bytes, so the same value
//! always yields the same bytes. `serde_json::Value` keeps maps sorted (no `preserve_order`
//! feature is enabled anywhere in the workspace), and its compact writer emits no whitespace;
//! this module makes that guarantee explicit and checked by tests instead of implicit.

use serde::Serialize;
use serde_json::Value;

use crate::Error;

/// Serialises `value` as canonical JSON.
pub fn to_string<T: Serialize>(value: &T) -> Result<String, Error> {
    let value = serde_json::to_value(value).map_err(|e| Error::Encoding(e.to_string()))?;
    let mut out = String::new();
    write_value(&value, &mut out);
    Ok(out)
}

fn write_value(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(key, out);
                out.push(':');
                write_value(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(item, out);
            }
            out.push(']');
        }
        Value::String(s) => write_string(s, out),
        other => out.push_str(&other.to_string()),
    }
}

fn write_string(s: &str, out: &mut String) {
    // serde_json's string escaping is deterministic; reuse it.
    out.push_str(&Value::String(s.to_owned()).to_string());
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sorts_keys_recursively_without_whitespace() {
        let v = json!({"b": 1, "a": {"d": [true, null], "c": "x\"y"}});
        assert_eq!(
            to_string(&v).unwrap(),
            r#"{"a":{"c":"x\"y","d":[true,null]},"b":1}"#
        );
    }

    #[test]
    fn same_value_same_bytes() {
        let a = json!({"z": 1, "y": 2});
        let b: Value = serde_json::from_str(r#"{ "y" : 2 , "z" : 1 }"#).unwrap();
        assert_eq!(to_string(&a).unwrap(), to_string(&b).unwrap());
    }
}

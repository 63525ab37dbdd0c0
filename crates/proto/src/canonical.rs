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
    let mut out = Vec::with_capacity(256);
    write_value(&value, &mut out)?;
    String::from_utf8(out).map_err(|e| Error::Encoding(e.to_string()))
}

/// Appends the canonical JSON of `value` to `out`: object keys sorted at every level (whatever
/// order the map keeps), no whitespace. The one canonical writer of the workspace: grant and
/// state stamps are signed over it and audit events hashed over it (`brevet_audit`).
pub fn write_value(value: &Value, out: &mut Vec<u8>) -> Result<(), Error> {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_scalar(out, key)?;
                out.push(b':');
                write_value(item, out)?;
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(item, out)?;
            }
            out.push(b']');
        }
        scalar => write_scalar(out, scalar)?,
    }
    Ok(())
}

/// Appends serde_json's compact form of a string or scalar (its escaping and number formatting
/// are deterministic).
pub fn write_scalar(out: &mut Vec<u8>, v: &(impl Serialize + ?Sized)) -> Result<(), Error> {
    serde_json::to_writer(out, v).map_err(|e| Error::Encoding(e.to_string()))
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

    /// A fixed vector: escapes, non-ASCII, numbers, nesting. These bytes are what grants are
    /// signed over and audit events hashed over; they must never change.
    #[test]
    fn fixed_bytes() {
        let v: Value = serde_json::from_str(
            r#"{"z":[1,-2,3.5,1e300,18446744073709551615],"a":{"\u0001\n":"é\"\\/\u2028","":null},"m":false}"#,
        )
        .unwrap();
        assert_eq!(
            to_string(&v).unwrap(),
            "{\"a\":{\"\":null,\"\\u0001\\n\":\"é\\\"\\\\/\u{2028}\"},\"m\":false,\
             \"z\":[1,-2,3.5,1e+300,18446744073709551615]}"
        );
    }

    #[test]
    fn same_value_same_bytes() {
        let a = json!({"z": 1, "y": 2});
        let b: Value = serde_json::from_str(r#"{ "y" : 2 , "z" : 1 }"#).unwrap();
        assert_eq!(to_string(&a).unwrap(), to_string(&b).unwrap());
    }
}

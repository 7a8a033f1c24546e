//! Small accessors over dynamic JSON that treat `null` like an absent field,
//! as Kubernetes' typed decoding does (`field: null` decodes to a nil pointer).

use serde_json::{Map, Value};

/// The field `key` of `value` unless it is absent or `null`.
#[inline]
pub fn field<'v>(value: &'v Value, key: &str) -> Option<&'v Value> {
    match value.get(key) {
        None | Some(Value::Null) => None,
        some => some,
    }
}

#[inline]
pub fn str_field<'v>(value: &'v Value, key: &str) -> Option<&'v str> {
    value.get(key).and_then(Value::as_str)
}

#[inline]
pub fn bool_field(value: &Value, key: &str) -> Option<bool> {
    value.get(key).and_then(Value::as_bool)
}

#[inline]
pub fn object_field<'v>(value: &'v Value, key: &str) -> Option<&'v Map<String, Value>> {
    value.get(key).and_then(Value::as_object)
}

/// The array at `key`, or an empty slice when it is absent, `null` or not an array.
#[inline]
pub fn array_field<'v>(value: &'v Value, key: &str) -> &'v [Value] {
    value
        .get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// Follows a chain of keys, `null` counting as absent.
#[inline]
pub fn dig<'v>(value: &'v Value, keys: &[&str]) -> Option<&'v Value> {
    let mut current = value;
    for key in keys {
        current = field(current, key)?;
    }
    Some(current)
}

/// An integer field, accepting the float spelling JSON tools sometimes produce (`80.0`).
#[inline]
pub fn int_field(value: &Value, key: &str) -> Option<i64> {
    let v = value.get(key)?;
    v.as_i64()
        .or_else(|| v.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
}

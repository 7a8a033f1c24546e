//! Conversions between JSON and CEL values, and value sizing.

use std::collections::HashMap;
use std::sync::Arc;

use kube_cel::cel::Value;
use kube_cel::cel::objects::{Key, Map, OptionalValue};

use crate::error::InputError;
use crate::limits::InputLimits;

/// Approximate fixed overhead charged per scalar or container of an input document.
const NODE_BYTES: usize = 8;

/// Approximate memory per scalar or container of an evaluation-time value
/// (the interpreter boxes every node).
pub(crate) const VALUE_NODE_BYTES: u64 = 32;

/// Converts a JSON document into a CEL value, enforcing `limits`.
///
/// Objects become maps with string keys, arrays lists, integers that fit in
/// `i64` become `int`, other numbers `double` (as Kubernetes' unstructured
/// decoding does). Field names are **not** escaped (`metadata.labels['a/b']`
/// works; CRD-style `__dash__` escapes are not applied).
pub fn json_to_value(
    json: &serde_json::Value,
    limits: &InputLimits,
    variable: &'static str,
) -> Result<Value, InputError> {
    Converter::new(limits, variable).run(json)
}

/// Parses JSON bytes and converts them, rejecting oversized input before parsing.
pub fn json_slice_to_value(
    bytes: &[u8],
    limits: &InputLimits,
    variable: &'static str,
) -> Result<Value, InputError> {
    if bytes.len() > limits.max_bytes {
        return Err(InputError::TooLarge {
            variable,
            limit: limits.max_bytes,
        });
    }
    let json: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| InputError::InvalidJson {
            variable,
            message: e.to_string(),
        })?;
    json_to_value(&json, limits, variable)
}

pub(crate) struct Converter {
    remaining: usize,
    limits: InputLimits,
    variable: &'static str,
    skip_top_level: &'static [&'static str],
}

impl Converter {
    pub(crate) fn new(limits: &InputLimits, variable: &'static str) -> Self {
        Converter {
            remaining: limits.max_bytes,
            limits: *limits,
            variable,
            skip_top_level: &[],
        }
    }

    /// Top-level object keys to leave out of the conversion.
    pub(crate) fn skip_top_level(mut self, keys: &'static [&'static str]) -> Self {
        self.skip_top_level = keys;
        self
    }

    pub(crate) fn run(mut self, json: &serde_json::Value) -> Result<Value, InputError> {
        self.convert(json, 0)
    }

    fn charge(&mut self, n: usize) -> Result<(), InputError> {
        match self.remaining.checked_sub(n) {
            Some(rest) => {
                self.remaining = rest;
                Ok(())
            }
            None => Err(InputError::TooLarge {
                variable: self.variable,
                limit: self.limits.max_bytes,
            }),
        }
    }

    fn descend(&self, depth: usize) -> Result<(), InputError> {
        if depth >= self.limits.max_depth {
            return Err(InputError::TooDeep {
                variable: self.variable,
                limit: self.limits.max_depth,
            });
        }
        Ok(())
    }

    fn convert(&mut self, json: &serde_json::Value, depth: usize) -> Result<Value, InputError> {
        self.charge(NODE_BYTES)?;
        Ok(match json {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => Value::Int(i),
                None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            serde_json::Value::String(s) => {
                self.charge(s.len())?;
                Value::String(Arc::new(s.clone()))
            }
            serde_json::Value::Array(items) => {
                self.descend(depth)?;
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    out.push(self.convert(item, depth + 1)?);
                }
                Value::List(Arc::new(out))
            }
            serde_json::Value::Object(fields) => {
                self.descend(depth)?;
                let mut out = HashMap::with_capacity(fields.len());
                for (k, v) in fields {
                    if depth == 0 && self.skip_top_level.contains(&k.as_str()) {
                        continue;
                    }
                    self.charge(k.len())?;
                    out.insert(
                        Key::String(Arc::new(k.clone())),
                        self.convert(v, depth + 1)?,
                    );
                }
                Value::Map(Map { map: Arc::new(out) })
            }
        })
    }
}

/// Converts a CEL value to JSON, for results such as `messageExpression`
/// strings or computed lists. Returns `None` for values without a JSON form
/// (bytes, durations, timestamps, opaque library values such as `quantity`
/// or `ip`, non-finite doubles). Optional values convert to their content or
/// `null`.
pub fn value_to_json(value: &Value) -> Option<serde_json::Value> {
    Some(match value {
        Value::Null => serde_json::Value::Null,
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::Int(i) => serde_json::Value::from(*i),
        Value::UInt(u) => serde_json::Value::from(*u),
        Value::Float(f) => serde_json::Value::Number(serde_json::Number::from_f64(*f)?),
        Value::String(s) => serde_json::Value::String(s.as_str().to_owned()),
        Value::List(items) => serde_json::Value::Array(
            items
                .iter()
                .map(value_to_json)
                .collect::<Option<Vec<_>>>()?,
        ),
        Value::Map(map) => {
            let mut entries: Vec<(String, serde_json::Value)> = Vec::with_capacity(map.map.len());
            for (k, v) in map.map.iter() {
                let key = match k {
                    Key::String(s) => s.as_str().to_owned(),
                    Key::Int(i) => i.to_string(),
                    Key::Uint(u) => u.to_string(),
                    Key::Bool(b) => b.to_string(),
                };
                entries.push((key, value_to_json(v)?));
            }
            // HashMap iteration order is random: sort for deterministic output.
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            serde_json::Value::Object(entries.into_iter().collect())
        }
        Value::Opaque(o) => match o.downcast_ref::<OptionalValue>() {
            Some(opt) => match opt.value() {
                Some(v) => value_to_json(v)?,
                None => serde_json::Value::Null,
            },
            None => return None,
        },
        _ => return None,
    })
}

/// Approximate size of a value in bytes; stops counting once `cap` is exceeded.
/// Iterative, so deeply nested values cannot exhaust the stack.
pub(crate) fn approx_size(value: &Value, cap: u64) -> u64 {
    let mut total: u64 = 0;
    let mut stack: Vec<&Value> = vec![value];
    while let Some(v) = stack.pop() {
        total += VALUE_NODE_BYTES;
        match v {
            Value::String(s) => total += s.len() as u64,
            Value::Bytes(b) => total += b.len() as u64,
            Value::List(items) => stack.extend(items.iter()),
            Value::Map(map) => {
                for (k, v) in map.map.iter() {
                    if let Key::String(s) = k {
                        total += s.len() as u64;
                    }
                    stack.push(v);
                }
            }
            Value::Opaque(o) => {
                if let Some(opt) = o.downcast_ref::<OptionalValue>()
                    && let Some(inner) = opt.value()
                {
                    stack.push(inner);
                }
            }
            _ => {}
        }
        if total > cap {
            return total;
        }
    }
    total
}

/// The CEL type name of a value, for messages.
pub(crate) fn type_name(value: &Value) -> String {
    match value {
        Value::Opaque(o) => o.runtime_type_name().to_owned(),
        other => other.type_of().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn converts_json_shapes() {
        let v = json_to_value(
            &json!({"a": [1, 2.5, "x", null, true], "big": 18446744073709551615u64}),
            &InputLimits::default(),
            "object",
        )
        .unwrap();
        let Value::Map(m) = &v else {
            panic!("not a map")
        };
        let a = m.map.get(&Key::String(Arc::new("a".into()))).unwrap();
        assert_eq!(
            *a,
            Value::List(Arc::new(vec![
                Value::Int(1),
                Value::Float(2.5),
                Value::String(Arc::new("x".into())),
                Value::Null,
                Value::Bool(true)
            ]))
        );
        let big = m.map.get(&Key::String(Arc::new("big".into()))).unwrap();
        assert!(matches!(big, Value::Float(_)));
        assert_eq!(
            value_to_json(&v).unwrap(),
            json!({"a": [1, 2.5, "x", null, true], "big": 18446744073709551615.0})
        );
    }

    #[test]
    fn rejects_oversized_and_deep_input() {
        let limits = InputLimits {
            max_bytes: 100,
            max_depth: 3,
        };
        let big = json!({"s": "x".repeat(200)});
        assert!(matches!(
            json_to_value(&big, &limits, "object"),
            Err(InputError::TooLarge {
                variable: "object",
                ..
            })
        ));
        let deep = json!([[[[1]]]]);
        assert!(matches!(
            json_to_value(&deep, &limits, "params"),
            Err(InputError::TooDeep {
                variable: "params",
                limit: 3
            })
        ));
        assert!(json_to_value(&json!([[[1]]]), &limits, "params").is_ok());
        assert!(matches!(
            json_slice_to_value(&[b' '; 101], &limits, "object"),
            Err(InputError::TooLarge { .. })
        ));
    }

    #[test]
    fn size_is_capped() {
        let v = Value::List(Arc::new(vec![
            Value::String(Arc::new("x".repeat(1000)));
            1000
        ]));
        assert!(approx_size(&v, 10_000) > 10_000);
        assert!(approx_size(&v, 10_000) < 20_000);
        assert_eq!(approx_size(&Value::Int(1), 100), VALUE_NODE_BYTES);
    }
}

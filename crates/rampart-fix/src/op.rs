//! What a fix changes in an object, independent of how the object is written:
//! a small subset of RFC 6902 (`add`/`replace` of a field, `add` to the end of
//! an array), applied to JSON values here and to text by [`crate::text`].

use std::fmt;

use rampart_core::{FieldPath, Segment};
use serde_json::{Map, Value};

/// One change to an object.
#[derive(Clone, Debug, PartialEq)]
pub struct Op {
    /// The field changed, from the root of the document (for an item of a
    /// `List`, starting with `items[N]`).
    pub path: FieldPath,
    pub action: Action,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Set the field to the value, adding it (and any missing parent mapping,
    /// or a parent that is `null`) when absent, replacing it when present.
    Set(Value),
    /// Add the value at the end of the array at the path, creating the
    /// array (and its parents) when absent or `null`.
    Append(Value),
}

impl Op {
    pub fn set(path: FieldPath, value: impl Into<Value>) -> Self {
        Self {
            path,
            action: Action::Set(value.into()),
        }
    }

    pub fn append(path: FieldPath, value: impl Into<Value>) -> Self {
        Self {
            path,
            action: Action::Append(value.into()),
        }
    }

    /// The same change for an object that is item `index` of a `List`.
    #[must_use]
    pub fn in_list_item(&self, index: usize) -> Self {
        Self {
            path: FieldPath::root().key("items").index(index).join(&self.path),
            action: self.action.clone(),
        }
    }

    /// The value a missing field at `path[depth..]` gets: the leaf wrapped in
    /// one mapping per remaining key. `None` when an index is missing.
    pub(crate) fn value_from(&self, depth: usize) -> Option<Value> {
        let mut value = match &self.action {
            Action::Set(v) => v.clone(),
            Action::Append(v) => Value::Array(vec![v.clone()]),
        };
        for segment in self.path.segments()[depth..].iter().rev() {
            let Segment::Key(key) = segment else {
                return None;
            };
            let mut map = Map::new();
            map.insert(key.to_string(), value);
            value = Value::Object(map);
        }
        Some(value)
    }

    /// Applies the change to a JSON value, with the same meaning the text
    /// editor gives it.
    pub fn apply_json(&self, root: &mut Value) -> Result<(), OpError> {
        let segments = self.path.segments();
        let Some((last, parents)) = segments.split_last() else {
            return Err(OpError::new(self, "the path is empty"));
        };
        let mut current = root;
        for (depth, segment) in parents.iter().enumerate() {
            current = match segment {
                Segment::Key(key) => {
                    if current.is_null() {
                        *current = Value::Object(Map::new());
                    }
                    let map = current
                        .as_object_mut()
                        .ok_or_else(|| OpError::new(self, "a parent is not a mapping"))?;
                    if !map.contains_key(key.as_ref()) {
                        let value = self
                            .value_from(depth + 1)
                            .ok_or_else(|| OpError::new(self, "an array in the path is missing"))?;
                        map.insert(key.to_string(), value);
                        return Ok(());
                    }
                    map.get_mut(key.as_ref()).expect("checked above")
                }
                Segment::Index(i) => current
                    .as_array_mut()
                    .and_then(|a| a.get_mut(*i))
                    .ok_or_else(|| OpError::new(self, "an array item in the path is missing"))?,
            };
        }
        let Segment::Key(key) = last else {
            return Err(OpError::new(self, "the path must end with a field name"));
        };
        if current.is_null() {
            *current = Value::Object(Map::new());
        }
        let map = current
            .as_object_mut()
            .ok_or_else(|| OpError::new(self, "the parent is not a mapping"))?;
        match &self.action {
            Action::Set(v) => {
                map.insert(key.to_string(), v.clone());
            }
            Action::Append(v) => match map.get_mut(key.as_ref()) {
                Some(Value::Array(items)) => items.push(v.clone()),
                Some(Value::Null) | None => {
                    map.insert(key.to_string(), Value::Array(vec![v.clone()]));
                }
                Some(_) => return Err(OpError::new(self, "the field is not an array")),
            },
        }
        Ok(())
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.action {
            Action::Set(v) => write!(f, "{}: {}", self.path, v),
            Action::Append(v) => write!(f, "{} += [{}]", self.path, v),
        }
    }
}

/// An operation that does not fit the value it is applied to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpError(pub String);

impl OpError {
    fn new(op: &Op, why: &str) -> Self {
        Self(format!("cannot apply {op}: {why}"))
    }
}

impl fmt::Display for OpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for OpError {}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn path(p: &str) -> FieldPath {
        FieldPath::parse(p)
    }

    #[test]
    fn set_creates_parents_and_replaces_nulls() {
        let mut v = json!({"spec": {"containers": [{"name": "a", "securityContext": null}]}});
        Op::set(
            path("spec.containers[0].securityContext.capabilities.drop"),
            json!(["ALL"]),
        )
        .apply_json(&mut v)
        .unwrap();
        assert_eq!(
            v["spec"]["containers"][0]["securityContext"],
            json!({"capabilities": {"drop": ["ALL"]}})
        );
        Op::set(path("spec.containers[0].name"), "b")
            .apply_json(&mut v)
            .unwrap();
        assert_eq!(v["spec"]["containers"][0]["name"], "b");
    }

    #[test]
    fn append_extends_or_creates() {
        let mut v = json!({"drop": ["NET_RAW"], "none": null});
        Op::append(path("drop"), "ALL").apply_json(&mut v).unwrap();
        Op::append(path("none"), "ALL").apply_json(&mut v).unwrap();
        Op::append(path("new.list"), "ALL")
            .apply_json(&mut v)
            .unwrap();
        assert_eq!(
            v,
            json!({"drop": ["NET_RAW", "ALL"], "none": ["ALL"], "new": {"list": ["ALL"]}})
        );
    }

    #[test]
    fn refuses_what_does_not_fit() {
        let mut v = json!({"a": "text", "list": []});
        assert!(Op::set(path("a.b"), 1).apply_json(&mut v).is_err());
        assert!(Op::set(path("list[0].b"), 1).apply_json(&mut v).is_err());
        assert!(Op::append(path("a"), 1).apply_json(&mut v).is_err());
    }

    #[test]
    fn list_items_are_prefixed() {
        let op = Op::set(path("spec.x"), true).in_list_item(3);
        assert_eq!(op.path.to_string(), "items[3].spec.x");
    }
}

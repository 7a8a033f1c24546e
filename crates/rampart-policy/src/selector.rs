//! Label selectors, with Kubernetes' semantics.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde_json::Value;

use crate::PolicyError;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Requirement {
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    DoesNotExist(String),
}

/// A compiled label selector. The empty selector matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selector {
    requirements: Vec<Requirement>,
}

impl Selector {
    /// Compiles a selector; `field` locates errors (`spec.matchConstraints.objectSelector`).
    pub fn compile(selector: &LabelSelector, field: &str) -> Result<Selector, PolicyError> {
        let mut requirements = Vec::new();
        for (k, v) in selector.match_labels.iter().flatten() {
            requirements.push(Requirement::In(k.clone(), vec![v.clone()]));
        }
        for (i, expr) in selector.match_expressions.iter().flatten().enumerate() {
            let at = format!("{field}.matchExpressions[{i}]");
            let values = expr.values.clone().unwrap_or_default();
            let key = expr.key.clone();
            if key.is_empty() {
                return Err(PolicyError::new("key is required").at_field(format!("{at}.key")));
            }
            let req = match expr.operator.as_str() {
                "In" | "NotIn" if values.is_empty() => {
                    return Err(PolicyError::new(format!(
                        "operator {} needs at least one value",
                        expr.operator
                    ))
                    .at_field(format!("{at}.values")));
                }
                "Exists" | "DoesNotExist" if !values.is_empty() => {
                    return Err(PolicyError::new(format!(
                        "operator {} takes no values",
                        expr.operator
                    ))
                    .at_field(format!("{at}.values")));
                }
                "In" => Requirement::In(key, values),
                "NotIn" => Requirement::NotIn(key, values),
                "Exists" => Requirement::Exists(key),
                "DoesNotExist" => Requirement::DoesNotExist(key),
                other => {
                    return Err(PolicyError::new(format!(
                        "unknown operator {other:?}: expected In, NotIn, Exists or DoesNotExist"
                    ))
                    .at_field(format!("{at}.operator")));
                }
            };
            requirements.push(req);
        }
        Ok(Selector { requirements })
    }

    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Whether a set of labels satisfies every requirement.
    pub fn matches(&self, labels: &dyn Labels) -> bool {
        self.requirements.iter().all(|r| match r {
            Requirement::In(k, vs) => labels.get(k).is_some_and(|v| vs.iter().any(|x| x == v)),
            Requirement::NotIn(k, vs) => labels.get(k).is_none_or(|v| !vs.iter().any(|x| x == v)),
            Requirement::Exists(k) => labels.get(k).is_some(),
            Requirement::DoesNotExist(k) => labels.get(k).is_none(),
        })
    }
}

/// Something with labels.
pub trait Labels {
    fn get(&self, key: &str) -> Option<&str>;
}

impl Labels for BTreeMap<String, String> {
    fn get(&self, key: &str) -> Option<&str> {
        BTreeMap::get(self, key).map(String::as_str)
    }
}

/// The labels of an object (`metadata.labels`); none when absent.
pub struct ObjectLabels<'a>(pub Option<&'a Value>);

impl ObjectLabels<'_> {
    pub fn of(object: &Value) -> ObjectLabels<'_> {
        ObjectLabels(object.get("metadata").and_then(|m| m.get("labels")))
    }
}

impl Labels for ObjectLabels<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0?.get(key)?.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sel(v: Value) -> Selector {
        Selector::compile(&serde_json::from_value(v).unwrap(), "s").unwrap()
    }

    #[test]
    fn matches_like_kubernetes() {
        let obj = json!({"metadata": {"labels": {"environment": "test", "tier": "web"}}});
        let labels = ObjectLabels::of(&obj);
        assert!(sel(json!({})).matches(&labels));
        assert!(sel(json!({"matchLabels": {"environment": "test"}})).matches(&labels));
        assert!(!sel(json!({"matchLabels": {"environment": "prod"}})).matches(&labels));
        let not_in = sel(
            json!({"matchExpressions": [{"key": "environment", "operator": "NotIn", "values": ["test"]}]}),
        );
        assert!(!not_in.matches(&labels));
        // NotIn matches objects without the label.
        assert!(not_in.matches(&ObjectLabels::of(&json!({}))));
        assert!(
            sel(json!({"matchExpressions": [{"key": "tier", "operator": "Exists"}]}))
                .matches(&labels)
        );
        assert!(
            sel(json!({"matchExpressions": [{"key": "x", "operator": "DoesNotExist"}]}))
                .matches(&labels)
        );
    }

    #[test]
    fn rejects_bad_selectors() {
        let bad: LabelSelector = serde_json::from_value(
            json!({"matchExpressions": [{"key": "a", "operator": "Equals", "values": ["b"]}]}),
        )
        .unwrap();
        let e = Selector::compile(&bad, "spec.objectSelector").unwrap_err();
        assert_eq!(
            e.field.as_deref(),
            Some("spec.objectSelector.matchExpressions[0].operator")
        );
        let bad: LabelSelector =
            serde_json::from_value(json!({"matchExpressions": [{"key": "a", "operator": "In"}]}))
                .unwrap();
        assert!(Selector::compile(&bad, "s").is_err());
    }
}

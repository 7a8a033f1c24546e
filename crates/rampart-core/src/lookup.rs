//! What rules may read besides the object under review: its namespace and,
//! for exec and attach, the target pod. The webhook answers these from
//! files (`rampart serve --namespaces/--pods`) or from live watches
//! (`rampart serve --cluster`); the rules cannot tell which.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

use crate::value::{field, str_field};

/// What rules know about a namespace.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NamespaceInfo {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

impl NamespaceInfo {
    /// From a Namespace object; `None` unless it is one with a name.
    pub fn from_object(v: &Value) -> Option<Self> {
        if str_field(v, "kind") != Some("Namespace") || str_field(v, "apiVersion") != Some("v1") {
            return None;
        }
        let metadata = field(v, "metadata")?;
        let name = str_field(metadata, "name").filter(|n| !n.is_empty())?;
        let strings = |key: &str| -> BTreeMap<String, String> {
            field(metadata, key)
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                        .collect()
                })
                .unwrap_or_default()
        };
        Some(Self {
            name: name.to_owned(),
            labels: strings("labels"),
            annotations: strings("annotations"),
        })
    }

    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.get(key).map(String::as_str)
    }

    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.get(key).map(String::as_str)
    }
}

/// Namespaces by name. Implementations must answer from memory: lookups are on
/// the request path.
pub trait NamespaceLookup: Send + Sync {
    fn namespace(&self, name: &str) -> Option<Arc<NamespaceInfo>>;

    /// Whether the source has its initial contents (for `/readyz`).
    fn synced(&self) -> bool {
        true
    }
}

/// Pods by namespace and name, for the rules that judge a CONNECT by the pod
/// it targets.
pub trait PodLookup: Send + Sync {
    fn pod(&self, namespace: &str, name: &str) -> Option<Arc<Value>>;

    fn synced(&self) -> bool {
        true
    }
}

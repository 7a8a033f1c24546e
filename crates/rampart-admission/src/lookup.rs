//! Where rules learn about objects other than the one under review: the
//! namespace's labels and annotations, and (for exec and attach) the pod.
//!
//! In a cluster these come from watches (`rampart serve --cluster`, see
//! rampart-kube); here they come from files in the format
//! `kubectl get namespaces -o yaml` and `kubectl get pods -A -o yaml` print
//! (a List, or multi-document YAML), reloaded when the file changes.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Result, bail};
use arc_swap::ArcSwap;
pub use rampart_core::lookup::{NamespaceInfo, NamespaceLookup, PodLookup};
use rampart_core::value::{field, str_field};
use rampart_manifest::{Limits, Loader};
use serde_json::Value;

/// Namespaces held in memory, replaced as a whole.
#[derive(Default)]
pub struct StaticNamespaces {
    map: ArcSwap<HashMap<String, Arc<NamespaceInfo>>>,
}

impl StaticNamespaces {
    pub fn new(items: impl IntoIterator<Item = NamespaceInfo>) -> Self {
        let s = Self::default();
        s.replace(items);
        s
    }

    pub fn replace(&self, items: impl IntoIterator<Item = NamespaceInfo>) {
        let map = items
            .into_iter()
            .map(|n| (n.name.clone(), Arc::new(n)))
            .collect();
        self.map.store(Arc::new(map));
    }

    pub fn len(&self) -> usize {
        self.map.load().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reads Namespace objects from a YAML or JSON file.
    pub fn load_file(path: &Path) -> Result<Vec<NamespaceInfo>> {
        let values = load_objects(path)?;
        Ok(values
            .iter()
            .filter_map(NamespaceInfo::from_object)
            .collect())
    }
}

impl NamespaceLookup for StaticNamespaces {
    fn namespace(&self, name: &str) -> Option<Arc<NamespaceInfo>> {
        self.map.load().get(name).cloned()
    }
}

type PodMap = HashMap<String, HashMap<String, Arc<Value>>>;

/// Pods held in memory, replaced as a whole.
#[derive(Default)]
pub struct StaticPods {
    map: ArcSwap<PodMap>,
}

impl StaticPods {
    pub fn new(pods: impl IntoIterator<Item = Value>) -> Self {
        let s = Self::default();
        s.replace(pods);
        s
    }

    /// Keeps the Pods among `objects`; a Pod without a namespace is in `default`.
    pub fn replace(&self, objects: impl IntoIterator<Item = Value>) {
        let mut map = PodMap::new();
        for pod in objects {
            if str_field(&pod, "kind") != Some("Pod") || str_field(&pod, "apiVersion") != Some("v1")
            {
                continue;
            }
            let Some(meta) = field(&pod, "metadata") else {
                continue;
            };
            let Some(name) = str_field(meta, "name").map(str::to_owned) else {
                continue;
            };
            let ns = str_field(meta, "namespace").unwrap_or("default").to_owned();
            map.entry(ns).or_default().insert(name, Arc::new(pod));
        }
        self.map.store(Arc::new(map));
    }

    pub fn len(&self) -> usize {
        self.map.load().values().map(HashMap::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn load_file(path: &Path) -> Result<Vec<Value>> {
        load_objects(path)
    }
}

impl PodLookup for StaticPods {
    fn pod(&self, namespace: &str, name: &str) -> Option<Arc<Value>> {
        self.map.load().get(namespace)?.get(name).cloned()
    }
}

/// Every object in a YAML or JSON file, read as kubectl reads it. Any input
/// problem is an error: a half-read namespace file would silently weaken
/// policy (a namespace's `enforce` label lost), so the last good contents stay.
fn load_objects(path: &Path) -> Result<Vec<Value>> {
    let loader = Loader::new(Limits {
        max_file_bytes: 256 * 1024 * 1024,
        ..Limits::default()
    });
    let loaded = loader.load_file(path);
    if let Some(issue) = loaded.issues.first() {
        bail!("{}: {}", path.display(), issue.message);
    }
    Ok(loaded.manifests.into_iter().map(|m| m.value).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn namespaces_from_objects() {
        let ns = NamespaceInfo::from_object(&json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": "a", "labels": {"x": "y", "n": 1}, "annotations": {"k": "v"}}}))
        .unwrap();
        assert_eq!(ns.label("x"), Some("y"));
        assert_eq!(ns.label("n"), None);
        assert_eq!(ns.annotation("k"), Some("v"));
        assert!(NamespaceInfo::from_object(&json!({"apiVersion": "v1", "kind": "Pod"})).is_none());
        let lookup = StaticNamespaces::new([ns]);
        assert!(lookup.namespace("a").is_some());
        assert!(lookup.namespace("b").is_none());
    }

    #[test]
    fn pods_by_namespace_and_name() {
        let pods = StaticPods::new([
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "ns"}}),
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "q"}}),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}),
        ]);
        assert_eq!(pods.len(), 2);
        assert!(pods.pod("ns", "p").is_some());
        assert!(pods.pod("default", "q").is_some());
        assert!(pods.pod("ns", "q").is_none());
    }

    #[test]
    fn reads_kubectl_lists_and_rejects_broken_files() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("ns.yaml");
        std::fs::write(
            &good,
            "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Namespace\n  metadata: {name: a}\n- apiVersion: v1\n  kind: Namespace\n  metadata: {name: b, labels: {pod-security.kubernetes.io/enforce: restricted}}\n",
        )
        .unwrap();
        let items = StaticNamespaces::load_file(&good).unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(
            items[1].label("pod-security.kubernetes.io/enforce"),
            Some("restricted")
        );
        let bad = dir.path().join("bad.yaml");
        std::fs::write(&bad, "apiVersion: v1\nkind: Namespace\nmetadata: [\n").unwrap();
        assert!(StaticNamespaces::load_file(&bad).is_err());
        assert!(StaticNamespaces::load_file(&dir.path().join("missing.yaml")).is_err());
    }
}

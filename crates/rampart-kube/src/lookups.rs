//! The Namespaces and Pods the webhook's rules read, from watches held in
//! memory, trimmed to what the rules need (labels and annotations of a
//! Namespace; where a Pod runs and how privileged its containers are).
//!
//! A watch lags a write by a few milliseconds to seconds, so a Namespace and
//! a Pod created in one `kubectl apply`, or `kubectl exec` right after a
//! Pod's creation, can reach the webhook before the cache has them. For
//! those, [`ClusterLookups::prefetch`] does one GET with a short timeout
//! before the rules run; only if that fails too do the rules see an
//! unknown object.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use rampart_core::lookup::{NamespaceInfo, NamespaceLookup, PodLookup};
use serde_json::{Value, json};

use crate::ObjectCache;

/// Objects fetched on a cache miss are kept until the watch catches up, up
/// to this many of each kind (then the side table is cleared) and for at
/// most this long: a name deleted and created again must not be answered
/// from an old read.
const MAX_FETCHED: usize = 4096;
const FETCHED_TTL: Duration = Duration::from_secs(30);

/// An object read through on a cache miss, and when.
struct Fetched<T> {
    at: Instant,
    value: Arc<T>,
}

impl<T> Fetched<T> {
    fn fresh(&self) -> Option<Arc<T>> {
        (self.at.elapsed() < FETCHED_TTL).then(|| Arc::clone(&self.value))
    }
}

fn remember<K: std::hash::Hash + Eq, T>(table: &Mutex<HashMap<K, Fetched<T>>>, key: K, value: T) {
    let mut table = lock(table);
    if table.len() >= MAX_FETCHED {
        table.clear();
    }
    table.insert(
        key,
        Fetched {
            at: Instant::now(),
            value: Arc::new(value),
        },
    );
}

/// Namespaces and (optionally) Pods of the cluster, live.
pub struct ClusterLookups {
    client: kube::Client,
    namespaces: ObjectCache,
    pods: Option<ObjectCache>,
    fetched_namespaces: Mutex<HashMap<String, Fetched<NamespaceInfo>>>,
    fetched_pods: Mutex<HashMap<(String, String), Fetched<Value>>>,
}

fn resource(kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("", "v1", kind), plural)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl ClusterLookups {
    /// Starts the watches: Namespaces always, Pods when `pods` (exec and
    /// attach protection read them). `debug_lag` delays every watch event,
    /// for tests of the read-through.
    pub fn start(client: kube::Client, pods: bool, debug_lag: Option<Duration>) -> Self {
        let namespaces = ObjectCache::start_lagging(
            client.clone(),
            resource("Namespace", "namespaces"),
            |ns| {
                ns.data = Value::Null;
            },
            debug_lag,
        );
        let pods = pods.then(|| {
            ObjectCache::start_lagging(
                client.clone(),
                resource("Pod", "pods"),
                |pod| {
                    let view = exec_view_of_pod(&pod.data);
                    pod.data = view;
                },
                debug_lag,
            )
        });
        Self {
            client,
            namespaces,
            pods,
            fetched_namespaces: Mutex::default(),
            fetched_pods: Mutex::default(),
        }
    }

    pub fn has_pods(&self) -> bool {
        self.pods.is_some()
    }

    /// Waits for the first listing of every watch.
    pub async fn wait_until_ready(&self) {
        self.namespaces.wait_until_ready().await;
        if let Some(p) = &self.pods {
            p.wait_until_ready().await;
        }
    }

    pub fn namespace_count(&self) -> usize {
        self.namespaces.len()
    }

    pub fn pod_count(&self) -> usize {
        self.pods.as_ref().map_or(0, ObjectCache::len)
    }

    /// Makes sure the request's Namespace (and, for exec and attach, its
    /// Pod) is known before the rules run: when the watch has not delivered
    /// it, one GET bounded by `timeout` (an earlier read is not trusted: the
    /// name may have been deleted and created again since). A failed or
    /// timed-out GET is logged and left to the rules' handling of unknown
    /// objects.
    pub async fn prefetch(&self, namespace: &str, pod: Option<&str>, timeout: Duration) {
        if !namespace.is_empty() && self.namespaces.get("", namespace).is_none() {
            let api: Api<DynamicObject> =
                Api::all_with(self.client.clone(), self.namespaces.resource());
            // Whatever this read finds, an older one no longer answers.
            lock(&self.fetched_namespaces).remove(namespace);
            match tokio::time::timeout(timeout, api.get_opt(namespace)).await {
                Ok(Ok(Some(ns))) => {
                    tracing::info!(
                        namespace,
                        "namespace not in the cache yet: read from the API server"
                    );
                    remember(
                        &self.fetched_namespaces,
                        namespace.to_owned(),
                        namespace_info(&ns),
                    );
                }
                Ok(Ok(None)) => {}
                Ok(Err(e)) => {
                    tracing::warn!(namespace, error = %e, "reading a namespace missing from the cache")
                }
                Err(_) => tracing::warn!(
                    namespace,
                    ?timeout,
                    "reading a namespace missing from the cache timed out"
                ),
            }
        }
        let (Some(cache), Some(name)) = (&self.pods, pod) else {
            return;
        };
        if namespace.is_empty() || cache.get(namespace, name).is_some() {
            return;
        }
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), namespace, cache.resource());
        lock(&self.fetched_pods).remove(&(namespace.to_owned(), name.to_owned()));
        match tokio::time::timeout(timeout, api.get_opt(name)).await {
            Ok(Ok(Some(p))) => {
                tracing::info!(
                    namespace,
                    pod = name,
                    "pod not in the cache yet: read from the API server"
                );
                let view = pod_value(namespace, name, &exec_view_of_pod(&p.data));
                remember(
                    &self.fetched_pods,
                    (namespace.to_owned(), name.to_owned()),
                    view,
                );
            }
            Ok(Ok(None)) => {}
            Ok(Err(e)) => {
                tracing::warn!(namespace, pod = name, error = %e, "reading a pod missing from the cache")
            }
            Err(_) => {
                tracing::warn!(
                    namespace,
                    pod = name,
                    ?timeout,
                    "reading a pod missing from the cache timed out"
                )
            }
        }
    }
}

fn namespace_info(ns: &DynamicObject) -> NamespaceInfo {
    NamespaceInfo {
        name: ns.metadata.name.clone().unwrap_or_default(),
        labels: ns.metadata.labels.clone().unwrap_or_default(),
        annotations: ns.metadata.annotations.clone().unwrap_or_default(),
    }
}

fn pod_value(namespace: &str, name: &str, data: &Value) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": data["spec"],
    })
}

impl NamespaceLookup for ClusterLookups {
    fn namespace(&self, name: &str) -> Option<Arc<NamespaceInfo>> {
        match self.namespaces.get("", name) {
            Some(ns) => Some(Arc::new(namespace_info(&ns))),
            None => lock(&self.fetched_namespaces)
                .get(name)
                .and_then(Fetched::fresh),
        }
    }

    fn synced(&self) -> bool {
        self.namespaces.is_ready()
    }
}

impl PodLookup for ClusterLookups {
    fn pod(&self, namespace: &str, name: &str) -> Option<Arc<Value>> {
        let cache = self.pods.as_ref()?;
        match cache.get(namespace, name) {
            Some(p) => Some(Arc::new(pod_value(namespace, name, &p.data))),
            None => lock(&self.fetched_pods)
                .get(&(namespace.to_owned(), name.to_owned()))
                .and_then(Fetched::fresh),
        }
    }

    fn synced(&self) -> bool {
        self.pods.as_ref().is_none_or(ObjectCache::is_ready)
    }
}

/// The part of a Pod (its `spec`, wrapped as `{"spec": …}`) that exec and
/// attach protection reads: host namespaces, the pod security context and
/// each container's name and security context.
pub fn exec_view_of_pod(pod: &Value) -> Value {
    let spec = &pod["spec"];
    let containers = |key: &str| -> Value {
        Value::Array(
            spec[key]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| {
                    let mut out = json!({"name": c["name"]});
                    if !c["securityContext"].is_null() {
                        out["securityContext"] = c["securityContext"].clone();
                    }
                    out
                })
                .collect(),
        )
    };
    let mut out = json!({"spec": {"containers": containers("containers")}});
    for key in ["initContainers", "ephemeralContainers"] {
        if spec[key].is_array() {
            out["spec"][key] = containers(key);
        }
    }
    for key in ["hostPID", "hostIPC", "hostNetwork", "securityContext"] {
        if !spec[key].is_null() {
            out["spec"][key] = spec[key].clone();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_view_keeps_what_exec_protection_reads_and_nothing_else() {
        let pod = json!({"spec": {
            "hostPID": true,
            "nodeName": "n1",
            "containers": [{"name": "a", "image": "x", "env": [{"name": "SECRET", "value": "s3cr3t"}],
                            "securityContext": {"privileged": true}}],
            "initContainers": [{"name": "i", "image": "y"}],
        }});
        let view = exec_view_of_pod(&pod);
        assert_eq!(
            view,
            json!({"spec": {
                "hostPID": true,
                "containers": [{"name": "a", "securityContext": {"privileged": true}}],
                "initContainers": [{"name": "i"}],
            }})
        );
        assert!(!view.to_string().contains("s3cr3t"));
    }
}

//! The cluster's policies, live: Rampart's `ClusterPolicy` and `Policy` and
//! the objects of the kinds their `paramKind`s name, watched and compiled
//! in memory.
//!
//! Compilation is per-policy last-good ([`LastGood`]): a policy whose new
//! version does not compile keeps its previous version in force and is
//! reported, and every other policy's update goes through. A policy with a
//! `paramKind` is compiled only once that kind's objects are listed, so it
//! never meets "no parameters" because the cache is still filling.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use rampart_policy::{CompileOptions, LastGood, PolicySet, Rejected};
use serde_json::Value;
use tokio::sync::watch;

use crate::ObjectCache;

/// The policy kinds watched: `(group, version, kind, plural)`. Native
/// ValidatingAdmissionPolicies are the API server's to enforce; the
/// webhook does not run them a second time.
pub const POLICY_KINDS: &[(&str, &str, &str, &str)] = &[
    (
        "rampart.dev",
        "v1alpha1",
        "ClusterPolicy",
        "clusterpolicies",
    ),
    ("rampart.dev", "v1alpha1", "Policy", "policies"),
];

/// How [`PolicyWatch`] compiles.
#[derive(Clone, Default)]
pub struct PolicyWatchOptions {
    pub compile: CompileOptions,
    /// Documents compiled in when the cluster has no Rampart policy at all
    /// (the controller audits with Rampart's built-in checks then).
    pub when_empty: Vec<Value>,
}

/// The compiled policies of the cluster, kept current by watches.
pub struct PolicyWatch {
    current: ArcSwap<PolicySet>,
    rejected: Mutex<Vec<Rejected>>,
    /// Bumped after every compilation that changed the set in force.
    generation: watch::Sender<u64>,
    ready: std::sync::atomic::AtomicBool,
}

impl PolicyWatch {
    /// Starts the watches and the compile loop.
    pub fn start(client: kube::Client, options: PolicyWatchOptions) -> Arc<Self> {
        let (generation, _) = watch::channel(0);
        let this = Arc::new(Self {
            current: ArcSwap::from_pointee(PolicySet::empty()),
            rejected: Mutex::new(Vec::new()),
            generation,
            ready: std::sync::atomic::AtomicBool::new(false),
        });
        let caches: Vec<ObjectCache> = POLICY_KINDS
            .iter()
            .map(|&(g, v, k, p)| {
                let ar = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(g, v, k), p);
                ObjectCache::start(client.clone(), ar, |_| {})
            })
            .collect();
        tokio::spawn(compile_loop(Arc::downgrade(&this), client, caches, options));
        this
    }

    /// The set in force (empty until the first compilation).
    pub fn current(&self) -> Arc<PolicySet> {
        self.current.load_full()
    }

    /// Whether every policy kind and parameter kind has been listed and
    /// compiled once.
    pub fn is_ready(&self) -> bool {
        self.ready.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Policies whose current version is not in force, and why.
    pub fn rejected(&self) -> Vec<Rejected> {
        self.rejected
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Changes after every compilation that replaced the set in force.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }

    /// Waits until [`is_ready`](Self::is_ready).
    pub async fn wait_until_ready(&self) {
        let mut rx = self.subscribe();
        while !self.is_ready() {
            if rx.changed().await.is_err() {
                return;
            }
        }
    }
}

/// `(group, version, kind)` of every policy's `spec.paramKind`, once each.
fn param_kinds(policies: &[Value]) -> Vec<(String, String, String)> {
    let mut out: Vec<(String, String, String)> = policies
        .iter()
        .filter_map(rampart_policy::param_kind)
        .map(|p| (p.group, p.version, p.kind))
        .collect();
    out.sort();
    out.dedup();
    out
}

fn document(obj: &DynamicObject) -> Option<Value> {
    serde_json::to_value(obj).ok()
}

/// Why a parameter kind's objects are not available yet.
fn unlisted(kind: &(String, String, String), failure: Option<&String>) -> String {
    let (group, version, kind) = kind;
    let api_version = if group.is_empty() {
        version.clone()
    } else {
        format!("{group}/{version}")
    };
    match failure {
        Some(e) => format!("parameter kind {kind} ({api_version}) cannot be watched: {e}"),
        None => format!("parameter kind {kind} ({api_version}) is not listed yet"),
    }
}

async fn compile_loop(
    this: std::sync::Weak<PolicyWatch>,
    client: kube::Client,
    caches: Vec<ObjectCache>,
    options: PolicyWatchOptions,
) {
    let mut params: BTreeMap<(String, String, String), ObjectCache> = BTreeMap::new();
    // Parameter kinds discovery could not resolve, and why; retried.
    let mut failed: BTreeMap<(String, String, String), String> = BTreeMap::new();
    let mut last_good = LastGood::new();
    let mut receivers: Vec<watch::Receiver<u64>> =
        caches.iter().map(ObjectCache::changes).collect();
    // When the first parameter-kind watch started: the first compilation
    // waits a while from then for parameter kinds being listed.
    let mut params_began: Option<tokio::time::Instant> = None;
    loop {
        let Some(ready_before) = this.upgrade().map(|t| t.is_ready()) else {
            return;
        };
        let listed = caches.iter().all(ObjectCache::is_ready);
        let policies: Vec<Value> = caches
            .iter()
            .flat_map(|c| c.state())
            .filter_map(|o| document(&o))
            .collect();
        let wanted = param_kinds(&policies);
        // Start watching parameter kinds the policies name, once each.
        for key in &wanted {
            if params.contains_key(key) {
                continue;
            }
            let (group, version, kind) = key;
            let gvk = GroupVersionKind::gvk(group, version, kind);
            match kube::discovery::pinned_kind(&client, &gvk).await {
                Ok((ar, _)) => {
                    failed.remove(key);
                    params_began.get_or_insert_with(tokio::time::Instant::now);
                    let cache = ObjectCache::start(client.clone(), ar, |_| {});
                    receivers.push(cache.changes());
                    params.insert(key.clone(), cache);
                }
                Err(e) => {
                    tracing::warn!(%group, %version, %kind, error = %e, "finding a parameter kind the policies name");
                    failed.insert(key.clone(), e.to_string());
                }
            }
        }
        let unlisted_kinds: Vec<&(String, String, String)> = wanted
            .iter()
            .filter(|k| !params.get(*k).is_some_and(ObjectCache::is_ready))
            .collect();
        // At start, wait (a while) for the parameter kinds that are being
        // listed: the first set in force has every policy whose parameters
        // exist. A kind that cannot be listed (forbidden) is held after that.
        let grace_ends = params_began.map(|t| t + PARAMS_AT_START);
        let starting = !ready_before
            && grace_ends.is_some_and(|end| tokio::time::Instant::now() < end)
            && unlisted_kinds.iter().any(|k| params.contains_key(*k));
        if listed && !starting {
            // A policy whose parameter kind is not listed (yet, or at all)
            // keeps its previous version; the others go through.
            let held: Vec<(String, String)> = policies
                .iter()
                .filter_map(|p| {
                    let pk = rampart_policy::param_kind(p)?;
                    let key = unlisted_kinds
                        .iter()
                        .find(|(wg, _, wk)| *wg == pk.group && *wk == pk.kind)?;
                    Some((
                        rampart_policy::policy_label(p)?,
                        unlisted(key, failed.get(*key)),
                    ))
                })
                .collect();
            let context: Vec<Value> = wanted
                .iter()
                .filter_map(|k| params.get(k).filter(|c| c.is_ready()))
                .flat_map(|c| c.state())
                .filter_map(|o| document(&o))
                .collect();
            let docs = if policies.is_empty() {
                options.when_empty.clone()
            } else {
                policies
            };
            let opts = options.compile.clone();
            let compiled = tokio::task::spawn_blocking(move || {
                let result = last_good.compile(&docs, &context, &held, &opts);
                (last_good, result)
            })
            .await;
            let Some(this) = this.upgrade() else { return };
            match compiled {
                Ok((lg, result)) => {
                    last_good = lg;
                    match result {
                        Ok(c) => {
                            for r in &c.rejected {
                                tracing::error!(
                                    policy = %r.policy,
                                    kept_previous = r.kept_previous,
                                    errors = %rampart_policy::ErrorList(&r.errors),
                                    "policy rejected"
                                );
                            }
                            *this.rejected.lock().unwrap_or_else(|e| e.into_inner()) = c.rejected;
                            this.current.store(Arc::new(c.set));
                            this.ready.store(true, std::sync::atomic::Ordering::Release);
                            this.generation.send_modify(|g| *g += 1);
                        }
                        Err(errors) => tracing::error!(
                            errors = %rampart_policy::ErrorList(&errors),
                            "policies do not compile; keeping the set in force"
                        ),
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "policy compilation panicked");
                    last_good = LastGood::new();
                }
            }
        }
        // Wait for the next change anywhere (or, while discovery of a
        // parameter kind fails, for the next retry), then let a burst settle.
        let changed =
            futures::future::select_all(receivers.iter_mut().map(|r| Box::pin(r.changed())));
        let wake = match (failed.is_empty(), starting) {
            (_, true) => grace_ends,
            (false, false) => Some(tokio::time::Instant::now() + DISCOVERY_RETRY),
            (true, false) => None,
        };
        let retry = async {
            match wake {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            (result, _, _) = changed => if result.is_err() { return },
            () = retry => {}
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        for r in &mut receivers {
            r.borrow_and_update();
        }
    }
}

/// How often discovery of a parameter kind that failed is tried again.
const DISCOVERY_RETRY: Duration = Duration::from_secs(30);

/// How long the first compilation waits for parameter kinds being listed.
const PARAMS_AT_START: Duration = Duration::from_secs(30);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn param_kinds_are_read_from_every_policy() {
        let p = |api: &str, kind: &str| json!({"spec": {"paramKind": {"apiVersion": api, "kind": kind}}});
        let kinds = param_kinds(&[
            p("v1", "ConfigMap"),
            p("example.com/v1", "Limits"),
            p("v1", "ConfigMap"),
            json!({}),
        ]);
        assert_eq!(
            kinds,
            [
                ("".into(), "v1".into(), "ConfigMap".into()),
                ("example.com".into(), "v1".into(), "Limits".into()),
            ]
        );
    }
}

//! `rampart controller`.
//!
//! Every replica:
//!
//! - applies the CRDs ([`crate::crds`]) at start (server-side apply, so
//!   replicas racing converge);
//! - watches `ClusterPolicy`/`Policy` objects and Namespaces and compiles
//!   them into a [`PolicySet`] (Rampart's default built-in policy when the
//!   cluster has none); with `--policy-dir` it writes the policy documents
//!   to `DIR/policies.yaml` (atomically) for a webhook that hot-reloads a
//!   policy directory;
//! - watches the audited kinds (pod-bearing workloads, RBAC, Namespaces),
//!   evaluating an object only when its `resourceVersion` changed, and every
//!   object again when the policies change (debounced to one recompile per
//!   report interval);
//!
//! and only the replica holding the Lease (kube-lease-manager) writes:
//! the PolicyReports of namespaces whose results changed, the
//! ClusterPolicyReport, Events for new violations (at most one per object
//! per `--event-interval`, and at most `--max-events-per-minute` in all,
//! as a token bucket), and, with `--manage-webhook`, the certificate Secret
//! and the webhook configurations. A new leader rewrites every report once,
//! so a report half-written by a leader that died is repaired.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures::StreamExt;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::api::{Api, DynamicObject};
use kube::runtime::WatchStreamExt;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::watcher;
use kube_lease_manager::LeaseManagerBuilder;
use rampart_admission::webhook_config::{ClientConfig, FailurePolicy, WebhookConfigOptions};
use rampart_core::object::group_of;
use rampart_kube::POLICY_KINDS;
use rampart_policy::{LastGood, MatchedKind, PolicySet, Rejected};
use serde_json::Value;

use crate::audit::{self, Audited, ObjectKey, ResultKind};
use crate::inventory::{api_resource, workload_kinds};

/// The kinds audited besides the workloads, as `(group, kind)`.
const OTHER_AUDITED_KINDS: &[(&str, &str)] = &[
    ("", "Namespace"),
    ("rbac.authorization.k8s.io", "Role"),
    ("rbac.authorization.k8s.io", "RoleBinding"),
    ("rbac.authorization.k8s.io", "ClusterRole"),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
];

/// Webhook management (`--manage-webhook`).
#[derive(Clone, Debug)]
pub struct WebhookOptions {
    /// Name of both webhook configurations.
    pub name: String,
    pub service_name: String,
    pub service_port: u16,
    /// Secret with the CA and serving certificate.
    pub secret_name: String,
    pub failure_policy: FailurePolicy,
    pub timeout_seconds: u32,
    pub exec_protection: bool,
    /// The `rampart serve` configuration file, so the rules match.
    pub config: Option<PathBuf>,
    pub exclude_namespaces: Vec<String>,
    /// Leave the Secret to cert-manager; only read its `ca.crt`.
    pub cert_manager: bool,
}

#[derive(Clone, Debug)]
pub struct Options {
    /// Rampart's namespace: the Lease and the Secret live there.
    pub namespace: String,
    pub lease_name: String,
    /// This replica's identity in the Lease (the pod name).
    pub identity: String,
    pub lease_duration: Duration,
    pub lease_grace: Duration,
    pub install_crds: bool,
    pub report_interval: Duration,
    /// Most results listed per report (the summary counts all).
    pub max_results: usize,
    pub events: bool,
    pub event_interval: Duration,
    /// Token bucket over all Events: this many per minute, bursts up to as many.
    pub max_events_per_minute: u32,
    pub policy_dir: Option<PathBuf>,
    pub webhook: Option<WebhookOptions>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            namespace: "rampart-system".into(),
            lease_name: "rampart-controller".into(),
            identity: default_identity(),
            lease_duration: Duration::from_secs(15),
            lease_grace: Duration::from_secs(5),
            install_crds: true,
            report_interval: Duration::from_secs(10),
            max_results: 1000,
            events: true,
            event_interval: Duration::from_secs(600),
            max_events_per_minute: 60,
            policy_dir: None,
            webhook: None,
        }
    }
}

/// `$POD_NAME`, else `$HOSTNAME-<pid>`.
pub fn default_identity() -> String {
    std::env::var("POD_NAME").unwrap_or_else(|_| {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "rampart".into());
        format!("{host}-{}", std::process::id())
    })
}

/// `None` is the cluster scope (the ClusterPolicyReport).
type Scope = Option<String>;

fn scope_of(key: &ObjectKey) -> Scope {
    (!key.namespace.is_empty()).then(|| key.namespace.clone())
}

struct State {
    set: Arc<PolicySet>,
    policies: BTreeMap<(String, String, String), Value>,
    namespaces: BTreeMap<String, Value>,
    objects: HashMap<ObjectKey, (Value, Audited)>,
    dirty: BTreeSet<Scope>,
    recompile: bool,
    /// Objects with new violations since the last flush.
    violations: BTreeSet<ObjectKey>,
    last_event: HashMap<ObjectKey, Instant>,
    /// Scopes that had a report written (to know which to rewrite empty).
    written: BTreeSet<Scope>,
    /// The Event token bucket.
    event_tokens: f64,
    event_refilled: Option<Instant>,
    /// Kinds the policies match beyond the audited ones, not yet resolved.
    pending_kinds: BTreeSet<MatchedKind>,
    /// Kinds whose initial listing completed.
    synced: HashSet<String>,
    /// `(group, kind)` of the policies' `paramKind`s: their objects are
    /// compiled (and handed to the webhook) with the policies.
    param_kinds: BTreeSet<(String, String)>,
    /// Successful policy compilations so far.
    policy_generation: u64,
    /// The last version of each policy that compiled.
    last_good: LastGood,
    /// Policies whose current version does not compile, by label.
    rejected: BTreeMap<String, Rejected>,
    /// The `Ready` condition last written per policy label.
    status_written: HashMap<String, WrittenStatus>,
    /// The cluster's policy documents in force (a rejected update's previous
    /// version in its place): what the webhook rules are rendered from.
    in_force: Vec<Value>,
}

/// A policy's `Ready` condition as last written, for the object it was
/// written on (a re-created policy is a new object).
#[derive(Clone, Debug, PartialEq)]
struct WrittenStatus {
    uid: String,
    generation: Option<i64>,
    ready: bool,
    message: String,
}

/// `(group, kind)` of every policy's `spec.paramKind`.
pub fn param_kinds<'a>(
    policies: impl IntoIterator<Item = &'a Value>,
) -> BTreeSet<(String, String)> {
    policies
        .into_iter()
        .filter_map(rampart_policy::param_kind)
        .map(|p| (p.group, p.kind))
        .collect()
}

/// The kinds and resources the policies match (wildcards and subresources
/// left out), and their parameter kinds.
pub fn matched_kinds<'a>(policies: impl IntoIterator<Item = &'a Value>) -> BTreeSet<MatchedKind> {
    let mut out = BTreeSet::new();
    for p in policies {
        if let Some(pk) = rampart_policy::param_kind(p) {
            out.insert(MatchedKind {
                group: Some(pk.group),
                kind: Some(pk.kind),
                resource: None,
            });
        }
        out.extend(rampart_policy::matched_kinds(p));
    }
    out
}

impl Default for State {
    fn default() -> Self {
        Self {
            set: Arc::new(PolicySet::empty()),
            policies: BTreeMap::new(),
            namespaces: BTreeMap::new(),
            objects: HashMap::new(),
            dirty: BTreeSet::new(),
            recompile: false,
            violations: BTreeSet::new(),
            last_event: HashMap::new(),
            written: BTreeSet::new(),
            event_tokens: 0.0,
            event_refilled: None,
            pending_kinds: BTreeSet::new(),
            synced: HashSet::new(),
            param_kinds: BTreeSet::new(),
            policy_generation: 0,
            last_good: LastGood::new(),
            rejected: BTreeMap::new(),
            status_written: HashMap::new(),
            in_force: Vec::new(),
        }
    }
}

impl State {
    fn upsert(&mut self, value: Value) {
        let Some(key) = ObjectKey::of(&value) else {
            return;
        };
        let meta = &value["metadata"];
        let rv = meta["resourceVersion"].as_str().unwrap_or_default();
        if let Some((_, old)) = self.objects.get(&key)
            && old.resource_version == rv
            && !rv.is_empty()
        {
            return;
        }
        let namespace = self.namespaces.get(&key.namespace);
        let rows = audit::evaluate(&self.set, &value, namespace);
        let audited = Audited {
            uid: meta["uid"].as_str().unwrap_or_default().to_owned(),
            resource_version: rv.to_owned(),
            rows,
        };
        let old_failures: HashSet<_> = self
            .objects
            .get(&key)
            .map(|(_, a)| {
                a.failures()
                    .map(|r| (r.policy.clone(), r.rule.clone()))
                    .collect()
            })
            .unwrap_or_default();
        if audited
            .failures()
            .any(|r| !old_failures.contains(&(r.policy.clone(), r.rule.clone())))
        {
            self.violations.insert(key.clone());
        }
        let changed = self
            .objects
            .get(&key)
            .is_none_or(|(_, a)| a.rows != audited.rows);
        if changed {
            self.dirty.insert(scope_of(&key));
        }
        self.objects.insert(key, (value, audited));
    }

    fn remove(&mut self, key: &ObjectKey) {
        if self.objects.remove(key).is_some() {
            self.dirty.insert(scope_of(key));
        }
        self.last_event.remove(key);
    }

    fn reevaluate_all(&mut self) {
        self.reevaluate(|_| true);
    }

    /// Audits again the objects `which` selects (a policy change: all; a
    /// Namespace's labels: the objects in it).
    fn reevaluate(&mut self, which: impl Fn(&ObjectKey) -> bool) {
        let set = self.set.clone();
        for (key, (value, audited)) in self.objects.iter_mut().filter(|(k, _)| which(k)) {
            let rows = audit::evaluate(&set, value, self.namespaces.get(&key.namespace));
            if rows != audited.rows {
                audited.rows = rows;
                self.dirty.insert(scope_of(key));
                if audited.failures().next().is_some() {
                    self.violations.insert(key.clone());
                }
            }
        }
    }

    fn policy_documents(&self) -> Vec<Value> {
        let mut docs: Vec<Value> = self.policies.values().cloned().collect();
        if docs.is_empty() {
            docs.push(
                serde_json::to_value(rampart_policy::default_builtin_policy())
                    .expect("the default policy serializes"),
            );
        }
        docs
    }

    /// The objects of the policies' parameter kinds.
    fn param_objects(&self) -> Vec<Value> {
        if self.param_kinds.is_empty() {
            return Vec::new();
        }
        let mut out: Vec<(&ObjectKey, &Value)> = self
            .objects
            .iter()
            .filter(|(k, _)| self.is_param_kind(group_of(&k.api_version), &k.kind))
            .map(|(k, (v, _))| (k, v))
            .collect();
        out.sort_by(|a, b| {
            (&a.0.kind, &a.0.namespace, &a.0.name).cmp(&(&b.0.kind, &b.0.namespace, &b.0.name))
        });
        out.into_iter().map(|(_, v)| v.clone()).collect()
    }

    fn is_param_kind(&self, group: &str, kind: &str) -> bool {
        self.param_kinds
            .iter()
            .any(|(g, k)| g == group && k == kind)
    }

    /// Compiles the policies with per-policy last-good: a policy whose new
    /// version does not compile keeps its previous one (and is reported in
    /// its status and an Event); the others' updates go through.
    fn compile(&mut self) -> Result<(), String> {
        self.param_kinds = param_kinds(self.policies.values());
        let docs = self.policy_documents();
        // Namespaces are not compiled in: the audit hands each object its
        // Namespace, so a label change re-audits that namespace only.
        let context = self.param_objects();
        match self.last_good.compile(
            &docs,
            &context,
            &[],
            &rampart_policy::CompileOptions::default(),
        ) {
            Ok(compiled) => {
                self.set = Arc::new(compiled.set);
                // Without cluster policies the set is the audit's default,
                // which is not for the webhook to enforce.
                self.in_force = if self.policies.is_empty() {
                    Vec::new()
                } else {
                    compiled.in_force
                };
                self.rejected = compiled
                    .rejected
                    .into_iter()
                    .map(|r| (r.policy.clone(), r))
                    .collect();
                for r in self.rejected.values() {
                    tracing::warn!(
                        policy = %r.policy,
                        kept_previous = r.kept_previous,
                        errors = %rampart_policy::ErrorList(&r.errors),
                        "policy rejected"
                    );
                }
                Ok(())
            }
            Err(errors) => Err(errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")),
        }
    }

    /// The cluster's policies in force, for the webhook rules; `None` while
    /// the set is the audit's default, which is not for the webhook.
    fn webhook_policies(&self) -> Option<Arc<PolicySet>> {
        (!self.policies.is_empty()).then(|| self.set.clone())
    }

    /// The `Ready` condition each policy should show, where it differs from
    /// what was last written on that object at that generation.
    fn status_updates(&self) -> Vec<StatusUpdate> {
        let mut out = Vec::new();
        for ((kind, ns, name), doc) in &self.policies {
            let Some(label) = rampart_policy::policy_label(doc) else {
                continue;
            };
            let (ready, message) = match self.rejected.get(&label) {
                Some(r) => (
                    false,
                    format!(
                        "{}{}",
                        rampart_policy::ErrorList(&r.errors),
                        if r.kept_previous {
                            "; the previous version stays in force"
                        } else {
                            "; the policy is not in force"
                        }
                    ),
                ),
                None => (true, "compiled and in force".to_owned()),
            };
            let status = WrittenStatus {
                uid: doc["metadata"]["uid"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                generation: doc["metadata"]["generation"].as_i64(),
                ready,
                message,
            };
            if self.status_written.get(&label) != Some(&status) {
                out.push(StatusUpdate {
                    kind: kind.clone(),
                    namespace: ns.clone(),
                    name: name.clone(),
                    label,
                    status,
                });
            }
        }
        out
    }
}

/// A policy's `Ready` condition to write.
struct StatusUpdate {
    kind: String,
    namespace: String,
    name: String,
    label: String,
    status: WrittenStatus,
}

type Shared = Arc<Mutex<State>>;

fn lock(state: &Shared) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// An object as the state keeps it: JSON, with `apiVersion` and `kind`
/// (watch items come without them) and without `managedFields`.
fn document(ar: &kube::api::ApiResource, obj: &DynamicObject) -> Option<Value> {
    let mut value = match serde_json::to_value(obj) {
        Ok(v) => v,
        Err(e) => {
            // Never silently: a dropped object would vanish from the reports.
            tracing::error!(kind = %ar.kind, name = ?obj.metadata.name, error = %e, "an object could not be converted; it is not audited");
            CONVERSION_FAILURES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return None;
        }
    };
    if let Some(map) = value.as_object_mut() {
        map.insert("apiVersion".into(), Value::String(ar.api_version.clone()));
        map.insert("kind".into(), Value::String(ar.kind.clone()));
        if let Some(meta) = map.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("managedFields");
        }
    }
    Some(value)
}

/// Objects the controller could not convert to audit (see [`document`]).
pub static CONVERSION_FAILURES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Feeds one kind's watch into the state, with a kube-runtime reflector
/// keeping the kind's keys: its store buffers a (re-)listing and swaps it in
/// whole at `InitDone`, when what the state holds of the kind but the store
/// does not was deleted while the watch was down. The store keeps metadata
/// only; the state keeps what the audit needs, once.
async fn watch_kind(client: kube::Client, state: Shared, ar: kube::api::ApiResource, policy: bool) {
    let api: Api<DynamicObject> = Api::all_with(client, &ar);
    let kind = ar.kind.clone();
    let writer = kube::runtime::reflector::store::Writer::<DynamicObject>::new(ar.clone());
    let store = writer.as_reader();
    let feed = state.clone();
    let feed_ar = ar.clone();
    let mut stream = watcher(api, watcher::Config::default())
        .default_backoff()
        .map(move |event| {
            if let Ok(e) = &event {
                let mut st = lock(&feed);
                match e {
                    watcher::Event::InitApply(obj) | watcher::Event::Apply(obj) => {
                        if let Some(value) = document(&feed_ar, obj) {
                            st.apply(&feed_ar.kind, &feed_ar.group, policy, value);
                        }
                    }
                    watcher::Event::Delete(obj) => {
                        // From the metadata alone: a delete must never be lost.
                        let key = ObjectKey {
                            api_version: feed_ar.api_version.clone(),
                            kind: feed_ar.kind.clone(),
                            namespace: obj.metadata.namespace.clone().unwrap_or_default(),
                            name: obj.metadata.name.clone().unwrap_or_default(),
                        };
                        st.delete(&feed_ar.group, policy, &key);
                    }
                    watcher::Event::Init | watcher::Event::InitDone => {}
                }
            }
            event
        })
        .modify(|obj: &mut DynamicObject| {
            obj.data = Value::Null;
            obj.metadata = kube::api::ObjectMeta {
                name: obj.metadata.name.take(),
                namespace: obj.metadata.namespace.take(),
                ..kube::api::ObjectMeta::default()
            };
        })
        .reflect(writer)
        .boxed();
    while let Some(event) = stream.next().await {
        match event {
            Ok(watcher::Event::InitDone) => {
                let listed: HashSet<(String, String)> = store
                    .state()
                    .iter()
                    .map(|o| {
                        (
                            o.metadata.namespace.clone().unwrap_or_default(),
                            o.metadata.name.clone().unwrap_or_default(),
                        )
                    })
                    .collect();
                let mut st = lock(&state);
                st.relist(&ar.api_version, &kind, policy, &listed);
                st.synced.insert(kind.clone());
            }
            Ok(_) => {}
            Err(e) => tracing::debug!(kind = %kind, error = %e, "watch error (retrying)"),
        }
    }
}

impl State {
    /// A policy's key in `policies`.
    fn policy_key(kind: &str, value: &Value) -> (String, String, String) {
        let meta = &value["metadata"];
        (
            kind.to_owned(),
            meta["namespace"].as_str().unwrap_or_default().to_owned(),
            meta["name"].as_str().unwrap_or_default().to_owned(),
        )
    }

    /// One object of `kind` added or changed.
    fn apply(&mut self, kind: &str, group: &str, policy: bool, value: Value) {
        if policy {
            let key = Self::policy_key(kind, &value);
            if self.policies.get(&key).map(|v| &v["spec"]) != Some(&value["spec"]) {
                self.recompile = true;
            }
            self.policies.insert(key, value);
            return;
        }
        if kind == "Namespace" {
            let name = value["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let labels_changed = self.namespaces.get(&name).map(|v| &v["metadata"]["labels"])
                != Some(&value["metadata"]["labels"]);
            self.namespaces.insert(name.clone(), value.clone());
            if labels_changed {
                self.reevaluate(|k| k.namespace == name);
            }
        }
        if self.is_param_kind(group, kind) {
            self.recompile = true;
        }
        self.upsert(value);
    }

    /// One object deleted.
    fn delete(&mut self, group: &str, policy: bool, key: &ObjectKey) {
        if policy {
            self.policies
                .remove(&(key.kind.clone(), key.namespace.clone(), key.name.clone()));
            self.recompile = true;
            return;
        }
        if key.kind == "Namespace" && self.namespaces.remove(&key.name).is_some() {
            let name = key.name.clone();
            self.reevaluate(|k| k.namespace == name);
        }
        if self.is_param_kind(group, &key.kind) {
            self.recompile = true;
        }
        self.remove(key);
    }

    /// After a (re-)listing of one kind (`api_version`, `kind`): what the
    /// state holds of it but the listing (`(namespace, name)`) does not was
    /// deleted while the watch was down.
    fn relist(
        &mut self,
        api_version: &str,
        kind: &str,
        policy: bool,
        listed: &HashSet<(String, String)>,
    ) {
        if policy {
            let before = self.policies.len();
            self.policies.retain(|(k, ns, name), _| {
                k != kind || listed.contains(&(ns.clone(), name.clone()))
            });
            if self.policies.len() != before {
                self.recompile = true;
            }
            return;
        }
        let gone: Vec<ObjectKey> = self
            .objects
            .keys()
            .filter(|k| {
                k.kind == kind
                    && k.api_version == api_version
                    && !listed.contains(&(k.namespace.clone(), k.name.clone()))
            })
            .cloned()
            .collect();
        let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
        for key in gone {
            self.delete(group, false, &key);
        }
    }
}

/// Writes `DIR/policies.yaml` (temporary file, then rename).
fn write_policy_dir(dir: &std::path::Path, docs: &[Value]) -> Result<()> {
    write_documents(
        dir,
        "policies.yaml",
        "# Written by `rampart controller` from the cluster's policies.\n",
        docs,
    )
}

/// Writes `name` in `dir` atomically (temporary file, then rename), so a
/// reader polling it never sees half a file.
fn write_documents(dir: &std::path::Path, name: &str, header: &str, docs: &[Value]) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut text = String::from(header);
    for doc in docs {
        text.push_str("---\n");
        text.push_str(&serde_saphyr::to_string(doc).map_err(|e| anyhow::anyhow!("{e}"))?);
    }
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, dir.join(name))?;
    Ok(())
}

/// The webhook configurations for the managed webhook, with `ca` as bundle.
/// The rules also cover what the cluster's policies in force match.
pub fn webhook_configurations(
    opts: &WebhookOptions,
    namespace: &str,
    ca: &str,
    policies: Option<Arc<PolicySet>>,
) -> Result<Vec<Value>> {
    let config = match &opts.config {
        Some(p) => rampart_admission::Config::load(p)?,
        None => rampart_admission::Config::default(),
    };
    let sources: Vec<Arc<dyn rampart_admission::policy::PolicySource>> = policies
        .map(|set| {
            Arc::new(rampart_admission::policy::user::CompiledSource(set))
                as Arc<dyn rampart_admission::policy::PolicySource>
        })
        .into_iter()
        .collect();
    let set = rampart_admission::PolicySet::build(
        config,
        namespace,
        &rampart_admission::metrics::Metrics::new(),
        opts.exec_protection,
        &sources,
    )?;
    let wopts = WebhookConfigOptions {
        name: opts.name.clone(),
        client: ClientConfig::Service {
            namespace: namespace.to_owned(),
            name: opts.service_name.clone(),
            port: opts.service_port,
        },
        ca_bundle: Some(ca.as_bytes().to_vec()),
        timeout_seconds: opts.timeout_seconds,
        failure_policy: opts.failure_policy,
        exclude_namespaces: opts.exclude_namespaces.clone(),
    };
    let yaml = rampart_admission::webhook_config::render(&wopts, &set)?;
    let docs: Vec<Value> = serde_saphyr::from_multiple(&yaml)
        .map_err(|e| anyhow::anyhow!("parsing webhook configuration: {e}"))?;
    Ok(docs.into_iter().filter(|d| !d.is_null()).collect())
}

async fn manage_webhook(
    client: &kube::Client,
    opts: &Options,
    w: &WebhookOptions,
    policies: Option<Arc<PolicySet>>,
) -> Result<()> {
    let names = crate::certs::service_dns_names(&w.service_name, &opts.namespace);
    let ca = crate::certs::ensure_secret(
        client,
        &opts.namespace,
        &w.secret_name,
        &names,
        w.cert_manager,
    )
    .await?;
    let configs = webhook_configurations(w, &opts.namespace, &ca, policies)?;
    crate::apply::apply_all(client, &configs).await
}

fn object_reference(key: &ObjectKey, audited: &Audited) -> ObjectReference {
    ObjectReference {
        api_version: Some(key.api_version.clone()),
        kind: Some(key.kind.clone()),
        name: Some(key.name.clone()),
        namespace: (!key.namespace.is_empty()).then(|| key.namespace.clone()),
        uid: (!audited.uid.is_empty()).then(|| audited.uid.clone()),
        ..ObjectReference::default()
    }
}

/// Server-side apply of a report (no discovery: the resource is known).
async fn apply_report(
    client: &kube::Client,
    namespace: Option<&str>,
    report: &Value,
) -> Result<()> {
    use kube::api::{Patch, PatchParams};
    let (kind, plural) = match namespace {
        Some(_) => ("PolicyReport", "policyreports"),
        None => ("ClusterPolicyReport", "clusterpolicyreports"),
    };
    let ar = api_resource(
        crate::crds::REPORT_GROUP,
        crate::crds::REPORT_VERSION,
        kind,
        plural,
    );
    let api: Api<DynamicObject> = match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
        None => Api::all_with(client.clone(), &ar),
    };
    api.patch(
        audit::REPORT_NAME,
        &PatchParams::apply(crate::apply::FIELD_MANAGER).force(),
        &Patch::Apply(report),
    )
    .await
    .with_context(|| format!("applying {kind} in {namespace:?}"))?;
    Ok(())
}

/// One flush: recompile if needed, then (as leader) write dirty reports and events.
async fn flush(
    client: &kube::Client,
    state: &Shared,
    opts: &Options,
    recorder: &Recorder,
    leader: bool,
) -> Result<()> {
    let (reports, events, statuses) = {
        let mut st = lock(state);
        // Until every policy kind has been listed once, a compile would hand
        // out a partial set: wait.
        let policies_listed = POLICY_KINDS
            .iter()
            .all(|(_, _, kind, _)| st.synced.contains(*kind));
        if st.recompile && policies_listed {
            st.recompile = false;
            match st.compile() {
                Ok(()) => {
                    tracing::info!(
                        policies = st.policies.len(),
                        "policies compiled; re-auditing"
                    );
                    st.policy_generation += 1;
                    if let Some(dir) = &opts.policy_dir {
                        // The cluster's own policies in force only: never a
                        // version that does not compile, nor the default the
                        // audit falls back to.
                        let mut docs: Vec<Value> = st.in_force.clone();
                        docs.extend(st.param_objects());
                        if let Err(e) = write_policy_dir(dir, &docs) {
                            tracing::warn!(error = %e, "writing the policy directory");
                        }
                    }
                    st.reevaluate_all();
                    let kinds = matched_kinds(st.policies.values());
                    st.pending_kinds = kinds;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "policies do not compile; keeping the previous set")
                }
            }
        }
        if !leader {
            return Ok(());
        }
        let statuses = st.status_updates();
        let labels: HashSet<String> = st
            .policies
            .values()
            .filter_map(rampart_policy::policy_label)
            .collect();
        st.status_written.retain(|label, _| labels.contains(label));
        for u in &statuses {
            st.status_written.insert(u.label.clone(), u.status.clone());
        }
        let dirty = std::mem::take(&mut st.dirty);
        let now = jiff::Timestamp::now();
        let mut by_scope: BTreeMap<Scope, Vec<(&ObjectKey, &Audited)>> =
            dirty.iter().map(|s| (s.clone(), Vec::new())).collect();
        for (key, (_, audited)) in &st.objects {
            if let Some(list) = by_scope.get_mut(&scope_of(key)) {
                list.push((key, audited));
            }
        }
        let reports: Vec<(Scope, Value)> = by_scope
            .into_iter()
            .filter(|(scope, objs)| {
                // Namespaces being deleted (or gone) take their reports with them.
                let ns_ok = match scope {
                    None => true,
                    Some(ns) => st
                        .namespaces
                        .get(ns)
                        .is_some_and(|n| n["status"]["phase"].as_str() != Some("Terminating")),
                };
                ns_ok && (!objs.is_empty() || st.written.contains(scope))
            })
            .map(|(scope, objs)| {
                let report = audit::build_report(scope.as_deref(), objs, opts.max_results, now);
                (scope, report)
            })
            .collect();
        for (scope, _) in &reports {
            st.written.insert(scope.clone());
        }
        let mut events = Vec::new();
        if opts.events {
            let candidates = std::mem::take(&mut st.violations);
            let instant = Instant::now();
            let per_minute = f64::from(opts.max_events_per_minute);
            let refill = st.event_refilled.map_or(per_minute, |t| {
                instant.duration_since(t).as_secs_f64() * per_minute / 60.0
            });
            st.event_tokens = (st.event_tokens + refill).min(per_minute);
            st.event_refilled = Some(instant);
            for key in candidates {
                if st.event_tokens < 1.0 {
                    // Over the limit: these violations get no Event (the report has them).
                    break;
                }
                let recent = st
                    .last_event
                    .get(&key)
                    .is_some_and(|t| instant.duration_since(*t) < opts.event_interval);
                let Some((_, audited)) = st.objects.get(&key) else {
                    continue;
                };
                let failures: Vec<String> = audited
                    .failures()
                    .map(|r| match &r.rule {
                        Some(rule) => format!("{}/{rule}: {}", r.policy, r.message),
                        None => format!("{}: {}", r.policy, r.message),
                    })
                    .collect();
                if recent || failures.is_empty() {
                    continue;
                }
                let mut note = format!(
                    "{} policy violation(s): {}",
                    failures.len(),
                    failures.join("; ")
                );
                if note.len() > 1000 {
                    let mut cut = 1000;
                    while !note.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    note.truncate(cut);
                }
                events.push((object_reference(&key, audited), note));
                st.event_tokens -= 1.0;
                st.last_event.insert(key, instant);
            }
        }
        (reports, events, statuses)
    };
    let mut failed = Vec::new();
    for (scope, report) in &reports {
        if let Err(e) = apply_report(client, scope.as_deref(), report).await {
            tracing::warn!(scope = ?scope, error = %format!("{e:#}"), "writing a report");
            failed.push(scope.clone());
        }
    }
    if !failed.is_empty() {
        let mut st = lock(state);
        st.dirty.extend(failed);
    }
    for (reference, note) in events {
        let event = Event {
            type_: EventType::Warning,
            reason: "PolicyViolation".into(),
            note: Some(note),
            action: "Audit".into(),
            secondary: None,
        };
        if let Err(e) = recorder.publish(&event, &reference).await {
            tracing::debug!(error = %e, "publishing an event");
        }
    }
    for u in statuses {
        if let Err(e) = report_policy_status(client, recorder, &u).await {
            tracing::warn!(policy = %u.label, error = %format!("{e:#}"), "writing a policy's status");
            lock(state).status_written.remove(&u.label);
        }
    }
    Ok(())
}

/// Writes a policy's `Ready` condition (on the object and generation that
/// was compiled) and, when it does not compile, a Warning Event on it.
async fn report_policy_status(
    client: &kube::Client,
    recorder: &Recorder,
    u: &StatusUpdate,
) -> Result<()> {
    let plural = rampart_core::kinds::resource_of(rampart_policy::crd::GROUP, &u.kind);
    let ar = api_resource(
        rampart_policy::crd::GROUP,
        rampart_policy::crd::VERSION,
        &u.kind,
        &plural,
    );
    let api: Api<DynamicObject> = if u.namespace.is_empty() {
        Api::all_with(client.clone(), &ar)
    } else {
        Api::namespaced_with(client.clone(), &u.namespace, &ar)
    };
    let Some(current) = api.get_opt(&u.name).await? else {
        return Ok(());
    };
    // A newer object of the same name is the next compile's to describe.
    if current.metadata.uid.as_deref() != Some(u.status.uid.as_str()) {
        return Ok(());
    }
    let status = if u.status.ready { "True" } else { "False" };
    // The transition time moves only when the status does.
    let previous = current.data["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"));
    let transition = previous
        .filter(|c| c["status"] == status)
        .and_then(|c| c["lastTransitionTime"].as_str().map(str::to_owned))
        .unwrap_or_else(|| jiff::Timestamp::now().to_string());
    let condition = serde_json::json!({
        "type": "Ready",
        "status": status,
        "reason": if u.status.ready { "Compiled" } else { "CompileError" },
        "message": u.status.message,
        "observedGeneration": u.status.generation,
        "lastTransitionTime": transition,
    });
    let patch = serde_json::json!({"status": {"conditions": [condition]}});
    api.patch_status(
        &u.name,
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(&patch),
    )
    .await
    .with_context(|| format!("patching the status of {} {}", u.kind, u.name))?;
    if !u.status.ready {
        let reference = ObjectReference {
            api_version: Some(rampart_policy::crd::API_VERSION.to_owned()),
            kind: Some(u.kind.clone()),
            name: Some(u.name.clone()),
            namespace: (!u.namespace.is_empty()).then(|| u.namespace.clone()),
            uid: current.metadata.uid.clone(),
            resource_version: current.metadata.resource_version.clone(),
            ..ObjectReference::default()
        };
        let event = Event {
            type_: EventType::Warning,
            reason: "PolicyRejected".into(),
            note: Some(u.status.message.chars().take(1000).collect()),
            action: "Compile".into(),
            secondary: None,
        };
        if let Err(e) = recorder.publish(&event, &reference).await {
            tracing::debug!(error = %e, "publishing an event");
        }
    }
    Ok(())
}

/// Starts watches for the kinds the policies match that are not audited yet
/// (resolved by discovery; the policy kinds themselves are never audited).
async fn watch_matched_kinds(
    client: &kube::Client,
    state: &Shared,
    watched: &mut HashSet<(String, String)>,
    selectors: &BTreeSet<MatchedKind>,
) -> Result<()> {
    let unresolved: Vec<&MatchedKind> = selectors
        .iter()
        .filter(|s| {
            !watched.iter().any(|(g, k)| {
                s.group.as_ref().is_none_or(|sg| sg == g) && s.kind.as_ref() == Some(k)
            })
        })
        .collect();
    if unresolved.is_empty() {
        return Ok(());
    }
    let discovery = kube::discovery::Discovery::new(client.clone())
        .run()
        .await?;
    for group in discovery.groups() {
        for (ar, caps) in group.recommended_resources() {
            let wanted = unresolved.iter().any(|s| {
                s.group.as_ref().is_none_or(|g| *g == ar.group)
                    && (s.kind.as_ref() == Some(&ar.kind)
                        || s.resource.as_ref() == Some(&ar.plural))
            });
            let key = (ar.group.clone(), ar.kind.clone());
            if !wanted
                || watched.contains(&key)
                || ar.group == "rampart.dev"
                || !caps.supports_operation(kube::discovery::verbs::WATCH)
            {
                continue;
            }
            tracing::info!(group = %ar.group, kind = %ar.kind, "auditing a kind the policies match");
            watched.insert(key);
            tokio::spawn(watch_kind(client.clone(), state.clone(), ar, false));
        }
    }
    Ok(())
}

/// Runs the controller until SIGTERM/SIGINT.
pub async fn run(client: kube::Client, opts: Options) -> Result<()> {
    if opts.install_crds {
        crate::crds::install(&client, Duration::from_secs(60))
            .await
            .context("installing the CRDs")?;
        tracing::info!("CRDs installed");
    }
    let state: Shared = Arc::new(Mutex::new(State {
        recompile: true,
        ..State::default()
    }));
    {
        let mut st = lock(&state);
        if let Err(e) = st.compile() {
            anyhow::bail!("the default policy does not compile: {e}");
        }
    }
    for (group, version, kind, plural) in POLICY_KINDS {
        tokio::spawn(watch_kind(
            client.clone(),
            state.clone(),
            api_resource(group, version, kind, plural),
            true,
        ));
    }
    let mut watched: HashSet<(String, String)> = HashSet::new();
    let others = OTHER_AUDITED_KINDS
        .iter()
        .map(|&(g, k)| (g, "v1", k, rampart_core::kinds::resource_of(g, k)));
    for (group, version, kind, plural) in workload_kinds().chain(others) {
        watched.insert((group.to_owned(), kind.to_owned()));
        tokio::spawn(watch_kind(
            client.clone(),
            state.clone(),
            api_resource(group, version, kind, &plural),
            false,
        ));
    }

    let manager = LeaseManagerBuilder::new(client.clone(), &opts.lease_name)
        .with_namespace(&opts.namespace)
        .with_identity(&opts.identity)
        .with_duration(opts.lease_duration.as_secs().max(2))
        .with_grace(opts.lease_grace.as_secs().max(1))
        .build()
        .await
        .context("setting up leader election")?;
    let (mut leader_rx, lease_task) = manager.watch().await;

    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "rampart-controller".into(),
            instance: Some(opts.identity.clone()),
        },
    );
    let mut was_leader = false;
    let mut last_webhook: Option<Instant> = None;
    let mut webhook_generation = 0;
    let mut tick = tokio::time::interval(opts.report_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            changed = leader_rx.changed() => {
                if changed.is_err() {
                    anyhow::bail!("leader election stopped");
                }
            }
            _ = tick.tick() => {}
        }
        let leader = *leader_rx.borrow_and_update();
        if leader != was_leader {
            tracing::info!(identity = %opts.identity, leader, "leadership changed");
            println!("LEADER={leader} identity={}", opts.identity);
            if leader {
                let mut st = lock(&state);
                let scopes: Vec<Scope> = st.objects.keys().map(scope_of).collect();
                st.dirty.extend(scopes);
                last_webhook = None;
            }
            was_leader = leader;
        }
        if let Err(e) = flush(&client, &state, &opts, &recorder, leader).await {
            tracing::warn!(error = %format!("{e:#}"), "flush");
        }
        // After the flush, which compiles: the webhook rules follow the
        // policies in force as well as the hour.
        let (generation, policies) = {
            let st = lock(&state);
            (st.policy_generation, st.webhook_policies())
        };
        if leader
            && let Some(w) = &opts.webhook
            && (last_webhook.is_none_or(|t| t.elapsed() > Duration::from_secs(3600))
                || webhook_generation != generation)
        {
            match manage_webhook(&client, &opts, w, policies).await {
                Ok(()) => {
                    last_webhook = Some(Instant::now());
                    webhook_generation = generation;
                }
                Err(e) => tracing::warn!(error = %format!("{e:#}"), "managing the webhook"),
            }
        }
        let pending = std::mem::take(&mut lock(&state).pending_kinds);
        if !pending.is_empty()
            && let Err(e) = watch_matched_kinds(&client, &state, &mut watched, &pending).await
        {
            tracing::warn!(error = %format!("{e:#}"), "discovering the kinds the policies match");
            lock(&state).pending_kinds.extend(pending);
        }
    }
    // Give the Lease up at once so another replica takes over without waiting for it to expire.
    drop(leader_rx);
    let _ = tokio::time::timeout(Duration::from_secs(5), lease_task).await;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing a SIGTERM handler");
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Counts of results in state, for tests and logs.
pub fn count_results(rows: &[audit::Row]) -> BTreeMap<ResultKind, usize> {
    let mut out = BTreeMap::new();
    for r in rows {
        *out.entry(r.result).or_default() += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, rv: &str, privileged: bool) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "team", "uid": name, "resourceVersion": rv},
            "spec": {"containers": [{"name": "c", "image": "x", "securityContext": {"privileged": privileged}}]}})
    }

    fn policy(expression: &str) -> Value {
        json!({"apiVersion": "rampart.dev/v1alpha1", "kind": "ClusterPolicy",
            "metadata": {"name": "p"},
            "spec": {"matchConstraints": {"kinds": ["Pod"]},
                "validations": [{"name": "v", "expression": expression}]}})
    }

    #[test]
    fn a_relisting_drops_what_was_deleted_while_the_watch_was_down() {
        let mut st = State::default();
        st.apply("Pod", "", false, pod("a", "1", true));
        st.apply("Pod", "", false, pod("b", "1", false));
        st.apply("ClusterPolicy", "rampart.dev", true, policy("true"));
        st.dirty.clear();
        st.recompile = false;
        st.relist(
            "v1",
            "Pod",
            false,
            &HashSet::from([("team".to_owned(), "b".to_owned())]),
        );
        // The same kind name in another API group is not this listing's.
        st.apply("Pod", "example.com", false, {
            let mut p = pod("c", "1", false);
            p["apiVersion"] = json!("example.com/v1");
            p
        });
        st.relist(
            "v1",
            "Pod",
            false,
            &HashSet::from([("team".to_owned(), "b".to_owned())]),
        );
        let mut names: Vec<&str> = st.objects.keys().map(|k| k.name.as_str()).collect();
        names.sort();
        assert_eq!(names, ["b", "c"]);
        assert_eq!(st.dirty, BTreeSet::from([Some("team".to_owned())]));
        // Still listed: kept; gone: dropped and recompiled.
        st.relist(
            "rampart.dev/v1alpha1",
            "ClusterPolicy",
            true,
            &HashSet::from([(String::new(), "p".to_owned())]),
        );
        assert_eq!(st.policies.len(), 1);
        assert!(!st.recompile);
        st.relist(
            "rampart.dev/v1alpha1",
            "ClusterPolicy",
            true,
            &HashSet::new(),
        );
        assert!(st.policies.is_empty());
        assert!(st.recompile);
    }

    #[test]
    fn a_namespace_label_change_reaudits_that_namespace_without_recompiling() {
        let mut st = State::default();
        st.policies.insert(
            ("ClusterPolicy".into(), String::new(), "p".into()),
            json!({"apiVersion": "rampart.dev/v1alpha1", "kind": "ClusterPolicy",
                "metadata": {"name": "p"},
                "spec": {"matchConstraints": {"kinds": ["Pod"],
                    "namespaceSelector": {"matchLabels": {"strict": "yes"}}},
                    "validations": [{"name": "v",
                        "expression": "namespaceObject.metadata.labels.strict == 'yes' && false"}]}}),
        );
        st.compile().unwrap();
        st.recompile = false;
        let ns = |strict: &str, rv: &str| {
            json!({"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": "team", "resourceVersion": rv, "labels": {"strict": strict}}})
        };
        let mut other = pod("o", "1", true);
        other["metadata"]["namespace"] = json!("elsewhere");
        st.apply("Namespace", "", false, ns("no", "1"));
        st.apply("Pod", "", false, pod("a", "1", true));
        st.apply("Pod", "", false, other.clone());
        let a = ObjectKey::of(&pod("a", "1", true)).unwrap();
        let o = ObjectKey::of(&other).unwrap();
        assert!(st.objects[&a].1.rows.is_empty(), "not selected yet");

        // The label now selects the namespace: its pod fails, judged by
        // the Namespace the audit hands it; the other namespace is not
        // touched, and nothing is recompiled.
        st.dirty.clear();
        st.apply("Namespace", "", false, ns("yes", "2"));
        assert_eq!(st.objects[&a].1.rows[0].result, ResultKind::Fail);
        assert!(st.objects[&o].1.rows.is_empty());
        assert!(st.dirty.contains(&Some("team".to_owned())));
        assert!(!st.dirty.contains(&Some("elsewhere".to_owned())));
        assert!(!st.recompile);

        // The Namespace deleted: its pod is judged without it again.
        let key = ObjectKey::of(&ns("yes", "2")).unwrap();
        st.delete("", false, &key);
        assert!(st.objects[&a].1.rows.is_empty());
    }

    #[test]
    fn incremental_audit() {
        let mut st = State::default();
        st.policies.insert(
            ("ClusterPolicy".into(), String::new(), "p".into()),
            policy("!object.spec.containers.exists(c, c.securityContext.privileged)"),
        );
        st.compile().unwrap();
        st.upsert(pod("a", "1", true));
        st.upsert(pod("b", "1", false));
        let key = ObjectKey::of(&pod("a", "1", true)).unwrap();
        assert_eq!(st.objects[&key].1.rows[0].result, ResultKind::Fail);
        assert!(st.violations.contains(&key));
        assert_eq!(st.dirty, BTreeSet::from([Some("team".to_owned())]));

        // Same resourceVersion: not evaluated again, nothing dirty.
        st.dirty.clear();
        st.violations.clear();
        st.upsert(pod("a", "1", false));
        assert!(st.dirty.is_empty());
        assert_eq!(st.objects[&key].1.rows[0].result, ResultKind::Fail);
        // New version, fixed: dirty, no new violation.
        st.upsert(pod("a", "2", false));
        assert_eq!(st.objects[&key].1.rows[0].result, ResultKind::Pass);
        assert!(st.violations.is_empty());
        assert!(!st.dirty.is_empty());

        // A policy change re-evaluates everything.
        st.dirty.clear();
        st.policies.insert(
            ("ClusterPolicy".into(), String::new(), "p".into()),
            policy("false"),
        );
        st.compile().unwrap();
        st.reevaluate_all();
        assert!(
            st.objects
                .values()
                .all(|(_, a)| a.rows[0].result == ResultKind::Fail)
        );
        assert_eq!(st.violations.len(), 2);

        st.remove(&key);
        assert_eq!(st.objects.len(), 1);
    }

    #[test]
    fn kinds_the_policies_match() {
        let p = json!({"spec": {"matchConstraints": {
            "kinds": ["ConfigMap", "apps/Deployment", "core/Secret", "*"],
            "resourceRules": [{"apiGroups": ["networking.k8s.io"], "resources": ["ingresses", "pods/exec"]},
                              {"apiGroups": ["*"], "resources": ["x"]}]}}});
        let kinds = matched_kinds([&p]);
        let names: Vec<String> = kinds
            .iter()
            .map(|k| format!("{:?}/{:?}/{:?}", k.group, k.kind, k.resource))
            .collect();
        assert_eq!(kinds.len(), 4, "{names:?}");
        assert!(kinds.contains(&MatchedKind {
            group: None,
            kind: Some("ConfigMap".into()),
            resource: None
        }));
        assert!(kinds.contains(&MatchedKind {
            group: Some(String::new()),
            kind: Some("Secret".into()),
            resource: None
        }));
        assert!(kinds.contains(&MatchedKind {
            group: Some("networking.k8s.io".into()),
            kind: None,
            resource: Some("ingresses".into())
        }));
    }

    #[test]
    fn default_policy_without_cluster_policies() {
        let mut st = State::default();
        st.compile().unwrap();
        st.upsert(pod("a", "1", true));
        let rows = &st.objects.values().next().unwrap().1.rows;
        assert!(
            rows.iter().any(|r| r.result == ResultKind::Fail),
            "{rows:?}"
        );
        assert_eq!(&*rows[0].policy, "rampart-defaults");
    }
}

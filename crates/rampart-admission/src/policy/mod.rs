//! The policy set: rules indexed by what they match, evaluated per request.
//!
//! A rule declares what it matches ([`Match`]: API group, kind or resource,
//! operations, subresources). The [`PolicySet`] indexes rules by
//! `(group, kind)` and `(group, resource)` per operation, so a request that no
//! rule matches (a ConfigMap UPDATE in the default configuration) is answered
//! with two hash lookups and without parsing its object.
//!
//! Built-in rules come from the [`Config`]; more come from [`PolicySource`]s
//! (user CEL policies plug in here). A set is immutable: reloading builds a
//! new one and swaps it in atomically (the webhook's `reload`).

pub mod exec;
pub mod images;
pub mod mutate;
pub mod namespaces;
pub mod practices;
pub mod pss;
pub mod rate_limit;
pub mod requests;
pub mod sandbox;
pub mod user;

use std::borrow::Cow;
use std::cell::OnceCell;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use rampart_core::{ObjectView, PodBearingKind};
use serde_json::Value;

use crate::config::Config;
use crate::decision::{Decision, RuleId};
use crate::lookup::{NamespaceInfo, NamespaceLookup, PodLookup};
use crate::metrics::Metrics;
use crate::review::{AdmissionRequest, BadReview, Operation, parse_object};

/// The mode of a rule: the configuration's `rules` entry for its ID, else the default given.
pub type ModeFor<'a> = &'a dyn Fn(&str, crate::decision::Mode) -> crate::decision::Mode;

/// What part of a request a match looks at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// `request.kind.kind` (`Pod`, `Deployment`, `PodExecOptions`).
    Kind(Cow<'static, str>),
    /// `request.resource.resource` (`pods`), subresource aside.
    Resource(Cow<'static, str>),
    /// Every request: the rule filters for itself.
    Any,
}

/// One class of requests a rule wants to see.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Match {
    /// API group (`""` core, `apps`); `*` any (the rule is then indexed under [`Target::Any`]).
    pub group: Cow<'static, str>,
    pub target: Target,
    pub operations: Vec<Operation>,
    /// Subresources accepted (`""` the object itself, `exec`); `*` any.
    pub subresources: Vec<Cow<'static, str>>,
}

impl Match {
    pub fn kind(group: &'static str, kind: &'static str, operations: &[Operation]) -> Self {
        Self {
            group: Cow::Borrowed(group),
            target: Target::Kind(Cow::Borrowed(kind)),
            operations: operations.to_vec(),
            subresources: vec![Cow::Borrowed("")],
        }
    }

    #[must_use]
    pub fn with_subresources(mut self, subresources: &[&'static str]) -> Self {
        self.subresources = subresources.iter().map(|s| Cow::Borrowed(*s)).collect();
        self
    }
}

/// Matches for rules about pod specs: Pods on CREATE and on UPDATE (of the pod
/// or its ephemeral containers; rules skip insignificant pod updates with
/// [`Context::pod_update_is_significant`]), workloads on CREATE and UPDATE.
pub fn pod_spec_matches() -> Vec<Match> {
    PodBearingKind::ALL
        .into_iter()
        .map(|k| {
            let m = Match::kind(k.group(), k.kind(), &[Operation::Create, Operation::Update]);
            if k == PodBearingKind::Pod {
                m.with_subresources(&["", "ephemeralcontainers"])
            } else {
                m
            }
        })
        .collect()
}

/// What a rule sees of one request.
pub struct Context<'a> {
    pub request: &'a AdmissionRequest<'a>,
    /// `request.object`, parsed.
    pub object: Option<&'a Value>,
    /// A view of `object`, when it has `apiVersion` and `kind`.
    pub view: Option<ObjectView<'a>>,
    /// The request's namespace, when it has one and the lookup knows it.
    pub namespace: Option<Arc<NamespaceInfo>>,
    pub pods: Option<&'a dyn PodLookup>,
    old_object: OnceCell<Option<Value>>,
    significant: OnceCell<bool>,
}

impl<'a> Context<'a> {
    pub fn new(
        request: &'a AdmissionRequest<'a>,
        object: Option<&'a Value>,
        namespace: Option<Arc<NamespaceInfo>>,
        pods: Option<&'a dyn PodLookup>,
    ) -> Self {
        Self {
            request,
            object,
            view: object.and_then(ObjectView::new),
            namespace,
            pods,
            old_object: OnceCell::new(),
            significant: OnceCell::new(),
        }
    }

    /// `request.oldObject`, parsed on first use; `None` when absent or unparsable.
    pub fn old_object(&self) -> Option<&Value> {
        self.old_object
            .get_or_init(|| {
                self.request
                    .old_object
                    .and_then(|raw| parse_object(raw).ok())
            })
            .as_ref()
    }

    /// A label of the request's namespace.
    pub fn namespace_label(&self, key: &str) -> Option<&str> {
        self.namespace.as_deref().and_then(|n| n.label(key))
    }

    /// Whether the request is a Pod (not a subresource) UPDATE that changes
    /// nothing pod security depends on, as upstream's `isSignificantPodUpdate`
    /// judges it: images, the number of containers, added ephemeral
    /// containers, seccomp annotations. Such updates (labels, annotations,
    /// status-like fields) are not re-evaluated. Every other request is
    /// significant.
    pub fn pod_update_is_significant(&self) -> bool {
        *self.significant.get_or_init(|| {
            let r = self.request;
            if r.operation != Operation::Update
                || r.kind.kind != "Pod"
                || !r.kind.group.is_empty()
                || !r.sub_resource.is_empty()
            {
                return true;
            }
            match (self.object, self.old_object()) {
                (Some(new), Some(old)) => pss::is_significant_pod_update(new, old),
                _ => true,
            }
        })
    }

    /// `pods "name"` / `deployments.apps "name"`, as `apierrors.NewForbidden`
    /// names the object (without the name when there is none).
    pub fn forbidden_prefix(&self) -> String {
        let r = self.request;
        let resource = if r.resource.group.is_empty() {
            r.resource.resource.to_string()
        } else {
            format!("{}.{}", r.resource.resource, r.resource.group)
        };
        if r.name.is_empty() {
            format!("{resource} is forbidden")
        } else {
            format!("{resource} {} is forbidden", go_quote(&r.name))
        }
    }
}

pub use rampart_core::quote::go_quote;

/// A rule run by `/validate`.
pub trait ValidationRule: Send + Sync {
    fn id(&self) -> &RuleId;
    /// What the rule wants to see; read once, when the set is built.
    fn matches(&self) -> Vec<Match>;
    /// Whether the rule also runs in excluded namespaces (namespace
    /// protection must: deleting `kube-system` is a request "in" kube-system).
    fn runs_in_excluded_namespaces(&self) -> bool {
        false
    }
    fn validate(&self, cx: &Context<'_>, out: &mut Decision);
}

/// A rule run by `/mutate`: adds JSON Patch operations to `out.patch` (or
/// denies, when a request cannot be made valid).
pub trait MutationRule: Send + Sync {
    fn id(&self) -> &RuleId;
    fn matches(&self) -> Vec<Match>;
    fn mutate(&self, cx: &Context<'_>, out: &mut Decision);
}

/// More rules from outside the configuration file: user policies (CEL) plug
/// in here. Loaded when the set is first built and on every reload; an error
/// keeps the last good set in force.
pub trait PolicySource: Send + Sync {
    /// For logs and the `source` label of reload metrics.
    fn name(&self) -> &'static str;
    /// Files whose change triggers a reload.
    fn watched_paths(&self) -> Vec<PathBuf>;
    /// Whether the source has its initial contents (for `/readyz`).
    fn ready(&self) -> bool {
        true
    }
    fn load(&self, metrics: &Metrics) -> Result<SourceRules>;
}

/// What a [`PolicySource`] contributes.
#[derive(Default)]
pub struct SourceRules {
    pub validating: Vec<Arc<dyn ValidationRule>>,
    pub mutating: Vec<Arc<dyn MutationRule>>,
}

struct Entry<T: ?Sized> {
    rule: Arc<T>,
    subresources: Vec<Cow<'static, str>>,
}

impl<T: ?Sized> Clone for Entry<T> {
    fn clone(&self) -> Self {
        Self {
            rule: self.rule.clone(),
            subresources: self.subresources.clone(),
        }
    }
}

struct Ops<T: ?Sized>([Vec<Entry<T>>; 4]);

impl<T: ?Sized> Default for Ops<T> {
    fn default() -> Self {
        Self(Default::default())
    }
}

impl<T: ?Sized> Ops<T> {
    fn get(&self, op: Operation) -> &[Entry<T>] {
        &self.0[op.index()]
    }
}

/// Rules by group and kind or resource, then operation.
struct Index<T: ?Sized> {
    by_kind: HashMap<String, HashMap<String, Ops<T>>>,
    by_resource: HashMap<String, HashMap<String, Ops<T>>>,
    any: Ops<T>,
    len: usize,
}

impl<T: ?Sized> Default for Index<T> {
    fn default() -> Self {
        Self {
            by_kind: HashMap::new(),
            by_resource: HashMap::new(),
            any: Ops::default(),
            len: 0,
        }
    }
}

impl<T: ?Sized> Index<T> {
    fn insert(&mut self, rule: Arc<T>, matches: Vec<Match>) {
        self.len += 1;
        for m in matches {
            let ops = match (&m.target, m.group.as_ref()) {
                (Target::Any, _) | (_, "*") => &mut self.any,
                (Target::Kind(k), g) if k != "*" => self
                    .by_kind
                    .entry(g.to_owned())
                    .or_default()
                    .entry(k.to_string())
                    .or_default(),
                (Target::Resource(r), g) if r != "*" => self
                    .by_resource
                    .entry(g.to_owned())
                    .or_default()
                    .entry(r.to_string())
                    .or_default(),
                _ => &mut self.any,
            };
            for op in &m.operations {
                let list = &mut ops.0[op.index()];
                // A rule listed twice for one key (two matches differing only
                // in subresources) is merged so it runs once.
                if let Some(e) = list.iter_mut().find(|e| Arc::ptr_eq(&e.rule, &rule)) {
                    e.subresources.extend(m.subresources.iter().cloned());
                } else {
                    list.push(Entry {
                        rule: rule.clone(),
                        subresources: m.subresources.clone(),
                    });
                }
            }
        }
    }

    /// The three lists of rules that may apply; empty when nothing matches.
    fn candidates(&self, r: &AdmissionRequest<'_>) -> [&[Entry<T>]; 3] {
        let op = r.operation;
        let by_kind = self
            .by_kind
            .get(r.kind.group.as_ref())
            .and_then(|m| m.get(r.kind.kind.as_ref()))
            .map_or(&[][..], |o| o.get(op));
        let by_resource = self
            .by_resource
            .get(r.resource.group.as_ref())
            .and_then(|m| m.get(r.resource.resource.as_ref()))
            .map_or(&[][..], |o| o.get(op));
        [by_kind, by_resource, self.any.get(op)]
    }
}

/// Lookups rules consult.
#[derive(Clone, Copy)]
pub struct Env<'a> {
    pub namespaces: &'a dyn NamespaceLookup,
    pub pods: Option<&'a dyn PodLookup>,
}

/// How evaluation ended.
#[derive(Debug)]
pub enum Verdict {
    /// The namespace is excluded: allowed, nothing evaluated.
    Excluded,
    /// No rule matches: allowed, nothing evaluated.
    Unmatched,
    /// The rules ran.
    Evaluated(Decision),
    /// The deadline passed before every rule ran.
    TimedOut,
}

/// An immutable set of rules. Cheap to share; swapped whole on reload.
pub struct PolicySet {
    validating: Index<dyn ValidationRule>,
    mutating: Index<dyn MutationRule>,
    excluded: Vec<String>,
    config: Config,
    own_namespace: String,
}

impl PolicySet {
    /// Builds the built-in rules of `config` plus the rules of `sources`.
    /// `has_pods` says whether a pod lookup exists (exec protection needs one).
    pub fn build(
        config: Config,
        own_namespace: &str,
        metrics: &Metrics,
        has_pods: bool,
        sources: &[Arc<dyn PolicySource>],
    ) -> Result<Self> {
        let mut set = Self {
            validating: Index::default(),
            mutating: Index::default(),
            excluded: config
                .excluded_namespaces
                .iter()
                .cloned()
                .chain(std::iter::once(own_namespace.to_owned()))
                .collect(),
            config: Config::default(),
            own_namespace: own_namespace.to_owned(),
        };
        let c = &config;
        let mode_for = |id: &str, default| c.rules.get(id).copied().unwrap_or(default);
        let mode: ModeFor<'_> = &mode_for;

        for rule in namespaces::rules(c, own_namespace, metrics, mode) {
            set.add_validation(rule);
        }
        if let Some(rule) = rate_limit::rule(c, metrics, mode)? {
            set.add_validation(rule);
        }
        for rule in requests::rules(c, metrics)? {
            set.add_validation(rule);
        }
        if c.pod_security.enabled {
            set.add_validation(Arc::new(pss::PodSecurityRule::new(c, metrics)?));
        }
        for rule in practices::rules(c, metrics, mode) {
            set.add_validation(rule);
        }
        for rule in images::rules(c, metrics, mode) {
            set.add_validation(rule);
        }
        for rule in sandbox::rules(c, metrics, mode)? {
            set.add_validation(rule);
        }
        if has_pods {
            for rule in exec::rules(c, metrics, mode) {
                set.add_validation(rule);
            }
        }
        for rule in mutate::rules(c, metrics, mode)? {
            set.add_mutation(rule);
        }
        for source in sources {
            let rules = source
                .load(metrics)
                .map_err(|e| anyhow::anyhow!("loading policies from {}: {e:#}", source.name()))?;
            for r in rules.validating {
                set.add_validation(r);
            }
            for r in rules.mutating {
                set.add_mutation(r);
            }
        }
        set.config = config;
        metrics.rules_loaded.set(set.len() as i64);
        Ok(set)
    }

    pub fn add_validation(&mut self, rule: Arc<dyn ValidationRule>) {
        let m = rule.matches();
        self.validating.insert(rule, m);
    }

    pub fn add_mutation(&mut self, rule: Arc<dyn MutationRule>) {
        let m = rule.matches();
        self.mutating.insert(rule, m);
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.validating.len + self.mutating.len
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn own_namespace(&self) -> &str {
        &self.own_namespace
    }

    /// Namespaces whose requests are allowed unevaluated, own namespace included.
    pub fn excluded_namespaces(&self) -> &[String] {
        &self.excluded
    }

    fn is_excluded(&self, namespace: &str) -> bool {
        !namespace.is_empty() && self.excluded.iter().any(|n| n == namespace)
    }

    /// Runs the validating rules that match `request`.
    pub fn validate(
        &self,
        env: Env<'_>,
        request: &AdmissionRequest<'_>,
        deadline: Instant,
    ) -> Result<Verdict, BadReview> {
        self.evaluate(
            &self.validating,
            env,
            request,
            deadline,
            |r| r.runs_in_excluded_namespaces(),
            |r| r.id(),
            |r, cx, out| r.validate(cx, out),
        )
    }

    /// Runs the mutating rules that match `request`; the patch is in the decision.
    pub fn mutate(
        &self,
        env: Env<'_>,
        request: &AdmissionRequest<'_>,
        deadline: Instant,
    ) -> Result<Verdict, BadReview> {
        self.evaluate(
            &self.mutating,
            env,
            request,
            deadline,
            |_| false,
            |r| r.id(),
            |r, cx, out| r.mutate(cx, out),
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn evaluate<T: ?Sized>(
        &self,
        index: &Index<T>,
        env: Env<'_>,
        request: &AdmissionRequest<'_>,
        deadline: Instant,
        in_excluded: impl Fn(&T) -> bool,
        id: impl Fn(&T) -> &RuleId,
        run: impl Fn(&T, &Context<'_>, &mut Decision),
    ) -> Result<Verdict, BadReview> {
        let sub = request.sub_resource.as_ref();
        let lists = index.candidates(request);
        let excluded = self.is_excluded(&request.namespace);
        let applicable = |e: &&Entry<T>| {
            e.subresources.iter().any(|s| s == "*" || s == sub)
                && (!excluded || in_excluded(&e.rule))
        };
        if !lists.iter().any(|l| l.iter().any(|e| applicable(&e))) {
            // Excluded namespaces answer the same whether or not a rule matches.
            return Ok(if excluded {
                Verdict::Excluded
            } else {
                Verdict::Unmatched
            });
        }
        let object = request.object.map(parse_object).transpose()?;
        let namespace = if request.namespace.is_empty() {
            None
        } else {
            env.namespaces.namespace(&request.namespace)
        };
        let cx = Context::new(request, object.as_ref(), namespace, env.pods);
        let mut decision = Decision::default();
        for (i, entry) in lists
            .iter()
            .enumerate()
            .flat_map(|(i, l)| l.iter().map(move |e| (i, e)))
            .filter(|(_, e)| applicable(e))
        {
            // A rule indexed both by kind and by resource (user policies
            // can match either way) runs once.
            let seen = lists[..i].iter().flat_map(|l| l.iter()).any(|e| {
                std::ptr::addr_eq(Arc::as_ptr(&e.rule), Arc::as_ptr(&entry.rule)) && applicable(&e)
            });
            if seen {
                continue;
            }
            let start = Instant::now();
            if start >= deadline {
                return Ok(Verdict::TimedOut);
            }
            run(&entry.rule, &cx, &mut decision);
            id(&entry.rule).observe(start.elapsed());
        }
        Ok(Verdict::Evaluated(decision))
    }

    /// Every match of every rule, for the webhook configurations:
    /// `(validating, validating in excluded namespaces too, mutating)`.
    pub fn all_matches(&self) -> (Vec<Match>, Vec<Match>, Vec<Match>) {
        fn rules<T: ?Sized>(index: &Index<T>) -> Vec<Arc<T>> {
            let mut out: Vec<Arc<T>> = Vec::new();
            let all_ops = index
                .by_kind
                .values()
                .flat_map(|m| m.values())
                .chain(index.by_resource.values().flat_map(|m| m.values()))
                .chain(std::iter::once(&index.any));
            for ops in all_ops {
                for e in ops.0.iter().flatten() {
                    if !out.iter().any(|r| Arc::ptr_eq(r, &e.rule)) {
                        out.push(e.rule.clone());
                    }
                }
            }
            out
        }
        let (mut general, mut unexcluded) = (Vec::new(), Vec::new());
        for r in rules(&self.validating) {
            if r.runs_in_excluded_namespaces() {
                unexcluded.extend(r.matches());
            } else {
                general.extend(r.matches());
            }
        }
        let mutating = rules(&self.mutating)
            .iter()
            .flat_map(|r| r.matches())
            .collect();
        (general, unexcluded, mutating)
    }
}

/// Whether `mode` lets the object's `rampart.dev/ignore-<rule>` annotation
/// (with a reason) silence the rule: only for warn and audit. An enforced rule
/// can only be exempted in the configuration, never by the object's author.
pub fn ignored(view: &ObjectView<'_>, rule: &str, mode: crate::decision::Mode) -> bool {
    if mode == crate::decision::Mode::Enforce {
        return false;
    }
    rampart_core::ignore_reason(view, rule).is_some()
}

#[cfg(test)]
pub(crate) mod tests;

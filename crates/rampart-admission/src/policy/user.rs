//! User policies: Rampart's `ClusterPolicy`/`Policy` and native
//! `ValidatingAdmissionPolicy` (+ bindings, params, Namespaces) read from
//! files and directories (`rampart serve --policy PATH`), compiled into a
//! [`rampart_policy::PolicySet`] and evaluated with the same engine the CLI
//! and the controller use, so a policy answers the same everywhere.
//!
//! The compiled set contributes one validating rule and, when some policy
//! mutates, one mutating rule. Both are indexed under the exact
//! `(operation, group, resource|kind)` classes the policies match, so a
//! request no user policy can match never reaches them.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Result, anyhow};
use rampart_policy::{
    CompileOptions, GroupVersionKind, GroupVersionResource, PolicySet as CompiledPolicies, Request,
    RequestKey, ValidationAction,
};
use serde_json::{Value, json};

use super::{Context, Match, MutationRule, PolicySource, SourceRules, Target, ValidationRule};
use crate::decision::{Decision, Mode, RuleId};
use crate::metrics::Metrics;
use crate::review::Operation;

/// Policy files and directories given with `--policy`.
pub struct UserPolicies {
    paths: Vec<PathBuf>,
    options: CompileOptions,
}

impl UserPolicies {
    pub fn new(paths: Vec<PathBuf>) -> Self {
        Self {
            paths,
            options: CompileOptions::default(),
        }
    }

    /// Reads and compiles every policy document under the paths. A
    /// directory with no documents yet (the controller has not written
    /// one) is an empty set, not an error; a path that does not exist is.
    pub fn compile(&self) -> Result<CompiledPolicies> {
        for p in &self.paths {
            if !p.exists() {
                return Err(anyhow!("policy path {} does not exist", p.display()));
            }
        }
        let (documents, _) = rampart_policy::read_documents(&self.paths)
            .map_err(|errors| anyhow!("{}", rampart_policy::ErrorList(&errors)))?;
        CompiledPolicies::compile_with(documents, &self.options)
            .map_err(|errors| anyhow!("{}", rampart_policy::ErrorList(&errors)))
    }
}

impl PolicySource for UserPolicies {
    fn name(&self) -> &'static str {
        "policies"
    }

    /// The paths and the manifests the loader reads below them now: a file
    /// edited in place changes its own stamp, not its directory's.
    fn watched_paths(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for p in &self.paths {
            out.push(p.clone());
            if p.is_dir() {
                out.extend(rampart_manifest::manifest_files(p));
            }
        }
        out
    }

    fn load(&self, metrics: &Metrics) -> Result<SourceRules> {
        let set = Arc::new(self.compile()?);
        for warning in set.warnings() {
            tracing::warn!(warning = %warning, "policy");
        }
        Ok(rules_for(set, metrics))
    }
}

/// A set compiled elsewhere: the controller's, for the webhook rules it
/// renders from the cluster's policies in force.
pub struct CompiledSource(pub Arc<CompiledPolicies>);

impl PolicySource for CompiledSource {
    fn name(&self) -> &'static str {
        "policies"
    }

    fn watched_paths(&self) -> Vec<PathBuf> {
        Vec::new()
    }

    fn load(&self, metrics: &Metrics) -> Result<SourceRules> {
        Ok(rules_for(self.0.clone(), metrics))
    }
}

/// The webhook rules of a compiled set: one validating rule and, when some
/// policy mutates, one mutating rule, indexed under the request classes the
/// policies match.
pub fn rules_for(set: Arc<CompiledPolicies>, metrics: &Metrics) -> SourceRules {
    let matches = matches_of(&set);
    let mut rules = SourceRules::default();
    if matches.is_empty() {
        return rules;
    }
    let ids: HashMap<String, RuleId> = set
        .rules()
        .iter()
        .map(|m| (m.id.to_string(), RuleId::new(m.id.to_string(), metrics)))
        .collect();
    let shared = Arc::new(Shared {
        set: set.clone(),
        matches,
        ids,
        fallback: RuleId::new("user-policies", metrics),
    });
    rules.validating.push(Arc::new(Validate(shared.clone())));
    if set.has_mutations() {
        rules.mutating.push(Arc::new(Mutate {
            shared,
            id: RuleId::new("user-policy-mutations", metrics),
        }));
    }
    rules
}

struct Shared {
    set: Arc<CompiledPolicies>,
    matches: Vec<Match>,
    /// Metrics per rule (`<policy>/<validation>`).
    ids: HashMap<String, RuleId>,
    fallback: RuleId,
}

impl Shared {
    fn id(&self, check: &str) -> &RuleId {
        self.ids.get(check).unwrap_or(&self.fallback)
    }
}

/// The set's request classes as webhook matches, with the subresources the
/// policies name (`deployments/scale`, `pods/ephemeralcontainers`); the
/// policies' own matching decides the rest.
fn matches_of(set: &CompiledPolicies) -> Vec<Match> {
    let mut out: Vec<Match> = Vec::new();
    for key in set.request_keys() {
        let (op, group, target, subresources) = match key {
            RequestKey::Resource {
                operation,
                group,
                resource,
                subresources,
            } => (
                operation,
                group,
                Target::Resource(resource.into()),
                subresources,
            ),
            RequestKey::Kind {
                operation,
                group,
                kind,
            } => (
                operation,
                group,
                Target::Kind(kind.into()),
                vec![String::new()],
            ),
        };
        let Some(op) = op.single() else { continue };
        let target = match &target {
            Target::Resource(r) | Target::Kind(r) if r == "*" => Target::Any,
            _ => target,
        };
        // CONNECT only exists on subresources (`pods/exec`): it stays a
        // match of its own, taking every subresource, which the policies'
        // matching then narrows. Other operations take exactly the
        // subresources the policies name, so `pods/status` (written by every
        // kubelet) stays out of the webhook's path unless a policy asks.
        let connect = op == Operation::Connect;
        let subresources: Vec<Cow<'static, str>> = if connect {
            vec!["*".into()]
        } else {
            subresources.into_iter().map(Cow::Owned).collect()
        };
        if let Some(m) = out.iter_mut().find(|m| {
            m.group == group.as_str()
                && m.target == target
                && m.operations.contains(&Operation::Connect) == connect
                && m.subresources == subresources
        }) {
            if !m.operations.contains(&op) {
                m.operations.push(op);
            }
            continue;
        }
        out.push(Match {
            group: group.into(),
            target,
            operations: vec![op],
            subresources,
        });
    }
    out
}

/// The engine's request for what the webhook received, borrowing the
/// review and the objects the webhook parsed. `object` is the object the
/// policies see (after earlier mutations, for `/mutate`).
fn request_of<'c>(cx: &'c Context<'_>, object: Option<Cow<'c, Value>>) -> Request<'c> {
    let r = cx.request;
    let borrow = |s: &'c Cow<'_, str>| Cow::Borrowed(s.as_ref());
    Request {
        uid: borrow(&r.uid),
        operation: r.operation,
        kind: GroupVersionKind {
            group: borrow(&r.kind.group),
            version: borrow(&r.kind.version),
            kind: borrow(&r.kind.kind),
        },
        resource: GroupVersionResource {
            group: borrow(&r.resource.group),
            version: borrow(&r.resource.version),
            resource: borrow(&r.resource.resource),
        },
        sub_resource: borrow(&r.sub_resource),
        name: borrow(&r.name),
        namespace: borrow(&r.namespace),
        object,
        old_object: cx.old_object().map(Cow::Borrowed),
        user_info: r.user_info.clone(),
        dry_run: r.dry_run.unwrap_or(false),
        options: r
            .options
            .and_then(|raw| serde_json::from_str::<Value>(raw.get()).ok())
            .map(Cow::Owned),
        namespace_object: cx.namespace.as_ref().map(|ns| {
            Cow::Owned(json!({
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {
                    "name": ns.name,
                    "labels": ns.labels,
                    "annotations": ns.annotations,
                },
            }))
        }),
    }
}

/// Audit annotation keys from the engine are `<policy>/<key>`; the API
/// server prefixes a webhook's keys with `<webhook name>/`, and a key may
/// hold only one `/`.
fn annotation_key(key: &str) -> String {
    key.replace('/', ".")
}

struct Validate(Arc<Shared>);

impl ValidationRule for Validate {
    fn id(&self) -> &RuleId {
        &self.0.fallback
    }

    fn matches(&self) -> Vec<Match> {
        self.0.matches.clone()
    }

    fn validate(&self, cx: &Context<'_>, out: &mut Decision) {
        let req = request_of(cx, cx.object.map(Cow::Borrowed));
        let ev = self.0.set.evaluate(&req);
        for d in &ev.decisions {
            if !d.is_violation() {
                continue;
            }
            let id = self.0.id(&d.check_id());
            // An ignore annotation silences warnings and audit, never a
            // denial: the object's author cannot exempt it from a policy
            // that enforces (as for the built-in rules in enforce mode).
            if d.actions.contains(ValidationAction::Deny) {
                out.report(id, Mode::Enforce, d.admission_message());
            }
            if d.suppressed.is_some() {
                continue;
            }
            if d.actions.contains(ValidationAction::Warn) {
                out.hit(id, Mode::Warn);
            }
            if d.actions.contains(ValidationAction::Audit) {
                out.hit(id, Mode::Audit);
            }
        }
        out.warnings.extend(ev.warnings);
        for (key, value) in ev.audit_annotations {
            out.annotate(&annotation_key(&key), value);
        }
    }
}

struct Mutate {
    shared: Arc<Shared>,
    id: RuleId,
}

impl MutationRule for Mutate {
    fn id(&self) -> &RuleId {
        &self.id
    }

    fn matches(&self) -> Vec<Match> {
        self.shared.matches.clone()
    }

    fn mutate(&self, cx: &Context<'_>, out: &mut Decision) {
        let Some(original) = cx.object else { return };
        // Built-in mutations ran first; the policies see their result, and
        // their operations (relative to it) follow the built-in ones.
        let mut object = original.clone();
        if !out.patch.is_empty() && json_patch::patch(&mut object, &out.patch).is_err() {
            tracing::warn!("built-in mutations do not apply; user mutations skipped");
            return;
        }
        let ev = self
            .shared
            .set
            .evaluate_mutations(&request_of(cx, Some(Cow::Owned(object))));
        if ev.patches.is_empty() {
            return;
        }
        out.mutate(&self.id, ev.json_patch().0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_alone_takes_subresources() {
        let set = CompiledPolicies::compile([json!({
            "apiVersion": "rampart.dev/v1alpha1", "kind": "ClusterPolicy",
            "metadata": {"name": "p"},
            "spec": {
                "matchConstraints": {"resourceRules": [{
                    "apiGroups": [""], "apiVersions": ["v1"],
                    "operations": ["*"], "resources": ["pods"]}]},
                "validations": [{"expression": "true"}],
            },
        })])
        .unwrap();
        let matches = matches_of(&set);
        let connect: Vec<&Match> = matches
            .iter()
            .filter(|m| m.operations.contains(&Operation::Connect))
            .collect();
        assert_eq!(connect.len(), 1, "{matches:?}");
        assert_eq!(connect[0].operations, vec![Operation::Connect]);
        assert_eq!(connect[0].subresources, vec![std::borrow::Cow::from("*")]);
        let others: Vec<&Match> = matches
            .iter()
            .filter(|m| !m.operations.contains(&Operation::Connect))
            .collect();
        assert!(!others.is_empty());
        for m in others {
            assert_eq!(m.subresources, vec![std::borrow::Cow::from("")], "{m:?}");
            assert_eq!(m.operations.len(), 3, "{m:?}");
        }
    }
}

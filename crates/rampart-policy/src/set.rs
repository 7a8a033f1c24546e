//! Compiling policy documents into a [`PolicySet`].

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use k8s_openapi::api::admissionregistration::v1 as k8s;
use rampart_cel::{
    CompileOptions as CelOptions, InputLimits, Limits, Program, VariableError, VariableSet,
};
use rampart_core::kinds::{Scope, scope_of};
use rampart_core::{Category, CheckMeta, FieldPath, Severity};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::PolicyError;
use crate::builtin::{self, Builtin};
use crate::crd::{
    self, FailurePolicy, MatchResources, Mutation, Operation, PatchType, PolicySpec, Reason,
    ResourceRule, ValidationAction,
};
use crate::decision::{Actions, PolicyId, PolicyKind};
use crate::matching::{Matcher, OpSet, equivalent_groups};
use crate::selector::{ObjectLabels, Selector};
use rampart_core::request::Request;

/// One input document, with where it came from for error messages.
#[derive(Clone, Debug, PartialEq)]
pub struct Document {
    pub value: Value,
    /// `file (document N)`, when known.
    pub source: Option<String>,
}

impl From<Value> for Document {
    fn from(value: Value) -> Self {
        Document {
            value,
            source: None,
        }
    }
}

impl From<&rampart_manifest::Manifest> for Document {
    fn from(m: &rampart_manifest::Manifest) -> Self {
        let source = match m.list_item {
            Some(item) => format!("{} (document {}, item {item})", m.source, m.document),
            None => format!("{} (document {})", m.source, m.document),
        };
        Document {
            value: m.value.clone(),
            source: Some(source),
        }
    }
}

/// Limits for compiling and evaluating a policy set.
#[derive(Clone, Debug, Default)]
pub struct CompileOptions {
    /// CEL compile and run-time limits, per expression.
    pub cel: Limits,
    /// Size and depth limits of the documents bound to CEL (object, params, ...).
    pub input: InputLimits,
}

/// Kubernetes' limit on match conditions per policy.
const MAX_MATCH_CONDITIONS: usize = 64;

pub(crate) struct NamedProgram {
    pub(crate) name: String,
    pub(crate) field: String,
    pub(crate) program: Program,
}

pub(crate) struct CompiledValidation {
    pub(crate) rule: Arc<str>,
    pub(crate) field: String,
    pub(crate) expression: Program,
    pub(crate) message: Option<String>,
    pub(crate) message_expression: Option<Program>,
    pub(crate) reason: Reason,
    pub(crate) meta: Arc<CheckMeta>,
}

pub(crate) enum MutationSource {
    Expression(Program),
    Static(Value),
}

pub(crate) struct CompiledMutation {
    pub(crate) name: Arc<str>,
    pub(crate) field: String,
    pub(crate) patch_type: PatchType,
    pub(crate) source: MutationSource,
}

/// The parts of a policy shared by all its bindings.
pub(crate) struct Body {
    pub(crate) kind: PolicyKind,
    pub(crate) name: String,
    pub(crate) namespace: Option<String>,
    pub(crate) constraints: Matcher,
    pub(crate) exclude: Option<Matcher>,
    pub(crate) failure_policy: FailurePolicy,
    pub(crate) severity: Option<Severity>,
    /// `(group, kind, apiVersion)` of the parameter resource.
    pub(crate) param_kind: Option<(String, String, String)>,
    pub(crate) match_conditions: Vec<NamedProgram>,
    pub(crate) variables: Option<VariableSet>,
    pub(crate) validations: Vec<CompiledValidation>,
    pub(crate) audit_annotations: Vec<NamedProgram>,
    pub(crate) mutations: Vec<CompiledMutation>,
    pub(crate) builtin: Option<Builtin>,
    /// Rule descriptions of the built-in checks, by check ID.
    pub(crate) builtin_metas: HashMap<String, Arc<CheckMeta>>,
}

impl Body {
    pub(crate) fn default_severity(&self) -> Severity {
        self.severity.unwrap_or(Severity::Medium)
    }
}

/// How a binding finds its parameters.
pub(crate) struct ParamBinding {
    pub(crate) group: String,
    pub(crate) kind: String,
    pub(crate) namespaced: bool,
    pub(crate) name: Option<String>,
    pub(crate) namespace: Option<String>,
    pub(crate) selector: Option<Selector>,
    pub(crate) deny_when_missing: bool,
}

/// A policy with one binding: what is matched against requests.
pub(crate) struct Unit {
    pub(crate) id: Arc<PolicyId>,
    pub(crate) body: Arc<Body>,
    pub(crate) binding_matcher: Option<Matcher>,
    pub(crate) params: Option<ParamBinding>,
    pub(crate) actions: Actions,
}

/// A parameter object, converted to CEL once.
pub(crate) struct Param {
    pub(crate) name: String,
    pub(crate) namespace: String,
    pub(crate) value: Value,
    pub(crate) cel: rampart_cel::Value,
}

impl Param {
    pub(crate) fn display(&self) -> String {
        if self.namespace.is_empty() {
            self.name.clone()
        } else {
            format!("{}/{}", self.namespace, self.name)
        }
    }
}

/// Units by operation, group and resource (or kind), so a request no policy
/// can match is answered without evaluating anything.
#[derive(Default)]
pub(crate) struct Index {
    resources: [HashMap<String, HashMap<String, Vec<u32>>>; 4],
    kinds: [HashMap<String, HashMap<String, Vec<u32>>>; 4],
    /// The subresources rules name per `(group, resource)`: `""` for the
    /// resource itself, `*` for any. Only for routing (webhook rules); the
    /// rules' own matching decides.
    subresources: [HashMap<(String, String), BTreeSet<String>>; 4],
}

fn op_slot(op: Operation) -> Option<usize> {
    match op {
        Operation::Create => Some(0),
        Operation::Update => Some(1),
        Operation::Delete => Some(2),
        Operation::Connect => Some(3),
        Operation::All => None,
    }
}

impl Index {
    fn add(map: &mut HashMap<String, HashMap<String, Vec<u32>>>, a: &str, b: &str, id: u32) {
        let list = map
            .entry(a.to_owned())
            .or_default()
            .entry(b.to_owned())
            .or_default();
        if list.last() != Some(&id) {
            list.push(id);
        }
    }

    fn insert(&mut self, matcher: &Matcher, id: u32) {
        for rule in &matcher.rules {
            for op in rule.ops.each() {
                let slot = op_slot(op).expect("single operation");
                for g in &rule.groups {
                    // Equivalent matching may reach this rule from another group.
                    for (res, sub) in &rule.resources {
                        Self::add(&mut self.resources[slot], g, res, id);
                        self.subresources[slot]
                            .entry((g.clone(), res.clone()))
                            .or_default()
                            .insert(sub.clone());
                    }
                }
            }
        }
        for op in matcher.kind_ops.each() {
            let slot = op_slot(op).expect("single operation");
            if matcher.any_resource {
                Self::add(&mut self.resources[slot], "*", "*", id);
            }
            for k in &matcher.kinds {
                Self::add(
                    &mut self.kinds[slot],
                    k.group.as_deref().unwrap_or("*"),
                    &k.kind,
                    id,
                );
            }
        }
    }

    /// The units that may match the request, ascending.
    pub(crate) fn lookup(&self, req: &Request) -> Vec<u32> {
        let Some(slot) = op_slot(req.operation.into()) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let resource = req.resource.resource.as_ref();
        let groups = std::iter::once(req.resource.group.as_ref()).chain(
            equivalent_groups(&req.resource.group, resource)
                .iter()
                .copied(),
        );
        for g in groups.chain(std::iter::once("*")) {
            if let Some(by_res) = self.resources[slot].get(g) {
                for r in [resource, "*"] {
                    if let Some(ids) = by_res.get(r) {
                        out.extend_from_slice(ids);
                    }
                }
            }
        }
        for g in [req.kind.group.as_ref(), "*"] {
            if let Some(by_kind) = self.kinds[slot].get(g) {
                for k in [req.kind.kind.as_ref(), "*"] {
                    if let Some(ids) = by_kind.get(k) {
                        out.extend_from_slice(ids);
                    }
                }
            }
        }
        if out.len() > 1 {
            out.sort_unstable();
            out.dedup();
        }
        out
    }
}

/// A class of requests some policy of a set may match, for callers that
/// index rules themselves (the webhook): an operation with a group and a
/// resource (`pods`) or a kind (`Pod`). `*` stands for any.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum RequestKey {
    Resource {
        operation: Operation,
        group: String,
        resource: String,
        /// The subresources named (`""` the resource itself, `scale`, `*`).
        subresources: Vec<String>,
    },
    Kind {
        operation: Operation,
        group: String,
        kind: String,
    },
}

const SLOT_OPERATIONS: [Operation; 4] = [
    Operation::Create,
    Operation::Update,
    Operation::Delete,
    Operation::Connect,
];

impl Index {
    fn keys(&self) -> Vec<RequestKey> {
        let mut out = Vec::new();
        for (slot, operation) in SLOT_OPERATIONS.into_iter().enumerate() {
            for (group, by_res) in &self.resources[slot] {
                for resource in by_res.keys() {
                    let subresources = self.subresources[slot]
                        .get(&(group.clone(), resource.clone()))
                        .map(|s| s.iter().cloned().collect())
                        .unwrap_or_else(|| vec![String::new()]);
                    out.push(RequestKey::Resource {
                        operation,
                        group: group.clone(),
                        resource: resource.clone(),
                        subresources,
                    });
                }
            }
            for (group, by_kind) in &self.kinds[slot] {
                for kind in by_kind.keys() {
                    out.push(RequestKey::Kind {
                        operation,
                        group: group.clone(),
                        kind: kind.clone(),
                    });
                }
            }
        }
        out.sort();
        out
    }
}

/// Policies compiled once and evaluated many times, with the parameter
/// objects and Namespaces given alongside them. Immutable and `Send + Sync`:
/// share it in an `Arc` (see [`PolicyStore`](crate::PolicyStore)).
pub struct PolicySet {
    pub(crate) units: Vec<Unit>,
    pub(crate) index: Index,
    pub(crate) params: HashMap<(String, String), Vec<Param>>,
    pub(crate) namespaces: HashMap<String, Value>,
    pub(crate) rules: Vec<Arc<CheckMeta>>,
    pub(crate) warnings: Vec<String>,
    pub(crate) options: CompileOptions,
    pub(crate) policy_ids: BTreeSet<String>,
}

impl std::fmt::Debug for PolicySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicySet")
            .field("policies", &self.policy_ids)
            .field("units", &self.units.len())
            .finish_non_exhaustive()
    }
}

impl PolicySet {
    /// A set with no policies: every request is allowed.
    pub fn empty() -> PolicySet {
        PolicySet {
            units: Vec::new(),
            index: Index::default(),
            params: HashMap::new(),
            namespaces: HashMap::new(),
            rules: Vec::new(),
            warnings: Vec::new(),
            options: CompileOptions::default(),
            policy_ids: BTreeSet::new(),
        }
    }

    /// Compiles policy documents: `ClusterPolicy` and `Policy`
    /// (`rampart.dev/v1alpha1`), `ValidatingAdmissionPolicy` and
    /// `ValidatingAdmissionPolicyBinding` (`admissionregistration.k8s.io/v1`),
    /// `Namespace` objects (for namespace selectors and `namespaceObject`) and
    /// parameter objects of the kinds the policies' `paramKind`s name.
    ///
    /// Every problem in every document is reported, each with its source,
    /// policy, field path and, for CEL, line and column.
    pub fn compile<I, D>(documents: I) -> Result<PolicySet, Vec<PolicyError>>
    where
        I: IntoIterator<Item = D>,
        D: Into<Document>,
    {
        Self::compile_with(documents, &CompileOptions::default())
    }

    /// [`compile`](Self::compile) with explicit limits.
    pub fn compile_with<I, D>(
        documents: I,
        options: &CompileOptions,
    ) -> Result<PolicySet, Vec<PolicyError>>
    where
        I: IntoIterator<Item = D>,
        D: Into<Document>,
    {
        let docs: Vec<Document> = documents.into_iter().map(Into::into).collect();
        Compiler::new(options).run(docs)
    }

    /// Number of policies (ClusterPolicy, Policy, ValidatingAdmissionPolicy).
    pub fn policy_count(&self) -> usize {
        self.policy_ids.len()
    }

    /// Number of evaluation units: policies, with a ValidatingAdmissionPolicy
    /// counted once per binding.
    pub fn unit_count(&self) -> usize {
        self.units.len()
    }

    /// `Kind/[namespace/]name` of every policy, sorted.
    pub fn policy_names(&self) -> impl Iterator<Item = &str> {
        self.policy_ids.iter().map(String::as_str)
    }

    /// Every rule (validation or built-in check) as a report rule, with the
    /// ID findings carry: `<policy>/<rule>`.
    pub fn rules(&self) -> &[Arc<CheckMeta>] {
        &self.rules
    }

    /// Problems that do not stop the set from working (a
    /// ValidatingAdmissionPolicy without a binding has no effect).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Every class of requests some policy may match; a request outside
    /// all of them evaluates to nothing.
    pub fn request_keys(&self) -> Vec<RequestKey> {
        self.index.keys()
    }

    /// Whether some policy has mutations.
    pub fn has_mutations(&self) -> bool {
        self.units.iter().any(|u| !u.body.mutations.is_empty())
    }

    pub fn is_empty(&self) -> bool {
        self.units.is_empty()
    }

    /// The Namespace objects given with the policies, by name.
    pub fn namespace(&self, name: &str) -> Option<&Value> {
        self.namespaces.get(name)
    }
}

/// The label errors give a policy document (`ClusterPolicy "name"`,
/// `Policy "ns/name"`), or `None` for a document that is not a policy.
pub fn policy_label(doc: &Value) -> Option<String> {
    let kind = doc.get("kind")?.as_str()?;
    let meta = doc.get("metadata");
    let name = meta?.get("name")?.as_str()?;
    let namespace = meta
        .and_then(|m| m.get("namespace"))
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty());
    match kind {
        "Policy" => Some(label(kind, Some(namespace.unwrap_or("default")), name)),
        "ClusterPolicy" | "ValidatingAdmissionPolicy" | "ValidatingAdmissionPolicyBinding" => {
            Some(label(kind, None, name))
        }
        _ => None,
    }
}

/// `Kind "name"` or `Kind "ns/name"` for error messages.
fn label(kind: &str, namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) => format!("{kind} \"{ns}/{name}\""),
        None => format!("{kind} \"{name}\""),
    }
}

/// Renders a serde_path_to_error path as a field path.
fn serde_path(prefix: &str, path: &serde_path_to_error::Path) -> String {
    let mut out = FieldPath::parse(prefix);
    for seg in path.iter() {
        match seg {
            serde_path_to_error::Segment::Seq { index } => out.push_index(*index),
            serde_path_to_error::Segment::Map { key } => out.push_key(key.clone()),
            serde_path_to_error::Segment::Enum { variant } => out.push_key(variant.clone()),
            serde_path_to_error::Segment::Unknown => {}
        }
    }
    out.to_string()
}

/// Parses `value` into `T`, reporting the field that does not fit, and
/// fields `T` does not know (typos would otherwise be silently ignored).
fn parse_strict<T>(value: &Value, prefix: &str) -> Result<T, Vec<PolicyError>>
where
    T: DeserializeOwned + serde::Serialize,
{
    let parsed: T = serde_path_to_error::deserialize(value).map_err(|e| {
        vec![PolicyError::new(e.inner().to_string()).at_field(serde_path(prefix, e.path()))]
    })?;
    let back = serde_json::to_value(&parsed).unwrap_or(Value::Null);
    let mut unknown = Vec::new();
    unknown_fields(value, &back, &mut FieldPath::parse(prefix), &mut unknown);
    if unknown.is_empty() {
        Ok(parsed)
    } else {
        Err(unknown
            .into_iter()
            .map(|path| PolicyError::new("unknown field").at_field(path.to_string()))
            .collect())
    }
}

/// Fields of `input` that did not survive a round trip through the typed model.
fn unknown_fields(input: &Value, parsed: &Value, path: &mut FieldPath, out: &mut Vec<FieldPath>) {
    match (input, parsed) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                if v.is_null() {
                    continue;
                }
                path.push_key(k.clone());
                match b.get(k) {
                    None => out.push(path.clone()),
                    Some(pv) => unknown_fields(v, pv, path, out),
                }
                path.pop();
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                path.push_index(i);
                unknown_fields(x, y, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

/// A validation, whichever API it came from.
struct ValidationSource {
    name: Option<String>,
    expression: String,
    message: Option<String>,
    message_expression: Option<String>,
    reason: Reason,
}

/// A policy's definition, whichever API it came from.
struct Definition {
    kind: PolicyKind,
    name: String,
    namespace: Option<String>,
    description: Option<String>,
    constraints: Option<MatchResources>,
    exclude: Option<MatchResources>,
    failure_policy: FailurePolicy,
    severity: Option<Severity>,
    param_kind: Option<k8s::ParamKind>,
    match_conditions: Vec<k8s::MatchCondition>,
    variables: Vec<k8s::Variable>,
    validations: Vec<ValidationSource>,
    audit_annotations: Vec<k8s::AuditAnnotation>,
    mutations: Vec<Mutation>,
    builtin: Option<crd::BuiltinChecks>,
}

struct Compiler<'o> {
    options: &'o CompileOptions,
    errors: Vec<PolicyError>,
}

/// Errors collected for one document, stamped with its source and policy.
struct Scoped<'a> {
    errors: &'a mut Vec<PolicyError>,
    source: Option<&'a str>,
    policy: &'a str,
}

impl Scoped<'_> {
    fn push(&mut self, e: PolicyError) {
        let e = e.in_source(self.source).in_policy(self.policy.to_owned());
        self.errors.push(e);
    }

    fn extend(&mut self, es: Vec<PolicyError>) {
        for e in es {
            self.push(e);
        }
    }
}

struct PendingBinding {
    name: String,
    source: Option<String>,
    spec: k8s::ValidatingAdmissionPolicyBindingSpec,
}

impl<'o> Compiler<'o> {
    fn new(options: &'o CompileOptions) -> Self {
        Compiler {
            options,
            errors: Vec::new(),
        }
    }

    fn run(mut self, docs: Vec<Document>) -> Result<PolicySet, Vec<PolicyError>> {
        let mut definitions: Vec<(Definition, Option<String>, Option<crd::PolicySpec>)> =
            Vec::new();
        let mut bindings: Vec<PendingBinding> = Vec::new();
        let mut namespaces: HashMap<String, Value> = HashMap::new();
        let mut others: Vec<Document> = Vec::new();
        let mut seen: BTreeSet<String> = BTreeSet::new();

        for doc in docs {
            let source = doc.source.clone();
            let err = |message: String| PolicyError::new(message).in_source(source.as_deref());
            let Some(obj) = doc.value.as_object() else {
                self.errors.push(err("not an object".into()));
                continue;
            };
            let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
            let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
            if api_version.is_empty() || kind.is_empty() {
                self.errors
                    .push(err("apiVersion and kind are required".into()));
                continue;
            }
            let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
            let metadata = obj.get("metadata");
            let name = metadata
                .and_then(|m| m.get("name"))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            let namespace = metadata
                .and_then(|m| m.get("namespace"))
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned);
            let is_policy_kind = matches!(
                (group, kind),
                ("rampart.dev", "ClusterPolicy" | "Policy")
                    | (
                        "admissionregistration.k8s.io",
                        "ValidatingAdmissionPolicy" | "ValidatingAdmissionPolicyBinding"
                    )
            );
            if is_policy_kind && name.is_empty() {
                self.errors.push(
                    err("metadata.name is required".into())
                        .in_policy(kind.to_owned())
                        .at_field("metadata.name"),
                );
                continue;
            }
            match (group, kind) {
                ("rampart.dev", "ClusterPolicy" | "Policy") => {
                    let policy_label = label(kind, namespace.as_deref(), &name);
                    if version != crd::VERSION {
                        self.errors.push(
                            err(format!(
                                "unsupported apiVersion {api_version:?}: expected {}",
                                crd::API_VERSION
                            ))
                            .in_policy(policy_label)
                            .at_field("apiVersion"),
                        );
                        continue;
                    }
                    let namespace = if kind == "Policy" {
                        Some(namespace.unwrap_or_else(|| "default".into()))
                    } else {
                        None
                    };
                    let key = format!("{kind}/{}{name}", namespace.as_ref().map(|n| format!("{n}/")).unwrap_or_default());
                    if !seen.insert(key) {
                        self.errors.push(err("duplicate policy: the same kind and name appear twice".into()).in_policy(policy_label));
                        continue;
                    }
                    let mut scoped = Scoped {
                        errors: &mut self.errors,
                        source: source.as_deref(),
                        policy: &policy_label,
                    };
                    check_top_level(obj, &mut scoped);
                    let Some(spec) = obj.get("spec") else {
                        scoped.push(PolicyError::new("spec is required").at_field("spec"));
                        continue;
                    };
                    let spec: PolicySpec = match parse_strict(spec, "spec") {
                        Ok(s) => s,
                        Err(es) => {
                            scoped.extend(es);
                            continue;
                        }
                    };
                    let kind = if kind == "Policy" { PolicyKind::Policy } else { PolicyKind::ClusterPolicy };
                    let def = rampart_definition(kind, name, namespace, &spec);
                    definitions.push((def, source, Some(spec)));
                }
                ("rampart.dev", other) => self.errors.push(err(format!(
                    "unknown kind {other:?} in rampart.dev: expected ClusterPolicy or Policy"
                ))),
                ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy" | "ValidatingAdmissionPolicyBinding") => {
                    let policy_label = label(kind, None, &name);
                    if !matches!(version, "v1" | "v1beta1" | "v1alpha1") {
                        self.errors.push(
                            err(format!("unsupported apiVersion {api_version:?}: expected admissionregistration.k8s.io/v1"))
                                .in_policy(policy_label)
                                .at_field("apiVersion"),
                        );
                        continue;
                    }
                    if !seen.insert(format!("{kind}/{name}")) {
                        self.errors.push(err("duplicate policy: the same kind and name appear twice".into()).in_policy(policy_label));
                        continue;
                    }
                    let mut scoped = Scoped {
                        errors: &mut self.errors,
                        source: source.as_deref(),
                        policy: &policy_label,
                    };
                    check_top_level(obj, &mut scoped);
                    let Some(spec) = obj.get("spec") else {
                        scoped.push(PolicyError::new("spec is required").at_field("spec"));
                        continue;
                    };
                    if kind == "ValidatingAdmissionPolicy" {
                        match parse_strict::<k8s::ValidatingAdmissionPolicySpec>(spec, "spec") {
                            Ok(spec) => match vap_definition(name, &spec) {
                                Ok(def) => definitions.push((def, source, None)),
                                Err(es) => scoped.extend(es),
                            },
                            Err(es) => scoped.extend(es),
                        }
                    } else {
                        match parse_strict::<k8s::ValidatingAdmissionPolicyBindingSpec>(spec, "spec") {
                            Ok(spec) => bindings.push(PendingBinding { name, source, spec }),
                            Err(es) => scoped.extend(es),
                        }
                    }
                }
                ("admissionregistration.k8s.io", other) => self.errors.push(err(format!(
                    "{other} is not supported: Rampart evaluates ValidatingAdmissionPolicy and ValidatingAdmissionPolicyBinding"
                ))),
                ("", "Namespace") => {
                    if name.is_empty() {
                        self.errors.push(err("Namespace without metadata.name".into()));
                    } else {
                        namespaces.insert(name, doc.value);
                    }
                }
                _ => others.push(doc),
            }
        }

        // Parameter kinds the policies use, to sort the other documents.
        let mut param_kinds: Vec<(String, String)> = Vec::new();
        for (def, _, _) in &definitions {
            if let Some(pk) = &def.param_kind
                && let (Some(av), Some(k)) = (&pk.api_version, &pk.kind)
            {
                let group = av.rsplit_once('/').map_or("", |(g, _)| g).to_owned();
                param_kinds.push((group, k.clone()));
            }
        }
        let mut params: HashMap<(String, String), Vec<Param>> = HashMap::new();
        for doc in others {
            let api_version = doc.value["apiVersion"].as_str().unwrap_or("");
            let kind = doc.value["kind"].as_str().unwrap_or("").to_owned();
            let group = api_version
                .rsplit_once('/')
                .map_or("", |(g, _)| g)
                .to_owned();
            let key = (group, kind);
            if !param_kinds.contains(&key) {
                let name = doc
                    .value
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                self.errors.push(
                    PolicyError::new(format!(
                        "{} {name:?} is neither a policy, a binding, a Namespace nor a parameter of any policy's paramKind",
                        key.1
                    ))
                    .in_source(doc.source.as_deref()),
                );
                continue;
            }
            match self.param(&doc) {
                Ok(p) => params.entry(key).or_default().push(p),
                Err(e) => self.errors.push(e),
            }
        }

        // Compile the definitions.
        let mut units: Vec<Unit> = Vec::new();
        let mut rules: Vec<Arc<CheckMeta>> = Vec::new();
        let mut policy_ids = BTreeSet::new();
        let mut vaps: HashMap<String, Arc<Body>> = HashMap::new();
        let mut vap_sources: HashMap<String, Option<String>> = HashMap::new();
        for (def, source, spec) in definitions {
            let policy_label = label(def.kind.as_str(), def.namespace.as_deref(), &def.name);
            let mut scoped = Scoped {
                errors: &mut self.errors,
                source: source.as_deref(),
                policy: &policy_label,
            };
            let Some(body) = compile_body(&def, self.options, &mut scoped) else {
                continue;
            };
            let body = Arc::new(body);
            policy_ids.insert(format!(
                "{}/{}{}",
                def.kind.as_str(),
                def.namespace
                    .as_ref()
                    .map(|n| format!("{n}/"))
                    .unwrap_or_default(),
                def.name
            ));
            rules.extend(body.validations.iter().map(|v| Arc::clone(&v.meta)));
            let mut builtin_metas: Vec<_> = body.builtin_metas.values().cloned().collect();
            builtin_metas.sort_by(|a, b| a.id.cmp(&b.id));
            rules.extend(builtin_metas);
            match def.kind {
                PolicyKind::ValidatingAdmissionPolicy => {
                    vap_sources.insert(def.name.clone(), source);
                    vaps.insert(def.name.clone(), body);
                }
                _ => {
                    let spec = spec.expect("Rampart policies keep their spec");
                    let actions = match validation_actions(
                        spec.validation_actions.as_deref(),
                        "spec.validationActions",
                    ) {
                        Ok(a) => a,
                        Err(e) => {
                            scoped.push(e);
                            continue;
                        }
                    };
                    let params = match (&spec.param_kind, &spec.param_ref) {
                        (None, None) => None,
                        (Some(_), None) => {
                            scoped.push(PolicyError::new("paramKind needs paramRef: a Rampart policy names its parameters itself").at_field("spec.paramRef"));
                            continue;
                        }
                        (None, Some(_)) => {
                            scoped.push(
                                PolicyError::new("paramRef needs paramKind")
                                    .at_field("spec.paramKind"),
                            );
                            continue;
                        }
                        (Some(_), Some(r)) => {
                            match param_binding(&body, r, "spec.paramRef", &params) {
                                Ok(p) => Some(p),
                                Err(es) => {
                                    scoped.extend(es);
                                    continue;
                                }
                            }
                        }
                    };
                    units.push(Unit {
                        id: Arc::new(PolicyId {
                            kind: def.kind,
                            name: def.name.clone(),
                            namespace: def.namespace.clone(),
                            binding: None,
                        }),
                        body,
                        binding_matcher: None,
                        params,
                        actions,
                    });
                }
            }
        }

        // Bindings.
        let mut bound: BTreeSet<String> = BTreeSet::new();
        for b in bindings {
            let policy_label = label("ValidatingAdmissionPolicyBinding", None, &b.name);
            let mut scoped = Scoped {
                errors: &mut self.errors,
                source: b.source.as_deref(),
                policy: &policy_label,
            };
            let Some(body) = vaps.get(&b.spec.policy_name) else {
                if b.spec.policy_name.is_empty() {
                    scoped.push(
                        PolicyError::new("policyName is required").at_field("spec.policyName"),
                    );
                } else {
                    scoped.push(
                        PolicyError::new(format!(
                            "refers to ValidatingAdmissionPolicy {:?}, which is not among the policies (or did not compile)",
                            b.spec.policy_name
                        ))
                        .at_field("spec.policyName"),
                    );
                }
                continue;
            };
            let actions: Vec<String> = b.spec.validation_actions.clone();
            if actions.is_empty() {
                scoped.push(
                    PolicyError::new(
                        "validationActions must list at least one of Deny, Warn, Audit",
                    )
                    .at_field("spec.validationActions"),
                );
                continue;
            }
            let mut parsed = Vec::new();
            let mut ok = true;
            for (i, a) in actions.iter().enumerate() {
                match a.as_str() {
                    "Deny" => parsed.push(ValidationAction::Deny),
                    "Warn" => parsed.push(ValidationAction::Warn),
                    "Audit" => parsed.push(ValidationAction::Audit),
                    other => {
                        ok = false;
                        scoped.push(
                            PolicyError::new(format!(
                                "unknown validation action {other:?}: expected Deny, Warn or Audit"
                            ))
                            .at_field(format!("spec.validationActions[{i}]")),
                        );
                    }
                }
            }
            if !ok {
                continue;
            }
            let actions = match validation_actions(Some(&parsed), "spec.validationActions") {
                Ok(a) => a,
                Err(e) => {
                    scoped.push(e);
                    continue;
                }
            };
            let binding_matcher = match &b.spec.match_resources {
                None => None,
                Some(m) => match convert_match(m, "spec.matchResources")
                    .and_then(|m| Matcher::compile(&m, "spec.matchResources", OpSet::ALL, false))
                {
                    Ok(m) => Some(m),
                    Err(es) => {
                        scoped.extend(es);
                        continue;
                    }
                },
            };
            let params = match (&body.param_kind, &b.spec.param_ref) {
                (_, None) => None,
                (None, Some(_)) => {
                    scoped.push(
                        PolicyError::new(format!(
                            "paramRef is set but ValidatingAdmissionPolicy {:?} has no paramKind",
                            b.spec.policy_name
                        ))
                        .at_field("spec.paramRef"),
                    );
                    continue;
                }
                (Some(_), Some(r)) => match param_binding(body, r, "spec.paramRef", &params) {
                    Ok(p) => Some(p),
                    Err(es) => {
                        scoped.extend(es);
                        continue;
                    }
                },
            };
            bound.insert(b.spec.policy_name.clone());
            units.push(Unit {
                id: Arc::new(PolicyId {
                    kind: PolicyKind::ValidatingAdmissionPolicy,
                    name: b.spec.policy_name.clone(),
                    namespace: None,
                    binding: Some(b.name.clone()),
                }),
                body: Arc::clone(body),
                binding_matcher,
                params,
                actions,
            });
        }
        let mut warnings = Vec::new();
        let mut unbound: Vec<&String> = vaps.keys().filter(|n| !bound.contains(*n)).collect();
        unbound.sort();
        for name in unbound {
            let source = vap_sources.get(name).cloned().flatten();
            warnings.push(format!(
                "{}ValidatingAdmissionPolicy {name:?} has no ValidatingAdmissionPolicyBinding, so it has no effect",
                source.map(|s| format!("{s}: ")).unwrap_or_default()
            ));
        }

        if !self.errors.is_empty() {
            return Err(self.errors);
        }
        units.sort_by(|a, b| a.id.cmp(&b.id));
        let mut index = Index::default();
        for (i, u) in units.iter().enumerate() {
            index.insert(&u.body.constraints, i as u32);
        }
        let mut seen_rules = BTreeSet::new();
        rules.retain(|r| seen_rules.insert(r.id.clone()));
        Ok(PolicySet {
            units,
            index,
            params,
            namespaces,
            rules,
            warnings,
            options: self.options.clone(),
            policy_ids,
        })
    }

    fn param(&self, doc: &Document) -> Result<Param, PolicyError> {
        let name = doc
            .value
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let namespace = doc
            .value
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let kind = doc.value["kind"].as_str().unwrap_or("");
        if name.is_empty() {
            return Err(PolicyError::new(format!("{kind} without metadata.name"))
                .in_source(doc.source.as_deref()));
        }
        let cel =
            rampart_cel::json_to_value(&doc.value, &self.options.input, "params").map_err(|e| {
                PolicyError::new(format!("{kind} {name:?} cannot be used as params: {e}"))
                    .in_source(doc.source.as_deref())
            })?;
        Ok(Param {
            name,
            namespace,
            value: doc.value.clone(),
            cel,
        })
    }
}

/// Only `apiVersion`, `kind`, `metadata`, `spec` and `status` belong at the top.
fn check_top_level(obj: &serde_json::Map<String, Value>, scoped: &mut Scoped<'_>) {
    for key in obj.keys() {
        if !matches!(
            key.as_str(),
            "apiVersion" | "kind" | "metadata" | "spec" | "status"
        ) {
            scoped.push(
                PolicyError::new("unknown field")
                    .at_field(FieldPath::root().key(key.clone()).to_string()),
            );
        }
    }
}

fn validation_actions(
    actions: Option<&[ValidationAction]>,
    field: &str,
) -> Result<Actions, PolicyError> {
    let actions = actions.unwrap_or(&[ValidationAction::Deny]);
    if actions.is_empty() {
        return Err(PolicyError::new(
            "validationActions must list at least one of Deny, Warn, Audit",
        )
        .at_field(field));
    }
    let mut seen = Vec::new();
    for (i, a) in actions.iter().enumerate() {
        if seen.contains(a) {
            return Err(
                PolicyError::new(format!("duplicate validation action {}", a.as_str()))
                    .at_field(format!("{field}[{i}]")),
            );
        }
        seen.push(*a);
    }
    if seen.contains(&ValidationAction::Deny) && seen.contains(&ValidationAction::Warn) {
        return Err(PolicyError::new(
            "Deny and Warn may not be used together: a denied request already carries the message",
        )
        .at_field(field));
    }
    Ok(Actions::of(actions))
}

fn rampart_definition(
    kind: PolicyKind,
    name: String,
    namespace: Option<String>,
    spec: &PolicySpec,
) -> Definition {
    Definition {
        kind,
        name,
        namespace,
        description: spec.description.clone(),
        constraints: spec.match_constraints.clone(),
        exclude: spec.exclude.clone(),
        failure_policy: spec.failure_policy.unwrap_or_default(),
        severity: spec.severity.map(Into::into),
        param_kind: spec.param_kind.clone(),
        match_conditions: spec.match_conditions.clone().unwrap_or_default(),
        variables: spec.variables.clone().unwrap_or_default(),
        validations: spec
            .validations
            .iter()
            .flatten()
            .map(|v| ValidationSource {
                name: v.name.clone(),
                expression: v.expression.clone(),
                message: v.message.clone(),
                message_expression: v.message_expression.clone(),
                reason: v.reason.unwrap_or_default(),
            })
            .collect(),
        audit_annotations: spec.audit_annotations.clone().unwrap_or_default(),
        mutations: spec.mutations.clone().unwrap_or_default(),
        builtin: spec.builtin.clone(),
    }
}

/// A ValidatingAdmissionPolicy's spec as a [`Definition`], checking the
/// free-form strings the Rampart API types as enums.
fn vap_definition(
    name: String,
    spec: &k8s::ValidatingAdmissionPolicySpec,
) -> Result<Definition, Vec<PolicyError>> {
    let mut errors = Vec::new();
    let failure_policy = match spec.failure_policy.as_deref() {
        None | Some("Fail") => FailurePolicy::Fail,
        Some("Ignore") => FailurePolicy::Ignore,
        Some(other) => {
            errors.push(
                PolicyError::new(format!(
                    "unknown failurePolicy {other:?}: expected Fail or Ignore"
                ))
                .at_field("spec.failurePolicy"),
            );
            FailurePolicy::Fail
        }
    };
    let constraints = match &spec.match_constraints {
        None => {
            errors.push(
                PolicyError::new("matchConstraints is required").at_field("spec.matchConstraints"),
            );
            None
        }
        Some(m) if m.resource_rules.as_ref().is_none_or(Vec::is_empty) => {
            errors.push(
                PolicyError::new("resourceRules is required")
                    .at_field("spec.matchConstraints.resourceRules"),
            );
            None
        }
        Some(m) => match convert_match(m, "spec.matchConstraints") {
            Ok(m) => Some(m),
            Err(es) => {
                errors.extend(es);
                None
            }
        },
    };
    let mut validations = Vec::new();
    for (i, v) in spec.validations.iter().flatten().enumerate() {
        let reason = match v.reason.as_deref() {
            None => Reason::Invalid,
            Some(r) => Reason::parse(r).unwrap_or_else(|| {
                errors.push(
                    PolicyError::new(format!(
                        "unknown reason {r:?}: expected Unauthorized, Forbidden, Invalid or RequestEntityTooLarge"
                    ))
                    .at_field(format!("spec.validations[{i}].reason")),
                );
                Reason::Invalid
            }),
        };
        validations.push(ValidationSource {
            name: None,
            expression: v.expression.clone(),
            message: v.message.clone(),
            message_expression: v.message_expression.clone(),
            reason,
        });
    }
    if validations.is_empty() && spec.audit_annotations.as_ref().is_none_or(Vec::is_empty) {
        errors.push(
            PolicyError::new("validations and auditAnnotations may not both be empty")
                .at_field("spec.validations"),
        );
    }
    if let Some(pk) = &spec.param_kind {
        if pk.api_version.as_deref().is_none_or(str::is_empty) {
            errors.push(
                PolicyError::new("apiVersion is required").at_field("spec.paramKind.apiVersion"),
            );
        }
        if pk.kind.as_deref().is_none_or(str::is_empty) {
            errors.push(PolicyError::new("kind is required").at_field("spec.paramKind.kind"));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Definition {
        kind: PolicyKind::ValidatingAdmissionPolicy,
        name,
        namespace: None,
        description: None,
        constraints,
        exclude: None,
        failure_policy,
        severity: None,
        param_kind: spec.param_kind.clone(),
        match_conditions: spec.match_conditions.clone().unwrap_or_default(),
        variables: spec.variables.clone().unwrap_or_default(),
        validations,
        audit_annotations: spec.audit_annotations.clone().unwrap_or_default(),
        mutations: Vec::new(),
        builtin: None,
    })
}

/// Kubernetes' `MatchResources` in Rampart's model, checking operations and matchPolicy.
fn convert_match(m: &k8s::MatchResources, field: &str) -> Result<MatchResources, Vec<PolicyError>> {
    let mut errors = Vec::new();
    let mut rules = |list: &Option<Vec<k8s::NamedRuleWithOperations>>,
                     name: &str|
     -> Option<Vec<ResourceRule>> {
        list.as_ref().map(|list| {
            list.iter()
                .enumerate()
                .map(|(i, r)| {
                    let mut operations = Vec::new();
                    for (j, op) in r.operations.iter().flatten().enumerate() {
                        match Operation::parse(op) {
                            Some(op) => operations.push(op),
                            None => errors.push(
                                PolicyError::new(format!(
                                    "unknown operation {op:?}: expected CREATE, UPDATE, DELETE, CONNECT or *"
                                ))
                                .at_field(format!("{field}.{name}[{i}].operations[{j}]")),
                            ),
                        }
                    }
                    ResourceRule {
                        api_groups: r.api_groups.clone().unwrap_or_default(),
                        api_versions: r.api_versions.clone().unwrap_or_default(),
                        resources: r.resources.clone().unwrap_or_default(),
                        operations,
                        resource_names: r.resource_names.clone().unwrap_or_default(),
                        scope: r.scope.clone(),
                    }
                })
                .collect()
        })
    };
    let resource_rules = rules(&m.resource_rules, "resourceRules");
    let exclude_resource_rules = rules(&m.exclude_resource_rules, "excludeResourceRules");
    let match_policy = match m.match_policy.as_deref() {
        None | Some("Equivalent") => Some(crd::MatchPolicy::Equivalent),
        Some("Exact") => Some(crd::MatchPolicy::Exact),
        Some(other) => {
            errors.push(
                PolicyError::new(format!(
                    "unknown matchPolicy {other:?}: expected Exact or Equivalent"
                ))
                .at_field(format!("{field}.matchPolicy")),
            );
            None
        }
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(MatchResources {
        resource_rules,
        exclude_resource_rules,
        namespace_selector: m.namespace_selector.clone(),
        object_selector: m.object_selector.clone(),
        match_policy,
        ..MatchResources::default()
    })
}

fn param_binding(
    body: &Body,
    r: &k8s::ParamRef,
    field: &str,
    params: &HashMap<(String, String), Vec<Param>>,
) -> Result<ParamBinding, Vec<PolicyError>> {
    let (group, kind, _) = body.param_kind.clone().expect("checked by the caller");
    let mut errors = Vec::new();
    match (&r.name, &r.selector) {
        (Some(_), Some(_)) => errors.push(
            PolicyError::new("name and selector are mutually exclusive").at_field(field.to_owned()),
        ),
        (None, None) => errors.push(
            PolicyError::new("one of name or selector is required").at_field(field.to_owned()),
        ),
        _ => {}
    }
    let deny_when_missing = match r.parameter_not_found_action.as_deref() {
        None | Some("Deny") => true,
        Some("Allow") => false,
        Some(other) => {
            errors.push(
                PolicyError::new(format!(
                    "unknown parameterNotFoundAction {other:?}: expected Allow or Deny"
                ))
                .at_field(format!("{field}.parameterNotFoundAction")),
            );
            true
        }
    };
    let selector = match &r.selector {
        Some(s) => match Selector::compile(s, &format!("{field}.selector")) {
            Ok(s) => Some(s),
            Err(e) => {
                errors.push(e);
                None
            }
        },
        None => None,
    };
    let namespaced = match scope_of(&group, &kind) {
        Scope::Cluster => false,
        Scope::Namespaced => true,
        Scope::Unknown => params
            .get(&(group.clone(), kind.clone()))
            .is_some_and(|ps| ps.iter().any(|p| !p.namespace.is_empty())),
    };
    let mut namespace = r.namespace.clone().filter(|n| !n.is_empty());
    if !namespaced && namespace.is_some() && scope_of(&group, &kind) == Scope::Cluster {
        errors.push(
            PolicyError::new(format!(
                "{kind} is cluster-scoped: paramRef.namespace must be unset"
            ))
            .at_field(format!("{field}.namespace")),
        );
    }
    if body.kind == PolicyKind::Policy && namespaced && namespace.is_none() {
        namespace = body.namespace.clone();
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(ParamBinding {
        group,
        kind,
        namespaced: namespaced || namespace.is_some(),
        name: r.name.clone(),
        namespace,
        selector,
        deny_when_missing,
    })
}

fn is_qualified_name(s: &str) -> bool {
    let (prefix, name) = match s.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, s),
    };
    let name_ok = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    let prefix_ok = prefix.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 253
            && p.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.'))
    });
    name_ok && prefix_ok
}

fn compile_body(
    def: &Definition,
    options: &CompileOptions,
    scoped: &mut Scoped<'_>,
) -> Option<Body> {
    let before = scoped.errors.len();
    let has_cel = !def.validations.is_empty()
        || !def.mutations.is_empty()
        || !def.audit_annotations.is_empty();
    if !has_cel && def.builtin.is_none() {
        scoped.push(
            PolicyError::new("the policy does nothing: give validations, mutations, auditAnnotations or builtin checks")
                .at_field("spec.validations"),
        );
    }
    let constraints = match &def.constraints {
        Some(m) => Matcher::compile(m, "spec.matchConstraints", OpSet::CREATE_UPDATE, false)
            .map_err(|es| scoped.extend(es))
            .ok(),
        None if has_cel && def.kind != PolicyKind::ValidatingAdmissionPolicy => {
            scoped.push(
                PolicyError::new("matchConstraints is required for CEL validations, mutations and auditAnnotations")
                    .at_field("spec.matchConstraints"),
            );
            None
        }
        None => {
            // Built-in checks only: every resource, created or updated.
            Matcher::compile(
                &MatchResources::default(),
                "spec.matchConstraints",
                OpSet::CREATE_UPDATE,
                false,
            )
            .ok()
        }
    };
    let exclude = match &def.exclude {
        Some(m) => match Matcher::compile(m, "spec.exclude", OpSet::ALL, true) {
            Ok(m) if m.is_unconstrained() => {
                scoped.push(
                    PolicyError::new(
                        "exclude sets no criterion, so it would exclude every request",
                    )
                    .at_field("spec.exclude"),
                );
                None
            }
            Ok(m) => Some(m),
            Err(es) => {
                scoped.extend(es);
                None
            }
        },
        None => None,
    };
    let param_kind = def.param_kind.as_ref().and_then(|pk| {
        let av = pk.api_version.clone().unwrap_or_default();
        let kind = pk.kind.clone().unwrap_or_default();
        if av.is_empty() || kind.is_empty() {
            scoped.push(
                PolicyError::new("paramKind needs apiVersion and kind").at_field("spec.paramKind"),
            );
            return None;
        }
        let group = av.rsplit_once('/').map_or("", |(g, _)| g).to_owned();
        Some((group, kind, av))
    });

    let limits = &options.cel;
    // Variables: on an error, stand the variable in as `null` and go on, so
    // the expressions using it are still checked.
    let mut var_defs: Vec<(String, String)> = def
        .variables
        .iter()
        .map(|v| (v.name.clone(), v.expression.clone()))
        .collect();
    let variables = if var_defs.is_empty() {
        None
    } else {
        let mut set = None;
        for _ in 0..=var_defs.len() {
            match VariableSet::compile_with_limits(
                var_defs.iter().map(|(n, e)| (n.as_str(), e.as_str())),
                limits,
            ) {
                Ok(s) => {
                    set = Some(s);
                    break;
                }
                Err(VariableError::InvalidName { index, name }) => {
                    scoped.push(
                        PolicyError::new(format!(
                            "invalid variable name {name:?}: it must match [a-zA-Z_][a-zA-Z0-9_]*"
                        ))
                        .at_field(format!("spec.variables[{index}].name")),
                    );
                    var_defs[index] = (format!("__invalid{index}"), "null".into());
                }
                Err(VariableError::Duplicate { index, name }) => {
                    scoped.push(
                        PolicyError::new(format!("duplicate variable name {name:?}"))
                            .at_field(format!("spec.variables[{index}].name")),
                    );
                    var_defs[index] = (format!("__duplicate{index}"), "null".into());
                }
                Err(VariableError::Compile { index, error, .. }) => {
                    scoped.push(PolicyError::cel(
                        format!("spec.variables[{index}].expression"),
                        &error,
                    ));
                    var_defs[index].1 = "null".into();
                }
            }
        }
        set
    };
    let cel_options = CelOptions {
        limits: limits.clone(),
        variables: variables.as_ref(),
    };
    let compile = |field: String, src: &str, scoped: &mut Scoped<'_>| -> Option<Program> {
        if src.trim().is_empty() {
            scoped.push(PolicyError::new("expression is required").at_field(field));
            return None;
        }
        Program::compile_with(src, &cel_options)
            .map_err(|e| scoped.push(PolicyError::cel(field, &e)))
            .ok()
    };

    if def.match_conditions.len() > MAX_MATCH_CONDITIONS {
        scoped.push(
            PolicyError::new(format!(
                "at most {MAX_MATCH_CONDITIONS} match conditions are allowed"
            ))
            .at_field("spec.matchConditions"),
        );
    }
    let mut match_conditions = Vec::new();
    let mut names = BTreeSet::new();
    for (i, mc) in def.match_conditions.iter().enumerate() {
        if !is_qualified_name(&mc.name) {
            scoped.push(
                PolicyError::new(format!(
                    "invalid match condition name {:?}: it must be a qualified name",
                    mc.name
                ))
                .at_field(format!("spec.matchConditions[{i}].name")),
            );
        } else if !names.insert(mc.name.clone()) {
            scoped.push(
                PolicyError::new(format!("duplicate match condition name {:?}", mc.name))
                    .at_field(format!("spec.matchConditions[{i}].name")),
            );
        }
        let field = format!("spec.matchConditions[{i}].expression");
        if let Some(program) = compile(field.clone(), &mc.expression, scoped) {
            match_conditions.push(NamedProgram {
                name: mc.name.clone(),
                field,
                program,
            });
        }
    }

    let severity = def.severity.unwrap_or(Severity::Medium);
    let mut validations = Vec::new();
    let mut rule_names = BTreeSet::new();
    for (i, v) in def.validations.iter().enumerate() {
        let rule: Arc<str> = match &v.name {
            Some(n) => {
                if n.is_empty() || n.contains(char::is_whitespace) || n.contains('/') {
                    scoped.push(
                        PolicyError::new(format!(
                            "invalid validation name {n:?}: no spaces or slashes"
                        ))
                        .at_field(format!("spec.validations[{i}].name")),
                    );
                }
                Arc::from(n.as_str())
            }
            None => Arc::from(i.to_string()),
        };
        if !rule_names.insert(rule.clone()) {
            scoped.push(
                PolicyError::new(format!("duplicate validation name {rule:?}"))
                    .at_field(format!("spec.validations[{i}].name")),
            );
        }
        if let Some(m) = &v.message
            && m.contains(['\n', '\r'])
        {
            scoped.push(
                PolicyError::new("message must not contain line breaks")
                    .at_field(format!("spec.validations[{i}].message")),
            );
        }
        let field = format!("spec.validations[{i}].expression");
        let expression = compile(field.clone(), &v.expression, scoped);
        let message_expression = v.message_expression.as_deref().and_then(|m| {
            compile(
                format!("spec.validations[{i}].messageExpression"),
                m,
                scoped,
            )
        });
        let Some(expression) = expression else {
            continue;
        };
        let text = v
            .message
            .clone()
            .unwrap_or_else(|| format!("failed expression: {}", v.expression.trim()));
        let meta = Arc::new(CheckMeta {
            id: Cow::Owned(format!("{}/{rule}", def.name)),
            title: Cow::Owned(match &def.description {
                Some(d) => format!("{} ({})", d, def.name),
                None => format!("{} {}: {}", def.kind.as_str(), def.name, text),
            }),
            severity,
            category: Category::Policy,
            why: Cow::Owned(def.description.clone().unwrap_or_else(|| text.clone())),
            fix: Cow::Owned(format!(
                "Change the object so that `{}` holds.",
                v.expression.trim()
            )),
        });
        validations.push(CompiledValidation {
            rule,
            field,
            expression,
            message: v.message.clone(),
            message_expression,
            reason: v.reason,
            meta,
        });
    }

    let mut audit_annotations = Vec::new();
    let mut keys = BTreeSet::new();
    for (i, a) in def.audit_annotations.iter().enumerate() {
        let valid_key = !a.key.is_empty()
            && a.key.len() <= 63
            && a.key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !valid_key {
            scoped.push(
                PolicyError::new(format!("invalid audit annotation key {:?}", a.key))
                    .at_field(format!("spec.auditAnnotations[{i}].key")),
            );
        } else if !keys.insert(a.key.clone()) {
            scoped.push(
                PolicyError::new(format!("duplicate audit annotation key {:?}", a.key))
                    .at_field(format!("spec.auditAnnotations[{i}].key")),
            );
        }
        let field = format!("spec.auditAnnotations[{i}].valueExpression");
        if let Some(program) = compile(field.clone(), &a.value_expression, scoped) {
            audit_annotations.push(NamedProgram {
                name: a.key.clone(),
                field,
                program,
            });
        }
    }

    let mut mutations = Vec::new();
    for (i, m) in def.mutations.iter().enumerate() {
        let field = format!("spec.mutations[{i}]");
        let name: Arc<str> = Arc::from(m.name.clone().unwrap_or_else(|| i.to_string()));
        let source = match (&m.expression, &m.patch) {
            (Some(_), Some(_)) | (None, None) => {
                scoped.push(
                    PolicyError::new("give exactly one of expression and patch")
                        .at_field(field.clone()),
                );
                continue;
            }
            (Some(e), None) => match compile(format!("{field}.expression"), e, scoped) {
                Some(p) => MutationSource::Expression(p),
                None => continue,
            },
            (None, Some(p)) => {
                let ok = match m.patch_type {
                    PatchType::JsonPatch => serde_json::from_value::<json_patch::Patch>(p.clone())
                        .map_err(|e| {
                            format!("not a JSON Patch (a list of {{op, path, value}}): {e}")
                        }),
                    PatchType::Merge if p.is_object() => Ok(json_patch::Patch(Vec::new())),
                    PatchType::Merge => Err("a merge patch must be an object".to_owned()),
                };
                if let Err(e) = ok {
                    scoped.push(PolicyError::new(e).at_field(format!("{field}.patch")));
                    continue;
                }
                MutationSource::Static(p.clone())
            }
        };
        mutations.push(CompiledMutation {
            name,
            field,
            patch_type: m.patch_type,
            source,
        });
    }

    let (builtin, builtin_metas) = match &def.builtin {
        None => (None, HashMap::new()),
        Some(b) => match builtin::compile(b, "spec.builtin") {
            Ok(b) => {
                let metas = b
                    .object
                    .catalog()
                    .chain(b.corpus.catalog())
                    .map(|m| {
                        let mut meta = (**m).clone();
                        meta.id = Cow::Owned(format!("{}/{}", def.name, m.id));
                        if let Some(s) = def.severity {
                            meta.severity = s;
                        }
                        (m.id.to_string(), Arc::new(meta))
                    })
                    .collect();
                (Some(b), metas)
            }
            Err(es) => {
                scoped.extend(es);
                (None, HashMap::new())
            }
        },
    };

    if scoped.errors.len() > before {
        return None;
    }
    Some(Body {
        kind: def.kind,
        name: def.name.clone(),
        namespace: def.namespace.clone(),
        constraints: constraints?,
        exclude,
        failure_policy: def.failure_policy,
        severity: def.severity,
        param_kind,
        match_conditions,
        variables,
        validations,
        audit_annotations,
        mutations,
        builtin,
        builtin_metas,
    })
}

/// Labels of a parameter object.
pub(crate) fn param_labels(p: &Param) -> ObjectLabels<'_> {
    ObjectLabels::of(&p.value)
}

//! The `rampart.dev/v1alpha1` API: `ClusterPolicy` and namespaced `Policy`.
//!
//! Both kinds share one [`PolicySpec`], shaped after Kubernetes'
//! `ValidatingAdmissionPolicy` (match constraints, match conditions,
//! variables, validations, audit annotations, failure policy, params) with
//! the binding's `validationActions` folded in, plus Rampart's additions:
//! `severity`, `exclude`, `kinds`/`namespaces`/`subjects` matching,
//! `mutations` and `builtin` (Rampart's built-in checks as a policy).
//!
//! The CRD manifests are generated from these types ([`crds_yaml`]).

use k8s_openapi::api::admissionregistration::v1::{
    AuditAnnotation, MatchCondition, ParamKind, ParamRef, Variable,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::CustomResource;
use kube::core::CustomResourceExt;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// API group of Rampart's resources.
pub const GROUP: &str = "rampart.dev";
/// API version of Rampart's policy resources.
pub const VERSION: &str = "v1alpha1";
/// `apiVersion` of Rampart's policy resources.
pub const API_VERSION: &str = "rampart.dev/v1alpha1";

/// A Rampart policy: which requests it applies to, the CEL validations and
/// mutations it runs on them (or Rampart's built-in checks), and what happens
/// when a validation fails.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "rampart.dev",
    version = "v1alpha1",
    kind = "Policy",
    namespaced,
    shortname = "rpol",
    derive = "PartialEq",
    derive = "Default",
    status = "PolicyStatus",
    doc = "A namespaced Rampart policy: applies only to objects in its own namespace."
)]
#[serde(rename_all = "camelCase")]
pub struct PolicySpec {
    /// One line saying what the policy enforces, shown in reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Severity of the policy's failures in reports: info, low, medium, high
    /// or critical. Default medium; built-in checks keep their own severity
    /// unless this is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<PolicySeverity>,
    /// What happens when evaluating the policy fails (an expression errors,
    /// params are misconfigured, the object is over the input limits): Fail
    /// treats the error as a failed validation (subject to
    /// validationActions), Ignore skips the policy and reports the error.
    /// Default Fail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_policy: Option<FailurePolicy>,
    /// How failed validations are enforced: Deny rejects the request, Warn
    /// returns a warning, Audit records it. Deny and Warn exclude each other.
    /// Default [Deny].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_actions: Option<Vec<ValidationAction>>,
    /// Which requests the policy applies to. Required unless the policy only
    /// has `builtin` checks (which then apply to every object they know).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_constraints: Option<MatchResources>,
    /// Requests the policy does not apply to: an exclusion applies when every
    /// criterion it sets matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude: Option<MatchResources>,
    /// The kind of the parameter resource (as in ValidatingAdmissionPolicy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub param_kind: Option<ParamKind>,
    /// Which parameter resources to use (as in ValidatingAdmissionPolicyBinding).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub param_ref: Option<ParamRef>,
    /// CEL conditions that must all be true for the policy to apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_conditions: Option<Vec<MatchCondition>>,
    /// Named CEL expressions usable as `variables.<name>`, each evaluated at
    /// most once per request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variables: Option<Vec<Variable>>,
    /// CEL validations; a request fails the policy when one evaluates to false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validations: Option<Vec<Validation>>,
    /// CEL expressions producing audit annotations `<policy>/<key>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit_annotations: Option<Vec<AuditAnnotation>>,
    /// Changes made to matching objects before validation, in order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mutations: Option<Vec<Mutation>>,
    /// Rampart's built-in checks, run under this policy's matching and actions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub builtin: Option<BuiltinChecks>,
}

/// A cluster-wide Rampart policy.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "rampart.dev",
    version = "v1alpha1",
    kind = "ClusterPolicy",
    plural = "clusterpolicies",
    shortname = "rcpol",
    derive = "PartialEq",
    derive = "Default",
    status = "PolicyStatus",
    doc = "A cluster-wide Rampart policy."
)]
pub struct ClusterPolicySpec {
    #[serde(flatten)]
    pub spec: PolicySpec,
}

/// What the controller reports about a policy.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyStatus {
    /// `Ready`: `True` when the policy's current version compiled and is in
    /// force; `False` with reason `CompileError` and the errors when it does
    /// not compile (its previous version, if any, stays in force).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>,
}

/// Severity of a policy's findings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PolicySeverity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl From<PolicySeverity> for rampart_core::Severity {
    fn from(s: PolicySeverity) -> Self {
        match s {
            PolicySeverity::Info => Self::Info,
            PolicySeverity::Low => Self::Low,
            PolicySeverity::Medium => Self::Medium,
            PolicySeverity::High => Self::High,
            PolicySeverity::Critical => Self::Critical,
        }
    }
}

/// What an evaluation error does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum FailurePolicy {
    /// The error counts as a failed validation.
    #[default]
    Fail,
    /// The policy is skipped; the error is reported.
    Ignore,
}

/// How a failed validation is enforced.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
pub enum ValidationAction {
    Deny,
    Warn,
    Audit,
}

impl ValidationAction {
    pub fn as_str(self) -> &'static str {
        match self {
            ValidationAction::Deny => "Deny",
            ValidationAction::Warn => "Warn",
            ValidationAction::Audit => "Audit",
        }
    }
}

/// Which requests a policy applies to: Kubernetes' `MatchResources`
/// (resourceRules, excludeResourceRules, namespaceSelector, objectSelector,
/// matchPolicy) plus Rampart's `kinds`, `operations`, `namespaces` and
/// `subjects`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MatchResources {
    /// Resources and operations, as in ValidatingAdmissionPolicy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_rules: Option<Vec<ResourceRule>>,
    /// Resources and operations that never match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude_resource_rules: Option<Vec<ResourceRule>>,
    /// Kinds, a simpler alternative to resourceRules: `Pod` (any group),
    /// `apps/Deployment`, `core/ConfigMap` (the core group) or `*`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kinds: Option<Vec<String>>,
    /// Operations `kinds` apply to. Default [CREATE, UPDATE] (every
    /// operation in `exclude`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operations: Option<Vec<Operation>>,
    /// Namespaces, by name, the object must be in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespaces: Option<Vec<String>>,
    /// Labels the object's namespace must have (a Namespace object: its own labels).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,
    /// Labels the object (or, on UPDATE and DELETE, the old object) must have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_selector: Option<LabelSelector>,
    /// Who makes the request: users, groups or service accounts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subjects: Option<Vec<Subject>>,
    /// Exact, or Equivalent (default): also match the same resource requested
    /// under another version or a legacy group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_policy: Option<MatchPolicy>,
}

/// A rule over resources and operations (Kubernetes' `NamedRuleWithOperations`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceRule {
    /// API groups; `""` is the core group, `*` every group.
    #[serde(default)]
    pub api_groups: Vec<String>,
    /// API versions; `*` every version.
    #[serde(default)]
    pub api_versions: Vec<String>,
    /// Resources (plural, lower case): `pods`, `pods/status` (a
    /// subresource), `*` (every resource, no subresources), `*/scale`, `*/*`.
    #[serde(default)]
    pub resources: Vec<String>,
    /// CREATE, UPDATE, DELETE, CONNECT or `*`.
    #[serde(default)]
    pub operations: Vec<Operation>,
    /// Object names the rule is limited to; empty means every name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resource_names: Vec<String>,
    /// `Cluster`, `Namespaced` or `*` (default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

/// An admission operation.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
pub enum Operation {
    #[serde(rename = "CREATE")]
    Create,
    #[serde(rename = "UPDATE")]
    Update,
    #[serde(rename = "DELETE")]
    Delete,
    #[serde(rename = "CONNECT")]
    Connect,
    /// Every operation.
    #[serde(rename = "*")]
    All,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "CREATE",
            Operation::Update => "UPDATE",
            Operation::Delete => "DELETE",
            Operation::Connect => "CONNECT",
            Operation::All => "*",
        }
    }

    pub fn parse(s: &str) -> Option<Operation> {
        Some(match s {
            "CREATE" => Operation::Create,
            "UPDATE" => Operation::Update,
            "DELETE" => Operation::Delete,
            "CONNECT" => Operation::Connect,
            "*" => Operation::All,
            _ => return None,
        })
    }

    /// The one operation of a request this names; `None` for `*`.
    pub fn single(self) -> Option<rampart_core::request::Operation> {
        use rampart_core::request::Operation as Op;
        Some(match self {
            Operation::Create => Op::Create,
            Operation::Update => Op::Update,
            Operation::Delete => Op::Delete,
            Operation::Connect => Op::Connect,
            Operation::All => return None,
        })
    }
}

impl From<rampart_core::request::Operation> for Operation {
    fn from(op: rampart_core::request::Operation) -> Self {
        use rampart_core::request::Operation as Op;
        match op {
            Op::Create => Operation::Create,
            Op::Update => Operation::Update,
            Op::Delete => Operation::Delete,
            Op::Connect => Operation::Connect,
        }
    }
}

/// Who made a request.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Subject {
    /// User, Group or ServiceAccount.
    pub kind: SubjectKind,
    /// The user name, group name or service account name; `*` matches any.
    pub name: String,
    /// The service account's namespace (ServiceAccount only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// The kind of a [`Subject`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum SubjectKind {
    #[default]
    User,
    Group,
    ServiceAccount,
}

/// How resource rules match requests for other versions of a resource.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum MatchPolicy {
    Exact,
    #[default]
    Equivalent,
}

/// One CEL validation.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Validation {
    /// Rule name, used in finding IDs (`<policy>/<name>`) and tests; default
    /// the validation's index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// CEL expression that must evaluate to true.
    pub expression: String,
    /// Message when the expression is false; default `failed expression: <expression>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// CEL expression producing the message; takes precedence over `message`
    /// unless it fails or produces an empty or multi-line string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_expression: Option<String>,
    /// Unauthorized, Forbidden, Invalid (default) or RequestEntityTooLarge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
}

/// Machine-readable reason of a denial (and its HTTP status).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum Reason {
    Unauthorized,
    Forbidden,
    #[default]
    Invalid,
    RequestEntityTooLarge,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Unauthorized => "Unauthorized",
            Reason::Forbidden => "Forbidden",
            Reason::Invalid => "Invalid",
            Reason::RequestEntityTooLarge => "RequestEntityTooLarge",
        }
    }

    /// The HTTP status code Kubernetes answers with.
    pub fn http_code(self) -> u16 {
        match self {
            Reason::Unauthorized => 401,
            Reason::Forbidden => 403,
            Reason::Invalid => 422,
            Reason::RequestEntityTooLarge => 413,
        }
    }

    pub fn parse(s: &str) -> Option<Reason> {
        Some(match s {
            "Unauthorized" => Reason::Unauthorized,
            "Forbidden" => Reason::Forbidden,
            "Invalid" => Reason::Invalid,
            "RequestEntityTooLarge" => Reason::RequestEntityTooLarge,
            _ => return None,
        })
    }
}

/// A change to matching objects: a JSON Patch (RFC 6902) or a JSON merge
/// patch (RFC 7386), computed by a CEL expression or given literally.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Mutation {
    /// Mutation name, for reports; default its index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// JSONPatch: `expression` yields (or `patch` is) a list of
    /// `{op, path, value, from}` operations. Merge: an object merged into
    /// the object (null deletes a field).
    pub patch_type: PatchType,
    /// CEL expression producing the patch. Exactly one of expression and patch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expression: Option<String>,
    /// The patch itself. Exactly one of expression and patch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "any_json")]
    pub patch: Option<serde_json::Value>,
}

/// The kind of patch a [`Mutation`] makes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum PatchType {
    #[default]
    #[serde(rename = "JSONPatch")]
    JsonPatch,
    Merge,
}

/// Rampart's built-in checks as a policy. With neither `podSecurity` nor
/// `checks`, nothing runs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BuiltinChecks {
    /// Pod Security Standards level and version to enforce.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_security: Option<PodSecurityProfile>,
    /// Best-practice checks to run, by ID (`rampart checks`); `*` for all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checks: Option<Vec<String>>,
    /// Checks to leave out, by ID (Pod Security checks included: `pss-privileged`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip: Option<Vec<String>>,
    /// Registries or repository prefixes images may come from (turns on
    /// `image-registry-not-allowed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_registries: Option<Vec<String>>,
    /// Namespaces treated as untrusted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub untrusted_namespaces: Option<Vec<String>>,
    /// Whether resources-missing-limits requires CPU limits. Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_cpu_limits: Option<bool>,
}

/// A Pod Security Standards profile.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodSecurityProfile {
    /// privileged, baseline or restricted.
    pub level: String,
    /// `latest` (default) or `v1.N`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

fn any_json(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({ "x-kubernetes-preserve-unknown-fields": true })
}

/// The CustomResourceDefinitions of `ClusterPolicy` and `Policy`, as
/// `(file name, YAML)`, in that order. `deploy/crds/` holds the same text.
pub fn crds_yaml() -> Vec<(&'static str, String)> {
    let render = |crd: &k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition| {
        let mut text = String::from("# Generated by `rampart crds` from crates/rampart-policy/src/crd.rs; do not edit.\n");
        text.push_str(&serde_saphyr::to_string(crd).expect("a CRD serializes to YAML"));
        text
    };
    vec![
        (
            "rampart.dev_clusterpolicies.yaml",
            render(&ClusterPolicy::crd()),
        ),
        ("rampart.dev_policies.yaml", render(&Policy::crd())),
    ]
}

/// The default built-in policy: what `rampart scan` runs with its default
/// options (Pod Security Standards `restricted` at `latest`, every best practice).
pub fn default_builtin_policy() -> ClusterPolicy {
    let mut policy = ClusterPolicy::new(
        "rampart-defaults",
        ClusterPolicySpec {
            spec: PolicySpec {
                description: Some(
                    "Rampart's defaults: Pod Security Standards restricted at latest, and every best practice"
                        .into(),
                ),
                builtin: Some(BuiltinChecks {
                    pod_security: Some(PodSecurityProfile {
                        level: "restricted".into(),
                        version: Some("latest".into()),
                    }),
                    checks: Some(vec!["*".into()]),
                    ..BuiltinChecks::default()
                }),
                ..PolicySpec::default()
            },
        },
    );
    policy.metadata.name = Some("rampart-defaults".into());
    policy
}

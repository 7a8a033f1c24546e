//! Best-practice checks: image hygiene, resources, workload hardening,
//! namespace hygiene and RBAC.
//!
//! [`checks`] builds the checks for a [`PracticeConfig`]; [`catalog`] lists
//! every check for documentation and SARIF rules, whatever the configuration.
//!
//! # Decisions
//!
//! Containers
//! : Image checks and `host-path-writable` visit init, regular and ephemeral
//!   containers (an ephemeral container pulls an image and can mount pod
//!   volumes like any other). `resources-missing-*` and
//!   `read-only-root-filesystem` skip ephemeral containers: the API forbids
//!   resources on them, and they are debugging aids added through a
//!   subresource, never declared in a workload's manifest. Probe checks only
//!   visit regular containers and restartable init containers (sidecars,
//!   `restartPolicy: Always`), the only ones the kubelet probes for liveness
//!   and readiness.
//!
//! Images ([`image`])
//! : References are parsed like Docker's `ParseNormalizedNamed`: the first
//!   path component is the registry only if it contains `.` or `:`, is
//!   `localhost` or has upper-case letters (so in `registry:5000/ns/app` the
//!   colon is a port, not a tag); otherwise the registry is `docker.io` and a
//!   single-component name gets `library/` (`nginx` is
//!   `docker.io/library/nginx`); `index.docker.io` is `docker.io`. An image with
//!   a digest (`app@sha256:…`, `app:1.2@sha256:…`) is pinned and never fails
//!   `image-tag-latest`. Images that are empty or cannot be parsed are left to
//!   the API server's validation.
//!
//! Allowed registries
//! : See [`PracticeConfig::allowed_registries`]: an entry without `/` is a
//!   registry host (with its port, if any) and matches every image from it; an
//!   entry with `/` is a repository prefix that matches whole path components
//!   of the normalised name. Hosts compare case-insensitively.
//!
//! Resources
//! : A limit implies the request (the API server defaults a missing request to
//!   the limit), and pod-level resources (`spec.resources`, Kubernetes 1.32+)
//!   cover every container for the resources they set. LimitRange defaults
//!   are not considered, since they live in another object; the namespace
//!   hygiene checks cover LimitRanges. CPU limits can be exempted with
//!   [`PracticeConfig::require_cpu_limits`].
//!
//! `read-only-root-filesystem`
//! : Skipped for Windows pods (`spec.os.name: windows`), where the API forbids
//!   the field.
//!
//! `automount-service-account-token`
//! : A corpus check, to follow Kubernetes' precedence: a pod's own
//!   `automountServiceAccountToken` wins; when unset, its service account's
//!   applies, and the token is mounted by default. A pod passes if it sets
//!   `false`, or leaves the field unset and its service account (from
//!   `serviceAccountName`, default `default`) is in the scan, in the same
//!   namespace, with `automountServiceAccountToken: false`.
//!
//! Probes
//! : Skipped for Jobs and CronJobs, and for any pod whose `restartPolicy` is
//!   `Never` or `OnFailure`: these run to completion. Bare Pods and
//!   PodTemplates with the default `restartPolicy: Always` are checked: they
//!   are long-running like any controller's pods.
//!
//! Namespaces of objects
//! : An object's namespace is its `metadata.namespace`, else
//!   [`PracticeConfig::default_namespace`] (what `kubectl apply -n` would use).
//!   Without either it is in an unknown namespace: never an untrusted one,
//!   never counted towards a Namespace's hygiene, but the same unknown
//!   namespace as other namespace-less objects when a pod's ServiceAccount is
//!   looked up (they are applied together).
//!
//! `untrusted-namespace-without-sandbox`
//! : A namespace is untrusted when it is listed in
//!   [`PracticeConfig::untrusted_namespaces`] or when its Namespace object is
//!   in the scan with [`PracticeConfig::untrusted_namespace_label`] (default
//!   `rampart.dev/untrusted: "true"`). A pod there fails when it has a
//!   privileged container (of any list) or sets hostNetwork, hostPID or hostIPC,
//!   and its `runtimeClassName` is not a sandbox runtime class.
//!
//! Namespace hygiene
//! : Only for Namespace objects in the scan (the scan then sees the whole
//!   namespace); [`PracticeConfig::system_namespaces`] (default `kube-system`,
//!   `kube-public`, `kube-node-lease`) are skipped; `default` is checked. The
//!   violation is reported on the Namespace's `metadata.name`. A default-deny
//!   NetworkPolicy selects every pod (`podSelector: {}` or absent), has the
//!   direction in its effective `policyTypes` (when unset: Ingress, plus Egress
//!   if it has egress rules) and no rules for that direction. Ingress must be
//!   denied by default; egress only with
//!   [`PracticeConfig::require_default_deny_egress`]. The two directions may
//!   come from different policies.
//!
//! RBAC ([`rbac`])
//! : Roles and ClusterRoles the API server bootstraps (label
//!   `kubernetes.io/bootstrapping: rbac-defaults`) or whose name starts with
//!   the reserved `system:` prefix are skipped, as are ClusterRoles with an
//!   `aggregationRule`, whose rules the aggregation controller owns (their
//!   component roles are checked instead). Rule checks default to the severity
//!   for ClusterRoles and lower it by one step for Roles. `pods/*` is not a
//!   wildcard in RBAC (only `*` and `*/<subresource>` are), so it does not
//!   grant exec. A cluster-admin binding fails unless its only subjects are
//!   the `system:masters` group, whose members bypass authorization anyway;
//!   `system:authenticated`, `system:serviceaccounts` and other system
//!   subjects are reported.

pub mod image;
mod namespace;
pub mod rbac;
mod workload;

use std::borrow::Cow;
use std::fmt;

use rampart_core::value::{array_field, field, str_field};
use rampart_core::{
    Category, Check, CheckMeta, CorpusCheck, FieldPath, ObjectView, PodTemplate, Severity,
};
use serde_json::Value;

/// Sandbox runtime classes recognised by default: Kata Containers and gVisor.
pub const DEFAULT_SANDBOX_RUNTIME_CLASSES: &[&str] = &[
    "kata",
    "kata-qemu",
    "kata-clh",
    "kata-fc",
    "kata-remote",
    "gvisor",
    "runsc",
];

/// Namespaces the namespace hygiene checks skip by default.
pub const DEFAULT_SYSTEM_NAMESPACES: &[&str] = &["kube-system", "kube-public", "kube-node-lease"];

/// The label marking a Namespace untrusted by default: `rampart.dev/untrusted: "true"`.
pub const DEFAULT_UNTRUSTED_LABEL: (&str, &str) = ("rampart.dev/untrusted", "true");

/// A label `key: value` pair.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LabelPair {
    pub key: String,
    pub value: String,
}

/// Settings of the best-practice checks. `Default` gives the documented defaults.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PracticeConfig {
    /// Registries and repository prefixes images may come from; empty disables
    /// `image-registry-not-allowed`.
    ///
    /// An entry without `/` is a registry host, with its port if it has one
    /// (`ghcr.io`, `registry.local:5000`, `docker.io`), and matches every image
    /// from that registry, not other ports or subdomains. An entry with `/` is a
    /// prefix of the normalised repository (`ghcr.io/myorg`, `ghcr.io/myorg/`,
    /// `docker.io/library`) and matches whole path components: `ghcr.io/myorg`
    /// allows `ghcr.io/myorg/app` and `ghcr.io/myorg/team/app`, not
    /// `ghcr.io/myorg-evil/app`. The first component of an entry is always the
    /// host; a leading `https://` or `http://` is ignored, `index.docker.io`
    /// means `docker.io`, and hosts compare case-insensitively.
    pub allowed_registries: Vec<String>,
    /// Whether `resources-missing-limits` requires a CPU limit (memory limits
    /// are always required). Default true; turn off where CPU limits are
    /// avoided to prevent throttling.
    pub require_cpu_limits: bool,
    /// Namespaces treated as untrusted by name, whether or not their Namespace
    /// object is in the scan.
    pub untrusted_namespaces: Vec<String>,
    /// The label that marks a Namespace object untrusted; `None` disables
    /// label-based detection. Default `rampart.dev/untrusted: "true"`.
    pub untrusted_namespace_label: Option<LabelPair>,
    /// Runtime classes that sandbox pods; an entry ending in `*` matches by
    /// prefix (`kata-*`). Default [`DEFAULT_SANDBOX_RUNTIME_CLASSES`].
    pub sandbox_runtime_classes: Vec<String>,
    /// The namespace objects without `metadata.namespace` are assumed to be in
    /// (as with `kubectl apply -n`). Default `None`: unknown.
    pub default_namespace: Option<String>,
    /// Namespaces the namespace hygiene checks skip. Default
    /// [`DEFAULT_SYSTEM_NAMESPACES`].
    pub system_namespaces: Vec<String>,
    /// Whether `namespace-missing-default-deny-network-policy` also requires a
    /// default deny for egress. Default false (ingress only).
    pub require_default_deny_egress: bool,
}

impl Default for PracticeConfig {
    fn default() -> Self {
        Self {
            allowed_registries: Vec::new(),
            require_cpu_limits: true,
            untrusted_namespaces: Vec::new(),
            untrusted_namespace_label: Some(LabelPair {
                key: DEFAULT_UNTRUSTED_LABEL.0.to_owned(),
                value: DEFAULT_UNTRUSTED_LABEL.1.to_owned(),
            }),
            sandbox_runtime_classes: DEFAULT_SANDBOX_RUNTIME_CLASSES
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            default_namespace: None,
            system_namespaces: DEFAULT_SYSTEM_NAMESPACES
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            require_default_deny_egress: false,
        }
    }
}

/// Checks run on each object.
pub type ObjectChecks = Vec<Box<dyn Check>>;
/// Checks run once over every object of a scan.
pub type CorpusChecks = Vec<Box<dyn CorpusCheck>>;

/// The best-practice checks for `config`: per-object checks and corpus checks,
/// each in [`catalog`] order. `image-registry-not-allowed` is only included
/// when [`PracticeConfig::allowed_registries`] has an entry.
pub fn checks(config: &PracticeConfig) -> (ObjectChecks, CorpusChecks) {
    let mut object: ObjectChecks = vec![Box::new(image::ImageTagLatest)];
    if let Some(allow) = image::RegistryAllowList::new(&config.allowed_registries) {
        object.push(Box::new(allow));
    }
    object.extend([
        Box::new(workload::MissingResources::requests()) as Box<dyn Check>,
        Box::new(workload::MissingResources::limits(
            config.require_cpu_limits,
        )),
        Box::new(workload::ReadOnlyRootFilesystem),
        Box::new(workload::MissingProbe::liveness()),
        Box::new(workload::MissingProbe::readiness()),
        Box::new(workload::HostPathWritable),
        Box::new(rbac::WildcardVerbs),
        Box::new(rbac::WildcardResources),
        Box::new(rbac::ClusterAdminBinding),
        Box::new(rbac::PodsExec),
    ]);
    let corpus: CorpusChecks = vec![
        Box::new(workload::AutomountToken::new(config)),
        Box::new(workload::UntrustedWithoutSandbox::new(config)),
        Box::new(namespace::Hygiene::new(
            namespace::Kind::ResourceQuota,
            config,
        )),
        Box::new(namespace::Hygiene::new(namespace::Kind::LimitRange, config)),
        Box::new(namespace::Hygiene::new(
            namespace::Kind::DefaultDeny,
            config,
        )),
    ];
    (object, corpus)
}

/// Every best-practice check, whatever the configuration.
pub fn catalog() -> Vec<CheckMeta> {
    meta::ALL.iter().map(|m| (*m).clone()).collect()
}

/// What each check is, for people.
pub mod meta {
    use super::*;

    const fn def(
        id: &'static str,
        title: &'static str,
        severity: Severity,
        category: Category,
        why: &'static str,
        fix: &'static str,
    ) -> CheckMeta {
        CheckMeta {
            id: Cow::Borrowed(id),
            title: Cow::Borrowed(title),
            severity,
            category,
            why: Cow::Borrowed(why),
            fix: Cow::Borrowed(fix),
        }
    }

    pub static IMAGE_TAG_LATEST: CheckMeta = def(
        "image-tag-latest",
        "Image not pinned: no tag or :latest",
        Severity::Medium,
        Category::Images,
        "An image without a tag means :latest, which moves: rollouts become unreproducible and a rollback may not restore the old code.",
        "Pin the image to a version tag, or better a digest (image:1.2.3@sha256:…).",
    );
    pub static IMAGE_REGISTRY_NOT_ALLOWED: CheckMeta = def(
        "image-registry-not-allowed",
        "Image from a registry that is not allowed",
        Severity::High,
        Category::Images,
        "Images from unvetted registries bypass the supply-chain controls (scanning, signing, mirroring) of the allowed ones.",
        "Pull the image from an allowed registry, mirroring it there if needed.",
    );
    pub static RESOURCES_MISSING_REQUESTS: CheckMeta = def(
        "resources-missing-requests",
        "Container without CPU or memory requests",
        Severity::Low,
        Category::Resources,
        "Without requests the scheduler cannot place the pod sensibly and it is among the first evicted under node pressure (BestEffort).",
        "Set resources.requests.cpu and resources.requests.memory on every container.",
    );
    pub static RESOURCES_MISSING_LIMITS: CheckMeta = def(
        "resources-missing-limits",
        "Container without CPU or memory limits",
        Severity::Medium,
        Category::Resources,
        "Without limits one container can exhaust its node's memory or CPU and starve every other workload on it.",
        "Set resources.limits.memory (and resources.limits.cpu) on every container.",
    );
    pub static READ_ONLY_ROOT_FILESYSTEM: CheckMeta = def(
        "read-only-root-filesystem",
        "Writable root filesystem",
        Severity::Low,
        Category::Workloads,
        "A writable root filesystem lets an attacker drop tools or tamper with binaries and configuration inside the container.",
        "Set securityContext.readOnlyRootFilesystem to true and mount emptyDir volumes where the app writes.",
    );
    pub static AUTOMOUNT_SERVICE_ACCOUNT_TOKEN: CheckMeta = def(
        "automount-service-account-token",
        "Service account token mounted automatically",
        Severity::Low,
        Category::Workloads,
        "A mounted API token lets anyone who compromises the pod call the Kubernetes API with the service account's rights.",
        "Set automountServiceAccountToken: false on the pod (or its ServiceAccount) unless it needs the API.",
    );
    pub static LIVENESS_PROBE_MISSING: CheckMeta = def(
        "liveness-probe-missing",
        "Container without a liveness probe",
        Severity::Info,
        Category::Workloads,
        "Without a liveness probe a hung container keeps running and is never restarted.",
        "Add a livenessProbe that fails when the process can no longer make progress.",
    );
    pub static READINESS_PROBE_MISSING: CheckMeta = def(
        "readiness-probe-missing",
        "Container without a readiness probe",
        Severity::Info,
        Category::Workloads,
        "Without a readiness probe a Service sends traffic to pods before they can serve it and during overload.",
        "Add a readinessProbe that succeeds only when the container can serve requests.",
    );
    pub static HOST_PATH_WRITABLE: CheckMeta = def(
        "host-path-writable",
        "hostPath volume mounted writable",
        Severity::High,
        Category::Workloads,
        "A writable hostPath mount lets the container modify the node's files, a direct path to node compromise.",
        "Set readOnly: true on the volumeMount, or replace the hostPath volume.",
    );
    pub static UNTRUSTED_NAMESPACE_WITHOUT_SANDBOX: CheckMeta = def(
        "untrusted-namespace-without-sandbox",
        "Privileged pod in an untrusted namespace without a sandbox",
        Severity::High,
        Category::Workloads,
        "Privileged or host-namespace pods from untrusted tenants share the node's kernel and can take over the node unless sandboxed.",
        "Run the pod with a sandbox runtimeClassName (Kata, gVisor), or drop privileged and host namespaces.",
    );
    pub static NAMESPACE_MISSING_RESOURCE_QUOTA: CheckMeta = def(
        "namespace-missing-resource-quota",
        "Namespace without a ResourceQuota",
        Severity::Low,
        Category::Namespaces,
        "Without a ResourceQuota the workloads of one namespace can consume the whole cluster's capacity.",
        "Add a ResourceQuota to the namespace bounding CPU, memory and object counts.",
    );
    pub static NAMESPACE_MISSING_LIMIT_RANGE: CheckMeta = def(
        "namespace-missing-limit-range",
        "Namespace without a LimitRange",
        Severity::Low,
        Category::Namespaces,
        "Without a LimitRange containers that omit requests and limits get none, and are unbounded.",
        "Add a LimitRange with default requests and limits for containers in the namespace.",
    );
    pub static NAMESPACE_MISSING_DEFAULT_DENY_NETWORK_POLICY: CheckMeta = def(
        "namespace-missing-default-deny-network-policy",
        "Namespace without a default-deny NetworkPolicy",
        Severity::Medium,
        Category::Namespaces,
        "Pods accept traffic from anywhere in the cluster until a NetworkPolicy selects them, so one compromised pod can reach all others.",
        "Add a NetworkPolicy with podSelector: {}, policyTypes: [Ingress, Egress] and no rules, then allow what is needed.",
    );
    pub static RBAC_WILDCARD_VERBS: CheckMeta = def(
        "rbac-wildcard-verbs",
        "RBAC rule grants every verb",
        Severity::High,
        Category::Rbac,
        "\"*\" in verbs grants every current and future verb, including escalate, bind and impersonate.",
        "List the verbs the subject needs instead of \"*\".",
    );
    pub static RBAC_WILDCARD_RESOURCES: CheckMeta = def(
        "rbac-wildcard-resources",
        "RBAC rule grants every resource or API group",
        Severity::High,
        Category::Rbac,
        "\"*\" in resources, apiGroups or nonResourceURLs grants access to everything, secrets and future resources included.",
        "List the API groups, resources and URLs the subject needs instead of \"*\".",
    );
    pub static RBAC_CLUSTER_ADMIN_BINDING: CheckMeta = def(
        "rbac-cluster-admin-binding",
        "Binding to cluster-admin",
        Severity::Critical,
        Category::Rbac,
        "cluster-admin can do anything to any object; whoever holds it owns the cluster.",
        "Bind a role that grants only what the subject needs.",
    );
    pub static RBAC_PODS_EXEC: CheckMeta = def(
        "rbac-pods-exec",
        "RBAC rule allows exec or attach into pods",
        Severity::High,
        Category::Rbac,
        "Exec and attach run commands inside pods, reaching their secrets, tokens and network position.",
        "Remove create on pods/exec and pods/attach, or confine it to a Role in a namespace that needs it.",
    );

    /// Every check, in [`checks`] order.
    pub static ALL: &[&CheckMeta] = &[
        &IMAGE_TAG_LATEST,
        &IMAGE_REGISTRY_NOT_ALLOWED,
        &RESOURCES_MISSING_REQUESTS,
        &RESOURCES_MISSING_LIMITS,
        &READ_ONLY_ROOT_FILESYSTEM,
        &LIVENESS_PROBE_MISSING,
        &READINESS_PROBE_MISSING,
        &HOST_PATH_WRITABLE,
        &RBAC_WILDCARD_VERBS,
        &RBAC_WILDCARD_RESOURCES,
        &RBAC_CLUSTER_ADMIN_BINDING,
        &RBAC_PODS_EXEC,
        &AUTOMOUNT_SERVICE_ACCOUNT_TOKEN,
        &UNTRUSTED_NAMESPACE_WITHOUT_SANDBOX,
        &NAMESPACE_MISSING_RESOURCE_QUOTA,
        &NAMESPACE_MISSING_LIMIT_RANGE,
        &NAMESPACE_MISSING_DEFAULT_DENY_NETWORK_POLICY,
    ];
}

// ---------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------

/// The three container lists of a pod spec.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ContainerKind {
    Init,
    Regular,
    Ephemeral,
}

const ALL_CONTAINERS: &[ContainerKind] = &[
    ContainerKind::Init,
    ContainerKind::Regular,
    ContainerKind::Ephemeral,
];
const INIT_AND_REGULAR: &[ContainerKind] = &[ContainerKind::Init, ContainerKind::Regular];

impl ContainerKind {
    fn list(self) -> &'static str {
        match self {
            ContainerKind::Init => "initContainers",
            ContainerKind::Regular => "containers",
            ContainerKind::Ephemeral => "ephemeralContainers",
        }
    }

    fn noun(self) -> &'static str {
        match self {
            ContainerKind::Init => "init container",
            ContainerKind::Regular => "container",
            ContainerKind::Ephemeral => "ephemeral container",
        }
    }
}

/// One container of a pod spec.
#[derive(Clone, Copy)]
struct Container<'a> {
    kind: ContainerKind,
    index: usize,
    name: &'a str,
    value: &'a Value,
}

impl Container<'_> {
    fn path(&self, pod: &PodTemplate<'_>) -> FieldPath {
        pod.spec_path.key(self.kind.list()).index(self.index)
    }

    /// A restartable init container, which runs alongside the regular ones.
    fn is_sidecar(&self) -> bool {
        self.kind == ContainerKind::Init && str_field(self.value, "restartPolicy") == Some("Always")
    }
}

impl fmt::Display for Container<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {:?}", self.kind.noun(), self.name)
    }
}

/// The containers of `spec` in the given lists, in that order.
fn containers<'a>(
    spec: &'a Value,
    kinds: &'static [ContainerKind],
) -> impl Iterator<Item = Container<'a>> + 'a {
    kinds.iter().flat_map(move |&kind| {
        array_field(spec, kind.list())
            .iter()
            .enumerate()
            .map(move |(index, value)| Container {
                kind,
                index,
                name: str_field(value, "name").unwrap_or(""),
                value,
            })
    })
}

/// `base` extended by as many of `keys` as exist (non-null) in `value`: the
/// field itself when present, else the deepest parent that is.
fn deepest(mut base: FieldPath, mut value: &Value, keys: &[&'static str]) -> FieldPath {
    for key in keys {
        match field(value, key) {
            Some(next) => {
                base.push_key(*key);
                value = next;
            }
            None => break,
        }
    }
    base
}

/// The namespace an object is in: its own, else the configured default.
fn namespace_of<'a>(object: &ObjectView<'a>, default: Option<&'a str>) -> Option<&'a str> {
    object.namespace.filter(|n| !n.is_empty()).or(default)
}

/// Whether an object is `kind` in the core API group.
fn is_core(object: &ObjectView<'_>, kind: &str) -> bool {
    object.kind == kind && object.group().is_empty()
}

#[cfg(test)]
mod tests;

//! Workload checks: resources, hardening, probes, volumes, tokens, sandboxes.

use std::collections::HashSet;

use rampart_core::value::{array_field, bool_field, dig, field, str_field};
use rampart_core::{Check, CheckMeta, CorpusCheck, FieldPath, ObjectView, PodTemplate, Violation};
use serde_json::Value;

use super::namespace::is_named_namespace;
use super::{
    ALL_CONTAINERS, ContainerKind, INIT_AND_REGULAR, PracticeConfig, containers, deepest, is_core,
    meta, namespace_of,
};

// ---------------------------------------------------------------------------
// resources-missing-requests / resources-missing-limits
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq)]
enum Section {
    Requests,
    Limits,
}

/// `resources-missing-requests` or `resources-missing-limits`.
pub(super) struct MissingResources {
    section: Section,
    require_cpu: bool,
}

impl MissingResources {
    pub(super) fn requests() -> Self {
        Self {
            section: Section::Requests,
            require_cpu: true,
        }
    }

    pub(super) fn limits(require_cpu: bool) -> Self {
        Self {
            section: Section::Limits,
            require_cpu,
        }
    }

    /// Whether `resource` is bounded for a container with `resources`, in a pod
    /// with pod-level `pod_resources`.
    fn covered(
        &self,
        resources: Option<&Value>,
        pod_resources: Option<&Value>,
        resource: &str,
    ) -> bool {
        let has = |r: Option<&Value>, section: &str| {
            r.and_then(|r| field(r, section))
                .and_then(|s| field(s, resource))
                .is_some()
        };
        match self.section {
            // A missing request defaults to the limit.
            Section::Requests => [resources, pod_resources]
                .into_iter()
                .any(|r| has(r, "requests") || has(r, "limits")),
            Section::Limits => has(resources, "limits") || has(pod_resources, "limits"),
        }
    }
}

impl Check for MissingResources {
    fn meta(&self) -> &CheckMeta {
        match self.section {
            Section::Requests => &meta::RESOURCES_MISSING_REQUESTS,
            Section::Limits => &meta::RESOURCES_MISSING_LIMITS,
        }
    }

    fn check(&self, object: &ObjectView<'_>, out: &mut Vec<Violation>) {
        let Some(pod) = &object.pod else { return };
        let pod_resources = field(pod.spec, "resources");
        let (key, noun) = match self.section {
            Section::Requests => ("requests", ("request", "requests")),
            Section::Limits => ("limits", ("limit", "limits")),
        };
        for c in containers(pod.spec, INIT_AND_REGULAR) {
            let resources = field(c.value, "resources");
            let cpu = self.require_cpu && !self.covered(resources, pod_resources, "cpu");
            let memory = !self.covered(resources, pod_resources, "memory");
            let missing = match (cpu, memory) {
                (false, false) => continue,
                (true, true) => format!("cpu and memory {}", noun.1),
                (true, false) => format!("cpu {}", noun.0),
                (false, true) => format!("memory {}", noun.0),
            };
            out.push(Violation::new(
                self.meta().id.clone(),
                format!("{c} has no {missing}"),
                deepest(c.path(pod), c.value, &["resources", key]),
            ));
        }
    }
}

// ---------------------------------------------------------------------------
// read-only-root-filesystem
// ---------------------------------------------------------------------------

pub(super) struct ReadOnlyRootFilesystem;

impl Check for ReadOnlyRootFilesystem {
    fn meta(&self) -> &CheckMeta {
        &meta::READ_ONLY_ROOT_FILESYSTEM
    }

    fn check(&self, object: &ObjectView<'_>, out: &mut Vec<Violation>) {
        let Some(pod) = &object.pod else { return };
        if dig(pod.spec, &["os", "name"]).and_then(Value::as_str) == Some("windows") {
            return;
        }
        for c in containers(pod.spec, INIT_AND_REGULAR) {
            let set = dig(c.value, &["securityContext", "readOnlyRootFilesystem"]);
            if set.and_then(Value::as_bool) == Some(true) {
                continue;
            }
            let message = match set {
                Some(_) => format!("{c} sets securityContext.readOnlyRootFilesystem to false"),
                None => format!("{c} does not set securityContext.readOnlyRootFilesystem to true"),
            };
            out.push(Violation::new(
                meta::READ_ONLY_ROOT_FILESYSTEM.id.clone(),
                message,
                deepest(
                    c.path(pod),
                    c.value,
                    &["securityContext", "readOnlyRootFilesystem"],
                ),
            ));
        }
    }
}

// ---------------------------------------------------------------------------
// liveness-probe-missing / readiness-probe-missing
// ---------------------------------------------------------------------------

pub(super) struct MissingProbe {
    meta: &'static CheckMeta,
    key: &'static str,
    what: &'static str,
}

impl MissingProbe {
    pub(super) fn liveness() -> Self {
        Self {
            meta: &meta::LIVENESS_PROBE_MISSING,
            key: "livenessProbe",
            what: "liveness",
        }
    }

    pub(super) fn readiness() -> Self {
        Self {
            meta: &meta::READINESS_PROBE_MISSING,
            key: "readinessProbe",
            what: "readiness",
        }
    }
}

/// Whether the pod is meant to keep running, so that probes matter.
fn long_running(object: &ObjectView<'_>, pod: &PodTemplate<'_>) -> bool {
    let completes = object.pod_kind.is_some_and(|k| k.runs_to_completion());
    let restart = str_field(pod.spec, "restartPolicy").unwrap_or("Always");
    !completes && restart == "Always"
}

impl Check for MissingProbe {
    fn meta(&self) -> &CheckMeta {
        self.meta
    }

    fn check(&self, object: &ObjectView<'_>, out: &mut Vec<Violation>) {
        let Some(pod) = &object.pod else { return };
        if !long_running(object, pod) {
            return;
        }
        for c in containers(pod.spec, INIT_AND_REGULAR) {
            if c.kind == ContainerKind::Init && !c.is_sidecar() {
                continue;
            }
            if field(c.value, self.key).is_some() {
                continue;
            }
            out.push(Violation::new(
                self.meta.id.clone(),
                format!("{c} has no {} probe", self.what),
                c.path(pod),
            ));
        }
    }
}

// ---------------------------------------------------------------------------
// host-path-writable
// ---------------------------------------------------------------------------

pub(super) struct HostPathWritable;

impl Check for HostPathWritable {
    fn meta(&self) -> &CheckMeta {
        &meta::HOST_PATH_WRITABLE
    }

    fn check(&self, object: &ObjectView<'_>, out: &mut Vec<Violation>) {
        let Some(pod) = &object.pod else { return };
        let volumes = array_field(pod.spec, "volumes");
        if !volumes.iter().any(|v| field(v, "hostPath").is_some()) {
            return;
        }
        let host_path_volume = |name: &str| {
            volumes
                .iter()
                .enumerate()
                .find(|(_, v)| str_field(v, "name") == Some(name) && field(v, "hostPath").is_some())
        };
        for c in containers(pod.spec, ALL_CONTAINERS) {
            for (m, mount) in array_field(c.value, "volumeMounts").iter().enumerate() {
                let Some(name) = str_field(mount, "name") else {
                    continue;
                };
                let Some((v, volume)) = host_path_volume(name) else {
                    continue;
                };
                if bool_field(mount, "readOnly") == Some(true) {
                    continue;
                }
                let host = dig(volume, &["hostPath", "path"])
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let at = str_field(mount, "mountPath").unwrap_or("");
                let mount_path = c.path(pod).key("volumeMounts").index(m);
                out.push(
                    Violation::new(
                        meta::HOST_PATH_WRITABLE.id.clone(),
                        format!(
                            "{c} mounts hostPath volume {name:?} (host path {host:?}) writable at {at:?}"
                        ),
                        deepest(mount_path, mount, &["readOnly"]),
                    )
                    .with_related(vec![pod.spec_path.key("volumes").index(v).key("hostPath")]),
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------
// automount-service-account-token
// ---------------------------------------------------------------------------

pub(super) struct AutomountToken {
    default_namespace: Option<String>,
}

impl AutomountToken {
    pub(super) fn new(config: &PracticeConfig) -> Self {
        Self {
            default_namespace: config.default_namespace.clone(),
        }
    }
}

impl CorpusCheck for AutomountToken {
    fn meta(&self) -> &CheckMeta {
        &meta::AUTOMOUNT_SERVICE_ACCOUNT_TOKEN
    }

    fn check_all(&self, objects: &[ObjectView<'_>], out: &mut Vec<(usize, Violation)>) {
        let default_ns = self.default_namespace.as_deref();
        // Service accounts that opt out: (namespace, name).
        let opted_out: HashSet<(Option<&str>, &str)> = objects
            .iter()
            .filter(|o| is_core(o, "ServiceAccount"))
            .filter(|o| bool_field(o.value, "automountServiceAccountToken") == Some(false))
            .map(|o| (namespace_of(o, default_ns), o.name))
            .collect();
        for (i, object) in objects.iter().enumerate() {
            let Some(pod) = &object.pod else { continue };
            let violation = match bool_field(pod.spec, "automountServiceAccountToken") {
                Some(false) => continue,
                Some(true) => Violation::new(
                    meta::AUTOMOUNT_SERVICE_ACCOUNT_TOKEN.id.clone(),
                    "pod sets automountServiceAccountToken to true, so the API token is mounted",
                    pod.spec_path.key("automountServiceAccountToken"),
                ),
                None => {
                    let sa = str_field(pod.spec, "serviceAccountName")
                        .or_else(|| str_field(pod.spec, "serviceAccount"))
                        .filter(|s| !s.is_empty())
                        .unwrap_or("default");
                    if opted_out.contains(&(namespace_of(object, default_ns), sa)) {
                        continue;
                    }
                    Violation::new(
                        meta::AUTOMOUNT_SERVICE_ACCOUNT_TOKEN.id.clone(),
                        format!(
                            "neither the pod nor its service account {sa:?} sets automountServiceAccountToken to false, so the API token is mounted"
                        ),
                        pod.spec_path.clone(),
                    )
                }
            };
            out.push((i, violation));
        }
    }
}

// ---------------------------------------------------------------------------
// untrusted-namespace-without-sandbox
// ---------------------------------------------------------------------------

pub(super) struct UntrustedWithoutSandbox {
    namespaces: Vec<String>,
    label: Option<(String, String)>,
    sandboxes: Vec<String>,
    default_namespace: Option<String>,
}

impl UntrustedWithoutSandbox {
    pub(super) fn new(config: &PracticeConfig) -> Self {
        Self {
            namespaces: config.untrusted_namespaces.clone(),
            label: config
                .untrusted_namespace_label
                .as_ref()
                .filter(|l| !l.key.is_empty())
                .map(|l| (l.key.clone(), l.value.clone())),
            sandboxes: config.sandbox_runtime_classes.clone(),
            default_namespace: config.default_namespace.clone(),
        }
    }

    fn is_sandbox(&self, runtime_class: &str) -> bool {
        self.sandboxes.iter().any(|s| match s.strip_suffix('*') {
            Some(prefix) => runtime_class.starts_with(prefix),
            None => s == runtime_class,
        })
    }
}

impl CorpusCheck for UntrustedWithoutSandbox {
    fn meta(&self) -> &CheckMeta {
        &meta::UNTRUSTED_NAMESPACE_WITHOUT_SANDBOX
    }

    fn check_all(&self, objects: &[ObjectView<'_>], out: &mut Vec<(usize, Violation)>) {
        let mut untrusted: HashSet<&str> = self.namespaces.iter().map(String::as_str).collect();
        if let Some((key, value)) = &self.label {
            untrusted.extend(
                objects
                    .iter()
                    .filter(|o| is_named_namespace(o))
                    .filter(|o| o.label(key) == Some(value.as_str()))
                    .map(|o| o.name),
            );
        }
        if untrusted.is_empty() {
            return;
        }
        let default_ns = self.default_namespace.as_deref();
        for (i, object) in objects.iter().enumerate() {
            let Some(pod) = &object.pod else { continue };
            let Some(ns) = namespace_of(object, default_ns).filter(|n| untrusted.contains(n))
            else {
                continue;
            };
            let runtime_class = str_field(pod.spec, "runtimeClassName").filter(|r| !r.is_empty());
            if runtime_class.is_some_and(|r| self.is_sandbox(r)) {
                continue;
            }
            if let Some(v) = privileged_pod(pod, ns, runtime_class) {
                out.push((i, v));
            }
        }
    }
}

/// The violation for a pod with privileged containers or host namespaces, if it has any.
fn privileged_pod(
    pod: &PodTemplate<'_>,
    ns: &str,
    runtime_class: Option<&str>,
) -> Option<Violation> {
    let host = || {
        ["hostNetwork", "hostPID", "hostIPC"]
            .into_iter()
            .filter(|k| bool_field(pod.spec, k) == Some(true))
    };
    let privileged = || {
        containers(pod.spec, ALL_CONTAINERS).filter(|c| {
            dig(c.value, &["securityContext", "privileged"]).and_then(Value::as_bool) == Some(true)
        })
    };
    if host().next().is_none() && privileged().next().is_none() {
        return None;
    }
    let mut what = Vec::new();
    let mut paths = Vec::new();
    for key in host() {
        what.push(key.to_owned());
        paths.push(pod.spec_path.key(key));
    }
    for c in privileged() {
        what.push(format!("privileged {c}"));
        paths.push(c.path(pod).key("securityContext").key("privileged"));
    }
    let class = match runtime_class {
        Some(r) => {
            paths.push(pod.spec_path.key("runtimeClassName"));
            format!("runtimeClassName {r:?} is not a sandbox")
        }
        None => "no runtimeClassName".to_owned(),
    };
    let mut paths = paths.into_iter();
    let primary = paths.next().unwrap_or_else(FieldPath::root);
    Some(
        Violation::new(
            meta::UNTRUSTED_NAMESPACE_WITHOUT_SANDBOX.id.clone(),
            format!(
                "pod in untrusted namespace {ns:?} uses {} without a sandbox ({class})",
                what.join(", ")
            ),
            primary,
        )
        .with_related(paths.collect()),
    )
}

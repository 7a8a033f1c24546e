//! The remedies: for each failing check with a safe fix, the changes that
//! fix it, and for each case where the fix would not be safe, why not.
//!
//! A remedy never overrides a value someone wrote on purpose
//! (`allowPrivilegeEscalation: true`, `seccompProfile.type: Unconfined`,
//! `runAsNonRoot: false`, `readOnlyRootFilesystem: false`,
//! `automountServiceAccountToken: true`) unless [`FixOptions::force`] is set,
//! and never removes anything.

use std::collections::BTreeSet;

use rampart_core::value::{array_field, bool_field, dig, field, int_field, str_field};
use rampart_core::{FieldPath, ObjectView, PodTemplate};
use serde_json::Value;

use crate::op::Op;
use crate::profile::{ResourceProfile, quantity_of};

/// The remedy ID of `--always-pull`, which fixes no check.
pub const IMAGE_PULL_POLICY: &str = "image-pull-policy";

/// What the fixer may do beyond the default, safe remedies.
#[derive(Clone, Debug, Default)]
pub struct FixOptions {
    /// Also set `readOnlyRootFilesystem: true`, which breaks apps that write
    /// to their root filesystem.
    pub aggressive: bool,
    /// Replace values set on purpose (`Unconfined`, explicit `true`/`false`).
    pub force: bool,
    /// Set `imagePullPolicy: Always` on every container.
    pub always_pull: bool,
    /// Requests and limits for containers without them; without a profile,
    /// missing resources are reported, not fixed.
    pub resources: Option<ResourceProfile>,
    /// Checks asked for by name: naming `read-only-root-filesystem` turns its
    /// remedy on, as [`Self::aggressive`] does.
    pub requested: Vec<String>,
}

impl FixOptions {
    fn opted_in(&self, check: &str) -> bool {
        self.aggressive || self.requested.iter().any(|r| r == check)
    }
}

/// One change to make, and why.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    pub check_id: String,
    pub op: Op,
    /// What the change is for: `pod`, `container "web"`.
    pub subject: String,
    /// What the user should know about it (the image must support non-root).
    pub note: Option<String>,
}

/// A failing check, or part of one, left alone on purpose.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub check_id: String,
    pub subject: String,
    pub reason: String,
}

/// Changes and refusals for one object.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    pub changes: Vec<Change>,
    pub refusals: Vec<Refusal>,
}

/// The container lists, in the order the checks visit them.
const LISTS: &[(&str, &str)] = &[
    ("initContainers", "init container"),
    ("containers", "container"),
    ("ephemeralContainers", "ephemeral container"),
];

struct Container<'a> {
    path: FieldPath,
    subject: String,
    value: &'a Value,
    ephemeral: bool,
}

impl<'a> Container<'a> {
    fn sc(&self) -> Option<&'a Value> {
        field(self.value, "securityContext")
    }

    fn sc_path(&self, leaf: &[&'static str]) -> FieldPath {
        let mut p = self.path.key("securityContext");
        for l in leaf {
            p.push_key(*l);
        }
        p
    }
}

fn containers<'a>(pod: &PodTemplate<'a>) -> Vec<Container<'a>> {
    let mut out = Vec::new();
    for (list, noun) in LISTS {
        for (i, value) in array_field(pod.spec, list).iter().enumerate() {
            out.push(Container {
                path: pod.spec_path.key(*list).index(i),
                subject: format!("{noun} {:?}", str_field(value, "name").unwrap_or("")),
                value,
                ephemeral: *list == "ephemeralContainers",
            });
        }
    }
    out
}

fn is_windows(pod: &PodTemplate<'_>) -> bool {
    dig(pod.spec, &["os", "name"]).and_then(Value::as_str) == Some("windows")
}

fn pod_sc_path(pod: &PodTemplate<'_>, leaf: &[&'static str]) -> FieldPath {
    let mut p = pod.spec_path.key("securityContext");
    for l in leaf {
        p.push_key(*l);
    }
    p
}

struct Planner<'p, 'a> {
    pod: &'p PodTemplate<'a>,
    options: &'p FixOptions,
    plan: Plan,
}

impl Planner<'_, '_> {
    fn change(&mut self, check: &str, subject: &str, op: Op, note: Option<&str>) {
        if self.plan.changes.iter().any(|c| c.op == op) {
            return;
        }
        self.plan.changes.push(Change {
            check_id: check.to_owned(),
            op,
            subject: subject.to_owned(),
            note: note.map(str::to_owned),
        });
    }

    fn refuse(&mut self, check: &str, subject: &str, reason: impl Into<String>) {
        self.plan.refusals.push(Refusal {
            check_id: check.to_owned(),
            subject: subject.to_owned(),
            reason: reason.into(),
        });
    }
}

/// Plans the fixes for one object, given the IDs of its checks that fail
/// (and are not suppressed).
pub fn plan(view: &ObjectView<'_>, failing: &BTreeSet<&str>, options: &FixOptions) -> Plan {
    let Some(pod) = &view.pod else {
        return Plan::default();
    };
    let mut p = Planner {
        pod,
        options,
        plan: Plan::default(),
    };
    for check in failing {
        match *check {
            "pss-allowPrivilegeEscalation" => allow_privilege_escalation(&mut p, check),
            "pss-capabilities_restricted" => capabilities(&mut p, check),
            "pss-seccompProfile_restricted" | "pss-seccompProfile_baseline" => {
                seccomp(&mut p, check, *check == "pss-seccompProfile_restricted");
            }
            "pss-runAsNonRoot" => run_as_non_root(&mut p, check),
            "read-only-root-filesystem" => read_only_root_filesystem(&mut p, check),
            "resources-missing-requests" | "resources-missing-limits" => {
                resources(&mut p, check, failing);
            }
            "automount-service-account-token" => automount(&mut p, check),
            _ => {}
        }
    }
    if options.always_pull {
        for c in containers(pod) {
            if str_field(c.value, "imagePullPolicy") != Some("Always") {
                p.change(
                    IMAGE_PULL_POLICY,
                    &c.subject,
                    Op::set(c.path.key("imagePullPolicy"), "Always"),
                    None,
                );
            }
        }
    }
    p.plan
}

fn adds<'a>(c: &Container<'a>) -> Vec<&'a str> {
    c.sc()
        .and_then(|sc| field(sc, "capabilities"))
        .map(|caps| {
            array_field(caps, "add")
                .iter()
                .map(|v| v.as_str().unwrap_or(""))
                .collect()
        })
        .unwrap_or_default()
}

fn allow_privilege_escalation(p: &mut Planner<'_, '_>, check: &str) {
    let windows = is_windows(p.pod);
    for c in containers(p.pod) {
        let set = c
            .sc()
            .and_then(|sc| bool_field(sc, "allowPrivilegeEscalation"));
        if set == Some(false) {
            continue;
        }
        if windows {
            p.refuse(
                check,
                &c.subject,
                "Windows pods cannot set allowPrivilegeEscalation; use a policy version of v1.25 or later, which exempts them",
            );
        } else if c.sc().and_then(|sc| bool_field(sc, "privileged")) == Some(true) {
            p.refuse(
                check,
                &c.subject,
                "the container is privileged, and the API server rejects allowPrivilegeEscalation: false with privileged: true; remove privileged first",
            );
        } else if adds(&c)
            .iter()
            .any(|a| *a == "SYS_ADMIN" || *a == "CAP_SYS_ADMIN")
        {
            p.refuse(
                check,
                &c.subject,
                "the container adds CAP_SYS_ADMIN, and the API server rejects allowPrivilegeEscalation: false with it; remove the capability first",
            );
        } else if set == Some(true) && !p.options.force {
            p.refuse(
                check,
                &c.subject,
                "allowPrivilegeEscalation: true is set explicitly (setuid tools such as sudo need it); --force sets it to false",
            );
        } else {
            p.change(
                check,
                &c.subject,
                Op::set(c.sc_path(&["allowPrivilegeEscalation"]), false),
                None,
            );
        }
    }
}

fn capabilities(p: &mut Planner<'_, '_>, check: &str) {
    if is_windows(p.pod) {
        p.refuse(
            check,
            "pod",
            "Windows pods cannot set capabilities; use a policy version of v1.25 or later, which exempts them",
        );
        return;
    }
    for c in containers(p.pod) {
        let caps = c.sc().and_then(|sc| field(sc, "capabilities"));
        let drop = caps.and_then(|caps| field(caps, "drop"));
        let dropped_all = drop
            .and_then(Value::as_array)
            .is_some_and(|d| d.iter().any(|v| v.as_str() == Some("ALL")));
        if !dropped_all {
            let op = match drop {
                Some(Value::Array(_)) => Op::append(c.sc_path(&["capabilities", "drop"]), "ALL"),
                _ => Op::set(
                    c.sc_path(&["capabilities", "drop"]),
                    Value::Array(vec!["ALL".into()]),
                ),
            };
            p.change(check, &c.subject, op, None);
        }
        let extra: Vec<&str> = adds(&c)
            .into_iter()
            .filter(|a| *a != "NET_BIND_SERVICE")
            .collect();
        if !extra.is_empty() {
            p.refuse(
                check,
                &c.subject,
                format!(
                    "the container adds {}; capabilities an app asks for are never removed, so drop them by hand if it can do without",
                    extra.join(", ")
                ),
            );
        }
    }
}

fn seccomp_type_ok(t: &str) -> bool {
    t == "RuntimeDefault" || t == "Localhost"
}

fn seccomp(p: &mut Planner<'_, '_>, check: &str, restricted: bool) {
    let pod = p.pod;
    if is_windows(pod) {
        p.refuse(
            check,
            "pod",
            "Windows pods cannot set seccompProfile; use a policy version of v1.25 or later, which exempts them",
        );
        return;
    }
    // Before v1.19 the standard looks at the alpha annotations.
    let annotations = pod
        .metadata
        .and_then(|m| field(m, "annotations"))
        .and_then(Value::as_object);
    for (key, value) in annotations.into_iter().flatten() {
        let is_seccomp = key == "seccomp.security.alpha.kubernetes.io/pod"
            || key.starts_with("container.seccomp.security.alpha.kubernetes.io/");
        let v = value.as_str().unwrap_or("");
        let ok = v == "runtime/default" || v == "docker/default" || v.starts_with("localhost/");
        if is_seccomp && !ok {
            p.refuse(
                check,
                "pod",
                format!(
                    "the annotation {key}: {v:?} is set on purpose; remove it and set securityContext.seccompProfile instead"
                ),
            );
        }
    }
    let explicit = |p: &mut Planner<'_, '_>, subject: &str, profile: &Value, path: FieldPath| {
        let t = str_field(profile, "type").unwrap_or("");
        if seccomp_type_ok(t) {
            return;
        }
        if field(profile, "localhostProfile").is_some() {
            p.refuse(
                check,
                subject,
                format!("seccompProfile has a localhostProfile with type {t:?}; fix it by hand"),
            );
        } else if p.options.force {
            p.change(check, subject, Op::set(path, "RuntimeDefault"), None);
        } else {
            p.refuse(
                check,
                subject,
                format!(
                    "seccompProfile.type is {t:?}, a deliberate choice; --force sets RuntimeDefault"
                ),
            );
        }
    };
    let pod_profile = field(pod.spec, "securityContext").and_then(|sc| field(sc, "seccompProfile"));
    if let Some(profile) = pod_profile {
        explicit(
            p,
            "pod",
            profile,
            pod_sc_path(pod, &["seccompProfile", "type"]),
        );
    }
    for c in containers(pod) {
        if let Some(profile) = c.sc().and_then(|sc| field(sc, "seccompProfile")) {
            let path = c.sc_path(&["seccompProfile", "type"]);
            explicit(p, &c.subject, profile, path);
        }
    }
    if restricted && pod_profile.is_none() {
        p.change(
            check,
            "pod",
            Op::set(
                pod_sc_path(pod, &["seccompProfile", "type"]),
                "RuntimeDefault",
            ),
            None,
        );
    }
}

const NON_ROOT_NOTE: &str = "the image must run as a non-root user (a numeric USER in the image, or runAsUser), or the kubelet will not start it";

fn run_as_non_root(p: &mut Planner<'_, '_>, check: &str) {
    let pod = p.pod;
    let pod_sc = field(pod.spec, "securityContext");
    let mut root = Vec::new();
    if pod_sc.and_then(|sc| int_field(sc, "runAsUser")) == Some(0) {
        root.push("pod".to_owned());
    }
    let list = containers(pod);
    for c in &list {
        if c.sc().and_then(|sc| int_field(sc, "runAsUser")) == Some(0) {
            root.push(c.subject.clone());
        }
    }
    if !root.is_empty() {
        p.refuse(
            check,
            &root.join(", "),
            "runs as UID 0 (runAsUser: 0), which runAsNonRoot: true would stop from starting; choose a non-root UID the image supports",
        );
        return;
    }
    let force = p.options.force;
    match pod_sc.and_then(|sc| bool_field(sc, "runAsNonRoot")) {
        Some(true) => {}
        Some(false) if !force => p.refuse(
            check,
            "pod",
            "runAsNonRoot: false is set explicitly; --force sets it to true",
        ),
        _ => p.change(
            check,
            "pod",
            Op::set(pod_sc_path(pod, &["runAsNonRoot"]), true),
            Some(NON_ROOT_NOTE),
        ),
    }
    for c in &list {
        if c.sc().and_then(|sc| bool_field(sc, "runAsNonRoot")) == Some(false) {
            if force {
                p.change(
                    check,
                    &c.subject,
                    Op::set(c.sc_path(&["runAsNonRoot"]), true),
                    Some(NON_ROOT_NOTE),
                );
            } else {
                p.refuse(
                    check,
                    &c.subject,
                    "runAsNonRoot: false is set explicitly; --force sets it to true",
                );
            }
        }
    }
}

fn read_only_root_filesystem(p: &mut Planner<'_, '_>, check: &str) {
    if is_windows(p.pod) {
        return;
    }
    let enabled = p.options.opted_in(check);
    for c in containers(p.pod) {
        if c.ephemeral {
            continue;
        }
        let set = c.sc().and_then(|sc| field(sc, "readOnlyRootFilesystem"));
        if set.and_then(Value::as_bool) == Some(true) {
            continue;
        }
        if !enabled {
            p.refuse(
                check,
                &c.subject,
                "the app may write to its root filesystem; --aggressive (or --check read-only-root-filesystem) sets readOnlyRootFilesystem: true",
            );
        } else if set.is_some() && !p.options.force {
            p.refuse(
                check,
                &c.subject,
                "readOnlyRootFilesystem: false is set explicitly; --force sets it to true",
            );
        } else {
            p.change(
                check,
                &c.subject,
                Op::set(c.sc_path(&["readOnlyRootFilesystem"]), true),
                Some("mount an emptyDir volume wherever the app writes (such as /tmp)"),
            );
        }
    }
}

fn resources(p: &mut Planner<'_, '_>, check: &str, failing: &BTreeSet<&str>) {
    let Some(profile) = p.options.resources.clone() else {
        p.refuse(
            check,
            "",
            "no default fits every app; --resources-profile small|medium|large|FILE sets requests and limits",
        );
        return;
    };
    // Both sections are handled together, on the first of the two checks.
    let requests = failing.contains("resources-missing-requests");
    let limits = failing.contains("resources-missing-limits");
    if check == "resources-missing-limits" && requests {
        return;
    }
    let pod_resources = field(p.pod.spec, "resources");
    fn has<'v>(r: Option<&'v Value>, section: &str, resource: &str) -> Option<&'v Value> {
        r.and_then(|r| field(r, section))
            .and_then(|s| field(s, resource))
    }
    for c in containers(p.pod) {
        if c.ephemeral {
            continue;
        }
        let own = field(c.value, "resources");
        let path = c.path.key("resources");
        for resource in ["cpu", "memory"] {
            let mut request = has(own, "requests", resource)
                .or_else(|| has(own, "limits", resource))
                .or_else(|| has(pod_resources, "requests", resource))
                .or_else(|| has(pod_resources, "limits", resource))
                .cloned();
            if requests && request.is_none() {
                let value = profile.requests.get(resource).unwrap_or_default();
                p.change(
                    "resources-missing-requests",
                    &c.subject,
                    Op::set(path.key("requests").key(resource), value),
                    None,
                );
                request = Some(Value::String(value.to_owned()));
            }
            let has_limit = has(own, "limits", resource).is_some()
                || has(pod_resources, "limits", resource).is_some();
            if !limits || has_limit {
                continue;
            }
            let mut limit = profile.limits.get(resource).unwrap_or_default().to_owned();
            // A limit below the request is invalid: never go under the request.
            if let Some(request) = &request {
                match (quantity_of(request), crate::profile::quantity(&limit)) {
                    (Some(r), Some(l)) if r > l => {
                        limit = match request {
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        };
                    }
                    (Some(_), Some(_)) => {}
                    _ => {
                        p.refuse(
                            "resources-missing-limits",
                            &c.subject,
                            format!("the {resource} request {request} is not a quantity rampart can compare with a limit"),
                        );
                        continue;
                    }
                }
            }
            p.change(
                "resources-missing-limits",
                &c.subject,
                Op::set(path.key("limits").key(resource), limit),
                None,
            );
        }
    }
}

fn automount(p: &mut Planner<'_, '_>, check: &str) {
    let spec = p.pod.spec;
    let path = p.pod.spec_path.key("automountServiceAccountToken");
    match bool_field(spec, "automountServiceAccountToken") {
        Some(false) => {}
        Some(true) if !p.options.force => p.refuse(
            check,
            "pod",
            "automountServiceAccountToken: true is set explicitly; --force sets it to false",
        ),
        Some(true) => p.change(check, "pod", Op::set(path, false), None),
        None => {
            let account = str_field(spec, "serviceAccountName")
                .or_else(|| str_field(spec, "serviceAccount"))
                .filter(|s| !s.is_empty())
                .unwrap_or("default");
            if account == "default" {
                p.change(
                    check,
                    "pod",
                    Op::set(path, false),
                    Some("if the app calls the Kubernetes API, give it its own ServiceAccount instead"),
                );
            } else {
                p.refuse(
                    check,
                    "pod",
                    format!(
                        "the pod runs as service account {account:?}, which may need its API token; set automountServiceAccountToken: false on the pod or on the ServiceAccount if it does not"
                    ),
                );
            }
        }
    }
}

/// Why a failing check without a remedy is left as it is.
pub fn no_remedy_reason(check_id: &str) -> &'static str {
    match check_id {
        "pss-privileged" => {
            "privileged is granted on purpose and never taken away automatically; remove it if the container can do without"
        }
        "pss-hostNamespaces" => {
            "sharing the host's namespaces is part of how the app works; remove hostNetwork, hostPID and hostIPC by hand if it can do without"
        }
        "pss-hostPathVolumes" | "pss-restrictedVolumes" => {
            "replacing a volume changes where the data lives; move it to a PersistentVolumeClaim, emptyDir, configMap or secret by hand"
        }
        "pss-hostPorts" => {
            "removing a hostPort changes how the app is reached; expose it through a Service instead"
        }
        "pss-capabilities_baseline" => {
            "capabilities an app asks for are never removed; drop those it does not need by hand"
        }
        "pss-runAsUser" => "the container runs as UID 0; choose a non-root UID the image supports",
        "pss-appArmorProfile"
        | "pss-seLinuxOptions"
        | "pss-procMount"
        | "pss-sysctls"
        | "pss-windowsHostProcess"
        | "pss-hostProbesAndHostLifecycle" => {
            "the setting is deliberate and has no safe default; change it by hand"
        }
        "image-tag-latest" => "which version to pin is a release decision; pin a tag or a digest",
        "image-registry-not-allowed" => "the image has to be mirrored to an allowed registry first",
        "liveness-probe-missing" | "readiness-probe-missing" => {
            "a probe needs to know the app's health endpoint"
        }
        "host-path-writable" => {
            "the app may need to write there; add readOnly: true to the mount if it does not"
        }
        "untrusted-namespace-without-sandbox" => {
            "a sandbox runtime class must exist in the cluster before pods can use it"
        }
        id if id.starts_with("rbac-") => "narrowing a role needs to know what its subjects use",
        id if id.starts_with("namespace-missing-") => {
            "the fix is a new object (ResourceQuota, LimitRange or NetworkPolicy) sized for the namespace"
        }
        _ => "there is no safe automatic fix",
    }
}

#[cfg(test)]
mod tests;

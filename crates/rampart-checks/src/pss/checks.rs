//! The Pod Security Standards checks, one function per upstream `CheckPodFn`.
//!
//! Each function mirrors `k8s.io/pod-security-admission/policy/check_*.go`:
//! the same conditions, the same order of what is reported, the same reason and
//! detail wording. On top of upstream, each result carries the field paths that
//! caused it so the scanner can point at lines.

use std::borrow::Cow;
use std::collections::BTreeSet;

use rampart_core::value::{array_field, bool_field, dig, field, int_field, str_field};
use rampart_core::{FieldPath, PodTemplate};
use serde_json::Value;

use rampart_core::quote::go_quote;

/// A failed check: upstream's `ForbiddenReason` and `ForbiddenDetail`, plus where.
#[derive(Clone, Debug, PartialEq)]
pub struct Forbidden {
    pub reason: Cow<'static, str>,
    pub detail: String,
    /// Offending fields (or where a required field is missing); never empty.
    pub paths: Vec<FieldPath>,
}

pub type CheckFn = fn(&PodTemplate<'_>) -> Option<Forbidden>;

/// A container of any of the three lists, visited in upstream order:
/// init containers, containers, ephemeral containers.
#[derive(Clone, Copy)]
struct Container<'a> {
    list: &'static str,
    index: usize,
    name: &'a str,
    value: &'a Value,
}

impl<'a> Container<'a> {
    fn path(&self, pod: &PodTemplate<'_>) -> FieldPath {
        pod.spec_path.key(self.list).index(self.index)
    }

    fn security_context_path(&self, pod: &PodTemplate<'_>, leaf: &[&'static str]) -> FieldPath {
        let mut p = self.path(pod).key("securityContext");
        for l in leaf {
            p.push_key(*l);
        }
        p
    }

    fn security_context(&self) -> Option<&'a Value> {
        field(self.value, "securityContext")
    }
}

fn containers<'a>(spec: &'a Value) -> impl Iterator<Item = Container<'a>> {
    ["initContainers", "containers", "ephemeralContainers"]
        .into_iter()
        .flat_map(move |list| {
            array_field(spec, list)
                .iter()
                .enumerate()
                .map(move |(index, value)| Container {
                    list,
                    index,
                    name: str_field(value, "name").unwrap_or(""),
                    value,
                })
        })
}

fn pod_security_context<'a>(pod: &PodTemplate<'a>) -> Option<&'a Value> {
    field(pod.spec, "securityContext")
}

fn pod_sc_path(pod: &PodTemplate<'_>, leaf: &[&'static str]) -> FieldPath {
    let mut p = pod.spec_path.key("securityContext");
    for l in leaf {
        p.push_key(*l);
    }
    p
}

fn is_windows(pod: &PodTemplate<'_>) -> bool {
    dig(pod.spec, &["os", "name"]).and_then(Value::as_str) == Some("windows")
}

/// `hostUsers: false` puts the pod in a user namespace, which relaxes some checks from 1.35.
fn in_user_namespace(pod: &PodTemplate<'_>) -> bool {
    bool_field(pod.spec, "hostUsers") == Some(false)
}

fn pluralize(singular: &'static str, plural: &'static str, count: usize) -> &'static str {
    if count == 1 { singular } else { plural }
}

fn join_quote<S: AsRef<str>>(items: impl IntoIterator<Item = S>) -> String {
    let mut out = String::new();
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push('"');
        out.push_str(item.as_ref());
        out.push('"');
    }
    out
}

/// `"container "a"`, `containers "a", "b"`.
fn containers_phrase(names: &[&str]) -> String {
    format!(
        "{} {}",
        pluralize("container", "containers", names.len()),
        join_quote(names)
    )
}

fn annotations<'a>(pod: &PodTemplate<'a>) -> impl Iterator<Item = (&'a str, &'a str)> {
    pod.metadata
        .and_then(|m| m.get("annotations"))
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.as_str(), v.as_str().unwrap_or("")))
}

fn annotation_path(pod: &PodTemplate<'_>, key: &str) -> FieldPath {
    pod.metadata_path.key("annotations").key(key.to_owned())
}

// ---------------------------------------------------------------------------
// Baseline
// ---------------------------------------------------------------------------

pub fn privileged_1_0(pod: &PodTemplate<'_>) -> Option<Forbidden> {
    let mut bad = Vec::new();
    let mut paths = Vec::new();
    for c in containers(pod.spec) {
        if c.security_context()
            .and_then(|sc| bool_field(sc, "privileged"))
            == Some(true)
        {
            bad.push(c.name);
            paths.push(c.security_context_path(pod, &["privileged"]));
        }
    }
    (!bad.is_empty()).then(|| Forbidden {
        reason: "privileged".into(),
        detail: format!(
            "{} must not set securityContext.privileged=true",
            containers_phrase(&bad)
        ),
        paths,
    })
}

pub fn host_namespaces_1_0(pod: &PodTemplate<'_>) -> Option<Forbidden> {
    let mut found = Vec::new();
    let mut paths = Vec::new();
    for (key, text) in [
        ("hostNetwork", "hostNetwork=true"),
        ("hostPID", "hostPID=true"),
        ("hostIPC", "hostIPC=true"),
    ] {
        if bool_field(pod.spec, key) == Some(true) {
            found.push(text);
            paths.push(pod.spec_path.key(key));
        }
    }
    (!found.is_empty()).then(|| Forbidden {
        reason: "host namespaces".into(),
        detail: found.join(", "),
        paths,
    })
}

pub fn host_path_volumes_1_0(pod: &PodTemplate<'_>) -> Option<Forbidden> {
    let mut bad = Vec::new();
    let mut paths = Vec::new();
    for (i, volume) in array_field(pod.spec, "volumes").iter().enumerate() {
        if field(volume, "hostPath").is_some() {
            bad.push(str_field(volume, "name").unwrap_or(""));
            paths.push(pod.spec_path.key("volumes").index(i).key("hostPath"));
        }
    }
    (!bad.is_empty()).then(|| Forbidden {
        reason: "hostPath volumes".into(),
        detail: format!(
            "{} {}",
            pluralize("volume", "volumes", bad.len()),
            join_quote(&bad)
        ),
        paths,
    })
}

pub fn host_ports_1_0(pod: &PodTemplate<'_>) -> Option<Forbidden> {
    let mut bad = Vec::new();
    let mut ports = BTreeSet::new();
    let mut paths = Vec::new();
    for c in containers(pod.spec) {
        let mut valid = true;
        for (j, port) in array_field(c.value, "ports").iter().enumerate() {
            let host_port = int_field(port, "hostPort").unwrap_or(0);
            if host_port != 0 {
                valid = false;
                ports.insert(host_port.to_string());
                paths.push(c.path(pod).key("ports").index(j).key("hostPort"));
            }
        }
        if !valid {
            bad.push(c.name);
        }
    }
    (!bad.is_empty()).then(|| Forbidden {
        reason: "hostPort".into(),
        detail: format!(
            "{} {} {} {}",
            containers_phrase(&bad),
            pluralize("uses", "use", bad.len()),
            pluralize("hostPort", "hostPorts", ports.len()),
            ports.into_iter().collect::<Vec<_>>().join(", ")
        ),
        paths,
    })
}

pub fn host_probes_and_host_lifecycle_1_34(pod: &PodTemplate<'_>) -> Option<Forbidden> {
    // Upstream collects both into sets, so names and hosts come out sorted and unique.
    let mut bad = BTreeSet::new();
    let mut hosts = BTreeSet::new();
    let mut paths = Vec::new();
    for c in containers(pod.spec) {
        let handlers: [(&[&'static str], &[&'static str]); 5] = [
            (&["livenessProbe"], &["httpGet", "tcpSocket"]),
            (&["readinessProbe"], &["httpGet", "tcpSocket"]),
            (&["startupProbe"], &["httpGet", "tcpSocket"]),
            (&["lifecycle", "postStart"], &["httpGet", "tcpSocket"]),
            (&["lifecycle", "preStop"], &["httpGet", "tcpSocket"]),
        ];
        for (handler_path, actions) in handlers {
            let Some(handler) = dig(c.value, handler_path) else {
                continue;
            };
            for action in actions {
                let Some(host) = field(handler, action).and_then(|a| str_field(a, "host")) else {
                    continue;
                };
                if host.is_empty() {
                    continue;
                }
                bad.insert(c.name);
                hosts.insert(host);
                let mut p = c.path(pod);
                for k in handler_path {
                    p.push_key(*k);
                }
                paths.push(p.key(*action).key("host"));
            }
        }
    }
    (!bad.is_empty()).then(|| Forbidden {
        reason: "probe or lifecycle host".into(),
        detail: format!(
            "{} {} {} {} {}",
            pluralize("container", "containers", bad.len()),
            join_quote(&bad),
            pluralize("uses", "use", bad.len()),
            pluralize(
                "probe or lifecycle host",
                "probe or lifecycle hosts",
                hosts.len()
            ),
            join_quote(&hosts)
        ),
        paths,
    })
}

fn apparmor_type_allowed(t: &str) -> bool {
    matches!(t, "RuntimeDefault" | "Localhost")
}

fn apparmor_annotation_allowed(v: &str) -> bool {
    v.is_empty() || v == "runtime/default" || v.starts_with("localhost/")
}

pub fn app_armor_profile_1_0(pod: &PodTemplate<'_>) -> Option<Forbidden> {
    let mut setters = Vec::new();
    let mut values = BTreeSet::new();
    let mut paths = Vec::new();
    if let Some(profile) = pod_security_context(pod).and_then(|sc| field(sc, "appArmorProfile")) {
        let t = str_field(profile, "type").unwrap_or("");
        if !apparmor_type_allowed(t) {
            setters.push("pod".to_owned());
            values.insert(t.to_owned());
            paths.push(pod_sc_path(pod, &["appArmorProfile", "type"]));
        }
    }
    let mut bad = Vec::new();
    for c in containers(pod.spec) {
        if let Some(profile) = c
            .security_context()
            .and_then(|sc| field(sc, "appArmorProfile"))
        {
            let t = str_field(profile, "type").unwrap_or("");
            if !apparmor_type_allowed(t) {
                bad.push(c.name);
                values.insert(t.to_owned());
                paths.push(c.security_context_path(pod, &["appArmorProfile", "type"]));
            }
        }
    }
    if !bad.is_empty() {
        setters.push(containers_phrase(&bad));
    }
    let mut forbidden_annotations = Vec::new();
    for (k, v) in annotations(pod) {
        if k.starts_with("container.apparmor.security.beta.kubernetes.io/")
            && !apparmor_annotation_allowed(v)
        {
            forbidden_annotations.push((format!("{k}={}", go_quote(v)), k));
        }
    }
    let mut value_list: Vec<String> = values.into_iter().collect();
    if !forbidden_annotations.is_empty() {
        forbidden_annotations.sort();
        setters
            .push(pluralize("annotation", "annotations", forbidden_annotations.len()).to_owned());
        for (text, key) in forbidden_annotations {
            value_list.push(text);
            paths.push(annotation_path(pod, key));
        }
    }
    (!setters.is_empty()).then(|| Forbidden {
        reason: pluralize(
            "forbidden AppArmor profile",
            "forbidden AppArmor profiles",
            value_list.len(),
        )
        .into(),
        detail: format!(
            "{} must not set AppArmor profile type to {}",
            setters.join(" and "),
            join_quote(&value_list)
        ),
        paths,
    })
}

const CAPABILITIES_ALLOWED_1_0: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

pub fn capabilities_baseline_1_0(pod: &PodTemplate<'_>) -> Option<Forbidden> {
    let mut bad = Vec::new();
    let mut caps = BTreeSet::new();
    let mut paths = Vec::new();
    for c in containers(pod.spec) {
        let Some(capabilities) = c
            .security_context()
            .and_then(|sc| field(sc, "capabilities"))
        else {
            continue;
        };
        let mut valid = true;
        for (j, cap) in array_field(capabilities, "add").iter().enumerate() {
            let cap = cap.as_str().unwrap_or("");
            if !CAPABILITIES_ALLOWED_1_0.contains(&cap) {
                valid = false;
                caps.insert(cap);
                paths.push(
                    c.security_context_path(pod, &["capabilities", "add"])
                        .index(j),
                );
            }
        }
        if !valid {
            bad.push(c.name);
        }
    }
    (!bad.is_empty()).then(|| Forbidden {
        reason: "non-default capabilities".into(),
        detail: format!(
            "{} must not include {} in securityContext.capabilities.add",
            containers_phrase(&bad),
            join_quote(&caps)
        ),
        paths,
    })
}

fn selinux_options(pod: &PodTemplate<'_>, allowed_types: &[&str]) -> Option<Forbidden> {
    let mut bad_types = BTreeSet::new();
    let mut set_user = false;
    let mut set_role = false;
    let mut check = |opts: &Value| {
        let mut valid = true;
        let t = str_field(opts, "type").unwrap_or("");
        if !allowed_types.contains(&t) {
            valid = false;
            bad_types.insert(t.to_owned());
        }
        if !str_field(opts, "user").unwrap_or("").is_empty() {
            valid = false;
            set_user = true;
        }
        if !str_field(opts, "role").unwrap_or("").is_empty() {
            valid = false;
            set_role = true;
        }
        valid
    };
    let mut setters = Vec::new();
    let mut paths = Vec::new();
    if let Some(opts) = pod_security_context(pod).and_then(|sc| field(sc, "seLinuxOptions"))
        && !check(opts)
    {
        setters.push("pod".to_owned());
        paths.push(pod_sc_path(pod, &["seLinuxOptions"]));
    }
    let mut bad = Vec::new();
    for c in containers(pod.spec) {
        if let Some(opts) = c
            .security_context()
            .and_then(|sc| field(sc, "seLinuxOptions"))
            && !check(opts)
        {
            bad.push(c.name);
            paths.push(c.security_context_path(pod, &["seLinuxOptions"]));
        }
    }
    if !bad.is_empty() {
        setters.push(containers_phrase(&bad));
    }
    if setters.is_empty() {
        return None;
    }
    let mut data = Vec::new();
    if !bad_types.is_empty() {
        data.push(format!(
            "{} {}",
            pluralize("type", "types", bad_types.len()),
            join_quote(&bad_types)
        ));
    }
    if set_user {
        data.push("user may not be set".to_owned());
    }
    if set_role {
        data.push("role may not be set".to_owned());
    }
    Some(Forbidden {
        reason: "seLinuxOptions".into(),
        detail: format!(
            "{} set forbidden securityContext.seLinuxOptions: {}",
            setters.join(" and "),
            data.join("; ")
        ),
        paths,
    })
}

pub fn se_linux_options_1_0(pod: &PodTemplate<'_>) -> Option<Forbidden> {
    selinux_options(
        pod,
        &["", "container_t", "container_init_t", "container_kvm_t"],
    )
}

pub fn se_linux_options_1_31(pod: &PodTemplate<'_>) -> Option<Forbidden> {
    selinux_options(
        pod,
        &[
            "",
            "container_t",
            "container_init_t",
            "container_kvm_t",
            "container_engine_t",
        ],
    )
}

/// Unmasked /proc is forbidden whatever the pod's user namespace.
pub fn proc_mount_1_0(pod: &PodTemplate<'_>) -> Option<Forbidden> {
    let mut bad = Vec::new();
    let mut types = BTreeSet::new();
    let mut paths = Vec::new();
    for c in containers(pod.spec) {
        let Some(proc_mount) = c.security_context().and_then(|sc| field(sc, "procMount")) else {
            continue;
        };
        let proc_mount = proc_mount.as_str().unwrap_or("");
        if proc_mount != "Default" {
            bad.push(c.name);
            types.insert(proc_mount);
            paths.push(c.security_context_path(pod, &["procMount"]));
        }
    }
    (!bad.is_empty()).then(|| Forbidden {
        reason: "procMount".into(),
        detail: format!(
            "{} must not set securityContext.procMount to {}",
            containers_phrase(&bad),
            join_quote(&types)
        ),
        paths,
    })
}

pub fn proc_mount_1_35_baseline(pod: &PodTemplate<'_>) -> Option<Forbidden> {
    if in_user_namespace(pod) {
        return None;
    }
    proc_mount_1_0(pod)
}

fn seccomp_type_valid(t: &str) -> bool {
    matches!(t, "Localhost" | "RuntimeDefault")
}

fn seccomp_annotation_valid(v: &str) -> bool {
    v == "runtime/default" || v == "docker/default" || v.starts_with("localhost/")
}

const SECCOMP_POD_ANNOTATION: &str = "seccomp.security.alpha.kubernetes.io/pod";
const SECCOMP_CONTAINER_ANNOTATION_PREFIX: &str = "container.seccomp.security.alpha.kubernetes.io/";

/// Before 1.19 seccomp was configured through alpha annotations.
pub fn seccomp_profile_baseline_1_0(pod: &PodTemplate<'_>) -> Option<Forbidden> {
    let mut forbidden = BTreeSet::new();
    let mut paths = Vec::new();
    let annotation = |key: &str| {
        pod.metadata
            .and_then(|m| field(m, "annotations"))
            .and_then(|a| a.get(key))
            .map(|v| v.as_str().unwrap_or(""))
    };
    if let Some(v) = annotation(SECCOMP_POD_ANNOTATION)
        && !seccomp_annotation_valid(v)
    {
        forbidden.insert(format!("{SECCOMP_POD_ANNOTATION}={}", go_quote(v)));
        paths.push(annotation_path(pod, SECCOMP_POD_ANNOTATION));
    }
    for c in containers(pod.spec) {
        let key = format!("{SECCOMP_CONTAINER_ANNOTATION_PREFIX}{}", c.name);
        if let Some(v) = annotation(&key)
            && !seccomp_annotation_valid(v)
        {
            forbidden.insert(format!("{key}={}", go_quote(v)));
            paths.push(annotation_path(pod, &key));
        }
    }
    (!forbidden.is_empty()).then(|| Forbidden {
        reason: "seccompProfile".into(),
        detail: format!(
            "forbidden {} {}",
            pluralize("annotation", "annotations", forbidden.len()),
            forbidden.into_iter().collect::<Vec<_>>().join(", ")
        ),
        paths,
    })
}

/// What `seccompProfile` fields say, shared by the baseline (1.19+) and restricted checks.
struct SeccompScan<'a> {
    setters: Vec<String>,
    values: BTreeSet<&'a str>,
    paths: Vec<FieldPath>,
    pod_valid: bool,
    /// Containers with no profile of their own (restricted needs a pod-level one then).
    unset: Vec<Container<'a>>,
}

fn scan_seccomp<'a>(pod: &PodTemplate<'a>) -> SeccompScan<'a> {
    let mut scan = SeccompScan {
        setters: Vec::new(),
        values: BTreeSet::new(),
        paths: Vec::new(),
        pod_valid: false,
        unset: Vec::new(),
    };
    if let Some(profile) = pod_security_context(pod).and_then(|sc| field(sc, "seccompProfile")) {
        let t = str_field(profile, "type").unwrap_or("");
        if seccomp_type_valid(t) {
            scan.pod_valid = true;
        } else {
            scan.setters.push("pod".to_owned());
            scan.values.insert(t);
            scan.paths
                .push(pod_sc_path(pod, &["seccompProfile", "type"]));
        }
    }
    let mut bad = Vec::new();
    for c in containers(pod.spec) {
        match c
            .security_context()
            .and_then(|sc| field(sc, "seccompProfile"))
        {
            Some(profile) => {
                let t = str_field(profile, "type").unwrap_or("");
                if !seccomp_type_valid(t) {
                    bad.push(c.name);
                    scan.values.insert(t);
                    scan.paths
                        .push(c.security_context_path(pod, &["seccompProfile", "type"]));
                }
            }
            None => scan.unset.push(c),
        }
    }
    if !bad.is_empty() {
        scan.setters.push(containers_phrase(&bad));
    }
    scan
}

fn seccomp_explicitly_bad(scan: SeccompScan<'_>) -> Forbidden {
    Forbidden {
        reason: "seccompProfile".into(),
        detail: format!(
            "{} must not set securityContext.seccompProfile.type to {}",
            scan.setters.join(" and "),
            join_quote(&scan.values)
        ),
        paths: scan.paths,
    }
}

pub fn seccomp_profile_baseline_1_19(pod: &PodTemplate<'_>) -> Option<Forbidden> {
    let scan = scan_seccomp(pod);
    (!scan.setters.is_empty()).then(|| seccomp_explicitly_bad(scan))
}

const SYSCTLS_1_0: &[&str] = &[
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_unprivileged_port_start",
];
const SYSCTLS_ADDED_1_27: &[&str] = &["net.ipv4.ip_local_reserved_ports"];
const SYSCTLS_ADDED_1_29: &[&str] = &[
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
];
const SYSCTLS_ADDED_1_32: &[&str] = &["net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem"];
const SYSCTLS_ADDED_1_37: &[&str] = &[
    "net.ipv4.tcp_slow_start_after_idle",
    "net.ipv4.tcp_notsent_lowat",
];

/// The safe sysctls of a policy version: each version adds to the previous one.
fn sysctls(pod: &PodTemplate<'_>, allowed: &[&[&str]]) -> Option<Forbidden> {
    let mut bad = Vec::new();
    let mut paths = Vec::new();
    let list = pod_security_context(pod)
        .map(|sc| array_field(sc, "sysctls"))
        .unwrap_or(&[]);
    for (i, sysctl) in list.iter().enumerate() {
        let name = str_field(sysctl, "name").unwrap_or("");
        if !allowed.iter().any(|set| set.contains(&name)) {
            bad.push(name);
            paths.push(pod_sc_path(pod, &["sysctls"]).index(i).key("name"));
        }
    }
    (!bad.is_empty()).then(|| Forbidden {
        reason: "forbidden sysctls".into(),
        detail: bad.join(", "),
        paths,
    })
}

pub fn sysctls_1_0(pod: &PodTemplate<'_>) -> Option<Forbidden> {
    sysctls(pod, &[SYSCTLS_1_0])
}

pub fn sysctls_1_27(pod: &PodTemplate<'_>) -> Option<Forbidden> {
    sysctls(pod, &[SYSCTLS_1_0, SYSCTLS_ADDED_1_27])
}

pub fn sysctls_1_29(pod: &PodTemplate<'_>) -> Option<Forbidden> {
    sysctls(pod, &[SYSCTLS_1_0, SYSCTLS_ADDED_1_27, SYSCTLS_ADDED_1_29])
}

pub fn sysctls_1_32(pod: &PodTemplate<'_>) -> Option<Forbidden> {
    sysctls(
        pod,
        &[
            SYSCTLS_1_0,
            SYSCTLS_ADDED_1_27,
            SYSCTLS_ADDED_1_29,
            SYSCTLS_ADDED_1_32,
        ],
    )
}

pub fn sysctls_1_37(pod: &PodTemplate<'_>) -> Option<Forbidden> {
    sysctls(
        pod,
        &[
            SYSCTLS_1_0,
            SYSCTLS_ADDED_1_27,
            SYSCTLS_ADDED_1_29,
            SYSCTLS_ADDED_1_32,
            SYSCTLS_ADDED_1_37,
        ],
    )
}

pub fn windows_host_process_1_0(pod: &PodTemplate<'_>) -> Option<Forbidden> {
    let host_process = |sc: Option<&Value>| {
        sc.and_then(|sc| dig(sc, &["windowsOptions", "hostProcess"]))
            .and_then(Value::as_bool)
            == Some(true)
    };
    let mut bad = Vec::new();
    let mut paths = Vec::new();
    let mut container_paths = Vec::new();
    for c in containers(pod.spec) {
        if host_process(c.security_context()) {
            bad.push(c.name);
            container_paths.push(c.security_context_path(pod, &["windowsOptions", "hostProcess"]));
        }
    }
    let mut setters = Vec::new();
    if host_process(pod_security_context(pod)) {
        setters.push("pod".to_owned());
        paths.push(pod_sc_path(pod, &["windowsOptions", "hostProcess"]));
    }
    paths.extend(container_paths);
    if !bad.is_empty() {
        setters.push(containers_phrase(&bad));
    }
    (!setters.is_empty()).then(|| Forbidden {
        reason: "hostProcess".into(),
        detail: format!(
            "{} must not set securityContext.windowsOptions.hostProcess=true",
            setters.join(" and ")
        ),
        paths,
    })
}

// ---------------------------------------------------------------------------
// Restricted
// ---------------------------------------------------------------------------

pub fn allow_privilege_escalation_1_8(pod: &PodTemplate<'_>) -> Option<Forbidden> {
    let mut bad = Vec::new();
    let mut paths = Vec::new();
    for c in containers(pod.spec) {
        if c.security_context()
            .and_then(|sc| bool_field(sc, "allowPrivilegeEscalation"))
            != Some(false)
        {
            bad.push(c.name);
            paths.push(c.security_context_path(pod, &["allowPrivilegeEscalation"]));
        }
    }
    (!bad.is_empty()).then(|| Forbidden {
        reason: "allowPrivilegeEscalation != false".into(),
        detail: format!(
            "{} must set securityContext.allowPrivilegeEscalation=false",
            containers_phrase(&bad)
        ),
        paths,
    })
}

/// From 1.25 Windows pods are exempt: the field cannot be set on them.
pub fn allow_privilege_escalation_1_25(pod: &PodTemplate<'_>) -> Option<Forbidden> {
    if is_windows(pod) {
        return None;
    }
    allow_privilege_escalation_1_8(pod)
}

pub fn capabilities_restricted_1_22(pod: &PodTemplate<'_>) -> Option<Forbidden> {
    let mut missing_drop_all = Vec::new();
    let mut adding_forbidden = Vec::new();
    let mut forbidden_caps = BTreeSet::new();
    let mut paths = Vec::new();
    for c in containers(pod.spec) {
        let Some(capabilities) = c
            .security_context()
            .and_then(|sc| field(sc, "capabilities"))
        else {
            missing_drop_all.push(c.name);
            paths.push(c.security_context_path(pod, &["capabilities", "drop"]));
            continue;
        };
        let dropped_all = array_field(capabilities, "drop")
            .iter()
            .any(|cap| cap.as_str() == Some("ALL"));
        if !dropped_all {
            missing_drop_all.push(c.name);
            paths.push(c.security_context_path(pod, &["capabilities", "drop"]));
        }
        let mut added_forbidden = false;
        for (j, cap) in array_field(capabilities, "add").iter().enumerate() {
            let cap = cap.as_str().unwrap_or("");
            if cap != "NET_BIND_SERVICE" {
                added_forbidden = true;
                forbidden_caps.insert(cap);
                paths.push(
                    c.security_context_path(pod, &["capabilities", "add"])
                        .index(j),
                );
            }
        }
        if added_forbidden {
            adding_forbidden.push(c.name);
        }
    }
    let mut details = Vec::new();
    if !missing_drop_all.is_empty() {
        details.push(format!(
            r#"{} must set securityContext.capabilities.drop=["ALL"]"#,
            containers_phrase(&missing_drop_all)
        ));
    }
    if !adding_forbidden.is_empty() {
        details.push(format!(
            "{} must not include {} in securityContext.capabilities.add",
            containers_phrase(&adding_forbidden),
            join_quote(&forbidden_caps)
        ));
    }
    (!details.is_empty()).then(|| Forbidden {
        reason: "unrestricted capabilities".into(),
        detail: details.join("; "),
        paths,
    })
}

pub fn capabilities_restricted_1_25(pod: &PodTemplate<'_>) -> Option<Forbidden> {
    if is_windows(pod) {
        return None;
    }
    capabilities_restricted_1_22(pod)
}

/// Inline volume sources the restricted level allows.
const ALLOWED_VOLUME_SOURCES: &[&str] = &[
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "image",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

/// Restricted volume sources in upstream's order of precedence, with the name it reports.
const RESTRICTED_VOLUME_SOURCES: &[&str] = &[
    "hostPath",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "nfs",
    "iscsi",
    "glusterfs",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "fc",
    "azureFile",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "portworxVolume",
    "scaleIO",
    "storageos",
];

pub fn restricted_volumes_1_0(pod: &PodTemplate<'_>) -> Option<Forbidden> {
    let mut bad = Vec::new();
    let mut types = BTreeSet::new();
    let mut paths = Vec::new();
    for (i, volume) in array_field(pod.spec, "volumes").iter().enumerate() {
        if ALLOWED_VOLUME_SOURCES
            .iter()
            .any(|s| field(volume, s).is_some())
        {
            continue;
        }
        let restricted = RESTRICTED_VOLUME_SOURCES
            .iter()
            .find(|s| field(volume, s).is_some());
        let volume_path = pod.spec_path.key("volumes").index(i);
        match restricted {
            Some(source) => {
                types.insert(*source);
                paths.push(volume_path.key(*source));
            }
            None => {
                // The API server defaults a volume without any source to emptyDir,
                // and PodSecurity admission sees the defaulted pod.
                let has_other_source = volume
                    .as_object()
                    .is_some_and(|o| o.iter().any(|(k, v)| k != "name" && !v.is_null()));
                if !has_other_source {
                    continue;
                }
                types.insert("unknown");
                paths.push(volume_path);
            }
        }
        bad.push(str_field(volume, "name").unwrap_or(""));
    }
    (!bad.is_empty()).then(|| Forbidden {
        reason: "restricted volume types".into(),
        detail: format!(
            "{} {} {} {} {}",
            pluralize("volume", "volumes", bad.len()),
            join_quote(&bad),
            pluralize("uses", "use", bad.len()),
            pluralize(
                "restricted volume type",
                "restricted volume types",
                types.len()
            ),
            join_quote(&types)
        ),
        paths,
    })
}

pub fn run_as_non_root_1_0(pod: &PodTemplate<'_>) -> Option<Forbidden> {
    let mut setters = Vec::new();
    let mut paths = Vec::new();
    let mut pod_non_root = false;
    match pod_security_context(pod).and_then(|sc| bool_field(sc, "runAsNonRoot")) {
        Some(false) => {
            setters.push("pod".to_owned());
            paths.push(pod_sc_path(pod, &["runAsNonRoot"]));
        }
        Some(true) => pod_non_root = true,
        None => {}
    }
    let mut explicitly_bad = Vec::new();
    let mut implicitly_bad = Vec::new();
    let mut implicit_paths = Vec::new();
    for c in containers(pod.spec) {
        match c
            .security_context()
            .and_then(|sc| bool_field(sc, "runAsNonRoot"))
        {
            Some(false) => {
                explicitly_bad.push(c.name);
                paths.push(c.security_context_path(pod, &["runAsNonRoot"]));
            }
            Some(true) => {}
            None if !pod_non_root => {
                implicitly_bad.push(c.name);
                implicit_paths.push(c.security_context_path(pod, &["runAsNonRoot"]));
            }
            None => {}
        }
    }
    if !explicitly_bad.is_empty() {
        setters.push(containers_phrase(&explicitly_bad));
    }
    if !setters.is_empty() {
        return Some(Forbidden {
            reason: "runAsNonRoot != true".into(),
            detail: format!(
                "{} must not set securityContext.runAsNonRoot=false",
                setters.join(" and ")
            ),
            paths,
        });
    }
    (!implicitly_bad.is_empty()).then(|| Forbidden {
        reason: "runAsNonRoot != true".into(),
        detail: format!(
            "pod or {} must set securityContext.runAsNonRoot=true",
            containers_phrase(&implicitly_bad)
        ),
        paths: implicit_paths,
    })
}

pub fn run_as_non_root_1_35(pod: &PodTemplate<'_>) -> Option<Forbidden> {
    if in_user_namespace(pod) {
        return None;
    }
    run_as_non_root_1_0(pod)
}

pub fn run_as_user_1_23(pod: &PodTemplate<'_>) -> Option<Forbidden> {
    let mut setters = Vec::new();
    let mut paths = Vec::new();
    if pod_security_context(pod).and_then(|sc| int_field(sc, "runAsUser")) == Some(0) {
        setters.push("pod".to_owned());
        paths.push(pod_sc_path(pod, &["runAsUser"]));
    }
    let mut bad = Vec::new();
    for c in containers(pod.spec) {
        if c.security_context()
            .and_then(|sc| int_field(sc, "runAsUser"))
            == Some(0)
        {
            bad.push(c.name);
            paths.push(c.security_context_path(pod, &["runAsUser"]));
        }
    }
    if !bad.is_empty() {
        setters.push(containers_phrase(&bad));
    }
    (!setters.is_empty()).then(|| Forbidden {
        reason: "runAsUser=0".into(),
        detail: format!("{} must not set runAsUser=0", setters.join(" and ")),
        paths,
    })
}

pub fn run_as_user_1_35(pod: &PodTemplate<'_>) -> Option<Forbidden> {
    if in_user_namespace(pod) {
        return None;
    }
    run_as_user_1_23(pod)
}

pub fn seccomp_profile_restricted_1_19(pod: &PodTemplate<'_>) -> Option<Forbidden> {
    let scan = scan_seccomp(pod);
    if !scan.setters.is_empty() {
        return Some(seccomp_explicitly_bad(scan));
    }
    if scan.pod_valid || scan.unset.is_empty() {
        return None;
    }
    let names: Vec<&str> = scan.unset.iter().map(|c| c.name).collect();
    Some(Forbidden {
        reason: "seccompProfile".into(),
        detail: format!(
            r#"pod or {} must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost""#,
            containers_phrase(&names)
        ),
        paths: scan
            .unset
            .iter()
            .map(|c| c.security_context_path(pod, &["seccompProfile", "type"]))
            .collect(),
    })
}

pub fn seccomp_profile_restricted_1_25(pod: &PodTemplate<'_>) -> Option<Forbidden> {
    if is_windows(pod) {
        return None;
    }
    seccomp_profile_restricted_1_19(pod)
}

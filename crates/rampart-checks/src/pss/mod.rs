//! The Pod Security Standards as `k8s.io/pod-security-admission` enforces them,
//! for every policy version from v1.0 to the newest and `latest`.
//!
//! The registry mirrors upstream's `policy/registry.go`: each check has
//! versioned implementations; a level and version select, per check, the newest
//! implementation not newer than the version; restricted includes every
//! baseline check that no restricted check overrides at that version; results
//! come out baseline checks first, then restricted, each sorted by ID.

pub mod checks;
mod version;

use std::borrow::Cow;

use rampart_core::{Category, Check, CheckMeta, ObjectView, PodTemplate, Severity, Violation};

pub use checks::{CheckFn, Forbidden};
pub use version::{Level, NEWEST_MINOR, ParseError, Version};

use checks::*;

/// One implementation of a check, in force from `since` (a v1 minor version).
#[derive(Debug)]
pub struct Versioned {
    pub since: u32,
    pub check: CheckFn,
    /// Baseline checks this restricted implementation replaces.
    pub overrides: &'static [&'static str],
}

/// An upstream check with its versions and what we tell people about it.
#[derive(Debug)]
pub struct CheckDef {
    /// Upstream's check ID (`capabilities_baseline`).
    pub id: &'static str,
    pub level: Level,
    pub versions: &'static [Versioned],
    pub severity: Severity,
    pub title: &'static str,
    pub why: &'static str,
    pub fix: &'static str,
}

impl CheckDef {
    /// Rampart's ID for the check: upstream's prefixed with `pss-`.
    pub fn rampart_id(&self) -> String {
        format!("pss-{}", self.id)
    }

    fn at(&self, minor: u32) -> Option<&'static Versioned> {
        self.versions.iter().rev().find(|v| v.since <= minor)
    }
}

const fn v(since: u32, check: CheckFn) -> Versioned {
    Versioned {
        since,
        check,
        overrides: &[],
    }
}

const fn v_over(since: u32, check: CheckFn, overrides: &'static [&'static str]) -> Versioned {
    Versioned {
        since,
        check,
        overrides,
    }
}

/// Every check of the standard: 12 baseline, 7 restricted.
pub static CHECKS: &[CheckDef] = &[
    CheckDef {
        id: "appArmorProfile",
        level: Level::Baseline,
        versions: &[v(0, app_armor_profile_1_0)],
        severity: Severity::High,
        title: "AppArmor profile overridden or disabled",
        why: "The runtime's default AppArmor profile confines what a container can do; unconfined containers lose that protection.",
        fix: "Remove the AppArmor override or set appArmorProfile.type to RuntimeDefault or Localhost.",
    },
    CheckDef {
        id: "capabilities_baseline",
        level: Level::Baseline,
        versions: &[v(0, capabilities_baseline_1_0)],
        severity: Severity::Critical,
        title: "Capabilities beyond the default set",
        why: "Capabilities such as SYS_ADMIN or NET_RAW give a container powers close to root on the node.",
        fix: "Remove the capability from securityContext.capabilities.add, keeping only the runtime's default set.",
    },
    CheckDef {
        id: "hostNamespaces",
        level: Level::Baseline,
        versions: &[v(0, host_namespaces_1_0)],
        severity: Severity::Critical,
        title: "Host namespaces shared",
        why: "Sharing the node's network, PID or IPC namespace lets a pod see and touch other workloads and the node itself.",
        fix: "Remove hostNetwork, hostPID and hostIPC or set them to false.",
    },
    CheckDef {
        id: "hostPathVolumes",
        level: Level::Baseline,
        versions: &[v(0, host_path_volumes_1_0)],
        severity: Severity::Critical,
        title: "hostPath volume",
        why: "hostPath volumes expose the node's filesystem, a common path to container escape.",
        fix: "Use a PersistentVolumeClaim, emptyDir, configMap or secret volume instead of hostPath.",
    },
    CheckDef {
        id: "hostPorts",
        level: Level::Baseline,
        versions: &[v(0, host_ports_1_0)],
        severity: Severity::High,
        title: "hostPort used",
        why: "hostPorts bind directly on the node, bypass network policy and limit scheduling.",
        fix: "Remove hostPort and expose the container through a Service.",
    },
    CheckDef {
        id: "hostProbesAndHostLifecycle",
        level: Level::Baseline,
        versions: &[v(34, host_probes_and_host_lifecycle_1_34)],
        severity: Severity::High,
        title: "Probe or lifecycle handler targets another host",
        why: "A probe or lifecycle host makes the kubelet send requests to arbitrary addresses (server-side request forgery).",
        fix: "Remove the host field from httpGet and tcpSocket probes and lifecycle handlers.",
    },
    CheckDef {
        id: "privileged",
        level: Level::Baseline,
        versions: &[v(0, privileged_1_0)],
        severity: Severity::Critical,
        title: "Privileged container",
        why: "A privileged container has all capabilities and device access: effectively root on the node.",
        fix: "Remove securityContext.privileged or set it to false.",
    },
    CheckDef {
        id: "procMount",
        level: Level::Baseline,
        versions: &[v(0, proc_mount_1_0), v(35, proc_mount_1_35_baseline)],
        severity: Severity::High,
        title: "Unmasked /proc",
        why: "The default /proc masks hide kernel interfaces that leak host information or allow escapes.",
        fix: "Remove securityContext.procMount or set it to Default.",
    },
    CheckDef {
        id: "seLinuxOptions",
        level: Level::Baseline,
        versions: &[v(0, se_linux_options_1_0), v(31, se_linux_options_1_31)],
        severity: Severity::High,
        title: "Custom SELinux options",
        why: "Custom SELinux users, roles or types can lift the confinement SELinux gives containers.",
        fix: "Remove seLinuxOptions.user and role, and use a container_* type or none.",
    },
    CheckDef {
        id: "seccompProfile_baseline",
        level: Level::Baseline,
        versions: &[
            v(0, seccomp_profile_baseline_1_0),
            v(19, seccomp_profile_baseline_1_19),
        ],
        severity: Severity::High,
        title: "Seccomp disabled",
        why: "An Unconfined seccomp profile exposes every system call of the kernel to the container.",
        fix: "Set seccompProfile.type to RuntimeDefault or Localhost, or leave it unset.",
    },
    CheckDef {
        id: "sysctls",
        level: Level::Baseline,
        versions: &[
            v(0, sysctls_1_0),
            v(27, sysctls_1_27),
            v(29, sysctls_1_29),
            v(32, sysctls_1_32),
            v(37, sysctls_1_37),
        ],
        severity: Severity::High,
        title: "Unsafe sysctl",
        why: "Sysctls outside the safe, namespaced set affect the whole node or disable security mechanisms.",
        fix: "Remove the sysctl from spec.securityContext.sysctls or use one of the safe sysctls.",
    },
    CheckDef {
        id: "windowsHostProcess",
        level: Level::Baseline,
        versions: &[v(0, windows_host_process_1_0)],
        severity: Severity::Critical,
        title: "Windows HostProcess container",
        why: "HostProcess containers run directly on the Windows host with host privileges.",
        fix: "Remove windowsOptions.hostProcess or set it to false.",
    },
    CheckDef {
        id: "allowPrivilegeEscalation",
        level: Level::Restricted,
        versions: &[
            v(8, allow_privilege_escalation_1_8),
            v(25, allow_privilege_escalation_1_25),
        ],
        severity: Severity::High,
        title: "Privilege escalation allowed",
        why: "Without allowPrivilegeEscalation=false, setuid binaries can gain more privileges than the process started with.",
        fix: "Set securityContext.allowPrivilegeEscalation to false in every container.",
    },
    CheckDef {
        id: "capabilities_restricted",
        level: Level::Restricted,
        versions: &[
            v_over(22, capabilities_restricted_1_22, &["capabilities_baseline"]),
            v_over(25, capabilities_restricted_1_25, &["capabilities_baseline"]),
        ],
        severity: Severity::High,
        title: "Capabilities not dropped",
        why: "Even the default capabilities (NET_RAW, CHOWN, ...) widen the attack surface; restricted pods drop them all.",
        fix: "Set securityContext.capabilities.drop to [\"ALL\"] and add back at most NET_BIND_SERVICE.",
    },
    CheckDef {
        id: "procMount_restricted",
        level: Level::Restricted,
        versions: &[v_over(35, proc_mount_1_0, &["procMount"])],
        severity: Severity::High,
        title: "Unmasked /proc",
        why: "The default /proc masks hide kernel interfaces, even in user-namespaced pods at the restricted level.",
        fix: "Remove securityContext.procMount or set it to Default.",
    },
    CheckDef {
        id: "restrictedVolumes",
        level: Level::Restricted,
        versions: &[v_over(0, restricted_volumes_1_0, &["hostPathVolumes"])],
        severity: Severity::High,
        title: "Restricted volume type",
        why: "Only ephemeral and claim-backed volume types are safe for tenants; others reach node or network storage directly.",
        fix: "Use configMap, csi, downwardAPI, emptyDir, ephemeral, image, persistentVolumeClaim, projected or secret volumes.",
    },
    CheckDef {
        id: "runAsNonRoot",
        level: Level::Restricted,
        versions: &[v(0, run_as_non_root_1_0), v(35, run_as_non_root_1_35)],
        severity: Severity::High,
        title: "May run as root",
        why: "A process running as root in the container is root on the node if it escapes.",
        fix: "Set securityContext.runAsNonRoot to true on the pod (or on every container).",
    },
    CheckDef {
        id: "runAsUser",
        level: Level::Restricted,
        versions: &[v(23, run_as_user_1_23), v(35, run_as_user_1_35)],
        severity: Severity::High,
        title: "Runs as UID 0",
        why: "runAsUser: 0 runs the container as root.",
        fix: "Set runAsUser to a non-zero UID or remove it.",
    },
    CheckDef {
        id: "seccompProfile_restricted",
        level: Level::Restricted,
        versions: &[
            v_over(
                19,
                seccomp_profile_restricted_1_19,
                &["seccompProfile_baseline"],
            ),
            v_over(
                25,
                seccomp_profile_restricted_1_25,
                &["seccompProfile_baseline"],
            ),
        ],
        severity: Severity::High,
        title: "Seccomp profile not set",
        why: "Without a seccomp profile the container can make every system call, including rarely needed dangerous ones.",
        fix: "Set spec.securityContext.seccompProfile.type to RuntimeDefault (or Localhost).",
    },
];

/// A failed check for one pod.
#[derive(Debug, Clone)]
pub struct PssResult {
    pub check: &'static CheckDef,
    pub forbidden: Forbidden,
}

/// The checks of one level at one version, in upstream's evaluation order.
#[derive(Clone)]
pub struct Profile {
    level: Level,
    version: Version,
    checks: Vec<(&'static CheckDef, CheckFn)>,
}

impl Profile {
    pub fn new(level: Level, version: Version) -> Self {
        let minor = version.effective_minor();
        let active = |level: Level| {
            CHECKS
                .iter()
                .filter(move |c| c.level == level)
                .filter_map(move |c| c.at(minor).map(|v| (c, v)))
        };
        let mut checks: Vec<(&'static CheckDef, &'static Versioned)> = match level {
            Level::Privileged => Vec::new(),
            Level::Baseline => active(Level::Baseline).collect(),
            Level::Restricted => {
                let restricted: Vec<_> = active(Level::Restricted).collect();
                let overridden: Vec<&str> = restricted
                    .iter()
                    .flat_map(|(_, v)| v.overrides.iter().copied())
                    .collect();
                active(Level::Baseline)
                    .filter(|(c, _)| !overridden.contains(&c.id))
                    .chain(restricted)
                    .collect()
            }
        };
        // Baseline first, then restricted; each by ID in byte order, as Go sorts.
        checks.sort_by(|(a, _), (b, _)| (a.level, a.id).cmp(&(b.level, b.id)));
        Self {
            level,
            version,
            checks: checks.into_iter().map(|(c, v)| (c, v.check)).collect(),
        }
    }

    pub fn level(&self) -> Level {
        self.level
    }

    pub fn version(&self) -> Version {
        self.version
    }

    /// The checks this profile runs, in order.
    pub fn checks(&self) -> impl Iterator<Item = &'static CheckDef> + '_ {
        self.checks.iter().map(|(c, _)| *c)
    }

    pub fn evaluate(&self, pod: &PodTemplate<'_>) -> Vec<PssResult> {
        self.checks
            .iter()
            .filter_map(|(check, f)| f(pod).map(|forbidden| PssResult { check, forbidden }))
            .collect()
    }

    /// Each check of the profile as a Rampart [`Check`].
    pub fn into_checks(self) -> Vec<Box<dyn Check>> {
        let label = format!("{}:{}", self.level, self.version);
        self.checks
            .into_iter()
            .map(|(def, check)| {
                Box::new(PssCheck {
                    meta: meta(def, &label),
                    check,
                }) as Box<dyn Check>
            })
            .collect()
    }
}

/// Upstream's aggregate wording: `reason1 (detail1), reason2 (detail2)`.
pub fn forbidden_detail(results: &[PssResult]) -> String {
    let mut out = String::new();
    for (i, r) in results.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&r.forbidden.reason);
        if !r.forbidden.detail.is_empty() {
            out.push_str(" (");
            out.push_str(&r.forbidden.detail);
            out.push(')');
        }
    }
    out
}

fn meta(def: &CheckDef, profile_label: &str) -> CheckMeta {
    CheckMeta {
        id: Cow::Owned(def.rampart_id()),
        title: Cow::Owned(format!("{} (PSS {profile_label})", def.title)),
        severity: def.severity,
        category: Category::PodSecurityStandards,
        why: Cow::Borrowed(def.why),
        fix: Cow::Borrowed(def.fix),
    }
}

/// One check of a Pod Security Standards profile, bound to its version.
struct PssCheck {
    meta: CheckMeta,
    check: CheckFn,
}

impl Check for PssCheck {
    fn meta(&self) -> &CheckMeta {
        &self.meta
    }

    fn check(&self, object: &ObjectView<'_>, out: &mut Vec<Violation>) {
        let Some(pod) = &object.pod else { return };
        if let Some(f) = (self.check)(pod) {
            let mut paths = f.paths.into_iter();
            let primary = paths.next().unwrap_or_else(|| pod.spec_path.clone());
            let message = if f.detail.is_empty() {
                f.reason.into_owned()
            } else {
                format!("{} ({})", f.reason, f.detail)
            };
            out.push(
                Violation::new(self.meta.id.clone(), message, primary)
                    .with_related(paths.collect()),
            );
        }
    }
}

#[cfg(test)]
mod tests;

//! Pod Security admission from namespace labels, as upstream's
//! `k8s.io/pod-security-admission` does it.
//!
//! - Labels `pod-security.kubernetes.io/<mode>` and `<mode>-version` for
//!   enforce, audit and warn, falling back to the configured defaults per
//!   field. A level label without a version label means `latest`. An invalid
//!   label evaluates as `restricted:latest` and adds an `error` audit
//!   annotation (upstream's `PolicyToEvaluate`).
//! - Pods: enforce denies with `pods "x" is forbidden: violates PodSecurity
//!   "restricted:latest": <reasons>`, audit sets the `audit-violations`
//!   annotation, warn adds `would violate PodSecurity ...` (only when the pod
//!   is not denied), and `enforce-policy` records the enforced policy.
//! - Workloads (Deployment, Job, ...): audit and warn only, like upstream,
//!   which never rejects a workload for its template.
//! - Pod UPDATEs are evaluated only when significant (images, containers,
//!   seccomp annotations); `pods/ephemeralcontainers` always; other
//!   subresources never.
//! - Exemptions by user name, namespace and runtime class, with the
//!   `exempt` annotation.
//! - Rampart's own label `rampart.dev/enforce` (and `rampart.dev/enforce-version`)
//!   enforces a level on pods *and on workloads*, so a Deployment whose
//!   template would be rejected is refused up front instead of failing to
//!   create pods. Rule ID `pod-security-rampart`.
//!
//! Audit annotation keys have no prefix: the API server prefixes webhook
//! annotations with the webhook's name.

use std::sync::OnceLock;

use anyhow::Result;
use rampart_checks::pss::{Level, NEWEST_MINOR, Profile, Version, forbidden_detail};
use rampart_core::PodTemplate;
use rampart_core::value::{array_field, dig, field, str_field};
use serde_json::Value;

use super::{Context, Match, ValidationRule, pod_spec_matches};
use crate::config::Config;
use crate::decision::{Decision, Mode, RuleId};
use crate::metrics::Metrics;

pub const RAMPART_LABEL: &str = "rampart.dev/enforce";
pub const RAMPART_VERSION_LABEL: &str = "rampart.dev/enforce-version";

/// A level at a version, displayed `restricted:latest`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LevelVersion {
    pub level: Level,
    pub version: Version,
}

impl std::fmt::Display for LevelVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.level, self.version)
    }
}

/// The three modes' policies of a namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NamespacePolicy {
    pub enforce: LevelVersion,
    pub audit: LevelVersion,
    pub warn: LevelVersion,
}

impl NamespacePolicy {
    fn fully_privileged(&self) -> bool {
        [self.enforce, self.audit, self.warn]
            .iter()
            .all(|p| p.level == Level::Privileged)
    }
}

/// Reads one mode's labels over a default, as upstream does.
fn mode_policy<'l>(
    labels: &dyn Fn(&str) -> Option<&'l str>,
    level_key: &str,
    version_key: &str,
    default: LevelVersion,
    errors: &mut Vec<String>,
) -> LevelVersion {
    let mut p = default;
    let mut has_level = false;
    if let Some(level) = labels(level_key) {
        match level.parse::<Level>() {
            Ok(l) => {
                p.level = l;
                has_level = true;
            }
            Err(_) => {
                p.level = Level::Restricted;
                errors.push(format!(
                    "metadata.labels[{level_key}]: Invalid value: {}: must be one of privileged, baseline, restricted",
                    super::go_quote(level)
                ));
            }
        }
    }
    if let Some(version) = labels(version_key) {
        match version.parse::<Version>() {
            Ok(v) => p.version = v,
            Err(_) => {
                p.version = Version::Latest;
                errors.push(format!(
                    "metadata.labels[{version_key}]: Invalid value: {}: must be \"latest\" or \"v1.x\"",
                    super::go_quote(version)
                ));
            }
        }
    } else if has_level {
        p.version = Version::Latest;
    }
    p
}

/// Upstream's `PolicyToEvaluate`: the namespace's policy and label errors.
pub fn policy_to_evaluate<'l>(
    labels: &dyn Fn(&str) -> Option<&'l str>,
    defaults: NamespacePolicy,
) -> (NamespacePolicy, Vec<String>) {
    let mut errors = Vec::new();
    let mut one = |level_key, version_key, default| {
        mode_policy(labels, level_key, version_key, default, &mut errors)
    };
    let enforce = one(
        "pod-security.kubernetes.io/enforce",
        "pod-security.kubernetes.io/enforce-version",
        defaults.enforce,
    );
    let audit = one(
        "pod-security.kubernetes.io/audit",
        "pod-security.kubernetes.io/audit-version",
        defaults.audit,
    );
    let warn = one(
        "pod-security.kubernetes.io/warn",
        "pod-security.kubernetes.io/warn-version",
        defaults.warn,
    );
    (
        NamespacePolicy {
            enforce,
            audit,
            warn,
        },
        errors,
    )
}

/// Profiles for every level and effective minor, built once.
fn profile(level: Level, version: Version) -> Option<&'static Profile> {
    static PROFILES: OnceLock<Vec<Profile>> = OnceLock::new();
    let profiles = PROFILES.get_or_init(|| {
        let minors = NEWEST_MINOR as u64 + 1;
        [Level::Baseline, Level::Restricted]
            .into_iter()
            .flat_map(|l| (0..minors).map(move |m| Profile::new(l, Version::Minor(m))))
            .collect()
    });
    let row = match level {
        Level::Privileged => return None,
        Level::Baseline => 0,
        Level::Restricted => 1,
    };
    let minor = version.effective_minor() as usize;
    profiles.get(row * (NEWEST_MINOR as usize + 1) + minor)
}

/// Evaluations of one pod, memoised by level and effective version.
struct Memo<'p, 'a> {
    pod: &'p PodTemplate<'a>,
    done: Vec<((Level, u32), Option<String>)>,
}

impl Memo<'_, '_> {
    /// `None` when the pod satisfies `p`, else upstream's forbidden detail.
    fn detail(&mut self, p: LevelVersion) -> Option<String> {
        let key = (p.level, p.version.effective_minor());
        if let Some((_, d)) = self.done.iter().find(|(k, _)| *k == key) {
            return d.clone();
        }
        let d = profile(p.level, p.version).and_then(|prof| {
            let results = prof.evaluate(self.pod);
            (!results.is_empty()).then(|| forbidden_detail(&results))
        });
        self.done.push((key, d.clone()));
        d
    }
}

/// The Pod Security rule (`pod-security`, and `pod-security-rampart` for
/// Rampart's label).
pub struct PodSecurityRule {
    id: RuleId,
    rampart_id: RuleId,
    defaults: NamespacePolicy,
    exempt_users: Vec<String>,
    exempt_namespaces: Vec<String>,
    exempt_runtime_classes: Vec<String>,
    rampart_label: bool,
}

impl PodSecurityRule {
    pub fn new(config: &Config, metrics: &Metrics) -> Result<Self> {
        let d = &config.pod_security.defaults;
        let lv = |l: &str, v: &str| -> Result<LevelVersion> {
            Ok(LevelVersion {
                level: l.parse()?,
                version: v.parse()?,
            })
        };
        let e = &config.pod_security.exemptions;
        Ok(Self {
            id: RuleId::new("pod-security", metrics),
            rampart_id: RuleId::new("pod-security-rampart", metrics),
            defaults: NamespacePolicy {
                enforce: lv(&d.enforce, &d.enforce_version)?,
                audit: lv(&d.audit, &d.audit_version)?,
                warn: lv(&d.warn, &d.warn_version)?,
            },
            exempt_users: e.usernames.clone(),
            exempt_namespaces: e.namespaces.clone(),
            exempt_runtime_classes: e.runtime_classes.clone(),
            rampart_label: config.pod_security.rampart_label,
        })
    }
}

impl ValidationRule for PodSecurityRule {
    fn id(&self) -> &RuleId {
        &self.id
    }

    fn matches(&self) -> Vec<Match> {
        pod_spec_matches()
    }

    fn validate(&self, cx: &Context<'_>, out: &mut Decision) {
        let Some(view) = &cx.view else { return };
        let Some(pod) = &view.pod else { return };
        let is_pod = view.pod_kind == Some(rampart_core::PodBearingKind::Pod);
        if !cx.pod_update_is_significant() {
            return;
        }
        let request = cx.request;
        if self
            .exempt_users
            .iter()
            .any(|u| *u == request.user_info.username)
        {
            out.annotate("exempt", "user".to_owned());
            return;
        }
        if self
            .exempt_namespaces
            .iter()
            .any(|n| *n == request.namespace)
        {
            out.annotate("exempt", "namespace".to_owned());
            return;
        }
        let labels = |key: &str| cx.namespace_label(key);
        let (policy, errors) = policy_to_evaluate(&labels, self.defaults);
        let mut rampart_errors = Vec::new();
        let rampart = if self.rampart_label && cx.namespace_label(RAMPART_LABEL).is_some() {
            let privileged = LevelVersion {
                level: Level::Privileged,
                version: Version::Latest,
            };
            Some(mode_policy(
                &labels,
                RAMPART_LABEL,
                RAMPART_VERSION_LABEL,
                privileged,
                &mut rampart_errors,
            ))
            .filter(|p| p.level != Level::Privileged)
        } else {
            None
        };
        if errors.is_empty() && policy.fully_privileged() && rampart.is_none() {
            return;
        }
        let runtime_class = str_field(pod.spec, "runtimeClassName").unwrap_or("");
        if !runtime_class.is_empty()
            && self
                .exempt_runtime_classes
                .iter()
                .any(|r| r == runtime_class)
        {
            out.annotate("exempt", "runtimeClass".to_owned());
            return;
        }
        let all_errors: Vec<String> = errors.into_iter().chain(rampart_errors).collect();
        if !all_errors.is_empty() {
            out.annotate(
                "error",
                format!("Failed to parse policy: {}", all_errors.join(", ")),
            );
        }

        let mut memo = Memo {
            pod,
            done: Vec::new(),
        };
        let mut denied = false;
        if is_pod {
            out.annotate("enforce-policy", policy.enforce.to_string());
            if let Some(detail) = memo.detail(policy.enforce) {
                out.deny(
                    &self.id,
                    403,
                    format!(
                        "{}: violates PodSecurity \"{}\": {detail}",
                        cx.forbidden_prefix(),
                        policy.enforce
                    ),
                );
                out.hit(&self.id, Mode::Enforce);
                denied = true;
            }
        }
        if let Some(p) = rampart {
            let duplicate = is_pod && denied && p == policy.enforce;
            if let Some(detail) = memo.detail(p).filter(|_| !duplicate) {
                out.deny(
                    &self.rampart_id,
                    403,
                    format!(
                        "{}: violates PodSecurity \"{p}\": {detail}",
                        cx.forbidden_prefix()
                    ),
                );
                out.hit(&self.rampart_id, Mode::Enforce);
                denied = true;
            }
        }
        if let Some(detail) = memo.detail(policy.audit) {
            out.annotate(
                "audit-violations",
                format!("would violate PodSecurity \"{}\": {detail}", policy.audit),
            );
            out.hit(&self.id, Mode::Audit);
        }
        // Like upstream: no warnings on a request that is denied anyway.
        if !denied && let Some(detail) = memo.detail(policy.warn) {
            out.warnings.push(format!(
                "would violate PodSecurity \"{}\": {detail}",
                policy.warn
            ));
            out.hit(&self.id, Mode::Warn);
        }
    }
}

/// Upstream's `isSignificantPodUpdate`: whether a pod UPDATE changes what
/// pod security depends on.
pub fn is_significant_pod_update(new: &Value, old: &Value) -> bool {
    const SECCOMP_POD: &str = "seccomp.security.alpha.kubernetes.io/pod";
    const SECCOMP_CONTAINER: &str = "container.seccomp.security.alpha.kubernetes.io/";
    let annotation = |v: &Value, key: &str| -> Option<String> {
        dig(v, &["metadata", "annotations"])
            .and_then(|a| str_field(a, key))
            .map(str::to_owned)
    };
    if annotation(new, SECCOMP_POD) != annotation(old, SECCOMP_POD) {
        return true;
    }
    let null = Value::Null;
    let new_spec = field(new, "spec").unwrap_or(&null);
    let old_spec = field(old, "spec").unwrap_or(&null);
    let container_changed = |c: &Value, oc: &Value| {
        if str_field(c, "image") != str_field(oc, "image") {
            return true;
        }
        let key = format!("{SECCOMP_CONTAINER}{}", str_field(c, "name").unwrap_or(""));
        annotation(new, &key) != annotation(old, &key)
    };
    for list in ["containers", "initContainers"] {
        let (n, o) = (array_field(new_spec, list), array_field(old_spec, list));
        if n.len() != o.len() {
            return true;
        }
        if n.iter().zip(o).any(|(c, oc)| container_changed(c, oc)) {
            return true;
        }
    }
    let old_ephemeral = array_field(old_spec, "ephemeralContainers");
    for c in array_field(new_spec, "ephemeralContainers") {
        let name = str_field(c, "name");
        match old_ephemeral
            .iter()
            .find(|oc| str_field(oc, "name") == name)
        {
            None => return true,
            Some(oc) if container_changed(c, oc) => return true,
            Some(_) => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::BTreeMap;

    fn lv(level: Level, version: Version) -> LevelVersion {
        LevelVersion { level, version }
    }

    fn privileged_defaults() -> NamespacePolicy {
        let p = lv(Level::Privileged, Version::Latest);
        NamespacePolicy {
            enforce: p,
            audit: p,
            warn: p,
        }
    }

    fn policy(labels: &[(&str, &str)]) -> (NamespacePolicy, Vec<String>) {
        let map: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        policy_to_evaluate(&|k| map.get(k).map(String::as_str), privileged_defaults())
    }

    #[test]
    fn labels_override_defaults_like_upstream() {
        let (p, errs) = policy(&[
            ("pod-security.kubernetes.io/enforce", "baseline"),
            ("pod-security.kubernetes.io/warn", "restricted"),
            ("pod-security.kubernetes.io/warn-version", "v1.25"),
        ]);
        assert!(errs.is_empty());
        assert_eq!(p.enforce, lv(Level::Baseline, Version::Latest));
        assert_eq!(p.warn, lv(Level::Restricted, Version::Minor(25)));
        assert_eq!(p.audit, lv(Level::Privileged, Version::Latest));
        assert_eq!(p.warn.to_string(), "restricted:v1.25");
    }

    #[test]
    fn invalid_labels_evaluate_as_restricted_latest() {
        let (p, errs) = policy(&[
            ("pod-security.kubernetes.io/enforce", "strict"),
            ("pod-security.kubernetes.io/audit", "baseline"),
            ("pod-security.kubernetes.io/audit-version", "v2.0"),
        ]);
        assert_eq!(p.enforce, lv(Level::Restricted, Version::Latest));
        assert_eq!(p.audit, lv(Level::Baseline, Version::Latest));
        assert_eq!(errs.len(), 2);
        assert!(
            errs[0].contains("pod-security.kubernetes.io/enforce"),
            "{errs:?}"
        );
    }

    #[test]
    fn significant_updates() {
        let pod = |image: &str, labels: Value| json!({"metadata": {"labels": labels}, "spec": {"containers": [{"name": "a", "image": image}]}});
        assert!(!is_significant_pod_update(
            &pod("nginx:1", json!({"x": "1"})),
            &pod("nginx:1", json!({"x": "2"}))
        ));
        assert!(is_significant_pod_update(
            &pod("nginx:2", json!({})),
            &pod("nginx:1", json!({}))
        ));
        let with_debug = json!({"spec": {"containers": [{"name": "a", "image": "nginx:1"}],
            "ephemeralContainers": [{"name": "debug", "image": "busybox"}]}});
        assert!(is_significant_pod_update(
            &with_debug,
            &pod("nginx:1", json!(null))
        ));
    }

    #[test]
    fn profiles_cover_every_version() {
        assert!(profile(Level::Privileged, Version::Latest).is_none());
        let p = profile(Level::Restricted, Version::Minor(25)).unwrap();
        assert_eq!(p.level(), Level::Restricted);
        assert_eq!(p.version(), Version::Minor(25));
        let p = profile(Level::Baseline, Version::Minor(1000)).unwrap();
        assert_eq!(p.version(), Version::Minor(u64::from(NEWEST_MINOR)));
    }
}

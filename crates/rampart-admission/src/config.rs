//! The admission configuration file (`--config`, YAML), with safe defaults.
//!
//! Every field is optional; an empty file (or no file) gives [`Config::default`]:
//! Pod Security Standards from namespace labels with upstream's defaults
//! (privileged everywhere unless labelled), best practices in `audit` mode,
//! namespace protection and exec protection enforced, no mutations, no
//! request rules, no rate limits. Unknown fields are errors, so a typo never
//! silently turns a protection off.
//!
//! ```yaml
//! excludedNamespaces: [kube-system, kube-node-lease]   # plus --namespace, always
//! rules:                        # mode per rule: enforce | warn | audit | off
//!   image-tag-latest: enforce
//! bestPractices: {mode: audit, requireCpuLimits: true}
//! podSecurity:
//!   defaults: {enforce: privileged, enforceVersion: latest, warn: privileged, audit: privileged}
//!   exemptions: {usernames: [], namespaces: [], runtimeClasses: []}
//! images: {allowedRegistries: [ghcr.io/acme], requireDigestIn: ["prod-*"]}
//! sandbox:
//!   untrustedLabel: rampart.dev/untrusted=true
//!   runtimeClasses: [kata, kata-*, gvisor, runsc]
//! namespaceProtection: {protected: [default, kube-system, kube-public]}
//! exec: {onUnknownPod: deny}
//! requestRules:
//!   - {name: freeze-prod, namespaces: ["prod-*"], groups: [contractors], operations: [CREATE, UPDATE, DELETE]}
//! rateLimit: {perNamespace: {qps: 20, burst: 40}, perUser: {qps: 10, burst: 20}}
//! mutations:
//!   alwaysPullImages: true
//!   securityContext: true
//!   defaultResources: {requests: {cpu: 100m, memory: 128Mi}, limits: {memory: 256Mi}}
//!   defaultTolerationSeconds: 300
//!   podNodeSelector: true
//!   untrustedRuntimeClass: kata
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use crate::decision::Mode;

/// The whole file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Config {
    /// Namespaces whose requests are allowed at once, without evaluation
    /// (except namespace protection). Rampart's own namespace is always added.
    pub excluded_namespaces: Vec<String>,
    /// Mode per rule ID, overriding each rule's default.
    pub rules: BTreeMap<String, Mode>,
    pub best_practices: BestPractices,
    pub pod_security: PodSecurityConfig,
    pub images: Images,
    pub sandbox: Sandbox,
    pub namespace_protection: NamespaceProtection,
    pub exec: Exec,
    pub request_rules: Vec<RequestRule>,
    pub rate_limit: Option<RateLimit>,
    pub mutations: Mutations,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            excluded_namespaces: vec!["kube-system".into(), "kube-node-lease".into()],
            rules: BTreeMap::new(),
            best_practices: BestPractices::default(),
            pod_security: PodSecurityConfig::default(),
            images: Images::default(),
            sandbox: Sandbox::default(),
            namespace_protection: NamespaceProtection::default(),
            exec: Exec::default(),
            request_rules: Vec::new(),
            rate_limit: None,
            mutations: Mutations::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct BestPractices {
    /// Mode of every best-practice check not listed in `rules`.
    pub mode: Mode,
    /// Whether `resources-missing-limits` requires CPU limits.
    pub require_cpu_limits: bool,
}

impl Default for BestPractices {
    fn default() -> Self {
        Self {
            mode: Mode::Audit,
            require_cpu_limits: true,
        }
    }
}

/// Pod Security admission, compatible with `pod-security.kubernetes.io` labels.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct PodSecurityConfig {
    pub enabled: bool,
    /// Policy for namespaces without labels, as upstream's
    /// `PodSecurityConfiguration.defaults`.
    pub defaults: PssDefaults,
    pub exemptions: PssExemptions,
    /// Whether the `rampart.dev/enforce` (and `-version`) namespace label is
    /// honoured: it enforces a level on pods and on every pod-bearing
    /// workload, where upstream only warns for workloads.
    pub rampart_label: bool,
}

impl Default for PodSecurityConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            defaults: PssDefaults::default(),
            exemptions: PssExemptions::default(),
            rampart_label: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct PssDefaults {
    pub enforce: String,
    pub enforce_version: String,
    pub audit: String,
    pub audit_version: String,
    pub warn: String,
    pub warn_version: String,
}

impl Default for PssDefaults {
    fn default() -> Self {
        let p = || "privileged".to_owned();
        let l = || "latest".to_owned();
        Self {
            enforce: p(),
            enforce_version: l(),
            audit: p(),
            audit_version: l(),
            warn: p(),
            warn_version: l(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct PssExemptions {
    pub usernames: Vec<String>,
    pub namespaces: Vec<String>,
    pub runtime_classes: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Images {
    /// Registries or repository prefixes images may come from (see
    /// `rampart_checks::practices::PracticeConfig::allowed_registries`);
    /// turns on `image-registry-not-allowed` (default mode enforce).
    pub allowed_registries: Vec<String>,
    /// Namespace patterns (`*` wildcards) where every image must be pinned by
    /// digest: `image-digest-required` (default mode enforce).
    pub require_digest_in: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Sandbox {
    /// `key=value` label marking a namespace untrusted.
    pub untrusted_label: String,
    /// Runtime classes that sandbox pods; `*` at the end matches a prefix.
    pub runtime_classes: Vec<String>,
}

impl Default for Sandbox {
    fn default() -> Self {
        let (k, v) = rampart_checks::practices::DEFAULT_UNTRUSTED_LABEL;
        Self {
            untrusted_label: format!("{k}={v}"),
            runtime_classes: rampart_checks::practices::DEFAULT_SANDBOX_RUNTIME_CLASSES
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
        }
    }
}

impl Sandbox {
    pub fn label(&self) -> Result<(&str, &str)> {
        match self.untrusted_label.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k, v)),
            _ => bail!(
                "sandbox.untrustedLabel must be key=value, got {:?}",
                self.untrusted_label
            ),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct NamespaceProtection {
    /// Namespaces that may not be deleted; Rampart's own is always protected.
    pub protected: Vec<String>,
}

impl Default for NamespaceProtection {
    fn default() -> Self {
        Self {
            protected: vec!["default".into(), "kube-system".into(), "kube-public".into()],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AllowOrDeny {
    Allow,
    Deny,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Exec {
    /// What `deny-escalating-exec` answers when the pod is not in the pod
    /// cache (it cannot tell whether the pod is privileged).
    pub on_unknown_pod: AllowOrDeny,
}

impl Default for Exec {
    fn default() -> Self {
        Self {
            on_unknown_pod: AllowOrDeny::Deny,
        }
    }
}

/// Denies (or warns about, or audits) requests by who makes them and where.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct RequestRule {
    /// The rule's ID in messages, logs and metrics.
    pub name: String,
    pub mode: Mode,
    /// Shown to the user; a default names the rule.
    pub message: Option<String>,
    /// User name patterns (`*` wildcards). With `groups`, a request matches
    /// when either matches; when both are empty every user matches.
    pub users: Vec<String>,
    pub groups: Vec<String>,
    /// Namespace patterns; `""` is cluster-scoped requests. Default `*` (any,
    /// cluster-scoped included).
    pub namespaces: Vec<String>,
    /// Default all four.
    pub operations: Vec<String>,
    /// API groups (`""` core, `*` any). Default `*`.
    pub api_groups: Vec<String>,
    /// Resources as in RBAC: `pods` (not its subresources), `pods/exec`,
    /// `pods/*`, `*`. Default `*`.
    pub resources: Vec<String>,
}

impl Default for RequestRule {
    fn default() -> Self {
        Self {
            name: String::new(),
            mode: Mode::Enforce,
            message: None,
            users: Vec::new(),
            groups: Vec::new(),
            namespaces: vec!["*".into()],
            operations: Vec::new(),
            api_groups: vec!["*".into()],
            resources: vec!["*".into()],
        }
    }
}

/// A token bucket: `qps` tokens per second, at most `burst` stored.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BucketConfig {
    pub qps: f64,
    pub burst: u32,
}

/// EventRateLimit-style limits on admission requests.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct RateLimit {
    pub per_namespace: Option<BucketConfig>,
    pub per_user: Option<BucketConfig>,
    /// Most buckets kept per kind of key; full buckets are dropped first.
    pub cache_size: usize,
    pub api_groups: Vec<String>,
    pub resources: Vec<String>,
    pub operations: Vec<String>,
    pub exempt_users: Vec<String>,
    pub exempt_groups: Vec<String>,
}

impl Default for RateLimit {
    fn default() -> Self {
        Self {
            per_namespace: None,
            per_user: None,
            cache_size: 4096,
            api_groups: vec!["*".into()],
            resources: vec!["*".into()],
            operations: Vec::new(),
            exempt_users: Vec::new(),
            exempt_groups: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct DefaultResources {
    pub requests: BTreeMap<String, String>,
    pub limits: BTreeMap<String, String>,
}

/// Mutations; all off by default.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Mutations {
    /// `imagePullPolicy: Always` on every container (AlwaysPullImages).
    pub always_pull_images: bool,
    /// `allowPrivilegeEscalation: false`, `capabilities.drop: [ALL]` on
    /// containers and `seccompProfile: RuntimeDefault` on the pod, where unset.
    pub security_context: bool,
    /// Requests and limits for containers that set none (LimitRanger-style).
    pub default_resources: Option<DefaultResources>,
    /// `tolerationSeconds` of the not-ready and unreachable tolerations added
    /// to pods without them (DefaultTolerationSeconds, upstream uses 300).
    pub default_toleration_seconds: Option<u64>,
    /// Merge the namespace's `scheduler.alpha.kubernetes.io/node-selector`
    /// annotation into pods' nodeSelector (PodNodeSelector); conflicts deny.
    pub pod_node_selector: bool,
    /// Node selector for namespaces without the annotation (`k=v,k2=v2`).
    pub cluster_default_node_selector: String,
    /// `runtimeClassName` given to pods in untrusted namespaces that set none.
    pub untrusted_runtime_class: Option<String>,
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("config {}", path.display()))
    }

    /// Parses and validates YAML (or JSON) text.
    pub fn parse(text: &str) -> Result<Self> {
        let config: Config = if text.trim().is_empty() {
            Config::default()
        } else {
            serde_saphyr::from_str(text).map_err(|e| anyhow::anyhow!("{e}"))?
        };
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<()> {
        use rampart_checks::pss::{Level, Version};
        let d = &self.pod_security.defaults;
        for (field, level) in [
            ("enforce", &d.enforce),
            ("audit", &d.audit),
            ("warn", &d.warn),
        ] {
            level
                .parse::<Level>()
                .with_context(|| format!("podSecurity.defaults.{field}"))?;
        }
        for (field, version) in [
            ("enforceVersion", &d.enforce_version),
            ("auditVersion", &d.audit_version),
            ("warnVersion", &d.warn_version),
        ] {
            version
                .parse::<Version>()
                .with_context(|| format!("podSecurity.defaults.{field}"))?;
        }
        self.sandbox.label()?;
        for (i, rule) in self.request_rules.iter().enumerate() {
            if !is_rule_id(&rule.name) {
                bail!(
                    "requestRules[{i}].name must be a non-empty ID of letters, digits, '-', '_' or '.', got {:?}",
                    rule.name
                );
            }
            parse_operations(&rule.operations)
                .with_context(|| format!("requestRules[{i}].operations"))?;
        }
        if let Some(rl) = &self.rate_limit {
            for (name, b) in [("perNamespace", rl.per_namespace), ("perUser", rl.per_user)] {
                if let Some(b) = b
                    && (!(b.qps.is_finite() && b.qps > 0.0) || b.burst == 0)
                {
                    bail!("rateLimit.{name}: qps must be > 0 and burst >= 1");
                }
            }
            parse_operations(&rl.operations).context("rateLimit.operations")?;
        }
        if let Some(dr) = &self.mutations.default_resources {
            for (name, q) in dr.requests.iter().chain(&dr.limits) {
                if !is_quantity(q) {
                    bail!("mutations.defaultResources: {name}: {q:?} is not a quantity");
                }
            }
        }
        parse_node_selector(&self.mutations.cluster_default_node_selector)
            .map_err(|e| anyhow::anyhow!("mutations.clusterDefaultNodeSelector: {e}"))?;
        if let Some(rc) = &self.mutations.untrusted_runtime_class
            && rc.is_empty()
        {
            bail!("mutations.untrustedRuntimeClass must not be empty");
        }
        Ok(())
    }
}

/// IDs are used as audit annotation keys and metric labels.
pub fn is_rule_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Operation names; empty means all four.
pub fn parse_operations(ops: &[String]) -> Result<Vec<crate::review::Operation>> {
    use crate::review::Operation;
    if ops.is_empty() || ops.iter().any(|o| o == "*") {
        return Ok(Operation::ALL.to_vec());
    }
    ops.iter()
        .map(|o| {
            Operation::parse(o).with_context(|| {
                format!("unknown operation {o:?}: expected CREATE, UPDATE, DELETE, CONNECT or *")
            })
        })
        .collect()
}

/// A loose check of the Kubernetes quantity syntax (`100m`, `1.5Gi`, `2e3`).
fn is_quantity(q: &str) -> bool {
    let q = q.strip_prefix(['+', '-']).unwrap_or(q);
    let digits = q
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(q.len());
    if digits == 0 || q[..digits].matches('.').count() > 1 {
        return false;
    }
    let suffix = &q[digits..];
    matches!(
        suffix,
        "" | "n"
            | "u"
            | "m"
            | "k"
            | "M"
            | "G"
            | "T"
            | "P"
            | "E"
            | "Ki"
            | "Mi"
            | "Gi"
            | "Ti"
            | "Pi"
            | "Ei"
    ) || (suffix.len() > 1
        && matches!(suffix.as_bytes()[0], b'e' | b'E')
        && suffix[1..]
            .strip_prefix(['+', '-'])
            .unwrap_or(&suffix[1..])
            .bytes()
            .all(|b| b.is_ascii_digit()))
}

/// Parses a `k=v,k2=v2` node selector (`labels.ConvertSelectorToLabelsMap`).
pub(crate) fn parse_node_selector(s: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((k, v)) = part.split_once('=') else {
            return Err(format!("{part:?} is not key=value"));
        };
        let (k, v) = (k.trim(), v.trim());
        if k.is_empty() {
            return Err(format!("{part:?} has an empty key"));
        }
        out.push((k.to_owned(), v.to_owned()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_text_gives_safe_defaults() {
        let c = Config::parse("").unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.best_practices.mode, Mode::Audit);
        assert!(c.pod_security.enabled);
        assert!(!c.mutations.security_context);
        assert_eq!(c.excluded_namespaces, ["kube-system", "kube-node-lease"]);
    }

    #[test]
    fn parses_a_full_file() {
        let c = Config::parse(
            r#"
rules: {image-tag-latest: enforce, readiness-probe-missing: "off"}
bestPractices: {mode: warn}
podSecurity:
  defaults: {enforce: baseline, enforceVersion: v1.30}
  exemptions: {usernames: [admin]}
images: {allowedRegistries: [ghcr.io/acme], requireDigestIn: ["prod-*"]}
requestRules:
  - {name: freeze, namespaces: ["prod-*"], groups: [contractors], operations: [DELETE]}
rateLimit: {perNamespace: {qps: 5, burst: 10}}
mutations:
  alwaysPullImages: true
  defaultResources: {requests: {cpu: 100m, memory: 128Mi}}
  defaultTolerationSeconds: 300
"#,
        )
        .unwrap();
        assert_eq!(c.rules["image-tag-latest"], Mode::Enforce);
        assert_eq!(c.rules["readiness-probe-missing"], Mode::Off);
        assert_eq!(c.pod_security.defaults.enforce, "baseline");
        assert_eq!(c.pod_security.defaults.warn, "privileged");
        assert_eq!(c.request_rules[0].resources, ["*"]);
        assert_eq!(c.rate_limit.unwrap().per_namespace.unwrap().burst, 10);
        assert_eq!(c.mutations.default_toleration_seconds, Some(300));
        // YAML 1.1 would read a bare `off` as false; a mode is a mode.
        let c =
            Config::parse("rules: {image-tag-latest: off}\nbestPractices: {mode: off}").unwrap();
        assert_eq!(c.rules["image-tag-latest"], Mode::Off);
        assert_eq!(c.best_practices.mode, Mode::Off);
    }

    #[test]
    fn rejects_mistakes() {
        for (text, want) in [
            ("rulez: {}", "unknown field"),
            ("rules: {x: block}", "block"),
            (
                "podSecurity: {defaults: {enforce: strict}}",
                "podSecurity.defaults.enforce",
            ),
            ("podSecurity: {defaults: {warnVersion: v2}}", "warnVersion"),
            ("requestRules: [{name: ''}]", "requestRules[0].name"),
            ("requestRules: [{name: a, operations: [PATCH]}]", "PATCH"),
            (
                "rateLimit: {perUser: {qps: 0, burst: 1}}",
                "rateLimit.perUser",
            ),
            (
                "mutations: {defaultResources: {limits: {memory: lots}}}",
                "lots",
            ),
            ("sandbox: {untrustedLabel: untrusted}", "key=value"),
            (
                "mutations: {clusterDefaultNodeSelector: 'a=b,c'}",
                "clusterDefaultNodeSelector",
            ),
        ] {
            let err = format!("{:#}", Config::parse(text).unwrap_err());
            assert!(err.contains(want), "{text}: {err}");
        }
    }

    #[test]
    fn knows_quantities() {
        for q in ["1", "100m", "1.5Gi", "2e3", "128Mi", "+1k"] {
            assert!(is_quantity(q), "{q}");
        }
        for q in ["", "m", "1.2.3", "10MB", "lots", "1e"] {
            assert!(!is_quantity(q), "{q}");
        }
    }
}

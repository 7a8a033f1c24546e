//! Namespace hygiene: checks about what a Namespace in the scan lacks.

use std::collections::HashSet;

use rampart_core::value::{array_field, field, str_field};
use rampart_core::{CheckMeta, CorpusCheck, FieldPath, ObjectView, Violation};
use serde_json::Value;

use super::{PracticeConfig, is_core, meta, namespace_of};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    ResourceQuota,
    LimitRange,
    DefaultDeny,
}

/// One of the `namespace-missing-*` checks.
pub(super) struct Hygiene {
    kind: Kind,
    system_namespaces: Vec<String>,
    default_namespace: Option<String>,
    require_egress: bool,
}

impl Hygiene {
    pub(super) fn new(kind: Kind, config: &PracticeConfig) -> Self {
        Self {
            kind,
            system_namespaces: config.system_namespaces.clone(),
            default_namespace: config.default_namespace.clone(),
            require_egress: config.require_default_deny_egress,
        }
    }
}

/// Directions a NetworkPolicy denies by default for every pod of its namespace.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct DefaultDeny {
    pub ingress: bool,
    pub egress: bool,
}

/// What a NetworkPolicy denies by default: it must select every pod, have the
/// direction in its effective policyTypes, and no rules for that direction.
pub(super) fn default_deny(policy: &Value) -> DefaultDeny {
    let spec = field(policy, "spec").unwrap_or(&Value::Null);
    let selects_all = match field(spec, "podSelector") {
        None => true,
        Some(s) => {
            let empty = |key| match field(s, key) {
                None => true,
                Some(Value::Object(m)) => m.is_empty(),
                Some(Value::Array(a)) => a.is_empty(),
                Some(_) => false,
            };
            s.is_object() && empty("matchLabels") && empty("matchExpressions")
        }
    };
    if !selects_all {
        return DefaultDeny::default();
    }
    let ingress_rules = array_field(spec, "ingress");
    let egress_rules = array_field(spec, "egress");
    let types = array_field(spec, "policyTypes");
    let (ingress, egress) = if types.is_empty() {
        // The API server's defaulting: Ingress always, Egress if there are egress rules.
        (true, !egress_rules.is_empty())
    } else {
        let has = |t: &str| types.iter().any(|v| v.as_str() == Some(t));
        (has("Ingress"), has("Egress"))
    };
    DefaultDeny {
        ingress: ingress && ingress_rules.is_empty(),
        egress: egress && egress_rules.is_empty(),
    }
}

/// A Namespace object with a `metadata.name` (not just a `generateName`).
pub(super) fn is_named_namespace(o: &ObjectView<'_>) -> bool {
    is_core(o, "Namespace")
        && o.metadata()
            .and_then(|m| str_field(m, "name"))
            .is_some_and(|n| !n.is_empty())
}

fn is_network_policy(o: &ObjectView<'_>) -> bool {
    o.kind == "NetworkPolicy" && matches!(o.group(), "networking.k8s.io" | "extensions")
}

impl CorpusCheck for Hygiene {
    fn meta(&self) -> &CheckMeta {
        match self.kind {
            Kind::ResourceQuota => &meta::NAMESPACE_MISSING_RESOURCE_QUOTA,
            Kind::LimitRange => &meta::NAMESPACE_MISSING_LIMIT_RANGE,
            Kind::DefaultDeny => &meta::NAMESPACE_MISSING_DEFAULT_DENY_NETWORK_POLICY,
        }
    }

    fn check_all(&self, objects: &[ObjectView<'_>], out: &mut Vec<(usize, Violation)>) {
        let checked = |o: &ObjectView<'_>| {
            is_named_namespace(o) && !self.system_namespaces.iter().any(|s| s == o.name)
        };
        if !objects.iter().any(checked) {
            return;
        }
        let default_ns = self.default_namespace.as_deref();
        // Namespaces that have the object; for network policies, those with a
        // default deny for ingress (`have`) and for egress.
        let mut have: HashSet<&str> = HashSet::new();
        let mut egress: HashSet<&str> = HashSet::new();
        for o in objects {
            let Some(ns) = namespace_of(o, default_ns) else {
                continue;
            };
            match self.kind {
                Kind::ResourceQuota if is_core(o, "ResourceQuota") => {
                    have.insert(ns);
                }
                Kind::LimitRange if is_core(o, "LimitRange") => {
                    have.insert(ns);
                }
                Kind::DefaultDeny if is_network_policy(o) => {
                    let deny = default_deny(o.value);
                    if deny.ingress {
                        have.insert(ns);
                    }
                    if deny.egress {
                        egress.insert(ns);
                    }
                }
                _ => {}
            }
        }
        for (i, o) in objects.iter().enumerate() {
            if !checked(o) {
                continue;
            }
            let name = o.name;
            let message = match self.kind {
                Kind::ResourceQuota if !have.contains(name) => {
                    format!("namespace {name:?} has no ResourceQuota")
                }
                Kind::LimitRange if !have.contains(name) => {
                    format!("namespace {name:?} has no LimitRange")
                }
                Kind::DefaultDeny => {
                    let no_ingress = !have.contains(name);
                    let no_egress = self.require_egress && !egress.contains(name);
                    let what = match (no_ingress, no_egress) {
                        (false, false) => continue,
                        (true, true) => "ingress or egress",
                        (true, false) => "ingress",
                        (false, true) => "egress",
                    };
                    format!(
                        "namespace {name:?} has no NetworkPolicy denying {what} to all its pods by default"
                    )
                }
                _ => continue,
            };
            let path = FieldPath::root().key("metadata").key("name");
            out.push((i, Violation::new(self.meta().id.clone(), message, path)));
        }
    }
}

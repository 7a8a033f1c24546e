//! RBAC checks over Roles, ClusterRoles and their bindings.
//!
//! Rule checks report at the check's severity for ClusterRoles and one step
//! lower for Roles, whose grants stop at their namespace; likewise a
//! RoleBinding to cluster-admin is one step below a ClusterRoleBinding.

use rampart_core::value::{array_field, field, str_field};
use rampart_core::{Check, CheckMeta, FieldPath, ObjectView, Severity, Violation};
use serde_json::Value;

use super::meta;

/// The RBAC API group.
pub const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

/// The four RBAC kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RbacKind {
    Role,
    ClusterRole,
    RoleBinding,
    ClusterRoleBinding,
}

impl RbacKind {
    pub fn of(object: &ObjectView<'_>) -> Option<Self> {
        if object.group() != RBAC_GROUP {
            return None;
        }
        Some(match object.kind {
            "Role" => RbacKind::Role,
            "ClusterRole" => RbacKind::ClusterRole,
            "RoleBinding" => RbacKind::RoleBinding,
            "ClusterRoleBinding" => RbacKind::ClusterRoleBinding,
            _ => return None,
        })
    }

    fn as_str(self) -> &'static str {
        match self {
            RbacKind::Role => "Role",
            RbacKind::ClusterRole => "ClusterRole",
            RbacKind::RoleBinding => "RoleBinding",
            RbacKind::ClusterRoleBinding => "ClusterRoleBinding",
        }
    }

    /// Namespaced kinds report one severity step below the check's default.
    fn severity(self, default: Severity) -> Option<Severity> {
        match self {
            RbacKind::ClusterRole | RbacKind::ClusterRoleBinding => None,
            RbacKind::Role | RbacKind::RoleBinding => Some(one_step_lower(default)),
        }
    }
}

fn one_step_lower(s: Severity) -> Severity {
    match s {
        Severity::Critical => Severity::High,
        Severity::High => Severity::Medium,
        Severity::Medium => Severity::Low,
        Severity::Low | Severity::Info => Severity::Info,
    }
}

/// A role whose rules are checked: not bootstrapped by the API server, not
/// reserved `system:`, not aggregated. Returns its kind.
fn checked_role(object: &ObjectView<'_>) -> Option<RbacKind> {
    let kind = RbacKind::of(object)?;
    let role = matches!(kind, RbacKind::Role | RbacKind::ClusterRole);
    let bootstrap = object.label("kubernetes.io/bootstrapping") == Some("rbac-defaults")
        || object.name.starts_with("system:");
    let aggregated =
        kind == RbacKind::ClusterRole && field(object.value, "aggregationRule").is_some();
    (role && !bootstrap && !aggregated).then_some(kind)
}

fn has(list: &[Value], item: &str) -> bool {
    list.iter().any(|v| v.as_str() == Some(item))
}

fn rule_path(index: usize, key: &'static str) -> FieldPath {
    FieldPath::root().key("rules").index(index).key(key)
}

/// Runs `found` over every rule of a checked role, reporting what it returns.
fn check_rules(
    meta: &'static CheckMeta,
    object: &ObjectView<'_>,
    out: &mut Vec<Violation>,
    found: impl Fn(usize, &Value) -> Option<(String, FieldPath, Vec<FieldPath>)>,
) {
    let Some(kind) = checked_role(object) else {
        return;
    };
    for (i, rule) in array_field(object.value, "rules").iter().enumerate() {
        let Some((what, path, related)) = found(i, rule) else {
            continue;
        };
        let mut v = Violation::new(
            meta.id.clone(),
            format!("{} rule {i} {what}", kind.as_str()),
            path,
        )
        .with_related(related);
        v.severity = kind.severity(meta.severity);
        out.push(v);
    }
}

/// `rbac-wildcard-verbs`.
pub(super) struct WildcardVerbs;

impl Check for WildcardVerbs {
    fn meta(&self) -> &CheckMeta {
        &meta::RBAC_WILDCARD_VERBS
    }

    fn check(&self, object: &ObjectView<'_>, out: &mut Vec<Violation>) {
        check_rules(&meta::RBAC_WILDCARD_VERBS, object, out, |i, rule| {
            has(array_field(rule, "verbs"), "*").then(|| {
                (
                    "grants every verb (\"*\")".to_owned(),
                    rule_path(i, "verbs"),
                    Vec::new(),
                )
            })
        });
    }
}

/// `rbac-wildcard-resources`.
pub(super) struct WildcardResources;

impl Check for WildcardResources {
    fn meta(&self) -> &CheckMeta {
        &meta::RBAC_WILDCARD_RESOURCES
    }

    fn check(&self, object: &ObjectView<'_>, out: &mut Vec<Violation>) {
        check_rules(&meta::RBAC_WILDCARD_RESOURCES, object, out, |i, rule| {
            let keys = ["resources", "apiGroups", "nonResourceURLs"];
            let mut wild = keys
                .into_iter()
                .filter(|k| has(array_field(rule, k), "*"))
                .peekable();
            wild.peek()?;
            let keys: Vec<&'static str> = wild.collect();
            let mut paths = keys.iter().map(|k| rule_path(i, k));
            let primary = paths.next()?;
            Some((
                format!("has \"*\" in {}", keys.join(" and ")),
                primary,
                paths.collect(),
            ))
        });
    }
}

/// `rbac-pods-exec`.
pub(super) struct PodsExec;

/// Resource names that cover `pods/exec` or `pods/attach`, as RBAC matches
/// them: exactly, `*`, or `*/<subresource>`. `pods/*` is not a wildcard.
fn grants_exec_resource(resource: &str) -> bool {
    matches!(
        resource,
        "*" | "pods/exec" | "pods/attach" | "*/exec" | "*/attach"
    )
}

impl Check for PodsExec {
    fn meta(&self) -> &CheckMeta {
        &meta::RBAC_PODS_EXEC
    }

    fn check(&self, object: &ObjectView<'_>, out: &mut Vec<Violation>) {
        check_rules(&meta::RBAC_PODS_EXEC, object, out, |i, rule| {
            let groups = array_field(rule, "apiGroups");
            let core = has(groups, "") || has(groups, "*");
            let verbs = array_field(rule, "verbs");
            let verb = ["create", "*"].into_iter().find(|v| has(verbs, v))?;
            let resource = array_field(rule, "resources")
                .iter()
                .filter_map(Value::as_str)
                .find(|r| grants_exec_resource(r))?;
            core.then(|| {
                (
                    format!("lets subjects exec or attach into pods ({verb:?} on {resource:?})"),
                    rule_path(i, "resources"),
                    vec![rule_path(i, "verbs")],
                )
            })
        });
    }
}

/// `rbac-cluster-admin-binding`.
pub(super) struct ClusterAdminBinding;

/// The only subject a cluster-admin binding may name: members of
/// `system:masters` bypass authorization, so binding them grants nothing.
fn is_exempt_subject(subject: &Value) -> bool {
    str_field(subject, "kind") == Some("Group")
        && str_field(subject, "name") == Some("system:masters")
}

impl Check for ClusterAdminBinding {
    fn meta(&self) -> &CheckMeta {
        &meta::RBAC_CLUSTER_ADMIN_BINDING
    }

    fn check(&self, object: &ObjectView<'_>, out: &mut Vec<Violation>) {
        let Some(kind @ (RbacKind::RoleBinding | RbacKind::ClusterRoleBinding)) =
            RbacKind::of(object)
        else {
            return;
        };
        let Some(role_ref) = field(object.value, "roleRef") else {
            return;
        };
        if str_field(role_ref, "kind") != Some("ClusterRole")
            || str_field(role_ref, "name") != Some("cluster-admin")
        {
            return;
        }
        let subjects = array_field(object.value, "subjects");
        if subjects.iter().all(is_exempt_subject) {
            return;
        }
        let mut names = Vec::new();
        let mut related = Vec::new();
        for (i, s) in subjects.iter().enumerate() {
            if is_exempt_subject(s) {
                continue;
            }
            let subject_kind = str_field(s, "kind").unwrap_or("subject");
            let name = str_field(s, "name").unwrap_or("");
            names.push(match str_field(s, "namespace").filter(|n| !n.is_empty()) {
                Some(ns) => format!("{subject_kind} \"{ns}/{name}\""),
                None => format!("{subject_kind} {name:?}"),
            });
            related.push(FieldPath::root().key("subjects").index(i));
        }
        let scope = match kind {
            RbacKind::RoleBinding => match object.namespace {
                Some(ns) => format!(" in namespace {ns:?}"),
                None => " in its namespace".to_owned(),
            },
            _ => String::new(),
        };
        let mut v = Violation::new(
            meta::RBAC_CLUSTER_ADMIN_BINDING.id.clone(),
            format!(
                "{} grants cluster-admin{scope} to {}",
                kind.as_str(),
                names.join(", ")
            ),
            FieldPath::root().key("roleRef").key("name"),
        )
        .with_related(related);
        v.severity = kind.severity(meta::RBAC_CLUSTER_ADMIN_BINDING.severity);
        out.push(v);
    }
}

//! Which requests a policy (or binding) applies to: Kubernetes'
//! `MatchResources` semantics plus Rampart's `kinds`, `namespaces` and
//! `subjects`.

use serde_json::Value;

use crate::PolicyError;
use crate::crd::{MatchPolicy, MatchResources, Operation, ResourceRule, Subject, SubjectKind};
use crate::selector::{Labels, ObjectLabels, Selector};
use rampart_core::request::Request;

/// A set of operations, as bits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct OpSet(u8);

impl OpSet {
    pub(crate) const ALL: OpSet = OpSet(0b1111);
    pub(crate) const CREATE_UPDATE: OpSet = OpSet(0b0011);

    pub(crate) fn bit(op: Operation) -> u8 {
        match op {
            Operation::Create => 1,
            Operation::Update => 2,
            Operation::Delete => 4,
            Operation::Connect => 8,
            Operation::All => 15,
        }
    }

    pub(crate) fn of(ops: &[Operation]) -> OpSet {
        OpSet(ops.iter().fold(0, |acc, op| acc | Self::bit(*op)))
    }

    pub(crate) fn contains(self, op: Operation) -> bool {
        self.0 & Self::bit(op) == Self::bit(op)
    }

    /// The single operations in the set.
    pub(crate) fn each(self) -> impl Iterator<Item = Operation> {
        [
            Operation::Create,
            Operation::Update,
            Operation::Delete,
            Operation::Connect,
        ]
        .into_iter()
        .filter(move |op| self.contains(*op))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RuleScope {
    All,
    Cluster,
    Namespaced,
}

/// A compiled resource rule.
#[derive(Clone, Debug)]
pub(crate) struct Rule {
    pub(crate) groups: Vec<String>,
    versions: Vec<String>,
    /// `(resource, subresource)`; `*` wildcards, subresource empty for the main resource.
    pub(crate) resources: Vec<(String, String)>,
    pub(crate) ops: OpSet,
    names: Vec<String>,
    scope: RuleScope,
}

fn has(list: &[String], value: &str) -> bool {
    list.iter().any(|x| x == "*" || x == value)
}

impl Rule {
    fn compile(rule: &ResourceRule, field: &str) -> Result<Rule, PolicyError> {
        let required = |list: &[String], what: &str| {
            if list.is_empty() {
                Err(
                    PolicyError::new(format!("{what} must list at least one entry (`*` for all)"))
                        .at_field(format!("{field}.{what}")),
                )
            } else {
                Ok(())
            }
        };
        required(&rule.api_groups, "apiGroups")?;
        required(&rule.api_versions, "apiVersions")?;
        required(&rule.resources, "resources")?;
        if rule.operations.is_empty() {
            return Err(PolicyError::new(
                "operations must list at least one of CREATE, UPDATE, DELETE, CONNECT or `*`",
            )
            .at_field(format!("{field}.operations")));
        }
        let scope = match rule.scope.as_deref() {
            None | Some("*") => RuleScope::All,
            Some("Cluster") => RuleScope::Cluster,
            Some("Namespaced") => RuleScope::Namespaced,
            Some(other) => {
                return Err(PolicyError::new(format!(
                    "unknown scope {other:?}: expected Cluster, Namespaced or *"
                ))
                .at_field(format!("{field}.scope")));
            }
        };
        let resources = rule
            .resources
            .iter()
            .map(|r| match r.split_once('/') {
                Some((res, sub)) => (res.to_owned(), sub.to_owned()),
                None => (r.clone(), String::new()),
            })
            .collect();
        Ok(Rule {
            groups: rule.api_groups.clone(),
            versions: rule.api_versions.clone(),
            resources,
            ops: OpSet::of(&rule.operations),
            names: rule.resource_names.clone(),
            scope,
        })
    }

    /// Kubernetes' `rules.Matcher` for one (group, version) the request may be seen as.
    fn matches(&self, req: &Request, group: &str, version: Option<&str>) -> bool {
        if !self.ops.contains(req.operation.into()) || !has(&self.groups, group) {
            return false;
        }
        if let Some(version) = version
            && !has(&self.versions, version)
        {
            return false;
        }
        let (res, sub) = (&req.resource.resource, &req.sub_resource);
        let resource_ok = self
            .resources
            .iter()
            .any(|(r, s)| (r == "*" || r == res) && (s == "*" || s == sub));
        if !resource_ok {
            return false;
        }
        if !self.names.is_empty() && !self.names.iter().any(|n| *n == req.name) {
            return false;
        }
        match self.scope {
            RuleScope::All => true,
            RuleScope::Namespaced => !req.is_namespace() && !req.namespace.is_empty(),
            RuleScope::Cluster => req.is_namespace() || req.namespace.is_empty(),
        }
    }
}

/// Other groups serving the same resource, which `matchPolicy: Equivalent`
/// treats as the same (the API server converts between them).
pub(crate) fn equivalent_groups(group: &str, resource: &str) -> &'static [&'static str] {
    match (group, resource) {
        ("apps" | "extensions", "deployments" | "daemonsets" | "replicasets") => {
            &["apps", "extensions"]
        }
        ("networking.k8s.io" | "extensions", "networkpolicies" | "ingresses") => {
            &["networking.k8s.io", "extensions"]
        }
        ("policy" | "extensions", "podsecuritypolicies") => &["policy", "extensions"],
        ("" | "events.k8s.io", "events") => &["", "events.k8s.io"],
        _ => &[],
    }
}

/// A kind selector: `Kind`, `group/Kind` (`core/Kind` for the core group) or `*`.
#[derive(Clone, Debug)]
pub(crate) struct KindSel {
    /// `None`: any group.
    pub(crate) group: Option<String>,
    /// `*` for any kind.
    pub(crate) kind: String,
}

impl KindSel {
    fn parse(s: &str, field: &str) -> Result<KindSel, PolicyError> {
        let bad = || {
            PolicyError::new(format!(
                "invalid kind {s:?}: expected `Kind`, `group/Kind`, `core/Kind` or `*`"
            ))
            .at_field(field.to_owned())
        };
        let (group, kind) = match s.split_once('/') {
            None => (None, s),
            Some(("core", k)) => (Some(String::new()), k),
            Some((g, k)) => (Some(g.to_owned()), k),
        };
        if kind.is_empty()
            || kind.contains('/')
            || group.as_deref().is_some_and(|g| g.contains('/'))
        {
            return Err(bad());
        }
        Ok(KindSel {
            group,
            kind: kind.to_owned(),
        })
    }

    fn matches(&self, group: &str, kind: &str) -> bool {
        self.group.as_deref().is_none_or(|g| g == "*" || g == group)
            && (self.kind == "*" || self.kind == kind)
    }
}

/// Where the labels of the request's namespace come from.
pub(crate) struct NamespaceLabels<'a> {
    pub(crate) name: &'a str,
    pub(crate) labels: Option<&'a Value>,
}

impl Labels for NamespaceLabels<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        match self.labels.and_then(|l| l.get(key)).and_then(Value::as_str) {
            Some(v) => Some(v),
            // The API server sets this label on every namespace.
            None if key == "kubernetes.io/metadata.name" => Some(self.name),
            None => None,
        }
    }
}

/// A compiled `MatchResources`.
#[derive(Clone, Debug)]
pub(crate) struct Matcher {
    pub(crate) rules: Vec<Rule>,
    exclude_rules: Vec<Rule>,
    pub(crate) kinds: Vec<KindSel>,
    pub(crate) kind_ops: OpSet,
    /// Neither rules nor kinds: every resource, for `kind_ops`.
    pub(crate) any_resource: bool,
    namespaces: Option<Vec<String>>,
    namespace_selector: Option<Selector>,
    object_selector: Option<Selector>,
    subjects: Vec<Subject>,
    equivalent: bool,
    /// An exclusion: namespace criteria never match cluster-scoped objects.
    exclusion: bool,
}

impl Matcher {
    /// Compiles `m`; `field` locates errors; `default_ops` applies to `kinds`
    /// and to a matcher without rules.
    pub(crate) fn compile(
        m: &MatchResources,
        field: &str,
        default_ops: OpSet,
        exclusion: bool,
    ) -> Result<Matcher, Vec<PolicyError>> {
        let mut errors = Vec::new();
        let mut rules = Vec::new();
        for (i, r) in m.resource_rules.iter().flatten().enumerate() {
            match Rule::compile(r, &format!("{field}.resourceRules[{i}]")) {
                Ok(r) => rules.push(r),
                Err(e) => errors.push(e),
            }
        }
        let mut exclude_rules = Vec::new();
        for (i, r) in m.exclude_resource_rules.iter().flatten().enumerate() {
            match Rule::compile(r, &format!("{field}.excludeResourceRules[{i}]")) {
                Ok(r) => exclude_rules.push(r),
                Err(e) => errors.push(e),
            }
        }
        let mut kinds = Vec::new();
        for (i, k) in m.kinds.iter().flatten().enumerate() {
            match KindSel::parse(k, &format!("{field}.kinds[{i}]")) {
                Ok(k) => kinds.push(k),
                Err(e) => errors.push(e),
            }
        }
        let kind_ops = match &m.operations {
            Some(ops) if ops.is_empty() => {
                errors.push(
                    PolicyError::new("operations must not be empty")
                        .at_field(format!("{field}.operations")),
                );
                default_ops
            }
            Some(ops) => OpSet::of(ops),
            None => default_ops,
        };
        let mut selector =
            |s: &Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector>,
             name: &str| {
                s.as_ref()
                    .and_then(|s| match Selector::compile(s, &format!("{field}.{name}")) {
                        Ok(s) => Some(s),
                        Err(e) => {
                            errors.push(e);
                            None
                        }
                    })
            };
        let namespace_selector = selector(&m.namespace_selector, "namespaceSelector");
        let object_selector = selector(&m.object_selector, "objectSelector");
        for (i, s) in m.subjects.iter().flatten().enumerate() {
            if s.name.is_empty() {
                errors.push(
                    PolicyError::new("name is required")
                        .at_field(format!("{field}.subjects[{i}].name")),
                );
            }
            if s.kind == SubjectKind::ServiceAccount
                && s.namespace.as_deref().is_none_or(str::is_empty)
            {
                errors.push(
                    PolicyError::new("a ServiceAccount subject needs a namespace")
                        .at_field(format!("{field}.subjects[{i}].namespace")),
                );
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let any_resource = rules.is_empty() && kinds.is_empty();
        Ok(Matcher {
            rules,
            exclude_rules,
            kinds,
            kind_ops,
            any_resource,
            namespaces: m.namespaces.clone(),
            namespace_selector: namespace_selector.filter(|s| !s.is_empty()),
            object_selector: object_selector.filter(|s| !s.is_empty()),
            subjects: m.subjects.clone().unwrap_or_default(),
            equivalent: m.match_policy.unwrap_or_default() == MatchPolicy::Equivalent,
            exclusion,
        })
    }

    /// Whether any criterion is set (an empty exclusion excludes nothing).
    pub(crate) fn is_unconstrained(&self) -> bool {
        self.any_resource
            && self.kind_ops == OpSet::ALL
            && self.exclude_rules.is_empty()
            && self.namespaces.is_none()
            && self.namespace_selector.is_none()
            && self.object_selector.is_none()
            && self.subjects.is_empty()
    }

    fn rules_match(&self, rules: &[Rule], req: &Request) -> bool {
        let (group, resource) = (req.resource.group.as_ref(), req.resource.resource.as_ref());
        if rules
            .iter()
            .any(|r| r.matches(req, group, Some(&req.resource.version)))
        {
            return true;
        }
        if !self.equivalent {
            return false;
        }
        // Equivalent: the same resource in any version, and in its other groups.
        let groups = equivalent_groups(group, resource);
        let others = std::iter::once(group).chain(groups.iter().copied());
        others
            .into_iter()
            .any(|g| rules.iter().any(|r| r.matches(req, g, None)))
    }

    /// Whether the request's resource and operation match (rules, kinds,
    /// excluded rules), ignoring selectors, namespaces and subjects.
    pub(crate) fn matches_resource(&self, req: &Request) -> bool {
        if !self.exclude_rules.is_empty() && self.rules_match(&self.exclude_rules, req) {
            return false;
        }
        if self.any_resource {
            return self.kind_ops.contains(req.operation.into());
        }
        (!self.rules.is_empty() && self.rules_match(&self.rules, req))
            || (self.kind_ops.contains(req.operation.into())
                && self
                    .kinds
                    .iter()
                    .any(|k| k.matches(&req.kind.group, &req.kind.kind)))
    }

    /// Every criterion: resource, namespaces, selectors, subjects.
    pub(crate) fn matches(&self, req: &Request, namespace: &NamespaceLabels<'_>) -> bool {
        self.matches_resource(req) && self.matches_context(req, namespace)
    }

    /// The criteria other than resource and operation.
    pub(crate) fn matches_context(&self, req: &Request, namespace: &NamespaceLabels<'_>) -> bool {
        let cluster_scoped = req.namespace.is_empty() && !req.is_namespace();
        if let Some(names) = &self.namespaces {
            if cluster_scoped {
                return false;
            }
            let ns = req.namespace.as_ref();
            let hit = names.iter().any(|n| match n.strip_suffix('*') {
                Some(prefix) => ns.starts_with(prefix),
                None => n == ns,
            });
            if !hit {
                return false;
            }
        }
        if let Some(sel) = &self.namespace_selector {
            if cluster_scoped {
                // Kubernetes never exempts cluster-scoped objects by namespace;
                // an exclusion by namespace does not reach them either.
                if self.exclusion {
                    return false;
                }
            } else if req.is_namespace() {
                let labels = req.object.as_ref().or(req.old_object.as_ref());
                let own = NamespaceLabels {
                    name: &req.name,
                    labels: labels
                        .and_then(|o| o.get("metadata"))
                        .and_then(|m| m.get("labels")),
                };
                if !sel.matches(&own) {
                    return false;
                }
            } else if !sel.matches(namespace) {
                return false;
            }
        }
        if let Some(sel) = &self.object_selector {
            let hit = [&req.object, &req.old_object]
                .into_iter()
                .flatten()
                .any(|o| sel.matches(&ObjectLabels::of(o)));
            if !hit {
                return false;
            }
        }
        if !self.subjects.is_empty() && !self.subjects.iter().any(|s| subject_matches(s, req)) {
            return false;
        }
        true
    }
}

fn subject_matches(s: &Subject, req: &Request) -> bool {
    let user = &req.user_info;
    let name_ok = |candidate: &str| s.name == "*" || s.name == candidate;
    match s.kind {
        SubjectKind::User => !user.username.is_empty() && name_ok(&user.username),
        SubjectKind::Group => user.groups.iter().any(|g| name_ok(g)),
        SubjectKind::ServiceAccount => {
            let Some(rest) = user.username.strip_prefix("system:serviceaccount:") else {
                return false;
            };
            let Some((ns, name)) = rest.split_once(':') else {
                return false;
            };
            s.namespace.as_deref() == Some(ns) && name_ok(name)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rampart_core::request::UserInfo;
    use serde_json::json;

    fn matcher(v: Value) -> Matcher {
        let m: MatchResources = serde_json::from_value(v).unwrap();
        Matcher::compile(&m, "spec.matchConstraints", OpSet::CREATE_UPDATE, false).unwrap()
    }

    fn req(v: Value) -> Request<'static> {
        Request::create(v).unwrap()
    }

    fn ns<'a>(name: &'a str, labels: Option<&'a Value>) -> NamespaceLabels<'a> {
        NamespaceLabels { name, labels }
    }

    #[test]
    fn resource_rules_with_wildcards_and_subresources() {
        let m = matcher(
            json!({"resourceRules": [{"apiGroups": ["apps"], "apiVersions": ["v1"],
            "operations": ["CREATE"], "resources": ["deployments"]}]}),
        );
        let d =
            req(json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "a"}}));
        assert!(m.matches_resource(&d));
        let mut upd = d.clone();
        upd.operation = rampart_core::request::Operation::Update;
        assert!(!m.matches_resource(&upd));
        let mut scale = d.clone();
        scale.sub_resource = "scale".into();
        assert!(!m.matches_resource(&scale));

        let all = matcher(
            json!({"resourceRules": [{"apiGroups": ["*"], "apiVersions": ["*"],
            "operations": ["*"], "resources": ["*"]}]}),
        );
        assert!(all.matches_resource(&d));
        assert!(
            !all.matches_resource(&scale),
            "`*` does not match subresources"
        );
        let subs = matcher(
            json!({"resourceRules": [{"apiGroups": ["*"], "apiVersions": ["*"],
            "operations": ["*"], "resources": ["*/scale"]}]}),
        );
        assert!(subs.matches_resource(&scale) && !subs.matches_resource(&d));
        let pods_all = matcher(
            json!({"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"],
            "operations": ["*"], "resources": ["pods/*"]}]}),
        );
        let mut pod = req(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}));
        assert!(pods_all.matches_resource(&pod));
        pod.sub_resource = "exec".into();
        pod.operation = rampart_core::request::Operation::Connect;
        assert!(pods_all.matches_resource(&pod));
    }

    #[test]
    fn equivalent_matches_legacy_groups_and_other_versions() {
        let rule = json!({"apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["deployments"]});
        let legacy = req(
            json!({"apiVersion": "extensions/v1beta1", "kind": "Deployment", "metadata": {"name": "a"}}),
        );
        let beta = req(
            json!({"apiVersion": "apps/v1beta2", "kind": "Deployment", "metadata": {"name": "a"}}),
        );
        let eq = matcher(json!({"resourceRules": [rule]}));
        assert!(eq.matches_resource(&legacy) && eq.matches_resource(&beta));
        let exact = matcher(json!({"resourceRules": [rule], "matchPolicy": "Exact"}));
        assert!(!exact.matches_resource(&legacy) && !exact.matches_resource(&beta));
    }

    #[test]
    fn excluded_rules_scope_and_names() {
        let m = matcher(json!({
            "resourceRules": [{"apiGroups": ["*"], "apiVersions": ["*"], "operations": ["CREATE"], "resources": ["*"], "scope": "Namespaced"}],
            "excludeResourceRules": [{"apiGroups": [""], "apiVersions": ["*"], "operations": ["*"], "resources": ["configmaps"], "resourceNames": ["skip-me"]}],
        }));
        let cm = |name: &str| {
            req(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}}))
        };
        assert!(m.matches_resource(&cm("a")));
        assert!(!m.matches_resource(&cm("skip-me")));
        let cr = req(
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "x"}}),
        );
        assert!(
            !m.matches_resource(&cr),
            "cluster-scoped object, Namespaced rule"
        );
        let nsobj =
            req(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}}));
        assert!(!m.matches_resource(&nsobj), "namespaces are cluster-scoped");
    }

    #[test]
    fn namespace_and_object_selectors() {
        let m = matcher(
            json!({"kinds": ["apps/Deployment"], "namespaceSelector": {"matchLabels": {"environment": "test"}},
            "objectSelector": {"matchExpressions": [{"key": "skip", "operator": "DoesNotExist"}]}}),
        );
        let d = req(
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "a", "namespace": "t"}}),
        );
        let test_labels = json!({"environment": "test"});
        assert!(m.matches(&d, &ns("t", Some(&test_labels))));
        assert!(!m.matches(&d, &ns("t", None)));
        let skipped = req(
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "a", "namespace": "t", "labels": {"skip": "y"}}}),
        );
        assert!(!m.matches(&skipped, &ns("t", Some(&test_labels))));
        // Cluster-scoped objects are never exempted by a namespace selector.
        let any = matcher(
            json!({"kinds": ["*"], "namespaceSelector": {"matchLabels": {"environment": "test"}}}),
        );
        let cr = req(
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "x"}}),
        );
        assert!(any.matches(&cr, &ns("", None)));
        // A Namespace is matched by its own labels.
        let nsobj = req(
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "t", "labels": {"environment": "test"}}}),
        );
        assert!(any.matches(&nsobj, &ns("t", None)));
        // The name label is always there.
        let by_name = matcher(
            json!({"kinds": ["*"], "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "t"}}}),
        );
        assert!(by_name.matches(&d, &ns("t", None)));
    }

    #[test]
    fn kinds_operations_namespaces_and_subjects() {
        let m = matcher(
            json!({"kinds": ["Pod", "core/ConfigMap"], "namespaces": ["team-*", "prod"],
            "subjects": [{"kind": "Group", "name": "dev"}, {"kind": "ServiceAccount", "name": "ci", "namespace": "tools"}]}),
        );
        let mut pod = req(
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "team-a"}}),
        );
        assert!(!m.matches(&pod, &ns("team-a", None)), "no subject");
        pod.user_info = UserInfo {
            username: "alice".into(),
            groups: vec!["dev".into()],
            ..Default::default()
        };
        assert!(m.matches(&pod, &ns("team-a", None)));
        pod.user_info = UserInfo {
            username: "system:serviceaccount:tools:ci".into(),
            ..Default::default()
        };
        assert!(m.matches(&pod, &ns("team-a", None)));
        pod.namespace = "other".into();
        assert!(!m.matches(&pod, &ns("other", None)));
        pod.namespace = "team-a".into();
        pod.operation = rampart_core::request::Operation::Delete;
        assert!(
            !m.matches(&pod, &ns("team-a", None)),
            "kinds default to CREATE and UPDATE"
        );
    }

    #[test]
    fn compile_errors_are_located() {
        let m: MatchResources = serde_json::from_value(
            json!({"resourceRules": [{"apiGroups": ["apps"], "apiVersions": ["v1"],
            "operations": ["CREATE"], "resources": [], "scope": "Global"}], "kinds": ["a/b/c"]}),
        )
        .unwrap();
        let errs =
            Matcher::compile(&m, "spec.matchConstraints", OpSet::CREATE_UPDATE, false).unwrap_err();
        let fields: Vec<_> = errs.iter().map(|e| e.field.clone().unwrap()).collect();
        assert_eq!(
            fields,
            [
                "spec.matchConstraints.resourceRules[0].resources",
                "spec.matchConstraints.kinds[0]"
            ]
        );
    }
}

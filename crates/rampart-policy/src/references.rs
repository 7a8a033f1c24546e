//! What a policy document refers to outside itself, read from its typed
//! spec: the kind of its parameter objects and the kinds it matches. The
//! controller and the webhook's policy watch decide from these what to
//! watch, so they read them the one way the compiler does.

use k8s_openapi::api::admissionregistration::v1::ParamKind;
use serde::Deserialize;
use serde_json::Value;

use crate::crd::MatchResources;

/// The part of a spec that ClusterPolicy, Policy and
/// ValidatingAdmissionPolicy share and that refers to other objects.
#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct References {
    #[serde(default)]
    param_kind: Option<ParamKind>,
    #[serde(default)]
    match_constraints: Option<MatchResources>,
}

/// The references of `policy`; none when its spec does not parse (such a
/// policy does not compile either).
fn references(policy: &Value) -> References {
    policy
        .get("spec")
        .and_then(|spec| References::deserialize(spec).ok())
        .unwrap_or_default()
}

/// The kind of a policy's parameter objects (`spec.paramKind`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ParamKindRef {
    pub group: String,
    pub version: String,
    pub kind: String,
}

/// `spec.paramKind` of a policy, if it has a complete one.
pub fn param_kind(policy: &Value) -> Option<ParamKindRef> {
    let pk = references(policy).param_kind?;
    let (api_version, kind) = (pk.api_version?, pk.kind?);
    let (group, version) = api_version
        .rsplit_once('/')
        .unwrap_or(("", api_version.as_str()));
    Some(ParamKindRef {
        group: group.to_owned(),
        version: version.to_owned(),
        kind,
    })
}

/// A kind a policy matches: by kind (`kinds`) or by resource
/// (`resourceRules`); `group: None` is any group.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct MatchedKind {
    pub group: Option<String>,
    pub kind: Option<String>,
    pub resource: Option<String>,
}

/// The kinds and resources a policy matches, wildcards and subresources
/// left out (they name no one kind to watch).
pub fn matched_kinds(policy: &Value) -> Vec<MatchedKind> {
    let Some(m) = references(policy).match_constraints else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for k in m.kinds.iter().flatten().filter(|k| !k.contains('*')) {
        let (group, kind) = match k.split_once('/') {
            Some(("core", kind)) => (Some(String::new()), kind),
            Some((g, kind)) => (Some(g.to_owned()), kind),
            None => (None, k.as_str()),
        };
        out.push(MatchedKind {
            group,
            kind: Some(kind.to_owned()),
            resource: None,
        });
    }
    for rule in m.resource_rules.iter().flatten() {
        for g in rule.api_groups.iter().filter(|g| !g.contains('*')) {
            for r in &rule.resources {
                if r.contains('*') || r.contains('/') {
                    continue;
                }
                out.push(MatchedKind {
                    group: Some(g.clone()),
                    kind: None,
                    resource: Some(r.clone()),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn param_kinds_split_group_and_version() {
        let p = |api: &str| json!({"spec": {"paramKind": {"apiVersion": api, "kind": "Limits"}}});
        assert_eq!(
            param_kind(&p("example.com/v1")),
            Some(ParamKindRef {
                group: "example.com".into(),
                version: "v1".into(),
                kind: "Limits".into()
            })
        );
        assert_eq!(param_kind(&p("v1")).unwrap().group, "");
        assert_eq!(
            param_kind(&json!({"spec": {"paramKind": {"kind": "X"}}})),
            None
        );
        assert_eq!(param_kind(&json!({})), None);
    }

    #[test]
    fn kinds_and_resources_without_wildcards_or_subresources() {
        let p = json!({"spec": {"matchConstraints": {
            "kinds": ["ConfigMap", "apps/Deployment", "core/Secret", "*"],
            "resourceRules": [{"apiGroups": ["networking.k8s.io"], "apiVersions": ["v1"],
                               "operations": ["CREATE"], "resources": ["ingresses", "pods/exec"]},
                              {"apiGroups": ["*"], "resources": ["x"]}]}}});
        let kinds = matched_kinds(&p);
        let k = |g: Option<&str>, kind: Option<&str>, r: Option<&str>| MatchedKind {
            group: g.map(Into::into),
            kind: kind.map(Into::into),
            resource: r.map(Into::into),
        };
        assert_eq!(
            kinds,
            [
                k(None, Some("ConfigMap"), None),
                k(Some("apps"), Some("Deployment"), None),
                k(Some(""), Some("Secret"), None),
                k(Some("networking.k8s.io"), None, Some("ingresses")),
            ]
        );
    }

    #[test]
    fn a_spec_that_does_not_parse_refers_to_nothing() {
        let p = json!({"spec": {"matchConstraints": {"kinds": "Pod"}, "paramKind": {"kind": "X", "apiVersion": "v1"}}});
        assert_eq!(matched_kinds(&p), []);
        assert_eq!(param_kind(&p), None);
    }
}

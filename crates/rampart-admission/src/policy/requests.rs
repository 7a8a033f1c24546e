//! Request rules: deny (or warn about, or audit) requests by user or group,
//! namespace, operation and resource, e.g. "contractors may not change
//! anything in prod-*". Each rule's ID is its `name`.

use std::sync::Arc;

use anyhow::Result;

use super::{Context, Match, Target, ValidationRule};
use crate::config::{Config, RequestRule, parse_operations};
use crate::decision::{Decision, Mode, RuleId};
use crate::glob::{Pattern, any_matches};
use crate::metrics::Metrics;
use crate::review::AdmissionRequest;

/// `resources` entries as RBAC spells them: `pods`, `pods/exec`, `pods/*`, `*`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceSpec {
    pub resource: String,
    /// `None` for the resource itself, `Some("*")` for any subresource.
    pub subresource: Option<String>,
}

impl ResourceSpec {
    pub fn parse(s: &str) -> Self {
        match s.split_once('/') {
            Some((r, sub)) => Self {
                resource: r.to_owned(),
                subresource: Some(sub.to_owned()),
            },
            None => Self {
                resource: s.to_owned(),
                subresource: None,
            },
        }
    }

    pub fn matches(&self, resource: &str, subresource: &str) -> bool {
        if self.resource == "*" && self.subresource.is_none() {
            return true;
        }
        (self.resource == "*" || self.resource == resource)
            && match &self.subresource {
                None => subresource.is_empty(),
                Some(s) => s == "*" || s == subresource,
            }
    }
}

/// Whether any of the RBAC-style `groups` and `resources` cover the request.
pub fn covers(groups: &[String], resources: &[ResourceSpec], r: &AdmissionRequest<'_>) -> bool {
    groups.iter().any(|g| g == "*" || *g == r.resource.group)
        && resources
            .iter()
            .any(|s| s.matches(&r.resource.resource, &r.sub_resource))
}

/// Matches for RBAC-style `groups` × `resources`: indexed by resource when
/// both are explicit, else under [`Target::Any`].
pub fn resource_matches(
    groups: &[String],
    resources: &[ResourceSpec],
    operations: &[crate::review::Operation],
) -> Vec<Match> {
    let wildcard = groups.iter().any(|g| g == "*") || resources.iter().any(|r| r.resource == "*");
    if wildcard {
        return vec![Match {
            group: "*".into(),
            target: Target::Any,
            operations: operations.to_vec(),
            subresources: vec!["*".into()],
        }];
    }
    let mut out = Vec::new();
    for g in groups {
        for r in resources {
            out.push(Match {
                group: g.clone().into(),
                target: Target::Resource(r.resource.clone().into()),
                operations: operations.to_vec(),
                subresources: vec![r.subresource.clone().unwrap_or_default().into()],
            });
        }
    }
    out
}

pub struct RequestRuleImpl {
    id: RuleId,
    mode: Mode,
    message: String,
    users: Vec<Pattern>,
    groups: Vec<Pattern>,
    namespaces: Vec<Pattern>,
    operations: Vec<crate::review::Operation>,
    api_groups: Vec<String>,
    resources: Vec<ResourceSpec>,
}

pub fn rules(config: &Config, metrics: &Metrics) -> Result<Vec<Arc<dyn ValidationRule>>> {
    config
        .request_rules
        .iter()
        .filter(|r| r.mode != Mode::Off)
        .map(|r| Ok(Arc::new(RequestRuleImpl::new(r, metrics)?) as Arc<dyn ValidationRule>))
        .collect()
}

impl RequestRuleImpl {
    fn new(r: &RequestRule, metrics: &Metrics) -> Result<Self> {
        let patterns = |v: &[String]| v.iter().map(Pattern::new).collect::<Vec<_>>();
        Ok(Self {
            id: RuleId::new(r.name.clone(), metrics),
            mode: r.mode,
            message: r
                .message
                .clone()
                .unwrap_or_else(|| "the request is not allowed by Rampart".to_owned()),
            users: patterns(&r.users),
            groups: patterns(&r.groups),
            namespaces: patterns(&r.namespaces),
            operations: parse_operations(&r.operations)?,
            api_groups: r.api_groups.clone(),
            resources: r.resources.iter().map(|s| ResourceSpec::parse(s)).collect(),
        })
    }

    fn user_matches(&self, r: &AdmissionRequest<'_>) -> bool {
        if self.users.is_empty() && self.groups.is_empty() {
            return true;
        }
        any_matches(&self.users, &r.user_info.username)
            || r.user_info
                .groups
                .iter()
                .any(|g| any_matches(&self.groups, g))
    }
}

impl ValidationRule for RequestRuleImpl {
    fn id(&self) -> &RuleId {
        &self.id
    }

    fn matches(&self) -> Vec<Match> {
        resource_matches(&self.api_groups, &self.resources, &self.operations)
    }

    fn validate(&self, cx: &Context<'_>, out: &mut Decision) {
        let r = cx.request;
        if !covers(&self.api_groups, &self.resources, r)
            || !any_matches(&self.namespaces, &r.namespace)
            || !self.user_matches(r)
        {
            return;
        }
        let what = if r.sub_resource.is_empty() {
            r.resource.resource.to_string()
        } else {
            format!("{}/{}", r.resource.resource, r.sub_resource)
        };
        let place = if r.namespace.is_empty() {
            String::new()
        } else {
            format!(" in namespace {:?}", r.namespace)
        };
        out.report(
            &self.id,
            self.mode,
            format!(
                "{}: {} (user {:?}, {} {what}{place})",
                self.id.id, self.message, r.user_info.username, r.operation
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_specs_follow_rbac() {
        let pods = ResourceSpec::parse("pods");
        assert!(pods.matches("pods", ""));
        assert!(!pods.matches("pods", "exec"));
        let exec = ResourceSpec::parse("pods/exec");
        assert!(exec.matches("pods", "exec"));
        assert!(!exec.matches("pods", ""));
        assert!(ResourceSpec::parse("pods/*").matches("pods", "attach"));
        assert!(ResourceSpec::parse("*").matches("secrets", "status"));
        assert!(ResourceSpec::parse("*/exec").matches("pods", "exec"));
    }
}

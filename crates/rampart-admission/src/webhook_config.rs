//! `rampart webhook-config`: the ValidatingWebhookConfiguration and
//! MutatingWebhookConfiguration that route exactly the requests the policy
//! set evaluates to the server, built so Rampart can never lock a cluster out:
//!
//! - `namespaceSelector` excludes kube-system, kube-node-lease, Rampart's own
//!   namespace and any configured exclusion (`kubernetes.io/metadata.name
//!   NotIn [...]`), so the control plane and Rampart itself keep working when
//!   Rampart is down.
//! - `matchConditions` skip node identities (`system:node:*`): mirror pods
//!   of static pods run whatever the API answers, so judging them only hides
//!   them; their namespaces are excluded anyway.
//! - `failurePolicy: Ignore` by default: an unreachable webhook lets requests
//!   through rather than blocking every pod in the cluster. `Fail` is
//!   stricter (nothing unchecked gets in) and safe only with several replicas,
//!   a PodDisruptionBudget and the exclusions above; choose it with
//!   `--failure-policy Fail`.
//! - `timeoutSeconds: 5` (the API server's default is 10), `sideEffects:
//!   None`, `admissionReviewVersions: [v1]`, `matchPolicy: Equivalent`.
//! - Namespace protection (DELETE of protected namespaces) is a separate
//!   webhook without a namespace selector: for Namespace objects the selector
//!   matches the namespace itself, so the general webhook would never see
//!   `kube-system` being deleted.

use std::collections::BTreeMap;

use anyhow::{Result, bail};
use base64::Engine as _;
use serde_json::{Value, json};

use crate::policy::{Match, PolicySet, Target};
use crate::review::Operation;

/// `failurePolicy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailurePolicy {
    Ignore,
    Fail,
}

impl FailurePolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            FailurePolicy::Ignore => "Ignore",
            FailurePolicy::Fail => "Fail",
        }
    }
}

/// How the API server reaches the webhook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientConfig {
    /// A Service in the cluster.
    Service {
        namespace: String,
        name: String,
        port: u16,
    },
    /// A URL (`https://host:port`, paths appended).
    Url(String),
}

#[derive(Clone, Debug)]
pub struct WebhookConfigOptions {
    /// Name of both configuration objects.
    pub name: String,
    pub client: ClientConfig,
    /// PEM bundle the API server verifies the serving certificate with.
    pub ca_bundle: Option<Vec<u8>>,
    pub timeout_seconds: u32,
    pub failure_policy: FailurePolicy,
    /// Extra namespaces to exclude beyond those the policy set excludes.
    pub exclude_namespaces: Vec<String>,
}

use rampart_core::kinds::resource_of;

/// Webhook `rules` for a list of matches: one rule per API group and set of
/// operations, resources merged and sorted.
fn rules(matches: &[Match]) -> Vec<Value> {
    let mut grouped: BTreeMap<(String, Vec<&'static str>), Vec<String>> = BTreeMap::new();
    for m in matches {
        let mut ops: Vec<Operation> = m.operations.clone();
        ops.sort();
        ops.dedup();
        let ops: Vec<&'static str> = ops.iter().map(|o| o.as_str()).collect();
        // A kind or resource in any group (a user policy's `kinds: [Pod]`)
        // registers that resource in every group, never every resource: a
        // `*/*` rule would put each write in the cluster (Nodes, Leases,
        // CSRs) behind the webhook.
        let (group, base) = match &m.target {
            Target::Any => ("*".to_owned(), "*".to_owned()),
            Target::Kind(k) => (m.group.to_string(), resource_of(&m.group, k)),
            Target::Resource(r) => (m.group.to_string(), r.to_string()),
        };
        let entry = grouped.entry((group, ops)).or_default();
        for sub in &m.subresources {
            let r = if base.contains('/') || sub.is_empty() {
                base.clone()
            } else {
                format!("{base}/{sub}")
            };
            if !entry.contains(&r) {
                entry.push(r);
            }
        }
    }
    grouped
        .into_iter()
        .map(|((group, ops), mut resources)| {
            resources.sort();
            json!({
                "apiGroups": [group],
                "apiVersions": ["*"],
                "operations": ops,
                "resources": resources,
                "scope": "*",
            })
        })
        .collect()
}

fn client_config(opts: &WebhookConfigOptions, path: &str) -> Value {
    let mut c = match &opts.client {
        ClientConfig::Service {
            namespace,
            name,
            port,
        } => json!({"service": {"namespace": namespace, "name": name, "path": path, "port": port}}),
        ClientConfig::Url(url) => json!({"url": format!("{}{path}", url.trim_end_matches('/'))}),
    };
    if let Some(ca) = &opts.ca_bundle {
        c["caBundle"] = json!(base64::engine::general_purpose::STANDARD.encode(ca));
    }
    c
}

fn webhook(
    opts: &WebhookConfigOptions,
    name: &str,
    path: &str,
    rules: Vec<Value>,
    excluded: Option<&[String]>,
    mutating: bool,
) -> Value {
    let mut w = json!({
        "name": name,
        "admissionReviewVersions": ["v1"],
        "sideEffects": "None",
        "timeoutSeconds": opts.timeout_seconds,
        "failurePolicy": opts.failure_policy.as_str(),
        "matchPolicy": "Equivalent",
        "clientConfig": client_config(opts, path),
    });
    if let Some(excluded) = excluded {
        w["namespaceSelector"] = json!({"matchExpressions": [{
            "key": "kubernetes.io/metadata.name",
            "operator": "NotIn",
            "values": excluded,
        }]});
        w["matchConditions"] = json!([{
            "name": "exclude-node-identities",
            "expression": "!request.userInfo.username.startsWith('system:node:')",
        }]);
    }
    if mutating {
        w["reinvocationPolicy"] = json!("IfNeeded");
    }
    w["rules"] = Value::Array(rules);
    w
}

/// Both configurations as multi-document YAML.
pub fn render(opts: &WebhookConfigOptions, set: &PolicySet) -> Result<String> {
    if !(1..=30).contains(&opts.timeout_seconds) {
        bail!(
            "timeoutSeconds must be between 1 and 30, got {}",
            opts.timeout_seconds
        );
    }
    let mut excluded: Vec<String> = set.excluded_namespaces().to_vec();
    for n in &opts.exclude_namespaces {
        if !excluded.contains(n) {
            excluded.push(n.clone());
        }
    }
    let (general, unexcluded, mutating) = set.all_matches();
    let mut validating = Vec::new();
    let general_rules = rules(&general);
    if !general_rules.is_empty() {
        validating.push(webhook(
            opts,
            "validate.rampart.dev",
            "/validate",
            general_rules,
            Some(&excluded),
            false,
        ));
    }
    let protection_rules = rules(&unexcluded);
    if !protection_rules.is_empty() {
        validating.push(webhook(
            opts,
            "namespaces.validate.rampart.dev",
            "/validate",
            protection_rules,
            None,
            false,
        ));
    }
    let mutating_rules = rules(&mutating);
    let mutating_hooks: Vec<Value> = if mutating_rules.is_empty() {
        Vec::new()
    } else {
        vec![webhook(
            opts,
            "mutate.rampart.dev",
            "/mutate",
            mutating_rules,
            Some(&excluded),
            true,
        )]
    };
    let metadata = json!({
        "name": opts.name,
        "labels": {"app.kubernetes.io/name": "rampart", "app.kubernetes.io/component": "admission"},
    });
    let docs = [
        json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingWebhookConfiguration",
            "metadata": metadata,
            "webhooks": validating,
        }),
        json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "MutatingWebhookConfiguration",
            "metadata": metadata,
            "webhooks": mutating_hooks,
        }),
    ];
    let mut out = String::new();
    for doc in &docs {
        out.push_str("---\n");
        out.push_str(
            &serde_saphyr::to_string(doc).map_err(|e| anyhow::anyhow!("rendering YAML: {e}"))?,
        );
        if !out.ends_with('\n') {
            out.push('\n');
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pluralises_like_kubernetes() {
        assert_eq!(resource_of("apps", "Deployment"), "deployments");
        assert_eq!(resource_of("example.com", "Policy"), "policies");
        assert_eq!(resource_of("example.com", "Ingress"), "ingresses");
        assert_eq!(resource_of("example.com", "Widget"), "widgets");
        assert_eq!(
            resource_of("gateway.networking.k8s.io", "Gateway"),
            "gateways"
        );
        assert_eq!(
            resource_of("networking.k8s.io", "NetworkPolicy"),
            "networkpolicies"
        );
        assert_eq!(resource_of("", "Endpoints"), "endpoints");
        assert_eq!(resource_of("*", "Deployment"), "deployments");
    }

    #[test]
    fn groups_rules_by_api_group_and_operations() {
        let ms = vec![
            Match::kind("", "Pod", &[Operation::Create, Operation::Update])
                .with_subresources(&["", "ephemeralcontainers"]),
            Match::kind(
                "apps",
                "Deployment",
                &[Operation::Update, Operation::Create],
            ),
            Match::kind(
                "apps",
                "StatefulSet",
                &[Operation::Create, Operation::Update],
            ),
        ];
        let r = rules(&ms);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0]["apiGroups"], json!([""]));
        assert_eq!(
            r[0]["resources"],
            json!(["pods", "pods/ephemeralcontainers"])
        );
        assert_eq!(r[1]["resources"], json!(["deployments", "statefulsets"]));
        assert_eq!(r[1]["operations"], json!(["CREATE", "UPDATE"]));
    }

    #[test]
    fn a_kind_in_any_group_is_one_resource_not_everything() {
        let any_group_pod = Match {
            group: "*".into(),
            target: Target::Kind("Pod".into()),
            operations: vec![Operation::Create],
            subresources: vec!["".into()],
        };
        let r = rules(&[any_group_pod]);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0]["apiGroups"], json!(["*"]));
        assert_eq!(r[0]["resources"], json!(["pods"]));
        let everything = Match {
            group: "*".into(),
            target: Target::Any,
            operations: vec![Operation::Create],
            subresources: vec!["*".into()],
        };
        assert_eq!(rules(&[everything])[0]["resources"], json!(["*/*"]));
    }
}

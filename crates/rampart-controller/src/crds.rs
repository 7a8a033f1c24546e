//! The CustomResourceDefinitions Rampart installs.
//!
//! `wgpolicyk8s.io/v1alpha2` `PolicyReport` (namespaced) and
//! `ClusterPolicyReport` (cluster-scoped) follow the Policy Report API of the
//! Kubernetes policy working group; the schema here is written by hand,
//! structural and minimal: the fields Rampart and the usual readers
//! (Policy Reporter, `kubectl get polr`) use, with unknown fields kept so
//! reports written by other tools stay valid.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};

use crate::apply::FIELD_MANAGER;

pub const REPORT_GROUP: &str = "wgpolicyk8s.io";
pub const REPORT_VERSION: &str = "v1alpha2";

fn report_schema() -> Value {
    let preserve = json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true});
    let object_ref = json!({
        "type": "object",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "namespace": {"type": "string"},
            "name": {"type": "string"},
            "uid": {"type": "string"},
            "resourceVersion": {"type": "string"},
            "fieldPath": {"type": "string"},
        },
        "x-kubernetes-map-type": "atomic",
    });
    let count = json!({"type": "integer", "minimum": 0});
    json!({
        "type": "object",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "scope": object_ref,
            "scopeSelector": preserve,
            "summary": {
                "type": "object",
                "properties": {
                    "pass": count, "fail": count, "warn": count, "error": count, "skip": count,
                },
            },
            "results": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["policy"],
                    "properties": {
                        "source": {"type": "string"},
                        "policy": {"type": "string"},
                        "rule": {"type": "string"},
                        "category": {"type": "string"},
                        "severity": {"type": "string", "enum": ["critical", "high", "low", "medium", "info"]},
                        "timestamp": {
                            "type": "object",
                            "properties": {
                                "seconds": {"type": "integer", "format": "int64"},
                                "nanos": {"type": "integer", "format": "int32"},
                            },
                        },
                        "result": {"type": "string", "enum": ["pass", "fail", "warn", "error", "skip"]},
                        "scored": {"type": "boolean"},
                        "message": {"type": "string"},
                        "properties": {"type": "object", "additionalProperties": {"type": "string"}},
                        "resources": {"type": "array", "items": object_ref},
                        "resourceSelector": preserve,
                    },
                },
            },
        },
    })
}

fn report_crd(kind: &str, plural: &str, short: &str, scope: &str) -> Value {
    let int_col =
        |name: &str, path: &str| json!({"name": name, "type": "integer", "jsonPath": path});
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": format!("{plural}.{REPORT_GROUP}"),
            "labels": {"app.kubernetes.io/managed-by": "rampart"},
        },
        "spec": {
            "group": REPORT_GROUP,
            "scope": scope,
            "names": {
                "kind": kind,
                "listKind": format!("{kind}List"),
                "plural": plural,
                "singular": kind.to_ascii_lowercase(),
                "shortNames": [short],
            },
            "versions": [{
                "name": REPORT_VERSION,
                "served": true,
                "storage": true,
                "schema": {"openAPIV3Schema": report_schema()},
                "additionalPrinterColumns": [
                    int_col("Pass", ".summary.pass"),
                    int_col("Fail", ".summary.fail"),
                    int_col("Warn", ".summary.warn"),
                    int_col("Error", ".summary.error"),
                    int_col("Skip", ".summary.skip"),
                    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                ],
            }],
        },
    })
}

/// `PolicyReport` and `ClusterPolicyReport`.
pub fn report_crds() -> Vec<Value> {
    vec![
        report_crd("PolicyReport", "policyreports", "polr", "Namespaced"),
        report_crd(
            "ClusterPolicyReport",
            "clusterpolicyreports",
            "cpolr",
            "Cluster",
        ),
    ]
}

/// Rampart's `ClusterPolicy` and `Policy` (from `rampart-policy`).
pub fn policy_crds() -> Vec<Value> {
    [
        rampart_policy::ClusterPolicy::crd(),
        rampart_policy::Policy::crd(),
    ]
    .iter()
    .map(|crd| serde_json::to_value(crd).expect("a CRD serializes"))
    .collect()
}

/// Every CRD Rampart installs.
pub fn all_crds() -> Vec<Value> {
    let mut crds = policy_crds();
    crds.extend(report_crds());
    crds
}

/// Applies every CRD and waits (up to `timeout`) until each is Established.
pub async fn install(client: &kube::Client, timeout: Duration) -> Result<()> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crds = all_crds();
    for crd in &crds {
        let name = crd["metadata"]["name"].as_str().unwrap_or_default();
        api.patch(
            name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(crd),
        )
        .await
        .with_context(|| format!("applying CRD {name}"))?;
    }
    let deadline = tokio::time::Instant::now() + timeout;
    for crd in &crds {
        let name = crd["metadata"]["name"].as_str().unwrap_or_default();
        loop {
            let got = api.get(name).await?;
            let established = got
                .status
                .and_then(|s| s.conditions)
                .unwrap_or_default()
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True");
            if established {
                break;
            }
            if tokio::time::Instant::now() > deadline {
                bail!("CRD {name} not Established within {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_crds_are_structural() {
        for crd in report_crds() {
            let parsed: CustomResourceDefinition = serde_json::from_value(crd).unwrap();
            assert_eq!(parsed.spec.group, REPORT_GROUP);
            assert_eq!(parsed.spec.versions.len(), 1);
        }
        assert_eq!(all_crds().len(), 4);
    }
}

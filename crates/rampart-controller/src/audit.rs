//! Background audit: live objects evaluated against the compiled policies,
//! and the results gathered into `wgpolicyk8s.io/v1alpha2` reports.
//!
//! One `PolicyReport` named [`REPORT_NAME`] per namespace (namespaced
//! objects) and one `ClusterPolicyReport` named [`REPORT_NAME`] (cluster-scoped
//! objects). A report's `summary` counts every result; its `results` list
//! keeps at most `max_results` of them, failures and errors first, and when
//! it had to leave some out it says how many in the annotation
//! [`ANNOTATION_OMITTED`], so a namespace with thousands of objects still
//! fits well inside etcd's object size limit.

use std::collections::BTreeMap;
use std::sync::Arc;

use rampart_policy::{Outcome, PolicySet, Request, ValidationAction};
use serde_json::{Value, json};

pub const REPORT_NAME: &str = "rampart";
pub const ANNOTATION_OMITTED: &str = "rampart.dev/omitted-results";
pub const SOURCE: &str = "rampart";

/// Which object a result is about.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey {
    pub api_version: String,
    pub kind: String,
    /// Empty for cluster-scoped objects.
    pub namespace: String,
    pub name: String,
}

impl ObjectKey {
    pub fn of(obj: &Value) -> Option<ObjectKey> {
        let s = |v: &Value| v.as_str().map(str::to_owned);
        Some(ObjectKey {
            api_version: s(&obj["apiVersion"])?,
            kind: s(&obj["kind"])?,
            namespace: s(&obj["metadata"]["namespace"]).unwrap_or_default(),
            name: s(&obj["metadata"]["name"])?,
        })
    }
}

/// The report result kinds, in wgpolicyk8s.io's spelling.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ResultKind {
    Fail,
    Error,
    Warn,
    Pass,
    Skip,
}

impl ResultKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ResultKind::Fail => "fail",
            ResultKind::Error => "error",
            ResultKind::Warn => "warn",
            ResultKind::Pass => "pass",
            ResultKind::Skip => "skip",
        }
    }
}

/// One result of one policy rule on one object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    pub policy: Arc<str>,
    pub rule: Option<Arc<str>>,
    pub result: ResultKind,
    pub severity: &'static str,
    pub message: String,
}

/// What the audit keeps of an object.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Audited {
    pub uid: String,
    pub resource_version: String,
    pub rows: Vec<Row>,
}

impl Audited {
    pub fn failures(&self) -> impl Iterator<Item = &Row> {
        self.rows
            .iter()
            .filter(|r| matches!(r.result, ResultKind::Fail | ResultKind::Error))
    }
}

/// Evaluates one live object as if it were being created, in its
/// Namespace `namespace` (for namespace selectors and `namespaceObject`).
pub fn evaluate(set: &PolicySet, obj: &Value, namespace: Option<&Value>) -> Vec<Row> {
    // What the API server adds is noise to the policies: an object that
    // still has managedFields is copied without them, others are borrowed.
    let has_managed_fields = obj.pointer("/metadata/managedFields").is_some();
    let req = if has_managed_fields {
        let mut obj = obj.clone();
        if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("managedFields");
        }
        Request::create(obj)
    } else {
        Request::create_borrowed(obj)
    };
    let Ok(mut req) = req else {
        return Vec::new();
    };
    if !req.is_namespace() {
        req.namespace_object = namespace.map(std::borrow::Cow::Borrowed);
    }
    let eval = set.evaluate(&req);
    eval.decisions
        .iter()
        .map(|d| {
            let result = match d.outcome {
                Outcome::Pass => ResultKind::Pass,
                Outcome::Skip => ResultKind::Skip,
                Outcome::Error => ResultKind::Error,
                Outcome::Fail if d.suppressed.is_some() => ResultKind::Skip,
                Outcome::Fail if d.actions.contains(ValidationAction::Deny) => ResultKind::Fail,
                Outcome::Fail => ResultKind::Warn,
            };
            Row {
                policy: Arc::from(d.policy.name.as_str()),
                rule: d.rule.clone(),
                result,
                severity: d.severity.as_str(),
                message: d.message.clone(),
            }
        })
        .collect()
}

/// The PolicyReport (for `namespace`) or ClusterPolicyReport (for `None`)
/// of the given objects, with at most `max_results` results listed.
pub fn build_report<'a>(
    namespace: Option<&str>,
    objects: impl IntoIterator<Item = (&'a ObjectKey, &'a Audited)>,
    max_results: usize,
    now: jiff::Timestamp,
) -> Value {
    let mut summary: BTreeMap<&'static str, u64> = ["pass", "fail", "warn", "error", "skip"]
        .into_iter()
        .map(|k| (k, 0))
        .collect();
    let mut listed: Vec<(ResultKind, &ObjectKey, &Audited, &Row)> = Vec::new();
    for (key, audited) in objects {
        for row in &audited.rows {
            *summary.entry(row.result.as_str()).or_default() += 1;
            listed.push((row.result, key, audited, row));
        }
    }
    // Failures first, then by object, then by policy/rule: stable output.
    listed.sort_by(|a, b| {
        (a.0, a.1, &a.3.policy, &a.3.rule).cmp(&(b.0, b.1, &b.3.policy, &b.3.rule))
    });
    let total = listed.len();
    listed.truncate(max_results);
    let omitted = total - listed.len();
    let seconds = now.as_second();
    let results: Vec<Value> = listed
        .into_iter()
        .map(|(kind, key, audited, row)| {
            let mut resource = json!({
                "apiVersion": key.api_version,
                "kind": key.kind,
                "name": key.name,
                "uid": audited.uid,
            });
            if !key.namespace.is_empty() {
                resource["namespace"] = json!(key.namespace);
            }
            let mut r = json!({
                "source": SOURCE,
                "policy": row.policy.as_ref(),
                "result": kind.as_str(),
                "severity": row.severity,
                "scored": true,
                "timestamp": {"seconds": seconds, "nanos": 0},
                "resources": [resource],
            });
            if let Some(rule) = &row.rule {
                r["rule"] = json!(rule.as_ref());
            }
            if !row.message.is_empty() {
                r["message"] = json!(row.message);
            }
            r
        })
        .collect();
    let mut metadata = json!({
        "name": REPORT_NAME,
        "labels": {"app.kubernetes.io/managed-by": "rampart"},
        "annotations": {ANNOTATION_OMITTED: omitted.to_string()},
    });
    let kind = match namespace {
        Some(ns) => {
            metadata["namespace"] = json!(ns);
            "PolicyReport"
        }
        None => "ClusterPolicyReport",
    };
    json!({
        "apiVersion": "wgpolicyk8s.io/v1alpha2",
        "kind": kind,
        "metadata": metadata,
        "summary": summary,
        "results": results,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set() -> PolicySet {
        let policy = json!({
            "apiVersion": "rampart.dev/v1alpha1", "kind": "ClusterPolicy",
            "metadata": {"name": "max-replicas"},
            "spec": {
                "matchConstraints": {"kinds": ["apps/Deployment"]},
                "validations": [{"name": "at-most-5", "expression": "object.spec.replicas <= 5"}],
            },
        });
        PolicySet::compile([policy]).unwrap()
    }

    fn deployment(name: &str, replicas: u32) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": "team", "uid": name},
            "spec": {"replicas": replicas}})
    }

    #[test]
    fn evaluates_and_caps_reports() {
        let set = set();
        let objs: Vec<(ObjectKey, Audited)> = (0..10)
            .map(|i| {
                let d = deployment(&format!("d{i}"), if i % 2 == 0 { 9 } else { 1 });
                let rows = evaluate(&set, &d, None);
                (
                    ObjectKey::of(&d).unwrap(),
                    Audited {
                        uid: format!("d{i}"),
                        resource_version: "1".into(),
                        rows,
                    },
                )
            })
            .collect();
        assert_eq!(objs[0].1.rows[0].result, ResultKind::Fail);
        assert_eq!(objs[1].1.rows[0].result, ResultKind::Pass);
        let report = build_report(
            Some("team"),
            objs.iter().map(|(k, a)| (k, a)),
            3,
            jiff::Timestamp::UNIX_EPOCH,
        );
        assert_eq!(report["summary"]["fail"], 5);
        assert_eq!(report["summary"]["pass"], 5);
        assert_eq!(report["results"].as_array().unwrap().len(), 3);
        assert_eq!(report["results"][0]["result"], "fail");
        assert_eq!(report["metadata"]["annotations"][ANNOTATION_OMITTED], "7");
        assert_eq!(report["kind"], "PolicyReport");
    }
}

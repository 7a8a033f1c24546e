//! A read-only view of one Kubernetes object, with its pod template found once.

use serde_json::Value;

use crate::FieldPath;
use crate::value::{field, str_field};

/// The nine kinds that carry a pod spec, and where it lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PodBearingKind {
    Pod,
    PodTemplate,
    Deployment,
    StatefulSet,
    DaemonSet,
    ReplicaSet,
    ReplicationController,
    Job,
    CronJob,
}

impl PodBearingKind {
    /// Every pod-bearing kind: the one list every crate uses.
    pub const ALL: [PodBearingKind; 9] = [
        PodBearingKind::Pod,
        PodBearingKind::PodTemplate,
        PodBearingKind::ReplicationController,
        PodBearingKind::Deployment,
        PodBearingKind::StatefulSet,
        PodBearingKind::DaemonSet,
        PodBearingKind::ReplicaSet,
        PodBearingKind::Job,
        PodBearingKind::CronJob,
    ];

    /// The kind's name (`Deployment`).
    pub fn kind(self) -> &'static str {
        use PodBearingKind::*;
        match self {
            Pod => "Pod",
            PodTemplate => "PodTemplate",
            ReplicationController => "ReplicationController",
            Deployment => "Deployment",
            StatefulSet => "StatefulSet",
            DaemonSet => "DaemonSet",
            ReplicaSet => "ReplicaSet",
            Job => "Job",
            CronJob => "CronJob",
        }
    }

    /// The API group served today (`apps`; core is empty); legacy groups
    /// (`extensions`) are only recognised, never produced.
    pub fn group(self) -> &'static str {
        use PodBearingKind::*;
        match self {
            Pod | PodTemplate | ReplicationController => "",
            Deployment | StatefulSet | DaemonSet | ReplicaSet => "apps",
            Job | CronJob => "batch",
        }
    }

    /// Recognises a pod-bearing kind by API group and kind, including the
    /// pre-`apps/v1` group versions that old manifests still use.
    pub fn from_group_kind(group: &str, kind: &str) -> Option<Self> {
        use PodBearingKind::*;
        // A match, not a search of ALL: this runs for every object viewed.
        let k = match kind {
            "Pod" => Pod,
            "PodTemplate" => PodTemplate,
            "ReplicationController" => ReplicationController,
            "Deployment" => Deployment,
            "StatefulSet" => StatefulSet,
            "DaemonSet" => DaemonSet,
            "ReplicaSet" => ReplicaSet,
            "Job" => Job,
            "CronJob" => CronJob,
            _ => return None,
        };
        let group_ok = match k {
            Pod | PodTemplate | ReplicationController => group.is_empty(),
            Deployment | DaemonSet | ReplicaSet => group == "apps" || group == "extensions",
            StatefulSet => group == "apps",
            Job => group == "batch",
            CronJob => group == "batch",
        };
        group_ok.then_some(k)
    }

    /// Path of the pod template (`metadata` + `spec`) within the object;
    /// empty for a Pod, whose own metadata and spec are the template.
    pub fn template_path(self) -> &'static [&'static str] {
        use PodBearingKind::*;
        match self {
            Pod => &[],
            PodTemplate => &["template"],
            Deployment | StatefulSet | DaemonSet | ReplicaSet | ReplicationController | Job => {
                &["spec", "template"]
            }
            CronJob => &["spec", "jobTemplate", "spec", "template"],
        }
    }

    /// Whether pods of this kind run to completion (probes matter less).
    pub fn runs_to_completion(self) -> bool {
        matches!(self, PodBearingKind::Job | PodBearingKind::CronJob)
    }
}

/// A pod's metadata and spec, wherever they sit in the enclosing object.
#[derive(Clone, Debug)]
pub struct PodTemplate<'a> {
    pub metadata: Option<&'a Value>,
    pub spec: &'a Value,
    /// Path of the template's `metadata`.
    pub metadata_path: FieldPath,
    /// Path of the template's `spec`.
    pub spec_path: FieldPath,
}

impl PodTemplate<'_> {
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.metadata
            .and_then(|m| field(m, "annotations"))
            .and_then(|a| str_field(a, key))
    }
}

/// One object under evaluation.
#[derive(Clone, Debug)]
pub struct ObjectView<'a> {
    pub value: &'a Value,
    pub api_version: &'a str,
    pub kind: &'a str,
    pub name: &'a str,
    pub namespace: Option<&'a str>,
    pub pod_kind: Option<PodBearingKind>,
    pub pod: Option<PodTemplate<'a>>,
}

impl<'a> ObjectView<'a> {
    /// Builds a view; returns `None` unless the value is an object with string
    /// `apiVersion` and `kind`.
    pub fn new(value: &'a Value) -> Option<Self> {
        let api_version = str_field(value, "apiVersion")?;
        let kind = str_field(value, "kind")?;
        let metadata = field(value, "metadata");
        let name = metadata
            .and_then(|m| str_field(m, "name").or_else(|| str_field(m, "generateName")))
            .unwrap_or("");
        let namespace = metadata.and_then(|m| str_field(m, "namespace"));
        let pod_kind = PodBearingKind::from_group_kind(group_of(api_version), kind);
        let pod = pod_kind.and_then(|k| pod_template(value, k));
        Some(Self {
            value,
            api_version,
            kind,
            name,
            namespace,
            pod_kind,
            pod,
        })
    }

    pub fn group(&self) -> &'a str {
        group_of(self.api_version)
    }

    pub fn metadata(&self) -> Option<&'a Value> {
        field(self.value, "metadata")
    }

    pub fn annotation(&self, key: &str) -> Option<&'a str> {
        self.metadata()
            .and_then(|m| field(m, "annotations"))
            .and_then(|a| str_field(a, key))
    }

    pub fn label(&self, key: &str) -> Option<&'a str> {
        self.metadata()
            .and_then(|m| field(m, "labels"))
            .and_then(|a| str_field(a, key))
    }
}

/// The API group of an `apiVersion` (`apps/v1` → `apps`, `v1` → core, the empty string).
pub fn group_of(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(g, _)| g)
}

fn pod_template(value: &Value, kind: PodBearingKind) -> Option<PodTemplate<'_>> {
    let mut base = FieldPath::root();
    let mut template = value;
    for key in kind.template_path() {
        template = field(template, key)?;
        base.push_key(*key);
    }
    let spec = field(template, "spec")?;
    spec.is_object().then(|| PodTemplate {
        metadata: field(template, "metadata"),
        spec,
        metadata_path: base.key("metadata"),
        spec_path: base.key("spec"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec_path(v: &Value) -> Option<String> {
        ObjectView::new(v)?.pod.map(|p| p.spec_path.to_string())
    }

    #[test]
    fn finds_the_pod_spec_in_every_pod_bearing_kind() {
        let spec = json!({"spec": {"containers": []}});
        let t = json!({"template": spec});
        let cases = [
            (
                json!({"apiVersion": "v1", "kind": "Pod", "spec": {"containers": []}}),
                "spec",
            ),
            (
                json!({"apiVersion": "v1", "kind": "PodTemplate", "template": spec}),
                "template.spec",
            ),
            (
                json!({"apiVersion": "v1", "kind": "ReplicationController", "spec": t}),
                "spec.template.spec",
            ),
            (
                json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": t}),
                "spec.template.spec",
            ),
            (
                json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "spec": t}),
                "spec.template.spec",
            ),
            (
                json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "spec": t}),
                "spec.template.spec",
            ),
            (
                json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "spec": t}),
                "spec.template.spec",
            ),
            (
                json!({"apiVersion": "batch/v1", "kind": "Job", "spec": t}),
                "spec.template.spec",
            ),
            (
                json!({"apiVersion": "batch/v1", "kind": "CronJob", "spec": {"jobTemplate": {"spec": t}}}),
                "spec.jobTemplate.spec.template.spec",
            ),
        ];
        for (obj, want) in cases {
            assert_eq!(spec_path(&obj).as_deref(), Some(want), "{obj}");
        }
    }

    #[test]
    fn every_pod_bearing_kind_is_recognised_by_its_name_and_group() {
        for k in PodBearingKind::ALL {
            assert_eq!(
                PodBearingKind::from_group_kind(k.group(), k.kind()),
                Some(k)
            );
        }
    }

    #[test]
    fn ignores_kinds_from_other_groups() {
        let v = json!({"apiVersion": "example.com/v1", "kind": "Deployment", "spec": {"template": {"spec": {}}}});
        assert!(ObjectView::new(&v).unwrap().pod.is_none());
        let v = json!({"apiVersion": "extensions/v1beta1", "kind": "Deployment", "spec": {"template": {"spec": {}}}});
        assert!(ObjectView::new(&v).unwrap().pod.is_some());
    }

    #[test]
    fn rejects_values_without_kind() {
        assert!(ObjectView::new(&json!({"apiVersion": "v1"})).is_none());
        assert!(ObjectView::new(&json!([1, 2])).is_none());
    }
}

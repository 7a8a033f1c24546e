//! The kinds a Kubernetes 1.37 API server serves out of the box, so the scanner
//! can tell a typo or a wrong `apiVersion` from a real object.

/// `(group, kind)` for every built-in kind, including legacy groups that old
/// manifests still use. The core group is the empty string.
const BUILT_IN: &[(&str, &str)] = &[
    ("", "Binding"),
    ("", "ComponentStatus"),
    ("", "ConfigMap"),
    ("", "Endpoints"),
    ("", "Event"),
    ("", "LimitRange"),
    ("", "List"),
    ("", "Namespace"),
    ("", "Node"),
    ("", "PersistentVolume"),
    ("", "PersistentVolumeClaim"),
    ("", "Pod"),
    ("", "PodTemplate"),
    ("", "ReplicationController"),
    ("", "ResourceQuota"),
    ("", "Secret"),
    ("", "Service"),
    ("", "ServiceAccount"),
    ("admissionregistration.k8s.io", "MutatingAdmissionPolicy"),
    (
        "admissionregistration.k8s.io",
        "MutatingAdmissionPolicyBinding",
    ),
    (
        "admissionregistration.k8s.io",
        "MutatingWebhookConfiguration",
    ),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"),
    (
        "admissionregistration.k8s.io",
        "ValidatingAdmissionPolicyBinding",
    ),
    (
        "admissionregistration.k8s.io",
        "ValidatingWebhookConfiguration",
    ),
    ("apiextensions.k8s.io", "CustomResourceDefinition"),
    ("apiregistration.k8s.io", "APIService"),
    ("apps", "ControllerRevision"),
    ("apps", "DaemonSet"),
    ("apps", "Deployment"),
    ("apps", "ReplicaSet"),
    ("apps", "StatefulSet"),
    ("authentication.k8s.io", "SelfSubjectReview"),
    ("authentication.k8s.io", "TokenRequest"),
    ("authentication.k8s.io", "TokenReview"),
    ("authorization.k8s.io", "LocalSubjectAccessReview"),
    ("authorization.k8s.io", "SelfSubjectAccessReview"),
    ("authorization.k8s.io", "SelfSubjectRulesReview"),
    ("authorization.k8s.io", "SubjectAccessReview"),
    ("autoscaling", "HorizontalPodAutoscaler"),
    ("autoscaling", "Scale"),
    ("batch", "CronJob"),
    ("batch", "Job"),
    ("certificates.k8s.io", "CertificateSigningRequest"),
    ("certificates.k8s.io", "ClusterTrustBundle"),
    ("certificates.k8s.io", "PodCertificateRequest"),
    ("coordination.k8s.io", "Lease"),
    ("coordination.k8s.io", "LeaseCandidate"),
    ("discovery.k8s.io", "EndpointSlice"),
    ("events.k8s.io", "Event"),
    ("extensions", "DaemonSet"),
    ("extensions", "Deployment"),
    ("extensions", "Ingress"),
    ("extensions", "NetworkPolicy"),
    ("extensions", "ReplicaSet"),
    ("flowcontrol.apiserver.k8s.io", "FlowSchema"),
    ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration"),
    ("internal.apiserver.k8s.io", "StorageVersion"),
    ("networking.k8s.io", "IPAddress"),
    ("networking.k8s.io", "Ingress"),
    ("networking.k8s.io", "IngressClass"),
    ("networking.k8s.io", "NetworkPolicy"),
    ("networking.k8s.io", "ServiceCIDR"),
    ("node.k8s.io", "RuntimeClass"),
    ("policy", "Eviction"),
    ("policy", "PodDisruptionBudget"),
    ("policy", "PodSecurityPolicy"),
    ("rbac.authorization.k8s.io", "ClusterRole"),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
    ("rbac.authorization.k8s.io", "Role"),
    ("rbac.authorization.k8s.io", "RoleBinding"),
    ("resource.k8s.io", "DeviceClass"),
    ("resource.k8s.io", "DeviceTaintRule"),
    ("resource.k8s.io", "ResourceClaim"),
    ("resource.k8s.io", "ResourceClaimTemplate"),
    ("resource.k8s.io", "ResourceSlice"),
    ("scheduling.k8s.io", "PriorityClass"),
    ("scheduling.k8s.io", "Workload"),
    ("storage.k8s.io", "CSIDriver"),
    ("storage.k8s.io", "CSINode"),
    ("storage.k8s.io", "CSIStorageCapacity"),
    ("storage.k8s.io", "StorageClass"),
    ("storage.k8s.io", "VolumeAttachment"),
    ("storage.k8s.io", "VolumeAttributesClass"),
    ("storagemigration.k8s.io", "StorageVersionMigration"),
    // Rampart's own API and the policy-report API it writes.
    ("rampart.dev", "ClusterPolicy"),
    ("rampart.dev", "Policy"),
    ("wgpolicyk8s.io", "ClusterPolicyReport"),
    ("wgpolicyk8s.io", "PolicyReport"),
];

/// What the table knows about a `(group, kind)` pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KindStatus {
    /// Served by a stock API server.
    BuiltIn,
    /// The kind exists, but in other groups: almost always a wrong `apiVersion`.
    WrongGroup(&'static [&'static str]),
    /// Not built in: a custom resource, or a typo.
    Unknown,
}

/// Whether `group` is served by a stock API server (or is Rampart's own);
/// kinds in other groups are custom resources.
pub fn is_built_in_group(group: &str) -> bool {
    BUILT_IN.iter().any(|&(g, _)| g == group)
}

pub fn kind_status(group: &str, kind: &str) -> KindStatus {
    if BUILT_IN.iter().any(|&(g, k)| g == group && k == kind) {
        return KindStatus::BuiltIn;
    }
    match groups_serving(kind) {
        Some(groups) => KindStatus::WrongGroup(groups),
        None => KindStatus::Unknown,
    }
}

fn groups_serving(kind: &str) -> Option<&'static [&'static str]> {
    // A handful of kinds exist in several groups; list them explicitly so the
    // error can name the right apiVersion without allocating.
    static TABLE: &[(&str, &[&str])] = &[
        ("DaemonSet", &["apps"]),
        ("Deployment", &["apps"]),
        ("ReplicaSet", &["apps"]),
        ("StatefulSet", &["apps"]),
        ("ControllerRevision", &["apps"]),
        ("Job", &["batch"]),
        ("CronJob", &["batch"]),
        ("Ingress", &["networking.k8s.io"]),
        ("NetworkPolicy", &["networking.k8s.io"]),
        ("Role", &["rbac.authorization.k8s.io"]),
        ("ClusterRole", &["rbac.authorization.k8s.io"]),
        ("RoleBinding", &["rbac.authorization.k8s.io"]),
        ("ClusterRoleBinding", &["rbac.authorization.k8s.io"]),
        ("PodDisruptionBudget", &["policy"]),
        ("HorizontalPodAutoscaler", &["autoscaling"]),
        ("StorageClass", &["storage.k8s.io"]),
        ("CustomResourceDefinition", &["apiextensions.k8s.io"]),
        ("Pod", &[""]),
        ("Service", &[""]),
        ("ConfigMap", &[""]),
        ("Secret", &[""]),
        ("ServiceAccount", &[""]),
        ("Namespace", &[""]),
        ("PodTemplate", &[""]),
        ("ReplicationController", &[""]),
        ("LimitRange", &[""]),
        ("ResourceQuota", &[""]),
        ("PersistentVolumeClaim", &[""]),
        ("PersistentVolume", &[""]),
    ];
    TABLE.iter().find(|(k, _)| *k == kind).map(|(_, g)| *g)
}

/// `apiVersion` spelled for a group, for messages (`apps/v1`, core `v1`).
pub fn suggested_api_version(group: &str) -> String {
    if group.is_empty() {
        "v1".to_owned()
    } else {
        format!("{group}/v1")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knows_built_in_kinds_and_spots_wrong_groups() {
        assert_eq!(kind_status("apps", "Deployment"), KindStatus::BuiltIn);
        assert_eq!(
            kind_status("", "Deployment"),
            KindStatus::WrongGroup(&["apps"])
        );
        assert_eq!(kind_status("example.com", "Widget"), KindStatus::Unknown);
        assert_eq!(kind_status("", "Pod"), KindStatus::BuiltIn);
        assert!(is_built_in_group("") && is_built_in_group("networking.k8s.io"));
        assert!(!is_built_in_group("cert-manager.io"));
    }
}

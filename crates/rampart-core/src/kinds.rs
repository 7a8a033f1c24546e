//! The one table of Kubernetes kinds: which kinds a 1.37 API server serves
//! out of the box (so the scanner can tell a typo or a wrong `apiVersion`
//! from a real object), their resource names as API discovery spells them,
//! and their scope. Every crate asks here; none keeps a list of its own.

/// Whether objects of a kind live in namespaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Cluster,
    Namespaced,
    /// A custom resource: decided by whether the object has a namespace.
    Unknown,
}

/// One built-in kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KindInfo {
    /// API group; the core group is the empty string.
    pub group: &'static str,
    pub kind: &'static str,
    /// The resource as discovery names it (`networkpolicies`); for a kind
    /// that only exists as a subresource, `resource/subresource`
    /// (`pods/eviction`), or empty when it has several parents (`Scale`).
    pub resource: &'static str,
    pub namespaced: bool,
}

const NAMESPACED: bool = true;
const CLUSTER: bool = false;

const fn kind(
    group: &'static str,
    kind: &'static str,
    resource: &'static str,
    namespaced: bool,
) -> KindInfo {
    KindInfo {
        group,
        kind,
        resource,
        namespaced,
    }
}

/// Every built-in kind, including legacy groups that old manifests still use
/// and Rampart's own and the policy-report API's kinds. Sorted by group and
/// kind; a test holds it to k8s-openapi's resource metadata.
#[rustfmt::skip]
const BUILT_IN: &[KindInfo] = &[
    kind("", "Binding", "bindings", NAMESPACED),
    kind("", "ComponentStatus", "componentstatuses", CLUSTER),
    kind("", "ConfigMap", "configmaps", NAMESPACED),
    kind("", "Endpoints", "endpoints", NAMESPACED),
    kind("", "Event", "events", NAMESPACED),
    kind("", "LimitRange", "limitranges", NAMESPACED),
    kind("", "List", "", CLUSTER),
    kind("", "Namespace", "namespaces", CLUSTER),
    kind("", "Node", "nodes", CLUSTER),
    kind("", "PersistentVolume", "persistentvolumes", CLUSTER),
    kind("", "PersistentVolumeClaim", "persistentvolumeclaims", NAMESPACED),
    kind("", "Pod", "pods", NAMESPACED),
    kind("", "PodTemplate", "podtemplates", NAMESPACED),
    kind("", "ReplicationController", "replicationcontrollers", NAMESPACED),
    kind("", "ResourceQuota", "resourcequotas", NAMESPACED),
    kind("", "Secret", "secrets", NAMESPACED),
    kind("", "Service", "services", NAMESPACED),
    kind("", "ServiceAccount", "serviceaccounts", NAMESPACED),
    kind("admissionregistration.k8s.io", "MutatingAdmissionPolicy", "mutatingadmissionpolicies", CLUSTER),
    kind("admissionregistration.k8s.io", "MutatingAdmissionPolicyBinding", "mutatingadmissionpolicybindings", CLUSTER),
    kind("admissionregistration.k8s.io", "MutatingWebhookConfiguration", "mutatingwebhookconfigurations", CLUSTER),
    kind("admissionregistration.k8s.io", "ValidatingAdmissionPolicy", "validatingadmissionpolicies", CLUSTER),
    kind("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding", "validatingadmissionpolicybindings", CLUSTER),
    kind("admissionregistration.k8s.io", "ValidatingWebhookConfiguration", "validatingwebhookconfigurations", CLUSTER),
    kind("apiextensions.k8s.io", "CustomResourceDefinition", "customresourcedefinitions", CLUSTER),
    kind("apiregistration.k8s.io", "APIService", "apiservices", CLUSTER),
    kind("apps", "ControllerRevision", "controllerrevisions", NAMESPACED),
    kind("apps", "DaemonSet", "daemonsets", NAMESPACED),
    kind("apps", "Deployment", "deployments", NAMESPACED),
    kind("apps", "ReplicaSet", "replicasets", NAMESPACED),
    kind("apps", "StatefulSet", "statefulsets", NAMESPACED),
    kind("authentication.k8s.io", "SelfSubjectReview", "selfsubjectreviews", CLUSTER),
    kind("authentication.k8s.io", "TokenRequest", "serviceaccounts/token", NAMESPACED),
    kind("authentication.k8s.io", "TokenReview", "tokenreviews", CLUSTER),
    kind("authorization.k8s.io", "LocalSubjectAccessReview", "localsubjectaccessreviews", NAMESPACED),
    kind("authorization.k8s.io", "SelfSubjectAccessReview", "selfsubjectaccessreviews", CLUSTER),
    kind("authorization.k8s.io", "SelfSubjectRulesReview", "selfsubjectrulesreviews", CLUSTER),
    kind("authorization.k8s.io", "SubjectAccessReview", "subjectaccessreviews", CLUSTER),
    kind("autoscaling", "HorizontalPodAutoscaler", "horizontalpodautoscalers", NAMESPACED),
    kind("autoscaling", "Scale", "", NAMESPACED),
    kind("batch", "CronJob", "cronjobs", NAMESPACED),
    kind("batch", "Job", "jobs", NAMESPACED),
    kind("certificates.k8s.io", "CertificateSigningRequest", "certificatesigningrequests", CLUSTER),
    kind("certificates.k8s.io", "ClusterTrustBundle", "clustertrustbundles", CLUSTER),
    kind("certificates.k8s.io", "PodCertificateRequest", "podcertificaterequests", NAMESPACED),
    kind("coordination.k8s.io", "Lease", "leases", NAMESPACED),
    kind("coordination.k8s.io", "LeaseCandidate", "leasecandidates", NAMESPACED),
    kind("discovery.k8s.io", "EndpointSlice", "endpointslices", NAMESPACED),
    kind("events.k8s.io", "Event", "events", NAMESPACED),
    kind("extensions", "DaemonSet", "daemonsets", NAMESPACED),
    kind("extensions", "Deployment", "deployments", NAMESPACED),
    kind("extensions", "Ingress", "ingresses", NAMESPACED),
    kind("extensions", "NetworkPolicy", "networkpolicies", NAMESPACED),
    kind("extensions", "ReplicaSet", "replicasets", NAMESPACED),
    kind("flowcontrol.apiserver.k8s.io", "FlowSchema", "flowschemas", CLUSTER),
    kind("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration", "prioritylevelconfigurations", CLUSTER),
    kind("internal.apiserver.k8s.io", "StorageVersion", "storageversions", CLUSTER),
    kind("lifecycle.k8s.io", "Eviction", "evictions", NAMESPACED),
    kind("lifecycle.k8s.io", "EvictionRequest", "evictionrequests", NAMESPACED),
    kind("networking.k8s.io", "IPAddress", "ipaddresses", CLUSTER),
    kind("networking.k8s.io", "Ingress", "ingresses", NAMESPACED),
    kind("networking.k8s.io", "IngressClass", "ingressclasses", CLUSTER),
    kind("networking.k8s.io", "NetworkPolicy", "networkpolicies", NAMESPACED),
    kind("networking.k8s.io", "ServiceCIDR", "servicecidrs", CLUSTER),
    kind("node.k8s.io", "RuntimeClass", "runtimeclasses", CLUSTER),
    kind("policy", "Eviction", "pods/eviction", NAMESPACED),
    kind("policy", "PodDisruptionBudget", "poddisruptionbudgets", NAMESPACED),
    kind("policy", "PodSecurityPolicy", "podsecuritypolicies", CLUSTER),
    kind("rampart.dev", "ClusterPolicy", "clusterpolicies", CLUSTER),
    kind("rampart.dev", "Policy", "policies", NAMESPACED),
    kind("rbac.authorization.k8s.io", "ClusterRole", "clusterroles", CLUSTER),
    kind("rbac.authorization.k8s.io", "ClusterRoleBinding", "clusterrolebindings", CLUSTER),
    kind("rbac.authorization.k8s.io", "Role", "roles", NAMESPACED),
    kind("rbac.authorization.k8s.io", "RoleBinding", "rolebindings", NAMESPACED),
    kind("resource.k8s.io", "DeviceClass", "deviceclasses", CLUSTER),
    kind("resource.k8s.io", "DeviceTaintRule", "devicetaintrules", CLUSTER),
    kind("resource.k8s.io", "ResourceClaim", "resourceclaims", NAMESPACED),
    kind("resource.k8s.io", "ResourceClaimTemplate", "resourceclaimtemplates", NAMESPACED),
    kind("resource.k8s.io", "ResourcePoolStatusRequest", "resourcepoolstatusrequests", CLUSTER),
    kind("resource.k8s.io", "ResourceSlice", "resourceslices", CLUSTER),
    kind("scheduling.k8s.io", "CompositePodGroup", "compositepodgroups", NAMESPACED),
    kind("scheduling.k8s.io", "PodGroup", "podgroups", NAMESPACED),
    kind("scheduling.k8s.io", "PriorityClass", "priorityclasses", CLUSTER),
    kind("scheduling.k8s.io", "Workload", "workloads", NAMESPACED),
    kind("storage.k8s.io", "CSIDriver", "csidrivers", CLUSTER),
    kind("storage.k8s.io", "CSINode", "csinodes", CLUSTER),
    kind("storage.k8s.io", "CSIStorageCapacity", "csistoragecapacities", NAMESPACED),
    kind("storage.k8s.io", "StorageClass", "storageclasses", CLUSTER),
    kind("storage.k8s.io", "VolumeAttachment", "volumeattachments", CLUSTER),
    kind("storage.k8s.io", "VolumeAttributesClass", "volumeattributesclasses", CLUSTER),
    kind("storagemigration.k8s.io", "StorageVersionMigration", "storageversionmigrations", CLUSTER),
    kind("wgpolicyk8s.io", "ClusterPolicyReport", "clusterpolicyreports", CLUSTER),
    kind("wgpolicyk8s.io", "PolicyReport", "policyreports", NAMESPACED),
];

/// Kinds that only travel in subresource requests (`kubectl exec` sends a
/// `PodExecOptions` to `pods/exec`); not objects a manifest holds.
const SUBRESOURCE_KINDS: &[(&str, &str, &str)] = &[
    ("", "PodExecOptions", "pods/exec"),
    ("", "PodAttachOptions", "pods/attach"),
    ("", "PodPortForwardOptions", "pods/portforward"),
    ("", "PodProxyOptions", "pods/proxy"),
    ("", "NodeProxyOptions", "nodes/proxy"),
    ("", "ServiceProxyOptions", "services/proxy"),
];

/// The built-in kind `group`/`kind`, if there is one.
pub fn lookup(group: &str, kind: &str) -> Option<&'static KindInfo> {
    BUILT_IN.iter().find(|k| k.group == group && k.kind == kind)
}

/// The resource (plural, lower case) of a kind, as API discovery spells it:
/// from the table for built-in kinds (`group` `*` takes any group; a
/// subresource kind gives `pods/exec`), else as CRDs spell their plurals.
pub fn resource_of(group: &str, kind: &str) -> String {
    let any = group == "*";
    BUILT_IN
        .iter()
        .map(|k| (k.group, k.kind, k.resource))
        .chain(SUBRESOURCE_KINDS.iter().copied())
        .find(|&(g, k, r)| (any || g == group) && k == kind && !r.is_empty())
        .map(|(_, _, r)| r.to_owned())
        .unwrap_or_else(|| guess_resource(kind))
}

/// The plural of a custom resource's kind: lower case, `s` → `ses`, a
/// consonant before `y` → `ies`, else `+s`; a vowel before the `y` takes an
/// `s` as CRDs spell it (`gateways`, where Kubernetes' RESTMapper guesses
/// `gatewaies`), and `…Endpoints` stays.
fn guess_resource(kind: &str) -> String {
    let lower = kind.to_ascii_lowercase();
    if lower.is_empty() || lower.ends_with("endpoints") {
        lower
    } else if lower.ends_with('s') {
        format!("{lower}es")
    } else if let Some(stem) = lower.strip_suffix('y')
        && !stem.ends_with(['a', 'e', 'i', 'o', 'u'])
    {
        format!("{stem}ies")
    } else {
        format!("{lower}s")
    }
}

/// The scope of a kind: known for built-in kinds (a kind of a built-in group
/// that the table lacks counts as namespaced), unknown for custom resources.
pub fn scope_of(group: &str, kind: &str) -> Scope {
    match lookup(group, kind) {
        Some(k) if k.namespaced => Scope::Namespaced,
        Some(_) => Scope::Cluster,
        None if is_built_in_group(group) => Scope::Namespaced,
        None => Scope::Unknown,
    }
}

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
    BUILT_IN.iter().any(|k| k.group == group)
}

pub fn kind_status(group: &str, kind: &str) -> KindStatus {
    if lookup(group, kind).is_some() {
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

    /// The table agrees with k8s-openapi's resource metadata for every kind
    /// it has (resource name and scope), and lists every one of them.
    #[test]
    fn table_matches_k8s_openapi() {
        use k8s_openapi::{
            ClusterResourceScope, NamespaceResourceScope, Resource, SubResourceScope,
        };
        use std::any::TypeId;
        fn check<T: Resource>() -> (String, String)
        where
            T::Scope: 'static,
        {
            let scope = TypeId::of::<T::Scope>();
            let want_namespaced = scope == TypeId::of::<NamespaceResourceScope>();
            let info = lookup(T::GROUP, T::KIND)
                .unwrap_or_else(|| panic!("{}/{} is missing from the table", T::GROUP, T::KIND));
            if scope == TypeId::of::<SubResourceScope>() {
                assert!(
                    info.resource.is_empty()
                        || info
                            .resource
                            .ends_with(&format!("/{}", T::URL_PATH_SEGMENT)),
                    "{}/{}: subresource {} but the table says {}",
                    T::GROUP,
                    T::KIND,
                    T::URL_PATH_SEGMENT,
                    info.resource
                );
            } else {
                assert!(want_namespaced || scope == TypeId::of::<ClusterResourceScope>());
                assert_eq!(
                    info.resource,
                    T::URL_PATH_SEGMENT,
                    "{}/{}",
                    T::GROUP,
                    T::KIND
                );
                assert_eq!(
                    info.namespaced,
                    want_namespaced,
                    "{}/{} scope",
                    T::GROUP,
                    T::KIND
                );
            }
            (T::GROUP.to_owned(), T::KIND.to_owned())
        }
        macro_rules! all {
            ($($($seg:ident)::+),* $(,)?) => { vec![$(check::<k8s_openapi::$($seg)::+>()),*] };
        }
        let checked = all!(
            api::core::v1::Binding,
            api::core::v1::ComponentStatus,
            api::core::v1::ConfigMap,
            api::core::v1::Endpoints,
            api::core::v1::Event,
            api::core::v1::LimitRange,
            api::core::v1::Namespace,
            api::core::v1::Node,
            api::core::v1::PersistentVolume,
            api::core::v1::PersistentVolumeClaim,
            api::core::v1::Pod,
            api::core::v1::PodTemplate,
            api::core::v1::ReplicationController,
            api::core::v1::ResourceQuota,
            api::core::v1::Secret,
            api::core::v1::Service,
            api::core::v1::ServiceAccount,
            api::admissionregistration::v1::MutatingAdmissionPolicy,
            api::admissionregistration::v1::MutatingAdmissionPolicyBinding,
            api::admissionregistration::v1::MutatingWebhookConfiguration,
            api::admissionregistration::v1::ValidatingAdmissionPolicy,
            api::admissionregistration::v1::ValidatingAdmissionPolicyBinding,
            api::admissionregistration::v1::ValidatingWebhookConfiguration,
            apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
            kube_aggregator::pkg::apis::apiregistration::v1::APIService,
            api::apps::v1::ControllerRevision,
            api::apps::v1::DaemonSet,
            api::apps::v1::Deployment,
            api::apps::v1::ReplicaSet,
            api::apps::v1::StatefulSet,
            api::authentication::v1::SelfSubjectReview,
            api::authentication::v1::TokenRequest,
            api::authentication::v1::TokenReview,
            api::authorization::v1::LocalSubjectAccessReview,
            api::authorization::v1::SelfSubjectAccessReview,
            api::authorization::v1::SelfSubjectRulesReview,
            api::authorization::v1::SubjectAccessReview,
            api::autoscaling::v1::HorizontalPodAutoscaler,
            api::autoscaling::v1::Scale,
            api::batch::v1::CronJob,
            api::batch::v1::Job,
            api::certificates::v1::CertificateSigningRequest,
            api::certificates::v1::ClusterTrustBundle,
            api::certificates::v1::PodCertificateRequest,
            api::coordination::v1::Lease,
            api::coordination::v1beta1::LeaseCandidate,
            api::discovery::v1::EndpointSlice,
            api::events::v1::Event,
            api::flowcontrol::v1::FlowSchema,
            api::flowcontrol::v1::PriorityLevelConfiguration,
            api::apiserverinternal::v1alpha1::StorageVersion,
            api::lifecycle::v1alpha1::Eviction,
            api::lifecycle::v1alpha1::EvictionRequest,
            api::networking::v1::IPAddress,
            api::networking::v1::Ingress,
            api::networking::v1::IngressClass,
            api::networking::v1::NetworkPolicy,
            api::networking::v1::ServiceCIDR,
            api::node::v1::RuntimeClass,
            api::policy::v1::Eviction,
            api::policy::v1::PodDisruptionBudget,
            api::rbac::v1::ClusterRole,
            api::rbac::v1::ClusterRoleBinding,
            api::rbac::v1::Role,
            api::rbac::v1::RoleBinding,
            api::resource::v1::DeviceClass,
            api::resource::v1::DeviceTaintRule,
            api::resource::v1::ResourceClaim,
            api::resource::v1::ResourceClaimTemplate,
            api::resource::v1alpha3::ResourcePoolStatusRequest,
            api::resource::v1::ResourceSlice,
            api::scheduling::v1alpha3::CompositePodGroup,
            api::scheduling::v1beta1::PodGroup,
            api::scheduling::v1::PriorityClass,
            api::scheduling::v1beta1::Workload,
            api::storage::v1::CSIDriver,
            api::storage::v1::CSINode,
            api::storage::v1::CSIStorageCapacity,
            api::storage::v1::StorageClass,
            api::storage::v1::VolumeAttachment,
            api::storage::v1::VolumeAttributesClass,
            api::storagemigration::v1::StorageVersionMigration
        );
        // Every k8s-openapi kind is in the table; the rest of the table is
        // legacy groups (extensions), List, and Rampart's own and the
        // policy-report API's kinds.
        let rest: Vec<_> = BUILT_IN
            .iter()
            .filter(|k| !checked.iter().any(|(g, n)| g == k.group && n == k.kind))
            .map(|k| format!("{}/{}", k.group, k.kind))
            .collect();
        assert_eq!(
            rest,
            [
                "/List",
                "extensions/DaemonSet",
                "extensions/Deployment",
                "extensions/Ingress",
                "extensions/NetworkPolicy",
                "extensions/ReplicaSet",
                "policy/PodSecurityPolicy",
                "rampart.dev/ClusterPolicy",
                "rampart.dev/Policy",
                "wgpolicyk8s.io/ClusterPolicyReport",
                "wgpolicyk8s.io/PolicyReport",
            ]
        );
    }

    #[test]
    fn resources_are_spelled_as_discovery_spells_them() {
        for (group, kind, resource) in [
            ("", "Pod", "pods"),
            ("apps", "Deployment", "deployments"),
            ("*", "Deployment", "deployments"),
            ("networking.k8s.io", "Ingress", "ingresses"),
            ("networking.k8s.io", "NetworkPolicy", "networkpolicies"),
            ("", "Endpoints", "endpoints"),
            ("", "PodExecOptions", "pods/exec"),
            ("policy", "Eviction", "pods/eviction"),
            ("rampart.dev", "ClusterPolicy", "clusterpolicies"),
            ("example.com", "Policy", "policies"),
            ("example.com", "Ingress", "ingresses"),
            ("example.com", "Widget", "widgets"),
            ("example.com", "ReplicaLimit", "replicalimits"),
            ("gateway.networking.k8s.io", "Gateway", "gateways"),
            ("example.com", "ConfigMap", "configmaps"),
        ] {
            assert_eq!(resource_of(group, kind), resource, "{group}/{kind}");
        }
    }

    #[test]
    fn scopes() {
        assert_eq!(scope_of("", "Namespace"), Scope::Cluster);
        assert_eq!(scope_of("apps", "Deployment"), Scope::Namespaced);
        assert_eq!(
            scope_of("rbac.authorization.k8s.io", "ClusterRole"),
            Scope::Cluster
        );
        assert_eq!(scope_of("rampart.dev", "ClusterPolicy"), Scope::Cluster);
        assert_eq!(scope_of("example.com", "Widget"), Scope::Unknown);
    }
}

//! What policies are evaluated against: an admission-like request.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use rampart_core::kinds::{Scope, resource_of, scope_of};

pub use rampart_core::request::{GroupVersionKind, GroupVersionResource, Operation};

/// Who made a request (Kubernetes' `UserInfo`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserInfo {
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub uid: String,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, Vec<String>>,
}

/// A request to evaluate policies against: the attributes of an
/// `admission.k8s.io/v1` `AdmissionRequest`, plus the namespace object when
/// the caller has it.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    pub uid: String,
    /// CREATE, UPDATE, DELETE or CONNECT.
    pub operation: Operation,
    pub kind: GroupVersionKind<'static>,
    pub resource: GroupVersionResource<'static>,
    /// The subresource (`status`, `scale`), or empty.
    pub sub_resource: String,
    pub name: String,
    /// The namespace of a namespaced object (the name of a Namespace object
    /// itself); empty for other cluster-scoped objects.
    pub namespace: String,
    /// The new object; `None` for DELETE.
    pub object: Option<Value>,
    /// The existing object; `None` for CREATE.
    pub old_object: Option<Value>,
    pub user_info: UserInfo,
    pub dry_run: bool,
    /// The operation's options (`CreateOptions`, ...), if any.
    pub options: Option<Value>,
    /// The object's Namespace, for `namespaceObject` and namespace selectors.
    pub namespace_object: Option<Value>,
}

/// A request that cannot be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RequestError(pub String);

impl Request {
    /// The offline request for a manifest: CREATE of `object`, by no one in
    /// particular. The resource is derived from the kind; the namespace is
    /// the object's, `default` for a namespaced built-in kind without one.
    pub fn create(object: Value) -> Result<Request, RequestError> {
        Self::for_object(Operation::Create, Some(object), None)
    }

    /// A request for `operation` on `object` (and `old_object` for UPDATE and
    /// DELETE), with kind, resource, name and namespace taken from the objects.
    pub fn for_object(
        operation: Operation,
        object: Option<Value>,
        old_object: Option<Value>,
    ) -> Result<Request, RequestError> {
        let Some(source) = object.as_ref().or(old_object.as_ref()) else {
            return Err(RequestError(
                "a request needs an object or an old object".into(),
            ));
        };
        let str_at = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
        let api_version = str_at(source, "apiVersion")
            .ok_or_else(|| RequestError("the object has no apiVersion".into()))?;
        let kind =
            str_at(source, "kind").ok_or_else(|| RequestError("the object has no kind".into()))?;
        let (group, version) = match api_version.rsplit_once('/') {
            Some((g, v)) => (g.to_owned(), v.to_owned()),
            None => (String::new(), api_version.clone()),
        };
        let metadata = source.get("metadata");
        let name = metadata
            .and_then(|m| str_at(m, "name").or_else(|| str_at(m, "generateName")))
            .unwrap_or_default();
        let own_namespace = metadata
            .and_then(|m| str_at(m, "namespace"))
            .filter(|n| !n.is_empty());
        let namespace = if group.is_empty() && kind == "Namespace" {
            name.clone()
        } else {
            match scope_of(&group, &kind) {
                Scope::Cluster => String::new(),
                Scope::Namespaced => own_namespace.unwrap_or_else(|| "default".into()),
                Scope::Unknown => own_namespace.unwrap_or_default(),
            }
        };
        let resource = GroupVersionResource {
            group: group.clone().into(),
            version: version.clone().into(),
            resource: resource_of(&group, &kind).into(),
        };
        Ok(Request {
            uid: String::new(),
            operation,
            kind: GroupVersionKind {
                group: group.into(),
                version: version.into(),
                kind: kind.into(),
            },
            resource,
            sub_resource: String::new(),
            name,
            namespace,
            object,
            old_object,
            user_info: UserInfo::default(),
            dry_run: false,
            options: None,
            namespace_object: None,
        })
    }

    /// Parses an `admission.k8s.io/v1` `AdmissionRequest` (the `request` of
    /// an AdmissionReview), as a webhook receives it.
    pub fn from_admission_request(value: &Value) -> Result<Request, RequestError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Raw<'a> {
            #[serde(default)]
            uid: String,
            #[serde(borrow)]
            kind: GroupVersionKind<'a>,
            #[serde(borrow)]
            resource: GroupVersionResource<'a>,
            #[serde(default)]
            sub_resource: String,
            #[serde(default)]
            name: String,
            #[serde(default)]
            namespace: String,
            operation: String,
            #[serde(default)]
            user_info: UserInfo,
            #[serde(default)]
            object: Option<Value>,
            #[serde(default)]
            old_object: Option<Value>,
            #[serde(default)]
            dry_run: Option<bool>,
            #[serde(default)]
            options: Option<Value>,
        }
        let raw = Raw::deserialize(value)
            .map_err(|e| RequestError(format!("invalid AdmissionRequest: {e}")))?;
        let Some(operation) = Operation::parse(&raw.operation) else {
            return Err(RequestError(format!(
                "invalid AdmissionRequest: unknown operation {:?}",
                raw.operation
            )));
        };
        Ok(Request {
            uid: raw.uid,
            operation,
            kind: raw.kind.into_owned(),
            resource: raw.resource.into_owned(),
            sub_resource: raw.sub_resource,
            name: raw.name,
            namespace: raw.namespace,
            object: raw.object.filter(|v| !v.is_null()),
            old_object: raw.old_object.filter(|v| !v.is_null()),
            user_info: raw.user_info,
            dry_run: raw.dry_run.unwrap_or(false),
            options: raw.options.filter(|v| !v.is_null()),
            namespace_object: None,
        })
    }

    #[must_use]
    pub fn with_user(mut self, user: UserInfo) -> Self {
        self.user_info = user;
        self
    }

    #[must_use]
    pub fn with_namespace_object(mut self, namespace: Option<Value>) -> Self {
        self.namespace_object = namespace;
        self
    }

    /// Whether the request is for a Namespace object.
    pub fn is_namespace(&self) -> bool {
        self.resource.group.is_empty() && self.resource.resource == "namespaces"
    }

    /// The `request` CEL variable: the AdmissionRequest without `object` and
    /// `oldObject`, every string field present (empty when unset), as
    /// Kubernetes' typed request has them.
    pub fn to_request_json(&self) -> Value {
        json!({
            "uid": self.uid,
            "kind": self.kind,
            "resource": self.resource,
            "subResource": self.sub_resource,
            "requestKind": self.kind,
            "requestResource": self.resource,
            "requestSubResource": self.sub_resource,
            "name": self.name,
            "namespace": self.namespace,
            "operation": self.operation.as_str(),
            "userInfo": self.user_info,
            "dryRun": self.dry_run,
            "options": self.options,
        })
    }

    /// `namespace/name` or `name`.
    pub fn display_name(&self) -> String {
        if self.namespace.is_empty() || self.is_namespace() {
            format!("{} {}", self.kind.kind, self.name)
        } else {
            format!("{} {}/{}", self.kind.kind, self.namespace, self.name)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guesses_resources_like_kubernetes() {
        for (kind, resource) in [
            ("Pod", "pods"),
            ("Deployment", "deployments"),
            ("Ingress", "ingresses"),
            ("NetworkPolicy", "networkpolicies"),
            ("Endpoints", "endpoints"),
            ("ClusterPolicy", "clusterpolicies"),
            ("ConfigMap", "configmaps"),
            ("ReplicaLimit", "replicalimits"),
        ] {
            assert_eq!(resource_of("example.com", kind), resource, "{kind}");
        }
    }

    #[test]
    fn offline_requests_take_scope_and_namespace_from_the_object() {
        let r = Request::create(json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web"}}))
        .unwrap();
        assert_eq!(r.namespace, "default");
        assert_eq!(r.resource.resource, "deployments");
        assert_eq!(r.resource.group, "apps");
        let r = Request::create(json!({"apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole", "metadata": {"name": "x", "namespace": "ignored"}}))
        .unwrap();
        assert_eq!(r.namespace, "");
        let r = Request::create(json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": "prod"}}))
        .unwrap();
        assert!(r.is_namespace());
        assert_eq!(r.namespace, "prod");
        let r = Request::create(json!({"apiVersion": "example.com/v1", "kind": "Widget",
            "metadata": {"name": "w"}}))
        .unwrap();
        assert_eq!(r.namespace, "");
        let req = r.to_request_json();
        assert_eq!(req["operation"], "CREATE");
        assert_eq!(req["resource"]["resource"], "widgets");
        assert!(req.get("object").is_none());
    }

    #[test]
    fn parses_admission_requests() {
        let r = Request::from_admission_request(&json!({
            "uid": "1", "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "ns", "operation": "DELETE",
            "userInfo": {"username": "alice", "groups": ["dev"]},
            "oldObject": {"apiVersion": "v1", "kind": "Pod"}, "object": null
        }))
        .unwrap();
        assert_eq!(r.operation, Operation::Delete);
        assert!(r.object.is_none() && r.old_object.is_some());
        assert_eq!(r.user_info.groups, ["dev"]);
        assert!(Request::from_admission_request(&json!({"operation": "*"})).is_err());
    }
}

//! The one request model every evaluation path shares: what is asked of
//! the API server. A webhook's request borrows from the review body; a
//! scan's owns what it built from a file.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::kinds::{Scope, resource_of, scope_of};

/// The operation of a request (`request.operation` of an AdmissionReview).
/// A policy's pattern of operations, which may be `*`, is another type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Operation {
    Create,
    Update,
    Delete,
    Connect,
}

impl Operation {
    pub const ALL: [Operation; 4] = [
        Operation::Create,
        Operation::Update,
        Operation::Delete,
        Operation::Connect,
    ];

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "CREATE" => Some(Operation::Create),
            "UPDATE" => Some(Operation::Update),
            "DELETE" => Some(Operation::Delete),
            "CONNECT" => Some(Operation::Connect),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "CREATE",
            Operation::Update => "UPDATE",
            Operation::Delete => "DELETE",
            Operation::Connect => "CONNECT",
        }
    }

    /// 0 to 3, for tables indexed by operation.
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Operation {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Cow::<'de, str>::deserialize(d)?;
        Operation::parse(&s).ok_or_else(|| {
            serde::de::Error::custom(format_args!(
                "unknown operation {s:?}: expected CREATE, UPDATE, DELETE or CONNECT"
            ))
        })
    }
}

impl Serialize for Operation {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// `group`, `version`, `kind` of a request's object; borrowed from the
/// request body where it can be (a webhook), owned where it must be.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct GroupVersionKind<'a> {
    #[serde(borrow, default)]
    pub group: Cow<'a, str>,
    #[serde(borrow, default)]
    pub version: Cow<'a, str>,
    #[serde(borrow, default)]
    pub kind: Cow<'a, str>,
}

impl GroupVersionKind<'_> {
    pub fn into_owned(self) -> GroupVersionKind<'static> {
        GroupVersionKind {
            group: Cow::Owned(self.group.into_owned()),
            version: Cow::Owned(self.version.into_owned()),
            kind: Cow::Owned(self.kind.into_owned()),
        }
    }
}

/// `group`, `version`, `resource` (plural, lower case) of a request.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct GroupVersionResource<'a> {
    #[serde(borrow, default)]
    pub group: Cow<'a, str>,
    #[serde(borrow, default)]
    pub version: Cow<'a, str>,
    #[serde(borrow, default)]
    pub resource: Cow<'a, str>,
}

impl GroupVersionResource<'_> {
    pub fn into_owned(self) -> GroupVersionResource<'static> {
        GroupVersionResource {
            group: Cow::Owned(self.group.into_owned()),
            version: Cow::Owned(self.version.into_owned()),
            resource: Cow::Owned(self.resource.into_owned()),
        }
    }
}

/// Who made a request (Kubernetes' `UserInfo`). Deserialised owned (not
/// borrowed), so a file's `userInfo` is a `UserInfo<'static>`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserInfo<'a> {
    #[serde(default)]
    pub username: Cow<'a, str>,
    #[serde(default)]
    pub uid: Cow<'a, str>,
    #[serde(default)]
    pub groups: Vec<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<Cow<'a, str>, Vec<Cow<'a, str>>>,
}

impl UserInfo<'_> {
    pub fn into_owned(self) -> UserInfo<'static> {
        let owned = |s: Cow<'_, str>| Cow::Owned(s.into_owned());
        UserInfo {
            username: owned(self.username),
            uid: owned(self.uid),
            groups: self.groups.into_iter().map(owned).collect(),
            extra: self
                .extra
                .into_iter()
                .map(|(k, v)| (owned(k), v.into_iter().map(owned).collect()))
                .collect(),
        }
    }
}

/// A request to evaluate policies against: the attributes of an
/// `admission.k8s.io/v1` `AdmissionRequest`, plus the namespace object when
/// the caller has it. The webhook's borrows the review body and the objects
/// it parsed; a scan's owns the object it read.
#[derive(Clone, Debug, PartialEq)]
pub struct Request<'a> {
    pub uid: Cow<'a, str>,
    /// CREATE, UPDATE, DELETE or CONNECT.
    pub operation: Operation,
    pub kind: GroupVersionKind<'a>,
    pub resource: GroupVersionResource<'a>,
    /// The subresource (`status`, `scale`), or empty.
    pub sub_resource: Cow<'a, str>,
    pub name: Cow<'a, str>,
    /// The namespace of a namespaced object (the name of a Namespace object
    /// itself); empty for other cluster-scoped objects.
    pub namespace: Cow<'a, str>,
    /// The new object; `None` for DELETE.
    pub object: Option<Cow<'a, Value>>,
    /// The existing object; `None` for CREATE.
    pub old_object: Option<Cow<'a, Value>>,
    pub user_info: UserInfo<'a>,
    pub dry_run: bool,
    /// The operation's options (`CreateOptions`, ...), if any.
    pub options: Option<Cow<'a, Value>>,
    /// The object's Namespace, for `namespaceObject` and namespace selectors.
    pub namespace_object: Option<Cow<'a, Value>>,
}

/// A request that cannot be built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestError(pub String);

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RequestError {}

impl Request<'static> {
    /// The offline request for a manifest: CREATE of `object`, by no one in
    /// particular. The resource is derived from the kind; the namespace is
    /// the object's, `default` for a namespaced built-in kind without one.
    pub fn create(object: Value) -> Result<Self, RequestError> {
        Self::for_object(Operation::Create, Some(object), None)
    }

    /// A request for `operation` on `object` (and `old_object` for UPDATE and
    /// DELETE), with kind, resource, name and namespace taken from the objects.
    pub fn for_object(
        operation: Operation,
        object: Option<Value>,
        old_object: Option<Value>,
    ) -> Result<Self, RequestError> {
        Request::for_objects(
            operation,
            object.map(Cow::Owned),
            old_object.map(Cow::Owned),
        )
    }

    /// Parses an `admission.k8s.io/v1` `AdmissionRequest` (the `request` of
    /// an AdmissionReview), as a webhook receives it.
    pub fn from_admission_request(value: &Value) -> Result<Self, RequestError> {
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
            user_info: UserInfo<'static>,
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
        let present = |v: Option<Value>| v.filter(|v| !v.is_null()).map(Cow::Owned);
        Ok(Request {
            uid: raw.uid.into(),
            operation,
            kind: raw.kind.into_owned(),
            resource: raw.resource.into_owned(),
            sub_resource: raw.sub_resource.into(),
            name: raw.name.into(),
            namespace: raw.namespace.into(),
            object: present(raw.object),
            old_object: present(raw.old_object),
            user_info: raw.user_info,
            dry_run: raw.dry_run.unwrap_or(false),
            options: present(raw.options),
            namespace_object: None,
        })
    }
}

impl<'a> Request<'a> {
    /// CREATE of a borrowed object: [`Request::create`] without copying
    /// the object (the audit of a live object, a scan).
    pub fn create_borrowed(object: &'a Value) -> Result<Self, RequestError> {
        Self::for_objects(Operation::Create, Some(Cow::Borrowed(object)), None)
    }

    fn for_objects(
        operation: Operation,
        object: Option<Cow<'a, Value>>,
        old_object: Option<Cow<'a, Value>>,
    ) -> Result<Self, RequestError> {
        let Some(source) = object.as_deref().or(old_object.as_deref()) else {
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
            uid: Cow::Borrowed(""),
            operation,
            kind: GroupVersionKind {
                group: group.into(),
                version: version.into(),
                kind: kind.into(),
            },
            resource,
            sub_resource: Cow::Borrowed(""),
            name: name.into(),
            namespace: namespace.into(),
            object,
            old_object,
            user_info: UserInfo::default(),
            dry_run: false,
            options: None,
            namespace_object: None,
        })
    }

    #[must_use]
    pub fn with_user(mut self, user: UserInfo<'a>) -> Self {
        self.user_info = user;
        self
    }

    #[must_use]
    pub fn with_namespace_object(mut self, namespace: Option<Value>) -> Self {
        self.namespace_object = namespace.map(Cow::Owned);
        self
    }

    /// The new object, if any.
    pub fn object(&self) -> Option<&Value> {
        self.object.as_deref()
    }

    /// The existing object, if any.
    pub fn old_object(&self) -> Option<&Value> {
        self.old_object.as_deref()
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

//! What a check is and what it reports.

use std::borrow::Cow;

use crate::object::ObjectView;
use crate::{FieldPath, Severity};

/// Describes a check for people: shown in reports, SARIF rules and docs.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct CheckMeta {
    /// Stable identifier, usable in `rampart.dev/ignore-<id>` annotations,
    /// so it only contains characters valid in an annotation key.
    pub id: Cow<'static, str>,
    pub title: Cow<'static, str>,
    pub severity: Severity,
    pub category: Category,
    /// One line: why this matters.
    pub why: Cow<'static, str>,
    /// One line: how to fix it.
    pub fix: Cow<'static, str>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Category {
    PodSecurityStandards,
    Images,
    Resources,
    Workloads,
    Namespaces,
    Rbac,
    Policy,
}

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Category::PodSecurityStandards => "pod-security-standards",
            Category::Images => "images",
            Category::Resources => "resources",
            Category::Workloads => "workloads",
            Category::Namespaces => "namespaces",
            Category::Rbac => "rbac",
            Category::Policy => "policy",
        }
    }
}

/// One problem a check found in one object.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Violation {
    pub check_id: Cow<'static, str>,
    /// Overrides the check's default severity when the context changes the stakes
    /// (a ClusterRole is broader than a Role).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
    pub message: String,
    /// The offending field, or where the missing field belongs.
    pub path: FieldPath,
    /// Further offending fields of the same violation.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub related: Vec<FieldPath>,
}

impl Violation {
    pub fn new(
        check_id: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
        path: FieldPath,
    ) -> Self {
        Self {
            check_id: check_id.into(),
            severity: None,
            message: message.into(),
            path,
            related: Vec::new(),
        }
    }

    #[must_use]
    pub fn with_related(mut self, related: Vec<FieldPath>) -> Self {
        self.related = related;
        self
    }

    #[must_use]
    pub fn with_severity(mut self, severity: Severity) -> Self {
        self.severity = Some(severity);
        self
    }
}

/// A check over a single object. Checks are stateless and shared across threads.
pub trait Check: Send + Sync {
    fn meta(&self) -> &CheckMeta;

    /// Appends what is wrong with `object` to `out`; appends nothing when it is fine.
    fn check(&self, object: &ObjectView<'_>, out: &mut Vec<Violation>);
}

/// A check over everything a scan sees at once, for problems that are about
/// what is missing (a namespace without a ResourceQuota) rather than about
/// one object's fields.
pub trait CorpusCheck: Send + Sync {
    fn meta(&self) -> &CheckMeta;

    /// Appends `(index into objects, violation)` for each problem found.
    fn check_all(&self, objects: &[ObjectView<'_>], out: &mut Vec<(usize, Violation)>);
}

//! Policies as data: Rampart's `ClusterPolicy`/`Policy` resources and
//! Kubernetes' native `ValidatingAdmissionPolicy`, compiled once into a
//! [`PolicySet`] and evaluated against admission-like [`Request`]s by the
//! CLI (`rampart scan --policy`, `rampart test`), the webhook and the
//! controller alike.
//!
//! ```
//! use rampart_policy::{PolicySet, Request, Outcome};
//! use serde_json::json;
//!
//! let policy = json!({
//!     "apiVersion": "rampart.dev/v1alpha1", "kind": "ClusterPolicy",
//!     "metadata": {"name": "max-replicas"},
//!     "spec": {
//!         "matchConstraints": {"kinds": ["apps/Deployment"]},
//!         "validations": [{"name": "at-most-5", "expression": "object.spec.replicas <= 5"}],
//!     },
//! });
//! let set = PolicySet::compile([policy]).unwrap();
//! let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment",
//!     "metadata": {"name": "web"}, "spec": {"replicas": 6}});
//! let result = set.evaluate(&Request::create(deployment).unwrap());
//! assert!(!result.allowed());
//! let d = &result.decisions[0];
//! assert_eq!((d.outcome, d.check_id().as_str()), (Outcome::Fail, "max-replicas/at-most-5"));
//! assert_eq!(d.message, "failed expression: object.spec.replicas <= 5");
//! ```
//!
//! See `docs/policies.md` for the resource format and what of
//! ValidatingAdmissionPolicy is supported.

// Policy errors carry their location (source, policy, field, position) as
// plain fields for callers to read; they are only built on the cold path.
#![allow(clippy::result_large_err)]

mod builtin;
pub mod crd;
mod decision;
mod error;
mod eval;
mod last_good;
mod load;
mod matching;
mod references;

mod selector;
mod set;
mod store;
pub mod testing;

pub use crd::{
    ClusterPolicy, ClusterPolicySpec, FailurePolicy, Operation, Policy, PolicySpec, PolicyStatus,
    Reason, ValidationAction, crds_yaml, default_builtin_policy,
};
pub use decision::{Actions, AppliedPatch, Decision, Evaluation, Outcome, PolicyId, PolicyKind};
pub use error::{ErrorList, PolicyError};
pub use last_good::{Compiled, LastGood, Rejected};
pub use load::{LoadStats, load_policy_paths, read_documents};
pub use rampart_core::request::{
    GroupVersionKind, GroupVersionResource, Request, RequestError, UserInfo,
};
pub use references::{MatchedKind, ParamKindRef, matched_kinds, param_kind};
pub use set::{CompileOptions, Document, PolicySet, RequestKey, policy_label};
pub use store::{PolicyStore, ReloadSummary};

/// Whether a document is a policy document (ClusterPolicy, Policy,
/// ValidatingAdmissionPolicy or its binding) rather than a workload to scan.
pub fn is_policy_document(value: &serde_json::Value) -> bool {
    let api_version = value
        .get("apiVersion")
        .and_then(|v| v.as_str())
        .unwrap_or("");
    let kind = value.get("kind").and_then(|v| v.as_str()).unwrap_or("");
    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    matches!(
        (group, kind),
        ("rampart.dev", "ClusterPolicy" | "Policy")
            | (
                "admissionregistration.k8s.io",
                "ValidatingAdmissionPolicy" | "ValidatingAdmissionPolicyBinding"
            )
    )
}

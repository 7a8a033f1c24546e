//! What evaluating a policy set against a request produces.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use rampart_core::{CheckMeta, FieldPath, Severity};
use serde::Serialize;
use serde_json::Value;

use crate::crd::{Reason, ValidationAction};

/// The kind of a policy document.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum PolicyKind {
    ClusterPolicy,
    Policy,
    ValidatingAdmissionPolicy,
}

impl PolicyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyKind::ClusterPolicy => "ClusterPolicy",
            PolicyKind::Policy => "Policy",
            PolicyKind::ValidatingAdmissionPolicy => "ValidatingAdmissionPolicy",
        }
    }
}

/// Which policy (and, for a ValidatingAdmissionPolicy, which binding) a
/// decision comes from.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyId {
    pub kind: PolicyKind,
    pub name: String,
    /// The namespace of a namespaced `Policy`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The ValidatingAdmissionPolicyBinding.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub binding: Option<String>,
}

impl fmt::Display for PolicyId {
    /// `ClusterPolicy 'x'`, `Policy 'ns/x'`, `ValidatingAdmissionPolicy 'p' with binding 'b'`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} '", self.kind.as_str())?;
        if let Some(ns) = &self.namespace {
            write!(f, "{ns}/")?;
        }
        write!(f, "{}'", self.name)?;
        if let Some(b) = &self.binding {
            write!(f, " with binding '{b}'")?;
        }
        Ok(())
    }
}

/// The set of actions enforcing a failed validation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Actions(u8);

impl Actions {
    pub const NONE: Actions = Actions(0);

    pub fn of(actions: &[ValidationAction]) -> Actions {
        Actions(actions.iter().fold(0, |a, x| a | Self::bit(*x)))
    }

    fn bit(a: ValidationAction) -> u8 {
        match a {
            ValidationAction::Deny => 1,
            ValidationAction::Warn => 2,
            ValidationAction::Audit => 4,
        }
    }

    pub fn contains(self, a: ValidationAction) -> bool {
        self.0 & Self::bit(a) != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = ValidationAction> {
        [
            ValidationAction::Deny,
            ValidationAction::Warn,
            ValidationAction::Audit,
        ]
        .into_iter()
        .filter(move |a| self.contains(*a))
    }
}

impl Serialize for Actions {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

/// The outcome of one validation (or of a whole policy, when it was skipped
/// or could not be evaluated).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The validation held.
    Pass,
    /// The validation was false (or a built-in check found a problem).
    Fail,
    /// Evaluation failed; enforced as a failure under `failurePolicy: Fail`,
    /// ignored (and reported) under `Ignore`.
    Error,
    /// The policy matched the resource but did not apply: a match condition
    /// was false, or no params were found with `parameterNotFoundAction: Allow`.
    Skip,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::Error => "error",
            Outcome::Skip => "skip",
        }
    }
}

/// One result of one policy on one request.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    pub policy: Arc<PolicyId>,
    /// The validation's name (or index), the built-in check's ID; `None` for
    /// a result about the whole policy (skipped, params, match conditions).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<Arc<str>>,
    /// The policy field the result is about: `spec.validations[0].expression`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub outcome: Outcome,
    /// How a failure (or an error under `failurePolicy: Fail`) is enforced;
    /// empty otherwise.
    pub actions: Actions,
    pub severity: Severity,
    /// Why it failed, errored or was skipped; empty for a pass.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub message: String,
    pub reason: Reason,
    /// The offending field of the object, when known (built-in checks).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<FieldPath>,
    /// The parameter object (`namespace/name`) the policy was evaluated with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub param: Option<String>,
    /// Why `messageExpression` could not be used (the static message was).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_expression_error: Option<String>,
    /// Why the result is silenced, from a `rampart.dev/ignore-<id>` annotation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suppressed: Option<String>,
    /// The rule's description for reports (`<policy>/<rule>` as its ID).
    #[serde(skip)]
    pub meta: Option<Arc<CheckMeta>>,
}

impl Decision {
    /// A failure or error that is enforced (has actions).
    pub fn is_violation(&self) -> bool {
        matches!(self.outcome, Outcome::Fail | Outcome::Error) && !self.actions.is_empty()
    }

    pub fn denies(&self) -> bool {
        self.is_violation() && self.actions.contains(ValidationAction::Deny)
    }

    /// `<policy>/<rule>`: the finding ID in scans.
    pub fn check_id(&self) -> String {
        match &self.rule {
            Some(rule) => format!("{}/{rule}", self.policy.name),
            None => self.policy.name.clone(),
        }
    }

    /// The message the API server answers with when this decision denies
    /// the request: `ValidatingAdmissionPolicy 'p' with binding 'b' denied request: <message>`.
    pub fn admission_message(&self) -> String {
        format!("{} denied request: {}", self.policy, self.message)
    }
}

/// A patch a mutation made, as JSON Patch operations on the object as it
/// was before that mutation.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppliedPatch {
    pub policy: Arc<PolicyId>,
    pub mutation: Arc<str>,
    pub operations: json_patch::Patch,
}

/// Everything one evaluation produced.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Evaluation {
    /// Per matching policy (binding, param) and validation, in policy order.
    pub decisions: Vec<Decision>,
    /// Patches made by mutations, in the order they were applied.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub patches: Vec<AppliedPatch>,
    /// The object after every mutation, when a mutation changed it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patched_object: Option<Value>,
    /// Audit annotations: `<policy>/<key>` from auditAnnotations, and
    /// `validation.policy.admission.k8s.io/validation_failure` for failures
    /// with the Audit action.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub audit_annotations: BTreeMap<String, String>,
    /// Warnings for the client (failures with the Warn action).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl Evaluation {
    /// Whether the request is admitted: no enforced failure with Deny.
    pub fn allowed(&self) -> bool {
        !self.decisions.iter().any(Decision::denies)
    }

    /// The decisions that deny the request.
    pub fn denials(&self) -> impl Iterator<Item = &Decision> {
        self.decisions.iter().filter(|d| d.denies())
    }

    /// The decisions that are enforced in any way (Deny, Warn or Audit).
    pub fn violations(&self) -> impl Iterator<Item = &Decision> {
        self.decisions.iter().filter(|d| d.is_violation())
    }

    /// The API server's message for the first denial, if any.
    pub fn denial_message(&self) -> Option<String> {
        self.denials().next().map(Decision::admission_message)
    }

    /// Every mutation's operations, concatenated: applied in order to the
    /// original object they give [`Evaluation::patched_object`].
    pub fn json_patch(&self) -> json_patch::Patch {
        json_patch::Patch(
            self.patches
                .iter()
                .flat_map(|p| p.operations.0.iter().cloned())
                .collect(),
        )
    }
}

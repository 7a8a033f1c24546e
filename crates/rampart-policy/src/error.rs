//! Errors in policy documents, located by source, policy and field.

use std::fmt;

/// A problem with a policy document: malformed, wrong kind, missing or
/// unknown field, CEL that does not compile, a dangling reference.
///
/// Rendered as `source: Kind "name": field: line L, column C: message`, every
/// part but the message being optional.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyError {
    /// File (and document) the policy came from, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// `ClusterPolicy "require-labels"`, `ValidatingAdmissionPolicy "x"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// Path of the offending field: `spec.validations[2].expression`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// 1-based line and column inside a CEL expression.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
    pub message: String,
}

impl PolicyError {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            source: None,
            policy: None,
            field: None,
            line: None,
            column: None,
            message: message.into(),
        }
    }

    #[must_use]
    pub fn in_source(mut self, source: Option<&str>) -> Self {
        if self.source.is_none() {
            self.source = source.map(str::to_owned);
        }
        self
    }

    #[must_use]
    pub fn in_policy(mut self, policy: impl Into<String>) -> Self {
        self.policy = Some(policy.into());
        self
    }

    #[must_use]
    pub fn at_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    #[must_use]
    pub fn at_position(mut self, line: usize, column: usize) -> Self {
        self.line = Some(line);
        self.column = Some(column);
        self
    }

    /// An error in a CEL expression, with its position.
    pub fn cel(field: impl Into<String>, error: &rampart_cel::CompileError) -> Self {
        Self::new(error.message.clone())
            .at_field(field)
            .at_position(error.line, error.column)
    }
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(source) = &self.source {
            write!(f, "{source}: ")?;
        }
        if let Some(policy) = &self.policy {
            write!(f, "{policy}: ")?;
        }
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        if let (Some(line), Some(column)) = (self.line, self.column) {
            write!(f, "line {line}, column {column}: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for PolicyError {}

/// Shows a list of errors one per line.
pub struct ErrorList<'a>(pub &'a [PolicyError]);

impl fmt::Display for ErrorList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

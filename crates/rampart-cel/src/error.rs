//! Error types.

use std::fmt;
use std::time::Duration;

/// What kind of problem a [`CompileError`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CompileErrorKind {
    /// The source does not parse.
    Syntax,
    /// The source exceeds [`Limits::max_expression_bytes`](crate::Limits::max_expression_bytes).
    TooLong,
    /// Bracket nesting or syntax-tree depth exceeds the limits.
    TooDeep,
    /// The expression uses the `authorizer` variable, which needs a live API server.
    AuthorizerUnsupported,
    /// A variable (including `variables.<name>`) that is not declared.
    UndeclaredVariable,
    /// A function or method that is not registered.
    UndeclaredFunction,
    /// A CEL feature the underlying engine does not implement.
    Unsupported,
}

/// A compilation error with its position in the expression source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileError {
    /// The kind of error.
    pub kind: CompileErrorKind,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, counted in Unicode scalar values.
    pub column: usize,
    /// Byte offset into the source.
    pub offset: usize,
    /// Human-readable message (without the position).
    pub message: String,
}

impl CompileError {
    /// Attaches the policy name and the field path of the expression, for
    /// messages like `policy "x": spec.validations[2].expression: line 1, column 14: ...`.
    pub fn in_policy(
        self,
        policy: impl Into<String>,
        field_path: impl Into<String>,
    ) -> LocatedError<CompileError> {
        LocatedError::new(policy, field_path, self)
    }
}

impl fmt::Display for CompileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line, self.column, self.message
        )
    }
}

impl std::error::Error for CompileError {}

/// An error compiling one entry of a [`VariableSet`](crate::VariableSet).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VariableError {
    /// The variable name is not a valid CEL identifier.
    #[error("variable {index} has an invalid name {name:?}: it must match [a-zA-Z_][a-zA-Z0-9_]*")]
    InvalidName {
        /// Position in the list of variables.
        index: usize,
        /// The offending name.
        name: String,
    },
    /// Two variables share a name.
    #[error("variable {index} duplicates the name {name:?}")]
    Duplicate {
        /// Position in the list of variables.
        index: usize,
        /// The duplicated name.
        name: String,
    },
    /// The variable's expression does not compile.
    #[error("variables[{index}] ({name}): {error}")]
    Compile {
        /// Position in the list of variables.
        index: usize,
        /// The variable name.
        name: String,
        /// The compilation error.
        error: CompileError,
    },
}

/// An evaluation error.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum EvalError {
    /// A run-time error from the CEL interpreter (no such key, no such
    /// overload, division by zero, a library function's error, ...).
    #[error("{0}")]
    Execution(String),
    /// The expression was required to produce a bool (or string) and did not.
    #[error("expression must evaluate to {expected}, got {got}")]
    WrongType {
        /// The type that was required.
        expected: &'static str,
        /// The CEL type actually produced.
        got: String,
    },
    /// The evaluation spent more than its cost budget.
    #[error("evaluation exceeded its cost budget of {budget} units")]
    CostLimitExceeded {
        /// The budget.
        budget: u64,
    },
    /// The evaluation ran longer than its time limit.
    #[error("evaluation exceeded its time limit of {limit:?}")]
    Timeout {
        /// The limit.
        limit: Duration,
    },
    /// A value produced during evaluation was, or would have been, too large.
    #[error("evaluation produced a value of about {size} bytes, above the limit of {limit} bytes")]
    ValueTooLarge {
        /// Approximate size (a lower bound when the check ran before the value was built).
        size: u64,
        /// The limit.
        limit: usize,
    },
    /// The program uses `variables.*` but was evaluated without variables.
    #[error(
        "the expression uses variables but was evaluated without a variable set (use Bindings::with_variables)"
    )]
    VariablesNotBound,
    /// The program was compiled against a different [`VariableSet`](crate::VariableSet).
    #[error("the expression was compiled against a different variable set than the one bound")]
    VariableSetMismatch,
    /// Evaluating `variables.<name>` failed.
    #[error("variables.{name}: {error}")]
    Variable {
        /// The variable name.
        name: String,
        /// Its evaluation error.
        error: Box<EvalError>,
    },
}

impl EvalError {
    /// Attaches the policy name and field path (see [`CompileError::in_policy`]).
    pub fn in_policy(
        self,
        policy: impl Into<String>,
        field_path: impl Into<String>,
    ) -> LocatedError<EvalError> {
        LocatedError::new(policy, field_path, self)
    }

    /// Whether this error comes from a safety limit (cost, time, value size)
    /// rather than from the expression's own semantics.
    pub fn is_limit(&self) -> bool {
        match self {
            EvalError::CostLimitExceeded { .. }
            | EvalError::Timeout { .. }
            | EvalError::ValueTooLarge { .. } => true,
            EvalError::Variable { error, .. } => error.is_limit(),
            _ => false,
        }
    }
}

/// An input document that cannot be bound.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    /// The document is larger than [`InputLimits::max_bytes`](crate::InputLimits::max_bytes).
    #[error("{variable}: input of more than {limit} bytes is not accepted")]
    TooLarge {
        /// The variable the document was bound to.
        variable: &'static str,
        /// The limit.
        limit: usize,
    },
    /// The document nests deeper than [`InputLimits::max_depth`](crate::InputLimits::max_depth).
    #[error("{variable}: input nested deeper than {limit} levels is not accepted")]
    TooDeep {
        /// The variable the document was bound to.
        variable: &'static str,
        /// The limit.
        limit: usize,
    },
    /// Raw input bytes are not valid JSON.
    #[error("{variable}: invalid JSON: {message}")]
    InvalidJson {
        /// The variable the document was bound to.
        variable: &'static str,
        /// The parser's message.
        message: String,
    },
}

/// An error located in a policy: `policy "x": spec.validations[2].expression: <error>`.
#[derive(Debug, Clone, PartialEq)]
pub struct LocatedError<E> {
    /// Policy name (for namespaced policies the caller may use `namespace/name`).
    pub policy: String,
    /// Path of the expression field inside the policy, e.g. `spec.validations[2].expression`.
    pub field_path: String,
    /// The underlying error.
    pub error: E,
}

impl<E> LocatedError<E> {
    /// Creates a located error.
    pub fn new(policy: impl Into<String>, field_path: impl Into<String>, error: E) -> Self {
        LocatedError {
            policy: policy.into(),
            field_path: field_path.into(),
            error,
        }
    }
}

impl<E: fmt::Display> fmt::Display for LocatedError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "policy {:?}: {}: {}",
            self.policy, self.field_path, self.error
        )
    }
}

impl<E: std::error::Error + 'static> std::error::Error for LocatedError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

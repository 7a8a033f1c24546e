//! Compile-time, run-time and input limits.

use std::time::Duration;

/// Limits applied when compiling an expression and when evaluating it.
///
/// The compile-time limits (`max_expression_bytes`, `max_nesting_depth`,
/// `max_ast_depth`) bound parsing work and the interpreter's recursion depth.
/// The run-time limits (`cost_budget`, `timeout`, `max_value_bytes`) are
/// stored in the compiled [`Program`](crate::Program) and enforced on every
/// evaluation. See the crate documentation for exactly what they guarantee.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Maximum length of the expression source, in bytes.
    pub max_expression_bytes: usize,
    /// Maximum nesting of `(`, `[` and `{` in the source.
    pub max_nesting_depth: usize,
    /// Maximum depth of the parsed syntax tree (bounds the interpreter's recursion).
    pub max_ast_depth: usize,
    /// Cost units one evaluation may spend (`None`: unlimited). One unit is
    /// charged per comprehension iteration and per function call, plus one unit
    /// per 32 bytes of every string, list or map a function call, a `+` or a
    /// list/map literal produces; quadratic library functions are charged
    /// up front (see the crate documentation).
    pub cost_budget: Option<u64>,
    /// Wall-clock limit of one evaluation (`None`: unlimited). Checked at the
    /// same points where cost is charged.
    pub timeout: Option<Duration>,
    /// Maximum approximate size in bytes of any single value produced during
    /// evaluation (`None`: unlimited). Sizes count string/bytes contents plus
    /// 32 bytes per scalar or container.
    pub max_value_bytes: Option<usize>,
}

/// Default cost budget: the same figure as Kubernetes' per-expression
/// `PerCallLimit` (1,000,000). Units are Rampart's own, not cel-go's.
pub const DEFAULT_COST_BUDGET: u64 = 1_000_000;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_expression_bytes: 10 * 1024,
            max_nesting_depth: 32,
            max_ast_depth: 48,
            cost_budget: Some(DEFAULT_COST_BUDGET),
            timeout: Some(Duration::from_secs(1)),
            max_value_bytes: Some(8 * 1024 * 1024),
        }
    }
}

impl Limits {
    /// Default compile-time limits with **no** run-time limits and no
    /// run-time instrumentation. Only for trusted expressions (and to measure
    /// the cost of the guards); hostile expressions can then run unbounded.
    pub fn unguarded() -> Self {
        Limits {
            cost_budget: None,
            timeout: None,
            max_value_bytes: None,
            ..Limits::default()
        }
    }

    /// Whether any run-time limit is active (and the program must be instrumented).
    pub(crate) fn guarded(&self) -> bool {
        self.cost_budget.is_some() || self.timeout.is_some() || self.max_value_bytes.is_some()
    }
}

/// Limits applied when converting input JSON (object, oldObject, request,
/// params, namespaceObject) into CEL values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputLimits {
    /// Maximum approximate size of one input document in bytes (string
    /// contents and keys plus 8 bytes per scalar/container). The default is
    /// Kubernetes' maximum request size, 3 MiB.
    pub max_bytes: usize,
    /// Maximum nesting depth of one input document.
    pub max_depth: usize,
}

impl Default for InputLimits {
    fn default() -> Self {
        InputLimits {
            max_bytes: 3 * 1024 * 1024,
            max_depth: 64,
        }
    }
}

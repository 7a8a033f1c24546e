//! CEL compilation and evaluation for Rampart policies, with the Kubernetes
//! CEL libraries (from [`kube_cel`]) and safety limits.
//!
//! ```
//! use rampart_cel::{Bindings, Program, VariableSet, CompileOptions};
//! use serde_json::json;
//!
//! let pod = json!({"spec": {"containers": [
//!     {"name": "app", "securityContext": {"allowPrivilegeEscalation": false}}
//! ]}});
//! // Compile once (per policy load)...
//! let program = Program::compile(
//!     "object.spec.containers.all(c, has(c.securityContext) \
//!      && c.securityContext.allowPrivilegeEscalation == false)",
//! ).unwrap();
//! // ...convert the request's documents once...
//! let bindings = Bindings::builder().object(&pod).build().unwrap();
//! // ...and evaluate any number of programs against them.
//! assert!(program.evaluate_bool(&bindings).unwrap());
//!
//! // ValidatingAdmissionPolicy-style variables, lazily evaluated.
//! let vars = VariableSet::compile([("names", "object.spec.containers.map(c, c.name)")]).unwrap();
//! let uses = Program::compile_with(
//!     "'app' in variables.names",
//!     &CompileOptions { variables: Some(&vars), ..Default::default() },
//! ).unwrap();
//! assert!(uses.evaluate_bool(&bindings.with_variables(&vars)).unwrap());
//! ```
//!
//! # Variables
//!
//! `object`, `oldObject`, `request`, `params`, `namespaceObject` (null when not
//! bound) and `variables.<name>`. `authorizer` is rejected at compile time
//! ([`CompileErrorKind::AuthorizerUnsupported`]): it needs a live API server.
//! Any other free identifier, unknown `variables.<name>` or unknown function
//! is a compile error with a line and column.
//!
//! # Libraries
//!
//! Everything kube-cel 0.8 registers (strings, lists, sets, regex, URLs,
//! IP/CIDR, semver, quantity, `format`, named formats, math, base64,
//! `jsonpatch.escapeKey`) plus the `cel` crate's standard library, macros
//! (`has`, `all`, `exists`, `exists_one`, `map`, `filter`) and optional
//! syntax (`.?field`, `[?key]`, `orValue`, `hasValue`, ...). Not available
//! (compile error): `cel.bind`, two-variable comprehensions,
//! `transformList/Map`, `sortBy`, `optMap`/`optFlatMap`, `type()`, `dyn()`,
//! `bool()`.
//!
//! # Limits and what they guarantee
//!
//! Compile time ([`Limits`]): source length (default 10 KiB), bracket nesting
//! (32) and syntax-tree depth (48). Parsing runs on a dedicated thread with a
//! 64 MiB stack, so a hostile source cannot overflow the caller's stack. The
//! depth limit bounds the interpreter's recursion: an optimised build needs
//! about 2 KiB of stack per level (about 100 KiB at the default limit, twice
//! that when a `variables.*` expression is evaluated from a deep point), an
//! unoptimised build about 60 KiB per level.
//!
//! Run time, per evaluation:
//! * **Cost budget** (default 1,000,000 units): 1 unit per comprehension
//!   iteration (in the rare loops left to the interpreter's own `map`/`filter`,
//!   which copy the accumulated list every iteration, plus 1 per 4 elements
//!   accumulated so far), per function call (20 for
//!   `matches`/`find`/`findAll`, which compile a regex) and 1 per 32 bytes of
//!   every string/list/map produced by a function call, a `+`, a non-constant
//!   list/map literal or a `variables.*` access. `sets.contains/equivalent/
//!   intersects` are charged |a|·|b|/8 and `distinct()` n²/8 **before** they
//!   run. The count is deterministic: the same expression on the same input
//!   always costs the same.
//! * **Value size** (default 8 MiB, counting contents plus 32 bytes per
//!   node): every value counted above is checked; `replace()` and
//!   `lists.range()` are checked on their *projected* output before they
//!   allocate. Since each other step can grow a value by at most a small
//!   factor (2× for `+`, the element count of a literal), peak memory of one
//!   evaluation stays within a small multiple of the limit.
//! * **Timeout** (default 1 s): the wall clock is read every 8th charge.
//!
//! Once a limit is hit, every later check fails as well, and the evaluation
//! returns that limit error even if CEL's error-absorbing `||`/`&&` would
//! have hidden it. What is *not* charged: field selection and indexing (they
//! borrow), comparisons, `in`, and the copy the interpreter makes of each
//! argument it passes to a function. These are linear in the size of their
//! operands, which are bounded by the input limits ([`InputLimits`], default
//! 3 MiB / depth 64) and the value-size limit; the timeout is the backstop for
//! an expression that repeats them many times. The overrun past a limit is
//! therefore at most one such step.
//!
//! # Performance
//!
//! The `cel` 0.13 interpreter deep-copies a value whenever it binds it to a
//! variable or passes it to a function. Documents are therefore converted
//! once per request ([`Bindings`]), and the compiler rewrites expressions so
//! that the common accesses borrow instead: field selection becomes indexing,
//! comprehensions over a path into the documents iterate over indices
//! (`object.spec.containers.all(c, ...)` does not copy each container),
//! `size(path)` counts in place, `map`/`filter` collect their result in
//! linear time (the interpreter's own loops are quadratic),
//! `path.?a.?b.orValue(d)` /
//! `.hasValue()` are evaluated without building optionals, and a variable
//! defined as a plain path (`variables.containers` = `object.spec.containers`)
//! is inlined at its uses instead of being evaluated into a copy (errors in
//! such a path then do not name the variable).
//!
//! # Divergences from Kubernetes (cel 0.13 / kube-cel 0.8)
//!
//! * `1 == 1.0` and `1u == 1` are `false` (no heterogeneous numeric equality).
//! * `size()` of a string counts bytes, not code points.
//! * `'aaa'.replace('a', 'b', -1)` replaces nothing (cel-go: everything).
//! * Time-zone arguments of the timestamp accessors (`getHours('Europe/Paris')`)
//!   are ignored.
//! * JSON field names are not escaped (`__dash__` etc. are not understood).
//! * Optional values stored inside lists or comprehension variables may lose
//!   their optional wrapper (a `cel` 0.13 bug).
//! * Map iteration order is unspecified (as in Kubernetes) and may differ
//!   between evaluations.

#![warn(missing_docs)]

mod bindings;
mod compile;
mod convert;
mod error;
mod limits;
mod runtime;
mod scan;
mod variables;

pub use bindings::{Activation, Bindings, BindingsBuilder, Input, Scope};
pub use compile::{CompileOptions, KUBERNETES_VARIABLES, Program};
pub use convert::{json_slice_to_value, json_to_value, value_to_json};
pub use error::{
    CompileError, CompileErrorKind, EvalError, InputError, LocatedError, VariableError,
};
pub use limits::{DEFAULT_COST_BUDGET, InputLimits, Limits};
pub use variables::VariableSet;

/// The CEL value type produced by evaluation (re-exported from the `cel`
/// crate that kube-cel is built against).
pub use kube_cel::cel::Value;

/// The underlying `cel` crate, via kube-cel's re-export (version-coherent).
pub use kube_cel::cel;

#[cfg(test)]
mod tests;

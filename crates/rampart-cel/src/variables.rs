//! ValidatingAdmissionPolicy-style `variables`: named expressions, composed
//! from earlier ones, evaluated lazily and at most once per activation.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use kube_cel::cel::common::ast::IdedExpr;
use kube_cel::cel::objects::Opaque;
use kube_cel::cel::{Context, Value};

use crate::compile::{self, CompiledExpr};
use crate::error::{EvalError, VariableError};
use crate::limits::Limits;
use crate::runtime::{EvalState, STATE_KEY};

static NEXT_SET_ID: AtomicU64 = AtomicU64::new(1);

/// A compiled list of named variables, as in a ValidatingAdmissionPolicy's
/// `spec.variables`. Each expression may use `variables.<name>` of the
/// variables declared **before** it. Cheap to clone (shared).
#[derive(Clone)]
pub struct VariableSet {
    pub(crate) inner: Arc<VarSetInner>,
}

pub(crate) struct VarSetInner {
    pub(crate) id: u64,
    pub(crate) names: Vec<String>,
    pub(crate) exprs: Vec<CompiledExpr>,
    /// `exprs[i].alias`, for the compiler.
    pub(crate) aliases: Vec<Option<IdedExpr>>,
    /// For each variable, every variable it depends on (transitively), ascending.
    pub(crate) deps: Vec<Vec<usize>>,
}

impl fmt::Debug for VariableSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VariableSet")
            .field("names", &self.inner.names)
            .finish_non_exhaustive()
    }
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl VariableSet {
    /// Compiles `(name, expression)` pairs with the default [`Limits`].
    pub fn compile<N, E>(
        definitions: impl IntoIterator<Item = (N, E)>,
    ) -> Result<Self, VariableError>
    where
        N: AsRef<str>,
        E: AsRef<str>,
    {
        Self::compile_with_limits(definitions, &Limits::default())
    }

    /// Compiles `(name, expression)` pairs. Names must be CEL identifiers and
    /// unique; expressions may reference earlier variables only.
    pub fn compile_with_limits<N, E>(
        definitions: impl IntoIterator<Item = (N, E)>,
        limits: &Limits,
    ) -> Result<Self, VariableError>
    where
        N: AsRef<str>,
        E: AsRef<str>,
    {
        let mut names: Vec<String> = Vec::new();
        let mut exprs: Vec<CompiledExpr> = Vec::new();
        let mut aliases: Vec<Option<IdedExpr>> = Vec::new();
        let mut deps: Vec<Vec<usize>> = Vec::new();
        for (index, (name, source)) in definitions.into_iter().enumerate() {
            let name = name.as_ref();
            if !is_identifier(name) {
                return Err(VariableError::InvalidName {
                    index,
                    name: name.to_owned(),
                });
            }
            if names.iter().any(|n| n == name) {
                return Err(VariableError::Duplicate {
                    index,
                    name: name.to_owned(),
                });
            }
            let compiled =
                compile::compile(source.as_ref(), limits, &names, &aliases).map_err(|error| {
                    VariableError::Compile {
                        index,
                        name: name.to_owned(),
                        error,
                    }
                })?;
            let mut closure: Vec<usize> = Vec::new();
            for &d in &compiled.var_refs {
                closure.push(d);
                closure.extend(&deps[d]);
            }
            closure.sort_unstable();
            closure.dedup();
            deps.push(closure);
            names.push(name.to_owned());
            aliases.push(compiled.alias.clone());
            exprs.push(compiled);
        }
        Ok(VariableSet {
            inner: Arc::new(VarSetInner {
                id: NEXT_SET_ID.fetch_add(1, Ordering::Relaxed),
                names,
                exprs,
                aliases,
                deps,
            }),
        })
    }

    /// The variable names, in declaration order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.inner.names.iter().map(String::as_str)
    }

    /// Number of variables.
    pub fn len(&self) -> usize {
        self.inner.names.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.inner.names.is_empty()
    }
}

/// Per-activation memo of variable values.
pub(crate) struct VarState {
    set: VariableSet,
    memo: Vec<OnceLock<Result<Value, EvalError>>>,
}

impl fmt::Debug for VarState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VarState").finish_non_exhaustive()
    }
}

impl PartialEq for VarState {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}
impl Eq for VarState {}

impl Opaque for VarState {
    fn runtime_type_name(&self) -> &str {
        "rampart.VarState"
    }
}

impl VarState {
    pub(crate) fn new(set: &VariableSet) -> Self {
        VarState {
            set: set.clone(),
            memo: (0..set.len()).map(|_| OnceLock::new()).collect(),
        }
    }

    /// The value of variable `index`, evaluating it (and, first, the variables
    /// it depends on) if this activation has not done so yet.
    ///
    /// Dependencies are evaluated one after the other rather than nested, so
    /// a chain of variables does not deepen the stack. A dependency that fails
    /// is memoised as failed and only reported if it is actually used, as in
    /// Kubernetes.
    pub(crate) fn get(
        &self,
        index: usize,
        activation: &Context<'_>,
        state: &Arc<dyn Opaque>,
    ) -> Result<Value, EvalError> {
        let slot = self.memo.get(index).ok_or(EvalError::VariableSetMismatch)?;
        if let Some(done) = slot.get() {
            return done.clone();
        }
        for &dep in &self.set.inner.deps[index] {
            // Inlined paths are never evaluated through the memo.
            if self.set.inner.aliases[dep].is_none() && self.memo[dep].get().is_none() {
                let _ = self.evaluate(dep, activation, state);
            }
        }
        self.evaluate(index, activation, state)
    }

    fn evaluate(
        &self,
        index: usize,
        activation: &Context<'_>,
        state: &Arc<dyn Opaque>,
    ) -> Result<Value, EvalError> {
        let mut scope = activation.new_inner_scope();
        scope.add_variable_from_value(STATE_KEY, Value::Opaque(state.clone()));
        let result = Value::resolve(&self.set.inner.exprs[index].expr, &scope);
        drop(scope);
        let name = &self.set.inner.names[index];
        if let Some(abort) = state
            .downcast_ref::<EvalState>()
            .and_then(EvalState::aborted)
        {
            // A limit violation belongs to this evaluation, not to the
            // variable: do not memoise it.
            return Err(abort.clone());
        }
        let result = result.map_err(|e| EvalError::Variable {
            name: name.clone(),
            error: Box::new(compile::exec_to_eval(e)),
        });
        let slot = &self.memo[index];
        let _ = slot.set(result.clone());
        result
    }
}

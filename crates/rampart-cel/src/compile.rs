//! Compilation: limits, parsing, static checks and the AST rewrite that
//! installs the run-time guards.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use kube_cel::cel::common::ast::{
    CallExpr, ComprehensionExpr, EntryExpr, Expr, IdedEntryExpr, IdedExpr, ListExpr, LiteralValue,
    MapEntryExpr, MapExpr, SelectExpr, StructExpr, operators,
};
use kube_cel::cel::common::types::{CelInt, CelString};
use kube_cel::cel::objects::Opaque;
use kube_cel::cel::parser::Parser;
use kube_cel::cel::{ExecutionError, Value};

use crate::bindings::Scope;
use crate::convert::type_name;
use crate::error::{CompileError, CompileErrorKind, EvalError};
use crate::limits::Limits;
use crate::runtime::{
    EvalState, FN_CALL, FN_GUARDED, FN_HAS_PATH, FN_INDICES, FN_IS_LIST, FN_MAP, FN_OPT_SELECT,
    FN_SIZE, FN_TICK, FN_VAR, Guard, KNOWN_FUNCTIONS, PARAM_NAMES, STATE_KEY, call_weight,
};
use crate::variables::VariableSet;

/// The variables every expression may use (besides `variables.<name>`).
pub const KUBERNETES_VARIABLES: &[&str] = &[
    "object",
    "oldObject",
    "request",
    "params",
    "namespaceObject",
];

/// Stack size of the thread that parses and checks an expression. The ANTLR
/// parser recurses deeply per nesting level (especially in debug builds);
/// only the pages actually touched are committed.
const COMPILE_STACK_BYTES: usize = 64 * 1024 * 1024;

/// Options for [`Program::compile_with`].
#[derive(Debug, Clone, Default)]
pub struct CompileOptions<'a> {
    /// Limits for compilation and for every evaluation of the program.
    pub limits: Limits,
    /// Variables the expression may reference as `variables.<name>`.
    pub variables: Option<&'a VariableSet>,
}

/// A compiled CEL expression. Immutable, `Send + Sync`: compile once and
/// evaluate from any number of threads (wrap in `Arc` to share ownership).
pub struct Program {
    source: Box<str>,
    compiled: CompiledExpr,
    limits: Limits,
    /// Id of the variable set the program references, if it references any.
    variable_set: Option<u64>,
}

impl fmt::Debug for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Program")
            .field("source", &self.source)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

pub(crate) struct CompiledExpr {
    pub(crate) expr: IdedExpr,
    /// Indices of the variables referenced directly.
    pub(crate) var_refs: BTreeSet<usize>,
    /// For a variable whose expression is a plain path into the bound
    /// documents: that path, inlined at every use instead of evaluating and
    /// memoising (and so copying) the value.
    pub(crate) alias: Option<IdedExpr>,
}

impl Program {
    /// Compiles `source` with the default [`Limits`] and no variables.
    pub fn compile(source: &str) -> Result<Program, CompileError> {
        Self::compile_with(source, &CompileOptions::default())
    }

    /// Compiles `source` with explicit limits and/or a variable set.
    pub fn compile_with(
        source: &str,
        options: &CompileOptions<'_>,
    ) -> Result<Program, CompileError> {
        let (names, aliases): (&[String], &[Option<IdedExpr>]) = match options.variables {
            Some(v) => (&v.inner.names, &v.inner.aliases),
            None => (&[], &[]),
        };
        let compiled = compile(source, &options.limits, names, aliases)?;
        let variable_set = match (options.variables, compiled.var_refs.is_empty()) {
            (Some(set), false) => Some(set.inner.id),
            _ => None,
        };
        Ok(Program {
            source: source.into(),
            compiled,
            limits: options.limits.clone(),
            variable_set,
        })
    }

    /// Compiles without the copy-avoiding rewrites, for differential tests.
    #[cfg(test)]
    pub(crate) fn compile_unoptimized(source: &str) -> Result<Program, CompileError> {
        let limits = Limits::default();
        Ok(Program {
            source: source.into(),
            compiled: compile_impl(source, &limits, &[], &[], false)?,
            limits,
            variable_set: None,
        })
    }

    /// The rewritten syntax tree, for tests.
    #[cfg(test)]
    pub(crate) fn expr(&self) -> &IdedExpr {
        &self.compiled.expr
    }

    /// The expression source.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The limits the program was compiled with (and evaluates under).
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Whether the expression references `variables.*`.
    pub fn uses_variables(&self) -> bool {
        !self.compiled.var_refs.is_empty()
    }

    /// Evaluates the program against `scope` (a [`Bindings`](crate::Bindings)
    /// or an [`Activation`](crate::Activation)).
    pub fn evaluate<S: Scope + ?Sized>(&self, scope: &S) -> Result<Value, EvalError> {
        self.evaluate_with_cost(scope).map(|(v, _)| v)
    }

    /// Like [`evaluate`](Self::evaluate), also returning the cost units spent.
    pub fn evaluate_with_cost<S: Scope + ?Sized>(
        &self,
        scope: &S,
    ) -> Result<(Value, u64), EvalError> {
        if let Some(id) = self.variable_set {
            match scope.variable_set_id() {
                None => return Err(EvalError::VariablesNotBound),
                Some(bound) if bound != id => return Err(EvalError::VariableSetMismatch),
                Some(_) => {}
            }
        }
        let state = Arc::new(EvalState::new(&self.limits));
        let state_dyn: Arc<dyn Opaque> = state.clone();
        let mut ctx = scope.context().new_inner_scope();
        ctx.add_variable_from_value(STATE_KEY, Value::Opaque(state_dyn));
        let result = Value::resolve(&self.compiled.expr, &ctx);
        drop(ctx);
        if let Some(err) = state.aborted() {
            return Err(err.clone());
        }
        let value = result.map_err(exec_to_eval)?;
        Ok((value, state.cost()))
    }

    /// Evaluates and requires a bool, as Kubernetes does for validations and
    /// match conditions.
    pub fn evaluate_bool<S: Scope + ?Sized>(&self, scope: &S) -> Result<bool, EvalError> {
        match self.evaluate(scope)? {
            Value::Bool(b) => Ok(b),
            other => Err(EvalError::WrongType {
                expected: "bool",
                got: type_name(&other),
            }),
        }
    }

    /// Evaluates and requires a string, as Kubernetes does for `messageExpression`.
    pub fn evaluate_string<S: Scope + ?Sized>(&self, scope: &S) -> Result<String, EvalError> {
        match self.evaluate(scope)? {
            Value::String(s) => Ok(s.as_str().to_owned()),
            other => Err(EvalError::WrongType {
                expected: "string",
                got: type_name(&other),
            }),
        }
    }
}

/// Maps an interpreter error to an [`EvalError`], unwrapping the messages of
/// Rampart's internal functions.
pub(crate) fn exec_to_eval(e: ExecutionError) -> EvalError {
    match e {
        ExecutionError::FunctionError { function, message }
            if function == "rampart" || function == "variables" =>
        {
            EvalError::Execution(message)
        }
        other => EvalError::Execution(other.to_string()),
    }
}

/// Compiles `source` on a thread with a large stack; `variables` are the
/// names usable as `variables.<name>`, `aliases` their inlinable paths.
pub(crate) fn compile(
    source: &str,
    limits: &Limits,
    variables: &[String],
    aliases: &[Option<IdedExpr>],
) -> Result<CompiledExpr, CompileError> {
    compile_impl(source, limits, variables, aliases, true)
}

/// `optimize: false` disables the copy-avoiding rewrites (for differential tests).
pub(crate) fn compile_impl(
    source: &str,
    limits: &Limits,
    variables: &[String],
    aliases: &[Option<IdedExpr>],
    optimize: bool,
) -> Result<CompiledExpr, CompileError> {
    std::thread::scope(|s| {
        let handle = std::thread::Builder::new()
            .name("rampart-cel-compile".into())
            .stack_size(COMPILE_STACK_BYTES)
            .spawn_scoped(s, || {
                compile_on_this_thread(source, limits, variables, aliases, optimize)
            });
        match handle {
            Ok(handle) => handle.join().unwrap_or_else(|_| {
                Err(error_at(
                    source,
                    CompileErrorKind::TooDeep,
                    0,
                    "expression is too complex to parse".into(),
                ))
            }),
            // Could not spawn (resource exhaustion): the lexical limits still
            // bound the parser's recursion, so parse here.
            Err(_) => compile_on_this_thread(source, limits, variables, aliases, optimize),
        }
    })
}

fn error_at(src: &str, kind: CompileErrorKind, offset: usize, message: String) -> CompileError {
    let (line, column) = crate::scan::line_col(src, offset);
    CompileError {
        kind,
        line,
        column,
        offset,
        message,
    }
}

fn compile_on_this_thread(
    source: &str,
    limits: &Limits,
    variables: &[String],
    aliases: &[Option<IdedExpr>],
    optimize: bool,
) -> Result<CompiledExpr, CompileError> {
    if source.len() > limits.max_expression_bytes {
        return Err(error_at(
            source,
            CompileErrorKind::TooLong,
            0,
            format!(
                "expression is {} bytes long, above the limit of {} bytes",
                source.len(),
                limits.max_expression_bytes
            ),
        ));
    }
    let scanned = crate::scan::scan(source);
    if scanned.max_nesting > limits.max_nesting_depth {
        return Err(error_at(
            source,
            CompileErrorKind::TooDeep,
            scanned.first_reached[limits.max_nesting_depth],
            format!(
                "brackets are nested more than {} levels deep",
                limits.max_nesting_depth
            ),
        ));
    }
    // Nested conditionals deepen the parser's recursion without brackets;
    // more of them than the depth limit cannot fit anyway.
    let conditionals: Vec<usize> = scanned
        .tokens
        .windows(2)
        .filter(|w| {
            w[1].0 == crate::scan::Token::Punct('?')
                && !matches!(w[0].0, crate::scan::Token::Punct('.' | '['))
        })
        .map(|w| w[1].1)
        .collect();
    if conditionals.len() > limits.max_ast_depth {
        return Err(error_at(
            source,
            CompileErrorKind::TooDeep,
            conditionals[limits.max_ast_depth],
            format!(
                "more than {} conditional operators in one expression",
                limits.max_ast_depth
            ),
        ));
    }
    let ast = Parser::new()
        .enable_optional_syntax(true)
        .parse(source)
        .map_err(|errs| {
            let first = errs.errors.into_iter().next();
            let (line, column, msg) = match first {
                Some(e) => (e.pos.0.max(1) as usize, e.pos.1.max(1) as usize, e.msg),
                None => (1, 1, "syntax error".to_owned()),
            };
            // The parser's own nesting guard reports as a syntax error.
            let (kind, message) = if msg.contains("Recursion limit") {
                (
                    CompileErrorKind::TooDeep,
                    "expression is nested too deeply for the parser".to_owned(),
                )
            } else {
                (CompileErrorKind::Syntax, msg)
            };
            CompileError {
                kind,
                line,
                column,
                offset: crate::scan::offset_of(source, line, column),
                message,
            }
        })?;
    if exceeds_depth(&ast, 1, limits.max_ast_depth) {
        return Err(error_at(
            source,
            CompileErrorKind::TooDeep,
            0,
            format!(
                "expression is nested more than {} levels deep",
                limits.max_ast_depth
            ),
        ));
    }
    let rewrite = |ast: IdedExpr, optimize: bool| {
        let mut rw = Rewriter {
            src: source,
            scanned: &scanned,
            variables,
            aliases,
            guarded: limits.guarded(),
            scope: Vec::new(),
            var_refs: BTreeSet::new(),
            optimize,
            next_index: 0,
        };
        let expr = rw.rewrite(ast)?;
        let alias = (optimize && rw.borrowable(&expr)).then(|| expr.clone());
        Ok(CompiledExpr {
            expr,
            var_refs: rw.var_refs,
            alias,
        })
    };
    // The guards at most double the depth. Borrowed iteration repeats the
    // iterated path inside the loop body, which grows with nesting: if that
    // goes past the bound the interpreter's stack use was measured for, keep
    // the plain (copying) loops.
    let bound = 2 * limits.max_ast_depth + 8;
    if optimize {
        let compiled = rewrite(ast.clone(), true)?;
        if !exceeds_depth(&compiled.expr, 1, bound) {
            return Ok(compiled);
        }
    }
    rewrite(ast, false)
}

/// Whether the tree is deeper than `max`; recursion stops at `max + 1`.
fn exceeds_depth(e: &IdedExpr, depth: usize, max: usize) -> bool {
    if depth > max {
        return true;
    }
    let d = depth + 1;
    match &e.expr {
        Expr::Call(c) => {
            c.target
                .as_deref()
                .is_some_and(|t| exceeds_depth(t, d, max))
                || c.args.iter().any(|a| exceeds_depth(a, d, max))
        }
        Expr::Select(s) => exceeds_depth(&s.operand, d, max),
        Expr::List(l) => l.elements.iter().any(|a| exceeds_depth(a, d, max)),
        Expr::Map(m) => m.entries.iter().any(|en| match &en.expr {
            EntryExpr::MapEntry(me) => {
                exceeds_depth(&me.key, d, max) || exceeds_depth(&me.value, d, max)
            }
            EntryExpr::StructField(sf) => exceeds_depth(&sf.value, d, max),
        }),
        Expr::Struct(s) => s.entries.iter().any(|en| match &en.expr {
            EntryExpr::MapEntry(me) => {
                exceeds_depth(&me.key, d, max) || exceeds_depth(&me.value, d, max)
            }
            EntryExpr::StructField(sf) => exceeds_depth(&sf.value, d, max),
        }),
        Expr::Comprehension(c) => [
            &c.iter_range,
            &c.accu_init,
            &c.loop_cond,
            &c.loop_step,
            &c.result,
        ]
        .into_iter()
        .any(|x| exceeds_depth(x, d, max)),
        Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => false,
    }
}

const OPERATORS: &[&str] = &[
    operators::CONDITIONAL,
    operators::LOGICAL_AND,
    operators::LOGICAL_OR,
    operators::LOGICAL_NOT,
    operators::SUBSTRACT,
    operators::ADD,
    operators::MULTIPLY,
    operators::DIVIDE,
    operators::MODULO,
    operators::EQUALS,
    operators::NOT_EQUALS,
    operators::GREATER_EQUALS,
    operators::LESS_EQUALS,
    operators::GREATER,
    operators::LESS,
    operators::NEGATE,
    operators::INDEX,
    operators::OPT_INDEX,
    operators::OPT_SELECT,
    operators::NOT_STRICTLY_FALSE,
    operators::IN,
];

/// Name of the accumulator the parser's macros use.
pub(crate) const ACCUMULATOR: &str = "@result";

fn lit_int(i: i64) -> IdedExpr {
    IdedExpr {
        id: 0,
        expr: Expr::Literal(LiteralValue::Int(CelInt::from(i))),
    }
}

fn lit_str(s: &str) -> IdedExpr {
    IdedExpr {
        id: 0,
        expr: Expr::Literal(LiteralValue::String(CelString::from(s))),
    }
}

fn ident(name: &str) -> IdedExpr {
    IdedExpr {
        id: 0,
        expr: Expr::Ident(name.to_owned()),
    }
}

fn call(func_name: &str, target: Option<IdedExpr>, args: Vec<IdedExpr>) -> IdedExpr {
    IdedExpr {
        id: 0,
        expr: Expr::Call(CallExpr {
            func_name: func_name.to_owned(),
            target: target.map(Box::new),
            args,
        }),
    }
}

fn is_literal(e: &IdedExpr) -> bool {
    match &e.expr {
        Expr::Literal(_) => true,
        Expr::List(l) => l.elements.iter().all(is_literal),
        _ => false,
    }
}

fn is_ident(e: &IdedExpr, name: &str) -> bool {
    matches!(&e.expr, Expr::Ident(n) if n == name)
}

struct Rewriter<'a> {
    src: &'a str,
    scanned: &'a crate::scan::Scanned<'a>,
    variables: &'a [String],
    aliases: &'a [Option<IdedExpr>],
    guarded: bool,
    /// Names bound by enclosing comprehensions, innermost last; a name bound
    /// by a borrowed iteration maps to the expression that replaces it.
    scope: Vec<(String, Option<IdedExpr>)>,
    var_refs: BTreeSet<usize>,
    /// Apply the copy-avoiding rewrites (borrowed iteration, fused `.?` chains).
    optimize: bool,
    /// Counter for fresh index-variable names.
    next_index: usize,
}

impl Rewriter<'_> {
    fn err(&self, kind: CompileErrorKind, offset: Option<usize>, message: String) -> CompileError {
        error_at(self.src, kind, offset.unwrap_or(0), message)
    }

    fn in_scope(&self, name: &str) -> bool {
        self.scope.iter().any(|(n, _)| n == name)
    }

    fn wrap(&self, e: IdedExpr, weight: i64) -> IdedExpr {
        if self.guarded {
            call(FN_CALL, None, vec![lit_int(weight), e])
        } else {
            e
        }
    }

    fn rewrite(&mut self, e: IdedExpr) -> Result<IdedExpr, CompileError> {
        let id = e.id;
        match e.expr {
            Expr::Literal(_) => Ok(e),
            Expr::Ident(name) => {
                if let Some((_, Some(alias))) = self.scope.iter().rev().find(|(n, _)| *n == name) {
                    return Ok(alias.clone());
                }
                self.check_ident(&name)?;
                Ok(IdedExpr {
                    id,
                    expr: Expr::Ident(name),
                })
            }
            Expr::Select(sel) => self.rewrite_select(id, sel),
            Expr::Call(c) => self.rewrite_call(id, c),
            Expr::List(list) => {
                let elements = list
                    .elements
                    .into_iter()
                    .map(|x| self.rewrite(x))
                    .collect::<Result<Vec<_>, _>>()?;
                let constant = elements.iter().all(is_literal);
                let out = IdedExpr {
                    id,
                    expr: Expr::List(ListExpr {
                        elements,
                        optional_indices: list.optional_indices,
                    }),
                };
                Ok(if constant { out } else { self.wrap(out, 1) })
            }
            Expr::Map(map) => {
                let mut entries = Vec::with_capacity(map.entries.len());
                let mut constant = true;
                for entry in map.entries {
                    match entry.expr {
                        EntryExpr::MapEntry(me) => {
                            let key = self.rewrite(me.key)?;
                            let value = self.rewrite(me.value)?;
                            constant &= is_literal(&key) && is_literal(&value);
                            entries.push(IdedEntryExpr {
                                id: entry.id,
                                expr: EntryExpr::MapEntry(MapEntryExpr {
                                    key,
                                    value,
                                    optional: me.optional,
                                }),
                            });
                        }
                        EntryExpr::StructField(_) => {
                            return Err(self.err(
                                CompileErrorKind::Unsupported,
                                None,
                                "struct field initialisers are not supported".into(),
                            ));
                        }
                    }
                }
                let out = IdedExpr {
                    id,
                    expr: Expr::Map(MapExpr { entries }),
                };
                Ok(if constant { out } else { self.wrap(out, 1) })
            }
            Expr::Struct(s) => Err(self.err(
                CompileErrorKind::Unsupported,
                self.scanned.find_ident(s.type_name.rsplit('.').next().unwrap_or("")),
                format!(
                    "message construction ({} {{...}}) is not supported: Kubernetes objects are maps",
                    s.type_name
                ),
            )),
            Expr::Comprehension(c) => self.rewrite_comprehension(id, *c),
            Expr::Unspecified => Err(self.err(
                CompileErrorKind::Syntax,
                None,
                "incomplete expression".into(),
            )),
        }
    }

    fn check_ident(&self, name: &str) -> Result<(), CompileError> {
        if self.in_scope(name) || KUBERNETES_VARIABLES.contains(&name) {
            return Ok(());
        }
        let at = self.scanned.find_ident(name);
        match name {
            "authorizer" => Err(self.err(
                CompileErrorKind::AuthorizerUnsupported,
                at,
                "`authorizer` is not supported offline: authorization checks need a live \
                 API server, so expressions using it are rejected instead of guessed"
                    .into(),
            )),
            "variables" => Err(self.err(
                CompileErrorKind::UndeclaredVariable,
                at,
                "`variables` can only be used as `variables.<name>`".into(),
            )),
            _ => Err(self.err(
                CompileErrorKind::UndeclaredVariable,
                at,
                format!(
                    "undeclared reference to '{name}' (available: {}, variables.<name>)",
                    KUBERNETES_VARIABLES.join(", ")
                ),
            )),
        }
    }

    fn variable_index(&mut self, field: &str) -> Result<usize, CompileError> {
        match self.variables.iter().position(|n| n == field) {
            Some(i) => {
                self.var_refs.insert(i);
                Ok(i)
            }
            None => Err(self.err(
                CompileErrorKind::UndeclaredVariable,
                self.scanned.find_member("variables", field),
                if self.variables.is_empty() {
                    format!(
                        "undeclared variable 'variables.{field}' (no variables are declared here)"
                    )
                } else {
                    format!(
                        "undeclared variable 'variables.{field}' (declared before this point: {})",
                        self.variables.join(", ")
                    )
                },
            )),
        }
    }

    fn rewrite_select(&mut self, id: u64, sel: SelectExpr) -> Result<IdedExpr, CompileError> {
        if is_ident(&sel.operand, "variables") && !self.in_scope("variables") {
            if sel.test {
                return Err(self.err(
                    CompileErrorKind::Unsupported,
                    self.scanned.find_member("variables", &sel.field),
                    "has() cannot be applied to variables".into(),
                ));
            }
            let index = self.variable_index(&sel.field)?;
            if self.optimize
                && let Some(Some(alias)) = self.aliases.get(index)
            {
                let mut free = Vec::new();
                free_idents(alias, &mut free);
                if !free.iter().any(|n| self.in_scope(n)) {
                    return Ok(alias.clone());
                }
            }
            return Ok(call(FN_VAR, None, vec![lit_int(index as i64)]));
        }
        let operand = self.rewrite(*sel.operand)?;
        if sel.test {
            return Ok(IdedExpr {
                id,
                expr: Expr::Select(SelectExpr {
                    operand: Box::new(operand),
                    field: sel.field,
                    test: true,
                }),
            });
        }
        // `a.f` becomes `a['f']`: same result and error for maps, but it
        // borrows instead of deep-copying the selected value, and it fails
        // (instead of silently yielding `false`) when `a` is null or not a map.
        Ok(IdedExpr {
            id,
            expr: Expr::Call(CallExpr {
                func_name: operators::INDEX.to_owned(),
                target: None,
                args: vec![operand, lit_str(&sel.field)],
            }),
        })
    }

    fn unsupported_call(&self, c: &CallExpr) -> Option<CompileError> {
        let name = c.func_name.as_str();
        let at = || self.scanned.find_call(name);
        let target_is = |n: &str| c.target.as_deref().is_some_and(|t| is_ident(t, n));
        let msg = if name == "bind" && target_is("cel") {
            "cel.bind() is not supported by the CEL engine (cel 0.13); use a policy variable instead"
                .to_owned()
        } else if matches!(name, "all" | "exists" | "exists_one" | "existsOne")
            && c.target.is_some()
            && c.args.len() == 3
        {
            format!(
                "two-variable comprehensions ({name}(i, v, ...)) are not supported by the CEL engine"
            )
        } else if matches!(name, "transformList" | "transformMap" | "transformMapEntry") {
            format!("{name}() (two-variable comprehension) is not supported by the CEL engine")
        } else if matches!(name, "sortBy" | "optMap" | "optFlatMap") {
            format!("the {name}() macro is not supported by the CEL engine")
        } else if matches!(name, "type" | "dyn") && c.target.is_none() {
            format!("{name}() is not supported by the CEL engine")
        } else {
            return None;
        };
        Some(self.err(CompileErrorKind::Unsupported, at(), msg))
    }

    fn rewrite_call(&mut self, id: u64, c: CallExpr) -> Result<IdedExpr, CompileError> {
        if OPERATORS.contains(&c.func_name.as_str()) {
            return self.rewrite_operator(id, c);
        }
        if let Some(e) = self.unsupported_call(&c) {
            return Err(e);
        }
        if self.optimize
            && let Some(fused) = self.fuse_optional_chain(&c)?
        {
            return Ok(fused);
        }
        // Namespaced functions (`math.ceil(x)`, `sets.contains(a, b)`): the
        // interpreter resolves `<ident>.<name>` as a function before treating
        // the identifier as a value.
        let qualified = match c.target.as_deref() {
            Some(IdedExpr {
                expr: Expr::Ident(prefix),
                ..
            }) => {
                let q = format!("{prefix}.{}", c.func_name);
                KNOWN_FUNCTIONS.contains(&q.as_str()).then_some(q)
            }
            _ => None,
        };
        let target = match (c.target, &qualified) {
            (Some(t), None) => Some(self.rewrite(*t)?),
            (t, _) => t.map(|b| *b),
        };
        let args = c
            .args
            .into_iter()
            .map(|a| self.rewrite(a))
            .collect::<Result<Vec<_>, _>>()?;
        let name = qualified.as_deref().unwrap_or(&c.func_name);
        if qualified.is_none() && !KNOWN_FUNCTIONS.contains(&name) {
            return Err(self.err(
                CompileErrorKind::UndeclaredFunction,
                self.scanned.find_call(name),
                format!("undeclared function or method '{name}'"),
            ));
        }
        // `size(path)` / `path.size()` on a borrowable path: count without
        // the copy a function argument costs.
        if self.optimize && name == "size" {
            let operand = match (&target, args.as_slice()) {
                (None, [only]) => Some(only),
                (Some(t), []) => Some(t),
                _ => None,
            };
            if let Some(operand) = operand.filter(|o| self.borrowable(o)) {
                return Ok(self.wrap(call(FN_SIZE, None, vec![operand.clone()]), 1));
            }
        }
        let weight = call_weight(name);
        let guard = Guard::for_call(name);
        let func_name = c.func_name;
        let plain = IdedExpr {
            id,
            expr: Expr::Call(CallExpr {
                func_name: func_name.clone(),
                target: target.clone().map(Box::new),
                args: args.clone(),
            }),
        };
        let Some(guard) = guard.filter(|_| self.guarded) else {
            return Ok(self.wrap(plain, weight));
        };
        // Pre-checked call: evaluate the operands first, then run a template
        // of the same call over the bound operands.
        let mut values = Vec::new();
        let template_target = match (target, &qualified) {
            (Some(t), None) => {
                values.push(t);
                Some(ident(PARAM_NAMES[0]))
            }
            (t, _) => t,
        };
        let first_arg = values.len();
        values.extend(args);
        if values.len() > PARAM_NAMES.len() {
            return Ok(self.wrap(plain, weight));
        }
        let template_args = (first_arg..values.len())
            .map(|i| ident(PARAM_NAMES[i]))
            .collect();
        let template = call(&func_name, template_target, template_args);
        let mut guarded_args = vec![lit_int(guard as i64), template];
        guarded_args.extend(values);
        Ok(call(FN_GUARDED, None, guarded_args))
    }

    /// `base.?f1.?f2.orValue(d)` and `base.?f1.?f2.hasValue()` over a
    /// borrowable `base` become `has_path(base, 'f1', 'f2') ? base.f1.f2 : d`
    /// and `has_path(...)`: no optional is built, so nothing is copied.
    fn fuse_optional_chain(&mut self, c: &CallExpr) -> Result<Option<IdedExpr>, CompileError> {
        match (c.func_name.as_str(), c.args.len()) {
            ("hasValue", 0) | ("orValue", 1) => {}
            _ => return Ok(None),
        }
        let Some(mut cur) = c.target.as_deref() else {
            return Ok(None);
        };
        let mut fields = Vec::new();
        while let Expr::Call(inner) = &cur.expr
            && inner.func_name == operators::OPT_SELECT
            && inner.args.len() == 2
        {
            let Expr::Literal(LiteralValue::String(field)) = &inner.args[1].expr else {
                return Ok(None);
            };
            fields.push(field.inner().to_owned());
            cur = &inner.args[0];
        }
        if fields.is_empty() || (is_ident(cur, "variables") && !self.in_scope("variables")) {
            return Ok(None);
        }
        fields.reverse();
        let base = self.rewrite(cur.clone())?;
        if !self.borrowable(&base) {
            return Ok(None);
        }
        let mut has_args = vec![base.clone()];
        has_args.extend(fields.iter().map(|f| lit_str(f)));
        let has = call(FN_HAS_PATH, None, has_args);
        if c.func_name == "hasValue" {
            return Ok(Some(has));
        }
        let path = fields.iter().fold(base, |path, f| {
            call(operators::INDEX, None, vec![path, lit_str(f)])
        });
        let default = self.rewrite(c.args[0].clone())?;
        Ok(Some(call(
            operators::CONDITIONAL,
            None,
            vec![has, path, default],
        )))
    }

    fn rewrite_operator(&mut self, id: u64, c: CallExpr) -> Result<IdedExpr, CompileError> {
        if c.func_name == operators::OPT_SELECT {
            let mut args = c.args.into_iter();
            let (Some(operand), Some(field)) = (args.next(), args.next()) else {
                return Err(self.err(CompileErrorKind::Syntax, None, "malformed '.?'".into()));
            };
            if is_ident(&operand, "variables") && !self.in_scope("variables") {
                return Err(self.err(
                    CompileErrorKind::Unsupported,
                    self.scanned.find_ident("variables"),
                    "optional selection ('.?') is not supported on variables".into(),
                ));
            }
            let operand = self.rewrite(operand)?;
            return Ok(call(FN_OPT_SELECT, None, vec![operand, field]));
        }
        let is_accumulate = c.func_name == operators::ADD
            && c.args.first().is_some_and(|a| is_ident(a, ACCUMULATOR));
        let target = match c.target {
            Some(t) => Some(Box::new(self.rewrite(*t)?)),
            None => None,
        };
        let args = c
            .args
            .into_iter()
            .map(|a| self.rewrite(a))
            .collect::<Result<Vec<_>, _>>()?;
        let out = IdedExpr {
            id,
            expr: Expr::Call(CallExpr {
                func_name: c.func_name,
                target,
                args,
            }),
        };
        // `+` concatenates strings and lists: account for what it builds,
        // except the macro accumulator (`map`/`filter` append one element per
        // iteration, already charged by the element and the iteration).
        let concat = matches!(&out.expr, Expr::Call(c) if c.func_name == operators::ADD);
        Ok(if concat && !is_accumulate {
            self.wrap(out, 1)
        } else {
            out
        })
    }

    fn rewrite_comprehension(
        &mut self,
        id: u64,
        c: ComprehensionExpr,
    ) -> Result<IdedExpr, CompileError> {
        if c.iter_var2.is_some() {
            return Err(self.err(
                CompileErrorKind::Unsupported,
                None,
                "two-variable comprehensions are not supported by the CEL engine".into(),
            ));
        }
        let iter_range = self.rewrite(c.iter_range)?;
        let accu_init = self.rewrite(c.accu_init)?;
        // Borrowed iteration: over a path into the bound documents, loop over
        // `@rampart.indices(range)` and replace the iteration variable by
        // `is_list(range) ? range[@iN] : @iN` (the element of a list, the key
        // of a map). The interpreter deep-copies the value bound to a
        // comprehension variable on every iteration; an index is cheap to
        // copy and the element is then reached by borrowing. Skipped if an
        // inner comprehension rebinds a name the replacement uses.
        let by_index = if self.optimize && self.borrowable(&iter_range) {
            let mut free = Vec::new();
            free_idents(&iter_range, &mut free);
            let captured = [&c.loop_cond, &c.loop_step, &c.result]
                .into_iter()
                .any(|body| binds_any(body, &free));
            if captured {
                None
            } else {
                let index_var = format!("{INDEX_VAR_PREFIX}{}", self.next_index);
                self.next_index += 1;
                let element = call(
                    operators::CONDITIONAL,
                    None,
                    vec![
                        call(FN_IS_LIST, None, vec![iter_range.clone()]),
                        call(
                            operators::INDEX,
                            None,
                            vec![iter_range.clone(), ident(&index_var)],
                        ),
                        ident(&index_var),
                    ],
                );
                Some((index_var, element))
            }
        } else {
            None
        };
        let (iter_var, iter_range, alias) = match by_index {
            Some((index_var, element)) => (
                index_var,
                call(FN_INDICES, None, vec![iter_range]),
                Some(element),
            ),
            None => (c.iter_var.clone(), iter_range, None),
        };
        self.scope.push((c.iter_var, alias));
        self.scope.push((c.accu_var.clone(), None));
        let loop_cond = self.rewrite(c.loop_cond);
        let loop_step = self.rewrite(c.loop_step);
        let result = self.rewrite(c.result);
        self.scope.pop();
        self.scope.pop();
        let (loop_cond, loop_step, result) = (loop_cond?, loop_step?, result?);
        if self.optimize
            && let Some((predicate, element)) =
                as_map_macro(&accu_init, &c.accu_var, &loop_cond, &loop_step, &result)
        {
            return Ok(call(
                FN_MAP,
                None,
                vec![iter_range, lit_str(&iter_var), predicate, element],
            ));
        }
        let loop_cond = if self.guarded {
            call(FN_TICK, None, vec![loop_cond])
        } else {
            loop_cond
        };
        Ok(IdedExpr {
            id,
            expr: Expr::Comprehension(Box::new(ComprehensionExpr {
                iter_range,
                iter_var,
                iter_var2: None,
                accu_var: c.accu_var,
                accu_init,
                loop_cond,
                loop_step,
                result,
            })),
        })
    }

    /// Whether `e` is a path into the bound documents that the interpreter
    /// evaluates by borrowing: a (non-shadowed) Kubernetes variable followed
    /// by constant or index-variable subscripts, or an element reference made
    /// by [`Self::iterate_by_index`].
    fn borrowable(&self, e: &IdedExpr) -> bool {
        match &e.expr {
            Expr::Ident(n) => KUBERNETES_VARIABLES.contains(&n.as_str()) && !self.in_scope(n),
            Expr::Call(c) if c.func_name == operators::INDEX && c.args.len() == 2 => {
                let key_ok = match &c.args[1].expr {
                    Expr::Literal(_) => true,
                    Expr::Ident(k) => k.starts_with(INDEX_VAR_PREFIX),
                    _ => false,
                };
                key_ok && self.borrowable(&c.args[0])
            }
            Expr::Call(c)
                if c.func_name == operators::CONDITIONAL
                    && c.args.len() == 3
                    && matches!(&c.args[0].expr, Expr::Call(p) if p.func_name == FN_IS_LIST) =>
            {
                self.borrowable(&c.args[1])
            }
            _ => false,
        }
    }
}

/// Prefix of the index variables introduced by borrowed iteration (`@` cannot
/// appear in user identifiers).
const INDEX_VAR_PREFIX: &str = "@i";

fn free_idents(e: &IdedExpr, out: &mut Vec<String>) {
    match &e.expr {
        Expr::Ident(n) if !out.contains(n) => out.push(n.clone()),
        Expr::Call(c) => {
            if let Some(t) = &c.target {
                free_idents(t, out);
            }
            for a in &c.args {
                free_idents(a, out);
            }
        }
        Expr::Select(s) => free_idents(&s.operand, out),
        Expr::List(l) => l.elements.iter().for_each(|x| free_idents(x, out)),
        // Paths contain only identifiers, calls and literals.
        _ => {}
    }
}

/// Whether a comprehension inside `e` binds one of `names`.
fn binds_any(e: &IdedExpr, names: &[String]) -> bool {
    let hit = |x: &IdedExpr| binds_any(x, names);
    match &e.expr {
        Expr::Comprehension(c) => {
            names.iter().any(|n| *n == c.iter_var || *n == c.accu_var)
                || [
                    &c.iter_range,
                    &c.accu_init,
                    &c.loop_cond,
                    &c.loop_step,
                    &c.result,
                ]
                .into_iter()
                .any(hit)
        }
        Expr::Call(c) => c.target.as_deref().is_some_and(hit) || c.args.iter().any(hit),
        Expr::Select(s) => hit(&s.operand),
        Expr::List(l) => l.elements.iter().any(hit),
        Expr::Map(MapExpr { entries }) | Expr::Struct(StructExpr { entries, .. }) => {
            entries.iter().any(|en| match &en.expr {
                EntryExpr::MapEntry(me) => hit(&me.key) || hit(&me.value),
                EntryExpr::StructField(sf) => hit(&sf.value),
            })
        }
        Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => false,
    }
}

/// Recognises the loops the `map` and `filter` macros expand to:
/// `accu = []`, `accu + [e]` or `p ? accu + [e] : accu`, result `accu`.
/// Returns the predicate (`true` for `map(x, e)`) and the element.
fn as_map_macro(
    accu_init: &IdedExpr,
    accu: &str,
    loop_cond: &IdedExpr,
    loop_step: &IdedExpr,
    result: &IdedExpr,
) -> Option<(IdedExpr, IdedExpr)> {
    let empty_init = matches!(&accu_init.expr, Expr::List(l) if l.elements.is_empty());
    let always = matches!(&loop_cond.expr, Expr::Literal(LiteralValue::Boolean(b)) if *b.inner());
    if !empty_init || !always || !is_ident(result, accu) {
        return None;
    }
    // `accu + [e]`, where `[e]` may carry the size guard.
    let append = |e: &IdedExpr| -> Option<IdedExpr> {
        let Expr::Call(add) = &e.expr else {
            return None;
        };
        if add.func_name != operators::ADD || add.args.len() != 2 || !is_ident(&add.args[0], accu) {
            return None;
        }
        let mut list = &add.args[1];
        if let Expr::Call(w) = &list.expr
            && w.func_name == FN_CALL
            && w.args.len() == 2
        {
            list = &w.args[1];
        }
        match &list.expr {
            Expr::List(l) if l.elements.len() == 1 && l.optional_indices.is_empty() => {
                Some(l.elements[0].clone())
            }
            _ => None,
        }
    };
    if let Some(element) = append(loop_step) {
        return Some((
            IdedExpr {
                id: 0,
                expr: Expr::Literal(LiteralValue::Boolean(true.into())),
            },
            element,
        ));
    }
    let Expr::Call(cond) = &loop_step.expr else {
        return None;
    };
    if cond.func_name == operators::CONDITIONAL
        && cond.args.len() == 3
        && is_ident(&cond.args[2], accu)
    {
        let element = append(&cond.args[1])?;
        return Some((cond.args[0].clone(), element));
    }
    None
}

//! The shared function registry and the internal functions the compiler's
//! rewrites call into: cost accounting, lazy `variables.*`, and optional
//! field selection.

use std::fmt;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, OnceLock};
use std::time::Instant;

use kube_cel::KubeCelExt;
use kube_cel::cel::common::traits::Indexer;
use kube_cel::cel::common::types::{CelList, CelMap, CelOptional, CelString};
use kube_cel::cel::objects::{Key, Opaque, OptionalValue};
use kube_cel::cel::{Context, ExecutionError, FunctionContext, ResolveResult, Value};

use crate::convert::approx_size;
use crate::error::EvalError;
use crate::limits::Limits;
use crate::variables::VarState;

/// Context variable holding the per-evaluation [`EvalState`].
pub(crate) const STATE_KEY: &str = "@rampart.state";
/// Context variable holding the per-activation [`VarState`].
pub(crate) const VARS_KEY: &str = "@rampart.vars";

/// Internal function names. They start with `@`, which the CEL grammar does
/// not allow in identifiers, so user expressions cannot call them.
pub(crate) const FN_CALL: &str = "@rampart.call";
pub(crate) const FN_TICK: &str = "@rampart.tick";
pub(crate) const FN_GUARDED: &str = "@rampart.guarded";
pub(crate) const FN_VAR: &str = "@rampart.var";
pub(crate) const FN_OPT_SELECT: &str = "@rampart.opt_select";
pub(crate) const FN_INDICES: &str = "@rampart.indices";
pub(crate) const FN_IS_LIST: &str = "@rampart.is_list";
pub(crate) const FN_HAS_PATH: &str = "@rampart.has_path";
pub(crate) const FN_SIZE: &str = "@rampart.size";
pub(crate) const FN_MAP: &str = "@rampart.map";

/// Names of the parameters bound for a guarded call's template.
pub(crate) const PARAM_NAMES: [&str; 4] = ["@p0", "@p1", "@p2", "@p3"];

/// Library functions with super-linear cost or output, checked before they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i64)]
pub(crate) enum Guard {
    /// `<string>.replace(old, new[, n])`: output size computed up front.
    Replace = 0,
    /// `lists.range(n)`: output size computed up front.
    Range = 1,
    /// `sets.contains/equivalent/intersects(a, b)`: |a|·|b| comparisons charged up front.
    SetsPairwise = 2,
    /// `<list>.distinct()`: n² comparisons charged up front.
    Distinct = 3,
}

impl Guard {
    pub(crate) fn for_call(name: &str) -> Option<Guard> {
        match name {
            "replace" => Some(Guard::Replace),
            "lists.range" => Some(Guard::Range),
            "sets.contains" | "sets.equivalent" | "sets.intersects" => Some(Guard::SetsPairwise),
            "distinct" => Some(Guard::Distinct),
            _ => None,
        }
    }

    fn from_i64(i: i64) -> Option<Guard> {
        match i {
            0 => Some(Guard::Replace),
            1 => Some(Guard::Range),
            2 => Some(Guard::SetsPairwise),
            3 => Some(Guard::Distinct),
            _ => None,
        }
    }
}

/// Flat cost of calling a function, beyond the size of what it returns.
/// Regular-expression functions compile their pattern on every call.
pub(crate) fn call_weight(name: &str) -> i64 {
    match name {
        "matches" | "find" | "findAll" => 20,
        _ => 1,
    }
}

/// Every function and method known to the shared registry: the `cel` crate's
/// standard library plus the kube-cel 0.8 libraries. The compiler rejects calls
/// to anything else; a test checks each name is really registered.
#[rustfmt::skip]
pub(crate) const KNOWN_FUNCTIONS: &[&str] = &[
    // cel standard library
    "contains", "size", "max", "min", "startsWith", "endsWith", "string", "bytes", "double", "int",
    "uint", "optional.none", "optional.of", "optional.ofNonZeroValue", "value", "hasValue", "or",
    "orValue", "matches", "duration", "timestamp", "getFullYear", "getMonth", "getDayOfYear",
    "getDayOfMonth", "getDate", "getDayOfWeek", "getHours", "getMinutes", "getSeconds",
    "getMilliseconds",
    // kube-cel: strings, lists, sets, regex
    "charAt", "indexOf", "lastIndexOf", "lowerAscii", "upperAscii", "replace", "split", "substring",
    "trim", "join", "reverse", "strings.quote", "isSorted", "sum", "slice", "sort", "flatten",
    "distinct", "first", "last", "lists.range", "sets.contains", "sets.equivalent",
    "sets.intersects", "find", "findAll",
    // kube-cel: urls
    "url", "isURL", "getScheme", "getHost", "getHostname", "getPort", "getEscapedPath", "getQuery",
    // kube-cel: ip / cidr
    "ip", "isIP", "isIPv4", "isIPv6", "ip.isCanonical", "family", "isLoopback", "isUnspecified",
    "isLinkLocalMulticast", "isLinkLocalUnicast", "isGlobalUnicast", "cidr", "isCIDR", "isCIDRv4",
    "isCIDRv6", "containsIP", "containsCIDR", "prefixLength", "masked",
    // kube-cel: semver, quantity
    "semver", "isSemver", "major", "minor", "patch", "isGreaterThan", "isLessThan", "compareTo",
    "quantity", "isQuantity", "isInteger", "asInteger", "asApproximateFloat", "sign", "add", "sub",
    // kube-cel: format, named formats, jsonpatch, math, encoders
    "format", "format.dns1123Label", "format.dns1123Subdomain", "format.dns1035Label",
    "format.dns1035LabelPrefix", "format.dns1123LabelPrefix", "format.dns1123SubdomainPrefix",
    "format.qualifiedName", "format.labelValue", "format.uri", "format.uuid", "format.byte",
    "format.date", "format.datetime", "format.named", "validate", "jsonpatch.escapeKey",
    "math.ceil", "math.floor", "math.round", "math.trunc", "math.abs", "math.sign", "math.sqrt",
    "math.isInf", "math.isNaN", "math.isFinite", "math.bitAnd", "math.bitOr", "math.bitXor",
    "math.bitNot", "math.bitShiftLeft", "math.bitShiftRight", "math.greatest", "math.least",
    "base64.decode", "base64.encode",
];

/// The root context: standard library, kube-cel libraries and Rampart's
/// internal functions. Built once; every [`Bindings`](crate::Bindings) is a
/// child scope of it, so no registry is rebuilt per request.
pub(crate) static ROOT: LazyLock<Context<'static>> = LazyLock::new(|| {
    let mut ctx = Context::default().with_all();
    ctx.add_function(FN_CALL, guarded_call);
    ctx.add_function(FN_TICK, tick);
    ctx.add_function(FN_GUARDED, prechecked_call);
    ctx.add_function(FN_VAR, variable);
    ctx.add_function(FN_OPT_SELECT, opt_select);
    ctx.add_function(FN_INDICES, indices);
    ctx.add_function(FN_IS_LIST, is_list);
    ctx.add_function(FN_HAS_PATH, has_path);
    ctx.add_function(FN_SIZE, size_of);
    ctx.add_function(FN_MAP, map_filter);
    ctx
});

/// Per-evaluation state: cost spent, deadline and the first limit violation.
pub(crate) struct EvalState {
    budget: Option<u64>,
    max_value_bytes: Option<usize>,
    timeout: Option<std::time::Duration>,
    deadline: Option<Instant>,
    cost: AtomicU64,
    checks: AtomicU32,
    abort: OnceLock<EvalError>,
}

impl fmt::Debug for EvalState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EvalState")
            .field("cost", &self.cost.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl PartialEq for EvalState {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}
impl Eq for EvalState {}

impl Opaque for EvalState {
    fn runtime_type_name(&self) -> &str {
        "rampart.EvalState"
    }
}

/// How often (in charges) the wall clock is read.
const CLOCK_EVERY: u32 = 8;

impl EvalState {
    pub(crate) fn new(limits: &Limits) -> Self {
        EvalState {
            budget: limits.cost_budget,
            max_value_bytes: limits.max_value_bytes,
            timeout: limits.timeout,
            deadline: limits.timeout.map(|t| Instant::now() + t),
            cost: AtomicU64::new(0),
            checks: AtomicU32::new(0),
            abort: OnceLock::new(),
        }
    }

    pub(crate) fn cost(&self) -> u64 {
        self.cost.load(Ordering::Relaxed)
    }

    /// The limit violation that stopped this evaluation, if any.
    pub(crate) fn aborted(&self) -> Option<&EvalError> {
        self.abort.get()
    }

    fn fail(&self, err: EvalError) -> ExecutionError {
        let err = self.abort.get_or_init(|| err);
        ExecutionError::function_error("rampart", err)
    }

    /// Charges `units` of cost and checks the deadline. Fails (and stays
    /// failed: every later charge fails too) once a limit is exceeded.
    pub(crate) fn charge(&self, units: u64) -> Result<(), ExecutionError> {
        if let Some(err) = self.abort.get() {
            return Err(ExecutionError::function_error("rampart", err));
        }
        let total = self
            .cost
            .fetch_add(units, Ordering::Relaxed)
            .saturating_add(units);
        if let Some(budget) = self.budget
            && total > budget
        {
            return Err(self.fail(EvalError::CostLimitExceeded { budget }));
        }
        if let (Some(deadline), Some(limit)) = (self.deadline, self.timeout)
            && self
                .checks
                .fetch_add(1, Ordering::Relaxed)
                .is_multiple_of(CLOCK_EVERY)
            && Instant::now() >= deadline
        {
            return Err(self.fail(EvalError::Timeout { limit }));
        }
        Ok(())
    }

    /// Checks a value against the size limit and charges for its size.
    pub(crate) fn account_value(&self, value: &Value) -> Result<(), ExecutionError> {
        if matches!(
            value,
            Value::Bool(_) | Value::Int(_) | Value::UInt(_) | Value::Float(_) | Value::Null
        ) {
            return Ok(());
        }
        let cap = self.max_value_bytes.map_or(u64::MAX, |m| m as u64);
        let size = approx_size(value, cap);
        self.check_size(size)?;
        self.charge(size / 32)
    }

    /// Fails if a value of `size` bytes would exceed the limit.
    pub(crate) fn check_size(&self, size: u64) -> Result<(), ExecutionError> {
        if let Some(limit) = self.max_value_bytes
            && size > limit as u64
        {
            return Err(self.fail(EvalError::ValueTooLarge { size, limit }));
        }
        Ok(())
    }
}

/// Finds the per-evaluation state from any scope of an evaluation.
pub(crate) fn state_of(ctx: &Context<'_>) -> Result<Arc<dyn Opaque>, ExecutionError> {
    find_opaque(ctx, STATE_KEY)
        .ok_or_else(|| ExecutionError::function_error("rampart", "internal: no evaluation state"))
}

fn find_opaque(ctx: &Context<'_>, key: &str) -> Option<Arc<dyn Opaque>> {
    let v = ctx.get_variable(key)?;
    match Value::try_from(v.as_ref()) {
        Ok(Value::Opaque(o)) => Some(o),
        _ => None,
    }
}

fn downcast<T: 'static>(o: &Arc<dyn Opaque>) -> Result<&T, ExecutionError> {
    o.downcast_ref::<T>()
        .ok_or_else(|| ExecutionError::function_error("rampart", "internal: bad state type"))
}

/// Walks up the scope chain to the scope that itself defines `key`.
pub(crate) fn scope_defining<'a>(mut ctx: &'a Context<'a>, key: &str) -> Option<&'a Context<'a>> {
    loop {
        match ctx {
            Context::Child {
                parent, variables, ..
            } => {
                if variables.contains_key(key) {
                    return Some(ctx);
                }
                ctx = parent;
            }
            Context::Root { variables, .. } => {
                return variables.contains_key(key).then_some(ctx);
            }
        }
    }
}

fn literal_int(ftx: &FunctionContext, idx: usize) -> Result<i64, ExecutionError> {
    let expr = ftx
        .args
        .get(idx)
        .ok_or_else(|| ExecutionError::function_error("rampart", "internal: missing argument"))?;
    match Value::resolve(expr, ftx.ptx)? {
        Value::Int(i) => Ok(i),
        _ => Err(ExecutionError::function_error(
            "rampart",
            "internal: expected int literal",
        )),
    }
}

/// `@rampart.call(weight, <call>)`: charges the call, runs it, then checks
/// and charges the size of its result.
fn guarded_call(ftx: &FunctionContext) -> ResolveResult {
    let state = state_of(ftx.ptx)?;
    let state: &EvalState = downcast(&state)?;
    let weight = literal_int(ftx, 0)?;
    state.charge(weight.max(0) as u64)?;
    let v = Value::resolve(&ftx.args[1], ftx.ptx)?;
    state.account_value(&v)?;
    Ok(v)
}

/// `@rampart.tick(<loop condition>)`: charges one comprehension iteration.
///
/// The interpreter copies a list accumulator (`map`, `filter`) on every
/// iteration, so an iteration is charged 1 plus 1 per 4 accumulated elements.
fn tick(ftx: &FunctionContext) -> ResolveResult {
    let state = state_of(ftx.ptx)?;
    let accumulated = ftx
        .ptx
        .get_variable(crate::compile::ACCUMULATOR)
        .and_then(|v| v.downcast_ref::<CelList>().map(|l| l.inner().len()))
        .unwrap_or(0);
    downcast::<EvalState>(&state)?.charge(1 + accumulated as u64 / 4)?;
    Value::resolve(&ftx.args[0], ftx.ptx)
}

fn list_len(v: &Value) -> u64 {
    match v {
        Value::List(l) => l.len() as u64,
        _ => 0,
    }
}

/// `@rampart.guarded(kind, <template call over @p0..>, args...)`: evaluates
/// the arguments, checks the projected cost/size of the call, then runs the
/// template with the arguments bound.
fn prechecked_call(ftx: &FunctionContext) -> ResolveResult {
    let state_arc = state_of(ftx.ptx)?;
    let state: &EvalState = downcast(&state_arc)?;
    let guard = Guard::from_i64(literal_int(ftx, 0)?)
        .ok_or_else(|| ExecutionError::function_error("rampart", "internal: bad guard"))?;
    state.charge(1)?;
    let mut values = Vec::with_capacity(ftx.args.len().saturating_sub(2));
    for arg in &ftx.args[2..] {
        values.push(Value::resolve(arg, ftx.ptx)?);
    }
    match guard {
        Guard::Replace => {
            if let (Some(Value::String(s)), Some(Value::String(old)), Some(Value::String(new))) =
                (values.first(), values.get(1), values.get(2))
            {
                let limit = match values.get(3) {
                    Some(Value::Int(n)) if *n >= 0 => *n as u64,
                    _ => u64::MAX,
                };
                let count = if old.is_empty() {
                    s.chars().count() as u64 + 1
                } else {
                    s.matches(old.as_str()).count() as u64
                }
                .min(limit);
                let projected = (s.len() as u64)
                    .saturating_add(count.saturating_mul(new.len() as u64))
                    .saturating_sub(count.saturating_mul(old.len() as u64));
                state.check_size(projected)?;
                state.charge(s.len() as u64 / 32)?;
            }
        }
        Guard::Range => {
            if let Some(Value::Int(n)) = values.first() {
                let n = (*n).max(0) as u64;
                state.check_size(n.saturating_mul(crate::convert::VALUE_NODE_BYTES))?;
                state.charge(n / 4)?;
            }
        }
        Guard::SetsPairwise => {
            let (a, b) = (
                values.first().map_or(0, list_len),
                values.get(1).map_or(0, list_len),
            );
            state.charge(a.saturating_mul(b) / 8)?;
        }
        Guard::Distinct => {
            let n = values.first().map_or(0, list_len);
            state.charge(n.saturating_mul(n) / 8)?;
        }
    }
    let mut scope = ftx.ptx.new_inner_scope();
    for (name, v) in PARAM_NAMES.iter().zip(values) {
        scope.add_variable_from_value(*name, v);
    }
    let v = Value::resolve(&ftx.args[1], &scope)?;
    state.account_value(&v)?;
    Ok(v)
}

/// `@rampart.var(index)`: the value of `variables.<name>`, evaluated at most
/// once per activation.
fn variable(ftx: &FunctionContext) -> ResolveResult {
    let index = literal_int(ftx, 0)?;
    let state_arc = state_of(ftx.ptx)?;
    let activation = scope_defining(ftx.ptx, VARS_KEY)
        .ok_or_else(|| ExecutionError::function_error("variables", EvalError::VariablesNotBound))?;
    let vars_arc = find_opaque(activation, VARS_KEY)
        .ok_or_else(|| ExecutionError::function_error("variables", EvalError::VariablesNotBound))?;
    let vars: &VarState = downcast(&vars_arc)?;
    let index = usize::try_from(index)
        .map_err(|_| ExecutionError::function_error("rampart", "internal: bad variable index"))?;
    let value = vars
        .get(index, activation, &state_arc)
        .map_err(|e| ExecutionError::function_error("variables", e))?;
    downcast::<EvalState>(&state_arc)?.account_value(&value)?;
    Ok(value)
}

/// `@rampart.opt_select(operand, 'field')`: CEL's `operand.?field`.
///
/// Replaces the `cel` crate's built-in, which errors on an absent field of a
/// plain map and nests optionals when chained.
fn opt_select(ftx: &FunctionContext) -> ResolveResult {
    let field = match Value::resolve(&ftx.args[1], ftx.ptx)? {
        Value::String(s) => s,
        _ => {
            return Err(ExecutionError::function_error(
                "_?._",
                "field must be a string",
            ));
        }
    };
    let operand = Value::resolve_val(&ftx.args[0], ftx.ptx)?;
    let target = match operand.downcast_ref::<CelOptional>() {
        Some(opt) => match opt.inner() {
            Some(inner) => inner,
            None => return Ok(Value::Opaque(Arc::new(OptionalValue::none()))),
        },
        None => operand.as_ref(),
    };
    let Some(map) = target.downcast_ref::<CelMap>() else {
        return Err(ExecutionError::function_error(
            "_?._",
            format!(
                "optional field selection '.?{field}' requires a map, got {}",
                target.get_type().name()
            ),
        ));
    };
    let key = CelString::from(field.as_str());
    match Indexer::get(map, &key) {
        Ok(v) => Ok(Value::Opaque(Arc::new(OptionalValue::of(Value::try_from(
            v.as_ref(),
        )?)))),
        Err(_) => Ok(Value::Opaque(Arc::new(OptionalValue::none()))),
    }
}

/// `@rampart.indices(<range>)`: what a comprehension over `range` iterates,
/// without copying `range`: `[0, 1, ..]` for a list, the keys for a map.
fn indices(ftx: &FunctionContext) -> ResolveResult {
    let range = Value::resolve_val(&ftx.args[0], ftx.ptx)?;
    if let Some(list) = range.downcast_ref::<CelList>() {
        let n = list.inner().len() as i64;
        return Ok(Value::List(Arc::new((0..n).map(Value::Int).collect())));
    }
    if let Some(map) = range.downcast_ref::<CelMap>() {
        return Ok(Value::List(Arc::new(
            map.inner()
                .keys()
                .map(|k| Value::from(Key::from(k.clone())))
                .collect(),
        )));
    }
    Err(ExecutionError::NoSuchOverload)
}

/// `@rampart.is_list(<range>)`: whether `range` is a list (no copy).
fn is_list(ftx: &FunctionContext) -> ResolveResult {
    let range = Value::resolve_val(&ftx.args[0], ftx.ptx)?;
    Ok(Value::Bool(range.downcast_ref::<CelList>().is_some()))
}

/// `@rampart.has_path(<base>, 'f1', .., 'fn')`: whether `base.?f1...?fn`
/// has a value, walking borrowed values. Like `.?`, selecting from a present
/// value that is not a map is an error.
fn has_path(ftx: &FunctionContext) -> ResolveResult {
    let base = Value::resolve_val(&ftx.args[0], ftx.ptx)?;
    let mut current: &dyn kube_cel::cel::common::value::Val = base.as_ref();
    for arg in &ftx.args[1..] {
        let field = match Value::resolve(arg, ftx.ptx)? {
            Value::String(s) => s,
            _ => {
                return Err(ExecutionError::function_error(
                    "_?._",
                    "field must be a string",
                ));
            }
        };
        let Some(map) = current.downcast_ref::<CelMap>() else {
            return Err(ExecutionError::function_error(
                "_?._",
                format!(
                    "optional field selection '.?{field}' requires a map, got {}",
                    current.get_type().name()
                ),
            ));
        };
        match map
            .inner()
            .get(&kube_cel::cel::common::types::CelMapKey::from(
                field.as_str(),
            )) {
            Some(v) => current = v.as_ref(),
            None => return Ok(Value::Bool(false)),
        }
    }
    Ok(Value::Bool(true))
}

/// `@rampart.size(<path>)`: `size()` of a borrowed value, without copying it.
/// Same results as the standard `size` (strings count bytes in this engine).
fn size_of(ftx: &FunctionContext) -> ResolveResult {
    let v = Value::resolve_val(&ftx.args[0], ftx.ptx)?;
    let n = if let Some(l) = v.downcast_ref::<CelList>() {
        l.inner().len()
    } else if let Some(m) = v.downcast_ref::<CelMap>() {
        m.inner().len()
    } else if let Some(s) = v.downcast_ref::<CelString>() {
        s.inner().len()
    } else if let Some(b) = v.downcast_ref::<kube_cel::cel::common::types::CelBytes>() {
        b.inner().len()
    } else {
        return Err(ExecutionError::function_error(
            "size",
            format!("cannot determine the size of {}", v.get_type().name()),
        ));
    };
    Ok(Value::Int(n as i64))
}

/// `@rampart.map(<range>, 'var', <predicate>, <element>)`: the `map` and
/// `filter` macros, collecting into one list. The interpreter's own loop
/// appends by copying the whole accumulated list on every iteration
/// (quadratic); this is linear. Each iteration is charged like a
/// comprehension iteration, and the growing result is size-checked.
fn map_filter(ftx: &FunctionContext) -> ResolveResult {
    let state_arc = state_of(ftx.ptx)?;
    let state: &EvalState = downcast(&state_arc)?;
    state.charge(1)?;
    let var = match Value::resolve(&ftx.args[1], ftx.ptx)? {
        Value::String(s) => s,
        _ => {
            return Err(ExecutionError::function_error(
                "rampart",
                "internal: bad loop variable",
            ));
        }
    };
    let items: Vec<Value> = {
        let range = Value::resolve_val(&ftx.args[0], ftx.ptx)?;
        if let Some(list) = range.downcast_ref::<CelList>() {
            list.inner()
                .iter()
                .map(|v| Value::try_from(v.as_ref()))
                .collect::<Result<_, _>>()?
        } else if let Some(map) = range.downcast_ref::<CelMap>() {
            map.inner()
                .keys()
                .map(|k| Value::from(Key::from(k.clone())))
                .collect()
        } else {
            return Err(ExecutionError::NoSuchOverload);
        }
    };
    let cap = state.max_value_bytes.map_or(u64::MAX, |m| m as u64);
    let mut out = Vec::new();
    let mut total: u64 = 0;
    for item in items {
        state.charge(1)?;
        let mut scope = ftx.ptx.new_inner_scope();
        scope.add_variable_from_value(var.as_str(), item);
        let keep = match Value::resolve(&ftx.args[2], &scope)? {
            Value::Bool(b) => b,
            _ => return Err(ExecutionError::NoSuchOverload),
        };
        if keep {
            let v = Value::resolve(&ftx.args[3], &scope)?;
            let size = approx_size(&v, cap);
            total = total.saturating_add(size);
            state.check_size(total)?;
            state.charge(size / 32)?;
            out.push(v);
        }
    }
    Ok(Value::List(Arc::new(out)))
}

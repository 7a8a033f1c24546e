//! Hostile expressions: every guard must stop them quickly with a clear error.
//!
//! Time bounds are generous because tests run unoptimised; the point is that
//! each case terminates in well under a second or two instead of running for
//! minutes or exhausting memory.

use std::time::{Duration, Instant};

use rampart_cel::{
    Bindings, CompileErrorKind, CompileOptions, DEFAULT_COST_BUDGET, EvalError, Limits, Program,
    VariableSet,
};

const FAST: Duration = Duration::from_secs(3);

/// Tests of the cost budget use a smaller budget and no timeout, so that the
/// (deterministic) budget is what stops them, even in slow unoptimised builds.
const TEST_BUDGET: u64 = 100_000;

fn run(src: &str) -> (Result<rampart_cel::Value, EvalError>, Duration) {
    run_with(
        src,
        Limits {
            cost_budget: Some(TEST_BUDGET),
            timeout: None,
            ..Limits::default()
        },
    )
}

fn run_with(src: &str, limits: Limits) -> (Result<rampart_cel::Value, EvalError>, Duration) {
    let program = Program::compile_with(
        src,
        &CompileOptions {
            limits,
            ..Default::default()
        },
    )
    .unwrap_or_else(|e| panic!("{src}: {e}"));
    let start = Instant::now();
    let r = program.evaluate(&Bindings::empty());
    (r, start.elapsed())
}

#[track_caller]
fn assert_stopped(src: &str, expect: fn(&EvalError) -> bool) {
    let (r, took) = run(src);
    let err = r.expect_err(src);
    assert!(expect(&err), "{src}: unexpected error {err:?}");
    assert!(err.is_limit(), "{src}: {err:?}");
    assert!(took < FAST, "{src}: took {took:?}");
}

fn cost(e: &EvalError) -> bool {
    *e == EvalError::CostLimitExceeded {
        budget: TEST_BUDGET,
    }
}

fn too_large(e: &EvalError) -> bool {
    matches!(e, EvalError::ValueTooLarge { .. })
}

#[test]
fn nested_comprehensions_hit_the_cost_budget() {
    // 10^9 iterations if unchecked.
    assert_stopped(
        "lists.range(1000).all(i, lists.range(1000).all(j, lists.range(1000).all(k, k >= 0)))",
        cost,
    );
    assert_stopped(
        "lists.range(1000).exists(i, lists.range(1000).exists(j, lists.range(1000).exists(k, k < 0)))",
        cost,
    );
    assert_stopped(
        "lists.range(2000).map(i, lists.range(2000).map(j, i * j)).size() > 0",
        cost,
    );
    let e =
        run("lists.range(1000).all(i, lists.range(1000).all(j, lists.range(1000).all(k, true)))")
            .0
            .unwrap_err();
    assert_eq!(
        e.to_string(),
        "evaluation exceeded its cost budget of 100000 units"
    );
    // The default limits stop it too (by budget or, in slow builds, by time).
    let (r, took) = run_with(
        "lists.range(1000).all(i, lists.range(1000).all(j, lists.range(1000).all(k, true)))",
        Limits::default(),
    );
    let err = r.unwrap_err();
    assert!(
        err == EvalError::CostLimitExceeded {
            budget: DEFAULT_COST_BUDGET
        } || matches!(err, EvalError::Timeout { .. }),
        "{err:?}"
    );
    assert!(took < FAST, "{took:?}");
}

#[test]
fn map_and_filter_run_in_linear_time() {
    // The engine's own `map`/`filter` copy the accumulated list on every
    // iteration (quadratic); Rampart's replacement collects linearly.
    let limits = Limits {
        timeout: None,
        ..Limits::default()
    };
    for src in [
        "lists.range(50000).map(x, x * 2).size() == 50000",
        "lists.range(50000).filter(x, x % 2 == 0).size() == 25000",
        "lists.range(50000).map(x, x % 2 == 0, x).size() == 25000",
    ] {
        let (r, took) = run_with(src, limits.clone());
        assert_eq!(r.unwrap(), rampart_cel::Value::Bool(true), "{src}");
        assert!(took < FAST, "{src}: {took:?}");
    }
    // Still bounded: iterations are charged and the result is size-checked
    // while it grows.
    assert_stopped(
        &format!(
            "lists.range(200000).map(x, '{}').size() > 0",
            "x".repeat(100)
        ),
        |e| e.is_limit(),
    );
    let (r, _) = run_with(
        &format!(
            "lists.range(200000).map(x, '{}').size() > 0",
            "x".repeat(100)
        ),
        limits,
    );
    assert!(matches!(r, Err(EvalError::ValueTooLarge { .. })), "{r:?}");
}

#[test]
fn exponential_strings_and_lists_hit_the_size_limit() {
    // Each variable doubles the previous one: 2^40 bytes if unchecked.
    let defs: Vec<(String, String)> = std::iter::once(("v0".to_owned(), "'abcdefgh'".to_owned()))
        .chain((1..40).map(|i| {
            (
                format!("v{i}"),
                format!("variables.v{} + variables.v{}", i - 1, i - 1),
            )
        }))
        .collect();
    let vars = VariableSet::compile(defs.iter().map(|(a, b)| (a.as_str(), b.as_str()))).unwrap();
    let p = Program::compile_with(
        "size(variables.v39) > 0",
        &CompileOptions {
            variables: Some(&vars),
            ..Default::default()
        },
    )
    .unwrap();
    let start = Instant::now();
    let err = p
        .evaluate(&Bindings::empty().with_variables(&vars))
        .unwrap_err();
    assert!(too_large(&err), "{err:?}");
    assert!(start.elapsed() < FAST, "{:?}", start.elapsed());

    // Same with lists built from list literals.
    let defs: Vec<(String, String)> = std::iter::once(("v0".to_owned(), "[1, 2, 3, 4]".to_owned()))
        .chain((1..40).map(|i| {
            (
                format!("v{i}"),
                format!("[variables.v{0}, variables.v{0}]", i - 1),
            )
        }))
        .collect();
    let vars = VariableSet::compile(defs.iter().map(|(a, b)| (a.as_str(), b.as_str()))).unwrap();
    let p = Program::compile_with(
        "size(variables.v39) > 0",
        &CompileOptions {
            variables: Some(&vars),
            ..Default::default()
        },
    )
    .unwrap();
    let err = p
        .evaluate(&Bindings::empty().with_variables(&vars))
        .unwrap_err();
    assert!(err.is_limit(), "{err:?}");
}

#[test]
fn amplifying_functions_are_checked_before_they_allocate() {
    // 10 bytes * 1000^3: refused before the last replace allocates ~10 GB.
    let ks = "k".repeat(1000);
    assert_stopped(
        &format!(
            "'kkkkkkkkkk'.replace('k', '{ks}').replace('k', '{ks}').replace('k', '{ks}').size() > 0"
        ),
        too_large,
    );
    // An empty pattern matches between every character: 4001 * 4000 bytes.
    let x = "x".repeat(4000);
    assert_stopped(&format!("'{x}'.replace('', '{x}').size() > 0"), too_large);
    assert_stopped("lists.range(1000000000).size() > 0", too_large);
    assert_stopped("lists.range(9223372036854775807).size() > 0", too_large);
    // Quadratic set operations are charged before running.
    assert_stopped(
        "sets.contains(lists.range(100000), lists.range(100000).reverse())",
        cost,
    );
    assert_stopped("lists.range(100000).distinct().size() > 0", cost);
    // Small inputs are unaffected.
    let (r, _) = run("'aaa'.replace('a', 'bb') == 'bbbbbb' && sets.contains([1, 2], [2])");
    assert_eq!(r.unwrap(), rampart_cel::Value::Bool(true));
}

#[test]
fn limit_errors_are_not_absorbed_by_logical_operators() {
    // CEL's `||` would turn (error || true) into true; a spent budget must not.
    for src in [
        "lists.range(1000).all(i, lists.range(1000).all(j, lists.range(1000).all(k, true))) || true",
        "true && (false || lists.range(1000).all(i, lists.range(1000).all(j, lists.range(1000).all(k, true))) || true)",
        "lists.range(1000).exists(i, lists.range(1000).exists(j, lists.range(1000).exists(k, k < 0))) || true",
    ] {
        assert_stopped(src, cost);
    }
}

#[test]
fn timeout_stops_work_the_budget_allows() {
    let limits = Limits {
        cost_budget: None,
        timeout: Some(Duration::from_millis(50)),
        ..Limits::default()
    };
    let (r, took) = run_with(
        "lists.range(1000).all(i, lists.range(1000).all(j, lists.range(1000).all(k, k >= 0)))",
        limits,
    );
    assert_eq!(
        r.unwrap_err(),
        EvalError::Timeout {
            limit: Duration::from_millis(50)
        }
    );
    assert!(took < Duration::from_secs(1), "{took:?}");
}

#[test]
fn regex_backtracking_bombs_are_harmless() {
    // The regex crate matches in linear time.
    let (r, took) = run(&format!("'{}'.matches('^(a+)+$')", "a".repeat(5000) + "!"));
    assert_eq!(r.unwrap(), rampart_cel::Value::Bool(false));
    assert!(took < FAST, "{took:?}");
}

#[test]
fn oversized_and_deep_sources_are_rejected_at_compile_time() {
    let long = format!("{} == 1", "1 + ".repeat(5000));
    let e = Program::compile(&long).unwrap_err();
    assert_eq!(e.kind, CompileErrorKind::TooLong);
    assert!(e.message.contains("10240"), "{}", e.message);

    let parens = format!("{}1{} == 1", "(".repeat(40), ")".repeat(40));
    let e = Program::compile(&parens).unwrap_err();
    assert_eq!(e.kind, CompileErrorKind::TooDeep);
    assert_eq!((e.line, e.column), (1, 33));

    let lists = format!("{}1{}", "[".repeat(1000), "]".repeat(1000));
    assert_eq!(
        Program::compile(&lists).unwrap_err().kind,
        CompileErrorKind::TooDeep
    );

    // No brackets, but a deep tree (left-associative `+`, nested ternaries).
    let plus = format!("{} == 0", vec!["1"; 200].join(" + "));
    assert_eq!(
        Program::compile(&plus).unwrap_err().kind,
        CompileErrorKind::TooDeep
    );
    let tern = format!("{}1 == 1", "true ? 1 : ".repeat(200));
    assert_eq!(
        Program::compile(&tern).unwrap_err().kind,
        CompileErrorKind::TooDeep
    );
}

#[test]
fn compiling_hostile_sources_does_not_use_the_callers_stack() {
    // A small caller stack: parsing happens on the compiler's own thread.
    let handle = std::thread::Builder::new()
        .stack_size(128 * 1024)
        .spawn(|| {
            let parens = format!("{}1{} == 1", "(".repeat(32), ")".repeat(32));
            let ok = Program::compile(&parens).is_ok();
            let tern = format!("{}1 == 1", "true ? 1 : ".repeat(300));
            let deep = Program::compile(&tern).unwrap_err().kind;
            (ok, deep)
        })
        .unwrap();
    assert_eq!(handle.join().unwrap(), (true, CompileErrorKind::TooDeep));
}

#[test]
fn expressions_at_the_depth_limit_evaluate_on_a_bounded_stack() {
    // Expressions just inside the default limits, evaluated on a thread with a
    // bounded stack. Optimised builds need about 2 KiB of stack per syntax-tree
    // level, unoptimised ones about 60 KiB; a variable evaluated from inside
    // an expression adds its own depth once.
    let stack = if cfg!(debug_assertions) {
        8 << 20
    } else {
        1 << 20
    };
    let max = Limits::default().max_ast_depth;
    let mut sources = Vec::new();
    // Left-deep `+` chain of string concatenations (each one a guarded call).
    sources.push(format!("size({}) > 0", vec!["'a'"; max - 3].join(" + ")));
    // Method-call chain.
    sources.push(format!("size('A'{}) > 0", ".lowerAscii()".repeat(max - 3)));
    // Nested ternaries.
    sources.push(format!("{}true", "false ? false : ".repeat(max - 2)));
    // Nested comprehensions, each with its own scope.
    let mut nested = "true".to_owned();
    for i in 0..(max / 4) {
        nested = format!("[{i}].all(x{i}, {nested})");
    }
    sources.push(nested);
    // Nested comprehensions over a nested document (borrowed iteration
    // repeats the iterated path inside each loop).
    let levels = max / 4;
    let mut nested_doc = serde_json::json!([{"v": 1}]);
    for _ in 0..levels {
        nested_doc = serde_json::json!([{"a": nested_doc}]);
    }
    let mut nested_src = "x.v == 1".to_owned();
    for i in (0..=levels).rev() {
        let range = if i == 0 {
            "object.a".to_owned()
        } else {
            format!("x{}.a", i - 1)
        };
        let var = if i == levels {
            "x".to_owned()
        } else {
            format!("x{i}")
        };
        nested_src = format!("{range}.all({var}, {nested_src})");
    }
    let nested_doc = serde_json::json!({"a": nested_doc});
    // A deep variable used at the bottom of a deep expression.
    let deep_var = format!("{}'a'", "'a' + ".repeat(max - 2));
    let vars = VariableSet::compile([("deep", deep_var.as_str())]).unwrap();
    let with_var = format!("size({}variables.deep) > 0", "'a' + ".repeat(max - 4));
    let handle = std::thread::Builder::new()
        .stack_size(stack)
        .spawn(move || {
            let mut results: Vec<bool> = sources
                .iter()
                .map(|src| {
                    let p = Program::compile(src).unwrap_or_else(|e| panic!("{src}: {e}"));
                    p.evaluate_bool(&Bindings::empty()).unwrap()
                })
                .collect();
            let p = Program::compile_with(
                &with_var,
                &CompileOptions {
                    variables: Some(&vars),
                    ..Default::default()
                },
            )
            .unwrap();
            let b = Bindings::empty();
            results.push(p.evaluate_bool(&b.with_variables(&vars)).unwrap());
            let p = Program::compile(&nested_src).unwrap_or_else(|e| panic!("{nested_src}: {e}"));
            let b = Bindings::builder().object(&nested_doc).build().unwrap();
            results.push(p.evaluate_bool(&b).unwrap());
            results
        })
        .unwrap();
    let results = handle.join().unwrap();
    assert_eq!(results, [true; 6]);
}

#[test]
fn typical_policies_stay_far_below_the_budget() {
    let pod = serde_json::json!({"spec": {"containers": [
        {"name": "a", "securityContext": {"allowPrivilegeEscalation": false}},
        {"name": "b", "securityContext": {"allowPrivilegeEscalation": false}},
        {"name": "c", "securityContext": {"allowPrivilegeEscalation": false}}
    ]}});
    let b = Bindings::builder().object(&pod).build().unwrap();
    let p = Program::compile(
        "object.spec.containers.all(c, has(c.securityContext) && c.securityContext.allowPrivilegeEscalation == false)",
    )
    .unwrap();
    let (v, cost) = p.evaluate_with_cost(&b).unwrap();
    assert_eq!(v, rampart_cel::Value::Bool(true));
    assert!(cost > 0 && cost < 100, "{cost}");
}

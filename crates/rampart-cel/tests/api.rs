//! The public API: compile errors, bindings, variables, result types, threads.

use std::sync::Arc;

use rampart_cel::{
    Bindings, CompileErrorKind, CompileOptions, EvalError, InputError, InputLimits, Program, Value,
    VariableError, VariableSet, value_to_json,
};
use serde_json::json;

fn compile_err(src: &str) -> rampart_cel::CompileError {
    match Program::compile(src) {
        Ok(_) => panic!("{src}: expected a compile error"),
        Err(e) => e,
    }
}

fn with_vars<'a>(vars: &'a VariableSet) -> CompileOptions<'a> {
    CompileOptions {
        variables: Some(vars),
        ..Default::default()
    }
}

#[test]
fn syntax_errors_carry_positions() {
    let e = compile_err("1 +");
    assert_eq!(e.kind, CompileErrorKind::Syntax);
    assert_eq!((e.line, e.column, e.offset), (1, 4, 3));
    assert!(e.message.contains("Syntax error"), "{}", e.message);

    let e = compile_err("object.spec.replicas > 1 &&\n  object.spec.( == 2");
    assert_eq!(e.kind, CompileErrorKind::Syntax);
    assert_eq!(e.line, 2);
    assert_eq!(e.column, 15);
    assert!(e.to_string().starts_with("line 2, column 15: "), "{e}");

    let e = compile_err("'unterminated");
    assert_eq!(e.kind, CompileErrorKind::Syntax);
    assert_eq!(e.line, 1);
}

#[test]
fn errors_format_with_policy_and_field() {
    let e = compile_err("object.spec.replicas <= foo");
    assert_eq!(e.kind, CompileErrorKind::UndeclaredVariable);
    assert_eq!((e.line, e.column), (1, 25));
    let located = e.in_policy("max-replicas", "spec.validations[2].expression");
    let text = located.to_string();
    assert!(
        text.starts_with(
            "policy \"max-replicas\": spec.validations[2].expression: line 1, column 25: undeclared reference to 'foo'"
        ),
        "{text}"
    );

    let p = Program::compile("object.spec.replicas").unwrap();
    let err = p.evaluate_bool(&Bindings::empty()).unwrap_err();
    let text = err
        .in_policy("p", "spec.validations[0].expression")
        .to_string();
    assert!(
        text.starts_with("policy \"p\": spec.validations[0].expression: "),
        "{text}"
    );
}

#[test]
fn unknown_variables_and_functions_fail_at_compile_time() {
    let e = compile_err("self.replicas > 0");
    assert_eq!(e.kind, CompileErrorKind::UndeclaredVariable);
    assert!(e.message.contains("'self'"));

    let e = compile_err("object.metadata.name.toUpper() == 'X'");
    assert_eq!(e.kind, CompileErrorKind::UndeclaredFunction);
    assert!(e.message.contains("toUpper"), "{}", e.message);
    assert_eq!(e.column, 22);

    let e = compile_err("variables.foo == 1");
    assert_eq!(e.kind, CompileErrorKind::UndeclaredVariable);
    assert_eq!(e.column, 11);

    let e = compile_err("size(variables) > 0");
    assert_eq!(e.kind, CompileErrorKind::UndeclaredVariable);

    // Comprehension variables are in scope only inside the comprehension.
    assert!(Program::compile("object.items.all(x, x > 0)").is_ok());
    let e = compile_err("object.items.all(x, x > 0) && x > 0");
    assert_eq!(e.kind, CompileErrorKind::UndeclaredVariable);
}

#[test]
fn authorizer_is_rejected_never_silently_passed() {
    for src in [
        "authorizer.group('apps').resource('deployments').check('create').allowed()",
        "object.spec.containers.all(c, authorizer.path('/healthz').check('get').allowed())",
        "true || authorizer.serviceAccount('ns', 'sa').group('').resource('pods').check('get').allowed()",
        "  authorizer.requestResource.check('update').allowed()",
    ] {
        let e = compile_err(src);
        assert_eq!(e.kind, CompileErrorKind::AuthorizerUnsupported, "{src}");
        assert!(e.message.contains("not supported offline"), "{}", e.message);
    }
    assert_eq!(compile_err("  authorizer.requestResource").column, 3);
    // The word itself is fine inside strings or as a comprehension variable.
    assert!(Program::compile("'authorizer' != ''").is_ok());
    assert!(Program::compile("[1].all(authorizer, authorizer > 0)").is_ok());
}

#[test]
fn unsupported_features_are_compile_errors() {
    for src in [
        "cel.bind(x, 1, x + 1) == 2",
        "[1, 2].all(i, v, v > 0)",
        "[1, 2].transformList(i, v, v * 2) == [2, 4]",
        "[2, 1].sortBy(x, x) == [1, 2]",
        "type(1) == int",
        "optional.of(1).optMap(x, x + 1).value() == 2",
        "Foo{a: 1} == Foo{a: 1}",
    ] {
        let e = compile_err(src);
        assert_eq!(e.kind, CompileErrorKind::Unsupported, "{src}: {e:?}");
        assert!(e.message.contains("not supported"), "{src}: {e}");
    }
    assert_eq!(
        compile_err("cel.bind(x, 1, x)").kind,
        CompileErrorKind::Unsupported
    );
}

#[test]
fn non_bool_results_are_clear_errors() {
    let p = Program::compile("object.spec.replicas").unwrap();
    let obj = json!({"spec": {"replicas": 3}});
    let b = Bindings::builder().object(&obj).build().unwrap();
    assert_eq!(p.evaluate(&b).unwrap(), Value::Int(3));
    let err = p.evaluate_bool(&b).unwrap_err();
    assert_eq!(
        err,
        EvalError::WrongType {
            expected: "bool",
            got: "int".into()
        }
    );
    assert_eq!(err.to_string(), "expression must evaluate to bool, got int");

    let msg = Program::compile("'too many replicas: %d'.format([object.spec.replicas])").unwrap();
    assert_eq!(msg.evaluate_string(&b).unwrap(), "too many replicas: 3");
    assert!(matches!(
        p.evaluate_string(&b),
        Err(EvalError::WrongType {
            expected: "string",
            ..
        })
    ));
}

#[test]
fn bindings_follow_kubernetes_null_semantics() {
    let obj = json!({"metadata": {"name": "a"}, "spec": {"replicas": 2}});
    let old = json!({"metadata": {"name": "a"}, "spec": {"replicas": 1}});
    let create = Bindings::builder()
        .object(&obj)
        .old_object(None::<&serde_json::Value>)
        .build()
        .unwrap();
    let update = Bindings::builder()
        .object(&obj)
        .old_object(Some(&old))
        .build()
        .unwrap();
    let p =
        Program::compile("oldObject == null || object.spec.replicas >= oldObject.spec.replicas")
            .unwrap();
    assert!(p.evaluate_bool(&create).unwrap());
    assert!(p.evaluate_bool(&update).unwrap());
    let grew =
        Program::compile("oldObject != null && object.spec.replicas > oldObject.spec.replicas")
            .unwrap();
    assert!(!grew.evaluate_bool(&create).unwrap());
    assert!(grew.evaluate_bool(&update).unwrap());
}

#[test]
fn request_params_and_namespace_object() {
    let obj = json!({"metadata": {"name": "web", "namespace": "prod"}});
    let request = json!({
        "uid": "1",
        "operation": "CREATE",
        "namespace": "prod",
        "userInfo": {"username": "alice", "groups": ["dev"]},
        "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
        "object": {"huge": "dropped"},
    });
    let params = json!({"maxReplicas": 5});
    let ns = json!({"metadata": {"name": "prod", "labels": {"env": "production"}}});
    let b = Bindings::builder()
        .object(&obj)
        .request(&request)
        .params(&params)
        .namespace_object(&ns)
        .build()
        .unwrap();
    for src in [
        "request.operation == 'CREATE'",
        "request.userInfo.username == 'alice' && 'dev' in request.userInfo.groups",
        "request.kind.kind == 'Deployment'",
        "!has(request.object)",
        "params.maxReplicas == 5",
        "namespaceObject.metadata.labels.env == 'production'",
    ] {
        assert!(
            Program::compile(src).unwrap().evaluate_bool(&b).unwrap(),
            "{src}"
        );
    }
}

#[test]
fn input_limits_are_enforced() {
    let big = json!({"data": "x".repeat(4096)});
    let small = InputLimits {
        max_bytes: 1024,
        max_depth: 64,
    };
    let err = Bindings::builder()
        .object(&big)
        .input_limits(small)
        .build()
        .unwrap_err();
    assert_eq!(
        err,
        InputError::TooLarge {
            variable: "object",
            limit: 1024
        }
    );
    let mut deep = json!(1);
    for _ in 0..100 {
        deep = json!([deep]);
    }
    let err = Bindings::builder().params(&deep).build().unwrap_err();
    assert!(matches!(
        err,
        InputError::TooDeep {
            variable: "params",
            limit: 64
        }
    ));
    // Raw bytes are size-checked before parsing.
    let bytes = vec![b' '; 2048];
    let err = Bindings::builder()
        .object(rampart_cel::Input::JsonBytes(&bytes))
        .input_limits(small)
        .build()
        .unwrap_err();
    assert!(matches!(err, InputError::TooLarge { .. }));
    let ok = br#"{"a": 1}"#;
    let b = Bindings::builder()
        .object(rampart_cel::Input::JsonBytes(ok))
        .build()
        .unwrap();
    assert!(
        Program::compile("object.a == 1")
            .unwrap()
            .evaluate_bool(&b)
            .unwrap()
    );
}

#[test]
fn variables_compose_and_are_checked() {
    let vars = VariableSet::compile([
        ("containers", "object.spec.containers"),
        ("names", "variables.containers.map(c, c.name)"),
        ("count", "size(variables.names)"),
    ])
    .unwrap();
    assert_eq!(
        vars.names().collect::<Vec<_>>(),
        ["containers", "names", "count"]
    );
    let obj = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]}});
    let b = Bindings::builder().object(&obj).build().unwrap();
    let act = b.with_variables(&vars);
    let p = Program::compile_with(
        "variables.count == 2 && 'b' in variables.names",
        &with_vars(&vars),
    )
    .unwrap();
    assert!(p.uses_variables());
    assert!(p.evaluate_bool(&act).unwrap());
    let v = Program::compile_with("variables.names", &with_vars(&vars))
        .unwrap()
        .evaluate(&act)
        .unwrap();
    assert_eq!(value_to_json(&v).unwrap(), json!(["a", "b"]));

    // Without the variables bound: a clear error, not a crash or a guess.
    assert_eq!(p.evaluate(&b), Err(EvalError::VariablesNotBound));
    // With another set: refused.
    let other = VariableSet::compile([("count", "1")]).unwrap();
    assert_eq!(
        p.evaluate(&b.with_variables(&other)),
        Err(EvalError::VariableSetMismatch)
    );
    // A program not using variables evaluates under any scope.
    let plain =
        Program::compile_with("object.spec.containers.size() == 2", &with_vars(&vars)).unwrap();
    assert!(!plain.uses_variables());
    assert!(plain.evaluate_bool(&b).unwrap());
    assert!(plain.evaluate_bool(&act).unwrap());
}

#[test]
fn variable_definition_errors() {
    let err = VariableSet::compile([("a", "variables.b"), ("b", "1")]).unwrap_err();
    match err {
        VariableError::Compile { index, name, error } => {
            assert_eq!((index, name.as_str()), (0, "a"));
            assert_eq!(error.kind, CompileErrorKind::UndeclaredVariable);
            assert_eq!(error.column, 11);
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        VariableSet::compile([("a", "1"), ("a", "2")]),
        Err(VariableError::Duplicate { index: 1, .. })
    ));
    assert!(matches!(
        VariableSet::compile([("not-valid", "1")]),
        Err(VariableError::InvalidName { index: 0, .. })
    ));
    assert!(matches!(
        VariableSet::compile([("self_ref", "variables.self_ref + 1")]),
        Err(VariableError::Compile { .. })
    ));
    assert!(matches!(
        VariableSet::compile([("a", "authorizer.path('/').check('get').allowed()")]),
        Err(VariableError::Compile { error, .. }) if error.kind == CompileErrorKind::AuthorizerUnsupported
    ));
}

#[test]
fn variables_are_lazy_and_evaluated_at_most_once() {
    // `expensive` costs ~10k units; `broken` fails when evaluated.
    let vars = VariableSet::compile([
        (
            "expensive",
            "lists.range(10000).filter(i, i % 1000 == 0).size()",
        ),
        ("broken", "object.missing.field + 1"),
        ("ok", "object.x"),
    ])
    .unwrap();
    let obj = json!({"x": 1});
    let b = Bindings::builder().object(&obj).build().unwrap();
    let opts = with_vars(&vars);

    // Laziness: an erroring variable that is never used does not matter;
    // one that is short-circuited away is not evaluated either.
    let p = Program::compile_with("variables.ok == 1", &opts).unwrap();
    assert!(p.evaluate_bool(&b.with_variables(&vars)).unwrap());
    let p = Program::compile_with("variables.ok == 1 || variables.broken == 2", &opts).unwrap();
    assert!(p.evaluate_bool(&b.with_variables(&vars)).unwrap());
    // When it is used, the error names the variable.
    let p = Program::compile_with("variables.broken == 2", &opts).unwrap();
    let err = p.evaluate_bool(&b.with_variables(&vars)).unwrap_err();
    assert!(err.to_string().contains("variables.broken"), "{err}");

    // At most once: referencing it three times costs about as much as once,
    // and a second program on the same activation reuses the value.
    let once = Program::compile_with("variables.expensive == 10", &opts).unwrap();
    let thrice = Program::compile_with(
        "variables.expensive == 10 && variables.expensive > 0 && variables.expensive < 11",
        &opts,
    )
    .unwrap();
    let (_, cost_once) = once.evaluate_with_cost(&b.with_variables(&vars)).unwrap();
    let (_, cost_thrice) = thrice.evaluate_with_cost(&b.with_variables(&vars)).unwrap();
    assert!(cost_once > 10_000, "{cost_once}");
    assert!(cost_thrice < cost_once + 10, "{cost_thrice} vs {cost_once}");
    let shared = b.with_variables(&vars);
    let (_, first) = once.evaluate_with_cost(&shared).unwrap();
    let (_, second) = thrice.evaluate_with_cost(&shared).unwrap();
    assert!(first > 10_000 && second < 10, "{first} then {second}");
}

#[test]
fn path_variables_are_inlined_without_changing_results() {
    // `containers` is a plain path: it is inlined (nothing to evaluate or
    // copy), also inside loops, except where a loop rebinds `object`.
    let vars = VariableSet::compile([
        ("containers", "object.spec.containers"),
        ("first", "variables.containers[0]"),
        ("names", "variables.containers.map(c, c.name)"),
    ])
    .unwrap();
    let obj = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]}});
    let b = Bindings::builder().object(&obj).build().unwrap();
    let act = b.with_variables(&vars);
    for (src, expected) in [
        ("variables.first.name", json!("a")),
        ("variables.containers.map(c, c.name)", json!(["a", "b"])),
        ("variables.names", json!(["a", "b"])),
        (
            "variables.containers.all(c, variables.first.name <= c.name)",
            json!(true),
        ),
        (
            "[{'spec': {'containers': []}}].all(object, size(variables.containers) == 2 && size(object.spec.containers) == 0)",
            json!(true),
        ),
    ] {
        let p = Program::compile_with(src, &with_vars(&vars)).unwrap();
        assert!(p.uses_variables(), "{src}");
        let v = p.evaluate(&act).unwrap_or_else(|e| panic!("{src}: {e}"));
        assert_eq!(value_to_json(&v).unwrap(), expected, "{src}");
    }
    let (_, cost) = Program::compile_with("variables.first.name == 'a'", &with_vars(&vars))
        .unwrap()
        .evaluate_with_cost(&act)
        .unwrap();
    assert_eq!(cost, 0);
}

#[test]
fn compile_once_evaluate_from_many_threads() {
    let program = Arc::new(
        Program::compile(
            "object.spec.containers.all(c, has(c.securityContext) && c.securityContext.allowPrivilegeEscalation == false)",
        )
        .unwrap(),
    );
    let vars = VariableSet::compile([("n", "size(object.spec.containers)")]).unwrap();
    let uses_var = Arc::new(Program::compile_with("variables.n >= 1", &with_vars(&vars)).unwrap());
    let good =
        json!({"spec": {"containers": [{"securityContext": {"allowPrivilegeEscalation": false}}]}});
    let bad =
        json!({"spec": {"containers": [{"securityContext": {"allowPrivilegeEscalation": true}}]}});
    let shared_good = Arc::new(Bindings::builder().object(&good).build().unwrap());
    std::thread::scope(|s| {
        let mut handles = Vec::new();
        for t in 0..4 {
            let program = Arc::clone(&program);
            let uses_var = Arc::clone(&uses_var);
            let shared_good = Arc::clone(&shared_good);
            let (bad, vars) = (&bad, &vars);
            handles.push(s.spawn(move || {
                let own_bad = Bindings::builder().object(bad).build().unwrap();
                let act = shared_good.with_variables(vars);
                for i in 0..200 {
                    assert!(
                        program.evaluate_bool(&*shared_good).unwrap(),
                        "thread {t} iter {i}"
                    );
                    assert!(
                        !program.evaluate_bool(&own_bad).unwrap(),
                        "thread {t} iter {i}"
                    );
                    assert!(uses_var.evaluate_bool(&act).unwrap());
                }
                t
            }));
        }
        let done: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(done, [0, 1, 2, 3]);
    });
    // One activation shared by several threads is fine as well.
    let act = shared_good.with_variables(&vars);
    std::thread::scope(|s| {
        for _ in 0..3 {
            s.spawn(|| assert!(uses_var.evaluate_bool(&act).unwrap()));
        }
    });
}

#[test]
fn results_convert_to_json() {
    let obj = json!({"spec": {"containers": [{"name": "a", "ports": [80, 443]}]}});
    let b = Bindings::builder().object(&obj).build().unwrap();
    let v = Program::compile("object.spec.containers.map(c, {'n': c.name, 'p': c.ports.size()})")
        .unwrap()
        .evaluate(&b)
        .unwrap();
    assert_eq!(value_to_json(&v).unwrap(), json!([{"n": "a", "p": 2}]));
    let q = Program::compile("quantity('1Gi')")
        .unwrap()
        .evaluate(&b)
        .unwrap();
    assert_eq!(value_to_json(&q), None);
}

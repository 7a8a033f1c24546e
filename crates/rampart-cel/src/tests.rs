//! Internal tests: registry consistency and thread-safety guarantees.

use kube_cel::cel::common::ast::{CallExpr, Expr, IdedExpr};
use kube_cel::cel::{ExecutionError, Value};

use crate::runtime::{KNOWN_FUNCTIONS, ROOT};
use crate::{Activation, Bindings, Program, VariableSet};

#[test]
fn every_known_function_is_registered() {
    for name in KNOWN_FUNCTIONS {
        let expr = IdedExpr {
            id: 0,
            expr: Expr::Call(CallExpr {
                func_name: (*name).to_owned(),
                target: None,
                args: vec![],
            }),
        };
        let result = Value::resolve(&expr, &ROOT);
        if let Err(ExecutionError::UndeclaredReference(n)) = &result {
            assert_ne!(n.as_str(), *name, "{name} is listed but not registered");
        }
    }
    // And the check is able to fail:
    let expr = IdedExpr {
        id: 0,
        expr: Expr::Call(CallExpr {
            func_name: "noSuchFunction".to_owned(),
            target: None,
            args: vec![],
        }),
    };
    assert!(matches!(
        Value::resolve(&expr, &ROOT),
        Err(ExecutionError::UndeclaredReference(_))
    ));
}

#[test]
fn public_types_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Program>();
    assert_send_sync::<Bindings>();
    assert_send_sync::<Activation<'static>>();
    assert_send_sync::<VariableSet>();
    assert_send_sync::<crate::EvalError>();
    assert_send_sync::<crate::CompileError>();
}

#[test]
fn borrowed_iteration_and_fused_optionals_match_the_plain_interpreter() {
    let pod = serde_json::json!({
        "metadata": {"name": "web", "labels": {"app": "web", "team": "a"}},
        "spec": {"containers": [
            {"name": "a", "ports": [{"containerPort": 80}, {"containerPort": 443}],
             "env": [{"name": "X", "value": "1"}],
             "resources": {"limits": {"cpu": "1", "memory": "1Gi"}},
             "securityContext": {"allowPrivilegeEscalation": false}},
            {"name": "b", "ports": [], "env": [],
             "resources": {"limits": {"memory": "2Gi", "gpu": "1"}}}
        ]}
    });
    let b = Bindings::builder().object(&pod).build().unwrap();
    let cases = [
        "object.spec.containers.all(c, has(c.securityContext) && c.securityContext.allowPrivilegeEscalation == false)",
        "object.spec.containers.exists(c, has(c.securityContext))",
        "object.spec.containers.exists_one(c, c.name == 'b')",
        "object.spec.containers.map(c, c.name)",
        "object.spec.containers.map(c, c)",
        "object.spec.containers.map(c, c.ports.size() > 0, c.name)",
        "object.spec.containers.filter(c, c.ports.size() == 0)",
        "object.spec.containers.all(c, c.ports.all(p, p.containerPort > 0))",
        "object.spec.containers.map(c, c.ports.map(p, p.containerPort))",
        "object.spec.containers.all(c, c.env.all(e, e.name.size() > 0 && c.name != ''))",
        "object.spec.containers.all(c, c.resources.limits.all(k, k in ['cpu', 'memory']))",
        "object.spec.containers.map(c, c.resources.limits.map(k, c.resources.limits[k]).sort())",
        "object.metadata.labels.all(k, k.size() > 0)",
        // (map iteration order is unspecified: sort)
        "object.metadata.labels.map(k, object.metadata.labels[k]).sort()",
        "object.metadata.labels.filter(k, k.startsWith('t'))",
        "object.spec.containers.exists(c, c == object.spec.containers[1])",
        // Shadowing and capture.
        "object.spec.containers.all(c, [1].all(c, c == 1))",
        "object.spec.containers.all(object, has(object.name))",
        "object.spec.containers.all(c, [object].all(object, size(object.spec.containers) == 2 && c.name != ''))",
        "object.spec.containers.all(c, object.spec.containers.exists(d, d.name == c.name))",
        "[object.spec.containers].all(cs, cs.all(c, c.name != ''))",
        // Errors must be the same.
        "object.spec.containers.all(c, c.missing == 1)",
        "object.metadata.name.all(x, true)",
        "object.spec.nothing.all(x, true)",
        // size() of paths.
        "size(object.spec.containers) == 2 && object.spec.containers.size() == 2",
        "object.metadata.labels.size() + object.metadata.name.size() + size(object.spec.containers[0].name)",
        "object.spec.containers.all(c, size(c.ports) >= 0 && c.env.size() >= 0)",
        "size(object.spec.containers[0].resources.limits.cpu)",
        "size(object.spec.containers[0].ports[0].containerPort)",
        // Optional chains.
        "object.?spec.?hostNetwork.orValue(false)",
        "object.?metadata.?labels.?team.orValue('')",
        "object.?spec.?containers.hasValue()",
        "object.?spec.?nope.hasValue()",
        "object.?metadata.?name.?foo.orValue(1)",
        "oldObject.?spec.?x.orValue(1)",
        "object.spec.containers.all(c, c.?securityContext.?allowPrivilegeEscalation.orValue(true) == false)",
        "object.spec.containers.map(c, c.?resources.?limits.?gpu.orValue('0'))",
    ];
    // The rewrites do apply (so the comparison below is not vacuous)...
    let uses =
        |src: &str, f: &str| format!("{:?}", Program::compile(src).unwrap().expr()).contains(f);
    use crate::runtime::{FN_HAS_PATH, FN_INDICES, FN_OPT_SELECT, FN_SIZE};
    assert!(
        cases
            .iter()
            .all(|c| Program::compile_unoptimized(c).is_ok())
    );
    assert!(uses(cases[0], FN_INDICES));
    let nested = "object.spec.containers.all(c, c.ports.all(p, p.containerPort > 0))";
    assert!(uses(nested, "@i1"), "nested loops both iterate by index");
    let chain = "object.?spec.?hostNetwork.orValue(false)";
    assert!(uses(chain, FN_HAS_PATH) && !uses(chain, FN_OPT_SELECT));
    assert!(uses("size(object.spec.containers) == 2", FN_SIZE));
    assert!(uses(
        "object.spec.containers.map(c, c.name)",
        crate::runtime::FN_MAP
    ));
    // ...except where a name would be captured.
    let capture = "object.spec.containers.all(c, [object].all(object, size(object.spec.containers) == 2 && c.name != ''))";
    assert!(cases.contains(&capture) && !uses(capture, FN_INDICES));
    // ...and the results are the same.
    for src in cases {
        let fast = Program::compile(src).unwrap().evaluate(&b);
        let plain = Program::compile_unoptimized(src).unwrap().evaluate(&b);
        match (&fast, &plain) {
            (Ok(x), Ok(y)) => assert_eq!(x, y, "{src}"),
            (Err(_), Err(_)) => {}
            _ => panic!("{src}: optimised {fast:?} vs plain {plain:?}"),
        }
    }
}

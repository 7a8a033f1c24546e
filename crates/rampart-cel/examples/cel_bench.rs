//! Micro-benchmark: compile time per expression, binding (JSON conversion)
//! time, and evaluations per second for typical pod policies.
//!
//! Run with `cargo run --release -p rampart-cel --example cel_bench`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rampart_cel::{Bindings, CompileOptions, Limits, Program, VariableSet};
use serde_json::json;

const POLICIES: &[(&str, &str)] = &[
    (
        "no-privilege-escalation",
        "object.spec.containers.all(c, has(c.securityContext) && c.securityContext.allowPrivilegeEscalation == false)",
    ),
    (
        "trusted-registry",
        "object.spec.containers.all(c, c.image.startsWith('registry.example.com/'))",
    ),
    (
        "image-tag-regex",
        "object.spec.containers.all(c, c.image.matches('^registry\\\\.example\\\\.com/[a-z-]+:[0-9.]+$'))",
    ),
    (
        "memory-limit-quantity",
        "object.spec.containers.all(c, has(c.resources.limits) && 'memory' in c.resources.limits && quantity(c.resources.limits.memory).compareTo(quantity('1Gi')) <= 0)",
    ),
    (
        "required-labels",
        "has(object.metadata.labels) && ['app.kubernetes.io/name', 'team'].all(l, l in object.metadata.labels)",
    ),
    (
        "optional-host-network",
        "!object.?spec.?hostNetwork.orValue(false)",
    ),
    (
        "message-expression",
        "'pod %s/%s has %d containers'.format([object.metadata.namespace, object.metadata.name, size(object.spec.containers)])",
    ),
];

fn container(i: usize) -> serde_json::Value {
    json!({
        "name": format!("c{i}"),
        "image": format!("registry.example.com/app-{i}:1.{i}.0"),
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"containerPort": 8080, "protocol": "TCP"}],
        "env": [{"name": "MODE", "value": "prod"}, {"name": "LOG", "value": "info"}],
        "securityContext": {"allowPrivilegeEscalation": false, "runAsNonRoot": true,
                            "capabilities": {"drop": ["ALL"]}},
        "resources": {"limits": {"memory": "512Mi", "cpu": "500m"},
                      "requests": {"memory": "256Mi", "cpu": "100m"}},
        "volumeMounts": [{"name": "data", "mountPath": "/data"}]
    })
}

fn pod(containers: usize) -> serde_json::Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "web-7d4b9c", "namespace": "prod", "uid": "6f1c2a5e-0000-4000-8000-000000000001",
            "labels": {"app.kubernetes.io/name": "web", "team": "payments", "pod-template-hash": "7d4b9c"},
            "annotations": {"kubectl.kubernetes.io/restartedAt": "2024-01-01T00:00:00Z"}
        },
        "spec": {
            "serviceAccountName": "web",
            "containers": (0..containers).map(container).collect::<Vec<_>>(),
            "volumes": [{"name": "data", "emptyDir": {}}]
        }
    })
}

fn per_op(total: Duration, n: u32) -> String {
    let ns = total.as_nanos() as f64 / f64::from(n);
    if ns >= 1_000_000.0 {
        format!("{:.2} ms", ns / 1_000_000.0)
    } else if ns >= 1_000.0 {
        format!("{:.2} µs", ns / 1_000.0)
    } else {
        format!("{ns:.0} ns")
    }
}

/// Runs `f` repeatedly for about `budget`, returning (iterations, elapsed).
fn measure(budget: Duration, mut f: impl FnMut()) -> (u32, Duration) {
    for _ in 0..100 {
        f();
    }
    let start = Instant::now();
    let mut n = 0u32;
    while start.elapsed() < budget {
        for _ in 0..100 {
            f();
        }
        n += 100;
    }
    (n, start.elapsed())
}

fn main() {
    let pod3 = pod(3);
    let pod_bytes = serde_json::to_vec(&pod3).unwrap().len();
    let bindings = Bindings::builder().object(&pod3).build().unwrap();
    let budget = Duration::from_millis(700);

    println!("== compile (default limits; includes the parser thread) ==");
    let mut programs = Vec::new();
    for (name, src) in POLICIES {
        let n = 200;
        let start = Instant::now();
        for _ in 0..n {
            black_box(Program::compile(src).unwrap());
        }
        println!("{name:<26} {:>10} per compile", per_op(start.elapsed(), n));
        programs.push((*name, Program::compile(src).unwrap()));
    }

    println!();
    println!("== bindings (JSON -> CEL, once per request) ==");
    for containers in [3, 100] {
        let doc = pod(containers);
        let bytes = serde_json::to_vec(&doc).unwrap().len();
        let (n, t) = measure(budget, || {
            black_box(Bindings::builder().object(&doc).build().unwrap());
        });
        println!(
            "pod with {containers:>3} containers ({bytes:>6} B JSON) {:>10} per build",
            per_op(t, n)
        );
    }

    println!();
    println!("== evaluate: pod with 3 containers ({pod_bytes} B JSON), 1 thread ==");
    println!(
        "{:<26} {:>12} {:>12} {:>8} {:>14}",
        "policy", "guarded", "evals/s", "cost", "unguarded"
    );
    for (name, program) in &programs {
        let (_, cost) = program.evaluate_with_cost(&bindings).unwrap();
        let (n, t) = measure(budget, || {
            black_box(program.evaluate(&bindings).unwrap());
        });
        let unguarded = Program::compile_with(
            program.source(),
            &CompileOptions {
                limits: Limits::unguarded(),
                ..Default::default()
            },
        )
        .unwrap();
        let (un, ut) = measure(budget, || {
            black_box(unguarded.evaluate(&bindings).unwrap());
        });
        println!(
            "{name:<26} {:>12} {:>12.0} {:>8} {:>14}",
            per_op(t, n),
            f64::from(n) / t.as_secs_f64(),
            cost,
            per_op(ut, un)
        );
    }

    println!();
    println!("== evaluate: main policy on a pod with 100 containers ==");
    let pod100 = pod(100);
    let b100 = Bindings::builder().object(&pod100).build().unwrap();
    let main = &programs[0].1;
    let (_, cost) = main.evaluate_with_cost(&b100).unwrap();
    let (n, t) = measure(budget, || {
        black_box(main.evaluate(&b100).unwrap());
    });
    println!(
        "{:<26} {:>12} {:>12.0} evals/s, cost {cost}",
        programs[0].0,
        per_op(t, n),
        f64::from(n) / t.as_secs_f64()
    );

    println!();
    println!("== variables (VAP style), fresh activation per evaluation ==");
    let vars = VariableSet::compile([
        ("containers", "object.spec.containers"),
        (
            "escalating",
            "variables.containers.filter(c, !has(c.securityContext) || c.securityContext.allowPrivilegeEscalation != false)",
        ),
    ])
    .unwrap();
    let uses = Program::compile_with(
        "size(variables.escalating) == 0",
        &CompileOptions {
            variables: Some(&vars),
            ..Default::default()
        },
    )
    .unwrap();
    let (n, t) = measure(budget, || {
        let act = bindings.with_variables(&vars);
        black_box(uses.evaluate_bool(&act).unwrap());
    });
    println!(
        "{:<26} {:>12} {:>12.0} evals/s",
        "size(variables.escalating)",
        per_op(t, n),
        f64::from(n) / t.as_secs_f64()
    );

    println!();
    println!("== throughput: main policy, shared program and bindings, 2 threads ==");
    let program = Arc::new(Program::compile(POLICIES[0].1).unwrap());
    let bindings = Arc::new(bindings);
    let start = Instant::now();
    let per_thread = 200_000u32;
    std::thread::scope(|s| {
        for _ in 0..2 {
            let (program, bindings) = (Arc::clone(&program), Arc::clone(&bindings));
            s.spawn(move || {
                for _ in 0..per_thread {
                    black_box(program.evaluate_bool(&*bindings).unwrap());
                }
            });
        }
    });
    let t = start.elapsed();
    println!(
        "{:.0} evals/s total ({} evaluations in {:.2?})",
        f64::from(2 * per_thread) / t.as_secs_f64(),
        2 * per_thread,
        t
    );

    println!();
    println!("== hostile expressions (default limits): time to be stopped ==");
    for src in [
        "lists.range(1000).all(i, lists.range(1000).all(j, lists.range(1000).all(k, k >= 0)))",
        "lists.range(1000).map(i, lists.range(1000).map(j, i * j)).size() > 0",
        "sets.contains(lists.range(100000), lists.range(100000))",
        "lists.range(1000000000).size() > 0",
    ] {
        let p = Program::compile(src).unwrap();
        let start = Instant::now();
        let err = p.evaluate(&Bindings::empty()).unwrap_err();
        println!("{:>10.2?}  {err}  <- {src}", start.elapsed());
    }
}

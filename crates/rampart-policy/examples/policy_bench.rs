//! Policy evaluation benchmark: compile time per policy and evaluations per
//! second for 1, 20 and 200 CEL policies on a typical pod. Run by
//! `bench/policy.sh` in release mode.
//!
//! usage: policy-bench [SECONDS_PER_CASE]   (default 2)

use std::hint::black_box;
use std::time::{Duration, Instant};

use rampart_policy::{PolicySet, Request};
use serde_json::{Value, json};

/// Validations of realistic complexity; `{i}` makes each policy's text unique.
const VALIDATIONS: &[(&str, &str)] = &[
    (
        "no-privilege-escalation",
        "variables.containers.all(c, has(c.securityContext) && has(c.securityContext.allowPrivilegeEscalation) && c.securityContext.allowPrivilegeEscalation == false)",
    ),
    (
        "pinned-images",
        "variables.containers.all(c, c.image.contains(':') && !c.image.endsWith(':latest') && size(c.image) < 200 + {i})",
    ),
    (
        "memory-limits",
        "object.spec.containers.all(c, has(c.resources) && has(c.resources.limits) && 'memory' in c.resources.limits && quantity(c.resources.limits.memory).isLessThan(quantity('{i}Gi').add(quantity('8Gi'))))",
    ),
    (
        "owner-label",
        "has(object.metadata.labels) && 'app.kubernetes.io/name' in object.metadata.labels && !object.metadata.labels['app.kubernetes.io/name'].startsWith('tmp-{i}')",
    ),
    (
        "no-host-namespaces",
        "(!has(object.spec.hostNetwork) || !object.spec.hostNetwork) && (!has(object.spec.hostPID) || !object.spec.hostPID) && (!has(object.spec.hostIPC) || !object.spec.hostIPC)",
    ),
    (
        "no-host-ports",
        "object.spec.containers.all(c, !has(c.ports) || c.ports.all(p, !has(p.hostPort) || p.hostPort == 0 || p.hostPort == {i} + 100000))",
    ),
    (
        "allowed-registries",
        "variables.containers.all(c, c.image.startsWith('registry.example.com/') || c.image.startsWith('ghcr.io/acme-{i}/') || c.image.startsWith('ghcr.io/acme/'))",
    ),
    (
        "drop-all",
        "object.spec.containers.all(c, has(c.securityContext) && has(c.securityContext.capabilities) && has(c.securityContext.capabilities.drop) && 'ALL' in c.securityContext.capabilities.drop)",
    ),
];

/// Policy `i`; with `shared_variable`, expressions read the containers
/// through a `variables.containers` variable, otherwise from the object.
fn policy(i: usize, shared_variable: bool) -> Value {
    // 1 to 3 validations per policy.
    let count = 1 + i % 3;
    let validations: Vec<Value> = (0..count)
        .map(|k| {
            let (name, expr) = VALIDATIONS[(i + k * 3) % VALIDATIONS.len()];
            let mut expr = expr.replace("{i}", &i.to_string());
            if !shared_variable {
                expr = expr.replace("variables.containers", "object.spec.containers");
            }
            json!({"name": name, "expression": expr, "message": format!("{name} failed")})
        })
        .collect();
    let mut p = json!({
        "apiVersion": "rampart.dev/v1alpha1",
        "kind": "ClusterPolicy",
        "metadata": {"name": format!("policy-{i}")},
        "spec": {
            "matchConstraints": {"kinds": ["Pod"], "operations": ["CREATE", "UPDATE"]},
            "exclude": {"namespaces": ["kube-system"]},
            "validations": validations,
        }
    });
    if shared_variable {
        p["spec"]["variables"] = json!([{"name": "containers",
            "expression": "object.spec.containers + (has(object.spec.initContainers) ? object.spec.initContainers : [])"}]);
    }
    p
}

fn typical_pod() -> Value {
    let container = |name: &str, image: &str| {
        json!({
            "name": name, "image": image,
            "ports": [{"containerPort": 8080, "name": "http"}],
            "env": [{"name": "MODE", "value": "production"}, {"name": "LOG", "value": "info"}],
            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "500m", "memory": "512Mi"}},
            "securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
                "runAsNonRoot": true, "capabilities": {"drop": ["ALL"]}},
            "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080}},
            "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}},
            "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
        })
    };
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web-7d9f8b-x2x4z", "namespace": "shop",
            "labels": {"app.kubernetes.io/name": "web", "app.kubernetes.io/part-of": "shop", "pod-template-hash": "7d9f8b"},
            "annotations": {"prometheus.io/scrape": "true"}},
        "spec": {
            "serviceAccountName": "web", "automountServiceAccountToken": false,
            "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
            "initContainers": [container("migrate", "registry.example.com/shop/migrate:1.4.2")],
            "containers": [container("web", "registry.example.com/shop/web:2.13.0"), container("proxy", "ghcr.io/acme/proxy:0.9.1")],
            "volumes": [{"name": "tmp", "emptyDir": {}}],
        }
    })
}

/// Runs `f` repeatedly for about `budget`; returns calls per second.
fn rate(budget: Duration, mut f: impl FnMut()) -> f64 {
    // Warm up.
    for _ in 0..10 {
        f();
    }
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < budget {
        for _ in 0..16 {
            f();
        }
        n += 16;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let seconds: f64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    let budget = Duration::from_secs_f64(seconds);
    let request = Request::create(typical_pod()).expect("a valid pod");
    let unmatched = Request::create(json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "c", "namespace": "shop"}, "data": {"a": "b"}}))
    .expect("a valid config map");

    for shared_variable in [false, true] {
        println!(
            "\n{}",
            if shared_variable {
                "containers read through a shared variable (variables.containers = containers + initContainers):"
            } else {
                "containers read from the object (object.spec.containers):"
            }
        );
        println!(
            "{:>8}  {:>11}  {:>14}  {:>13}  {:>13}  {:>18}",
            "policies",
            "validations",
            "compile/policy",
            "evals/s (pod)",
            "us/eval (pod)",
            "evals/s (no match)"
        );
        for n in [1usize, 20, 200] {
            let docs: Vec<Value> = (0..n).map(|i| policy(i, shared_variable)).collect();
            let validations: usize = docs
                .iter()
                .map(|d| d["spec"]["validations"].as_array().map_or(0, Vec::len))
                .sum();
            // Compile time: best of 3.
            let mut best = Duration::MAX;
            let mut set = None;
            for _ in 0..3 {
                let start = Instant::now();
                let s = PolicySet::compile(docs.clone()).expect("benchmark policies compile");
                best = best.min(start.elapsed());
                set = Some(s);
            }
            let set: PolicySet = set.expect("compiled");
            let ev = set.evaluate(&request);
            assert_eq!(
                ev.decisions.len(),
                validations,
                "every validation is evaluated"
            );
            assert!(
                ev.allowed(),
                "the typical pod passes: {:?}",
                ev.denials().next()
            );
            let per_sec = rate(budget, || {
                black_box(set.evaluate(black_box(&request)));
            });
            let unmatched_per_sec = rate(budget / 4, || {
                black_box(set.evaluate(black_box(&unmatched)));
            });
            println!(
                "{:>8}  {:>11}  {:>11.2} ms  {:>13.0}  {:>13.1}  {:>18.0}",
                n,
                validations,
                best.as_secs_f64() * 1e3 / n as f64,
                per_sec,
                1e6 / per_sec,
                unmatched_per_sec
            );
        }
    }
}

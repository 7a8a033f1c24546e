//! End-to-end: policies created with kubectl reach the webhook. A
//! `rampart controller --sync-only` keeps a directory of the cluster's
//! policies, Namespaces and Pods; `rampart serve --policy DIR` hot-reloads
//! it; kube-apiserver calls the webhook. Own test binary: the webhook
//! configuration and the ClusterPolicies are cluster-wide.

mod e2e_support;

use std::path::Path;
use std::time::Duration;

use e2e_support::*;

const DENIAL: &str = "admission webhook \"validate.rampart.dev\" denied the request";

fn ceiling(max: u32) -> String {
    format!(
        r#"apiVersion: rampart.dev/v1alpha1
kind: ClusterPolicy
metadata:
  name: e2e-replica-ceiling
spec:
  matchConstraints:
    kinds: [apps/Deployment]
    operations: [CREATE, UPDATE]
    namespaceSelector:
      matchLabels: {{rampart-e2e/replica-ceiling: "on"}}
  validations:
  - name: ceiling
    expression: "object.spec.replicas <= {max}"
    messageExpression: "'replicas ' + string(object.spec.replicas) + ' above the ceiling of {max}'"
"#
    )
}

const BROKEN: &str = r#"apiVersion: rampart.dev/v1alpha1
kind: ClusterPolicy
metadata:
  name: e2e-broken
spec:
  matchConstraints:
    kinds: [apps/Deployment]
  validations:
  - expression: "object.spec.replicas <="
"#;

/// A Deployment named after its replicas (`web-5`): `kubectl apply` of an
/// unchanged object sends nothing, so each probe must be new.
fn deployment(ns: &str, replicas: u32) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web-{replicas}
  namespace: {ns}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers:
      - name: app
        image: registry.k8s.io/pause:3.10
"#
    )
}

const PARAM_POLICY: &str = r#"apiVersion: rampart.dev/v1alpha1
kind: ClusterPolicy
metadata:
  name: e2e-param-ceiling
spec:
  paramKind: {apiVersion: v1, kind: ConfigMap}
  paramRef:
    name: replica-limits
    namespace: NAMESPACE
    parameterNotFoundAction: Deny
  matchConstraints:
    kinds: [apps/StatefulSet]
    operations: [CREATE, UPDATE]
  validations:
  - name: ceiling
    expression: "object.spec.replicas <= int(params.data.max)"
    messageExpression: "'at most ' + params.data.max + ' replicas here'"
"#;

fn statefulset(ns: &str, replicas: u32) -> String {
    deployment(ns, replicas)
        .replace("kind: Deployment", "kind: StatefulSet")
        .replace("name: web-", "name: db-")
        .replace("  replicas:", "  serviceName: db\n  replicas:")
}

/// `kubectl apply --dry-run=server`: `Ok(())` admitted, `Err(stderr)` not.
fn dry_run(yaml: &str) -> Result<(), String> {
    let out = kubectl_with(&["apply", "--dry-run=server", "-f", "-"], Some(yaml));
    if out.status.success() {
        Ok(())
    } else {
        Err(text(&out).1)
    }
}

fn wait_for_file(path: &Path, what: &str, pred: impl Fn(&str) -> bool) {
    wait_until(Duration::from_secs(60), what, || {
        std::fs::read_to_string(path).is_ok_and(|t| pred(&t))
    });
}

#[test]
#[ignore = "needs a control plane: run e2e/run.sh"]
fn cluster_policies_reach_the_webhook_and_broken_ones_do_not() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let policy_dir = dir.join("policies");
    let ns = fresh_namespace("e2e-policies");
    let other = fresh_namespace("e2e-policies-off");
    kubectl_ok(&["label", "namespace", &ns, "rampart-e2e/replica-ceiling=on"]);
    let _cleanup = Cleanup(|| {
        let _ = kubectl(&[
            "delete",
            "clusterpolicy",
            "e2e-replica-ceiling",
            "e2e-broken",
            "e2e-param-ceiling",
            "--ignore-not-found",
        ]);
        let _ = kubectl(&[
            "delete",
            "validatingwebhookconfiguration,mutatingwebhookconfiguration",
            "rampart-policies",
            "--ignore-not-found",
        ]);
    });

    // The CRDs as `rampart crds` prints them.
    let crds = std::process::Command::new(rampart_bin())
        .arg("crds")
        .output()
        .unwrap();
    assert!(crds.status.success());
    apply(&String::from_utf8(crds.stdout).unwrap());
    wait_until(Duration::from_secs(30), "the ClusterPolicy CRD", || {
        kubectl(&["get", "clusterpolicies.rampart.dev"])
            .status
            .success()
    });

    let _sync = Proc::start(
        "policy-sync",
        &[
            "controller",
            "--sync-only",
            "--policy-dir",
            policy_dir.to_str().unwrap(),
            "--report-interval",
            "1s",
            "--identity",
            "e2e-sync",
        ],
        dir,
    );
    // Namespaces (with their labels) and Pods, for the webhook's lookups.
    let label = format!("name: {ns}");
    wait_for_file(
        &policy_dir.join("namespaces.yaml"),
        "namespaces.yaml",
        |t| t.contains(&label) && t.contains("rampart-e2e/replica-ceiling"),
    );
    wait_for_file(&policy_dir.join("pods.yaml"), "pods.yaml", |_| true);
    wait_for_file(&policy_dir.join("policies.yaml"), "policies.yaml", |_| true);

    apply(&ceiling(3));
    wait_for_file(
        &policy_dir.join("policies.yaml"),
        "the policy in policies.yaml",
        |t| t.contains("e2e-replica-ceiling"),
    );

    let pki = rampart_admission::testing::Pki::new(dir).unwrap();
    let config = dir.join("config.yaml");
    std::fs::write(
        &config,
        "bestPractices: {mode: off}\npodSecurity: {enabled: false}\n",
    )
    .unwrap();
    let (_serve, addr) = start_serve(
        dir,
        &pki,
        &[
            "--config",
            config.to_str().unwrap(),
            "--policy",
            policy_dir.join("policies.yaml").to_str().unwrap(),
            "--namespaces",
            policy_dir.join("namespaces.yaml").to_str().unwrap(),
            "--pods",
            policy_dir.join("pods.yaml").to_str().unwrap(),
            "--reload-interval",
            "200ms",
        ],
    );

    // The webhook configuration for the policies in force, as the
    // controller renders it with --manage-webhook --policy-dir.
    let register = || {
        let out = std::process::Command::new(rampart_bin())
            .args([
                "webhook-config",
                "--name",
                "rampart-policies",
                "--url",
                &format!("https://{addr}"),
                "--ca-bundle-file",
                pki.ca_path().to_str().unwrap(),
                "--config",
                config.to_str().unwrap(),
                "--policy",
                policy_dir.join("policies.yaml").to_str().unwrap(),
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let webhook_config = String::from_utf8(out.stdout).unwrap();
        apply(&webhook_config);
        webhook_config
    };
    let webhook_config = register();
    assert!(webhook_config.contains("deployments"), "{webhook_config}");

    // The policy, created with kubectl, is enforced by the API server
    // through the webhook, in the labelled namespace only.
    wait_until(Duration::from_secs(30), "the policy to be enforced", || {
        dry_run(&deployment(&ns, 5)).is_err_and(|e| e.contains(DENIAL))
    });
    let err = dry_run(&deployment(&ns, 5)).unwrap_err();
    assert!(err.contains("replicas 5 above the ceiling of 3"), "{err}");
    assert!(err.contains("e2e-replica-ceiling"), "{err}");
    apply(&deployment(&ns, 2).replace("web-2", "stored"));
    dry_run(&deployment(&other, 5)).expect("unlabelled namespace: not matched");

    // Changed with kubectl: the new ceiling is in force without restarts.
    apply(&ceiling(1));
    wait_until(Duration::from_secs(30), "the new ceiling", || {
        dry_run(&deployment(&ns, 2)).is_err_and(|e| e.contains("ceiling of 1"))
    });

    // A broken policy is accepted by the API server (CEL is not checked by
    // the CRD schema) but never reaches the webhook: the last good set
    // stays in force, and the error is logged.
    apply(BROKEN);
    wait_until(
        Duration::from_secs(30),
        "the compile error to be logged",
        || _sync.log_text().contains("policies do not compile"),
    );
    let log = _sync.log_text();
    assert!(log.contains("e2e-broken"), "{log}");
    let written = std::fs::read_to_string(policy_dir.join("policies.yaml")).unwrap();
    assert!(!written.contains("e2e-broken"), "{written}");
    let err = dry_run(&deployment(&ns, 2)).unwrap_err();
    assert!(err.contains("ceiling of 1"), "{err}");
    dry_run(&deployment(&ns, 1)).expect("within the ceiling");

    // While a policy does not compile, no update reaches the webhook (the
    // last good set stays whole): remove it.
    kubectl_ok(&["delete", "clusterpolicy", "e2e-broken"]);

    // A policy with parameters (paramKind ConfigMap): the ConfigMap goes to
    // the webhook with the policy, and a change to it takes effect.
    kubectl_ok(&[
        "create",
        "configmap",
        "replica-limits",
        "-n",
        &ns,
        "--from-literal=max=2",
    ]);
    apply(&PARAM_POLICY.replace("NAMESPACE", &ns));
    wait_for_file(
        &policy_dir.join("policies.yaml"),
        "the parameterised policy and its ConfigMap in policies.yaml",
        |t| t.contains("e2e-param-ceiling") && t.contains("replica-limits"),
    );
    assert!(register().contains("statefulsets"));
    wait_until(Duration::from_secs(30), "the parameterised ceiling", || {
        dry_run(&statefulset(&ns, 3)).is_err_and(|e| e.contains("at most 2 replicas here"))
    });
    dry_run(&statefulset(&ns, 2)).expect("within the parameter");
    kubectl_ok(&[
        "patch",
        "configmap",
        "replica-limits",
        "-n",
        &ns,
        "--type",
        "merge",
        "-p",
        r#"{"data":{"max":"5"}}"#,
    ]);
    wait_until(Duration::from_secs(30), "the changed parameter", || {
        dry_run(&statefulset(&ns, 3)).is_ok()
    });
    let written = std::fs::read_to_string(policy_dir.join("policies.yaml")).unwrap();
    assert!(written.contains("replica-limits"), "{written}");

    // Deleting the policy lifts it.
    kubectl_ok(&[
        "delete",
        "clusterpolicy",
        "e2e-param-ceiling",
        "e2e-replica-ceiling",
    ]);
    wait_until(Duration::from_secs(30), "the policy to be lifted", || {
        dry_run(&deployment(&ns, 5)).is_ok()
    });
}

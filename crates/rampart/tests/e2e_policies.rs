//! End-to-end: policies created with kubectl reach the webhook.
//! `rampart serve --cluster` watches the cluster's policies, their
//! parameters and Namespaces in-process and recompiles on every change
//! (per-policy last-good); kube-apiserver calls the webhook. Own test
//! binary: the webhook configuration and the ClusterPolicies are
//! cluster-wide.

mod e2e_support;

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

/// A policy on a subresource: `kubectl scale` sends an UPDATE of
/// `deployments/scale` with a `Scale` object.
const SCALE_POLICY: &str = r#"apiVersion: rampart.dev/v1alpha1
kind: ClusterPolicy
metadata:
  name: e2e-scale-ceiling
spec:
  matchConstraints:
    resourceRules:
    - apiGroups: [apps]
      apiVersions: [v1]
      operations: [UPDATE]
      resources: [deployments/scale]
    namespaceSelector:
      matchLabels: {rampart-e2e/replica-ceiling: "on"}
  validations:
  - expression: "object.spec.replicas <= 4"
    message: "scale ceiling is 4"
"#;

/// A policy reading `request.userInfo.extra`, which the API server fills
/// from the authenticator (here: impersonation headers).
const TEAM_POLICY: &str = r#"apiVersion: rampart.dev/v1alpha1
kind: ClusterPolicy
metadata:
  name: e2e-team-label
spec:
  matchConstraints:
    resourceRules:
    - apiGroups: [""]
      apiVersions: [v1]
      operations: [CREATE]
      resources: [configmaps]
    namespaceSelector:
      matchLabels: {rampart-e2e/replica-ceiling: "on"}
  validations:
  - expression: >-
      !('team' in request.userInfo.extra) ||
      request.userInfo.extra['team'].all(t, has(object.metadata.labels) &&
        'team' in object.metadata.labels && object.metadata.labels['team'] == t)
    messageExpression: "'ConfigMaps of team ' + request.userInfo.extra['team'][0] + ' carry its team label'"
"#;

/// A kubeconfig that impersonates `alice` (group system:masters) with the
/// user extra `team: [blue]`.
fn impersonating_kubeconfig(dir: &std::path::Path) -> std::path::PathBuf {
    let mut kc = get_json(&["config", "view", "--raw", "--minify", "-o", "json"]);
    let user = &mut kc["users"][0]["user"];
    user["as"] = serde_json::json!("alice");
    user["as-groups"] = serde_json::json!(["system:masters"]);
    user["as-user-extra"] = serde_json::json!({"team": ["blue"]});
    let path = dir.join("alice.kubeconfig");
    std::fs::write(&path, kc.to_string()).unwrap();
    path
}

fn kubectl_as(kubeconfig: &std::path::Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(kubectl_path())
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--request-timeout=30s")
        .args(args)
        .output()
        .expect("running kubectl")
}

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

/// A broken update of the ceiling policy: same name, CEL that does not compile.
fn broken_ceiling() -> String {
    ceiling(0).replace("object.spec.replicas <= 0", "object.spec.replicas <=")
}

/// Starts `rampart serve --cluster` and waits until it is ready (its
/// caches listed and its policies compiled).
fn start_cluster_serve(
    dir: &std::path::Path,
    pki: &rampart_webhook::testing::Pki,
    extra: &[&str],
) -> (Proc, String) {
    let mut args = vec!["--cluster"];
    args.extend_from_slice(extra);
    let (serve, addr) = start_serve(dir, pki, &args);
    wait_until(
        Duration::from_secs(60),
        "rampart serve --cluster to be ready",
        || serve.log_text().contains(r#""message":"ready""#),
    );
    (serve, addr)
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
            "e2e-scale-ceiling",
            "e2e-team-label",
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
    apply_crds();

    apply(&ceiling(3));
    // What the webhook configuration is rendered from here (the controller
    // renders it from its compiled set of the cluster's policies with
    // --manage-webhook).
    std::fs::create_dir_all(&policy_dir).unwrap();
    std::fs::write(policy_dir.join("policies.yaml"), ceiling(3)).unwrap();

    let pki = rampart_webhook::testing::Pki::new(dir).unwrap();
    let config = dir.join("config.yaml");
    std::fs::write(
        &config,
        "bestPractices: {mode: off}\npodSecurity: {enabled: false}\n",
    )
    .unwrap();
    let (serve, addr) = start_cluster_serve(
        dir,
        &pki,
        &[
            "--config",
            config.to_str().unwrap(),
            "--reload-interval",
            "200ms",
        ],
    );

    // The webhook configuration for the policies in force, as the
    // controller renders it with --manage-webhook.
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
    // the CRD schema) but never enforced: it is rejected and logged, and
    // the policies in force stay.
    apply(BROKEN);
    wait_until(
        Duration::from_secs(30),
        "the compile error to be logged",
        || serve.log_text().contains("policy rejected"),
    );
    let log = serve.log_text();
    assert!(log.contains("e2e-broken"), "{log}");
    let err = dry_run(&deployment(&ns, 2)).unwrap_err();
    assert!(err.contains("ceiling of 1"), "{err}");
    dry_run(&deployment(&ns, 1)).expect("within the ceiling");

    // With the broken policy still there, another policy's update goes
    // through: one broken policy does not freeze the rest.
    apply(&ceiling(2));
    wait_until(Duration::from_secs(30), "the ceiling raised to 2", || {
        dry_run(&deployment(&ns, 2)).is_ok()
    });
    let err = dry_run(&deployment(&ns, 3)).unwrap_err();
    assert!(err.contains("ceiling of 2"), "{err}");

    // A broken update of that policy (A) keeps its previous version in
    // force, and the update of another policy (B, the parameterised one
    // below) still goes through.
    apply(&broken_ceiling());
    wait_until(
        Duration::from_secs(30),
        "the broken update of the ceiling to be rejected",
        || {
            serve
                .log_text()
                .lines()
                .any(|l| l.contains("policy rejected") && l.contains("e2e-replica-ceiling"))
        },
    );
    let err = dry_run(&deployment(&ns, 3)).unwrap_err();
    assert!(
        err.contains("ceiling of 2"),
        "previous version in force: {err}"
    );
    dry_run(&deployment(&ns, 2)).expect("the previous ceiling of 2 admits 2");

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
    std::fs::write(
        policy_dir.join("policies.yaml"),
        format!(
            "{}---\n{}",
            ceiling(2),
            PARAM_POLICY.replace("NAMESPACE", &ns)
        ),
    )
    .unwrap();
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
    // All along, A's previous version stayed in force.
    let err = dry_run(&deployment(&ns, 3)).unwrap_err();
    assert!(err.contains("ceiling of 2"), "{err}");

    // A policy on a subresource is routed to the webhook and enforced for
    // `kubectl scale`.
    apply(SCALE_POLICY);
    apply(TEAM_POLICY);
    std::fs::write(
        policy_dir.join("policies.yaml"),
        format!(
            "{}---\n{}---\n{SCALE_POLICY}---\n{TEAM_POLICY}",
            ceiling(2),
            PARAM_POLICY.replace("NAMESPACE", &ns)
        ),
    )
    .unwrap();
    let webhook_config = register();
    assert!(
        webhook_config.contains("deployments/scale"),
        "{webhook_config}"
    );
    let scale = |replicas: u32| {
        kubectl(&[
            "scale",
            "deployment",
            "stored",
            "-n",
            &ns,
            &format!("--replicas={replicas}"),
        ])
    };
    wait_until(Duration::from_secs(30), "the scale ceiling", || {
        let out = scale(6);
        !out.status.success() && text(&out).1.contains("scale ceiling is 4")
    });
    let err = text(&scale(6)).1;
    assert!(err.contains(DENIAL), "{err}");
    let out = scale(3);
    assert!(out.status.success(), "{}", text(&out).1);
    assert_eq!(
        get_json(&["get", "deployment", "stored", "-n", &ns])["spec"]["replicas"],
        3
    );

    // request.userInfo.extra reaches CEL: alice of team blue must label her
    // ConfigMaps; the admin (no extra) need not.
    let alice = impersonating_kubeconfig(dir);
    let create_cm = |kc: &std::path::Path, name: &str, labels: &str| {
        let file = dir.join(format!("{name}.yaml"));
        std::fs::write(
            &file,
            format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: {ns}\n  labels: {{{labels}}}\n"
            ),
        )
        .unwrap();
        kubectl_as(
            kc,
            &["apply", "--dry-run=server", "-f", file.to_str().unwrap()],
        )
    };
    wait_until(Duration::from_secs(30), "the team policy", || {
        let out = create_cm(&alice, "unlabelled", "");
        !out.status.success()
            && text(&out)
                .1
                .contains("ConfigMaps of team blue carry its team label")
    });
    let out = create_cm(&alice, "labelled", "team: blue");
    assert!(out.status.success(), "{}", text(&out).1);
    let out = create_cm(&alice, "wrong-team", "team: red");
    assert!(
        !out.status.success(),
        "team red admitted for alice of team blue"
    );
    let err = text(&out).1;
    assert!(err.contains(DENIAL), "{err}");
    assert!(
        err.contains("ConfigMaps of team blue carry its team label"),
        "{err}"
    );
    let out = create_cm(&kubeconfig(), "admin", "");
    assert!(out.status.success(), "{}", text(&out).1);

    // Deleting the policy lifts it.
    kubectl_ok(&[
        "delete",
        "clusterpolicy",
        "e2e-param-ceiling",
        "e2e-replica-ceiling",
        "e2e-broken",
        "e2e-scale-ceiling",
        "e2e-team-label",
    ]);
    wait_until(Duration::from_secs(30), "the policy to be lifted", || {
        dry_run(&deployment(&ns, 5)).is_ok()
    });
}

//! End-to-end: `rampart install` (the Helm chart's templates rendered by
//! Rampart) applied to a real API server, the objects and the RBAC checked,
//! and the controller run with exactly the chart's permissions (a
//! kubeconfig impersonating its ServiceAccount). Pods stay Pending: there
//! are no nodes.

mod e2e_support;

use std::process::Command;
use std::time::Duration;

use e2e_support::*;

const SA: &str = "system:serviceaccount:rampart-system:rampart";

fn can_i(args: &[&str]) -> bool {
    let mut all = vec!["auth", "can-i", "--as", SA];
    all.extend_from_slice(args);
    let out = kubectl(&all);
    text(&out).0.trim() == "yes"
}

#[test]
#[ignore = "needs a control plane: run e2e/run.sh"]
fn install_manifests_apply_and_grant_least_privilege() {
    let tmp = tempfile::tempdir().unwrap();
    // `rampart install` applying (server-side) into a namespace of its own ...
    let other = unique("e2e-install");
    let out = Command::new(rampart_bin())
        .args(["install", "-n", &other, "--set", "webhook.replicas=4"])
        .env("KUBECONFIG", kubeconfig())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let d = get_json(&["get", "deployment", "-n", &other, "rampart-webhook"]);
    assert_eq!(d["spec"]["replicas"], 4);

    // ... and `rampart install --dry-run` through kubectl into rampart-system.
    let out = Command::new(rampart_bin())
        .args(["install", "--dry-run"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let manifests = String::from_utf8(out.stdout).unwrap();
    apply(&manifests);
    // The static copy in deploy/manifests/ applies too (server-side dry run).
    let static_manifests = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/manifests/rampart.yaml"
    ))
    .unwrap();
    let out = kubectl_with(
        &["apply", "--dry-run=server", "-f", "-"],
        Some(&static_manifests),
    );
    assert!(out.status.success(), "{}", text(&out).1);

    let ns = "rampart-system";
    let controller = get_json(&["get", "deployment", "-n", ns, "rampart-controller"]);
    assert!(controller["spec"]["replicas"].as_u64().unwrap() >= 2);
    let webhook = get_json(&["get", "deployment", "-n", ns, "rampart-webhook"]);
    assert!(webhook["spec"]["replicas"].as_u64().unwrap() >= 2);
    assert!(
        webhook["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
            ["requiredDuringSchedulingIgnoredDuringExecution"]
            .is_array()
    );
    let pdb = get_json(&["get", "pdb", "-n", ns, "rampart-webhook"]);
    assert_eq!(pdb["spec"]["minAvailable"], 2);
    kubectl_ok(&["get", "pdb", "-n", ns, "rampart-controller"]);
    kubectl_ok(&["get", "service", "-n", ns, "rampart-webhook"]);
    kubectl_ok(&[
        "get",
        "serviceaccount",
        "-n",
        ns,
        "rampart",
        "rampart-webhook",
    ]);
    for crd in [
        "clusterpolicies.rampart.dev",
        "policies.rampart.dev",
        "policyreports.wgpolicyk8s.io",
        "clusterpolicyreports.wgpolicyk8s.io",
    ] {
        kubectl_ok(&["get", "crd", crd]);
    }
    // No controllers: the Deployments exist but nothing runs.
    assert!(controller["status"]["readyReplicas"].is_null());

    // What the controller may do ...
    for args in [
        &["list", "pods", "--all-namespaces"][..],
        &["watch", "deployments.apps", "--all-namespaces"],
        &["list", "clusterroles"],
        &["list", "clusterpolicies.rampart.dev"],
        &[
            "patch",
            "clusterpolicies.rampart.dev",
            "--subresource=status",
        ],
        &[
            "patch",
            "policies.rampart.dev",
            "--subresource=status",
            "-n",
            "default",
        ],
        &["create", "policyreports.wgpolicyk8s.io", "-n", "default"],
        &["patch", "clusterpolicyreports.wgpolicyk8s.io"],
        &["create", "events", "-n", "default"],
        &["patch", "validatingwebhookconfigurations"],
        &["patch", "customresourcedefinitions"],
        &["get", "secrets/rampart-webhook-tls", "-n", ns],
        &["update", "secrets/rampart-webhook-tls", "-n", ns],
        &["create", "secrets", "-n", ns],
        &[
            "update",
            "leases.coordination.k8s.io/rampart-controller",
            "-n",
            ns,
        ],
    ] {
        assert!(can_i(args), "the controller should be allowed to {args:?}");
    }
    // ... and what it may not.
    for args in [
        &["get", "secrets", "-n", "kube-system"][..],
        &["list", "secrets", "-n", ns],
        &["get", "secrets/other", "-n", ns],
        &["create", "secrets", "-n", "default"],
        &["delete", "pods", "-n", "default"],
        &["create", "pods", "-n", "default"],
        &["update", "deployments.apps", "-n", "default"],
        &["create", "clusterpolicies.rampart.dev"],
        &["delete", "validatingwebhookconfigurations"],
        &["update", "leases.coordination.k8s.io/other", "-n", ns],
        &["create", "clusterrolebindings"],
        &["impersonate", "users"],
    ] {
        assert!(
            !can_i(args),
            "the controller should not be allowed to {args:?}"
        );
    }
    // The webhook's ServiceAccount (`rampart serve --cluster`) may read the
    // policies, Namespaces and Pods, and nothing else.
    let webhook_can_i = |args: &[&str]| {
        let mut full = vec![
            "auth",
            "can-i",
            "--as",
            "system:serviceaccount:rampart-system:rampart-webhook",
        ];
        full.extend_from_slice(args);
        text(&kubectl(&full)).0.trim() == "yes"
    };
    for args in [
        &["watch", "clusterpolicies.rampart.dev"][..],
        &["list", "policies.rampart.dev", "--all-namespaces"],
        &["watch", "pods", "--all-namespaces"],
        &["list", "namespaces"],
    ] {
        assert!(
            webhook_can_i(args),
            "the webhook should be allowed to {args:?}"
        );
    }
    for args in [
        &["get", "secrets", "--all-namespaces"][..],
        &["create", "pods", "-n", "default"],
        &["update", "clusterpolicies.rampart.dev"],
        &["list", "deployments", "--all-namespaces"],
        &["create", "policyreports.wgpolicyk8s.io", "-n", "default"],
    ] {
        assert!(
            !webhook_can_i(args),
            "the webhook should not be allowed to {args:?}"
        );
    }

    // The controller, run with exactly those permissions, does its job:
    // certificate Secret, webhook configurations, reports.
    let kc = tmp.path().join("kubeconfig-sa");
    let admin = std::fs::read_to_string(kubeconfig()).unwrap();
    assert!(admin.contains("\n  user:\n"), "{admin}");
    std::fs::write(
        &kc,
        admin.replacen("\n  user:\n", &format!("\n  user:\n    as: {SA}\n"), 1),
    )
    .unwrap();
    let _cleanup = Cleanup(|| {
        let _ = kubectl(&[
            "delete",
            "validatingwebhookconfiguration,mutatingwebhookconfiguration",
            "rampart",
            "--ignore-not-found",
        ]);
    });
    let report_ns = fresh_namespace("e2e-rbac");
    apply(&pod_yaml(&report_ns, "p", true));
    let mut proc = Proc::start(
        "controller-as-sa",
        &[
            "controller",
            "--kubeconfig",
            kc.to_str().unwrap(),
            "--manage-webhook",
            "--report-interval",
            "1s",
            "--lease-duration",
            "4s",
        ],
        tmp.path(),
    );
    wait_until(
        Duration::from_secs(60),
        "the controller (as its ServiceAccount) to work",
        || {
            kubectl(&["get", "validatingwebhookconfiguration", "rampart"])
                .status
                .success()
                && kubectl(&[
                    "get",
                    "policyreports.wgpolicyk8s.io",
                    "-n",
                    &report_ns,
                    "rampart",
                ])
                .status
                .success()
        },
    );
    kubectl_ok(&["get", "secret", "-n", ns, "rampart-webhook-tls"]);
    let log = proc.log_text();
    assert!(!log.contains("forbidden"), "{log}");
    proc.terminate();
}

//! End-to-end: `rampart serve` registered with a real kube-apiserver through
//! the configuration `rampart webhook-config` prints, with `failurePolicy:
//! Fail`. One test, in steps, in its own test binary: the webhook
//! configuration is cluster-wide, and cargo runs test binaries one after
//! another, so no other test sees it.

mod e2e_support;

use std::time::Duration;

use e2e_support::*;

const RAMPART_DENIAL: &str = "admission webhook \"validate.rampart.dev\" denied the request";

#[test]
#[ignore = "needs a control plane: run e2e/run.sh"]
fn webhook_denies_admits_mutates_and_fails_closed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let ns = fresh_namespace("e2e-webhook");
    let exec_ns = fresh_namespace("e2e-exec");
    let pki = rampart_webhook::testing::Pki::new(dir).unwrap();

    // Rampart's own Pod Security defaults (baseline) rather than namespace
    // labels, so the denial is Rampart's and not the API server's PodSecurity
    // admission. The exec namespace is exempt, so a privileged pod can be
    // created there to exec into.
    let config = dir.join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "podSecurity:\n  defaults: {{enforce: baseline}}\n  exemptions: {{namespaces: [{exec_ns}]}}\nmutations:\n  securityContext: true\n"
        ),
    )
    .unwrap();
    // Rampart's pod cache for exec checks (in a cluster the controller's watch fills it).
    let pods = dir.join("pods.yaml");
    std::fs::write(&pods, pod_yaml(&exec_ns, "privileged", true)).unwrap();

    let (mut serve, addr) = start_serve(
        dir,
        &pki,
        &[
            "--config",
            config.to_str().unwrap(),
            "--pods",
            pods.to_str().unwrap(),
        ],
    );

    let out = std::process::Command::new(rampart_bin())
        .args([
            "webhook-config",
            "--url",
            &format!("https://{addr}"),
            "--ca-bundle-file",
            pki.ca_path().to_str().unwrap(),
            "--failure-policy",
            "Fail",
            "--exec-protection",
            "--config",
            config.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let webhook_config = String::from_utf8(out.stdout).unwrap();
    assert!(webhook_config.contains("failurePolicy: Fail"));
    let _unregister = Cleanup(|| {
        let _ = kubectl(&[
            "delete",
            "validatingwebhookconfiguration,mutatingwebhookconfiguration",
            "rampart",
            "--ignore-not-found",
        ]);
    });
    apply(&webhook_config);

    // The API server picks the configuration up asynchronously.
    let privileged = pod_yaml(&ns, "privileged", true);
    wait_until(
        Duration::from_secs(30),
        "the webhook to take effect",
        || {
            let out = kubectl_with(&["apply", "--dry-run=server", "-f", "-"], Some(&privileged));
            !out.status.success() && text(&out).1.contains(RAMPART_DENIAL)
        },
    );

    // 1. A privileged Pod is denied, with Rampart's message.
    let out = kubectl_with(&["apply", "-f", "-"], Some(&privileged));
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains(RAMPART_DENIAL), "{stderr}");
    assert!(stderr.contains("privileged"), "{stderr}");

    // 2. A compliant Pod is admitted, 3. and mutated: the stored object has
    // the defaults Rampart's securityContext mutation adds.
    apply(&pod_yaml(&ns, "compliant", false));
    let stored = get_json(&["get", "pod", "-n", &ns, "compliant"]);
    let sc = &stored["spec"]["containers"][0]["securityContext"];
    assert_eq!(sc["allowPrivilegeEscalation"], false, "{stored}");
    assert_eq!(sc["capabilities"]["drop"][0], "ALL", "{stored}");
    assert_eq!(
        stored["spec"]["securityContext"]["seccompProfile"]["type"], "RuntimeDefault",
        "{stored}"
    );

    // 4. pods/exec (CONNECT) into a privileged pod is denied by the webhook
    // before any node is involved (there are none).
    apply(&pod_yaml(&exec_ns, "privileged", true));
    let out = kubectl(&["exec", "-n", &exec_ns, "privileged", "--", "true"]);
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(
        stderr.contains("cannot exec into or attach to a privileged container"),
        "{stderr}"
    );
    assert!(stderr.contains("rampart"), "{stderr}");

    // 5. kube-system is excluded: writable while Rampart runs ...
    let sys_pod = unique("e2e-sys");
    apply(&pod_yaml("kube-system", &sys_pod, true));

    // ... and once Rampart is stopped, failurePolicy Fail closes every other
    // namespace while kube-system keeps working.
    serve.terminate();
    let out = kubectl_with(
        &["apply", "-f", "-"],
        Some(&pod_yaml(&ns, "after-stop", false)),
    );
    let (_, stderr) = text(&out);
    assert!(!out.status.success(), "pod admitted with the webhook down");
    assert!(
        stderr.contains("failed calling webhook") && stderr.contains("rampart.dev"),
        "{stderr}"
    );
    apply(&pod_yaml("kube-system", &unique("e2e-sys-down"), true));
    kubectl_ok(&[
        "create",
        "configmap",
        &unique("e2e-sys-cm"),
        "-n",
        "kube-system",
    ]);
    kubectl_ok(&[
        "delete",
        "pod",
        "-n",
        "kube-system",
        &sys_pod,
        "--wait=false",
    ]);
}

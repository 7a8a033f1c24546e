//! End-to-end: `rampart serve --cluster` sees the cluster live. Its
//! Namespace and Pod caches are fed by watches, and an object the watches
//! have not delivered yet is read through with one GET, so:
//!
//! - a Namespace and a violating Pod applied together are judged by the
//!   Namespace's label, not as if the namespace were unknown;
//! - `kubectl exec` right after a Pod's creation is judged by the Pod (a
//!   privileged one is denied as privileged, a plain one is not denied),
//!   never as "not in Rampart's pod cache".
//!
//! Own test binary: the webhook configuration is cluster-wide.

mod e2e_support;

use std::time::Duration;

use e2e_support::*;

const RAMPART_DENIAL: &str = "admission webhook \"validate.rampart.dev\" denied the request";
const UNKNOWN_POD: &str = "not in Rampart's pod cache";

#[test]
#[ignore = "needs a control plane: run e2e/run.sh"]
fn the_webhook_judges_objects_created_a_moment_ago() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let pki = rampart_webhook::testing::Pki::new(dir).unwrap();
    let config = dir.join("config.yaml");
    std::fs::write(&config, "bestPractices: {mode: off}\n").unwrap();

    // serve --cluster watches the policy CRDs too: install them first.
    apply_crds();

    // Every watch event is applied 5 s late, so the objects created below
    // reach the webhook before its caches have them, as on a busy cluster;
    // only the read-through can judge them by what they are.
    let (serve, addr) = start_serve(
        dir,
        &pki,
        &[
            "--cluster",
            "--debug-watch-lag",
            "5s",
            "--log",
            "info,rampart_kube=debug",
            "--config",
            config.to_str().unwrap(),
        ],
    );
    wait_until(
        Duration::from_secs(60),
        "rampart serve --cluster to be ready",
        || serve.log_text().contains(r#""message":"ready""#),
    );

    let webhook_config = rampart_ok(&[
        "webhook-config",
        "--name",
        "rampart-live",
        "--url",
        &format!("https://{addr}"),
        "--ca-bundle-file",
        pki.ca_path().to_str().unwrap(),
        "--failure-policy",
        "Fail",
        "--exec-protection",
        "--config",
        config.to_str().unwrap(),
    ]);
    let _unregister = Cleanup(|| {
        let _ = kubectl(&[
            "delete",
            "validatingwebhookconfiguration,mutatingwebhookconfiguration",
            "rampart-live",
            "--ignore-not-found",
        ]);
    });
    apply(&webhook_config);

    // The API server picks the configuration up asynchronously: wait until
    // a namespace labelled before the test is judged by Rampart.
    let probe_ns = fresh_namespace("e2e-live-probe");
    kubectl_ok(&[
        "label",
        "namespace",
        &probe_ns,
        "rampart.dev/enforce=restricted",
    ]);
    let probe = pod_yaml(&probe_ns, "probe", true);
    wait_until(
        Duration::from_secs(30),
        "the webhook to take effect",
        || {
            let out = kubectl_with(&["apply", "--dry-run=server", "-f", "-"], Some(&probe));
            !out.status.success() && text(&out).1.contains(RAMPART_DENIAL)
        },
    );

    // 1. A Namespace and a violating Pod in one `kubectl apply -f`: the Pod
    // is judged by the label of the Namespace created a moment before it.
    // Rampart's own `rampart.dev/enforce` label is used because the API
    // server's PodSecurity admission judges `pod-security.kubernetes.io/*`
    // labels itself, before any webhook is called.
    let ns = unique("e2e-live");
    let manifest = format!(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n  labels: {{rampart.dev/enforce: restricted}}\n---\n{}",
        pod_yaml(&ns, "privileged", true)
    );
    let out = kubectl_with(&["apply", "-f", "-"], Some(&manifest));
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success(), "the pod was admitted: {stdout}");
    assert!(
        stdout.contains(&format!("namespace/{ns} created")),
        "{stdout}"
    );
    assert!(stderr.contains(RAMPART_DENIAL), "{stderr}");
    assert!(stderr.contains("restricted"), "{stderr}");
    assert!(stderr.contains("privileged"), "{stderr}");

    // 2. exec right after the Pod is created: judged by the Pod.
    let exec_ns = fresh_namespace("e2e-live-exec");
    for (name, privileged) in [("priv", true), ("plain", false)] {
        apply(&pod_yaml(&exec_ns, name, privileged));
        let out = kubectl(&["exec", "-n", &exec_ns, name, "--", "true"]);
        let (_, stderr) = text(&out);
        // There is no node, so even an admitted exec fails afterwards.
        assert!(!out.status.success());
        assert!(
            !stderr.contains(UNKNOWN_POD),
            "{name}: judged as unknown: {stderr}"
        );
        if privileged {
            assert!(stderr.contains(RAMPART_DENIAL), "{stderr}");
            assert!(
                stderr.contains("cannot exec into or attach to a privileged container"),
                "{stderr}"
            );
        } else {
            assert!(
                !stderr.contains(RAMPART_DENIAL),
                "plain pod denied: {stderr}"
            );
        }
    }

    // The read-throughs above are what judged those objects.
    let log = serve.log_text();
    let read_through = |what: &str, name: &str| {
        log.lines()
            .any(|l| l.contains(&format!("{what} not in the cache yet")) && l.contains(name))
    };
    assert!(read_through("namespace", &ns), "{log}");
    assert!(read_through("pod", "priv"), "{log}");

    // 3. The caches stay live: once the watch has delivered a namespace, a
    // label added later reaches the rules through the watch, with no
    // read-through.
    let later = fresh_namespace("e2e-live-later");
    let applied = |name: &str| {
        serve.log_text().lines().any(|l| {
            l.contains("watch event applied") && l.contains("Namespace") && l.contains(name)
        })
    };
    wait_until(
        Duration::from_secs(30),
        "the watch to deliver the namespace",
        || applied(&later),
    );
    kubectl_ok(&[
        "label",
        "namespace",
        &later,
        "rampart.dev/enforce=restricted",
    ]);
    let pod = pod_yaml(&later, "p", true);
    wait_until(
        Duration::from_secs(30),
        "the new label to be honoured",
        || {
            let out = kubectl_with(&["apply", "--dry-run=server", "-f", "-"], Some(&pod));
            !out.status.success() && text(&out).1.contains(RAMPART_DENIAL)
        },
    );
    let log = serve.log_text();
    assert!(
        !log.lines()
            .any(|l| l.contains("not in the cache yet") && l.contains(&later)),
        "the label came by a read-through, not the watch: {log}"
    );
}

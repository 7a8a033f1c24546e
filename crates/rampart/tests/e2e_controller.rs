//! End-to-end: `rampart controller` against a real kube-apiserver: CRDs,
//! the background audit into PolicyReports (1,000 objects), Events, the
//! image inventory, webhook certificate management and leader failover
//! between two controller processes. The tests share the cluster-wide
//! policies and reports, so they run one at a time (a lock).

mod e2e_support;

use std::sync::Mutex;
use std::time::Duration;

use e2e_support::*;
use serde_json::Value;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn ensure_namespace(ns: &str) {
    apply(&format!(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n"
    ));
}

fn controller_args<'a>(lease: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "controller",
        "--lease-name",
        lease,
        "--lease-duration",
        "4s",
        "--report-interval",
        "1s",
        "--log",
        "info",
    ];
    args.extend_from_slice(extra);
    args
}

/// A controller (no violation Events) on a Lease of its own, once it has
/// installed the CRDs.
fn start_controller(lease_prefix: &str, dir: &std::path::Path) -> Proc {
    let lease = unique(lease_prefix);
    let controller = Proc::start(
        "controller",
        &controller_args(&lease, &["--no-events"]),
        dir,
    );
    wait_until(Duration::from_secs(60), "the ClusterPolicy CRD", || {
        kubectl(&["get", "crd", "clusterpolicies.rampart.dev"])
            .status
            .success()
    });
    controller
}

fn report(ns: &str) -> Option<Value> {
    let out = kubectl(&[
        "get",
        "policyreports.wgpolicyk8s.io",
        "rampart",
        "-n",
        ns,
        "-o",
        "json",
    ]);
    out.status
        .success()
        .then(|| serde_json::from_slice(&out.stdout).unwrap())
}

fn summary(ns: &str) -> Option<(u64, u64)> {
    let r = report(ns)?;
    Some((
        r["summary"]["pass"].as_u64().unwrap_or(0),
        r["summary"]["fail"].as_u64().unwrap_or(0),
    ))
}

const NO_PRIVILEGED: &str = r#"apiVersion: rampart.dev/v1alpha1
kind: ClusterPolicy
metadata:
  name: e2e-no-privileged
spec:
  description: no privileged containers
  severity: high
  matchConstraints:
    kinds: ["Pod"]
  validations:
  - name: not-privileged
    expression: "object.spec.containers.all(c, !has(c.securityContext) || !has(c.securityContext.privileged) || !c.securityContext.privileged)"
    message: privileged containers are not allowed
"#;

#[test]
#[ignore = "needs a control plane: run e2e/run.sh"]
fn audit_of_1000_objects_writes_bounded_reports_and_events() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    ensure_namespace("rampart-system");
    let ns = fresh_namespace("e2e-audit");
    let lease = unique("e2e-audit");

    // 1,000 pods, every other one privileged, in one request stream.
    let mut list = String::from("apiVersion: v1\nkind: List\nitems:\n");
    for i in 0..1000 {
        let doc = pod_yaml(&ns, &format!("p{i:04}"), i % 2 == 0);
        for (j, line) in doc.lines().enumerate() {
            list.push_str(if j == 0 { "- " } else { "  " });
            list.push_str(line);
            list.push('\n');
        }
    }
    let start = std::time::Instant::now();
    let out = kubectl_with(&["create", "-f", "-", "-o", "name"], Some(&list));
    assert!(out.status.success(), "{}", text(&out).1);
    eprintln!("created 1000 pods in {:?}", start.elapsed());

    let policy_dir = tmp.path().join("policies");
    let _policy = Cleanup(|| {
        let _ = kubectl(&[
            "delete",
            "clusterpolicy",
            "e2e-no-privileged",
            "--ignore-not-found",
        ]);
    });
    let mut controller = Proc::start(
        "controller",
        &controller_args(
            &lease,
            &[
                "--max-results-per-report",
                "200",
                "--max-events-per-minute",
                "30",
                "--policy-dir",
                policy_dir.to_str().unwrap(),
            ],
        ),
        tmp.path(),
    );
    // The controller installs the CRDs, then the policy can be created.
    wait_until(Duration::from_secs(60), "the ClusterPolicy CRD", || {
        kubectl(&["get", "crd", "clusterpolicies.rampart.dev"])
            .status
            .success()
            && kubectl(&["get", "crd", "policyreports.wgpolicyk8s.io"])
                .status
                .success()
    });
    apply(NO_PRIVILEGED);

    wait_until(Duration::from_secs(90), "500 pass / 500 fail", || {
        summary(&ns) == Some((500, 500))
    });
    let r = report(&ns).unwrap();
    let results = r["results"].as_array().unwrap();
    assert_eq!(results.len(), 200, "capped at --max-results-per-report");
    assert!(
        results.iter().all(|x| x["result"] == "fail"),
        "failures listed first"
    );
    assert_eq!(
        r["metadata"]["annotations"]["rampart.dev/omitted-results"],
        "800"
    );
    assert_eq!(results[0]["policy"], "e2e-no-privileged");
    assert_eq!(results[0]["severity"], "high");
    assert_eq!(results[0]["resources"][0]["kind"], "Pod");
    // The webhook's copy of the policies.
    let written = std::fs::read_to_string(policy_dir.join("policies.yaml")).unwrap();
    assert!(written.contains("e2e-no-privileged"), "{written}");

    // Incremental: one object changed, one report rewritten.
    kubectl_ok(&["delete", "pod", "-n", &ns, "p0000", "--wait=false"]);
    wait_until(Duration::from_secs(30), "499 failures", || {
        summary(&ns) == Some((500, 499))
    });

    // Policy change: every object is evaluated again.
    apply(&NO_PRIVILEGED.replace(
        "    expression: \"object.spec.containers.all(c, !has(c.securityContext) || !has(c.securityContext.privileged) || !c.securityContext.privileged)\"",
        "    expression: \"true\"",
    ));
    wait_until(
        Duration::from_secs(60),
        "999 passes after the policy change",
        || summary(&ns) == Some((999, 0)),
    );

    // Events on violations, rate-limited (not one per failing pod at once).
    let events = get_json(&[
        "get",
        "events",
        "-n",
        &ns,
        "--field-selector",
        "reason=PolicyViolation",
    ]);
    let n = events["items"].as_array().unwrap().len();
    // 500 pods failed at once; --max-events-per-minute 30 over well under two minutes.
    assert!((1..=90).contains(&n), "{n} PolicyViolation events");

    // The ClusterPolicyReport exists (cluster-scoped objects: namespaces, RBAC).
    wait_until(Duration::from_secs(30), "the ClusterPolicyReport", || {
        kubectl(&["get", "clusterpolicyreports.wgpolicyk8s.io", "rampart"])
            .status
            .success()
    });
    controller.terminate();
}

#[test]
#[ignore = "needs a control plane: run e2e/run.sh"]
fn inventory_finds_images_by_regex() {
    let ns = fresh_namespace("e2e-inventory");
    apply(&format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: {ns}}}
spec:
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      initContainers: [{{name: init, image: "busybox:1.36"}}]
      containers: [{{name: web, image: "ghcr.io/acme/web:1.2.3"}}]
---
apiVersion: batch/v1
kind: CronJob
metadata: {{name: backup, namespace: {ns}}}
spec:
  schedule: "0 * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers: [{{name: backup, image: "ghcr.io/acme/backup@sha256:0000000000000000000000000000000000000000000000000000000000000000"}}]
"#
    ));
    let out = std::process::Command::new(rampart_bin())
        .args(["inventory", "--image", r"^ghcr\.io/acme/", "-o", "json"])
        .env("KUBECONFIG", kubeconfig())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let entries: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let ours: Vec<(&str, &str, &str)> = entries
        .iter()
        .filter(|e| e["namespace"] == ns.as_str())
        .map(|e| {
            (
                e["kind"].as_str().unwrap(),
                e["name"].as_str().unwrap(),
                e["image"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(ours.len(), 2, "{ours:?}");
    assert!(ours.contains(&("Deployment", "web", "ghcr.io/acme/web:1.2.3")));
    assert!(
        ours.iter()
            .any(|(k, n, _)| *k == "CronJob" && *n == "backup")
    );
    assert!(!entries.iter().any(|e| e["image"] == "busybox:1.36"));
    // The table names the columns.
    let out = std::process::Command::new(rampart_bin())
        .args(["inventory", "-n", &ns])
        .env("KUBECONFIG", kubeconfig())
        .output()
        .unwrap();
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.starts_with("NAMESPACE"), "{table}");
    assert!(table.contains("busybox:1.36"), "{table}");
}

#[test]
#[ignore = "needs a control plane: run e2e/run.sh"]
fn controller_manages_webhook_certificates_and_configuration() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    ensure_namespace("rampart-system");
    let name = unique("e2e-wh");
    let _cleanup = Cleanup(|| {
        let _ = kubectl(&[
            "delete",
            "validatingwebhookconfiguration,mutatingwebhookconfiguration",
            &name,
            "--ignore-not-found",
        ]);
    });
    let lease = unique("e2e-wh-lease");
    let webhook_args = [
        "--manage-webhook",
        "--webhook-name",
        &name,
        "--webhook-secret",
        &name,
        "--no-events",
    ];
    let mut controller = Proc::start(
        "controller",
        &controller_args(&lease, &webhook_args),
        tmp.path(),
    );
    wait_until(Duration::from_secs(60), "the webhook configuration", || {
        kubectl(&["get", "validatingwebhookconfiguration", &name])
            .status
            .success()
    });
    let secret = get_json(&["get", "secret", "-n", "rampart-system", &name]);
    assert_eq!(secret["type"], "kubernetes.io/tls");
    let ca = secret["data"]["ca.crt"].as_str().unwrap();
    assert!(secret["data"]["tls.crt"].is_string());
    assert!(
        secret["metadata"]["annotations"]["rampart.dev/cert-not-after"].is_string(),
        "{secret}"
    );
    let vwc = get_json(&["get", "validatingwebhookconfiguration", &name]);
    for w in vwc["webhooks"].as_array().unwrap() {
        assert_eq!(
            w["clientConfig"]["caBundle"], ca,
            "caBundle is the Secret's CA"
        );
        assert_eq!(w["clientConfig"]["service"]["namespace"], "rampart-system");
    }
    kubectl_ok(&["get", "mutatingwebhookconfiguration", &name]);

    // The rules follow the cluster's policies in force, from the
    // controller's own compiled set (no policy files): a policy on a kind
    // no built-in rule routes adds it, and deleting the policy removes it.
    let policy = unique("e2e-wh-resourcequotas");
    let _policy = Cleanup({
        let policy = policy.clone();
        move || {
            let _ = kubectl(&["delete", "clusterpolicy", &policy, "--ignore-not-found"]);
        }
    });
    let routes_resourcequotas = || {
        let vwc = get_json(&["get", "validatingwebhookconfiguration", &name]);
        vwc["webhooks"].as_array().unwrap().iter().any(|w| {
            w["rules"].as_array().into_iter().flatten().any(|r| {
                r["resources"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|x| x == "resourcequotas")
            })
        })
    };
    assert!(
        !routes_resourcequotas(),
        "no policy routes resourcequotas yet"
    );
    apply(&format!(
        r#"apiVersion: rampart.dev/v1alpha1
kind: ClusterPolicy
metadata:
  name: {policy}
spec:
  matchConstraints:
    kinds: ["ResourceQuota"]
  validations:
  - expression: "true"
"#
    ));
    wait_until(
        Duration::from_secs(60),
        "resourcequotas in the webhook rules",
        routes_resourcequotas,
    );
    kubectl_ok(&["delete", "clusterpolicy", &policy]);
    wait_until(
        Duration::from_secs(60),
        "resourcequotas gone from the webhook rules",
        || !routes_resourcequotas(),
    );

    // A restart keeps the same CA (the Secret is reused, not regenerated).
    controller.terminate();
    let mut again = Proc::start(
        "controller-2",
        &controller_args(&lease, &webhook_args),
        tmp.path(),
    );
    std::thread::sleep(Duration::from_secs(3));
    let secret2 = get_json(&["get", "secret", "-n", "rampart-system", &name]);
    assert_eq!(secret2["data"]["ca.crt"].as_str().unwrap(), ca);
    assert_eq!(secret2["data"]["tls.crt"], secret["data"]["tls.crt"]);
    again.terminate();

    let ca_bundles = || -> Vec<String> {
        let vwc = get_json(&["get", "validatingwebhookconfiguration", &name]);
        vwc["webhooks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["clientConfig"]["caBundle"].as_str().unwrap().to_owned())
            .collect()
    };

    // Rotation: a serving certificate close to expiry (by the Secret's
    // annotation) is re-issued by the same CA, so the bundle stays.
    kubectl_ok(&[
        "annotate",
        "secret",
        "-n",
        "rampart-system",
        &name,
        "--overwrite",
        "rampart.dev/cert-not-after=2020-01-01T00:00:00Z",
    ]);
    let mut third = Proc::start(
        "controller-3",
        &controller_args(&lease, &webhook_args),
        tmp.path(),
    );
    wait_until(
        Duration::from_secs(60),
        "the serving certificate re-issued",
        || {
            let s = get_json(&["get", "secret", "-n", "rampart-system", &name]);
            s["data"]["tls.crt"] != secret["data"]["tls.crt"]
        },
    );
    let rotated = get_json(&["get", "secret", "-n", "rampart-system", &name]);
    assert_eq!(rotated["data"]["ca.crt"].as_str().unwrap(), ca, "same CA");
    assert_ne!(
        rotated["metadata"]["annotations"]["rampart.dev/cert-not-after"],
        "2020-01-01T00:00:00Z"
    );
    assert!(ca_bundles().iter().all(|b| b == ca));
    third.terminate();

    // A CA close to expiry is replaced, and the bundle follows.
    kubectl_ok(&[
        "annotate",
        "secret",
        "-n",
        "rampart-system",
        &name,
        "--overwrite",
        "rampart.dev/ca-not-after=2020-01-01T00:00:00Z",
    ]);
    let mut fourth = Proc::start(
        "controller-4",
        &controller_args(&lease, &webhook_args),
        tmp.path(),
    );
    wait_until(Duration::from_secs(60), "a new CA in the bundle", || {
        let s = get_json(&["get", "secret", "-n", "rampart-system", &name]);
        let new_ca = s["data"]["ca.crt"].as_str().unwrap().to_owned();
        new_ca != ca && ca_bundles().iter().all(|b| *b == new_ca)
    });
    fourth.terminate();

    // cert-manager: the Secret is left alone and its ca.crt is the bundle.
    let pki = rampart_webhook::testing::Pki::new(tmp.path()).unwrap();
    use rampart_webhook::testing::base64::Engine as _;
    let external_ca =
        rampart_webhook::testing::base64::engine::general_purpose::STANDARD.encode(&pki.ca_pem);
    kubectl_ok(&[
        "patch",
        "secret",
        "-n",
        "rampart-system",
        &name,
        "--type",
        "merge",
        "-p",
        &format!(
            r#"{{"metadata":{{"annotations":{{"rampart.dev/cert-manager":"true"}}}},"data":{{"ca.crt":"{external_ca}"}}}}"#
        ),
    ]);
    let before = get_json(&["get", "secret", "-n", "rampart-system", &name]);
    let mut fifth = Proc::start(
        "controller-5",
        &controller_args(&lease, &webhook_args),
        tmp.path(),
    );
    wait_until(
        Duration::from_secs(60),
        "cert-manager's CA in the bundle",
        || ca_bundles().iter().all(|b| *b == external_ca),
    );
    let after = get_json(&["get", "secret", "-n", "rampart-system", &name]);
    assert_eq!(
        after["data"], before["data"],
        "cert-manager's Secret untouched"
    );
    fifth.terminate();
}

fn leader_of(procs: &[&Proc]) -> Vec<usize> {
    procs
        .iter()
        .enumerate()
        .filter(|(_, p)| {
            p.log_text()
                .lines()
                .rfind(|l| l.starts_with("LEADER="))
                .is_some_and(|l| l.starts_with("LEADER=true"))
        })
        .map(|(i, _)| i)
        .collect()
}

#[test]
#[ignore = "needs a control plane: run e2e/run.sh"]
fn leader_failover_between_two_controllers() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    ensure_namespace("rampart-system");
    let lease = unique("e2e-lease");
    let extra = ["--no-install-crds", "--no-events"];
    let mut a = Proc::start(
        "controller-a",
        &controller_args(&lease, &[&extra[..], &["--identity", "replica-a"]].concat()),
        tmp.path(),
    );
    let mut b = Proc::start(
        "controller-b",
        &controller_args(&lease, &[&extra[..], &["--identity", "replica-b"]].concat()),
        tmp.path(),
    );
    wait_until(Duration::from_secs(30), "a leader", || {
        leader_of(&[&a, &b]).len() == 1
    });
    // Never two: watch for a while.
    for _ in 0..20 {
        assert!(leader_of(&[&a, &b]).len() <= 1, "two leaders");
        std::thread::sleep(Duration::from_millis(100));
    }
    let first = leader_of(&[&a, &b])[0];
    let holder = |l: &str| {
        get_json(&["get", "lease", "-n", "rampart-system", l])["spec"]["holderIdentity"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    let expected = ["replica-a", "replica-b"][first];
    assert_eq!(holder(&lease), expected);

    // Crash the leader (SIGKILL: no release); the other takes over once the Lease expires.
    let (dead, survivor) = if first == 0 {
        (&mut a, &b)
    } else {
        (&mut b, &a)
    };
    let started = std::time::Instant::now();
    dead.kill();
    let other = 1 - first;
    wait_until(
        Duration::from_secs(30),
        "the other replica to take over",
        || {
            survivor
                .log_text()
                .lines()
                .any(|l| l.starts_with("LEADER=true"))
        },
    );
    eprintln!("failover after a crash took {:?}", started.elapsed());
    assert_eq!(holder(&lease), ["replica-a", "replica-b"][other]);

    // A new replica joins as a follower while the leader lives.
    let mut c = Proc::start(
        "controller-c",
        &controller_args(&lease, &[&extra[..], &["--identity", "replica-c"]].concat()),
        tmp.path(),
    );
    std::thread::sleep(Duration::from_secs(6));
    assert!(!c.log_text().contains("LEADER=true"), "{}", c.log_text());
    // A graceful stop releases the Lease: the follower takes over quickly.
    let started = std::time::Instant::now();
    if other == 0 {
        a.terminate()
    } else {
        b.terminate()
    }
    wait_until(Duration::from_secs(20), "replica-c to take over", || {
        c.log_text().contains("LEADER=true")
    });
    eprintln!(
        "failover after a graceful stop took {:?}",
        started.elapsed()
    );
    assert_eq!(holder(&lease), "replica-c");
    c.terminate();
}

#[test]
#[ignore = "needs a control plane: run e2e/run.sh"]
fn policies_on_other_kinds_are_audited_too() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    ensure_namespace("rampart-system");
    let ns = fresh_namespace("e2e-kinds");
    kubectl_ok(&[
        "create",
        "configmap",
        "leaky",
        "-n",
        &ns,
        "--from-literal=password=hunter2",
    ]);
    kubectl_ok(&[
        "create",
        "configmap",
        "fine",
        "-n",
        &ns,
        "--from-literal=colour=blue",
    ]);
    let _policy = Cleanup(|| {
        let _ = kubectl(&[
            "delete",
            "clusterpolicy",
            "e2e-no-passwords",
            "--ignore-not-found",
        ]);
    });
    let mut controller = start_controller("e2e-kinds", tmp.path());
    apply(
        r#"apiVersion: rampart.dev/v1alpha1
kind: ClusterPolicy
metadata:
  name: e2e-no-passwords
spec:
  matchConstraints:
    kinds: ["ConfigMap"]
  validations:
  - name: no-password-key
    expression: "!has(object.data) || !('password' in object.data)"
    message: ConfigMaps must not hold passwords
"#,
    );
    wait_until(Duration::from_secs(60), "the ConfigMaps' results", || {
        summary(&ns) == Some((1, 1))
    });
    let r = report(&ns).unwrap();
    assert_eq!(r["results"][0]["resources"][0]["name"], "leaky");
    assert_eq!(
        r["results"][0]["message"],
        "ConfigMaps must not hold passwords"
    );
    controller.terminate();
}

fn ready_condition(policy: &str) -> Option<Value> {
    let out = kubectl(&["get", "clusterpolicy", policy, "-o", "json"]);
    if !out.status.success() {
        return None;
    }
    let p: Value = serde_json::from_slice(&out.stdout).unwrap();
    p["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready")
        .cloned()
}

const NO_PASSWORDS: &str = r#"apiVersion: rampart.dev/v1alpha1
kind: ClusterPolicy
metadata:
  name: e2e-no-passwords-kept
spec:
  matchConstraints:
    kinds: ["ConfigMap"]
    namespaceSelector:
      matchLabels: {rampart-e2e/last-good: "on"}
  validations:
  - name: no-password-key
    expression: "!has(object.data) || !('password' in object.data)"
    message: ConfigMaps must not hold passwords
"#;

/// A second policy for the last-good test, with a message to tell its versions apart.
const NO_TOKENS: &str = r#"apiVersion: rampart.dev/v1alpha1
kind: ClusterPolicy
metadata:
  name: e2e-no-tokens-kept
spec:
  matchConstraints:
    kinds: ["ConfigMap"]
    namespaceSelector:
      matchLabels: {rampart-e2e/last-good: "on"}
  validations:
  - name: no-token-key
    expression: "!has(object.data) || !('token' in object.data)"
    message: MESSAGE
"#;

/// Results in `ns`'s report whose message is exactly `message`.
fn results_with_message(ns: &str, message: &str) -> usize {
    report(ns).map_or(0, |r| {
        r["results"].as_array().map_or(0, |rs| {
            rs.iter().filter(|x| x["message"] == message).count()
        })
    })
}

#[test]
#[ignore = "needs a control plane: run e2e/run.sh"]
fn a_policy_update_that_does_not_compile_is_reported_and_the_previous_version_audits() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    ensure_namespace("rampart-system");
    let ns = fresh_namespace("e2e-last-good");
    kubectl_ok(&["label", "namespace", &ns, "rampart-e2e/last-good=on"]);
    kubectl_ok(&[
        "create",
        "configmap",
        "leaky",
        "-n",
        &ns,
        "--from-literal=password=x",
    ]);
    kubectl_ok(&[
        "create",
        "configmap",
        "fine",
        "-n",
        &ns,
        "--from-literal=colour=blue",
    ]);
    let _policy = Cleanup(|| {
        let _ = kubectl(&[
            "delete",
            "clusterpolicy",
            "e2e-no-passwords-kept",
            "e2e-no-tokens-kept",
            "--ignore-not-found",
        ]);
    });
    let mut controller = start_controller("e2e-last-good", tmp.path());
    apply(NO_PASSWORDS);
    wait_until(Duration::from_secs(60), "the ConfigMaps' results", || {
        summary(&ns) == Some((1, 1))
    });
    wait_until(Duration::from_secs(60), "the policy to be Ready", || {
        ready_condition("e2e-no-passwords-kept").is_some_and(|c| c["status"] == "True")
    });

    // A broken update: the status says why, an Event is raised on the
    // policy, and the previous version goes on auditing.
    apply(&NO_PASSWORDS.replace(
        "!has(object.data) || !('password' in object.data)",
        "!has(object.data) ||",
    ));
    wait_until(Duration::from_secs(60), "the Ready=False condition", || {
        ready_condition("e2e-no-passwords-kept").is_some_and(|c| c["status"] == "False")
    });
    let c = ready_condition("e2e-no-passwords-kept").unwrap();
    assert_eq!(c["reason"], "CompileError", "{c}");
    let message = c["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("spec.validations[0].expression"),
        "{message}"
    );
    assert!(
        message.contains("the previous version stays in force"),
        "{message}"
    );
    let uid = get_json(&[
        "get",
        "clusterpolicy",
        "e2e-no-passwords-kept",
        "-o",
        "json",
    ])["metadata"]["uid"]
        .as_str()
        .unwrap()
        .to_owned();
    wait_until(Duration::from_secs(30), "the PolicyRejected Event", || {
        let events = get_json(&["get", "events.events.k8s.io", "-A", "-o", "json"]);
        events["items"].as_array().is_some_and(|items| {
            items
                .iter()
                .any(|e| e["reason"] == "PolicyRejected" && e["regarding"]["uid"] == uid.as_str())
        })
    });
    kubectl_ok(&[
        "create",
        "configmap",
        "leaky-too",
        "-n",
        &ns,
        "--from-literal=password=y",
    ]);
    wait_until(
        Duration::from_secs(60),
        "the previous version to audit a new ConfigMap",
        || summary(&ns) == Some((1, 2)),
    );

    // While it is broken, another policy's update goes through.
    kubectl_ok(&[
        "create",
        "configmap",
        "tokened",
        "-n",
        &ns,
        "--from-literal=token=t",
    ]);
    apply(&NO_TOKENS.replace("MESSAGE", "no tokens"));
    wait_until(
        Duration::from_secs(60),
        "the second policy's results",
        || results_with_message(&ns, "no tokens") == 1,
    );
    apply(&NO_TOKENS.replace("MESSAGE", "no tokens, really"));
    wait_until(
        Duration::from_secs(60),
        "the second policy's update",
        || results_with_message(&ns, "no tokens, really") == 1,
    );

    // Fixed: Ready again.
    apply(&NO_PASSWORDS.replace("ConfigMaps must not hold passwords", "no passwords, please"));
    wait_until(
        Duration::from_secs(60),
        "the policy to be Ready again",
        || ready_condition("e2e-no-passwords-kept").is_some_and(|c| c["status"] == "True"),
    );
    controller.terminate();
}

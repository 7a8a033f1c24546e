//! `rampart test`, `rampart scan --policy` and `rampart crds`, run as users run them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn rampart() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rampart"));
    cmd.env_remove("RAMPART_PSS_LEVEL")
        .env_remove("RAMPART_PSS_VERSION")
        .env_remove("RAMPART_ALLOWED_REGISTRIES")
        .env("NO_COLOR", "1");
    cmd
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn run(args: &[&str]) -> Output {
    rampart()
        .current_dir(repo())
        .args(args)
        .output()
        .expect("run rampart")
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exited")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", stdout(o), stderr(o)))
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn shipped_suites_pass() {
    let out = run(&["test", "policies/tests"]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    let text = stdout(&out);
    assert!(
        text.lines().last().unwrap().ends_with(" passed, 0 failed"),
        "{text}"
    );
    for suite in [
        "builtin-defaults",
        "builtin-baseline-audit",
        "require-labels",
        "disallow-latest",
        "max-replicas",
        "default-labels",
    ] {
        assert!(
            text.contains(&format!("policies/tests/{suite}/rampart-test.yaml")),
            "{suite} not run:\n{text}"
        );
    }
    assert!(!text.contains("FAIL"), "{text}");
}

const POLICY: &str = r#"
apiVersion: rampart.dev/v1alpha1
kind: ClusterPolicy
metadata: {name: max-three}
spec:
  matchConstraints: {kinds: [apps/Deployment]}
  validations:
  - name: replicas
    expression: "object.spec.replicas <= 3"
    messageExpression: "'too many replicas: ' + string(object.spec.replicas)"
"#;

const RESOURCES: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec: {replicas: 5}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: shop}
spec: {replicas: 1}
"#;

#[test]
fn unmet_expectations_fail_with_exit_1_in_every_format() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "policy.yaml", POLICY);
    write(tmp.path(), "suite/resources.yaml", RESOURCES);
    write(
        tmp.path(),
        "suite/rampart-test.yaml",
        "policies: [../policy.yaml]\nresources: [resources.yaml]\nresults:\n\
         - {policy: max-three, rule: replicas, resources: [web], result: fail, message: 'too many replicas: 5'}\n\
         - {policy: max-three, resources: [api, shop/web], result: pass}\n\
         - {policy: max-three, resources: [nonexistent], result: pass}\n\
         - {policy: other, resources: [api], result: pass}\n",
    );
    let dir = tmp.path().to_str().unwrap();
    let out = run(&["test", dir]);
    assert_eq!(code(&out), 1, "{}{}", stdout(&out), stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("2 passed, 3 failed"), "{text}");
    let line = text
        .lines()
        .find(|l| l.contains("FAIL") && l.contains("shop/web"))
        .expect("a failing row");
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(
        words,
        [
            "FAIL",
            "max-three",
            "Deployment",
            "shop/web",
            "expected",
            "pass",
            "got",
            "fail",
            "expected",
            "pass,",
            "got",
            "fail"
        ],
        "{line}"
    );
    assert!(text.contains("no resource named \"nonexistent\""), "{text}");
    assert!(text.contains("no policy named \"other\""), "{text}");

    let out = run(&["test", "-o", "json", dir]);
    assert_eq!(code(&out), 1);
    let v = json(&out);
    assert_eq!(
        v["summary"],
        serde_json::json!({"passed": 2, "failed": 3, "invalid": 0})
    );
    let first = &v["suites"][0]["cases"][0];
    assert_eq!(first["resource"], "Deployment shop/web");
    assert_eq!(
        (
            first["expected"].as_str(),
            first["actual"].as_str(),
            first["passed"].as_bool()
        ),
        (Some("fail"), Some("fail"), Some(true))
    );

    let out = run(&["test", "-o", "junit", dir]);
    assert_eq!(code(&out), 1);
    let xml = stdout(&out);
    assert!(
        xml.contains(r#"<testsuites name="rampart test" tests="5" failures="3" errors="0">"#),
        "{xml}"
    );
    assert!(
        xml.contains(r#"<failure message="expected pass, got fail"/>"#),
        "{xml}"
    );
}

#[test]
fn invalid_suites_exit_2_naming_the_problem() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "policy.yaml", &POLICY.replace("<= 3", "<= "));
    write(tmp.path(), "resources.yaml", RESOURCES);
    write(
        tmp.path(),
        "rampart-test.yaml",
        "policies: [policy.yaml]\nresources: [resources.yaml]\nresults: [{policy: max-three, resources: [web], result: fail}]\n",
    );
    let out = run(&["test", tmp.path().to_str().unwrap()]);
    assert_eq!(code(&out), 2);
    let err = stderr(&out);
    assert!(
        err.contains(
            "ClusterPolicy \"max-three\": spec.validations[0].expression: line 1, column "
        ),
        "{err}"
    );

    // A malformed test file.
    write(
        tmp.path(),
        "rampart-test.yaml",
        "policies: [policy.yaml]\nresults: [{policy: x, result: maybe}]\n",
    );
    let out = run(&["test", tmp.path().to_str().unwrap()]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("rampart-test.yaml"),
        "{}",
        stderr(&out)
    );
    // Nothing to run.
    let empty = tempfile::tempdir().unwrap();
    let out = run(&["test", empty.path().to_str().unwrap()]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("no rampart-test.yaml found"));
}

#[test]
fn scan_reports_policy_findings_with_policy_ids_and_severity() {
    let tmp = tempfile::tempdir().unwrap();
    let policy = write(
        tmp.path(),
        "policies/max-three.yaml",
        &POLICY.replace("matchConstraints", "severity: high\n  matchConstraints"),
    );
    let manifests = write(tmp.path(), "manifests/app.yaml", RESOURCES);
    let out = run(&[
        "scan",
        "-o",
        "json",
        "--pss-only",
        "--pss-level",
        "privileged",
        "--policy",
        policy.to_str().unwrap(),
        manifests.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let v = json(&out);
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 1, "only web has findings: {results:#?}");
    assert_eq!(results[0]["name"], "web");
    let f = &results[0]["findings"][0];
    assert_eq!(f["checkId"], "max-three/replicas");
    assert_eq!(f["severity"], "high");
    assert_eq!(f["message"], "too many replicas: 5");
    assert_eq!(f["line"], 2, "located at the object");
    assert!(
        v["rules"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == "max-three/replicas")
    );

    // SARIF carries the rule.
    let out = run(&[
        "scan",
        "-o",
        "sarif",
        "--pss-only",
        "--policy",
        policy.to_str().unwrap(),
        manifests.to_str().unwrap(),
    ]);
    let sarif = json(&out);
    let rules = sarif["runs"][0]["tool"]["driver"]["rules"]
        .as_array()
        .unwrap();
    assert!(
        rules.iter().any(|r| r["id"] == "max-three/replicas"),
        "{rules:#?}"
    );
}

#[test]
fn scan_with_a_native_admission_policy_and_params() {
    let out = run(&[
        "scan",
        "-o",
        "json",
        "--pss-level",
        "privileged",
        "--pss-only",
        "--policy",
        "policies/examples/max-replicas.yaml",
        "--policy",
        "policies/tests/max-replicas/namespaces.yaml",
        "policies/tests/max-replicas/resources.yaml",
    ]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let v = json(&out);
    let mut found: Vec<(String, String, String)> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|o| {
            o["findings"].as_array().unwrap().iter().map(move |f| {
                (
                    o["name"].as_str().unwrap().to_owned(),
                    f["checkId"].as_str().unwrap().to_owned(),
                    f["message"].as_str().unwrap().to_owned(),
                )
            })
        })
        .collect();
    found.sort();
    assert_eq!(
        found,
        [
            (
                "big".to_owned(),
                "max-replicas/0".to_owned(),
                "replicas must be at most 3 in namespace team-test".to_owned()
            ),
            (
                "huge".to_owned(),
                "max-replicas/0".to_owned(),
                "replicas must be at most 50 in namespace team-prod".to_owned()
            ),
        ]
    );
}

#[test]
fn broken_policies_stop_the_scan_with_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let policy = write(
        tmp.path(),
        "p.yaml",
        &POLICY.replace("validationActions", "x").replace(
            "matchConstraints:",
            "validationActions: [Block]\n  matchConstraints:",
        ),
    );
    let manifests = write(tmp.path(), "m.yaml", RESOURCES);
    let out = run(&[
        "scan",
        "--policy",
        policy.to_str().unwrap(),
        manifests.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 2);
    let err = stderr(&out);
    assert!(err.contains("1 error in policies:"), "{err}");
    assert!(
        err.contains(
            "ClusterPolicy \"max-three\": spec.validationActions[0]: unknown variant `Block`"
        ),
        "{err}"
    );
    assert!(stdout(&out).is_empty());
}

#[test]
fn policy_documents_among_scanned_manifests_are_not_workloads() {
    let out = run(&["scan", "-o", "json", "policies/examples/max-replicas.yaml"]);
    let v = json(&out);
    // Two ConfigMaps are scanned; the policy and its bindings are not.
    assert_eq!(v["summary"]["objects"], 2, "{}", stdout(&out));
}

#[test]
fn crds_command_prints_the_checked_in_crds() {
    let out = run(&["crds"]);
    assert_eq!(code(&out), 0);
    let cluster =
        std::fs::read_to_string(repo().join("deploy/crds/rampart.dev_clusterpolicies.yaml"))
            .unwrap();
    let namespaced =
        std::fs::read_to_string(repo().join("deploy/crds/rampart.dev_policies.yaml")).unwrap();
    assert_eq!(stdout(&out), format!("{cluster}---\n{namespaced}"));
    let tmp = tempfile::tempdir().unwrap();
    let out = run(&["crds", "--output-dir", tmp.path().to_str().unwrap()]);
    assert_eq!(code(&out), 0);
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("rampart.dev_policies.yaml")).unwrap(),
        namespaced
    );
}

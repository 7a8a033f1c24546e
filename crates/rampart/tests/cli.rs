//! Runs the built `rampart` binary the way users and CI do.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn rampart() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rampart"));
    cmd.env_remove("RAMPART_PSS_LEVEL")
        .env_remove("RAMPART_PSS_VERSION")
        .env_remove("RAMPART_ALLOWED_REGISTRIES")
        .env("NO_COLOR", "1");
    cmd
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/realistic")
}

fn run(args: &[&str]) -> Output {
    rampart().args(args).output().expect("run rampart")
}

fn run_stdin(args: &[&str], input: &[u8]) -> Output {
    let mut child = rampart()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn rampart");
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

fn json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// `(checkId, line, suppressed)` of every finding of the object `kind/name`.
fn findings_of(report: &Value, kind: &str, name: &str) -> Vec<(String, u64, bool)> {
    let object = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["kind"] == kind && o["name"] == name)
        .unwrap_or_else(|| panic!("no results for {kind}/{name}"));
    object["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["checkId"].as_str().unwrap().to_owned(),
                f["line"].as_u64().unwrap(),
                f.get("suppressed").is_some(),
            )
        })
        .collect()
}

fn ids(findings: &[(String, u64, bool)]) -> Vec<&str> {
    let mut ids: Vec<&str> = findings.iter().map(|f| f.0.as_str()).collect();
    ids.sort_unstable();
    ids
}

fn code(output: &Output) -> i32 {
    output.status.code().expect("exit code")
}

#[test]
fn scans_a_directory_of_real_looking_manifests() {
    let out = run(&["scan", "-o", "json", fixtures().to_str().unwrap()]);
    assert_eq!(code(&out), 1, "{}", String::from_utf8_lossy(&out.stderr));
    let report = json(&out);
    let summary = &report["summary"];
    assert_eq!(summary["files"], 4);
    assert_eq!(summary["objects"], 7);
    assert_eq!(summary["inputErrors"], 0);

    let exporter = findings_of(&report, "DaemonSet", "node-exporter");
    assert_eq!(
        ids(&exporter),
        [
            "host-path-writable",
            "pss-capabilities_restricted",
            "pss-hostNamespaces",
            "pss-hostPorts",
            "pss-restrictedVolumes",
            "pss-seccompProfile_restricted",
        ]
    );
    let line_of = |id: &str| exporter.iter().find(|f| f.0 == id).unwrap().1;
    assert_eq!(line_of("pss-hostNamespaces"), 21, "hostNetwork: true");
    assert_eq!(line_of("pss-hostPorts"), 38, "hostPort: 9100");
    assert_eq!(
        line_of("host-path-writable"),
        56,
        "the root mount without readOnly"
    );

    let postgres = findings_of(&report, "StatefulSet", "postgres");
    assert_eq!(ids(&postgres), ["pss-runAsNonRoot", "pss-runAsUser"]);
    assert!(
        postgres.contains(&("pss-runAsUser".to_owned(), 37, false)),
        "{postgres:?}"
    );
    assert!(
        postgres.contains(&("pss-runAsNonRoot".to_owned(), 38, false)),
        "{postgres:?}"
    );

    // The hardened API and its service account pass everything.
    let results = report["results"].as_array().unwrap();
    assert!(!results.iter().any(|o| o["name"] == "api"), "{results:#?}");

    // The backup job's only finding is silenced with its reason.
    let backup = findings_of(&report, "CronJob", "backup");
    assert_eq!(backup, [("read-only-root-filesystem".to_owned(), 24, true)]);
    assert_eq!(summary["suppressed"], 1);
}

#[test]
fn table_output_groups_by_object_and_ends_with_a_summary() {
    let out = run(&["scan", fixtures().join("postgres.yaml").to_str().unwrap()]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("postgres.yaml:12  StatefulSet data/postgres"),
        "{text}"
    );
    assert!(
        text.contains("at spec.template.spec.initContainers[0].securityContext.runAsUser"),
        "{text}"
    );
    let last = text.lines().last().unwrap();
    assert_eq!(last, "1 file, 2 objects: 2 findings (2 high) in 1 object");
    assert!(!text.contains('\u{1b}'), "NO_COLOR must turn colour off");
}

#[test]
fn fail_on_sets_the_threshold_for_exit_code_1() {
    let path = fixtures().join("postgres.yaml");
    let path = path.to_str().unwrap();
    assert_eq!(code(&run(&["scan", "--fail-on", "high", path])), 1);
    assert_eq!(code(&run(&["scan", "--fail-on", "critical", path])), 0);
    let clean = fixtures().join("api.yaml");
    assert_eq!(code(&run(&["scan", clean.to_str().unwrap()])), 0);
}

#[test]
fn pss_level_and_version_select_the_checks() {
    let path = fixtures().join("postgres.yaml");
    let path = path.to_str().unwrap();
    // runAsUser and runAsNonRoot are restricted checks: baseline passes.
    assert_eq!(code(&run(&["scan", "--pss-level", "baseline", path])), 0);
    // runAsUser only exists from v1.23.
    let old = json(&run(&[
        "scan",
        "-o",
        "json",
        "--pss-version",
        "v1.22",
        path,
    ]));
    assert_eq!(
        ids(&findings_of(&old, "StatefulSet", "postgres")),
        ["pss-runAsNonRoot"]
    );
}

#[test]
fn reads_stdin_and_lists() {
    let input = br#"{"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a"},
         "spec": {"containers": [{"name": "c", "image": "nginx:1.27", "securityContext": {"privileged": true}}]}}
    ]}"#;
    let out = run_stdin(
        &[
            "scan",
            "-o",
            "json",
            "--pss-level",
            "baseline",
            "--pss-only",
            "-",
        ],
        input,
    );
    assert_eq!(code(&out), 1);
    let report = json(&out);
    let pod = &report["results"][0];
    assert_eq!(pod["source"], "-");
    assert_eq!(pod["listItem"], 0);
    assert_eq!(pod["findings"][0]["checkId"], "pss-privileged");
    assert_eq!(
        pod["findings"][0]["path"],
        "spec.containers[0].securityContext.privileged"
    );
    assert_eq!(pod["findings"][0]["line"], 3);
}

#[test]
fn bad_documents_are_reported_and_the_rest_is_scanned() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("mixed.yaml"),
        "apiVersion: v1\nkind: Pod\nmetadata: {name: first}\nspec:\n  hostPID: true\n  containers: [{name: c, image: x:1}]\n\
         ---\nkind: Pod\napiVersion: v1\nmetadata: {name: broken\nspec: {}\n\
         ---\napiVersion: v1\nkind: Deployment\nmetadata: {name: wrong-group}\n\
         ---\n- just\n- a list\n\
         ---\napiVersion: v1\nkind: Pod\nmetadata: {name: last}\nspec:\n  hostIPC: true\n  containers: [{name: c, image: x:1}]\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("binary.yaml"),
        b"apiVersion: v1\nkind: Pod\nmetadata: {name: \xff\xfe}\n",
    )
    .unwrap();
    let out = run(&[
        "scan",
        "-o",
        "json",
        "--pss-level",
        "baseline",
        "--pss-only",
        dir.path().to_str().unwrap(),
    ]);
    let report = json(&out);
    assert_eq!(
        code(&out),
        1,
        "findings in the good documents still fail the scan"
    );
    let scanned: Vec<&str> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(scanned, ["first", "last"]);
    let errors = report["inputErrors"].as_array().unwrap();
    let kinds: Vec<(&str, Option<u64>)> = errors
        .iter()
        .map(|e| (e["kind"].as_str().unwrap(), e["document"].as_u64()))
        .collect();
    assert!(kinds.contains(&("encoding", Some(0))), "{errors:#?}");
    assert!(kinds.contains(&("syntax", Some(1))), "{errors:#?}");
    assert!(kinds.contains(&("unknown-kind", Some(2))), "{errors:#?}");
    assert!(kinds.contains(&("not-an-object", Some(3))), "{errors:#?}");
    let wrong_group = errors.iter().find(|e| e["kind"] == "unknown-kind").unwrap();
    assert!(
        wrong_group["message"].as_str().unwrap().contains("apps/v1"),
        "{wrong_group}"
    );
    assert!(
        errors
            .iter()
            .all(|e| e["source"].as_str().unwrap().ends_with(".yaml"))
    );

    // --strict turns input errors into exit 2.
    let strict = run(&[
        "scan",
        "--strict",
        "--pss-only",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(code(&strict), 2);
}

#[test]
fn nothing_scannable_exits_2_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let deep = format!("{}{}", "[".repeat(100), "]".repeat(100));
    std::fs::write(dir.path().join("deep.json"), &deep).unwrap();
    let out = run(&["scan", dir.path().to_str().unwrap()]);
    assert_eq!(code(&out), 2);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("deep.json"), "{text}");
    assert!(text.contains("too-deep"), "{text}");

    let missing = run(&["scan", "/nonexistent/rampart/manifests"]);
    assert_eq!(code(&missing), 2);
}

#[test]
fn oversized_files_are_refused_without_reading_them() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.yaml");
    let file = std::fs::File::create(&big).unwrap();
    file.set_len(50 * 1024 * 1024).unwrap();
    std::fs::write(
        dir.path().join("ok.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n",
    )
    .unwrap();
    let out = run(&["scan", "-o", "json", dir.path().to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stdout));
    let report = json(&out);
    assert_eq!(report["summary"]["objects"], 1);
    let error = &report["inputErrors"][0];
    assert_eq!(error["kind"], "too-large");
    assert!(error["source"].as_str().unwrap().ends_with("big.yaml"));
}

#[test]
fn sarif_output_carries_rules_and_regions() {
    let out = run(&[
        "scan",
        "-o",
        "sarif",
        fixtures().join("postgres.yaml").to_str().unwrap(),
    ]);
    let sarif = json(&out);
    assert_eq!(sarif["version"], "2.1.0");
    let run0 = &sarif["runs"][0];
    let results = run0["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    for r in results {
        let rule = &run0["tool"]["driver"]["rules"][r["ruleIndex"].as_u64().unwrap() as usize];
        assert_eq!(rule["id"], r["ruleId"]);
        let loc = &r["locations"][0]["physicalLocation"];
        assert!(
            loc["artifactLocation"]["uri"]
                .as_str()
                .unwrap()
                .ends_with("postgres.yaml")
        );
        assert!(loc["region"]["startLine"].as_u64().unwrap() > 1);
    }
}

#[test]
fn junit_output_has_a_case_per_object() {
    let out = run(&[
        "scan",
        "-o",
        "junit",
        fixtures().join("postgres.yaml").to_str().unwrap(),
    ]);
    let xml = String::from_utf8(out.stdout).unwrap();
    assert!(xml.starts_with("<?xml"));
    assert!(
        xml.contains(r#"tests="2" failures="1" errors="0""#),
        "{xml}"
    );
    assert!(xml.contains(r#"name="StatefulSet data/postgres""#), "{xml}");
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(code(&run(&["scan", "--pss-version", "v2.0", "x.yaml"])), 2);
    assert_eq!(code(&run(&["scan", "--fail-on", "severe", "x.yaml"])), 2);
    assert_eq!(code(&run(&["scan"])), 2);
}

#[test]
fn checks_lists_every_built_in_check() {
    let out = run(&["checks", "-o", "json"]);
    let checks = json(&out);
    let ids: Vec<&str> = checks
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"pss-privileged"));
    assert!(ids.contains(&"rbac-cluster-admin-binding"));
    for c in checks.as_array().unwrap() {
        assert!(!c["why"].as_str().unwrap().is_empty());
        assert!(!c["fix"].as_str().unwrap().is_empty());
    }
}

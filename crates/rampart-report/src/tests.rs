use std::borrow::Cow;
use std::sync::Arc;

use rampart_core::{Category, CheckMeta, FieldPath, Finding, Severity};

use super::*;

fn rule(id: &'static str, severity: Severity, category: Category) -> Arc<CheckMeta> {
    Arc::new(CheckMeta {
        id: Cow::Borrowed(id),
        title: Cow::Owned(format!("{id} title")),
        severity,
        category,
        why: Cow::Borrowed("Because it matters."),
        fix: Cow::Borrowed("Do the safe thing."),
    })
}

fn finding(check: &Arc<CheckMeta>, message: &str, path: &str, suppressed: Option<&str>) -> Finding {
    Finding {
        check: Arc::clone(check),
        severity: check.severity,
        message: message.to_owned(),
        path: FieldPath::parse(path),
        related: vec![],
        suppressed: suppressed.map(str::to_owned),
    }
}

fn sample() -> ScanReport {
    let privileged = rule(
        "pss-privileged",
        Severity::Critical,
        Category::PodSecurityStandards,
    );
    let latest = rule("image-latest-tag", Severity::Medium, Category::Images);
    let probe = rule(
        "liveness-probe-missing",
        Severity::Info,
        Category::Workloads,
    );
    let source: Arc<str> = Arc::from("deploy/web & api.yaml");
    ScanReport {
        tool_version: "0.1.0".to_owned(),
        rules: vec![privileged.clone(), latest.clone(), probe.clone()],
        files: 2,
        objects: vec![
            ObjectResult {
                origin: Origin {
                    source: source.clone(),
                    document: 0,
                    list_item: None,
                    line: Some(1),
                },
                api_version: "apps/v1".to_owned(),
                kind: "Deployment".to_owned(),
                namespace: Some("shop".to_owned()),
                name: "web".to_owned(),
                findings: vec![
                    LocatedFinding::new(
                        finding(
                            &privileged,
                            "privileged (container \"app\" must not set securityContext.privileged=true)",
                            "spec.template.spec.containers[0].securityContext.privileged",
                            None,
                        ),
                        Some(21),
                        Some(11),
                    ),
                    LocatedFinding::new(
                        finding(
                            &latest,
                            "image \"nginx:latest\" uses the latest tag",
                            "spec.template.spec.containers[0].image",
                            Some("pinned by the release pipeline"),
                        ),
                        Some(18),
                        Some(16),
                    ),
                    LocatedFinding::new(
                        finding(
                            &probe,
                            "container \"app\" has no liveness probe",
                            "spec.template.spec.containers[0]",
                            None,
                        ),
                        Some(17),
                        Some(7),
                    ),
                ],
            },
            ObjectResult {
                origin: Origin {
                    source: source.clone(),
                    document: 1,
                    list_item: None,
                    line: Some(30),
                },
                api_version: "v1".to_owned(),
                kind: "Service".to_owned(),
                namespace: Some("shop".to_owned()),
                name: "web".to_owned(),
                findings: vec![],
            },
        ],
        input_errors: vec![InputError {
            kind: "syntax".to_owned(),
            source: "broken.yaml".to_owned(),
            document: Some(2),
            line: Some(14),
            column: Some(3),
            message: "mapping values are not allowed in this context".to_owned(),
            lost_input: true,
        }],
    }
}

fn render(f: impl FnOnce(&mut Vec<u8>) -> std::io::Result<()>) -> String {
    let mut out = Vec::new();
    f(&mut out).unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn summary_counts_active_and_suppressed_findings() {
    let s = sample().summary();
    assert_eq!((s.objects, s.objects_with_findings, s.findings), (2, 1, 2));
    assert_eq!((s.critical, s.medium, s.info, s.suppressed), (1, 0, 1, 1));
    assert_eq!(s.input_errors, 1);
    assert_eq!(
        s.line(),
        "2 files, 2 objects: 2 findings (1 critical, 1 info) in 1 object, 1 suppressed, 1 input error"
    );
    assert_eq!(sample().worst_severity(), Some(Severity::Critical));
}

#[test]
fn table() {
    insta::assert_snapshot!(render(|o| render_table(&sample(), o, false, false)));
}

#[test]
fn table_with_suppressed_findings() {
    let text = render(|o| render_table(&sample(), o, false, true));
    assert!(
        text.contains("ignored: pinned by the release pipeline"),
        "{text}"
    );
}

#[test]
fn table_in_colour_uses_ansi_styles() {
    let text = render(|o| render_table(&sample(), o, true, false));
    assert!(text.contains("\u{1b}[1m\u{1b}[31mcritical"), "{text:?}");
    let plain = render(|o| render_table(&sample(), o, false, false));
    assert!(!plain.contains('\u{1b}'));
}

#[test]
fn json() {
    insta::assert_snapshot!(render(|o| render_json(&sample(), o)));
}

#[test]
fn sarif() {
    insta::assert_snapshot!(render(|o| render_sarif(&sample(), o)));
}

#[test]
fn sarif_has_what_github_code_scanning_requires() {
    let v = sarif::to_sarif(&sample());
    assert_eq!(v["version"], "2.1.0");
    let run = &v["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "rampart");
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    for result in run["results"].as_array().unwrap() {
        let index = result["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(rules[index]["id"], result["ruleId"]);
        let region = &result["locations"][0]["physicalLocation"]["region"];
        assert!(region["startLine"].as_u64().unwrap() >= 1);
        assert!(
            result["message"]["text"]
                .as_str()
                .is_some_and(|t| !t.is_empty())
        );
    }
    assert_eq!(
        run["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        "deploy/web%20%26%20api.yaml"
    );
    assert_eq!(run["results"][1]["suppressions"][0]["kind"], "inSource");
    assert_eq!(run["invocations"][0]["executionSuccessful"], false);
}

#[test]
fn junit() {
    insta::assert_snapshot!(render(|o| render_junit(&sample(), o, Severity::Low)));
}

#[test]
fn junit_threshold_moves_findings_below_it_out_of_failures() {
    let text = render(|o| render_junit(&sample(), o, Severity::Critical));
    assert!(text.contains("failures=\"1\""));
    let text = render(|o| render_junit(&sample(), o, Severity::Info));
    assert!(text.contains("2 findings at or above info"), "{text}");
}

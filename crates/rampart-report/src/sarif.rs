//! SARIF 2.1.0 as GitHub code scanning reads it: one run, a rule per check
//! that ran, a result per finding with a file region, input problems as tool
//! notifications.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::{self, Write};

use rampart_core::Severity;
use serde::Serialize;
use serde_json::{Value, json};

use crate::ScanReport;

const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";
const INFORMATION_URI: &str = "https://github.com/rampart-dev/rampart";

fn level(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info => "note",
    }
}

/// GitHub's `security-severity` score: it maps >= 9.0 to critical, >= 7.0 to
/// high, >= 4.0 to medium and above 0 to low.
fn security_severity(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "3.0",
        Severity::Info => "0.1",
    }
}

/// A path as a relative URI reference: forward slashes, `./` dropped,
/// everything outside the unreserved set percent-encoded.
fn artifact_uri(source: &str) -> String {
    if source == "-" {
        return "stdin".to_owned();
    }
    let normalized = source.replace('\\', "/");
    let trimmed = normalized.trim_start_matches("./");
    let mut out = String::with_capacity(trimmed.len());
    for b in trimmed.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Log<'a> {
    #[serde(rename = "$schema")]
    schema: &'static str,
    version: &'static str,
    runs: [Run<'a>; 1],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Run<'a> {
    tool: Tool<'a>,
    invocations: [Invocation; 1],
    original_uri_base_ids: Value,
    results: Vec<SarifResult<'a>>,
}

#[derive(Serialize)]
struct Tool<'a> {
    driver: Driver<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Driver<'a> {
    name: &'static str,
    version: &'a str,
    semantic_version: &'a str,
    information_uri: &'static str,
    rules: Vec<Rule<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Rule<'a> {
    id: &'a str,
    name: &'a str,
    short_description: Text<'a>,
    full_description: Text<'a>,
    help: Help,
    default_configuration: Configuration,
    properties: RuleProperties<'a>,
}

#[derive(Serialize)]
struct Text<'a> {
    text: Cow<'a, str>,
}

#[derive(Serialize)]
struct Help {
    text: String,
    markdown: String,
}

#[derive(Serialize)]
struct Configuration {
    level: &'static str,
}

#[derive(Serialize)]
struct RuleProperties<'a> {
    tags: [&'a str; 3],
    precision: &'static str,
    #[serde(rename = "problem.severity")]
    problem_severity: &'static str,
    #[serde(rename = "security-severity")]
    security_severity: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Invocation {
    execution_successful: bool,
    tool_execution_notifications: Vec<Notification>,
}

#[derive(Serialize)]
struct Notification {
    level: &'static str,
    message: Text<'static>,
    locations: [Location; 1],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Location {
    physical_location: PhysicalLocation,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PhysicalLocation {
    artifact_location: ArtifactLocation,
    #[serde(skip_serializing_if = "Option::is_none")]
    region: Option<Region>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ArtifactLocation {
    uri: String,
    uri_base_id: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Region {
    start_line: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    start_column: Option<usize>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifResult<'a> {
    rule_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    rule_index: Option<usize>,
    level: &'static str,
    message: Text<'a>,
    locations: [Location; 1],
    properties: ResultProperties<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    suppressions: Option<[Suppression<'a>; 1]>,
}

#[derive(Serialize)]
struct ResultProperties<'a> {
    severity: &'static str,
    path: String,
    kind: &'a str,
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    namespace: Option<&'a str>,
    document: usize,
}

#[derive(Serialize)]
struct Suppression<'a> {
    kind: &'static str,
    justification: &'a str,
}

fn location(source: &str, line: Option<usize>, column: Option<usize>) -> Location {
    Location {
        physical_location: PhysicalLocation {
            artifact_location: ArtifactLocation {
                uri: artifact_uri(source),
                uri_base_id: "%SRCROOT%",
            },
            region: line.map(|start_line| Region {
                start_line,
                start_column: column,
            }),
        },
    }
}

fn log(report: &ScanReport) -> Log<'_> {
    let rules = report
        .rules
        .iter()
        .map(|r| Rule {
            id: &r.id,
            name: &r.id,
            short_description: Text {
                text: Cow::Borrowed(&r.title),
            },
            full_description: Text {
                text: Cow::Borrowed(&r.why),
            },
            help: Help {
                text: format!("{}\nFix: {}", r.why, r.fix),
                markdown: format!("{}\n\n**Fix:** {}", r.why, r.fix),
            },
            default_configuration: Configuration {
                level: level(r.severity),
            },
            properties: RuleProperties {
                tags: ["security", "kubernetes", r.category.as_str()],
                precision: "very-high",
                problem_severity: level(r.severity),
                security_severity: security_severity(r.severity),
            },
        })
        .collect();
    let rule_index: HashMap<&str, usize> = report
        .rules
        .iter()
        .enumerate()
        .map(|(i, r)| (r.id.as_ref(), i))
        .collect();
    let mut results = Vec::new();
    for object in &report.objects {
        let display_name = object.display_name();
        for f in &object.findings {
            let finding = &f.finding;
            results.push(SarifResult {
                rule_id: &f.check_id,
                rule_index: rule_index.get(f.check_id.as_str()).copied(),
                level: level(finding.severity),
                message: Text {
                    text: Cow::Owned(format!("{display_name}: {}", finding.message)),
                },
                locations: [location(&object.origin.source, f.line, f.column)],
                properties: ResultProperties {
                    severity: finding.severity.as_str(),
                    path: finding.path.to_string(),
                    kind: &object.kind,
                    name: &object.name,
                    namespace: object.namespace.as_deref(),
                    document: object.origin.document,
                },
                suppressions: finding.suppressed.as_deref().map(|justification| {
                    [Suppression {
                        kind: "inSource",
                        justification,
                    }]
                }),
            });
        }
    }
    let notifications = report
        .input_errors
        .iter()
        .map(|e| Notification {
            level: if e.lost_input { "error" } else { "warning" },
            message: Text {
                text: Cow::Owned(format!("{}: {}", e.kind, e.message)),
            },
            locations: [location(&e.source, e.line, e.column)],
        })
        .collect();
    Log {
        schema: SCHEMA,
        version: "2.1.0",
        runs: [Run {
            tool: Tool {
                driver: Driver {
                    name: "rampart",
                    version: &report.tool_version,
                    semantic_version: &report.tool_version,
                    information_uri: INFORMATION_URI,
                    rules,
                },
            },
            invocations: [Invocation {
                execution_successful: report.summary().input_errors == 0,
                tool_execution_notifications: notifications,
            }],
            original_uri_base_ids: json!({"%SRCROOT%": {"description": {"text": "The directory rampart scan ran in"}}}),
            results,
        }],
    }
}

#[cfg(test)]
pub fn to_sarif(report: &ScanReport) -> Value {
    serde_json::to_value(log(report)).expect("the SARIF log serializes")
}

pub fn render_sarif(report: &ScanReport, out: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, &log(report))?;
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::artifact_uri;

    #[test]
    fn uris_are_relative_and_encoded() {
        assert_eq!(
            artifact_uri("./deploy/web app.yaml"),
            "deploy/web%20app.yaml"
        );
        assert_eq!(artifact_uri("k8s\\pod.yaml"), "k8s/pod.yaml");
        assert_eq!(artifact_uri("-"), "stdin");
    }
}

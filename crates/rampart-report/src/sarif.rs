//! SARIF 2.1.0 as GitHub code scanning reads it: one run, a rule per check
//! that ran, a result per finding with a file region, input problems as tool
//! notifications.

use std::io::{self, Write};

use rampart_core::Severity;
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

fn location(source: &str, line: Option<usize>, column: Option<usize>) -> Value {
    let mut physical =
        json!({"artifactLocation": {"uri": artifact_uri(source), "uriBaseId": "%SRCROOT%"}});
    if let Some(line) = line {
        let mut region = json!({"startLine": line});
        if let Some(column) = column {
            region["startColumn"] = json!(column);
        }
        physical["region"] = region;
    }
    json!({"physicalLocation": physical})
}

pub fn to_sarif(report: &ScanReport) -> Value {
    let rules: Vec<Value> = report
        .rules
        .iter()
        .map(|r| {
            json!({
                "id": r.id,
                "name": r.id,
                "shortDescription": {"text": r.title},
                "fullDescription": {"text": r.why},
                "help": {
                    "text": format!("{}\nFix: {}", r.why, r.fix),
                    "markdown": format!("{}\n\n**Fix:** {}", r.why, r.fix),
                },
                "defaultConfiguration": {"level": level(r.severity)},
                "properties": {
                    "tags": ["security", "kubernetes", r.category.as_str()],
                    "precision": "very-high",
                    "problem.severity": level(r.severity),
                    "security-severity": security_severity(r.severity),
                },
            })
        })
        .collect();
    let rule_index = |id: &str| report.rules.iter().position(|r| r.id == id);
    let mut results = Vec::new();
    for object in &report.objects {
        for f in &object.findings {
            let finding = &f.finding;
            let mut result = json!({
                "ruleId": f.check_id,
                "level": level(finding.severity),
                "message": {"text": format!("{}: {}", object.display_name(), finding.message)},
                "locations": [location(&object.origin.source, f.line, f.column)],
                "properties": {
                    "severity": finding.severity.as_str(),
                    "path": finding.path.to_string(),
                    "kind": object.kind,
                    "name": object.name,
                    "document": object.origin.document,
                },
            });
            if let Some(i) = rule_index(&f.check_id) {
                result["ruleIndex"] = json!(i);
            }
            if let Some(ns) = &object.namespace {
                result["properties"]["namespace"] = json!(ns);
            }
            if let Some(reason) = &finding.suppressed {
                result["suppressions"] = json!([{"kind": "inSource", "justification": reason}]);
            }
            results.push(result);
        }
    }
    let notifications: Vec<Value> = report
        .input_errors
        .iter()
        .map(|e| {
            json!({
                "level": if e.lost_input { "error" } else { "warning" },
                "message": {"text": format!("{}: {}", e.kind, e.message)},
                "locations": [location(&e.source, e.line, e.column)],
            })
        })
        .collect();
    json!({
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "rampart",
                "version": report.tool_version,
                "semanticVersion": report.tool_version,
                "informationUri": INFORMATION_URI,
                "rules": rules,
            }},
            "invocations": [{
                "executionSuccessful": report.summary().input_errors == 0,
                "toolExecutionNotifications": notifications,
            }],
            "originalUriBaseIds": {"%SRCROOT%": {"description": {"text": "The directory rampart scan ran in"}}},
            "results": results,
        }],
    })
}

pub fn render_sarif(report: &ScanReport, out: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, &to_sarif(report))?;
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

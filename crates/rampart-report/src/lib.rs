//! What a scan found, and the formats it is rendered in.
//!
//! The model is plain data: the CLI fills it from loaded manifests and the
//! engine's findings, and every renderer reads the same [`ScanReport`], so
//! the formats cannot disagree about what was found.

mod junit;
mod sarif;
mod summary;
mod table;

use std::sync::Arc;

use rampart_core::{CheckMeta, Finding, Severity};

pub use junit::render_junit;
pub use sarif::render_sarif;
pub use summary::Summary;
pub use table::render_table;

/// Everything one scan produced.
#[derive(Debug, Default)]
pub struct ScanReport {
    pub tool_version: String,
    /// Every check that ran, for SARIF rules and JSON consumers.
    pub rules: Vec<Arc<CheckMeta>>,
    /// Every scanned object, in input order, with or without findings.
    pub objects: Vec<ObjectResult>,
    /// Problems with the input itself.
    pub input_errors: Vec<InputError>,
    /// Files read (including those that failed).
    pub files: usize,
}

/// Where an object came from.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Origin {
    /// Path as given on the command line (or `-` for standard input).
    pub source: Arc<str>,
    /// 0-based index of the YAML document in the file.
    pub document: usize,
    /// Index in the `items` of a `kind: List`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub list_item: Option<usize>,
    /// 1-based line where the object starts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectResult {
    #[serde(flatten)]
    pub origin: Origin,
    pub api_version: String,
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
    pub findings: Vec<LocatedFinding>,
}

impl ObjectResult {
    /// `Deployment shop/web`, `ClusterRole admin`.
    pub fn display_name(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{} {}/{}", self.kind, ns, self.name),
            None => format!("{} {}", self.kind, self.name),
        }
    }

    pub fn active_findings(&self) -> impl Iterator<Item = &LocatedFinding> {
        self.findings.iter().filter(|f| !f.finding.is_suppressed())
    }
}

/// A finding and the place in the file it points at.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct LocatedFinding {
    #[serde(rename = "checkId")]
    pub check_id: String,
    #[serde(flatten)]
    pub finding: Finding,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
}

impl LocatedFinding {
    pub fn new(finding: Finding, line: Option<usize>, column: Option<usize>) -> Self {
        Self {
            check_id: finding.check_id().to_owned(),
            finding,
            line,
            column,
        }
    }

    pub fn severity(&self) -> Severity {
        self.finding.severity
    }
}

/// Input that could not be scanned, or was scanned with a caveat.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InputError {
    /// Machine-readable kind: `syntax`, `too-deep`, `unknown-kind`, ...
    pub kind: String,
    pub source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
    pub message: String,
    /// Whether some input went unscanned because of it (warnings lose nothing).
    pub lost_input: bool,
}

impl ScanReport {
    pub fn summary(&self) -> Summary {
        Summary::of(self)
    }

    /// The most severe unsuppressed finding, if any.
    pub fn worst_severity(&self) -> Option<Severity> {
        self.objects
            .iter()
            .flat_map(ObjectResult::active_findings)
            .map(LocatedFinding::severity)
            .max()
    }

    /// The JSON rendering: summary, findings grouped by object (objects
    /// without findings are left out), rules and input errors.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(JsonReport::new(self)).expect("the report serializes")
    }
}

/// The JSON document, borrowing from the report so rendering copies nothing.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonReport<'a> {
    tool: JsonTool<'a>,
    summary: Summary,
    results: Vec<&'a ObjectResult>,
    input_errors: &'a [InputError],
    rules: Vec<&'a CheckMeta>,
}

#[derive(serde::Serialize)]
struct JsonTool<'a> {
    name: &'static str,
    version: &'a str,
}

impl<'a> JsonReport<'a> {
    fn new(report: &'a ScanReport) -> Self {
        Self {
            tool: JsonTool {
                name: "rampart",
                version: &report.tool_version,
            },
            summary: report.summary(),
            results: report
                .objects
                .iter()
                .filter(|o| !o.findings.is_empty())
                .collect(),
            input_errors: &report.input_errors,
            rules: report.rules.iter().map(|r| r.as_ref()).collect(),
        }
    }
}

/// Renders `report` as pretty JSON followed by a newline.
pub fn render_json(report: &ScanReport, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, &JsonReport::new(report))?;
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests;

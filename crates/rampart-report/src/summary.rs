use rampart_core::Severity;

use crate::ScanReport;

/// Counts for the summary line and for machine consumers.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub files: usize,
    pub objects: usize,
    /// Objects with at least one unsuppressed finding.
    pub objects_with_findings: usize,
    pub findings: usize,
    pub critical: usize,
    pub high: usize,
    pub medium: usize,
    pub low: usize,
    pub info: usize,
    pub suppressed: usize,
    /// Input problems that left something unscanned.
    pub input_errors: usize,
    /// Input problems that lost nothing.
    pub input_warnings: usize,
}

impl Summary {
    pub fn of(report: &ScanReport) -> Self {
        let mut s = Summary {
            files: report.files,
            objects: report.objects.len(),
            ..Summary::default()
        };
        for object in &report.objects {
            let mut active = false;
            for f in &object.findings {
                if f.finding.is_suppressed() {
                    s.suppressed += 1;
                    continue;
                }
                active = true;
                s.findings += 1;
                *s.count_mut(f.severity()) += 1;
            }
            s.objects_with_findings += usize::from(active);
        }
        for e in &report.input_errors {
            if e.lost_input {
                s.input_errors += 1;
            } else {
                s.input_warnings += 1;
            }
        }
        s
    }

    pub fn count(&self, severity: Severity) -> usize {
        match severity {
            Severity::Critical => self.critical,
            Severity::High => self.high,
            Severity::Medium => self.medium,
            Severity::Low => self.low,
            Severity::Info => self.info,
        }
    }

    fn count_mut(&mut self, severity: Severity) -> &mut usize {
        match severity {
            Severity::Critical => &mut self.critical,
            Severity::High => &mut self.high,
            Severity::Medium => &mut self.medium,
            Severity::Low => &mut self.low,
            Severity::Info => &mut self.info,
        }
    }

    /// `3 files, 12 objects: 5 findings (2 critical, 3 high) in 4 objects, 1 suppressed, 1 input error`.
    pub fn line(&self) -> String {
        let mut out = format!(
            "{} {}, {} {}: ",
            self.files,
            plural(self.files, "file", "files"),
            self.objects,
            plural(self.objects, "object", "objects"),
        );
        if self.findings == 0 {
            out.push_str("no findings");
        } else {
            out.push_str(&format!(
                "{} {} (",
                self.findings,
                plural(self.findings, "finding", "findings")
            ));
            let parts: Vec<String> = Severity::ALL
                .iter()
                .filter(|&&s| self.count(s) > 0)
                .map(|&s| format!("{} {}", self.count(s), s))
                .collect();
            out.push_str(&parts.join(", "));
            out.push_str(&format!(
                ") in {} {}",
                self.objects_with_findings,
                plural(self.objects_with_findings, "object", "objects")
            ));
        }
        if self.suppressed > 0 {
            out.push_str(&format!(", {} suppressed", self.suppressed));
        }
        if self.input_errors > 0 {
            out.push_str(&format!(
                ", {} input {}",
                self.input_errors,
                plural(self.input_errors, "error", "errors")
            ));
        }
        if self.input_warnings > 0 {
            out.push_str(&format!(
                ", {} input {}",
                self.input_warnings,
                plural(self.input_warnings, "warning", "warnings")
            ));
        }
        out
    }
}

fn plural(n: usize, one: &'static str, many: &'static str) -> &'static str {
    if n == 1 { one } else { many }
}

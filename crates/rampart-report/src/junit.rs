//! JUnit XML for CI dashboards: a test suite per file, a test case per
//! object, failing when it has findings at or above the threshold.

use std::fmt::Write as _;
use std::io::{self, Write};

use rampart_core::Severity;

use crate::ScanReport;

/// Escapes text for XML 1.0 attributes and content; drops the control
/// characters XML 1.0 cannot carry at all.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

#[derive(Default)]
struct Suite {
    name: String,
    tests: usize,
    failures: usize,
    errors: usize,
    body: String,
}

pub fn render_junit(report: &ScanReport, out: &mut dyn Write, fail_on: Severity) -> io::Result<()> {
    let mut suites: Vec<Suite> = Vec::new();
    let suite_for = |suites: &mut Vec<Suite>, name: &str| -> usize {
        match suites.iter().position(|s| s.name == name) {
            Some(i) => i,
            None => {
                suites.push(Suite {
                    name: name.to_owned(),
                    ..Suite::default()
                });
                suites.len() - 1
            }
        }
    };
    for object in &report.objects {
        let i = suite_for(&mut suites, &object.origin.source);
        let suite = &mut suites[i];
        suite.tests += 1;
        let _ = writeln!(
            suite.body,
            "    <testcase classname=\"{}\" name=\"{}\">",
            escape(&object.origin.source),
            escape(&object.display_name())
        );
        let failing: Vec<_> = object
            .active_findings()
            .filter(|f| f.severity() >= fail_on)
            .collect();
        if !failing.is_empty() {
            suite.failures += 1;
            let worst = failing
                .iter()
                .map(|f| f.severity())
                .max()
                .unwrap_or(fail_on);
            let mut text = String::new();
            for f in &failing {
                let line = f.line.map(|l| format!(":{l}")).unwrap_or_default();
                let _ = writeln!(
                    text,
                    "[{}] {} at {}{} ({}): {}",
                    f.severity(),
                    f.check_id,
                    object.origin.source,
                    line,
                    f.finding.path,
                    f.finding.message
                );
            }
            let _ = writeln!(
                suite.body,
                "      <failure message=\"{} {} at or above {}\" type=\"{}\">{}</failure>",
                failing.len(),
                if failing.len() == 1 {
                    "finding"
                } else {
                    "findings"
                },
                fail_on,
                worst,
                escape(&text)
            );
        }
        let other: Vec<_> = object
            .findings
            .iter()
            .filter(|f| f.finding.is_suppressed() || f.severity() < fail_on)
            .collect();
        if !other.is_empty() {
            let mut text = String::new();
            for f in other {
                match &f.finding.suppressed {
                    Some(reason) => {
                        let _ = writeln!(
                            text,
                            "[ignored] {}: {} (reason: {reason})",
                            f.check_id, f.finding.message
                        );
                    }
                    None => {
                        let _ = writeln!(
                            text,
                            "[{}] {}: {}",
                            f.severity(),
                            f.check_id,
                            f.finding.message
                        );
                    }
                }
            }
            let _ = writeln!(
                suite.body,
                "      <system-out>{}</system-out>",
                escape(&text)
            );
        }
        suite.body.push_str("    </testcase>\n");
    }
    for e in &report.input_errors {
        if !e.lost_input {
            continue;
        }
        let i = suite_for(&mut suites, &e.source);
        let suite = &mut suites[i];
        suite.tests += 1;
        suite.errors += 1;
        let name = match e.document {
            Some(d) => format!("document {d}"),
            None => "file".to_owned(),
        };
        let at = match (e.line, e.column) {
            (Some(l), Some(c)) => format!("{}:{l}:{c}: ", e.source),
            (Some(l), None) => format!("{}:{l}: ", e.source),
            _ => String::new(),
        };
        let _ = write!(
            suite.body,
            "    <testcase classname=\"{}\" name=\"{}\">\n      <error message=\"{}\" type=\"{}\">{}{}</error>\n    </testcase>\n",
            escape(&e.source),
            escape(&name),
            escape(&e.message),
            escape(&e.kind),
            escape(&at),
            escape(&e.message)
        );
    }
    let (tests, failures, errors) = suites.iter().fold((0, 0, 0), |(t, f, e), s| {
        (t + s.tests, f + s.failures, e + s.errors)
    });
    writeln!(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>")?;
    writeln!(
        out,
        "<testsuites name=\"rampart\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\">"
    )?;
    for s in &suites {
        writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\">",
            escape(&s.name),
            s.tests,
            s.failures,
            s.errors
        )?;
        out.write_all(s.body.as_bytes())?;
        writeln!(out, "  </testsuite>")?;
    }
    writeln!(out, "</testsuites>")
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn escapes_markup_and_drops_invalid_characters() {
        assert_eq!(escape("a<b & \"c\"\u{1}"), "a&lt;b &amp; &quot;c&quot;");
    }
}

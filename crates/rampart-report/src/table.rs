//! The human rendering: findings grouped by object, a list of input
//! problems, and a summary line.

use std::io::{self, Write};

use anstyle::{AnsiColor, Style};
use rampart_core::Severity;

use crate::{LocatedFinding, ObjectResult, ScanReport};

fn severity_style(severity: Severity) -> Style {
    match severity {
        Severity::Critical => AnsiColor::Red.on_default().bold(),
        Severity::High => AnsiColor::Red.on_default(),
        Severity::Medium => AnsiColor::Yellow.on_default(),
        Severity::Low => AnsiColor::Cyan.on_default(),
        Severity::Info => Style::new().dimmed(),
    }
}

/// Writes `text` in `style` when colour is on.
struct Painter {
    color: bool,
}

impl Painter {
    fn paint(&self, out: &mut dyn Write, style: Style, text: &str) -> io::Result<()> {
        if self.color {
            write!(out, "{style}{text}{style:#}")
        } else {
            out.write_all(text.as_bytes())
        }
    }
}

/// Renders the table. `color` adds ANSI styles (the caller decides from the
/// terminal and `NO_COLOR`); `show_suppressed` lists suppressed findings too.
pub fn render_table(
    report: &ScanReport,
    out: &mut dyn Write,
    color: bool,
    show_suppressed: bool,
) -> io::Result<()> {
    let p = Painter { color };
    let bold = Style::new().bold();
    let dim = Style::new().dimmed();
    for object in &report.objects {
        let shown: Vec<&LocatedFinding> = object
            .findings
            .iter()
            .filter(|f| show_suppressed || !f.finding.is_suppressed())
            .collect();
        if shown.is_empty() {
            continue;
        }
        p.paint(out, bold, &object_heading(object))?;
        writeln!(out)?;
        let id_width = shown.iter().map(|f| f.check_id.len()).max().unwrap_or(0);
        for f in shown {
            let finding = &f.finding;
            write!(out, "  ")?;
            match &finding.suppressed {
                Some(_) => p.paint(out, dim, &format!("{:<8}", "ignored"))?,
                None => p.paint(
                    out,
                    severity_style(finding.severity),
                    &format!("{:<8}", finding.severity.as_str()),
                )?,
            }
            write!(out, "  {:<id_width$}  ", f.check_id)?;
            if let Some(line) = f.line {
                p.paint(out, dim, &format!("line {line}: "))?;
            }
            writeln!(out, "{}", finding.message)?;
            let indent = " ".repeat(14 + id_width);
            p.paint(out, dim, &format!("{indent}at {}", finding.path))?;
            writeln!(out)?;
            match &finding.suppressed {
                Some(reason) => p.paint(out, dim, &format!("{indent}ignored: {reason}"))?,
                None => p.paint(out, dim, &format!("{indent}fix: {}", finding.check.fix))?,
            }
            writeln!(out)?;
        }
        writeln!(out)?;
    }
    if !report.input_errors.is_empty() {
        p.paint(out, bold, "Input problems")?;
        writeln!(out)?;
        for e in &report.input_errors {
            let label = if e.lost_input { "error" } else { "warning" };
            let style = if e.lost_input {
                AnsiColor::Red.on_default()
            } else {
                AnsiColor::Yellow.on_default()
            };
            write!(out, "  ")?;
            p.paint(out, style, &format!("{label:<8}"))?;
            write!(out, "  {}", e.source)?;
            if let Some(line) = e.line {
                write!(out, ":{line}")?;
                if let Some(col) = e.column {
                    write!(out, ":{col}")?;
                }
            }
            if let Some(doc) = e.document {
                write!(out, " (document {doc})")?;
            }
            writeln!(out, ": {}: {}", e.kind, e.message)?;
        }
        writeln!(out)?;
    }
    let summary = report.summary();
    let style = match report.worst_severity() {
        Some(s) => severity_style(s).bold(),
        None => AnsiColor::Green.on_default().bold(),
    };
    p.paint(out, style, &summary.line())?;
    writeln!(out)
}

fn object_heading(object: &ObjectResult) -> String {
    let mut at = object.origin.source.to_string();
    if let Some(line) = object.origin.line {
        at.push_str(&format!(":{line}"));
    }
    format!("{at}  {}", object.display_name())
}

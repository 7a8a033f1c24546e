//! `rampart fix`: rewrite manifests so they pass the checks where a fix is
//! safe, and report what was fixed, what was not, and why.

use std::io::Write;

use anyhow::{Context, Result};
use rampart_core::Severity;
use rampart_fix::inputs::{self, Input};
use rampart_fix::{FileFix, FixOptions, FixRun, Fixer, ObjectFix, ResourceProfile};
use rampart_manifest::{InputIssue, Limits};
use serde_json::{Value, json};

use crate::cli::{FixArgs, FixOutput};
use crate::scan::scan_config;
use crate::{EXIT_ERROR, EXIT_FINDINGS};
use rampart_scan::build_engine;

fn usage_error(message: impl std::fmt::Display) -> Result<u8> {
    eprintln!("rampart: error: {message}");
    Ok(EXIT_ERROR)
}

pub fn run(args: &FixArgs) -> Result<u8> {
    // The engine, limited to --check.
    let mut selection = args.selection.clone();
    let catalog: Vec<String> = build_engine(&scan_config(&selection))
        .catalog()
        .map(|m| m.id.to_string())
        .collect();
    if let Some(unknown) = args.checks.iter().find(|c| !catalog.contains(c)) {
        return usage_error(format_args!(
            "--check {unknown}: no such check at this level (see `rampart checks`)"
        ));
    }
    if !args.checks.is_empty() {
        selection
            .skip
            .extend(catalog.into_iter().filter(|id| !args.checks.contains(id)));
    }
    let engine = build_engine(&scan_config(&selection));

    let resources = match args.resources_profile.as_deref() {
        None => None,
        Some(name) => match ResourceProfile::built_in(name) {
            Some(p) => Some(p),
            None => {
                let text = match std::fs::read_to_string(name) {
                    Ok(text) => text,
                    Err(e) => {
                        return usage_error(format_args!(
                            "--resources-profile {name}: not small, medium or large, and not a readable file ({e})"
                        ));
                    }
                };
                match ResourceProfile::from_yaml(name, &text) {
                    Ok(p) => Some(p),
                    Err(e) => return usage_error(e),
                }
            }
        },
    };
    let options = FixOptions {
        aggressive: args.aggressive,
        force: args.force,
        always_pull: args.always_pull,
        resources,
        requested: args.checks.clone(),
    };

    // Read.
    let (list, mut issues) = inputs::expand(&args.paths);
    let mut sources = Vec::new();
    let mut paths = Vec::new();
    for input in &list {
        match inputs::read(input, args.max_file_size) {
            Ok(source) => {
                sources.push(source);
                paths.push(input.clone());
            }
            Err(issue) => issues.push(issue),
        }
    }

    let limits = Limits {
        max_file_bytes: args.max_file_size,
        ..Limits::default()
    };
    let mut run = Fixer::new(&engine, &options, limits).run(&sources);
    issues.append(&mut run.issues);
    run.issues = issues;

    // Write.
    let mut written = Vec::new();
    if args.write {
        for (file, input) in run.files.iter().zip(&paths) {
            if let Input::File(path) = input
                && file.changed()
            {
                inputs::write_atomically(path, &file.fixed)
                    .with_context(|| format!("writing {}", path.display()))?;
                written.push(file.name.to_string());
            }
        }
    }

    // Standard output.
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match args.output {
        FixOutput::Json => {
            let summary = json_summary(&run, &written, args.fail_on);
            serde_json::to_writer_pretty(&mut out, &summary)?;
            writeln!(out)?;
        }
        FixOutput::Text if args.diff => {
            for file in run.files.iter().filter(|f| f.changed()) {
                write!(out, "{}", unified_diff(file))?;
            }
        }
        FixOutput::Text => {
            let shown: Vec<(&FileFix, &Input)> = run
                .files
                .iter()
                .zip(&paths)
                .filter(|(_, input)| !args.write || **input == Input::Stdin)
                .collect();
            let several = shown.len() > 1;
            for (i, (file, _)) in shown.iter().enumerate() {
                if several {
                    if i > 0 {
                        writeln!(out, "---")?;
                    }
                    writeln!(out, "# Source: {}", file.name)?;
                    // A byte order mark may only start a stream, and each value
                    // of a JSON stream becomes a document of its own.
                    let body = file.fixed.strip_prefix('\u{feff}').unwrap_or(&file.fixed);
                    for (j, value) in json_values(body).iter().enumerate() {
                        if j > 0 {
                            writeln!(out, "---")?;
                        }
                        out.write_all(value.as_bytes())?;
                        if !value.is_empty() && !value.ends_with('\n') {
                            writeln!(out)?;
                        }
                    }
                } else {
                    out.write_all(file.fixed.as_bytes())?;
                }
            }
        }
    }
    out.flush().context("writing to standard output")?;

    if !args.quiet && args.output == FixOutput::Text {
        let stderr = std::io::stderr();
        let mut err = stderr.lock();
        write_report(&mut err, &run, args, &written)?;
    }

    if run.lost_input() {
        return Ok(EXIT_ERROR);
    }
    let internal = run.objects().any(|o| o.error.is_some());
    Ok(if run.failing(args.fail_on) > 0 || internal {
        EXIT_FINDINGS
    } else {
        0
    })
}

/// The values of a JSON stream (`{...} {...}`), or the whole text when it
/// is not a stream of several objects or arrays.
fn json_values(text: &str) -> Vec<&str> {
    let body = text.trim_start_matches('\u{feff}').trim_start();
    if !body.starts_with(['{', '[']) {
        return vec![text];
    }
    let mut values = Vec::new();
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    let mut start = None;
    for (i, c) in text.char_indices() {
        if in_string {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' if depth > 0 => in_string = true,
            '{' | '[' => {
                if depth == 0 {
                    start = Some(i);
                }
                depth += 1;
            }
            '}' | ']' if depth > 0 => {
                depth -= 1;
                if depth == 0 {
                    values.extend(start.take().map(|s| &text[s..=i]));
                }
            }
            c if depth == 0 && !c.is_whitespace() && c != '\u{feff}' => return vec![text],
            _ => {}
        }
    }
    if depth != 0 || values.len() < 2 {
        return vec![text];
    }
    values
}

fn unified_diff(file: &FileFix) -> String {
    let name = file.name.trim_start_matches("./").trim_start_matches('/');
    similar::TextDiff::from_lines(&*file.original, file.fixed.as_str())
        .unified_diff()
        .context_radius(3)
        .header(&format!("a/{name}"), &format!("b/{name}"))
        .to_string()
}

fn object_title(o: &ObjectFix) -> String {
    let name = match &o.namespace {
        Some(ns) => format!("{ns}/{}", o.name),
        None => o.name.clone(),
    };
    format!("{} {name}", o.kind)
}

/// The changed field relative to the container or pod it belongs to.
fn short_field(path: &rampart_core::FieldPath) -> String {
    use rampart_core::Segment;
    let segments = path.segments();
    let start = segments
        .iter()
        .rposition(|s| matches!(s, Segment::Index(_)))
        .map(|i| i + 1)
        .or_else(|| {
            segments
                .iter()
                .rposition(|s| matches!(s, Segment::Key(k) if k == "spec"))
                .map(|i| i + 1)
        })
        .unwrap_or(0);
    let mut out = String::new();
    for s in &segments[start..] {
        if let Segment::Key(k) = s {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(k);
        }
    }
    out
}

fn write_report(
    w: &mut impl Write,
    run: &FixRun,
    args: &FixArgs,
    written: &[String],
) -> Result<()> {
    for issue in &run.issues {
        writeln!(w, "{issue}")?;
    }
    for file in &run.files {
        for o in &file.objects {
            if o.fixed.is_empty() && o.not_fixed.is_empty() && o.error.is_none() {
                continue;
            }
            writeln!(w, "{}:{}: {}", file.name, o.line, object_title(o))?;
            for f in &o.fixed {
                let value = match f.action {
                    "append" => format!("+ {}", display(&f.value)),
                    _ => display(&f.value),
                };
                let line = f.line.map(|l| format!("line {l}")).unwrap_or_default();
                writeln!(
                    w,
                    "  fixed      {:<34} {:<9} {}: {} = {}",
                    f.check_id,
                    line,
                    f.subject,
                    short_field(&f.path),
                    value
                )?;
                if let Some(note) = &f.note {
                    writeln!(w, "             note: {note}")?;
                }
            }
            for n in &o.not_fixed {
                let line = n.line.map(|l| format!("line {l}")).unwrap_or_default();
                writeln!(
                    w,
                    "  not fixed  {:<34} {:<9} [{}] {}",
                    n.check_id, line, n.severity, n.reason
                )?;
            }
            if let Some(error) = &o.error {
                writeln!(w, "  error      {error}")?;
            }
        }
    }
    let fixes: usize = run.objects().map(|o| o.fixed.len()).sum();
    let fixed_objects = run.objects().filter(|o| !o.fixed.is_empty()).count();
    let left: usize = run.objects().map(|o| o.not_fixed.len()).sum();
    let failing = run.failing(args.fail_on);
    let changed = run.files.iter().filter(|f| f.changed()).count();
    let files = if args.write {
        format!("{} of {} files rewritten", written.len(), run.files.len())
    } else if changed > 0 {
        format!(
            "{changed} of {} files would change (--write rewrites them)",
            run.files.len()
        )
    } else {
        format!("{} files, nothing to change", run.files.len())
    };
    writeln!(
        w,
        "rampart fix: {fixes} {} in {fixed_objects} {}; {left} {} left ({failing} at or above {}); {files}",
        if fixes == 1 { "fix" } else { "fixes" },
        if fixed_objects == 1 {
            "object"
        } else {
            "objects"
        },
        if left == 1 { "finding" } else { "findings" },
        args.fail_on,
    )?;
    Ok(())
}

/// A value as it reads in YAML: strings unquoted, lists in brackets.
fn display(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(display).collect();
            format!("[{}]", items.join(", "))
        }
        other => other.to_string(),
    }
}

fn issue_json(issue: &InputIssue) -> Value {
    json!({
        "kind": issue.kind.as_str(),
        "source": issue.source,
        "document": issue.document,
        "line": issue.line,
        "column": issue.column,
        "message": issue.message,
        "lostInput": issue.kind.lost_input(),
    })
}

fn json_summary(run: &FixRun, written: &[String], fail_on: Severity) -> Value {
    let objects: Vec<Value> = run
        .files
        .iter()
        .flat_map(|file| {
            file.objects
                .iter()
                .filter(|o| !o.fixed.is_empty() || !o.not_fixed.is_empty() || o.error.is_some())
                .map(move |o| {
                    let mut v = serde_json::to_value(o).unwrap_or(Value::Null);
                    if let Value::Object(map) = &mut v {
                        map.insert("source".to_owned(), json!(file.name));
                    }
                    v
                })
        })
        .collect();
    let files: Vec<Value> = run
        .files
        .iter()
        .map(|f| {
            json!({
                "source": f.name,
                "changed": f.changed(),
                "written": written.iter().any(|w| **w == *f.name),
            })
        })
        .collect();
    json!({
        "toolVersion": env!("CARGO_PKG_VERSION"),
        "summary": {
            "files": run.files.len(),
            "filesChanged": run.files.iter().filter(|f| f.changed()).count(),
            "filesWritten": written.len(),
            "objects": run.objects().count(),
            "fixed": run.objects().map(|o| o.fixed.len()).sum::<usize>(),
            "notFixed": run.objects().map(|o| o.not_fixed.len()).sum::<usize>(),
            "failing": run.failing(fail_on),
            "failOn": fail_on,
            "internalErrors": run.objects().filter(|o| o.error.is_some()).count(),
            "inputErrors": run.issues.iter().filter(|i| i.kind.lost_input()).count(),
        },
        "files": files,
        "objects": objects,
        "inputErrors": run.issues.iter().map(issue_json).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rampart_core::FieldPath;

    #[test]
    fn json_streams_split_into_values() {
        assert_eq!(
            json_values("{\"a\": \"}\\\"\"}\n[1, [2]]\n"),
            ["{\"a\": \"}\\\"\"}", "[1, [2]]"]
        );
        assert_eq!(json_values("{\"a\": 1}\n"), ["{\"a\": 1}\n"]);
        assert_eq!(json_values("a: {b: 1}\n"), ["a: {b: 1}\n"]);
        assert_eq!(json_values("{} 12"), ["{} 12"]);
    }

    #[test]
    fn fields_are_shown_relative_to_their_container_or_pod() {
        let p = FieldPath::parse(
            "spec.template.spec.containers[1].securityContext.allowPrivilegeEscalation",
        );
        assert_eq!(short_field(&p), "securityContext.allowPrivilegeEscalation");
        let p =
            FieldPath::parse("spec.jobTemplate.spec.template.spec.automountServiceAccountToken");
        assert_eq!(short_field(&p), "automountServiceAccountToken");
    }
}

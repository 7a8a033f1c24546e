//! `rampart scan` and `rampart checks`: load, evaluate, report.

use std::io::{IsTerminal, Write};
use std::sync::Arc;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rampart_checks::practices::PracticeConfig;
use rampart_checks::pss::Profile;
use rampart_core::{CheckMeta, Engine, FieldPath, Finding, ObjectView};
use rampart_manifest::{InputIssue, Limits, Loader, Manifest};
use rampart_report::{InputError, LocatedFinding, ObjectResult, Origin, ScanReport};
use rayon::prelude::*;

use crate::cli::{CheckSelection, ChecksArgs, ColorChoice, OutputFormat, ScanArgs};
use crate::{EXIT_ERROR, EXIT_FINDINGS};

/// Above this many documents, a scan on a terminal shows its progress.
const PROGRESS_THRESHOLD: usize = 1_000;

pub fn build_engine(selection: &CheckSelection) -> Engine {
    let mut checks = Profile::new(selection.pss_level, selection.pss_version).into_checks();
    let mut corpus = Vec::new();
    if !selection.pss_only {
        let config = PracticeConfig {
            allowed_registries: selection.allowed_registries.clone(),
            untrusted_namespaces: selection.untrusted_namespaces.clone(),
            ..PracticeConfig::default()
        };
        let (practice, practice_corpus) = rampart_checks::practices::checks(&config);
        checks.extend(practice);
        corpus = practice_corpus;
    }
    checks.retain(|c| !selection.skip.iter().any(|s| *s == c.meta().id));
    corpus.retain(|c| !selection.skip.iter().any(|s| *s == c.meta().id));
    Engine::new(checks, corpus)
}

pub fn run(args: &ScanArgs) -> Result<u8> {
    let engine = build_engine(&args.selection);
    let policies = match crate::policies::load(&args.policies) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("rampart: error: {e}");
            return Ok(EXIT_ERROR);
        }
    };
    let limits = Limits {
        max_file_bytes: args.max_file_size,
        ..Limits::default()
    };
    let mut timings = Timings::new(args.timings);
    let reading = reading_spinner(args);
    let loaded = Loader::new(limits).load_paths(&args.paths);
    reading.finish_and_clear();
    timings.lap("load");

    let objects: Vec<(usize, ObjectView<'_>)> = loaded
        .manifests
        .iter()
        .enumerate()
        .filter_map(|(i, m)| ObjectView::new(&m.value).map(|v| (i, v)))
        // Policy documents are configuration, not workloads (see `--policy`).
        .filter(|(_, v)| !rampart_policy::is_policy_document(v.value))
        .collect();
    let namespaces: std::collections::HashMap<&str, &serde_json::Value> = objects
        .iter()
        .filter(|(_, v)| v.kind == "Namespace" && v.api_version == "v1")
        .map(|(_, v)| (v.name, v.value))
        .collect();

    timings.lap("views");
    // Checks over the whole scan first, so each object's findings are located
    // together, reading its document once.
    let views: Vec<ObjectView<'_>> = objects.iter().map(|(_, v)| v.clone()).collect();
    let mut corpus_findings: Vec<Vec<Finding>> = vec![Vec::new(); objects.len()];
    for (index, finding) in engine.check_corpus(&views) {
        corpus_findings[index].push(finding);
    }
    if let Some(p) = &policies {
        for (index, finding) in p.corpus_findings(&views) {
            corpus_findings[index].push(finding);
        }
    }
    timings.lap("corpus checks");

    let progress = progress_bar(args, objects.len());
    let results: Vec<ObjectResult> = objects
        .par_iter()
        .zip(corpus_findings)
        .map(|((i, view), corpus)| {
            let mut findings = engine.check_object(view);
            if let Some(p) = &policies {
                findings.extend(p.object_findings(view, &namespaces));
            }
            findings.extend(corpus);
            // Most severe first; within a severity, in the order the checks ran.
            findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
            progress.inc(1);
            object_result(&loaded.manifests[*i], view, findings)
        })
        .collect();
    progress.finish_and_clear();
    timings.lap("checks and locations");

    let report = ScanReport {
        tool_version: env!("CARGO_PKG_VERSION").to_owned(),
        rules: engine
            .catalog()
            .cloned()
            .chain(policies.iter().flat_map(|p| p.rules()))
            .collect(),
        objects: results,
        input_errors: loaded.issues.iter().map(input_error).collect(),
        files: loaded.files,
    };
    timings.lap("assemble");
    write_report(args, &report)?;
    timings.lap("render");

    let summary = report.summary();
    let nothing_scanned = summary.objects == 0 && summary.input_errors > 0;
    if nothing_scanned || (args.strict && summary.input_errors > 0) {
        return Ok(EXIT_ERROR);
    }
    let failing = report.worst_severity().is_some_and(|s| s >= args.fail_on);
    Ok(if failing { EXIT_FINDINGS } else { 0 })
}

fn object_result(
    manifest: &Manifest,
    view: &ObjectView<'_>,
    findings: Vec<Finding>,
) -> ObjectResult {
    let paths: Vec<FieldPath> = findings.iter().map(|f| f.path.clone()).collect();
    let positions = if paths.is_empty() {
        Vec::new()
    } else {
        manifest.locate_all(&paths)
    };
    let located: Vec<LocatedFinding> = findings
        .into_iter()
        .zip(positions)
        .map(|(f, position)| {
            LocatedFinding::new(f, position.map(|p| p.line), position.map(|p| p.column))
        })
        .collect();
    ObjectResult {
        origin: Origin {
            source: Arc::clone(&manifest.source),
            document: manifest.document,
            list_item: manifest.list_item,
            line: Some(manifest.first_line()),
        },
        api_version: view.api_version.to_owned(),
        kind: view.kind.to_owned(),
        namespace: view.namespace.map(str::to_owned),
        name: view.name.to_owned(),
        findings: located,
    }
}

/// Phase durations on stderr, for `--timings`.
struct Timings {
    enabled: bool,
    last: std::time::Instant,
}

impl Timings {
    fn new(enabled: bool) -> Self {
        Self {
            enabled,
            last: std::time::Instant::now(),
        }
    }

    fn lap(&mut self, phase: &str) {
        if self.enabled {
            let now = std::time::Instant::now();
            eprintln!(
                "timing: {phase:<22} {:>9.1} ms",
                (now - self.last).as_secs_f64() * 1e3
            );
            self.last = now;
        }
    }
}

fn input_error(issue: &InputIssue) -> InputError {
    InputError {
        kind: issue.kind.as_str().to_owned(),
        source: issue.source.clone(),
        document: issue.document,
        line: issue.line,
        column: issue.column,
        message: issue.message.clone(),
        lost_input: issue.kind.lost_input(),
    }
}

fn shows_progress(args: &ScanArgs) -> bool {
    !args.no_progress && std::io::stderr().is_terminal()
}

/// Reading is most of a large scan's time, and the number of documents is
/// unknown until it is done: a spinner shows that work is going on.
fn reading_spinner(args: &ScanArgs) -> ProgressBar {
    if !shows_progress(args) {
        return ProgressBar::hidden();
    }
    let spinner = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template("{spinner} reading manifests {elapsed}") {
        spinner.set_style(style);
    }
    spinner.enable_steady_tick(std::time::Duration::from_millis(120));
    spinner
}

fn progress_bar(args: &ScanArgs, total: usize) -> ProgressBar {
    if !shows_progress(args) || total < PROGRESS_THRESHOLD {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} checking {pos}/{len} objects [{bar:30}] {elapsed}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

fn use_color(choice: ColorChoice) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            anstream::AutoStream::choice(&std::io::stdout()) != anstream::ColorChoice::Never
        }
    }
}

fn write_report(args: &ScanArgs, report: &ScanReport) -> Result<()> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match args.output {
        OutputFormat::Table => rampart_report::render_table(
            report,
            &mut out,
            use_color(args.color),
            args.show_suppressed,
        ),
        OutputFormat::Json => rampart_report::render_json(report, &mut out),
        OutputFormat::Sarif => rampart_report::render_sarif(report, &mut out),
        OutputFormat::Junit => rampart_report::render_junit(report, &mut out, args.fail_on),
    }
    .and_then(|()| out.flush())
    .context("writing the report")
}

pub fn list_checks(args: &ChecksArgs) -> Result<u8> {
    let engine = build_engine(&args.selection);
    let catalog: Vec<&CheckMeta> = engine.catalog().map(|m| m.as_ref()).collect();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match args.output {
        OutputFormat::Json | OutputFormat::Sarif | OutputFormat::Junit => {
            serde_json::to_writer_pretty(&mut out, &catalog)?;
            writeln!(out)?;
        }
        OutputFormat::Table => {
            let width = catalog.iter().map(|m| m.id.len()).max().unwrap_or(0);
            for m in &catalog {
                writeln!(out, "{:<width$}  {:<8}  {}", m.id, m.severity, m.title)?;
            }
        }
    }
    out.flush()?;
    Ok(0)
}

//! `rampart scan` and `rampart checks`: flags into a `rampart_scan::Scanner`,
//! a progress display, and the report rendered.

use std::io::{IsTerminal, Write};
use std::sync::{Mutex, OnceLock};

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rampart_core::CheckMeta;
use rampart_manifest::Limits;
use rampart_report::ScanReport;
use rampart_scan::{Progress, ScanConfig, Scanner};

use crate::cli::{CheckSelection, ChecksArgs, ColorChoice, OutputFormat, ScanArgs};
use crate::{EXIT_ERROR, EXIT_FINDINGS};

/// Above this many documents, a scan on a terminal shows its progress.
const PROGRESS_THRESHOLD: usize = 1_000;

/// The scan configuration the flags describe.
pub fn scan_config(selection: &CheckSelection) -> ScanConfig {
    ScanConfig {
        pss_level: selection.pss_level,
        pss_version: selection.pss_version,
        allowed_registries: selection.allowed_registries.clone(),
        untrusted_namespaces: selection.untrusted_namespaces.clone(),
        skip: selection.skip.clone(),
        pss_only: selection.pss_only,
        ..ScanConfig::default()
    }
}

pub fn run(args: &ScanArgs) -> Result<u8> {
    let config = ScanConfig {
        policies: args.policies.clone(),
        limits: Limits {
            max_file_bytes: args.max_file_size,
            ..Limits::default()
        },
        ..scan_config(&args.selection)
    };
    let scanner = match Scanner::new(config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("rampart: error: {e}");
            return Ok(EXIT_ERROR);
        }
    };
    for w in scanner.warnings() {
        eprintln!("rampart: warning: {w}");
    }
    let display = Display {
        timings: Mutex::new(Timings::new(args.timings)),
        reading: reading_spinner(args),
        bar: OnceLock::new(),
        shows_progress: shows_progress(args),
    };
    let report = scanner.scan(&args.paths, &display);
    if let Some(bar) = display.bar.get() {
        bar.finish_and_clear();
    }
    write_report(args, &report)?;
    display.phase("render");

    let summary = report.summary();
    let nothing_scanned = summary.objects == 0 && summary.input_errors > 0;
    if nothing_scanned || (args.strict && summary.input_errors > 0) {
        return Ok(EXIT_ERROR);
    }
    let failing = report.worst_severity().is_some_and(|s| s >= args.fail_on);
    Ok(if failing { EXIT_FINDINGS } else { 0 })
}

/// The scan's progress on a terminal: a spinner while reading, then a bar.
struct Display {
    timings: Mutex<Timings>,
    reading: ProgressBar,
    bar: OnceLock<ProgressBar>,
    shows_progress: bool,
}

impl Progress for Display {
    fn loaded(&self, objects: usize) {
        self.reading.finish_and_clear();
        let _ = self.bar.set(progress_bar(self.shows_progress, objects));
    }

    fn checked_one(&self) {
        if let Some(bar) = self.bar.get() {
            bar.inc(1);
        }
    }

    fn phase(&self, name: &str) {
        self.timings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .lap(name);
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

fn progress_bar(shows_progress: bool, total: usize) -> ProgressBar {
    if !shows_progress || total < PROGRESS_THRESHOLD {
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
    let engine = rampart_scan::build_engine(&scan_config(&args.selection));
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

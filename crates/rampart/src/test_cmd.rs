//! `rampart test` (policy test suites) and `rampart crds`.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use rampart_policy::testing::{self, SuiteResult};

use crate::{EXIT_ERROR, EXIT_FINDINGS};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TestFormat {
    Table,
    Json,
    Junit,
}

#[derive(Args, Debug)]
pub struct TestArgs {
    /// Test files, or directories searched recursively for `rampart-test.yaml`.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = TestFormat::Table)]
    pub output: TestFormat,
    /// Show only the expectations that failed (table output).
    #[arg(long)]
    pub failures_only: bool,
}

#[derive(Args, Debug)]
pub struct CrdsArgs {
    /// Write `rampart.dev_clusterpolicies.yaml` and `rampart.dev_policies.yaml` into this directory instead of printing them.
    #[arg(long, value_name = "DIR")]
    pub output_dir: Option<PathBuf>,
}

/// A suite that could not be run, and why.
struct Invalid {
    file: PathBuf,
    errors: Vec<String>,
}

/// Exit codes: 0 every expectation held, 1 some did not, 2 invalid input.
pub fn run(args: &TestArgs) -> Result<u8> {
    let files = match testing::discover(&args.paths) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("rampart: error: {e}");
            return Ok(EXIT_ERROR);
        }
    };
    if files.is_empty() {
        eprintln!("rampart: error: no {} found", testing::TEST_FILE);
        return Ok(EXIT_ERROR);
    }
    let mut suites = Vec::new();
    let mut invalid = Vec::new();
    for file in files {
        match testing::run_file(&file) {
            Ok(s) => suites.push(s),
            Err(errors) => invalid.push(Invalid { file, errors }),
        }
    }
    let passed: usize = suites.iter().map(SuiteResult::passed).sum();
    let failed: usize = suites.iter().map(SuiteResult::failed).sum();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match args.output {
        TestFormat::Table => table(&mut out, &suites, args.failures_only)?,
        TestFormat::Json => {
            let doc = serde_json::json!({
                "suites": suites,
                "invalid": invalid
                    .iter()
                    .map(|i| serde_json::json!({"file": i.file, "errors": i.errors}))
                    .collect::<Vec<_>>(),
                "summary": {"passed": passed, "failed": failed, "invalid": invalid.len()},
            });
            serde_json::to_writer_pretty(&mut out, &doc)?;
            writeln!(out)?;
        }
        TestFormat::Junit => junit(&mut out, &suites, &invalid)?,
    }
    if args.output == TestFormat::Table {
        writeln!(out, "{passed} passed, {failed} failed")?;
    }
    out.flush().context("writing the results")?;
    for i in &invalid {
        eprintln!("rampart: error: invalid test suite {}:", i.file.display());
        for e in &i.errors {
            eprintln!("  {e}");
        }
    }
    Ok(if !invalid.is_empty() {
        EXIT_ERROR
    } else if failed > 0 {
        EXIT_FINDINGS
    } else {
        0
    })
}

fn table(out: &mut dyn Write, suites: &[SuiteResult], failures_only: bool) -> std::io::Result<()> {
    for s in suites {
        writeln!(
            out,
            "{} ({}): {} passed, {} failed",
            s.file.display(),
            s.name,
            s.passed(),
            s.failed()
        )?;
        let rows: Vec<_> = s
            .cases
            .iter()
            .filter(|c| !failures_only || !c.passed)
            .collect();
        let w_rule = rows.iter().map(|c| rule_of(c).len()).max().unwrap_or(0);
        let w_res = rows.iter().map(|c| c.resource.len()).max().unwrap_or(0);
        for c in rows {
            let status = if c.passed { "PASS" } else { "FAIL" };
            let actual = c.actual.map_or("-", |a| a.as_str());
            write!(
                out,
                "  {status}  {:<w_rule$}  {:<w_res$}  expected {:<5}  got {actual}",
                rule_of(c),
                c.resource,
                c.expected.as_str(),
            )?;
            if !c.passed && !c.detail.is_empty() {
                write!(out, "{:pad$}  {}", "", c.detail, pad = 5 - actual.len())?;
            }
            writeln!(out)?;
        }
    }
    Ok(())
}

fn rule_of(c: &testing::CaseResult) -> String {
    match &c.rule {
        Some(r) => format!("{}/{r}", c.policy),
        None => c.policy.clone(),
    }
}

fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\t' | '\r') => {}
            c => out.push(c),
        }
    }
    out
}

fn junit(out: &mut dyn Write, suites: &[SuiteResult], invalid: &[Invalid]) -> std::io::Result<()> {
    let tests: usize = suites.iter().map(|s| s.cases.len()).sum::<usize>() + invalid.len();
    let failures: usize = suites.iter().map(SuiteResult::failed).sum();
    writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?>"#)?;
    writeln!(
        out,
        r#"<testsuites name="rampart test" tests="{tests}" failures="{failures}" errors="{}">"#,
        invalid.len()
    )?;
    for s in suites {
        writeln!(
            out,
            r#"  <testsuite name="{}" file="{}" tests="{}" failures="{}">"#,
            xml(&s.name),
            xml(&s.file.display().to_string()),
            s.cases.len(),
            s.failed()
        )?;
        for c in &s.cases {
            let name = format!("{} {}: {}", rule_of(c), c.resource, c.expected.as_str());
            if c.passed {
                writeln!(
                    out,
                    r#"    <testcase classname="{}" name="{}"/>"#,
                    xml(&s.name),
                    xml(&name)
                )?;
            } else {
                writeln!(
                    out,
                    r#"    <testcase classname="{}" name="{}">"#,
                    xml(&s.name),
                    xml(&name)
                )?;
                writeln!(out, r#"      <failure message="{}"/>"#, xml(&c.detail))?;
                writeln!(out, "    </testcase>")?;
            }
        }
        writeln!(out, "  </testsuite>")?;
    }
    for i in invalid {
        let file = xml(&i.file.display().to_string());
        writeln!(out, r#"  <testsuite name="{file}" tests="1" errors="1">"#)?;
        writeln!(out, r#"    <testcase classname="{file}" name="load">"#)?;
        writeln!(
            out,
            r#"      <error message="{}"/>"#,
            xml(&i.errors.join("\n"))
        )?;
        writeln!(out, "    </testcase>")?;
        writeln!(out, "  </testsuite>")?;
    }
    writeln!(out, "</testsuites>")
}

/// `rampart crds`: the CustomResourceDefinitions of Rampart's policy resources.
pub fn crds(args: &CrdsArgs) -> Result<u8> {
    let crds = rampart_policy::crds_yaml();
    match &args.output_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            for (file, yaml) in crds {
                let path = dir.join(file);
                std::fs::write(&path, yaml)
                    .with_context(|| format!("writing {}", path.display()))?;
                println!("{}", path.display());
            }
        }
        None => {
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            for (i, (_, yaml)) in crds.iter().enumerate() {
                if i > 0 {
                    writeln!(out, "---")?;
                }
                out.write_all(yaml.as_bytes())?;
            }
        }
    }
    Ok(0)
}

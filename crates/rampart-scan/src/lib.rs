//! Rampart's scan pipeline as a library. See the README.
//!
//! ```no_run
//! use rampart_scan::{ScanConfig, Scanner};
//!
//! let scanner = Scanner::new(ScanConfig::default()).unwrap();
//! let report = scanner.scan(&["k8s/"], &rampart_scan::NoProgress);
//! println!("{} objects", report.summary().objects);
//! ```

mod policies;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rampart_checks::practices::PracticeConfig;
use rampart_checks::pss::{Level, Profile, Version};
use rampart_core::{CheckMeta, Engine, FieldPath, Finding, ObjectView};
use rampart_manifest::{InputIssue, Limits, Loader, Manifest};
use rampart_report::{InputError, LocatedFinding, ObjectResult, Origin, ScanReport};
use rayon::prelude::*;

pub use policies::ScanPolicies;

/// Which checks a scan runs and what it reads.
#[derive(Clone, Debug)]
pub struct ScanConfig {
    pub pss_level: Level,
    pub pss_version: Version,
    /// Registries or repository prefixes images may come from; empty: not checked.
    pub allowed_registries: Vec<String>,
    /// Namespaces treated as untrusted besides those labelled so in the scan.
    pub untrusted_namespaces: Vec<String>,
    /// Check IDs to skip.
    pub skip: Vec<String>,
    /// Only the Pod Security Standards, no best practices.
    pub pss_only: bool,
    /// User policy files and directories (`--policy`).
    pub policies: Vec<PathBuf>,
    pub limits: Limits,
}

impl Default for ScanConfig {
    fn default() -> Self {
        Self {
            pss_level: Level::Restricted,
            pss_version: Version::Latest,
            allowed_registries: Vec::new(),
            untrusted_namespaces: Vec::new(),
            skip: Vec::new(),
            pss_only: false,
            policies: Vec::new(),
            limits: Limits::default(),
        }
    }
}

/// Told how a scan is going, for a progress display.
pub trait Progress: Sync {
    /// Reading is done; `objects` objects will be checked.
    fn loaded(&self, _objects: usize) {}
    /// One more object checked.
    fn checked_one(&self) {}
    /// A phase ended (`load`, `corpus checks`, …), for `--timings`.
    fn phase(&self, _name: &str) {}
}

/// Reports nothing.
pub struct NoProgress;

impl Progress for NoProgress {}

/// The checks and policies of a scan, ready to run over any number of inputs.
pub struct Scanner {
    engine: Engine,
    policies: Option<ScanPolicies>,
    limits: Limits,
}

impl Scanner {
    /// Builds the checks and compiles the policies; the error lists every
    /// problem in the policies, one per line.
    pub fn new(config: ScanConfig) -> Result<Self, String> {
        let policies = policies::load(&config.policies)?;
        Ok(Self {
            engine: build_engine(&config),
            policies,
            limits: config.limits,
        })
    }

    /// The policy compiler's warnings (the policies still compiled).
    pub fn warnings(&self) -> &[String] {
        self.policies.as_ref().map_or(&[], ScanPolicies::warnings)
    }

    /// Scans `paths` (files, directories, `-` for standard input).
    pub fn scan<P: AsRef<Path>>(&self, paths: &[P], progress: &dyn Progress) -> ScanReport {
        let loaded = Loader::new(self.limits).load_paths(paths);
        progress.phase("load");

        let objects: Vec<(usize, ObjectView<'_>)> = loaded
            .manifests
            .iter()
            .enumerate()
            .filter_map(|(i, m)| ObjectView::new(&m.value).map(|v| (i, v)))
            // Policy documents are configuration, not workloads (see `--policy`).
            .filter(|(_, v)| !rampart_policy::is_policy_document(v.value))
            .collect();
        let namespaces: HashMap<&str, &serde_json::Value> = objects
            .iter()
            .filter(|(_, v)| v.kind == "Namespace" && v.api_version == "v1")
            .map(|(_, v)| (v.name, v.value))
            .collect();
        progress.phase("views");
        progress.loaded(objects.len());

        // Checks over the whole scan first, so each object's findings are
        // located together, reading its document once.
        let views: Vec<ObjectView<'_>> = objects.iter().map(|(_, v)| v.clone()).collect();
        let mut corpus_findings: Vec<Vec<Finding>> = vec![Vec::new(); objects.len()];
        for (index, finding) in self.engine.check_corpus(&views) {
            corpus_findings[index].push(finding);
        }
        if let Some(p) = &self.policies {
            for (index, finding) in p.corpus_findings(&views) {
                corpus_findings[index].push(finding);
            }
        }
        progress.phase("corpus checks");

        let results: Vec<ObjectResult> = objects
            .par_iter()
            .zip(corpus_findings)
            .map(|((i, view), corpus)| {
                let mut findings = self.engine.check_object(view);
                if let Some(p) = &self.policies {
                    findings.extend(p.object_findings(view, &namespaces));
                }
                findings.extend(corpus);
                // Most severe first; within a severity, in the order the checks ran.
                findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
                progress.checked_one();
                object_result(&loaded.manifests[*i], view, findings)
            })
            .collect();
        progress.phase("checks and locations");

        let report = ScanReport {
            tool_version: env!("CARGO_PKG_VERSION").to_owned(),
            rules: self.rules(),
            objects: results,
            input_errors: loaded.issues.iter().map(input_error).collect(),
            files: loaded.files,
        };
        progress.phase("assemble");
        report
    }

    /// Every rule a report of this scanner can name: the built-in checks,
    /// then the policies' rules.
    pub fn rules(&self) -> Vec<Arc<CheckMeta>> {
        self.engine
            .catalog()
            .cloned()
            .chain(self.policies.iter().flat_map(|p| p.rules()))
            .collect()
    }

    /// The built-in checks, per-object checks first.
    pub fn catalog(&self) -> impl Iterator<Item = &Arc<CheckMeta>> {
        self.engine.catalog()
    }
}

/// The engine of the built-in checks a configuration selects.
pub fn build_engine(config: &ScanConfig) -> Engine {
    let mut checks = Profile::new(config.pss_level, config.pss_version).into_checks();
    let mut corpus = Vec::new();
    if !config.pss_only {
        let practices = PracticeConfig {
            allowed_registries: config.allowed_registries.clone(),
            untrusted_namespaces: config.untrusted_namespaces.clone(),
            ..PracticeConfig::default()
        };
        let (practice, practice_corpus) = rampart_checks::practices::checks(&practices);
        checks.extend(practice);
        corpus = practice_corpus;
    }
    checks.retain(|c| !config.skip.iter().any(|s| *s == c.meta().id));
    corpus.retain(|c| !config.skip.iter().any(|s| *s == c.meta().id));
    Engine::new(checks, corpus)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scans_a_file_with_the_default_checks() {
        let dir = std::env::temp_dir().join(format!("rampart-scan-lib-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("pod.yaml");
        std::fs::write(
            &file,
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: c\n    image: nginx\n    securityContext: {privileged: true}\n",
        )
        .unwrap();
        let scanner = Scanner::new(ScanConfig::default()).unwrap();
        let report = scanner.scan(&[&file], &NoProgress);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(report.objects.len(), 1);
        let ids: Vec<&str> = report.objects[0]
            .findings
            .iter()
            .map(|f| f.finding.check_id())
            .collect();
        assert!(ids.contains(&"pss-privileged"), "{ids:?}");
        // Located on the line of the offending field.
        let privileged = report.objects[0]
            .findings
            .iter()
            .find(|f| f.finding.check_id() == "pss-privileged")
            .unwrap();
        assert_eq!(privileged.line, Some(8));
    }

    #[test]
    fn a_broken_policy_is_an_error_naming_it() {
        let dir = std::env::temp_dir().join(format!("rampart-scan-pol-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("policy.yaml");
        std::fs::write(
            &file,
            "apiVersion: rampart.dev/v1alpha1\nkind: ClusterPolicy\nmetadata: {name: broken}\nspec:\n  validations:\n  - expression: 'object.spec.replicas <='\n",
        )
        .unwrap();
        let err = Scanner::new(ScanConfig {
            policies: vec![file],
            ..ScanConfig::default()
        })
        .err()
        .unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(err.contains("ClusterPolicy \"broken\""), "{err}");
    }
}

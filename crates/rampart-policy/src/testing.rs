//! `rampart test`: policy test suites, in the spirit of `kyverno test`.
//!
//! A suite is a `rampart-test.yaml` file:
//!
//! ```yaml
//! name: max-replicas                 # optional; default: the directory name
//! policies: [../../max-replicas.yaml]  # files or directories, relative to this file
//! resources: [resources.yaml]
//! params: [params.yaml]              # optional: parameter objects (ConfigMaps, ...)
//! namespaces: [namespaces.yaml]      # optional: Namespace objects for selectors
//! userInfo: {username: alice, groups: [dev]}   # optional: who makes the requests
//! operation: CREATE                  # optional: CREATE (default) or UPDATE, DELETE, CONNECT
//! results:
//! - policy: max-replicas             # metadata.name of the policy
//!   rule: at-most-5                  # optional: validation name (or index), built-in check ID
//!   resources: [web, prod/api]       # name or namespace/name
//!   kind: Deployment                 # optional: only resources of this kind
//!   result: fail                     # pass | fail | warn | error | skip
//!   message: "..."                   # optional: a matching decision has exactly this message
//!   patchedResource: patched.yaml    # optional: the object after mutations
//! ```
//!
//! Each resource is evaluated as a request (`operation`, by `userInfo`),
//! together with the built-in checks that look at all resources at once.
//! A policy's result on a resource is the worst of its decisions (for `rule`,
//! of that rule's): `fail` (a failed validation enforced with Deny or Audit),
//! `warn` (enforced with Warn only), `error` (evaluation failed), `pass`,
//! `skip` (the policy did not apply: not matched, or a match condition was
//! false, or no params with `parameterNotFoundAction: Allow`).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::crd::{Operation, ValidationAction};
use crate::decision::{Decision, Evaluation, Outcome};
use crate::load::read_documents;
use crate::set::PolicySet;
use rampart_core::request::Operation as RequestOperation;
use rampart_core::request::{Request, UserInfo};

/// The file name `rampart test` looks for in directories.
pub const TEST_FILE: &str = "rampart-test.yaml";

/// A test suite file.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TestFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub policies: Vec<String>,
    pub resources: Vec<String>,
    #[serde(default)]
    pub params: Vec<String>,
    #[serde(default)]
    pub namespaces: Vec<String>,
    #[serde(default)]
    pub user_info: Option<UserInfo<'static>>,
    #[serde(default)]
    pub operation: Option<Operation>,
    pub results: Vec<Expectation>,
}

/// One expected result, for one or more resources.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Expectation {
    pub policy: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    pub resources: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    pub result: TestResult,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patched_resource: Option<String>,
}

/// A policy's result on a resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TestResult {
    Skip,
    Pass,
    Error,
    Warn,
    Fail,
}

impl TestResult {
    pub fn as_str(self) -> &'static str {
        match self {
            TestResult::Skip => "skip",
            TestResult::Pass => "pass",
            TestResult::Error => "error",
            TestResult::Warn => "warn",
            TestResult::Fail => "fail",
        }
    }

    /// The result one decision stands for.
    pub fn of(d: &Decision) -> TestResult {
        match d.outcome {
            Outcome::Pass => TestResult::Pass,
            Outcome::Skip => TestResult::Skip,
            Outcome::Error => TestResult::Error,
            Outcome::Fail => {
                if d.actions.contains(ValidationAction::Deny)
                    || d.actions.contains(ValidationAction::Audit)
                {
                    TestResult::Fail
                } else if d.actions.contains(ValidationAction::Warn) {
                    TestResult::Warn
                } else {
                    TestResult::Fail
                }
            }
        }
    }
}

/// The outcome of one expectation on one resource.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CaseResult {
    pub policy: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// `Kind namespace/name`, or the entry as written when no resource matched.
    pub resource: String,
    pub expected: TestResult,
    /// `None` when the resource or policy was not found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actual: Option<TestResult>,
    pub passed: bool,
    /// Why it failed, or the decisions' messages.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

/// The results of one suite file.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SuiteResult {
    pub file: PathBuf,
    pub name: String,
    pub cases: Vec<CaseResult>,
}

impl SuiteResult {
    pub fn passed(&self) -> usize {
        self.cases.iter().filter(|c| c.passed).count()
    }

    pub fn failed(&self) -> usize {
        self.cases.len() - self.passed()
    }
}

/// Finds suite files: files given directly, and `rampart-test.yaml` files
/// under directories (recursively, hidden directories skipped), sorted.
pub fn discover(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
        if !meta.is_dir() {
            out.push(path.clone());
            continue;
        }
        let walker = walkdir::WalkDir::new(path)
            .sort_by_file_name()
            .into_iter()
            .filter_entry(|e| {
                e.depth() == 0 || !e.file_name().as_encoded_bytes().starts_with(b".")
            });
        for entry in walker {
            let entry = entry.map_err(|e| e.to_string())?;
            if entry.file_type().is_file() && entry.file_name() == TEST_FILE {
                out.push(entry.into_path());
            }
        }
    }
    Ok(out)
}

fn resolve(base: &Path, paths: &[String]) -> Vec<PathBuf> {
    paths.iter().map(|p| base.join(p)).collect()
}

/// Reads and runs one suite. `Err` means the suite itself is invalid (cannot
/// be read, malformed, policies that do not compile): every problem is listed.
pub fn run_file(path: &Path) -> Result<SuiteResult, Vec<String>> {
    let text =
        std::fs::read_to_string(path).map_err(|e| vec![format!("{}: {e}", path.display())])?;
    let file: TestFile =
        serde_saphyr::from_str(&text).map_err(|e| vec![format!("{}: {e}", path.display())])?;
    let base = path.parent().unwrap_or(Path::new("."));
    let name = file.name.clone().unwrap_or_else(|| {
        base.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string())
    });
    let show = |errors: Vec<crate::PolicyError>| {
        errors.iter().map(ToString::to_string).collect::<Vec<_>>()
    };
    if file.policies.is_empty() {
        return Err(vec![format!(
            "{}: policies: list at least one policy file",
            path.display()
        )]);
    }
    let mut policy_paths = resolve(base, &file.policies);
    policy_paths.extend(resolve(base, &file.params));
    policy_paths.extend(resolve(base, &file.namespaces));
    let (policy_docs, _) = read_documents(&policy_paths).map_err(show)?;
    let set = PolicySet::compile(policy_docs).map_err(show)?;
    let (resources, _) = read_documents(&resolve(base, &file.resources)).map_err(show)?;
    let Some(operation) = file.operation.unwrap_or(Operation::Create).single() else {
        return Err(vec![format!(
            "{}: operation: `*` is not a request's operation",
            path.display()
        )]);
    };

    // Evaluate every resource once.
    let objects: Vec<Value> = resources.iter().map(|d| d.value.clone()).collect();
    let mut evaluations: Vec<Evaluation> = Vec::with_capacity(objects.len());
    for (doc, object) in resources.iter().zip(&objects) {
        let (new, old) = match operation {
            RequestOperation::Delete => (None, Some(object.clone())),
            RequestOperation::Update => (Some(object.clone()), Some(object.clone())),
            _ => (Some(object.clone()), None),
        };
        let req = Request::for_object(operation, new, old)
            .map_err(|e| {
                vec![format!(
                    "{}: {e}",
                    doc.source.as_deref().unwrap_or("resource")
                )]
            })?
            .with_user(file.user_info.clone().unwrap_or_default());
        evaluations.push(set.evaluate(&req));
    }
    for (i, d) in set.evaluate_corpus(&objects) {
        evaluations[i].decisions.push(d);
    }

    let policy_known = |name: &str| set.units.iter().any(|u| u.id.name == name);
    let mut cases = Vec::new();
    for (ei, exp) in file.results.iter().enumerate() {
        if exp.resources.is_empty() {
            return Err(vec![format!(
                "{}: results[{ei}].resources: list at least one resource",
                path.display()
            )]);
        }
        for wanted in &exp.resources {
            let hits: Vec<usize> = objects
                .iter()
                .enumerate()
                .filter(|(_, o)| resource_matches(o, wanted, exp.kind.as_deref()))
                .map(|(i, _)| i)
                .collect();
            let mut case = CaseResult {
                policy: exp.policy.clone(),
                rule: exp.rule.clone(),
                resource: wanted.clone(),
                expected: exp.result,
                actual: None,
                passed: false,
                detail: String::new(),
            };
            if !policy_known(&exp.policy) {
                case.detail = format!("no policy named {:?} in the suite's policies", exp.policy);
                cases.push(case);
                continue;
            }
            if hits.is_empty() {
                case.detail = format!("no resource named {wanted:?} in the suite's resources");
                cases.push(case);
                continue;
            }
            for i in hits {
                let ev = &evaluations[i];
                let mut case = case.clone();
                case.resource = describe(&objects[i]);
                let decisions: Vec<&Decision> = ev
                    .decisions
                    .iter()
                    .filter(|d| d.policy.name == exp.policy)
                    .filter(|d| {
                        exp.rule
                            .as_deref()
                            .is_none_or(|r| d.rule.as_deref() == Some(r))
                    })
                    .collect();
                let actual = decisions
                    .iter()
                    .map(|d| TestResult::of(d))
                    .max()
                    .unwrap_or(TestResult::Skip);
                case.actual = Some(actual);
                let messages: Vec<&str> = decisions
                    .iter()
                    .filter(|d| TestResult::of(d) == actual && !d.message.is_empty())
                    .map(|d| d.message.as_str())
                    .collect();
                let mut problems = Vec::new();
                if actual != exp.result {
                    problems.push(format!(
                        "expected {}, got {}",
                        exp.result.as_str(),
                        actual.as_str()
                    ));
                }
                if let Some(m) = &exp.message
                    && !messages.iter().any(|x| x == m)
                {
                    problems.push(format!("expected message {m:?}, got {messages:?}"));
                }
                if let Some(patched) = &exp.patched_resource {
                    match read_documents(&[base.join(patched)]) {
                        Ok((docs, _)) if docs.len() == 1 => {
                            let got = ev.patched_object.as_ref().unwrap_or(&objects[i]);
                            if *got != docs[0].value {
                                problems.push(format!(
                                    "patched resource differs from {patched}: got {}",
                                    serde_json::to_string(got).unwrap_or_default()
                                ));
                            }
                        }
                        Ok(_) => {
                            return Err(vec![format!("{patched}: expected exactly one document")]);
                        }
                        Err(es) => return Err(show(es)),
                    }
                }
                case.passed = problems.is_empty();
                case.detail = if problems.is_empty() {
                    messages.join("; ")
                } else {
                    problems.join("; ")
                };
                cases.push(case);
            }
        }
    }
    Ok(SuiteResult {
        file: path.to_owned(),
        name,
        cases,
    })
}

fn resource_matches(object: &Value, wanted: &str, kind: Option<&str>) -> bool {
    let name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let namespace = object
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("");
    if kind.is_some_and(|k| object["kind"].as_str() != Some(k)) {
        return false;
    }
    match wanted.split_once('/') {
        Some((ns, n)) => ns == namespace && n == name,
        None => wanted == name,
    }
}

fn describe(object: &Value) -> String {
    let kind = object["kind"].as_str().unwrap_or("");
    let name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    match object
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
    {
        Some(ns) => format!("{kind} {ns}/{name}"),
        None => format!("{kind} {name}"),
    }
}

//! User policies (`rampart scan --policy`) evaluated next to the built-in checks.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rampart_core::{Category, CheckMeta, FieldPath, Finding, ObjectView, Severity};
use rampart_policy::{CompileOptions, Decision, Outcome, PolicySet, Request};
use serde_json::Value;

/// The policies of a scan, and the rules their findings refer to.
pub struct ScanPolicies {
    set: PolicySet,
    /// Rules made up for results without a validation (a policy-level error).
    extra_rules: Mutex<BTreeMap<String, Arc<CheckMeta>>>,
}

/// Reads and compiles `--policy` paths; `Ok(None)` when there are none.
/// The error lists every problem, one per line.
pub fn load(paths: &[PathBuf]) -> Result<Option<ScanPolicies>, String> {
    if paths.is_empty() {
        return Ok(None);
    }
    let (set, _) =
        rampart_policy::load_policy_paths(paths, &CompileOptions::default()).map_err(|errors| {
            let mut text = format!(
                "{} error{} in policies:",
                errors.len(),
                if errors.len() == 1 { "" } else { "s" }
            );
            for e in &errors {
                text.push_str(&format!("\n  {e}"));
            }
            text
        })?;
    Ok(Some(ScanPolicies {
        set,
        extra_rules: Mutex::new(BTreeMap::new()),
    }))
}

impl ScanPolicies {
    /// What the compiler warns about (the policies still compiled).
    pub fn warnings(&self) -> &[String] {
        self.set.warnings()
    }

    /// Findings of the policies on one object, evaluated as its CREATE request.
    pub fn object_findings(
        &self,
        view: &ObjectView<'_>,
        namespaces: &HashMap<&str, &Value>,
    ) -> Vec<Finding> {
        let Ok(mut req) = Request::create_borrowed(view.value) else {
            return Vec::new();
        };
        if !req.namespace.is_empty()
            && let Some(ns) = namespaces.get(req.namespace.as_ref())
        {
            req.namespace_object = Some(Cow::Borrowed(*ns));
        }
        self.set
            .evaluate(&req)
            .decisions
            .iter()
            .filter_map(|d| self.finding(d))
            .collect()
    }

    /// Findings of the policies' corpus checks (built-in namespace hygiene
    /// and the like), as `(index into views, finding)`.
    pub fn corpus_findings(&self, views: &[ObjectView<'_>]) -> Vec<(usize, Finding)> {
        let objects: Vec<Value> = views.iter().map(|v| v.value.clone()).collect();
        self.set
            .evaluate_corpus(&objects)
            .iter()
            .filter_map(|(i, d)| self.finding(d).map(|f| (*i, f)))
            .collect()
    }

    /// Every rule the policies can report, for SARIF and JSON.
    pub fn rules(&self) -> Vec<Arc<CheckMeta>> {
        let mut rules = self.set.rules().to_vec();
        rules.extend(
            self.extra_rules
                .lock()
                .expect("not poisoned")
                .values()
                .cloned(),
        );
        rules
    }

    fn finding(&self, d: &Decision) -> Option<Finding> {
        let ignored_error = d.outcome == Outcome::Error && d.actions.is_empty();
        if !d.is_violation() && !ignored_error {
            return None;
        }
        let meta = match &d.meta {
            Some(m) => Arc::clone(m),
            None => self.extra_rule(d),
        };
        // An error ignored under `failurePolicy: Ignore` is still reported,
        // at info so it does not fail a build.
        let (severity, message) = if ignored_error {
            (
                Severity::Info,
                format!("{} (ignored: failurePolicy Ignore)", d.message),
            )
        } else {
            (d.severity, d.message.clone())
        };
        Some(Finding {
            check: meta,
            severity,
            message,
            path: d.path.clone().unwrap_or_else(FieldPath::root),
            related: Vec::new(),
            suppressed: d.suppressed.clone(),
        })
    }

    fn extra_rule(&self, d: &Decision) -> Arc<CheckMeta> {
        let id = d.check_id();
        let mut rules = self.extra_rules.lock().expect("not poisoned");
        Arc::clone(rules.entry(id.clone()).or_insert_with(|| {
            Arc::new(CheckMeta {
                id: Cow::Owned(id),
                title: Cow::Owned(format!("{} could not be evaluated", d.policy)),
                severity: d.severity,
                category: Category::Policy,
                why: Cow::Borrowed(
                    "A policy that cannot be evaluated is enforced according to its failurePolicy.",
                ),
                fix: Cow::Borrowed(
                    "Fix the policy, its params or bindings, or the object it fails on.",
                ),
            })
        }))
    }
}

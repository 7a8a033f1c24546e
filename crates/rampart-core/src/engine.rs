//! Runs a set of checks over objects and turns violations into findings,
//! applying ignore annotations.

use std::sync::Arc;

use crate::check::{Check, CheckMeta, CorpusCheck, Violation};
use crate::object::ObjectView;
use crate::{FieldPath, Severity};

/// Annotation prefix that silences one check on one object:
/// `rampart.dev/ignore-<check-id>: "reason"`.
pub const IGNORE_ANNOTATION_PREFIX: &str = "rampart.dev/ignore-";

/// A violation with everything a report needs about it.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Finding {
    #[serde(skip)]
    pub check: Arc<CheckMeta>,
    /// The check's severity unless the violation overrides it.
    pub severity: Severity,
    pub message: String,
    pub path: FieldPath,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub related: Vec<FieldPath>,
    /// Why the finding is silenced, from its ignore annotation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suppressed: Option<String>,
}

impl Finding {
    pub fn check_id(&self) -> &str {
        &self.check.id
    }

    pub fn is_suppressed(&self) -> bool {
        self.suppressed.is_some()
    }
}

/// An immutable set of checks. Cheap to share between threads.
pub struct Engine {
    checks: Vec<(Arc<CheckMeta>, Box<dyn Check>)>,
    corpus_checks: Vec<(Arc<CheckMeta>, Box<dyn CorpusCheck>)>,
}

impl Engine {
    pub fn new(checks: Vec<Box<dyn Check>>, corpus_checks: Vec<Box<dyn CorpusCheck>>) -> Self {
        Self {
            checks: checks
                .into_iter()
                .map(|c| (Arc::new(c.meta().clone()), c))
                .collect(),
            corpus_checks: corpus_checks
                .into_iter()
                .map(|c| (Arc::new(c.meta().clone()), c))
                .collect(),
        }
    }

    /// Every check the engine runs, per-object checks first.
    pub fn catalog(&self) -> impl Iterator<Item = &Arc<CheckMeta>> {
        self.checks
            .iter()
            .map(|(m, _)| m)
            .chain(self.corpus_checks.iter().map(|(m, _)| m))
    }

    pub fn is_empty(&self) -> bool {
        self.checks.is_empty() && self.corpus_checks.is_empty()
    }

    /// Findings of the per-object checks for one object, in check order.
    /// Allocates nothing for an object that passes every check.
    pub fn check_object(&self, object: &ObjectView<'_>) -> Vec<Finding> {
        let mut findings = Vec::new();
        let mut violations = Vec::new();
        for (meta, check) in &self.checks {
            check.check(object, &mut violations);
            findings.extend(violations.drain(..).map(|v| finding(meta, v, object)));
        }
        findings
    }

    /// Findings of the checks that look at all objects together, as
    /// `(index into objects, finding)`.
    pub fn check_corpus(&self, objects: &[ObjectView<'_>]) -> Vec<(usize, Finding)> {
        let mut out = Vec::new();
        let mut violations = Vec::new();
        for (meta, check) in &self.corpus_checks {
            check.check_all(objects, &mut violations);
            out.extend(violations.drain(..).filter_map(|(i, v)| {
                let object = objects.get(i)?;
                Some((i, finding(meta, v, object)))
            }));
        }
        out
    }

    /// Per-object and corpus findings for every object, indexed like `objects`.
    pub fn check_all(&self, objects: &[ObjectView<'_>]) -> Vec<Vec<Finding>> {
        let mut out: Vec<Vec<Finding>> = objects.iter().map(|o| self.check_object(o)).collect();
        for (i, f) in self.check_corpus(objects) {
            out[i].push(f);
        }
        out
    }
}

fn finding(meta: &Arc<CheckMeta>, v: Violation, object: &ObjectView<'_>) -> Finding {
    let suppressed = ignore_reason(object, &meta.id);
    Finding {
        check: Arc::clone(meta),
        severity: v.severity.unwrap_or(meta.severity),
        message: v.message,
        path: v.path,
        related: v.related,
        suppressed,
    }
}

/// The reason given in a `rampart.dev/ignore-<id>` annotation on the object or
/// on its pod template. An empty reason does not silence anything: an ignore
/// must say why, so a reviewer can judge it. The scan, the policies and the
/// webhook all read ignores through this one rule.
pub fn ignore_reason(object: &ObjectView<'_>, check_id: &str) -> Option<String> {
    let key = format!("{IGNORE_ANNOTATION_PREFIX}{check_id}");
    let on_object = object.annotation(&key);
    let on_template = || object.pod.as_ref().and_then(|p| p.annotation(&key));
    on_object
        .or_else(on_template)
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Category;
    use serde_json::json;
    use std::borrow::Cow;

    struct NoLatest(CheckMeta);

    impl Check for NoLatest {
        fn meta(&self) -> &CheckMeta {
            &self.0
        }
        fn check(&self, object: &ObjectView<'_>, out: &mut Vec<Violation>) {
            if object.name == "bad" {
                out.push(Violation::new(
                    "no-latest",
                    "bad name",
                    FieldPath::parse("metadata.name"),
                ));
            }
        }
    }

    fn engine() -> Engine {
        let meta = CheckMeta {
            id: Cow::Borrowed("no-latest"),
            title: Cow::Borrowed("t"),
            severity: Severity::High,
            category: Category::Images,
            why: Cow::Borrowed("w"),
            fix: Cow::Borrowed("f"),
        };
        Engine::new(vec![Box::new(NoLatest(meta))], vec![])
    }

    #[test]
    fn findings_carry_check_and_severity() {
        let v = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bad"}});
        let f = engine().check_object(&ObjectView::new(&v).unwrap());
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].check_id(), "no-latest");
        assert_eq!(f[0].severity, Severity::High);
        assert_eq!(f[0].path.to_string(), "metadata.name");
        assert!(!f[0].is_suppressed());
    }

    #[test]
    fn ignore_annotation_with_reason_suppresses() {
        let v = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bad",
            "annotations": {"rampart.dev/ignore-no-latest": " legacy app, ticket OPS-1 "}}});
        let f = engine().check_object(&ObjectView::new(&v).unwrap());
        assert_eq!(f[0].suppressed.as_deref(), Some("legacy app, ticket OPS-1"));
    }

    #[test]
    fn ignore_annotation_on_the_pod_template_counts() {
        let v = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "bad"},
            "spec": {"template": {"metadata": {"annotations": {"rampart.dev/ignore-no-latest": "why"}}, "spec": {}}}});
        let f = engine().check_object(&ObjectView::new(&v).unwrap());
        assert_eq!(f[0].suppressed.as_deref(), Some("why"));
    }

    #[test]
    fn ignore_annotation_without_reason_does_not_suppress() {
        let v = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bad",
            "annotations": {"rampart.dev/ignore-no-latest": "  "}}});
        let f = engine().check_object(&ObjectView::new(&v).unwrap());
        assert!(!f[0].is_suppressed());
    }

    #[test]
    fn passing_objects_have_no_findings() {
        let v = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "good"}});
        assert!(
            engine()
                .check_object(&ObjectView::new(&v).unwrap())
                .is_empty()
        );
    }
}

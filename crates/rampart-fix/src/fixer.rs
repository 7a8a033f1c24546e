//! Reading, planning, editing, verifying and checking again.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::ops::Range;
use std::sync::Arc;

use rampart_core::{Engine, FieldPath, Finding, Severity};
use rampart_manifest::{
    InputIssue, IssueKind, Limits, LoadResult, Loader, Manifest, Source, parse_source,
};
use serde_json::Value;

use crate::op::{Action, Op};
use crate::plan::{Change, FixOptions, Refusal, no_remedy_reason, plan};
use crate::text::{self, StyleVotes};

/// One file or stream to fix.
#[derive(Clone, Debug)]
pub struct SourceText {
    /// Display name: the path as given, or `-`.
    pub name: Arc<str>,
    pub text: Arc<str>,
}

impl SourceText {
    pub fn new(name: impl Into<Arc<str>>, text: impl Into<Arc<str>>) -> Self {
        Self {
            name: name.into(),
            text: text.into(),
        }
    }
}

/// A change made, with where it now is.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppliedFix {
    pub check_id: String,
    /// `pod`, `container "web"`.
    pub subject: String,
    /// The field changed, in the object.
    pub path: FieldPath,
    /// `set` or `append`.
    pub action: &'static str,
    pub value: Value,
    /// 1-based line of the field in the fixed text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A finding that is still there after fixing, and why it was not fixed.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NotFixed {
    pub check_id: String,
    pub severity: Severity,
    pub message: String,
    pub path: FieldPath,
    /// 1-based line in the fixed text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    pub reason: String,
    /// The check's own advice.
    pub how_to_fix: String,
}

/// What happened to one object.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectFix {
    pub document: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub list_item: Option<usize>,
    /// 1-based line where the object starts in the fixed text.
    pub line: usize,
    pub api_version: String,
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
    pub fixed: Vec<AppliedFix>,
    pub not_fixed: Vec<NotFixed>,
    /// Set when planned changes could not be written safely: they were not made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The outcome for one file.
#[derive(Clone, Debug)]
pub struct FileFix {
    pub name: Arc<str>,
    pub original: Arc<str>,
    pub fixed: String,
    pub objects: Vec<ObjectFix>,
}

impl FileFix {
    pub fn changed(&self) -> bool {
        *self.original != *self.fixed
    }
}

/// The outcome of a run.
#[derive(Clone, Debug, Default)]
pub struct FixRun {
    pub files: Vec<FileFix>,
    /// Problems reading the input, as `rampart scan` reports them; documents
    /// with problems are left as they are.
    pub issues: Vec<InputIssue>,
}

impl FixRun {
    /// Findings left at or above `threshold`.
    pub fn failing(&self, threshold: Severity) -> usize {
        self.objects()
            .flat_map(|o| &o.not_fixed)
            .filter(|n| n.severity >= threshold)
            .count()
    }

    pub fn objects(&self) -> impl Iterator<Item = &ObjectFix> {
        self.files.iter().flat_map(|f| &f.objects)
    }

    /// Whether some input could not be read (warnings do not count).
    pub fn lost_input(&self) -> bool {
        self.issues.iter().any(|i| i.kind.lost_input())
    }
}

/// Fixes manifests against an engine's checks.
pub struct Fixer<'a> {
    engine: &'a Engine,
    options: &'a FixOptions,
    limits: Limits,
}

/// One object of the input, with its plan.
struct Planned {
    changes: Vec<Change>,
    refusals: Vec<Refusal>,
    /// Changes whose text edit was refused, with why.
    failed: Vec<(Change, String)>,
    error: Option<String>,
}

/// What a file reads back as: `(document, list item, object)` and input
/// issues as `(kind, document)`.
type Reading = (
    Vec<(usize, Option<usize>, Value)>,
    Vec<(IssueKind, Option<usize>)>,
);

fn reading(loaded: &LoadResult) -> Reading {
    (
        loaded
            .manifests
            .iter()
            .map(|m| (m.document, m.list_item, m.value.clone()))
            .collect(),
        loaded.issues.iter().map(|i| (i.kind, i.document)).collect(),
    )
}

impl<'a> Fixer<'a> {
    pub fn new(engine: &'a Engine, options: &'a FixOptions, limits: Limits) -> Self {
        Self {
            engine,
            options,
            limits,
        }
    }

    /// Fixes every source. Corpus checks (a pod's ServiceAccount) see all of
    /// them together, as `rampart scan` does.
    pub fn run(&self, sources: &[SourceText]) -> FixRun {
        let loaded: Vec<LoadResult> = sources.iter().map(|s| self.load(s)).collect();
        let mut run = FixRun::default();
        for l in &loaded {
            run.issues.extend(l.issues.iter().cloned());
        }

        // Plan: one entry per manifest, per file.
        let findings = self.check(&loaded);
        let mut planned: Vec<Vec<Planned>> = loaded
            .iter()
            .zip(&findings)
            .map(|(l, found)| {
                l.manifests
                    .iter()
                    .zip(found)
                    .map(|(manifest, found)| {
                        let failing: BTreeSet<&str> = found
                            .iter()
                            .flatten()
                            .filter(|f| !f.is_suppressed())
                            .map(Finding::check_id)
                            .collect();
                        let p = match manifest.view() {
                            Some(view) => plan(&view, &failing, self.options),
                            None => Default::default(),
                        };
                        Planned {
                            changes: p.changes,
                            refusals: p.refusals,
                            failed: Vec::new(),
                            error: None,
                        }
                    })
                    .collect()
            })
            .collect();

        // Edit and verify, file by file.
        let fixed_texts: Vec<String> = sources
            .iter()
            .zip(&loaded)
            .zip(&mut planned)
            .map(|((source, loaded), objects)| self.fix_file(source, loaded, objects))
            .collect();

        // Check the result again.
        let reloaded: Vec<LoadResult> = sources
            .iter()
            .zip(&fixed_texts)
            .map(|(s, text)| self.load(&SourceText::new(Arc::clone(&s.name), text.as_str())))
            .collect();
        let after = self.check(&reloaded);

        for (file, (source, objects)) in sources.iter().zip(planned).enumerate() {
            let objects = objects
                .into_iter()
                .enumerate()
                .map(|(index, p)| {
                    let original = &loaded[file].manifests[index];
                    // The fixed text has the same objects in the same order
                    // (verified); fall back to the original if it has not.
                    match reloaded[file].manifests.get(index) {
                        Some(m)
                            if m.document == original.document
                                && m.list_item == original.list_item =>
                        {
                            object_fix(m, p, after[file][index].as_deref().unwrap_or(&[]))
                        }
                        _ => {
                            object_fix(original, p, findings[file][index].as_deref().unwrap_or(&[]))
                        }
                    }
                })
                .collect();
            run.files.push(FileFix {
                name: Arc::clone(&source.name),
                original: Arc::clone(&source.text),
                fixed: fixed_texts[file].clone(),
                objects,
            });
        }
        run
    }

    fn load(&self, source: &SourceText) -> LoadResult {
        if source.text.len() as u64 > self.limits.max_file_bytes {
            // The loader reports the file as too large.
            return Loader::new(self.limits).load_str(&source.name, &source.text);
        }
        // The source shares the text, so documents are subslices of it.
        parse_source(
            &Source::new(Arc::clone(&source.name), Arc::clone(&source.text)),
            &self.limits,
        )
    }

    /// Findings per file and manifest; `None` for a manifest without a view.
    fn check(&self, loaded: &[LoadResult]) -> Vec<Vec<Option<Vec<Finding>>>> {
        let mut keys = Vec::new();
        let mut views = Vec::new();
        for (file, l) in loaded.iter().enumerate() {
            for (index, m) in l.manifests.iter().enumerate() {
                if let Some(view) = m.view() {
                    keys.push((file, index));
                    views.push(view);
                }
            }
        }
        let results = self.engine.check_all(&views);
        let mut out: Vec<Vec<Option<Vec<Finding>>>> = loaded
            .iter()
            .map(|l| vec![None; l.manifests.len()])
            .collect();
        for ((file, index), found) in keys.into_iter().zip(results) {
            out[file][index] = Some(found);
        }
        out
    }

    /// Edits one file's documents, verifies the result and returns the text
    /// to write: the original if nothing changed or nothing could be verified.
    /// `objects` has one entry per manifest of `loaded`.
    fn fix_file(
        &self,
        source: &SourceText,
        loaded: &LoadResult,
        objects: &mut [Planned],
    ) -> String {
        let text: &str = &source.text;
        if objects.iter().all(|p| p.changes.is_empty()) {
            return text.to_owned();
        }
        let mut votes = StyleVotes::default();
        let mut seen = HashSet::new();
        for m in &loaded.manifests {
            if seen.insert(m.document) {
                votes.add(m.document_text());
            }
        }
        let style = votes.style(looks_like_json(text));

        let mut edits: Vec<DocEdit> = Vec::new();
        let mut edit_of: HashMap<usize, usize> = HashMap::new();
        for (index, p) in objects.iter_mut().enumerate() {
            if p.changes.is_empty() {
                continue;
            }
            let manifest = &loaded.manifests[index];
            let Some(range) = document_range(text, manifest) else {
                p.error = Some(
                    "internal error: the document's place in the file is unknown; nothing was changed"
                        .to_owned(),
                );
                let changes = std::mem::take(&mut p.changes);
                p.failed
                    .extend(changes.into_iter().map(|c| (c, "not edited".to_owned())));
                continue;
            };
            let e = *edit_of.entry(manifest.document).or_insert_with(|| {
                edits.push(DocEdit {
                    document: manifest.document,
                    range: range.clone(),
                    text: text[range].to_owned(),
                    objects: Vec::new(),
                });
                edits.len() - 1
            });
            let edit = &mut edits[e];
            edit.objects.push(index);
            let mut applied = Vec::new();
            for change in std::mem::take(&mut p.changes) {
                let op = match manifest.list_item {
                    Some(i) => change.op.in_list_item(i),
                    None => change.op.clone(),
                };
                match text::apply(&edit.text, &op, &style) {
                    Ok(new) => {
                        edit.text = new;
                        applied.push(change);
                    }
                    Err(e) => p.failed.push((change, e.to_string())),
                }
            }
            p.changes = applied;
        }
        edits.retain(|e| e.text != text[e.range.clone()]);
        if edits.is_empty() {
            return text.to_owned();
        }

        let kept = self.verified_edits(source, loaded, objects, &edits);
        for (e, d) in edits.iter().enumerate() {
            if kept.contains(&e) {
                continue;
            }
            for &index in &d.objects {
                let p = &mut objects[index];
                let changes = std::mem::take(&mut p.changes);
                p.failed.extend(changes.into_iter().map(|c| {
                    (
                        c,
                        "the edited text did not read back as intended".to_owned(),
                    )
                }));
                p.error = Some(
                    "internal error: the edited document did not read back as intended, so it was left as it was"
                        .to_owned(),
                );
            }
        }
        splice(text, kept.iter().map(|&e| &edits[e]))
    }

    /// The edits (indices into `edits`) that together give exactly the
    /// intended objects: all of them normally; when not, those that do on
    /// their own and together; none if even that fails.
    fn verified_edits(
        &self,
        source: &SourceText,
        loaded: &LoadResult,
        objects: &[Planned],
        edits: &[DocEdit],
    ) -> Vec<usize> {
        let intended = |index: usize| -> Value {
            let mut value = loaded.manifests[index].value.clone();
            for c in &objects[index].changes {
                // A change that does not apply makes the comparison fail, as it should.
                if c.op.apply_json(&mut value).is_err() {
                    value = Value::Null;
                }
            }
            value
        };
        let expected = |included: &[usize]| -> Reading {
            let mut objects: Vec<(usize, Option<usize>, Value)> = loaded
                .manifests
                .iter()
                .map(|m| (m.document, m.list_item, m.value.clone()))
                .collect();
            for &e in included {
                for &index in &edits[e].objects {
                    objects[index].2 = intended(index);
                }
            }
            (objects, reading(loaded).1)
        };
        let whole = |included: &[usize]| -> bool {
            let candidate = splice(&source.text, included.iter().map(|&e| &edits[e]));
            let reread = self.load(&SourceText::new(Arc::clone(&source.name), candidate));
            reading(&reread) == expected(included)
        };
        let all: Vec<usize> = (0..edits.len()).collect();
        if whole(&all) {
            return all;
        }
        // Each document on its own: its objects and its issues.
        let alone = |e: usize| -> bool {
            let d = &edits[e];
            let reread = self.load(&SourceText::new(Arc::clone(&source.name), d.text.as_str()));
            let (objects, issues) = reading(&reread);
            let want_objects: Vec<(Option<usize>, Value)> = loaded
                .manifests
                .iter()
                .enumerate()
                .filter(|(_, m)| m.document == d.document)
                .map(|(i, m)| {
                    let value = if d.objects.contains(&i) {
                        intended(i)
                    } else {
                        m.value.clone()
                    };
                    (m.list_item, value)
                })
                .collect();
            let want_issues: Vec<IssueKind> = loaded
                .issues
                .iter()
                .filter(|i| i.document == Some(d.document))
                .map(|i| i.kind)
                .collect();
            objects
                .into_iter()
                .map(|(_, item, v)| (item, v))
                .collect::<Vec<_>>()
                == want_objects
                && issues.into_iter().map(|(kind, _)| kind).collect::<Vec<_>>() == want_issues
        };
        let good: Vec<usize> = all.into_iter().filter(|&e| alone(e)).collect();
        if !good.is_empty() && whole(&good) {
            good
        } else {
            Vec::new()
        }
    }
}

struct DocEdit {
    document: usize,
    range: Range<usize>,
    text: String,
    /// Indices in the file's manifests of the objects edited in it.
    objects: Vec<usize>,
}

fn splice<'d>(text: &str, edits: impl Iterator<Item = &'d DocEdit>) -> String {
    let mut edits: Vec<&DocEdit> = edits.collect();
    edits.sort_by_key(|e| e.range.start);
    let mut out = String::with_capacity(text.len() + 256);
    let mut at = 0;
    for e in edits {
        out.push_str(&text[at..e.range.start]);
        out.push_str(&e.text);
        at = e.range.end;
    }
    out.push_str(&text[at..]);
    out
}

fn looks_like_json(text: &str) -> bool {
    let body = text.strip_prefix('\u{feff}').unwrap_or(text);
    matches!(body.trim_start().as_bytes().first(), Some(b'{' | b'['))
}

/// Where a manifest's document lies in the file text. The loader shares the
/// text it was given, so the document is a subslice of it.
fn document_range(text: &str, manifest: &Manifest) -> Option<Range<usize>> {
    let doc = manifest.document_text();
    let start = (doc.as_ptr() as usize).checked_sub(text.as_ptr() as usize)?;
    let end = start.checked_add(doc.len())?;
    (end <= text.len() && text.get(start..end) == Some(doc)).then_some(start..end)
}

fn describe(op: &Op) -> (&'static str, Value) {
    match &op.action {
        Action::Set(v) => ("set", v.clone()),
        Action::Append(v) => ("append", v.clone()),
    }
}

fn object_fix(manifest: &Manifest, p: Planned, found: &[Finding]) -> ObjectFix {
    let view = manifest.view();
    let fixed = p
        .changes
        .iter()
        .map(|c| {
            let (action, value) = describe(&c.op);
            AppliedFix {
                check_id: c.check_id.clone(),
                subject: c.subject.clone(),
                path: c.op.path.clone(),
                action,
                value,
                line: manifest.locate(&c.op.path).map(|pos| pos.line),
                note: c.note.clone(),
            }
        })
        .collect();
    let mut not_fixed: Vec<NotFixed> =
        found
            .iter()
            .filter(|f| !f.is_suppressed())
            .map(|f| {
                let id = f.check_id();
                let mut reasons: Vec<String> = p
                    .refusals
                    .iter()
                    .filter(|r| r.check_id == id)
                    .map(|r| match r.subject.as_str() {
                        "" => r.reason.clone(),
                        subject => format!("{subject}: {}", r.reason),
                    })
                    .collect();
                reasons.extend(p.failed.iter().filter(|(c, _)| c.check_id == id).map(
                    |(c, why)| format!("{}: could not edit the text safely ({why})", c.subject),
                ));
                reasons.dedup();
                let reason = if reasons.is_empty() {
                    no_remedy_reason(id).to_owned()
                } else {
                    reasons.join("; ")
                };
                let position = manifest.locate(&f.path);
                NotFixed {
                    check_id: id.to_owned(),
                    severity: f.severity,
                    message: f.message.clone(),
                    path: f.path.clone(),
                    line: position.map(|pos| pos.line),
                    reason,
                    how_to_fix: f.check.fix.to_string(),
                }
            })
            .collect();
    // Most severe first; within a severity, in the order the checks ran.
    not_fixed.sort_by_key(|n| std::cmp::Reverse(n.severity));
    ObjectFix {
        document: manifest.document,
        list_item: manifest.list_item,
        line: manifest.first_line(),
        api_version: view.as_ref().map_or("", |v| v.api_version).to_owned(),
        kind: view.as_ref().map_or("", |v| v.kind).to_owned(),
        namespace: view.as_ref().and_then(|v| v.namespace).map(str::to_owned),
        name: view.as_ref().map_or("", |v| v.name).to_owned(),
        fixed,
        not_fixed,
        error: p.error,
    }
}

#[cfg(test)]
mod tests;

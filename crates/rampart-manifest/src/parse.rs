//! From a file's text to manifests: documents, `List` expansion, and the
//! checks that decide what counts as a Kubernetes object.

use std::fmt;
use std::ops::Range;
use std::sync::{Arc, OnceLock};

use rampart_core::kinds::{KindStatus, is_built_in_group, kind_status, suggested_api_version};
use rampart_core::object::group_of;
use rampart_core::{FieldPath, ObjectView};
use rayon::prelude::*;
use serde_json::Value;

use crate::decode::{Decoded, Failure, decode_json, decode_yaml};
use crate::limits::Limits;
use crate::locate::prefixed;
use crate::split::{Chunk, json_chunks, line_col, looks_like_json, yaml_chunks};
use crate::{InputIssue, IssueKind, LineIndex, Position};

/// The text of one file or stream, shared by every manifest read from it.
#[derive(Clone)]
pub struct Source {
    name: Arc<str>,
    text: Arc<str>,
    /// Where invalid UTF-8 was replaced by U+FFFD: (offset in `text`, offset
    /// in the original bytes), so that only the documents holding it are lost.
    invalid_utf8: Arc<[(usize, usize)]>,
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Source")
            .field("name", &self.name)
            .field("bytes", &self.text.len())
            .field("invalid_utf8", &self.invalid_utf8.len())
            .finish()
    }
}

impl Source {
    /// A source from text that is already UTF-8.
    pub fn new(name: impl Into<Arc<str>>, text: impl Into<Arc<str>>) -> Self {
        Self {
            name: name.into(),
            text: text.into(),
            invalid_utf8: Arc::new([]),
        }
    }

    /// A source from raw bytes. Invalid UTF-8 is remembered and reported per
    /// document by [`parse_source`]; UTF-16 (recognised by its byte order
    /// mark) is refused as a whole.
    pub fn from_bytes(name: impl Into<Arc<str>>, bytes: Vec<u8>) -> Result<Self, InputIssue> {
        let name = name.into();
        if bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF]) {
            return Err(InputIssue::new(
                IssueKind::Encoding,
                &*name,
                "the file is UTF-16; kubectl reads only UTF-8, so convert it",
            )
            .at(1, 1));
        }
        let bytes = match String::from_utf8(bytes) {
            Ok(text) => return Ok(Self::new(name, text)),
            Err(e) => e.into_bytes(),
        };
        let mut text = String::with_capacity(bytes.len() + 16);
        let mut invalid = Vec::new();
        let mut original = 0;
        for chunk in bytes.utf8_chunks() {
            text.push_str(chunk.valid());
            original += chunk.valid().len();
            if !chunk.invalid().is_empty() {
                invalid.push((text.len(), original));
                text.push(char::REPLACEMENT_CHARACTER);
                original += chunk.invalid().len();
            }
        }
        Ok(Self {
            name,
            text: text.into(),
            invalid_utf8: invalid.into(),
        })
    }

    /// Display name: the path as given, or `-` for standard input.
    pub fn name(&self) -> &Arc<str> {
        &self.name
    }

    pub fn text(&self) -> &str {
        &self.text
    }
}

/// One document of a source, shared by the manifests read from it (all the
/// items of a `List`), so its line index is built at most once.
struct Document {
    text: Arc<str>,
    range: Range<usize>,
    first_line: usize,
    /// First line that is neither blank nor a comment: where the object starts.
    content_line: usize,
    index: OnceLock<LineIndex>,
}

// By hand, so that debugging a manifest does not print its whole file.
impl fmt::Debug for Document {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Document")
            .field("range", &self.range)
            .field("first_line", &self.first_line)
            .field("content_line", &self.content_line)
            .field("indexed", &self.index.get().is_some())
            .finish()
    }
}

impl Document {
    fn text(&self) -> &str {
        &self.text[self.range.clone()]
    }

    fn line_index(&self) -> &LineIndex {
        self.index
            .get_or_init(|| LineIndex::build(self.text(), self.first_line))
    }

    fn locate(&self, list_item: Option<usize>, path: &FieldPath) -> Option<Position> {
        self.locate_all(list_item, std::slice::from_ref(path))
            .pop()
            .flatten()
    }

    /// A `List` keeps one index for all its items, built once; a plain document
    /// is indexed just along the wanted paths each time, which is cheaper than
    /// indexing (and keeping) every field of every document with findings.
    fn locate_all(&self, list_item: Option<usize>, paths: &[FieldPath]) -> Vec<Option<Position>> {
        match list_item {
            Some(_) => {
                let index = self.line_index();
                paths
                    .iter()
                    .map(|p| index.locate(&prefixed(list_item, p)))
                    .collect()
            }
            None => {
                let index = LineIndex::build_for(self.text(), self.first_line, paths);
                paths.iter().map(|p| index.locate(p)).collect()
            }
        }
    }

    /// Where an issue about `path` points; the document start when unknown.
    fn issue_position(&self, list_item: Option<usize>, path: &FieldPath) -> (usize, usize) {
        self.locate(list_item, path)
            .map_or((self.content_line, 1), |p| (p.line, p.column))
    }

    /// File position of a position relative to the document text.
    fn file_position(&self, (line, column): (usize, usize)) -> (usize, usize) {
        if line <= 1 {
            // Only a JSON value can start mid-line.
            let (_, start_column) = line_col(&self.text, self.range.start);
            (self.first_line, start_column + column - 1)
        } else {
            (self.first_line + line - 1, column)
        }
    }
}

/// One Kubernetes object read from a source.
///
/// Cloning is cheap apart from the value: the source name and text are shared.
#[derive(Clone, Debug)]
pub struct Manifest {
    /// Display name of the source: the path as given, or `-` for standard input.
    pub source: Arc<str>,
    /// 0-based index of the document among the documents of the source that
    /// have content (empty and comment-only documents are not counted), or of
    /// the value in a JSON stream.
    pub document: usize,
    /// Index in the `items` of a `kind: List` (or any `*List`) document.
    pub list_item: Option<usize>,
    /// The object, with string `apiVersion` and `kind`.
    pub value: Value,
    origin: Arc<Document>,
}

impl Manifest {
    /// A view for checks. `None` only if `value` was changed to lose its
    /// `apiVersion` or `kind`.
    pub fn view(&self) -> Option<ObjectView<'_>> {
        ObjectView::new(&self.value)
    }

    /// File line and column of a field of this object, or of its nearest
    /// existing ancestor when the field is absent.
    pub fn locate(&self, path: &FieldPath) -> Option<Position> {
        self.origin.locate(self.list_item, path)
    }

    /// [`locate`](Self::locate) for several fields at once, reading the
    /// document once.
    pub fn locate_all(&self, paths: &[FieldPath]) -> Vec<Option<Position>> {
        self.origin.locate_all(self.list_item, paths)
    }

    /// File line where the object starts.
    pub fn first_line(&self) -> usize {
        match self.list_item {
            None => self.origin.content_line,
            Some(_) => self
                .locate(&FieldPath::root())
                .map_or(self.origin.content_line, |p| p.line),
        }
    }

    /// The text of the document the object was read from (the whole `List`
    /// for a list item).
    pub fn document_text(&self) -> &str {
        self.origin.text()
    }
}

/// Everything read from a set of inputs.
#[derive(Clone, Debug, Default)]
pub struct LoadResult {
    /// Objects in input order: by file (directories in sorted path order),
    /// then document, then list item.
    pub manifests: Vec<Manifest>,
    /// Problems in the same order; the rest of the input was still read.
    pub issues: Vec<InputIssue>,
    /// Files and streams whose bytes were read (whatever they contained).
    pub files: usize,
}

impl LoadResult {
    pub(crate) fn issue(issue: InputIssue) -> Self {
        Self {
            issues: vec![issue],
            ..Self::default()
        }
    }

    /// Appends `other`, keeping order.
    pub fn extend(&mut self, other: LoadResult) {
        self.manifests.extend(other.manifests);
        self.issues.extend(other.issues);
        self.files += other.files;
    }

    /// Whether some input could not be scanned (warnings do not count).
    pub fn lost_input(&self) -> bool {
        self.issues.iter().any(|i| i.kind.lost_input())
    }
}

/// Reads every document of `source` into manifests and issues, in document
/// order. Documents are decoded in parallel.
pub fn parse_source(source: &Source, limits: &Limits) -> LoadResult {
    let json = looks_like_json(&source.text);
    let chunks = if json {
        json_chunks(&source.text, limits.max_depth)
    } else {
        yaml_chunks(&source.text)
    };
    let outcomes: Vec<LoadResult> = chunks
        .into_par_iter()
        .enumerate()
        .map(|(index, chunk)| read_document(source, limits, json, index, chunk))
        .collect();
    let mut result = LoadResult {
        files: 1,
        ..LoadResult::default()
    };
    for outcome in outcomes {
        result.manifests.extend(outcome.manifests);
        result.issues.extend(outcome.issues);
    }
    result
}

fn read_document(
    source: &Source,
    limits: &Limits,
    json: bool,
    index: usize,
    chunk: Chunk,
) -> LoadResult {
    let document = Arc::new(Document {
        text: Arc::clone(&source.text),
        range: chunk.range,
        first_line: chunk.first_line,
        content_line: chunk.content_line,
        index: OnceLock::new(),
    });
    let mut out = LoadResult::default();
    let issue = |kind: IssueKind, message: String, (line, column): (usize, usize)| {
        InputIssue::new(kind, &*source.name, message)
            .in_document(index)
            .at(line, column)
    };

    if let Some(&(at, original)) = source
        .invalid_utf8
        .iter()
        .find(|(at, _)| document.range.contains(at))
    {
        let position = line_col(&source.text, at);
        let message = format!(
            "invalid UTF-8 at byte offset {original} of the file; the document was not read"
        );
        out.issues
            .push(issue(IssueKind::Encoding, message, position));
        return out;
    }
    if let Some((line, _)) = chunk.bad_separator {
        let message = "text after `---` on the same line: kubectl accepts only a comment there, \
                       so it refuses this document"
            .to_owned();
        out.issues
            .push(issue(IssueKind::Syntax, message, (line, 4)));
        return out;
    }
    if let Some(at) = chunk.too_deep_at {
        let message = format!(
            "nested deeper than the limit of {} levels",
            limits.max_depth
        );
        out.issues.push(issue(
            IssueKind::TooDeep,
            message,
            line_col(&source.text, at),
        ));
        return out;
    }

    let decoded = if json {
        decode_json(document.text(), limits)
    } else {
        decode_yaml(document.text(), limits)
    };
    let failure_issue = |f: Failure| {
        let position =
            f.at.map_or((document.content_line, 1), |at| document.file_position(at));
        issue(f.kind, f.message, position)
    };
    let Decoded {
        mut value,
        duplicate_key,
    } = match decoded {
        Ok(decoded) => decoded,
        Err(failure) => {
            out.issues.push(failure_issue(failure));
            return out;
        }
    };
    out.issues.extend(duplicate_key.map(failure_issue));

    // kubectl skips documents that decode to nothing (`~`, a lone `...`).
    if value.is_null() {
        return out;
    }

    let mut accept = |value: Value, list_item: Option<usize>| match object_problem(&value) {
        None => out.manifests.push(Manifest {
            source: Arc::clone(&source.name),
            document: index,
            list_item,
            value,
            origin: Arc::clone(&document),
        }),
        Some(problem) => {
            let position = document.issue_position(list_item, &problem.path);
            let message = match list_item {
                Some(i) => format!("items[{i}]: {}", problem.message),
                None => problem.message,
            };
            out.issues.push(issue(problem.kind, message, position));
        }
    };
    if is_list(&value) {
        let items = match value.get_mut("items").map(Value::take) {
            Some(Value::Array(items)) => items,
            _ => Vec::new(),
        };
        for (i, item) in items.into_iter().enumerate() {
            accept(item, Some(i));
        }
    } else {
        accept(value, None);
    }
    out
}

/// `kind: List` and the typed lists (`PodList`, `DeploymentList`, a custom
/// `CertificateList`) that `kubectl get -o yaml` prints: their items are the objects.
fn is_list(value: &Value) -> bool {
    let kind_is_list = value
        .get("kind")
        .and_then(Value::as_str)
        .is_some_and(|k| k.ends_with("List"));
    kind_is_list && matches!(value.get("items"), Some(Value::Array(_) | Value::Null))
}

struct Problem {
    kind: IssueKind,
    message: String,
    /// The field the problem is about, for its position.
    path: FieldPath,
}

/// Why a value is not an object the scanner can check, if it is not.
fn object_problem(value: &Value) -> Option<Problem> {
    let not_an_object = |message: String, path: FieldPath| {
        Some(Problem {
            kind: IssueKind::NotAnObject,
            message,
            path,
        })
    };
    let Some(map) = value.as_object() else {
        let what = match value {
            Value::Array(_) => "a sequence",
            Value::String(_) => "a string",
            Value::Number(_) => "a number",
            Value::Bool(_) => "a boolean",
            Value::Null | Value::Object(_) => "empty",
        };
        return not_an_object(
            format!(
                "the document is {what}, not a Kubernetes object (a mapping with apiVersion and kind)"
            ),
            FieldPath::root(),
        );
    };
    let mut fields = [("apiVersion", ""), ("kind", "")];
    for (name, text) in &mut fields {
        match map.get(*name) {
            Some(Value::String(s)) if !s.is_empty() => *text = s,
            Some(Value::String(_)) | None | Some(Value::Null) => {
                return not_an_object(
                    format!("not a Kubernetes object: `{name}` is missing"),
                    FieldPath::root(),
                );
            }
            Some(_) => {
                return not_an_object(
                    format!("not a Kubernetes object: `{name}` is not a string"),
                    FieldPath::root().key(*name),
                );
            }
        }
    }
    let [(_, api_version), (_, kind)] = fields;
    let group = group_of(api_version);
    if !is_built_in_group(group) {
        // A custom resource: readable, though no check will match it.
        return None;
    }
    let message = match kind_status(group, kind) {
        KindStatus::BuiltIn => return None,
        KindStatus::WrongGroup(groups) => {
            let suggestions: Vec<String> =
                groups.iter().map(|g| suggested_api_version(g)).collect();
            let path = FieldPath::root().key("apiVersion");
            return Some(Problem {
                kind: IssueKind::UnknownKind,
                message: format!(
                    "apiVersion {api_version} does not serve kind {kind}; use apiVersion {}",
                    suggestions.join(" or ")
                ),
                path,
            });
        }
        KindStatus::Unknown => format!(
            "unknown kind {kind:?} in apiVersion {api_version}: the API server does not serve it, \
             and a custom resource cannot use this built-in group; check the spelling"
        ),
    };
    Some(Problem {
        kind: IssueKind::UnknownKind,
        message,
        path: FieldPath::root().key("kind"),
    })
}

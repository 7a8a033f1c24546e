//! Applies [`Op`]s to the text of a YAML or JSON document by inserting and
//! replacing text at the positions the parser reports, so that everything
//! outside the edited spots (comments, key order, quoting, blank lines,
//! anchors, line endings) stays byte for byte.
//!
//! Each operation re-parses the text it edits, so operations compose (the
//! second of two fixes under a new `securityContext` finds the mapping the
//! first one created). What the editor does:
//!
//! - **Block mapping, key missing**: a new `key: value` line at the
//!   indentation of the mapping's keys, after its last entry (before any
//!   comment or blank line that follows it), or next to a related key
//!   ([`anchors`]: `imagePullPolicy` after `image`, a pod's `securityContext`
//!   before `containers`). A new mapping or sequence value is written in block
//!   style with the file's indentation step and sequence style ([`Style`]).
//! - **Flow mapping or sequence** (`{cpu: 100m}`, `[ALL]`, and all of JSON):
//!   the entry or item is added inside the brackets, on the same line when the
//!   collection is on one line, else on a new line at the entries'
//!   indentation; values are written in flow style (JSON in a JSON document).
//! - **Block sequence**: a new `- item` line after the last item, at the
//!   items' dash column.
//! - **Scalar present**: replaced in place; `key:`, `key: ~` and `key: null`
//!   count as absent when a mapping is needed under them, and so does an
//!   empty `key: {}` (as `kubectl get -o yaml` writes `resources: {}`), which
//!   is rewritten in the layout around it.
//! - **Refused**: aliases, anchors that an alias refers to, merge keys (`<<`),
//!   complex keys, block scalars (`|`, `>`) and anything else that does not
//!   fit; the caller leaves such a document unedited.

mod render;
mod style;
pub(crate) mod tree;

use std::fmt;

use rampart_core::Segment;
use serde_json::Value;

pub use style::Style;
pub(crate) use style::StyleVotes;

use crate::op::{Action, Op};
use render::{block_item, block_suffix, flow, flow_pretty, key_text, scalar};
use tree::{Entry, Kind, Node, Tree};

/// Why an operation was not applied to a document's text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EditError {
    /// The text does not parse.
    Parse(String),
    /// The text is valid but written in a way the editor does not change.
    Unsupported(String),
    /// The path does not fit the document (a scalar where a mapping is needed).
    Path(String),
}

impl fmt::Display for EditError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EditError::Parse(m) => write!(f, "the text does not parse: {m}"),
            EditError::Unsupported(m) => write!(f, "not edited: {m}"),
            EditError::Path(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for EditError {}

/// Where a new key goes relative to the keys already in its mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Anchor {
    After(&'static str),
    Before(&'static str),
}

/// Kubernetes-aware placement of new keys; the first anchor whose key exists
/// wins, otherwise the key goes at the end of its mapping.
pub fn anchors(key: &str) -> &'static [Anchor] {
    use Anchor::*;
    match key {
        // Pod level: next to the service account, before the container lists.
        // In a container, none of these keys exist and the key goes last.
        "automountServiceAccountToken" => &[
            After("serviceAccountName"),
            After("serviceAccount"),
            Before("initContainers"),
            Before("containers"),
        ],
        "securityContext" => &[Before("initContainers"), Before("containers")],
        "imagePullPolicy" => &[After("image")],
        "requests" => &[Before("limits")],
        _ => &[],
    }
}

/// Applies `op` to `text`, one YAML document (or one JSON value).
pub fn apply(text: &str, op: &Op, style: &Style) -> Result<String, EditError> {
    let tree = Tree::parse(text)?;
    let editor = Editor {
        text,
        tree: &tree,
        style,
    };
    let (range, replacement) = editor.plan(op)?;
    let mut out = String::with_capacity(text.len() + replacement.len());
    out.push_str(&text[..range.0]);
    out.push_str(&replacement);
    out.push_str(&text[range.1..]);
    Ok(out)
}

struct Editor<'a> {
    text: &'a str,
    tree: &'a Tree,
    style: &'a Style,
}

/// The byte range replaced and its replacement.
type Splice = ((usize, usize), String);

impl Editor<'_> {
    fn plan(&self, op: &Op) -> Result<Splice, EditError> {
        let segments = op.path.segments();
        let mut node = &self.tree.root;
        // The entry whose value `node` is, and the collection holding it.
        let mut entry: Option<&Entry> = None;
        let mut parent: Option<&Node> = None;
        for (depth, segment) in segments.iter().enumerate() {
            self.check_shared(node)?;
            match segment {
                Segment::Key(key) => match &node.kind {
                    Kind::Map { entries, .. } => {
                        // A key written in the mapping wins over a merged one;
                        // a missing key may come from the merge.
                        if node.entry(key).is_none() && entries.iter().any(|e| e.key == "<<") {
                            return Err(EditError::Unsupported(
                                "the mapping uses a YAML merge key (<<)".to_owned(),
                            ));
                        }
                        match node.entry(key) {
                            Some(e)
                                if depth + 1 < segments.len() && is_empty_flow_map(&e.value) =>
                            {
                                // `key: {}` is rewritten whole, so what goes in
                                // it is laid out like its surroundings.
                                self.check_shared(&e.value)?;
                                let value = op.value_from(depth + 1).ok_or_else(|| {
                                    EditError::Path(format!("{}: a list item is missing", op.path))
                                })?;
                                return self.replace_empty(node, e, &value);
                            }
                            Some(e) => {
                                parent = Some(node);
                                entry = Some(e);
                                node = &e.value;
                            }
                            None => {
                                let value = op.value_from(depth + 1).ok_or_else(|| {
                                    EditError::Path(format!("{}: a list item is missing", op.path))
                                })?;
                                return self.insert(node, key, &value);
                            }
                        }
                    }
                    Kind::Scalar { null: true, .. } => {
                        let value = op.value_from(depth).ok_or_else(|| {
                            EditError::Path(format!("{}: a list item is missing", op.path))
                        })?;
                        return self.replace(node, entry, parent, &value);
                    }
                    _ => {
                        return Err(EditError::Path(format!(
                            "{}: a parent is not a mapping",
                            op.path
                        )));
                    }
                },
                Segment::Index(i) => {
                    let item = node.items().get(*i).ok_or_else(|| {
                        EditError::Path(format!("{}: no item {i} in the list", op.path))
                    })?;
                    parent = Some(node);
                    entry = None;
                    node = item;
                }
            }
        }
        self.check_shared(node)?;
        match &op.action {
            Action::Set(value) => self.replace(node, entry, parent, value),
            Action::Append(value) => match &node.kind {
                Kind::Seq { flow: true, .. } => self.append_flow(node, value),
                Kind::Seq { flow: false, .. } => self.append_block(node, value),
                Kind::Scalar { null: true, .. } => {
                    self.replace(node, entry, parent, &Value::Array(vec![value.clone()]))
                }
                _ => Err(EditError::Path(format!("{}: not a list", op.path))),
            },
        }
    }

    /// Edits must not reach text that other places share through an alias.
    fn check_shared(&self, node: &Node) -> Result<(), EditError> {
        if matches!(node.kind, Kind::Alias) {
            return Err(EditError::Unsupported(
                "the value is a YAML alias (*name)".to_owned(),
            ));
        }
        if node.anchor != 0 && self.tree.aliased.contains(&node.anchor) {
            return Err(EditError::Unsupported(
                "the value has a YAML anchor that aliases refer to".to_owned(),
            ));
        }
        Ok(())
    }

    fn nl(&self) -> &'static str {
        self.style.newline
    }

    // ------------------------------------------------------------ replacing

    fn replace(
        &self,
        node: &Node,
        entry: Option<&Entry>,
        parent: Option<&Node>,
        value: &Value,
    ) -> Result<Splice, EditError> {
        let Kind::Scalar { style, empty, .. } = &node.kind else {
            return Err(EditError::Unsupported(
                "replacing a whole mapping or sequence".to_owned(),
            ));
        };
        use serde_saphyr::granit_parser::ScalarStyle;
        if matches!(style, ScalarStyle::Literal | ScalarStyle::Folded) {
            return Err(EditError::Unsupported("a block scalar (| or >)".to_owned()));
        }
        let json = self.style.json;
        let is_collection = value.is_object() || value.is_array();
        if json || parent.is_some_and(Node::is_flow) {
            if *empty {
                return Err(EditError::Unsupported(
                    "an empty value in a flow collection".to_owned(),
                ));
            }
            let text = match (is_collection, entry) {
                (true, Some(e)) if parent.is_some_and(is_multiline) => {
                    flow_pretty(value, self.column_of(e.key_start), self.style)
                }
                (true, _) => flow(value, json),
                (false, _) => scalar(value, json),
            };
            return Ok(((node.start, node.end), text));
        }
        // Block context: the value follows `key:`.
        let Some(entry) = entry else {
            return Err(EditError::Unsupported(
                "a value that is not under a key".to_owned(),
            ));
        };
        let colon = self.colon_after(entry)?;
        let end = if *empty { colon + 1 } else { node.end };
        let text = if is_collection {
            block_suffix(value, entry.key_col, self.style)
        } else {
            format!(" {}", scalar(value, json))
        };
        Ok(((colon + 1, end), text))
    }

    /// Replaces the empty flow mapping `{}` of `entry` (in `parent`) with
    /// `value`: in block style under a block mapping, else in flow style,
    /// over several lines when the parent spreads over several lines.
    fn replace_empty(
        &self,
        parent: &Node,
        entry: &Entry,
        value: &Value,
    ) -> Result<Splice, EditError> {
        let node = &entry.value;
        if parent.is_flow() || self.style.json {
            let text = if is_multiline(parent) {
                flow_pretty(value, self.column_of(entry.key_start), self.style)
            } else {
                flow(value, self.style.json)
            };
            return Ok(((node.start, node.end), text));
        }
        let colon = self.colon_after(entry)?;
        // Only whitespace between the colon and `{}`: no anchor or tag to keep.
        if !self.text[colon + 1..node.start].trim().is_empty() {
            let text = flow(value, false);
            return Ok(((node.start, node.end), text));
        }
        let text = block_suffix(value, self.column_of(entry.key_start), self.style);
        Ok(((colon + 1, node.end), text))
    }

    /// The `:` that ends a block mapping key.
    fn colon_after(&self, entry: &Entry) -> Result<usize, EditError> {
        let rest = &self.text[entry.key_end..];
        let skipped = rest.len() - rest.trim_start_matches([' ', '\t']).len();
        if rest[skipped..].starts_with(':') {
            Ok(entry.key_end + skipped)
        } else {
            Err(EditError::Unsupported(format!(
                "no `:` after the key {:?}",
                entry.key
            )))
        }
    }

    // ------------------------------------------------------------ inserting

    fn insert(&self, map: &Node, key: &str, value: &Value) -> Result<Splice, EditError> {
        match &map.kind {
            Kind::Map { flow: true, .. } => self.insert_flow(map, key, value),
            Kind::Map { flow: false, .. } => self.insert_block(map, key, value),
            _ => Err(EditError::Path("not a mapping".to_owned())),
        }
    }

    fn insert_block(&self, map: &Node, key: &str, value: &Value) -> Result<Splice, EditError> {
        let entries = map.entries();
        let first = entries
            .first()
            .ok_or_else(|| EditError::Unsupported("an empty block mapping".to_owned()))?;
        let col = self.column_of(first.key_start);
        let mut at = None;
        for anchor in anchors(key) {
            match *anchor {
                Anchor::After(k) => {
                    if let Some(e) = map.entry(k) {
                        at = Some(self.line_end_after(e.value.end));
                    }
                }
                Anchor::Before(k) => {
                    if let Some(e) = map.entry(k)
                        && self.first_on_line(e.key_start)
                    {
                        at = Some(self.leading_comments_start(e.key_start));
                    }
                }
            }
            if at.is_some() {
                break;
            }
        }
        let at = at.unwrap_or_else(|| self.line_end_after(map.end));
        let mut text = String::new();
        if at == self.text.len() && !self.text.is_empty() && !self.text.ends_with('\n') {
            text.push_str(self.nl());
        }
        text.push_str(&" ".repeat(col));
        text.push_str(&key_text(key, false));
        text.push(':');
        text.push_str(&block_suffix(value, col, self.style));
        text.push_str(self.nl());
        Ok(((at, at), text))
    }

    fn insert_flow(&self, map: &Node, key: &str, value: &Value) -> Result<Splice, EditError> {
        let json = self.style.json;
        let Kind::Map { entries, .. } = &map.kind else {
            unreachable!("insert_flow is only called on mappings");
        };
        if entries.is_empty() {
            let text = format!("{}: {}", key_text(key, json), flow(value, json));
            return Ok(((map.start + 1, map.start + 1), text));
        }
        let multiline = is_multiline(map);
        let mut target = None;
        for anchor in anchors(key) {
            target = match *anchor {
                Anchor::After(k) => map.entry(k).map(|e| (e, true)),
                Anchor::Before(k) => map.entry(k).map(|e| (e, false)),
            };
            if target.is_some() {
                break;
            }
        }
        let (entry, after) = target.unwrap_or((entries.last().expect("not empty"), true));
        let col = self.column_of(entry.key_start);
        let rendered = if multiline {
            flow_pretty(value, col, self.style)
        } else {
            flow(value, json)
        };
        let new_entry = format!("{}: {rendered}", key_text(key, json));
        let separator = if multiline {
            format!(",{}{}", self.nl(), " ".repeat(col))
        } else {
            ", ".to_owned()
        };
        Ok(if after {
            let at = entry.value.end;
            ((at, at), format!("{separator}{new_entry}"))
        } else {
            let at = entry.key_start;
            ((at, at), format!("{new_entry}{separator}"))
        })
    }

    fn append_flow(&self, seq: &Node, value: &Value) -> Result<Splice, EditError> {
        let json = self.style.json;
        let Kind::Seq { items, .. } = &seq.kind else {
            unreachable!("append_flow is only called on sequences");
        };
        let Some(last) = items.last() else {
            return Ok(((seq.start + 1, seq.start + 1), flow(value, json)));
        };
        let multiline = is_multiline(seq);
        let text = if multiline {
            let col = self.column_of(last.start);
            format!(
                ",{}{}{}",
                self.nl(),
                " ".repeat(col),
                flow_pretty(value, col, self.style)
            )
        } else {
            format!(", {}", flow(value, json))
        };
        Ok(((last.end, last.end), text))
    }

    fn append_block(&self, seq: &Node, value: &Value) -> Result<Splice, EditError> {
        let first = seq
            .items()
            .first()
            .ok_or_else(|| EditError::Unsupported("an empty block sequence".to_owned()))?;
        let (dash, content) = self.dash_columns(first)?;
        let at = self.line_end_after(seq.end);
        let mut text = String::new();
        if at == self.text.len() && !self.text.ends_with('\n') {
            text.push_str(self.nl());
        }
        text.push_str(&" ".repeat(dash));
        text.push('-');
        text.push_str(&" ".repeat(content.saturating_sub(dash + 1).max(1)));
        text.push_str(&block_item(
            value,
            dash + (content - dash).max(2),
            self.style,
        ));
        text.push_str(self.nl());
        Ok(((at, at), text))
    }

    // ------------------------------------------------------------ positions

    fn line_start(&self, at: usize) -> usize {
        self.text[..at].rfind('\n').map_or(0, |i| i + 1)
    }

    /// Column in characters of a byte offset.
    fn column_of(&self, at: usize) -> usize {
        self.text[self.line_start(at)..at].chars().count()
    }

    fn first_on_line(&self, at: usize) -> bool {
        self.text[self.line_start(at)..at]
            .chars()
            .all(|c| c == ' ' || c == '\t')
    }

    /// The start of the line after the one holding `at`, or `at` if it starts
    /// a line already (after a block scalar).
    fn line_end_after(&self, at: usize) -> usize {
        if at > 0 && self.text.as_bytes()[at - 1] == b'\n' {
            return at;
        }
        self.text[at..]
            .find('\n')
            .map_or(self.text.len(), |i| at + i + 1)
    }

    /// The start of the comment lines directly above the line of `at` (they
    /// describe that key), or of that line itself.
    fn leading_comments_start(&self, at: usize) -> usize {
        let mut start = self.line_start(at);
        while start > 0 {
            let previous = self.line_start(start - 1);
            if !self.text[previous..start].trim_start().starts_with('#') {
                break;
            }
            start = previous;
        }
        start
    }

    /// Columns of the dash and of the content of a block sequence item.
    fn dash_columns(&self, item: &Node) -> Result<(usize, usize), EditError> {
        let line = self.line_start(item.start);
        let prefix = &self.text[line..item.start];
        let dash = prefix
            .rfind('-')
            .ok_or_else(|| EditError::Unsupported("a sequence item below its dash".to_owned()))?;
        Ok((prefix[..dash].chars().count(), prefix.chars().count()))
    }
}

fn is_empty_flow_map(node: &Node) -> bool {
    matches!(&node.kind, Kind::Map { flow: true, entries, .. } if entries.is_empty())
}

/// Whether a flow collection is laid out over several lines (as pretty JSON is).
fn is_multiline(node: &Node) -> bool {
    match &node.kind {
        Kind::Map {
            flow: true,
            entries,
            close_line,
        } => *close_line != node.line || entries.first().is_some_and(|e| e.key_line != node.line),
        Kind::Seq {
            flow: true,
            items,
            close_line,
        } => *close_line != node.line || items.first().is_some_and(|i| i.line != node.line),
        _ => false,
    }
}

#[cfg(test)]
mod tests;

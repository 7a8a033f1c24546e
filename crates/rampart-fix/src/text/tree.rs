//! A positional tree of one YAML (or JSON) document, built from the same
//! parser events the loader reads, so every node knows its byte range.

use std::collections::HashSet;

use serde_saphyr::granit_parser::{Event, Parser, ScalarStyle, Span};

use super::EditError;

/// One node with where it is in the document text.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub kind: Kind,
    /// Byte offset where the node starts: the scalar's first character (its
    /// opening quote), a flow collection's bracket, a block collection's first
    /// key or item.
    pub start: usize,
    /// Byte offset just after the node's content: after the scalar, after a
    /// flow collection's closing bracket, after the last descendant of a block
    /// collection (so it never covers comments or blank lines that follow).
    pub end: usize,
    /// 0-based column, in characters, of `start`.
    pub col: usize,
    /// 1-based line of `start`.
    pub line: usize,
    /// The anchor defined on the node (`&name`), 0 when none.
    pub anchor: usize,
}

#[derive(Debug, Clone)]
pub(crate) enum Kind {
    Scalar {
        style: ScalarStyle,
        /// Whether the scalar is the empty plain scalar of `key:` with no value.
        empty: bool,
        /// Whether the scalar is a plain null (`~`, `null`, or nothing).
        null: bool,
    },
    Alias,
    Map {
        flow: bool,
        entries: Vec<Entry>,
        /// 1-based line of the closing `}` of a flow mapping.
        close_line: usize,
    },
    Seq {
        flow: bool,
        items: Vec<Node>,
        close_line: usize,
    },
}

/// One `key: value` pair of a mapping.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// The key's text after unquoting.
    pub key: String,
    pub key_start: usize,
    pub key_end: usize,
    pub key_col: usize,
    pub key_line: usize,
    pub value: Node,
}

impl Node {
    pub fn is_flow(&self) -> bool {
        matches!(
            self.kind,
            Kind::Map { flow: true, .. } | Kind::Seq { flow: true, .. }
        )
    }

    /// The last entry with `key` (the one the loader keeps when a key repeats).
    pub fn entry(&self, key: &str) -> Option<&Entry> {
        match &self.kind {
            Kind::Map { entries, .. } => entries.iter().rev().find(|e| e.key == key),
            _ => None,
        }
    }

    pub fn entries(&self) -> &[Entry] {
        match &self.kind {
            Kind::Map { entries, .. } => entries,
            _ => &[],
        }
    }

    pub fn items(&self) -> &[Node] {
        match &self.kind {
            Kind::Seq { items, .. } => items,
            _ => &[],
        }
    }
}

/// A parsed document and the anchors its aliases refer to.
#[derive(Debug)]
pub(crate) struct Tree {
    pub root: Node,
    pub aliased: HashSet<usize>,
}

enum Frame {
    Map {
        node: Node,
        entries: Vec<Entry>,
        /// The key read, waiting for its value.
        key: Option<(String, Span)>,
    },
    Seq {
        node: Node,
        items: Vec<Node>,
    },
}

fn offset(marker: &serde_saphyr::granit_parser::Marker) -> Result<usize, EditError> {
    marker
        .byte_offset()
        .ok_or_else(|| EditError::Parse("the parser gave no byte offsets".to_owned()))
}

fn leaf(kind: Kind, span: &Span, anchor: usize) -> Result<Node, EditError> {
    Ok(Node {
        kind,
        start: offset(&span.start)?,
        end: offset(&span.end)?,
        col: span.start.col(),
        line: span.start.line(),
        anchor,
    })
}

impl Tree {
    /// Parses one document. Complex keys, several documents and parse errors
    /// are refused: such text is not edited.
    pub fn parse(text: &str) -> Result<Self, EditError> {
        let mut stack: Vec<Frame> = Vec::new();
        let mut root: Option<Node> = None;
        let mut aliased = HashSet::new();
        for event in Parser::new_from_str(text) {
            let (event, span) = event.map_err(|e| EditError::Parse(e.to_string()))?;
            let node = match event {
                Event::Scalar(value, style, anchor, _) => {
                    // The key of a mapping is kept as text, not as a node.
                    if let Some(Frame::Map { key, .. }) = stack.last_mut()
                        && key.is_none()
                    {
                        *key = Some((value.into_owned(), span));
                        continue;
                    }
                    let start = offset(&span.start)?;
                    let plain = style == ScalarStyle::Plain;
                    let empty = plain && start == offset(&span.end)?;
                    let null = plain && matches!(&*value, "" | "~" | "null" | "Null" | "NULL");
                    leaf(Kind::Scalar { style, empty, null }, &span, anchor)?
                }
                Event::Alias(id) => {
                    aliased.insert(id);
                    if let Some(Frame::Map { key: None, .. }) = stack.last() {
                        return Err(EditError::Unsupported("an alias used as a key".to_owned()));
                    }
                    leaf(Kind::Alias, &span, 0)?
                }
                Event::MappingStart(style, anchor, _) | Event::SequenceStart(style, anchor, _) => {
                    if let Some(Frame::Map { key: None, .. }) = stack.last() {
                        return Err(EditError::Unsupported("a complex mapping key".to_owned()));
                    }
                    let flow = style == serde_saphyr::granit_parser::StructureStyle::Flow;
                    let is_map = matches!(event, Event::MappingStart(..));
                    let kind = if is_map {
                        Kind::Map {
                            flow,
                            entries: Vec::new(),
                            close_line: 0,
                        }
                    } else {
                        Kind::Seq {
                            flow,
                            items: Vec::new(),
                            close_line: 0,
                        }
                    };
                    let node = leaf(kind, &span, anchor)?;
                    stack.push(if is_map {
                        Frame::Map {
                            node,
                            entries: Vec::new(),
                            key: None,
                        }
                    } else {
                        Frame::Seq {
                            node,
                            items: Vec::new(),
                        }
                    });
                    continue;
                }
                Event::MappingEnd | Event::SequenceEnd => {
                    let frame = stack
                        .pop()
                        .ok_or_else(|| EditError::Parse("unbalanced collection".to_owned()))?;
                    let end_offset = offset(&span.end)?;
                    let close = span.start.line();
                    match frame {
                        Frame::Map {
                            mut node,
                            entries,
                            key,
                        } => {
                            if key.is_some() {
                                return Err(EditError::Parse("a key without a value".to_owned()));
                            }
                            let flow = node.is_flow();
                            node.end = if flow {
                                end_offset
                            } else {
                                entries.last().map_or(node.start, |e| e.value.end)
                            };
                            node.kind = Kind::Map {
                                flow,
                                entries,
                                close_line: close,
                            };
                            node
                        }
                        Frame::Seq { mut node, items } => {
                            let flow = node.is_flow();
                            node.end = if flow {
                                end_offset
                            } else {
                                items.last().map_or(node.start, |i| i.end)
                            };
                            node.kind = Kind::Seq {
                                flow,
                                items,
                                close_line: close,
                            };
                            node
                        }
                    }
                }
                Event::DocumentStart(..) if root.is_some() => {
                    return Err(EditError::Unsupported(
                        "more than one YAML document".to_owned(),
                    ));
                }
                _ => continue,
            };
            match stack.last_mut() {
                None => root = Some(node),
                Some(Frame::Seq { items, .. }) => items.push(node),
                Some(Frame::Map { entries, key, .. }) => {
                    let (key, span) = key
                        .take()
                        .ok_or_else(|| EditError::Parse("a value without a key".to_owned()))?;
                    entries.push(Entry {
                        key,
                        key_start: offset(&span.start)?,
                        key_end: offset(&span.end)?,
                        key_col: span.start.col(),
                        key_line: span.start.line(),
                        value: node,
                    });
                }
            }
        }
        let root = root.ok_or_else(|| EditError::Unsupported("an empty document".to_owned()))?;
        Ok(Self { root, aliased })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_and_flow_nodes_have_ranges() {
        let text = "a: 1\nb:\n  c: x # comment\n  d: [1, 2]\n# trailing\ne: {f: g}\n";
        let tree = Tree::parse(text).unwrap();
        let b = &tree.root.entry("b").unwrap().value;
        assert_eq!(&text[b.start..b.end], "c: x # comment\n  d: [1, 2]");
        let d = &b.entry("d").unwrap().value;
        assert_eq!(&text[d.start..d.end], "[1, 2]");
        assert!(d.is_flow());
        let e = &tree.root.entry("e").unwrap();
        assert_eq!((e.key_col, e.key_line), (0, 6));
        assert_eq!(&text[e.value.start..e.value.end], "{f: g}");
    }

    #[test]
    fn empty_values_and_aliases() {
        let text = "a:\nb: &x {c: 1}\nd: *x\n";
        let tree = Tree::parse(text).unwrap();
        let a = &tree.root.entry("a").unwrap().value;
        assert!(matches!(a.kind, Kind::Scalar { empty: true, .. }));
        assert!(
            tree.aliased
                .contains(&tree.root.entry("b").unwrap().value.anchor)
        );
        assert!(matches!(
            tree.root.entry("d").unwrap().value.kind,
            Kind::Alias
        ));
    }

    #[test]
    fn refuses_complex_keys_and_errors() {
        assert!(Tree::parse("? [a]\n: 1\n").is_err());
        assert!(Tree::parse("a: [1\n").is_err());
    }
}

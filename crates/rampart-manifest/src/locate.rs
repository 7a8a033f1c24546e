//! Maps field paths to line and column by replaying the parser's events.

use std::collections::{HashMap, HashSet};

use rampart_core::FieldPath;
use serde_saphyr::granit_parser::{Event, Parser};

/// A 1-based line and column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

/// Positions of every key and sequence item of one document, keyed by JSON pointer.
#[derive(Debug, Default)]
pub struct LineIndex {
    positions: HashMap<String, Position>,
}

enum Frame {
    Map {
        pointer: String,
        /// The key whose value comes next; `None` while a key is expected.
        key: Option<String>,
        /// Nesting depth of a complex (non-scalar) key being skipped.
        skipping: usize,
    },
    Seq {
        pointer: String,
        next: usize,
    },
    /// A container no wanted path goes through; `depth` counts open nodes.
    Skip {
        depth: usize,
    },
}

fn escape_into(out: &mut String, key: &str) {
    for c in key.chars() {
        match c {
            '~' => out.push_str("~0"),
            '/' => out.push_str("~1"),
            c => out.push(c),
        }
    }
}

impl LineIndex {
    /// Indexes `text`, a single YAML or JSON document. `first_line` is the
    /// 1-based line of the document's first line in its file. Parse errors stop
    /// the indexing; what was indexed up to there stays usable.
    pub fn build(text: &str, first_line: usize) -> Self {
        Self::build_filtered(text, first_line, None)
    }

    /// Indexes only what is needed to locate `paths`: their fields and
    /// ancestors. Subtrees off those paths are skipped without building
    /// pointers, which makes locating a few findings in a large document cheap.
    pub fn build_for<'p>(
        text: &str,
        first_line: usize,
        paths: impl IntoIterator<Item = &'p FieldPath>,
    ) -> Self {
        let mut wanted = HashSet::new();
        wanted.insert(String::new());
        for path in paths {
            let mut pointer = path.to_json_pointer();
            while !pointer.is_empty() && !wanted.contains(&pointer) {
                wanted.insert(pointer.clone());
                let cut = pointer.rfind('/').unwrap_or(0);
                pointer.truncate(cut);
            }
        }
        Self::build_filtered(text, first_line, Some(&wanted))
    }

    fn build_filtered(text: &str, first_line: usize, wanted: Option<&HashSet<String>>) -> Self {
        let is_wanted = |pointer: &str| wanted.is_none_or(|w| w.contains(pointer));
        let mut positions = HashMap::new();
        let mut stack: Vec<Frame> = Vec::new();
        let pos = |line: usize, col: usize| Position {
            line: first_line + line - 1,
            column: col + 1,
        };
        for event in Parser::new_from_str(text) {
            let Ok((event, span)) = event else { break };
            let here = pos(span.start.line(), span.start.col());
            let (opens, closes) = match &event {
                Event::MappingStart(..) | Event::SequenceStart(..) => (true, false),
                Event::MappingEnd | Event::SequenceEnd => (false, true),
                Event::Scalar(..) | Event::Alias(..) => (false, false),
                _ => continue,
            };
            if let Some(Frame::Skip { depth }) = stack.last_mut() {
                if opens {
                    *depth += 1;
                } else if closes {
                    *depth -= 1;
                    if *depth == 0 {
                        stack.pop();
                        value_done(&mut stack);
                    }
                }
                continue;
            }
            if closes {
                // Closing a complex key being skipped, or a container.
                if let Some(Frame::Map { skipping, .. }) = stack.last_mut()
                    && *skipping > 0
                {
                    *skipping -= 1;
                    continue;
                }
                stack.pop();
                value_done(&mut stack);
                continue;
            }
            // A node: a key, an item or a value.
            let child_pointer = match stack.last_mut() {
                None => Some(String::new()),
                Some(Frame::Map { skipping, .. }) if *skipping > 0 => {
                    if opens {
                        *skipping += 1;
                    }
                    continue;
                }
                Some(Frame::Map {
                    pointer,
                    key,
                    skipping,
                }) => match key {
                    None => {
                        if opens {
                            // Complex keys do not occur in Kubernetes objects; skip them.
                            *skipping = 1;
                            continue;
                        }
                        let name = match &event {
                            Event::Scalar(v, ..) => v.to_string(),
                            _ => String::new(),
                        };
                        let mut p = pointer.clone();
                        p.push('/');
                        escape_into(&mut p, &name);
                        if is_wanted(&p) {
                            positions.entry(p).or_insert(here);
                        }
                        *key = Some(name);
                        continue;
                    }
                    Some(k) => {
                        let mut p = pointer.clone();
                        p.push('/');
                        escape_into(&mut p, k);
                        Some(p)
                    }
                },
                Some(Frame::Seq { pointer, next }) => {
                    let p = format!("{pointer}/{next}");
                    if is_wanted(&p) {
                        positions.entry(p.clone()).or_insert(here);
                    }
                    Some(p)
                }
                Some(Frame::Skip { .. }) => unreachable!("skipped frames are handled above"),
            };
            let pointer = child_pointer.unwrap_or_default();
            if !is_wanted(&pointer) {
                if opens {
                    stack.push(Frame::Skip { depth: 1 });
                } else {
                    value_done(&mut stack);
                }
                continue;
            }
            if pointer.is_empty() {
                positions.entry(String::new()).or_insert(here);
            }
            match event {
                Event::MappingStart(..) => stack.push(Frame::Map {
                    pointer,
                    key: None,
                    skipping: 0,
                }),
                Event::SequenceStart(..) => stack.push(Frame::Seq { pointer, next: 0 }),
                _ => value_done(&mut stack),
            }
        }
        Self { positions }
    }

    /// Where `path` is, or where its nearest existing ancestor is when the
    /// field itself is absent (a missing `securityContext` points at its container).
    pub fn locate(&self, path: &FieldPath) -> Option<Position> {
        let mut pointer = path.to_json_pointer();
        loop {
            if let Some(p) = self.positions.get(&pointer) {
                return Some(*p);
            }
            let cut = pointer.rfind('/')?;
            pointer.truncate(cut);
        }
    }

    pub fn len(&self) -> usize {
        self.positions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.positions.is_empty()
    }
}

fn value_done(stack: &mut [Frame]) {
    match stack.last_mut() {
        Some(Frame::Map { key, .. }) => *key = None,
        Some(Frame::Seq { next, .. }) => *next += 1,
        Some(Frame::Skip { .. }) | None => {}
    }
}

/// Path segments as a pointer relative to a prefix, for manifests inside a List.
pub(crate) fn prefixed(prefix: Option<usize>, path: &FieldPath) -> FieldPath {
    match prefix {
        Some(i) => FieldPath::root().key("items").index(i).join(path),
        None => path.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "apiVersion: v1
kind: Pod
metadata:
  name: web
  annotations:
    a.b/c: x
spec:
  containers:
  - name: app
    image: nginx
    securityContext:
      privileged: true
  - {name: side, image: busybox}
";

    fn at(index: &LineIndex, path: &str) -> (usize, usize) {
        let p = index.locate(&FieldPath::parse(path)).unwrap();
        (p.line, p.column)
    }

    #[test]
    fn locates_keys_and_items() {
        let index = LineIndex::build(DOC, 1);
        assert_eq!(at(&index, "kind"), (2, 1));
        assert_eq!(at(&index, "spec.containers[0]"), (9, 5));
        assert_eq!(
            at(&index, "spec.containers[0].securityContext.privileged"),
            (12, 7)
        );
        assert_eq!(at(&index, "spec.containers[1].image"), (13, 18));
    }

    #[test]
    fn missing_fields_fall_back_to_the_nearest_ancestor() {
        let index = LineIndex::build(DOC, 1);
        assert_eq!(
            at(&index, "spec.containers[1].securityContext.runAsNonRoot"),
            (13, 5)
        );
    }

    #[test]
    fn keys_with_slashes_and_offsets() {
        let index = LineIndex::build(DOC, 10);
        let path = FieldPath::root()
            .key("metadata")
            .key("annotations")
            .key("a.b/c");
        assert_eq!(index.locate(&path).map(|p| p.line), Some(15));
    }

    #[test]
    fn targeted_index_locates_the_wanted_paths_like_the_full_one() {
        let full = LineIndex::build(DOC, 1);
        let paths = [
            FieldPath::parse("spec.containers[0].securityContext.privileged"),
            FieldPath::parse("spec.containers[1].securityContext.runAsNonRoot"),
            FieldPath::root()
                .key("metadata")
                .key("annotations")
                .key("a.b/c"),
        ];
        let targeted = LineIndex::build_for(DOC, 1, &paths);
        for p in &paths {
            assert_eq!(targeted.locate(p), full.locate(p), "{p}");
        }
        assert!(targeted.len() < full.len(), "skips what is not wanted");
        assert_eq!(
            targeted.locate(&FieldPath::parse("kind")).map(|p| p.line),
            Some(1),
            "falls back to the root"
        );
    }

    #[test]
    fn json_documents() {
        let index = LineIndex::build("{\"kind\": \"Pod\",\n \"spec\": {\"hostPID\": true}}", 1);
        assert_eq!(at(&index, "spec.hostPID"), (2, 11));
    }
}

//! The layout a file already uses, so new text looks like the rest.

use std::collections::HashMap;

use super::tree::{Kind, Node, Tree};

/// How new block collections are laid out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Style {
    /// Columns a nested mapping is indented by (2 or 4, usually).
    pub step: usize,
    /// Columns the dash of a block sequence is indented by relative to its
    /// key: 0 for `key:\n- item`, the step for `key:\n  - item`.
    pub seq_indent: usize,
    /// Columns from a dash to its item's content (2 for `- item`).
    pub item_indent: usize,
    /// `"\n"` or `"\r\n"`, as the file has it.
    pub newline: &'static str,
    /// The document is JSON: everything new is written as JSON.
    pub json: bool,
}

impl Default for Style {
    fn default() -> Self {
        Self {
            step: 2,
            seq_indent: 2,
            item_indent: 2,
            newline: "\n",
            json: false,
        }
    }
}

/// Layout evidence gathered over the documents of a file; the most common
/// value of each wins.
#[derive(Debug, Default)]
pub(crate) struct StyleVotes {
    step: HashMap<usize, usize>,
    seq_indent: HashMap<usize, usize>,
    item_indent: HashMap<usize, usize>,
    crlf: usize,
    lf: usize,
}

fn winner(votes: &HashMap<usize, usize>) -> Option<usize> {
    // Most votes; the smaller value on a tie, so the result is stable.
    votes
        .iter()
        .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
        .map(|(v, _)| *v)
}

impl StyleVotes {
    /// Counts the layout of one document; text that does not parse counts nothing.
    pub fn add(&mut self, text: &str) {
        let crlf = text.matches("\r\n").count();
        self.crlf += crlf;
        self.lf += text.matches('\n').count() - crlf;
        if let Ok(tree) = Tree::parse(text) {
            self.visit(text, &tree.root);
        }
    }

    fn visit(&mut self, text: &str, node: &Node) {
        match &node.kind {
            Kind::Map { entries, .. } => {
                for e in entries {
                    match &e.value.kind {
                        Kind::Map { entries: inner, .. } => {
                            // A nested mapping whose keys start on a later line.
                            if let Some(first) = inner.first()
                                && first.key_line > e.key_line
                                && first.key_col > e.key_col
                            {
                                *self.step.entry(first.key_col - e.key_col).or_default() += 1;
                            }
                        }
                        Kind::Seq {
                            flow: false, items, ..
                        } => {
                            if let Some(first) = items.first()
                                && let Some(dash) = dash_column(text, first.start)
                                && first.line > e.key_line
                                && dash >= e.key_col
                            {
                                *self.seq_indent.entry(dash - e.key_col).or_default() += 1;
                                *self.item_indent.entry(first.col - dash).or_default() += 1;
                            }
                        }
                        _ => {}
                    }
                    self.visit(text, &e.value);
                }
            }
            Kind::Seq { items, .. } => {
                for item in items {
                    self.visit(text, item);
                }
            }
            _ => {}
        }
    }

    pub fn style(&self, json: bool) -> Style {
        let default = Style::default();
        let step = winner(&self.step)
            .filter(|s| (1..=8).contains(s))
            .unwrap_or(default.step);
        Style {
            step,
            seq_indent: winner(&self.seq_indent).filter(|s| *s <= 8).unwrap_or(step),
            item_indent: winner(&self.item_indent)
                .filter(|s| (2..=8).contains(s))
                .unwrap_or(default.item_indent),
            newline: if self.crlf > self.lf { "\r\n" } else { "\n" },
            json,
        }
    }
}

/// Column of the dash of the sequence item starting at `at`, if it is on
/// the item's line.
fn dash_column(text: &str, at: usize) -> Option<usize> {
    let line = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let prefix = &text[line..at];
    let dash = prefix.rfind('-')?;
    Some(prefix[..dash].chars().count())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn style_of(text: &str) -> Style {
        let mut votes = StyleVotes::default();
        votes.add(text);
        votes.style(false)
    }

    #[test]
    fn detects_steps_and_sequence_indentation() {
        let s = style_of("a:\n    b:\n        c: 1\n    list:\n    - x\n");
        assert_eq!((s.step, s.seq_indent, s.item_indent), (4, 0, 2));
        let s = style_of("a:\n  b: 1\n  list:\n    -   x\n");
        assert_eq!((s.step, s.seq_indent, s.item_indent), (2, 2, 4));
        let s = style_of("a: 1\r\nb:\r\n  c: 2\r\n");
        assert_eq!(s.newline, "\r\n");
    }

    #[test]
    fn defaults_without_evidence() {
        assert_eq!(style_of("a: 1\n"), Style::default());
        // Sequences follow the mapping step when there are none to look at.
        let s = style_of("a:\n    b: 1\n");
        assert_eq!((s.step, s.seq_indent), (4, 4));
    }
}

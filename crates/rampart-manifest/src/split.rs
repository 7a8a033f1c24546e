//! Cuts a file into documents before anything is parsed, so that one broken
//! document cannot hide the others and every document knows its file line.

use std::ops::Range;

/// Where one document sits in its file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Chunk {
    /// Byte range in the file text.
    pub range: Range<usize>,
    /// 1-based file line of `range.start`.
    pub first_line: usize,
    /// 1-based file line of the first line that is neither blank nor a comment.
    pub content_line: usize,
    /// A `---` line followed by something other than a comment, which
    /// kubectl's reader rejects: (file line, what followed).
    pub bad_separator: Option<(usize, String)>,
    /// For JSON values: the byte offset where nesting first went over the limit.
    pub too_deep_at: Option<usize>,
}

/// The byte offset where the text proper starts (after a UTF-8 byte order mark).
pub(crate) fn body_start(text: &str) -> usize {
    if text.starts_with('\u{feff}') {
        '\u{feff}'.len_utf8()
    } else {
        0
    }
}

/// kubectl reads a stream as JSON when its first non-space character opens a
/// JSON value; otherwise as YAML.
pub(crate) fn looks_like_json(text: &str) -> bool {
    let body = &text[body_start(text)..];
    matches!(body.trim_start().as_bytes().first(), Some(b'{' | b'['))
}

fn is_content(line: &str) -> bool {
    let trimmed = line.trim_start();
    !trimmed.is_empty() && !trimmed.starts_with('#')
}

/// Splits YAML the way apimachinery's `YAMLReader` does: a line that starts with
/// `---` ends a document, and only a comment may follow the dashes on that line.
///
/// Chunks made only of blank lines and comments are dropped, as kubectl drops
/// them, so the position of a chunk in the result is the document index users
/// see: the N-th document that has content, counting from 0.
pub(crate) fn yaml_chunks(text: &str) -> Vec<Chunk> {
    let mut chunks = Vec::new();
    let mut start = body_start(text);
    let mut line_no = 1;
    // `content_line` stays 0 while the chunk being built has no content.
    let open = |at: usize, line: usize| Chunk {
        range: at..at,
        first_line: line,
        content_line: 0,
        bad_separator: None,
        too_deep_at: None,
    };
    let mut pending = open(start, 1);
    while start < text.len() {
        let end = text[start..]
            .find('\n')
            .map_or(text.len(), |i| start + i + 1);
        let line = &text[start..end];
        if let Some(rest) = line.strip_prefix("---") {
            let rest = rest.trim();
            let finished = std::mem::replace(&mut pending, open(end, line_no + 1));
            if finished.content_line != 0 {
                chunks.push(finished);
            }
            if !rest.is_empty() && !rest.starts_with('#') {
                // The document starts on the separator line itself, and kubectl
                // refuses it; keep it as a document so the error has a home.
                pending = open(start, line_no);
                pending.range.end = end;
                pending.content_line = line_no;
                pending.bad_separator = Some((line_no, rest.to_owned()));
            }
        } else {
            pending.range.end = end;
            if pending.content_line == 0 && is_content(line) {
                pending.content_line = line_no;
            }
        }
        start = end;
        line_no += 1;
    }
    if pending.content_line != 0 {
        chunks.push(pending);
    }
    chunks
}

/// Splits a JSON stream (concatenated values, as `kubectl` accepts) into its
/// values without parsing them, tracking nesting so that a value nested
/// deeper than `max_depth` is never handed to a recursive parser.
///
/// A value that does not end (unbalanced brackets, an open string) runs to the
/// end of the text; parsing it then reports the syntax error.
pub(crate) fn json_chunks(text: &str, max_depth: usize) -> Vec<Chunk> {
    let bytes = text.as_bytes();
    let mut chunks = Vec::new();
    let mut pos = body_start(text);
    let mut line_no = 1;
    let count_lines =
        |from: usize, to: usize| bytes[from..to].iter().filter(|&&b| b == b'\n').count();
    loop {
        let skipped = pos
            + bytes[pos..]
                .iter()
                .take_while(|b| b.is_ascii_whitespace())
                .count();
        line_no += count_lines(pos, skipped);
        pos = skipped;
        if pos >= bytes.len() {
            break;
        }
        let start = pos;
        let mut too_deep_at = None;
        let end = match bytes[pos] {
            b'{' | b'[' => {
                let mut depth = 0usize;
                let mut in_string = false;
                let mut escaped = false;
                let mut end = bytes.len();
                for (i, &b) in bytes.iter().enumerate().skip(pos) {
                    if in_string {
                        match b {
                            _ if escaped => escaped = false,
                            b'\\' => escaped = true,
                            b'"' => in_string = false,
                            _ => {}
                        }
                        continue;
                    }
                    match b {
                        b'"' => in_string = true,
                        b'{' | b'[' => {
                            depth += 1;
                            if depth > max_depth && too_deep_at.is_none() {
                                too_deep_at = Some(i);
                            }
                        }
                        b'}' | b']' => {
                            depth = depth.saturating_sub(1);
                            if depth == 0 {
                                end = i + 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                end
            }
            b'"' => {
                let mut escaped = false;
                let close = bytes[pos + 1..].iter().position(|&b| {
                    let closes = b == b'"' && !escaped;
                    escaped = b == b'\\' && !escaped;
                    closes
                });
                close.map_or(bytes.len(), |i| pos + 1 + i + 1)
            }
            _ => {
                let len = bytes[pos..]
                    .iter()
                    .take_while(|b| !b.is_ascii_whitespace() && !b"{}[]\",".contains(b))
                    .count();
                // A stray delimiter still has to be consumed, or nothing advances.
                pos + len.max(1)
            }
        };
        // `end` can split a multi-byte character only in malformed input
        // (a stray delimiter); widen to the next boundary.
        let end = (end..=bytes.len())
            .find(|&e| text.is_char_boundary(e))
            .unwrap_or(bytes.len());
        chunks.push(Chunk {
            range: start..end,
            first_line: line_no,
            content_line: line_no,
            bad_separator: None,
            too_deep_at,
        });
        line_no += count_lines(start, end);
        pos = end;
    }
    chunks
}

/// 1-based line and column (in characters) of a byte offset.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset];
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts<'a>(text: &'a str, chunks: &[Chunk]) -> Vec<&'a str> {
        chunks.iter().map(|c| &text[c.range.clone()]).collect()
    }

    #[test]
    fn splits_on_separator_lines_only() {
        let text = "a: 1\n---\nb: |\n  ---\n--- # comment\nc: 3";
        let chunks = yaml_chunks(text);
        assert_eq!(texts(text, &chunks), ["a: 1\n", "b: |\n  ---\n", "c: 3"]);
        assert_eq!(
            chunks.iter().map(|c| c.first_line).collect::<Vec<_>>(),
            [1, 3, 6]
        );
    }

    #[test]
    fn empty_and_comment_only_documents_take_no_index() {
        let text = "# license header\n---\n---\n\n---\n# x\n  key: v\n---\n";
        let chunks = yaml_chunks(text);
        assert_eq!(texts(text, &chunks), ["# x\n  key: v\n"]);
        assert_eq!(chunks[0].first_line, 6);
        assert_eq!(chunks[0].content_line, 7);
        assert!(yaml_chunks("").is_empty());
        assert!(yaml_chunks("# nothing\n\n").is_empty());
    }

    #[test]
    fn content_after_the_dashes_is_kept_as_a_bad_document() {
        let text = "a: 1\n--- {b: 2}\nc: 3\n";
        let chunks = yaml_chunks(text);
        assert_eq!(chunks.len(), 2);
        assert_eq!(chunks[1].bad_separator, Some((2, "{b: 2}".to_owned())));
        assert_eq!(texts(text, &chunks)[1], "--- {b: 2}\nc: 3\n");
    }

    #[test]
    fn byte_order_mark_and_crlf() {
        let text = "\u{feff}---\r\na: 1\r\n---\r\nb: 2\r\n";
        let chunks = yaml_chunks(text);
        assert_eq!(texts(text, &chunks), ["a: 1\r\n", "b: 2\r\n"]);
        assert!(looks_like_json("\u{feff}  \n{\"a\": 1}"));
        assert!(!looks_like_json("# {\n"));
    }

    #[test]
    fn json_stream_values() {
        let text = "{\"a\": \"}\\\"\"}\n\n[1, [2]] {\"b\": 1}\n  \"s\" 12";
        let chunks = json_chunks(text, 64);
        assert_eq!(
            texts(text, &chunks),
            [
                "{\"a\": \"}\\\"\"}",
                "[1, [2]]",
                "{\"b\": 1}",
                "\"s\"",
                "12"
            ]
        );
        assert_eq!(
            chunks.iter().map(|c| c.first_line).collect::<Vec<_>>(),
            [1, 3, 3, 4, 4]
        );
    }

    #[test]
    fn json_depth_is_measured_without_recursion() {
        let deep = "[".repeat(100_000);
        let chunks = json_chunks(&deep, 64);
        assert_eq!(chunks.len(), 1);
        assert_eq!(chunks[0].too_deep_at, Some(64));
        let fine = format!("{}{}", "[".repeat(64), "]".repeat(64));
        assert_eq!(json_chunks(&fine, 64)[0].too_deep_at, None);
    }

    #[test]
    fn line_and_column_of_offsets() {
        assert_eq!(line_col("ab\ncdé f", 8), (2, 5));
        assert_eq!(line_col("x", 0), (1, 1));
    }
}

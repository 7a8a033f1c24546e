//! A tiny lexical scanner for CEL source text.
//!
//! It runs *before* the real parser and serves two purposes:
//!
//! * enforcing the bracket-nesting limit without recursion (the ANTLR parser
//!   used by `cel` recurses per nesting level and can exhaust the stack on a
//!   hostile expression), and
//! * locating identifiers in the source so that semantic errors found on the
//!   AST (which carries no positions once parsing succeeded) can still point
//!   at a line and column.
//!
//! It understands string and bytes literals (quoted, triple-quoted, raw) and
//! `//` comments so that brackets and words inside them are ignored.

/// A token of interest: identifiers and single punctuation characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Token<'s> {
    Ident(&'s str),
    Punct(char),
    Literal,
}

#[derive(Debug, Clone)]
pub(crate) struct Scanned<'s> {
    /// Tokens with their byte offsets.
    pub tokens: Vec<(Token<'s>, usize)>,
    /// Deepest bracket nesting seen.
    pub max_nesting: usize,
    /// `first_reached[d]`: byte offset of the bracket that first opened nesting level `d + 1`.
    pub first_reached: Vec<usize>,
}

pub(crate) fn scan(src: &str) -> Scanned<'_> {
    let bytes = src.as_bytes();
    let mut tokens = Vec::new();
    let mut depth = 0usize;
    let mut first_reached: Vec<usize> = Vec::new();
    let mut i = 0usize;
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            b' ' | b'\t' | b'\r' | b'\n' | 0x0c => i += 1,
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'\'' | b'"' | b'`' => {
                let start = i;
                i = skip_string(bytes, i, false);
                tokens.push((Token::Literal, start));
            }
            b'(' | b'[' | b'{' => {
                depth += 1;
                if depth > first_reached.len() {
                    first_reached.push(i);
                }
                tokens.push((Token::Punct(c as char), i));
                i += 1;
            }
            b')' | b']' | b'}' => {
                depth = depth.saturating_sub(1);
                tokens.push((Token::Punct(c as char), i));
                i += 1;
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                let word = &src[start..i];
                // String prefixes: r, R, b, B and their two-letter combinations.
                let is_prefix = word.len() <= 2
                    && word.bytes().all(|b| matches!(b, b'r' | b'R' | b'b' | b'B'))
                    && matches!(bytes.get(i), Some(b'\'') | Some(b'"'));
                if is_prefix {
                    let raw = word.bytes().any(|b| b == b'r' || b == b'R');
                    i = skip_string(bytes, i, raw);
                    tokens.push((Token::Literal, start));
                } else {
                    tokens.push((Token::Ident(word), start));
                }
            }
            c if c.is_ascii_digit() => {
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'.') {
                    i += 1;
                }
                tokens.push((Token::Literal, i));
            }
            c if c.is_ascii() => {
                tokens.push((Token::Punct(c as char), i));
                i += 1;
            }
            _ => {
                // Skip one UTF-8 scalar value (non-ASCII outside literals is a syntax
                // error the parser will report).
                i += 1;
                while i < bytes.len() && (bytes[i] & 0xC0) == 0x80 {
                    i += 1;
                }
            }
        }
    }
    Scanned {
        tokens,
        max_nesting: first_reached.len(),
        first_reached,
    }
}

/// Skips a string literal starting at the quote at `i`; returns the index after it.
fn skip_string(bytes: &[u8], mut i: usize, raw: bool) -> usize {
    let quote = bytes[i];
    let triple = bytes.get(i + 1) == Some(&quote) && bytes.get(i + 2) == Some(&quote);
    if triple {
        i += 3;
        while i < bytes.len() {
            if !raw && bytes[i] == b'\\' {
                i += 2;
                continue;
            }
            if bytes[i] == quote
                && bytes.get(i + 1) == Some(&quote)
                && bytes.get(i + 2) == Some(&quote)
            {
                return i + 3;
            }
            i += 1;
        }
        return bytes.len();
    }
    i += 1;
    while i < bytes.len() {
        let c = bytes[i];
        if !raw && c == b'\\' {
            i += 2;
            continue;
        }
        if c == quote {
            return i + 1;
        }
        if c == b'\n' {
            // Unterminated single-line literal: let the parser report it.
            return i;
        }
        i += 1;
    }
    bytes.len()
}

impl<'s> Scanned<'s> {
    /// Byte offset of the first identifier token equal to `name`.
    pub fn find_ident(&self, name: &str) -> Option<usize> {
        self.tokens
            .iter()
            .find(|(t, _)| *t == Token::Ident(name))
            .map(|(_, o)| *o)
    }

    /// Byte offset of the first identifier `name` directly followed by `(`
    /// (a function or method call), falling back to any occurrence.
    pub fn find_call(&self, name: &str) -> Option<usize> {
        let last = name.rsplit('.').next().unwrap_or(name);
        self.tokens
            .windows(2)
            .find(|w| w[0].0 == Token::Ident(last) && w[1].0 == Token::Punct('('))
            .map(|w| w[0].1)
            .or_else(|| self.find_ident(last))
    }

    /// Byte offset of `field` in the first `base . field` (or `base .? field`) sequence.
    pub fn find_member(&self, base: &str, field: &str) -> Option<usize> {
        let t = &self.tokens;
        for (i, (tok, _)) in t.iter().enumerate() {
            if *tok != Token::Ident(base) {
                continue;
            }
            let mut j = i + 1;
            if t.get(j).map(|x| &x.0) != Some(&Token::Punct('.')) {
                continue;
            }
            j += 1;
            if t.get(j).map(|x| &x.0) == Some(&Token::Punct('?')) {
                j += 1;
            }
            if let Some((Token::Ident(f), off)) = t.get(j)
                && *f == field
            {
                return Some(*off);
            }
        }
        self.find_ident(base)
    }
}

/// Converts a byte offset into a 1-based (line, column) pair; columns count
/// Unicode scalar values, matching the parser's error positions.
pub(crate) fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(src.len());
    let mut line = 1;
    let mut line_start = 0;
    for (i, b) in src.bytes().enumerate().take(offset) {
        if b == b'\n' {
            line += 1;
            line_start = i + 1;
        }
    }
    let col = src
        .get(line_start..offset)
        .map(|s| s.chars().count())
        .unwrap_or(0)
        + 1;
    (line, col)
}

/// Converts a 1-based (line, column-in-chars) pair back into a byte offset.
pub(crate) fn offset_of(src: &str, line: usize, column: usize) -> usize {
    let mut offset = 0;
    for (n, l) in src.split_inclusive('\n').enumerate() {
        if n + 1 == line {
            let col_bytes: usize = l
                .chars()
                .take(column.saturating_sub(1))
                .map(char::len_utf8)
                .sum();
            return offset + col_bytes;
        }
        offset += l.len();
    }
    src.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_ignores_brackets_in_strings_and_comments() {
        let s = scan("f('((((', \"[[\", r'{{', '''((('''\n) // ((((\n");
        assert_eq!(s.max_nesting, 1);
        let s = scan("[[[1]]]");
        assert_eq!(s.max_nesting, 3);
        assert_eq!(s.first_reached, [0, 1, 2]);
    }

    #[test]
    fn finds_identifiers_outside_literals() {
        let src = "'authorizer' + x.authorizer + authorizer.group('a')";
        let s = scan(src);
        assert_eq!(s.find_ident("authorizer"), Some(17));
        assert_eq!(s.find_member("x", "authorizer"), Some(17));
        assert_eq!(s.find_call("group"), Some(41));
    }

    #[test]
    fn line_and_column_are_one_based_chars() {
        let src = "a &&\n  é + b";
        assert_eq!(line_col(src, 0), (1, 1));
        let off = src.find('+').unwrap();
        assert_eq!(line_col(src, off), (2, 5));
        assert_eq!(offset_of(src, 2, 5), off);
    }
}

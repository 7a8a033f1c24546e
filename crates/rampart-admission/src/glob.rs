//! `*` wildcard patterns for user, group and namespace names.

/// A pattern where `*` matches any run of characters (including none) and
/// everything else matches itself. `*` alone matches everything, the empty
/// string included.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pattern(String);

impl Pattern {
    pub fn new(p: impl Into<String>) -> Self {
        Self(p.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn matches(&self, s: &str) -> bool {
        wildcard(self.0.as_bytes(), s.as_bytes())
    }
}

/// Whether any of `patterns` matches `s`.
pub fn any_matches(patterns: &[Pattern], s: &str) -> bool {
    patterns.iter().any(|p| p.matches(s))
}

/// Iterative wildcard matching with backtracking to the last `*`: linear in
/// practice, never exponential.
fn wildcard(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, si));
            pi += 1;
        } else if pi < p.len() && p[pi] == s[si] {
            pi += 1;
            si += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_wildcards() {
        let cases = [
            ("*", "", true),
            ("*", "anything", true),
            ("prod-*", "prod-eu", true),
            ("prod-*", "prod-", true),
            ("prod-*", "staging", false),
            ("*-admin", "team-admin", true),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
            (
                "system:serviceaccount:*:ci",
                "system:serviceaccount:team:ci",
                true,
            ),
            ("exact", "exact", true),
            ("exact", "exactly", false),
            ("", "", true),
            ("", "x", false),
        ];
        for (p, s, want) in cases {
            assert_eq!(Pattern::new(p).matches(s), want, "{p} ~ {s}");
        }
    }
}

//! Field paths inside an object, rendered the way Kubernetes renders them in
//! validation errors (`spec.containers[0].securityContext.privileged`).

use std::borrow::Cow;
use std::fmt;

/// One step of a [`FieldPath`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Segment {
    Key(Cow<'static, str>),
    Index(usize),
}

/// A path from the root of an object to one of its fields.
///
/// Paths are built only when something is reported, so they favour a simple
/// owned representation over borrowing tricks.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FieldPath {
    segments: Vec<Segment>,
}

impl FieldPath {
    pub const fn root() -> Self {
        Self {
            segments: Vec::new(),
        }
    }

    /// Parses a dotted path such as `spec.template.spec`; `[N]` selects an index.
    /// Meant for static paths written in code, so keys with dots are not supported.
    pub fn parse(dotted: &str) -> Self {
        let mut path = Self::root();
        for part in dotted.split('.').filter(|p| !p.is_empty()) {
            let (key, mut rest) = match part.find('[') {
                Some(i) => (&part[..i], &part[i..]),
                None => (part, ""),
            };
            if !key.is_empty() {
                path.segments.push(Segment::Key(Cow::Owned(key.to_owned())));
            }
            while let Some(end) = rest.find(']') {
                if let Ok(i) = rest[1..end].parse() {
                    path.segments.push(Segment::Index(i));
                }
                rest = &rest[end + 1..];
            }
        }
        path
    }

    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    pub fn is_root(&self) -> bool {
        self.segments.is_empty()
    }

    pub fn len(&self) -> usize {
        self.segments.len()
    }

    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    #[must_use]
    pub fn key(&self, key: impl Into<Cow<'static, str>>) -> Self {
        let mut next = self.clone();
        next.segments.push(Segment::Key(key.into()));
        next
    }

    #[must_use]
    pub fn index(&self, index: usize) -> Self {
        let mut next = self.clone();
        next.segments.push(Segment::Index(index));
        next
    }

    #[must_use]
    pub fn join(&self, other: &FieldPath) -> Self {
        let mut next = self.clone();
        next.segments.extend(other.segments.iter().cloned());
        next
    }

    pub fn push_key(&mut self, key: impl Into<Cow<'static, str>>) {
        self.segments.push(Segment::Key(key.into()));
    }

    pub fn push_index(&mut self, index: usize) {
        self.segments.push(Segment::Index(index));
    }

    pub fn pop(&mut self) -> Option<Segment> {
        self.segments.pop()
    }

    pub fn starts_with(&self, prefix: &FieldPath) -> bool {
        self.segments.starts_with(&prefix.segments)
    }

    /// RFC 6901 JSON pointer for the same field (`/spec/containers/0`).
    pub fn to_json_pointer(&self) -> String {
        let mut out = String::new();
        for seg in &self.segments {
            out.push('/');
            match seg {
                Segment::Key(k) => {
                    for c in k.chars() {
                        match c {
                            '~' => out.push_str("~0"),
                            '/' => out.push_str("~1"),
                            c => out.push(c),
                        }
                    }
                }
                Segment::Index(i) => out.push_str(&i.to_string()),
            }
        }
        out
    }

    /// Resolves the path against a JSON value.
    pub fn resolve<'v>(&self, mut value: &'v serde_json::Value) -> Option<&'v serde_json::Value> {
        for seg in &self.segments {
            value = match seg {
                Segment::Key(k) => value.get(k.as_ref())?,
                Segment::Index(i) => value.get(*i)?,
            };
        }
        Some(value)
    }
}

fn is_plain_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '$')
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for seg in &self.segments {
            match seg {
                Segment::Key(k) if is_plain_key(k) => {
                    if !first {
                        f.write_str(".")?;
                    }
                    f.write_str(k)?;
                }
                // Annotation and label keys contain dots and slashes; quote them
                // so the path stays unambiguous.
                Segment::Key(k) => write!(f, "[{}]", serde_json::Value::from(k.as_ref()))?,
                Segment::Index(i) => write!(f, "[{i}]")?,
            }
            first = false;
        }
        Ok(())
    }
}

impl serde::Serialize for FieldPath {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_kubernetes_field_paths() {
        let p = FieldPath::root()
            .key("spec")
            .key("containers")
            .index(2)
            .key("securityContext");
        assert_eq!(p.to_string(), "spec.containers[2].securityContext");
        assert_eq!(p.to_json_pointer(), "/spec/containers/2/securityContext");
    }

    #[test]
    fn quotes_keys_with_dots_and_slashes() {
        let p = FieldPath::root()
            .key("metadata")
            .key("annotations")
            .key("seccomp.security.alpha.kubernetes.io/pod");
        assert_eq!(
            p.to_string(),
            r#"metadata.annotations["seccomp.security.alpha.kubernetes.io/pod"]"#
        );
        assert_eq!(
            p.to_json_pointer(),
            "/metadata/annotations/seccomp.security.alpha.kubernetes.io~1pod"
        );
    }

    #[test]
    fn parses_static_paths() {
        let p = FieldPath::parse("spec.jobTemplate.spec.template.spec");
        assert_eq!(p.len(), 5);
        assert_eq!(
            FieldPath::parse("items[3].spec").to_string(),
            "items[3].spec"
        );
    }

    #[test]
    fn resolves_against_values() {
        let v = serde_json::json!({"spec": {"containers": [{"name": "a"}]}});
        let p = FieldPath::parse("spec.containers[0].name");
        assert_eq!(p.resolve(&v), Some(&serde_json::json!("a")));
        assert_eq!(FieldPath::parse("spec.containers[1]").resolve(&v), None);
    }
}

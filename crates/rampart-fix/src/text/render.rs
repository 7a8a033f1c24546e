//! Writing new values as YAML or JSON text.

use serde_json::Value;

use super::Style;

/// A string that reads back as the same string, unquoted, both under YAML
/// 1.1 (kubectl) and YAML 1.2: identifiers (`RuntimeDefault`, `ALL`) and
/// Kubernetes quantities (`100m`, `128Mi`); everything else is quoted.
fn plain_is_safe(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    let charset = s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
    if !charset || s.ends_with(['.', '-']) {
        return false;
    }
    if first.is_ascii_alphabetic() {
        const SPECIAL: &[&str] = &["y", "n", "yes", "no", "true", "false", "on", "off", "null"];
        return !SPECIAL.iter().any(|w| s.eq_ignore_ascii_case(w));
    }
    // Quantities: digits, an optional fraction, then a unit suffix that
    // cannot be read as an exponent.
    let digits_end = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(digits_end);
    const SUFFIXES: &[&str] = &[
        "m", "k", "M", "G", "T", "P", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei",
    ];
    !number.is_empty()
        && !number.starts_with('.')
        && !number.ends_with('.')
        && number.matches('.').count() <= 1
        && SUFFIXES.contains(&suffix)
}

/// A scalar (or an empty collection) in flow-safe form.
pub(super) fn scalar(value: &Value, json: bool) -> String {
    match value {
        Value::String(s) if !json && plain_is_safe(s) => s.clone(),
        Value::Array(a) if a.is_empty() => "[]".to_owned(),
        Value::Object(o) if o.is_empty() => "{}".to_owned(),
        // JSON's string syntax is also YAML's double-quoted style.
        other => serde_json::to_string(other).unwrap_or_else(|_| "null".to_owned()),
    }
}

pub(super) fn key_text(key: &str, json: bool) -> String {
    scalar(&Value::String(key.to_owned()), json)
}

/// A value on one line: `{a: b, c: [d]}`, or JSON.
pub(super) fn flow(value: &Value, json: bool) -> String {
    match value {
        Value::Object(map) if !map.is_empty() => {
            let entries: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{}: {}", key_text(k, json), flow(v, json)))
                .collect();
            format!("{{{}}}", entries.join(", "))
        }
        Value::Array(items) if !items.is_empty() => {
            let items: Vec<String> = items.iter().map(|v| flow(v, json)).collect();
            format!("[{}]", items.join(", "))
        }
        other => scalar(other, json),
    }
}

/// A value in flow style over several lines, mappings opened on the current
/// line and closed at column `col`, as pretty-printed JSON is laid out.
/// Sequences of scalars stay on one line.
pub(super) fn flow_pretty(value: &Value, col: usize, style: &Style) -> String {
    let json = style.json;
    match value {
        Value::Object(map) if !map.is_empty() => {
            let inner = col + style.step;
            let mut out = String::from("{");
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(style.newline);
                out.push_str(&" ".repeat(inner));
                out.push_str(&key_text(k, json));
                out.push_str(": ");
                out.push_str(&flow_pretty(v, inner, style));
            }
            out.push_str(style.newline);
            out.push_str(&" ".repeat(col));
            out.push('}');
            out
        }
        Value::Array(items) if items.iter().any(|v| v.is_object() || v.is_array()) => {
            let inner = col + style.step;
            let mut out = String::from("[");
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(style.newline);
                out.push_str(&" ".repeat(inner));
                out.push_str(&flow_pretty(v, inner, style));
            }
            out.push_str(style.newline);
            out.push_str(&" ".repeat(col));
            out.push(']');
            out
        }
        other => flow(other, json),
    }
}

/// What follows `key:` for a key at column `key_col` in block style: ` value`
/// for a scalar, or the lines of a block mapping or sequence.
pub(super) fn block_suffix(value: &Value, key_col: usize, style: &Style) -> String {
    match value {
        Value::Object(map) if !map.is_empty() => {
            let col = key_col + style.step;
            let mut out = String::new();
            for (k, v) in map {
                out.push_str(style.newline);
                out.push_str(&" ".repeat(col));
                out.push_str(&key_text(k, false));
                out.push(':');
                out.push_str(&block_suffix(v, col, style));
            }
            out
        }
        Value::Array(items) if !items.is_empty() => {
            let dash = key_col + style.seq_indent;
            let content = dash + style.item_indent.max(2);
            let mut out = String::new();
            for item in items {
                out.push_str(style.newline);
                out.push_str(&" ".repeat(dash));
                out.push('-');
                out.push_str(&" ".repeat(content - dash - 1));
                out.push_str(&block_item(item, content, style));
            }
            out
        }
        other => format!(" {}", scalar(other, false)),
    }
}

/// A sequence item whose content starts at column `col` (after `- `).
pub(super) fn block_item(value: &Value, col: usize, style: &Style) -> String {
    match value {
        Value::Object(map) if !map.is_empty() => {
            let mut out = String::new();
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(style.newline);
                    out.push_str(&" ".repeat(col));
                }
                out.push_str(&key_text(k, false));
                out.push(':');
                out.push_str(&block_suffix(v, col, style));
            }
            out
        }
        other => flow(other, false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn plain_only_when_it_reads_back_the_same() {
        for s in [
            "ALL",
            "RuntimeDefault",
            "Always",
            "100m",
            "128Mi",
            "1.5Gi",
            "a.b/c",
        ] {
            assert!(plain_is_safe(s), "{s}");
        }
        for s in [
            "", "1", "0755", "1e3", "yes", "No", "on", "null", "true", "1.", "-1", "a b", "a:b",
            "#x", "1E", "12:30", ".5",
        ] {
            assert!(!plain_is_safe(s), "{s}");
        }
        assert_eq!(scalar(&json!("1"), false), "\"1\"");
        assert_eq!(scalar(&json!("ALL"), true), "\"ALL\"");
        assert_eq!(scalar(&json!(false), false), "false");
    }

    #[test]
    fn block_values_follow_the_style() {
        let style = Style {
            step: 4,
            seq_indent: 0,
            ..Style::default()
        };
        let v = json!({"capabilities": {"drop": ["ALL"]}, "runAsNonRoot": true});
        assert_eq!(
            block_suffix(&v, 2, &style),
            "\n      capabilities:\n          drop:\n          - ALL\n      runAsNonRoot: true"
        );
        assert_eq!(
            block_suffix(&json!([{"a": 1, "b": 2}]), 0, &Style::default()),
            "\n  - a: 1\n    b: 2"
        );
    }

    #[test]
    fn flow_values() {
        let v = json!({"seccompProfile": {"type": "RuntimeDefault"}});
        assert_eq!(flow(&v, false), "{seccompProfile: {type: RuntimeDefault}}");
        assert_eq!(
            flow(&v, true),
            r#"{"seccompProfile": {"type": "RuntimeDefault"}}"#
        );
        let style = Style {
            json: true,
            ..Style::default()
        };
        assert_eq!(
            flow_pretty(&v, 4, &style),
            "{\n      \"seccompProfile\": {\n        \"type\": \"RuntimeDefault\"\n      }\n    }"
        );
    }
}

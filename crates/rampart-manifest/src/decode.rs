//! Turns the text of one document into a `serde_json::Value`, resolving
//! scalars as kubectl does and failing cleanly on hostile input.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value, map::Entry};
use serde_saphyr::budget::BudgetBreach;
use serde_saphyr::granit_parser::ErrorKind as ScanErrorKind;
use serde_saphyr::{
    Budget, DefaultMessageFormatter, DuplicateKeyPolicy, ExternalMessageSource, MessageFormatter,
    Options,
};

use crate::IssueKind;
use crate::limits::Limits;

/// A document's value, and the first duplicate key found in it, if any.
#[derive(Debug)]
pub(crate) struct Decoded {
    pub value: Value,
    pub duplicate_key: Option<Failure>,
}

/// Why a document could not be decoded, with its position relative to the
/// document text (1-based), when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    pub kind: IssueKind,
    pub message: String,
    pub at: Option<(usize, usize)>,
}

/// What made the value builder stop, for errors a parser reports only as text.
enum Abort {
    TooDeep,
    DuplicateKey(String),
}

/// Builds `serde_json::Value`s with a nesting limit of its own, so that no
/// input can make deserialization recurse without bound, and optionally
/// refusing duplicate keys (JSON parsers take the last one silently).
struct ValueBuilder {
    max_depth: usize,
    reject_duplicates: bool,
    abort: Cell<Option<Abort>>,
}

impl ValueBuilder {
    fn new(max_depth: usize, reject_duplicates: bool) -> Self {
        Self {
            max_depth,
            reject_duplicates,
            abort: Cell::new(None),
        }
    }

    fn root(&self) -> Seed<'_> {
        Seed {
            builder: self,
            depth: 0,
        }
    }
}

#[derive(Clone, Copy)]
struct Seed<'b> {
    builder: &'b ValueBuilder,
    depth: usize,
}

impl Seed<'_> {
    fn enter<E: de::Error>(self) -> Result<Self, E> {
        let depth = self.depth + 1;
        if depth > self.builder.max_depth {
            self.builder.abort.set(Some(Abort::TooDeep));
            return Err(E::custom(format_args!(
                "nested deeper than {} levels",
                self.builder.max_depth
            )));
        }
        Ok(Seed { depth, ..self })
    }
}

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML or JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_i128<E>(self, v: i128) -> Result<Value, E> {
        Ok(match i64::try_from(v) {
            Ok(i) => Value::Number(i.into()),
            Err(_) => self.float(v as f64),
        })
    }

    fn visit_u128<E>(self, v: u128) -> Result<Value, E> {
        Ok(match u64::try_from(v) {
            Ok(u) => Value::Number(u.into()),
            Err(_) => self.float(v as f64),
        })
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(self.float(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_bytes<E>(self, v: &[u8]) -> Result<Value, E> {
        Ok(Value::String(String::from_utf8_lossy(v).into_owned()))
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        self.deserialize(d)
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        self.deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let inner = self.enter()?;
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(item) = seq.next_element_seed(inner)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let inner = self.enter()?;
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            match object.entry(key) {
                Entry::Vacant(slot) => {
                    slot.insert(map.next_value_seed(inner)?);
                }
                Entry::Occupied(mut slot) => {
                    if self.builder.reject_duplicates {
                        let key = slot.key().clone();
                        let message = format!("duplicate key {key:?}");
                        self.builder.abort.set(Some(Abort::DuplicateKey(key)));
                        return Err(de::Error::custom(message));
                    }
                    // The last value wins, as in encoding/json and go-yaml v2.
                    slot.insert(map.next_value_seed(inner)?);
                }
            }
        }
        Ok(Value::Object(object))
    }
}

impl Seed<'_> {
    fn float(self, v: f64) -> Value {
        Number::from_f64(v).map_or(Value::Null, Value::Number)
    }
}

fn duplicate_warning(key: &str, at: Option<(usize, usize)>) -> Failure {
    Failure {
        kind: IssueKind::Warning,
        message: format!(
            "duplicate key {key:?}: the last value is used, as kubectl does; remove the other"
        ),
        at,
    }
}

fn too_deep(max_depth: usize, at: Option<(usize, usize)>) -> Failure {
    Failure {
        kind: IssueKind::TooDeep,
        message: format!("nested deeper than the limit of {max_depth} levels"),
        at,
    }
}

// ---------------------------------------------------------------- YAML

fn yaml_options(limits: &Limits, duplicates: DuplicateKeyPolicy) -> Options {
    let mut budget = Budget::default();
    budget.max_depth = limits.max_depth;
    // Size is bounded by the file limit; these counters would otherwise refuse
    // legitimate large documents such as a `kind: List` export of a cluster.
    budget.max_events = usize::MAX;
    budget.max_nodes = usize::MAX;
    let max_bytes = usize::try_from(limits.max_file_bytes).unwrap_or(usize::MAX);
    budget.max_total_scalar_bytes = budget
        .max_total_scalar_bytes
        .max(max_bytes.saturating_mul(2));
    // A ratio heuristic would refuse documents that reuse one anchor a lot;
    // the replay limit below bounds the real cost of aliases instead.
    budget.enforce_alias_anchor_ratio = false;

    let mut options = Options::default();
    options.budget = Some(budget);
    options.alias_limits.max_total_replayed_events = limits.max_alias_expansion;
    // go-yaml v2, which kubectl uses, reads `0755` as octal.
    options.legacy_octal_numbers = true;
    options.duplicate_keys = duplicates;
    // Messages carry no copy of the input: positions are reported separately.
    options.with_snippet = false;
    options
}

/// Unwraps the error that actually happened from alias and snippet wrappers.
fn root_cause(mut error: &serde_saphyr::Error) -> &serde_saphyr::Error {
    loop {
        error = match error {
            serde_saphyr::Error::WithSnippet { error, .. }
            | serde_saphyr::Error::AliasError { error, .. } => error,
            other => return other,
        };
    }
}

fn classify_yaml(error: &serde_saphyr::Error, limits: &Limits) -> Failure {
    use serde_saphyr::Error as E;
    let at = position(error);
    let cause = root_cause(error);
    let size = |message: String| Failure {
        kind: IssueKind::TooLarge,
        message,
        at,
    };
    let syntax = |message: String| Failure {
        kind: IssueKind::Syntax,
        message,
        at,
    };
    match cause {
        E::Budget { breach, .. } => match breach {
            BudgetBreach::Depth { .. } => too_deep(limits.max_depth, at),
            BudgetBreach::Aliases { .. }
            | BudgetBreach::Anchors { .. }
            | BudgetBreach::AliasAnchorRatio { .. }
            | BudgetBreach::RecordedAnchorEvents { .. }
            | BudgetBreach::RecordedAnchorBytes { .. } => size(format!(
                "aliases expand beyond the parser's budget ({breach:?}); refusing a possible alias bomb"
            )),
            other => size(format!("document exceeds the parser's budget ({other:?})")),
        },
        E::AliasReplayLimitExceeded {
            max_total_replayed_events,
            ..
        } => size(format!(
            "aliases expand to more than {max_total_replayed_events} nodes; refusing a possible alias bomb"
        )),
        E::AliasExpansionLimitExceeded { .. } | E::AliasReplayStackDepthExceeded { .. } => {
            size(format!(
                "aliases expand too much ({}); refusing a possible alias bomb",
                message_of(cause)
            ))
        }
        E::ExternalMessage { source, .. }
            if matches!(&**source, ExternalMessageSource::Parser(scan)
                if matches!(scan.kind(), ScanErrorKind::RecursionLimitExceeded)) =>
        {
            too_deep(limits.max_depth, at)
        }
        E::MultipleDocuments { .. } => syntax(
            "a second YAML document follows `...` without a `---` line; kubectl would silently \
             drop it, so split the documents with `---`"
                .to_owned(),
        ),
        E::NullIntoString { .. } => {
            syntax("a mapping key is null; Kubernetes objects have only string keys".to_owned())
        }
        E::NonFiniteFloat { value, .. } => syntax(format!(
            "`{value}` is not a finite number, which JSON (and so kubectl) cannot represent"
        )),
        _ => syntax(message_of(cause)),
    }
}

fn message_of(error: &serde_saphyr::Error) -> String {
    DefaultMessageFormatter.format_message(error).into_owned()
}

fn parse_yaml(
    text: &str,
    limits: &Limits,
    duplicates: DuplicateKeyPolicy,
    builder: &ValueBuilder,
) -> Result<Value, Box<serde_saphyr::Error>> {
    serde_saphyr::with_deserializer_from_str_with_options(
        text,
        yaml_options(limits, duplicates),
        |de| builder.root().deserialize(de),
    )
    .map_err(Box::new)
}

fn position(error: &serde_saphyr::Error) -> Option<(usize, usize)> {
    error
        .location()
        .map(|l| (l.line() as usize, l.column() as usize))
        .filter(|&(line, _)| line > 0)
}

/// Decodes one YAML document (a chunk without `---` lines).
pub(crate) fn decode_yaml(text: &str, limits: &Limits) -> Result<Decoded, Failure> {
    let builder = ValueBuilder::new(limits.max_depth, false);
    let error = match parse_yaml(text, limits, DuplicateKeyPolicy::Error, &builder) {
        Ok(value) => {
            return Ok(Decoded {
                value,
                duplicate_key: None,
            });
        }
        Err(error) => error,
    };
    let serde_saphyr::Error::DuplicateMappingKey { key, .. } = root_cause(&error) else {
        return Err(yaml_failure(&error, &builder, limits));
    };
    // Parse again keeping the last value, which is what reaches the API
    // server through kubectl, and say where the duplicate is.
    let key = key.clone().unwrap_or_else(|| "?".to_owned());
    match parse_yaml(text, limits, DuplicateKeyPolicy::LastWins, &builder) {
        Ok(value) => Ok(Decoded {
            value,
            duplicate_key: Some(duplicate_warning(&key, position(&error))),
        }),
        Err(error) => Err(yaml_failure(&error, &builder, limits)),
    }
}

fn yaml_failure(error: &serde_saphyr::Error, builder: &ValueBuilder, limits: &Limits) -> Failure {
    match builder.abort.take() {
        // The builder's own guard; the parser's budget normally trips first.
        Some(Abort::TooDeep) => too_deep(limits.max_depth, position(error)),
        _ => classify_yaml(error, limits),
    }
}

// ---------------------------------------------------------------- JSON

fn parse_json(text: &str, builder: &ValueBuilder) -> Result<Value, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value = builder.root().deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

/// Decodes one JSON value of a stream. The caller has already checked its
/// nesting, so the recursive JSON parser stays within bounds.
pub(crate) fn decode_json(text: &str, limits: &Limits) -> Result<Decoded, Failure> {
    let strict = ValueBuilder::new(limits.max_depth, true);
    let error = match parse_json(text, &strict) {
        Ok(value) => {
            return Ok(Decoded {
                value,
                duplicate_key: None,
            });
        }
        Err(error) => error,
    };
    let at = Some((error.line().max(1), error.column().max(1)));
    match strict.abort.take() {
        Some(Abort::DuplicateKey(key)) => {
            let lenient = ValueBuilder::new(limits.max_depth, false);
            match parse_json(text, &lenient) {
                Ok(value) => Ok(Decoded {
                    value,
                    duplicate_key: Some(duplicate_warning(&key, at)),
                }),
                Err(error) => Err(json_failure(&error, limits)),
            }
        }
        Some(Abort::TooDeep) => Err(too_deep(limits.max_depth, at)),
        None => Err(json_failure(&error, limits)),
    }
}

fn json_failure(error: &serde_json::Error, limits: &Limits) -> Failure {
    let at = Some((error.line().max(1), error.column().max(1)));
    // serde_json's own guard, for limits configured above its 128 levels.
    let text = error.to_string();
    if text.starts_with("recursion limit exceeded") {
        return too_deep(limits.max_depth, at);
    }
    // serde_json appends the position, which is reported separately.
    let message = text
        .rsplit_once(" at line ")
        .map_or(text.as_str(), |(m, _)| m)
        .to_owned();
    Failure {
        kind: IssueKind::Syntax,
        message: format!("invalid JSON: {message}"),
        at,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn yaml(text: &str) -> Value {
        decode_yaml(text, &Limits::default()).unwrap().value
    }

    #[test]
    fn scalars_resolve_like_go_yaml_v2() {
        // YAML 1.1 as kubectl reads it: octal, yes/no/on/off, ~, floats, big ints.
        let v = yaml(
            "octal: 0755\nneg: -0644\nhex: 0x1F\nyes_: yes\nno_: no\non_: on\noff_: off\ny_: Y\n\
             tilde: ~\nnull_: null\nempty:\nexp: 1e3\nbig: 99999999999999999999\n\
             u64: 18446744073709551615\nquoted: '0755'\nport: 8080\nnine: 09\n\
             date: 2024-01-02\ntime: 1:20\nfloat: 0.5\n",
        );
        let expected = json!({
            "octal": 493, "neg": -420, "hex": 31, "yes_": true, "no_": false, "on_": true,
            "off_": false, "y_": true, "tilde": null, "null_": null, "empty": null,
            "exp": 1000.0, "big": 1e20, "u64": 18446744073709551615u64, "quoted": "0755",
            "port": 8080, "nine": 9.0, "date": "2024-01-02", "time": "1:20", "float": 0.5
        });
        assert_eq!(v, expected);
        assert_eq!(v["octal"].as_i64(), Some(493));
    }

    #[test]
    fn keys_stay_as_written() {
        // go-yaml v2 would turn the key `on` into "true"; keys keep their spelling here.
        let v = yaml("on: 1\n8080: http\n0755: x\n");
        assert_eq!(v, json!({"on": 1, "8080": "http", "0755": "x"}));
        let err = decode_yaml("~: a\n", &Limits::default()).unwrap_err();
        assert_eq!((err.kind, err.at), (IssueKind::Syntax, Some((1, 1))));
    }

    #[test]
    fn anchors_aliases_and_merge_keys_work() {
        let v = yaml("base: &b {cpu: 1}\ncopy: *b\nmerged: {<<: *b, mem: 2}\n");
        assert_eq!(v["copy"], json!({"cpu": 1}));
        assert_eq!(v["merged"], json!({"mem": 2, "cpu": 1}));
    }

    #[test]
    fn non_finite_floats_are_refused_as_kubectl_refuses_them() {
        let err = decode_yaml("a: .inf\n", &Limits::default()).unwrap_err();
        assert_eq!((err.kind, err.at), (IssueKind::Syntax, Some((1, 4))));
        assert!(err.message.contains("`.inf`"), "{}", err.message);
    }

    #[test]
    fn a_second_document_after_an_end_marker_is_an_error() {
        let err = decode_yaml("a: 1\n...\nb: 2\n", &Limits::default()).unwrap_err();
        assert_eq!((err.kind, err.at), (IssueKind::Syntax, Some((3, 1))));
        assert!(err.message.contains("---"), "{}", err.message);
    }

    #[test]
    fn yaml_duplicate_keys_keep_the_last_value_and_warn() {
        let d = decode_yaml("a: 1\nb:\n  c: 1\n  c: 2\n", &Limits::default()).unwrap();
        assert_eq!(d.value, json!({"a": 1, "b": {"c": 2}}));
        let warning = d.duplicate_key.unwrap();
        assert_eq!(warning.kind, IssueKind::Warning);
        assert_eq!(warning.at, Some((4, 3)));
        assert!(warning.message.contains("\"c\""), "{}", warning.message);
    }

    #[test]
    fn json_duplicate_keys_keep_the_last_value_and_warn() {
        let d = decode_json("{\"a\": 1,\n \"a\": 2}", &Limits::default()).unwrap();
        assert_eq!(d.value, json!({"a": 2}));
        let warning = d.duplicate_key.unwrap();
        assert_eq!(warning.at.map(|(line, _)| line), Some(2));
    }

    #[test]
    fn syntax_errors_have_positions() {
        let err = decode_yaml("a: [1, 2\nb: 3\n", &Limits::default()).unwrap_err();
        assert_eq!((err.kind, err.at), (IssueKind::Syntax, Some((2, 2))));
        let err = decode_json("{\"a\": 1\n \"b\": 2}", &Limits::default()).unwrap_err();
        assert_eq!((err.kind, err.at), (IssueKind::Syntax, Some((2, 2))));
        assert!(!err.message.contains(" at line "), "{}", err.message);
    }

    #[test]
    fn alias_bombs_are_refused() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let p = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let err = decode_yaml(&text, &Limits::default()).unwrap_err();
        assert_eq!(err.kind, IssueKind::TooLarge, "{err:?}");
        assert!(err.message.contains("alias"), "{}", err.message);
    }

    #[test]
    fn deep_nesting_is_refused_in_every_style() {
        let limits = Limits::default();
        for depth in [65, 100, 100_000] {
            let flow_seq = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
            let flow_map = format!("{}1{}", "{a: ".repeat(depth), "}".repeat(depth));
            let block_seq = format!("{}1\n", "- ".repeat(depth));
            for text in [flow_seq, flow_map, block_seq] {
                let err = decode_yaml(&text, &limits).unwrap_err();
                assert_eq!(err.kind, IssueKind::TooDeep, "{depth}: {err:?}");
            }
        }
        let mut block_map = String::new();
        for i in 0..100 {
            block_map.push_str(&format!("{}a:\n", " ".repeat(i)));
        }
        assert_eq!(
            decode_yaml(&block_map, &limits).unwrap_err().kind,
            IssueKind::TooDeep
        );
        let ok = format!("{}{}", "[".repeat(64), "]".repeat(64));
        assert!(decode_yaml(&ok, &limits).is_ok());
    }

    #[test]
    fn json_nesting_is_bounded_by_the_builder_too() {
        let limits = Limits {
            max_depth: 3,
            ..Limits::default()
        };
        let err = decode_json("[[[[1]]]]", &limits).unwrap_err();
        assert_eq!(err.kind, IssueKind::TooDeep);
        let limits = Limits {
            max_depth: 1_000,
            ..Limits::default()
        };
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert_eq!(
            decode_json(&deep, &limits).unwrap_err().kind,
            IssueKind::TooDeep
        );
    }
}

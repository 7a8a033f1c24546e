//! What rules report and how it becomes an admission answer.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;
use serde::Deserialize;

/// What a rule does when it finds a problem.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Deny the request.
    Enforce,
    /// Allow it, with a warning the client shows (`kubectl`: `Warning: ...`).
    Warn,
    /// Allow it silently, recording the problem in an audit annotation.
    Audit,
    /// Do not run the rule.
    Off,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Warn => "warn",
            Mode::Audit => "audit",
            Mode::Off => "off",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A rule's identity plus the metrics of what it reported and how long it took.
#[derive(Clone, Debug)]
pub struct RuleId {
    pub id: Arc<str>,
    metrics: Option<Arc<RuleMetrics>>,
}

#[derive(Debug)]
struct RuleMetrics {
    /// enforce, warn, audit, mutate.
    hits: [Counter; 4],
    duration: Histogram,
}

impl RuleId {
    /// A rule ID whose hits and durations go to `metrics`
    /// (`rampart_admission_rule_hits_total`, `rampart_admission_rule_duration_seconds`).
    pub fn new(id: impl Into<Arc<str>>, metrics: &crate::metrics::Metrics) -> Self {
        let id = id.into();
        let hits = ["enforce", "warn", "audit", "mutate"].map(|m| metrics.rule_hits(&id, m));
        let duration = metrics.rule_duration(&id);
        Self {
            id,
            metrics: Some(Arc::new(RuleMetrics { hits, duration })),
        }
    }

    /// A rule ID without metrics (unit tests, tools).
    pub fn detached(id: impl Into<Arc<str>>) -> Self {
        Self {
            id: id.into(),
            metrics: None,
        }
    }

    pub fn as_str(&self) -> &str {
        &self.id
    }

    /// Records one evaluation's duration.
    pub fn observe(&self, elapsed: Duration) {
        if let Some(m) = &self.metrics {
            m.duration.observe(elapsed.as_secs_f64());
        }
    }

    fn count(&self, mode: Mode) {
        let i = match mode {
            Mode::Enforce => 0,
            Mode::Warn => 1,
            Mode::Audit => 2,
            Mode::Off => return,
        };
        self.count_index(i);
    }

    fn count_index(&self, i: usize) {
        if let Some(m) = &self.metrics {
            m.hits[i].inc();
        }
    }
}

/// One reason to deny.
#[derive(Clone, Debug, PartialEq)]
pub struct Denial {
    pub rule: Arc<str>,
    /// HTTP-style status code for `status.code`: 403, or 429 for rate limits.
    pub code: u16,
    pub message: String,
}

/// A rule that reported something, for the decision log.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Hit {
    pub rule: Arc<str>,
    #[serde(serialize_with = "ser_mode")]
    pub mode: Mode,
}

fn ser_mode<S: serde::Serializer>(m: &Mode, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(m.as_str())
}

/// Everything the rules said about one request.
#[derive(Debug, Default)]
pub struct Decision {
    pub denials: Vec<Denial>,
    pub warnings: Vec<String>,
    /// Keys are unique, without `/`: the API server prefixes them with the
    /// webhook's name.
    pub audit_annotations: Vec<(String, String)>,
    pub hits: Vec<Hit>,
    /// JSON Patch operations (mutations only).
    pub patch: Vec<json_patch::PatchOperation>,
    /// Mutations that added operations to `patch`.
    pub mutated_by: Vec<Arc<str>>,
}

impl Decision {
    pub fn allowed(&self) -> bool {
        self.denials.is_empty()
    }

    /// Reports a problem found by `rule` in `mode`: a denial (403), a warning
    /// or an audit annotation keyed by the rule's ID.
    pub fn report(&mut self, rule: &RuleId, mode: Mode, message: impl Into<String>) {
        match mode {
            Mode::Off => return,
            Mode::Enforce => self.deny(rule, 403, message),
            Mode::Warn => self.warnings.push(message.into()),
            Mode::Audit => self.annotate(rule.as_str(), message.into()),
        }
        self.hit(rule, mode);
    }

    /// Denies with a specific code. Use [`Decision::report`] unless the code matters.
    pub fn deny(&mut self, rule: &RuleId, code: u16, message: impl Into<String>) {
        self.denials.push(Denial {
            rule: rule.id.clone(),
            code,
            message: message.into(),
        });
    }

    /// Records that `rule` reported in `mode` (log and metrics), for rules
    /// that add denials, warnings or annotations themselves.
    pub fn hit(&mut self, rule: &RuleId, mode: Mode) {
        rule.count(mode);
        if !self
            .hits
            .iter()
            .any(|h| h.rule == rule.id && h.mode == mode)
        {
            self.hits.push(Hit {
                rule: rule.id.clone(),
                mode,
            });
        }
    }

    /// Adds patch operations on behalf of a mutation.
    pub fn mutate(
        &mut self,
        rule: &RuleId,
        ops: impl IntoIterator<Item = json_patch::PatchOperation>,
    ) {
        let before = self.patch.len();
        self.patch.extend(ops);
        if self.patch.len() > before {
            rule.count_index(3);
            self.mutated_by.push(rule.id.clone());
        }
    }

    /// Sets an audit annotation; a second value for the same key is appended
    /// after `; `.
    pub fn annotate(&mut self, key: &str, value: String) {
        match self.audit_annotations.iter_mut().find(|(k, _)| k == key) {
            Some((_, v)) => {
                v.push_str("; ");
                v.push_str(&value);
            }
            None => self.audit_annotations.push((key.to_owned(), value)),
        }
    }

    /// The `status` of a denied request: every denial's message, in rule
    /// order, joined by `; `. The code is 429 when a rate limit is among the
    /// reasons and nothing else denies, 403 otherwise.
    pub fn status(&self) -> Option<crate::review::Status> {
        if self.denials.is_empty() {
            return None;
        }
        let code = if self.denials.iter().all(|d| d.code == 429) {
            429
        } else {
            403
        };
        let mut message = String::new();
        for (i, d) in self.denials.iter().enumerate() {
            if i > 0 {
                message.push_str("; ");
            }
            message.push_str(&d.message);
        }
        Some(crate::review::Status {
            code,
            message,
            reason: if code == 429 {
                "TooManyRequests"
            } else {
                "Forbidden"
            },
            status: "Failure",
        })
    }

    /// IDs of every rule that denied.
    pub fn denying_rules(&self) -> impl Iterator<Item = &str> {
        self.denials.iter().map(|d| &*d.rule)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_map_to_denials_warnings_and_annotations() {
        let a = RuleId::detached("a");
        let b = RuleId::detached("b");
        let mut d = Decision::default();
        d.report(&a, Mode::Warn, "careful");
        d.report(&a, Mode::Audit, "one");
        d.report(&a, Mode::Audit, "two");
        d.report(&b, Mode::Off, "ignored");
        assert!(d.allowed());
        assert_eq!(d.warnings, ["careful"]);
        assert_eq!(
            d.audit_annotations,
            [("a".to_owned(), "one; two".to_owned())]
        );
        assert_eq!(d.hits.len(), 2);
        d.report(&b, Mode::Enforce, "no");
        d.deny(&a, 429, "slow down");
        let s = d.status().unwrap();
        assert_eq!((s.code, s.reason), (403, "Forbidden"));
        assert_eq!(s.message, "no; slow down");
    }

    #[test]
    fn rate_limit_alone_is_429() {
        let mut d = Decision::default();
        d.deny(&RuleId::detached("rate-limit"), 429, "slow down");
        assert_eq!(d.status().unwrap().code, 429);
    }
}

//! Prometheus metrics. Handles used on the hot path are resolved once, so a
//! request touches no label map.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Which webhook endpoint served a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Endpoint {
    Validate,
    Mutate,
}

impl Endpoint {
    pub const ALL: [Endpoint; 2] = [Endpoint::Validate, Endpoint::Mutate];

    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::Validate => "validate",
            Endpoint::Mutate => "mutate",
        }
    }
}

/// How a request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Evaluated and allowed without changes.
    Allowed,
    /// Evaluated and denied.
    Denied,
    /// Allowed with a patch.
    Patched,
    /// In an excluded namespace: allowed unevaluated.
    Excluded,
    /// No rule matches the kind and operation: allowed unevaluated.
    Unmatched,
    /// Evaluation overran the deadline; answered per `--on-timeout`.
    Timeout,
    /// Not a valid `AdmissionReview` (400), too large (413) or too slow (408).
    Invalid,
}

impl Outcome {
    pub const ALL: [Outcome; 7] = [
        Outcome::Allowed,
        Outcome::Denied,
        Outcome::Patched,
        Outcome::Excluded,
        Outcome::Unmatched,
        Outcome::Timeout,
        Outcome::Invalid,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Allowed => "allowed",
            Outcome::Denied => "denied",
            Outcome::Patched => "patched",
            Outcome::Excluded => "excluded",
            Outcome::Unmatched => "unmatched",
            Outcome::Timeout => "timeout",
            Outcome::Invalid => "invalid",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    endpoint: &'static str,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RuleLabels {
    rule: String,
    mode: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RuleOnly {
    rule: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabels {
    source: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn request_histogram() -> Histogram {
    // 5 µs × 1.5^k up to ~0.95 s, then whole seconds up to the API server's 30 s limit.
    Histogram::new(exponential_buckets(5e-6, 1.5, 31).chain([2.5, 5.0, 10.0, 30.0]))
}

fn rule_histogram() -> Histogram {
    Histogram::new([
        1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 1e-2, 0.1,
    ])
}

/// Every metric the server exports.
pub struct Metrics {
    registry: Registry,
    rule_hits: Family<RuleLabels, Counter>,
    rule_duration: HistogramFamily<RuleOnly>,
    reloads: Family<SourceLabels, Counter>,
    reload_errors: Family<SourceLabels, Counter>,
    /// `[endpoint][outcome]`.
    requests: Vec<Vec<(Counter, Histogram)>>,
    pub connections_active: Gauge,
    pub connections_total: Counter,
    pub tls_handshake_errors: Counter,
    pub rules_loaded: Gauge,
    /// Cluster policies whose current version does not compile (`--cluster`).
    pub policies_rejected: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let requests_total = Family::<RequestLabels, Counter>::default();
        let duration: HistogramFamily<RequestLabels> =
            Family::new_with_constructor(request_histogram);
        let rule_hits = Family::<RuleLabels, Counter>::default();
        let rule_duration: HistogramFamily<RuleOnly> = Family::new_with_constructor(rule_histogram);
        let reloads = Family::<SourceLabels, Counter>::default();
        let reload_errors = Family::<SourceLabels, Counter>::default();
        let connections_active = Gauge::default();
        let connections_total = Counter::default();
        let tls_handshake_errors = Counter::default();
        let rules_loaded = Gauge::default();
        let policies_rejected = Gauge::default();

        registry.register(
            "rampart_admission_requests",
            "Admission requests by endpoint and result",
            requests_total.clone(),
        );
        registry.register(
            "rampart_admission_request_duration_seconds",
            "Time from the request's headers to the response, by endpoint and result",
            duration.clone(),
        );
        registry.register(
            "rampart_admission_rule_hits",
            "Problems reported by each rule, by mode (enforce denies, warn warns, audit annotates)",
            rule_hits.clone(),
        );
        registry.register(
            "rampart_admission_rule_duration_seconds",
            "Time each rule took per evaluated request",
            rule_duration.clone(),
        );
        registry.register(
            "rampart_policy_reloads",
            "Successful reloads by source (config, namespaces, pods, tls)",
            reloads.clone(),
        );
        registry.register(
            "rampart_policy_reload_errors",
            "Failed reloads by source; the last good version stays in force",
            reload_errors.clone(),
        );
        registry.register(
            "rampart_connections_active",
            "Open client connections",
            connections_active.clone(),
        );
        registry.register(
            "rampart_connections",
            "Accepted client connections",
            connections_total.clone(),
        );
        registry.register(
            "rampart_tls_handshake_errors",
            "Failed or timed-out TLS handshakes",
            tls_handshake_errors.clone(),
        );
        registry.register(
            "rampart_policy_rules",
            "Rules in the policy set in force",
            rules_loaded.clone(),
        );

        registry.register(
            "rampart_policies_rejected",
            "Cluster policies whose current version does not compile; the previous version of each stays in force",
            policies_rejected.clone(),
        );

        let requests = Endpoint::ALL
            .iter()
            .map(|e| {
                Outcome::ALL
                    .iter()
                    .map(|o| {
                        let labels = RequestLabels {
                            endpoint: e.as_str(),
                            result: o.as_str(),
                        };
                        (
                            requests_total.get_or_create_owned(&labels),
                            duration.get_or_create_owned(&labels),
                        )
                    })
                    .collect()
            })
            .collect();
        // Make the reload series visible (at zero) before the first reload.
        for source in ["config", "namespaces", "pods", "tls"] {
            let _ = reload_errors.get_or_create(&SourceLabels { source });
        }

        Self {
            registry,
            rule_hits,
            rule_duration,
            reloads,
            reload_errors,
            requests,
            connections_active,
            connections_total,
            tls_handshake_errors,
            rules_loaded,
            policies_rejected,
        }
    }

    /// Counts a finished request and records its latency.
    pub fn observe_request(&self, endpoint: Endpoint, outcome: Outcome, elapsed: Duration) {
        let e = Endpoint::ALL
            .iter()
            .position(|x| *x == endpoint)
            .unwrap_or(0);
        let o = Outcome::ALL.iter().position(|x| *x == outcome).unwrap_or(0);
        let (count, hist) = &self.requests[e][o];
        count.inc();
        hist.observe(elapsed.as_secs_f64());
    }

    /// `mode` is `enforce`, `warn`, `audit` or `mutate`.
    pub(crate) fn rule_hits(&self, rule: &str, mode: &'static str) -> Counter {
        self.rule_hits.get_or_create_owned(&RuleLabels {
            rule: rule.to_owned(),
            mode,
        })
    }

    pub(crate) fn rule_duration(&self, rule: &str) -> Histogram {
        self.rule_duration.get_or_create_owned(&RuleOnly {
            rule: rule.to_owned(),
        })
    }

    pub fn reload_ok(&self, source: &'static str) {
        self.reloads.get_or_create(&SourceLabels { source }).inc();
    }

    pub fn reload_error(&self, source: &'static str) {
        self.reload_errors
            .get_or_create(&SourceLabels { source })
            .inc();
    }

    /// The OpenMetrics text exposition (Prometheus scrapes it as is).
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        // Writing into a String cannot fail.
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("encoding metrics");
        out
    }
}

/// Shared metrics.
pub type SharedMetrics = Arc<Metrics>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exports_requests_rules_and_reloads() {
        let m = Metrics::new();
        m.observe_request(
            Endpoint::Validate,
            Outcome::Denied,
            Duration::from_micros(40),
        );
        m.rule_hits("pod-security", "enforce").inc();
        m.reload_error("config");
        let text = m.encode();
        assert!(text.contains(
            r#"rampart_admission_requests_total{endpoint="validate",result="denied"} 1"#
        ));
        assert!(text.contains(
            r#"rampart_admission_rule_hits_total{rule="pod-security",mode="enforce"} 1"#
        ));
        assert!(text.contains(r#"rampart_policy_reload_errors_total{source="config"} 1"#));
        assert!(text.contains("rampart_admission_request_duration_seconds_bucket"));
    }
}

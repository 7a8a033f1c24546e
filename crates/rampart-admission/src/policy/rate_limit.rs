//! `rate-limit`: EventRateLimit-style token buckets per namespace and per
//! user. A request over its bucket is denied with code 429 (TooManyRequests),
//! which clients retry after backing off.
//!
//! Buckets live in the policy set, so a reload starts them full. At most
//! `cacheSize` buckets are kept per kind of key; past that, full buckets
//! (which behave exactly like new ones) are dropped, and if none is full
//! the map is cleared, which only ever errs towards allowing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::Result;

use super::requests::{ResourceSpec, covers, resource_matches};
use super::{Context, Match, ModeFor, ValidationRule};
use crate::config::{BucketConfig, Config, parse_operations};
use crate::decision::{Decision, Mode, RuleId};
use crate::glob::{Pattern, any_matches};
use crate::metrics::Metrics;

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Token buckets keyed by a string.
pub struct Buckets {
    config: BucketConfig,
    cap: usize,
    map: Mutex<HashMap<String, Bucket>>,
}

impl Buckets {
    pub fn new(config: BucketConfig, cap: usize) -> Self {
        Self {
            config,
            cap: cap.max(1),
            map: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token for `key`; `false` when the bucket is empty.
    pub fn take(&self, key: &str, now: Instant) -> bool {
        let burst = f64::from(self.config.burst);
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(b) = map.get_mut(key) {
            let refill = now.saturating_duration_since(b.last).as_secs_f64() * self.config.qps;
            b.tokens = (b.tokens + refill).min(burst);
            b.last = now;
            if b.tokens >= 1.0 {
                b.tokens -= 1.0;
                return true;
            }
            return false;
        }
        if map.len() >= self.cap {
            let qps = self.config.qps;
            map.retain(|_, b| {
                b.tokens + now.saturating_duration_since(b.last).as_secs_f64() * qps < burst
            });
            if map.len() >= self.cap {
                map.clear();
            }
        }
        map.insert(
            key.to_owned(),
            Bucket {
                tokens: burst - 1.0,
                last: now,
            },
        );
        true
    }
}

pub struct RateLimit {
    id: RuleId,
    mode: Mode,
    per_namespace: Option<Buckets>,
    per_user: Option<Buckets>,
    api_groups: Vec<String>,
    resources: Vec<ResourceSpec>,
    operations: Vec<crate::review::Operation>,
    exempt_users: Vec<Pattern>,
    exempt_groups: Vec<Pattern>,
}

pub fn rule(
    config: &Config,
    metrics: &Metrics,
    mode: ModeFor<'_>,
) -> Result<Option<Arc<dyn ValidationRule>>> {
    let Some(rl) = &config.rate_limit else {
        return Ok(None);
    };
    let mode = mode("rate-limit", Mode::Enforce);
    if mode == Mode::Off || (rl.per_namespace.is_none() && rl.per_user.is_none()) {
        return Ok(None);
    }
    Ok(Some(Arc::new(RateLimit {
        id: RuleId::new("rate-limit", metrics),
        mode,
        per_namespace: rl.per_namespace.map(|b| Buckets::new(b, rl.cache_size)),
        per_user: rl.per_user.map(|b| Buckets::new(b, rl.cache_size)),
        api_groups: rl.api_groups.clone(),
        resources: rl
            .resources
            .iter()
            .map(|s| ResourceSpec::parse(s))
            .collect(),
        operations: parse_operations(&rl.operations)?,
        exempt_users: rl.exempt_users.iter().map(Pattern::new).collect(),
        exempt_groups: rl.exempt_groups.iter().map(Pattern::new).collect(),
    })))
}

impl ValidationRule for RateLimit {
    fn id(&self) -> &RuleId {
        &self.id
    }

    fn matches(&self) -> Vec<Match> {
        resource_matches(&self.api_groups, &self.resources, &self.operations)
    }

    fn validate(&self, cx: &Context<'_>, out: &mut Decision) {
        let r = cx.request;
        if !covers(&self.api_groups, &self.resources, r)
            || any_matches(&self.exempt_users, &r.user_info.username)
            || r.user_info
                .groups
                .iter()
                .any(|g| any_matches(&self.exempt_groups, g))
        {
            return;
        }
        let now = Instant::now();
        let mut over = None;
        if let Some(b) = &self.per_namespace
            && !r.namespace.is_empty()
            && !b.take(&r.namespace, now)
        {
            over = Some(format!(
                "namespace {:?} is over its admission rate limit of {} requests/s (burst {})",
                r.namespace, b.config.qps, b.config.burst
            ));
        }
        if over.is_none()
            && let Some(b) = &self.per_user
            && !b.take(&r.user_info.username, now)
        {
            over = Some(format!(
                "user {:?} is over its admission rate limit of {} requests/s (burst {})",
                r.user_info.username, b.config.qps, b.config.burst
            ));
        }
        let Some(why) = over else { return };
        let message = format!("rate-limit: too many requests: {why}; retry later");
        if self.mode == Mode::Enforce {
            out.deny(&self.id, 429, message);
            out.hit(&self.id, Mode::Enforce);
        } else {
            out.report(&self.id, self.mode, message);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn buckets_allow_bursts_then_refill() {
        let b = Buckets::new(
            BucketConfig {
                qps: 10.0,
                burst: 3,
            },
            100,
        );
        let t0 = Instant::now();
        assert!(b.take("a", t0));
        assert!(b.take("a", t0));
        assert!(b.take("a", t0));
        assert!(!b.take("a", t0));
        assert!(b.take("b", t0), "keys are independent");
        assert!(
            b.take("a", t0 + Duration::from_millis(100)),
            "one token after 100 ms at 10 qps"
        );
        assert!(!b.take("a", t0 + Duration::from_millis(100)));
    }

    #[test]
    fn full_buckets_are_evicted_first() {
        let b = Buckets::new(BucketConfig { qps: 1.0, burst: 2 }, 2);
        let t0 = Instant::now();
        assert!(b.take("busy", t0));
        assert!(b.take("busy", t0));
        assert!(b.take("idle", t0));
        let later = t0 + Duration::from_secs(5);
        // "idle" refilled to full by now and is dropped; "busy" has refilled too.
        assert!(b.take("new", later));
        assert!(b.map.lock().unwrap().len() <= 2);
    }
}

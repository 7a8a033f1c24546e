//! The cluster's policies as a policy source of the webhook.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;
use rampart_admission::metrics::Metrics;
use rampart_admission::policy::user::rules_for;
use rampart_admission::policy::{PolicySource, SourceRules};
use rampart_kube::PolicyWatch;

/// The cluster's policies, compiled live by a [`PolicyWatch`]
/// (`rampart serve --cluster`); the server reloads when it publishes a new set.
pub struct ClusterPolicies(pub Arc<PolicyWatch>);

impl PolicySource for ClusterPolicies {
    fn name(&self) -> &'static str {
        "cluster-policies"
    }

    fn watched_paths(&self) -> Vec<PathBuf> {
        Vec::new()
    }

    fn ready(&self) -> bool {
        self.0.is_ready()
    }

    fn load(&self, metrics: &Metrics) -> Result<SourceRules> {
        Ok(rules_for(self.0.current(), metrics))
    }
}

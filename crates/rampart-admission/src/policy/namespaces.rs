//! `namespace-protection`: deleting `default`, `kube-system`, `kube-public`
//! (configurable) or Rampart's own namespace is denied. Runs in excluded
//! namespaces too: deleting a namespace is a request in that namespace.

use std::sync::Arc;

use super::{Context, Match, ModeFor, ValidationRule};
use crate::config::Config;
use crate::decision::{Decision, Mode, RuleId};
use crate::metrics::Metrics;
use crate::review::Operation;

pub struct NamespaceProtection {
    id: RuleId,
    protected: Vec<String>,
    mode: Mode,
}

pub fn rules(
    config: &Config,
    own_namespace: &str,
    metrics: &Metrics,
    mode: ModeFor<'_>,
) -> Vec<Arc<dyn ValidationRule>> {
    let mode = mode("namespace-protection", Mode::Enforce);
    if mode == Mode::Off {
        return Vec::new();
    }
    let mut protected = config.namespace_protection.protected.clone();
    if !own_namespace.is_empty() && !protected.iter().any(|n| n == own_namespace) {
        protected.push(own_namespace.to_owned());
    }
    vec![Arc::new(NamespaceProtection {
        id: RuleId::new("namespace-protection", metrics),
        protected,
        mode,
    })]
}

impl ValidationRule for NamespaceProtection {
    fn id(&self) -> &RuleId {
        &self.id
    }

    fn matches(&self) -> Vec<Match> {
        vec![Match::kind("", "Namespace", &[Operation::Delete])]
    }

    fn runs_in_excluded_namespaces(&self) -> bool {
        true
    }

    fn validate(&self, cx: &Context<'_>, out: &mut Decision) {
        let name = cx.request.name.as_ref();
        if self.protected.iter().any(|p| p == name) {
            out.report(
                &self.id,
                self.mode,
                format!(
                    "{}: this namespace is protected by Rampart and may not be deleted",
                    cx.forbidden_prefix()
                ),
            );
        }
    }
}

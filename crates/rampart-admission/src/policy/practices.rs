//! The best-practice checks of `rampart_checks::practices`, as admission
//! rules: images, resources, probes, hostPath and RBAC.
//!
//! Each check runs in its configured mode (`rules.<id>`, else
//! `bestPractices.mode`, default audit; `image-registry-not-allowed` defaults
//! to enforce since configuring an allow-list asks for it). Messages are
//! `<check-id>: <what is wrong>`. Corpus checks (namespace hygiene,
//! service-account token) need objects the webhook does not see and are not
//! run; `untrusted-namespace-without-sandbox` is re-implemented in
//! [`super::sandbox`] against the namespace cache.

use std::sync::Arc;

use rampart_checks::practices::{PracticeConfig, checks};
use rampart_core::{Category, Check, Violation};

use super::{Context, Match, ModeFor, ValidationRule, ignored, pod_spec_matches};
use crate::config::Config;
use crate::decision::{Decision, Mode, RuleId};
use crate::metrics::Metrics;
use crate::review::Operation;

/// One best-practice check with its mode.
pub struct PracticeRule {
    id: RuleId,
    check: Box<dyn Check>,
    mode: Mode,
    rbac: bool,
}

pub fn rules(
    config: &Config,
    metrics: &Metrics,
    mode: ModeFor<'_>,
) -> Vec<Arc<dyn ValidationRule>> {
    let practice = PracticeConfig {
        allowed_registries: config.images.allowed_registries.clone(),
        require_cpu_limits: config.best_practices.require_cpu_limits,
        ..PracticeConfig::default()
    };
    let (object_checks, _corpus) = checks(&practice);
    object_checks
        .into_iter()
        .filter(|c| c.meta().category != Category::Namespaces)
        .filter_map(|check| {
            let id = check.meta().id.to_string();
            let rbac = check.meta().category == Category::Rbac;
            let default = match id.as_str() {
                "image-registry-not-allowed" => Mode::Enforce,
                "image-tag-latest" => Mode::Warn,
                _ => config.best_practices.mode,
            };
            let mode = mode(&id, default);
            (mode != Mode::Off).then(|| {
                Arc::new(PracticeRule {
                    id: RuleId::new(id, metrics),
                    rbac,
                    check,
                    mode,
                }) as Arc<dyn ValidationRule>
            })
        })
        .collect()
}

impl ValidationRule for PracticeRule {
    fn id(&self) -> &RuleId {
        &self.id
    }

    fn matches(&self) -> Vec<Match> {
        if self.rbac {
            let ops = [Operation::Create, Operation::Update];
            ["Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"]
                .into_iter()
                .map(|k| Match::kind("rbac.authorization.k8s.io", k, &ops))
                .collect()
        } else {
            pod_spec_matches()
        }
    }

    fn validate(&self, cx: &Context<'_>, out: &mut Decision) {
        let Some(view) = &cx.view else { return };
        if !cx.pod_update_is_significant() || ignored(view, &self.id.id, self.mode) {
            return;
        }
        let mut found: Vec<Violation> = Vec::new();
        self.check.check(view, &mut found);
        for v in found {
            out.report(
                &self.id,
                self.mode,
                format!("{}: {}", self.id.id, v.message),
            );
        }
    }
}

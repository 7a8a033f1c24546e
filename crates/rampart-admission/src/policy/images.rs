//! `image-digest-required`: in the namespaces listed in
//! `images.requireDigestIn`, every image (init, regular and ephemeral
//! containers) must be pinned by digest (`app@sha256:…`). The registry
//! allow-list and the `:latest` rule are best-practice checks
//! (`image-registry-not-allowed`, `image-tag-latest`).

use std::sync::Arc;

use rampart_checks::practices::image::ImageRef;
use rampart_core::value::{array_field, str_field};

use super::{Context, Match, ModeFor, ValidationRule, ignored, pod_spec_matches};
use crate::config::Config;
use crate::decision::{Decision, Mode, RuleId};
use crate::glob::{Pattern, any_matches};
use crate::metrics::Metrics;

pub struct DigestRequired {
    id: RuleId,
    namespaces: Vec<Pattern>,
    mode: Mode,
}

pub fn rules(
    config: &Config,
    metrics: &Metrics,
    mode: ModeFor<'_>,
) -> Vec<Arc<dyn ValidationRule>> {
    let mode = mode("image-digest-required", Mode::Enforce);
    if config.images.require_digest_in.is_empty() || mode == Mode::Off {
        return Vec::new();
    }
    vec![Arc::new(DigestRequired {
        id: RuleId::new("image-digest-required", metrics),
        namespaces: config
            .images
            .require_digest_in
            .iter()
            .map(Pattern::new)
            .collect(),
        mode,
    })]
}

impl ValidationRule for DigestRequired {
    fn id(&self) -> &RuleId {
        &self.id
    }

    fn matches(&self) -> Vec<Match> {
        pod_spec_matches()
    }

    fn validate(&self, cx: &Context<'_>, out: &mut Decision) {
        let Some(view) = &cx.view else { return };
        let Some(pod) = &view.pod else { return };
        if !any_matches(&self.namespaces, &cx.request.namespace)
            || !cx.pod_update_is_significant()
            || ignored(view, &self.id.id, self.mode)
        {
            return;
        }
        for (list, noun) in [
            ("initContainers", "init container"),
            ("containers", "container"),
            ("ephemeralContainers", "ephemeral container"),
        ] {
            for c in array_field(pod.spec, list) {
                let Some(image) = str_field(c, "image") else {
                    continue;
                };
                if ImageRef::parse(image).is_some_and(|r| r.is_pinned()) {
                    continue;
                }
                let name = str_field(c, "name").unwrap_or("");
                out.report(
                    &self.id,
                    self.mode,
                    format!(
                        "image-digest-required: {noun} {name:?} image {image:?} is not pinned by digest \
                         (use image@sha256:...) in namespace {:?}",
                        cx.request.namespace
                    ),
                );
            }
        }
    }
}

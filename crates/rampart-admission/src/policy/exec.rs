//! `deny-escalating-exec` (upstream's DenyEscalatingExec): `pods/exec` and
//! `pods/attach` are denied into pods that are privileged or share the host's
//! PID or IPC namespace, where a shell is a shell on the node. The pod comes
//! from the [`PodLookup`](crate::lookup::PodLookup); a pod it does not know is
//! allowed or denied per `exec.onUnknownPod` (default deny: an unknown pod
//! cannot be shown to be safe).

use std::sync::Arc;

use rampart_core::value::{bool_field, field};

use super::sandbox::privileged_containers;
use super::{Context, Match, ModeFor, Target, ValidationRule};
use crate::config::{AllowOrDeny, Config};
use crate::decision::{Decision, Mode, RuleId};
use crate::metrics::Metrics;
use crate::review::Operation;

pub struct DenyEscalatingExec {
    id: RuleId,
    mode: Mode,
    on_unknown: AllowOrDeny,
}

pub fn rules(
    config: &Config,
    metrics: &Metrics,
    mode: ModeFor<'_>,
) -> Vec<Arc<dyn ValidationRule>> {
    let mode = mode("deny-escalating-exec", Mode::Enforce);
    if mode == Mode::Off {
        return Vec::new();
    }
    vec![Arc::new(DenyEscalatingExec {
        id: RuleId::new("deny-escalating-exec", metrics),
        mode,
        on_unknown: config.exec.on_unknown_pod,
    })]
}

impl ValidationRule for DenyEscalatingExec {
    fn id(&self) -> &RuleId {
        &self.id
    }

    fn matches(&self) -> Vec<Match> {
        vec![Match {
            group: "".into(),
            target: Target::Resource("pods".into()),
            operations: vec![Operation::Connect],
            subresources: vec!["exec".into(), "attach".into()],
        }]
    }

    fn validate(&self, cx: &Context<'_>, out: &mut Decision) {
        let r = cx.request;
        let Some(pods) = cx.pods else { return };
        let Some(pod) = pods.pod(&r.namespace, &r.name) else {
            if self.on_unknown == AllowOrDeny::Deny {
                out.report(
                    &self.id,
                    self.mode,
                    format!(
                        "{}: cannot exec into or attach to pod {:?} in namespace {:?}: the pod is not in Rampart's pod cache, so it cannot be shown not to be privileged",
                        cx.forbidden_prefix(),
                        r.name,
                        r.namespace
                    ),
                );
            }
            return;
        };
        let Some(spec) = field(&pod, "spec") else {
            return;
        };
        let reason = if bool_field(spec, "hostPID") == Some(true) {
            "cannot exec into or attach to a container using host pid"
        } else if bool_field(spec, "hostIPC") == Some(true) {
            "cannot exec into or attach to a container using host ipc"
        } else if !privileged_containers(spec).is_empty() {
            "cannot exec into or attach to a privileged container"
        } else {
            return;
        };
        out.report(
            &self.id,
            self.mode,
            format!("{}: {reason}", cx.forbidden_prefix()),
        );
    }
}

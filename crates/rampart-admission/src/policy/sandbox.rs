//! Sandboxed runtimes (Kata Containers, gVisor) and untrusted namespaces.
//!
//! - `sandbox-privileged` (default enforce): a pod in a sandbox runtime class
//!   may not have privileged containers. A privileged container in a Kata VM
//!   gets the guest's devices and, depending on the runtime's configuration,
//!   the host's; the sandbox is then no boundary.
//! - `untrusted-namespace-without-sandbox` (default enforce): in a namespace
//!   labelled untrusted (`sandbox.untrustedLabel`, default
//!   `rampart.dev/untrusted=true`), a pod with privileged containers or host
//!   namespaces must run in a sandbox runtime class. The mutation
//!   `untrusted-runtime-class` can set the class for pods that set none.

use std::sync::Arc;

use anyhow::Result;
use rampart_core::PodTemplate;
use rampart_core::value::{array_field, bool_field, dig, str_field};
use serde_json::Value;

use super::{Context, Match, ModeFor, ValidationRule, ignored, pod_spec_matches};
use crate::config::Config;
use crate::decision::{Decision, Mode, RuleId};
use crate::metrics::Metrics;

/// Runtime classes that sandbox; `*` at the end matches a prefix.
#[derive(Clone, Debug)]
pub struct SandboxClasses(Vec<String>);

impl SandboxClasses {
    pub fn new(classes: &[String]) -> Self {
        Self(classes.to_vec())
    }

    pub fn contains(&self, class: &str) -> bool {
        self.0.iter().any(|s| match s.strip_suffix('*') {
            Some(prefix) => class.starts_with(prefix),
            None => s == class,
        })
    }
}

/// `(list noun, name)` of every privileged container.
pub fn privileged_containers(spec: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for (list, noun) in [
        ("initContainers", "init container"),
        ("containers", "container"),
        ("ephemeralContainers", "ephemeral container"),
    ] {
        for c in array_field(spec, list) {
            if dig(c, &["securityContext", "privileged"]).and_then(Value::as_bool) == Some(true) {
                out.push(format!("{noun} {:?}", str_field(c, "name").unwrap_or("")));
            }
        }
    }
    out
}

pub struct SandboxPrivileged {
    id: RuleId,
    classes: SandboxClasses,
    mode: Mode,
}

pub struct UntrustedWithoutSandbox {
    id: RuleId,
    classes: SandboxClasses,
    label: (String, String),
    mode: Mode,
}

pub fn rules(
    config: &Config,
    metrics: &Metrics,
    mode: ModeFor<'_>,
) -> Result<Vec<Arc<dyn ValidationRule>>> {
    let classes = SandboxClasses::new(&config.sandbox.runtime_classes);
    let (k, v) = config.sandbox.label()?;
    let mut out: Vec<Arc<dyn ValidationRule>> = Vec::new();
    let m = mode("sandbox-privileged", Mode::Enforce);
    if m != Mode::Off {
        out.push(Arc::new(SandboxPrivileged {
            id: RuleId::new("sandbox-privileged", metrics),
            classes: classes.clone(),
            mode: m,
        }));
    }
    let m = mode("untrusted-namespace-without-sandbox", Mode::Enforce);
    if m != Mode::Off {
        out.push(Arc::new(UntrustedWithoutSandbox {
            id: RuleId::new("untrusted-namespace-without-sandbox", metrics),
            classes,
            label: (k.to_owned(), v.to_owned()),
            mode: m,
        }));
    }
    Ok(out)
}

fn runtime_class<'a>(pod: &PodTemplate<'a>) -> Option<&'a str> {
    str_field(pod.spec, "runtimeClassName").filter(|r| !r.is_empty())
}

impl ValidationRule for SandboxPrivileged {
    fn id(&self) -> &RuleId {
        &self.id
    }

    fn matches(&self) -> Vec<Match> {
        pod_spec_matches()
    }

    fn validate(&self, cx: &Context<'_>, out: &mut Decision) {
        let Some(view) = &cx.view else { return };
        let Some(pod) = &view.pod else { return };
        let Some(class) = runtime_class(pod).filter(|c| self.classes.contains(c)) else {
            return;
        };
        if !cx.pod_update_is_significant() || ignored(view, &self.id.id, self.mode) {
            return;
        }
        let privileged = privileged_containers(pod.spec);
        if !privileged.is_empty() {
            out.report(
                &self.id,
                self.mode,
                format!(
                    "sandbox-privileged: privileged containers are not allowed in the sandboxed runtime class {class:?}: {}",
                    privileged.join(", ")
                ),
            );
        }
    }
}

impl ValidationRule for UntrustedWithoutSandbox {
    fn id(&self) -> &RuleId {
        &self.id
    }

    fn matches(&self) -> Vec<Match> {
        pod_spec_matches()
    }

    fn validate(&self, cx: &Context<'_>, out: &mut Decision) {
        let Some(view) = &cx.view else { return };
        let Some(pod) = &view.pod else { return };
        if cx.namespace_label(&self.label.0) != Some(self.label.1.as_str()) {
            return;
        }
        let class = runtime_class(pod);
        if class.is_some_and(|c| self.classes.contains(c))
            || !cx.pod_update_is_significant()
            || ignored(view, &self.id.id, self.mode)
        {
            return;
        }
        let mut what: Vec<String> = ["hostNetwork", "hostPID", "hostIPC"]
            .into_iter()
            .filter(|k| bool_field(pod.spec, k) == Some(true))
            .map(str::to_owned)
            .collect();
        what.extend(
            privileged_containers(pod.spec)
                .into_iter()
                .map(|c| format!("privileged {c}")),
        );
        if what.is_empty() {
            return;
        }
        let class = match class {
            Some(c) => format!("runtimeClassName {c:?} is not a sandbox"),
            None => "no runtimeClassName".to_owned(),
        };
        out.report(
            &self.id,
            self.mode,
            format!(
                "untrusted-namespace-without-sandbox: pod in untrusted namespace {:?} uses {} without a sandbox ({class})",
                cx.request.namespace,
                what.join(", ")
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sandbox_classes_match_names_and_prefixes() {
        let c = SandboxClasses::new(&["gvisor".into(), "kata-*".into()]);
        assert!(c.contains("gvisor"));
        assert!(c.contains("kata-qemu"));
        assert!(!c.contains("kata"));
        assert!(!c.contains("runc"));
    }
}

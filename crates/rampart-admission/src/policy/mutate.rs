//! Mutations, as RFC 6902 JSON Patch operations computed against the object
//! as received, so fields Rampart does not know survive untouched. Every
//! mutation only adds what is absent (AlwaysPullImages also replaces other
//! pull policies), so running twice (webhook reinvocation) adds nothing.
//!
//! | rule ID | what | where |
//! |---|---|---|
//! | `always-pull-images` | `imagePullPolicy: Always` on every container | Pod CREATE, workload CREATE |
//! | `security-context-defaults` | `allowPrivilegeEscalation: false` and `capabilities.drop: [ALL]` per container, `seccompProfile: RuntimeDefault` on the pod | Pod CREATE, workload CREATE |
//! | `default-resources` | configured requests and limits where a container sets none | Pod CREATE, workload CREATE |
//! | `default-toleration-seconds` | `not-ready` and `unreachable` NoExecute tolerations | Pod CREATE |
//! | `pod-node-selector` | the namespace's node selector merged into the pod's; a conflict denies | Pod CREATE |
//! | `untrusted-runtime-class` | `runtimeClassName` in untrusted namespaces | Pod CREATE, workload CREATE |
//!
//! Workloads are mutated on CREATE only: changing the template of an
//! existing workload on an unrelated update would roll it out (and a Job's
//! template is immutable). Their pods are mutated when created.
//!
//! Care for validity: `allowPrivilegeEscalation: false` is not set on
//! privileged containers or ones adding `SYS_ADMIN` (the API rejects both
//! combinations); the pod seccomp profile is not set when the legacy seccomp
//! annotation is present (field and annotation must agree) or for Windows
//! pods; a default request is not set where the container has a limit for
//! that resource (the API server defaults the request to the limit), nor a
//! default limit where it has a request (it could be lower); resources set at
//! pod level (`spec.resources`) are left alone.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Result;
use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, PatchOperation, ReplaceOperation};
use rampart_core::value::{array_field, dig, field, str_field};
use rampart_core::{FieldPath, PodBearingKind, PodTemplate, Segment};
use serde_json::{Map, Value, json};

use super::{Context, Match, ModeFor, MutationRule};
use crate::config::{Config, parse_node_selector};
use crate::decision::{Decision, Mode, RuleId};
use crate::metrics::Metrics;
use crate::review::Operation;

pub const NODE_SELECTOR_ANNOTATION: &str = "scheduler.alpha.kubernetes.io/node-selector";

/// A JSON pointer to a field path.
fn pointer(path: &FieldPath) -> PointerBuf {
    let mut p = PointerBuf::new();
    for seg in path.segments() {
        match seg {
            Segment::Key(k) => p.push_back(k.as_ref()),
            Segment::Index(i) => p.push_back(i.to_string()),
        }
    }
    p
}

fn add(path: FieldPath, value: Value) -> PatchOperation {
    PatchOperation::Add(AddOperation {
        path: pointer(&path),
        value,
    })
}

fn replace(path: FieldPath, value: Value) -> PatchOperation {
    PatchOperation::Replace(ReplaceOperation {
        path: pointer(&path),
        value,
    })
}

/// The containers a mutation visits, with their paths.
fn containers<'a>(
    pod: &'a PodTemplate<'a>,
    lists: &'static [&'static str],
) -> impl Iterator<Item = (FieldPath, &'a Value)> + 'a {
    lists.iter().flat_map(move |list| {
        array_field(pod.spec, list)
            .iter()
            .enumerate()
            .map(move |(i, c)| (pod.spec_path.key(*list).index(i), c))
    })
}

const ALL_LISTS: &[&str] = &["initContainers", "containers", "ephemeralContainers"];
const INIT_AND_REGULAR: &[&str] = &["initContainers", "containers"];

fn is_windows(pod: &PodTemplate<'_>) -> bool {
    dig(pod.spec, &["os", "name"]).and_then(Value::as_str) == Some("windows")
}

/// Pods on CREATE, and workloads on CREATE when `templates`.
fn create_matches(templates: bool) -> Vec<Match> {
    PodBearingKind::ALL
        .into_iter()
        .filter(|&k| templates || k == PodBearingKind::Pod)
        .map(|k| Match::kind(k.group(), k.kind(), &[Operation::Create]))
        .collect()
}

/// The pod template of the object under review.
fn template<'c>(cx: &'c Context<'_>) -> Option<&'c PodTemplate<'c>> {
    cx.view.as_ref()?.pod.as_ref()
}

pub fn rules(
    config: &Config,
    metrics: &Metrics,
    mode: ModeFor<'_>,
) -> Result<Vec<Arc<dyn MutationRule>>> {
    let m = &config.mutations;
    let mut out: Vec<Arc<dyn MutationRule>> = Vec::new();
    if m.always_pull_images {
        out.push(Arc::new(AlwaysPullImages(RuleId::new(
            "always-pull-images",
            metrics,
        ))));
    }
    if m.security_context {
        out.push(Arc::new(SecurityContextDefaults(RuleId::new(
            "security-context-defaults",
            metrics,
        ))));
    }
    if let Some(dr) = &m.default_resources
        && !(dr.requests.is_empty() && dr.limits.is_empty())
    {
        out.push(Arc::new(DefaultResources {
            id: RuleId::new("default-resources", metrics),
            requests: dr.requests.clone(),
            limits: dr.limits.clone(),
        }));
    }
    if let Some(seconds) = m.default_toleration_seconds {
        out.push(Arc::new(DefaultTolerationSeconds {
            id: RuleId::new("default-toleration-seconds", metrics),
            seconds,
        }));
    }
    if m.pod_node_selector {
        out.push(Arc::new(PodNodeSelector {
            id: RuleId::new("pod-node-selector", metrics),
            cluster_default: parse_node_selector(&m.cluster_default_node_selector)
                .map_err(|e| anyhow::anyhow!("mutations.clusterDefaultNodeSelector: {e}"))?,
            mode: mode("pod-node-selector", Mode::Enforce),
        }));
    }
    if let Some(class) = &m.untrusted_runtime_class {
        let (k, v) = config.sandbox.label()?;
        out.push(Arc::new(UntrustedRuntimeClass {
            id: RuleId::new("untrusted-runtime-class", metrics),
            class: class.clone(),
            label: (k.to_owned(), v.to_owned()),
        }));
    }
    Ok(out)
}

pub struct AlwaysPullImages(RuleId);

impl MutationRule for AlwaysPullImages {
    fn id(&self) -> &RuleId {
        &self.0
    }

    fn matches(&self) -> Vec<Match> {
        create_matches(true)
    }

    fn mutate(&self, cx: &Context<'_>, out: &mut Decision) {
        let Some(pod) = template(cx) else { return };
        let ops: Vec<_> = containers(pod, ALL_LISTS)
            .filter_map(|(path, c)| {
                let path = path.key("imagePullPolicy");
                match c.get("imagePullPolicy") {
                    Some(Value::String(p)) if p == "Always" => None,
                    Some(Value::Null) | None => Some(add(path, json!("Always"))),
                    Some(_) => Some(replace(path, json!("Always"))),
                }
            })
            .collect();
        out.mutate(&self.0, ops);
    }
}

pub struct SecurityContextDefaults(RuleId);

fn adds_sys_admin(sc: &Value) -> bool {
    dig(sc, &["capabilities", "add"])
        .and_then(Value::as_array)
        .is_some_and(|caps| {
            caps.iter()
                .filter_map(Value::as_str)
                .any(|c| c == "SYS_ADMIN" || c == "CAP_SYS_ADMIN")
        })
}

impl MutationRule for SecurityContextDefaults {
    fn id(&self) -> &RuleId {
        &self.0
    }

    fn matches(&self) -> Vec<Match> {
        create_matches(true)
    }

    fn mutate(&self, cx: &Context<'_>, out: &mut Decision) {
        let Some(pod) = template(cx) else { return };
        if is_windows(pod) {
            return;
        }
        let mut ops = Vec::new();
        let legacy_seccomp = pod
            .annotation("seccomp.security.alpha.kubernetes.io/pod")
            .is_some();
        let sc_path = pod.spec_path.key("securityContext");
        match field(pod.spec, "securityContext") {
            None if !legacy_seccomp => ops.push(add(
                sc_path,
                json!({"seccompProfile": {"type": "RuntimeDefault"}}),
            )),
            Some(sc) if !legacy_seccomp && field(sc, "seccompProfile").is_none() => ops.push(add(
                sc_path.key("seccompProfile"),
                json!({"type": "RuntimeDefault"}),
            )),
            _ => {}
        }
        for (path, c) in containers(pod, INIT_AND_REGULAR) {
            let path = path.key("securityContext");
            let Some(sc) = field(c, "securityContext") else {
                ops.push(add(
                    path,
                    json!({"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}),
                ));
                continue;
            };
            let privileged = sc.get("privileged").and_then(Value::as_bool) == Some(true);
            if field(sc, "allowPrivilegeEscalation").is_none() && !privileged && !adds_sys_admin(sc)
            {
                ops.push(add(path.key("allowPrivilegeEscalation"), json!(false)));
            }
            match field(sc, "capabilities") {
                None => ops.push(add(path.key("capabilities"), json!({"drop": ["ALL"]}))),
                Some(caps) if field(caps, "drop").is_none() => {
                    ops.push(add(path.key("capabilities").key("drop"), json!(["ALL"])));
                }
                Some(_) => {}
            }
        }
        out.mutate(&self.0, ops);
    }
}

pub struct DefaultResources {
    id: RuleId,
    requests: BTreeMap<String, String>,
    limits: BTreeMap<String, String>,
}

impl MutationRule for DefaultResources {
    fn id(&self) -> &RuleId {
        &self.id
    }

    fn matches(&self) -> Vec<Match> {
        create_matches(true)
    }

    fn mutate(&self, cx: &Context<'_>, out: &mut Decision) {
        let Some(pod) = template(cx) else { return };
        let pod_level = |kind: &str, name: &str| {
            dig(pod.spec, &["resources", kind])
                .and_then(|m| field(m, name))
                .is_some()
        };
        let mut ops = Vec::new();
        for (path, c) in containers(pod, INIT_AND_REGULAR) {
            let res = field(c, "resources");
            let has = |kind: &str, name: &str| {
                res.and_then(|r| field(r, kind))
                    .and_then(|m| field(m, name))
                    .is_some()
            };
            // What to add per kind: (kind, name, quantity).
            let mut want: Vec<(&str, &str, &str)> = Vec::new();
            for (name, q) in &self.requests {
                if !has("requests", name) && !has("limits", name) && !pod_level("requests", name) {
                    want.push(("requests", name, q));
                }
            }
            for (name, q) in &self.limits {
                if !has("limits", name) && !has("requests", name) && !pod_level("limits", name) {
                    want.push(("limits", name, q));
                }
            }
            if want.is_empty() {
                continue;
            }
            let res_path = path.key("resources");
            let Some(res) = res else {
                let mut obj = Map::new();
                for (kind, name, q) in want {
                    obj.entry(kind)
                        .or_insert_with(|| json!({}))
                        .as_object_mut()
                        .map(|m| m.insert(name.to_owned(), json!(q)));
                }
                ops.push(add(res_path, Value::Object(obj)));
                continue;
            };
            for kind in ["requests", "limits"] {
                let items: Vec<_> = want.iter().filter(|(k, _, _)| *k == kind).collect();
                if items.is_empty() {
                    continue;
                }
                if field(res, kind).is_none() {
                    let obj: Map<String, Value> = items
                        .iter()
                        .map(|(_, n, q)| ((*n).to_owned(), json!(q)))
                        .collect();
                    ops.push(add(res_path.key(kind), Value::Object(obj)));
                } else {
                    for (_, name, q) in items {
                        ops.push(add(res_path.key(kind).key(name.to_string()), json!(q)));
                    }
                }
            }
        }
        out.mutate(&self.id, ops);
    }
}

pub struct DefaultTolerationSeconds {
    id: RuleId,
    seconds: u64,
}

impl MutationRule for DefaultTolerationSeconds {
    fn id(&self) -> &RuleId {
        &self.id
    }

    fn matches(&self) -> Vec<Match> {
        create_matches(false)
    }

    fn mutate(&self, cx: &Context<'_>, out: &mut Decision) {
        let Some(pod) = template(cx) else { return };
        let tolerations = array_field(pod.spec, "tolerations");
        let tolerates = |key: &str| {
            tolerations.iter().any(|t| {
                let k = str_field(t, "key").unwrap_or("");
                let effect = str_field(t, "effect").unwrap_or("");
                (k == key || k.is_empty()) && (effect == "NoExecute" || effect.is_empty())
            })
        };
        let missing: Vec<Value> = ["node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"]
            .into_iter()
            .filter(|k| !tolerates(k))
            .map(|k| {
                json!({"key": k, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": self.seconds})
            })
            .collect();
        if missing.is_empty() {
            return;
        }
        let path = pod.spec_path.key("tolerations");
        let ops = if field(pod.spec, "tolerations").is_some_and(Value::is_array) {
            missing.into_iter().map(|t| add(path.key("-"), t)).collect()
        } else {
            vec![add(path, Value::Array(missing))]
        };
        out.mutate(&self.id, ops);
    }
}

pub struct PodNodeSelector {
    id: RuleId,
    cluster_default: Vec<(String, String)>,
    mode: Mode,
}

impl MutationRule for PodNodeSelector {
    fn id(&self) -> &RuleId {
        &self.id
    }

    fn matches(&self) -> Vec<Match> {
        create_matches(false)
    }

    fn mutate(&self, cx: &Context<'_>, out: &mut Decision) {
        let Some(pod) = template(cx) else { return };
        let parsed;
        let selector: &[(String, String)] = match cx
            .namespace
            .as_deref()
            .and_then(|n| n.annotation(NODE_SELECTOR_ANNOTATION))
        {
            Some(text) => match parse_node_selector(text) {
                Ok(s) => {
                    parsed = s;
                    &parsed
                }
                Err(e) => {
                    out.report(
                        &self.id,
                        self.mode,
                        format!(
                            "{}: namespace {:?} has an invalid {NODE_SELECTOR_ANNOTATION} annotation: {e}",
                            cx.forbidden_prefix(),
                            cx.request.namespace
                        ),
                    );
                    return;
                }
            },
            None => &self.cluster_default,
        };
        if selector.is_empty() {
            return;
        }
        let current = field(pod.spec, "nodeSelector");
        let mut missing = Vec::new();
        for (k, v) in selector {
            match current.and_then(|c| str_field(c, k)) {
                Some(have) if have == v => {}
                Some(have) => {
                    out.report(
                        &self.id,
                        self.mode,
                        format!(
                            "{}: pod node label selector conflicts with its namespace node label selector ({k}={have} vs {k}={v})",
                            cx.forbidden_prefix()
                        ),
                    );
                    return;
                }
                None => missing.push((k, v)),
            }
        }
        let path = pod.spec_path.key("nodeSelector");
        let ops = if current.is_some_and(Value::is_object) {
            missing
                .into_iter()
                .map(|(k, v)| add(path.key(k.clone()), json!(v)))
                .collect()
        } else {
            let obj: Map<String, Value> = missing
                .into_iter()
                .map(|(k, v)| (k.clone(), json!(v)))
                .collect();
            vec![add(path, Value::Object(obj))]
        };
        out.mutate(&self.id, ops);
    }
}

pub struct UntrustedRuntimeClass {
    id: RuleId,
    class: String,
    label: (String, String),
}

impl MutationRule for UntrustedRuntimeClass {
    fn id(&self) -> &RuleId {
        &self.id
    }

    fn matches(&self) -> Vec<Match> {
        create_matches(true)
    }

    fn mutate(&self, cx: &Context<'_>, out: &mut Decision) {
        let Some(pod) = template(cx) else { return };
        if cx.namespace_label(&self.label.0) != Some(self.label.1.as_str())
            || field(pod.spec, "runtimeClassName").is_some()
        {
            return;
        }
        out.mutate(
            &self.id,
            [add(
                pod.spec_path.key("runtimeClassName"),
                json!(self.class),
            )],
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_selectors_parse_like_upstream() {
        assert_eq!(
            parse_node_selector("env=prod, zone=a").unwrap(),
            [("env".into(), "prod".into()), ("zone".into(), "a".into())]
        );
        assert_eq!(parse_node_selector("").unwrap(), []);
        assert!(parse_node_selector("env").is_err());
        assert!(parse_node_selector("=x").is_err());
    }

    #[test]
    fn pointers_escape_keys() {
        let p = FieldPath::root()
            .key("metadata")
            .key("annotations")
            .key("a/b~c");
        assert_eq!(pointer(&p).to_string(), "/metadata/annotations/a~1b~0c");
    }
}

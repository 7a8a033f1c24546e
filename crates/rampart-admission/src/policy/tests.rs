//! The policy set on reviews, without a server.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::*;
use crate::lookup::{NamespaceInfo, StaticNamespaces, StaticPods};
use crate::review::parse_request;

fn ns(name: &str, labels: &[(&str, &str)], annotations: &[(&str, &str)]) -> NamespaceInfo {
    NamespaceInfo {
        name: name.into(),
        labels: labels
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect(),
        annotations: annotations
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect(),
    }
}

pub(crate) struct Fixture {
    pub set: PolicySet,
    pub namespaces: StaticNamespaces,
    pub pods: Option<StaticPods>,
}

impl Fixture {
    pub fn new(config_yaml: &str) -> Self {
        Self::with_pods(config_yaml, None)
    }

    pub fn with_pods(config_yaml: &str, pods: Option<StaticPods>) -> Self {
        let config = Config::parse(config_yaml).unwrap();
        let set = PolicySet::build(
            config,
            "rampart-system",
            &Metrics::new(),
            pods.is_some(),
            &[],
        )
        .unwrap();
        let namespaces = StaticNamespaces::new([
            ns("plain", &[], &[]),
            ns(
                "restricted",
                &[
                    ("pod-security.kubernetes.io/enforce", "restricted"),
                    ("pod-security.kubernetes.io/warn", "restricted"),
                    ("pod-security.kubernetes.io/audit", "restricted"),
                ],
                &[],
            ),
            ns(
                "warned",
                &[
                    ("pod-security.kubernetes.io/warn", "baseline"),
                    ("pod-security.kubernetes.io/audit", "restricted"),
                    ("pod-security.kubernetes.io/audit-version", "v1.25"),
                ],
                &[],
            ),
            ns("strict", &[("rampart.dev/enforce", "baseline")], &[]),
            ns(
                "broken",
                &[("pod-security.kubernetes.io/enforce", "strict")],
                &[],
            ),
            ns("untrusted", &[("rampart.dev/untrusted", "true")], &[]),
            ns(
                "pinned",
                &[],
                &[("scheduler.alpha.kubernetes.io/node-selector", "pool=blue")],
            ),
        ]);
        Self {
            set,
            namespaces,
            pods,
        }
    }

    fn env(&self) -> Env<'_> {
        Env {
            namespaces: &self.namespaces,
            pods: self.pods.as_ref().map(|p| p as &dyn PodLookup),
        }
    }

    pub fn run(&self, mutate: bool, review: &Value) -> Verdict {
        let body = serde_json::to_vec(review).unwrap();
        let req = parse_request(&body).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        if mutate {
            self.set.mutate(self.env(), &req, deadline).unwrap()
        } else {
            self.set.validate(self.env(), &req, deadline).unwrap()
        }
    }

    pub fn validate(&self, review: &Value) -> Decision {
        match self.run(false, review) {
            Verdict::Evaluated(d) => d,
            other => panic!("not evaluated: {other:?}"),
        }
    }

    pub fn mutate(&self, review: &Value) -> Decision {
        match self.run(true, review) {
            Verdict::Evaluated(d) => d,
            other => panic!("not evaluated: {other:?}"),
        }
    }
}

fn review(op: &str, object: Value) -> Value {
    let api = object["apiVersion"].as_str().unwrap().to_owned();
    let (group, version) = api.rsplit_once('/').unwrap_or(("", &api));
    let kind = object["kind"].as_str().unwrap().to_owned();
    let resource = rampart_core::kinds::resource_of(group, &kind);
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "u", "kind": {"group": group, "version": version, "kind": kind},
        "resource": {"group": group, "version": version, "resource": resource},
        "name": object["metadata"]["name"], "namespace": object["metadata"]["namespace"],
        "operation": op, "userInfo": {"username": "alice", "groups": ["dev"]},
        "object": object}})
}

fn pod(ns: &str, spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": ns}, "spec": spec})
}

fn privileged_spec() -> Value {
    json!({"containers": [{"name": "app", "image": "nginx:1.25", "securityContext": {"privileged": true}}]})
}

const QUIET: &str = "bestPractices: {mode: \"off\"}\nrules: {image-tag-latest: \"off\"}\n";

#[test]
fn pss_enforce_denies_with_upstream_message() {
    let f = Fixture::new(QUIET);
    let d = f.validate(&review("CREATE", pod("restricted", privileged_spec())));
    let s = d.status().unwrap();
    assert_eq!(s.code, 403);
    assert!(
        s.message.starts_with(
            r#"pods "p" is forbidden: violates PodSecurity "restricted:latest": privileged (container "app" must not set securityContext.privileged=true), allowPrivilegeEscalation != false"#
        ),
        "{}",
        s.message
    );
    assert!(d.warnings.is_empty(), "no warnings on a denied pod");
    let ann: std::collections::BTreeMap<_, _> = d.audit_annotations.iter().cloned().collect();
    assert_eq!(ann["enforce-policy"], "restricted:latest");
    assert!(ann["audit-violations"].starts_with("would violate PodSecurity \"restricted:latest\""));
}

#[test]
fn pss_warn_and_audit_without_enforce() {
    let f = Fixture::new(QUIET);
    let d = f.validate(&review("CREATE", pod("warned", privileged_spec())));
    assert!(d.allowed());
    assert_eq!(d.warnings.len(), 1);
    assert!(d.warnings[0].starts_with("would violate PodSecurity \"baseline:latest\": privileged"));
    let ann: std::collections::BTreeMap<_, _> = d.audit_annotations.iter().cloned().collect();
    assert!(ann["audit-violations"].starts_with("would violate PodSecurity \"restricted:v1.25\""));
    assert_eq!(ann["enforce-policy"], "privileged:latest");
}

#[test]
fn pss_does_not_deny_workloads_but_rampart_label_does() {
    let f = Fixture::new(QUIET);
    let deploy = |ns: &str| {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": ns},
            "spec": {"template": {"spec": privileged_spec()}}})
    };
    let d = f.validate(&review("CREATE", deploy("restricted")));
    assert!(d.allowed(), "upstream semantics: workloads only warn");
    assert_eq!(d.warnings.len(), 1);
    let d = f.validate(&review("CREATE", deploy("strict")));
    let s = d.status().unwrap();
    assert!(
        s.message.starts_with(
            r#"deployments.apps "web" is forbidden: violates PodSecurity "baseline:latest": privileged"#
        ),
        "{}",
        s.message
    );
}

#[test]
fn invalid_labels_evaluate_restricted_and_annotate() {
    let f = Fixture::new(QUIET);
    let d = f.validate(&review(
        "CREATE",
        pod(
            "broken",
            json!({"containers": [{"name": "a", "image": "x:1"}]}),
        ),
    ));
    assert!(!d.allowed(), "restricted:latest applies");
    assert!(
        d.audit_annotations
            .iter()
            .any(|(k, v)| k == "error" && v.contains("Failed to parse policy"))
    );
}

#[test]
fn insignificant_pod_updates_are_not_evaluated() {
    let f = Fixture::new(QUIET);
    let mut r = review("UPDATE", pod("restricted", privileged_spec()));
    r["request"]["oldObject"] = pod("restricted", privileged_spec());
    assert!(f.validate(&r).allowed());
    let mut r = review("UPDATE", pod("restricted", privileged_spec()));
    r["request"]["oldObject"] = pod(
        "restricted",
        json!({"containers": [{"name": "app", "image": "nginx:1.24", "securityContext": {"privileged": true}}]}),
    );
    assert!(!f.validate(&r).allowed(), "an image change is significant");
    // Status updates are a subresource no rule matches.
    let mut r = review("UPDATE", pod("restricted", privileged_spec()));
    r["request"]["subResource"] = json!("status");
    assert!(matches!(f.run(false, &r), Verdict::Unmatched));
}

#[test]
fn exemptions_skip_pod_security() {
    let f = Fixture::new(&format!(
        "{QUIET}podSecurity: {{exemptions: {{usernames: [alice]}}}}\n"
    ));
    let d = f.validate(&review("CREATE", pod("restricted", privileged_spec())));
    assert!(d.allowed());
    assert!(
        d.audit_annotations
            .contains(&("exempt".into(), "user".into()))
    );
}

#[test]
fn unmatched_and_excluded_requests_are_not_evaluated() {
    let f = Fixture::new("");
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "restricted"}, "data": {"k": "v"}});
    assert!(matches!(
        f.run(false, &review("UPDATE", cm.clone())),
        Verdict::Unmatched
    ));
    assert!(matches!(
        f.run(true, &review("UPDATE", cm)),
        Verdict::Unmatched
    ));
    for ns in ["kube-system", "kube-node-lease", "rampart-system"] {
        assert!(
            matches!(
                f.run(false, &review("CREATE", pod(ns, privileged_spec()))),
                Verdict::Excluded
            ),
            "{ns}"
        );
    }
}

#[test]
fn best_practices_follow_their_modes_and_ignore_annotations() {
    let f = Fixture::new(
        "bestPractices: {mode: warn}\nrules: {resources-missing-limits: enforce, image-tag-latest: audit}\n",
    );
    let p = pod(
        "plain",
        json!({"containers": [{"name": "a", "image": "nginx"}]}),
    );
    let d = f.validate(&review("CREATE", p.clone()));
    assert!(d.denying_rules().eq(["resources-missing-limits"]));
    assert!(
        d.warnings
            .iter()
            .any(|w| w.starts_with("resources-missing-requests: "))
    );
    assert!(
        d.audit_annotations
            .iter()
            .any(|(k, _)| k == "image-tag-latest")
    );
    // An ignore annotation silences warn and audit rules, never enforce.
    let mut q = p;
    q["metadata"]["annotations"] = json!({
        "rampart.dev/ignore-resources-missing-requests": "batch job",
        "rampart.dev/ignore-resources-missing-limits": "please"});
    let d = f.validate(&review("CREATE", q));
    assert!(
        !d.warnings
            .iter()
            .any(|w| w.starts_with("resources-missing-requests"))
    );
    assert!(d.denying_rules().eq(["resources-missing-limits"]));
}

#[test]
fn image_rules() {
    let f = Fixture::new(
        "bestPractices: {mode: \"off\"}\nrules: {image-tag-latest: enforce}\nimages: {allowedRegistries: [ghcr.io/acme], requireDigestIn: [\"pin*\"]}\n",
    );
    let img = |ns: &str, image: &str| {
        f.validate(&review(
            "CREATE",
            pod(ns, json!({"containers": [{"name": "a", "image": image}]})),
        ))
    };
    let d = img("plain", "docker.io/library/nginx:1.25");
    assert!(d.denying_rules().eq(["image-registry-not-allowed"]));
    let d = img("plain", "ghcr.io/acme/app");
    assert!(d.denying_rules().eq(["image-tag-latest"]));
    assert!(img("plain", "ghcr.io/acme/app:1.0").allowed());
    let d = img("pinned", "ghcr.io/acme/app:1.0");
    assert!(
        d.denying_rules().eq(["image-digest-required"]),
        "{:?}",
        d.denials
    );
    assert!(img("pinned", "ghcr.io/acme/app@sha256:abc").allowed());
}

#[test]
fn sandbox_rules() {
    let f = Fixture::new(QUIET);
    let d = f.validate(&review(
        "CREATE",
        pod(
            "plain",
            json!({"runtimeClassName": "kata-qemu", "containers": [{"name": "a", "image": "x:1", "securityContext": {"privileged": true}}]}),
        ),
    ));
    assert!(d.denying_rules().eq(["sandbox-privileged"]));
    let d = f.validate(&review(
        "CREATE",
        pod(
            "untrusted",
            json!({"hostPID": true, "containers": [{"name": "a", "image": "x:1"}]}),
        ),
    ));
    assert!(
        d.denying_rules()
            .eq(["untrusted-namespace-without-sandbox"])
    );
    let d = f.validate(&review(
        "CREATE",
        pod("untrusted", json!({"runtimeClassName": "gvisor", "hostPID": true, "containers": [{"name": "a", "image": "x:1"}]})),
    ));
    assert!(d.allowed());
}

#[test]
fn namespace_protection_runs_despite_exclusions() {
    let f = Fixture::new("");
    let del = |name: &str| {
        let mut r = review(
            "DELETE",
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}),
        );
        r["request"]["namespace"] = json!(name);
        r["request"]["oldObject"] = r["request"]["object"].take();
        r
    };
    for name in ["kube-system", "default", "kube-public", "rampart-system"] {
        let d = f.validate(&del(name));
        assert_eq!(
            d.status().unwrap().message,
            format!(
                "namespaces \"{name}\" is forbidden: this namespace is protected by Rampart and may not be deleted"
            )
        );
    }
    assert!(f.validate(&del("team-a")).allowed());
}

#[test]
fn exec_into_escalating_pods_is_denied() {
    let pods = StaticPods::new([
        pod("plain", privileged_spec()),
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "hp", "namespace": "plain"},
            "spec": {"hostPID": true, "containers": [{"name": "a", "image": "x"}]}}),
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "ok", "namespace": "plain"},
            "spec": {"containers": [{"name": "a", "image": "x"}]}}),
    ]);
    let f = Fixture::with_pods("", Some(pods));
    let connect = |sub: &str, name: &str| {
        json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
            "uid": "u", "kind": {"group": "", "version": "v1", "kind": "PodExecOptions"},
            "resource": {"group": "", "version": "v1", "resource": "pods"}, "subResource": sub,
            "name": name, "namespace": "plain", "operation": "CONNECT",
            "userInfo": {"username": "alice"}, "object": {"apiVersion": "v1", "kind": "PodExecOptions"}}})
    };
    let msg = |d: Decision| d.status().map(|s| s.message);
    assert_eq!(
        msg(f.validate(&connect("exec", "p"))).as_deref(),
        Some("pods \"p\" is forbidden: cannot exec into or attach to a privileged container")
    );
    assert_eq!(
        msg(f.validate(&connect("attach", "hp"))).as_deref(),
        Some("pods \"hp\" is forbidden: cannot exec into or attach to a container using host pid")
    );
    assert!(f.validate(&connect("exec", "ok")).allowed());
    assert!(
        !f.validate(&connect("exec", "ghost")).allowed(),
        "unknown pods are denied by default"
    );
    assert!(matches!(
        f.run(false, &connect("portforward", "p")),
        Verdict::Unmatched
    ));
}

#[test]
fn request_rules_match_users_groups_namespaces_and_resources() {
    let f = Fixture::new(
        r#"
bestPractices: {mode: "off"}
rules: {image-tag-latest: "off"}
requestRules:
  - name: no-contractor-changes
    groups: [contractors]
    namespaces: ["plain"]
    operations: [CREATE, DELETE]
    message: contractors may not change this namespace
  - name: no-exec-for-interns
    users: ["intern-*"]
    apiGroups: [""]
    resources: [pods/exec]
    mode: warn
"#,
    );
    let mut r = review(
        "CREATE",
        pod(
            "plain",
            json!({"containers": [{"name": "a", "image": "x:1"}]}),
        ),
    );
    assert!(f.validate(&r).allowed());
    r["request"]["userInfo"] = json!({"username": "bob", "groups": ["contractors"]});
    let d = f.validate(&r);
    assert!(d.status().unwrap().message.starts_with(
        "no-contractor-changes: contractors may not change this namespace (user \"bob\", CREATE pods in namespace \"plain\")"
    ));
    // A ConfigMap is covered too (resources default to *).
    let mut cm = review(
        "CREATE",
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "plain"}}),
    );
    cm["request"]["userInfo"] = json!({"username": "bob", "groups": ["contractors"]});
    assert!(!f.validate(&cm).allowed());
    let exec = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "u", "kind": {"group": "", "version": "v1", "kind": "PodExecOptions"},
        "resource": {"group": "", "version": "v1", "resource": "pods"}, "subResource": "exec",
        "name": "p", "namespace": "x", "operation": "CONNECT",
        "userInfo": {"username": "intern-joe"}, "object": {}}});
    let d = f.validate(&exec);
    assert!(d.allowed());
    assert!(d.warnings[0].starts_with("no-exec-for-interns: "));
}

#[test]
fn rate_limits_deny_with_429() {
    let f = Fixture::new(
        "bestPractices: {mode: \"off\"}\nrateLimit: {perNamespace: {qps: 0.001, burst: 2}}\n",
    );
    let cm = review(
        "CREATE",
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "plain"}}),
    );
    assert!(f.validate(&cm).allowed());
    assert!(f.validate(&cm).allowed());
    let d = f.validate(&cm);
    let s = d.status().unwrap();
    assert_eq!((s.code, s.reason), (429, "TooManyRequests"));
    assert!(
        s.message
            .contains("namespace \"plain\" is over its admission rate limit"),
        "{}",
        s.message
    );
}

fn apply(object: &Value, d: &Decision) -> Value {
    let mut v = object.clone();
    json_patch::patch(&mut v, &d.patch).unwrap();
    v
}

#[test]
fn mutations_add_only_what_is_missing() {
    let f = Fixture::new(
        r#"
mutations:
  alwaysPullImages: true
  securityContext: true
  defaultResources: {requests: {cpu: 100m, memory: 128Mi}, limits: {memory: 256Mi}}
  defaultTolerationSeconds: 300
  podNodeSelector: true
  untrustedRuntimeClass: kata
"#,
    );
    let object = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "namespace": "pinned"},
        "spec": {"unknownField": {"kept": true},
            "initContainers": [{"name": "init", "image": "x:1", "imagePullPolicy": "IfNotPresent",
                "resources": {"limits": {"cpu": "1"}}}],
            "containers": [
                {"name": "a", "image": "x:1", "securityContext": {"privileged": true}},
                {"name": "b", "image": "x:1", "securityContext": {"capabilities": {"add": ["NET_ADMIN"]}},
                 "resources": {"requests": {"memory": "64Mi"}}}],
            "tolerations": [{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 60}]}});
    let d = f.mutate(&review("CREATE", object.clone()));
    assert!(d.allowed());
    let out = apply(&object, &d);
    let spec = &out["spec"];
    assert_eq!(spec["unknownField"], json!({"kept": true}));
    assert_eq!(
        spec["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    assert_eq!(spec["initContainers"][0]["imagePullPolicy"], "Always");
    assert_eq!(spec["containers"][1]["imagePullPolicy"], "Always");
    // Privileged: no allowPrivilegeEscalation=false (invalid), but drop ALL.
    assert_eq!(
        spec["containers"][0]["securityContext"],
        json!({"privileged": true, "capabilities": {"drop": ["ALL"]}})
    );
    assert_eq!(
        spec["containers"][1]["securityContext"],
        json!({"capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]}, "allowPrivilegeEscalation": false})
    );
    // The init container has a CPU limit: no CPU request default; memory defaults apply.
    assert_eq!(
        spec["initContainers"][0]["resources"],
        json!({"limits": {"cpu": "1", "memory": "256Mi"}, "requests": {"memory": "128Mi"}})
    );
    // b requests memory: no memory limit default (it might be lower).
    assert_eq!(
        spec["containers"][1]["resources"],
        json!({"requests": {"memory": "64Mi", "cpu": "100m"}})
    );
    assert_eq!(
        spec["containers"][0]["resources"],
        json!({"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}})
    );
    let tol = spec["tolerations"].as_array().unwrap();
    assert_eq!(tol.len(), 2, "unreachable was tolerated already: {tol:?}");
    assert_eq!(
        tol[1],
        json!({"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300})
    );
    assert_eq!(spec["nodeSelector"], json!({"pool": "blue"}));
    assert!(
        spec.get("runtimeClassName").is_none(),
        "namespace is not untrusted"
    );
    // Idempotent: the patched pod needs no further patch.
    let again = f.mutate(&review("CREATE", out));
    assert!(again.patch.is_empty(), "{:?}", again.patch);
}

#[test]
fn node_selector_conflicts_deny_and_untrusted_gets_kata() {
    let f = Fixture::new("mutations: {podNodeSelector: true, untrustedRuntimeClass: kata}\n");
    let p = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "pinned"},
        "spec": {"nodeSelector": {"pool": "red"}, "containers": [{"name": "a", "image": "x:1"}]}});
    let d = f.mutate(&review("CREATE", p));
    assert!(
        d.status()
            .unwrap()
            .message
            .contains("conflicts with its namespace node label selector")
    );
    let p = pod(
        "untrusted",
        json!({"containers": [{"name": "a", "image": "x:1"}]}),
    );
    let d = f.mutate(&review("CREATE", p.clone()));
    assert_eq!(apply(&p, &d)["spec"]["runtimeClassName"], "kata");
}

#[test]
fn workload_templates_are_mutated_on_create_only() {
    let f = Fixture::new("mutations: {securityContext: true}\n");
    let d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "plain"},
        "spec": {"template": {"spec": {"containers": [{"name": "a", "image": "x:1"}]}}}});
    let dec = f.mutate(&review("CREATE", d.clone()));
    let out = apply(&d, &dec);
    assert_eq!(
        out["spec"]["template"]["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"],
        false
    );
    assert!(matches!(
        f.run(true, &review("UPDATE", d)),
        Verdict::Unmatched
    ));
}

#[test]
fn deadlines_stop_evaluation() {
    let f = Fixture::new("");
    let body = serde_json::to_vec(&review("CREATE", pod("restricted", privileged_spec()))).unwrap();
    let req = parse_request(&body).unwrap();
    let past = Instant::now() - Duration::from_millis(1);
    assert!(matches!(
        f.set.validate(f.env(), &req, past).unwrap(),
        Verdict::TimedOut
    ));
}

#[test]
fn deep_objects_are_bad_reviews_when_a_rule_matches() {
    let f = Fixture::new("");
    let deep = format!("{}1{}", "[".repeat(300), "]".repeat(300));
    let text = format!(
        r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{{"uid":"u","kind":{{"group":"","version":"v1","kind":"Pod"}},"resource":{{"group":"","version":"v1","resource":"pods"}},"namespace":"plain","operation":"CREATE","object":{{"apiVersion":"v1","kind":"Pod","spec":{deep}}}}}}}"#
    );
    let req = parse_request(text.as_bytes()).unwrap();
    let err = f
        .set
        .validate(f.env(), &req, Instant::now() + Duration::from_secs(1))
        .unwrap_err();
    assert!(err.0.contains("nested too deeply"), "{err}");
}

struct ExtraSource;

struct DenyAll(RuleId);

impl ValidationRule for DenyAll {
    fn id(&self) -> &RuleId {
        &self.0
    }
    fn matches(&self) -> Vec<Match> {
        vec![Match::kind(
            "",
            "ConfigMap",
            &[crate::review::Operation::Create],
        )]
    }
    fn validate(&self, _: &Context<'_>, out: &mut Decision) {
        out.report(&self.0, crate::decision::Mode::Enforce, "no configmaps");
    }
}

impl PolicySource for ExtraSource {
    fn name(&self) -> &'static str {
        "test"
    }
    fn watched_paths(&self) -> Vec<PathBuf> {
        Vec::new()
    }
    fn load(&self, metrics: &Metrics) -> Result<SourceRules> {
        Ok(SourceRules {
            validating: vec![Arc::new(DenyAll(RuleId::new(
                "deny-all-configmaps",
                metrics,
            )))],
            mutating: Vec::new(),
        })
    }
}

#[test]
fn policy_sources_add_rules() {
    let sources: Vec<Arc<dyn PolicySource>> = vec![Arc::new(ExtraSource)];
    let set = PolicySet::build(
        Config::default(),
        "rampart-system",
        &Metrics::new(),
        false,
        &sources,
    )
    .unwrap();
    let namespaces = StaticNamespaces::default();
    let env = Env {
        namespaces: &namespaces,
        pods: None,
    };
    let body = serde_json::to_vec(&review("CREATE", json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "a"}}))).unwrap();
    let req = parse_request(&body).unwrap();
    match set
        .validate(env, &req, Instant::now() + Duration::from_secs(1))
        .unwrap()
    {
        Verdict::Evaluated(d) => assert!(d.denying_rules().eq(["deny-all-configmaps"])),
        other => panic!("{other:?}"),
    }
}

//! A pass and a fail case per check, asserting exact IDs and paths.

use rampart_core::{Check, CorpusCheck, ObjectView, Severity, Violation};
use serde_json::{Value, json};

use super::namespace::{DefaultDeny, default_deny};
use super::*;

// ---------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------

fn object_check(config: &PracticeConfig, id: &str) -> Box<dyn Check> {
    checks(config)
        .0
        .into_iter()
        .find(|c| c.meta().id == id)
        .unwrap_or_else(|| panic!("no check {id}"))
}

fn corpus_check(config: &PracticeConfig, id: &str) -> Box<dyn CorpusCheck> {
    checks(config)
        .1
        .into_iter()
        .find(|c| c.meta().id == id)
        .unwrap_or_else(|| panic!("no corpus check {id}"))
}

fn violations_with(config: &PracticeConfig, id: &str, v: &Value) -> Vec<Violation> {
    let check = object_check(config, id);
    let view = ObjectView::new(v).expect("object");
    let mut out = Vec::new();
    check.check(&view, &mut out);
    for found in &out {
        assert_eq!(found.check_id, id);
        assert!(
            found.path.resolve(v).is_some(),
            "{} does not resolve",
            found.path
        );
    }
    out
}

fn violations(id: &str, v: &Value) -> Vec<Violation> {
    violations_with(&PracticeConfig::default(), id, v)
}

/// The paths of the violations of check `id` on `v`, default config.
fn paths(id: &str, v: &Value) -> Vec<String> {
    violations(id, v)
        .iter()
        .map(|f| f.path.to_string())
        .collect()
}

fn paths_with(config: &PracticeConfig, id: &str, v: &Value) -> Vec<String> {
    violations_with(config, id, v)
        .iter()
        .map(|f| f.path.to_string())
        .collect()
}

fn corpus_violations(
    config: &PracticeConfig,
    id: &str,
    values: &[Value],
) -> Vec<(usize, Violation)> {
    let check = corpus_check(config, id);
    let views: Vec<_> = values
        .iter()
        .map(|v| ObjectView::new(v).expect("object"))
        .collect();
    let mut out = Vec::new();
    check.check_all(&views, &mut out);
    for (i, found) in &out {
        assert_eq!(found.check_id, id);
        assert!(
            found.path.resolve(&values[*i]).is_some(),
            "{} does not resolve",
            found.path
        );
    }
    out
}

/// `(object index, path)` of every violation of corpus check `id`.
fn corpus_paths(config: &PracticeConfig, id: &str, values: &[Value]) -> Vec<(usize, String)> {
    corpus_violations(config, id, values)
        .into_iter()
        .map(|(i, f)| (i, f.path.to_string()))
        .collect()
}

fn related(v: &Violation) -> Vec<String> {
    v.related.iter().map(ToString::to_string).collect()
}

fn deployment(spec: Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "app"},
        "spec": {"template": {"metadata": {"labels": {"app": "web"}}, "spec": spec}}
    })
}

fn in_namespace(mut v: Value, ns: &str) -> Value {
    v["metadata"]["namespace"] = json!(ns);
    v
}

fn without_namespace(mut v: Value) -> Value {
    v["metadata"].as_object_mut().unwrap().remove("namespace");
    v
}

fn bare_pod(spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "app"}, "spec": spec})
}

fn job(spec: Value) -> Value {
    json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j", "namespace": "app"},
        "spec": {"template": {"spec": spec}}})
}

fn cron_job(spec: Value) -> Value {
    json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "c", "namespace": "app"},
        "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {"spec": spec}}}}})
}

/// A container that passes every container check.
fn good_container(name: &str) -> Value {
    json!({
        "name": name,
        "image": "ghcr.io/org/app:1.0",
        "resources": {
            "requests": {"cpu": "100m", "memory": "64Mi"},
            "limits": {"cpu": "1", "memory": "128Mi"}
        },
        "securityContext": {"readOnlyRootFilesystem": true},
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080}},
        "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}}
    })
}

fn good_spec() -> Value {
    json!({
        "automountServiceAccountToken": false,
        "initContainers": [{
            "name": "init",
            "image": "ghcr.io/org/init@sha256:0123abcd",
            "resources": {"limits": {"cpu": "1", "memory": "128Mi"}},
            "securityContext": {"readOnlyRootFilesystem": true}
        }],
        "containers": [good_container("app")],
        "volumes": [{"name": "tmp", "emptyDir": {}}]
    })
}

fn with_allowed(entries: &[&str]) -> PracticeConfig {
    PracticeConfig {
        allowed_registries: entries.iter().map(|s| (*s).to_owned()).collect(),
        ..PracticeConfig::default()
    }
}

fn namespace(name: &str, labels: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}})
}

const D: &str = "spec.template.spec";

// ---------------------------------------------------------------------------
// Catalog and construction
// ---------------------------------------------------------------------------

#[test]
fn catalog_ids_are_unique_stable_annotation_suffixes() {
    let ids: Vec<String> = catalog().iter().map(|m| m.id.to_string()).collect();
    assert_eq!(ids.len(), 17);
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ids.len());
    for id in &ids {
        assert!(id.len() <= 50, "{id}");
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
            "{id}"
        );
        assert!(!id.starts_with('-') && !id.ends_with('-'), "{id}");
    }
    for m in catalog() {
        assert!(!m.why.contains('\n') && !m.fix.contains('\n') && !m.title.is_empty());
    }
}

#[test]
fn checks_follow_the_catalog_and_registry_check_needs_an_allow_list() {
    let ids = |config: &PracticeConfig| {
        let (object, corpus) = checks(config);
        object
            .iter()
            .map(|c| c.meta().id.to_string())
            .chain(corpus.iter().map(|c| c.meta().id.to_string()))
            .collect::<Vec<_>>()
    };
    let all: Vec<String> = catalog().iter().map(|m| m.id.to_string()).collect();
    assert_eq!(ids(&with_allowed(&["ghcr.io"])), all);
    let without: Vec<String> = all
        .iter()
        .filter(|id| *id != "image-registry-not-allowed")
        .cloned()
        .collect();
    assert_eq!(ids(&PracticeConfig::default()), without);
    assert_eq!(ids(&with_allowed(&["", " "])), without);
}

#[test]
fn severities_are_as_documented() {
    let sev = |id: &str| catalog().into_iter().find(|m| m.id == id).unwrap().severity;
    assert_eq!(sev("rbac-cluster-admin-binding"), Severity::Critical);
    assert_eq!(sev("untrusted-namespace-without-sandbox"), Severity::High);
    assert_eq!(sev("resources-missing-limits"), Severity::Medium);
    assert_eq!(sev("read-only-root-filesystem"), Severity::Low);
    assert_eq!(sev("liveness-probe-missing"), Severity::Info);
    assert_eq!(sev("readiness-probe-missing"), Severity::Info);
}

#[test]
fn config_defaults_and_deserialises_camel_case() {
    let c = PracticeConfig::default();
    assert!(
        c.allowed_registries.is_empty() && c.require_cpu_limits && !c.require_default_deny_egress
    );
    assert_eq!(c.sandbox_runtime_classes, DEFAULT_SANDBOX_RUNTIME_CLASSES);
    assert_eq!(c.system_namespaces, DEFAULT_SYSTEM_NAMESPACES);
    let label = c.untrusted_namespace_label.as_ref().unwrap();
    assert_eq!(
        (label.key.as_str(), label.value.as_str()),
        DEFAULT_UNTRUSTED_LABEL
    );

    let parsed: PracticeConfig = serde_json::from_value(json!({
        "allowedRegistries": ["ghcr.io"],
        "requireCpuLimits": false,
        "untrustedNamespaceLabel": null
    }))
    .unwrap();
    assert_eq!(parsed.allowed_registries, ["ghcr.io"]);
    assert!(!parsed.require_cpu_limits && parsed.untrusted_namespace_label.is_none());
    assert_eq!(parsed.system_namespaces, DEFAULT_SYSTEM_NAMESPACES);
}

#[test]
fn good_workloads_pass_every_check() {
    let config = PracticeConfig {
        untrusted_namespaces: vec!["app".to_owned()],
        ..with_allowed(&["ghcr.io/org"])
    };
    let (object, corpus) = checks(&config);
    let values = [
        deployment(good_spec()),
        bare_pod(good_spec()),
        cron_job(good_spec()),
        job(good_spec()),
    ];
    let views: Vec<_> = values.iter().map(|v| ObjectView::new(v).unwrap()).collect();
    let mut out = Vec::new();
    for view in &views {
        for c in &object {
            c.check(view, &mut out);
        }
    }
    assert_eq!(out, vec![]);
    let mut out = Vec::new();
    for c in &corpus {
        c.check_all(&views, &mut out);
    }
    assert_eq!(out, vec![]);
}

#[test]
fn objects_without_pods_or_rbac_pass_object_checks() {
    let config = with_allowed(&["ghcr.io"]);
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
        "data": {"image": "nginx"}, "rules": [{"verbs": ["*"]}]});
    let view = ObjectView::new(&cm).unwrap();
    let mut out = Vec::new();
    for c in checks(&config).0 {
        c.check(&view, &mut out);
    }
    assert_eq!(out, vec![]);
}

// ---------------------------------------------------------------------------
// Images
// ---------------------------------------------------------------------------

#[test]
fn image_tag_latest_flags_untagged_and_latest_but_not_pinned_images() {
    let d = deployment(json!({
        "initContainers": [{"name": "i", "image": "busybox"}],
        "containers": [
            {"name": "a", "image": "nginx"},
            {"name": "b", "image": "nginx:latest"},
            {"name": "c", "image": "nginx:1.27"},
            {"name": "d", "image": "nginx@sha256:0123abcd"},
            {"name": "e", "image": "app:latest@sha256:0123abcd"},
            {"name": "f", "image": "registry:5000/ns/app"},
            {"name": "g", "image": "registry:5000/ns/app:2.0"},
            {"name": "h"},
            {"name": "k", "image": ""},
            {"name": "l", "image": "ghcr.io/org/app:Latest"}
        ],
        "ephemeralContainers": [{"name": "dbg", "image": "busybox:latest"}]
    }));
    assert_eq!(
        paths("image-tag-latest", &d),
        [
            format!("{D}.initContainers[0].image"),
            format!("{D}.containers[0].image"),
            format!("{D}.containers[1].image"),
            format!("{D}.containers[5].image"),
            format!("{D}.ephemeralContainers[0].image"),
        ]
    );
    let found = violations("image-tag-latest", &d);
    assert_eq!(
        found[1].message,
        "container \"a\" image \"nginx\" has no tag, so it means :latest"
    );
    assert_eq!(
        found[2].message,
        "container \"b\" image \"nginx:latest\" uses the :latest tag"
    );
    assert_eq!(found[0].severity, None);
}

#[test]
fn image_tag_latest_points_into_cron_jobs_and_bare_pods() {
    let spec =
        json!({"containers": [{"name": "a", "image": "app:1"}, {"name": "b", "image": "app"}]});
    assert_eq!(
        paths("image-tag-latest", &cron_job(spec.clone())),
        ["spec.jobTemplate.spec.template.spec.containers[1].image"]
    );
    assert_eq!(
        paths("image-tag-latest", &bare_pod(spec)),
        ["spec.containers[1].image"]
    );
}

#[test]
fn registry_allow_list_matches_normalised_images() {
    let config = with_allowed(&["ghcr.io/org", "registry.local:5000", "docker.io/library/"]);
    let d = deployment(json!({
        "initContainers": [{"name": "i", "image": "ghcr.io/org-evil/app:1"}],
        "containers": [
            {"name": "a", "image": "ghcr.io/org/app:1"},
            {"name": "b", "image": "ghcr.io/org/team/app@sha256:00ff"},
            {"name": "c", "image": "registry.local:5000/x/y:1"},
            {"name": "d", "image": "registry.local/x/y:1"},
            {"name": "e", "image": "nginx:1.27"},
            {"name": "f", "image": "index.docker.io/library/redis:7"},
            {"name": "g", "image": "bitnami/redis:7"},
            {"name": "h", "image": "quay.io/org/app:1"}
        ],
        "ephemeralContainers": [{"name": "dbg", "image": "evil.example/dbg:1"}]
    }));
    assert_eq!(
        paths_with(&config, "image-registry-not-allowed", &d),
        [
            format!("{D}.initContainers[0].image"),
            format!("{D}.containers[3].image"),
            format!("{D}.containers[6].image"),
            format!("{D}.containers[7].image"),
            format!("{D}.ephemeralContainers[0].image"),
        ]
    );
    let found = violations_with(&config, "image-registry-not-allowed", &d);
    assert_eq!(
        found[2].message,
        "container \"g\" image \"bitnami/redis:7\" comes from docker.io/bitnami/redis, which no allowed registry covers"
    );
}

#[test]
fn registry_allow_list_of_docker_hub_covers_short_names() {
    let config = with_allowed(&["docker.io"]);
    let pass = bare_pod(
        json!({"containers": [{"name": "a", "image": "nginx:1"}, {"name": "b", "image": "org/app:1"}]}),
    );
    assert_eq!(
        paths_with(&config, "image-registry-not-allowed", &pass),
        Vec::<String>::new()
    );
    let fail = bare_pod(json!({"containers": [{"name": "a", "image": "localhost/app:1"}]}));
    assert_eq!(
        paths_with(&config, "image-registry-not-allowed", &fail),
        ["spec.containers[0].image"]
    );
}

// ---------------------------------------------------------------------------
// Resources
// ---------------------------------------------------------------------------

#[test]
fn missing_requests_point_at_the_deepest_existing_field() {
    let d = deployment(json!({
        "initContainers": [{"name": "i", "image": "x:1"}],
        "containers": [
            {"name": "a", "image": "x:1"},
            {"name": "b", "image": "x:1", "resources": {"limits": {"memory": "1Gi"}}},
            {"name": "c", "image": "x:1", "resources": {"requests": {"cpu": "1"}}},
            {"name": "d", "image": "x:1", "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}},
            {"name": "e", "image": "x:1", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}
        ],
        "ephemeralContainers": [{"name": "dbg", "image": "x:1"}]
    }));
    let found = violations("resources-missing-requests", &d);
    let got: Vec<(String, String)> = found
        .iter()
        .map(|f| (f.path.to_string(), f.message.clone()))
        .collect();
    assert_eq!(
        got,
        [
            (
                format!("{D}.initContainers[0]"),
                "init container \"i\" has no cpu and memory requests".to_owned()
            ),
            (
                format!("{D}.containers[0]"),
                "container \"a\" has no cpu and memory requests".to_owned()
            ),
            (
                format!("{D}.containers[1].resources"),
                "container \"b\" has no cpu request".to_owned()
            ),
            (
                format!("{D}.containers[2].resources.requests"),
                "container \"c\" has no memory request".to_owned()
            ),
        ]
    );
}

#[test]
fn missing_limits_are_reported_per_resource() {
    let d = deployment(json!({
        "containers": [
            {"name": "a", "image": "x:1", "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}},
            {"name": "b", "image": "x:1", "resources": {"limits": {"memory": "1Gi"}}},
            {"name": "c", "image": "x:1", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}},
            {"name": "d", "image": "x:1", "resources": {"limits": {"cpu": "1", "memory": null}}}
        ],
        "ephemeralContainers": [{"name": "dbg", "image": "x:1"}]
    }));
    let found = violations("resources-missing-limits", &d);
    let got: Vec<(String, &str)> = found
        .iter()
        .map(|f| (f.path.to_string(), f.message.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (
                format!("{D}.containers[0].resources"),
                "container \"a\" has no cpu and memory limits"
            ),
            (
                format!("{D}.containers[1].resources.limits"),
                "container \"b\" has no cpu limit"
            ),
            (
                format!("{D}.containers[3].resources.limits"),
                "container \"d\" has no memory limit"
            ),
        ]
    );

    let no_cpu = PracticeConfig {
        require_cpu_limits: false,
        ..PracticeConfig::default()
    };
    assert_eq!(
        paths_with(&no_cpu, "resources-missing-limits", &d),
        [
            format!("{D}.containers[0].resources"),
            format!("{D}.containers[3].resources.limits")
        ]
    );
}

#[test]
fn pod_level_resources_cover_every_container() {
    let d = deployment(json!({
        "resources": {"limits": {"cpu": "2", "memory": "2Gi"}},
        "initContainers": [{"name": "i", "image": "x:1"}],
        "containers": [{"name": "a", "image": "x:1"}]
    }));
    assert_eq!(
        paths("resources-missing-requests", &d),
        Vec::<String>::new()
    );
    assert_eq!(paths("resources-missing-limits", &d), Vec::<String>::new());
    let only_requests = deployment(json!({
        "resources": {"requests": {"cpu": "2", "memory": "2Gi"}},
        "containers": [{"name": "a", "image": "x:1"}]
    }));
    assert_eq!(
        paths("resources-missing-requests", &only_requests),
        Vec::<String>::new()
    );
    assert_eq!(
        paths("resources-missing-limits", &only_requests),
        [format!("{D}.containers[0]")]
    );
}

// ---------------------------------------------------------------------------
// read-only-root-filesystem
// ---------------------------------------------------------------------------

#[test]
fn read_only_root_filesystem_must_be_true() {
    let d = deployment(json!({
        "initContainers": [{"name": "i", "image": "x:1"}],
        "containers": [
            {"name": "a", "image": "x:1"},
            {"name": "b", "image": "x:1", "securityContext": {}},
            {"name": "c", "image": "x:1", "securityContext": {"readOnlyRootFilesystem": false}},
            {"name": "d", "image": "x:1", "securityContext": {"readOnlyRootFilesystem": true}}
        ],
        "ephemeralContainers": [{"name": "dbg", "image": "x:1"}]
    }));
    let found = violations("read-only-root-filesystem", &d);
    assert_eq!(
        found.iter().map(|f| f.path.to_string()).collect::<Vec<_>>(),
        [
            format!("{D}.initContainers[0]"),
            format!("{D}.containers[0]"),
            format!("{D}.containers[1].securityContext"),
            format!("{D}.containers[2].securityContext.readOnlyRootFilesystem"),
        ]
    );
    assert_eq!(
        found[3].message,
        "container \"c\" sets securityContext.readOnlyRootFilesystem to false"
    );
}

#[test]
fn read_only_root_filesystem_skips_windows_pods() {
    let d = deployment(
        json!({"os": {"name": "windows"}, "containers": [{"name": "a", "image": "x:1"}]}),
    );
    assert_eq!(paths("read-only-root-filesystem", &d), Vec::<String>::new());
    let linux =
        deployment(json!({"os": {"name": "linux"}, "containers": [{"name": "a", "image": "x:1"}]}));
    assert_eq!(
        paths("read-only-root-filesystem", &linux),
        [format!("{D}.containers[0]")]
    );
}

// ---------------------------------------------------------------------------
// Probes
// ---------------------------------------------------------------------------

fn probe_spec() -> Value {
    json!({
        "initContainers": [
            {"name": "migrate", "image": "x:1"},
            {"name": "proxy", "image": "x:1", "restartPolicy": "Always"}
        ],
        "containers": [
            {"name": "a", "image": "x:1"},
            {"name": "b", "image": "x:1",
                "livenessProbe": {"tcpSocket": {"port": 1}}, "readinessProbe": {"tcpSocket": {"port": 1}}}
        ],
        "ephemeralContainers": [{"name": "dbg", "image": "x:1"}]
    })
}

#[test]
fn probes_are_required_on_long_running_containers_and_sidecars() {
    let d = deployment(probe_spec());
    let want = [
        format!("{D}.initContainers[1]"),
        format!("{D}.containers[0]"),
    ];
    assert_eq!(paths("liveness-probe-missing", &d), want);
    assert_eq!(paths("readiness-probe-missing", &d), want);
    let found = violations("liveness-probe-missing", &d);
    assert_eq!(
        found[0].message,
        "init container \"proxy\" has no liveness probe"
    );
    let found = violations("readiness-probe-missing", &d);
    assert_eq!(found[1].message, "container \"a\" has no readiness probe");
}

#[test]
fn probes_are_not_required_for_pods_that_run_to_completion() {
    for v in [job(probe_spec()), cron_job(probe_spec())] {
        assert_eq!(paths("liveness-probe-missing", &v), Vec::<String>::new());
        assert_eq!(paths("readiness-probe-missing", &v), Vec::<String>::new());
    }
    let mut spec = probe_spec();
    spec["restartPolicy"] = json!("Never");
    assert_eq!(
        paths("liveness-probe-missing", &bare_pod(spec)),
        Vec::<String>::new()
    );
    // A bare pod with the default restartPolicy is long-running.
    assert_eq!(
        paths("liveness-probe-missing", &bare_pod(probe_spec())),
        ["spec.initContainers[1]", "spec.containers[0]"]
    );
}

// ---------------------------------------------------------------------------
// host-path-writable
// ---------------------------------------------------------------------------

#[test]
fn writable_host_path_mounts_are_flagged_per_mount() {
    let d = deployment(json!({
        "volumes": [
            {"name": "data", "emptyDir": {}},
            {"name": "host", "hostPath": {"path": "/var/lib"}},
            {"name": "sock", "hostPath": {"path": "/run/docker.sock", "type": "Socket"}}
        ],
        "containers": [
            {"name": "a", "image": "x:1", "volumeMounts": [
                {"name": "data", "mountPath": "/data"},
                {"name": "host", "mountPath": "/host", "readOnly": true},
                {"name": "sock", "mountPath": "/run/docker.sock"}
            ]},
            {"name": "b", "image": "x:1", "volumeMounts": [
                {"name": "host", "mountPath": "/host", "readOnly": false}
            ]}
        ],
        "ephemeralContainers": [{"name": "dbg", "image": "x:1", "volumeMounts": [
            {"name": "sock", "mountPath": "/sock"}
        ]}]
    }));
    let found = violations("host-path-writable", &d);
    assert_eq!(
        found.iter().map(|f| f.path.to_string()).collect::<Vec<_>>(),
        [
            format!("{D}.containers[0].volumeMounts[2]"),
            format!("{D}.containers[1].volumeMounts[0].readOnly"),
            format!("{D}.ephemeralContainers[0].volumeMounts[0]"),
        ]
    );
    assert_eq!(related(&found[0]), [format!("{D}.volumes[2].hostPath")]);
    assert_eq!(related(&found[1]), [format!("{D}.volumes[1].hostPath")]);
    assert_eq!(
        found[0].message,
        "container \"a\" mounts hostPath volume \"sock\" (host path \"/run/docker.sock\") writable at \"/run/docker.sock\""
    );
}

#[test]
fn read_only_or_non_host_path_mounts_pass() {
    let d = deployment(json!({
        "volumes": [{"name": "host", "hostPath": {"path": "/etc"}}, {"name": "data", "emptyDir": {}}],
        "containers": [{"name": "a", "image": "x:1", "volumeMounts": [
            {"name": "host", "mountPath": "/host", "readOnly": true},
            {"name": "data", "mountPath": "/data"}
        ]}]
    }));
    assert_eq!(paths("host-path-writable", &d), Vec::<String>::new());
}

// ---------------------------------------------------------------------------
// automount-service-account-token
// ---------------------------------------------------------------------------

fn service_account(name: &str, ns: Option<&str>, automount: Option<bool>) -> Value {
    let mut sa = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}});
    if let Some(ns) = ns {
        sa["metadata"]["namespace"] = json!(ns);
    }
    if let Some(a) = automount {
        sa["automountServiceAccountToken"] = json!(a);
    }
    sa
}

const AUTOMOUNT: &str = "automount-service-account-token";

#[test]
fn automount_token_follows_pod_then_service_account_precedence() {
    let c = PracticeConfig::default();
    let spec = |extra: Value| {
        let mut s = json!({"containers": [{"name": "a", "image": "x:1"}]});
        s.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        s
    };
    let objects = [
        /* 0 */ deployment(spec(json!({"automountServiceAccountToken": false}))),
        /* 1 */ deployment(spec(json!({"automountServiceAccountToken": true}))),
        /* 2 */ deployment(spec(json!({"serviceAccountName": "builder"}))),
        /* 3 */ deployment(spec(json!({"serviceAccountName": "other"}))),
        /* 4 */
        in_namespace(
            deployment(spec(json!({"serviceAccountName": "builder"}))),
            "elsewhere",
        ),
        /* 5 */ deployment(spec(json!({}))),
        /* 6 */ service_account("builder", Some("app"), Some(false)),
        /* 7 */ service_account("other", Some("app"), Some(true)),
        /* 8 */
        deployment(spec(
            json!({"serviceAccountName": "builder", "automountServiceAccountToken": true}),
        )),
        /* 9 */ cron_job(spec(json!({"serviceAccountName": "builder"}))),
    ];
    let found = corpus_violations(&c, AUTOMOUNT, &objects);
    let got: Vec<(usize, String)> = found
        .iter()
        .map(|(i, f)| (*i, f.path.to_string()))
        .collect();
    assert_eq!(
        got,
        [
            (1, format!("{D}.automountServiceAccountToken")),
            (3, D.to_owned()),
            (4, D.to_owned()),
            (5, D.to_owned()),
            (8, format!("{D}.automountServiceAccountToken")),
        ]
    );
    assert_eq!(
        found[3].1.message,
        "neither the pod nor its service account \"default\" sets automountServiceAccountToken to false, so the API token is mounted"
    );
}

#[test]
fn automount_token_matches_namespace_less_objects_together_or_by_default_namespace() {
    let pod = without_namespace(deployment(
        json!({"containers": [{"name": "a", "image": "x:1"}]}),
    ));
    let default_sa = |ns| service_account("default", ns, Some(false));
    let c = PracticeConfig::default();
    assert_eq!(
        corpus_paths(&c, AUTOMOUNT, &[pod.clone(), default_sa(None)]),
        vec![]
    );
    assert_eq!(
        corpus_paths(&c, AUTOMOUNT, &[pod.clone(), default_sa(Some("app"))]),
        [(0, D.to_owned())]
    );
    let with_default = PracticeConfig {
        default_namespace: Some("app".to_owned()),
        ..PracticeConfig::default()
    };
    assert_eq!(
        corpus_paths(&with_default, AUTOMOUNT, &[pod, default_sa(Some("app"))]),
        vec![]
    );
}

// ---------------------------------------------------------------------------
// untrusted-namespace-without-sandbox
// ---------------------------------------------------------------------------

const SANDBOX: &str = "untrusted-namespace-without-sandbox";

fn risky_spec(runtime_class: Option<&str>) -> Value {
    let mut s = json!({
        "hostNetwork": true,
        "hostPID": false,
        "containers": [
            {"name": "a", "image": "x:1"},
            {"name": "b", "image": "x:1", "securityContext": {"privileged": true}}
        ]
    });
    if let Some(r) = runtime_class {
        s["runtimeClassName"] = json!(r);
    }
    s
}

fn untrusted_ns() -> Value {
    namespace("tenant", json!({"rampart.dev/untrusted": "true"}))
}

#[test]
fn privileged_pods_in_labelled_untrusted_namespaces_need_a_sandbox() {
    let c = PracticeConfig::default();
    let objects = [
        untrusted_ns(),
        namespace("trusted", json!({"rampart.dev/untrusted": "false"})),
        in_namespace(deployment(risky_spec(Some("runc"))), "tenant"),
        in_namespace(deployment(risky_spec(Some("kata-qemu"))), "tenant"),
        in_namespace(deployment(risky_spec(None)), "trusted"),
        in_namespace(
            deployment(json!({"containers": [{"name": "a", "image": "x:1"}]})),
            "tenant",
        ),
        in_namespace(cron_job(risky_spec(None)), "tenant"),
        without_namespace(deployment(risky_spec(None))),
    ];
    let found = corpus_violations(&c, SANDBOX, &objects);
    let got: Vec<(usize, String)> = found
        .iter()
        .map(|(i, f)| (*i, f.path.to_string()))
        .collect();
    assert_eq!(
        got,
        [
            (2, format!("{D}.hostNetwork")),
            (
                6,
                "spec.jobTemplate.spec.template.spec.hostNetwork".to_owned()
            ),
        ]
    );
    assert_eq!(
        related(&found[0].1),
        [
            format!("{D}.containers[1].securityContext.privileged"),
            format!("{D}.runtimeClassName")
        ]
    );
    assert_eq!(
        found[0].1.message,
        "pod in untrusted namespace \"tenant\" uses hostNetwork, privileged container \"b\" without a sandbox (runtimeClassName \"runc\" is not a sandbox)"
    );
    assert!(found[1].1.message.ends_with("(no runtimeClassName)"));
}

#[test]
fn untrusted_namespaces_can_be_named_in_config_and_default_namespace_applies() {
    let config = PracticeConfig {
        untrusted_namespaces: vec!["ci".to_owned()],
        sandbox_runtime_classes: vec!["kata-*".to_owned()],
        untrusted_namespace_label: None,
        ..PracticeConfig::default()
    };
    let privileged_init = json!({
        "initContainers": [{"name": "setup", "image": "x:1", "securityContext": {"privileged": true}}],
        "containers": [{"name": "a", "image": "x:1"}]
    });
    let objects = [
        untrusted_ns(), // label detection is off
        in_namespace(deployment(risky_spec(None)), "tenant"),
        in_namespace(bare_pod(privileged_init.clone()), "ci"),
        in_namespace(bare_pod(risky_spec(Some("kata-clh"))), "ci"),
        in_namespace(bare_pod(risky_spec(Some("gvisor"))), "ci"),
        without_namespace(bare_pod(risky_spec(None))),
    ];
    assert_eq!(
        corpus_paths(&config, SANDBOX, &objects),
        [
            (
                2,
                "spec.initContainers[0].securityContext.privileged".to_owned()
            ),
            (4, "spec.hostNetwork".to_owned()),
        ]
    );
    let ci_default = PracticeConfig {
        default_namespace: Some("ci".to_owned()),
        ..config
    };
    assert_eq!(
        corpus_paths(&ci_default, SANDBOX, &objects[5..]),
        [(0, "spec.hostNetwork".to_owned())]
    );
}

#[test]
fn no_untrusted_namespace_means_no_sandbox_findings() {
    let objects = [
        deployment(risky_spec(None)),
        in_namespace(bare_pod(risky_spec(None)), "tenant"),
    ];
    assert_eq!(
        corpus_paths(&PracticeConfig::default(), SANDBOX, &objects),
        vec![]
    );
}

// ---------------------------------------------------------------------------
// Namespace hygiene
// ---------------------------------------------------------------------------

const QUOTA: &str = "namespace-missing-resource-quota";
const LIMITS: &str = "namespace-missing-limit-range";
const DENY: &str = "namespace-missing-default-deny-network-policy";

fn namespaced(api_version: &str, kind: &str, ns: Option<&str>, spec: Value) -> Value {
    let mut v =
        json!({"apiVersion": api_version, "kind": kind, "metadata": {"name": "x"}, "spec": spec});
    if let Some(ns) = ns {
        v["metadata"]["namespace"] = json!(ns);
    }
    v
}

fn deny_all(ns: Option<&str>) -> Value {
    namespaced(
        "networking.k8s.io/v1",
        "NetworkPolicy",
        ns,
        json!({"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}),
    )
}

#[test]
fn hygiene_checks_need_the_namespace_object() {
    let objects = [
        deployment(good_spec()),
        namespaced("v1", "ConfigMap", Some("app"), json!({})),
    ];
    for id in [QUOTA, LIMITS, DENY] {
        assert_eq!(
            corpus_paths(&PracticeConfig::default(), id, &objects),
            vec![],
            "{id}"
        );
    }
}

#[test]
fn a_bare_namespace_fails_every_hygiene_check_at_its_name() {
    let objects = [
        deployment(good_spec()),
        namespace("app", json!({})),
        namespace("kube-system", json!({})),
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"generateName": "tmp-"}}),
    ];
    for id in [QUOTA, LIMITS, DENY] {
        assert_eq!(
            corpus_paths(&PracticeConfig::default(), id, &objects),
            [(1, "metadata.name".to_owned())],
            "{id}"
        );
    }
    let found = corpus_violations(&PracticeConfig::default(), DENY, &objects);
    assert_eq!(
        found[0].1.message,
        "namespace \"app\" has no NetworkPolicy denying ingress to all its pods by default"
    );
    let found = corpus_violations(&PracticeConfig::default(), QUOTA, &objects);
    assert_eq!(found[0].1.message, "namespace \"app\" has no ResourceQuota");
}

#[test]
fn a_complete_namespace_passes_and_objects_elsewhere_do_not_count() {
    let complete = [
        namespace("app", json!({})),
        namespaced(
            "v1",
            "ResourceQuota",
            Some("app"),
            json!({"hard": {"pods": "10"}}),
        ),
        namespaced("v1", "LimitRange", Some("app"), json!({"limits": []})),
        deny_all(Some("app")),
    ];
    for id in [QUOTA, LIMITS, DENY] {
        assert_eq!(
            corpus_paths(&PracticeConfig::default(), id, &complete),
            vec![],
            "{id}"
        );
    }
    let elsewhere = [
        namespace("app", json!({})),
        namespaced("v1", "ResourceQuota", Some("other"), json!({})),
        namespaced("v1", "LimitRange", None, json!({})),
        deny_all(Some("other")),
        // Right kind name, wrong group.
        namespaced("example.com/v1", "ResourceQuota", Some("app"), json!({})),
    ];
    for id in [QUOTA, LIMITS, DENY] {
        assert_eq!(
            corpus_paths(&PracticeConfig::default(), id, &elsewhere),
            [(0, "metadata.name".to_owned())],
            "{id}"
        );
    }
    // With a default namespace, namespace-less objects count for it.
    let config = PracticeConfig {
        default_namespace: Some("app".to_owned()),
        ..PracticeConfig::default()
    };
    assert_eq!(corpus_paths(&config, LIMITS, &elsewhere), vec![]);
}

#[test]
fn system_namespaces_are_configurable() {
    let objects = [
        namespace("default", json!({})),
        namespace("kube-public", json!({})),
    ];
    assert_eq!(
        corpus_paths(&PracticeConfig::default(), QUOTA, &objects),
        [(0, "metadata.name".to_owned())]
    );
    let config = PracticeConfig {
        system_namespaces: vec!["default".to_owned()],
        ..PracticeConfig::default()
    };
    assert_eq!(
        corpus_paths(&config, QUOTA, &objects),
        [(1, "metadata.name".to_owned())]
    );
}

#[test]
fn network_policy_default_deny_variants() {
    let deny = |spec: Value| {
        default_deny(&namespaced(
            "networking.k8s.io/v1",
            "NetworkPolicy",
            None,
            spec,
        ))
    };
    let both = DefaultDeny {
        ingress: true,
        egress: true,
    };
    let ingress = DefaultDeny {
        ingress: true,
        egress: false,
    };
    let egress = DefaultDeny {
        ingress: false,
        egress: true,
    };
    let none = DefaultDeny::default();
    let cases = [
        (
            json!({"podSelector": {}, "policyTypes": ["Ingress"]}),
            ingress,
        ),
        (json!({"podSelector": {}}), ingress),
        (json!({}), ingress),
        (
            json!({"podSelector": {"matchLabels": {}, "matchExpressions": []}}),
            ingress,
        ),
        (
            json!({"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}),
            both,
        ),
        (
            json!({"podSelector": {}, "policyTypes": ["Egress"]}),
            egress,
        ),
        (
            json!({"podSelector": {}, "policyTypes": ["Egress"], "egress": []}),
            egress,
        ),
        (
            json!({"podSelector": {"matchLabels": {"app": "x"}}, "policyTypes": ["Ingress"]}),
            none,
        ),
        (
            json!({"podSelector": {"matchExpressions": [{"key": "a", "operator": "Exists"}]}}),
            none,
        ),
        // An empty rule allows everything.
        (json!({"podSelector": {}, "ingress": [{}]}), none),
        (
            json!({"podSelector": {}, "policyTypes": ["Ingress", "Egress"], "egress": [{}]}),
            ingress,
        ),
        // Without policyTypes, egress rules add Egress (allowing), ingress stays denied.
        (
            json!({"podSelector": {}, "egress": [{"to": [{"podSelector": {}}]}]}),
            ingress,
        ),
        // Ingress rules: not a default deny for ingress.
        (
            json!({"podSelector": {}, "policyTypes": ["Ingress", "Egress"],
                "ingress": [{"from": [{"podSelector": {}}]}]}),
            egress,
        ),
    ];
    for (spec, want) in cases {
        assert_eq!(deny(spec.clone()), want, "{spec}");
    }
    let no_spec = json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "x"}});
    assert_eq!(default_deny(&no_spec), ingress);
}

#[test]
fn default_deny_may_be_split_and_egress_is_optional() {
    let ingress_only = namespaced(
        "networking.k8s.io/v1",
        "NetworkPolicy",
        Some("app"),
        json!({"podSelector": {}, "policyTypes": ["Ingress"]}),
    );
    let egress_only = namespaced(
        "extensions/v1beta1",
        "NetworkPolicy",
        Some("app"),
        json!({"podSelector": {}, "policyTypes": ["Egress"]}),
    );
    let strict = PracticeConfig {
        require_default_deny_egress: true,
        ..PracticeConfig::default()
    };
    let ns = namespace("app", json!({}));
    assert_eq!(
        corpus_paths(
            &PracticeConfig::default(),
            DENY,
            &[ns.clone(), ingress_only.clone()]
        ),
        vec![]
    );
    let found = corpus_violations(&strict, DENY, &[ns.clone(), ingress_only.clone()]);
    assert_eq!(
        found[0].1.message,
        "namespace \"app\" has no NetworkPolicy denying egress to all its pods by default"
    );
    assert_eq!(
        corpus_paths(
            &strict,
            DENY,
            &[ns.clone(), ingress_only, egress_only.clone()]
        ),
        vec![]
    );
    let found = corpus_violations(&strict, DENY, std::slice::from_ref(&ns));
    assert!(found[0].1.message.contains("denying ingress or egress"));
    let found = corpus_violations(&PracticeConfig::default(), DENY, &[ns, egress_only]);
    assert!(found[0].1.message.contains("denying ingress to"));
}

// ---------------------------------------------------------------------------
// RBAC
// ---------------------------------------------------------------------------

fn role(kind: &str, rules: Value) -> Value {
    let mut v = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind,
        "metadata": {"name": "r"}, "rules": rules});
    if kind == "Role" {
        v["metadata"]["namespace"] = json!("app");
    }
    v
}

fn broad_rules() -> Value {
    json!([
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]},
        {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
        {"apiGroups": [""], "resources": ["pods", "pods/exec"], "verbs": ["get", "create"]},
        {"nonResourceURLs": ["*"], "verbs": ["get"]},
        {"apiGroups": ["apps"], "resources": ["*"], "verbs": ["get"]}
    ])
}

/// `(path, severity override)` of each violation.
fn rbac(id: &str, v: &Value) -> Vec<(String, Option<Severity>)> {
    violations(id, v)
        .into_iter()
        .map(|f| (f.path.to_string(), f.severity))
        .collect()
}

#[test]
fn wildcard_verbs_point_at_the_rule_and_are_lower_for_roles() {
    let p = |s: &str| s.to_owned();
    assert_eq!(
        rbac("rbac-wildcard-verbs", &role("ClusterRole", broad_rules())),
        [(p("rules[1].verbs"), None)]
    );
    assert_eq!(
        rbac("rbac-wildcard-verbs", &role("Role", broad_rules())),
        [(p("rules[1].verbs"), Some(Severity::Medium))]
    );
    let narrow = role(
        "ClusterRole",
        json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]),
    );
    assert_eq!(rbac("rbac-wildcard-verbs", &narrow), []);
    let found = violations("rbac-wildcard-verbs", &role("ClusterRole", broad_rules()));
    assert_eq!(
        found[0].message,
        "ClusterRole rule 1 grants every verb (\"*\")"
    );
}

#[test]
fn wildcard_resources_cover_resources_api_groups_and_urls() {
    let found = violations(
        "rbac-wildcard-resources",
        &role("ClusterRole", broad_rules()),
    );
    let got: Vec<(String, Vec<String>)> = found
        .iter()
        .map(|f| (f.path.to_string(), related(f)))
        .collect();
    assert_eq!(
        got,
        [
            (
                "rules[1].resources".to_owned(),
                vec!["rules[1].apiGroups".to_owned()]
            ),
            ("rules[3].nonResourceURLs".to_owned(), vec![]),
            ("rules[4].resources".to_owned(), vec![]),
        ]
    );
    assert_eq!(
        found[0].message,
        "ClusterRole rule 1 has \"*\" in resources and apiGroups"
    );
    let roles = rbac("rbac-wildcard-resources", &role("Role", broad_rules()));
    assert!(roles.iter().all(|(_, s)| *s == Some(Severity::Medium)));
    let narrow = role(
        "Role",
        json!([{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["*"]}]),
    );
    assert_eq!(rbac("rbac-wildcard-resources", &narrow), []);
}

#[test]
fn pods_exec_follows_rbac_matching() {
    assert_eq!(
        rbac("rbac-pods-exec", &role("ClusterRole", broad_rules())),
        [
            ("rules[1].resources".to_owned(), None),
            ("rules[2].resources".to_owned(), None)
        ]
    );
    assert_eq!(
        rbac("rbac-pods-exec", &role("Role", broad_rules())),
        [
            ("rules[1].resources".to_owned(), Some(Severity::Medium)),
            ("rules[2].resources".to_owned(), Some(Severity::Medium)),
        ]
    );
    let found = violations("rbac-pods-exec", &role("ClusterRole", broad_rules()));
    assert_eq!(related(&found[1]), ["rules[2].verbs"]);
    assert_eq!(
        found[1].message,
        "ClusterRole rule 2 lets subjects exec or attach into pods (\"create\" on \"pods/exec\")"
    );
    let cases = [
        (
            json!({"apiGroups": [""], "resources": ["pods/attach"], "verbs": ["*"]}),
            true,
        ),
        (
            json!({"apiGroups": ["*"], "resources": ["*/exec"], "verbs": ["create"]}),
            true,
        ),
        // `pods/*` is not a wildcard in RBAC.
        (
            json!({"apiGroups": [""], "resources": ["pods/*"], "verbs": ["create"]}),
            false,
        ),
        (
            json!({"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["get"]}),
            false,
        ),
        (
            json!({"apiGroups": ["apps"], "resources": ["pods/exec"], "verbs": ["create"]}),
            false,
        ),
        (
            json!({"resources": ["pods/exec"], "verbs": ["create"]}),
            false,
        ),
        (
            json!({"apiGroups": [""], "resources": ["pods/log"], "verbs": ["create"]}),
            false,
        ),
    ];
    for (rule, flagged) in cases {
        let found = paths("rbac-pods-exec", &role("ClusterRole", json!([rule])));
        assert_eq!(found.len(), usize::from(flagged), "{rule}");
    }
}

#[test]
fn aggregated_bootstrap_and_system_roles_are_skipped() {
    let mut aggregated = role("ClusterRole", json!([]));
    aggregated["aggregationRule"] =
        json!({"clusterRoleSelectors": [{"matchLabels": {"x": "true"}}]});
    let mut aggregated_filled = role("ClusterRole", broad_rules());
    aggregated_filled["aggregationRule"] = aggregated["aggregationRule"].clone();
    let mut bootstrap = role("ClusterRole", broad_rules());
    bootstrap["metadata"]["labels"] = json!({"kubernetes.io/bootstrapping": "rbac-defaults"});
    let mut system = role("ClusterRole", broad_rules());
    system["metadata"]["name"] = json!("system:controller:foo");
    let wrong_group = json!({"apiVersion": "v1", "kind": "ClusterRole", "metadata": {"name": "r"}, "rules": broad_rules()});
    for v in [
        aggregated,
        aggregated_filled,
        bootstrap,
        system,
        wrong_group,
    ] {
        for id in [
            "rbac-wildcard-verbs",
            "rbac-wildcard-resources",
            "rbac-pods-exec",
        ] {
            assert_eq!(paths(id, &v), Vec::<String>::new(), "{id} {v}");
        }
    }
}

fn binding(kind: &str, role_kind: &str, role_name: &str, subjects: Value) -> Value {
    let mut v = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": {"name": "b"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role_name},
        "subjects": subjects
    });
    if kind == "RoleBinding" {
        v["metadata"]["namespace"] = json!("app");
    }
    v
}

const ADMIN: &str = "rbac-cluster-admin-binding";

#[test]
fn cluster_admin_bindings_are_critical_except_for_system_masters() {
    let subjects = json!([
        {"kind": "Group", "name": "system:masters", "apiGroup": "rbac.authorization.k8s.io"},
        {"kind": "ServiceAccount", "name": "deployer", "namespace": "ci"},
        {"kind": "Group", "name": "system:authenticated", "apiGroup": "rbac.authorization.k8s.io"}
    ]);
    let crb = binding(
        "ClusterRoleBinding",
        "ClusterRole",
        "cluster-admin",
        subjects.clone(),
    );
    let found = violations(ADMIN, &crb);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].path.to_string(), "roleRef.name");
    assert_eq!(found[0].severity, None);
    assert_eq!(related(&found[0]), ["subjects[1]", "subjects[2]"]);
    assert_eq!(
        found[0].message,
        "ClusterRoleBinding grants cluster-admin to ServiceAccount \"ci/deployer\", Group \"system:authenticated\""
    );

    let rb = binding("RoleBinding", "ClusterRole", "cluster-admin", subjects);
    let found = violations(ADMIN, &rb);
    assert_eq!(found[0].severity, Some(Severity::High));
    assert!(
        found[0]
            .message
            .starts_with("RoleBinding grants cluster-admin in namespace \"app\" to ")
    );
}

#[test]
fn other_bindings_pass() {
    let masters = json!([{"kind": "Group", "name": "system:masters"}]);
    let user = json!([{"kind": "User", "name": "alice"}]);
    let passing = [
        binding(
            "ClusterRoleBinding",
            "ClusterRole",
            "cluster-admin",
            masters,
        ),
        binding(
            "ClusterRoleBinding",
            "ClusterRole",
            "cluster-admin",
            json!([]),
        ),
        binding("ClusterRoleBinding", "ClusterRole", "admin", user.clone()),
        binding("RoleBinding", "Role", "cluster-admin", user.clone()),
        json!({"apiVersion": "v1", "kind": "ClusterRoleBinding", "metadata": {"name": "b"},
            "roleRef": {"kind": "ClusterRole", "name": "cluster-admin"}, "subjects": user}),
    ];
    for v in passing {
        assert_eq!(paths(ADMIN, &v), Vec::<String>::new(), "{v}");
    }
}

use serde_json::json;

use super::*;
use crate::op::Action;

fn pod(spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec})
}

fn plan_for(object: &Value, failing: &[&str], options: &FixOptions) -> Plan {
    let view = ObjectView::new(object).unwrap();
    let failing: BTreeSet<&str> = failing.iter().copied().collect();
    plan(&view, &failing, options)
}

/// `(path, value)` of each change, `+` marking an append.
fn changes(plan: &Plan) -> Vec<(String, Value)> {
    plan.changes
        .iter()
        .map(|c| match &c.op.action {
            Action::Set(v) => (c.op.path.to_string(), v.clone()),
            Action::Append(v) => (format!("{}+", c.op.path), v.clone()),
        })
        .collect()
}

fn refusals(plan: &Plan) -> Vec<(String, String)> {
    plan.refusals
        .iter()
        .map(|r| (r.subject.clone(), r.reason.clone()))
        .collect()
}

fn forced() -> FixOptions {
    FixOptions {
        force: true,
        ..FixOptions::default()
    }
}

#[test]
fn allow_privilege_escalation_except_where_the_api_would_refuse_it() {
    let object = pod(json!({
        "initContainers": [{"name": "init"}],
        "containers": [
            {"name": "ok", "securityContext": {"runAsUser": 1}},
            {"name": "done", "securityContext": {"allowPrivilegeEscalation": false}},
            {"name": "priv", "securityContext": {"privileged": true}},
            {"name": "admin", "securityContext": {"capabilities": {"add": ["CAP_SYS_ADMIN"]}}},
            {"name": "sudo", "securityContext": {"allowPrivilegeEscalation": true}},
        ],
        "ephemeralContainers": [{"name": "debug"}],
    }));
    let check = ["pss-allowPrivilegeEscalation"];
    let p = plan_for(&object, &check, &FixOptions::default());
    assert_eq!(
        changes(&p),
        [
            (
                "spec.initContainers[0].securityContext.allowPrivilegeEscalation".to_owned(),
                json!(false)
            ),
            (
                "spec.containers[0].securityContext.allowPrivilegeEscalation".to_owned(),
                json!(false)
            ),
            (
                "spec.ephemeralContainers[0].securityContext.allowPrivilegeEscalation".to_owned(),
                json!(false)
            ),
        ]
    );
    let refused = refusals(&p);
    assert_eq!(
        refused.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(),
        [
            "container \"priv\"",
            "container \"admin\"",
            "container \"sudo\""
        ]
    );
    assert!(refused[0].1.contains("privileged"), "{refused:?}");
    assert!(refused[1].1.contains("CAP_SYS_ADMIN"), "{refused:?}");
    assert!(refused[2].1.contains("--force"), "{refused:?}");

    // --force overrides the explicit true, never the API's own rules.
    let p = plan_for(&object, &check, &forced());
    assert_eq!(p.changes.len(), 4);
    assert_eq!(p.refusals.len(), 2);

    let windows = pod(json!({"os": {"name": "windows"}, "containers": [{"name": "w"}]}));
    let p = plan_for(&windows, &check, &FixOptions::default());
    assert!(p.changes.is_empty());
    assert!(p.refusals[0].reason.contains("Windows"));
}

#[test]
fn capabilities_drop_all_and_keep_what_is_added() {
    let object = pod(json!({"containers": [
        {"name": "bare"},
        {"name": "some", "securityContext": {"capabilities": {"drop": ["NET_RAW"], "add": ["NET_BIND_SERVICE"]}}},
        {"name": "adds", "securityContext": {"capabilities": {"add": ["NET_ADMIN", "NET_BIND_SERVICE", "SYS_TIME"]}}},
        {"name": "done", "securityContext": {"capabilities": {"drop": ["ALL"]}}},
    ]}));
    let p = plan_for(
        &object,
        &["pss-capabilities_restricted"],
        &FixOptions::default(),
    );
    assert_eq!(
        changes(&p),
        [
            (
                "spec.containers[0].securityContext.capabilities.drop".to_owned(),
                json!(["ALL"])
            ),
            (
                "spec.containers[1].securityContext.capabilities.drop+".to_owned(),
                json!("ALL")
            ),
            (
                "spec.containers[2].securityContext.capabilities.drop".to_owned(),
                json!(["ALL"])
            ),
        ]
    );
    assert_eq!(p.refusals.len(), 1);
    assert!(
        p.refusals[0].reason.contains("NET_ADMIN, SYS_TIME"),
        "{:?}",
        p.refusals
    );
}

#[test]
fn seccomp_runtime_default_unless_chosen_otherwise() {
    let restricted = ["pss-seccompProfile_restricted"];
    let p = plan_for(
        &pod(json!({"containers": [{"name": "a"}]})),
        &restricted,
        &FixOptions::default(),
    );
    assert_eq!(
        changes(&p),
        [(
            "spec.securityContext.seccompProfile.type".to_owned(),
            json!("RuntimeDefault")
        )]
    );

    let unconfined = pod(json!({
        "securityContext": {"seccompProfile": {"type": "Unconfined"}},
        "containers": [
            {"name": "a", "securityContext": {"seccompProfile": {"type": "Unconfined"}}},
            {"name": "b", "securityContext": {"seccompProfile": {"type": "Localhost", "localhostProfile": "x.json"}}},
        ],
    }));
    let p = plan_for(&unconfined, &restricted, &FixOptions::default());
    assert!(p.changes.is_empty());
    assert_eq!(p.refusals.len(), 2);
    assert!(p.refusals[0].reason.contains("\"Unconfined\""));
    let p = plan_for(&unconfined, &restricted, &forced());
    assert_eq!(
        changes(&p),
        [
            (
                "spec.securityContext.seccompProfile.type".to_owned(),
                json!("RuntimeDefault")
            ),
            (
                "spec.containers[0].securityContext.seccompProfile.type".to_owned(),
                json!("RuntimeDefault")
            ),
        ]
    );

    // A container-level Unconfined with a localhostProfile is left to a person.
    let odd = pod(json!({"containers": [
        {"name": "a", "securityContext": {"seccompProfile": {"type": "Unconfined", "localhostProfile": "p"}}},
    ]}));
    let p = plan_for(&odd, &restricted, &forced());
    assert_eq!(changes(&p).len(), 1, "only the pod level: {p:?}");
    assert!(p.refusals[0].reason.contains("localhostProfile"));

    // The baseline check alone does not ask for a profile.
    let p = plan_for(
        &pod(
            json!({"containers": [{"name": "a", "securityContext": {"seccompProfile": {"type": "Unconfined"}}}]}),
        ),
        &["pss-seccompProfile_baseline"],
        &FixOptions::default(),
    );
    assert!(p.changes.is_empty());
    assert_eq!(p.refusals.len(), 1);

    // Before v1.19, annotations.
    let annotated = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "annotations": {"seccomp.security.alpha.kubernetes.io/pod": "unconfined"}},
        "spec": {"containers": [{"name": "a"}]}});
    let p = plan_for(&annotated, &["pss-seccompProfile_baseline"], &forced());
    assert!(p.changes.is_empty());
    assert!(p.refusals[0].reason.contains("annotation"));
}

#[test]
fn run_as_non_root_at_pod_level_with_a_warning() {
    let check = ["pss-runAsNonRoot"];
    let p = plan_for(
        &pod(json!({"containers": [{"name": "a"}]})),
        &check,
        &FixOptions::default(),
    );
    assert_eq!(
        changes(&p),
        [("spec.securityContext.runAsNonRoot".to_owned(), json!(true))]
    );
    assert!(p.changes[0].note.as_deref().unwrap().contains("non-root"));

    let root = pod(json!({"containers": [{"name": "a", "securityContext": {"runAsUser": 0}}]}));
    let p = plan_for(&root, &check, &forced());
    assert!(p.changes.is_empty());
    assert!(p.refusals[0].reason.contains("UID 0"));

    let explicit = pod(json!({
        "securityContext": {"runAsNonRoot": false},
        "containers": [{"name": "a", "securityContext": {"runAsNonRoot": false}}],
    }));
    let p = plan_for(&explicit, &check, &FixOptions::default());
    assert!(p.changes.is_empty());
    assert_eq!(p.refusals.len(), 2);
    let p = plan_for(&explicit, &check, &forced());
    assert_eq!(
        changes(&p),
        [
            ("spec.securityContext.runAsNonRoot".to_owned(), json!(true)),
            (
                "spec.containers[0].securityContext.runAsNonRoot".to_owned(),
                json!(true)
            ),
        ]
    );
}

#[test]
fn read_only_root_filesystem_is_opt_in() {
    let check = ["read-only-root-filesystem"];
    let object = pod(json!({"containers": [
        {"name": "a"},
        {"name": "b", "securityContext": {"readOnlyRootFilesystem": false}},
    ], "ephemeralContainers": [{"name": "debug"}]}));
    let p = plan_for(&object, &check, &FixOptions::default());
    assert!(p.changes.is_empty());
    assert!(p.refusals[0].reason.contains("--aggressive"));

    let aggressive = FixOptions {
        aggressive: true,
        ..FixOptions::default()
    };
    let p = plan_for(&object, &check, &aggressive);
    assert_eq!(
        changes(&p),
        [(
            "spec.containers[0].securityContext.readOnlyRootFilesystem".to_owned(),
            json!(true)
        )]
    );
    assert!(p.refusals[0].reason.contains("--force"));

    let requested = FixOptions {
        requested: vec!["read-only-root-filesystem".to_owned()],
        force: true,
        ..FixOptions::default()
    };
    assert_eq!(plan_for(&object, &check, &requested).changes.len(), 2);
}

#[test]
fn resources_from_a_profile_never_below_the_request() {
    let both = ["resources-missing-limits", "resources-missing-requests"];
    let object = pod(json!({
        "initContainers": [{"name": "init", "resources": {"requests": {"cpu": "2", "memory": 100}}}],
        "containers": [
            {"name": "bare"},
            {"name": "limited", "resources": {"limits": {"cpu": "1"}}},
        ],
    }));
    let p = plan_for(&object, &both, &FixOptions::default());
    assert!(p.changes.is_empty());
    assert!(p.refusals[0].reason.contains("--resources-profile"));

    let small = FixOptions {
        resources: ResourceProfile::built_in("small"),
        ..FixOptions::default()
    };
    let p = plan_for(&object, &both, &small);
    assert_eq!(
        changes(&p),
        [
            // The request of 2 CPUs is above the profile's limit: the limit follows it.
            (
                "spec.initContainers[0].resources.limits.cpu".to_owned(),
                json!("2")
            ),
            (
                "spec.initContainers[0].resources.limits.memory".to_owned(),
                json!("256Mi")
            ),
            (
                "spec.containers[0].resources.requests.cpu".to_owned(),
                json!("100m")
            ),
            (
                "spec.containers[0].resources.limits.cpu".to_owned(),
                json!("500m")
            ),
            (
                "spec.containers[0].resources.requests.memory".to_owned(),
                json!("128Mi")
            ),
            (
                "spec.containers[0].resources.limits.memory".to_owned(),
                json!("256Mi")
            ),
            // A limit implies the request.
            (
                "spec.containers[1].resources.requests.memory".to_owned(),
                json!("128Mi")
            ),
            (
                "spec.containers[1].resources.limits.memory".to_owned(),
                json!("256Mi")
            ),
        ]
    );
    assert!(p.refusals.is_empty());

    // Only the failing section is fixed; pod-level resources count.
    let object = pod(json!({
        "resources": {"limits": {"memory": "1Gi"}},
        "containers": [{"name": "a", "resources": {"requests": {"cpu": "100m", "memory": "1Gi"}}}],
    }));
    let p = plan_for(&object, &["resources-missing-limits"], &small);
    assert_eq!(
        changes(&p),
        [(
            "spec.containers[0].resources.limits.cpu".to_owned(),
            json!("500m")
        )]
    );
}

#[test]
fn automount_only_for_the_default_service_account() {
    let check = ["automount-service-account-token"];
    for spec in [
        json!({"containers": []}),
        json!({"serviceAccountName": "default", "containers": []}),
        json!({"serviceAccountName": "", "containers": []}),
    ] {
        let p = plan_for(&pod(spec), &check, &FixOptions::default());
        assert_eq!(
            changes(&p),
            [("spec.automountServiceAccountToken".to_owned(), json!(false))]
        );
    }
    let p = plan_for(
        &pod(json!({"serviceAccountName": "operator", "containers": []})),
        &check,
        &FixOptions::default(),
    );
    assert!(p.changes.is_empty());
    assert!(p.refusals[0].reason.contains("\"operator\""));

    let explicit = pod(json!({"automountServiceAccountToken": true, "containers": []}));
    assert!(
        plan_for(&explicit, &check, &FixOptions::default())
            .changes
            .is_empty()
    );
    assert_eq!(plan_for(&explicit, &check, &forced()).changes.len(), 1);
}

#[test]
fn always_pull_sets_every_container() {
    let object = pod(json!({
        "initContainers": [{"name": "i", "imagePullPolicy": "IfNotPresent"}],
        "containers": [{"name": "a"}, {"name": "b", "imagePullPolicy": "Always"}],
    }));
    let options = FixOptions {
        always_pull: true,
        ..FixOptions::default()
    };
    let p = plan_for(&object, &[], &options);
    assert_eq!(
        changes(&p),
        [
            (
                "spec.initContainers[0].imagePullPolicy".to_owned(),
                json!("Always")
            ),
            (
                "spec.containers[0].imagePullPolicy".to_owned(),
                json!("Always")
            ),
        ]
    );
    assert!(p.changes.iter().all(|c| c.check_id == IMAGE_PULL_POLICY));
}

#[test]
fn workload_paths_and_objects_without_pods() {
    let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {"template": {"spec": {"containers": [{"name": "a"}]}}}});
    let p = plan_for(
        &deployment,
        &["pss-allowPrivilegeEscalation"],
        &FixOptions::default(),
    );
    assert_eq!(
        p.changes[0].op.path.to_string(),
        "spec.template.spec.containers[0].securityContext.allowPrivilegeEscalation"
    );
    assert_eq!(p.changes[0].subject, "container \"a\"");

    let role = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": "r"}, "rules": []});
    assert_eq!(
        plan_for(&role, &["rbac-wildcard-verbs"], &forced()),
        Plan::default()
    );
    assert!(no_remedy_reason("rbac-wildcard-verbs").contains("role"));
    assert!(no_remedy_reason("pss-privileged").contains("privileged"));
    assert!(no_remedy_reason("namespace-missing-limit-range").contains("LimitRange"));
}

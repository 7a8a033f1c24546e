//! A pass and a fail case for every check, and both sides of every version
//! boundary, written from the upstream check documentation.

use rampart_core::{FieldPath, PodTemplate};
use serde_json::{Value, json};

use super::*;

fn pod(spec: Value) -> Value {
    json!({"metadata": {"name": "p"}, "spec": spec})
}

fn template(v: &Value) -> PodTemplate<'_> {
    PodTemplate {
        metadata: v.get("metadata"),
        spec: &v["spec"],
        metadata_path: FieldPath::parse("metadata"),
        spec_path: FieldPath::parse("spec"),
    }
}

/// `(check id, reason, detail)` for every failed check.
fn eval(level: &str, version: &str, v: &Value) -> Vec<(&'static str, String, String)> {
    Profile::new(level.parse().unwrap(), version.parse().unwrap())
        .evaluate(&template(v))
        .into_iter()
        .map(|r| {
            (
                r.check.id,
                r.forbidden.reason.into_owned(),
                r.forbidden.detail,
            )
        })
        .collect()
}

fn failed_ids(level: &str, version: &str, v: &Value) -> Vec<&'static str> {
    eval(level, version, v)
        .into_iter()
        .map(|(id, _, _)| id)
        .collect()
}

/// A pod that passes the restricted level at every version.
fn restricted_pod() -> Value {
    pod(json!({
        "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{
            "name": "app", "image": "app:1",
            "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}
        }],
        "initContainers": [{
            "name": "init", "image": "init:1",
            "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}
        }]
    }))
}

fn with(mut base: Value, pointer: &str, value: Value) -> Value {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    let target = base.pointer_mut(parent).unwrap();
    match target {
        Value::Array(a) => a[key.parse::<usize>().unwrap()] = value,
        Value::Object(o) => {
            o.insert(key.to_owned(), value);
        }
        _ => panic!("cannot set {pointer}"),
    }
    base
}

#[test]
fn there_are_twelve_baseline_and_seven_restricted_checks() {
    let baseline = CHECKS.iter().filter(|c| c.level == Level::Baseline).count();
    let restricted = CHECKS
        .iter()
        .filter(|c| c.level == Level::Restricted)
        .count();
    assert_eq!((baseline, restricted), (12, 7));
}

#[test]
fn restricted_pod_passes_every_level_and_version() {
    let p = restricted_pod();
    for minor in 0..=NEWEST_MINOR + 2 {
        for level in ["baseline", "restricted"] {
            assert_eq!(
                eval(level, &format!("v1.{minor}"), &p),
                vec![],
                "{level} v1.{minor}"
            );
        }
    }
    assert_eq!(eval("restricted", "latest", &p), vec![]);
}

#[test]
fn privileged_level_checks_nothing() {
    let p = with(restricted_pod(), "/spec/hostPID", json!(true));
    assert!(eval("privileged", "latest", &p).is_empty());
}

#[test]
fn privileged() {
    let p = with(
        restricted_pod(),
        "/spec/containers/0/securityContext/privileged",
        json!(true),
    );
    assert_eq!(
        eval("baseline", "v1.0", &p),
        vec![(
            "privileged",
            "privileged".into(),
            r#"container "app" must not set securityContext.privileged=true"#.into()
        )]
    );
    let ok = with(
        restricted_pod(),
        "/spec/containers/0/securityContext/privileged",
        json!(false),
    );
    assert!(eval("baseline", "latest", &ok).is_empty());
}

#[test]
fn host_namespaces() {
    let p = with(restricted_pod(), "/spec/hostNetwork", json!(true));
    let p = with(p, "/spec/hostIPC", json!(true));
    assert_eq!(
        eval("baseline", "latest", &p),
        vec![(
            "hostNamespaces",
            "host namespaces".into(),
            "hostNetwork=true, hostIPC=true".into()
        )]
    );
    let ok = with(restricted_pod(), "/spec/hostPID", json!(false));
    assert!(eval("baseline", "latest", &ok).is_empty());
}

#[test]
fn host_path_volumes_in_baseline_and_restricted_volumes_in_restricted() {
    let p = with(
        restricted_pod(),
        "/spec/volumes",
        json!([{"name": "a", "hostPath": {"path": "/"}}, {"name": "b", "hostPath": {"path": "/etc"}}]),
    );
    assert_eq!(
        eval("baseline", "latest", &p),
        vec![(
            "hostPathVolumes",
            "hostPath volumes".into(),
            r#"volumes "a", "b""#.into()
        )]
    );
    // restrictedVolumes overrides hostPathVolumes at the restricted level.
    assert_eq!(
        eval("restricted", "latest", &p),
        vec![(
            "restrictedVolumes",
            "restricted volume types".into(),
            r#"volumes "a", "b" use restricted volume type "hostPath""#.into()
        )]
    );
}

#[test]
fn restricted_volumes() {
    let p = with(
        restricted_pod(),
        "/spec/volumes",
        json!([
            {"name": "implicit-empty-dir"},
            {"name": "e", "emptyDir": {}},
            {"name": "s", "secret": {"secretName": "x"}},
            {"name": "pvc", "persistentVolumeClaim": {"claimName": "x"}},
            {"name": "img", "image": {"reference": "x"}},
        ]),
    );
    assert!(eval("restricted", "latest", &p).is_empty());
    let bad = with(
        restricted_pod(),
        "/spec/volumes",
        json!([{"name": "n", "nfs": {"server": "s", "path": "/"}}, {"name": "g", "gitRepo": {"repository": "r"}}]),
    );
    assert_eq!(
        eval("restricted", "v1.0", &bad),
        vec![(
            "restrictedVolumes",
            "restricted volume types".into(),
            r#"volumes "n", "g" use restricted volume types "gitRepo", "nfs""#.into()
        )]
    );
    assert!(eval("baseline", "latest", &bad).is_empty());
}

#[test]
fn host_ports() {
    let p = with(
        restricted_pod(),
        "/spec/containers/0/ports",
        json!([{"containerPort": 80, "hostPort": 8080}, {"containerPort": 81, "hostPort": 90}, {"containerPort": 82}]),
    );
    assert_eq!(
        eval("baseline", "latest", &p),
        vec![(
            "hostPorts",
            "hostPort".into(),
            // Go sorts the ports as strings.
            r#"container "app" uses hostPorts 8080, 90"#.into()
        )]
    );
    let ok = with(
        restricted_pod(),
        "/spec/containers/0/ports",
        json!([{"containerPort": 80, "hostPort": 0}]),
    );
    assert!(eval("baseline", "latest", &ok).is_empty());
}

#[test]
fn host_probes_and_host_lifecycle_start_at_1_34() {
    let p = with(
        restricted_pod(),
        "/spec/containers/0/livenessProbe",
        json!({"httpGet": {"host": "169.254.169.254", "port": 80}}),
    );
    let p = with(
        p,
        "/spec/initContainers/0/lifecycle",
        json!({"preStop": {"tcpSocket": {"host": "10.0.0.1", "port": 1}}}),
    );
    assert!(eval("baseline", "v1.33", &p).is_empty());
    assert_eq!(
        eval("baseline", "v1.34", &p),
        vec![(
            "hostProbesAndHostLifecycle",
            "probe or lifecycle host".into(),
            r#"containers "app", "init" use probe or lifecycle hosts "10.0.0.1", "169.254.169.254""#.into()
        )]
    );
    let ok = with(
        restricted_pod(),
        "/spec/containers/0/readinessProbe",
        json!({"httpGet": {"host": "", "port": 80}}),
    );
    assert!(eval("baseline", "latest", &ok).is_empty());
}

#[test]
fn app_armor_profile() {
    let p = with(
        restricted_pod(),
        "/spec/containers/0/securityContext/appArmorProfile",
        json!({"type": "Unconfined"}),
    );
    let p = with(
        p,
        "/metadata/annotations",
        json!({"container.apparmor.security.beta.kubernetes.io/app": "unconfined"}),
    );
    assert_eq!(
        eval("baseline", "latest", &p),
        vec![(
            "appArmorProfile",
            "forbidden AppArmor profiles".into(),
            r#"container "app" and annotation must not set AppArmor profile type to "Unconfined", "container.apparmor.security.beta.kubernetes.io/app="unconfined"""#.into()
        )]
    );
    let ok = with(
        restricted_pod(),
        "/metadata/annotations",
        json!({"container.apparmor.security.beta.kubernetes.io/app": "localhost/custom"}),
    );
    let ok = with(
        ok,
        "/spec/securityContext/appArmorProfile",
        json!({"type": "RuntimeDefault"}),
    );
    assert!(eval("baseline", "latest", &ok).is_empty());
}

#[test]
fn capabilities_baseline_and_its_restricted_override_from_1_22() {
    let p = with(
        restricted_pod(),
        "/spec/containers/0/securityContext/capabilities",
        json!({"add": ["NET_RAW", "CHOWN", "SYS_ADMIN"], "drop": ["ALL"]}),
    );
    let baseline_failure = (
        "capabilities_baseline",
        "non-default capabilities".to_owned(),
        r#"container "app" must not include "NET_RAW", "SYS_ADMIN" in securityContext.capabilities.add"#
            .to_owned(),
    );
    assert_eq!(
        eval("baseline", "latest", &p),
        vec![baseline_failure.clone()]
    );
    assert_eq!(eval("restricted", "v1.21", &p), vec![baseline_failure]);
    assert_eq!(
        eval("restricted", "v1.22", &p),
        vec![(
            "capabilities_restricted",
            "unrestricted capabilities".into(),
            r#"container "app" must not include "CHOWN", "NET_RAW", "SYS_ADMIN" in securityContext.capabilities.add"#.into()
        )]
    );
    let ok = with(
        restricted_pod(),
        "/spec/containers/0/securityContext/capabilities",
        json!({"add": ["CHOWN"]}),
    );
    assert!(eval("baseline", "latest", &ok).is_empty());
}

#[test]
fn capabilities_restricted_requires_drop_all() {
    let p = with(
        restricted_pod(),
        "/spec/containers/0/securityContext/capabilities",
        json!({}),
    );
    let p = with(
        p,
        "/spec/initContainers/0/securityContext",
        json!({"allowPrivilegeEscalation": false}),
    );
    assert_eq!(
        eval("restricted", "latest", &p),
        vec![(
            "capabilities_restricted",
            "unrestricted capabilities".into(),
            r#"containers "init", "app" must set securityContext.capabilities.drop=["ALL"]"#.into()
        )]
    );
    let ok = with(
        restricted_pod(),
        "/spec/containers/0/securityContext/capabilities",
        json!({"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}),
    );
    assert!(eval("restricted", "latest", &ok).is_empty());
}

#[test]
fn se_linux_options_allow_container_engine_t_from_1_31() {
    let p = with(
        restricted_pod(),
        "/spec/securityContext/seLinuxOptions",
        json!({"type": "container_engine_t"}),
    );
    assert_eq!(
        eval("baseline", "v1.30", &p),
        vec![(
            "seLinuxOptions",
            "seLinuxOptions".into(),
            r#"pod set forbidden securityContext.seLinuxOptions: type "container_engine_t""#.into()
        )]
    );
    assert!(eval("baseline", "v1.31", &p).is_empty());
    let bad = with(
        restricted_pod(),
        "/spec/containers/0/securityContext/seLinuxOptions",
        json!({"type": "spc_t", "user": "root", "role": "sysadm_r"}),
    );
    assert_eq!(
        eval("baseline", "latest", &bad)[0].2,
        r#"container "app" set forbidden securityContext.seLinuxOptions: type "spc_t"; user may not be set; role may not be set"#
    );
}

#[test]
fn proc_mount_relaxed_for_user_namespaces_in_baseline_only_from_1_35() {
    let p = with(
        restricted_pod(),
        "/spec/containers/0/securityContext/procMount",
        json!("Unmasked"),
    );
    let expected = (
        "procMount".to_owned(),
        r#"container "app" must not set securityContext.procMount to "Unmasked""#.to_owned(),
    );
    assert_eq!(eval("baseline", "v1.0", &p)[0].1, expected.0);
    assert_eq!(eval("baseline", "v1.0", &p)[0].2, expected.1);
    let userns = with(p.clone(), "/spec/hostUsers", json!(false));
    assert_eq!(failed_ids("baseline", "v1.34", &userns), vec!["procMount"]);
    assert!(eval("baseline", "v1.35", &userns).is_empty());
    // restricted keeps the unconditional check, under its own ID from 1.35
    assert_eq!(
        failed_ids("restricted", "v1.34", &userns),
        vec!["procMount"]
    );
    assert_eq!(
        failed_ids("restricted", "v1.35", &userns),
        vec!["procMount_restricted"]
    );
    let ok = with(
        restricted_pod(),
        "/spec/containers/0/securityContext/procMount",
        json!("Default"),
    );
    assert!(eval("restricted", "latest", &ok).is_empty());
}

#[test]
fn seccomp_baseline_uses_annotations_before_1_19_and_fields_after() {
    let annotated = with(
        restricted_pod(),
        "/metadata/annotations",
        json!({"seccomp.security.alpha.kubernetes.io/pod": "unconfined"}),
    );
    assert_eq!(
        eval("baseline", "v1.18", &annotated),
        vec![(
            "seccompProfile_baseline",
            "seccompProfile".into(),
            r#"forbidden annotation seccomp.security.alpha.kubernetes.io/pod="unconfined""#.into()
        )]
    );
    assert!(eval("baseline", "v1.19", &annotated).is_empty());

    let field = with(
        restricted_pod(),
        "/spec/securityContext/seccompProfile",
        json!({"type": "Unconfined"}),
    );
    assert!(eval("baseline", "v1.18", &field).is_empty());
    assert_eq!(
        eval("baseline", "v1.19", &field)[0].2,
        r#"pod must not set securityContext.seccompProfile.type to "Unconfined""#
    );
    let ok = with(
        restricted_pod(),
        "/metadata/annotations",
        json!({"container.seccomp.security.alpha.kubernetes.io/app": "docker/default"}),
    );
    assert!(eval("baseline", "v1.0", &ok).is_empty());
}

#[test]
fn seccomp_restricted_requires_a_profile_from_1_19() {
    let p = with(
        restricted_pod(),
        "/spec/securityContext",
        json!({"runAsNonRoot": true}),
    );
    // Before 1.19 the restricted level only runs the annotation-based baseline check.
    assert!(eval("restricted", "v1.18", &p).is_empty());
    assert_eq!(
        eval("restricted", "v1.19", &p),
        vec![(
            "seccompProfile_restricted",
            "seccompProfile".into(),
            r#"pod or containers "init", "app" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost""#.into()
        )]
    );
    let per_container = with(
        p.clone(),
        "/spec/containers/0/securityContext/seccompProfile",
        json!({"type": "Localhost", "localhostProfile": "x"}),
    );
    let per_container = with(
        per_container,
        "/spec/initContainers/0/securityContext/seccompProfile",
        json!({"type": "RuntimeDefault"}),
    );
    assert!(eval("restricted", "latest", &per_container).is_empty());
}

#[test]
fn sysctl_allow_list_grows_at_1_27_1_29_1_32_and_1_37() {
    let boundaries = [
        ("net.ipv4.ip_local_port_range", 0),
        ("net.ipv4.ip_local_reserved_ports", 27),
        ("net.ipv4.tcp_keepalive_time", 29),
        ("net.ipv4.tcp_rmem", 32),
        ("net.ipv4.tcp_notsent_lowat", 37),
        ("net.ipv4.tcp_slow_start_after_idle", 37),
    ];
    for (name, since) in boundaries {
        let p = with(
            restricted_pod(),
            "/spec/securityContext/sysctls",
            json!([{"name": name, "value": "1"}]),
        );
        if since > 0 {
            assert_eq!(
                eval("baseline", &format!("v1.{}", since - 1), &p),
                vec![("sysctls", "forbidden sysctls".into(), name.into())],
                "{name} before v1.{since}"
            );
        }
        assert!(
            eval("baseline", &format!("v1.{since}"), &p).is_empty(),
            "{name} at v1.{since}"
        );
    }
    let bad = with(
        restricted_pod(),
        "/spec/securityContext/sysctls",
        json!([{"name": "kernel.msgmax", "value": "1"}, {"name": "net.core.somaxconn", "value": "1"}]),
    );
    assert_eq!(
        eval("baseline", "latest", &bad)[0].2,
        "kernel.msgmax, net.core.somaxconn"
    );
}

#[test]
fn windows_host_process() {
    let p = with(
        restricted_pod(),
        "/spec/securityContext/windowsOptions",
        json!({"hostProcess": true}),
    );
    let p = with(
        p,
        "/spec/containers/0/securityContext/windowsOptions",
        json!({"hostProcess": true}),
    );
    assert_eq!(
        eval("baseline", "latest", &p),
        vec![(
            "windowsHostProcess",
            "hostProcess".into(),
            r#"pod and container "app" must not set securityContext.windowsOptions.hostProcess=true"#.into()
        )]
    );
    let ok = with(
        restricted_pod(),
        "/spec/securityContext/windowsOptions",
        json!({"hostProcess": false}),
    );
    assert!(eval("baseline", "latest", &ok).is_empty());
}

#[test]
fn allow_privilege_escalation_starts_at_1_8() {
    let p = with(
        restricted_pod(),
        "/spec/containers/0/securityContext/allowPrivilegeEscalation",
        json!(true),
    );
    assert!(eval("restricted", "v1.7", &p).is_empty());
    assert_eq!(
        eval("restricted", "v1.8", &p),
        vec![(
            "allowPrivilegeEscalation",
            "allowPrivilegeEscalation != false".into(),
            r#"container "app" must set securityContext.allowPrivilegeEscalation=false"#.into()
        )]
    );
}

#[test]
fn windows_pods_skip_three_restricted_checks_from_1_25() {
    let p = pod(json!({
        "os": {"name": "windows"},
        "securityContext": {"runAsNonRoot": true},
        "containers": [{"name": "app", "image": "app:1"}]
    }));
    assert_eq!(
        failed_ids("restricted", "v1.24", &p),
        vec![
            "allowPrivilegeEscalation",
            "capabilities_restricted",
            "seccompProfile_restricted"
        ]
    );
    assert!(eval("restricted", "v1.25", &p).is_empty());
    let linux = with(p, "/spec/os/name", json!("linux"));
    assert_eq!(failed_ids("restricted", "v1.25", &linux).len(), 3);
}

#[test]
fn run_as_non_root_relaxed_for_user_namespaces_from_1_35() {
    let p = with(
        restricted_pod(),
        "/spec/securityContext/runAsNonRoot",
        json!(false),
    );
    assert_eq!(
        eval("restricted", "v1.0", &p),
        vec![(
            "runAsNonRoot",
            "runAsNonRoot != true".into(),
            "pod must not set securityContext.runAsNonRoot=false".into()
        )]
    );
    let implicit = with(
        restricted_pod(),
        "/spec/securityContext",
        json!({"seccompProfile": {"type": "RuntimeDefault"}}),
    );
    assert_eq!(
        eval("restricted", "latest", &implicit)[0].2,
        r#"pod or containers "init", "app" must set securityContext.runAsNonRoot=true"#
    );
    let userns = with(p, "/spec/hostUsers", json!(false));
    assert_eq!(
        failed_ids("restricted", "v1.34", &userns),
        vec!["runAsNonRoot"]
    );
    assert!(eval("restricted", "v1.35", &userns).is_empty());
}

#[test]
fn run_as_user_starts_at_1_23_and_relaxes_for_user_namespaces_at_1_35() {
    let p = with(
        restricted_pod(),
        "/spec/containers/0/securityContext/runAsUser",
        json!(0),
    );
    assert!(eval("restricted", "v1.22", &p).is_empty());
    assert_eq!(
        eval("restricted", "v1.23", &p),
        vec![(
            "runAsUser",
            "runAsUser=0".into(),
            r#"container "app" must not set runAsUser=0"#.into()
        )]
    );
    let userns = with(p, "/spec/hostUsers", json!(false));
    assert_eq!(
        failed_ids("restricted", "v1.34", &userns),
        vec!["runAsUser"]
    );
    assert!(eval("restricted", "v1.35", &userns).is_empty());
    let ok = with(
        restricted_pod(),
        "/spec/containers/0/securityContext/runAsUser",
        json!(1000),
    );
    assert!(eval("restricted", "latest", &ok).is_empty());
}

#[test]
fn ephemeral_containers_are_checked() {
    let p = with(
        restricted_pod(),
        "/spec/ephemeralContainers",
        json!([{"name": "debug", "image": "busybox:1", "securityContext": {"privileged": true}}]),
    );
    assert_eq!(
        eval("baseline", "latest", &p)[0].2,
        r#"container "debug" must not set securityContext.privileged=true"#
    );
}

#[test]
fn results_follow_upstream_order_and_aggregate_wording() {
    let p = pod(json!({
        "hostPID": true,
        "containers": [{"name": "c", "image": "x", "securityContext": {"privileged": true}}]
    }));
    let profile = Profile::new(Level::Restricted, Version::Latest);
    let results = profile.evaluate(&template(&p));
    let ids: Vec<_> = results.iter().map(|r| r.check.id).collect();
    assert_eq!(
        ids,
        vec![
            "hostNamespaces",
            "privileged",
            "allowPrivilegeEscalation",
            "capabilities_restricted",
            "runAsNonRoot",
            "seccompProfile_restricted"
        ]
    );
    assert!(forbidden_detail(&results).starts_with(
        r#"host namespaces (hostPID=true), privileged (container "c" must not set securityContext.privileged=true), allowPrivilegeEscalation != false"#
    ));
}

#[test]
fn violations_point_at_the_offending_fields() {
    let p = with(
        restricted_pod(),
        "/spec/containers/0/securityContext/privileged",
        json!(true),
    );
    let results = Profile::new(Level::Baseline, Version::Latest).evaluate(&template(&p));
    assert_eq!(
        results[0].forbidden.paths[0].to_string(),
        "spec.containers[0].securityContext.privileged"
    );
}

/// The checks of each profile, in upstream's order, on both sides of every
/// version where the registry changes.
#[test]
fn profiles_hold_upstreams_checks_in_order_at_every_boundary() {
    let ids = |level: &str, version: &str| -> Vec<&'static str> {
        Profile::new(level.parse().unwrap(), version.parse().unwrap())
            .checks()
            .map(|c| c.id)
            .collect()
    };
    let baseline = |minor: u32| -> Vec<&'static str> {
        let mut v = vec![
            "appArmorProfile",
            "capabilities_baseline",
            "hostNamespaces",
            "hostPathVolumes",
            "hostPorts",
        ];
        if minor >= 34 {
            v.push("hostProbesAndHostLifecycle");
        }
        v.extend([
            "privileged",
            "procMount",
            "seLinuxOptions",
            "seccompProfile_baseline",
            "sysctls",
            "windowsHostProcess",
        ]);
        v
    };
    let restricted = |minor: u32| -> Vec<&'static str> {
        let overridden = [
            ("capabilities_baseline", 22),
            ("hostPathVolumes", 0),
            ("procMount", 35),
            ("seccompProfile_baseline", 19),
        ];
        let mut v: Vec<_> = baseline(minor)
            .into_iter()
            .filter(|id| {
                !overridden
                    .iter()
                    .any(|(o, since)| o == id && minor >= *since)
            })
            .collect();
        for (id, since) in [
            ("allowPrivilegeEscalation", 8),
            ("capabilities_restricted", 22),
            ("procMount_restricted", 35),
            ("restrictedVolumes", 0),
            ("runAsNonRoot", 0),
            ("runAsUser", 23),
            ("seccompProfile_restricted", 19),
        ] {
            if minor >= since {
                v.push(id);
            }
        }
        v
    };
    for minor in [0, 7, 8, 18, 19, 21, 22, 23, 24, 25, 33, 34, 35, 36, 37] {
        let version = format!("v1.{minor}");
        assert_eq!(
            ids("baseline", &version),
            baseline(minor),
            "baseline {version}"
        );
        assert_eq!(
            ids("restricted", &version),
            restricted(minor),
            "restricted {version}"
        );
    }
    for version in ["v1.38", "v1.1000", "latest"] {
        assert_eq!(ids("baseline", version), baseline(37), "{version}");
        assert_eq!(ids("restricted", version), restricted(37), "{version}");
    }
    assert!(ids("privileged", "latest").is_empty());
}

/// Annotation values are shown with Go's `%q`, which escapes every rune
/// `strconv.IsPrint` rejects (non-ASCII spaces, format characters, C1
/// controls, private use, unassigned), not only ASCII control characters.
#[test]
fn annotation_values_are_quoted_like_go() {
    let p = with(
        restricted_pod(),
        "/metadata/annotations",
        json!({
            "container.apparmor.security.beta.kubernetes.io/app": "un\u{a0}confined\u{200b}",
            "container.apparmor.security.beta.kubernetes.io/init": "bad\t\"x\"",
        }),
    );
    assert_eq!(
        eval("baseline", "latest", &p),
        vec![(
            "appArmorProfile",
            "forbidden AppArmor profiles".into(),
            r#"annotations must not set AppArmor profile type to "container.apparmor.security.beta.kubernetes.io/app="un\u00a0confined\u200b"", "container.apparmor.security.beta.kubernetes.io/init="bad\t\"x\""""#.into()
        )]
    );
    let p = with(
        restricted_pod(),
        "/metadata/annotations",
        json!({
            "seccomp.security.alpha.kubernetes.io/pod": "\u{feff}unconfined\u{85}",
            "container.seccomp.security.alpha.kubernetes.io/app": "\u{f0000}",
        }),
    );
    assert_eq!(
        eval("baseline", "v1.18", &p),
        vec![(
            "seccompProfile_baseline",
            "seccompProfile".into(),
            r#"forbidden annotations container.seccomp.security.alpha.kubernetes.io/app="\U000f0000", seccomp.security.alpha.kubernetes.io/pod="\ufeffunconfined\u0085""#.into()
        )]
    );
    // Printable non-ASCII stays as it is.
    let p = with(
        restricted_pod(),
        "/metadata/annotations",
        json!({"container.apparmor.security.beta.kubernetes.io/app": "déjà-vu 😀"}),
    );
    assert_eq!(
        eval("baseline", "latest", &p)[0].2,
        r#"annotation must not set AppArmor profile type to "container.apparmor.security.beta.kubernetes.io/app="déjà-vu 😀"""#
    );
    // Allowed annotation values pass, whatever else is in them.
    let ok = with(
        restricted_pod(),
        "/metadata/annotations",
        json!({
            "container.apparmor.security.beta.kubernetes.io/app": "localhost/\u{a0}",
            "seccomp.security.alpha.kubernetes.io/pod": "localhost/\u{200b}",
        }),
    );
    assert!(eval("baseline", "v1.18", &ok).is_empty());
}

#[test]
fn capabilities_restricted_requires_drop_all_only_from_1_22() {
    let p = with(
        restricted_pod(),
        "/spec/containers/0/securityContext/capabilities",
        json!({"add": ["NET_BIND_SERVICE"]}),
    );
    assert!(eval("restricted", "v1.21", &p).is_empty());
    assert_eq!(
        eval("restricted", "v1.22", &p),
        vec![(
            "capabilities_restricted",
            "unrestricted capabilities".into(),
            r#"container "app" must set securityContext.capabilities.drop=["ALL"]"#.into()
        )]
    );
    assert!(eval("baseline", "latest", &p).is_empty());
}

#[test]
fn proc_mount_outside_a_user_namespace_still_fails_baseline_from_1_35() {
    for host_users in [json!(true), Value::Null] {
        let p = with(
            restricted_pod(),
            "/spec/initContainers/0/securityContext/procMount",
            json!("Unmasked"),
        );
        let p = with(p, "/spec/hostUsers", host_users);
        for version in ["v1.34", "v1.35", "latest"] {
            assert_eq!(
                eval("baseline", version, &p),
                vec![(
                    "procMount",
                    "procMount".into(),
                    r#"container "init" must not set securityContext.procMount to "Unmasked""#
                        .into()
                )],
                "{version}"
            );
        }
    }
}

#[test]
fn versions_after_1_37_evaluate_as_1_37() {
    let p = with(
        restricted_pod(),
        "/spec/securityContext/sysctls",
        json!([{"name": "net.ipv4.tcp_slow_start_after_idle", "value": "0"}]),
    );
    assert_eq!(failed_ids("baseline", "v1.36", &p), vec!["sysctls"]);
    for version in ["v1.37", "v1.38", "v1.4294967296", "latest"] {
        assert!(eval("restricted", version, &p).is_empty(), "{version}");
    }
    let bad = with(
        restricted_pod(),
        "/spec/securityContext/sysctls",
        json!([{"name": "net.core.somaxconn", "value": "1"}]),
    );
    for version in ["v1.37", "v1.38", "latest"] {
        assert_eq!(
            failed_ids("baseline", version, &bad),
            vec!["sysctls"],
            "{version}"
        );
    }
}

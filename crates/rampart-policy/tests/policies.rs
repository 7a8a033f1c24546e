//! Rampart's own ClusterPolicy and Policy resources: matching, validations,
//! mutations, built-in checks, params and every kind of bad input.

mod common;

use common::*;
use rampart_core::Severity;
use rampart_core::request::Operation;
use rampart_policy::{Outcome, PolicySet, Request, ValidationAction};
use serde_json::json;

const REQUIRE_LABELS: &str = r#"
apiVersion: rampart.dev/v1alpha1
kind: ClusterPolicy
metadata: {name: require-labels}
spec:
  description: Workloads say which team owns them
  severity: high
  matchConstraints:
    kinds: [apps/Deployment, Pod]
  exclude:
    namespaces: [kube-system]
  variables:
  - name: labels
    expression: "has(object.metadata.labels) ? object.metadata.labels : {}"
  validations:
  - name: team
    expression: "'team' in variables.labels"
    messageExpression: "'missing label team on ' + object.kind + ' ' + object.metadata.name"
  - name: no-latest
    expression: "object.kind != 'Pod' || object.spec.containers.all(c, !c.image.endsWith(':latest'))"
    message: images must be pinned
"#;

fn pod(name: &str, ns: &str, labels: &str, image: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: {ns}, labels: {labels}}}\n\
         spec:\n  containers:\n  - {{name: app, image: '{image}'}}\n"
    )
}

#[test]
fn cluster_policy_validations_with_names_messages_and_severity() {
    let set = compile(REQUIRE_LABELS);
    let ev = create(&set, &pod("web", "shop", "{}", "nginx:latest"));
    assert_eq!(
        outcomes(&ev),
        [
            ("require-labels/team".to_owned(), Outcome::Fail),
            ("require-labels/no-latest".to_owned(), Outcome::Fail)
        ]
    );
    assert_eq!(ev.decisions[0].message, "missing label team on Pod web");
    assert_eq!(ev.decisions[1].message, "images must be pinned");
    assert_eq!(ev.decisions[0].severity, Severity::High);
    assert_eq!(
        ev.denial_message().unwrap(),
        "ClusterPolicy 'require-labels' denied request: missing label team on Pod web"
    );
    let ok = create(&set, &pod("web", "shop", "{team: a}", "nginx:1.27"));
    assert!(ok.allowed());
    assert_eq!(ok.decisions.len(), 2);
    // Excluded namespace, and kinds the policy does not name.
    assert!(
        create(&set, &pod("web", "kube-system", "{}", "nginx:latest"))
            .decisions
            .is_empty()
    );
    let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n";
    assert!(create(&set, cm).decisions.is_empty());
    // kinds default to CREATE and UPDATE.
    let req = Request::for_object(
        Operation::Delete,
        None,
        Some(one(&pod("web", "shop", "{}", "x"))),
    )
    .unwrap();
    assert!(set.evaluate(&req).decisions.is_empty());
    // Rules for reports, with the finding IDs.
    let ids: Vec<_> = set.rules().iter().map(|r| r.id.to_string()).collect();
    assert_eq!(ids, ["require-labels/team", "require-labels/no-latest"]);
}

#[test]
fn namespaced_policy_applies_only_in_its_namespace() {
    let yaml = r#"
apiVersion: rampart.dev/v1alpha1
kind: Policy
metadata: {name: no-host-network, namespace: shop}
spec:
  validationActions: [Warn]
  matchConstraints: {kinds: [Pod]}
  validations:
  - expression: "!has(object.spec.hostNetwork) || !object.spec.hostNetwork"
"#;
    let set = compile(yaml);
    let host = |ns: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: p, namespace: {ns}}}\nspec: {{hostNetwork: true, containers: []}}\n"
        )
    };
    let ev = create(&set, &host("shop"));
    assert!(ev.allowed(), "Warn does not deny");
    assert_eq!(ev.warnings.len(), 1);
    assert!(
        ev.warnings[0].starts_with("Validation failed for Policy 'shop/no-host-network': "),
        "{:?}",
        ev.warnings
    );
    assert!(create(&set, &host("other")).decisions.is_empty());
}

#[test]
fn subjects_and_object_selectors() {
    let yaml = r#"
apiVersion: rampart.dev/v1alpha1
kind: ClusterPolicy
metadata: {name: ci-only-deploys}
spec:
  matchConstraints:
    kinds: [apps/Deployment]
    objectSelector: {matchLabels: {protected: "true"}}
  exclude:
    subjects: [{kind: ServiceAccount, name: deployer, namespace: ci}]
  validations:
  - expression: "false"
    message: protected deployments are changed by CI only
"#;
    let set = compile(yaml);
    let dep = |labels: &str| {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: d, namespace: x, labels: {labels}}}\n"
        )
    };
    assert!(!create_as(&set, &dep("{protected: 'true'}"), "alice", &[]).allowed());
    assert!(
        create_as(
            &set,
            &dep("{protected: 'true'}"),
            "system:serviceaccount:ci:deployer",
            &[]
        )
        .allowed()
    );
    assert!(create_as(&set, &dep("{}"), "alice", &[]).allowed());
}

#[test]
fn params_from_a_config_map() {
    let yaml = r#"
apiVersion: rampart.dev/v1alpha1
kind: ClusterPolicy
metadata: {name: max-replicas}
spec:
  matchConstraints: {kinds: [apps/Deployment]}
  paramKind: {apiVersion: v1, kind: ConfigMap}
  paramRef: {name: replica-limits, namespace: rampart, parameterNotFoundAction: Deny}
  validations:
  - expression: "object.spec.replicas <= int(params.data.maxReplicas)"
    messageExpression: "'at most ' + params.data.maxReplicas + ' replicas'"
---
apiVersion: v1
kind: ConfigMap
metadata: {name: replica-limits, namespace: rampart}
data: {maxReplicas: "4"}
"#;
    let set = compile(yaml);
    let dep = |n: u32| {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: d}}\nspec: {{replicas: {n}}}\n"
        )
    };
    let ev = create(&set, &dep(5));
    assert_eq!(
        ev.denial_message().unwrap(),
        "ClusterPolicy 'max-replicas' denied request: at most 4 replicas"
    );
    assert!(create(&set, &dep(4)).allowed());
}

#[test]
fn mutations_patch_then_validations_see_the_result() {
    let yaml = r#"
apiVersion: rampart.dev/v1alpha1
kind: ClusterPolicy
metadata: {name: defaults}
spec:
  matchConstraints: {kinds: [Pod]}
  mutations:
  - name: owner-label
    patchType: JSONPatch
    expression: >-
      has(object.metadata.labels) ? [{'op': 'add', 'path': '/metadata/labels/owner', 'value': 'platform'}]
      : [{'op': 'add', 'path': '/metadata/labels', 'value': {'owner': 'platform'}}]
  - name: no-token
    patchType: Merge
    patch: {spec: {automountServiceAccountToken: false}}
  validations:
  - name: owner
    expression: "object.metadata.labels.owner == 'platform'"
  - name: token
    expression: "object.spec.automountServiceAccountToken == false"
"#;
    let set = compile(yaml);
    let original = one(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: x}\nspec:\n  containers: [{name: a, image: a}]\n  futureField: {kept: true}\n",
    );
    let ev = set.evaluate(&Request::create(original.clone()).unwrap());
    assert!(ev.allowed(), "{:?}", ev.decisions);
    let patched = ev.patched_object.clone().expect("mutated");
    assert_eq!(patched["metadata"]["labels"]["owner"], "platform");
    assert_eq!(patched["spec"]["automountServiceAccountToken"], false);
    assert_eq!(
        patched["spec"]["futureField"],
        json!({"kept": true}),
        "unknown fields are kept"
    );
    assert_eq!(ev.patches.len(), 2);
    assert_eq!(&*ev.patches[0].mutation, "owner-label");
    // The combined JSON Patch turns the original into the patched object.
    let mut replay = original;
    json_patch::patch(&mut replay, &ev.json_patch()).unwrap();
    assert_eq!(replay, patched);
    let checks: Vec<_> = ev
        .decisions
        .iter()
        .map(|d| (d.rule.as_deref().unwrap().to_owned(), d.outcome))
        .collect();
    assert_eq!(
        checks,
        [
            ("owner-label".to_owned(), Outcome::Pass),
            ("no-token".to_owned(), Outcome::Pass),
            ("owner".to_owned(), Outcome::Pass),
            ("token".to_owned(), Outcome::Pass)
        ]
    );
}

#[test]
fn mutations_alone_patch_without_validating() {
    let set = compile(
        r#"
apiVersion: rampart.dev/v1alpha1
kind: ClusterPolicy
metadata: {name: defaults}
spec:
  matchConstraints: {kinds: [Pod]}
  mutations:
  - name: no-token
    patchType: Merge
    patch: {spec: {automountServiceAccountToken: false}}
  validations:
  - name: never
    expression: "false"
"#,
    );
    let pod = one(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: x}\nspec: {containers: [{name: a, image: a}]}\n",
    );
    let request = Request::create(pod).unwrap();
    let ev = set.evaluate_mutations(&request);
    assert_eq!(
        ev.patched_object.expect("mutated")["spec"]["automountServiceAccountToken"],
        false
    );
    assert_eq!(ev.patches.len(), 1);
    assert!(
        ev.decisions
            .iter()
            .all(|d| d.rule.as_deref() == Some("no-token")),
        "{:?}",
        ev.decisions
    );
    // The full evaluation does validate.
    assert!(!set.evaluate(&request).allowed());
    // Nothing matches a ConfigMap.
    let cm = Request::create(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "x"}})).unwrap();
    let ev = set.evaluate_mutations(&cm);
    assert!(ev.patches.is_empty() && ev.patched_object.is_none());
}

#[test]
fn a_failing_mutation_is_an_error_under_the_failure_policy() {
    let yaml = r#"
apiVersion: rampart.dev/v1alpha1
kind: ClusterPolicy
metadata: {name: broken-mutation}
spec:
  failurePolicy: Ignore
  matchConstraints: {kinds: [Pod]}
  mutations:
  - patchType: JSONPatch
    expression: "[{'op': 'replace', 'path': '/spec/nothing/here', 'value': 1}]"
"#;
    let set = compile(yaml);
    let ev = create(
        &set,
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {}\n",
    );
    assert!(ev.allowed());
    assert!(ev.patched_object.is_none());
    assert_eq!(ev.decisions[0].outcome, Outcome::Error);
    assert!(
        ev.decisions[0]
            .message
            .contains("spec.mutations[0]: cannot apply the patch"),
        "{}",
        ev.decisions[0].message
    );
    let fail = compile(&yaml.replace("Ignore", "Fail"));
    assert!(
        !create(
            &fail,
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {}\n"
        )
        .allowed()
    );
}

#[test]
fn builtin_checks_as_a_policy() {
    let yaml = r#"
apiVersion: rampart.dev/v1alpha1
kind: ClusterPolicy
metadata: {name: baseline}
spec:
  validationActions: [Audit]
  builtin:
    podSecurity: {level: baseline, version: v1.30}
    checks: [image-tag-latest]
    skip: [pss-hostPorts]
"#;
    let set = compile(yaml);
    let privileged = "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: x}\nspec:\n  containers:\n  - name: a\n    image: nginx:latest\n    ports: [{containerPort: 80, hostPort: 80}]\n    securityContext: {privileged: true}\n";
    let ev = create(&set, privileged);
    assert!(ev.allowed(), "Audit only");
    let failed: Vec<_> = failures(&ev).iter().map(|d| d.check_id()).collect();
    assert_eq!(
        failed,
        ["baseline/pss-privileged", "baseline/image-tag-latest"]
    );
    let d = failures(&ev)[0];
    assert_eq!(
        d.path.as_ref().unwrap().to_string(),
        "spec.containers[0].securityContext.privileged"
    );
    assert_eq!(
        d.severity,
        Severity::Critical,
        "built-in checks keep their severity"
    );
    assert!(
        !ev.decisions
            .iter()
            .any(|d| d.check_id() == "baseline/pss-hostPorts"),
        "skipped"
    );
    assert!(
        ev.decisions
            .iter()
            .any(|d| d.check_id() == "baseline/pss-hostNamespaces" && d.outcome == Outcome::Pass)
    );
}

#[test]
fn the_default_builtin_policy_is_the_scanners_default_set() {
    let policy = serde_json::to_value(rampart_policy::default_builtin_policy()).unwrap();
    let set = PolicySet::compile([policy]).unwrap();
    let ids: Vec<String> = set.rules().iter().map(|r| r.id.to_string()).collect();
    // Every PSS restricted check and every best practice except the registry
    // allow-list (which needs registries), as `rampart scan` runs by default.
    let profile = rampart_checks::pss::Profile::new(
        rampart_checks::pss::Level::Restricted,
        rampart_checks::pss::Version::Latest,
    );
    let mut expected: Vec<String> = profile
        .checks()
        .map(|c| format!("rampart-defaults/{}", c.rampart_id()))
        .collect();
    expected.extend(
        rampart_checks::practices::meta::ALL
            .iter()
            .filter(|m| m.id != "image-registry-not-allowed")
            .map(|m| format!("rampart-defaults/{}", m.id)),
    );
    let mut got = ids.clone();
    got.sort();
    expected.sort();
    assert_eq!(got, expected);
}

#[test]
fn corpus_checks_run_over_a_whole_scan() {
    let yaml = r#"
apiVersion: rampart.dev/v1alpha1
kind: ClusterPolicy
metadata: {name: hygiene}
spec:
  builtin: {checks: [namespace-missing-resource-quota]}
"#;
    let set = compile(yaml);
    let objects = docs(
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: paid}\n---\napiVersion: v1\nkind: ResourceQuota\nmetadata: {name: q, namespace: paid}\nspec: {}\n",
    );
    let results: Vec<_> = set
        .evaluate_corpus(&objects)
        .into_iter()
        .filter(|(_, d)| d.rule.as_deref() == Some("namespace-missing-resource-quota"))
        .map(|(i, d)| (i, d.outcome))
        .collect();
    assert_eq!(
        results,
        [(0, Outcome::Fail), (1, Outcome::Pass), (2, Outcome::Pass)]
    );
}

#[test]
fn every_compile_error_is_reported_with_policy_field_and_position() {
    let yaml = r#"
apiVersion: rampart.dev/v1alpha1
kind: ClusterPolicy
metadata: {name: broken}
spec:
  matchConstraints: {kinds: [Pod]}
  matchConditions:
  - {name: "bad name!", expression: "true"}
  validations:
  - expression: "object.spec.containers.all(c, c.image != '')"
  - expression: "object.spec.replicas >"
  - expression: "object.metadata.name.toUpper() == 'X'"
    messageExpression: "'x' + "
---
apiVersion: rampart.dev/v1alpha1
kind: ClusterPolicy
metadata: {name: empty}
spec:
  matchConstraints: {kinds: [Pod]}
---
apiVersion: rampart.dev/v1alpha1
kind: ClusterPolicy
metadata: {name: actions}
spec:
  validationActions: [Deny, Block]
  matchConstraints: {kinds: [Pod]}
  validations: [{expression: "true"}]
---
apiVersion: rampart.dev/v1alpha1
kind: ClusterPolicy
metadata: {name: typo}
spec:
  matchConstraints: {kinds: [Pod]}
  validation: [{expression: "true"}]
  validations: [{expression: "true", mesage: "x"}]
---
apiVersion: rampart.dev/v1
kind: ClusterPolicy
metadata: {name: old}
spec: {}
---
apiVersion: rampart.dev/v1alpha1
kind: ClusterPolicy
metadata: {name: no-match}
spec:
  validations: [{expression: "true"}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: stray}
"#;
    let errors: Vec<String> = compile_err(yaml).iter().map(ToString::to_string).collect();
    let expected = [
        "ClusterPolicy \"actions\": spec.validationActions[1]: unknown variant `Block`, expected one of `Deny`, `Warn`, `Audit`",
        "ClusterPolicy \"typo\": spec.validation: unknown field",
        "ClusterPolicy \"typo\": spec.validations[0].mesage: unknown field",
        "ClusterPolicy \"old\": apiVersion: unsupported apiVersion \"rampart.dev/v1\": expected rampart.dev/v1alpha1",
        "ConfigMap \"stray\" is neither a policy, a binding, a Namespace nor a parameter of any policy's paramKind",
        "ClusterPolicy \"broken\": spec.matchConditions[0].name: invalid match condition name \"bad name!\": it must be a qualified name",
        "ClusterPolicy \"broken\": spec.validations[1].expression: line 1, column 23: ",
        "ClusterPolicy \"broken\": spec.validations[2].expression: line 1, column 22: undeclared function or method 'toUpper'",
        "ClusterPolicy \"broken\": spec.validations[2].messageExpression: line 1, column 7: ",
        "ClusterPolicy \"empty\": spec.validations: the policy does nothing",
        "ClusterPolicy \"no-match\": spec.matchConstraints: matchConstraints is required",
    ];
    assert_eq!(errors.len(), expected.len(), "{errors:#?}");
    for want in expected {
        assert!(
            errors.iter().any(|e| e.contains(want)),
            "missing {want:?} in {errors:#?}"
        );
    }
    // Kinds the loader does not already reject (documents given as values).
    let errors = PolicySet::compile([
        json!({"apiVersion": "rampart.dev/v1alpha1", "kind": "ClusterPolicies", "metadata": {"name": "p"}}),
        json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingAdmissionPolicy", "metadata": {"name": "m"}}),
        json!([1, 2]),
    ])
    .unwrap_err();
    let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        text,
        [
            "unknown kind \"ClusterPolicies\" in rampart.dev: expected ClusterPolicy or Policy",
            "MutatingAdmissionPolicy is not supported: Rampart evaluates ValidatingAdmissionPolicy and ValidatingAdmissionPolicyBinding",
            "not an object",
        ]
    );
}

#[test]
fn malformed_yaml_and_missing_names_are_input_errors() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "apiVersion: rampart.dev/v1alpha1\nkind: ClusterPolicy\nmetadata: {name: x\n",
    )
    .unwrap();
    let errors = rampart_policy::load_policy_paths(&[&bad], &Default::default()).unwrap_err();
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0]
            .to_string()
            .starts_with(&format!("{}:", bad.display())),
        "{}",
        errors[0]
    );
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let errors = rampart_policy::load_policy_paths(&[&empty], &Default::default()).unwrap_err();
    assert!(
        errors[0].message.contains("no policy documents found"),
        "{}",
        errors[0]
    );

    let errors = compile_err(
        "apiVersion: rampart.dev/v1alpha1\nkind: ClusterPolicy\nmetadata: {}\nspec: {}\n",
    );
    assert_eq!(
        errors[0].to_string(),
        "ClusterPolicy: metadata.name: metadata.name is required"
    );
    let errors = compile_err(
        "apiVersion: rampart.dev/v1alpha1\nkind: ClusterPolicy\nmetadata: {name: a}\nspec: {validations: [{expression: 'true'}], matchConstraints: {kinds: [Pod]}}\n---\napiVersion: rampart.dev/v1alpha1\nkind: ClusterPolicy\nmetadata: {name: a}\nspec: {}\n",
    );
    assert!(
        errors[0].to_string().contains("duplicate policy"),
        "{}",
        errors[0]
    );
    let errors = compile_err(
        "apiVersion: rampart.dev/v1alpha1\nkind: ClusterPolicy\nmetadata: {name: a}\nspec: {validations: [{message: x}], matchConstraints: {kinds: [Pod]}}\n",
    );
    assert_eq!(
        errors[0].to_string(),
        "ClusterPolicy \"a\": spec.validations[0]: missing field `expression`"
    );
}

#[test]
fn oversized_and_deep_objects_hit_the_input_limits_under_the_failure_policy() {
    let yaml = r#"
apiVersion: rampart.dev/v1alpha1
kind: ClusterPolicy
metadata: {name: limits}
spec:
  matchConstraints: {kinds: [ConfigMap]}
  validations: [{expression: "true"}]
"#;
    let options = rampart_policy::CompileOptions {
        input: rampart_cel::InputLimits {
            max_bytes: 4096,
            max_depth: 16,
        },
        ..Default::default()
    };
    let set = PolicySet::compile_with(docs(yaml), &options).unwrap();
    let big = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "big"}, "data": {"x": "y".repeat(10_000)}});
    let ev = set.evaluate(&Request::create(big).unwrap());
    assert!(
        !ev.allowed(),
        "an object too large to evaluate is not silently passed"
    );
    assert!(
        ev.decisions[0]
            .message
            .contains("object: input of more than 4096 bytes"),
        "{}",
        ev.decisions[0].message
    );
    let mut deep = json!("leaf");
    for _ in 0..40 {
        deep = json!({"n": deep});
    }
    let deep = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "deep"}, "data": deep});
    let ev = set.evaluate(&Request::create(deep).unwrap());
    assert_eq!(ev.decisions[0].outcome, Outcome::Error);
    assert!(
        ev.decisions[0]
            .message
            .contains("nested deeper than 16 levels"),
        "{}",
        ev.decisions[0].message
    );
}

#[test]
fn a_cost_runaway_is_an_error_not_a_pass() {
    let yaml = r#"
apiVersion: rampart.dev/v1alpha1
kind: ClusterPolicy
metadata: {name: expensive}
spec:
  matchConstraints: {kinds: [ConfigMap]}
  validations:
  - expression: "lists.range(3000).all(i, lists.range(3000).all(j, i + j >= 0))"
"#;
    let options = rampart_policy::CompileOptions {
        cel: rampart_cel::Limits {
            cost_budget: Some(10_000),
            ..Default::default()
        },
        ..Default::default()
    };
    let set = PolicySet::compile_with(docs(yaml), &options).unwrap();
    let ev = create(
        &set,
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n",
    );
    assert_eq!(ev.decisions[0].outcome, Outcome::Error);
    assert!(
        ev.decisions[0].message.contains("cost budget of 10000"),
        "{}",
        ev.decisions[0].message
    );
    assert!(ev.decisions[0].actions.contains(ValidationAction::Deny));
}

#[test]
fn requests_no_policy_can_match_return_nothing() {
    let set = compile(REQUIRE_LABELS);
    for object in [
        "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n",
        "apiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\n",
        "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n",
    ] {
        let ev = create(&set, object);
        assert!(ev.decisions.is_empty() && ev.allowed());
    }
}

#[test]
fn ignore_annotations_silence_a_rule() {
    let set = compile(REQUIRE_LABELS);
    let p = pod("web", "shop", "{}", "nginx:1").replace(
        "labels: {}",
        "labels: {}, annotations: {rampart.dev/ignore-require-labels.team: 'legacy app, OPS-1'}",
    );
    let ev = create(&set, &p);
    assert_eq!(
        ev.decisions[0].suppressed.as_deref(),
        Some("legacy app, OPS-1")
    );
}

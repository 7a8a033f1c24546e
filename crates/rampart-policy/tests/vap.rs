//! ValidatingAdmissionPolicy examples from the Kubernetes documentation
//! (reference/access-authn-authz/validating-admission-policy), evaluated as
//! the API server evaluates them.

mod common;

use common::*;
use rampart_policy::{Outcome, ValidationAction};

const BASIC_POLICY: &str = r#"
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: "demo-policy.example.com"
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
    - apiGroups:   ["apps"]
      apiVersions: ["v1"]
      operations:  ["CREATE", "UPDATE"]
      resources:   ["deployments"]
  validations:
    - expression: "object.spec.replicas <= 5"
"#;

const BASIC_BINDING: &str = r#"
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: "demo-binding-test.example.com"
spec:
  policyName: "demo-policy.example.com"
  validationActions: [Deny]
  matchResources:
    namespaceSelector:
      matchLabels:
        environment: test
"#;

const TEST_NS: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: default, labels: {environment: test}}
"#;

fn deployment(name: &str, ns: &str, replicas: u32) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}, namespace: {ns}}}\n\
         spec:\n  replicas: {replicas}\n  template:\n    spec:\n      containers:\n      - {{name: app, image: nginx}}\n"
    )
}

#[test]
fn basic_example_denies_with_the_documented_message() {
    let set = compile(&format!("{BASIC_POLICY}---{BASIC_BINDING}---{TEST_NS}"));
    let ev = create(&set, &deployment("web", "default", 6));
    assert!(!ev.allowed());
    let d = ev.denials().next().unwrap();
    assert_eq!(d.message, "failed expression: object.spec.replicas <= 5");
    assert_eq!(
        ev.denial_message().unwrap(),
        "ValidatingAdmissionPolicy 'demo-policy.example.com' with binding 'demo-binding-test.example.com' denied request: failed expression: object.spec.replicas <= 5"
    );
    assert_eq!(d.field.as_deref(), Some("spec.validations[0].expression"));
    assert_eq!(d.reason.as_str(), "Invalid");

    let ok = create(&set, &deployment("web", "default", 5));
    assert!(ok.allowed());
    assert_eq!(
        outcomes(&ok),
        [("demo-policy.example.com/0".to_owned(), Outcome::Pass)]
    );
}

#[test]
fn namespace_selector_of_the_binding_scopes_the_policy() {
    let prod =
        "\napiVersion: v1\nkind: Namespace\nmetadata: {name: prod, labels: {environment: prod}}\n";
    let set = compile(&format!(
        "{BASIC_POLICY}---{BASIC_BINDING}---{TEST_NS}---{prod}"
    ));
    // Not in a test namespace: the binding does not match, nothing is evaluated.
    let ev = create(&set, &deployment("web", "prod", 6));
    assert!(ev.allowed() && ev.decisions.is_empty());
    // A namespace the policies know nothing about has only its name label.
    let ev = create(&set, &deployment("web", "elsewhere", 6));
    assert!(ev.decisions.is_empty());
    // Other resources are not matched either.
    let pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: default}\nspec: {containers: []}\n";
    assert!(create(&set, pod).decisions.is_empty());
}

#[test]
fn policy_without_binding_has_no_effect_and_is_warned_about() {
    let set = compile(BASIC_POLICY);
    assert_eq!(set.warnings().len(), 1, "{:?}", set.warnings());
    assert!(set.warnings()[0].contains("has no ValidatingAdmissionPolicyBinding"));
    assert!(
        create(&set, &deployment("web", "default", 9))
            .decisions
            .is_empty()
    );
}

const PARAM_POLICY: &str = r#"
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: "replicalimit-policy.example.com"
spec:
  failurePolicy: Fail
  paramKind:
    apiVersion: rules.example.com/v1
    kind: ReplicaLimit
  matchConstraints:
    resourceRules:
    - apiGroups:   ["apps"]
      apiVersions: ["v1"]
      operations:  ["CREATE", "UPDATE"]
      resources:   ["deployments"]
  validations:
    - expression: "object.spec.replicas <= params.maxReplicas"
      reason: Invalid
"#;

const PARAM_BINDINGS: &str = r#"
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: "replicalimit-binding-test.example.com"
spec:
  policyName: "replicalimit-policy.example.com"
  validationActions: [Deny]
  paramRef:
    name: "replica-limit-test.example.com"
    namespace: "default"
    parameterNotFoundAction: Deny
  matchResources:
    namespaceSelector:
      matchLabels:
        environment: test
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: "replicalimit-binding-nontest"
spec:
  policyName: "replicalimit-policy.example.com"
  validationActions: [Deny]
  paramRef:
    name: "replica-limit-prod.example.com"
    namespace: "default"
  matchResources:
    namespaceSelector:
      matchExpressions:
      - key: environment
        operator: NotIn
        values:
        - test
---
apiVersion: rules.example.com/v1
kind: ReplicaLimit
metadata:
  name: "replica-limit-test.example.com"
  namespace: "default"
maxReplicas: 3
---
apiVersion: rules.example.com/v1
kind: ReplicaLimit
metadata:
  name: "replica-limit-prod.example.com"
  namespace: "default"
maxReplicas: 100
"#;

#[test]
fn param_example_uses_the_param_of_the_matching_binding() {
    let set = compile(&format!("{PARAM_POLICY}---{PARAM_BINDINGS}---{TEST_NS}"));
    assert_eq!(set.unit_count(), 2);
    // Test environment: at most 3.
    let ev = create(&set, &deployment("web", "default", 4));
    assert!(!ev.allowed());
    let d = ev.denials().next().unwrap();
    assert_eq!(
        d.policy.binding.as_deref(),
        Some("replicalimit-binding-test.example.com")
    );
    assert_eq!(
        d.param.as_deref(),
        Some("default/replica-limit-test.example.com")
    );
    assert_eq!(
        d.message,
        "failed expression: object.spec.replicas <= params.maxReplicas"
    );
    assert!(create(&set, &deployment("web", "default", 3)).allowed());
    // Other environments: at most 100.
    let ev = create(&set, &deployment("web", "prod", 50));
    assert!(ev.allowed());
    assert_eq!(ev.decisions.len(), 1);
    assert_eq!(
        ev.decisions[0].policy.binding.as_deref(),
        Some("replicalimit-binding-nontest")
    );
    assert!(!create(&set, &deployment("web", "prod", 101)).allowed());
}

#[test]
fn missing_params_follow_parameter_not_found_action() {
    // Only the prod binding's param is there; the test binding says Deny.
    let without_test_param = PARAM_BINDINGS.replace(
        "name: \"replica-limit-test.example.com\"\n  namespace: \"default\"\nmaxReplicas: 3",
        "name: \"unrelated\"\n  namespace: \"default\"\nmaxReplicas: 3",
    );
    let set = compile(&format!(
        "{PARAM_POLICY}---{without_test_param}---{TEST_NS}"
    ));
    let ev = create(&set, &deployment("web", "default", 1));
    assert!(!ev.allowed());
    let d = ev.denials().next().unwrap();
    assert_eq!(d.outcome, Outcome::Error);
    assert!(
        d.message
            .contains("no params found for policy binding with `Deny` parameterNotFoundAction"),
        "{}",
        d.message
    );

    let allow = without_test_param.replace(
        "parameterNotFoundAction: Deny",
        "parameterNotFoundAction: Allow",
    );
    let set = compile(&format!("{PARAM_POLICY}---{allow}---{TEST_NS}"));
    let ev = create(&set, &deployment("web", "default", 1));
    assert!(ev.allowed());
    assert_eq!(ev.decisions[0].outcome, Outcome::Skip);
}

#[test]
fn params_by_selector_and_per_namespace() {
    let yaml = format!(
        "{PARAM_POLICY}---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {{name: per-namespace}}
spec:
  policyName: replicalimit-policy.example.com
  validationActions: [Deny]
  paramRef:
    selector: {{matchLabels: {{tier: limits}}}}
    parameterNotFoundAction: Allow
---
apiVersion: rules.example.com/v1
kind: ReplicaLimit
metadata: {{name: a, namespace: team-a, labels: {{tier: limits}}}}
maxReplicas: 3
---
apiVersion: rules.example.com/v1
kind: ReplicaLimit
metadata: {{name: b, namespace: team-a, labels: {{tier: limits}}}}
maxReplicas: 10
---
apiVersion: rules.example.com/v1
kind: ReplicaLimit
metadata: {{name: c, namespace: team-b, labels: {{tier: other}}}}
maxReplicas: 1
"
    );
    let set = compile(&yaml);
    // Both params of team-a apply; the stricter one fails.
    let ev = create(&set, &deployment("web", "team-a", 5));
    let params: Vec<_> = ev
        .decisions
        .iter()
        .map(|d| (d.param.clone().unwrap(), d.outcome))
        .collect();
    assert_eq!(
        params,
        [
            ("team-a/a".to_owned(), Outcome::Fail),
            ("team-a/b".to_owned(), Outcome::Pass)
        ]
    );
    // team-b's param does not match the selector: Allow.
    let ev = create(&set, &deployment("web", "team-b", 5));
    assert!(ev.allowed());
    assert_eq!(ev.decisions[0].outcome, Outcome::Skip);
}

#[test]
fn message_expression_example() {
    let yaml = r#"
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: "deploy-replica-policy.example.com"
spec:
  paramKind:
    apiVersion: rules.example.com/v1
    kind: ReplicaLimit
  matchConstraints:
    resourceRules:
    - apiGroups:   ["apps"]
      apiVersions: ["v1"]
      operations:  ["CREATE", "UPDATE"]
      resources:   ["deployments"]
  validations:
  - expression: "object.spec.replicas <= params.maxReplicas"
    messageExpression: "'object.spec.replicas must be no greater than ' + string(params.maxReplicas)"
    reason: Invalid
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: "demo-binding-test.example.com"
spec:
  policyName: "deploy-replica-policy.example.com"
  validationActions: [Deny]
  paramRef: {name: limit, namespace: default}
---
apiVersion: rules.example.com/v1
kind: ReplicaLimit
metadata: {name: limit, namespace: default}
maxReplicas: 3
"#;
    let set = compile(yaml);
    let ev = create(&set, &deployment("nginx", "default", 5));
    assert_eq!(
        ev.denial_message().unwrap(),
        "ValidatingAdmissionPolicy 'deploy-replica-policy.example.com' with binding 'demo-binding-test.example.com' denied request: object.spec.replicas must be no greater than 3"
    );
}

#[test]
fn message_expression_falls_back_to_the_static_message() {
    let yaml = r#"
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: p}
spec:
  matchConstraints:
    resourceRules: [{apiGroups: ["apps"], apiVersions: ["v1"], operations: ["CREATE"], resources: ["deployments"]}]
  validations:
  - expression: "object.spec.replicas <= 5"
    message: "too many replicas"
    messageExpression: "'replicas: ' + object.spec.missing"
  - expression: "object.spec.replicas <= 5"
    messageExpression: "'line one\\nline two'"
  - expression: "object.spec.replicas <= 5"
    message: "static"
    messageExpression: "'   '"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: b}
spec: {policyName: p, validationActions: [Deny]}
"#;
    let set = compile(yaml);
    let ev = create(&set, &deployment("x", "default", 9));
    let msgs: Vec<_> = ev.decisions.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(
        msgs,
        [
            "too many replicas",
            "failed expression: object.spec.replicas <= 5",
            "static"
        ]
    );
    assert!(
        ev.decisions[0]
            .message_expression_error
            .as_deref()
            .unwrap()
            .contains("messageExpression failed")
    );
    assert!(
        ev.decisions[1]
            .message_expression_error
            .as_deref()
            .unwrap()
            .contains("multi-line")
    );
}

const MATCH_CONDITIONS: &str = r#"
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: "demo-policy.example.com"
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
      - apiGroups:   ["*"]
        apiVersions: ["*"]
        operations:  ["CREATE", "UPDATE"]
        resources:   ["*"]
  matchConditions:
    - name: 'exclude-leases' # Each match condition must have a unique name
      expression: '!(request.resource.group == "coordination.k8s.io" && request.resource.resource == "leases")' # Match non-lease resources.
    - name: 'exclude-kubelet-requests'
      expression: '!("system:nodes" in request.userInfo.groups)' # Match requests made by non-node users.
    - name: 'rbac' # Skip RBAC requests.
      expression: 'request.resource.group != "rbac.authorization.k8s.io"'
  validations:
    - expression: "object.metadata.name.startsWith('demo')"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: demo-binding}
spec: {policyName: demo-policy.example.com, validationActions: [Deny]}
"#;

#[test]
fn match_conditions_example_excludes_leases_nodes_and_rbac() {
    let set = compile(MATCH_CONDITIONS);
    let cm = |name: &str| {
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}, namespace: default}}\n")
    };
    assert!(!create(&set, &cm("other")).allowed());
    assert!(create(&set, &cm("demo-config")).allowed());
    // Leases are skipped.
    let lease = "apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata: {name: other, namespace: default}\n";
    let ev = create(&set, lease);
    assert!(ev.allowed());
    assert_eq!(ev.decisions[0].outcome, Outcome::Skip);
    assert!(
        ev.decisions[0].message.contains("exclude-leases"),
        "{}",
        ev.decisions[0].message
    );
    // Nodes are skipped.
    let ev = create_as(&set, &cm("other"), "system:node:n1", &["system:nodes"]);
    assert!(ev.allowed());
    assert!(!create_as(&set, &cm("other"), "alice", &["dev"]).allowed());
    // RBAC is skipped.
    let role = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: other}\nrules: []\n";
    assert!(create(&set, role).allowed());
}

#[test]
fn the_documented_typo_is_a_compile_error_not_a_silent_pass() {
    // The documentation's example calls `startWith`, which does not exist.
    let typo = MATCH_CONDITIONS.replace("startsWith('demo')", "startWith('demo')");
    let errors = compile_err(&typo);
    assert_eq!(errors.len(), 2, "{errors:?}");
    let e = &errors[0];
    assert_eq!(
        e.policy.as_deref(),
        Some("ValidatingAdmissionPolicy \"demo-policy.example.com\"")
    );
    assert_eq!(e.field.as_deref(), Some("spec.validations[0].expression"));
    assert_eq!((e.line, e.column), (Some(1), Some(22)));
    assert!(e.message.contains("startWith"), "{e}");
    // The binding of a broken policy is reported too.
    assert!(
        errors[1].to_string().contains("not among the policies"),
        "{}",
        errors[1]
    );
}

#[test]
fn audit_annotation_example() {
    let yaml = r#"
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: "demo-policy.example.com"
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
    - apiGroups: ["apps"]
      apiVersions: ["v1"]
      operations: ["CREATE", "UPDATE"]
      resources: ["deployments"]
  validations:
  - expression: "object.spec.replicas > 50"
    messageExpression: "'Deployment spec.replicas set to ' + string(object.spec.replicas)"
  auditAnnotations:
  - key: "high-replica-count"
    valueExpression: "object.spec.replicas > 50 ? 'Deployment spec.replicas set to ' + string(object.spec.replicas) : null"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: audit-binding}
spec: {policyName: demo-policy.example.com, validationActions: [Audit]}
"#;
    let set = compile(yaml);
    let ev = create(&set, &deployment("big", "default", 128));
    assert!(ev.allowed());
    assert_eq!(
        ev.audit_annotations
            .get("demo-policy.example.com/high-replica-count")
            .map(String::as_str),
        Some("Deployment spec.replicas set to 128")
    );
    // The failed validation is audited, not denied.
    let ev = create(&set, &deployment("small", "default", 3));
    assert!(ev.allowed());
    assert!(
        !ev.audit_annotations
            .contains_key("demo-policy.example.com/high-replica-count")
    );
    let failure = &ev.audit_annotations["validation.policy.admission.k8s.io/validation_failure"];
    let v: serde_json::Value = serde_json::from_str(failure).unwrap();
    assert_eq!(v[0]["message"], "Deployment spec.replicas set to 3");
    assert_eq!(v[0]["binding"], "audit-binding");
    assert_eq!(v[0]["expressionIndex"], 0);
    assert_eq!(v[0]["validationActions"], serde_json::json!(["Audit"]));
}

#[test]
fn variables_example_image_matches_namespace_environment() {
    let yaml = r#"
apiVersion: admissionregistration.k8s.io/v1beta1
kind: ValidatingAdmissionPolicy
metadata:
  name: "image-matches-namespace-environment.policy.example.com"
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
    - apiGroups:   ["apps"]
      apiVersions: ["v1"]
      operations:  ["CREATE", "UPDATE"]
      resources:   ["deployments"]
  variables:
  - name: environment
    expression: "'environment' in namespaceObject.metadata.labels ? namespaceObject.metadata.labels['environment'] : 'prod'"
  - name: exempt
    expression: "'exempt' in object.metadata.labels && object.metadata.labels['exempt'] == 'true'"
  - name: containers
    expression: "object.spec.template.spec.containers"
  - name: containersToCheck
    expression: "variables.containers.filter(c, c.image.contains('example.com'))"
  validations:
  - expression: "variables.exempt || variables.containersToCheck.all(c, c.image.startsWith(variables.environment + '.'))"
    messageExpression: "'only ' + variables.environment + ' images are allowed in namespace ' + namespaceObject.metadata.name"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: "demo-binding-test.example.com"}
spec:
  policyName: "image-matches-namespace-environment.policy.example.com"
  validationActions: [Deny]
---
apiVersion: v1
kind: Namespace
metadata: {name: default, labels: {environment: prod}}
"#;
    let set = compile(yaml);
    let dep = |image: &str, labels: &str| {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: invalid, namespace: default, labels: {labels}}}\n\
             spec:\n  template:\n    spec:\n      containers:\n      - {{name: app, image: {image}}}\n"
        )
    };
    let ev = create(&set, &dep("dev.example.com/nginx", "{}"));
    assert_eq!(
        ev.denial_message().unwrap(),
        "ValidatingAdmissionPolicy 'image-matches-namespace-environment.policy.example.com' with binding 'demo-binding-test.example.com' denied request: only prod images are allowed in namespace default"
    );
    assert!(create(&set, &dep("prod.example.com/nginx", "{}")).allowed());
    assert!(create(&set, &dep("dev.example.com/nginx", "{exempt: 'true'}")).allowed());
    assert!(create(&set, &dep("docker.io/nginx", "{}")).allowed());
}

#[test]
fn failure_policy_governs_evaluation_errors() {
    let policy = |fp: &str| {
        format!(
            r#"
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {{name: p}}
spec:
  failurePolicy: {fp}
  matchConstraints:
    resourceRules: [{{apiGroups: ["apps"], apiVersions: ["v1"], operations: ["CREATE"], resources: ["deployments"]}}]
  validations:
  - expression: "object.spec.missing.field == 1"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {{name: b}}
spec: {{policyName: p, validationActions: [Deny]}}
"#
        )
    };
    let set = compile(&policy("Fail"));
    let ev = create(&set, &deployment("x", "default", 1));
    assert!(!ev.allowed());
    let d = &ev.decisions[0];
    assert_eq!(d.outcome, Outcome::Error);
    assert!(
        d.message
            .starts_with("policy errored: spec.validations[0].expression: "),
        "{}",
        d.message
    );
    assert!(d.actions.contains(ValidationAction::Deny));

    let set = compile(&policy("Ignore"));
    let ev = create(&set, &deployment("x", "default", 1));
    assert!(ev.allowed());
    // Ignored, but reported: never a silent pass.
    assert_eq!(ev.decisions.len(), 1);
    assert_eq!(ev.decisions[0].outcome, Outcome::Error);
    assert!(ev.decisions[0].actions.is_empty());
}

#[test]
fn warn_action_produces_the_api_server_warning() {
    let yaml = BASIC_POLICY.to_owned()
        + "---"
        + &BASIC_BINDING.replace("[Deny]", "[Warn, Audit]")
        + "---"
        + TEST_NS;
    let set = compile(&yaml);
    let ev = create(&set, &deployment("web", "default", 6));
    assert!(ev.allowed());
    assert_eq!(
        ev.warnings,
        [
            "Validation failed for ValidatingAdmissionPolicy 'demo-policy.example.com' with binding 'demo-binding-test.example.com': failed expression: object.spec.replicas <= 5"
        ]
    );
    assert!(
        ev.audit_annotations
            .contains_key("validation.policy.admission.k8s.io/validation_failure")
    );
}

#[test]
fn authorizer_is_rejected_at_compile_time() {
    let yaml = r#"
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: needs-authz}
spec:
  matchConstraints:
    resourceRules: [{apiGroups: ["*"], apiVersions: ["*"], operations: ["CREATE"], resources: ["*"]}]
  validations:
  - expression: "authorizer.group('').resource('pods').check('create').allowed()"
"#;
    let errors = compile_err(yaml);
    assert_eq!(errors.len(), 1);
    assert_eq!(
        errors[0].field.as_deref(),
        Some("spec.validations[0].expression")
    );
    assert!(
        errors[0].message.contains("not supported offline"),
        "{}",
        errors[0]
    );
}

#[test]
fn binding_errors_are_reported() {
    let yaml = BASIC_POLICY.to_owned()
        + r#"---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: both}
spec: {policyName: demo-policy.example.com, validationActions: [Deny, Warn]}
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: unknown-action}
spec: {policyName: demo-policy.example.com, validationActions: [Block]}
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: dangling}
spec: {policyName: nope, validationActions: [Deny]}
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: params-without-kind}
spec: {policyName: demo-policy.example.com, validationActions: [Deny], paramRef: {name: x}}
"#;
    let errors = compile_err(&yaml);
    let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(text.len(), 4, "{text:#?}");
    assert!(
        text[0]
            .contains("\"both\": spec.validationActions: Deny and Warn may not be used together"),
        "{}",
        text[0]
    );
    assert!(
        text[1].contains(
            "\"unknown-action\": spec.validationActions[0]: unknown validation action \"Block\""
        ),
        "{}",
        text[1]
    );
    assert!(
        text[2].contains(
            "\"dangling\": spec.policyName: refers to ValidatingAdmissionPolicy \"nope\""
        ),
        "{}",
        text[2]
    );
    assert!(text[3].contains("has no paramKind"), "{}", text[3]);
}

#[test]
fn subresources_wildcards_and_exclusions() {
    let yaml = r#"
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: labels-everywhere}
spec:
  matchConstraints:
    resourceRules:
    - {apiGroups: ["*"], apiVersions: ["*"], operations: ["CREATE"], resources: ["*"], scope: Namespaced}
    excludeResourceRules:
    - {apiGroups: [""], apiVersions: ["*"], operations: ["*"], resources: ["events"]}
  validations:
  - expression: "has(object.metadata.labels) && 'team' in object.metadata.labels"
    message: "every namespaced object needs a team label"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: b}
spec: {policyName: labels-everywhere, validationActions: [Deny]}
"#;
    let set = compile(yaml);
    let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: x}\n";
    assert_eq!(
        create(&set, cm)
            .denial_message()
            .unwrap()
            .rsplit(": ")
            .next(),
        Some("every namespaced object needs a team label")
    );
    let event = "apiVersion: v1\nkind: Event\nmetadata: {name: e, namespace: x}\n";
    assert!(create(&set, event).decisions.is_empty());
    let cluster =
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: r}\n";
    assert!(create(&set, cluster).decisions.is_empty());
    // A status update is a subresource: `*` does not match it.
    let mut req = rampart_policy::Request::create(one(cm)).unwrap();
    req.sub_resource = "status".into();
    assert!(set.evaluate(&req).decisions.is_empty());
    // Policies never apply to admission policies themselves.
    let vap = "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingAdmissionPolicy\nmetadata: {name: other, namespace: x}\n";
    let mut req = rampart_policy::Request::create(one(vap)).unwrap();
    req.namespace = "x".into();
    assert!(set.evaluate(&req).decisions.is_empty());
}

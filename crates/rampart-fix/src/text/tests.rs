use serde_json::{Value, json};

use super::*;
use crate::op::Op;
use rampart_core::FieldPath;

fn value_of(text: &str, json: bool) -> Value {
    if json {
        serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}):\n{text}"))
    } else {
        serde_saphyr::from_str(text).unwrap_or_else(|e| panic!("not YAML ({e}):\n{text}"))
    }
}

fn style_for(text: &str, json: bool) -> Style {
    let mut votes = StyleVotes::default();
    votes.add(text);
    votes.style(json)
}

/// Applies `ops` in turn, checks the result reads back as the original value
/// with the ops applied, and returns the text.
fn edit(text: &str, ops: &[Op]) -> String {
    let json = text.trim_start().starts_with('{');
    let style = style_for(text, json);
    let mut expected = value_of(text, json);
    let mut out = text.to_owned();
    for op in ops {
        out = apply(&out, op, &style).unwrap_or_else(|e| panic!("{op}: {e}\n{out}"));
        op.apply_json(&mut expected).unwrap();
    }
    assert_eq!(value_of(&out, json), expected, "edited text:\n{out}");
    out
}

fn set(path: &str, value: Value) -> Op {
    Op::set(FieldPath::parse(path), value)
}

fn append(path: &str, value: Value) -> Op {
    Op::append(FieldPath::parse(path), value)
}

fn refused(text: &str, op: &Op) -> EditError {
    let json = text.trim_start().starts_with('{');
    apply(text, op, &style_for(text, json)).unwrap_err()
}

#[test]
fn adds_a_nested_block_under_a_container_with_two_spaces() {
    let text = "\
spec:
  containers:
    - name: web # the app
      image: nginx:1.27
    # the sidecar
    - name: side
      image: busybox:1.36

  volumes: []
";
    let out = edit(
        text,
        &[
            set(
                "spec.containers[0].securityContext.allowPrivilegeEscalation",
                json!(false),
            ),
            set(
                "spec.containers[0].securityContext.capabilities.drop",
                json!(["ALL"]),
            ),
            set("spec.containers[1].imagePullPolicy", json!("Always")),
        ],
    );
    assert_eq!(
        out,
        "\
spec:
  containers:
    - name: web # the app
      image: nginx:1.27
      securityContext:
        allowPrivilegeEscalation: false
        capabilities:
          drop:
            - ALL
    # the sidecar
    - name: side
      image: busybox:1.36
      imagePullPolicy: Always

  volumes: []
"
    );
}

#[test]
fn follows_four_spaces_and_unindented_sequences() {
    let text = "\
spec:
    template:
        spec:
            containers:
            - name: web
              image: web:1
";
    let out = edit(
        text,
        &[
            set(
                "spec.template.spec.containers[0].securityContext.capabilities.drop",
                json!(["ALL"]),
            ),
            set(
                "spec.template.spec.securityContext.runAsNonRoot",
                json!(true),
            ),
        ],
    );
    assert_eq!(
        out,
        "\
spec:
    template:
        spec:
            securityContext:
                runAsNonRoot: true
            containers:
            - name: web
              image: web:1
              securityContext:
                  capabilities:
                      drop:
                      - ALL
"
    );
}

#[test]
fn pod_level_keys_go_before_the_containers_and_their_comments() {
    let text = "\
spec:
  serviceAccountName: web
  # Containers of the pod.
  # Two lines of comment.
  containers:
  - name: web
";
    let out = edit(
        text,
        &[
            set(
                "spec.securityContext.seccompProfile.type",
                json!("RuntimeDefault"),
            ),
            set("spec.automountServiceAccountToken", json!(false)),
        ],
    );
    assert_eq!(
        out,
        "\
spec:
  serviceAccountName: web
  automountServiceAccountToken: false
  securityContext:
    seccompProfile:
      type: RuntimeDefault
  # Containers of the pod.
  # Two lines of comment.
  containers:
  - name: web
"
    );
}

#[test]
fn flow_mappings_and_sequences_are_edited_inside_their_brackets() {
    let text = "\
resources:
  requests: {cpu: 100m}
  limits: {}
securityContext: {capabilities: {drop: [NET_RAW], add: []}}
other: {a: 1}  # note
";
    let out = edit(
        text,
        &[
            set("resources.requests.memory", json!("128Mi")),
            set("resources.limits.cpu", json!("1")),
            append("securityContext.capabilities.drop", json!("ALL")),
            append(
                "securityContext.capabilities.add",
                json!("NET_BIND_SERVICE"),
            ),
            set(
                "securityContext.seccompProfile.type",
                json!("RuntimeDefault"),
            ),
            set("other.b", json!(false)),
        ],
    );
    assert_eq!(
        out,
        "\
resources:
  requests: {cpu: 100m, memory: 128Mi}
  limits:
    cpu: \"1\"
securityContext: {capabilities: {drop: [NET_RAW, ALL], add: [NET_BIND_SERVICE]}, seccompProfile: {type: RuntimeDefault}}
other: {a: 1, b: false}  # note
"
    );
}

#[test]
fn multi_line_flow_mappings_get_new_lines() {
    let text = "\
spec: {
  name: web,
  ports: [
    80
  ]
}
";
    let out = edit(
        text,
        &[
            set("spec.securityContext.runAsNonRoot", json!(true)),
            append("spec.ports", json!(443)),
        ],
    );
    assert_eq!(
        out,
        "\
spec: {
  name: web,
  ports: [
    80,
    443
  ],
  securityContext: {
    runAsNonRoot: true
  }
}
"
    );
}

#[test]
fn block_sequences_get_a_new_item_in_their_style() {
    let text = "\
drop:
    -   NET_RAW   # why
    -   CHOWN
keep: 1
";
    let out = edit(text, &[append("drop", json!("ALL"))]);
    assert_eq!(
        out,
        "drop:\n    -   NET_RAW   # why\n    -   CHOWN\n    -   ALL\nkeep: 1\n"
    );
}

#[test]
fn scalars_are_replaced_in_place_whatever_their_quoting() {
    let text = "\
a: \"true\"   # was a string
b: 'yes'
c: yes
\"quoted key\": x
";
    let out = edit(
        text,
        &[
            set("a", json!(false)),
            set("b", json!(true)),
            set("c", json!("RuntimeDefault")),
            set("quoted key", json!("1")),
        ],
    );
    assert_eq!(
        out,
        "a: false   # was a string\nb: true\nc: RuntimeDefault\n\"quoted key\": \"1\"\n"
    );
}

#[test]
fn null_values_count_as_absent() {
    let text = "\
a:
b: ~   # nothing yet
c: null
d: {e: null}
";
    let out = edit(
        text,
        &[
            set("a.x", json!(true)),
            set("b.y.z", json!("ALL")),
            append("c", json!("ALL")),
            set("d.e.f", json!(1)),
        ],
    );
    assert_eq!(
        out,
        // `y` alone would read as a boolean under YAML 1.1, so it is quoted.
        "a:\n  x: true\nb:\n  \"y\":\n    z: ALL   # nothing yet\nc:\n  - ALL\nd: {e: {f: 1}}\n"
    );
}

#[test]
fn crlf_files_stay_crlf() {
    let text = "a:\r\n  b: 1\r\n  # c\r\nd: 2\r\n";
    let out = edit(text, &[set("a.sc.x", json!(false))]);
    assert_eq!(
        out,
        "a:\r\n  b: 1\r\n  sc:\r\n    x: false\r\n  # c\r\nd: 2\r\n"
    );
}

#[test]
fn the_last_line_may_lack_a_newline() {
    assert_eq!(
        edit("a:\n  b: 1", &[set("a.c", json!(2))]),
        "a:\n  b: 1\n  c: 2\n"
    );
    assert_eq!(edit("a: 1", &[set("b", json!(2))]), "a: 1\nb: 2\n");
}

#[test]
fn block_scalars_keep_their_lines() {
    let text = "\
a:
  script: |
    echo hi

  kept: |+
    x

b: 1
";
    let out = edit(text, &[set("a.after", json!(true))]);
    assert_eq!(
        out,
        "a:\n  script: |\n    echo hi\n\n  kept: |+\n    x\n\n  after: true\nb: 1\n"
    );
    assert!(matches!(
        refused(text, &set("a.script", json!("x"))),
        EditError::Unsupported(_)
    ));
}

#[test]
fn anchors_are_left_alone_and_aliases_refused() {
    // An anchor nobody refers to is an ordinary node.
    let text = "a: &base\n  b: 1\n";
    assert_eq!(
        edit(text, &[set("a.c", json!(2))]),
        "a: &base\n  b: 1\n  c: 2\n"
    );

    let text = "base: &b {cpu: 1}\nx:\n  resources: *b\ny:\n  <<: *b\n  z: 1\n";
    for op in [
        set("base.memory", json!("1Gi")),
        set("x.resources.memory", json!("1Gi")),
        set("y.memory", json!("1Gi")),
    ] {
        assert!(
            matches!(refused(text, &op), EditError::Unsupported(_)),
            "{op}"
        );
    }
    // Elsewhere in the same document edits still happen, anchors untouched,
    // and so do edits of keys written next to a merge key.
    let out = edit(text, &[set("x.other", json!(true)), set("y.z", json!(2))]);
    assert_eq!(
        out,
        "base: &b {cpu: 1}\nx:\n  resources: *b\n  other: true\ny:\n  <<: *b\n  z: 2\n"
    );
}

#[test]
fn list_items_are_reached_by_index() {
    let text = "\
apiVersion: v1
kind: List
items:
- kind: Pod
  spec:
    containers:
    - name: a
- kind: Pod
  spec:
    containers: [{name: b}]
";
    let out = edit(
        text,
        &[
            set(
                "items[1].spec.containers[0].securityContext.runAsNonRoot",
                json!(true),
            ),
            set("items[0].spec.automountServiceAccountToken", json!(false)),
        ],
    );
    assert_eq!(
        out,
        "\
apiVersion: v1
kind: List
items:
- kind: Pod
  spec:
    automountServiceAccountToken: false
    containers:
    - name: a
- kind: Pod
  spec:
    containers: [{name: b, securityContext: {runAsNonRoot: true}}]
"
    );
}

#[test]
fn pretty_json_gets_pretty_json() {
    let text = r#"{
    "kind": "Pod",
    "spec": {
        "containers": [
            {
                "name": "a",
                "image": "a:1"
            }
        ]
    }
}"#;
    let out = edit(
        text,
        &[
            set(
                "spec.containers[0].securityContext.capabilities.drop",
                json!(["ALL"]),
            ),
            set("spec.containers[0].imagePullPolicy", json!("Always")),
            set(
                "spec.securityContext.seccompProfile.type",
                json!("RuntimeDefault"),
            ),
        ],
    );
    assert_eq!(
        out,
        r#"{
    "kind": "Pod",
    "spec": {
        "securityContext": {
            "seccompProfile": {
                "type": "RuntimeDefault"
            }
        },
        "containers": [
            {
                "name": "a",
                "image": "a:1",
                "imagePullPolicy": "Always",
                "securityContext": {
                    "capabilities": {
                        "drop": ["ALL"]
                    }
                }
            }
        ]
    }
}"#
    );
}

#[test]
fn compact_json_stays_compact() {
    let text = r#"{"kind": "Pod", "spec": {"hostPID": true, "containers": [{"name": "shell", "image": "busybox:latest"}]}}"#;
    let out = edit(
        text,
        &[
            set(
                "spec.containers[0].securityContext.allowPrivilegeEscalation",
                json!(false),
            ),
            set("spec.automountServiceAccountToken", json!(false)),
            set("spec.containers[0].resources.limits.cpu", json!("1")),
        ],
    );
    assert_eq!(
        out,
        r#"{"kind": "Pod", "spec": {"hostPID": true, "automountServiceAccountToken": false, "containers": [{"name": "shell", "image": "busybox:latest", "securityContext": {"allowPrivilegeEscalation": false}, "resources": {"limits": {"cpu": "1"}}}]}}"#
    );
}

#[test]
fn paths_that_do_not_fit_are_refused() {
    let text = "a: text\nlist: [1]\n";
    assert!(matches!(
        refused(text, &set("a.b", json!(1))),
        EditError::Path(_)
    ));
    assert!(matches!(
        refused(text, &set("list[3].b", json!(1))),
        EditError::Path(_)
    ));
    assert!(matches!(
        refused(text, &append("a", json!(1))),
        EditError::Path(_)
    ));
    assert!(matches!(
        refused("a: [1\n", &set("b", json!(1))),
        EditError::Parse(_)
    ));
}

#[test]
fn requests_go_before_limits() {
    let text = "resources:\n  limits:\n    memory: 1Gi\n";
    let out = edit(text, &[set("resources.requests.cpu", json!("100m"))]);
    assert_eq!(
        out,
        "resources:\n  requests:\n    cpu: 100m\n  limits:\n    memory: 1Gi\n"
    );
}

#[test]
fn empty_flow_mappings_take_the_layout_around_them() {
    // Under a block mapping, `{}` becomes a block mapping...
    let text = "c:\n  resources: {}   # none yet\n  securityContext: {}\n";
    let out = edit(
        text,
        &[
            set("c.resources.limits.memory", json!("1Gi")),
            set("c.securityContext.runAsNonRoot", json!(true)),
        ],
    );
    assert_eq!(
        out,
        "c:\n  resources:\n    limits:\n      memory: 1Gi   # none yet\n  securityContext:\n    runAsNonRoot: true\n"
    );
    // ...but keeps an anchor or a tag, and stays in flow style, in flow.
    let text = "a: &x {}\nb: !!map {}\nc: {d: {}}\n";
    let out = edit(
        text,
        &[
            set("a.k", json!(1)),
            set("b.k", json!(2)),
            set("c.d.k", json!(3)),
        ],
    );
    assert_eq!(out, "a: &x {k: 1}\nb: !!map {k: 2}\nc: {d: {k: 3}}\n");
    // In pretty JSON it opens over several lines.
    let text = "{\n  \"sc\": {},\n  \"x\": 1\n}";
    let out = edit(text, &[set("sc.runAsNonRoot", json!(true))]);
    assert_eq!(
        out,
        "{\n  \"sc\": {\n    \"runAsNonRoot\": true\n  },\n  \"x\": 1\n}"
    );
}

#[test]
fn null_in_pretty_json_opens_over_several_lines() {
    let text = "{\n  \"sc\": null,\n  \"x\": {\"y\": null}\n}";
    let out = edit(
        text,
        &[set("sc.runAsNonRoot", json!(true)), set("x.y.z", json!(1))],
    );
    assert_eq!(
        out,
        "{\n  \"sc\": {\n    \"runAsNonRoot\": true\n  },\n  \"x\": {\"y\": {\"z\": 1}}\n}"
    );
}

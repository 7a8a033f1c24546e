//! Reading files, directories and streams as kubectl reads them.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use rampart_core::FieldPath;
use rampart_manifest::{
    InputIssue, IssueKind, Limits, LoadResult, Loader, Manifest, Source, parse_source,
};
use serde_json::json;

/// A directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("rampart-manifest-test-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    fn write(&self, relative: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.0.join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, contents).unwrap();
        path
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn load(text: &str) -> LoadResult {
    Loader::default().load_str("test.yaml", text)
}

fn only_issue(result: &LoadResult) -> &InputIssue {
    assert_eq!(result.issues.len(), 1, "{:#?}", result.issues);
    &result.issues[0]
}

fn names(manifests: &[Manifest]) -> Vec<&str> {
    manifests
        .iter()
        .map(|m| m.value["metadata"]["name"].as_str().unwrap_or("?"))
        .collect()
}

fn line_of(manifest: &Manifest, path: &str) -> usize {
    manifest.locate(&FieldPath::parse(path)).unwrap().line
}

const THREE_PODS: &str = "\
# pods
apiVersion: v1
kind: Pod
metadata:
  name: one
---
apiVersion: v1
kind: Pod
metadata:
  name: two
---
apiVersion: v1
kind: Pod
metadata:
  name: three
spec:
  containers:
  - name: app
    image: nginx
    securityContext:
      privileged: true
";

#[test]
fn locates_fields_by_file_line_in_the_third_document() {
    let result = load(THREE_PODS);
    assert!(result.issues.is_empty(), "{:?}", result.issues);
    assert_eq!(names(&result.manifests), ["one", "two", "three"]);
    let third = &result.manifests[2];
    assert_eq!(third.document, 2);
    assert_eq!(third.first_line(), 12);
    assert_eq!(
        line_of(third, "spec.containers[0].securityContext.privileged"),
        21
    );
    let position = third
        .locate(&FieldPath::parse("spec.containers[0].image"))
        .unwrap();
    assert_eq!((position.line, position.column), (19, 5));
    // An absent field points at its nearest existing ancestor.
    assert_eq!(line_of(third, "spec.containers[0].resources.limits"), 18);
    assert_eq!(result.manifests[0].first_line(), 2);
}

#[test]
fn one_broken_document_does_not_hide_the_others() {
    let text = "\
apiVersion: v1
kind: ConfigMap
metadata: {name: before}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: [broken
  labels: {}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: after}
";
    let result = load(text);
    assert_eq!(names(&result.manifests), ["before", "after"]);
    assert_eq!(result.manifests[1].document, 2);
    let issue = only_issue(&result);
    assert_eq!(issue.kind, IssueKind::Syntax);
    assert_eq!(issue.document, Some(1));
    assert_eq!(issue.source, "test.yaml");
    let line = issue.line.unwrap();
    assert!(
        (8..=10).contains(&line),
        "syntax error reported at file line {line}"
    );
    assert!(issue.column.is_some());
}

#[test]
fn document_index_skips_empty_and_comment_only_documents() {
    let text = "# Source: chart/templates/a.yaml\n---\n---\n\napiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\n# nothing\n---\n~\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: b}\n";
    let result = load(text);
    assert!(result.issues.is_empty(), "{:?}", result.issues);
    assert_eq!(names(&result.manifests), ["a", "b"]);
    // The `~` document is counted (it has content) but yields nothing, as in kubectl.
    assert_eq!(
        result
            .manifests
            .iter()
            .map(|m| m.document)
            .collect::<Vec<_>>(),
        [0, 2]
    );
    assert_eq!(result.manifests[0].first_line(), 5);
}

#[test]
fn empty_files_yield_nothing_and_no_error() {
    for text in [
        "",
        "\n\n",
        "# only a comment\n# and another\n",
        "---\n---\n",
    ] {
        let result = load(text);
        assert!(
            result.manifests.is_empty() && result.issues.is_empty(),
            "{text:?}"
        );
        assert_eq!(result.files, 1);
    }
}

#[test]
fn text_after_a_separator_is_refused_like_kubectl() {
    let result = load(
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n--- {apiVersion: v1, kind: Namespace}\n",
    );
    assert_eq!(names(&result.manifests), ["a"]);
    let issue = only_issue(&result);
    assert_eq!(
        (issue.kind, issue.document, issue.line),
        (IssueKind::Syntax, Some(1), Some(4))
    );
}

#[test]
fn lists_are_expanded_and_items_located() {
    let text = "\
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Service
  metadata:
    name: web
- apiVersion: apps/v1
  kind: Deployment
  metadata:
    name: api
  spec:
    template:
      spec:
        hostNetwork: true
";
    let result = load(text);
    assert!(result.issues.is_empty(), "{:?}", result.issues);
    assert_eq!(names(&result.manifests), ["web", "api"]);
    let api = &result.manifests[1];
    assert_eq!((api.document, api.list_item), (0, Some(1)));
    assert_eq!(api.first_line(), 8);
    assert_eq!(line_of(api, "spec.template.spec.hostNetwork"), 15);
    assert_eq!(line_of(api, "kind"), 9);
    assert_eq!(api.view().unwrap().kind, "Deployment");
}

#[test]
fn typed_and_custom_lists_are_expanded_too() {
    let text = "\
apiVersion: v1
kind: PodList
items:
- {apiVersion: v1, kind: Pod, metadata: {name: p}}
---
apiVersion: cert-manager.io/v1
kind: CertificateList
items:
- {apiVersion: cert-manager.io/v1, kind: Certificate, metadata: {name: c}}
---
apiVersion: v1
kind: List
items: []
";
    let result = load(text);
    assert!(result.issues.is_empty(), "{:?}", result.issues);
    assert_eq!(names(&result.manifests), ["p", "c"]);
    assert_eq!(result.manifests[1].list_item, Some(0));
}

#[test]
fn bad_list_items_are_reported_with_their_line() {
    let text = "\
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Pod
  metadata: {name: ok}
- just a string
- apiVersion: v1
  kind: Deployment
  metadata: {name: wrong-group}
";
    let result = load(text);
    assert_eq!(names(&result.manifests), ["ok"]);
    assert_eq!(result.issues.len(), 2, "{:?}", result.issues);
    let not_object = &result.issues[0];
    assert_eq!(
        (not_object.kind, not_object.line),
        (IssueKind::NotAnObject, Some(7))
    );
    assert!(
        not_object.message.starts_with("items[1]"),
        "{}",
        not_object.message
    );
    let wrong = &result.issues[1];
    assert_eq!((wrong.kind, wrong.line), (IssueKind::UnknownKind, Some(8)));
    assert!(wrong.message.contains("apps/v1"), "{}", wrong.message);
}

#[test]
fn yaml_1_1_scalars_reach_the_object_as_kubectl_sends_them() {
    let text = "\
apiVersion: v1
kind: Pod
metadata:
  name: scalars
spec:
  volumes:
  - name: config
    configMap:
      name: c
      defaultMode: 0755
  hostNetwork: yes
  hostPID: off
  priority: 1e3
  nodeName: ~
  containers:
  - name: app
    image: nginx
    env:
    - name: MODE
      value: \"0755\"
";
    let result = load(text);
    let pod = &result.manifests[0].value;
    assert_eq!(
        pod["spec"]["volumes"][0]["configMap"]["defaultMode"],
        json!(493)
    );
    assert_eq!(pod["spec"]["hostNetwork"], json!(true));
    assert_eq!(pod["spec"]["hostPID"], json!(false));
    assert_eq!(pod["spec"]["priority"], json!(1000.0));
    assert_eq!(pod["spec"]["nodeName"], json!(null));
    assert_eq!(
        pod["spec"]["containers"][0]["env"][0]["value"],
        json!("0755")
    );
}

#[test]
fn anchors_and_aliases_work_but_alias_bombs_are_refused() {
    let mut bomb = String::from(
        "apiVersion: v1\nkind: ConfigMap\ndata:\n  a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n",
    );
    for i in 1..9 {
        let p = i - 1;
        bomb.push_str(&format!(
            "  a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    let text = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: aliased, labels: &l {{app: web}}}}\nspec: {{nodeSelector: *l}}\n---\n{bomb}"
    );
    let result = load(&text);
    assert_eq!(names(&result.manifests), ["aliased"]);
    assert_eq!(
        result.manifests[0].value["spec"]["nodeSelector"],
        json!({"app": "web"})
    );
    let issue = only_issue(&result);
    assert_eq!((issue.kind, issue.document), (IssueKind::TooLarge, Some(1)));
    assert!(issue.message.contains("alias"), "{}", issue.message);
}

#[test]
fn duplicate_keys_warn_and_keep_the_last_value() {
    let text = "apiVersion: v1\nkind: Pod\nmetadata: {name: dup}\nspec:\n  hostPID: false\n  hostPID: true\n";
    let result = load(text);
    assert_eq!(result.manifests[0].value["spec"]["hostPID"], json!(true));
    let issue = only_issue(&result);
    assert_eq!((issue.kind, issue.line), (IssueKind::Warning, Some(6)));
    assert!(!issue.kind.lost_input());
    assert!(!result.lost_input());
}

#[test]
fn json_documents_and_streams() {
    let text = "{\"apiVersion\": \"v1\", \"kind\": \"Pod\", \"metadata\": {\"name\": \"a\"}}\n\
                {\"apiVersion\": \"v1\",\n \"kind\": \"Pod\",\n \"metadata\": {\"name\": \"b\"},\n \"spec\": {\"hostIPC\": true}}\n\
                {\"apiVersion\": \"v1\" \"kind\": \"Pod\"}\n\
                [1, 2]\n";
    let result = Loader::default().load_str("stream.json", text);
    assert_eq!(names(&result.manifests), ["a", "b"]);
    let b = &result.manifests[1];
    assert_eq!((b.document, b.first_line()), (1, 2));
    assert_eq!(line_of(b, "spec.hostIPC"), 5);
    assert_eq!(result.issues.len(), 2, "{:?}", result.issues);
    let syntax = &result.issues[0];
    assert_eq!(
        (syntax.kind, syntax.document, syntax.line),
        (IssueKind::Syntax, Some(2), Some(6))
    );
    let array = &result.issues[1];
    assert_eq!(
        (array.kind, array.document, array.line),
        (IssueKind::NotAnObject, Some(3), Some(7))
    );
}

#[test]
fn json_list_file() {
    let text = "{\n  \"apiVersion\": \"v1\",\n  \"kind\": \"List\",\n  \"items\": [\n    {\"apiVersion\": \"v1\", \"kind\": \"Pod\", \"metadata\": {\"name\": \"x\"},\n     \"spec\": {\"hostPID\": true}}\n  ]\n}\n";
    let result = Loader::default().load_str("list.json", text);
    assert!(result.issues.is_empty(), "{:?}", result.issues);
    assert_eq!(names(&result.manifests), ["x"]);
    assert_eq!(line_of(&result.manifests[0], "spec.hostPID"), 6);
}

#[test]
fn wrong_group_names_the_right_api_version_and_is_not_scanned() {
    let text = "apiVersion: v1\nkind: Deployment\nmetadata: {name: web}\n";
    let result = load(text);
    assert!(result.manifests.is_empty());
    let issue = only_issue(&result);
    assert_eq!(
        (issue.kind, issue.line, issue.column),
        (IssueKind::UnknownKind, Some(1), Some(1))
    );
    assert!(issue.message.contains("apps/v1"), "{}", issue.message);
    assert!(issue.kind.lost_input());
}

#[test]
fn unknown_kinds_in_built_in_groups_are_reported() {
    let result = load("apiVersion: apps/v1\nkind: Deploymnet\nmetadata: {name: web}\n");
    assert!(result.manifests.is_empty());
    let issue = only_issue(&result);
    assert_eq!((issue.kind, issue.line), (IssueKind::UnknownKind, Some(2)));
    assert!(issue.message.contains("Deploymnet"), "{}", issue.message);
}

#[test]
fn custom_resources_pass_through() {
    let text = "\
apiVersion: cert-manager.io/v1
kind: Certificate
metadata: {name: tls}
---
apiVersion: serving.knative.dev/v1
kind: Service
metadata: {name: knative}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: route}
";
    let result = load(text);
    assert!(result.issues.is_empty(), "{:?}", result.issues);
    assert_eq!(names(&result.manifests), ["tls", "knative", "route"]);
    assert!(result.manifests[1].view().unwrap().pod.is_none());
}

#[test]
fn documents_that_are_not_objects() {
    let text = "just a string\n---\n- a\n- b\n---\nkind: Pod\n---\napiVersion: v1\nkind: 7\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: ok}\n";
    let result = load(text);
    assert_eq!(names(&result.manifests), ["ok"]);
    let found: Vec<_> = result
        .issues
        .iter()
        .map(|i| (i.kind, i.document, i.line))
        .collect();
    assert_eq!(
        found,
        [
            (IssueKind::NotAnObject, Some(0), Some(1)),
            (IssueKind::NotAnObject, Some(1), Some(3)),
            (IssueKind::NotAnObject, Some(2), Some(6)),
            (IssueKind::NotAnObject, Some(3), Some(9)),
        ]
    );
    assert!(
        result.issues[2].message.contains("apiVersion"),
        "{}",
        result.issues[2].message
    );
}

#[test]
fn nesting_over_the_limit_is_refused_at_any_depth_in_any_style() {
    for depth in [100, 100_000] {
        let flow_seq = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let flow_map = format!("{}1{}", "{a: ".repeat(depth), "}".repeat(depth));
        let block_seq = format!("{}1\n", "- ".repeat(depth));
        let json_seq = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let json_map = format!("{}1{}", "{\"a\": ".repeat(depth), "}".repeat(depth));
        let cases = [
            ("flow.yaml", format!("a: 1\n---\nnested: {flow_seq}\n")),
            ("map.yaml", format!("a: 1\n---\nnested: {flow_map}\n")),
            ("block.yaml", format!("a: 1\n---\nnested:\n{block_seq}")),
            ("seq.json", format!("{{\"a\": 1}}\n{json_seq}\n")),
            ("map.json", format!("{{\"a\": 1}}\n{json_map}\n")),
        ];
        for (name, text) in cases {
            let result = Loader::default().load_str(name, &text);
            let too_deep: Vec<_> = result
                .issues
                .iter()
                .filter(|i| i.kind == IssueKind::TooDeep)
                .collect();
            assert_eq!(too_deep.len(), 1, "{name} at {depth}: {:?}", result.issues);
            assert_eq!(too_deep[0].document, Some(1), "{name} at {depth}");
            assert!(too_deep[0].line.is_some(), "{name} at {depth}");
            assert!(
                too_deep[0].message.contains("64"),
                "{}",
                too_deep[0].message
            );
        }
    }
    // The limit itself is fine: a mapping holding 63 nested sequences is 64 levels.
    let at_limit = format!(
        "apiVersion: v1\nkind: ConfigMap\ndata: {}{}\n",
        "[".repeat(63),
        "]".repeat(63)
    );
    let result = load(&at_limit);
    assert!(result.issues.is_empty(), "{:?}", result.issues);
    // 100 levels of indented block mappings.
    let mut block_map = String::from("apiVersion: v1\nkind: ConfigMap\ndata:\n");
    for i in 1..=100 {
        block_map.push_str(&format!("{}a:\n", " ".repeat(i)));
    }
    let result = load(&block_map);
    assert_eq!(only_issue(&result).kind, IssueKind::TooDeep);
}

#[test]
fn invalid_utf8_loses_only_its_document() {
    let mut bytes = b"apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\napiVersion: v1\nkind: ConfigMap\ndata: {k: \"".to_vec();
    bytes.extend_from_slice(&[0xC3, 0x28]);
    bytes.extend_from_slice(b"\"}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: b}\n");
    let dir = TempDir::new();
    let path = dir.write("mixed.yaml", &bytes);
    let result = Loader::default().load_paths([&path]);
    assert_eq!(names(&result.manifests), ["a", "b"]);
    let issue = only_issue(&result);
    assert_eq!(
        (issue.kind, issue.document, issue.line),
        (IssueKind::Encoding, Some(1), Some(7))
    );
    assert!(
        issue.message.contains("byte offset 97"),
        "{}",
        issue.message
    );
    assert_eq!(result.files, 1);

    let utf16 = Source::from_bytes("u16.yaml", vec![0xFF, 0xFE, b'a', 0]).unwrap_err();
    assert_eq!(utf16.kind, IssueKind::Encoding);
}

#[test]
fn files_over_the_limit_are_refused_before_reading() {
    let dir = TempDir::new();
    let small = dir.write(
        "small.yaml",
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n",
    );
    let limits = Limits {
        max_file_bytes: 20,
        ..Limits::default()
    };
    let result = Loader::new(limits).load_paths([&small]);
    let issue = only_issue(&result);
    assert_eq!(issue.kind, IssueKind::TooLarge);
    assert!(issue.message.contains("20 bytes"), "{}", issue.message);
    assert!(result.manifests.is_empty());
    assert_eq!(result.files, 0);

    // A real 50 MB file (sparse, so the test stays fast) against the default limit.
    let big = dir.path().join("big.yaml");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(50_000_000)
        .unwrap();
    let started = std::time::Instant::now();
    let result = Loader::default().load_paths([&big, &small]);
    assert!(started.elapsed().as_secs() < 5);
    assert_eq!(names(&result.manifests), ["a"]);
    let issue = only_issue(&result);
    assert_eq!(issue.kind, IssueKind::TooLarge);
    assert!(
        issue.message.contains("47.7 MiB") && issue.message.contains("32 MiB"),
        "{}",
        issue.message
    );
}

#[test]
fn streams_are_capped_too() {
    let limits = Limits {
        max_file_bytes: 1_000,
        ..Limits::default()
    };
    let endless = std::io::repeat(b'a');
    let result = Loader::new(limits).load_reader("-", endless);
    assert_eq!(only_issue(&result).kind, IssueKind::TooLarge);
}

#[test]
fn reads_standard_input_style_readers() {
    let input = Cursor::new(THREE_PODS.as_bytes().to_vec());
    let result = Loader::default().load_reader("-", input);
    assert_eq!(names(&result.manifests), ["one", "two", "three"]);
    assert_eq!(&*result.manifests[0].source, "-");
    assert_eq!(result.files, 1);
}

#[test]
fn directories_are_read_recursively_in_sorted_order() {
    let dir = TempDir::new();
    let doc = |name: &str| format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}}}\n");
    dir.write("b.yaml", doc("b"));
    dir.write("a.yml", doc("a"));
    dir.write(
        "sub/c.json",
        "{\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\", \"metadata\": {\"name\": \"c\"}}",
    );
    dir.write("sub/deeper/d.yaml", doc("d"));
    dir.write("z/e.yaml", doc("e"));
    dir.write("notes.txt", doc("not-yaml"));
    dir.write("README.md", doc("not-yaml"));
    dir.write("upper.YAML", doc("wrong-case"));
    dir.write(".git/config.yaml", doc("hidden-dir"));
    dir.write(".github/workflows/ci.yml", doc("hidden-dir"));
    dir.write(".hidden.yaml", doc("hidden-file"));
    for i in 0..40 {
        dir.write(&format!("many/{i:02}.yaml"), doc(&format!("m{i:02}")));
    }
    let result = Loader::default().load_paths([dir.path()]);
    assert!(result.issues.is_empty(), "{:?}", result.issues);
    let mut expected = vec!["a".to_owned(), "b".to_owned()];
    expected.extend((0..40).map(|i| format!("m{i:02}")));
    expected.extend(["c", "d", "e"].map(str::to_owned));
    assert_eq!(names(&result.manifests), expected);
    assert_eq!(result.files, 45);
    assert!(result.manifests[0].source.ends_with("a.yml"));

    // A hidden directory named explicitly is read; so is a file of any extension.
    let hidden =
        Loader::default().load_paths([dir.path().join(".git"), dir.path().join("notes.txt")]);
    assert_eq!(names(&hidden.manifests), ["hidden-dir", "not-yaml"]);
}

#[cfg(unix)]
#[test]
fn symlinked_files_are_read_and_symlinked_directories_not_followed() {
    let dir = TempDir::new();
    let outside = TempDir::new();
    let target = outside.write(
        "real.yaml",
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: linked}\n",
    );
    outside.write(
        "inner/other.yaml",
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: not-followed}\n",
    );
    std::os::unix::fs::symlink(&target, dir.path().join("link.yaml")).unwrap();
    std::os::unix::fs::symlink(outside.path().join("inner"), dir.path().join("inner")).unwrap();
    let result = Loader::default().load_paths([dir.path()]);
    assert_eq!(names(&result.manifests), ["linked"]);
}

#[test]
fn missing_inputs_are_reported_and_the_rest_is_read() {
    let dir = TempDir::new();
    let present = dir.write(
        "ok.yaml",
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: ok}\n",
    );
    let missing = dir.path().join("missing.yaml");
    let result = Loader::default().load_paths([&missing, &present]);
    assert_eq!(names(&result.manifests), ["ok"]);
    let issue = only_issue(&result);
    assert_eq!(issue.kind, IssueKind::Io);
    assert!(issue.source.ends_with("missing.yaml"));
    assert!(issue.to_string().contains("cannot read"), "{issue}");
}

#[test]
fn parse_source_shares_the_text() {
    let source = Source::new("shared.yaml", THREE_PODS);
    let result = parse_source(&source, &Limits::default());
    assert_eq!(result.manifests.len(), 3);
    assert!(
        result.manifests[2]
            .document_text()
            .starts_with("apiVersion: v1\nkind: Pod\nmetadata:\n  name: three")
    );
}

#[test]
fn many_documents_keep_their_order() {
    let mut text = String::new();
    for i in 0..2_000 {
        text.push_str(&format!(
            "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm{i}\n"
        ));
    }
    let result = load(&text);
    assert_eq!(result.manifests.len(), 2_000);
    for (i, m) in result.manifests.iter().enumerate() {
        assert_eq!(m.document, i);
        assert_eq!(m.value["metadata"]["name"], json!(format!("cm{i}")));
        assert_eq!(m.first_line(), 5 * i + 2);
    }
    assert_eq!(
        line_of(&result.manifests[1_999], "metadata.name"),
        5 * 1_999 + 5
    );
}

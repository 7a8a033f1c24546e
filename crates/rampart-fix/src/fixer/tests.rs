use rampart_checks::practices::{self, PracticeConfig};
use rampart_checks::pss::{Level, Profile, Version};

use super::*;
use crate::profile::ResourceProfile;

fn engine(practices_too: bool) -> Engine {
    let mut checks = Profile::new(Level::Restricted, Version::Latest).into_checks();
    let mut corpus = Vec::new();
    if practices_too {
        let (c, k) = practices::checks(&PracticeConfig::default());
        checks.extend(c);
        corpus = k;
    }
    Engine::new(checks, corpus)
}

fn fix(engine: &Engine, options: &FixOptions, files: &[(&str, &str)]) -> FixRun {
    let sources: Vec<SourceText> = files
        .iter()
        .map(|(name, text)| SourceText::new(*name, *text))
        .collect();
    Fixer::new(engine, options, Limits::default()).run(&sources)
}

fn ids(items: &[NotFixed]) -> Vec<&str> {
    items.iter().map(|n| n.check_id.as_str()).collect()
}

const MULTI: &str = "\
# Front end and its job.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web   # keep me
spec:
  template:
    spec:
      containers:
      - name: web
        image: web:1.0
---
# nothing to fix here
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {mode: '0644'}
---
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Pod
  metadata: {name: a}
  spec:
    containers: [{name: a, image: 'a:1'}]
- apiVersion: v1
  kind: Pod
  metadata: {name: b}
  spec:
    securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}
    containers:
    - name: b
      image: b:1
      securityContext:
        allowPrivilegeEscalation: false
        capabilities: {drop: [ALL]}
";

#[test]
fn fixes_documents_and_list_items_keeping_everything_else() {
    let engine = engine(false);
    let run = fix(&engine, &FixOptions::default(), &[("multi.yaml", MULTI)]);
    let file = &run.files[0];
    assert_eq!(
        file.fixed,
        "\
# Front end and its job.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web   # keep me
spec:
  template:
    spec:
      securityContext:
        runAsNonRoot: true
        seccompProfile:
          type: RuntimeDefault
      containers:
      - name: web
        image: web:1.0
        securityContext:
          allowPrivilegeEscalation: false
          capabilities:
            drop:
            - ALL
---
# nothing to fix here
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {mode: '0644'}
---
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Pod
  metadata: {name: a}
  spec:
    securityContext:
      runAsNonRoot: true
      seccompProfile:
        type: RuntimeDefault
    containers: [{name: a, image: 'a:1', securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}}]
- apiVersion: v1
  kind: Pod
  metadata: {name: b}
  spec:
    securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}
    containers:
    - name: b
      image: b:1
      securityContext:
        allowPrivilegeEscalation: false
        capabilities: {drop: [ALL]}
"
    );
    assert_eq!(run.failing(Severity::Info), 0);
    let objects: Vec<&ObjectFix> = run.objects().collect();
    assert_eq!(objects.len(), 4);
    assert_eq!(objects[0].fixed.len(), 4);
    assert_eq!(objects[2].list_item, Some(0));
    assert_eq!(objects[2].fixed.len(), 4);
    assert!(objects[3].fixed.is_empty());
    // Lines point into the fixed text.
    let apes = &objects[0]
        .fixed
        .iter()
        .find(|f| f.check_id == "pss-allowPrivilegeEscalation");
    assert_eq!(apes.unwrap().line, Some(17));
    let item_line = file
        .fixed
        .lines()
        .position(|l| l == "- apiVersion: v1")
        .unwrap();
    assert_eq!(objects[2].line, item_line + 1);

    // Fixing again changes nothing.
    let again = fix(
        &engine,
        &FixOptions::default(),
        &[("multi.yaml", &file.fixed)],
    );
    assert!(!again.files[0].changed());
    assert!(again.objects().all(|o| o.fixed.is_empty()));
}

#[test]
fn what_is_not_fixed_says_why() {
    let text = "\
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  hostNetwork: true
  serviceAccountName: operator
  containers:
  - name: a
    image: a:latest
    securityContext:
      privileged: true
      capabilities: {add: [NET_ADMIN]}
";
    let run = fix(&engine(true), &FixOptions::default(), &[("p.yaml", text)]);
    let o = run.objects().next().unwrap();
    let fixed: Vec<&str> = o.fixed.iter().map(|f| f.check_id.as_str()).collect();
    assert_eq!(
        fixed,
        [
            "pss-capabilities_restricted",
            "pss-runAsNonRoot",
            "pss-seccompProfile_restricted"
        ]
    );
    let reason = |id: &str| {
        o.not_fixed
            .iter()
            .find(|n| n.check_id == id)
            .map(|n| n.reason.clone())
            .unwrap_or_else(|| panic!("{id} is fixed: {:?}", ids(&o.not_fixed)))
    };
    assert!(reason("pss-privileged").contains("privileged"));
    assert!(reason("pss-allowPrivilegeEscalation").contains("privileged: true"));
    assert!(reason("pss-capabilities_restricted").contains("NET_ADMIN"));
    assert!(reason("pss-hostNamespaces").contains("host"));
    assert!(reason("image-tag-latest").contains("pin"));
    assert!(reason("automount-service-account-token").contains("\"operator\""));
    assert!(reason("resources-missing-limits").contains("--resources-profile"));
    let line = o
        .not_fixed
        .iter()
        .find(|n| n.check_id == "pss-privileged")
        .unwrap()
        .line;
    // Four lines of pod securityContext were added above it.
    assert_eq!(line, Some(15));
}

#[test]
fn suppressed_findings_are_left_alone() {
    let text = "\
apiVersion: v1
kind: Pod
metadata:
  name: p
  annotations:
    rampart.dev/ignore-pss-runAsNonRoot: \"the image runs as root; ticket OPS-7\"
spec:
  securityContext: {seccompProfile: {type: RuntimeDefault}}
  containers:
  - name: a
    image: a:1
    securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
";
    let run = fix(&engine(false), &FixOptions::default(), &[("p.yaml", text)]);
    assert!(!run.files[0].changed());
    assert!(
        run.objects()
            .all(|o| o.fixed.is_empty() && o.not_fixed.is_empty())
    );
}

#[test]
fn corpus_checks_see_every_file() {
    let sa = "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: default, namespace: x}\nautomountServiceAccountToken: false\n";
    let pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: x}\nspec:\n  containers: [{name: a, image: a:1}]\n";
    let options = FixOptions::default();
    let engine = engine(true);
    let alone = fix(&engine, &options, &[("pod.yaml", pod)]);
    assert!(
        alone.files[0]
            .fixed
            .contains("automountServiceAccountToken: false")
    );
    let together = fix(&engine, &options, &[("sa.yaml", sa), ("pod.yaml", pod)]);
    assert!(
        !together.files[1]
            .fixed
            .contains("automountServiceAccountToken")
    );
}

#[test]
fn an_edit_refused_by_the_editor_leaves_the_rest() {
    let text = "\
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  securityContext: &shared {runAsNonRoot: true}
  containers:
  - name: a
    image: a:1
    securityContext: *shared
  - name: b
    image: b:1
";
    let run = fix(&engine(false), &FixOptions::default(), &[("p.yaml", text)]);
    let o = run.objects().next().unwrap();
    // Container b and the pod-level profile are fixed; container a's
    // securityContext is an alias of the pod's and cannot be edited.
    assert!(
        run.files[0]
            .fixed
            .contains("  - name: b\n    image: b:1\n    securityContext:\n")
    );
    let ape = o
        .not_fixed
        .iter()
        .find(|n| n.check_id == "pss-allowPrivilegeEscalation")
        .unwrap();
    assert!(
        ape.reason.contains("could not edit the text safely"),
        "{}",
        ape.reason
    );
    assert!(ape.reason.contains("alias"), "{}", ape.reason);
    assert!(o.error.is_none());
}

#[test]
fn json_files_stay_json() {
    let text = "{\n  \"apiVersion\": \"v1\",\n  \"kind\": \"Pod\",\n  \"metadata\": {\"name\": \"p\"},\n  \"spec\": {\n    \"containers\": [\n      {\"name\": \"a\", \"image\": \"a:1\"}\n    ]\n  }\n}\n";
    let run = fix(&engine(false), &FixOptions::default(), &[("p.json", text)]);
    let fixed = &run.files[0].fixed;
    let value: Value = serde_json::from_str(fixed).expect("valid JSON");
    assert_eq!(
        value["spec"]["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    assert_eq!(
        value["spec"]["containers"][0]["securityContext"]["capabilities"]["drop"][0],
        "ALL"
    );
    assert!(
        fixed.starts_with("{\n  \"apiVersion\": \"v1\",\n"),
        "{fixed}"
    );
    assert_eq!(run.failing(Severity::Low), 0);
}

#[test]
fn resources_profile_and_crlf() {
    let text = "apiVersion: v1\r\nkind: Pod\r\nmetadata: {name: p}\r\nspec:\r\n  containers:\r\n  - name: a\r\n    image: a:1\r\n    resources:\r\n      requests: {cpu: 2}\r\n";
    let options = FixOptions {
        resources: ResourceProfile::built_in("small"),
        ..FixOptions::default()
    };
    let (checks, _) = practices::checks(&PracticeConfig::default());
    let engine = Engine::new(checks, Vec::new());
    let run = fix(&engine, &options, &[("p.yaml", text)]);
    assert_eq!(
        run.files[0].fixed,
        "apiVersion: v1\r\nkind: Pod\r\nmetadata: {name: p}\r\nspec:\r\n  containers:\r\n  - name: a\r\n    image: a:1\r\n    resources:\r\n      requests: {cpu: 2, memory: 128Mi}\r\n      limits:\r\n        cpu: \"2\"\r\n        memory: 256Mi\r\n"
    );
    let o = run.objects().next().unwrap();
    assert!(
        !ids(&o.not_fixed)
            .iter()
            .any(|id| id.starts_with("resources-"))
    );
}

#[test]
fn edits_that_do_not_read_back_as_intended_are_dropped() {
    let text = "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: b}\n";
    let source = SourceText::new("t.yaml", text);
    let engine = engine(false);
    let options = FixOptions::default();
    let fixer = Fixer::new(&engine, &options, Limits::default());
    let loaded = fixer.load(&source);
    let change = |name: &str| Change {
        check_id: "x".to_owned(),
        op: Op::set(FieldPath::parse("metadata.labels.fixed"), "yes"),
        subject: name.to_owned(),
        note: None,
    };
    let objects = vec![
        Planned {
            changes: vec![change("a")],
            refusals: Vec::new(),
            failed: Vec::new(),
            error: None,
        },
        Planned {
            changes: vec![change("b")],
            refusals: Vec::new(),
            failed: Vec::new(),
            error: None,
        },
    ];
    let range = |i: usize| document_range(&source.text, &loaded.manifests[i]).unwrap();
    let edit = |i: usize, body: &str| DocEdit {
        document: i,
        range: range(i),
        text: body.to_owned(),
        objects: vec![i],
    };
    // The first edit is right; the second writes `yes`, which YAML 1.1 reads
    // as a boolean, not the intended string.
    let good = edit(
        0,
        "apiVersion: v1\nkind: Pod\nmetadata: {name: a, labels: {fixed: \"yes\"}}\n",
    );
    let bad = edit(
        1,
        "apiVersion: v1\nkind: Pod\nmetadata: {name: b, labels: {fixed: yes}}\n",
    );
    assert_eq!(
        fixer.verified_edits(&source, &loaded, &objects, &[good, bad]),
        [0]
    );
    // A document that breaks its neighbour is caught by the whole-file check.
    let eats_separator = edit(0, "apiVersion: v1\nkind: Pod\nmetadata: {name: a}");
    assert!(
        fixer
            .verified_edits(&source, &loaded, &objects[..1], &[eats_separator])
            .is_empty()
    );
}

/// The same Deployment written in many layouts: every one is fixed to the
/// same objects, with no edit refused, and a second run changes nothing.
#[test]
fn every_layout_is_fixed_to_the_same_objects() {
    fn block(step: usize, seq: usize, newline: &str) -> String {
        let i = |n: usize| " ".repeat(n * step);
        let dash = |n: usize| format!("{}{}- ", i(n), " ".repeat(seq));
        let item = |n: usize| format!("{}{}  ", i(n), " ".repeat(seq));
        [
            "# the app".to_owned(),
            "apiVersion: apps/v1".to_owned(),
            "kind: Deployment".to_owned(),
            "metadata:".to_owned(),
            format!("{}name: app  # inline", i(1)),
            "spec:".to_owned(),
            format!("{}template:", i(1)),
            format!("{}spec:", i(2)),
            format!("{}# containers below", i(3)),
            format!("{}containers:", i(3)),
            format!("{}name: app", dash(3)),
            format!("{}image: \"ghcr.io/acme/app:1.0\"", item(3)),
            format!("{}ports:", item(3)),
            format!("{}containerPort: 8080", dash(4)),
            String::new(),
            format!("{}volumes: []", i(3)),
            String::new(),
        ]
        .join(newline)
    }
    let mut layouts: Vec<(String, String)> = Vec::new();
    for step in [2, 4] {
        for seq in [0, 2] {
            layouts.push((format!("block-{step}-{seq}.yaml"), block(step, seq, "\n")));
        }
    }
    layouts.push(("crlf.yaml".to_owned(), block(2, 2, "\r\n")));
    layouts.push((
        "flow.yaml".to_owned(),
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: app}\nspec: {template: {spec: {containers: [{name: app, image: 'ghcr.io/acme/app:1.0', ports: [{containerPort: 8080}]}], volumes: []}}}\n".to_owned(),
    ));
    layouts.push((
        "compact.json".to_owned(),
        r#"{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "app"}, "spec": {"template": {"spec": {"containers": [{"name": "app", "image": "ghcr.io/acme/app:1.0", "ports": [{"containerPort": 8080}]}], "volumes": []}}}}"#.to_owned(),
    ));
    let pretty = serde_json::to_string_pretty(&serde_json::json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "app"},
        "spec": {"template": {"spec": {"containers": [{"name": "app", "image": "ghcr.io/acme/app:1.0",
            "ports": [{"containerPort": 8080}]}], "volumes": []}}}
    }))
    .unwrap();
    layouts.push(("pretty.json".to_owned(), pretty));

    let engine = engine(true);
    let options = FixOptions {
        aggressive: true,
        always_pull: true,
        resources: ResourceProfile::built_in("medium"),
        ..FixOptions::default()
    };
    let mut results = Vec::new();
    for (name, text) in &layouts {
        let run = fix(&engine, &options, &[(name, text)]);
        let o = run.objects().next().unwrap();
        assert!(o.error.is_none(), "{name}: {:?}", o.error);
        // Only what has no remedy is left.
        let mut left = ids(&o.not_fixed);
        left.sort_unstable();
        assert_eq!(
            left,
            ["liveness-probe-missing", "readiness-probe-missing"],
            "{name}:\n{}",
            run.files[0].fixed
        );
        assert_eq!(o.fixed.len(), 11, "{name}");
        let fixed = &run.files[0].fixed;
        let again = fix(&engine, &options, &[(name, fixed)]);
        assert!(!again.files[0].changed(), "{name}: not idempotent");
        let value = Loader::default().load_str(name, fixed).manifests[0]
            .value
            .clone();
        results.push((name, value));
        if name.ends_with(".yaml") && name.starts_with("block") {
            for line in text.lines() {
                assert!(fixed.contains(line), "{name}: lost {line:?}");
            }
        }
    }
    for (name, value) in &results[1..] {
        assert_eq!(value, &results[0].1, "{name} differs from {}", results[0].0);
    }
}

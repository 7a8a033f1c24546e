//! Runs `rampart fix` the way users do, and checks its output with
//! `rampart scan`, with the loader, and with the real kubectl when present.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use rampart_manifest::Loader;
use serde_json::Value;

fn rampart() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rampart"));
    cmd.env_remove("RAMPART_PSS_LEVEL")
        .env_remove("RAMPART_PSS_VERSION")
        .env_remove("RAMPART_ALLOWED_REGISTRIES")
        .env("NO_COLOR", "1");
    cmd
}

fn run(args: &[&str]) -> Output {
    rampart().args(args).output().expect("run rampart")
}

fn run_stdin(args: &[&str], input: &str) -> Output {
    let mut child = rampart()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn rampart");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn code(output: &Output) -> i32 {
    output.status.code().expect("exit code")
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A temporary copy of `examples/` and the realistic fixtures.
fn workspace() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("manifests");
    copy_dir(&repo().join("examples"), &root.join("examples"));
    copy_dir(
        &repo().join("crates/rampart/tests/fixtures/realistic"),
        &root.join("realistic"),
    );
    (dir, root)
}

/// Every file under `dir`, relative path → content.
fn snapshot(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(dir).unwrap().display().to_string();
                out.insert(rel, std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    out
}

/// The lines of `before` that are not in `after`, with a line-based diff.
fn removed_lines(before: &str, after: &str) -> Vec<String> {
    similar::TextDiff::from_lines(before, after)
        .iter_all_changes()
        .filter(|c| c.tag() == similar::ChangeTag::Delete)
        .map(|c| c.value().trim_end().to_owned())
        .collect()
}

/// `(kind/name, sorted check IDs)` of every object with findings.
fn scan_findings(path: &Path, extra: &[&str]) -> BTreeMap<String, Vec<String>> {
    let mut args = vec!["scan", "-o", "json"];
    args.extend_from_slice(extra);
    let path = path.to_str().unwrap();
    args.push(path);
    let out = run(&args);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut findings = BTreeMap::new();
    for object in report["results"].as_array().unwrap() {
        let mut ids: Vec<String> = object["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f.get("suppressed").is_none())
            .map(|f| f["checkId"].as_str().unwrap().to_owned())
            .collect();
        if ids.is_empty() {
            continue;
        }
        ids.sort();
        let key = format!(
            "{}/{}",
            object["kind"].as_str().unwrap(),
            object["name"].as_str().unwrap()
        );
        findings.insert(key, ids);
    }
    findings
}

/// The objects of a file as the loader reads them.
fn objects(path: &Path) -> Vec<Value> {
    let loaded = Loader::default().load_paths([path]);
    assert!(loaded.issues.is_empty(), "{:?}", loaded.issues);
    loaded.manifests.into_iter().map(|m| m.value).collect()
}

/// The real kubectl; the check against it is part of what this test proves,
/// so a machine without kubectl fails the test rather than skipping it.
fn kubectl() -> PathBuf {
    std::env::var_os("KUBECTL")
        .map(PathBuf::from)
        .into_iter()
        .chain(["/usr/bin/kubectl", "/usr/local/bin/kubectl"].map(PathBuf::from))
        .find(|p| p.exists())
        .expect("kubectl is required for this test (set KUBECTL or install it at /usr/bin/kubectl)")
}

/// The objects of a file as kubectl reads them, offline: `label --local`
/// decodes the file with kubectl's own reader and prints each object (with
/// an empty `labels` it adds, removed here when the object had none).
fn kubectl_objects(kubectl: &Path, file: &Path, ours: &[Value]) -> Vec<Value> {
    let out = Command::new(kubectl)
        .args(["label", "--local", "-o", "json", "-f"])
        .arg(file)
        .arg("rampart-verify-")
        .output()
        .expect("run kubectl");
    assert!(
        out.status.success(),
        "kubectl rejects {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut values: Vec<Value> = serde_json::Deserializer::from_slice(&out.stdout)
        .into_iter::<Value>()
        .map(Result::unwrap)
        .collect();
    for (value, our) in values.iter_mut().zip(ours) {
        let ours_has_labels = our["metadata"].get("labels").is_some();
        if let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut)
            && !ours_has_labels
            && meta.get("labels") == Some(&Value::Object(Default::default()))
        {
            meta.remove("labels");
        }
    }
    values
}

#[test]
fn fixes_the_examples_in_place_keeping_everything_else() {
    let (_dir, root) = workspace();
    let before = snapshot(&root);
    let out = run(&["fix", "--write", root.to_str().unwrap()]);
    assert_eq!(code(&out), 1, "findings are left: {}", stderr(&out));
    assert!(
        stdout(&out).is_empty(),
        "--write prints nothing: {}",
        stdout(&out)
    );
    let after = snapshot(&root);
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>()
    );

    let changed: Vec<&str> = before
        .iter()
        .filter(|(k, v)| after[*k] != **v)
        .map(|(k, _)| k.as_str())
        .collect();
    assert_eq!(
        changed,
        [
            "examples/batch.yaml",
            "examples/legacy.json",
            "examples/shop.yaml",
            "realistic/monitoring/node-exporter.yaml",
        ]
    );
    for file in &changed {
        let removed = removed_lines(&before[*file], &after[*file]);
        if *file == "examples/legacy.json" {
            // The one-line container list gets its securityContext inline.
            assert_eq!(removed.len(), 1, "{removed:?}");
            assert!(removed[0].trim_start().starts_with("\"containers\""));
        } else {
            // YAML edits only add lines: comments and everything else stay.
            assert!(removed.is_empty(), "{file}: {removed:?}");
        }
        for line in before[*file].lines().filter(|l| l.contains('#')) {
            assert!(after[*file].contains(line), "{file}: lost {line:?}");
        }
    }

    // What is left is what cannot be fixed safely.
    let left = scan_findings(&root, &["--pss-only"]);
    let expected: BTreeMap<String, Vec<String>> = [
        (
            "CronJob/nightly-report",
            &["pss-capabilities_restricted", "pss-hostNamespaces"][..],
        ),
        (
            "DaemonSet/node-exporter",
            &[
                "pss-hostNamespaces",
                "pss-hostPorts",
                "pss-restrictedVolumes",
            ],
        ),
        (
            "Deployment/worker",
            &[
                "pss-allowPrivilegeEscalation",
                "pss-privileged",
                "pss-restrictedVolumes",
            ],
        ),
        ("Pod/debug", &["pss-hostNamespaces"]),
        (
            "StatefulSet/postgres",
            &["pss-runAsNonRoot", "pss-runAsUser"],
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.iter().map(|s| (*s).to_owned()).collect()))
    .collect();
    assert_eq!(left, expected);

    // The report says why for each of them.
    let report = stderr(&out);
    assert!(
        report.contains("examples/shop.yaml:80: Deployment shop/worker"),
        "{report}"
    );
    assert!(report.contains("not fixed  pss-privileged"), "{report}");
    assert!(report.contains("the container is privileged"), "{report}");
    assert!(report.contains("adds NET_ADMIN"), "{report}");
    assert!(report.contains("runs as UID 0"), "{report}");

    // The loader and kubectl read the fixed files as the same objects.
    let kubectl = kubectl();
    for file in &changed {
        let path = root.join(file);
        let ours = objects(&path);
        assert!(!ours.is_empty());
        assert_eq!(kubectl_objects(&kubectl, &path, &ours), ours, "{file}");
    }

    // A second run has nothing left to do.
    let again = run(&["fix", "--write", root.to_str().unwrap()]);
    assert_eq!(code(&again), 1);
    assert_eq!(snapshot(&root), after);
    assert!(
        stderr(&again).contains("0 fixes in 0 objects"),
        "{}",
        stderr(&again)
    );
    let diff = run(&["fix", "--diff", root.to_str().unwrap()]);
    assert!(stdout(&diff).is_empty(), "{}", stdout(&diff));
}

#[test]
fn the_practices_can_be_fixed_too_with_opt_ins() {
    let (_dir, root) = workspace();
    let before = scan_findings(&root, &[]);
    let out = run(&[
        "fix",
        "--write",
        "--aggressive",
        "--always-pull",
        "--resources-profile",
        "medium",
        root.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let after = scan_findings(&root, &[]);
    for (object, ids) in &after {
        for id in ids {
            assert!(
                !matches!(
                    id.as_str(),
                    "resources-missing-requests"
                        | "resources-missing-limits"
                        | "read-only-root-filesystem"
                        | "pss-seccompProfile_restricted"
                ),
                "{object}: {id} is left"
            );
        }
    }
    assert!(before["Deployment/worker"].contains(&"read-only-root-filesystem".to_owned()));
    let shop = std::fs::read_to_string(root.join("examples/shop.yaml")).unwrap();
    assert!(
        shop.contains("          image: acme/worker:latest\n          imagePullPolicy: Always\n"),
        "{shop}"
    );
    assert!(shop.contains("            cpu: 250m\n"), "{shop}");
    let report = stderr(&out);
    assert!(
        report.contains("note: mount an emptyDir volume"),
        "{report}"
    );
    let kubectl = kubectl();
    for file in [
        "examples/shop.yaml",
        "examples/legacy.json",
        "examples/batch.yaml",
    ] {
        let path = root.join(file);
        let ours = objects(&path);
        assert_eq!(kubectl_objects(&kubectl, &path, &ours), ours, "{file}");
    }
}

const POD: &str = "\
# A pod with nothing set.
apiVersion: v1
kind: Pod
metadata:
  name: web # front end
spec:
  containers:
  - name: web
    image: ghcr.io/acme/web:1.4.2
";

#[test]
fn standard_input_to_standard_output() {
    let out = run_stdin(&["fix", "--pss-only", "-"], POD);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "\
# A pod with nothing set.
apiVersion: v1
kind: Pod
metadata:
  name: web # front end
spec:
  securityContext:
    runAsNonRoot: true
    seccompProfile:
      type: RuntimeDefault
  containers:
  - name: web
    image: ghcr.io/acme/web:1.4.2
    securityContext:
      allowPrivilegeEscalation: false
      capabilities:
        drop:
        - ALL
"
    );
    let report = stderr(&out);
    assert!(report.contains("-:2: Pod web"), "{report}");
    assert!(
        report.contains("fixed      pss-allowPrivilegeEscalation       line 15"),
        "{report}"
    );
    assert!(
        report.contains("note: the image must run as a non-root user"),
        "{report}"
    );
    // The output is clean, and fixing it again changes nothing.
    let again = run_stdin(&["fix", "--pss-only", "-"], &stdout(&out));
    assert_eq!(code(&again), 0);
    assert_eq!(stdout(&again), stdout(&out));
    let scan = run_stdin(&["scan", "-"], &stdout(&out));
    assert!(
        !String::from_utf8_lossy(&scan.stdout).contains("pss-"),
        "{}",
        String::from_utf8_lossy(&scan.stdout)
    );
}

#[test]
fn diff_shows_the_change_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pod.yaml");
    std::fs::write(&file, POD).unwrap();
    let out = run(&[
        "fix",
        "--diff",
        "--check",
        "pss-runAsNonRoot",
        file.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let name = file.display().to_string();
    let name = name.trim_start_matches('/');
    assert_eq!(
        stdout(&out),
        format!(
            "--- a/{name}\n+++ b/{name}\n@@ -4,6 +4,8 @@\n metadata:\n   name: web # front end\n spec:\n+  securityContext:\n+    runAsNonRoot: true\n   containers:\n   - name: web\n     image: ghcr.io/acme/web:1.4.2\n"
        )
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), POD);
}

#[test]
fn json_summary() {
    let out = run_stdin(&["fix", "-o", "json", "--pss-only", "-"], POD);
    assert_eq!(code(&out), 0);
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["summary"]["fixed"], 4);
    assert_eq!(summary["summary"]["failing"], 0);
    assert_eq!(summary["summary"]["filesChanged"], 1);
    assert_eq!(summary["summary"]["filesWritten"], 0);
    let object = &summary["objects"][0];
    assert_eq!(object["kind"], "Pod");
    assert_eq!(object["source"], "-");
    let fixed = &object["fixed"][0];
    assert_eq!(fixed["checkId"], "pss-allowPrivilegeEscalation");
    assert_eq!(
        fixed["path"],
        "spec.containers[0].securityContext.allowPrivilegeEscalation"
    );
    assert_eq!(fixed["value"], false);
    assert_eq!(fixed["line"], 15);

    // Unfixable findings carry their reason.
    let privileged = POD.replace(
        "    image: ghcr.io/acme/web:1.4.2\n",
        "    image: ghcr.io/acme/web:1.4.2\n    securityContext: {privileged: true}\n",
    );
    let out = run_stdin(&["fix", "-o", "json", "--pss-only", "-"], &privileged);
    assert_eq!(code(&out), 1);
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    let not_fixed = summary["objects"][0]["notFixed"].as_array().unwrap();
    let ids: Vec<&str> = not_fixed
        .iter()
        .map(|n| n["checkId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["pss-privileged", "pss-allowPrivilegeEscalation"]);
    assert!(
        not_fixed[1]["reason"]
            .as_str()
            .unwrap()
            .contains("privileged")
    );
    // In the fixed text, below the pod securityContext added above it.
    assert_eq!(not_fixed[0]["line"], 14);
}

#[test]
fn several_files_on_standard_output_form_one_stream() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.yaml"), POD).unwrap();
    // A JSON stream of two objects.
    let pod = |name: &str| {
        format!(
            "{{\"apiVersion\": \"v1\", \"kind\": \"Pod\", \"metadata\": {{\"name\": \"{name}\"}}, \"spec\": {{\"containers\": [{{\"name\": \"{name}\", \"image\": \"{name}:1\"}}]}}}}"
        )
    };
    std::fs::write(
        dir.path().join("b.json"),
        format!("{}\n{}\n", pod("b"), pod("c")),
    )
    .unwrap();
    let out = run(&["fix", "--pss-only", dir.path().to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("# Source: "), "{text}");
    assert_eq!(text.matches("\n---\n# Source: ").count(), 1, "{text}");
    assert_eq!(text.matches("\n---\n").count(), 2, "{text}");
    let stream = dir.path().join("stream.yaml");
    std::fs::write(&stream, &text).unwrap();
    let values = objects(&stream);
    assert_eq!(values.len(), 3);
    assert_eq!(
        values[2]["spec"]["containers"][0]["securityContext"]["capabilities"]["drop"][0],
        "ALL"
    );
    assert_eq!(kubectl_objects(&kubectl(), &stream, &values), values);
}

#[test]
fn force_overrides_deliberate_choices() {
    let unconfined = POD.replace(
        "spec:\n",
        "spec:\n  securityContext:\n    seccompProfile: {type: Unconfined}  # needed for strace\n",
    );
    let out = run_stdin(
        &["fix", "--check", "pss-seccompProfile_restricted", "-"],
        &unconfined,
    );
    assert_eq!(code(&out), 1);
    assert_eq!(stdout(&out), unconfined);
    assert!(
        stderr(&out).contains("--force sets RuntimeDefault"),
        "{}",
        stderr(&out)
    );
    let out = run_stdin(
        &[
            "fix",
            "--force",
            "--check",
            "pss-seccompProfile_restricted",
            "-",
        ],
        &unconfined,
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).contains("    seccompProfile: {type: RuntimeDefault}  # needed for strace\n"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn usage_and_input_errors_exit_2() {
    let out = run(&["fix", "--check", "no-such-check", "-"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("no-such-check"));
    let out = run(&["fix", "--resources-profile", "enormous", "-"]);
    assert_eq!(code(&out), 2);
    let out = run(&["fix", "/nonexistent/path.yaml"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("cannot read"), "{}", stderr(&out));
    // A broken document is reported and left alone; the others are fixed.
    let broken = format!("{POD}---\napiVersion: v1\nkind: Pod\nspec: [oops\n");
    let out = run_stdin(&["fix", "--pss-only", "-"], &broken);
    assert_eq!(code(&out), 2);
    assert!(stdout(&out).contains("allowPrivilegeEscalation: false"));
    assert!(stdout(&out).ends_with("---\napiVersion: v1\nkind: Pod\nspec: [oops\n"));
    // --diff and -o json do not go together.
    assert_eq!(code(&run(&["fix", "--diff", "-o", "json", "-"])), 2);
}

#[test]
fn files_that_are_not_utf8_are_never_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("latin1.yaml");
    let mut bytes = POD.as_bytes().to_vec();
    bytes.extend_from_slice(b"# caf\xe9\n");
    std::fs::write(&file, &bytes).unwrap();
    let out = run(&["fix", "--write", file.to_str().unwrap()]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("UTF-8"), "{}", stderr(&out));
    assert_eq!(std::fs::read(&file).unwrap(), bytes);
}
